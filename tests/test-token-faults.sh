#!/bin/sh
# The token core against libp11faulty in front of SoftHSM2: removal,
# lost sessions, renumbered slots, PIN flags, missing mechanisms.
set -u
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/fixture/fixture.sh"
FAULTY=${P11FAULTY_MODULE:-$top_builddir/tests/mock/.libs/libp11faulty.so}
[ -f "$FAULTY" ] || skip_all "libp11faulty.so not built ($FAULTY)"
fixture_setup
P11FAULTY_MODULE=$FAULTY
P11FAULTY_TARGET=$SOFTHSM_MODULE
P11FAULTY_CONTROL=$P11MAIL_FIXTURE_DIR/faulty.control
P11FAULTY_COUNTS=$P11MAIL_FIXTURE_DIR/faulty.counts
export P11FAULTY_MODULE P11FAULTY_TARGET P11FAULTY_CONTROL P11FAULTY_COUNTS
"$top_builddir/tests/token-faults"
