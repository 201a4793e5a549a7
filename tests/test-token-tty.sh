#!/bin/sh
# The PIN prompt on the controlling terminal: a pseudo-terminal made by
# script(1) stands in for the user's; the typed PIN is not echoed.
set -u
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/fixture/fixture.sh"
require_cmd script bsdutils
fixture_setup
prog=$top_builddir/tests/token-print

# typed TEXT: runs token-print on a terminal where TEXT is typed.
typed() {
	(sleep 1; printf '%s\n' "$1") |
		timeout 30 script -qec "'$prog' '$ALICE_RSA_URI' \
'$SOFTHSM_MODULE' '' prompt" /dev/null 2>&1
}

out=$(typed "$ALICE_PIN")
case $out in
*"PIN for the token alice-token (serial $ALICE_TOKEN_SERIAL)"*) pass "the prompt names the token" ;;
*) fail "the prompt names the token"; printf '# %s\n' "$out" ;;
esac
case $out in
*"pkcs11:"*"serial=$ALICE_TOKEN_SERIAL"*) pass "the PIN typed on the terminal logs in" ;;
*) fail "the PIN typed on the terminal logs in"; printf '# %s\n' "$out" ;;
esac
case $out in
*"$ALICE_PIN"*) fail "the PIN is not echoed" ;;
*) pass "the PIN is not echoed" ;;
esac

out=$(typed "000000")
case $out in
*"rejected the PIN"*) pass "a wrong PIN is refused with a message" ;;
*) fail "a wrong PIN is refused with a message"; printf '# %s\n' "$out" ;;
esac

out=$(typed "")
case $out in
*"no PIN was entered: cancelled"*) pass "an empty answer cancels" ;;
*) fail "an empty answer cancels"; printf '# %s\n' "$out" ;;
esac
case $out in
*"pin-source"*|*"configure a PIN prompt"*)
	fail "a prompt that was shown is not called missing"
	printf '# %s\n' "$out" ;;
*) pass "a prompt that was shown is not called missing" ;;
esac

# End of input at the prompt cancels as an empty answer does.
out=$( (sleep 1; printf '\004') |
	timeout 30 script -qec "'$prog' '$ALICE_RSA_URI' \
'$SOFTHSM_MODULE' '' prompt" /dev/null 2>&1)
case $out in
*"no PIN was entered: cancelled"*) pass "end of input at the prompt cancels" ;;
*) fail "end of input at the prompt cancels"; printf '# %s\n' "$out" ;;
esac

# Without a terminal the prompt is not an option: a clear message.
out=$(setsid "$prog" "$ALICE_RSA_URI" "$SOFTHSM_MODULE" '' prompt \
	</dev/null 2>&1)
case $out in
*"no PIN was given"*) pass "no terminal: no PIN, a clear message" ;;
*) fail "no terminal: no PIN, a clear message"; printf '# %s\n' "$out" ;;
esac
# An over-long PIN is refused with a message, never cut and sent.
out=$(typed "$(printf '%0300d' 1)")
case $out in
*"too long"*) pass "an over-long PIN is refused" ;;
*) fail "an over-long PIN is refused"; printf '# %s\n' "$out" ;;
esac

# A token label with control characters cannot rewrite the prompt.
esc=$(printf '\033')
if softhsm2-util --init-token --free --label "ev${esc}[2Jil" \
	--pin 123456 --so-pin 12345678 >/dev/null 2>&1; then
	out=$( (sleep 1; printf '123456\n') |
		timeout 30 script -qec "'$prog' 'pkcs11:token=ev%1B%5B2Jil' \
'$SOFTHSM_MODULE' '' prompt" /dev/null 2>&1)
	case $out in
	*"PIN for the token ev${esc}"*)
		fail "control characters in a label are not shown" ;;
	*"PIN for the token ev?[2Jil (serial"*)
		pass "control characters in a label are not shown" ;;
	*) fail "control characters in a label are not shown"
	   printf '# %s\n' "$out" | tr -d '\033' ;;
	esac
else
	skip "control characters in a label are not shown" \
		"softhsm2-util cannot make a token with that label"
fi
done_testing
