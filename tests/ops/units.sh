#!/bin/sh
# units.sh - the systemd units are valid, and hardened.
#
# Each contrib/systemd unit, with @bindir@ pointing at the built binary
# (verify needs ExecStart= to exist), goes through `systemd-analyze
# verify`: it fails on a bad value or a missing binary but only warns on
# an unknown directive, so any line it prints about the unit fails too.
# `systemd-analyze security --offline` must rate each service 2.0 or less
# ("OK"); the level is printed. Then the same check must reject broken
# copies (a misspelled directive, a bad Restart= value, a missing binary,
# a dropped hardening line), so it is known to catch what it is for.
# Skips without systemd-analyze.
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$top_srcdir/tests/lib.sh"

if ! command -v systemd-analyze >/dev/null 2>&1; then
	echo "1..0 # SKIP systemd-analyze not installed"
	exit 0
fi
if [ ! -x "$DMARCD" ]; then
	echo "1..0 # SKIP $DMARCD not built"
	exit 0
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/dmarcd-units.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
units=$top_srcdir/contrib/systemd
bindir=$(cd "$(dirname "$DMARCD")" && pwd)
MAX_EXPOSURE=2.0

# substitute SRC DEST - what make does, with the built binary.
substitute() {
	sed -e "s|@bindir@|$bindir|g" -e "s|@docdir@|/usr/share/doc/dmarcd|g" \
	    -e "s|@pkgdatadir@|/usr/share/dmarcd|g" "$1" >"$2"
}

# verify DIR UNIT - 0 when systemd-analyze verify accepts UNIT silently.
verify() {
	(cd "$1" && systemd-analyze verify --man=no "./$2") >"$1/$2.out" 2>&1
	rc=$?
	if [ $rc -ne 0 ] || grep -q -F "$2" "$1/$2.out"; then
		sed 's/^/# /' "$1/$2.out"
		return 1
	fi
	return 0
}

# exposure DIR UNIT - prints the overall exposure level of a service.
exposure() {
	(cd "$1" && systemd-analyze security --offline=yes "./$2" 2>&1) |
	    sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p'
}

# hardened DIR UNIT - 0 when the exposure is at most MAX_EXPOSURE.
hardened() {
	level=$(exposure "$1" "$2")
	if [ -z "$level" ]; then
		echo "# $2: no exposure level from systemd-analyze security"
		return 1
	fi
	echo "# $2: exposure level $level (at most $MAX_EXPOSURE)"
	awk -v l="$level" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(l <= m) }'
}

mkdir "$tmp/good"
for f in "$units"/*.service.in; do
	substitute "$f" "$tmp/good/$(basename "$f" .in)"
done
cp "$units/dmarcd-fetch.timer" "$tmp/good/"
if grep -q '@[a-z]*@' "$tmp"/good/*; then
	not_ok "substitute: $(grep -l '@[a-z]*@' "$tmp"/good/*) keeps a @var@"
fi

for u in dmarcd.service dmarcd-serve.service dmarcd-fetch.service \
    dmarcd-fetch.timer; do
	if [ ! -f "$tmp/good/$u" ]; then
		not_ok "verify $u: missing from contrib/systemd"
		continue
	fi
	if verify "$tmp/good" "$u"; then
		ok "verify $u"
	else
		not_ok "verify $u"
	fi
done

for u in dmarcd.service dmarcd-serve.service dmarcd-fetch.service; do
	[ -f "$tmp/good/$u" ] || continue
	if hardened "$tmp/good" "$u"; then
		ok "security $u"
	else
		not_ok "security $u"
	fi
done

# What the units promise, read back (a unit can verify and still drop it).
svc=$tmp/good/dmarcd.service
missing=
for want in '^User=dmarcd$' '^NoNewPrivileges=yes$' '^ProtectSystem=strict$' \
    '^PrivateTmp=yes$' '^CapabilityBoundingSet=$' \
    '^Restart=on-failure$' '^RestartPreventExitStatus=.*\b64\b.*\b78\b' \
    "^ExecStart=$bindir/dmarcd run "; do
	grep -q -E "$want" "$svc" || missing="$missing $want"
done
if [ -z "$missing" ]; then
	ok "dmarcd.service: user, sandbox, restart policy and ExecStart as documented"
else
	not_ok "dmarcd.service: no line matching$missing"
fi
if grep -q -E '^ReadWritePaths=' "$tmp"/good/*.service; then
	not_ok "a unit makes a path writable: $(grep -h '^ReadWritePaths=' \
	    "$tmp"/good/*.service | head -1)"
else
	ok "services: nothing writable but their private /tmp"
fi
if grep -q -E "^ExecStart=$bindir/dmarcd serve " \
    "$tmp/good/dmarcd-serve.service" &&
    grep -q -E "^ExecStart=$bindir/dmarcd fetch " \
    "$tmp/good/dmarcd-fetch.service" &&
    grep -q -E '^Type=oneshot$' "$tmp/good/dmarcd-fetch.service"; then
	ok "serve and fetch units run dmarcd serve and a oneshot dmarcd fetch"
else
	not_ok "serve and fetch units: wrong ExecStart= or Type="
fi
# Each subcommand and option the units give exists: --help exits 0.
failed=
for cmd in run serve fetch; do
	"$DMARCD" "$cmd" --help >/dev/null 2>&1 || failed="$failed $cmd"
done
if [ -z "$failed" ]; then
	ok "dmarcd run, serve and fetch exist (--help exits 0)"
else
	not_ok "dmarcd --help fails for:$failed"
fi

# The same checks on broken copies: each must be refused.
mkdir "$tmp/bad"
broken() {
	# broken NAME SED-EXPRESSION CHECK
	sed -e "$2" "$tmp/good/dmarcd.service" >"$tmp/bad/$1.service"
	if cmp -s "$tmp/good/dmarcd.service" "$tmp/bad/$1.service"; then
		not_ok "broken $1: the edit changed nothing"
	elif "$3" "$tmp/bad" "$1.service" >"$tmp/bad/$1.log" 2>&1; then
		not_ok "broken $1: accepted by $3"
	else
		ok "broken $1: refused by $3"
	fi
}
broken misspelled 's/^NoNewPrivileges=/NoNewPrivilege=/' verify
broken restart-value 's/^Restart=on-failure/Restart=sometimes/' verify
broken missing-binary "s|^ExecStart=$bindir/|ExecStart=$tmp/nonexistent/|" verify
broken unhardened '/^\(Protect\|Private\|Restrict\|SystemCall\|CapabilityBoundingSet\|NoNewPrivileges\)/d' hardened
tap_done
