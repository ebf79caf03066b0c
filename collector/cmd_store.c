/*
 * cmd_store.c - the commands that talk to PostgreSQL:
 *
 *	dmarcd migrate [--status]
 *	dmarcd ingest [--recursive] PATH... | -
 *	dmarcd stats [--format text|json]
 *	dmarcd rejected list|show ID|retry [ID]
 *	dmarcd summary [--days N]
 *
 * Each takes --config FILE and --db CONNINFO (which beats DMARCD_DB, which
 * beats the configuration file).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <nettle/sha2.h>

#include "collector/commands.h"
#include "collector/ingest.h"
#include "collector/inputs.h"
#include "common/config.h"
#include "parser/unpack.h"
#include "store/store.h"


/* The options every database command shares; 0 or an exit status. */
int
cmd_db_option(int c, const char *arg, struct cmd_db_opts *o)
{
	if (c == 'C')
		o->config = arg;
	else if (c == 'D')
		o->db = arg;
	else
		return -1;
	return 0;
}

int
cmd_exit_for(const struct dm_error *err)
{
	int code = dm_error_exit_code(err->code);

	return code != 0 ? code : EX_SOFTWARE;
}

int
cmd_load_config(const char *cmd, const struct cmd_db_opts *o,
    struct dm_config *cfg)
{
	struct dm_error err;
	const char *env = getenv(DM_CONFIG_ENV_PATH);
	int no_file;

	dm_error_clear(&err);
	dm_config_init(cfg);
	no_file = o->db_is_enough && o->db != NULL && o->config == NULL &&
	    (env == NULL || env[0] == '\0');
	if (!no_file && dm_config_load(cfg, o->config, &err) != 0) {
		fprintf(stderr, "dmarcd %s: %s\n", cmd, err.msg);
		dm_config_free(cfg);
		return cmd_exit_for(&err);
	}
	return 0;
}

int
cmd_open_store(const char *cmd, const struct cmd_db_opts *o, struct dm_config *cfg,
    struct store **s)
{
	struct dm_error err;
	int rc;

	if ((rc = cmd_load_config(cmd, o, cfg)) != 0)
		return rc;
	dm_error_clear(&err);
	if (o->db != NULL && dm_config_set_db(cfg, o->db, &err) != 0) {
		fprintf(stderr, "dmarcd %s: %s\n", cmd, err.msg);
		dm_config_free(cfg);
		return cmd_exit_for(&err);
	}
	if (store_connect(s, cfg->conninfo, &err) != 0) {
		fprintf(stderr, "dmarcd %s: %s\n", cmd, err.msg);
		dm_config_free(cfg);
		return cmd_exit_for(&err);
	}
	return 0;
}

/*
 * close_store - done with the database: 0, or with err the message on
 * stderr and its exit status.
 */
int
cmd_close_store(const char *cmd, struct store *s, struct dm_config *cfg,
    const struct dm_error *err)
{
	store_free(s);
	dm_config_free(cfg);
	if (err == NULL)
		return 0;
	fprintf(stderr, "dmarcd %s: %s\n", cmd, err->msg);
	return cmd_exit_for(err);
}

int
cmd_compact(const char *cmd, struct store *s, unsigned age_s,
    unsigned deadline_ms)
{
	struct dm_error err;

	dm_error_clear(&err);
	if (store_compact(s, age_s, deadline_ms, NULL, &err) == 0)
		return 0;
	fprintf(stderr, "dmarcd %s: compacting the daily rollup: %s (what "
	    "was stored is stored and counted; it is compacted next time)\n",
	    cmd, err.msg);
	return cmd_exit_for(&err);
}

/* ---- migrate ---- */

const char cmd_migrate_usage[] =
    "usage: dmarcd migrate [--status] [--db CONNINFO] [--config FILE]\n"
    "\n"
    "Apply the schema migrations built into dmarcd (each in its own\n"
    "transaction, under an advisory lock), or list them with --status\n"
    "(exit 1 when some are pending). With --db and neither --config nor\n"
    "$DMARCD_CONFIG no configuration file is read: the database owner\n"
    "(user postgres, say) need not be able to read /etc/dmarcd.\n";

int
cmd_migrate(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "status", no_argument, NULL, 's' },
		{ "db", required_argument, NULL, 'D' },
		{ "config", required_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct cmd_db_opts o = { NULL, NULL, 1 };
	struct dm_config cfg;
	struct store *s;
	struct dm_error err;
	int c, status_only = 0, rc, pending = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (c == 's')
			status_only = 1;
		else if (c == 'h') {
			fputs(cmd_migrate_usage, stdout);
			return 0;
		} else if (cmd_db_option(c, optarg, &o) != 0) {
			fputs(cmd_migrate_usage, stderr);
			return EX_USAGE;
		}
	}
	if (optind != argc) {
		fputs(cmd_migrate_usage, stderr);
		return EX_USAGE;
	}
	if ((rc = cmd_open_store("migrate", &o, &cfg, &s)) != 0)
		return rc;
	dm_error_clear(&err);
	if (status_only)
		rc = store_migrate_status(s, stdout, &pending, &err);
	else
		rc = store_migrate(s, stdout, &err);
	if (rc != 0) {
		fprintf(stderr, "dmarcd migrate: %s\n", err.msg);
		rc = cmd_exit_for(&err);
	} else if (status_only && pending > 0)
		rc = 1;
	store_free(s);
	dm_config_free(&cfg);
	return rc;
}

/* ---- ingest ---- */

#define INGEST_MAX_JOBS	64

double
ingest_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void
ingest_progress_clear(struct ingest_run *run)
{
	if (run->progress_shown) {
		fputs("\r\033[K", stderr);
		run->progress_shown = 0;
	}
}

static void
progress(struct ingest_run *run, int force)
{
	double t = ingest_now(), rate;

	if (!run->progress || (!force && t - run->last_progress < 0.2))
		return;
	run->last_progress = t;
	rate = t > run->t0 ? (double)(run->inputs + run->b_inputs) /
	    (t - run->t0) : 0;
	fprintf(stderr, "\r\033[K[%6.1f s] %" PRIu64 " inputs: %" PRIu64
	    " stored, %" PRIu64 " duplicate, %" PRIu64 " rejected; %" PRIu64
	    " records (%.0f inputs/s)", t - run->t0, run->inputs +
	    run->b_inputs, run->stored + run->b_stored + run->revisions +
	    run->b_revisions + run->failures + run->b_failures,
	    run->duplicates + run->b_duplicates, run->rejected +
	    run->b_rejected, run->records + run->b_records, rate);
	run->progress_shown = 1;
}

static int
queue_line(struct ingest_run *run, char *text, int status)
{
	struct pending_line *l;

	if (run->nlines == run->alloc) {
		size_t n = run->alloc ? run->alloc * 2 : 64;

		l = realloc(run->lines, n * sizeof(*l));
		if (l == NULL) {
			free(text);
			return -1;
		}
		run->lines = l;
		run->alloc = n;
	}
	run->lines[run->nlines].text = text;
	run->lines[run->nlines].status = status;
	run->nlines++;
	return 0;
}

/* The batch is committed: its lines are true now. */
static void
flush_lines(struct ingest_run *run, int committed)
{
	size_t i;

	ingest_progress_clear(run);
	for (i = 0; i < run->nlines; i++) {
		if (committed && !run->quiet)
			printf("%s\n", run->lines[i].text);
		if (committed)
			run->status = cmd_worse(run->status,
			    run->lines[i].status);
		free(run->lines[i].text);
	}
	run->nlines = 0;
	if (committed) {
		run->inputs += run->b_inputs;
		run->stored += run->b_stored;
		run->duplicates += run->b_duplicates;
		run->revisions += run->b_revisions;
		run->failures += run->b_failures;
		run->rejected += run->b_rejected;
		run->records += run->b_records;
		run->messages += run->b_messages;
	} else if (run->b_inputs > 0)
		fprintf(stderr, "dmarcd %s: the last %" PRIu64 " input(s) "
		    "were not stored (rolled back); run again\n", run->cmd,
		    run->b_inputs);
	run->b_inputs = run->b_stored = run->b_duplicates = 0;
	run->b_revisions = run->b_failures = run->b_rejected = 0;
	run->b_records = run->b_messages = 0;
	fflush(stdout);
}

int
ingest_commit(struct ingest_run *run)
{
	struct dm_error err;

	dm_error_clear(&err);
	if ((run->hooks.before_commit != NULL &&
	    run->hooks.before_commit(run->hooks.ctx, &err) != 0) ||
	    store_commit(run->store, &err) != 0) {
		store_rollback(run->store);
		run->fatal = err;
		run->stopped = 1;
		flush_lines(run, 0);
		if (run->hooks.after_commit != NULL)
			run->hooks.after_commit(run->hooks.ctx, 0);
		return -1;
	}
	flush_lines(run, 1);
	if (run->hooks.after_commit != NULL)
		run->hooks.after_commit(run->hooks.ctx, 1);
	return 0;
}

struct raw_ctx {
	const struct inputs_item *item;
};

static ssize_t
raw_read(void *ctx, uint64_t pos, void *buf, size_t len, struct dm_error *err)
{
	struct raw_ctx *rc = ctx;

	return inputs_read(rc->item, pos, buf, len, err);
}

/* Hash the raw bytes, and see whether they are compressed already. */
static int
raw_scan(const struct inputs_item *item, struct store_raw *raw,
    struct dm_error *err)
{
	static unsigned char buf[256 * 1024];
	struct sha256_ctx ctx;
	uint64_t pos = 0;
	ssize_t n;

	sha256_init(&ctx);
	raw->compressed = 0;
	while ((n = inputs_read(item, pos, buf, sizeof(buf), err)) > 0) {
		if (pos == 0 && n >= 4)
			raw->compressed = (buf[0] == 0x1f && buf[1] == 0x8b) ||
			    (buf[0] == 'P' && buf[1] == 'K' && buf[2] == 3 &&
			    buf[3] == 4);
		sha256_update(&ctx, (size_t)n, buf);
		pos += (uint64_t)n;
	}
	if (n < 0)
		return -1;
	sha256_digest(&ctx, sizeof(raw->sha256), raw->sha256);
	raw->size = pos;
	return 0;
}

/* Parse the item into the store once. */
static int
parse_item(struct ingest_run *run, const struct inputs_item *item,
    struct dm_error *perr)
{
	struct unpack_result result;
	unsigned char *mem;
	ssize_t n;
	int fd, rc;

	dm_error_clear(perr);
	if (item->whole_file) {
		fd = dup(item->fd);
		if (fd < 0 || lseek(fd, 0, SEEK_SET) != 0) {
			if (fd >= 0)
				close(fd);
			return dm_error_set(perr, DM_E_IO, "%s: %s", item->name,
			    strerror(errno));
		}
		/* unpack_fd owns and closes fd. */
		rc = unpack_fd(fd, item->name, &run->uopt,
		    store_handler(run->store), &result, perr);
		return rc;
	}
	if (item->length > run->uopt.limits.max_message_bytes)
		return dm_error_set(perr, DM_E_LIMIT, "the message is %" PRIu64
		    " bytes, more than the limit of %" PRIu64, item->length,
		    run->uopt.limits.max_message_bytes);
	mem = malloc(item->length > 0 ? item->length : 1);
	if (mem == NULL)
		return dm_error_set(perr, DM_E_NOMEM, "out of memory");
	n = inputs_read(item, 0, mem, item->length, perr);
	if (n < 0 || (uint64_t)n != item->length) {
		free(mem);
		if (n >= 0)
			dm_error_set(perr, DM_E_IO, "%s: short read",
			    item->name);
		return -1;
	}
	rc = unpack_memory(mem, item->length, item->name, &run->uopt,
	    store_handler(run->store), &result, perr);
	free(mem);
	return rc;
}

static char *
describe(const char *name, const struct store_tally *t, int *status)
{
	char *text = NULL;
	char what[512];
	size_t n = 0;

	what[0] = '\0';
#define ADD(...) n += (size_t)snprintf(what + n, n < sizeof(what) ? \
	sizeof(what) - n : 0, __VA_ARGS__)
	if (t->stored > 0)
		ADD("%s%u report%s stored", n ? ", " : "", t->stored,
		    t->stored == 1 ? "" : "s");
	if (t->revisions > 0)
		ADD("%s%u revision%s of earlier reports stored", n ? ", " : "",
		    t->revisions, t->revisions == 1 ? "" : "s");
	if (t->stored + t->revisions > 0)
		ADD(" (%" PRIu64 " records, %" PRIu64 " messages)", t->records,
		    t->messages);
	if (t->failures > 0)
		ADD("%s%u failure report%s stored", n ? ", " : "", t->failures,
		    t->failures == 1 ? "" : "s");
	if (t->duplicates > 0)
		ADD("%s%u duplicate%s (stored before)", n ? ", " : "",
		    t->duplicates, t->duplicates == 1 ? "" : "s");
	if (t->rejected > 0)
		ADD("%s%u rejected: %s", n ? ", " : "", t->rejected,
		    t->first_error);
#undef ADD
	*status = t->rejected > 0 ? EX_DATAERR : EX_OK;
	if (asprintf(&text, "%s: %s", name, what) < 0)
		return NULL;
	return text;
}

int
ingest_item(struct ingest_run *run, const struct inputs_item *item,
    const char *source)
{
	struct store_input in;
	struct store_tally tally;
	struct raw_ctx rc = { item };
	struct dm_error err, perr;
	int pass, status;
	char *line;

	if (run->stopped)
		return -1;
	memset(&in, 0, sizeof(in));
	in.source = source != NULL ? source : item->name;
	in.raw.read = raw_read;
	in.raw.ctx = &rc;
	dm_error_clear(&err);
	if (raw_scan(item, &in.raw, &err) != 0) {
		ingest_progress_clear(run);
		fprintf(stderr, "dmarcd %s: %s: %s\n", run->cmd, item->name,
		    err.msg);
		run->status = cmd_worse(run->status, cmd_exit_for(&err));
		return 0;
	}
	for (pass = 0; pass < 3; pass++) {
		if (store_input_begin(run->store, &in, &tally, &err) != 0)
			goto fatal;
		parse_item(run, item, &perr);
		if (store_input_end(run->store, &perr, &err) != 0)
			goto fatal;
		if (!tally.replay)
			break;
	}
	if (tally.replay) {
		/* Other collectors kept storing versions of its reports. */
		dm_error_set(&err, DM_E_TEMP, "%s: its reports were being "
		    "stored by other collectors at the same time, %d times; "
		    "try again", item->name, pass);
		goto fatal;
	}
	run->last = tally;
	run->b_inputs++;
	run->b_stored += tally.stored;
	run->b_revisions += tally.revisions;
	run->b_duplicates += tally.duplicates;
	run->b_failures += tally.failures;
	run->b_rejected += tally.rejected;
	run->b_records += tally.records;
	run->b_messages += tally.messages;
	if (run->hooks.item_done != NULL)
		run->hooks.item_done(run->hooks.ctx, &tally);
	line = describe(item->name, &tally, &status);
	if (line == NULL || queue_line(run, line, status) != 0) {
		dm_error_set(&err, DM_E_NOMEM, "out of memory");
		goto fatal;
	}
	if (store_batch_due(run->store) && ingest_commit(run) != 0)
		return -1;
	progress(run, 0);
	return 0;
fatal:
	run->fatal = err;
	run->stopped = 1;
	flush_lines(run, 0);
	if (run->hooks.after_commit != NULL)
		run->hooks.after_commit(run->hooks.ctx, 0);
	return -1;
}

static int
on_item(void *ctx, const struct inputs_item *item)
{
	return ingest_item(ctx, item, NULL);
}

static void
on_error(void *ctx, const char *path, const struct dm_error *err)
{
	struct ingest_run *run = ctx;

	ingest_progress_clear(run);
	fprintf(stderr, "dmarcd ingest: %s\n", err->msg);
	(void)path;
	run->status = cmd_worse(run->status, cmd_exit_for(err));
}

static void
on_note(void *ctx, const char *path, const char *text)
{
	struct ingest_run *run = ctx;

	ingest_progress_clear(run);
	fprintf(stderr, "dmarcd ingest: %s: %s\n", path, text);
}

void
ingest_run_init(struct ingest_run *run, const struct dm_config *cfg)
{
	memset(run, 0, sizeof(*run));
	run->cmd = "ingest";
	unpack_options_init(&run->uopt);
	run->uopt.limits.max_input_bytes = cfg->max_input_bytes;
	run->uopt.limits.max_ratio = cfg->max_ratio;
	run->uopt.limits.max_message_bytes = cfg->max_message_bytes;
	run->uopt.keep_bodies = cfg->keep_bodies;
	run->t0 = ingest_now();
}


void
ingest_print_totals(const char *cmd, const struct ingest_sums *u, int quiet,
    double t)
{
	if (quiet && u->status == EX_OK)
		return;
	fprintf(quiet ? stderr : stdout, "dmarcd %s: %" PRIu64
	    " input%s: %" PRIu64 " reports stored, %" PRIu64 " revisions, %"
	    PRIu64 " failure reports, %" PRIu64 " duplicates, %" PRIu64
	    " rejected; %" PRIu64 " records, %" PRIu64 " messages in %.2f s"
	    " (%.0f inputs/s)\n", cmd, u->inputs, u->inputs == 1 ? "" : "s",
	    u->stored, u->revisions, u->failures, u->duplicates, u->rejected,
	    u->records, u->messages, t, t > 0 ? (double)u->inputs / t : 0.0);
}

void
ingest_sums_of(const struct ingest_run *run, struct ingest_sums *u)
{
	memset(u, 0, sizeof(*u));
	u->inputs = run->inputs;
	u->stored = run->stored;
	u->duplicates = run->duplicates;
	u->revisions = run->revisions;
	u->failures = run->failures;
	u->rejected = run->rejected;
	u->records = run->records;
	u->messages = run->messages;
	/* A stopped run's last line is printed even when quiet. */
	u->status = run->stopped && run->status == EX_OK ? EX_TEMPFAIL :
	    run->status;
}

const char cmd_ingest_usage[] =
    "usage: dmarcd ingest [--recursive] [--quiet] [--jobs N] [--db CONNINFO]\n"
    "                     [--config FILE] PATH... | -\n"
    "\n"
    "Store the reports in files, directories, maildirs, mbox files, single\n"
    "messages (.eml) or standard input (-). Each report is stored once:\n"
    "the same report again is counted as a duplicate, a changed one kept\n"
    "as a revision. Input that is no report is kept with the reason\n"
    "(see 'dmarcd rejected').\n"
    "\n"
    "  -r, --recursive   descend into subdirectories\n"
    "  -q, --quiet       no line per input (totals only on trouble)\n"
    "  -j, --jobs N      N processes (1 to 64, default 1), each with its own\n"
    "                    share of the files (by a hash of the path) and its\n"
    "                    own database connection; not for standard input\n"
    "      --progress    show progress (default: when stderr is a tty)\n"
    "      --no-progress\n"
    "\n"
    "Exit status: 0 all stored (or duplicates), 65 some input was rejected\n"
    "(its raw bytes are kept), 66 a path does not exist, 75 PostgreSQL is\n"
    "unreachable (nothing half-stored: run again; an MTA retries).\n";

/*
 * ingest_paths - the ingest itself, of the files of iopt's share. The
 * last line goes to stdout, or with sums_fd >= 0 as struct ingest_sums
 * to that pipe (a job of ingest_jobs).
 */
static int
ingest_paths(const struct cmd_db_opts *o, struct inputs_options *iopt,
    char *const *paths, size_t n, int quiet, int show_progress, int sums_fd)
{
	struct inputs_callbacks cb;
	struct ingest_run run;
	struct ingest_sums sums;
	struct dm_config cfg;
	struct store *s;
	struct dm_error err;
	int rc;

	if ((rc = cmd_open_store("ingest", o, &cfg, &s)) != 0)
		return rc;
	ingest_run_init(&run, &cfg);
	run.quiet = quiet;
	run.progress = show_progress;
	run.store = s;
	dm_error_clear(&err);
	if (store_check_schema(s, &err) != 0)
		return cmd_close_store("ingest", s, &cfg, &err);
	store_set_batch(s, cfg.batch_reports, cfg.batch_ms);
	store_set_tmpdir(s, cfg.tmpdir);
	iopt->tmpdir = cfg.tmpdir[0] != '\0' ? cfg.tmpdir : NULL;
	memset(&cb, 0, sizeof(cb));
	cb.ctx = &run;
	cb.item = on_item;
	cb.error = on_error;
	cb.note = on_note;
	inputs_walk(paths, n, iopt, &cb, NULL);
	if (!run.stopped)
		ingest_commit(&run);
	ingest_progress_clear(&run);
	if (run.stopped) {
		fprintf(stderr, "dmarcd ingest: %s\n", run.fatal.msg);
		run.status = cmd_worse(run.status, cmd_exit_for(&run.fatal));
	}
	/* What earlier runs appended, compacted after the last commit
	 * (sql/0014_rollup_append.sql); jobs share it out. */
	if (!run.stopped)
		run.status = cmd_worse(run.status, cmd_compact("ingest", s,
		    STORE_COMPACT_AGE, CMD_COMPACT_MS));
	ingest_sums_of(&run, &sums);
	if (sums_fd < 0)
		ingest_print_totals("ingest", &sums, run.quiet, ingest_now() - run.t0);
	else if (write(sums_fd, &sums, sizeof(sums)) != (ssize_t)sizeof(sums))
		run.status = cmd_worse(run.status, EX_IOERR);
	free(run.lines);
	store_free(s);
	dm_config_free(&cfg);
	return run.status;
}

/* The jobs running, for a signal to the parent to reach them too. */
static pid_t job_pids[INGEST_MAX_JOBS];
static volatile sig_atomic_t job_count;

static void
pass_on(int sig)
{
	sig_atomic_t i;

	for (i = 0; i < job_count; i++)
		if (job_pids[i] > 0)
			kill(job_pids[i], sig);
}

/*
 * ingest_jobs - jobs processes share the files: each walks all paths and
 * reads the files that hash to its share, over its own connection (the
 * store is safe for concurrent collectors, docs/scaling.md). Their lines
 * go to stdout as they commit; one last line sums them up. The status is
 * the worst of theirs.
 */
static int
ingest_jobs(const struct cmd_db_opts *o, struct inputs_options *iopt,
    char *const *paths, size_t n, int quiet, unsigned jobs)
{
	pid_t *pids = job_pids;
	int fds[INGEST_MAX_JOBS];
	struct ingest_sums all, one;
	struct sigaction sa;
	double t0 = ingest_now();
	unsigned k, started = 0;
	int status = EX_OK, ws;

	memset(&all, 0, sizeof(all));
	/* Its jobs are waited for here, whatever the parent was given. */
	signal(SIGCHLD, SIG_DFL);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = pass_on;
	sigemptyset(&sa.sa_mask);
	fflush(stdout);
	fflush(stderr);
	for (k = 0; k < jobs; k++) {
		int p[2];

		if (pipe(p) != 0)
			break;
		pids[k] = fork();
		if (pids[k] < 0) {
			close(p[0]);
			close(p[1]);
			break;
		}
		if (pids[k] == 0) {
			unsigned j;

			signal(SIGTERM, SIG_DFL);
			signal(SIGINT, SIG_DFL);
			signal(SIGHUP, SIG_DFL);
			close(p[0]);
			for (j = 0; j < k; j++)
				close(fds[j]);
			/* A line per write: the jobs' lines do not mix. */
			setvbuf(stdout, NULL, _IOLBF, 0);
			iopt->share = k;
			iopt->shares = jobs;
			exit(ingest_paths(o, iopt, paths, n, quiet, 0, p[1]));
		}
		close(p[1]);
		fds[k] = p[0];
		started++;
		job_count = (sig_atomic_t)started;
		if (started == 1) {
			sigaction(SIGTERM, &sa, NULL);
			sigaction(SIGINT, &sa, NULL);
			sigaction(SIGHUP, &sa, NULL);
		}
	}
	if (started < jobs) {
		/* The shares not started would go unread: stop them all. */
		fprintf(stderr, "dmarcd ingest: cannot start job %u of %u: "
		    "%s; stopping the others (what they committed stays): run "
		    "again\n", started + 1, jobs, strerror(errno));
		status = EX_TEMPFAIL;
		pass_on(SIGTERM);
	}
	for (k = 0; k < started; k++) {
		size_t got = 0;
		ssize_t r;

		memset(&one, 0, sizeof(one));
		while (got < sizeof(one) && ((r = read(fds[k], (char *)&one +
		    got, sizeof(one) - got)) > 0 || (r < 0 && errno == EINTR)))
			got += r > 0 ? (size_t)r : 0;
		close(fds[k]);
		ws = 0;
		while ((r = waitpid(pids[k], &ws, 0)) < 0 && errno == EINTR)
			;
		if (r < 0) {
			fprintf(stderr, "dmarcd ingest: job %u: %s\n", k + 1,
			    strerror(errno));
			status = cmd_worse(status, EX_OSERR);
		} else if (WIFEXITED(ws))
			status = cmd_worse(status, WEXITSTATUS(ws));
		else {
			fprintf(stderr, "dmarcd ingest: job %u ended by signal "
			    "%d; what it had not committed is not stored: run "
			    "again\n", k + 1, WIFSIGNALED(ws) ? WTERMSIG(ws) :
			    0);
			/* Stopped: run again. Crashed: a bug. */
			status = cmd_worse(status, WIFSIGNALED(ws) &&
			    (WTERMSIG(ws) == SIGTERM || WTERMSIG(ws) == SIGINT ||
			    WTERMSIG(ws) == SIGHUP || WTERMSIG(ws) == SIGKILL) ?
			    EX_TEMPFAIL : EX_SOFTWARE);
		}
		if (got < sizeof(one))
			continue;	/* it stopped before its last line */
		all.inputs += one.inputs;
		all.stored += one.stored;
		all.duplicates += one.duplicates;
		all.revisions += one.revisions;
		all.failures += one.failures;
		all.rejected += one.rejected;
		all.records += one.records;
		all.messages += one.messages;
	}
	job_count = 0;
	all.status = status;
	ingest_print_totals("ingest", &all, quiet, ingest_now() - t0);
	return status;
}

int
cmd_ingest(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "recursive", no_argument, NULL, 'r' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "jobs", required_argument, NULL, 'j' },
		{ "progress", no_argument, NULL, 'p' },
		{ "no-progress", no_argument, NULL, 'P' },
		{ "db", required_argument, NULL, 'D' },
		{ "config", required_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct cmd_db_opts o = { NULL, NULL, 0 };
	struct inputs_options iopt;
	char *end;
	unsigned long jobs = 1;
	int c, i, quiet = 0, progress_opt = -1;

	memset(&iopt, 0, sizeof(iopt));
	optind = 1;
	while ((c = getopt_long(argc, argv, "rqj:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'r':
			iopt.recursive = 1;
			break;
		case 'q':
			quiet = 1;
			break;
		case 'j':
			errno = 0;
			jobs = strtoul(optarg, &end, 10);
			if (errno != 0 || end == optarg || *end != '\0' ||
			    jobs < 1 || jobs > INGEST_MAX_JOBS) {
				fprintf(stderr, "dmarcd ingest: --jobs %s: not "
				    "a number from 1 to %d\n", optarg,
				    INGEST_MAX_JOBS);
				return EX_USAGE;
			}
			break;
		case 'p':
			progress_opt = 1;
			break;
		case 'P':
			progress_opt = 0;
			break;
		case 'h':
			fputs(cmd_ingest_usage, stdout);
			return 0;
		default:
			if (cmd_db_option(c, optarg, &o) != 0) {
				fputs(cmd_ingest_usage, stderr);
				return EX_USAGE;
			}
		}
	}
	if (optind >= argc) {
		fputs(cmd_ingest_usage, stderr);
		return EX_USAGE;
	}
	if (jobs > 1) {
		for (i = optind; i < argc; i++)
			if (strcmp(argv[i], "-") == 0) {
				fprintf(stderr, "dmarcd ingest: --jobs: "
				    "standard input cannot be shared\n");
				return EX_USAGE;
			}
		return ingest_jobs(&o, &iopt, argv + optind,
		    (size_t)(argc - optind), quiet, (unsigned)jobs);
	}
	return ingest_paths(&o, &iopt, argv + optind, (size_t)(argc - optind),
	    quiet, progress_opt >= 0 ? progress_opt : isatty(2), -1);
}

/* ---- compact ---- */

const char cmd_compact_usage[] =
    "usage: dmarcd compact [--older-than N(m|h|d|w)] [--quiet] [--db CONNINFO]\n"
    "                      [--config FILE]\n"
    "\n"
    "Merge the daily rollup's rows. Ingest appends each report's rows to\n"
    "dmarcd.rollup_daily and marks its days; compacting makes the rows of\n"
    "one key (domain, day, source and verdicts) one row again and drops\n"
    "those that add up to 0. The numbers are the same before and after:\n"
    "it only makes the rollup smaller, and the analytics faster. dmarcd\n"
    "ingest and fetch compact at their end, and dmarcd run every few\n"
    "minutes, the days marked an hour ago or more; this compacts them all\n"
    "(or those marked --older-than ago), each (domain, day) pair once.\n"
    "\n"
    "  --older-than N(m|h|d|w)  only days marked that long ago (at most 366d)\n"
    "  -q, --quiet              no totals line\n";

int
cmd_compact_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "older-than", required_argument, NULL, 'o' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "db", required_argument, NULL, 'D' },
		{ "config", required_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct cmd_db_opts o = { NULL, NULL, 0 };
	struct store_compact_tally t;
	struct dm_config cfg;
	struct store *s;
	struct dm_error err;
	long long age = 0;
	int c, rc, quiet = 0;
	double t0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "qh", longopts, NULL)) != -1) {
		if (c == 'o') {
			if (cmd_parse_span(optarg, &age) != 0 ||
			    age > 366LL * 86400) {
				fprintf(stderr, "dmarcd compact: --older-than "
				    "'%s': minutes, hours, days or weeks (30m, "
				    "1h, 2d, 1w), at most a year\n", optarg);
				return EX_USAGE;
			}
		} else if (c == 'q')
			quiet = 1;
		else if (c == 'h') {
			fputs(cmd_compact_usage, stdout);
			return 0;
		} else if (cmd_db_option(c, optarg, &o) != 0) {
			fputs(cmd_compact_usage, stderr);
			return EX_USAGE;
		}
	}
	if (optind != argc) {
		fputs(cmd_compact_usage, stderr);
		return EX_USAGE;
	}
	if ((rc = cmd_open_store("compact", &o, &cfg, &s)) != 0)
		return rc;
	dm_error_clear(&err);
	t0 = ingest_now();
	if (store_check_schema(s, &err) != 0 ||
	    store_compact(s, (unsigned)age, 0, &t, &err) != 0)
		return cmd_close_store("compact", s, &cfg, &err);
	if (!quiet)
		printf("dmarcd compact: %" PRIu64 " day%s of a domain, %"
		    PRIu64 " rows merged into %" PRIu64 " in %.2f s\n",
		    t.pairs, t.pairs == 1 ? "" : "s", t.deleted, t.inserted,
		    ingest_now() - t0);
	return cmd_close_store("", s, &cfg, NULL);
}

/* ---- stats ---- */

const char cmd_stats_usage[] =
    "usage: dmarcd stats [--format text|json] [--db CONNINFO] "
    "[--config FILE]\n"
    "\n"
    "Totals of what is stored: reports, records, messages (sum of count),\n"
    "duplicates, revisions, failure reports and rejected inputs, per\n"
    "policy domain.\n"
    "\n"
    "  -f, --format text|json   text (default) or one JSON object\n";

struct stats_text {
	int header;
};

static int
stats_row(void *ctx, int ncols, char **v)
{
	struct stats_text *st = ctx;

	(void)ncols;
	if (!st->header) {
		printf("%-32s %10s %12s %14s %10s %9s %8s\n", "domain",
		    "reports", "records", "messages", "duplicates",
		    "revisions", "failure");
		st->header = 1;
	}
	printf("%-32s %10s %12s %14s %10s %9s %8s\n", v[0], v[1], v[2], v[3],
	    v[4], v[5], v[6]);
	return 0;
}

/* Each column of the row, separated by two spaces. */
static int
print_row(void *ctx, int ncols, char **v)
{
	int i;

	(void)ctx;
	for (i = 0; i < ncols; i++)
		printf("%s%s", i ? "  " : "", v[i] != NULL ? v[i] : "");
	printf("\n");
	return 0;
}

int
cmd_stats(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "db", required_argument, NULL, 'D' },
		{ "config", required_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct cmd_db_opts o = { NULL, NULL, 0 };
	struct dm_config cfg;
	struct store *s;
	struct dm_error err;
	struct stats_text st = { 0 };
	char *json;
	int c, rc, as_json = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "f:h", longopts, NULL)) != -1) {
		if (c == 'f') {
			if (strcmp(optarg, "json") == 0)
				as_json = 1;
			else if (strcmp(optarg, "text") != 0) {
				fprintf(stderr, "dmarcd stats: unknown format "
				    "'%s' (text or json)\n", optarg);
				return EX_USAGE;
			}
		} else if (c == 'h') {
			fputs(cmd_stats_usage, stdout);
			return 0;
		} else if (cmd_db_option(c, optarg, &o) != 0) {
			fputs(cmd_stats_usage, stderr);
			return EX_USAGE;
		}
	}
	if (optind != argc) {
		fputs(cmd_stats_usage, stderr);
		return EX_USAGE;
	}
	if ((rc = cmd_open_store("stats", &o, &cfg, &s)) != 0)
		return rc;
	dm_error_clear(&err);
	if (store_check_schema(s, &err) != 0)
		goto fail;
	json = store_stats_json(s, &err);
	if (json == NULL)
		goto fail;
	if (as_json)
		printf("%s\n", json);
	free(json);
	if (!as_json) {
		if (store_query_lines(s, "SELECT 'all domains', "
		    "count(*) FILTER (WHERE payload_sha256 IS NOT NULL), "
		    "coalesce(sum(record_count), 0), "
		    "coalesce(sum(message_count), 0), "
		    "coalesce(sum(duplicates), 0) + (SELECT coalesce(sum("
		    "duplicates), 0) FROM dmarcd.failure_reports), "
		    "count(*) FILTER (WHERE revision > 1), "
		    "(SELECT count(*) FROM dmarcd.failure_reports) "
		    "FROM dmarcd.reports UNION ALL (SELECT coalesce(r.domain, "
		    "f.domain), coalesce(r.n, 0), coalesce(r.records, 0), "
		    "coalesce(r.messages, 0), coalesce(r.dup, 0) + "
		    "coalesce(f.dup, 0), coalesce(r.rev, 0), coalesce(f.n, 0) "
		    "FROM (SELECT domain, count(*) AS n, sum(record_count) AS "
		    "records, sum(message_count) AS messages, sum(duplicates) "
		    "AS dup, count(*) FILTER (WHERE revision > 1) AS rev FROM "
		    "dmarcd.reports WHERE payload_sha256 IS NOT NULL GROUP BY "
		    "domain) r FULL JOIN (SELECT domain, count(*) AS n, "
		    "sum(duplicates) AS dup FROM dmarcd.failure_reports GROUP "
		    "BY domain) f ON f.domain = r.domain ORDER BY 1)", 0, NULL,
		    stats_row, &st, &err) != 0)
			goto fail;
		if (store_query_lines(s, "SELECT 'rejected inputs: ' || "
		    "count(*) FILTER (WHERE resolved_at IS NULL) || ' (' || "
		    "count(*) FILTER (WHERE resolved_at IS NOT NULL) || "
		    "' resolved by a retry)' FROM dmarcd.rejected_inputs", 0,
		    NULL, print_row, NULL, &err) != 0)
			goto fail;
	}
	return cmd_close_store("", s, &cfg, NULL);
fail:
	return cmd_close_store("stats", s, &cfg, &err);
}

/* ---- rejected ---- */

const char cmd_rejected_usage[] =
    "usage: dmarcd rejected list [--all]\n"
    "       dmarcd rejected show [--raw] ID\n"
    "       dmarcd rejected retry [ID]\n"
    "       (each with [--db CONNINFO] [--config FILE])\n"
    "\n"
    "Inputs dmarcd refused, with the reason; their raw bytes are kept.\n"
    "'show' prints the details, 'show --raw' the raw bytes; 'retry' parses\n"
    "them again (all unresolved ones, or ID) with this dmarcd, e.g. after\n"
    "an upgrade: what is stored now is marked resolved.\n";

static int
rejected_line(void *ctx, const struct store_rejected *r)
{
	(void)ctx;
	printf("%" PRId64 "\t%s\t%s%s%s\t%s%s\n", r->id, r->last_seen,
	    r->source, r->location[0] ? " " : "", r->location, r->error,
	    r->resolved ? " [resolved]" : "");
	return 0;
}

static int
unhex32(const char *hex, unsigned char out[32])
{
	unsigned v;
	int i;

	if (strlen(hex) != 64)
		return -1;
	for (i = 0; i < 32; i++) {
		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (unsigned char)v;
	}
	return 0;
}

struct retry_list {
	int64_t *ids;
	size_t n, alloc;
};

static int
collect_id(void *ctx, const struct store_rejected *r)
{
	struct retry_list *l = ctx;
	int64_t *ids;

	if (l->n == l->alloc) {
		l->alloc = l->alloc ? l->alloc * 2 : 32;
		ids = realloc(l->ids, l->alloc * sizeof(*ids));
		if (ids == NULL)
			return -1;
		l->ids = ids;
	}
	l->ids[l->n++] = r->id;
	return 0;
}

/* Parse the raw bytes of rejected input id again. */
static int
retry_one(struct ingest_run *run, struct store *s, int64_t id,
    const char *tmpdir)
{
	struct store_rejected r;
	struct inputs_item item;
	struct dm_error err;
	unsigned char sha[32];
	char path[4096], name[64];
	struct stat st;
	int fd, rc;

	dm_error_clear(&err);
	if (store_rejected_get(s, id, &r, &err) != 0) {
		fprintf(stderr, "dmarcd rejected: %s\n", err.msg);
		return cmd_exit_for(&err);
	}
	if (r.resolved) {
		printf("%" PRId64 ": already resolved\n", id);
		return EX_OK;
	}
	snprintf(path, sizeof(path), "%s/dmarcd-retry.XXXXXX",
	    tmpdir != NULL ? tmpdir : "/tmp");
	fd = mkstemp(path);
	if (fd < 0) {
		fprintf(stderr, "dmarcd rejected: %s: %s\n", path,
		    strerror(errno));
		return 73;
	}
	unlink(path);
	if (unhex32(r.sha256_hex, sha) != 0 ||
	    store_raw_write(s, "", sha, fd, &err) != 0 || fstat(fd, &st) != 0) {
		close(fd);
		fprintf(stderr, "dmarcd rejected: %" PRId64 ": %s\n", id,
		    err.msg[0] ? err.msg : "bad hash");
		return cmd_exit_for(&err);
	}
	memset(&item, 0, sizeof(item));
	snprintf(name, sizeof(name), "rejected #%" PRId64, id);
	item.name = name;
	item.path = name;
	item.fd = fd;
	item.offset = 0;
	item.length = (uint64_t)st.st_size;
	item.whole_file = 1;
	rc = ingest_item(run, &item, r.source);
	close(fd);
	if (rc != 0)
		return EX_TEMPFAIL;
	if (ingest_commit(run) != 0)
		return EX_TEMPFAIL;
	if (run->last.rejected == 0) {
		if (store_rejected_resolve(s, id, &err) != 0) {
			fprintf(stderr, "dmarcd rejected: %s\n", err.msg);
			return cmd_exit_for(&err);
		}
		printf("%" PRId64 ": resolved\n", id);
		return EX_OK;
	}
	printf("%" PRId64 ": still rejected: %s\n", id, run->last.first_error);
	return EX_DATAERR;
}

int
cmd_rejected(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "all", no_argument, NULL, 'a' },
		{ "raw", no_argument, NULL, 'R' },
		{ "db", required_argument, NULL, 'D' },
		{ "config", required_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct cmd_db_opts o = { NULL, NULL, 0 };
	struct dm_config cfg;
	struct store *s;
	struct dm_error err;
	struct store_rejected r;
	struct ingest_run run;
	struct retry_list list = { NULL, 0, 0 };
	const char *sub;
	unsigned char sha[32];
	int c, rc = 0, all = 0, raw = 0;
	size_t i;
	char *end;
	int64_t id = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (c == 'a')
			all = 1;
		else if (c == 'R')
			raw = 1;
		else if (c == 'h') {
			fputs(cmd_rejected_usage, stdout);
			return 0;
		} else if (cmd_db_option(c, optarg, &o) != 0) {
			fputs(cmd_rejected_usage, stderr);
			return EX_USAGE;
		}
	}
	if (optind >= argc) {
		fputs(cmd_rejected_usage, stderr);
		return EX_USAGE;
	}
	sub = argv[optind++];
	if (optind < argc) {
		errno = 0;
		id = strtoll(argv[optind], &end, 10);
		if (errno != 0 || *end != '\0' || id <= 0 ||
		    optind + 1 != argc) {
			fputs(cmd_rejected_usage, stderr);
			return EX_USAGE;
		}
	}
	if ((strcmp(sub, "list") == 0 && id != 0) ||
	    (strcmp(sub, "show") == 0 && id == 0) ||
	    (strcmp(sub, "list") != 0 && strcmp(sub, "show") != 0 &&
	    strcmp(sub, "retry") != 0)) {
		fputs(cmd_rejected_usage, stderr);
		return EX_USAGE;
	}
	if ((rc = cmd_open_store("rejected", &o, &cfg, &s)) != 0)
		return rc;
	dm_error_clear(&err);
	if (store_check_schema(s, &err) != 0)
		goto fail;
	if (strcmp(sub, "list") == 0) {
		if (store_rejected_list(s, all, rejected_line, NULL, &err) != 0)
			goto fail;
	} else if (strcmp(sub, "show") == 0) {
		if (store_rejected_get(s, id, &r, &err) != 0)
			goto fail;
		if (raw) {
			fflush(stdout);
			if (unhex32(r.sha256_hex, sha) != 0 ||
			    store_raw_write(s, "", sha, 1, &err) != 0)
				goto fail;
		} else
			printf("id:         %" PRId64 "\nsource:     %s\n"
			    "where:      %s\nerror:      %s (%s)\n"
			    "raw bytes:  %" PRIu64 " (sha256 %s)\n"
			    "first seen: %s\nlast seen:  %s\nattempts:   %"
			    PRId64 "\nresolved:   %s\n", r.id, r.source,
			    r.location[0] ? r.location : "(the whole input)",
			    r.error, r.error_code, r.size, r.sha256_hex,
			    r.first_seen, r.last_seen, r.attempts,
			    r.resolved ? "yes" : "no");
	} else {
		ingest_run_init(&run, &cfg);
		run.store = s;
		store_set_batch(s, 1, 0);
		store_set_tmpdir(s, cfg.tmpdir);
		if (id != 0)
			rc = retry_one(&run, s, id, cfg.tmpdir[0] ?
			    cfg.tmpdir : NULL);
		else {
			if (store_rejected_list(s, 0, collect_id, &list,
			    &err) != 0)
				goto fail;
			for (i = 0; i < list.n; i++) {
				rc = cmd_worse(rc, retry_one(&run, s, list.ids[i],
				    cfg.tmpdir[0] ? cfg.tmpdir : NULL));
				if (rc == EX_TEMPFAIL)
					break;
			}
			if (list.n == 0)
				printf("nothing to retry\n");
			free(list.ids);
		}
		if (run.stopped)
			fprintf(stderr, "dmarcd rejected: %s\n",
			    run.fatal.msg);
		free(run.lines);
	}
	cmd_close_store("", s, &cfg, NULL);
	return rc;
fail:
	return cmd_close_store("rejected", s, &cfg, &err);
}

/* ---- summary ---- */

const char cmd_summary_usage[] =
    "usage: dmarcd summary DOMAIN [--since WHEN] [--until WHEN]\n"
    "                      [--format table|json|csv]\n"
    "       dmarcd summary [--days N] [--domain DOMAIN]\n"
    "\n"
    "With DOMAIN: its mail over the span: DMARC pass by dmarcd's own\n"
    "alignment and by the receivers', where they disagree, the classes\n"
    "of its senders, dispositions, reporters and the published policy.\n"
    "Without: per policy domain, over the last N days of reports\n"
    "(default 30, counted back from the newest), messages, the share\n"
    "passing DMARC and the top sending sources.\n"
    CMD_REPORT_USAGE_OPTIONS
    "  --days N       without DOMAIN: the last N days (default 30)\n"
    "  --domain D     without DOMAIN: only policy domain D\n";

struct summary_ctx {
	struct store *s;
	const char *days;
	struct dm_error *err;
	int failed;
};

static int
source_row(void *ctx, int ncols, char **v)
{
	(void)ctx;
	(void)ncols;
	printf("    %-40s %12s msgs  %5s%% pass  dkim %5s%%  spf %5s%%\n",
	    v[0] != NULL ? v[0] : "(invalid address)", v[1], v[2], v[3], v[4]);
	return 0;
}

static int
domain_row(void *ctx, int ncols, char **v)
{
	struct summary_ctx *sc = ctx;
	const char *p[3];

	(void)ncols;
	printf("%s: %s messages from %s to %s, %s%% pass DMARC "
	    "(%s%% DKIM aligned, %s%% SPF aligned), %s%% of failing mail "
	    "not rejected or quarantined\n  top sources:\n", v[0], v[1], v[2],
	    v[3], v[4], v[5], v[6], v[7]);
	p[0] = v[0];
	p[1] = sc->days;
	if (store_query_lines(sc->s, "WITH w AS (SELECT max(day) AS last FROM "
	    "dmarcd.rollup_daily WHERE domain = $1) SELECT host(source_ip), "
	    "sum(messages), round(100.0 * coalesce(sum(messages) FILTER (WHERE "
	    "auth & 3 <> 0), 0) / nullif(sum(messages), 0), 1), "
	    "round(100.0 * coalesce(sum(messages) FILTER (WHERE auth & 1 <> 0), 0) / "
	    "nullif(sum(messages), 0), 1), round(100.0 * coalesce(sum(messages) "
	    "FILTER (WHERE auth & 2 <> 0), 0) / nullif(sum(messages), 0), 1) "
	    "FROM dmarcd.rollup_daily, w WHERE domain = $1 AND day > "
	    "w.last - $2::int GROUP BY source_ip HAVING sum(messages) <> 0 "
	    "ORDER BY 2 DESC LIMIT 5", 2,
	    p, source_row, NULL, sc->err) != 0) {
		sc->failed = 1;
		return -1;
	}
	return 0;
}

int
cmd_summary_overview(const struct cmd_db_opts *o, const char *days,
    const char *domain)
{
	struct dm_config cfg;
	struct store *s;
	struct dm_error err;
	struct summary_ctx sc;
	const char *p[2];
	char *end;
	int rc;

	if (days == NULL)
		days = "30";
	else if (strtol(days, &end, 10) <= 0 || *end != '\0' ||
	    strlen(days) > 6) {
		fprintf(stderr, "dmarcd summary: --days '%s': a positive "
		    "number\n", days);
		return EX_USAGE;
	}
	if ((rc = cmd_open_store("summary", o, &cfg, &s)) != 0)
		return rc;
	dm_error_clear(&err);
	if (store_check_schema(s, &err) != 0)
		goto fail;
	sc.s = s;
	sc.days = days;
	sc.err = &err;
	sc.failed = 0;
	p[0] = days;
	p[1] = domain;
	if (store_query_lines(s, "WITH w AS (SELECT domain, max(day) AS last "
	    "FROM dmarcd.rollup_daily GROUP BY domain) SELECT r.domain, "
	    "sum(messages), min(day), max(day), round(100.0 * coalesce(sum(messages) "
	    "FILTER (WHERE auth & 3 <> 0), 0) / "
	    "nullif(sum(messages), 0), 1), round(100.0 * coalesce(sum(messages) FILTER "
	    "(WHERE auth & 1 <> 0), 0) / nullif(sum(messages), 0), 1), "
	    "round(100.0 * coalesce(sum(messages) FILTER (WHERE auth & 2 <> 0), 0) / "
	    "nullif(sum(messages), 0), 1), coalesce(round(100.0 * "
	    "sum(messages) FILTER (WHERE auth & 3 = 0 "
	    "AND disposition IN ('none', 'pass', '')) / nullif(sum(messages) "
	    "FILTER (WHERE auth & 3 = 0), 0), 1), 0) "
	    "FROM dmarcd.rollup_daily r JOIN w ON w.domain = r.domain WHERE "
	    "r.day > w.last - $1::int AND ($2::text IS NULL OR r.domain = "
	    "lower($2)) GROUP BY r.domain ORDER BY 2 DESC", 2, p, domain_row,
	    &sc, &err) != 0)
		goto fail;
	return cmd_close_store("", s, &cfg, NULL);
fail:
	return cmd_close_store("summary", s, &cfg, &err);
}
