#!/bin/sh
# The loadable provider with NSS softokn keys: openssl cms, req and pkeyutl
# sign and decrypt; gpgsm, NSS cmsutil and the default provider alone check
# the results; libp11's ENGINE takes the same URIs.
set -u
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/fixture/fixture.sh"
. "$top_srcdir/tests/test-provider-lib.sh"

prov_setup
use_token nss
sign_checks nss
decrypt_checks nss
peer_decrypt_checks nss
req_pkeyutl_checks nss
engine_checks nss

done_testing
