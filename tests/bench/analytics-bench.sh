#!/bin/sh
#
# analytics-bench.sh - how fast the analytics answer, and what the daily
# rollup costs at ingest (issue 6).
#
# Starts its own PostgreSQL (tests/integration/pg.sh; for the benchmark
# shared_buffers = 1GB, max_wal_size = 8GB; everything else as pg.sh sets
# it: fsync off) and builds the data set: BENCH_ROWS record rows (default
# 10,000,000) over BENCH_DAYS days (90) for BENCH_DOMAINS domains (1,000),
# by SQL (tests/bench/analytics-gen.sql). The rows are those `dmarcd
# ingest` makes: a calibration report with one record of each kind of
# source is ingested by dmarcd first, the generator takes dmarcd's own
# verdict (auth, dkim_domain, spf_domain, override) from it and checks that
# every other column it would write equals what ingest stored; the rollup
# is made by dmarcd.rollup_add(), ingest's own SQL path. Building takes
# minutes: with BENCH_CACHE the cluster is kept there, under a name made
# of the sizes and a checksum of sql/*.sql and the generator, and used
# again (a change in the SQL builds a new one; about 8 GB at 10M rows).
#
# Then, in one run:
#
#   1. SQL: pgbench, 32 clients (2 threads), BENCH_SECONDS (30) each, a
#      random domain per transaction: dmarcd.summary() over the last 30
#      days of the data, dmarcd.readiness() over 30 days; sources() and
#      `SELECT 1` (the floor: what the machine gives 32 clients at all)
#      for information. p50/p99 from the per-transaction log (pgbench
#      -l). For information: what one answer costs when it is worked
#      out (the target is judged on the API, below).
#   2. HTTP: `dmarcd serve` (4 worker threads, each with its connection,
#      as a login role that is only dmarcd_reader) and wrk, 32
#      connections, BENCH_SECONDS, a random domain per request with a
#      Bearer token (a Lua script): /v1/domains/D/summary and
#      /v1/domains/D/readiness, each twice: "-cold" with no answer kept
#      yet (for information: the first request for each domain is worked
#      out), then the steady state, where the API answers from what it
#      keeps until a domain's data changes (api/answers.c). Target p99 <=
#      20 ms, 0 errors (non-2xx answers and socket errors). Skipped, with
#      a line saying why, when wrk or `dmarcd serve` is missing.
#   3. The rollup at ingest: the same input ingested into two new
#      databases (one process, --jobs 1), once as usual and once with
#      DMARCD_BENCH_NO_ROLLUP=1 (store/ingest.c: a switch for this
#      benchmark only: nothing added up, no rollup statement); best of 2
#      runs each. Cost = 1 - (time without / time with): the share of
#      ingest throughput the rollup takes. Target <= 15%. Inputs: a
#      maildir of BENCH_SMALL (5000) small reports (gen_small.py: random
#      addresses, every record its own rollup row; the deferred path:
#      rows COPY'd into the rollup with the batch's other rows) and one
#      report of BENCH_BIG (300000) records made from the data set (the
#      direct path: added up while parsed, inserted at its end). The
#      third path, rollup_add() for reports whose metadata comes after
#      their records and for revisions, is rare and not measured.
#      The rollup is appended to at ingest and compacted later
#      (sql/0014_rollup_append.sql: ingest, fetch and run compact what
#      was appended an hour before or more): `dmarcd compact` after each
#      run with the rollup is timed too, and printed for information
#      beside the ingest, as a share of the ingest's time, with the
#      whole (append and compaction) as a share of both.
#
# Client, API and server share the machine's cores: with 32 connections
# and c cores, a request waits behind about 32/c others, so p99 >= ~16 x
# the CPU time of one request on 2 cores. Throughput is printed beside
# the latencies.
#
# Prints PASS/FAIL/SKIP lines; exits 0 unless a tool fails, 77 when
# PostgreSQL or pgbench is missing. Not part of make check.
#
# Environment: DMARCD, PYTHON3, BENCH_CACHE, BENCH_ROWS, BENCH_DOMAINS,
# BENCH_DAYS, BENCH_SECONDS, BENCH_SMALL, BENCH_BIG, WRK (default wrk).
set -u

: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
: "${DMARCD:=$top_builddir/collector/dmarcd}"
: "${PYTHON3:=python3}"
: "${BENCH_ROWS:=10000000}"
: "${BENCH_DOMAINS:=1000}"
: "${BENCH_DAYS:=90}"
: "${BENCH_SECONDS:=30}"
: "${BENCH_SMALL:=5000}"
: "${BENCH_BIG:=300000}"
: "${BENCH_CACHE:=}"
: "${WRK:=wrk}"
END=2025-01-01			# the data's days end here (exclusive)
SINCE=2024-12-02		# summary: the last 30 days
CLIENTS=32
GEN="$top_srcdir/tests/bench/analytics-gen.sql"
PG="$top_srcdir/tests/integration/pg.sh"

skip() { echo "analytics-bench: skipped: $*"; exit 77; }
die() { echo "analytics-bench: $*" >&2; exit 1; }
say() { echo "analytics-bench: $*"; }

bindir=$(sh "$PG" bindir) || skip "no PostgreSQL binaries"
PSQL=$bindir/psql
[ -x "$PSQL" ] || PSQL=psql
PGBENCH=$bindir/pgbench
[ -x "$PGBENCH" ] || PGBENCH=$(command -v pgbench) || skip "no pgbench"
[ -x "$DMARCD" ] || die "no $DMARCD"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/analytics-bench.XXXXXX") || exit 1
serve_pid=
cleanup() {
	[ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null
	if [ -n "${pgdir:-}" ] && [ -z "$BENCH_CACHE" ]; then
		sh "$PG" stop "$pgdir" >/dev/null 2>&1
	elif [ -n "${pgdir:-}" ] && [ -f "$pgdir/data/postmaster.pid" ]; then
		# Kept: a checkpoint first, so that the next start is quick.
		"$PSQL" "$conn" -qc "CHECKPOINT" >/dev/null 2>&1
		sh "$PG" kill "$pgdir" >/dev/null 2>&1
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# --- the cluster and its data set ---
sum=$(cat "$top_srcdir"/sql/*.sql "$GEN" | cksum | cut -d ' ' -f 1)
name=analytics-$BENCH_ROWS-$BENCH_DOMAINS-$BENCH_DAYS-$sum
if [ -n "$BENCH_CACHE" ]; then
	mkdir -p "$BENCH_CACHE" || die "cannot make $BENCH_CACHE"
	pgdir=$(cd "$BENCH_CACHE" && pwd)/$name
	# Clusters of the same sizes made by other SQL are out of date.
	sizes=$BENCH_ROWS-$BENCH_DOMAINS-$BENCH_DAYS
	for old in "$BENCH_CACHE"/analytics-$sizes-*; do
		[ -d "$old" ] && [ "$old" != "$pgdir" ] || continue
		[ -f "$old/data/postmaster.pid" ] && continue	# in use
		rm -rf "$old"
	done
else
	# Its own directory: the server runs as postgres, which cannot enter
	# $tmp.
	pgdir=$(mktemp -d "${TMPDIR:-/tmp}/analytics-bench-pg.XXXXXX") ||
	    exit 1
	rmdir "$pgdir"
fi
if [ -f "$pgdir/built" ]; then
	sh "$PG" restart "$pgdir" 2>"$tmp/err" ||
	    die "cannot start the cached cluster $pgdir: $(cat "$tmp/err")"
	conn=$(cat "$pgdir/conninfo")
	say "data set from $pgdir"
else
	rm -rf "$pgdir"
	mkdir -p "$pgdir" || exit 1
	conn=$(sh "$PG" start "$pgdir") || die "cannot start PostgreSQL"
	"$PSQL" "$conn" -q -c "ALTER SYSTEM SET shared_buffers = '1GB'" \
	    -c "ALTER SYSTEM SET max_wal_size = '8GB'" \
	    -c "ALTER SYSTEM SET maintenance_work_mem = '512MB'" ||
	    die "ALTER SYSTEM failed"
	sh "$PG" kill "$pgdir" && sh "$PG" restart "$pgdir" ||
	    die "cannot restart PostgreSQL"
fi
db() { echo "$conn" | sed "s/dbname=[^ ]*/dbname=$1/"; }
B=$(db bench)
if [ ! -f "$pgdir/built" ]; then
	say "building $BENCH_ROWS record rows over $BENCH_DAYS days for" \
	    "$BENCH_DOMAINS domains (minutes)..."
	t0=$(date +%s)
	"$PSQL" "$conn" -qc "CREATE DATABASE bench" || die "createdb failed"
	"$DMARCD" migrate --db "$B" >/dev/null || die "migrate failed"
	"$PSQL" "$B" -q -v step=profiles -f "$GEN" || die "profiles failed"
	"$PSQL" "$B" -Atc "SELECT bench.calibration_xml()" >"$tmp/calib.xml" &&
	    "$DMARCD" ingest --quiet --no-progress --db "$B" "$tmp/calib.xml" ||
	    die "calibration ingest failed"
	"$PSQL" "$B" -q -v step=calibrate -f "$GEN" || die "calibration failed"
	"$PSQL" "$B" -q -v step=data -v rows="$BENCH_ROWS" \
	    -v domains="$BENCH_DOMAINS" -v days="$BENCH_DAYS" -v end="$END" \
	    -f "$GEN" || die "generating the data set failed"
	# The WAL of the build is not kept in the cache (some 7 GB).
	"$PSQL" "$B" -qc "CREATE ROLE bench_api LOGIN IN ROLE dmarcd_reader" \
	    -c "ALTER SYSTEM SET max_wal_size = '1GB'" \
	    -c "SELECT pg_reload_conf()" -c "CHECKPOINT" -c "CHECKPOINT" \
	    >/dev/null || die "role failed"
	echo $(($(date +%s) - t0)) >"$pgdir/built"
fi
"$PSQL" "$B" -Atc "SELECT (SELECT count(*) FROM dmarcd.records) || ' ' ||
    (SELECT count(*) FROM dmarcd.rollup_daily) || ' ' ||
    (SELECT count(*) FROM dmarcd.reports) || ' ' ||
    (SELECT count(*) FROM bench.domains) || ' ' ||
    (SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY n) || ' ' || max(n)
    FROM (SELECT count(*) AS n FROM dmarcd.rollup_daily
    WHERE day >= '$SINCE' AND day < '$END' GROUP BY domain) x)" \
    >"$tmp/shape" || die "cannot read the data set"
read -r nrec nroll nrep ndom rmed rmax <"$tmp/shape"
# calib.test's one record is not part of the data set.
[ "$nrec" -eq $((BENCH_ROWS + 13)) ] ||
    die "the data set has $nrec record rows, not $BENCH_ROWS (+13)"
say "data set: $((nrec - 13)) record rows, $nrep reports, $nroll rollup" \
    "rows, $ndom domains; rollup rows per domain over the 30 days:" \
    "median $rmed, max $rmax (built in $(cat "$pgdir/built") s; rows as" \
    "dmarcd ingest makes them, calibrated against it)"

# pct FILE P: the P-th percentile of the numbers in FILE (one a line).
pct() {
	sort -n "$1" | awk -v p="$2" '{ v[NR] = $1 } END {
		if (NR == 0) { print "nan"; exit }
		i = int(NR * p / 100 + 0.999999); if (i < 1) i = 1
		print v[i] }'
}

# --- 1. SQL: pgbench ---
# sql NAME QUERY: 32 clients for BENCH_SECONDS, a random domain each;
# writes NAME's tps, p50 and p99 (ms), failed and total transactions.
sql() {
	cat >"$tmp/$1.pgb" <<EOF
\\set d random(1, $ndom)
SELECT $2;
EOF
	say "pgbench $1: $CLIENTS clients, $BENCH_SECONDS s..."
	rm -f "$tmp"/log.*
	(cd "$tmp" && "$PGBENCH" -n -M prepared -c "$CLIENTS" -j 2 \
	    -T "$BENCH_SECONDS" -f "$tmp/$1.pgb" -l --log-prefix=log \
	    "$B") >"$tmp/$1.out" 2>&1
	rc=$?
	cat "$tmp"/log.* 2>/dev/null |
	    awk '$3 ~ /^[0-9]+$/ { print $3 / 1000 }' >"$tmp/$1.lat"
	n=$(wc -l <"$tmp/$1.lat")
	failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' \
	    "$tmp/$1.out")
	errs=$(grep -c "ERROR\|aborted" "$tmp/$1.out")
	[ -n "$failed" ] || failed=0
	failed=$((failed + errs))
	[ $rc -eq 0 ] || [ $failed -gt 0 ] ||
	    die "pgbench $1 failed: $(tail -n 5 "$tmp/$1.out")"
	tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$tmp/$1.out" | head -n 1)
	echo "$1 ${tps:-0} $(pct "$tmp/$1.lat" 50) $(pct "$tmp/$1.lat" 99)" \
	    "$failed $n" >>"$tmp/results"
}
dom="'dom' || :d || '.test'"
: >"$tmp/results"
sql summary "dmarcd.summary($dom, '$SINCE', '$END')"
sql readiness "dmarcd.readiness($dom, 30, '$END')"
sql sources "dmarcd.sources($dom, '$SINCE', '$END')"
# The floor: what 32 clients get from this machine for a query that
# does nothing.
sql 'select-1' "1 + :d"

# --- 2. HTTP: dmarcd serve and wrk ---
http_skip=
if ! command -v "$WRK" >/dev/null 2>&1; then
	http_skip="no wrk (Debian package wrk)"
elif ! "$DMARCD" serve --help >/dev/null 2>&1; then
	http_skip="this dmarcd has no serve command (the API)"
fi
# http NAME PATH-AND-QUERY (with %d for the domain's number): one run of
# wrk, its figures under http-NAME in the results.
http() {
	cat >"$tmp/$1.lua" <<EOF
local n = $ndom
local hdr = { ["Authorization"] = "Bearer $token" }
init = function(args) math.randomseed(os.time() + math.random(1000000)) end
request = function()
	return wrk.format("GET", string.format("$2", math.random(1, n)), hdr)
end
done = function(summary, latency, requests)
	local e = summary.errors
	io.write(string.format("RESULT %.3f %.3f %d %d %.1f\\n",
	    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
	    e.status + e.connect + e.read + e.write + e.timeout,
	    summary.requests, summary.requests / summary.duration * 1e6))
end
EOF
	say "wrk $1: $CLIENTS connections, $BENCH_SECONDS s..."
	"$WRK" -t 2 -c "$CLIENTS" -d "${BENCH_SECONDS}s" --timeout 10s \
	    -s "$tmp/$1.lua" "http://$addr" >"$tmp/$1.wrk" 2>&1 ||
	    die "wrk $1 failed: $(cat "$tmp/$1.wrk")"
	set -- "$1" $(sed -n 's/^RESULT //p' "$tmp/$1.wrk")
	[ $# -eq 6 ] || die "no result from wrk: $(cat "$tmp/$1.wrk")"
	echo "http-$1 $6 $2 $3 $4 $5" >>"$tmp/results"
}
if [ -z "$http_skip" ]; then
	# A kept data set holds the tokens of the runs before (revoked).
	tname=bench-$(date +%s)-$$
	token=$("$DMARCD" token add "$tname" --db "$B" 2>"$tmp/err" |
	    grep -o 'dmarcd_[A-Za-z0-9_-]*' | head -n 1)
	[ -n "$token" ] || die "token add failed: $(cat "$tmp/err")"
	printf '[api]\nthreads = 4\n' >"$tmp/api.conf"
	"$DMARCD" serve --config "$tmp/api.conf" \
	    --db "$(echo "$B" | sed 's/user=[^ ]*/user=bench_api/')" \
	    --listen 127.0.0.1:0 2>"$tmp/serve.err" &
	serve_pid=$!
	addr=
	for _ in $(seq 100); do
		addr=$(sed -n 's/.*listening on \([0-9.]*:[0-9]*\).*/\1/p' \
		    "$tmp/serve.err" | head -n 1)
		[ -n "$addr" ] && break
		kill -0 "$serve_pid" 2>/dev/null || break
		sleep 0.1
	done
	[ -n "$addr" ] ||
	    die "dmarcd serve did not start: $(cat "$tmp/serve.err")"
	q="since=${SINCE}T00:00:00Z&until=${END}T00:00:00Z"
	# Each endpoint twice: first with nothing kept (cold: every domain's
	# first answer is worked out, for information), then the steady
	# state the target is about (the API keeps answers until a domain's
	# data changes: api/answers.c; nothing is stored meanwhile).
	http summary-cold "/v1/domains/dom%d.test/summary?$q"
	http summary "/v1/domains/dom%d.test/summary?$q"
	http readiness-cold \
	    "/v1/domains/dom%d.test/readiness?days=30&until=${END}T00:00:00Z"
	http readiness \
	    "/v1/domains/dom%d.test/readiness?days=30&until=${END}T00:00:00Z"
	kill "$serve_pid"
	wait "$serve_pid" 2>/dev/null
	serve_pid=
	"$DMARCD" token revoke "$tname" --db "$B" >/dev/null 2>&1 || :
fi

# --- 3. the rollup at ingest ---
md=$tmp/maildir
"$PYTHON3" "$top_srcdir/tests/bench/gen_small.py" "$md" "$BENCH_SMALL" 3 \
    >"$tmp/small.json" || die "gen_small failed"
"$PSQL" "$B" -Atc "SELECT bench.big_xml($BENCH_BIG)" >"$tmp/big.xml" ||
    die "big report failed"
k=0
# ingest_time OUT INPUT [env]: wall seconds of dmarcd ingest of INPUT
# into a new database, best of 2.
ingest_time() {
	out=$1 in=$2
	shift 2
	best= cbest=
	for _ in 1 2; do
		k=$((k + 1))
		"$PSQL" "$conn" -qc "CREATE DATABASE i$k" ||
		    die "createdb failed"
		"$DMARCD" migrate --db "$(db i$k)" >/dev/null ||
		    die "migrate failed"
		t0=$(date +%s.%N)
		env "$@" "$DMARCD" ingest --quiet --no-progress --jobs 1 \
		    --db "$(db i$k)" "$in" >/dev/null 2>"$tmp/err" ||
		    die "ingest failed: $(cat "$tmp/err")"
		t=$(echo "$(date +%s.%N) $t0" | awk '{ print $1 - $2 }')
		case "$*" in
		*NO_ROLLUP=1*) ;;
		*)
			t0=$(date +%s.%N)
			"$DMARCD" compact --quiet --db "$(db i$k)" \
			    2>"$tmp/err" || die "compact failed: $(cat "$tmp/err")"
			c=$(echo "$(date +%s.%N) $t0" |
			    awk '{ print $1 - $2 }')
			cbest=$(echo "$c ${cbest:-$c}" |
			    awk '{ print ($1 < $2) ? $1 : $2 }') ;;
		esac
		rolled=$("$PSQL" "$(db i$k)" -Atc \
		    "SELECT count(*) FROM dmarcd.rollup_daily")
		"$PSQL" "$conn" -qc "DROP DATABASE i$k"
		case "$*" in
		*NO_ROLLUP=1*) [ "$rolled" -eq 0 ] ||
		    die "DMARCD_BENCH_NO_ROLLUP=1 left $rolled rollup rows" ;;
		*) [ "$rolled" -gt 0 ] || die "no rollup rows" ;;
		esac
		best=$(echo "$t ${best:-$t}" |
		    awk '{ print ($1 < $2) ? $1 : $2 }')
	done
	echo "$best" >"$out"
	[ -z "$cbest" ] || echo "$cbest" >"$out.compact"
}
say "ingest with and without the rollup: $BENCH_SMALL small reports..."
ingest_time "$tmp/s.roll" "$md" DMARCD_BENCH_NO_ROLLUP=0
ingest_time "$tmp/s.none" "$md" DMARCD_BENCH_NO_ROLLUP=1
say "ingest with and without the rollup: one report of $BENCH_BIG records..."
ingest_time "$tmp/b.roll" "$tmp/big.xml" DMARCD_BENCH_NO_ROLLUP=0
ingest_time "$tmp/b.none" "$tmp/big.xml" DMARCD_BENCH_NO_ROLLUP=1

# --- the figures ---
awk -v sr="$(cat "$tmp/s.roll")" -v sn="$(cat "$tmp/s.none")" \
    -v br="$(cat "$tmp/b.roll")" -v bn="$(cat "$tmp/b.none")" \
    -v sc="$(cat "$tmp/s.roll.compact")" -v bc="$(cat "$tmp/b.roll.compact")" \
    -v small="$BENCH_SMALL" -v big="$BENCH_BIG" -v secs="$BENCH_SECONDS" \
    -v c="$CLIENTS" -v skip="$http_skip" '
{ name[NR] = $1; tps[NR] = $2; p50[NR] = $3; p99[NR] = $4; err[NR] = $5
  n[NR] = $6 }
END {
	printf "\n%-26s %9s %9s %9s %9s %8s\n", "", "req/s", "p50 ms", \
	    "p99 ms", "requests", "errors"
	for (i = 1; i <= NR; i++)
		printf "%-26s %9.0f %9.2f %9.2f %9d %8d\n", name[i] " (" c \
		    " conn)", tps[i], p50[i], p99[i], n[i], err[i]
	printf "%-26s %9.2f s %7.2f s\n", "ingest " small " small rep.", sr, sn
	printf "%-26s %9s %9s (with the rollup, without)\n", "", "", ""
	printf "%-26s %9.2f s %7.2f s\n", "ingest 1 report " big, br, bn
	printf "%-26s %9.2f s %7.2f s (dmarcd compact after, small; big)\n", \
	    "compaction", sc, bc
	printf "\ntargets:\n"
	for (i = 1; i <= NR; i++) {
		# The target is on the API (wrk); the SQL functions under
		# pgbench are what a cold answer costs, for information.
		judged = name[i] ~ /^http-/ && name[i] !~ /-cold$/
		printf "%s  %s: p99 %.2f ms (%.2fx the target <= 20 ms), " \
		    "%d errors (target 0)\n", !judged ? "info" : \
		    (p99[i] <= 20 && err[i] == 0 ? "PASS" : "FAIL"), name[i], \
		    p99[i], p99[i] / 20, err[i]
	}
	if (skip != "")
		printf "SKIP  HTTP (wrk against dmarcd serve): %s\n", skip
	cs = 1 - sn / sr; cb = 1 - bn / br
	printf "%s  rollup at ingest, %d small reports: %.1f%% of ingest " \
	    "throughput (%.2fx the target <= 15%%)\n", \
	    cs <= 0.15 ? "PASS" : "FAIL", small, cs * 100, cs / 0.15
	printf "%s  rollup at ingest, one report of %d records: %.1f%% of " \
	    "ingest throughput (%.2fx the target <= 15%%)\n", \
	    cb <= 0.15 ? "PASS" : "FAIL", big, cb * 100, cb / 0.15
	# Compaction is not at ingest (an hour later, by whichever of
	# ingest, fetch, run or compact comes next): for information, what
	# it costs beside the ingest, and the whole share of the rollup.
	printf "info  compaction of the %d small reports'"'"' rows: %.2f s, " \
	    "%.1f%% of their ingest; the rollup in all (append and " \
	    "compaction): %.1f%% of ingest and compaction\n", small, sc, \
	    100 * sc / sr, 100 * (1 - sn / (sr + sc))
	printf "info  compaction of the report of %d records'"'"' rows: " \
	    "%.2f s, %.1f%% of its ingest; the rollup in all: %.1f%%\n", \
	    big, bc, 100 * bc / br, 100 * (1 - bn / (br + bc))
}' "$tmp/results"
exit 0
