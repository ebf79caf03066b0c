/*
 * store.h - report events into PostgreSQL, exactly once.
 *
 * The store knows nothing of XML, mail or IMAP: it takes the parser's
 * events (common/report.h) for one input at a time and makes them durable.
 *
 *	store_connect(&s, conninfo, &err);
 *	store_input_begin(s, &input, &err);	   one file or mail message
 *	unpack_*(..., store_handler(s), ...);	   the parser's events
 *	store_input_end(s, &tally, &err);	   what became of it
 *	...					   more inputs
 *	store_commit(s, &err);			   makes the batch durable
 *
 * Inputs are grouped into transactions (a batch); each report's rows, its
 * dedupe decision and its rollup share the transaction, so a kill -9 at
 * any moment leaves every report whole or absent. Records, DKIM and SPF
 * results stream in with COPY. A report whose key (org_name, report_id,
 * policy domain, begin, end) is already stored is only parsed, not
 * copied; at its end the payload SHA-256 decides: the same payload is a
 * duplicate (counted), another payload a revision, which needs the input
 * parsed once more (store_input_end says so: tally.replay) to store it.
 *
 * The raw bytes of every input that gave a report or a rejection are kept
 * (compressed) and read through input->raw.
 *
 * libpq is loaded on first use (common/dl.h).
 *
 * DIAGNOSTICS: -1 with err: DM_E_TEMP when PostgreSQL is unreachable,
 * refuses the login, or the connection broke (the batch was rolled back:
 * process its inputs again), and when the schema needs `dmarcd migrate`
 * (so that an MTA keeps the mail queued meanwhile); DM_E_USAGE for a
 * conninfo libpq cannot read; DM_E_UNAVAILABLE when libpq cannot be loaded,
 * DM_E_INTERNAL for an unexpected database error (its message is kept).
 */
#ifndef STORE_STORE_H
#define STORE_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "common/error.h"
#include "common/report.h"

/* The migrations built into the binary (sql/NNNN_name.sql). */
struct store_migration {
	int version;
	const char *name;
	const char *sql;
};
extern const struct store_migration store_migrations[];
extern const size_t store_migration_count;

struct store;

/* The raw bytes of the input being stored, readable again at any time. */
struct store_raw {
	ssize_t (*read)(void *ctx, uint64_t pos, void *buf, size_t len,
	    struct dm_error *err);
	void *ctx;
	uint64_t size;
	unsigned char sha256[32];
	int compressed;		/* gzip or zip already: kept as it is */
};

struct store_input {
	const char *source;	/* file name, "-", "path#3" */
	const char *message_id;	/* of a mail, or NULL */
	struct store_raw raw;
};

/* What became of one input. */
struct store_tally {
	unsigned stored;	/* aggregate reports stored new */
	unsigned revisions;	/* stored as a revision of an earlier one */
	unsigned duplicates;	/* aggregate or failure reports seen before */
	unsigned failures;	/* failure reports stored */
	unsigned rejected;	/* reports or parts refused (raw kept) */
	uint64_t records;	/* of the reports stored */
	uint64_t messages;
	int replay;		/* parse the input again (a revision) */
	char first_error[256];	/* of the first rejection */
};

int store_connect(struct store **store_r, const char *conninfo,
    struct dm_error *err);
void store_free(struct store *store);

/* store_migrate - apply what is pending, under an advisory lock. */
int store_migrate(struct store *store, FILE *out, struct dm_error *err);
/* store_migrate_status - one line per migration: applied or pending. */
int store_migrate_status(struct store *store, FILE *out, int *pending_r,
    struct dm_error *err);
/* store_check_schema - DM_E_USAGE if migrations are pending. */
int store_check_schema(struct store *store, struct dm_error *err);
/*
 * store_role_writes - *tables_r: how many of dmarcd's tables the role
 * connected may change (INSERT, UPDATE, DELETE or TRUNCATE); the API's
 * should be 0 (docs/security.md).
 */
int store_role_writes(struct store *store, long *tables_r,
    struct dm_error *err);

/*
 * The sender map built into the binary: sql/platforms.tsv and
 * sql/sender_rules.tsv as they were at build time (sql/senders.c, made by
 * sql/embed_senders.sh). store/senders.c reads and checks them.
 */
extern const char store_senders_platforms_tsv[];
extern const char store_senders_rules_tsv[];

#define STORE_SENDERS_MAX_PLATFORMS	512
#define STORE_SENDERS_MAX_RULES		8192

struct store_sender_platform {
	const char *name, *kind, *spf_fix, *dkim_fix, *url;
};

struct store_sender_rule {
	const char *kind;	/* ptr, dkim, spf */
	const char *suffix;	/* lower-case domain name */
	const char *platform;
};

struct store_senders {
	struct store_sender_platform *platforms;
	size_t platform_count;
	struct store_sender_rule *rules;
	size_t rule_count;
	char *platforms_text, *rules_text;	/* the fields point here */
};

/*
 * store_senders_parse - read and check the two files' texts (the names
 * are for messages); DM_E_DATA naming the file and line of the first
 * fault. store_senders_builtin - the same for the built-in texts.
 */
int store_senders_parse(struct store_senders **map_r,
    const char *platforms_tsv, const char *platforms_file,
    const char *rules_tsv, const char *rules_file, struct dm_error *err);
int store_senders_builtin(struct store_senders **map_r,
    struct dm_error *err);
void store_senders_free(struct store_senders **map);
/* store_senders_suffix_ok - 1 if s is a valid rule suffix. */
int store_senders_suffix_ok(const char *s);

/* What store_senders_sync did. */
struct store_senders_tally {
	unsigned platforms, rules;	/* built in */
	unsigned platforms_changed;	/* inserted or updated */
	unsigned rules_added, rules_removed;
	unsigned shadowed;		/* built-in rules a local one holds */
	unsigned local_platforms, local_rules;	/* kept as they were */
};

/*
 * store_senders_sync - load the built-in map in one transaction: upsert
 * its platforms, replace dmarcd's own rules with it, keep the rows a user
 * added (source 'local'); when rules changed, dmarcd.refresh_platforms()
 * recomputes the platforms stored with names. store_migrate calls it
 * after the migrations.
 */
int store_senders_sync(struct store *store, struct store_senders_tally *t,
    struct dm_error *err);

/*
 * store_set_tmpdir - where a big report's spooled rows and spilled rollup
 * go ([ingest] tmpdir); NULL or "": $TMPDIR, else /tmp (the default).
 * A full directory fails the input with DM_E_TEMP (store/tmp.c).
 */
void store_set_tmpdir(struct store *store, const char *dir);

/* Batches: inputs per transaction and how long one may stay open. */
void store_set_batch(struct store *store, unsigned inputs, unsigned ms);
/* store_batch_due - whether the open batch should be committed now. */
int store_batch_due(const struct store *store);

int store_input_begin(struct store *store, const struct store_input *input,
    struct store_tally *tally, struct dm_error *err);
/* The handler for the parser's events of the current input. */
const struct dm_handler *store_handler(struct store *store);
/*
 * store_input_end - finish the input: parse_err is the parser's error
 * when it could not read the input to its end (a data error makes the
 * input one rejection; others end the batch). The tally given to
 * store_input_begin says what became of the input; with tally->replay
 * set, call store_input_begin again with the same input and parse it once
 * more (a revision is stored on that pass).
 */
int store_input_end(struct store *store, const struct dm_error *parse_err,
    struct dm_error *err);
/* store_commit - commit the open batch (if any). */
int store_commit(struct store *store, struct dm_error *err);
/* store_rollback - abandon the open batch. */
void store_rollback(struct store *store);

/*
 * store_compact - merge the daily rollup rows appended to (domain, day)
 * pairs first marked age_s seconds ago or more (sql/0014_rollup_append.sql),
 * in transactions of their own; with deadline_ms > 0 stop after about that
 * long (more is set: the rest waits). Outside a batch only.
 */
#define STORE_COMPACT_AGE	3600	/* what ingest, fetch and run wait */
struct store_compact_tally {
	uint64_t pairs;		/* (domain, day) pairs looked at */
	uint64_t deleted, inserted;	/* rollup rows */
	int more;		/* stopped at the deadline */
};
int store_compact(struct store *store, unsigned age_s, unsigned deadline_ms,
    struct store_compact_tally *t, struct dm_error *err);

/* Statistics for dmarcd stats, as a JSON text (malloc'd). */
char *store_stats_json(struct store *store, struct dm_error *err);

/* Rejected inputs. */
struct store_rejected {
	int64_t id;
	char sha256_hex[65];
	char location[256];
	char source[512];
	char error_code[32];
	char error[1024];
	char first_seen[40], last_seen[40];
	int64_t attempts;
	int resolved;
	uint64_t size;
};
/* store_rejected_list - each unresolved one (all with all=1), oldest first. */
int store_rejected_list(struct store *store, int all,
    int (*each)(void *ctx, const struct store_rejected *r), void *ctx,
    struct dm_error *err);
int store_rejected_get(struct store *store, int64_t id,
    struct store_rejected *r, struct dm_error *err);
/* store_raw_write - the raw bytes of input sha256 into fd, decompressed. */
int store_raw_write(struct store *store, const char *domain,
    const unsigned char sha256[32], int fd, struct dm_error *err);
/* store_rejected_resolve - mark it stored by a retry. */
int store_rejected_resolve(struct store *store, int64_t id,
    struct dm_error *err);

/*
 * IMAP mailboxes (dmarcd fetch): what was stored from each, kept in the
 * same transaction as its reports, and the moves the stored messages
 * still need.
 */
struct store_mailbox {
	uint32_t uidvalidity;
	uint32_t last_uid;	/* highest UID stored; 0: none */
	int known;		/* 0: never fetched */
};
int store_mailbox_get(struct store *store, const char *account,
    const char *mailbox, struct store_mailbox *m, struct dm_error *err);

struct store_move {
	uint32_t uid;
	const char *folder;	/* NULL: delete the message */
};
/*
 * store_mailbox_checkpoint - in the open batch (one is begun if none is):
 * the mailbox's UIDVALIDITY and highest stored UID, and the moves of the
 * messages stored since the last checkpoint. Commit with store_commit().
 */
int store_mailbox_checkpoint(struct store *store, const char *account,
    const char *mailbox, uint32_t uidvalidity, uint32_t last_uid,
    const struct store_move *moves, size_t n, struct dm_error *err);
/*
 * store_moves_pending - the moves of the mailbox recorded for
 * uidvalidity, in UID order; each() gets them one at a time (folder NULL:
 * delete). Moves recorded under another UIDVALIDITY are dropped: those
 * UIDs name nothing any more.
 */
int store_moves_pending(struct store *store, const char *account,
    const char *mailbox, uint32_t uidvalidity,
    int (*each)(void *ctx, const struct store_move *m), void *ctx,
    struct dm_error *err);
/*
 * store_mailbox_fetched - the mailbox was read to its end just now
 * (imap_mailboxes.last_fetch_at, for /metrics). Outside a batch.
 */
int store_mailbox_fetched(struct store *store, const char *account,
    const char *mailbox, struct dm_error *err);
/* store_moves_done - forget moves made (outside a batch; commits). */
int store_moves_done(struct store *store, const char *account,
    const char *mailbox, uint32_t uidvalidity, const uint32_t *uids,
    size_t n, struct dm_error *err);

/*
 * Source identity (dmarcd resolve, collector/rdns.c; enrich.c): the
 * source addresses of dmarcd.rollup_daily (seen on day >= since, a
 * YYYY-MM-DD or NULL for all) that dmarcd.ip_names lacks or holds
 * expired, never-resolved ones first, then the longest expired, at most
 * limit; the DKIM and SPF domains of the rollup (not '') that
 * dmarcd.domain_orgs lacks, at most limit. Each one goes to each();
 * a non-zero return stops the listing and is returned. Outside a batch.
 */
int store_ips_due(struct store *store, const char *since, size_t limit,
    int (*each)(void *ctx, const char *ip), void *ctx, struct dm_error *err);
int store_domains_due(struct store *store, const char *since, size_t limit,
    int (*each)(void *ctx, const char *domain), void *ctx,
    struct dm_error *err);

/* One dmarcd.ip_names row. */
struct store_ip_name {
	const char *ip;
	const char *ptr;		/* the confirmed name, or "" */
	const char *const *names;	/* every PTR name */
	size_t name_count;
	int confirmed;
	const char *org;		/* of ptr, or "" */
	const char *status;		/* ok, unconfirmed, nxdomain, ... */
	int temporary;			/* timeout, servfail, refused */
	unsigned ttl_s;			/* expires_at = now() + ttl_s */
};
/*
 * store_ip_names_save - upsert the rows in one transaction. A temporary
 * failure keeps what an earlier row knew (ptr, names, confirmed, org) and
 * sets only status, resolved_at and expires_at.
 */
int store_ip_names_save(struct store *store, const struct store_ip_name *rows,
    size_t count, struct dm_error *err);
/* store_domain_orgs_save - upsert (domain, org) rows in one transaction. */
int store_domain_orgs_save(struct store *store, const char *const *domains,
    const char *const *orgs, size_t count, struct dm_error *err);

/*
 * The DMARCbis tree walk (treewalk.c, sql/0012_treewalk.sql):
 * store_treewalk_due lists the domains of the reports that say
 * discovery_method=treewalk (ended on or after since, or all; header_from
 * and DKIM and SPF domains, lower-cased, trailing dot off) that
 * dmarcd.treewalk_orgs lacks or holds expired, at most limit, to each().
 */
int store_treewalk_due(struct store *store, const char *since, size_t limit,
    int (*each)(void *ctx, const char *domain), void *ctx,
    struct dm_error *err);

/* One dmarcd.treewalk_orgs row. */
struct store_treewalk_org {
	const char *domain;		/* as store_treewalk_due gave it */
	const char *org;		/* the walk's, or "" */
	const char *psl_org;		/* the PSL's, or "" */
	const char *status;		/* ok, invalid, timeout, ... */
	int temporary;			/* a DNS failure: org kept */
	unsigned ttl_s;			/* expires_at = now() + ttl_s */
};
/* store_treewalk_save - upsert the rows in one transaction. */
int store_treewalk_save(struct store *store,
    const struct store_treewalk_org *rows, size_t count,
    struct dm_error *err);

struct store_realign_totals {
	uint64_t reports;	/* treewalk reports realigned */
	uint64_t changed;	/* of which some record changed */
	uint64_t records;	/* records whose verdict changed */
	uint64_t waiting;	/* left: a domain has no walk answer yet */
};
/*
 * store_treewalk_realign - align again, with the walk's organizational
 * domains, each treewalk report (not replaced by a revision) that has a
 * domain whose walk found another org than the PSL and was not realigned
 * yet, or whose org changed since; a report per transaction, its rollup
 * redone when a record's verdict changed.
 */
int store_treewalk_realign(struct store *store,
    struct store_realign_totals *totals, struct dm_error *err);

/*
 * Alerts (dmarcd alerts, sql/0011_alerts.sql): raised once per (domain,
 * kind, key), then delivered oldest first under a lock that one process
 * holds at a time.
 */
struct store_alert_scan {
	unsigned min_messages;	/* an unauthorised sender's threshold */
	unsigned share_drop;	/* percentage points */
	unsigned window_days;
};
struct store_alert {
	int64_t id;
	char *domain, *kind, *key;
	char *detail;		/* a JSON object, as text */
	char raised_at[32];	/* 2026-01-31T12:00:00Z */
	unsigned attempts;	/* requests made so far */
};
/* store_alerts_raise - insert what dmarcd.alert_scan() gives now that is
 * not raised yet; *raised_r: how many. */
int store_alerts_raise(struct store *store,
    const struct store_alert_scan *scan, unsigned *raised_r,
    struct dm_error *err);
/* store_alerts_candidates - what store_alerts_raise would insert (id 0),
 * one at a time to each(); a non-zero return stops. */
int store_alerts_candidates(struct store *store,
    const struct store_alert_scan *scan,
    int (*each)(void *ctx, const struct store_alert *a), void *ctx,
    struct dm_error *err);
/* store_alerts_lock - try the delivery lock (a session advisory lock):
 * *got_r 0 when another session holds it. */
int store_alerts_lock(struct store *store, int *got_r, struct dm_error *err);
int store_alerts_unlock(struct store *store, struct dm_error *err);
/* store_alerts_counts - sent in the last hour; waiting (not sent, not
 * given up), and of those how many are due now (not held back). */
int store_alerts_counts(struct store *store, unsigned *sent_last_hour_r,
    unsigned *waiting_r, unsigned *due_r, struct dm_error *err);
/* store_alerts_due - up to limit alerts due now, oldest first (malloc'd:
 * store_alerts_free). */
int store_alerts_due(struct store *store, unsigned limit,
    struct store_alert **list_r, size_t *count_r, struct dm_error *err);
void store_alerts_free(struct store_alert *list, size_t count);
/* store_alert_sent - delivered after tries requests. */
int store_alert_sent(struct store *store, int64_t id, unsigned tries,
    struct dm_error *err);
/* store_alert_failed - tries requests failed: last_error, held back for
 * retry_s seconds, given up if give_up. */
int store_alert_failed(struct store *store, int64_t id, unsigned tries,
    const char *error, unsigned retry_s, int give_up,
    struct dm_error *err);

/* store_exec_text - run a read-only query, the rows as text lines. */
int store_query_lines(struct store *store, const char *sql,
    int nparams, const char *const *params,
    int (*each)(void *ctx, int ncols, char **values), void *ctx,
    struct dm_error *err);

#endif
