/*
 * test_unpack.c - unit tests for parser/unpack.c: finding the reports in
 * whatever arrived, through unpack_memory/unpack_fd/unpack_path with a
 * recording handler.
 *
 * Proves: reports are found by their bytes in gzip (one member, two
 * members, gzip in gzip), raw zlib, zip (several members; directories
 * and a readme passed over; zip64), mails (base64 attachment,
 * quoted-printable text/xml, message/rfc822 wrapping, an mbox From_
 * line), and are named by where they were found; trailing bytes after
 * gzip are a warning; truncated gzip, TNEF, the "unused" placeholder and
 * empty input are problem events or rejected reports that say so; a
 * decompression bomb is refused by the ratio cap and the max_input_bytes
 * cap with DM_E_LIMIT; the result counts what was found; inputs big
 * enough for the reader thread give the same results (payload hash
 * included), stop cleanly when a handler fails, and hash a rejected
 * report deterministically; gzip members are joined wherever the read
 * boundaries fall.
 *
 * Every input is built here (zlib and libzip), so the tests say exactly
 * what bytes they feed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <gnutls/crypto.h>
#include <zip.h>
#include <zlib.h>

#include "common/buf.h"
#include "common/report.h"
#include "parser/unpack.h"

/* Recorder */

#define MAX_EVENTS	16

struct event {
	char type;		/* 'R' report_end, 'F' failure, 'P' problem */
	char where[512];
	enum dm_status status;
	enum dm_error_code code;
	char msg[DM_ERROR_MSG_MAX];
	enum dm_kind kind;		/* problems */
	char warnings[4096];		/* reports: texts joined by '\n' */
	char org_name[128];
	uint64_t record_count, message_count, payload_bytes;
	unsigned char sha256[32];
};

struct recorder {
	int begins, records, ends, failures, problems;
	int fail_at_record;
	struct event events[MAX_EVENTS];
	int nevents;
};

static struct event *
next_event(struct recorder *r, char type, const char *where)
{
	struct event *e;

	if (r->nevents == MAX_EVENTS)
		fail_msg("more than %d events", MAX_EVENTS);
	e = &r->events[r->nevents++];
	memset(e, 0, sizeof(*e));
	e->type = type;
	snprintf(e->where, sizeof(e->where), "%s", where ? where : "<NULL>");
	return e;
}

static void
join_warnings(char *out, size_t size, const struct dm_warnings *w)
{
	size_t i, o = 0;

	out[0] = '\0';
	for (i = 0; w != NULL && i < w->count && o + 1 < size; i++)
		o += (size_t)snprintf(out + o, size - o, "%s\n",
		    w->items[i].text);
}

static int
rec_begin(void *ctx, const struct dm_report *rep, struct dm_error *err)
{
	struct recorder *r = ctx;

	(void)rep;
	(void)err;
	r->begins++;
	return 0;
}

static int
rec_record(void *ctx, const struct dm_report *rep, const struct dm_record *rec,
    struct dm_error *err)
{
	struct recorder *r = ctx;

	(void)rep;
	(void)rec;
	r->records++;
	if (r->fail_at_record == r->records)
		return dm_error_set(err, DM_E_TEMP, "the database is away");
	return 0;
}

static int
rec_end(void *ctx, const struct dm_report *rep, struct dm_error *err)
{
	struct recorder *r = ctx;
	struct event *e = next_event(r, 'R', rep->where);

	(void)err;
	r->ends++;
	e->status = rep->status;
	e->code = rep->error.code;
	snprintf(e->msg, sizeof(e->msg), "%s", rep->error.msg);
	join_warnings(e->warnings, sizeof(e->warnings), rep->warnings);
	snprintf(e->org_name, sizeof(e->org_name), "%s",
	    rep->org_name ? rep->org_name : "<NULL>");
	e->record_count = rep->record_count;
	e->message_count = rep->message_count;
	e->payload_bytes = rep->payload_bytes;
	memcpy(e->sha256, rep->payload_sha256, 32);
	return 0;
}

static int
rec_failure(void *ctx, const struct dm_failure *f, struct dm_error *err)
{
	struct recorder *r = ctx;
	struct event *e = next_event(r, 'F', f->where);

	(void)err;
	r->failures++;
	e->status = f->status;
	e->code = f->error.code;
	snprintf(e->msg, sizeof(e->msg), "%s", f->error.msg);
	join_warnings(e->warnings, sizeof(e->warnings), f->warnings);
	return 0;
}

static int
rec_problem(void *ctx, const struct dm_problem *p, struct dm_error *err)
{
	struct recorder *r = ctx;
	struct event *e = next_event(r, 'P', p->where);

	(void)err;
	r->problems++;
	e->kind = p->kind;
	e->code = p->error->code;
	snprintf(e->msg, sizeof(e->msg), "%s", p->error->msg);
	return 0;
}

static void
handler_for(struct recorder *r, struct dm_handler *h)
{
	memset(h, 0, sizeof(*h));
	h->ctx = r;
	h->report_begin = rec_begin;
	h->record = rec_record;
	h->report_end = rec_end;
	h->failure = rec_failure;
	h->problem = rec_problem;
}

struct run {
	struct recorder rec;
	struct unpack_result result;
	struct dm_error err;
	int rc;
};

/* run_fail - unpack data; the record handler fails at record fail_at. */
static void
run_fail(struct run *run, const void *data, size_t len,
    const struct unpack_options *opt, int fail_at)
{
	struct dm_handler h;
	struct unpack_options defaults;

	if (opt == NULL) {
		unpack_options_init(&defaults);
		opt = &defaults;
	}
	memset(run, 0, sizeof(*run));
	run->rec.fail_at_record = fail_at;
	handler_for(&run->rec, &h);
	dm_error_clear(&run->err);
	run->rc = unpack_memory(data, len, "test-input", opt, &h,
	    &run->result, &run->err);
}

static void
run_with(struct run *run, const void *data, size_t len,
    const struct unpack_options *opt)
{
	run_fail(run, data, len, opt, 0);
}

static void
run_mem(struct run *run, const void *data, size_t len)
{
	run_fail(run, data, len, NULL, 0);
}

static void
print_events(const struct run *run)
{
	int i;

	print_message("# rc=%d err=%s\n", run->rc, run->err.msg);
	for (i = 0; i < run->rec.nevents; i++)
		print_message("# %c where='%s' status=%d code=%d msg='%s'\n",
		    run->rec.events[i].type, run->rec.events[i].where,
		    (int)run->rec.events[i].status,
		    (int)run->rec.events[i].code, run->rec.events[i].msg);
}

#define assert_contains(hay, needle) do {				\
	if (strstr((hay), (needle)) == NULL)				\
		fail_msg("\"%s\" does not contain \"%s\"", (hay),	\
		    (needle));						\
} while (0)

/* The only event, which must be of this type. */
static const struct event *
only_event(const struct run *run, char type)
{
	if (run->rec.nevents != 1 || run->rec.events[0].type != type) {
		print_events(run);
		fail_msg("want exactly one '%c' event, got %d", type,
		    run->rec.nevents);
	}
	return &run->rec.events[0];
}

/* Inputs */

#define XML_DECL "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"

#define META(org, id) \
	"<report_metadata><org_name>" org "</org_name>" \
	"<email>dmarc@" org "</email><report_id>" id "</report_id>" \
	"<date_range><begin>1700006400</begin><end>1700092799</end>" \
	"</date_range></report_metadata>\n" \
	"<policy_published><domain>example.com</domain><adkim>r</adkim>" \
	"<aspf>r</aspf><p>none</p><pct>100</pct></policy_published>\n"

#define RECORD(ip, count) \
	"<record><row><source_ip>" ip "</source_ip><count>" count "</count>" \
	"<policy_evaluated><disposition>none</disposition><dkim>pass</dkim>" \
	"<spf>pass</spf></policy_evaluated></row><identifiers>" \
	"<header_from>example.com</header_from></identifiers><auth_results>" \
	"<dkim><domain>example.com</domain><result>pass</result></dkim>" \
	"<spf><domain>example.com</domain><result>pass</result></spf>" \
	"</auth_results></record>\n"

/* Two records, 3 + 4 messages. */
static const char report_a[] =
	XML_DECL "<feedback>\n" META("a.example", "A-1")
	RECORD("192.0.2.1", "3") RECORD("192.0.2.2", "4") "</feedback>\n";
/* One record, 5 messages. */
static const char report_b[] =
	XML_DECL "<feedback>\n" META("b.example", "B-1")
	RECORD("198.51.100.1", "5") "</feedback>\n";
/* No record: rejected. */
static const char report_empty[] =
	XML_DECL "<feedback>\n" META("c.example", "C-1") "</feedback>\n";

/*
 * deflate with zlib: window_bits 15 + 16 for gzip, 15 for zlib; level 0
 * stores, so that the output size is known to the byte.
 */
static unsigned char *
compress_level(const void *in, size_t len, int window_bits, int level,
    size_t *len_r)
{
	z_stream z;
	unsigned char *out;
	size_t bound;

	memset(&z, 0, sizeof(z));
	assert_int_equal(deflateInit2(&z, level, Z_DEFLATED, window_bits, 8,
	    Z_DEFAULT_STRATEGY), Z_OK);
	bound = deflateBound(&z, (uLong)len) + 64;
	out = malloc(bound);
	assert_non_null(out);
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)len;
	z.next_out = out;
	z.avail_out = (uInt)bound;
	assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
	*len_r = bound - z.avail_out;
	deflateEnd(&z);
	return out;
}

static unsigned char *
compress_mem(const void *in, size_t len, int window_bits, size_t *len_r)
{
	return compress_level(in, len, window_bits, 9, len_r);
}

static unsigned char *
gzip_mem(const void *in, size_t len, size_t *len_r)
{
	return compress_mem(in, len, 15 + 16, len_r);
}

static unsigned char *
gzip_str(const char *s, size_t *len_r)
{
	return gzip_mem(s, strlen(s), len_r);
}

/* gzip of head + pattern * repeat + tail, streamed through deflate. */
static unsigned char *
gzip_repeat(const char *head, const char *pattern, size_t repeat,
    const char *tail, size_t *len_r)
{
	z_stream z;
	unsigned char *out;
	size_t alloc = 1u << 20, plen = strlen(pattern), i;
	char block[64 * 1024];
	size_t per_block = sizeof(block) / plen, fill;

	memset(&z, 0, sizeof(z));
	assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8,
	    Z_DEFAULT_STRATEGY), Z_OK);
	out = malloc(alloc);
	assert_non_null(out);
	z.next_out = out;
	z.avail_out = (uInt)alloc;
	z.next_in = (Bytef *)(uintptr_t)head;
	z.avail_in = (uInt)strlen(head);
	assert_int_equal(deflate(&z, Z_NO_FLUSH), Z_OK);
	for (fill = 0; fill < per_block; fill++)
		memcpy(block + fill * plen, pattern, plen);
	for (i = 0; i < repeat; i += per_block) {
		size_t n = repeat - i < per_block ? repeat - i : per_block;

		z.next_in = (Bytef *)block;
		z.avail_in = (uInt)(n * plen);
		assert_int_equal(deflate(&z, Z_NO_FLUSH), Z_OK);
		assert_true(z.avail_out > 0);
	}
	z.next_in = (Bytef *)(uintptr_t)tail;
	z.avail_in = (uInt)strlen(tail);
	assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
	*len_r = alloc - z.avail_out;
	deflateEnd(&z);
	return out;
}

struct zip_entry {
	const char *name;	/* ending in '/': a directory */
	const void *data;
	size_t len;
};

/* A zip archive in memory, written by libzip through a temporary file. */
static unsigned char *
zip_mem(const struct zip_entry *entries, size_t count, size_t *len_r)
{
	const char *dir = getenv("TMPDIR");
	char path[4096];
	zip_t *za;
	int fd, zerr;
	size_t i;
	FILE *fp;
	long size;
	unsigned char *out;

	snprintf(path, sizeof(path), "%s/test_unpack-XXXXXX",
	    dir != NULL && dir[0] != '\0' ? dir : "/tmp");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	za = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &zerr);
	assert_non_null(za);
	for (i = 0; i < count; i++) {
		size_t nlen = strlen(entries[i].name);

		if (entries[i].name[nlen - 1] == '/') {
			assert_true(zip_dir_add(za, entries[i].name,
			    ZIP_FL_ENC_UTF_8) >= 0);
		} else {
			zip_source_t *src = zip_source_buffer(za,
			    entries[i].data, entries[i].len, 0);

			assert_non_null(src);
			assert_true(zip_file_add(za, entries[i].name, src,
			    ZIP_FL_ENC_UTF_8) >= 0);
		}
	}
	assert_int_equal(zip_close(za), 0);
	fp = fopen(path, "rb");
	assert_non_null(fp);
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	size = ftell(fp);
	assert_true(size > 0);
	rewind(fp);
	out = malloc((size_t)size);
	assert_non_null(out);
	assert_int_equal(fread(out, 1, (size_t)size, fp), (size_t)size);
	fclose(fp);
	unlink(path);
	*len_r = (size_t)size;
	return out;
}

/* Mail building */

static void
put(struct dm_buf *b, const char *fmt, ...) DM_PRINTF(2, 3);

static void
put(struct dm_buf *b, const char *fmt, ...)
{
	char small[2048];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	assert_true(n >= 0 && (size_t)n < sizeof(small));
	assert_int_equal(dm_buf_append(b, small, (size_t)n), 0);
}

static void
put_base64(struct dm_buf *b, const unsigned char *in, size_t len)
{
	static const char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char line[80];
	size_t i, o = 0;

	for (i = 0; i < len; i += 3) {
		unsigned v = (unsigned)in[i] << 16;

		if (i + 1 < len)
			v |= (unsigned)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		line[o++] = alphabet[(v >> 18) & 63];
		line[o++] = alphabet[(v >> 12) & 63];
		line[o++] = i + 1 < len ? alphabet[(v >> 6) & 63] : '=';
		line[o++] = i + 2 < len ? alphabet[v & 63] : '=';
		if (o == 76 || i + 3 >= len) {
			assert_int_equal(dm_buf_append(b, line, o), 0);
			assert_int_equal(dm_buf_append(b, "\r\n", 2), 0);
			o = 0;
		}
	}
}

/* Quoted-printable, soft line breaks every 70 characters. */
static void
put_qp(struct dm_buf *b, const char *in)
{
	size_t col = 0;

	for (; *in != '\0'; in++) {
		unsigned char c = (unsigned char)*in;
		char enc[4];

		if (c == '\n') {
			put(b, "\r\n");
			col = 0;
			continue;
		}
		if (col >= 70) {
			put(b, "=\r\n");
			col = 0;
		}
		if (c == '=' || c >= 0x7f || c < 0x20) {
			snprintf(enc, sizeof(enc), "=%02X", c);
			put(b, "%s", enc);
			col += 3;
		} else {
			put(b, "%c", c);
			col++;
		}
	}
}

static void
put_mail_headers(struct dm_buf *b, const char *content_type)
{
	put(b, "From: dmarcreport@microsoft.com\r\n"
	    "To: dmarc@example.org\r\n"
	    "Subject: Report Domain: example.org Submitter: "
	    "protection.outlook.com\r\n"
	    "Date: Fri, 02 Jan 2026 04:12:09 +0000\r\n"
	    "Message-ID: <8f1e6c1c2b7a4d4e9a1f@protection.outlook.com>\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: %s\r\n\r\n", content_type);
}

/* A mail with a text part and the gzip report as a base64 attachment. */
static void
put_gzip_mail(struct dm_buf *b, const char *xml)
{
	unsigned char *gz;
	size_t gz_len;

	gz = gzip_str(xml, &gz_len);
	put_mail_headers(b, "multipart/mixed; boundary=\"=-=B1=-=\"");
	put(b, "--=-=B1=-=\r\n"
	    "Content-Type: text/plain; charset=\"us-ascii\"\r\n"
	    "Content-Transfer-Encoding: 7bit\r\n\r\n"
	    "This is a DMARC aggregate report from Microsoft.\r\n\r\n"
	    "--=-=B1=-=\r\n"
	    "Content-Type: application/gzip\r\n"
	    "Content-Transfer-Encoding: base64\r\n"
	    "Content-Disposition: attachment; "
	    "filename=\"protection.outlook.com!example.org!1700006400!"
	    "1700092799.xml.gz\"\r\n\r\n");
	put_base64(b, gz, gz_len);
	put(b, "\r\n--=-=B1=-=--\r\n");
	free(gz);
}

/* Fixture: a buffer for mails. */

static int
setup(void **state)
{
	struct dm_buf *b = malloc(sizeof(*b));

	if (b == NULL)
		return -1;
	dm_buf_init(b, 64u << 20);
	*state = b;
	return 0;
}

static int
teardown(void **state)
{
	struct dm_buf *b = *state;

	dm_buf_free(b);
	free(b);
	return 0;
}

/* Checks shared by the tests that find report_a alone. */
static void
assert_report_a_as(const struct run *run, const char *where,
    int exact_bytes)
{
	const struct event *e;
	unsigned char sha[32];

	if (run->rc != 0) {
		print_events(run);
		fail_msg("unpack failed: %s", run->err.msg);
	}
	e = only_event(run, 'R');
	if (e->status != DM_STATUS_OK)
		fail_msg("report rejected: %s", e->msg);
	assert_string_equal(e->where, where);
	assert_string_equal(e->org_name, "a.example");
	assert_true(e->record_count == 2);
	assert_true(e->message_count == 7);
	assert_int_equal(run->rec.records, 2);
	if (exact_bytes) {
		assert_true(e->payload_bytes == strlen(report_a));
		assert_int_equal(gnutls_hash_fast(GNUTLS_DIG_SHA256, report_a,
		    strlen(report_a), sha), 0);
		assert_memory_equal(e->sha256, sha, 32);
	}
	assert_int_equal(run->result.kind, DM_KIND_AGGREGATE);
	assert_int_equal(run->result.aggregate_reports, 1);
	assert_int_equal(run->result.rejected, 0);
	assert_int_equal(run->result.problems, 0);
	assert_true(run->result.records == 2);
	assert_true(run->result.messages == 7);
}

static void
assert_report_a(const struct run *run, const char *where)
{
	assert_report_a_as(run, where, 1);
}

/* Plain, gzip, zlib */

static void
test_plain_xml(void **state)
{
	struct run run;

	(void)state;
	run_mem(&run, report_a, strlen(report_a));
	assert_report_a(&run, "");
}

static void
test_xml_with_bom(void **state)
{
	struct run run;
	char doc[sizeof(report_a) + 3];

	(void)state;
	memcpy(doc, "\xEF\xBB\xBF", 3);
	memcpy(doc + 3, report_a, sizeof(report_a));
	run_mem(&run, doc, strlen(doc));
	assert_int_equal(run.rc, 0);
	assert_int_equal(only_event(&run, 'R')->status, DM_STATUS_OK);
	assert_true(run.result.records == 2);
}

static void
test_gzip(void **state)
{
	struct run run;
	unsigned char *gz;
	size_t len;

	(void)state;
	gz = gzip_str(report_a, &len);
	run_mem(&run, gz, len);
	free(gz);
	assert_report_a(&run, "gzip");
	assert_string_equal(run.rec.events[0].warnings, "");
}

/* RFC 1952: a gzip file may hold several members, read as one stream. */
static void
test_gzip_two_members(void **state)
{
	struct run run;
	unsigned char *gz1, *gz2, *both;
	size_t half = strlen(report_a) / 2, len1, len2;

	(void)state;
	gz1 = gzip_mem(report_a, half, &len1);
	gz2 = gzip_mem(report_a + half, strlen(report_a) - half, &len2);
	both = malloc(len1 + len2);
	assert_non_null(both);
	memcpy(both, gz1, len1);
	memcpy(both + len1, gz2, len2);
	run_mem(&run, both, len1 + len2);
	free(gz1);
	free(gz2);
	free(both);
	assert_report_a(&run, "gzip");
}

/*
 * Two members where the first ends short of the inflate layer's 64 KiB
 * input read by `short_by` bytes. unpack sniffs 4096 bytes first, so the
 * reads end at 4096 + 65536 * k. With one byte left over, the next
 * member's magic (1f 8b) is split across two reads.
 */
static void
check_members_at_read_boundary(struct dm_buf *b, size_t short_by)
{
	static const char tail[] = RECORD("192.0.2.2", "4") "</feedback>\n";
	const size_t target = 4096 + 65536 - short_by;
	unsigned char *m1 = NULL, *m2, *both;
	size_t len1 = 0, len2, pad, i;
	uint32_t seed = 1;
	struct run run;
	const struct event *e;

	dm_buf_reset(b);
	put(b, "%s", XML_DECL "<feedback>\n" META("a.example", "A-1")
	    RECORD("192.0.2.1", "3"));
	/* Incompressible filler, in pieces under the text cap. */
	while (b->len < 69000) {
		char piece[512];

		for (i = 0; i < sizeof(piece) - 1; i++) {
			seed = seed * 1103515245u + 12345u;
			piece[i] = "abcdefghijklmnopqrstuvwxyz0123456789"
			    [(seed >> 16) % 36];
		}
		piece[sizeof(piece) - 1] = '\0';
		put(b, "<extension>%s</extension>\n", piece);
	}
	/* Stored blocks: one more byte in, one more byte out. */
	for (i = 0; i < 4; i++) {
		free(m1);
		m1 = compress_level(b->data, b->len, 15 + 16, 0, &len1);
		if (len1 >= target)
			break;
		for (pad = target - len1; pad > 0; pad--)
			put(b, " ");
	}
	assert_int_equal(len1, target);
	m2 = gzip_str(tail, &len2);
	both = malloc(len1 + len2);
	assert_non_null(both);
	memcpy(both, m1, len1);
	memcpy(both + len1, m2, len2);
	run_mem(&run, both, len1 + len2);
	free(m1);
	free(m2);
	free(both);
	assert_int_equal(run.rc, 0);
	e = only_event(&run, 'R');
	if (e->status != DM_STATUS_OK)
		fail_msg("first member %zu bytes short of the read: %s",
		    short_by, e->msg);
	assert_true(e->record_count == 2);
	assert_true(e->payload_bytes == b->len + strlen(tail));
	if (strstr(e->warnings, "trailing") != NULL)
		fail_msg("the second member was taken for trailing data: %s",
		    e->warnings);
}

static void
test_gzip_members_at_read_boundary(void **state)
{
	check_members_at_read_boundary(*state, 0);
	check_members_at_read_boundary(*state, 2);
	check_members_at_read_boundary(*state, 1);
}

static void
test_gzip_in_gzip(void **state)
{
	struct run run;
	unsigned char *inner, *outer;
	size_t inner_len, outer_len;

	(void)state;
	inner = gzip_str(report_a, &inner_len);
	outer = gzip_mem(inner, inner_len, &outer_len);
	run_mem(&run, outer, outer_len);
	free(inner);
	free(outer);
	assert_report_a(&run, "gzip: gzip");
}

static void
test_zlib(void **state)
{
	struct run run;
	unsigned char *z;
	size_t len;

	(void)state;
	z = compress_mem(report_a, strlen(report_a), 15, &len);
	run_mem(&run, z, len);
	free(z);
	assert_report_a(&run, "zlib");
}

static void
test_gzip_trailing_garbage_warns(void **state)
{
	struct run run;
	unsigned char *gz, *with;
	size_t len;

	(void)state;
	gz = gzip_str(report_a, &len);
	with = malloc(len + 8);
	assert_non_null(with);
	memcpy(with, gz, len);
	memcpy(with + len, "GARBAGE!", 8);
	run_mem(&run, with, len + 8);
	free(gz);
	free(with);
	assert_report_a(&run, "gzip");
	assert_contains(run.rec.events[0].warnings, "8 bytes of trailing "
	    "data after the end of the gzip stream ignored");
}

/* Truncated gzip (keep of every 100 compressed bytes): said so, as a
 * problem or as a rejected report. */
static void
check_truncated(const char *xml, size_t keep)
{
	struct run run;
	unsigned char *gz;
	size_t len;
	const struct event *e;

	gz = gzip_str(xml, &len);
	run_mem(&run, gz, len * keep / 100);
	free(gz);
	assert_int_equal(run.rc, 0);
	assert_int_equal(run.rec.nevents, 1);
	e = &run.rec.events[0];
	if (e->type == 'R')
		assert_int_equal(e->status, DM_STATUS_REJECTED);
	else
		assert_int_equal(e->type, 'P');
	assert_int_equal(e->code, DM_E_DATA);
	assert_contains(e->msg, "truncated");
	assert_int_equal(run.result.rejected, 1);
	assert_true(run.result.records == 0);
}

static void
test_gzip_truncated(void **state)
{
	(void)state;
	/* Small: the cut is seen while the content is sniffed. */
	check_truncated(report_a, 99);
	check_truncated(report_a, 60);
}

static void
test_gzip_truncated_big(void **state)
{
	struct dm_buf *b = *state;
	int i;

	/* Big: the cut comes while the report is parsed. */
	put(b, "%s", XML_DECL "<feedback>\n" META("t.example", "T-1"));
	for (i = 0; i < 3000; i++)
		put(b, "<record><row><source_ip>10.0.%d.%d</source_ip>"
		    "<count>%d</count></row><identifiers><header_from>"
		    "example.com</header_from></identifiers></record>\n",
		    i / 256, i % 256, i % 97 + 1);
	put(b, "</feedback>\n");
	check_truncated(dm_buf_cstr(b), 70);
}

/* Zip */

static void
test_zip_members(void **state)
{
	static const char readme[] = "This archive holds DMARC reports.\n";
	const struct zip_entry entries[] = {
		{ "reports/", NULL, 0 },
		{ "reports/a.xml", report_a, strlen(report_a) },
		{ "README.txt", readme, strlen(readme) },
		{ "reports/b.xml", report_b, strlen(report_b) },
	};
	struct run run;
	unsigned char *zip;
	size_t len;

	(void)state;
	zip = zip_mem(entries, 4, &len);
	run_mem(&run, zip, len);
	free(zip);
	if (run.rc != 0 || run.rec.nevents != 2) {
		print_events(&run);
		fail_msg("want two reports");
	}
	assert_int_equal(run.rec.events[0].type, 'R');
	assert_int_equal(run.rec.events[0].status, DM_STATUS_OK);
	assert_string_equal(run.rec.events[0].where,
	    "zip member 'reports/a.xml'");
	assert_string_equal(run.rec.events[0].org_name, "a.example");
	assert_int_equal(run.rec.events[1].type, 'R');
	assert_int_equal(run.rec.events[1].status, DM_STATUS_OK);
	assert_string_equal(run.rec.events[1].where,
	    "zip member 'reports/b.xml'");
	assert_string_equal(run.rec.events[1].org_name, "b.example");
	assert_int_equal(run.result.aggregate_reports, 2);
	assert_int_equal(run.result.problems, 0);
	assert_int_equal(run.result.rejected, 0);
	assert_true(run.result.records == 3);
	assert_true(run.result.messages == 12);
}

static void
test_zip_without_report(void **state)
{
	static const char readme[] = "nothing here\n";
	const struct zip_entry entries[] = {
		{ "docs/", NULL, 0 },
		{ "README.txt", readme, strlen(readme) },
	};
	struct run run;
	unsigned char *zip;
	size_t len;
	const struct event *e;

	(void)state;
	zip = zip_mem(entries, 2, &len);
	run_mem(&run, zip, len);
	free(zip);
	assert_int_equal(run.rc, 0);
	e = only_event(&run, 'P');
	assert_contains(e->msg, "zip archive holds no report");
	assert_contains(e->msg, "2 member(s), 2 skipped");
}

static void
test_zip_member_cap(void **state)
{
	const struct zip_entry entries[] = {
		{ "a.xml", report_a, strlen(report_a) },
		{ "b.xml", report_b, strlen(report_b) },
		{ "c.xml", report_b, strlen(report_b) },
	};
	struct unpack_options opt;
	struct run run;
	unsigned char *zip;
	size_t len;
	const struct event *e;

	(void)state;
	unpack_options_init(&opt);
	opt.limits.max_zip_members = 2;
	zip = zip_mem(entries, 3, &len);
	run_with(&run, zip, len, &opt);
	free(zip);
	e = only_event(&run, 'P');
	assert_int_equal(e->code, DM_E_LIMIT);
	assert_contains(e->msg, "3 members, more than the limit of 2");
	assert_int_equal(run.rec.ends, 0);
}

/*
 * Members that each fit the byte budget but not together: the archive is
 * refused from its central directory, before the first (valid) member is
 * read, so no report comes out of it.
 */
static void
test_zip_declared_total(void **state)
{
	const struct zip_entry entries[] = {
		{ "a.xml", report_a, strlen(report_a) },
		{ "b.xml", report_b, strlen(report_b) },
		{ "c.xml", report_b, strlen(report_b) },
	};
	struct unpack_options opt;
	struct run run;
	unsigned char *zip;
	size_t len;
	const struct event *e;

	(void)state;
	unpack_options_init(&opt);
	opt.limits.max_ratio = 0;
	opt.limits.max_input_bytes = strlen(report_a) + strlen(report_b) + 1;
	zip = zip_mem(entries, 3, &len);
	run_with(&run, zip, len, &opt);
	e = only_event(&run, 'P');
	assert_int_equal(e->code, DM_E_LIMIT);
	assert_contains(e->msg, "zip archive declares");
	assert_contains(e->msg, "in 3 members, more than the limit of");
	assert_contains(e->msg, "no member read");
	assert_int_equal(run.rec.ends, 0);
	assert_true(run.result.records == 0);

	/* With room for all three, all three are read. */
	opt.limits.max_input_bytes = strlen(report_a) + 2 * strlen(report_b);
	run_with(&run, zip, len, &opt);
	free(zip);
	assert_int_equal(run.rc, 0);
	assert_int_equal(run.result.aggregate_reports, 3);
	assert_int_equal(run.result.problems, 0);
}

/*
 * A file of tests/data (top_srcdir is set by make check); NULL when the
 * source tree is not known, and the test is skipped.
 */
static unsigned char *
data_file(const char *name, char *path, size_t path_size, size_t *len_r)
{
	const char *top = getenv("top_srcdir");
	unsigned char *data;
	FILE *f;
	long size;

	if (top == NULL || top[0] == '\0')
		return NULL;
	snprintf(path, path_size, "%s/tests/data/%s", top, name);
	f = fopen(path, "rb");
	if (f == NULL)
		fail_msg("%s: cannot open", path);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	size = ftell(f);
	assert_true(size > 0);
	rewind(f);
	data = malloc((size_t)size);
	assert_non_null(data);
	assert_int_equal(fread(data, 1, (size_t)size, f), (size_t)size);
	fclose(f);
	*len_r = (size_t)size;
	return data;
}

/* Two reports of one record each, read from memory and from the file. */
static void
assert_zip64_read(const char *name)
{
	struct unpack_options opt;
	struct unpack_result result;
	struct recorder rec;
	struct dm_handler h;
	struct dm_error err;
	struct run run;
	char path[4096];
	unsigned char *zip;
	size_t len = 0;

	zip = data_file(name, path, sizeof(path), &len);
	if (zip == NULL)
		skip();
	run_mem(&run, zip, len);
	free(zip);
	if (run.rc != 0 || run.rec.nevents != 2) {
		print_events(&run);
		fail_msg("%s: want two reports", name);
	}
	assert_int_equal(run.rec.events[0].type, 'R');
	assert_int_equal(run.rec.events[0].status, DM_STATUS_OK);
	assert_string_equal(run.rec.events[0].where, "zip member 'a.xml'");
	assert_int_equal(run.rec.events[1].type, 'R');
	assert_int_equal(run.rec.events[1].status, DM_STATUS_OK);
	assert_string_equal(run.rec.events[1].where, "zip member 'b.xml'");
	assert_int_equal(run.result.aggregate_reports, 2);
	assert_int_equal(run.result.problems, 0);
	assert_true(run.result.records == 2);
	assert_true(run.result.messages == 6);

	/* From the file: the directory is read with pread(), not memcpy. */
	unpack_options_init(&opt);
	memset(&rec, 0, sizeof(rec));
	handler_for(&rec, &h);
	dm_error_clear(&err);
	assert_int_equal(unpack_path(path, &opt, &h, &result, &err), 0);
	assert_int_equal(result.aggregate_reports, 2);
	assert_int_equal(result.problems, 0);
	assert_true(result.records == 2);
}

/*
 * Zip64 (tests/data/adversarial/make-cases.py): sizes and offsets of
 * 0xffffffff in the headers, the real ones in the zip64 extra fields,
 * and a zip64 end record; read like the plain zip, not refused as
 * overlapping. One archive keeps real values in the plain end record as
 * well, the other only 0xffff and 0xffffffff there.
 */
static void
test_zip64(void **state)
{
	(void)state;
	assert_zip64_read("adversarial/zip64-two-reports.zip");
	assert_zip64_read("adversarial/zip64-sentinel-end.zip");
}

/*
 * One member over the ratio cap beside two good ones: the bomb gets its
 * own problem, the good reports are still read.
 */
static void
test_zip_bomb_member_alone(void **state)
{
	static const char head[] = "<?xml version=\"1.0\"?><feedback><!--";
	const size_t bomb_len = 4u << 20;
	char *bomb;
	struct zip_entry entries[] = {
		{ "a.xml", report_a, strlen(report_a) },
		{ "bomb.xml", NULL, 0 },
		{ "b.xml", report_b, strlen(report_b) },
	};
	struct run run;
	unsigned char *zip;
	size_t len;
	int i, reports = 0, problems = 0;

	(void)state;
	bomb = malloc(bomb_len);
	assert_non_null(bomb);
	memset(bomb, ' ', bomb_len);
	memcpy(bomb, head, strlen(head));
	entries[1].data = bomb;
	entries[1].len = bomb_len;
	zip = zip_mem(entries, 3, &len);
	free(bomb);
	run_mem(&run, zip, len);
	free(zip);
	for (i = 0; i < run.rec.nevents; i++) {
		const struct event *e = &run.rec.events[i];

		if (e->type == 'R' && e->status == DM_STATUS_OK)
			reports++;
		if (e->type == 'P') {
			problems++;
			assert_string_equal(e->where, "zip member 'bomb.xml'");
			assert_int_equal(e->code, DM_E_LIMIT);
			assert_contains(e->msg, "a ratio above the limit");
		}
	}
	if (run.rc != 0 || reports != 2 || problems != 1) {
		print_events(&run);
		fail_msg("want two reports and the bomb's problem");
	}
	assert_int_equal(run.result.aggregate_reports, 2);
	assert_int_equal(run.result.problems, 1);
	assert_int_equal(run.result.rejected, 1);
	assert_true(run.result.records == 3);
}

static void
put_le16(unsigned char *p, size_t v)
{
	p[0] = (unsigned char)(v & 0xff);
	p[1] = (unsigned char)((v >> 8) & 0xff);
}

static void
put_le32(unsigned char *p, size_t v)
{
	put_le16(p, v & 0xffff);
	put_le16(p + 2, (v >> 16) & 0xffff);
}

static size_t
get_le32(const unsigned char *p)
{
	return (size_t)p[0] | (size_t)p[1] << 8 | (size_t)p[2] << 16 |
	    (size_t)p[3] << 24;
}

/*
 * A one-member archive (libzip's, no comment) with its central directory
 * entry twice, the second renamed 'b...': two names for one local header.
 */
static unsigned char *
zip_duplicate_entry(const unsigned char *zip, size_t len, size_t *len_r)
{
	size_t eocd = len - 22, cd_off, cd_size;
	unsigned char *out;

	assert_int_equal(get_le32(zip + eocd), 0x06054b50);
	cd_size = get_le32(zip + eocd + 12);
	cd_off = get_le32(zip + eocd + 16);
	assert_int_equal(cd_off + cd_size, eocd);
	out = malloc(len + cd_size);
	assert_non_null(out);
	memcpy(out, zip, eocd);
	memcpy(out + eocd, zip + cd_off, cd_size);
	out[eocd + 46] = 'b';
	memcpy(out + eocd + cd_size, zip + eocd, 22);
	put_le16(out + eocd + cd_size + 8, 2);
	put_le16(out + eocd + cd_size + 10, 2);
	put_le32(out + eocd + cd_size + 12, 2 * cd_size);
	*len_r = len + cd_size;
	return out;
}

/* Overlapping members are refused from the central directory, before
 * either is read, however small they are. */
static void
test_zip_overlapping_members(void **state)
{
	const struct zip_entry entry = { "a.xml", report_a, strlen(report_a) };
	struct run run;
	unsigned char *zip, *twice;
	size_t len, twice_len;
	const struct event *e;

	(void)state;
	zip = zip_mem(&entry, 1, &len);
	run_mem(&run, zip, len);
	assert_int_equal(only_event(&run, 'R')->status, DM_STATUS_OK);
	twice = zip_duplicate_entry(zip, len, &twice_len);
	free(zip);
	run_mem(&run, twice, twice_len);
	free(twice);
	assert_int_equal(run.rc, 0);
	e = only_event(&run, 'P');
	assert_int_equal(e->code, DM_E_DATA);
	assert_contains(e->msg, "zip members 'a.xml' and 'b.xml' overlap "
	    "(local headers at byte offsets 0 and 0)");
	assert_int_equal(run.rec.ends, 0);
	assert_true(run.result.records == 0);
}

/* Result counters over one input with several reports. */
static void
test_result_counters(void **state)
{
	static const char readme[] = "readme\n";
	const struct zip_entry entries[] = {
		{ "a.xml", report_a, strlen(report_a) },
		{ "empty.xml", report_empty, strlen(report_empty) },
		{ "readme.txt", readme, strlen(readme) },
		{ "b.xml", report_b, strlen(report_b) },
	};
	struct run run;
	unsigned char *zip;
	size_t len;

	(void)state;
	zip = zip_mem(entries, 4, &len);
	run_mem(&run, zip, len);
	free(zip);
	assert_int_equal(run.rc, 0);
	assert_int_equal(run.rec.ends, 3);
	assert_int_equal(run.rec.events[1].status, DM_STATUS_REJECTED);
	assert_contains(run.rec.events[1].msg, "no <record>");
	assert_int_equal(run.result.kind, DM_KIND_AGGREGATE);
	assert_int_equal(run.result.aggregate_reports, 3);
	assert_int_equal(run.result.failure_reports, 0);
	assert_int_equal(run.result.problems, 0);
	assert_int_equal(run.result.rejected, 1);
	/* Totals of the accepted reports only (unpack.h). */
	assert_true(run.result.records == 3);
	assert_true(run.result.messages == 12);
}

/* Mail */

static void
test_mail_base64_gzip_attachment(void **state)
{
	struct dm_buf *b = *state;
	struct run run;

	put_gzip_mail(b, report_a);
	run_mem(&run, b->data, b->len);
	assert_report_a(&run, "mail part 2 'protection.outlook.com!"
	    "example.org!1700006400!1700092799.xml.gz' (application/gzip): "
	    "gzip");
}

static void
test_mail_zip_attachment(void **state)
{
	const struct zip_entry entries[] = {
		{ "a.xml", report_a, strlen(report_a) },
	};
	struct dm_buf *b = *state;
	struct run run;
	unsigned char *zip;
	size_t len;

	zip = zip_mem(entries, 1, &len);
	put_mail_headers(b, "multipart/mixed; boundary=\"z\"");
	put(b, "--z\r\nContent-Type: application/zip; name=\"r.zip\"\r\n"
	    "Content-Transfer-Encoding: base64\r\n\r\n");
	put_base64(b, zip, len);
	put(b, "--z--\r\n");
	free(zip);
	run_mem(&run, b->data, b->len);
	assert_report_a(&run, "mail part 1 'r.zip' (application/zip): "
	    "zip member 'a.xml'");
}

static void
test_mail_quoted_printable_xml(void **state)
{
	struct dm_buf *b = *state;
	struct run run;

	put(b, "From: noreply@mail.example\r\n"
	    "To: dmarc@example.org\r\n"
	    "Subject: Report domain: example.com\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: text/xml; charset=\"utf-8\"\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
	put_qp(b, report_a);
	/* The encoding is really there. */
	assert_non_null(strstr(b->data, "version=3D\"1.0\""));
	run_mem(&run, b->data, b->len);
	/* Hard line breaks decode to CRLF: not the same bytes. */
	assert_report_a_as(&run, "", 0);
}

static void
test_mail_rfc822_wrapped(void **state)
{
	struct dm_buf *b = *state;
	struct dm_buf inner;
	struct run run;
	const struct event *e;

	dm_buf_init(&inner, 1u << 20);
	put_gzip_mail(&inner, report_a);
	put(b, "From: postmaster@forwarder.example\r\n"
	    "To: dmarc@example.org\r\n"
	    "Subject: Fwd: Report Domain: example.org\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n"
	    "--outer\r\n"
	    "Content-Type: text/plain\r\n\r\n"
	    "Forwarded report.\r\n\r\n"
	    "--outer\r\n"
	    "Content-Type: message/rfc822\r\n\r\n");
	assert_int_equal(dm_buf_append(b, inner.data, inner.len), 0);
	put(b, "\r\n--outer--\r\n");
	dm_buf_free(&inner);
	run_mem(&run, b->data, b->len);
	assert_int_equal(run.rc, 0);
	e = only_event(&run, 'R');
	assert_int_equal(e->status, DM_STATUS_OK);
	assert_contains(e->where, "mail part 2 (message/rfc822): attached "
	    "message: mail part 2 ");
	assert_contains(e->where, "(application/gzip): gzip");
	assert_true(run.result.records == 2);
	assert_true(run.result.messages == 7);
}

static void
test_mbox_from_line(void **state)
{
	struct dm_buf *b = *state;
	struct run run;

	put(b, "From MAILER-DAEMON Fri Jan  2 04:12:09 2026\n");
	put_gzip_mail(b, report_a);
	run_mem(&run, b->data, b->len);
	assert_report_a(&run, "mail part 2 'protection.outlook.com!"
	    "example.org!1700006400!1700092799.xml.gz' (application/gzip): "
	    "gzip");
}

static void
test_mail_tnef_attachment(void **state)
{
	static const unsigned char tnef[] = { 0x78, 0x9f, 0x3e, 0x22, 0x01,
	    0x00, 0x01, 0x06, 0x90, 0x08, 0x00, 0x04, 0x00, 0x00, 0x00 };
	struct dm_buf *b = *state;
	struct run run;
	const struct event *e;

	put_mail_headers(b, "multipart/mixed; boundary=\"tnef\"");
	put(b, "--tnef\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n"
	    "--tnef\r\n"
	    "Content-Type: application/ms-tnef; name=\"winmail.dat\"\r\n"
	    "Content-Transfer-Encoding: base64\r\n"
	    "Content-Disposition: attachment; "
	    "filename=\"winmail.dat\"\r\n\r\n");
	put_base64(b, tnef, sizeof(tnef));
	put(b, "--tnef--\r\n");
	run_mem(&run, b->data, b->len);
	assert_int_equal(run.rc, 0);
	e = only_event(&run, 'P');
	assert_contains(e->msg, "TNEF");
	assert_contains(e->where, "winmail.dat");
	assert_int_equal(e->kind, DM_KIND_UNKNOWN);
	assert_int_equal(run.result.problems, 1);
	assert_int_equal(run.result.rejected, 1);
	assert_int_equal(run.result.kind, DM_KIND_UNKNOWN);

	/* The bytes alone are recognised too. */
	run_mem(&run, tnef, sizeof(tnef));
	e = only_event(&run, 'P');
	assert_contains(e->msg, "TNEF (winmail.dat) data");
}

static void
test_mail_without_report(void **state)
{
	struct dm_buf *b = *state;
	struct run run;
	const struct event *e;

	put_mail_headers(b, "multipart/alternative; boundary=\"alt\"");
	put(b, "--alt\r\nContent-Type: text/plain\r\n\r\nHello.\r\n"
	    "--alt\r\nContent-Type: text/html\r\n\r\n<p>Hello.</p>\r\n"
	    "--alt--\r\n");
	run_mem(&run, b->data, b->len);
	assert_int_equal(run.rc, 0);
	e = only_event(&run, 'P');
	assert_contains(e->msg, "no DMARC report in the mail");
	assert_contains(e->msg, "text/plain");
	assert_contains(e->msg, "text/html");
}

static void
test_mail_over_max_message(void **state)
{
	struct dm_buf *b = *state;
	struct unpack_options opt;
	struct run run;
	const struct event *e;

	unpack_options_init(&opt);
	opt.limits.max_message_bytes = 1000;
	put_gzip_mail(b, report_a);
	assert_true(b->len > 1000);
	run_with(&run, b->data, b->len, &opt);
	e = only_event(&run, 'P');
	assert_int_equal(e->code, DM_E_LIMIT);
	assert_contains(e->msg, "larger than the limit of 1000");
}

/* Junk */

static void
test_unused_placeholder(void **state)
{
	struct run run;
	unsigned char *gz;
	size_t len;
	const struct event *e;

	(void)state;
	gz = gzip_str("unused\n", &len);
	run_mem(&run, gz, len);
	free(gz);
	assert_int_equal(run.rc, 0);
	e = only_event(&run, 'P');
	assert_string_equal(e->where, "gzip");
	assert_int_equal(e->code, DM_E_DATA);
	assert_contains(e->msg, "placeholder text 'unused'");
	assert_int_equal(run.result.rejected, 1);
	assert_int_equal(run.result.aggregate_reports, 0);
}

static void
test_empty_input(void **state)
{
	struct run run;
	const struct event *e;

	(void)state;
	run_mem(&run, "", 0);
	assert_int_equal(run.rc, 0);
	e = only_event(&run, 'P');
	assert_string_equal(e->where, "");
	assert_contains(e->msg, "empty: no bytes at all");
	assert_int_equal(run.result.problems, 1);
	assert_int_equal(run.result.rejected, 1);
	assert_int_equal(run.result.kind, DM_KIND_UNKNOWN);
}

static void
test_other_junk(void **state)
{
	static const char tlsrpt[] = "{\"organization-name\":\"Google Inc.\","
	    "\"policies\":[]}";
	static const char html[] = "<!DOCTYPE html><html><body>hi</body>"
	    "</html>";
	static const char text[] = "Hello, this is just some text.\n";
	static const unsigned char binary[] = { 0x00, 0x01, 0x02, 0xff, 0x10 };
	struct run run;

	(void)state;
	run_mem(&run, tlsrpt, strlen(tlsrpt));
	assert_contains(only_event(&run, 'P')->msg, "TLS-RPT");
	assert_int_equal(run.rec.events[0].kind, DM_KIND_TLSRPT);
	assert_int_equal(run.result.kind, DM_KIND_TLSRPT);
	run_mem(&run, html, strlen(html));
	assert_contains(only_event(&run, 'P')->msg, "an HTML document");
	run_mem(&run, text, strlen(text));
	assert_contains(only_event(&run, 'P')->msg, "plain text");
	run_mem(&run, binary, sizeof(binary));
	assert_contains(only_event(&run, 'P')->msg, "first bytes 00 01 02 ff "
	    "10");
}

/* Limits */

/*
 * 20 MiB of markup that compresses about 1000:1. The content must be
 * read on (a run of zeros would be refused as binary after 4 KiB), so
 * the ratio cap is what stops it.
 */
static void
test_gzip_bomb_ratio(void **state)
{
	struct run run;
	unsigned char *gz;
	size_t len;
	const struct event *e;

	(void)state;
	gz = gzip_repeat("<feedback>", "<extension/>", (20u << 20) / 12,
	    "</feedback>", &len);
	assert_true(len < (20u << 20) / 250);
	run_mem(&run, gz, len);
	free(gz);
	assert_int_equal(run.rc, 0);
	assert_int_equal(run.rec.nevents, 1);
	e = &run.rec.events[0];
	if (e->type == 'R')
		assert_int_equal(e->status, DM_STATUS_REJECTED);
	else
		assert_int_equal(e->type, 'P');
	assert_int_equal(e->code, DM_E_LIMIT);
	assert_contains(e->msg, "ratio");
	assert_contains(e->msg, "250:1");
	/* Refused early: long before the 20 MiB. */
	if (e->type == 'R')
		assert_true(e->payload_bytes < (8u << 20));
	assert_int_equal(run.result.rejected, 1);
}

static void
test_zip_bomb_ratio(void **state)
{
	struct run run;
	unsigned char *zeros, *zip;
	size_t len;
	const struct event *e;
	struct zip_entry entry = { "bomb.xml", NULL, 20u << 20 };

	(void)state;
	zeros = calloc(1, entry.len);
	assert_non_null(zeros);
	entry.data = zeros;
	zip = zip_mem(&entry, 1, &len);
	free(zeros);
	run_mem(&run, zip, len);
	free(zip);
	assert_int_equal(run.rc, 0);
	assert_true(run.rec.nevents >= 1);
	e = &run.rec.events[0];
	assert_int_equal(e->type, 'P');
	assert_int_equal(e->code, DM_E_LIMIT);
	assert_contains(e->msg, "ratio");
	assert_contains(e->where, "bomb.xml");
}

/* The ratio cap can be turned off; the byte cap still holds. */
static void
test_max_input_bytes(void **state)
{
	struct dm_buf *b = *state;
	struct unpack_options opt;
	struct run run;
	unsigned char *gz;
	size_t len;
	const struct event *e;
	int i;

	put(b, "%s", XML_DECL "<feedback>\n" META("m.example", "M-1"));
	for (i = 0; i < 500; i++)
		put(b, "%s", RECORD("192.0.2.1", "1"));
	put(b, "</feedback>\n");
	gz = gzip_mem(b->data, b->len, &len);
	unpack_options_init(&opt);
	opt.limits.max_input_bytes = 20000;
	opt.limits.max_ratio = 0;
	run_with(&run, gz, len, &opt);
	assert_int_equal(run.rc, 0);
	assert_int_equal(run.rec.nevents, 1);
	e = &run.rec.events[0];
	if (e->type == 'R')
		assert_int_equal(e->status, DM_STATUS_REJECTED);
	assert_int_equal(e->code, DM_E_LIMIT);
	assert_contains(e->msg, "exceeds the limit of 20000 bytes");
	assert_int_equal(run.result.rejected, 1);
	assert_true(run.result.records == 0);

	/* With room, the same input is fine. */
	opt.limits.max_input_bytes = b->len;
	run_with(&run, gz, len, &opt);
	free(gz);
	assert_int_equal(only_event(&run, 'R')->status, DM_STATUS_OK);
	assert_true(run.result.records == 500);
}

/* Big inputs: the reader thread */

static void
put_big_report(struct dm_buf *b, int records)
{
	int i;

	put(b, "%s", XML_DECL "<feedback>\n" META("big.example", "BIG-1"));
	for (i = 0; i < records; i++)
		put(b, "<record><row><source_ip>10.1.%d.%d</source_ip>"
		    "<count>%d</count><policy_evaluated><disposition>none"
		    "</disposition><dkim>pass</dkim><spf>pass</spf>"
		    "</policy_evaluated></row><identifiers><header_from>"
		    "example.com</header_from></identifiers></record>\n",
		    (i >> 8) & 255, i & 255, i % 5 + 1);
	put(b, "</feedback>\n");
}

static uint64_t
big_messages(int records)
{
	uint64_t sum = 0;
	int i;

	for (i = 0; i < records; i++)
		sum += (uint64_t)(i % 5 + 1);
	return sum;
}

#define BIG_RECORDS 20000	/* about 4 MB of XML */

static void
test_big_xml_in_memory(void **state)
{
	struct dm_buf *b = *state;
	struct run run;
	const struct event *e;
	unsigned char sha[32];

	put_big_report(b, BIG_RECORDS);
	assert_true(b->len > (1u << 20));
	run_mem(&run, b->data, b->len);
	assert_int_equal(run.rc, 0);
	e = only_event(&run, 'R');
	assert_int_equal(e->status, DM_STATUS_OK);
	assert_int_equal(run.rec.records, BIG_RECORDS);
	assert_true(run.result.records == BIG_RECORDS);
	assert_true(run.result.messages == big_messages(BIG_RECORDS));
	assert_true(e->payload_bytes == b->len);
	assert_int_equal(gnutls_hash_fast(GNUTLS_DIG_SHA256, b->data, b->len,
	    sha), 0);
	assert_memory_equal(e->sha256, sha, 32);
}

static void
test_big_gzip(void **state)
{
	struct dm_buf *b = *state;
	struct run run;
	const struct event *e;
	unsigned char *gz, sha[32];
	size_t len;

	put_big_report(b, BIG_RECORDS);
	gz = gzip_mem(b->data, b->len, &len);
	run_mem(&run, gz, len);
	free(gz);
	assert_int_equal(run.rc, 0);
	e = only_event(&run, 'R');
	assert_int_equal(e->status, DM_STATUS_OK);
	assert_string_equal(e->where, "gzip");
	assert_true(run.result.records == BIG_RECORDS);
	assert_true(e->payload_bytes == b->len);
	assert_int_equal(gnutls_hash_fast(GNUTLS_DIG_SHA256, b->data, b->len,
	    sha), 0);
	assert_memory_equal(e->sha256, sha, 32);
}

/* A handler that fails stops everything, with its own error. */
static void
test_handler_failure_stops(void **state)
{
	struct dm_buf *b = *state;
	struct run run;
	unsigned char *gz;
	size_t len;

	run_fail(&run, report_a, strlen(report_a), NULL, 1);
	assert_int_equal(run.rc, -1);
	assert_int_equal(run.err.code, DM_E_TEMP);
	assert_string_equal(run.err.msg, "the database is away");
	assert_int_equal(run.rec.records, 1);

	/* The same with the reader thread running ahead. */
	put_big_report(b, BIG_RECORDS);
	run_fail(&run, b->data, b->len, NULL, 10);
	assert_int_equal(run.rc, -1);
	assert_int_equal(run.err.code, DM_E_TEMP);
	assert_int_equal(run.rec.records, 10);
	gz = gzip_mem(b->data, b->len, &len);
	run_fail(&run, gz, len, NULL, 3);
	free(gz);
	assert_int_equal(run.rc, -1);
	assert_int_equal(run.err.code, DM_E_TEMP);
	assert_int_equal(run.rec.records, 3);
}

/* A big report that stops early (a NUL byte) ends rejected, no hang. */
static void
test_big_rejected_early(void **state)
{
	struct dm_buf *b = *state;
	struct run run;
	const struct event *e;
	char *nul;

	put_big_report(b, BIG_RECORDS);
	/* Past the first megabyte: the reader thread is well ahead. */
	nul = strstr(b->data + (1u << 20), "<source_ip>");
	assert_non_null(nul);
	*nul = '\0';
	run_mem(&run, b->data, b->len);
	assert_int_equal(run.rc, 0);
	e = only_event(&run, 'R');
	assert_int_equal(e->status, DM_STATUS_REJECTED);
	assert_contains(e->msg, "NUL byte");
	assert_int_equal(run.result.rejected, 1);
}

/*
 * The payload hash of a rejected report is zero (report.h), however far
 * the reader or the worker threads ran ahead; the bytes counted reach at
 * least the byte that made it rejected (how far past it depends on the
 * threads: docs/parse-output.md).
 */
static void
test_big_rejected_hash_is_stable(void **state)
{
	struct dm_buf *b = *state;
	struct run run;
	unsigned char first[32], prefix[32], whole[32];
	char *nul;
	int i;

	put_big_report(b, BIG_RECORDS);
	nul = strstr(b->data + (1u << 20), "<source_ip>");
	assert_non_null(nul);
	*nul = '\0';
	assert_int_equal(gnutls_hash_fast(GNUTLS_DIG_SHA256, b->data, b->len,
	    whole), 0);
	for (i = 0; i < 4; i++) {
		const struct event *e;

		run_mem(&run, b->data, b->len);
		e = only_event(&run, 'R');
		assert_int_equal(e->status, DM_STATUS_REJECTED);
		assert_true(e->payload_bytes <= b->len);
		/* The contract (report.h): zero for a rejected report, whatever
		 * the reader thread read ahead. */
		memset(prefix, 0, sizeof(prefix));
		assert_memory_equal(e->sha256, prefix, 32);
		assert_memory_not_equal(whole, prefix, 32);
		assert_true(e->payload_bytes > (uint64_t)(nul - b->data));
		if (i == 0)
			memcpy(first, e->sha256, 32);
		else
			assert_memory_equal(e->sha256, first, 32);
	}
}

/* File descriptors and paths */

static void
test_unpack_path_and_fd(void **state)
{
	const struct zip_entry entries[] = {
		{ "a.xml", report_a, strlen(report_a) },
		{ "b.xml", report_b, strlen(report_b) },
	};
	struct unpack_options opt;
	struct unpack_result result;
	struct recorder rec;
	struct dm_handler h;
	struct dm_error err;
	const char *dir = getenv("TMPDIR");
	char path[4096];
	unsigned char *zip;
	size_t len;
	int fd, pipefd[2];

	(void)state;
	unpack_options_init(&opt);
	zip = zip_mem(entries, 2, &len);

	/* A regular file: the zip is read in place. */
	snprintf(path, sizeof(path), "%s/test_unpack-XXXXXX",
	    dir != NULL && dir[0] != '\0' ? dir : "/tmp");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, zip, len), (ssize_t)len);
	close(fd);
	memset(&rec, 0, sizeof(rec));
	handler_for(&rec, &h);
	assert_int_equal(unpack_path(path, &opt, &h, &result, &err), 0);
	unlink(path);
	assert_int_equal(result.aggregate_reports, 2);
	assert_true(result.records == 3);
	assert_int_equal(rec.ends, 2);

	/* A pipe: the zip is spooled to a temporary file first. */
	assert_true(len < 60000);
	assert_int_equal(pipe(pipefd), 0);
	assert_int_equal(write(pipefd[1], zip, len), (ssize_t)len);
	close(pipefd[1]);
	memset(&rec, 0, sizeof(rec));
	assert_int_equal(unpack_fd(pipefd[0], "pipe", &opt, &h, &result,
	    &err), 0);
	close(pipefd[0]);
	assert_int_equal(result.aggregate_reports, 2);
	assert_true(result.messages == 12);
	free(zip);

	/* A name that does not exist. */
	assert_int_equal(unpack_path("/nonexistent/dmarcd-test.xml", &opt, &h,
	    &result, &err), -1);
	assert_int_equal(err.code, DM_E_NOINPUT);
	assert_int_equal(result.aggregate_reports, 0);

	/* A directory is named as such, not read as data. */
	assert_int_equal(unpack_path(dir != NULL && dir[0] != '\0' ? dir :
	    "/tmp", &opt, &h, &result, &err), -1);
	assert_int_equal(err.code, DM_E_NOINPUT);
	assert_non_null(strstr(err.msg, "a directory"));
	assert_int_equal(result.problems, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(test_plain_xml),
		T(test_xml_with_bom),
		T(test_gzip),
		T(test_gzip_two_members),
		T(test_gzip_members_at_read_boundary),
		T(test_gzip_in_gzip),
		T(test_zlib),
		T(test_gzip_trailing_garbage_warns),
		T(test_gzip_truncated),
		T(test_gzip_truncated_big),
		T(test_zip_members),
		T(test_zip_without_report),
		T(test_zip_member_cap),
		T(test_zip_declared_total),
		T(test_zip64),
		T(test_zip_bomb_member_alone),
		T(test_zip_overlapping_members),
		T(test_result_counters),
		T(test_mail_base64_gzip_attachment),
		T(test_mail_zip_attachment),
		T(test_mail_quoted_printable_xml),
		T(test_mail_rfc822_wrapped),
		T(test_mbox_from_line),
		T(test_mail_tnef_attachment),
		T(test_mail_without_report),
		T(test_mail_over_max_message),
		T(test_unused_placeholder),
		T(test_empty_input),
		T(test_other_junk),
		T(test_gzip_bomb_ratio),
		T(test_zip_bomb_ratio),
		T(test_max_input_bytes),
		T(test_big_xml_in_memory),
		T(test_big_gzip),
		T(test_handler_failure_stops),
		T(test_big_rejected_early),
		T(test_big_rejected_hash_is_stable),
		T(test_unpack_path_and_fd),
#undef T
	};

	unpack_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
