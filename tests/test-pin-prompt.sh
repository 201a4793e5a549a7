#!/bin/sh
# p11mail with a [token] section that has no pin-source asks for the PIN:
# on the controlling terminal with echo off (a pseudo-terminal made by
# script(1) stands in for the user's), else through the configured pinentry
# program (a stand-in speaking the Assuan protocol).  With neither it fails
# with a clear message and never calls C_Login.
set -u
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/fixture/fixture.sh"
require_cmd script bsdutils
require_cmd setsid util-linux
require_cmd timeout coreutils
P11MAIL=${P11MAIL_BIN:-$top_builddir/src/p11mail}
[ -x "$P11MAIL" ] || skip_all "p11mail was not built ($P11MAIL)"
fixture_setup

export SOFTHSM2_CONF
unset P11MAIL_MODULE P11MAIL_INIT_ARGS P11MAIL_CONFIG P11MAIL_STORE
W=$P11MAIL_FIXTURE_DIR/pin-prompt
mkdir -p "$W"
TRACE=$W/trace.log
printf 'From: alice@north-clinic.test\nTo: bob@south-lab.test\n' >"$W/msg"
printf 'Subject: results\n\nThe results are in.\n' >>"$W/msg"

# conf FILE [PINENTRY]: a configuration naming the module and no PIN source.
conf() {
  printf '[token]\nmodule = %s\n' "$SOFTHSM_MODULE" >"$1"
  [ $# -lt 2 ] || printf 'pinentry = %s\n' "$2" >>"$1"
}
conf "$W/tty.conf"

# pinentry FILE ANSWER: a stand-in pinentry; ANSWER "pin" gives Alice's PIN
# from her PIN file, "cancel" refuses.  It notes what it was asked in
# FILE.asked.
pinentry() {
  {
    echo '#!/bin/sh'
    echo "echo 'OK pleased to meet you'"
    echo 'while read -r cmd rest; do'
    echo "  echo \"\$cmd \$rest\" >>'$1.asked'"
    echo '  case $cmd in'
    if [ "$2" = pin ]; then
      echo "  GETPIN) printf 'D %s\\n' \"\$(cat '$ALICE_PIN_FILE')\"; echo OK ;;"
    else
      echo "  GETPIN) echo 'ERR 83886179 Operation cancelled' ;;"
    fi
    echo '  BYE) echo OK; exit 0 ;;'
    echo '  *) echo OK ;;'
    echo '  esac'
    echo 'done'
  } >"$1"
  chmod 700 "$1"
}
pinentry "$W/pinentry-ok" pin
pinentry "$W/pinentry-cancel" cancel
conf "$W/entry.conf" "$W/pinentry-ok"
conf "$W/cancel.conf" "$W/pinentry-cancel"

# logins: how many times the last run called C_Login.
logins() { grep -c 'C_Login ' "$TRACE"; }

# typed CONF TEXT ARGS...: runs p11mail --config CONF ARGS on a pseudo-terminal
# where TEXT is typed once the prompt had time to appear.
typed() {
  _conf=$1 _text=$2; shift 2
  rm -f "$TRACE" "$W/out.eml"
  _cmd="P11MAIL_DEBUG='$TRACE' '$P11MAIL' --config '$_conf'"
  for _a in "$@"; do _cmd="$_cmd '$_a'"; done
  (sleep 1; printf '%s\n' "$_text") |
    timeout 60 script -qec "$_cmd; echo \"exit=\$?\"" /dev/null 2>&1
}

# detached CONF ARGS...: runs p11mail --config CONF ARGS without a controlling
# terminal and with nothing on stdin; prints its output and "exit=N".
detached() {
  _conf=$1; shift
  rm -f "$TRACE" "$W/out.eml"
  P11MAIL_DEBUG=$TRACE setsid "$P11MAIL" --config "$_conf" "$@" </dev/null 2>&1
  echo "exit=$?"
}

# show TEXT: the output of a failed check as diagnostics.
show() { printf '%s\n' "$1" | tr -d '\r' | sed 's/^/#   /' | head -n 20; }

# --- the terminal -----------------------------------------------------------
out=$(typed "$W/tty.conf" "$ALICE_PIN" sign --key "$ALICE_RSA_URI" \
  -o "$W/out.eml" "$W/msg")
case $out in
*"PIN for the token alice-token (serial $ALICE_TOKEN_SERIAL): "*)
  pass "sign asks for the PIN on the terminal, naming the token" ;;
*) fail "sign asks for the PIN on the terminal, naming the token"
   show "$out" ;;
esac
case $out in
*exit=0*)
  if grep -q 'application/pkcs7-signature' "$W/out.eml" 2>/dev/null; then
    pass "the PIN typed on the terminal signs"
  else fail "the PIN typed on the terminal signs"; show "$out"; fi ;;
*) fail "the PIN typed on the terminal signs"; show "$out" ;;
esac
case $out in
*"$ALICE_PIN"*) fail "the typed PIN is not echoed" ;;
*) pass "the typed PIN is not echoed" ;;
esac
if grep -q -- "$ALICE_PIN" "$TRACE"; then
  fail "the PIN stays out of the debug trace"
else pass "the PIN stays out of the debug trace"; fi
n=$(logins)
if [ "$n" = 1 ]; then pass "one C_Login for one signature"
else fail "one C_Login for one signature ($n)"; fi
if grep -q 'provider: token core made (module /' "$TRACE" &&
   ! grep -q 'p11-kit' "$TRACE"; then
  pass "the trace names the configured module, not p11-kit"
else fail "the trace names the configured module, not p11-kit"
  grep 'provider:' "$TRACE" | sed 's/^/#   /'
fi

out=$(typed "$W/tty.conf" "000000" sign --key "$ALICE_RSA_URI" \
  -o "$W/out.eml" "$W/msg")
case $out in
*"rejected the PIN"*exit=1*) pass "a wrong PIN typed fails with a message" ;;
*) fail "a wrong PIN typed fails with a message"; show "$out" ;;
esac
n=$(logins)
if [ "$n" = 1 ]; then pass "a wrong PIN is sent once, never retried"
else fail "a wrong PIN is sent once, never retried ($n C_Login)"; fi
case $out in
*"PIN for the token"*"PIN for the token"*)
  fail "nobody is asked a second time"; show "$out" ;;
*) pass "nobody is asked a second time" ;;
esac
if [ -e "$W/out.eml" ]; then fail "a failed signature writes no output"
else pass "a failed signature writes no output"; fi

out=$(typed "$W/tty.conf" "" sign --key "$ALICE_RSA_URI" \
  -o "$W/out.eml" "$W/msg")
case $out in
*"no PIN was given"*exit=1*) pass "an empty answer cancels" ;;
*) fail "an empty answer cancels"; show "$out" ;;
esac
n=$(logins)
if [ "$n" = 0 ]; then pass "a cancelled prompt calls no C_Login"
else fail "a cancelled prompt calls no C_Login ($n)"; fi

# decrypt asks the same way: a message to Alice, encrypted without a token.
if openssl cms -encrypt -aes256 -in "$W/msg" -out "$W/enc.eml" \
  "$ALICE_RSA_CERT" 2>/dev/null; then
  out=$(typed "$W/tty.conf" "$ALICE_PIN" decrypt --key "$ALICE_RSA_URI" \
    -o "$W/out.eml" "$W/enc.eml")
  case $out in
  *"PIN for the token alice-token"*exit=0*)
    if grep -q 'The results are in' "$W/out.eml" 2>/dev/null; then
      pass "decrypt asks for the PIN on the terminal"
    else fail "decrypt asks for the PIN on the terminal"; show "$out"; fi ;;
  *) fail "decrypt asks for the PIN on the terminal"; show "$out" ;;
  esac
else
  skip "decrypt asks for the PIN on the terminal" "openssl cms -encrypt failed"
fi

# With both, the terminal comes first and the pinentry is not started.
rm -f "$W/pinentry-ok.asked"
out=$(typed "$W/entry.conf" "$ALICE_PIN" sign --key "$ALICE_RSA_URI" \
  -o "$W/out.eml" "$W/msg")
case $out in
*"PIN for the token alice-token"*exit=0*)
  if [ -e "$W/pinentry-ok.asked" ]; then
    fail "the terminal is asked before the pinentry"
  else pass "the terminal is asked before the pinentry"; fi ;;
*) fail "the terminal is asked before the pinentry"; show "$out" ;;
esac

# --- the pinentry program ---------------------------------------------------
rm -f "$W/pinentry-ok.asked"
out=$(detached "$W/entry.conf" sign --key "$ALICE_RSA_URI" \
  -o "$W/out.eml" "$W/msg")
case $out in
*exit=0*)
  if grep -q 'application/pkcs7-signature' "$W/out.eml" 2>/dev/null; then
    pass "without a terminal the pinentry gives the PIN"
  else fail "without a terminal the pinentry gives the PIN"; show "$out"; fi ;;
*) fail "without a terminal the pinentry gives the PIN"; show "$out" ;;
esac
if grep -q "^SETDESC PIN for the token alice-token (serial $ALICE_TOKEN_SERIAL)" \
  "$W/pinentry-ok.asked" 2>/dev/null &&
  grep -q '^GETPIN' "$W/pinentry-ok.asked"; then
  pass "the pinentry is told which token"
else fail "the pinentry is told which token"
  sed 's/^/#   /' "$W/pinentry-ok.asked" 2>/dev/null
fi
n=$(logins)
if [ "$n" = 1 ]; then pass "the pinentry's PIN logs in once"
else fail "the pinentry's PIN logs in once ($n C_Login)"; fi

out=$(detached "$W/cancel.conf" sign --key "$ALICE_RSA_URI" \
  -o "$W/out.eml" "$W/msg")
case $out in
*"no PIN was given"*exit=1*) pass "a cancelled pinentry fails with a message" ;;
*) fail "a cancelled pinentry fails with a message"; show "$out" ;;
esac
n=$(logins)
if [ "$n" = 0 ]; then pass "a cancelled pinentry calls no C_Login"
else fail "a cancelled pinentry calls no C_Login ($n)"; fi

conf "$W/gone.conf" "$W/no-such-pinentry"
out=$(detached "$W/gone.conf" sign --key "$ALICE_RSA_URI" \
  -o "$W/out.eml" "$W/msg")
case $out in
*"pinentry program $W/no-such-pinentry"*exit=1*)
  pass "a missing pinentry program is named" ;;
*) fail "a missing pinentry program is named"; show "$out" ;;
esac

# --- nobody to ask ----------------------------------------------------------
out=$(detached "$W/tty.conf" sign --key "$ALICE_RSA_URI" \
  -o "$W/out.eml" "$W/msg")
case $out in
*"no PIN was given for the token alice-token"*exit=1*)
  pass "no terminal, no pinentry: exit 1 and a clear message" ;;
*) fail "no terminal, no pinentry: exit 1 and a clear message"; show "$out" ;;
esac
n=$(logins)
if [ "$n" = 0 ]; then pass "no PIN: no C_Login"
else fail "no PIN: no C_Login ($n)"; fi
if [ -e "$W/out.eml" ]; then fail "no PIN: no output written"
else pass "no PIN: no output written"; fi
done_testing
