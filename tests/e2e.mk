# The exchange between two clinics end to end, through a private Postfix
# and Dovecot; and the demo that walks through it on a local mail store.
TESTS += tests/test-e2e.sh
EXTRA_DIST += tests/test-e2e.sh scripts/demo scripts/build.sh
