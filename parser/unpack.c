/*
 * unpack.c - find the report inside whatever arrived (see unpack.h).
 *
 * dispatch() sniffs the first bytes of a stream and hands it to the
 * reader for what it is; container readers (gzip, zlib, zip, mail) call
 * dispatch() again on what they contain. In a container that may hold
 * other things (a mail's text parts, a zip's readme) a part that is no
 * report is passed over quietly (DISPATCH_OPTIONAL); elsewhere it is a
 * problem event that says what the bytes were.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <zip.h>
#include <jansson.h>
#include <nettle/sha2.h>
#include <libetpan/libetpan.h>

#include "common/arena.h"
#include "common/dl.h"
#include "common/ring.h"
#include "parser/aggregate.h"
#include "parser/failure.h"
#include "parser/mime.h"
#include "parser/stream.h"
#include "parser/unpack.h"

#define DISPATCH_OPTIONAL	1u

#define WHERE_MAX	512
#define READ_CHUNK	(64 * 1024)

enum sniff {
	SNIFF_EMPTY, SNIFF_GZIP, SNIFF_ZLIB, SNIFF_ZIP, SNIFF_XML, SNIFF_HTML,
	SNIFF_JSON, SNIFF_MAIL, SNIFF_TNEF, SNIFF_UNUSED, SNIFF_TEXT,
	SNIFF_BINARY
};

struct unpack {
	const struct unpack_options *opt;
	const struct dm_handler *user;
	struct dm_handler tap;
	struct unpack_result *result;
	const char *input;
	struct stream_budget budget;
	struct dm_warnings *cur_warnings;	/* the open leaf's, or pending */
	struct dm_warnings pending;	/* container notes before a leaf */
	unsigned found;				/* events emitted */
	struct dm_error stop_err;		/* why -1 */
	unsigned char *readbuf;
};

static int dispatch(struct unpack *u, struct stream *s, const char *where,
    int depth, unsigned flags);

void
unpack_init(void)
{
	agg_init();
}

void
unpack_options_init(struct unpack_options *o)
{
	memset(o, 0, sizeof(*o));
	o->limits.max_input_bytes = DM_MAX_INPUT_BYTES;
	o->limits.max_ratio = DM_MAX_RATIO;
	o->limits.max_message_bytes = DM_MAX_MESSAGE_BYTES;
	o->limits.max_zip_members = DM_MAX_ZIP_MEMBERS;
}

static int
kind_rank(enum dm_kind kind)
{
	switch (kind) {
	case DM_KIND_AGGREGATE:
		return 3;
	case DM_KIND_FAILURE:
		return 2;
	case DM_KIND_TLSRPT:
		return 1;
	case DM_KIND_UNKNOWN:
		break;
	}
	return 0;
}

static void
note_kind(struct unpack *u, enum dm_kind kind)
{
	if (kind_rank(kind) > kind_rank(u->result->kind))
		u->result->kind = kind;
}

/* The tap: count what passes, then hand it to the caller's handler. */

static int
tap_report_begin(void *ctx, const struct dm_report *r, struct dm_error *err)
{
	struct unpack *u = ctx;

	return u->user->report_begin ? u->user->report_begin(u->user->ctx, r,
	    err) : 0;
}

static int
tap_record(void *ctx, const struct dm_report *r, const struct dm_record *rec,
    struct dm_error *err)
{
	struct unpack *u = ctx;

	return u->user->record ? u->user->record(u->user->ctx, r, rec, err) :
	    0;
}

static int
tap_report_end(void *ctx, const struct dm_report *r, struct dm_error *err)
{
	struct unpack *u = ctx;

	u->found++;
	u->result->aggregate_reports++;
	/* Totals are what would be stored: accepted reports only. */
	if (r->status == DM_STATUS_OK) {
		u->result->records += r->record_count;
		u->result->messages += r->message_count;
	} else
		u->result->rejected++;
	note_kind(u, DM_KIND_AGGREGATE);
	return u->user->report_end ? u->user->report_end(u->user->ctx, r,
	    err) : 0;
}

static int
emit_failure(struct unpack *u, const struct dm_failure *f)
{
	struct dm_error err;

	u->found++;
	u->result->failure_reports++;
	if (f->status != DM_STATUS_OK)
		u->result->rejected++;
	note_kind(u, DM_KIND_FAILURE);
	if (u->user->failure == NULL)
		return 0;
	dm_error_clear(&err);
	if (u->user->failure(u->user->ctx, f, &err) != 0) {
		u->stop_err = err;
		return -1;
	}
	return 0;
}

static int
emit_problem(struct unpack *u, const char *where, enum dm_kind kind,
    const struct dm_error *why)
{
	struct dm_problem problem;
	struct dm_error err;

	u->found++;
	u->result->problems++;
	u->result->rejected++;
	note_kind(u, kind);
	if (u->user->problem == NULL)
		return 0;
	problem.input = u->input;
	problem.where = where;
	problem.kind = kind;
	problem.error = why;
	dm_error_clear(&err);
	if (u->user->problem(u->user->ctx, &problem, &err) != 0) {
		u->stop_err = err;
		return -1;
	}
	return 0;
}

static int
problem(struct unpack *u, const char *where, enum dm_kind kind,
    enum dm_error_code code, const char *fmt, ...) DM_PRINTF(5, 6);

static int
problem(struct unpack *u, const char *where, enum dm_kind kind,
    enum dm_error_code code, const char *fmt, ...)
{
	struct dm_error why;
	va_list ap;

	why.code = code;
	va_start(ap, fmt);
	vsnprintf(why.msg, sizeof(why.msg), fmt, ap);
	va_end(ap);
	return emit_problem(u, where, kind, &why);
}

/* Is this error the input's fault (a problem), or ours (stop)? */
static int
input_fault(const struct dm_error *err)
{
	return dm_error_is_data(err->code);
}

static void
join_where(char *out, const char *parent, const char *fmt, ...)
    DM_PRINTF(3, 4);

static void
join_where(char *out, const char *parent, const char *fmt, ...)
{
	char part[WHERE_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(part, sizeof(part), fmt, ap);
	va_end(ap);
	if (parent[0] == '\0')
		snprintf(out, WHERE_MAX, "%s", part);
	else
		snprintf(out, WHERE_MAX, "%.250s: %.250s", parent, part);
}

/* Sniffing */

static int
is_known_header(const unsigned char *name, size_t len)
{
	static const char *const known[] = {
		"received", "from", "to", "subject", "date", "message-id",
		"mime-version", "content-type", "return-path", "delivered-to",
		"dkim-signature", "authentication-results", "reply-to",
		"sender", "x-original-to", "arc-seal", "received-spf", "cc",
		NULL };
	const char *const *k;

	if (len > 2 && (name[0] == 'x' || name[0] == 'X') && name[1] == '-')
		return 1;
	for (k = known; *k != NULL; k++)
		if (strlen(*k) == len &&
		    strncasecmp((const char *)name, *k, len) == 0)
			return 1;
	return 0;
}

/* Header lines ("Name: value") before an empty line, a known one among. */
static int
looks_like_mail(const unsigned char *b, size_t n)
{
	size_t i = 0, start;
	int headers = 0, known = 0;

	if (n >= 5 && memcmp(b, "From ", 5) == 0) {
		while (i < n && b[i] != '\n')
			i++;
		i++;
	}
	while (i < n) {
		start = i;
		if (b[i] == '\n' || (b[i] == '\r' && i + 1 < n &&
		    b[i + 1] == '\n'))
			break;
		if (b[i] == ' ' || b[i] == '\t') {
			if (headers == 0)
				return 0;
		} else {
			while (i < n && b[i] > 32 && b[i] < 127 && b[i] != ':')
				i++;
			if (i == n)
				break;	/* cut by the peek window */
			if (b[i] != ':' || i == start)
				return 0;
			headers++;
			known += is_known_header(b + start, i - start);
		}
		while (i < n && b[i] != '\n')
			i++;
		i++;
	}
	return headers >= 1 && known >= 1;
}

static enum sniff
sniff(const unsigned char *b, size_t n)
{
	size_t i = 0, text = 0;

	if (n == 0)
		return SNIFF_EMPTY;
	if (n >= 2 && b[0] == 0x1f && b[1] == 0x8b)
		return SNIFF_GZIP;
	if (n >= 4 && b[0] == 'P' && b[1] == 'K' &&
	    ((b[2] == 3 && b[3] == 4) || (b[2] == 5 && b[3] == 6) ||
	    (b[2] == 7 && b[3] == 8)))
		return SNIFF_ZIP;
	if (n >= 4 && b[0] == 0x78 && b[1] == 0x9f && b[2] == 0x3e &&
	    b[3] == 0x22)
		return SNIFF_TNEF;
	if (n >= 2 && (b[0] & 0x0f) == 8 && (b[0] >> 4) <= 7 &&
	    ((b[0] << 8) | b[1]) % 31 == 0)
		return SNIFF_ZLIB;
	if (n >= 4 && ((b[0] == 0xFF && b[1] == 0xFE && b[2] == '<') ||
	    (b[0] == 0xFE && b[1] == 0xFF && b[3] == '<')))
		return SNIFF_XML;
	if (n >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF)
		i = 3;
	while (i < n && isspace(b[i]))
		i++;
	if (i < n && b[i] == '<') {
		if ((n - i >= 14 && strncasecmp((const char *)b + i,
		    "<!doctype html", 14) == 0) || (n - i >= 5 &&
		    strncasecmp((const char *)b + i, "<html", 5) == 0))
			return SNIFF_HTML;
		return SNIFF_XML;
	}
	if (i < n && (b[i] == '{' || b[i] == '['))
		return SNIFF_JSON;
	if (looks_like_mail(b, n))
		return SNIFF_MAIL;
	if (n - i >= 6 && strncmp((const char *)b + i, "unused", 6) == 0) {
		size_t j = i + 6;

		while (j < n && isspace(b[j]))
			j++;
		if (j == n)
			return SNIFF_UNUSED;
	}
	for (i = 0; i < n; i++) {
		if (b[i] == 0)
			return SNIFF_BINARY;
		if (b[i] >= 0x20 || b[i] == '\n' || b[i] == '\r' ||
		    b[i] == '\t' || b[i] >= 0x80)
			text++;
	}
	return text * 10 >= n * 9 ? SNIFF_TEXT : SNIFF_BINARY;
}

static int
report_like_name(const char *name)
{
	static const char *const endings[] = {
		".xml", ".gz", ".gzip", ".zip", ".xml.gz", ".zlib", ".json",
		".json.gz", NULL };
	const char *const *e;
	size_t len = strlen(name);

	for (e = endings; *e != NULL; e++) {
		size_t elen = strlen(*e);

		if (len > elen && strcasecmp(name + len - elen, *e) == 0)
			return 1;
	}
	return 0;
}

static void
describe_bytes(const unsigned char *b, size_t n, char *out, size_t size)
{
	size_t i, o = 0;

	for (i = 0; i < n && i < 8 && o + 4 < size; i++)
		o += (size_t)snprintf(out + o, size - o, "%s%02x", i ? " " : "",
		    b[i]);
	if (o == 0)
		snprintf(out, size, "none");
}

/* Aggregate XML */

/*
 * The reader: when a large report is parsed serially, a second thread
 * reads (and inflates) the stream into a ring of chunks and hashes them,
 * while the calling thread runs libxml2 over the chunks before it. Memory
 * stays flat: the ring is the only buffer. Small inputs are parsed in one
 * thread; large ones with worker threads are read by the calling thread.
 */
#define RING_SLOTS	8
#define RING_CHUNK	(128 * 1024)
#define PIPELINE_MIN	(256 * 1024)
#define SMALL_CHUNK_BELOW	(16 * 1024 * 1024)

struct ring_slot {
	unsigned char data[RING_CHUNK];
	ssize_t len;		/* -1: error (err), 0: end */
	size_t clean;		/* agg_clean_prefix of data */
	struct dm_error err;
};

struct reader {
	struct unpack *u;
	struct stream *s;
	struct ring_slot *slots;
	struct dm_ring ring;
	struct sha256_ctx sha;
	struct dm_warnings warnings;	/* the streams' notes, merged later */
};

static void *
reader_run(void *arg)
{
	struct reader *rd = arg;
	int index;

	while ((index = dm_ring_acquire(&rd->ring)) >= 0) {
		struct ring_slot *slot = &rd->slots[index];

		dm_error_clear(&slot->err);
		slot->len = stream_read(rd->s, slot->data, RING_CHUNK,
		    &slot->err);
		if (slot->len > 0) {
			sha256_update(&rd->sha, (size_t)slot->len,
			    (const uint8_t *)slot->data);
			slot->clean = agg_clean_prefix(slot->data,
			    (size_t)slot->len);
		}
		dm_ring_publish(&rd->ring);
		if (slot->len <= 0)
			break;		/* the end, or an error: said in slot */
	}
	return NULL;
}

/*
 * parse_threads - workers for the records of one report: the option, or
 * by default one per online CPU (up to AGG_MAX_THREADS) for a report of
 * PIPELINE_MIN bytes or more (or of unknown size); 1 parses serially.
 */
_Static_assert(UNPACK_MAX_THREADS == AGG_MAX_THREADS, "one thread cap");

static long online_cpus;	/* 0: not read yet */

static unsigned
parse_threads(const struct unpack_options *o, int big)
{
	long cpus;

	if (o->parse_threads > 0)
		return o->parse_threads;
	if (!big)
		return 1;
	/* Read once: sysconf opens a file in /sys each time. */
	if (online_cpus == 0)
		online_cpus = sysconf(_SC_NPROCESSORS_ONLN);
	cpus = online_cpus;
	if (cpus < 2)
		return 1;
	return cpus > AGG_MAX_THREADS ? AGG_MAX_THREADS : (unsigned)cpus;
}

/* The parse loop over either the ring or plain reads. */
static int
feed_xml(struct unpack *u, struct stream *s, struct agg_parser *p,
    struct reader *rd, struct dm_error *read_err, struct dm_error *err)
{
	for (;;) {
		const unsigned char *data;
		size_t clean = 0;
		ssize_t n;

		if (rd != NULL) {
			struct ring_slot *slot =
			    &rd->slots[dm_ring_take(&rd->ring)];

			n = slot->len;
			data = slot->data;
			clean = slot->clean;
			if (n < 0)
				*read_err = slot->err;
		} else {
			n = stream_read(s, u->readbuf, READ_CHUNK, read_err);
			data = u->readbuf;
		}
		if (n <= 0)
			return n < 0 ? -1 : 0;
		if (agg_feed_hinted(p, data, (size_t)n, clean, err) != 0)
			return 1;	/* the parser stopped */
		if (rd != NULL)
			dm_ring_release(&rd->ring);
	}
}

static int
do_xml(struct unpack *u, struct stream *s, const char *where)
{
	struct dm_warnings *warnings;
	struct dm_warnings *saved = u->cur_warnings;
	struct agg_options ao;
	struct agg_parser *p;
	struct dm_error err, read_err;
	struct reader *rd = NULL;
	pthread_t thread;
	unsigned threads;
	int rc = 0, fed, big;

	warnings = calloc(1, sizeof(*warnings));
	if (warnings == NULL)
		return dm_error_set(&u->stop_err, DM_E_NOMEM, "out of memory");
	/* Notes a container made while its content was sniffed. */
	dm_warnings_merge(warnings, saved, 0);
	dm_warnings_clear(saved);
	/*
	 * A small input is read and parsed in this thread: threads would
	 * cost more than they save. A large one is parsed by worker threads
	 * (aggregate.h) while this thread reads, inflates and hashes it; or,
	 * when the parse is serial, this thread parses while a reader thread
	 * reads. Not both: with workers busy on every CPU a reader thread
	 * only adds hand-offs (measured: 10% slower on 2 CPUs).
	 */
	big = s->mem != NULL ? s->mem_len >= PIPELINE_MIN :
	    s->size_hint == 0 || s->size_hint >= PIPELINE_MIN;
	threads = parse_threads(u->opt, big);
	if (big && threads == 1) {
		rd = calloc(1, sizeof(*rd));
		if (rd != NULL)
			rd->slots = malloc(sizeof(*rd->slots) * RING_SLOTS);
		if (rd == NULL || rd->slots == NULL ||
		    dm_ring_init(&rd->ring, RING_SLOTS) != 0) {
			if (rd != NULL)
				free(rd->slots);
			free(rd);
			rd = NULL;
		} else {
			sha256_init(&rd->sha);
			rd->u = u;
			rd->s = s;
		}
	}
	ao.input = u->input;
	ao.where = where;
	ao.warnings = warnings;
	ao.hash_elsewhere = rd != NULL;
	ao.threads = threads;
	ao.chunk = u->opt->parse_chunk;
	/*
	 * An input known to be under SMALL_CHUNK_BELOW goes in chunks half
	 * the default size: more of them per thread, so less time waiting
	 * for the first and the last (measured at 8 MB: 3% faster; at 80 MB
	 * the default size is 5% faster).
	 */
	if (ao.chunk == 0 && threads > 1) {
		uint64_t size = s->mem != NULL ? s->mem_len : s->size_hint;

		if (size > 0 && size < SMALL_CHUNK_BELOW)
			ao.chunk = AGG_CHUNK_DEFAULT / 2;
	}
	p = agg_new(&ao, &u->tap, &u->stop_err);
	if (p == NULL) {
		rc = -1;
		goto out;
	}
	/* While the reader runs, stream notes go to its own list. */
	u->cur_warnings = rd != NULL ? &rd->warnings : warnings;
	if (rd != NULL && pthread_create(&thread, NULL, reader_run, rd) != 0) {
		u->cur_warnings = warnings;
		dm_ring_destroy(&rd->ring);
		free(rd->slots);
		free(rd);
		rd = NULL;
		agg_free(&p);
		ao.hash_elsewhere = 0;
		p = agg_new(&ao, &u->tap, &u->stop_err);
		if (p == NULL) {
			rc = -1;
			goto out;
		}
	}
	dm_error_clear(&err);
	dm_error_clear(&read_err);
	fed = feed_xml(u, s, p, rd, &read_err, &err);
	if (rd != NULL) {
		unsigned char digest[32];

		dm_ring_cancel(&rd->ring);
		pthread_join(thread, NULL);
		sha256_digest(&rd->sha, SHA256_DIGEST_SIZE, digest);
		agg_set_payload_sha256(p, digest);
		dm_warnings_merge(warnings, &rd->warnings, 0);
	}
	u->cur_warnings = warnings;
	if (fed < 0) {
		/* The bytes stopped: a report open so far is rejected. */
		agg_abort(p, &read_err, &err);
		if (!agg_has_report(p)) {
			if (input_fault(&read_err))
				rc = emit_problem(u, where, DM_KIND_UNKNOWN,
				    &read_err);
			else {
				u->stop_err = read_err;
				rc = -1;
			}
		} else if (!input_fault(&read_err)) {
			u->stop_err = read_err;
			rc = -1;
		}
		goto out;
	}
	if (agg_finish(p, &err) != 0) {
		if (!input_fault(&err)) {
			u->stop_err = err;
			rc = -1;
		} else if (!agg_has_report(p))
			rc = emit_problem(u, where, DM_KIND_UNKNOWN, &err);
	}
out:
	if (rd != NULL) {
		dm_ring_destroy(&rd->ring);
		free(rd->slots);
		free(rd);
	}
	u->cur_warnings = saved;
	if (p != NULL)
		u->result->parallel_chunks += agg_parallel_chunks(p);
	agg_free(&p);
	free(warnings);
	return rc;
}

/* gzip and zlib */

static int
do_inflate(struct unpack *u, struct stream *s, const char *where, int depth,
    int gzip)
{
	char inner_where[WHERE_MAX];
	struct stream *z;
	int rc;

	z = stream_inflate_new(s, &u->budget, &u->cur_warnings);
	if (z == NULL)
		return dm_error_set(&u->stop_err, DM_E_NOMEM, "out of memory");
	join_where(inner_where, where, "%s", gzip ? "gzip" : "zlib");
	rc = dispatch(u, z, inner_where, depth + 1, 0);
	stream_free(&z);
	return rc;
}

/* zip */

/*
 * libzip is loaded with the first zip archive (common/dl.h): it brings
 * OpenSSL's libcrypto and bzip2 along, which other input does not need.
 */
#define ZIP_SYMS(X, a)							\
	X(a, zip_fread) X(a, zip_error_strerror) X(a, zip_file_get_error) \
	X(a, zip_error_init) X(a, zip_source_buffer_create)		\
	X(a, zip_open_from_source) X(a, zip_source_free)		\
	X(a, zip_error_fini) X(a, zip_fdopen) X(a, zip_error_set)	\
	X(a, zip_get_num_entries) X(a, zip_stat_init)			\
	X(a, zip_stat_index) X(a, zip_strerror) X(a, zip_fopen_index)	\
	X(a, zip_fclose) X(a, zip_discard) X(a, zip_libzip_version)

static struct zip_api {
	DM_DL_FIELDS(ZIP_SYMS)
} zipl;

static const struct dm_dl_sym zip_syms[] = {
	DM_DL_SYMS(struct zip_api, ZIP_SYMS)
};

static struct dm_dl_lib zip_lib = DM_DL_LIB(LIBZIP_SONAME,
    "to read zip archives", zip_syms, &zipl);

const char *
unpack_libzip_version(void)
{
	return dm_dl_need(&zip_lib, NULL) == 0 ? zipl.zip_libzip_version() :
	    NULL;
}

const char *
unpack_libetpan_version(void)
{
	return mime_library_version();
}

struct zip_member_stream {
	struct stream base;
	zip_file_t *zf;
	struct stream_budget *budget;
	uint64_t comp_size, out_total;
	uint64_t *archive_out;		/* all members so far */
	uint64_t archive_size;
};

static ssize_t
zip_member_read(struct stream *s, void *buf, size_t len,
    struct dm_error *err)
{
	struct zip_member_stream *m = (struct zip_member_stream *)s;
	zip_int64_t n = zipl.zip_fread(m->zf, buf, len);

	if (n < 0)
		return dm_error_set(err, DM_E_DATA, "zip member unreadable: %s",
		    zipl.zip_error_strerror(zipl.zip_file_get_error(m->zf)));
	m->out_total += (uint64_t)n;
	*m->archive_out += (uint64_t)n;
	if (stream_budget_take(m->budget, (uint64_t)n, m->comp_size,
	    m->out_total, "zip member", err) != 0)
		return -1;
	/* Members may share one compressed stream: the archive counts too. */
	if (stream_budget_take(m->budget, 0, m->archive_size,
	    *m->archive_out, "the zip archive", err) != 0)
		return -1;
	return (ssize_t)n;
}

static const struct stream_ops zip_member_ops = { zip_member_read, NULL };

/* Copy a stream that cannot be reopened to an unlinked temporary file. */
static int
spool(struct unpack *u, struct stream *s, int *fd_r, struct dm_error *err)
{
	const char *dir = getenv("TMPDIR");
	char path[4096];
	ssize_t n;
	uint64_t total = 0;
	int fd;

	if (dir == NULL || dir[0] == '\0')
		dir = "/tmp";
	fd = open(dir, O_TMPFILE | O_RDWR | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(path, sizeof(path), "%s/dmarcd-spool-XXXXXX", dir);
		fd = mkstemp(path);
		if (fd < 0)
			return dm_error_tmpdir(err, "cannot spool a zip "
			    "archive", dir, errno, "run again once there is "
			    "space");
		unlink(path);
	}
	while ((n = stream_read(s, u->readbuf, READ_CHUNK, err)) > 0) {
		ssize_t w, off = 0;

		total += (uint64_t)n;
		if (total > u->opt->limits.max_input_bytes) {
			close(fd);
			return dm_error_set(err, DM_E_LIMIT, "zip archive "
			    "larger than the limit of %llu bytes",
			    (unsigned long long)u->opt->limits.max_input_bytes);
		}
		while (off < n) {
			w = write(fd, u->readbuf + off, (size_t)(n - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				dm_error_tmpdir(err, "cannot spool a zip "
				    "archive", dir, errno, "run again once "
				    "there is space");
				close(fd);
				return -1;
			}
			off += w;
		}
	}
	if (n < 0) {
		close(fd);
		return -1;
	}
	*fd_r = fd;
	return 0;
}

static void
printable_name(const char *in, char *out, size_t size);

/* Bytes of an archive at an offset: from memory, or pread() on fd. */
static int
zip_read_at(const unsigned char *mem, int fd, uint64_t size, uint64_t off,
    void *buf, size_t len)
{
	ssize_t n;
	size_t got = 0;

	if (off > size || len > size - off)
		return -1;
	if (mem != NULL) {
		memcpy(buf, mem + off, len);
		return 0;
	}
	while (got < len) {
		n = pread(fd, (char *)buf + got, len - got, (off_t)(off + got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}

static uint32_t
le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

static uint16_t
le16(const unsigned char *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint64_t
le64(const unsigned char *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

/* a + b, or UINT64_MAX when that does not fit: a span past any file. */
static uint64_t
add_sat(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

#define ZIP_EOCD_SIG		0x06054b50u
#define ZIP_EOCD_LEN		22
#define ZIP64_LOCATOR_SIG	0x07064b50u
#define ZIP64_LOCATOR_LEN	20
#define ZIP64_EOCD_SIG		0x06064b50u
#define ZIP64_EOCD_LEN		56
#define ZIP_CENTRAL_SIG		0x02014b50u
#define ZIP_CENTRAL_LEN		46
#define ZIP_LOCAL_LEN		30
/* What libzip reads from the end to find the end record (its CDBUFSIZE):
 * the largest comment, the record and the zip64 locator before it. */
#define ZIP_TAIL_MAX		(65535 + ZIP_EOCD_LEN + ZIP64_LOCATOR_LEN)
#define ZIP_CD_MAX		(16u << 20)

/* A central directory as one end record describes it. */
struct cdir_desc {
	uint64_t eocd_offset;		/* the end record that says so */
	uint64_t cd_offset, cd_size, entries;
};

struct zip_span {
	uint64_t offset, end;		/* local header .. at least its data */
	char name[64];
};

static int
zip_span_cmp(const void *a, const void *b)
{
	const struct zip_span *x = a, *y = b;

	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/*
 * cdir_plausible - could a reader take this directory? It lies in the
 * file before the record that describes it (limit) and starts with a
 * central header (or is empty). libzip refuses any other, so a candidate
 * it could choose is always one of ours.
 */
static int
cdir_plausible(const unsigned char *mem, int fd, uint64_t size,
    const struct cdir_desc *d, uint64_t limit)
{
	unsigned char sig[4];

	if (d->cd_offset > limit || d->cd_size > limit - d->cd_offset)
		return 0;
	if (d->entries == 0)
		return d->cd_size == 0;
	if (d->cd_size < ZIP_CENTRAL_LEN ||
	    zip_read_at(mem, fd, size, d->cd_offset, sig, 4) != 0)
		return 0;
	return le32(sig) == ZIP_CENTRAL_SIG;
}

/*
 * cdir_note - note a plausible directory unless it is one already
 * noted. Returns the number of different directories so far (at most 2:
 * two are enough to refuse the archive).
 */
static size_t
cdir_note(struct cdir_desc *dirs, size_t count, const struct cdir_desc *d)
{
	size_t i;

	for (i = 0; i < count; i++)
		if (dirs[i].cd_offset == d->cd_offset &&
		    dirs[i].cd_size == d->cd_size &&
		    dirs[i].entries == d->entries)
			return count;
	if (count < 2)
		dirs[count] = *d;
	return count + 1 > 2 ? 2 : count + 1;
}

/*
 * cdir_from_end - the directories one end record at eocd_offset can
 * stand for: its own 16/32-bit fields and, with a zip64 locator just
 * before it, the zip64 end record's 64-bit fields. Readers differ on
 * which they believe, so both count.
 */
static size_t
cdir_from_end(const unsigned char *mem, int fd, uint64_t size,
    const unsigned char *rec, uint64_t eocd_offset, struct cdir_desc *dirs,
    size_t count)
{
	unsigned char loc[ZIP64_LOCATOR_LEN], z64[ZIP64_EOCD_LEN];
	struct cdir_desc d;
	uint64_t z64_offset;

	d.eocd_offset = eocd_offset;
	/* A part of a multi-disk archive is no archive for anyone. */
	if (le16(rec + 4) == 0 && le16(rec + 6) == 0) {
		d.entries = le16(rec + 10);
		d.cd_size = le32(rec + 12);
		d.cd_offset = le32(rec + 16);
		if (d.entries != 0xffff && d.cd_size != 0xffffffffu &&
		    d.cd_offset != 0xffffffffu &&
		    cdir_plausible(mem, fd, size, &d, eocd_offset))
			count = cdir_note(dirs, count, &d);
	}
	if (eocd_offset < ZIP64_LOCATOR_LEN ||
	    zip_read_at(mem, fd, size, eocd_offset - ZIP64_LOCATOR_LEN, loc,
	    sizeof(loc)) != 0 || le32(loc) != ZIP64_LOCATOR_SIG)
		return count;
	z64_offset = le64(loc + 8);
	if (z64_offset > eocd_offset - ZIP64_LOCATOR_LEN ||
	    zip_read_at(mem, fd, size, z64_offset, z64, sizeof(z64)) != 0 ||
	    le32(z64) != ZIP64_EOCD_SIG || le32(z64 + 16) != 0 ||
	    le32(z64 + 20) != 0)
		return count;
	d.entries = le64(z64 + 32);
	d.cd_size = le64(z64 + 40);
	d.cd_offset = le64(z64 + 48);
	if (cdir_plausible(mem, fd, size, &d, z64_offset))
		count = cdir_note(dirs, count, &d);
	return count;
}

/*
 * cdir_zip64_extra - the real sizes and offset of a central entry whose
 * fields say 0xffffffff, from its zip64 extra field (id 1), which holds
 * them in this order and only those that overflowed. -1 when a value it
 * needs is missing.
 */
static int
cdir_zip64_extra(const unsigned char *extra, size_t extra_len,
    uint64_t *usize, uint64_t *csize, uint64_t *offset)
{
	size_t pos = 0;

	while (pos + 4 <= extra_len) {
		size_t id = le16(extra + pos), len = le16(extra + pos + 2);
		const unsigned char *v = extra + pos + 4;

		if (len > extra_len - pos - 4)
			return -1;
		if (id == 0x0001) {
			size_t used = 0;

			if (*usize == 0xffffffffu) {
				if (used + 8 > len)
					return -1;
				*usize = le64(v + used);
				used += 8;
			}
			if (*csize == 0xffffffffu) {
				if (used + 8 > len)
					return -1;
				*csize = le64(v + used);
				used += 8;
			}
			if (*offset == 0xffffffffu) {
				if (used + 8 > len)
					return -1;
				*offset = le64(v + used);
			}
			return 0;
		}
		pos += 4 + len;
	}
	return *csize == 0xffffffffu || *offset == 0xffffffffu ? -1 : 0;
}

/*
 * zip_check_overlap - read the central directory (libzip does not give
 * the members' offsets) and refuse members whose data overlap: two
 * entries for one local header, or one inside another, is how a zip bomb
 * makes many members of one stream. Each member takes at least its
 * 30-byte local header and its compressed size, so an overlap found is a
 * real one. Zip64 sizes, offsets and end records are followed.
 *
 * Every end record in the tail counts, not only the last: libzip picks
 * among them by its own rules, so a second record hidden in the archive
 * comment could show this check a clean directory while libzip reads
 * another. When the plausible records describe different directories
 * the archive is refused. Directories this reader does not follow (over
 * 256 members or 16 MiB, entries that do not parse) are left to libzip
 * and to the caps. 0 when no overlap, -1 with err.
 */
static int
zip_check_overlap(const unsigned char *mem, int fd, uint64_t size,
    struct dm_error *err)
{
	unsigned char *tail, *cd = NULL;
	struct zip_span *spans = NULL;
	struct cdir_desc dirs[2];
	uint64_t tail_off, cd_size;
	size_t tail_len, i, n = 0, entries, pos, dir_count = 0;
	int rc = 0;

	if (size < ZIP_EOCD_LEN)
		return 0;
	tail_len = size < ZIP_TAIL_MAX ? (size_t)size : ZIP_TAIL_MAX;
	tail_off = size - tail_len;
	if ((tail = malloc(tail_len)) == NULL)
		return dm_error_set(err, DM_E_NOMEM, "out of memory");
	if (zip_read_at(mem, fd, size, tail_off, tail, tail_len) != 0) {
		free(tail);
		return 0;
	}
	for (i = 0; i + ZIP_EOCD_LEN <= tail_len; i++)
		if (le32(tail + i) == ZIP_EOCD_SIG)
			dir_count = cdir_from_end(mem, fd, size, tail + i,
			    tail_off + i, dirs, dir_count);
	free(tail);
	if (dir_count == 0)
		return 0;	/* libzip says what is wrong */
	if (dir_count > 1)
		return dm_error_set(err, DM_E_DATA, "zip archive has end "
		    "records (at byte offsets %llu and %llu) that describe "
		    "different central directories (at byte offsets %llu "
		    "and %llu): refused before any member is read, as "
		    "readers would not agree on its members (a directory "
		    "hidden in the comment?)",
		    (unsigned long long)dirs[0].eocd_offset,
		    (unsigned long long)dirs[1].eocd_offset,
		    (unsigned long long)dirs[0].cd_offset,
		    (unsigned long long)dirs[1].cd_offset);
	if (dirs[0].entries > DM_MAX_ZIP_MEMBERS ||
	    dirs[0].cd_size > ZIP_CD_MAX)
		return 0;
	entries = (size_t)dirs[0].entries;
	cd_size = dirs[0].cd_size;
	cd = malloc(cd_size > 0 ? (size_t)cd_size : 1);
	spans = calloc(entries > 0 ? entries : 1, sizeof(*spans));
	if (cd == NULL || spans == NULL) {
		rc = dm_error_set(err, DM_E_NOMEM, "out of memory");
		goto out;
	}
	if (zip_read_at(mem, fd, size, dirs[0].cd_offset, cd,
	    (size_t)cd_size) != 0)
		goto out;
	for (pos = 0; n < entries && pos + ZIP_CENTRAL_LEN <= cd_size; n++) {
		const unsigned char *e = cd + pos;
		size_t name_len = le16(e + 28), extra_len = le16(e + 30);
		uint64_t usize = le32(e + 24), csize = le32(e + 20);
		uint64_t offset = le32(e + 42);
		char raw[64];

		if (le32(e) != ZIP_CENTRAL_SIG)
			goto out;	/* libzip says what is wrong */
		if (name_len > cd_size - pos - ZIP_CENTRAL_LEN ||
		    extra_len > cd_size - pos - ZIP_CENTRAL_LEN - name_len)
			goto out;
		if ((csize == 0xffffffffu || offset == 0xffffffffu ||
		    usize == 0xffffffffu) &&
		    cdir_zip64_extra(e + ZIP_CENTRAL_LEN + name_len,
		    extra_len, &usize, &csize, &offset) != 0)
			goto out;
		spans[n].offset = offset;
		spans[n].end = add_sat(add_sat(offset, ZIP_LOCAL_LEN), csize);
		snprintf(raw, sizeof(raw), "%.*s", (int)name_len,
		    (const char *)e + ZIP_CENTRAL_LEN);
		printable_name(raw, spans[n].name, sizeof(spans[n].name));
		pos += ZIP_CENTRAL_LEN + name_len + extra_len + le16(e + 32);
	}
	qsort(spans, n, sizeof(*spans), zip_span_cmp);
	for (i = 0; i + 1 < n; i++)
		if (spans[i].end > spans[i + 1].offset) {
			rc = dm_error_set(err, DM_E_DATA, "zip members '%s' and "
			    "'%s' overlap (local headers at byte offsets "
			    "%llu and %llu): refused before any member is "
			    "read (a zip bomb's shape)", spans[i].name,
			    spans[i + 1].name,
			    (unsigned long long)spans[i].offset,
			    (unsigned long long)spans[i + 1].offset);
			break;
		}
out:
	free(cd);
	free(spans);
	return rc;
}

static int
zip_open_stream(struct unpack *u, struct stream *s, zip_t **za_r,
    uint64_t *size_r, struct dm_error *err)
{
	zip_error_t zerr;
	struct stat st;
	int fd = -1, code;

	*za_r = NULL;
	*size_r = s->mem_len;
	zipl.zip_error_init(&zerr);
	if (s->mem != NULL) {
		zip_source_t *src;

		if (zip_check_overlap(s->mem, -1, s->mem_len, err) != 0) {
			zipl.zip_error_fini(&zerr);
			return -1;
		}
		src = zipl.zip_source_buffer_create(s->mem, s->mem_len, 0,
		    &zerr);

		if (src != NULL) {
			*za_r = zipl.zip_open_from_source(src, ZIP_RDONLY, &zerr);
			if (*za_r == NULL)
				zipl.zip_source_free(src);
		}
	} else {
		if (s->fd >= 0 && s->offset == 0)
			fd = dup(s->fd);
		else if (spool(u, s, &fd, err) != 0) {
			zipl.zip_error_fini(&zerr);
			return -1;
		}
		if (fd < 0) {
			zipl.zip_error_fini(&zerr);
			return dm_error_set(err, DM_E_IO, "dup: %s",
			    strerror(errno));
		}
		if (fstat(fd, &st) == 0)
			*size_r = (uint64_t)st.st_size;
		if (zip_check_overlap(NULL, fd, *size_r, err) != 0) {
			close(fd);
			zipl.zip_error_fini(&zerr);
			return -1;
		}
		*za_r = zipl.zip_fdopen(fd, ZIP_RDONLY, &code);
		if (*za_r == NULL) {
			close(fd);
			zipl.zip_error_set(&zerr, code, errno);
		}
	}
	if (*za_r == NULL) {
		dm_error_set(err, DM_E_DATA, "unreadable zip archive: %s",
		    zipl.zip_error_strerror(&zerr));
		zipl.zip_error_fini(&zerr);
		return -1;
	}
	zipl.zip_error_fini(&zerr);
	return 0;
}

static void
printable_name(const char *in, char *out, size_t size)
{
	size_t o = 0;

	for (; in != NULL && *in != '\0' && o + 1 < size; in++)
		out[o++] = ((unsigned char)*in >= 0x20 &&
		    (unsigned char)*in < 0x7f) ? *in : '?';
	out[o] = '\0';
}

/*
 * zip_check_declared - the sizes the central directory declares, checked
 * against the caps before any member is read: each member's size and
 * ratio, then all members together against what is left of the budget
 * and against the archive's own size (members that overlap share one
 * compressed stream: each is modest, together a bomb).
 *
 * A member over its own cap gets its problem event and is marked in
 * refused[] (count entries): the read loop skips it and still reads the
 * others, as a mail admin expects the good reports of an archive that
 * also holds a bomb. The totals (of the members not refused) refuse the
 * whole archive. 0 when the members not refused may be read; 1 after a
 * problem event for the archive; -1 when a handler stopped the parse.
 */
static int
zip_check_declared(struct unpack *u, zip_t *za, zip_int64_t count,
    uint64_t archive_size, const char *where, unsigned char *refused)
{
	char member_where[WHERE_MAX], name[160];
	uint64_t declared = 0, left = u->budget.max_bytes - u->budget.used;
	zip_int64_t i;

	for (i = 0; i < count; i++) {
		zip_stat_t st;

		zipl.zip_stat_init(&st);
		if (zipl.zip_stat_index(za, (zip_uint64_t)i, 0, &st) != 0 ||
		    !(st.valid & ZIP_STAT_SIZE))
			continue;	/* the read loop says what it is */
		printable_name(st.name, name, sizeof(name));
		join_where(member_where, where, "zip member '%s'", name);
		if (st.size > left) {
			refused[i] = 1;
			if (problem(u, member_where, DM_KIND_UNKNOWN,
			    DM_E_LIMIT, "zip member declares %llu bytes, more "
			    "than the limit of %llu (decompression bomb?)",
			    (unsigned long long)st.size,
			    (unsigned long long)u->budget.max_bytes) != 0)
				return -1;
			continue;
		}
		if ((st.valid & ZIP_STAT_COMP_SIZE) &&
		    u->budget.max_ratio > 0 && st.size > u->budget.ratio_grace &&
		    st.size / (st.comp_size ? st.comp_size : 1) >
		    u->budget.max_ratio) {
			refused[i] = 1;
			if (problem(u, member_where, DM_KIND_UNKNOWN,
			    DM_E_LIMIT, "zip member expands %llu bytes to "
			    "%llu, a ratio above the limit of %u:1 "
			    "(decompression bomb?)",
			    (unsigned long long)st.comp_size,
			    (unsigned long long)st.size,
			    u->budget.max_ratio) != 0)
				return -1;
			continue;
		}
		declared += st.size;
	}
	if (declared > left)
		return problem(u, where, DM_KIND_UNKNOWN, DM_E_LIMIT, "zip "
		    "archive declares %llu bytes in %lld members, more than "
		    "the limit of %llu (decompression bomb?): no member read",
		    (unsigned long long)declared, (long long)count,
		    (unsigned long long)u->budget.max_bytes) != 0 ? -1 : 1;
	if (u->budget.max_ratio > 0 && declared > u->budget.ratio_grace &&
	    declared / (archive_size ? archive_size : 1) > u->budget.max_ratio)
		return problem(u, where, DM_KIND_UNKNOWN, DM_E_LIMIT, "zip "
		    "archive of %llu bytes declares %llu bytes in %lld "
		    "members, a ratio above the limit of %u:1 (overlapping "
		    "members? decompression bomb?): no member read",
		    (unsigned long long)archive_size,
		    (unsigned long long)declared, (long long)count,
		    u->budget.max_ratio) != 0 ? -1 : 1;
	return 0;
}

static int
do_zip(struct unpack *u, struct stream *s, const char *where, int depth)
{
	char member_where[WHERE_MAX], name[160];
	struct dm_error err;
	zip_t *za;
	zip_int64_t count, i;
	uint64_t archive_size, archive_out = 0;
	unsigned found_before = u->found, skipped = 0;
	unsigned char *refused = NULL;
	int rc = 0;

	dm_error_clear(&err);
	if (dm_dl_need(&zip_lib, &u->stop_err) != 0)
		return -1;
	if (zip_open_stream(u, s, &za, &archive_size, &err) != 0)
		return input_fault(&err) ? emit_problem(u, where,
		    DM_KIND_UNKNOWN, &err) : (u->stop_err = err, -1);
	count = zipl.zip_get_num_entries(za, 0);
	if (count < 0 || (uint64_t)count > u->opt->limits.max_zip_members) {
		rc = problem(u, where, DM_KIND_UNKNOWN, DM_E_LIMIT, "zip "
		    "archive has %lld members, more than the limit of %u",
		    (long long)count, u->opt->limits.max_zip_members);
		goto out;
	}
	if ((refused = calloc(count > 0 ? (size_t)count : 1, 1)) == NULL) {
		rc = dm_error_set(&u->stop_err, DM_E_NOMEM, "out of memory");
		goto out;
	}
	rc = zip_check_declared(u, za, count, archive_size, where, refused);
	if (rc != 0) {
		rc = rc < 0 ? -1 : 0;
		goto out;
	}
	for (i = 0; i < count && rc == 0; i++) {
		struct zip_member_stream *m;
		zip_stat_t st;
		size_t nlen;
		unsigned flags;

		if (refused[i])
			continue;	/* its problem is said */
		zipl.zip_stat_init(&st);
		if (zipl.zip_stat_index(za, (zip_uint64_t)i, 0, &st) != 0) {
			rc = problem(u, where, DM_KIND_UNKNOWN, DM_E_DATA,
			    "zip member %lld unreadable: %s", (long long)i,
			    zipl.zip_strerror(za));
			continue;
		}
		printable_name(st.name, name, sizeof(name));
		join_where(member_where, where, "zip member '%s'", name);
		nlen = st.name ? strlen(st.name) : 0;
		if (nlen > 0 && st.name[nlen - 1] == '/') {
			skipped++;	/* a directory */
			continue;
		}
		if ((st.valid & ZIP_STAT_ENCRYPTION_METHOD) &&
		    st.encryption_method != ZIP_EM_NONE) {
			rc = problem(u, member_where, DM_KIND_UNKNOWN,
			    DM_E_DATA, "encrypted zip member: cannot be read");
			continue;
		}
		m = calloc(1, sizeof(*m));
		if (m == NULL) {
			rc = dm_error_set(&u->stop_err, DM_E_NOMEM, "out of "
			    "memory");
			break;
		}
		m->base.ops = &zip_member_ops;
		m->base.fd = -1;
		m->budget = &u->budget;
		m->comp_size = (st.valid & ZIP_STAT_COMP_SIZE) ?
		    st.comp_size : 0;
		m->archive_out = &archive_out;
		m->archive_size = archive_size;
		m->zf = zipl.zip_fopen_index(za, (zip_uint64_t)i, 0);
		if (m->zf == NULL) {
			rc = problem(u, member_where, DM_KIND_UNKNOWN,
			    DM_E_DATA, "zip member cannot be opened: %s",
			    zipl.zip_strerror(za));
			free(m);
			continue;
		}
		flags = report_like_name(name) ? 0 : DISPATCH_OPTIONAL;
		{
			struct stream *ms = &m->base;

			rc = dispatch(u, ms, member_where, depth + 1, flags);
			if (rc > 0) {
				skipped++;
				rc = 0;
			}
			zipl.zip_fclose(m->zf);
			stream_free(&ms);
		}
	}
	if (rc == 0 && u->found == found_before)
		rc = problem(u, where, DM_KIND_UNKNOWN, DM_E_DATA, "zip archive "
		    "holds no report (%lld member(s), %u skipped: directories "
		    "or not reports)", (long long)count, skipped);
out:
	free(refused);
	zipl.zip_discard(za);
	return rc;
}

/* Mail */

struct mail_walk {
	const char *subject;
	char parts[256];		/* types seen, for the "none" message */
	const char *notice_text;	/* first text/plain, for notices */
	size_t notice_len;
	char *notice_owned;
	int is_report;			/* a multipart/report was seen */
	unsigned part_count;
};

static int walk(struct unpack *u, const struct mailmime *mm,
    const char *where, int depth, int mime_depth, struct mail_walk *w);

static int
do_arf(struct unpack *u, const struct mailmime *mm, const char *where)
{
	struct dm_warnings *warnings = calloc(1, sizeof(*warnings));
	struct dm_arena arena;
	struct dm_failure f;
	struct arf_options o;
	struct dm_error err;
	int rc;

	if (warnings == NULL)
		return dm_error_set(&u->stop_err, DM_E_NOMEM, "out of memory");
	dm_arena_init(&arena, DM_MAX_FAILURE_TEXT);
	o.input = u->input;
	o.where = where;
	o.keep_bodies = u->opt->keep_bodies;
	o.warnings = warnings;
	dm_error_clear(&err);
	if (arf_parse(mm, &o, &arena, &f, &err) != 0) {
		f.status = DM_STATUS_REJECTED;
		f.error = err;
	}
	rc = emit_failure(u, &f);
	dm_arena_free(&arena);
	free(warnings);
	return rc;
}

static int
do_notice(struct unpack *u, struct mail_walk *w, const char *where)
{
	struct dm_warnings *warnings = calloc(1, sizeof(*warnings));
	struct dm_arena arena;
	struct dm_failure f;
	struct arf_options o;
	struct dm_error err;
	int rc;

	if (warnings == NULL)
		return dm_error_set(&u->stop_err, DM_E_NOMEM, "out of memory");
	dm_arena_init(&arena, DM_MAX_FAILURE_TEXT);
	o.input = u->input;
	o.where = where;
	o.keep_bodies = u->opt->keep_bodies;
	o.warnings = warnings;
	dm_error_clear(&err);
	if (arf_parse_notice(w->notice_text, w->notice_len, &o, &arena, &f,
	    &err) != 0) {
		f.status = DM_STATUS_REJECTED;
		f.error = err;
	}
	rc = emit_failure(u, &f);
	dm_arena_free(&arena);
	free(warnings);
	return rc;
}

static void
note_part(struct mail_walk *w, const char *type)
{
	size_t len = strlen(w->parts);

	if (strstr(w->parts, type) != NULL || len + strlen(type) + 3 >=
	    sizeof(w->parts))
		return;
	snprintf(w->parts + len, sizeof(w->parts) - len, "%s%s",
	    len ? ", " : "", type);
}

static int
skip_type(const char *type)
{
	return strcmp(type, "text/html") == 0 ||
	    strcmp(type, "text/enriched") == 0 ||
	    strncmp(type, "image/", 6) == 0 ||
	    strncmp(type, "audio/", 6) == 0 ||
	    strncmp(type, "video/", 6) == 0 ||
	    strcmp(type, "message/delivery-status") == 0 ||
	    strcmp(type, "message/disposition-notification") == 0 ||
	    strcmp(type, "text/rfc822-headers") == 0 ||
	    strcmp(type, "application/pgp-signature") == 0 ||
	    strcmp(type, "application/pkcs7-signature") == 0 ||
	    strcmp(type, "application/x-pkcs7-signature") == 0;
}

static int
walk_single(struct unpack *u, const struct mailmime *mm, const char *where,
    int depth, struct mail_walk *w)
{
	struct mime_part_info info;
	struct dm_error err;
	struct stream *s;
	const char *data;
	size_t len;
	char *owned = NULL;
	int rc;

	mime_part_info(mm, &info);
	note_part(w, info.type);
	if (strcmp(info.type, "application/ms-tnef") == 0 ||
	    strcasecmp(info.filename, "winmail.dat") == 0)
		return problem(u, where, DM_KIND_UNKNOWN, DM_E_DATA, "a TNEF "
		    "(winmail.dat) attachment: dmarcd cannot decode TNEF");
	if (skip_type(info.type) && !report_like_name(info.filename))
		return 0;
	dm_error_clear(&err);
	if (mime_decode(mm, &data, &len, &owned, &err) != 0) {
		if (!input_fault(&err)) {
			u->stop_err = err;
			return -1;
		}
		return problem(u, where, DM_KIND_UNKNOWN, err.code, "%s",
		    err.msg);
	}
	if (strcmp(info.type, "text/plain") == 0 && w->notice_text == NULL &&
	    owned == NULL) {
		w->notice_text = data;
		w->notice_len = len;
	} else if (strcmp(info.type, "text/plain") == 0 &&
	    w->notice_text == NULL) {
		w->notice_owned = malloc(len + 1);
		if (w->notice_owned != NULL) {
			memcpy(w->notice_owned, data, len);
			w->notice_text = w->notice_owned;
			w->notice_len = len;
		}
	}
	s = stream_mem_new(data, len);
	if (s == NULL) {
		mime_decoded_free(&owned);
		return dm_error_set(&u->stop_err, DM_E_NOMEM, "out of memory");
	}
	rc = dispatch(u, s, where, depth + 1,
	    report_like_name(info.filename) ? 0 : DISPATCH_OPTIONAL);
	stream_free(&s);
	mime_decoded_free(&owned);
	return rc > 0 ? 0 : rc;
}

static int
walk(struct unpack *u, const struct mailmime *mm, const char *where,
    int depth, int mime_depth, struct mail_walk *w)
{
	char child_where[WHERE_MAX];
	struct mime_part_info info;
	clistiter *it;
	int index = 0, rc = 0;

	if (mime_depth > DM_MAX_MIME_DEPTH)
		return problem(u, where, DM_KIND_UNKNOWN, DM_E_LIMIT, "MIME "
		    "parts nested deeper than %d levels", DM_MAX_MIME_DEPTH);
	if (++w->part_count > DM_MAX_MIME_PARTS) {
		if (w->part_count == DM_MAX_MIME_PARTS + 1)
			return problem(u, where, DM_KIND_UNKNOWN, DM_E_LIMIT,
			    "too many MIME parts: more than %d (part limit); "
			    "the rest are not read", DM_MAX_MIME_PARTS);
		return 0;
	}
	switch (mm->mm_type) {
	case MAILMIME_MESSAGE:
		if (mm->mm_data.mm_message.mm_msg_mime == NULL)
			return 0;
		if (mime_depth == 0)
			return walk(u, mm->mm_data.mm_message.mm_msg_mime,
			    where, depth, mime_depth + 1, w);
		join_where(child_where, where, "attached message");
		return walk(u, mm->mm_data.mm_message.mm_msg_mime, child_where,
		    depth, mime_depth + 1, w);
	case MAILMIME_MULTIPLE:
		mime_part_info(mm, &info);
		if (strcmp(info.type, "multipart/report") == 0 &&
		    strcmp(info.report_type, "tlsrpt") != 0 &&
		    strcmp(info.report_type, "delivery-status") != 0)
			w->is_report = 1;
		if (arf_feedback_part(mm) != NULL)
			return do_arf(u, mm, where);
		for (it = clist_begin(mm->mm_data.mm_multipart.mm_mp_list);
		    it != NULL && rc == 0; it = clist_next(it)) {
			const struct mailmime *child = clist_content(it);
			struct mime_part_info ci;

			index++;
			mime_part_info(child, &ci);
			if (ci.filename[0] != '\0')
				join_where(child_where, where, "mail part %d "
				    "'%s' (%s)", index, ci.filename, ci.type);
			else
				join_where(child_where, where, "mail part %d "
				    "(%s)", index, ci.type);
			rc = walk(u, child, child_where, depth, mime_depth + 1,
			    w);
		}
		return rc;
	case MAILMIME_SINGLE:
		return walk_single(u, mm, where, depth, w);
	}
	return 0;
}

/*
 * slurp_mail - read a mail to hold it for libetpan, scanning its
 * structure as it comes so that a hostile one is refused early.
 */
static int
slurp_mail(struct stream *s, size_t max, unsigned char **data_r,
    size_t *len_r, struct dm_error *err)
{
	struct mime_scan scan;
	unsigned char *data = NULL, *p;
	size_t len = 0, alloc = 0;
	ssize_t n;

	mime_scan_init(&scan);
	for (;;) {
		if (alloc - len < 65536) {
			size_t want = alloc ? alloc * 2 : 65536;

			if (want > max + 65536)
				want = max + 65536;
			p = want > alloc ? realloc(data, want) : NULL;
			if (p == NULL) {
				free(data);
				return want > alloc ? dm_error_set(err,
				    DM_E_NOMEM, "out of memory") :
				    dm_error_set(err, DM_E_LIMIT, "larger than "
				    "the limit");
			}
			data = p;
			alloc = want;
		}
		n = stream_read(s, data + len, alloc - len, err);
		if (n < 0 || (n > 0 && mime_scan_feed(&scan,
		    (const char *)data + len, (size_t)n, err) != 0)) {
			free(data);
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max) {
			free(data);
			return dm_error_set(err, DM_E_LIMIT, "larger than the "
			    "limit");
		}
	}
	*data_r = data;
	*len_r = len;
	return 0;
}

static int
do_mail(struct unpack *u, struct stream *s, const char *where, int depth)
{
	struct mail_walk w;
	struct mailmime *mm = NULL;
	struct dm_error err;
	unsigned char *owned = NULL;
	const char *data;
	size_t len = 0, skip;
	unsigned found_before = u->found;
	int rc;

	dm_error_clear(&err);
	if (s->mem != NULL) {
		data = (const char *)s->mem;
		len = s->mem_len;
		if (len > u->opt->limits.max_message_bytes)
			return problem(u, where, DM_KIND_UNKNOWN, DM_E_LIMIT,
			    "mail of %zu bytes is larger than the limit of "
			    "%llu", len, (unsigned long long)
			    u->opt->limits.max_message_bytes);
	} else {
		if (slurp_mail(s, (size_t)u->opt->limits.max_message_bytes,
		    &owned, &len, &err) != 0) {
			if (!input_fault(&err)) {
				u->stop_err = err;
				return -1;
			}
			if (err.code == DM_E_LIMIT &&
			    strncmp(err.msg, "larger", 6) == 0)
				return problem(u, where, DM_KIND_UNKNOWN,
				    DM_E_LIMIT, "mail larger than the limit of "
				    "%llu bytes (--max-message, or [limits] "
				    "max_message_bytes)",
				    (unsigned long long)
				    u->opt->limits.max_message_bytes);
			return emit_problem(u, where, DM_KIND_UNKNOWN, &err);
		}
		data = (const char *)owned;
	}
	skip = mime_skip_mbox_from(data, len);
	if ((owned == NULL && mime_prescan(data + skip, len - skip,
	    &err) != 0) || mime_parse(data + skip, len - skip, &mm, &err) != 0) {
		free(owned);
		if (!input_fault(&err)) {
			u->stop_err = err;
			return -1;
		}
		return emit_problem(u, where, DM_KIND_UNKNOWN, &err);
	}
	memset(&w, 0, sizeof(w));
	w.subject = mime_message_subject(mm);
	rc = walk(u, mm, where, depth, 0, &w);
	if (rc == 0 && u->found == found_before) {
		if ((w.is_report || w.subject != NULL) && w.notice_text &&
		    arf_looks_like_notice(w.subject, w.notice_text,
		    w.notice_len))
			rc = do_notice(u, &w, where);
		else
			rc = problem(u, where, DM_KIND_UNKNOWN, DM_E_DATA, "no "
			    "DMARC report in the mail (parts: %s)",
			    w.parts[0] ? w.parts : "none");
	}
	free(w.notice_owned);
	mime_free(&mm);
	free(owned);
	return rc;
}

/*
 * JSON: a TLS-RPT report (RFC 8460) is recognised, anything else is no
 * report. The document is read whole (it is small) and checked with
 * jansson, so a cut-off report says so.
 */
static int
do_json(struct unpack *u, struct stream *s, const unsigned char *head,
    size_t n, const char *where, unsigned flags)
{
	int looks_tlsrpt = memmem(head, n, "\"organization-name\"", 19) != NULL
	    || memmem(head, n, "\"policies\"", 10) != NULL;
	unsigned char *data = NULL;
	size_t len = 0, alloc = 0;
	json_error_t jerr;
	json_t *doc;
	ssize_t got;
	int tlsrpt;

	if (!looks_tlsrpt && (flags & DISPATCH_OPTIONAL))
		return 1;
	for (;;) {
		if (alloc - len < 65536) {
			unsigned char *p;

			if (alloc >= DM_MAX_JSON_BYTES) {
				free(data);
				return problem(u, where, looks_tlsrpt ?
				    DM_KIND_TLSRPT : DM_KIND_UNKNOWN, DM_E_LIMIT,
				    "a JSON document larger than %llu bytes",
				    (unsigned long long)DM_MAX_JSON_BYTES);
			}
			p = realloc(data, alloc ? alloc * 2 : 65536);
			if (p == NULL) {
				free(data);
				return dm_error_set(&u->stop_err, DM_E_NOMEM,
				    "out of memory");
			}
			data = p;
			alloc = alloc ? alloc * 2 : 65536;
		}
		got = stream_read(s, data + len, alloc - len, &u->stop_err);
		if (got < 0) {
			free(data);
			return input_fault(&u->stop_err) ? emit_problem(u,
			    where, DM_KIND_UNKNOWN, &u->stop_err) : -1;
		}
		if (got == 0)
			break;
		len += (size_t)got;
	}
	doc = json_loadb((const char *)data, len, 0, &jerr);
	free(data);
	if (doc == NULL)
		return problem(u, where, looks_tlsrpt ? DM_KIND_TLSRPT :
		    DM_KIND_UNKNOWN, DM_E_DATA, "a JSON document that is not "
		    "well-formed (truncated?): line %d, column %d: %s",
		    jerr.line, jerr.column, jerr.text);
	tlsrpt = json_is_object(doc) &&
	    json_object_get(doc, "organization-name") != NULL &&
	    json_is_array(json_object_get(doc, "policies"));
	json_decref(doc);
	if (tlsrpt)
		return problem(u, where, DM_KIND_TLSRPT, DM_E_DATA, "an SMTP "
		    "TLS report (RFC 8460, TLS-RPT): recognised, but dmarcd "
		    "does not store TLS-RPT yet");
	if (flags & DISPATCH_OPTIONAL)
		return 1;
	return problem(u, where, DM_KIND_UNKNOWN, DM_E_DATA, "a JSON "
	    "document, not a DMARC report");
}

static int
dispatch(struct unpack *u, struct stream *s, const char *where, int depth,
    unsigned flags)
{
	const unsigned char *head;
	struct dm_error err;
	char bytes[48];
	ssize_t n;
	enum sniff kind;

	if (depth > DM_MAX_CONTAINER_DEPTH)
		return problem(u, where, DM_KIND_UNKNOWN, DM_E_LIMIT,
		    "containers nested deeper than %d levels",
		    DM_MAX_CONTAINER_DEPTH);
	dm_error_clear(&err);
	n = stream_peek(s, STREAM_PEEK_MAX, &head, &err);
	if (n < 0) {
		if (!input_fault(&err)) {
			u->stop_err = err;
			return -1;
		}
		return emit_problem(u, where, DM_KIND_UNKNOWN, &err);
	}
	kind = sniff(head, (size_t)n);
	switch (kind) {
	case SNIFF_GZIP:
		return do_inflate(u, s, where, depth, 1);
	case SNIFF_ZLIB:
		return do_inflate(u, s, where, depth, 0);
	case SNIFF_ZIP:
		return do_zip(u, s, where, depth);
	case SNIFF_XML:
		return do_xml(u, s, where);
	case SNIFF_MAIL:
		return do_mail(u, s, where, depth);
	case SNIFF_JSON:
		return do_json(u, s, head, (size_t)n, where, flags);
	case SNIFF_TNEF:
		return problem(u, where, DM_KIND_UNKNOWN, DM_E_DATA, "TNEF "
		    "(winmail.dat) data: dmarcd cannot decode TNEF");
	case SNIFF_UNUSED:
		return problem(u, where, DM_KIND_UNKNOWN, DM_E_DATA, "the "
		    "placeholder text 'unused' instead of a report (known junk "
		    "from Yahoo/AOL, 2023)");
	default:
		break;
	}
	if (flags & DISPATCH_OPTIONAL)
		return 1;
	switch (kind) {
	case SNIFF_EMPTY:
		return problem(u, where, DM_KIND_UNKNOWN, DM_E_DATA,
		    "empty: no bytes at all");
	case SNIFF_HTML:
		return problem(u, where, DM_KIND_UNKNOWN, DM_E_DATA, "an HTML "
		    "document, not a DMARC report");
	case SNIFF_TEXT:
		return problem(u, where, DM_KIND_UNKNOWN, DM_E_DATA, "plain "
		    "text, not a DMARC report (no XML, gzip, zip or mail)");
	default:
		describe_bytes(head, (size_t)n, bytes, sizeof(bytes));
		return problem(u, where, DM_KIND_UNKNOWN, DM_E_DATA,
		    "unrecognised binary data (first bytes %s): not XML, "
		    "gzip, zlib, zip or mail", bytes);
	}
}

static int
unpack_stream(struct stream *s, const char *name,
    const struct unpack_options *options, const struct dm_handler *handler,
    struct unpack_result *result, struct dm_error *err)
{
	struct unpack u;
	int rc;

	memset(&u, 0, sizeof(u));
	memset(result, 0, sizeof(*result));
	u.opt = options;
	u.user = handler;
	u.result = result;
	u.input = name;
	u.tap.ctx = &u;
	u.tap.report_begin = tap_report_begin;
	u.tap.record = tap_record;
	u.tap.report_end = tap_report_end;
	u.budget.max_bytes = options->limits.max_input_bytes;
	u.budget.max_ratio = options->limits.max_ratio;
	u.budget.ratio_grace = DM_RATIO_GRACE_BYTES;
	u.cur_warnings = &u.pending;
	u.readbuf = malloc(READ_CHUNK);
	if (u.readbuf == NULL)
		return dm_error_set(err, DM_E_NOMEM, "out of memory");
	rc = dispatch(&u, s, "", 0, 0);
	free(u.readbuf);
	if (rc < 0) {
		*err = u.stop_err;
		return -1;
	}
	return 0;
}

int
unpack_fd(int fd, const char *name, const struct unpack_options *options,
    const struct dm_handler *handler, struct unpack_result *result,
    struct dm_error *err)
{
	struct stream *s = stream_fd_new(fd, 0);
	int rc;

	if (s == NULL)
		return dm_error_set(err, DM_E_NOMEM, "out of memory");
	rc = unpack_stream(s, name, options, handler, result, err);
	stream_free(&s);
	return rc;
}

int
unpack_memory(const void *data, size_t len, const char *name,
    const struct unpack_options *options, const struct dm_handler *handler,
    struct unpack_result *result, struct dm_error *err)
{
	struct stream *s = stream_mem_new(data, len);
	int rc;

	if (s == NULL)
		return dm_error_set(err, DM_E_NOMEM, "out of memory");
	rc = unpack_stream(s, name, options, handler, result, err);
	stream_free(&s);
	return rc;
}

int
unpack_path(const char *path, const struct unpack_options *options,
    const struct dm_handler *handler, struct unpack_result *result,
    struct dm_error *err)
{
	int fd, rc;

	memset(result, 0, sizeof(*result));
	if (strcmp(path, "-") == 0)
		return unpack_fd(STDIN_FILENO, "-", options, handler, result,
		    err);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return dm_error_set(err, errno == ENOENT ? DM_E_NOINPUT :
		    DM_E_IO, "cannot open: %s", strerror(errno));
	{
		struct stat st;

		if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
			close(fd);
			return dm_error_set(err, DM_E_NOINPUT, "a directory, "
			    "not a file: name the report files in it");
		}
	}
	rc = unpack_fd(fd, path, options, handler, result, err);
	close(fd);
	return rc;
}
