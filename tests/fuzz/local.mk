# tests/fuzz/local.mk - libFuzzer targets, one per parser entry point.
# Built with ./configure CC=clang --enable-fuzzing; `make check` then runs
# each for FUZZ_SECONDS (tests/fuzz/run-fuzz.sh).
FUZZ_CFLAGS_ALL = $(AM_CFLAGS) $(FUZZ_FLAGS) $(XML2_CFLAGS) $(LIBETPAN_CFLAGS)
EXTRA_DIST += tests/fuzz/fuzz_unpack.c tests/fuzz/fuzz_aggregate.c \
	tests/fuzz/fuzz_mime.c tests/fuzz/fuzz_common.h tests/fuzz/run-fuzz.sh
if ENABLE_FUZZING
check_PROGRAMS += tests/fuzz/fuzz_unpack tests/fuzz/fuzz_aggregate \
	tests/fuzz/fuzz_mime
tests_fuzz_fuzz_unpack_SOURCES = tests/fuzz/fuzz_unpack.c tests/fuzz/fuzz_common.h
tests_fuzz_fuzz_unpack_CFLAGS = $(FUZZ_CFLAGS_ALL)
tests_fuzz_fuzz_unpack_LDFLAGS = $(FUZZ_FLAGS)
tests_fuzz_fuzz_unpack_LDADD = $(PARSER_LIBS)
tests_fuzz_fuzz_aggregate_SOURCES = tests/fuzz/fuzz_aggregate.c tests/fuzz/fuzz_common.h
tests_fuzz_fuzz_aggregate_CFLAGS = $(FUZZ_CFLAGS_ALL)
tests_fuzz_fuzz_aggregate_LDFLAGS = $(FUZZ_FLAGS)
tests_fuzz_fuzz_aggregate_LDADD = $(PARSER_LIBS)
tests_fuzz_fuzz_mime_SOURCES = tests/fuzz/fuzz_mime.c tests/fuzz/fuzz_common.h
tests_fuzz_fuzz_mime_CFLAGS = $(FUZZ_CFLAGS_ALL)
tests_fuzz_fuzz_mime_LDFLAGS = $(FUZZ_FLAGS)
tests_fuzz_fuzz_mime_LDADD = $(PARSER_LIBS)
TESTS += tests/fuzz/run-fuzz.sh
endif
EXTRA_DIST += tests/fuzz/seeds/unpack/yahoo-example.org.xml.gz \
	tests/fuzz/seeds/unpack/mailru-example.net.zip \
	tests/fuzz/seeds/unpack/aggregate-report-mail.eml \
	tests/fuzz/seeds/unpack/rfc7489.xml \
	tests/fuzz/seeds/aggregate/rfc7489.xml \
	tests/fuzz/seeds/aggregate/dmarc2.xml \
	tests/fuzz/seeds/aggregate/dmarc2-chunk16.xml \
	tests/fuzz/seeds/mime/failure-report.eml \
	tests/fuzz/seeds/mime/aggregate-report-mail.eml
