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
 */
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
	assert_int_equal(c->batch_reports, 100);
	assert_int_equal(c->batch_ms, 500);
	assert_int_equal(c->keep_bodies, 0);
	assert_string_equal(c->tmpdir, "/tmp");
	assert_true(c->max_input_bytes == DM_MAX_INPUT_BYTES);
	assert_int_equal(c->max_ratio, DM_MAX_RATIO);
	assert_true(c->max_message_bytes == DM_MAX_MESSAGE_BYTES);
	assert_int_equal(c->log_level, LOG_INFO);
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

static int
remove_tmpdir(void)
{
	static const char *const names[] = {
		"lazy.conf", "full.conf", "empty.conf", "bool.conf",
		"bad.conf", "long.conf", "nul.conf", "env.conf",
		"explicit.conf", "db.conf", "api.conf",
	};
	char path[256];
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", tmpdir, names[i]);
		unlink(path);
	}
	return rmdir(tmpdir);
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
