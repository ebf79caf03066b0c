#!/bin/sh
# adversarial.sh - hostile inputs must fail cleanly, cheaply and clearly.
#
# Runs `dmarcd parse --format summary ARGS FILE` on every case in
# tests/data/adversarial (NAME.EXT with a sidecar NAME.expect, see
# make-cases.py for the format) and checks, one TAP line each:
#   run      no crash (no signal, no sanitizer report) and no hang (60 s)
#   time     CPU time (user + sys, from /usr/bin/time) within the case's
#            "seconds:" (default 2, DMARCD_MAX_SECONDS); skipped in a
#            sanitizer build, whose instrumentation costs several times
#   exit     the exit status the case expects (65 for a rejected input)
#   summary  exactly one JSON object for the file, with the expected kind,
#            errors matching the case's regex, warnings, records; errors
#            present whenever the exit status is not 0
#   stderr   an error line "dmarcd: FILE:" naming the input (exit != 0)
#   rss      maximum resident set under 64 MiB (DMARCD_MAX_RSS_KB);
#            skipped in a sanitizer build (shadow memory)
#   files    nothing written to the working directory or TMPDIR, and no
#            file created where a zip member name points
# Set DMARCD_ADVERSARIAL=NAME to run one case. At the end a table of the
# figures (case, CPU seconds, max RSS, exit, first error) is printed as
# TAP comments, with the worst of each column against its bound.
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$top_srcdir/tests/lib.sh"

dir=$top_srcdir/tests/data/adversarial
max_rss_kb=${DMARCD_MAX_RSS_KB:-65536}
max_seconds=${DMARCD_MAX_SECONDS:-2}
time_bin=/usr/bin/time

if [ ! -x "$DMARCD" ]; then
	echo "1..0 # SKIP $DMARCD not built"
	exit 0
fi
if ! "$PYTHON3" -c 'import json, re, sys' 2>/dev/null; then
	echo "1..0 # SKIP python3 needed to read the JSON summary"
	exit 0
fi
if [ ! -x "$time_bin" ] ||
    ! "$time_bin" -f '%U %S %M' -o /dev/null true 2>/dev/null
then
	time_bin=
fi
# A sanitizer build pays shadow memory: its RSS says nothing about ours.
if grep -q -a -e __asan_init -e __msan_init "$DMARCD" 2>/dev/null; then
	sanitized=1
else
	sanitized=0
fi

scratch=$(mktemp -d "${TMPDIR:-/tmp}/dmarcd-adversarial.XXXXXX") || exit 99
trap 'rm -rf "$scratch"' EXIT INT TERM
out=$scratch/out
mkdir "$out"
# One line per case for the closing table: name cpu rss exit first-error.
figures=$scratch/figures
: >"$figures"

# Targets a zip member name could reach if anything ever wrote it out.
escape_targets="/etc/passwd.xml /tmp/dmarcd-adversarial-absolute.xml"
present_before=
for t in $escape_targets; do
	[ -e "$t" ] && present_before="$present_before $t"
done

# check_summary SUMMARY EXPECT INPUT EXIT: print "ok" or the problems.
check_summary() {
	"$PYTHON3" - "$@" <<'EOF'
import json, re, sys

summary_path, expect_path, input_path, status = sys.argv[1:5]
status = int(status)
expect = {}
for line in open(expect_path, encoding="utf-8"):
    line = line.rstrip("\n")
    if not line or line.startswith("#"):
        continue
    key, _, value = line.partition(":")
    expect[key.strip()] = value.strip()

problems = []
lines = [l for l in open(summary_path, encoding="utf-8", errors="replace")
         if l.strip()]
if len(lines) != 1:
    problems.append("expected 1 summary line, got %d" % len(lines))
obj = None
if lines:
    try:
        obj = json.loads(lines[0])
    except ValueError as e:
        problems.append("summary is not JSON (%s): %.200s" % (e, lines[0]))
if obj is not None and not isinstance(obj, dict):
    problems.append("summary is not an object")
    obj = None
if obj is not None:
    errors = obj.get("errors")
    warnings = obj.get("warnings")
    if not isinstance(errors, list) or not isinstance(warnings, list):
        problems.append("errors/warnings are not arrays")
        errors = errors if isinstance(errors, list) else []
        warnings = warnings if isinstance(warnings, list) else []
    joined_errors = "\n".join(str(e) for e in errors)
    joined_warnings = "\n".join(str(w) for w in warnings)
    if obj.get("file") != input_path:
        problems.append("file is %r, not the input path" % obj.get("file"))
    if "kind" in expect and obj.get("kind") != expect["kind"]:
        problems.append("kind is %r, expected %r"
                        % (obj.get("kind"), expect["kind"]))
    if status != 0 and not errors:
        problems.append("exit %d but the errors array is empty" % status)
    if status == 0 and errors:
        problems.append("exit 0 but errors: %.300s" % joined_errors)
    if "error" in expect and not re.search(expect["error"], joined_errors,
                                           re.S | re.M):
        problems.append("errors %s do not match /%s/"
                        % (json.dumps(errors)[:600], expect["error"]))
    if "warning" in expect and not re.search(expect["warning"],
                                             joined_warnings, re.S | re.M):
        problems.append("warnings %s do not match /%s/"
                        % (json.dumps(warnings)[:600], expect["warning"]))
    if "records" in expect and obj.get("records") != int(expect["records"]):
        problems.append("records is %r, expected %s"
                        % (obj.get("records"), expect["records"]))
    for key in ("reports", "records", "messages"):
        value = obj.get(key)
        if value is not None and (not isinstance(value, int) or value < 0):
            problems.append("%s is %r: not a count" % (key, value))
print("ok" if not problems else "; ".join(problems))
EOF
}

for expect in "$dir"/*.expect; do
	name=$(basename "$expect" .expect)
	if [ -n "${DMARCD_ADVERSARIAL:-}" ] &&
	    [ "$name" != "$DMARCD_ADVERSARIAL" ]; then
		continue
	fi
	input=
	for f in "$dir/$name".*; do
		case $f in *.expect) continue ;; esac
		if [ -n "$input" ]; then
			not_ok "$name: more than one data file for one .expect"
			continue 2
		fi
		input=$f
	done
	if [ -z "$input" ] || [ ! -f "$input" ]; then
		not_ok "$name: no data file beside $name.expect"
		continue
	fi
	args=$(sed -n 's/^args:[[:space:]]*//p' "$expect")
	want_exit=$(sed -n 's/^exit:[[:space:]]*//p' "$expect")
	: "${want_exit:=65}"
	want_seconds=$(sed -n 's/^seconds:[[:space:]]*//p' "$expect")
	: "${want_seconds:=$max_seconds}"

	# A fresh, empty working directory and TMPDIR three levels down, so
	# that ../../x from a member name still lands inside $scratch/run.
	rm -rf "$scratch/run"
	work=$scratch/run/a/b/c
	mkdir -p "$work" "$scratch/run/tmp"
	# shellcheck disable=SC2086 # args are words by design
	if [ -n "$time_bin" ]; then
		(cd "$work" && TMPDIR=$scratch/run/tmp \
		    "$time_bin" -f '%e %U %S %M' -o "$out/rss" \
		    timeout 60 "$DMARCD" parse --format summary $args "$input" \
		    >"$out/stdout" 2>"$out/stderr")
		status=$?
	else
		started=$(date +%s)
		(cd "$work" && TMPDIR=$scratch/run/tmp \
		    timeout 60 "$DMARCD" parse --format summary $args "$input" \
		    >"$out/stdout" 2>"$out/stderr")
		status=$?
		wall=$(($(date +%s) - started))
		echo "$wall $wall 0 -" >"$out/rss"
	fi
	# "%e %U %S %M" (GNU time puts a status line above it when exit != 0)
	# shellcheck disable=SC2046 # four numbers
	set -- $(tail -n 1 "$out/rss" 2>/dev/null) - - - -
	wall=$1
	rss=$4
	cpu=$(awk -v u="$2" -v s="$3" 'BEGIN { printf "%.2f", u + s }')
	cmd="dmarcd parse --format summary${args:+ $args} $input"

	# run: no signal, no hang, no sanitizer report.
	if [ "$status" -eq 124 ]; then
		not_ok "$name: hang (killed after 60 s): $cmd"
	elif [ "$status" -ge 128 ]; then
		not_ok "$name: crash (exit $status, signal $((status - 128))): $cmd"
		sed 's/^/# /' "$out/stderr" | tail -n 20
	elif grep -E -q 'AddressSanitizer|runtime error|LeakSanitizer' \
	    "$out/stderr"; then
		not_ok "$name: sanitizer report: $cmd"
		sed 's/^/# /' "$out/stderr" | head -n 30
	else
		ok "$name: no crash or hang (exit $status)"
	fi

	# time: bounded work for a small input, in CPU seconds (a loaded
	# machine stretches the wall clock, not the work done).
	if [ "$status" -eq 124 ]; then
		not_ok "$name: took over 60 s (limit $want_seconds s)"
	elif [ "$sanitized" = 1 ]; then
		skip "$name: CPU $cpu s (sanitizer build, no bound)"
	elif awk -v e="$cpu" -v m="$want_seconds" \
	    'BEGIN { exit !(e + 0 <= m + 0) }'; then
		ok "$name: CPU $cpu s <= $want_seconds s (wall $wall s)"
	else
		not_ok "$name: CPU $cpu s, more than $want_seconds s: $cmd"
	fi

	# exit: the documented status.
	if [ "$status" = "$want_exit" ]; then
		ok "$name: exit $want_exit"
	else
		not_ok "$name: exit $status, expected $want_exit: $cmd"
		sed 's/^/# stderr: /' "$out/stderr" | head -n 5
	fi

	# summary: kind, errors, warnings, records.
	verdict=$(check_summary "$out/stdout" "$expect" "$input" "$status" 2>&1)
	if [ "$verdict" = ok ]; then
		ok "$name: summary as expected"
	else
		not_ok "$name: summary: $verdict"
	fi

	# stderr: the error line names the input.
	if [ "$want_exit" = 0 ] && [ "$status" = 0 ]; then
		ok "$name: stderr (nothing required on success)"
	elif grep -F -q "dmarcd: $input:" "$out/stderr"; then
		ok "$name: stderr names the input"
	else
		not_ok "$name: no 'dmarcd: $input:' line on stderr"
		sed 's/^/# stderr: /' "$out/stderr" | head -n 5
	fi

	# rss: memory stays flat whatever the input claims.
	if [ -z "$time_bin" ]; then
		skip "$name: max RSS (no /usr/bin/time)"
	elif [ "$sanitized" = 1 ]; then
		skip "$name: max RSS (sanitizer build)"
	else
		case $rss in
		'' | *[!0-9]*)
			not_ok "$name: max RSS unknown ($(tail -n 1 "$out/rss"))" ;;
		*)
			if [ "$rss" -lt "$max_rss_kb" ]; then
				ok "$name: max RSS $rss KiB < $max_rss_kb KiB"
			else
				not_ok "$name: max RSS $rss KiB >= $max_rss_kb KiB: $cmd"
			fi ;;
		esac
	fi

	first_error=$("$PYTHON3" -c '
import json, sys
try:
    errors = json.loads(open(sys.argv[1]).readline()).get("errors") or []
except Exception:
    errors = []
print(" ".join(str(errors[0]).split())[:70] if errors else "-")
' "$out/stdout" 2>/dev/null)
	printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$cpu" "$rss" "$status" \
	    "${first_error:--}" >>"$figures"

	# files: parsing writes nothing, wherever a member name points.
	written=$(cd "$scratch/run" && find . -mindepth 1 \
	    ! -path ./a ! -path ./a/b ! -path ./a/b/c ! -path ./tmp -print |
	    head -n 5)
	escaped=
	for t in $escape_targets; do
		case " $present_before " in *" $t "*) continue ;; esac
		[ -e "$t" ] && escaped="$escaped $t"
	done
	if [ -z "$written$escaped" ]; then
		ok "$name: no file written"
	else
		# shellcheck disable=SC2086 # one line out of a list
		not_ok "$name: files written:" $written $escaped
	fi
done

if [ "${tap_n:-0}" -eq 0 ]; then
	echo "1..0 # SKIP no case matched"
	exit 0
fi

# The figures, as comments the TAP driver copies into the log.
"$PYTHON3" - "$figures" "$max_seconds" "$max_rss_kb" "$sanitized" <<'EOF'
import sys

path, max_seconds, max_rss_kb, sanitized = sys.argv[1:5]
max_seconds, max_rss_kb = float(max_seconds), int(max_rss_kb)
rows = [l.rstrip("\n").split("\t") for l in open(path) if l.strip()]
print("# %-34s %6s %9s %4s  %s" % ("case", "cpu s", "rss KiB", "exit",
                                    "error"))
for name, cpu, rss, status, error in rows:
    print("# %-34s %6s %9s %4s  %s" % (name, cpu, rss, status, error))


def num(text):
    try:
        return float(text)
    except ValueError:
        return None


cpus = [(num(r[1]), r[0]) for r in rows if num(r[1]) is not None]
rsss = [(num(r[2]), r[0]) for r in rows if num(r[2]) is not None]
worst = []
if cpus:
    cpu, name = max(cpus)
    worst.append("%.2f s of %g s (%.2fx, %s)"
                 % (cpu, max_seconds, cpu / max_seconds, name))
if rsss:
    rss, name = max(rsss)
    worst.append("%.1f MiB of %g MiB (%.2fx, %s)"
                 % (rss / 1024, max_rss_kb / 1024, rss / max_rss_kb, name))
note = " (sanitizer build: not held to the bounds)" if sanitized == "1" \
    else ""
print("# %d cases; worst: %s%s" % (len(rows), ", ".join(worst) or "-", note))
EOF
tap_done
