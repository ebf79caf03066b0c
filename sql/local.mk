# sql/local.mk - the numbered migrations, built into the binary.
SQL_MIGRATIONS = \
	sql/0001_core.sql \
	sql/0002_roles.sql \
	sql/0003_report_ids.sql \
	sql/0004_revision_key.sql \
	sql/0005_ensure_month_race.sql \
	sql/0006_imap.sql \
	sql/0007_analytics.sql \
	sql/0008_views.sql \
	sql/0009_sender_map.sql \
	sql/0010_api_raw.sql \
	sql/0011_alerts.sql \
	sql/0012_treewalk.sql \
	sql/0013_notify.sql \
	sql/0014_rollup_append.sql \
	sql/0015_grafana_views.sql \
	sql/0016_compact_remark.sql \
	sql/0017_least_privilege.sql \
	sql/0018_admin_role.sql
EXTRA_DIST += $(SQL_MIGRATIONS) sql/embed.sh docs/views.md
BUILT_SOURCES += sql/migrations.c
CLEANFILES += sql/migrations.c
sql/migrations.c: $(SQL_MIGRATIONS) $(top_srcdir)/sql/embed.sh \
    $(top_srcdir)/sql/local.mk
	@$(MKDIR_P) sql
	$(AM_V_GEN)$(SHELL) $(top_srcdir)/sql/embed.sh $@ $(top_srcdir) \
	    $(SQL_MIGRATIONS)

# The sender map (docs/senders.md): data files built into the binary too,
# loaded by `dmarcd migrate` after the migrations.
SQL_SENDERS = sql/platforms.tsv sql/sender_rules.tsv
EXTRA_DIST += $(SQL_SENDERS) sql/embed_senders.sh docs/senders.md
BUILT_SOURCES += sql/senders.c
CLEANFILES += sql/senders.c
sql/senders.c: $(SQL_SENDERS) $(top_srcdir)/sql/embed_senders.sh
	@$(MKDIR_P) sql
	$(AM_V_GEN)$(SHELL) $(top_srcdir)/sql/embed_senders.sh $@ \
	    $(top_srcdir) $(SQL_SENDERS)

# Installed too, for reading (and for psql users): the migrations and the
# sender map, as built into the binary. `dmarcd migrate` applies them.
sqldir = $(pkgdatadir)/sql
sql_DATA = $(SQL_MIGRATIONS) $(SQL_SENDERS)
