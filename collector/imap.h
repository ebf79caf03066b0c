/*
 * imap.h - an IMAP session for the collector: the only code that uses
 * libetpan's IMAP API.
 *
 * libetpan speaks IMAP; the socket and TLS are ours. libetpan's own TLS
 * (GnuTLS on Debian) checks no certificate, so imap.c does the TLS itself
 * with GnuTLS, behind a libetpan stream driver: the server's chain is
 * verified against ca_file or the system store and its name against
 * host, with SNI, before a single IMAP command is sent (IMAPS) or before
 * anything after STARTTLS (and a server that sends bytes after its
 * STARTTLS answer, before the handshake, is refused: they would be read
 * as if they came over TLS). Plain IMAP is refused unless the host is a
 * loopback address or tls = none was written.
 *
 *	imap_open(&c, &params, &err);		connect, TLS, log in
 *	imap_select(c, "INBOX", &uidvalidity, &err);
 *	imap_search_after(c, last_uid, &uids, &n, &err);
 *	imap_fetch(c, uids, n, max_whole, each, ctx, &err);
 *	imap_move(c, uids, n, "dmarcd-processed", &err);
 *	imap_close(c);
 *
 * libetpan and GnuTLS are loaded on first use (common/dl.h).
 *
 * DIAGNOSTICS: -1 with err. DM_E_TEMP for everything the server or the
 * network did (cannot connect, TLS or certificate refused, login
 * refused, a command answered NO or BAD, the connection broke, a
 * timeout), so that cron runs again; DM_E_USAGE for what the
 * configuration asks and cannot be done (plain IMAP to a host that is
 * not a loopback address without tls = none, a CA file that cannot be
 * read, an XOAUTH2 login without a token); DM_E_UNAVAILABLE when
 * libetpan or GnuTLS cannot be loaded. Messages start with "HOST:PORT: "
 * and never quote a password or token.
 */
#ifndef COLLECTOR_IMAP_H
#define COLLECTOR_IMAP_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "common/error.h"

struct imap_conn;

struct imap_params {
	const char *host;
	unsigned port;		/* 0: 993 for IMAPS, else 143 */
	int tls;		/* enum dm_tls */
	int tls_none_explicit;	/* tls = none was written */
	int tls_verify;
	const char *ca_file;	/* NULL or "": the system store */
	const char *user;
	const char *password;	/* LOGIN, AUTHENTICATE PLAIN */
	int auth;		/* enum dm_auth */
	const char *oauth2_token;	/* XOAUTH2: the access token */
	unsigned timeout_s;
	/* called with a sentence for the log (tls_verify = no) */
	void (*warn)(void *ctx, const char *text);
	void *warn_ctx;
};

/* imap_open - connect, TLS as asked, log in. */
int imap_open(struct imap_conn **c_r, const struct imap_params *p,
    struct dm_error *err);
/* imap_close - LOGOUT (best effort) and free; c may be NULL. */
void imap_close(struct imap_conn *c);
/* imap_abandon - free without a word to the server (it is gone). */
void imap_abandon(struct imap_conn *c);
/* imap_auth_refused - whether the last imap_open failed at the login. */
int imap_auth_refused(const struct imap_conn *c);

/* "host:port" of the connection, for messages. */
const char *imap_name(const struct imap_conn *c);
/* Whether the server offers IDLE, MOVE. */
int imap_has_idle(struct imap_conn *c);
int imap_has_move(struct imap_conn *c);

/* imap_select - SELECT mailbox; its UIDVALIDITY. */
int imap_select(struct imap_conn *c, const char *mailbox,
    uint32_t *uidvalidity_r, struct dm_error *err);
/* imap_ensure_folder - CREATE folder unless it exists. */
int imap_ensure_folder(struct imap_conn *c, const char *folder,
    struct dm_error *err);
/*
 * imap_search_after - the UIDs above uid in the selected mailbox, in
 * ascending order (malloc'd; *n_r may be 0, then *uids_r is NULL).
 */
int imap_search_after(struct imap_conn *c, uint32_t uid, uint32_t **uids_r,
    size_t *n_r, struct dm_error *err);

/*
 * imap_fetch - the messages uids[0..n) (ascending), each whole: each() is
 * called once per message with its UID and size, then data() with its
 * bytes in order, possibly in several parts. Messages up to
 * max_whole bytes come with others in one UID FETCH; a bigger one is
 * fetched in parts of at most IMAP_PART bytes, so that memory stays
 * bounded whatever the size of a message. A UID that is gone (expunged
 * meanwhile) is skipped. A callback returning -1 stops with its err.
 */
#define IMAP_PART	(1024 * 1024)
struct imap_fetch_cb {
	void *ctx;
	int (*begin)(void *ctx, uint32_t uid, uint64_t size,
	    struct dm_error *err);
	int (*data)(void *ctx, const void *p, size_t len,
	    struct dm_error *err);
	int (*end)(void *ctx, struct dm_error *err);
};
int imap_fetch(struct imap_conn *c, const uint32_t *uids, size_t n,
    size_t max_whole, const struct imap_fetch_cb *cb, struct dm_error *err);

/*
 * imap_move - move the messages to folder (UID MOVE when offered, else
 * UID COPY, UID STORE +FLAGS.SILENT (\Deleted) and UID EXPUNGE, or
 * EXPUNGE without UIDPLUS); with folder NULL, delete them.
 */
int imap_move(struct imap_conn *c, const uint32_t *uids, size_t n,
    const char *folder, struct dm_error *err);

/* imap_noop - NOOP: the server is there, and news arrives. */
int imap_noop(struct imap_conn *c, struct dm_error *err);

/*
 * IDLE: imap_idle_start(), then poll() imap_idle_fd() for input (or
 * imap_idle_pending() says there is some already), then imap_idle_done()
 * before any other command.
 */
int imap_idle_start(struct imap_conn *c, struct dm_error *err);
int imap_idle_fd(struct imap_conn *c);
int imap_idle_pending(struct imap_conn *c);
int imap_idle_done(struct imap_conn *c, struct dm_error *err);

/*
 * imap_set_stop_flag - a flag a signal handler sets: a wait for the
 * network that a signal interrupts gives up when it is set (the command
 * fails as if the connection broke) instead of waiting out the timeout.
 */
void imap_set_stop_flag(volatile sig_atomic_t *flag);

/* imap_is_loopback - 127.0.0.0/8, ::1, "localhost". */
int imap_is_loopback(const char *host);

#endif
