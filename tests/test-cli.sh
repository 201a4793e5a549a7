#!/bin/sh
# p11mail's command line: usage errors in one form (exit 2), options after
# the arguments and "--", --json before or after the command name, inbox
# and fetch failures, and the exit statuses that p11mail(1) lists.
set -u
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/fixture/fixture.sh"
require_cmd openssl openssl
require_cmd jq jq
fixture_setup

P="$top_builddir/src/p11mail"
W="$P11MAIL_FIXTURE_DIR/cli"
mkdir -p "$W"
cd "$W" || exit 1
printf '[token]\nmodule = %s\npin-source = file:%s\n[account]\naddress = alice@north-clinic.test\nmaildir = %s/Maildir\n' \
  "$SOFTHSM_MODULE" "$ALICE_PIN_FILE" "$W" >"$W/p11mail.conf"
export P11MAIL_CONFIG="$W/p11mail.conf" P11MAIL_STORE="$W/store"
unset P11MAIL_MODULE P11MAIL_INIT_ARGS P11MAIL_STORE_NOW

printf 'Lab results.\r\n' >"$W/body"
openssl cms -sign -signer "$DAVE_CERT" -inkey "$DAVE_KEY" \
  -from dave@north-clinic.test -to alice@north-clinic.test -subject results \
  -in "$W/body" -text -out "$W/dave.eml" 2>/dev/null
sed 's/Lab results/Lab resultz/' "$W/dave.eml" >"$W/altered.eml"
cp "$W/dave.eml" "$W/-dash.eml"
printf 'From: alice@north-clinic.test\r\nTo: bob@south-lab.test\r\nSubject: hi\r\n\r\nhello\r\n' \
  >"$W/msg.eml"

# usage NAME LINE TRY CMD...: CMD exits 2, prints nothing on stdout and
# exactly two lines on stderr: LINE, then "Try 'TRY --help'.".
usage() {
  _name=$1 _line=$2 _try=$3; shift 3
  "$@" >"$W/u.out" 2>"$W/u.err" </dev/null; _rc=$?
  printf '%s\nTry '"'"'%s --help'"'"'.\n' "$_line" "$_try" >"$W/u.want"
  if [ "$_rc" = 2 ] && [ ! -s "$W/u.out" ] && cmp -s "$W/u.want" "$W/u.err"
  then pass "$_name"
  else
    fail "$_name (status $_rc, want 2)"
    sed 's/^/#   stdout: /' "$W/u.out" | head -5
    sed 's/^/#   stderr: /' "$W/u.err" | head -5
  fi
}

# --- usage errors ---------------------------------------------------------
usage "an unknown long option" "p11mail sign: unknown option '--bogus'" \
  "p11mail sign" "$P" sign --bogus
usage "an unknown long option with a value: the value is not shown" \
  "p11mail sign: unknown option '--bogus'" "p11mail sign" \
  "$P" sign --bogus=secret-value
usage "a long option without its value" \
  "p11mail sign: option '--out' needs a value" "p11mail sign" \
  "$P" sign --out
usage "a short option without its value" \
  "p11mail sign: option '-o' needs a value" "p11mail sign" "$P" sign -o
usage "a value given to a flag" \
  "p11mail verify: option '--json' takes no value" "p11mail verify" \
  "$P" verify --json=yes
usage "an empty --out" "p11mail sign: --out needs a file name" \
  "p11mail sign" "$P" sign -o "" "$W/msg.eml"
usage "an ambiguous abbreviation" "p11mail sign: option '--s' is ambiguous" \
  "p11mail sign" "$P" sign --s
usage "an option of another command is named by its long name" \
  "p11mail verify: option '--key' does not apply to verify" \
  "p11mail verify" "$P" verify -k x
usage "an unknown short option" "p11mail sendmail: unknown option '-Q'" \
  "p11mail sendmail" "$P" sendmail -Q bob@south-lab.test
usage "a short option that is not ASCII is not echoed" \
  "p11mail sign: unknown option" "p11mail sign" "$P" sign "-$(printf '\303')"
usage "certs --days without its value" \
  "p11mail certs: option '--days' needs a value" "p11mail certs" \
  "$P" certs check --days
usage "an unknown command" "p11mail: unknown command 'sgin'" "p11mail" \
  "$P" sgin
usage "an unknown shared option" "p11mail: unknown option '--bogus'" \
  "p11mail" "$P" --bogus verify
usage "a shared option without its value" \
  "p11mail: option '--config' needs a value" "p11mail" "$P" --config
usage "no command" "p11mail: no command given" "p11mail" "$P"
for c in version discover sign verify encrypt decrypt send sendmail fetch \
  inbox read certs doctor; do
  usage "$c: an unknown option after the arguments" \
    "p11mail $c: unknown option '--no-such-option'" "p11mail $c" \
    "$P" "$c" arg --no-such-option
done
# trust parses its options with getopt's own messages, which stay on.
"$P" trust --bogus >/dev/null 2>"$W/t.err" </dev/null; rc=$?
if [ "$rc" = 2 ] && grep -q -- "--bogus" "$W/t.err"; then
  pass "trust: an unknown option is still named"
else fail "trust: an unknown option is still named (status $rc)"
  sed 's/^/#   /' "$W/t.err" | head -5; fi
usage "doctor: an argument" "p11mail doctor: unexpected argument 'extra'" \
  "p11mail doctor" "$P" doctor extra
usage "inbox: an argument" "p11mail inbox: unexpected argument 'x'" \
  "p11mail inbox" "$P" inbox x
usage "version: an argument" "p11mail version: unexpected argument 'x'" \
  "p11mail version" "$P" version x

# --- options after the arguments, and "--" ------------------------------
for c in version discover sign verify encrypt decrypt send sendmail fetch \
  inbox read trust certs doctor; do
  out=$("$P" "$c" somearg --help 2>&1 </dev/null); rc=$?
  case $out in
  "Usage: p11mail $c"*) [ "$rc" = 0 ] && pass "$c ARG --help: the help" ||
    fail "$c ARG --help: status $rc" ;;
  *) fail "$c ARG --help: no help (status $rc)"
     printf '%s\n' "$out" | sed 's/^/#   /' | head -5 ;;
  esac
done
for c in discover sign verify encrypt decrypt send sendmail fetch inbox \
  read certs doctor; do
  "$P" "$c" -- --no-such-option >/dev/null 2>"$W/dd.err" </dev/null
  if grep -q "unknown option" "$W/dd.err"; then
    fail "$c -- --X: after --, --X is an argument"
    sed 's/^/#   /' "$W/dd.err" | head -3
  else pass "$c -- --X: after --, --X is an argument"; fi
done

# run NAME WANT CMD...: CMD exits WANT; its output is in $W/r.out, r.err.
run() {
  _name=$1 _want=$2; shift 2
  "$@" >"$W/r.out" 2>"$W/r.err" </dev/null; _rc=$?
  if [ "$_rc" = "$_want" ]; then pass "$_name"
  else
    fail "$_name (status $_rc, want $_want)"
    sed 's/^/#   /' "$W/r.out" "$W/r.err" | head -10
  fi
}
run "verify MESSAGE --anchor CA: the anchor is used" 0 \
  "$P" verify "$W/dave.eml" --anchor "$CA_CERT"
grep -q "valid, trusted" "$W/r.out" && pass "verify: trusted through the anchor" ||
  fail "verify: trusted through the anchor"
run "verify --anchor CA -- -dash.eml: a file name with a dash" 0 \
  "$P" verify --anchor "$CA_CERT" -- -dash.eml
run "sign MESSAGE --key URI --out FILE" 0 \
  "$P" sign "$W/msg.eml" --key "$ALICE_RSA_URI?pin-source=file:$ALICE_PIN_FILE" \
  --out "$W/signed.eml"
run "and the result verifies, options last" 0 \
  "$P" verify "$W/signed.eml" --anchor "$CA_CERT" --json
jq -e '.' "$W/r.out" >/dev/null 2>&1 && pass "verify ... --json: JSON" ||
  fail "verify ... --json: JSON"

# --- --json before or after the command ------------------------------------
# same NAME CMD...: "p11mail --json CMD..." and "p11mail CMD... --json" give
# the same status and output, and the output is one JSON document.
same() {
  _name=$1; shift
  "$P" --json "$@" >"$W/j1.out" 2>/dev/null </dev/null; _rc1=$?
  "$P" "$@" --json >"$W/j2.out" 2>/dev/null </dev/null; _rc2=$?
  sed -i 's/"queued":"[^"]*"/"queued":"Q"/' "$W/j1.out" "$W/j2.out"
  if [ "$_rc1" = "$_rc2" ] && [ -s "$W/j1.out" ] &&
    cmp -s "$W/j1.out" "$W/j2.out" &&
    [ "$(jq -s length "$W/j1.out" 2>/dev/null)" = 1 ]; then
    pass "$_name: --json after the command as before it"
  else
    fail "$_name: --json after the command as before it ($_rc1, $_rc2)"
    sed 's/^/#   before: /' "$W/j1.out" | head -5
    sed 's/^/#   after:  /' "$W/j2.out" | head -5
  fi
}
same "version" version
same "certs check" certs check
same "send" send "$W/msg.eml"
same "fetch (no server)" fetch
same "discover (DNS unreachable)" discover bob@south-lab.test \
  --dns-server 127.0.0.1:1 --timeout 1
same "doctor" doctor
mkdir -p "$W/Maildir/new" "$W/Maildir/cur" "$W/Maildir/tmp"
same "inbox (empty)" inbox
same "verify" verify "$W/dave.eml" --anchor "$CA_CERT"

# --- inbox -----------------------------------------------------------------
run "inbox: an empty Maildir lists nothing, exit 0" 0 "$P" inbox --json
[ "$(jq length "$W/r.out" 2>/dev/null)" = 0 ] &&
  pass "inbox --json: an empty Maildir is []" ||
  fail "inbox --json: an empty Maildir is []"
cp "$W/dave.eml" "$W/Maildir/new/1000.A.host"
cp "$W/msg.eml" "$W/Maildir/cur/1001.B.host:2,S"
printf '\001garbage\n' >"$W/Maildir/new/1002.C.host"
run "inbox --json: listed, exit 0 (one skipped)" 0 "$P" inbox --json
if [ "$(jq -s length "$W/r.out" 2>/dev/null)" = 1 ] &&
  [ "$(jq -c '[.[].subject]' "$W/r.out")" = '["results","hi"]' ]; then
  pass "inbox --json: one JSON array of the two good messages"
else fail "inbox --json: one JSON array"; sed 's/^/#   /' "$W/r.out" | head; fi
grep -q "skipped message 3" "$W/r.err" && pass "inbox: the bad one is named" ||
  fail "inbox: the bad one is named"
[ "$(jq -r '.[0].sig' "$W/r.out" 2>/dev/null)" = N ] &&
  pass "inbox --json: the signed message is N" ||
  fail "inbox --json: the signed message is N"
run "read N --json, the option last" 3 "$P" read 1 --json
[ "$(jq -r .verdict "$W/r.out" 2>/dev/null)" = not-trusted ] &&
  pass "read 1 --json: the verdict" || fail "read 1 --json: the verdict"

run "read of a path outside the Maildir: no such message" 1 \
  "$P" read ../../etc/passwd
grep -q "no message ../../etc/passwd in" "$W/r.err" &&
  pass "read: a path is named as no message of the Maildir" ||
  { fail "read: a path is named as no message of the Maildir"
    sed 's/^/#   /' "$W/r.err"; }

run "inbox: a missing Maildir is an error" 1 \
  "$P" inbox --maildir "$W/no-such-maildir"
grep -q "no Maildir at $W/no-such-maildir" "$W/r.err" &&
  pass "inbox: the missing Maildir is named" ||
  fail "inbox: the missing Maildir is named"
[ ! -s "$W/r.out" ] && pass "inbox: nothing listed for a missing Maildir" ||
  fail "inbox: nothing listed for a missing Maildir"
run "inbox --json: a missing Maildir is an error too" 1 \
  "$P" inbox --json --maildir "$W/no-such-maildir"
[ ! -e "$W/no-such-maildir" ] && pass "inbox does not make the Maildir" ||
  fail "inbox does not make the Maildir"
# Without an [account] section, and quiet: --maildir alone decides.
: >"$W/empty.conf"
run "inbox --maildir, no [account]: a missing Maildir is an error" 1 \
  "$P" --config "$W/empty.conf" -q inbox --maildir="$W/no-such-maildir"
grep -q "no Maildir at $W/no-such-maildir" "$W/r.err" &&
  ! grep -q "no messages" "$W/r.err" && [ ! -s "$W/r.out" ] &&
  pass "inbox --maildir, no [account]: the missing Maildir is named" ||
  fail "inbox --maildir, no [account]: the missing Maildir is named"
usage "inbox: an empty --maildir" \
  "p11mail inbox: --maildir wants a directory, not an empty name" \
  "p11mail inbox" "$P" inbox --maildir ""
run "inbox: a file as the Maildir is an error" 1 \
  "$P" inbox --maildir "$W/msg.eml"
grep -q "not a directory" "$W/r.err" && pass "inbox: a file: said so" ||
  fail "inbox: a file: said so"
mkdir -p "$W/not-maildir"
run "inbox: a directory without cur/ or new/ is an error" 1 \
  "$P" inbox --maildir "$W/not-maildir"
grep -q "is not a Maildir" "$W/r.err" && pass "inbox: not a Maildir: said so" ||
  fail "inbox: not a Maildir: said so"

# --- fetch --json failures -------------------------------------------------
run "fetch --json without a server fails" 1 "$P" fetch --json
if jq -e '.error | test("no IMAP or POP3 server")' "$W/r.out" >/dev/null 2>&1 &&
  grep -q "no IMAP or POP3 server" "$W/r.err"; then
  pass "fetch --json: the error as JSON on stdout and on stderr"
else fail "fetch --json: the error as JSON"; sed 's/^/#   /' "$W/r.out" "$W/r.err"; fi
printf '[account]\naddress = alice@north-clinic.test\nimap-host = 127.0.0.1\nimap-port = 1\nimap-tls = none\nmaildir = %s/M2\n' \
  "$W" >"$W/closed.conf"
run "fetch --json from a closed port fails" 1 \
  "$P" --config "$W/closed.conf" fetch --json
if [ "$(jq -s length "$W/r.out" 2>/dev/null)" = 1 ] &&
  jq -e '(.error | length > 0) and .fetched == 0' "$W/r.out" >/dev/null 2>&1
then pass "fetch --json: one object with the error and the counts"
else fail "fetch --json: one object with the error"; sed 's/^/#   /' "$W/r.out"; fi

# --- inbox --json failures -------------------------------------------------
# json_error NAME PATTERN CMD...: CMD exits 1 with one JSON object on stdout
# whose "error" matches PATTERN, and the same message on stderr.
json_error() {
  _name=$1 _pat=$2; shift 2
  "$@" >"$W/e.out" 2>"$W/e.err" </dev/null; _rc=$?
  _msg=$(jq -r .error "$W/e.out" 2>/dev/null)
  if [ "$_rc" = 1 ] && [ "$(jq -s length "$W/e.out" 2>/dev/null)" = 1 ] &&
    [ "$(jq -r 'keys | join(",")' "$W/e.out")" = error ] &&
    printf '%s\n' "$_msg" | grep -q -- "$_pat" &&
    grep -qxF "p11mail: $_msg" "$W/e.err"; then
    pass "$_name"
  else
    fail "$_name (status $_rc, want 1)"
    sed 's/^/#   stdout: /' "$W/e.out" | head -5
    sed 's/^/#   stderr: /' "$W/e.err" | head -5
  fi
}
json_error "inbox --json: a missing Maildir is {\"error\"} on stdout" \
  "no Maildir at $W/no-such-maildir" \
  "$P" inbox --json --maildir "$W/no-such-maildir"
json_error "--json inbox: a file as the Maildir is {\"error\"}" \
  "not a directory" "$P" --json inbox --maildir "$W/msg.eml"
json_error "inbox --json: a directory without cur/ or new/ is {\"error\"}" \
  "is not a Maildir" "$P" inbox --json --maildir "$W/not-maildir"
printf 'maildir = %s/Maildir\n' "$W" >"$W/broken.conf"
json_error "inbox --json: a broken configuration is {\"error\"}" \
  "cannot list the mailbox: the configuration" \
  "$P" --config "$W/broken.conf" inbox --json
json_error "inbox --json: a missing configuration is {\"error\"}" \
  "cannot list the mailbox" \
  "$P" --config "$W/no-such.conf" inbox --json

# --- exit statuses, as p11mail(1) lists them --------------------------------
man_codes=$(sed -n '/^\.SH EXIT STATUS/,/^\.SH/p' "$top_srcdir/man/p11mail.1" |
  sed -n 's/^\.B \([0-9][0-9]*\)$/\1/p' | tr '\n' ' ')
[ "$man_codes" = "0 1 2 3 4 " ] && pass "p11mail(1) lists the statuses 0 to 4" ||
  fail "p11mail(1) lists the statuses 0 to 4: $man_codes"
run "0: success" 0 "$P" verify "$W/dave.eml" --anchor "$CA_CERT"
run "1: failure" 1 "$P" verify "$W/no-such-file.eml" --anchor "$CA_CERT"
run "2: usage error" 2 "$P" verify --no-such-option
run "3: verify, valid but the signer not trusted" 3 "$P" verify "$W/dave.eml"
run "4: verify, altered after signing" 4 \
  "$P" verify "$W/altered.eml" --anchor "$CA_CERT"
run "3 and 4 of certs check: 0 when nothing expires" 0 "$P" certs check
for n in 3 4; do
  sed -n '/^\.SH EXIT STATUS/,/^\.SH/p' "$top_srcdir/man/p11mail.1" |
    sed -n "/^\\.B $n\$/,/^\\.TP/p" | grep -q "certs check" &&
    pass "p11mail(1): status $n of certs check" ||
    fail "p11mail(1): status $n of certs check"
done

done_testing
