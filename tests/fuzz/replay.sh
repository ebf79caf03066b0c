#!/bin/sh
# tests/fuzz/replay.sh - every fuzz target's seeds and regression files
# (tests/data/fuzz-regressions/TARGET) through replay_TARGET, in every
# build: TAP, one line per target. A crash, a sanitizer report (ASan,
# UBSan, LeakSanitizer in a sanitizer build) or an input that cannot be
# read fails the target's line, naming the input.
. "$top_srcdir/tests/lib.sh"
targets="unpack aggregate mime dnsrec api config"
regressions=$top_srcdir/tests/data/fuzz-regressions
for target in $targets; do
	bin=$top_builddir/tests/fuzz/replay_$target
	if [ ! -x "$bin" ]; then
		not_ok "replay_$target: not built"
		continue
	fi
	set --
	for dir in "$top_srcdir/tests/fuzz/seeds/$target" "$regressions/$target"
	do
		[ -d "$dir" ] && set -- "$@" "$dir"
	done
	if [ $# -eq 0 ]; then
		not_ok "replay_$target: no seeds nor regression files"
		continue
	fi
	log=$(mktemp)
	"$bin" "$@" >"$log" 2>&1
	rc=$?
	count=$(sed -n 's/^replayed \([0-9]*\) inputs$/\1/p' "$log")
	# A UBSan report fails the line even in a build where UBSan recovers.
	if [ "$rc" -eq 0 ] && [ -n "$count" ] && [ "$count" -gt 0 ] &&
	    ! grep -q 'runtime error:' "$log"; then
		ok "replay_$target: $count inputs, no crash"
	else
		last=$(grep '^replay ' "$log" | tail -1 | sed 's/^replay //')
		not_ok "replay_$target: exit $rc on ${last:-?}"
		grep -m8 -E 'ERROR|SUMMARY|runtime error|fuzz_[a-z]*:|replay:' \
		    "$log" | sed 's/^/# /'
	fi
	rm -f "$log"
done
tap_done
