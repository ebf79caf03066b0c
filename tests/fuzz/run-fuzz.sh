#!/bin/sh
# tests/fuzz/run-fuzz.sh - run each libFuzzer target for FUZZ_SECONDS
# (default 60) from its seeds; TAP, one line per target with its figures
# (seconds, executions, exec/s, coverage, corpus size: make check shows
# them), then all of them as a table of '#' comments, with libFuzzer's
# feature count and peak RSS.
#
# Short mode (make check): a fresh corpus in a temp dir per run. Long
# mode (make fuzz): FUZZ_CORPUS names a directory kept between runs,
# FUZZ_CORPUS/TARGET grows with every new input found.
#
# A crash, a leak, a sanitizer report, a timeout or running out of memory
# makes the target's line "not ok"; the reproducer is copied to
# tests/data/fuzz-regressions/TARGET/crash-SHA1 in the source tree (from
# then on replay.sh runs it in every build) and libFuzzer's log stays in
# $top_builddir/tests/fuzz/artifacts/TARGET.log.
. "$top_srcdir/tests/lib.sh"
seconds=${FUZZ_SECONDS:-60}
targets=${FUZZ_TARGETS:-"unpack aggregate mime dnsrec api config"}
artifacts=$top_builddir/tests/fuzz/artifacts
regressions_rel=tests/data/fuzz-regressions
regressions=$top_srcdir/$regressions_rel
mkdir -p "$artifacts"
table=$(mktemp)
trap 'rm -f "$table"' EXIT

# Inputs longer than this are not tried: large enough for each grammar.
max_len() {
	case $1 in
	dnsrec|api) echo 4096 ;;
	config) echo 16384 ;;
	*) echo 262144 ;;
	esac
}

for target in $targets; do
	bin=$top_builddir/tests/fuzz/fuzz_$target
	log=$artifacts/$target.log
	if [ ! -x "$bin" ]; then
		not_ok "fuzz_$target: not built"
		continue
	fi
	rm -f "$artifacts/$target-"*
	if [ -n "${FUZZ_CORPUS:-}" ]; then
		corpus=$FUZZ_CORPUS/$target
		work=
		mkdir -p "$corpus"
	else
		work=$(mktemp -d)
		corpus=$work
	fi
	# Seeds and known regressions start every run.
	set --
	for dir in "$top_srcdir/tests/fuzz/seeds/$target" "$regressions/$target"
	do
		[ -d "$dir" ] && set -- "$@" "$dir"
	done
	start=$(date +%s)
	"$bin" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 \
	    -max_len="$(max_len "$target")" -print_final_stats=1 \
	    -artifact_prefix="$artifacts/$target-" "$corpus" "$@" \
	    >"$log" 2>&1
	rc=$?
	took=$(($(date +%s) - start))
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
	rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log")
	last=$(grep -E '^#[0-9]+' "$log" | tail -1)
	cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
	ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
	corp=$(echo "$last" | sed -n 's/.* corp: \([0-9]*\).*/\1/p')
	printf '# %-10s %6s %12s %8s %7s %7s %7s %6s\n' "$target" "$took" \
	    "${runs:-?}" "${speed:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" \
	    "${rss:-?}" >>"$table"
	# The TAP line has the figures too: make check shows it.
	figures="${took}s, ${runs:-?} runs, ${speed:-?} exec/s, cov ${cov:-?},"
	figures="$figures corpus ${corp:-?}"
	if [ "$rc" -eq 0 ] && grep -q 'runtime error:' "$log"; then
		rc=1	# UBSan reported and recovered: a failure all the same
	fi
	if [ "$rc" -eq 0 ]; then
		ok "fuzz_$target: $figures, no crash"
	else
		saved=
		for found in "$artifacts/$target-"*; do
			[ -f "$found" ] || continue
			name=$target/crash-$(sha1sum <"$found" | cut -c1-40)
			mkdir -p "$regressions/$target" 2>/dev/null
			if cp "$found" "$regressions/$name" 2>/dev/null; then
				saved="$saved $regressions_rel/$name"
			else
				saved="$saved $found (source tree not writable)"
			fi
		done
		not_ok "fuzz_$target: $figures, failed (exit $rc; log $log)"
		grep -m8 -E 'ERROR|SUMMARY|Test unit written|fuzz_[a-z]*:' \
		    "$log" | sed 's/^/# /'
		if [ -n "$saved" ]; then
			echo "# reproducer saved:$saved"
			echo "# add it to git, fix the bug: replay.sh runs it"
		fi
	fi
	[ -n "$work" ] && rm -rf "$work"
done
echo "# figures (run-fuzz.sh, ${seconds}s per target):"
printf '# %-10s %6s %12s %8s %7s %7s %7s %6s\n' target seconds executions \
    'exec/s' cov ft corpus rss_mb
cat "$table"
tap_done
