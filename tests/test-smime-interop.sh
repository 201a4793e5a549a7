#!/bin/sh
# Interop with gpgsm and NSS cmsutil, both directions where the peer can:
# p11mail signatures (RSA, PSS, ECDSA, made on the token) verify there,
# and messages those peers make decrypt and verify with p11mail on the
# token.
set -u
. "$top_srcdir/tests/tap.sh"
require_cmd gpgsm gpgsm
require_cmd cmsutil libnss3-tools
require_cmd certutil libnss3-tools
require_cmd pk12util libnss3-tools
. "$top_srcdir/tests/test-smime-common.sh"

mkmsg "$W/msg" alice@north-clinic.test bob@south-lab.test

# A PKCS#12 for Dave that gpgsm 2.2 and NSS can both read (empty password).
openssl pkcs12 -export -inkey "$DAVE_KEY" -in "$DAVE_CERT" -passout pass: \
  -certpbe NONE -keypbe PBE-SHA1-3DES -macalg sha1 -out "$W/dave.p12"

# p11mail signs on the token: RSA, RSA-PSS, ECDSA.
"$P11MAIL" sign --key "$ALICE_KEY" -o "$W/rsa.eml" "$W/msg"
"$P11MAIL" sign --pss --key "$ALICE_KEY" -o "$W/pss.eml" "$W/msg"
"$P11MAIL" sign --key "$ALICE_ECKEY" -o "$W/ec.eml" "$W/msg"
for k in rsa pss ec; do split_signed "$W/$k.eml" "$W/$k"; done
cp "$W/rsa.content" "$W/bad.content"
sed -i 's/Zweite/Dritte/' "$W/bad.content"

# --- gpgsm -------------------------------------------------------------------
GNUPGHOME=$W/gnupg
export GNUPGHOME
mkdir -m 700 "$GNUPGHOME"
printf 'disable-crl-checks\ndisable-dirmngr\n' >"$GNUPGHOME/gpgsm.conf"
printf 'allow-loopback-pinentry\n' >"$GNUPGHOME/gpg-agent.conf"
fixture_at_exit "GNUPGHOME='$GNUPGHOME' gpgconf --kill gpg-agent"
gpgsm --batch --import "$CA_CERT" "$BOB_RSA_CERT" >/dev/null 2>&1
echo "$(openssl x509 -in "$CA_CERT" -noout -fingerprint -sha1 |
  sed 's/.*=//') S relax" >"$GNUPGHOME/trustlist.txt"
# Dave's key is stored in gpg-agent without a passphrase.
gpgsm_() { gpgsm --batch --pinentry-mode loopback --passphrase '' "$@"; }

for k in rsa pss ec; do
  gpgsm_ --status-fd 1 --verify "$W/$k.p7s" "$W/$k.content" \
    >"$W/gpgsm-$k.status" 2>/dev/null
  if grep -q GOODSIG "$W/gpgsm-$k.status" &&
     grep -q TRUST_FULLY "$W/gpgsm-$k.status"; then
    pass "gpgsm verifies the p11mail $k signature (GOODSIG, TRUST_FULLY)"
  else
    fail "gpgsm verifies the p11mail $k signature"
    sed 's/^/#   /' "$W/gpgsm-$k.status" | head -n 10
  fi
done
gpgsm_ --status-fd 1 --verify "$W/rsa.p7s" "$W/bad.content" \
  >"$W/gpgsm-bad.status" 2>/dev/null
grep_out "gpgsm sees BADSIG on altered content" BADSIG "$W/gpgsm-bad.status"

# gpgsm encrypts (AES-CBC) to Bob; p11mail decrypts on Bob's token.
bob_fpr=$(openssl x509 -in "$BOB_RSA_CERT" -noout -fingerprint -sha1 |
  sed 's/.*=//; s/://g')
gpgsm_ -r "$bob_fpr" --encrypt "$W/msg" >"$W/gpgsm.der" 2>/dev/null
"$P11MAIL" decrypt --key "$BOB_KEY" --cert "$BOB_RSA_CERT" \
  -o "$W/gpgsm.dec" "$W/gpgsm.der" 2>"$W/gpgsm.err"
grep_out "gpgsm-encrypted (BER, CBC) message decrypts on the token" \
  "Zweite Zeile" "$W/gpgsm.dec"

# gpgsm signs (Dave's imported key); p11mail verifies the bare DER.
gpgsm_ --import "$W/dave.p12" >/dev/null 2>&1
printf 'Content-Type: text/plain\r\n\r\nsigned by gpgsm\r\n' >"$W/entity"
gpgsm_ -u "$(openssl x509 -in "$DAVE_CERT" -noout -fingerprint -sha1 |
  sed 's/.*=//; s/://g')" --sign "$W/entity" >"$W/gpgsm-signed.der" \
  2>/dev/null
expect_rc "gpgsm signature (opaque, BER) verifies with p11mail" 0 \
  "$(verify_rc "$W/gpgsm-signed.der" --anchor "$CA_CERT")"

# p11mail encrypts to Dave; gpgsm decrypts: CBC always, GCM when it can.
"$P11MAIL" encrypt --cbc --anchor "$CA_CERT" --recipient-cert "$DAVE_CERT" \
  --cert "$ALICE_RSA_CERT" --to dave@north-clinic.test -o "$W/to-gpgsm.eml" \
  "$W/msg"
sed '1,/^\r*$/d' "$W/to-gpgsm.eml" | openssl base64 -d >"$W/to-gpgsm.der"
gpgsm_ --decrypt "$W/to-gpgsm.der" >"$W/from-gpgsm.txt" 2>/dev/null
grep_out "gpgsm decrypts p11mail AES-CBC" "Zweite Zeile" "$W/from-gpgsm.txt"

"$P11MAIL" encrypt --anchor "$CA_CERT" --recipient-cert "$DAVE_CERT" \
  --cert "$ALICE_RSA_CERT" --to dave@north-clinic.test -o "$W/gcm.eml" \
  "$W/msg"
sed '1,/^\r*$/d' "$W/gcm.eml" | openssl base64 -d >"$W/gcm.der"
openssl cms -encrypt -aes-256-gcm -outform DER -in "$W/msg" \
  -out "$W/ossl-gcm.der" "$DAVE_CERT" 2>/dev/null
if gpgsm_ --decrypt "$W/gcm.der" 2>/dev/null | grep -q "Zweite Zeile"; then
  pass "gpgsm decrypts p11mail AES-GCM"
elif ! gpgsm_ --decrypt "$W/ossl-gcm.der" 2>/dev/null |
    grep -q "Zweite Zeile"; then
  skip "gpgsm decrypts p11mail AES-GCM" \
    "this gpgsm cannot decrypt OpenSSL's AES-GCM either"
else fail "gpgsm decrypts p11mail AES-GCM (it decrypts OpenSSL's)"; fi

# --- NSS cmsutil ---------------------------------------------------------------
NSSDB=sql:$W/nssdb
mkdir "$W/nssdb"
certutil -N -d "$NSSDB" --empty-password
certutil -A -d "$NSSDB" -n ca -t "C,C,C" -a -i "$CA_CERT"
certutil -A -d "$NSSDB" -n bob -t ",," -a -i "$BOB_RSA_CERT"
pk12util -i "$W/dave.p12" -d "$NSSDB" -W '' >/dev/null 2>&1
dave_nick=$(certutil -L -d "$NSSDB" | sed -n 's/^\(Dave.*[^ ]\) *u,u,u *$/\1/p')

for k in rsa pss ec; do
  cmsutil -D -d "$NSSDB" -i "$W/$k.p7s" -c "$W/$k.content" -n -h 1 \
    >"$W/nss-$k.out" 2>&1
  grep_out "cmsutil verifies the p11mail $k signature" \
    "signer0.status=GoodSignature" "$W/nss-$k.out"
done
cmsutil -D -d "$NSSDB" -i "$W/rsa.p7s" -c "$W/bad.content" -n -h 1 \
  >"$W/nss-bad.out" 2>&1
grep_out "cmsutil sees DigestMismatch on altered content" "DigestMismatch" \
  "$W/nss-bad.out"

cmsutil -E -d "$NSSDB" -r bob -i "$W/msg" -o "$W/nss.der"
"$P11MAIL" decrypt --key "$BOB_KEY" --cert "$BOB_RSA_CERT" \
  -o "$W/nss.dec" "$W/nss.der" 2>/dev/null
grep_out "cmsutil-encrypted message decrypts on the token" "Zweite Zeile" \
  "$W/nss.dec"

cmsutil -S -d "$NSSDB" -N "$dave_nick" -G -P -H SHA256 -i "$W/entity" \
  -o "$W/nss-signed.der"
expect_rc "cmsutil signature verifies with p11mail" 0 \
  "$(verify_rc "$W/nss-signed.der" --anchor "$CA_CERT")"

cmsutil -D -d "$NSSDB" -i "$W/to-gpgsm.der" >"$W/nss-dec.txt" 2>&1
grep_out "cmsutil decrypts p11mail AES-CBC" "Zweite Zeile" "$W/nss-dec.txt"

done_testing
