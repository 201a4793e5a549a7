#!/bin/sh
# Large messages stream through sign and encrypt: a 20 MiB message with an
# 8-bit text part and a binary attachment is signed (detached and opaque)
# and encrypted (GCM, CBC, signed then encrypted), and openssl cms checks
# every result.  Memory is not measured here.
set -u
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/test-smime-common.sh"
require_cmd python3 python3

M=$W/big.eml
python3 - "$M" <<'PY'
import os, sys
line = "Befund Zeile f\u00fcr Zeile, gr\u00fc\u00dfe aus der Klinik 0123456789\n"
text = line * (10 * 1024 * 1024 // len(line.encode()))
att = os.urandom(7 * 1024 * 1024)
import base64
with open(sys.argv[1], "w", encoding="utf-8", newline="\n") as f:
    f.write("From: alice@north-clinic.test\nTo: dave@north-clinic.test\n"
            "Subject: big\nMIME-Version: 1.0\n"
            "Content-Type: multipart/mixed; boundary=\"xx\"\n\n--xx\n"
            "Content-Type: text/plain; charset=utf-8\n"
            "Content-Transfer-Encoding: 8bit\n\n")
    f.write(text)
    f.write("\n--xx\nContent-Type: application/octet-stream\n"
            "Content-Transfer-Encoding: base64\n\n")
    f.write(base64.encodebytes(att).decode())
    f.write("--xx--\n")
PY
size=$(wc -c <"$M")
[ "$size" -gt 20000000 ] && pass "a ${size}-byte message was made" ||
  fail "test message too small ($size bytes)"

# lines_ok FILE: every line ends in CRLF and every byte is 7-bit.
lines_ok() {
  LC_ALL=C awk '!/\r$/ { bad = 1; exit } END { exit bad }' "$1" &&
    ! LC_ALL=C grep -q '[^[:print:][:space:]]' "$1"
}

# --- detached signature ------------------------------------------------------
if "$P11MAIL" sign --key "$ALICE_KEY" -o "$W/s.eml" "$M" 2>"$W/err"; then
  pass "a 20 MiB message is signed"
else fail "sign"; sed 's/^/#   /' "$W/err"; fi
lines_ok "$W/s.eml" && pass "signed output: CRLF lines, 7-bit" ||
  fail "signed output is not CRLF 7-bit"
# (openssl's MIME reader takes multipart/signed content as text, not -binary)
if openssl cms -verify -CAfile "$CA_CERT" -in "$W/s.eml" -out /dev/null \
     2>"$W/err"; then
  pass "openssl cms verifies the detached signature"
else fail "openssl cms -verify (detached)"; sed 's/^/#   /' "$W/err"; fi
status=$(verify_rc "$W/s.eml" --anchor "$CA_CERT")
expect_rc "p11mail verifies its streamed signature" 0 "$status"

# the same from a pipe: the input is copied once, then read twice
if cat "$M" | "$P11MAIL" sign --key "$ALICE_KEY" >"$W/s2.eml" 2>"$W/err" &&
   openssl cms -verify -CAfile "$CA_CERT" -in "$W/s2.eml" -out /dev/null \
     2>>"$W/err"; then
  pass "signing from stdin to stdout verifies"
else fail "sign from a pipe"; sed 's/^/#   /' "$W/err"; fi

# --- opaque signature --------------------------------------------------------
# its eContent is the canonical entity: the reference for what follows
if "$P11MAIL" sign --opaque --key "$ALICE_KEY" -o "$W/o.eml" "$M" \
     2>"$W/err" &&
   openssl cms -verify -CAfile "$CA_CERT" -binary -in "$W/o.eml" \
     -out "$W/s.content" 2>>"$W/err"; then
  pass "opaque signature: openssl verifies it"
else fail "opaque signature"; sed 's/^/#   /' "$W/err"; fi
grep -q "Content-Transfer-Encoding: quoted-printable" "$W/s.content" &&
  pass "the 8-bit text part was signed as quoted-printable" ||
  fail "no quoted-printable part in the signed content"
# the attachment survives canonicalization byte for byte
python3 - "$M" "$W/s.content" <<'PY' && pass "the attachment is unchanged" || fail "the attachment changed"
import base64, sys
def att(path):
    data = open(path, "rb").read().replace(b"\r\n", b"\n")
    body = data.split(b"Content-Transfer-Encoding: base64\n\n", 1)[1]
    return base64.decodebytes(body.split(b"--xx", 1)[0])
sys.exit(0 if att(sys.argv[1]) == att(sys.argv[2]) else 1)
PY
# the detached signature covers the same bytes
split_signed "$W/s.eml" "$W/det"
cmp -s "$W/det.content" "$W/s.content" &&
  pass "the detached signed part is the same canonical entity" ||
  fail "detached and opaque signed bytes differ"

# --- encryption ---------------------------------------------------------------
enc() { # NAME OUT ARGS...: encrypt to dave (software key) and to alice
  _n=$1 _o=$2; shift 2
  if "$P11MAIL" encrypt --anchor "$CA_CERT" --cert "$ALICE_RSA_CERT" \
       --recipient-cert "$DAVE_CERT" "$@" -o "$_o" "$M" 2>"$W/err"; then
    pass "$_n"
  else fail "$_n"; sed 's/^/#   /' "$W/err"; fi
}
dec() { # NAME IN OUT: openssl decrypts with dave's key
  if openssl cms -decrypt -recip "$DAVE_CERT" -inkey "$DAVE_KEY" \
       -binary -in "$2" -out "$3" 2>"$W/err"; then pass "$1"
  else fail "$1"; sed 's/^/#   /' "$W/err"; fi
}
enc "a 20 MiB message is encrypted (AES-256-GCM)" "$W/e.eml"
lines_ok "$W/e.eml" && pass "encrypted output: CRLF lines, 7-bit" ||
  fail "encrypted output is not CRLF 7-bit"
grep -q "smime-type=authEnveloped-data" "$W/e.eml" &&
  pass "it is authEnveloped-data" || fail "not authEnveloped-data"
dec "openssl cms decrypts the GCM message" "$W/e.eml" "$W/e.plain"
cmp -s "$W/e.plain" "$W/s.content" &&
  pass "the plaintext is the canonical entity that signing signs" ||
  fail "decrypted plaintext differs from the canonical entity"

enc "a 20 MiB message is encrypted (AES-256-CBC)" "$W/c.eml" --cbc
dec "openssl cms decrypts the CBC message" "$W/c.eml" "$W/c.plain"
cmp -s "$W/c.plain" "$W/s.content" && pass "CBC plaintext as expected" ||
  fail "CBC plaintext differs"

enc "a 20 MiB message is signed then encrypted" "$W/se.eml" --sign \
  --key "$ALICE_KEY"
dec "openssl cms decrypts the signed and encrypted message" "$W/se.eml" \
  "$W/se.inner"
if openssl cms -verify -CAfile "$CA_CERT" -in "$W/se.inner" \
     -out /dev/null 2>"$W/err"
then pass "openssl verifies the signature inside"
else fail "signature inside"; sed 's/^/#   /' "$W/err"; fi

# the sender's own copy decrypts on the token
if "$P11MAIL" decrypt --key "$ALICE_KEY" --cert "$ALICE_RSA_CERT" \
     -o "$W/mine.eml" "$W/e.eml" 2>"$W/err"; then
  pass "p11mail decrypts its own copy on the token"
else fail "p11mail decrypt"; sed 's/^/#   /' "$W/err"; fi
n=$(wc -c <"$W/s.content")
tail -c "$n" "$W/mine.eml" | cmp -s - "$W/s.content" &&
  grep -q "^Subject: big" "$W/mine.eml" &&
  pass "its plaintext is the outer header fields and the canonical entity" ||
  fail "p11mail's plaintext differs"
# a flipped byte in the ciphertext: refused, nothing written
python3 - "$W/e.eml" "$W/t.eml" <<'PY'
import base64, sys
raw = open(sys.argv[1], "rb").read()
head, body = raw.split(b"\r\n\r\n", 1)
der = bytearray(base64.b64decode(body))
der[len(der) // 2] ^= 1
b64 = base64.encodebytes(bytes(der)).replace(b"\n", b"\r\n")
open(sys.argv[2], "wb").write(head + b"\r\n\r\n" + b64)
PY
rm -f "$W/t.out"
"$P11MAIL" decrypt --key "$ALICE_KEY" --cert "$ALICE_RSA_CERT" \
  -o "$W/t.out" "$W/t.eml" 2>"$W/err"
rc=$?
[ $rc -ne 0 ] && [ ! -e "$W/t.out" ] &&
  grep -Eq "could not be decrypted|malformed" "$W/err" &&
  [ -z "$(ls "$W" | grep '^t\.out\.')" ] &&
  pass "a tampered 20 MiB GCM message is refused, nothing written" ||
  { fail "tampered large message (status $rc)"; sed 's/^/#   /' "$W/err"; }

# --- failures leave nothing behind -------------------------------------------
rm -f "$W/none.eml"
"$P11MAIL" encrypt --anchor "$CA_CERT" --cert "$ALICE_RSA_CERT" \
  --to nobody@north-clinic.test -o "$W/none.eml" "$M" 2>"$W/err"
rc=$?
if [ $rc -ne 0 ] && [ ! -e "$W/none.eml" ] &&
   [ -z "$(ls "$W" | grep '^none\.eml\.')" ]; then
  pass "a refused encryption writes no file, not even a temporary one"
else fail "refused encryption: status $rc"; ls "$W" | sed 's/^/#   /'; fi
"$P11MAIL" sign --key "$ALICE_KEY" -o "$W/none.eml" /nonexistent 2>"$W/err"
[ $? -ne 0 ] && [ ! -e "$W/none.eml" ] && grep -q nonexistent "$W/err" &&
  pass "a missing input is named and nothing is written" ||
  fail "missing input"

done_testing
