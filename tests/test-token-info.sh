#!/bin/sh
# The token core's module, token and key-URI diagnostics on SoftHSM2 and
# through libp11faulty in front of it (PIN flags, a removed token).
set -u
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/fixture/fixture.sh"
FAULTY=${P11FAULTY_MODULE:-$top_builddir/tests/mock/.libs/libp11faulty.so}
[ -f "$FAULTY" ] || skip_all "libp11faulty.so not built ($FAULTY)"
fixture_setup
fixture_faulty
P11FAULTY_MODULE=$FAULTY
export P11FAULTY_MODULE
"$top_builddir/tests/token-info"
