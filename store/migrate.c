/*
 * migrate.c - connecting, and the schema migrations built into the binary.
 *
 * Each migration runs in its own transaction and is recorded in
 * dmarcd.schema_migrations with the SHA-256 of its text. The whole run
 * holds an advisory lock, so two collectors starting at once apply each
 * migration once: the second waits, then finds nothing pending.
 *
 * After the migrations, still under the lock, the sender map built into
 * the binary is loaded (store_senders_sync), so that an upgrade of
 * dmarcd brings dmarcd.platforms and dmarcd.sender_rules up to date.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nettle/sha2.h>

#include "store/pq.h"
#include "store/store_private.h"

/* pg_advisory_lock key: "dmarcdmg" as a big-endian integer. */
#define MIGRATE_LOCK	"7236835301837055847"

static void
notice_quiet(void *arg, const char *message)
{
	(void)arg;
	(void)message;	/* "relation already exists, skipping" and such */
}

/* open_conn - a connection set up as dmarcd's are; NULL with err. */
static PGconn *
open_conn(const char *conninfo, struct dm_error *err)
{
	PGconn *conn;
	const char *msg;

	conn = store_pq.PQconnectdb(conninfo != NULL ? conninfo : "");
	if (conn == NULL) {
		dm_error_set(err, DM_E_NOMEM, "cannot allocate a PostgreSQL "
		    "connection");
		return NULL;
	}
	if (store_pq.PQstatus(conn) != CONNECTION_OK) {
		msg = store_pq.PQerrorMessage(conn);
		/* A conninfo libpq cannot read is the user's to fix. */
		if (strstr(msg, "invalid connection option") != NULL ||
		    strstr(msg, "missing \"=\"") != NULL ||
		    strstr(msg, "invalid URI") != NULL ||
		    strstr(msg, "unterminated quoted string") != NULL)
			dm_error_set(err, DM_E_USAGE, "PostgreSQL connection "
			    "string: %s", msg);
		else
			dm_error_set(err, DM_E_TEMP, "cannot connect to "
			    "PostgreSQL: %s", msg);
		for (char *p = err->msg; *p != '\0'; p++)
			if (*p == '\n' || *p == '\t')
				*p = (p[1] == '\0') ? '\0' : ' ';
		store_pq.PQfinish(conn);
		return NULL;
	}
	store_pq.PQsetNoticeProcessor(conn, notice_quiet, NULL);
	if (store_pq_exec(conn, "SET client_encoding = 'UTF8'; "
	    "SET timezone = 'UTC'; SET application_name = 'dmarcd'; "
	    "SET client_min_messages = warning", err) != 0) {
		store_pq.PQfinish(conn);
		return NULL;
	}
	return conn;
}

int
store_connect(struct store **store_r, const char *conninfo,
    struct dm_error *err)
{
	struct store *s;
	PGconn *conn;

	*store_r = NULL;
	if (store_pq_load(err) != 0)
		return -1;
	conn = open_conn(conninfo, err);
	if (conn == NULL)
		return -1;
	s = calloc(1, sizeof(*s));
	if (s == NULL || (s->conninfo = strdup(conninfo != NULL ? conninfo :
	    "")) == NULL) {
		free(s);
		store_pq.PQfinish(conn);
		return dm_error_set(err, DM_E_NOMEM, "out of memory");
	}
	s->conn = conn;
	s->batch_inputs = 100;
	s->batch_ms = 500;
	if (store_ingest_init(s, err) != 0) {
		store_free(s);
		return -1;
	}
	*store_r = s;
	return 0;
}

/*
 * store_aux - the second connection, opened when first needed: what
 * commits on its own, outside the batch (reporters, partitions), so that
 * collectors running side by side never wait on each other's batch for
 * them. NULL with err.
 */
PGconn *
store_aux(struct store *s, struct dm_error *err)
{
	if (s->aux != NULL && store_pq.PQstatus(s->aux) != CONNECTION_OK) {
		store_pq.PQfinish(s->aux);
		s->aux = NULL;
	}
	if (s->aux == NULL)
		s->aux = open_conn(s->conninfo, err);
	return s->aux;
}

void
store_free(struct store *s)
{
	if (s == NULL)
		return;
	store_ingest_free(s);
	if (s->conn != NULL)
		store_pq.PQfinish(s->conn);
	if (s->aux != NULL)
		store_pq.PQfinish(s->aux);
	free(s->conninfo);
	free(s);
}

static void
checksum(const char *text, char hex[65])
{
	struct sha256_ctx ctx;
	unsigned char d[SHA256_DIGEST_SIZE];
	int i;

	sha256_init(&ctx);
	sha256_update(&ctx, strlen(text), (const uint8_t *)text);
	sha256_digest(&ctx, sizeof(d), d);
	for (i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

/*
 * run_migration - one migration's SQL; on failure err holds PostgreSQL's
 * message, its HINT and SQLSTATE, not the script (which would fill the
 * message before the reason: store_pq_exec() names what failed by its
 * text).
 */
static int
run_migration(PGconn *conn, const char *sql, struct dm_error *err)
{
	PGresult *res = store_pq.PQexec(conn, sql);
	ExecStatusType st = res != NULL ? store_pq.PQresultStatus(res) :
	    PGRES_FATAL_ERROR;

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		return store_pq_fail(conn, res, "applying it", err);
	store_pq.PQclear(res);
	return 0;
}

static int
ensure_table(struct store *s, struct dm_error *err)
{
	return store_pq_exec(s->conn,
	    "CREATE SCHEMA IF NOT EXISTS dmarcd; "
	    "CREATE TABLE IF NOT EXISTS dmarcd.schema_migrations ("
	    " version integer PRIMARY KEY, name text NOT NULL,"
	    " checksum text NOT NULL,"
	    " applied_at timestamptz NOT NULL DEFAULT now(),"
	    " duration_ms double precision NOT NULL DEFAULT 0)", err);
}

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* Is version applied? 1 yes, 0 no, -1 error. */
static int
applied(struct store *s, int version, char *sum, size_t sum_size,
    struct dm_error *err)
{
	char v[16];
	const char *params[1] = { v };
	PGresult *res;
	int found;

	snprintf(v, sizeof(v), "%d", version);
	res = store_pq_params(s->conn, "SELECT checksum FROM "
	    "dmarcd.schema_migrations WHERE version = $1", 1, params, err);
	if (res == NULL)
		return -1;
	found = store_pq.PQntuples(res) > 0;
	if (found && sum != NULL)
		snprintf(sum, sum_size, "%s", store_pq.PQgetvalue(res, 0, 0));
	store_pq.PQclear(res);
	return found;
}

int
store_migrate(struct store *s, FILE *out, struct dm_error *err)
{
	size_t i;
	int rc = -1, n = 0, a;
	char sum[65], v[16], ms[32];
	const char *params[4];
	PGresult *res;
	double t0;
	struct store_senders_tally tally;

	if (store_pq_exec(s->conn, "SELECT pg_advisory_lock(" MIGRATE_LOCK
	    ")", err) != 0)
		return -1;
	if (ensure_table(s, err) != 0)
		goto out;
	for (i = 0; i < store_migration_count; i++) {
		const struct store_migration *m = &store_migrations[i];

		a = applied(s, m->version, NULL, 0, err);
		if (a < 0)
			goto out;
		if (a)
			continue;
		t0 = now_ms();
		if (store_pq_exec(s->conn, "BEGIN", err) != 0)
			goto out;
		if (run_migration(s->conn, m->sql, err) != 0) {
			dm_error_prefix(err, "migration %04d_%s", m->version,
			    m->name);
			store_pq_exec(s->conn, "ROLLBACK", &(struct dm_error){ 0 });
			goto out;
		}
		checksum(m->sql, sum);
		snprintf(v, sizeof(v), "%d", m->version);
		snprintf(ms, sizeof(ms), "%.1f", now_ms() - t0);
		params[0] = v;
		params[1] = m->name;
		params[2] = sum;
		params[3] = ms;
		res = store_pq_params(s->conn, "INSERT INTO "
		    "dmarcd.schema_migrations (version, name, checksum, "
		    "duration_ms) VALUES ($1, $2, $3, $4)", 4, params, err);
		if (res == NULL) {
			store_pq_exec(s->conn, "ROLLBACK", &(struct dm_error){ 0 });
			goto out;
		}
		store_pq.PQclear(res);
		if (store_pq_exec(s->conn, "COMMIT", err) != 0)
			goto out;
		if (out != NULL)
			fprintf(out, "applied %04d_%s (%.0f ms)\n", m->version,
			    m->name, now_ms() - t0);
		n++;
	}
	if (out != NULL && n == 0)
		fprintf(out, "nothing to do: all %zu migrations applied\n",
		    store_migration_count);
	if (store_senders_sync(s, &tally, err) != 0) {
		dm_error_prefix(err, "sender map");
		goto out;
	}
	if (out != NULL) {
		fprintf(out, "sender map: %u platforms, %u rules built in "
		    "(%u platforms new or changed, %u rules added, "
		    "%u removed); kept %u local platforms, %u local rules",
		    tally.platforms, tally.rules, tally.platforms_changed,
		    tally.rules_added, tally.rules_removed,
		    tally.local_platforms, tally.local_rules);
		if (tally.shadowed > 0)
			fprintf(out, "; %u built-in rules left out for the "
			    "local rules of the same kind and suffix",
			    tally.shadowed);
		fputc('\n', out);
	}
	rc = 0;
out:
	store_pq_exec(s->conn, "SELECT pg_advisory_unlock(" MIGRATE_LOCK ")",
	    &(struct dm_error){ 0 });
	return rc;
}

int
store_migrate_status(struct store *s, FILE *out, int *pending_r,
    struct dm_error *err)
{
	PGresult *res;
	size_t i;
	int pending = 0, rows, r, known, exists;
	char sum[65];

	res = store_pq_params(s->conn, "SELECT to_regclass("
	    "'dmarcd.schema_migrations') IS NOT NULL", 0, NULL, err);
	if (res == NULL)
		return -1;
	exists = store_pq.PQgetvalue(res, 0, 0)[0] == 't';
	store_pq.PQclear(res);
	if (!exists) {
		for (i = 0; i < store_migration_count; i++)
			fprintf(out, "%04d %-20s pending\n",
			    store_migrations[i].version,
			    store_migrations[i].name);
		*pending_r = (int)store_migration_count;
		return 0;
	}
	res = store_pq_params(s->conn, "SELECT version, name, checksum, "
	    "to_char(applied_at, 'YYYY-MM-DD HH24:MI:SS\"Z\"') FROM "
	    "dmarcd.schema_migrations ORDER BY version", 0, NULL, err);
	if (res == NULL)
		return -1;
	rows = store_pq.PQntuples(res);
	for (i = 0; i < store_migration_count; i++) {
		const struct store_migration *m = &store_migrations[i];
		int found = -1;

		for (r = 0; r < rows; r++)
			if (atoi(store_pq.PQgetvalue(res, r, 0)) == m->version)
				found = r;
		if (found < 0) {
			fprintf(out, "%04d %-20s pending\n", m->version,
			    m->name);
			pending++;
			continue;
		}
		checksum(m->sql, sum);
		fprintf(out, "%04d %-20s applied %s%s\n", m->version, m->name,
		    store_pq.PQgetvalue(res, found, 3),
		    strcmp(sum, store_pq.PQgetvalue(res, found, 2)) == 0 ? "" :
		    " (its text has changed since: checksum differs)");
	}
	for (r = 0; r < rows; r++) {
		int v = atoi(store_pq.PQgetvalue(res, r, 0));

		known = 0;
		for (i = 0; i < store_migration_count; i++)
			if (store_migrations[i].version == v)
				known = 1;
		if (!known)
			fprintf(out, "%04d %-20s applied %s (unknown to this "
			    "dmarcd: a newer version migrated the database)\n",
			    v, store_pq.PQgetvalue(res, r, 1),
			    store_pq.PQgetvalue(res, r, 3));
	}
	store_pq.PQclear(res);
	*pending_r = pending;
	return 0;
}

int
store_check_schema(struct store *s, struct dm_error *err)
{
	PGresult *res;
	int have, latest;

	/* Two queries: the second does not parse without the table. */
	res = store_pq_params(s->conn, "SELECT to_regclass("
	    "'dmarcd.schema_migrations') IS NOT NULL", 0, NULL, err);
	if (res == NULL)
		return -1;
	have = store_pq.PQgetvalue(res, 0, 0)[0] == 't' ? 0 : -1;
	store_pq.PQclear(res);
	if (have == 0) {
		res = store_pq_params(s->conn, "SELECT coalesce(max(version), "
		    "0) FROM dmarcd.schema_migrations", 0, NULL, err);
		if (res == NULL)
			return -1;
		have = atoi(store_pq.PQgetvalue(res, 0, 0));
		store_pq.PQclear(res);
	}
	latest = store_migrations[store_migration_count - 1].version;
	if (have < 0)
		return dm_error_set(err, DM_E_TEMP, "the database has no "
		    "dmarcd schema yet: run 'dmarcd migrate'");
	if (have < latest)
		return dm_error_set(err, DM_E_TEMP, "the database schema is at "
		    "migration %d, this dmarcd needs %d: run 'dmarcd migrate'",
		    have, latest);
	return 0;
}

int
store_role_writes(struct store *s, long *tables_r, struct dm_error *err)
{
	PGresult *res;

	res = store_pq_params(s->conn, "SELECT count(*) FROM pg_class c "
	    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = "
	    "'dmarcd' AND c.relkind IN ('r', 'p') AND has_table_privilege("
	    "c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE')", 0, NULL, err);
	if (res == NULL)
		return -1;
	*tables_r = atol(store_pq.PQgetvalue(res, 0, 0));
	store_pq.PQclear(res);
	return 0;
}

/* ---- the sender map ---- */

/* pg_array - a text[] literal {"a","b"} for a parameter. */
static int
pg_array(struct dm_buf *b, size_t count, const char *(*item)(const void *,
    size_t), const void *ctx)
{
	size_t i;
	int rc = 0;

	rc |= dm_buf_append(b, "{", 1);
	for (i = 0; i < count; i++) {
		rc |= dm_buf_append(b, i ? ",\"" : "\"", i ? 2 : 1);
		for (const char *c = item(ctx, i); *c != '\0'; c++) {
			if (*c == '"' || *c == '\\')
				rc |= dm_buf_append(b, "\\", 1);
			rc |= dm_buf_append(b, c, 1);
		}
		rc |= dm_buf_append(b, "\"", 1);
	}
	rc |= dm_buf_append(b, "}", 1);
	return rc ? -1 : 0;
}

#define MAP_FIELD(fn, array, field)				\
	static const char *						\
	fn(const void *ctx, size_t i)					\
	{								\
		return ((const struct store_senders *)ctx)->array[i].field; \
	}
MAP_FIELD(p_name, platforms, name)
MAP_FIELD(p_kind, platforms, kind)
MAP_FIELD(p_spf, platforms, spf_fix)
MAP_FIELD(p_dkim, platforms, dkim_fix)
MAP_FIELD(p_url, platforms, url)
MAP_FIELD(r_kind, rules, kind)
MAP_FIELD(r_suffix, rules, suffix)
MAP_FIELD(r_platform, rules, platform)

/* Upsert the built-in platforms, touching only rows that differ. */
static const char SENDERS_PLATFORMS[] =
    "INSERT INTO dmarcd.platforms AS p (name, kind, spf_fix, dkim_fix, "
    " url, source) "
    "SELECT name, kind, spf_fix, dkim_fix, url, 'dmarcd' FROM "
    " unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) "
    " AS e(name, kind, spf_fix, dkim_fix, url) "
    "ON CONFLICT (name) DO UPDATE SET kind = EXCLUDED.kind, "
    " spf_fix = EXCLUDED.spf_fix, dkim_fix = EXCLUDED.dkim_fix, "
    " url = EXCLUDED.url, source = 'dmarcd' "
    "WHERE (p.kind, p.spf_fix, p.dkim_fix, p.url, p.source) IS DISTINCT "
    " FROM (EXCLUDED.kind, EXCLUDED.spf_fix, EXCLUDED.dkim_fix, "
    " EXCLUDED.url, 'dmarcd')";
/* dmarcd's rules that are no longer built in. */
static const char SENDERS_RULES_GONE[] =
    "DELETE FROM dmarcd.sender_rules AS r WHERE r.source = 'dmarcd' AND "
    "NOT EXISTS (SELECT 1 FROM unnest($1::text[], $2::text[], $3::text[]) "
    " AS e(kind, suffix, platform) WHERE e.kind = r.kind AND "
    " e.suffix = r.suffix AND e.platform = r.platform)";
/* The built-in rules; a local rule of the same key stays. */
static const char SENDERS_RULES_NEW[] =
    "INSERT INTO dmarcd.sender_rules (kind, suffix, platform, source) "
    "SELECT kind, suffix, platform, 'dmarcd' FROM "
    " unnest($1::text[], $2::text[], $3::text[]) AS e(kind, suffix, "
    " platform) "
    "ON CONFLICT (kind, suffix) DO NOTHING";
static const char SENDERS_SHADOWED[] =
    "SELECT count(*) FROM unnest($1::text[], $2::text[]) AS e(kind, suffix) "
    "JOIN dmarcd.sender_rules AS r USING (kind, suffix) "
    "WHERE r.source = 'local'";
/*
 * Platforms dmarcd no longer ships: deleted, unless a local rule still
 * names one, which then becomes local (two statements: one statement
 * cannot both delete and update a row it sees).
 */
static const char SENDERS_PLATFORMS_GONE[] =
    "DELETE FROM dmarcd.platforms AS p WHERE p.source = 'dmarcd' AND "
    " p.name <> ALL ($1::text[]) AND NOT EXISTS (SELECT 1 FROM "
    " dmarcd.sender_rules AS r WHERE r.platform = p.name)";
static const char SENDERS_PLATFORMS_LOCAL[] =
    "UPDATE dmarcd.platforms SET source = 'local' WHERE source = 'dmarcd' "
    " AND name <> ALL ($1::text[])";
static const char SENDERS_LOCAL[] =
    "SELECT (SELECT count(*) FROM dmarcd.platforms WHERE source = 'local'), "
    " (SELECT count(*) FROM dmarcd.sender_rules WHERE source = 'local')";

/* run - a statement with text parameters; its row count in *count_r. */
static int
run(struct store *s, const char *sql, int n, const char *const *params,
    unsigned *count_r, struct dm_error *err)
{
	PGresult *res;

	res = store_pq_params(s->conn, sql, n, params, err);
	if (res == NULL)
		return -1;
	if (count_r != NULL)
		*count_r = (unsigned)strtoul(store_pq.PQcmdTuples(res), NULL,
		    10);
	store_pq.PQclear(res);
	return 0;
}

/* counts - the first row's first one or two columns, as numbers. */
static int
counts(struct store *s, const char *sql, int n, const char *const *params,
    unsigned *a_r, unsigned *b_r, struct dm_error *err)
{
	PGresult *res;

	res = store_pq_params(s->conn, sql, n, params, err);
	if (res == NULL)
		return -1;
	if (store_pq.PQntuples(res) > 0) {
		*a_r = (unsigned)strtoul(store_pq.PQgetvalue(res, 0, 0), NULL,
		    10);
		if (b_r != NULL && store_pq.PQnfields(res) > 1)
			*b_r = (unsigned)strtoul(store_pq.PQgetvalue(res, 0,
			    1), NULL, 10);
	}
	store_pq.PQclear(res);
	return 0;
}

int
store_senders_sync(struct store *s, struct store_senders_tally *t,
    struct dm_error *err)
{
	static const char *(*const pf[])(const void *, size_t) = { p_name,
		p_kind, p_spf, p_dkim, p_url };
	static const char *(*const rf[])(const void *, size_t) = { r_kind,
		r_suffix, r_platform };
	struct store_senders *map;
	struct dm_buf pa[5], ra[3];
	const char *pv[5], *rv[3];
	int rc = -1, in_txn = 0;
	size_t i;

	memset(t, 0, sizeof(*t));
	if (store_senders_builtin(&map, err) != 0)
		return -1;
	for (i = 0; i < 5; i++)
		dm_buf_init(&pa[i], (size_t)1 << 24);
	for (i = 0; i < 3; i++)
		dm_buf_init(&ra[i], (size_t)1 << 24);
	for (i = 0; i < 5; i++)
		if (pg_array(&pa[i], map->platform_count, pf[i], map) != 0)
			goto nomem;
	for (i = 0; i < 3; i++)
		if (pg_array(&ra[i], map->rule_count, rf[i], map) != 0)
			goto nomem;
	for (i = 0; i < 5; i++)
		pv[i] = dm_buf_cstr(&pa[i]);
	for (i = 0; i < 3; i++)
		rv[i] = dm_buf_cstr(&ra[i]);
	t->platforms = (unsigned)map->platform_count;
	t->rules = (unsigned)map->rule_count;

	if (store_pq_exec(s->conn, "BEGIN", err) != 0)
		goto out;
	in_txn = 1;
	if (run(s, SENDERS_PLATFORMS, 5, pv, &t->platforms_changed, err) ||
	    run(s, SENDERS_RULES_GONE, 3, rv, &t->rules_removed, err) ||
	    run(s, SENDERS_RULES_NEW, 3, rv, &t->rules_added, err) ||
	    counts(s, SENDERS_SHADOWED, 2, rv, &t->shadowed, NULL, err) ||
	    run(s, SENDERS_PLATFORMS_GONE, 1, pv, NULL, err) ||
	    run(s, SENDERS_PLATFORMS_LOCAL, 1, pv, NULL, err) ||
	    counts(s, SENDERS_LOCAL, 0, NULL, &t->local_platforms,
	    &t->local_rules, err))
		goto out;
	/* The platforms stored with names (0008) follow the rules. */
	if (t->rules_added + t->rules_removed > 0 && store_pq_exec(s->conn,
	    "SELECT dmarcd.refresh_platforms()", err) != 0)
		goto out;
	if (store_pq_exec(s->conn, "COMMIT", err) != 0)
		goto out;
	in_txn = 0;
	rc = 0;
	goto out;
nomem:
	dm_error_set(err, DM_E_NOMEM, "out of memory");
out:
	if (in_txn)
		store_pq_exec(s->conn, "ROLLBACK", &(struct dm_error){ 0 });
	for (i = 0; i < 5; i++)
		dm_buf_free(&pa[i]);
	for (i = 0; i < 3; i++)
		dm_buf_free(&ra[i]);
	store_senders_free(&map);
	return rc;
}
