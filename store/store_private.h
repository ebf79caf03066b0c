/*
 * store_private.h - the connection state the store's files share.
 */
#ifndef STORE_STORE_PRIVATE_H
#define STORE_STORE_PRIVATE_H

#include <stdio.h>

#include <libpq-fe.h>

#include "common/align.h"
#include "common/buf.h"
#include "store/store.h"

#define STORE_MAX_REVISIONS	32	/* compared at a report's end */
#define STORE_MAX_REVISIONS_TEXT "32"	/* the same, in SQL */
#define STORE_MAX_MONTHS	64	/* partitions known to exist */
#define STORE_ID_BLOCK		64	/* report ids taken at a time */
#define STORE_ROLLUP_DAYS	64	/* UTC days a report may span */

struct store_spool {		/* COPY lines kept for after the records */
	struct dm_buf mem;
	FILE *file;		/* past STORE_SPOOL_MEM bytes */
	uint64_t lines;
	const char *tmpdir;	/* where file is: the store's tmpdir */
};

struct store_mark {		/* a spool's end, to go back to */
	uint64_t bytes, lines;
};

struct store_marks {		/* the batch's deferred rows at a point */
	struct store_mark rec, dkim, spf, roll;
	size_t keys;
};

struct store_batch_key {	/* a deferred report, for its rollup */
	char *domain;
	char id[24];
	char begin[40], end[40];
	int superseded;		/* a later revision in the batch */
	int rolled;		/* its rollup rows are in b_roll */
};

struct store_known {		/* an earlier report with the same key */
	int64_t id;
	int revision;
	unsigned char sha[32];
};

struct store {
	PGconn *conn;
	PGconn *aux;			/* store_aux(): commits on its own */
	char *conninfo;
	unsigned batch_inputs, batch_ms;
	int in_txn;
	unsigned batch_count;
	double batch_start;

	/* The current input. */
	const struct store_input *input;
	double input_t0;
	struct store_tally *tally;
	struct dm_handler handler;
	struct dm_error cb_err;		/* a database error in a callback */
	int cb_failed;
	char **raw_domains;		/* raw bytes stored under these */
	size_t raw_domain_count;
	char **replay_keys;		/* reports to store as revisions */
	size_t replay_count;

	/* The current aggregate report. */
	int rep_state;			/* REP_* in ingest.c */
	char *domain;
	char rep_id[24];
	char begin_ts[40], end_ts[40];
	struct store_known known[STORE_MAX_REVISIONS];
	size_t known_count;
	struct dm_buf copy;		/* records, batched for PQputCopyData */
	struct store_spool dkim, spf;
	struct dm_buf line;		/* scratch */

	/* Rows of small reports, copied once per batch at commit. */
	struct store_spool b_rec, b_dkim, b_spf;
	struct store_spool b_roll;	/* their rollup rows (not merged) */
	int rep_rolled;			/* the report's are in b_roll */
	struct store_batch_key *b_keys;
	size_t b_key_count, b_key_alloc;
	/* The domains whose reports the batch stores: NOTIFY dmarcd_data
	 * at commit (the API drops its kept answers, api/answers.c). */
	char **changed;
	size_t changed_count, changed_alloc;
	struct store_marks input_marks, rep_marks;
	/* Rows of a report whose metadata comes after them. */
	struct store_spool late_rec, late_dkim, late_spf;

	int64_t reporter;		/* of a deferred report */
	int64_t ids[STORE_ID_BLOCK];	/* report ids taken, not yet used */
	size_t ids_next, ids_count;
	char *sql_begin, *sql_defer;	/* statements built once */
	int defer_prepared;
	int input_savepoint;		/* the input has one */
	struct store_rollup *rollup;	/* of the report being copied */
	int rollup_sql;			/* its rows came late: rollup_add() */
	int no_rollup;			/* DMARCD_BENCH_NO_ROLLUP=1 */
	/* ingest_log rows, copied at commit */
	struct store_spool b_log;

	char tmpdir[4096];		/* store_set_tmpdir() (tmp.c) */

	int64_t months[STORE_MAX_MONTHS];
	size_t month_count;
	struct store_reporter *reporters;	/* small cache */
};

/*
 * tmp.c: an unlinked temporary file in dir (NULL with err), and the
 * error for a failed temporary file operation (errnum): DM_E_TEMP when
 * dir is full, else DM_E_IO; always -1.
 */
FILE *store_tmpfile(const char *dir, struct dm_error *err);
int store_tmp_fail(const char *dir, int errnum, const char *what,
    struct dm_error *err);

/* rollup.c: a big report's daily rollup, added up as it is parsed. */
struct store_rollup;
/* store_list_due - one text column of sql ($1 since, $2 limit; NULLs
 * skipped) to each(), outside a batch (enrich.c). */
int store_list_due(struct store *s, const char *sql, const char *since,
    size_t limit, int (*each)(void *ctx, const char *value), void *ctx,
    struct dm_error *err);
struct store_rollup *store_rollup_new(const char *tmpdir);
void store_rollup_free(struct store_rollup *r);
void store_rollup_begin(struct store_rollup *r, int64_t begin, int64_t end);
void store_rollup_record(struct store_rollup *r, const struct dm_record *rec,
    const struct dm_alignment *auth);
void store_rollup_days(struct store_rollup *r, int64_t begin, int64_t end);
int store_rollup_lines(struct store_rollup *r, const char *domain,
    const struct dm_record *rec, const struct dm_alignment *auth,
    struct dm_buf *out);
int store_rollup_flush(struct store *s, struct store_rollup *r,
    const char *domain, struct dm_error *err);

PGconn *store_aux(struct store *s, struct dm_error *err);
/* store_batch_open - begin the batch's transaction unless it is open. */
int store_batch_open(struct store *s, struct dm_error *err);

int store_ingest_init(struct store *s, struct dm_error *err);
void store_ingest_free(struct store *s);

/* COPY ... FROM STDIN: start it, send data, end it (with why, abort
 * it). -1 with err. */
int store_copy_start(struct store *s, const char *sql, struct dm_error *err);
int store_copy_put(struct store *s, const char *data, size_t len,
    struct dm_error *err);
int store_copy_end(struct store *s, const char *why, struct dm_error *err);
/* store_copy_escape - append text in COPY text format (\N for NULL). */
int store_copy_escape(struct dm_buf *b, const char *s);

#endif
