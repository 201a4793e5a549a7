#!/bin/sh
# What the token core must not leak: PINs in errors and the trace, the
# trace itself to other users or through a planted symlink.
set -u
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/fixture/fixture.sh"
fixture_setup
if [ -f "${P11FAULTY_MODULE:-}" ]; then
	fixture_faulty
	export P11FAULTY_MODULE
fi
P11MAIL_DEBUG=$P11MAIL_FIXTURE_DIR/trace.log; export P11MAIL_DEBUG
P11MAIL_SECURE_PROG=$top_builddir/tests/token-secure
export P11MAIL_SECURE_PROG
"$top_builddir/tests/token-secure"
