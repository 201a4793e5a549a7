#!/bin/sh
# Several threads signing at once, and signing after fork, on SoftHSM2 and
# on NSS softokn.
set -u
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/fixture/fixture.sh"
fixture_setup
"$top_builddir/tests/token-threads"
