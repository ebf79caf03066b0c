/*
 * cmd_fetch.c - collecting from IMAP (docs/imap.md):
 *
 *	dmarcd fetch [ACCOUNT...]	one pass over the accounts, for cron
 *	dmarcd run			IDLE (or poll) until SIGTERM
 *
 * A message is stored exactly as `dmarcd ingest` stores a file; in the
 * same transaction the mailbox's highest stored UID moves on and the move
 * the message needs is recorded (store_mailbox_checkpoint). After the
 * commit the messages are moved and their moves forgotten; moves a crash
 * left are made first thing the next time the mailbox is read.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "collector/alerts.h"
#include "collector/commands.h"
#include "collector/imap.h"
#include "collector/ingest.h"
#include "collector/oauth2.h"
#include "collector/rdns.h"
#include "common/config.h"
#include "store/store.h"

/* ---- logging: key=value lines ---- */

static int log_to_syslog;
static int log_level = LOG_INFO;

/* A value as key=value wants it: bare when it can be, else quoted. */
static void
kv_value(char *out, size_t size, const char *v)
{
	size_t n = 0;
	int bare = *v != '\0';
	const char *p;

	for (p = v; *p != '\0'; p++)
		if (*p == ' ' || *p == '"' || *p == '=' || *p == '\\' ||
		    (unsigned char)*p < 0x20)
			bare = 0;
	if (bare) {
		snprintf(out, size, "%s", v);
		return;
	}
	if (size < 3) {
		out[0] = '\0';
		return;
	}
	out[n++] = '"';
	for (p = v; *p != '\0' && n + 3 < size; p++) {
		if (*p == '"' || *p == '\\')
			out[n++] = '\\';
		out[n++] = (unsigned char)*p < 0x20 ? ' ' : *p;
	}
	out[n++] = '"';
	out[n] = '\0';
}

/* The end of logkv()'s pairs: a null pointer of the type va_arg reads. */
#define KV_END	((const char *)NULL)

/*
 * logkv - one line: level, event, then "key", value pairs up to KV_END.
 * To stderr with a UTC timestamp, or to syslog (facility mail).
 */
static void
logkv(int level, const char *event, ...)
{
	char line[2048], v[1024];
	const char *key, *val;
	size_t n = 0;
	va_list ap;

	if (level > log_level)
		return;
	n += (size_t)snprintf(line + n, sizeof(line) - n, "level=%s event=%s",
	    dm_config_log_level_name(level), event);
	va_start(ap, event);
	while ((key = va_arg(ap, const char *)) != NULL && n < sizeof(line)) {
		val = va_arg(ap, const char *);
		kv_value(v, sizeof(v), val != NULL ? val : "");
		n += (size_t)snprintf(line + n, sizeof(line) - n, " %s=%s",
		    key, v);
	}
	va_end(ap);
	if (log_to_syslog) {
		syslog(level, "%s", line);
		return;
	}
	{
		char ts[32];
		time_t t = time(NULL);
		struct tm tm;

		gmtime_r(&t, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
		fprintf(stderr, "ts=%s %s\n", ts, line);
	}
}

static void
warn_cb(void *ctx, const char *text)
{
	(void)ctx;
	logkv(LOG_WARNING, "warning", "msg", text, KV_END);
}

/* ---- signals ---- */

static volatile sig_atomic_t stop_requested, reload_requested;

static void
on_stop(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void
on_reload(int sig)
{
	(void)sig;
	reload_requested = 1;
}

static void
signals(int daemon)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_stop;	/* no SA_RESTART: poll() wakes */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	if (daemon) {
		sa.sa_handler = on_reload;
		sigaction(SIGHUP, &sa, NULL);
	}
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	imap_set_stop_flag(&stop_requested);
}

/* ---- one account's session ---- */

struct session {
	const struct dm_account *acct;
	struct imap_conn *conn;
	struct oauth2_token *token;	/* XOAUTH2 cache, kept by the caller */
	int folders_ok;			/* processed/rejected exist */
};

static int
session_open(struct session *ss, struct dm_error *err)
{
	const struct dm_account *a = ss->acct;
	struct imap_params p;
	int xoauth2 = a->auth == DM_AUTH_XOAUTH2, tries;

	for (tries = 0; tries < 2; tries++) {
		memset(&p, 0, sizeof(p));
		p.host = a->host;
		p.port = a->port;
		p.tls = a->tls;
		p.tls_none_explicit = a->tls_none_explicit;
		p.tls_verify = a->tls_verify;
		p.ca_file = a->ca_file;
		p.user = a->user;
		p.password = a->password_set ? a->password : NULL;
		p.auth = a->auth;
		p.timeout_s = a->timeout_s;
		p.warn = warn_cb;
		if (xoauth2) {
			struct oauth2_client oc;

			memset(&oc, 0, sizeof(oc));
			oc.token_url = a->oauth2_token_url;
			oc.client_id = a->oauth2_client_id;
			oc.client_secret = a->oauth2_client_secret;
			oc.refresh_token = a->oauth2_refresh_token;
			/* The IMAP server's ca_file is not the token
			 * endpoint's (Google, Microsoft: public CAs). */
			oc.ca_file = NULL;
			oc.timeout_s = a->timeout_s;
			if (oauth2_access_token(&oc, ss->token, err) != 0)
				return -1;
			p.oauth2_token = ss->token->access_token;
		}
		if (imap_open(&ss->conn, &p, err) == 0)
			return 0;
		/* A token the server refuses: a new one, once. */
		if (!xoauth2 || !imap_auth_refused(ss->conn) || tries > 0)
			break;
		imap_abandon(ss->conn);
		ss->conn = NULL;
		oauth2_forget(ss->token);
	}
	imap_abandon(ss->conn);
	ss->conn = NULL;
	return -1;
}

static void
session_close(struct session *ss, int polite)
{
	if (polite)
		imap_close(ss->conn);
	else
		imap_abandon(ss->conn);
	ss->conn = NULL;
	ss->folders_ok = 0;
}

/* ---- fetching one mailbox ---- */

struct fetch {
	struct ingest_run *run;
	struct session *ss;
	const char *mailbox;
	uint32_t uidvalidity;
	int spool;			/* the message being stored */
	uint64_t spool_len;
	uint32_t uid;
	char name[600];
	/* messages of the open batch, and the moves they need */
	struct store_move *moves;
	size_t nmoves, amoves;
	uint32_t max_uid;
	int imap_failed;		/* moves could not be made */
	int db_failed;			/* a store_* call failed */
	int recorded;			/* item_done saw the message */
	struct dm_error imap_err;
	int stopping;			/* SIGTERM: finish this one */
	unsigned fetched;
};

static const char *
folder_for(const struct dm_account *a, const struct store_tally *t)
{
	if (t->stored + t->revisions + t->failures + t->duplicates == 0 &&
	    t->rejected > 0)
		return a->rejected_folder;	/* kept even when deleting */
	return a->delete_after_store ? NULL : a->processed_folder;
}

static void
on_item_done(void *ctx, const struct store_tally *t)
{
	struct fetch *f = ctx;
	struct store_move *m;

	if (f->nmoves == f->amoves) {
		size_t n = f->amoves ? f->amoves * 2 : 64;

		m = realloc(f->moves, n * sizeof(*m));
		if (m == NULL) {
			/* Not recorded: spool_end() stops the pass below
			 * this UID; it is read again next time. */
			return;
		}
		f->moves = m;
		f->amoves = n;
	}
	f->moves[f->nmoves].uid = f->uid;
	f->moves[f->nmoves].folder = folder_for(f->ss->acct, t);
	f->nmoves++;
	f->recorded = 1;
	if (f->uid > f->max_uid)
		f->max_uid = f->uid;
	if (t->rejected > 0)
		logkv(LOG_WARNING, "rejected", "account", f->ss->acct->name,
		    "mailbox", f->mailbox, "input", f->name, "reason",
		    t->first_error, KV_END);
}

static int
on_before_commit(void *ctx, struct dm_error *err)
{
	struct fetch *f = ctx;

	if (f->nmoves == 0)
		return 0;
	return store_mailbox_checkpoint(f->run->store, f->ss->acct->name,
	    f->mailbox, f->uidvalidity, f->max_uid, f->moves, f->nmoves, err);
}

/* Move what is in moves[0..n), folder by folder; forget the moves made. */
static int
make_moves(struct fetch *f, const struct store_move *moves, size_t n,
    struct dm_error *err)
{
	uint32_t *uids;
	size_t i, j, k;
	int rc = 0;

	if (n == 0)
		return 0;
	uids = malloc(n * sizeof(*uids));
	if (uids == NULL)
		return dm_error_set(err, DM_E_NOMEM, "out of memory");
	for (i = 0; i < n && rc == 0; i++) {
		const char *folder = moves[i].folder;
		int seen = 0;

		for (j = 0; j < i && !seen; j++)
			seen = (folder == NULL) == (moves[j].folder == NULL) &&
			    (folder == NULL || strcmp(folder,
			    moves[j].folder) == 0);
		if (seen)
			continue;
		for (k = 0, j = i; j < n; j++)
			if ((folder == NULL) == (moves[j].folder == NULL) &&
			    (folder == NULL || strcmp(folder,
			    moves[j].folder) == 0))
				uids[k++] = moves[j].uid;
		if (imap_move(f->ss->conn, uids, k, folder, err) != 0)
			rc = -1;
		else if (store_moves_done(f->run->store, f->ss->acct->name,
		    f->mailbox, f->uidvalidity, uids, k, err) != 0) {
			f->db_failed = 1;
			rc = -1;
		}
	}
	free(uids);
	return rc;
}

static void
on_after_commit(void *ctx, int ok)
{
	struct fetch *f = ctx;
	struct dm_error err;

	dm_error_clear(&err);
	if (ok && f->nmoves > 0 && !f->imap_failed &&
	    make_moves(f, f->moves, f->nmoves, &err) != 0) {
		/* Stored; the moves stay recorded for the next time. */
		f->imap_failed = 1;
		f->imap_err = err;
	}
	f->nmoves = 0;
	f->max_uid = 0;
}

/* The spool's directory, for its errors (open_spool() sets it). */
static char spool_dir[DM_CONFIG_PATH_MAX];

/*
 * spool_fail - the spool cannot be made or written: a full directory
 * (ENOSPC, EDQUOT) is temporary (exit 75; the message stays where it is
 * and is fetched next time), anything else an I/O error.
 */
static int
spool_fail(struct dm_error *err, const char *what, int errnum)
{
	return dm_error_tmpdir(err, what, spool_dir, errnum,
	    "the message is fetched again next time");
}

static int
spool_begin(void *ctx, uint32_t uid, uint64_t size, struct dm_error *err)
{
	struct fetch *f = ctx;

	(void)size;
	f->uid = uid;
	f->spool_len = 0;
	if (ftruncate(f->spool, 0) != 0)
		return spool_fail(err, "spool", errno);
	snprintf(f->name, sizeof(f->name), "%s/%s#%" PRIu32, f->ss->acct->name,
	    f->mailbox, uid);
	return 0;
}

static int
spool_data(void *ctx, const void *p, size_t len, struct dm_error *err)
{
	struct fetch *f = ctx;
	const char *c = p;
	ssize_t w;

	while (len > 0) {
		w = pwrite(f->spool, c, len, (off_t)f->spool_len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return spool_fail(err, "spool", w < 0 ? errno : ENOSPC);
		c += w;
		len -= (size_t)w;
		f->spool_len += (uint64_t)w;
	}
	return 0;
}

/* The message is whole in the spool: store it like a .eml file. */
static int
spool_end(void *ctx, struct dm_error *err)
{
	struct fetch *f = ctx;
	struct inputs_item item;

	memset(&item, 0, sizeof(item));
	item.name = f->name;
	item.path = f->name;
	item.fd = f->spool;
	item.offset = 0;
	item.length = f->spool_len;
	item.whole_file = 1;
	f->recorded = 0;
	if (ingest_item(f->run, &item, NULL) != 0) {
		*err = f->run->fatal;
		return -1;
	}
	/*
	 * Not recorded (its spool could not be read, or no memory for its
	 * move): nothing after it may move the mailbox's mark past it.
	 */
	if (!f->recorded)
		return dm_error_set(err, DM_E_IO, "%s: could not be stored or "
		    "recorded (see above); the pass stops before it", f->name);
	f->fetched++;
	if (stop_requested) {
		f->stopping = 1;
		return dm_error_set(err, DM_E_TEMP, "stopping");
	}
	return 0;
}

static int
collect_move(void *ctx, const struct store_move *m)
{
	struct fetch *f = ctx;
	struct store_move *n;

	if (f->nmoves == f->amoves) {
		size_t a = f->amoves ? f->amoves * 2 : 64;

		n = realloc(f->moves, a * sizeof(*n));
		if (n == NULL)
			return 1;	/* out of memory, not the database */
		f->moves = n;
		f->amoves = a;
	}
	f->moves[f->nmoves].uid = m->uid;
	f->moves[f->nmoves].folder = m->folder != NULL ? strdup(m->folder) :
	    NULL;
	if (m->folder != NULL && f->moves[f->nmoves].folder == NULL)
		return 1;
	f->nmoves++;
	return 0;
}

/* The moves a crash left between a commit and the moves. */
static int
leftover_moves(struct fetch *f, struct dm_error *err)
{
	size_t i;
	int rc;

	f->nmoves = 0;
	rc = store_moves_pending(f->run->store, f->ss->acct->name, f->mailbox,
	    f->uidvalidity, collect_move, f, err);
	if (rc < 0)
		f->db_failed = 1;
	if (rc > 0)
		rc = dm_error_set(err, DM_E_NOMEM, "out of memory");
	if (rc == 0 && f->nmoves > 0) {
		logkv(LOG_INFO, "leftover_moves", "account", f->ss->acct->name,
		    "mailbox", f->mailbox, KV_END);
		rc = make_moves(f, f->moves, f->nmoves, err);
	}
	for (i = 0; i < f->nmoves; i++)
		free((char *)f->moves[i].folder);
	f->nmoves = 0;
	return rc;
}

/*
 * fetch_mailbox - store what is new in one mailbox. 0, or -1 with err and
 * *db_r saying whether PostgreSQL failed (else it was IMAP).
 */
static int
fetch_mailbox(struct ingest_run *run, struct session *ss, const char *mailbox,
    int spool, unsigned *fetched_r, int *db_r, struct dm_error *err)
{
	struct fetch f;
	struct store_mailbox m;
	uint32_t *uids = NULL, after;
	size_t n = 0, i, k;
	int rc = -1;
	const struct dm_account *a = ss->acct;

	memset(&f, 0, sizeof(f));
	f.run = run;
	f.ss = ss;
	f.mailbox = mailbox;
	f.spool = spool;
	dm_error_clear(&f.imap_err);
	if (!ss->folders_ok) {
		if ((!a->delete_after_store && imap_ensure_folder(ss->conn,
		    a->processed_folder, err) != 0) ||
		    imap_ensure_folder(ss->conn, a->rejected_folder, err) != 0)
			return -1;
		ss->folders_ok = 1;
	}
	if (imap_select(ss->conn, mailbox, &f.uidvalidity, err) != 0)
		goto out;
	if (store_mailbox_get(run->store, a->name, mailbox, &m, err) != 0) {
		f.db_failed = 1;
		goto out;
	}
	if (leftover_moves(&f, err) != 0)
		goto out;
	after = m.known && m.uidvalidity == f.uidvalidity ? m.last_uid : 0;
	if (m.known && m.uidvalidity != f.uidvalidity) {
		char was[16], now[16];

		snprintf(was, sizeof(was), "%" PRIu32, m.uidvalidity);
		snprintf(now, sizeof(now), "%" PRIu32, f.uidvalidity);
		logkv(LOG_WARNING, "uidvalidity_changed", "account", a->name,
		    "mailbox", mailbox, "was", was, "now", now, "msg",
		    "reading the whole mailbox again; reports stored before "
		    "count as duplicates", KV_END);
	}
	if (imap_search_after(ss->conn, after, &uids, &n, err) != 0)
		goto out;
	/* A mailbox new to us, or renumbered, and empty: remember its
	 * UIDVALIDITY now (else the change is news on every pass). */
	if (n == 0 && (!m.known || m.uidvalidity != f.uidvalidity) &&
	    (store_mailbox_checkpoint(run->store, a->name, mailbox,
	    f.uidvalidity, 0, NULL, 0, err) != 0 ||
	    store_commit(run->store, err) != 0)) {
		f.db_failed = 1;
		goto out;
	}
	run->hooks.ctx = &f;
	run->hooks.item_done = on_item_done;
	run->hooks.before_commit = on_before_commit;
	run->hooks.after_commit = on_after_commit;
	{
		struct imap_fetch_cb cb = { &f, spool_begin, spool_data,
		    spool_end };
		size_t whole = IMAP_PART;

		for (i = 0; i < n; i = k) {
			k = i + a->fetch_batch < n ? i + a->fetch_batch : n;
			if (imap_fetch(ss->conn, uids + i, k - i, whole, &cb,
			    err) != 0)
				break;
		}
	}
	/* What was stored commits, even when IMAP broke meanwhile. */
	if (!run->stopped)
		ingest_commit(run);
	if (run->stopped) {
		*err = run->fatal;
		goto out;
	}
	if (f.stopping) {
		dm_error_clear(err);
		rc = 0;
		goto out;
	}
	if (i < n)			/* err from imap_fetch */
		goto out;
	if (f.imap_failed) {
		*err = f.imap_err;
		goto out;
	}
	/* Read to its end: what /metrics reports as the last fetch. */
	if (store_mailbox_fetched(run->store, a->name, mailbox, err) != 0) {
		f.db_failed = 1;
		goto out;
	}
	rc = 0;
out:
	run->hooks.ctx = NULL;
	run->hooks.item_done = NULL;
	run->hooks.before_commit = NULL;
	run->hooks.after_commit = NULL;
	if (fetched_r != NULL)
		*fetched_r = f.fetched;
	*db_r = run->stopped || f.db_failed;
	free(uids);
	free(f.moves);
	return rc;
}

static int
open_spool(const struct dm_config *cfg, struct dm_error *err)
{
	const char *dir = cfg->tmpdir[0] != '\0' ? cfg->tmpdir : "/tmp";
	char path[DM_CONFIG_PATH_MAX + 32];
	int fd;

	snprintf(spool_dir, sizeof(spool_dir), "%s", dir);
#ifdef O_TMPFILE
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
#endif
	snprintf(path, sizeof(path), "%s/dmarcd-fetch-XXXXXX", dir);
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return spool_fail(err, "cannot make a spool file", errno);
	unlink(path);
	return fd;
}

/* ---- dmarcd fetch ---- */

const char cmd_fetch_usage[] =
    "usage: dmarcd fetch [--quiet] [--db CONNINFO] [--config FILE] "
    "[ACCOUNT...]\n"
    "\n"
    "One pass over the IMAP accounts of the configuration ([account NAME]\n"
    "sections; all of them, or those named): store each new message's\n"
    "reports exactly once, then move the message to the processed folder\n"
    "(or the rejected folder when nothing in it could be stored). For\n"
    "cron; see docs/imap.md.\n"
    "\n"
    "  -q, --quiet   no line per message (totals only on trouble)\n"
    "\n"
    "Exit status: 0 all stored (or duplicates), 65 some message was\n"
    "rejected (kept, and moved to the rejected folder), 64 a bad\n"
    "configuration or an unknown account, 75 an IMAP server or PostgreSQL\n"
    "could not be reached (what was stored stays stored; the rest is\n"
    "fetched next time).\n";

static void
setup_logging(const struct dm_config *cfg)
{
	log_level = cfg->log_level;
	if (cfg->log_syslog && !log_to_syslog) {
		openlog("dmarcd", LOG_PID, LOG_MAIL);
		log_to_syslog = 1;
	}
}

int
cmd_fetch(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "quiet", no_argument, NULL, 'q' },
		{ "db", required_argument, NULL, 'D' },
		{ "config", required_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct cmd_db_opts o = { NULL, NULL, 0 };
	struct dm_config cfg;
	struct store *s;
	struct ingest_run run;
	struct ingest_sums sums;
	struct oauth2_token *tokens = NULL;
	struct dm_error err, db_err;
	size_t i, j;
	int c, quiet = 0, rc, status = EX_OK, spool = -1, db = 0;

	dm_error_clear(&db_err);
	optind = 1;
	while ((c = getopt_long(argc, argv, "qh", longopts, NULL)) != -1) {
		switch (c) {
		case 'q':
			quiet = 1;
			break;
		case 'h':
			fputs(cmd_fetch_usage, stdout);
			return 0;
		default:
			if (cmd_db_option(c, optarg, &o) != 0) {
				fputs(cmd_fetch_usage, stderr);
				return EX_USAGE;
			}
		}
	}
	if ((rc = cmd_open_store("fetch", &o, &cfg, &s)) != 0)
		return rc;
	setup_logging(&cfg);
	dm_error_clear(&err);
	if (cfg.naccounts == 0) {
		dm_error_set(&err, DM_E_USAGE, "no [account NAME] in %s; see "
		    "docs/imap.md", cfg.path[0] != '\0' ? cfg.path :
		    "the configuration (none was read)");
		return cmd_close_store("fetch", s, &cfg, &err);
	}
	for (i = (size_t)optind; i < (size_t)argc; i++)
		if (dm_config_account(&cfg, argv[i]) == NULL) {
			dm_error_set(&err, DM_E_USAGE, "no account %s in %s",
			    argv[i], cfg.path);
			return cmd_close_store("fetch", s, &cfg, &err);
		}
	if (store_check_schema(s, &err) != 0)
		return cmd_close_store("fetch", s, &cfg, &err);
	store_set_batch(s, cfg.batch_reports, cfg.batch_ms);
	store_set_tmpdir(s, cfg.tmpdir);
	if ((spool = open_spool(&cfg, &err)) < 0)
		return cmd_close_store("fetch", s, &cfg, &err);
	tokens = calloc(cfg.naccounts, sizeof(*tokens));
	if (tokens == NULL) {
		close(spool);
		dm_error_set(&err, DM_E_NOMEM, "out of memory");
		return cmd_close_store("fetch", s, &cfg, &err);
	}
	signals(0);
	ingest_run_init(&run, &cfg);
	run.cmd = "fetch";
	run.quiet = quiet;
	run.store = s;
	for (i = 0; i < cfg.naccounts && !run.stopped && !stop_requested;
	    i++) {
		struct session ss;
		int wanted = optind >= argc;

		for (j = (size_t)optind; j < (size_t)argc && !wanted; j++)
			wanted = strcmp(argv[j], cfg.accounts[i].name) == 0;
		if (!wanted)
			continue;
		memset(&ss, 0, sizeof(ss));
		ss.acct = &cfg.accounts[i];
		ss.token = &tokens[i];
		if (session_open(&ss, &err) != 0) {
			fprintf(stderr, "dmarcd fetch: %s: %s\n", ss.acct->name,
			    err.msg);
			status = cmd_worse(status, cmd_exit_for(&err));
			continue;
		}
		for (j = 0; j < ss.acct->nmailboxes && !stop_requested; j++) {
			if (fetch_mailbox(&run, &ss, ss.acct->mailboxes[j],
			    spool, NULL, &db, &err) == 0)
				continue;
			if (run.stopped)
				break;	/* reported below */
			if (db) {
				/* PostgreSQL: no use going on. */
				db_err = err;
				break;
			}
			fprintf(stderr, "dmarcd fetch: %s/%s: %s\n",
			    ss.acct->name, ss.acct->mailboxes[j], err.msg);
			status = cmd_worse(status, cmd_exit_for(&err));
			break;	/* the connection is not to be trusted */
		}
		session_close(&ss, !run.stopped && j == ss.acct->nmailboxes);
		if (db_err.code != DM_E_NONE)
			break;
	}
	if (db_err.code != DM_E_NONE) {
		fprintf(stderr, "dmarcd fetch: %s\n", db_err.msg);
		status = cmd_worse(status, cmd_exit_for(&db_err));
	}
	if (run.stopped) {
		fprintf(stderr, "dmarcd fetch: %s\n", run.fatal.msg);
		status = cmd_worse(status, cmd_exit_for(&run.fatal));
	} else if (stop_requested) {
		fprintf(stderr, "dmarcd fetch: stopped by a signal: what was "
		    "stored is committed, the rest is fetched next time\n");
		status = cmd_worse(status, EX_TEMPFAIL);
	}
	if (!run.stopped && !stop_requested && db_err.code == DM_E_NONE)
		status = cmd_worse(status, cmd_compact("fetch", s,
		    STORE_COMPACT_AGE, CMD_COMPACT_MS));
	ingest_sums_of(&run, &sums);
	sums.status = cmd_worse(sums.status, status);
	ingest_print_totals("fetch", &sums, quiet, ingest_now() - run.t0);
	free(run.lines);
	explicit_bzero(tokens, cfg.naccounts * sizeof(*tokens));
	free(tokens);
	close(spool);
	store_free(s);
	dm_config_free(&cfg);
	return sums.status;
}

/* ---- dmarcd run ---- */

const char cmd_run_usage[] =
    "usage: dmarcd run [--db CONNINFO] [--config FILE]\n"
    "\n"
    "Collect from every configured IMAP mailbox until SIGTERM: one\n"
    "connection per mailbox waits with IDLE (or polls every poll_interval\n"
    "seconds where IDLE is not offered) and stores new mail as it comes.\n"
    "A lost connection is tried again with a growing delay (with jitter,\n"
    "up to reconnect_max). SIGHUP reads the configuration again; SIGTERM\n"
    "finishes the message in hand, commits and exits 0. Logs key=value\n"
    "lines to stderr, or to syslog with [log] syslog = yes. After a pass\n"
    "that stored something, the new sources are resolved as `dmarcd\n"
    "resolve` does, in a thread of its own, for at most 60 s.\n";

enum { W_DOWN, W_IDLE, W_POLL };

struct watch {
	const struct dm_account *acct;
	const char *mailbox;
	struct session ss;
	int state;
	double next;		/* W_DOWN: reconnect at; W_POLL: poll at */
	double idle_since;
	unsigned failures;
};

static double
jittered(unsigned failures, unsigned max_s)
{
	double d = 1;
	unsigned i;

	for (i = 0; i < failures && d < max_s; i++)
		d *= 2;
	if (d > max_s)
		d = max_s;
	/* 80% to 120%: collectors that lost the server together do not
	 * all come back at the same moment. */
	return d * (0.8 + 0.4 * ((double)random() / RAND_MAX));
}

struct daemon {
	struct cmd_db_opts o;
	struct dm_config cfg;
	struct store *store;
	double store_next;	/* reconnect PostgreSQL at */
	unsigned store_failures;
	struct watch *w;
	size_t nw;
	struct oauth2_token *tokens;
	int spool;
	struct rdns_bg *rdns;	/* dmarcd resolve's work, in a thread */
	int rdns_again;		/* more was stored meanwhile */
	double compact_next;	/* compact the rollup at (compact()) */
};

/* rdns_kick - after a pass that stored something: resolve the sources
 * (docs/resolve.md) beside the daemon's work, bounded in time. */
static void
rdns_kick(struct daemon *d)
{
	struct dm_error err;

	if (d->rdns != NULL) {
		d->rdns_again = 1;
		return;
	}
	dm_error_clear(&err);
	if (rdns_bg_start(&d->rdns, &d->cfg, 0, &err) != 0)
		logkv(LOG_ERR, "resolve_error", "msg", err.msg, KV_END);
}

/* rdns_reap - log what the resolver did once it is over. */
static void
rdns_reap(struct daemon *d)
{
	struct rdns_totals t;
	struct dm_error err;
	char n[24], ok[24], fail[24], left[24], dom[24];

	if (rdns_bg_poll(&d->rdns, &t, &err) == 0)
		return;
	snprintf(n, sizeof(n), "%" PRIu64, t.resolved);
	snprintf(ok, sizeof(ok), "%" PRIu64, t.confirmed);
	snprintf(fail, sizeof(fail), "%" PRIu64, t.failed);
	snprintf(left, sizeof(left), "%" PRIu64, t.unfinished);
	snprintf(dom, sizeof(dom), "%" PRIu64, t.domains);
	if (err.code != DM_E_NONE)
		logkv(LOG_WARNING, "resolve_error", "msg", err.msg, KV_END);
	if (t.resolved > 0 || t.domains > 0 || t.unfinished > 0)
		logkv(LOG_INFO, "resolved", "addresses", n, "confirmed", ok,
		    "failed", fail, "left", left, "domains", dom, KV_END);
	if (d->rdns_again) {
		d->rdns_again = 0;
		rdns_kick(d);
	}
}

static void
watch_down(struct daemon *d, struct watch *w, const struct dm_error *err)
{
	char delay[32];
	double t;

	session_close(&w->ss, 0);
	w->failures++;
	t = jittered(w->failures - 1, d->cfg.reconnect_max_s);
	snprintf(delay, sizeof(delay), "%.1f", t);
	logkv(LOG_ERR, "imap_error", "account", w->acct->name, "mailbox",
	    w->mailbox, "msg", err->msg, "retry_in_s", delay, KV_END);
	w->state = W_DOWN;
	w->next = ingest_now() + t;
}

static void
store_down(struct daemon *d, const struct dm_error *err)
{
	char delay[32];
	double t;

	store_free(d->store);
	d->store = NULL;
	d->store_failures++;
	t = jittered(d->store_failures - 1, d->cfg.reconnect_max_s);
	snprintf(delay, sizeof(delay), "%.1f", t);
	logkv(LOG_ERR, "db_error", "msg", err->msg, "retry_in_s", delay, KV_END);
	d->store_next = ingest_now() + t;
}

static int
store_up(struct daemon *d)
{
	struct dm_error err;

	if (d->store != NULL)
		return 0;
	if (ingest_now() < d->store_next)
		return -1;
	dm_error_clear(&err);
	if (store_connect(&d->store, d->cfg.conninfo, &err) != 0 ||
	    store_check_schema(d->store, &err) != 0) {
		store_down(d, &err);
		return -1;
	}
	store_set_batch(d->store, d->cfg.batch_reports, d->cfg.batch_ms);
	store_set_tmpdir(d->store, d->cfg.tmpdir);
	if (d->store_failures > 0)
		logkv(LOG_INFO, "db_connected", KV_END);
	return 0;
}

/* After a pass that stored reports: raise and post alerts (docs/alerts.md).
 * A failure is logged, never fatal: the alerts wait for the next pass. */
static void
watch_alerts(struct daemon *d)
{
	struct alerts_result r;
	struct dm_error err;
	char raised[16], sent[16], waiting[16];

	if (!alerts_enabled(&d->cfg) || d->store == NULL)
		return;
	dm_error_clear(&err);
	if (alerts_run(d->store, &d->cfg, &r, &err) != 0) {
		logkv(LOG_ERR, "alerts_error", "msg", err.msg, KV_END);
		return;
	}
	if (r.raised == 0 && r.sent == 0)
		return;
	snprintf(raised, sizeof(raised), "%u", r.raised);
	snprintf(sent, sizeof(sent), "%u", r.sent);
	snprintf(waiting, sizeof(waiting), "%u", r.waiting);
	logkv(LOG_INFO, "alerts", "raised", raised, "sent", sent, "waiting",
	    waiting, KV_END);
}

/*
 * One pass over a watch's mailbox: 0, or -1 when it must be tried again
 * (the watch is down, or PostgreSQL is: then at w->next).
 */
/*
 * compact - every COMPACT_EVERY seconds, the daily rollup rows appended an
 * hour ago or more, merged (store_compact()); at most COMPACT_MS a time,
 * so that the mailboxes are not kept waiting: what is left waits for the
 * next. A failure is logged; the data is stored and counted either way.
 */
#define COMPACT_EVERY	300
#define COMPACT_MS	20000

static void
compact(struct daemon *d)
{
	struct store_compact_tally t;
	struct dm_error err;
	char pairs[24], merged[24];

	d->compact_next = ingest_now() + COMPACT_EVERY;
	if (store_up(d) != 0)
		return;
	dm_error_clear(&err);
	if (store_compact(d->store, STORE_COMPACT_AGE, COMPACT_MS, &t,
	    &err) != 0) {
		logkv(LOG_WARNING, "compact_failed", "error", err.msg, KV_END);
		return;
	}
	if (t.pairs == 0)
		return;
	snprintf(pairs, sizeof(pairs), "%" PRIu64, t.pairs);
	snprintf(merged, sizeof(merged), "%" PRIu64, t.deleted);
	logkv(LOG_INFO, "compacted", "days", pairs, "rows_merged", merged,
	    "more", t.more ? "yes" : "no", KV_END);
}

static int
watch_fetch(struct daemon *d, struct watch *w)
{
	struct ingest_run run;
	struct dm_error err;
	unsigned fetched = 0, passes;
	int rc = 0, db = 0, passed = 0;
	char n[16];

	if (store_up(d) != 0) {
		w->next = d->store_next;
		return -1;
	}
	dm_error_clear(&err);
	ingest_run_init(&run, &d->cfg);
	run.cmd = "run";
	run.quiet = 1;
	run.store = d->store;
	/*
	 * Again until a pass finds nothing: news of mail that came during a
	 * pass was taken in by its commands, and IDLE would not tell it
	 * again.
	 */
	for (passes = 0; passes < 16 && !stop_requested; passes++) {
		unsigned got = 0;

		if (fetch_mailbox(&run, &w->ss, w->mailbox, d->spool, &got,
		    &db, &err) != 0) {
			rc = -1;
			if (stop_requested && !db) {
				/* A wait the signal cut short: the session is
				 * in no state for a LOGOUT. */
				session_close(&w->ss, 0);
				w->state = W_DOWN;
			} else if (db) {
				/* PostgreSQL: the mail stays; IMAP is
				 * fine. */
				store_down(d, &err);
				w->next = d->store_next;
			} else
				watch_down(d, w, &err);
			break;
		}
		fetched += got;
		passed = 1;
		if (got == 0)
			break;
	}
	/*
	 * A stop asked before the first pass ended: no mailbox was read to
	 * its end (none may even be selected), so no IDLE may follow.
	 */
	if (rc == 0 && !passed)
		rc = -1;
	if (rc == 0) {
		w->failures = 0;
		d->store_failures = 0;
	}
	if (fetched > 0 || run.inputs > 0) {
		char st[24], du[24], rj[24], rec[24];

		snprintf(n, sizeof(n), "%u", fetched);
		snprintf(st, sizeof(st), "%" PRIu64, run.stored + run.revisions
		    + run.failures);
		snprintf(du, sizeof(du), "%" PRIu64, run.duplicates);
		snprintf(rj, sizeof(rj), "%" PRIu64, run.rejected);
		snprintf(rec, sizeof(rec), "%" PRIu64, run.records);
		logkv(LOG_INFO, "fetched", "account", w->acct->name, "mailbox",
		    w->mailbox, "messages", n, "stored", st, "duplicates", du,
		    "rejected", rj, "records", rec, KV_END);
	}
	if (run.stored + run.revisions > 0)
		rdns_kick(d);
	if (rc == 0 && run.stored + run.revisions > 0)
		watch_alerts(d);
	free(run.lines);
	return rc;
}

static void
watch_connect(struct daemon *d, struct watch *w)
{
	struct dm_error err;

	dm_error_clear(&err);
	if (session_open(&w->ss, &err) != 0) {
		watch_down(d, w, &err);
		return;
	}
	logkv(LOG_INFO, "connected", "account", w->acct->name, "mailbox",
	    w->mailbox, "server", imap_name(w->ss.conn), "idle",
	    imap_has_idle(w->ss.conn) ? "yes" : "no", KV_END);
	w->state = W_POLL;
	w->next = ingest_now();
	/* failures is reset by a complete pass, not by a login: a server
	 * that takes the login and fails the pass is not hammered. */
}

static void
watch_wait(struct daemon *d, struct watch *w)
{
	struct dm_error err;

	dm_error_clear(&err);
	if (w->state != W_POLL || w->ss.conn == NULL || stop_requested)
		return;
	if (imap_has_idle(w->ss.conn)) {
		if (imap_idle_start(w->ss.conn, &err) != 0) {
			watch_down(d, w, &err);
			return;
		}
		w->state = W_IDLE;
		w->idle_since = ingest_now();
	} else
		w->next = ingest_now() + d->cfg.poll_interval_s;
}

static int
daemon_setup(struct daemon *d, struct dm_error *err)
{
	size_t i, j, k = 0;

	dm_config_init(&d->cfg);
	if (dm_config_load(&d->cfg, d->o.config, err) != 0 ||
	    (d->o.db != NULL && dm_config_set_db(&d->cfg, d->o.db, err) != 0))
		return -1;
	setup_logging(&d->cfg);
	if (d->cfg.naccounts == 0)
		return dm_error_set(err, DM_E_USAGE, "no [account NAME] in %s; "
		    "see docs/imap.md", d->cfg.path[0] != '\0' ? d->cfg.path :
		    "the configuration (none was read)");
	for (i = 0; i < d->cfg.naccounts; i++)
		k += d->cfg.accounts[i].nmailboxes;
	d->w = calloc(k, sizeof(*d->w));
	d->tokens = calloc(d->cfg.naccounts, sizeof(*d->tokens));
	if (d->w == NULL || d->tokens == NULL)
		return dm_error_set(err, DM_E_NOMEM, "out of memory");
	for (i = 0; i < d->cfg.naccounts; i++)
		for (j = 0; j < d->cfg.accounts[i].nmailboxes; j++) {
			struct watch *w = &d->w[d->nw++];

			w->acct = &d->cfg.accounts[i];
			w->mailbox = w->acct->mailboxes[j];
			w->ss.acct = w->acct;
			w->ss.token = &d->tokens[i];
			w->state = W_DOWN;
			w->next = 0;
		}
	d->spool = open_spool(&d->cfg, err);
	return d->spool < 0 ? -1 : 0;
}

static void
daemon_teardown(struct daemon *d)
{
	size_t i;

	rdns_bg_stop(&d->rdns);
	for (i = 0; i < d->nw; i++) {
		struct dm_error err;

		if (d->w[i].state == W_IDLE && d->w[i].ss.conn != NULL)
			imap_idle_done(d->w[i].ss.conn, &err);
		session_close(&d->w[i].ss, d->w[i].state != W_DOWN);
	}
	free(d->w);
	d->w = NULL;
	d->nw = 0;
	if (d->tokens != NULL)
		explicit_bzero(d->tokens, d->cfg.naccounts *
		    sizeof(*d->tokens));
	free(d->tokens);
	d->tokens = NULL;
	if (d->spool >= 0)
		close(d->spool);
	d->spool = -1;
	store_free(d->store);
	d->store = NULL;
	dm_config_free(&d->cfg);
}

static void
daemon_step(struct daemon *d)
{
	struct pollfd pfd[DM_CONFIG_MAX_ACCOUNTS * DM_CONFIG_MAX_MAILBOXES];
	size_t map[DM_CONFIG_MAX_ACCOUNTS * DM_CONFIG_MAX_MAILBOXES];
	double now = ingest_now(), wait = 1.0;
	size_t i, np = 0;
	int r, ready = 0;

	rdns_reap(d);
	if (now >= d->compact_next) {
		compact(d);
		now = ingest_now();
	}
	if (d->compact_next - now < wait)
		wait = d->compact_next - now;
	for (i = 0; i < d->nw && !stop_requested; i++) {
		struct watch *w = &d->w[i];

		if (w->state == W_DOWN && now >= w->next) {
			watch_connect(d, w);
			now = ingest_now();
		}
		if (w->state == W_POLL && now >= w->next) {
			/* IDLE only once the mailbox is read to its end. */
			if (watch_fetch(d, w) == 0)
				watch_wait(d, w);
			now = ingest_now();
		}
		if (w->state == W_IDLE) {
			if (imap_idle_pending(w->ss.conn))
				ready = 1;
			pfd[np].fd = imap_idle_fd(w->ss.conn);
			pfd[np].events = POLLIN;
			pfd[np].revents = 0;
			map[np++] = i;
		} else if (w->next - now < wait)
			wait = w->next - now;
	}
	if (stop_requested || reload_requested)
		return;
	if (wait < 0.01)
		wait = 0.01;
	r = poll(pfd, np, ready ? 0 : (int)(wait * 1000));
	if (r < 0)
		return;		/* a signal */
	now = ingest_now();
	for (i = 0; i < np; i++) {
		struct watch *w = &d->w[map[i]];
		struct dm_error err;

		dm_error_clear(&err);
		if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)) &&
		    !imap_idle_pending(w->ss.conn) &&
		    now - w->idle_since < d->cfg.idle_restart_s)
			continue;
		/* News, or time to renew IDLE: DONE, then a pass. */
		if (imap_idle_done(w->ss.conn, &err) != 0) {
			watch_down(d, w, &err);
			continue;
		}
		w->state = W_POLL;
		w->next = now;
	}
}

int
cmd_run(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "db", required_argument, NULL, 'D' },
		{ "config", required_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct daemon d;
	struct dm_error err;
	struct api *api = NULL;
	char where[512];
	int c;

	memset(&d, 0, sizeof(d));
	d.spool = -1;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (c == 'h') {
			fputs(cmd_run_usage, stdout);
			return 0;
		}
		if (cmd_db_option(c, optarg, &d.o) != 0) {
			fputs(cmd_run_usage, stderr);
			return EX_USAGE;
		}
	}
	if (optind < argc) {
		fputs(cmd_run_usage, stderr);
		return EX_USAGE;
	}
	srandom((unsigned)time(NULL) ^ (unsigned)getpid());
	signals(1);
	dm_error_clear(&err);
	if (daemon_setup(&d, &err) != 0) {
		fprintf(stderr, "dmarcd run: %s\n", err.msg);
		daemon_teardown(&d);
		return cmd_exit_for(&err);
	}
	/* [api] listen: the HTTP API beside the collector (not reloaded). */
	if (d.cfg.api_nlisten > 0) {
		if (api_start(&d.cfg, &api, &err) != 0) {
			fprintf(stderr, "dmarcd run: %s\n", err.msg);
			daemon_teardown(&d);
			return cmd_exit_for(&err);
		}
		api_addresses(api, where, sizeof(where));
		if (cmd_api_role_writes(&d.cfg) > 0)
			logkv(LOG_WARNING, "api_role_writes", "why", "the API's "
			    "database role may write to dmarcd's tables: give "
			    "[api] database a role granted dmarcd_reader only",
			    KV_END);
		logkv(LOG_INFO, "api_listening", "addresses", where, KV_END);
	}
	logkv(LOG_INFO, "started", "config", d.cfg.path, KV_END);
	while (!stop_requested) {
		daemon_step(&d);
		if (reload_requested && !stop_requested) {
			struct daemon next;

			reload_requested = 0;
			memset(&next, 0, sizeof(next));
			next.o = d.o;
			next.spool = -1;
			dm_error_clear(&err);
			if (daemon_setup(&next, &err) != 0) {
				logkv(LOG_ERR, "reload_failed", "msg", err.msg,
				    "msg2", "keeping the configuration in use",
				    KV_END);
				daemon_teardown(&next);
				continue;
			}
			daemon_teardown(&d);
			d = next;
			logkv(LOG_INFO, "reloaded", "config", d.cfg.path, KV_END);
		}
	}
	logkv(LOG_INFO, "stopping", KV_END);
	api_stop(&api);
	daemon_teardown(&d);
	return EX_OK;
}
