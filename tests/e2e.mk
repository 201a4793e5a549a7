# The exchange between two clinics end to end, through a private Postfix
# and Dovecot; and the demo that walks through it on a local mail store.
TESTS += tests/test-e2e.sh
EXTRA_DIST += tests/test-e2e.sh scripts/demo scripts/build.sh

# The p11mail command line: usage errors, option order, --json placement,
# inbox and fetch failures, and the exit statuses of p11mail(1).
TESTS += tests/test-cli.sh
EXTRA_DIST += tests/test-cli.sh
