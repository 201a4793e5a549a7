# Token core tests.  The C programs do the work; each shell test builds a
# fixture (SoftHSM2 tokens, an NSS softokn database) and runs one of them.
TOKEN_TEST_LIBS = tests/libtap.la src/libp11token.la src/libp11common.la \
	$(OPENSSL_LIBS) $(P11KIT_LIBS)
TOKEN_TEST_CFLAGS = $(AM_CFLAGS) $(DEP_CFLAGS)

check_LTLIBRARIES += tests/libtokentest.la
tests_libtokentest_la_SOURCES = tests/test-token-util.c \
	tests/test-token-util.h
tests_libtokentest_la_CFLAGS = $(TOKEN_TEST_CFLAGS)

check_PROGRAMS += tests/token-ops
tests_token_ops_SOURCES = tests/test-token-ops.c
tests_token_ops_CFLAGS = $(TOKEN_TEST_CFLAGS)
tests_token_ops_LDADD = tests/libtokentest.la $(TOKEN_TEST_LIBS)

TESTS += tests/test-token-ops.sh tests/test-token-ops-nss.sh
EXTRA_DIST += tests/test-token-ops.sh tests/test-token-ops-nss.sh

check_PROGRAMS += tests/token-uri
tests_token_uri_SOURCES = tests/test-token-uri.c
tests_token_uri_CFLAGS = $(TOKEN_TEST_CFLAGS)
tests_token_uri_LDADD = tests/libtokentest.la $(TOKEN_TEST_LIBS)

TESTS += tests/test-token-uri.sh
EXTRA_DIST += tests/test-token-uri.sh

check_PROGRAMS += tests/token-pin
tests_token_pin_SOURCES = tests/test-token-pin.c
tests_token_pin_CFLAGS = $(TOKEN_TEST_CFLAGS)
tests_token_pin_LDADD = tests/libtokentest.la $(TOKEN_TEST_LIBS)

TESTS += tests/test-token-pin.sh
EXTRA_DIST += tests/test-token-pin.sh

check_PROGRAMS += tests/token-threads
tests_token_threads_SOURCES = tests/test-token-threads.c
tests_token_threads_CFLAGS = $(TOKEN_TEST_CFLAGS)
tests_token_threads_LDADD = tests/libtokentest.la $(TOKEN_TEST_LIBS)

TESTS += tests/test-token-threads.sh
EXTRA_DIST += tests/test-token-threads.sh

check_PROGRAMS += tests/token-exit
tests_token_exit_SOURCES = tests/test-token-exit.c
tests_token_exit_CFLAGS = $(TOKEN_TEST_CFLAGS)
tests_token_exit_LDADD = tests/libtokentest.la $(TOKEN_TEST_LIBS)

TESTS += tests/test-token-exit.sh
EXTRA_DIST += tests/test-token-exit.sh

check_PROGRAMS += tests/token-faults
tests_token_faults_SOURCES = tests/test-token-faults.c
tests_token_faults_CFLAGS = $(TOKEN_TEST_CFLAGS)
tests_token_faults_LDADD = tests/libtokentest.la $(TOKEN_TEST_LIBS)

TESTS += tests/test-token-faults.sh
EXTRA_DIST += tests/test-token-faults.sh

check_PROGRAMS += tests/token-write
tests_token_write_SOURCES = tests/test-token-write.c
tests_token_write_CFLAGS = $(TOKEN_TEST_CFLAGS)
tests_token_write_LDADD = tests/libtokentest.la $(TOKEN_TEST_LIBS)

TESTS += tests/test-token-write.sh tests/test-token-write-nss.sh
EXTRA_DIST += tests/test-token-write.sh tests/test-token-write-nss.sh

check_PROGRAMS += tests/token-delete
tests_token_delete_SOURCES = tests/test-token-delete.c
tests_token_delete_CFLAGS = $(TOKEN_TEST_CFLAGS)
tests_token_delete_LDADD = tests/libtokentest.la $(TOKEN_TEST_LIBS)

TESTS += tests/test-token-delete.sh tests/test-token-delete-nss.sh
EXTRA_DIST += tests/test-token-delete.sh tests/test-token-delete-nss.sh

check_PROGRAMS += tests/token-print
tests_token_print_SOURCES = tests/test-token-print.c
tests_token_print_CFLAGS = $(TOKEN_TEST_CFLAGS)
tests_token_print_LDADD = $(TOKEN_TEST_LIBS)

TESTS += tests/test-token-engine.sh
EXTRA_DIST += tests/test-token-engine.sh

# Raw C_Sign against tok_key_sign on one token; not a test (prints JSON).
check_PROGRAMS += tests/bench-token
tests_bench_token_SOURCES = tests/bench-token.c
tests_bench_token_CFLAGS = $(TOKEN_TEST_CFLAGS)
tests_bench_token_LDADD = tests/libtokentest.la $(TOKEN_TEST_LIBS) \
	tests/libtap.la

# A PIN-pad token for the tests, made of SoftHSM2 (P11PAP_TARGET).
check_LTLIBRARIES += tests/libtokenpap.la
tests_libtokenpap_la_SOURCES = tests/test-token-pap.c
tests_libtokenpap_la_CFLAGS = $(AM_CFLAGS) $(P11KIT_CFLAGS)
tests_libtokenpap_la_LDFLAGS = -module -avoid-version -rpath /nowhere
tests_libtokenpap_la_LIBADD = -ldl

TESTS += tests/test-token-tty.sh
EXTRA_DIST += tests/test-token-tty.sh

check_PROGRAMS += tests/token-secure
tests_token_secure_SOURCES = tests/test-token-secure.c
tests_token_secure_CFLAGS = $(TOKEN_TEST_CFLAGS)
tests_token_secure_LDADD = tests/libtokentest.la $(TOKEN_TEST_LIBS)

TESTS += tests/test-token-secure.sh
EXTRA_DIST += tests/test-token-secure.sh

# make bench-token: signatures per second, raw C_Sign
# against tok_key_sign, as JSON.
EXTRA_DIST += tests/bench-token.sh
bench-token: tests/bench-token
	@top_srcdir='$(abs_top_srcdir)' $(SHELL) \
		'$(abs_top_srcdir)/tests/bench-token.sh' \
		'$(abs_top_builddir)/tests/bench-token'
.PHONY: bench-token
