# api/local.mk - the HTTP API (dmarcd serve, and dmarcd run with [api]
# listen). libmicrohttpd and libpq are loaded on first use (common/dl.h):
# only their headers are needed here, nothing is linked.
noinst_LIBRARIES += api/libapi.a
api_libapi_a_SOURCES = \
	api/api.h \
	api/server.c \
	api/routes.c \
	api/answers.c \
	api/params.c \
	api/status.c \
	api/token.c
api_libapi_a_CPPFLAGS = $(AM_CPPFLAGS) $(MHD_CFLAGS) $(JANSSON_CFLAGS) \
	$(LIBPQ_CFLAGS) $(NETTLE_CFLAGS) $(ZLIB_CFLAGS)
API_LIBS = api/libapi.a
EXTRA_DIST += api/openapi.yaml docs/security.md
