/*
 * enrich.c - source identity in the store (sql/0007_analytics.sql): which
 * source addresses need their reverse DNS (again), which DKIM and SPF
 * domains need their organizational domain, and saving both, for
 * `dmarcd resolve` (collector/rdns.c).
 *
 * Addresses are compared as host(source_ip)::inet, so that an address
 * stored with a netmask is the same row of ip_names as without; expiry
 * is now() + the TTL the caller worked out, on the server's clock, like
 * everything else in the schema.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "store/pq.h"
#include "store/store.h"
#include "store/store_private.h"

/* An array literal of names: validated host names, still escaped. */
#define NAMES_LITERAL_MAX	(64U << 10)

static const char sql_ips_due[] =
    "SELECT host(s.ip) FROM (SELECT DISTINCT host(source_ip)::inet AS ip "
    "FROM dmarcd.rollup_daily WHERE source_ip IS NOT NULL AND "
    "($1::date IS NULL OR day >= $1::date)) s "
    "LEFT JOIN dmarcd.ip_names n ON n.ip = s.ip "
    "WHERE n.ip IS NULL OR n.expires_at <= now() "
    "ORDER BY n.expires_at NULLS FIRST, s.ip LIMIT $2";

static const char sql_domains_due[] =
    "SELECT u.d FROM (SELECT dkim_domain AS d FROM dmarcd.rollup_daily "
    "WHERE $1::date IS NULL OR day >= $1::date UNION "
    "SELECT spf_domain FROM dmarcd.rollup_daily "
    "WHERE $1::date IS NULL OR day >= $1::date) u "
    "WHERE u.d <> '' AND NOT EXISTS (SELECT 1 FROM dmarcd.domain_orgs o "
    "WHERE o.domain = u.d) ORDER BY u.d LIMIT $2";

/* A temporary failure keeps what was known before. */
static const char sql_ip_save[] =
    "INSERT INTO dmarcd.ip_names (ip, ptr, names, confirmed, org, status, "
    "resolved_at, expires_at) VALUES ($1::inet, $2, $3::text[], "
    "$4::boolean, $5, $6, now(), now() + make_interval(secs => "
    "$7::double precision)) ON CONFLICT (ip) DO UPDATE SET "
    "ptr = CASE WHEN $8::boolean THEN ip_names.ptr ELSE excluded.ptr END, "
    "names = CASE WHEN $8::boolean THEN ip_names.names "
    "ELSE excluded.names END, "
    "confirmed = CASE WHEN $8::boolean THEN ip_names.confirmed "
    "ELSE excluded.confirmed END, "
    "org = CASE WHEN $8::boolean THEN ip_names.org ELSE excluded.org END, "
    "status = excluded.status, resolved_at = excluded.resolved_at, "
    "expires_at = excluded.expires_at";

static const char sql_domain_save[] =
    "INSERT INTO dmarcd.domain_orgs (domain, org) VALUES ($1, $2) "
    "ON CONFLICT (domain) DO UPDATE SET org = excluded.org";

/* store_list_due - one text column of sql ($1 since, $2 limit) to each(),
 * outside a batch: what enrichment (here and treewalk.c) works through. */
int
store_list_due(struct store *s, const char *sql, const char *since,
    size_t limit, int (*each)(void *ctx, const char *value), void *ctx,
    struct dm_error *err)
{
	char limit_text[24];
	const char *p[2] = { since, limit_text };
	PGresult *res;
	int i, n, rc = 0;

	if (s->in_txn)
		return dm_error_set(err, DM_E_INTERNAL, "names due listed "
		    "inside a batch");
	snprintf(limit_text, sizeof(limit_text), "%zu", limit);
	res = store_pq_params(s->conn, sql, 2, p, err);
	if (res == NULL)
		return -1;
	n = store_pq.PQntuples(res);
	for (i = 0; i < n && rc == 0; i++)
		if (!store_pq.PQgetisnull(res, i, 0))
			rc = each(ctx, store_pq.PQgetvalue(res, i, 0));
	store_pq.PQclear(res);
	return rc;
}

int
store_ips_due(struct store *s, const char *since, size_t limit,
    int (*each)(void *ctx, const char *ip), void *ctx, struct dm_error *err)
{
	return store_list_due(s, sql_ips_due, since, limit, each, ctx, err);
}

int
store_domains_due(struct store *s, const char *since, size_t limit,
    int (*each)(void *ctx, const char *domain), void *ctx,
    struct dm_error *err)
{
	return store_list_due(s, sql_domains_due, since, limit, each, ctx, err);
}

/* "{"a","b"}": each name quoted, '"' and '\' escaped. */
static int
names_literal(struct dm_buf *b, const char *const *names, size_t count)
{
	const char *c;
	size_t i;

	if (dm_buf_append(b, "{", 1) != 0)
		return -1;
	for (i = 0; i < count; i++) {
		if ((i > 0 && dm_buf_append(b, ",", 1) != 0) ||
		    dm_buf_append(b, "\"", 1) != 0)
			return -1;
		for (c = names[i]; *c != '\0'; c++)
			if (((*c == '"' || *c == '\\') &&
			    dm_buf_append(b, "\\", 1) != 0) ||
			    dm_buf_append(b, c, 1) != 0)
				return -1;
		if (dm_buf_append(b, "\"", 1) != 0)
			return -1;
	}
	return dm_buf_append(b, "}", 1);
}

static int
txn_begin(struct store *s, struct dm_error *err)
{
	if (s->in_txn)
		return dm_error_set(err, DM_E_INTERNAL, "enrichment saved "
		    "inside a batch");
	return store_pq_exec(s->conn, "BEGIN", err);
}

static int
txn_end(struct store *s, int ok, struct dm_error *err)
{
	struct dm_error ignored;

	if (ok)
		return store_pq_exec(s->conn, "COMMIT", err);
	store_pq_exec(s->conn, "ROLLBACK", &ignored);
	return -1;
}

int
store_ip_names_save(struct store *s, const struct store_ip_name *rows,
    size_t count, struct dm_error *err)
{
	struct dm_buf names;
	char ttl[24];
	PGresult *res;
	size_t i;
	int ok = 1;

	if (count == 0)
		return 0;
	if (txn_begin(s, err) != 0)
		return -1;
	dm_buf_init(&names, NAMES_LITERAL_MAX);
	for (i = 0; i < count && ok; i++) {
		const struct store_ip_name *r = &rows[i];
		const char *p[8];

		dm_buf_reset(&names);
		if (names_literal(&names, r->names, r->name_count) != 0) {
			dm_error_set(err, DM_E_LIMIT, "%s: the PTR names are "
			    "longer than %u bytes", r->ip, NAMES_LITERAL_MAX);
			ok = 0;
			break;
		}
		snprintf(ttl, sizeof(ttl), "%u", r->ttl_s);
		p[0] = r->ip;
		p[1] = r->ptr;
		p[2] = dm_buf_cstr(&names);
		p[3] = r->confirmed ? "true" : "false";
		p[4] = r->org;
		p[5] = r->status;
		p[6] = ttl;
		p[7] = r->temporary ? "true" : "false";
		res = store_pq_params(s->conn, sql_ip_save, 8, p, err);
		if (res == NULL)
			ok = 0;
		else
			store_pq.PQclear(res);
	}
	dm_buf_free(&names);
	return txn_end(s, ok, err);
}

int
store_domain_orgs_save(struct store *s, const char *const *domains,
    const char *const *orgs, size_t count, struct dm_error *err)
{
	PGresult *res;
	size_t i;
	int ok = 1;

	if (count == 0)
		return 0;
	if (txn_begin(s, err) != 0)
		return -1;
	for (i = 0; i < count && ok; i++) {
		const char *p[2] = { domains[i], orgs[i] };

		res = store_pq_params(s->conn, sql_domain_save, 2, p, err);
		if (res == NULL)
			ok = 0;
		else
			store_pq.PQclear(res);
	}
	return txn_end(s, ok, err);
}
