/*
 * error.c - set, prefix and classify struct dm_error.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/error.h"

int
dm_error_vset(struct dm_error *err, enum dm_error_code code, const char *fmt,
    va_list ap)
{
	if (err == NULL)
		return -1;
	err->code = code;
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	return -1;
}

int
dm_error_set(struct dm_error *err, enum dm_error_code code, const char *fmt,
    ...)
{
	va_list ap;

	va_start(ap, fmt);
	dm_error_vset(err, code, fmt, ap);
	va_end(ap);
	return -1;
}

void
dm_error_prefix(struct dm_error *err, const char *fmt, ...)
{
	char prefix[DM_ERROR_MSG_MAX];
	char joined[DM_ERROR_MSG_MAX];
	va_list ap;

	if (err == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	{
		size_t plen = strlen(prefix);
		size_t mlen = strlen(err->msg);

		/* "prefix: message", cut at the buffer's end. */
		if (plen > sizeof(joined) - 3)
			plen = sizeof(joined) - 3;
		memcpy(joined, prefix, plen);
		memcpy(joined + plen, ": ", 2);
		if (mlen > sizeof(joined) - plen - 3)
			mlen = sizeof(joined) - plen - 3;
		memcpy(joined + plen + 2, err->msg, mlen);
		joined[plen + 2 + mlen] = '\0';
	}
	memcpy(err->msg, joined, sizeof(err->msg));
}

void
dm_error_clear(struct dm_error *err)
{
	if (err == NULL)
		return;
	err->code = DM_E_NONE;
	err->msg[0] = '\0';
}

int
dm_error_exit_code(enum dm_error_code code)
{
	switch (code) {
	case DM_E_NONE:
		return 0;
	case DM_E_DATA:
	case DM_E_LIMIT:
		return 65;	/* EX_DATAERR */
	case DM_E_NOINPUT:
		return 66;	/* EX_NOINPUT */
	case DM_E_IO:
		return 74;	/* EX_IOERR */
	case DM_E_TEMP:
	case DM_E_NOMEM:
		return 75;	/* EX_TEMPFAIL */
	case DM_E_USAGE:
		return 64;	/* EX_USAGE */
	case DM_E_UNAVAILABLE:
		return 69;	/* EX_UNAVAILABLE */
	case DM_E_INTERNAL:
		return 70;	/* EX_SOFTWARE */
	}
	return 70;
}

int
dm_error_is_data(enum dm_error_code code)
{
	return code == DM_E_DATA || code == DM_E_LIMIT;
}

int
dm_error_tmpdir(struct dm_error *err, const char *what, const char *dir,
    int errnum, const char *then)
{
	if (errnum == ENOSPC
#ifdef EDQUOT
	    || errnum == EDQUOT
#endif
	    )
		return dm_error_set(err, DM_E_TEMP, "%s: the temporary "
		    "directory %s is full (%s)%s%s", what, dir,
		    strerror(errnum), then != NULL ? "; " : "",
		    then != NULL ? then : "");
	return dm_error_set(err, DM_E_IO, "%s in %s: %s", what, dir,
	    strerror(errnum));
}
