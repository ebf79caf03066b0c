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
 *	api_conninfo = ...		; default: the same as conninfo
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
 *
 * contrib/dmarcd.conf.example documents each key. The file is strict: a
 * key may appear once; a key outside a section, an unknown section or key,
 * a bad value and a line longer than libinih's buffer are all errors. ';'
 * after white space starts a comment (libinih), so a value cannot hold
 * " ;".
 *
 * DIAGNOSTICS
 *	All functions that can fail return 0 or -1 and fill err:
 *	DM_E_USAGE	a bad file: "PATH:LINE: [section] key: why", or
 *			"PATH:LINE: why" for a line libinih cannot parse;
 *			a DMARCD_DB or --db longer than DM_CONFIG_CONNINFO_MAX
 *	DM_E_NOINPUT	the file named by --config or DMARCD_CONFIG does
 *			not exist; a file that exists cannot be opened
 *			(strerror) or is not a regular file
 *	DM_E_IO		a read error (strerror)
 *	DM_E_UNAVAILABLE libinih cannot be loaded (only if there is a file)
 *	Messages never quote the value of a conninfo: use dm_config_redact()
 *	to show one.
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

/* Strings are held in the struct: it needs no allocation, copies by
 * assignment, and dm_config_free() only resets it. */
#define DM_CONFIG_CONNINFO_MAX	1024	/* with the NUL */
#define DM_CONFIG_PATH_MAX	4096	/* with the NUL */

struct dm_config {
	char conninfo[DM_CONFIG_CONNINFO_MAX];	/* "": libpq's defaults */
	char api_conninfo[DM_CONFIG_CONNINFO_MAX];
	int api_conninfo_set;	/* 0: the API uses conninfo */
	unsigned batch_reports;	/* small reports per transaction */
	unsigned batch_ms;	/* longest time a batch stays open */
	int keep_bodies;	/* keep failure reports' original bodies */
	char tmpdir[DM_CONFIG_PATH_MAX];
	uint64_t max_input_bytes;	/* decompressed, per input */
	unsigned max_ratio;		/* per layer; 0: no check */
	uint64_t max_message_bytes;	/* a mail held for MIME parsing */
	int log_level;		/* syslog(3): LOG_ERR .. LOG_DEBUG */
	char path[DM_CONFIG_PATH_MAX];	/* the file read, or "" */
};

/* dm_config_init - the built-in defaults; never fails. */
void dm_config_init(struct dm_config *c);

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

/* dm_config_api_conninfo - api_conninfo, or conninfo when that is unset. */
const char *dm_config_api_conninfo(const struct dm_config *c);

/* dm_config_free - release what c holds (nothing yet): back to defaults. */
void dm_config_free(struct dm_config *c);

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
