# contrib/grafana/files.mk - the Grafana provisioning files and dashboards
# (contrib/grafana/README.md), distributed. Installing them is
# contrib/grafana/local.mk's (GRAFANA_FILES).
EXTRA_DIST += contrib/grafana/README.md \
	contrib/grafana/provisioning/datasources/dmarcd.yaml \
	contrib/grafana/provisioning/dashboards/dmarcd.yaml \
	contrib/grafana/dashboards/domains-overview.json \
	contrib/grafana/dashboards/aligned-share.json \
	contrib/grafana/dashboards/senders.json \
	contrib/grafana/dashboards/readiness.json \
	contrib/grafana/dashboards/failure-reports.json \
	contrib/grafana/dashboards/ingest-health.json
