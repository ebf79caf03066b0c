#!/bin/sh
#
# ingest-bench.sh - how fast `dmarcd ingest` stores reports, against psql.
#
# Starts its own PostgreSQL (tests/integration/pg.sh: loopback, temp dir,
# fsync off) and measures, in one run:
#
#   1. A 1M-record gzip report (gen_aggregate.py --gzip), end to end: file
#      to committed rows, rollups included, `dmarcd ingest FILE`; against
#      psql -c "\copy" of the same rows (records, dkim_results, spf_results,
#      exported from the first run) into tables of the same shape (CREATE
#      TABLE ... LIKE ... INCLUDING ALL). Ratio = psql time / dmarcd time.
#      Target >= 0.6; max RSS of dmarcd <= 32 MiB.
#   2. 10,000 small reports (1-50 records, gzip attachments of mails) from
#      a maildir (tests/bench/gen_small.py): reports/s, with one process
#      and with --jobs $BENCH_JOBS (default: the number of CPUs, at least
#      2), each into a database of its own. Target >= 1000/s: judged on
#      the --jobs run (the way to use every core); one process's figure is
#      printed beside it.
#
# Prints PASS/FAIL lines; exits 0 unless a tool fails or a total is wrong,
# 77 when something it needs is missing. Not part of make check.
#
# Environment: DMARCD, PYTHON3, BENCH_CACHE (keep generated inputs),
# BENCH_RECORDS (default 1000000), BENCH_SMALL (default 10000), BENCH_JOBS,
# DMARCD_SHARED_DIR (where tools/gen_aggregate.py is; default
# $top_srcdir/../shared).
set -u

: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
: "${DMARCD:=$top_builddir/collector/dmarcd}"
: "${PYTHON3:=python3}"
: "${BENCH_RECORDS:=1000000}"
: "${BENCH_SMALL:=10000}"
: "${BENCH_CACHE:=}"
GEN=${DMARCD_SHARED_DIR:-$top_srcdir/../shared}/tools/gen_aggregate.py
PG="$top_srcdir/tests/integration/pg.sh"
GNU_TIME=/usr/bin/time

skip() { echo "ingest-bench: skipped: $*"; exit 77; }
die() { echo "ingest-bench: $*" >&2; exit 1; }

[ -f "$GEN" ] || skip "no $GEN"
[ -x "$GNU_TIME" ] || skip "no GNU time at $GNU_TIME"
bindir=$(sh "$PG" bindir) || skip "no PostgreSQL binaries"
PSQL=$bindir/psql
[ -x "$PSQL" ] || PSQL=psql

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ingest-bench.XXXXXX") || exit 1
# Its own directory: the server runs as postgres, which cannot enter $tmp.
pgdir=$(mktemp -d "${TMPDIR:-/tmp}/ingest-bench-pg.XXXXXX") || exit 1
cleanup() { sh "$PG" stop "$pgdir" >/dev/null 2>&1; rm -rf "$tmp" "$pgdir"; }
trap cleanup EXIT INT TERM
cache=${BENCH_CACHE:-$tmp}
mkdir -p "$cache"
conn=$(sh "$PG" start "$pgdir") || die "cannot start PostgreSQL"
db() { echo "$conn" | sed "s/dbname=[^ ]*/dbname=$1/"; }

now() { date +%s.%N; }
# timed OUT CMD...: wall seconds and max RSS (KiB) of CMD into OUT.
timed() {
	out=$1; shift
	t0=$(now)
	"$GNU_TIME" -o "$tmp/time" -f '%M' "$@" >"$tmp/stdout" 2>"$tmp/stderr"
	rc=$?
	t1=$(now)
	echo "$t1 $t0 $(tail -n 1 "$tmp/time")" | awk '{ print $1 - $2, $3 }' >"$out"
	return $rc
}

# --- 1. one big gzip report ---
big=$cache/ingest-$BENCH_RECORDS-s7.xml.gz
if [ ! -s "$big" ]; then
	echo "ingest-bench: generating $BENCH_RECORDS records..."
	"$PYTHON3" "$GEN" --records "$BENCH_RECORDS" --seed 7 --gzip \
	    --out "$big.tmp" --stats "$big.json" && mv "$big.tmp" "$big" ||
	    die "gen_aggregate failed"
fi
"$PSQL" "$conn" -qc "CREATE DATABASE a" -c "CREATE DATABASE b" ||
    die "createdb failed"
A=$(db a)
"$DMARCD" migrate --db "$A" >/dev/null || die "migrate failed"
echo "ingest-bench: dmarcd ingest, $BENCH_RECORDS records (gzip)..."
timed "$tmp/t.ingest" "$DMARCD" ingest --no-progress --db "$A" "$big" ||
    die "dmarcd ingest failed: $(cat "$tmp/stderr")"
want=$("$PYTHON3" -c "import json,sys; d=json.load(open(sys.argv[1])); \
print(d['records'], d['messages'])" "$big.json")
got=$("$PSQL" "$A" -Atc "SELECT sum(record_count) || ' ' || \
sum(message_count) FROM dmarcd.reports")
rolled=$("$PSQL" "$A" -Atc "SELECT sum(messages) FROM dmarcd.rollup_daily")
[ "$got" = "$want" ] || die "stored '$got', generator says '$want'"
[ "$rolled" = "${want#* }" ] || die "rollups hold $rolled messages, not ${want#* }"

# The same rows, by psql \copy into tables of the same shape.
B=$(db b)
for t in records dkim_results spf_results; do
	"$PSQL" "$A" -qc "\\copy (SELECT * FROM dmarcd.$t) TO '$tmp/$t.copy'" ||
	    die "export of $t failed"
done
"$DMARCD" migrate --db "$B" >/dev/null || die "migrate b failed"
"$PSQL" "$B" -q -c "CREATE TABLE r (LIKE dmarcd.records INCLUDING ALL)" \
    -c "CREATE TABLE d (LIKE dmarcd.dkim_results INCLUDING ALL)" \
    -c "CREATE TABLE s (LIKE dmarcd.spf_results INCLUDING ALL)" ||
    die "create tables failed"
printf "%s\n" "ingest-bench: psql \\copy of the same rows..."
timed "$tmp/t.copy" "$PSQL" "$B" -q -c "\\copy r FROM '$tmp/records.copy'" \
    -c "\\copy d FROM '$tmp/dkim_results.copy'" \
    -c "\\copy s FROM '$tmp/spf_results.copy'" || die "psql copy failed"
rows=$(cat "$tmp"/*.copy | wc -l)

# --- 2. many small reports from a maildir ---
md=$cache/ingest-maildir-$BENCH_SMALL
if [ ! -d "$md/new" ]; then
	echo "ingest-bench: generating $BENCH_SMALL small report mails..."
	"$PYTHON3" "$top_srcdir/tests/bench/gen_small.py" "$md.tmp" \
	    "$BENCH_SMALL" 1 >"$md.json" && mv "$md.tmp" "$md" ||
	    die "gen_small failed"
fi
want=$("$PYTHON3" -c "import json,sys; d=json.load(open(sys.argv[1])); \
print(d['reports'], d['records'], d['messages'])" "$md.json")
: "${BENCH_JOBS:=$(nproc 2>/dev/null || echo 2)}"
[ "$BENCH_JOBS" -ge 2 ] 2>/dev/null || BENCH_JOBS=2
# small DB OUT [ingest options]: the maildir into a new database DB.
small() {
	sdb=$1
	sout=$2
	shift 2
	"$PSQL" "$conn" -qc "CREATE DATABASE $sdb" || die "createdb $sdb failed"
	S=$(db "$sdb")
	"$DMARCD" migrate --db "$S" >/dev/null || die "migrate $sdb failed"
	echo "ingest-bench: dmarcd ingest $*, maildir of $BENCH_SMALL reports..."
	timed "$sout" "$DMARCD" ingest --no-progress --quiet --db "$S" "$@" \
	    "$md" || die "dmarcd ingest (maildir) failed: $(cat "$tmp/stderr")"
	got=$("$PSQL" "$S" -Atc "SELECT count(*) || ' ' || sum(record_count) \
	    || ' ' || sum(message_count) FROM dmarcd.reports")
	[ "$got" = "$want" ] ||
	    die "maildir ($*): stored '$got', generator says '$want'"
}
small c "$tmp/t.small"
small e "$tmp/t.jobs" --jobs "$BENCH_JOBS"

read -r ti rss <"$tmp/t.ingest"
read -r tc _ <"$tmp/t.copy"
read -r ts srss <"$tmp/t.small"
read -r tj jrss <"$tmp/t.jobs"
awk -v ti="$ti" -v tc="$tc" -v ts="$ts" -v rss="$rss" -v srss="$srss" \
    -v tj="$tj" -v jrss="$jrss" -v jobs="$BENCH_JOBS" \
    -v n="$BENCH_RECORDS" -v rows="$rows" -v small="$BENCH_SMALL" 'BEGIN {
	printf "\n%-44s %9s %12s %9s\n", "", "wall s", "rows/s", "max RSS"
	printf "%-44s %9.2f %12.0f %7.1f Mi\n", "dmarcd ingest (1 gzip report, " n \
	    " records)", ti, rows / ti, rss / 1024
	printf "%-44s %9.2f %12.0f %9s\n", "psql \\copy of the same " rows " rows", \
	    tc, rows / tc, "-"
	printf "%-44s %9.2f %12s %7.1f Mi\n", "dmarcd ingest (maildir, " small \
	    " reports)", ts, sprintf("%.0f rep/s", small / ts), srss / 1024
	printf "%-44s %9.2f %12s %7.1f Mi\n", "  the same, --jobs " jobs, \
	    tj, sprintf("%.0f rep/s", small / tj), jrss / 1024
	printf "\ntargets:\n"
	r = tc / ti
	printf "%s  1 report of %d records: dmarcd %.2fx psql \\copy (target >= 0.6x)\n", \
	    (r >= 0.6 ? "PASS" : "FAIL"), n, r
	printf "%s  max RSS at %d records: %.1f MiB (target <= 32 MiB)\n", \
	    (rss / 1024 <= 32 ? "PASS" : "FAIL"), n, rss / 1024
	printf "%s  maildir of %d small reports, --jobs %d: %.0f reports/s (target >= 1000/s)\n", \
	    (small / tj >= 1000 ? "PASS" : "FAIL"), small, jobs, small / tj
	printf "info  the same with one process: %.0f reports/s (%.2fx the --jobs run)\n", \
	    small / ts, tj / ts
}'
exit 0
