# The test harness: every test speaks TAP through automake's driver, C unit
# tests and shell integration tests alike.  A test that lacks a tool it
# needs prints "1..0 # SKIP <reason>" and is counted as skipped, never passed.
TEST_EXTENSIONS = .sh
LOG_DRIVER = env AM_TAP_AWK='$(AWK)' $(SHELL) \
	$(top_srcdir)/build-aux/tap-driver.sh
SH_LOG_DRIVER = $(LOG_DRIVER)
SH_LOG_COMPILER = $(SHELL)
AM_TESTS_ENVIRONMENT = \
	top_srcdir='$(abs_top_srcdir)'; export top_srcdir; \
	top_builddir='$(abs_top_builddir)'; export top_builddir; \
	P11MAIL_TEST_PROVIDER_DIR='$(abs_top_builddir)/engine/.libs'; \
	export P11MAIL_TEST_PROVIDER_DIR; \
	OPENSSL_BIN='$(OPENSSL_BIN)'; export OPENSSL_BIN;

# In a sanitizer build, openssl gets the ASan runtime preloaded so that it
# can load the instrumented provider; other programs run as they are.
# Leaks are left to the valgrind checks of the normal build.
if SANITIZERS
check_SCRIPTS = tests/san-bin/openssl
CLEANFILES += tests/san-bin/openssl
tests/san-bin/openssl: Makefile
	$(AM_V_GEN)mkdir -p tests/san-bin && \
	printf '#!/bin/sh\nLD_PRELOAD=%s exec %s "$$@"\n' \
		'$(ASAN_RUNTIME)' '$(OPENSSL_BIN)' > $@ && chmod +x $@
AM_TESTS_ENVIRONMENT += \
	PATH='$(abs_top_builddir)/tests/san-bin':$$PATH; export PATH; \
	OPENSSL_BIN='$(abs_top_builddir)/tests/san-bin/openssl'; \
	export OPENSSL_BIN; \
	ASAN_OPTIONS=detect_leaks=0:halt_on_error=1; export ASAN_OPTIONS; \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1; \
	export UBSAN_OPTIONS; \
	P11MAIL_TEST_SANITIZED=1; export P11MAIL_TEST_SANITIZED; \
	P11MAIL_TEST_ASAN_RUNTIME='$(ASAN_RUNTIME)'; \
	export P11MAIL_TEST_ASAN_RUNTIME;
endif

check_LTLIBRARIES += tests/libtap.la
tests_libtap_la_SOURCES = tests/tap.c tests/tap.h
tests_libtap_la_CFLAGS = $(AM_CFLAGS)

EXTRA_DIST += tests/tap.sh tests/fixture/README tests/fixture/fixture.sh \
	tests/fixture/make-fixture.sh
dist_noinst_SCRIPTS += tests/tap.sh

# The fixture for C tests (tests/fixture.h): link tests/libfixture.la.
check_LTLIBRARIES += tests/libfixture.la
tests_libfixture_la_SOURCES = tests/fixture.c tests/fixture.h
tests_libfixture_la_CFLAGS = $(AM_CFLAGS)

# The fixture's own checks.
TESTS += tests/test-fixture.sh
EXTRA_DIST += tests/test-fixture.sh

# libp11faulty: a PKCS#11 proxy that fails on purpose (tests/mock/README).
# Tests find it at $P11FAULTY_MODULE.
check_LTLIBRARIES += tests/mock/libp11faulty.la
tests_mock_libp11faulty_la_SOURCES = tests/mock/faulty.c \
	tests/mock/faulty-control.c tests/mock/faulty-control.h
if SANITIZERS
# Uninstrumented programs (pkcs11-tool, openssl) load this module: it must
# not need the sanitizer runtime.
tests_mock_libp11faulty_la_CFLAGS = -std=c11 -Wall -Wextra \
	-fvisibility=hidden $(P11KIT_CFLAGS)
else
tests_mock_libp11faulty_la_CFLAGS = $(AM_CFLAGS) $(P11KIT_CFLAGS)
endif
tests_mock_libp11faulty_la_LDFLAGS = -module -avoid-version -rpath /nowhere
tests_mock_libp11faulty_la_LIBADD = -ldl -lpthread
AM_TESTS_ENVIRONMENT += \
	P11FAULTY_MODULE='$(abs_top_builddir)/tests/mock/.libs/libp11faulty.so'; \
	export P11FAULTY_MODULE;
EXTRA_DIST += tests/mock/README
TESTS += tests/test-faulty.sh tests/mock/test-faulty-sessions
EXTRA_DIST += tests/test-faulty.sh
check_PROGRAMS += tests/mock/test-faulty-sessions
tests_mock_test_faulty_sessions_SOURCES = tests/mock/test-faulty-sessions.c
tests_mock_test_faulty_sessions_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests
tests_mock_test_faulty_sessions_CFLAGS = $(AM_CFLAGS) $(P11KIT_CFLAGS)
tests_mock_test_faulty_sessions_LDADD = tests/libfixture.la tests/libtap.la -ldl

# Reader and card presence: a private pcscd with vpcd and a virtual card.
check_PROGRAMS += tests/pcsc/vicc
tests_pcsc_vicc_SOURCES = tests/pcsc/vicc.c
tests_pcsc_vicc_CFLAGS = $(AM_CFLAGS)
TESTS += tests/test-pcsc.sh
EXTRA_DIST += tests/test-pcsc.sh

# The C side of the fixture.
check_PROGRAMS += tests/test-fixture-env
tests_test_fixture_env_SOURCES = tests/test-fixture-env.c
tests_test_fixture_env_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests
tests_test_fixture_env_LDADD = tests/libfixture.la tests/libtap.la
TESTS += tests/test-fixture-env
EXTRA_DIST += tests/pcsc/pcsc.sh tests/pcsc/README
