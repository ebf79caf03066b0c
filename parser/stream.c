/*
 * stream.c - fd, memory and inflate streams (see stream.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "parser/stream.h"

#define INFLATE_IN	(64 * 1024)

ssize_t
stream_read(struct stream *s, void *buf, size_t len, struct dm_error *err)
{
	ssize_t n;

	if (len == 0)
		return 0;
	if (s->peek_pos < s->peek_len) {
		size_t avail = s->peek_len - s->peek_pos;

		if (avail > len)
			avail = len;
		memcpy(buf, s->peek + s->peek_pos, avail);
		s->peek_pos += avail;
		s->offset += avail;
		return (ssize_t)avail;
	}
	if (s->at_eof)
		return 0;
	n = s->ops->read(s, buf, len, err);
	if (n == 0)
		s->at_eof = 1;
	if (n > 0)
		s->offset += (uint64_t)n;
	return n;
}

ssize_t
stream_peek(struct stream *s, size_t want, const unsigned char **data_r,
    struct dm_error *err)
{
	if (want > STREAM_PEEK_MAX)
		want = STREAM_PEEK_MAX;
	/* Peeking is only allowed before anything was consumed. */
	if (s->peek_pos != 0 || s->offset != 0)
		return dm_error_set(err, DM_E_INTERNAL,
		    "stream peeked after reading");
	while (s->peek_len < want && !s->at_eof) {
		ssize_t n = s->ops->read(s, s->peek + s->peek_len,
		    want - s->peek_len, err);

		if (n < 0)
			return -1;
		if (n == 0)
			s->at_eof = 1;
		s->peek_len += (size_t)n;
	}
	*data_r = s->peek;
	return (ssize_t)s->peek_len;
}

void
stream_free(struct stream **sp)
{
	struct stream *s = *sp;

	if (s == NULL)
		return;
	if (s->ops->destroy != NULL)
		s->ops->destroy(s);
	free(s);
	*sp = NULL;
}

static struct stream *
stream_alloc(const struct stream_ops *ops, size_t size)
{
	struct stream *s = calloc(1, size);

	if (s == NULL)
		return NULL;
	s->ops = ops;
	s->fd = -1;
	return s;
}

int
stream_budget_take(struct stream_budget *b, uint64_t n, uint64_t in,
    uint64_t out, const char *what, struct dm_error *err)
{
	if (n > b->max_bytes - b->used || b->used > b->max_bytes)
		return dm_error_set(err, DM_E_LIMIT,
		    "decompressed size exceeds the limit of %llu bytes "
		    "(decompression bomb?)", (unsigned long long)b->max_bytes);
	b->used += n;
	if (b->max_ratio > 0 && out > b->ratio_grace &&
	    out / (in > 0 ? in : 1) > b->max_ratio)
		return dm_error_set(err, DM_E_LIMIT,
		    "%s expands %llu bytes to over %llu bytes, a ratio above "
		    "the limit of %u:1 (decompression bomb?)", what,
		    (unsigned long long)in, (unsigned long long)out,
		    b->max_ratio);
	return 0;
}

/* fd stream */

struct fd_stream {
	struct stream base;
	int read_fd;
	int owns_fd;
};

static ssize_t
fd_read(struct stream *s, void *buf, size_t len, struct dm_error *err)
{
	struct fd_stream *f = (struct fd_stream *)s;
	ssize_t n;

	do
		n = read(f->read_fd, buf, len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return dm_error_set(err, DM_E_IO, "read failed: %s",
		    strerror(errno));
	return n;
}

static void
fd_destroy(struct stream *s)
{
	struct fd_stream *f = (struct fd_stream *)s;

	if (f->owns_fd && f->read_fd >= 0)
		close(f->read_fd);
}

static const struct stream_ops fd_ops = { fd_read, fd_destroy };

struct stream *
stream_fd_new(int fd, int owns_fd)
{
	struct fd_stream *f;
	struct stat st;

	f = (struct fd_stream *)stream_alloc(&fd_ops, sizeof(*f));
	if (f == NULL)
		return NULL;
	f->read_fd = fd;
	f->owns_fd = owns_fd;
	/* Only a regular file read from its start can be reopened. */
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    lseek(fd, 0, SEEK_CUR) == 0) {
		f->base.fd = fd;
		f->base.size_hint = (uint64_t)st.st_size;
	}
	return &f->base;
}

/* memory stream */

struct mem_stream {
	struct stream base;
	size_t pos;
};

static ssize_t
mem_read(struct stream *s, void *buf, size_t len, struct dm_error *err)
{
	struct mem_stream *m = (struct mem_stream *)s;
	size_t avail = s->mem_len - m->pos;

	(void)err;
	if (len > avail)
		len = avail;
	memcpy(buf, s->mem + m->pos, len);
	m->pos += len;
	return (ssize_t)len;
}

static const struct stream_ops mem_ops = { mem_read, NULL };

struct stream *
stream_mem_new(const void *data, size_t len)
{
	struct mem_stream *m;

	m = (struct mem_stream *)stream_alloc(&mem_ops, sizeof(*m));
	if (m == NULL)
		return NULL;
	m->base.mem = data;
	m->base.mem_len = len;
	return &m->base;
}

/* inflate stream: gzip members, zlib */

struct inflate_stream {
	struct stream base;
	struct stream *inner;
	struct stream_budget *budget;
	struct dm_warnings **warnings;
	z_stream z;
	int z_ready;
	int gzip;		/* the first member had a gzip header */
	int done;		/* last member ended */
	unsigned members;
	uint64_t in_total, out_total;
	unsigned char in[INFLATE_IN];
};

/* Skip what follows the last member, counting it for the warning. */
static int
inflate_trailing(struct inflate_stream *f, struct dm_error *err)
{
	uint64_t extra = f->z.avail_in;
	unsigned char sink[4096];
	int only_space = 1;
	size_t i;
	ssize_t n;

	for (i = 0; i < f->z.avail_in; i++)
		only_space &= f->z.next_in[i] == '\r' ||
		    f->z.next_in[i] == '\n' || f->z.next_in[i] == ' ' ||
		    f->z.next_in[i] == '\0';
	f->z.avail_in = 0;
	while ((n = stream_read(f->inner, sink, sizeof(sink), err)) > 0) {
		for (i = 0; i < (size_t)n; i++)
			only_space &= sink[i] == '\r' || sink[i] == '\n' ||
			    sink[i] == ' ' || sink[i] == '\0';
		extra += (uint64_t)n;
	}
	if (n < 0)
		return -1;
	if (extra > 0)
		dm_warnings_add(*f->warnings, 0,
		    "%llu bytes of %s after the end of the %s stream ignored",
		    (unsigned long long)extra,
		    only_space ? "white space" : "trailing data",
		    f->gzip ? "gzip" : "zlib");
	return 0;
}

static ssize_t
inflate_read(struct stream *s, void *buf, size_t len, struct dm_error *err)
{
	struct inflate_stream *f = (struct inflate_stream *)s;
	const char *what = f->gzip ? "gzip" : "zlib";
	int zrc;

	if (f->done)
		return 0;
	if (len > UINT32_MAX)
		len = UINT32_MAX;
	f->z.next_out = buf;
	f->z.avail_out = (uInt)len;
	while (f->z.avail_out == len) {
		if (f->z.avail_in == 0) {
			ssize_t n = stream_read(f->inner, f->in,
			    sizeof(f->in), err);

			if (n < 0)
				return -1;
			if (n == 0)
				return dm_error_set(err, DM_E_DATA,
				    "%s stream truncated: input ends after "
				    "%llu compressed bytes, before the end of "
				    "the stream", what,
				    (unsigned long long)f->in_total);
			f->z.next_in = f->in;
			f->z.avail_in = (uInt)n;
			f->in_total += (uint64_t)n;
		}
		zrc = inflate(&f->z, Z_NO_FLUSH);
		if (zrc == Z_STREAM_END) {
			f->members++;
			/* Another gzip member follows: go on with it. Its
			 * two magic bytes may straddle a read. */
			if (f->gzip && f->z.avail_in < 2) {
				size_t kept = f->z.avail_in;
				ssize_t n;

				memmove(f->in, f->z.next_in, kept);
				n = stream_read(f->inner, f->in + kept,
				    sizeof(f->in) - kept, err);
				if (n < 0)
					return -1;
				f->z.next_in = f->in;
				f->z.avail_in = (uInt)(kept + (size_t)n);
				f->in_total += (uint64_t)n;
			}
			if (f->gzip && f->z.avail_in >= 2 &&
			    f->z.next_in[0] == 0x1f && f->z.next_in[1] == 0x8b) {
				inflateReset(&f->z);
				continue;
			}
			if (inflate_trailing(f, err) != 0)
				return -1;
			f->done = 1;
			break;
		}
		if (zrc == Z_BUF_ERROR && f->z.avail_in == 0)
			continue;	/* needs more input */
		if (zrc != Z_OK)
			return dm_error_set(err, DM_E_DATA,
			    "%s data corrupt after %llu compressed bytes: %s",
			    what, (unsigned long long)f->in_total,
			    f->z.msg ? f->z.msg : "inflate failed");
	}
	{
		size_t produced = len - f->z.avail_out;

		f->out_total += produced;
		if (stream_budget_take(f->budget, produced, f->in_total,
		    f->out_total, what, err) != 0)
			return -1;
		return (ssize_t)produced;
	}
}

static void
inflate_destroy(struct stream *s)
{
	struct inflate_stream *f = (struct inflate_stream *)s;

	if (f->z_ready)
		inflateEnd(&f->z);
}

static const struct stream_ops inflate_ops = { inflate_read, inflate_destroy };

struct stream *
stream_inflate_new(struct stream *inner, struct stream_budget *budget,
    struct dm_warnings **warnings)
{
	struct inflate_stream *f;
	const unsigned char *head;
	struct dm_error ignored;

	f = (struct inflate_stream *)stream_alloc(&inflate_ops, sizeof(*f));
	if (f == NULL)
		return NULL;
	f->inner = inner;
	f->budget = budget;
	f->warnings = warnings;
	if (stream_peek(inner, 2, &head, &ignored) >= 2)
		f->gzip = head[0] == 0x1f && head[1] == 0x8b;
	/* 15 + 32: a 32 KiB window, gzip or zlib header detected. */
	if (inflateInit2(&f->z, 15 + 32) != Z_OK) {
		free(f);
		return NULL;
	}
	f->z_ready = 1;
	return &f->base;
}
