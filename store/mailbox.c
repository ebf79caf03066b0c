/*
 * mailbox.c - the IMAP collector's state, kept with the reports: per
 * (account, mailbox) the UIDVALIDITY and the highest UID stored, and the
 * moves the stored messages still need (sql/0005_imap.sql).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "store/pq.h"
#include "store/store.h"
#include "store/store_private.h"

#define MOVES_MAX	(64U << 20)	/* bytes of one array literal */

int
store_mailbox_get(struct store *s, const char *account, const char *mailbox,
    struct store_mailbox *m, struct dm_error *err)
{
	const char *p[2] = { account, mailbox };
	PGresult *res;

	memset(m, 0, sizeof(*m));
	res = store_pq_params(s->conn, "SELECT uidvalidity, last_uid FROM "
	    "dmarcd.imap_mailboxes WHERE account = $1 AND mailbox = $2", 2, p,
	    err);
	if (res == NULL)
		return -1;
	if (store_pq.PQntuples(res) == 1) {
		m->uidvalidity = (uint32_t)strtoul(store_pq.PQgetvalue(res, 0,
		    0), NULL, 10);
		m->last_uid = (uint32_t)strtoul(store_pq.PQgetvalue(res, 0, 1),
		    NULL, 10);
		m->known = 1;
	}
	store_pq.PQclear(res);
	return 0;
}

/* "{1,2,3}" and "{a,NULL,b}" array literals of the moves. */
static int
move_arrays(const struct store_move *moves, size_t n, struct dm_buf *uids,
    struct dm_buf *folders)
{
	size_t i;
	const char *c;

	if (dm_buf_append(uids, "{", 1) != 0 ||
	    dm_buf_append(folders, "{", 1) != 0)
		return -1;
	for (i = 0; i < n; i++) {
		char num[16];
		int k = snprintf(num, sizeof(num), "%s%" PRIu32, i ? "," : "",
		    moves[i].uid);

		if (dm_buf_append(uids, num, (size_t)k) != 0 ||
		    (i && dm_buf_append(folders, ",", 1) != 0))
			return -1;
		if (moves[i].folder == NULL) {
			if (dm_buf_append(folders, "NULL", 4) != 0)
				return -1;
			continue;
		}
		if (dm_buf_append(folders, "\"", 1) != 0)
			return -1;
		for (c = moves[i].folder; *c != '\0'; c++)
			if (((*c == '"' || *c == '\\') &&
			    dm_buf_append(folders, "\\", 1) != 0) ||
			    dm_buf_append(folders, c, 1) != 0)
				return -1;
		if (dm_buf_append(folders, "\"", 1) != 0)
			return -1;
	}
	if (dm_buf_append(uids, "}", 1) != 0 ||
	    dm_buf_append(folders, "}", 1) != 0)
		return -1;
	return 0;
}

int
store_mailbox_checkpoint(struct store *s, const char *account,
    const char *mailbox, uint32_t uidvalidity, uint32_t last_uid,
    const struct store_move *moves, size_t n, struct dm_error *err)
{
	char v[16], u[16];
	const char *p[4] = { account, mailbox, v, u };
	struct dm_buf uids, folders;
	PGresult *res;
	int rc = -1;

	snprintf(v, sizeof(v), "%" PRIu32, uidvalidity);
	snprintf(u, sizeof(u), "%" PRIu32, last_uid);
	if (store_batch_open(s, err) != 0)
		return -1;
	/* GREATEST: a batch never moves the mark back (two collectors on
	 * one mailbox store the same messages; dedupe keeps them once). */
	res = store_pq_params(s->conn, "INSERT INTO dmarcd.imap_mailboxes "
	    "(account, mailbox, uidvalidity, last_uid) VALUES ($1, $2, $3, $4) "
	    "ON CONFLICT (account, mailbox) DO UPDATE SET "
	    "last_uid = CASE WHEN imap_mailboxes.uidvalidity = "
	    "excluded.uidvalidity THEN GREATEST(imap_mailboxes.last_uid, "
	    "excluded.last_uid) ELSE excluded.last_uid END, "
	    "uidvalidity = excluded.uidvalidity, updated_at = now()", 4, p, err);
	if (res == NULL)
		return -1;
	store_pq.PQclear(res);
	if (n == 0)
		return 0;
	dm_buf_init(&uids, MOVES_MAX);
	dm_buf_init(&folders, MOVES_MAX);
	if (move_arrays(moves, n, &uids, &folders) != 0) {
		dm_error_set(err, DM_E_NOMEM, "out of memory");
		goto out;
	}
	{
		const char *q[5] = { account, mailbox, v,
		    dm_buf_cstr(&uids), dm_buf_cstr(&folders) };

		res = store_pq_params(s->conn, "INSERT INTO "
		    "dmarcd.imap_pending_moves (account, mailbox, uidvalidity, "
		    "uid, folder) SELECT $1, $2, $3, m.uid, m.folder FROM "
		    "unnest($4::bigint[], $5::text[]) AS m(uid, folder) "
		    "ON CONFLICT (account, mailbox, uidvalidity, uid) DO UPDATE "
		    "SET folder = excluded.folder, stored_at = now()", 5, q,
		    err);
	}
	if (res == NULL)
		goto out;
	store_pq.PQclear(res);
	rc = 0;
out:
	dm_buf_free(&uids);
	dm_buf_free(&folders);
	return rc;
}

int
store_moves_pending(struct store *s, const char *account, const char *mailbox,
    uint32_t uidvalidity, int (*each)(void *ctx, const struct store_move *m),
    void *ctx, struct dm_error *err)
{
	char v[16];
	const char *p[3] = { account, mailbox, v };
	struct store_move m;
	PGresult *res;
	int i, n, rc = 0;

	snprintf(v, sizeof(v), "%" PRIu32, uidvalidity);
	res = store_pq_params(s->conn, "DELETE FROM dmarcd.imap_pending_moves "
	    "WHERE account = $1 AND mailbox = $2 AND uidvalidity <> $3", 3, p,
	    err);
	if (res == NULL)
		return -1;
	store_pq.PQclear(res);
	res = store_pq_params(s->conn, "SELECT uid, folder FROM "
	    "dmarcd.imap_pending_moves WHERE account = $1 AND mailbox = $2 "
	    "AND uidvalidity = $3 ORDER BY uid", 3, p, err);
	if (res == NULL)
		return -1;
	n = store_pq.PQntuples(res);
	for (i = 0; i < n && rc == 0; i++) {
		m.uid = (uint32_t)strtoul(store_pq.PQgetvalue(res, i, 0), NULL,
		    10);
		m.folder = store_pq.PQgetisnull(res, i, 1) ? NULL :
		    store_pq.PQgetvalue(res, i, 1);
		rc = each(ctx, &m);
	}
	store_pq.PQclear(res);
	return rc;
}

int
store_moves_done(struct store *s, const char *account, const char *mailbox,
    uint32_t uidvalidity, const uint32_t *uids, size_t n,
    struct dm_error *err)
{
	struct store_move *m;
	struct dm_buf a, f;
	char v[16];
	PGresult *res;
	size_t i;
	int rc = -1;

	if (n == 0)
		return 0;
	if (s->in_txn)
		return dm_error_set(err, DM_E_INTERNAL, "store_moves_done "
		    "inside a batch");
	m = calloc(n, sizeof(*m));
	if (m == NULL)
		return dm_error_set(err, DM_E_NOMEM, "out of memory");
	for (i = 0; i < n; i++)
		m[i].uid = uids[i];
	dm_buf_init(&a, MOVES_MAX);
	dm_buf_init(&f, MOVES_MAX);
	snprintf(v, sizeof(v), "%" PRIu32, uidvalidity);
	if (move_arrays(m, n, &a, &f) != 0) {
		dm_error_set(err, DM_E_NOMEM, "out of memory");
		goto out;
	}
	{
		const char *p[4] = { account, mailbox, v, dm_buf_cstr(&a) };

		res = store_pq_params(s->conn, "DELETE FROM "
		    "dmarcd.imap_pending_moves WHERE account = $1 AND "
		    "mailbox = $2 AND uidvalidity = $3 AND uid = ANY($4::bigint[])",
		    4, p, err);
	}
	if (res == NULL)
		goto out;
	store_pq.PQclear(res);
	rc = 0;
out:
	free(m);
	dm_buf_free(&a);
	dm_buf_free(&f);
	return rc;
}

int
store_mailbox_fetched(struct store *s, const char *account,
    const char *mailbox, struct dm_error *err)
{
	const char *p[2] = { account, mailbox };
	PGresult *res;

	res = store_pq_params(s->conn, "UPDATE dmarcd.imap_mailboxes SET "
	    "last_fetch_at = now() WHERE account = $1 AND mailbox = $2", 2, p,
	    err);
	if (res == NULL)
		return -1;
	store_pq.PQclear(res);
	return 0;
}
