# S/MIME tests: round trips on SoftHSM2 tokens, interop with openssl cms,
# gpgsm and NSS cmsutil, certificate rules and the attack classes.
TESTS += tests/test-smime.sh
EXTRA_DIST += tests/test-smime.sh tests/test-smime-common.sh
