#!/bin/sh
# Reader and card presence through pcsc-lite and OpenSC: a private pcscd with
# the vpcd driver, and tests/pcsc/vicc inserting and removing a virtual card.
#
# pcscd 1.9.9 always uses /run/pcscd/pcscd.comm and vpcd listens on every
# interface, so both run inside their own mount and network namespaces: a
# private directory is bind-mounted on /run (the socket shows up in it for
# the clients here, through PCSCLITE_CSOCK_NAME) and the only network is
# that namespace's loopback.
set -u
. "$top_srcdir/tests/tap.sh"

VPCD_DRIVER=/usr/lib/pcsc/drivers/serial/libifdvpcd.so
OPENSC_MODULE=/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so
VICC=$top_builddir/tests/pcsc/vicc
PORT=35999
ATR=3b:87:80:01:70:31:31:6d:61:69:6c:69
READER="p11mail test reader 00 00"

require_cmd pcscd pcscd
require_cmd opensc-tool opensc
require_cmd pkcs11-tool opensc
require_cmd unshare util-linux
require_cmd ip iproute2
[ -f "$VPCD_DRIVER" ] ||
	skip_all "vpcd driver missing (apt-get install vsmartcard-vpcd)"
[ -f "$OPENSC_MODULE" ] ||
	skip_all "OpenSC PKCS#11 module missing (apt-get install opensc-pkcs11)"
[ -x "$VICC" ] || skip_all "tests/pcsc/vicc not built"

# Namespaces: as root directly, otherwise inside a user namespace.
if unshare -m -n true 2>/dev/null; then
	NS="unshare -m -n"
elif unshare -r -m -n true 2>/dev/null; then
	NS="unshare -r -m -n"
else
	why=$(unshare -r -m -n true 2>&1 | head -n 1)
	skip_all "cannot create mount and network namespaces ($why);" \
		"pcscd 1.9.9 has a fixed socket path and vpcd listens on" \
		"all interfaces, so this test only runs isolated"
fi

D=$(mktemp -d "${TMPDIR:-/tmp}/p11mail-pcsc.XXXXXX") || exit 1
ns_pid=
pcscd_pid=
vicc_pid=
host_run_pcscd_before=$([ -e /run/pcscd ] && echo yes || echo no)

# stop PID: TERM, up to 3 s, then KILL.
stop() {
	[ -n "$1" ] || return 0
	kill "$1" 2>/dev/null || return 0
	i=0
	while kill -0 "$1" 2>/dev/null && [ $i -lt 30 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	kill -9 "$1" 2>/dev/null || :
}
cleanup() {
	rc=$?
	[ -z "$vicc_pid" ] && [ -s "$D/vicc.pid" ] &&
		vicc_pid=$(cat "$D/vicc.pid")
pcscd_pid=$(cat "$D/pcscd.pid")
	[ -z "$pcscd_pid" ] && [ -s "$D/pcscd.pid" ] &&
		pcscd_pid=$(cat "$D/pcscd.pid")
	stop "$vicc_pid"
	stop "$pcscd_pid"
	stop "$ns_pid"
	rm -rf "$D"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

mkdir -p "$D/run" "$D/reader.conf.d"
cat > "$D/reader.conf.d/vpcd" <<EOF
FRIENDLYNAME "p11mail test reader"
DEVICENAME   /dev/null:$PORT
LIBPATH      $VPCD_DRIVER
CHANNELID    $PORT
EOF
# Only OpenSC's "default" driver: an unknown card is probed in milliseconds.
cat > "$D/opensc.conf" <<EOF
app default {
	card_drivers = default;
}
EOF
echo removed > "$D/state"

# The shell inside the namespaces stays as the parent of vicc and pcscd, so
# that both are reaped when they stop.
$NS sh -c '
	mount --bind "$1" /run && ip link set lo up || exit 97
	"$2" "$3" "$4" &
	echo $! > "$5"
	pcscd -f -c "$6" &
	echo $! > "$7"
	wait
' sh "$D/run" "$VICC" "$PORT" "$D/state" "$D/vicc.pid" \
	"$D/reader.conf.d" "$D/pcscd.pid" > "$D/pcscd.log" 2>&1 &
ns_pid=$!

PCSCLITE_CSOCK_NAME=$D/run/pcscd/pcscd.comm
OPENSC_CONF=$D/opensc.conf
export PCSCLITE_CSOCK_NAME OPENSC_CONF

# wait_for CMD...: retries CMD for up to 5 s.
wait_for() {
	i=0
	until "$@" >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -ge 50 ] && return 1
		sleep 0.1
	done
}
readers() { opensc-tool -l 2>&1; }
# card_is Yes|No: the PC/SC card column of the test reader.
card_is() { readers | grep -Eq "^0 +$1 .*$READER\$"; }
# slot_state: the line pkcs11-tool -L prints under the test reader's slot.
slot_state() {
	pkcs11-tool --module "$OPENSC_MODULE" -L 2>&1 |
		awk -v r="$READER" 'found { print; exit }
			/^Slot / && index($0, r) { found = 1 }' | sed 's/^ *//'
}
slot_is_empty() { [ "$(slot_state)" = "(empty)" ]; }
slot_has_card() { s=$(slot_state); [ -n "$s" ] && [ "$s" != "(empty)" ]; }

if ! wait_for test -S "$PCSCLITE_CSOCK_NAME" || ! wait_for readers; then
	if ! kill -0 "$ns_pid" 2>/dev/null ||
		! kill -0 "$(cat "$D/pcscd.pid" 2>/dev/null)" 2>/dev/null; then
		why=$(tail -n 3 "$D/pcscd.log" | tr '\n' ' ')
		skip_all "pcscd cannot run here: $why"
	fi
	echo "Bail out! pcscd started but never answered"
	sed 's/^/# /' "$D/pcscd.log" | tail -n 20
	exit 1
fi
vicc_pid=$(cat "$D/vicc.pid")
pcscd_pid=$(cat "$D/pcscd.pid")

# ---- isolation ----------------------------------------------------------
[ "$(sed -n 's/^ *\([^:]*\):.*/\1/p' "/proc/$pcscd_pid/net/dev")" = lo ] &&
	pass "pcscd's network namespace has only loopback" ||
	fail "pcscd's network namespace has only loopback"
hexport=$(printf '%04X' "$PORT")
grep -q ":$hexport 00000000:0000 0A" "/proc/$pcscd_pid/net/tcp" &&
	pass "vpcd listens on port $PORT inside the namespace" ||
	fail "vpcd listens on port $PORT inside the namespace"
if grep -q ":$hexport 00000000:0000 0A" /proc/net/tcp; then
	fail "no vpcd listener on the host's network"
else
	pass "no vpcd listener on the host's network"
fi
[ "$host_run_pcscd_before" = yes ] || [ ! -e /run/pcscd ] &&
	pass "the host's /run/pcscd is untouched" ||
	fail "the host's /run/pcscd is untouched"

# ---- the reader ----------------------------------------------------------
readers | grep -q "$READER" && pass "PC/SC lists the virtual reader" ||
	fail "PC/SC lists the virtual reader"
check "no card in the reader at start" card_is No
check "OpenSC's PKCS#11 slot for the reader has no token" slot_is_empty

# ---- insert and remove, twice ----------------------------------------
cycle() {
	echo inserted > "$D/state"
	t0=$(date +%s%N)
	if wait_for card_is Yes; then
		t1=$(date +%s%N)
		pass "$1: PC/SC sees the card ($(((t1 - t0) / 1000000)) ms)"
	else
		fail "$1: PC/SC sees the card"
	fi
	got=$(opensc-tool -r 0 -a 2>&1)
	[ "$got" = "$ATR" ] && pass "$1: the card answers with its ATR" ||
		fail "$1: the card answers with its ATR (got $got)"
	wait_for slot_has_card &&
		pass "$1: CKF_TOKEN_PRESENT on the slot ($(slot_state))" ||
		fail "$1: CKF_TOKEN_PRESENT on the slot ($(slot_state))"

	echo removed > "$D/state"
	wait_for card_is No && pass "$1: PC/SC sees the card removed" ||
		fail "$1: PC/SC sees the card removed"
	wait_for slot_is_empty && pass "$1: the slot is empty again" ||
		fail "$1: the slot is empty again ($(slot_state))"
	check_fails "$1: no ATR without a card" opensc-tool -r 0 -a
}
cycle "first insertion"
cycle "second insertion"

# ---- stopping -------------------------------------------------------------
stop "$vicc_pid"
stop "$pcscd_pid"
wait "$ns_pid" 2>/dev/null
kill -0 "$pcscd_pid" 2>/dev/null && fail "pcscd stopped by PID" ||
	pass "pcscd stopped by PID"
kill -0 "$vicc_pid" 2>/dev/null && fail "vicc stopped by PID" ||
	pass "vicc stopped by PID"
[ ! -e "$PCSCLITE_CSOCK_NAME" ] && pass "pcscd removed its socket" ||
	fail "pcscd removed its socket"
ns_pid=
pcscd_pid=
vicc_pid=

done_testing
