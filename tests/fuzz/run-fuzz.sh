#!/bin/sh
# tests/fuzz/run-fuzz.sh - run each libFuzzer target for FUZZ_SECONDS
# (default 60) from its seed corpus; TAP, one line per target. A crash,
# a leak, a sanitizer report or a timeout makes the target's line "not ok"
# and leaves the reproducer in $top_builddir/tests/fuzz/artifacts.
. "$top_srcdir/tests/lib.sh"
seconds=${FUZZ_SECONDS:-60}
artifacts=$top_builddir/tests/fuzz/artifacts
mkdir -p "$artifacts"
for target in unpack aggregate mime; do
	bin=$top_builddir/tests/fuzz/fuzz_$target
	if [ ! -x "$bin" ]; then
		not_ok "fuzz_$target: not built"
		continue
	fi
	work=$(mktemp -d)
	cp "$top_srcdir"/tests/fuzz/seeds/$target/* "$work"/ 2>/dev/null
	if "$bin" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 \
	    -max_len=262144 -print_final_stats=1 \
	    -artifact_prefix="$artifacts/$target-" "$work" \
	    >"$artifacts/$target.log" 2>&1; then
		runs=$(sed -n 's/^stat::number_of_executed_units: *//p' \
		    "$artifacts/$target.log")
		ok "fuzz_$target ran ${seconds}s, ${runs:-?} inputs, no crash"
	else
		not_ok "fuzz_$target found a crash (see $artifacts/$target.log)"
		grep -m5 -E 'ERROR|SUMMARY|Test unit written' \
		    "$artifacts/$target.log" | sed 's/^/# /'
	fi
	rm -rf "$work"
done
tap_done
