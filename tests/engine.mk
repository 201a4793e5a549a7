# Provider tests: openssl, gpgsm, NSS cmsutil and libp11's ENGINE against
# the built module, on SoftHSM2 and NSS softokn tokens from the fixture.
PROVIDER_TESTS = tests/test-provider-softhsm.sh tests/test-provider-nss.sh \
	tests/test-provider-errors.sh tests/test-provider-config.sh
TESTS += $(PROVIDER_TESTS)
EXTRA_DIST += $(PROVIDER_TESTS) tests/test-provider-lib.sh

# The private library context of libp11mail, with the built-in provider.
check_PROGRAMS += tests/provider-libctx
tests_provider_libctx_SOURCES = tests/test-provider-libctx.c src/libctx.c \
	src/libctx.h
tests_provider_libctx_CFLAGS = $(AM_CFLAGS) $(DEP_CFLAGS) -I$(top_srcdir)/tests
tests_provider_libctx_LDADD = engine/libp11prov.la src/libp11token.la \
	src/libp11common.la tests/libfixture.la tests/libtap.la \
	$(OPENSSL_LIBS) $(P11KIT_LIBS)
TESTS += tests/provider-libctx

# Operations per second through the provider, raw PKCS#11 and libp11's
# ENGINE on one token; run by hand (JSON on stdout), not a test.
check_PROGRAMS += tests/bench-provider
tests_bench_provider_SOURCES = tests/bench-provider.c \
	tests/bench-provider-engine.c tests/bench-provider.h
tests_bench_provider_CFLAGS = $(AM_CFLAGS) $(DEP_CFLAGS) -I$(top_srcdir)/tests
tests_bench_provider_LDADD = tests/libfixture.la $(OPENSSL_LIBS) \
	$(P11KIT_LIBS) -ldl
