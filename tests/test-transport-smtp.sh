#!/bin/sh
# SMTP submission against a private Postfix: STARTTLS and implicit TLS with
# AUTH, Bcc removed, dot lines intact; and every failure keeps the message
# in the outbox: server down, login refused, untrusted certificate,
# refused recipient.  "send --queue" delivers what waited once it can.
# Configuration faults (unreadable CA or password file) queue nothing; a
# server that does not speak SMTP or never greets is named as such; a
# garbage file in the outbox is named by its path.
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

# 11. Configuration faults queue nothing (exit 1, the input kept); a
# server that is not an SMTP server, or never greets, is named as such.
n=$(local_count "$W/alice/outbox")
message $A $B "config fault" >"$W/m11.eml"
sed 's|^ca-file = .*|ca-file = /nonexistent.pem|' "$W/alice/p11mail.conf" \
	>"$W/alice/noca.conf"
out=$("$P11MAIL" --config "$W/alice/noca.conf" --store "$W/alice/store" \
	send "$W/m11.eml" 2>&1)
rc=$?
case $rc:$out in
1:*"cannot read the CA file /nonexistent.pem"*)
	pass "a missing CA file is a configuration error" ;;
*) fail "a missing CA file is a configuration error (rc=$rc)"
	diag "$out" ;;
esac
case $out in
*"not trusted"* | *"could not be reached"* | *"queued as"*)
	fail "a missing CA file is not reported as a server fault" ;;
*) pass "a missing CA file is not reported as a server fault" ;;
esac
mail_config alice "$W/alice/nopw.conf" "" "$W/alice/no-such-password"
check_fails "a missing password file fails" "$P11MAIL" \
	--config "$W/alice/nopw.conf" --store "$W/alice/store" \
	send --ca-file "$CA" "$W/m11.eml"
check "configuration faults queued nothing" \
	test "$(local_count "$W/alice/outbox")" -eq "$n"
check "the input is kept" grep -q "config fault" "$W/m11.eml"
out=$("$P11MAIL" --config "$W/alice/noca.conf" --store "$W/alice/store" \
	send --queue 2>&1)
rc=$?
case $rc:$out in
1:*"cannot read the CA file"*"$n still queued"*)
	pass "send --queue stops at a missing CA file, counting the queue" ;;
*) fail "send --queue stops at a missing CA file, counting the queue ($rc)"
	diag "$out" ;;
esac

cat >"$W/fake.py" <<'PY'
import socket, sys, threading, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(8)
print(s.getsockname()[1], flush=True)
def serve(c):
    if sys.argv[1] == "junk":
        c.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    time.sleep(60)
    c.close()
while True:
    c = s.accept()[0]
    threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
fake_server() {
	python3 "$W/fake.py" "$1" >"$W/fake-$1.port" &
	fake_pid=$!
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		[ -s "$W/fake-$1.port" ] && break
		sleep 0.2
	done
	fake_port=$(cat "$W/fake-$1.port")
}
fake_server junk
junk_pid=$fake_pid
mail_config alice "$W/alice/junk.conf" "$fake_port"
sed -i 's/^smtp-tls = .*/smtp-tls = none/; /^password-source/d' \
	"$W/alice/junk.conf"
out=$("$P11MAIL" --config "$W/alice/junk.conf" --store "$W/alice/store" \
	send "$W/m11.eml" 2>&1)
rc=$?
case $rc:$out in
1:*"127.0.0.1 did not answer as an SMTP server"*)
	pass "a server that does not speak SMTP is named as such" ;;
*) fail "a server that does not speak SMTP is named as such (rc=$rc)"
	diag "$out" ;;
esac
kill "$junk_pid"
fake_server silent
silent_pid=$fake_pid
mail_config alice "$W/alice/silent.conf" "$fake_port"
sed -i 's/^smtp-tls = .*/smtp-tls = none/; /^password-source/d' \
	"$W/alice/silent.conf"
out=$("$P11MAIL" --config "$W/alice/silent.conf" --store "$W/alice/store" \
	send "$W/m11.eml" 2>&1)
rc=$?
case $rc:$out in
1:*"no answer from 127.0.0.1 within 30 s"*)
	pass "a server that never greets is reported as silent" ;;
*) fail "a server that never greets is reported as silent (rc=$rc)"
	diag "$out" ;;
esac
kill "$silent_pid"
check "both stay queued (transient faults)" \
	test "$(local_count "$W/alice/outbox")" -eq $((n + 2))

# 12. A file in the outbox that is no queued message: its path is named so
# that it can be removed; then the queue runs again.
printf 'garbage\n' >"$W/alice/outbox/new/1.garbage.local"
out=$(p11 alice send --queue --ca-file "$CA" 2>&1)
rc=$?
case $rc:$out in
1:*"remove the file $W/alice/outbox/new/1.garbage.local"*)
	pass "a garbage file in the outbox is named with its path" ;;
*) fail "a garbage file in the outbox is named with its path (rc=$rc)"
	diag "$out" ;;
esac
rm -f "$W/alice/outbox/new/1.garbage.local"
out=$(p11 alice send --queue --ca-file "$CA" 2>&1)
case $out in
*garbage*) fail "once removed, it is no longer reported"; diag "$out" ;;
*) pass "once removed, it is no longer reported" ;;
esac

# 13. No SMTP server: send --queue agrees with send (exit 0, says so), and
# --json failures are JSON objects.
out=$("$P11MAIL" --config "$W/alice/nosmtp.conf" --store "$W/alice/store" \
	send --queue 2>&1)
rc=$?
case $rc:$out in
0:*"no SMTP server is configured"*)
	pass "send --queue without an SMTP server says so, exit 0" ;;
*) fail "send --queue without an SMTP server says so, exit 0 (rc=$rc)"
	diag "$out" ;;
esac
json=$("$P11MAIL" --config "$W/alice/nosmtp.conf" --store "$W/alice/store" \
	send --queue --json 2>/dev/null)
case $json in
'{"sent":0,"failed":'[0-9]*'}') pass "send --queue --json: the counts" ;;
*) fail "send --queue --json: the counts"; diag "$json" ;;
esac
: >"$W/empty.eml"
for f in "$W/empty.eml" "$W/bad.eml" "$W/does-not-exist.eml"; do
	json=$(p11 alice send --json --ca-file "$CA" "$f" 2>/dev/null)
	rc=$?
	case $rc:$json in
	1:'{"error":"'*'"}') pass "send --json: $(basename "$f") is a JSON error" ;;
	*) fail "send --json: $(basename "$f") is a JSON error (rc=$rc)"
		diag "$json" ;;
	esac
done

done_testing
