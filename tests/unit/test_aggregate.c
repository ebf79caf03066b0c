/*
 * test_aggregate.c - unit tests for parser/aggregate.c, driven directly
 * through agg_new/agg_feed/agg_finish with a recording handler.
 *
 * Proves: RFC 7489 and RFC 9990 (dmarc-2.0) reports come out as the
 * documented events with every field; the result does not depend on how
 * the bytes are cut into chunks (down to one byte, with multi-byte UTF-8
 * and Windows-1252 bytes across the cuts); children are matched in any
 * order; each repair (enum spelling, unknown element, text <reason>,
 * invalid UTF-8, control characters, records before metadata) is a
 * warning; a report that cannot be stored (no <count>, a count that
 * overflows, truncated, no records) ends rejected with a message that
 * says where; DOCTYPE/XXE, deep nesting, huge text and NUL bytes stop the
 * parse; and 200k records stream through with the right totals.
 *
 * Pointers handed to the handler are only valid during the call, so the
 * recorder copies what the tests look at.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <gnutls/crypto.h>

#include "common/buf.h"
#include "common/report.h"
#include "parser/aggregate.h"

#define MAX_COPIED	8	/* records copied field by field */
#define MAX_SUB		4	/* results per record copied */

struct rec_copy {
	uint64_t index, count;
	unsigned long line;
	char *source_ip, *source_ip_raw;
	int disposition, dkim, spf;
	char *disposition_raw, *dkim_raw, *spf_raw;
	size_t reason_count;
	int reason_type[MAX_SUB];
	char *reason_type_raw[MAX_SUB], *reason_comment[MAX_SUB];
	char *header_from, *envelope_from, *envelope_to;
	size_t dkim_count;
	char *dkim_domain[MAX_SUB], *dkim_selector[MAX_SUB];
	char *dkim_result_raw[MAX_SUB], *dkim_human[MAX_SUB];
	int dkim_result[MAX_SUB];
	size_t spf_count;
	char *spf_domain[MAX_SUB], *spf_human[MAX_SUB];
	int spf_scope[MAX_SUB], spf_result[MAX_SUB];
	char *org_name_then;	/* report's org_name when the record came */
};

struct report_copy {
	enum dm_schema schema;
	char *namespace_uri, *version, *org_name, *email, *eci, *report_id;
	char *generator;
	int64_t begin, end;
	int has_begin, has_end;
	size_t error_count;
	char *errors[2];
	char *pol_domain, *fo;
	int adkim, aspf, p, sp, np, pct, testing, discovery;
	char *p_raw;
	uint64_t record_count, message_count, payload_bytes;
	unsigned char sha256[32];
	enum dm_status status;
	struct dm_error error;
};

struct recorder {
	int begins, records, ends;
	uint64_t count_sum;
	int begin_before_records;	/* report_begin came first */
	struct rec_copy recs[MAX_COPIED];
	struct report_copy at_end;
	int dump_on;
	struct dm_buf dump;		/* every event as text */
	int fail_at_record;		/* fail with DM_E_TEMP (1-based) */
	char **pool;
	size_t pool_len, pool_alloc;
};

static char *
copy(struct recorder *r, const char *s)
{
	char *c;

	if (s == NULL)
		return NULL;
	c = strdup(s);
	if (c == NULL)
		abort();
	if (r->pool_len == r->pool_alloc) {
		r->pool_alloc = r->pool_alloc ? r->pool_alloc * 2 : 64;
		r->pool = realloc(r->pool, r->pool_alloc * sizeof(*r->pool));
		if (r->pool == NULL)
			abort();
	}
	r->pool[r->pool_len++] = c;
	return c;
}

static void
recorder_init(struct recorder *r, int dump_on)
{
	memset(r, 0, sizeof(*r));
	r->dump_on = dump_on;
	dm_buf_init(&r->dump, 64u << 20);
}

static void
recorder_free(struct recorder *r)
{
	size_t i;

	for (i = 0; i < r->pool_len; i++)
		free(r->pool[i]);
	free(r->pool);
	dm_buf_free(&r->dump);
}

#define S(s)	((s) != NULL ? (s) : "<NULL>")

static void
dump(struct recorder *r, const char *fmt, ...) DM_PRINTF(2, 3);

static void
dump(struct recorder *r, const char *fmt, ...)
{
	char line[4096];
	va_list ap;

	if (!r->dump_on)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (dm_buf_append(&r->dump, line, strlen(line)) != 0)
		abort();
}

static void
dump_report(struct recorder *r, const char *what, const struct dm_report *rep)
{
	const struct dm_policy_published *pol = &rep->policy;

	dump(r, "%s schema=%d ns=%s version=%s org=%s email=%s eci=%s id=%s "
	    "gen=%s begin=%lld/%d end=%lld/%d errors=%zu\n", what,
	    (int)rep->schema, S(rep->namespace_uri), S(rep->version),
	    S(rep->org_name), S(rep->email), S(rep->extra_contact_info),
	    S(rep->report_id), S(rep->generator), (long long)rep->begin,
	    rep->has_begin, (long long)rep->end, rep->has_end,
	    rep->error_count);
	dump(r, "  policy domain=%s adkim=%d/%s aspf=%d/%s p=%d/%s sp=%d/%s "
	    "np=%d/%s pct=%d/%s fo=%s testing=%d/%s discovery=%d/%s\n",
	    S(pol->domain), pol->adkim, S(pol->adkim_raw), pol->aspf,
	    S(pol->aspf_raw), pol->p, S(pol->p_raw), pol->sp, S(pol->sp_raw),
	    pol->np, S(pol->np_raw), pol->pct, S(pol->pct_raw), S(pol->fo),
	    pol->testing, S(pol->testing_raw), pol->discovery_method,
	    S(pol->discovery_method_raw));
}

static int
rec_report_begin(void *ctx, const struct dm_report *rep, struct dm_error *err)
{
	struct recorder *r = ctx;

	(void)err;
	r->begins++;
	if (r->records == 0)
		r->begin_before_records = 1;
	dump_report(r, "begin", rep);
	return 0;
}

static int
rec_record(void *ctx, const struct dm_report *rep, const struct dm_record *rec,
    struct dm_error *err)
{
	struct recorder *r = ctx;
	size_t i;

	r->records++;
	r->count_sum += rec->count;
	if (r->records <= MAX_COPIED) {
		struct rec_copy *c = &r->recs[r->records - 1];

		c->index = rec->index;
		c->count = rec->count;
		c->line = rec->line;
		c->source_ip = copy(r, rec->source_ip);
		c->source_ip_raw = copy(r, rec->source_ip_raw);
		c->disposition = rec->disposition;
		c->dkim = rec->dkim;
		c->spf = rec->spf;
		c->disposition_raw = copy(r, rec->disposition_raw);
		c->dkim_raw = copy(r, rec->dkim_raw);
		c->spf_raw = copy(r, rec->spf_raw);
		c->reason_count = rec->reason_count;
		for (i = 0; i < rec->reason_count && i < MAX_SUB; i++) {
			c->reason_type[i] = rec->reasons[i].type;
			c->reason_type_raw[i] = copy(r,
			    rec->reasons[i].type_raw);
			c->reason_comment[i] = copy(r, rec->reasons[i].comment);
		}
		c->header_from = copy(r, rec->header_from);
		c->envelope_from = copy(r, rec->envelope_from);
		c->envelope_to = copy(r, rec->envelope_to);
		c->dkim_count = rec->dkim_count;
		for (i = 0; i < rec->dkim_count && i < MAX_SUB; i++) {
			c->dkim_domain[i] = copy(r,
			    rec->dkim_results[i].domain);
			c->dkim_selector[i] = copy(r,
			    rec->dkim_results[i].selector);
			c->dkim_result[i] = rec->dkim_results[i].result;
			c->dkim_result_raw[i] = copy(r,
			    rec->dkim_results[i].result_raw);
			c->dkim_human[i] = copy(r,
			    rec->dkim_results[i].human_result);
		}
		c->spf_count = rec->spf_count;
		for (i = 0; i < rec->spf_count && i < MAX_SUB; i++) {
			c->spf_domain[i] = copy(r, rec->spf_results[i].domain);
			c->spf_scope[i] = rec->spf_results[i].scope;
			c->spf_result[i] = rec->spf_results[i].result;
			c->spf_human[i] = copy(r,
			    rec->spf_results[i].human_result);
		}
		c->org_name_then = copy(r, rep->org_name);
	}
	if (r->dump_on) {
		dump(r, "record %llu line=%lu ip=%s/%s count=%llu disp=%d/%s "
		    "dkim=%d/%s spf=%d/%s hf=%s ef=%s et=%s\n",
		    (unsigned long long)rec->index, rec->line,
		    S(rec->source_ip),
		    S(rec->source_ip_raw), (unsigned long long)rec->count,
		    rec->disposition, S(rec->disposition_raw), rec->dkim,
		    S(rec->dkim_raw), rec->spf, S(rec->spf_raw),
		    S(rec->header_from), S(rec->envelope_from),
		    S(rec->envelope_to));
		for (i = 0; i < rec->reason_count; i++)
			dump(r, "  reason %d/%s %s\n", rec->reasons[i].type,
			    S(rec->reasons[i].type_raw),
			    S(rec->reasons[i].comment));
		for (i = 0; i < rec->dkim_count; i++)
			dump(r, "  dkim %s %s %d/%s %s\n",
			    S(rec->dkim_results[i].domain),
			    S(rec->dkim_results[i].selector),
			    rec->dkim_results[i].result,
			    S(rec->dkim_results[i].result_raw),
			    S(rec->dkim_results[i].human_result));
		for (i = 0; i < rec->spf_count; i++)
			dump(r, "  spf %s %d/%s %d/%s %s\n",
			    S(rec->spf_results[i].domain),
			    rec->spf_results[i].scope,
			    S(rec->spf_results[i].scope_raw),
			    rec->spf_results[i].result,
			    S(rec->spf_results[i].result_raw),
			    S(rec->spf_results[i].human_result));
	}
	if (r->fail_at_record == r->records)
		return dm_error_set(err, DM_E_TEMP, "the database is away");
	return 0;
}

static int
rec_report_end(void *ctx, const struct dm_report *rep, struct dm_error *err)
{
	struct recorder *r = ctx;
	struct report_copy *c = &r->at_end;
	size_t i;

	(void)err;
	r->ends++;
	c->schema = rep->schema;
	c->namespace_uri = copy(r, rep->namespace_uri);
	c->version = copy(r, rep->version);
	c->org_name = copy(r, rep->org_name);
	c->email = copy(r, rep->email);
	c->eci = copy(r, rep->extra_contact_info);
	c->report_id = copy(r, rep->report_id);
	c->generator = copy(r, rep->generator);
	c->begin = rep->begin;
	c->end = rep->end;
	c->has_begin = rep->has_begin;
	c->has_end = rep->has_end;
	c->error_count = rep->error_count;
	for (i = 0; i < rep->error_count && i < 2; i++)
		c->errors[i] = copy(r, rep->errors[i]);
	c->pol_domain = copy(r, rep->policy.domain);
	c->fo = copy(r, rep->policy.fo);
	c->adkim = rep->policy.adkim;
	c->aspf = rep->policy.aspf;
	c->p = rep->policy.p;
	c->p_raw = copy(r, rep->policy.p_raw);
	c->sp = rep->policy.sp;
	c->np = rep->policy.np;
	c->pct = rep->policy.pct;
	c->testing = rep->policy.testing;
	c->discovery = rep->policy.discovery_method;
	c->record_count = rep->record_count;
	c->message_count = rep->message_count;
	c->payload_bytes = rep->payload_bytes;
	memcpy(c->sha256, rep->payload_sha256, sizeof(c->sha256));
	c->status = rep->status;
	c->error = rep->error;
	dump_report(r, "end", rep);
	dump(r, "end status=%d code=%d msg=%s records=%llu messages=%llu "
	    "bytes=%llu\n", (int)rep->status, (int)rep->error.code,
	    rep->error.msg, (unsigned long long)rep->record_count,
	    (unsigned long long)rep->message_count,
	    (unsigned long long)rep->payload_bytes);
	return 0;
}

static const struct dm_handler *
recorder_handler(struct recorder *r, struct dm_handler *h)
{
	memset(h, 0, sizeof(*h));
	h->ctx = r;
	h->report_begin = rec_report_begin;
	h->record = rec_record;
	h->report_end = rec_report_end;
	return h;
}

/* What parse() saw: the first failed agg_feed, and agg_finish. */
struct parse_out {
	uint64_t chunks;		/* parsed by worker threads */
	int feed_rc, finish_rc;
	struct dm_error feed_err, err;
	int has_report;
	char root[64];
};

/*
 * parse - feed doc in chunks of chunk bytes (0: all at once), then finish
 * as unpack.c does (agg_finish after a failed agg_feed too). Returns
 * agg_finish's result.
 */
/* Feed as the reader thread does, with agg_clean_prefix hints. */
static int feed_with_hints;
/* Worker threads and chunk size for the parser (0: serial). */
static unsigned par_threads;
static size_t par_chunk;

static int
parse(const char *doc, size_t len, size_t chunk, struct recorder *r,
    struct dm_warnings *w, struct parse_out *out)
{
	struct agg_options opt;
	struct dm_handler h;
	struct agg_parser *p;
	size_t off = 0;

	memset(out, 0, sizeof(*out));
	memset(&opt, 0, sizeof(opt));
	opt.input = "test.xml";
	opt.where = "";
	opt.warnings = w;
	opt.threads = par_threads;
	opt.chunk = par_chunk;
	dm_warnings_clear(w);
	p = agg_new(&opt, recorder_handler(r, &h), &out->err);
	assert_non_null(p);
	if (chunk == 0)
		chunk = len > 0 ? len : 1;
	while (off < len) {
		size_t n = len - off < chunk ? len - off : chunk;

		if ((feed_with_hints ? agg_feed_hinted(p, doc + off, n,
		    agg_clean_prefix((const unsigned char *)doc + off, n),
		    &out->feed_err) : agg_feed(p, doc + off, n,
		    &out->feed_err)) != 0) {
			out->feed_rc = -1;
			break;
		}
		off += n;
	}
	out->finish_rc = agg_finish(p, &out->err);
	out->has_report = agg_has_report(p);
	out->chunks = agg_parallel_chunks(p);
	snprintf(out->root, sizeof(out->root), "%s", agg_root_name(p));
	agg_free(&p);
	assert_null(p);
	return out->finish_rc;
}

static int
parse_str(const char *doc, struct recorder *r, struct dm_warnings *w,
    struct parse_out *out)
{
	return parse(doc, strlen(doc), 0, r, w, out);
}

/* The warning whose text contains needle, or NULL. */
static const struct dm_warning *
find_warning(const struct dm_warnings *w, const char *needle)
{
	size_t i;

	for (i = 0; i < w->count; i++)
		if (strstr(w->items[i].text, needle) != NULL)
			return &w->items[i];
	return NULL;
}

static void
print_warnings(const struct dm_warnings *w)
{
	size_t i;

	for (i = 0; i < w->count; i++)
		print_message("# warning: line %lu: %s (x%llu)\n",
		    w->items[i].line, w->items[i].text,
		    (unsigned long long)w->items[i].count);
}

#define assert_warning(w, needle) do {					\
	if (find_warning((w), (needle)) == NULL) {			\
		print_warnings(w);					\
		fail_msg("no warning containing \"%s\"", (needle));	\
	}								\
} while (0)

#define assert_contains(hay, needle) do {				\
	if (strstr((hay), (needle)) == NULL)				\
		fail_msg("\"%s\" does not contain \"%s\"", (hay),	\
		    (needle));						\
} while (0)

/* Fixtures */

struct fixture {
	struct recorder rec;
	struct dm_warnings *warnings;
	struct parse_out out;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	f->warnings = calloc(1, sizeof(*f->warnings));
	if (f->warnings == NULL) {
		free(f);
		return -1;
	}
	recorder_init(&f->rec, 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	recorder_free(&f->rec);
	free(f->warnings);
	free(f);
	return 0;
}

#define META \
	"  <report_metadata>\n" \
	"    <org_name>google.com</org_name>\n" \
	"    <email>noreply-dmarc-support@google.com</email>\n" \
	"    <extra_contact_info>https://support.google.com/a/answer/2466580" \
	"</extra_contact_info>\n" \
	"    <report_id>13190401177475355972</report_id>\n" \
	"    <date_range>\n" \
	"      <begin>1700006400</begin>\n" \
	"      <end>1700092799</end>\n" \
	"    </date_range>\n" \
	"  </report_metadata>\n"

#define POLICY \
	"  <policy_published>\n" \
	"    <domain>Example.COM.</domain>\n" \
	"    <adkim>r</adkim>\n" \
	"    <aspf>s</aspf>\n" \
	"    <p>none</p>\n" \
	"    <sp>quarantine</sp>\n" \
	"    <pct>100</pct>\n" \
	"    <fo>1</fo>\n" \
	"  </policy_published>\n"

#define RECORD(ip, count) \
	"  <record>\n" \
	"    <row>\n" \
	"      <source_ip>" ip "</source_ip>\n" \
	"      <count>" count "</count>\n" \
	"      <policy_evaluated>\n" \
	"        <disposition>none</disposition>\n" \
	"        <dkim>pass</dkim>\n" \
	"        <spf>fail</spf>\n" \
	"      </policy_evaluated>\n" \
	"    </row>\n" \
	"    <identifiers>\n" \
	"      <header_from>example.com</header_from>\n" \
	"    </identifiers>\n" \
	"    <auth_results>\n" \
	"      <dkim>\n" \
	"        <domain>example.com</domain>\n" \
	"        <selector>s1</selector>\n" \
	"        <result>pass</result>\n" \
	"      </dkim>\n" \
	"      <spf>\n" \
	"        <domain>bounce.example.com</domain>\n" \
	"        <scope>mfrom</scope>\n" \
	"        <result>fail</result>\n" \
	"      </spf>\n" \
	"    </auth_results>\n" \
	"  </record>\n"

#define XML_DECL "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"

static const char minimal_report[] =
	XML_DECL
	"<feedback>\n"
	"  <version>1.0</version>\n"
	META
	POLICY
	RECORD("192.0.2.1", "3")
	"</feedback>\n";

/* RFC 7489 */

static void
test_minimal_rfc7489(void **state)
{
	struct fixture *f = *state;
	struct recorder *r = &f->rec;
	const struct rec_copy *c = &r->recs[0];
	const struct report_copy *e = &r->at_end;
	unsigned char sha[32];

	assert_int_equal(parse_str(minimal_report, r, f->warnings, &f->out),
	    0);
	assert_int_equal(f->out.feed_rc, 0);
	assert_true(f->out.has_report);
	assert_string_equal(f->out.root, "feedback");
	assert_int_equal(r->begins, 1);
	assert_int_equal(r->records, 1);
	assert_int_equal(r->ends, 1);
	assert_true(r->begin_before_records);

	assert_int_equal(e->status, DM_STATUS_OK);
	assert_int_equal(e->schema, DM_SCHEMA_RFC7489);
	assert_null(e->namespace_uri);
	assert_string_equal(e->version, "1.0");
	assert_string_equal(e->org_name, "google.com");
	assert_string_equal(e->email, "noreply-dmarc-support@google.com");
	assert_string_equal(e->eci, "https://support.google.com/a/answer/"
	    "2466580");
	assert_string_equal(e->report_id, "13190401177475355972");
	assert_null(e->generator);
	assert_true(e->has_begin && e->has_end);
	assert_true(e->begin == 1700006400);
	assert_true(e->end == 1700092799);
	assert_int_equal(e->error_count, 0);
	/* Domains are lower case without the trailing dot. */
	assert_string_equal(e->pol_domain, "example.com");
	assert_int_equal(e->adkim, DM_ALIGN_RELAXED);
	assert_int_equal(e->aspf, DM_ALIGN_STRICT);
	assert_int_equal(e->p, DM_POLICY_NONE);
	assert_string_equal(e->p_raw, "none");
	assert_int_equal(e->sp, DM_POLICY_QUARANTINE);
	assert_int_equal(e->np, DM_POLICY_UNSET);
	assert_int_equal(e->pct, 100);
	assert_string_equal(e->fo, "1");
	assert_int_equal(e->testing, DM_TESTING_UNSET);
	assert_int_equal(e->discovery, DM_DISCOVERY_UNSET);
	assert_true(e->record_count == 1);
	assert_true(e->message_count == 3);
	assert_true(e->payload_bytes == strlen(minimal_report));
	/* The hash covers every byte. */
	assert_int_equal(gnutls_hash_fast(GNUTLS_DIG_SHA256, minimal_report,
	    strlen(minimal_report), sha), 0);
	assert_memory_equal(e->sha256, sha, 32);

	assert_true(c->index == 1);
	assert_int_equal(c->line, 23);
	assert_string_equal(c->source_ip, "192.0.2.1");
	assert_string_equal(c->source_ip_raw, "192.0.2.1");
	assert_true(c->count == 3);
	assert_int_equal(c->disposition, DM_DISP_NONE);
	assert_int_equal(c->dkim, DM_VERDICT_PASS);
	assert_int_equal(c->spf, DM_VERDICT_FAIL);
	assert_int_equal(c->reason_count, 0);
	assert_string_equal(c->header_from, "example.com");
	assert_null(c->envelope_from);
	assert_null(c->envelope_to);
	assert_int_equal(c->dkim_count, 1);
	assert_string_equal(c->dkim_domain[0], "example.com");
	assert_string_equal(c->dkim_selector[0], "s1");
	assert_int_equal(c->dkim_result[0], DM_RESULT_PASS);
	assert_null(c->dkim_human[0]);
	assert_int_equal(c->spf_count, 1);
	assert_string_equal(c->spf_domain[0], "bounce.example.com");
	assert_int_equal(c->spf_scope[0], DM_SCOPE_MFROM);
	assert_int_equal(c->spf_result[0], DM_RESULT_FAIL);
	assert_string_equal(c->org_name_then, "google.com");
	/* A clean report needs no repair. */
	if (f->warnings->count != 0) {
		print_warnings(f->warnings);
		fail_msg("a clean report produced warnings");
	}
}

/* RFC 9990 */

static const char dmarc2_report[] =
	XML_DECL
	"<feedback xmlns=\"urn:ietf:params:xml:ns:dmarc-2.0\">\n"
	"  <report_metadata>\n"
	"    <org_name>receiver.example</org_name>\n"
	"    <email>dmarc@receiver.example</email>\n"
	"    <report_id>r-2</report_id>\n"
	"    <date_range><begin>1767225600</begin>"
	"<end>1767311999</end></date_range>\n"
	"    <generator>gen_aggregate 2.0</generator>\n"
	"    <error>one domain was skipped</error>\n"
	"  </report_metadata>\n"
	"  <policy_published>\n"
	"    <domain>example.com</domain>\n"
	"    <p>reject</p>\n"
	"    <sp>quarantine</sp>\n"
	"    <np>reject</np>\n"
	"    <testing>y</testing>\n"
	"    <discovery_method>treewalk</discovery_method>\n"
	"  </policy_published>\n"
	"  <record>\n"
	"    <row><source_ip>2001:DB8:0:0::1</source_ip><count>2</count>\n"
	"      <policy_evaluated><disposition>pass</disposition>"
	"<dkim>pass</dkim><spf>fail</spf></policy_evaluated></row>\n"
	"    <identifiers><header_from>example.com</header_from>"
	"<envelope_from>lists.example.org</envelope_from>"
	"<envelope_to>receiver.example</envelope_to></identifiers>\n"
	"    <auth_results>\n"
	"      <dkim><domain>example.com</domain><selector>google</selector>"
	"<result>pass</result><human_result>good signature</human_result>"
	"</dkim>\n"
	"      <dkim><domain>mcsv.net</domain><selector>k1</selector>"
	"<result>fail</result></dkim>\n"
	"      <spf><domain>lists.example.org</domain><scope>mfrom</scope>"
	"<result>pass</result><human_result>spf ok</human_result></spf>\n"
	"    </auth_results>\n"
	"  </record>\n"
	"</feedback>\n";

static void
test_dmarc2(void **state)
{
	struct fixture *f = *state;
	struct recorder *r = &f->rec;
	const struct rec_copy *c = &r->recs[0];
	const struct report_copy *e = &r->at_end;

	assert_int_equal(parse_str(dmarc2_report, r, f->warnings, &f->out), 0);
	assert_int_equal(r->ends, 1);
	assert_int_equal(e->status, DM_STATUS_OK);
	assert_int_equal(e->schema, DM_SCHEMA_DMARC2);
	assert_string_equal(e->namespace_uri,
	    "urn:ietf:params:xml:ns:dmarc-2.0");
	assert_null(e->version);
	assert_string_equal(e->generator, "gen_aggregate 2.0");
	assert_int_equal(e->error_count, 1);
	assert_string_equal(e->errors[0], "one domain was skipped");
	assert_int_equal(e->p, DM_POLICY_REJECT);
	assert_int_equal(e->sp, DM_POLICY_QUARANTINE);
	assert_int_equal(e->np, DM_POLICY_REJECT);
	assert_int_equal(e->testing, DM_TESTING_Y);
	assert_int_equal(e->discovery, DM_DISCOVERY_TREEWALK);
	assert_int_equal(e->pct, -1);
	assert_int_equal(r->records, 1);
	assert_string_equal(c->source_ip, "2001:db8::1");
	assert_string_equal(c->source_ip_raw, "2001:DB8:0:0::1");
	assert_int_equal(c->disposition, DM_DISP_PASS);
	assert_string_equal(c->envelope_from, "lists.example.org");
	assert_string_equal(c->envelope_to, "receiver.example");
	assert_int_equal(c->dkim_count, 2);
	assert_string_equal(c->dkim_human[0], "good signature");
	assert_null(c->dkim_human[1]);
	assert_int_equal(c->dkim_result[1], DM_RESULT_FAIL);
	assert_string_equal(c->dkim_selector[1], "k1");
	assert_int_equal(c->spf_count, 1);
	assert_string_equal(c->spf_human[0], "spf ok");
}

/* Elements are matched on local names, whatever the prefix. */
static void
test_dmarc2_prefixed_namespace(void **state)
{
	static const char doc[] =
		"<d:feedback xmlns:d=\"urn:ietf:params:xml:ns:dmarc-2.0\">"
		"<d:report_metadata><d:org_name>o</d:org_name>"
		"<d:email>a@o</d:email><d:report_id>1</d:report_id>"
		"<d:date_range><d:begin>1700000000</d:begin>"
		"<d:end>1700080000</d:end></d:date_range></d:report_metadata>"
		"<d:policy_published><d:domain>example.com</d:domain>"
		"<d:p>none</d:p></d:policy_published>"
		"<d:record><d:row><d:source_ip>192.0.2.9</d:source_ip>"
		"<d:count>5</d:count><d:policy_evaluated><d:disposition>none"
		"</d:disposition></d:policy_evaluated></d:row>"
		"<d:identifiers><d:header_from>example.com</d:header_from>"
		"</d:identifiers></d:record></d:feedback>";
	struct fixture *f = *state;

	assert_int_equal(parse_str(doc, &f->rec, f->warnings, &f->out), 0);
	assert_int_equal(f->rec.at_end.schema, DM_SCHEMA_DMARC2);
	assert_int_equal(f->rec.records, 1);
	assert_true(f->rec.recs[0].count == 5);
	assert_string_equal(f->rec.recs[0].source_ip, "192.0.2.9");
}

/* Chunking */

/*
 * Valid UTF-8 (2- and 4-byte), Windows-1252 bytes that are UTF-8
 * continuation bytes (0x91, 0x92) and one that is a UTF-8 lead byte
 * followed by ASCII (0xE9), and a control character.
 */
static const char chunked_report[] =
	XML_DECL
	"<feedback>\n"
	"  <report_metadata>\n"
	"    <org_name>Ex\xC3\xA4mple \xF0\x9F\x98\x80</org_name>\n"
	"    <email>a@b.example</email>\n"
	"    <extra_contact_info>\x91quoted\x92 caf\xE9 x\x07y"
	"</extra_contact_info>\n"
	"    <report_id>chunk-1</report_id>\n"
	"    <date_range><begin>1700006400</begin><end>1700092799</end>"
	"</date_range>\n"
	"  </report_metadata>\n"
	POLICY
	RECORD("192.0.2.1", "3")
	RECORD("2001:db8::2", "Pass")
	RECORD("198.51.100.7", "11")
	"</feedback>\n";

/* Print the first line where two dumps differ (cmocka cuts long output). */
static void
print_first_difference(const char *a, const char *b)
{
	size_t line_start = 0, i;

	for (i = 0; a[i] != '\0' && a[i] == b[i]; i++)
		if (a[i] == '\n')
			line_start = i + 1;
	print_message("# whole:   %.*s\n", (int)strcspn(a + line_start, "\n"),
	    a + line_start);
	print_message("# chunked: %.*s\n", (int)strcspn(b + line_start, "\n"),
	    b + line_start);
}

static void
test_chunk_sizes_give_identical_results(void **state)
{
	static const size_t chunks[] = { 0, 1, 2, 3, 5, 7, 13, 64, 4096 };
	struct fixture *f = *state;
	struct dm_buf first;
	size_t i, len = sizeof(chunked_report) - 1;
	size_t n_chunks = sizeof(chunks) / sizeof(chunks[0]);

	dm_buf_init(&first, 1u << 20);
	/* Every chunking, then again with the reader thread's hints. */
	for (i = 0; i < 2 * n_chunks; i++) {
		struct recorder r;
		size_t k;

		recorder_init(&r, 1);
		feed_with_hints = i >= n_chunks;
		parse(chunked_report, len, chunks[i % n_chunks], &r, f->warnings,
		    &f->out);
		feed_with_hints = 0;
		/* The warnings belong to the result too. */
		for (k = 0; k < f->warnings->count; k++)
			dump(&r, "warning %lu %s x%llu\n",
			    f->warnings->items[k].line,
			    f->warnings->items[k].text, (unsigned long long)
			    f->warnings->items[k].count);
		dump(&r, "rc=%d/%d %s\n", f->out.feed_rc, f->out.finish_rc,
		    f->out.err.msg);
		if (i == 0) {
			/* "Pass" is no count: the whole report is rejected. */
			assert_int_equal(r.ends, 1);
			assert_int_equal(r.at_end.status, DM_STATUS_REJECTED);
			assert_int_equal(dm_buf_append(&first, r.dump.data,
			    r.dump.len), 0);
		} else if (strcmp(dm_buf_cstr(&first),
		    dm_buf_cstr(&r.dump)) != 0) {
			print_first_difference(dm_buf_cstr(&first),
			    dm_buf_cstr(&r.dump));
			recorder_free(&r);
			dm_buf_free(&first);
			fail_msg("chunks of %zu bytes%s change the result",
			    chunks[i % n_chunks], i >= n_chunks ?
			    " with clean hints" : "");
		}
		recorder_free(&r);
	}
	dm_buf_free(&first);
}

static const char chunked_ok_report[] =
	XML_DECL
	"<feedback>\n"
	"  <report_metadata>\n"
	"    <org_name>Ex\xC3\xA4mple \xF0\x9F\x98\x80</org_name>\n"
	"    <email>a@b.example</email>\n"
	"    <extra_contact_info>\x91quoted\x92 caf\xE9 x\x07y"
	"</extra_contact_info>\n"
	"    <report_id>chunk-2</report_id>\n"
	"    <date_range><begin>1700006400</begin><end>1700092799</end>"
	"</date_range>\n"
	"  </report_metadata>\n"
	POLICY
	RECORD("192.0.2.1", "3")
	RECORD("2001:db8::2", "4")
	"</feedback>\n";

static void
check_chunked_ok(struct fixture *f, size_t chunk)
{
	struct recorder *r = &f->rec;
	const struct report_copy *e = &r->at_end;
	const struct dm_warning *w;

	recorder_free(r);
	recorder_init(r, 0);
	assert_int_equal(parse(chunked_ok_report, sizeof(chunked_ok_report) -
	    1, chunk, r, f->warnings, &f->out), 0);
	assert_int_equal(e->status, DM_STATUS_OK);
	assert_int_equal(r->records, 2);
	assert_true(e->message_count == 7);
	assert_string_equal(e->org_name, "Ex\xC3\xA4mple \xF0\x9F\x98\x80");
	/* 0x91 0x92 -> U+2018 U+2019, 0xE9 -> U+00E9, 0x07 removed. */
	assert_string_equal(e->eci, "\xE2\x80\x98quoted\xE2\x80\x99 caf"
	    "\xC3\xA9 xy");
	w = find_warning(f->warnings, "invalid UTF-8 byte(s) read as "
	    "Windows-1252");
	assert_non_null(w);
	assert_contains(w->text, "3 invalid UTF-8");
	assert_contains(w->text, "first 0x91");
	w = find_warning(f->warnings, "control character(s) removed");
	assert_non_null(w);
	assert_contains(w->text, "1 control character(s) removed (first "
	    "0x07");
}

static void
test_one_byte_at_a_time(void **state)
{
	check_chunked_ok(*state, 0);
	check_chunked_ok(*state, 1);
	check_chunked_ok(*state, 2);
	check_chunked_ok(*state, 3);
}

/* Order, enums, unknown elements */

static void
test_out_of_order_children(void **state)
{
	static const char doc[] =
		"<feedback>\n"
		"  <policy_published>\n"
		"    <fo>0</fo><p>quarantine</p><domain>example.org</domain>\n"
		"  </policy_published>\n"
		"  <report_metadata>\n"
		"    <date_range><end>1700092799</end><begin>1700006400</begin>"
		"</date_range>\n"
		"    <report_id>ooo</report_id><email>x@y.example</email>"
		"<org_name>y.example</org_name>\n"
		"  </report_metadata>\n"
		"  <record>\n"
		"    <auth_results><spf><result>pass</result>"
		"<domain>example.org</domain></spf></auth_results>\n"
		"    <identifiers><header_from>example.org</header_from>"
		"</identifiers>\n"
		"    <row><policy_evaluated><spf>pass</spf><dkim>fail</dkim>"
		"<disposition>quarantine</disposition></policy_evaluated>"
		"<count>9</count><source_ip>203.0.113.5</source_ip></row>\n"
		"  </record>\n"
		"</feedback>\n";
	struct fixture *f = *state;
	const struct rec_copy *c = &f->rec.recs[0];
	const struct report_copy *e = &f->rec.at_end;

	assert_int_equal(parse_str(doc, &f->rec, f->warnings, &f->out), 0);
	assert_int_equal(e->status, DM_STATUS_OK);
	assert_string_equal(e->org_name, "y.example");
	assert_string_equal(e->report_id, "ooo");
	assert_true(e->begin == 1700006400 && e->end == 1700092799);
	assert_string_equal(e->pol_domain, "example.org");
	assert_int_equal(e->p, DM_POLICY_QUARANTINE);
	assert_string_equal(e->fo, "0");
	assert_int_equal(f->rec.records, 1);
	assert_true(c->count == 9);
	assert_string_equal(c->source_ip, "203.0.113.5");
	assert_int_equal(c->disposition, DM_DISP_QUARANTINE);
	assert_int_equal(c->dkim, DM_VERDICT_FAIL);
	assert_int_equal(c->spf, DM_VERDICT_PASS);
	assert_int_equal(c->spf_count, 1);
	assert_int_equal(c->spf_result[0], DM_RESULT_PASS);
	assert_int_equal(c->spf_scope[0], DM_SCOPE_UNSET);
	assert_string_equal(c->spf_domain[0], "example.org");
	assert_null(find_warning(f->warnings, "before <report_metadata>"));
}

static void
test_enum_variants_warn(void **state)
{
	static const char doc[] =
		"<feedback>" META
		"<policy_published><domain>example.com</domain><p>Reject</p>"
		"<adkim>relaxed</adkim><aspf>x</aspf></policy_published>"
		"<record><row><source_ip>192.0.2.1</source_ip><count>1</count>"
		"<policy_evaluated><disposition>Quarantine</disposition>"
		"<dkim>PASS</dkim><spf>hardfail</spf></policy_evaluated></row>"
		"<identifiers><header_from>example.com</header_from>"
		"</identifiers><auth_results>"
		"<dkim><domain>example.com</domain><result>Pass</result></dkim>"
		"<spf><domain>example.com</domain><scope>HELO</scope>"
		"<result>bogus</result></spf></auth_results></record>"
		"<record><row><source_ip>192.0.2.2</source_ip><count>1</count>"
		"<policy_evaluated><disposition>none</disposition>"
		"</policy_evaluated></row>"
		"<identifiers><header_from>example.com</header_from>"
		"</identifiers><auth_results>"
		"<dkim><domain>example.com</domain><result>Pass</result></dkim>"
		"<spf><domain>example.com</domain><result>unknown</result>"
		"</spf></auth_results></record>"
		"</feedback>";
	struct fixture *f = *state;
	const struct rec_copy *c = &f->rec.recs[0];
	const struct dm_warning *w;

	assert_int_equal(parse_str(doc, &f->rec, f->warnings, &f->out), 0);
	assert_int_equal(f->rec.at_end.status, DM_STATUS_OK);
	assert_int_equal(f->rec.at_end.p, DM_POLICY_REJECT);
	assert_string_equal(f->rec.at_end.p_raw, "Reject");
	assert_int_equal(f->rec.at_end.adkim, DM_ALIGN_RELAXED);
	assert_int_equal(f->rec.at_end.aspf, DM_ALIGN_UNKNOWN);
	assert_int_equal(c->disposition, DM_DISP_QUARANTINE);
	assert_string_equal(c->disposition_raw, "Quarantine");
	assert_int_equal(c->dkim, DM_VERDICT_PASS);
	assert_string_equal(c->dkim_raw, "PASS");
	assert_int_equal(c->spf, DM_VERDICT_FAIL);
	assert_int_equal(c->dkim_result[0], DM_RESULT_PASS);
	assert_string_equal(c->dkim_result_raw[0], "Pass");
	assert_int_equal(c->spf_scope[0], DM_SCOPE_HELO);
	assert_int_equal(c->spf_result[0], DM_RESULT_UNKNOWN);
	assert_int_equal(f->rec.recs[1].spf_result[0], DM_RESULT_PERMERROR);

	assert_warning(f->warnings, "policy p 'Reject' normalised to 'reject'");
	assert_warning(f->warnings, "adkim 'relaxed' read as 'r'");
	assert_warning(f->warnings, "unrecognised aspf 'x' kept as 'unknown'");
	assert_warning(f->warnings, "disposition 'Quarantine' normalised to "
	    "'quarantine'");
	assert_warning(f->warnings, "policy_evaluated spf 'hardfail' read as "
	    "'fail'");
	assert_warning(f->warnings, "spf scope 'HELO' normalised to 'helo'");
	assert_warning(f->warnings, "unrecognised spf result 'bogus' kept as "
	    "'unknown'");
	assert_warning(f->warnings, "spf result 'unknown' read as "
	    "'permerror'");
	/* Twice the same spelling: one warning, counted twice. */
	w = find_warning(f->warnings, "dkim result 'Pass' normalised to "
	    "'pass'");
	assert_non_null(w);
	assert_true(w->count == 2);
}

static void
test_unknown_elements_ignored(void **state)
{
	static const char doc[] =
		"<feedback>" META POLICY
		"<record><row><source_ip>192.0.2.1</source_ip>"
		"<count>4</count><colour>blue</colour>"
		"<policy_evaluated><disposition>none</disposition>"
		"</policy_evaluated></row>"
		"<frobnicate><count>999</count><source_ip>10.0.0.1</source_ip>"
		"</frobnicate>"
		"<extension><count>555</count><anything>x</anything>"
		"</extension>"
		"<identifiers><header_from>example.com</header_from>"
		"</identifiers></record>"
		"<vendor_stats>17</vendor_stats>"
		"</feedback>";
	struct fixture *f = *state;
	const struct rec_copy *c = &f->rec.recs[0];

	assert_int_equal(parse_str(doc, &f->rec, f->warnings, &f->out), 0);
	assert_int_equal(f->rec.at_end.status, DM_STATUS_OK);
	assert_int_equal(f->rec.records, 1);
	/* Nothing under an unknown element or an extension is taken. */
	assert_true(c->count == 4);
	assert_string_equal(c->source_ip, "192.0.2.1");
	assert_true(f->rec.at_end.message_count == 4);
	assert_warning(f->warnings, "unknown element <colour> in <row> "
	    "ignored");
	assert_warning(f->warnings, "unknown element <frobnicate> in <record> "
	    "ignored");
	assert_warning(f->warnings, "unknown element <vendor_stats> in "
	    "<feedback> ignored");
	assert_null(find_warning(f->warnings, "<extension>"));
	assert_null(find_warning(f->warnings, "<anything>"));
}

static void
test_reason_forms(void **state)
{
	static const char doc[] =
		"<feedback>" META POLICY
		"<record><row><source_ip>192.0.2.1</source_ip><count>1</count>"
		"<policy_evaluated><disposition>none</disposition>"
		"<reason>forwarded</reason>"
		"<reason><type>local_policy</type><comment>arc ok</comment>"
		"</reason>"
		"<reason><comment>no type</comment></reason>"
		"</policy_evaluated></row>"
		"<identifiers><header_from>example.com</header_from>"
		"</identifiers></record></feedback>";
	struct fixture *f = *state;
	const struct rec_copy *c = &f->rec.recs[0];

	assert_int_equal(parse_str(doc, &f->rec, f->warnings, &f->out), 0);
	assert_int_equal(f->rec.records, 1);
	assert_int_equal(c->reason_count, 3);
	assert_int_equal(c->reason_type[0], DM_REASON_FORWARDED);
	assert_string_equal(c->reason_type_raw[0], "forwarded");
	assert_null(c->reason_comment[0]);
	assert_int_equal(c->reason_type[1], DM_REASON_LOCAL_POLICY);
	assert_string_equal(c->reason_comment[1], "arc ok");
	assert_int_equal(c->reason_type[2], DM_REASON_OTHER);
	assert_string_equal(c->reason_comment[2], "no type");
	assert_warning(f->warnings, "<reason> given as text, read as its "
	    "<type>");
	assert_warning(f->warnings, "<reason> without <type> read as 'other'");
}

/* Rejected reports */

static void
test_missing_count_rejects(void **state)
{
	static const char doc[] =
		"<feedback>\n" META POLICY
		"  <record>\n"
		"    <row><source_ip>192.0.2.1</source_ip>\n"
		"      <policy_evaluated><disposition>none</disposition>"
		"</policy_evaluated></row>\n"
		"    <identifiers><header_from>example.com</header_from>"
		"</identifiers>\n"
		"  </record>\n"
		RECORD("192.0.2.2", "5")
		"</feedback>\n";
	struct fixture *f = *state;
	const struct report_copy *e = &f->rec.at_end;

	assert_int_equal(parse_str(doc, &f->rec, f->warnings, &f->out), -1);
	assert_int_equal(f->out.err.code, DM_E_DATA);
	assert_int_equal(f->rec.ends, 1);
	assert_int_equal(e->status, DM_STATUS_REJECTED);
	assert_int_equal(e->error.code, DM_E_DATA);
	/* "line 25, column 12, in <record>: record 1 (line 21) has no
	 * <count>": where the record ends, and where it began. */
	assert_contains(e->error.msg, "line 25, column ");
	assert_contains(e->error.msg, "in <record>");
	assert_contains(e->error.msg, "record 1 (line 21) has no <count>");
	assert_string_equal(f->out.err.msg, e->error.msg);
	/* No record reaches the handler once the report is rejected, but
	 * every record is still counted. */
	assert_int_equal(f->rec.records, 0);
	assert_true(e->record_count == 2);
}

static void
test_count_overflow_rejects(void **state)
{
	static const char doc[] =
		"<feedback>\n" META POLICY
		RECORD("192.0.2.1", "18446744073709551616")
		"</feedback>\n";
	struct fixture *f = *state;
	const struct report_copy *e = &f->rec.at_end;

	assert_int_equal(parse_str(doc, &f->rec, f->warnings, &f->out), -1);
	assert_int_equal(e->status, DM_STATUS_REJECTED);
	assert_contains(e->error.msg, "in <count>: '18446744073709551616' "
	    "is larger than 9223372036854775807");
	assert_contains(e->error.msg, "line 24, column ");
	assert_int_equal(f->rec.records, 0);
}

static void
test_count_negative_rejects(void **state)
{
	static const char doc[] =
		"<feedback>\n" META POLICY RECORD("192.0.2.1", "-1")
		"</feedback>\n";
	struct fixture *f = *state;

	assert_int_equal(parse_str(doc, &f->rec, f->warnings, &f->out), -1);
	assert_int_equal(f->rec.at_end.status, DM_STATUS_REJECTED);
	assert_contains(f->rec.at_end.error.msg, "in <count>: '-1' is "
	    "negative");
}

static void
test_count_sum_overflow_rejects(void **state)
{
	static const char doc[] =
		"<feedback>\n" META POLICY
		RECORD("192.0.2.1", "9223372036854775807")
		RECORD("192.0.2.2", "1")
		"</feedback>\n";
	struct fixture *f = *state;

	assert_int_equal(parse_str(doc, &f->rec, f->warnings, &f->out), -1);
	assert_int_equal(f->rec.at_end.status, DM_STATUS_REJECTED);
	assert_contains(f->rec.at_end.error.msg, "the sum of <count> "
	    "exceeds 9223372036854775807");
	/* The first record was fine and had been handed on already. */
	assert_int_equal(f->rec.records, 1);
	assert_true(f->rec.recs[0].count == (uint64_t)INT64_MAX);
}

static void
test_truncated_rejects(void **state)
{
	/* Two records, cut inside the second. */
	static const char doc[] =
		"<feedback>\n" META POLICY RECORD("192.0.2.9", "2")
		"  <record>\n    <row><source_ip>192.0.2.1</source_ip>"
		"<count>3</count>";
	struct fixture *f = *state;

	assert_int_equal(parse_str(doc, &f->rec, f->warnings, &f->out), -1);
	/* The complete record was handed on before the cut. */
	assert_int_equal(f->rec.records, 1);
	assert_true(f->rec.recs[0].count == 2);
	assert_int_equal(f->rec.ends, 1);
	assert_int_equal(f->rec.at_end.status, DM_STATUS_REJECTED);
	assert_contains(f->rec.at_end.error.msg, "the document ends before "
	    "</feedback> (truncated?)");
	assert_int_equal(f->out.err.code, DM_E_DATA);
}

static void
test_zero_records_rejects(void **state)
{
	static const char doc[] = "<feedback>" META POLICY "</feedback>";
	struct fixture *f = *state;

	assert_int_equal(parse_str(doc, &f->rec, f->warnings, &f->out), -1);
	assert_int_equal(f->rec.begins, 1);
	assert_int_equal(f->rec.records, 0);
	assert_int_equal(f->rec.ends, 1);
	assert_int_equal(f->rec.at_end.status, DM_STATUS_REJECTED);
	assert_contains(f->rec.at_end.error.msg, "the report has no <record>");
	/* The metadata is still there for whoever keeps the rejected raw. */
	assert_string_equal(f->rec.at_end.org_name, "google.com");
}

static void
test_missing_report_id_rejects(void **state)
{
	static const char doc[] =
		"<feedback><report_metadata><org_name>o</org_name>"
		"<email>a@o</email><date_range><begin>1700006400</begin>"
		"<end>1700092799</end></date_range></report_metadata>"
		POLICY RECORD("192.0.2.1", "1") "</feedback>";
	struct fixture *f = *state;

	assert_int_equal(parse_str(doc, &f->rec, f->warnings, &f->out), -1);
	assert_int_equal(f->rec.at_end.status, DM_STATUS_REJECTED);
	assert_contains(f->rec.at_end.error.msg, "has no <report_id>");
	assert_int_equal(f->rec.records, 0);
}

static void
test_conflicting_report_id_rejects(void **state)
{
	static const char doc[] =
		"<feedback><report_metadata><org_name>o</org_name>"
		"<report_id>a</report_id><report_id>b</report_id>"
		"<date_range><begin>1700006400</begin>"
		"<end>1700092799</end></date_range></report_metadata>"
		POLICY RECORD("192.0.2.1", "1") "</feedback>";
	struct fixture *f = *state;

	assert_int_equal(parse_str(doc, &f->rec, f->warnings, &f->out), -1);
	assert_int_equal(f->rec.at_end.status, DM_STATUS_REJECTED);
	assert_contains(f->rec.at_end.error.msg, "conflicting duplicate "
	    "<report_id>: 'a' and 'b'");
}

/* A fresh recorder and warnings for the next document of one test. */
static void
recorder_reset(struct fixture *f)
{
	recorder_free(&f->rec);
	recorder_init(&f->rec, 0);
	dm_warnings_clear(f->warnings);
}

#define DATED_META(begin, end) \
	"<report_metadata><org_name>o</org_name><report_id>r</report_id>" \
	"<date_range><begin>" begin "</begin><end>" end "</end>" \
	"</date_range></report_metadata>"

/* Year 9999 in seconds is above 10^11, the milliseconds threshold: it
 * must not become a date in 1978. */
static void
test_date_range_year_9999_rejects(void **state)
{
	static const char doc[] =
		"<feedback>" DATED_META("253402214400", "253402300799")
		POLICY RECORD("192.0.2.1", "1") "</feedback>";
	struct fixture *f = *state;

	assert_int_equal(parse_str(doc, &f->rec, f->warnings, &f->out), -1);
	assert_int_equal(f->rec.at_end.status, DM_STATUS_REJECTED);
	assert_contains(f->rec.at_end.error.msg, "in <begin>: "
	    "'253402214400' is out of range: after 2099 as seconds, before "
	    "2000 as milliseconds");
	assert_int_equal(f->rec.records, 0);
}

static void
test_date_range_after_2099_rejects(void **state)
{
	static const char in_ms[] =
		"<feedback>" DATED_META("253402214400000", "253402300799000")
		POLICY RECORD("192.0.2.1", "1") "</feedback>";
	static const char end_2100[] =
		"<feedback>" DATED_META("4102358400", "4102444800")
		POLICY RECORD("192.0.2.1", "1") "</feedback>";
	static const char last_second[] =
		"<feedback>" DATED_META("4102358400", "4102444799")
		POLICY RECORD("192.0.2.1", "1") "</feedback>";
	static const char negative[] =
		"<feedback>" DATED_META("-86400", "-1")
		POLICY RECORD("192.0.2.1", "1") "</feedback>";
	struct fixture *f = *state;

	assert_int_equal(parse_str(in_ms, &f->rec, f->warnings, &f->out), -1);
	assert_contains(f->rec.at_end.error.msg, "in <begin>: "
	    "'253402214400000' is after 2099");
	recorder_reset(f);
	assert_int_equal(parse_str(end_2100, &f->rec, f->warnings, &f->out),
	    -1);
	assert_contains(f->rec.at_end.error.msg, "in <end>: '4102444800' is "
	    "after 2099");
	recorder_reset(f);
	assert_int_equal(parse_str(negative, &f->rec, f->warnings, &f->out),
	    -1);
	assert_contains(f->rec.at_end.error.msg, "in <begin>: '-86400' is "
	    "negative");
	/* The last second of 2099 is still a date. */
	recorder_reset(f);
	assert_int_equal(parse_str(last_second, &f->rec, f->warnings,
	    &f->out), 0);
	assert_int_equal(f->rec.at_end.status, DM_STATUS_OK);
	assert_int_equal(f->rec.records, 1);
}

/* Any DMARC namespace is read; another format's <feedback> is not. */
static void
test_wrong_namespace_rejects(void **state)
{
	static const char xhtml[] =
		"<feedback xmlns=\"http://www.w3.org/1999/xhtml\">\n" META
		POLICY RECORD("192.0.2.1", "1") "</feedback>";
	static const char dmarc01[] =
		"<feedback xmlns=\"http://dmarc.org/dmarc-xml/0.1\">\n" META
		POLICY RECORD("192.0.2.1", "1") "</feedback>";
	struct fixture *f = *state;

	assert_int_equal(parse_str(xhtml, &f->rec, f->warnings, &f->out), -1);
	assert_int_equal(f->rec.at_end.status, DM_STATUS_REJECTED);
	assert_contains(f->rec.at_end.error.msg, "<feedback> is in the "
	    "namespace 'http://www.w3.org/1999/xhtml', not a DMARC namespace");
	assert_int_equal(f->rec.records, 0);
	recorder_reset(f);
	assert_int_equal(parse_str(dmarc01, &f->rec, f->warnings, &f->out),
	    0);
	assert_int_equal(f->rec.at_end.status, DM_STATUS_OK);
	assert_string_equal(f->rec.at_end.namespace_uri,
	    "http://dmarc.org/dmarc-xml/0.1");
}

static void
test_record_before_metadata(void **state)
{
	static const char doc[] =
		"<feedback>\n" RECORD("192.0.2.1", "6") META POLICY
		"</feedback>\n";
	struct fixture *f = *state;

	assert_int_equal(parse_str(doc, &f->rec, f->warnings, &f->out), 0);
	assert_int_equal(f->rec.begins, 1);
	assert_int_equal(f->rec.records, 1);
	assert_int_equal(f->rec.ends, 1);
	assert_true(f->rec.begin_before_records);
	assert_int_equal(f->rec.at_end.status, DM_STATUS_OK);
	/* When the record came, its report was not known yet ... */
	assert_null(f->rec.recs[0].org_name_then);
	assert_true(f->rec.recs[0].count == 6);
	/* ... at the end it is. */
	assert_string_equal(f->rec.at_end.org_name, "google.com");
	assert_string_equal(f->rec.at_end.report_id, "13190401177475355972");
	assert_true(f->rec.at_end.message_count == 6);
	assert_warning(f->warnings, "<record> before <report_metadata>");
}

/* Hardening */

static void
test_doctype_xxe_stops(void **state)
{
	static const char doc[] =
		XML_DECL
		"<!DOCTYPE feedback [\n"
		"  <!ENTITY xxe SYSTEM \"file:///etc/passwd\">\n"
		"]>\n"
		"<feedback>" META POLICY
		"<record><row><source_ip>192.0.2.1</source_ip><count>1</count>"
		"</row><identifiers><header_from>&xxe;</header_from>"
		"</identifiers></record></feedback>";
	struct fixture *f = *state;

	assert_int_equal(parse_str(doc, &f->rec, f->warnings, &f->out), -1);
	assert_int_equal(f->out.err.code, DM_E_DATA);
	assert_contains(f->out.err.msg, "DOCTYPE");
	assert_false(f->out.has_report);
	assert_int_equal(f->rec.begins, 0);
	assert_int_equal(f->rec.records, 0);
	assert_int_equal(f->rec.ends, 0);
}

static void
test_billion_laughs_stops(void **state)
{
	static const char doc[] =
		"<?xml version=\"1.0\"?>\n"
		"<!DOCTYPE lolz [\n"
		" <!ENTITY lol \"lol\">\n"
		" <!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n"
		" <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">\n"
		"]>\n"
		"<feedback><report_metadata><org_name>&lol3;</org_name>"
		"</report_metadata></feedback>";
	struct fixture *f = *state;

	assert_int_equal(parse_str(doc, &f->rec, f->warnings, &f->out), -1);
	assert_contains(f->out.err.msg, "DOCTYPE");
	assert_int_equal(f->rec.begins + f->rec.records + f->rec.ends, 0);
}

static void
test_depth_limit_stops(void **state)
{
	struct fixture *f = *state;
	char doc[4096];
	size_t len = 0;
	int i;

	len += (size_t)snprintf(doc + len, sizeof(doc) - len,
	    "<feedback>" META POLICY RECORD("192.0.2.1", "1") "<extension>");
	for (i = 0; i < 40; i++)
		len += (size_t)snprintf(doc + len, sizeof(doc) - len, "<a>");
	assert_true(len < sizeof(doc));
	assert_int_equal(parse(doc, len, 0, &f->rec, f->warnings, &f->out),
	    -1);
	assert_int_equal(f->out.feed_rc, -1);
	assert_int_equal(f->out.feed_err.code, DM_E_LIMIT);
	assert_contains(f->out.feed_err.msg, "elements nested deeper than 32 "
	    "levels");
	assert_int_equal(f->rec.ends, 1);
	assert_int_equal(f->rec.at_end.status, DM_STATUS_REJECTED);
	assert_int_equal(f->rec.at_end.error.code, DM_E_LIMIT);
	assert_contains(f->rec.at_end.error.msg, "nested deeper than 32");
}

/* 32 levels are allowed: the cap is not off by one. */
static void
test_depth_32_is_allowed(void **state)
{
	struct fixture *f = *state;
	char doc[8192];
	size_t len = 0;
	int i;

	/* feedback(1) > extension(2) > 30 more = 32. */
	len += (size_t)snprintf(doc + len, sizeof(doc) - len,
	    "<feedback>" META POLICY RECORD("192.0.2.1", "1") "<extension>");
	for (i = 0; i < 30; i++)
		len += (size_t)snprintf(doc + len, sizeof(doc) - len, "<a>");
	for (i = 0; i < 30; i++)
		len += (size_t)snprintf(doc + len, sizeof(doc) - len, "</a>");
	len += (size_t)snprintf(doc + len, sizeof(doc) - len,
	    "</extension></feedback>");
	assert_true(len < sizeof(doc));
	assert_int_equal(parse(doc, len, 0, &f->rec, f->warnings, &f->out), 0);
	assert_int_equal(f->rec.at_end.status, DM_STATUS_OK);
}

static void
test_text_limit_stops(void **state)
{
	struct fixture *f = *state;
	static const char head[] = "<feedback><report_metadata><org_name>";
	/* Well past the cap: libxml2 may hold back the last few hundred
	 * bytes of a text until it sees what follows. */
	size_t len = strlen(head) + DM_MAX_TEXT + 8192;
	char *doc = malloc(len + 1);

	assert_non_null(doc);
	memcpy(doc, head, strlen(head));
	memset(doc + strlen(head), 'a', len - strlen(head));
	assert_int_equal(parse(doc, len, 4096, &f->rec, f->warnings, &f->out),
	    -1);
	free(doc);
	assert_int_equal(f->out.feed_rc, -1);
	assert_int_equal(f->out.feed_err.code, DM_E_LIMIT);
	assert_contains(f->out.feed_err.msg, "in <org_name>: text longer than "
	    "65536 bytes");
	assert_int_equal(f->rec.ends, 1);
	assert_int_equal(f->rec.at_end.status, DM_STATUS_REJECTED);
	assert_int_equal(f->rec.records, 0);
}

/* Text under an element whose text is not kept is capped too. */
static void
test_ignored_text_limit_stops(void **state)
{
	struct fixture *f = *state;
	static const char head[] = "<feedback><extension>";
	size_t len = strlen(head) + DM_MAX_TEXT + 8192;
	char *doc = malloc(len + 1);

	assert_non_null(doc);
	memcpy(doc, head, strlen(head));
	memset(doc + strlen(head), 'b', len - strlen(head));
	assert_int_equal(parse(doc, len, 1000, &f->rec, f->warnings, &f->out),
	    -1);
	free(doc);
	assert_int_equal(f->out.feed_err.code, DM_E_LIMIT);
	assert_contains(f->out.feed_err.msg, "text longer than 65536 bytes");
}

/*
 * A NUL after <feedback> and a complete record: the parse stops, and the
 * report (whose <feedback> came before the NUL) ends rejected, whether
 * the bytes came in one piece or one at a time.
 */
static void
check_nul_byte(struct fixture *f, size_t chunk)
{
	char doc[4096], want[64];
	size_t len, nul_at;
	int n;

	recorder_free(&f->rec);
	recorder_init(&f->rec, 0);
	n = snprintf(doc, sizeof(doc), "<feedback>%s%s%s<record><row>"
	    "<source_ip>192.0.2.1", META, POLICY, RECORD("192.0.2.7", "1"));
	nul_at = (size_t)n;
	doc[nul_at] = '\0';
	len = nul_at + 1;
	len += (size_t)snprintf(doc + len, sizeof(doc) - len, "</source_ip>"
	    "<count>1</count></row></record></feedback>");
	assert_int_equal(parse(doc, len, chunk, &f->rec, f->warnings,
	    &f->out), -1);
	assert_int_equal(f->out.feed_rc, -1);
	assert_int_equal(f->out.feed_err.code, DM_E_DATA);
	snprintf(want, sizeof(want), "NUL byte at byte offset %zu", nul_at);
	assert_contains(f->out.feed_err.msg, want);
	if (f->rec.ends != 1)
		fail_msg("chunks of %zu bytes: %d report_end events, want 1 "
		    "(a rejected report)", chunk, f->rec.ends);
	assert_int_equal(f->rec.begins, 1);
	assert_int_equal(f->rec.at_end.status, DM_STATUS_REJECTED);
	assert_contains(f->rec.at_end.error.msg, want);
}

static void
test_nul_byte_stops_one_byte_at_a_time(void **state)
{
	check_nul_byte(*state, 1);
	check_nul_byte(*state, 100);
}

static void
test_nul_byte_stops_whole(void **state)
{
	check_nul_byte(*state, 0);
}

static void
test_windows1252_fallback(void **state)
{
	static const char doc[] =
		"<feedback>\n"
		"  <report_metadata>\n"
		"    <org_name>\x91Smart\x92 \x80 Corp</org_name>\n"
		"    <email>a@b.example</email>\n"
		"    <report_id>cp</report_id>\n"
		"    <date_range><begin>1700006400</begin><end>1700092799</end>"
		"</date_range>\n"
		"  </report_metadata>\n"
		POLICY RECORD("192.0.2.1", "1")
		"</feedback>\n";
	struct fixture *f = *state;
	const struct dm_warning *w;
	char want[128];

	assert_int_equal(parse_str(doc, &f->rec, f->warnings, &f->out), 0);
	assert_string_equal(f->rec.at_end.org_name,
	    "\xE2\x80\x98Smart\xE2\x80\x99 \xE2\x82\xAC Corp");
	w = find_warning(f->warnings, "read as Windows-1252");
	assert_non_null(w);
	snprintf(want, sizeof(want), "3 invalid UTF-8 byte(s) read as "
	    "Windows-1252 (first 0x91 at byte offset %zu)",
	    (size_t)(strchr(doc, 0x91) - doc));
	assert_string_equal(w->text, want);
}

/*
 * A document that declares a single-byte charset is left to libxml2:
 * ISO-8859-1 0xE9 is U+00E9, read once, not turned into UTF-8 by the
 * filter and then decoded again as Latin-1 ("Ã©").
 */
static void
test_declared_latin1(void **state)
{
	static const char doc[] =
		"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n"
		"<feedback><report_metadata><org_name>caf\xE9</org_name>"
		"<email>a@b.example</email><report_id>l1</report_id>"
		"<date_range><begin>1700006400</begin><end>1700092799</end>"
		"</date_range></report_metadata>"
		POLICY RECORD("192.0.2.1", "1") "</feedback>\n";
	struct fixture *f = *state;

	assert_int_equal(parse_str(doc, &f->rec, f->warnings, &f->out), 0);
	assert_string_equal(f->rec.at_end.org_name, "caf\xC3\xA9");
	assert_null(find_warning(f->warnings, "Windows-1252"));
}

static void
test_control_char_removed(void **state)
{
	static const char doc[] =
		"<feedback><report_metadata><org_name>Ex\x07"
		"ample\x01</org_name>"
		"<email>a@b.example</email><report_id>cc</report_id>"
		"<date_range><begin>1700006400</begin><end>1700092799</end>"
		"</date_range></report_metadata>"
		POLICY RECORD("192.0.2.1", "1") "</feedback>\n";
	struct fixture *f = *state;
	const struct dm_warning *w;
	char want[128];

	assert_int_equal(parse_str(doc, &f->rec, f->warnings, &f->out), 0);
	assert_string_equal(f->rec.at_end.org_name, "Example");
	w = find_warning(f->warnings, "control character(s) removed");
	assert_non_null(w);
	snprintf(want, sizeof(want), "2 control character(s) removed (first "
	    "0x07 at byte offset %zu)", (size_t)(strchr(doc, '\x07') - doc));
	assert_string_equal(w->text, want);
}

static void
test_not_feedback_root(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(parse_str("<?xml version=\"1.0\"?><rss><channel/>"
	    "</rss>", &f->rec, f->warnings, &f->out), -1);
	assert_false(f->out.has_report);
	assert_string_equal(f->out.root, "rss");
	assert_contains(f->out.err.msg, "root element is <rss>, not "
	    "<feedback>");
	assert_int_equal(f->rec.begins + f->rec.ends, 0);

	assert_int_equal(parse_str("", &f->rec, f->warnings, &f->out), -1);
	assert_contains(f->out.err.msg, "no XML element found");
}

/* Junk after </feedback> is a warning, not a reason to lose the report. */
static void
test_junk_after_feedback(void **state)
{
	static const char doc[] =
		"<feedback>" META POLICY RECORD("192.0.2.1", "2")
		"</feedback>\n<xs:schema>garbage";
	struct fixture *f = *state;

	assert_int_equal(parse_str(doc, &f->rec, f->warnings, &f->out), 0);
	assert_int_equal(f->rec.at_end.status, DM_STATUS_OK);
	assert_int_equal(f->rec.records, 1);
	assert_warning(f->warnings, "after </feedback> ignored");
}

/* A failing handler stops the parse and its error comes back as is. */
static void
test_handler_failure_passes_through(void **state)
{
	static const char doc[] =
		"<feedback>" META POLICY RECORD("192.0.2.1", "1")
		RECORD("192.0.2.2", "2") RECORD("192.0.2.3", "3")
		"</feedback>";
	struct fixture *f = *state;

	f->rec.fail_at_record = 2;
	assert_int_equal(parse_str(doc, &f->rec, f->warnings, &f->out), -1);
	assert_int_equal(f->out.err.code, DM_E_TEMP);
	assert_string_equal(f->out.err.msg, "the database is away");
	assert_int_equal(f->rec.records, 2);
}

/* Parallel records */

#define PAR_HEAD XML_DECL "<feedback xmlns:xsi=" \
	"\"http://www.w3.org/2001/XMLSchema-instance\">\n" META POLICY

/*
 * par_doc - a report of n records; record k (1-based) is replaced by
 * odd when odd is not NULL; line ends LF (crlf 0), CRLF (1) or none (2).
 * Free the result.
 */
static char *
par_doc(int n, int k, const char *odd, int crlf, size_t *len)
{
	struct dm_buf b, c;
	char rec[1024];
	size_t j;
	int i;

	dm_buf_init(&b, 64u << 20);
	assert_int_equal(dm_buf_append(&b, PAR_HEAD, strlen(PAR_HEAD)), 0);
	for (i = 1; i <= n; i++) {
		if (i == k && odd != NULL) {
			assert_int_equal(dm_buf_append(&b, odd, strlen(odd)), 0);
			continue;
		}
		snprintf(rec, sizeof(rec), "  <record>\n    <row>\n"
		    "      <source_ip>198.51.%d.%d</source_ip>\n"
		    "      <count>%d</count>\n      <policy_evaluated>\n"
		    "        <disposition>none</disposition>\n"
		    "        <dkim>%s</dkim><spf>fail</spf>\n"
		    "      </policy_evaluated>\n    </row>\n"
		    "    <identifiers><header_from>example.com</header_from>"
		    "</identifiers>\n    <auth_results><dkim><domain>d%d."
		    "example</domain><result>pass</result></dkim>"
		    "<spf><domain>example.com</domain><result>fail</result>"
		    "</spf></auth_results>\n  </record%s>\n",
		    i / 250, i % 250, i, i % 7 == 0 ? "PASS" : "pass", i % 3,
		    i % 11 == 0 ? " " : "");
		assert_int_equal(dm_buf_append(&b, rec, strlen(rec)), 0);
	}
	assert_int_equal(dm_buf_append(&b, "</feedback>\n", 12), 0);
	if (crlf) {
		/* 1: CRLF; 2: one line, no line ends at all. */
		dm_buf_init(&c, 64u << 20);
		for (j = 0; j < b.len; j++) {
			if (b.data[j] == '\n' && crlf == 2)
				continue;
			if (b.data[j] == '\n')
				assert_int_equal(dm_buf_append(&c, "\r", 1), 0);
			assert_int_equal(dm_buf_append(&c, b.data + j, 1), 0);
		}
		dm_buf_free(&b);
		b = c;
	}
	*len = b.len;
	return (char *)b.data;
}

/* "bytes=N" to "bytes=?": how far a stopped parse had read varies. */
static void
unbytes(struct dm_buf *b)
{
	char *s = (char *)b->data, *o = s, *end = s + b->len;

	while (s < end) {
		if (end - s > 6 && memcmp(s, "bytes=", 6) == 0) {
			memcpy(o, "bytes=?", 7);
			o += 7;
			for (s += 6; s < end && *s >= '0' && *s <= '9'; s++)
				;
			continue;
		}
		*o++ = *s++;
	}
	b->len = (size_t)(o - (char *)b->data);
	b->data[b->len] = '\0';
}

/* Every event, warning and result of one parse, as text. */
static void
par_dump(struct fixture *f, const char *doc, size_t len, size_t feed,
    struct recorder *r, int fail_at)
{
	size_t k;

	recorder_init(r, 1);
	r->fail_at_record = fail_at;
	parse(doc, len, feed, r, f->warnings, &f->out);
	for (k = 0; k < f->warnings->count; k++)
		dump(r, "warning %lu %s x%llu\n", f->warnings->items[k].line,
		    f->warnings->items[k].text,
		    (unsigned long long)f->warnings->items[k].count);
	dump(r, "dropped %llu\n", (unsigned long long)f->warnings->dropped);
	/* Not which call failed: with workers, records (and a handler's
	 * failure) may come in a later agg_feed or in agg_finish. */
	dump(r, "rc=%d %d %s\n", f->out.finish_rc, (int)f->out.err.code,
	    f->out.err.msg);
	if (fail_at > 0)
		unbytes(&r->dump);
}

/*
 * par_same - parallel parses (chunk sizes, feed sizes, with and without
 * hints) give what the serial parse gives; returns the most chunks any
 * of them handed to workers.
 */
static uint64_t
par_same(struct fixture *f, const char *doc, size_t len, int fail_at)
{
	static const size_t chunks[] = { 1, 57, 700, 64 * 1024 };
	static const size_t feeds[] = { 0, 1000, 4096 };
	struct recorder serial, r;
	uint64_t most = 0;
	size_t c, fd;
	int hints;

	/* Per feed size: a failing handler stops after the bytes fed. */
	for (fd = 0; fd < sizeof(feeds) / sizeof(feeds[0]); fd++) {
		par_threads = 0;
		par_dump(f, doc, len, feeds[fd], &serial, fail_at);
		assert_int_equal(f->out.chunks, 0);
		for (c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++)
			for (hints = 0; hints < 2; hints++) {
				par_threads = 2 + (unsigned)(c % 2);
				par_chunk = chunks[c];
				feed_with_hints = hints;
				par_dump(f, doc, len, feeds[fd], &r, fail_at);
				par_threads = 0;
				par_chunk = 0;
				feed_with_hints = 0;
				if (f->out.chunks > most)
					most = f->out.chunks;
				if (strcmp(dm_buf_cstr(&serial.dump),
				    dm_buf_cstr(&r.dump)) != 0) {
					print_first_difference(
					    dm_buf_cstr(&serial.dump),
					    dm_buf_cstr(&r.dump));
					fail_msg("chunk %zu, feed %zu, hints %d: "
					    "not what the serial parse gives",
					    chunks[c], feeds[fd], hints);
				}
				recorder_free(&r);
			}
		recorder_free(&serial);
	}
	return most;
}

/* Clean records are parsed by the workers, with the same result. */
static void
test_parallel_clean(void **state)
{
	struct fixture *f = *state;
	size_t len;
	char *doc;
	int crlf;

	for (crlf = 0; crlf < 3; crlf++) {
		doc = par_doc(300, 0, NULL, crlf, &len);
		/* All but the first record (the sync point), one a chunk. */
		assert_true(par_same(f, doc, len, 0) >= 299);
		free(doc);
	}
}

/* What a worker gives back is parsed serially, from there to the end. */
static void
test_parallel_falls_back(void **state)
{
	static const char *const odd[] = {
		"  <!-- </record> -->\n",
		"  <?pi </record> ?>\n",
		/* bytes for the filter: UTF-8, invalid UTF-8, a control */
		"  <record><row><source_ip>192.0.2.9</source_ip><count>1"
		"</count></row><identifiers><header_from>x\xC3\xA9.example"
		"</header_from></identifiers></record>\n",
		"  <record><row><source_ip>192.0.2.9</source_ip><count>1"
		"</count></row><identifiers><header_from>caf\xE9\x01.example"
		"</header_from></identifiers></record>\n",
		"  <record><row><source_ip>192.0.2.9</source_ip><count>1"
		"</count></row><identifiers><header_from><![CDATA[a.example]]>"
		"</header_from></identifiers></record>\n",
		/* an XML error, a rejection, a bigint overflow */
		"  <record><row><source_ip>192.0.2.9</source_ip><count>1"
		"</cnt></row></record>\n",
		"  <record><row><source_ip>192.0.2.9</source_ip></row>"
		"</record>\n",
		"  <record><row><source_ip>192.0.2.9</source_ip><count>"
		"9223372036854775800</count></row></record>\n",
		/* markup beside the records */
		"  <extension><x>1</x></extension>\n",
		"  <policy_published><domain>example.com</domain><p>reject</p>"
		"</policy_published>\n",
		"  <unknown/>\n  text in feedback\n",
		NULL,
	};
	struct fixture *f = *state;
	size_t i, len;
	char *doc;

	for (i = 0; odd[i] != NULL; i++) {
		doc = par_doc(120, 60, odd[i], (int)(i % 3), &len);
		/* The chunks before the odd one were the workers'. */
		assert_true(par_same(f, doc, len, 0) >= 50);
		free(doc);
	}
}

/* A record bigger than the fill may grow: the rest is parsed here. */
static void
test_parallel_big_record(void **state)
{
	static const char dkim[] = "<dkim><domain>big.example</domain>"
	    "<result>pass</result></dkim>\n";
	static const char rec_open[] = "<record><row><source_ip>192.0.2.1"
	    "</source_ip><count>5</count></row><auth_results>";
	struct fixture *f = *state;
	struct dm_buf odd;
	size_t len;
	char *doc;
	int i;

	dm_buf_init(&odd, 64u << 20);
	assert_int_equal(dm_buf_append(&odd, rec_open, sizeof(rec_open) - 1), 0);
	for (i = 0; i < 25000; i++)
		assert_int_equal(dm_buf_append(&odd, dkim, sizeof(dkim) - 1), 0);
	assert_int_equal(dm_buf_append(&odd, "</auth_results></record>\n", 25),
	    0);
	doc = par_doc(100, 50, dm_buf_cstr(&odd), 0, &len);
	assert_true(par_same(f, doc, len, 0) >= 40);
	assert_warning(f->warnings, "dkim results past 100");
	free(doc);
	dm_buf_free(&odd);
}

/* A handler that fails stops the parse at the same record. */
static void
test_parallel_handler_failure(void **state)
{
	struct fixture *f = *state;
	size_t len;
	char *doc = par_doc(200, 0, NULL, 0, &len);

	assert_true(par_same(f, doc, len, 150) > 0);
	par_threads = 2;
	par_chunk = 1;
	recorder_free(&f->rec);
	recorder_init(&f->rec, 0);
	f->rec.fail_at_record = 150;
	assert_int_equal(parse(doc, len, 0, &f->rec, f->warnings, &f->out), -1);
	par_threads = 0;
	par_chunk = 0;
	assert_int_equal(f->out.err.code, DM_E_TEMP);
	assert_int_equal(f->rec.records, 150);
	free(doc);
}

/* Records in a wrapper element: no worker. */
static void
test_parallel_not_for_wrapped(void **state)
{
	static const char doc[] =
		"<wrap><feedback>" META POLICY RECORD("192.0.2.1", "1")
		RECORD("192.0.2.2", "2") RECORD("192.0.2.3", "3")
		"</feedback></wrap>";
	struct fixture *f = *state;

	par_threads = 2;
	par_chunk = 1;
	assert_int_equal(parse_str(doc, &f->rec, f->warnings, &f->out), 0);
	par_threads = 0;
	par_chunk = 0;
	assert_int_equal(f->rec.records, 3);
	assert_int_equal(f->out.chunks, 0);
}

/* Streaming */

#define BIG_RECORDS	200000

static void
test_200k_records_stream(void **state)
{
	static const char head[] = XML_DECL "<feedback>\n" META POLICY;
	struct fixture *f = *state;
	struct agg_options opt;
	struct dm_handler h;
	struct agg_parser *p;
	struct dm_error err;
	char chunk[1024];
	uint64_t expect_messages = 0, bytes = 0;
	int i, n;

	memset(&opt, 0, sizeof(opt));
	opt.input = "big.xml";
	opt.where = "";
	opt.warnings = f->warnings;
	dm_warnings_clear(f->warnings);
	p = agg_new(&opt, recorder_handler(&f->rec, &h), &err);
	assert_non_null(p);
	assert_int_equal(agg_feed(p, head, strlen(head), &err), 0);
	bytes += strlen(head);
	for (i = 0; i < BIG_RECORDS; i++) {
		n = snprintf(chunk, sizeof(chunk),
		    "<record><row><source_ip>10.%d.%d.%d</source_ip>"
		    "<count>%d</count><policy_evaluated><disposition>none"
		    "</disposition><dkim>pass</dkim><spf>pass</spf>"
		    "</policy_evaluated></row><identifiers>"
		    "<header_from>example.com</header_from></identifiers>"
		    "<auth_results><dkim><domain>example.com</domain>"
		    "<result>pass</result></dkim></auth_results></record>\n",
		    (i >> 16) & 255, (i >> 8) & 255, i & 255, i % 7 + 1);
		expect_messages += (uint64_t)(i % 7 + 1);
		if (agg_feed(p, chunk, (size_t)n, &err) != 0)
			fail_msg("record %d: %s", i, err.msg);
		bytes += (uint64_t)n;
	}
	assert_int_equal(agg_feed(p, "</feedback>\n", 12, &err), 0);
	bytes += 12;
	assert_int_equal(agg_finish(p, &err), 0);
	agg_free(&p);

	assert_int_equal(f->rec.begins, 1);
	assert_int_equal(f->rec.records, BIG_RECORDS);
	assert_int_equal(f->rec.ends, 1);
	assert_int_equal(f->rec.at_end.status, DM_STATUS_OK);
	assert_true(f->rec.at_end.record_count == BIG_RECORDS);
	assert_true(f->rec.at_end.message_count == expect_messages);
	assert_true(f->rec.count_sum == expect_messages);
	assert_true(f->rec.at_end.payload_bytes == bytes);
	assert_true(f->rec.recs[MAX_COPIED - 1].index == MAX_COPIED);
	assert_int_equal(f->warnings->count, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(test_minimal_rfc7489),
		T(test_dmarc2),
		T(test_dmarc2_prefixed_namespace),
		T(test_chunk_sizes_give_identical_results),
		T(test_one_byte_at_a_time),
		T(test_out_of_order_children),
		T(test_enum_variants_warn),
		T(test_unknown_elements_ignored),
		T(test_reason_forms),
		T(test_missing_count_rejects),
		T(test_count_overflow_rejects),
		T(test_count_negative_rejects),
		T(test_count_sum_overflow_rejects),
		T(test_truncated_rejects),
		T(test_zero_records_rejects),
		T(test_missing_report_id_rejects),
		T(test_conflicting_report_id_rejects),
		T(test_date_range_year_9999_rejects),
		T(test_date_range_after_2099_rejects),
		T(test_wrong_namespace_rejects),
		T(test_record_before_metadata),
		T(test_doctype_xxe_stops),
		T(test_billion_laughs_stops),
		T(test_depth_limit_stops),
		T(test_depth_32_is_allowed),
		T(test_text_limit_stops),
		T(test_ignored_text_limit_stops),
		T(test_nul_byte_stops_one_byte_at_a_time),
		T(test_nul_byte_stops_whole),
		T(test_windows1252_fallback),
		T(test_declared_latin1),
		T(test_control_char_removed),
		T(test_not_feedback_root),
		T(test_junk_after_feedback),
		T(test_handler_failure_passes_through),
		T(test_parallel_clean),
		T(test_parallel_falls_back),
		T(test_parallel_big_record),
		T(test_parallel_handler_failure),
		T(test_parallel_not_for_wrapped),
		T(test_200k_records_stream),
#undef T
	};

	agg_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
