#!/bin/sh
# How the loadable provider gets its settings and PINs (openssl.cnf, the
# URI, OpenSSL's passphrase callback), what its STORE returns, and that
# software keys keep working with the provider loaded.
set -u
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/fixture/fixture.sh"
. "$top_srcdir/tests/test-provider-lib.sh"

prov_setup
unset P11MAIL_MODULE P11MAIL_INIT_ARGS
SO=$P11MAIL_TEST_PROVIDER_DIR/p11mail.so

# prov_cnf FILE SETTINGS...: an openssl.cnf activating default and p11mail.
prov_cnf() {
	_f=$1
	shift
	{
		echo 'openssl_conf = init'
		echo '[init]'
		echo 'providers = providers'
		echo '[providers]'
		echo 'default = default_sect'
		echo 'p11mail = p11mail_sect'
		echo '[default_sect]'
		echo 'activate = 1'
		echo '[p11mail_sect]'
		echo "module = $SO"
		for _s in "$@"; do echo "$_s"; done
		echo 'activate = 1'
	} > "$_f"
}

prov_cnf "$W/softhsm.cnf" "pkcs11-module = $SOFTHSM_MODULE" \
	"pkcs11-pin-source = file:$ALICE_PIN_FILE"
p11 "openssl.cnf gives module and PIN: sign with a bare URI" env \
	OPENSSL_CONF="$W/softhsm.cnf" openssl cms -sign -binary \
	-inkey "$ALICE_RSA_URI" -signer "$ALICE_RSA_CERT" -in "$W/msg.txt" \
	-out "$W/cnf.p7s"
verify_default "the signature verifies without p11mail" "$W/cnf.p7s"

prov_cnf "$W/nss.cnf" "pkcs11-module = $NSS_MODULE" \
	"pkcs11-init-args = \"$NSS_INIT_ARGS\""
p11 "openssl.cnf gives NSS softokn with its init args" env \
	OPENSSL_CONF="$W/nss.cnf" openssl cms -sign -binary \
	-inkey "$NSS_EC_URI?pin-source=file:$NSS_PIN_FILE" \
	-signer "$NSS_EC_CERT" -in "$W/msg.txt" -out "$W/nss.p7s"
verify_default "the NSS signature verifies without p11mail" "$W/nss.p7s"

p11 "module-path in the URI needs no other setting" openssl cms -sign \
	$PROV -binary -inkey \
	"$ALICE_EC_URI?module-path=$SOFTHSM_MODULE&pin-source=file:$ALICE_PIN_FILE" \
	-signer "$ALICE_EC_CERT" -in "$W/msg.txt" -out "$W/mp.p7s"
verify_default "the module-path signature verifies" "$W/mp.p7s"

export P11MAIL_MODULE=$SOFTHSM_MODULE
p11 "OpenSSL's passphrase callback (-passin) gives the PIN" openssl cms \
	-sign $PROV -binary -inkey "$ALICE_RSA_URI" \
	-passin "file:$ALICE_PIN_FILE" -signer "$ALICE_RSA_CERT" \
	-in "$W/msg.txt" -out "$W/passin.p7s"
verify_default "the -passin signature verifies" "$W/passin.p7s"

# STORE: certificates by URI, and the one paired with a key.
CERT_URI="pkcs11:serial=$ALICE_TOKEN_SERIAL;id=%02;type=cert"
p11 "storeutl -certs lists the certificate a URI names" openssl storeutl \
	$PROV -certs -out "$W/ec-cert.pem" "$CERT_URI?pin-source=file:$ALICE_PIN_FILE"
if [ "$(openssl x509 -in "$W/ec-cert.pem" -noout -fingerprint 2>/dev/null)" = \
	"$(openssl x509 -in "$ALICE_EC_CERT" -noout -fingerprint)" ]; then
	pass "the certificate from the token is Alice's EC certificate"
else
	fail "the certificate from the token is Alice's EC certificate"
fi
p11 "-signer by URI: the key's certificate comes from the token" openssl \
	cms -sign $PROV -binary -inkey "$ALICE_EC_URI?pin-source=file:$ALICE_PIN_FILE" \
	-signer "$CERT_URI" -in "$W/msg.txt" -out "$W/tokcert.p7s"
verify_default "the signature with the token's certificate verifies" \
	"$W/tokcert.p7s"

# The public half leaves the token, the private half never does.
p11 "pkey -pubout writes the token key's public key" openssl pkey $PROV \
	-in "$ALICE_EC_URI?pin-source=file:$ALICE_PIN_FILE" -pubout \
	-out "$W/ec-pub.pem"
if [ "$(cat "$W/ec-pub.pem")" = \
	"$(openssl x509 -in "$ALICE_EC_CERT" -noout -pubkey)" ]; then
	pass "the public key is the certificate's"
else
	fail "the public key is the certificate's"
fi
# (openssl pkey fails silently: no encoder takes a key it cannot export)
openssl pkey $PROV -in "$ALICE_RSA_URI?pin-source=file:$ALICE_PIN_FILE" \
	-out "$W/priv.pem" > /dev/null 2>&1
rc=$?
if [ "$rc" -ne 0 ] && [ "$rc" -lt 128 ]; then
	pass "pkey cannot write the private key out"
else
	fail "pkey cannot write the private key out (exit $rc)"
fi
if grep -q 'PRIVATE KEY' "$W/priv.pem" 2>/dev/null; then
	fail "no private key material was written"
else
	pass "no private key material was written"
fi

# Software keys stay with the default provider, in either load order.
for order in "default p11mail" "p11mail default"; do
	set -- $order
	P2="-provider-path $P11MAIL_TEST_PROVIDER_DIR -provider $1 -provider $2"
	for k in DAVE EVE; do
		eval "_key=\$${k}_KEY _cert=\$${k}_CERT"
		p11 "[$order] cms -sign with the software key $k" openssl cms \
			-sign $P2 -binary -inkey "$_key" -signer "$_cert" \
			-in "$W/msg.txt" -out "$W/soft.p7s"
		verify_default "[$order] the $k signature verifies" \
			"$W/soft.p7s"
		p11 "[$order] cms -encrypt to $k with the provider loaded" \
			openssl cms -encrypt $P2 -aes-256-gcm -in "$W/msg.txt" \
			-out "$W/soft.p7m" "$_cert"
		decrypt "[$order] cms -decrypt with the software key $k" \
			"$_key" "$_cert" "$W/soft.p7m"
		p11 "[$order] cms -verify with the provider loaded" openssl \
			cms -verify $P2 -CAfile "$CA_CERT" -binary \
			-in "$W/soft.p7s" -content "$W/msg.txt" -out /dev/null
	done
	p11 "[$order] token keys still sign" openssl cms -sign $P2 -binary \
		-inkey "$ALICE_RSA_URI?pin-source=file:$ALICE_PIN_FILE" \
		-signer "$ALICE_RSA_CERT" -in "$W/msg.txt" -out "$W/tok.p7s"
	verify_default "[$order] the token signature verifies" "$W/tok.p7s"
done
p11 "software key generation works with default loaded first" openssl \
	genpkey -provider-path "$P11MAIL_TEST_PROVIDER_DIR" -provider default \
	-provider p11mail -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
	-out "$W/gen.key"
p11 "a CA issues a certificate with its software key, provider loaded" \
	sh -c "openssl req -new $PROV -key '$DAVE_KEY' -subj /CN=issued \
		-out '$W/dave.csr' &&
	openssl x509 -req $PROV -in '$W/dave.csr' -CA '$CA_CERT' \
		-CAkey '$CA_KEY' -set_serial 7 -days 1 -out '$W/issued.pem' &&
	openssl verify -CAfile '$CA_CERT' '$W/issued.pem'"
done_testing
