#!/bin/sh
# The token core's operations on NSS softokn (OAEP-SHA256 and ECDH there).
set -u
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/fixture/fixture.sh"
fixture_setup
P11MAIL_DEBUG=$P11MAIL_FIXTURE_DIR/trace.log; export P11MAIL_DEBUG
"$top_builddir/tests/token-ops" nss
