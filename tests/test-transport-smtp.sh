#!/bin/sh
# SMTP submission against a private Postfix: STARTTLS and implicit TLS with
# AUTH, Bcc removed, dot lines intact; and every failure keeps the message
# in the outbox: server down, login refused, untrusted certificate,
# refused recipient.  "send --queue" delivers what waited once it can.
set -u
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/transport-lib.sh"

mail_setup
A=alice@north-clinic.test
B=bob@south-lab.test
C=carol@south-lab.test
CA=$MAIL_CA
W=$mail_work

# 1. STARTTLS submission; Bcc reaches carol but is not in what is sent.
message $A $B "plain one" "Bcc: $C" >"$W/m1.eml"
check "send over STARTTLS with AUTH" p11 alice send --ca-file "$CA" "$W/m1.eml"
check "outbox is empty after the server accepted" \
	test "$(local_count "$W/alice/outbox")" -eq 0
if wait_delivered bob 1 && wait_delivered carol 1; then
	pass "delivered to the To and the Bcc recipient"
else
	fail "delivered to the To and the Bcc recipient"
fi
got=$(cat "$(server_maildir bob)"/new/* 2>/dev/null)
case $got in
*"Subject: plain one"*) pass "bob got the message" ;;
*) fail "bob got the message" ;;
esac
case $got in
*"Bcc:"* | *"$C"*) fail "Bcc was removed before submission" ;;
*) pass "Bcc was removed before submission" ;;
esac
case $got in
*"
.leading dot line"*) pass "a body line starting with a dot is intact" ;;
*) fail "a body line starting with a dot is intact" ;;
esac

# 2. Implicit TLS (SMTPS).
mail_config alice "$W/alice/smtps.conf" "$MAIL_SMTPS_PORT"
sed -i 's/^smtp-tls = .*/smtp-tls = implicit/' "$W/alice/smtps.conf"
message $A $B "over smtps" >"$W/m2.eml"
check "send over implicit TLS" "$P11MAIL" --config "$W/alice/smtps.conf" \
	--store "$W/alice/store" send --ca-file "$CA" "$W/m2.eml"
check "delivered over implicit TLS" wait_delivered bob 2

# 3. A server certificate the CA file does not vouch for.
"${OPENSSL_BIN:-openssl}" req -x509 -newkey ec \
	-pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/other.key" \
	-out "$W/other-ca.pem" -days 1 -subj "/CN=another CA" 2>/dev/null
message $A $B "untrusted server" >"$W/m3.eml"
out=$(p11 alice send --ca-file "$W/other-ca.pem" "$W/m3.eml" 2>&1)
rc=$?
if [ $rc -eq 1 ] && printf '%s' "$out" | grep -q "not trusted"; then
	pass "an untrusted server certificate stops the submission"
else
	fail "an untrusted server certificate stops the submission (rc=$rc)"
	diag "$out"
fi
check "the message stays queued" test "$(local_count "$W/alice/outbox")" -eq 1

# 4. Login refused: wrong password.
printf 'wrong\n' >"$W/alice/bad-password"
chmod 600 "$W/alice/bad-password"
mail_config alice "$W/alice/badpw.conf" "" "$W/alice/bad-password"
message $A $B "bad password" >"$W/m4.eml"
out=$("$P11MAIL" --config "$W/alice/badpw.conf" --store "$W/alice/store" \
	send --ca-file "$CA" "$W/m4.eml" 2>&1)
rc=$?
if [ $rc -eq 1 ] && printf '%s' "$out" | grep -q "refused the login"; then
	pass "a refused login is reported as such"
else
	fail "a refused login is reported as such (rc=$rc)"
	diag "$out"
fi
check "the message stays queued" test "$(local_count "$W/alice/outbox")" -eq 2

# 5. A recipient the server refuses: nobody gets the message.
message $A "$B, nobody@south-lab.test" "half refused" >"$W/m5.eml"
before_bob=$(server_count bob)
check_fails "a refused recipient fails the submission" \
	p11 alice send --ca-file "$CA" "$W/m5.eml"
sleep 0.5
check "the other recipient did not get it either" \
	test "$(server_count bob)" -eq "$before_bob"
check "the message stays queued" test "$(local_count "$W/alice/outbox")" -eq 3

# 6. Server down: clear error, queued; once up, send --queue delivers.
pid=$(tr -dc 0-9 <"$MAIL_POSTFIX_CONFIG/spool/pid/master.pid")
kill "$pid"
i=0
while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do
	sleep 0.1
	i=$((i + 1))
done
message $A $B "while down" >"$W/m6.eml"
out=$(p11 alice send --ca-file "$CA" "$W/m6.eml" 2>&1)
rc=$?
if [ $rc -eq 1 ] && printf '%s' "$out" | grep -q "cannot reach" &&
	printf '%s' "$out" | grep -q "send --queue"; then
	pass "server down: clear error naming the queue"
else
	fail "server down: clear error naming the queue (rc=$rc)"
	diag "$out"
fi
check "the message stays queued" test "$(local_count "$W/alice/outbox")" -eq 4
check_fails "send --queue fails while the server is down" \
	p11 alice send --queue --ca-file "$CA"
check "nothing left the queue" test "$(local_count "$W/alice/outbox")" -eq 4

/usr/sbin/postfix -c "$MAIL_POSTFIX_CONFIG" start >/dev/null 2>&1
i=0
until python3 -c "import socket; socket.create_connection(('127.0.0.1', $MAIL_SUBMISSION_PORT), 1)" 2>/dev/null ||
	[ $i -gt 50 ]; do
	sleep 0.1
	i=$((i + 1))
done
before_bob=$(server_count bob)
out=$(p11 alice send --queue --ca-file "$CA" 2>&1)
rc=$?
# Four waited: three now go through, the one with a refused recipient stays.
if [ $rc -eq 1 ] && printf '%s' "$out" | grep -q "3 sent, 1 still queued"; then
	pass "send --queue delivers what it can and keeps the rest"
else
	fail "send --queue delivers what it can and keeps the rest (rc=$rc)"
	diag "$out"
fi
check "only the refused message is still queued" \
	grep -rq "half refused" "$W/alice/outbox/new"
check "the queued messages reached bob" wait_delivered bob $((before_bob + 3))

# 7. Submissions from one outbox take turns: while another p11mail holds
# the outbox lock, a send waits for it instead of racing it.
if command -v flock >/dev/null 2>&1; then
	flock "$W/alice/outbox/.p11mail-lock" sleep 2 &
	holder=$!
	sleep 0.3
	message $A $B "after the lock" >"$W/m8.eml"
	t0=$(date +%s%N)
	p11 alice -q send --ca-file "$CA" "$W/m8.eml"
	rc=$?
	waited=$((($(date +%s%N) - t0) / 1000000))
	wait "$holder"
	if [ $rc -eq 0 ] && [ $waited -ge 1200 ]; then
		pass "send waits for the outbox lock (${waited} ms)"
	else
		fail "send waits for the outbox lock (rc=$rc, ${waited} ms)"
	fi
else
	skip "send waits for the outbox lock" "flock not found (util-linux)"
fi

# 8. No SMTP server configured: the outbox is the destination.
grep -v '^smtp-' "$W/alice/p11mail.conf" >"$W/alice/nosmtp.conf"
message $A $B "no server" >"$W/m7.eml"
out=$("$P11MAIL" --config "$W/alice/nosmtp.conf" --store "$W/alice/store" \
	send "$W/m7.eml" 2>&1)
rc=$?
if [ $rc -eq 0 ] && printf '%s' "$out" | grep -q "no SMTP server"; then
	pass "without an SMTP server the message goes to the outbox"
else
	fail "without an SMTP server the message goes to the outbox (rc=$rc)"
	diag "$out"
fi
check "it is in the outbox" grep -rq "Subject: no server" "$W/alice/outbox/new"

# 9. Bad input is refused before anything is queued.
n=$(local_count "$W/alice/outbox")
printf 'no header here\n\nbody\n' >"$W/bad.eml"
check_fails "a file that is not a message is refused" \
	p11 alice send --ca-file "$CA" "$W/bad.eml"
printf 'From: %s\nSubject: nobody\n\nx\n' $A >"$W/norcpt.eml"
check_fails "a message without recipients is refused" \
	p11 alice send --ca-file "$CA" "$W/norcpt.eml"
check_fails "a missing file is refused" \
	p11 alice send --ca-file "$CA" "$W/does-not-exist.eml"
check "nothing was queued for them" \
	test "$(local_count "$W/alice/outbox")" -eq "$n"

# 10. The password never reaches argv, the trace or the output.
out=$(P11MAIL_DEBUG=1 p11 alice send --queue --ca-file "$CA" 2>&1)
token=$(printf '\000%s\000%s' $A secret-alice | base64 -w0)
case $out in
*AUTH*) pass "the trace shows the dialogue" ;;
*) fail "the trace shows the dialogue" ;;
esac
case $out in
*secret-alice* | *"$token"*) fail "the trace does not show the password" ;;
*) pass "the trace does not show the password" ;;
esac

done_testing
