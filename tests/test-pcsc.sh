#!/bin/sh
# Reader and card presence through pcsc-lite and OpenSC: a private pcscd with
# the vpcd driver, and tests/pcsc/vicc inserting and removing a virtual card
# (tests/pcsc/pcsc.sh; tests/pcsc/README tells how it is isolated).
set -u
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/pcsc/pcsc.sh"

require_cmd pkcs11-tool opensc
host_run_pcscd_before=$([ -e /run/pcscd ] && echo yes || echo no)

D=$(mktemp -d "${TMPDIR:-/tmp}/p11mail-pcsc.XXXXXX") || exit 1
cleanup() {
	rc=$?
	pcsc_stop
	rm -rf "$D"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

pcsc_setup "$D"

card_is() { pcsc_readers | grep -Eq "^0 +$1 .*$PCSC_READER\$"; }
# slot_state: the line pkcs11-tool -L prints under the test reader's slot.
slot_state() {
	pkcs11-tool --module "$OPENSC_MODULE" -L 2>&1 |
		awk -v r="$PCSC_READER" 'found { print; exit }
			/^Slot / && index($0, r) { found = 1 }' | sed 's/^ *//'
}
slot_is_empty() { [ "$(slot_state)" = "(empty)" ]; }
slot_has_card() { s=$(slot_state); [ -n "$s" ] && [ "$s" != "(empty)" ]; }

# ---- isolation ----------------------------------------------------------
[ "$(sed -n 's/^ *\([^:]*\):.*/\1/p' "/proc/$pcsc_pid/net/dev")" = lo ] &&
	pass "pcscd's network namespace has only loopback" ||
	fail "pcscd's network namespace has only loopback"
hexport=$(printf '%04X' "$PCSC_PORT")
grep -q ":$hexport 00000000:0000 0A" "/proc/$pcsc_pid/net/tcp" &&
	pass "vpcd listens on port $PCSC_PORT inside the namespace" ||
	fail "vpcd listens on port $PCSC_PORT inside the namespace"
if grep -q ":$hexport 00000000:0000 0A" /proc/net/tcp; then
	fail "no vpcd listener on the host's network"
else
	pass "no vpcd listener on the host's network"
fi
[ "$host_run_pcscd_before" = yes ] || [ ! -e /run/pcscd ] &&
	pass "the host's /run/pcscd is untouched" ||
	fail "the host's /run/pcscd is untouched"

# ---- the reader ----------------------------------------------------------
pcsc_readers | grep -q "$PCSC_READER" &&
	pass "PC/SC lists the virtual reader" ||
	fail "PC/SC lists the virtual reader"
check "no card in the reader at start" card_is No
check "OpenSC's PKCS#11 slot for the reader has no token" slot_is_empty

# ---- insert and remove, twice ----------------------------------------
cycle() {
	pcsc_insert
	t0=$(date +%s%N)
	if pcsc_wait card_is Yes; then
		t1=$(date +%s%N)
		pass "$1: PC/SC sees the card ($(((t1 - t0) / 1000000)) ms)"
	else
		fail "$1: PC/SC sees the card"
	fi
	got=$(opensc-tool -r 0 -a 2>&1)
	[ "$got" = "$PCSC_ATR" ] && pass "$1: the card answers with its ATR" ||
		fail "$1: the card answers with its ATR (got $got)"
	pcsc_wait slot_has_card &&
		pass "$1: CKF_TOKEN_PRESENT on the slot ($(slot_state))" ||
		fail "$1: CKF_TOKEN_PRESENT on the slot ($(slot_state))"

	pcsc_remove
	pcsc_wait card_is No && pass "$1: PC/SC sees the card removed" ||
		fail "$1: PC/SC sees the card removed"
	pcsc_wait slot_is_empty && pass "$1: the slot is empty again" ||
		fail "$1: the slot is empty again ($(slot_state))"
	check_fails "$1: no ATR without a card" opensc-tool -r 0 -a
}
cycle "first insertion"
cycle "second insertion"

# ---- stopping -------------------------------------------------------------
p=$pcsc_pid v=$vicc_pid
pcsc_stop
kill -0 "$p" 2>/dev/null && fail "pcscd stopped by PID" ||
	pass "pcscd stopped by PID"
kill -0 "$v" 2>/dev/null && fail "vicc stopped by PID" ||
	pass "vicc stopped by PID"
[ ! -e "$PCSCLITE_CSOCK_NAME" ] && pass "pcscd removed its socket" ||
	fail "pcscd removed its socket"

done_testing
