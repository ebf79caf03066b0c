/*
 * error.h - the one error convention of dmarcd.
 *
 * A function that can fail returns 0 on success and -1 on failure, and
 * fills the caller's struct dm_error with a code and one human sentence
 * that names the input and what is wrong with it. Library code never
 * prints; the caller decides what to do with the sentence.
 *
 * The code says what kind of failure it is, and dm_error_exit_code()
 * maps it to the sysexits(3) code a command should end with: a data
 * error (bad report) is 65, a temporary failure (a server away) is 75.
 */
#ifndef DM_ERROR_H
#define DM_ERROR_H

#include <stdarg.h>

#include <stddef.h>

enum dm_error_code {
	DM_E_NONE = 0,
	DM_E_DATA,	/* the input is malformed or not a report */
	DM_E_LIMIT,	/* the input exceeds a configured cap */
	DM_E_IO,	/* a local file could not be read or written */
	DM_E_NOINPUT,	/* a named input does not exist */
	DM_E_TEMP,	/* temporary: try again later */
	DM_E_NOMEM,	/* out of memory */
	DM_E_USAGE,	/* bad command line or configuration */
	DM_E_UNAVAILABLE, /* a needed shared library cannot be loaded */
	DM_E_INTERNAL	/* a bug */
};

#define DM_ERROR_MSG_MAX 1024

struct dm_error {
	enum dm_error_code code;
	char msg[DM_ERROR_MSG_MAX];
};

#define DM_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define DM_WARN_UNUSED __attribute__((warn_unused_result))

/* dm_error_set - record an error; always returns -1. err may be NULL. */
int dm_error_set(struct dm_error *err, enum dm_error_code code,
    const char *fmt, ...) DM_PRINTF(3, 4);
/* dm_error_vset - the same with a va_list. */
int dm_error_vset(struct dm_error *err, enum dm_error_code code,
    const char *fmt, va_list ap) DM_PRINTF(3, 0);

/* dm_error_prefix - put "context: " in front of the message. */
void dm_error_prefix(struct dm_error *err, const char *fmt, ...)
    DM_PRINTF(2, 3);

void dm_error_clear(struct dm_error *err);

/* dm_error_exit_code - the sysexits(3) code for an error code. */
int dm_error_exit_code(enum dm_error_code code);

/* dm_error_is_data - true for errors that are the input's fault. */
int dm_error_is_data(enum dm_error_code code);

/*
 * dm_error_tmpdir - a temporary file in dir that cannot be made or
 * written (what failed, errnum): a full directory (ENOSPC, EDQUOT) is
 * DM_E_TEMP, saying so and then, when not NULL, what happens next (then);
 * anything else DM_E_IO. The message names the directory. Returns -1.
 */
int dm_error_tmpdir(struct dm_error *err, const char *what, const char *dir,
    int errnum, const char *then);

#endif
