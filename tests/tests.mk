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

check_LTLIBRARIES += tests/libtap.la
tests_libtap_la_SOURCES = tests/tap.c tests/tap.h
tests_libtap_la_CFLAGS = $(AM_CFLAGS)

EXTRA_DIST += tests/tap.sh tests/fixture
dist_noinst_SCRIPTS += tests/tap.sh

# The fixture for C tests (tests/fixture.h): link tests/libfixture.la.
check_LTLIBRARIES += tests/libfixture.la
tests_libfixture_la_SOURCES = tests/fixture.c tests/fixture.h
tests_libfixture_la_CFLAGS = $(AM_CFLAGS)

# The fixture's own checks.
TESTS += tests/test-fixture.sh
EXTRA_DIST += tests/test-fixture.sh
