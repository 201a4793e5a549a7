#!/bin/sh
# p11mail discover against a real bind9 serving CERT records (RFC 4398):
# address-bound and domain-bound certificates, invalid candidates skipped,
# an RRset too large for UDP, IPKIX URLs, CRLs, and the failure messages.
set -u

. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/servers/dns.sh"
. "$top_srcdir/tests/test-discover-common.sh"

# named and slapd live in sbin, which a normal user's PATH lacks.
PATH=$PATH:/usr/sbin:/sbin

require_cmd openssl openssl
require_cmd named bind9
require_cmd dig bind9-dnsutils

P11MAIL=$top_builddir/src/p11mail
[ -x "$P11MAIL" ] || skip_all "p11mail is not built"

T=$(mktemp -d)
HTTP_PID=
cleanup() {
  [ -n "$DNS_PID" ] && kill -CONT "$DNS_PID" 2>/dev/null
  dns_stop
  if [ -n "$HTTP_PID" ]; then
    kill "$HTTP_PID" 2>/dev/null
    wait "$HTTP_PID" 2>/dev/null
  fi
  rm -rf "$T"
}
trap cleanup EXIT

# --- certificates -----------------------------------------------------------
certs_init "$T/rogue" || skip_all "openssl cannot make a test CA"
cert_make rogue-carol email:carol@north-clinic.test
ROGUE_CAROL=$(cert_b64 rogue-carol)

certs_init "$T/ca" || skip_all "openssl cannot make a test CA"
N=north-clinic.test
S=south-lab.test
cert_make alice "email:alice@$N"
cert_make alice-old "email:alice@$N" emailProtection \
  20200101000000Z 20200201000000Z
cert_make south-domain "DNS:$S"
cert_make carol-expired "email:carol@$N" emailProtection \
  20200101000000Z 20200201000000Z
cert_make carol-codesign "email:carol@$N" codeSigning
cert_make mallory "email:mallory@$N"
cert_make dave "email:dave@$N"
cert_make dave-expired "email:dave@$N" emailProtection \
  20200101000000Z 20200201000000Z
cert_make dave-notyet "email:dave@$N" emailProtection \
  20400101000000Z 20400201000000Z
cert_make revoked "email:revoked@$N"
cert_make ipkix "email:ipkix@$N"
cert_make gone "email:gone@$N"
for i in 1 2 3 4 5 6; do cert_make "erin$i" "email:erin@$N"; done

# A CRL from the CA revoking one certificate.
openssl ca -batch -config "$T/ca/ca.cnf" -cert "$CA_PEM" \
  -keyfile "$T/ca/ca.key" -revoke "$T/ca/revoked.pem" >/dev/null 2>&1
openssl ca -batch -config "$T/ca/ca.cnf" -cert "$CA_PEM" \
  -keyfile "$T/ca/ca.key" -gencrl -crldays 10 -md sha256 \
  -out "$T/ca.crl" >/dev/null 2>&1

# --- HTTP server for IPKIX --------------------------------------------------
HTTPD=$top_builddir/tests/test-discover-httpd
mkdir -p "$T/www"
openssl x509 -in "$T/ca/ipkix.pem" -outform DER -out "$T/www/ipkix.der"
openssl x509 -in "$T/ca/gone.pem" -outform DER -out "$T/www/gone.der"
head -c 70000 /dev/zero > "$T/www/big.der"
HTTP_PORT=1
if [ -x "$HTTPD" ]; then
  "$HTTPD" "$T/http.port" "$T/www/ipkix.der" "$T/www/big.der" \
    "$T/www/gone.der" \
    2>"$T/http.log" &
  HTTP_PID=$!
  i=0
  while [ ! -s "$T/http.port" ] && [ $i -lt 50 ]; do
    sleep 0.05; i=$((i + 1))
  done
  HTTP_PORT=$(cat "$T/http.port" 2>/dev/null || echo 1)
fi
ipkix_rr() {
  echo "$1 IN CERT IPKIX 0 0 $(printf 'http://127.0.0.1:%s/%s' \
    "$HTTP_PORT" "$2" | openssl base64 -A)"
}

# --- zones ------------------------------------------------------------------
soa() {
  echo "\$TTL 300"
  echo "@ IN SOA ns.$1. admin.$1. 1 3600 600 86400 300"
  echo "@ IN NS ns.$1."
  echo "ns IN A 127.0.0.1"
}
cert_rr() { echo "$1 IN CERT PKIX 0 0 $(cert_b64 "$2")"; }
{
  soa "$N"
  cert_rr alice alice
  cert_rr alice alice-old
  cert_rr carol carol-expired
  cert_rr carol carol-codesign
  cert_rr carol mallory
  echo "carol IN CERT PKIX 0 0 $ROGUE_CAROL"
  cert_rr dave dave-expired
  cert_rr dave dave
  cert_rr dave dave-notyet
  cert_rr revoked revoked
  for i in 1 2 3 4 5 6; do cert_rr erin "erin$i"; done
  ipkix_rr ipkix ipkix.der
  ipkix_rr big big.der
  ipkix_rr gone missing.der
  ipkix_rr gone gone.der
  echo "broken IN CERT PKIX 0 0 $(printf 'not a certificate' |
    openssl base64 -A)"
} > "$T/north.zone"
{
  soa "$S"
  cert_rr @ south-domain
} > "$T/south.zone"

start=$(date +%s%N)
dns_start "$T" "$N" "$T/north.zone" "$S" "$T/south.zone" ||
  skip_all "named could not be started (see the log above)"
diag "named started in $((($(date +%s%N) - start) / 1000000)) ms on port $DNS_PORT"

D="$P11MAIL discover --dns-server 127.0.0.1:$DNS_PORT --timeout 2"
A="--anchor $CA_PEM"

# run NAME EXPECTED-EXIT ARGS...: runs p11mail, keeps stdout and stderr.
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

# --- address-bound ----------------------------------------------------------
run "address-bound certificate in DNS is found" 0 \
  $D $A --output "$T/alice-found.pem" "alice@$N"
check "it is the valid one, not the expired one" \
  has out "chosen: $(cert_sha256 alice)"
check "the expired one is reported as skipped" has out "expired"
check "the candidate is marked address-bound" \
  has out "accepted (address-bound)"
check "--output holds the chosen certificate" \
  cmp "$T/alice-found.pem" "$T/ca/alice.pem"

run "the same lookup without anchors chooses nothing" 1 \
  $D --output "$T/none.pem" "alice@$N"
check "and says no anchor is configured" \
  has out "no trust anchor is configured for $N"
check "--output is not written on failure" \
  test ! -e "$T/none.pem"

# --- domain-bound only ------------------------------------------------------
run "only a domain-bound certificate: found" 0 $D $A "bob@$S"
check "it is marked domain-bound" has out "accepted (domain-bound)"
check "it came from the domain's CERT record" \
  has out "DNS CERT PKIX $S"

# --- only invalid candidates ------------------------------------------------
run "only invalid candidates: nothing selected" 1 $D $A "carol@$N"
check "clear one-line message" \
  has err "no usable certificate for carol@$N: all 4 candidates"
check "expired candidate skipped as expired" \
  has out "^candidate [0-9]: expired (address-bound)"
check "codeSigning-only candidate skipped for its EKU" \
  has out "extendedKeyUsage lacks emailProtection"
check "another address's certificate is discarded" \
  has out "wrong-binding"
check "a certificate from an unknown CA is untrusted" \
  has out "does not chain to an anchor for $N"

# --- valid and invalid in one RRset -----------------------------------------
run "valid among invalid in the same RRset" 0 $D $A "dave@$N"
check "the valid one is chosen" has out "chosen: $(cert_sha256 dave)"
check "the not-yet-valid one is skipped" has out "not valid yet"

# --- large RRset: TCP -------------------------------------------------------
dig +notcp +ignore +norec -p "$DNS_PORT" @127.0.0.1 "erin.$N" CERT \
  >"$T/dig" 2>&1
check "the UDP answer for erin is truncated (over 512 bytes)" \
  grep -q 'flags:.* tc' "$T/dig"
export P11MAIL_DEBUG=1
run "large RRset: found through TCP" 0 $D $A "erin@$N"
unset P11MAIL_DEBUG
check "the retry over TCP happened" has err "answer truncated, asking over TCP"
check "all six certificates were read" has out "^candidate 6: accepted"

# --- IPKIX ------------------------------------------------------------------
if [ -n "$HTTP_PID" ]; then
  run "IPKIX record: certificate fetched by URL" 0 $D $A "ipkix@$N"
  check "it came from the URL" has out "IPKIX ipkix.$N -> http://127.0.0.1"
  run "IPKIX URL serving more than 64 KiB: refused" 1 $D $A "big@$N"
  check "the size limit is named" has err "larger than 65536 bytes"
  check "and the lookup counted as failed" failed_lookups
  run "one IPKIX URL missing, another one good: found" 0 \
    $D $A "gone@$N"
  check "the missing one is reported" has err "cannot fetch"
else
  skip_all_ipkix="test-discover-httpd is not built"
  for n in 1 2 3 4 5 6 7; do skip "IPKIX case $n" "$skip_all_ipkix"; done
fi

# --- CRL --------------------------------------------------------------------
run "without a CRL the certificate is accepted" 0 $D $A "revoked@$N"
run "with the CA's CRL it is refused" 1 $D $A --crl "$T/ca.crl" "revoked@$N"
check "as revoked" has out "^candidate 1: revoked"
run "a good certificate passes the CRL check" 0 \
  $D $A --crl "$T/ca.crl" "alice@$N"

# --- the workstation store as cache -----------------------------------------
DS="$P11MAIL --store $T/store discover --timeout 1"
run "with a store: found and cached" 0 \
  $DS --dns-server "127.0.0.1:$DNS_PORT" $A "alice@$N"
run "the cached result needs no DNS" 0 $DS --dns-server 127.0.0.1:1 $A \
  "alice@$N"
check "and says it is cached" has out "(cached)"
check "it is the same certificate" has out "chosen: $(cert_sha256 alice)"
run "a cached certificate is judged again: no anchor, not used" 1 \
  $DS --dns-server "127.0.0.1:$DNS_PORT" "alice@$N"
check "it is reported untrusted" has out "no trust anchor is configured"
run "nothing found is cached too" 1 \
  $DS --dns-server "127.0.0.1:$DNS_PORT" $A "nobody@$N"
run "the negative entry answers without DNS" 1 \
  $DS --dns-server 127.0.0.1:1 $A "nobody@$N"
check "and says so" has err "remembered from an earlier lookup"

# --- the resolver from the configuration -----------------------------------
printf '[discovery]\ndns-server = 127.0.0.1:%s\ntimeout = 2\n' "$DNS_PORT" \
  > "$T/p11mail.conf"
run "[discovery] dns-server in the configuration is used" 0 \
  "$P11MAIL" --config "$T/p11mail.conf" discover $A "alice@$N"
printf '[discovery]\ndns-server = 127.0.0.1:1\n' > "$T/dead.conf"
run "--dns-server overrides the configuration" 0 \
  "$P11MAIL" --config "$T/dead.conf" discover \
  --dns-server "127.0.0.1:$DNS_PORT" $A "alice@$N"
printf '[discovery]\ndns-server = ns.example\n' > "$T/bad.conf"
run "a bad [discovery] dns-server is refused" 1 \
  "$P11MAIL" --config "$T/bad.conf" discover $A "alice@$N"
check "with a message naming the key" has err "\[discovery\] dns-server"

# --- nothing, garbage, errors -----------------------------------------------
run "no records anywhere" 1 $D $A "nobody@$N"
check "says nothing is published" has err "no certificate published for"
run "a domain the server refuses" 1 $D $A "x@elsewhere.test"
check "the refusal is named" has err "answered x.elsewhere.test with REFUSED"
check "and counted as a failed lookup" failed_lookups
run "a CERT record that is not a certificate" 1 $D $A "broken@$N"
check "is reported malformed" has out "^candidate 1: malformed"
check "the only candidate skipped, in the singular" \
  has err "the only candidate was skipped (see the reason)"
run "JSON report" 0 $D $A --json "alice@$N"
check "JSON names the accepted candidate" \
  has out '"verdict":"accepted","reason"'
check "JSON marks the chosen one" has out '"chosen":true'

run "no address is a usage error" 2 $D $A
run "a malformed address is a usage error" 2 $D $A "not-an-address"
run "a hostile address is a usage error" 2 $D $A "a)(mail=*@$N"
run "a bad --dns-server is a usage error" 2 \
  "$P11MAIL" discover --dns-server "name.example:53" "alice@$N"
run "a missing anchor file fails" 1 \
  $D --anchor "$T/missing.pem" "alice@$N"
check "one line says it cannot be read, and why" test "$(cat "$T/err")" = \
  "p11mail: cannot read $T/missing.pem: No such file or directory"
printf 'no certificate here\n' >"$T/plain.txt"
run "an anchor file without certificates fails" 1 \
  $D --anchor "$T/plain.txt" "alice@$N"
check "one line says it holds none" test "$(cat "$T/err")" = \
  "p11mail: $T/plain.txt holds no PEM certificate"
run "a missing CRL file fails" 1 \
  $D $A --crl "$T/missing.crl" "alice@$N"
check "one line says it cannot be read, and why" test "$(cat "$T/err")" = \
  "p11mail: cannot read $T/missing.crl: No such file or directory"
run "a CRL file without CRLs fails" 1 \
  $D $A --crl "$CA_PEM" "alice@$N"
check "one line says it holds none" test "$(cat "$T/err")" = \
  "p11mail: $CA_PEM holds no PEM CRL"
run "--output refuses to leave a half-written file" 1 \
  $D $A --output "$T/no/such/dir/x.pem" "alice@$N"

# A stopped named receives the queries and never answers.
kill -STOP "$DNS_PID"
t0=$(date +%s)
run "a DNS server that hangs: failure, not 'nothing published'" 1 \
  $D $A --timeout 1 "alice@$N"
t1=$(date +%s)
kill -CONT "$DNS_PID"
check "the message says lookups failed" failed_lookups
check "within the time limit ($((t1 - t0)) s)" test $((t1 - t0)) -le 8


done_testing
