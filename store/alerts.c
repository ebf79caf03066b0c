/*
 * alerts.c - the alerts table (sql/0011_alerts.sql) for dmarcd alerts:
 * raising what dmarcd.alert_scan() finds, the delivery lock and queue,
 * and what became of each request.
 *
 * Raising is INSERT ... ON CONFLICT DO NOTHING: two processes raising at
 * once insert each alert once. Delivery takes a session advisory lock
 * (pg_try_advisory_lock), so that one process at a time sends and an
 * alert is never sent by two; the other one leaves the queue to it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/pq.h"
#include "store/store.h"
#include "store/store_private.h"

/* pg_advisory_lock's key for the delivery: "dmarcd" "alerts". */
#define ALERTS_LOCK_KEY	"7236836545347245683"

#define ALERT_COLUMNS \
	"id, domain, kind, key, detail::text, " \
	"to_char(raised_at AT TIME ZONE 'UTC', " \
	"'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), attempts"

static const char sql_raise[] =
    "INSERT INTO dmarcd.alerts (domain, kind, key, detail) "
    "SELECT domain, kind, key, detail FROM dmarcd.alert_scan(now(), $1, "
    "$2, $3) ORDER BY domain, kind, key "
    "ON CONFLICT (domain, kind, key) DO NOTHING RETURNING id";

static const char sql_candidates[] =
    "SELECT 0, c.domain, c.kind, c.key, c.detail::text, "
    "to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), 0 "
    "FROM dmarcd.alert_scan(now(), $1, $2, $3) c "
    "WHERE NOT EXISTS (SELECT 1 FROM dmarcd.alerts a WHERE a.domain = "
    "c.domain AND a.kind = c.kind AND a.key = c.key) "
    "ORDER BY c.domain, c.kind, c.key";

static const char sql_counts[] =
    "SELECT (SELECT count(*) FROM dmarcd.alerts WHERE sent_at > now() - "
    "interval '1 hour'), count(*), count(*) FILTER (WHERE "
    "coalesce(next_attempt_at <= now(), true)) FROM dmarcd.alerts "
    "WHERE sent_at IS NULL AND given_up_at IS NULL";

static const char sql_due[] =
    "SELECT " ALERT_COLUMNS " FROM dmarcd.alerts WHERE sent_at IS NULL "
    "AND given_up_at IS NULL AND coalesce(next_attempt_at <= now(), true) "
    "ORDER BY id LIMIT $1";

static const char sql_sent[] =
    "UPDATE dmarcd.alerts SET sent_at = now(), attempts = attempts + $2, "
    "last_error = NULL, next_attempt_at = NULL WHERE id = $1";

static const char sql_failed[] =
    "UPDATE dmarcd.alerts SET attempts = attempts + $2, last_error = $3, "
    "next_attempt_at = now() + make_interval(secs => $4), "
    "given_up_at = CASE WHEN $5 THEN now() END WHERE id = $1";

static void
scan_params(const struct store_alert_scan *scan, char v[3][16],
    const char *p[3])
{
	snprintf(v[0], sizeof(v[0]), "%u", scan->min_messages);
	snprintf(v[1], sizeof(v[1]), "%u", scan->share_drop);
	snprintf(v[2], sizeof(v[2]), "%u", scan->window_days);
	p[0] = v[0];
	p[1] = v[1];
	p[2] = v[2];
}

int
store_alerts_raise(struct store *s, const struct store_alert_scan *scan,
    unsigned *raised_r, struct dm_error *err)
{
	char v[3][16];
	const char *p[3];
	PGresult *res;

	scan_params(scan, v, p);
	res = store_pq_params(s->conn, sql_raise, 3, p, err);
	if (res == NULL)
		return -1;
	*raised_r = (unsigned)store_pq.PQntuples(res);
	store_pq.PQclear(res);
	return 0;
}

static void
alert_clear(struct store_alert *a)
{
	free(a->domain);
	free(a->kind);
	free(a->key);
	free(a->detail);
	memset(a, 0, sizeof(*a));
}

static int
alert_fill(PGresult *res, int row, struct store_alert *a,
    struct dm_error *err)
{
	memset(a, 0, sizeof(*a));
	a->id = strtoll(store_pq.PQgetvalue(res, row, 0), NULL, 10);
	a->domain = strdup(store_pq.PQgetvalue(res, row, 1));
	a->kind = strdup(store_pq.PQgetvalue(res, row, 2));
	a->key = strdup(store_pq.PQgetvalue(res, row, 3));
	a->detail = strdup(store_pq.PQgetvalue(res, row, 4));
	snprintf(a->raised_at, sizeof(a->raised_at), "%s",
	    store_pq.PQgetvalue(res, row, 5));
	a->attempts = (unsigned)strtoul(store_pq.PQgetvalue(res, row, 6),
	    NULL, 10);
	if (a->domain == NULL || a->kind == NULL || a->key == NULL ||
	    a->detail == NULL) {
		alert_clear(a);
		return dm_error_set(err, DM_E_NOMEM, "out of memory");
	}
	return 0;
}

int
store_alerts_candidates(struct store *s, const struct store_alert_scan *scan,
    int (*each)(void *ctx, const struct store_alert *a), void *ctx,
    struct dm_error *err)
{
	char v[3][16];
	const char *p[3];
	struct store_alert a;
	PGresult *res;
	int i, n, rc = 0;

	scan_params(scan, v, p);
	res = store_pq_params(s->conn, sql_candidates, 3, p, err);
	if (res == NULL)
		return -1;
	n = store_pq.PQntuples(res);
	for (i = 0; i < n && rc == 0; i++) {
		if (alert_fill(res, i, &a, err) != 0) {
			rc = -1;
			break;
		}
		rc = each(ctx, &a);
		alert_clear(&a);
	}
	store_pq.PQclear(res);
	return rc;
}

int
store_alerts_lock(struct store *s, int *got_r, struct dm_error *err)
{
	const char *p[1] = { ALERTS_LOCK_KEY };
	PGresult *res;

	res = store_pq_params(s->conn, "SELECT pg_try_advisory_lock($1)", 1,
	    p, err);
	if (res == NULL)
		return -1;
	*got_r = store_pq.PQgetvalue(res, 0, 0)[0] == 't';
	store_pq.PQclear(res);
	return 0;
}

int
store_alerts_unlock(struct store *s, struct dm_error *err)
{
	const char *p[1] = { ALERTS_LOCK_KEY };
	PGresult *res;

	res = store_pq_params(s->conn, "SELECT pg_advisory_unlock($1)", 1, p,
	    err);
	if (res == NULL)
		return -1;
	store_pq.PQclear(res);
	return 0;
}

int
store_alerts_counts(struct store *s, unsigned *sent_last_hour_r,
    unsigned *waiting_r, unsigned *due_r, struct dm_error *err)
{
	PGresult *res;

	res = store_pq_params(s->conn, sql_counts, 0, NULL, err);
	if (res == NULL)
		return -1;
	*sent_last_hour_r = (unsigned)strtoul(store_pq.PQgetvalue(res, 0, 0),
	    NULL, 10);
	*waiting_r = (unsigned)strtoul(store_pq.PQgetvalue(res, 0, 1), NULL,
	    10);
	*due_r = (unsigned)strtoul(store_pq.PQgetvalue(res, 0, 2), NULL, 10);
	store_pq.PQclear(res);
	return 0;
}

int
store_alerts_due(struct store *s, unsigned limit, struct store_alert **list_r,
    size_t *count_r, struct dm_error *err)
{
	char v[16];
	const char *p[1] = { v };
	struct store_alert *list = NULL;
	PGresult *res;
	int i, n;

	*list_r = NULL;
	*count_r = 0;
	snprintf(v, sizeof(v), "%u", limit);
	res = store_pq_params(s->conn, sql_due, 1, p, err);
	if (res == NULL)
		return -1;
	n = store_pq.PQntuples(res);
	if (n > 0 && (list = calloc((size_t)n, sizeof(*list))) == NULL) {
		store_pq.PQclear(res);
		return dm_error_set(err, DM_E_NOMEM, "out of memory");
	}
	for (i = 0; i < n; i++) {
		if (alert_fill(res, i, &list[i], err) != 0) {
			store_alerts_free(list, (size_t)i);
			store_pq.PQclear(res);
			return -1;
		}
	}
	store_pq.PQclear(res);
	*list_r = list;
	*count_r = (size_t)n;
	return 0;
}

void
store_alerts_free(struct store_alert *list, size_t count)
{
	size_t i;

	for (i = 0; i < count; i++)
		alert_clear(&list[i]);
	free(list);
}

int
store_alert_sent(struct store *s, int64_t id, unsigned tries,
    struct dm_error *err)
{
	char v[2][24];
	const char *p[2] = { v[0], v[1] };
	PGresult *res;

	snprintf(v[0], sizeof(v[0]), "%" PRId64, id);
	snprintf(v[1], sizeof(v[1]), "%u", tries);
	res = store_pq_params(s->conn, sql_sent, 2, p, err);
	if (res == NULL)
		return -1;
	store_pq.PQclear(res);
	return 0;
}

int
store_alert_failed(struct store *s, int64_t id, unsigned tries,
    const char *error, unsigned retry_s, int give_up, struct dm_error *err)
{
	char v[3][24];
	const char *p[5] = { v[0], v[1], error, v[2], give_up ? "t" : "f" };
	PGresult *res;

	snprintf(v[0], sizeof(v[0]), "%" PRId64, id);
	snprintf(v[1], sizeof(v[1]), "%u", tries);
	snprintf(v[2], sizeof(v[2]), "%u", retry_s);
	res = store_pq_params(s->conn, sql_failed, 5, p, err);
	if (res == NULL)
		return -1;
	store_pq.PQclear(res);
	return 0;
}
