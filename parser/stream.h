/*
 * stream.h - the byte streams the parser reads reports through.
 *
 * A stream hands out bytes with stream_read() and lets a caller look at
 * the first bytes without consuming them (stream_peek), which is how
 * unpack.c sniffs magic bytes. Streams stack: an inflate stream reads a
 * gzip or zlib stream from the one below it. Every decompressing layer
 * counts its output against a shared budget (struct stream_budget), so a
 * bomb is refused after a bounded amount of work, not after it has cost
 * gigabytes.
 *
 * A stream also says what backs it, for containers that need random
 * access (zip): a memory block (mem) or a regular file (fd).
 *
 * DIAGNOSTICS: stream_read returns -1 with DM_E_DATA (corrupt or
 * truncated data), DM_E_LIMIT (a cap hit) or DM_E_IO (read(2) failed).
 */
#ifndef PARSER_STREAM_H
#define PARSER_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"
#include "common/report.h"

#define STREAM_PEEK_MAX	4096

struct stream_budget {
	uint64_t max_bytes;	/* decompressed bytes, all layers */
	uint64_t used;
	unsigned max_ratio;	/* 0: no ratio check */
	uint64_t ratio_grace;	/* output allowed before the ratio counts */
};

struct stream;

struct stream_ops {
	ssize_t (*read)(struct stream *s, void *buf, size_t len,
	    struct dm_error *err);
	void (*destroy)(struct stream *s);
};

struct stream {
	const struct stream_ops *ops;
	unsigned char peek[STREAM_PEEK_MAX];
	size_t peek_len, peek_pos;
	int at_eof;
	uint64_t offset;		/* bytes handed out so far */
	int fd;				/* regular file behind it, or -1 */
	uint64_t size_hint;		/* a regular file's size; 0: unknown */
	const unsigned char *mem;	/* whole content in memory, or NULL */
	size_t mem_len;
};

ssize_t stream_read(struct stream *s, void *buf, size_t len,
    struct dm_error *err);
/* stream_peek - the first up to want bytes, without consuming them. */
ssize_t stream_peek(struct stream *s, size_t want,
    const unsigned char **data_r, struct dm_error *err);
void stream_free(struct stream **s);

/* A file descriptor; owned (closed on free) when owns_fd. */
struct stream *stream_fd_new(int fd, int owns_fd);
/* A memory block that outlives the stream. */
struct stream *stream_mem_new(const void *data, size_t len);
/*
 * gzip (one or several members) or zlib, read from inner, which must
 * outlive it. Trailing bytes after the last member are skipped and
 * reported through warnings.
 */
struct stream *stream_inflate_new(struct stream *inner,
    struct stream_budget *budget, struct dm_warnings **warnings);

/*
 * stream_budget_take - count n decompressed bytes of a layer that has
 * read in compressed bytes so far and put out out bytes.
 */
int stream_budget_take(struct stream_budget *b, uint64_t n, uint64_t in,
    uint64_t out, const char *what, struct dm_error *err);

#endif
