#!/bin/sh
# PIN sources, wrong PINs and always-authenticate keys in the token core.
set -u
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/fixture/fixture.sh"
fixture_setup
P11MAIL_DEBUG=$P11MAIL_FIXTURE_DIR/trace.log; export P11MAIL_DEBUG
# A PIN-pad token made of SoftHSM2 (tests/test-token-pap.c).
pap=$top_builddir/tests/.libs/libtokenpap.so
if [ -f "$pap" ]; then
	P11PAP_MODULE=$pap
	P11PAP_TARGET=$SOFTHSM_MODULE
	P11PAP_PIN=$ALICE_PIN
	export P11PAP_MODULE P11PAP_TARGET P11PAP_PIN
fi
"$top_builddir/tests/token-pin"
rc=$?
# The trace must never carry a PIN (P11PAP_PIN is the pad's, not ours).
for pin in "$ALICE_PIN" "$BOB_PIN"; do
	if grep -q -- "$pin" "$P11MAIL_DEBUG"; then
		echo "Bail out! a PIN reached the debug trace"
		exit 1
	fi
done
exit $rc
