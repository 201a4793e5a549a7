#!/bin/sh
# Resource limits: nesting depth, part count, header size, certificates in
# one signature and total size are bounded, with a clear error.
set -u
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/test-smime-common.sh"

# limited NAME FILE PATTERN: verify and sign both refuse FILE, naming it.
limited() {
  _rc=$(verify_rc "$2" --anchor "$CA_CERT")
  if [ "$_rc" = 4 ] && grep -q -- "$3" "$W/verify.err"; then
    pass "verify: $1"
  else
    fail "verify: $1 (exit $_rc)"
    sed 's/^/#   /' "$W/verify.err" | head -n 5
  fi
  if "$P11MAIL" sign --key "$DAVE_KEY" --cert "$DAVE_CERT" "$2" \
      >/dev/null 2>"$W/sign.err"; then
    fail "sign: $1 (signed)"
  elif grep -q -- "$3" "$W/sign.err"; then pass "sign: $1"
  else fail "sign: $1"; sed 's/^/#   /' "$W/sign.err" | head -n 5; fi
}

# Nesting: 40 multiparts inside each other.
{
  printf 'From: dave@north-clinic.test\r\nMIME-Version: 1.0\r\n'
  i=0
  while [ $i -lt 40 ]; do
    printf 'Content-Type: multipart/mixed; boundary="d%d"\r\n\r\n--d%d\r\n' $i $i
    i=$((i + 1))
  done
  printf 'Content-Type: text/plain\r\n\r\ndeep\r\n'
  i=39
  while [ $i -ge 0 ]; do printf -- '--d%d--\r\n' $i; i=$((i - 1)); done
} >"$W/deep.eml"
limited "MIME nesting beyond 16 levels is refused" "$W/deep.eml" "nesting"

# Part count: 300 parts.
{
  printf 'From: dave@north-clinic.test\r\nMIME-Version: 1.0\r\n'
  printf 'Content-Type: multipart/mixed; boundary="p"\r\n\r\n'
  i=0
  while [ $i -lt 300 ]; do
    printf -- '--p\r\nContent-Type: text/plain\r\n\r\npart %d\r\n' $i
    i=$((i + 1))
  done
  printf -- '--p--\r\n'
} >"$W/parts.eml"
limited "more than 256 parts is refused" "$W/parts.eml" "MIME parts"

# Header size: a 70 000-byte Subject.
{
  printf 'From: dave@north-clinic.test\r\nSubject: '
  head -c 70000 /dev/zero | tr '\0' 'A'
  printf '\r\n\r\nbody\r\n'
} >"$W/header.eml"
limited "a header field over 64 KiB is refused" "$W/header.eml" "header field"

# Total size: just over 64 MiB.
{
  printf 'From: dave@north-clinic.test\r\n\r\n'
  head -c 67200000 /dev/zero | tr '\0' 'A'
} >"$W/huge.eml"
# verify holds a message in memory and refuses it; signing a file streams,
# so its bound is --max-size (default 64 GiB)
_rc=$(verify_rc "$W/huge.eml" --anchor "$CA_CERT")
[ "$_rc" = 4 ] && grep -q "larger than" "$W/verify.err" &&
  pass "verify: a message over 64 MiB is refused" ||
  { fail "verify: over 64 MiB (exit $_rc)"; sed 's/^/#   /' "$W/verify.err"; }
if "$P11MAIL" sign --key "$DAVE_KEY" --cert "$DAVE_CERT" -o "$W/huge.sig" \
    "$W/huge.eml" 2>"$W/sign.err" &&
   head -n 3 "$W/huge.sig" | grep -q "multipart/signed" &&
   [ "$(wc -c <"$W/huge.sig")" -gt 67200000 ]; then
  pass "sign: a file over 64 MiB is signed (streaming)"
else fail "sign: a file over 64 MiB"; sed 's/^/#   /' "$W/sign.err"; fi
# verify --max-size raises the bound of a message held in memory.
_rc=$(verify_rc "$W/huge.sig" --anchor "$CA_CERT" --max-size 80000000)
case $_rc in
0|3) pass "verify --max-size: a signed message over 64 MiB verifies" ;;
*) fail "verify --max-size over 64 MiB (exit $_rc)"
   sed 's/^/#   /' "$W/verify.err" ;;
esac
rm -f "$W/huge.sig"
if "$P11MAIL" sign --max-size 1000000 --key "$DAVE_KEY" --cert "$DAVE_CERT" \
    -o "$W/huge.sig" "$W/huge.eml" 2>"$W/sign.err"; then
  fail "sign --max-size: a larger file is refused (signed)"
elif grep -q "larger than 1000000 bytes" "$W/sign.err" && [ ! -e "$W/huge.sig" ]
then pass "sign --max-size: a larger file is refused, nothing written"
else fail "sign --max-size"; sed 's/^/#   /' "$W/sign.err"; fi
"$P11MAIL" encrypt --max-size 1000000 --anchor "$CA_CERT" --cert "$DAVE_CERT" \
  --recipient-cert "$DAVE_CERT" --to dave@north-clinic.test \
  -o "$W/huge.enc" "$W/huge.eml" 2>"$W/enc.err"
[ $? != 0 ] && grep -q "larger than 1000000 bytes" "$W/enc.err" &&
  [ ! -e "$W/huge.enc" ] &&
  pass "encrypt --max-size: a larger file is refused, nothing written" ||
  { fail "encrypt --max-size"; sed 's/^/#   /' "$W/enc.err"; }
"$P11MAIL" sign --max-size 12k --key "$DAVE_KEY" "$W/huge.eml" \
  2>"$W/sign.err" >/dev/null
[ $? = 2 ] && grep -q "max-size" "$W/sign.err" &&
  pass "a malformed --max-size is a usage error" ||
  { fail "malformed --max-size"; sed 's/^/#   /' "$W/sign.err"; }
rm -f "$W/huge.eml" "$W/huge.sig"

# Certificates: 17 distinct ones in one signature.
i=0
: >"$W/many.pem"
while [ $i -lt 17 ]; do
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout /dev/null -subj "/CN=filler $i" -days 1 2>/dev/null >>"$W/many.pem"
  i=$((i + 1))
done
mkmsg "$W/dmsg" dave@north-clinic.test bob@south-lab.test
openssl cms -sign -signer "$DAVE_CERT" -inkey "$DAVE_KEY" -nodetach \
  -certfile "$W/many.pem" -outform DER -in "$W/dmsg" -out "$W/many.der" \
  2>/dev/null
rc=$(verify_rc "$W/many.der" --anchor "$CA_CERT")
if [ "$rc" = 4 ] && grep -q "certificates in one signature" "$W/verify.err"
then pass "more than 16 certificates in a signature is refused"
else fail "more than 16 certificates in a signature is refused (exit $rc)"; fi

# Just below the bounds everything works.
{
  printf 'From: dave@north-clinic.test\r\nMIME-Version: 1.0\r\n'
  i=0
  while [ $i -lt 10 ]; do
    printf 'Content-Type: multipart/mixed; boundary="d%d"\r\n\r\n--d%d\r\n' $i $i
    i=$((i + 1))
  done
  printf 'Content-Type: text/plain\r\n\r\ndeep\r\n'
  i=9
  while [ $i -ge 0 ]; do printf -- '--d%d--\r\n' $i; i=$((i - 1)); done
} >"$W/ten.eml"
"$P11MAIL" sign --key "$DAVE_KEY" --cert "$DAVE_CERT" -o "$W/ten.signed" \
  "$W/ten.eml"
expect_rc "10 levels of nesting sign and verify" 0 \
  "$(verify_rc "$W/ten.signed" --anchor "$CA_CERT")"

done_testing
