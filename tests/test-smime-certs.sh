#!/bin/sh
# Certificate rules (RFC 8550): validity now, keyUsage, EKU, key size,
# chain, address binding; encryption fails closed naming every recipient.
set -u
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/test-smime-common.sh"

mkmsg "$W/msg" alice@north-clinic.test bob@south-lab.test

# --- encryption refuses every unusable recipient, naming each ---------------
rm -f "$W/bad.eml"
"$P11MAIL" encrypt --anchor "$CA_CERT" --cert "$ALICE_RSA_CERT" \
  --recipient-cert "$BOB_RSA_CERT" --to bob@south-lab.test \
  --recipient-cert "$BAD_EXPIRED_CERT" --to expired@north-clinic.test \
  --recipient-cert "$BAD_NOTYET_CERT" --to notyet@north-clinic.test \
  --recipient-cert "$BAD_EKU_CERT" --to codesign@south-lab.test \
  --recipient-cert "$BAD_NOKE_CERT" --to noke@south-lab.test \
  --recipient-cert "$BAD_RSA1024_CERT" --to weak@north-clinic.test \
  --recipient-cert "$BAD_SELFSIGNED_CERT" --to selfsigned@south-lab.test \
  --recipient-cert "$BAD_NOTCA_CERT" --to notca@south-lab.test \
  --to nobody@north-clinic.test \
  -o "$W/bad.eml" "$W/msg" 2>"$W/bad.err"
rc=$?
if [ "$rc" != 0 ] && [ ! -e "$W/bad.eml" ]; then
  pass "encryption with unusable recipients fails and writes nothing"
else fail "encryption with unusable recipients fails and writes nothing"; fi
for a in expired@north-clinic.test:expired notyet@north-clinic.test:"not yet valid" \
         codesign@south-lab.test:extendedKeyUsage noke@south-lab.test:keyEncipherment \
         weak@north-clinic.test:"too weak" selfsigned@south-lab.test:"trust anchor" \
         notca@south-lab.test:"trust anchor" nobody@north-clinic.test:"no certificate"; do
  addr=${a%%:*} why=${a#*:}
  if grep "^p11mail: $addr: " "$W/bad.err" | grep -q "$why"; then
    pass "refusal names $addr ($why)"
  else fail "refusal names $addr ($why)"; sed 's/^/#   /' "$W/bad.err"; fi
done
if grep -q "bob@south-lab.test" "$W/bad.err"; then
  fail "the usable recipient is not blamed"
else pass "the usable recipient is not blamed"; fi
grep_out "expired certificate: says to repeat the exchange" \
  "repeat the signed-mail exchange" "$W/bad.err"

check_fails "no trust anchor: even a good recipient is refused" \
  "$P11MAIL" encrypt --cert "$ALICE_RSA_CERT" --recipient-cert "$BOB_RSA_CERT" \
  "$W/msg"

# Address only in the DN emailAddress is the certificate's address.
check "DN-only address: encryption accepted" \
  "$P11MAIL" encrypt --anchor "$CA_CERT" --cert "$ALICE_RSA_CERT" \
  --recipient-cert "$BAD_DNONLY_CERT" --to dnonly@north-clinic.test \
  -o "$W/dn.eml" "$W/msg"
check "DN-only recipient decrypts" openssl cms -decrypt \
  -recip "$BAD_DNONLY_CERT" -inkey "$BAD_DNONLY_KEY" -in "$W/dn.eml" \
  -out "$W/dn.out"
mkmsg "$W/dnmsg" dnonly@north-clinic.test bob@south-lab.test
"$P11MAIL" sign --key "$BAD_DNONLY_KEY" --cert "$BAD_DNONLY_CERT" \
  -o "$W/dn-signed.eml" "$W/dnmsg"
expect_rc "DN-only signer matches From" 0 \
  "$(verify_rc "$W/dn-signed.eml" --anchor "$CA_CERT")"

# Several certificates for one address, one expired: the valid one is used.
openssl ecparam -genkey -name prime256v1 -noout -out "$W/exp2.key" 2>/dev/null
openssl req -new -key "$W/exp2.key" -subj "/CN=expired again" \
  -out "$W/exp2.csr" 2>/dev/null
printf '%s\n' "basicConstraints=critical,CA:FALSE" \
  "keyUsage=critical,digitalSignature,keyAgreement" \
  "extendedKeyUsage=emailProtection" \
  "subjectAltName=email:expired@north-clinic.test" >"$W/exp2.ext"
openssl x509 -req -in "$W/exp2.csr" -CA "$CA_CERT" -CAkey "$CA_KEY" \
  -CAcreateserial -days 30 -extfile "$W/exp2.ext" -out "$W/exp2.pem" \
  2>/dev/null
check "expired and current certificate for one address: encrypts" \
  "$P11MAIL" encrypt --anchor "$CA_CERT" --cert "$ALICE_RSA_CERT" \
  --recipient-cert "$BAD_EXPIRED_CERT" --recipient-cert "$W/exp2.pem" \
  --to expired@north-clinic.test -o "$W/two.eml" "$W/msg"
check "the current certificate was the one used" openssl cms -decrypt \
  -recip "$W/exp2.pem" -inkey "$W/exp2.key" -in "$W/two.eml" -out /dev/null

# --- signing with a certificate that may not sign -----------------------------
for b in EKU EXPIRED RSA1024; do
  eval "cert=\$BAD_${b}_CERT key=\$BAD_${b}_KEY"
  check_fails "p11mail refuses to sign with the $b certificate" \
    "$P11MAIL" sign --key "$key" --cert "$cert" "$W/msg"
done

# --- verification of signatures made elsewhere with bad certificates ---------
# sigmsg NAME CERT KEY ADDR [openssl args]: openssl signs a message from ADDR.
sigmsg() {
  mkmsg "$W/$1.msg" "$4" bob@south-lab.test
  _n=$1 _c=$2 _k=$3; shift 4
  openssl cms -sign -signer "$_c" -inkey "$_k" -in "$W/$_n.msg" \
    -out "$W/$_n.eml" "$@" 2>/dev/null
  # openssl cms writes the message body only: put the headers back
  { sed -n '1,/^$/p' "$W/$_n.msg" | grep -v '^Content-\|^MIME\|^$'
    cat "$W/$_n.eml"; } >"$W/$_n.full"
}
sigmsg expired "$BAD_EXPIRED_CERT" "$BAD_EXPIRED_KEY" expired@north-clinic.test
expect_rc "expired signer: invalid (judged now)" 4 \
  "$(verify_rc "$W/expired.full" --anchor "$CA_CERT")"
grep_out "expired is named" "expired" "$W/verify.out"
sigmsg notyet "$BAD_NOTYET_CERT" "$BAD_NOTYET_KEY" notyet@north-clinic.test
expect_rc "not-yet-valid signer: invalid" 4 \
  "$(verify_rc "$W/notyet.full" --anchor "$CA_CERT")"
sigmsg eku "$BAD_EKU_CERT" "$BAD_EKU_KEY" codesign@south-lab.test
expect_rc "code-signing-only EKU: invalid" 4 \
  "$(verify_rc "$W/eku.full" --anchor "$CA_CERT")"
sigmsg weak "$BAD_RSA1024_CERT" "$BAD_RSA1024_KEY" weak@north-clinic.test
expect_rc "RSA-1024 signer: invalid" 4 \
  "$(verify_rc "$W/weak.full" --anchor "$CA_CERT")"
sigmsg notca "$BAD_NOTCA_CERT" "$BAD_NOTCA_KEY" notca@south-lab.test \
  -certfile "$BAD_NOTCA_ISSUER_CERT"
expect_rc "issuer without CA:TRUE: invalid chain" 4 \
  "$(verify_rc "$W/notca.full" --anchor "$CA_CERT")"
grep_out "chain problem is named" "chain invalid" "$W/verify.out"
sigmsg noke "$BAD_NOKE_CERT" "$BAD_NOKE_KEY" noke@south-lab.test
expect_rc "no keyEncipherment does not matter for signing" 0 \
  "$(verify_rc "$W/noke.full" --anchor "$CA_CERT")"
sigmsg sha1 "$DAVE_CERT" "$DAVE_KEY" dave@north-clinic.test -md sha1
expect_rc "SHA-1 signature: invalid" 4 \
  "$(verify_rc "$W/sha1.full" --anchor "$CA_CERT")"

done_testing
