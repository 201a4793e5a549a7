#!/bin/sh
# Runs the C test of the public S/MIME API inside a fresh fixture.
set -u
. "$top_srcdir/tests/tap.sh"
prog=$top_builddir/tests/test-smime-api
[ -x "$prog" ] || skip_all "tests/test-smime-api was not built"
. "$top_srcdir/tests/fixture/fixture.sh"
fixture_setup
export SOFTHSM2_CONF SOFTHSM_MODULE CA_CERT EVE_KEY EVE_CERT DAVE_CERT \
  BAD_DNONLY_KEY BAD_DNONLY_CERT ALICE_RSA_URI
"$prog"
