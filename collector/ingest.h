/*
 * ingest.h - storing inputs one at a time, shared by the commands that
 * store: ingest and rejected retry (cmd_store.c), fetch and run
 * (cmd_fetch.c).
 *
 * An ingest_run holds the store, the options of the parser and the lines
 * of the open batch, which are printed once the batch is committed (a
 * line is true only then). ingest_item() stores one input and commits the
 * batch when it is due; ingest_commit() commits what is open.
 *
 * The hooks let a caller keep its own state in the batch's transaction:
 * item_done() after each input stored (before a commit that input may
 * cause), before_commit() just before COMMIT (still inside the
 * transaction: its statements commit with the batch), after_commit()
 * once the batch is committed (ok = 1) or rolled back (ok = 0).
 */
#ifndef COLLECTOR_INGEST_H
#define COLLECTOR_INGEST_H

#include <stdint.h>

#include "collector/inputs.h"
#include "common/config.h"
#include "common/error.h"
#include "parser/unpack.h"
#include "store/store.h"

struct pending_line {
	char *text;
	int status;
};

struct ingest_hooks {
	void *ctx;
	void (*item_done)(void *ctx, const struct store_tally *t);
	int (*before_commit)(void *ctx, struct dm_error *err);
	void (*after_commit)(void *ctx, int ok);
};

struct ingest_run {
	const char *cmd;		/* "ingest": for messages */
	struct store *store;
	struct unpack_options uopt;
	int quiet, progress, status;
	struct pending_line *lines;	/* printed once committed */
	size_t nlines, alloc;
	/* totals, of committed inputs */
	uint64_t inputs, stored, duplicates, revisions, failures, rejected;
	uint64_t records, messages;
	/* of the open batch */
	uint64_t b_inputs, b_stored, b_duplicates, b_revisions, b_failures;
	uint64_t b_rejected, b_records, b_messages;
	double t0, last_progress;
	int progress_shown;
	struct dm_error fatal;
	int stopped;
	/* rejected retry: the outcome of the last input */
	struct store_tally last;
	struct ingest_hooks hooks;
};

/* What an ingest did, for its last line; a job's, sent to the parent. */
struct ingest_sums {
	uint64_t inputs, stored, duplicates, revisions, failures, rejected;
	uint64_t records, messages;
	int status;
};

double ingest_now(void);
void ingest_run_init(struct ingest_run *run, const struct dm_config *cfg);
/* ingest_item - store one input (source: its name in the database, or
 * NULL for item->name); -1 when the run stopped (run->fatal says why). */
int ingest_item(struct ingest_run *run, const struct inputs_item *item,
    const char *source);
int ingest_commit(struct ingest_run *run);
void ingest_progress_clear(struct ingest_run *run);
void ingest_sums_of(const struct ingest_run *run, struct ingest_sums *u);
void ingest_print_totals(const char *cmd, const struct ingest_sums *u,
    int quiet, double t);

#endif
