# tests/integration/local.mk - the PostgreSQL store end to end, against a
# real PostgreSQL: pg.sh starts a throwaway cluster per test file (initdb,
# trust authentication, fsync off, 127.0.0.1 on a free port) and always
# stops it; pgharness.py is what the tests share. Each skips ("1..0 #
# SKIP") without PostgreSQL binaries (/usr/lib/postgresql/*/bin or
# PG_BINDIR); corpus.py, generated.py and kill.py also without ../shared.
# xxe_no_fetch.py runs its parse points without PostgreSQL and skips
# only its ingest points.
# kill.py is the longest: it is listed first so that make -j starts it
# early.
TESTS += tests/integration/kill.py tests/integration/imap_fetch.py \
	tests/integration/systemd.py \
	tests/integration/imap_hostile.py tests/integration/pgstop.py \
	tests/integration/corpus.py tests/integration/generated.py \
	tests/integration/migrate.py tests/integration/badinput.py \
	tests/integration/adversarial_store.py \
	tests/integration/xxe_no_fetch.py \
	tests/integration/dedupe.py tests/integration/order.py \
	tests/integration/jobs.py tests/integration/race.py \
	tests/integration/resolve.py \
	tests/integration/cli_report.py \
	tests/integration/senders.py \
	tests/integration/analytics.py \
	tests/integration/api.py \
	tests/integration/alerts.py \
	tests/integration/treewalk.py \
	tests/integration/api_answers.py \
	tests/integration/status_page.py \
	tests/integration/compact.py \
	tests/integration/dnsquery.py \
	tests/integration/check.py \
	tests/integration/grafana.py \
	tests/integration/api_security.py \
	tests/integration/privileges.py \
	tests/integration/secret_leaks.py
EXTRA_DIST += tests/integration/kill.py tests/integration/pgstop.py \
	tests/integration/corpus.py tests/integration/generated.py \
	tests/integration/migrate.py tests/integration/badinput.py \
	tests/integration/adversarial_store.py \
	tests/integration/xxe_no_fetch.py \
	tests/integration/dedupe.py tests/integration/order.py \
	tests/integration/jobs.py tests/integration/race.py \
	tests/integration/pg.sh tests/integration/pgharness.py \
	tests/integration/imap_fetch.py tests/integration/dovecot.sh \
	tests/integration/imapharness.py tests/integration/imap_hostile.py \
	tests/integration/resolve.py tests/integration/dns.sh \
	tests/integration/api.py \
	tests/integration/cli_report.py \
	tests/integration/senders.py \
	tests/integration/analytics.py \
	tests/integration/alerts.py \
	tests/integration/treewalk.py \
	tests/integration/api_answers.py \
	tests/integration/status_page.py \
	tests/integration/compact.py \
	tests/integration/dnsquery.py \
	tests/integration/check.py tests/integration/dnsharness.py \
	tests/integration/systemd.py tests/integration/grafana.py \
	tests/integration/api_security.py tests/integration/privileges.py \
	tests/integration/secret_leaks.py

# dnsquery.py drives rdns_query() through this test program (collector/
# rdns.c linked in directly, with the store's library as test_rdns has
# it: libpq is loaded on first use, and not used here).
check_PROGRAMS += tests/integration/dnsquery_cli
tests_integration_dnsquery_cli_SOURCES = tests/integration/dnsquery_cli.c \
	collector/rdns.c collector/rdns.h
tests_integration_dnsquery_cli_CFLAGS = $(AM_CFLAGS) $(CARES_CFLAGS)
tests_integration_dnsquery_cli_LDADD = $(STORE_LIBS) $(PARSER_LIBS) \
	$(CARES_LIBS)
