#!/bin/sh
# p11mail-certinstall on SoftHSM2 tokens: install, import, register,
# keygen, anchors, export and remove, and every refusal leaving nothing
# behind (an import the token stops half-way is taken back).
set -u
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/fixture/fixture.sh"
require_cmd openssl openssl
require_cmd pkcs11-tool opensc
require_cmd python3 python3
fixture_setup

CI="$top_builddir/src/p11mail-certinstall"
W="$P11MAIL_FIXTURE_DIR/ci"
mkdir -p "$W"
cat >"$W/p11mail.conf" <<CONF
[identity]
address = alice@north-clinic.test
[token]
module = $SOFTHSM_MODULE
pin-source = file:$ALICE_PIN_FILE
CONF
export P11MAIL_CONFIG="$W/p11mail.conf" P11MAIL_STORE="$W/store"
T="pkcs11:serial=$ALICE_TOKEN_SERIAL"

# objects: how many objects alice's token holds (after login).
objects() {
  pkcs11-tool --module "$SOFTHSM_MODULE" --token-label "$ALICE_TOKEN_LABEL" \
    --login --pin "$ALICE_PIN" -O 2>/dev/null | grep -c 'Object;'
}
# run NAME EXPECTED-STATUS PATTERN CMD...: status and a line of output.
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
# p11 ARGS...: pkcs11-tool logged in on alice's token.
p11() {
  pkcs11-tool --module "$SOFTHSM_MODULE" --token-label "$ALICE_TOKEN_LABEL" \
    --login --pin "$ALICE_PIN" "$@"
}
# count_label CLASS LABEL: objects of a class (privkey, pubkey, cert).
count_label() {
  p11 -O 2>/dev/null | awk -v t="$1" -v l="$2" '
    /Object;/ { c = /^Private/ ? "privkey" : /^Public/ ? "pubkey" : \
                /^Certificate/ ? "cert" : "" }
    $1 == "label:" { sub(/^[ \t]*label:[ \t]*/, ""); if (c == t && $0 == l) n++ }
    END { print n + 0 }'
}
# issue NAME ADDRESS: an EC key and a certificate from the test CA in $W.
issue() {
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
    -out "$W/$1.key" 2>/dev/null
  printf 'subjectAltName=email:%s\nkeyUsage=critical,digitalSignature,keyAgreement\nextendedKeyUsage=emailProtection\n' \
    "$2" >"$W/$1.ext"
  openssl req -new -key "$W/$1.key" -subj "/CN=$1" 2>/dev/null |
    openssl x509 -req -CA "$CA_CERT" -CAkey "$CA_KEY" -CAcreateserial \
      -days 30 -extfile "$W/$1.ext" -out "$W/$1.pem" 2>/dev/null
}
# key_id CERT: the CKA_ID import gives a P-256 key (SHA-1 of the point).
key_id() {
  openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -outform DER |
    tail -c 65 | openssl dgst -sha1 -r | cut -c1-40
}

# install: twice, the second changes nothing.
run "install records the identity" 0 "identity recorded" \
  "$CI" install "$ALICE_RSA_CERT" --token "$T"
run "the same install again changes nothing and says so" 0 \
  "already installed; nothing changed" "$CI" install "$ALICE_RSA_CERT" --token "$T"
run "list shows the identity with its key URI" 0 "id=%01;type=private" "$CI" list
json=$("$CI" --json list)
if printf '%s' "$json" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert len(d)==1 and d[0]["address"]=="alice@north-clinic.test" and d[0]["fingerprint"]==sys.argv[1]' "$(fp "$ALICE_RSA_CERT")" 2>/dev/null
then pass "list --json is one identity with the right fingerprint"
else fail "list --json: $json"; fi

out=$("$CI" install "$ALICE_RSA_CERT" --token "$T?pin-value=$ALICE_PIN" 2>&1)
[ $? = 2 ] && printf '%s' "$out" | grep -q 'never given on the command line' &&
  pass "a PIN in a command-line URI is refused" ||
  fail "pin-value in --token: $out"

# A certificate whose key is not on the token: refused, nothing written.
before=$(objects)
run "a certificate whose key is not on the token is refused" 1 \
  "no private key on the token" "$CI" install "$BOB_RSA_CERT" --token "$T"
[ "$(objects)" = "$before" ] && pass "no token object left by the refused install" ||
  fail "token objects changed: $before -> $(objects)"
"$CI" list | grep -q bob@ && fail "no store row for the refused install" ||
  pass "no store row for the refused install"
run "an expired certificate is refused" 1 "has expired" \
  "$CI" install "$BAD_EXPIRED_CERT" --token "$T"
run "a file without a certificate is refused" 1 "holds no certificate" \
  "$CI" install "$ALICE_PIN_FILE" --token "$T"
run "a missing certificate file is named with the reason" 1 \
  "cannot read $W/nonexist.pem: No such file or directory" \
  "$CI" install "$W/nonexist.pem" --token "$T"
run "a certificate not yet valid is refused" 1 "not yet valid" \
  "$CI" install "$BAD_NOTYET_CERT" --token "$T"
run "a certificate without emailProtection is refused with the reason" 1 \
  "cannot serve S/MIME.*emailProtection" \
  "$CI" install "$BAD_EKU_CERT" --token "$T"
run "an unknown option is one usage line" 2 \
  "^p11mail-certinstall install: unknown option '--x'$" \
  "$CI" install --x "$ALICE_RSA_CERT"
out=$("$CI" install --x "$ALICE_RSA_CERT" 2>&1)
[ "$out" = "p11mail-certinstall install: unknown option '--x'
Try 'p11mail-certinstall install --help'." ] &&
  pass "an unknown option: the option, then where to look, nothing else" ||
  fail "unknown option output: $out"
run "--system with --store is a usage error" 2 \
  "--system and --store name different stores" \
  "$CI" --store "$W/other" list --system
[ ! -e "$W/other" ] && pass "the refused --system --store created nothing" ||
  fail "--system --store created $W/other"

# import: bad files and passwords fail before anything is written.
printf 'pfx-secret' >"$W/pass"; chmod 600 "$W/pass"
printf 'not-it' >"$W/wrong"; chmod 600 "$W/wrong"
openssl pkcs12 -export -in "$DAVE_CERT" -inkey "$DAVE_KEY" \
  -certfile "$CA_CERT" -passout "file:$W/pass" -out "$W/dave.p12"
head -c 400 "$W/dave.p12" >"$W/truncated.p12"
printf 'hello' >"$W/junk.p12"
before=$(objects)
run "a truncated PKCS#12 file is refused" 1 "not a PKCS#12" \
  "$CI" import "$W/truncated.p12" --token "$T" --password-source "file:$W/pass"
run "a file that is not PKCS#12 is refused" 1 "not a PKCS#12" \
  "$CI" import "$W/junk.p12" --token "$T" --password-source "file:$W/pass"
run "a wrong PFX password is refused" 1 "wrong password" \
  "$CI" import "$W/dave.p12" --token "$T" --password-source "file:$W/wrong"
chmod 644 "$W/pass"
run "a password file others can read is refused" 1 "group or others" \
  "$CI" import "$W/dave.p12" --token "$T" --password-source "file:$W/pass"
chmod 600 "$W/pass"
run "a password given on the command line is refused" 1 \
  "never taken from the command line" \
  "$CI" import "$W/dave.p12" --token "$T" --password-source pfx-secret
if "$CI" import "$W/dave.p12" --token "$T" --password-source pfx-secret 2>&1 |
   grep -q pfx-secret; then fail "the refused secret is not echoed"
else pass "the refused secret is not echoed"; fi
run "without a terminal or source the password is not asked" 1 \
  "password-source" "$CI" import "$W/dave.p12" --token "$T"
out=$("$CI" import "$W/nonexist.p12" --token "$T" </dev/null 2>&1); rc=$?
if [ $rc = 1 ] && printf '%s\n' "$out" |
     grep -q "cannot read $W/nonexist.p12: No such file or directory" &&
   ! printf '%s' "$out" | grep -q password; then
  pass "a missing PKCS#12 file is named before any password is asked"
else fail "import of a missing file: status $rc: $out"; fi
[ "$(objects)" = "$before" ] && pass "failed imports left no token object" ||
  fail "token objects changed: $before -> $(objects)"
"$CI" list | grep -q dave@ && fail "failed imports left no store row" ||
  pass "failed imports left no store row"

run "import puts key and certificate on the token" 0 "identity recorded" \
  "$CI" import "$W/dave.p12" --token "$T" --password-source "file:$W/pass" --yes
[ "$(objects)" = "$((before + 3))" ] &&
  pass "import wrote private key, public key and certificate" ||
  fail "objects after import: $before -> $(objects)"
attrs=$(pkcs11-tool --module "$SOFTHSM_MODULE" --token-label "$ALICE_TOKEN_LABEL" \
  --login --pin "$ALICE_PIN" -O --type privkey --label dave@north-clinic.test 2>/dev/null)
if printf '%s' "$attrs" | grep -q 'Access:.*sensitive' &&
   ! printf '%s' "$attrs" | grep -q 'extractable' ||
   printf '%s' "$attrs" | grep -q 'never extractable'; then
  pass "the imported key is sensitive and not extractable"
else fail "imported key attributes: $attrs"; fi
run "the chain's CA became an anchor with --yes" 0 "p11mail Test CA" \
  "$CI" anchor list
run "importing again changes nothing" 0 "nothing changed" \
  "$CI" import "$W/dave.p12" --token "$T" --password-source "file:$W/pass" --yes

# import is all or nothing: a certificate the token refuses takes the key
# written before it away again.  A stale certificate of another key already
# holds the id the new key gets, so the token refuses the new certificate.
issue ivy ivy@north-clinic.test
openssl pkcs12 -export -in "$W/ivy.pem" -inkey "$W/ivy.key" \
  -passout "file:$W/pass" -out "$W/ivy.p12"
ivy_id=$(key_id "$W/ivy.pem")
openssl x509 -in "$BOB_EC_CERT" -outform DER -out "$W/stale.der"
p11 --write-object "$W/stale.der" --type cert --id "$ivy_id" \
  --label stale >/dev/null 2>&1
before=$(objects)
run "import stops when the token refuses the certificate" 1 \
  "cannot write the certificate to the token" \
  "$CI" import "$W/ivy.p12" --token "$T" --password-source "file:$W/pass" \
  --no-anchor
run "the refused import says the key went again" 1 "removed again" \
  "$CI" import "$W/ivy.p12" --token "$T" --password-source "file:$W/pass" \
  --no-anchor
[ "$(objects)" = "$before" ] &&
  pass "no key of the refused import is left on the token" ||
  fail "objects after the refused import: $before -> $(objects)"
[ "$(count_label privkey ivy@north-clinic.test)" = 0 ] &&
  [ "$(count_label cert stale)" = 1 ] &&
  pass "the refused import took its own key away, and only that" ||
  fail "ivy's key or the stale certificate"
"$CI" list | grep -q ivy@ && fail "no store row for the refused import" ||
  pass "no store row for the refused import"

# The same with a token that also refuses to delete: the leftover is named.
fixture_faulty
sed "s|^module = .*|module = $P11FAULTY_MODULE|" "$W/p11mail.conf" >"$W/faulty.conf"
echo 'fail C_DestroyObject CKR_DEVICE_ERROR' >"$P11FAULTY_CONTROL"
run "a leftover the token will not delete is named with its URI" 1 \
  "delete the objects of pkcs11:.*by hand" \
  "$CI" --config "$W/faulty.conf" import "$W/ivy.p12" --token "$T" \
  --password-source "file:$W/pass" --no-anchor
grep -q '^C_DestroyObject' "$P11FAULTY_COUNTS" &&
  pass "the key import was really taken back (C_DestroyObject called)" ||
  fail "C_DestroyObject was not called"
rm -f "$P11FAULTY_CONTROL"
[ "$(count_label privkey ivy@north-clinic.test)" = 1 ] &&
  pass "the leftover key is on the token as reported" ||
  fail "leftover key: $(count_label privkey ivy@north-clinic.test)"
p11 --delete-object --type privkey --id "$ivy_id" >/dev/null 2>&1
p11 --delete-object --type pubkey --id "$ivy_id" >/dev/null 2>&1
echo 'fail C_CreateObject CKR_DEVICE_ERROR' >"$P11FAULTY_CONTROL"
before=$(objects)
run "a token that takes no key stops the import" 1 \
  "cannot put the key on the token" \
  "$CI" --config "$W/faulty.conf" import "$W/ivy.p12" --token "$T" \
  --password-source "file:$W/pass" --no-anchor
rm -f "$P11FAULTY_CONTROL"
[ "$(objects)" = "$before" ] && pass "nothing written by the failed key import" ||
  fail "objects: $before -> $(objects)"
p11 --delete-object --type cert --id "$ivy_id" >/dev/null 2>&1
before=$(objects)
run "without the stale certificate ivy's file imports" 0 \
  "ivy@north-clinic.test: identity recorded" \
  "$CI" import "$W/ivy.p12" --token "$T" --password-source "file:$W/pass" \
  --no-anchor
[ "$(objects)" = "$((before + 3))" ] && pass "ivy's key pair and certificate" ||
  fail "objects after ivy's import: $before -> $(objects)"

if openssl pkcs12 -export -legacy -in "$EVE_CERT" -inkey "$EVE_KEY" \
     -passout "file:$W/pass" -out "$W/eve-legacy.p12" 2>/dev/null; then
  run "a PKCS#12 file with legacy RC2 encryption imports" 0 \
    "eve@south-lab.test: identity recorded" \
    "$CI" import "$W/eve-legacy.p12" --token "$T" \
    --password-source "file:$W/pass" --no-anchor
else
  skip "a PKCS#12 file with legacy RC2 encryption imports" \
    "openssl cannot write legacy PKCS#12"
fi

# register: identities already on the token.
run "register by key URI" 0 "identity recorded" \
  "$CI" register --uri "$ALICE_EC_URI"
run "register by address finds every certificate with its key" 0 \
  "id=%03" "$CI" register --address alice@north-clinic.test --token "$T"
# Without --token every token is looked at; SoftHSM2's uninitialized spare
# slot is not one of them.
run "register without --token finds the key among every token" 0 \
  "alice@north-clinic.test: already installed" \
  "$CI" register --address alice@north-clinic.test
run "install without --token finds the key among every token" 0 \
  "already installed" "$CI" install "$ALICE_RSA_CERT"
# Without --token the key is found by the tokens' public objects: only the
# token showing the certificate's public key is logged in to, so a PIN is
# never tried on another token (SoftHSM2 marks a wrong try "count low").
pin_count_low() {
  pkcs11-tool --module "$SOFTHSM_MODULE" -L 2>/dev/null |
    awk -v l="$1" '$1 == "token" && $2 == "label" { t = ($4 == l) }
                   t && /token flags/ && /PIN count low/ { n++ }
                   END { exit n ? 0 : 1 }'
}
login_calls() { grep -c "pkcs11: C_Login -> $1" "$W/trace"; }
# Alice's configuration gives alice's PIN: bob's token, which shows only
# bob's certificates, is never given it, found by search or named.
rm -f "$W/trace"
P11MAIL_DEBUG="$W/trace" run "alice's PIN is not tried on bob's token" 1 \
  "shows certificates for bob@south-lab.test, not for alice@north-clinic.test" \
  "$CI" --store "$W/store-bob2" install "$BOB_EC_CERT"
[ "$(login_calls '')" = 0 ] && pass "no login at all for bob's certificate" ||
  fail "logins: $(grep 'C_Login' "$W/trace" | sed 's/.*: //' | tr '\n' ' ')"
rm -f "$W/trace"
P11MAIL_DEBUG="$W/trace" run "nor when --token names bob's token" 1 \
  "not tried on another person's token" \
  "$CI" --store "$W/store-bob2" install "$BOB_RSA_CERT" \
  --token "pkcs11:serial=$BOB_TOKEN_SERIAL"
[ "$(login_calls '')" = 0 ] && pass "no login on the named token either" ||
  fail "logins: $(grep 'C_Login' "$W/trace" | sed 's/.*: //' | tr '\n' ' ')"
pin_count_low "$BOB_TOKEN_LABEL" && fail "bob's token was given alice's PIN" ||
  pass "bob's PIN count is untouched"
[ ! -e "$W/store-bob2/store.db" ] ||
  ! "$CI" --store "$W/store-bob2" list | grep -q bob@ &&
  pass "nothing recorded for the refused install" ||
  fail "bob recorded in store-bob2"
# The same configuration without a pin-source asks on the terminal: bob's
# token is still never asked for or given a PIN typed there.
sed '/^pin-source = /d' "$W/p11mail.conf" >"$W/nopin.conf"
if command -v script >/dev/null 2>&1; then
  rm -f "$W/trace"
  printf '%s\n' "$(cat "$ALICE_PIN_FILE")" |
    P11MAIL_DEBUG="$W/trace" script -qec "'$CI' --config '$W/nopin.conf' \
      --store '$W/store-bob2' install '$BOB_EC_CERT'; echo rc=\$?" \
      /dev/null >"$W/pty.out" 2>&1
  grep -q "rc=1" "$W/pty.out" &&
    grep -q "shows certificates for bob@south-lab.test, not for alice@north-clinic.test" "$W/pty.out" &&
    ! grep -q "PIN for" "$W/pty.out" &&
    pass "a terminal PIN is not asked for bob's token" ||
    fail "terminal install: $(tr '\r\n' '  ' <"$W/pty.out")"
  [ "$(login_calls '')" = 0 ] && pass "no login on bob's token from the terminal" ||
    fail "logins: $(grep 'C_Login' "$W/trace" | sed 's/.*: //' | tr '\n' ' ')"
  pin_count_low "$BOB_TOKEN_LABEL" && fail "bob's token was given a typed PIN" ||
    pass "bob's PIN count is untouched by a terminal PIN"
else
  skip "a terminal PIN is not asked for bob's token" "script missing"
  skip "no login on bob's token from the terminal" "script missing"
  skip "bob's PIN count is untouched by a terminal PIN" "script missing"
fi
# A configuration whose PIN is bob's, with alice's address: the person
# says that PIN is this token's.
sed "s|^pin-source = .*|pin-source = file:$BOB_PIN_FILE|" "$W/p11mail.conf" \
  >"$W/mixed.conf"
run "--use-configured-pin gives the configured PIN to the token" 0 \
  "bob@south-lab.test: identity recorded" \
  "$CI" --config "$W/mixed.conf" --store "$W/store-bob2" install \
  "$BOB_RSA_CERT" --use-configured-pin
sed "s|^pin-source = .*|pin-source = file:$BOB_PIN_FILE|; s|^address = .*|address = bob@south-lab.test|" \
  "$W/p11mail.conf" >"$W/bob.conf"
rm -f "$W/trace"
P11MAIL_DEBUG="$W/trace" run "install without --token logs in to the key's token" \
  0 "bob@south-lab.test: identity recorded" \
  "$CI" --config "$W/bob.conf" --store "$W/store-bob" install "$BOB_EC_CERT"
[ "$(login_calls CKR_OK)" = 1 ] && [ "$(login_calls CKR_PIN)" = 0 ] &&
  pass "one login, on bob's token, and no PIN tried elsewhere" ||
  fail "logins: $(grep 'C_Login' "$W/trace" | sed 's/.*: //' | tr '\n' ' ')"
pin_count_low "$ALICE_TOKEN_LABEL" &&
  fail "alice's token was given bob's PIN" ||
  pass "alice's token was not given bob's PIN"
issue kim kim@north-clinic.test
rm -f "$W/trace"
P11MAIL_DEBUG="$W/trace" run "a key no token shows is not searched by logging in" \
  1 "searched without logging in.*--token URI" \
  "$CI" --store "$W/store-bob" install "$W/kim.pem"
[ "$(login_calls '')" = 0 ] && pass "no token was logged in to" ||
  fail "logins: $(grep 'C_Login' "$W/trace" | sed 's/.*: //' | tr '\n' ' ')"
pin_count_low "$BOB_TOKEN_LABEL" && fail "bob's token was given alice's PIN" ||
  pass "bob's token was not given alice's PIN"
"$CI" --store "$W/store-bob" list | grep -q kim@ &&
  fail "no store row for kim" || pass "no store row for kim"
run "register for an address with nothing on the token fails" 1 \
  "no certificate for nobody@north-clinic.test" \
  "$CI" register --address nobody@north-clinic.test --token "$T"

# keygen, then the CA issues, then install.
run "keygen makes a key on the token and a CSR" 0 "" \
  "$CI" keygen --address Frank@North-Clinic.test --type ec --token "$T" \
  --out "$W/frank.csr"
if openssl req -in "$W/frank.csr" -noout -verify 2>&1 | grep -q 'verify OK' &&
   openssl req -in "$W/frank.csr" -noout -text | grep -q 'email:frank@north-clinic.test'
then pass "the CSR is signed by the token key and names the address"
else fail "CSR check"; fi
printf 'subjectAltName=email:frank@north-clinic.test\nkeyUsage=critical,digitalSignature,keyAgreement\nextendedKeyUsage=emailProtection\n' >"$W/ext"
openssl x509 -req -in "$W/frank.csr" -CA "$CA_CERT" -CAkey "$CA_KEY" \
  -CAcreateserial -days 20 -extfile "$W/ext" -out "$W/frank.pem" 2>/dev/null
run "the issued certificate installs next to the generated key" 0 \
  "frank@north-clinic.test: identity recorded" \
  "$CI" install "$W/frank.pem" --chain "$CA_CERT" --token "$T"
out=$("$CI" install "$W/frank.pem" --token "$T" 2>&1); rc=$?
[ $rc = 0 ] && [ "$out" = "frank@north-clinic.test: already installed; nothing changed" ] &&
  pass "installing it again changes nothing and says so in one line" ||
  fail "install again: status $rc: $out"
# A certificate for the same key that cannot serve S/MIME never replaces
# the token's good one.
printf 'subjectAltName=email:frank@north-clinic.test\nkeyUsage=critical,keyCertSign\nextendedKeyUsage=codeSigning\n' >"$W/ext-bad"
openssl x509 -req -in "$W/frank.csr" -CA "$CA_CERT" -CAkey "$CA_KEY" \
  -CAcreateserial -days 500 -extfile "$W/ext-bad" -out "$W/frank-bad.pem" 2>/dev/null
run "a certificate for the key that cannot serve S/MIME is refused" 1 \
  "cannot serve S/MIME: for signing keyUsage lacks" \
  "$CI" install "$W/frank-bad.pem" --token "$T"
openssl x509 -req -in "$W/frank.csr" -CA "$CA_CERT" -CAkey "$CA_KEY" \
  -CAcreateserial -days 400 -extfile "$W/ext" -out "$W/frank2.pem" 2>/dev/null
run "a renewed certificate for the same key installs" 0 \
  "frank@north-clinic.test: identity recorded" \
  "$CI" install "$W/frank2.pem" --token "$T"
rm -f "$W/frank-token.der"
p11 --read-object --type cert --label frank@north-clinic.test \
  -o "$W/frank-token.der" >/dev/null 2>&1
if [ "$(count_label cert frank@north-clinic.test)" = 1 ] &&
   [ "$(openssl x509 -inform DER -in "$W/frank-token.der" -noout -fingerprint -sha256 2>/dev/null |
        sed 's/.*=//; s/://g' | tr A-F a-f)" = "$(fp "$W/frank2.pem")" ]
then pass "the token's certificate for the key is the renewed one, alone"
else fail "frank's certificates on the token: $(count_label cert frank@north-clinic.test)"; fi
run "the older one does not replace the longer valid one" 1 \
  "valid until .*longer than this one.*--replace" \
  "$CI" install "$W/frank.pem" --token "$T"
rm -f "$W/frank-token.der"
p11 --read-object --type cert --label frank@north-clinic.test \
  -o "$W/frank-token.der" >/dev/null 2>&1
[ "$(openssl x509 -inform DER -in "$W/frank-token.der" -noout -fingerprint -sha256 2>/dev/null |
     sed 's/.*=//; s/://g' | tr A-F a-f)" = "$(fp "$W/frank2.pem")" ] &&
  pass "the token keeps the longer valid certificate" ||
  fail "the token's certificate changed"
out=$("$CI" install "$W/frank.pem" --token "$T" --replace 2>&1); rc=$?
[ $rc = 0 ] && [ "$out" = "frank@north-clinic.test: already recorded; the token's other certificate for this key was replaced by this one" ] &&
  pass "with --replace the older one goes back, said in one true line" ||
  fail "install --replace: status $rc: $out"
run "and the renewed one once more" 0 "other certificate for this key was replaced" \
  "$CI" install "$W/frank2.pem" --token "$T"
[ "$(count_label cert frank@north-clinic.test)" = 1 ] &&
  pass "still one certificate for frank's key" ||
  fail "frank's certificates: $(count_label cert frank@north-clinic.test)"
"$CI" export frank@north-clinic.test >"$W/frank-now.pem" 2>/dev/null
[ "$(fp "$W/frank-now.pem")" = "$(fp "$W/frank2.pem")" ] &&
  pass "export picks the renewed certificate" || fail "export after renewal"
run "keygen without an address is a usage error" 2 "needs --address" \
  "$CI" keygen --token "$T"
run "keygen makes an RSA key too" 0 "BEGIN CERTIFICATE REQUEST" \
  "$CI" keygen --address gina@north-clinic.test --type rsa --bits 2048 \
  --token "$T"
before=$(objects)
run "keygen refuses to overwrite a CSR file" 1 "must not exist" \
  "$CI" keygen --address hank@north-clinic.test --type ec --token "$T" \
  --out "$W/frank.csr"
[ "$(objects)" = "$before" ] && pass "a refused keygen made no key" ||
  fail "keygen left objects: $before -> $(objects)"
run "keygen names the real cause of an output it cannot write" 1 \
  "cannot write $W/missing/hank.csr: No such file or directory" \
  "$CI" keygen --address hank@north-clinic.test --type ec --token "$T" \
  --out "$W/missing/hank.csr"
[ "$(objects)" = "$before" ] && pass "an output in a missing directory made no key" ||
  fail "keygen left objects: $before -> $(objects)"
if [ -w /dev/full ]; then
  out=$("$CI" keygen --address hank@north-clinic.test --type ec --token "$T" \
    2>&1 >/dev/full); rc=$?
  if [ $rc = 1 ] &&
     printf '%s' "$out" | grep -q 'cannot write the request to standard output: No space left' &&
     printf '%s' "$out" | grep -q 'deleted from the token again (2 objects)'
  then pass "a request that cannot be written takes its key back, saying why"
  else fail "keygen to a full output: status $rc: $out"; fi
  [ "$(objects)" = "$before" ] && [ "$(count_label privkey hank@north-clinic.test)" = 0 ] &&
    pass "no key is left for the request that was not written" ||
    fail "keygen to a full output left objects: $before -> $(objects)"
else
  skip "a request that cannot be written takes its key back, saying why" \
    "no /dev/full"
  skip "no key is left for the request that was not written" "no /dev/full"
fi
run "keygen refuses odd RSA sizes" 2 "2048, 3072 or 4096" \
  "$CI" keygen --address gina@north-clinic.test --bits 1024 --token "$T"

# anchors
run "anchor add of a known anchor changes nothing" 0 "nothing changed" \
  "$CI" anchor add "$CA_CERT"
run "anchor add limited to a domain" 0 "for South-Lab.test" \
  "$CI" anchor add "$BAD_SELFSIGNED_CERT" --domain South-Lab.test
run "anchor list shows the domain" 0 "for south-lab.test" "$CI" anchor list
sfp=$(fp "$BAD_SELFSIGNED_CERT")
run "anchor remove by fingerprint prefix" 0 "anchor removed" \
  "$CI" anchor remove "$(printf '%s' "$sfp" | cut -c1-16)"
run "anchor remove again has nothing to remove, and says so" 0 \
  "nothing to remove" \
  "$CI" anchor remove "$(printf '%s' "$sfp" | cut -c1-16)"
json=$("$CI" --json anchor add "$BAD_SELFSIGNED_CERT")
[ "$json" = "{\"fingerprint\":\"$sfp\",\"changed\":true}" ] &&
  pass "anchor add --json gives the fingerprint as the store writes it" ||
  fail "anchor add --json: $json"
json=$("$CI" --json anchor remove "$(printf '%s' "$sfp" | cut -c1-16)")
[ "$json" = "{\"fingerprint\":\"$sfp\",\"changed\":true}" ] &&
  pass "anchor remove --json gives the whole fingerprint" ||
  fail "anchor remove --json: $json"
json=$("$CI" --json anchor remove "$sfp"); rc=$?
[ $rc = 0 ] && [ "$json" = "{\"fingerprint\":\"$sfp\",\"changed\":false}" ] &&
  pass "anchor remove --json of a removed anchor: changed false, status 0" ||
  fail "anchor remove --json again: $rc $json"
run "anchor add of a missing file is named with the reason" 1 \
  "cannot read $W/nonexist.pem: No such file or directory" \
  "$CI" anchor add "$W/nonexist.pem"
run "anchor remove with a bad fingerprint is a usage error" 2 \
  "not a fingerprint" "$CI" anchor remove xyz

# export
"$CI" export alice@north-clinic.test --format pem \
  --fingerprint "$(fp "$ALICE_RSA_CERT" | cut -c1-20)" >"$W/export.pem" 2>/dev/null
[ "$(fp "$W/export.pem")" = "$(fp "$ALICE_RSA_CERT")" ] &&
  pass "export pem is the installed certificate" || fail "export pem"
rec=$("$CI" export frank@north-clinic.test --format cert 2>/dev/null)
b64=$(printf '%s' "$rec" | awk '{print $NF}')
if printf '%s' "$rec" | grep -q '^frank\.north-clinic\.test\. IN CERT PKIX 0 0 ' &&
   [ "$(printf '%s' "$b64" | openssl base64 -d -A | openssl x509 -inform DER -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr A-F a-f)" = "$(fp "$W/frank2.pem")" ]
then pass "export cert is an RFC 4398 PKIX record for the address"
else fail "export cert: $rec"; fi
ldif=$("$CI" export --format ldif --base-dn ou=people,dc=north-clinic,dc=test)
if printf '%s\n' "$ldif" | grep -q '^dn: mail=alice@north-clinic.test,ou=people' &&
   printf '%s\n' "$ldif" | grep -q '^mail: alice@north-clinic.test$' &&
   printf '%s\n' "$ldif" | grep -q '^userCertificate;binary:: MII'
then pass "export ldif has mail and userCertificate;binary"
else fail "export ldif: $ldif"; fi
run "export for an unknown address fails" 1 "no identity for" \
  "$CI" export carol@east-clinic.test
run "export with an unknown format is a usage error" 2 "pem, cert or ldif" \
  "$CI" export --format der

# remove
run "remove forgets the identity" 0 "identity removed" \
  "$CI" remove dave@north-clinic.test
run "removing it again has nothing to remove, and says so" 0 \
  "no identity for dave@north-clinic.test on this workstation; nothing to remove" \
  "$CI" remove dave@north-clinic.test

# remove --from-token: the certificate goes, the key only when confirmed.
before=$(objects)
run "remove --from-token deletes the identity's certificate" 0 \
  "1 objects deleted from the token (certificate; the key stays)" \
  "$CI" remove ivy@north-clinic.test --from-token
[ "$(objects)" = "$((before - 1))" ] &&
  [ "$(count_label privkey ivy@north-clinic.test)" = 1 ] &&
  [ "$(count_label cert ivy@north-clinic.test)" = 0 ] &&
  pass "the key stayed, the certificate went" ||
  fail "after remove --from-token: $before -> $(objects)"
run "the key without its certificate takes the certificate again" 0 \
  "ivy@north-clinic.test: identity recorded" \
  "$CI" install "$W/ivy.pem" --token "$T"
before=$(objects)
run "--delete-key without a terminal or --yes deletes nothing" 1 \
  "key was not deleted" \
  "$CI" remove ivy@north-clinic.test --delete-key </dev/null
[ "$(objects)" = "$before" ] && "$CI" list | grep -q ivy@ &&
  pass "the unconfirmed removal left token and store alone" ||
  fail "unconfirmed removal: $before -> $(objects)"
run "remove --delete-key --yes deletes key pair and certificate" 0 \
  "3 objects deleted from the token (certificate and key)" \
  "$CI" remove ivy@north-clinic.test --delete-key --yes
[ "$(objects)" = "$((before - 3))" ] &&
  ! "$CI" list | grep -q ivy@ &&
  pass "nothing of ivy is left on the token or in the store" ||
  fail "after --delete-key: $before -> $(objects)"
before=$(objects)
run "a key another identity still uses stays on the token" 0 \
  "stays on the token with its certificate" \
  "$CI" remove frank@north-clinic.test --fingerprint "$(fp "$W/frank.pem")" \
  --from-token --delete-key --yes
[ "$(objects)" = "$before" ] &&
  "$CI" list | grep -q "frank@north-clinic.test $(fp "$W/frank2.pem")" &&
  ! "$CI" list | grep -q "$(fp "$W/frank.pem")" &&
  pass "only the older identity was forgotten, the token untouched" ||
  fail "frank after remove: $before -> $(objects)"
run "remove --from-token of an unknown identity has nothing to do" 0 \
  "nothing to remove" "$CI" remove nobody@north-clinic.test --from-token
echo 'fail C_DestroyObject CKR_DEVICE_ERROR' >"$P11FAULTY_CONTROL"
run "a token that refuses the deletion keeps the identity recorded" 1 \
  "cannot delete from the token" \
  "$CI" --config "$W/faulty.conf" remove frank@north-clinic.test --from-token
rm -f "$P11FAULTY_CONTROL"
"$CI" list | grep -q frank@ && [ "$(count_label cert frank@north-clinic.test)" = 1 ] &&
  pass "frank is still recorded and on the token" ||
  fail "frank after the refused deletion"

# The same on NSS softokn, a second kind of token.
cat >"$W/nss.conf" <<CONF
[token]
module = $NSS_MODULE
init-args = $NSS_INIT_ARGS
pin-source = file:$NSS_PIN_FILE
CONF
NT="pkcs11:token=NSS%20Certificate%20DB"
run "NSS softokn: register by key URI" 0 "carol@east-clinic.test: identity" \
  "$CI" --config "$W/nss.conf" --store "$W/nss-store" register --uri "$NSS_RSA_URI"
run "NSS softokn: register by address finds both keys" 0 "identity recorded" \
  "$CI" --config "$W/nss.conf" --store "$W/nss-store" register \
  --address carol@east-clinic.test --token "$NT"
n=$("$CI" --config "$W/nss.conf" --store "$W/nss-store" --json list |
  python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
[ "$n" = 2 ] && pass "NSS softokn: two identities for carol" ||
  fail "NSS softokn identities: $n"
openssl pkcs12 -export -in "$EVE_CERT" -inkey "$EVE_KEY" \
  -passout "file:$W/pass" -out "$W/eve.p12"
run "NSS softokn: import a PKCS#12 file" 0 "eve@south-lab.test: identity" \
  "$CI" --config "$W/nss.conf" --store "$W/nss-store" import "$W/eve.p12" \
  --token "$NT" --password-source "file:$W/pass" --no-anchor

# Reading commands create no store: a missing one lists nothing.
run "list of a missing store lists nothing" 0 \
  "no identities (there is no store at $W/none/deeper)" \
  "$CI" --store "$W/none/deeper" list
[ "$("$CI" --store "$W/none/deeper" --json list)" = "[]" ] &&
  pass "list --json of a missing store is []" || fail "list --json of a missing store"
run "anchor list of a missing store lists nothing" 0 "no anchors" \
  "$CI" --store "$W/none/deeper" anchor list
run "export from a missing store finds nothing" 1 "no identity" \
  "$CI" --store "$W/none/deeper" export alice@north-clinic.test
run "remove from a missing store has nothing to remove" 0 "nothing to remove" \
  "$CI" --store "$W/none/deeper" remove alice@north-clinic.test
[ ! -e "$W/none" ] && pass "reading a missing store created nothing" ||
  fail "created: $(find "$W/none")"
if [ ! -e /var/lib/p11mail ]; then
  out=$(env -u P11MAIL_STORE "$CI" list --system 2>&1); rc=$?
  [ $rc = 0 ] && [ ! -e /var/lib/p11mail ] &&
    pass "list --system without a system store creates none" ||
    fail "list --system: status $rc: $out"
else
  skip "list --system without a system store creates none" \
    "/var/lib/p11mail exists"
fi

# A store that is not ours is reported and left alone.
mkdir -p "$W/foreign"
printf 'my notes\n' >"$W/foreign/store.db"
run "a foreign store file is reported" 1 "not a p11mail store" \
  "$CI" --store "$W/foreign" anchor list
[ "$(cat "$W/foreign/store.db")" = "my notes" ] &&
  pass "the foreign file was not overwritten" || fail "foreign file changed"

# A store locked by another process: bounded wait, clear failure.
issue jay jay@north-clinic.test
openssl pkcs12 -export -in "$W/jay.pem" -inkey "$W/jay.key" \
  -passout "file:$W/pass" -out "$W/jay.p12"
if command -v python3 >/dev/null 2>&1; then
  python3 - "$W/store/store.db" "$W/held" <<'PY' &
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
open(sys.argv[2], "w").close()
time.sleep(6)
PY
  fixture_track_pid $!
  n=0; while [ ! -e "$W/held" ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n+1)); done
  P11MAIL_STORE_WAIT=1 run "a locked store fails after a bounded wait" 1 \
    "locked by another process" "$CI" anchor add "$BAD_SELFSIGNED_CERT"
  # The store is opened, the key and certificate written, then recording
  # fails: what import wrote goes again.
  before=$(objects)
  P11MAIL_STORE_WAIT=1 run "an import the store cannot record is taken back" 1 \
    "removed again (3 objects)" "$CI" import "$W/jay.p12" --token "$T" \
    --password-source "file:$W/pass" --no-anchor
  [ "$(objects)" = "$before" ] &&
    pass "nothing of the unrecorded import is left on the token" ||
    fail "objects after the unrecorded import: $before -> $(objects)"
else
  skip "a locked store fails after a bounded wait" "python3 missing"
  skip "an import the store cannot record is taken back" "python3 missing"
  skip "nothing of the unrecorded import is left on the token" "python3 missing"
fi

done_testing
