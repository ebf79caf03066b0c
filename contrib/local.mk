# contrib/local.mk - what `make install` puts beside the binary: the
# example configuration, the systemd units, the cron file and the Grafana
# files. Nothing is installed into sysconfdir: an admin's dmarcd.conf is
# never overwritten (copy the example to /etc/dmarcd/dmarcd.conf).
examplesdir = $(docdir)/examples
examples_DATA = contrib/dmarcd.conf.example

# The units and the cron file name the installed binary: @bindir@ and
# @docdir@ in the .in files are replaced by make, with the same values
# `make install` uses.
contrib_edit = sed -e 's|@bindir[@]|$(bindir)|g' \
	-e 's|@docdir[@]|$(docdir)|g' \
	-e 's|@pkgdatadir[@]|$(pkgdatadir)|g'
contrib_edit_rule = $(AM_V_GEN)$(MKDIR_P) $(@D) && rm -f $@ $@.tmp && \
	$(contrib_edit) $(top_srcdir)/$@.in >$@.tmp && mv $@.tmp $@

include contrib/systemd/local.mk
include contrib/cron/local.mk
include contrib/grafana/local.mk

EXTRA_DIST += docs/deploy.md
