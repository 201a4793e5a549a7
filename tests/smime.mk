# S/MIME tests: round trips on SoftHSM2 tokens, interop with openssl cms,
# gpgsm and NSS cmsutil, certificate rules and the attack classes.
TESTS += tests/test-smime.sh
EXTRA_DIST += tests/test-smime.sh tests/test-smime-common.sh
TESTS += tests/test-attack-spoof.sh
EXTRA_DIST += tests/test-attack-spoof.sh

# Makes malformed and forged signatures for the attack tests.
check_PROGRAMS += tests/test-attack-forge
tests_test_attack_forge_SOURCES = tests/test-attack-forge.c
tests_test_attack_forge_CFLAGS = $(AM_CFLAGS) $(OPENSSL_CFLAGS)
tests_test_attack_forge_LDADD = $(OPENSSL_LIBS)
TESTS += tests/test-attack-efail.sh tests/test-attack-limits.sh \
	tests/test-smime-certs.sh
EXTRA_DIST += tests/test-attack-efail.sh tests/test-attack-limits.sh \
	tests/test-smime-certs.sh
TESTS += tests/test-smime-interop.sh
EXTRA_DIST += tests/test-smime-interop.sh

# The public S/MIME API, as the workstation store and programs use it.
check_PROGRAMS += tests/test-smime-api
tests_test_smime_api_SOURCES = tests/test-smime-api.c
tests_test_smime_api_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests
tests_test_smime_api_CFLAGS = $(AM_CFLAGS)
tests_test_smime_api_LDADD = src/libp11mail.la tests/libtap.la
TESTS += tests/test-smime-api.sh
EXTRA_DIST += tests/test-smime-api.sh

# Large messages streamed through sign and encrypt; sign, encrypt, decrypt
# and verify with the workstation store.
TESTS += tests/test-smime-stream.sh tests/test-smime-store.sh
EXTRA_DIST += tests/test-smime-stream.sh tests/test-smime-store.sh

# Commands that only read, with --store at a path that does not exist:
# they create nothing.
TESTS += tests/test-store-missing.sh
EXTRA_DIST += tests/test-store-missing.sh

# The PIN asked on the terminal or through a pinentry program when the
# configuration names no pin-source.
TESTS += tests/test-pin-prompt.sh
EXTRA_DIST += tests/test-pin-prompt.sh
