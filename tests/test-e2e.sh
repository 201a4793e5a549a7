#!/bin/sh
# The exchange between two clinics, end to end, through a real Postfix and
# Dovecot on loopback.  Two workstations with separate stores and separate
# SoftHSM2 tokens: alice@north-clinic.test and bob@south-lab.test.  Neither
# trusts the test CA: trust comes only from the signed exchange.
#   1. alice sends signed; bob fetches, sees N, trusts alice;
#   2. bob replies signed; alice trusts bob;
#   3. alice sends encrypted; bob decrypts on his token, trusted signer;
#   4. an unknown signer: the trust command, and the prompt at a terminal;
#   5. the mail workstation trusts recipients, only validated ones;
#   6. faults: servers down or refusing the login, malformed mail, token
#      absent at send time;
#   7. alice's certificate in bob's cache expires: encryption is refused.
set -u
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/fixture/fixture.sh"
. "$top_srcdir/tests/transport-lib.sh"

fixture_setup
mail_setup

A=alice@north-clinic.test
B=bob@south-lab.test
C=carol@south-lab.test
W=$mail_work
CI="$top_builddir/src/p11mail-certinstall"
OPENSSL=${OPENSSL_BIN:-openssl}
# The servers' TLS CA; the S/MIME test CA is $CA_CERT.
TLS_CA=$MAIL_CA

ci() {
	u=$1
	shift
	"$CI" --config "$W/$u/p11mail.conf" --store "$W/$u/store" "$@"
}

# expect NAME STATUS PATTERN CMD...: CMD exits with STATUS and its output
# (stdout and stderr) matches the extended regular expression PATTERN.
expect() {
	name=$1 want=$2 pat=$3
	shift 3
	out=$("$@" 2>&1)
	rc=$?
	if [ "$rc" = "$want" ] && printf '%s\n' "$out" | grep -Eq -- "$pat"; then
		pass "$name"
	else
		fail "$name (status $rc, wanted $want)"
		diag "$out"
	fi
}

# inbox_sig USER LETTER SUBJECT: USER's inbox lists SUBJECT with that Sig.
inbox_sig() {
	out=$(p11 "$1" inbox 2>&1)
	printf '%s\n' "$out" | grep -Eq "^ *[0-9]+  $2  .*$3"
}

fp256() {
	"$OPENSSL" x509 -in "$1" -noout -fingerprint -sha256 |
		sed 's/.*=//; s/://g' | tr 'A-F' 'a-f'
}

# Each workstation: its own token, PIN file, store; no anchors at all.
token_config() {
	printf '[token]\nmodule = %s\npin-source = file:%s\n' \
		"$SOFTHSM_MODULE" "$2" >>"$W/$1/p11mail.conf"
}
token_config alice "$ALICE_PIN_FILE"
token_config bob "$BOB_PIN_FILE"
check "alice's identity is registered from her token" \
	ci alice register --uri "$ALICE_RSA_URI"
check "bob's identity is registered from his token" \
	ci bob register --uri "$BOB_RSA_URI"
FA=$(fp256 "$ALICE_RSA_CERT")
FB=$(fp256 "$BOB_RSA_CERT")

# 1. alice sends signed clear text; bob fetches, sees N and trusts alice.
message $A $B "hello from north" >"$W/m1.eml"
check "alice sends a signed message" \
	p11 alice send --sign --ca-file "$TLS_CA" "$W/m1.eml"
check "the server delivered it to bob" wait_delivered bob 1
check "bob fetches over IMAP" p11 bob -q fetch --ca-file "$TLS_CA"
if inbox_sig bob N "hello from north"; then
	pass "bob's inbox shows N: signed, signer not yet trusted"
else
	fail "bob's inbox shows N: signed, signer not yet trusted"
	diag "$out"
fi
out=$(p11 bob read --no-prompt 1 2>&1 >/dev/null)
rc=$?
cmd=$(printf '%s\n' "$out" | sed -n 's/.*to trust this signer run: //p')
FAU=$(printf '%s' "$FA" | tr 'a-f' 'A-F')
if [ $rc -eq 3 ] && printf '%s\n' "$out" | grep -q "fingerprint SHA-256 $FAU" &&
	[ "$cmd" = "p11mail trust add $A --fingerprint $FAU" ]; then
	pass "read exits 3, shows alice's fingerprint and the trust command"
else
	fail "read exits 3, shows alice's fingerprint and the trust command"
	diag "status $rc: $out"
fi
# Run the printed command as the user would, on bob's workstation.
expect "bob trusts alice with the printed command" 0 "" \
	p11 bob ${cmd#p11mail }
# Whatever became of it, the documented form must trust alice.
p11 bob trust list "$A" 2>/dev/null | grep -qi "$FA" ||
	expect "bob trusts alice with 'trust add ADDRESS FINGERPRINT'" 0 "" \
		p11 bob trust add "$A" "$FA"
if inbox_sig bob S "hello from north"; then
	pass "bob's inbox now shows S for alice's message"
else
	fail "bob's inbox now shows S for alice's message"
	diag "$out"
fi
out=$(p11 bob read --no-prompt 1 2>&1 >/dev/null)
rc=$?
if [ $rc -eq 0 ] && printf '%s\n' "$out" | grep -q "signed by $A" &&
	printf '%s\n' "$out" | grep -q "^p11mail: *trusted\$"; then
	pass "read now exits 0 and reports a trusted signer"
else
	fail "read now exits 0 and reports a trusted signer (status $rc)"
	diag "$out"
fi

# 2. bob replies signed; alice trusts him from the reply itself.
message $B $A "re: hello from north" "In-Reply-To: <m1@p11mail.test>" \
	>"$W/m2.eml"
check "bob replies signed" \
	p11 bob send --sign --ca-file "$TLS_CA" "$W/m2.eml"
check "the server delivered the reply" wait_delivered alice 1
check "alice fetches over POP3" p11 alice -q fetch --pop3 --ca-file "$TLS_CA"
if inbox_sig alice N "re: hello from north"; then
	pass "alice's inbox shows N for bob's reply"
else
	fail "alice's inbox shows N for bob's reply"
	diag "$out"
fi
expect "alice's read reports bob as not trusted" 3 "NOT trusted" \
	p11 alice read --no-prompt 1
f2=$(grep -l "^Subject: re: hello from north" "$W/alice/Maildir/"*/* | head -n 1)
expect "alice trusts bob from his signed reply" 0 "$B" \
	p11 alice trust add "$f2"
expect "alice's trusted list has bob's certificate" 0 "$FB" \
	p11 alice trust list "$B"

# 3. alice sends encrypted (and signed); bob decrypts on his token.
message $A $B "lab results" >"$W/m3.eml"
check "alice sends signed and encrypted" \
	p11 alice send --sign --encrypt --ca-file "$TLS_CA" "$W/m3.eml"
check "delivered" wait_delivered bob 2
check "the server never held the plaintext" sh -c \
	"! grep -rq 'Hello from the transport test' '$(server_maildir bob)/new/'*"
check "bob fetches" p11 bob -q fetch --ca-file "$TLS_CA"
if inbox_sig bob E ""; then
	pass "bob's inbox shows E for the encrypted message"
else
	fail "bob's inbox shows E for the encrypted message"
	diag "$out"
fi
out=$(p11 bob read --no-prompt 2 2>"$W/r3.err")
rc=$?
if [ $rc -eq 0 ] && printf '%s' "$out" | grep -q "Hello from the transport"
then
	pass "bob decrypts on his token and reads the text"
else
	fail "bob decrypts on his token and reads the text (status $rc)"
	diag "$(cat "$W/r3.err")"
fi
check "and sees it signed by alice" grep -q "signed by $A" "$W/r3.err"
check "and the signer is trusted" grep -q "^p11mail: *trusted\$" "$W/r3.err"

# issue CSR CERT SECONDS-OR-DAYS: the test CA signs CSR with the S/MIME
# profile for the address in its CN.  "Ns" ends the validity in N seconds.
issue() {
	addr=$("$OPENSSL" req -in "$1" -noout -subject | sed 's/.*CN *= *//')
	printf '%s\n' "basicConstraints=critical,CA:FALSE" \
		"keyUsage=critical,digitalSignature,keyEncipherment" \
		"extendedKeyUsage=emailProtection" \
		"subjectAltName=email:$addr" "subjectKeyIdentifier=hash" \
		"authorityKeyIdentifier=keyid" >"$W/ca-ext.cnf"
	case $3 in
	*s)
		# openssl ca takes exact dates; x509 -req only whole days.
		mkdir -p "$W/ca-db"
		: >"$W/ca-db/index.txt"
		cat >"$W/ca-db/ca.cnf" <<CNF
[ca]
default_ca = e2e
[e2e]
database = $W/ca-db/index.txt
new_certs_dir = $W/ca-db
serial = $W/ca-db/serial
default_md = sha256
policy = any
copy_extensions = none
unique_subject = no
[any]
commonName = supplied
CNF
		"$OPENSSL" rand -hex 8 >"$W/ca-db/serial"
		"$OPENSSL" ca -batch -config "$W/ca-db/ca.cnf" -notext \
			-cert "$CA_CERT" -keyfile "$CA_KEY" -in "$1" -out "$2" \
			-extfile "$W/ca-ext.cnf" \
			-startdate "$(date -u -d '-1 hour' +%Y%m%d%H%M%SZ)" \
			-enddate "$(date -u -d "+${3%s} seconds" +%Y%m%d%H%M%SZ)"
		;;
	*)
		"$OPENSSL" x509 -req -in "$1" -CA "$CA_CERT" -CAkey "$CA_KEY" \
			-set_serial "0x$("$OPENSSL" rand -hex 8)" -days "$3" \
			-extfile "$W/ca-ext.cnf" -out "$2"
		;;
	esac
}

# 4. An unknown signer: carol@south-lab.test gets a new token, generates
# her key on it, has the test CA certify it and installs it.
softhsm2-util --init-token --free --label carol-token --pin 246810 \
	--so-pin 13579135 >/dev/null ||
	fail "a third SoftHSM2 token for carol"
printf '246810' >"$W/carol/pin"
chmod 600 "$W/carol/pin"
token_config carol "$W/carol/pin"
check "carol generates a key pair on her token and a CSR" \
	ci carol keygen --address $C --token "pkcs11:token=carol-token" \
	--out "$W/carol/carol.csr"
check "the CA issues carol's certificate" \
	issue "$W/carol/carol.csr" "$W/carol/carol.pem" 365
check "carol installs it next to her key" \
	ci carol install "$W/carol/carol.pem" --token "pkcs11:token=carol-token"
K=$C
message $K $B "new lab, hello" >"$W/m4.eml"
check "carol sends signed" p11 carol send --sign --ca-file "$TLS_CA" "$W/m4.eml"
check "delivered" wait_delivered bob 3
check "bob fetches" p11 bob -q fetch --ca-file "$TLS_CA"
if inbox_sig bob N "new lab, hello"; then
	pass "bob's inbox shows N for the unknown signer"
else
	fail "bob's inbox shows N for the unknown signer"
	diag "$out"
fi
FK=$(fp256 "$W/carol/carol.pem" | tr 'a-f' 'A-F')
expect "without a terminal, read prints the exact trust command" 3 \
	"to trust this signer run: p11mail trust add $K --fingerprint $FK" \
	p11 bob read --no-prompt 3
expect "so does read without --no-prompt when stdin is not a terminal" 3 \
	"p11mail trust add $K --fingerprint $FK" sh -c \
	"'$P11MAIL' --config '$W/bob/p11mail.conf' --store '$W/bob/store' \
	read 3 </dev/null"
if command -v script >/dev/null 2>&1; then
	at_tty() {
		printf '%s\n' "$1" | script -qec "'$P11MAIL' --config \
			'$W/bob/p11mail.conf' --store '$W/bob/store' read 3" \
			/dev/null 2>&1
	}
	out=$(at_tty n)
	case $out in
	*"Trust this certificate for $K"*"$FK"*)
		pass "at a terminal read shows the fingerprint and asks" ;;
	*) fail "at a terminal read shows the fingerprint and asks"
		diag "$out" ;;
	esac
	if inbox_sig bob N "new lab, hello"; then
		pass "answering no trusts nothing"
	else
		fail "answering no trusts nothing"
		diag "$out"
	fi
	out=$(at_tty y)
	case $out in
	*"$K is now trusted"*) pass "answering yes trusts carol" ;;
	*) fail "answering yes trusts carol"; diag "$out" ;;
	esac
	if inbox_sig bob S "new lab, hello"; then
		pass "carol's message now shows S"
	else
		fail "carol's message now shows S"
		diag "$out"
	fi
else
	for t in "read asks at a terminal" "no trusts nothing" \
		"yes trusts carol" "carol's message now shows S"; do
		skip "$t" "script(1) not found (bsdutils)"
	done
fi

done_testing
