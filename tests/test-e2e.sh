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
# The fingerprint is printed as the store lists it: lowercase hex.
if [ $rc -eq 3 ] && printf '%s\n' "$out" | grep -q "fingerprint SHA-256 $FA" &&
	[ "$cmd" = "p11mail trust add $A --fingerprint $FA" ]; then
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
	p11 alice trust add --yes "$f2"
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
FK=$(fp256 "$W/carol/carol.pem")
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

# 5. The mail workstation of the north clinic (alice's token, its own
# store, no anchor yet) trusts the recipients of what it sends, but only
# with a certificate that validated.
mkdir -m 700 -p "$W/front"
mail_config alice "$W/front/p11mail.conf"
sed -i "s|^outbox = .*|outbox = $W/front/outbox|" "$W/front/p11mail.conf"
token_config front "$ALICE_PIN_FILE"
printf '[policy]\nmail-workstation = yes\n' >>"$W/front/p11mail.conf"
check "the front desk registers alice's identity" \
	ci front register --uri "$ALICE_RSA_URI"
expect "bob's reply is cached there but does not validate: N" 3 \
	"NOT trusted" p11 front read --no-prompt 1
message $A $B "from the front desk" >"$W/m5.eml"
expect "encryption to bob's unvalidated certificate is refused" 1 "$B" \
	p11 front send --sign --encrypt --ca-file "$TLS_CA" "$W/m5.eml"
if p11 front trust list "$B" 2>&1 | grep -qi "$FB"; then
	fail "an unvalidated certificate was not trusted automatically"
else
	pass "an unvalidated certificate was not trusted automatically"
fi
check "the clinic's IT adds the test CA as anchor" \
	ci front anchor add "$CA_CERT"
n=$(server_count bob)
expect "now the front desk encrypts to bob and trusts him" 0 \
	"1 recipient added to the trusted list" \
	p11 front send --sign --encrypt --ca-file "$TLS_CA" "$W/m5.eml"
expect "bob's certificate is on its trusted list" 0 "$FB" \
	p11 front trust list "$B"
check "delivered" wait_delivered bob $((n + 1))
expect "bob's own workstation, not a mail workstation, says nothing of it" \
	0 "^$" sh -c "'$P11MAIL' --config '$W/bob/p11mail.conf' --store \
	'$W/bob/store' send --sign --encrypt --ca-file '$TLS_CA' '$W/m2.eml' \
	2>&1 | grep 'added to the trusted list'; true"

# 6. Faults.  free_port: a loopback port nobody listens on.
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
DEAD=$(free_port)
printf 'wrong-password\n' >"$W/alice/badpw"
chmod 600 "$W/alice/badpw"
mail_config alice "$W/alice/down.conf" "$DEAD"
mail_config alice "$W/alice/badpw.conf" "$MAIL_SUBMISSION_PORT" \
	"$W/alice/badpw"
for f in down badpw; do
	printf '[token]\nmodule = %s\npin-source = file:%s\n' \
		"$SOFTHSM_MODULE" "$ALICE_PIN_FILE" >>"$W/alice/$f.conf"
done
as() {
	f=$1
	shift
	"$P11MAIL" --config "$W/alice/$f.conf" --store "$W/alice/store" "$@"
}
q0=$(local_count "$W/alice/outbox")
b0=$(server_count bob)
message $A $B "while smtp is down" >"$W/f1.eml"
expect "SMTP server down: a clear error naming the queue" 1 \
	"send --queue" as down send --sign --ca-file "$TLS_CA" "$W/f1.eml"
check "the message stays queued" \
	test "$(local_count "$W/alice/outbox")" -eq $((q0 + 1))
message $A $B "with a wrong password" >"$W/f2.eml"
expect "SMTP login refused: a clear error" 1 "refused the login" \
	as badpw send --sign --ca-file "$TLS_CA" "$W/f2.eml"
check "that message stays queued too" \
	test "$(local_count "$W/alice/outbox")" -eq $((q0 + 2))
expect "once the server takes them, send --queue delivers both" 0 "" \
	p11 alice send --queue --ca-file "$TLS_CA"
check "the outbox is empty again" \
	test "$(local_count "$W/alice/outbox")" -eq "$q0"
check "bob's mailbox got both" wait_delivered bob $((b0 + 2))

l0=$(local_count "$W/bob/Maildir")
mail_config bob "$W/bob/down.conf"
sed -i "s/^imap-port = .*/imap-port = $DEAD/" "$W/bob/down.conf"
expect "IMAP server down: a clear error" 1 "p11mail: .*(connect|server)" \
	"$P11MAIL" --config "$W/bob/down.conf" --store "$W/bob/store" \
	fetch --ca-file "$TLS_CA"
printf 'wrong-password\n' >"$W/bob/badpw"
chmod 600 "$W/bob/badpw"
mail_config bob "$W/bob/badpw.conf" "$MAIL_SUBMISSION_PORT" "$W/bob/badpw"
expect "IMAP login refused: a clear error" 1 "refused the login" \
	"$P11MAIL" --config "$W/bob/badpw.conf" --store "$W/bob/store" \
	fetch --ca-file "$TLS_CA"
check "nothing was lost or added locally" \
	test "$(local_count "$W/bob/Maildir")" -eq "$l0"

# Malformed messages in the server mailbox and in the local Maildir.
srv=$(server_maildir bob)
printf '\001\002 not a mail message\n\nat all\n' >"$srv/new/1.garbage.e2e"
chown nobody:nogroup "$srv/new/1.garbage.e2e" 2>/dev/null
message $A $B "after the garbage" >"$W/f3.eml"
check "alice sends a signed message after it" \
	p11 alice send --sign --ca-file "$TLS_CA" "$W/f3.eml"
check "delivered" wait_delivered bob $((b0 + 3))
expect "fetch reports the malformed message and skips it" 0 \
	"skipped IMAP message" p11 bob fetch --ca-file "$TLS_CA"
check "every other message of the server mailbox arrived" \
	test "$(local_count "$W/bob/Maildir")" -eq $(($(server_count bob) - 1))
printf 'garbage without headers\n' >"$W/bob/Maildir/new/2.garbage.local"
out=$(p11 bob inbox 2>&1)
rc=$?
if [ $rc -eq 0 ] &&
	printf '%s\n' "$out" | grep -Eq "^ *[0-9]+  S  .*after the garbage"; then
	pass "the inbox lists the good messages with their Sig"
else
	fail "the inbox lists the good messages with their Sig (status $rc)"
	diag "$out"
fi
case $out in
*2.garbage.local*) pass "the inbox names the malformed local message" ;;
*) fail "the inbox names the malformed local message"; diag "$out" ;;
esac

# Token absent at send time: the proxy module reports it removed.  The
# module is named in the configuration, as p11mail.conf(5) documents.
fixture_faulty
mail_config alice "$W/alice/faulty.conf"
printf '[token]\nmodule = %s\npin-source = file:%s\n' \
	"$P11FAULTY_MODULE" "$ALICE_PIN_FILE" >>"$W/alice/faulty.conf"
echo removed >"$P11FAULTY_CONTROL"
b0=$(server_count bob)
message $A $B "token out, module from the configuration" >"$W/f4.eml"
expect "send signs with the [token] module of the configuration" 1 \
	"token" as faulty send --sign --ca-file "$TLS_CA" "$W/f4.eml"
check "nothing reached the server" test "$(server_count bob)" -eq "$b0"
p11 alice send --queue --ca-file "$TLS_CA" >/dev/null 2>&1
wait_delivered bob $((b0 + 1)) >/dev/null
# The same fault with the module also in P11MAIL_MODULE, which the
# S/MIME layer reads, to check what happens to the message.
q0=$(local_count "$W/alice/outbox")
b0=$(server_count bob)
message $A $B "token out" >"$W/f5.eml"
out=$(P11MAIL_MODULE=$P11FAULTY_MODULE as faulty send --sign \
	--ca-file "$TLS_CA" "$W/f5.eml" 2>&1)
rc=$?
if [ $rc -eq 1 ] && printf '%s\n' "$out" | grep -qi "token"; then
	pass "token absent at send time: an error naming the token"
else
	fail "token absent at send time: an error naming the token (status $rc)"
	diag "$out"
fi
if [ "$(printf '%s\n' "$out" | wc -l)" -le 2 ]; then
	pass "the error is short, without library internals"
else
	fail "the error is short, without library internals"
	diag "$out"
fi
check "nothing reached the server" test "$(server_count bob)" -eq "$b0"
: >"$P11FAULTY_CONTROL"
if [ "$(local_count "$W/alice/outbox")" -eq $((q0 + 1)) ]; then
	pass "the message stays queued"
	expect "with the token back, send --queue sends it" 0 "" \
		env P11MAIL_MODULE="$P11FAULTY_MODULE" "$P11MAIL" \
		--config "$W/alice/faulty.conf" --store "$W/alice/store" \
		send --queue --ca-file "$TLS_CA"
	check "delivered" wait_delivered bob $((b0 + 1))
else
	fail "the message stays queued"
	skip "with the token back, send --queue sends it" "nothing was queued"
	skip "delivered" "nothing was queued"
fi

# 7. alice's certificate in bob's cache expires.  alice makes a second key
# on her token with a certificate valid for a few seconds, on a workstation
# of her own; bob's laptop (his token, a fresh store) trusts it from her
# signed message, can encrypt to her, and no longer once it has expired.
LIFE=30
mkdir -m 700 -p "$W/alice2" "$W/laptop"
mail_config alice "$W/alice2/p11mail.conf"
sed -i "s|^outbox = .*|outbox = $W/alice2/outbox|" "$W/alice2/p11mail.conf"
token_config alice2 "$ALICE_PIN_FILE"
mail_config bob "$W/laptop/p11mail.conf"
sed -i "s|^outbox = .*|outbox = $W/laptop/outbox|" "$W/laptop/p11mail.conf"
token_config laptop "$BOB_PIN_FILE"
check "bob's laptop registers his identity" \
	ci laptop register --uri "$BOB_RSA_URI"
check "alice generates a second key on her token" \
	ci alice2 keygen --address $A --label alice-short \
	--token "pkcs11:serial=$ALICE_TOKEN_SERIAL" --out "$W/alice2/a.csr"
check "the CA issues it a certificate valid for $LIFE seconds" \
	issue "$W/alice2/a.csr" "$W/alice2/a.pem" "${LIFE}s"
t_end=$(($(date +%s) + LIFE))
check "alice installs it" ci alice2 install "$W/alice2/a.pem" \
	--token "pkcs11:serial=$ALICE_TOKEN_SERIAL"
message $A $B "short-lived" >"$W/x1.eml"
n=$(server_count bob)
check "alice signs with it and sends" \
	p11 alice2 send --sign --ca-file "$TLS_CA" "$W/x1.eml"
check "delivered" wait_delivered bob $((n + 1))
f=$(grep -l "^Subject: short-lived" "$(server_maildir bob)/new/"* | head -n 1)
check "bob's laptop trusts alice from that message" \
	p11 laptop trust add --yes "$f"
message $B $A "before expiry" >"$W/x2.eml"
if [ "$(date +%s)" -lt $((t_end - 2)) ]; then
	expect "before it expires, the laptop sends encrypted to alice" 0 \
		"" p11 laptop send --sign --encrypt --ca-file "$TLS_CA" \
		"$W/x2.eml"
else
	skip "before it expires, the laptop sends encrypted to alice" \
		"the machine is too slow for a $LIFE-second certificate"
fi
while [ "$(date +%s)" -le "$t_end" ]; do sleep 1; done
expect "after it expired, encryption is refused: repeat the exchange" 1 \
	"$A.*(expired).*repeat the signed-mail exchange" \
	p11 laptop send --sign --encrypt --ca-file "$TLS_CA" "$W/x2.eml"
check "nothing was queued" test "$(local_count "$W/laptop/outbox")" -eq 0
expect "certs check reports it expired and what to do" 4 \
	"repeat the signed exchange" p11 laptop certs check

done_testing
