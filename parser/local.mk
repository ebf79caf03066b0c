# parser/local.mk - bytes to report events. No PostgreSQL, no IMAP.
noinst_LIBRARIES += parser/libparser.a
parser_libparser_a_CFLAGS = $(AM_CFLAGS) $(XML2_CFLAGS) $(ZLIB_CFLAGS) \
	$(LIBZIP_CFLAGS) $(LIBETPAN_CFLAGS) $(NETTLE_CFLAGS) $(JANSSON_CFLAGS)
parser_libparser_a_SOURCES = \
	parser/aggregate.c parser/aggregate.h \
	parser/failure.c parser/failure.h \
	parser/mime.c parser/mime.h \
	parser/unpack.c parser/unpack.h \
	parser/stream.c parser/stream.h
# Everything that links the parser needs these. Not libzip nor libetpan:
# the parser loads them on first use (common/dl.h), by the sonames
# configure found, so that reading XML does not pay for mapping them.
PARSER_LIBS = parser/libparser.a common/libcommon.a $(XML2_LIBS) \
	$(ZLIB_LIBS) $(NETTLE_LIBS) $(JANSSON_LIBS) $(PSL_LIBS)
