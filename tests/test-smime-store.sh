#!/bin/sh
# The S/MIME commands with a workstation store: alice and bob each have a
# store with their identity (key on the token) and the test CA as anchor,
# and the token settings in a configuration.  They exchange signed mail,
# then encrypted mail to certificates from the cache; an expired cached
# certificate is refused with the re-exchange advice; a recipient whose
# capabilities lack GCM gets AES-CBC.
set -u
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/test-smime-common.sh"
require_cmd python3 python3
CI="$top_builddir/src/p11mail-certinstall"
[ -x "$CI" ] || skip_all "p11mail-certinstall was not built"
LIB="$top_builddir/src/.libs/libp11mail.so"
[ -f "$LIB" ] || skip_all "no shared libp11mail ($LIB)"

# The token comes from each configuration only.
unset P11MAIL_MODULE

# setup USER PINFILE URI: a store and configuration for USER.
setup() {
  mkdir -p "$W/$1"
  printf '[identity]\naddress = %s\n[token]\nmodule = %s\npin-source = file:%s\n[store]\npath = %s\n' \
    "$4" "$SOFTHSM_MODULE" "$2" "$W/$1/store" >"$W/$1/p11mail.conf"
  if P11MAIL_CONFIG="$W/$1/p11mail.conf" "$CI" register --uri "$3" \
       >"$W/err" 2>&1 &&
     P11MAIL_CONFIG="$W/$1/p11mail.conf" "$CI" anchor add "$CA_CERT" \
       >>"$W/err" 2>&1; then
    pass "$1's store has the identity and the anchor"
  else fail "$1's store"; sed 's/^/#   /' "$W/err"; fi
}
setup alice "$ALICE_PIN_FILE" "$ALICE_RSA_URI" alice@north-clinic.test
setup bob "$BOB_PIN_FILE" "$BOB_RSA_URI" bob@south-lab.test

# as USER ARGS...: runs p11mail with USER's configuration (and store).
as() { _u=$1; shift; P11MAIL_CONFIG="$W/$_u/p11mail.conf" "$P11MAIL" "$@"; }

# cache USER ADDRESS CERT [CAPS-HEX]: puts CERT into USER's cache through
# the library, as a signed exchange would, with those SMIMECapabilities.
cache() {
  openssl x509 -in "$3" -outform DER -out "$W/cache.der" || return 1
  # A sanitizer build's library loads only after the ASan runtime.
  LD_PRELOAD=${P11MAIL_TEST_ASAN_RUNTIME:-} \
  python3 - "$LIB" "$W/$1/store" "$2" "$W/cache.der" "${4:-}" <<'PY'
import ctypes, sys
lib = ctypes.CDLL(sys.argv[1])
lib.p11mail_store_open.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
lib.p11mail_cache_put.argtypes = [ctypes.c_void_p, ctypes.c_char_p,
    ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_char_p,
    ctypes.c_size_t, ctypes.c_int64]
lib.p11mail_store_close.argtypes = [ctypes.c_void_p]
store = ctypes.c_void_p()
if lib.p11mail_store_open(sys.argv[2].encode(), ctypes.byref(store)) != 0:
    sys.exit(1)
der = open(sys.argv[4], "rb").read()
caps = bytes.fromhex(sys.argv[5]) if sys.argv[5] else None
rc = lib.p11mail_cache_put(store, sys.argv[3].encode(), der, len(der), 1,
                           caps, len(caps) if caps else 0, 0)
lib.p11mail_store_close(store)
sys.exit(rc)
PY
}

mkmsg "$W/a2b" alice@north-clinic.test bob@south-lab.test
mkmsg "$W/b2a" bob@south-lab.test alice@north-clinic.test

# --- signed exchange -----------------------------------------------------------
if as alice sign -o "$W/a2b.signed" "$W/a2b" 2>"$W/err"; then
  pass "alice signs with the identity of her store (no --key)"
else fail "alice signs from the store"; sed 's/^/#   /' "$W/err"; fi
as bob verify "$W/a2b.signed" >"$W/verify.out" 2>"$W/verify.err"
expect_rc "bob verifies it trusted through his store's anchor" 0 $?
as bob sign --from bob@south-lab.test -o "$W/b2a.signed" "$W/b2a" \
  2>"$W/err" && pass "bob signs with --from" ||
  { fail "bob signs with --from"; sed 's/^/#   /' "$W/err"; }
as alice verify "$W/b2a.signed" >"$W/verify.out" 2>"$W/verify.err"
expect_rc "alice verifies bob's signature trusted" 0 $?
# without a store's anchor the same signature is not trusted
rm -rf "$W/empty"
P11MAIL_STORE="$W/empty" "$P11MAIL" verify "$W/b2a.signed" \
  >"$W/verify.out" 2>"$W/verify.err"
expect_rc "an empty store has no anchor: valid, not trusted" 3 $?
as alice sign --from nobody@north-clinic.test -o "$W/x" "$W/a2b" \
  2>"$W/err"
rc=$?
[ $rc -ne 0 ] && [ ! -e "$W/x" ] &&
  grep -q "no identity for nobody@north-clinic.test" "$W/err" &&
  pass "an address without identity is refused" ||
  { fail "unknown --from (status $rc)"; sed 's/^/#   /' "$W/err"; }

# each caches the other's certificate from the exchange
cache alice bob@south-lab.test "$BOB_RSA_CERT" &&
  cache bob alice@north-clinic.test "$ALICE_RSA_CERT" &&
  pass "each store caches the other's certificate" ||
  fail "caching the exchanged certificates"

# --- encrypted exchange ----------------------------------------------------------
if as alice encrypt -o "$W/a2b.enc" "$W/a2b" 2>"$W/err"; then
  pass "alice encrypts to bob from her cache (To: header)"
else fail "alice encrypts from the cache"; sed 's/^/#   /' "$W/err"; fi
grep_out "bob's capabilities are unknown: AES-GCM" \
  "smime-type=authEnveloped-data" "$W/a2b.enc"
if as bob decrypt -o "$W/a2b.plain" "$W/a2b.enc" 2>"$W/err" &&
   grep -q "Zweite Zeile" "$W/a2b.plain"; then
  pass "bob decrypts with the identity of his store"
else fail "bob decrypts"; sed 's/^/#   /' "$W/err"; fi
if as alice decrypt -o "$W/a2b.mine" "$W/a2b.enc" 2>"$W/err"; then
  pass "alice decrypts her own copy"
else fail "alice's own copy"; sed 's/^/#   /' "$W/err"; fi

if as bob encrypt --sign --to alice@north-clinic.test -o "$W/b2a.enc" \
     "$W/b2a" 2>"$W/err"; then
  pass "bob signs and encrypts to alice from his store"
else fail "bob signs and encrypts"; sed 's/^/#   /' "$W/err"; fi
as alice decrypt -o "$W/b2a.plain" "$W/b2a.enc" >"$W/verify.out" \
  2>"$W/verify.err"
expect_rc "alice decrypts and the signature inside is trusted" 0 $?

# files on the command line still work next to the store
if as alice encrypt --recipient-cert "$DAVE_CERT" --to dave@north-clinic.test \
     -o "$W/a2d.enc" "$W/a2b" 2>"$W/err" &&
   openssl cms -decrypt -recip "$DAVE_CERT" -inkey "$DAVE_KEY" \
     -in "$W/a2d.enc" -out /dev/null 2>>"$W/err"; then
  pass "a --recipient-cert file is used next to the store"
else fail "--recipient-cert with a store"; sed 's/^/#   /' "$W/err"; fi

# --- an expired cached certificate ------------------------------------------------
cache alice expired@north-clinic.test "$BAD_EXPIRED_CERT" ||
  fail "caching the expired certificate"
rm -f "$W/exp.enc"
as alice encrypt --to expired@north-clinic.test -o "$W/exp.enc" "$W/a2b" \
  2>"$W/err"
rc=$?
if [ $rc -ne 0 ] && [ ! -e "$W/exp.enc" ] &&
   grep "expired@north-clinic.test:" "$W/err" | grep -q "expired" &&
   grep -q "repeat the signed-mail exchange" "$W/err"; then
  pass "an expired cached certificate is refused with the re-exchange advice"
else fail "expired cached certificate (status $rc)"; sed 's/^/#   /' "$W/err"; fi

# --- capabilities without GCM ------------------------------------------------------
# SMIMECapabilities listing only aes256-CBC (2.16.840.1.101.3.4.1.42)
CBC_ONLY=300d300b060960864801650304012a
cache alice dave@north-clinic.test "$DAVE_CERT" "$CBC_ONLY" ||
  fail "caching dave with CBC-only capabilities"
if as alice encrypt --to dave@north-clinic.test -o "$W/a2d.cbc" "$W/a2b" \
     2>"$W/err"; then
  pass "alice encrypts to dave from the cache"
else fail "encrypt to dave"; sed 's/^/#   /' "$W/err"; fi
grep_out "dave announced no GCM: enveloped-data" \
  "smime-type=enveloped-data" "$W/a2d.cbc"
openssl cms -cmsout -print -in "$W/a2d.cbc" 2>/dev/null |
  grep -q "aes-256-cbc" && pass "the content cipher is AES-256-CBC" ||
  fail "content cipher is not AES-256-CBC"
if openssl cms -decrypt -recip "$DAVE_CERT" -inkey "$DAVE_KEY" \
     -in "$W/a2d.cbc" -out "$W/a2d.plain" 2>"$W/err" &&
   grep -q "Zweite Zeile" "$W/a2d.plain"; then
  pass "dave decrypts it with openssl"
else fail "dave decrypts"; sed 's/^/#   /' "$W/err"; fi
# bob's capabilities include GCM: a message to both stays... CBC, the
# weakest common choice, since one message has one content cipher
as alice encrypt --to bob@south-lab.test --to dave@north-clinic.test \
  -o "$W/both.enc" "$W/a2b" 2>"$W/err" &&
  grep -q "smime-type=enveloped-data" "$W/both.enc" &&
  pass "one recipient without GCM makes the whole message CBC" ||
  { fail "mixed recipients"; sed 's/^/#   /' "$W/err"; }

# --- verifying needs no identity ------------------------------------------------------
# bob's address, but a store that has no identity (nor anchor) yet
printf '[identity]\naddress = bob@south-lab.test\n[token]\nmodule = %s\n' \
  "$SOFTHSM_MODULE" >"$W/fresh.conf"
rm -rf "$W/fresh"
"$P11MAIL" --config "$W/fresh.conf" --store "$W/fresh" verify \
  --anchor "$CA_CERT" "$W/a2b.signed" >"$W/verify.out" 2>"$W/verify.err"
expect_rc "a store without identity verifies: valid and trusted, exit 0" 0 $?
"$P11MAIL" --config "$W/fresh.conf" --store "$W/fresh" verify \
  "$W/a2b.signed" >"$W/verify.out" 2>"$W/verify.err"
expect_rc "a store without identity or anchor: not trusted, exit 3" 3 $?
! grep -q "no identity" "$W/verify.err" &&
  pass "verify does not look for an identity" ||
  fail "verify does not look for an identity"

# --- --chain and --cert with the store's identity ------------------------------------
# ncerts SIGNED: the number of certificates in the signature of SIGNED
ncerts() {
  split_signed "$1" "$W/nc"
  openssl pkcs7 -inform DER -in "$W/nc.p7s" -print_certs 2>/dev/null |
    grep -c '^subject='
}
if as alice sign --chain "$CA_CERT" -o "$W/a2b.chain" "$W/a2b" 2>"$W/err" &&
   [ "$(ncerts "$W/a2b.chain")" = $(($(ncerts "$W/a2b.signed") + 1)) ]; then
  pass "--chain is included with the store's identity"
else fail "--chain with the store's identity"; sed 's/^/#   /' "$W/err"; fi
for bad in "$W/no-such-chain.pem" "$W/a2b"; do
  rm -f "$W/x"
  as alice sign --chain "$bad" -o "$W/x" "$W/a2b" 2>"$W/err"
  rc=$?
  [ $rc = 1 ] && [ ! -e "$W/x" ] && grep -q "$bad" "$W/err" &&
    pass "store identity, --chain $(basename "$bad"): exit 1, nothing written" ||
    { fail "store --chain $(basename "$bad") (exit $rc)"; sed 's/^/#   /' "$W/err"; }
done
as alice sign --cert "$ALICE_RSA_CERT" -o "$W/x" "$W/a2b" 2>"$W/err"
rc=$?
[ $rc = 2 ] && [ ! -e "$W/x" ] && grep -q -- "--cert FILE needs --key" "$W/err" &&
  pass "store and --cert without --key: usage error, exit 2" ||
  { fail "store and --cert without --key (exit $rc)"; sed 's/^/#   /' "$W/err"; }

# --- --to as people type it -------------------------------------------------------------
for to in "BOB@South-Lab.test" "Bob South <Bob@south-lab.TEST>"; do
  rm -f "$W/to.enc"
  if as alice encrypt --to "$to" -o "$W/to.enc" "$W/a2b" 2>"$W/err" &&
     as bob decrypt -o "$W/to.plain" "$W/to.enc" 2>>"$W/err"; then
    pass "encrypt --to '$to' finds bob@south-lab.test in the cache"
  else fail "encrypt --to '$to'"; sed 's/^/#   /' "$W/err"; fi
done
as alice encrypt --to "not an address" -o "$W/x" "$W/a2b" 2>"$W/err"
rc=$?
[ $rc = 2 ] && [ ! -e "$W/x" ] &&
  pass "encrypt --to 'not an address': usage error, exit 2" ||
  { fail "encrypt --to 'not an address' (exit $rc)"; sed 's/^/#   /' "$W/err"; }

# --- read: a signer who is not the sender; malformed messages as JSON -----------------
mkdir -p "$W/Maildir/new" "$W/Maildir/cur" "$W/Maildir/tmp"
printf '[identity]\naddress = bob@south-lab.test\n[token]\nmodule = %s\npin-source = file:%s\n[store]\npath = %s\n[account]\naddress = bob@south-lab.test\nmaildir = %s\n' \
  "$SOFTHSM_MODULE" "$BOB_PIN_FILE" "$W/bob/store" "$W/Maildir" \
  >"$W/bob/read.conf"
rd() { P11MAIL_CONFIG="$W/bob/read.conf" "$P11MAIL" read --no-prompt "$@"; }
mkmsg "$W/m2b" mallory@evil.test bob@south-lab.test
"$P11MAIL" sign --key "$ALICE_KEY" -o "$W/Maildir/new/1000.M.host" "$W/m2b" \
  2>/dev/null
printf '\001garbage\n' >"$W/Maildir/new/1001.G.host"
: >"$W/Maildir/new/1002.E.host"
rd 1000.M.host >/dev/null 2>"$W/err"
rc=$?
if [ $rc = 4 ] &&
   grep -q "valid signature, but signer does not match sender mallory@evil.test" \
     "$W/err" && ! grep -qi "trusted" "$W/err"; then
  pass "read: a signer who is not From is not called trusted, exit 4"
else fail "read: signer not From (exit $rc)"; sed 's/^/#   /' "$W/err"; fi
# jq1 FILE EXPR: prints EXPR of the single JSON document in FILE
jq1() {
  python3 - "$1" "$2" <<'PY'
import json, sys
doc = json.loads(open(sys.argv[1]).read())
print(json.dumps(doc.get(sys.argv[2])))
PY
}
rd --json 1000.M.host >"$W/j.out" 2>/dev/null
rc=$?
[ $rc = 4 ] && [ "$(jq1 "$W/j.out" verdict)" = '"invalid"' ] &&
  [ "$(jq1 "$W/j.out" exit)" = 4 ] &&
  pass "read --json: the signer mismatch is invalid, exit 4" ||
  { fail "read --json of the mismatch (exit $rc)"; sed 's/^/#   /' "$W/j.out"; }
for id in 1001.G.host 1002.E.host; do
  rd --json "$id" >"$W/j.out" 2>/dev/null
  rc=$?
  [ $rc = 1 ] && [ "$(jq1 "$W/j.out" verdict)" = '"malformed"' ] &&
    [ "$(jq1 "$W/j.out" exit)" = 1 ] && [ "$(jq1 "$W/j.out" id)" = "\"$id\"" ] &&
    [ "$(jq1 "$W/j.out" problem)" != null ] &&
    pass "read --json of a malformed message ($id): one object, exit 1" ||
    { fail "read --json $id (exit $rc)"; sed 's/^/#   /' "$W/j.out"; }
done
rd --json 99 >"$W/j.out" 2>/dev/null
rc=$?
[ $rc = 1 ] && [ "$(jq1 "$W/j.out" verdict)" = '"error"' ] &&
  pass "read --json of a missing message: verdict error, exit 1" ||
  { fail "read --json 99 (exit $rc)"; sed 's/^/#   /' "$W/j.out"; }

done_testing
