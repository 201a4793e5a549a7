# A private pcscd with a virtual reader and card, for shell tests; source it
# after tests/tap.sh (tests/pcsc/README explains the isolation).
#   pcsc_setup DIR     start pcscd + vicc in DIR (skips the test with the
#                      reason when something is missing); exports
#                      PCSCLITE_CSOCK_NAME, OPENSC_CONF, PCSC_READER,
#                      PCSC_ATR, OPENSC_MODULE and sets pcsc_pid, vicc_pid
#   pcsc_insert        put the card in (returns at once; poll for it)
#   pcsc_remove        take it out
#   pcsc_stop          stop vicc and pcscd by PID and wait for them; call it
#                      from the test's EXIT trap
# The caller owns DIR (a mktemp directory) and removes it after pcsc_stop.

PCSC_VPCD_DRIVER=/usr/lib/pcsc/drivers/serial/libifdvpcd.so
OPENSC_MODULE=/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so
PCSC_PORT=35999
PCSC_ATR=3b:87:80:01:70:31:31:6d:61:69:6c:69
PCSC_READER="p11mail test reader 00 00"
pcsc_dir=
pcsc_ns_pid=
pcsc_pid=
vicc_pid=

# pcsc_kill PID: TERM, up to 3 s, then KILL.
pcsc_kill() {
	[ -n "$1" ] || return 0
	kill "$1" 2>/dev/null || return 0
	_pc_i=0
	while kill -0 "$1" 2>/dev/null && [ $_pc_i -lt 30 ]; do
		sleep 0.1
		_pc_i=$((_pc_i + 1))
	done
	kill -9 "$1" 2>/dev/null || :
}

pcsc_stop() {
	if [ -n "$pcsc_dir" ]; then
		[ -n "$vicc_pid" ] || vicc_pid=$(cat "$pcsc_dir/vicc.pid" \
			2>/dev/null)
		[ -n "$pcsc_pid" ] || pcsc_pid=$(cat "$pcsc_dir/pcscd.pid" \
			2>/dev/null)
	fi
	pcsc_kill "$vicc_pid"
	pcsc_kill "$pcsc_pid"
	pcsc_kill "$pcsc_ns_pid"
	[ -z "$pcsc_ns_pid" ] || wait "$pcsc_ns_pid" 2>/dev/null
	pcsc_ns_pid=
}

pcsc_insert() { echo inserted > "$pcsc_dir/state"; }
pcsc_remove() { echo removed > "$pcsc_dir/state"; }

# pcsc_ns_cmd: the unshare command that works here, or nothing.
pcsc_ns_cmd() {
	if unshare -m -n true 2>/dev/null; then
		echo "unshare -m -n"
	elif unshare -r -m -n true 2>/dev/null; then
		echo "unshare -r -m -n"
	fi
}

# pcsc_wait CMD...: retries CMD for up to 5 s.
pcsc_wait() {
	_pc_i=0
	until "$@" >/dev/null 2>&1; do
		_pc_i=$((_pc_i + 1))
		[ $_pc_i -ge 50 ] && return 1
		sleep 0.1
	done
}

pcsc_readers() { opensc-tool -l 2>&1; }

pcsc_write_config() {
	mkdir -p "$1/run" "$1/reader.conf.d"
	cat > "$1/reader.conf.d/vpcd" <<EOF
FRIENDLYNAME "p11mail test reader"
DEVICENAME   /dev/null:$PCSC_PORT
LIBPATH      $PCSC_VPCD_DRIVER
CHANNELID    $PCSC_PORT
EOF
	# Only OpenSC's "default" driver: an unknown card is probed in
	# milliseconds.
	cat > "$1/opensc.conf" <<EOF
app default {
	card_drivers = default;
}
EOF
	echo removed > "$1/state"
}

pcsc_setup() {
	_pc_vicc=${top_builddir:-.}/tests/pcsc/vicc
	require_cmd pcscd pcscd
	require_cmd opensc-tool opensc
	require_cmd unshare util-linux
	require_cmd ip iproute2
	[ -f "$PCSC_VPCD_DRIVER" ] ||
		skip_all "vpcd driver missing (apt-get install vsmartcard-vpcd)"
	[ -f "$OPENSC_MODULE" ] ||
		skip_all "OpenSC module missing (apt-get install opensc-pkcs11)"
	[ -x "$_pc_vicc" ] || skip_all "tests/pcsc/vicc not built"
	_pc_ns=$(pcsc_ns_cmd)
	if [ -z "$_pc_ns" ]; then
		_pc_why=$(unshare -r -m -n true 2>&1 | head -n 1)
		skip_all "cannot create mount and network namespaces" \
			"($_pc_why); pcscd 1.9.9 has a fixed socket path" \
			"and vpcd listens on all interfaces, so pcsc tests" \
			"only run isolated"
	fi

	pcsc_dir=$1
	pcsc_write_config "$pcsc_dir"
	# The shell inside the namespaces stays as the parent of vicc and
	# pcscd, so that both are reaped when they stop.
	$_pc_ns sh -c '
		mount --bind "$1" /run && ip link set lo up || exit 97
		"$2" "$3" "$4" &
		echo $! > "$5"
		pcscd -f -c "$6" &
		echo $! > "$7"
		wait
	' sh "$pcsc_dir/run" "$_pc_vicc" "$PCSC_PORT" "$pcsc_dir/state" \
		"$pcsc_dir/vicc.pid" "$pcsc_dir/reader.conf.d" \
		"$pcsc_dir/pcscd.pid" > "$pcsc_dir/pcscd.log" 2>&1 &
	pcsc_ns_pid=$!

	PCSCLITE_CSOCK_NAME=$pcsc_dir/run/pcscd/pcscd.comm
	OPENSC_CONF=$pcsc_dir/opensc.conf
	export PCSCLITE_CSOCK_NAME OPENSC_CONF PCSC_READER PCSC_ATR \
		OPENSC_MODULE

	if ! pcsc_wait test -S "$PCSCLITE_CSOCK_NAME" ||
		! pcsc_wait pcsc_readers; then
		_pc_why=$(tail -n 3 "$pcsc_dir/pcscd.log" | tr '\n' ' ')
		_pc_alive=$(cat "$pcsc_dir/pcscd.pid" 2>/dev/null)
		if [ -n "$_pc_alive" ] && kill -0 "$_pc_alive" 2>/dev/null; then
			pcsc_stop
			echo "Bail out! pcscd runs but never answered: $_pc_why"
			exit 1
		fi
		pcsc_stop
		skip_all "pcscd cannot run here: ${_pc_why:-no answer}"
	fi
	vicc_pid=$(cat "$pcsc_dir/vicc.pid")
	pcsc_pid=$(cat "$pcsc_dir/pcscd.pid")
}
