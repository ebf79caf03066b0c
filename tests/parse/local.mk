# tests/parse/local.mk - `dmarcd parse` end to end: the shared corpus with
# its INDEX and oracles, and generated reports against their ground truth.
# Both print TAP and skip when ../shared is absent.
TESTS += tests/parse/corpus.py tests/parse/generated.py
EXTRA_DIST += tests/parse/corpus.py tests/parse/generated.py \
	tests/parse/parse_harness.py
