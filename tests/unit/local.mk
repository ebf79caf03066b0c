# tests/unit/local.mk - cmocka unit tests, one program per module.
# Each prints TAP (CMOCKA_MESSAGE_OUTPUT=TAP, set in AM_TESTS_ENVIRONMENT)
# and runs through tests/cmocka-tap.sh.
UNIT_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(XML2_CFLAGS) $(ZLIB_CFLAGS) \
	$(LIBZIP_CFLAGS) $(LIBETPAN_CFLAGS) $(GNUTLS_CFLAGS)
# libzip builds archives and GnuTLS checks digests in the tests; the
# parser itself loads libzip on first use.
UNIT_LDADD = $(PARSER_LIBS) $(CMOCKA_LIBS) $(LIBZIP_LIBS) $(GNUTLS_LIBS)

check_PROGRAMS += tests/unit/test_common tests/unit/test_aggregate \
	tests/unit/test_unpack tests/unit/test_failure tests/unit/test_config
TESTS += tests/unit/test_common tests/unit/test_aggregate \
	tests/unit/test_unpack tests/unit/test_failure tests/unit/test_config

tests_unit_test_common_SOURCES = tests/unit/test_common.c
tests_unit_test_common_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_common_LDADD = $(UNIT_LDADD)

tests_unit_test_aggregate_SOURCES = tests/unit/test_aggregate.c
tests_unit_test_aggregate_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_aggregate_LDADD = $(UNIT_LDADD)

tests_unit_test_unpack_SOURCES = tests/unit/test_unpack.c
tests_unit_test_unpack_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_unpack_LDADD = $(UNIT_LDADD)

tests_unit_test_failure_SOURCES = tests/unit/test_failure.c
tests_unit_test_failure_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_failure_LDADD = $(UNIT_LDADD)

# Not linked with libinih: the test checks that it is loaded on first use.
tests_unit_test_config_SOURCES = tests/unit/test_config.c
tests_unit_test_config_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_config_LDADD = common/libcommon.a $(CMOCKA_LIBS)

# collector/inputs.c is linked in directly: it needs no parser.
check_PROGRAMS += tests/unit/test_inputs
TESTS += tests/unit/test_inputs
tests_unit_test_inputs_SOURCES = tests/unit/test_inputs.c \
	collector/inputs.c collector/inputs.h
tests_unit_test_inputs_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_inputs_LDADD = common/libcommon.a $(CMOCKA_LIBS)

# collector/oauth2.c is linked in directly; libcurl is loaded on first use.
# The test's own HTTPS server uses GnuTLS.
check_PROGRAMS += tests/unit/test_oauth2
TESTS += tests/unit/test_oauth2
tests_unit_test_oauth2_SOURCES = tests/unit/test_oauth2.c \
	collector/oauth2.c collector/oauth2.h \
	collector/httpc.c collector/httpc.h
tests_unit_test_oauth2_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) \
	$(LIBCURL_CFLAGS) $(JANSSON_CFLAGS) $(GNUTLS_CFLAGS)
tests_unit_test_oauth2_LDADD = common/libcommon.a $(JANSSON_LIBS) \
	$(GNUTLS_LIBS) $(CMOCKA_LIBS)

# collector/rdns.c is linked in directly (with the store's library, which
# loads libpq on first use); only its pure parts are called.
check_PROGRAMS += tests/unit/test_rdns
TESTS += tests/unit/test_rdns
tests_unit_test_rdns_SOURCES = tests/unit/test_rdns.c \
	collector/rdns.c collector/rdns.h
tests_unit_test_rdns_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(CARES_CFLAGS)
tests_unit_test_rdns_LDADD = $(STORE_LIBS) $(PARSER_LIBS) $(CARES_LIBS) \
	$(CMOCKA_LIBS)

# store/senders.c with the data files as built in (sql/senders.c): no
# libpq needed, the checks run on the very text dmarcd carries.
check_PROGRAMS += tests/unit/test_senders
TESTS += tests/unit/test_senders
tests_unit_test_senders_SOURCES = tests/unit/test_senders.c store/senders.c
nodist_tests_unit_test_senders_SOURCES = sql/senders.c
tests_unit_test_senders_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_senders_LDADD = common/libcommon.a $(CMOCKA_LIBS)

# api/params.c, api/token.c and api/status.c linked in directly: no HTTP,
# no database.
check_PROGRAMS += tests/unit/test_api
TESTS += tests/unit/test_api
tests_unit_test_api_SOURCES = tests/unit/test_api.c \
	api/params.c api/token.c api/status.c api/api.h
tests_unit_test_api_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(NETTLE_CFLAGS) \
	$(JANSSON_CFLAGS)
tests_unit_test_api_LDADD = common/libcommon.a $(NETTLE_LIBS) \
	$(JANSSON_LIBS) $(CMOCKA_LIBS)

# common/align.c against the real Public Suffix List (libpsl).
check_PROGRAMS += tests/unit/test_align
TESTS += tests/unit/test_align
tests_unit_test_align_SOURCES = tests/unit/test_align.c
tests_unit_test_align_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(PSL_CFLAGS)
tests_unit_test_align_LDADD = common/libcommon.a $(PSL_LIBS) $(CMOCKA_LIBS)

# collector/alerts.c is linked in directly, with the store (libpq and
# libcurl are loaded on first use: neither is used here).
check_PROGRAMS += tests/unit/test_alerts
TESTS += tests/unit/test_alerts
tests_unit_test_alerts_SOURCES = tests/unit/test_alerts.c \
	collector/alerts.c collector/alerts.h \
	collector/httpc.c collector/httpc.h
tests_unit_test_alerts_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) \
	$(LIBCURL_CFLAGS) $(JANSSON_CFLAGS) $(NETTLE_CFLAGS)
tests_unit_test_alerts_LDADD = $(STORE_LIBS) common/libcommon.a \
	$(JANSSON_LIBS) $(CMOCKA_LIBS)

# common/dnsrec.c over a fake DNS table; dm_dmarc_external uses libpsl.
check_PROGRAMS += tests/unit/test_dnsrec
TESTS += tests/unit/test_dnsrec
tests_unit_test_dnsrec_SOURCES = tests/unit/test_dnsrec.c
tests_unit_test_dnsrec_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(PSL_CFLAGS)
tests_unit_test_dnsrec_LDADD = common/libcommon.a $(PSL_LIBS) $(CMOCKA_LIBS)
