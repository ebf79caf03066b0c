/*
 * buf.h - a byte buffer created with a maximum size it refuses to pass.
 *
 * Like curl's dynbuf: dm_buf_append() either appends all of the bytes or
 * none of them and returns -1, so a caller that hits the cap never sees a
 * silently truncated value. The data is always NUL-terminated.
 */
#ifndef DM_BUF_H
#define DM_BUF_H

#include <stddef.h>

#include "common/error.h"

struct dm_buf {
	char *data;
	size_t len;
	size_t alloc;
	size_t max;
};

void dm_buf_init(struct dm_buf *b, size_t max);
void dm_buf_reset(struct dm_buf *b);
void dm_buf_free(struct dm_buf *b);
int dm_buf_append(struct dm_buf *b, const void *data, size_t len)
    DM_WARN_UNUSED;
int dm_buf_printf(struct dm_buf *b, const char *fmt, ...) DM_PRINTF(2, 3)
    DM_WARN_UNUSED;
/* dm_buf_cstr - the contents as a C string ("" when empty). */
const char *dm_buf_cstr(const struct dm_buf *b);

#endif
