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
