#!/bin/sh
# The loadable provider with SoftHSM2 keys: openssl cms, req and pkeyutl
# sign and decrypt; gpgsm, NSS cmsutil and the default provider alone check
# the results; libp11's ENGINE takes the same URIs.
set -u
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/fixture/fixture.sh"
. "$top_srcdir/tests/test-provider-lib.sh"

prov_setup
use_token softhsm
sign_checks softhsm
decrypt_checks softhsm
peer_decrypt_checks softhsm
req_pkeyutl_checks softhsm
engine_checks softhsm

# A key that wants a context-specific login before every use.
p11 "softhsm: sign with a CKA_ALWAYS_AUTHENTICATE key" openssl cms -sign \
	$PROV -binary -inkey "$ALICE_AA_URI?pin-source=file:$ALICE_PIN_FILE" \
	-signer "$ALICE_AA_CERT" -in "$W/msg.txt" -out "$W/aa.p7s"
verify_default "softhsm: the always-authenticate signature verifies" \
	"$W/aa.p7s"
done_testing
