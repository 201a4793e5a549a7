#!/bin/sh
# Deleting and replacing objects, and listings of every token, on NSS softokn.
set -u
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/fixture/fixture.sh"
fixture_setup
"$top_builddir/tests/token-delete" nss
