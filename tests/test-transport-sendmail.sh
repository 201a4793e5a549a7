#!/bin/sh
# The sendmail-compatible entry: -t takes recipients from the headers (Bcc
# included, then removed), recipients as arguments, -f, the lone-dot end
# of input without -i, and usage errors.  Like a mail client, it passes no
# TLS option: the CA file comes from [account] ca-file; one that cannot be
# read fails the command with nothing queued.
set -u
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/transport-lib.sh"

mail_setup
A=alice@north-clinic.test
B=bob@south-lab.test
C=carol@south-lab.test
CA=$MAIL_CA
W=$mail_work

message $A $B "by sendmail -t" "Bcc: $C" >"$W/t.eml"
check "sendmail -t -oi" sh -c "'$P11MAIL' --config '$W/alice/p11mail.conf' \
	--store '$W/alice/store' sendmail -t -oi <'$W/t.eml'"
check "To recipient got it" wait_delivered bob 1
check "Bcc recipient got it" wait_delivered carol 1
check "Bcc is not in the delivered message" sh -c \
	"! grep -rq '^Bcc:' '$(server_maildir carol)/new'"

printf 'From: %s\nSubject: by argument\n\nline one\n.\nafter the dot\n' $A \
	>"$W/arg.eml"
check "sendmail with the recipient as argument" sh -c \
	"'$P11MAIL' --config '$W/alice/p11mail.conf' --store '$W/alice/store' \
	sendmail -f $A $B <'$W/arg.eml'"
check "delivered" wait_delivered bob 2
f=$(grep -rl "Subject: by argument" "$(server_maildir bob)/new")
check "without -i a lone dot ends the message" sh -c \
	"grep -q 'line one' '$f' && ! grep -q 'after the dot' '$f'"

check "sendmail -i keeps the text after a lone dot" sh -c \
	"'$P11MAIL' --config '$W/alice/p11mail.conf' --store '$W/alice/store' \
	sendmail -i $C <'$W/arg.eml'"
check "delivered to carol" wait_delivered carol 2
f=$(grep -rl "Subject: by argument" "$(server_maildir carol)/new")
check "the text after the dot is there" grep -q "after the dot" "$f"

"$P11MAIL" --config "$W/alice/p11mail.conf" --store "$W/alice/store" \
	sendmail <"$W/arg.eml" >/dev/null 2>&1
check "no recipients: usage error" test $? -eq 2
check_fails "a bad recipient is refused" sh -c \
	"'$P11MAIL' --config '$W/alice/p11mail.conf' --store '$W/alice/store' \
	sendmail 'bad address' <'$W/arg.eml'"
check "nothing was queued" test "$(local_count "$W/alice/outbox")" -eq 0

# A configuration fault (a CA file that cannot be read) is no deferral:
# exit 1, said so, nothing queued, so the mail client keeps the message.
sed 's|^ca-file = .*|ca-file = /nonexistent.pem|' "$W/alice/p11mail.conf" \
	>"$W/alice/noca.conf"
out=$("$P11MAIL" --config "$W/alice/noca.conf" --store "$W/alice/store" \
	sendmail -t <"$W/t.eml" 2>&1)
rc=$?
case $rc:$out in
1:*"cannot read the CA file /nonexistent.pem"*"nothing queued"*)
	pass "a missing CA file: exit 1, nothing queued, said so" ;;
*) fail "a missing CA file: exit 1, nothing queued, said so (rc=$rc)"
	diag "$out" ;;
esac
check "still nothing queued" test "$(local_count "$W/alice/outbox")" -eq 0

done_testing
