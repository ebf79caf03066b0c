/*
 * config.c - dmarcd.conf, DMARCD_DB and --db (see config.h).
 *
 * libinih does the INI syntax; this file gives it lines through its own
 * reader, which counts them (so that every error names its line, whatever
 * INI_HANDLER_LINENO the library was built with), refuses a line longer
 * than libinih's buffer (libinih would cut it and parse the rest as a new
 * line), a NUL byte and an unknown [section], and stops at the first
 * error. The reader also keeps the current [section] itself: libinih cuts
 * a section name at 49 bytes, shorter than "account " and a NAME. The
 * file is parsed into a new configuration, which replaces the caller's
 * only when the whole file is good and every account in it is complete.
 *
 * A struct dm_config owns its accounts: inside this file a struct is
 * assigned only to move it (the source is dropped, never freed), and
 * dm_config_copy() copies one.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <unistd.h>
#include <sys/stat.h>
#include <ini.h>

#include "common/config.h"
#include "common/dl.h"
#include "common/limits.h"

#define INIH_SYMS(X, a) X(a, ini_parse_stream)

static struct inih_api {
	DM_DL_FIELDS(INIH_SYMS)
} inih;

static const struct dm_dl_sym inih_syms[] = {
	DM_DL_SYMS(struct inih_api, INIH_SYMS)
};

static struct dm_dl_lib inih_lib = DM_DL_LIB(INIH_SONAME,
    "to read the configuration file", inih_syms, &inih);

enum key_kind {
	KIND_CONNINFO,	/* char[DM_CONFIG_CONNINFO_MAX]; never quoted */
	KIND_UNSIGNED,	/* unsigned, min..max */
	KIND_SIZE,	/* uint64_t, K/M/G, min..max */
	KIND_BOOL,	/* int */
	KIND_PATH,	/* char[size], absolute */
	KIND_LOG_LEVEL,	/* int, a syslog priority */
	KIND_TEXT,	/* char[size]: not empty, no control character */
	KIND_HOST,	/* KIND_TEXT without white space */
	KIND_FOLDER,	/* KIND_TEXT, a mailbox name */
	KIND_URL,	/* char[size]: https://, or http:// to loopback */
	KIND_SECRET,	/* char[size]: KIND_TEXT, never quoted */
	KIND_SECRET_FILE, /* char[size]: the line of a private file */
	KIND_TLS,	/* int, enum dm_tls (account) */
	KIND_AUTH,	/* int, enum dm_auth */
	KIND_MAILBOXES,	/* the account's mailbox list */
	KIND_SERVERS,	/* char[size]: dm_config_parse_servers() */
	KIND_WEBHOOK,	/* char[size]: KIND_URL, never quoted */
	KIND_WEBHOOK_FILE, /* char[size]: KIND_WEBHOOK from a private file */
	KIND_ALERTS_FORMAT, /* int, enum dm_alerts_format */
	KIND_LISTEN	/* [api] listen: the address list */
};

struct key {
	const char *section;	/* "account": in every [account NAME] */
	const char *name;
	enum key_kind kind;
	size_t offset;		/* in struct dm_config or dm_account */
	size_t size;		/* of the field */
	uint64_t min, max;
};

#define FIELD_SIZE(type, f)	sizeof(((type *)0)->f)

#define KEY(s, n, k, f, lo, hi) \
	{ s, n, k, offsetof(struct dm_config, f), \
	  FIELD_SIZE(struct dm_config, f), lo, hi }

/* Keys that write the same field (a secret and its _file) exclude each
 * other. */
#define AKEY(n, k, f, lo, hi) \
	{ "account", n, k, offsetof(struct dm_account, f), \
	  FIELD_SIZE(struct dm_account, f), lo, hi }

static const struct key keys[] = {
	KEY("database", "conninfo", KIND_CONNINFO, conninfo, 0, 0),
	KEY("database", "api_conninfo", KIND_CONNINFO, api_conninfo, 0, 0),
	KEY("database", "admin_conninfo", KIND_CONNINFO, admin_conninfo, 0, 0),
	KEY("ingest", "batch_reports", KIND_UNSIGNED, batch_reports, 1, 10000),
	KEY("ingest", "batch_ms", KIND_UNSIGNED, batch_ms, 1, 60000),
	KEY("ingest", "keep_bodies", KIND_BOOL, keep_bodies, 0, 0),
	KEY("ingest", "tmpdir", KIND_PATH, tmpdir, 0, 0),
	KEY("limits", "max_input_bytes", KIND_SIZE, max_input_bytes, 1,
	    UINT64_MAX),
	KEY("limits", "max_ratio", KIND_UNSIGNED, max_ratio, 0, 1000000),
	KEY("limits", "max_message_bytes", KIND_SIZE, max_message_bytes, 1,
	    UINT64_MAX),
	KEY("log", "level", KIND_LOG_LEVEL, log_level, 0, 0),
	KEY("log", "syslog", KIND_BOOL, log_syslog, 0, 0),
	KEY("daemon", "poll_interval", KIND_UNSIGNED, poll_interval_s, 1,
	    86400),
	KEY("daemon", "idle_restart", KIND_UNSIGNED, idle_restart_s, 10,
	    1740),
	KEY("daemon", "reconnect_max", KIND_UNSIGNED, reconnect_max_s, 1,
	    3600),
	KEY("resolve", "servers", KIND_SERVERS, resolve_servers, 0, 0),
	KEY("resolve", "concurrency", KIND_UNSIGNED, resolve_concurrency, 1,
	    1024),
	KEY("resolve", "timeout", KIND_UNSIGNED, resolve_timeout_s, 1, 60),
	KEY("resolve", "deadline", KIND_UNSIGNED, resolve_deadline_s, 1,
	    86400),
	KEY("api", "listen", KIND_LISTEN, api_listen, 0, 0),
	KEY("api", "database", KIND_CONNINFO, api_conninfo, 0, 0),
	KEY("api", "threads", KIND_UNSIGNED, api_threads, 1, 256),
	KEY("api", "max_connections", KIND_UNSIGNED, api_max_connections, 1,
	    100000),
	KEY("api", "request_timeout", KIND_UNSIGNED, api_request_timeout_s, 1,
	    3600),
	KEY("api", "header_timeout", KIND_UNSIGNED, api_header_timeout_s, 1,
	    3600),
	KEY("api", "answer_timeout", KIND_UNSIGNED, api_answer_timeout_s, 0,
	    86400),
	KEY("api", "max_connections_per_ip", KIND_UNSIGNED,
	    api_max_connections_per_ip, 0, 100000),
	KEY("api", "token_cache", KIND_UNSIGNED, api_token_cache_s, 0, 3600),
	KEY("api", "answer_cache", KIND_UNSIGNED, api_answer_cache_s, 0, 86400),
	KEY("api", "tls_cert", KIND_PATH, api_tls_cert, 0, 0),
	KEY("api", "tls_key", KIND_PATH, api_tls_key, 0, 0),
	KEY("api", "status_public", KIND_BOOL, api_status_public, 0, 0),
	KEY("alerts", "webhook", KIND_WEBHOOK, alerts_webhook, 0, 0),
	KEY("alerts", "webhook_file", KIND_WEBHOOK_FILE, alerts_webhook, 0,
	    0),
	KEY("alerts", "format", KIND_ALERTS_FORMAT, alerts_format, 0, 0),
	KEY("alerts", "secret_file", KIND_SECRET_FILE, alerts_secret, 0, 0),
	KEY("alerts", "min_messages", KIND_UNSIGNED, alerts_min_messages, 1,
	    1000000000),
	KEY("alerts", "share_drop", KIND_UNSIGNED, alerts_share_drop, 1, 100),
	KEY("alerts", "window_days", KIND_UNSIGNED, alerts_window_days, 1, 90),
	KEY("alerts", "max_per_hour", KIND_UNSIGNED, alerts_max_per_hour, 1,
	    3600),
	KEY("alerts", "timeout", KIND_UNSIGNED, alerts_timeout_s, 1, 300),
	KEY("alerts", "ca_file", KIND_PATH, alerts_ca_file, 0, 0),
};

#define NKEYS	(sizeof(keys) / sizeof(keys[0]))

static const struct key account_keys[] = {
	AKEY("host", KIND_HOST, host, 0, 0),
	AKEY("port", KIND_UNSIGNED, port, 1, 65535),
	AKEY("tls", KIND_TLS, tls, 0, 0),
	AKEY("tls_verify", KIND_BOOL, tls_verify, 0, 0),
	AKEY("ca_file", KIND_PATH, ca_file, 0, 0),
	AKEY("user", KIND_TEXT, user, 0, 0),
	AKEY("password", KIND_SECRET, password, 0, 0),
	AKEY("password_file", KIND_SECRET_FILE, password, 0, 0),
	AKEY("auth", KIND_AUTH, auth, 0, 0),
	AKEY("mailboxes", KIND_MAILBOXES, mailboxes, 0, 0),
	AKEY("processed_folder", KIND_FOLDER, processed_folder, 0, 0),
	AKEY("rejected_folder", KIND_FOLDER, rejected_folder, 0, 0),
	AKEY("delete_after_store", KIND_BOOL, delete_after_store, 0, 0),
	AKEY("fetch_batch", KIND_UNSIGNED, fetch_batch, 1, 1000),
	AKEY("timeout", KIND_UNSIGNED, timeout_s, 1, 3600),
	AKEY("oauth2_token_url", KIND_URL, oauth2_token_url, 0, 0),
	AKEY("oauth2_client_id", KIND_TEXT, oauth2_client_id, 0, 0),
	AKEY("oauth2_client_secret", KIND_SECRET, oauth2_client_secret, 0,
	    0),
	AKEY("oauth2_client_secret_file", KIND_SECRET_FILE,
	    oauth2_client_secret, 0, 0),
	AKEY("oauth2_refresh_token", KIND_SECRET, oauth2_refresh_token, 0,
	    0),
	AKEY("oauth2_refresh_token_file", KIND_SECRET_FILE,
	    oauth2_refresh_token, 0, 0),
};

#define NACCOUNT_KEYS	(sizeof(account_keys) / sizeof(account_keys[0]))

/* The largest field a *_file fills, and room for a CR LF after it. */
#define SECRET_READ_MAX	(FIELD_SIZE(struct dm_account, \
	oauth2_refresh_token) + 2)

static const struct {
	const char *name;
	int level;
} log_levels[] = {
	{ "error", LOG_ERR },
	{ "warning", LOG_WARNING },
	{ "info", LOG_INFO },
	{ "debug", LOG_DEBUG },
};

static const char *const tls_names[] = {
	[DM_TLS_IMAPS] = "imaps",
	[DM_TLS_STARTTLS] = "starttls",
	[DM_TLS_NONE] = "none",
};

static const char *const alerts_format_names[] = {
	[DM_ALERTS_JSON] = "json",
	[DM_ALERTS_SLACK] = "slack",
};

static const char *const auth_names[] = {
	[DM_AUTH_AUTO] = "auto",
	[DM_AUTH_LOGIN] = "login",
	[DM_AUTH_PLAIN] = "plain",
	[DM_AUTH_XOAUTH2] = "xoauth2",
};

/* What the parse knows of one [account NAME] besides its values. */
struct account_lines {
	int section_line;		/* of [account NAME] */
	int seen_line[NACCOUNT_KEYS];	/* 0: not set */
};

/* One parse of one file. */
struct parse {
	struct dm_config *config;	/* the new configuration */
	const char *path;
	FILE *fp;
	mode_t file_mode;	/* of the file: a secret in it needs 0600 */
	int line;		/* lines handed to libinih so far */
	int failed;		/* err holds the first error; stop reading */
	int error_line;		/* of that error */
	int read_errno;
	int seen_line[NKEYS];	/* where each key was set, 0: not yet */
	/* The current section, as read_line() saw it: "" before any. */
	char section[256];
	struct dm_account *account;	/* in an [account NAME], or NULL */
	struct account_lines *account_lines;	/* of that account */
	int key_in_section;	/* a key line since the last [section] */
	/* This file's accounts, in order. */
	struct dm_account *accounts;
	struct account_lines *lines;
	size_t naccounts;
	size_t accounts_cap;
	struct dm_error *err;
};

static void
account_init(struct dm_account *a, const char *name)
{
	memset(a, 0, sizeof(*a));
	snprintf(a->name, sizeof(a->name), "%s", name);
	a->port = 0;
	a->tls = DM_TLS_IMAPS;
	a->tls_verify = 1;
	a->auth = DM_AUTH_AUTO;
	snprintf(a->processed_folder, sizeof(a->processed_folder), "%s",
	    DM_CONFIG_PROCESSED_FOLDER);
	snprintf(a->rejected_folder, sizeof(a->rejected_folder), "%s",
	    DM_CONFIG_REJECTED_FOLDER);
	a->fetch_batch = DM_CONFIG_FETCH_BATCH;
	a->timeout_s = DM_CONFIG_TIMEOUT_S;
}

/* account_clear - free the mailboxes, then zero all (the secrets too). */
static void
account_clear(struct dm_account *a)
{
	unsigned i;

	for (i = 0; i < a->nmailboxes; i++)
		free(a->mailboxes[i]);
	explicit_bzero(a, sizeof(*a));
}

static void
accounts_free(struct dm_account *accounts, size_t count)
{
	size_t i;

	for (i = 0; i < count; i++)
		account_clear(&accounts[i]);
	free(accounts);
}

/* account_copy - dst (overwritten) as a deep copy of src; -1 on ENOMEM,
 * with dst cleared. */
static int
account_copy(struct dm_account *dst, const struct dm_account *src)
{
	unsigned i;

	*dst = *src;
	dst->nmailboxes = 0;
	for (i = 0; i < src->nmailboxes; i++) {
		dst->mailboxes[i] = strdup(src->mailboxes[i]);
		if (dst->mailboxes[i] == NULL) {
			account_clear(dst);
			return -1;
		}
		dst->nmailboxes++;
	}
	return 0;
}

/* settings_copy - all of src but its accounts, which dst does not get. */
static void
settings_copy(struct dm_config *dst, const struct dm_config *src)
{
	*dst = *src;
	dst->accounts = NULL;
	dst->naccounts = 0;
}

void
dm_config_init(struct dm_config *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->conninfo, sizeof(c->conninfo), "%s",
	    dm_config_default_conninfo());
	c->batch_reports = DM_CONFIG_BATCH_REPORTS;
	c->batch_ms = DM_CONFIG_BATCH_MS;
	c->keep_bodies = 0;
	snprintf(c->tmpdir, sizeof(c->tmpdir), "%s", DM_CONFIG_TMPDIR);
	c->max_input_bytes = DM_MAX_INPUT_BYTES;
	c->max_ratio = DM_MAX_RATIO;
	c->max_message_bytes = DM_MAX_MESSAGE_BYTES;
	c->log_level = LOG_INFO;
	c->log_syslog = 0;
	c->poll_interval_s = DM_CONFIG_POLL_INTERVAL_S;
	c->idle_restart_s = DM_CONFIG_IDLE_RESTART_S;
	c->reconnect_max_s = DM_CONFIG_RECONNECT_MAX_S;
	c->resolve_servers[0] = '\0';
	c->resolve_concurrency = DM_CONFIG_RESOLVE_CONCURRENCY;
	c->resolve_timeout_s = DM_CONFIG_RESOLVE_TIMEOUT_S;
	c->resolve_deadline_s = DM_CONFIG_RESOLVE_DEADLINE_S;
	c->api_threads = DM_CONFIG_API_THREADS;
	c->api_max_connections = DM_CONFIG_API_MAX_CONNECTIONS;
	c->api_request_timeout_s = DM_CONFIG_API_REQUEST_TIMEOUT_S;
	c->api_header_timeout_s = DM_CONFIG_API_HEADER_TIMEOUT_S;
	c->api_answer_timeout_s = DM_CONFIG_API_ANSWER_TIMEOUT_S;
	c->api_max_connections_per_ip = DM_CONFIG_API_MAX_CONNECTIONS_PER_IP;
	c->api_token_cache_s = DM_CONFIG_API_TOKEN_CACHE_S;
	c->api_answer_cache_s = DM_CONFIG_API_ANSWER_CACHE_S;
	c->alerts_format = DM_ALERTS_JSON;
	c->alerts_min_messages = DM_CONFIG_ALERTS_MIN_MESSAGES;
	c->alerts_share_drop = DM_CONFIG_ALERTS_SHARE_DROP;
	c->alerts_window_days = DM_CONFIG_ALERTS_WINDOW_DAYS;
	c->alerts_max_per_hour = DM_CONFIG_ALERTS_MAX_PER_HOUR;
	c->alerts_timeout_s = DM_CONFIG_ALERTS_TIMEOUT_S;
	c->accounts = NULL;
	c->naccounts = 0;
}

void
dm_config_free(struct dm_config *c)
{
	accounts_free(c->accounts, c->naccounts);
	explicit_bzero(c->alerts_webhook, sizeof(c->alerts_webhook));
	explicit_bzero(c->alerts_secret, sizeof(c->alerts_secret));
	dm_config_init(c);
}

int
dm_config_copy(struct dm_config *dst, const struct dm_config *src,
    struct dm_error *err)
{
	struct dm_account *accounts = NULL;
	size_t i;

	if (src->naccounts > 0) {
		accounts = calloc(src->naccounts, sizeof(*accounts));
		if (accounts == NULL)
			goto nomem;
		for (i = 0; i < src->naccounts; i++) {
			if (account_copy(&accounts[i], &src->accounts[i]) !=
			    0) {
				accounts_free(accounts, i);
				goto nomem;
			}
		}
	}
	settings_copy(dst, src);
	dst->accounts = accounts;
	dst->naccounts = src->naccounts;
	return 0;
nomem:
	dm_config_init(dst);
	return dm_error_set(err, DM_E_NOMEM, "out of memory copying the "
	    "configuration");
}

const struct dm_account *
dm_config_account(const struct dm_config *c, const char *name)
{
	size_t i;

	for (i = 0; i < c->naccounts; i++)
		if (strcmp(c->accounts[i].name, name) == 0)
			return &c->accounts[i];
	return NULL;
}

const char *
dm_config_default_conninfo(void)
{
	return "";
}

const char *
dm_config_api_conninfo(const struct dm_config *c)
{
	return c->api_conninfo_set ? c->api_conninfo : c->conninfo;
}

const char *
dm_config_admin_conninfo(const struct dm_config *c)
{
	return c->admin_conninfo_set ? c->admin_conninfo : c->conninfo;
}

const char *
dm_config_log_level_name(int level)
{
	size_t i;

	for (i = 0; i < sizeof(log_levels) / sizeof(log_levels[0]); i++)
		if (log_levels[i].level == level)
			return log_levels[i].name;
	return NULL;
}

/* One "ADDR:PORT" of len bytes into l; 0 or -1 with why. */
static int
parse_one_listen(const char *text, size_t len, struct dm_listen *l,
    char *why, size_t size)
{
	char host[64], port[8];
	const char *colon;
	struct in6_addr a6;
	struct in_addr a4;
	size_t hlen, plen, i;
	unsigned long value;

	memset(l, 0, sizeof(*l));
	if (len > 0 && text[0] == '[') {
		colon = memchr(text, ']', len);
		if (colon == NULL || (size_t)(colon - text) + 1 >= len ||
		    colon[1] != ':')
			goto bad;
		hlen = (size_t)(colon - text) - 1;
		if (hlen == 0 || hlen >= sizeof(host))
			goto bad;
		memcpy(host, text + 1, hlen);
		colon++;
		l->ipv6 = 1;
	} else {
		colon = NULL;
		for (i = len; i > 0; i--)
			if (text[i - 1] == ':') {
				colon = text + i - 1;
				break;
			}
		if (colon == NULL)
			goto bad;
		hlen = (size_t)(colon - text);
		if (hlen == 0 || hlen >= sizeof(host))
			goto bad;
		memcpy(host, text, hlen);
	}
	host[hlen] = '\0';
	plen = len - (size_t)(colon + 1 - text);
	if (plen == 0 || plen >= sizeof(port))
		goto bad;
	memcpy(port, colon + 1, plen);
	port[plen] = '\0';
	value = 0;
	for (i = 0; i < plen; i++) {
		if (port[i] < '0' || port[i] > '9')
			goto bad;
		value = value * 10 + (unsigned long)(port[i] - '0');
	}
	if (value > 65535)
		goto bad;
	if (!l->ipv6 && strcmp(host, "localhost") == 0)
		snprintf(host, sizeof(host), "127.0.0.1");
	if (l->ipv6 ? inet_pton(AF_INET6, host, &a6) != 1 :
	    inet_pton(AF_INET, host, &a4) != 1) {
		snprintf(why, size, "'%.*s' is not an IPv4 address, an IPv6 "
		    "address in brackets nor localhost", (int)hlen, host);
		return -1;
	}
	snprintf(l->host, sizeof(l->host), "%s", host);
	l->port = (unsigned)value;
	return 0;
bad:
	snprintf(why, size, "'%.*s' is not ADDR:PORT (127.0.0.1:8025, "
	    "[::1]:8025; port 0 to 65535)", (int)(len > 100 ? 100 : len), text);
	return -1;
}

int
dm_config_parse_listen(struct dm_config *c, const char *text, char *why,
    size_t size)
{
	struct dm_listen list[DM_CONFIG_MAX_LISTEN];
	unsigned n = 0;
	const char *item = text, *end;
	size_t len;

	for (;;) {
		while (*item == ' ' || *item == '\t')
			item++;
		end = strchr(item, ',');
		len = end != NULL ? (size_t)(end - item) : strlen(item);
		while (len > 0 && (item[len - 1] == ' ' ||
		    item[len - 1] == '\t'))
			len--;
		if (len == 0) {
			snprintf(why, size, "an empty address in the list");
			return -1;
		}
		if (n == DM_CONFIG_MAX_LISTEN) {
			snprintf(why, size, "more than %d addresses",
			    DM_CONFIG_MAX_LISTEN);
			return -1;
		}
		if (parse_one_listen(item, len, &list[n], why, size) != 0)
			return -1;
		n++;
		if (end == NULL)
			break;
		item = end + 1;
	}
	memcpy(c->api_listen, list, n * sizeof(list[0]));
	c->api_nlisten = n;
	return 0;
}

int
dm_config_set_db(struct dm_config *c, const char *conninfo,
    struct dm_error *err)
{
	size_t len = strlen(conninfo);

	if (len >= sizeof(c->conninfo))
		return dm_error_set(err, DM_E_USAGE, "the conninfo is longer "
		    "than %zu bytes", sizeof(c->conninfo) - 1);
	memcpy(c->conninfo, conninfo, len + 1);
	return 0;
}

int
dm_config_parse_size(const char *text, uint64_t *value_r)
{
	unsigned long long value;
	uint64_t mult = 1;
	const char *p;
	char *end;

	if (text[0] < '0' || text[0] > '9')
		return -1;
	errno = 0;
	value = strtoull(text, &end, 10);
	if (errno != 0)
		return -1;
	p = end;
	switch (*p) {
	case 'k': case 'K':
		mult = 1ULL << 10;
		break;
	case 'm': case 'M':
		mult = 1ULL << 20;
		break;
	case 'g': case 'G':
		mult = 1ULL << 30;
		break;
	}
	if (mult != 1) {
		p++;
		if (*p == 'i' && p[1] == 'B')
			p += 2;
		else if (*p == 'B')
			p++;
	} else if (*p == 'B')
		p++;
	if (*p != '\0' || (value != 0 && mult > UINT64_MAX / value))
		return -1;
	*value_r = (uint64_t)value * mult;
	return 0;
}

/* Digits only, no sign, no white space (libinih strips that). */
static int
parse_unsigned(const char *text, uint64_t *value_r, int *overflow_r)
{
	unsigned long long value;
	char *end;

	*overflow_r = 0;
	if (text[0] < '0' || text[0] > '9')
		return -1;
	errno = 0;
	value = strtoull(text, &end, 10);
	if (*end != '\0')
		return -1;
	if (errno == ERANGE) {
		*overflow_r = 1;
		return -1;
	}
	*value_r = value;
	return 0;
}

static int
parse_bool(const char *text, int *value_r)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };
	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(text, yes[i]) == 0) {
			*value_r = 1;
			return 0;
		}
		if (strcasecmp(text, no[i]) == 0) {
			*value_r = 0;
			return 0;
		}
	}
	return -1;
}

/* An index in names (count entries), or -1; any case. */
static int
parse_name(const char *text, const char *const *names, size_t count)
{
	size_t i;

	for (i = 0; i < count; i++)
		if (strcasecmp(text, names[i]) == 0)
			return (int)i;
	return -1;
}

/* Whether len bytes at s hold a byte below 0x20 or DEL (NUL too). */
static int
has_control(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 1;
	return 0;
}

static int
has_space(const char *s)
{
	for (; *s != '\0'; s++)
		if (isspace((unsigned char)*s))
			return 1;
	return 0;
}

/* 127.0.0.0/8, ::1 (bracketed or not) or localhost: len bytes at host. */
static int
host_is_loopback(const char *host, size_t len)
{
	char text[INET6_ADDRSTRLEN + 2];
	struct in_addr v4;
	struct in6_addr v6;

	if (len == 9 && strncasecmp(host, "localhost", 9) == 0)
		return 1;
	if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
		host++;
		len -= 2;
	}
	if (len >= sizeof(text))
		return 0;
	memcpy(text, host, len);
	text[len] = '\0';
	if (inet_pton(AF_INET, text, &v4) == 1)
		return (ntohl(v4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, text, &v6) == 1)
		return memcmp(&v6, &in6addr_loopback, sizeof(v6)) == 0;
	return 0;
}

/* https://HOST..., or http://HOST... with a loopback HOST. */
static int
url_ok(const char *url)
{
	const char *host, *end, *at, *colon;
	int secure;

	if (strncasecmp(url, "https://", 8) == 0) {
		secure = 1;
		host = url + 8;
	} else if (strncasecmp(url, "http://", 7) == 0) {
		secure = 0;
		host = url + 7;
	} else
		return 0;
	if (has_space(url) || has_control(url, strlen(url)))
		return 0;
	end = host + strcspn(host, "/?#");
	at = memchr(host, '@', (size_t)(end - host));
	if (at != NULL)
		host = at + 1;
	if (host[0] == '[') {
		colon = memchr(host, ']', (size_t)(end - host));
		if (colon == NULL)
			return 0;
		colon++;
	} else {
		colon = memchr(host, ':', (size_t)(end - host));
		if (colon == NULL)
			colon = end;
	}
	if (colon == host)
		return 0;
	return secure || host_is_loopback(host, (size_t)(colon - host));
}

/* Mailbox names: INBOX is the same in any case (RFC 3501 5.1). */
static int
mailbox_equal(const char *a, const char *b)
{
	if (strcasecmp(a, "INBOX") == 0 && strcasecmp(b, "INBOX") == 0)
		return 1;
	return strcmp(a, b) == 0;
}

static int
account_name_ok(const char *name)
{
	size_t len = strlen(name), i;

	if (len == 0 || len > DM_CONFIG_ACCOUNT_NAME_MAX)
		return 0;
	for (i = 0; i < len; i++)
		if (!isalnum((unsigned char)name[i]) && name[i] != '.' &&
		    name[i] != '_' && name[i] != '-')
			return 0;
	return 1;
}

static int
section_known(const char *section)
{
	size_t i;

	for (i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].section, section) == 0)
			return 1;
	return 0;
}

static int DM_PRINTF(3, 0)
vfail_at(struct parse *p, int line, const char *fmt, va_list ap)
{
	char why[DM_ERROR_MSG_MAX];

	vsnprintf(why, sizeof(why), fmt, ap);
	dm_error_set(p->err, DM_E_USAGE, "%s:%d: %s", p->path, line, why);
	p->failed = 1;
	p->error_line = line;
	return 0;		/* to libinih: an error */
}

static int DM_PRINTF(3, 4)
fail_at(struct parse *p, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail_at(p, line, fmt, ap);
	va_end(ap);
	return 0;
}

static int DM_PRINTF(2, 3)
parse_fail(struct parse *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail_at(p, p->line, fmt, ap);
	va_end(ap);
	return 0;
}

static int
parse_nomem(struct parse *p)
{
	dm_error_set(p->err, DM_E_NOMEM, "%s:%d: out of memory", p->path,
	    p->line);
	p->failed = 1;
	p->error_line = p->line;
	return 0;
}

/* Whether path itself (not what it points to) is a symbolic link. */
static int
is_symlink(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 && S_ISLNK(st.st_mode);
}

/*
 * inline_secret - a secret written in the file itself (key's value is
 * one): refused unless group and others can do nothing with the file, the
 * rule a *_file follows. fix says where else the secret may go. The
 * message names the file and the key, never the value.
 */
static int
inline_secret(struct parse *p, const char *section, const char *key,
    const char *fix)
{
	if ((p->file_mode & 077) == 0)
		return 1;
	return parse_fail(p, "[%s] %s: a secret written in this file, which "
	    "group or others can %s (mode %04o): chmod 600 %s (owned by the "
	    "user dmarcd runs as), or %s", section, key,
	    (p->file_mode & 044) != 0 ? "read" :
	    (p->file_mode & 022) != 0 ? "write" : "execute",
	    (unsigned)(p->file_mode & 07777), p->path, fix);
}

/* Whether a conninfo holds a password (or what may be one). */
static int
conninfo_has_secret(const char *conninfo)
{
	char redacted[2 * DM_CONFIG_CONNINFO_MAX + 16];
	size_t len;
	int differs;

	len = dm_config_redact(conninfo, redacted, sizeof(redacted));
	differs = len >= sizeof(redacted) || strcmp(redacted, conninfo) != 0;
	explicit_bzero(redacted, sizeof(redacted));
	return differs;
}

/*
 * read_secret_file - the one line of file, a regular file that only its
 * owner may use (and, when dmarcd runs as root, owned by root), into out
 * (size bytes, terminated). The message names
 * the file, never what it holds.
 */
static int
read_secret_file(struct parse *p, const char *section, const char *key,
    const char *file, char *out, size_t size)
{
	char buf[SECRET_READ_MAX + 1], extra;
	size_t len = 0, want = size + 1;	/* the line, a CR and a LF */
	struct stat st;
	ssize_t n = 0;
	int fd, saved;

	if (file[0] != '/')
		return parse_fail(p, "[%s] %s: '%s' is not an absolute path",
		    section, key, file);
	/* O_NONBLOCK: opening a FIFO must not hang; it is refused below.
	 * Root follows no link: whoever may change it would choose which of
	 * root's files is read (and sent to a server as a password). */
	fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK |
	    (geteuid() == 0 ? O_NOFOLLOW : 0));
	if (fd < 0 && errno == ELOOP && is_symlink(file))
		return parse_fail(p, "[%s] %s: %s is a symbolic link, which "
		    "dmarcd running as root does not follow; name the file "
		    "itself (readlink -f %s)", section, key, file, file);
	if (fd < 0)
		return parse_fail(p, "[%s] %s: cannot open %s: %s", section,
		    key, file, strerror(errno));
	if (fstat(fd, &st) != 0) {
		saved = errno;
		close(fd);
		return parse_fail(p, "[%s] %s: cannot stat %s: %s", section,
		    key, file, strerror(saved));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return parse_fail(p, "[%s] %s: %s is not a regular file",
		    section, key, file);
	}
	if ((st.st_mode & 077) != 0) {
		close(fd);
		return parse_fail(p, "[%s] %s: %s is %s by others (mode "
		    "%04o); chmod 600 it", section, key, file,
		    (st.st_mode & 044) != 0 ? "readable" :
		    (st.st_mode & 022) != 0 ? "writable" : "executable",
		    (unsigned)(st.st_mode & 07777));
	}
	/* Root reads only root's secrets: another user could swap them. */
	if (geteuid() == 0 && st.st_uid != 0) {
		close(fd);
		return parse_fail(p, "[%s] %s: %s belongs to uid %u, not to "
		    "root, which runs dmarcd; run dmarcd as that user "
		    "(runuser -u USER -- dmarcd ...) or chown root it", section,
		    key, file, (unsigned)st.st_uid);
	}
	while (len < want) {
		n = read(fd, buf + len, want - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	if (n >= 0 && len == want) {
		do
			n = read(fd, &extra, 1);
		while (n < 0 && errno == EINTR);
	}
	saved = errno;
	close(fd);
	if (n < 0) {
		explicit_bzero(buf, sizeof(buf));
		return parse_fail(p, "[%s] %s: cannot read %s: %s", section,
		    key, file, strerror(saved));
	}
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	if (n > 0 || len >= size) {
		explicit_bzero(buf, sizeof(buf));
		return parse_fail(p, "[%s] %s: %s holds more than %zu bytes",
		    section, key, file, size - 1);
	}
	if (len == 0)
		return parse_fail(p, "[%s] %s: %s is empty", section, key,
		    file);
	if (has_control(buf, len)) {
		explicit_bzero(buf, sizeof(buf));
		return parse_fail(p, "[%s] %s: %s holds more than one line or "
		    "a control character", section, key, file);
	}
	memcpy(out, buf, len);
	out[len] = '\0';
	explicit_bzero(buf, sizeof(buf));
	return 1;
}

/* "a, b ,c": trimmed, not empty, not twice, at most the cap. */
static int
store_mailboxes(struct parse *p, struct dm_account *a, const char *section,
    const char *key, const char *value)
{
	const char *item = value, *start, *end, *stop;
	char name[DM_CONFIG_MAILBOX_MAX + 1];
	size_t len;
	unsigned i;

	for (;;) {
		stop = item + strcspn(item, ",");
		for (start = item; start < stop && isspace((unsigned char)
		    *start); start++)
			;
		for (end = stop; end > start && isspace((unsigned char)
		    end[-1]); end--)
			;
		len = (size_t)(end - start);
		if (len == 0)
			return parse_fail(p, "[%s] %s: an empty name in '%s'",
			    section, key, value);
		if (len > DM_CONFIG_MAILBOX_MAX)
			return parse_fail(p, "[%s] %s: a name longer than %d "
			    "bytes", section, key, DM_CONFIG_MAILBOX_MAX);
		memcpy(name, start, len);
		name[len] = '\0';
		if (has_control(name, len))
			return parse_fail(p, "[%s] %s: '%s' holds a control "
			    "character", section, key, name);
		for (i = 0; i < a->nmailboxes; i++)
			if (mailbox_equal(a->mailboxes[i], name))
				return parse_fail(p, "[%s] %s: '%s' is listed "
				    "twice", section, key, name);
		if (a->nmailboxes == DM_CONFIG_MAX_MAILBOXES)
			return parse_fail(p, "[%s] %s: more than %d mailboxes",
			    section, key, DM_CONFIG_MAX_MAILBOXES);
		a->mailboxes[a->nmailboxes] = strdup(name);
		if (a->mailboxes[a->nmailboxes] == NULL)
			return parse_nomem(p);
		a->nmailboxes++;
		if (*stop == '\0')
			return 1;
		item = stop + 1;
	}
}

/*
 * store_webhook - a URL that may hold a secret (a Slack webhook's path):
 * checked as KIND_URL, never quoted; from a private file for
 * KIND_WEBHOOK_FILE.
 */
static int
store_webhook(struct parse *p, const struct key *k, char *field,
    const char *section, const char *value)
{
	char url[FIELD_SIZE(struct dm_config, alerts_webhook)];
	size_t len;

	if (k->kind == KIND_WEBHOOK_FILE) {
		if (read_secret_file(p, section, k->name, value, url,
		    sizeof(url)) == 0)
			return 0;
	} else {
		len = strlen(value);
		if (len == 0)
			return parse_fail(p, "[%s] %s: empty", section,
			    k->name);
		if (len >= sizeof(url))
			return parse_fail(p, "[%s] %s: longer than %zu bytes",
			    section, k->name, sizeof(url) - 1);
		/* A Slack webhook's path is its secret. */
		if (inline_secret(p, section, k->name,
		    "move it to webhook_file") == 0)
			return 0;
		memcpy(url, value, len + 1);
	}
	if (has_control(url, strlen(url)) || !url_ok(url)) {
		explicit_bzero(url, sizeof(url));
		return parse_fail(p, "[%s] %s: not an https:// URL (http:// "
		    "only to a loopback host); the value is not shown, it may "
		    "hold a secret", section, k->name);
	}
	memcpy(field, url, strlen(url) + 1);
	explicit_bzero(url, sizeof(url));
	return 1;
}

/*
 * Store one value in base (the configuration or an account; section is
 * how messages name it). The message quotes the value unless it is a
 * conninfo or a secret.
 */
static int
store(struct parse *p, const struct key *k, char *base, const char *section,
    const char *value)
{
	char *field = base + k->offset;
	size_t len = strlen(value);
	uint64_t number;
	int overflow, flag;
	char fix[64];
	size_t i;

	switch (k->kind) {
	case KIND_CONNINFO:
		if (len >= DM_CONFIG_CONNINFO_MAX)
			return parse_fail(p, "[%s] %s: longer than %d bytes",
			    section, k->name, DM_CONFIG_CONNINFO_MAX - 1);
		if (conninfo_has_secret(value) && inline_secret(p, section,
		    k->name, "move the password to a passfile (passfile=FILE "
		    "in the conninfo, or ~/.pgpass), mode 0600") == 0)
			return 0;
		snprintf(field, DM_CONFIG_CONNINFO_MAX, "%s", value);
		if (field == p->config->api_conninfo)
			p->config->api_conninfo_set = 1;
		if (field == p->config->admin_conninfo)
			p->config->admin_conninfo_set = 1;
		return 1;
	case KIND_UNSIGNED:
		if (parse_unsigned(value, &number, &overflow) != 0 &&
		    !overflow)
			return parse_fail(p, "[%s] %s: '%s' is not a whole "
			    "number", section, k->name, value);
		if (overflow || number < k->min || number > k->max)
			return parse_fail(p, "[%s] %s: '%s' is not between "
			    "%llu and %llu", section, k->name, value,
			    (unsigned long long)k->min,
			    (unsigned long long)k->max);
		*(unsigned *)(void *)field = (unsigned)number;
		return 1;
	case KIND_SIZE:
		if (dm_config_parse_size(value, &number) != 0)
			return parse_fail(p, "[%s] %s: '%s' is not a size "
			    "(a number of bytes, or with K, M or G: 64M)",
			    section, k->name, value);
		if (number < k->min || number > k->max)
			return parse_fail(p, "[%s] %s: '%s' is less than %llu "
			    "byte", section, k->name, value,
			    (unsigned long long)k->min);
		*(uint64_t *)(void *)field = number;
		return 1;
	case KIND_BOOL:
		if (parse_bool(value, &flag) != 0)
			return parse_fail(p, "[%s] %s: '%s' is not a boolean "
			    "(true/false, yes/no, on/off, 1/0)", section,
			    k->name, value);
		*(int *)(void *)field = flag;
		return 1;
	case KIND_PATH:
		if (value[0] != '/')
			return parse_fail(p, "[%s] %s: '%s' is not an absolute "
			    "path", section, k->name, value);
		if (len >= k->size)
			return parse_fail(p, "[%s] %s: longer than %zu bytes",
			    section, k->name, k->size - 1);
		memcpy(field, value, len + 1);
		return 1;
	case KIND_LOG_LEVEL:
		for (i = 0; i < sizeof(log_levels) / sizeof(log_levels[0]);
		    i++) {
			if (strcasecmp(value, log_levels[i].name) == 0) {
				*(int *)(void *)field = log_levels[i].level;
				return 1;
			}
		}
		return parse_fail(p, "[%s] %s: '%s' is not a level (error, "
		    "warning, info or debug)", section, k->name, value);
	case KIND_TEXT:
	case KIND_HOST:
	case KIND_FOLDER:
	case KIND_URL:
		if (len == 0)
			return parse_fail(p, "[%s] %s: empty", section,
			    k->name);
		if (has_control(value, len))
			return parse_fail(p, "[%s] %s: '%s' holds a control "
			    "character", section, k->name, value);
		if (k->kind == KIND_HOST && has_space(value))
			return parse_fail(p, "[%s] %s: '%s' is not a host name "
			    "nor an address", section, k->name, value);
		if (k->kind == KIND_URL && !url_ok(value))
			return parse_fail(p, "[%s] %s: '%s' is not an https:// "
			    "URL (http:// only to a loopback host)", section,
			    k->name, value);
		if (len >= k->size ||
		    (k->kind == KIND_FOLDER && len > DM_CONFIG_MAILBOX_MAX))
			return parse_fail(p, "[%s] %s: longer than %zu bytes",
			    section, k->name, k->size - 1);
		memcpy(field, value, len + 1);
		return 1;
	case KIND_SECRET:
		/* Never quoted, nor any part of it. */
		if (len == 0)
			return parse_fail(p, "[%s] %s: empty", section,
			    k->name);
		if (has_control(value, len))
			return parse_fail(p, "[%s] %s: holds a control "
			    "character", section, k->name);
		if (len >= k->size)
			return parse_fail(p, "[%s] %s: longer than %zu bytes",
			    section, k->name, k->size - 1);
		snprintf(fix, sizeof(fix), "move it to %s_file", k->name);
		if (inline_secret(p, section, k->name, fix) == 0)
			return 0;
		memcpy(field, value, len + 1);
		break;
	case KIND_SECRET_FILE:
		if (read_secret_file(p, section, k->name, value, field,
		    k->size) == 0)
			return 0;
		break;
	case KIND_TLS:
		flag = parse_name(value, tls_names,
		    sizeof(tls_names) / sizeof(tls_names[0]));
		if (flag < 0)
			return parse_fail(p, "[%s] %s: '%s' is not imaps, "
			    "starttls or none", section, k->name, value);
		*(int *)(void *)field = flag;
		/* Plain text to a remote host: allowed, as it was asked
		 * for; recorded so that the connection can warn. */
		if (flag == DM_TLS_NONE)
			p->account->tls_none_explicit = 1;
		return 1;
	case KIND_AUTH:
		flag = parse_name(value, auth_names,
		    sizeof(auth_names) / sizeof(auth_names[0]));
		if (flag < 0)
			return parse_fail(p, "[%s] %s: '%s' is not auto, "
			    "login, plain or xoauth2", section, k->name,
			    value);
		*(int *)(void *)field = flag;
		return 1;
	case KIND_MAILBOXES:
		return store_mailboxes(p, p->account, section, k->name,
		    value);
	case KIND_SERVERS: {
		char why[256];

		if (dm_config_parse_servers(value, field, k->size, why,
		    sizeof(why)) != 0)
			return parse_fail(p, "[%s] %s: %s", section, k->name,
			    why);
		return 1;
	}
	case KIND_WEBHOOK:
	case KIND_WEBHOOK_FILE:
		return store_webhook(p, k, field, section, value);
	case KIND_ALERTS_FORMAT:
		flag = parse_name(value, alerts_format_names,
		    sizeof(alerts_format_names) /
		    sizeof(alerts_format_names[0]));
		if (flag < 0)
			return parse_fail(p, "[%s] %s: '%s' is not json or "
			    "slack", section, k->name, value);
		*(int *)(void *)field = flag;
		return 1;
	case KIND_LISTEN: {
		char why[256];

		if (dm_config_parse_listen(p->config, value, why,
		    sizeof(why)) != 0)
			return parse_fail(p, "[%s] %s: %s", section, k->name,
			    why);
		return 1;
	}
	}
	if (k->kind == KIND_SECRET || k->kind == KIND_SECRET_FILE) {
		if (p->account != NULL &&
		    k->offset == offsetof(struct dm_account, password))
			p->account->password_set = 1;
		return 1;
	}
	return parse_fail(p, "[%s] %s: no parser (a bug)", section, k->name);
}

/* A key of the current [account NAME]. */
static int
on_account_value(struct parse *p, const char *name, const char *value)
{
	struct account_lines *lines = p->account_lines;
	char section[sizeof("account ") + DM_CONFIG_ACCOUNT_NAME_MAX];
	size_t i, j;

	snprintf(section, sizeof(section), "account %s", p->account->name);
	for (i = 0; i < NACCOUNT_KEYS; i++)
		if (strcmp(account_keys[i].name, name) == 0)
			break;
	if (i == NACCOUNT_KEYS)
		return parse_fail(p, "[%s] %s: unknown key", section, name);
	if (lines->seen_line[i] != 0)
		return parse_fail(p, "[%s] %s: set again (first on line %d)",
		    section, name, lines->seen_line[i]);
	/* A secret and its _file fill the same field: one or the other. */
	for (j = 0; j < NACCOUNT_KEYS; j++)
		if (j != i && lines->seen_line[j] != 0 &&
		    account_keys[j].offset == account_keys[i].offset)
			return parse_fail(p, "[%s] %s: %s is set too (line "
			    "%d): give one of them", section, name,
			    account_keys[j].name, lines->seen_line[j]);
	lines->seen_line[i] = p->line;
	return store(p, &account_keys[i], (char *)p->account, section, value);
}

/* libinih's handler: one "name = value"; 0 means error. The section is
 * the one read_line() saw (libinih's is cut at 49 bytes). */
static int
on_value(void *user, const char *section, const char *name,
    const char *value)
{
	struct parse *p = user;
	size_t i, j;

	(void)section;
	if (p->failed)
		return 0;
	p->key_in_section = 1;
	if (p->account != NULL)
		return on_account_value(p, name, value);
	if (p->section[0] == '\0')
		return parse_fail(p, "%s: a key before any [section]", name);
	for (i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].section, p->section) == 0 &&
		    strcmp(keys[i].name, name) == 0)
			break;
	if (i == NKEYS)
		return parse_fail(p, "[%s] %s: unknown key", p->section, name);
	/* Also catches a continuation line, which libinih passes as the
	 * same key again. */
	if (p->seen_line[i] != 0)
		return parse_fail(p, "[%s] %s: set again (first on line %d)",
		    p->section, name, p->seen_line[i]);
	/* [api] database and [database] api_conninfo: one or the other. */
	for (j = 0; j < NKEYS; j++)
		if (j != i && p->seen_line[j] != 0 &&
		    keys[j].offset == keys[i].offset)
			return parse_fail(p, "[%s] %s: [%s] %s is set too (line "
			    "%d): give one of them", p->section, name,
			    keys[j].section, keys[j].name, p->seen_line[j]);
	p->seen_line[i] = p->line;
	return store(p, &keys[i], (char *)p->config, p->section, value);
}

/* [account NAME]: rest is what follows "account". */
static void
begin_account(struct parse *p, const char *rest)
{
	char name[DM_CONFIG_ACCOUNT_NAME_MAX + 16];
	const char *end;
	struct dm_account *accounts;
	struct account_lines *lines;
	size_t i, cap;

	while (*rest == ' ' || *rest == '\t')
		rest++;
	end = rest + strlen(rest);
	while (end > rest && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	if (end == rest) {
		parse_fail(p, "[account]: a section [account NAME] needs a "
		    "NAME");
		return;
	}
	snprintf(name, sizeof(name), "%.*s", (int)(end - rest), rest);
	if (!account_name_ok(name) || (size_t)(end - rest) >= sizeof(name)) {
		parse_fail(p, "[account %s]: not an account NAME (1 to %d "
		    "letters, digits, '.', '_' or '-')", name,
		    DM_CONFIG_ACCOUNT_NAME_MAX);
		return;
	}
	for (i = 0; i < p->naccounts; i++) {
		if (strcmp(p->accounts[i].name, name) == 0) {
			parse_fail(p, "[account %s]: a second section of that "
			    "name (first on line %d)", name,
			    p->lines[i].section_line);
			return;
		}
	}
	if (p->naccounts == DM_CONFIG_MAX_ACCOUNTS) {
		parse_fail(p, "[account %s]: more than %d accounts", name,
		    DM_CONFIG_MAX_ACCOUNTS);
		return;
	}
	if (p->naccounts == p->accounts_cap) {
		cap = p->accounts_cap == 0 ? 4 : p->accounts_cap * 2;
		if (cap > DM_CONFIG_MAX_ACCOUNTS)
			cap = DM_CONFIG_MAX_ACCOUNTS;
		accounts = realloc(p->accounts, cap * sizeof(*accounts));
		if (accounts == NULL) {
			parse_nomem(p);
			return;
		}
		p->accounts = accounts;
		lines = realloc(p->lines, cap * sizeof(*lines));
		if (lines == NULL) {
			parse_nomem(p);
			return;
		}
		p->lines = lines;
		p->accounts_cap = cap;
	}
	p->account = &p->accounts[p->naccounts];
	p->account_lines = &p->lines[p->naccounts];
	p->naccounts++;
	account_init(p->account, name);
	memset(p->account_lines, 0, sizeof(*p->account_lines));
	p->account_lines->section_line = p->line;
	snprintf(p->section, sizeof(p->section), "account %s", name);
}

/*
 * A [section] line: the current section from now on. An unknown
 * [section] is an error even if it holds no key.
 */
static void
check_section_line(struct parse *p, const char *line)
{
	const char *first, *start, *end;
	char name[sizeof(p->section)];	/* more than a line holds */

	/* As libinih: a UTF-8 BOM on line 1 is skipped. */
	if (p->line == 1 && strncmp(line, "\xEF\xBB\xBF", 3) == 0)
		line += 3;
	first = line;
	while (isspace((unsigned char)*line))
		line++;
	if (*line != '[')
		return;
	/* libinih reads an indented line after a key as more of its
	 * value: on_value() is told, and refuses it. */
	if (line > first && p->key_in_section)
		return;
	start = line + 1;
	end = strchr(start, ']');
	if (end == NULL)
		return;		/* libinih reports it */
	if ((size_t)(end - start) >= sizeof(name)) {
		parse_fail(p, "unknown section [%.*s...]", 32, start);
		return;
	}
	memcpy(name, start, (size_t)(end - start));
	name[end - start] = '\0';
	p->key_in_section = 0;
	p->account = NULL;
	p->account_lines = NULL;
	if (strncmp(name, "account", 7) == 0 &&
	    (name[7] == '\0' || name[7] == ' ' || name[7] == '\t')) {
		begin_account(p, name + 7);
		return;
	}
	if (!section_known(name)) {
		parse_fail(p, "unknown section [%s]", name);
		return;
	}
	snprintf(p->section, sizeof(p->section), "%s", name);
}

/* libinih's reader, fgets-like: one whole line or NULL. */
static char *
read_line(char *str, int num, void *stream)
{
	struct parse *p = stream;
	size_t len = 0, cap;
	int ch = EOF;

	if (p->failed || num < 2)
		return NULL;
	cap = (size_t)num - 1;
	while (len < cap && (ch = getc(p->fp)) != EOF) {
		str[len++] = (char)ch;
		if (ch == '\n')
			break;
	}
	if (len == 0) {
		if (ferror(p->fp))
			p->read_errno = errno != 0 ? errno : EIO;
		return NULL;
	}
	str[len] = '\0';
	p->line++;
	if (len == cap && ch != '\n') {
		/* Full: fine if the line ends here, else too long. */
		ch = getc(p->fp);
		if (ch != EOF && ch != '\n') {
			parse_fail(p, "line longer than %zu bytes", cap);
			return NULL;
		}
	}
	if (strlen(str) != len) {
		parse_fail(p, "a NUL byte");
		return NULL;
	}
	check_section_line(p, str);
	return p->failed ? NULL : str;
}

/*
 * check_account - what only the whole [account NAME] can tell; fills in
 * the defaults that depend on other keys. Errors name the section line,
 * or the line of the key at fault.
 */
static int
check_account(struct parse *p, struct dm_account *a,
    const struct account_lines *lines)
{
	static const size_t folders[] = {
		offsetof(struct dm_account, processed_folder),
		offsetof(struct dm_account, rejected_folder),
	};
	int line = lines->section_line, mailboxes_line = 0, folder_line;
	const char *folder;
	size_t i, k;
	unsigned m;

	if (a->host[0] == '\0')
		return fail_at(p, line, "[account %s] host: not set "
		    "(required)", a->name);
	if (a->user[0] == '\0')
		return fail_at(p, line, "[account %s] user: not set "
		    "(required)", a->name);
	if (a->auth == DM_AUTH_AUTO && a->oauth2_token_url[0] != '\0')
		a->auth = DM_AUTH_XOAUTH2;
	if (a->auth == DM_AUTH_XOAUTH2) {
		if (a->oauth2_token_url[0] == '\0')
			return fail_at(p, line, "[account %s] "
			    "oauth2_token_url: not set (required with auth "
			    "= xoauth2)", a->name);
		if (a->oauth2_client_id[0] == '\0')
			return fail_at(p, line, "[account %s] "
			    "oauth2_client_id: not set (required for "
			    "XOAUTH2)", a->name);
		if (a->oauth2_refresh_token[0] == '\0')
			return fail_at(p, line, "[account %s] "
			    "oauth2_refresh_token: not set (it or "
			    "oauth2_refresh_token_file is required for "
			    "XOAUTH2)", a->name);
	} else if (!a->password_set)
		return fail_at(p, line, "[account %s] password: not set "
		    "(password or password_file is required unless auth = "
		    "xoauth2)", a->name);
	if (a->port == 0)
		a->port = a->tls == DM_TLS_IMAPS ? DM_CONFIG_IMAPS_PORT :
		    DM_CONFIG_IMAP_PORT;
	for (k = 0; k < NACCOUNT_KEYS; k++)
		if (account_keys[k].kind == KIND_MAILBOXES)
			mailboxes_line = lines->seen_line[k];
	if (a->nmailboxes == 0) {
		a->mailboxes[0] = strdup(DM_CONFIG_MAILBOX);
		if (a->mailboxes[0] == NULL) {
			p->line = line;
			return parse_nomem(p);
		}
		a->nmailboxes = 1;
	}
	for (i = 0; i < sizeof(folders) / sizeof(folders[0]); i++) {
		folder = (const char *)a + folders[i];
		for (m = 0; m < a->nmailboxes; m++)
			if (mailbox_equal(a->mailboxes[m], folder))
				break;
		if (m == a->nmailboxes)
			continue;
		folder_line = mailboxes_line != 0 ? mailboxes_line : line;
		for (k = 0; k < NACCOUNT_KEYS; k++)
			if (account_keys[k].offset == folders[i] &&
			    lines->seen_line[k] != 0)
				folder_line = lines->seen_line[k];
		for (k = 0; k < NACCOUNT_KEYS; k++)
			if (account_keys[k].offset == folders[i])
				break;
		return fail_at(p, folder_line, "[account %s] %s: '%s' is "
		    "also one of the mailboxes", a->name,
		    account_keys[k].name, folder);
	}
	return 1;
}

/*
 * merge_accounts - into next: c's accounts (copied) but those this file
 * gives again, then the file's (moved out of p). -1 with err filled.
 */
static int
merge_accounts(const struct dm_config *c, struct parse *p,
    struct dm_config *next, struct dm_error *err)
{
	struct dm_account *merged;
	size_t i, j, count = 0;

	if (c->naccounts + p->naccounts == 0)
		return 0;
	merged = calloc(c->naccounts + p->naccounts, sizeof(*merged));
	if (merged == NULL)
		return dm_error_set(err, DM_E_NOMEM, "%s: out of memory",
		    p->path);
	for (i = 0; i < c->naccounts; i++) {
		for (j = 0; j < p->naccounts; j++)
			if (strcmp(c->accounts[i].name,
			    p->accounts[j].name) == 0)
				break;
		if (j < p->naccounts)
			continue;	/* replaced */
		if (account_copy(&merged[count], &c->accounts[i]) != 0) {
			accounts_free(merged, count);
			return dm_error_set(err, DM_E_NOMEM, "%s: out of "
			    "memory", p->path);
		}
		count++;
	}
	if (count + p->naccounts > DM_CONFIG_MAX_ACCOUNTS) {
		accounts_free(merged, count);
		return dm_error_set(err, DM_E_USAGE, "%s: more than %d "
		    "accounts with those loaded before", p->path,
		    DM_CONFIG_MAX_ACCOUNTS);
	}
	if (p->naccounts > 0) {
		memcpy(&merged[count], p->accounts,
		    p->naccounts * sizeof(*merged));
		count += p->naccounts;
		/* Moved: the mailboxes now belong to merged. */
		free(p->accounts);
		p->accounts = NULL;
		p->naccounts = 0;
	}
	next->accounts = merged;
	next->naccounts = count;
	return 0;
}

/*
 * open_config - the configuration file at path, open for reading, its
 * stat in st; NULL with err filled. As root it must be root's own file
 * that nobody else can change, reached without a symbolic link at its
 * end: it names the secret files root reads, and so another user who
 * could change it could have root read any of root's files.
 */
static FILE *
open_config(const char *path, struct stat *st, struct dm_error *err)
{
	int root = geteuid() == 0, fd, saved;
	FILE *fp;

	/* O_NONBLOCK: a FIFO must not hang; it is refused below. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK |
	    (root ? O_NOFOLLOW : 0));
	if (fd < 0 && errno == ELOOP && root && is_symlink(path)) {
		dm_error_set(err, DM_E_USAGE, "%s is a symbolic link, which "
		    "dmarcd running as root does not follow; name the file "
		    "itself (readlink -f %s)", path, path);
		return NULL;
	}
	if (fd < 0) {
		dm_error_set(err, DM_E_NOINPUT, "cannot open %s: %s", path,
		    strerror(errno));
		return NULL;
	}
	if (fstat(fd, st) != 0) {
		saved = errno;
		close(fd);
		dm_error_set(err, DM_E_IO, "cannot stat %s: %s", path,
		    strerror(saved));
		return NULL;
	}
	if (!S_ISREG(st->st_mode)) {
		close(fd);
		dm_error_set(err, DM_E_NOINPUT, "%s is not a regular file",
		    path);
		return NULL;
	}
	if (root && st->st_uid != 0) {
		close(fd);
		dm_error_set(err, DM_E_USAGE, "%s belongs to uid %u, not to "
		    "root, which runs dmarcd: that user could make root read "
		    "any file of root's; chown root %s, or run dmarcd as that "
		    "user (runuser -u USER -- dmarcd ...)", path,
		    (unsigned)st->st_uid, path);
		return NULL;
	}
	if (root && (st->st_mode & 022) != 0) {
		close(fd);
		dm_error_set(err, DM_E_USAGE, "%s is writable by %s (mode "
		    "%04o), and dmarcd runs as root: chmod go-w %s", path,
		    (st->st_mode & 020) != 0 ? "group" : "others",
		    (unsigned)(st->st_mode & 07777), path);
		return NULL;
	}
	fp = fdopen(fd, "r");
	if (fp == NULL) {
		saved = errno;
		close(fd);
		dm_error_set(err, DM_E_NOMEM, "cannot read %s: %s", path,
		    strerror(saved));
		return NULL;
	}
	return fp;
}

/*
 * load_file - c and the file at path into next, which owns memory of its
 * own when this returns 0 and holds nothing when it returns -1. c is not
 * changed.
 */
static int
load_file(const struct dm_config *c, const char *path,
    struct dm_config *next, struct dm_error *err)
{
	struct parse p;
	struct stat st;
	FILE *fp;
	size_t i;
	int rc;

	dm_config_init(next);
	fp = open_config(path, &st, err);
	if (fp == NULL)
		return -1;
	if (strlen(path) >= sizeof(next->path)) {
		fclose(fp);
		return dm_error_set(err, DM_E_USAGE, "%s: a path longer than "
		    "%zu bytes", path, sizeof(next->path) - 1);
	}
	if (dm_dl_need(&inih_lib, err) != 0) {
		fclose(fp);
		return -1;
	}

	settings_copy(next, c);
	memset(&p, 0, sizeof(p));
	p.config = next;
	p.path = path;
	p.fp = fp;
	p.file_mode = st.st_mode;
	p.err = err;
	errno = 0;
	rc = inih.ini_parse_stream(read_line, &p, on_value, &p);
	fclose(fp);

	/* libinih returns the first bad line: its own (a line that is not
	 * "[section]" nor "key = value") or one of ours, which p says. */
	if (rc > 0 && (!p.failed || rc < p.error_line))
		rc = dm_error_set(err, DM_E_USAGE, "%s:%d: not a [section] "
		    "nor a 'key = value' line", path, rc);
	else if (p.failed)
		rc = -1;
	else if (p.read_errno != 0)
		rc = dm_error_set(err, DM_E_IO, "cannot read %s: %s", path,
		    strerror(p.read_errno));
	else if (rc == -2)
		rc = dm_error_set(err, DM_E_NOMEM, "%s: out of memory",
		    path);
	else if (rc != 0)
		rc = dm_error_set(err, DM_E_INTERNAL, "%s: libinih failed "
		    "(%d)", path, rc);
	for (i = 0; rc == 0 && i < p.naccounts; i++)
		if (check_account(&p, &p.accounts[i], &p.lines[i]) == 0)
			rc = -1;
	if (rc == 0 && (next->api_tls_cert[0] == '\0') !=
	    (next->api_tls_key[0] == '\0'))
		rc = dm_error_set(err, DM_E_USAGE, "%s: [api] tls_cert and "
		    "tls_key: give both (HTTPS) or neither (HTTP)", path);
	if (rc == 0)
		rc = merge_accounts(c, &p, next, err);
	accounts_free(p.accounts, p.naccounts);
	free(p.lines);
	if (rc != 0) {
		dm_config_init(next);
		return -1;
	}
	snprintf(next->path, sizeof(next->path), "%s", path);
	return 0;
}

int
dm_config_load_file(struct dm_config *c, const char *path,
    struct dm_error *err)
{
	struct dm_config next;

	if (load_file(c, path, &next, err) != 0)
		return -1;
	dm_config_free(c);
	*c = next;		/* a move: next is dropped */
	return 0;
}

int
dm_config_load(struct dm_config *c, const char *explicit_path,
    struct dm_error *err)
{
	struct dm_config next;
	const char *path = explicit_path, *db;
	struct stat st;

	if (path == NULL) {
		path = getenv(DM_CONFIG_ENV_PATH);
		if (path != NULL && path[0] == '\0')
			path = NULL;
	}
	if (path == NULL && (stat(DM_CONFIG_DEFAULT_PATH, &st) == 0 ||
	    (errno != ENOENT && errno != ENOTDIR)))
		path = DM_CONFIG_DEFAULT_PATH;	/* absent is fine, not
						 * unreadable */
	if (path != NULL) {
		if (load_file(c, path, &next, err) != 0)
			return -1;
	} else if (dm_config_copy(&next, c, err) != 0)
		return -1;
	db = getenv(DM_CONFIG_ENV_DB);
	if (db != NULL && db[0] != '\0' &&
	    dm_config_set_db(&next, db, err) != 0) {
		dm_config_free(&next);
		dm_error_prefix(err, "%s", DM_CONFIG_ENV_DB);
		return -1;
	}
	dm_config_free(c);
	*c = next;		/* a move: next is dropped */
	return 0;
}

/* DNS servers */

/* One item of a server list, trimmed: len bytes at item. */
static int
server_item(const char *item, size_t len, char *out, size_t size, char *why,
    size_t why_size)
{
	char text[128], addr[INET6_ADDRSTRLEN];
	const char *port_text = NULL, *close;
	unsigned long port = 53;
	struct in6_addr v6;
	struct in_addr v4;
	char *end;
	int v6_form = 0;

	if (len >= sizeof(text)) {
		snprintf(why, why_size, "'%.32s...' is not an address", item);
		return -1;
	}
	memcpy(text, item, len);
	text[len] = '\0';
	if (text[0] == '[') {
		close = strchr(text, ']');
		if (close == NULL || (close[1] != '\0' && close[1] != ':'))
			goto bad;
		if ((size_t)(close - text - 1) >= sizeof(addr))
			goto bad;
		memcpy(addr, text + 1, (size_t)(close - text - 1));
		addr[close - text - 1] = '\0';
		if (close[1] == ':')
			port_text = close + 2;
		v6_form = 1;
	} else if (strchr(text, ':') != strrchr(text, ':')) {
		/* Two colons or more: an IPv6 address without a port. */
		if (len >= sizeof(addr))
			goto bad;
		memcpy(addr, text, len + 1);
		v6_form = 1;
	} else {
		close = strchr(text, ':');
		if (close != NULL) {
			port_text = close + 1;
			len = (size_t)(close - text);
		}
		if (len >= sizeof(addr))
			goto bad;
		memcpy(addr, text, len);
		addr[len] = '\0';
	}
	if (v6_form ? inet_pton(AF_INET6, addr, &v6) != 1 :
	    inet_pton(AF_INET, addr, &v4) != 1)
		goto bad;
	if (port_text != NULL) {
		if (port_text[0] < '0' || port_text[0] > '9')
			goto bad_port;
		errno = 0;
		port = strtoul(port_text, &end, 10);
		if (errno != 0 || *end != '\0' || port == 0 || port > 65535)
			goto bad_port;
	}
	if ((size_t)snprintf(out, size, v6_form ? "[%s]:%lu" : "%s:%lu", addr,
	    port) >= size) {
		snprintf(why, why_size, "too many servers");
		return -1;
	}
	return 0;
bad:
	snprintf(why, why_size, "'%s' is not an IP address (with an optional "
	    ":PORT; [IPv6]:PORT; no host names)", text);
	return -1;
bad_port:
	snprintf(why, why_size, "'%s': the port is not a number from 1 to "
	    "65535", text);
	return -1;
}

int
dm_config_parse_servers(const char *text, char *out, size_t size, char *why,
    size_t why_size)
{
	const char *item = text, *stop, *start, *end;
	char one[80];
	size_t used = 0, count = 0, n;

	if (size == 0)
		return -1;
	out[0] = '\0';
	for (;;) {
		stop = item + strcspn(item, ",");
		for (start = item; start < stop && isspace((unsigned char)
		    *start); start++)
			;
		for (end = stop; end > start && isspace((unsigned char)
		    end[-1]); end--)
			;
		if (end == start) {
			snprintf(why, why_size, "an empty item in '%s'", text);
			return -1;
		}
		if (count == DM_CONFIG_RESOLVE_MAX_SERVERS) {
			snprintf(why, why_size, "more than %d servers",
			    DM_CONFIG_RESOLVE_MAX_SERVERS);
			return -1;
		}
		if (server_item(start, (size_t)(end - start), one,
		    sizeof(one), why, why_size) != 0)
			return -1;
		/* none twice: compare with what out holds */
		for (start = out; *start != '\0'; start += n + (start[n] ==
		    ',')) {
			n = strcspn(start, ",");
			if (n == strlen(one) && strncmp(start, one, n) == 0) {
				snprintf(why, why_size, "%s is listed twice",
				    one);
				return -1;
			}
		}
		n = strlen(one);
		if (used + (count > 0) + n + 1 > size) {
			snprintf(why, why_size, "the list is longer than %zu "
			    "bytes", size - 1);
			return -1;
		}
		if (count > 0)
			out[used++] = ',';
		memcpy(out + used, one, n + 1);
		used += n;
		count++;
		if (*stop == '\0')
			return 0;
		item = stop + 1;
	}
}

/* Redaction */

struct out {
	char *buf;
	size_t size;
	size_t len;		/* of the whole result, even past size */
};

static void
put(struct out *o, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++, o->len++)
		if (o->size > 0 && o->len < o->size - 1)
			o->buf[o->len] = s[i];
}

static void
put_str(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

static int
secret_key(const char *key, size_t len)
{
	return (len == 8 && strncasecmp(key, "password", 8) == 0) ||
	    (len == 11 && strncasecmp(key, "sslpassword", 11) == 0);
}

static int
uri_prefix(const char *s, size_t *len_r)
{
	static const char *const prefixes[] = {
		"postgresql://", "postgres://"
	};
	size_t i, len;

	for (i = 0; i < 2; i++) {
		len = strlen(prefixes[i]);
		if (strncmp(s, prefixes[i], len) == 0) {
			*len_r = len;
			return 1;
		}
	}
	return 0;
}

static int
hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Whether a URI query key, percent-decoded, is a password's. */
static int
secret_query_key(const char *key, size_t len)
{
	char decoded[16];
	size_t i, n = 0;

	for (i = 0; i < len; i++) {
		int ch = (unsigned char)key[i];

		if (ch == '%' && i + 2 < len && hexval(key[i + 1]) >= 0 &&
		    hexval(key[i + 2]) >= 0) {
			ch = hexval(key[i + 1]) * 16 + hexval(key[i + 2]);
			i += 2;
		}
		if (n == sizeof(decoded))
			return 0;	/* longer than any secret key */
		decoded[n++] = (char)ch;
	}
	return secret_key(decoded, n);
}

/* postgresql://[user[:password]@][hosts][/dbname][?key=value&...] */
static void
redact_uri(struct out *o, const char *s, size_t prefix_len)
{
	const char *p = s + prefix_len, *at, *colon, *query, *key, *eq;

	put(o, s, prefix_len);
	/* As libpq: user info ends at the first '@' before any '/'. */
	at = p + strcspn(p, "@/");
	if (*at == '@') {
		colon = memchr(p, ':', (size_t)(at - p));
		if (colon != NULL) {
			put(o, p, (size_t)(colon - p));
			put_str(o, ":***");
		} else
			put(o, p, (size_t)(at - p));
		p = at;
	}
	query = strchr(p, '?');
	if (query == NULL) {
		put_str(o, p);
		return;
	}
	put(o, p, (size_t)(query + 1 - p));
	p = query + 1;
	while (*p != '\0') {
		size_t len = strcspn(p, "&");

		key = p;
		eq = memchr(p, '=', len);
		if (eq != NULL && secret_query_key(key, (size_t)(eq - key))) {
			put(o, key, (size_t)(eq + 1 - key));
			put_str(o, "***");
		} else
			put(o, p, len);
		p += len;
		if (*p == '&') {
			put(o, p, 1);
			p++;
		}
	}
}

/* Whether libpq would read a dbname value as a connection string. */
static int
conninfo_like(const char *value, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (value[i] == '=' || (value[i] == ':' && i + 2 < len &&
		    value[i + 1] == '/' && value[i + 2] == '/'))
			return 1;
	return 0;
}

/* keyword = value ..., as libpq's conninfo_parse() reads it. */
static void
redact_keywords(struct out *o, const char *s)
{
	const char *p = s, *start, *key, *value;
	size_t key_len;

	for (;;) {
		start = p;
		while (isspace((unsigned char)*p))
			p++;
		put(o, start, (size_t)(p - start));
		if (*p == '\0')
			return;
		key = p;
		while (*p != '\0' && *p != '=' && !isspace((unsigned char)*p))
			p++;
		key_len = (size_t)(p - key);
		while (isspace((unsigned char)*p))
			p++;
		if (*p != '=') {
			/* Not libpq's syntax: maybe the rest of a password
			 * that held a space. */
			put_str(o, "***");
			return;
		}
		p++;
		while (isspace((unsigned char)*p))
			p++;
		put(o, key, (size_t)(p - key));
		value = p;
		if (*p == '\'') {
			for (p++; *p != '\0' && *p != '\''; p++)
				if (*p == '\\' && p[1] != '\0')
					p++;
			if (*p != '\'') {
				put_str(o, "***");
				return;
			}
			p++;
		} else {
			for (; *p != '\0' && !isspace((unsigned char)*p); p++)
				if (*p == '\\' && p[1] != '\0')
					p++;
		}
		if (secret_key(key, key_len) || (key_len == 6 &&
		    strncasecmp(key, "dbname", 6) == 0 &&
		    conninfo_like(value, (size_t)(p - value))))
			put_str(o, "***");
		else
			put(o, value, (size_t)(p - value));
	}
}

size_t
dm_config_redact(const char *conninfo, char *out, size_t size)
{
	struct out o = { out, size, 0 };
	size_t prefix_len;

	if (uri_prefix(conninfo, &prefix_len))
		redact_uri(&o, conninfo, prefix_len);
	else
		redact_keywords(&o, conninfo);
	if (size > 0)
		out[o.len < size ? o.len : size - 1] = '\0';
	return o.len;
}
