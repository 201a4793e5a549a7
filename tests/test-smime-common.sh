# Shared setup of the S/MIME shell tests; source after tests/tap.sh.
# Builds the fixture (tokens, CA, identities) and defines helpers.

P11MAIL=${P11MAIL_BIN:-$top_builddir/src/p11mail}
[ -x "$P11MAIL" ] || skip_all "p11mail was not built ($P11MAIL)"
require_cmd openssl openssl

. "$top_srcdir/tests/fixture/fixture.sh"
fixture_setup

# Token keys go through the provider; the module comes from here.
P11MAIL_MODULE=$SOFTHSM_MODULE
export SOFTHSM2_CONF P11MAIL_MODULE
unset P11MAIL_INIT_ARGS P11MAIL_CONFIG P11MAIL_STORE

W=$P11MAIL_FIXTURE_DIR/smime
mkdir -p "$W"

ALICE_KEY="$ALICE_RSA_URI?pin-source=file:$ALICE_PIN_FILE"
ALICE_ECKEY="$ALICE_EC_URI?pin-source=file:$ALICE_PIN_FILE"
BOB_KEY="$BOB_RSA_URI?pin-source=file:$BOB_PIN_FILE"
BOB_ECKEY="$BOB_EC_URI?pin-source=file:$BOB_PIN_FILE"

# mkmsg FILE FROM TO [BODY]: a plain message with an 8-bit UTF-8 body.
mkmsg() {
  printf 'From: %s\nTo: %s\nSubject: Befund\nMIME-Version: 1.0\n' "$2" "$3" >"$1"
  printf 'Content-Type: text/plain; charset=utf-8\n' >>"$1"
  printf 'Content-Transfer-Encoding: 8bit\n\n' >>"$1"
  printf '%b\n' "${4:-Gr\303\274\303\237e aus der Klinik: \303\244\303\266\303\274 \342\202\254}" >>"$1"
  printf 'Zweite Zeile.\n' >>"$1"
}

# verify_rc FILE ARGS...: runs p11mail verify and prints its exit status.
verify_rc() {
  _f=$1; shift
  "$P11MAIL" verify "$@" "$_f" >"$W/verify.out" 2>"$W/verify.err"
  echo $?
}

# expect_rc NAME WANT GOT: passes when the exit statuses agree.
expect_rc() {
  if [ "$2" = "$3" ]; then pass "$1"
  else
    fail "$1 (exit $3, expected $2)"
    sed 's/^/#   /' "$W/verify.out" "$W/verify.err" 2>/dev/null | head -n 20
  fi
}

# grep_out NAME PATTERN FILE: passes when FILE contains PATTERN.
grep_out() {
  if grep -q -- "$2" "$3"; then pass "$1"
  else fail "$1"; sed 's/^/#   /' "$3" | head -n 20; fi
}

# p7s MESSAGE OUT: extracts the decoded signature of a multipart/signed
# message written by p11mail, and the signed first part into OUT.content.
split_signed() {
  _b=$(sed -n 's/.*boundary="\([^"]*\)".*/\1/p' "$1" | head -n 1 | tr -d '\r')
  awk -v b="--$_b" -v out="$2" '
    { line = $0; sub(/\r$/, "", line) }
    line == b || line == b "--" { part++; first = 1; next }
    part == 1 { if (!first) printf "\r\n" > (out ".content");
                printf "%s", line > (out ".content"); first = 0 }
    part == 2 { print line > (out ".sigpart") }
  ' "$1"
  sed '1,/^$/d' "$2.sigpart" | openssl base64 -d >"$2.p7s"
}
