/*
 * cmd_alerts.c - dmarcd alerts: raise what changed and post it to the
 * webhook (collector/alerts.h, docs/alerts.md); --dry-run shows what
 * would be raised and sent, and changes nothing.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "collector/alerts.h"
#include "collector/commands.h"
#include "common/config.h"
#include "store/store.h"

const char cmd_alerts_usage[] =
    "usage: dmarcd alerts [--dry-run] [--quiet] [--db CONNINFO] "
    "[--config FILE]\n"
    "\n"
    "Raise the alerts that hold now (a new unauthorised sender over\n"
    "[alerts] min_messages in window_days, the aligned share down by more\n"
    "than share_drop points, a new reporter), each once, and post those\n"
    "not delivered yet to [alerts] webhook, oldest first, at most\n"
    "max_per_hour in any hour (the rest wait for a later run). With\n"
    "--dry-run, print the alerts that would be raised and the bodies that\n"
    "would be sent; nothing is stored or sent, and no webhook is needed.\n"
    "\n"
    "  -n, --dry-run   print what would be raised and sent; do nothing\n"
    "  -q, --quiet     no totals line unless something failed\n"
    "\n"
    "Exit status: 0 done (alerts may wait for the rate limit), 75 PostgreSQL\n"
    "or the webhook failed and alerts are left for a later run, 64 a bad\n"
    "configuration or no webhook.\n";

struct dry {
	const struct dm_config *cfg;
	unsigned count;
	struct dm_error *err;
};

static int
print_alert(void *ctx, const struct store_alert *a)
{
	struct dry *d = ctx;
	char *body;

	body = alerts_body(a, d->cfg->alerts_format, d->err);
	if (body == NULL)
		return -1;
	if (a->id != 0)
		printf("would send alert %" PRId64 " (%s %s %s, raised %s, %u "
		    "request%s made): %s\n", a->id, a->domain, a->kind, a->key,
		    a->raised_at, a->attempts, a->attempts == 1 ? "" : "s",
		    body);
	else
		printf("would raise %s %s %s: %s\n", a->domain, a->kind,
		    a->key, body);
	free(body);
	d->count++;
	return 0;
}

static int
dry_run(struct store *s, const struct dm_config *cfg, struct dm_error *err)
{
	struct store_alert_scan scan;
	struct store_alert *list = NULL;
	struct dry d = { cfg, 0, err };
	unsigned sent_last_hour, waiting, due, budget;
	size_t count = 0, i;
	int rc = 0;

	alerts_scan_params(cfg, &scan);
	if (store_alerts_candidates(s, &scan, print_alert, &d, err) != 0 ||
	    store_alerts_counts(s, &sent_last_hour, &waiting, &due, err) != 0)
		return -1;
	printf("%u alert%s to raise\n", d.count, d.count == 1 ? "" : "s");
	budget = cfg->alerts_max_per_hour > sent_last_hour ?
	    cfg->alerts_max_per_hour - sent_last_hour : 0;
	d.count = 0;
	if (budget > 0 && store_alerts_due(s, budget, &list, &count, err) != 0)
		return -1;
	for (i = 0; i < count && rc == 0; i++)
		rc = print_alert(&d, &list[i]);
	store_alerts_free(list, count);
	if (rc != 0)
		return -1;
	printf("%u raised alert%s waiting, %u due, %u would be sent now "
	    "(%u sent in the last hour, max_per_hour %u)\n", waiting,
	    waiting == 1 ? "" : "s", due, d.count, sent_last_hour,
	    cfg->alerts_max_per_hour);
	return 0;
}

static void
print_result(const struct alerts_result *r)
{
	printf("%u raised, %u sent, %u failed (%u given up), %u waiting",
	    r->raised, r->sent, r->failed, r->given_up, r->waiting);
	if (r->held > 0)
		printf(" (%u held by max_per_hour)", r->held);
	if (r->other_process)
		printf(" (another process is delivering)");
	printf("\n");
}

int
cmd_alerts(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "dry-run", no_argument, NULL, 'n' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "db", required_argument, NULL, 'D' },
		{ "config", required_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct cmd_db_opts o = { NULL, NULL, 0 };
	struct alerts_result r;
	struct dm_config cfg;
	struct store *s;
	struct dm_error err;
	int c, rc, dry = 0, quiet = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "hnq", longopts, NULL)) != -1) {
		if (c == 'n')
			dry = 1;
		else if (c == 'q')
			quiet = 1;
		else if (c == 'h') {
			fputs(cmd_alerts_usage, stdout);
			return 0;
		} else if (cmd_db_option(c, optarg, &o) != 0) {
			fputs(cmd_alerts_usage, stderr);
			return EX_USAGE;
		}
	}
	if (optind != argc) {
		fputs(cmd_alerts_usage, stderr);
		return EX_USAGE;
	}
	if ((rc = cmd_open_store("alerts", &o, &cfg, &s)) != 0)
		return rc;
	dm_error_clear(&err);
	if (!dry && !alerts_enabled(&cfg)) {
		dm_error_set(&err, DM_E_USAGE, "no webhook: set [alerts] "
		    "webhook or webhook_file in %s (docs/alerts.md)",
		    cfg.path[0] != '\0' ? cfg.path : "the configuration");
		return cmd_close_store("alerts", s, &cfg, &err);
	}
	if (store_check_schema(s, &err) != 0)
		return cmd_close_store("alerts", s, &cfg, &err);
	if (dry) {
		rc = dry_run(s, &cfg, &err);
		return cmd_close_store("alerts", s, &cfg, rc != 0 ? &err :
		    NULL);
	}
	rc = alerts_run(s, &cfg, &r, &err);
	if (!quiet || rc != 0)
		print_result(&r);
	fflush(stdout);
	return cmd_close_store("alerts", s, &cfg, rc != 0 ? &err : NULL);
}
