#!/bin/sh
# deb.sh - debian/ builds a package that holds what it should.
#
# Copies the source tree (the files git knows, or the whole tree when it
# is not a git checkout, as in make distcheck) to a temporary folder, runs
# `DEB_BUILD_OPTIONS=nocheck dpkg-buildpackage -us -uc -b` there (make
# -j2), then reads the .deb: the binary, the four systemd units (naming
# /usr/bin/dmarcd), the sql files, the cron file, the example
# configuration, the man pages when the tree has them; the maintainer
# scripts create the user and /etc/dmarcd; the units are not enabled;
# the libraries dmarcd loads with dlopen() are in Depends. lintian, when
# installed, runs on the .deb: its errors fail the test, its warnings are
# printed. Skips without dpkg-buildpackage or debhelper. Takes about two
# minutes.
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$top_srcdir/tests/lib.sh"

for tool in dpkg-buildpackage dh dpkg-deb; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "1..0 # SKIP $tool not installed"
		exit 0
	fi
done
# The package is built from the sources, not from this build: the plain
# build's suite runs it; a sanitizer build's would only build it again.
if [ -n "${top_builddir:-}" ] && grep -q '^CFLAGS = .*-fsanitize' \
    "$top_builddir/Makefile" 2>/dev/null; then
	echo "1..0 # SKIP a sanitizer build (the plain build's suite builds the package)"
	exit 0
fi
if [ ! -f "$top_srcdir/debian/control" ]; then
	echo "1..0 # SKIP no debian/ in this tree"
	exit 0
fi
# dpkg-checkbuilddeps: the Build-Depends must be installed.
if ! (cd "$top_srcdir" && dpkg-checkbuilddeps) >/dev/null 2>&1; then
	echo "1..0 # SKIP Build-Depends missing: $(cd "$top_srcdir" && dpkg-checkbuilddeps 2>&1 | head -1)"
	exit 0
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/dmarcd-deb.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
version=$(cd "$top_srcdir" && dpkg-parsechangelog -S Version)
src=$tmp/dmarcd-$version
mkdir "$src"

if git -C "$top_srcdir" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	# Tracked and new files as they are now, not the build's leftovers.
	(cd "$top_srcdir" && git ls-files -z --cached --others --exclude-standard |
	    xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\n" "$f"; done' sh |
	    tar -cf - -T -) | tar -xf - -C "$src"
else
	(cd "$top_srcdir" && tar -cf - --exclude=./_build --exclude=./var \
	    --exclude='./dmarcd-*' .) | tar -xf - -C "$src"
	chmod -R u+w "$src"
fi

# configure.ac's version is the package's.
upstream=$(sed -n 's/^AC_INIT(\[dmarcd\], \[\([^]]*\)\].*/\1/p' \
    "$top_srcdir/configure.ac")
if [ -n "$upstream" ] && [ "${version%%-*}" = "$upstream" ]; then
	ok "debian/changelog version $version matches configure.ac ($upstream)"
else
	not_ok "debian/changelog version $version, configure.ac $upstream"
fi

start=$(date +%s)
(cd "$src" && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
    DEB_BUILD_OPTIONS="nocheck noddebs parallel=2" \
    dpkg-buildpackage -us -uc -b) >"$tmp/build.log" 2>&1
rc=$?
deb=$(ls "$tmp"/dmarcd_*.deb 2>/dev/null | head -1)
if [ $rc -eq 0 ] && [ -n "$deb" ]; then
	ok "dpkg-buildpackage -b: $(basename "$deb") in $(($(date +%s) - start)) s"
else
	not_ok "dpkg-buildpackage -b exited $rc"
	tail -20 "$tmp/build.log" | sed 's/^/# /'
	tap_done
	exit 1
fi

dpkg-deb -c "$deb" | awk '{ print $1, $6 }' | sed 's| \./| /|' >"$tmp/contents"
# has MODE PATH - 0 when the .deb holds PATH with MODE (ls -l style).
has() {
	grep -q -x -F -e "$1 $2" "$tmp/contents" ||
	    { echo "# not in the .deb: $1 $2"; return 1; }
}
if has -rwxr-xr-x /usr/bin/dmarcd; then
	ok "the .deb has /usr/bin/dmarcd"
else
	not_ok "the .deb has no /usr/bin/dmarcd"
fi

mkdir "$tmp/x"
dpkg-deb -x "$deb" "$tmp/x"
bad=
for u in dmarcd.service dmarcd-serve.service dmarcd-fetch.service \
    dmarcd-fetch.timer; do
	has -rw-r--r-- "/lib/systemd/system/$u" || bad="$bad $u"
done
for u in dmarcd.service dmarcd-serve.service dmarcd-fetch.service; do
	grep -q '^ExecStart=/usr/bin/dmarcd ' "$tmp/x/lib/systemd/system/$u" ||
	    bad="$bad $u:ExecStart"
done
if [ -z "$bad" ]; then
	ok "the .deb has the systemd units, running /usr/bin/dmarcd"
else
	not_ok "systemd units:$bad"
fi

bad=
n=0
for f in $(sed -n 's/^[ 	]*\(sql\/[0-9A-Za-z_]*\.\(sql\|tsv\)\).*/\1/p' \
    "$top_srcdir/sql/local.mk"); do
	n=$((n + 1))
	has -rw-r--r-- "/usr/share/dmarcd/sql/$(basename "$f")" || bad="$bad $f"
done
if [ $n -gt 0 ] && [ -z "$bad" ]; then
	ok "the .deb has the $n sql files in /usr/share/dmarcd/sql"
else
	not_ok "sql files ($n):$bad"
fi

if has -rw-r--r-- /usr/share/dmarcd/cron/dmarcd &&
    has -rw-r--r-- /usr/share/doc/dmarcd/examples/dmarcd.conf.example &&
    grep -q '/usr/bin/dmarcd fetch' "$tmp/x/usr/share/dmarcd/cron/dmarcd"; then
	ok "the .deb has the cron file and the example configuration"
else
	not_ok "cron file or example configuration missing"
fi
if grep -q ' /etc/' "$tmp/contents"; then
	not_ok "the .deb ships files in /etc: $(grep ' /etc/' "$tmp/contents" | head -2)"
else
	ok "the .deb ships nothing in /etc (no conffile to overwrite)"
fi

for page in dmarcd.8 dmarcd.conf.5; do
	if [ -f "$top_srcdir/man/$page" ]; then
		if has -rw-r--r-- "/usr/share/man/man${page##*.}/$page.gz"; then
			ok "the .deb has man page $page"
		else
			not_ok "the .deb has no man page $page"
		fi
	else
		skip "man page $page: not in this tree"
	fi
done

dpkg-deb -e "$deb" "$tmp/control"
if grep -q 'adduser --system' "$tmp/control/postinst" &&
    grep -q 'install -d -m 0750 -o root -g dmarcd /etc/dmarcd' \
    "$tmp/control/postinst"; then
	ok "postinst creates the system user dmarcd and /etc/dmarcd 0750"
else
	not_ok "postinst: no system user or /etc/dmarcd"
fi
# dh_installsystemd --no-enable --no-start: each unit is enabled again
# only where it was enabled before (an upgrade), and none is started.
enables=$(grep -c 'deb-systemd-helper enable' "$tmp/control/postinst")
was=$(grep -c 'deb-systemd-helper --quiet was-enabled' "$tmp/control/postinst")
if grep -q 'deb-systemd-helper update-state' "$tmp/control/postinst" &&
    [ "$enables" -eq "$was" ] &&
    ! grep -q -E 'deb-systemd-invoke (start|restart)' "$tmp/control/postinst"; then
	ok "units known to systemd, neither enabled nor started"
else
	not_ok "postinst enables ($enables, $was were enabled) or starts units, or knows none"
fi
depends=$(dpkg-deb -f "$deb" Depends)
echo "# Depends: $depends"
bad=
for so in libetpan libzip libinih libpq libcurl libmicrohttpd libgnutls; do
	printf '%s\n' "$depends" | tr ',' '\n' | grep -q "^ *$so" ||
	    bad="$bad $so"
done
if [ -z "$bad" ]; then
	ok "Depends names the libraries loaded with dlopen()"
else
	not_ok "Depends lacks:$bad"
fi

if command -v lintian >/dev/null 2>&1; then
	lintian --tag-display-limit 0 "$deb" >"$tmp/lintian" 2>&1
	sed 's/^/# lintian: /' "$tmp/lintian"
	if grep -q '^E:' "$tmp/lintian"; then
		not_ok "lintian: $(grep -c '^E:' "$tmp/lintian") error(s)"
	else
		ok "lintian: no error ($(grep -c '^W:' "$tmp/lintian") warning(s))"
	fi
else
	skip "lintian not installed"
fi
tap_done
