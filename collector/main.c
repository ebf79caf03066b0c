/*
 * main.c - the dmarcd binary: one program, several subcommands.
 *
 *	dmarcd help [COMMAND]
 *	dmarcd --version
 *	dmarcd parse [options] FILE... | -
 */
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <libxml/xmlversion.h>
#include <zlib.h>
#include <jansson.h>
#include <nettle/version.h>

#include "collector/commands.h"
#include "parser/unpack.h"

static int cmd_help(int argc, char **argv);
static int cmd_version(int argc, char **argv);

static const struct cmd commands[] = {
	{ "parse", "parse report files and print what they hold",
	    cmd_parse_usage, cmd_parse },
	{ "migrate", "create or update the database schema",
	    cmd_migrate_usage, cmd_migrate },
	{ "ingest", "store reports from files, maildirs, mbox or stdin",
	    cmd_ingest_usage, cmd_ingest },
	{ "fetch", "store new reports from the IMAP accounts, once (cron)",
	    cmd_fetch_usage, cmd_fetch },
	{ "run", "collect from IMAP as a daemon (IDLE), until SIGTERM",
	    cmd_run_usage, cmd_run },
	{ "resolve", "reverse DNS of the sources, DKIM/SPF org domains",
	    cmd_resolve_usage, cmd_resolve },
	{ "check", "a domain's DNS: DMARC, SPF, DKIM, MX, BIMI, and the fixes",
	    cmd_check_usage, cmd_check },
	{ "serve", "serve the HTTP API, until SIGTERM",
	    cmd_serve_usage, cmd_serve },
	{ "token", "add, list or revoke the HTTP API's tokens",
	    cmd_token_usage, cmd_token },
	{ "compact", "merge the daily rollup's appended rows (cron, or run)",
	    cmd_compact_usage, cmd_compact_main },
	{ "stats", "totals of what is stored, per domain",
	    cmd_stats_usage, cmd_stats },
	{ "summary", "a domain's mail: DMARC pass, classes, reporters",
	    cmd_summary_usage, cmd_summary },
	{ "sources", "who sends as a domain, which fail, and the fix",
	    cmd_sources_usage, cmd_sources },
	{ "readiness", "whether a domain can move to quarantine or reject",
	    cmd_readiness_usage, cmd_readiness },
	{ "rejected", "list, show or retry inputs that were refused",
	    cmd_rejected_usage, cmd_rejected },
	{ "alerts", "raise alerts and post them to the webhook",
	    cmd_alerts_usage, cmd_alerts },
	{ "help", "show help for dmarcd or one of its commands",
	    "usage: dmarcd help [COMMAND]\n"
	    "       dmarcd --help | -h\n"
	    "\n"
	    "Every command also takes -h or --help: its usage.\n", cmd_help },
	{ "version", "print the version and the libraries in use",
	    "usage: dmarcd version\n"
	    "       dmarcd --version | -V\n"
	    "\n"
	    "Exit status: 0, or 69 when libzip or libetpan cannot be loaded.\n",
	    cmd_version },
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void
overview(FILE *out)
{
	size_t i;

	fprintf(out, "usage: dmarcd COMMAND [ARGS...]\n\n"
	    "dmarcd collects DMARC aggregate and failure reports and tells "
	    "you what to fix.\n\ncommands:\n");
	for (i = 0; i < N_COMMANDS; i++)
		fprintf(out, "  %-10s %s\n", commands[i].name,
		    commands[i].summary);
	fprintf(out, "\n'dmarcd help COMMAND' shows a command's options.\n");
}

static const struct cmd *
find(const char *name)
{
	size_t i;

	for (i = 0; i < N_COMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

static int
cmd_help(int argc, char **argv)
{
	const struct cmd *c;

	if (argc < 2) {
		overview(stdout);
		return 0;
	}
	c = find(argv[1]);
	if (c == NULL) {
		fprintf(stderr, "dmarcd: no such command: %s\n", argv[1]);
		overview(stderr);
		return 64;
	}
	fputs(c->usage, stdout);
	return 0;
}

static int
cmd_version(int argc, char **argv)
{
	const char *zip, *etpan;

	(void)argc;
	(void)argv;
	zip = unpack_libzip_version();
	etpan = unpack_libetpan_version();
	printf("dmarcd %s\n", PACKAGE_VERSION);
	printf("libxml2 %s, zlib %s, jansson %s, nettle %d.%d\n",
	    LIBXML_DOTTED_VERSION, zlibVersion(), JANSSON_VERSION,
	    nettle_version_major(), nettle_version_minor());
	/* Loaded on first use: say which file, and whether it loads. */
	printf("libzip %s (%s), libetpan %s (%s)\n",
	    zip ? zip : "missing", LIBZIP_SONAME,
	    etpan ? etpan : "missing", LIBETPAN_SONAME);
	return zip != NULL && etpan != NULL ? 0 : 69;
}

/*
 * heap_policy - by default glibc hands the top of the heap back to the
 * kernel once 128 KiB lie free there, and takes it again at the next
 * report: a small report's parser and deflate state (some 500 KiB) then
 * cost two brk calls and a hundred freshly zeroed pages each, more CPU
 * than the parse. Kept instead, up to 32 MiB, and blocks below 4 MiB come
 * from the heap, not from mmap. The memory held is what the largest input
 * needed (max RSS, which the benchmarks measure). Measured: 10,000 small
 * reports from a maildir, client CPU 8.4 s -> 3.3 s.
 */
static void
heap_policy(void)
{
#if defined(M_TRIM_THRESHOLD) && defined(M_MMAP_THRESHOLD)
	(void)mallopt(M_TRIM_THRESHOLD, 32 << 20);
	(void)mallopt(M_MMAP_THRESHOLD, 4 << 20);
#endif
}

int
main(int argc, char **argv)
{
	const struct cmd *c;

	if (argc < 2) {
		overview(stderr);
		return 64;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)
		return cmd_version(argc - 1, argv + 1);
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
		return cmd_help(1, argv + 1);
	c = find(argv[1]);
	if (c == NULL) {
		fprintf(stderr, "dmarcd: no such command: %s\n", argv[1]);
		overview(stderr);
		return 64;
	}
	heap_policy();
	unpack_init();
	return c->run(argc - 1, argv + 1);
}
