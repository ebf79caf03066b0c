# contrib/cron/local.mk - an /etc/cron.d file for `dmarcd fetch` (every
# line commented out), installed into $(pkgdatadir)/cron; tests/ops/cron.sh
# checks that its lines parse and that their command runs.
crondir = $(pkgdatadir)/cron
nodist_cron_DATA = contrib/cron/dmarcd
EXTRA_DIST += contrib/cron/dmarcd.in
CLEANFILES += contrib/cron/dmarcd

contrib/cron/dmarcd: $(top_srcdir)/contrib/cron/dmarcd.in Makefile
	$(contrib_edit_rule)
