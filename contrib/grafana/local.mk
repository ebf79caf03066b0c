# contrib/grafana/local.mk - Grafana provisioning and dashboards, installed
# into $(pkgdatadir)/grafana with their paths below contrib/grafana kept
# (contrib/grafana/dashboards/x.json -> $(pkgdatadir)/grafana/dashboards/x.json).
# List every file here, from the top of the tree:
#   GRAFANA_FILES = contrib/grafana/provisioning/datasources/dmarcd.yaml \
#	contrib/grafana/dashboards/domains.json
# They are distributed, installed and uninstalled; nothing else is needed.
GRAFANA_FILES =
grafanadatadir = $(pkgdatadir)/grafana
EXTRA_DIST += $(GRAFANA_FILES)

install-data-local: install-grafana-files
uninstall-local: uninstall-grafana-files
.PHONY: install-grafana-files uninstall-grafana-files
install-grafana-files:
	@list='$(GRAFANA_FILES)'; for f in $$list; do \
	  rel=$${f#contrib/grafana/}; \
	  if test -f "$$f"; then src=$$f; else src=$(srcdir)/$$f; fi; \
	  dir="$(DESTDIR)$(grafanadatadir)/`dirname "$$rel"`"; \
	  echo " $(MKDIR_P) '$$dir'"; $(MKDIR_P) "$$dir" || exit 1; \
	  echo " $(INSTALL_DATA) '$$src' '$$dir'"; \
	  $(INSTALL_DATA) "$$src" "$$dir" || exit 1; \
	done
uninstall-grafana-files:
	@list='$(GRAFANA_FILES)'; for f in $$list; do \
	  rel=$${f#contrib/grafana/}; \
	  echo " rm -f '$(DESTDIR)$(grafanadatadir)/$$rel'"; \
	  rm -f "$(DESTDIR)$(grafanadatadir)/$$rel"; \
	done
