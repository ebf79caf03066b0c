# tests/local.mk - make check: cmocka unit tests and script tests (TAP).
EXTRA_DIST += tests/cmocka-tap.sh tests/ci-summary.sh tests/lib.sh \
	tests/startup.sh
TESTS += tests/startup.sh

include tests/unit/local.mk
include tests/parse/local.mk
include tests/data/local.mk
include tests/fuzz/local.mk
include tests/bench/local.mk
include tests/integration/local.mk
include tests/ops/local.mk
include tests/chaos/local.mk
