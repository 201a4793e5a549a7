# Shared steps of the provider tests; source after tap.sh and fixture.sh.
# The tests run the BUILT module from $P11MAIL_TEST_PROVIDER_DIR through
# -provider-path, with the default provider loaded first (see
# docs/PROVIDER.md for why the order matters to key generation).

# prov_setup: skips unless openssl and the module are there; makes $W.
prov_setup() {
	require_cmd openssl libssl-dev
	: "${P11MAIL_TEST_PROVIDER_DIR:=${top_builddir:-.}/engine/.libs}"
	[ -f "$P11MAIL_TEST_PROVIDER_DIR/p11mail.so" ] ||
		skip_all "p11mail.so not built in $P11MAIL_TEST_PROVIDER_DIR"
	fixture_setup
	W=$P11MAIL_FIXTURE_DIR/work/provider
	mkdir -p "$W"
	# The machine's openssl.cnf must not change what the tests see.
	: > "$W/empty.cnf"
	OPENSSL_CONF=$W/empty.cnf
	export OPENSSL_CONF
	PROV="-provider-path $P11MAIL_TEST_PROVIDER_DIR -provider default -provider p11mail"
	printf 'a message for the token\r\nsecond line\r\n' > "$W/msg.txt"
}

# use_token softhsm|nss: the module and the keys the next checks use.
use_token() {
	case $1 in
	softhsm)
		P11MAIL_MODULE=$SOFTHSM_MODULE
		P11MAIL_INIT_ARGS=
		T_PIN_FILE=$ALICE_PIN_FILE
		T_RSA_URI=$ALICE_RSA_URI
		T_EC_URI=$ALICE_EC_URI
		T_RSA_CERT=$ALICE_RSA_CERT
		T_EC_CERT=$ALICE_EC_CERT
		;;
	nss)
		P11MAIL_MODULE=$NSS_MODULE
		P11MAIL_INIT_ARGS=$NSS_INIT_ARGS
		T_PIN_FILE=$NSS_PIN_FILE
		T_RSA_URI=$NSS_RSA_URI
		T_EC_URI=$NSS_EC_URI
		T_RSA_CERT=$NSS_RSA_CERT
		T_EC_CERT=$NSS_EC_CERT
		;;
	esac
	export P11MAIL_MODULE P11MAIL_INIT_ARGS
	T_RSA_KEY="$T_RSA_URI?pin-source=file:$T_PIN_FILE"
	T_EC_KEY="$T_EC_URI?pin-source=file:$T_PIN_FILE"
}

# p11 NAME CMD...: runs CMD (with the provider options in it); passes on
# exit 0.  Any exit code from a signal (>= 128) fails, whatever was wanted.
p11() {
	_name=$1
	shift
	"$@" > "$W/out.log" 2>&1
	_rc=$?
	if [ "$_rc" = 0 ]; then
		pass "$_name"
	else
		fail "$_name (exit $_rc)"
		sed 's/^/#   /' "$W/out.log" | head -n 20
	fi
	return "$_rc"
}

# p11_fails NAME PATTERN CMD...: passes when CMD fails cleanly (exit code
# 1-127) and its output matches the extended regular expression PATTERN.
p11_fails() {
	_name=$1
	_pat=$2
	shift 2
	"$@" > "$W/out.log" 2>&1
	_rc=$?
	if [ "$_rc" = 0 ]; then
		fail "$_name (unexpected success)"
	elif [ "$_rc" -ge 128 ]; then
		fail "$_name (killed by a signal: exit $_rc)"
		sed 's/^/#   /' "$W/out.log" | head -n 20
	elif ! grep -E -q "$_pat" "$W/out.log"; then
		fail "$_name (no message matching /$_pat/)"
		sed 's/^/#   /' "$W/out.log" | head -n 20
	else
		pass "$_name"
	fi
}

# verify_default NAME FILE [INFORM]: checks a signature with the default
# provider alone (no p11mail) and compares the content.
verify_default() {
	_form=${3:-SMIME}
	if env -u P11MAIL_MODULE openssl cms -verify -CAfile "$CA_CERT" \
		-inform "$_form" -in "$2" -content "$W/msg.txt" -binary \
		-out "$W/verified.txt" > "$W/out.log" 2>&1 &&
	   cmp -s "$W/verified.txt" "$W/msg.txt"; then
		pass "$1"
	else
		fail "$1"
		sed 's/^/#   /' "$W/out.log" | head -n 20
	fi
}

# same_content NAME FILE: the file holds the original message.
same_content() {
	if cmp -s "$2" "$W/msg.txt"; then pass "$1"; else fail "$1"; fi
}

# gpgsm_home: an isolated gpgsm home trusting the test CA (once).
gpgsm_home() {
	[ -n "${GNUPGHOME:-}" ] && return 0
	GNUPGHOME=$P11MAIL_FIXTURE_DIR/work/gnupg
	export GNUPGHOME
	mkdir -p "$GNUPGHOME"
	chmod 700 "$GNUPGHOME"
	printf 'disable-crl-checks\ndisable-dirmngr\n' > "$GNUPGHOME/gpgsm.conf"
	gpgsm --batch --import "$CA_CERT" > /dev/null 2>&1
	_fpr=$(openssl x509 -in "$CA_CERT" -noout -fingerprint -sha1 |
		sed 's/.*=//')
	echo "$_fpr S relax" > "$GNUPGHOME/trustlist.txt"
	fixture_at_exit 'gpgconf --kill all >/dev/null 2>&1'
}

# nss_verify_db: an NSS database trusting the test CA for email (once).
nss_verify_db() {
	[ -n "${NSSV:-}" ] && return 0
	NSSV=$P11MAIL_FIXTURE_DIR/work/nss-verify
	mkdir -p "$NSSV"
	certutil -N -d "sql:$NSSV" --empty-password &&
		certutil -A -d "sql:$NSSV" -n ca -t ",C," -a -i "$CA_CERT"
}

# engine_conf: an OpenSSL configuration loading libp11's ENGINE with the
# current module (and init args).
engine_conf() {
	{
		echo 'openssl_conf = init'
		echo '[init]'
		echo 'engines = engines'
		echo '[engines]'
		echo 'pkcs11 = pkcs11'
		echo '[pkcs11]'
		echo 'engine_id = pkcs11'
		echo "dynamic_path = $ENGINE_SO"
		echo "MODULE_PATH = $P11MAIL_MODULE"
		[ -n "$P11MAIL_INIT_ARGS" ] &&
			echo "INIT_ARGS = \"$P11MAIL_INIT_ARGS\""
		echo 'init = 0'
	} > "$W/engine.cnf"
}

ENGINE_SO=/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so

# sign_checks: CMS signatures (RSA, RSA-PSS, ECDSA) by the token keys,
# verified by the default provider alone, gpgsm and NSS cmsutil.
sign_checks() {
	p11 "$1: cms -sign RSA PKCS#1 v1.5" openssl cms -sign $PROV \
		-binary -inkey "$T_RSA_KEY" -signer "$T_RSA_CERT" \
		-in "$W/msg.txt" -out "$W/rsa.p7s"
	verify_default "$1: RSA signature verifies without p11mail" \
		"$W/rsa.p7s"

	p11 "$1: cms -sign RSA-PSS" openssl cms -sign $PROV -binary \
		-inkey "$T_RSA_KEY" -signer "$T_RSA_CERT" \
		-keyopt rsa_padding_mode:pss -keyopt rsa_pss_saltlen:digest \
		-in "$W/msg.txt" -out "$W/pss.p7s"
	verify_default "$1: RSA-PSS signature verifies without p11mail" \
		"$W/pss.p7s"
	if openssl cms -cmsout -print -in "$W/pss.p7s" 2>/dev/null |
		grep -q 'rsassaPss'; then
		pass "$1: the PSS signature says rsassaPss"
	else
		fail "$1: the PSS signature says rsassaPss"
	fi

	p11 "$1: cms -sign ECDSA" openssl cms -sign $PROV -binary \
		-inkey "$T_EC_KEY" -signer "$T_EC_CERT" -in "$W/msg.txt" \
		-out "$W/ec.p7s"
	verify_default "$1: ECDSA signature verifies without p11mail" \
		"$W/ec.p7s"

	p11 "$1: detached DER signatures for the peers" sh -c "
		openssl cms -sign $PROV -binary -outform DER \
			-inkey '$T_RSA_KEY' -signer '$T_RSA_CERT' \
			-in '$W/msg.txt' -out '$W/rsa.der' &&
		openssl cms -sign $PROV -binary -outform DER \
			-inkey '$T_EC_KEY' -signer '$T_EC_CERT' \
			-in '$W/msg.txt' -out '$W/ec.der'"
	peer_verify_checks "$1"
}

peer_verify_checks() {
	if command -v gpgsm > /dev/null 2>&1; then
		gpgsm_home
		for k in rsa ec; do
			if gpgsm --batch --status-fd 1 --verify "$W/$k.der" \
				"$W/msg.txt" 2>/dev/null |
				grep -q '^\[GNUPG:\] TRUST_FULLY'; then
				pass "$1: gpgsm verifies the $k signature"
			else
				fail "$1: gpgsm verifies the $k signature"
			fi
		done
	else
		skip "$1: gpgsm verifies" "gpgsm missing (apt-get install gpgsm)"
	fi
	if command -v cmsutil > /dev/null 2>&1; then
		nss_verify_db
		for k in rsa ec; do
			if cmsutil -D -d "sql:$NSSV" -h 1 -n -i "$W/$k.der" \
				-c "$W/msg.txt" 2>&1 |
				grep -q 'signer0.status=GoodSignature'; then
				pass "$1: NSS cmsutil verifies the $k signature"
			else
				fail "$1: NSS cmsutil verifies the $k signature"
			fi
		done
	else
		skip "$1: cmsutil verifies" "cmsutil missing (apt-get install libnss3-tools)"
	fi
}

# decrypt NAME KEY CERT FILE [INFORM]: decrypts on the token and compares.
decrypt() {
	if p11 "$1" openssl cms -decrypt $PROV -inform "${5:-SMIME}" \
		-inkey "$2" -recip "$3" -in "$4" -out "$W/plain.txt"; then
		same_content "$1: the plaintext is the message" "$W/plain.txt"
	else
		fail "$1: the plaintext is the message"
	fi
}

# decrypt_checks: RSA PKCS#1 v1.5 and OAEP, and ECDH, with AES-CBC and
# AES-GCM (AuthEnvelopedData), all encrypted in software by openssl.
decrypt_checks() {
	openssl cms -encrypt -aes256 -in "$W/msg.txt" -out "$W/rsa-cbc.p7m" \
		"$T_RSA_CERT" &&
	openssl cms -encrypt -aes-256-gcm -in "$W/msg.txt" \
		-out "$W/rsa-gcm.p7m" "$T_RSA_CERT" &&
	openssl cms -encrypt -aes256 -in "$W/msg.txt" -out "$W/oaep1.p7m" \
		-recip "$T_RSA_CERT" -keyopt rsa_padding_mode:oaep &&
	openssl cms -encrypt -aes-256-gcm -in "$W/msg.txt" \
		-out "$W/oaep256.p7m" -recip "$T_RSA_CERT" \
		-keyopt rsa_padding_mode:oaep -keyopt rsa_oaep_md:sha256 &&
	openssl cms -encrypt -aes-256-gcm -in "$W/msg.txt" \
		-out "$W/ec-gcm.p7m" "$T_EC_CERT" &&
	openssl cms -encrypt -aes256 -in "$W/msg.txt" -out "$W/ec-cbc.p7m" \
		"$T_EC_CERT" || fail "$1: openssl cms -encrypt"

	if openssl cms -cmsout -print -in "$W/rsa-gcm.p7m" 2>/dev/null |
		grep -q 'id-smime-ct-authEnvelopedData'; then
		pass "$1: -aes-256-gcm makes AuthEnvelopedData"
	else
		fail "$1: -aes-256-gcm makes AuthEnvelopedData"
	fi
	decrypt "$1: decrypt RSA PKCS#1 v1.5, AES-256-CBC" "$T_RSA_KEY" \
		"$T_RSA_CERT" "$W/rsa-cbc.p7m"
	decrypt "$1: decrypt RSA PKCS#1 v1.5, AES-256-GCM" "$T_RSA_KEY" \
		"$T_RSA_CERT" "$W/rsa-gcm.p7m"
	decrypt "$1: decrypt RSA-OAEP SHA-1" "$T_RSA_KEY" "$T_RSA_CERT" \
		"$W/oaep1.p7m"
	decrypt "$1: decrypt RSA-OAEP SHA-256" "$T_RSA_KEY" "$T_RSA_CERT" \
		"$W/oaep256.p7m"
	decrypt "$1: decrypt ECDH, AES-256-GCM" "$T_EC_KEY" "$T_EC_CERT" \
		"$W/ec-gcm.p7m"
	decrypt "$1: decrypt ECDH, AES-256-CBC" "$T_EC_KEY" "$T_EC_CERT" \
		"$W/ec-cbc.p7m"
}

# peer_decrypt_checks: messages encrypted by gpgsm and NSS cmsutil (RSA:
# neither can encrypt to EC certificates).
peer_decrypt_checks() {
	if command -v gpgsm > /dev/null 2>&1; then
		gpgsm_home
		gpgsm --batch --import "$T_RSA_CERT" > /dev/null 2>&1
		_fpr=$(openssl x509 -in "$T_RSA_CERT" -noout -fingerprint \
			-sha1 | sed 's/.*=//;s/://g')
		gpgsm --batch -r "$_fpr" --encrypt -o "$W/gpgsm.p7m" \
			"$W/msg.txt" > /dev/null 2>&1
		decrypt "$1: decrypt a gpgsm message" "$T_RSA_KEY" \
			"$T_RSA_CERT" "$W/gpgsm.p7m" DER
	else
		skip "$1: decrypt a gpgsm message" "gpgsm missing"
	fi
	if command -v cmsutil > /dev/null 2>&1; then
		nss_verify_db
		certutil -A -d "sql:$NSSV" -n "recip-$1" -t ",," -a \
			-i "$T_RSA_CERT" 2>/dev/null
		cmsutil -E -d "sql:$NSSV" -r "recip-$1" -i "$W/msg.txt" \
			-o "$W/nss.p7m" > /dev/null 2>&1
		decrypt "$1: decrypt an NSS cmsutil message" "$T_RSA_KEY" \
			"$T_RSA_CERT" "$W/nss.p7m" DER
	else
		skip "$1: decrypt an NSS cmsutil message" "cmsutil missing"
	fi
}

# pubkey_matches NAME FILE CERT: the public key in a CSR is the cert's.
pubkey_matches() {
	_a=$(openssl req -in "$2" -noout -pubkey 2>/dev/null)
	_b=$(openssl x509 -in "$3" -noout -pubkey 2>/dev/null)
	if [ -n "$_a" ] && [ "$_a" = "$_b" ]; then pass "$1"; else fail "$1"; fi
}

# req_pkeyutl_checks: CSRs and raw signatures made with token keys.
req_pkeyutl_checks() {
	for k in RSA EC; do
		eval "_key=\$T_${k}_KEY _cert=\$T_${k}_CERT"
		p11 "$1: req -new with the $k token key" openssl req -new \
			$PROV -key "$_key" -subj "/CN=csr test" \
			-out "$W/$k.csr"
		p11 "$1: the $k CSR self-signature verifies" env \
			-u P11MAIL_MODULE openssl req -verify -noout \
			-in "$W/$k.csr"
		pubkey_matches "$1: the $k CSR holds the token public key" \
			"$W/$k.csr" "$_cert"
	done
	p11 "$1: req -new with RSA-PSS" openssl req -new $PROV \
		-key "$T_RSA_KEY" -sigopt rsa_padding_mode:pss \
		-sigopt rsa_pss_saltlen:32 -subj "/CN=pss" -out "$W/pss.csr"
	p11 "$1: the RSA-PSS CSR verifies" openssl req -verify -noout \
		-in "$W/pss.csr"

	openssl dgst -sha256 -binary "$W/msg.txt" > "$W/hash.bin"
	p11 "$1: pkeyutl -sign RSA" openssl pkeyutl -sign $PROV \
		-inkey "$T_RSA_KEY" -pkeyopt digest:sha256 -in "$W/hash.bin" \
		-out "$W/rsa.sig"
	p11 "$1: the pkeyutl RSA signature verifies" openssl pkeyutl \
		-verify -certin -inkey "$T_RSA_CERT" -pkeyopt digest:sha256 \
		-in "$W/hash.bin" -sigfile "$W/rsa.sig"
	p11 "$1: pkeyutl -sign RSA-PSS" openssl pkeyutl -sign $PROV \
		-inkey "$T_RSA_KEY" -pkeyopt digest:sha256 \
		-pkeyopt rsa_padding_mode:pss -pkeyopt rsa_pss_saltlen:max \
		-pkeyopt rsa_mgf1_md:sha256 -in "$W/hash.bin" \
		-out "$W/pss.sig"
	p11 "$1: the pkeyutl RSA-PSS signature verifies" openssl pkeyutl \
		-verify -certin -inkey "$T_RSA_CERT" -pkeyopt digest:sha256 \
		-pkeyopt rsa_padding_mode:pss -pkeyopt rsa_pss_saltlen:max \
		-in "$W/hash.bin" -sigfile "$W/pss.sig"
	OAEP="-pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256
		-pkeyopt rsa_mgf1_md:sha1 -pkeyopt rsa_oaep_label:70313131"
	openssl pkeyutl -encrypt -certin -inkey "$T_RSA_CERT" $OAEP \
		-in "$W/hash.bin" -out "$W/oaep-label.bin"
	p11 "$1: pkeyutl -decrypt OAEP SHA-256, MGF1 SHA-1, label" \
		openssl pkeyutl -decrypt $PROV -inkey "$T_RSA_KEY" $OAEP \
		-in "$W/oaep-label.bin" -out "$W/oaep-label.out"
	if cmp -s "$W/oaep-label.out" "$W/hash.bin"; then
		pass "$1: the OAEP plaintext is right"
	else
		fail "$1: the OAEP plaintext is right"
	fi
	p11_fails "$1: OAEP with the wrong label fails" 'decryption failed' \
		openssl pkeyutl -decrypt $PROV -inkey "$T_RSA_KEY" \
		-pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 \
		-pkeyopt rsa_mgf1_md:sha1 -pkeyopt rsa_oaep_label:70313132 \
		-in "$W/oaep-label.bin" -out "$W/oaep-label.out"
	p11 "$1: pkeyutl -sign ECDSA" openssl pkeyutl -sign $PROV \
		-inkey "$T_EC_KEY" -in "$W/hash.bin" -out "$W/ec.sig"
	p11 "$1: the pkeyutl ECDSA signature verifies" openssl pkeyutl \
		-verify -certin -inkey "$T_EC_CERT" -in "$W/hash.bin" \
		-sigfile "$W/ec.sig"
	p11 "$1: pkeyutl -verify with the token key (public part)" openssl \
		pkeyutl -verify $PROV -inkey "$T_EC_KEY" -in "$W/hash.bin" \
		-sigfile "$W/ec.sig"
	openssl dgst -sha256 -binary "$W/hash.bin" > "$W/other.bin"
	p11_fails "$1: pkeyutl -verify with the token key rejects a wrong hash" \
		'Signature Verification Failure' openssl pkeyutl -verify $PROV \
		-inkey "$T_RSA_KEY" -pkeyopt digest:sha256 \
		-in "$W/other.bin" -sigfile "$W/rsa.sig"
}

# engine_checks: the same URIs through libp11's ENGINE.
engine_checks() {
	if [ ! -f "$ENGINE_SO" ]; then
		skip "$1: libp11 ENGINE" \
			"apt-get install libengine-pkcs11-openssl"
		return 0
	fi
	engine_conf
	for k in RSA EC; do
		eval "_key=\$T_${k}_KEY _cert=\$T_${k}_CERT"
		p11 "$1: libp11 ENGINE signs with the $k URI" env \
			OPENSSL_CONF="$W/engine.cnf" openssl cms -sign -binary \
			-engine pkcs11 -keyform engine -inkey "$_key" \
			-signer "$_cert" -in "$W/msg.txt" -out "$W/eng.p7s"
		verify_default "$1: the ENGINE's $k signature verifies" \
			"$W/eng.p7s"
	done
	if p11 "$1: libp11 ENGINE decrypts with the RSA URI" env \
		OPENSSL_CONF="$W/engine.cnf" openssl cms -decrypt \
		-engine pkcs11 -keyform engine -inkey "$T_RSA_KEY" \
		-recip "$T_RSA_CERT" -in "$W/rsa-cbc.p7m" -out "$W/plain.txt"
	then
		same_content "$1: the ENGINE's plaintext is the message" \
			"$W/plain.txt"
	fi
}
