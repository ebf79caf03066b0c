# tests/parse/local.mk - `dmarcd parse` end to end: the shared corpus with
# its INDEX and oracles, generated reports against their ground truth, and
# parsing with worker threads against the serial parse. corpus.py and
# generated.py skip when ../shared is absent; parallel.py then skips only
# its corpus part.
TESTS += tests/parse/corpus.py tests/parse/generated.py \
	tests/parse/parallel.py
EXTRA_DIST += tests/parse/corpus.py tests/parse/generated.py \
	tests/parse/parallel.py tests/parse/parse_harness.py
