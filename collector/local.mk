# collector/local.mk - main() and the subcommands.
bin_PROGRAMS += collector/dmarcd
collector_dmarcd_SOURCES = \
	collector/main.c collector/commands.h \
	collector/cmd_parse.c collector/cmd_store.c collector/cmd_report.c \
	collector/inputs.c collector/inputs.h collector/ingest.h \
	collector/imap.c collector/imap.h collector/cmd_fetch.c \
	collector/oauth2.c collector/oauth2.h \
	collector/cmd_api.c \
	collector/rdns.c collector/rdns.h \
	collector/cmd_check.c collector/cmd_resolve.c \
	collector/httpc.c collector/httpc.h \
	collector/alerts.c collector/alerts.h collector/cmd_alerts.c
collector_dmarcd_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(XML2_CFLAGS) \
	$(NETTLE_CFLAGS) $(ZLIB_CFLAGS) $(LIBCURL_CFLAGS) \
	$(LIBETPAN_CFLAGS) $(GNUTLS_CFLAGS) $(CARES_CFLAGS)
collector_dmarcd_CPPFLAGS = $(AM_CPPFLAGS) $(LIBPQ_CFLAGS)
collector_dmarcd_LDADD = $(API_LIBS) $(STORE_LIBS) $(PARSER_LIBS) \
	$(JANSSON_LIBS) $(CARES_LIBS)
