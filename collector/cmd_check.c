/*
 * cmd_check.c - a domain's DNS posture for mail authentication, and the
 * exact fix for every finding.
 *
 *	dmarcd check DOMAIN [--resolver ADDR[:PORT]]... [--selector S]...
 *	    [--sender HOST]... [--format table|json] [--timeout N]
 *	    [--no-reports] [--db CONNINFO] [--config FILE]
 *
 * The DNS is asked through c-ares (collector/rdns.c, rdns_query()), of
 * the servers given, else [resolve] servers, else resolv.conf's; the
 * records are judged by common/dnsrec.c. In order:
 *
 *   DMARC	_dmarc.DOMAIN, else the organizational domain's (RFC 7489)
 *		and the DMARCbis tree walk's; several records; every tag;
 *		external report destinations and their authorization
 *		(<domain>._report._dmarc.<destination>); with reports, the
 *		next policy step from the readiness analysis;
 *   SPF	the record and its include tree (RFC 7208 limits); with
 *		reports, whether the addresses sending with DOMAIN as MAIL
 *		FROM are covered;
 *   DKIM	the selectors given, and those the reports saw signing for
 *		DOMAIN's organizational domain: one record, the key, CNAME
 *		delegations and dangling ones;
 *   MX		the exchanges, their addresses and forward-confirmed PTRs;
 *   senders	bounce (Return-Path) hosts, given or seen in the reports:
 *		their SPF and MX, and whether they align with DOMAIN;
 *   BIMI	default._bimi.DOMAIN, and its need of an enforcing policy;
 *   MTA-STS, TLS-RPT	whether they are published (information).
 *
 * The reports are read when the database is reachable (--no-reports: do
 * not try); without them the DNS is checked alone, and a finding says so.
 *
 * Exit status: 0 all is ok, 1 warnings, 2 failures; 64 bad usage; 75 no
 * DNS server answered at all.
 */
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "collector/commands.h"
#include "collector/rdns.h"
#include "common/align.h"
#include "common/config.h"
#include "common/dnsrec.h"
#include "common/error.h"
#include "store/store.h"

#define CHECK_MAX_LIST		16	/* --selector, --sender */
#define CHECK_TIMEOUT_S		30	/* the whole check, by default */
#define CHECK_QUERY_MS		3000	/* one query, its retries included */
#define CHECK_REPORT_DAYS	"30"	/* the reports read */
#define CHECK_IPS		"20"	/* sending addresses checked */
#define CHECK_SELECTORS		16	/* selectors taken from the reports */
#define CHECK_SENDERS		8	/* bounce hosts taken from them */
#define CHECK_MX		8	/* exchanges looked at */
#define CHECK_IPS_SEEN		32	/* addresses whose PTR was checked */

const char cmd_check_usage[] =
    "usage: dmarcd check DOMAIN [--resolver ADDR[:PORT]]... [--selector S]...\n"
    "                    [--sender HOST]... [--format table|json]\n"
    "                    [--timeout SECONDS] [--no-reports] [--rua ADDRESS]\n"
    "                    [--db CONNINFO] [--config FILE]\n"
    "\n"
    "Check DOMAIN's DNS for mail authentication: DMARC (with the\n"
    "organizational domain and the tree walk, every tag, external report\n"
    "destinations), SPF (the include tree and its limits), DKIM (the\n"
    "selectors given and those the reports saw), MX and forward-confirmed\n"
    "PTRs, bounce hosts (given with --sender or seen in the reports), BIMI,\n"
    "MTA-STS and TLS-RPT. Each finding says what is wrong and the exact\n"
    "record to publish. With reports stored, the sending addresses are\n"
    "checked against SPF and the next DMARC policy step is the readiness\n"
    "analysis'.\n"
    "\n"
    "  --resolver ADDR[:PORT]  the DNS server to ask (default: [resolve]\n"
    "                          servers, else resolv.conf); again for more\n"
    "  --selector S            a DKIM selector to check; again for more\n"
    "  --sender HOST           a bounce (Return-Path) host; again for more\n"
    "  --format table|json     table on a terminal, json otherwise\n"
    "  --timeout SECONDS       for the whole check (default 30)\n"
    "  --no-reports            do not read the reports\n"
    "  --rua ADDRESS           the address fixes put in rua= (default: the\n"
    "                          first [account] user, else dmarc-reports@)\n"
    "\n"
    "Exit status: 0 all ok, 1 warnings, 2 failures, 64 bad usage, 75 no DNS\n"
    "server answered.\n";

struct check {
	const char *domain;
	char org[DM_DOMAIN_MAX];
	struct rdns *r;
	double deadline;
	struct dm_findings f;
	struct store *s;		/* NULL: no reports */
	unsigned queries, tempfails, answered;
	struct dm_dmarc_policy pol;
	char policy_record[4096];	/* the DMARC record that applies */
	char policy_at[DM_FINDING_SUBJECT];
	char policy_domain[DM_DOMAIN_MAX];	/* where it was found */
	int have_policy;
	const char *selectors[CHECK_MAX_LIST];
	size_t nselectors;
	const char *senders[CHECK_MAX_LIST];
	size_t nsenders;
	char ips[CHECK_IPS_SEEN][RDNS_IP_MAX];	/* PTRs checked */
	size_t nips;
	int oom;
};

static volatile sig_atomic_t check_stop;

static void
on_signal(int sig)
{
	(void)sig;
	check_stop = 1;
}

/* add - a finding; remembers running out of memory. */
static void
add(struct check *c, enum dm_sev sev, const char *code, const char *subject,
    const char *fix, const char *fmt, ...) DM_PRINTF(6, 7);

static void
add(struct check *c, enum dm_sev sev, const char *code, const char *subject,
    const char *fix, const char *fmt, ...)
{
	char what[DM_FINDING_WHAT];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (dm_findings_add(&c->f, sev, code, subject, fix != NULL ? fix : "",
	    "%s", what) != 0)
		c->oom = 1;
}

/* ---- the DNS ---- */

/* The dm_dns_fn of common/dnsrec.h, over rdns_query(). */
static void
lookup(void *ctx, const char *name, enum dm_dns_type type,
    struct dm_dns_result *out)
{
	struct check *c = ctx;
	struct rdns_answer a;
	struct dm_error err;
	size_t i;

	memset(out, 0, sizeof(*out));
	memset(&a, 0, sizeof(a));
	c->queries++;
	dm_error_clear(&err);
	if (rdns_query(c->r, name, (int)type, &a, c->deadline, &check_stop,
	    &err) != 0) {
		c->oom = 1;
		out->rc = DM_DNS_TEMPFAIL;
		return;
	}
	if (a.status != RDNS_TIMEOUT)
		c->answered++;
	/* Not all the records read: never take it for "none". */
	if (a.truncated && a.status == RDNS_OK)
		a.status = RDNS_ERROR;
	switch (a.status) {
	case RDNS_OK:
		out->rc = DM_DNS_FOUND;
		break;
	case RDNS_NODATA:
		out->rc = DM_DNS_NODATA;
		break;
	case RDNS_NXDOMAIN:
		out->rc = DM_DNS_NXDOMAIN;
		break;
	default:
		out->rc = DM_DNS_TEMPFAIL;
		c->tempfails++;
		break;
	}
	if (out->rc == DM_DNS_FOUND && a.count > 0) {
		out->items = calloc(a.count, sizeof(*out->items));
		if (out->items == NULL)
			c->oom = 1;
		for (i = 0; out->items != NULL && i < a.count; i++) {
			const struct rdns_rr *rr = &a.rr[i];
			const char *v = rr->type == DM_DNS_TXT ?
			    (rr->txt != NULL ? rr->txt : "") :
			    rr->type == DM_DNS_A || rr->type == DM_DNS_AAAA ?
			    rr->addr : rr->name;

			if ((out->items[out->count] = strdup(v)) == NULL) {
				c->oom = 1;
				break;
			}
			out->count++;
		}
		if (out->count == 0)
			out->rc = DM_DNS_NODATA;
	}
	rdns_answer_free(&a);
}

/* ask - rdns_query() with the accounting of lookup(); 0, or -1 (oom). */
static int
ask(struct check *c, const char *name, int type, struct rdns_answer *a)
{
	struct dm_error err;

	memset(a, 0, sizeof(*a));
	c->queries++;
	dm_error_clear(&err);
	if (rdns_query(c->r, name, type, a, c->deadline, &check_stop,
	    &err) != 0) {
		c->oom = 1;
		return -1;
	}
	if (a->status != RDNS_TIMEOUT)
		c->answered++;
	if (a->truncated && a->status == RDNS_OK)
		a->status = RDNS_ERROR;	/* not all the records read */
	if (a->status != RDNS_OK && a->status != RDNS_NODATA &&
	    a->status != RDNS_NXDOMAIN)
		c->tempfails++;
	return 0;
}

static int
failed(const struct rdns_answer *a)
{
	return a->status != RDNS_OK && a->status != RDNS_NODATA &&
	    a->status != RDNS_NXDOMAIN;
}

/* dns_failed - a finding for a lookup the DNS did not answer. */
static void
dns_failed(struct check *c, const char *name, const char *what,
    const struct rdns_answer *a)
{
	add(c, DM_SEV_FAIL, "dns.failed", name, NULL, "the %s lookup failed "
	    "(%s from %s): this part was not checked; run again, or ask "
	    "another resolver (--resolver)", what,
	    rdns_status_name(a->status), rdns_servers(c->r));
}

/* txt_records - the TXT records at name that pass keep (NULL: all), as
 * malloc'd texts in *out (count returned); -1 when the lookup failed
 * (a finding said so), -2 out of memory. */
static int
txt_records(struct check *c, const char *name, const char *what,
    int (*keep)(const char *), char ***out, struct rdns_answer *a)
{
	size_t i, n = 0;

	*out = NULL;
	if (ask(c, name, DM_DNS_TXT, a) != 0)
		return -2;
	if (failed(a)) {
		dns_failed(c, name, what, a);
		return -1;
	}
	if (a->count == 0)
		return 0;
	if ((*out = calloc(a->count, sizeof(**out))) == NULL)
		return -2;
	for (i = 0; i < a->count; i++) {
		const char *t = a->rr[i].txt != NULL ? a->rr[i].txt : "";

		if (keep != NULL && !keep(t))
			continue;
		if (((*out)[n] = strdup(t)) == NULL)
			return -2;
		n++;
	}
	return (int)n;
}

static void
free_list(char **list, int n)
{
	int i;

	for (i = 0; list != NULL && i < n; i++)
		free(list[i]);
	free(list);
}

/*
 * with_tags - record with the tags of tags ("p=quarantine; pct=25; t=y")
 * set: replaced where they are, added after p= otherwise. Into out.
 */
static void
with_tags(const char *record, const char *tags, char *out, size_t size)
{
	char buf[4096], *save = NULL, *part;
	char names[8][16], values[8][64];
	int nt = 0, used[8] = { 0 }, i;
	size_t at = 0;
	const char *p;

	/* The tags to set. */
	snprintf(buf, sizeof(buf), "%s", tags);
	for (part = strtok_r(buf, ";", &save); part != NULL && nt < 8;
	    part = strtok_r(NULL, ";", &save)) {
		while (*part == ' ')
			part++;
		if ((p = strchr(part, '=')) == NULL)
			continue;
		snprintf(names[nt], sizeof(names[nt]), "%.*s",
		    (int)(p - part), part);
		snprintf(values[nt], sizeof(values[nt]), "%s", p + 1);
		nt++;
	}
	out[0] = '\0';
	snprintf(buf, sizeof(buf), "%s", record);
	save = NULL;
	for (part = strtok_r(buf, ";", &save); part != NULL;
	    part = strtok_r(NULL, ";", &save)) {
		char name[32];
		const char *v = part;
		size_t len;

		while (*v == ' ' || *v == '\t')
			v++;
		if (*v == '\0')
			continue;
		len = strcspn(v, "= \t");
		snprintf(name, sizeof(name), "%.*s", (int)len, v);
		for (i = 0; i < nt; i++)
			if (strcasecmp(name, names[i]) == 0)
				break;
		if (i < nt) {
			if (used[i])
				continue;
			used[i] = 1;
			at += (size_t)snprintf(out + at, at < size ? size - at :
			    0, "%s%s=%s", at ? "; " : "", names[i], values[i]);
		} else
			at += (size_t)snprintf(out + at, at < size ? size - at :
			    0, "%s%s", at ? "; " : "", v);
		if (strcasecmp(name, "p") == 0)
			for (i = 0; i < nt; i++)
				if (!used[i] && strcasecmp(names[i], "p") != 0 &&
				    strcasecmp(names[i], "sp") != 0) {
					used[i] = 1;
					at += (size_t)snprintf(out + at, at <
					    size ? size - at : 0, "; %s=%s",
					    names[i], values[i]);
				}
	}
	for (i = 0; i < nt; i++)
		if (!used[i])
			at += (size_t)snprintf(out + at, at < size ? size - at :
			    0, "%s%s=%s", at ? "; " : "", names[i], values[i]);
}

static int
is_dmarc(const char *t)
{
	return dm_dmarc_record(t);
}

/* The destinations of rua= and ruf= outside the domain: authorized? */
static void
check_external(struct check *c, const struct dm_dmarc_uri *u, unsigned n,
    const char *tag)
{
	struct rdns_answer a;
	char name[DM_FINDING_SUBJECT], fix[DM_FINDING_FIX];
	char **recs = NULL;
	unsigned i, j;
	int got;

	for (i = 0; i < n; i++) {
		for (j = 0; j < i; j++)
			if (strcmp(u[j].domain, u[i].domain) == 0)
				break;
		if (j < i || u[i].domain[0] == '\0' ||
		    dm_dmarc_external(c->policy_domain, u[i].domain, name,
		    sizeof(name)) != 0)
			continue;
		got = txt_records(c, name, "report authorization", is_dmarc,
		    &recs, &a);
		if (got == -2)
			c->oom = 1;
		else if (got == 0) {
			dm_txt_record(name, "v=DMARC1", fix, sizeof(fix));
			add(c, DM_SEV_FAIL, "dmarc.external_unauthorized",
			    name, fix, "%s sends reports to %s, outside %s, "
			    "but %s has not authorized it (no v=DMARC1 at %s): "
			    "receivers drop those reports. The owner of %s "
			    "must publish this record (or use an address "
			    "under %s).", tag, u[i].address, c->org,
			    u[i].domain, name, u[i].domain, c->org);
		} else if (got > 0)
			add(c, DM_SEV_OK, "dmarc.external_authorized", name,
			    NULL, "%s destination %s is authorized to "
			    "receive %s's reports", tag, u[i].address,
			    c->policy_domain);
		free_list(recs, got > 0 ? got : 0);
		recs = NULL;
		rdns_answer_free(&a);
	}
}

/* A TXT record that means to be DMARC, even when malformed. */
static int
mentions_dmarc(const char *t)
{
	const char *p;

	for (p = t; (p = strchr(p, '=')) != NULL; p++) {
		const char *v = p + 1;

		while (*v == ' ' || *v == '\t')
			v++;
		if (strncasecmp(v, "DMARC1", 6) == 0)
			return 1;
	}
	return 0;
}

/*
 * dmarc_at - the DMARC records at _dmarc.name: how many (their first in
 * rec), 0 none, -1 the lookup failed (a finding says so). Records that
 * mean to be DMARC and are not (v= not first...) are judged here, as
 * findings, and count as none (receivers ignore them).
 */
static int
dmarc_at(struct check *c, const char *name, char *rec, size_t size)
{
	struct rdns_answer a;
	struct dm_dmarc_policy junk;
	char q[DM_FINDING_SUBJECT];
	size_t i;
	int n = 0;

	snprintf(q, sizeof(q), "_dmarc.%s", name);
	if (ask(c, q, DM_DNS_TXT, &a) != 0)
		return -1;
	if (failed(&a) || a.truncated) {
		if (a.truncated)
			a.status = RDNS_ERROR;
		dns_failed(c, q, "DMARC", &a);
		rdns_answer_free(&a);
		return -1;
	}
	for (i = 0; i < a.count; i++) {
		const char *t = a.rr[i].txt != NULL ? a.rr[i].txt : "";

		if (dm_dmarc_record(t)) {
			if (n++ == 0)
				snprintf(rec, size, "%s", t);
		} else if (mentions_dmarc(t)) {
			/* Its findings (dmarc.version...), its fix. */
			if (dm_dmarc_parse(t, name, q, &junk, &c->f) != 0)
				c->oom = 1;
		}
	}
	rdns_answer_free(&a);
	return n;
}

/*
 * The DMARC record that applies: the domain's own; else the nearest
 * above it (DMARCbis tree walk, RFC 9989 4.10: at most 8 names, the 7
 * rightmost labels first for long names) and the organizational
 * domain's (RFC 7489, the Public Suffix List), which may differ.
 */
static void
check_dmarc(struct check *c)
{
	char name[DM_FINDING_SUBJECT], fix[DM_FINDING_FIX];
	char rec[4096], orgrec[4096], walk_at[DM_DOMAIN_MAX];
	const char *at = c->domain, *labels[128], *d;
	size_t nl = 0, i, first;
	int got, og;

	snprintf(name, sizeof(name), "_dmarc.%s", c->domain);
	if ((got = dmarc_at(c, c->domain, rec, sizeof(rec))) < 0)
		return;
	if (got == 0) {
		/* The names above, nearest first, the TLD left out. */
		for (d = strchr(c->domain, '.'); d != NULL && nl < 128;
		    d = strchr(d + 1, '.'))
			if (strchr(d + 1, '.') != NULL)
				labels[nl++] = d + 1;
		first = nl > 7 ? nl - 7 : 0;	/* 8 names at most */
		walk_at[0] = '\0';
		for (i = first; i < nl && got == 0; i++) {
			if ((got = dmarc_at(c, labels[i], rec,
			    sizeof(rec))) < 0)
				return;
			if (got > 0)
				snprintf(walk_at, sizeof(walk_at), "%s",
				    labels[i]);
		}
		if (got == 0) {
			snprintf(rec, sizeof(rec), "v=DMARC1; p=none; "
			    "rua=mailto:dmarc-reports@%s", c->domain);
			dm_txt_record(name, rec, fix, sizeof(fix));
			add(c, DM_SEV_FAIL, "dmarc.missing", name, fix,
			    "no DMARC record at %s nor above it: receivers "
			    "apply no policy and send no reports. Start with "
			    "p=none and a rua= address dmarcd collects from",
			    name);
			return;
		}
		at = walk_at;
		snprintf(name, sizeof(name), "_dmarc.%s", at);
		add(c, DM_SEV_INFO, "dmarc.inherited", name, NULL, "%s has no "
		    "DMARC record of its own: the record at %s applies to it, "
		    "with its sp= (np= for names that do not exist) or else "
		    "its p=", c->domain, name);
		/* RFC 7489 receivers take the organizational domain's. */
		if (strcmp(walk_at, c->org) != 0 && strcmp(c->org,
		    c->domain) != 0) {
			og = dmarc_at(c, c->org, orgrec, sizeof(orgrec));
			if (og >= 0)
				add(c, DM_SEV_WARN, "dmarc.walk_differs", name,
				    NULL, "receivers disagree on %s's policy: "
				    "DMARCbis receivers (the tree walk) apply "
				    "_dmarc.%s, RFC 7489 receivers apply the "
				    "organizational domain's _dmarc.%s (%s). "
				    "Publish a record at _dmarc.%s to make them "
				    "agree", c->domain, walk_at, c->org, og > 0 ?
				    orgrec : "none", c->domain);
		}
	}
	if (got > 1) {
		dm_txt_record(name, rec, fix, sizeof(fix));
		add(c, DM_SEV_FAIL, "dmarc.multiple", name, fix, "%d DMARC "
		    "records at %s: receivers then apply none (RFC 7489 "
		    "6.6.3). Keep one (the first is checked below) and "
		    "delete the others", got, name);
	}
	snprintf(c->policy_record, sizeof(c->policy_record), "%s", rec);
	snprintf(c->policy_at, sizeof(c->policy_at), "%s", name);
	snprintf(c->policy_domain, sizeof(c->policy_domain), "%s", at);
	if (dm_dmarc_parse(rec, at, name, &c->pol, &c->f) != 0)
		c->oom = 1;
	c->have_policy = c->pol.valid;
	check_external(c, c->pol.rua, c->pol.nrua, "rua");
	check_external(c, c->pol.ruf, c->pol.nruf, "ruf");
}

/* ---- the reports ---- */

struct lines {
	char **v;		/* ncol values per row, row after row */
	size_t rows, ncol, alloc;
	int oom;
};

static int
take_row(void *ctx, int ncols, char **values)
{
	struct lines *l = ctx;
	size_t i;

	if (l->rows == 0)
		l->ncol = (size_t)ncols;
	if ((l->rows + 1) * l->ncol > l->alloc) {
		size_t n = l->alloc ? l->alloc * 2 : 64 * l->ncol;
		char **v = realloc(l->v, n * sizeof(*v));

		if (v == NULL) {
			l->oom = 1;
			return -1;
		}
		l->v = v;
		l->alloc = n;
	}
	for (i = 0; i < l->ncol; i++) {
		l->v[l->rows * l->ncol + i] = strdup(values[i] != NULL ?
		    values[i] : "");
		if (l->v[l->rows * l->ncol + i] == NULL)
			l->oom = 1;
	}
	l->rows++;
	return 0;
}

static void
lines_free(struct lines *l)
{
	size_t i;

	for (i = 0; i < l->rows * l->ncol; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/* query - rows of a read-only query into *l; -1 when it failed (a
 * finding says so, and the reports are not read again). */
static int
query(struct check *c, const char *sql, int n, const char *const *p,
    struct lines *l)
{
	struct dm_error err;

	memset(l, 0, sizeof(*l));
	if (c->s == NULL)
		return -1;
	dm_error_clear(&err);
	if (store_query_lines(c->s, sql, n, p, take_row, l, &err) != 0 ||
	    l->oom) {
		add(c, DM_SEV_WARN, "reports.unreadable", c->domain, NULL,
		    "the reports could not be read (%s): checked from the DNS "
		    "alone", l->oom ? "out of memory" : err.msg);
		lines_free(l);
		store_free(c->s);
		c->s = NULL;
		return -1;
	}
	return 0;
}

/* The next policy step, from dmarcd.readiness() (docs/analytics.md). */
static void
check_readiness(struct check *c)
{
	const char *p[1] = { c->domain };
	struct lines l;
	json_error_t jerr;
	json_t *j, *v;
	const char *status, *next, *advice;
	char rec[4096], fix[DM_FINDING_FIX];

	if (c->s == NULL || !c->have_policy)
		return;
	if (query(c, "SELECT dmarcd.readiness($1, " CHECK_REPORT_DAYS
	    ", now())::text", 1, p, &l) != 0 || l.rows != 1) {
		lines_free(&l);
		return;
	}
	j = json_loads(l.v[0], 0, &jerr);
	lines_free(&l);
	if (j == NULL)
		return;
	v = json_object_get(j, "verdict");
	status = json_string_value(json_object_get(v, "status"));
	next = json_string_value(json_object_get(v, "next"));
	advice = json_string_value(json_object_get(v, "advice"));
	if (status == NULL)
		status = "";
	if (strcmp(status, "no_data") == 0)
		add(c, DM_SEV_INFO, "dmarc.readiness", c->policy_at, NULL,
		    "no reports of %s stored in the last %s days: the next "
		    "policy step cannot be judged yet", c->domain,
		    CHECK_REPORT_DAYS);
	else if (strcmp(status, "ready") == 0 && next != NULL) {
		with_tags(c->policy_record, next, rec, sizeof(rec));
		dm_txt_record(c->policy_at, rec, fix, sizeof(fix));
		add(c, DM_SEV_INFO, "dmarc.next_step", c->policy_at, fix,
		    "the reports say: %s", advice != NULL ? advice : "");
	} else if (strcmp(status, "enforced") == 0)
		add(c, DM_SEV_OK, "dmarc.readiness", c->policy_at, NULL,
		    "%s", advice != NULL ? advice : "p=reject is in force");
	else
		add(c, strcmp(status, "at_risk") == 0 ? DM_SEV_FAIL :
		    DM_SEV_WARN, "dmarc.readiness", c->policy_at, NULL,
		    "%s (%s; `dmarcd readiness %s` lists the senders to fix)",
		    advice != NULL ? advice : status, status, c->domain);
	json_decref(j);
}

/* ---- SPF ---- */

/* The addresses that sent as the domain with the domain as MAIL FROM in
 * the reports, checked against its SPF record. */
static void
check_spf_sources(struct check *c)
{
	const char *p[1] = { c->domain };
	struct lines l;
	struct dm_spf_walk w;
	struct dm_findings scratch;
	char what[DM_FINDING_WHAT], name[DM_FINDING_SUBJECT];
	size_t i, at = 0, bad = 0, checked = 0;
	unsigned long long msgs = 0;

	if (c->s == NULL)
		return;
	if (query(c, "SELECT host(source_ip), sum(messages)::text FROM "
	    "dmarcd.rollup_daily WHERE domain = $1 AND day >= current_date - "
	    CHECK_REPORT_DAYS " AND spf_domain = $1 AND source_ip IS NOT NULL "
	    "GROUP BY 1 HAVING sum(messages) > 0 ORDER BY 2 DESC LIMIT "
	    CHECK_IPS, 1, p, &l) != 0)
		return;
	snprintf(name, sizeof(name), "%s", c->domain);
	what[0] = '\0';
	for (i = 0; i < l.rows && !check_stop; i++) {
		const char *ip = l.v[i * 2];

		memset(&scratch, 0, sizeof(scratch));
		memset(&w, 0, sizeof(w));
		if (dm_spf_check(c->domain, ip, lookup, c, &w, &scratch) != 0)
			c->oom = 1;
		dm_findings_free(&scratch);
		checked++;
		if (w.result == DM_SPF_PASS)
			continue;
		bad++;
		msgs += strtoull(l.v[i * 2 + 1], NULL, 10);
		if (at < sizeof(what) - 64)
			at += (size_t)snprintf(what + at, sizeof(what) - at,
			    "%s%s (%s messages: %s)", at ? ", " : "", ip,
			    l.v[i * 2 + 1], dm_spf_result_name(w.result));
	}
	if (checked == 0)
		add(c, DM_SEV_INFO, "spf.sources", name, NULL, "no address "
		    "in the reports of the last %s days used %s as MAIL FROM",
		    CHECK_REPORT_DAYS, c->domain);
	else if (bad == 0)
		add(c, DM_SEV_OK, "spf.sources", name, NULL, "the %zu "
		    "addresses that sent the most with %s as MAIL FROM are "
		    "all covered by its SPF record", checked, c->domain);
	else
		add(c, DM_SEV_WARN, "spf.uncovered", name, NULL, "%zu of "
		    "the %zu addresses that sent the most with %s as MAIL "
		    "FROM (%llu messages) are not covered by its SPF record: "
		    "%s. If they are yours (`dmarcd sources %s` names them), "
		    "add them (ip4:/ip6:, or the platform's include:); if not, "
		    "they are spoofing", bad, checked, c->domain, msgs, what,
		    c->domain);
	lines_free(&l);
}

static void
check_spf(struct check *c)
{
	struct dm_spf_walk w;

	memset(&w, 0, sizeof(w));
	if (dm_spf_check(c->domain, NULL, lookup, c, &w, &c->f) != 0)
		c->oom = 1;
	if (w.records > 0)
		check_spf_sources(c);
}

/* ---- DKIM ---- */

static void
check_selector(struct check *c, const char *d, const char *sel,
    const char *why)
{
	struct rdns_answer a;
	struct dm_dkim_key key;
	char name[DM_FINDING_SUBJECT];
	const char *recs[RDNS_RR_MAX];
	size_t i, n = 0;

	if (snprintf(name, sizeof(name), "%s._domainkey.%s", sel, d) >=
	    (int)sizeof(name))
		return;
	if (ask(c, name, DM_DNS_TXT, &a) != 0)
		return;
	if (failed(&a)) {
		dns_failed(c, name, "DKIM key", &a);
	} else if (a.status == RDNS_NXDOMAIN && a.cnames > 0) {
		add(c, DM_SEV_FAIL, "dkim.dangling_cname", name, NULL,
		    "%s (%s) is a CNAME to %s, which does not exist: every "
		    "signature with s=%s fails. Finish the platform's DKIM "
		    "setup (it publishes the key there), or correct the CNAME "
		    "to the name the platform gives", name, why,
		    a.cname[a.cnames - 1], sel);
	} else if (a.count == 0) {
		add(c, DM_SEV_FAIL, "dkim.no_key", name, NULL, "no DKIM key "
		    "at %s (%s): signatures with d=%s s=%s fail. Publish the "
		    "key the signing platform gives for this selector", name,
		    why, d, sel);
	} else {
		if (a.cnames > 0)
			add(c, DM_SEV_INFO, "dkim.delegated", name, NULL,
			    "%s is delegated by CNAME to %s: the platform "
			    "manages the key (and its rotation)", name,
			    a.cname[a.cnames - 1]);
		for (i = 0; i < a.count; i++)
			recs[n++] = a.rr[i].txt != NULL ? a.rr[i].txt : "";
		memset(&key, 0, sizeof(key));
		if (dm_dkim_parse(recs, n, name, &key, &c->f) != 0)
			c->oom = 1;
	}
	rdns_answer_free(&a);
}

static void
check_dkim(struct check *c)
{
	const char *p[1] = { c->domain };
	struct lines l;
	size_t i, j, done = 0;

	for (i = 0; i < c->nselectors; i++)
		check_selector(c, c->domain, c->selectors[i], "--selector");
	if (c->s != NULL && query(c, "SELECT DISTINCT lower(auth_domain), "
	    "lower(selector) FROM dmarcd.dkim_results WHERE domain = $1 AND "
	    "report_begin >= now() - interval '" CHECK_REPORT_DAYS " days' "
	    "AND coalesce(selector, '') <> '' AND coalesce(auth_domain, '') "
	    "<> '' ORDER BY 1, 2 LIMIT 200", 1, p, &l) == 0) {
		for (i = 0; i < l.rows && done < CHECK_SELECTORS; i++) {
			const char *d = l.v[i * 2], *sel = l.v[i * 2 + 1];

			/* The domain's own signatures (relaxed): a
			 * platform's own d= is not the domain's to fix. */
			if (!dm_aligned(d, c->domain, 0))
				continue;
			for (j = 0; j < c->nselectors; j++)
				if (strcmp(sel, c->selectors[j]) == 0 &&
				    strcmp(d, c->domain) == 0)
					break;
			if (j < c->nselectors)
				continue;
			check_selector(c, d, sel, "seen in the reports");
			done++;
		}
		lines_free(&l);
	}
	if (c->nselectors == 0 && done == 0)
		add(c, DM_SEV_INFO, "dkim.no_selector", c->domain, NULL,
		    "no DKIM selector to check: none was given (--selector) "
		    "and the reports of the last %s days saw no signature of "
		    "%s. DKIM keys cannot be listed from the DNS; without an "
		    "aligned signature DMARC rests on SPF alone, which "
		    "forwarding breaks", CHECK_REPORT_DAYS, c->org);
}

/* ---- MX, and forward-confirmed PTRs ---- */

/* The addresses of host (A and AAAA) into ips[]; how many. */
static size_t
addresses(struct check *c, const char *host, char ips[][RDNS_IP_MAX],
    size_t max)
{
	static const int types[] = { DM_DNS_A, DM_DNS_AAAA };
	struct rdns_answer a;
	size_t n = 0, i, t;

	for (t = 0; t < 2; t++) {
		if (ask(c, host, types[t], &a) != 0)
			return n;
		for (i = 0; i < a.count && n < max; i++)
			snprintf(ips[n++], RDNS_IP_MAX, "%s", a.rr[i].addr);
		rdns_answer_free(&a);
	}
	return n;
}

/* seen_ip - whether ip was checked already (an MX that also sends). */
static int
seen_ip(struct check *c, const char *ip)
{
	size_t i;

	for (i = 0; i < c->nips; i++)
		if (strcmp(c->ips[i], ip) == 0)
			return 1;
	if (c->nips < CHECK_IPS_SEEN)
		snprintf(c->ips[c->nips++], RDNS_IP_MAX, "%s", ip);
	return 0;
}

/*
 * fcrdns_ips - the PTR of each address, and whether it resolves back to
 * it; host (NULL: none, an address of an SPF ip4:/ip6:) is the name it
 * should have.
 */
static void
fcrdns_ips(struct check *c, const char *host, char ips[][RDNS_IP_MAX],
    size_t n, const char *role)
{
	char arpa[80], fix[DM_FINDING_FIX], what[DM_FINDING_SUBJECT + 64];
	const char *list[8];
	struct rdns_result res[8];
	struct dm_error err;
	size_t i, m = 0;

	for (i = 0; i < n && m < 8; i++)
		if (!seen_ip(c, ips[i]))
			list[m++] = ips[i];
	if (m == 0)
		return;
	snprintf(what, sizeof(what), "%s%s%s", role, host != NULL ? " " : "",
	    host != NULL ? host : "");
	memset(res, 0, sizeof(res));
	dm_error_clear(&err);
	if (rdns_resolve(c->r, list, m, res, c->deadline, &check_stop,
	    &err) != 0) {
		c->oom = 1;
		return;
	}
	for (i = 0; i < m; i++) {
		const char *ip = list[i];

		if (!res[i].done || res[i].status == RDNS_TIMEOUT ||
		    res[i].status == RDNS_SERVFAIL ||
		    res[i].status == RDNS_REFUSED) {
			c->tempfails++;
			add(c, DM_SEV_WARN, "ptr.failed", ip, NULL, "the PTR "
			    "lookup of %s (%s) failed: not checked", ip, what);
			continue;
		}
		if (res[i].confirmed && (host == NULL ||
		    strcasecmp(res[i].ptr, host) == 0)) {
			add(c, DM_SEV_OK, "ptr.confirmed", ip, NULL, "%s (%s) "
			    "has the PTR %s, which resolves back to it", ip,
			    what, res[i].ptr);
			continue;
		}
		if (host != NULL && !dm_aligned(host, c->domain, 0)) {
			/* A mail service's host (Microsoft 365...): its
			 * PTRs are not the domain's to fix. */
			add(c, DM_SEV_INFO, "ptr.third_party", ip, NULL,
			    "%s (%s, not under %s) has %s; that is the "
			    "service's to publish", ip, what, c->org,
			    res[i].confirmed ? "a forward-confirmed PTR of "
			    "another name" : "no forward-confirmed PTR");
			continue;
		}
		if (res[i].confirmed) {
			add(c, DM_SEV_INFO, "ptr.other_name", ip, NULL, "%s "
			    "(%s) has the PTR %s, forward-confirmed, but not "
			    "%s: fine for receiving; a sending MTA should say "
			    "that name in HELO", ip, what, res[i].ptr, host);
			continue;
		}
		/* The record to publish: the PTR of the host in the
		 * provider's reverse zone, or, for a bare address whose
		 * PTR names a host of the domain, that host's A. */
		fix[0] = '\0';
		if (host != NULL) {
			if (rdns_arpa_name(ip, arpa, sizeof(arpa)) != 0 ||
			    snprintf(fix, sizeof(fix), "%s. PTR %s.", arpa,
			    host) >= (int)sizeof(fix))
				fix[0] = '\0';
		} else if (res[i].name_count > 0 &&
		    dm_aligned(res[i].names[0], c->domain, 0) &&
		    snprintf(fix, sizeof(fix), "%s. %s %s", res[i].names[0],
		    strchr(ip, ':') != NULL ? "AAAA" : "A", ip) >=
		    (int)sizeof(fix))
			fix[0] = '\0';
		add(c, DM_SEV_WARN, "ptr.unconfirmed", ip, fix[0] != '\0' ?
		    fix : NULL, "%s (%s) has %s%s: receivers distrust mail "
		    "from an address whose PTR does not resolve back to it. "
		    "The PTR is published in the reverse zone, by whoever "
		    "holds the address (the hosting provider)%s", ip, what,
		    res[i].name_count == 0 ? "no PTR" : "the PTR ",
		    res[i].name_count == 0 ? "" : res[i].names[0],
		    host == NULL && fix[0] != '\0' ? "; or make the PTR's "
		    "name resolve to it" : "");
	}
}

/* fcrdns - each address of host: its PTR, forward-confirmed? */
static void
fcrdns(struct check *c, const char *host, const char *role)
{
	char ips[8][RDNS_IP_MAX];
	size_t n;

	n = addresses(c, host, ips, 8);
	if (n == 0) {
		add(c, DM_SEV_FAIL, "mx.no_address", host, NULL, "%s %s has "
		    "no A or AAAA record: mail to it cannot be delivered",
		    role, host);
		return;
	}
	fcrdns_ips(c, host, ips, n, role);
}

/*
 * check_spf_mtas - the domain's own sending MTAs as its SPF record names
 * them (ip4:/ip6: single addresses, a and a:HOST under the domain): their
 * forward-confirmed PTRs.
 */
static void
check_spf_mtas(struct check *c)
{
	struct rdns_answer a;
	char ips[8][RDNS_IP_MAX], hosts[4][RDNS_NAME_MAX + 1], rec[4096];
	char *save = NULL, *t;
	size_t i, n = 0, nh = 0;

	if (ask(c, c->domain, DM_DNS_TXT, &a) != 0)
		return;
	rec[0] = '\0';
	for (i = 0; i < a.count; i++)
		if (a.rr[i].txt != NULL &&
		    strncasecmp(a.rr[i].txt, "v=spf1", 6) == 0 &&
		    (a.rr[i].txt[6] == ' ' || a.rr[i].txt[6] == '\0')) {
			snprintf(rec, sizeof(rec), "%s", a.rr[i].txt);
			break;
		}
	rdns_answer_free(&a);
	for (t = strtok_r(rec, " ", &save); t != NULL;
	    t = strtok_r(NULL, " ", &save)) {
		const char *v = t + (strchr("+-~?", *t) != NULL ? 1 : 0);
		const char *slash;

		if (*t == '-' || *t == '~')
			continue;	/* not authorized: not ours */
		if ((strncasecmp(v, "ip4:", 4) == 0 ||
		    strncasecmp(v, "ip6:", 4) == 0) && n < 8) {
			slash = strchr(v + 4, '/');
			if (slash != NULL && strcmp(slash, "/32") != 0 &&
			    strcmp(slash, "/128") != 0)
				continue;	/* a network */
			snprintf(ips[n], RDNS_IP_MAX, "%.*s", slash != NULL ?
			    (int)(slash - v - 4) : (int)strlen(v + 4), v + 4);
			n++;
		} else if ((strcasecmp(v, "a") == 0 ||
		    strncasecmp(v, "a:", 2) == 0) && nh < 4) {
			const char *h = v[1] == ':' ? v + 2 : c->domain;

			if (strchr(h, '%') == NULL && strchr(h, '/') == NULL &&
			    dm_aligned(h, c->domain, 0))
				snprintf(hosts[nh++], sizeof(hosts[0]), "%s",
				    h);
		}
	}
	if (n > 0)
		fcrdns_ips(c, NULL, ips, n, "a sending MTA in SPF");
	for (i = 0; i < nh; i++) {
		char hips[8][RDNS_IP_MAX];
		size_t hn = addresses(c, hosts[i], hips, 8);

		fcrdns_ips(c, hosts[i], hips, hn, "a sending MTA in SPF");
	}
}

static void
check_mx(struct check *c)
{
	struct rdns_answer a;
	char hosts[CHECK_MX][RDNS_NAME_MAX + 1];
	size_t i, n = 0;

	if (ask(c, c->domain, DM_DNS_MX, &a) != 0)
		return;
	if (failed(&a)) {
		dns_failed(c, c->domain, "MX", &a);
		rdns_answer_free(&a);
		return;
	}
	for (i = 0; i < a.count && n < CHECK_MX; i++)
		snprintf(hosts[n++], sizeof(hosts[0]), "%s", a.rr[i].name);
	rdns_answer_free(&a);
	if (n == 0) {
		add(c, DM_SEV_INFO, "mx.none", c->domain, NULL, "%s has no MX "
		    "record: mail to it goes to its A/AAAA, if any (bounces "
		    "and replies to a From: of %s may not arrive)", c->domain,
		    c->domain);
		return;
	}
	if (n == 1 && (hosts[0][0] == '\0' || strcmp(hosts[0], ".") == 0)) {
		add(c, DM_SEV_INFO, "mx.null", c->domain, NULL, "%s publishes "
		    "a null MX (RFC 7505): it receives no mail", c->domain);
		return;
	}
	for (i = 0; i < n; i++) {
		/* Amazon SES's bounce endpoint: its guides put that MX on
		 * the bounce host (rprmail., eploymail.), never on the
		 * domain whose mailboxes it would swallow. */
		if (strncmp(hosts[i], "feedback-smtp.", 14) == 0) {
			add(c, DM_SEV_FAIL, "mx.platform_feedback", c->domain,
			    NULL, "the MX of %s is %s, a sending platform's "
			    "bounce endpoint (Amazon SES): mail to addresses "
			    "@%s goes to the platform, not to your mailboxes. "
			    "That MX belongs on the bounce (MAIL FROM) host the "
			    "platform names, e.g. bounce.%s; put back the MX "
			    "of your mail service here", c->domain, hosts[i],
			    c->domain, c->domain);
			continue;
		}
		fcrdns(c, hosts[i], "MX");
	}
}

/* ---- senders: bounce (Return-Path) hosts ---- */

static void
check_sender_host(struct check *c, const char *host, const char *why)
{
	struct dm_spf_walk w;
	struct rdns_answer a;

	memset(&w, 0, sizeof(w));
	if (dm_spf_check(host, NULL, lookup, c, &w, &c->f) != 0)
		c->oom = 1;
	if (ask(c, host, DM_DNS_MX, &a) != 0)
		return;
	if (failed(&a))
		dns_failed(c, host, "MX", &a);
	else if (a.count == 0)
		add(c, DM_SEV_WARN, "sender.no_mx", host, NULL, "bounce host "
		    "%s (%s) has no MX: bounces to it are lost, and some "
		    "receivers refuse a MAIL FROM whose domain cannot receive. "
		    "Publish the MX the sending platform gives for it", host,
		    why);
	else
		add(c, DM_SEV_OK, "sender.mx", host, NULL, "bounce host %s "
		    "(%s) receives mail (MX %s)", host, why, a.rr[0].name);
	rdns_answer_free(&a);
	if (dm_aligned(host, c->domain, c->pol.aspf == 's'))
		add(c, DM_SEV_OK, "sender.aligned", host, NULL, "SPF for %s "
		    "aligns with %s (aspf=%c)", host, c->domain,
		    c->pol.aspf == 's' ? 's' : 'r');
	else
		add(c, DM_SEV_WARN, "sender.unaligned", host, NULL, "SPF for "
		    "bounce host %s cannot align with %s (aspf=%c): DMARC "
		    "rests on DKIM for this mail%s", host, c->domain,
		    c->pol.aspf == 's' ? 's' : 'r', c->pol.aspf == 's' ?
		    "; aspf=s needs the exact domain" : "");
}

static void
check_senders(struct check *c)
{
	const char *p[1] = { c->domain };
	struct lines l, pl;
	size_t i, done = 0;
	char fix[DM_FINDING_FIX];

	for (i = 0; i < c->nsenders; i++)
		check_sender_host(c, c->senders[i], "--sender");
	/* The SPF domains that passed, and the envelope_from domains the
	 * receivers wrote (the domain of MAIL FROM, RFC 7489 appendix C;
	 * some write an address). */
	if (c->s == NULL || query(c, "SELECT d, sum(m)::text FROM ("
	    "SELECT spf_domain AS d, sum(messages) AS m FROM "
	    "dmarcd.rollup_daily WHERE domain = $1 AND day >= current_date - "
	    CHECK_REPORT_DAYS " AND spf_domain <> '' AND auth & 8 <> 0 "
	    "GROUP BY 1 UNION ALL SELECT lower(regexp_replace(envelope_from, "
	    "'^.*@', '')), sum(count) FROM dmarcd.records WHERE domain = $1 "
	    "AND report_begin >= now() - interval '" CHECK_REPORT_DAYS
	    " days' AND coalesce(envelope_from, '') <> '' GROUP BY 1) x "
	    "WHERE d <> $1 AND d ~ '^[a-z0-9._-]+$' GROUP BY d HAVING "
	    "sum(m) > 0 ORDER BY 2 DESC, 1 LIMIT 50", 1, p, &l) != 0)
		return;
	for (i = 0; i < l.rows && done < CHECK_SENDERS; i++) {
		const char *host = l.v[i * 2];
		const char *pp[1] = { host };

		if (dm_aligned(host, c->domain, 0)) {
			check_sender_host(c, host, "seen in the reports");
			done++;
			continue;
		}
		/* A platform's own MAIL FROM domain: SPF passes for it and
		 * can never align. */
		fix[0] = '\0';
		if (query(c, "SELECT p.name, p.spf_fix FROM dmarcd.platforms p "
		    "WHERE p.name = dmarcd.platform_of('spf', $1)", 1, pp,
		    &pl) != 0)
			break;
		if (pl.rows == 1)
			snprintf(fix, sizeof(fix), "%s: %s", pl.v[0], pl.v[1]);
		add(c, DM_SEV_WARN, "sender.platform_unaligned", host,
		    fix[0] != '\0' ? fix : NULL, "%s messages of the last %s "
		    "days had MAIL FROM %s%s%s%s, which cannot align with %s: "
		    "that mail passes DMARC only with an aligned DKIM "
		    "signature. Where the platform offers a custom MAIL FROM "
		    "(Return-Path) under %s, set it up", l.v[i * 2 + 1],
		    CHECK_REPORT_DAYS, host, pl.rows == 1 ? " (" : "",
		    pl.rows == 1 ? pl.v[0] : "", pl.rows == 1 ? ")" : "",
		    c->domain, c->org);
		lines_free(&pl);
		done++;
	}
	lines_free(&l);
}

/* ---- BIMI, MTA-STS, TLS-RPT ---- */

static int
starts_bimi(const char *t)
{
	return strncasecmp(t, "v=BIMI1", 7) == 0;
}

static void
check_bimi(struct check *c)
{
	struct rdns_answer a;
	struct dm_bimi b;
	char name[DM_FINDING_SUBJECT], **recs = NULL;
	int got;

	snprintf(name, sizeof(name), "default._bimi.%s", c->domain);
	got = txt_records(c, name, "BIMI", starts_bimi, &recs, &a);
	rdns_answer_free(&a);
	if (got <= 0) {
		if (got == -2)
			c->oom = 1;
		free_list(recs, 0);
		return;
	}
	memset(&b, 0, sizeof(b));
	if (dm_bimi_parse(recs[0], name, &b, &c->f) != 0)
		c->oom = 1;
	if (c->have_policy) {
		struct dm_dmarc_policy eff = c->pol;

		/* Inherited: what applies to the domain is sp=. */
		if (strcmp(c->policy_domain, c->domain) != 0 &&
		    eff.sp[0] != '\0')
			memcpy(eff.p, eff.sp, sizeof(eff.p));
		if (dm_bimi_enforcement(&eff, name, &c->f) != 0)
			c->oom = 1;
	} else
		add(c, DM_SEV_WARN, "bimi.no_enforcement", name, NULL, "a "
		    "BIMI record is published, but %s has no DMARC policy: "
		    "receivers show no logo without p=quarantine or p=reject",
		    c->domain);
	free_list(recs, got);
}

static int
starts_sts(const char *t)
{
	return strncasecmp(t, "v=STSv1", 7) == 0;
}

static int
starts_tlsrpt(const char *t)
{
	return strncasecmp(t, "v=TLSRPTv1", 10) == 0;
}

static void
check_tls(struct check *c)
{
	static const struct {
		const char *prefix, *what, *code;
		int (*keep)(const char *);
	} t[] = {
		{ "_mta-sts", "MTA-STS (RFC 8461: senders must use TLS to "
		    "your MX)", "mta_sts", starts_sts },
		{ "_smtp._tls", "TLS-RPT (RFC 8460: reports of TLS failures "
		    "delivering to you)", "tls_rpt", starts_tlsrpt },
	};
	struct rdns_answer a;
	char name[DM_FINDING_SUBJECT], code[32], **recs;
	size_t i;
	int got;

	for (i = 0; i < 2; i++) {
		snprintf(name, sizeof(name), "%s.%s", t[i].prefix, c->domain);
		snprintf(code, sizeof(code), "%s.%s", t[i].code,
		    "published");
		recs = NULL;
		got = txt_records(c, name, t[i].what, t[i].keep, &recs, &a);
		rdns_answer_free(&a);
		if (got == -2)
			c->oom = 1;
		else if (got > 0)
			add(c, DM_SEV_INFO, code, name, NULL, "%s is published: "
			    "%s", t[i].what, recs[0]);
		else if (got == 0) {
			snprintf(code, sizeof(code), "%s.%s", t[i].code,
			    "absent");
			add(c, DM_SEV_INFO, code, name, NULL, "%s is not "
			    "published (optional)", t[i].what);
		}
		free_list(recs, got > 0 ? got : 0);
	}
}

/* ---- output ---- */

/* text wrapped at width, each line after the first indented. */
static void
wrapped(FILE *out, const char *text, size_t indent, size_t width)
{
	size_t col = indent, len;
	const char *p = text;

	while (*p != '\0') {
		while (*p == ' ')
			p++;
		len = strcspn(p, " ");
		if (len == 0)
			break;
		if (col > indent && col + 1 + len > width) {
			fprintf(out, "\n%*s", (int)indent, "");
			col = indent;
		} else if (col > indent) {
			fputc(' ', out);
			col++;
		}
		fwrite(p, 1, len, out);
		col += len;
		p += len;
	}
	fputc('\n', out);
}

static void
print_table(const struct check *c, FILE *out)
{
	size_t i, n[4] = { 0, 0, 0, 0 };
	static const char *const label[] = { "ok", "INFO", "WARN", "FAIL" };

	fprintf(out, "dmarcd check %s (organizational domain %s; DNS: %s)\n\n",
	    c->domain, c->org, rdns_servers(c->r));
	for (i = 0; i < c->f.count; i++) {
		const struct dm_finding *x = &c->f.items[i];

		n[x->sev]++;
		fprintf(out, "%-4s  %s  %s\n      ", label[x->sev], x->code,
		    x->subject);
		wrapped(out, x->what, 6, 78);
		if (x->fix[0] != '\0') {
			fprintf(out, "      fix: ");
			wrapped(out, x->fix, 11, 1 << 20);
		}
	}
	fprintf(out, "\n%s: %zu fail, %zu warn, %zu info, %zu ok (%u DNS "
	    "queries)\n", c->domain, n[DM_SEV_FAIL], n[DM_SEV_WARN],
	    n[DM_SEV_INFO], n[DM_SEV_OK], c->queries);
}

static int
print_json(const struct check *c, FILE *out)
{
	json_t *j, *list, *counts;
	size_t i, n[4] = { 0, 0, 0, 0 };
	int rc;

	j = json_object();
	list = json_array();
	counts = json_object();
	if (j == NULL || list == NULL || counts == NULL)
		return -1;
	for (i = 0; i < c->f.count; i++) {
		const struct dm_finding *x = &c->f.items[i];

		n[x->sev]++;
		json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:s, "
		    "s:s?}", "severity", dm_sev_name(x->sev), "code", x->code,
		    "subject", x->subject, "what", x->what, "fix",
		    x->fix[0] != '\0' ? x->fix : NULL));
	}
	for (i = 0; i < 4; i++)
		json_object_set_new(counts, dm_sev_name((enum dm_sev)i),
		    json_integer((json_int_t)n[i]));
	json_object_set_new(j, "domain", json_string(c->domain));
	json_object_set_new(j, "organizational_domain", json_string(c->org));
	json_object_set_new(j, "resolver", json_string(rdns_servers(c->r)));
	json_object_set_new(j, "worst",
	    json_string(dm_sev_name(dm_findings_worst(&c->f))));
	json_object_set_new(j, "counts", counts);
	json_object_set_new(j, "queries", json_integer(c->queries));
	json_object_set_new(j, "findings", list);
	rc = json_dumpf(j, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', out);
	json_decref(j);
	return rc;
}

/*
 * rua_in_fixes - the fixes that add a rua= (common/dnsrec.c writes
 * dmarc-reports@DOMAIN) name addr instead: the mailbox the reports are
 * collected from.
 */
static void
rua_in_fixes(struct check *c, const char *addr)
{
	char placeholder[DM_DOMAIN_MAX + 40], out[DM_FINDING_FIX];
	size_t i, plen, at;
	const char *p, *hit;

	snprintf(placeholder, sizeof(placeholder), "mailto:dmarc-reports@%s",
	    c->policy_domain[0] != '\0' ? c->policy_domain : c->domain);
	plen = strlen(placeholder);
	for (i = 0; i < c->f.count; i++) {
		char *fix = c->f.items[i].fix;

		if ((hit = strstr(fix, placeholder)) == NULL)
			continue;
		at = 0;
		out[0] = '\0';
		for (p = fix; (hit = strstr(p, placeholder)) != NULL;
		    p = hit + plen)
			at += (size_t)snprintf(out + at, at < sizeof(out) ?
			    sizeof(out) - at : 0, "%.*smailto:%s",
			    (int)(hit - p), p, addr);
		if (at < sizeof(out))
			snprintf(out + at, sizeof(out) - at, "%s", p);
		if (strlen(out) < DM_FINDING_FIX - 1)
			snprintf(fix, DM_FINDING_FIX, "%s", out);
	}
}

/* ---- the command ---- */

static int
list_add(const char **list, size_t *n, const char *v, const char *opt)
{
	char norm[DM_DOMAIN_MAX];

	if (*n == CHECK_MAX_LIST) {
		fprintf(stderr, "dmarcd check: %s: at most %d\n", opt,
		    CHECK_MAX_LIST);
		return -1;
	}
	if (dm_domain_norm(v, norm, sizeof(norm)) != 0 || norm[0] == '\0') {
		fprintf(stderr, "dmarcd check: %s '%s': not a DNS name\n",
		    opt, v);
		return -1;
	}
	list[(*n)++] = v;
	return 0;
}

int
cmd_check(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "resolver", required_argument, NULL, 'r' },
		{ "selector", required_argument, NULL, 's' },
		{ "sender", required_argument, NULL, 'S' },
		{ "format", required_argument, NULL, 'f' },
		{ "timeout", required_argument, NULL, 't' },
		{ "no-reports", no_argument, NULL, 'n' },
		{ "rua", required_argument, NULL, 'R' },
		{ "db", required_argument, NULL, 'D' },
		{ "config", required_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct cmd_db_opts o = { NULL, NULL, 0 };
	struct rdns_options ropt;
	struct dm_config cfg;
	struct dm_error err;
	struct check c;
	struct sigaction sa;
	char given[DM_CONFIG_SERVERS_MAX], servers[DM_CONFIG_SERVERS_MAX];
	char why[256], domain[DM_DOMAIN_MAX], *end;
	size_t used = 0, i;
	long timeout = CHECK_TIMEOUT_S;
	const char *rua = NULL;
	int ch, json = !isatty(1), reports = 1, rc;
	enum dm_sev worst;

	memset(&c, 0, sizeof(c));
	given[0] = '\0';
	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'r':
			if (cmd_list_append(given, sizeof(given), &used,
			    optarg) != 0) {
				fprintf(stderr, "dmarcd check: --resolver: too "
				    "many servers\n");
				return EX_USAGE;
			}
			break;
		case 's':
			/* A selector is a DNS label or several (RFC 6376). */
			if (list_add(c.selectors, &c.nselectors, optarg,
			    "--selector") != 0)
				return EX_USAGE;
			break;
		case 'S':
			if (list_add(c.senders, &c.nsenders, optarg,
			    "--sender") != 0)
				return EX_USAGE;
			break;
		case 'f':
			if (strcmp(optarg, "json") == 0)
				json = 1;
			else if (strcmp(optarg, "table") == 0)
				json = 0;
			else {
				fprintf(stderr, "dmarcd check: --format '%s': "
				    "table or json\n", optarg);
				return EX_USAGE;
			}
			break;
		case 't':
			timeout = strtol(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || timeout < 1 ||
			    timeout > 3600) {
				fprintf(stderr, "dmarcd check: --timeout '%s': "
				    "seconds, 1 to 3600\n", optarg);
				return EX_USAGE;
			}
			break;
		case 'n':
			reports = 0;
			break;
		case 'R':
			if (strchr(optarg, '@') == NULL || strlen(optarg) >
			    250 || strpbrk(optarg, " \t\";,!") != NULL) {
				fprintf(stderr, "dmarcd check: --rua '%s': an "
				    "address (reports@example.com)\n", optarg);
				return EX_USAGE;
			}
			rua = optarg;
			break;
		case 'h':
			fputs(cmd_check_usage, stdout);
			return 0;
		default:
			if (cmd_db_option(ch, optarg, &o) != 0) {
				fputs(cmd_check_usage, stderr);
				return EX_USAGE;
			}
		}
	}
	if (optind + 1 != argc) {
		fputs(cmd_check_usage, stderr);
		return EX_USAGE;
	}
	if (dm_domain_norm(argv[optind], domain, sizeof(domain)) != 0 ||
	    strchr(domain, '.') == NULL) {
		fprintf(stderr, "dmarcd check: '%s' is not a domain name\n",
		    argv[optind]);
		return EX_USAGE;
	}
	c.domain = domain;
	if (dm_org_domain(domain, c.org, sizeof(c.org)) != 0)
		snprintf(c.org, sizeof(c.org), "%s", domain);

	dm_error_clear(&err);
	dm_config_init(&cfg);
	if (dm_config_load(&cfg, o.config, &err) != 0 ||
	    (o.db != NULL && dm_config_set_db(&cfg, o.db, &err) != 0)) {
		fprintf(stderr, "dmarcd check: %s\n", err.msg);
		dm_config_free(&cfg);
		return cmd_exit_for(&err);
	}
	servers[0] = '\0';
	if (given[0] != '\0' && dm_config_parse_servers(given, servers,
	    sizeof(servers), why, sizeof(why)) != 0) {
		fprintf(stderr, "dmarcd check: --resolver: %s\n", why);
		dm_config_free(&cfg);
		return EX_USAGE;
	}
	memset(&ropt, 0, sizeof(ropt));
	ropt.servers = servers[0] != '\0' ? servers : cfg.resolve_servers;
	ropt.concurrency = 16;
	ropt.timeout_ms = CHECK_QUERY_MS;
	ropt.max_names = RDNS_MAX_NAMES;
	if (rdns_new(&c.r, &ropt, &err) != 0) {
		fprintf(stderr, "dmarcd check: %s\n", err.msg);
		dm_config_free(&cfg);
		return cmd_exit_for(&err);
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	c.deadline = rdns_now() + (double)timeout;

	if (reports) {
		dm_error_clear(&err);
		if (store_connect(&c.s, cfg.conninfo, &err) != 0 ||
		    store_check_schema(c.s, &err) != 0) {
			add(&c, DM_SEV_INFO, "reports.none", domain, NULL,
			    "the reports were not read (%s): the DNS is "
			    "checked alone (--no-reports says so quietly)",
			    err.msg);
			store_free(c.s);
			c.s = NULL;
		}
	}
	/* The address the fixes put in rua=: --rua, else the mailbox of
	 * the first IMAP account dmarcd collects from. */
	for (i = 0; rua == NULL && i < cfg.naccounts; i++)
		if (strchr(cfg.accounts[i].user, '@') != NULL &&
		    strpbrk(cfg.accounts[i].user, " \t\";,!") == NULL)
			rua = cfg.accounts[i].user;
	check_dmarc(&c);
	check_readiness(&c);
	check_spf(&c);
	check_dkim(&c);
	check_mx(&c);
	check_spf_mtas(&c);
	check_senders(&c);
	check_bimi(&c);
	check_tls(&c);

	if (rua != NULL)
		rua_in_fixes(&c, rua);
	if (c.oom) {
		fprintf(stderr, "dmarcd check: out of memory\n");
		rc = EX_OSERR;
	} else if (c.queries > 0 && c.answered == 0) {
		fprintf(stderr, "dmarcd check: no DNS server answered (%s): "
		    "%u queries failed\n", rdns_servers(c.r), c.queries);
		rc = EX_TEMPFAIL;
	} else {
		if (json)
			print_json(&c, stdout);
		else
			print_table(&c, stdout);
		worst = dm_findings_worst(&c.f);
		rc = worst == DM_SEV_FAIL ? 2 : worst == DM_SEV_WARN ? 1 : 0;
	}
	if (check_stop && rc < 2)
		rc = EX_TEMPFAIL;
	dm_findings_free(&c.f);
	store_free(c.s);
	rdns_free(&c.r);
	dm_config_free(&cfg);
	return rc;
}
