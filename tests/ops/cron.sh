#!/bin/sh
# cron.sh - the cron file's lines parse, and their command runs.
#
# contrib/cron/dmarcd (as make built it) has its crontab lines commented
# out: "#m h dom mon dow user command" for /etc/cron.d, and "#   m h dom
# mon dow command" for a user crontab. Each is checked: five time fields
# in range (or an @keyword), the user dmarcd where cron.d wants one, the
# binary at $(bindir)/dmarcd, flock on PATH. The fetch command is then run
# with the built binary, PostgreSQL unreachable: it must get past option
# parsing to the database (exit 75), and exit at once, without running
# dmarcd, while another pass holds the lock. Broken lines (a sixth time
# field, minute 60, no user) must be refused by the same checks.
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$top_srcdir/tests/lib.sh"

cronfile=$top_builddir/contrib/cron/dmarcd
if [ ! -x "$DMARCD" ] || [ ! -f "$cronfile" ]; then
	echo "1..0 # SKIP $DMARCD or $cronfile not built"
	exit 0
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/dmarcd-cron.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

# The bindir make substituted, asked of make itself.
bindir=$(cd "$top_builddir" && printf 'ops-print-%%:\n\t@echo $($*)\n' |
    env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL ${MAKE:-make} -s -f Makefile \
    -f - ops-print-bindir 2>/dev/null)
if [ -z "$bindir" ]; then
	echo "1..0 # SKIP cannot ask make for bindir"
	exit 0
fi

# check_line KIND LINE - 0 when LINE is a valid crontab entry for KIND
# (system: with a user field; user: without); prints why not. On
# success, the command is left in $tmp/command.
check_line() {
	printf '%s\n' "$2" | awk -v kind="$1" '
	function field_ok(f, lo, hi,    items, n, i, item, step, range, r) {
		n = split(f, items, ",")
		for (i = 1; i <= n; i++) {
			item = items[i]; step = ""
			if (item ~ /\//) {
				split(item, r, "/"); item = r[1]; step = r[2]
				if (step !~ /^[0-9]+$/ || step + 0 < 1)
					return 0
			}
			if (item == "*")
				continue
			if (item ~ /^[0-9]+$/) {
				if (item + 0 < lo || item + 0 > hi)
					return 0
				continue
			}
			if (item ~ /^[0-9]+-[0-9]+$/) {
				split(item, range, "-")
				if (range[1] + 0 < lo || range[2] + 0 > hi ||
				    range[1] + 0 > range[2] + 0)
					return 0
				continue
			}
			return 0
		}
		return 1
	}
	{
		n = split($0, f, /[ \t]+/)
		if (f[1] ~ /^@(reboot|yearly|annually|monthly|weekly|daily|hourly)$/) {
			first = 2
		} else {
			if (n < 6) { print "fewer than six fields"; exit 1 }
			lo[1] = 0; hi[1] = 59; lo[2] = 0; hi[2] = 23
			lo[3] = 1; hi[3] = 31; lo[4] = 1; hi[4] = 12
			lo[5] = 0; hi[5] = 7
			for (i = 1; i <= 5; i++)
				if (!field_ok(f[i], lo[i], hi[i])) {
					print "time field " i " (" f[i] ") invalid"
					exit 1
				}
			first = 6
		}
		if (kind == "system") {
			if (f[first] != "dmarcd") {
				print "user field is " f[first] ", not dmarcd"
				exit 1
			}
			first++
		}
		if (first > n) { print "no command"; exit 1 }
		cmd = f[first]
		for (i = first + 1; i <= n; i++)
			cmd = cmd " " f[i]
		print cmd > "/dev/stderr"
	}' 2>"$tmp/command"
}

# check_command COMMAND - 0 when COMMAND's programs exist where it says.
check_command() {
	set -- $1
	if [ "$1" = flock ]; then
		if ! command -v flock >/dev/null 2>&1; then
			echo "flock not on PATH"
			return 1
		fi
		shift 3		# flock -n LOCKFILE
	fi
	if [ "$1" != "$bindir/dmarcd" ]; then
		echo "runs $1, not $bindir/dmarcd"
		return 1
	fi
	case $2 in
	fetch|resolve|alerts) ;;
	*) echo "dmarcd $2: not a cron subcommand"; return 1 ;;
	esac
}

grep -E '^#[0-9*@]' "$cronfile" | sed 's/^#//' >"$tmp/system"
grep -E '^#   [0-9*@]' "$cronfile" | sed 's/^#   //' >"$tmp/user"
if [ -s "$tmp/system" ] && [ -s "$tmp/user" ]; then
	ok "cron file: $(wc -l <"$tmp/system") cron.d line(s), $(wc -l <"$tmp/user") user crontab line(s)"
else
	not_ok "cron file: no commented crontab line for cron.d and a user crontab"
fi
if grep -q '@[a-z]*@' "$cronfile"; then
	not_ok "cron file keeps a @var@: $(grep '@[a-z]*@' "$cronfile" | head -1)"
fi
# Nothing is active: the file is installed as an example.
if grep -v -E '^(#|$|SHELL=|PATH=)' "$cronfile" | grep -q .; then
	not_ok "cron file has an active line: $(grep -v -E '^(#|$|SHELL=|PATH=)' "$cronfile" | head -1)"
fi

for kind in system user; do
	while IFS= read -r line; do
		if why=$(check_line "$kind" "$line") &&
		    why=$(check_command "$(sed 's/ && .*//' "$tmp/command")"); then
			ok "$kind line parses: $line"
		else
			not_ok "$kind line: $why: $line"
		fi
	done <"$tmp/$kind"
done

# The cron.d fetch line, run with the built binary and a private lock.
fetch_line=$(grep 'dmarcd fetch' "$tmp/system" | head -1)
check_line system "$fetch_line" >/dev/null
set -- $(cat "$tmp/command")
if [ "$1" = flock ]; then
	lock_opt=$2
	shift 3
	prefix="flock $lock_opt $tmp/lock"
else
	prefix=
fi
shift				# $(bindir)/dmarcd
: >"$tmp/empty.conf"
run_fetch() {
	DMARCD_CONFIG=$tmp/empty.conf DMARCD_DB="host=$tmp port=1 connect_timeout=2" \
	    $prefix "$DMARCD" "$@" >"$tmp/out" 2>&1
}
run_fetch "$@"
rc=$?
if [ $rc -eq 75 ] && grep -q 'cannot connect to PostgreSQL' "$tmp/out" &&
    ! grep -q 'usage:' "$tmp/out"; then
	ok "the fetch line runs: dmarcd $* reaches the database (exit 75)"
else
	not_ok "the fetch line: dmarcd $* exited $rc: $(head -2 "$tmp/out")"
fi
# The same runner with a misspelled option must fail the same check.
run_fetch fetch --qiet
rc=$?
if [ $rc -eq 64 ] && grep -q 'usage:' "$tmp/out"; then
	ok "a misspelled option is told apart (exit 64, usage)"
else
	not_ok "dmarcd fetch --qiet exited $rc"
fi
if [ -n "$prefix" ]; then
	exec 9>"$tmp/lock"
	flock -n 9
	run_fetch "$@"
	rc=$?
	exec 9>&-
	if [ $rc -eq 1 ] && ! grep -q 'PostgreSQL' "$tmp/out"; then
		ok "flock: a pass while another holds the lock exits at once"
	else
		not_ok "flock: with the lock held the line exited $rc: $(head -1 "$tmp/out")"
	fi
fi

# Broken lines: the checks above must refuse them.
for bad in '*/15 * * * * * dmarcd flock -n /run/lock/x BINDIR/dmarcd fetch' \
    '60 * * * * dmarcd BINDIR/dmarcd fetch --quiet' \
    '*/15 * * * * BINDIR/dmarcd fetch --quiet' \
    '*/15 * * * * dmarcd /usr/bin/dmarcd-nope fetch' \
    '*/15 * * * * dmarcd BINDIR/dmarcd serve'; do
	line=$(printf '%s\n' "$bad" | sed "s|BINDIR|$bindir|")
	if check_line system "$line" >/dev/null &&
	    check_command "$(cat "$tmp/command")" >/dev/null; then
		not_ok "broken line accepted: $line"
	else
		ok "broken line refused: $line"
	fi
done
tap_done
