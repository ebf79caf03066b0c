/*
 * cmd_resolve.c - dmarcd resolve: who the sources are (docs/resolve.md).
 *
 *	dmarcd resolve [--since DATE] [--server ADDR:PORT]... [-q]
 *
 * The reverse DNS (forward-confirmed) of every source address due and
 * the organizational domain of every DKIM and SPF domain not known yet,
 * through rdns_enrich(); then the DMARCbis tree walk of the domains of
 * the reports that say discovery_method=treewalk, and those reports
 * aligned again where it disagrees with the PSL (rdns_treewalk()); a line
 * of totals for each at the end.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include "collector/commands.h"
#include "collector/rdns.h"
#include "common/config.h"
#include "store/store.h"

const char cmd_resolve_usage[] =
    "usage: dmarcd resolve [--since DATE] [--server ADDR[:PORT]]... [-q]\n"
    "                      [--db CONNINFO] [--config FILE]\n"
    "\n"
    "Reverse DNS of the source addresses in the daily rollup that have no\n"
    "answer yet or an expired one (forward-confirmed: a PTR name counts\n"
    "only when it resolves back to the address), kept in dmarcd.ip_names\n"
    "for the TTL of the answer; and the organizational domain of each DKIM\n"
    "and SPF domain seen, in dmarcd.domain_orgs. Then, for the reports\n"
    "whose policy_published says discovery_method=treewalk, the DMARCbis\n"
    "DNS tree walk of their From, DKIM and SPF domains (dmarcd.treewalk_orgs,\n"
    "kept a day) and, where it disagrees with the Public Suffix List, their\n"
    "records aligned again and their rollup redone.\n"
    "\n"
    "  --since DATE     only addresses and domains seen on DATE\n"
    "                   (YYYY-MM-DD) or later\n"
    "  --server ADDR    a DNS server to ask (IPv4, IPv6, :PORT, [IPv6]:PORT);\n"
    "                   may be repeated. Default: [resolve] servers, else\n"
    "                   those of /etc/resolv.conf\n"
    "  -q, --quiet      no summary line\n"
    "\n"
    "[resolve] concurrency, timeout and deadline in the configuration\n"
    "bound the work. Exit status: 0 done (what the deadline left is asked\n"
    "next time), 64 usage, 69 no DNS server could be used or none\n"
    "answered, 75 PostgreSQL unreachable.\n";

/* since_ok - YYYY-MM-DD, a real date. */
static int
since_ok(const char *text)
{
	struct tm tm;
	const char *end;
	size_t i;

	if (strlen(text) != 10 || text[4] != '-' || text[7] != '-')
		return 0;
	for (i = 0; i < 10; i++)
		if (i != 4 && i != 7 && (text[i] < '0' || text[i] > '9'))
			return 0;
	memset(&tm, 0, sizeof(tm));
	end = strptime(text, "%Y-%m-%d", &tm);
	if (end == NULL || *end != '\0')
		return 0;
	/* strptime takes 2026-02-31; normalising it shows the change. */
	{
		struct tm check = tm;

		check.tm_isdst = 0;
		if (timegm(&check) == (time_t)-1 || check.tm_mday !=
		    tm.tm_mday || check.tm_mon != tm.tm_mon)
			return 0;
	}
	return 1;
}

int
cmd_resolve(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "since", required_argument, NULL, 's' },
		{ "server", required_argument, NULL, 'S' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "db", required_argument, NULL, 'D' },
		{ "config", required_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct cmd_db_opts o = { NULL, NULL, 0 };
	struct rdns_limits limits;
	struct rdns_totals t;
	struct rdns_walk_totals w;
	struct dm_error werr;
	struct dm_config cfg;
	struct store *s;
	struct dm_error err;
	char given[DM_CONFIG_SERVERS_MAX], servers[DM_CONFIG_SERVERS_MAX];
	char why[256];
	const char *since = NULL;
	size_t used = 0;
	int c, rc, quiet = 0, enriched, walked = 0;

	given[0] = '\0';
	optind = 1;
	while ((c = getopt_long(argc, argv, "qh", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (!since_ok(optarg)) {
				fprintf(stderr, "dmarcd resolve: --since '%s': "
				    "not a date (YYYY-MM-DD)\n", optarg);
				return EX_USAGE;
			}
			since = optarg;
			break;
		case 'S':
			if (cmd_list_append(given, sizeof(given), &used,
			    optarg) != 0) {
				fprintf(stderr, "dmarcd resolve: --server: "
				    "too many servers\n");
				return EX_USAGE;
			}
			break;
		case 'q':
			quiet = 1;
			break;
		case 'h':
			fputs(cmd_resolve_usage, stdout);
			return 0;
		default:
			if (cmd_db_option(c, optarg, &o) != 0) {
				fputs(cmd_resolve_usage, stderr);
				return EX_USAGE;
			}
		}
	}
	if (optind != argc) {
		fputs(cmd_resolve_usage, stderr);
		return EX_USAGE;
	}
	if (used > 0 && dm_config_parse_servers(given, servers,
	    sizeof(servers), why, sizeof(why)) != 0) {
		fprintf(stderr, "dmarcd resolve: --server: %s\n", why);
		return EX_USAGE;
	}
	if ((rc = cmd_open_store("resolve", &o, &cfg, &s)) != 0)
		return rc;
	dm_error_clear(&err);
	if (store_check_schema(s, &err) != 0)
		return cmd_close_store("resolve", s, &cfg, &err);
	memset(&limits, 0, sizeof(limits));
	limits.servers = used > 0 ? servers : NULL;
	limits.since = since;
	enriched = rdns_enrich(s, &cfg, &limits, &t, &err);
	if (!quiet || enriched != 0)
		printf("resolved %" PRIu64 " address%s (%" PRIu64 " confirmed, "
		    "%" PRIu64 " failed, %" PRIu64 " left for the next run), "
		    "%" PRIu64 " domain%s\n", t.resolved, t.resolved == 1 ?
		    "" : "es", t.confirmed, t.failed, t.unfinished, t.domains,
		    t.domains == 1 ? "" : "s");
	/* The walk also when no server answered the PTR queries (its
	 * failures are recorded), not when the store failed. */
	memset(&w, 0, sizeof(w));
	dm_error_clear(&werr);
	if (enriched == 0 || err.code == DM_E_UNAVAILABLE) {
		walked = rdns_treewalk(s, &cfg, &limits, &w, &werr);
		if (!quiet || walked != 0)
			printf("tree walk: %" PRIu64 " domain%s walked (%" PRIu64
			    " differ from the PSL, %" PRIu64 " failed, %" PRIu64
			    " left for the next run), %" PRIu64 " treewalk "
			    "report%s realigned (%" PRIu64 " record%s changed, "
			    "%" PRIu64 " waiting for a walk)\n", w.walked,
			    w.walked == 1 ? "" : "s", w.differ, w.failed,
			    w.unfinished, w.reports, w.reports == 1 ? "" : "s",
			    w.records, w.records == 1 ? "" : "s", w.waiting);
	}
	fflush(stdout);
	if (enriched == 0 && walked != 0)
		return cmd_close_store("resolve", s, &cfg, &werr);
	return cmd_close_store("resolve", s, &cfg, enriched != 0 ? &err :
	    NULL);
}
