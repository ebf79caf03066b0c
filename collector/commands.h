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

/* cmd_parse_size - "64M" -> bytes; -1 if not a size. */
int cmd_parse_size(const char *text, unsigned long long *value_r);

#endif
