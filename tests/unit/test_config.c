/*
 * test_config.c - unit tests for common/config.c.
 *
 * Proves: the built-in defaults; a full dmarcd.conf sets every key; each
 * kind of bad value, an unknown section or key, a key outside a section,
 * a key set twice (continuation lines too), a line libinih cannot parse,
 * an overlong line and a NUL byte fail with DM_E_USAGE and "PATH:LINE:"
 * and leave the configuration as it was; the file is --config's, else
 * $DMARCD_CONFIG's, else the default path's if it exists; a named file
 * that is missing or a directory is an error; DMARCD_DB overrides the
 * file and --db overrides DMARCD_DB, and the API's conninfo follows
 * conninfo unless set; libinih is mapped only once a file is read;
 * dm_config_redact hides passwords in keyword/value form (quoted or not),
 * in URIs (user info and query) and in a dbname that is a connection
 * string, and leaves a conninfo without one unchanged.
 *
 * IMAP accounts and [daemon]: an account's defaults (port by tls, INBOX,
 * the folders) and every key; [daemon] and [log] syslog; each bad value,
 * a missing required key (host, user, a password, XOAUTH2's three), a bad
 * or repeated [account NAME], a secret given twice, too many accounts or
 * mailboxes, all fail with "PATH:LINE: [account NAME] key: why" and leave
 * the configuration as it was; a *_file is read only when its mode
 * leaves group and others out (a real file, chmod 644 vs 600), one line,
 * not empty, not too long; no message ever holds a password, secret or
 * token, nor a byte of a *_file; a secret written in the file itself
 * (password, client secret, refresh token, webhook, a conninfo with a
 * password) only in a file that group and others cannot use, the message
 * naming file, key and fix; as root, no symbolic link (the file or a
 * *_file), and the file root's and writable by root only (skipped when
 * not root); several accounts, dm_config_account(),
 * a second file replacing an account by NAME, dm_config_copy() and
 * dm_config_free() (run under valgrind or ASan for the leaks).
 *
 * [resolve]: the defaults, every key, the server list normalised for
 * c-ares (IPv4 and IPv6, with and without a port), and each bad value
 * (a host name, a bad port, an empty item, a server twice, too many
 * servers, out-of-range numbers) failing with "PATH:LINE: [resolve] key:
 * why".
 * [alerts]: every key and its bounds; the webhook is https://, or
 * http:// to a loopback host, and no message ever quotes it (a Slack
 * webhook's path is its secret), be it given inline or in webhook_file,
 * which is read as password_file is (chmod 600); webhook and
 * webhook_file exclude each other; secret_file is read the same way.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "common/config.h"
#include "common/limits.h"

static char tmpdir[] = "/tmp/test_config.XXXXXX";

/* Write text (len bytes) to tmpdir/name; returns the path (static). */
static const char *
write_file_len(const char *name, const char *text, size_t len)
{
	static char path[256];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(fwrite(text, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
	/* Private: many tests write a password in the file itself, which
	 * only a file that group and others cannot use may hold. */
	assert_int_equal(chmod(path, 0600), 0);
	return path;
}

static const char *
write_file(const char *name, const char *text)
{
	return write_file_len(name, text, strlen(text));
}

static int
setup(void **state)
{
	(void)state;
	unsetenv(DM_CONFIG_ENV_PATH);
	unsetenv(DM_CONFIG_ENV_DB);
	return 0;
}

static void
assert_defaults(const struct dm_config *c)
{
	assert_string_equal(c->conninfo, "");
	assert_string_equal(dm_config_api_conninfo(c), "");
	assert_int_equal(c->api_conninfo_set, 0);
	assert_string_equal(dm_config_admin_conninfo(c), "");
	assert_int_equal(c->admin_conninfo_set, 0);
	assert_int_equal(c->batch_reports, 100);
	assert_int_equal(c->batch_ms, 500);
	assert_int_equal(c->keep_bodies, 0);
	assert_string_equal(c->tmpdir, "/tmp");
	assert_true(c->max_input_bytes == DM_MAX_INPUT_BYTES);
	assert_int_equal(c->max_ratio, DM_MAX_RATIO);
	assert_true(c->max_message_bytes == DM_MAX_MESSAGE_BYTES);
	assert_int_equal(c->log_level, LOG_INFO);
	assert_int_equal(c->log_syslog, 0);
	assert_int_equal(c->poll_interval_s, 60);
	assert_int_equal(c->idle_restart_s, 1740);
	assert_int_equal(c->reconnect_max_s, 300);
	assert_string_equal(c->resolve_servers, "");
	assert_int_equal(c->resolve_concurrency, 64);
	assert_int_equal(c->resolve_timeout_s, 5);
	assert_int_equal(c->resolve_deadline_s, 600);
	assert_string_equal(c->alerts_webhook, "");
	assert_int_equal(c->alerts_format, DM_ALERTS_JSON);
	assert_string_equal(c->alerts_secret, "");
	assert_int_equal(c->alerts_min_messages, 100);
	assert_int_equal(c->alerts_share_drop, 5);
	assert_int_equal(c->alerts_window_days, 7);
	assert_int_equal(c->alerts_max_per_hour, 10);
	assert_int_equal(c->alerts_timeout_s, 10);
	assert_string_equal(c->alerts_ca_file, "");
	assert_null(c->accounts);
	assert_int_equal(c->naccounts, 0);
	assert_string_equal(c->path, "");
}

/* Runs first: nothing has needed libinih yet. */
static void
test_inih_mapped_only_for_a_file(void **state)
{
	struct dm_config c;
	struct dm_error err;
	const char *path;

	(void)state;
	dm_config_init(&c);
	assert_null(dlopen(INIH_SONAME, RTLD_NOW | RTLD_NOLOAD));
	assert_int_equal(dm_config_set_db(&c, "dbname=x", &err), 0);
	assert_null(dlopen(INIH_SONAME, RTLD_NOW | RTLD_NOLOAD));
	path = write_file("lazy.conf", "[log]\nlevel = debug\n");
	assert_int_equal(dm_config_load_file(&c, path, &err), 0);
	assert_non_null(dlopen(INIH_SONAME, RTLD_NOW | RTLD_NOLOAD));
	assert_int_equal(c.log_level, LOG_DEBUG);
	dm_config_free(&c);
}

static void
test_defaults(void **state)
{
	struct dm_config c;

	(void)state;
	memset(&c, 0xa5, sizeof(c));
	dm_config_init(&c);
	assert_defaults(&c);
	assert_string_equal(dm_config_default_conninfo(), "");
	assert_string_equal(dm_config_log_level_name(LOG_ERR), "error");
	assert_string_equal(dm_config_log_level_name(LOG_WARNING), "warning");
	assert_string_equal(dm_config_log_level_name(LOG_INFO), "info");
	assert_string_equal(dm_config_log_level_name(LOG_DEBUG), "debug");
	assert_null(dm_config_log_level_name(LOG_NOTICE));
	/* free resets to the defaults. */
	c.batch_ms = 7;
	dm_config_free(&c);
	assert_defaults(&c);
}

static void
test_full_file(void **state)
{
	struct dm_config c;
	struct dm_error err;
	const char *path;

	(void)state;
	path = write_file("full.conf",
	    "; every key\n"
	    "# comments of both kinds\n"
	    "[database]\n"
	    "conninfo = host=/var/run/postgresql dbname=dmarcd "
	    "user=dmarcd_ingest\n"
	    "api_conninfo = dbname=dmarcd user=dmarcd_api  ; read only\n"
	    "admin_conninfo = dbname=dmarcd user=dmarcd_admin\n"
	    "\n"
	    "[ingest]\n"
	    "batch_reports = 10000\n"
	    "batch_ms = 1\n"
	    "keep_bodies = yes\n"
	    "tmpdir = /var/tmp/dmarcd\n"
	    "[limits]\n"
	    "max_input_bytes = 1G\n"
	    "max_ratio = 0\n"
	    "max_message_bytes: 512K\n"
	    "[log]\n"
	    "level = Warning\n");
	dm_config_init(&c);
	assert_int_equal(dm_config_load(&c, path, &err), 0);
	assert_string_equal(c.conninfo,
	    "host=/var/run/postgresql dbname=dmarcd user=dmarcd_ingest");
	assert_int_equal(c.api_conninfo_set, 1);
	assert_string_equal(dm_config_api_conninfo(&c),
	    "dbname=dmarcd user=dmarcd_api");
	assert_int_equal(c.admin_conninfo_set, 1);
	assert_string_equal(dm_config_admin_conninfo(&c),
	    "dbname=dmarcd user=dmarcd_admin");
	assert_int_equal(c.batch_reports, 10000);
	assert_int_equal(c.batch_ms, 1);
	assert_int_equal(c.keep_bodies, 1);
	assert_string_equal(c.tmpdir, "/var/tmp/dmarcd");
	assert_true(c.max_input_bytes == 1ULL << 30);
	assert_int_equal(c.max_ratio, 0);
	assert_true(c.max_message_bytes == 512ULL << 10);
	assert_int_equal(c.log_level, LOG_WARNING);
	assert_string_equal(c.path, path);
	dm_config_free(&c);
	assert_defaults(&c);
}

static void
test_empty_file_keeps_defaults(void **state)
{
	struct dm_config c;
	struct dm_error err;
	const char *path;

	(void)state;
	path = write_file("empty.conf", "; nothing set\n\n[ingest]\n");
	dm_config_init(&c);
	assert_int_equal(dm_config_load(&c, path, &err), 0);
	assert_string_equal(c.path, path);
	c.path[0] = '\0';
	assert_defaults(&c);
}

static void
test_booleans(void **state)
{
	static const struct {
		const char *text;
		int value;
	} cases[] = {
		{ "true", 1 }, { "yes", 1 }, { "on", 1 }, { "1", 1 },
		{ "TRUE", 1 }, { "Yes", 1 },
		{ "false", 0 }, { "no", 0 }, { "off", 0 }, { "0", 0 },
		{ "OFF", 0 },
	};
	struct dm_config c;
	struct dm_error err;
	char text[64];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		dm_config_init(&c);
		c.keep_bodies = !cases[i].value;
		snprintf(text, sizeof(text), "[ingest]\nkeep_bodies = %s\n",
		    cases[i].text);
		assert_int_equal(dm_config_load_file(&c,
		    write_file("bool.conf", text), &err), 0);
		assert_int_equal(c.keep_bodies, cases[i].value);
	}
}

static void
test_parse_size(void **state)
{
	static const struct {
		const char *text;
		int rc;
		uint64_t value;
	} cases[] = {
		{ "0", 0, 0 },
		{ "1024", 0, 1024 },
		{ "100B", 0, 100 },
		{ "1K", 0, 1024 },
		{ "1k", 0, 1024 },
		{ "2KB", 0, 2048 },
		{ "3KiB", 0, 3072 },
		{ "64M", 0, 64ULL << 20 },
		{ "64MiB", 0, 64ULL << 20 },
		{ "1G", 0, 1ULL << 30 },
		{ "16777215G", 0, 16777215ULL << 30 },
		{ "17179869184G", -1, 0 },	/* 2^64: overflow */
		{ "99999999999999999999", -1, 0 },
		{ "", -1, 0 },
		{ "M", -1, 0 },
		{ "-1", -1, 0 },
		{ " 1", -1, 0 },
		{ "1 M", -1, 0 },
		{ "1T", -1, 0 },
		{ "1KBB", -1, 0 },
		{ "1Ki", -1, 0 },
		{ "1.5G", -1, 0 },
	};
	uint64_t value;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		value = 12345;
		if (dm_config_parse_size(cases[i].text, &value) !=
		    cases[i].rc)
			fail_msg("'%s': expected %d", cases[i].text,
			    cases[i].rc);
		if (cases[i].rc == 0 && value != cases[i].value)
			fail_msg("'%s': got %llu", cases[i].text,
			    (unsigned long long)value);
		if (cases[i].rc != 0 && value != 12345)
			fail_msg("'%s': value changed on error",
			    cases[i].text);
	}
}

/* Each bad file fails with DM_E_USAGE, "PATH:LINE: why", and leaves the
 * configuration untouched even when good lines came before. */
static void
test_bad_files(void **state)
{
	static const struct {
		const char *text;
		const char *why;	/* after "PATH:" */
	} cases[] = {
		{ "[ingest]\nbatch_ms = 10\nbatch_reports = 0\n",
		  "3: [ingest] batch_reports: '0' is not between 1 and "
		  "10000" },
		{ "[ingest]\nbatch_reports = 10001\n",
		  "2: [ingest] batch_reports: '10001' is not between 1 and "
		  "10000" },
		{ "[ingest]\nbatch_ms = 60001\n",
		  "2: [ingest] batch_ms: '60001' is not between 1 and "
		  "60000" },
		{ "[ingest]\nbatch_ms = 99999999999999999999999\n",
		  "2: [ingest] batch_ms: '99999999999999999999999' is not "
		  "between 1 and 60000" },
		{ "[ingest]\nbatch_ms = fast\n",
		  "2: [ingest] batch_ms: 'fast' is not a whole number" },
		{ "[ingest]\nbatch_ms = -5\n",
		  "2: [ingest] batch_ms: '-5' is not a whole number" },
		{ "[ingest]\nbatch_ms = 5ms\n",
		  "2: [ingest] batch_ms: '5ms' is not a whole number" },
		{ "[limits]\nmax_ratio = 1000001\n",
		  "2: [limits] max_ratio: '1000001' is not between 0 and "
		  "1000000" },
		{ "\n\n[limits]\nmax_input_bytes = 1T\n",
		  "4: [limits] max_input_bytes: '1T' is not a size (a number "
		  "of bytes, or with K, M or G: 64M)" },
		{ "[limits]\nmax_message_bytes = 0\n",
		  "2: [limits] max_message_bytes: '0' is less than 1 byte" },
		{ "[ingest]\nkeep_bodies = maybe\n",
		  "2: [ingest] keep_bodies: 'maybe' is not a boolean "
		  "(true/false, yes/no, on/off, 1/0)" },
		{ "[ingest]\ntmpdir = tmp\n",
		  "2: [ingest] tmpdir: 'tmp' is not an absolute path" },
		{ "[log]\nlevel = loud\n",
		  "2: [log] level: 'loud' is not a level (error, warning, "
		  "info or debug)" },
		{ "[log]\nlevel = info\n[paths]\nspool = /x\n",
		  "3: unknown section [paths]" },
		{ "[log]\n[nothing]\n",
		  "2: unknown section [nothing]" },
		{ "[database]\npassword = secret\n",
		  "2: [database] password: unknown key" },
		{ "[ingest]\nbatch_ms=5\n[log]\nbatch_ms=5\n",
		  "4: [log] batch_ms: unknown key" },
		{ "batch_ms = 5\n",
		  "1: batch_ms: a key before any [section]" },
		{ "[ingest]\nbatch_ms = 5\n\n[ingest]\nbatch_ms = 6\n",
		  "5: [ingest] batch_ms: set again (first on line 2)" },
		{ "[database]\nconninfo = host=a\n  dbname=b\n",
		  "3: [database] conninfo: set again (first on line 2)" },
		{ "[ingest]\nbatch_ms\n",
		  "2: not a [section] nor a 'key = value' line" },
		{ "[ingest\nbatch_ms = 5\n",
		  "1: not a [section] nor a 'key = value' line" },
		/* libinih's syntax error comes first: it is the one told. */
		{ "[ingest]\nnonsense\nbatch_ms = 0\n",
		  "2: not a [section] nor a 'key = value' line" },
	};
	struct dm_config c;
	struct dm_error err;
	char expected[DM_ERROR_MSG_MAX];
	const char *path;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		dm_config_init(&c);
		path = write_file("bad.conf", cases[i].text);
		dm_error_clear(&err);
		assert_int_equal(dm_config_load(&c, path, &err), -1);
		assert_int_equal(err.code, DM_E_USAGE);
		snprintf(expected, sizeof(expected), "%s:%s", path,
		    cases[i].why);
		assert_string_equal(err.msg, expected);
		assert_defaults(&c);
	}
}

static void
test_overlong_line_and_nul(void **state)
{
	struct dm_config c;
	struct dm_error err;
	char text[1024], expected[DM_ERROR_MSG_MAX];
	const char *path;
	int n;

	(void)state;
	/* libinih would cut it and read the tail, "password=...", as a
	 * line of its own. */
	n = snprintf(text, sizeof(text), "[database]\nconninfo = host=%0300d"
	    " password=x\n", 0);
	assert_true(n > 0 && (size_t)n < sizeof(text));
	path = write_file("long.conf", text);
	dm_config_init(&c);
	assert_int_equal(dm_config_load_file(&c, path, &err), -1);
	assert_int_equal(err.code, DM_E_USAGE);
	snprintf(expected, sizeof(expected), "%s:2: line longer than ", path);
	assert_memory_equal(err.msg, expected, strlen(expected));
	assert_null(strstr(err.msg, "password"));
	assert_defaults(&c);

	path = write_file_len("nul.conf", "[log]\nlevel = info\0debug\n", 25);
	assert_int_equal(dm_config_load_file(&c, path, &err), -1);
	assert_int_equal(err.code, DM_E_USAGE);
	snprintf(expected, sizeof(expected), "%s:2: a NUL byte", path);
	assert_string_equal(err.msg, expected);
}

static void
test_missing_or_unreadable_file(void **state)
{
	struct dm_config c;
	struct dm_error err;
	char path[256], expected[DM_ERROR_MSG_MAX];

	(void)state;
	dm_config_init(&c);
	snprintf(path, sizeof(path), "%s/absent.conf", tmpdir);
	assert_int_equal(dm_config_load(&c, path, &err), -1);
	assert_int_equal(err.code, DM_E_NOINPUT);
	snprintf(expected, sizeof(expected), "cannot open %s: %s", path,
	    strerror(ENOENT));
	assert_string_equal(err.msg, expected);
	assert_defaults(&c);

	/* $DMARCD_CONFIG, when set, must exist too. */
	setenv(DM_CONFIG_ENV_PATH, path, 1);
	assert_int_equal(dm_config_load(&c, NULL, &err), -1);
	assert_int_equal(err.code, DM_E_NOINPUT);
	assert_string_equal(err.msg, expected);

	/* A directory is not a configuration file. */
	assert_int_equal(dm_config_load(&c, tmpdir, &err), -1);
	assert_int_equal(err.code, DM_E_NOINPUT);
	snprintf(expected, sizeof(expected), "%s is not a regular file",
	    tmpdir);
	assert_string_equal(err.msg, expected);
	assert_defaults(&c);
}

static void
test_file_precedence(void **state)
{
	struct dm_config c;
	struct dm_error err;
	char env_path[256], explicit_path[256];
	struct stat st;

	(void)state;
	snprintf(env_path, sizeof(env_path), "%s",
	    write_file("env.conf", "[ingest]\nbatch_ms = 11\n"));
	snprintf(explicit_path, sizeof(explicit_path), "%s",
	    write_file("explicit.conf", "[ingest]\nbatch_ms = 22\n"));

	/* --config wins over $DMARCD_CONFIG. */
	setenv(DM_CONFIG_ENV_PATH, env_path, 1);
	dm_config_init(&c);
	assert_int_equal(dm_config_load(&c, explicit_path, &err), 0);
	assert_int_equal(c.batch_ms, 22);
	assert_string_equal(c.path, explicit_path);

	/* Without --config, $DMARCD_CONFIG. */
	dm_config_init(&c);
	assert_int_equal(dm_config_load(&c, NULL, &err), 0);
	assert_int_equal(c.batch_ms, 11);
	assert_string_equal(c.path, env_path);

	/* Neither, and no default file: the defaults, no error. An empty
	 * $DMARCD_CONFIG counts as unset. */
	if (stat(DM_CONFIG_DEFAULT_PATH, &st) == 0)
		skip();
	setenv(DM_CONFIG_ENV_PATH, "", 1);
	dm_config_init(&c);
	assert_int_equal(dm_config_load(&c, NULL, &err), 0);
	assert_defaults(&c);
}

static void
test_db_precedence(void **state)
{
	struct dm_config c;
	struct dm_error err;
	const char *path;
	char big[DM_CONFIG_CONNINFO_MAX + 10];

	(void)state;
	path = write_file("db.conf", "[database]\nconninfo = dbname=file\n");

	/* The file over the default. */
	dm_config_init(&c);
	assert_int_equal(dm_config_load(&c, path, &err), 0);
	assert_string_equal(c.conninfo, "dbname=file");
	assert_string_equal(dm_config_api_conninfo(&c), "dbname=file");

	/* DMARCD_DB over the file; empty counts as unset. */
	setenv(DM_CONFIG_ENV_DB, "", 1);
	dm_config_init(&c);
	assert_int_equal(dm_config_load(&c, path, &err), 0);
	assert_string_equal(c.conninfo, "dbname=file");
	setenv(DM_CONFIG_ENV_DB, "dbname=env", 1);
	dm_config_init(&c);
	assert_int_equal(dm_config_load(&c, path, &err), 0);
	assert_string_equal(c.conninfo, "dbname=env");
	assert_string_equal(c.path, path);
	/* The API follows conninfo when api_conninfo is not set. */
	assert_string_equal(dm_config_api_conninfo(&c), "dbname=env");

	/* --db over DMARCD_DB. */
	assert_int_equal(dm_config_set_db(&c, "dbname=flag", &err), 0);
	assert_string_equal(c.conninfo, "dbname=flag");
	assert_string_equal(dm_config_api_conninfo(&c), "dbname=flag");

	/* A --db too long to hold is refused and changes nothing. */
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(dm_config_set_db(&c, big, &err), -1);
	assert_int_equal(err.code, DM_E_USAGE);
	assert_string_equal(c.conninfo, "dbname=flag");
	/* The same from DMARCD_DB, named as such; the file is not taken
	 * either. */
	setenv(DM_CONFIG_ENV_DB, big, 1);
	dm_config_init(&c);
	assert_int_equal(dm_config_load(&c, path, &err), -1);
	assert_int_equal(err.code, DM_E_USAGE);
	assert_string_equal(err.msg, "DMARCD_DB: the conninfo is longer "
	    "than 1023 bytes");
	assert_defaults(&c);
	unsetenv(DM_CONFIG_ENV_DB);

	/* An api_conninfo of its own stays when conninfo changes. */
	path = write_file("api.conf", "[database]\nconninfo = dbname=a\n"
	    "api_conninfo = dbname=a user=api\n");
	dm_config_init(&c);
	assert_int_equal(dm_config_load(&c, path, &err), 0);
	assert_int_equal(dm_config_set_db(&c, "dbname=b", &err), 0);
	assert_string_equal(c.conninfo, "dbname=b");
	assert_string_equal(dm_config_api_conninfo(&c), "dbname=a user=api");
	/* dmarcd token follows conninfo when admin_conninfo is not set. */
	assert_string_equal(dm_config_admin_conninfo(&c), "dbname=b");
}

static void
assert_redacted(const char *conninfo, const char *expected)
{
	char out[512];
	size_t len;

	len = dm_config_redact(conninfo, out, sizeof(out));
	if (strcmp(out, expected) != 0)
		fail_msg("redact '%s': got '%s', expected '%s'", conninfo,
		    out, expected);
	assert_int_equal(len, strlen(expected));
}

static void
test_redact_keywords(void **state)
{
	(void)state;
	assert_redacted("host=db password=s3cret dbname=dmarcd",
	    "host=db password=*** dbname=dmarcd");
	assert_redacted("password=s3cret", "password=***");
	assert_redacted("host=db password = s3cret",
	    "host=db password = ***");
	assert_redacted("host=db password='two words' user=u",
	    "host=db password=*** user=u");
	assert_redacted("password='it\\'s' user=u", "password=*** user=u");
	assert_redacted("password=a\\ b user=u", "password=*** user=u");
	/* libpq skips white space after '=': the password is "user=u". */
	assert_redacted("password= user=u", "password= ***");
	assert_redacted("sslpassword=k host=h", "sslpassword=*** host=h");
	assert_redacted("PASSWORD=x", "PASSWORD=***");
	/* Unparsable from some point: the rest goes. */
	assert_redacted("host=h password=two words",
	    "host=h password=*** ***");
	assert_redacted("host=h password='unterminated",
	    "host=h password=***");
	/* A dbname that is a connection string. */
	assert_redacted("dbname='postgresql://u:pw@h/db' host=h",
	    "dbname=*** host=h");
	assert_redacted("dbname='user=u password=pw'", "dbname=***");
	/* Nothing to hide: unchanged, spacing and quoting too. */
	assert_redacted("", "");
	assert_redacted("host=/var/run/postgresql dbname=dmarcd "
	    "user=dmarcd_ingest", "host=/var/run/postgresql dbname=dmarcd "
	    "user=dmarcd_ingest");
	assert_redacted("  host = 'a b'  passfile=/x/.pgpass ",
	    "  host = 'a b'  passfile=/x/.pgpass ");
}

static void
test_redact_uri(void **state)
{
	(void)state;
	assert_redacted("postgresql://dmarcd:s3cret@db.example:5432/dmarcd",
	    "postgresql://dmarcd:***@db.example:5432/dmarcd");
	assert_redacted("postgres://:s3cret@db/dmarcd",
	    "postgres://:***@db/dmarcd");
	assert_redacted("postgresql://u:p%40ss@h1,h2:5433/db?sslmode=require",
	    "postgresql://u:***@h1,h2:5433/db?sslmode=require");
	assert_redacted("postgresql://h/db?user=u&password=s3cret&"
	    "sslmode=require",
	    "postgresql://h/db?user=u&password=***&sslmode=require");
	assert_redacted("postgresql:///db?pass%77ord=s3cret",
	    "postgresql:///db?pass%77ord=***");
	assert_redacted("postgresql://h/db?sslpassword=k",
	    "postgresql://h/db?sslpassword=***");
	/* Nothing to hide. */
	assert_redacted("postgresql://dmarcd@db.example/dmarcd",
	    "postgresql://dmarcd@db.example/dmarcd");
	assert_redacted("postgresql://db.example:5432/dmarcd?sslmode=require",
	    "postgresql://db.example:5432/dmarcd?sslmode=require");
	assert_redacted("postgresql://", "postgresql://");
}

static void
test_redact_bounded(void **state)
{
	const char *conninfo = "user=u password=s3cret host=h";
	const char *expected = "user=u password=*** host=h";
	char out[20];
	size_t len;

	(void)state;
	memset(out, 'Z', sizeof(out));
	len = dm_config_redact(conninfo, out, sizeof(out));
	assert_int_equal(len, strlen(expected));
	assert_int_equal(strlen(out), sizeof(out) - 1);
	assert_memory_equal(out, expected, sizeof(out) - 1);
	/* Cut or not, no byte of the password is ever written. */
	assert_null(strstr(out, "s3"));
	memset(out, 'Z', sizeof(out));
	assert_int_equal(dm_config_redact(conninfo, out, 0), len);
	assert_int_equal(out[0], 'Z');
	assert_int_equal(dm_config_redact(conninfo, out, 1), len);
	assert_int_equal(out[0], '\0');
}

/* IMAP accounts, [daemon] and [log] syslog */

/* A minimal good account, 4 lines. */
#define ACCT	"[account a]\nhost = h\nuser = u\npassword = p\n"

/* A value no message may ever show, nor any part of it. */
#define SECRET	"Zq9-secret-VALUE"

static const char *DM_PRINTF(2, 3)
write_filef(const char *name, const char *fmt, ...)
{
	char text[32768];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	assert_true(n >= 0 && (size_t)n < sizeof(text));
	return write_file(name, text);
}

/* A *_file: text in tmpdir/name with that mode; its path into path. */
static void
write_secret(const char *name, const char *text, mode_t mode, char *path,
    size_t size)
{
	snprintf(path, size, "%s", write_file(name, text));
	assert_int_equal(chmod(path, mode), 0);
}

static int
load_text(struct dm_config *c, const char *text, struct dm_error *err)
{
	dm_config_init(c);
	dm_error_clear(err);
	return dm_config_load_file(c, write_file("acct.conf", text), err);
}

static void
load_ok(struct dm_config *c, const char *text)
{
	struct dm_error err;

	if (load_text(c, text, &err) != 0)
		fail_msg("%s", err.msg);
}

/* The load fails with DM_E_USAGE and "PATH:" why, and changes nothing;
 * the message is left in err_r if not NULL. */
static void
load_fails(const char *text, const char *why, struct dm_error *err_r)
{
	struct dm_config c;
	struct dm_error err;
	char expected[DM_ERROR_MSG_MAX];
	const char *path;

	dm_config_init(&c);
	path = write_file("acct.conf", text);
	dm_error_clear(&err);
	assert_int_equal(dm_config_load_file(&c, path, &err), -1);
	snprintf(expected, sizeof(expected), "%s:%s", path, why);
	if (strcmp(err.msg, expected) != 0)
		fail_msg("got '%s', expected '%s'", err.msg, expected);
	assert_int_equal(err.code, DM_E_USAGE);
	assert_defaults(&c);
	if (err_r != NULL)
		*err_r = err;
}

static void
test_account_defaults(void **state)
{
	const struct dm_account *a;
	struct dm_config c;

	(void)state;
	load_ok(&c, "[account example]\nhost = imap.example.com\n"
	    "user = dmarc@example.com\npassword = pw\n");
	assert_int_equal(c.naccounts, 1);
	a = &c.accounts[0];
	assert_string_equal(a->name, "example");
	assert_string_equal(a->host, "imap.example.com");
	assert_int_equal(a->port, 993);
	assert_int_equal(a->tls, DM_TLS_IMAPS);
	assert_int_equal(a->tls_none_explicit, 0);
	assert_int_equal(a->tls_verify, 1);
	assert_string_equal(a->ca_file, "");
	assert_string_equal(a->user, "dmarc@example.com");
	assert_string_equal(a->password, "pw");
	assert_int_equal(a->password_set, 1);
	assert_int_equal(a->auth, DM_AUTH_AUTO);
	assert_string_equal(a->oauth2_token_url, "");
	assert_string_equal(a->oauth2_client_id, "");
	assert_string_equal(a->oauth2_client_secret, "");
	assert_string_equal(a->oauth2_refresh_token, "");
	assert_int_equal(a->nmailboxes, 1);
	assert_string_equal(a->mailboxes[0], "INBOX");
	assert_string_equal(a->processed_folder, "dmarcd-processed");
	assert_string_equal(a->rejected_folder, "dmarcd-rejected");
	assert_int_equal(a->delete_after_store, 0);
	assert_int_equal(a->fetch_batch, 50);
	assert_int_equal(a->timeout_s, 60);
	/* The rest keeps its defaults. */
	assert_int_equal(c.poll_interval_s, 60);
	assert_int_equal(c.idle_restart_s, 1740);
	assert_int_equal(c.reconnect_max_s, 300);
	assert_int_equal(c.log_syslog, 0);
	dm_config_free(&c);
	assert_defaults(&c);

	/* Without TLS on connect, the port is 143. */
	load_ok(&c, ACCT "tls = starttls\n");
	assert_int_equal(c.accounts[0].tls, DM_TLS_STARTTLS);
	assert_int_equal(c.accounts[0].port, 143);
	assert_int_equal(c.accounts[0].tls_none_explicit, 0);
	dm_config_free(&c);
	/* tls = none to a remote host: allowed, as it is written. */
	load_ok(&c, "[account a]\nhost = imap.example.com\nuser = u\n"
	    "password = p\ntls = None\n");
	assert_int_equal(c.accounts[0].tls, DM_TLS_NONE);
	assert_int_equal(c.accounts[0].tls_none_explicit, 1);
	assert_int_equal(c.accounts[0].port, 143);
	dm_config_free(&c);
	/* A port given stays whatever tls is. */
	load_ok(&c, ACCT "tls = imaps\nport = 10993\n");
	assert_int_equal(c.accounts[0].port, 10993);
	dm_config_free(&c);
	load_ok(&c, ACCT "tls = none\nport = 993\n");
	assert_int_equal(c.accounts[0].port, 993);
	dm_config_free(&c);
}

static void
test_account_every_key(void **state)
{
	char pass[256], csecret[256], rtoken[256];
	const struct dm_account *a;
	struct dm_config c;
	struct dm_error err;
	const char *path;

	(void)state;
	write_secret("imap.pass", "s3cret from file\n", 0600, pass,
	    sizeof(pass));
	write_secret("client.secret", "client-secret\r\n", 0400, csecret,
	    sizeof(csecret));
	write_secret("refresh.token", "1//refresh-token\n\n", 0600, rtoken,
	    sizeof(rtoken));
	path = write_filef("every.conf",
	    "[log]\nlevel = debug\n"
	    "[account full]\n"
	    "host = 127.0.0.1\n"
	    "port = 1143\n"
	    "tls = starttls\n"
	    "tls_verify = no\n"
	    "ca_file = /etc/dmarcd/ca.pem\n"
	    "user = dmarc@example.com\n"
	    "password_file = %s\n"
	    "auth = PLAIN\n"
	    "mailboxes =  INBOX , Reports/DMARC,Archive \n"
	    "processed_folder = Done\n"
	    "rejected_folder = Bad mail\n"
	    "delete_after_store = yes\n"
	    "fetch_batch = 1000\n"
	    "timeout = 1\n"
	    "oauth2_token_url = https://oauth2.googleapis.com/token\n"
	    "oauth2_client_id = 1234.apps.googleusercontent.com\n"
	    "oauth2_client_secret_file = %s\n"
	    "oauth2_refresh_token_file = %s\n"
	    "\n"
	    "[account google]\n"
	    "host = imap.gmail.com\n"
	    "user = dmarc@example.com\n"
	    "auth = xoauth2\n"
	    "oauth2_token_url = https://oauth2.googleapis.com/token\n"
	    "oauth2_client_id = id-2\n"
	    "oauth2_client_secret = csecret\n"
	    "oauth2_refresh_token = rtoken\n"
	    "[ingest]\nbatch_ms = 7\n",
	    pass, csecret, rtoken);
	dm_config_init(&c);
	if (dm_config_load_file(&c, path, &err) != 0)
		fail_msg("%s", err.msg);
	assert_int_equal(c.log_level, LOG_DEBUG);
	assert_int_equal(c.batch_ms, 7);	/* a section after accounts */
	assert_int_equal(c.naccounts, 2);
	a = &c.accounts[0];
	assert_string_equal(a->name, "full");
	assert_string_equal(a->host, "127.0.0.1");
	assert_int_equal(a->port, 1143);
	assert_int_equal(a->tls, DM_TLS_STARTTLS);
	assert_int_equal(a->tls_none_explicit, 0);
	assert_int_equal(a->tls_verify, 0);
	assert_string_equal(a->ca_file, "/etc/dmarcd/ca.pem");
	assert_string_equal(a->user, "dmarc@example.com");
	assert_string_equal(a->password, "s3cret from file");
	assert_int_equal(a->password_set, 1);
	/* An explicit method stays, even with a token URL. */
	assert_int_equal(a->auth, DM_AUTH_PLAIN);
	assert_int_equal(a->nmailboxes, 3);
	assert_string_equal(a->mailboxes[0], "INBOX");
	assert_string_equal(a->mailboxes[1], "Reports/DMARC");
	assert_string_equal(a->mailboxes[2], "Archive");
	assert_string_equal(a->processed_folder, "Done");
	assert_string_equal(a->rejected_folder, "Bad mail");
	assert_int_equal(a->delete_after_store, 1);
	assert_int_equal(a->fetch_batch, 1000);
	assert_int_equal(a->timeout_s, 1);
	assert_string_equal(a->oauth2_token_url,
	    "https://oauth2.googleapis.com/token");
	assert_string_equal(a->oauth2_client_id,
	    "1234.apps.googleusercontent.com");
	assert_string_equal(a->oauth2_client_secret, "client-secret");
	assert_string_equal(a->oauth2_refresh_token, "1//refresh-token");

	a = &c.accounts[1];
	assert_string_equal(a->name, "google");
	assert_int_equal(a->auth, DM_AUTH_XOAUTH2);
	assert_int_equal(a->password_set, 0);
	assert_string_equal(a->password, "");
	assert_string_equal(a->oauth2_client_id, "id-2");
	assert_string_equal(a->oauth2_client_secret, "csecret");
	assert_string_equal(a->oauth2_refresh_token, "rtoken");
	dm_config_free(&c);
	assert_defaults(&c);
}

static void
test_account_oauth2(void **state)
{
	static const char *const urls[] = {
		"https://login.microsoftonline.com/common/oauth2/v2.0/token",
		"HTTPS://example.com",
		"https://user@example.com:8443/token?x=1",
		"http://localhost:8080/token",
		"http://127.0.0.1/token",
		"http://127.9.8.7:1/",
		"http://[::1]:8080/token",
	};
	struct dm_config c;
	char text[512];
	size_t i;

	(void)state;
	/* auto with a token URL is XOAUTH2: no password needed; the
	 * client secret is optional. */
	load_ok(&c, "[account o]\nhost = h\nuser = u\n"
	    "oauth2_token_url = https://example.com/token\n"
	    "oauth2_client_id = id\noauth2_refresh_token = rt\n");
	assert_int_equal(c.accounts[0].auth, DM_AUTH_XOAUTH2);
	assert_string_equal(c.accounts[0].oauth2_client_secret, "");
	assert_int_equal(c.accounts[0].password_set, 0);
	dm_config_free(&c);
	/* A password may be there too: XOAUTH2 still. */
	load_ok(&c, ACCT "oauth2_token_url = https://example.com/token\n"
	    "oauth2_client_id = id\noauth2_refresh_token = rt\n");
	assert_int_equal(c.accounts[0].auth, DM_AUTH_XOAUTH2);
	dm_config_free(&c);
	/* auto without one stays auto (PLAIN or LOGIN, the server tells). */
	load_ok(&c, ACCT "auth = auto\n");
	assert_int_equal(c.accounts[0].auth, DM_AUTH_AUTO);
	dm_config_free(&c);
	load_ok(&c, ACCT "auth = login\n");
	assert_int_equal(c.accounts[0].auth, DM_AUTH_LOGIN);
	dm_config_free(&c);

	for (i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		snprintf(text, sizeof(text), "[account o]\nhost = h\n"
		    "user = u\noauth2_token_url = %s\n"
		    "oauth2_client_id = id\noauth2_refresh_token = rt\n",
		    urls[i]);
		load_ok(&c, text);
		assert_string_equal(c.accounts[0].oauth2_token_url, urls[i]);
		dm_config_free(&c);
	}
}

static void
test_daemon_and_syslog(void **state)
{
	struct dm_config c;

	(void)state;
	load_ok(&c, "[daemon]\npoll_interval = 86400\nidle_restart = 10\n"
	    "reconnect_max = 1\n[log]\nsyslog = yes\n");
	assert_int_equal(c.poll_interval_s, 86400);
	assert_int_equal(c.idle_restart_s, 10);
	assert_int_equal(c.reconnect_max_s, 1);
	assert_int_equal(c.log_syslog, 1);
	assert_int_equal(c.naccounts, 0);
	load_ok(&c, "[daemon]\npoll_interval = 1\nidle_restart = 1740\n"
	    "reconnect_max = 3600\n[log]\nsyslog = off\n");
	assert_int_equal(c.poll_interval_s, 1);
	assert_int_equal(c.idle_restart_s, 1740);
	assert_int_equal(c.reconnect_max_s, 3600);
	assert_int_equal(c.log_syslog, 0);
}

static void
test_resolve(void **state)
{
	static const struct {
		const char *text;
		const char *why;	/* after "PATH:" */
	} bad[] = {
		{ "[resolve]\nservers = ns1.example.com\n",
		  "2: [resolve] servers: 'ns1.example.com' is not an IP "
		  "address (with an optional :PORT; [IPv6]:PORT; no host "
		  "names)" },
		{ "[resolve]\nservers = 127.0.0.1:0\n",
		  "2: [resolve] servers: '127.0.0.1:0': the port is not a "
		  "number from 1 to 65535" },
		{ "[resolve]\nservers = 127.0.0.1:65536\n",
		  "2: [resolve] servers: '127.0.0.1:65536': the port is not a "
		  "number from 1 to 65535" },
		{ "[resolve]\nservers = 127.0.0.1:+53\n",
		  "2: [resolve] servers: '127.0.0.1:+53': the port is not a "
		  "number from 1 to 65535" },
		{ "[resolve]\nservers = [::1]x\n",
		  "2: [resolve] servers: '[::1]x' is not an IP address (with "
		  "an optional :PORT; [IPv6]:PORT; no host names)" },
		{ "[resolve]\nservers = [127.0.0.1]:53\n",
		  "2: [resolve] servers: '[127.0.0.1]:53' is not an IP "
		  "address (with an optional :PORT; [IPv6]:PORT; no host "
		  "names)" },
		{ "[resolve]\nservers = 127.0.0.1,,::1\n",
		  "2: [resolve] servers: an empty item in '127.0.0.1,,::1'" },
		{ "[resolve]\nservers = 127.0.0.1, 127.0.0.1:53\n",
		  "2: [resolve] servers: 127.0.0.1:53 is listed twice" },
		{ "[resolve]\nservers = 127.0.0.1:1, 127.0.0.1:2, 127.0.0.1:3, "
		  "127.0.0.1:4, 127.0.0.1:5, 127.0.0.1:6, 127.0.0.1:7, "
		  "127.0.0.1:8, 127.0.0.1:9\n",
		  "2: [resolve] servers: more than 8 servers" },
		{ "[resolve]\nconcurrency = 0\n",
		  "2: [resolve] concurrency: '0' is not between 1 and 1024" },
		{ "[resolve]\nconcurrency = 1025\n",
		  "2: [resolve] concurrency: '1025' is not between 1 and "
		  "1024" },
		{ "[resolve]\ntimeout = 61\n",
		  "2: [resolve] timeout: '61' is not between 1 and 60" },
		{ "[resolve]\ndeadline = 0\n",
		  "2: [resolve] deadline: '0' is not between 1 and 86400" },
		{ "[resolve]\nserver = 127.0.0.1\n",
		  "2: [resolve] server: unknown key" },
	};
	struct dm_config c;
	char out[DM_CONFIG_SERVERS_MAX], why[256];
	size_t i;

	(void)state;
	load_ok(&c, "[resolve]\nservers = 127.0.0.1:5353 , ::1, "
	    "[2001:db8::53]:5300,192.0.2.1\nconcurrency = 1024\n"
	    "timeout = 1\ndeadline = 86400\n");
	assert_string_equal(c.resolve_servers, "127.0.0.1:5353,[::1]:53,"
	    "[2001:db8::53]:5300,192.0.2.1:53");
	assert_int_equal(c.resolve_concurrency, 1024);
	assert_int_equal(c.resolve_timeout_s, 1);
	assert_int_equal(c.resolve_deadline_s, 86400);
	dm_config_free(&c);
	load_ok(&c, "[resolve]\nservers = [::1]\nconcurrency = 1\n"
	    "timeout = 60\ndeadline = 1\n");
	assert_string_equal(c.resolve_servers, "[::1]:53");
	assert_int_equal(c.resolve_concurrency, 1);
	assert_int_equal(c.resolve_timeout_s, 60);
	assert_int_equal(c.resolve_deadline_s, 1);
	dm_config_free(&c);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		load_fails(bad[i].text, bad[i].why, NULL);

	/* The parser alone: what --server gives it, and a short buffer. */
	assert_int_equal(dm_config_parse_servers("10.0.0.1", out, sizeof(out),
	    why, sizeof(why)), 0);
	assert_string_equal(out, "10.0.0.1:53");
	assert_int_equal(dm_config_parse_servers("10.0.0.1:53,10.0.0.2", out,
	    12, why, sizeof(why)), -1);
	assert_string_equal(why, "the list is longer than 11 bytes");
	assert_int_equal(dm_config_parse_servers("", out, sizeof(out), why,
	    sizeof(why)), -1);
	assert_string_equal(why, "an empty item in ''");
	assert_int_equal(dm_config_parse_servers("1.2.3", out, sizeof(out),
	    why, sizeof(why)), -1);
}

/* The reader follows [section] lines as libinih does: after a UTF-8
 * BOM, indented when no key comes before, with a comment after (and an
 * indented one after a key is more of its value: see test_bad_accounts). */
#define HOOK	"https://hooks.example.com/services/T0/B0/Zq9HookSecret"

static void
test_alerts(void **state)
{
	static const struct {
		const char *text;
		const char *why;	/* after "PATH:" */
	} bad[] = {
		{ "[alerts]\nformat = xml\n",
		  "2: [alerts] format: 'xml' is not json or slack" },
		{ "[alerts]\nmin_messages = 0\n",
		  "2: [alerts] min_messages: '0' is not between 1 and "
		  "1000000000" },
		{ "[alerts]\nshare_drop = 101\n",
		  "2: [alerts] share_drop: '101' is not between 1 and 100" },
		{ "[alerts]\nwindow_days = 91\n",
		  "2: [alerts] window_days: '91' is not between 1 and 90" },
		{ "[alerts]\nmax_per_hour = 0\n",
		  "2: [alerts] max_per_hour: '0' is not between 1 and 3600" },
		{ "[alerts]\ntimeout = 301\n",
		  "2: [alerts] timeout: '301' is not between 1 and 300" },
		{ "[alerts]\nca_file = relative.pem\n",
		  "2: [alerts] ca_file: 'relative.pem' is not an absolute "
		  "path" },
		{ "[alerts]\nsecret_file = key\n",
		  "2: [alerts] secret_file: 'key' is not an absolute path" },
		{ "[alerts]\nbogus = 1\n", "2: [alerts] bogus: unknown key" },
	};
	/* Refused webhooks: never quoted, not even in part. */
	static const char *const bad_hooks[] = {
		"http://hooks.example.com/services/T0/B0/Zq9HookSecret",
		"ftp://hooks.example.com/Zq9HookSecret",
		"hooks.example.com/Zq9HookSecret",
		"https:///Zq9HookSecret",
		"http://10.0.0.1/Zq9HookSecret",
	};
	struct dm_config c, copy;
	struct dm_error err;
	char text[512], why[512], path[256], key[256];
	size_t i;

	(void)state;
	load_ok(&c, "[alerts]\nwebhook = " HOOK "\nformat = slack\n"
	    "min_messages = 1\nshare_drop = 100\nwindow_days = 90\n"
	    "max_per_hour = 3600\ntimeout = 1\n"
	    "ca_file = /etc/ssl/ca.pem\n");
	assert_string_equal(c.alerts_webhook, HOOK);
	assert_int_equal(c.alerts_format, DM_ALERTS_SLACK);
	assert_int_equal(c.alerts_min_messages, 1);
	assert_int_equal(c.alerts_share_drop, 100);
	assert_int_equal(c.alerts_window_days, 90);
	assert_int_equal(c.alerts_max_per_hour, 3600);
	assert_int_equal(c.alerts_timeout_s, 1);
	assert_string_equal(c.alerts_ca_file, "/etc/ssl/ca.pem");
	assert_int_equal(dm_config_copy(&copy, &c, &err), 0);
	assert_string_equal(copy.alerts_webhook, HOOK);
	dm_config_free(&copy);
	dm_config_free(&c);
	assert_string_equal(c.alerts_webhook, "");
	/* Loopback http, any case of the format. */
	load_ok(&c, "[alerts]\nwebhook = http://127.0.0.1:8080/hook\n"
	    "format = JSON\n");
	assert_string_equal(c.alerts_webhook, "http://127.0.0.1:8080/hook");
	assert_int_equal(c.alerts_format, DM_ALERTS_JSON);
	load_ok(&c, "[alerts]\nwebhook = http://[::1]/h\n");
	load_ok(&c, "[alerts]\nwebhook = http://localhost/h\n");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		load_fails(bad[i].text, bad[i].why, NULL);
	for (i = 0; i < sizeof(bad_hooks) / sizeof(bad_hooks[0]); i++) {
		snprintf(text, sizeof(text), "[alerts]\nwebhook = %s\n",
		    bad_hooks[i]);
		load_fails(text, "2: [alerts] webhook: not an https:// URL "
		    "(http:// only to a loopback host); the value is not "
		    "shown, it may hold a secret", &err);
		assert_null(strstr(err.msg, "Zq9"));
		assert_null(strstr(err.msg, "example"));
	}
	/* webhook_file: read as password_file is, checked, never quoted. */
	write_secret("hook.url", HOOK "\n", 0644, path, sizeof(path));
	snprintf(text, sizeof(text), "[alerts]\nwebhook_file = %s\n", path);
	snprintf(why, sizeof(why), "2: [alerts] webhook_file: %s is readable "
	    "by others (mode 0644); chmod 600 it", path);
	load_fails(text, why, &err);
	assert_int_equal(chmod(path, 0600), 0);
	load_ok(&c, text);
	assert_string_equal(c.alerts_webhook, HOOK);
	dm_config_free(&c);
	write_secret("hook.url", "http://192.0.2.1/Zq9HookSecret\n", 0600,
	    path, sizeof(path));
	load_fails(text, "2: [alerts] webhook_file: not an https:// URL "
	    "(http:// only to a loopback host); the value is not shown, it "
	    "may hold a secret", &err);
	assert_null(strstr(err.msg, "Zq9"));
	snprintf(text, sizeof(text), "[alerts]\nwebhook = " HOOK "\n"
	    "webhook_file = %s\n", path);
	snprintf(why, sizeof(why), "3: [alerts] webhook_file: [alerts] "
	    "webhook is set too (line 2): give one of them");
	load_fails(text, why, &err);
	assert_null(strstr(err.msg, "Zq9"));
	/* secret_file: the HMAC key. */
	write_secret("alerts.key", SECRET "\n", 0600, key, sizeof(key));
	snprintf(text, sizeof(text), "[alerts]\nsecret_file = %s\n", key);
	load_ok(&c, text);
	assert_string_equal(c.alerts_secret, SECRET);
	assert_int_equal(c.naccounts, 0);
	dm_config_free(&c);
	assert_string_equal(c.alerts_secret, "");
	assert_int_equal(chmod(key, 0640), 0);
	snprintf(why, sizeof(why), "2: [alerts] secret_file: %s is readable "
	    "by others (mode 0640); chmod 600 it", key);
	load_fails(text, why, &err);
	assert_null(strstr(err.msg, "Zq9"));
}

/* The reader follows [section] lines as libinih does: after a UTF-8
 * BOM, indented when no key comes before, with a comment after (and an
 * indented one after a key is more of its value: see test_bad_accounts). */
static void
test_section_lines(void **state)
{
	struct dm_config c;

	(void)state;
	load_ok(&c, "\xEF\xBB\xBF[log]\nlevel = debug\n");
	assert_int_equal(c.log_level, LOG_DEBUG);
	load_ok(&c, "  [log]\nlevel = debug\n");
	assert_int_equal(c.log_level, LOG_DEBUG);
	load_ok(&c, "; accounts\n[account a] ; the first\nhost = h\n"
	    "user = u\npassword = p\n\n[daemon]\n"
	    "poll_interval = 5\n");
	assert_int_equal(c.naccounts, 1);
	assert_int_equal(c.poll_interval_s, 5);
	dm_config_free(&c);
}

static void
test_bad_accounts(void **state)
{
	static const struct {
		const char *text;
		const char *why;	/* after "PATH:" */
	} cases[] = {
		/* [daemon] and [log] syslog */
		{ "[daemon]\npoll_interval = 0\n",
		  "2: [daemon] poll_interval: '0' is not between 1 and "
		  "86400" },
		{ "[daemon]\npoll_interval = 86401\n",
		  "2: [daemon] poll_interval: '86401' is not between 1 and "
		  "86400" },
		{ "[daemon]\nidle_restart = 9\n",
		  "2: [daemon] idle_restart: '9' is not between 10 and "
		  "1740" },
		{ "[daemon]\nidle_restart = 1741\n",
		  "2: [daemon] idle_restart: '1741' is not between 10 and "
		  "1740" },
		{ "[daemon]\nreconnect_max = 0\n",
		  "2: [daemon] reconnect_max: '0' is not between 1 and "
		  "3600" },
		{ "[daemon]\nreconnect_max = 3601\n",
		  "2: [daemon] reconnect_max: '3601' is not between 1 and "
		  "3600" },
		{ "[daemon]\npoll = 5\n", "2: [daemon] poll: unknown key" },
		{ "[daemon]\npoll_interval = 5\n[daemon]\npoll_interval = 6\n",
		  "4: [daemon] poll_interval: set again (first on line 2)" },
		{ "[log]\nsyslog = sometimes\n",
		  "2: [log] syslog: 'sometimes' is not a boolean (true/false, "
		  "yes/no, on/off, 1/0)" },
		/* Sections */
		{ "[account]\n",
		  "1: [account]: a section [account NAME] needs a NAME" },
		{ "[account \t ]\n",
		  "1: [account]: a section [account NAME] needs a NAME" },
		{ "[account a b]\n",
		  "1: [account a b]: not an account NAME (1 to 64 letters, "
		  "digits, '.', '_' or '-')" },
		{ "[account a/b]\n",
		  "1: [account a/b]: not an account NAME (1 to 64 letters, "
		  "digits, '.', '_' or '-')" },
		{ "[account caf\xc3\xa9]\n",
		  "1: [account caf\xc3\xa9]: not an account NAME (1 to 64 "
		  "letters, digits, '.', '_' or '-')" },
		{ "[accounts]\n", "1: unknown section [accounts]" },
		{ "[Account a]\n", "1: unknown section [Account a]" },
		{ ACCT "\n[account a]\nhost = h\n",
		  "6: [account a]: a second section of that name (first on "
		  "line 1)" },
		{ ACCT "prot = 993\n", "5: [account a] prot: unknown key" },
		{ ACCT "conninfo = x\n",
		  "5: [account a] conninfo: unknown key" },
		{ ACCT "[log]\nhost = h\n", "6: [log] host: unknown key" },
		{ ACCT "host = h2\n",
		  "5: [account a] host: set again (first on line 2)" },
		/* An indented line after a key is more of its value. */
		{ ACCT "  [account b]\n",
		  "5: [account a] password: set again (first on line 4)" },
		/* Values */
		{ ACCT "port = 0\n",
		  "5: [account a] port: '0' is not between 1 and 65535" },
		{ ACCT "port = 65536\n",
		  "5: [account a] port: '65536' is not between 1 and 65535" },
		{ ACCT "port = imaps\n",
		  "5: [account a] port: 'imaps' is not a whole number" },
		{ ACCT "tls = ssl\n",
		  "5: [account a] tls: 'ssl' is not imaps, starttls or none" },
		{ ACCT "tls_verify = maybe\n",
		  "5: [account a] tls_verify: 'maybe' is not a boolean "
		  "(true/false, yes/no, on/off, 1/0)" },
		{ ACCT "ca_file = ca.pem\n",
		  "5: [account a] ca_file: 'ca.pem' is not an absolute path" },
		{ ACCT "auth = cram-md5\n",
		  "5: [account a] auth: 'cram-md5' is not auto, login, plain "
		  "or xoauth2" },
		{ ACCT "fetch_batch = 0\n",
		  "5: [account a] fetch_batch: '0' is not between 1 and "
		  "1000" },
		{ ACCT "fetch_batch = 1001\n",
		  "5: [account a] fetch_batch: '1001' is not between 1 and "
		  "1000" },
		{ ACCT "timeout = 0\n",
		  "5: [account a] timeout: '0' is not between 1 and 3600" },
		{ ACCT "timeout = 3601\n",
		  "5: [account a] timeout: '3601' is not between 1 and 3600" },
		{ ACCT "delete_after_store = 2\n",
		  "5: [account a] delete_after_store: '2' is not a boolean "
		  "(true/false, yes/no, on/off, 1/0)" },
		{ "[account a]\nhost =\n", "2: [account a] host: empty" },
		{ "[account a]\nhost = imap example.com\n",
		  "2: [account a] host: 'imap example.com' is not a host name "
		  "nor an address" },
		{ "[account a]\nhost = imap\texample.com\n",
		  "2: [account a] host: 'imap\texample.com' holds a control "
		  "character" },
		{ "[account a]\nuser =\n", "2: [account a] user: empty" },
		{ ACCT "processed_folder =\n",
		  "5: [account a] processed_folder: empty" },
		{ ACCT "oauth2_client_id =\n",
		  "5: [account a] oauth2_client_id: empty" },
		/* mailboxes */
		{ ACCT "mailboxes =\n",
		  "5: [account a] mailboxes: an empty name in ''" },
		{ ACCT "mailboxes = INBOX,,Archive\n",
		  "5: [account a] mailboxes: an empty name in "
		  "'INBOX,,Archive'" },
		{ ACCT "mailboxes = INBOX, \n",
		  "5: [account a] mailboxes: an empty name in 'INBOX,'" },
		{ ACCT "mailboxes = A, B ,A\n",
		  "5: [account a] mailboxes: 'A' is listed twice" },
		{ ACCT "mailboxes = INBOX, Inbox\n",
		  "5: [account a] mailboxes: 'Inbox' is listed twice" },
		{ ACCT "mailboxes = A\x01" "B\n",
		  "5: [account a] mailboxes: 'A\x01" "B' holds a control "
		  "character" },
		{ ACCT "mailboxes = Archive\nprocessed_folder = Archive\n",
		  "6: [account a] processed_folder: 'Archive' is also one of "
		  "the mailboxes" },
		{ ACCT "mailboxes = INBOX, dmarcd-rejected\n",
		  "5: [account a] rejected_folder: 'dmarcd-rejected' is also "
		  "one of the mailboxes" },
		{ ACCT "rejected_folder = inbox\n",
		  "5: [account a] rejected_folder: 'inbox' is also one of the "
		  "mailboxes" },
		/* oauth2_token_url */
		{ ACCT "oauth2_token_url = http://oauth.example.com/token\n",
		  "5: [account a] oauth2_token_url: "
		  "'http://oauth.example.com/token' is not an https:// URL "
		  "(http:// only to a loopback host)" },
		{ ACCT "oauth2_token_url = http://128.0.0.1/token\n",
		  "5: [account a] oauth2_token_url: 'http://128.0.0.1/token' "
		  "is not an https:// URL (http:// only to a loopback host)" },
		{ ACCT "oauth2_token_url = http://localhost.example.com/\n",
		  "5: [account a] oauth2_token_url: "
		  "'http://localhost.example.com/' is not an https:// URL "
		  "(http:// only to a loopback host)" },
		{ ACCT "oauth2_token_url = http://127.0.0.1@evil.example/\n",
		  "5: [account a] oauth2_token_url: "
		  "'http://127.0.0.1@evil.example/' is not an https:// URL "
		  "(http:// only to a loopback host)" },
		{ ACCT "oauth2_token_url = ftp://example.com/token\n",
		  "5: [account a] oauth2_token_url: 'ftp://example.com/token' "
		  "is not an https:// URL (http:// only to a loopback host)" },
		{ ACCT "oauth2_token_url = https:///token\n",
		  "5: [account a] oauth2_token_url: 'https:///token' is not an "
		  "https:// URL (http:// only to a loopback host)" },
		{ ACCT "oauth2_token_url = example.com/token\n",
		  "5: [account a] oauth2_token_url: 'example.com/token' is not "
		  "an https:// URL (http:// only to a loopback host)" },
		/* Checked once the whole file is read: the section's line. */
		{ "[account a]\nuser = u\npassword = p\n",
		  "1: [account a] host: not set (required)" },
		{ "[log]\nlevel = info\n\n[account a]\nhost = h\n"
		  "password = p\n[ingest]\nbatch_ms = 5\n",
		  "4: [account a] user: not set (required)" },
		{ "[account a]\nhost = h\nuser = u\n",
		  "1: [account a] password: not set (password or "
		  "password_file is required unless auth = xoauth2)" },
		{ "[account a]\nhost = h\nuser = u\nauth = plain\n"
		  "oauth2_token_url = https://example.com/\n",
		  "1: [account a] password: not set (password or "
		  "password_file is required unless auth = xoauth2)" },
		{ "[account a]\nhost = h\nuser = u\nauth = xoauth2\n"
		  "password = p\n",
		  "1: [account a] oauth2_token_url: not set (required with "
		  "auth = xoauth2)" },
		{ "[account a]\nhost = h\nuser = u\n"
		  "oauth2_token_url = https://example.com/\n"
		  "oauth2_refresh_token = rt\n",
		  "1: [account a] oauth2_client_id: not set (required for "
		  "XOAUTH2)" },
		{ "[account a]\nhost = h\nuser = u\nauth = XOAUTH2\n"
		  "oauth2_token_url = https://example.com/\n"
		  "oauth2_client_id = id\noauth2_client_secret = cs\n",
		  "1: [account a] oauth2_refresh_token: not set (it or "
		  "oauth2_refresh_token_file is required for XOAUTH2)" },
		/* The first account is good, the second is not. */
		{ ACCT "[account b]\nhost = h\n",
		  "5: [account b] user: not set (required)" },
		/* Both a secret and its file. */
		{ ACCT "password_file = /nonexistent\n",
		  "5: [account a] password_file: password is set too (line "
		  "4): give one of them" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		load_fails(cases[i].text, cases[i].why, NULL);
}

static void
test_account_names_and_limits(void **state)
{
	char name[80], why[256], list[512];
	static char text[16384];
	struct dm_config c;
	size_t len, i;

	(void)state;
	/* 64 bytes: more than libinih keeps of a section name. */
	memset(name, 'n', 64);
	name[0] = 'A';
	name[63] = 'Z';
	name[64] = '\0';
	snprintf(text, sizeof(text), "[account %s]\nhost = h\nuser = u\n"
	    "password = p\n[account %.63sY]\nhost = h2\nuser = u\n"
	    "password = p\n", name, name);
	load_ok(&c, text);
	assert_int_equal(c.naccounts, 2);
	assert_string_equal(c.accounts[0].name, name);
	assert_string_equal(c.accounts[0].host, "h");
	assert_string_equal(c.accounts[1].host, "h2");
	assert_non_null(dm_config_account(&c, name));
	dm_config_free(&c);
	/* Other characters allowed. */
	load_ok(&c, "[account \tmail.example-2_b ]\nhost = h\nuser = u\n"
	    "password = p\n");
	assert_string_equal(c.accounts[0].name, "mail.example-2_b");
	dm_config_free(&c);
	/* 65 is too long. */
	memcpy(name + 64, "x", 2);
	snprintf(text, sizeof(text), "[account %s]\n", name);
	snprintf(why, sizeof(why), "1: [account %s]: not an account NAME "
	    "(1 to 64 letters, digits, '.', '_' or '-')", name);
	load_fails(text, why, NULL);

	/* 64 accounts, not 65. */
	len = 0;
	for (i = 0; i < DM_CONFIG_MAX_ACCOUNTS; i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len,
		    "[account a%zu]\nhost = h%zu\nuser = u\npassword = p\n",
		    i, i);
	load_ok(&c, text);
	assert_int_equal(c.naccounts, DM_CONFIG_MAX_ACCOUNTS);
	for (i = 0; i < DM_CONFIG_MAX_ACCOUNTS; i++) {
		snprintf(name, sizeof(name), "a%zu", i);
		assert_string_equal(c.accounts[i].name, name);
		assert_ptr_equal(dm_config_account(&c, name),
		    &c.accounts[i]);
		snprintf(name, sizeof(name), "h%zu", i);
		assert_string_equal(c.accounts[i].host, name);
	}
	dm_config_free(&c);
	snprintf(text + len, sizeof(text) - len, "[account a64]\n");
	load_fails(text, "257: [account a64]: more than 64 accounts", NULL);

	/* 32 mailboxes, not 33. */
	len = 0;
	for (i = 0; i < DM_CONFIG_MAX_MAILBOXES; i++)
		len += (size_t)snprintf(list + len, sizeof(list) - len,
		    "%sm%zu", i > 0 ? "," : "", i);
	snprintf(text, sizeof(text), ACCT "mailboxes = %s\n", list);
	load_ok(&c, text);
	assert_int_equal(c.accounts[0].nmailboxes, DM_CONFIG_MAX_MAILBOXES);
	assert_string_equal(c.accounts[0].mailboxes[31], "m31");
	dm_config_free(&c);
	snprintf(text, sizeof(text), ACCT "mailboxes = %s,m32\n", list);
	load_fails(text, "5: [account a] mailboxes: more than 32 mailboxes",
	    NULL);
}

static void
test_secret_file_mode(void **state)
{
	static const struct {
		mode_t mode;
		const char *why;
	} refused[] = {
		{ 0644, "readable by others (mode 0644)" },
		{ 0640, "readable by others (mode 0640)" },
		{ 0604, "readable by others (mode 0604)" },
		{ 0620, "writable by others (mode 0620)" },
		{ 0602, "writable by others (mode 0602)" },
		{ 0610, "executable by others (mode 0610)" },
	};
	struct dm_config c;
	struct dm_error err;
	char pass[256], text[512], why[768];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		write_secret("mode.pass", SECRET "\n", refused[i].mode, pass,
		    sizeof(pass));
		snprintf(text, sizeof(text), "[account a]\nhost = h\n"
		    "password_file = %s\nuser = u\n", pass);
		snprintf(why, sizeof(why), "3: [account a] password_file: %s "
		    "is %s; chmod 600 it", pass, refused[i].why);
		load_fails(text, why, &err);
		assert_null(strstr(err.msg, "Zq9"));
	}
	/* chmod 600 (or 400): read, the newline dropped. */
	assert_int_equal(chmod(pass, 0600), 0);
	load_ok(&c, text);
	assert_string_equal(c.accounts[0].password, SECRET);
	assert_int_equal(c.accounts[0].password_set, 1);
	dm_config_free(&c);
	assert_int_equal(chmod(pass, 0400), 0);
	load_ok(&c, text);
	assert_string_equal(c.accounts[0].password, SECRET);
	dm_config_free(&c);
}

/*
 * A secret written in the configuration itself: each key that holds one
 * (a conninfo only with a password) is refused in a file that group or
 * others may use, naming the file, the key and the fix, never the value;
 * the same file at 0600 or 0400 is read. A file with no secret may be
 * 0644.
 */
static void
test_inline_secret_mode(void **state)
{
	static const struct {
		const char *text;
		const char *where;	/* LINE: [section] key */
		const char *fix;
	} cases[] = {
		{ "[account a]\nhost = h\nuser = u\npassword = " SECRET "\n",
		  "4: [account a] password", "or move it to password_file" },
		{ "[account a]\nhost = h\nuser = u\nauth = xoauth2\n"
		  "oauth2_client_secret = " SECRET "\n",
		  "5: [account a] oauth2_client_secret",
		  "or move it to oauth2_client_secret_file" },
		{ "[account a]\noauth2_refresh_token = " SECRET "\n",
		  "2: [account a] oauth2_refresh_token",
		  "or move it to oauth2_refresh_token_file" },
		{ "[alerts]\nwebhook = https://hooks.example.com/" SECRET "\n",
		  "2: [alerts] webhook", "or move it to webhook_file" },
		{ "[database]\nconninfo = host=h password=" SECRET "\n",
		  "2: [database] conninfo", "passfile=FILE" },
		{ "[database]\napi_conninfo = postgresql://u:" SECRET
		  "@h/db\n", "2: [database] api_conninfo", "~/.pgpass" },
		{ "; the API\n[api]\ndatabase = host=h sslpassword=" SECRET "\n",
		  "3: [api] database", "passfile=FILE" },
	};
	static const struct {
		mode_t mode;
		const char *can;
	} open_modes[] = {
		{ 0644, "read" }, { 0640, "read" }, { 0604, "read" },
		{ 0620, "write" }, { 0602, "write" }, { 0610, "execute" },
	};
	struct dm_config c;
	struct dm_error err;
	char expected[DM_ERROR_MSG_MAX], pass[256], url[256];
	const char *path;
	size_t i, m;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (m = 0; m < sizeof(open_modes) / sizeof(open_modes[0]);
		    m++) {
			/* As root a file others may write is refused first
			 * (test_root_rules). */
			if (geteuid() == 0 && (open_modes[m].mode & 022) != 0)
				continue;
			path = write_file("inline.conf", cases[i].text);
			assert_int_equal(chmod(path, open_modes[m].mode), 0);
			dm_config_init(&c);
			dm_error_clear(&err);
			assert_int_equal(dm_config_load_file(&c, path, &err),
			    -1);
			snprintf(expected, sizeof(expected), "%s:%s: a secret "
			    "written in this file, which group or others can "
			    "%s (mode %04o): chmod 600 %s (owned by the user "
			    "dmarcd runs as), ", path, cases[i].where,
			    open_modes[m].can, (unsigned)open_modes[m].mode,
			    path);
			if (strncmp(err.msg, expected, strlen(expected)) != 0 ||
			    strstr(err.msg, cases[i].fix) == NULL)
				fail_msg("case %zu, mode %04o: got '%s', "
				    "expected '%s...%s'", i,
				    (unsigned)open_modes[m].mode, err.msg,
				    expected, cases[i].fix);
			assert_int_equal(err.code, DM_E_USAGE);
			assert_null(strstr(err.msg, "Zq9"));
			assert_defaults(&c);
		}
		/* Private: read (an account may still lack a key, which is
		 * another error, not this one). */
		assert_int_equal(chmod(path, 0600), 0);
		dm_config_init(&c);
		dm_error_clear(&err);
		if (dm_config_load_file(&c, path, &err) != 0 &&
		    strstr(err.msg, "a secret written") != NULL)
			fail_msg("case %zu, mode 0600: %s", i, err.msg);
		assert_null(strstr(err.msg, "Zq9"));
		dm_config_free(&c);
	}
	/* Mode 0400, and the value is the one written. */
	path = write_file("inline.conf", cases[0].text);
	assert_int_equal(chmod(path, 0400), 0);
	dm_config_init(&c);
	if (dm_config_load_file(&c, path, &err) != 0)
		fail_msg("%s", err.msg);
	assert_string_equal(c.accounts[0].password, SECRET);
	dm_config_free(&c);
	assert_int_equal(chmod(path, 0600), 0);

	/* No secret in it: 0644 is fine, a conninfo without a password and
	 * a password_file included. */
	write_secret("inline.pass", SECRET "\n", 0600, pass, sizeof(pass));
	write_secret("inline.url", "https://hooks.example.com/" SECRET "\n",
	    0600, url, sizeof(url));
	path = write_filef("open.conf", "[database]\nconninfo = host=h "
	    "user=u dbname=d passfile=/etc/dmarcd/pgpass\n[account a]\n"
	    "host = h\nuser = u\npassword_file = %s\n[alerts]\n"
	    "webhook_file = %s\n", pass, url);
	assert_int_equal(chmod(path, 0644), 0);
	dm_config_init(&c);
	if (dm_config_load_file(&c, path, &err) != 0)
		fail_msg("%s", err.msg);
	assert_string_equal(c.accounts[0].password, SECRET);
	dm_config_free(&c);
}

/* load_refused - path fails with DM_E_USAGE and a message holding why. */
static void
load_refused(const char *path, const char *why)
{
	struct dm_config c;
	struct dm_error err;

	dm_config_init(&c);
	dm_error_clear(&err);
	assert_int_equal(dm_config_load_file(&c, path, &err), -1);
	if (strstr(err.msg, why) == NULL)
		fail_msg("%s: got '%s', expected '...%s...'", path, err.msg,
		    why);
	assert_int_equal(err.code, DM_E_USAGE);
	assert_null(strstr(err.msg, "Zq9"));
	assert_defaults(&c);
}

/*
 * As root: no symbolic link at the end of the configuration's path nor
 * of a *_file's; the configuration is root's and nobody else may write
 * it. Skipped when not root.
 */
static void
test_root_rules(void **state)
{
	char real[256], link[256], pass[256], plink[256], why[768];
	struct dm_config c;
	struct dm_error err;
	const char *path;

	(void)state;
	if (geteuid() != 0)
		skip();
	write_secret("root.pass", SECRET "\n", 0600, pass, sizeof(pass));
	snprintf(plink, sizeof(plink), "%s/link.pass", tmpdir);
	assert_int_equal(symlink(pass, plink), 0);
	path = write_filef("root.conf", "[account a]\nhost = h\nuser = u\n"
	    "password_file = %s\n", pass);
	snprintf(real, sizeof(real), "%s", path);
	assert_int_equal(chmod(real, 0644), 0);
	dm_config_init(&c);
	if (dm_config_load_file(&c, real, &err) != 0)
		fail_msg("%s", err.msg);
	assert_string_equal(c.accounts[0].password, SECRET);
	dm_config_free(&c);

	/* The configuration through a link. */
	snprintf(link, sizeof(link), "%s/link.conf", tmpdir);
	assert_int_equal(symlink(real, link), 0);
	snprintf(why, sizeof(why), "%s is a symbolic link, which dmarcd "
	    "running as root does not follow", link);
	load_refused(link, why);

	/* A *_file through a link. */
	path = write_filef("plink.conf", "[account a]\nhost = h\nuser = u\n"
	    "password_file = %s\n", plink);
	snprintf(why, sizeof(why), ":4: [account a] password_file: %s is a "
	    "symbolic link, which dmarcd running as root does not follow",
	    plink);
	load_refused(path, why);

	/* Another user's configuration. */
	assert_int_equal(chown(real, 65534, 65534), 0);
	snprintf(why, sizeof(why), "%s belongs to uid 65534, not to root",
	    real);
	load_refused(real, why);
	assert_int_equal(chown(real, 0, 0), 0);

	/* Root's, but others may write it. */
	assert_int_equal(chmod(real, 0664), 0);
	snprintf(why, sizeof(why), "%s is writable by group (mode 0664)",
	    real);
	load_refused(real, why);
	assert_int_equal(chmod(real, 0646), 0);
	snprintf(why, sizeof(why), "%s is writable by others (mode 0646)",
	    real);
	load_refused(real, why);
	assert_int_equal(chmod(real, 0600), 0);
}

/* A good account but for the *_file key i, which comes on *line_r. */
static const char *
before_file_key(size_t i, int *line_r)
{
	*line_r = i == 0 ? 4 : 5;
	return i == 0 ? "[account a]\nhost = h\nuser = u\n" : ACCT;
}

/* key (the i-th *_file key) = path fails with "PATH: why", and the
 * message holds nothing of the file. */
static void
file_key_fails(size_t i, const char *key, const char *path,
    const char *why)
{
	char text[512], expected[768];
	struct dm_error err;
	const char *head;
	int line;

	head = before_file_key(i, &line);
	snprintf(text, sizeof(text), "%s%s = %s\n", head, key, path);
	snprintf(expected, sizeof(expected), "%d: [account a] %s: %s", line,
	    key, why);
	load_fails(text, expected, &err);
	assert_null(strstr(err.msg, "Zq9"));
	assert_null(strstr(err.msg, "VALUE"));
}

/* Each *_file key refuses a file that is not one good line. */
static void
test_secret_file_content(void **state)
{
	static const char *const keys[] = {
		"password_file", "oauth2_client_secret_file",
		"oauth2_refresh_token_file",
	};
	static const size_t sizes[] = { 1024, 1024, 4096 };
	static char content[8192];
	static const char *const bad_lines[] = {
		SECRET "\n" SECRET "\n", "Zq9\tVALUE", "Zq9\rVALUE\n",
		"Zq9\x1bVALUE\n",
	};
	struct dm_config c;
	char path[256], text[512], why[768];
	size_t i, j;

	(void)state;
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		file_key_fails(i, keys[i], "imap.pass",
		    "'imap.pass' is not an absolute path");

		snprintf(path, sizeof(path), "%s/absent.pass", tmpdir);
		snprintf(why, sizeof(why), "cannot open %s: %s", path,
		    strerror(ENOENT));
		file_key_fails(i, keys[i], path, why);

		/* A directory, a FIFO (which must not hang). */
		snprintf(path, sizeof(path), "%s/dir.pass", tmpdir);
		if (i == 0)
			assert_int_equal(mkdir(path, 0700), 0);
		snprintf(why, sizeof(why), "%s is not a regular file", path);
		file_key_fails(i, keys[i], path, why);
		snprintf(path, sizeof(path), "%s/fifo.pass", tmpdir);
		if (i == 0)
			assert_int_equal(mkfifo(path, 0600), 0);
		snprintf(why, sizeof(why), "%s is not a regular file", path);
		file_key_fails(i, keys[i], path, why);

		/* Empty, or only line ends. */
		write_secret("s.pass", "", 0600, path, sizeof(path));
		snprintf(why, sizeof(why), "%s is empty", path);
		file_key_fails(i, keys[i], path, why);
		write_secret("s.pass", "\r\n\n", 0600, path, sizeof(path));
		file_key_fails(i, keys[i], path, why);

		/* Two lines, a control character, a NUL byte. */
		snprintf(why, sizeof(why), "%s holds more than one line or a "
		    "control character", path);
		for (j = 0; j < sizeof(bad_lines) / sizeof(bad_lines[0]);
		    j++) {
			write_secret("s.pass", bad_lines[j], 0600, path,
			    sizeof(path));
			file_key_fails(i, keys[i], path, why);
		}
		write_file_len("s.pass", "Zq9\0VALUE\n", 10);
		file_key_fails(i, keys[i], path, why);

		/* As long as the field holds, with CR LF: read. */
		memset(content, 'Z', sizes[i] - 1);
		memcpy(content + sizes[i] - 1, "\r\n", 3);
		write_secret("s.pass", content, 0600, path, sizeof(path));
		if (i == 0)
			snprintf(text, sizeof(text), "[account a]\nhost = h\n"
			    "user = u\n%s = %s\n", keys[i], path);
		else
			snprintf(text, sizeof(text), ACCT "oauth2_token_url = "
			    "https://example.com/\noauth2_client_id = id\n"
			    "%s%s = %s\n", i == 2 ? "" :
			    "oauth2_refresh_token = rt\n", keys[i], path);
		load_ok(&c, text);
		content[sizes[i] - 1] = '\0';
		if (i == 0)
			assert_string_equal(c.accounts[0].password, content);
		else if (i == 1)
			assert_string_equal(c.accounts[0].oauth2_client_secret,
			    content);
		else
			assert_string_equal(c.accounts[0].oauth2_refresh_token,
			    content);
		dm_config_free(&c);

		/* One byte more, or far more: refused. */
		memset(content, 'Z', sizes[i]);
		memcpy(content, "Zq9", 3);
		memcpy(content + sizes[i], "\n", 2);
		write_secret("s.pass", content, 0600, path, sizeof(path));
		snprintf(why, sizeof(why), "%s holds more than %zu bytes",
		    path, sizes[i] - 1);
		file_key_fails(i, keys[i], path, why);
		memset(content, 'Z', sizeof(content) - 1);
		memcpy(content, "Zq9", 3);
		content[sizeof(content) - 1] = '\0';
		write_secret("s.pass", content, 0600, path, sizeof(path));
		file_key_fails(i, keys[i], path, why);
	}
}

/* Whatever is wrong with a password, a secret or a token, the message
 * names the key, never the value. */
static void
test_secrets_never_quoted(void **state)
{
	static const char *const keys[] = {
		"password", "oauth2_client_secret", "oauth2_refresh_token",
	};
	struct dm_error err;
	char path[256], text[1024], why[1024];
	size_t i;

	(void)state;
	write_secret("good.pass", SECRET "\n", 0600, path, sizeof(path));
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		/* A control character. */
		snprintf(text, sizeof(text), "[account a]\nhost = h\n"
		    "%s = Zq9\x7fVALUE\n", keys[i]);
		snprintf(why, sizeof(why), "3: [account a] %s: holds a "
		    "control character", keys[i]);
		load_fails(text, why, &err);
		assert_null(strstr(err.msg, "Zq9"));
		assert_null(strstr(err.msg, "VALUE"));
		snprintf(text, sizeof(text), "[account a]\nhost = h\n"
		    "%s = Zq9\tVALUE\n", keys[i]);
		load_fails(text, why, &err);
		assert_null(strstr(err.msg, "Zq9"));
		/* Empty. */
		snprintf(text, sizeof(text), "[account a]\nhost = h\n%s =\n",
		    keys[i]);
		snprintf(why, sizeof(why), "3: [account a] %s: empty",
		    keys[i]);
		load_fails(text, why, NULL);
		/* Twice. */
		snprintf(text, sizeof(text), "[account a]\n%s = " SECRET "\n"
		    "%s = " SECRET "2\n", keys[i], keys[i]);
		snprintf(why, sizeof(why), "3: [account a] %s: set again "
		    "(first on line 2)", keys[i]);
		load_fails(text, why, &err);
		assert_null(strstr(err.msg, "Zq9"));
		/* With its _file, either way round. */
		snprintf(text, sizeof(text), "[account a]\n%s = " SECRET "\n"
		    "%s_file = %s\n", keys[i], keys[i], path);
		snprintf(why, sizeof(why), "3: [account a] %s_file: %s is set "
		    "too (line 2): give one of them", keys[i], keys[i]);
		load_fails(text, why, &err);
		assert_null(strstr(err.msg, "Zq9"));
		snprintf(text, sizeof(text), "[account a]\n%s_file = %s\n"
		    "%s = " SECRET "\n", keys[i], path, keys[i]);
		snprintf(why, sizeof(why), "3: [account a] %s: %s_file is set "
		    "too (line 2): give one of them", keys[i], keys[i]);
		load_fails(text, why, &err);
		assert_null(strstr(err.msg, "Zq9"));
		/* A continuation line: the same key again. */
		snprintf(text, sizeof(text), "[account a]\n%s = Zq9\n"
		    "  VALUE\n", keys[i]);
		snprintf(why, sizeof(why), "3: [account a] %s: set again "
		    "(first on line 2)", keys[i]);
		load_fails(text, why, &err);
		assert_null(strstr(err.msg, "Zq9"));
		assert_null(strstr(err.msg, "VALUE"));
	}
	/* Not a key = value line; a misspelt key: its name only. */
	load_fails("[account a]\n" SECRET "\n",
	    "2: not a [section] nor a 'key = value' line", &err);
	assert_null(strstr(err.msg, "Zq9"));
	load_fails("[account a]\npasword = " SECRET "\n",
	    "2: [account a] pasword: unknown key", &err);
	assert_null(strstr(err.msg, "Zq9"));
}

static void
test_several_accounts(void **state)
{
	const struct dm_account *a;
	struct dm_config c, copy;
	struct dm_error err;
	const char *path;
	char *first_mailbox;

	(void)state;
	load_ok(&c, "[account a]\nhost = ha\nuser = u\npassword = p\n"
	    "mailboxes = A1, A2\n"
	    "[log]\nsyslog = 1\n"
	    "[account b.c]\nhost = hb\nuser = u\npassword = p\n"
	    "[account x_y-z]\nhost = hx\nuser = u\npassword = p\n"
	    "mailboxes = X\n");
	assert_int_equal(c.log_syslog, 1);
	assert_int_equal(c.naccounts, 3);
	a = dm_config_account(&c, "a");
	assert_ptr_equal(a, &c.accounts[0]);
	assert_string_equal(a->host, "ha");
	assert_int_equal(a->nmailboxes, 2);
	assert_string_equal(a->mailboxes[1], "A2");
	a = dm_config_account(&c, "b.c");
	assert_ptr_equal(a, &c.accounts[1]);
	assert_string_equal(a->host, "hb");
	assert_string_equal(a->mailboxes[0], "INBOX");
	a = dm_config_account(&c, "x_y-z");
	assert_ptr_equal(a, &c.accounts[2]);
	assert_string_equal(a->mailboxes[0], "X");
	assert_null(dm_config_account(&c, "A"));
	assert_null(dm_config_account(&c, "b"));
	assert_null(dm_config_account(&c, ""));

	/* A bad second file changes nothing. */
	path = write_file("second.conf", "[account b.c]\nhost = new\n");
	assert_int_equal(dm_config_load_file(&c, path, &err), -1);
	assert_int_equal(c.naccounts, 3);
	assert_string_equal(c.accounts[1].host, "hb");
	assert_int_equal(c.log_syslog, 1);

	/* A good one replaces b.c whole and adds d; a and x_y-z stay. */
	path = write_file("second.conf", "[account b.c]\nhost = new\n"
	    "user = u2\npassword = p2\nmailboxes = B\n"
	    "[account d]\nhost = hd\nuser = u\npassword = p\n");
	assert_int_equal(dm_config_load_file(&c, path, &err), 0);
	assert_int_equal(c.naccounts, 4);
	assert_int_equal(c.log_syslog, 1);
	assert_string_equal(c.accounts[0].name, "a");
	assert_string_equal(c.accounts[0].mailboxes[1], "A2");
	assert_string_equal(c.accounts[1].name, "x_y-z");
	assert_string_equal(c.accounts[2].name, "b.c");
	assert_string_equal(c.accounts[2].host, "new");
	assert_string_equal(c.accounts[2].mailboxes[0], "B");
	assert_string_equal(c.accounts[3].name, "d");
	assert_string_equal(dm_config_account(&c, "b.c")->user, "u2");

	/* A deep copy outlives the original. */
	assert_int_equal(dm_config_copy(&copy, &c, &err), 0);
	assert_int_equal(copy.naccounts, 4);
	assert_ptr_not_equal(copy.accounts, c.accounts);
	assert_ptr_not_equal(copy.accounts[0].mailboxes[0],
	    c.accounts[0].mailboxes[0]);
	first_mailbox = c.accounts[0].mailboxes[0];
	assert_string_equal(first_mailbox, "A1");
	dm_config_free(&c);
	assert_defaults(&c);
	assert_string_equal(copy.accounts[0].mailboxes[0], "A1");
	assert_string_equal(copy.accounts[3].host, "hd");
	assert_int_equal(copy.log_syslog, 1);
	dm_config_free(&copy);
	assert_defaults(&copy);
	/* Freeing twice is harmless: free leaves the defaults. */
	dm_config_free(&copy);
	/* So is copying a configuration without accounts. */
	dm_config_init(&c);
	assert_int_equal(dm_config_copy(&copy, &c, &err), 0);
	assert_defaults(&copy);
}

/* dm_config_load() too: DMARCD_DB after the file, the accounts kept; a
 * bad DMARCD_DB leaves c as it was, its accounts included. */
static void
test_load_with_accounts(void **state)
{
	struct dm_config c;
	struct dm_error err;
	const char *path;
	char big[DM_CONFIG_CONNINFO_MAX + 10];

	(void)state;
	path = write_file("load.conf",
	    ACCT "[database]\nconninfo = dbname=f\n");
	dm_config_init(&c);
	setenv(DM_CONFIG_ENV_DB, "dbname=env", 1);
	assert_int_equal(dm_config_load(&c, path, &err), 0);
	assert_string_equal(c.conninfo, "dbname=env");
	assert_int_equal(c.naccounts, 1);
	assert_string_equal(c.accounts[0].host, "h");
	/* Again, without a file: what c had stays (with its accounts). */
	unsetenv(DM_CONFIG_ENV_DB);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	setenv(DM_CONFIG_ENV_DB, big, 1);
	assert_int_equal(dm_config_load(&c, path, &err), -1);
	assert_int_equal(err.code, DM_E_USAGE);
	assert_string_equal(c.conninfo, "dbname=env");
	assert_int_equal(c.naccounts, 1);
	assert_string_equal(c.accounts[0].mailboxes[0], "INBOX");
	unsetenv(DM_CONFIG_ENV_DB);
	dm_config_free(&c);
}

static int
remove_tmpdir(void)
{
	struct dirent *entry;
	char path[512];
	DIR *dir;

	dir = opendir(tmpdir);
	if (dir != NULL) {
		while ((entry = readdir(dir)) != NULL) {
			if (entry->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", tmpdir,
			    entry->d_name);
			if (unlink(path) != 0)
				rmdir(path);
		}
		closedir(dir);
	}
	return rmdir(tmpdir);
}

/* [api]: the defaults, every key, the listen list and its errors. */
static void
test_api_section(void **state)
{
	struct dm_config c;
	struct dm_error err;

	(void)state;
	dm_config_init(&c);
	assert_int_equal(c.api_nlisten, 0);
	assert_int_equal(c.api_threads, DM_CONFIG_API_THREADS);
	assert_int_equal(c.api_max_connections, DM_CONFIG_API_MAX_CONNECTIONS);
	assert_int_equal(c.api_request_timeout_s,
	    DM_CONFIG_API_REQUEST_TIMEOUT_S);
	assert_int_equal(c.api_header_timeout_s,
	    DM_CONFIG_API_HEADER_TIMEOUT_S);
	assert_int_equal(c.api_answer_timeout_s,
	    DM_CONFIG_API_ANSWER_TIMEOUT_S);
	assert_int_equal(c.api_token_cache_s, DM_CONFIG_API_TOKEN_CACHE_S);
	assert_int_equal(c.api_answer_cache_s, DM_CONFIG_API_ANSWER_CACHE_S);
	assert_string_equal(c.api_tls_cert, "");
	assert_int_equal(c.api_status_public, 0);

	load_ok(&c, "[database]\nconninfo = dbname=a\n[api]\n"
	    "status_public = yes\n"
	    "listen = 127.0.0.1:8025 , [::1]:0,localhost:65535\n"
	    "database = dbname=b user=reader\nthreads = 8\n"
	    "max_connections = 100\nrequest_timeout = 5\n"
	    "header_timeout = 7\nanswer_timeout = 0\n"
	    "token_cache = 0\nanswer_cache = 0\ntls_cert = /etc/c.pem\n"
	    "tls_key = /etc/k.pem\n");
	assert_int_equal(c.api_nlisten, 3);
	assert_string_equal(c.api_listen[0].host, "127.0.0.1");
	assert_int_equal(c.api_listen[0].port, 8025);
	assert_int_equal(c.api_listen[0].ipv6, 0);
	assert_string_equal(c.api_listen[1].host, "::1");
	assert_int_equal(c.api_listen[1].port, 0);
	assert_int_equal(c.api_listen[1].ipv6, 1);
	assert_string_equal(c.api_listen[2].host, "127.0.0.1");
	assert_int_equal(c.api_listen[2].port, 65535);
	assert_string_equal(dm_config_api_conninfo(&c), "dbname=b user=reader");
	assert_string_equal(c.conninfo, "dbname=a");
	assert_int_equal(c.api_threads, 8);
	assert_int_equal(c.api_max_connections, 100);
	assert_int_equal(c.api_request_timeout_s, 5);
	assert_int_equal(c.api_header_timeout_s, 7);
	assert_int_equal(c.api_answer_timeout_s, 0);	/* off */
	assert_int_equal(c.api_token_cache_s, 0);
	assert_int_equal(c.api_answer_cache_s, 0);
	assert_string_equal(c.api_tls_key, "/etc/k.pem");
	assert_int_equal(c.api_status_public, 1);
	dm_config_free(&c);

	/* Without [api] database the API uses conninfo. */
	load_ok(&c, "[database]\nconninfo = dbname=a\n");
	assert_string_equal(dm_config_api_conninfo(&c), "dbname=a");
	dm_config_free(&c);

	load_fails("[api]\nlisten = 127.0.0.1\n", "2: [api] listen: "
	    "'127.0.0.1' is not ADDR:PORT (127.0.0.1:8025, [::1]:8025; port 0 "
	    "to 65535)", NULL);
	load_fails("[api]\nlisten = 127.0.0.1:65536\n", "2: [api] listen: "
	    "'127.0.0.1:65536' is not ADDR:PORT (127.0.0.1:8025, "
	    "[::1]:8025; port 0 to 65535)", NULL);
	load_fails("[api]\nlisten = 127.0.0.1:80x\n", "2: [api] listen: "
	    "'127.0.0.1:80x' is not ADDR:PORT (127.0.0.1:8025, [::1]:8025; "
	    "port 0 to 65535)", NULL);
	load_fails("[api]\nlisten = ::1:80\n", "2: [api] listen: '::1' is "
	    "not an IPv4 address, an IPv6 address in brackets nor localhost",
	    NULL);
	load_fails("[api]\nlisten = example.com:80\n", "2: [api] listen: "
	    "'example.com' is not an IPv4 address, an IPv6 address in "
	    "brackets nor localhost", NULL);
	load_fails("[api]\nlisten = 127.0.0.1:1,,127.0.0.1:2\n", "2: [api] "
	    "listen: an empty address in the list", NULL);
	load_fails("[api]\nlisten = [::1:80\n", "2: [api] listen: '[::1:80' "
	    "is not ADDR:PORT (127.0.0.1:8025, [::1]:8025; port 0 to 65535)",
	    NULL);
	load_fails("[api]\nlisten = 127.0.0.1:1,127.0.0.1:2,127.0.0.1:3,"
	    "127.0.0.1:4,127.0.0.1:5,127.0.0.1:6,127.0.0.1:7,127.0.0.1:8,"
	    "127.0.0.1:9\n", "2: [api] listen: more than 8 addresses", NULL);
	load_fails("[api]\nthreads = 0\n", "2: [api] threads: '0' is not "
	    "between 1 and 256", NULL);
	load_fails("[api]\nrequest_timeout = 3601\n", "2: [api] "
	    "request_timeout: '3601' is not between 1 and 3600", NULL);
	load_fails("[api]\nanswer_timeout = 86401\n", "2: [api] "
	    "answer_timeout: '86401' is not between 0 and 86400", NULL);
	load_fails("[api]\nanswer_timeout = -1\n", "2: [api] "
	    "answer_timeout: '-1' is not a whole number", NULL);
	load_fails("[api]\ntls_cert = relative.pem\n", "2: [api] tls_cert: "
	    "'relative.pem' is not an absolute path", NULL);
	load_fails("[api]\nbind = 127.0.0.1:80\n", "2: [api] bind: unknown "
	    "key", NULL);
	load_fails("[database]\napi_conninfo = dbname=x\n[api]\n"
	    "database = dbname=y\n", "4: [api] database: [database] "
	    "api_conninfo is set too (line 2): give one of them", NULL);
	/* Both TLS files or neither: checked once the file is read. */
	dm_config_init(&c);
	dm_error_clear(&err);
	assert_int_equal(load_text(&c, "[api]\ntls_cert = /etc/c.pem\n",
	    &err), -1);
	assert_non_null(strstr(err.msg, "[api] tls_cert and tls_key: give "
	    "both (HTTPS) or neither (HTTP)"));
	assert_int_equal(c.api_nlisten, 0);
	dm_config_free(&c);

	/* dm_config_parse_listen() for --listen: replaces the list. */
	dm_config_init(&c);
	{
		char why[256];

		assert_int_equal(dm_config_parse_listen(&c, "[::1]:9", why,
		    sizeof(why)), 0);
		assert_int_equal(c.api_nlisten, 1);
		assert_int_equal(dm_config_parse_listen(&c, "nope", why,
		    sizeof(why)), -1);
		assert_int_equal(c.api_nlisten, 1);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_inih_mapped_only_for_a_file,
		    setup),
		cmocka_unit_test_setup(test_defaults, setup),
		cmocka_unit_test_setup(test_full_file, setup),
		cmocka_unit_test_setup(test_empty_file_keeps_defaults, setup),
		cmocka_unit_test_setup(test_booleans, setup),
		cmocka_unit_test_setup(test_parse_size, setup),
		cmocka_unit_test_setup(test_bad_files, setup),
		cmocka_unit_test_setup(test_overlong_line_and_nul, setup),
		cmocka_unit_test_setup(test_missing_or_unreadable_file,
		    setup),
		cmocka_unit_test_setup(test_file_precedence, setup),
		cmocka_unit_test_setup(test_db_precedence, setup),
		cmocka_unit_test_setup(test_redact_keywords, setup),
		cmocka_unit_test_setup(test_redact_uri, setup),
		cmocka_unit_test_setup(test_redact_bounded, setup),
		cmocka_unit_test_setup(test_account_defaults, setup),
		cmocka_unit_test_setup(test_account_every_key, setup),
		cmocka_unit_test_setup(test_account_oauth2, setup),
		cmocka_unit_test_setup(test_daemon_and_syslog, setup),
		cmocka_unit_test_setup(test_resolve, setup),
		cmocka_unit_test_setup(test_alerts, setup),
		cmocka_unit_test_setup(test_section_lines, setup),
		cmocka_unit_test_setup(test_bad_accounts, setup),
		cmocka_unit_test_setup(test_account_names_and_limits, setup),
		cmocka_unit_test_setup(test_secret_file_mode, setup),
		cmocka_unit_test_setup(test_inline_secret_mode, setup),
		cmocka_unit_test_setup(test_root_rules, setup),
		cmocka_unit_test_setup(test_secret_file_content, setup),
		cmocka_unit_test_setup(test_secrets_never_quoted, setup),
		cmocka_unit_test_setup(test_several_accounts, setup),
		cmocka_unit_test_setup(test_load_with_accounts, setup),
		cmocka_unit_test_setup(test_api_section, setup),
	};
	int failed;

	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	failed = cmocka_run_group_tests(tests, NULL, NULL);
	remove_tmpdir();
	return failed;
}
