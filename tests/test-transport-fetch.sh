#!/bin/sh
# Mail sent through the private Postfix is fetched back over IMAP
# (STARTTLS and implicit TLS) and POP3 into local Maildirs: no duplicates on
# a re-run, a refused login loses nothing, a malformed message on the
# server or in the local Maildir is reported and skipped, the inbox shows
# the Sig column and read shows a message.  A failed fetch prints only the
# failure and creates no Maildir; a server that is not IMAP is named so.
set -u
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/transport-lib.sh"

mail_setup
A=alice@north-clinic.test
B=bob@south-lab.test
CA=$MAIL_CA
W=$mail_work
BOX=$W/bob/Maildir

for s in "first" "second"; do
	message $A $B "$s" | p11 alice -q send --ca-file "$CA" - ||
		fail "sending '$s'"
done
check "two messages reached bob's server mailbox" wait_delivered bob 2

# IMAP with STARTTLS.
check "fetch over IMAP (STARTTLS)" p11 bob fetch --imap --ca-file "$CA"
check "two messages in the local Maildir" test "$(local_count "$BOX")" -eq 2
check "their text arrived" grep -rlq "Subject: second" "$BOX/new"
check "re-fetch succeeds" p11 bob fetch --imap --ca-file "$CA"
check "re-fetch adds no duplicate" test "$(local_count "$BOX")" -eq 2
out=$(p11 bob --json fetch --imap --ca-file "$CA")
case $out in
*'"fetched":0'*) pass "JSON says nothing new" ;;
*) fail "JSON says nothing new: $out" ;;
esac

message $A $B "third" | p11 alice -q send --ca-file "$CA" - ||
	fail "sending 'third'"
check "third message delivered" wait_delivered bob 3
check "fetch picks up only the new one" p11 bob fetch --imap --ca-file "$CA"
check "three messages, no duplicate" test "$(local_count "$BOX")" -eq 3

# IMAP with implicit TLS, into another Maildir (its own state).
check_fails "implicit TLS against the STARTTLS port fails" \
	p11 bob fetch --imap --ca-file "$CA" --tls implicit \
	--maildir "$W/bob/imaps"
check "and fetches nothing" test "$(local_count "$W/bob/imaps")" -eq 0
sed -i "s/^imap-port = .*/imap-port = $MAIL_IMAPS_PORT/" "$W/bob/p11mail.conf"
check "fetch over IMAPS (port from the configuration)" \
	p11 bob fetch --imap --tls implicit --ca-file "$CA" \
	--maildir "$W/bob/imaps"
check "IMAPS fetched three, once" test "$(local_count "$W/bob/imaps")" -eq 3
sed -i "s/^imap-port = .*/imap-port = $MAIL_IMAP_PORT/" "$W/bob/p11mail.conf"

# POP3 with STARTTLS, then implicit TLS.
check "fetch over POP3" p11 bob fetch --pop3 --ca-file "$CA" \
	--maildir "$W/bob/pop"
check "POP3 fetched three" test "$(local_count "$W/bob/pop")" -eq 3
check "POP3 re-fetch" p11 bob fetch --pop3 --ca-file "$CA" \
	--maildir "$W/bob/pop"
check "POP3 re-fetch adds no duplicate" \
	test "$(local_count "$W/bob/pop")" -eq 3
sed -i "s/^pop3-port = .*/pop3-port = $MAIL_POP3S_PORT/" "$W/bob/p11mail.conf"
check "fetch over POP3S" p11 bob fetch --pop3 --tls implicit \
	--ca-file "$CA" --maildir "$W/bob/pops"
check "POP3S fetched three" test "$(local_count "$W/bob/pops")" -eq 3
sed -i "s/^pop3-port = .*/pop3-port = $MAIL_POP3_PORT/" "$W/bob/p11mail.conf"

# [account] imap-tls and pop3-tls choose TLS without the --tls option.
cp "$W/bob/p11mail.conf" "$W/bob/tls.conf"
printf 'imap-tls = implicit\npop3-tls = implicit\n' >>"$W/bob/tls.conf"
pt() {
	"$P11MAIL" --config "$W/bob/tls.conf" --store "$W/bob/store" "$@"
}
check_fails "imap-tls = implicit against the STARTTLS port fails" \
	pt fetch --imap --ca-file "$CA" --maildir "$W/bob/imap-tls"
check "and fetches nothing" test "$(local_count "$W/bob/imap-tls")" -eq 0
sed -i "s/^imap-port = .*/imap-port = $MAIL_IMAPS_PORT/; \
s/^pop3-port = .*/pop3-port = $MAIL_POP3S_PORT/" "$W/bob/tls.conf"
check "imap-tls = implicit on the IMAPS port fetches" \
	pt fetch --imap --ca-file "$CA" --maildir "$W/bob/imap-tls"
check "three fetched over IMAPS" \
	test "$(local_count "$W/bob/imap-tls")" -eq 3
check "pop3-tls = implicit on the POP3S port fetches" \
	pt fetch --pop3 --ca-file "$CA" --maildir "$W/bob/pop3-tls"
check "three fetched over POP3S" \
	test "$(local_count "$W/bob/pop3-tls")" -eq 3
sed -i "s/^pop3-tls = .*/pop3-tls = sometimes/" "$W/bob/tls.conf"
out=$(pt fetch --pop3 --ca-file "$CA" --maildir "$W/bob/pop3-bad" 2>&1)
rc=$?
if [ $rc -ne 0 ] && [ "$(printf '%s\n' "$out" | wc -l)" -le 2 ] &&
	printf '%s' "$out" | grep -q "pop3-tls"; then
	pass "an unknown pop3-tls choice is a one-line configuration error"
else
	fail "an unknown pop3-tls choice is a one-line configuration error"
	diag "status $rc: $out"
fi
check "nothing fetched with it" test "$(local_count "$W/bob/pop3-bad")" -eq 0

# A refused login: clear error, the local Maildir and state untouched.
printf 'wrong\n' >"$W/bob/bad-password"
chmod 600 "$W/bob/bad-password"
sed "s|^password-source = .*|password-source = file:$W/bob/bad-password|" \
	"$W/bob/p11mail.conf" >"$W/bob/badpw.conf"
message $A $B "fourth" | p11 alice -q send --ca-file "$CA" - ||
	fail "sending 'fourth'"
check "fourth message delivered" wait_delivered bob 4
cp "$BOX/.p11mail-fetch" "$W/state.before"
out=$("$P11MAIL" --config "$W/bob/badpw.conf" --store "$W/bob/store" \
	fetch --imap --ca-file "$CA" 2>&1)
rc=$?
if [ $rc -eq 1 ] && printf '%s' "$out" | grep -q "refused the login"; then
	pass "IMAP login refused: clear error"
else
	fail "IMAP login refused: clear error (rc=$rc)"
	diag "$out"
fi
check "nothing lost or added locally" test "$(local_count "$BOX")" -eq 3
check "the fetch state is unchanged" cmp -s "$W/state.before" \
	"$BOX/.p11mail-fetch"
check_fails "POP3 login refused too" "$P11MAIL" --config "$W/bob/badpw.conf" \
	--store "$W/bob/store" fetch --pop3 --ca-file "$CA" --maildir "$W/bob/pop"
check "the right password then fetches the fourth" \
	p11 bob fetch --imap --ca-file "$CA"
check "four messages" test "$(local_count "$BOX")" -eq 4

# The server mailbox is rebuilt (new UIDVALIDITY): its UIDs mean nothing
# any more, and what is already here is recognised by Message-ID.
srv=$(server_maildir bob)
rm -f "$srv"/dovecot-uidlist "$srv"/dovecot.index* "$srv"/dovecot-uidvalidity*
sleep 1
out=$(p11 bob --json fetch --imap --ca-file "$CA" 2>"$W/rebuilt.err")
rc=$?
case $out in
*'"fetched":0'*'"known":4'*) pass "a rebuilt mailbox brings no duplicate" ;;
*) fail "a rebuilt mailbox brings no duplicate (rc=$rc): $out"
	diag "$(cat "$W/rebuilt.err")" ;;
esac
check "the change is reported" grep -q "UIDVALIDITY changed" "$W/rebuilt.err"
check "still four messages" test "$(local_count "$BOX")" -eq 4

# IMAP server unreachable: clear error, nothing lost.
free_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
sed "s/^imap-port = .*/imap-port = $free_port/" "$W/bob/p11mail.conf" \
	>"$W/bob/down.conf"
out=$("$P11MAIL" --config "$W/bob/down.conf" --store "$W/bob/store" \
	fetch --imap 2>&1)
rc=$?
if [ $rc -eq 1 ] && printf '%s' "$out" | grep -q "cannot reach"; then
	pass "IMAP server down: clear error"
else
	fail "IMAP server down: clear error (rc=$rc)"
	diag "$out"
fi
check "nothing lost locally" test "$(local_count "$BOX")" -eq 4
case $out in
*"fetched into"*) fail "a failed fetch prints only the failure"
	diag "$out" ;;
*) pass "a failed fetch prints only the failure" ;;
esac
out=$("$P11MAIL" --config "$W/bob/down.conf" --store "$W/bob/store" \
	fetch --imap --maildir "$W/bob/NewBox" 2>&1)
check "a failed first fetch creates no Maildir" test ! -e "$W/bob/NewBox"

# A server that does not speak IMAP is named as such, quickly.
cat >"$W/junk.py" <<'PY'
import socket, threading, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(8)
print(s.getsockname()[1], flush=True)
def serve(c):
    c.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
    time.sleep(60)
    c.close()
while True:
    c = s.accept()[0]
    threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
python3 "$W/junk.py" >"$W/junk.port" &
junk_pid=$!
for _ in 1 2 3 4 5 6 7 8 9 10; do
	[ -s "$W/junk.port" ] && break
	sleep 0.2
done
sed "s/^imap-port = .*/imap-port = $(cat "$W/junk.port")/; \
s/^imap-tls = .*//" "$W/bob/p11mail.conf" >"$W/bob/junk.conf"
printf 'imap-tls = none\n' >>"$W/bob/junk.conf"
out=$("$P11MAIL" --config "$W/bob/junk.conf" --store "$W/bob/store" \
	fetch --imap --maildir "$W/bob/JunkBox" 2>&1)
rc=$?
kill "$junk_pid"
case $rc:$out in
1:*"did not answer as an IMAP server"*)
	pass "a server that does not speak IMAP is named as such" ;;
*) fail "a server that does not speak IMAP is named as such (rc=$rc)"
	diag "$out" ;;
esac

# Untrusted server certificate.
check_fails "fetch refuses a server its CA file does not vouch for" \
	p11 bob fetch --imap --ca-file /etc/ssl/certs/ca-certificates.crt

# A malformed message in the server mailbox is skipped, the others come.
srv=$(server_maildir bob)
printf '\001\002 this is not a mail message\n\nat all\n' \
	>"$srv/new/1.garbage.test"
chown nobody:nogroup "$srv/new/1.garbage.test"
message $A $B "fifth" | p11 alice -q send --ca-file "$CA" - ||
	fail "sending 'fifth'"
check "fifth message delivered" wait_delivered bob 6
out=$(p11 bob fetch --imap --ca-file "$CA" 2>&1)
rc=$?
if [ $rc -eq 0 ] && printf '%s' "$out" | grep -q "skipped IMAP message"; then
	pass "the malformed message is reported and skipped"
else
	fail "the malformed message is reported and skipped (rc=$rc)"
	diag "$out"
fi
check "the good one arrived" grep -rlq "Subject: fifth" "$BOX/new"
check "five messages locally" test "$(local_count "$BOX")" -eq 5
out=$(p11 bob fetch --pop3 --ca-file "$CA" --maildir "$W/bob/pop" 2>&1)
case $out in
*"skipped POP3 message"*) pass "POP3 reports the malformed message too" ;;
*) fail "POP3 reports the malformed message too"; diag "$out" ;;
esac

# The inbox: every message listed with its Sig; a local malformed one
# reported and skipped.
printf 'garbage without headers\n' >"$BOX/new/2.garbage.local"
out=$(p11 bob inbox 2>"$W/inbox.err")
rc=$?
check "inbox lists the messages" test $rc -eq 0
n=$(printf '%s\n' "$out" | grep -c '^ *[0-9][0-9]*  -  ')
check "five plain messages with Sig '-'" test "$n" -eq 5
check "the malformed local file is reported" grep -q "skipped message" \
	"$W/inbox.err"
n=$(p11 bob --json inbox 2>/dev/null | grep -c '"sig":"-"')
check "inbox --json lists five" test "$n" -eq 5

# read: the message on stdout, "not signed" on stderr, exit 0.
first=$(p11 bob inbox 2>/dev/null | awk '/first/ { print $1; exit }')
out=$(p11 bob read --no-prompt "$first" 2>"$W/read.err")
rc=$?
if [ $rc -eq 0 ] && printf '%s' "$out" | grep -q "Subject: first"; then
	pass "read shows the message"
else
	fail "read shows the message (rc=$rc)"
	diag "$(cat "$W/read.err")"
fi
check "read says it is not signed" grep -q "not signed" "$W/read.err"
check_fails "read of a number past the end fails" p11 bob read 99
check_fails "read of an unknown ID fails" p11 bob read no-such-id

done_testing
