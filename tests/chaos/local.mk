# tests/chaos/local.mk - fault injection (docs/chaos.md): kill -9 of ingest
# and fetch, PostgreSQL restarted or its connections dropped, Dovecot
# killed mid-FETCH and mid-IDLE, a full temporary directory. Each test
# runs CHAOS_ITERATIONS iterations: 10 in `make check` (the CI short
# mode), 100 in `make chaos` (the long mode; CHAOS_ITERATIONS=N make
# chaos chooses). The seed is printed; CHAOS_SEED=N replays it.
CHAOS_TESTS = tests/chaos/kill9.py tests/chaos/pgfault.py \
	tests/chaos/dovecot.py tests/chaos/tmpfull.py
TESTS += $(CHAOS_TESTS)
EXTRA_DIST += $(CHAOS_TESTS) tests/chaos/chaoslib.py docs/chaos.md
AM_TESTS_ENVIRONMENT += CHAOS_ITERATIONS=$${CHAOS_ITERATIONS:-10}; \
	export CHAOS_ITERATIONS;

# make chaos: the long mode, the figures of each test printed at the end.
chaos:
	CHAOS_ITERATIONS=$${CHAOS_ITERATIONS:-100}; export CHAOS_ITERATIONS; \
	$(MAKE) $(AM_MAKEFLAGS) check TESTS='$(CHAOS_TESTS)'; rc=$$?; \
	for t in $(CHAOS_TESTS); do \
	    grep -h '^# figures' $${t%.py}.log 2>/dev/null; done; exit $$rc
.PHONY: chaos
