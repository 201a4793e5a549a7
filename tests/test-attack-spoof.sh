#!/bin/sh
# Signature spoofing: every class of the spoofing table must end in
# "invalid", "cannot verify", "not signed" or "not trusted", never "valid".
set -u
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/test-smime-common.sh"

FORGE=$top_builddir/tests/test-attack-forge
[ -x "$FORGE" ] || skip_all "tests/test-attack-forge was not built"

CRLF=$(printf '\r')
printf 'Content-Type: text/plain\r\n\r\nPay the invoice.\r\n' >"$W/entity"

# forged MODE: runs the forger over the entity with Dave's key.
forged() {
  "$FORGE" "$1" "$DAVE_KEY" "$DAVE_CERT" "$W/entity" "$W/$1.der" \
    "$EVE_KEY" "$EVE_CERT"
}

# --- attribute tampering and unverifiable signatures -------------------------
forged good
expect_rc "control: a well-formed forgery-tool signature verifies" 0 \
  "$(verify_rc "$W/good.der" --anchor "$CA_CERT")"
forged resigned
expect_rc "control: attributes signed again unchanged still verify" 0 \
  "$(verify_rc "$W/resigned.der" --anchor "$CA_CERT")"
for mode in dup-ct multi-ct ct-mismatch dup-md dup-time no-attrs sha1; do
  if forged "$mode"; then
    expect_rc "$mode: invalid" 4 \
      "$(verify_rc "$W/$mode.der" --anchor "$CA_CERT")"
  else fail "$mode: could not build the input"; fi
done
grep_out "SHA-1 is named as the reason" "SHA-1" "$W/verify.out"

# Several signers: a valid one and a damaged one claiming Eve.
forged second-forged
expect_rc "valid signer plus forged signer: invalid" 4 \
  "$(verify_rc "$W/second-forged.der" --anchor "$CA_CERT" --json)"
grep_out "the valid signer is reported valid" \
  '"addresses":"dave@north-clinic.test"[^}]*"valid":true' "$W/verify.out"
grep_out "the forged signer is reported invalid" \
  '"addresses":"eve@south-lab.test"[^}]*"valid":false' "$W/verify.out"

# No signers: not signed, and the certificates inside are not trusted.
openssl crl2pkcs7 -nocrl -certfile "$DAVE_CERT" -outform DER \
  -out "$W/no-signers.der" 2>/dev/null
expect_rc "SignedData without signers: not signed (exit 4)" 4 \
  "$(verify_rc "$W/no-signers.der" --anchor "$CA_CERT" --json)"
grep_out "reported as unsigned" '"verdict":"unsigned"' "$W/verify.out"

# Signer certificate missing: cannot verify.
openssl cms -sign -nocerts -nodetach -binary -signer "$DAVE_CERT" \
  -inkey "$DAVE_KEY" -in "$W/entity" -outform DER -out "$W/nocert.der" 2>/dev/null
expect_rc "signer certificate missing: cannot verify" 4 \
  "$(verify_rc "$W/nocert.der" --anchor "$CA_CERT")"
grep_out "missing certificate is named" "cannot verify" "$W/verify.out"

# --- eContent confusion -------------------------------------------------------
b64=$(openssl base64 <"$W/good.der")
{
  printf 'From: dave@north-clinic.test\r\nMIME-Version: 1.0\r\n'
  printf 'Content-Type: multipart/signed; protocol="application/pkcs7-signature";\r\n'
  printf '\tmicalg=sha-256; boundary="b1"\r\n\r\n--b1\r\n'
  printf 'Content-Type: text/plain\r\n\r\nPay 10000 EUR to account 666.\r\n'
  printf -- '--b1\r\nContent-Type: application/pkcs7-signature\r\n'
  printf 'Content-Transfer-Encoding: base64\r\n\r\n%s\r\n--b1--\r\n' "$b64"
} >"$W/confusion.eml"
expect_rc "detached signature carrying its own eContent: invalid" 4 \
  "$(verify_rc "$W/confusion.eml" --anchor "$CA_CERT")"

# --- who signed, and for whom -------------------------------------------------
mkmsg "$W/dave.msg" dave@north-clinic.test bob@south-lab.test
"$P11MAIL" sign --key "$DAVE_KEY" --cert "$DAVE_CERT" -o "$W/dave.eml" \
  "$W/dave.msg"
expect_rc "control: Dave signs as Dave" 0 \
  "$(verify_rc "$W/dave.eml" --anchor "$CA_CERT")"

mkmsg "$W/boss.msg" manager@north-clinic.test bob@south-lab.test
"$P11MAIL" sign --key "$DAVE_KEY" --cert "$DAVE_CERT" -o "$W/boss.eml" \
  "$W/boss.msg"
expect_rc "From is not the signer: invalid" 4 \
  "$(verify_rc "$W/boss.eml" --anchor "$CA_CERT")"
grep_out "says the signer does not match" "signer does not match sender" \
  "$W/verify.out"

mkmsg "$W/disp.msg" '"manager@north-clinic.test" <dave@north-clinic.test>' \
  bob@south-lab.test
"$P11MAIL" sign --key "$DAVE_KEY" --cert "$DAVE_CERT" -o "$W/disp.eml" \
  "$W/disp.msg"
expect_rc "display name is ignored, addr-spec compared" 0 \
  "$(verify_rc "$W/disp.eml" --anchor "$CA_CERT")"
mkmsg "$W/disp2.msg" '"dave@north-clinic.test" <manager@north-clinic.test>' \
  bob@south-lab.test
"$P11MAIL" sign --key "$DAVE_KEY" --cert "$DAVE_CERT" -o "$W/disp2.eml" \
  "$W/disp2.msg"
expect_rc "signer's address in the display name only: invalid" 4 \
  "$(verify_rc "$W/disp2.eml" --anchor "$CA_CERT")"

mkmsg "$W/case.msg" dave@NORTH-Clinic.TEST bob@south-lab.test
"$P11MAIL" sign --key "$DAVE_KEY" --cert "$DAVE_CERT" -o "$W/case.eml" \
  "$W/case.msg"
expect_rc "domain compared case-insensitively" 0 \
  "$(verify_rc "$W/case.eml" --anchor "$CA_CERT")"

mkmsg "$W/two.msg" 'dave@north-clinic.test, manager@north-clinic.test' \
  bob@south-lab.test
"$P11MAIL" sign --key "$DAVE_KEY" --cert "$DAVE_CERT" -o "$W/two.eml" \
  "$W/two.msg"
expect_rc "several From addresses: rejected" 4 \
  "$(verify_rc "$W/two.eml" --anchor "$CA_CERT")"
{ printf 'From: manager@north-clinic.test\r\n'; cat "$W/dave.eml"; } \
  >"$W/twofields.eml"
expect_rc "two From fields: rejected" 4 \
  "$(verify_rc "$W/twofields.eml" --anchor "$CA_CERT")"

{ printf 'Sender: dave@north-clinic.test\n'; cat "$W/boss.msg"; } >"$W/sender.msg"
"$P11MAIL" sign --key "$DAVE_KEY" --cert "$DAVE_CERT" -o "$W/sender.eml" \
  "$W/sender.msg"
expect_rc "Sender is the signer: valid" 0 \
  "$(verify_rc "$W/sender.eml" --anchor "$CA_CERT")"

# Self-signed signer: integrity yes, trust no.
mkmsg "$W/self.msg" selfsigned@south-lab.test bob@south-lab.test
"$P11MAIL" sign --key "$BAD_SELFSIGNED_KEY" --cert "$BAD_SELFSIGNED_CERT" \
  -o "$W/self.eml" "$W/self.msg"
expect_rc "self-signed signer: valid but not trusted (exit 3)" 3 \
  "$(verify_rc "$W/self.eml" --anchor "$CA_CERT")"
"$P11MAIL" verify --json --anchor "$BAD_SELFSIGNED_CERT" "$W/self.eml" \
  >"$W/self.json"
grep_out "trusted once explicitly anchored" '"verdict":"valid"' "$W/self.json"

# --- partially signed -----------------------------------------------------
{
  printf 'From: dave@north-clinic.test\r\nTo: bob@south-lab.test\r\n'
  printf 'MIME-Version: 1.0\r\n'
  printf 'Content-Type: multipart/mixed; boundary="outer"\r\n\r\n--outer\r\n'
  printf 'Content-Type: text/plain\r\n\r\nURGENT: wire the money today.\r\n'
  printf -- '--outer\r\n'
  sed -n '/^Content-Type: multipart\/signed/,$p' "$W/dave.eml"
  printf '\r\n--outer--\r\n'
} >"$W/partial.eml"
expect_rc "partially signed: not signed as a whole (exit 4)" 4 \
  "$(verify_rc "$W/partial.eml" --anchor "$CA_CERT")"
grep_out "the signed part is named" "Part 2: Signed by dave" "$W/verify.out"
grep_out "no message-wide signed" "Not signed as a whole" "$W/verify.out"

# --- badge in the body --------------------------------------------------------
{
  printf 'From: manager@north-clinic.test\r\nMIME-Version: 1.0\r\n'
  printf 'Content-Type: text/html\r\n\r\n'
  printf '<div style="color:green">&#10004; Signed by manager@north-clinic.test: valid, trusted</div>\r\n'
} >"$W/badge.eml"
expect_rc "HTML badge in an unsigned body: exit 4" 4 \
  "$(verify_rc "$W/badge.eml" --anchor "$CA_CERT")"
if grep -q "valid, trusted" "$W/verify.out"; then
  fail "status is reported out of band, never from the body"
else pass "status is reported out of band, never from the body"; fi

done_testing
