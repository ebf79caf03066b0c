# contrib/grafana/local.mk - Grafana provisioning and dashboards, installed
# into $(pkgdatadir)/grafana with their paths below contrib/grafana kept
# (contrib/grafana/dashboards/x.json -> $(pkgdatadir)/grafana/dashboards/x.json).
# Every file is listed here, from the top of the tree; they are
# distributed, installed and uninstalled. The dashboards provider's path
# (/usr/local/share/dmarcd/grafana/dashboards in the tree) is rewritten
# to the installed $(pkgdatadir) on the way.
GRAFANA_FILES = contrib/grafana/README.md \
	contrib/grafana/provisioning/datasources/dmarcd.yaml \
	contrib/grafana/provisioning/dashboards/dmarcd.yaml \
	contrib/grafana/dashboards/domains-overview.json \
	contrib/grafana/dashboards/aligned-share.json \
	contrib/grafana/dashboards/senders.json \
	contrib/grafana/dashboards/readiness.json \
	contrib/grafana/dashboards/failure-reports.json \
	contrib/grafana/dashboards/ingest-health.json
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
	  case $$rel in \
	  provisioning/dashboards/*.yaml) \
	    echo " sed <pkgdatadir> '$$src' > '$$dir/'`basename "$$rel"`"; \
	    sed 's|/usr/local/share/dmarcd/|$(pkgdatadir)/|g' "$$src" \
	      > "$$dir/`basename "$$rel"`" || exit 1; \
	    chmod 644 "$$dir/`basename "$$rel"`" || exit 1 ;; \
	  *) \
	    echo " $(INSTALL_DATA) '$$src' '$$dir'"; \
	    $(INSTALL_DATA) "$$src" "$$dir" || exit 1 ;; \
	  esac; \
	done
uninstall-grafana-files:
	@list='$(GRAFANA_FILES)'; for f in $$list; do \
	  rel=$${f#contrib/grafana/}; \
	  echo " rm -f '$(DESTDIR)$(grafanadatadir)/$$rel'"; \
	  rm -f "$(DESTDIR)$(grafanadatadir)/$$rel"; \
	done
