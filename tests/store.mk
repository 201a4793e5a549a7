# Tests of the configuration and the workstation store.  They link the
# store's convenience library directly, like p11mail-certinstall does.
check_LTLIBRARIES += tests/libstoretest.la
tests_libstoretest_la_SOURCES = tests/test-store-util.c \
	tests/test-store-util.h
tests_libstoretest_la_CFLAGS = $(AM_CFLAGS) $(DEP_CFLAGS)

STORE_TEST_LIBS = tests/libstoretest.la tests/libtap.la src/libp11store.la \
	src/libp11common.la $(SQLITE_LIBS) $(OPENSSL_LIBS) $(P11KIT_LIBS)

check_PROGRAMS += tests/test-config tests/test-store \
	tests/test-store-writer tests/bench-store
TESTS += tests/test-config tests/test-store

tests_test_config_SOURCES = tests/test-config.c
tests_test_config_CFLAGS = $(AM_CFLAGS) $(DEP_CFLAGS)
tests_test_config_LDADD = $(STORE_TEST_LIBS)

tests_test_store_SOURCES = tests/test-store.c
tests_test_store_CFLAGS = $(AM_CFLAGS) $(DEP_CFLAGS)
tests_test_store_LDADD = $(STORE_TEST_LIBS)

tests_test_store_writer_SOURCES = tests/test-store-writer.c
tests_test_store_writer_CFLAGS = $(AM_CFLAGS) $(DEP_CFLAGS)
tests_test_store_writer_LDADD = $(STORE_TEST_LIBS)

tests_bench_store_SOURCES = tests/bench-store.c
tests_bench_store_CFLAGS = $(AM_CFLAGS) $(DEP_CFLAGS)
tests_bench_store_LDADD = $(STORE_TEST_LIBS)

TESTS += tests/test-store-faults.sh
EXTRA_DIST += tests/test-store-faults.sh
TESTS += tests/test-certinstall.sh
EXTRA_DIST += tests/test-certinstall.sh
TESTS += tests/test-trust.sh
EXTRA_DIST += tests/test-trust.sh

# make bench-store: store inserts and look-ups per second
# at 100,000 certificates, as JSON.
bench-store: tests/bench-store
	@$(abs_top_builddir)/tests/bench-store 100000
.PHONY: bench-store
