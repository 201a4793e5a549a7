#!/bin/sh
# Deleting and replacing objects, and blank tokens in listings, on SoftHSM2.
set -u
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/fixture/fixture.sh"
fixture_setup
"$top_builddir/tests/token-delete" softhsm
