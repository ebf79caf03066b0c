#!/bin/sh
#
# imap-bench.sh - how fast `dmarcd fetch` collects report mails over IMAPS.
#
# Starts its own PostgreSQL (tests/integration/pg.sh) and Dovecot
# (tests/integration/dovecot.sh: IMAPS on loopback, a CA made on the
# spot), puts BENCH_MAILS (default 2000) report mails (tests/bench/
# gen_small.py: one gzipped report of 1-50 records each) into the
# account's INBOX (written into its maildir, as a delivery agent would),
# and times one `dmarcd fetch` over IMAPS, under GNU time: every mail
# fetched, stored, and moved to the processed folder.
#
#   fetch rate  messages / wall time     target >= 200 messages/s
#   max RSS     of dmarcd fetch          target <= 32 MiB
#
# Then checks the result: every report stored once (the generator's
# totals), INBOX empty, all mails in dmarcd-processed, and a second fetch
# that finds nothing.
#
# Prints PASS/FAIL lines; exits 0 unless a tool fails or a total is wrong,
# 77 when something it needs is missing. Not part of make check.
#
# Environment: DMARCD, PYTHON3, BENCH_MAILS, BENCH_EXTRA (more lines for
# the [account] section, e.g. "fetch_batch = 200").
set -u

: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
: "${DMARCD:=$top_builddir/collector/dmarcd}"
: "${PYTHON3:=python3}"
: "${BENCH_MAILS:=2000}"
PG="$top_srcdir/tests/integration/pg.sh"
DOVECOT="$top_srcdir/tests/integration/dovecot.sh"
GNU_TIME=/usr/bin/time

skip() { echo "imap-bench: skipped: $*"; exit 77; }
die() { echo "imap-bench: $*" >&2; exit 1; }

[ -x "$GNU_TIME" ] || skip "no GNU time at $GNU_TIME"
command -v dovecot >/dev/null 2>&1 || [ -x /usr/sbin/dovecot ] ||
    skip "no dovecot"
sh "$PG" bindir >/dev/null 2>&1 || skip "no PostgreSQL binaries"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/imap-bench.XXXXXX") || exit 1
pgdir=$(mktemp -d "${TMPDIR:-/tmp}/imap-bench-pg.XXXXXX") || exit 1
dvdir=$(mktemp -d "${TMPDIR:-/tmp}/imap-bench-dovecot.XXXXXX") || exit 1
cleanup() {
	sh "$PG" stop "$pgdir" >/dev/null 2>&1
	sh "$DOVECOT" stop "$dvdir" >/dev/null 2>&1
	rm -rf "$tmp" "$pgdir" "$dvdir"
}
trap cleanup EXIT INT TERM
conn=$(sh "$PG" start "$pgdir") || die "cannot start PostgreSQL"
eval "$(sh "$DOVECOT" start "$dvdir")" || die "cannot start Dovecot"

# The mails, straight into the maildir Dovecot serves.
maildir=$dvdir/home/test/Maildir
mkdir -p "$maildir"
truth=$("$PYTHON3" "$top_srcdir/tests/bench/gen_small.py" "$maildir" \
    "$BENCH_MAILS" 7) || die "gen_small.py failed"
chown -R "$(stat -c %u "$dvdir/home/test")":"$(stat -c %g \
    "$dvdir/home/test")" "$maildir" 2>/dev/null || true
want() { echo "$truth" | "$PYTHON3" -c "import json,sys; \
print(json.load(sys.stdin)['$1'])"; }

cat >"$tmp/dmarcd.conf" <<EOF
[database]
conninfo = $conn
[account bench]
host = localhost
port = $IMAPS_PORT
tls = imaps
ca_file = $IMAP_CA
user = $IMAP_USER
password = $IMAP_PASS
${BENCH_EXTRA:-}
EOF
chmod 600 "$tmp/dmarcd.conf"	# the password is written in it
"$DMARCD" migrate --config "$tmp/dmarcd.conf" >/dev/null ||
    die "dmarcd migrate failed"
status=$(doveadm -c "$DOVECOT_CONF" mailbox status -u test messages INBOX)
[ "${status#*=}" = "$BENCH_MAILS" ] ||
    die "INBOX holds ${status#*=} mails, not $BENCH_MAILS"

t0=$(date +%s.%N)
"$GNU_TIME" -f '%M' -o "$tmp/rss" "$DMARCD" fetch --quiet \
    --config "$tmp/dmarcd.conf" >"$tmp/out" 2>&1 ||
    { cat "$tmp/out" >&2; die "dmarcd fetch failed"; }
t1=$(date +%s.%N)

sql() { "$(sh "$PG" bindir)/psql" -XAtq "$conn" -c "$1"; }
reports=$(sql "SELECT count(*) FROM dmarcd.reports")
messages=$(sql "SELECT coalesce(sum(message_count), 0) FROM dmarcd.reports")
inbox=$(doveadm -c "$DOVECOT_CONF" mailbox status -u test messages INBOX)
done_=$(doveadm -c "$DOVECOT_CONF" mailbox status -u test messages \
    dmarcd-processed)
[ "$reports" = "$(want reports)" ] ||
    die "$reports reports stored, the generator made $(want reports)"
[ "$messages" = "$(want messages)" ] ||
    die "$messages messages stored, the generator made $(want messages)"
[ "${inbox#*=}" = 0 ] || die "INBOX still holds ${inbox#*=} mails"
[ "${done_#*=}" = "$BENCH_MAILS" ] ||
    die "dmarcd-processed holds ${done_#*=} mails, not $BENCH_MAILS"
"$DMARCD" fetch --config "$tmp/dmarcd.conf" >"$tmp/out2" 2>&1 ||
    die "the second fetch failed"
grep -q ' 0 inputs' "$tmp/out2" || die "the second fetch found mail"

rss_kib=$(cat "$tmp/rss")
awk -v n="$BENCH_MAILS" -v t0="$t0" -v t1="$t1" -v rss="$rss_kib" 'BEGIN {
	t = t1 - t0; rate = n / t; mib = rss / 1024
	printf "imap-bench: %d mails over IMAPS in %.2f s\n", n, t
	printf "%s: fetch rate %.0f messages/s, target >= 200 (%.2fx)\n",
	    (rate >= 200 ? "PASS" : "FAIL"), rate, rate / 200
	printf "%s: max RSS %.1f MiB, target <= 32 MiB (%.2fx)\n",
	    (mib <= 32 ? "PASS" : "FAIL"), mib, mib / 32
}'
