#!/bin/sh
# Starts a private Postfix (SMTP submission) and Dovecot (IMAP, POP3, LMTP)
# on 127.0.0.1 for the transport tests.
#
#   mail-start.sh DIR     creates DIR/mail.env and starts both servers
#   mail-stop.sh DIR      stops them by PID
#
# Everything lives under DIR: configurations, a test CA and server
# certificate, the Postfix queue, Dovecot's runtime files and the mailboxes.
# Nothing outside DIR is read or written apart from the Debian-installed
# binaries.  Mail for the test users is accepted from authenticated clients
# and delivered into DIR/mail/DOMAIN/USER/Maildir, which IMAP and POP3 serve.
#
# Needs root (Postfix's master runs as root and drops to the postfix user)
# and the Debian packages postfix, dovecot-imapd, dovecot-pop3d.
# Exit status: 0 started, 77 cannot run here (reason on stdout), 1 failure.
set -eu

dir=${1:?usage: mail-start.sh DIR}
here=$(cd "$(dirname "$0")" && pwd)
openssl=${OPENSSL_BIN:-openssl}

cannot() { echo "$*"; exit 77; }

[ "$(id -u)" = 0 ] || cannot "the mail servers need root"
for t in /usr/sbin/postfix /usr/sbin/dovecot "$openssl" python3; do
	command -v "$t" >/dev/null 2>&1 ||
		cannot "$t not found (apt-get install postfix dovecot-imapd dovecot-pop3d openssl python3)"
done
[ -x /usr/lib/dovecot/imap ] || cannot "dovecot-imapd is not installed"
[ -x /usr/lib/dovecot/pop3 ] || cannot "dovecot-pop3d is not installed"
getent passwd postfix >/dev/null || cannot "no postfix user"
getent passwd dovenull >/dev/null || cannot "no dovenull user"

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
# The servers' unprivileged users must reach their files below DIR.
chmod 755 "$dir"
d=$dir
while [ "$d" != / ]; do
	d=$(dirname "$d")
	case $(stat -c %A "$d") in
	*x | *t) ;;
	*) cannot "$d is not searchable by others: the server users need it" ;;
	esac
done

# Seven free loopback ports, chosen by the kernel.
set -- $(python3 - <<'PY'
import socket
socks = []
for _ in range(7):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
)
sub_port=$1 smtps_port=$2 imap_port=$3 imaps_port=$4 pop3_port=$5 \
	pop3s_port=$6 auth_port=$7
mail_uid=$(id -u nobody)
mail_gid=$(getent group nogroup | cut -d: -f3)

# A test CA and a certificate for 127.0.0.1 and localhost.
tls=$dir/tls
mkdir -p "$tls"
"$openssl" req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout "$tls/ca.key" -out "$tls/ca.pem" -days 2 \
	-subj "/CN=p11mail test mail CA" \
	-addext basicConstraints=critical,CA:TRUE \
	-addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
"$openssl" req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout "$tls/server.key" -out "$tls/server.csr" \
	-subj "/CN=localhost" 2>/dev/null
printf '%s\n' "basicConstraints=critical,CA:FALSE" \
	"keyUsage=critical,digitalSignature" \
	"extendedKeyUsage=serverAuth" \
	"subjectAltName=IP:127.0.0.1,DNS:localhost" >"$tls/server.ext"
"$openssl" x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" \
	-CAkey "$tls/ca.key" -CAcreateserial -days 2 \
	-extfile "$tls/server.ext" -out "$tls/server.pem" 2>/dev/null
chmod 644 "$tls/server.pem" "$tls/ca.pem"
chmod 600 "$tls/server.key"

# Mail users: address, password.  The passwords are test data only.
mkdir -p "$dir/mail"
chown nobody:nogroup "$dir/mail"
: >"$dir/dovecot.users"
: >"$dir/postfix.mailboxes"
for u in alice@north-clinic.test bob@south-lab.test carol@south-lab.test; do
	echo "$u:{PLAIN}secret-${u%@*}::::::" >>"$dir/dovecot.users"
	echo "$u ${u#*@}/${u%@*}/Maildir/" >>"$dir/postfix.mailboxes"
done
chmod 644 "$dir/dovecot.users"

# Dovecot: IMAP and POP3 with STARTTLS and implicit TLS, and SASL for
# Postfix's AUTH.
mkdir -p "$dir/dovecot-run" "$dir/dovecot-state"
cat >"$dir/dovecot.conf" <<CONF
base_dir = $dir/dovecot-run
state_dir = $dir/dovecot-state
instance_name = p11mail-test-$$
listen = 127.0.0.1
protocols = imap pop3
log_path = $dir/dovecot.log
info_log_path = $dir/dovecot.log
ssl = yes
ssl_cert = <$tls/server.pem
ssl_key = <$tls/server.key
ssl_dh = </usr/share/dovecot/dh.pem
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = dovenull
default_internal_user = dovecot
first_valid_uid = 1
mail_location = maildir:~/Maildir
pop3_uidl_format = %08Xu%08Xv
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $dir/dovecot.users
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=$dir/mail/%d/%n
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $imap_port
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $imaps_port
    ssl = yes
  }
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = $pop3_port
  }
  inet_listener pop3s {
    address = 127.0.0.1
    port = $pop3s_port
    ssl = yes
  }
}
service auth {
  inet_listener {
    address = 127.0.0.1
    port = $auth_port
  }
}
CONF

# Postfix: submission with STARTTLS required and AUTH, SMTPS with implicit
# TLS; its virtual delivery agent writes what it accepts into the Maildirs
# that Dovecot serves.
pf=$dir/postfix
chmod 644 "$dir/postfix.mailboxes"
mkdir -p "$pf/spool" "$pf/data"
chown postfix "$pf/data"
cat >"$pf/main.cf" <<CONF
compatibility_level = 3.6
queue_directory = $pf/spool
data_directory = $pf/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = mail.test.invalid
mydomain = test.invalid
myorigin = \$myhostname
mydestination =
mynetworks = 127.0.0.1/32
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
relayhost =
alias_maps =
alias_database =
smtputf8_enable = no
biff = no
maillog_file = $dir/postfix.log
maillog_file_prefixes = $dir
virtual_mailbox_domains = north-clinic.test south-lab.test
virtual_mailbox_base = $dir/mail
virtual_mailbox_maps = texthash:$dir/postfix.mailboxes
virtual_uid_maps = static:$mail_uid
virtual_gid_maps = static:$mail_gid
smtpd_tls_cert_file = $tls/server.pem
smtpd_tls_key_file = $tls/server.key
smtpd_tls_security_level = encrypt
smtpd_tls_auth_only = yes
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = inet:127.0.0.1:$auth_port
smtpd_relay_restrictions = permit_sasl_authenticated, reject
smtpd_recipient_restrictions = permit_sasl_authenticated, reject
smtpd_client_restrictions =
smtpd_helo_required = no
smtp_dns_support_level = disabled
lmtp_dns_support_level = disabled
CONF
cat >"$pf/master.cf" <<CONF
127.0.0.1:$sub_port inet n - n - - smtpd
127.0.0.1:$smtps_port inet n - n - - smtpd
  -o smtpd_tls_wrappermode=yes
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
CONF

cat >"$dir/mail.env" <<ENV
MAIL_DIR='$dir'
MAIL_CA='$tls/ca.pem'
MAIL_SUBMISSION_PORT=$sub_port
MAIL_SMTPS_PORT=$smtps_port
MAIL_IMAP_PORT=$imap_port
MAIL_IMAPS_PORT=$imaps_port
MAIL_POP3_PORT=$pop3_port
MAIL_POP3S_PORT=$pop3s_port
MAIL_POSTFIX_CONFIG='$pf'
MAIL_DOVECOT_CONFIG='$dir/dovecot.conf'
# Users: alice@north-clinic.test bob@south-lab.test carol@south-lab.test,
# password "secret-" followed by the local part.
ENV

start=$(date +%s%N)

/usr/sbin/dovecot -F -c "$dir/dovecot.conf" >>"$dir/dovecot.log" 2>&1 &
echo $! >"$dir/dovecot.pid"

/usr/sbin/postfix -c "$pf" start >"$dir/postfix-start.log" 2>&1 || {
	echo "postfix did not start:" >&2
	tail -n 5 "$dir/postfix.log" >&2 2>/dev/null
	"$here/mail-stop.sh" "$dir"
	exit 1
}

# Ready when every listener accepts a connection.
ready() {
	python3 - "$@" <<'PY'
import socket, sys
for p in sys.argv[1:]:
    s = socket.socket()
    s.settimeout(0.5)
    try:
        s.connect(("127.0.0.1", int(p)))
    except OSError:
        sys.exit(1)
    finally:
        s.close()
PY
}
i=0
until ready "$sub_port" "$smtps_port" "$imap_port" "$imaps_port" \
	"$pop3_port" "$pop3s_port"; do
	i=$((i + 1))
	if [ $i -gt 300 ]; then
		echo "mail servers did not start; logs in $dir" >&2
		tail -n 20 "$dir/dovecot.log" "$dir/postfix.log" >&2 || true
		"$here/mail-stop.sh" "$dir"
		exit 1
	fi
	sleep 0.1
done
cp "$pf/spool/pid/master.pid" "$dir/postfix.pid" 2>/dev/null || true
end=$(date +%s%N)
echo "MAIL_STARTUP_MS=$(((end - start) / 1000000))" >>"$dir/mail.env"
