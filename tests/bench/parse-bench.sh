#!/bin/sh
#
# parse-bench.sh - how fast and how small `dmarcd parse` is, against floors.
#
# Generates aggregate reports of 10k, 100k and 1M records with
# gen_aggregate.py (fixed seed, plain XML and gzip) and measures, side by side
# in one run:
#
#   plain XML:  dmarcd parse --format summary FILE
#               sax_floor FILE              (bare libxml2 SAX2 push counter:
#                                            the floor)
#               xmllint --stream --noout FILE
#   gzip:       dmarcd parse --format summary FILE.gz
#               gunzip -c FILE.gz | sax_floor -   (the gzip floor)
#
# Each command runs BENCH_REPEAT times (default 3), round robin; the table
# shows the best (minimum) wall time, the minimum CPU time (user + sys, all
# processes of a pipeline) and the largest max RSS seen.  MB/s is 10^6 bytes
# of uncompressed XML per second, for gzip too; "vs floor" is the floor's
# wall time over the tool's (1.00x = as fast as the floor).
#
# Targets (from the issue), printed as PASS/FAIL lines:
#   plain: dmarcd >= 0.85x sax_floor throughput, at every size;
#   gzip:  dmarcd >= 0.85x gunzip|sax_floor throughput, at every size;
#   max RSS of dmarcd <= 16 MiB at the largest size (1M records);
#   max RSS of dmarcd at the largest size - at the smallest <= 2 MiB.
#
# It is a measurement, not a test: a missed target prints FAIL and the script
# still exits 0.  It exits 1 only when a tool fails (non-zero exit) or counts
# records or messages differently from the generator's --stats ground truth,
# and 77 (skip) when something it needs is missing.  Not part of make check.
#
# Usage:  make bench
#    or:  tests/bench/parse-bench.sh	(from anywhere, before make bench too)
#
# Environment (all optional):
#   DMARCD            dmarcd binary (default $top_builddir/collector/dmarcd)
#   SAX_FLOOR         floor binary (default $top_builddir/tests/bench/sax_floor;
#                     when it does not exist it is compiled into the temp
#                     dir with ${CC:-cc} -O2 and pkg-config libxml-2.0)
#   XMLLINT, PYTHON3  default: found in PATH
#   DMARCD_SHARED_DIR where tools/gen_aggregate.py is (default
#                     $top_srcdir/../shared); absent: skip
#   BENCH_CACHE       keep generated reports in this directory and reuse them
#                     (1M records: about 820 MB of XML plus 24 MB of gzip);
#                     default: a temp dir removed on exit
#   BENCH_SIZES       record counts (default "10000 100000 1000000")
#   BENCH_REPEAT      runs per command (default 3)
#   BENCH_SEED        generator seed (default 7)
#   TMPDIR            where the temp dir goes
#
# Needs: python3, GNU time at /usr/bin/time (Debian: time), xmllint (Debian:
# libxml2-utils), gzip, and to build the floor libxml2 headers (libxml2-dev).
#
# Every command runs under GNU time (-f '%e %U %S %M').  Its %e has only
# 10 ms resolution, so wall time comes from `date +%s%N` around the run, less
# the "timer overhead": the same measurement of `/usr/bin/time true` (best of
# 5), i.e. date, time and one exec; what is left still counts the tool's own
# start-up (dynamic linking and so on), which matters at 10k records.
# Without GNU date's %N it falls back to %e.  Max RSS is GNU time's %M: for
# a pipeline, the largest of its processes (not their sum).

set -u

: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
: "${DMARCD:=$top_builddir/collector/dmarcd}"
: "${SAX_FLOOR:=$top_builddir/tests/bench/sax_floor}"
: "${PYTHON3:=python3}"
: "${XMLLINT:=xmllint}"
: "${BENCH_SIZES:=10000 100000 1000000}"
: "${BENCH_REPEAT:=3}"
: "${BENCH_SEED:=7}"
: "${BENCH_CACHE:=}"
SHARED_DIR=${DMARCD_SHARED_DIR:-$top_srcdir/../shared}
GEN=$SHARED_DIR/tools/gen_aggregate.py
# Not $TIME: GNU time reads that variable as its format.
GNU_TIME=/usr/bin/time

skip()
{
	echo "parse-bench: SKIP: $*" >&2
	exit 77
}

die()
{
	echo "parse-bench: $*" >&2
	exit 1
}

[ -f "$GEN" ] || skip "no generator at $GEN (set DMARCD_SHARED_DIR)"
command -v "$PYTHON3" >/dev/null 2>&1 || skip "python3 not found"
command -v gzip >/dev/null 2>&1 || skip "gzip not found"
"$GNU_TIME" -f '%e %M' -o /dev/null true 2>/dev/null ||
    skip "GNU time not at $GNU_TIME (Debian: apt-get install time)"
[ -x "$DMARCD" ] || skip "no dmarcd at $DMARCD (run make bench, or set DMARCD)"
if [ "$XMLLINT" = no ] || ! command -v "$XMLLINT" >/dev/null 2>&1; then
	echo "parse-bench: xmllint not found (Debian: libxml2-utils);" \
	    "its rows are left out" >&2
	XMLLINT=
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/parse-bench.XXXXXX") ||
    die "cannot create a temp dir"
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ ! -x "$SAX_FLOOR" ]; then
	floor_src=$top_srcdir/tests/bench/sax_floor.c
	echo "parse-bench: no $SAX_FLOOR; compiling $floor_src" >&2
	# shellcheck disable=SC2046
	"${CC:-cc}" -O2 $(pkg-config --cflags libxml-2.0) -o "$tmp/sax_floor" \
	    "$floor_src" $(pkg-config --libs libxml-2.0) ||
	    skip "cannot build sax_floor (Debian: libxml2-dev, pkg-config)"
	SAX_FLOOR=$tmp/sax_floor
fi

if [ -n "$BENCH_CACHE" ]; then
	mkdir -p "$BENCH_CACHE" || die "cannot create $BENCH_CACHE"
	data=$BENCH_CACHE
else
	data=$tmp
fi

# GNU date has %N (nanoseconds); elsewhere fall back to GNU time's %e.
case $(date +%N) in
*[!0-9]* | '') have_ns=0 ;;
*) have_ns=1 ;;
esac

now_ns()
{
	date +%s%N
}

raw=$tmp/raw		# one line per run: size input tool rep wall cpu rss
sizes=$tmp/sizes	# one line per size: records xml_bytes
: >"$raw"
: >"$sizes"
tool_error=0

# generate N: make agg-N-sSEED.{xml.gz,xml,json} in $data unless there.  The
# generator writes the same bytes plain or gzipped, so the plain file is
# the gunzipped .xml.gz (faster than generating twice).
generate()
{
	g_base=$data/agg-$1-s$BENCH_SEED
	if [ -s "$g_base.xml.gz" ] && [ -s "$g_base.xml" ] &&
	    [ -s "$g_base.json" ]; then
		return 0
	fi
	echo "parse-bench: generating $1 records (seed $BENCH_SEED)..." >&2
	"$PYTHON3" "$GEN" --records "$1" --seed "$BENCH_SEED" --gzip \
	    --out "$g_base.xml.gz.tmp" --stats "$g_base.json.tmp" ||
	    die "gen_aggregate.py failed"
	gzip -dc "$g_base.xml.gz.tmp" >"$g_base.xml.tmp" ||
	    die "gunzip of the generated report failed"
	for g_ext in xml.gz xml json; do
		mv "$g_base.$g_ext.tmp" "$g_base.$g_ext" ||
		    die "cannot store $g_base.$g_ext"
	done
}

# stats FILE KEY: a top-level number from the generator's ground truth.
stats()
{
	"$PYTHON3" -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' \
	    "$1" "$2"
}

# measure SIZE INPUT TOOL REP CMD...: run CMD once under GNU time and append
# its line to $raw.  Its standard output stays in $tmp/out for the checks.
measure()
{
	m_size=$1 m_input=$2 m_tool=$3 m_rep=$4
	shift 4
	m_start=0
	[ "$have_ns" -eq 1 ] && m_start=$(now_ns)
	"$GNU_TIME" -f '%e %U %S %M' -o "$tmp/time" "$@" \
	    >"$tmp/out" 2>"$tmp/err"
	m_status=$?
	m_end=0
	[ "$have_ns" -eq 1 ] && m_end=$(now_ns)
	if [ "$m_status" -ne 0 ]; then
		echo "parse-bench: $m_tool on $m_input of $m_size records" \
		    "exited $m_status:" >&2
		head -n 5 "$tmp/err" | sed 's/^/    /' >&2
		tool_error=1
		return 1
	fi
	# GNU time prefixes a line when the status is non-zero: take the last.
	tail -n 1 "$tmp/time" | awk -v size="$m_size" -v input="$m_input" \
	    -v tool="$m_tool" -v rep="$m_rep" -v ns="$have_ns" \
	    -v start="$m_start" -v end="$m_end" '{
		wall = ns ? (end - start) / 1e9 : $1
		printf "%s %s %s %s %.6f %.2f %s\n", size, input, tool, rep,
		    wall, $2 + $3, $4
	}' >>"$raw"
}

# check_counts SIZE INPUT TOOL WANT_RECORDS WANT_MESSAGES: compare what the
# tool printed in $tmp/out with the ground truth.
check_counts()
{
	case $3 in
	dmarcd)
		c_got=$("$PYTHON3" -c '
import json, sys
line = json.loads(sys.stdin.readline())
print(line["records"], line["messages"])' <"$tmp/out" 2>/dev/null) ;;
	*)
		c_got=$(sed -n 's/^records=\([0-9]*\) messages=\([0-9]*\)$/\1 \2/p' \
		    "$tmp/out") ;;
	esac
	if [ "$c_got" != "$4 $5" ]; then
		echo "parse-bench: $3 on $2 of $1 records counted" \
		    "'${c_got:-nothing}', generator says records=$4" \
		    "messages=$5" >&2
		tool_error=1
	fi
}

# Timer overhead: GNU time running true, measured like the tools.
overhead=$(
	best=
	for rep in 1 2 3 4 5; do
		[ "$have_ns" -eq 1 ] || break
		s=$(now_ns)
		"$GNU_TIME" -f '%e' -o /dev/null true
		e=$(now_ns)
		d=$((e - s))
		if [ -z "$best" ] || [ "$d" -lt "$best" ]; then
			best=$d
		fi
	done
	echo "${best:-0}"
)

# Other work on the machine skews everything: show the load around the runs.
loadavg()
{
	cut -d ' ' -f 1-3 /proc/loadavg 2>/dev/null || echo '?'
}
load_start=

for size in $BENCH_SIZES; do
	generate "$size"
	[ -n "$load_start" ] || load_start=$(loadavg)
	base=$data/agg-$size-s$BENCH_SEED
	want_records=$(stats "$base.json" records)
	want_messages=$(stats "$base.json" messages)
	[ "$want_records" = "$size" ] ||
	    die "generator wrote $want_records records, asked $size"
	echo "$size $(wc -c <"$base.xml" | tr -d ' ')" >>"$sizes"
	# Warm the page cache so that the first run is not the disk's.
	cat "$base.xml" "$base.xml.gz" >/dev/null

	rep=1
	while [ "$rep" -le "$BENCH_REPEAT" ]; do
		echo "parse-bench: $size records, run $rep of $BENCH_REPEAT" >&2
		measure "$size" xml dmarcd "$rep" \
		    "$DMARCD" parse --format summary "$base.xml" &&
		    check_counts "$size" xml dmarcd "$want_records" \
		    "$want_messages"
		measure "$size" xml sax_floor "$rep" "$SAX_FLOOR" "$base.xml" &&
		    check_counts "$size" xml sax_floor "$want_records" \
		    "$want_messages"
		if [ -n "$XMLLINT" ]; then
			measure "$size" xml xmllint "$rep" \
			    "$XMLLINT" --stream --noout "$base.xml"
		fi
		measure "$size" gzip dmarcd "$rep" \
		    "$DMARCD" parse --format summary "$base.xml.gz" &&
		    check_counts "$size" gzip dmarcd "$want_records" \
		    "$want_messages"
		# gzip -dc is gunzip -c without Debian's wrapper script.
		# shellcheck disable=SC2016
		measure "$size" gzip 'gunzip|sax_floor' "$rep" \
		    sh -c 'gzip -dc "$1" | "$2" -' sh "$base.xml.gz" \
		    "$SAX_FLOOR" &&
		    check_counts "$size" gzip 'gunzip|sax_floor' "$want_records" \
		    "$want_messages"
		rep=$((rep + 1))
	done
done

echo
echo "dmarcd parse benchmark: $(uname -sm), $(getconf _NPROCESSORS_ONLN 2>/dev/null || echo '?') CPUs," \
    "best of $BENCH_REPEAT runs, seed $BENCH_SEED"
echo "load average: $load_start at the first run, $(loadavg) after the last"
echo "dmarcd:    $DMARCD"
echo "sax_floor: $SAX_FLOOR ($(xml2-config --version 2>/dev/null ||
    pkg-config --modversion libxml-2.0 2>/dev/null || echo libxml2))"
awk -v overhead="$overhead" 'BEGIN {
	printf "timer overhead (GNU time running true, best of 5): %.1f ms," \
	    " taken off every wall time\n\n", overhead / 1e6
}'

awk -v sizes_file="$sizes" -v overhead="$overhead" '
BEGIN {
	nsizes = 0
	while ((getline line < sizes_file) > 0) {
		split(line, f, " ")
		size_list[++nsizes] = f[1]
		xml_bytes[f[1]] = f[2]
	}
	ntools = split("xml dmarcd,xml sax_floor,xml xmllint," \
	    "gzip dmarcd,gzip gunzip|sax_floor", tool_list, ",")
	name["xml dmarcd"] = "dmarcd parse"
	name["xml sax_floor"] = "sax_floor"
	name["xml xmllint"] = "xmllint --stream"
	name["gzip dmarcd"] = "dmarcd parse"
	name["gzip gunzip|sax_floor"] = "gunzip|sax_floor"
	floor_of["xml"] = "xml sax_floor"
	floor_of["gzip"] = "gzip gunzip|sax_floor"
}
{
	key = $1 " " $2 " " $3
	# Net of the timer overhead, but never zero (ratios divide by it).
	net = $5 - overhead / 1e9
	if (net < 0.0001)
		net = 0.0001
	if (!(key in wall) || net < wall[key])
		wall[key] = net
	if (!(key in cpu) || $6 < cpu[key])
		cpu[key] = $6
	if (!(key in rss) || $7 > rss[key])
		rss[key] = $7
}
function mib(kib) { return kib / 1024 }
function status(ok) { return ok ? "PASS" : "FAIL" }
END {
	printf "%-8s %-5s %-17s %8s %8s %8s %11s %8s %8s\n", "records",
	    "input", "tool", "wall s", "cpu s", "MB/s", "records/s",
	    "RSS MiB", "vs floor"
	for (s = 1; s <= nsizes; s++) {
		size = size_list[s]
		for (t = 1; t <= ntools; t++) {
			split(tool_list[t], kt, " ")
			key = size " " tool_list[t]
			if (!(key in wall))
				continue
			fkey = size " " floor_of[kt[1]]
			ratio = "-"
			if (fkey in wall)
				ratio = sprintf("%.2fx", wall[fkey] / wall[key])
			printf "%-8s %-5s %-17s %8.3f %8.2f %8.1f %11.0f " \
			    "%8.1f %8s\n", size, kt[1], name[tool_list[t]],
			    wall[key], cpu[key],
			    xml_bytes[size] / 1e6 / wall[key],
			    size / wall[key], mib(rss[key]), ratio
		}
	}

	print ""
	print "targets:"
	for (s = 1; s <= nsizes; s++) {
		size = size_list[s]
		key = size " xml dmarcd"
		fkey = size " xml sax_floor"
		if ((key in wall) && (fkey in wall)) {
			r = wall[fkey] / wall[key]
			printf "%s  plain, %s records: dmarcd %.2fx sax_floor" \
			    " (target >= 0.85x)\n", status(r >= 0.85), size, r
		}
	}
	for (s = 1; s <= nsizes; s++) {
		size = size_list[s]
		key = size " gzip dmarcd"
		fkey = size " gzip gunzip|sax_floor"
		if ((key in wall) && (fkey in wall)) {
			r = wall[fkey] / wall[key]
			printf "%s  gzip,  %s records: dmarcd %.2fx" \
			    " gunzip|sax_floor (target >= 0.85x)\n",
			    status(r >= 0.85), size, r
		}
	}
	small = size_list[1]
	large = size_list[nsizes]
	split("xml gzip", inputs, " ")
	for (i = 1; i <= 2; i++) {
		key = large " " inputs[i] " dmarcd"
		if (key in rss)
			printf "%s  %-5s max RSS at %s records: %.1f MiB" \
			    " (target <= 16 MiB)\n",
			    status(mib(rss[key]) <= 16), inputs[i], large,
			    mib(rss[key])
	}
	for (i = 1; i <= 2; i++) {
		key = large " " inputs[i] " dmarcd"
		skey = small " " inputs[i] " dmarcd"
		if ((key in rss) && (skey in rss) && nsizes > 1) {
			d = mib(rss[key] - rss[skey])
			printf "%s  %-5s max RSS growth %s -> %s records:" \
			    " %+.1f MiB (target <= 2 MiB)\n",
			    status(d <= 2), inputs[i], small, large, d
		}
	}

	# With several CPUs the gzip floor runs gunzip and sax_floor at once,
	# while dmarcd inflates and parses in one thread: show the CPU view.
	print ""
	print "info: CPU seconds, gzip (floor pipeline = gunzip + sax_floor):"
	for (s = 1; s <= nsizes; s++) {
		size = size_list[s]
		key = size " gzip dmarcd"
		fkey = size " gzip gunzip|sax_floor"
		if ((key in cpu) && (fkey in cpu) && cpu[key] > 0)
			printf "      %s records: dmarcd %.2f s, floor %.2f s," \
			    " dmarcd %.2fx floor by CPU\n", size, cpu[key],
			    cpu[fkey], cpu[fkey] / cpu[key]
	}
}' "$raw"

if [ "$tool_error" -ne 0 ]; then
	echo
	echo "parse-bench: a tool failed or miscounted (see above)"
	exit 1
fi
exit 0
