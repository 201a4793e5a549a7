#!/bin/sh
# make bench in its quickest mode (BENCH_QUICK=1): the run completes and
# bench-results.json is well-formed and complete.  No timing is judged
# here: the figures depend on the machine.
set -u
. "$top_srcdir/tests/tap.sh"

require_cmd jq jq
require_cmd openssl openssl
[ -x /usr/bin/time ] || skip_all "/usr/bin/time not found (apt-get install time)"
[ -f /usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so ] ||
	skip_all "libp11's ENGINE not found (apt-get install libengine-pkcs11-openssl)"
: "${P11MAIL_TEST_PROVIDER_DIR:=$top_builddir/engine/.libs}"
export P11MAIL_TEST_PROVIDER_DIR

work=$(mktemp -d "${TMPDIR:-/tmp}/p11mail-test-bench.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
json=$work/bench-results.json
BENCH=$top_srcdir/bench/bench.sh

# Usage errors first: they must not need a token.
sh "$BENCH" >"$work/usage.out" 2>&1
rc=$?
if [ "$rc" = 2 ] && grep -q 'usage: bench.sh OUT.json' "$work/usage.out"; then
	pass "no output file: usage message and exit 2"
else
	fail "no output file: usage message and exit 2 (exit $rc)"
fi
top_builddir=$work/nowhere sh "$BENCH" "$work/x.json" >"$work/nb.out" 2>&1
rc=$?
if [ "$rc" = 1 ] && grep -q 'is not built' "$work/nb.out" &&
	[ ! -e "$work/x.json" ]; then
	pass "nothing built: one clear message, exit 1, no JSON"
else
	fail "nothing built: one clear message, exit 1, no JSON (exit $rc)"
	sed 's/^/#   /' "$work/nb.out" | head -n 5
fi

BENCH_QUICK=1 sh "$BENCH" "$json" >"$work/table" 2>"$work/log"
rc=$?
if [ "$rc" = 77 ]; then
	echo "1..0 # SKIP $(tail -n 1 "$work/log")"
	exit 0
fi
if [ "$rc" = 0 ]; then
	pass "BENCH_QUICK=1 bench.sh completes"
else
	fail "BENCH_QUICK=1 bench.sh completes (exit $rc)"
	sed 's/^/#   /' "$work/log" | tail -n 20
fi

if [ -s "$json" ] && jq -e . "$json" >/dev/null 2>"$work/jq.err"; then
	pass "bench-results.json is well-formed JSON"
else
	fail "bench-results.json is well-formed JSON"
	sed 's/^/#   /' "$work/jq.err" | head -n 5
	done_testing
	exit 1
fi
if ls "$work" | grep -q '\.tmp\.'; then
	fail "no temporary JSON file is left behind"
else
	pass "no temporary JSON file is left behind"
fi

# jq_check NAME FILTER: passes when the filter is true of the JSON.
jq_check() {
	if jq -e "$2" "$json" >/dev/null 2>&1; then pass "$1"
	else fail "$1"; fi
}

jq_check "run metadata: schema 1, quick mode, elapsed time, settings" \
	'.schema == 1 and .mode == "quick" and (.elapsed_s | type) ==
	 "number" and (.settings | test("rounds=")) and
	 (.started | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T"))'

for name in raw_sign_rsa2048 raw_sign_p256 raw_decrypt_rsa2048 \
	lib_sign_rsa2048 lib_sign_p256 lib_decrypt_rsa2048 \
	provider_evp_sign_rsa2048 provider_evp_sign_p256 \
	provider_cms_sign_rsa2048 proc_pkeyutl_sign_rsa2048 \
	proc_cms_sign_rsa2048 cli_sign_rsa2048 store_lookup_ms \
	store_lookups_per_s store_inserts_per_s store_inserts_per_s_batched; do
	jq_check "row $name: present once, with a positive value" \
		"[.rows[] | select(.name == \"$name\")] | length == 1 and
		 (.[0].value | type) == \"number\" and .[0].value > 0"
done

for op in sign encrypt decrypt verify; do
	jq_check "large $op: time and memory at two sizes, both tools" \
		"[.rows[] | select(.name | test(\"^big_${op}_[0-9]+mib_\"))] |
		 length == 4 and all(.[]; (.value | type) == \"number\" and
		 (.peer_value | type) == \"number\")"
	jq_check "large $op: memory growth for both tools" \
		"[.rows[] | select(.name == \"big_${op}_memory_growth\")] |
		 length == 1 and (.[0].value | type) == \"number\" and
		 (.[0].peer_value | type) == \"number\""
done

jq_check "every row compared with a peer has the peer's value" \
	'all(.rows[] | select(.peer != null and .group != "large");
	     (.peer_value | type) == "number" and (.ratio | type) == "number")'
jq_check "the five targets are judged (met true or false)" \
	'[.rows[] | select(.target != null)] | length == 5 and
	 all(.[]; (.met | type) == "boolean")'
jq_check "rows have unique names and the same fields" \
	'(.rows | map(.name) | unique | length) == (.rows | length) and
	 all(.rows[]; keys == ["group", "met", "name", "peer", "peer_value",
	     "ratio", "target", "unit", "value", "what"])'

# The table shows the same rows and states each target.
n_rows=$(jq '.rows | length' "$json")
n_table=$(grep -c -E '^(raw|lib|provider|proc|cli|big|store)_' "$work/table")
if [ "$n_rows" = "$n_table" ]; then
	pass "the table has every row of the JSON ($n_rows)"
else
	fail "the table has every row of the JSON ($n_table of $n_rows)"
fi
if [ "$(grep -c -E '(MET|NOT MET|NOT MEASURED)$' "$work/table")" = 5 ]; then
	pass "the table states whether each target was met"
else
	fail "the table states whether each target was met"
fi
jq -r '"# quick run: \(.elapsed_s) s"' "$json"

done_testing
