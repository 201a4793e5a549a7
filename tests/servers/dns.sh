# A private bind9 (named) for tests: authoritative for the zones it is
# given, listening on 127.0.0.1 only, on a free port, stopped by PID.
# Source this file, then:
#   dns_start DIR ZONE FILE [ZONE FILE...]  sets DNS_PORT and DNS_PID
#   dns_stop                                stops it (safe to call twice)
# The zone files must exist before dns_start.  named runs in the
# foreground (-g) as the current user with one worker thread; its log is
# DIR/named.log.

DNS_PID=
DNS_PORT=

# Picks a TCP port nobody listens on (UDP is checked by named itself).
dns_free_port() {
  while :; do
    _p=$((20000 + $(od -An -N2 -tu2 /dev/urandom) % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$_p") 2>/dev/null; then
      echo "$_p"
      return
    fi
  done
}

# dns_write_conf DIR PORT ZONE FILE...: the private named.conf.
dns_write_conf() {
  _dir=$1 _port=$2; shift 2
  {
    echo "options {"
    echo "  directory \"$_dir\";"
    echo "  pid-file \"$_dir/named.pid\";"
    echo "  session-keyfile \"$_dir/session.key\";"
    echo "  managed-keys-directory \"$_dir\";"
    echo "  listen-on port $_port { 127.0.0.1; };"
    echo "  listen-on-v6 { none; };"
    echo "  recursion no;"
    echo "  dnssec-validation no;"
    echo "  notify no;"
    echo "  allow-query { 127.0.0.1; };"
    echo "};"
    echo "controls { };"
    while [ $# -ge 2 ]; do
      echo "zone \"$1\" { type primary; file \"$2\"; };"
      shift 2
    done
  } > "$_dir/named.conf"
}

dns_start() {
  _dir=$1; shift
  command -v named >/dev/null 2>&1 || return 77
  for _try in 1 2 3; do
    DNS_PORT=$(dns_free_port)
    dns_write_conf "$_dir" "$DNS_PORT" "$@"
    named -g -4 -n 1 -c "$_dir/named.conf" -p "$DNS_PORT" \
      > "$_dir/named.log" 2>&1 &
    DNS_PID=$!
    # Ready once named says "running"; a zone with errors fails at once.
    _i=0
    while [ $_i -lt 100 ]; do
      if ! kill -0 "$DNS_PID" 2>/dev/null; then break; fi
      if grep -q 'not loaded due to errors' "$_dir/named.log" 2>/dev/null; then
        _i=100
        break
      fi
      if grep -q '^.*running$' "$_dir/named.log" 2>/dev/null; then
        return 0
      fi
      sleep 0.05
      _i=$((_i + 1))
    done
    dns_stop
    [ $_i -ge 100 ] && break
  done
  echo "# named did not start; its log:" >&2
  sed 's/^/#   /' "$_dir/named.log" >&2
  return 1
}

dns_stop() {
  if [ -n "$DNS_PID" ]; then
    kill "$DNS_PID" 2>/dev/null
    wait "$DNS_PID" 2>/dev/null
    DNS_PID=
  fi
}
