#!/bin/sh
# The token core's operations on SoftHSM2 and on NSS softokn, checked with
# OpenSSL; the C program does the work, this script builds the fixture.
set -u
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/fixture/fixture.sh"
fixture_setup
P11MAIL_DEBUG=$P11MAIL_FIXTURE_DIR/trace.log; export P11MAIL_DEBUG
"$top_builddir/tests/token-ops" softhsm
