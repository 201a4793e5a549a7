#!/bin/sh
# Commands that only read never create a store: with --store at a path
# that does not exist, certs check fails; verify and read go on without a
# store and say so; sign, encrypt and decrypt fail when they need the
# store and work when the command line gives them all.  The path still
# does not exist afterwards.
set -u
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/test-smime-common.sh"

M=$W/missing/store
NOSTORE="there is no store at $M"

# gone NAME: passes when neither the store nor its parent was created.
gone() {
  if [ ! -e "$M" ] && [ ! -e "$W/missing" ]; then pass "$1: nothing created"
  else fail "$1: nothing created"; ls -la "$W/missing" 2>&1 | sed 's/^/#   /'
    rm -rf "$W/missing"; fi
}

# run ARGS...: p11mail with the missing store, stdout and stderr kept.
run() {
  "$P11MAIL" --store "$M" "$@" >"$W/verify.out" 2>"$W/verify.err"
  echo $?
}

# say NAME TEXT: passes when stderr holds TEXT exactly once.
say() {
  if [ "$(grep -cF -- "$2" "$W/verify.err")" = 1 ]; then pass "$1"
  else fail "$1"; sed 's/^/#   /' "$W/verify.err" | head -n 20; fi
}

mkmsg "$W/msg" alice@north-clinic.test bob@south-lab.test

# certs check
expect_rc "certs check exits 1" 1 "$(run certs check)"
say "certs check names the missing store" "p11mail: $NOSTORE"
gone "certs check"
expect_rc "certs check --json exits 1" 1 "$(run certs check --json)"
gone "certs check --json"

# sign
expect_rc "sign without --key exits 1" 1 "$(run sign "$W/msg")"
say "sign names the missing store" \
  "$NOSTORE (install an identity with p11mail-certinstall)"
gone "sign without --key"
expect_rc "sign --from exits 1" 1 \
  "$(run sign --from alice@north-clinic.test "$W/msg")"
gone "sign --from"
expect_rc "sign --key --cert works" 0 \
  "$(run sign --key "$ALICE_KEY" --cert "$ALICE_RSA_CERT" -o "$W/signed.eml" \
     "$W/msg")"
gone "sign --key --cert"

# verify
expect_rc "verify without anchor: not trusted" 3 \
  "$(run verify "$W/signed.eml")"
say "verify says there is no store" "p11mail: $NOSTORE: nothing is cached"
gone "verify"
expect_rc "verify --anchor: trusted" 0 \
  "$(run verify --anchor "$CA_CERT" "$W/signed.eml")"
gone "verify --anchor"
expect_rc "verify --json --anchor: trusted" 0 \
  "$(run verify --json --anchor "$CA_CERT" "$W/signed.eml")"
if python3 -c 'import json,sys; json.load(open(sys.argv[1]))' \
     "$W/verify.out" 2>/dev/null; then pass "verify --json prints JSON"
else fail "verify --json prints JSON"; sed 's/^/#   /' "$W/verify.out"; fi
gone "verify --json"
expect_rc "verify -q: not trusted" 3 \
  "$("$P11MAIL" -q --store "$M" verify "$W/signed.eml" \
     2>"$W/verify.err" >/dev/null; echo $?)"
if grep -q "no store" "$W/verify.err"; then
  fail "verify -q says nothing of the store"
else pass "verify -q says nothing of the store"; fi
gone "verify -q"
cp "$W/signed.eml" "$W/bad.eml"
sed -i 's/Zweite Zeile/Dritte Zeile/' "$W/bad.eml"
expect_rc "verify of a tampered message: invalid" 4 \
  "$(run verify --anchor "$CA_CERT" "$W/bad.eml")"
gone "verify of a tampered message"

# encrypt
expect_rc "encrypt to the cache exits 1" 1 \
  "$(run encrypt --cert "$ALICE_RSA_CERT" "$W/msg")"
say "encrypt names the missing store" \
  "$NOSTORE (install an identity with p11mail-certinstall)"
gone "encrypt to the cache"
expect_rc "encrypt without --cert exits 1" 1 \
  "$(run encrypt --recipient-cert "$BOB_RSA_CERT" "$W/msg")"
gone "encrypt without --cert"
expect_rc "encrypt --cert --recipient-cert works" 0 \
  "$(run encrypt --anchor "$CA_CERT" --cert "$ALICE_RSA_CERT" \
     --recipient-cert "$BOB_RSA_CERT" \
     -o "$W/enc.eml" "$W/msg")"
gone "encrypt --cert --recipient-cert"

# decrypt
expect_rc "decrypt without --key exits 1" 1 \
  "$(run decrypt "$W/enc.eml")"
say "decrypt names the missing store" \
  "$NOSTORE (install an identity with p11mail-certinstall)"
gone "decrypt without --key"
expect_rc "decrypt --key --cert works" 0 \
  "$(run decrypt --key "$BOB_KEY" --cert "$BOB_RSA_CERT" -o "$W/dec.eml" \
     "$W/enc.eml")"
grep_out "decrypt gives the message back" "Zweite Zeile" "$W/dec.eml"
gone "decrypt --key --cert"

# read
mkdir -p "$W/Maildir/new" "$W/Maildir/cur" "$W/Maildir/tmp"
cp "$W/signed.eml" "$W/Maildir/new/1000.signed.test"
cp "$W/enc.eml" "$W/Maildir/new/2000.enc.test"
printf '[account]\naddress = bob@south-lab.test\nmaildir = %s\n' \
  "$W/Maildir" >"$W/read.conf"
expect_rc "read of a signed message: not trusted" 3 \
  "$(P11MAIL_CONFIG="$W/read.conf" run read --no-prompt 1000.signed.test)"
say "read says there is no store" "p11mail: $NOSTORE: nothing is cached"
grep_out "read shows the message" "Zweite Zeile" "$W/verify.out"
grep_out "read says how to trust the signer" "p11mail trust add" \
  "$W/verify.err"
gone "read of a signed message"
expect_rc "read of an encrypted message exits 1" 1 \
  "$(P11MAIL_CONFIG="$W/read.conf" run read --no-prompt 2000.enc.test)"
say "read names the missing store" \
  "$NOSTORE (install an identity with p11mail-certinstall)"
gone "read of an encrypted message"

done_testing
