#!/bin/sh
# Signed and encrypted mail end to end, keys on SoftHSM2 tokens: bob signs
# to alice, alice's inbox shows S and reading caches bob's certificate;
# alice then encrypts (and signs) to bob, who decrypts on his token.  A
# recipient without a certificate stops --encrypt and makes --auto fall
# back to signing; a signer without an anchor shows N with the trust
# command; a tampered message shows X.
set -u
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/fixture/fixture.sh"
. "$top_srcdir/tests/transport-lib.sh"

fixture_setup
mail_setup

# sig_is LETTER TEXT: the inbox output has a message line with that Sig
# whose subject contains TEXT.
sig_is() {
	printf '%s\n' "$out" | grep -q "^ *[0-9][0-9]*  $1  .*$2"
}
A=alice@north-clinic.test
B=bob@south-lab.test
C=carol@south-lab.test
CA=$MAIL_CA
W=$mail_work
CI="$top_builddir/src/p11mail-certinstall"

# Identities on the tokens, the test CA as anchor (carol has none).
token_config() {
	printf '[token]\nmodule = %s\npin-source = file:%s\n' \
		"$SOFTHSM_MODULE" "$2" >>"$W/$1/p11mail.conf"
}
token_config alice "$ALICE_PIN_FILE"
# alice's workstation sends the clinic's mail: recipients become trusted.
printf '[policy]\nmail-workstation = yes\n' >>"$W/alice/p11mail.conf"
token_config bob "$BOB_PIN_FILE"
for u in alice bob; do
	uri=$ALICE_RSA_URI
	[ $u = bob ] && uri=$BOB_RSA_URI
	check "$u's identity registered" "$CI" --config "$W/$u/p11mail.conf" \
		--store "$W/$u/store" register --uri "$uri"
	check "$u trusts the test CA" "$CI" --config "$W/$u/p11mail.conf" \
		--store "$W/$u/store" anchor add "$CA_CERT"
done

# 1. bob signs to alice; alice sees S and caches bob's certificate.
message $B $A "signed by bob" >"$W/s1.eml"
check "bob sends signed" p11 bob send --sign --ca-file "$CA" "$W/s1.eml"
check "delivered" wait_delivered alice 1
check "alice fetches" p11 alice -q fetch --ca-file "$CA"
out=$(p11 alice inbox 2>&1)
if sig_is S "signed by bob"; then pass "inbox shows S for a trusted signer"
else fail "inbox shows S for a trusted signer"; diag "$out"; fi
out=$(p11 alice read --no-prompt 1 2>&1)
rc=$?
if [ $rc -eq 0 ] && printf '%s' "$out" | grep -q "signed by $B" &&
	printf '%s' "$out" | grep -q "trusted"; then
	pass "read reports the signer and trust"
else
	fail "read reports the signer and trust (rc=$rc)"
	diag "$out"
fi

# 2. alice encrypts and signs to bob with the certificate she cached.
message $A $B "sealed for bob" >"$W/e1.eml"
out=$(p11 alice send --sign --encrypt --ca-file "$CA" "$W/e1.eml" 2>&1)
rc=$?
if [ $rc -eq 0 ]; then pass "alice sends signed and encrypted"
else fail "alice sends signed and encrypted (rc=$rc)"; diag "$out"; fi
case $out in
*"1 recipient added to the trusted list"*)
	pass "the mail workstation trusts the recipient" ;;
*) fail "the mail workstation trusts the recipient"; diag "$out" ;;
esac
check "delivered" wait_delivered bob 1
check "the server copy does not hold the plaintext" sh -c \
	"! grep -rq 'Hello from the transport test' '$(server_maildir bob)'"
check "bob fetches" p11 bob -q fetch --ca-file "$CA"
out=$(p11 bob inbox 2>&1)
if sig_is E ""; then pass "inbox shows E for an encrypted message"
else fail "inbox shows E for an encrypted message"; diag "$out"; fi
out=$(p11 bob read --no-prompt 1 2>"$W/read.err")
rc=$?
if [ $rc -eq 0 ] && printf '%s' "$out" | grep -q "Hello from the transport"; then
	pass "bob decrypts on his token"
else
	fail "bob decrypts on his token (rc=$rc)"
	diag "$(cat "$W/read.err")"
fi
check "and sees alice's signature" grep -q "signed by $A" "$W/read.err"

# 3. No certificate for carol: --encrypt refuses, naming her; --auto signs.
n=$(local_count "$W/alice/outbox")
c0=$(server_count carol)
message $A "$B, $C" "for two" >"$W/e2.eml"
out=$(p11 alice send --encrypt --ca-file "$CA" "$W/e2.eml" 2>&1)
rc=$?
if [ $rc -eq 1 ] && printf '%s' "$out" | grep -q "$C"; then
	pass "--encrypt fails naming the recipient without a certificate"
else
	fail "--encrypt fails naming the recipient without a certificate"
	diag "$out"
fi
check "nothing was queued" test "$(local_count "$W/alice/outbox")" -eq "$n"
out=$(p11 alice send --auto --ca-file "$CA" "$W/e2.eml" 2>&1)
rc=$?
if [ $rc -eq 0 ] && printf '%s' "$out" | grep -q "NOT encrypted"; then
	pass "--auto falls back to signing, and says so"
else
	fail "--auto falls back to signing, and says so (rc=$rc)"
	diag "$out"
fi
check "carol got it" wait_delivered carol $((c0 + 1))

# 4. carol has no anchor: alice's signature is valid but not trusted.
check "carol fetches" p11 carol -q fetch --ca-file "$CA"
out=$(p11 carol inbox 2>&1)
if sig_is N "for two"; then pass "inbox shows N for a signer without an anchor"
else fail "inbox shows N for a signer without an anchor"; diag "$out"; fi
out=$(p11 carol read --no-prompt 1 </dev/null 2>&1)
rc=$?
if [ $rc -eq 3 ] &&
	printf '%s' "$out" | grep -q "p11mail trust add $A --fingerprint"; then
	pass "read exits 3 and prints the trust command"
else
	fail "read exits 3 and prints the trust command (rc=$rc)"
	diag "$out"
fi

# 5. At a terminal, read shows the fingerprint and asks; "y" trusts.
if command -v script >/dev/null 2>&1; then
	out=$(printf 'y\n' | script -qec "'$P11MAIL' --config \
		'$W/carol/p11mail.conf' --store '$W/carol/store' read 1" \
		/dev/null 2>&1)
	rc=$?
	case $out in
	*"Trust this certificate for $A"*"is now trusted"*)
		pass "read asks at a terminal and trusts on yes" ;;
	*) fail "read asks at a terminal and trusts on yes"; diag "$out" ;;
	esac
	if [ "$rc" = 0 ]; then pass "trusted at the prompt: read exits 0"
	else fail "trusted at the prompt: read exits 0 (rc=$rc)"; fi
	out=$(p11 carol inbox 2>&1)
	if sig_is S "for two"; then pass "the signer now shows S"
	else fail "the signer now shows S"; diag "$out"; fi
else
	skip "read asks at a terminal" "script not found (bsdutils)"
	skip "the signer now shows S" "script not found (bsdutils)"
	skip "trusted at the prompt: read exits 0" "script not found (bsdutils)"
fi

# 6. A tampered signed message shows X, and read exits 4.
f=$(ls "$W/carol/Maildir/new/"* | head -n 1)
sed 's/Hello from the transport test/Hello from someone else/' "$f" \
	>"$W/carol/Maildir/new/9999.tampered.test"
out=$(p11 carol inbox 2>&1)
if sig_is X "for two"; then pass "inbox shows X for a tampered message"
else fail "inbox shows X for a tampered message"; diag "$out"; fi
p11 carol read --no-prompt 9999.tampered.test >/dev/null 2>&1
check "read exits 4 for it" test $? -eq 4

# 7. A mail client's sendmail entry signs too.
a0=$(server_count alice)
message $B $A "signed through sendmail" >"$W/s2.eml"
check "sendmail --sign -t -oi" sh -c "'$P11MAIL' --config \
	'$W/bob/p11mail.conf' --store '$W/bob/store' sendmail --sign -t -oi \
	--ca-file '$CA' <'$W/s2.eml'"
check "delivered" wait_delivered alice $((a0 + 1))
check "alice fetches" p11 alice -q fetch --ca-file "$CA"
out=$(p11 alice inbox 2>&1)
if sig_is S "signed through sendmail"; then pass "it shows S"
else fail "it shows S"; diag "$out"; fi

# 8. Without the CA anchor, bob stays trusted on alice's workstation: the
# certificate auto-trust recorded is trusted on its own.
fp=$("${OPENSSL_BIN:-openssl}" x509 -in "$CA_CERT" -noout -fingerprint \
	-sha256 | sed 's/.*=//; s/://g' | tr 'A-F' 'a-f')
check "alice drops the CA anchor" "$CI" --config "$W/alice/p11mail.conf" \
	--store "$W/alice/store" anchor remove "$fp"
out=$(p11 alice inbox 2>&1)
if sig_is S "signed by bob"; then pass "bob's signature is still trusted"
else fail "bob's signature is still trusted"; diag "$out"; fi

# 9. bob's token is absent at send time: a short error names it, the
# message waits in the outbox unsigned and marked, a queue run without the
# token keeps it, and with the token back send --queue signs and sends it,
# once.  The same through sendmail.
fixture_faulty
mail_config bob "$W/bob/faulty.conf"
printf '[token]\nmodule = %s\npin-source = file:%s\n' \
	"$P11FAULTY_MODULE" "$BOB_PIN_FILE" >>"$W/bob/faulty.conf"
fq() {
	"$P11MAIL" --config "$W/bob/faulty.conf" --store "$W/bob/store" "$@"
}
q0=$(local_count "$W/bob/outbox")
a0=$(server_count alice)
echo removed >"$P11FAULTY_CONTROL"
message $B $A "held for the token" >"$W/h1.eml"
out=$(fq send --sign --ca-file "$CA" "$W/h1.eml" 2>&1)
rc=$?
want="insert the token $BOB_TOKEN_LABEL (serial $BOB_TOKEN_SERIAL) for $B"
case $rc:$out in
1:*"$want"*) pass "send without the token fails naming the token" ;;
*) fail "send without the token fails naming the token (status $rc)"
	diag "$out" ;;
esac
if [ "$(printf '%s\n' "$out" | wc -l)" -eq 2 ] &&
	printf '%s\n' "$out" | grep -q "send --queue" &&
	! printf '%s\n' "$out" | grep -Eqi "engine|shared library|dso|URI"; then
	pass "two lines: the token to insert, then the next step"
else
	fail "two lines: the token to insert, then the next step"
	diag "$out"
fi
check "the message waits in the outbox" \
	test "$(local_count "$W/bob/outbox")" -eq $((q0 + 1))
held=$(grep -l "held for the token" "$W/bob/outbox/new/"* 2>/dev/null)
check "it is marked to be signed" \
	grep -q "^X-P11mail-Envelope-Protect: sign" $held
check "and is not signed yet" sh -c "! grep -q pkcs7-signature $held"
check "nothing reached the server" test "$(server_count alice)" -eq "$a0"
out=$(fq send --queue --ca-file "$CA" 2>&1)
rc=$?
case $rc:$out in
1:*"$want"*"stays in the outbox"*)
	pass "a queue run without the token keeps it, naming the token" ;;
*) fail "a queue run without the token keeps it, naming it ($rc)"
	diag "$out" ;;
esac
if printf '%s\n' "$out" | grep -Eqi "engine|shared library|dso|URI"; then
	fail "and says nothing of the layers below"
	diag "$out"
else
	pass "and says nothing of the layers below"
fi
check "still nothing on the server" test "$(server_count alice)" -eq "$a0"
check "still queued" test "$(local_count "$W/bob/outbox")" -eq $((q0 + 1))

message $B $A "held through sendmail" >"$W/h2.eml"
out=$(fq sendmail --sign -t -oi --ca-file "$CA" <"$W/h2.eml" 2>&1)
rc=$?
case $rc:$out in
0:*"$want"*) pass "sendmail without the token accepts it for later" ;;
*) fail "sendmail without the token accepts it for later (status $rc)"
	diag "$out" ;;
esac
check "it waits in the outbox too" \
	test "$(local_count "$W/bob/outbox")" -eq $((q0 + 2))

: >"$P11FAULTY_CONTROL"
check "with the token back, send --queue sends both" \
	fq send --queue --ca-file "$CA"
check "the outbox is empty again" \
	test "$(local_count "$W/bob/outbox")" -eq "$q0"
check "both delivered" wait_delivered alice $((a0 + 2))
for subj in "held for the token" "held through sendmail"; do
	n=$(grep -l "^Subject: $subj" "$(server_maildir alice)/new/"* \
		2>/dev/null | wc -l)
	check "'$subj' arrived exactly once" test "$n" -eq 1
done
check "alice fetches" p11 alice -q fetch --ca-file "$CA"
out=$(p11 alice inbox 2>&1)
if sig_is S "held for the token" && sig_is S "held through sendmail"; then
	pass "both arrived signed by bob"
else
	fail "both arrived signed by bob"
	diag "$out"
fi

# read decrypts with the token of the configuration too: through the
# faulty module, the absent token stops it; back, it decrypts.
echo removed >"$P11FAULTY_CONTROL"
out=$(fq read --no-prompt 1 2>&1)
rc=$?
case $out in
*"Hello from the transport"*)
	fail "read of the encrypted message uses the [token] module ($rc)"
	diag "$out" ;;
*) check "read of the encrypted message uses the [token] module" \
	test $rc -ne 0 ;;
esac
: >"$P11FAULTY_CONTROL"
out=$(fq read --no-prompt 1 2>&1)
rc=$?
if [ $rc -eq 0 ] && printf '%s' "$out" | grep -q "Hello from the transport"
then
	pass "with the token back it decrypts"
else
	fail "with the token back it decrypts ($rc)"
	diag "$out"
fi

# A held message is never sent as it is by a reader that ignores the mark.
message $B $A "marked by hand" >"$W/h3.eml"
{
	printf 'X-P11mail-Envelope-From: %s\r\n' $B
	printf 'X-P11mail-Envelope-To: %s\r\n' $A
	printf 'X-P11mail-Envelope-Protect: sign seal\r\n'
	cat "$W/h3.eml"
} >"$W/bob/outbox/new/1.unknown.protect"
out=$(fq send --queue --ca-file "$CA" 2>&1)
rc=$?
case $rc:$out in
1:*"1.unknown.protect"*) pass "an unknown protection word is refused" ;;
*) fail "an unknown protection word is refused (status $rc)"
	diag "$out" ;;
esac
check "that message is not sent" sh -c \
	"! grep -rqs 'marked by hand' '$(server_maildir alice)/new'"
rm -f "$W/bob/outbox/new/1.unknown.protect"

done_testing
