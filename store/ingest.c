/*
 * ingest.c - the parser's events into PostgreSQL, exactly once.
 *
 * Transactions: a batch of inputs shares one; each input is a savepoint
 * (undone when it must be parsed again) and each report another (undone
 * when the parser rejects it half way, or when another collector stored
 * the same report meanwhile). Records go in with one COPY per report;
 * DKIM and SPF results are spooled (memory, then a temporary file) and
 * copied after it, since a connection runs one COPY at a time. At the
 * report's end one statement sets its payload hash and counts, adds its
 * warnings and its daily rollup rows, all in the report's savepoint.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <zlib.h>

#include "common/limits.h"
#include "store/pq.h"
#include "store/store_private.h"

#define COPY_FLUSH	(256 * 1024)	/* records bytes per PQputCopyData */
#define STORE_SPOOL_MEM	(1024 * 1024)
#define RAW_CHUNK	(1024 * 1024)	/* stored bytes per raw_chunks row */
#define DEFER_MAX	(1024 * 1024)	/* inputs up to this size: their
					 * rows are copied once per batch */

#define COPY_RECORDS "COPY dmarcd.records (domain, report_begin, report, " \
	"idx, source_ip, source_ip_raw, count, disposition, dkim, spf, " \
	"reasons, reason_comments, header_from, envelope_from, envelope_to, " \
	"auth, dkim_domain, spf_domain, override) FROM STDIN"
#define COPY_DKIM "COPY dmarcd.dkim_results (domain, report_begin, report, " \
	"idx, n, auth_domain, selector, result, human_result) FROM STDIN"
#define COPY_LOG "COPY dmarcd.ingest_log (source, message_id, raw_sha256, " \
	"status, reports, failure_reports, duplicates, revisions, rejected, " \
	"records, messages, duration_ms, error) FROM STDIN"
#define COPY_SPF "COPY dmarcd.spf_results (domain, report_begin, report, " \
	"idx, n, auth_domain, scope, result, human_result) FROM STDIN"

/*
 * What becomes of the current report's rows: none yet, parsed only (a key
 * seen before), copied now, deferred to the batch, dropped, or held until
 * its end because its metadata comes after its records (REP_LATE).
 */
enum { REP_NONE, REP_PROBE, REP_COPY, REP_DEFER, REP_SKIP, REP_LATE };

struct store_reporter {
	struct store_reporter *next;
	int64_t id;
	char *org, *email;
};

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static void
hex(const unsigned char *b, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
	out[2 * n] = '\0';
}

/* "\x" + hex: a bytea parameter in text form. */
static void
bytea_param(const unsigned char *b, size_t n, char *out)
{
	out[0] = '\\';
	out[1] = 'x';
	hex(b, n, out + 2);
}

static int
unhex_sha(const char *text, unsigned char out[32])
{
	size_t i;
	unsigned v;

	if (strncmp(text, "\\x", 2) != 0 || strlen(text) != 66)
		return -1;
	for (i = 0; i < 32; i++) {
		if (sscanf(text + 2 + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (unsigned char)v;
	}
	return 0;
}

/* Epoch seconds as a timestamptz literal; -1 outside years 1970-9999. */
static int
timestamp_text(int64_t t, char *out, size_t size)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (t < 0 || t > 253402300799LL || gmtime_r(&tt, &tm) == NULL)
		return -1;
	strftime(out, size, "%Y-%m-%d %H:%M:%S+00", &tm);
	return 0;
}

int
store_copy_escape(struct dm_buf *b, const char *s)
{
	char tmp[256];
	size_t n = 0;

	if (s == NULL)
		return dm_buf_append(b, "\\N", 2);
	for (; *s != '\0'; s++) {
		if (n + 2 >= sizeof(tmp)) {
			if (dm_buf_append(b, tmp, n) != 0)
				return -1;
			n = 0;
		}
		switch (*s) {
		case '\\': tmp[n++] = '\\'; tmp[n++] = '\\'; break;
		case '\t': tmp[n++] = '\\'; tmp[n++] = 't'; break;
		case '\n': tmp[n++] = '\\'; tmp[n++] = 'n'; break;
		case '\r': tmp[n++] = '\\'; tmp[n++] = 'r'; break;
		default: tmp[n++] = *s;
		}
	}
	return dm_buf_append(b, tmp, n);
}

/* An array literal {"a","b"} of COPY text, or \N when count is 0. */
static int
copy_array(struct dm_buf *b, const char *const *items, size_t count)
{
	struct dm_buf elem;
	size_t i;
	int rc = 0;

	if (count == 0)
		return dm_buf_append(b, "\\N", 2);
	dm_buf_init(&elem, DM_MAX_TEXT);
	rc |= dm_buf_append(b, "{", 1);
	for (i = 0; i < count; i++) {
		const char *s = items[i];

		dm_buf_reset(&elem);
		if (s == NULL) {
			rc |= dm_buf_append(b, i ? ",NULL" : "NULL", i ? 5 : 4);
			continue;
		}
		/* Array quoting first (\ and "), then COPY escaping. */
		rc |= dm_buf_append(&elem, "\"", 1);
		for (; *s != '\0'; s++) {
			if (*s == '"' || *s == '\\')
				rc |= dm_buf_append(&elem, "\\", 1);
			rc |= dm_buf_append(&elem, s, 1);
		}
		rc |= dm_buf_append(&elem, "\"", 1);
		if (i > 0)
			rc |= dm_buf_append(b, ",", 1);
		rc |= store_copy_escape(b, dm_buf_cstr(&elem));
	}
	rc |= dm_buf_append(b, "}", 1);
	dm_buf_free(&elem);
	return rc ? -1 : 0;
}

/* A text[] literal {"a","b"} for a parameter (not COPY escaped). */
static int
pg_array(struct dm_buf *b, const char *const *items, size_t count)
{
	size_t i;
	int rc = 0;

	rc |= dm_buf_append(b, "{", 1);
	for (i = 0; i < count; i++) {
		rc |= dm_buf_append(b, i ? ",\"" : "\"", i ? 2 : 1);
		for (const char *c = items[i] != NULL ? items[i] : ""; *c != '\0';
		    c++) {
			if (*c == '"' || *c == '\\')
				rc |= dm_buf_append(b, "\\", 1);
			rc |= dm_buf_append(b, c, 1);
		}
		rc |= dm_buf_append(b, "\"", 1);
	}
	rc |= dm_buf_append(b, "}", 1);
	return rc ? -1 : 0;
}

static int
copy_field(struct dm_buf *b, const char *s, int last)
{
	if (store_copy_escape(b, s) != 0)
		return -1;
	return dm_buf_append(b, last ? "\n" : "\t", 1);
}

static int
copy_u64(struct dm_buf *b, uint64_t v, int last)
{
	return dm_buf_printf(b, "%" PRIu64 "%c", v, last ? '\n' : '\t');
}

/* ---- spools ---- */

static void
spool_reset(struct store_spool *sp)
{
	dm_buf_reset(&sp->mem);
	if (sp->file != NULL) {
		fclose(sp->file);
		sp->file = NULL;
	}
	sp->lines = 0;
}

/* Where the spool ends now, to go back to with spool_truncate. */
static void
spool_mark(const struct store_spool *sp, struct store_mark *m)
{
	m->bytes = sp->file != NULL ? (uint64_t)ftello(sp->file) : sp->mem.len;
	m->lines = sp->lines;
}

static int
spool_truncate(struct store_spool *sp, const struct store_mark *m)
{
	sp->lines = m->lines;
	if (sp->file == NULL) {
		if (m->bytes <= sp->mem.len)
			sp->mem.len = (size_t)m->bytes;
		return 0;
	}
	if (fflush(sp->file) != 0 ||
	    ftruncate(fileno(sp->file), (off_t)m->bytes) != 0 ||
	    fseeko(sp->file, (off_t)m->bytes, SEEK_SET) != 0)
		return -1;
	return 0;
}

static int
spool_add(struct store_spool *sp, const struct dm_buf *line,
    struct dm_error *err)
{
	sp->lines++;
	if (sp->file == NULL && sp->mem.len + line->len <= STORE_SPOOL_MEM)
		return dm_buf_append(&sp->mem, line->data, line->len) == 0 ? 0 :
		    dm_error_set(err, DM_E_NOMEM, "out of memory");
	if (sp->file == NULL) {
		sp->file = store_tmpfile(sp->tmpdir, err);
		if (sp->file == NULL)
			return -1;
		if (fwrite(sp->mem.data, 1, sp->mem.len, sp->file) !=
		    sp->mem.len)
			goto fail;
		dm_buf_reset(&sp->mem);
	}
	if (fwrite(line->data, 1, line->len, sp->file) == line->len)
		return 0;
fail:
	return store_tmp_fail(sp->tmpdir, errno, "cannot write a temporary "
	    "file", err);
}

/* ---- COPY ---- */

int
store_copy_start(struct store *s, const char *sql, struct dm_error *err)
{
	PGresult *res = store_pq.PQexec(s->conn, sql);

	if (res == NULL || store_pq.PQresultStatus(res) != PGRES_COPY_IN)
		return store_pq_fail(s->conn, res, sql, err);
	store_pq.PQclear(res);
	return 0;
}

int
store_copy_put(struct store *s, const char *data, size_t len, struct dm_error *err)
{
	while (len > 0) {
		int n = len > (1U << 30) ? 1 << 30 : (int)len;

		if (store_pq.PQputCopyData(s->conn, data, n) != 1)
			return store_pq_fail(s->conn, NULL, "COPY", err);
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/* copy_end - finish a COPY; with why, abort it instead. */
int
store_copy_end(struct store *s, const char *why, struct dm_error *err)
{
	PGresult *res;
	int rc = 0;

	if (store_pq.PQputCopyEnd(s->conn, why) != 1)
		return store_pq_fail(s->conn, NULL, "COPY end", err);
	while ((res = store_pq.PQgetResult(s->conn)) != NULL) {
		if (rc == 0 && why == NULL &&
		    store_pq.PQresultStatus(res) != PGRES_COMMAND_OK) {
			rc = store_pq_fail(s->conn, res, "COPY", err);
			continue;
		}
		store_pq.PQclear(res);
	}
	if (rc == 0 && store_pq.PQstatus(s->conn) != CONNECTION_OK)
		return store_pq_fail(s->conn, NULL, "COPY", err);
	return rc;
}

static int
copy_spool(struct store *s, struct store_spool *sp, const char *sql,
    struct dm_error *err)
{
	char buf[64 * 1024];
	size_t n;

	if (sp->lines == 0)
		return 0;
	if (store_copy_start(s, sql, err) != 0)
		return -1;
	if (sp->file != NULL && fflush(sp->file) != 0) {
		int e = errno;

		store_copy_end(s, "temporary file unwritable", err);
		return store_tmp_fail(sp->tmpdir, e, "cannot write a temporary "
		    "file", err);
	}
	if (sp->file == NULL) {
		if (store_copy_put(s, sp->mem.data, sp->mem.len, err) != 0)
			return -1;
	} else {
		rewind(sp->file);
		while ((n = fread(buf, 1, sizeof(buf), sp->file)) > 0)
			if (store_copy_put(s, buf, n, err) != 0)
				return -1;
		if (ferror(sp->file)) {
			store_copy_end(s, "temporary file unreadable", err);
			return dm_error_set(err, DM_E_IO, "cannot read a "
			    "temporary file back");
		}
	}
	return store_copy_end(s, NULL, err);
}

/* ---- small helpers ---- */

static int
exec(struct store *s, const char *sql)
{
	if (store_pq_exec(s->conn, sql, &s->cb_err) != 0) {
		s->cb_failed = 1;
		return -1;
	}
	return 0;
}

static PGresult *
params(struct store *s, const char *sql, int n, const char *const *v)
{
	PGresult *res = store_pq_params(s->conn, sql, n, v, &s->cb_err);

	if (res == NULL)
		s->cb_failed = 1;
	return res;
}

/* params() on the connection that commits on its own (store_aux). */
static PGresult *
aux_params(struct store *s, const char *sql, int n, const char *const *v)
{
	PGconn *aux = store_aux(s, &s->cb_err);
	PGresult *res = aux != NULL ? store_pq_params(aux, sql, n, v,
	    &s->cb_err) : NULL;

	if (res == NULL)
		s->cb_failed = 1;
	return res;
}

static int
cb_fail(struct store *s, struct dm_error *err)
{
	*err = s->cb_err;
	return -1;
}

static char *
lower_dup(const char *text)
{
	char *d = strdup(text != NULL ? text : "");

	for (char *p = d; p != NULL && *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	return d;
}

static int
begin_batch(struct store *s)
{
	return store_batch_open(s, &s->cb_err) != 0 ? (s->cb_failed = 1,
	    -1) : 0;
}

int
store_batch_open(struct store *s, struct dm_error *err)
{
	if (s->in_txn)
		return 0;
	/* Read committed (whatever the role's default): a statement that
	 * waited for another collector's commit sees its rows after. */
	if (store_pq_exec(s->conn, "BEGIN ISOLATION LEVEL READ COMMITTED",
	    err) != 0)
		return -1;
	s->in_txn = 1;
	s->batch_count = 0;
	s->batch_start = now_ms();
	return 0;
}

/* ---- raw bytes ---- */

/* Binary COPY helpers: big-endian integers. */
static void
be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

/* One raw_chunks row in binary COPY: domain, sha256, seq, data. */
static int
raw_row(struct store *s, const char *domain, const unsigned char sha[32],
    uint32_t seq, const unsigned char *data, size_t len, struct dm_error *err)
{
	unsigned char head[2 + 4 + 256 + 4 + 32 + 4 + 4 + 4];
	size_t dl = strlen(domain), n = 0;

	if (dl > 253)
		dl = 253;
	head[n++] = 0;
	head[n++] = 4;
	be32(head + n, (uint32_t)dl);
	n += 4;
	memcpy(head + n, domain, dl);
	n += dl;
	be32(head + n, 32);
	n += 4;
	memcpy(head + n, sha, 32);
	n += 32;
	be32(head + n, 4);
	n += 4;
	be32(head + n, seq);
	n += 4;
	be32(head + n, (uint32_t)len);
	n += 4;
	if (store_copy_put(s, (const char *)head, n, err) != 0)
		return -1;
	return store_copy_put(s, (const char *)data, len, err);
}

/*
 * raw_load - an input of up to RAW_CHUNK bytes as it is to be stored: as
 * it is when compressed already, else gzipped. *data points into *keep,
 * which the caller frees. 1 when loaded, 0 when too big, -1 with err.
 */
static int
raw_load(struct store *s, const unsigned char **data, size_t *len,
    unsigned char **keep, struct dm_error *err)
{
	const struct store_raw *raw = &s->input->raw;
	unsigned char *in, *out;
	uint64_t got = 0;
	size_t out_len;
	ssize_t n;
	z_stream z;

	*keep = NULL;
	if (raw->size > RAW_CHUNK)
		return 0;
	in = malloc(raw->size > 0 ? raw->size : 1);
	if (in == NULL)
		return dm_error_set(err, DM_E_NOMEM, "out of memory");
	while (got < raw->size) {
		n = raw->read(raw->ctx, got, in + got, raw->size - got, err);
		if (n <= 0) {
			free(in);
			return n < 0 ? -1 : dm_error_set(err, DM_E_IO, "%s: the "
			    "input shrank while being stored",
			    s->input->source);
		}
		got += (uint64_t)n;
	}
	if (raw->compressed) {
		*keep = in;
		*data = in;
		*len = raw->size;
		return 1;
	}
	memset(&z, 0, sizeof(z));
	if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
	    Z_OK) {
		free(in);
		return dm_error_set(err, DM_E_NOMEM, "zlib: cannot compress");
	}
	out_len = deflateBound(&z, (uLong)raw->size) + 32;
	out = malloc(out_len);
	if (out == NULL) {
		deflateEnd(&z);
		free(in);
		return dm_error_set(err, DM_E_NOMEM, "out of memory");
	}
	z.next_in = in;
	z.avail_in = (uInt)raw->size;
	z.next_out = out;
	z.avail_out = (uInt)out_len;
	if (deflate(&z, Z_FINISH) != Z_STREAM_END) {
		deflateEnd(&z);
		free(in);
		free(out);
		return dm_error_set(err, DM_E_INTERNAL, "zlib: compressing "
		    "failed");
	}
	*len = z.total_out;
	deflateEnd(&z);
	free(in);
	*keep = out;
	*data = out;
	return 1;
}

/* Whether text is one of v[0..n). */
static int
listed(char *const *v, size_t n, const char *text)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(v[i], text) == 0)
			return 1;
	return 0;
}

/* raw_stored - whether the input's bytes are kept under domain already. */
static int
raw_stored(const struct store *s, const char *domain)
{
	return listed(s->raw_domains, s->raw_domain_count, domain);
}

static int
raw_remember(struct store *s, const char *domain, struct dm_error *err)
{
	char **d = realloc(s->raw_domains, (s->raw_domain_count + 1) *
	    sizeof(*s->raw_domains));

	if (d == NULL)
		return dm_error_set(err, DM_E_NOMEM, "out of memory");
	s->raw_domains = d;
	if ((d[s->raw_domain_count] = strdup(domain)) == NULL)
		return dm_error_set(err, DM_E_NOMEM, "out of memory");
	s->raw_domain_count++;
	return 0;
}

/*
 * raw_small - an input of up to RAW_CHUNK bytes in one statement (a COPY
 * costs more to set up than such an input takes to send). 1 when stored or
 * there already, 0 when too big for this path, -1 with err.
 */
static int
raw_small(struct store *s, const char *domain, const char *sha,
    struct dm_error *err)
{
	const struct store_raw *raw = &s->input->raw;
	const unsigned char *data = NULL;
	unsigned char *keep;
	char size[24], stored[24];
	const char *v[7];
	int len[7] = { 0 }, fmt[7] = { 0 };
	size_t data_len = 0;
	PGresult *res;
	int rc;

	rc = raw_load(s, &data, &data_len, &keep, err);
	if (rc <= 0)
		return rc;
	snprintf(size, sizeof(size), "%" PRIu64, raw->size);
	snprintf(stored, sizeof(stored), "%zu", data_len);
	v[0] = domain;
	v[1] = sha;
	v[2] = size;
	v[3] = stored;
	v[4] = raw->compressed ? "identity" : "gzip";
	v[5] = s->input->message_id != NULL ? s->input->message_id :
	    s->input->source;
	v[6] = (const char *)data;
	len[6] = (int)data_len;
	fmt[6] = 1;	/* binary: the bytes as they are */
	res = store_pq.PQexecParams(s->conn, "WITH i AS (INSERT INTO "
	    "dmarcd.raw_inputs (domain, sha256, size, stored_size, encoding, "
	    "source) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING "
	    "RETURNING 1) INSERT INTO dmarcd.raw_chunks (domain, sha256, seq, "
	    "data) SELECT $1, $2, 0, $7 FROM i", 7, NULL, v, len, fmt, 0);
	free(keep);
	if (res == NULL || store_pq.PQresultStatus(res) != PGRES_COMMAND_OK)
		return store_pq_fail(s->conn, res, "storing the raw input", err);
	store_pq.PQclear(res);
	return 1;
}

/*
 * store_raw - keep the input's raw bytes under domain, once: as they are
 * when already compressed, else gzipped, in RAW_CHUNK rows.
 */
static int
store_raw(struct store *s, const char *domain, struct dm_error *err)
{
	const struct store_raw *raw = &s->input->raw;
	static const unsigned char copy_head[19] = "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0";
	unsigned char *in = NULL, *out = NULL;
	char sha[67], size[24], stored[24];
	const char *p[6];
	PGresult *res;
	z_stream z;
	int zinit = 0, rc = -1, inserted, flush;
	uint64_t pos = 0, total_out = 0;
	uint32_t seq = 0;
	ssize_t n;

	if (raw_stored(s, domain))
		return 0;
	bytea_param(raw->sha256, 32, sha);
	switch (raw_small(s, domain, sha, err)) {
	case 1:
		goto done;
	case -1:
		return -1;
	}
	snprintf(size, sizeof(size), "%" PRIu64, raw->size);
	p[0] = domain;
	p[1] = sha;
	p[2] = size;
	p[3] = raw->compressed ? "identity" : "gzip";
	p[4] = s->input->message_id != NULL ? s->input->message_id :
	    s->input->source;
	res = store_pq_params(s->conn, "INSERT INTO dmarcd.raw_inputs "
	    "(domain, sha256, size, stored_size, encoding, source) VALUES "
	    "($1, $2, $3, 0, $4, $5) ON CONFLICT DO NOTHING RETURNING 1", 5,
	    p, err);
	if (res == NULL)
		return -1;
	inserted = store_pq.PQntuples(res) > 0;
	store_pq.PQclear(res);
	if (inserted) {
		in = malloc(RAW_CHUNK);
		out = malloc(RAW_CHUNK);
		if (in == NULL || out == NULL) {
			dm_error_set(err, DM_E_NOMEM, "out of memory");
			goto out;
		}
		if (store_copy_start(s, "COPY dmarcd.raw_chunks (domain, sha256, seq, "
		    "data) FROM STDIN (FORMAT binary)", err) != 0)
			goto out;
		if (store_copy_put(s, (const char *)copy_head, sizeof(copy_head),
		    err) != 0)
			goto out;
		if (!raw->compressed) {
			memset(&z, 0, sizeof(z));
			if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8,
			    Z_DEFAULT_STRATEGY) != Z_OK) {
				dm_error_set(err, DM_E_NOMEM, "zlib: cannot "
				    "start compressing");
				store_copy_end(s, "zlib", err);
				goto out;
			}
			zinit = 1;
			z.next_out = out;
			z.avail_out = RAW_CHUNK;
		}
		for (;;) {
			n = raw->read(raw->ctx, pos, in, RAW_CHUNK, err);
			if (n < 0) {
				store_copy_end(s, "raw input unreadable", NULL);
				goto out;
			}
			pos += (uint64_t)n;
			if (raw->compressed) {
				if (n == 0)
					break;
				if (raw_row(s, domain, raw->sha256, seq++, in,
				    (size_t)n, err) != 0)
					goto out;
				total_out += (uint64_t)n;
				continue;
			}
			z.next_in = in;
			z.avail_in = (uInt)n;
			flush = n == 0 ? Z_FINISH : Z_NO_FLUSH;
			for (;;) {
				int zr = deflate(&z, flush);

				if (z.avail_out == 0 || (flush == Z_FINISH &&
				    zr == Z_STREAM_END && z.avail_out <
				    RAW_CHUNK)) {
					size_t len = RAW_CHUNK - z.avail_out;

					if (raw_row(s, domain, raw->sha256,
					    seq++, out, len, err) != 0)
						goto out;
					total_out += len;
					z.next_out = out;
					z.avail_out = RAW_CHUNK;
				}
				if (zr == Z_STREAM_END)
					break;
				if (flush == Z_NO_FLUSH && z.avail_in == 0)
					break;
			}
			if (n == 0)
				break;
		}
		if (store_copy_put(s, "\377\377", 2, err) != 0 ||
		    store_copy_end(s, NULL, err) != 0)
			goto out;
		snprintf(stored, sizeof(stored), "%" PRIu64, total_out);
		p[2] = stored;
		res = store_pq_params(s->conn, "UPDATE dmarcd.raw_inputs SET "
		    "stored_size = $3 WHERE domain = $1 AND sha256 = $2", 3, p,
		    err);
		if (res == NULL)
			goto out;
		store_pq.PQclear(res);
	}
done:
	if (raw_remember(s, domain, err) != 0)
		goto out;
	rc = 0;
out:
	if (zinit)
		deflateEnd(&z);
	free(in);
	free(out);
	return rc;
}

/* ---- rejections ---- */

static int
reject(struct store *s, const char *where, const struct dm_error *why)
{
	char sha[67];
	const char *p[5];
	PGresult *res;
	static const char *const codes[] = {
		"none", "data", "limit", "io", "noinput", "temp", "nomem",
		"usage", "unavailable", "internal"
	};
	struct dm_error err;

	/* The store failed, not the input: its error stands (the open
	 * transaction may be aborted, and nothing is kept). */
	if (s->cb_failed)
		return -1;
	s->tally->rejected++;
	if (s->tally->first_error[0] == '\0')
		snprintf(s->tally->first_error, sizeof(s->tally->first_error),
		    "%.100s%s%.150s", where != NULL && where[0] != '\0' ? where : "",
		    where != NULL && where[0] != '\0' ? ": " : "", why->msg);
	dm_error_clear(&err);
	if (store_raw(s, "", &err) != 0) {
		s->cb_err = err;
		s->cb_failed = 1;
		return -1;
	}
	bytea_param(s->input->raw.sha256, 32, sha);
	p[0] = sha;
	p[1] = where != NULL ? where : "";
	p[2] = s->input->message_id != NULL ? s->input->message_id :
	    s->input->source;
	p[3] = (size_t)why->code < sizeof(codes) / sizeof(codes[0]) ?
	    codes[why->code] : "other";
	p[4] = why->msg;
	res = params(s, "INSERT INTO dmarcd.rejected_inputs (raw_sha256, "
	    "location, source, error_code, error) VALUES ($1, $2, $3, $4, $5) "
	    "ON CONFLICT (raw_sha256, location) DO UPDATE SET attempts = "
	    "rejected_inputs.attempts + 1, last_seen = now(), error = "
	    "excluded.error, error_code = excluded.error_code, "
	    "resolved_at = NULL", 5, p);
	if (res == NULL)
		return -1;
	store_pq.PQclear(res);
	return 0;
}

/* ---- aggregate reports ---- */

static int64_t
reporter_id(struct store *s, const struct dm_report *r)
{
	struct store_reporter *c;
	const char *email = r->email != NULL ? r->email : "";
	const char *p[3];
	PGresult *res;
	int64_t id;
	int tries = 0;

	for (c = s->reporters; c != NULL; c = c->next)
		if (strcmp(c->org, r->org_name) == 0 &&
		    strcmp(c->email, email) == 0)
			return c->id;
	p[0] = r->org_name;
	p[1] = email;
	p[2] = r->extra_contact_info;
	/* Committed at once: the batch never holds a new reporter's row. */
again:
	res = aux_params(s, "WITH i AS (INSERT INTO dmarcd.reporters "
	    "(org_name, email, extra_contact_info) VALUES ($1, $2, $3) ON "
	    "CONFLICT DO NOTHING RETURNING id) SELECT id FROM i UNION ALL "
	    "SELECT id FROM dmarcd.reporters WHERE org_name = $1 AND "
	    "email = $2", 3, p);
	if (res == NULL)
		return -1;
	if (store_pq.PQntuples(res) < 1) {
		store_pq.PQclear(res);
		/* Another collector inserted it while this statement ran,
		 * after its snapshot: the next statement sees it. */
		if (++tries < 3)
			goto again;
		dm_error_set(&s->cb_err, DM_E_INTERNAL, "reporter '%s' not "
		    "found after insert", r->org_name);
		s->cb_failed = 1;
		return -1;
	}
	id = strtoll(store_pq.PQgetvalue(res, 0, 0), NULL, 10);
	store_pq.PQclear(res);
	/* Committed already (aux_params): safe to keep. */
	c = calloc(1, sizeof(*c));
	if (c != NULL) {
		c->id = id;
		c->org = strdup(r->org_name);
		c->email = strdup(email);
		c->next = s->reporters;
		s->reporters = c;
	}
	return id;
}

static void
forget_caches(struct store *s)
{
	struct store_reporter *c, *next;

	for (c = s->reporters; c != NULL; c = next) {
		next = c->next;
		free(c->org);
		free(c->email);
		free(c);
	}
	s->reporters = NULL;
	s->month_count = 0;
}

static int
ensure_month(struct store *s, int64_t begin)
{
	int64_t month;
	struct tm tm;
	time_t t = (time_t)begin;
	const char *p[1];
	PGresult *res;
	size_t i;

	gmtime_r(&t, &tm);
	month = (int64_t)(tm.tm_year + 1900) * 12 + tm.tm_mon;
	for (i = 0; i < s->month_count; i++)
		if (s->months[i] == month)
			return 0;
	p[0] = s->begin_ts;
	/* Committed at once: the batch never holds a partition's locks. */
	res = aux_params(s, "SELECT dmarcd.ensure_month($1)", 1, p);
	if (res == NULL)
		return -1;
	store_pq.PQclear(res);
	if (s->month_count < STORE_MAX_MONTHS)
		s->months[s->month_count++] = month;
	return 0;
}

static char *
report_key(const char *domain, const struct dm_report *r)
{
	char *key = NULL;

	if (asprintf(&key, "%s\n%s\n%s\n%" PRId64 "\n%" PRId64, domain,
	    r->org_name, r->report_id, r->begin, r->end) < 0)
		return NULL;
	return key;
}

static int
replaying(struct store *s, const char *key)
{
	return listed(s->replay_keys, s->replay_count, key);
}

/* ---- the batch's deferred rows ---- */

static void
mark_batch(struct store *s, struct store_marks *m)
{
	spool_mark(&s->b_rec, &m->rec);
	spool_mark(&s->b_dkim, &m->dkim);
	spool_mark(&s->b_spf, &m->spf);
	spool_mark(&s->b_roll, &m->roll);
	m->keys = s->b_key_count;
}

/* undo_batch - forget the deferred rows written since m. */
static int
undo_batch(struct store *s, const struct store_marks *m)
{
	size_t i;

	for (i = m->keys; i < s->b_key_count; i++)
		free(s->b_keys[i].domain);
	s->b_key_count = m->keys;
	if (spool_truncate(&s->b_rec, &m->rec) != 0 ||
	    spool_truncate(&s->b_dkim, &m->dkim) != 0 ||
	    spool_truncate(&s->b_spf, &m->spf) != 0 ||
	    spool_truncate(&s->b_roll, &m->roll) != 0) {
		store_tmp_fail(s->tmpdir, errno, "cannot truncate a temporary "
		    "file", &s->cb_err);
		s->cb_failed = 1;
		return -1;
	}
	return 0;
}

/* batch_key - the current report's rollup is due at commit. */
static int
batch_key(struct store *s, struct dm_error *err)
{
	struct store_batch_key *k;

	if (s->b_key_count == s->b_key_alloc) {
		size_t n = s->b_key_alloc ? s->b_key_alloc * 2 : 64;

		k = realloc(s->b_keys, n * sizeof(*k));
		if (k == NULL)
			return dm_error_set(err, DM_E_NOMEM, "out of memory");
		s->b_keys = k;
		s->b_key_alloc = n;
	}
	k = &s->b_keys[s->b_key_count];
	k->domain = strdup(s->domain);
	if (k->domain == NULL)
		return dm_error_set(err, DM_E_NOMEM, "out of memory");
	snprintf(k->id, sizeof(k->id), "%s", s->rep_id);
	snprintf(k->begin, sizeof(k->begin), "%s", s->begin_ts);
	snprintf(k->end, sizeof(k->end), "%s", s->end_ts);
	k->superseded = 0;
	k->rolled = s->rep_rolled;
	s->b_key_count++;
	return 0;
}

/* note_changed - the current report's domain has new data this batch. */
static int
note_changed(struct store *s, struct dm_error *err)
{
	size_t i;
	char **n;

	for (i = 0; i < s->changed_count; i++)
		if (strcmp(s->changed[i], s->domain) == 0)
			return 0;
	if (s->changed_count == s->changed_alloc) {
		size_t alloc = s->changed_alloc ? s->changed_alloc * 2 : 16;

		n = realloc(s->changed, alloc * sizeof(*n));
		if (n == NULL)
			return dm_error_set(err, DM_E_NOMEM, "out of memory");
		s->changed = n;
		s->changed_alloc = alloc;
	}
	s->changed[s->changed_count] = strdup(s->domain);
	if (s->changed[s->changed_count] == NULL)
		return dm_error_set(err, DM_E_NOMEM, "out of memory");
	s->changed_count++;
	return 0;
}

/* notify_changed - NOTIFY dmarcd_data, DOMAIN for each; sent at COMMIT. */
static int
notify_changed(struct store *s, struct dm_error *err)
{
	struct dm_buf arr;
	PGresult *res;
	const char *p[1];

	if (s->changed_count == 0)
		return 0;
	dm_buf_init(&arr, 64 << 20);
	if (pg_array(&arr, (const char *const *)s->changed,
	    s->changed_count) != 0) {
		dm_buf_free(&arr);
		return dm_error_set(err, DM_E_NOMEM, "out of memory");
	}
	p[0] = dm_buf_cstr(&arr);
	res = store_pq_params(s->conn, "SELECT count(pg_notify('dmarcd_data', "
	    "d)) FROM unnest($1::text[]) AS d", 1, p, err);
	dm_buf_free(&arr);
	if (res == NULL)
		return -1;
	store_pq.PQclear(res);
	return 0;
}

static void
reset_batch(struct store *s)
{
	struct store_marks zero;
	size_t i;

	for (i = 0; i < s->changed_count; i++)
		free(s->changed[i]);
	s->changed_count = 0;
	memset(&zero, 0, sizeof(zero));
	undo_batch(s, &zero);
	spool_reset(&s->b_rec);
	spool_reset(&s->b_dkim);
	spool_reset(&s->b_spf);
	spool_reset(&s->b_roll);
	spool_reset(&s->b_log);
}

/*
 * The rollup rows of the batch's small reports go straight into
 * dmarcd.rollup_daily by COPY (appended: sql/0014_rollup_append.sql), and
 * the (domain, day) pairs of those reports are marked for compaction.
 */
#define COPY_ROLL "COPY dmarcd.rollup_daily (domain, day, source_ip, " \
	"header_from, dkim_aligned, spf_aligned, disposition, auth, " \
	"dkim_domain, spf_domain, override, messages) FROM STDIN"

/*
 * The batch's keys that want() picks, as array literals for parameters:
 * their domains, ids, begins and ends.
 */
struct key_arrays {
	struct dm_buf dom, ids, begins, ends;
	size_t n;
};

static void
key_arrays_free(struct key_arrays *a)
{
	dm_buf_free(&a->dom);
	dm_buf_free(&a->ids);
	dm_buf_free(&a->begins);
	dm_buf_free(&a->ends);
}

static int
key_arrays(struct store *s, int (*want)(const struct store_batch_key *,
    int), int arg, struct key_arrays *a, struct dm_error *err)
{
	const char **doms;
	size_t i;
	int rc = 0;

	a->n = 0;
	dm_buf_init(&a->dom, 64 << 20);
	dm_buf_init(&a->ids, 64 << 20);
	dm_buf_init(&a->begins, 64 << 20);
	dm_buf_init(&a->ends, 64 << 20);
	doms = malloc((s->b_key_count + 1) * sizeof(*doms));
	if (doms == NULL)
		return dm_error_set(err, DM_E_NOMEM, "out of memory");
	rc |= dm_buf_append(&a->ids, "{", 1);
	rc |= dm_buf_append(&a->begins, "{", 1);
	rc |= dm_buf_append(&a->ends, "{", 1);
	for (i = 0; i < s->b_key_count && rc == 0; i++) {
		const struct store_batch_key *k = &s->b_keys[i];
		const char *sep = a->n ? "," : "";

		if (!want(k, arg))
			continue;
		rc |= dm_buf_printf(&a->ids, "%s%s", sep, k->id);
		rc |= dm_buf_printf(&a->begins, "%s\"%s\"", sep, k->begin);
		rc |= dm_buf_printf(&a->ends, "%s\"%s\"", sep, k->end);
		doms[a->n++] = k->domain;
	}
	rc |= pg_array(&a->dom, doms, a->n);
	rc |= dm_buf_append(&a->ids, "}", 1);
	rc |= dm_buf_append(&a->begins, "}", 1);
	rc |= dm_buf_append(&a->ends, "}", 1);
	free(doms);
	return rc != 0 ? dm_error_set(err, DM_E_NOMEM, "out of memory") : 0;
}

static int
want_rolled(const struct store_batch_key *k, int unused)
{
	(void)unused;
	return k->rolled;
}

/* mark_rolled - the days of the batch's reports whose rows are in b_roll,
 * in dmarcd.rollup_dirty. */
static int
mark_rolled(struct store *s, struct dm_error *err)
{
	struct key_arrays a;
	const char *p[3];
	PGresult *res;
	int rc = -1;

	if (key_arrays(s, want_rolled, 0, &a, err) != 0)
		goto out;
	rc = 0;
	if (a.n == 0)
		goto out;
	p[0] = dm_buf_cstr(&a.dom);
	p[1] = dm_buf_cstr(&a.begins);
	p[2] = dm_buf_cstr(&a.ends);
	res = store_pq_params(s->conn, "INSERT INTO dmarcd.rollup_dirty "
	    "(domain, day) SELECT DISTINCT k.d, x.day FROM unnest($1::text[], "
	    "$2::timestamptz[], $3::timestamptz[]) AS k(d, b, e) CROSS JOIN "
	    "LATERAL dmarcd.report_days(k.b, k.e) x", 3, p, err);
	if (res == NULL)
		rc = -1;
	else
		store_pq.PQclear(res);
out:
	key_arrays_free(&a);
	return rc;
}

/* With sign 1, the keys whose rows are not in b_roll; with -1 those merged
 * from it that a later revision in the batch replaced. */
static int
want_rollup_add(const struct store_batch_key *k, int sign)
{
	return sign > 0 ? !k->superseded && !k->rolled :
	    k->superseded && k->rolled;
}

/*
 * keys_rollup_add - dmarcd.rollup_add() over the batch's keys that need
 * it (want_rollup_add()): with sign 1 read back from their records.
 */
static int
keys_rollup_add(struct store *s, int sign, struct dm_error *err)
{
	struct key_arrays a;
	const char *p[4];
	PGresult *res;
	int rc = -1;

	if (key_arrays(s, want_rollup_add, sign, &a, err) != 0)
		goto out;
	rc = 0;
	if (a.n == 0)
		goto out;
	p[0] = dm_buf_cstr(&a.dom);
	p[1] = dm_buf_cstr(&a.ids);
	p[2] = dm_buf_cstr(&a.begins);
	p[3] = sign > 0 ? "1" : "-1";
	res = store_pq_params(s->conn, "SELECT dmarcd.rollup_add($1::text[], "
	    "$2::bigint[], $3::timestamptz[], $4::integer)", 4, p, err);
	if (res == NULL)
		rc = -1;
	else
		store_pq.PQclear(res);
out:
	key_arrays_free(&a);
	return rc;
}

/* flush_batch - the deferred rows, then their rollups. */
static int
flush_batch(struct store *s, struct dm_error *err)
{
	if (copy_spool(s, &s->b_log, COPY_LOG, err) != 0)
		return -1;
	if (s->b_key_count == 0)
		return 0;
	if (copy_spool(s, &s->b_rec, COPY_RECORDS, err) != 0 ||
	    copy_spool(s, &s->b_dkim, COPY_DKIM, err) != 0 ||
	    copy_spool(s, &s->b_spf, COPY_SPF, err) != 0)
		return -1;
	if (s->b_roll.lines > 0 &&
	    (copy_spool(s, &s->b_roll, COPY_ROLL, err) != 0 ||
	    mark_rolled(s, err) != 0))
		return -1;
	if (s->no_rollup)
		return 0;
	if (keys_rollup_add(s, 1, err) != 0 || keys_rollup_add(s, -1, err) != 0)
		return -1;
	return 0;
}

/* ---- policy_published ---- */

#define POLICY_PARAMS	17
#define POLICY_COLS	"adkim, aspf, p, sp, np, pct, fo, testing, " \
	"discovery_method, raw"

/* The raw text when the report spelled the value otherwise. */
static const char *
raw_diff(const char *raw, const char *name)
{
	if (raw == NULL)
		return NULL;
	return name != NULL && strcmp(raw, name) == 0 ? NULL : raw;
}

/*
 * policy_params - the POLICY_PARAMS parameters policy_sql() reads: nine
 * values, then the raw texts that differ from them. pct is their buffer.
 */
static void
policy_params(const struct dm_policy_published *pp, const char **p,
    char pct[16])
{
	pct[0] = '\0';
	if (pp->pct >= 0)
		snprintf(pct, 16, "%d", pp->pct);
	p[0] = dm_enum_name(DM_ENUM_ALIGNMENT, pp->adkim);
	p[1] = dm_enum_name(DM_ENUM_ALIGNMENT, pp->aspf);
	p[2] = dm_enum_name(DM_ENUM_POLICY, pp->p);
	p[3] = dm_enum_name(DM_ENUM_POLICY, pp->sp);
	p[4] = dm_enum_name(DM_ENUM_POLICY, pp->np);
	p[5] = pp->pct >= 0 ? pct : NULL;
	p[6] = pp->fo;
	p[7] = dm_enum_name(DM_ENUM_TESTING, pp->testing);
	p[8] = dm_enum_name(DM_ENUM_DISCOVERY, pp->discovery_method);
	p[9] = raw_diff(pp->adkim_raw, p[0]);
	p[10] = raw_diff(pp->aspf_raw, p[1]);
	p[11] = raw_diff(pp->p_raw, p[2]);
	p[12] = raw_diff(pp->sp_raw, p[3]);
	p[13] = raw_diff(pp->np_raw, p[4]);
	p[14] = raw_diff(pp->pct_raw, p[5]);
	p[15] = raw_diff(pp->testing_raw, p[7]);
	p[16] = raw_diff(pp->discovery_method_raw, p[8]);
}

/* The SELECT list for POLICY_COLS from parameters $base... */
static char *
policy_sql(int base)
{
	char *sql = NULL;
	int b = base;

	if (asprintf(&sql, "$%d, $%d, $%d, $%d, $%d, $%d::integer, $%d, $%d, "
	    "$%d, nullif(jsonb_strip_nulls(jsonb_build_object('adkim', "
	    "$%d::text, 'aspf', $%d::text, 'p', $%d::text, 'sp', $%d::text, "
	    "'np', $%d::text, 'pct', $%d::text, 'testing', $%d::text, "
	    "'discovery_method', $%d::text)), '{}'::jsonb)", b, b + 1, b + 2,
	    b + 3, b + 4, b + 5, b + 6, b + 7, b + 8, b + 9, b + 10, b + 11,
	    b + 12, b + 13, b + 14, b + 15, b + 16) < 0)
		return NULL;
	return sql;
}

/* ---- report ids ---- */

#define ID_BLOCK	STORE_ID_BLOCK

/*
 * reserve_id - a report id from the identity's sequence, taken ID_BLOCK
 * at a time: a deferred report's rows are written before its row.
 */
static int
reserve_id(struct store *s, char out[24])
{
	PGresult *res;
	int i, n;

	if (s->ids_next == s->ids_count) {
		char block[16];

		snprintf(block, sizeof(block), "%d", ID_BLOCK);
		res = params(s, "SELECT nextval(pg_get_serial_sequence("
		    "'dmarcd.reports', 'id')) FROM generate_series(1, $1::int)",
		    1, (const char *[]){ block });
		if (res == NULL)
			return -1;
		n = store_pq.PQntuples(res);
		for (i = 0; i < n && i < ID_BLOCK; i++)
			s->ids[i] = strtoll(store_pq.PQgetvalue(res, i, 0), NULL,
			    10);
		store_pq.PQclear(res);
		s->ids_count = (size_t)i;
		s->ids_next = 0;
		if (i == 0) {
			dm_error_set(&s->cb_err, DM_E_INTERNAL, "no report id "
			    "from the sequence");
			s->cb_failed = 1;
			return -1;
		}
	}
	snprintf(out, 24, "%" PRId64, s->ids[s->ids_next++]);
	return 0;
}

/* key_params - a report's key as parameters $1 to $5: domain, org_name,
 * report_id, begin, end. */
static void
key_params(const struct store *s, const struct dm_report *r, const char **p)
{
	p[0] = s->domain;
	p[1] = r->org_name;
	p[2] = r->report_id;
	p[3] = s->begin_ts;
	p[4] = s->end_ts;
}

/*
 * report_params - the first 13 parameters of a report's row, as both the
 * big report's INSERT and the small one's statement take them: domain,
 * org_name, report_id, begin, end, reporter, schema, namespace, version,
 * email, extra_contact_info, generator, errors (eb holds that array).
 * -1 when out of memory.
 */
static int
report_params(const struct store *s, const struct dm_report *r,
    const char *reporter, struct dm_buf *eb, const char **p)
{
	if (pg_array(eb, r->errors, r->error_count) != 0)
		return -1;
	key_params(s, r, p);
	p[5] = reporter;
	p[6] = dm_schema_name(r->schema);
	p[7] = r->namespace_uri;
	p[8] = r->version;
	p[9] = r->email;
	p[10] = r->extra_contact_info;
	p[11] = r->generator;
	p[12] = dm_buf_cstr(eb);
	return 0;
}

static int	race_lost(struct store *, const struct dm_report *,
		    struct dm_error *);
#define RACE_TRIES	5

static int report_begin(struct store *s, const struct dm_report *r,
    struct dm_error *err, int tries);

static int
on_report_begin(void *ctx, const struct dm_report *r, struct dm_error *err)
{
	return report_begin(ctx, r, err, 0);
}

/*
 * report_begin - a report begins: small ones are decided at their end; a
 * bigger one is looked up by its key now and, unless known, its row
 * inserted and its records copied as they come. tries: how often its row
 * met another collector's version of it (which took its revision).
 */
static int
report_begin(struct store *s, const struct dm_report *r,
    struct dm_error *err, int tries)
{
	const struct dm_policy_published *pp = &r->policy;
	char *key;
	const char *p[17 + POLICY_PARAMS];
	char pct[16], rev[16], revof[24];
	PGresult *res;
	int64_t reporter;
	int i, rows, replay, max_rev = 0;
	int64_t first_id = 0;

	s->rep_state = REP_SKIP;
	s->rep_rolled = 0;
	s->known_count = 0;
	free(s->domain);
	s->domain = lower_dup(pp->domain);
	if (s->domain == NULL)
		return dm_error_set(err, DM_E_NOMEM, "out of memory");
	/*
	 * What cannot be keyed is not stored: rejected at its end (the
	 * parser normally rejects it itself, with a better reason).
	 */
	if (r->org_name == NULL || r->report_id == NULL ||
	    s->domain[0] == '\0' || !r->has_begin || !r->has_end) {
		/* Metadata after the records: hold them till the end. */
		spool_reset(&s->late_rec);
		spool_reset(&s->late_dkim);
		spool_reset(&s->late_spf);
		s->rep_state = REP_LATE;
		return 0;
	}
	if (timestamp_text(r->begin, s->begin_ts, sizeof(s->begin_ts)) != 0 ||
	    timestamp_text(r->end, s->end_ts, sizeof(s->end_ts)) != 0)
		return 0;
	if (s->input->raw.size <= DEFER_MAX) {
		/*
		 * Small: whether it is new, a duplicate or a revision is
		 * decided at its end, in one statement; its rows join the
		 * batch's under an id taken now.
		 */
		if (ensure_month(s, r->begin) != 0)
			return cb_fail(s, err);
		s->reporter = reporter_id(s, r);
		if (s->reporter < 0 || reserve_id(s, s->rep_id) != 0)
			return cb_fail(s, err);
		mark_batch(s, &s->rep_marks);
		store_rollup_days(s->rollup, r->begin, r->end);
		s->rep_rolled = 1;
		s->rep_state = REP_DEFER;
		return 0;
	}
	key_params(s, r, p);
	/*
	 * The newest versions (a duplicate of an older one still meets its
	 * unique key at the end); the highest revision and the first id of
	 * all of them.
	 */
	res = params(s, "SELECT id, payload_sha256, revision, max(revision) "
	    "OVER (), min(id) OVER () FROM dmarcd.reports WHERE domain = $1 "
	    "AND org_name = $2 AND report_id = $3 AND begin_time = $4 AND "
	    "end_time = $5 AND payload_sha256 IS NOT NULL ORDER BY revision "
	    "DESC, id DESC LIMIT " STORE_MAX_REVISIONS_TEXT, 5, p);
	if (res == NULL)
		return cb_fail(s, err);
	rows = store_pq.PQntuples(res);
	if (rows > 0) {
		max_rev = atoi(store_pq.PQgetvalue(res, 0, 3));
		first_id = strtoll(store_pq.PQgetvalue(res, 0, 4), NULL, 10);
	}
	for (i = 0; i < rows && s->known_count < STORE_MAX_REVISIONS; i++) {
		struct store_known *k = &s->known[s->known_count];

		k->id = strtoll(store_pq.PQgetvalue(res, i, 0), NULL, 10);
		k->revision = atoi(store_pq.PQgetvalue(res, i, 2));
		if (unhex_sha(store_pq.PQgetvalue(res, i, 1), k->sha) != 0)
			continue;
		s->known_count++;
	}
	store_pq.PQclear(res);
	key = report_key(s->domain, r);
	if (key == NULL)
		return dm_error_set(err, DM_E_NOMEM, "out of memory");
	replay = replaying(s, key);
	free(key);
	if (s->known_count > 0 && !replay) {
		/* Seen: parse only; its hash decides at the end. */
		s->rep_state = REP_PROBE;
		return 0;
	}
	if (ensure_month(s, r->begin) != 0)
		return cb_fail(s, err);
	reporter = reporter_id(s, r);
	if (reporter < 0)
		return cb_fail(s, err);
	if (exec(s, "SAVEPOINT report") != 0)
		return cb_fail(s, err);
	snprintf(rev, sizeof(rev), "%d", s->known_count > 0 ? max_rev + 1 : 1);
	snprintf(revof, sizeof(revof), "%" PRId64, first_id);
	{
		char rep[24];
		struct dm_buf eb;

		snprintf(rep, sizeof(rep), "%" PRId64, reporter);
		dm_buf_init(&eb, DM_MAX_META_ERRORS * 256 + DM_MAX_TEXT);
		if (report_params(s, r, rep, &eb, p) != 0) {
			dm_buf_free(&eb);
			return dm_error_set(err, DM_E_NOMEM, "out of memory");
		}
		p[13] = rev;
		p[14] = s->known_count > 0 ? revof : NULL;
		p[15] = s->input->message_id != NULL ? s->input->message_id :
		    s->input->source;
		p[16] = r->where;
		policy_params(pp, p + 17, pct);
		res = params(s, s->sql_begin, 17 + POLICY_PARAMS, p);
		dm_buf_free(&eb);
	}
	if (res == NULL && strstr(s->cb_err.msg, "SQLSTATE 23505") != NULL &&
	    store_pq.PQstatus(s->conn) == CONNECTION_OK) {
		/*
		 * Another collector stored a version of this report with the
		 * revision this one was to have, and has committed: looked up
		 * again, it is known now (a duplicate or a revision of it,
		 * as for any known report).
		 */
		if (exec(s, "ROLLBACK TO SAVEPOINT report") != 0 ||
		    exec(s, "RELEASE SAVEPOINT report") != 0)
			return cb_fail(s, err);
		s->cb_failed = 0;
		if (tries + 1 >= RACE_TRIES)
			return race_lost(s, r, err);
		return report_begin(s, r, err, tries + 1);
	}
	if (res == NULL)
		return cb_fail(s, err);
	snprintf(s->rep_id, sizeof(s->rep_id), "%s",
	    store_pq.PQgetvalue(res, 0, 0));
	store_pq.PQclear(res);
	spool_reset(&s->dkim);
	spool_reset(&s->spf);
	dm_buf_reset(&s->copy);
	store_rollup_begin(s->rollup, r->begin, r->end);
	s->rollup_sql = 0;
	if (store_copy_start(s, COPY_RECORDS, &s->cb_err) != 0) {
		s->cb_failed = 1;
		return cb_fail(s, err);
	}
	s->rep_state = REP_COPY;
	return 0;
}

/* The columns every record row starts with: domain, begin, report, idx. */
static int
row_head(struct store *s, struct dm_buf *b, uint64_t idx)
{
	if (s->rep_state == REP_LATE)	/* the rest comes at the end */
		return copy_u64(b, idx, 0);
	if (copy_field(b, s->domain, 0) != 0 ||
	    copy_field(b, s->begin_ts, 0) != 0 ||
	    copy_field(b, s->rep_id, 0) != 0)
		return -1;
	return copy_u64(b, idx, 0);
}

static int
on_record(void *ctx, const struct dm_report *r, const struct dm_record *rec,
    struct dm_error *err)
{
	struct store *s = ctx;
	int late = s->rep_state == REP_LATE;
	int defer = s->rep_state == REP_DEFER || late;
	struct dm_buf *b = defer ? &s->line : &s->copy, *l = &s->line;
	struct store_spool *recs = late ? &s->late_rec : &s->b_rec;
	struct store_spool *dkim = late ? &s->late_dkim : defer ? &s->b_dkim :
	    &s->dkim;
	struct store_spool *spf = late ? &s->late_spf : defer ? &s->b_spf :
	    &s->spf;
	const char *types[DM_MAX_REASONS], *comments[DM_MAX_REASONS];
	struct dm_alignment auth;
	size_t i;
	int rc = 0;

	if (s->rep_state != REP_COPY && !defer)
		return 0;
	/* dmarcd's own alignment verdict, beside the receiver's. A report
	 * whose policy_published comes after its records (REP_LATE) is
	 * judged relaxed, the default. */
	dm_align_record(&r->policy, rec, &auth);
	if (defer)
		dm_buf_reset(b);
	else if (!s->no_rollup)
		store_rollup_record(s->rollup, rec, &auth);
	rc |= row_head(s, b, rec->index);
	rc |= copy_field(b, rec->source_ip, 0);
	rc |= copy_field(b, rec->source_ip == NULL ? rec->source_ip_raw :
	    NULL, 0);
	rc |= copy_u64(b, rec->count, 0);
	rc |= copy_field(b, dm_enum_name(DM_ENUM_DISPOSITION,
	    rec->disposition), 0);
	rc |= copy_field(b, dm_enum_name(DM_ENUM_VERDICT, rec->dkim), 0);
	rc |= copy_field(b, dm_enum_name(DM_ENUM_VERDICT, rec->spf), 0);
	for (i = 0; i < rec->reason_count; i++) {
		types[i] = dm_enum_name(DM_ENUM_REASON, rec->reasons[i].type);
		comments[i] = rec->reasons[i].comment;
	}
	rc |= copy_array(b, types, rec->reason_count);
	rc |= dm_buf_append(b, "\t", 1);
	rc |= copy_array(b, comments, rec->reason_count);
	rc |= dm_buf_append(b, "\t", 1);
	rc |= copy_field(b, rec->header_from, 0);
	rc |= copy_field(b, rec->envelope_from, 0);
	rc |= copy_field(b, rec->envelope_to, 0);
	rc |= dm_buf_printf(b, "%u\t", auth.bits);
	rc |= copy_field(b, auth.dkim_domain, 0);
	rc |= copy_field(b, auth.spf_domain, 0);
	rc |= copy_field(b, auth.override, 1);
	if (rc != 0)
		return dm_error_set(err, DM_E_NOMEM, "out of memory");
	if (defer && spool_add(recs, b, err) != 0)
		return -1;
	for (i = 0; i < rec->dkim_count; i++) {
		const struct dm_dkim_result *d = &rec->dkim_results[i];

		dm_buf_reset(l);
		rc |= row_head(s, l, rec->index);
		rc |= copy_u64(l, i + 1, 0);
		rc |= copy_field(l, d->domain, 0);
		rc |= copy_field(l, d->selector, 0);
		rc |= copy_field(l, dm_enum_name(DM_ENUM_DKIM_RESULT,
		    d->result), 0);
		rc |= copy_field(l, d->human_result, 1);
		if (rc != 0 || spool_add(dkim, l, err) != 0)
			return rc ? dm_error_set(err, DM_E_NOMEM, "out of "
			    "memory") : -1;
	}
	for (i = 0; i < rec->spf_count; i++) {
		const struct dm_spf_result *f = &rec->spf_results[i];

		dm_buf_reset(l);
		rc |= row_head(s, l, rec->index);
		rc |= copy_u64(l, i + 1, 0);
		rc |= copy_field(l, f->domain, 0);
		rc |= copy_field(l, dm_enum_name(DM_ENUM_SPF_SCOPE, f->scope),
		    0);
		rc |= copy_field(l, dm_enum_name(DM_ENUM_SPF_RESULT,
		    f->result), 0);
		rc |= copy_field(l, f->human_result, 1);
		if (rc != 0 || spool_add(spf, l, err) != 0)
			return rc ? dm_error_set(err, DM_E_NOMEM, "out of "
			    "memory") : -1;
	}
	if (s->rep_state == REP_DEFER && s->rep_rolled && !s->no_rollup) {
		dm_buf_reset(l);
		if (store_rollup_lines(s->rollup, s->domain, rec, &auth,
		    l) != 0)
			return dm_error_set(err, DM_E_NOMEM, "out of memory");
		if (l->len > 0 && spool_add(&s->b_roll, l, err) != 0)
			return -1;
	}
	if (!defer && b->len >= COPY_FLUSH) {
		if (store_copy_put(s, b->data, b->len, err) != 0) {
			s->rep_state = REP_SKIP;
			return -1;
		}
		dm_buf_reset(b);
	}
	return 0;
}

static int
warnings_arrays(const struct dm_warnings *w, struct dm_buf *lines,
    struct dm_buf *texts, struct dm_buf *counts)
{
	size_t i;
	int rc = 0;

	rc |= dm_buf_append(lines, "{", 1);
	rc |= dm_buf_append(texts, "{", 1);
	rc |= dm_buf_append(counts, "{", 1);
	for (i = 0; w != NULL && i < w->count; i++) {
		const struct dm_warning *x = &w->items[i];

		rc |= dm_buf_printf(lines, "%s%lu", i ? "," : "", x->line);
		rc |= dm_buf_append(texts, i ? ",\"" : "\"", i ? 2 : 1);
		for (const char *c = x->text; *c != '\0'; c++) {
			if (*c == '"' || *c == '\\')
				rc |= dm_buf_append(texts, "\\", 1);
			rc |= dm_buf_append(texts, c, 1);
		}
		rc |= dm_buf_append(texts, "\"", 1);
		rc |= dm_buf_printf(counts, "%s%" PRIu64, i ? "," : "",
		    x->count);
	}
	if (w != NULL && w->dropped > 0) {
		rc |= dm_buf_printf(lines, "%s0", i ? "," : "");
		rc |= dm_buf_printf(texts, "%s\"more warnings, not kept\"",
		    i ? "," : "");
		rc |= dm_buf_printf(counts, "%s%" PRIu64, i ? "," : "",
		    w->dropped);
	}
	rc |= dm_buf_append(lines, "}", 1);
	rc |= dm_buf_append(texts, "}", 1);
	rc |= dm_buf_append(counts, "}", 1);
	return rc ? -1 : 0;
}

/* What a complete report's row gets, as text parameters. */
struct report_end {
	char sha[67], rawsha[67], bytes[24], recs[24], msgs[24], wc[24];
	struct dm_buf wl, wt, wn;	/* its warnings: lines, texts, counts */
};

/* report_end_init - e for r; -1 when out of memory (free e all the same). */
static int
report_end_init(struct report_end *e, const struct store *s,
    const struct dm_report *r)
{
	dm_buf_init(&e->wl, 1 << 20);
	dm_buf_init(&e->wt, 4 << 20);
	dm_buf_init(&e->wn, 1 << 20);
	bytea_param(r->payload_sha256, 32, e->sha);
	bytea_param(s->input->raw.sha256, 32, e->rawsha);
	snprintf(e->bytes, sizeof(e->bytes), "%" PRIu64, r->payload_bytes);
	snprintf(e->recs, sizeof(e->recs), "%" PRIu64, r->record_count);
	snprintf(e->msgs, sizeof(e->msgs), "%" PRIu64, r->message_count);
	snprintf(e->wc, sizeof(e->wc), "%zu", r->warnings != NULL ?
	    r->warnings->count : 0);
	return warnings_arrays(r->warnings, &e->wl, &e->wt, &e->wn);
}

static void
report_end_free(struct report_end *e)
{
	dm_buf_free(&e->wl);
	dm_buf_free(&e->wt);
	dm_buf_free(&e->wn);
}

/*
 * unroll - a revision replaces report id (of s->domain, begun at
 * s->begin_ts) in the rollups: its messages are taken away (its rows
 * stay); when it is still deferred in this batch, it is never added.
 */
static int
unroll(struct store *s, const char *id, struct dm_error *err)
{
	PGresult *res;
	size_t i;

	if (s->no_rollup)
		return 0;
	for (i = 0; i < s->b_key_count; i++)
		if (strcmp(s->b_keys[i].id, id) == 0 &&
		    strcmp(s->b_keys[i].domain, s->domain) == 0) {
			s->b_keys[i].superseded = 1;
			return 0;
		}
	res = store_pq_params(s->conn, "SELECT dmarcd.rollup_add("
	    "ARRAY[$1::text], ARRAY[$2::bigint], ARRAY[$3::timestamptz], -1)",
	    3, (const char *[]){ s->domain, id, s->begin_ts }, err);
	if (res == NULL)
		return -1;
	store_pq.PQclear(res);
	return 0;
}

/* unroll_previous - the same for the latest of the known reports. */
static int
unroll_previous(struct store *s, struct dm_error *err)
{
	const struct store_known *latest = &s->known[0];
	char id[24];
	size_t i;

	for (i = 1; i < s->known_count; i++)
		if (s->known[i].revision > latest->revision)
			latest = &s->known[i];
	snprintf(id, sizeof(id), "%" PRId64, latest->id);
	return unroll(s, id, err);
}

/*
 * The report is complete: its hash, counts and warnings; for a report
 * copied directly also its DKIM and SPF results and rollup rows (a
 * deferred one gets them when its batch commits).
 */
static int
finish_report(struct store *s, const struct dm_report *r, int state,
    struct dm_error *err)
{
	struct report_end e;
	const char *p[12];
	PGresult *res;
	int rc = -1, direct = state == REP_COPY;

	if (direct) {
		if (store_copy_put(s, s->copy.data, s->copy.len, err) != 0 ||
		    store_copy_end(s, NULL, err) != 0)
			return -1;
		dm_buf_reset(&s->copy);
		s->rep_state = REP_NONE;
		if (copy_spool(s, &s->dkim, COPY_DKIM, err) != 0 ||
		    copy_spool(s, &s->spf, COPY_SPF, err) != 0)
			return -1;
		spool_reset(&s->dkim);
		spool_reset(&s->spf);
	}
	s->rep_state = REP_NONE;
	if (report_end_init(&e, s, r) != 0) {
		dm_error_set(err, DM_E_NOMEM, "out of memory");
		goto out;
	}
	p[0] = s->domain;
	p[1] = s->rep_id;
	p[2] = e.sha;
	p[3] = e.bytes;
	p[4] = e.recs;
	p[5] = e.msgs;
	p[6] = e.wc;
	p[7] = s->begin_ts;
	p[8] = dm_buf_cstr(&e.wl);
	p[9] = dm_buf_cstr(&e.wt);
	p[10] = dm_buf_cstr(&e.wn);
	p[11] = e.rawsha;
	res = store_pq_params(s->conn,
	    "WITH u AS (UPDATE dmarcd.reports SET payload_sha256 = $3, "
	    "payload_bytes = $4, record_count = $5, message_count = $6, "
	    "warning_count = $7, raw_sha256 = $12 WHERE domain = $1 AND "
	    "id = $2 RETURNING id), "
	    "w AS (INSERT INTO dmarcd.report_warnings (domain, report, n, line, "
	    "text, count) SELECT $1, $2, x.n, x.line, x.text, x.count FROM "
	    "unnest($9::bigint[], $10::text[], $11::bigint[]) WITH ORDINALITY "
	    "AS x(line, text, count, n)) "
	    "SELECT count(*), $8::timestamptz FROM u", 12, p, err);
	if (res == NULL)
		goto out;
	store_pq.PQclear(res);
	if (direct && s->no_rollup) {
		/* benchmark only: no rollup */
	} else if (direct && !s->rollup_sql) {
		if (store_rollup_flush(s, s->rollup, s->domain, err) != 0)
			goto out;
	} else if (direct) {
		res = store_pq_params(s->conn, "SELECT dmarcd.rollup_add("
		    "ARRAY[$1::text], ARRAY[$2::bigint], "
		    "ARRAY[$3::timestamptz])", 3, (const char *[]){ s->domain,
		    s->rep_id, s->begin_ts }, err);
		if (res == NULL)
			goto out;
		store_pq.PQclear(res);
	} else if (batch_key(s, err) != 0)
		goto out;
	if (s->known_count > 0 && unroll_previous(s, err) != 0)
		goto out;
	rc = 0;
out:
	report_end_free(&e);
	return rc;
}

static int
count_duplicate(struct store *s, int64_t id, const char *table)
{
	char v[24], sql[160];
	const char *p[2];
	PGresult *res;

	snprintf(v, sizeof(v), "%" PRId64, id);
	snprintf(sql, sizeof(sql), "UPDATE dmarcd.%s SET duplicates = "
	    "duplicates + 1%s WHERE domain = $1 AND id = $2", table,
	    strcmp(table, "reports") == 0 ? ", last_duplicate_at = now()" : "");
	p[0] = s->domain;
	p[1] = v;
	res = params(s, sql, 2, p);
	if (res == NULL)
		return -1;
	store_pq.PQclear(res);
	s->tally->duplicates++;
	return 0;
}

/*
 * raced - another collector committed a report of the same key meanwhile.
 * When it is this very payload, a duplicate (0); 1 when it is another
 * version (it took the revision this one was to have), -1 on error.
 */
static int
raced(struct store *s, const struct dm_report *r)
{
	const char *p[6];
	char sha[67];
	PGresult *res;
	int64_t id;

	bytea_param(r->payload_sha256, 32, sha);
	key_params(s, r, p);
	p[5] = sha;
	res = params(s, "SELECT id FROM dmarcd.reports WHERE domain = $1 AND "
	    "org_name = $2 AND report_id = $3 AND begin_time = $4 AND "
	    "end_time = $5 AND payload_sha256 = $6", 6, p);
	if (res == NULL)
		return -1;
	if (store_pq.PQntuples(res) == 0) {
		store_pq.PQclear(res);
		return 1;
	}
	id = strtoll(store_pq.PQgetvalue(res, 0, 0), NULL, 10);
	store_pq.PQclear(res);
	return count_duplicate(s, id, "reports");
}

#define DEFER_PARAMS	(30 + POLICY_PARAMS)

/*
 * The statement that ends a deferred report: a duplicate is counted; else
 * the report, its policy, warnings and raw bytes are inserted, as revision
 * n + 1 when n reports of its key are known. It returns the duplicate's
 * id, or the new row's revision and the latest earlier report's id;
 * neither when another collector stored the same report meanwhile.
 */
static char *
defer_sql(void)
{
	char *pol = policy_sql(31), *sql = NULL;

	if (pol == NULL)
		return NULL;
	if (asprintf(&sql,
	    "WITH k AS (SELECT id, payload_sha256 AS sha, revision FROM "
	    "dmarcd.reports WHERE domain = $1 AND org_name = $2 AND "
	    "report_id = $3 AND begin_time = $4 AND end_time = $5 AND "
	    "payload_sha256 IS NOT NULL), "
	    "d AS (UPDATE dmarcd.reports SET duplicates = duplicates + 1, "
	    "last_duplicate_at = now() WHERE domain = $1 AND id = (SELECT id "
	    "FROM k WHERE sha = $17) RETURNING id), "
	    "i AS (INSERT INTO dmarcd.reports (domain, id, reporter_id, "
	    "org_name, report_id, begin_time, end_time, schema, namespace, "
	    "version, email, extra_contact_info, generator, errors, source, "
	    "location, payload_sha256, payload_bytes, record_count, "
	    "message_count, warning_count, raw_sha256, revision, revision_of) "
	    "OVERRIDING SYSTEM VALUE SELECT $1, $16, $6, $2, $3, $4, $5, $7, "
	    "$8, $9, $10, $11, $12, $13, $14, $15, $17, $18, $19, $20, $21, "
	    "$22, coalesce((SELECT max(revision) FROM k), 0) + 1, "
	    "(SELECT min(id) FROM k) WHERE NOT EXISTS (SELECT FROM k WHERE "
	    "sha = $17) ON CONFLICT DO NOTHING RETURNING id, revision), "
	    "p AS (INSERT INTO dmarcd.policy_published (domain, report, "
	    POLICY_COLS ") SELECT $1, i.id, %s FROM i), "
	    "w AS (INSERT INTO dmarcd.report_warnings (domain, report, n, "
	    "line, text, count) SELECT $1, i.id, x.n, x.line, x.text, x.count "
	    "FROM i, unnest($23::bigint[], $24::text[], $25::bigint[]) WITH "
	    "ORDINALITY AS x(line, text, count, n)), "
	    "ri AS (INSERT INTO dmarcd.raw_inputs (domain, sha256, size, "
	    "stored_size, encoding, source) SELECT $1, $22, $27, $28, $29, "
	    "$14 FROM i WHERE $26::boolean ON CONFLICT DO NOTHING RETURNING "
	    "1), "
	    "rc AS (INSERT INTO dmarcd.raw_chunks (domain, sha256, seq, data) "
	    "SELECT $1, $22, 0, $30::bytea FROM ri) "
	    "SELECT (SELECT id FROM d), (SELECT revision FROM i), (SELECT id "
	    "FROM k ORDER BY revision DESC, id DESC LIMIT 1)", pol) < 0)
		sql = NULL;
	free(pol);
	return sql;
}

/* The error when a report kept losing its revision to other collectors'
 * versions of it (each try waits for one's commit): run again. */
static int
race_lost(struct store *s, const struct dm_report *r, struct dm_error *err)
{
	dm_error_set(err, DM_E_TEMP, "report %s of %s: other versions of it "
	    "were being stored at the same moment, %d times; try again",
	    r->report_id, r->org_name, RACE_TRIES);
	s->cb_err = *err;
	s->cb_failed = 1;
	return -1;
}

/* defer_end - a deferred report is complete: one statement decides. */
static int
defer_end(struct store *s, const struct dm_report *r, struct dm_error *err)
{
	const struct dm_policy_published *pp = &r->policy;
	const char *p[DEFER_PARAMS];
	int len[DEFER_PARAMS] = { 0 }, fmt[DEFER_PARAMS] = { 0 };
	char reporter[24], size[24], stored[24], pct[16], prev[24];
	const unsigned char *data = NULL;
	unsigned char *keep = NULL;
	size_t data_len = 0;
	struct report_end e;
	struct dm_buf eb;
	PGresult *res = NULL;
	int rc = -1, revision, tries = 0, lost;

	if (!s->defer_prepared) {
		res = store_pq.PQprepare(s->conn, "dmarcd_defer_end",
		    s->sql_defer, DEFER_PARAMS, NULL);
		if (res == NULL ||
		    store_pq.PQresultStatus(res) != PGRES_COMMAND_OK)
			return store_pq_fail(s->conn, res, "preparing the "
			    "report statement", err);
		store_pq.PQclear(res);
		s->defer_prepared = 1;
	}
	snprintf(reporter, sizeof(reporter), "%" PRId64, s->reporter);
	dm_buf_init(&eb, DM_MAX_META_ERRORS * 256 + DM_MAX_TEXT);
	if (report_end_init(&e, s, r) != 0 ||
	    report_params(s, r, reporter, &eb, p) != 0) {
		dm_error_set(err, DM_E_NOMEM, "out of memory");
		goto out;
	}
	if (!raw_stored(s, s->domain) &&
	    raw_load(s, &data, &data_len, &keep, err) < 0)
		goto out;
	snprintf(size, sizeof(size), "%" PRIu64, s->input->raw.size);
	snprintf(stored, sizeof(stored), "%zu", data_len);
	p[13] = s->input->message_id != NULL ? s->input->message_id :
	    s->input->source;
	p[14] = r->where;
	p[15] = s->rep_id;
	p[16] = e.sha;
	p[17] = e.bytes;
	p[18] = e.recs;
	p[19] = e.msgs;
	p[20] = e.wc;
	p[21] = e.rawsha;
	p[22] = dm_buf_cstr(&e.wl);
	p[23] = dm_buf_cstr(&e.wt);
	p[24] = dm_buf_cstr(&e.wn);
	p[25] = data != NULL ? "true" : "false";
	p[26] = size;
	p[27] = stored;
	p[28] = s->input->raw.compressed ? "identity" : "gzip";
	p[29] = data != NULL ? (const char *)data : NULL;
	len[29] = (int)data_len;
	fmt[29] = 1;	/* binary: the bytes as they are */
	policy_params(pp, p + 30, pct);
again:
	res = store_pq.PQexecPrepared(s->conn, "dmarcd_defer_end",
	    DEFER_PARAMS, p, len, fmt, 0);
	if (res == NULL || store_pq.PQresultStatus(res) != PGRES_TUPLES_OK ||
	    store_pq.PQntuples(res) != 1) {
		store_pq_fail(s->conn, res, "storing a report", err);
		res = NULL;
		goto out;
	}
	if (!store_pq.PQgetisnull(res, 0, 0)) {
		/* The same report again: its rows go. */
		if (undo_batch(s, &s->rep_marks) != 0) {
			*err = s->cb_err;
			goto out;
		}
		s->tally->duplicates++;
		rc = 0;
		goto out;
	}
	if (store_pq.PQgetisnull(res, 0, 1)) {
		/*
		 * Another collector stored a report of this key meanwhile:
		 * this one, a duplicate; or another version, which took the
		 * revision: this one is the next (the statement again sees
		 * that one, committed).
		 */
		lost = raced(s, r);
		if (lost == 1 && ++tries < RACE_TRIES) {
			store_pq.PQclear(res);
			goto again;
		}
		if (lost == 1) {
			race_lost(s, r, err);
			goto out;
		}
		if (lost != 0 || undo_batch(s, &s->rep_marks) != 0) {
			*err = s->cb_err;
			goto out;
		}
		rc = 0;
		goto out;
	}
	revision = atoi(store_pq.PQgetvalue(res, 0, 1));
	snprintf(prev, sizeof(prev), "%s", store_pq.PQgetvalue(res, 0, 2));
	if (batch_key(s, err) != 0 ||
	    (data != NULL && raw_remember(s, s->domain, err) != 0) ||
	    (revision > 1 && unroll(s, prev, err) != 0) ||
	    note_changed(s, err) != 0)
		goto out;
	if (revision > 1)
		s->tally->revisions++;
	else
		s->tally->stored++;
	s->tally->records += r->record_count;
	s->tally->messages += r->message_count;
	rc = 0;
out:
	if (res != NULL)
		store_pq.PQclear(res);
	free(keep);
	report_end_free(&e);
	dm_buf_free(&eb);
	return rc;
}

/* Each line of a spool (COPY text: no raw newline inside a row). */
static int
spool_lines(struct store_spool *sp, int (*fn)(struct store *s, int which,
    const char *line, size_t len, struct dm_error *err), struct store *s,
    int which, struct dm_error *err)
{
	char *line = NULL, *p, *nl;
	size_t cap = 0, left;
	ssize_t n;
	int rc = 0;

	if (sp->file == NULL) {
		for (p = sp->mem.data, left = sp->mem.len; rc == 0 && left > 0;
		    left -= (size_t)(nl - p) + 1, p = nl + 1) {
			nl = memchr(p, '\n', left);
			if (nl == NULL)
				break;
			rc = fn(s, which, p, (size_t)(nl - p) + 1, err);
		}
		return rc;
	}
	if (fflush(sp->file) != 0 || fseeko(sp->file, 0, SEEK_SET) != 0)
		return dm_error_set(err, DM_E_IO, "cannot read a temporary "
		    "file back: %s", strerror(errno));
	while (rc == 0 && (n = getline(&line, &cap, sp->file)) > 0)
		rc = fn(s, which, line, (size_t)n, err);
	free(line);
	return rc;
}

/* A held row, now with its domain, begin and report id in front. */
static int
late_row(struct store *s, int which, const char *line, size_t len,
    struct dm_error *err)
{
	struct dm_buf *b = &s->line;
	struct store_spool *to;
	int state = s->rep_state;

	if (state != REP_COPY && state != REP_DEFER)
		return 0;
	dm_buf_reset(b);
	if (copy_field(b, s->domain, 0) != 0 ||
	    copy_field(b, s->begin_ts, 0) != 0 ||
	    copy_field(b, s->rep_id, 0) != 0 ||
	    dm_buf_append(b, line, len) != 0)
		return dm_error_set(err, DM_E_NOMEM, "out of memory");
	if (which == 0 && state == REP_COPY) {
		if (dm_buf_append(&s->copy, b->data, b->len) != 0)
			return dm_error_set(err, DM_E_NOMEM, "out of memory");
		if (s->copy.len >= COPY_FLUSH) {
			if (store_copy_put(s, s->copy.data, s->copy.len, err) != 0)
				return -1;
			dm_buf_reset(&s->copy);
		}
		return 0;
	}
	if (which == 0)
		to = &s->b_rec;
	else if (which == 1)
		to = state == REP_DEFER ? &s->b_dkim : &s->dkim;
	else
		to = state == REP_DEFER ? &s->b_spf : &s->spf;
	return spool_add(to, b, err);
}

/*
 * late_begin - the report's metadata is complete now: begin it as usual
 * and hand on the rows held back.
 */
static int
late_begin(struct store *s, const struct dm_report *r, struct dm_error *err)
{
	if (on_report_begin(s, r, err) != 0)
		return -1;
	if (s->rep_state == REP_LATE)	/* still incomplete */
		s->rep_state = REP_SKIP;
	/* The held rows pass as text: its rollup is read back from them. */
	s->rollup_sql = 1;
	s->rep_rolled = 0;
	if (spool_lines(&s->late_rec, late_row, s, 0, err) != 0 ||
	    spool_lines(&s->late_dkim, late_row, s, 1, err) != 0 ||
	    spool_lines(&s->late_spf, late_row, s, 2, err) != 0)
		return -1;
	spool_reset(&s->late_rec);
	spool_reset(&s->late_dkim);
	spool_reset(&s->late_spf);
	return 0;
}

static int
on_report_end(void *ctx, const struct dm_report *r, struct dm_error *err)
{
	struct store *s = ctx;
	struct dm_error why;
	size_t i;
	int state;
	char *key;

	if (s->rep_state == REP_LATE && r->status != DM_STATUS_REJECTED &&
	    late_begin(s, r, err) != 0)
		return -1;
	state = s->rep_state;
	s->rep_state = REP_NONE;
	if (r->status == DM_STATUS_REJECTED || state == REP_SKIP ||
	    state == REP_NONE) {
		if (state == REP_COPY) {
			if (store_copy_end(s, "the report was rejected", err) != 0 &&
			    store_pq.PQstatus(s->conn) != CONNECTION_OK)
				return -1;
			if (exec(s, "ROLLBACK TO SAVEPOINT report") != 0)
				return cb_fail(s, err);
		}
		if (state == REP_DEFER && undo_batch(s, &s->rep_marks) != 0)
			return cb_fail(s, err);
		why = r->error;
		if (r->status != DM_STATUS_REJECTED && state == REP_SKIP)
			dm_error_set(&why, DM_E_DATA, "the report cannot be "
			    "stored: it needs <org_name>, <report_id>, a "
			    "<policy_published> <domain> and a <date_range> "
			    "within the years 1970 to 9999 (begin %" PRId64
			    ", end %" PRId64 ")", r->begin, r->end);
		else if (r->status != DM_STATUS_REJECTED)
			dm_error_set(&why, DM_E_INTERNAL, "the report ended "
			    "without having begun");
		return reject(s, r->where, &why) != 0 ? cb_fail(s, err) : 0;
	}
	if (state == REP_PROBE) {
		for (i = 0; i < s->known_count; i++)
			if (memcmp(s->known[i].sha, r->payload_sha256, 32) == 0)
				return count_duplicate(s, s->known[i].id,
				    "reports") != 0 ? cb_fail(s, err) : 0;
		/* A revision: store it on a second pass over the input. */
		key = report_key(s->domain, r);
		if (key == NULL)
			return dm_error_set(err, DM_E_NOMEM, "out of memory");
		s->replay_keys = realloc(s->replay_keys, (s->replay_count + 1) *
		    sizeof(*s->replay_keys));
		if (s->replay_keys == NULL) {
			free(key);
			return dm_error_set(err, DM_E_NOMEM, "out of memory");
		}
		s->replay_keys[s->replay_count++] = key;
		s->tally->replay = 1;
		return 0;
	}
	if (state == REP_DEFER) {
		if (defer_end(s, r, &s->cb_err) != 0) {
			s->cb_failed = 1;
			return cb_fail(s, err);
		}
		return 0;
	}
	if (finish_report(s, r, state, &s->cb_err) != 0) {
		if (strstr(s->cb_err.msg, "SQLSTATE 23505") != NULL &&
		    store_pq.PQstatus(s->conn) == CONNECTION_OK) {
			if (exec(s, "ROLLBACK TO SAVEPOINT report") != 0 ||
			    (state == REP_DEFER &&
			    undo_batch(s, &s->rep_marks) != 0))
				return cb_fail(s, err);
			switch (raced(s, r)) {
			case 0:
				return 0;
			case 1:
				return race_lost(s, r, err);
			default:
				return cb_fail(s, err);
			}
		}
		s->cb_failed = 1;
		return cb_fail(s, err);
	}
	if (store_raw(s, s->domain, &s->cb_err) != 0) {
		s->cb_failed = 1;
		return cb_fail(s, err);
	}
	if (exec(s, "RELEASE SAVEPOINT report") != 0)
		return cb_fail(s, err);
	if (note_changed(s, &s->cb_err) != 0) {
		s->cb_failed = 1;
		return cb_fail(s, err);
	}
	if (s->known_count > 0)
		s->tally->revisions++;
	else
		s->tally->stored++;
	s->tally->records += r->record_count;
	s->tally->messages += r->message_count;
	return 0;
}

/* ---- failure reports ---- */

/* A text[] parameter: {"a","b"}; NULL when empty. */
static const char *
array_param(struct dm_buf *b, const struct dm_strlist *l)
{
	if (l->count == 0)
		return NULL;
	dm_buf_reset(b);
	return pg_array(b, l->items, l->count) == 0 ? dm_buf_cstr(b) : NULL;
}

static int
on_failure(void *ctx, const struct dm_failure *f, struct dm_error *err)
{
	struct store *s = ctx;
	struct dm_buf a[7];
	struct dm_strlist wl;
	char rawsha[67], inc[24], when[40];
	char wtext[DM_MAX_WARNINGS][DM_MAX_WARNING_TEXT + 32];
	const char *p[37];
	PGresult *res;
	size_t i;
	int inserted, rc = -1;

	if (f->status == DM_STATUS_REJECTED)
		return reject(s, f->where, &f->error) != 0 ? cb_fail(s, err) :
		    0;
	free(s->domain);
	s->domain = lower_dup(f->reported_domain.count > 0 ?
	    f->reported_domain.items[0] : "");
	if (s->domain == NULL)
		return dm_error_set(err, DM_E_NOMEM, "out of memory");
	for (i = 0; i < 7; i++)
		dm_buf_init(&a[i], 4 << 20);
	memset(&wl, 0, sizeof(wl));
	for (i = 0; f->warnings != NULL && i < f->warnings->count &&
	    wl.count < DM_MAX_FAILURE_LIST; i++) {
		dm_warning_format(&f->warnings->items[i], wtext[i],
		    sizeof(wtext[i]));
		wl.items[wl.count++] = wtext[i];
	}
	bytea_param(s->input->raw.sha256, 32, rawsha);
	snprintf(inc, sizeof(inc), "%" PRIu64, f->incidents);
	if (!f->has_arrival_time || timestamp_text(f->arrival_time, when,
	    sizeof(when)) != 0)
		when[0] = '\0';
	p[0] = s->domain;
	p[1] = rawsha;
	p[2] = f->where != NULL ? f->where : "";
	p[3] = f->arf ? "true" : "false";
	p[4] = f->feedback_type;
	p[5] = f->user_agent;
	p[6] = f->version;
	p[7] = f->auth_failure;
	p[8] = f->identity_alignment;
	p[9] = f->delivery_result;
	p[10] = f->source_ip;
	p[11] = f->source_ip == NULL ? f->source_ip_raw : NULL;
	p[12] = f->source_port;
	p[13] = f->arrival_date;
	p[14] = when[0] != '\0' ? when : NULL;
	p[15] = f->original_mail_from;
	p[16] = f->original_envelope_id;
	p[17] = f->reporting_mta;
	p[18] = inc;
	p[19] = f->dkim_domain;
	p[20] = f->dkim_identity;
	p[21] = f->dkim_selector;
	p[22] = f->spf_dns;
	p[23] = array_param(&a[0], &f->reported_domain);
	p[24] = array_param(&a[1], &f->original_rcpt_to);
	p[25] = array_param(&a[2], &f->authentication_results);
	p[26] = array_param(&a[3], &f->reported_uri);
	p[27] = f->headers.from;
	p[28] = f->headers.to;
	p[29] = f->headers.subject;
	p[30] = f->headers.date;
	p[31] = f->headers.message_id;
	p[32] = array_param(&a[4], &f->headers.dkim_signature);
	p[33] = array_param(&a[5], &f->headers.authentication_results);
	p[34] = f->body;
	p[35] = array_param(&a[6], &wl);
	p[36] = s->input->message_id != NULL ? s->input->message_id :
	    s->input->source;
	if (p[34] != NULL && strlen(p[34]) != f->body_len)
		p[34] = NULL;	/* NUL bytes: text cannot hold it */
	res = params(s, "INSERT INTO dmarcd.failure_reports AS t (domain, "
	    "raw_sha256, location, arf, feedback_type, user_agent, version, "
	    "auth_failure, identity_alignment, delivery_result, source_ip, "
	    "source_ip_raw, source_port, arrival_date, arrival_time, "
	    "original_mail_from, original_envelope_id, reporting_mta, "
	    "incidents, dkim_domain, dkim_identity, dkim_selector, spf_dns, "
	    "reported_domains, original_rcpt_to, authentication_results, "
	    "reported_uri, h_from, h_to, h_subject, h_date, h_message_id, "
	    "h_dkim_signature, h_authentication_results, body, warnings, "
	    "source) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, "
	    "$12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, "
	    "$25, $26, $27, $28, $29, $30, $31, $32, $33, $34, $35, $36, $37) "
	    "ON CONFLICT (domain, raw_sha256, location) DO UPDATE SET "
	    "duplicates = t.duplicates + 1 RETURNING (xmax = 0)", 37, p);
	if (res == NULL)
		goto out;
	inserted = store_pq.PQgetvalue(res, 0, 0)[0] == 't';
	store_pq.PQclear(res);
	if (inserted) {
		if (store_raw(s, s->domain, &s->cb_err) != 0) {
			s->cb_failed = 1;
			goto out;
		}
		s->tally->failures++;
	} else
		s->tally->duplicates++;
	rc = 0;
out:
	for (i = 0; i < 7; i++)
		dm_buf_free(&a[i]);
	return rc == 0 ? 0 : cb_fail(s, err);
}

static int
on_problem(void *ctx, const struct dm_problem *pr, struct dm_error *err)
{
	struct store *s = ctx;

	return reject(s, pr->where, pr->error) != 0 ? cb_fail(s, err) : 0;
}

/* ---- inputs and batches ---- */

/* Every spool of the store, for init and free. */
#define SPOOLS	10
static void
spools(struct store *s, struct store_spool *all[SPOOLS])
{
	all[0] = &s->dkim;
	all[1] = &s->spf;
	all[2] = &s->b_rec;
	all[3] = &s->b_dkim;
	all[4] = &s->b_spf;
	all[5] = &s->b_log;
	all[6] = &s->late_rec;
	all[7] = &s->late_dkim;
	all[8] = &s->late_spf;
	all[9] = &s->b_roll;
}

int
store_ingest_init(struct store *s, struct dm_error *err)
{
	struct store_spool *all[SPOOLS];
	size_t i;

	dm_buf_init(&s->copy, (size_t)COPY_FLUSH * 64);
	dm_buf_init(&s->line, (size_t)DM_MAX_TEXT * 16);
	store_set_tmpdir(s, NULL);
	spools(s, all);
	for (i = 0; i < SPOOLS; i++) {
		dm_buf_init(&all[i]->mem, STORE_SPOOL_MEM + DM_MAX_TEXT * 16);
		all[i]->tmpdir = s->tmpdir;
	}
	s->sql_defer = defer_sql();
	{
		char *pol = policy_sql(18);

		if (pol == NULL || asprintf(&s->sql_begin, "WITH r AS "
		    "(INSERT INTO dmarcd.reports (domain, reporter_id, "
		    "org_name, report_id, begin_time, end_time, schema, "
		    "namespace, version, email, extra_contact_info, generator, "
		    "errors, revision, revision_of, source, location) VALUES "
		    "($1, $6, $2, $3, $4, $5, $7, $8, $9, $10, $11, $12, $13, "
		    "$14, $15, $16, $17) RETURNING id), p AS (INSERT INTO "
		    "dmarcd.policy_published (domain, report, " POLICY_COLS
		    ") SELECT $1, id, %s FROM r) SELECT id FROM r", pol) < 0)
			s->sql_begin = NULL;
		free(pol);
	}
	s->rollup = store_rollup_new(s->tmpdir);
	/*
	 * For tests/bench/analytics-bench.sh only: ingest without the daily
	 * rollup (no rows in rollup_daily, nothing added up), to measure what
	 * maintaining it costs. Not a configuration setting: the analytics
	 * read nothing else.
	 */
	{
		const char *v = getenv("DMARCD_BENCH_NO_ROLLUP");

		s->no_rollup = v != NULL && strcmp(v, "1") == 0;
	}
	if (s->sql_defer == NULL || s->sql_begin == NULL || s->rollup == NULL)
		return dm_error_set(err, DM_E_NOMEM, "out of memory");
	s->handler.ctx = s;
	s->handler.report_begin = on_report_begin;
	s->handler.record = on_record;
	s->handler.report_end = on_report_end;
	s->handler.failure = on_failure;
	s->handler.problem = on_problem;
	return 0;
}

static void
free_strings(char ***v, size_t *n)
{
	size_t i;

	for (i = 0; i < *n; i++)
		free((*v)[i]);
	free(*v);
	*v = NULL;
	*n = 0;
}

static void
clear_input(struct store *s)
{
	free_strings(&s->raw_domains, &s->raw_domain_count);
}

static void
clear_replay(struct store *s)
{
	free_strings(&s->replay_keys, &s->replay_count);
}

void
store_ingest_free(struct store *s)
{
	struct store_spool *all[SPOOLS];
	size_t i;

	clear_input(s);
	clear_replay(s);
	forget_caches(s);
	free(s->domain);
	dm_buf_free(&s->copy);
	dm_buf_free(&s->line);
	reset_batch(s);
	free(s->b_keys);
	free(s->changed);
	spools(s, all);
	for (i = 0; i < SPOOLS; i++) {
		spool_reset(all[i]);
		dm_buf_free(&all[i]->mem);
	}
	store_rollup_free(s->rollup);
	s->rollup = NULL;
	free(s->sql_begin);
	free(s->sql_defer);
	s->sql_begin = s->sql_defer = NULL;
}

void
store_set_batch(struct store *s, unsigned inputs, unsigned ms)
{
	s->batch_inputs = inputs > 0 ? inputs : 1;
	s->batch_ms = ms;
}

int
store_batch_due(const struct store *s)
{
	return s->in_txn && (s->batch_count >= s->batch_inputs ||
	    now_ms() - s->batch_start >= (double)s->batch_ms);
}

const struct dm_handler *
store_handler(struct store *s)
{
	return &s->handler;
}

int
store_input_begin(struct store *s, const struct store_input *input,
    struct store_tally *tally, struct dm_error *err)
{
	memset(tally, 0, sizeof(*tally));
	s->tally = tally;
	s->input_t0 = now_ms();
	s->input = input;
	s->cb_failed = 0;
	s->rep_state = REP_NONE;
	dm_error_clear(&s->cb_err);
	clear_input(s);
	/* Only a big input may need a second pass (REP_PROBE). */
	s->input_savepoint = input->raw.size > DEFER_MAX;
	if (begin_batch(s) != 0 || (s->input_savepoint &&
	    exec(s, "SAVEPOINT input") != 0))
		return cb_fail(s, err);
	mark_batch(s, &s->input_marks);
	return 0;
}

void
store_rollback(struct store *s)
{
	PGresult *res;

	if (s->rep_state == REP_COPY) {
		store_pq.PQputCopyEnd(s->conn, "abandoned");
		while ((res = store_pq.PQgetResult(s->conn)) != NULL)
			store_pq.PQclear(res);
	}
	s->rep_state = REP_NONE;
	if (s->in_txn && store_pq.PQstatus(s->conn) == CONNECTION_OK)
		store_pq_exec(s->conn, "ROLLBACK", &(struct dm_error){ 0 });
	s->in_txn = 0;
	s->batch_count = 0;
	reset_batch(s);
	clear_input(s);
	clear_replay(s);
	/* What the rolled back transaction made may be gone. */
	forget_caches(s);
}

int
store_input_end(struct store *s, const struct dm_error *parse_err,
    struct dm_error *err)
{
	struct store_tally *tally = s->tally;
	char rawsha[67], ms[32];
	const char *status;
	struct dm_buf *b;

	if (s->cb_failed || (parse_err != NULL && parse_err->code ==
	    DM_E_TEMP)) {
		*err = s->cb_failed ? s->cb_err : *parse_err;
		store_rollback(s);
		return -1;
	}
	if (s->rep_state == REP_DEFER) {
		/* The parser stopped inside a report without ending it:
		 * nothing of it is on the server yet; its rows go. */
		s->rep_state = REP_NONE;
		if (undo_batch(s, &s->rep_marks) != 0)
			goto fail;
	}
	if (s->rep_state == REP_COPY) {
		/* The parser stopped inside a report without ending it. */
		store_copy_end(s, "the parse stopped", &s->cb_err);
		s->rep_state = REP_NONE;
		if (exec(s, "ROLLBACK TO SAVEPOINT report") != 0)
			goto fail;
	}
	if (tally->replay) {
		if (exec(s, "ROLLBACK TO SAVEPOINT input") != 0 ||
		    undo_batch(s, &s->input_marks) != 0)
			goto fail;
		/* Whatever it made (a partition, a reporter) is undone. */
		forget_caches(s);
		return 0;
	}
	if (parse_err != NULL && parse_err->code != DM_E_NONE) {
		if (!dm_error_is_data(parse_err->code)) {
			*err = *parse_err;
			store_rollback(s);
			return -1;
		}
		if (reject(s, "", parse_err) != 0)
			goto fail;
	}
	if (tally->stored + tally->revisions + tally->failures +
	    tally->duplicates + tally->rejected == 0) {
		struct dm_error none;

		dm_error_set(&none, DM_E_DATA, "no DMARC report found");
		if (reject(s, "", &none) != 0)
			goto fail;
	}
	if (tally->rejected > 0 && tally->stored + tally->revisions +
	    tally->failures + tally->duplicates > 0)
		status = "mixed";
	else if (tally->rejected > 0)
		status = "rejected";
	else if (tally->revisions > 0)
		status = "revision";
	else if (tally->stored + tally->failures > 0)
		status = "stored";
	else
		status = "duplicate";
	/* Its ingest_log row, copied at commit. */
	bytea_param(s->input->raw.sha256, 32, rawsha);
	snprintf(ms, sizeof(ms), "%.3f", now_ms() - s->input_t0);
	b = &s->line;
	dm_buf_reset(b);
	if (copy_field(b, s->input->source, 0) != 0 ||
	    copy_field(b, s->input->message_id, 0) != 0 ||
	    copy_field(b, rawsha, 0) != 0 ||
	    copy_field(b, status, 0) != 0 ||
	    dm_buf_printf(b, "%u\t%u\t%u\t%u\t%u\t%" PRIu64 "\t%" PRIu64
	    "\t%s\t", tally->stored + tally->revisions, tally->failures,
	    tally->duplicates, tally->revisions, tally->rejected,
	    tally->records, tally->messages, ms) != 0 ||
	    copy_field(b, tally->first_error[0] != '\0' ? tally->first_error :
	    NULL, 1) != 0) {
		dm_error_set(&s->cb_err, DM_E_NOMEM, "out of memory");
		goto fail;
	}
	if (spool_add(&s->b_log, b, &s->cb_err) != 0)
		goto fail;
	if (s->input_savepoint && exec(s, "RELEASE SAVEPOINT input") != 0)
		goto fail;
	s->batch_count++;
	clear_replay(s);
	return 0;
fail:
	*err = s->cb_err;
	store_rollback(s);
	return -1;
}

int
store_commit(struct store *s, struct dm_error *err)
{
	if (!s->in_txn)
		return 0;
	if (flush_batch(s, err) != 0 || notify_changed(s, err) != 0 ||
	    store_pq_exec(s->conn, "COMMIT", err) != 0) {
		store_rollback(s);
		return -1;
	}
	s->in_txn = 0;
	s->batch_count = 0;
	reset_batch(s);
	/*
	 * Planned again in the next batch: a plan made while the tables were
	 * small (a new database) would scan them whole once they are not.
	 */
	if (s->defer_prepared) {
		s->defer_prepared = 0;
		if (store_pq_exec(s->conn, "DEALLOCATE dmarcd_defer_end",
		    err) != 0)
			return -1;
	}
	return 0;
}
