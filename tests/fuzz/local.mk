# tests/fuzz/local.mk - libFuzzer targets, one per parser entry point,
# and their replay programs (docs/fuzzing.md).
#
# Every build (gcc or clang, sanitizers or not) builds replay_TARGET:
# tests/fuzz/replay.c's main around the target's LLVMFuzzerTestOneInput;
# replay.sh feeds it the seeds and tests/data/fuzz-regressions/TARGET.
# With ./configure CC=clang --enable-fuzzing the targets themselves are
# built too: `make check` runs each for FUZZ_SECONDS (run-fuzz.sh, short
# mode) and `make fuzz FUZZ_SECONDS=N` for longer, growing a corpus kept
# in the build directory (long mode).
FUZZ_TARGET_NAMES = unpack aggregate mime dnsrec api config
FUZZ_PARSER_CFLAGS = $(XML2_CFLAGS) $(LIBETPAN_CFLAGS)
EXTRA_DIST += tests/fuzz/fuzz_unpack.c tests/fuzz/fuzz_aggregate.c \
	tests/fuzz/fuzz_mime.c tests/fuzz/fuzz_dnsrec.c tests/fuzz/fuzz_api.c \
	tests/fuzz/fuzz_config.c tests/fuzz/fuzz_common.h \
	tests/fuzz/replay.c tests/fuzz/run-fuzz.sh tests/fuzz/replay.sh
# Seeds and regression files ship whole: a reproducer that run-fuzz.sh
# saved is in the tarball without touching this file.
EXTRA_DIST += tests/fuzz/seeds tests/data/fuzz-regressions docs/fuzzing.md

check_PROGRAMS += tests/fuzz/replay_unpack tests/fuzz/replay_aggregate \
	tests/fuzz/replay_mime tests/fuzz/replay_dnsrec tests/fuzz/replay_api \
	tests/fuzz/replay_config
TESTS += tests/fuzz/replay.sh
tests_fuzz_replay_unpack_SOURCES = tests/fuzz/replay.c \
	tests/fuzz/fuzz_unpack.c tests/fuzz/fuzz_common.h
tests_fuzz_replay_unpack_CFLAGS = $(AM_CFLAGS) $(FUZZ_PARSER_CFLAGS)
tests_fuzz_replay_unpack_LDADD = $(PARSER_LIBS)
tests_fuzz_replay_aggregate_SOURCES = tests/fuzz/replay.c \
	tests/fuzz/fuzz_aggregate.c tests/fuzz/fuzz_common.h
tests_fuzz_replay_aggregate_CFLAGS = $(AM_CFLAGS) $(FUZZ_PARSER_CFLAGS)
tests_fuzz_replay_aggregate_LDADD = $(PARSER_LIBS)
tests_fuzz_replay_mime_SOURCES = tests/fuzz/replay.c \
	tests/fuzz/fuzz_mime.c tests/fuzz/fuzz_common.h
tests_fuzz_replay_mime_CFLAGS = $(AM_CFLAGS) $(FUZZ_PARSER_CFLAGS)
tests_fuzz_replay_mime_LDADD = $(PARSER_LIBS)
tests_fuzz_replay_dnsrec_SOURCES = tests/fuzz/replay.c tests/fuzz/fuzz_dnsrec.c
tests_fuzz_replay_dnsrec_CFLAGS = $(AM_CFLAGS) $(PSL_CFLAGS)
tests_fuzz_replay_dnsrec_LDADD = common/libcommon.a $(PSL_LIBS)
tests_fuzz_replay_api_SOURCES = tests/fuzz/replay.c tests/fuzz/fuzz_api.c \
	api/params.c api/token.c api/api.h
tests_fuzz_replay_api_CFLAGS = $(AM_CFLAGS) $(NETTLE_CFLAGS)
tests_fuzz_replay_api_LDADD = common/libcommon.a $(NETTLE_LIBS)
tests_fuzz_replay_config_SOURCES = tests/fuzz/replay.c tests/fuzz/fuzz_config.c
tests_fuzz_replay_config_CFLAGS = $(AM_CFLAGS)
tests_fuzz_replay_config_LDADD = common/libcommon.a

if ENABLE_FUZZING
check_PROGRAMS += tests/fuzz/fuzz_unpack tests/fuzz/fuzz_aggregate \
	tests/fuzz/fuzz_mime tests/fuzz/fuzz_dnsrec tests/fuzz/fuzz_api \
	tests/fuzz/fuzz_config
tests_fuzz_fuzz_unpack_SOURCES = tests/fuzz/fuzz_unpack.c \
	tests/fuzz/fuzz_common.h
tests_fuzz_fuzz_unpack_CFLAGS = $(AM_CFLAGS) $(FUZZ_FLAGS) $(FUZZ_PARSER_CFLAGS)
tests_fuzz_fuzz_unpack_LDFLAGS = $(FUZZ_FLAGS)
tests_fuzz_fuzz_unpack_LDADD = $(PARSER_LIBS)
tests_fuzz_fuzz_aggregate_SOURCES = tests/fuzz/fuzz_aggregate.c \
	tests/fuzz/fuzz_common.h
tests_fuzz_fuzz_aggregate_CFLAGS = $(AM_CFLAGS) $(FUZZ_FLAGS) \
	$(FUZZ_PARSER_CFLAGS)
tests_fuzz_fuzz_aggregate_LDFLAGS = $(FUZZ_FLAGS)
tests_fuzz_fuzz_aggregate_LDADD = $(PARSER_LIBS)
tests_fuzz_fuzz_mime_SOURCES = tests/fuzz/fuzz_mime.c \
	tests/fuzz/fuzz_common.h
tests_fuzz_fuzz_mime_CFLAGS = $(AM_CFLAGS) $(FUZZ_FLAGS) $(FUZZ_PARSER_CFLAGS)
tests_fuzz_fuzz_mime_LDFLAGS = $(FUZZ_FLAGS)
tests_fuzz_fuzz_mime_LDADD = $(PARSER_LIBS)
tests_fuzz_fuzz_dnsrec_SOURCES = tests/fuzz/fuzz_dnsrec.c
tests_fuzz_fuzz_dnsrec_CFLAGS = $(AM_CFLAGS) $(FUZZ_FLAGS) $(PSL_CFLAGS)
tests_fuzz_fuzz_dnsrec_LDFLAGS = $(FUZZ_FLAGS)
tests_fuzz_fuzz_dnsrec_LDADD = common/libcommon.a $(PSL_LIBS)
tests_fuzz_fuzz_api_SOURCES = tests/fuzz/fuzz_api.c \
	api/params.c api/token.c api/api.h
tests_fuzz_fuzz_api_CFLAGS = $(AM_CFLAGS) $(FUZZ_FLAGS) $(NETTLE_CFLAGS)
tests_fuzz_fuzz_api_LDFLAGS = $(FUZZ_FLAGS)
tests_fuzz_fuzz_api_LDADD = common/libcommon.a $(NETTLE_LIBS)
tests_fuzz_fuzz_config_SOURCES = tests/fuzz/fuzz_config.c
tests_fuzz_fuzz_config_CFLAGS = $(AM_CFLAGS) $(FUZZ_FLAGS)
tests_fuzz_fuzz_config_LDFLAGS = $(FUZZ_FLAGS)
tests_fuzz_fuzz_config_LDADD = common/libcommon.a
TESTS += tests/fuzz/run-fuzz.sh

# Long mode: hours, and a corpus that grows from one run to the next.
FUZZ_LONG_SECONDS = 3600
fuzz: $(FUZZ_TARGET_NAMES:%=tests/fuzz/fuzz_%)
	@mkdir -p tests/fuzz/corpus
	top_srcdir='$(abs_top_srcdir)' top_builddir='$(abs_top_builddir)' \
	FUZZ_SECONDS=$${FUZZ_SECONDS:-$(FUZZ_LONG_SECONDS)} \
	FUZZ_CORPUS='$(abs_top_builddir)/tests/fuzz/corpus' \
	    $(SHELL) $(top_srcdir)/tests/fuzz/run-fuzz.sh
else
fuzz:
	@echo "make fuzz needs the libFuzzer targets: configure with"
	@echo "  $(abs_top_srcdir)/configure CC=clang --enable-fuzzing"
	@echo "(clang and libclang-rt-dev; see docs/fuzzing.md)"
	@false
endif
.PHONY: fuzz
