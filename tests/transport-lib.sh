# Shared by the transport tests; source after tap.sh.  Starts the private
# mail servers (tests/servers/mail-start.sh) in a temporary directory,
# writes a configuration per user and stops everything on exit.
#
#   mail_setup             start the servers; skips the test when it cannot
#   mail_config USER FILE  write FILE: the [account] of USER (alice, bob,
#                          carol) with its own store, Maildir and outbox
#   p11 USER ARGS...       run p11mail as USER (its config and store)
#   server_count USER      messages delivered to USER's server mailbox
#   wait_delivered USER N  wait until USER's server mailbox has N messages

: "${top_builddir:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
P11MAIL="$top_builddir/src/p11mail"

mail_work=""
mail_cleanup() {
	if [ -n "$mail_work" ]; then
		"$top_srcdir/tests/servers/mail-stop.sh" "$mail_work/servers"
		rm -rf "$mail_work"
	fi
}

mail_domain() {
	case $1 in
	alice) echo north-clinic.test ;;
	*) echo south-lab.test ;;
	esac
}

mail_setup() {
	[ -x "$P11MAIL" ] || skip_all "p11mail is not built"
	# With the token fixture loaded, its cleanup runs ours too.
	if command -v fixture_at_exit >/dev/null 2>&1; then
		fixture_at_exit mail_cleanup
	else
		trap mail_cleanup EXIT
	fi
	mail_work=$(mktemp -d /tmp/p11mail-transport-XXXXXX)
	# Postfix and Dovecot drop privileges: they must reach the servers
	# directory below this one.  The users' own files stay private.
	chmod 755 "$mail_work"
	out=$("$top_srcdir/tests/servers/mail-start.sh" "$mail_work/servers" 2>&1)
	case $? in
	0) ;;
	77) skip_all "$out" ;;
	*)
		echo "1..0 # SKIP the mail servers did not start: $out"
		exit 1
		;;
	esac
	. "$mail_work/servers/mail.env"
	diag "mail servers started in ${MAIL_STARTUP_MS} ms"
	for u in alice bob carol; do
		mkdir -m 700 -p "$mail_work/$u"
		printf 'secret-%s\n' "$u" >"$mail_work/$u/password"
		chmod 600 "$mail_work/$u/password"
		mail_config "$u" "$mail_work/$u/p11mail.conf"
	done
}

# mail_config USER FILE [SMTP-PORT [PASSWORD-FILE]]
mail_config() {
	u=$1
	addr="$u@$(mail_domain "$u")"
	cat >"$2" <<CONF
[account]
address = $addr
smtp-host = 127.0.0.1
smtp-port = ${3:-$MAIL_SUBMISSION_PORT}
smtp-tls = starttls
password-source = file:${4:-$mail_work/$u/password}
ca-file = $MAIL_CA
imap-host = 127.0.0.1
imap-port = $MAIL_IMAP_PORT
pop3-host = 127.0.0.1
pop3-port = $MAIL_POP3_PORT
maildir = $mail_work/$u/Maildir
outbox = $mail_work/$u/outbox
CONF
}

p11() {
	u=$1
	shift
	"$P11MAIL" --config "$mail_work/$u/p11mail.conf" \
		--store "$mail_work/$u/store" "$@"
}

server_maildir() {
	echo "$MAIL_DIR/mail/$(mail_domain "$1")/$1/Maildir"
}

server_count() {
	d=$(server_maildir "$1")
	find "$d/new" "$d/cur" -type f 2>/dev/null | wc -l
}

local_count() {
	find "$1/new" "$1/cur" -type f 2>/dev/null | wc -l
}

wait_delivered() {
	i=0
	while [ "$(server_count "$1")" -lt "$2" ] && [ $i -lt 300 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	[ "$(server_count "$1")" -ge "$2" ]
}

# message FROM TO SUBJECT [EXTRA-HEADER]: a plain test message on stdout.
# Its body has a line starting with a dot, which SMTP must carry intact.
mail_seq=0
message() {
	mail_seq=$((mail_seq + 1))
	printf 'From: %s\nTo: %s\n' "$1" "$2"
	if [ -n "${4:-}" ]; then printf '%s\n' "$4"; fi
	printf 'Subject: %s\nDate: %s\nMessage-ID: <%s.%s@p11mail.test>\n' \
		"$3" "$(date -R)" "$$" "$mail_seq"
	printf '\nHello from the transport test.\n.leading dot line\n'
}
