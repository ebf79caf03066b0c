/*
 * commands.h - the subcommands of the dmarcd binary.
 *
 * Each command gets argc/argv starting at its own name and returns the
 * process exit status (sysexits(3) codes).
 */
#ifndef COLLECTOR_COMMANDS_H
#define COLLECTOR_COMMANDS_H

struct cmd {
	const char *name;
	const char *summary;
	const char *usage;
	int (*run)(int argc, char **argv);
};

int cmd_parse(int argc, char **argv);
extern const char cmd_parse_usage[];

int cmd_migrate(int argc, char **argv);
int cmd_ingest(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_rejected(int argc, char **argv);
int cmd_summary(int argc, char **argv);
int cmd_sources(int argc, char **argv);
int cmd_readiness(int argc, char **argv);
int cmd_compact_main(int argc, char **argv);
int cmd_check(int argc, char **argv);
extern const char cmd_check_usage[];
/* The options summary, sources and readiness share, in their usage. */
#define CMD_REPORT_USAGE_OPTIONS \
    "\n" \
    "  --since WHEN   from (default 30d): 30d, 2w, 12h, 2026-11-01 or\n" \
    "                 2026-11-01T00:00:00Z\n" \
    "  --until WHEN   to (default now)\n" \
    "  --format F     table (default on a terminal), json (default\n" \
    "                 otherwise; the API's numbers), csv\n" \
    "  --db CONNINFO, --config FILE\n"
extern const char cmd_migrate_usage[], cmd_ingest_usage[], cmd_stats_usage[],
    cmd_compact_usage[],
    cmd_rejected_usage[], cmd_summary_usage[],
    cmd_sources_usage[], cmd_readiness_usage[];

int cmd_fetch(int argc, char **argv);
int cmd_run(int argc, char **argv);
extern const char cmd_fetch_usage[], cmd_run_usage[];

int cmd_resolve(int argc, char **argv);
extern const char cmd_resolve_usage[];

int cmd_serve(int argc, char **argv);
int cmd_token(int argc, char **argv);
extern const char cmd_serve_usage[], cmd_token_usage[];

int cmd_alerts(int argc, char **argv);
extern const char cmd_alerts_usage[];

/* cmd_worse - the exit status that matters more of two. */
int cmd_worse(int a, int b);

/* cmd_list_append - item to the comma-separated list (size bytes, used
 * so far); -1 when it does not fit (--server, --resolver given again). */
int cmd_list_append(char *list, size_t size, size_t *used, const char *item);
/* cmd_parse_span - "90d" (N and m, h, d or w; N at most 100000) ->
 * seconds; -1 if not a span of time. */
int cmd_parse_span(const char *text, long long *seconds);
/* cmd_parse_size - "64M" -> bytes; -1 if not a size. */
int cmd_parse_size(const char *text, unsigned long long *value_r);

/* The options of every database command: --config FILE, --db CONNINFO. */
struct cmd_db_opts {
	const char *config;
	const char *db;
	/*
	 * db_is_enough: --db without --config or $DMARCD_CONFIG reads no
	 * configuration file (migrate: the administrator who runs it, as
	 * postgres say, need not be able to read /etc/dmarcd).
	 */
	int db_is_enough;
};
struct dm_config;
/* cmd_api_role_writes - dmarcd's tables the API's role may change. */
long cmd_api_role_writes(const struct dm_config *cfg);
struct dm_error;
struct store;
/* cmd_db_option - take option c ('C' or 'D'); -1 if it is neither. */
int cmd_db_option(int c, const char *arg, struct cmd_db_opts *o);
/* cmd_summary_overview - dmarcd summary without DOMAIN (cmd_store.c). */
int cmd_summary_overview(const struct cmd_db_opts *o, const char *days,
    const char *domain);
/* cmd_exit_for - the sysexits status of an error. */
int cmd_exit_for(const struct dm_error *err);
/* cmd_load_config - the configuration (none when o->db_is_enough and
 * --db alone); 0 or the exit status (the message printed). */
int cmd_load_config(const char *cmd, const struct cmd_db_opts *o,
    struct dm_config *cfg);
/* cmd_open_store - configuration and connection; 0 or the exit status
 * (the message printed as "dmarcd CMD: ..."). */
int cmd_open_store(const char *cmd, const struct cmd_db_opts *o,
    struct dm_config *cfg, struct store **s);
/*
 * cmd_compact - compact the daily rollup rows appended to days marked
 * age_s ago or more (store_compact(), for at most deadline_ms when > 0);
 * 0, or the exit status of the error it printed (what was stored stays
 * stored and counted). ingest and fetch call it at their end.
 */
#define CMD_COMPACT_MS	30000
int cmd_compact(const char *cmd, struct store *s, unsigned age_s,
    unsigned deadline_ms);
/* cmd_close_store - free both; with err, print it: its exit status. */
int cmd_close_store(const char *cmd, struct store *s, struct dm_config *cfg,
    const struct dm_error *err);

#endif
