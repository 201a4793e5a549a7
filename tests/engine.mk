# Provider tests: openssl, gpgsm, NSS cmsutil and libp11's ENGINE against
# the built module, on SoftHSM2 and NSS softokn tokens from the fixture.
PROVIDER_TESTS = tests/test-provider-softhsm.sh tests/test-provider-nss.sh \
	tests/test-provider-errors.sh tests/test-provider-config.sh
TESTS += $(PROVIDER_TESTS)
EXTRA_DIST += $(PROVIDER_TESTS) tests/test-provider-lib.sh
