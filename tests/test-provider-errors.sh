#!/bin/sh
# Failure paths of the loadable provider: each one exits non-zero without
# a crash (exit code below 128, SoftHSM's C_Finalize at exit included) and
# puts the reason on the OpenSSL error queue, where openssl prints it.
set -u
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/fixture/fixture.sh"
. "$top_srcdir/tests/test-provider-lib.sh"

prov_setup
use_token softhsm
SERIAL=$ALICE_TOKEN_SERIAL
PIN="pin-source=file:$ALICE_PIN_FILE"

sign() {
	openssl cms -sign $PROV -binary -inkey "$1" -signer "$ALICE_RSA_CERT" \
		-in "$W/msg.txt" -out "$W/x.p7s" < /dev/null
}

p11_fails "a URI matching no key is refused, naming the keys there" \
	'p11mail:.*no matching key.*keys there: pkcs11:' \
	sign "pkcs11:serial=$SERIAL;id=%09;type=private?$PIN"
# no_secret NAME SECRET CMD...: CMD fails without a crash and gives a
# reason, and no p11mail message shows SECRET or a URI query.  openssl
# itself echoes the argument it could not load ("Could not read private
# key from ..."): only the provider's lines are the provider's to keep
# clean.  storeutl exits 0 even when it loads nothing, so the exit code
# only has to show no crash.
no_secret() {
	_name=$1
	_secret=$2
	shift 2
	"$@" > "$W/out.log" 2>&1
	_rc=$?
	grep ':p11mail:' "$W/out.log" > "$W/p11.log"
	if [ "$_rc" -ge 128 ]; then
		fail "$_name (killed by a signal: exit $_rc)"
	elif ! [ -s "$W/p11.log" ]; then
		fail "$_name (no reason given)"
		sed 's/^/#   /' "$W/out.log" | head -n 20
	elif grep -q -e "$_secret" -e '?pin' -e 'pin-value=[^*]' \
		-e 'pin-source=[^*]' "$W/p11.log"; then
		fail "$_name (the PIN or the query was printed)"
		sed 's/^/#   /' "$W/p11.log" | head -n 20
	else
		pass "$_name"
	fi
}
GOODPIN=$(cat "$ALICE_PIN_FILE")
no_secret "storeutl, URI matching nothing: its pin-value is never printed" \
	"$GOODPIN" openssl storeutl $PROV \
	"pkcs11:serial=$SERIAL;id=%77?pin-value=$GOODPIN"
no_secret "storeutl, URI matching nothing: its pin-source is never printed" \
	"$ALICE_PIN_FILE" openssl storeutl $PROV "pkcs11:serial=$SERIAL;id=%77?$PIN"
no_secret "storeutl -certs, wrong pin-value: the PIN is never printed" \
	SECRET123 openssl storeutl $PROV -certs \
	"pkcs11:serial=$SERIAL;id=%77;type=cert?pin-value=SECRET123"
no_secret "pkeyutl, key URI matching nothing: the PIN is never printed" \
	SECRET123 openssl pkeyutl -sign $PROV \
	-inkey "pkcs11:serial=$SERIAL;id=%77;type=private?pin-value=SECRET123" \
	-in "$W/msg.txt" -out "$W/x.sig"
no_secret "pkeyutl, no such key, right PIN: the PIN is never printed" \
	"$GOODPIN" openssl pkeyutl -sign $PROV \
	-inkey "pkcs11:serial=$SERIAL;id=%77;type=private?pin-value=$GOODPIN" \
	-in "$W/msg.txt" -out "$W/x.sig"
no_secret "a PIN written as a path attribute is not printed either" \
	"$GOODPIN" openssl storeutl $PROV \
	"pkcs11:serial=$SERIAL;id=%77;pin-value=$GOODPIN"
p11_fails "a URI matching several keys is refused, listing them" \
	'p11mail:.*more than one.*pkcs11:.*id=%01.*name one by id' \
	sign "pkcs11:serial=$SERIAL;type=private?$PIN"
p11_fails "a token that does not exist is reported" \
	'p11mail:' sign "pkcs11:token=no-such-token;id=%01;type=private?$PIN"
p11_fails "a wrong PIN is reported as such" \
	'p11mail:.*PIN is incorrect' sign "$ALICE_RSA_URI?pin-value=999999"
p11 "after a wrong PIN the right one still works (not locked)" \
	sign "$ALICE_RSA_URI?$PIN"
p11_fails "no PIN and no terminal: the reason says how to give one" \
	'p11mail:.*no PIN was given' sign "$ALICE_RSA_URI"
p11_fails "a missing module is named" \
	'p11mail:.*module could not be loaded.*/nonexistent/pkcs11.so' \
	env P11MAIL_MODULE=/nonexistent/pkcs11.so sh -c \
	"$(command -v openssl) cms -sign $PROV -binary -inkey '$ALICE_RSA_URI?$PIN' -signer '$ALICE_RSA_CERT' -in '$W/msg.txt' -out '$W/x.p7s'"
p11_fails "a library that is not a PKCS#11 module is refused" \
	'p11mail:' env P11MAIL_MODULE="$P11MAIL_TEST_PROVIDER_DIR/p11mail.so" \
	sh -c "$(command -v openssl) cms -sign $PROV -binary -inkey '$ALICE_RSA_URI?$PIN' -signer '$ALICE_RSA_CERT' -in '$W/msg.txt' -out '$W/x.p7s'"
p11_fails "a malformed URI is refused" 'p11mail:' \
	sign "pkcs11:serial=$SERIAL;id=%zz;type=private?$PIN"
p11_fails "a signer certificate of another key is refused" \
	'private key does not match|check_private_key' \
	openssl cms -sign $PROV -binary -inkey "$ALICE_EC_URI?$PIN" \
	-signer "$ALICE_RSA_CERT" -in "$W/msg.txt" -out "$W/x.p7s"

openssl dgst -sha256 -binary "$W/msg.txt" > "$W/hash.bin"
p11_fails "an unsupported RSA padding is refused" \
	'p11mail:.*only PKCS#1 v1.5 and PSS' \
	openssl pkeyutl -sign $PROV -inkey "$ALICE_RSA_URI?$PIN" \
	-pkeyopt rsa_padding_mode:x931 -in "$W/hash.bin" -out "$W/x.sig"
p11_fails "a PSS salt longer than the key allows is refused" \
	'p11mail:.*salt' \
	openssl pkeyutl -sign $PROV -inkey "$ALICE_RSA_URI?$PIN" \
	-pkeyopt digest:sha256 -pkeyopt rsa_padding_mode:pss \
	-pkeyopt rsa_pss_saltlen:300 -in "$W/hash.bin" -out "$W/x.sig"
p11_fails "a hash of the wrong length is refused" \
	'p11mail:.*not a SHA512 hash' \
	openssl pkeyutl -sign $PROV -inkey "$ALICE_RSA_URI?$PIN" \
	-pkeyopt digest:sha512 -in "$W/hash.bin" -out "$W/x.sig"

# Decryption with the wrong token key: one generic error, no plaintext.
openssl cms -encrypt -aes256 -in "$W/msg.txt" -out "$W/to-alice.p7m" \
	"$ALICE_RSA_CERT"
rm -f "$W/plain.txt"
p11_fails "decrypting with another token's key fails" 'Error decrypting' \
	openssl cms -decrypt $PROV -inkey "$BOB_RSA_URI?pin-source=file:$BOB_PIN_FILE" \
	-recip "$BOB_RSA_CERT" -in "$W/to-alice.p7m" -out "$W/plain.txt"
if [ -s "$W/plain.txt" ]; then
	fail "no plaintext is written after a failed decryption"
else
	pass "no plaintext is written after a failed decryption"
fi
openssl pkeyutl -encrypt -certin -inkey "$ALICE_RSA_CERT" \
	-in "$W/hash.bin" -out "$W/ct.bin"
head -c 255 "$W/ct.bin" > "$W/short.bin"
printf 'x' >> "$W/short.bin"
p11_fails "a corrupted RSA ciphertext gives the generic decryption error" \
	'p11mail:.*decryption failed' \
	openssl pkeyutl -decrypt $PROV -inkey "$ALICE_RSA_URI?$PIN" \
	-in "$W/short.bin" -out "$W/x.bin"

# Raw RSA would hand the padded block to the caller and let PKCS#1 v1.5
# unpadding happen in software: the provider refuses it.
rm -f "$W/raw.bin"
p11_fails "decryption without padding is refused with the reason" \
	'p11mail:.*(PKCS#1 v1.5 and OAEP|no padding)' \
	openssl pkeyutl -decrypt $PROV -inkey "$ALICE_RSA_URI?$PIN" \
	-pkeyopt rsa_padding_mode:none -in "$W/ct.bin" -out "$W/raw.bin"
if [ -s "$W/raw.bin" ]; then
	fail "no raw RSA output is written"
else
	pass "no raw RSA output is written"
fi

# The module is loaded but nothing asks for a token: no trouble at exit.
p11 "loading the provider without using it exits cleanly" \
	openssl list $PROV -providers
if grep -q 'p11mail' "$W/out.log"; then
	pass "openssl list shows the provider"
else
	fail "openssl list shows the provider"
fi
done_testing
