#!/bin/sh
# Stops the servers that mail-start.sh started in DIR, by their PIDs, and
# waits until they are gone.  Safe to call twice or after a failed start.
dir=${1:?usage: mail-stop.sh DIR}

stop_pid() {
	[ -f "$1" ] || return 0
	pid=$(tr -dc 0-9 <"$1")
	[ -n "$pid" ] || return 0
	kill "$pid" 2>/dev/null || return 0
	i=0
	while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	kill -9 "$pid" 2>/dev/null || true
	rm -f "$1"
}

# Postfix's master writes its PID into its private queue directory.
[ -f "$dir/postfix/spool/pid/master.pid" ] &&
	cp "$dir/postfix/spool/pid/master.pid" "$dir/postfix.pid"
stop_pid "$dir/postfix.pid"
stop_pid "$dir/dovecot.pid"
exit 0
