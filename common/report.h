/*
 * report.h - the report data model: what the parser emits and the store
 * keeps.
 *
 * The parser turns bytes into events (struct dm_handler): an aggregate
 * report is report_begin, then one record per <record> as it closes, then
 * report_end; a failure report is one failure event; an input part that
 * is no report at all is a problem event. The structures handed to a
 * handler are only valid during the call: the parser reuses their memory
 * for the next record, which is what keeps memory flat.
 *
 * Enumerations are normalised to canonical values (DM_*_UNSET when the
 * element was absent, *_UNKNOWN when its value was not recognised); the
 * raw string is kept next to each one. Strings are NULL when the element
 * was absent and "" when it was present but empty.
 */
#ifndef DM_REPORT_H
#define DM_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/limits.h"

enum dm_kind {
	DM_KIND_UNKNOWN = 0,
	DM_KIND_AGGREGATE,
	DM_KIND_FAILURE,
	DM_KIND_TLSRPT
};

enum dm_schema {
	DM_SCHEMA_UNKNOWN = 0,
	DM_SCHEMA_RFC7489,
	DM_SCHEMA_DMARC2	/* RFC 9990, urn:ietf:params:xml:ns:dmarc-2.0 */
};

/*
 * Enumerations. Each has 0 = absent and a last value for "present but
 * not recognised"; dm_enum_name() gives the canonical spelling.
 */
enum dm_enum_type {
	DM_ENUM_POLICY,		/* p, sp, np */
	DM_ENUM_ALIGNMENT,	/* adkim, aspf */
	DM_ENUM_DISPOSITION,
	DM_ENUM_VERDICT,	/* policy_evaluated dkim / spf */
	DM_ENUM_DKIM_RESULT,
	DM_ENUM_SPF_RESULT,
	DM_ENUM_SPF_SCOPE,
	DM_ENUM_REASON,
	DM_ENUM_TESTING,
	DM_ENUM_DISCOVERY,
	DM_ENUM_TYPE_COUNT
};

enum { DM_POLICY_UNSET, DM_POLICY_NONE, DM_POLICY_QUARANTINE,
	DM_POLICY_REJECT, DM_POLICY_UNKNOWN };
enum { DM_ALIGN_UNSET, DM_ALIGN_RELAXED, DM_ALIGN_STRICT, DM_ALIGN_UNKNOWN };
enum { DM_DISP_UNSET, DM_DISP_NONE, DM_DISP_QUARANTINE, DM_DISP_REJECT,
	DM_DISP_PASS, DM_DISP_UNKNOWN };
enum { DM_VERDICT_UNSET, DM_VERDICT_PASS, DM_VERDICT_FAIL,
	DM_VERDICT_UNKNOWN };
enum { DM_RESULT_UNSET, DM_RESULT_NONE, DM_RESULT_PASS, DM_RESULT_FAIL,
	DM_RESULT_SOFTFAIL, DM_RESULT_NEUTRAL, DM_RESULT_POLICY,
	DM_RESULT_TEMPERROR, DM_RESULT_PERMERROR, DM_RESULT_UNKNOWN };
enum { DM_SCOPE_UNSET, DM_SCOPE_MFROM, DM_SCOPE_HELO, DM_SCOPE_UNKNOWN };
enum { DM_REASON_UNSET, DM_REASON_FORWARDED, DM_REASON_SAMPLED_OUT,
	DM_REASON_TRUSTED_FORWARDER, DM_REASON_MAILING_LIST,
	DM_REASON_LOCAL_POLICY, DM_REASON_OTHER, DM_REASON_POLICY_TEST_MODE,
	DM_REASON_UNKNOWN };
enum { DM_TESTING_UNSET, DM_TESTING_N, DM_TESTING_Y, DM_TESTING_UNKNOWN };
enum { DM_DISCOVERY_UNSET, DM_DISCOVERY_PSL, DM_DISCOVERY_TREEWALK,
	DM_DISCOVERY_UNKNOWN };

/* How dm_enum_parse() matched a raw value. */
enum dm_enum_match {
	DM_MATCH_EXACT,		/* the canonical spelling */
	DM_MATCH_CASE,		/* canonical but for case or whitespace */
	DM_MATCH_ALIAS,		/* a known variant (hardfail -> fail) */
	DM_MATCH_NONE		/* not recognised: value is *_UNKNOWN */
};

/* dm_enum_parse - normalise raw[0..len) to a canonical value. */
enum dm_enum_match dm_enum_parse(enum dm_enum_type type, const char *raw,
    size_t len, int *value_r);
/* dm_enum_name - canonical name, or NULL for the unset value. */
const char *dm_enum_name(enum dm_enum_type type, int value);
const char *dm_kind_name(enum dm_kind kind);
const char *dm_schema_name(enum dm_schema schema);

/*
 * Warnings: every repair the parser makes is one. Identical sentences are
 * counted rather than repeated, so a million "Pass" spellings cost one
 * entry; past DM_MAX_WARNINGS distinct sentences the rest are counted in
 * dropped.
 */
struct dm_warning {
	char text[DM_MAX_WARNING_TEXT];
	unsigned long line;	/* first occurrence; 0 if not from XML */
	uint64_t count;
};

struct dm_warnings {
	struct dm_warning items[DM_MAX_WARNINGS];
	size_t count;
	uint64_t dropped;
};

void dm_warnings_clear(struct dm_warnings *w);
void dm_warnings_add(struct dm_warnings *w, unsigned long line,
    const char *fmt, ...) DM_PRINTF(3, 4);
/*
 * dm_warnings_merge - add src's warnings (with their counts) to dst, as
 * if they had been added there; line_base is added to their lines.
 */
void dm_warnings_merge(struct dm_warnings *dst, const struct dm_warnings *src,
    unsigned long line_base);
/* dm_warning_format - "line 12: text (523 times)" into buf. */
void dm_warning_format(const struct dm_warning *warning, char *buf,
    size_t size);

struct dm_policy_published {
	const char *domain;
	int adkim, aspf;		/* DM_ALIGN_* */
	int p, sp, np;			/* DM_POLICY_* */
	int pct;			/* -1 when absent or invalid */
	const char *fo;
	int testing;			/* DM_TESTING_* */
	int discovery_method;		/* DM_DISCOVERY_* */
	const char *adkim_raw, *aspf_raw, *p_raw, *sp_raw, *np_raw;
	const char *pct_raw, *testing_raw, *discovery_method_raw;
};

enum dm_status {
	DM_STATUS_OK = 0,
	DM_STATUS_REJECTED	/* error says why; raw input must be kept */
};

struct dm_report {
	const char *input;		/* file name or "-" */
	const char *where;		/* path inside it ("mail part 2: ...") */
	enum dm_schema schema;
	const char *namespace_uri;	/* of <feedback>; NULL if none */
	const char *version;		/* <version> text */

	const char *org_name;
	const char *email;
	const char *extra_contact_info;
	const char *report_id;
	const char *generator;		/* RFC 9990 */
	int64_t begin, end;		/* UTC epoch seconds */
	int has_begin, has_end;
	const char *errors[DM_MAX_META_ERRORS];	/* report_metadata/error */
	size_t error_count;

	struct dm_policy_published policy;

	uint64_t record_count;		/* so far; final at report_end */
	uint64_t message_count;		/* sum of count */
	uint64_t payload_bytes;		/* decompressed XML bytes */
	unsigned char payload_sha256[32];	/* of every byte, at report_end
						 * of an accepted report; zero
						 * when rejected */

	struct dm_warnings *warnings;
	enum dm_status status;
	struct dm_error error;		/* when status is rejected */
};

struct dm_dkim_result {
	const char *domain;
	const char *selector;
	int result;			/* DM_RESULT_* */
	const char *result_raw;
	const char *human_result;
};

struct dm_spf_result {
	const char *domain;
	int scope;			/* DM_SCOPE_* */
	const char *scope_raw;
	int result;			/* DM_RESULT_* */
	const char *result_raw;
	const char *human_result;
};

struct dm_reason {
	int type;			/* DM_REASON_* */
	const char *type_raw;
	const char *comment;
};

struct dm_record {
	uint64_t index;			/* 1-based, within the report */
	unsigned long line;		/* where <record> starts */
	const char *source_ip;		/* canonical text; NULL if invalid */
	const char *source_ip_raw;
	uint64_t count;
	int disposition;		/* DM_DISP_* */
	const char *disposition_raw;
	int dkim, spf;			/* DM_VERDICT_*: policy_evaluated */
	const char *dkim_raw, *spf_raw;
	struct dm_reason reasons[DM_MAX_REASONS];
	size_t reason_count;
	const char *header_from;
	const char *envelope_from;
	const char *envelope_to;
	struct dm_dkim_result dkim_results[DM_MAX_DKIM_RESULTS];
	size_t dkim_count;
	struct dm_spf_result spf_results[DM_MAX_SPF_RESULTS];
	size_t spf_count;
};

/* A list of strings from a repeatable header field. */
struct dm_strlist {
	const char *items[DM_MAX_FAILURE_LIST];
	size_t count;
};

/* The original message's headers, as carried by a failure report. */
struct dm_original_headers {
	const char *from, *to, *subject, *date, *message_id;
	struct dm_strlist dkim_signature;
	struct dm_strlist authentication_results;
};

/* A failure (forensic) report: ARF, RFC 5965 / 6591, or a plain notice. */
struct dm_failure {
	const char *input;
	const char *where;
	int arf;			/* 0: plain-text notice, not ARF */
	const char *feedback_type;	/* lower-cased */
	const char *user_agent;
	const char *version;
	const char *auth_failure;	/* lower-cased */
	const char *identity_alignment;
	const char *delivery_result;
	const char *source_ip;		/* canonical; NULL if absent/invalid */
	const char *source_ip_raw;
	const char *source_port;
	const char *arrival_date;	/* raw RFC 5322 date */
	int64_t arrival_time;		/* epoch, when has_arrival_time */
	int has_arrival_time;
	const char *original_mail_from;
	const char *original_envelope_id;
	const char *reporting_mta;
	uint64_t incidents;		/* 1 when absent */
	const char *dkim_domain, *dkim_identity, *dkim_selector;
	const char *spf_dns;
	struct dm_strlist reported_domain;
	struct dm_strlist original_rcpt_to;
	struct dm_strlist authentication_results;
	struct dm_strlist reported_uri;
	struct dm_original_headers headers;
	const char *body;		/* only when asked to keep bodies */
	size_t body_len;
	struct dm_warnings *warnings;
	enum dm_status status;
	struct dm_error error;
};

/* Something in the input that is not a report, or could not be read. */
struct dm_problem {
	const char *input;
	const char *where;
	enum dm_kind kind;		/* what it looked like, if anything */
	const struct dm_error *error;
};

/*
 * The consumer of parser events. Each callback may be NULL. A callback
 * returning -1 stops the parse; its error is passed through (use
 * DM_E_TEMP for "the database is away").
 */
struct dm_handler {
	void *ctx;
	int (*report_begin)(void *ctx, const struct dm_report *report,
	    struct dm_error *err);
	int (*record)(void *ctx, const struct dm_report *report,
	    const struct dm_record *record, struct dm_error *err);
	int (*report_end)(void *ctx, const struct dm_report *report,
	    struct dm_error *err);
	int (*failure)(void *ctx, const struct dm_failure *failure,
	    struct dm_error *err);
	int (*problem)(void *ctx, const struct dm_problem *problem,
	    struct dm_error *err);
};

/* dm_ip_canonical - inet_pton/ntop round trip; -1 if not an address. */
int dm_ip_canonical(const char *text, char *out, size_t size);

/*
 * dm_parse_uint64 - a decimal count: digits only (surrounding white space
 * allowed), no sign, at most INT64_MAX (counts are PostgreSQL bigint).
 * Returns -1 and a reason otherwise.
 */
int dm_parse_uint64(const char *text, uint64_t *value_r, const char **why_r);

/*
 * dm_parse_epoch - a timestamp as reports write it: integer seconds, a
 * float ("1538204542.0"), or milliseconds (values above 10^11). *repair_r
 * says what was repaired (NULL if nothing).
 */
int dm_parse_epoch(const char *text, int64_t *value_r, const char **why_r,
    const char **repair_r);

#endif
