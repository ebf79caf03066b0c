# tests/bench/local.mk - make bench: dmarcd parse against a libxml2 SAX floor,
# dmarcd ingest against psql \copy (tests/bench/ingest-bench.sh), dmarcd
# fetch over IMAPS from a throwaway Dovecot (tests/bench/imap-bench.sh), the
# analytics' latency under 32 connections, in SQL and over HTTP, and the
# rollup's cost at ingest (tests/bench/analytics-bench.sh; its HTTP part
# is skipped, with a line saying so, without wrk or dmarcd serve).
#
# Not part of make check (it generates ~850 MB and runs for minutes).
# sax_floor is an EXTRA program: built only when bench asks for it.
# `make bench` exits 0 when parse-bench.sh skips (77: no ../shared, no GNU
# time); a missed target prints FAIL but is not an error, a tool that fails is.
EXTRA_PROGRAMS = tests/bench/sax_floor
tests_bench_sax_floor_SOURCES = tests/bench/sax_floor.c
tests_bench_sax_floor_CFLAGS = $(AM_CFLAGS) $(XML2_CFLAGS)
tests_bench_sax_floor_LDADD = $(XML2_LIBS)
CLEANFILES += tests/bench/sax_floor$(EXEEXT)
EXTRA_DIST += tests/bench/parse-bench.sh tests/bench/ingest-bench.sh \
	tests/bench/imap-bench.sh tests/bench/gen_small.py \
	tests/bench/analytics-bench.sh tests/bench/analytics-gen.sql

.PHONY: bench
bench: collector/dmarcd$(EXEEXT) tests/bench/sax_floor$(EXEEXT)
	@top_srcdir='$(abs_top_srcdir)'; top_builddir='$(abs_top_builddir)'; \
	DMARCD='$(abs_top_builddir)/collector/dmarcd$(EXEEXT)'; \
	SAX_FLOOR='$(abs_top_builddir)/tests/bench/sax_floor$(EXEEXT)'; \
	PYTHON3='$(PYTHON3)'; XMLLINT='$(XMLLINT)'; \
	export top_srcdir top_builddir DMARCD SAX_FLOOR PYTHON3 XMLLINT; \
	$(SHELL) $(top_srcdir)/tests/bench/parse-bench.sh || \
	{ rc=$$?; test $$rc -eq 77 || exit $$rc; }; \
	$(SHELL) $(top_srcdir)/tests/bench/ingest-bench.sh || \
	{ rc=$$?; test $$rc -eq 77 || exit $$rc; }; \
	$(SHELL) $(top_srcdir)/tests/bench/imap-bench.sh || \
	{ rc=$$?; test $$rc -eq 77 || exit $$rc; }; \
	$(SHELL) $(top_srcdir)/tests/bench/analytics-bench.sh || \
	{ rc=$$?; test $$rc -eq 77 || exit $$rc; }
