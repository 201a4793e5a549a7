#!/bin/sh
# p11mail doctor on SoftHSM2 tokens: a healthy workstation reports only ok
# and exits 0; each fault made on purpose gives its warn or FAIL line with
# the next step, and the exit status says whether anything failed.
set -u
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/fixture/fixture.sh"
require_cmd pkcs11-tool opensc
require_cmd python3 python3
fixture_setup

P="$top_builddir/src/p11mail"
CI="$top_builddir/src/p11mail-certinstall"
W="$P11MAIL_FIXTURE_DIR/doctor"
mkdir -p "$W"
PW_SECRET="pw-$$-not-to-be-shown"
printf '%s' "$PW_SECRET" >"$W/password"
chmod 600 "$W/password"

# conf MODULE: writes the configuration with that [token] module.
conf() {
  printf '[identity]\naddress = alice@north-clinic.test\n[token]\nmodule = %s\npin-source = file:%s\n[account]\naddress = alice@north-clinic.test\nsmtp-host = smtp.north-clinic.test\nimap-host = imap.north-clinic.test\nsmtp-user = alice\npassword-source = file:%s\n' \
    "$1" "$ALICE_PIN_FILE" "$W/password" >"$W/p11mail.conf"
}
conf "$SOFTHSM_MODULE"
export P11MAIL_CONFIG="$W/p11mail.conf" P11MAIL_STORE="$W/store"
unset P11MAIL_STORE_NOW P11MAIL_MODULE P11MAIL_INIT_ARGS

"$CI" install "$ALICE_RSA_CERT" --token "pkcs11:serial=$ALICE_TOKEN_SERIAL" \
  >"$W/install.log" 2>&1 || diag "install: $(cat "$W/install.log")"
"$CI" anchor add "$CA_CERT" >/dev/null 2>&1 || diag "anchor add failed"

# run NAME WANT PATTERN CMD...: CMD exits WANT and prints a line matching
# the extended regular expression PATTERN.
run() {
  _name=$1 _want=$2 _pat=$3; shift 3
  _out=$("$@" 2>&1); _rc=$?
  printf '%s\n' "$_out" >"$W/last.out"
  if [ "$_rc" = "$_want" ] && printf '%s\n' "$_out" | grep -Eq -- "$_pat"; then
    pass "$_name"
  else
    fail "$_name (status $_rc, want $_want)"
    printf '%s\n' "$_out" | sed 's/^/#   /' | head -30
  fi
}
# no_line NAME PATTERN: the last output has no line matching PATTERN.
no_line() {
  if grep -Eq -- "$2" "$W/last.out"; then
    fail "$1"; grep -E -- "$2" "$W/last.out" | sed 's/^/#   /' | head -10
  else pass "$1"; fi
}

# --- a healthy workstation ---------------------------------------------
run "healthy: exit 0 with a summary" 0 "findings: [0-9]+ ok, 0 warn, 0 FAIL" \
  "$P" doctor
no_line "healthy: no warn or FAIL line" "^(warn|FAIL) "
for c in config module token store identity anchor cache account; do
  grep -q "^ok   $c " "$W/last.out" && pass "healthy: an ok $c line" ||
    fail "healthy: an ok $c line"
done
run "healthy: the token is listed with its serial" 0 \
  "^ok   token    alice-token \(serial $ALICE_TOKEN_SERIAL" "$P" doctor
run "healthy: without login the key pair is found by its public part" 0 \
  "alice@north-clinic.test .*: its key pair is on alice-token" "$P" doctor
run "healthy: the certificate matches the token key" 0 \
  "the certificate matches the key on alice-token" "$P" doctor
run "healthy --login: exactly one private key" 0 \
  "^ok   identity alice@north-clinic.test .*: one private key on alice-token" \
  "$P" doctor --login
no_line "healthy --login: no warn or FAIL line" "^(warn|FAIL) "
no_line "no PIN in the output" "$ALICE_PIN"
no_line "no password in the output" "$PW_SECRET"
"$P" --json doctor >"$W/json" 2>&1
if python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if r["ok"] and r["failures"] == 0 and all(c["status"] == "ok" and c["next"] is None for c in r["checks"]) else 1)' "$W/json"
then pass "--json: a valid report, everything ok"
else fail "--json: a valid report, everything ok"; sed 's/^/#   /' "$W/json" | head -5; fi
run "usage: arguments are refused" 2 \
  "^p11mail doctor: unexpected argument 'extra'" "$P" doctor extra
run "usage: an unknown option is named, with the help to try" 2 \
  "^Try 'p11mail doctor --help'\\.\$" "$P" doctor --bogus
run "usage: the unknown option is named" 2 \
  "^p11mail doctor: unknown option '--bogus'\$" "$P" doctor --bogus
# --json after the command: the same report as before it.
"$P" doctor --json >"$W/json-after" 2>&1
if cmp -s "$W/json" "$W/json-after"; then pass "doctor --json is --json doctor"
else fail "doctor --json is --json doctor"; diff "$W/json" "$W/json-after" | head -5; fi

# --quiet, before or after the command name: only warn and FAIL lines.
chmod 644 "$W/password"
run "doctor --quiet: the FAIL line and the count" 1 \
  "^[0-9]+ findings: [0-9]+ ok, 0 warn, 1 FAIL\$" "$P" doctor --quiet
no_line "doctor --quiet: no ok line" "^ok "
grep -q "^FAIL account  password file" "$W/last.out" &&
  pass "doctor --quiet: the FAIL line is printed" ||
  fail "doctor --quiet: the FAIL line is printed"
cp "$W/last.out" "$W/quiet-after"
"$P" --quiet doctor >"$W/quiet-before" 2>&1
if cmp -s "$W/quiet-before" "$W/quiet-after"; then pass "doctor -q is -q doctor"
else fail "doctor -q is -q doctor"; diff "$W/quiet-before" "$W/quiet-after" | head -5; fi
chmod 600 "$W/password"

# NSS softokn: two tokens of one serial, told apart by label; init-args.
printf '[token]\nmodule = %s\ninit-args = %s\npin-source = file:%s\n' \
  "$NSS_MODULE" "$NSS_INIT_ARGS" "$NSS_PIN_FILE" >"$W/nss.conf"
P11MAIL_CONFIG="$W/nss.conf" P11MAIL_STORE="$W/nss-store" \
  "$CI" register --uri "$NSS_RSA_URI" >/dev/null 2>&1 || diag "NSS register failed"
P11MAIL_CONFIG="$W/nss.conf" P11MAIL_STORE="$W/nss-store" \
  "$CI" anchor add "$CA_CERT" >/dev/null 2>&1
run "NSS softokn --login: the key is found and matches" 0 \
  "^ok   identity carol@east-clinic.test .*the certificate matches the key on NSS Certificate DB" \
  "$P" --config "$W/nss.conf" --store "$W/nss-store" doctor --login
no_line "NSS softokn: no FAIL" "^FAIL "

# --- configuration -------------------------------------------------------
run "a missing configuration file fails" 1 \
  "^FAIL config   configuration file $W/none.conf: .* -- next: " \
  "$P" --config "$W/none.conf" doctor
printf '[token]\nmodlue = x\n' >"$W/bad.conf"
run "an invalid configuration fails with its line" 1 \
  "^FAIL config   the configuration is invalid: .*bad.conf:2" \
  "$P" --config "$W/bad.conf" doctor

# --- the PIN file of [token] pin-source -----------------------------------
# Every sign and decrypt reads it: doctor fails what the token core refuses.
run "healthy: the PIN file is private" 0 \
  "^ok   token    PIN file $ALICE_PIN_FILE is private \(mode 0600\)" "$P" doctor
# pinconf FILE: the configuration with [token] pin-source = file:FILE.
pinconf() {
  sed "s|^pin-source = .*|pin-source = file:$1|" "$W/p11mail.conf" >"$W/pin.conf"
}
pinconf "$W/no-pin"
run "a missing PIN file fails with the step to create it" 1 \
  "^FAIL token    PIN file $W/no-pin: .* -- next: create $W/no-pin holding the token PIN on its first line, mode 0600" \
  "$P" --config "$W/pin.conf" doctor
run "a missing PIN file: --login fails on it once" 1 \
  "findings: .* 1 FAIL\$" "$P" --config "$W/pin.conf" doctor --login
cp "$ALICE_PIN_FILE" "$W/pin"
chmod 640 "$W/pin"
pinconf "$W/pin"
run "a PIN file group can read fails with chmod 600" 1 \
  "^FAIL token    PIN file $W/pin has mode 0640: group or others may read it, and p11mail refuses it -- next: chmod 600 $W/pin\$" \
  "$P" --config "$W/pin.conf" doctor
chmod 604 "$W/pin"
run "a PIN file others can read fails" 1 \
  "^FAIL token    PIN file $W/pin has mode 0604: .* -- next: chmod 600 $W/pin\$" \
  "$P" --config "$W/pin.conf" doctor
no_line "the PIN is not shown" "$ALICE_PIN"
: >"$W/pin"
chmod 600 "$W/pin"
run "an empty PIN file fails" 1 \
  "^FAIL token    PIN file $W/pin is empty: .* -- next: write the token PIN on the first line of $W/pin\$" \
  "$P" --config "$W/pin.conf" doctor
printf '\n%s\n' "$ALICE_PIN" >"$W/pin"
run "a PIN file whose first line is empty fails" 1 \
  "^FAIL token    PIN file $W/pin is empty" "$P" --config "$W/pin.conf" doctor
no_line "a PIN on the second line is not shown" "$ALICE_PIN"
mkdir -p "$W/pindir"
pinconf "$W/pindir"
run "a directory as the PIN file fails" 1 \
  "^FAIL token    PIN file $W/pindir is not a regular file -- next: point \[token\] pin-source at a regular file" \
  "$P" --config "$W/pin.conf" doctor
printf '%s\n' "$ALICE_PIN" >"$W/pin"
pinconf "$W/pin"
run "a private PIN file with the PIN: --login passes, exit 0" 0 \
  "^ok   token    PIN file $W/pin is private" "$P" --config "$W/pin.conf" doctor --login
no_line "a private PIN file: no FAIL" "^FAIL "

# --- modules and tokens ------------------------------------------------
conf "$W/no-such-module.so"
run "a missing module fails" 1 \
  "^FAIL module   the PKCS#11 module $W/no-such-module.so does not load.* -- next: install" \
  "$P" doctor
run "a missing module: the identity's key cannot be reached" 1 \
  "^FAIL identity alice@north-clinic.test .*cannot be reached" "$P" doctor

fixture_faulty
conf "$P11FAULTY_MODULE"
: >"$P11FAULTY_CONTROL"
run "through the proxy module all is well" 0 "0 warn, 0 FAIL" "$P" doctor

echo removed >"$P11FAULTY_CONTROL"
run "token absent: FAIL with the step" 1 \
  "^FAIL token    no token is present .* -- next: insert the card" "$P" doctor
run "token absent: the identity's key cannot be reached" 1 \
  "^FAIL identity alice@north-clinic.test .*no token" "$P" doctor

if [ -f /usr/share/p11-kit/modules/softhsm2.module ]; then
  printf '[token]\nmodule = softhsm2\n' >"$W/registry.conf"
  run "a module named in the p11-kit registry is started" 0 \
    "^ok   identity alice@north-clinic.test .*its key pair is on alice-token" \
    "$P" --config "$W/registry.conf" doctor
  printf '[token]\nmodule = no-such-module\n' >"$W/registry.conf"
  run "an unregistered module name fails" 1 \
    "^FAIL module   \\[token\\] module no-such-module is not registered" \
    "$P" --config "$W/registry.conf" doctor
else
  skip "a module named in the p11-kit registry is started" \
    "softhsm2 is not registered with p11-kit"
  skip "an unregistered module name fails" \
    "softhsm2 is not registered with p11-kit"
fi

echo pin-locked >"$P11FAULTY_CONTROL"
rm -f "$P11FAULTY_COUNTS"
run "locked PIN: FAIL with the unblock step" 1 \
  "^FAIL token    alice-token: the user PIN is locked.* -- next: unblock it with the SO PIN" \
  "$P" doctor --login
if grep -q '^C_Login ' "$P11FAULTY_COUNTS" 2>/dev/null; then
  fail "locked PIN: --login does not try to log in"
else pass "locked PIN: --login does not try to log in"; fi
echo pin-final-try >"$P11FAULTY_CONTROL"
run "final PIN try: FAIL" 1 \
  "^FAIL token    alice-token: one PIN try is left.* -- next: " "$P" doctor
echo pin-to-be-changed >"$P11FAULTY_CONTROL"
run "PIN to be changed: FAIL with the change step" 1 \
  "^FAIL token    alice-token: the user PIN must be changed.*--change-pin" \
  "$P" doctor
echo pin-count-low >"$P11FAULTY_CONTROL"
run "PIN count low: only a warning, exit 0" 0 \
  "^warn token    alice-token: a wrong PIN was entered.* -- next: " "$P" doctor
: >"$P11FAULTY_CONTROL"
conf "$SOFTHSM_MODULE"

# --- identity certificate expiry, by the store's clock -------------------
now=$(date +%s)
P11MAIL_STORE_NOW=$((now + 350 * 86400)) run \
  "a certificate expiring within 30 days warns, exit 0" 0 \
  "^warn identity alice@north-clinic.test .*expires on .* in 1[45] days -- next: request a renewed" \
  "$P" doctor
P11MAIL_STORE_NOW=$((now + 400 * 86400)) run \
  "an expired certificate fails" 1 \
  "^FAIL identity alice@north-clinic.test .*the certificate expired on .* -- next: install a renewed" \
  "$P" doctor
P11MAIL_STORE_NOW=$((now + 800 * 86400)) run \
  "an expired anchor fails" 1 "^FAIL anchor   anchor .*p11mail Test CA.*expired" \
  "$P" doctor

# --- the store ---------------------------------------------------------
chmod 644 "$W/store/store.db"
run "store readable by others fails" 1 \
  "^FAIL store .*store.db has mode 0644.* -- next: chmod 600 " "$P" doctor
chmod 600 "$W/store/store.db"
chmod 755 "$W/store"
run "store directory open to others fails" 1 \
  "^FAIL store .*store has mode 0755.* -- next: chmod 700 " "$P" doctor
chmod 700 "$W/store"
run "modes restored: exit 0" 0 "0 warn, 0 FAIL" "$P" doctor

mkdir -m 700 "$W/broken"
cp "$W/store/store.db" "$W/broken/store.db"
python3 - "$W/broken/store.db" <<'EOF'
import sys
f = open(sys.argv[1], "r+b")
size = f.seek(0, 2)
f.seek(4096)
f.write(b"\xa5" * min(4096, max(size - 4096, 0)))
f.close()
EOF
run "a corrupt store fails the integrity check" 1 \
  "^FAIL store .*broken/store.db is damaged.* -- next: restore the file" \
  "$P" --store "$W/broken" doctor
printf 'not a database at all, just text\n' >"$W/broken/store.db"
run "a file that is no database fails" 1 "^FAIL store .*broken/store.db" \
  "$P" --store "$W/broken" doctor
run "no store at all fails" 1 "^FAIL store    no store at .* -- next: install" \
  "$P" --store "$W/nothing" doctor
[ ! -e "$W/nothing" ] && pass "doctor does not create a store" ||
  fail "doctor does not create a store"
run "the store file given as the store path: next names its directory" 1 \
  "^FAIL store    the store path $W/store/store.db is not a directory -- next: name the directory that holds it: --store $W/store " \
  "$P" --store "$W/store/store.db" doctor
no_line "the store file given: no install step" "next: install an identity"
printf 'x\n' >"$W/afile"
run "a file as the store path: next says to give a directory" 1 \
  "^FAIL store    the store path $W/afile is not a directory -- next: give --store \\(or \\[store\\] path\\) a directory, or move $W/afile away" \
  "$P" --store "$W/afile" doctor
no_line "a file as the store path: no install step" "next: install an identity"
run "a path through a file: next says to correct it" 1 \
  "^FAIL store    the store path $W/afile/store is not a directory path: .* -- next: correct --store or \\[store\\] path" \
  "$P" --store "$W/afile/store" doctor
[ "$(cat "$W/afile")" = x ] && pass "doctor leaves a file in the store's way alone" ||
  fail "doctor leaves a file in the store's way alone"

# --- the mail account --------------------------------------------------
chmod 644 "$W/password"
run "a password file readable by others fails" 1 \
  "^FAIL account  password file $W/password has mode 0644.* -- next: chmod 600 $W/password" \
  "$P" doctor
no_line "the password is still not shown" "$PW_SECRET"
chmod 600 "$W/password"
: >"$W/password"
run "an empty password file fails" 1 \
  "^FAIL account  password file $W/password is empty: .* -- next: write the password on the first line of $W/password\$" \
  "$P" doctor
printf '%s' "$PW_SECRET" >"$W/password"
grep -v '^imap-host' "$W/p11mail.conf" >"$W/noimap.conf"
run "no IMAP or POP3 server warns" 0 "^warn account  no IMAP or POP3 server" \
  "$P" --config "$W/noimap.conf" doctor
grep -v '^smtp-host' "$W/p11mail.conf" >"$W/nosmtp.conf"
run "no SMTP server only warns (sending is optional), exit 0" 0 \
  "^warn account  no SMTP server: mail cannot be sent -- next: set \\[account\\] smtp-host" \
  "$P" --config "$W/nosmtp.conf" doctor

# --- anchors, cache and a renewed identity --------------------------------
fp() { openssl x509 -in "$1" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g'; }
"$CI" anchor remove "$(fp "$CA_CERT")" >/dev/null 2>&1
run "no anchor fails" 1 \
  "^FAIL anchor   no trust anchor.* -- next: add your CA: p11mail-certinstall anchor add" \
  "$P" doctor
"$CI" anchor add "$CA_CERT" >/dev/null 2>&1

# A renewed certificate for the same token key, valid 700 days.
openssl x509 -in "$ALICE_RSA_CERT" -noout -pubkey >"$W/alice.pub"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout "$W/t.key" -subj "/CN=Alice North" -out "$W/t.csr" 2>/dev/null
printf 'subjectAltName=email:alice@north-clinic.test\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=emailProtection\nbasicConstraints=critical,CA:FALSE\n' >"$W/ext"
openssl x509 -req -in "$W/t.csr" -force_pubkey "$W/alice.pub" -CA "$CA_CERT" \
  -CAkey "$CA_KEY" -CAcreateserial -days 700 -extfile "$W/ext" \
  -out "$W/renewed.pem" 2>/dev/null
"$CI" install "$W/renewed.pem" --token "pkcs11:serial=$ALICE_TOKEN_SERIAL" \
  >/dev/null 2>&1 || diag "install of the renewed certificate failed"
# Dave's certificate in the cache, from a signed message.
printf 'Results.\r\n' >"$W/body"
openssl cms -sign -signer "$DAVE_CERT" -inkey "$DAVE_KEY" \
  -from dave@north-clinic.test -to alice@north-clinic.test -subject r \
  -in "$W/body" -text -out "$W/dave.eml" 2>/dev/null
"$P" trust add --yes "$W/dave.eml" >/dev/null 2>&1 || diag "trust add failed"
run "renewed identity and cached certificate: all ok" 0 \
  "^ok   cache    1 cached certificate, none expired" "$P" doctor
no_line "renewed identity and cached certificate: no warn or FAIL" \
  "^(warn|FAIL) "
P11MAIL_STORE_NOW=$((now + 400 * 86400)) run \
  "an expired cached certificate warns with its address, exit 0" 0 \
  "^warn cache    1 cached certificate of 1 has expired: dave@north-clinic.test -- next: " \
  "$P" doctor
grep -Eq "^warn identity alice@north-clinic.test .*expired, replaced by a newer certificate -- next: remove it: p11mail-certinstall remove alice@north-clinic.test --fingerprint " \
  "$W/last.out" && pass "an expired identity replaced by a renewed one warns" ||
  fail "an expired identity replaced by a renewed one warns"
grep -Eq "^ok   identity alice@north-clinic.test .*valid until" "$W/last.out" &&
  pass "the renewed identity is ok" || fail "the renewed identity is ok"

# No anchor, but dave trusted on his own: a way of working, not a fault.
"$CI" anchor remove "$(fp "$CA_CERT")" >/dev/null 2>&1
run "no anchor but a trusted certificate only warns, exit 0" 0 \
  "^warn anchor   no trust anchor: only the 1 individually trusted certificate can be trusted -- next: " \
  "$P" doctor
no_line "no anchor but a trusted certificate: no FAIL" "^FAIL "
"$CI" anchor add "$CA_CERT" >/dev/null 2>&1

# --- an identity whose key is gone (last: it changes the token) ----------
pk() {
  pkcs11-tool --module "$SOFTHSM_MODULE" --token-label "$ALICE_TOKEN_LABEL" \
    --login --pin "$ALICE_PIN" "$@" >/dev/null 2>&1
}
pk --delete-object --type privkey --id 01
run "key gone: --login finds no private key" 1 \
  "^FAIL identity alice@north-clinic.test .*no private key at pkcs11:.* -- next: " \
  "$P" doctor --login
pk --delete-object --type pubkey --id 01
pk --delete-object --type cert --id 01
run "key gone: without login nothing of the key pair is found" 1 \
  "^FAIL identity alice@north-clinic.test .*no key at pkcs11:" "$P" doctor

done_testing
