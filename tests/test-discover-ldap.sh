#!/bin/sh
# p11mail discover against real slapd servers located through SRV records
# served by a private bind9: address-bound and domain-bound certificates,
# a dead first server, SRV priority and weight, invalid candidates.
set -u

. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/servers/dns.sh"
. "$top_srcdir/tests/servers/ldap.sh"
. "$top_srcdir/tests/test-discover-common.sh"

# named and slapd live in sbin, which a normal user's PATH lacks.
PATH=$PATH:/usr/sbin:/sbin

require_cmd openssl openssl
require_cmd named bind9
require_cmd dig bind9-dnsutils
require_cmd slapd slapd
require_cmd slapadd slapd
require_cmd ldapsearch ldap-utils

P11MAIL=$top_builddir/src/p11mail
[ -x "$P11MAIL" ] || skip_all "p11mail is not built"

T=$(mktemp -d)
PIDS=
cleanup() {
  for p in $PIDS; do kill -CONT "$p" 2>/dev/null; ldap_stop_pid "$p"; done
  dns_stop
  rm -rf "$T"
}
trap cleanup EXIT

N=north-clinic.test
S=south-lab.test
W=west-lab.test
E=east-clinic.test

certs_init "$T/ca" || skip_all "openssl cannot make a test CA"
cert_make alice "email:alice@$N"
cert_make carol-expired "email:carol@$N" emailProtection \
  20200101000000Z 20200201000000Z
cert_make carol-codesign "email:carol@$N" codeSigning
cert_make south-domain "DNS:$S"
cert_make decoy "DNS:$S"
cert_make erin "email:erin@$E"

# ldif_base SUFFIX DC: the top entry of a directory.
ldif_base() {
  printf 'dn: %s\nobjectClass: dcObject\nobjectClass: organization\n' "$1"
  printf 'o: %s\ndc: %s\n\n' "$2" "$2"
}
# ldif_person SUFFIX UID MAIL CERT...: one entry with its certificates.
ldif_person() {
  _base=$1 _uid=$2 _mail=$3; shift 3
  printf 'dn: uid=%s,%s\nobjectClass: inetOrgPerson\n' "$_uid" "$_base"
  printf 'uid: %s\ncn: %s\nsn: %s\nmail: %s\n' "$_uid" "$_uid" "$_uid" \
    "$_mail"
  for _c in "$@"; do printf 'userCertificate;binary:: %s\n' \
    "$(cert_b64 "$_c")"; done
  echo
}

{
  ldif_base "dc=north-clinic,dc=test" north-clinic
  ldif_person "dc=north-clinic,dc=test" alice "alice@$N" alice
  ldif_person "dc=north-clinic,dc=test" carol "carol@$N" carol-expired \
    carol-codesign
  ldif_person "dc=north-clinic,dc=test" erin "erin@$E" erin
} > "$T/north.ldif"
{
  ldif_base "dc=south-lab,dc=test" south-lab
  ldif_person "dc=south-lab,dc=test" domain "$S" south-domain
} > "$T/south.ldif"
{
  ldif_base "dc=south-lab,dc=test" south-lab
  ldif_person "dc=south-lab,dc=test" domain "$S" decoy
} > "$T/decoy.ldif"

start=$(date +%s%N)
ldap_start "$T/ldap-north" "dc=north-clinic,dc=test" "$T/north.ldif" ||
  skip_all "slapd could not be started (see the log above)"
PIDS="$PIDS $LDAP_PID"
NORTH_PORT=$LDAP_PORT
diag "one slapd started in $((($(date +%s%N) - start) / 1000000)) ms"
ldap_start "$T/ldap-south" "dc=south-lab,dc=test" "$T/south.ldif" ||
  skip_all "slapd could not be started"
PIDS="$PIDS $LDAP_PID"
SOUTH_PORT=$LDAP_PORT
ldap_start "$T/ldap-decoy" "dc=south-lab,dc=test" "$T/decoy.ldif" ||
  skip_all "slapd could not be started"
PIDS="$PIDS $LDAP_PID"
DECOY_PORT=$LDAP_PORT
DECOY_PID=$LDAP_PID
DEAD_PORT=$(ldap_free_port)

soa() {
  echo "\$TTL 300"
  echo "@ IN SOA ns.$1. admin.$1. 1 3600 600 86400 300"
  echo "@ IN NS ns.$1."
  echo "ns IN A 127.0.0.1"
  echo "ldap-a IN A 127.0.0.1"
  echo "ldap-b IN A 127.0.0.1"
}
{
  soa "$N"
  # The preferred server is down; the second one holds the certificates.
  echo "_ldap._tcp IN SRV 10 0 $DEAD_PORT ldap-a.$N."
  echo "_ldap._tcp IN SRV 20 0 $NORTH_PORT ldap-b.$N."
} > "$T/north.zone"
{
  soa "$S"
  # Listed first but less preferred: the decoy must not be asked.
  echo "_ldap._tcp IN SRV 20 0 $DECOY_PORT ldap-a.$S."
  echo "_ldap._tcp IN SRV 10 0 $SOUTH_PORT ldap-b.$S."
} > "$T/south.zone"
{
  soa "$W"
  # Equal priority: the heavy target comes first but for 1 in 65536 tries.
  echo "_ldap._tcp IN SRV 10 0 $DECOY_PORT ldap-a.$W."
  echo "_ldap._tcp IN SRV 10 65535 $SOUTH_PORT ldap-b.$W."
} > "$T/west.zone"

{
  soa "$E"
  # The preferred server will hang (stopped), the second one answers.
  echo "_ldap._tcp IN SRV 10 0 $DECOY_PORT ldap-a.$E."
  echo "_ldap._tcp IN SRV 20 0 $NORTH_PORT ldap-b.$E."
} > "$T/east.zone"

start=$(date +%s%N)
dns_start "$T" "$N" "$T/north.zone" "$S" "$T/south.zone" \
  "$W" "$T/west.zone" "$E" "$T/east.zone" ||
  skip_all "named could not be started"
diag "named started in $((($(date +%s%N) - start) / 1000000)) ms"

D="$P11MAIL discover --dns-server 127.0.0.1:$DNS_PORT --timeout 2"
A="--anchor $CA_PEM"

run() {
  _name=$1 _want=$2; shift 2
  "$@" >"$T/out" 2>"$T/err"
  _rc=$?
  if [ "$_rc" = "$_want" ]; then pass "$_name"
  else
    fail "$_name (exit $_rc, wanted $_want)"
    sed 's/^/#   /' "$T/out" "$T/err" | head -n 30
  fi
}
has() { grep -q -- "$2" "$T/$1"; }
# failed_lookups: stderr counts the failed lookups in words that agree
# ("1 lookup failed", "3 lookups failed").
failed_lookups() {
  grep -Eq -- '(^|[^0-9])(1 lookup|([02-9]|[1-9][0-9]+) lookups) failed' \
    "$T/err"
}

# --- address-bound, first server down ---------------------------------------
run "address-bound certificate in LDAP is found" 0 \
  $D $A --output "$T/alice.pem" "alice@$N"
check "it came from the second server, by LDAP" \
  has out "from:    LDAP ldap://127.0.0.1:$NORTH_PORT uid=alice"
check "the dead first server is reported" \
  has err "127.0.0.1:$DEAD_PORT"
check "--output holds the certificate" cmp "$T/alice.pem" "$T/ca/alice.pem"
check "it is the address-bound one" has out "accepted (address-bound)"

# --- domain-bound, SRV priority ---------------------------------------------
run "domain-bound certificate in LDAP is found" 0 $D $A "bob@$S"
check "it is marked domain-bound" has out "accepted (domain-bound)"
check "it came from the priority-10 server" \
  has out "LDAP ldap://127.0.0.1:$SOUTH_PORT uid=domain"
check "the priority-20 decoy was not asked" \
  sh -c "! grep -q ':$DECOY_PORT' '$T/out'"

# --- only invalid -----------------------------------------------------------
run "only invalid candidates in LDAP: nothing selected" 1 $D $A "carol@$N"
check "both were judged" has err "all 2 candidates were skipped"
check "the expired one says so" has out "expired (notAfter is in the past)"
check "the codeSigning one says so" has out "lacks emailProtection"

# --- nothing anywhere -------------------------------------------------------
run "no entry in DNS or LDAP" 1 $D $A "nobody@$W"
check "says nothing is published" has err "no certificate published"
run "nothing found while a server was down" 1 $D $A "nobody@$N"
check "says a lookup failed rather than 'nothing published'" \
  has err "[^0-9]1 lookup failed"

# --- weight -----------------------------------------------------------------
heavy=0
export P11MAIL_DEBUG=1
for i in 1 2 3 4 5; do
  $D $A "dave@$W" >/dev/null 2>"$T/err"
  first=$(grep -m1 'trying LDAP server' "$T/err")
  case $first in
  *":$SOUTH_PORT "*) heavy=$((heavy + 1)) ;;
  esac
done
unset P11MAIL_DEBUG
check "equal priority: the weight-65535 server is asked first (5 of 5)" \
  test "$heavy" = 5

# --- a server that hangs ----------------------------------------------------
# A stopped slapd accepts the connection and never answers: the timeout
# must move discovery on to the next server.
kill -STOP "$DECOY_PID"
t0=$(date +%s)
run "a hanging first server: the next one answers" 0 $D $A "erin@$E"
t1=$(date +%s)
kill -CONT "$DECOY_PID"
check "the certificate came from the second server" \
  has out "LDAP ldap://127.0.0.1:$NORTH_PORT uid=erin"
check "the hanging server is reported" has err "127.0.0.1:$DECOY_PORT"
check "within the time limit ($((t1 - t0)) s)" test $((t1 - t0)) -le 6

# --- a server that goes away ------------------------------------------------
for p in $PIDS; do ldap_stop_pid "$p"; done
PIDS=
run "every LDAP server down: failure, not 'nothing published'" 1 \
  $D $A "alice@$N"
check "the message says lookups failed" failed_lookups

done_testing
