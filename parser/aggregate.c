/*
 * aggregate.c - streaming SAX2 parser for DMARC aggregate reports.
 *
 * The element tree is a small state machine keyed on (parent, local name),
 * see elements[] below; position and namespace never matter. Strings of
 * the report's metadata live in meta_arena for the whole report, strings
 * of a record in rec_arena, which is reset after each record has been
 * handed to the handler: that is what keeps memory flat.
 *
 * Bytes pass through filter_feed() before libxml2: it validates UTF-8
 * (documents declared UTF-8 or undeclared), reads invalid bytes as
 * Windows-1252, removes C0 control characters and refuses NUL bytes.
 * Line numbers are unchanged by it, so libxml2's positions stay right.
 */
#include <ctype.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/SAX2.h>
#include <nettle/sha2.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "common/arena.h"
#include "common/buf.h"
#include "parser/aggregate.h"

enum elem {
	E_DOC, E_WRAPPER, E_IGNORED, E_UNKNOWN, E_EXTENSION,
	E_FEEDBACK, E_VERSION,
	E_META, E_ORG_NAME, E_EMAIL, E_ECI, E_REPORT_ID, E_DATE_RANGE,
	E_BEGIN, E_END, E_META_ERROR, E_GENERATOR,
	E_POLICY, E_POL_DOMAIN, E_POL_ADKIM, E_POL_ASPF, E_POL_P, E_POL_SP,
	E_POL_NP, E_POL_PCT, E_POL_FO, E_POL_TESTING, E_POL_DISCOVERY,
	E_RECORD, E_ROW, E_SOURCE_IP, E_COUNT, E_POLICY_EVAL, E_PE_DISP,
	E_PE_DKIM, E_PE_SPF, E_REASON, E_REASON_TYPE, E_REASON_COMMENT,
	E_IDENTIFIERS, E_HEADER_FROM, E_ENVELOPE_FROM, E_ENVELOPE_TO,
	E_AUTH, E_AUTH_DKIM, E_DKIM_DOMAIN, E_DKIM_SELECTOR, E_DKIM_RESULT,
	E_DKIM_HUMAN, E_AUTH_SPF, E_SPF_DOMAIN, E_SPF_SCOPE, E_SPF_RESULT,
	E_SPF_HUMAN,
	E_COUNT_OF_ELEMS
};

#define F_TEXT	1u	/* collect the text of this element */
#define F_KEY	2u	/* a conflicting duplicate rejects the report */

struct elem_def {
	enum elem parent;
	const char *name;
	enum elem id;
	unsigned flags;
};

static const struct elem_def elements[] = {
	{ E_FEEDBACK, "version", E_VERSION, F_TEXT },
	{ E_FEEDBACK, "report_metadata", E_META, 0 },
	{ E_FEEDBACK, "policy_published", E_POLICY, 0 },
	{ E_FEEDBACK, "record", E_RECORD, 0 },
	{ E_FEEDBACK, "extension", E_EXTENSION, 0 },
	{ E_FEEDBACK, "extensions", E_EXTENSION, 0 },
	{ E_META, "org_name", E_ORG_NAME, F_TEXT | F_KEY },
	{ E_META, "email", E_EMAIL, F_TEXT },
	{ E_META, "extra_contact_info", E_ECI, F_TEXT },
	{ E_META, "report_id", E_REPORT_ID, F_TEXT | F_KEY },
	{ E_META, "date_range", E_DATE_RANGE, 0 },
	{ E_META, "error", E_META_ERROR, F_TEXT },
	{ E_META, "generator", E_GENERATOR, F_TEXT },
	{ E_DATE_RANGE, "begin", E_BEGIN, F_TEXT | F_KEY },
	{ E_DATE_RANGE, "end", E_END, F_TEXT | F_KEY },
	{ E_POLICY, "domain", E_POL_DOMAIN, F_TEXT | F_KEY },
	{ E_POLICY, "adkim", E_POL_ADKIM, F_TEXT },
	{ E_POLICY, "aspf", E_POL_ASPF, F_TEXT },
	{ E_POLICY, "p", E_POL_P, F_TEXT },
	{ E_POLICY, "sp", E_POL_SP, F_TEXT },
	{ E_POLICY, "np", E_POL_NP, F_TEXT },
	{ E_POLICY, "pct", E_POL_PCT, F_TEXT },
	{ E_POLICY, "fo", E_POL_FO, F_TEXT },
	{ E_POLICY, "testing", E_POL_TESTING, F_TEXT },
	{ E_POLICY, "discovery_method", E_POL_DISCOVERY, F_TEXT },
	{ E_RECORD, "row", E_ROW, 0 },
	{ E_RECORD, "identifiers", E_IDENTIFIERS, 0 },
	{ E_RECORD, "auth_results", E_AUTH, 0 },
	{ E_RECORD, "extension", E_EXTENSION, 0 },
	{ E_RECORD, "extensions", E_EXTENSION, 0 },
	{ E_ROW, "source_ip", E_SOURCE_IP, F_TEXT | F_KEY },
	{ E_ROW, "count", E_COUNT, F_TEXT | F_KEY },
	{ E_ROW, "policy_evaluated", E_POLICY_EVAL, 0 },
	{ E_POLICY_EVAL, "disposition", E_PE_DISP, F_TEXT },
	{ E_POLICY_EVAL, "dkim", E_PE_DKIM, F_TEXT },
	{ E_POLICY_EVAL, "spf", E_PE_SPF, F_TEXT },
	{ E_POLICY_EVAL, "reason", E_REASON, F_TEXT },
	{ E_REASON, "type", E_REASON_TYPE, F_TEXT },
	{ E_REASON, "comment", E_REASON_COMMENT, F_TEXT },
	{ E_IDENTIFIERS, "header_from", E_HEADER_FROM, F_TEXT },
	{ E_IDENTIFIERS, "envelope_from", E_ENVELOPE_FROM, F_TEXT },
	{ E_IDENTIFIERS, "envelope_to", E_ENVELOPE_TO, F_TEXT },
	{ E_AUTH, "dkim", E_AUTH_DKIM, 0 },
	{ E_AUTH, "spf", E_AUTH_SPF, 0 },
	{ E_AUTH_DKIM, "domain", E_DKIM_DOMAIN, F_TEXT },
	{ E_AUTH_DKIM, "selector", E_DKIM_SELECTOR, F_TEXT },
	{ E_AUTH_DKIM, "result", E_DKIM_RESULT, F_TEXT },
	{ E_AUTH_DKIM, "human_result", E_DKIM_HUMAN, F_TEXT },
	{ E_AUTH_SPF, "domain", E_SPF_DOMAIN, F_TEXT },
	{ E_AUTH_SPF, "scope", E_SPF_SCOPE, F_TEXT },
	{ E_AUTH_SPF, "result", E_SPF_RESULT, F_TEXT },
	{ E_AUTH_SPF, "human_result", E_SPF_HUMAN, F_TEXT },
};

#define N_ELEMENTS (sizeof(elements) / sizeof(elements[0]))
_Static_assert(E_COUNT_OF_ELEMS <= 64, "element ids index 64-bit masks");

/* Per parent, the indexes of its children in elements[] (built once). */
static unsigned char children[E_COUNT_OF_ELEMS][16];
static unsigned char child_count[E_COUNT_OF_ELEMS];
static unsigned elem_flags[E_COUNT_OF_ELEMS];

enum filter_mode {
	FILTER_UNDECIDED,
	FILTER_UTF8,	/* validate, Windows-1252 fallback, strip C0 */
	FILTER_BYTES,	/* a declared single-byte charset: strip C0 */
	FILTER_NONE	/* UTF-16/32: libxml2 alone */
};

#define FEED_CHUNK	(64 * 1024)

struct par;

struct agg_parser {
	xmlParserCtxtPtr ctxt;
	xmlSAXHandler sax;
	const struct dm_handler *handler;
	struct dm_report report;
	struct dm_record rec;
	struct dm_arena meta_arena;
	struct dm_arena rec_arena;
	struct dm_buf text;
	uint64_t ignored_text;		/* text length under a non-text elem */
	unsigned long text_line;	/* where the current text began */

	/* (parent, interned name) -> element: libxml2 hands out the same
	 * pointer for the same name, so most lookups are one compare. */
	struct {
		const xmlChar *name;
		unsigned char parent, id;
	} cache[256];
	enum elem stack[DM_MAX_XML_DEPTH + 1];
	const xmlChar *names[DM_MAX_XML_DEPTH + 1];
	int xml_depths[DM_MAX_XML_DEPTH + 1];	/* libxml2's depth of each */
	int depth;			/* entries on stack[] */
	int xml_depth;			/* libxml2's element depth */
	char root_name[64];
	char wrapper_name[64];

	int seen_feedback, feedback_closed, begun, ended, stopped;
	int meta_count, policy_count, meta_closed, policy_closed;
	int dmarc2_ns;
	uint64_t meta_seen, rec_seen, sub_seen;
	struct dm_dkim_result *cur_dkim;
	struct dm_spf_result *cur_spf;
	struct dm_reason *cur_reason;
	int reason_has_type;
	uint64_t dropped_dkim, dropped_spf, dropped_reasons;

	int at_end;			/* checks after the last byte */
	unsigned xml_errors;
	char last_xml_error[256];	/* for when libxml2 gives up */
	int fatal;			/* report rejected, parse stopped */
	int handler_failed;
	struct dm_error stop_err;	/* why parsing stopped */

	struct sha256_ctx sha;
	int sha_ready;

	/* filter */
	enum filter_mode mode;
	unsigned char head[256];	/* first bytes: the XML declaration */
	size_t head_len;
	unsigned char pend[4];		/* an incomplete UTF-8 sequence */
	size_t pend_len;
	uint64_t byte_offset;
	uint64_t bad_utf8, bad_utf8_first_off;
	unsigned bad_utf8_first;
	uint64_t controls, controls_first_off;
	unsigned controls_first;
	unsigned char *fbuf;		/* filtered output */
	unsigned char *comb;		/* pend + next chunk */

	/* parallel parsing of the records (see "Parallel records") */
	struct par *par;		/* the main parser's pool, or NULL */
	int worker;			/* a worker's parser of one chunk */
	int bail;			/* the worker met what it leaves */
};

static void
build_index(void)
{
	size_t i;

	if (child_count[E_FEEDBACK] != 0)
		return;
	for (i = 0; i < N_ELEMENTS; i++) {
		enum elem parent = elements[i].parent;

		children[parent][child_count[parent]++] = (unsigned char)i;
		elem_flags[elements[i].id] = elements[i].flags;
	}
}

void
agg_init(void)
{
	xmlInitParser();
	build_index();
}

static enum elem
lookup(enum elem parent, const xmlChar *name)
{
	unsigned i;

	for (i = 0; i < child_count[parent]; i++) {
		const struct elem_def *d = &elements[children[parent][i]];

		if (d->name[0] == (char)name[0] &&
		    strcmp(d->name, (const char *)name) == 0)
			return d->id;
	}
	return E_UNKNOWN;
}

static inline int
is_space(unsigned char c)
{
	return c == ' ' || c == '\n' || c == '\t' || c == '\r' ||
	    c == '\f' || c == '\v';
}

static unsigned long
cur_line(struct agg_parser *p)
{
	return p->ctxt != NULL ? (unsigned long)xmlSAX2GetLineNumber(p->ctxt)
	    : 0;
}

static const char *
cur_name(struct agg_parser *p)
{
	return p->depth > 0 ? (const char *)p->names[p->depth] : "document";
}

/* The error, placed at the current line, column and element. */
static void
set_located(struct agg_parser *p, enum dm_error_code code, const char *msg)
{
	if (p->ctxt != NULL && !p->at_end)
		dm_error_set(&p->stop_err, code, "line %lu, column %d, in <%s>: "
		    "%s", cur_line(p), xmlSAX2GetColumnNumber(p->ctxt),
		    cur_name(p), msg);
	else
		dm_error_set(&p->stop_err, code, "%s", msg);
}

/*
 * stop - end the parse with a reason. A data error after <feedback>
 * rejects the report; before it, the input is no report.
 */
static void
stop(struct agg_parser *p, enum dm_error_code code, const char *fmt, ...)
    DM_PRINTF(3, 4);

static void
stop(struct agg_parser *p, enum dm_error_code code, const char *fmt, ...)
{
	char msg[DM_ERROR_MSG_MAX];
	va_list ap;

	if (p->stopped)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	set_located(p, code, msg);
	p->stopped = 1;
	p->fatal = 1;
	if (p->ctxt != NULL)
		xmlStopParser(p->ctxt);
}

/*
 * reject - the report cannot be stored as it is (a missing key, a count
 * that is no number), but parsing goes on so that every problem and the
 * number of records are known. No record reaches the handler after it.
 */
static void
reject(struct agg_parser *p, const char *fmt, ...) DM_PRINTF(2, 3);

/*
 * A <begin> or <end> after this (2099-12-31T23:59:59Z) is no reporting
 * period: year 9999 and the like are refused, not stored.
 */
#define AGG_MAX_EPOCH		INT64_C(4102444799)
/* 2000-01-01: the earliest date read from milliseconds. */
#define AGG_MIN_MS_EPOCH	INT64_C(946684800)

/* Whether a namespace URI names DMARC (any case). */
static int
contains_dmarc(const char *uri)
{
	for (; *uri != '\0'; uri++)
		if (strncasecmp(uri, "dmarc", 5) == 0)
			return 1;
	return 0;
}

static void
reject(struct agg_parser *p, const char *fmt, ...)
{
	char msg[DM_ERROR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (p->fatal) {
		dm_warnings_add(p->report.warnings, cur_line(p), "also wrong: "
		    "%.240s", msg);
		return;
	}
	p->fatal = 1;
	set_located(p, DM_E_DATA, msg);
}

static void
warn(struct agg_parser *p, const char *fmt, ...) DM_PRINTF(2, 3);

static void
warn(struct agg_parser *p, const char *fmt, ...)
{
	char msg[DM_MAX_WARNING_TEXT];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	dm_warnings_add(p->report.warnings, cur_line(p), "%s", msg);
}

/* Trim white space; warn when there was any around a value. */
static const char *
trimmed(struct agg_parser *p, const char *elem_name, size_t *len_r)
{
	const char *s = dm_buf_cstr(&p->text);
	size_t len = p->text.len;
	size_t orig = len;

	while (len > 0 && is_space((unsigned char)*s)) {
		s++;
		len--;
	}
	while (len > 0 && is_space((unsigned char)s[len - 1]))
		len--;
	if (len != orig && len > 0)
		warn(p, "white space around the value of <%s> removed",
		    elem_name);
	*len_r = len;
	return s;
}

static char *
keep(struct agg_parser *p, struct dm_arena *arena, const char *s, size_t len)
{
	char *copy = dm_arena_strndup(arena, s, len);

	if (copy == NULL)
		stop(p, DM_E_LIMIT, "%s text exceeds the limit of %zu bytes",
		    arena == &p->rec_arena ? "the record's" : "the metadata's",
		    arena->max);
	return copy;
}

/* Domains: lower case, no trailing dot (canonical form, not a repair). */
static char *
keep_domain(struct agg_parser *p, struct dm_arena *arena, const char *s,
    size_t len)
{
	char *copy;
	size_t i;

	if (len > 1 && s[len - 1] == '.')
		len--;
	copy = keep(p, arena, s, len);
	if (copy != NULL)
		for (i = 0; i < len; i++)
			if (copy[i] >= 'A' && copy[i] <= 'Z')
				copy[i] = (char)(copy[i] + ('a' - 'A'));
	return copy;
}

/*
 * set_string - store a single-valued field. A second occurrence with the
 * same value is a warning; with another value it rejects the report for a
 * key field (which one is right?) and keeps the first otherwise.
 */
static void
set_string(struct agg_parser *p, uint64_t *seen, enum elem id,
    const char **field, const char *value)
{
	const char *name = cur_name(p);

	if (value == NULL)
		return;
	if ((*seen & (1ULL << id)) == 0) {
		*seen |= 1ULL << id;
		*field = value;
		return;
	}
	if (*field != NULL && strcmp(*field, value) == 0) {
		warn(p, "duplicate <%s> with the same value ignored", name);
		return;
	}
	if (elem_flags[id] & F_KEY)
		reject(p, "conflicting duplicate <%s>: '%.80s' and "
		    "'%.80s'", name, *field ? *field : "", value);
	else
		warn(p, "duplicate <%s>: kept '%.60s', ignored '%.60s'", name,
		    *field ? *field : "", value);
}

static int
set_enum(struct agg_parser *p, enum dm_enum_type type, const char *raw,
    size_t len, const char *what)
{
	int value;
	enum dm_enum_match m = dm_enum_parse(type, raw, len, &value);

	switch (m) {
	case DM_MATCH_EXACT:
		break;
	case DM_MATCH_CASE:
		warn(p, "%s '%.*s' normalised to '%s'", what,
		    (int)(len > 40 ? 40 : len), raw, dm_enum_name(type, value));
		break;
	case DM_MATCH_ALIAS:
		warn(p, "%s '%.*s' read as '%s'", what,
		    (int)(len > 40 ? 40 : len), raw, dm_enum_name(type, value));
		break;
	case DM_MATCH_NONE:
		warn(p, "unrecognised %s '%.*s' kept as 'unknown'", what,
		    (int)(len > 40 ? 40 : len), raw);
		break;
	}
	return value;
}

/* Enumerated single-valued fields: raw string plus canonical value. */
static void
set_enum_field(struct agg_parser *p, uint64_t *seen, enum elem id,
    struct dm_arena *arena, enum dm_enum_type type, const char *what,
    int *value, const char **raw_field, const char *s, size_t len)
{
	const char *raw;
	const char *before = *raw_field;

	if (len == 0 && type == DM_ENUM_REASON) {
		warn(p, "empty reason type read as 'other'");
		*value = DM_REASON_OTHER;
		*raw_field = "";
		*seen |= 1ULL << id;
		return;
	}
	raw = keep(p, arena, s, len);
	if (raw == NULL)
		return;
	set_string(p, seen, id, raw_field, raw);
	if (*raw_field == raw && before != raw)
		*value = set_enum(p, type, s, len, what);
}

static void
begin_report(struct agg_parser *p);

static void
handle_meta_value(struct agg_parser *p, enum elem id, const char *s,
    size_t len)
{
	struct dm_report *r = &p->report;
	struct dm_arena *a = &p->meta_arena;
	const char *why, *repair, *value;
	int64_t t;

	switch (id) {
	case E_VERSION:
		set_string(p, &p->meta_seen, id, &r->version,
		    keep(p, a, s, len));
		break;
	case E_ORG_NAME:
		set_string(p, &p->meta_seen, id, &r->org_name,
		    keep(p, a, s, len));
		break;
	case E_EMAIL:
		set_string(p, &p->meta_seen, id, &r->email, keep(p, a, s, len));
		break;
	case E_ECI:
		set_string(p, &p->meta_seen, id, &r->extra_contact_info,
		    keep(p, a, s, len));
		break;
	case E_REPORT_ID:
		set_string(p, &p->meta_seen, id, &r->report_id,
		    keep(p, a, s, len));
		break;
	case E_GENERATOR:
		set_string(p, &p->meta_seen, id, &r->generator,
		    keep(p, a, s, len));
		break;
	case E_META_ERROR:
		if (r->error_count == DM_MAX_META_ERRORS) {
			warn(p, "more than %d <error> elements: the rest "
			    "ignored", DM_MAX_META_ERRORS);
			break;
		}
		value = keep(p, a, s, len);
		if (value != NULL)
			r->errors[r->error_count++] = value;
		break;
	case E_BEGIN:
	case E_END:
		value = keep(p, a, s, len);
		if (value == NULL)
			break;
		if (dm_parse_epoch(value, &t, &why, &repair) != 0) {
			reject(p, "'%.60s' %s", value, why);
			break;
		}
		if (t > AGG_MAX_EPOCH) {
			reject(p, "'%.60s' is after 2099: no report covers "
			    "that period", value);
			break;
		}
		/* Seconds past 5138 were read as milliseconds (common/
		 * report.c); before 2000 as milliseconds, they are no date
		 * in either reading (year 9999 in seconds lands in 1978). */
		if (repair != NULL && strncmp(repair, "milliseconds", 12) ==
		    0 && t < AGG_MIN_MS_EPOCH) {
			reject(p, "'%.60s' is out of range: after 2099 as "
			    "seconds, before 2000 as milliseconds", value);
			break;
		}
		if (repair != NULL)
			warn(p, "<%s> '%.40s': %s", cur_name(p), value, repair);
		if ((p->meta_seen & (1ULL << id)) != 0) {
			int64_t old = id == E_BEGIN ? r->begin : r->end;

			if (old != t)
				reject(p, "conflicting duplicate <%s>: "
				    "%" PRId64 " and %" PRId64, cur_name(p),
				    old, t);
			else
				warn(p, "duplicate <%s> with the same value "
				    "ignored", cur_name(p));
			break;
		}
		p->meta_seen |= 1ULL << id;
		if (id == E_BEGIN) {
			r->begin = t;
			r->has_begin = 1;
		} else {
			r->end = t;
			r->has_end = 1;
		}
		break;
	case E_POL_DOMAIN:
		set_string(p, &p->meta_seen, id, &r->policy.domain,
		    keep_domain(p, a, s, len));
		break;
	case E_POL_ADKIM:
		set_enum_field(p, &p->meta_seen, id, a, DM_ENUM_ALIGNMENT,
		    "adkim", &r->policy.adkim, &r->policy.adkim_raw, s, len);
		break;
	case E_POL_ASPF:
		set_enum_field(p, &p->meta_seen, id, a, DM_ENUM_ALIGNMENT,
		    "aspf", &r->policy.aspf, &r->policy.aspf_raw, s, len);
		break;
	case E_POL_P:
		set_enum_field(p, &p->meta_seen, id, a, DM_ENUM_POLICY,
		    "policy p", &r->policy.p, &r->policy.p_raw, s, len);
		break;
	case E_POL_SP:
		set_enum_field(p, &p->meta_seen, id, a, DM_ENUM_POLICY,
		    "policy sp", &r->policy.sp, &r->policy.sp_raw, s, len);
		break;
	case E_POL_NP:
		set_enum_field(p, &p->meta_seen, id, a, DM_ENUM_POLICY,
		    "policy np", &r->policy.np, &r->policy.np_raw, s, len);
		break;
	case E_POL_TESTING:
		set_enum_field(p, &p->meta_seen, id, a, DM_ENUM_TESTING,
		    "testing", &r->policy.testing, &r->policy.testing_raw, s,
		    len);
		break;
	case E_POL_DISCOVERY:
		set_enum_field(p, &p->meta_seen, id, a, DM_ENUM_DISCOVERY,
		    "discovery_method", &r->policy.discovery_method,
		    &r->policy.discovery_method_raw, s, len);
		break;
	case E_POL_FO:
		set_string(p, &p->meta_seen, id, &r->policy.fo,
		    keep(p, a, s, len));
		break;
	case E_POL_PCT: {
		uint64_t pct;
		const char *before = r->policy.pct_raw;

		value = keep(p, a, s, len);
		if (value == NULL)
			break;
		set_string(p, &p->meta_seen, id, &r->policy.pct_raw, value);
		if (r->policy.pct_raw != value || before == value)
			break;
		if (dm_parse_uint64(value, &pct, &why) != 0 || pct > 100) {
			warn(p, "<pct> '%.40s' is not a percentage: ignored",
			    value);
			r->policy.pct = -1;
		} else
			r->policy.pct = (int)pct;
		break;
	}
	default:
		break;
	}
}

static void
handle_record_value(struct agg_parser *p, enum elem id, const char *s,
    size_t len)
{
	struct dm_record *rec = &p->rec;
	struct dm_arena *a = &p->rec_arena;
	const char *why, *value;
	char canon[64];

	switch (id) {
	case E_SOURCE_IP:
		value = keep(p, a, s, len);
		if (value == NULL)
			break;
		set_string(p, &p->rec_seen, id, &rec->source_ip_raw, value);
		if (rec->source_ip_raw != value)
			break;
		if (dm_ip_canonical(value, canon, sizeof(canon)) == 0)
			rec->source_ip = keep(p, a, canon, strlen(canon));
		else {
			rec->source_ip = NULL;
			warn(p, "<source_ip> '%.60s' is not an IP address: "
			    "kept as unknown", value);
		}
		break;
	case E_COUNT: {
		uint64_t count;

		value = keep(p, a, s, len);
		if (value == NULL)
			break;
		if (dm_parse_uint64(value, &count, &why) != 0) {
			reject(p, "'%.60s' %s", value, why);
			break;
		}
		if ((p->rec_seen & (1ULL << id)) != 0) {
			if (count != rec->count)
				reject(p, "conflicting duplicate "
				    "<count>: %" PRIu64 " and %" PRIu64,
				    rec->count, count);
			else
				warn(p, "duplicate <count> with the same value "
				    "ignored");
			break;
		}
		p->rec_seen |= 1ULL << id;
		rec->count = count;
		break;
	}
	case E_PE_DISP:
		set_enum_field(p, &p->rec_seen, id, a, DM_ENUM_DISPOSITION,
		    "disposition", &rec->disposition, &rec->disposition_raw, s,
		    len);
		break;
	case E_PE_DKIM:
		set_enum_field(p, &p->rec_seen, id, a, DM_ENUM_VERDICT,
		    "policy_evaluated dkim", &rec->dkim, &rec->dkim_raw, s,
		    len);
		break;
	case E_PE_SPF:
		set_enum_field(p, &p->rec_seen, id, a, DM_ENUM_VERDICT,
		    "policy_evaluated spf", &rec->spf, &rec->spf_raw, s, len);
		break;
	case E_REASON_TYPE:
		if (p->cur_reason == NULL)
			break;
		p->reason_has_type = 1;
		set_enum_field(p, &p->sub_seen, id, a, DM_ENUM_REASON,
		    "reason type", &p->cur_reason->type,
		    &p->cur_reason->type_raw, s, len);
		break;
	case E_REASON_COMMENT:
		if (p->cur_reason != NULL)
			set_string(p, &p->sub_seen, id, &p->cur_reason->comment,
			    keep(p, a, s, len));
		break;
	case E_HEADER_FROM:
		set_string(p, &p->rec_seen, id, &rec->header_from,
		    keep_domain(p, a, s, len));
		break;
	case E_ENVELOPE_FROM:
		set_string(p, &p->rec_seen, id, &rec->envelope_from,
		    keep_domain(p, a, s, len));
		break;
	case E_ENVELOPE_TO:
		set_string(p, &p->rec_seen, id, &rec->envelope_to,
		    keep_domain(p, a, s, len));
		break;
	case E_DKIM_DOMAIN:
		if (p->cur_dkim != NULL)
			set_string(p, &p->sub_seen, id, &p->cur_dkim->domain,
			    keep_domain(p, a, s, len));
		break;
	case E_DKIM_SELECTOR:
		if (p->cur_dkim != NULL)
			set_string(p, &p->sub_seen, id, &p->cur_dkim->selector,
			    keep(p, a, s, len));
		break;
	case E_DKIM_RESULT:
		if (p->cur_dkim != NULL)
			set_enum_field(p, &p->sub_seen, id, a,
			    DM_ENUM_DKIM_RESULT, "dkim result",
			    &p->cur_dkim->result, &p->cur_dkim->result_raw, s,
			    len);
		break;
	case E_DKIM_HUMAN:
		if (p->cur_dkim != NULL)
			set_string(p, &p->sub_seen, id,
			    &p->cur_dkim->human_result, keep(p, a, s, len));
		break;
	case E_SPF_DOMAIN:
		if (p->cur_spf != NULL)
			set_string(p, &p->sub_seen, id, &p->cur_spf->domain,
			    keep_domain(p, a, s, len));
		break;
	case E_SPF_SCOPE:
		if (p->cur_spf != NULL)
			set_enum_field(p, &p->sub_seen, id, a,
			    DM_ENUM_SPF_SCOPE, "spf scope", &p->cur_spf->scope,
			    &p->cur_spf->scope_raw, s, len);
		break;
	case E_SPF_RESULT:
		if (p->cur_spf != NULL)
			set_enum_field(p, &p->sub_seen, id, a,
			    DM_ENUM_SPF_RESULT, "spf result",
			    &p->cur_spf->result, &p->cur_spf->result_raw, s,
			    len);
		break;
	case E_SPF_HUMAN:
		if (p->cur_spf != NULL)
			set_string(p, &p->sub_seen, id,
			    &p->cur_spf->human_result, keep(p, a, s, len));
		break;
	default:
		break;
	}
}

static void
record_reset(struct agg_parser *p)
{
	struct dm_record *rec = &p->rec;

	if (!p->worker)		/* a worker's strings live until commit */
		dm_arena_reset(&p->rec_arena);
	rec->line = 0;
	rec->source_ip = rec->source_ip_raw = NULL;
	rec->count = 0;
	rec->disposition = rec->dkim = rec->spf = 0;
	rec->disposition_raw = rec->dkim_raw = rec->spf_raw = NULL;
	rec->reason_count = rec->dkim_count = rec->spf_count = 0;
	rec->header_from = rec->envelope_from = rec->envelope_to = NULL;
	p->rec_seen = 0;
	p->cur_dkim = NULL;
	p->cur_spf = NULL;
	p->cur_reason = NULL;
}

/*
 * check_meta - what a report cannot be stored without: the parts of its
 * key (reporter, report_id, period, policy domain). Returns -1 after
 * stop() when one is missing.
 */
static int
check_meta(struct agg_parser *p)
{
	struct dm_report *r = &p->report;

	if ((r->org_name == NULL || r->org_name[0] == '\0') &&
	    r->email != NULL && strchr(r->email, '@') != NULL &&
	    strchr(r->email, '@')[1] != '\0') {
		const char *domain = strchr(r->email, '@') + 1;
		size_t len = strcspn(domain, ">) \t");

		/* The reporter is still known: by its address. */
		if (len > 0) {
			warn(p, "<org_name> %s: the reporter is taken from "
			    "<email> ('%.*s')", r->org_name ? "is empty" :
			    "is missing", (int)len, domain);
			r->org_name = keep_domain(p, &p->meta_arena, domain,
			    len);
		}
	}
	if (p->meta_count == 0)
		reject(p, "the report has no <report_metadata>");
	else if (r->org_name == NULL || r->org_name[0] == '\0')
		reject(p, "<report_metadata> has no <org_name>");
	else if (r->report_id == NULL || r->report_id[0] == '\0')
		reject(p, "<report_metadata> has no <report_id>");
	else if (!r->has_begin || !r->has_end)
		reject(p, "<report_metadata> has no complete "
		    "<date_range> (<begin> and <end>)");
	else if (r->end < r->begin)
		reject(p, "<date_range> ends (%" PRId64 ") before it "
		    "begins (%" PRId64 ")", r->end, r->begin);
	else if (p->policy_count == 0)
		reject(p, "the report has no <policy_published>");
	else if (r->policy.domain == NULL || r->policy.domain[0] == '\0')
		reject(p, "<policy_published> has no <domain>");
	return p->fatal ? -1 : 0;
}

/* Warnings about the metadata, once it is all known. */
static void
review_meta(struct agg_parser *p)
{
	struct dm_report *r = &p->report;

	if (r->email == NULL)
		warn(p, "<report_metadata> has no <email>");
	if (r->policy.p == DM_POLICY_UNSET)
		warn(p, "<policy_published> has no <p>");
	if (r->has_begin && r->begin < 1325376000)	/* 2012-01-01 */
		warn(p, "<date_range> begins at %" PRId64 ", before 2012: "
		    "the period is implausible", r->begin);
	if (r->has_begin && r->has_end && r->end - r->begin > 27 * 3600)
		warn(p, "the report spans %" PRId64 " hours (more than 27)",
		    (r->end - r->begin + 3599) / 3600);
}

static void
decide_schema(struct agg_parser *p)
{
	struct dm_report *r = &p->report;

	if (p->dmarc2_ns || (r->version != NULL &&
	    strncmp(r->version, "2.0", 3) == 0))
		r->schema = DM_SCHEMA_DMARC2;
	else
		r->schema = DM_SCHEMA_RFC7489;
}

static void
begin_report(struct agg_parser *p)
{
	struct dm_error err;

	if (p->begun)
		return;
	p->begun = 1;
	decide_schema(p);
	if (p->meta_closed && p->policy_closed) {
		if (check_meta(p) != 0)
			return;
	} else if (!p->feedback_closed)
		warn(p, "<record> before <%s>: the records' report "
		    "identifiers are only known at the end",
		    p->meta_closed ? "policy_published" : "report_metadata");
	if (p->handler->report_begin == NULL)
		return;
	dm_error_clear(&err);
	if (p->handler->report_begin(p->handler->ctx, &p->report, &err) != 0) {
		p->stop_err = err;
		p->handler_failed = 1;
		p->stopped = 1;
		xmlStopParser(p->ctxt);
	}
}

static void
finish_record(struct agg_parser *p)
{
	struct dm_report *r = &p->report;
	struct dm_record *rec = &p->rec;
	struct dm_error err;
	int complete = 1;

	r->record_count++;
	if ((p->rec_seen & (1ULL << E_COUNT)) == 0) {
		reject(p, "record %" PRIu64 " (line %lu) has no <count>",
		    rec->index, rec->line);
		complete = 0;
	}
	if ((p->rec_seen & (1ULL << E_SOURCE_IP)) == 0)
		warn(p, "a record has no <source_ip>");
	if ((p->rec_seen & (1ULL << E_PE_DISP)) == 0)
		warn(p, "a record has no <policy_evaluated> <disposition>");
	if ((p->rec_seen & (1ULL << E_HEADER_FROM)) == 0)
		warn(p, "a record has no <header_from>");
	if (complete && rec->count > (uint64_t)INT64_MAX - r->message_count) {
		reject(p, "the sum of <count> exceeds 9223372036854775807 "
		    "(a signed 64-bit bigint)");
		complete = 0;
	}
	if (complete)
		r->message_count += rec->count;
	if (!p->fatal && p->handler->record != NULL) {
		dm_error_clear(&err);
		if (p->handler->record(p->handler->ctx, r, rec, &err) != 0) {
			p->stop_err = err;
			p->handler_failed = 1;
			p->stopped = 1;
			xmlStopParser(p->ctxt);
		}
	}
	record_reset(p);
}

static void
on_start(struct agg_parser *p, enum elem id, const xmlChar *uri)
{
	struct dm_record *rec = &p->rec;

	switch (id) {
	case E_FEEDBACK:
		p->seen_feedback = 1;
		if (uri != NULL) {
			p->report.namespace_uri = keep(p, &p->meta_arena,
			    (const char *)uri, strlen((const char *)uri));
			p->dmarc2_ns = strcmp((const char *)uri,
			    "urn:ietf:params:xml:ns:dmarc-2.0") == 0 ||
			    strcmp((const char *)uri,
			    "http://dmarc.org/dmarc-xml/0.2") == 0;
			/* Any DMARC namespace will do (several are in use);
			 * one that is not is another format's <feedback>. */
			if (uri[0] != '\0' && !contains_dmarc((const char *)uri))
				reject(p, "<feedback> is in the namespace "
				    "'%.200s', not a DMARC namespace",
				    (const char *)uri);
		}
		if (p->wrapper_name[0] != '\0')
			warn(p, "<feedback> found inside <%s>",
			    p->wrapper_name);
		break;
	case E_META:
		if (++p->meta_count > 1)
			warn(p, "more than one <report_metadata>");
		break;
	case E_POLICY:
		if (++p->policy_count > 1)
			warn(p, "more than one <policy_published>");
		break;
	case E_RECORD:
		begin_report(p);
		record_reset(p);
		rec->line = cur_line(p);
		rec->index = p->report.record_count + 1;
		break;
	case E_AUTH_DKIM:
		p->sub_seen = 0;
		if (rec->dkim_count == DM_MAX_DKIM_RESULTS) {
			p->dropped_dkim++;
			p->cur_dkim = NULL;
			break;
		}
		p->cur_dkim = &rec->dkim_results[rec->dkim_count++];
		memset(p->cur_dkim, 0, sizeof(*p->cur_dkim));
		break;
	case E_AUTH_SPF:
		p->sub_seen = 0;
		if (rec->spf_count == DM_MAX_SPF_RESULTS) {
			p->dropped_spf++;
			p->cur_spf = NULL;
			break;
		}
		p->cur_spf = &rec->spf_results[rec->spf_count++];
		memset(p->cur_spf, 0, sizeof(*p->cur_spf));
		break;
	case E_REASON:
		p->sub_seen = 0;
		p->reason_has_type = 0;
		if (rec->reason_count == DM_MAX_REASONS) {
			p->dropped_reasons++;
			p->cur_reason = NULL;
			break;
		}
		p->cur_reason = &rec->reasons[rec->reason_count++];
		memset(p->cur_reason, 0, sizeof(*p->cur_reason));
		break;
	default:
		break;
	}
}

static void
on_end(struct agg_parser *p, enum elem id)
{
	const char *s;
	size_t len;

	if (elem_flags[id] & F_TEXT) {
		s = trimmed(p, cur_name(p), &len);
		if (id == E_REASON) {
			/* <reason>forwarded</reason>: the text is the type. */
			if (len > 0 && !p->reason_has_type &&
			    p->cur_reason != NULL) {
				warn(p, "<reason> given as text, read as its "
				    "<type>");
				p->sub_seen = 0;
				handle_record_value(p, E_REASON_TYPE, s, len);
			} else if (!p->reason_has_type &&
			    p->cur_reason != NULL) {
				warn(p, "<reason> without <type> read as "
				    "'other'");
				p->cur_reason->type = DM_REASON_OTHER;
			}
		} else if (id < E_RECORD)
			handle_meta_value(p, id, s, len);
		else
			handle_record_value(p, id, s, len);
		dm_buf_reset(&p->text);
		return;
	}
	switch (id) {
	case E_RECORD:
		finish_record(p);
		break;
	case E_META:
		p->meta_closed = 1;
		break;
	case E_POLICY:
		p->policy_closed = 1;
		break;
	case E_FEEDBACK:
		p->feedback_closed = 1;
		break;
	default:
		break;
	}
}

/*
 * close_up_to - an element that belongs to an ancestor of the current one
 * (<report_id> inside <email>, after markup in a text broke the nesting):
 * close what is open below that ancestor and place it there. Returns the
 * element's id, or E_UNKNOWN when no ancestor knows it.
 */
static enum elem
close_up_to(struct agg_parser *p, const xmlChar *name)
{
	enum elem id;
	int k;

	for (k = p->depth - 1; k >= 1; k--) {
		enum elem ancestor = p->stack[k];

		if (ancestor == E_IGNORED || ancestor == E_UNKNOWN ||
		    ancestor == E_EXTENSION || ancestor == E_WRAPPER)
			return E_UNKNOWN;
		id = lookup(ancestor, name);
		if (id == E_UNKNOWN)
			continue;
		warn(p, "<%.40s> inside <%s>: <%s> closed early to repair the "
		    "nesting", name, cur_name(p), (const char *)p->names[k + 1]);
		while (p->depth > k && !p->stopped) {
			on_end(p, p->stack[p->depth]);
			p->depth--;
		}
		return id;
	}
	return E_UNKNOWN;
}

static void
worker_bail(struct agg_parser *p)
{
	p->bail = 1;
	p->stopped = 1;
	if (p->ctxt != NULL)
		xmlStopParser(p->ctxt);
}

static void	par_root(struct agg_parser *, int, const xmlChar **);

static void
sax_start(void *ctx, const xmlChar *localname, const xmlChar *prefix,
    const xmlChar *uri, int nb_namespaces, const xmlChar **namespaces,
    int nb_attributes, int nb_defaulted, const xmlChar **attributes)
{
	struct agg_parser *p = ctx;
	enum elem parent, id;
	int i;

	(void)prefix;
	(void)nb_defaulted;
	if (p->stopped)
		return;
	for (i = 0; i < nb_attributes; i++) {
		const xmlChar *value = attributes[i * 5 + 3];
		const xmlChar *end = attributes[i * 5 + 4];

		if (end - value > DM_MAX_ATTR) {
			stop(p, DM_E_LIMIT, "attribute '%.40s' of <%.40s> is "
			    "longer than %d bytes", attributes[i * 5],
			    localname, DM_MAX_ATTR);
			return;
		}
	}
	if (p->xml_depth >= DM_MAX_XML_DEPTH) {
		stop(p, DM_E_LIMIT, "elements nested deeper than %d levels",
		    DM_MAX_XML_DEPTH);
		return;
	}
	p->xml_depth++;
	parent = p->stack[p->depth];
	if (p->depth == 0 && p->root_name[0] == '\0')
		snprintf(p->root_name, sizeof(p->root_name), "%s", localname);
	if (parent == E_DOC || parent == E_WRAPPER) {
		if (strcmp((const char *)localname, "feedback") != 0)
			id = E_WRAPPER;
		else if (p->seen_feedback) {
			stop(p, DM_E_DATA, "a second <feedback> element");
			return;
		} else {
			id = E_FEEDBACK;
			if (parent == E_DOC && p->par != NULL)
				par_root(p, nb_namespaces, namespaces);
		}
		if (id == E_WRAPPER && parent == E_DOC &&
		    p->wrapper_name[0] == '\0')
			snprintf(p->wrapper_name, sizeof(p->wrapper_name), "%s",
			    localname);
	} else if (parent == E_IGNORED || parent == E_UNKNOWN ||
	    parent == E_EXTENSION)
		id = E_IGNORED;
	else {
		unsigned h = (unsigned)(((uintptr_t)localname >> 3) ^
		    ((uintptr_t)localname >> 11) ^ (parent * 37u)) & 255u;

		if (p->cache[h].name == localname && p->cache[h].parent == parent)
			id = (enum elem)p->cache[h].id;
		else {
			id = lookup(parent, localname);
			p->cache[h].name = localname;
			p->cache[h].parent = (unsigned char)parent;
			p->cache[h].id = (unsigned char)id;
		}
		/* A worker parses records only; anything else beside them
		 * is the main parser's business. */
		if (p->worker && parent == E_FEEDBACK && id != E_RECORD) {
			worker_bail(p);
			return;
		}
		if (id == E_UNKNOWN)
			id = close_up_to(p, localname);
		if (id == E_UNKNOWN)
			warn(p, "unknown element <%.60s> in <%s> ignored",
			    localname, cur_name(p));
	}
	/* Results past the per-record caps are skipped whole. */
	if ((id == E_AUTH_DKIM &&
	    p->rec.dkim_count == DM_MAX_DKIM_RESULTS) ||
	    (id == E_AUTH_SPF && p->rec.spf_count == DM_MAX_SPF_RESULTS) ||
	    (id == E_REASON && p->rec.reason_count == DM_MAX_REASONS)) {
		on_start(p, id, uri);
		id = E_IGNORED;
	}
	p->depth++;
	p->stack[p->depth] = id;
	p->names[p->depth] = localname;
	p->xml_depths[p->depth] = p->xml_depth;
	p->ignored_text = 0;
	p->text_line = cur_line(p);
	if (elem_flags[id] & F_TEXT)
		dm_buf_reset(&p->text);
	on_start(p, id, uri);
}

static void
sax_end(void *ctx, const xmlChar *localname, const xmlChar *prefix,
    const xmlChar *uri)
{
	struct agg_parser *p = ctx;

	(void)localname;
	(void)prefix;
	(void)uri;
	if (p->stopped || p->xml_depth == 0)
		return;
	p->xml_depth--;
	/* Entries already closed by close_up_to() are gone from stack[]. */
	while (p->depth > 0 && p->xml_depths[p->depth] > p->xml_depth &&
	    !p->stopped) {
		on_end(p, p->stack[p->depth]);
		p->depth--;
	}
	p->ignored_text = 0;
	p->text_line = cur_line(p);
}

/*
 * stop_text - a text over the limit. Placed where the text began: how
 * far libxml2 has read when the limit trips depends on how the bytes
 * were split, and the message must not.
 */
static void
stop_text(struct agg_parser *p)
{
	if (p->stopped)
		return;
	stop(p, DM_E_LIMIT, "text longer than %d bytes", DM_MAX_TEXT);
	dm_error_set(&p->stop_err, DM_E_LIMIT, "line %lu, in <%s>: text "
	    "longer than %d bytes", p->text_line, cur_name(p), DM_MAX_TEXT);
}

static void
sax_characters(void *ctx, const xmlChar *ch, int len)
{
	struct agg_parser *p = ctx;
	enum elem id;
	int i;

	if (p->stopped)
		return;
	id = p->stack[p->depth];
	if (elem_flags[id] & F_TEXT) {
		/* The usual case: room in the buffer already. */
		if (p->text.len + (size_t)len < p->text.alloc &&
		    p->text.len + (size_t)len <= p->text.max) {
			memcpy(p->text.data + p->text.len, ch, (size_t)len);
			p->text.len += (size_t)len;
			p->text.data[p->text.len] = '\0';
			return;
		}
		if (dm_buf_append(&p->text, ch, (size_t)len) != 0)
			stop_text(p);
		return;
	}
	p->ignored_text += (uint64_t)len;
	if (p->ignored_text > DM_MAX_TEXT) {
		stop_text(p);
		return;
	}
	if (id == E_IGNORED || id == E_UNKNOWN || id == E_EXTENSION ||
	    id == E_WRAPPER || id == E_DOC)
		return;
	for (i = 0; i < len; i++) {
		if (!is_space(ch[i])) {
			warn(p, "text directly in <%s> ignored", cur_name(p));
			return;
		}
	}
}

static void
sax_internal_subset(void *ctx, const xmlChar *name, const xmlChar *external_id,
    const xmlChar *system_id)
{
	struct agg_parser *p = ctx;

	(void)external_id;
	(void)system_id;
	if (name != NULL && xmlStrcasecmp(name, BAD_CAST "html") == 0)
		stop(p, DM_E_DATA, "an HTML document, not a DMARC report");
	else
		stop(p, DM_E_DATA, "the document has a DOCTYPE declaration: "
		    "DTDs and entities are refused (XXE and entity expansion "
		    "protection)");
}

static void
sax_entity_decl(void *ctx, const xmlChar *name, int type,
    const xmlChar *public_id, const xmlChar *system_id, xmlChar *content)
{
	struct agg_parser *p = ctx;

	(void)type;
	(void)public_id;
	(void)system_id;
	(void)content;
	stop(p, DM_E_DATA, "entity declaration '%.40s' refused", name);
}

/*
 * close_named - an end tag that names an element open further up (its
 * own end tag was lost to broken markup): close up to and including it.
 */
static void
close_named(struct agg_parser *p, const char *name)
{
	int k;

	for (k = p->depth; k >= 1; k--) {
		if (p->stack[k] == E_IGNORED || p->stack[k] == E_UNKNOWN)
			continue;
		if (strcmp((const char *)p->names[k], name) != 0)
			continue;
		if (k == p->depth)
			return;		/* libxml2 closes it itself */
		warn(p, "</%.40s> closes <%s> left open: repaired", name,
		    cur_name(p));
		while (p->depth >= k && !p->stopped) {
			on_end(p, p->stack[p->depth]);
			p->depth--;
		}
		return;
	}
}

static void
sax_error(void *ctx, xmlErrorPtr error)
{
	struct agg_parser *p = ctx;
	char msg[256];
	size_t len;

	if (p->stopped || error == NULL)
		return;
	snprintf(msg, sizeof(msg), "%s",
	    error->message ? error->message : "XML error");
	len = strlen(msg);
	while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
		msg[--len] = '\0';
	if (error->level == XML_ERR_WARNING) {
		warn(p, "XML warning: %s", msg);
		return;
	}
	if (p->feedback_closed) {
		/* Junk after </feedback> (IKEA wraps it in <xs:schema>). */
		dm_warnings_add(p->report.warnings, (unsigned long)error->line,
		    "XML error after </feedback> ignored: %s", msg);
		p->stopped = 1;
		xmlStopParser(p->ctxt);
		return;
	}
	if (error->code == XML_ERR_TAG_NAME_MISMATCH && error->str2 != NULL)
		close_named(p, error->str2);
	if (++p->xml_errors > DM_MAX_XML_ERRORS) {
		stop(p, DM_E_DATA, "more than %d XML errors; the last: %s",
		    DM_MAX_XML_ERRORS, msg);
		return;
	}
	/* Kept as the last error, in case libxml2 gives up on it. */
	snprintf(p->last_xml_error, sizeof(p->last_xml_error), "line %d, "
	    "column %d, in <%s>: %s", error->line, error->int2, cur_name(p),
	    msg);
	dm_warnings_add(p->report.warnings, (unsigned long)error->line,
	    "XML not well-formed, recovered: %s (column %d)", msg,
	    error->int2);
}

/* What every parser has: the main one and each worker's. */
static struct agg_parser *
parser_alloc(const struct dm_handler *handler, struct dm_warnings *warnings)
{
	struct agg_parser *p;

	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	p->handler = handler;
	p->report.warnings = warnings;
	p->report.policy.pct = -1;
	p->stack[0] = E_DOC;
	dm_arena_init(&p->meta_arena, DM_MAX_REPORT_TEXT);
	dm_arena_init(&p->rec_arena, DM_MAX_RECORD_TEXT);
	dm_buf_init(&p->text, DM_MAX_TEXT);
	p->sax.initialized = XML_SAX2_MAGIC;
	p->sax.startElementNs = sax_start;
	p->sax.endElementNs = sax_end;
	p->sax.characters = sax_characters;
	p->sax.cdataBlock = sax_characters;
	/* The same handler: libxml2 then skips its areBlanks() test. */
	p->sax.ignorableWhitespace = sax_characters;
	p->sax.internalSubset = sax_internal_subset;
	p->sax.externalSubset = sax_internal_subset;
	p->sax.entityDecl = sax_entity_decl;
	p->sax.serror = sax_error;
	return p;
}

static int	par_new(struct agg_parser *, unsigned, size_t);
static void	par_free(struct agg_parser *);

struct agg_parser *
agg_new(const struct agg_options *options, const struct dm_handler *handler,
    struct dm_error *err)
{
	struct agg_parser *p;

	build_index();
	p = parser_alloc(handler, options->warnings);
	if (p == NULL) {
		dm_error_set(err, DM_E_NOMEM, "out of memory");
		return NULL;
	}
	p->report.input = options->input;
	p->report.where = options->where;
	p->fbuf = malloc((FEED_CHUNK + 16) * 3);
	p->comb = malloc(FEED_CHUNK + 16);
	if (p->fbuf == NULL || p->comb == NULL) {
		agg_free(&p);
		dm_error_set(err, DM_E_NOMEM, "out of memory");
		return NULL;
	}
	p->sha_ready = !options->hash_elsewhere;
	if (p->sha_ready)
		sha256_init(&p->sha);
	/* Without a pool the records are parsed here: slower, not wrong. */
	if (options->threads > 1)
		(void)par_new(p, options->threads, options->chunk);
	return p;
}

/* Windows-1252 0x80..0x9F; 0 where the code page has a hole. */
static const unsigned short cp1252[32] = {
	0x20AC, 0, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
	0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0, 0x017D, 0,
	0, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
	0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0, 0x017E, 0x0178 };

static size_t
put_utf8(unsigned char *out, unsigned cp)
{
	if (cp < 0x80) {
		out[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (unsigned char)(0xC0 | (cp >> 6));
		out[1] = (unsigned char)(0x80 | (cp & 0x3F));
		return 2;
	}
	out[0] = (unsigned char)(0xE0 | (cp >> 12));
	out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
	out[2] = (unsigned char)(0x80 | (cp & 0x3F));
	return 3;
}

/* Length of a valid UTF-8 sequence at s (n bytes available); 0 invalid,
 * -1 a valid but incomplete prefix. */
static int
utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	int need, i;
	unsigned char lo = 0x80, hi = 0xBF;

	if (c >= 0xC2 && c <= 0xDF)
		need = 1;
	else if (c >= 0xE0 && c <= 0xEF) {
		need = 2;
		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		need = 3;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F;
	} else
		return 0;
	for (i = 1; i <= need; i++) {
		if ((size_t)i >= n)
			return -1;
		if (s[i] < lo || s[i] > hi)
			return 0;
		lo = 0x80;
		hi = 0xBF;
	}
	return need + 1;
}

static void
decide_mode(struct agg_parser *p, const unsigned char *s, size_t n)
{
	char decl[256];
	const char *enc, *q;
	size_t i, len;

	if (n >= 2 && ((s[0] == 0xFF && s[1] == 0xFE) ||
	    (s[0] == 0xFE && s[1] == 0xFF) || s[0] == 0 || s[1] == 0)) {
		p->mode = FILTER_NONE;
		return;
	}
	p->mode = FILTER_UTF8;
	if (n >= 3 && s[0] == 0xEF && s[1] == 0xBB && s[2] == 0xBF) {
		s += 3;
		n -= 3;
	}
	if (n < 5 || memcmp(s, "<?xml", 5) != 0)
		return;
	for (len = 0; len < n && len < sizeof(decl) - 1 && s[len] != '>';
	    len++)
		decl[len] = (char)s[len];
	decl[len] = '\0';
	enc = strstr(decl, "encoding");
	if (enc == NULL)
		return;
	q = strpbrk(enc, "\"'");
	if (q == NULL)
		return;
	q++;
	for (i = 0; q[i] != '\0' && q[i] != '"' && q[i] != '\''; i++)
		;
	if ((i == 5 && strncasecmp(q, "utf-8", 5) == 0) ||
	    (i == 4 && strncasecmp(q, "utf8", 4) == 0) ||
	    (i == 8 && strncasecmp(q, "us-ascii", 8) == 0) ||
	    (i == 5 && strncasecmp(q, "ascii", 5) == 0))
		return;
	if (i >= 6 && (strncasecmp(q, "utf-16", 6) == 0 ||
	    strncasecmp(q, "utf-32", 6) == 0 || strncasecmp(q, "ucs", 3) == 0))
		p->mode = FILTER_NONE;
	else
		p->mode = FILTER_BYTES;
}

static int
xml_push(struct agg_parser *p, const unsigned char *data, size_t len,
    int terminate)
{
	if (p->ctxt == NULL) {
		p->ctxt = xmlCreatePushParserCtxt(&p->sax, p, (const char *)
		    data, (int)len, NULL);
		if (p->ctxt == NULL) {
			stop(p, DM_E_NOMEM, "cannot create an XML parser");
			return -1;
		}
		xmlCtxtUseOptions(p->ctxt, XML_PARSE_NONET | XML_PARSE_RECOVER |
		    XML_PARSE_NOWARNING);
		p->ctxt->_private = p;
		data = NULL;
		len = 0;
		if (!terminate)
			goto check;
	}
	if (p->stopped)
		return 0;
	xmlParseChunk(p->ctxt, (const char *)data, (int)len, terminate);
check:
	/* libxml2 halted by itself (an error it does not recover from). */
	if (!p->stopped && !terminate && p->ctxt->disableSAX) {
		if (p->feedback_closed)
			p->stopped = 1;
		else {
			p->stopped = 1;
			if (!p->fatal)
				dm_error_set(&p->stop_err, DM_E_DATA,
				    "XML not well-formed, parsing stopped at %s",
				    p->last_xml_error[0] ? p->last_xml_error :
				    "an unrecoverable error");
			p->fatal = 1;
		}
	}
	return 0;
}

/*
 * clean_prefix - how many leading bytes need no filtering: ASCII text
 * without control characters other than TAB, LF and CR. Eight bytes at a
 * time; this runs over every byte of every report.
 */
size_t
agg_clean_prefix(const unsigned char *in, size_t len)
{
	const uint64_t ones = 0x0101010101010101ULL;
	const uint64_t highs = 0x8080808080808080ULL;
	size_t i = 0, k;

#ifdef __SSE2__
	/* Sixteen at a time: as signed bytes, < 0x20 is a control or >= 0x80
	 * (negative); TAB, LF and CR are let through. */
	{
		const __m128i space = _mm_set1_epi8(0x20);
		const __m128i tab = _mm_set1_epi8('\t');
		const __m128i lf = _mm_set1_epi8('\n');
		const __m128i cr = _mm_set1_epi8('\r');

		while (i + 16 <= len) {
			__m128i v = _mm_loadu_si128((const __m128i *)(const void *)
			    (in + i));
			__m128i low = _mm_cmplt_epi8(v, space);
			__m128i fine = _mm_or_si128(_mm_or_si128(
			    _mm_cmpeq_epi8(v, tab), _mm_cmpeq_epi8(v, lf)),
			    _mm_cmpeq_epi8(v, cr));

			if (_mm_movemask_epi8(_mm_andnot_si128(fine, low)) != 0)
				break;
			i += 16;
		}
	}
#endif
	while (i + 8 <= len) {
		uint64_t w;

		memcpy(&w, in + i, 8);
		if (w & highs)
			break;
		/* Some byte below 0x20? (exact when no byte is >= 0x80) */
		if (((w - ones * 0x20) & ~w & highs) != 0) {
			for (k = 0; k < 8; k++) {
				unsigned char c = in[i + k];

				if (c < 0x20 && c != '\n' && c != '\r' &&
				    c != '\t')
					return i + k;
			}
		}
		i += 8;
	}
	for (; i < len; i++) {
		unsigned char c = in[i];

		if (c >= 0x80 || (c < 0x20 && c != '\n' && c != '\r' &&
		    c != '\t'))
			break;
	}
	return i;
}

/*
 * filter_feed - the UTF-8/control filter in front of libxml2; clean
 * chunks (the usual case) pass without a copy. An incomplete sequence at
 * the end of a chunk waits in pend for the next one.
 */
static int
filter_feed(struct agg_parser *p, const unsigned char *in, size_t len,
    int final, size_t known_clean)
{
	unsigned char *out = p->fbuf;
	size_t i, o;

	if (p->mode == FILTER_NONE)
		return xml_push(p, in, len, 0);
	if (p->pend_len > 0) {
		known_clean = 0;
		memcpy(p->comb, p->pend, p->pend_len);
		memcpy(p->comb + p->pend_len, in, len);
		in = p->comb;
		len += p->pend_len;	/* not yet counted in byte_offset */
		p->pend_len = 0;
	}
	if (known_clean > len)
		known_clean = len;
	/* After carried bytes the caller's hint no longer lines up. */
	i = known_clean + agg_clean_prefix(in + known_clean, len - known_clean);
	if (i == len) {
		p->byte_offset += len;
		return xml_push(p, in, len, 0);
	}
	memcpy(out, in, i);
	o = i;
	while (i < len) {
		unsigned char c = in[i];
		int seq;

		if (c >= 0x20 && c < 0x80) {
			out[o++] = c;
			i++;
			continue;
		}
		if (c < 0x20) {
			if (c == '\n' || c == '\r' || c == '\t')
				out[o++] = c;
			else if (c == 0) {
				/* What came before is parsed, whatever the
				 * chunking. */
				xml_push(p, out, o, 0);
				stop(p, DM_E_DATA, "NUL byte at byte offset "
				    "%" PRIu64 ": binary data is not an XML "
				    "report", p->byte_offset + i);
				return -1;
			} else if (p->controls++ == 0) {
				p->controls_first = c;
				p->controls_first_off = p->byte_offset + i;
			}
			i++;
			continue;
		}
		if (p->mode == FILTER_BYTES) {
			out[o++] = c;
			i++;
			continue;
		}
		seq = utf8_seq(in + i, len - i);
		if (seq > 0) {
			memcpy(out + o, in + i, (size_t)seq);
			o += (size_t)seq;
			i += (size_t)seq;
			continue;
		}
		if (seq < 0 && !final) {
			p->pend_len = len - i;
			memcpy(p->pend, in + i, p->pend_len);
			break;
		}
		/* Not UTF-8: read the byte as Windows-1252. */
		if (p->bad_utf8++ == 0) {
			p->bad_utf8_first = c;
			p->bad_utf8_first_off = p->byte_offset + i;
		}
		o += put_utf8(out + o, c < 0xA0 ? (cp1252[c - 0x80] ?
		    cp1252[c - 0x80] : 0xFFFD) : c);
		i++;
	}
	p->byte_offset += len - p->pend_len;
	return xml_push(p, out, o, 0);
}

/*
 * Parallel records.
 *
 * libxml2 is most of the cost of a big report, and it runs on one core.
 * Records are independent, so once the main parser has closed the first
 * <record> directly under a <feedback> root (and libxml2 has consumed
 * every byte fed), the bytes that follow are cut at </record> into chunks
 * and each chunk is parsed by a worker: a fresh parser that reads
 * "<feedback xmlns...>" (the root's own namespace declarations), the
 * chunk and "</feedback>", with this file's state machine. It captures
 * the records and warnings with lines relative to the chunk. The calling
 * thread commits chunks in order: numbers the records, adds the line of
 * the chunk's first byte, hands them to the handler and merges the
 * warnings; the main libxml2 context's line and column are moved on as if
 * it had read the chunk, so the bytes after the last chunk (the end of
 * the document) are parsed there with the right positions.
 *
 * A worker gives a chunk back when anything in it needs more than that:
 * bytes the UTF-8 filter would touch, "<!" or "<?", an XML error, a
 * rejection, a limit, an element other than <record> beside the records.
 * That chunk and everything after it is then parsed by the main parser,
 * exactly as a serial parse would: the events and messages are the same
 * either way. Memory: a fixed number of chunks in flight.
 */
#define PAR_SLOTS_PER_THREAD	4
#define PAR_FEED_PIECE		(16 * 1024)	/* a worker feeds libxml2 */
#define PAR_FILL_MAX_CHUNKS	8	/* no </record> within: give up */
#define PAR_FILL_MIN		(1024 * 1024)	/* ... and not before */
#define PAR_SEEK_TRIES		64	/* first </record>s not at the top */
#define PAR_ROOT_TAG_MAX	4096

enum par_state { PAR_SEEK, PAR_BODY, PAR_OFF };
enum job_state { JOB_FREE, JOB_QUEUED, JOB_RUNNING, JOB_DONE };

/* A record as a worker captured it; its results follow it in out[]. */
struct par_rec {
	uint64_t count;
	unsigned long line;		/* relative to the chunk */
	const char *source_ip, *source_ip_raw, *disposition_raw;
	const char *dkim_raw, *spf_raw;
	const char *header_from, *envelope_from, *envelope_to;
	int disposition, dkim, spf;
	unsigned reason_count, dkim_count, spf_count;
};

struct par_job {
	enum job_state state;
	unsigned char *in;		/* the chunk */
	size_t in_len, in_alloc;
	int clean;			/* known to need no filtering */
	/* the worker's results */
	int ok;
	unsigned char *out;		/* par_rec and results, packed */
	size_t out_len, out_alloc;
	size_t nrec;
	uint64_t messages;
	struct dm_arena arena;		/* the records' strings */
	struct dm_warnings warnings;	/* lines relative to the chunk */
	uint64_t newlines;
	size_t tail_len;		/* bytes after the last newline */
	uint64_t dropped_dkim, dropped_spf, dropped_reasons;
	struct dm_handler capture;
};

struct par {
	enum par_state state;
	size_t chunk;
	unsigned nthreads, started;
	pthread_t threads[AGG_MAX_THREADS];
	pthread_mutex_t mu;
	pthread_cond_t work_cv, done_cv;
	int quit;
	struct par_job *jobs;
	unsigned njobs;
	uint64_t queued, taken, committed;	/* job sequence numbers */
	uint64_t chunks;		/* committed from a worker */
	unsigned char *fill;		/* bytes not yet in a chunk */
	size_t fill_len, fill_alloc;
	int fill_clean;			/* every fill byte known clean */
	int waiting;			/* the caller waits on done_cv */
	unsigned idle;			/* workers waiting on work_cv */
	unsigned long line;		/* line of the next chunk's first byte */
	unsigned seek_tries;
	char root_tag[PAR_ROOT_TAG_MAX];
	size_t root_len;		/* 0: the root was not seen (yet) */
	xmlSAXHandler sax;
};

static int	serial_feed(struct agg_parser *, const unsigned char *, size_t,
		    size_t);
static void	par_drain(struct agg_parser *);

static int
grow(unsigned char **buf, size_t *alloc, size_t need)
{
	unsigned char *n;
	size_t size = *alloc ? *alloc : 4096;

	if (need <= *alloc)
		return 0;
	while (size < need)
		size *= 2;
	n = realloc(*buf, size);
	if (n == NULL)
		return -1;
	*buf = n;
	*alloc = size;
	return 0;
}

/* The root's namespace declarations, for the workers' synthetic root. */
static void
par_root(struct agg_parser *p, int nb_namespaces, const xmlChar **namespaces)
{
	struct par *par = p->par;
	size_t o;
	int i;

	o = (size_t)snprintf(par->root_tag, sizeof(par->root_tag), "<feedback");
	for (i = 0; i < nb_namespaces; i++) {
		const char *prefix = (const char *)namespaces[i * 2];
		const char *uri = (const char *)namespaces[i * 2 + 1];

		if (o + 16 + (prefix ? strlen(prefix) : 0) >= sizeof(par->root_tag))
			goto too_long;
		o += (size_t)snprintf(par->root_tag + o, sizeof(par->root_tag) -
		    o, prefix ? " xmlns:%s=\"" : " xmlns=\"", prefix);
		for (; uri != NULL && *uri != '\0'; uri++) {
			/* '&' stays: libxml2 hands it on as "&#38;". */
			const char *esc = *uri == '<' ? "&lt;" : *uri == '"' ?
			    "&quot;" : NULL;
			size_t n = esc ? strlen(esc) : 1;

			if (o + n + 4 >= sizeof(par->root_tag))
				goto too_long;
			memcpy(par->root_tag + o, esc ? esc : uri, n);
			o += n;
		}
		par->root_tag[o++] = '"';
	}
	par->root_tag[o++] = '>';
	par->root_tag[o] = '\0';
	par->root_len = o;
	return;
too_long:
	par->state = PAR_OFF;
}

/* The worker's handler: keep the record, strings stay in job->arena. */
static int
par_capture(void *ctx, const struct dm_report *r, const struct dm_record *rec,
    struct dm_error *err)
{
	struct par_job *job = ctx;
	size_t need = sizeof(struct par_rec) +
	    rec->reason_count * sizeof(struct dm_reason) +
	    rec->dkim_count * sizeof(struct dm_dkim_result) +
	    rec->spf_count * sizeof(struct dm_spf_result);
	struct par_rec *pr;
	unsigned char *at;

	(void)r;
	if (grow(&job->out, &job->out_alloc, job->out_len + need) != 0)
		return dm_error_set(err, DM_E_NOMEM, "out of memory");
	at = job->out + job->out_len;
	pr = (struct par_rec *)(void *)at;
	pr->count = rec->count;
	pr->line = rec->line;
	pr->source_ip = rec->source_ip;
	pr->source_ip_raw = rec->source_ip_raw;
	pr->disposition = rec->disposition;
	pr->disposition_raw = rec->disposition_raw;
	pr->dkim = rec->dkim;
	pr->dkim_raw = rec->dkim_raw;
	pr->spf = rec->spf;
	pr->spf_raw = rec->spf_raw;
	pr->header_from = rec->header_from;
	pr->envelope_from = rec->envelope_from;
	pr->envelope_to = rec->envelope_to;
	pr->reason_count = (unsigned)rec->reason_count;
	pr->dkim_count = (unsigned)rec->dkim_count;
	pr->spf_count = (unsigned)rec->spf_count;
	at += sizeof(*pr);
	memcpy(at, rec->reasons, rec->reason_count * sizeof(struct dm_reason));
	at += rec->reason_count * sizeof(struct dm_reason);
	memcpy(at, rec->dkim_results,
	    rec->dkim_count * sizeof(struct dm_dkim_result));
	at += rec->dkim_count * sizeof(struct dm_dkim_result);
	memcpy(at, rec->spf_results,
	    rec->spf_count * sizeof(struct dm_spf_result));
	job->out_len += need;
	job->nrec++;
	if (rec->count > UINT64_MAX - job->messages)
		job->messages = UINT64_MAX;
	else
		job->messages += rec->count;
	return 0;
}

/* A worker leaves comments, CDATA sections and processing instructions
 * to the main parser (a </record> inside them is no boundary). */
static void
worker_comment(void *ctx, const xmlChar *value)
{
	(void)value;
	worker_bail(ctx);
}

static void
worker_cdata(void *ctx, const xmlChar *value, int len)
{
	(void)value;
	(void)len;
	worker_bail(ctx);
}

static void
worker_pi(void *ctx, const xmlChar *target, const xmlChar *data)
{
	(void)target;
	(void)data;
	worker_bail(ctx);
}

static void
par_run_job(struct par *par, struct par_job *job)
{
	struct agg_parser *w;
	const unsigned char *nl;
	size_t off, piece = 0;

	job->ok = 0;
	job->out_len = 0;
	job->nrec = 0;
	job->messages = 0;
	dm_arena_reset(&job->arena);
	dm_warnings_clear(&job->warnings);
	/* Bytes the UTF-8 filter would touch: the main parser's. */
	if (!job->clean && agg_clean_prefix(job->in, job->in_len) != job->in_len)
		return;
	w = parser_alloc(&job->capture, &job->warnings);
	if (w == NULL)
		return;
	w->worker = 1;
	w->begun = 1;
	w->mode = FILTER_NONE;
	w->sax.comment = worker_comment;
	w->sax.cdataBlock = worker_cdata;
	w->sax.processingInstruction = worker_pi;
	dm_arena_free(&w->rec_arena);
	w->rec_arena = job->arena;
	xml_push(w, (const unsigned char *)par->root_tag, par->root_len, 0);
	/* In pieces: libxml2 moves the unparsed rest of its buffer to the
	 * front as it goes, which costs the buffer's size each time. */
	for (off = 0; off < job->in_len && !w->stopped; off += piece) {
		piece = job->in_len - off;
		if (piece > PAR_FEED_PIECE)
			piece = PAR_FEED_PIECE;
		xml_push(w, job->in + off, piece, 0);
	}
	if (!w->stopped)
		xml_push(w, (const unsigned char *)"</feedback>", 11, 1);
	job->ok = !w->stopped && !w->fatal && !w->bail && !w->handler_failed &&
	    w->xml_errors == 0 && w->feedback_closed && w->depth == 0 &&
	    w->ctxt->input->line >= 1;
	/* Lines as libxml2 counted them: the main context counts alike. */
	if (job->ok)
		job->newlines = (uint64_t)(w->ctxt->input->line - 1);
	nl = memrchr(job->in, '\n', job->in_len);
	job->tail_len = nl ? (size_t)(job->in + job->in_len - nl - 1) :
	    job->in_len;
	job->dropped_dkim = w->dropped_dkim;
	job->dropped_spf = w->dropped_spf;
	job->dropped_reasons = w->dropped_reasons;
	job->arena = w->rec_arena;
	dm_arena_init(&w->rec_arena, 0);
	agg_free(&w);
}

static void *
par_worker(void *arg)
{
	struct par *par = arg;
	struct par_job *job;

	pthread_mutex_lock(&par->mu);
	for (;;) {
		while (!par->quit && par->taken == par->queued) {
			par->idle++;
			pthread_cond_wait(&par->work_cv, &par->mu);
			par->idle--;
		}
		if (par->quit)
			break;
		job = &par->jobs[par->taken++ % par->njobs];
		job->state = JOB_RUNNING;
		pthread_mutex_unlock(&par->mu);
		par_run_job(par, job);
		pthread_mutex_lock(&par->mu);
		job->state = JOB_DONE;
		/* The caller only ever waits for the oldest chunk. */
		if (par->waiting &&
		    job == &par->jobs[par->committed % par->njobs])
			pthread_cond_signal(&par->done_cv);
	}
	pthread_mutex_unlock(&par->mu);
	return NULL;
}

static int
par_new(struct agg_parser *p, unsigned threads, size_t chunk)
{
	struct par *par;

	par = calloc(1, sizeof(*par));
	if (par == NULL)
		return -1;
	par->nthreads = threads > AGG_MAX_THREADS ? AGG_MAX_THREADS : threads;
	par->chunk = chunk ? chunk : AGG_CHUNK_DEFAULT;
	par->njobs = par->nthreads * PAR_SLOTS_PER_THREAD;
	/* The jobs (some 100 KiB) come with the threads, in par_start. */
	pthread_mutex_init(&par->mu, NULL);
	pthread_cond_init(&par->work_cv, NULL);
	pthread_cond_init(&par->done_cv, NULL);
	par->state = PAR_SEEK;
	par->fill_clean = 1;
	p->par = par;
	return 0;
}

static int
par_start(struct par *par)
{
	unsigned i;

	if (par->jobs == NULL) {
		par->jobs = calloc(par->njobs, sizeof(*par->jobs));
		if (par->jobs == NULL)
			return -1;
		for (i = 0; i < par->njobs; i++) {
			struct par_job *job = &par->jobs[i];

			dm_arena_init(&job->arena, DM_MAX_RECORD_TEXT);
			job->capture.ctx = job;
			job->capture.record = par_capture;
		}
	}
	while (par->started < par->nthreads) {
		if (pthread_create(&par->threads[par->started], NULL,
		    par_worker, par) != 0)
			break;
		par->started++;
	}
	return par->started > 0 ? 0 : -1;
}

static void
par_free(struct agg_parser *p)
{
	struct par *par = p->par;
	unsigned i;

	if (par == NULL)
		return;
	pthread_mutex_lock(&par->mu);
	par->quit = 1;
	pthread_cond_broadcast(&par->work_cv);
	pthread_mutex_unlock(&par->mu);
	for (i = 0; i < par->started; i++)
		pthread_join(par->threads[i], NULL);
	for (i = 0; par->jobs != NULL && i < par->njobs; i++) {
		free(par->jobs[i].in);
		free(par->jobs[i].out);
		dm_arena_free(&par->jobs[i].arena);
	}
	free(par->jobs);
	free(par->fill);
	pthread_mutex_destroy(&par->mu);
	pthread_cond_destroy(&par->work_cv);
	pthread_cond_destroy(&par->done_cv);
	free(par);
	p->par = NULL;
}

/* Where the first "</record>" of buf ends; 0 when there is none. */
static size_t
first_record_end(const unsigned char *buf, size_t len)
{
	const unsigned char *s = buf, *end = buf + len;

	while ((s = memchr(s, '<', (size_t)(end - s))) != NULL) {
		const unsigned char *t = s + 1;

		s++;
		if (t == end || *t != '/')
			continue;
		for (t++; t < end && *t != '>' && *t != '<' && !is_space(*t);
		    t++)
			;
		if (t - s < 7 || memcmp(t - 6, "record", 6) != 0 ||
		    (t - s > 7 && t[-7] != ':'))
			continue;
		while (t < end && is_space(*t))
			t++;
		if (t < end && *t == '>')
			return (size_t)(t - buf) + 1;
	}
	return 0;
}

/* Whether the main parser stands between two records of the root, with
 * nothing held back: where a chunk can begin. */
static int
par_synced(struct agg_parser *p)
{
	return !p->stopped && !p->fatal && !p->handler_failed &&
	    p->mode == FILTER_UTF8 && p->pend_len == 0 && p->ctxt != NULL &&
	    p->ctxt->inputNr == 1 && p->ctxt->input->cur == p->ctxt->input->end &&
	    p->ctxt->instate == XML_PARSER_CONTENT && p->depth == 1 &&
	    p->stack[1] == E_FEEDBACK && p->xml_depth == 1 &&
	    p->wrapper_name[0] == '\0' && p->begun &&
	    p->report.record_count > 0 && p->par->root_len > 0;
}

/* The oldest chunk in flight if it is done, else NULL; no waiting. */
static struct par_job *
par_done_oldest(struct par *par)
{
	struct par_job *job;
	int done;

	if (par->committed == par->queued)
		return NULL;
	job = &par->jobs[par->committed % par->njobs];
	pthread_mutex_lock(&par->mu);
	done = job->state == JOB_DONE;
	pthread_mutex_unlock(&par->mu);
	return done ? job : NULL;
}

/* Wait for the oldest chunk in flight; NULL when none is. */
static struct par_job *
par_wait_oldest(struct par *par)
{
	struct par_job *job;

	if (par->committed == par->queued)
		return NULL;
	job = &par->jobs[par->committed % par->njobs];
	pthread_mutex_lock(&par->mu);
	par->waiting = 1;
	while (job->state != JOB_DONE)
		pthread_cond_wait(&par->done_cv, &par->mu);
	par->waiting = 0;
	pthread_mutex_unlock(&par->mu);
	return job;
}

/*
 * par_fall_back - from job on (NULL: only the fill), the main parser
 * reads the bytes itself; no chunk is made any more.
 */
static void
par_fall_back(struct agg_parser *p, struct par_job *job)
{
	struct par *par = p->par;

	par->state = PAR_OFF;
	while (job != NULL) {
		if (!p->stopped)
			serial_feed(p, job->in, job->in_len, 0);
		job->state = JOB_FREE;
		par->committed++;
		job = par_wait_oldest(par);
	}
	if (!p->stopped && par->fill_len > 0)
		serial_feed(p, par->fill, par->fill_len, 0);
	par->fill_len = 0;
	par->fill_clean = 1;
}

/* Hand the oldest chunk's records to the handler, in order. */
static void
par_commit(struct agg_parser *p, struct par_job *job)
{
	struct par *par = p->par;
	struct dm_report *r = &p->report;
	struct dm_record *rec = &p->rec;
	const unsigned char *at = job->out;
	struct dm_error err;
	size_t i;

	/* Past the bigint sum the serial parse rejects at the very record. */
	if (!job->ok || job->messages > (uint64_t)INT64_MAX - r->message_count) {
		par_fall_back(p, job);
		return;
	}
	for (i = 0; i < job->nrec && !p->stopped; i++) {
		const struct par_rec *pr = (const void *)at;

		at += sizeof(*pr);
		r->record_count++;
		r->message_count += pr->count;
		rec->index = r->record_count;
		rec->line = pr->line + par->line - 1;
		rec->source_ip = pr->source_ip;
		rec->source_ip_raw = pr->source_ip_raw;
		rec->count = pr->count;
		rec->disposition = pr->disposition;
		rec->disposition_raw = pr->disposition_raw;
		rec->dkim = pr->dkim;
		rec->dkim_raw = pr->dkim_raw;
		rec->spf = pr->spf;
		rec->spf_raw = pr->spf_raw;
		rec->header_from = pr->header_from;
		rec->envelope_from = pr->envelope_from;
		rec->envelope_to = pr->envelope_to;
		rec->reason_count = pr->reason_count;
		rec->dkim_count = pr->dkim_count;
		rec->spf_count = pr->spf_count;
		memcpy(rec->reasons, at, pr->reason_count *
		    sizeof(struct dm_reason));
		at += pr->reason_count * sizeof(struct dm_reason);
		memcpy(rec->dkim_results, at, pr->dkim_count *
		    sizeof(struct dm_dkim_result));
		at += pr->dkim_count * sizeof(struct dm_dkim_result);
		memcpy(rec->spf_results, at, pr->spf_count *
		    sizeof(struct dm_spf_result));
		at += pr->spf_count * sizeof(struct dm_spf_result);
		if (p->handler->record == NULL)
			continue;
		dm_error_clear(&err);
		if (p->handler->record(p->handler->ctx, r, rec, &err) != 0) {
			p->stop_err = err;
			p->handler_failed = 1;
			p->stopped = 1;
		}
	}
	record_reset(p);
	dm_warnings_merge(r->warnings, &job->warnings, par->line - 1);
	p->dropped_dkim += job->dropped_dkim;
	p->dropped_spf += job->dropped_spf;
	p->dropped_reasons += job->dropped_reasons;
	/* The main context moves on as if it had read the chunk. */
	if (job->newlines > 0) {
		p->ctxt->input->line += (int)job->newlines;
		p->ctxt->input->col = (int)job->tail_len + 1;
	} else
		p->ctxt->input->col += (int)job->in_len;
	par->line += (unsigned long)job->newlines;
	p->byte_offset += job->in_len;
	par->chunks++;
	job->state = JOB_FREE;
	par->committed++;
}

/*
 * record_end_from - where the first "</record>" of buf that ends at or
 * after min ends; 0 when there is none. A tag across the start of the
 * search is missed: the next one does as well.
 */
static size_t
record_end_from(const unsigned char *buf, size_t len, size_t min)
{
	size_t at = min > 64 ? min - 64 : 0, e;

	while (at < len && (e = first_record_end(buf + at, len - at)) > 0) {
		at += e;
		if (at >= min)
			return at;
	}
	return 0;
}

/* Queue a chunk: the bytes of data, or (data NULL) the whole fill. */
static void
par_dispatch(struct agg_parser *p, const unsigned char *data, size_t len,
    int clean)
{
	struct par *par = p->par;
	struct par_job *job;

	/* Threads start with the first chunk: small reports never start
	 * them. Without any, the main parser reads on. */
	if (par->started == 0 && par_start(par) != 0)
		par_fall_back(p, NULL);
	/* Whatever is done goes to the handler now; a full ring waits. */
	while (par->state == PAR_BODY && (job = par_done_oldest(par)) != NULL)
		par_commit(p, job);
	if (par->state == PAR_BODY && par->queued - par->committed ==
	    par->njobs)
		par_commit(p, par_wait_oldest(par));
	if (par->state != PAR_BODY)
		goto serial;		/* fell back: the fill is parsed */
	job = &par->jobs[par->queued % par->njobs];
	if (data == NULL) {
		/* The fill's buffer becomes the chunk's, and the other way
		 * round: no copy. */
		unsigned char *swap = job->in;
		size_t alloc = job->in_alloc;

		job->in = par->fill;
		job->in_alloc = par->fill_alloc;
		job->in_len = par->fill_len;
		job->clean = par->fill_clean;
		par->fill = swap;
		par->fill_alloc = alloc;
		par->fill_len = 0;
		par->fill_clean = 1;
	} else {
		if (grow(&job->in, &job->in_alloc, len) != 0) {
			par_drain(p);
			goto serial;
		}
		memcpy(job->in, data, len);
		job->in_len = len;
		job->clean = clean;
	}
	pthread_mutex_lock(&par->mu);
	job->state = JOB_QUEUED;
	par->queued++;
	if (par->idle > 0)
		pthread_cond_signal(&par->work_cv);
	pthread_mutex_unlock(&par->mu);
	return;
serial:
	/* The bytes given are the main parser's now (the fill it has). */
	if (data != NULL && !p->stopped)
		serial_feed(p, data, len, clean ? len : 0);
}

/*
 * par_body - bytes after the sync point, cut into chunks at the first
 * </record> past par->chunk bytes. A chunk within the bytes given is
 * copied once; one across two feeds is gathered in the fill.
 */
static void
par_body(struct agg_parser *p, const unsigned char *in, size_t len,
    size_t clean)
{
	struct par *par = p->par;
	size_t min, e;

	while (len > 0 && par->state == PAR_BODY && !p->stopped) {
		min = par->chunk > par->fill_len ? par->chunk - par->fill_len :
		    0;
		e = record_end_from(in, len, min);
		if (e == 0) {
			/* No end yet: all of it waits in the fill. */
			if (grow(&par->fill, &par->fill_alloc, par->fill_len +
			    len) != 0) {
				par_drain(p);
				break;
			}
			memcpy(par->fill + par->fill_len, in, len);
			par->fill_len += len;
			par->fill_clean = par->fill_clean && clean >= len;
			len = 0;
			/* A record too big for any chunk: parsed here. */
			if (par->fill_len >= PAR_FILL_MAX_CHUNKS * par->chunk &&
			    par->fill_len >= PAR_FILL_MIN)
				par_drain(p);
			break;
		}
		if (par->fill_len == 0)
			par_dispatch(p, in, e, clean >= e);
		else if (grow(&par->fill, &par->fill_alloc, par->fill_len +
		    e) != 0) {
			par_drain(p);
			break;
		} else {
			memcpy(par->fill + par->fill_len, in, e);
			par->fill_len += e;
			par->fill_clean = par->fill_clean && clean >= e;
			par_dispatch(p, NULL, 0, 0);
		}
		in += e;
		len -= e;
		clean = clean > e ? clean - e : 0;
	}
	if (len > 0 && !p->stopped)
		serial_feed(p, in, len, clean);
}

/* agg_feed's bytes when a pool exists. */
static void
par_feed(struct agg_parser *p, const unsigned char *in, size_t len,
    size_t clean)
{
	struct par *par = p->par;

	while (len > 0 && !p->stopped) {
		size_t end;

		switch (par->state) {
		case PAR_OFF:
			serial_feed(p, in, len, clean);
			return;
		case PAR_BODY:
			par_body(p, in, len, clean);
			return;
		case PAR_SEEK:
			end = first_record_end(in, len);
			if (end == 0) {
				serial_feed(p, in, len, clean);
				return;
			}
			serial_feed(p, in, end, clean);
			in += end;
			len -= end;
			clean = clean > end ? clean - end : 0;
			if (par_synced(p)) {
				par->state = PAR_BODY;
				par->line = (unsigned long)p->ctxt->input->line;
			} else if (++par->seek_tries == PAR_SEEK_TRIES)
				par->state = PAR_OFF;
			break;
		}
	}
}

/* No more chunks: those in flight are committed, the rest (and what
 * comes after) is parsed here. Before the end, and when giving up. */
static void
par_drain(struct agg_parser *p)
{
	struct par *par = p->par;
	struct par_job *job;

	if (par == NULL || par->state != PAR_BODY)
		return;
	while (!p->stopped && par->state == PAR_BODY &&
	    (job = par_wait_oldest(par)) != NULL)
		par_commit(p, job);
	if (par->state == PAR_BODY)
		par_fall_back(p, NULL);
}

int
agg_feed(struct agg_parser *p, const void *data, size_t len,
    struct dm_error *err)
{
	return agg_feed_hinted(p, data, len, 0, err);
}

/* The bytes through the filter into the main libxml2 context. */
static int
serial_feed(struct agg_parser *p, const unsigned char *in, size_t len,
    size_t clean)
{
	const unsigned char *start = in;
	size_t done;

	while (len > 0 && !p->stopped) {
		size_t n = len > FEED_CHUNK ? FEED_CHUNK : len;

		if (p->mode == FILTER_UNDECIDED) {
			/* Wait for a few bytes to decide on the filter. */
			size_t take = sizeof(p->head) - p->head_len;

			if (take > len)
				take = len;
			memcpy(p->head + p->head_len, in, take);
			p->head_len += take;
			in += take;
			len -= take;
			/* Decide once the declaration (or the first tag) is
			 * complete, or the buffer is full. */
			if (p->head_len < sizeof(p->head) &&
			    memchr(p->head, '>', p->head_len) == NULL)
				continue;
			decide_mode(p, p->head, p->head_len);
			filter_feed(p, p->head, p->head_len, 0, 0);
			continue;
		}
		done = (size_t)(in - start);
		filter_feed(p, in, n, 0, done < clean ? clean - done : 0);
		in += n;
		len -= n;
	}
	return p->stopped ? -1 : 0;
}

int
agg_feed_hinted(struct agg_parser *p, const void *data, size_t len,
    size_t clean, struct dm_error *err)
{
	if (len > 0 && p->sha_ready)
		sha256_update(&p->sha, len, data);
	p->report.payload_bytes += len;
	if (p->par != NULL)
		par_feed(p, data, len, clean);
	else
		serial_feed(p, data, len, clean);
	if (p->stopped && (p->fatal || p->handler_failed)) {
		*err = p->stop_err;
		return -1;
	}
	return 0;
}

static int
end_report(struct agg_parser *p, struct dm_error *err)
{
	struct dm_report *r = &p->report;
	struct dm_error herr;

	if (p->ended)
		return 0;
	p->ended = 1;
	if (!p->begun && !p->handler_failed) {
		p->begun = 1;
		decide_schema(p);
		if (p->handler->report_begin != NULL) {
			dm_error_clear(&herr);
			if (p->handler->report_begin(p->handler->ctx, r,
			    &herr) != 0) {
				*err = herr;
				return -1;
			}
		}
	}
	if (p->handler_failed) {
		*err = p->stop_err;
		r->status = DM_STATUS_REJECTED;
		r->error = p->stop_err;
	} else if (p->fatal) {
		r->status = DM_STATUS_REJECTED;
		r->error = p->stop_err;
	}
	if (p->sha_ready) {
		sha256_digest(&p->sha, SHA256_DIGEST_SIZE,
		    r->payload_sha256);
		p->sha_ready = 0;
	}
	/* Defined over every byte of an accepted report; a rejected one may
	 * have stopped anywhere (and a reader thread read ahead). */
	if (r->status != DM_STATUS_OK)
		memset(r->payload_sha256, 0, sizeof(r->payload_sha256));
	if (p->handler->report_end != NULL) {
		dm_error_clear(&herr);
		if (p->handler->report_end(p->handler->ctx, r, &herr) != 0) {
			*err = herr;
			return -1;
		}
	}
	if (p->handler_failed)
		return -1;
	if (r->status == DM_STATUS_REJECTED) {
		*err = r->error;
		return -1;
	}
	return 0;
}

int
agg_finish(struct agg_parser *p, struct dm_error *err)
{
	struct dm_report *r = &p->report;

	par_drain(p);
	if (!p->stopped && p->mode == FILTER_UNDECIDED) {
		decide_mode(p, p->head, p->head_len);
		filter_feed(p, p->head, p->head_len, 1, 0);
	}
	if (!p->stopped && p->pend_len > 0) {
		unsigned char rest[4];
		size_t n = p->pend_len;

		memcpy(rest, p->pend, n);
		p->pend_len = 0;
		filter_feed(p, rest, n, 1, 0);
	}
	if (!p->stopped && p->ctxt != NULL)
		xml_push(p, NULL, 0, 1);
	if (p->bad_utf8 > 0)
		dm_warnings_add(r->warnings, 0, "%" PRIu64 " invalid UTF-8 "
		    "byte(s) read as Windows-1252 (first 0x%02X at byte offset "
		    "%" PRIu64 ")", p->bad_utf8, p->bad_utf8_first,
		    p->bad_utf8_first_off);
	if (p->controls > 0)
		dm_warnings_add(r->warnings, 0, "%" PRIu64 " control "
		    "character(s) removed (first 0x%02X at byte offset "
		    "%" PRIu64 ")", p->controls, p->controls_first,
		    p->controls_first_off);
	if (p->dropped_dkim > 0)
		dm_warnings_add(r->warnings, 0, "%" PRIu64 " dkim results past "
		    "%d in one record ignored", p->dropped_dkim,
		    DM_MAX_DKIM_RESULTS);
	if (p->dropped_spf > 0)
		dm_warnings_add(r->warnings, 0, "%" PRIu64 " spf results past "
		    "%d in one record ignored", p->dropped_spf,
		    DM_MAX_SPF_RESULTS);
	if (p->dropped_reasons > 0)
		dm_warnings_add(r->warnings, 0, "%" PRIu64 " reasons past %d "
		    "in one record ignored", p->dropped_reasons,
		    DM_MAX_REASONS);
	if (!p->seen_feedback) {
		if (p->handler_failed || p->fatal) {
			*err = p->stop_err;
			return -1;
		}
		if (p->root_name[0] == '\0')
			return dm_error_set(err, DM_E_DATA, "no XML element "
			    "found: not an XML document");
		if (strcasecmp(p->root_name, "html") == 0)
			return dm_error_set(err, DM_E_DATA, "an HTML document, "
			    "not a DMARC report");
		return dm_error_set(err, DM_E_DATA, "the XML root element is "
		    "<%s>, not <feedback>: not a DMARC aggregate report",
		    p->root_name);
	}
	p->at_end = 1;
	if (!p->fatal && !p->handler_failed) {
		if (!p->feedback_closed) {
			p->fatal = 1;
			dm_error_set(&p->stop_err, DM_E_DATA, "line %lu: the "
			    "document ends before </feedback> (truncated?)%s%s",
			    cur_line(p), p->last_xml_error[0] ?
			    "; last XML error: " : "", p->last_xml_error);
		} else if (check_meta(p) == 0) {
			review_meta(p);
			if (r->record_count == 0) {
				p->fatal = 1;
				dm_error_set(&p->stop_err, DM_E_DATA,
				    "the report has no <record>");
			}
		}
	}
	return end_report(p, err);
}

int
agg_abort(struct agg_parser *p, const struct dm_error *why,
    struct dm_error *err)
{
	par_free(p);		/* what the workers hold is lost with the rest */
	if (!p->seen_feedback || p->ended) {
		*err = *why;
		return -1;
	}
	if (!p->fatal && !p->handler_failed) {
		p->fatal = 1;
		p->stop_err = *why;
	}
	p->stopped = 1;
	end_report(p, err);
	*err = p->stop_err;
	return -1;
}

void
agg_set_payload_sha256(struct agg_parser *p, const unsigned char digest[32])
{
	memcpy(p->report.payload_sha256, digest, 32);
}

uint64_t
agg_parallel_chunks(const struct agg_parser *p)
{
	return p->par != NULL ? p->par->chunks : 0;
}

int
agg_has_report(const struct agg_parser *p)
{
	return p->seen_feedback;
}

const char *
agg_root_name(const struct agg_parser *p)
{
	return p->root_name;
}

void
agg_free(struct agg_parser **pp)
{
	struct agg_parser *p = *pp;

	if (p == NULL)
		return;
	par_free(p);
	if (p->ctxt != NULL)
		xmlFreeParserCtxt(p->ctxt);
	dm_arena_free(&p->meta_arena);
	dm_arena_free(&p->rec_arena);
	dm_buf_free(&p->text);
	free(p->fbuf);
	free(p->comb);
	free(p);
	*pp = NULL;
}
