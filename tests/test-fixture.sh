#!/bin/sh
# The test fixture itself: every good certificate verifies for S/MIME, every
# bad one fails for its own reason, the tokens hold the keys and certificates
# the variables promise, and nothing is left behind.
set -u
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/fixture/fixture.sh"

require_cmd openssl openssl
require_cmd pkcs11-tool opensc
require_cmd certutil libnss3-tools
require_cmd softhsm2-util softhsm2

# A snapshot of the system token directory, compared at the end.
sys_tokens() {
	ls -laR --time-style=full-iso /var/lib/softhsm/tokens 2>&1 || :
}
sys_before=$(sys_tokens)

t0=$(date +%s%N)
fixture_setup
t1=$(date +%s%N)
diag "fixture built in $(((t1 - t0) / 1000000)) ms"

scratch=$P11MAIL_FIXTURE_DIR/test-scratch
mkdir -p "$scratch"

# ---- every variable is set, every file exists ----------------------------
missing=
for v in P11MAIL_FIXTURE_DIR SOFTHSM2_CONF SOFTHSM_MODULE NSS_MODULE \
	NSS_DB_DIR NSS_INIT_ARGS ALICE_TOKEN_LABEL ALICE_TOKEN_SERIAL \
	ALICE_PIN ALICE_SO_PIN ALICE_PIN_FILE BOB_TOKEN_LABEL \
	BOB_TOKEN_SERIAL BOB_PIN BOB_SO_PIN BOB_PIN_FILE ALICE_RSA_URI \
	ALICE_EC_URI ALICE_AA_URI BOB_RSA_URI BOB_EC_URI CA_CERT CA_KEY \
	NSS_TOKEN_LABEL NSS_PIN NSS_PIN_FILE NSS_RSA_URI NSS_EC_URI \
	NSS_RSA_CERT NSS_EC_CERT DAVE_CERT DAVE_KEY EVE_CERT EVE_KEY \
	BAD_NOTCA_ISSUER_CERT; do
	eval "val=\${$v:-}"
	[ -n "$val" ] || missing="$missing $v"
done
for b in EXPIRED NOTYET EKU NOKE DNONLY RSA1024 SELFSIGNED NOTCA; do
	for s in CERT KEY; do
		eval "val=\${BAD_${b}_$s:-}"
		if [ -z "$val" ] || [ ! -s "$val" ]; then
			missing="$missing BAD_${b}_$s"
		fi
	done
done
if [ -z "$missing" ]; then pass "every fixture variable is set"
else fail "fixture variables missing or empty:$missing"; fi

[ "$ALICE_PIN" != "$BOB_PIN" ] && [ "$ALICE_SO_PIN" != "$BOB_SO_PIN" ] &&
	pass "PINs differ per token" || fail "PINs differ per token"

pinfile_ok() {
	[ "$(stat -c %a "$1")" = 600 ] && [ "$(cat "$1")" = "$2" ] &&
		[ "$(wc -c < "$1")" -eq "${#2}" ]
}
for who in ALICE BOB NSS; do
	eval "f=\$${who}_PIN_FILE p=\$${who}_PIN"
	check "$who pin file is 0600 and holds the PIN without newline" \
		pinfile_ok "$f" "$p"
done

grep -q "^directories.tokendir = $P11MAIL_FIXTURE_DIR/" "$SOFTHSM2_CONF" &&
	pass "SoftHSM2 token dir is private" ||
	fail "SoftHSM2 token dir is private"

# ---- certificates -----------------------------------------------------------
# vfy CERT [openssl verify options]: verification output, exit status kept.
vfy() {
	_c=$1; shift
	openssl verify -CAfile "$CA_CERT" "$@" "$_c" 2>&1
}

# good_cert NAME CERT ADDR rsa|ec: a valid S/MIME certificate for ADDR.
good_cert() {
	check "$1 verifies for smimesign" \
		vfy "$2" -purpose smimesign -auth_level 2
	if [ "$4" = rsa ]; then
		check "$1 verifies for smimeencrypt" \
			vfy "$2" -purpose smimeencrypt -auth_level 2
		ku='Digital Signature, Key Encipherment'
	else
		# OpenSSL 3.0's smimeencrypt purpose demands
		# keyEncipherment even for EC keys, which use keyAgreement.
		out=$(vfy "$2" -purpose smimeencrypt)
		case $out in
		*"unsuitable certificate purpose"*)
			pass "$1 (EC): only openssl's smimeencrypt refuses" ;;
		*) fail "$1 (EC) smimeencrypt: $out" ;;
		esac
		ku='Digital Signature, Key Agreement'
	fi
	txt=$(openssl x509 -in "$2" -noout -text)
	ok=1
	for want in "email:$3" "$ku" "E-mail Protection" "CA:FALSE" \
		"Subject Key Identifier" "Authority Key Identifier"; do
		case $txt in
		*"$want"*) ;;
		*) ok=0; diag "$1: no '$want'" ;;
		esac
	done
	[ $ok = 1 ] && pass "$1 has the S/MIME profile for $3" ||
		fail "$1 has the S/MIME profile for $3"
}

good_cert ALICE_RSA_CERT "$ALICE_RSA_CERT" alice@north-clinic.test rsa
good_cert ALICE_EC_CERT "$ALICE_EC_CERT" alice@north-clinic.test ec
good_cert ALICE_AA_CERT "$ALICE_AA_CERT" alice@north-clinic.test rsa
good_cert BOB_RSA_CERT "$BOB_RSA_CERT" bob@south-lab.test rsa
good_cert BOB_EC_CERT "$BOB_EC_CERT" bob@south-lab.test ec
good_cert NSS_RSA_CERT "$NSS_RSA_CERT" carol@east-clinic.test rsa
good_cert NSS_EC_CERT "$NSS_EC_CERT" carol@east-clinic.test ec
good_cert DAVE_CERT "$DAVE_CERT" dave@north-clinic.test rsa
good_cert EVE_CERT "$EVE_CERT" eve@south-lab.test ec

# bad_cert NAME PATTERN OPTIONS...: verification fails with PATTERN.
bad_cert() {
	_n=$1 _p=$2; shift 2
	if _o=$(vfy "$@"); then
		fail "$_n is refused (it verified)"
	else
		case $_o in
		*$_p*) pass "$_n is refused: $_p" ;;
		*) fail "$_n is refused: $_p"
		   printf '%s\n' "$_o" | sed 's/^/#   /' ;;
		esac
	fi
}

bad_cert BAD_EXPIRED "certificate has expired" "$BAD_EXPIRED_CERT"
bad_cert BAD_NOTYET "certificate is not yet valid" "$BAD_NOTYET_CERT"
bad_cert BAD_EKU/sign "unsuitable certificate purpose" "$BAD_EKU_CERT" \
	-purpose smimesign
bad_cert BAD_EKU/encrypt "unsuitable certificate purpose" "$BAD_EKU_CERT" \
	-purpose smimeencrypt
check "BAD_EKU chains to the CA (EKU is its only defect)" vfy "$BAD_EKU_CERT"
openssl x509 -in "$BAD_EKU_CERT" -noout -ext extendedKeyUsage |
	grep -qx ' *Code Signing' && pass "BAD_EKU has codeSigning only" ||
	fail "BAD_EKU has codeSigning only"

check "BAD_NOKE verifies for smimesign" vfy "$BAD_NOKE_CERT" \
	-purpose smimesign
bad_cert BAD_NOKE/encrypt "unsuitable certificate purpose" \
	"$BAD_NOKE_CERT" -purpose smimeencrypt
openssl x509 -in "$BAD_NOKE_CERT" -noout -ext keyUsage |
	grep -qx ' *Digital Signature' &&
	openssl x509 -in "$BAD_NOKE_CERT" -noout -text |
	grep -q 'Public-Key: (2048 bit)' &&
	pass "BAD_NOKE is RSA with digitalSignature only" ||
	fail "BAD_NOKE is RSA with digitalSignature only"

check "BAD_DNONLY verifies for smimesign" vfy "$BAD_DNONLY_CERT" \
	-purpose smimesign -auth_level 2
check "BAD_DNONLY verifies for smimeencrypt" vfy "$BAD_DNONLY_CERT" \
	-purpose smimeencrypt -auth_level 2
if [ -z "$(openssl x509 -in "$BAD_DNONLY_CERT" -noout \
	-ext subjectAltName 2>/dev/null)" ] &&
	openssl x509 -in "$BAD_DNONLY_CERT" -noout -subject |
	grep -q 'emailAddress = dnonly@north-clinic.test'; then
	pass "BAD_DNONLY has its address only in the DN"
else
	fail "BAD_DNONLY has its address only in the DN"
fi

check "BAD_RSA1024 passes at the default security level" \
	vfy "$BAD_RSA1024_CERT" -purpose smimesign
bad_cert BAD_RSA1024 "key too weak" "$BAD_RSA1024_CERT" -auth_level 2
openssl x509 -in "$BAD_RSA1024_CERT" -noout -text |
	grep -q 'Public-Key: (1024 bit)' && pass "BAD_RSA1024 is 1024 bits" ||
	fail "BAD_RSA1024 is 1024 bits"

bad_cert BAD_SELFSIGNED "self-signed certificate" "$BAD_SELFSIGNED_CERT"
[ "$(openssl x509 -in "$BAD_SELFSIGNED_CERT" -noout -subject)" = \
	"$(openssl x509 -in "$BAD_SELFSIGNED_CERT" -noout -issuer |
	sed 's/^issuer/subject/')" ] &&
	pass "BAD_SELFSIGNED is its own issuer" ||
	fail "BAD_SELFSIGNED is its own issuer"

bad_cert BAD_NOTCA "invalid CA certificate" "$BAD_NOTCA_CERT" \
	-untrusted "$BAD_NOTCA_ISSUER_CERT"
check "BAD_NOTCA_ISSUER itself chains to the CA" \
	vfy "$BAD_NOTCA_ISSUER_CERT"

# Each software certificate belongs with its key, in the test domains.
pub_of_cert() { openssl x509 -in "$1" -noout -pubkey; }
pub_of_key() { openssl pkey -in "$1" -pubout; }
mismatch=
for id in DAVE EVE BAD_EXPIRED BAD_NOTYET BAD_EKU BAD_NOKE BAD_DNONLY \
	BAD_RSA1024 BAD_SELFSIGNED BAD_NOTCA; do
	eval "c=\$${id}_CERT k=\$${id}_KEY"
	[ "$(pub_of_cert "$c")" = "$(pub_of_key "$k")" ] ||
		mismatch="$mismatch $id"
	openssl x509 -in "$c" -noout -subject |
		grep -Eq '@(north-clinic|south-lab|east-clinic)\.test' ||
		mismatch="$mismatch $id(domain)"
done
[ -z "$mismatch" ] && pass "software certificates match their keys" ||
	fail "software certificates match their keys:$mismatch"

# ---- SoftHSM2 tokens --------------------------------------------------------
p11() { pkcs11-tool --module "$SOFTHSM_MODULE" "$@"; }

for who in ALICE BOB; do
	eval "label=\$${who}_TOKEN_LABEL serial=\$${who}_TOKEN_SERIAL"
	p11 -L 2>/dev/null | awk -v l="$label" -v s="$serial" '
		/token label/ { lab = $NF }
		/serial num/ { if (lab == l && $NF == s) found = 1 }
		END { exit !found }' &&
		pass "$label is listed with serial $serial" ||
		fail "$label is listed with serial $serial"
done

# objects LABEL PIN: "class id label [always-auth]" for every object.
objects() {
	p11 --token-label "$1" --login --pin "$2" -O 2>/dev/null | awk '
		function flush() {
			if (cls != "") print cls, id, lab, aa
			cls = ""; id = ""; lab = ""; aa = ""
		}
		/^Private Key Object/ { flush(); cls = "priv" }
		/^Public Key Object/ { flush(); cls = "pub" }
		/^Certificate Object/ { flush(); cls = "cert" }
		/label:/ { lab = $2 }
		/ID:/ { id = $2 }
		/Access:.*always authenticate/ { aa = "always-auth" }
		END { flush() }' | sed 's/ *$//' | sort
}

expect_alice="cert 01 alice-rsa
cert 02 alice-ec
cert 03 alice-always-auth
priv 01 alice-rsa
priv 02 alice-ec
priv 03 alice-always-auth always-auth
pub 01 alice-rsa
pub 02 alice-ec
pub 03 alice-always-auth"
expect_bob="cert 01 bob-rsa
cert 02 bob-ec
priv 01 bob-rsa
priv 02 bob-ec
pub 01 bob-rsa
pub 02 bob-ec"
got=$(objects "$ALICE_TOKEN_LABEL" "$ALICE_PIN")
[ "$got" = "$(printf '%s\n' "$expect_alice" | sort)" ] &&
	pass "alice-token holds its three key pairs and certificates" || {
	fail "alice-token holds its three key pairs and certificates"
	printf '%s\n' "$got" | sed 's/^/#   got: /'
}
got=$(objects "$BOB_TOKEN_LABEL" "$BOB_PIN")
[ "$got" = "$(printf '%s\n' "$expect_bob" | sort)" ] &&
	pass "bob-token holds its two key pairs and certificates" || {
	fail "bob-token holds its two key pairs and certificates"
	printf '%s\n' "$got" | sed 's/^/#   got: /'
}

p11 --token-label "$ALICE_TOKEN_LABEL" --login --pin "$ALICE_PIN" -O \
	--type privkey 2>/dev/null | grep -c 'never extractable' |
	grep -qx 3 && pass "alice's private keys are never extractable" ||
	fail "alice's private keys are never extractable"

check_fails "alice-token refuses bob's PIN" \
	p11 --token-label "$ALICE_TOKEN_LABEL" --login --pin "$BOB_PIN" -O

# token_pair NAME LABEL ID CERT: the certificate file, the certificate on the
# token and the token's public key all agree.
token_pair() {
	p11 --token-label "$2" --read-object --type pubkey --id "$3" \
		-o "$scratch/$1.pub.der" >/dev/null 2>&1 &&
		p11 --token-label "$2" --read-object --type cert --id "$3" \
			-o "$scratch/$1.crt.der" >/dev/null 2>&1 || {
		fail "$1: cannot read the token objects"
		return
	}
	a=$(openssl pkey -pubin -inform DER -in "$scratch/$1.pub.der" \
		-outform DER | od -An -tx1 | tr -d ' \n')
	b=$(openssl x509 -in "$4" -noout -pubkey | openssl pkey -pubin \
		-outform DER | od -An -tx1 | tr -d ' \n')
	c=$(od -An -tx1 "$scratch/$1.crt.der" | tr -d ' \n')
	d=$(openssl x509 -in "$4" -outform DER | od -An -tx1 | tr -d ' \n')
	[ -n "$a" ] && [ "$a" = "$b" ] && [ "$c" = "$d" ] &&
		pass "$1: token key, token certificate and $4 agree" ||
		fail "$1: token key, token certificate and certificate agree"
}
token_pair alice-rsa "$ALICE_TOKEN_LABEL" 01 "$ALICE_RSA_CERT"
token_pair alice-ec "$ALICE_TOKEN_LABEL" 02 "$ALICE_EC_CERT"
token_pair alice-aa "$ALICE_TOKEN_LABEL" 03 "$ALICE_AA_CERT"
token_pair bob-rsa "$BOB_TOKEN_LABEL" 01 "$BOB_RSA_CERT"
token_pair bob-ec "$BOB_TOKEN_LABEL" 02 "$BOB_EC_CERT"

uri_ok() {
	case $1 in
	"pkcs11:serial=$2;id=%$3;type=private") return 0 ;;
	esac
	return 1
}
check "ALICE_RSA_URI names serial and id 01" \
	uri_ok "$ALICE_RSA_URI" "$ALICE_TOKEN_SERIAL" 01
check "ALICE_EC_URI names serial and id 02" \
	uri_ok "$ALICE_EC_URI" "$ALICE_TOKEN_SERIAL" 02
check "ALICE_AA_URI names serial and id 03" \
	uri_ok "$ALICE_AA_URI" "$ALICE_TOKEN_SERIAL" 03
check "BOB_RSA_URI names serial and id 01" \
	uri_ok "$BOB_RSA_URI" "$BOB_TOKEN_SERIAL" 01
check "BOB_EC_URI names serial and id 02" \
	uri_ok "$BOB_EC_URI" "$BOB_TOKEN_SERIAL" 02

# The URIs with a pin-source work in libp11's ENGINE, the peer every p11mail
# URI must satisfy: sign with the token key, verify with the certificate.
engine_so=/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so
# engine_sign URI CERT [MODULE [INIT_ARGS]]
engine_sign() {
	cat > "$scratch/engine.cnf" <<EOF
openssl_conf = conf
[conf]
engines = engines
[engines]
pkcs11 = pkcs11
[pkcs11]
engine_id = pkcs11
dynamic_path = $engine_so
MODULE_PATH = ${3:-$SOFTHSM_MODULE}
${4:+INIT_ARGS = $4}
init = 0
EOF
	printf 'fixture engine check\n' > "$scratch/msg"
	OPENSSL_CONF=$scratch/engine.cnf openssl cms -sign -binary \
		-engine pkcs11 -keyform engine -inkey "$1" -signer "$2" \
		-in "$scratch/msg" -outform DER -out "$scratch/sig.der" \
		-nodetach 2>&1 &&
		openssl cms -verify -binary -inform DER -in "$scratch/sig.der" \
			-CAfile "$CA_CERT" -purpose any -out /dev/null 2>&1
}
if [ -f "$engine_so" ]; then
	check "libp11 signs with ALICE_RSA_URI?pin-source" engine_sign \
		"$ALICE_RSA_URI?pin-source=file:$ALICE_PIN_FILE" \
		"$ALICE_RSA_CERT"
	check "libp11 signs with BOB_EC_URI?pin-source" engine_sign \
		"$BOB_EC_URI?pin-source=file:$BOB_PIN_FILE" "$BOB_EC_CERT"
else
	skip "libp11 signs with the URIs" "libengine-pkcs11-openssl missing"
	skip "libp11 signs with the EC URI" "libengine-pkcs11-openssl missing"
fi

# ---- NSS softokn ------------------------------------------------------------
nss_keys=$(certutil -K -d "sql:$NSS_DB_DIR" -f "$NSS_PIN_FILE" 2>&1)
printf '%s\n' "$nss_keys" | grep -q 'rsa .*carol-rsa$' &&
	printf '%s\n' "$nss_keys" | grep -q 'ec .*carol-ec$' &&
	pass "NSS token holds carol's RSA and EC keys" ||
	fail "NSS token holds carol's RSA and EC keys"

printf 'wrong-password' > "$scratch/wrong-pw"
check_fails "NSS token refuses a wrong password" \
	certutil -K -d "sql:$NSS_DB_DIR" -f "$scratch/wrong-pw"

for nick in carol-rsa carol-ec; do
	case $nick in
	carol-rsa) f=$NSS_RSA_CERT ;;
	*) f=$NSS_EC_CERT ;;
	esac
	certutil -L -d "sql:$NSS_DB_DIR" -n "$nick" -a 2>/dev/null |
		openssl x509 -outform DER > "$scratch/$nick.db.der" 2>/dev/null
	openssl x509 -in "$f" -outform DER > "$scratch/$nick.file.der"
	cmp -s "$scratch/$nick.db.der" "$scratch/$nick.file.der" &&
		pass "NSS database holds $nick equal to its PEM file" ||
		fail "NSS database holds $nick equal to its PEM file"
done

# softokn's CKA_ID is the SHA-1 of the public value (RSA modulus, EC point):
# the id in each URI therefore proves the key matches the certificate.
uri_id() { printf '%s' "$1" | sed 's/.*;id=//; s/;.*//; s/%//g'; }
unhex() { perl -ne 'chomp; print pack("H*", $_)'; }
rsa_id=$(openssl x509 -in "$NSS_RSA_CERT" -noout -modulus |
	sed 's/^Modulus=//' | unhex | sha1sum | cut -c1-40)
ec_id=$(openssl x509 -in "$NSS_EC_CERT" -noout -pubkey |
	openssl pkey -pubin -outform DER | tail -c 65 | sha1sum | cut -c1-40)
[ "$(uri_id "$NSS_RSA_URI")" = "$rsa_id" ] &&
	pass "NSS_RSA_URI id is the certificate's key" ||
	fail "NSS_RSA_URI id is the certificate's key"
[ "$(uri_id "$NSS_EC_URI")" = "$ec_id" ] &&
	pass "NSS_EC_URI id is the certificate's key" ||
	fail "NSS_EC_URI id is the certificate's key"
nss_prefix="pkcs11:token=NSS%20Certificate%20DB;serial=0000000000000000"
case $NSS_RSA_URI in
"$nss_prefix;id=%"*";type=private")
	pass "NSS_RSA_URI names token, serial and id" ;;
*) fail "NSS_RSA_URI names token, serial and id: $NSS_RSA_URI" ;;
esac
case $NSS_INIT_ARGS in
"configdir='sql:$NSS_DB_DIR' "*) pass "NSS_INIT_ARGS names the database" ;;
*) fail "NSS_INIT_ARGS names the database: $NSS_INIT_ARGS" ;;
esac
# The NSS URIs, with NSS_INIT_ARGS and the database password, sign through
# libp11's ENGINE, which checks that the key matches the certificate.
if [ -f "$engine_so" ]; then
	check "libp11 signs with NSS_RSA_URI and NSS_INIT_ARGS" engine_sign \
		"$NSS_RSA_URI?pin-source=file:$NSS_PIN_FILE" "$NSS_RSA_CERT" \
		"$NSS_MODULE" "$NSS_INIT_ARGS"
	check "libp11 signs with NSS_EC_URI and NSS_INIT_ARGS" engine_sign \
		"$NSS_EC_URI?pin-source=file:$NSS_PIN_FILE" "$NSS_EC_CERT" \
		"$NSS_MODULE" "$NSS_INIT_ARGS"
else
	skip "libp11 signs with NSS_RSA_URI" "libengine-pkcs11-openssl missing"
	skip "libp11 signs with NSS_EC_URI" "libengine-pkcs11-openssl missing"
fi

# ---- failure paths of make-fixture.sh -------------------------------------
script=$top_srcdir/tests/fixture/make-fixture.sh
check_fails "make-fixture.sh refuses a directory that holds a fixture" \
	sh "$script" "$P11MAIL_FIXTURE_DIR"
mkdir -p "$scratch/bin"
for t in softhsm2-util pkcs11-tool openssl; do
	ln -s "$(command -v "$t")" "$scratch/bin/$t"
done
out=$(PATH=$scratch/bin /bin/sh "$script" "$scratch/nocertutil" 2>&1)
rc=$?
[ "$rc" = 77 ] && case $out in *"apt-get install libnss3-tools"*) true ;;
	*) false ;; esac &&
	pass "a missing certutil exits 77 naming libnss3-tools" ||
	fail "a missing certutil exits 77 naming libnss3-tools (rc=$rc: $out)"

# ---- cleanup leaves nothing behind ----------------------------------------
# A child test builds its own fixture, starts two processes (one tracked,
# one recorded in the pids file) and exits; everything must be gone.
marker=$scratch/hook-ran
child_out=$(
	marker=$marker sh -c '
		. "$top_srcdir/tests/tap.sh"
		. "$top_srcdir/tests/fixture/fixture.sh"
		fixture_setup
		fixture_at_exit \
			"test -d \"\$P11MAIL_FIXTURE_DIR\" && touch \"$marker\""
		sleep 300 >/dev/null 2>&1 & fixture_track_pid $!
		echo "tracked $!"
		sleep 301 >/dev/null 2>&1 &
		echo $! >> "$P11MAIL_FIXTURE_DIR/pids"
		echo "recorded $!"
		echo "dir $P11MAIL_FIXTURE_DIR"
		exit 3
	' 2>&1
)
child_rc=$?
child_dir=$(printf '%s\n' "$child_out" | sed -n 's/^dir //p')
child_pids=$(printf '%s\n' "$child_out" |
	sed -n 's/^tracked //p; s/^recorded //p')
[ "$child_rc" = 3 ] && pass "the cleanup keeps the test's exit status" ||
	fail "the cleanup keeps the test's exit status (got $child_rc)"
[ -n "$child_dir" ] && [ ! -e "$child_dir" ] &&
	pass "the fixture directory is gone after exit" ||
	fail "the fixture directory is gone after exit ($child_out)"
alive=
for p in $child_pids; do
	kill -0 "$p" 2>/dev/null && alive="$alive $p"
done
[ -n "$child_pids" ] && [ -z "$alive" ] &&
	pass "processes the fixture was given are stopped" ||
	fail "processes the fixture was given are stopped:$alive"
for p in $alive; do kill "$p" 2>/dev/null; done
[ -f "$marker" ] &&
	pass "fixture_at_exit hooks run before the directory goes" ||
	fail "fixture_at_exit hooks run before the directory goes"

fixture_cleanup
dir=$P11MAIL_FIXTURE_DIR
[ ! -e "$dir" ] && pass "fixture_cleanup removes the directory" ||
	fail "fixture_cleanup removes the directory"
[ "$(sys_tokens)" = "$sys_before" ] &&
	pass "/var/lib/softhsm/tokens is unchanged" ||
	fail "/var/lib/softhsm/tokens is unchanged"

done_testing
