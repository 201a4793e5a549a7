# A private slapd for tests: one mdb database loaded offline with slapadd,
# anonymous read access, listening on 127.0.0.1 only, stopped by PID.
# Source this file, then:
#   ldap_start DIR SUFFIX LDIF   sets LDAP_PORT and LDAP_PID
#   ldap_stop                    stops it (safe to call twice)
# Several servers: call ldap_start with different DIRs and save LDAP_PORT
# and LDAP_PID in between; ldap_stop_pid PID stops one of them.

LDAP_PID=
LDAP_PORT=

ldap_free_port() {
  while :; do
    _p=$((20000 + $(od -An -N2 -tu2 /dev/urandom) % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$_p") 2>/dev/null; then
      echo "$_p"
      return
    fi
  done
}

# ldap_write_conf DIR SUFFIX: slapd.conf with the schemas userCertificate
# and mail need.
ldap_write_conf() {
  mkdir -p "$1/db"
  cat > "$1/slapd.conf" <<CONF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
pidfile $1/slapd.pid
argsfile $1/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
database mdb
maxsize 10485760
suffix "$2"
rootdn "cn=admin,$2"
directory $1/db
access to * by * read
CONF
}

ldap_start() {
  _dir=$1 _suffix=$2 _ldif=$3
  command -v slapd >/dev/null 2>&1 || return 77
  mkdir -p "$_dir"
  ldap_write_conf "$_dir" "$_suffix"
  if ! slapadd -q -f "$_dir/slapd.conf" -l "$_ldif" \
      > "$_dir/slapadd.log" 2>&1; then
    echo "# slapadd failed:" >&2
    sed 's/^/#   /' "$_dir/slapadd.log" >&2
    return 1
  fi
  for _try in 1 2 3; do
    LDAP_PORT=$(ldap_free_port)
    # -d 0 keeps slapd in the foreground, where $! is its PID.
    slapd -d 0 -h "ldap://127.0.0.1:$LDAP_PORT/" -f "$_dir/slapd.conf" \
      > "$_dir/slapd.log" 2>&1 &
    LDAP_PID=$!
    _i=0
    while [ $_i -lt 100 ]; do
      if ! kill -0 "$LDAP_PID" 2>/dev/null; then break; fi
      if ldapsearch -x -H "ldap://127.0.0.1:$LDAP_PORT/" -s base -b "" \
          namingContexts >/dev/null 2>&1; then
        return 0
      fi
      sleep 0.1
      _i=$((_i + 1))
    done
    ldap_stop
  done
  echo "# slapd did not start; its log:" >&2
  sed 's/^/#   /' "$_dir/slapd.log" >&2
  return 1
}

ldap_stop_pid() {
  kill "$1" 2>/dev/null
  wait "$1" 2>/dev/null
}

ldap_stop() {
  if [ -n "$LDAP_PID" ]; then
    ldap_stop_pid "$LDAP_PID"
    LDAP_PID=
  fi
}
