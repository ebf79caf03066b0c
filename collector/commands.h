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
extern const char cmd_migrate_usage[], cmd_ingest_usage[], cmd_stats_usage[],
    cmd_rejected_usage[], cmd_summary_usage[];

/* cmd_worse - the exit status that matters more of two. */
int cmd_worse(int a, int b);

/* cmd_parse_size - "64M" -> bytes; -1 if not a size. */
int cmd_parse_size(const char *text, unsigned long long *value_r);

#endif
