# collector/local.mk - main() and the subcommands.
bin_PROGRAMS += collector/dmarcd
collector_dmarcd_SOURCES = \
	collector/main.c collector/commands.h \
	collector/cmd_parse.c collector/cmd_store.c \
	collector/inputs.c collector/inputs.h
collector_dmarcd_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(XML2_CFLAGS) \
	$(NETTLE_CFLAGS) $(ZLIB_CFLAGS)
collector_dmarcd_CPPFLAGS = $(AM_CPPFLAGS) $(LIBPQ_CFLAGS)
collector_dmarcd_LDADD = $(STORE_LIBS) $(PARSER_LIBS) $(JANSSON_LIBS)
