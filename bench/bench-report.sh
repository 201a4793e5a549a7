#!/bin/sh
# Turns the benchmark's rows into the table (stdout) and the JSON file.
#
#   bench-report.sh ROWS.tsv OUT.json
#
# ROWS.tsv holds one row per line, tab-separated: name, group, unit,
# value, peer, peer value, ratio, target, met, description; "-" where a
# field does not apply or could not be measured (null in the JSON).  The
# BENCH_* variables describe the run.  The JSON is written to a temporary
# file and renamed, so OUT.json is either complete or absent.
set -u

rows=$1
out=$2
tmp=$out.tmp.$$

trap 'rm -f "$tmp"' EXIT

awk -F '\t' -v json="$tmp" \
	-v started="${BENCH_STARTED:-}" -v elapsed="${BENCH_ELAPSED:-0}" \
	-v mode="${BENCH_MODE:-full}" -v settings="${BENCH_SETTINGS:-}" \
	-v openssl="${BENCH_OPENSSL:-}" -v cpus="${BENCH_CPUS:-1}" '
function str(s) {
	gsub(/\\/, "\\\\", s)
	gsub(/"/, "\\\"", s)
	return "\"" s "\""
}
function num(s) { return s == "-" || s == "" ? "null" : s + 0 }
function txt(s) { return s == "-" || s == "" ? "null" : str(s) }
function flag(s) { return s == "yes" ? "true" : s == "no" ? "false" : "null" }
function show(s) { return s == "-" || s == "" ? "-" : s }
{
	n++
	name[n] = $1; grp[n] = $2; unit[n] = $3; val[n] = $4; peer[n] = $5
	pval[n] = $6; ratio[n] = $7; target[n] = $8; met[n] = $9
	what[n] = $10
}
END {
	printf "{\n  \"schema\": 1,\n" > json
	printf "  \"tool\": \"p11mail make bench\",\n" > json
	printf "  \"mode\": %s,\n  \"started\": %s,\n", str(mode),
		str(started) > json
	printf "  \"elapsed_s\": %d,\n  \"cpus\": %d,\n", elapsed, cpus > json
	printf "  \"token\": \"SoftHSM2\",\n  \"openssl\": %s,\n",
		str(openssl) > json
	printf "  \"settings\": %s,\n  \"rows\": [\n", str(settings) > json
	for (i = 1; i <= n; i++) {
		printf "    {\"name\": %s, \"group\": %s, \"unit\": %s, ",
			str(name[i]), str(grp[i]), str(unit[i]) > json
		printf "\"value\": %s, \"peer\": %s, \"peer_value\": %s, ",
			num(val[i]), txt(peer[i]), num(pval[i]) > json
		printf "\"ratio\": %s, \"target\": %s, \"met\": %s, ",
			num(ratio[i]), txt(target[i]), flag(met[i]) > json
		printf "\"what\": %s}%s\n", str(what[i]),
			i < n ? "," : "" > json
	}
	printf "  ]\n}\n" > json
	close(json)

	fmt = "%-31s %-8s %11s %-19s %11s %8s\n"
	printf fmt, "row", "unit", "p11mail", "against", "peer", "ratio"
	printf fmt, "---", "----", "-------", "-------", "----", "-----"
	for (i = 1; i <= n; i++) {
		if (grp[i] != last)
			printf "[%s]\n", grp[i]
		last = grp[i]
		printf fmt, name[i], unit[i], show(val[i]), show(peer[i]),
			show(pval[i]), show(ratio[i])
		if (what[i] != "")
			printf "    %s\n", what[i]
	}
	printf "\ntargets (goals, not assertions)\n"
	for (i = 1; i <= n; i++) {
		if (target[i] == "-" || target[i] == "")
			continue
		shown = ratio[i] != "-" && grp[i] != "large" ? ratio[i] : val[i]
		printf "  %-30s %-35s %8s  %s\n", name[i], target[i],
			show(shown), met[i] == "yes" ? "MET" : \
			met[i] == "no" ? "NOT MET" : "NOT MEASURED"
	}
	printf "\n%s run, %d s on %d CPUs; figures in the JSON file too\n",
		mode, elapsed, cpus
}' "$rows" || exit 1
mv "$tmp" "$out" || exit 1
trap - EXIT
echo "bench: wrote $out" >&2
