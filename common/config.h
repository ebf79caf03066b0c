/*
 * config.h - dmarcd.conf, the environment and --db, in that order.
 *
 * A struct dm_config starts with the built-in defaults (dm_config_init),
 * then takes the configuration file (dm_config_load), then $DMARCD_DB if
 * set and not empty (also dm_config_load), then the caller's --db
 * (dm_config_set_db): each later source overrides the earlier ones.
 *
 * The file is, in order: the path the caller gives (--config FILE; it
 * must exist), else $DMARCD_CONFIG if set and not empty (must exist),
 * else DM_CONFIG_DEFAULT_PATH if it exists; with none, the defaults stay.
 * It is INI, read with libinih, which is loaded on first use (common/dl.h)
 * so that commands that read no configuration never map it:
 *
 *	[database]
 *	conninfo = host=/var/run/postgresql dbname=dmarcd
 *	api_conninfo = ...		; = [api] database; give one of them
 *	admin_conninfo = ...		; dmarcd token's; default conninfo
 *	[ingest]
 *	batch_reports = 100		; 1..10000
 *	batch_ms = 500			; 1..60000
 *	keep_bodies = false		; true/false/yes/no/on/off/1/0
 *	tmpdir = /tmp			; an absolute path
 *	[limits]
 *	max_input_bytes = 4G		; K/M/G suffixes, 1024-based
 *	max_ratio = 250			; 0..1000000, 0: no check
 *	max_message_bytes = 64M
 *	[log]
 *	level = info			; error|warning|info|debug
 *	syslog = no			; key=value lines to syslog (mail)
 *	[daemon]
 *	poll_interval = 60		; 1..86400 seconds
 *	idle_restart = 1740		; 10..1740 seconds
 *	reconnect_max = 300		; 1..3600 seconds
 *	[resolve]			; dmarcd resolve (docs/resolve.md)
 *	servers = 127.0.0.1:5353, [::1]	; default: resolv.conf's
 *	concurrency = 64		; 1..1024 addresses at once
 *	timeout = 5			; 1..60 seconds per query
 *	deadline = 600			; 1..86400 seconds per run
 *	[api]				; dmarcd serve, and run with listen
 *	listen = 127.0.0.1:8025, [::1]:8025	; up to 8 ADDR:PORT (port 0: any)
 *	database = ...			; a login with dmarcd_reader
 *	threads = 4			; 1..256, per address
 *	max_connections = 256		; 1..100000, per address
 *	request_timeout = 30		; 1..3600 s: idle connection, statements
 *	token_cache = 30		; 0..3600 s a valid token is remembered
 *	answer_cache = 300		; 0..86400 s an analytics answer is kept
 *	tls_cert = /etc/dmarcd/api.crt	; PEM, both or neither
 *	tls_key = /etc/dmarcd/api.key
 *	status_public = false		; the status page at / without a token
 *	[alerts]			; docs/alerts.md
 *	webhook = https://hooks.example.com/...	; or webhook_file = PATH
 *	format = json			; json|slack
 *	secret_file = /etc/dmarcd/alerts.key	; HMAC-SHA256 of the body
 *	min_messages = 100		; 1..1000000000
 *	share_drop = 5			; 1..100 percentage points
 *	window_days = 7			; 1..90
 *	max_per_hour = 10		; 1..3600
 *	timeout = 10			; 1..300 seconds
 *	ca_file = /etc/ssl/...		; "": the system store
 *	[account NAME]			; any number, up to 64: IMAP
 *	host = imap.example.com		; required
 *	user = dmarc@example.com	; required
 *	password_file = /etc/dmarcd/imap.pass	; or password = ...
 *	...				; see docs/imap.md
 *
 * contrib/dmarcd.conf.example documents each key. The file is strict: a
 * key may appear once; a key outside a section, an unknown section or key,
 * a bad value and a line longer than libinih's buffer are all errors. ';'
 * after white space starts a comment (libinih), so a value cannot hold
 * " ;".
 *
 * [resolve] servers is a comma-separated list of up to
 * DM_CONFIG_RESOLVE_MAX_SERVERS addresses (IPv4, IPv6, either with
 * :PORT, an IPv6 address with a port in brackets), no host names: see
 * dm_config_parse_servers().
 *
 * Accounts: NAME is 1 to 64 letters, digits, '.', '_' or '-', compared
 * exactly; a section [account NAME] may appear once per file. Once the
 * whole file is read each account is checked: host and user are
 * required; a password (password or password_file) unless auth is
 * xoauth2; with xoauth2 (auth = auto with oauth2_token_url set is turned
 * into DM_AUTH_XOAUTH2 here) oauth2_token_url, oauth2_client_id and a
 * refresh token (oauth2_refresh_token or its _file). The *_file keys
 * (password_file, oauth2_client_secret_file, oauth2_refresh_token_file)
 * are read at load time: an absolute path to a regular file that group
 * and others cannot use at all (mode & 077 == 0), one line (trailing
 * CR/LF dropped), not empty, short enough for its field. A key and its
 * _file may not both be set. A secret written in the file itself (password,
 * oauth2_client_secret, oauth2_refresh_token, webhook, and a conninfo,
 * api_conninfo or [api] database that holds a password: one that
 * dm_config_redact() changes) is refused unless the file follows the
 * *_file rule too (mode & 077 == 0); a file without one may be 0644.
 *
 * As root (euid 0) the file and every *_file are opened with O_NOFOLLOW
 * (a symbolic link is refused), the file must belong to root and be
 * writable by no one else (mode & 022 == 0), and every *_file must
 * belong to root: otherwise another user could write a configuration, or
 * swap a file, that makes root read one of root's files.
 *
 * mailboxes is a comma-separated list (names
 * trimmed, not empty, at most DM_CONFIG_MAX_MAILBOXES, no name twice;
 * INBOX in any case is INBOX); neither folder may be one of them.
 * oauth2_token_url is https://, or http:// to a loopback host (127/8,
 * [::1], localhost). Passwords, secrets and tokens hold no control
 * character. The [alerts] webhook URL may hold a secret (a Slack webhook's
 * path): like a password it is never quoted, and webhook_file reads it
 * from a private file as password_file does; it is https://, or http://
 * to a loopback host; webhook and webhook_file exclude each other. A
 * second file loaded into the same struct replaces an
 * account of the same NAME whole and keeps the others.
 *
 * DIAGNOSTICS
 *	All functions that can fail return 0 or -1 and fill err:
 *	DM_E_USAGE	a bad file: "PATH:LINE: [section] key: why"
 *			("PATH:LINE: [account NAME] key: why" in an account;
 *			a check made once the whole file is read names the
 *			[account NAME] line), or "PATH:LINE: why" for a line
 *			libinih cannot parse; a *_file that cannot be opened
 *			or read, is not a regular file, or is open to group
 *			or others ("PATH:LINE: [account NAME] password_file:
 *			FILE is readable by others (mode 0644); chmod 600
 *			it"); a secret written in a file that group or
 *			others may use ("PATH:LINE: [section] key: a secret
 *			written in this file, ... (mode 0644): chmod 600
 *			PATH ..., or move it to key_file"); as root, a
 *			symbolic link (the file or a *_file), a file of
 *			another user or one that group or others may write;
 *			a DMARCD_DB or --db longer than
 *			DM_CONFIG_CONNINFO_MAX
 *	DM_E_NOINPUT	the file named by --config or DMARCD_CONFIG does
 *			not exist; a file that exists cannot be opened
 *			(strerror) or is not a regular file
 *	DM_E_IO		a read error of the file (strerror)
 *	DM_E_UNAVAILABLE libinih cannot be loaded (only if there is a file)
 *	DM_E_NOMEM	out of memory (accounts and mailboxes are allocated)
 *	Messages never quote the value of a conninfo (use dm_config_redact()
 *	to show one), of a password, a client secret, a token or a webhook
 *	URL, nor the content of a *_file.
 *
 * OWNERSHIP
 *	A struct dm_config owns its accounts (and their mailboxes): never
 *	copy one by assignment or memcpy (both copies would free the same
 *	memory); use dm_config_copy(). dm_config_free() releases them, after
 *	zeroing the secrets.
 */
#ifndef DM_CONFIG_H
#define DM_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#ifndef DM_CONFIG_DEFAULT_PATH
#define DM_CONFIG_DEFAULT_PATH	"/etc/dmarcd/dmarcd.conf"
#endif

/* Environment variables read by dm_config_load(). */
#define DM_CONFIG_ENV_PATH	"DMARCD_CONFIG"
#define DM_CONFIG_ENV_DB	"DMARCD_DB"

/* Defaults of [ingest]; [limits] defaults come from common/limits.h. */
#define DM_CONFIG_BATCH_REPORTS	100
#define DM_CONFIG_BATCH_MS	500
#define DM_CONFIG_TMPDIR	"/tmp"

/* Defaults of [daemon]. */
#define DM_CONFIG_POLL_INTERVAL_S	60
#define DM_CONFIG_IDLE_RESTART_S	1740	/* RFC 2177: under 30 min */
#define DM_CONFIG_RECONNECT_MAX_S	300

/* Defaults of [resolve]. */
#define DM_CONFIG_RESOLVE_CONCURRENCY	64
#define DM_CONFIG_RESOLVE_TIMEOUT_S	5
#define DM_CONFIG_RESOLVE_DEADLINE_S	600
#define DM_CONFIG_RESOLVE_MAX_SERVERS	8
/* "[IPv6]:65535," per server, and the NUL. */
#define DM_CONFIG_SERVERS_MAX	(DM_CONFIG_RESOLVE_MAX_SERVERS * 56 + 1)

/* Defaults of [api]. */
#define DM_CONFIG_API_THREADS		4
#define DM_CONFIG_API_MAX_CONNECTIONS	256
#define DM_CONFIG_API_REQUEST_TIMEOUT_S	30
#define DM_CONFIG_API_HEADER_TIMEOUT_S	10
#define DM_CONFIG_API_ANSWER_TIMEOUT_S	60
#define DM_CONFIG_API_MAX_CONNECTIONS_PER_IP	64
#define DM_CONFIG_API_TOKEN_CACHE_S	30
#define DM_CONFIG_API_ANSWER_CACHE_S	300
#define DM_CONFIG_MAX_LISTEN		8	/* [api] listen addresses */

/* Defaults of [alerts]. */
#define DM_CONFIG_ALERTS_MIN_MESSAGES	100
#define DM_CONFIG_ALERTS_SHARE_DROP	5	/* percentage points */
#define DM_CONFIG_ALERTS_WINDOW_DAYS	7
#define DM_CONFIG_ALERTS_MAX_PER_HOUR	10
#define DM_CONFIG_ALERTS_TIMEOUT_S	10

enum dm_alerts_format { DM_ALERTS_JSON, DM_ALERTS_SLACK };

/* Defaults of [account NAME]. */
#define DM_CONFIG_IMAPS_PORT		993
#define DM_CONFIG_IMAP_PORT		143	/* starttls and none */
#define DM_CONFIG_MAILBOX		"INBOX"
#define DM_CONFIG_PROCESSED_FOLDER	"dmarcd-processed"
#define DM_CONFIG_REJECTED_FOLDER	"dmarcd-rejected"
#define DM_CONFIG_FETCH_BATCH		50
#define DM_CONFIG_TIMEOUT_S		60

/* Other strings are held in the structs, with these sizes. */
#define DM_CONFIG_CONNINFO_MAX	1024	/* with the NUL */
#define DM_CONFIG_PATH_MAX	4096	/* with the NUL */

#define DM_CONFIG_MAX_ACCOUNTS	64	/* all files loaded together */
#define DM_CONFIG_MAX_MAILBOXES	32	/* per account */
#define DM_CONFIG_ACCOUNT_NAME_MAX 64	/* without the NUL */
#define DM_CONFIG_MAILBOX_MAX	255	/* a mailbox or folder name */

enum dm_tls { DM_TLS_IMAPS, DM_TLS_STARTTLS, DM_TLS_NONE };
enum dm_auth {
	DM_AUTH_AUTO, DM_AUTH_LOGIN, DM_AUTH_PLAIN, DM_AUTH_XOAUTH2
};

/*
 * One [api] listen address: host is an IPv4 or IPv6 literal (without the
 * brackets; "localhost" is read as 127.0.0.1), port 0 asks for any free
 * port.
 */
struct dm_listen {
	char host[64];
	unsigned port;
	int ipv6;
};

/* One [account NAME]: what dm_config_load() checked (see above). */
struct dm_account {
	char name[DM_CONFIG_ACCOUNT_NAME_MAX + 1];
	char host[256];
	unsigned port;		/* 0 until loaded; 993 (imaps) or 143 */
	int tls;			/* enum dm_tls */
	int tls_none_explicit;		/* tls = none was written */
	int tls_verify;			/* default 1 */
	char ca_file[DM_CONFIG_PATH_MAX];	/* "" = system store */
	char user[256];
	char password[1024];		/* from password or password_file */
	int password_set;
	int auth;		/* enum dm_auth; not auto with a token URL */
	char oauth2_token_url[1024];
	char oauth2_client_id[512];
	char oauth2_client_secret[1024]; /* the key or the _file; "": none */
	char oauth2_refresh_token[4096];	/* from the key or the _file */
	/* malloc'd; default one: "INBOX" */
	char *mailboxes[DM_CONFIG_MAX_MAILBOXES];
	unsigned nmailboxes;
	char processed_folder[256];	/* default "dmarcd-processed" */
	char rejected_folder[256];	/* default "dmarcd-rejected" */
	int delete_after_store;
	unsigned fetch_batch;		/* 1..1000, default 50 */
	unsigned timeout_s;		/* 1..3600, default 60 */
};

struct dm_config {
	char conninfo[DM_CONFIG_CONNINFO_MAX];	/* "": libpq's defaults */
	char api_conninfo[DM_CONFIG_CONNINFO_MAX];
	int api_conninfo_set;	/* 0: the API uses conninfo */
	char admin_conninfo[DM_CONFIG_CONNINFO_MAX];
	int admin_conninfo_set;	/* 0: dmarcd token uses conninfo */
	unsigned batch_reports;	/* small reports per transaction */
	unsigned batch_ms;	/* longest time a batch stays open */
	int keep_bodies;	/* keep failure reports' original bodies */
	char tmpdir[DM_CONFIG_PATH_MAX];
	uint64_t max_input_bytes;	/* decompressed, per input */
	unsigned max_ratio;		/* per layer; 0: no check */
	uint64_t max_message_bytes;	/* a mail held for MIME parsing */
	int log_level;		/* syslog(3): LOG_ERR .. LOG_DEBUG */
	int log_syslog;		/* [log] syslog: also log to syslog */
	unsigned poll_interval_s;	/* between polls without IDLE */
	unsigned idle_restart_s;	/* IDLE is renewed after this */
	unsigned reconnect_max_s;	/* longest wait between reconnects */
	/* [resolve]: "ADDR:PORT,..." (dm_config_parse_servers), or "" */
	char resolve_servers[DM_CONFIG_SERVERS_MAX];
	unsigned resolve_concurrency;	/* addresses resolved at once */
	unsigned resolve_timeout_s;	/* per query, retries included */
	unsigned resolve_deadline_s;	/* one dmarcd resolve */
	/* [api]; api_conninfo above is [api] database */
	struct dm_listen api_listen[DM_CONFIG_MAX_LISTEN];
	unsigned api_nlisten;		/* 0: no listen: no API */
	unsigned api_threads;		/* per listen address */
	unsigned api_max_connections;	/* per listen address */
	unsigned api_request_timeout_s;
	unsigned api_header_timeout_s;	/* a request's head, in all */
	unsigned api_answer_timeout_s;	/* request line to answer sent; 0: off */
	unsigned api_max_connections_per_ip;	/* 0: no cap per client */
	unsigned api_token_cache_s;	/* 0: every request asks */
	unsigned api_answer_cache_s;	/* 0: analytics never kept */
	char api_tls_cert[DM_CONFIG_PATH_MAX];	/* "": plain HTTP */
	char api_tls_key[DM_CONFIG_PATH_MAX];
	int api_status_public;		/* the status page without a token */
	/* [alerts]: no webhook, no alerts sent. */
	char alerts_webhook[2048];	/* a secret: never quoted */
	int alerts_format;		/* enum dm_alerts_format */
	char alerts_secret[1024];	/* from secret_file; "": unsigned */
	unsigned alerts_min_messages;	/* unauthorised sender threshold */
	unsigned alerts_share_drop;	/* aligned share, points */
	unsigned alerts_window_days;
	unsigned alerts_max_per_hour;
	unsigned alerts_timeout_s;
	char alerts_ca_file[DM_CONFIG_PATH_MAX];	/* "": system store */
	struct dm_account *accounts;	/* malloc'd, in file order */
	size_t naccounts;
	char path[DM_CONFIG_PATH_MAX];	/* the file read, or "" */
};

/*
 * dm_config_init - the built-in defaults (no account); never fails. c is
 * overwritten, not freed: use dm_config_free() on one that was loaded.
 */
void dm_config_init(struct dm_config *c);

/*
 * dm_config_copy - make dst a deep copy of src (dst is overwritten, not
 * freed first). On error (DM_E_NOMEM) dst holds the defaults.
 */
int dm_config_copy(struct dm_config *dst, const struct dm_config *src,
    struct dm_error *err);

/*
 * dm_config_load - read the configuration file (see above) into c, then
 * apply DMARCD_DB. explicit_path is --config's argument or NULL. On error
 * c keeps what it had before, and can still be freed.
 */
int dm_config_load(struct dm_config *c, const char *explicit_path,
    struct dm_error *err);

/* dm_config_load_file - read exactly the file at path (must exist). */
int dm_config_load_file(struct dm_config *c, const char *path,
    struct dm_error *err);

/*
 * dm_config_set_db - --db: replace conninfo with the caller's; DM_E_USAGE
 * if it does not fit in DM_CONFIG_CONNINFO_MAX.
 */
int dm_config_set_db(struct dm_config *c, const char *conninfo,
    struct dm_error *err);

/*
 * dm_config_parse_listen - "ADDR:PORT[, ADDR:PORT...]" (IPv6 in brackets)
 * into c's api_listen; 0, or -1 with a sentence in why (size bytes).
 */
int dm_config_parse_listen(struct dm_config *c, const char *text,
    char *why, size_t size);

/* dm_config_api_conninfo - api_conninfo, or conninfo when that is unset. */
const char *dm_config_api_conninfo(const struct dm_config *c);

/*
 * dm_config_admin_conninfo - admin_conninfo (a role granted dmarcd_admin,
 * for dmarcd token), or conninfo when that is unset.
 */
const char *dm_config_admin_conninfo(const struct dm_config *c);

/*
 * dm_config_free - release what c holds (the accounts, zeroed first):
 * back to the defaults.
 */
void dm_config_free(struct dm_config *c);

/* dm_config_account - the account named name (exactly), or NULL. */
const struct dm_account *dm_config_account(const struct dm_config *c,
    const char *name);

/* dm_config_default_conninfo - the built-in conninfo: "" for now. */
const char *dm_config_default_conninfo(void);

/* dm_config_log_level_name - "error", "warning", "info" or "debug". */
const char *dm_config_log_level_name(int level);

/*
 * dm_config_parse_size - a byte count: digits, then optionally K, M or G
 * (1024-based, either case) and optionally "B" or "iB" after it ("64M",
 * "64MB", "64MiB", "100B"). 0, or -1 for anything else and for overflow.
 */
int dm_config_parse_size(const char *text, uint64_t *value_r);

/*
 * dm_config_parse_servers - a DNS server list ("127.0.0.1:5353, [::1]:53,
 * 192.0.2.1, 2001:db8::1": addresses only, port 53 by default, at most
 * DM_CONFIG_RESOLVE_MAX_SERVERS, none twice) into the form c-ares reads
 * ("127.0.0.1:5353,[::1]:53,192.0.2.1:53,[2001:db8::1]:53") in out
 * (size bytes). 0, or -1 with why (a sentence naming the item at fault,
 * why_size bytes) for anything else.
 */
int dm_config_parse_servers(const char *text, char *out, size_t size,
    char *why, size_t why_size);

/*
 * dm_config_redact - copy conninfo into out (size bytes, always
 * terminated when size > 0) with every password replaced by "***": the
 * value of password= and sslpassword= in keyword/value form (quoted or
 * not) and in a URI's query, the password of a postgresql:// or
 * postgres:// URI's user info, and all of a dbname that is itself a
 * connection string. From a point where the string cannot be parsed,
 * the rest is replaced by "***". Returns the length of the whole
 * redacted string, as snprintf does: >= size means out was cut.
 */
size_t dm_config_redact(const char *conninfo, char *out, size_t size);

#endif
