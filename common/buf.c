/*
 * buf.c - capped byte buffer (see buf.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"

void
dm_buf_init(struct dm_buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->alloc = 0;
	b->max = max;
}

void
dm_buf_reset(struct dm_buf *b)
{
	b->len = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

void
dm_buf_free(struct dm_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->alloc = 0;
}

int
dm_buf_append(struct dm_buf *b, const void *data, size_t len)
{
	size_t need, size;
	char *p;

	if (len > b->max || b->len > b->max - len)
		return -1;
	need = b->len + len + 1;
	if (need > b->alloc) {
		size = b->alloc ? b->alloc : 256;
		while (size < need)
			size *= 2;
		if (size > b->max + 1)
			size = b->max + 1;
		p = realloc(b->data, size);
		if (p == NULL)
			return -1;
		b->data = p;
		b->alloc = size;
	}
	if (len > 0)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int
dm_buf_printf(struct dm_buf *b, const char *fmt, ...)
{
	char small[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	if ((size_t)n < sizeof(small))
		return dm_buf_append(b, small, (size_t)n);
	{
		char *big = malloc((size_t)n + 1);
		int rc;

		if (big == NULL)
			return -1;
		va_start(ap, fmt);
		vsnprintf(big, (size_t)n + 1, fmt, ap);
		va_end(ap);
		rc = dm_buf_append(b, big, (size_t)n);
		free(big);
		return rc;
	}
}

const char *
dm_buf_cstr(const struct dm_buf *b)
{
	return b->data != NULL ? b->data : "";
}
