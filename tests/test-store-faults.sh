#!/bin/sh
# Faults of the workstation store across processes: concurrent writers lose
# nothing, a writer killed mid-transaction leaves the store consistent, and
# a store held by another process fails after a bounded wait.
set -u
. "$top_srcdir/tests/tap.sh"

writer="$top_builddir/tests/test-store-writer"
[ -x "$writer" ] || skip_all "test-store-writer was not built"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/p11mail-faults.XXXXXX")
pids=""
cleanup() {
  for p in $pids; do kill -9 "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT

plan 7

# 8 writers x 500 certificates, each in its own transaction, all starting
# on a store that does not exist yet.
store="$tmp/concurrent"
wpids=""
for w in 1 2 3 4 5 6 7 8; do
  P11MAIL_STORE_WAIT=60 "$writer" write "$store" "w$w" 500 \
    >"$tmp/w$w.out" 2>&1 &
  wpids="$wpids $!"
done
pids="$wpids"
failed=0
for p in $wpids; do wait "$p" || failed=1; done
pids=""
if [ "$failed" = 0 ]; then pass "8 concurrent writers all finished"
else fail "8 concurrent writers all finished"; cat "$tmp"/w*.out | sed 's/^/#   /' | head -20
fi
out=$("$writer" check "$store")
if [ "$out" = "rows 4000 complete 4000 integrity ok" ]; then
  pass "no certificate lost by concurrent writers (4000)"
else fail "no certificate lost by concurrent writers: $out"; fi

# A writer killed in the middle of one big transaction: all or nothing.
store="$tmp/killed"
"$writer" write "$store" before 10 >/dev/null
"$writer" write "$store" big 100000 one-transaction >"$tmp/big.out" 2>&1 &
big=$!
pids="$big"
n=0
while ! grep -q begun "$tmp/big.out" 2>/dev/null && [ $n -lt 100 ]; do
  sleep 0.1; n=$((n + 1))
done
sleep 1
kill -9 "$big" 2>/dev/null
wait "$big" 2>/dev/null
pids=""
out=$("$writer" check "$store")
if [ "$out" = "rows 10 complete 10 integrity ok" ]; then
  pass "SIGKILL inside a transaction leaves the store as it was"
else fail "SIGKILL inside a transaction: $out"; fi

# A writer killed while committing many small transactions.
"$writer" write "$store" small 3000 >/dev/null 2>&1 &
small=$!
pids="$small"
sleep 1
kill -9 "$small" 2>/dev/null
wait "$small" 2>/dev/null
pids=""
out=$("$writer" check "$store")
case $out in
  "rows "*" integrity ok")
    set -- $out
    if [ "$2" = "$4" ] && [ "$2" -ge 10 ]; then
      pass "SIGKILL between transactions keeps every committed row ($2)"
    else fail "SIGKILL between transactions: $out"; fi ;;
  *) fail "SIGKILL between transactions: $out" ;;
esac
check "the store still takes changes after the kills" \
  "$writer" write "$store" after 5

# Another process holds the write lock: bounded wait, clear failure.
store="$tmp/locked"
"$writer" write "$store" first 1 >/dev/null
if command -v python3 >/dev/null 2>&1; then
  python3 - "$store/store.db" "$tmp/held" <<'PY' &
import sqlite3, sys, time, os
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
open(sys.argv[2], "w").close()
time.sleep(8)
db.execute("ROLLBACK")
PY
  holder=$!
  pids="$holder"
  n=0
  while [ ! -e "$tmp/held" ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
  start=$(date +%s)
  if P11MAIL_STORE_WAIT=1 "$writer" write "$store" second 1 \
       >"$tmp/locked.out" 2>&1; then
    fail "a locked store makes the writer fail"
  else
    end=$(date +%s)
    if grep -q "locked by another process" "$tmp/locked.out" &&
       [ $((end - start)) -le 5 ]; then
      pass "a locked store fails after the bounded wait with a clear message"
    else fail "locked store: $(cat "$tmp/locked.out")"; fi
  fi
  kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null; pids=""
  check "the store works again once the other process is gone" \
    "$writer" write "$store" third 1
else
  skip "a locked store fails after the bounded wait" "python3 missing"
  skip "the store works again" "python3 missing"
fi

done_testing
