#!/bin/sh
# Sign, verify, encrypt and decrypt with keys on SoftHSM2 tokens, checked
# against openssl cms in both directions.
set -u
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/test-smime-common.sh"

mkmsg "$W/msg" alice@north-clinic.test bob@south-lab.test

# --- signing on the token ---------------------------------------------------
check "sign with the RSA token key" \
  "$P11MAIL" sign --key "$ALICE_KEY" -o "$W/rsa.eml" "$W/msg"
check "sign with RSA-PSS" \
  "$P11MAIL" sign --pss --key "$ALICE_KEY" -o "$W/pss.eml" "$W/msg"
check "sign with ECDSA P-256" \
  "$P11MAIL" sign --key "$ALICE_ECKEY" -o "$W/ec.eml" "$W/msg"
check "sign opaque" \
  "$P11MAIL" sign --opaque --key "$ALICE_KEY" -o "$W/opaque.eml" "$W/msg"
check "sign with SHA-512" \
  "$P11MAIL" sign --sha512 --key "$ALICE_KEY" -o "$W/sha512.eml" "$W/msg"

if grep -q "$(printf '\r$')" "$W/rsa.eml" &&
   ! tr -d '\r' <"$W/rsa.eml" | cmp -s - "$W/rsa.eml" &&
   [ "$(grep -c "$(printf '[^\r]$')" "$W/rsa.eml")" = 0 ]; then
  pass "signed output uses CRLF on every line"
else fail "signed output uses CRLF on every line"; fi
grep_out "protocol is quoted" 'protocol="application/pkcs7-signature"' "$W/rsa.eml"
grep_out "micalg is sha-256" 'micalg=sha-256' "$W/rsa.eml"
grep_out "micalg is sha-512" 'micalg=sha-512' "$W/sha512.eml"
grep_out "8-bit body re-encoded quoted-printable" \
  'Content-Transfer-Encoding: quoted-printable' "$W/rsa.eml"
if LC_ALL=C grep -q "$(printf '[\200-\377]')" "$W/rsa.eml"; then
  fail "signed body is 7-bit"
else pass "signed body is 7-bit"; fi

for f in rsa pss ec opaque sha512; do
  expect_rc "p11mail verifies $f, trusted" 0 \
    "$(verify_rc "$W/$f.eml" --anchor "$CA_CERT")"
  check "openssl cms verifies $f" openssl cms -verify -CAfile "$CA_CERT" \
    -in "$W/$f.eml" -out "$W/$f.ossl"
done
grep_out "summary line names the signer" \
  "Signed by alice@north-clinic.test: valid, trusted" "$W/verify.out"

# The decoded body survives signing.
openssl cms -verify -CAfile "$CA_CERT" -in "$W/rsa.eml" -out - 2>/dev/null |
  tr -d '\r' >"$W/rsa.body"
if grep -q 'Gr=C3=BC=C3=9Fe' "$W/rsa.body"; then
  pass "UTF-8 body survives signing (quoted-printable)"
else fail "UTF-8 body survives signing (quoted-printable)"; fi

# Detached: no eContent; PSS salt equals the digest length.
split_signed "$W/rsa.eml" "$W/rsa"
if openssl cms -cmsout -print -inform DER -in "$W/rsa.p7s" |
    grep -q 'eContent: <ABSENT>'; then pass "detached signature has no eContent"
else fail "detached signature has no eContent"; fi
split_signed "$W/pss.eml" "$W/pss"
if openssl cms -cmsout -print -inform DER -in "$W/pss.p7s" |
    grep -A12 rsassaPss | grep -q 'INTEGER *:20'; then
  pass "PSS salt length is 32 (the SHA-256 length)"
else fail "PSS salt length is 32 (the SHA-256 length)"; fi
if openssl cms -cmsout -print -inform DER -in "$W/rsa.p7s" |
    grep -q 'aes-256-gcm\|id-aes256-GCM'; then
  pass "SMIMECapabilities list AES-256-GCM"
else fail "SMIMECapabilities list AES-256-GCM"; fi
if openssl cms -cmsout -print -inform DER -in "$W/rsa.p7s" |
    grep -q 'signingTime'; then pass "signingTime attribute present"
else fail "signingTime attribute present"; fi

# --- verification states ----------------------------------------------------
expect_rc "no anchor: valid but not trusted (exit 3)" 3 \
  "$(verify_rc "$W/rsa.eml")"
grep_out "not-trusted summary shows the fingerprint" "NOT TRUSTED" \
  "$W/verify.out"
"$P11MAIL" verify --json --anchor "$CA_CERT" "$W/rsa.eml" >"$W/v.json"
grep_out "--json after the subcommand" '"verdict":"valid"' "$W/v.json"
"$P11MAIL" --json verify --anchor "$CA_CERT" "$W/ec.eml" >"$W/v2.json"
grep_out "--json before the subcommand" '"trust":"trusted"' "$W/v2.json"
grep_out "JSON has the SHA-256 fingerprint, lowercase" \
  '"fingerprint_sha256":"[0-9a-f]\{64\}"' \
  "$W/v.json"

sed 's/Zweite Zeile/Dritte Zeile/' "$W/rsa.eml" >"$W/tampered.eml"
expect_rc "altered body: invalid (exit 4)" 4 \
  "$(verify_rc "$W/tampered.eml" --anchor "$CA_CERT")"
grep_out "altered body is named" "altered" "$W/verify.out"
expect_rc "a message that is not signed: exit 4" 4 \
  "$(verify_rc "$W/msg" --anchor "$CA_CERT")"

# Bare DER and x-pkcs7 types.
openssl cms -sign -signer "$DAVE_CERT" -inkey "$DAVE_KEY" -nodetach \
  -outform DER -in "$W/msg" -out "$W/dave.der" 2>/dev/null
expect_rc "bare DER opaque signature verifies" 0 \
  "$(verify_rc "$W/dave.der" --anchor "$CA_CERT")"
mkmsg "$W/dmsg" dave@north-clinic.test bob@south-lab.test
openssl smime -sign -signer "$DAVE_CERT" -inkey "$DAVE_KEY" -in "$W/dmsg" \
  -from dave@north-clinic.test -to bob@south-lab.test -subject x \
  -out "$W/xpkcs7.eml" 2>/dev/null
grep_out "openssl smime wrote x-pkcs7-signature" 'x-pkcs7-signature' \
  "$W/xpkcs7.eml"
expect_rc "application/x-pkcs7-signature accepted" 0 \
  "$(verify_rc "$W/xpkcs7.eml" --anchor "$CA_CERT")"
openssl smime -sign -nodetach -signer "$DAVE_CERT" -inkey "$DAVE_KEY" \
  -in "$W/dmsg" -from dave@north-clinic.test -out "$W/xopaque.eml" 2>/dev/null
expect_rc "application/x-pkcs7-mime opaque accepted" 0 \
  "$(verify_rc "$W/xopaque.eml" --anchor "$CA_CERT")"

# --- encryption -------------------------------------------------------------
check "encrypt to Bob (RSA), AES-256-GCM" \
  "$P11MAIL" encrypt --anchor "$CA_CERT" --recipient-cert "$BOB_RSA_CERT" \
  --cert "$ALICE_RSA_CERT" -o "$W/enc.eml" "$W/msg"
grep_out "smime-type is authEnveloped-data" 'smime-type=authEnveloped-data' \
  "$W/enc.eml"
"$P11MAIL" decrypt --key "$BOB_KEY" --cert "$BOB_RSA_CERT" -o "$W/dec.eml" \
  "$W/enc.eml" 2>"$W/dec.err"
grep_out "Bob decrypts on the token" 'Gr=C3=BC=C3=9Fe' "$W/dec.eml"
"$P11MAIL" decrypt --key "$ALICE_KEY" --cert "$ALICE_RSA_CERT" \
  -o "$W/dec2.eml" "$W/enc.eml" 2>"$W/dec.err"
grep_out "the sender can read the sent copy" 'Zweite Zeile' "$W/dec2.eml"
check "encrypt to Dave (RSA software cert), GCM" \
  "$P11MAIL" encrypt --anchor "$CA_CERT" --recipient-cert "$DAVE_CERT" \
  --cert "$ALICE_RSA_CERT" --to dave@north-clinic.test -o "$W/enc-dave.eml" \
  "$W/msg"
check "openssl cms decrypts p11mail RSA + GCM" openssl cms -decrypt \
  -recip "$DAVE_CERT" -inkey "$DAVE_KEY" -in "$W/enc-dave.eml" -out "$W/dave.dec"

check "encrypt to Eve (EC software cert), GCM" \
  "$P11MAIL" encrypt --anchor "$CA_CERT" --recipient-cert "$EVE_CERT" \
  --cert "$ALICE_RSA_CERT" --to eve@south-lab.test -o "$W/enc-ec.eml" "$W/msg"
check "openssl cms decrypts p11mail ECDH + GCM" openssl cms -decrypt \
  -recip "$EVE_CERT" -inkey "$EVE_KEY" -in "$W/enc-ec.eml" -out "$W/ec.dec"
check "encrypt to Dave (RSA software cert), CBC, OAEP" \
  "$P11MAIL" encrypt --cbc --oaep --anchor "$CA_CERT" \
  --recipient-cert "$DAVE_CERT" --cert "$ALICE_RSA_CERT" \
  --to dave@north-clinic.test -o "$W/enc-cbc.eml" "$W/msg"
grep_out "CBC is enveloped-data" 'smime-type=enveloped-data' "$W/enc-cbc.eml"
check "openssl cms decrypts p11mail OAEP + CBC" openssl cms -decrypt \
  -recip "$DAVE_CERT" -inkey "$DAVE_KEY" -in "$W/enc-cbc.eml" -out "$W/cbc.dec"

check "encrypt to Bob's EC token certificate" \
  "$P11MAIL" encrypt --anchor "$CA_CERT" --recipient-cert "$BOB_EC_CERT" \
  --cert "$ALICE_RSA_CERT" --to bob@south-lab.test -o "$W/enc-bobec.eml" "$W/msg"
"$P11MAIL" decrypt --key "$BOB_ECKEY" --cert "$BOB_EC_CERT" \
  -o "$W/dec-ec.eml" "$W/enc-bobec.eml" 2>"$W/dec.err"
grep_out "Bob decrypts ECDH on the token" 'Zweite Zeile' "$W/dec-ec.eml"

check "encrypt OAEP to Bob's RSA token key" \
  "$P11MAIL" encrypt --oaep --anchor "$CA_CERT" --recipient-cert \
  "$BOB_RSA_CERT" --cert "$ALICE_RSA_CERT" -o "$W/enc-oaep.eml" "$W/msg"
"$P11MAIL" decrypt --key "$BOB_KEY" --cert "$BOB_RSA_CERT" \
  -o "$W/dec-oaep.eml" "$W/enc-oaep.eml" 2>"$W/dec.err"
grep_out "Bob decrypts OAEP on the token" 'Zweite Zeile' "$W/dec-oaep.eml"

# Messages made by openssl, decrypted on the token.
openssl cms -encrypt -aes-256-gcm -in "$W/msg" -out "$W/ossl-gcm.eml" \
  "$BOB_RSA_CERT" 2>/dev/null
"$P11MAIL" decrypt --key "$BOB_KEY" --cert "$BOB_RSA_CERT" \
  -o "$W/d1.eml" "$W/ossl-gcm.eml" 2>"$W/dec.err"
grep_out "openssl GCM message decrypts on the token" 'Zweite Zeile' "$W/d1.eml"
openssl cms -encrypt -aes256 -in "$W/msg" -out "$W/ossl-ec.eml" \
  "$BOB_EC_CERT" 2>/dev/null
"$P11MAIL" decrypt --key "$BOB_ECKEY" --cert "$BOB_EC_CERT" \
  -o "$W/d2.eml" "$W/ossl-ec.eml" 2>"$W/dec.err"
grep_out "openssl ECDH CBC message decrypts on the token" 'Zweite Zeile' \
  "$W/d2.eml"
grep_out "CBC is reported as unauthenticated" 'unauthenticated' "$W/dec.err"

# A key with CKA_ALWAYS_AUTHENTICATE signs and decrypts (context login).
AA_KEY="$ALICE_AA_URI?pin-source=file:$ALICE_PIN_FILE"
"$P11MAIL" sign --key "$AA_KEY" -o "$W/aa.eml" "$W/msg"
expect_rc "always-authenticate key signs" 0 \
  "$(verify_rc "$W/aa.eml" --anchor "$CA_CERT")"
"$P11MAIL" encrypt --anchor "$CA_CERT" --recipient-cert "$ALICE_AA_CERT" \
  --cert "$ALICE_RSA_CERT" --to alice@north-clinic.test -o "$W/to-aa.eml" \
  "$W/msg"
"$P11MAIL" decrypt --key "$AA_KEY" --cert "$ALICE_AA_CERT" -o "$W/aa.dec" \
  "$W/to-aa.eml" 2>/dev/null
grep_out "always-authenticate key decrypts" "Zweite Zeile" "$W/aa.dec"

# RSA-PSS made by openssl verifies.
openssl cms -sign -signer "$DAVE_CERT" -inkey "$DAVE_KEY" \
  -keyopt rsa_padding_mode:pss -in "$W/dmsg" -out "$W/ossl-pss.eml" 2>/dev/null
expect_rc "openssl RSA-PSS signature verifies" 0 \
  "$(verify_rc "$W/ossl-pss.eml" --anchor "$CA_CERT")"

# --- sign then encrypt ------------------------------------------------------
check "sign then encrypt in one call" \
  "$P11MAIL" encrypt --sign --key "$ALICE_KEY" --anchor "$CA_CERT" \
  --recipient-cert "$BOB_RSA_CERT" -o "$W/se.eml" "$W/msg"
"$P11MAIL" decrypt --anchor "$CA_CERT" --key "$BOB_KEY" \
  --cert "$BOB_RSA_CERT" -o "$W/se.dec" "$W/se.eml" >"$W/se.out" 2>&1
rc=$?
expect_rc "decrypt verifies the inner signature (exit 0)" 0 "$rc"
grep_out "inner signer reported" "Signed by alice@north-clinic.test: valid, trusted" \
  "$W/se.out"
"$P11MAIL" decrypt --key "$BOB_KEY" --cert "$BOB_RSA_CERT" -o "$W/se2.dec" \
  "$W/se.eml" >"$W/se2.out" 2>&1
expect_rc "inner signer without anchor: exit 3" 3 "$?"

if openssl cms -cmsout -print -in "$W/enc-ec.eml" |
    grep -q 'dhSinglePass-stdDH-sha256kdf-scheme'; then
  pass "ECDH uses the X9.63 KDF with SHA-256"
else fail "ECDH uses the X9.63 KDF with SHA-256"; fi

# --- the NSS softokn token (OAEP-SHA256 and ECDH with a KDF on the token) ---
nss() {
  P11MAIL_MODULE=$NSS_MODULE P11MAIL_INIT_ARGS=$NSS_INIT_ARGS "$P11MAIL" "$@"
}
CAROL_KEY="$NSS_RSA_URI?pin-source=file:$NSS_PIN_FILE"
CAROL_ECKEY="$NSS_EC_URI?pin-source=file:$NSS_PIN_FILE"
mkmsg "$W/cmsg" carol@east-clinic.test bob@south-lab.test
for k in "rsa:" "pss:--pss" "ecdsa:"; do
  name=${k%%:*} opt=${k#*:}
  key=$CAROL_KEY
  [ "$name" = ecdsa ] && key=$CAROL_ECKEY
  nss sign $opt --key "$key" -o "$W/carol-$name.eml" "$W/cmsg"
  expect_rc "NSS token: $name signature verifies" 0 \
    "$(verify_rc "$W/carol-$name.eml" --anchor "$CA_CERT")"
  check "NSS token: openssl cms verifies $name" openssl cms -verify \
    -CAfile "$CA_CERT" -in "$W/carol-$name.eml" -out /dev/null
done
"$P11MAIL" encrypt --oaep --anchor "$CA_CERT" --recipient-cert "$NSS_RSA_CERT" \
  --cert "$ALICE_RSA_CERT" --to carol@east-clinic.test -o "$W/to-carol.eml" \
  "$W/msg"
nss decrypt --key "$CAROL_KEY" --cert "$NSS_RSA_CERT" -o "$W/carol.dec" \
  "$W/to-carol.eml" 2>/dev/null
grep_out "NSS token decrypts OAEP-SHA256" "Zweite Zeile" "$W/carol.dec"
"$P11MAIL" encrypt --anchor "$CA_CERT" --recipient-cert "$NSS_EC_CERT" \
  --cert "$ALICE_RSA_CERT" --to carol@east-clinic.test -o "$W/to-carol-ec.eml" \
  "$W/msg"
nss decrypt --key "$CAROL_ECKEY" --cert "$NSS_EC_CERT" -o "$W/carol-ec.dec" \
  "$W/to-carol-ec.eml" 2>/dev/null
grep_out "NSS token decrypts ECDH (SHA-256 KDF)" "Zweite Zeile" \
  "$W/carol-ec.dec"

# --- failure paths ----------------------------------------------------------
"$P11MAIL" decrypt --key "$ALICE_ECKEY" --cert "$ALICE_EC_CERT" \
  -o "$W/nope.eml" "$W/enc.eml" 2>"$W/nope.err"
rc=$?
if [ "$rc" = 1 ] && [ ! -e "$W/nope.eml" ] &&
   grep -q "could not be decrypted" "$W/nope.err"; then
  pass "not a recipient: generic error, nothing written"
else fail "not a recipient: generic error, nothing written (exit $rc)"; fi
check_fails "sign without --key is a usage error" "$P11MAIL" sign "$W/msg"
"$P11MAIL" sign --key "$ALICE_RSA_URI?pin-value=000000" "$W/msg" \
  >/dev/null 2>"$W/pin.err"
rc=$?
if [ "$rc" != 0 ] && ! grep -q 000000 "$W/pin.err"; then
  pass "wrong PIN fails without echoing the PIN"
else fail "wrong PIN fails without echoing the PIN"; sed 's/^/#  /' "$W/pin.err"; fi
for cmd in sign decrypt; do
  "$P11MAIL" "$cmd" --key "$BOB_RSA_URI?pin-value=4711" "$W/msg" \
    >/dev/null 2>"$W/pinv.err"
  rc=$?
  if [ "$rc" = 2 ] && grep -q "pin-source=file:PATH" "$W/pinv.err" &&
     ! grep -q 4711 "$W/pinv.err"; then
    pass "$cmd: a pin-value key URI is a usage error"
  else fail "$cmd: a pin-value key URI is a usage error (exit $rc)"
    sed 's/^/#  /' "$W/pinv.err"; fi
done
check_fails "a non-message input is refused" \
  "$P11MAIL" verify --anchor "$CA_CERT" /dev/null

# --- what makes a key unusable is said first, once ------------------------------
# errs NAME WANT-RC PATTERN CMD...: CMD fails with WANT-RC; its first message
# matches PATTERN and no "no private key at" or status prefix follows it.
errs() {
  _n=$1 _rc=$2 _pat=$3; shift 3
  "$@" >/dev/null 2>"$W/e.err"
  _got=$?
  if [ "$_got" = "$_rc" ] && head -n 1 "$W/e.err" | grep -q -- "$_pat" &&
     ! grep -q "no private key at\|no matching key\|reported an error:" \
       "$W/e.err"; then
    pass "$_n"
  else fail "$_n (exit $_got)"; sed 's/^/#   /' "$W/e.err"; fi
}
errs "--key garbage: neither a pkcs11: URI nor a readable key file" 1 \
  "--key garbage is neither a pkcs11: URI nor a readable key file" \
  "$P11MAIL" sign --key garbage "$W/msg"
printf '000000\n' >"$W/wrong.pin"
chmod 600 "$W/wrong.pin"
errs "a wrong PIN: the token's refusal, not 'no private key'" 1 \
  "rejected the PIN" \
  "$P11MAIL" sign --key "$ALICE_RSA_URI?pin-source=file:$W/wrong.pin" "$W/msg"
cp "$ALICE_PIN_FILE" "$W/open.pin"
chmod 644 "$W/open.pin"
errs "a PIN file others can read: refused, with no token prefix" 1 \
  "^p11mail: refusing the PIN file $W/open.pin: group or others can read" \
  "$P11MAIL" sign --key "$ALICE_RSA_URI?pin-source=file:$W/open.pin" "$W/msg"
errs "a module that cannot load says so" 1 \
  "cannot load the PKCS#11 module $W/no-such-module.so" \
  env P11MAIL_MODULE="$W/no-such-module.so" \
  "$P11MAIL" sign --key "$ALICE_KEY" "$W/msg"
"$P11MAIL" sign --cert "$ALICE_RSA_CERT" "$W/msg" >/dev/null 2>"$W/e.err"
rc=$?
[ $rc = 2 ] && grep -q -- "--cert FILE needs --key" "$W/e.err" &&
  pass "sign --cert without --key is a usage error (exit 2)" ||
  { fail "sign --cert without --key (exit $rc)"; sed 's/^/#   /' "$W/e.err"; }

# --- --chain with --key ---------------------------------------------------------
check "sign --key --chain with a certificate file" \
  "$P11MAIL" sign --key "$ALICE_KEY" --chain "$CA_CERT" -o "$W/chain.eml" \
  "$W/msg"
split_signed "$W/chain.eml" "$W/chain"
[ "$(openssl pkcs7 -inform DER -in "$W/chain.p7s" -print_certs 2>/dev/null |
     grep -c '^subject=')" = 2 ] &&
  pass "--chain: the chain certificate is in the signature" ||
  fail "--chain: the chain certificate is in the signature"
for bad in "$W/no-such-chain.pem" "$W/msg"; do
  rm -f "$W/badchain.eml"
  "$P11MAIL" sign --key "$ALICE_KEY" --chain "$bad" -o "$W/badchain.eml" \
    "$W/msg" 2>"$W/e.err"
  rc=$?
  [ $rc = 1 ] && [ ! -e "$W/badchain.eml" ] && grep -q "$bad" "$W/e.err" &&
    pass "--chain $(basename "$bad"): an error naming it, nothing written" ||
    { fail "--chain $(basename "$bad") (exit $rc)"; sed 's/^/#   /' "$W/e.err"; }
done

# --- verify --json: always one object ----------------------------------------------
# json_is FILE KEY VALUE: FILE is one JSON object whose KEY is VALUE.
json_is() {
  python3 - "$@" <<'PY'
import json, sys
with open(sys.argv[1]) as f:
    doc = json.loads(f.read())
sys.exit(0 if str(doc.get(sys.argv[2])) == sys.argv[3] else 1)
PY
}
if command -v python3 >/dev/null 2>&1; then
  printf '\001\002garbage\377\n' >"$W/garbage"
  : >"$W/empty"
  for f in garbage empty; do
    "$P11MAIL" verify --json --anchor "$CA_CERT" "$W/$f" >"$W/j.out" 2>/dev/null
    rc=$?
    [ $rc = 4 ] && json_is "$W/j.out" verdict malformed &&
      json_is "$W/j.out" exit 4 && json_is "$W/j.out" signers "[]" &&
      ! json_is "$W/j.out" problem None &&
      pass "verify --json of $f: one object, verdict malformed, exit 4" ||
      { fail "verify --json of $f (exit $rc)"; sed 's/^/#   /' "$W/j.out"; }
  done
  "$P11MAIL" verify --json "$W/no-such-file" >"$W/j.out" 2>/dev/null
  rc=$?
  [ $rc = 1 ] && json_is "$W/j.out" verdict error && json_is "$W/j.out" exit 1 &&
    pass "verify --json of a missing file: verdict error, exit 1" ||
    { fail "verify --json of a missing file (exit $rc)"; sed 's/^/#   /' "$W/j.out"; }
else
  skip "verify --json of malformed input" "python3 is missing"
fi

# --- 8-bit UTF-8 without Content-Type ---------------------------------------------
printf 'From: alice@north-clinic.test\nTo: bob@south-lab.test\nSubject: x\n\n' \
  >"$W/noct"
printf 'Gr\303\274\303\237e\n' >>"$W/noct"
printf 'From: alice@north-clinic.test\nTo: bob@south-lab.test\nSubject: x\n\n' \
  >"$W/noct1"
printf 'Gr\374\337e in Latin-1\n' >>"$W/noct1"
check "sign a UTF-8 body without Content-Type" \
  "$P11MAIL" sign --key "$ALICE_KEY" -o "$W/noct.eml" "$W/noct"
split_signed "$W/noct.eml" "$W/noct"
grep -q "^Content-Type: text/plain; charset=utf-8" "$W/noct.content" &&
  grep -q "=C3=BC=C3=9F" "$W/noct.content" &&
  pass "the signed part is labelled text/plain; charset=utf-8" ||
  { fail "UTF-8 label"; sed 's/^/#   /' "$W/noct.content"; }
expect_rc "the labelled message verifies" 0 \
  "$(verify_rc "$W/noct.eml" --anchor "$CA_CERT")"
check "sign a Latin-1 body without Content-Type" \
  "$P11MAIL" sign --key "$ALICE_KEY" -o "$W/noct1.eml" "$W/noct1"
split_signed "$W/noct1.eml" "$W/noct1"
! grep -qi "^Content-Type" "$W/noct1.content" &&
  pass "8-bit text that is not UTF-8 gets no charset it does not have" ||
  { fail "Latin-1 label"; sed 's/^/#   /' "$W/noct1.content"; }
split_signed "$W/rsa.eml" "$W/given"
[ "$(grep -ci "^Content-Type" "$W/given.content")" = 1 ] &&
  grep -q "^Content-Type: text/plain; charset=utf-8" "$W/given.content" &&
  pass "a Content-Type the message gives is kept as it is" ||
  { fail "given Content-Type"; sed 's/^/#   /' "$W/given.content"; }

# --- encrypt --to ------------------------------------------------------------------
for to in "not an address" "Bob <bob@south-lab.test" "a@b@c" "@south-lab.test"; do
  "$P11MAIL" encrypt --cert "$ALICE_RSA_CERT" --anchor "$CA_CERT" \
    --recipient-cert "$BOB_RSA_CERT" --to "$to" "$W/msg" >/dev/null 2>"$W/e.err"
  rc=$?
  [ $rc = 2 ] && grep -q "not '$to'" "$W/e.err" &&
    pass "encrypt --to '$to' is a usage error" ||
    { fail "encrypt --to '$to' (exit $rc)"; sed 's/^/#   /' "$W/e.err"; }
done
if "$P11MAIL" encrypt --cert "$ALICE_RSA_CERT" --anchor "$CA_CERT" \
     --recipient-cert "$BOB_RSA_CERT" --to "Bob South <BOB@South-Lab.test>" \
     -o "$W/to.eml" "$W/msg" 2>"$W/e.err" &&
   "$P11MAIL" decrypt --key "$BOB_KEY" --cert "$BOB_RSA_CERT" -o "$W/to.plain" \
     "$W/to.eml" 2>>"$W/e.err"; then
  pass "encrypt --to 'Name <BOB@South-Lab.test>' reaches bob@south-lab.test"
else fail "encrypt --to with a name and capitals"; sed 's/^/#   /' "$W/e.err"; fi
mkmsg "$W/caps" alice@north-clinic.test BOB@South-Lab.test
if "$P11MAIL" encrypt --cert "$ALICE_RSA_CERT" --anchor "$CA_CERT" \
     --recipient-cert "$BOB_RSA_CERT" -o "$W/caps.eml" "$W/caps" 2>"$W/e.err" &&
   "$P11MAIL" decrypt --key "$BOB_KEY" --cert "$BOB_RSA_CERT" \
     -o "$W/caps.plain" "$W/caps.eml" 2>>"$W/e.err"; then
  pass "To: BOB@South-Lab.test in the message reaches bob@south-lab.test"
else fail "To: with capitals"; sed 's/^/#   /' "$W/e.err"; fi

# --- the help and the manual list the same options ---------------------------------
for cmd in sign verify encrypt decrypt read send; do
  page="$top_srcdir/man/p11mail-$cmd.1"
  missing=
  for opt in $("$P11MAIL" "$cmd" --help | grep -o -- '--[a-z0-9-]*' | sort -u); do
    [ "$opt" = --help ] && continue
    grep -q -- "$(printf '%s' "$opt" | sed 's/-/\\\\-/g')" "$page" ||
      missing="$missing $opt"
  done
  [ -z "$missing" ] && pass "p11mail-$cmd(1) lists every option of --help" ||
    fail "p11mail-$cmd(1) lacks:$missing"
  synopsis=$(sed -n '/^\.SH SYNOPSIS/,/^\.SH/p' "$page")
  for opt in $(printf '%s\n' "$synopsis" |
               grep -o -- '\\-\\-[a-z0-9]*\(\\-[a-z0-9][a-z0-9]*\)*' |
               sed 's/\\//g' | sort -u); do
    "$P11MAIL" "$cmd" --help | grep -q -- "$opt" ||
      fail "p11mail-$cmd(1) SYNOPSIS names $opt, which --help does not"
  done
done
for opt in --sign --encrypt --auto --json; do
  sed -n '/^\.SH SYNOPSIS/,/^\.SH DESC/p' "$top_srcdir/man/p11mail-send.1" |
    grep -q -- "$(printf '%s' "$opt" | sed 's/-/\\\\-/g')" &&
    pass "p11mail-send(1) SYNOPSIS lists $opt" ||
    fail "p11mail-send(1) SYNOPSIS lists $opt"
done

done_testing
