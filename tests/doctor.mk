# p11mail doctor: its checks of modules and tokens go through the token
# core, linked into the tool since libp11mail does not export it (with
# src/doctor-trace.c for the core's few internal helpers, not the common
# library, whose logging the tool must share with libp11mail).  Its test
# runs every finding on SoftHSM2 tokens of the fixture.
src_p11mail_SOURCES += src/doctor-trace.c
src_p11mail_LDADD += src/libp11token.la $(P11KIT_LIBS)

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
