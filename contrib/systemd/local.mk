# contrib/systemd/local.mk - dmarcd.service (`dmarcd run`),
# dmarcd-serve.service (`dmarcd serve`), dmarcd-fetch.service and
# dmarcd-fetch.timer (`dmarcd fetch`), installed into
# $(systemdsystemunitdir) (configure --with-systemdsystemunitdir).
# tests/ops/units.sh runs systemd-analyze verify and security on them.
SYSTEMD_UNITS_IN = contrib/systemd/dmarcd.service.in \
	contrib/systemd/dmarcd-serve.service.in \
	contrib/systemd/dmarcd-fetch.service.in
SYSTEMD_UNITS = contrib/systemd/dmarcd.service \
	contrib/systemd/dmarcd-serve.service \
	contrib/systemd/dmarcd-fetch.service
EXTRA_DIST += $(SYSTEMD_UNITS_IN) contrib/systemd/dmarcd-fetch.timer
CLEANFILES += $(SYSTEMD_UNITS)
if HAVE_SYSTEMD_UNITDIR
nodist_systemdsystemunit_DATA = $(SYSTEMD_UNITS)
dist_systemdsystemunit_DATA = contrib/systemd/dmarcd-fetch.timer
endif

contrib/systemd/dmarcd.service: $(top_srcdir)/contrib/systemd/dmarcd.service.in Makefile
	$(contrib_edit_rule)
contrib/systemd/dmarcd-serve.service: $(top_srcdir)/contrib/systemd/dmarcd-serve.service.in Makefile
	$(contrib_edit_rule)
contrib/systemd/dmarcd-fetch.service: $(top_srcdir)/contrib/systemd/dmarcd-fetch.service.in Makefile
	$(contrib_edit_rule)

# distcheck installs under its own prefix, never into systemd's directory.
AM_DISTCHECK_CONFIGURE_FLAGS = \
	--with-systemdsystemunitdir='$$(prefix)/lib/systemd/system'
