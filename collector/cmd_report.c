/*
 * cmd_report.c - what the reports say about a domain, on the command line.
 *
 *	dmarcd summary DOMAIN [--since 30d] [--until T] [--format F]
 *	dmarcd sources DOMAIN [--since 30d] [--until T] [--format F]
 *	dmarcd readiness DOMAIN [--since 30d] [--until T] [--format F]
 *
 * The numbers are those of the API: both take the JSON of the SQL
 * functions dmarcd.summary(), dmarcd.sources() and dmarcd.readiness()
 * (sql/0008_views.sql). --format json prints it as it is (the default
 * when the output is not a terminal); table (the default on one) and csv
 * render it. Without DOMAIN, summary lists every domain (cmd_store.c).
 *
 * Exit status: 0; 64 bad usage; 75 PostgreSQL unreachable or the schema
 * not migrated (cmd_exit_for). A domain without reports is no error: its
 * numbers are zero and readiness says no_data.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "collector/commands.h"
#include "common/config.h"
#include "common/error.h"
#include "store/store.h"

enum format { FMT_AUTO, FMT_TABLE, FMT_JSON, FMT_CSV };

struct report_opts {
	const char *cmd;
	const char *domain;
	time_t since, until;
	int days;		/* of --since, for readiness */
	enum format format;
	int overview_days;	/* summary without DOMAIN: --days */
};

/*
 * parse_when - "30d", "12h", "2w", "YYYY-MM-DD", "YYYY-MM-DDTHH:MM:SSZ"
 * (or +HH:MM) into *t; relative ones count back from now. *days_r gets
 * the days a relative span covers (0 for absolute times).
 */
static int
parse_when(const char *text, time_t now, time_t *t, int *days_r)
{
	struct tm tm;
	const char *end;
	char *num_end;
	long n;

	*days_r = 0;
	if (text[0] >= '0' && text[0] <= '9') {
		n = strtol(text, &num_end, 10);
		if (n > 0 && n <= 3660 && num_end[0] != '\0' &&
		    num_end[1] == '\0') {
			switch (num_end[0]) {
			case 'd':
				*days_r = (int)n;
				*t = now - n * 86400;
				return 0;
			case 'w':
				*days_r = (int)n * 7;
				*t = now - n * 7 * 86400;
				return 0;
			case 'h':
				*days_r = (int)((n + 23) / 24);
				*t = now - n * 3600;
				return 0;
			default:
				break;
			}
		}
	}
	memset(&tm, 0, sizeof(tm));
	end = strptime(text, "%Y-%m-%d", &tm);
	if (end == NULL)
		return -1;
	if (*end == 'T' || *end == ' ') {
		end = strptime(end + 1, "%H:%M:%S", &tm);
		if (end == NULL)
			return -1;
	}
	*t = timegm(&tm);
	if (*end == 'Z' || *end == '\0')
		return end[*end == 'Z'] == '\0' ? 0 : -1;
	if ((*end == '+' || *end == '-') && strlen(end) == 6 &&
	    end[3] == ':') {
		int h = (end[1] - '0') * 10 + (end[2] - '0');
		int m = (end[4] - '0') * 10 + (end[5] - '0');

		if (h > 23 || m > 59)
			return -1;
		*t -= (*end == '+' ? 1 : -1) * (h * 3600 + m * 60);
		return 0;
	}
	return -1;
}

static void
iso(time_t t, char out[32])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- the query ---- */

struct one_text {
	char *text;
};

static int
take_text(void *ctx, int ncols, char **v)
{
	struct one_text *o = ctx;

	if (ncols > 0 && v[0] != NULL && o->text == NULL)
		o->text = strdup(v[0]);
	return 0;
}

/* fetch - the JSON of the command's SQL function, parsed. */
static json_t *
fetch(struct store *s, const struct report_opts *ro, struct dm_error *err)
{
	char since[32], until[32], days[16];
	const char *p[3];
	struct one_text o = { NULL };
	const char *sql;
	json_error_t jerr;
	json_t *j;

	iso(ro->since, since);
	iso(ro->until, until);
	snprintf(days, sizeof(days), "%d", ro->days);
	p[0] = ro->domain;
	if (strcmp(ro->cmd, "readiness") == 0) {
		p[1] = days;
		p[2] = until;
		sql = "SELECT dmarcd.readiness($1, $2::integer, "
		    "$3::timestamptz)::text";
	} else {
		p[1] = since;
		p[2] = until;
		sql = strcmp(ro->cmd, "summary") == 0 ?
		    "SELECT dmarcd.summary($1, $2::timestamptz, "
		    "$3::timestamptz)::text" :
		    "SELECT dmarcd.sources($1, $2::timestamptz, "
		    "$3::timestamptz)::text";
	}
	if (store_query_lines(s, sql, 3, p, take_text, &o, err) != 0)
		return NULL;
	if (o.text == NULL) {
		dm_error_set(err, DM_E_INTERNAL, "no answer from the database");
		return NULL;
	}
	j = json_loads(o.text, 0, &jerr);
	free(o.text);
	if (j == NULL)
		dm_error_set(err, DM_E_INTERNAL, "the database's JSON: %s",
		    jerr.text);
	return j;
}

/* ---- rendering ---- */

static const char *
str(const json_t *o, const char *key)
{
	const char *v = json_string_value(json_object_get(o, key));

	return v != NULL ? v : "";
}

static long long
num(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);

	if (json_is_integer(v))
		return (long long)json_integer_value(v);
	if (json_is_real(v))
		return (long long)json_real_value(v);
	return 0;
}

static double
real(const json_t *o, const char *key)
{
	return json_number_value(json_object_get(o, key));
}

static const char *
pct(long long part, long long whole, char buf[16])
{
	if (whole <= 0)
		return "-";
	snprintf(buf, 16, "%.1f%%", 100.0 * (double)part / (double)whole);
	return buf;
}

/* A CSV field: quoted when it must be. */
static void
csv_field(const char *s, int last)
{
	if (strpbrk(s, ",\"\n\r") != NULL) {
		putchar('"');
		for (; *s != '\0'; s++) {
			if (*s == '"')
				putchar('"');
			putchar(*s);
		}
		putchar('"');
	} else
		fputs(s, stdout);
	putchar(last ? '\n' : ',');
}

static void
csv_num(long long v, int last)
{
	printf("%lld%c", v, last ? '\n' : ',');
}

static void
fix_lines(const json_t *fix, const char *indent)
{
	const json_t *steps = json_object_get(fix, "steps"), *st;
	size_t i;

	if (fix == NULL || json_is_null(fix))
		return;
	printf("%s%s\n", indent, str(fix, "summary"));
	json_array_foreach(steps, i, st)
		printf("%s  - %s: %s.\n%s    %s\n", indent,
		    str(st, "mechanism"), str(st, "problem"), indent,
		    str(st, "action"));
	if (json_object_get(fix, "url") != NULL)
		printf("%s  see %s\n", indent, str(fix, "url"));
}

static void
fix_text(const json_t *fix, char *out, size_t size)
{
	const json_t *steps = json_object_get(fix, "steps"), *st;
	size_t i, len = 0;

	out[0] = '\0';
	if (fix == NULL || json_is_null(fix))
		return;
	len = (size_t)snprintf(out, size, "%s", str(fix, "summary"));
	json_array_foreach(steps, i, st) {
		if (len >= size)
			break;
		len += (size_t)snprintf(out + len, size - len, " %s: %s",
		    str(st, "mechanism"), str(st, "action"));
	}
}

static void
summary_table(const json_t *j)
{
	const json_t *classes = json_object_get(j, "classes");
	const json_t *dis = json_object_get(j, "disagreements");
	const json_t *pol = json_object_get(j, "policy"), *r;
	static const char *const names[] = { "aligned", "forwarded",
	    "unaligned", "unauthorised" };
	long long total = num(j, "messages");
	char a[16], b[16];
	const char *k;
	json_t *v;
	size_t i;

	printf("%s, %.10s to %.10s: %lld messages on %lld day(s), "
	    "from %lld sources (%lld senders)\n", str(j, "domain"),
	    str(j, "since"), str(j, "until"), total, num(j, "days"),
	    num(j, "sources"), num(j, "senders"));
	printf("  DMARC pass (dmarcd)    %12lld  %7s\n", num(j, "dmarc_pass"),
	    pct(num(j, "dmarc_pass"), total, a));
	printf("  DMARC pass (receivers) %12lld  %7s\n",
	    num(j, "receiver_pass"), pct(num(j, "receiver_pass"), total, b));
	printf("  disagreements          %12lld  (dmarcd pass, receiver "
	    "fail: %lld; the reverse: %lld)\n", num(dis, "messages"),
	    num(dis, "dmarcd_pass_receiver_fail"),
	    num(dis, "dmarcd_fail_receiver_pass"));
	printf("  DKIM aligned           %12lld  %7s\n",
	    num(json_object_get(j, "dkim"), "aligned"),
	    pct(num(json_object_get(j, "dkim"), "aligned"), total, a));
	printf("  SPF aligned            %12lld  %7s\n",
	    num(json_object_get(j, "spf"), "aligned"),
	    pct(num(json_object_get(j, "spf"), "aligned"), total, a));
	printf("\n  %-14s %12s %8s %8s\n", "CLASS", "MESSAGES", "SHARE",
	    "SENDERS");
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const json_t *c = json_object_get(classes, names[i]);

		printf("  %-14s %12lld %8s %8lld\n", names[i],
		    num(c, "messages"), pct(num(c, "messages"), total, a),
		    num(c, "senders"));
	}
	printf("\n  disposition:");
	json_object_foreach((json_t *)json_object_get(j, "disposition"), k, v)
		printf(" %s %lld", k, (long long)json_integer_value(v));
	printf("\n  policy: p=%s", pol != NULL ? str(pol, "p") : "?");
	if (pol != NULL) {
		if (json_object_get(pol, "sp") != NULL)
			printf(" sp=%s", str(pol, "sp"));
		if (json_object_get(pol, "np") != NULL)
			printf(" np=%s", str(pol, "np"));
		if (json_object_get(pol, "pct") != NULL)
			printf(" pct=%lld", num(pol, "pct"));
		printf(" adkim=%s aspf=%s", str(pol, "adkim"),
		    str(pol, "aspf"));
	}
	printf("\n\n  %-40s %8s %12s\n", "REPORTER", "REPORTS", "MESSAGES");
	json_array_foreach((json_t *)json_object_get(j, "reporters"), i, r)
		printf("  %-40.40s %8lld %12lld\n", str(r, "org_name"),
		    num(r, "reports"), num(r, "messages"));
}

static void
summary_csv(const json_t *j)
{
	const json_t *classes = json_object_get(j, "classes");
	const json_t *dis = json_object_get(j, "disagreements");
	const char *k;
	json_t *v;

	printf("metric,value\n");
	printf("messages,%lld\ndays,%lld\nsources,%lld\nsenders,%lld\n",
	    num(j, "messages"), num(j, "days"), num(j, "sources"),
	    num(j, "senders"));
	printf("dmarc_pass,%lld\nreceiver_pass,%lld\n", num(j, "dmarc_pass"),
	    num(j, "receiver_pass"));
	printf("disagreements,%lld\n", num(dis, "messages"));
	printf("dkim_aligned,%lld\nspf_aligned,%lld\n",
	    num(json_object_get(j, "dkim"), "aligned"),
	    num(json_object_get(j, "spf"), "aligned"));
	json_object_foreach((json_t *)classes, k, v)
		printf("class_%s,%lld\n", k, num(v, "messages"));
	json_object_foreach((json_t *)json_object_get(j, "disposition"), k, v)
		printf("disposition_%s,%lld\n", k,
		    (long long)json_integer_value(v));
	printf("reports,%lld\n", num(j, "reports"));
}

static void
sources_table(const json_t *j)
{
	const json_t *s;
	char a[16], fix[2048];
	size_t i;

	printf("%-32s %-18s %-12s %10s %7s %7s %7s %5s\n", "SENDER",
	    "PLATFORM", "CLASS", "MESSAGES", "PASS", "DKIM", "SPF", "IPS");
	json_array_foreach((json_t *)json_object_get(j, "senders"), i, s) {
		long long m = num(s, "messages");
		char b[16], c[16];

		printf("%-32.32s %-18.18s %-12s %10lld %7s %7s %7s %5lld\n",
		    str(s, "sender"), str(s, "platform"), str(s, "class"), m,
		    pct(num(s, "dmarc_pass"), m, a),
		    pct(num(s, "dkim_aligned"), m, b),
		    pct(num(s, "spf_aligned"), m, c), num(s, "ips"));
		fix_text(json_object_get(s, "fix"), fix, sizeof(fix));
		if (fix[0] != '\0' && strcmp(str(s, "class"), "aligned") != 0 &&
		    strcmp(str(s, "class"), "unauthorised") != 0)
			fix_lines(json_object_get(s, "fix"), "    ");
		else if (fix[0] != '\0' && num(s, "failing") > 0 &&
		    strcmp(str(s, "class"), "aligned") == 0)
			fix_lines(json_object_get(s, "fix"), "    ");
	}
}

static void
sources_csv(const json_t *j)
{
	const json_t *s;
	char fix[4096];
	size_t i;

	printf("sender,platform,class,messages,dmarc_pass,receiver_pass,"
	    "failing,dkim_aligned,spf_aligned,ips,first_day,last_day,fix\n");
	json_array_foreach((json_t *)json_object_get(j, "senders"), i, s) {
		csv_field(str(s, "sender"), 0);
		csv_field(str(s, "platform"), 0);
		csv_field(str(s, "class"), 0);
		csv_num(num(s, "messages"), 0);
		csv_num(num(s, "dmarc_pass"), 0);
		csv_num(num(s, "receiver_pass"), 0);
		csv_num(num(s, "failing"), 0);
		csv_num(num(s, "dkim_aligned"), 0);
		csv_num(num(s, "spf_aligned"), 0);
		csv_num(num(s, "ips"), 0);
		csv_field(str(s, "first_day"), 0);
		csv_field(str(s, "last_day"), 0);
		fix_text(json_object_get(s, "fix"), fix, sizeof(fix));
		csv_field(fix, 1);
	}
}

static void
readiness_table(const json_t *j)
{
	const json_t *v = json_object_get(j, "verdict");
	const json_t *lg = json_object_get(j, "legitimate");
	const json_t *im = json_object_get(j, "impact");
	const json_t *sub = json_object_get(j, "subdomains"), *b, *t;
	size_t i;

	printf("%s: %s (policy now %s), %s to %s, reports on %lld of %lld "
	    "days\n", str(j, "domain"), str(v, "status"), str(j, "current"),
	    str(j, "since"), str(j, "until"), num(j, "data_days"),
	    num(j, "days"));
	printf("  %s\n", str(v, "advice"));
	if (json_object_get(v, "next") != NULL)
		printf("  next: %s\n", str(v, "next"));
	printf("\n  legitimate mail      %12lld, aligned %lld (%.1f%%)\n",
	    num(lg, "messages"), num(lg, "aligned"),
	    100.0 * real(lg, "share"));
	printf("  forwarded            %12lld (failing %lld)\n",
	    num(json_object_get(j, "forwarded"), "messages"),
	    num(json_object_get(j, "forwarded"), "failing"));
	printf("  unauthorised         %12lld\n",
	    num(json_object_get(j, "unauthorised"), "messages"));
	printf("  at p=quarantine or p=reject, about %.1f legitimate "
	    "message(s) a day would be blocked (last %lld day(s) of "
	    "reports)\n", real(im, "messages_per_day"),
	    num(im, "basis_days"));
	json_array_foreach((json_t *)json_object_get(im, "senders"), i, b)
		printf("    %-32.32s %10.1f a day\n", str(b, "sender"),
		    real(b, "messages_per_day"));
	if (json_array_size(json_object_get(j, "blockers")) > 0)
		printf("\n  blockers:\n");
	json_array_foreach((json_t *)json_object_get(j, "blockers"), i, b) {
		/* The platform, when the sender is named otherwise. */
		int other = json_object_get(b, "platform") != NULL &&
		    strcmp(str(b, "platform"), str(b, "sender")) != 0;

		printf("  * %s%s%s%s: %lld of %lld messages fail (%.1f a day)\n",
		    str(b, "sender"), other ? " (" : "",
		    other ? str(b, "platform") : "", other ? ")" : "",
		    num(b, "failing"), num(b, "messages"),
		    real(b, "failing_per_day"));
		fix_lines(json_object_get(b, "fix"), "    ");
	}
	json_array_foreach((json_t *)json_object_get(sub, "advice"), i, t)
		printf("%s  subdomains: %s\n", i == 0 ? "\n" : "",
		    json_string_value(t));
	printf("\n  %-10s %12s %12s %8s %12s\n", "DAY", "LEGITIMATE",
	    "ALIGNED", "SHARE", "UNAUTHORISED");
	json_array_foreach((json_t *)json_object_get(j, "trend"), i, t) {
		char a[16];

		printf("  %-10s %12lld %12lld %8s %12lld\n", str(t, "day"),
		    num(t, "legitimate"), num(t, "aligned"),
		    pct(num(t, "aligned"), num(t, "legitimate"), a),
		    num(t, "unauthorised"));
	}
}

static void
readiness_csv(const json_t *j)
{
	const json_t *t;
	size_t i;

	printf("day,legitimate,aligned,share,unauthorised\n");
	json_array_foreach((json_t *)json_object_get(j, "trend"), i, t) {
		csv_field(str(t, "day"), 0);
		csv_num(num(t, "legitimate"), 0);
		csv_num(num(t, "aligned"), 0);
		printf("%.4f,", real(t, "share"));
		csv_num(num(t, "unauthorised"), 1);
	}
}

static void
render(const struct report_opts *ro, json_t *j)
{
	enum format f = ro->format;

	if (f == FMT_AUTO)
		f = isatty(STDOUT_FILENO) ? FMT_TABLE : FMT_JSON;
	if (f == FMT_JSON) {
		json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		putchar('\n');
	} else if (strcmp(ro->cmd, "summary") == 0)
		(f == FMT_CSV ? summary_csv : summary_table)(j);
	else if (strcmp(ro->cmd, "sources") == 0)
		(f == FMT_CSV ? sources_csv : sources_table)(j);
	else
		(f == FMT_CSV ? readiness_csv : readiness_table)(j);
}

/* ---- the commands ---- */

const char cmd_sources_usage[] =
    "usage: dmarcd sources DOMAIN [--since WHEN] [--until WHEN]\n"
    "                      [--format table|json|csv]\n"
    "\n"
    "Who sends as DOMAIN: each sender (platform, PTR domain, passing DKIM\n"
    "or SPF domain, or network), its class (aligned, forwarded,\n"
    "unaligned, unauthorised) and, when it fails, the fix.\n"
    CMD_REPORT_USAGE_OPTIONS;

const char cmd_readiness_usage[] =
    "usage: dmarcd readiness DOMAIN [--since 30d] [--until WHEN]\n"
    "                        [--format table|json|csv]\n"
    "\n"
    "Whether DOMAIN can move to a stricter policy: the share of\n"
    "legitimate mail aligned over the days complete before --until, what\n"
    "p=quarantine or p=reject would block a day, the blockers and their\n"
    "fixes, and the next step.\n"
    CMD_REPORT_USAGE_OPTIONS;

static int
run(int argc, char **argv, const char *cmd, const char *usage)
{
	static const struct option longopts[] = {
		{ "since", required_argument, NULL, 's' },
		{ "until", required_argument, NULL, 'u' },
		{ "format", required_argument, NULL, 'f' },
		{ "days", required_argument, NULL, 'd' },
		{ "domain", required_argument, NULL, 'o' },
		{ "db", required_argument, NULL, 'D' },
		{ "config", required_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct report_opts ro;
	struct cmd_db_opts o = { NULL, NULL, 0 };
	struct dm_config cfg;
	struct store *s;
	struct dm_error err;
	const char *since = "30d", *until = NULL, *days = NULL;
	const char *domain_opt = NULL;
	time_t now = time(NULL);
	int c, rc, ignored;
	json_t *j;

	memset(&ro, 0, sizeof(ro));
	ro.cmd = cmd;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (c == 's')
			since = optarg;
		else if (c == 'u')
			until = optarg;
		else if (c == 'd' && strcmp(cmd, "summary") == 0)
			days = optarg;
		else if (c == 'o' && strcmp(cmd, "summary") == 0)
			domain_opt = optarg;
		else if (c == 'f') {
			if (strcmp(optarg, "table") == 0)
				ro.format = FMT_TABLE;
			else if (strcmp(optarg, "json") == 0)
				ro.format = FMT_JSON;
			else if (strcmp(optarg, "csv") == 0)
				ro.format = FMT_CSV;
			else {
				fprintf(stderr, "dmarcd %s: --format '%s': "
				    "table, json or csv\n", cmd, optarg);
				return EX_USAGE;
			}
		} else if (c == 'h') {
			fputs(usage, stdout);
			return 0;
		} else if (cmd_db_option(c, optarg, &o) != 0) {
			fputs(usage, stderr);
			return EX_USAGE;
		}
	}
	/* summary without DOMAIN: the overview of every domain. */
	if (strcmp(cmd, "summary") == 0 && optind == argc)
		return cmd_summary_overview(&o, days, domain_opt);
	if (optind + 1 != argc || days != NULL || domain_opt != NULL) {
		fputs(usage, stderr);
		return EX_USAGE;
	}
	ro.domain = argv[optind];
	if (strlen(ro.domain) > 253 || strchr(ro.domain, '/') != NULL) {
		fprintf(stderr, "dmarcd %s: '%s' is not a domain name\n", cmd,
		    ro.domain);
		return EX_USAGE;
	}
	ro.until = now;
	if (until != NULL && parse_when(until, now, &ro.until, &ignored) != 0) {
		fprintf(stderr, "dmarcd %s: --until '%s': a time like 2026-11-01, "
		    "2026-11-01T12:00:00Z or 7d\n", cmd, until);
		return EX_USAGE;
	}
	if (parse_when(since, ro.until, &ro.since, &ro.days) != 0 ||
	    ro.since >= ro.until) {
		fprintf(stderr, "dmarcd %s: --since '%s': a span like 30d, 2w, "
		    "12h, or a time before --until\n", cmd, since);
		return EX_USAGE;
	}
	if (ro.days == 0)	/* an absolute --since: the days up to until */
		ro.days = (int)((ro.until - ro.since + 86399) / 86400);
	if (ro.days > 366 && strcmp(cmd, "readiness") == 0) {
		fprintf(stderr, "dmarcd readiness: --since: at most 366 days\n");
		return EX_USAGE;
	}
	if ((rc = cmd_open_store(cmd, &o, &cfg, &s)) != 0)
		return rc;
	dm_error_clear(&err);
	if (store_check_schema(s, &err) != 0)
		return cmd_close_store(cmd, s, &cfg, &err);
	j = fetch(s, &ro, &err);
	if (j == NULL)
		return cmd_close_store(cmd, s, &cfg, &err);
	render(&ro, j);
	json_decref(j);
	if (fflush(stdout) != 0) {
		dm_error_set(&err, DM_E_IO, "cannot write the output");
		return cmd_close_store(cmd, s, &cfg, &err);
	}
	return cmd_close_store("", s, &cfg, NULL);
}

int
cmd_summary(int argc, char **argv)
{
	return run(argc, argv, "summary", cmd_summary_usage);
}

int
cmd_sources(int argc, char **argv)
{
	return run(argc, argv, "sources", cmd_sources_usage);
}

int
cmd_readiness(int argc, char **argv)
{
	return run(argc, argv, "readiness", cmd_readiness_usage);
}
