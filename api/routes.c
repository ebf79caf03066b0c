/*
 * routes.c - what each API path answers: the path matched, the bearer
 * token checked, the parameters checked (params.c), then one prepared
 * statement run on the worker thread's own PostgreSQL connection.
 *
 * Order of the checks, so that nothing is told to whom it should not be:
 * unknown path 404, method 405, no or bad token 401, a domain the token
 * does not cover 403 (before anything is read: the answer is the same
 * whether the domain has data or not), a bad parameter 400, then the
 * query. A database that does not answer is 503, an unexpected database
 * error 500 (logged to stderr without parameters).
 *
 * Tokens: the SHA-256 of the presented token is looked up in
 * dmarcd.api_tokens; a valid one (not revoked, not expired) is kept in
 * a small direct-mapped cache for [api] token_cache seconds, so that a
 * revocation takes effect within that time. Only hashes are compared and
 * kept; the token itself is never stored nor logged.
 *
 * Connections: one per MHD worker thread (pthread key; closed when the
 * thread ends at api_stop()), opened on first use and again after a
 * failure (one retry per request), statements prepared on first use on
 * each connection. The session is read-only, in UTC, with
 * statement_timeout = [api] request_timeout.
 *
 * Lists are keyset-paginated: newest first, limit (default 100, at most
 * 1000) rows, and "next_cursor" (null on the last page) to pass back as
 * cursor=. Reports page on (begin_time, id), records on idx, failure
 * reports and rejected inputs on id.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "api/api.h"
#include "common/buf.h"
#include "common/config.h"
#include "store/pq.h"
#include "store/store.h"

#define TOKEN_MAX_LEN	512
#define CACHE_SLOTS	512
#define LIST_MAX_BYTES	(64u << 20)	/* an answer built in memory */
#define CONNECT_TIMEOUT	"5"

enum stmt {
	S_TOKEN, S_DOMAINS, S_SUMMARY, S_SOURCES, S_READINESS, S_REPORTS,
	S_REPORT, S_RECORDS, S_RAW, S_FAILURES, S_REJECTED, S_READY,
	S_METRICS, S_MAILBOXES, S_COUNT
};

#define TS(n)	"to_timestamp($" #n "::double precision)"

static const struct {
	const char *name;
	const char *sql;
	int nparams;
} stmts[S_COUNT] = {
	[S_TOKEN] = { "api_token",
	    "SELECT domains IS NULL, array_to_string(domains, ' '), "
	    "expires_at IS NOT NULL AND expires_at <= now(), "
	    "revoked_at IS NOT NULL, extract(epoch FROM expires_at)::bigint "
	    "FROM dmarcd.api_tokens WHERE sha256 = $1::bytea", 1 },
	[S_DOMAINS] = { "api_domains",
	    "WITH r AS (SELECT domain, count(*) AS reports, "
	    " sum(message_count) AS messages, min(begin_time) AS first, "
	    " max(end_time) AS last FROM dmarcd.reports "
	    " WHERE payload_sha256 IS NOT NULL AND ($1::text IS NULL OR "
	    " domain = ANY (string_to_array($1, ' '))) GROUP BY domain), "
	    "f AS (SELECT domain, count(*) AS failures "
	    " FROM dmarcd.failure_reports WHERE $1::text IS NULL OR "
	    " domain = ANY (string_to_array($1, ' ')) GROUP BY domain) "
	    "SELECT coalesce(json_agg(json_build_object("
	    " 'domain', coalesce(r.domain, f.domain), "
	    " 'reports', coalesce(r.reports, 0), "
	    " 'messages', coalesce(r.messages, 0), "
	    " 'failure_reports', coalesce(f.failures, 0), "
	    " 'first', r.first, 'last', r.last) "
	    " ORDER BY coalesce(r.domain, f.domain)), '[]')::text "
	    "FROM r FULL JOIN f ON f.domain = r.domain", 1 },
	[S_SUMMARY] = { "api_summary",
	    "SELECT dmarcd.summary($1::text, " TS(2) ", " TS(3) ")::text", 3 },
	[S_SOURCES] = { "api_sources",
	    "SELECT dmarcd.sources($1::text, " TS(2) ", " TS(3) ")::text", 3 },
	[S_READINESS] = { "api_readiness",
	    "SELECT dmarcd.readiness($1::text, $2::integer, " TS(3) ")::text", 3 },
	[S_REPORTS] = { "api_reports",
	    "SELECT json_build_object('id', id, 'org_name', org_name, "
	    " 'report_id', report_id, 'email', email, 'begin', begin_time, "
	    " 'end', end_time, 'records', record_count, "
	    " 'messages', message_count, 'warnings', warning_count, "
	    " 'errors', errors, 'revision', revision, "
	    " 'revision_of', revision_of, 'duplicates', duplicates, "
	    " 'schema', schema, 'ingested_at', ingested_at)::text, "
	    " (extract(epoch FROM begin_time) * 1000000)::bigint, id "
	    "FROM dmarcd.reports WHERE domain = $1 AND "
	    " payload_sha256 IS NOT NULL AND begin_time >= " TS(2) " AND "
	    " begin_time < " TS(3) " AND ($4::bigint IS NULL OR "
	    " (begin_time, id) < (timestamptz 'epoch' + $4::bigint * "
	    " interval '1 microsecond', $5::bigint)) "
	    "ORDER BY begin_time DESC, id DESC LIMIT $6::integer", 6 },
	[S_REPORT] = { "api_report",
	    "SELECT json_build_object('id', r.id, 'org_name', r.org_name, "
	    " 'report_id', r.report_id, 'email', r.email, "
	    " 'extra_contact_info', r.extra_contact_info, "
	    " 'generator', r.generator, 'begin', r.begin_time, "
	    " 'end', r.end_time, 'records', r.record_count, "
	    " 'messages', r.message_count, 'errors', r.errors, "
	    " 'revision', r.revision, 'revision_of', r.revision_of, "
	    " 'duplicates', r.duplicates, 'schema', r.schema, "
	    " 'version', r.version, 'ingested_at', r.ingested_at, "
	    " 'warnings', (SELECT coalesce(json_agg(json_build_object("
	    "  'line', w.line, 'text', w.text, 'count', w.count) "
	    "  ORDER BY w.n), '[]') FROM dmarcd.report_warnings w "
	    "  WHERE w.domain = r.domain AND w.report = r.id), "
	    " 'policy_published', (SELECT json_build_object('adkim', "
	    "  p.adkim, 'aspf', p.aspf, 'p', p.p, 'sp', p.sp, 'np', p.np, "
	    "  'pct', p.pct, 'fo', p.fo, 'testing', p.testing, "
	    "  'discovery_method', p.discovery_method) "
	    "  FROM dmarcd.policy_published p WHERE p.domain = r.domain "
	    "  AND p.report = r.id))::text, r.begin_time "
	    "FROM dmarcd.reports r WHERE r.domain = $1 AND r.id = $2::bigint "
	    " AND r.payload_sha256 IS NOT NULL", 2 },
	[S_RECORDS] = { "api_records",
	    "SELECT json_build_object('idx', x.idx, "
	    " 'source_ip', coalesce(host(x.source_ip), x.source_ip_raw), "
	    " 'count', x.count, 'disposition', x.disposition, "
	    " 'dkim', x.dkim, 'spf', x.spf, 'reasons', x.reasons, "
	    " 'reason_comments', x.reason_comments, "
	    " 'header_from', x.header_from, "
	    " 'envelope_from', x.envelope_from, "
	    " 'envelope_to', x.envelope_to, 'auth', x.auth, "
	    " 'dkim_domain', x.dkim_domain, 'spf_domain', x.spf_domain, "
	    " 'override', x.override, "
	    " 'dkim_results', (SELECT coalesce(json_agg(json_build_object("
	    "  'domain', d.auth_domain, 'selector', d.selector, "
	    "  'result', d.result, 'human_result', d.human_result) "
	    "  ORDER BY d.n), '[]') FROM dmarcd.dkim_results d "
	    "  WHERE d.domain = x.domain AND d.report_begin = x.report_begin "
	    "  AND d.report = x.report AND d.idx = x.idx), "
	    " 'spf_results', (SELECT coalesce(json_agg(json_build_object("
	    "  'domain', s.auth_domain, 'scope', s.scope, "
	    "  'result', s.result, 'human_result', s.human_result) "
	    "  ORDER BY s.n), '[]') FROM dmarcd.spf_results s "
	    "  WHERE s.domain = x.domain AND s.report_begin = x.report_begin "
	    "  AND s.report = x.report AND s.idx = x.idx))::text, x.idx "
	    "FROM dmarcd.records x WHERE x.domain = $1 AND "
	    " x.report_begin = $2::timestamptz AND x.report = $3::bigint AND "
	    " x.idx > $4::bigint ORDER BY x.idx LIMIT $5::integer", 5 },
	[S_RAW] = { "api_raw",
	    "SELECT encoding, size, data FROM dmarcd.report_raw($1, "
	    "$2::bigint, $3::integer)", 3 },
	[S_FAILURES] = { "api_failures",
	    "SELECT json_build_object('id', id, "
	    " 'arrival_time', arrival_time, 'arrival_date', arrival_date, "
	    " 'arf', arf, 'feedback_type', feedback_type, "
	    " 'user_agent', user_agent, 'auth_failure', auth_failure, "
	    " 'identity_alignment', identity_alignment, "
	    " 'delivery_result', delivery_result, "
	    " 'source_ip', coalesce(host(source_ip), source_ip_raw), "
	    " 'reporting_mta', reporting_mta, "
	    " 'original_mail_from', original_mail_from, "
	    " 'original_rcpt_to', original_rcpt_to, "
	    " 'reported_domains', reported_domains, "
	    " 'dkim_domain', dkim_domain, 'dkim_selector', dkim_selector, "
	    " 'spf_dns', spf_dns, 'incidents', incidents, 'from', h_from, "
	    " 'to', h_to, 'subject', h_subject, 'date', h_date, "
	    " 'message_id', h_message_id, 'duplicates', duplicates, "
	    " 'ingested_at', ingested_at)::text, id "
	    "FROM dmarcd.failure_reports WHERE domain = $1 AND "
	    " coalesce(arrival_time, ingested_at) >= " TS(2) " AND "
	    " coalesce(arrival_time, ingested_at) < " TS(3) " AND "
	    " ($4::bigint IS NULL OR id < $4::bigint) "
	    "ORDER BY id DESC LIMIT $5::integer", 5 },
	[S_REJECTED] = { "api_rejected",
	    "SELECT json_build_object('id', id, "
	    " 'sha256', encode(raw_sha256, 'hex'), 'location', location, "
	    " 'source', source, 'error_code', error_code, 'error', error, "
	    " 'first_seen', first_seen, 'last_seen', last_seen, "
	    " 'attempts', attempts, 'resolved_at', resolved_at)::text, id "
	    "FROM dmarcd.rejected_inputs WHERE last_seen >= " TS(1) " AND "
	    " last_seen < " TS(2) " AND ($3::bigint IS NULL OR "
	    " id < $3::bigint) ORDER BY id DESC LIMIT $4::integer", 4 },
	[S_READY] = { "api_ready",
	    "SELECT coalesce(max(version), 0) FROM dmarcd.schema_migrations",
	    0 },
	[S_METRICS] = { "api_metrics",
	    "SELECT count(*), coalesce(sum(reports), 0), "
	    " coalesce(sum(records), 0), coalesce(sum(failure_reports), 0), "
	    " coalesce(sum(duplicates), 0), coalesce(sum(revisions), 0), "
	    " coalesce(sum(rejected), 0), "
	    " count(*) FILTER (WHERE error IS NOT NULL) "
	    "FROM dmarcd.ingest_log", 0 },
	[S_MAILBOXES] = { "api_mailboxes",
	    "SELECT account, mailbox, extract(epoch FROM last_fetch_at) "
	    "FROM dmarcd.imap_mailboxes WHERE last_fetch_at IS NOT NULL "
	    "ORDER BY account, mailbox LIMIT 1000", 0 },
};

struct token_entry {
	unsigned char sha[32];
	int used;
	int all;		/* every domain */
	char *domains;		/* "a.example b.example" */
	int64_t expires;	/* 0: never */
	int64_t cached_until;
};

struct api_routes {
	char conninfo[DM_CONFIG_CONNINFO_MAX];
	char timeout_sql[96];
	unsigned token_cache_s;
	pthread_key_t db_key;
	pthread_mutex_t cache_lock;
	struct token_entry cache[CACHE_SLOTS];
	struct api_answers *answers;	/* NULL: none kept */
	int status_public;		/* / without a token */
};

/* One per worker thread. */
struct db {
	struct api_routes *rt;
	PGconn *pg;
	uint32_t prepared;	/* bit per enum stmt */
};

/* What a token may see. */
struct scope {
	int all;
	char *domains;		/* malloc'd, or NULL */
};

/* ---- the database ---- */

static void
db_close(void *p)
{
	struct db *d = p;

	if (d == NULL)
		return;
	if (d->pg != NULL)
		store_pq.PQfinish(d->pg);
	free(d);
}

static int
db_connect(struct db *d, struct dm_error *err)
{
	const char *keys[] = { "dbname", "connect_timeout",
	    "fallback_application_name", NULL };
	const char *values[] = { d->rt->conninfo, CONNECT_TIMEOUT,
	    "dmarcd-api", NULL };
	PGresult *res;

	if (d->pg != NULL)
		store_pq.PQfinish(d->pg);
	d->prepared = 0;
	d->pg = store_pq.PQconnectdbParams(keys, values, 1);
	if (d->pg == NULL)
		return dm_error_set(err, DM_E_NOMEM, "out of memory");
	if (store_pq.PQstatus(d->pg) != CONNECTION_OK) {
		/* libpq's message names the server, never the password. */
		dm_error_set(err, DM_E_TEMP, "PostgreSQL: %s",
		    store_pq.PQerrorMessage(d->pg));
		store_pq.PQfinish(d->pg);
		d->pg = NULL;
		return -1;
	}
	res = store_pq.PQexec(d->pg, d->rt->timeout_sql);
	if (res == NULL ||
	    store_pq.PQresultStatus(res) != PGRES_COMMAND_OK) {
		store_pq_fail(d->pg, res, "session settings", err);
		store_pq.PQfinish(d->pg);
		d->pg = NULL;
		return -1;
	}
	store_pq.PQclear(res);
	return 0;
}

static struct db *
db_of(struct api_routes *rt, struct dm_error *err)
{
	struct db *d = pthread_getspecific(rt->db_key);

	if (d != NULL)
		return d;
	d = calloc(1, sizeof(*d));
	if (d == NULL || pthread_setspecific(rt->db_key, d) != 0) {
		free(d);
		dm_error_set(err, DM_E_NOMEM, "out of memory");
		return NULL;
	}
	d->rt = rt;
	return d;
}

static int
gone(PGconn *pg)
{
	return store_pq.PQstatus(pg) != CONNECTION_OK;
}

/*
 * db_run - statement s with text parameters; the result (TUPLES_OK), or
 * NULL with err. A broken connection is opened again and the statement
 * tried once more.
 */
static PGresult *
db_run(struct api_routes *rt, enum stmt s, const char *const *values,
    int binary, struct dm_error *err)
{
	struct db *d = db_of(rt, err);
	PGresult *res;
	int attempt;

	if (d == NULL)
		return NULL;
	for (attempt = 0; attempt < 2; attempt++) {
		if ((d->pg == NULL || gone(d->pg)) && db_connect(d, err) != 0)
			return NULL;
		if (!(d->prepared & (1u << s))) {
			res = store_pq.PQprepare(d->pg, stmts[s].name,
			    stmts[s].sql, stmts[s].nparams, NULL);
			if (res == NULL ||
			    store_pq.PQresultStatus(res) != PGRES_COMMAND_OK) {
				if (gone(d->pg) && attempt == 0) {
					store_pq.PQclear(res);
					continue;
				}
				store_pq_fail(d->pg, res, stmts[s].name, err);
				return NULL;
			}
			store_pq.PQclear(res);
			d->prepared |= 1u << s;
		}
		res = store_pq.PQexecPrepared(d->pg, stmts[s].name,
		    stmts[s].nparams, values, NULL, NULL, binary);
		if (res != NULL &&
		    store_pq.PQresultStatus(res) == PGRES_TUPLES_OK)
			return res;
		if (gone(d->pg) && attempt == 0) {
			store_pq.PQclear(res);
			continue;
		}
		if (strcmp(store_pq_sqlstate(res), "57014") == 0) {
			store_pq.PQclear(res);
			dm_error_set(err, DM_E_TEMP, "%s: statement timeout",
			    stmts[s].name);
			return NULL;
		}
		store_pq_fail(d->pg, res, stmts[s].name, err);
		return NULL;
	}
	return NULL;
}

/* A database failure as an answer: 503 when it may pass, else 500. */
static void
db_fail(struct api_req *r, const struct dm_error *err)
{
	if (err->code == DM_E_TEMP) {
		api_fail(r, 503, "unavailable", "the database does not "
		    "answer; try again later");
		return;
	}
	fprintf(stderr, "dmarcd api: /%s: %s\n", r->nseg > 0 ? r->seg[0] :
	    "", err->msg);
	api_fail(r, 500, "internal", "the database failed to answer");
}

/* ---- tokens ---- */

static void
hex(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static struct token_entry *
slot(struct api_routes *rt, const unsigned char sha[32])
{
	return &rt->cache[(sha[0] | sha[1] << 8) % CACHE_SLOTS];
}

/* 1 found (sc filled), 0 not cached, -1 out of memory. */
static int
cache_get(struct api_routes *rt, const unsigned char sha[32], int64_t now,
    struct scope *sc)
{
	struct token_entry *e;
	int found = 0;

	if (rt->token_cache_s == 0)
		return 0;
	pthread_mutex_lock(&rt->cache_lock);
	e = slot(rt, sha);
	if (e->used && memcmp(e->sha, sha, 32) == 0 &&
	    e->cached_until > now && (e->expires == 0 || e->expires > now)) {
		sc->all = e->all;
		sc->domains = e->domains != NULL ? strdup(e->domains) : NULL;
		found = e->domains != NULL && sc->domains == NULL ? -1 : 1;
	}
	pthread_mutex_unlock(&rt->cache_lock);
	return found;
}

static void
cache_put(struct api_routes *rt, const unsigned char sha[32], int64_t now,
    const struct scope *sc, int64_t expires)
{
	struct token_entry *e;
	char *copy = NULL;

	if (rt->token_cache_s == 0)
		return;
	if (sc->domains != NULL && (copy = strdup(sc->domains)) == NULL)
		return;
	pthread_mutex_lock(&rt->cache_lock);
	e = slot(rt, sha);
	free(e->domains);
	memcpy(e->sha, sha, 32);
	e->used = 1;
	e->all = sc->all;
	e->domains = copy;
	e->expires = expires;
	e->cached_until = now + rt->token_cache_s;
	pthread_mutex_unlock(&rt->cache_lock);
}

/*
 * token_scope - what token (len bytes) may see, into sc; 0, or -1 when
 * the answer (401, 500, 503) is given already. Only its SHA-256 is
 * looked up and kept.
 */
static int
token_scope(struct api_req *r, const char *token, size_t len,
    struct scope *sc)
{
	unsigned char sha[32];
	char param[2 + 64 + 1];
	const char *values[1] = { param };
	struct dm_error err;
	PGresult *res;
	int64_t expires = 0;
	int found;

	memset(sc, 0, sizeof(*sc));
	if (len == 0 || len > TOKEN_MAX_LEN) {
		api_fail(r, 401, "invalid_token", "unknown, revoked or "
		    "expired token");
		return -1;
	}
	api_token_hash(token, len, sha);
	found = cache_get(r->routes, sha, r->now, sc);
	if (found < 0) {
		api_fail(r, 500, "internal", "out of memory");
		return -1;
	}
	if (found == 0) {
		param[0] = '\\';
		param[1] = 'x';
		hex(sha, 32, param + 2);
		dm_error_clear(&err);
		res = db_run(r->routes, S_TOKEN, values, 0, &err);
		if (res == NULL) {
			db_fail(r, &err);
			return -1;
		}
		if (store_pq.PQntuples(res) != 1 ||
		    store_pq.PQgetvalue(res, 0, 2)[0] == 't' ||
		    store_pq.PQgetvalue(res, 0, 3)[0] == 't') {
			store_pq.PQclear(res);
			api_fail(r, 401, "invalid_token", "unknown, revoked "
			    "or expired token");
			return -1;
		}
		sc->all = store_pq.PQgetvalue(res, 0, 0)[0] == 't';
		if (!sc->all && (sc->domains = strdup(store_pq.PQgetvalue(res,
		    0, 1))) == NULL) {
			store_pq.PQclear(res);
			api_fail(r, 500, "internal", "out of memory");
			return -1;
		}
		if (!store_pq.PQgetisnull(res, 0, 4))
			expires = strtoll(store_pq.PQgetvalue(res, 0, 4), NULL,
			    10);
		store_pq.PQclear(res);
		cache_put(r->routes, sha, r->now, sc, expires);
	}
	explicit_bzero(sha, sizeof(sha));
	return 0;
}

/*
 * authorize - the request's bearer token into sc; 0, or -1 when the
 * answer (401, 403 with need_all, 503) is given already.
 */
static int
authorize(struct api_req *r, int need_all, struct scope *sc)
{
	const char *token;
	size_t len = 0;

	memset(sc, 0, sizeof(*sc));
	token = api_bearer(api_header(r, "Authorization"), &len);
	if (token == NULL) {
		api_fail(r, 401, "no_token", "an Authorization: Bearer token "
		    "is needed");
		return -1;
	}
	if (token_scope(r, token, len, sc) != 0)
		return -1;
	if (need_all && !sc->all) {
		free(sc->domains);
		sc->domains = NULL;
		api_fail(r, 403, "forbidden", "this needs a token for every "
		    "domain");
		return -1;
	}
	return 0;
}

/*
 * authorize_page - for the status page, which a browser opens: the token
 * as the password of HTTP Basic authentication (any user), or as a
 * bearer token. 0, or -1 with the answer given (401 asks for Basic).
 */
static int
authorize_page(struct api_req *r, struct scope *sc)
{
	const char *h = api_header(r, "Authorization"), *token, *p;
	/* user ":" password: a user of up to 256 bytes */
	char password[256 + 1 + TOKEN_MAX_LEN + 1];
	size_t len = 0;
	int rc;

	memset(sc, 0, sizeof(*sc));
	if ((token = api_bearer(h, &len)) != NULL)
		return token_scope(r, token, len, sc);
	if (h == NULL || strncasecmp(h, "Basic ", 6) != 0) {
		api_fail(r, 401, "no_token", "this page needs a dmarcd token "
		    "(dmarcd token add) as the password");
		return -1;
	}
	for (p = h + 6; *p == ' '; p++)
		;
	if (strlen(p) > 4 * sizeof(password) / 3 + 4 ||
	    api_basic_password(p, password, sizeof(password), &len) != 0) {
		api_fail(r, 401, "invalid_token", "unknown, revoked or "
		    "expired token");
		return -1;
	}
	rc = token_scope(r, password, len, sc);
	explicit_bzero(password, sizeof(password));
	return rc;
}

/* Whether the scope holds domain (a word of the list). */
static int
covers(const struct scope *sc, const char *domain)
{
	size_t n = strlen(domain);
	const char *p;

	if (sc->all)
		return 1;
	for (p = sc->domains; p != NULL && *p != '\0';) {
		const char *end = strchr(p, ' ');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);

		if (len == n && memcmp(p, domain, n) == 0)
			return 1;
		p = end != NULL ? end + 1 : p + len;
	}
	return 0;
}

/*
 * domain_of - the path's domain segment into out, checked against the
 * scope: 403 when the token does not cover it (whatever it is), 400 when
 * an every-domain token gives no domain name.
 */
static int
domain_of(struct api_req *r, const struct scope *sc, const char *segment,
    char *out, size_t size)
{
	if (api_parse_domain(segment, out, size) != 0) {
		if (!sc->all)
			api_fail(r, 403, "forbidden", "this token is not for "
			    "that domain");
		else
			api_fail(r, 400, "bad_parameter", "'%.80s' is not a "
			    "domain name", segment);
		return -1;
	}
	if (!covers(sc, out)) {
		api_fail(r, 403, "forbidden", "this token is not for that "
		    "domain");
		return -1;
	}
	return 0;
}

/* ---- parameters ---- */

struct params {
	int64_t since, until;
	uint64_t limit, days;
	int has_cursor;
	int64_t cursor_t, cursor_id;
};

static const char *
arg(struct api_req *r, const char *name, int *bad)
{
	const char *v = api_arg(r, name, bad);

	if (*bad) {
		api_fail(r, 400, "bad_parameter", "%s: holds a NUL byte or is "
		    "too long", name);
		return NULL;
	}
	return v;
}

static int
bad_value(struct api_req *r, const char *name, const char *value,
    const char *want)
{
	api_fail(r, 400, "bad_parameter", "%s: '%.64s' is not %s", name,
	    value, want);
	return -1;
}

/* What a path takes: P_* bits. */
#define P_RANGE		1	/* since, until */
#define P_PAGE		2	/* limit, cursor */
#define P_DAYS		4	/* days, until */

static int
get_params(struct api_req *r, int which, struct params *p)
{
	const char *v;
	int bad = 0;

	memset(p, 0, sizeof(p[0]));
	/* until is exclusive: by default the current second is in. */
	p->until = r->now + 1;
	p->limit = API_LIMIT_DEFAULT;
	p->days = API_DAYS_DEFAULT;
	if (which & (P_RANGE | P_DAYS)) {
		if ((v = arg(r, "until", &bad)) == NULL && bad)
			return -1;
		if (v != NULL && api_parse_time(v, r->now, &p->until) != 0)
			return bad_value(r, "until", v, "an RFC 3339 date or "
			    "time, now or like 30d");
	}
	if (which & P_RANGE) {
		p->since = p->until - API_SINCE_DEFAULT_S;
		if (p->since < 0)
			p->since = 0;
		if ((v = arg(r, "since", &bad)) == NULL && bad)
			return -1;
		if (v != NULL && api_parse_time(v, r->now, &p->since) != 0)
			return bad_value(r, "since", v, "an RFC 3339 date or "
			    "time, now or like 30d");
		if (p->since > p->until)
			return bad_value(r, "since", v, "before until");
	}
	if (which & P_DAYS) {
		if ((v = arg(r, "days", &bad)) == NULL && bad)
			return -1;
		if (v != NULL && api_parse_count(v, 1, API_DAYS_MAX,
		    &p->days) != 0)
			return bad_value(r, "days", v, "a number of days from "
			    "1 to 3650");
	}
	if (which & P_PAGE) {
		if ((v = arg(r, "limit", &bad)) == NULL && bad)
			return -1;
		if (v != NULL && api_parse_count(v, 1, API_LIMIT_MAX,
		    &p->limit) != 0)
			return bad_value(r, "limit", v, "a number from 1 to "
			    "1000");
		if ((v = arg(r, "cursor", &bad)) == NULL && bad)
			return -1;
		if (v != NULL) {
			if (api_parse_cursor(v, &p->cursor_t,
			    &p->cursor_id) != 0)
				return bad_value(r, "cursor", v, "a cursor "
				    "given by next_cursor");
			p->has_cursor = 1;
		}
	}
	return 0;
}

/* ---- answers ---- */

static void
reply_buf(struct api_req *r, struct dm_buf *b)
{
	char *body = b->data != NULL ? b->data : strdup("");
	size_t len = b->len;

	b->data = NULL;
	b->len = b->alloc = 0;
	api_reply(r, 200, "application/json", body, len);
}

/* {"data": TEXT} around a JSON text from the database. */
static void
reply_data(struct api_req *r, const char *json)
{
	struct dm_buf b;

	dm_buf_init(&b, LIST_MAX_BYTES);
	if (dm_buf_printf(&b, "{\"data\":%s}", json) != 0) {
		dm_buf_free(&b);
		api_fail(r, 500, "internal", "the answer is too large");
		return;
	}
	reply_buf(r, &b);
}

/*
 * The rows of a list (column 0 a JSON object) as {"data": [...],
 * "next_cursor": ...}: limit + 1 rows were asked for; the extra one says
 * there is a next page, which starts after row limit - 1, whose cursor
 * is its columns tcol (or 0 when tcol < 0) and idcol. prefix/suffix wrap
 * the array (a report's records).
 */
static void
reply_list(struct api_req *r, PGresult *res, uint64_t limit, int tcol,
    int idcol, const char *prefix, const char *suffix)
{
	struct dm_buf b;
	int n = store_pq.PQntuples(res), i, rows, fail = 0;

	rows = (uint64_t)n > limit ? (int)limit : n;
	dm_buf_init(&b, LIST_MAX_BYTES);
	fail |= dm_buf_printf(&b, "{\"data\":%s[", prefix);
	for (i = 0; i < rows && !fail; i++)
		fail |= dm_buf_printf(&b, "%s%s", i > 0 ? "," : "",
		    store_pq.PQgetvalue(res, i, 0));
	fail |= dm_buf_printf(&b, "]%s,\"next_cursor\":", suffix);
	if ((uint64_t)n > limit)
		fail |= dm_buf_printf(&b, "\"%s_%s\"}", tcol >= 0 ?
		    store_pq.PQgetvalue(res, rows - 1, tcol) : "0",
		    store_pq.PQgetvalue(res, rows - 1, idcol));
	else
		fail |= dm_buf_printf(&b, "null}");
	store_pq.PQclear(res);
	if (fail) {
		dm_buf_free(&b);
		api_fail(r, 500, "internal", "the answer is too large");
		return;
	}
	reply_buf(r, &b);
}

/* ---- the paths ---- */

static void
get_healthz(struct api_req *r)
{
	char *body = strdup("{\"data\":{\"status\":\"ok\"}}");

	if (body != NULL)
		api_reply(r, 200, "application/json", body, strlen(body));
}

static void
get_readyz(struct api_req *r)
{
	struct dm_error err;
	PGresult *res;
	int have, latest = store_migrations[store_migration_count - 1].version;
	char body[128];
	char *copy;

	dm_error_clear(&err);
	res = db_run(r->routes, S_READY, NULL, 0, &err);
	if (res == NULL) {
		api_fail(r, 503, "not_ready", "the database does not answer");
		return;
	}
	have = (int)strtol(store_pq.PQgetvalue(res, 0, 0), NULL, 10);
	store_pq.PQclear(res);
	if (have < latest) {
		api_fail(r, 503, "not_ready", "the schema is at migration %d, "
		    "this dmarcd needs %d: run dmarcd migrate", have, latest);
		return;
	}
	snprintf(body, sizeof(body), "{\"data\":{\"status\":\"ready\","
	    "\"schema\":%d}}", have);
	if ((copy = strdup(body)) != NULL)
		api_reply(r, 200, "application/json", copy, strlen(copy));
}

static int
label(struct dm_buf *b, const char *v)
{
	int fail = 0;

	for (; *v != '\0' && !fail; v++) {
		if (*v == '\\' || *v == '"')
			fail = dm_buf_printf(b, "\\%c", *v);
		else if (*v == '\n')
			fail = dm_buf_printf(b, "\\n");
		else
			fail = dm_buf_append(b, v, 1);
	}
	return fail;
}

static void
get_metrics(struct api_req *r)
{
	static const struct {
		const char *name, *help;
	} counters[] = {
		{ "dmarcd_inputs_total", "Inputs handled by ingest and fetch "
		    "(files, mails)." },
		{ "dmarcd_reports_ingested_total", "Aggregate reports stored." },
		{ "dmarcd_records_ingested_total", "Records of the aggregate "
		    "reports stored." },
		{ "dmarcd_failure_reports_ingested_total", "Failure reports "
		    "stored." },
		{ "dmarcd_duplicates_total", "Reports seen again (not stored "
		    "twice)." },
		{ "dmarcd_revisions_total", "Reports stored as a revision of "
		    "an earlier one." },
		{ "dmarcd_rejects_total", "Reports or inputs refused (their "
		    "raw bytes kept)." },
		{ "dmarcd_ingest_errors_total", "Inputs whose ingest_log row "
		    "holds an error." },
	};
	struct scope sc;
	struct dm_error err;
	struct dm_buf b;
	PGresult *res;
	size_t i;
	int fail = 0, n;

	if (authorize(r, 1, &sc) != 0)
		return;
	free(sc.domains);
	dm_error_clear(&err);
	dm_buf_init(&b, LIST_MAX_BYTES);
	res = db_run(r->routes, S_METRICS, NULL, 0, &err);
	if (res == NULL) {
		db_fail(r, &err);
		return;
	}
	for (i = 0; i < sizeof(counters) / sizeof(counters[0]) && !fail; i++)
		fail |= dm_buf_printf(&b, "# HELP %s %s\n# TYPE %s counter\n"
		    "%s %s\n", counters[i].name, counters[i].help,
		    counters[i].name, counters[i].name,
		    store_pq.PQgetvalue(res, 0, (int)i));
	store_pq.PQclear(res);
	res = db_run(r->routes, S_MAILBOXES, NULL, 0, &err);
	if (res == NULL) {
		dm_buf_free(&b);
		db_fail(r, &err);
		return;
	}
	fail |= dm_buf_printf(&b, "# HELP dmarcd_mailbox_last_fetch_"
	    "timestamp_seconds When each IMAP mailbox was last read to its "
	    "end.\n# TYPE dmarcd_mailbox_last_fetch_timestamp_seconds gauge\n");
	n = store_pq.PQntuples(res);
	for (i = 0; i < (size_t)n && !fail; i++) {
		fail |= dm_buf_printf(&b, "dmarcd_mailbox_last_fetch_timestamp_"
		    "seconds{account=\"");
		fail |= label(&b, store_pq.PQgetvalue(res, (int)i, 0));
		fail |= dm_buf_printf(&b, "\",mailbox=\"");
		fail |= label(&b, store_pq.PQgetvalue(res, (int)i, 1));
		fail |= dm_buf_printf(&b, "\"} %s\n",
		    store_pq.PQgetvalue(res, (int)i, 2));
	}
	store_pq.PQclear(res);
	{
		uint64_t hits, misses;

		api_answers_counts(r->routes->answers, &hits, &misses);
		fail |= dm_buf_printf(&b, "# HELP dmarcd_api_answers_total "
		    "Summary, sources and readiness answers: kept (hit) or "
		    "worked out (miss).\n# TYPE dmarcd_api_answers_total "
		    "counter\ndmarcd_api_answers_total{result=\"hit\"} %"
		    PRIu64 "\ndmarcd_api_answers_total{result=\"miss\"} %"
		    PRIu64 "\n", hits, misses);
	}
	fail |= api_requests_metrics(r->api, &b);
	if (fail) {
		dm_buf_free(&b);
		api_fail(r, 500, "internal", "the answer is too large");
		return;
	}
	api_reply(r, 200, "text/plain; version=0.0.4; charset=utf-8",
	    b.data != NULL ? b.data : strdup(""), b.len);
}

static void
get_domains(struct api_req *r)
{
	struct scope sc;
	struct dm_error err;
	const char *values[1];
	PGresult *res;

	if (authorize(r, 0, &sc) != 0)
		return;
	values[0] = sc.all ? NULL : sc.domains;
	dm_error_clear(&err);
	res = db_run(r->routes, S_DOMAINS, values, 0, &err);
	free(sc.domains);
	if (res == NULL) {
		db_fail(r, &err);
		return;
	}
	reply_data(r, store_pq.PQgetvalue(res, 0, 0));
	store_pq.PQclear(res);
}

/*
 * analytics - the JSON text of statement s for domain (summary, sources:
 * a since, b until; readiness: a days, b until; spans rounded already),
 * kept or worked out (and then kept); malloc'd into *body_r. 0, or -1
 * with err.
 */
static int
analytics(struct api_routes *rt, int64_t now, enum stmt s,
    const char *domain, int64_t a, int64_t b, char **body_r,
    struct dm_error *err)
{
	char av[24], bv[24], key[320];
	const char *values[3] = { domain, av, bv };
	const char *text;
	PGresult *res;
	size_t len;
	uint64_t gen;

	snprintf(av, sizeof(av), "%" PRId64, a);
	snprintf(bv, sizeof(bv), "%" PRId64, b);
	snprintf(key, sizeof(key), "%d %s %s %s", (int)s, domain, av, bv);
	if (api_answers_get(rt->answers, key, now, body_r, &len, &gen))
		return 0;
	res = db_run(rt, s, values, 0, err);
	if (res == NULL)
		return -1;
	text = store_pq.PQgetisnull(res, 0, 0) ? "null" :
	    store_pq.PQgetvalue(res, 0, 0);
	api_answers_put(rt->answers, key, domain, text, strlen(text), now,
	    gen);
	*body_r = strdup(text);
	store_pq.PQclear(res);
	if (*body_r == NULL)
		return dm_error_set(err, DM_E_NOMEM, "out of memory");
	return 0;
}

/* Midnight UTC at or before t. */
static int64_t
day_floor(int64_t t)
{
	return t - ((t % 86400) + 86400) % 86400;
}

/* /v1/domains/D/summary, sources, readiness: the SQL functions' JSON. */
static void
get_analytics(struct api_req *r, enum stmt s, const char *domain)
{
	struct params p;
	struct dm_error err;
	char *body;

	if (get_params(r, s == S_READINESS ? P_DAYS : P_RANGE, &p) != 0)
		return;
	/*
	 * The analytics count whole UTC days: the span is rounded to them
	 * (since down, until up; readiness's until down, its days being the
	 * complete ones before it), which changes no number and lets one kept
	 * answer serve every request of the day.
	 */
	if (s == S_READINESS)
		p.until = day_floor(p.until);
	else {
		p.since = day_floor(p.since);
		if (p.until % 86400 != 0)
			p.until = day_floor(p.until) + 86400;
	}
	dm_error_clear(&err);
	if (analytics(r->routes, r->now, s, domain, s == S_READINESS ?
	    (int64_t)p.days : p.since, p.until, &body, &err) != 0) {
		db_fail(r, &err);
		return;
	}
	reply_data(r, body);
	free(body);
}

/*
 * / : the status page (status.c) over the same answers as the paths
 * above: for each of the scope's domains with the most messages, its
 * summary and sources over the days=N complete UTC days before until
 * (default 30 before today) and its readiness over those same days.
 */
static void
get_status(struct api_req *r)
{
	struct scope sc;
	struct params p;
	struct dm_error err;
	struct api_status_domain d[API_STATUS_MAX_DOMAINS];
	struct api_status_page page;
	char (*name)[256];
	const char *values[1];
	PGresult *res;
	struct dm_buf b;
	size_t i, n = 0, total = 0;
	int bad;

	r->html = 1;
	memset(&sc, 0, sizeof(sc));
	memset(d, 0, sizeof(d));
	if (r->routes->status_public)
		sc.all = 1;
	else if (authorize_page(r, &sc) != 0)
		return;
	name = calloc(API_STATUS_MAX_DOMAINS, sizeof(*name));
	if (name == NULL) {
		free(sc.domains);
		api_fail(r, 500, "internal", "out of memory");
		return;
	}
	if (get_params(r, P_DAYS, &p) != 0)
		goto out;
	if (p.days > API_STATUS_DAYS_MAX) {
		bad_value(r, "days", api_arg(r, "days", &bad), "a number of "
		    "days from 1 to 366");
		goto out;
	}
	/*
	 * Without a token, only the windows the page links to, up to
	 * today: their answers are kept, so anonymous clients cannot make
	 * it work out an answer per request (25 domains, 3 queries each).
	 */
	if (r->routes->status_public && api_arg(r, "until", &bad) != NULL) {
		bad_value(r, "until", api_arg(r, "until", &bad), "allowed on "
		    "the public status page (it shows the days up to today)");
		goto out;
	}
	if (r->routes->status_public && p.days != 7 && p.days != 30 &&
	    p.days != 90 && p.days != 365) {
		bad_value(r, "days", api_arg(r, "days", &bad), "7, 30, 90 or "
		    "365 on the public status page");
		goto out;
	}
	memset(&page, 0, sizeof(page));
	page.until = day_floor(p.until);
	page.since = page.until - (int64_t)p.days * 86400;
	page.days = (unsigned)p.days;
	page.now = r->now;
	page.public_page = r->routes->status_public;
	values[0] = sc.all ? NULL : sc.domains;
	dm_error_clear(&err);
	res = db_run(r->routes, S_DOMAINS, values, 0, &err);
	if (res == NULL) {
		db_fail(r, &err);
		goto out;
	}
	if (api_status_domains(store_pq.PQgetvalue(res, 0, 0), name,
	    API_STATUS_MAX_DOMAINS, &n, &total) != 0) {
		store_pq.PQclear(res);
		api_fail(r, 500, "internal", "cannot read the domains");
		goto out;
	}
	store_pq.PQclear(res);
	for (i = 0; i < n; i++) {
		static const enum stmt asked[3] = { S_SUMMARY, S_SOURCES,
		    S_READINESS };
		const char **slot[3] = { &d[i].summary, &d[i].sources,
		    &d[i].readiness };
		size_t j, failed = 0;
		char *text;

		d[i].domain = name[i];
		for (j = 0; j < 3; j++) {
			if (analytics(r->routes, r->now, asked[j], name[i],
			    asked[j] == S_READINESS ? (int64_t)page.days :
			    page.since, page.until, &text, &err) == 0) {
				*slot[j] = text;
				continue;
			}
			/* Shown as unavailable; a bug is logged. */
			failed++;
			if (err.code != DM_E_TEMP)
				fprintf(stderr, "dmarcd api: /: %s\n",
				    err.msg);
		}
		if (failed == 3 && err.code == DM_E_TEMP) {
			db_fail(r, &err);
			goto out;
		}
	}
	page.domains = d;
	page.ndomains = n;
	page.domains_total = total;
	dm_buf_init(&b, API_STATUS_MAX_BYTES);
	if (api_status_render(&page, &b) != 0) {
		api_fail(r, 500, "internal", "the page is too large");
		goto out;
	}
	api_reply(r, 200, "text/html; charset=utf-8",
	    b.data != NULL ? b.data : strdup(""), b.len);
out:
	for (i = 0; i < n; i++) {
		free((char *)d[i].summary);
		free((char *)d[i].sources);
		free((char *)d[i].readiness);
	}
	free(name);
	free(sc.domains);
}

static void
get_reports(struct api_req *r, const char *domain)
{
	struct params p;
	struct dm_error err;
	char since[24], until[24], ct[24], cid[24], limit[24];
	const char *values[6] = { domain, since, until, NULL, NULL, limit };
	PGresult *res;

	if (get_params(r, P_RANGE | P_PAGE, &p) != 0)
		return;
	snprintf(since, sizeof(since), "%" PRId64, p.since);
	snprintf(until, sizeof(until), "%" PRId64, p.until);
	snprintf(limit, sizeof(limit), "%" PRIu64, p.limit + 1);
	if (p.has_cursor) {
		snprintf(ct, sizeof(ct), "%" PRId64, p.cursor_t);
		snprintf(cid, sizeof(cid), "%" PRId64, p.cursor_id);
		values[3] = ct;
		values[4] = cid;
	}
	dm_error_clear(&err);
	res = db_run(r->routes, S_REPORTS, values, 0, &err);
	if (res == NULL) {
		db_fail(r, &err);
		return;
	}
	reply_list(r, res, p.limit, 1, 2, "", "");
}

/* failures (with a domain) and rejected (without): keyset on id. */
static void
get_by_id(struct api_req *r, enum stmt s, const char *domain)
{
	struct params p;
	struct dm_error err;
	char since[24], until[24], cid[24], limit[24];
	const char *values[5];
	const char **v = values;
	PGresult *res;

	if (get_params(r, P_RANGE | P_PAGE, &p) != 0)
		return;
	if (p.has_cursor && p.cursor_t != 0) {
		api_fail(r, 400, "bad_parameter", "cursor: not a cursor "
		    "given by next_cursor");
		return;
	}
	snprintf(since, sizeof(since), "%" PRId64, p.since);
	snprintf(until, sizeof(until), "%" PRId64, p.until);
	snprintf(cid, sizeof(cid), "%" PRId64, p.cursor_id);
	snprintf(limit, sizeof(limit), "%" PRIu64, p.limit + 1);
	if (domain != NULL)
		*v++ = domain;
	*v++ = since;
	*v++ = until;
	*v++ = p.has_cursor ? cid : NULL;
	*v++ = limit;
	dm_error_clear(&err);
	res = db_run(r->routes, s, values, 0, &err);
	if (res == NULL) {
		db_fail(r, &err);
		return;
	}
	reply_list(r, res, p.limit, -1, 1, "", "");
}

static int
report_id(struct api_req *r, const char *text, char *out, size_t size)
{
	uint64_t id;

	if (api_parse_count(text, 1, INT64_MAX, &id) != 0) {
		api_fail(r, 404, "not_found", "no such report");
		return -1;
	}
	snprintf(out, size, "%" PRIu64, id);
	return 0;
}

static void
get_report(struct api_req *r, const char *domain, const char *id_text)
{
	struct params p;
	struct dm_error err;
	char id[24], after[24], limit[24], begin[64], *prefix;
	const char *values[5];
	PGresult *res;
	size_t len;

	if (get_params(r, P_PAGE, &p) != 0)
		return;
	if (p.has_cursor && p.cursor_t != 0) {
		api_fail(r, 400, "bad_parameter", "cursor: not a cursor "
		    "given by next_cursor");
		return;
	}
	if (report_id(r, id_text, id, sizeof(id)) != 0)
		return;
	values[0] = domain;
	values[1] = id;
	dm_error_clear(&err);
	res = db_run(r->routes, S_REPORT, values, 0, &err);
	if (res == NULL) {
		db_fail(r, &err);
		return;
	}
	if (store_pq.PQntuples(res) == 0) {
		store_pq.PQclear(res);
		api_fail(r, 404, "not_found", "no such report");
		return;
	}
	len = strlen(store_pq.PQgetvalue(res, 0, 0)) + 32;
	prefix = malloc(len);
	if (prefix == NULL) {
		store_pq.PQclear(res);
		api_fail(r, 500, "internal", "out of memory");
		return;
	}
	snprintf(prefix, len, "{\"report\":%s,\"records\":",
	    store_pq.PQgetvalue(res, 0, 0));
	/* begin_time as the server wrote it: the partition key. */
	snprintf(begin, sizeof(begin), "%s", store_pq.PQgetvalue(res, 0, 1));
	store_pq.PQclear(res);
	snprintf(after, sizeof(after), "%" PRId64, p.has_cursor ?
	    p.cursor_id : 0);
	snprintf(limit, sizeof(limit), "%" PRIu64, p.limit + 1);
	values[1] = begin;
	values[2] = id;
	values[3] = after;
	values[4] = limit;
	res = db_run(r->routes, S_RECORDS, values, 0, &err);
	if (res == NULL) {
		free(prefix);
		db_fail(r, &err);
		return;
	}
	reply_list(r, res, p.limit, -1, 1, prefix, "}");
	free(prefix);
}

/* ---- raw downloads ---- */

#define RAW_PEEK	512

struct raw {
	struct api_routes *rt;
	char domain[256];
	char id[24];
	int seq;		/* of the next chunk to fetch */
	int gz;			/* stored gzipped: inflate */
	int z_ready, z_end, last;
	z_stream z;
	PGresult *chunk;	/* the chunk being sent */
	const unsigned char *data;
	size_t len, pos;
	char peek[RAW_PEEK];	/* the first bytes, read to name the type */
	size_t peek_len, peek_pos;
	uint64_t size, sent;
};

static void
raw_done(void *ctx)
{
	struct raw *w = ctx;

	if (w->chunk != NULL)
		store_pq.PQclear(w->chunk);
	if (w->z_ready)
		inflateEnd(&w->z);
	free(w);
}

static uint64_t
be64(const char *p)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = v << 8 | (unsigned char)p[i];
	return v;
}

/*
 * Fetch chunk w->seq (binary results): 1 with data, 0 past the last one,
 * -1 on an error (or no such report: w->seq 0 and no row, with *none).
 */
static int
raw_fetch(struct raw *w, int *none, struct dm_error *err)
{
	char seq[16];
	const char *values[3] = { w->domain, w->id, seq };
	PGresult *res;

	snprintf(seq, sizeof(seq), "%d", w->seq);
	res = db_run(w->rt, S_RAW, values, 1, err);
	if (res == NULL)
		return -1;
	if (store_pq.PQntuples(res) == 0) {
		store_pq.PQclear(res);
		if (none != NULL)
			*none = 1;
		return -1;
	}
	if (w->seq == 0) {
		w->gz = store_pq.PQgetlength(res, 0, 0) == 4 &&
		    memcmp(store_pq.PQgetvalue(res, 0, 0), "gzip", 4) == 0;
		if (store_pq.PQgetlength(res, 0, 1) == 8)
			w->size = be64(store_pq.PQgetvalue(res, 0, 1));
	}
	if (store_pq.PQgetisnull(res, 0, 2)) {
		store_pq.PQclear(res);
		w->last = 1;
		return 0;
	}
	if (w->chunk != NULL)
		store_pq.PQclear(w->chunk);
	w->chunk = res;
	w->data = (const unsigned char *)store_pq.PQgetvalue(res, 0, 2);
	w->len = (size_t)store_pq.PQgetlength(res, 0, 2);
	w->pos = 0;
	w->seq++;
	return 1;
}

/* The next bytes of the input as received: > 0, 0 at its end, -1. */
static long
raw_produce(struct raw *w, char *buf, size_t max)
{
	struct dm_error err;
	size_t n;
	int zr;

	dm_error_clear(&err);
	for (;;) {
		if (w->pos == w->len && !w->last) {
			if (w->z_end)
				return 0;
			if (raw_fetch(w, NULL, &err) < 0) {
				fprintf(stderr, "dmarcd api: raw %s/%s: %s\n",
				    w->domain, w->id, err.msg);
				return -1;
			}
			continue;
		}
		if (!w->gz) {
			if (w->pos == w->len)
				return 0;
			n = w->len - w->pos < max ? w->len - w->pos : max;
			memcpy(buf, w->data + w->pos, n);
			w->pos += n;
			return (long)n;
		}
		if (w->z_end)
			return 0;
		if (w->pos == w->len && w->last)
			return -1;	/* the gzip stream ends early */
		w->z.next_in = (unsigned char *)(uintptr_t)(w->data + w->pos);
		w->z.avail_in = (uInt)(w->len - w->pos);
		w->z.next_out = (unsigned char *)buf;
		w->z.avail_out = (uInt)max;
		zr = inflate(&w->z, Z_NO_FLUSH);
		w->pos = w->len - w->z.avail_in;
		if (zr == Z_STREAM_END)
			w->z_end = 1;
		else if (zr != Z_OK && zr != Z_BUF_ERROR)
			return -1;
		if (max - w->z.avail_out > 0)
			return (long)(max - w->z.avail_out);
	}
}

static long
raw_read(void *ctx, char *buf, size_t max)
{
	struct raw *w = ctx;
	size_t n;
	long got;

	if (w->peek_pos < w->peek_len) {
		n = w->peek_len - w->peek_pos < max ? w->peek_len -
		    w->peek_pos : max;
		memcpy(buf, w->peek + w->peek_pos, n);
		w->peek_pos += n;
		w->sent += n;
		return (long)n;
	}
	got = raw_produce(w, buf, max);
	if (got > 0) {
		w->sent += (uint64_t)got;
		if (w->sent > w->size)
			return -1;	/* more than raw_inputs.size says */
	}
	if (got == 0 && w->sent != w->size)
		return -1;
	return got;
}

/* The type of the input, from its first bytes (never from a name). */
static void
raw_type(const struct raw *w, const char **type, const char **ext)
{
	const unsigned char *p = (const unsigned char *)w->peek;
	size_t n = w->peek_len, i = 0;

	*type = "application/octet-stream";
	*ext = "bin";
	if (n >= 2 && p[0] == 0x1f && p[1] == 0x8b) {
		*type = "application/gzip";
		*ext = "gz";
		return;
	}
	if (n >= 4 && memcmp(p, "PK\3\4", 4) == 0) {
		*type = "application/zip";
		*ext = "zip";
		return;
	}
	if (n >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
		i = 3;
	while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' ||
	    p[i] == '\n'))
		i++;
	if (i < n && p[i] == '<') {
		*type = "application/xml";
		*ext = "xml";
		return;
	}
	/* A mail: a first line "Name: value" or an mbox "From ". */
	for (i = 0; i < n && p[i] > ' ' && p[i] < 0x7f && p[i] != ':'; i++)
		;
	if ((i > 0 && i < n && p[i] == ':') ||
	    (n >= 5 && memcmp(p, "From ", 5) == 0)) {
		*type = "message/rfc822";
		*ext = "eml";
	}
}

static void
get_raw(struct api_req *r, const char *domain, const char *id_text)
{
	struct raw *w;
	struct dm_error err;
	const char *type, *ext;
	char filename[300];
	long got;
	int none = 0;

	w = calloc(1, sizeof(*w));
	if (w == NULL) {
		api_fail(r, 500, "internal", "out of memory");
		return;
	}
	w->rt = r->routes;
	snprintf(w->domain, sizeof(w->domain), "%s", domain);
	if (report_id(r, id_text, w->id, sizeof(w->id)) != 0) {
		raw_done(w);
		return;
	}
	dm_error_clear(&err);
	if (raw_fetch(w, &none, &err) < 0) {
		raw_done(w);
		if (none)
			api_fail(r, 404, "not_found", "no such report, or its "
			    "raw input is not kept");
		else
			db_fail(r, &err);
		return;
	}
	if (w->gz) {
		if (inflateInit2(&w->z, 15 + 16) != Z_OK) {
			raw_done(w);
			api_fail(r, 500, "internal", "zlib: cannot inflate");
			return;
		}
		w->z_ready = 1;
	}
	/* The first bytes, to name the type; sent first. */
	while (w->peek_len < RAW_PEEK) {
		got = raw_produce(w, w->peek + w->peek_len,
		    RAW_PEEK - w->peek_len);
		if (got < 0) {
			raw_done(w);
			api_fail(r, 500, "internal", "the raw input of report "
			    "%s is damaged", w->id);
			return;
		}
		if (got == 0)
			break;
		w->peek_len += (size_t)got;
	}
	raw_type(w, &type, &ext);
	snprintf(filename, sizeof(filename), "%s-report-%s.%s", w->domain,
	    w->id, ext);
	api_reply_stream(r, w->size, type, filename, raw_read, raw_done, w);
}

/* ---- dispatch ---- */

static int
is(const struct api_req *r, size_t i, const char *name)
{
	return i < r->nseg && strcmp(r->seg[i], name) == 0;
}

void
api_route(struct api_req *r)
{
	struct scope sc;
	char domain[256];
	enum { R_NONE, R_HEALTH, R_READY, R_METRICS, R_DOMAINS, R_SUMMARY,
	    R_SOURCES, R_READINESS, R_REPORTS, R_FAILURES, R_REPORT, R_RAW,
	    R_REJECTED, R_STATUS } route = R_NONE;

	if (r->nseg == 0)
		route = R_STATUS;
	else if (r->nseg == 1 && is(r, 0, "healthz"))
		route = R_HEALTH;
	else if (r->nseg == 1 && is(r, 0, "readyz"))
		route = R_READY;
	else if (r->nseg == 1 && is(r, 0, "metrics"))
		route = R_METRICS;
	else if (r->nseg == 2 && is(r, 0, "v1") && is(r, 1, "domains"))
		route = R_DOMAINS;
	else if (r->nseg == 2 && is(r, 0, "v1") && is(r, 1, "rejected"))
		route = R_REJECTED;
	else if (r->nseg == 4 && is(r, 0, "v1") && is(r, 1, "domains")) {
		if (is(r, 3, "summary"))
			route = R_SUMMARY;
		else if (is(r, 3, "sources"))
			route = R_SOURCES;
		else if (is(r, 3, "readiness"))
			route = R_READINESS;
		else if (is(r, 3, "reports"))
			route = R_REPORTS;
		else if (is(r, 3, "failures"))
			route = R_FAILURES;
	} else if (r->nseg == 4 && is(r, 0, "v1") && is(r, 1, "reports"))
		route = R_REPORT;
	else if (r->nseg == 5 && is(r, 0, "v1") && is(r, 1, "reports") &&
	    is(r, 4, "raw"))
		route = R_RAW;
	if (route == R_NONE) {
		api_fail(r, 404, "not_found", "no such path");
		return;
	}
	if (route == R_STATUS)
		r->html = 1;
	if (r->bad_method) {
		api_fail(r, 405, "method_not_allowed", "only GET and HEAD");
		return;
	}
	switch (route) {
	case R_STATUS:
		get_status(r);
		return;
	case R_HEALTH:
		get_healthz(r);
		return;
	case R_READY:
		get_readyz(r);
		return;
	case R_METRICS:
		get_metrics(r);
		return;
	case R_DOMAINS:
		get_domains(r);
		return;
	case R_REJECTED:
		if (authorize(r, 1, &sc) != 0)
			return;
		free(sc.domains);
		get_by_id(r, S_REJECTED, NULL);
		return;
	default:
		break;
	}
	if (authorize(r, 0, &sc) != 0)
		return;
	if (domain_of(r, &sc, r->seg[2], domain, sizeof(domain)) != 0) {
		free(sc.domains);
		return;
	}
	free(sc.domains);
	switch (route) {
	case R_SUMMARY:
		get_analytics(r, S_SUMMARY, domain);
		break;
	case R_SOURCES:
		get_analytics(r, S_SOURCES, domain);
		break;
	case R_READINESS:
		get_analytics(r, S_READINESS, domain);
		break;
	case R_REPORTS:
		get_reports(r, domain);
		break;
	case R_FAILURES:
		get_by_id(r, S_FAILURES, domain);
		break;
	case R_REPORT:
		get_report(r, domain, r->seg[3]);
		break;
	case R_RAW:
		get_raw(r, domain, r->seg[3]);
		break;
	default:
		api_fail(r, 404, "not_found", "no such path");
		break;
	}
}

/* ---- setup ---- */

struct api_routes *
api_routes_new(const struct dm_config *cfg, struct dm_error *err)
{
	struct api_routes *rt;

	if (store_pq_load(err) != 0)
		return NULL;
	rt = calloc(1, sizeof(*rt));
	if (rt == NULL) {
		dm_error_set(err, DM_E_NOMEM, "out of memory");
		return NULL;
	}
	snprintf(rt->conninfo, sizeof(rt->conninfo), "%s",
	    dm_config_api_conninfo(cfg));
	snprintf(rt->timeout_sql, sizeof(rt->timeout_sql), "SET "
	    "statement_timeout = %u; SET TimeZone = 'UTC'; "
	    "SET default_transaction_read_only = on",
	    cfg->api_request_timeout_s * 1000);
	rt->token_cache_s = cfg->api_token_cache_s;
	rt->status_public = cfg->api_status_public;
	if (cfg->api_answer_cache_s > 0) {
		rt->answers = api_answers_new(rt->conninfo,
		    cfg->api_answer_cache_s, err);
		if (rt->answers == NULL) {
			free(rt);
			return NULL;
		}
	}
	pthread_mutex_init(&rt->cache_lock, NULL);
	if (pthread_key_create(&rt->db_key, db_close) != 0) {
		pthread_mutex_destroy(&rt->cache_lock);
		api_answers_free(&rt->answers);
		free(rt);
		dm_error_set(err, DM_E_NOMEM, "pthread_key_create failed");
		return NULL;
	}
	return rt;
}

void
api_routes_free(struct api_routes **rtp)
{
	struct api_routes *rt = *rtp;
	size_t i;

	if (rt == NULL)
		return;
	api_answers_free(&rt->answers);
	/* The worker threads are gone: their connections closed with them.
	 * The caller's own thread may hold one (none serve there). */
	db_close(pthread_getspecific(rt->db_key));
	pthread_setspecific(rt->db_key, NULL);
	pthread_key_delete(rt->db_key);
	for (i = 0; i < CACHE_SLOTS; i++)
		free(rt->cache[i].domains);
	pthread_mutex_destroy(&rt->cache_lock);
	explicit_bzero(rt->conninfo, sizeof(rt->conninfo));
	free(rt);
	*rtp = NULL;
}
