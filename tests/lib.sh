# tests/lib.sh - shared helpers for shell tests that print TAP.
# Source it: . "$top_srcdir/tests/lib.sh"
: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
: "${DMARCD:=$top_builddir/collector/dmarcd}"
: "${PYTHON3:=python3}"
# The shared reference folder sits beside the checkout (../shared); tests
# that read it skip cleanly when it is absent.
SHARED_DIR=${DMARCD_SHARED_DIR:-$top_srcdir/../shared}
tap_n=0
tap_failed=0
ok() { tap_n=$((tap_n + 1)); echo "ok $tap_n - $*"; }
not_ok() { tap_n=$((tap_n + 1)); tap_failed=$((tap_failed + 1)); echo "not ok $tap_n - $*"; }
skip() { tap_n=$((tap_n + 1)); echo "ok $tap_n - $* # SKIP"; }
tap_done() { echo "1..$tap_n"; [ "$tap_failed" -eq 0 ]; }
