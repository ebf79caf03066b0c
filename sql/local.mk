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
	sql/0010_alerts.sql
EXTRA_DIST += $(SQL_MIGRATIONS) sql/embed.sh
BUILT_SOURCES += sql/migrations.c
CLEANFILES += sql/migrations.c
sql/migrations.c: $(SQL_MIGRATIONS) $(top_srcdir)/sql/embed.sh
	@$(MKDIR_P) sql
	$(AM_V_GEN)$(SHELL) $(top_srcdir)/sql/embed.sh $@ $(top_srcdir) \
	    $(SQL_MIGRATIONS)
