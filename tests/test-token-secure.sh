#!/bin/sh
# What the token core must not leak: PINs in errors and the trace, the
# trace itself to other users or through a planted symlink.
set -u
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/fixture/fixture.sh"
fixture_setup
P11MAIL_DEBUG=$P11MAIL_FIXTURE_DIR/trace.log; export P11MAIL_DEBUG
P11MAIL_SECURE_PROG=$top_builddir/tests/token-secure
export P11MAIL_SECURE_PROG
"$top_builddir/tests/token-secure"
