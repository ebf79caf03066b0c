# store/local.mk - report events into PostgreSQL (libpq, loaded on first use).
noinst_LIBRARIES += store/libstore.a
store_libstore_a_SOURCES = \
	store/store.h store/store_private.h \
	store/pq.c store/pq.h \
	store/migrate.c \
	store/ingest.c \
	store/rollup.c \
	store/tmp.c \
	store/query.c \
	store/mailbox.c \
	store/enrich.c \
	store/senders.c \
	store/alerts.c \
	store/treewalk.c
nodist_store_libstore_a_SOURCES = sql/migrations.c sql/senders.c
store_libstore_a_CPPFLAGS = $(AM_CPPFLAGS) $(LIBPQ_CFLAGS) $(NETTLE_CFLAGS) \
	$(ZLIB_CFLAGS)
STORE_LIBS = store/libstore.a $(NETTLE_LIBS) $(ZLIB_LIBS)
