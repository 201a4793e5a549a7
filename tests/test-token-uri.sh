#!/bin/sh
# PKCS#11 URI matching in the token core, on two SoftHSM2 tokens.
set -u
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/fixture/fixture.sh"
fixture_setup
"$top_builddir/tests/token-uri"
