#!/bin/sh
# p11mail trust and certs check over a store: trusting signers of signed
# mail, key replacement refused without confirmation, and expiry reports.
set -u
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/fixture/fixture.sh"
require_cmd openssl openssl
require_cmd python3 python3
fixture_setup

P="$top_builddir/src/p11mail"
CI="$top_builddir/src/p11mail-certinstall"
W="$P11MAIL_FIXTURE_DIR/trust"
mkdir -p "$W"
printf '[identity]\naddress = alice@north-clinic.test\n[token]\nmodule = %s\npin-source = file:%s\n' \
  "$SOFTHSM_MODULE" "$ALICE_PIN_FILE" >"$W/p11mail.conf"
export P11MAIL_CONFIG="$W/p11mail.conf" P11MAIL_STORE="$W/store"

run() {
  _name=$1 _want=$2 _pat=$3; shift 3
  _out=$("$@" 2>&1); _rc=$?
  if [ "$_rc" = "$_want" ] && printf '%s\n' "$_out" | grep -q -- "$_pat"; then
    pass "$_name"
  else
    fail "$_name (status $_rc, want $_want)"
    printf '%s\n' "$_out" | sed 's/^/#   /' | head -10
  fi
}
fp() { openssl x509 -in "$1" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr A-F a-f; }
# json_err NAME PATTERN CMD...: CMD exits 1 with one JSON object on stdout,
# {"error": MESSAGE} with MESSAGE matching PATTERN, and MESSAGE on stderr.
json_err() {
  _name=$1 _pat=$2; shift 2
  "$@" >"$W/e.out" 2>"$W/e.err" </dev/null; _rc=$?
  _msg=$(python3 -c 'import json,sys
d=json.load(sys.stdin)
assert isinstance(d, dict) and list(d) == ["error"]
print(d["error"])' <"$W/e.out" 2>/dev/null)
  if [ "$_rc" = 1 ] && [ -n "$_msg" ] &&
     printf '%s\n' "$_msg" | grep -q -- "$_pat" &&
     grep -qxF "p11mail: $_msg" "$W/e.err"; then
    pass "$_name"
  else
    fail "$_name (status $_rc, want 1)"
    sed 's/^/#   stdout: /' "$W/e.out" | head -5
    sed 's/^/#   stderr: /' "$W/e.err" | head -5
  fi
}
# sign CERT KEY FROM OUT: a clear-signed message from FROM.
sign() {
  printf 'Lab results attached.\r\n' >"$W/body"
  openssl cms -sign -signer "$1" -inkey "$2" -from "$3" \
    -to alice@north-clinic.test -subject results -in "$W/body" -text \
    -out "$4" 2>/dev/null
}

sign "$DAVE_CERT" "$DAVE_KEY" dave@north-clinic.test "$W/dave.eml"
sign "$EVE_CERT" "$EVE_KEY" dave@north-clinic.test "$W/eve-as-dave.eml"
# A second certificate for dave with a new key: a key replacement.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout "$W/dave2.key" -subj "/CN=Dave North" -out "$W/dave2.csr" 2>/dev/null
printf 'subjectAltName=email:dave@north-clinic.test\nkeyUsage=critical,digitalSignature,keyAgreement\nextendedKeyUsage=emailProtection\n' >"$W/ext"
openssl x509 -req -in "$W/dave2.csr" -CA "$CA_CERT" -CAkey "$CA_KEY" \
  -CAcreateserial -days 10 -extfile "$W/ext" -out "$W/dave2.pem" 2>/dev/null
sign "$W/dave2.pem" "$W/dave2.key" dave@north-clinic.test "$W/dave2.eml"
# gina has one certificate only, valid for 10 more days.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout "$W/gina.key" -subj "/CN=Gina South" -out "$W/gina.csr" 2>/dev/null
sed 's/dave@north-clinic.test/gina@south-lab.test/' "$W/ext" >"$W/ext-gina"
openssl x509 -req -in "$W/gina.csr" -CA "$CA_CERT" -CAkey "$CA_KEY" \
  -CAcreateserial -days 10 -extfile "$W/ext-gina" -out "$W/gina.pem" 2>/dev/null
sign "$W/gina.pem" "$W/gina.key" gina@south-lab.test "$W/gina.eml"
printf 'From: dave@north-clinic.test\r\nTo: alice@north-clinic.test\r\nSubject: plain\r\n\r\nNot signed.\r\n' >"$W/plain.eml"
"$CI" anchor add "$CA_CERT" >/dev/null 2>&1

d1=$(fp "$DAVE_CERT"); d2=$(fp "$W/dave2.pem")
run "nothing is trusted at first" 0 "nothing is trusted" "$P" trust list

# trust add MESSAGE shows the certificate and asks on the terminal; with
# no terminal (setsid: no controlling one) and no --yes it trusts nothing.
if command -v setsid >/dev/null 2>&1; then
  out=$(setsid -w "$P" trust add "$W/dave.eml" </dev/null 2>&1); rc=$?
  if [ $rc = 1 ] &&
     printf '%s' "$out" | grep -q "subject: .*CN *= *Dave" &&
     printf '%s' "$out" | grep -q "addresses: dave@north-clinic.test" &&
     printf '%s' "$out" | grep -q "SHA-256: *$d1" &&
     printf '%s' "$out" | grep -q "issuer: .*p11mail Test CA" &&
     printf '%s' "$out" | grep -q "no terminal.*SHA-256 fingerprint.*--yes" &&
     printf '%s' "$out" | grep -q "trust add dave@north-clinic.test --fingerprint $d1"
  then pass "without a terminal or --yes trust add MESSAGE shows the certificate and refuses"
  else fail "trust add without a terminal: status $rc: $out"; fi
  run "and nothing was trusted" 0 "nothing is trusted" "$P" trust list
else
  skip "without a terminal or --yes trust add MESSAGE shows the certificate and refuses" \
    "setsid (util-linux) missing"
  skip "and nothing was trusted" "setsid (util-linux) missing"
fi
if command -v setsid >/dev/null 2>&1; then
  json_err "--json trust add without a terminal or --yes is {\"error\"}" \
    "not trusted: there is no terminal.*--fingerprint $d1" \
    setsid -w "$P" --json trust add "$W/dave.eml"
else
  skip "--json trust add without a terminal or --yes is {\"error\"}" \
    "setsid (util-linux) missing"
fi
json_err "--json trust add of a missing file is {\"error\"}" \
  "cannot read $W/nonexist.eml: No such file or directory" \
  "$P" --json trust add --yes "$W/nonexist.eml"
printf 'not a message\001\n' >"$W/garbage.eml"
json_err "--json trust add of a garbage file is {\"error\"}" \
  "cannot verify $W/garbage.eml" \
  "$P" --json trust add --yes "$W/garbage.eml"
json_err "--json trust add of an unsigned message is {\"error\"}" \
  "is not signed" "$P" --json trust add --yes "$W/plain.eml"
json_err "--json trust add of a signer not the sender is {\"error\"}" \
  "not by its sender" "$P" --json trust add --yes "$W/eve-as-dave.eml"
# Fingerprints: 64 lowercase hex digits everywhere, as the store lists them.
run "trust add --yes of a verified message trusts its signer" 0 \
  "^dave@north-clinic.test: now trusted ($d1)$" \
  "$P" trust add --yes "$W/dave.eml"
out=$("$P" --json trust add --yes "$W/dave.eml" 2>/dev/null); rc=$?
printf '%s' "$out" | python3 -c 'import json,sys
d=json.load(sys.stdin)
assert d == {"address": "dave@north-clinic.test", "fingerprint": sys.argv[1],
             "changed": False}, d' "$d1" && [ $rc = 0 ] &&
  pass "trust add --json gives the lowercase fingerprint, unchanged" ||
  fail "trust add --json: status $rc: $out"
out=$("$P" verify --json "$W/dave.eml" 2>/dev/null)
[ "$(printf '%s' "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["signers"][0]["fingerprint_sha256"])')" = "$d1" ] &&
  pass "verify --json gives the lowercase fingerprint trust list gives" ||
  fail "verify --json fingerprint: $out"
if command -v setsid >/dev/null 2>&1; then
  run "the same again changes nothing and asks nothing" 0 \
    "already trusted; nothing changed" \
    setsid -w "$P" trust add "$W/dave.eml" </dev/null
else
  run "the same again changes nothing" 0 "already trusted; nothing changed" \
    "$P" trust add --yes "$W/dave.eml"
fi
run "trust list shows it" 0 "$d1 TRUSTED" "$P" trust list
run "a signer that is not the sender is refused" 1 "not by its sender" \
  "$P" trust add --yes "$W/eve-as-dave.eml"
"$P" trust show eve@south-lab.test >/dev/null 2>&1 &&
  fail "eve's certificate was not stored for anyone" ||
  pass "eve's certificate was not stored for anyone"
run "an unsigned message is refused" 1 "is not signed" "$P" trust add --yes "$W/plain.eml"

# Key replacement needs confirmation and shows both fingerprints.
json_err "--json trust add of a changed certificate is {\"error\"}" \
  "not changed: dave@north-clinic.test .*$d1.*--replace" \
  "$P" --json trust add --yes "$W/dave2.eml"
out=$("$P" trust add --yes "$W/dave2.eml" </dev/null 2>&1); rc=$?
if [ $rc = 1 ] && printf '%s' "$out" | grep -q "$d1" &&
   printf '%s' "$out" | grep -q "$d2" && printf '%s' "$out" | grep -q -- --replace
then pass "a changed certificate is refused, showing both fingerprints"
else fail "key replacement: status $rc: $out"; fi
run "the old certificate stays the trusted one" 0 "$d1 TRUSTED" \
  "$P" trust list dave@north-clinic.test
run "with --replace the new certificate is trusted" 0 "now trusted" \
  "$P" trust add --yes --replace "$W/dave2.eml"
n=$("$P" --json trust list | python3 -c 'import json,sys; d=json.load(sys.stdin); print(len(d), d[0]["fingerprint"])')
[ "$n" = "1 $d2" ] && pass "exactly one trusted certificate for dave: the new one" ||
  fail "trusted after replace: $n"
run "trust show lists both, one trusted" 0 "$d1 not-trusted" \
  "$P" trust show dave@north-clinic.test
# An answer at the terminal: "n" trusts nothing, "y" trusts (through a
# pseudo-terminal made by script(1)).
if command -v script >/dev/null 2>&1 && command -v setsid >/dev/null 2>&1; then
  out=$(printf 'n\n' | setsid -w script -qec "'$P' trust add '$W/gina.eml'" /dev/null 2>&1); rc=$?
  if [ $rc = 1 ] && printf '%s' "$out" | grep -q 'Trust this certificate? \[y/N\]' &&
     printf '%s' "$out" | grep -q 'not confirmed'
  then pass "at the terminal, n trusts nothing"
  else fail "answer n: status $rc: $out"; fi
  run "gina is not trusted after the n" 0 "nothing is trusted" \
    "$P" trust list gina@south-lab.test
  out=$(printf 'y\n' | setsid -w script -qec "'$P' trust add '$W/gina.eml'" /dev/null 2>&1); rc=$?
  if [ $rc = 0 ] && printf '%s' "$out" | grep -q 'Trust this certificate? \[y/N\]' &&
     printf '%s' "$out" | grep -q 'gina@south-lab.test: now trusted'
  then pass "at the terminal, y trusts the certificate"
  else fail "answer y: status $rc: $out"; fi
  "$P" trust remove gina@south-lab.test >/dev/null 2>&1
else
  skip "at the terminal, n trusts nothing" "script (bsdutils) or setsid missing"
  skip "gina is not trusted after the n" "script (bsdutils) or setsid missing"
  skip "at the terminal, y trusts the certificate" \
    "script (bsdutils) or setsid missing"
fi
run "trust add by address and cached fingerprint (needs --replace)" 0 \
  "now trusted" "$P" trust add --replace dave@north-clinic.test "$(printf '%s' "$d1" | cut -c1-12)"
run "trust add ADDRESS --fingerprint FP in uppercase" 0 \
  "already trusted" "$P" trust add dave@north-clinic.test \
  --fingerprint "$(printf '%s' "$d1" | tr a-f A-F)"
run "trust add ADDRESS --fingerprint FP with colons" 0 \
  "already trusted" "$P" trust add dave@north-clinic.test \
  --fingerprint "$(printf '%s' "$d1" | tr a-f A-F | sed 's/../&:/g; s/:$//')"
json_err "--json trust add with an unknown fingerprint is {\"error\"}" \
  "is cached" "$P" --json trust add dave@north-clinic.test 0123456789abcdef
run "trust add with an unknown fingerprint fails" 1 "is cached" \
  "$P" trust add dave@north-clinic.test 0123456789abcdef
run "trust add with a malformed fingerprint is a usage error" 2 \
  "not a fingerprint" "$P" trust add dave@north-clinic.test xyz
run "trust remove withdraws trust" 0 "trust withdrawn" \
  "$P" trust remove dave@north-clinic.test
run "trust remove again fails" 1 "no trusted certificate" \
  "$P" trust remove dave@north-clinic.test
run "trust show of an unknown address fails" 1 "no certificate is known" \
  "$P" trust show nobody@nowhere.test
out=$("$P" trust show nobody@nowhere.test 2>/dev/null)
err=$("$P" trust show nobody@nowhere.test 2>&1 >/dev/null)
[ -z "$out" ] &&
  [ "$err" = "p11mail: nobody@nowhere.test: no certificate is known for this address" ] &&
  pass "trust show of an unknown address says so on stderr, as p11mail" ||
  fail "trust show unknown: stdout '$out' stderr '$err'"
run "trust add of a missing file is named with the reason" 1 \
  "cannot read $W/nonexist.eml: No such file or directory" \
  "$P" trust add --yes "$W/nonexist.eml"
out=$("$P" trust --x list 2>&1); rc=$?
[ $rc = 2 ] && [ "$out" = "p11mail trust: unknown option '--x'
Try 'p11mail trust --help'." ] &&
  pass "an unknown trust option is one usage line and where to look" ||
  fail "trust --x: status $rc: $out"
for verb in list show; do
  set -- "$P" --store "$W/none/deeper" trust $verb
  [ $verb = show ] && set -- "$@" dave@north-clinic.test
  run "trust $verb of a missing store says there is none" 1 \
    "there is no store at $W/none/deeper" "$@"
done
for verb in list show; do
  set -- "$P" --json --store "$W/none/deeper" trust $verb
  [ $verb = show ] && set -- "$@" dave@north-clinic.test
  json_err "--json trust $verb of a missing store is {\"error\"}" \
    "there is no store at $W/none/deeper" "$@"
done
run "trust remove from a missing store says there is none" 1 \
  "there is no store at $W/none/deeper" \
  "$P" --store "$W/none/deeper" trust remove dave@north-clinic.test
[ ! -e "$W/none" ] && pass "trust created no store for list, show or remove" ||
  fail "created: $(find "$W/none")"
run "trust with a bad verb is a usage error" 2 "wrong arguments" \
  "$P" trust frobnicate x

# certs check: gina's only certificate expires in 10 days; dave's short
# one is not news while his other certificate stays valid.
g=$(fp "$W/gina.pem")
"$P" trust add --yes "$W/gina.eml" >/dev/null 2>&1
run "certs check within 30 days reports the trusted certificate" 3 \
  "expiring trusted *gina@south-lab.test $g" "$P" certs check --days 30
"$P" certs check --days 30 2>&1 | grep -q dave@ &&
  fail "a certificate replaced by a longer-valid one is not reported" ||
  pass "a certificate replaced by a longer-valid one is not reported"
run "certs check within 5 days finds nothing" 0 "no certificate expires" \
  "$P" certs check --days 5
out=$("$P" --json certs check --days 30); rc=$?
if [ $rc = 3 ] && printf '%s' "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert len(d)==1 and d[0]["role"]=="trusted" and d[0]["days_left"] in (9,10) and not d[0]["expired"]'
then pass "certs check --json gives role, days left and expired"
else fail "certs check --json: $rc $out"; fi
# The clock moved 40 days on: gina's certificate has expired.
P11MAIL_STORE_NOW=$(( $(date +%s) + 40 * 86400 )) run \
  "an expired certificate gives status 4 and says what to do" 4 \
  "EXPIRED.*repeat the signed exchange" "$P" certs check --days 30
run "certs check with bad days is a usage error" 2 "--days" \
  "$P" certs check --days -3

done_testing
