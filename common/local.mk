# common/local.mk - shared helpers and the report data model.
noinst_LIBRARIES += common/libcommon.a
common_libcommon_a_SOURCES = \
	common/align.c common/align.h \
	common/arena.c common/arena.h \
	common/buf.c common/buf.h \
	common/config.c common/config.h \
	common/dl.c common/dl.h \
	common/dnsrec.c common/dnsrec.h \
	common/error.c common/error.h \
	common/limits.h \
	common/report.c common/report.h \
	common/ring.c common/ring.h
# config.c includes <ini.h> for its types; libinih itself is loaded on
# first use (common/dl.h), never linked.
common_libcommon_a_CPPFLAGS = $(AM_CPPFLAGS) $(INIH_CFLAGS) $(PSL_CFLAGS)
