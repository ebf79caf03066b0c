#!/bin/sh
# install.sh - `make install DESTDIR=...` puts each file in place, and
# `make uninstall` takes each away.
#
# From the build directory: make install into a fresh DESTDIR, then check
# the binary (0755, runs), the sql files (0644, the same bytes as in the
# tree), the systemd units and the cron file (0644, naming the installed
# binary, which exists), the example configuration (0644), the man pages
# when the tree has them, the Grafana files listed in GRAFANA_FILES, and
# that nothing went to sysconfdir or /etc. The generic Grafana rule is
# also run with a list given on the command line, so it is known to work
# before the dashboards exist. Last, make uninstall must leave no file.
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$top_srcdir/tests/lib.sh"

if [ ! -x "$DMARCD" ] || [ ! -f "$top_builddir/Makefile" ]; then
	echo "1..0 # SKIP $DMARCD not built"
	exit 0
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/dmarcd-install.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
dest=$tmp/root

# Make without the parent's flags (make check's TESTS=..., its jobserver).
mk() {
	(cd "$top_builddir" &&
	    env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL ${MAKE:-make} "$@")
}
# var NAME - a variable of the build's Makefile, expanded.
var() {
	printf 'ops-print-%%:\n\t@echo $($*)\n' |
	    (cd "$top_builddir" && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
	    ${MAKE:-make} -s -f Makefile -f - "ops-print-$1" 2>/dev/null)
}
bindir=$(var bindir)
pkgdatadir=$(var pkgdatadir)
docdir=$(var docdir)
mandir=$(var mandir)
sysconfdir=$(var sysconfdir)
unitdir=$(var systemdsystemunitdir)
sql_files="$(var SQL_MIGRATIONS) $(var SQL_SENDERS)"
grafana_files=$(var GRAFANA_FILES)
if [ -z "$bindir" ] || [ -z "$pkgdatadir" ] || [ -z "$sysconfdir" ]; then
	echo "1..0 # SKIP cannot ask make for the installation directories"
	exit 0
fi
echo "# bindir=$bindir pkgdatadir=$pkgdatadir docdir=$docdir unitdir=$unitdir"

if mk install DESTDIR="$dest" >"$tmp/install.log" 2>&1; then
	ok "make install DESTDIR=..."
else
	not_ok "make install DESTDIR=... failed: $(tail -3 "$tmp/install.log")"
	tap_done
	exit 1
fi

# mode FILE MODE - 0 when FILE is a regular file with MODE.
mode() {
	if [ ! -f "$1" ]; then
		echo "# missing: $1"
		return 1
	fi
	m=$(stat -c %a "$1")
	[ "$m" = "$2" ] || { echo "# $1: mode $m, not $2"; return 1; }
}

if mode "$dest$bindir/dmarcd" 755 &&
    "$dest$bindir/dmarcd" --version >/dev/null 2>&1; then
	ok "binary: $bindir/dmarcd, 0755, runs"
else
	not_ok "binary: $bindir/dmarcd"
fi

bad=
n=0
for f in $sql_files; do
	n=$((n + 1))
	to=$dest$pkgdatadir/sql/$(basename "$f")
	mode "$to" 644 && cmp -s "$top_srcdir/$f" "$to" || bad="$bad $f"
done
if [ $n -gt 0 ] && [ -z "$bad" ]; then
	ok "sql: $n files in $pkgdatadir/sql, 0644, as in the tree"
else
	not_ok "sql: $n files, wrong:$bad"
fi

# names_binary FILE - 0 when every dmarcd command in FILE is the
# installed binary, and at least one is.
names_binary() {
	grep -o -E '[^ 	=]*/dmarcd (run|serve|fetch|resolve|alerts)' "$1" |
	    sed 's/ .*//' | sort -u >"$tmp/paths"
	[ -s "$tmp/paths" ] || { echo "# $1 names no dmarcd binary"; return 1; }
	while read -r p; do
		[ "$p" = "$bindir/dmarcd" ] ||
		    { echo "# $1 names $p, not $bindir/dmarcd"; return 1; }
	done <"$tmp/paths"
	[ -x "$dest$bindir/dmarcd" ] || return 1
	! grep -q '@[a-z]*@' "$1" || { echo "# $1 keeps a @var@"; return 1; }
}

if [ -n "$unitdir" ]; then
	for u in dmarcd.service dmarcd-serve.service dmarcd-fetch.service; do
		if mode "$dest$unitdir/$u" 644 && names_binary "$dest$unitdir/$u" &&
		    [ "$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$dest$unitdir/$u")" = \
		    "$bindir/dmarcd" ]; then
			ok "unit $u in $unitdir: ExecStart=$bindir/dmarcd"
		else
			not_ok "unit $u in $unitdir"
		fi
	done
	if mode "$dest$unitdir/dmarcd-fetch.timer" 644; then
		ok "unit dmarcd-fetch.timer in $unitdir"
	else
		not_ok "unit dmarcd-fetch.timer in $unitdir"
	fi
else
	skip "units: configured --without-systemdsystemunitdir"
fi

if mode "$dest$pkgdatadir/cron/dmarcd" 644 &&
    names_binary "$dest$pkgdatadir/cron/dmarcd"; then
	ok "cron file: $pkgdatadir/cron/dmarcd names $bindir/dmarcd"
else
	not_ok "cron file: $pkgdatadir/cron/dmarcd"
fi

if mode "$dest$docdir/examples/dmarcd.conf.example" 644 &&
    cmp -s "$top_srcdir/contrib/dmarcd.conf.example" \
    "$dest$docdir/examples/dmarcd.conf.example"; then
	ok "example configuration: $docdir/examples/dmarcd.conf.example"
else
	not_ok "example configuration: $docdir/examples/dmarcd.conf.example"
fi

if [ -e "$dest$sysconfdir" ] || [ -e "$dest/etc" ]; then
	not_ok "something was installed into $sysconfdir or /etc: $(cd "$dest" && find ./etc ".$sysconfdir" 2>/dev/null | head -3)"
else
	ok "nothing installed into $sysconfdir or /etc (no configuration overwritten)"
fi

for page in dmarcd.8 dmarcd.conf.5; do
	if [ -f "$top_srcdir/man/$page" ]; then
		sect=man${page##*.}
		if mode "$dest$mandir/$sect/$page" 644; then
			ok "man page $mandir/$sect/$page"
		else
			not_ok "man page $mandir/$sect/$page"
		fi
	else
		skip "man page $page: not in this tree"
	fi
done

bad=
n=0
for f in $grafana_files; do
	n=$((n + 1))
	mode "$dest$pkgdatadir/grafana/${f#contrib/grafana/}" 644 ||
	    bad="$bad $f"
done
if [ $n -eq 0 ]; then
	skip "grafana: GRAFANA_FILES is empty"
elif [ -z "$bad" ]; then
	ok "grafana: $n files in $pkgdatadir/grafana"
else
	not_ok "grafana: missing$bad"
fi
prov=$dest$pkgdatadir/grafana/provisioning/dashboards/dmarcd.yaml
if [ $n -gt 0 ]; then
	want="path: $pkgdatadir/grafana/dashboards"
	if grep -q "^ *$want\$" "$prov" 2>/dev/null; then
		ok "grafana: the dashboards provider reads $pkgdatadir/grafana/dashboards"
	else
		not_ok "grafana: no '$want' in $prov: $(grep 'path:' "$prov" 2>&1)"
	fi
fi

# The generic rule, with files that exist in every tree, one in a subfolder
# made for the test (in the build directory, as a built file would be).
mkdir -p "$top_builddir/contrib/grafana/ops-test"
echo '{}' >"$top_builddir/contrib/grafana/ops-test/probe.json"
if mk -s install-grafana-files DESTDIR="$tmp/g" \
    GRAFANA_FILES='contrib/grafana/local.mk contrib/grafana/ops-test/probe.json' \
    >"$tmp/g.log" 2>&1 &&
    cmp -s "$top_srcdir/contrib/grafana/local.mk" "$tmp/g$pkgdatadir/grafana/local.mk" &&
    mode "$tmp/g$pkgdatadir/grafana/ops-test/probe.json" 644 &&
    mk -s uninstall-grafana-files DESTDIR="$tmp/g" \
    GRAFANA_FILES='contrib/grafana/local.mk contrib/grafana/ops-test/probe.json' \
    >>"$tmp/g.log" 2>&1 &&
    [ -z "$(find "$tmp/g" -type f)" ]; then
	ok "grafana rule: installs a listed file (subfolders kept), uninstalls it"
else
	not_ok "grafana rule: $(tail -2 "$tmp/g.log") $(find "$tmp/g" -type f | head -2)"
fi
rm -rf "$top_builddir/contrib/grafana/ops-test"

if mk uninstall DESTDIR="$dest" >"$tmp/uninstall.log" 2>&1; then
	left=$(find "$dest" -type f -o -type l)
	if [ -z "$left" ]; then
		ok "make uninstall leaves no file"
	else
		not_ok "make uninstall left: $(echo $left | head -c 300)"
	fi
else
	not_ok "make uninstall failed: $(tail -3 "$tmp/uninstall.log")"
fi
tap_done
