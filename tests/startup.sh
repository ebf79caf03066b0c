#!/bin/sh
# startup.sh - dmarcd maps only what reading XML needs; the rest loads on use.
#
# libetpan (with GnuTLS, SASL, Berkeley DB) and libzip (with libcrypto)
# are loaded on first use (common/dl.h). Checks, one TAP line each:
#   needed    the binary's NEEDED entries name none of them
#   plain     parsing plain XML loads neither (LD_DEBUG=files)
#   zip       parsing a zip loads libzip, not libetpan
#   mail      parsing a mail loads libetpan, not libzip
#   version   --version loads both, prints their versions, exits 0
: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
. "$top_srcdir/tests/lib.sh"

samples=$top_srcdir/contrib/samples
if [ ! -x "$DMARCD" ]; then
	echo "1..0 # SKIP $DMARCD not built"
	exit 0
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/dmarcd-startup.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

if command -v readelf >/dev/null 2>&1; then
	readelf -d "$DMARCD" >"$tmp/dyn" 2>&1
	if grep -q NEEDED "$tmp/dyn" &&
	    ! grep NEEDED "$tmp/dyn" |
	    grep -E -q 'libetpan|libzip|libgnutls|libmicrohttpd'
	then
		ok "needed: no libetpan, libzip, gnutls or libmicrohttpd among NEEDED"
	else
		not_ok "needed: $(grep NEEDED "$tmp/dyn" | tr -s ' ' | tr '\n' ' ')"
	fi
else
	skip "needed: no readelf"
fi

# loads NAME FILE: the shared objects dmarcd opens parsing FILE.
loads() {
	LD_DEBUG=files LD_DEBUG_OUTPUT="$tmp/ld.$1" "$DMARCD" parse \
	    --format summary "$2" >"$tmp/out.$1" 2>"$tmp/err.$1"
	echo $? >"$tmp/rc.$1"
	cat "$tmp"/ld."$1".* 2>/dev/null | sed -n 's/.*file=\([^ ]*\).*/\1/p' |
	    sort -u >"$tmp/files.$1"
}

# check NAME FILE WANT NOTWANT
check() {
	loads "$1" "$2"
	rc=$(cat "$tmp/rc.$1")
	if [ "$rc" -ne 0 ]; then
		not_ok "$1: dmarcd parse exited $rc: $(head -c 300 "$tmp/err.$1")"
	elif [ ! -s "$tmp/files.$1" ]; then
		skip "$1: LD_DEBUG not honoured here"
	elif [ -n "$3" ] && ! grep -q "^$3" "$tmp/files.$1"; then
		not_ok "$1: $3 not loaded: $(tr '\n' ' ' <"$tmp/files.$1")"
	elif grep -E -q "^($4)" "$tmp/files.$1"; then
		not_ok "$1: loaded $(grep -E "^($4)" "$tmp/files.$1" | tr '\n' ' ')"
	else
		ok "$1: loads ${3:-nothing extra}, not $4"
	fi
}

check plain "$samples/google-example.com.xml" "" "libetpan|libzip|libgnutls"
check zip "$samples/mailru-example.net.zip" libzip "libetpan|libgnutls"
check mail "$samples/aggregate-report-mail.eml" libetpan "libzip"

out=$("$DMARCD" --version 2>&1)
rc=$?
if [ "$rc" -eq 0 ] &&
    echo "$out" | grep -E -q '^libzip [0-9][^ ]* \(libzip\.so[^)]*\), libetpan [0-9]+\.[0-9]+ \(libetpan\.so[^)]*\)$'
then
	ok "version: $(echo "$out" | tail -n 1)"
else
	not_ok "version: exit $rc: $out"
fi
tap_done
