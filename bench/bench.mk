# make bench: p11mail side by side with the raw token and with its peers
# (bench/README.md).  The table goes to the terminal, the same figures to
# bench-results.json in the build directory.  BENCH_QUICK=1 runs a short
# version of every row.
check_PROGRAMS += bench/bench-lib
bench_bench_lib_SOURCES = bench/bench-lib.c tests/bench-provider-engine.c \
	tests/bench-provider.h
bench_bench_lib_CFLAGS = $(AM_CFLAGS) $(DEP_CFLAGS) -I$(top_srcdir)/tests
bench_bench_lib_LDADD = src/libp11mail.la $(OPENSSL_LIBS) $(P11KIT_LIBS) -ldl

EXTRA_DIST += bench/README.md
dist_noinst_SCRIPTS += bench/bench.sh bench/bench-report.sh

BENCH_ENV = top_srcdir='$(abs_top_srcdir)' \
	top_builddir='$(abs_top_builddir)' \
	P11MAIL_TEST_PROVIDER_DIR='$(abs_top_builddir)/engine/.libs'

bench: bench/bench-lib tests/bench-store src/p11mail engine/p11mail.la
	@$(BENCH_ENV) $(SHELL) '$(abs_top_srcdir)/bench/bench.sh' \
		'$(abs_top_builddir)/bench-results.json'

CLEANFILES += bench-results.json

# The bench in its quickest mode, checked for a complete JSON file.
TESTS += tests/test-bench.sh
EXTRA_DIST += tests/test-bench.sh
