# TAP helpers for the shell integration tests; source this file.
#   plan N | ok COND-CMD... "name" | skip_all "reason" | diag "text"
# Every test script runs under "set -u" and cleans up through trap EXIT.

tap_n=0
tap_failed=0

tap_planned=0
plan() { tap_planned=1; echo "1..$1"; }

diag() { printf '# %s\n' "$*"; }

skip_all() {
  echo "1..0 # SKIP $*"
  exit 0
}

# pass/fail NAME: record a result decided by the caller.
pass() { tap_n=$((tap_n + 1)); echo "ok $tap_n - $*"; }
fail() { tap_n=$((tap_n + 1)); tap_failed=1; echo "not ok $tap_n - $*"; }

# check NAME CMD...: passes when CMD exits 0; its output goes to diagnostics
# on failure.
check() {
  _name=$1; shift
  if _out=$("$@" 2>&1); then pass "$_name"
  else fail "$_name"; printf '%s\n' "$_out" | sed 's/^/#   /' | head -n 40
  fi
}

# check_fails NAME CMD...: passes when CMD exits non-zero.
check_fails() {
  _name=$1; shift
  if _out=$("$@" 2>&1); then
    fail "$_name (unexpected success)"
    printf '%s\n' "$_out" | sed 's/^/#   /' | head -n 40
  else pass "$_name"; fi
}

skip() { tap_n=$((tap_n + 1)); echo "ok $tap_n - $1 # SKIP $2"; }

# require_cmd CMD PACKAGE: skips the whole script when a tool is missing.
require_cmd() {
  command -v "$1" >/dev/null 2>&1 ||
    skip_all "$1 not found (apt-get install $2)"
}

# done_testing: prints the plan when none was given; exits with the verdict.
done_testing() {
  [ "$tap_planned" = 1 ] || echo "1..$tap_n"
  [ "$tap_failed" = 0 ] && exit 0
  exit 1
}
