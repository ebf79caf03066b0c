/*
 * query.c - what the commands read back: statistics, rejected inputs and
 * their raw bytes.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include "store/pq.h"
#include "store/store_private.h"

char *
store_stats_json(struct store *s, struct dm_error *err)
{
	PGresult *res;
	char *json;

	res = store_pq_params(s->conn,
	    "WITH r AS (SELECT domain, count(*) AS reports, "
	    " sum(record_count) AS records, sum(message_count) AS messages, "
	    " sum(duplicates) AS duplicates, "
	    " count(*) FILTER (WHERE revision > 1) AS revisions, "
	    " min(begin_time) AS first, max(end_time) AS last "
	    " FROM dmarcd.reports WHERE payload_sha256 IS NOT NULL "
	    " GROUP BY domain), "
	    "f AS (SELECT domain, count(*) AS failure_reports, "
	    " sum(duplicates) AS duplicates FROM dmarcd.failure_reports "
	    " GROUP BY domain), "
	    "d AS (SELECT coalesce(r.domain, f.domain) AS domain, "
	    " coalesce(r.reports, 0) AS reports, "
	    " coalesce(r.records, 0) AS records, "
	    " coalesce(r.messages, 0) AS messages, "
	    " coalesce(r.duplicates, 0) + coalesce(f.duplicates, 0) "
	    "  AS duplicates, "
	    " coalesce(r.revisions, 0) AS revisions, "
	    " coalesce(f.failure_reports, 0) AS failure_reports, "
	    " r.first, r.last "
	    " FROM r FULL JOIN f ON f.domain = r.domain) "
	    "SELECT json_build_object("
	    " 'reports', coalesce((SELECT sum(reports) FROM d), 0), "
	    " 'records', coalesce((SELECT sum(records) FROM d), 0), "
	    " 'messages', coalesce((SELECT sum(messages) FROM d), 0), "
	    " 'duplicates', coalesce((SELECT sum(duplicates) FROM d), 0), "
	    " 'revisions', coalesce((SELECT sum(revisions) FROM d), 0), "
	    " 'failure_reports', coalesce((SELECT sum(failure_reports) "
	    "  FROM d), 0), "
	    " 'rejected', (SELECT count(*) FROM dmarcd.rejected_inputs "
	    "  WHERE resolved_at IS NULL), "
	    " 'inputs', (SELECT count(*) FROM dmarcd.ingest_log), "
	    " 'domains', coalesce((SELECT json_agg(json_build_object("
	    "  'domain', domain, 'reports', reports, 'records', records, "
	    "  'messages', messages, 'duplicates', duplicates, "
	    "  'revisions', revisions, 'failure_reports', failure_reports, "
	    "  'first', to_char(first, 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
	    "  'last', to_char(last, 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')) "
	    "  ORDER BY domain) FROM d), '[]'::json))::text", 0, NULL, err);
	if (res == NULL)
		return NULL;
	json = strdup(store_pq.PQgetvalue(res, 0, 0));
	store_pq.PQclear(res);
	if (json == NULL)
		dm_error_set(err, DM_E_NOMEM, "out of memory");
	return json;
}

static void
copy_text(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src != NULL ? src : "");
}

static void
fill_rejected(PGresult *res, int row, struct store_rejected *r)
{
	const char *sha = store_pq.PQgetvalue(res, row, 1);

	memset(r, 0, sizeof(*r));
	r->id = strtoll(store_pq.PQgetvalue(res, row, 0), NULL, 10);
	copy_text(r->sha256_hex, sizeof(r->sha256_hex),
	    strncmp(sha, "\\x", 2) == 0 ? sha + 2 : sha);
	copy_text(r->location, sizeof(r->location),
	    store_pq.PQgetvalue(res, row, 2));
	copy_text(r->source, sizeof(r->source),
	    store_pq.PQgetvalue(res, row, 3));
	copy_text(r->error_code, sizeof(r->error_code),
	    store_pq.PQgetvalue(res, row, 4));
	copy_text(r->error, sizeof(r->error), store_pq.PQgetvalue(res, row, 5));
	copy_text(r->first_seen, sizeof(r->first_seen),
	    store_pq.PQgetvalue(res, row, 6));
	copy_text(r->last_seen, sizeof(r->last_seen),
	    store_pq.PQgetvalue(res, row, 7));
	r->attempts = strtoll(store_pq.PQgetvalue(res, row, 8), NULL, 10);
	r->resolved = store_pq.PQgetvalue(res, row, 9)[0] == 't';
	r->size = strtoull(store_pq.PQgetvalue(res, row, 10), NULL, 10);
}

#define REJECTED_COLUMNS \
	"SELECT j.id, j.raw_sha256, j.location, j.source, j.error_code, " \
	"j.error, to_char(j.first_seen, 'YYYY-MM-DD HH24:MI:SS\"Z\"'), " \
	"to_char(j.last_seen, 'YYYY-MM-DD HH24:MI:SS\"Z\"'), j.attempts, " \
	"j.resolved_at IS NOT NULL, coalesce(w.size, 0) " \
	"FROM dmarcd.rejected_inputs j LEFT JOIN dmarcd.raw_inputs w ON " \
	"w.domain = '' AND w.sha256 = j.raw_sha256 "

int
store_rejected_list(struct store *s, int all,
    int (*each)(void *ctx, const struct store_rejected *r), void *ctx,
    struct dm_error *err)
{
	PGresult *res;
	struct store_rejected r;
	int i, n, rc = 0;

	res = store_pq_params(s->conn, all ? REJECTED_COLUMNS "ORDER BY j.id" :
	    REJECTED_COLUMNS "WHERE j.resolved_at IS NULL ORDER BY j.id", 0,
	    NULL, err);
	if (res == NULL)
		return -1;
	n = store_pq.PQntuples(res);
	for (i = 0; i < n && rc == 0; i++) {
		fill_rejected(res, i, &r);
		rc = each(ctx, &r);
	}
	store_pq.PQclear(res);
	return rc;
}

int
store_rejected_get(struct store *s, int64_t id, struct store_rejected *r,
    struct dm_error *err)
{
	PGresult *res;
	char v[24];
	const char *p[1] = { v };

	snprintf(v, sizeof(v), "%" PRId64, id);
	res = store_pq_params(s->conn, REJECTED_COLUMNS "WHERE j.id = $1", 1,
	    p, err);
	if (res == NULL)
		return -1;
	if (store_pq.PQntuples(res) == 0) {
		store_pq.PQclear(res);
		return dm_error_set(err, DM_E_NOINPUT, "no rejected input "
		    "with id %" PRId64, id);
	}
	fill_rejected(res, 0, r);
	store_pq.PQclear(res);
	return 0;
}

int
store_rejected_resolve(struct store *s, int64_t id, struct dm_error *err)
{
	PGresult *res;
	char v[24];
	const char *p[1] = { v };

	snprintf(v, sizeof(v), "%" PRId64, id);
	res = store_pq_params(s->conn, "UPDATE dmarcd.rejected_inputs SET "
	    "resolved_at = now() WHERE id = $1", 1, p, err);
	if (res == NULL)
		return -1;
	store_pq.PQclear(res);
	return 0;
}

static int
write_all(int fd, const unsigned char *p, size_t n, struct dm_error *err)
{
	ssize_t w;

	while (n > 0) {
		w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return dm_error_set(err, DM_E_IO, "write: %s",
			    strerror(errno));
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int
unhex(const char *text, unsigned char **out, size_t *len)
{
	size_t n, i;
	unsigned v;

	if (strncmp(text, "\\x", 2) != 0)
		return -1;
	text += 2;
	n = strlen(text) / 2;
	*out = malloc(n > 0 ? n : 1);
	if (*out == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		if (sscanf(text + 2 * i, "%2x", &v) != 1) {
			free(*out);
			return -1;
		}
		(*out)[i] = (unsigned char)v;
	}
	*len = n;
	return 0;
}

int
store_raw_write(struct store *s, const char *domain,
    const unsigned char sha256[32], int fd, struct dm_error *err)
{
	char sha[67], seq[16];
	const char *p[3];
	PGresult *res;
	unsigned char *data, out[64 * 1024];
	size_t len;
	int gz, i, rc = -1, zr = Z_OK;
	z_stream z;

	sha[0] = '\\';
	sha[1] = 'x';
	for (i = 0; i < 32; i++)
		snprintf(sha + 2 + 2 * i, 3, "%02x", sha256[i]);
	p[0] = domain;
	p[1] = sha;
	res = store_pq_params(s->conn, "SELECT encoding FROM "
	    "dmarcd.raw_inputs WHERE domain = $1 AND sha256 = $2", 2, p, err);
	if (res == NULL)
		return -1;
	if (store_pq.PQntuples(res) == 0) {
		store_pq.PQclear(res);
		return dm_error_set(err, DM_E_NOINPUT, "the raw bytes of "
		    "input %s are not stored", sha + 2);
	}
	gz = strcmp(store_pq.PQgetvalue(res, 0, 0), "gzip") == 0;
	store_pq.PQclear(res);
	memset(&z, 0, sizeof(z));
	if (gz && inflateInit2(&z, 15 + 16) != Z_OK)
		return dm_error_set(err, DM_E_NOMEM, "zlib: cannot inflate");
	/* One chunk at a time: memory stays at a chunk's size. */
	for (i = 0;; i++) {
		snprintf(seq, sizeof(seq), "%d", i);
		p[2] = seq;
		res = store_pq_params(s->conn, "SELECT data FROM "
		    "dmarcd.raw_chunks WHERE domain = $1 AND sha256 = $2 AND "
		    "seq = $3", 3, p, err);
		if (res == NULL)
			goto out;
		if (store_pq.PQntuples(res) == 0) {
			store_pq.PQclear(res);
			break;
		}
		if (unhex(store_pq.PQgetvalue(res, 0, 0), &data, &len) != 0) {
			store_pq.PQclear(res);
			dm_error_set(err, DM_E_INTERNAL, "raw chunk %d of %s is "
			    "not bytea hex", i, sha + 2);
			goto out;
		}
		store_pq.PQclear(res);
		if (!gz) {
			rc = write_all(fd, data, len, err);
			free(data);
			if (rc != 0)
				goto out;
			rc = -1;
			continue;
		}
		z.next_in = data;
		z.avail_in = (uInt)len;
		while (z.avail_in > 0 && zr != Z_STREAM_END) {
			z.next_out = out;
			z.avail_out = sizeof(out);
			zr = inflate(&z, Z_NO_FLUSH);
			if (zr != Z_OK && zr != Z_STREAM_END) {
				free(data);
				dm_error_set(err, DM_E_INTERNAL, "raw bytes of "
				    "%s: stored gzip is corrupt", sha + 2);
				goto out;
			}
			if (write_all(fd, out, sizeof(out) - z.avail_out,
			    err) != 0) {
				free(data);
				goto out;
			}
		}
		free(data);
	}
	if (gz && zr != Z_STREAM_END) {
		dm_error_set(err, DM_E_INTERNAL, "raw bytes of %s: stored "
		    "gzip is truncated", sha + 2);
		goto out;
	}
	rc = 0;
out:
	if (gz)
		inflateEnd(&z);
	return rc;
}

int
store_query_lines(struct store *s, const char *sql, int nparams,
    const char *const *values,
    int (*each)(void *ctx, int ncols, char **values), void *ctx,
    struct dm_error *err)
{
	PGresult *res;
	char **row;
	int i, j, n, cols, rc = 0;

	res = store_pq_params(s->conn, sql, nparams, values, err);
	if (res == NULL)
		return -1;
	n = store_pq.PQntuples(res);
	cols = store_pq.PQnfields(res);
	row = calloc((size_t)cols + 1, sizeof(*row));
	if (row == NULL) {
		store_pq.PQclear(res);
		return dm_error_set(err, DM_E_NOMEM, "out of memory");
	}
	for (i = 0; i < n && rc == 0; i++) {
		for (j = 0; j < cols; j++)
			row[j] = store_pq.PQgetisnull(res, i, j) ? NULL :
			    store_pq.PQgetvalue(res, i, j);
		rc = each(ctx, cols, row);
	}
	free(row);
	store_pq.PQclear(res);
	return rc;
}
