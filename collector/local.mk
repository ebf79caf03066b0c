# collector/local.mk - main() and the subcommands.
bin_PROGRAMS += collector/dmarcd
collector_dmarcd_SOURCES = \
	collector/main.c collector/commands.h \
	collector/cmd_parse.c
collector_dmarcd_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(XML2_CFLAGS) \
	$(NETTLE_CFLAGS) $(ZLIB_CFLAGS)
collector_dmarcd_LDADD = $(PARSER_LIBS) $(JANSSON_LIBS)
