#!/bin/sh
# The URIs the token core writes work with libp11's ENGINE: openssl
# pkeyutl signs through the ENGINE with the canonical URI, and the
# signature verifies against the key's certificate.
set -u
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/fixture/fixture.sh"
require_cmd openssl openssl
ENGINE_SO=/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so
[ -f "$ENGINE_SO" ] ||
	skip_all "libp11's ENGINE not found (apt-get install libengine-pkcs11-openssl)"
fixture_setup
work=$P11MAIL_FIXTURE_DIR/engine
mkdir -p "$work"

cat > "$work/openssl.cnf" <<CNF
openssl_conf = init
[init]
engines = engines
[engines]
pkcs11 = pkcs11_section
[pkcs11_section]
engine_id = pkcs11
dynamic_path = $ENGINE_SO
MODULE_PATH = $SOFTHSM_MODULE
init = 0
CNF

printf 'signed through the ENGINE' |
	openssl dgst -sha256 -binary > "$work/hash"

# engine_sign NAME URI CERT: signs with the ENGINE, verifies with openssl.
engine_sign() {
	canon=$("$top_builddir/tests/token-print" \
		"$2?pin-source=file:$ALICE_PIN_FILE" "$SOFTHSM_MODULE" 2>&1)
	case $canon in
	"pkcs11:"*"serial=$ALICE_TOKEN_SERIAL"*"id=%"*) pass "$1: canonical URI" ;;
	*) fail "$1: canonical URI"; echo "# $canon"; return ;;
	esac
	rm -f "$work/sig"
	check "$1: openssl pkeyutl -sign through libp11's ENGINE" \
		env OPENSSL_CONF="$work/openssl.cnf" openssl pkeyutl -sign \
		-engine pkcs11 -keyform engine \
		-inkey "$canon?pin-value=$ALICE_PIN" \
		-in "$work/hash" -out "$work/sig" -pkeyopt digest:sha256
	check "$1: the signature verifies against the certificate" \
		openssl pkeyutl -verify -certin -inkey "$3" -in "$work/hash" \
		-sigfile "$work/sig" -pkeyopt digest:sha256
	printf 'x' >> "$work/hash.bad"
	cat "$work/hash" >> "$work/hash.bad"
	check_fails "$1: and not against other data" \
		openssl pkeyutl -verify -certin -inkey "$3" \
		-in "$work/hash.bad" -sigfile "$work/sig" -pkeyopt digest:sha256
	rm -f "$work/hash.bad"
}

engine_sign rsa "$ALICE_RSA_URI" "$ALICE_RSA_CERT"
engine_sign ec "$ALICE_EC_URI" "$ALICE_EC_CERT"

check_fails "token-print refuses a URI that names no key" \
	"$top_builddir/tests/token-print" \
	"pkcs11:serial=$ALICE_TOKEN_SERIAL;id=%77?pin-value=$ALICE_PIN" \
	"$SOFTHSM_MODULE"
done_testing
