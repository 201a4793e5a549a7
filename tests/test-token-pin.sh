#!/bin/sh
# PIN sources, wrong PINs and always-authenticate keys in the token core.
set -u
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/fixture/fixture.sh"
fixture_setup
P11MAIL_DEBUG=$P11MAIL_FIXTURE_DIR/trace.log; export P11MAIL_DEBUG
"$top_builddir/tests/token-pin"
rc=$?
# The trace must never carry a PIN.
for pin in "$ALICE_PIN" "$BOB_PIN"; do
	if grep -q -- "$pin" "$P11MAIL_DEBUG"; then
		echo "Bail out! a PIN reached the debug trace"
		exit 1
	fi
done
exit $rc
