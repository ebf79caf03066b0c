/*
 * tmp.c - the store's temporary files, in the configured directory.
 *
 * A big report's COPY lines past STORE_SPOOL_MEM (ingest.c) and its
 * rollup entries past ROLLUP_KEYS (rollup.c) go to unlinked files in
 * store_set_tmpdir()'s directory ([ingest] tmpdir; default $TMPDIR, else
 * /tmp), not to tmpfile()'s fixed /tmp: the operator chose where the
 * space is.
 *
 * store_tmpfile leaves errno as the failing call set it.
 *
 * DIAGNOSTICS
 *	A full directory (ENOSPC, EDQUOT) is DM_E_TEMP: nothing of the input
 *	is stored, and the same input goes through once there is space (a
 *	caller exits 75 and an MTA retries). Any other error is DM_E_IO. The
 *	message names the directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store_private.h"

void
store_set_tmpdir(struct store *s, const char *dir)
{
	if (dir == NULL || dir[0] == '\0')
		dir = getenv("TMPDIR");
	if (dir == NULL || dir[0] == '\0')
		dir = "/tmp";
	snprintf(s->tmpdir, sizeof(s->tmpdir), "%s", dir);
}

int
store_tmp_fail(const char *dir, int errnum, const char *what,
    struct dm_error *err)
{
	return dm_error_tmpdir(err, what, dir, errnum, "nothing of this "
	    "input is stored; run again once there is space");
}

FILE *
store_tmpfile(const char *dir, struct dm_error *err)
{
	char path[sizeof(((struct store *)0)->tmpdir) + 32];
	FILE *f;
	int fd = -1, e;

#ifdef O_TMPFILE
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
#endif
	if (fd < 0) {
		snprintf(path, sizeof(path), "%s/dmarcd-store.XXXXXX", dir);
		fd = mkostemp(path, O_CLOEXEC);
		if (fd < 0) {
			e = errno;
			store_tmp_fail(dir, e, "cannot create a temporary "
			    "file", err);
			errno = e;
			return NULL;
		}
		(void)unlink(path);
	}
	if ((f = fdopen(fd, "w+")) == NULL) {
		e = errno;
		close(fd);
		store_tmp_fail(dir, e, "cannot open a temporary file", err);
		errno = e;
		return NULL;
	}
	return f;
}
