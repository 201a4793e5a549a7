# p11mail doctor: the checks are part of libp11mail (p11mail_doctor_run),
# over the token core and the store it carries; the command only prints.
# Its test runs every finding on SoftHSM2 tokens of the fixture.
src_libp11mail_la_SOURCES += src/doctor.h src/doctor.c src/doctor-run.c \
	src/doctor-config.c src/doctor-p11.c src/doctor-store.c \
	src/doctor-cert.c

TESTS += tests/test-doctor.sh
EXTRA_DIST += tests/test-doctor.sh
dist_man_MANS += man/p11mail-doctor.1

# The token core's diagnostics that doctor uses, on SoftHSM2 and through
# the faulty proxy module.
check_PROGRAMS += tests/token-info
tests_token_info_SOURCES = tests/test-token-info.c
tests_token_info_CFLAGS = $(TOKEN_TEST_CFLAGS)
tests_token_info_LDADD = tests/libtokentest.la $(TOKEN_TEST_LIBS)
TESTS += tests/test-token-info.sh
EXTRA_DIST += tests/test-token-info.sh

# The store's read-only examination that doctor uses.
check_PROGRAMS += tests/test-store-check
TESTS += tests/test-store-check
tests_test_store_check_SOURCES = tests/test-store-check.c
tests_test_store_check_CFLAGS = $(AM_CFLAGS) $(DEP_CFLAGS)
tests_test_store_check_LDADD = $(STORE_TEST_LIBS)

# The public doctor API: arguments, findings, the log callback given back.
check_PROGRAMS += tests/test-doctor-api
TESTS += tests/test-doctor-api
tests_test_doctor_api_SOURCES = tests/test-doctor-api.c
tests_test_doctor_api_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests
tests_test_doctor_api_CFLAGS = $(AM_CFLAGS) $(DEP_CFLAGS)
tests_test_doctor_api_LDADD = src/libp11mail.la tests/libtap.la
