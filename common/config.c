/*
 * config.c - dmarcd.conf, DMARCD_DB and --db (see config.h).
 *
 * libinih does the INI syntax; this file gives it lines through its own
 * reader, which counts them (so that every error names its line, whatever
 * INI_HANDLER_LINENO the library was built with), refuses a line longer
 * than libinih's buffer (libinih would cut it and parse the rest as a new
 * line), a NUL byte and an unknown [section], and stops at the first
 * error. The file is parsed into a copy of the configuration, which
 * replaces the caller's only when the whole file is good.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
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
	KIND_PATH,	/* char[DM_CONFIG_PATH_MAX], absolute */
	KIND_LOG_LEVEL	/* int, a syslog priority */
};

struct key {
	const char *section;
	const char *name;
	enum key_kind kind;
	size_t offset;		/* in struct dm_config */
	uint64_t min, max;
};

#define KEY(s, n, k, f, lo, hi) \
	{ s, n, k, offsetof(struct dm_config, f), lo, hi }

static const struct key keys[] = {
	KEY("database", "conninfo", KIND_CONNINFO, conninfo, 0, 0),
	KEY("database", "api_conninfo", KIND_CONNINFO, api_conninfo, 0, 0),
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
};

#define NKEYS	(sizeof(keys) / sizeof(keys[0]))

static const struct {
	const char *name;
	int level;
} log_levels[] = {
	{ "error", LOG_ERR },
	{ "warning", LOG_WARNING },
	{ "info", LOG_INFO },
	{ "debug", LOG_DEBUG },
};

/* One parse of one file. */
struct parse {
	struct dm_config *config;	/* the copy being filled */
	const char *path;
	FILE *fp;
	int line;		/* lines handed to libinih so far */
	int failed;		/* err holds the first error; stop reading */
	int error_line;		/* of that error */
	int read_errno;
	int seen_line[NKEYS];	/* where each key was set, 0: not yet */
	struct dm_error *err;
};

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
}

void
dm_config_free(struct dm_config *c)
{
	dm_config_init(c);
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
dm_config_log_level_name(int level)
{
	size_t i;

	for (i = 0; i < sizeof(log_levels) / sizeof(log_levels[0]); i++)
		if (log_levels[i].level == level)
			return log_levels[i].name;
	return NULL;
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

static int
section_known(const char *section)
{
	size_t i;

	for (i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].section, section) == 0)
			return 1;
	return 0;
}

static int DM_PRINTF(2, 3)
parse_fail(struct parse *p, const char *fmt, ...)
{
	char why[DM_ERROR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	dm_error_set(p->err, DM_E_USAGE, "%s:%d: %s", p->path, p->line, why);
	p->failed = 1;
	p->error_line = p->line;
	return 0;		/* to libinih: an error */
}

/* Store one value; the message quotes it unless it is a conninfo. */
static int
store(struct parse *p, const struct key *k, const char *value)
{
	char *field = (char *)p->config + k->offset;
	uint64_t number;
	int overflow, flag;
	size_t i;

	switch (k->kind) {
	case KIND_CONNINFO:
		if (strlen(value) >= DM_CONFIG_CONNINFO_MAX)
			return parse_fail(p, "[%s] %s: longer than %d bytes",
			    k->section, k->name, DM_CONFIG_CONNINFO_MAX - 1);
		snprintf(field, DM_CONFIG_CONNINFO_MAX, "%s", value);
		if (field == p->config->api_conninfo)
			p->config->api_conninfo_set = 1;
		return 1;
	case KIND_UNSIGNED:
		if (parse_unsigned(value, &number, &overflow) != 0 &&
		    !overflow)
			return parse_fail(p, "[%s] %s: '%s' is not a whole "
			    "number", k->section, k->name, value);
		if (overflow || number < k->min || number > k->max)
			return parse_fail(p, "[%s] %s: '%s' is not between "
			    "%llu and %llu", k->section, k->name, value,
			    (unsigned long long)k->min,
			    (unsigned long long)k->max);
		*(unsigned *)(void *)field = (unsigned)number;
		return 1;
	case KIND_SIZE:
		if (dm_config_parse_size(value, &number) != 0)
			return parse_fail(p, "[%s] %s: '%s' is not a size "
			    "(a number of bytes, or with K, M or G: 64M)",
			    k->section, k->name, value);
		if (number < k->min || number > k->max)
			return parse_fail(p, "[%s] %s: '%s' is less than %llu "
			    "byte", k->section, k->name, value,
			    (unsigned long long)k->min);
		*(uint64_t *)(void *)field = number;
		return 1;
	case KIND_BOOL:
		if (parse_bool(value, &flag) != 0)
			return parse_fail(p, "[%s] %s: '%s' is not a boolean "
			    "(true/false, yes/no, on/off, 1/0)", k->section,
			    k->name, value);
		*(int *)(void *)field = flag;
		return 1;
	case KIND_PATH:
		if (value[0] != '/')
			return parse_fail(p, "[%s] %s: '%s' is not an absolute "
			    "path", k->section, k->name, value);
		if (strlen(value) >= DM_CONFIG_PATH_MAX)
			return parse_fail(p, "[%s] %s: longer than %d bytes",
			    k->section, k->name, DM_CONFIG_PATH_MAX - 1);
		snprintf(field, DM_CONFIG_PATH_MAX, "%s", value);
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
		    "warning, info or debug)", k->section, k->name, value);
	}
	return parse_fail(p, "[%s] %s: no parser (a bug)", k->section,
	    k->name);
}

/* libinih's handler: one "name = value" in section; 0 means error. */
static int
on_value(void *user, const char *section, const char *name,
    const char *value)
{
	struct parse *p = user;
	size_t i;

	if (p->failed)
		return 0;
	if (section[0] == '\0')
		return parse_fail(p, "%s: a key before any [section]", name);
	if (!section_known(section))
		return parse_fail(p, "unknown section [%s]", section);
	for (i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].section, section) == 0 &&
		    strcmp(keys[i].name, name) == 0)
			break;
	if (i == NKEYS)
		return parse_fail(p, "[%s] %s: unknown key", section, name);
	/* Also catches a continuation line, which libinih passes as the
	 * same key again. */
	if (p->seen_line[i] != 0)
		return parse_fail(p, "[%s] %s: set again (first on line %d)",
		    section, name, p->seen_line[i]);
	p->seen_line[i] = p->line;
	return store(p, &keys[i], value);
}

/* An unknown [section] is an error even if it holds no key. */
static void
check_section_line(struct parse *p, const char *line)
{
	const char *start, *end;
	char name[64];

	while (isspace((unsigned char)*line))
		line++;
	if (*line != '[')
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
	if (!section_known(name))
		parse_fail(p, "unknown section [%s]", name);
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

int
dm_config_load_file(struct dm_config *c, const char *path,
    struct dm_error *err)
{
	struct dm_config next = *c;
	struct parse p;
	struct stat st;
	FILE *fp;
	int rc, saved;

	fp = fopen(path, "re");
	if (fp == NULL)
		return dm_error_set(err, DM_E_NOINPUT, "cannot open %s: %s",
		    path, strerror(errno));
	if (fstat(fileno(fp), &st) != 0) {
		saved = errno;
		fclose(fp);
		return dm_error_set(err, DM_E_IO, "cannot stat %s: %s", path,
		    strerror(saved));
	}
	if (!S_ISREG(st.st_mode)) {
		fclose(fp);
		return dm_error_set(err, DM_E_NOINPUT, "%s is not a regular "
		    "file", path);
	}
	if (strlen(path) >= sizeof(next.path)) {
		fclose(fp);
		return dm_error_set(err, DM_E_USAGE, "%s: a path longer than "
		    "%zu bytes", path, sizeof(next.path) - 1);
	}
	if (dm_dl_need(&inih_lib, err) != 0) {
		fclose(fp);
		return -1;
	}

	memset(&p, 0, sizeof(p));
	p.config = &next;
	p.path = path;
	p.fp = fp;
	p.err = err;
	errno = 0;
	rc = inih.ini_parse_stream(read_line, &p, on_value, &p);
	fclose(fp);

	/* libinih returns the first bad line: its own (a line that is not
	 * "[section]" nor "key = value") or one of ours, which p says. */
	if (rc > 0 && (!p.failed || rc < p.error_line))
		return dm_error_set(err, DM_E_USAGE, "%s:%d: not a [section] "
		    "nor a 'key = value' line", path, rc);
	if (p.failed)
		return -1;
	if (p.read_errno != 0)
		return dm_error_set(err, DM_E_IO, "cannot read %s: %s", path,
		    strerror(p.read_errno));
	if (rc == -2)
		return dm_error_set(err, DM_E_NOMEM, "%s: out of memory",
		    path);
	if (rc != 0)
		return dm_error_set(err, DM_E_INTERNAL, "%s: libinih failed "
		    "(%d)", path, rc);
	snprintf(next.path, sizeof(next.path), "%s", path);
	*c = next;
	return 0;
}

int
dm_config_load(struct dm_config *c, const char *explicit_path,
    struct dm_error *err)
{
	struct dm_config next = *c;
	const char *path = explicit_path, *db;
	struct stat st;

	if (path == NULL) {
		path = getenv(DM_CONFIG_ENV_PATH);
		if (path != NULL && path[0] == '\0')
			path = NULL;
	}
	if (path != NULL) {
		if (dm_config_load_file(&next, path, err) != 0)
			return -1;
	} else if (stat(DM_CONFIG_DEFAULT_PATH, &st) == 0 ||
	    (errno != ENOENT && errno != ENOTDIR)) {
		/* Absent is fine; present but unreadable is not. */
		if (dm_config_load_file(&next, DM_CONFIG_DEFAULT_PATH,
		    err) != 0)
			return -1;
	}
	db = getenv(DM_CONFIG_ENV_DB);
	if (db != NULL && db[0] != '\0' &&
	    dm_config_set_db(&next, db, err) != 0) {
		dm_error_prefix(err, "%s", DM_CONFIG_ENV_DB);
		return -1;
	}
	*c = next;
	return 0;
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
