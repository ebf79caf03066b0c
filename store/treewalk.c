/*
 * treewalk.c - the store's side of the DMARCbis tree walk
 * (sql/0012_treewalk.sql, docs/resolve.md): which domains of the reports
 * that say discovery_method=treewalk need walking (again), keeping the
 * answers in dmarcd.treewalk_orgs, and aligning those reports again where
 * the walk and the Public Suffix List disagree.
 *
 * Realigning a report is one transaction: its policy_published row is
 * locked, its records are read with their DKIM and SPF results, aligned
 * by dm_align_record_org() with the walk's organizational domains, and
 * when a record's verdict changes the report's rollup is taken away with
 * the old rows (dmarcd.rollup_add(..., -1)), the rows are updated, and it
 * is added back (+1). A report one of whose domains has no walk answer
 * yet (the DNS failed) keeps its PSL verdict and is looked at again next
 * time. A report replaced by a revision is left alone: its rows are no
 * longer in the rollup.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/align.h"
#include "common/report.h"
#include "store/pq.h"
#include "store/store.h"
#include "store/store_private.h"

/* A domain as the tables have it, normalized as far as SQL can; what
 * dm_domain_norm() accepts comes out the same. */
#define NORM(x) "lower(rtrim(btrim(" x ", E' \\t\\r\\n\\f\\v'), '.'))"

/* The names of one treewalk report's records ($1 domain, $2 report, $3
 * report_begin, or columns of an outer query). */
#define REPORT_NAMES(d, id, begin)					\
	"SELECT " NORM("r.header_from") " AS name FROM dmarcd.records r "	\
	"WHERE r.domain = " d " AND r.report = " id " AND "		\
	"r.report_begin = " begin " UNION "				\
	"SELECT " NORM("k.auth_domain") " FROM dmarcd.dkim_results k "	\
	"WHERE k.domain = " d " AND k.report = " id " AND "		\
	"k.report_begin = " begin " UNION "				\
	"SELECT " NORM("f.auth_domain") " FROM dmarcd.spf_results f "	\
	"WHERE f.domain = " d " AND f.report = " id " AND "		\
	"f.report_begin = " begin

/* Not replaced by a later revision (the key dmarcd.summary uses). */
#define LATEST(rp)							\
	"NOT EXISTS (SELECT 1 FROM dmarcd.reports nx WHERE "		\
	"nx.domain = " rp ".domain AND nx.org_name = " rp ".org_name AND "\
	"nx.report_id = " rp ".report_id AND nx.begin_time = "		\
	rp ".begin_time AND nx.end_time = " rp ".end_time AND "		\
	"nx.revision > " rp ".revision)"

static const char sql_due[] =
    "SELECT u.name FROM (SELECT DISTINCT n.name FROM "
    "dmarcd.policy_published pp JOIN dmarcd.reports rp ON "
    "rp.domain = pp.domain AND rp.id = pp.report "
    "CROSS JOIN LATERAL (" REPORT_NAMES("pp.domain", "pp.report",
    "rp.begin_time") ") n "
    "WHERE pp.discovery_method = 'treewalk' AND "
    "($1::date IS NULL OR rp.end_time >= $1::date)) u "
    "LEFT JOIN dmarcd.treewalk_orgs t ON t.domain = u.name "
    "WHERE u.name IS NOT NULL AND u.name <> '' AND "
    "(t.domain IS NULL OR t.expires_at <= now()) "
    "ORDER BY t.expires_at NULLS FIRST, u.name LIMIT $2";

/* A DNS failure keeps the org an earlier walk found. */
static const char sql_save[] =
    "INSERT INTO dmarcd.treewalk_orgs AS t (domain, org, psl_org, status, "
    "walked_at, changed_at, expires_at) VALUES ($1, $2, $3, $4, now(), "
    "now(), now() + make_interval(secs => $5::double precision)) "
    "ON CONFLICT (domain) DO UPDATE SET "
    "org = CASE WHEN $6::boolean THEN t.org ELSE excluded.org END, "
    "psl_org = excluded.psl_org, status = excluded.status, "
    "walked_at = excluded.walked_at, "
    "changed_at = CASE WHEN NOT $6::boolean AND excluded.org <> t.org "
    "THEN now() ELSE t.changed_at END, "
    "expires_at = excluded.expires_at";

/*
 * The latest treewalk reports after ($1, $2) that have a domain whose
 * walk found another org than the PSL (never realigned), or whose org
 * changed since they were realigned.
 */
static const char sql_candidates[] =
    "SELECT pp.domain, pp.report, rp.begin_time "
    "FROM dmarcd.policy_published pp JOIN dmarcd.reports rp ON "
    "rp.domain = pp.domain AND rp.id = pp.report "
    "WHERE pp.discovery_method = 'treewalk' AND "
    "(pp.domain, pp.report) > ($1::text COLLATE \"C\", $2::bigint) AND "
    LATEST("rp") " AND EXISTS (SELECT 1 FROM dmarcd.treewalk_orgs t "
    "WHERE t.org <> '' AND CASE WHEN pp.realigned_at IS NULL THEN "
    "t.org <> t.psl_org ELSE t.changed_at > pp.realigned_at END AND "
    "t.domain IN (" REPORT_NAMES("pp.domain", "pp.report",
    "rp.begin_time") ")) "
    "ORDER BY pp.domain COLLATE \"C\", pp.report LIMIT $3";

static const char sql_lock[] =
    "SELECT pp.adkim, pp.aspf FROM dmarcd.policy_published pp "
    "JOIN dmarcd.reports rp ON rp.domain = pp.domain AND "
    "rp.id = pp.report WHERE pp.domain = $1 AND pp.report = $2 AND "
    LATEST("rp") " FOR UPDATE OF pp";

static const char sql_orgs[] =
    "SELECT t.domain, t.org FROM dmarcd.treewalk_orgs t WHERE "
    "t.org <> '' AND t.domain IN (" REPORT_NAMES("$1", "$2::bigint",
    "$3::timestamptz") ") ORDER BY t.domain COLLATE \"C\"";

static const char sql_records[] =
    "SELECT idx, header_from, auth, dkim_domain, spf_domain "
    "FROM dmarcd.records WHERE domain = $1 AND report = $2 AND "
    "report_begin = $3 ORDER BY idx";

static const char sql_dkim[] =
    "SELECT idx, auth_domain, result FROM dmarcd.dkim_results "
    "WHERE domain = $1 AND report = $2 AND report_begin = $3 "
    "ORDER BY idx, n";

static const char sql_spf[] =
    "SELECT idx, auth_domain, scope, result FROM dmarcd.spf_results "
    "WHERE domain = $1 AND report = $2 AND report_begin = $3 "
    "ORDER BY idx, n";

static const char sql_rollup[] =
    "SELECT dmarcd.rollup_add(ARRAY[$1::text], ARRAY[$2::bigint], "
    "ARRAY[$3::timestamptz], $4::integer)";

static const char sql_update[] =
    "UPDATE dmarcd.records SET auth = $5::smallint, dkim_domain = $6, "
    "spf_domain = $7 WHERE domain = $1 AND report = $2 AND "
    "report_begin = $3 AND idx = $4";

static const char sql_realigned[] =
    "UPDATE dmarcd.policy_published SET realigned_at = now() "
    "WHERE domain = $1 AND report = $2";

#define CANDIDATE_BATCH	100

int
store_treewalk_due(struct store *s, const char *since, size_t limit,
    int (*each)(void *ctx, const char *domain), void *ctx,
    struct dm_error *err)
{
	return store_list_due(s, sql_due, since, limit, each, ctx, err);
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

/* run - a command of n parameters whose rows are not wanted. */
static int
run(struct store *s, const char *sql, int n, const char *const *p,
    struct dm_error *err)
{
	PGresult *res = store_pq_params(s->conn, sql, n, p, err);

	if (res == NULL)
		return -1;
	store_pq.PQclear(res);
	return 0;
}

int
store_treewalk_save(struct store *s, const struct store_treewalk_org *rows,
    size_t count, struct dm_error *err)
{
	char ttl[24];
	size_t i;
	int ok = 1;

	if (count == 0)
		return 0;
	if (s->in_txn)
		return dm_error_set(err, DM_E_INTERNAL, "tree walk saved "
		    "inside a batch");
	if (store_pq_exec(s->conn, "BEGIN", err) != 0)
		return -1;
	for (i = 0; i < count && ok; i++) {
		const struct store_treewalk_org *r = &rows[i];
		const char *p[6];

		snprintf(ttl, sizeof(ttl), "%u", r->ttl_s);
		p[0] = r->domain;
		p[1] = r->org;
		p[2] = r->psl_org;
		p[3] = r->status;
		p[4] = ttl;
		p[5] = r->temporary ? "true" : "false";
		if (run(s, sql_save, 6, p, err) != 0)
			ok = 0;
	}
	return txn_end(s, ok, err);
}

/* ---- realigning a report ---- */

/* The walk's organizational domains of one report, sorted (C order). */
struct org_map {
	PGresult *res;
	int count;
	int missing;		/* a name had no answer */
};

static int
map_org(void *ctx, const char *domain, char *out, size_t size)
{
	struct org_map *m = ctx;
	int lo = 0, hi = m->count - 1, mid, c;
	const char *org;

	while (lo <= hi) {
		mid = lo + (hi - lo) / 2;
		c = strcmp(domain, store_pq.PQgetvalue(m->res, mid, 0));
		if (c == 0) {
			org = store_pq.PQgetvalue(m->res, mid, 1);
			if (strlen(org) + 1 > size)
				break;
			memcpy(out, org, strlen(org) + 1);
			return 0;
		}
		if (c < 0)
			hi = mid - 1;
		else
			lo = mid + 1;
	}
	m->missing = 1;
	return -1;
}

static int
enum_of(enum dm_enum_type type, PGresult *res, int row, int col)
{
	const char *v = store_pq.PQgetvalue(res, row, col);
	int value = 0;

	if (store_pq.PQgetisnull(res, row, col))
		return 0;
	dm_enum_parse(type, v, strlen(v), &value);
	return value;
}

static long long
idx_of(PGresult *res, int row)
{
	return strtoll(store_pq.PQgetvalue(res, row, 0), NULL, 10);
}

static const char *
text_of(PGresult *res, int row, int col)
{
	return store_pq.PQgetisnull(res, row, col) ? NULL :
	    store_pq.PQgetvalue(res, row, col);
}

/* One record's new verdict, when it differs from the stored one. */
struct change {
	int row;		/* in the records result */
	unsigned bits;
	char dkim_domain[DM_DOMAIN_MAX];
	char spf_domain[DM_DOMAIN_MAX];
};

/*
 * realign_rows - align each record of recs with m; the changed ones into
 * *changes_r (count in *count_r, malloc'd). -1 only for memory.
 */
static int
realign_rows(PGresult *recs, PGresult *dkim, PGresult *spf,
    const struct dm_policy_published *pp, struct org_map *m,
    struct change **changes_r, size_t *count_r)
{
	struct dm_record *rec;
	struct dm_alignment auth;
	struct change *changes = NULL, *c;
	size_t count = 0, cap = 0;
	int nrec = store_pq.PQntuples(recs), nd = store_pq.PQntuples(dkim);
	int ns = store_pq.PQntuples(spf), i, di = 0, si = 0;
	long long idx;

	*changes_r = NULL;
	*count_r = 0;
	rec = malloc(sizeof(*rec));
	if (rec == NULL)
		return -1;
	for (i = 0; i < nrec; i++) {
		memset(rec, 0, sizeof(*rec));
		idx = idx_of(recs, i);
		rec->index = (uint64_t)idx;
		rec->header_from = text_of(recs, i, 1);
		while (di < nd && idx_of(dkim, di) < idx)
			di++;
		for (; di < nd && idx_of(dkim, di) == idx; di++) {
			struct dm_dkim_result *d;

			if (rec->dkim_count == DM_MAX_DKIM_RESULTS)
				continue;
			d = &rec->dkim_results[rec->dkim_count++];
			d->domain = text_of(dkim, di, 1);
			d->result = enum_of(DM_ENUM_DKIM_RESULT, dkim, di, 2);
		}
		while (si < ns && idx_of(spf, si) < idx)
			si++;
		for (; si < ns && idx_of(spf, si) == idx; si++) {
			struct dm_spf_result *f;

			if (rec->spf_count == DM_MAX_SPF_RESULTS)
				continue;
			f = &rec->spf_results[rec->spf_count++];
			f->domain = text_of(spf, si, 1);
			f->scope = enum_of(DM_ENUM_SPF_SCOPE, spf, si, 2);
			f->result = enum_of(DM_ENUM_SPF_RESULT, spf, si, 3);
		}
		dm_align_record_org(pp, rec, map_org, m, &auth);
		if (m->missing)
			break;		/* no verdict for this report */
		if (!store_pq.PQgetisnull(recs, i, 2) &&
		    strtoul(store_pq.PQgetvalue(recs, i, 2), NULL, 10) ==
		    auth.bits && strcmp(store_pq.PQgetvalue(recs, i, 3),
		    auth.dkim_domain) == 0 && strcmp(store_pq.PQgetvalue(recs,
		    i, 4), auth.spf_domain) == 0)
			continue;
		if (count == cap) {
			size_t ncap = cap == 0 ? 16 : cap * 2;
			struct change *n = realloc(changes,
			    ncap * sizeof(*changes));

			if (n == NULL) {
				free(changes);
				free(rec);
				return -1;
			}
			changes = n;
			cap = ncap;
		}
		c = &changes[count++];
		c->row = i;
		c->bits = auth.bits;
		memcpy(c->dkim_domain, auth.dkim_domain,
		    sizeof(c->dkim_domain));
		memcpy(c->spf_domain, auth.spf_domain, sizeof(c->spf_domain));
	}
	free(rec);
	*changes_r = changes;
	*count_r = count;
	return 0;
}

/* realign_report - one report in one transaction, counted in t. */
static int
realign_report(struct store *s, const char *domain, const char *report,
    const char *begin, struct store_realign_totals *t, struct dm_error *err)
{
	const char *key[3] = { domain, report, begin };
	PGresult *lock = NULL, *recs = NULL, *dkim = NULL, *spf = NULL;
	struct dm_policy_published pp;
	struct org_map m = { NULL, 0, 0 };
	struct change *changes = NULL;
	size_t count = 0, i;
	int ok = 0;

	if (store_pq_exec(s->conn, "BEGIN", err) != 0)
		return -1;
	lock = store_pq_params(s->conn, sql_lock, 2, key, err);
	if (lock == NULL)
		goto out;
	if (store_pq.PQntuples(lock) == 0) {
		ok = 1;		/* replaced meanwhile */
		goto out;
	}
	memset(&pp, 0, sizeof(pp));
	pp.domain = domain;
	pp.adkim = enum_of(DM_ENUM_ALIGNMENT, lock, 0, 0);
	pp.aspf = enum_of(DM_ENUM_ALIGNMENT, lock, 0, 1);
	if ((m.res = store_pq_params(s->conn, sql_orgs, 3, key, err)) ==
	    NULL || (recs = store_pq_params(s->conn, sql_records, 3, key,
	    err)) == NULL || (dkim = store_pq_params(s->conn, sql_dkim, 3,
	    key, err)) == NULL || (spf = store_pq_params(s->conn, sql_spf, 3,
	    key, err)) == NULL)
		goto out;
	m.count = store_pq.PQntuples(m.res);
	if (realign_rows(recs, dkim, spf, &pp, &m, &changes, &count) != 0) {
		dm_error_set(err, DM_E_NOMEM, "out of memory");
		goto out;
	}
	if (m.missing) {
		/* A domain not walked yet: the PSL's verdict stays. */
		t->waiting++;
		ok = 1;
		goto out;
	}
	if (count > 0) {
		const char *p[7] = { domain, report, begin, "-1" };

		if (run(s, sql_rollup, 4, p, err) != 0)
			goto out;
		for (i = 0; i < count; i++) {
			char bits[16];

			snprintf(bits, sizeof(bits), "%u", changes[i].bits);
			p[3] = store_pq.PQgetvalue(recs, changes[i].row, 0);
			p[4] = bits;
			p[5] = changes[i].dkim_domain;
			p[6] = changes[i].spf_domain;
			if (run(s, sql_update, 7, p, err) != 0)
				goto out;
		}
		p[3] = "1";
		if (run(s, sql_rollup, 4, p, err) != 0)
			goto out;
	}
	if (run(s, sql_realigned, 2, key, err) != 0)
		goto out;
	ok = 1;
	t->reports++;
	t->records += count;
	if (count > 0)
		t->changed++;
out:
	free(changes);
	if (lock != NULL)
		store_pq.PQclear(lock);
	if (m.res != NULL)
		store_pq.PQclear(m.res);
	if (recs != NULL)
		store_pq.PQclear(recs);
	if (dkim != NULL)
		store_pq.PQclear(dkim);
	if (spf != NULL)
		store_pq.PQclear(spf);
	return txn_end(s, ok, err);
}

int
store_treewalk_realign(struct store *s, struct store_realign_totals *t,
    struct dm_error *err)
{
	char *last_domain, last_id[24] = "0", limit[24];
	PGresult *res;
	int i, n, rc = 0;

	memset(t, 0, sizeof(*t));
	if (s->in_txn)
		return dm_error_set(err, DM_E_INTERNAL, "reports realigned "
		    "inside a batch");
	snprintf(limit, sizeof(limit), "%d", CANDIDATE_BATCH);
	if ((last_domain = strdup("")) == NULL)
		return dm_error_set(err, DM_E_NOMEM, "out of memory");
	for (;;) {
		const char *p[3] = { last_domain, last_id, limit };

		res = store_pq_params(s->conn, sql_candidates, 3, p, err);
		if (res == NULL) {
			rc = -1;
			break;
		}
		n = store_pq.PQntuples(res);
		for (i = 0; i < n; i++) {
			if (realign_report(s, store_pq.PQgetvalue(res, i, 0),
			    store_pq.PQgetvalue(res, i, 1),
			    store_pq.PQgetvalue(res, i, 2), t, err) != 0) {
				dm_error_prefix(err, "realigning report %s "
				    "of %s: ", store_pq.PQgetvalue(res, i, 1),
				    store_pq.PQgetvalue(res, i, 0));
				rc = -1;
				break;
			}
		}
		if (rc == 0 && n > 0) {
			free(last_domain);
			last_domain = strdup(store_pq.PQgetvalue(res, n - 1,
			    0));
			if (last_domain == NULL)
				rc = dm_error_set(err, DM_E_NOMEM, "out of "
				    "memory");
			snprintf(last_id, sizeof(last_id), "%s",
			    store_pq.PQgetvalue(res, n - 1, 1));
		}
		store_pq.PQclear(res);
		if (rc != 0 || n < CANDIDATE_BATCH)
			break;
	}
	free(last_domain);
	return rc;
}
