#!/bin/sh
# What the token core must not leak: PINs in errors and the trace.
set -u
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/fixture/fixture.sh"
fixture_setup
P11MAIL_DEBUG=$P11MAIL_FIXTURE_DIR/trace.log; export P11MAIL_DEBUG
"$top_builddir/tests/token-secure"
