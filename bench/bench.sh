#!/bin/sh
# p11mail's benchmark: every row on one fresh SoftHSM2 fixture, in one run.
#
#   bench.sh OUT.json
#
# Environment: top_srcdir, top_builddir, P11MAIL_TEST_PROVIDER_DIR (set by
# make bench); BENCH_QUICK=1 for the short run.  Prints the table on
# stdout and writes the same figures to OUT.json (bench/README.md).  Exit
# status: 0 done (targets missed are reported, not failed), 1 a row could
# not be measured at all, 2 usage, 77 a tool is missing.
set -u

out=${1:-}
if [ -z "$out" ]; then
	echo "usage: bench.sh OUT.json" >&2
	exit 2
fi
: "${top_srcdir:?bench.sh: set top_srcdir (run it through make bench)}"
: "${top_builddir:?bench.sh: set top_builddir (run it through make bench)}"
: "${P11MAIL_TEST_PROVIDER_DIR:=$top_builddir/engine/.libs}"

ENGINE_SO=/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so
P11MAIL=$top_builddir/src/p11mail
# In a build tree src/p11mail is libtool's wrapper script, which would add
# a shell start to every run: time the program itself, as installed.
if [ -x "$top_builddir/src/.libs/p11mail" ]; then
	P11MAIL=$top_builddir/src/.libs/p11mail
	LD_LIBRARY_PATH=$top_builddir/src/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
	export LD_LIBRARY_PATH
fi
BENCH_LIB=$top_builddir/bench/bench-lib
BENCH_STORE=$top_builddir/tests/bench-store

# need FILE-OR-COMMAND PACKAGE: stop with 77 and the package to install.
need() {
	if [ ! -e "$1" ] && ! command -v "$1" >/dev/null 2>&1; then
		echo "bench: $1 not found (apt-get install $2)" >&2
		exit 77
	fi
}
need openssl openssl
need /usr/bin/time time
need "$ENGINE_SO" libengine-pkcs11-openssl
need awk gawk
for f in "$P11MAIL" "$BENCH_LIB" "$BENCH_STORE" \
	"$P11MAIL_TEST_PROVIDER_DIR/p11mail.so"; do
	if [ ! -x "$f" ] && [ ! -f "$f" ]; then
		echo "bench: $f is not built (run make bench)" >&2
		exit 1
	fi
done

# Sizes of the run: the full one takes about 5 minutes on 2 cores.
if [ "${BENCH_QUICK:-0}" = 1 ]; then
	ROUNDS=3 SECS=0.2 NPROC=4 PREPS=3 BIG_REPS=1
	BIG_SIZES="1 4" STORE_ROWS=10000 STORE_REPS=1
else
	ROUNDS=9 SECS=0.5 NPROC=15 PREPS=5 BIG_REPS=3
	BIG_SIZES="10 50 100" STORE_ROWS=100000 STORE_REPS=3
fi

started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
t_start=$(date +%s)

bench_dir=$(mktemp -d "${TMPDIR:-/tmp}/p11mail-bench.XXXXXX") || exit 1
trap 'rm -rf "$bench_dir"' EXIT
trap 'exit 130' INT TERM

echo "bench: making the SoftHSM2 fixture" >&2
if ! "$top_srcdir/tests/fixture/make-fixture.sh" "$bench_dir/fx" \
	>"$bench_dir/fixture.log" 2>&1; then
	rc=$?
	tail -n 1 "$bench_dir/fixture.log" >&2
	[ "$rc" = 77 ] && exit 77
	echo "bench: the fixture failed" >&2
	exit 1
fi
. "$bench_dir/fx/env.sh"
export P11MAIL_MODULE="$SOFTHSM_MODULE" P11MAIL_TEST_PROVIDER_DIR
unset P11MAIL_INIT_ARGS P11MAIL_CONFIG P11MAIL_STORE P11MAIL_DEBUG

W=$bench_dir/work
mkdir -p "$W"
ROWS=$W/rows.tsv
: >"$ROWS"
status=0

# The machine's openssl.cnf must not change what is measured; the ENGINE
# gets a configuration of its own.
: >"$W/empty.cnf"
cat >"$W/engine.cnf" <<CNF
openssl_conf = init
[init]
engines = engines
[engines]
pkcs11 = pkcs11_section
[pkcs11_section]
engine_id = pkcs11
dynamic_path = $ENGINE_SO
MODULE_PATH = $SOFTHSM_MODULE
init = 0
CNF
PROV="-provider-path $P11MAIL_TEST_PROVIDER_DIR -provider default -provider p11mail"
KEY="$ALICE_RSA_URI?pin-value=$ALICE_PIN"
# p11mail refuses a PIN on its command line; it reads the same PIN file.
PKEY="$ALICE_RSA_URI?pin-source=file:$ALICE_PIN_FILE"

# row NAME GROUP UNIT VALUE PEER PEER_VALUE RATIO TARGET MET WHAT: one
# line of the results; "-" for a field that does not apply.
row() {
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$ROWS"
}

# median: the median of the numbers on stdin, "-" when there are none.
median() {
	sort -g | awk '{ v[NR] = $1 }
		END { if (NR == 0) print "-";
		      else if (NR % 2) print v[(NR + 1) / 2];
		      else printf "%.4f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# calc EXPR: a floating-point result, 4 decimals ("-" if an input is "-").
calc() {
	case $1 in *-\ *|*\ -*|-) echo -; return ;; esac
	awk "BEGIN { printf \"%.4f\", $1 }"
}

# met VALUE OP LIMIT: yes or no, "-" without a value.
met() {
	[ "$1" = - ] && { echo -; return; }
	awk -v v="$1" -v l="$3" "BEGIN { print (v $2 l) ? \"yes\" : \"no\" }"
}

# ---- in process: raw PKCS#11, the library, the provider, the ENGINE ----

echo "bench: in-process rates (raw, library, provider, ENGINE)" >&2
"$BENCH_LIB" token "$ROUNDS" "$SECS" >"$W/token.out" 2>"$W/token.err" ||
	{ status=1; sed 's/^/bench: /' "$W/token.err" >&2; }
"$BENCH_LIB" evp "$ROUNDS" "$SECS" >"$W/evp.out" 2>"$W/evp.err" ||
	{ status=1; sed 's/^/bench: /' "$W/evp.err" >&2; }

# field FILE NAME COLUMN: a column (2 A, 3 B, 4 ratio) of a bench-lib line.
field() {
	v=$(awk -v n="$2" -v c="$3" '$1 == n { print $c }' "$1")
	echo "${v:--}"
}

row raw_sign_rsa2048 raw ops/s "$(field "$W/token.out" lib_sign_rsa 2)" \
	- - - - - "raw C_SignInit+C_Sign, RSA-2048 PKCS#1 v1.5, own session"
row raw_sign_p256 raw ops/s "$(field "$W/token.out" lib_sign_ec 2)" \
	- - - - - "raw C_SignInit+C_Sign, P-256 ECDSA, own session"
row raw_decrypt_rsa2048 raw ops/s "$(field "$W/token.out" lib_decrypt_rsa 2)" \
	- - - - - "raw C_DecryptInit+C_Decrypt, RSA-2048 PKCS#1 v1.5"

ratio=$(field "$W/token.out" lib_sign_rsa 4)
row lib_sign_rsa2048 library msg/s "$(field "$W/token.out" lib_sign_rsa 3)" \
	raw_c_sign "$(field "$W/token.out" lib_sign_rsa 2)" "$ratio" \
	">= 0.90 x raw" "$(met "$ratio" '>=' 0.9)" \
	"p11mail_smime_sign of 1 KiB, RSA-2048, one login"
row lib_sign_p256 library msg/s "$(field "$W/token.out" lib_sign_ec 3)" \
	raw_c_sign "$(field "$W/token.out" lib_sign_ec 2)" \
	"$(field "$W/token.out" lib_sign_ec 4)" - - \
	"p11mail_smime_sign of 1 KiB, P-256, one login"
row lib_decrypt_rsa2048 library msg/s \
	"$(field "$W/token.out" lib_decrypt_rsa 3)" raw_c_decrypt \
	"$(field "$W/token.out" lib_decrypt_rsa 2)" \
	"$(field "$W/token.out" lib_decrypt_rsa 4)" - - \
	"p11mail_smime_decrypt of 1 KiB, RSA-2048, AES-256-GCM"

for k in evp_sign_rsa:provider_evp_sign_rsa2048:"EVP_PKEY_sign RSA-2048" \
	evp_sign_ec:provider_evp_sign_p256:"EVP_PKEY_sign P-256" \
	cms_sign_rsa:provider_cms_sign_rsa2048:"CMS_sign of 1 KiB, RSA-2048"; do
	IFS=: read -r short long label <<EOF
$k
EOF
	row "$long" provider ops/s "$(field "$W/evp.out" "$short" 3)" \
		libp11_engine "$(field "$W/evp.out" "$short" 2)" \
		"$(field "$W/evp.out" "$short" 4)" - - \
		"$label, in one process, provider vs ENGINE"
done

# ---- one process per operation -----------------------------------------

printf 'p11mail' | openssl dgst -sha256 -binary >"$W/hash"
{
	printf 'From: alice@north-clinic.test\nTo: bob@south-lab.test\n'
	printf 'Subject: Befund\nMIME-Version: 1.0\n'
	printf 'Content-Type: text/plain; charset=us-ascii\n\n'
	yes 'The results are attached below; please call the lab. Thanks.' |
		head -c 880
} >"$W/msg1k"

pkeyutl_provider() {
	OPENSSL_CONF=$W/empty.cnf openssl pkeyutl -sign $PROV \
		-inkey "$KEY" -in "$W/hash" -out "$W/sig" \
		-pkeyopt digest:sha256
}
pkeyutl_engine() {
	OPENSSL_CONF=$W/engine.cnf openssl pkeyutl -sign -engine pkcs11 \
		-keyform engine -inkey "$KEY" -in "$W/hash" -out "$W/sig" \
		-pkeyopt digest:sha256
}
cms_provider() {
	OPENSSL_CONF=$W/empty.cnf openssl cms -sign $PROV -inkey "$KEY" \
		-signer "$ALICE_RSA_CERT" -in "$W/msg1k" -out "$W/cms"
}
cms_engine() {
	OPENSSL_CONF=$W/engine.cnf openssl cms -sign -engine pkcs11 \
		-keyform engine -inkey "$KEY" -signer "$ALICE_RSA_CERT" \
		-in "$W/msg1k" -out "$W/cms"
}
p11mail_sign() {
	"$P11MAIL" sign -k "$PKEY" -c "$ALICE_RSA_CERT" -o "$W/signed" \
		"$W/msg1k"
}

# procs N FUNCTION: processes per second over N runs; fails with it.
procs() {
	_t0=$(date +%s%N)
	_i=0
	while [ "$_i" -lt "$1" ]; do
		"$2" >"$W/proc.log" 2>&1 || return 1
		_i=$((_i + 1))
	done
	_t1=$(date +%s%N)
	awk -v n="$1" -v d="$((_t1 - _t0))" 'BEGIN { printf "%.2f", n * 1e9 / d }'
}

# proc_pair NAME PEER-FN OURS-FN: PREPS alternating rounds of NPROC
# processes each; sets pa (peer), pb (ours), pr (ours/peer), all medians.
proc_pair() {
	: >"$W/pa" && : >"$W/pb" && : >"$W/pr"
	_r=0
	while [ "$_r" -lt "$PREPS" ]; do
		if [ $((_r % 2)) = 0 ]; then
			_a=$(procs "$NPROC" "$2") && _b=$(procs "$NPROC" "$3")
		else
			_b=$(procs "$NPROC" "$3") && _a=$(procs "$NPROC" "$2")
		fi || {
			echo "bench: $1 failed:" >&2
			sed 's/^/bench:   /' "$W/proc.log" | head -n 5 >&2
			status=1
			pa=- pb=- pr=-
			return
		}
		echo "$_a" >>"$W/pa"
		echo "$_b" >>"$W/pb"
		calc "$_b / $_a" >>"$W/pr"
		echo >>"$W/pr"
		_r=$((_r + 1))
	done
	pa=$(median <"$W/pa") pb=$(median <"$W/pb") pr=$(median <"$W/pr")
}

echo "bench: one process per operation" >&2
proc_pair "openssl pkeyutl" pkeyutl_engine pkeyutl_provider
row proc_pkeyutl_sign_rsa2048 per-process procs/s "$pb" libp11_engine \
	"$pa" "$pr" - - \
	"openssl pkeyutl -sign, -provider p11mail vs -engine pkcs11"
proc_pair "openssl cms" cms_engine cms_provider
row proc_cms_sign_rsa2048 per-process procs/s "$pb" libp11_engine \
	"$pa" "$pr" - - \
	"openssl cms -sign 1 KiB, -provider p11mail vs -engine pkcs11"
proc_pair "p11mail sign" cms_engine p11mail_sign
row cli_sign_rsa2048 per-process msg/s "$pb" openssl_cms_engine "$pa" \
	"$pr" ">= 1.5 x openssl cms + ENGINE" "$(met "$pr" '>=' 1.5)" \
	"p11mail sign 1 KiB vs openssl cms -sign -engine pkcs11"

# ---- large messages: time and peak resident memory ---------------------

# big_message MIB FILE: a text message of MIB MiB.
big_message() {
	{
		printf 'From: alice@north-clinic.test\n'
		printf 'To: alice@north-clinic.test\nSubject: Bilder\n'
		printf 'MIME-Version: 1.0\nContent-Type: text/plain\n\n'
		yes 'Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod' |
			head -c $(($1 * 1048576))
	} >"$2"
}

# measure TAG CMD...: runs CMD under /usr/bin/time BIG_REPS times;
# appends "seconds kib" medians (or "- -" and the reason) to $W/TAG.m.
measure() {
	_tag=$1
	shift
	: >"$W/$_tag.t" && : >"$W/$_tag.k"
	_r=0
	while [ "$_r" -lt "$BIG_REPS" ]; do
		if ! /usr/bin/time -f '%e %M' -o "$W/time.out" "$@" \
			>"$W/big.log" 2>&1; then
			_why=$(grep -v '^Command exited\|^Engine ' "$W/big.log" |
				head -n 1 | tr '\t' ' ')
			echo "- - ${_why:-failed}" >"$W/$_tag.m"
			return
		fi
		tail -n 1 "$W/time.out" | awk '{ print $1 }' >>"$W/$_tag.t"
		tail -n 1 "$W/time.out" | awk '{ print $2 }' >>"$W/$_tag.k"
		_r=$((_r + 1))
	done
	echo "$(median <"$W/$_tag.t") $(median <"$W/$_tag.k")" >"$W/$_tag.m"
}

# /usr/bin/time runs programs, not shell functions: the ENGINE's openssl
# cms command as a word list.
ENGINE_CMS="env OPENSSL_CONF=$W/engine.cnf openssl cms -engine pkcs11 -keyform engine"

echo "bench: large messages ($BIG_SIZES MiB)" >&2
for mib in $BIG_SIZES; do
	m=$W/big$mib
	big_message "$mib" "$m"
	measure "p_sign_$mib" "$P11MAIL" sign -k "$PKEY" \
		-c "$ALICE_RSA_CERT" -o "$m.ps" "$m"
	measure "o_sign_$mib" $ENGINE_CMS -inkey "$KEY" -sign -stream \
		-signer "$ALICE_RSA_CERT" -in "$m" -out "$m.os"
	measure "p_encrypt_$mib" "$P11MAIL" encrypt -a "$CA_CERT" \
		--recipient-cert "$ALICE_RSA_CERT" -c "$ALICE_RSA_CERT" \
		-o "$m.pe" "$m"
	measure "o_encrypt_$mib" env OPENSSL_CONF="$W/empty.cnf" openssl cms \
		-encrypt -stream -aes-256-gcm -in "$m" -out "$m.oe" \
		"$ALICE_RSA_CERT"
	# When p11mail could not make its own input, it reads openssl's.
	[ -f "$m.pe" ] || cp "$m.oe" "$m.pe"
	[ -f "$m.ps" ] || cp "$m.os" "$m.ps"
	measure "p_decrypt_$mib" "$P11MAIL" decrypt -k "$PKEY" \
		-c "$ALICE_RSA_CERT" -o "$m.pd" "$m.pe"
	measure "o_decrypt_$mib" $ENGINE_CMS -inkey "$KEY" -decrypt \
		-recip "$ALICE_RSA_CERT" \
		-in "$m.oe" -out "$m.od"
	# verify holds the message in memory: its bound is raised to fit.
	measure "p_verify_$mib" "$P11MAIL" verify -a "$CA_CERT" \
		--max-size $(((mib * 2 + 16) << 20)) \
		--content "$m.pv" "$m.ps"
	measure "o_verify_$mib" env OPENSSL_CONF="$W/empty.cnf" openssl cms \
		-verify -CAfile "$CA_CERT" -in "$m.os" -out "$m.ov"
	rm -f "$m" "$m".*
done

# growth TOOL OP: "FACTOR FROM TO" for the peak memory of TOOL (p or o)
# from the smallest size to the largest it handled; "- - -" without two.
growth() {
	_from= _kf= _to= _kt=
	for _mib in $BIG_SIZES; do
		read -r _t _k _ <"$W/$1_$2_$_mib.m"
		[ "$_k" = - ] && continue
		[ -z "$_from" ] && _from=$_mib _kf=$_k
		_to=$_mib _kt=$_k
	done
	if [ -z "$_from" ] || [ "$_from" = "$_to" ]; then
		echo "- - -"
	else
		echo "$(calc "$_kt / $_kf") $_from $_to"
	fi
}

small=${BIG_SIZES%% *} large=${BIG_SIZES##* }
for op in sign encrypt decrypt verify; do
	for mib in $BIG_SIZES; do
		read -r pt pk pwhy <"$W/p_${op}_$mib.m"
		read -r ot ok owhy <"$W/o_${op}_$mib.m"
		[ -n "$pwhy" ] && pwhy=" (p11mail failed: ${pwhy#p11mail: })"
		[ -n "$owhy" ] && owhy=" (openssl failed: $owhy)"
		row "big_${op}_${mib}mib_seconds" large s "$pt" openssl_cms \
			"$ot" "$(calc "$pt / $ot")" - - \
			"$op $mib MiB, wall time$pwhy$owhy"
		row "big_${op}_${mib}mib_peak_kib" large KiB "$pk" openssl_cms \
			"$ok" "$(calc "$pk / $ok")" - - \
			"$op $mib MiB, peak resident memory$pwhy$owhy"
	done
	read -r pg pfrom pto <<EOF
$(growth p "$op")
EOF
	read -r og ofrom oto <<EOF
$(growth o "$op")
EOF
	what="peak memory at the largest size / at the smallest:"
	what="$what p11mail $pfrom to $pto MiB, openssl $ofrom to $oto MiB"
	[ "$pto" != "$large" ] &&
		what="$what (p11mail cannot take $large MiB)"
	# Flat: the largest message needs at most 1.5x the smallest's memory.
	case $op in
	sign | encrypt)
		row "big_${op}_memory_growth" large x "$pg" openssl_cms "$og" \
			- "flat: <= 1.5 x from $small to $large MiB" \
			"$(met "$pg" '<=' 1.5)" "$what" ;;
	*)
		row "big_${op}_memory_growth" large x "$pg" openssl_cms "$og" \
			- - - "$what" ;;
	esac
done

# ---- the workstation store ---------------------------------------------

echo "bench: the store at $STORE_ROWS certificates" >&2
: >"$W/store.out"
_r=0
while [ "$_r" -lt "$STORE_REPS" ]; do
	if ! "$BENCH_STORE" "$STORE_ROWS" >>"$W/store.out" 2>"$W/store.err"
	then
		echo "bench: bench-store failed" >&2
		status=1
	fi
	_r=$((_r + 1))
done
# store_field KEY: the median of one number over the bench-store lines.
store_field() {
	sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p" "$W/store.out" | median
}
lk=$(store_field lookup_ms)
row store_lookup_ms store ms "$lk" - - - "< 1 ms (goal at 100,000)" \
	"$(met "$lk" '<' 1)" "p11mail_cache_find at $STORE_ROWS certificates"
row store_lookups_per_s store ops/s "$(store_field lookups_per_s)" - - - \
	- - "look-ups by address per second at $STORE_ROWS certificates"
row store_inserts_per_s store ops/s \
	"$(store_field inserts_per_s_single_tx)" - - - - - \
	"p11mail_cache_put, one transaction each, at $STORE_ROWS"
row store_inserts_per_s_batched store ops/s \
	"$(store_field inserts_per_s_batched)" - - - - - \
	"cache upserts, 1,000 per transaction, filling to $STORE_ROWS"

# ---- the report --------------------------------------------------------

elapsed=$(($(date +%s) - t_start))
BENCH_STARTED=$started BENCH_ELAPSED=$elapsed \
BENCH_MODE=$([ "${BENCH_QUICK:-0}" = 1 ] && echo quick || echo full) \
BENCH_SETTINGS="rounds=$ROUNDS seconds=$SECS processes=$NPROC process_rounds=$PREPS big_reps=$BIG_REPS big_mib=$(echo $BIG_SIZES | tr ' ' ,) store_rows=$STORE_ROWS store_reps=$STORE_REPS" \
BENCH_OPENSSL=$(openssl version | awk '{ print $1 " " $2 }') \
BENCH_CPUS=$(nproc 2>/dev/null || echo 1) \
	"$top_srcdir/bench/bench-report.sh" "$ROWS" "$out" || status=1
exit "$status"
