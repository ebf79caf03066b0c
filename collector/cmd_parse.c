/*
 * cmd_parse.c - dmarcd parse: parse report files and print what they hold.
 *
 * --format summary prints one JSON object per input; --format ndjson one
 * per aggregate record and failure report (docs/parse-output.md). Errors
 * go to standard error too, naming the input. Exit 0 when every input
 * parsed, 65 when anything was rejected; every input is processed either
 * way.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "collector/commands.h"
#include "parser/unpack.h"

const char cmd_parse_usage[] =
    "usage: dmarcd parse [--format summary|ndjson] [--max-bytes SIZE]\n"
    "                    [--max-ratio N] [--max-message SIZE] [--keep-bodies]\n"
    "                    [--threads N] [--chunk SIZE] [--verbose] FILE... | -\n"
    "\n"
    "Parse DMARC reports (XML, gzip, zlib, zip, whole mails, ARF failure\n"
    "reports; detected by content) and print one JSON line per input\n"
    "(summary) or per record and failure report (ndjson).\n"
    "\n"
    "  -f, --format FMT    summary (default) or ndjson\n"
    "  --max-bytes SIZE    decompressed bytes per input (default 4G)\n"
    "  --max-ratio N       decompression ratio per layer (default 250; 0: off)\n"
    "  --max-message SIZE  a mail held for MIME parsing (default 64M)\n"
    "  --keep-bodies       keep failure reports' original message bodies\n"
    "  --threads N         threads parsing the records of a big report\n"
    "                      (default: one per CPU, up to 4; 1: none)\n"
    "  --chunk SIZE        bytes of records per thread's chunk (default 64K)\n"
    "  -v, --verbose       print warnings on standard error too\n"
    "\n"
    "Exit status: 0 all parsed, 65 something was rejected, 66 no such\n"
    "file, 74 read error, 64 usage error.\n";

enum format { FORMAT_SUMMARY, FORMAT_NDJSON };

struct parse_run {
	enum format format;
	int verbose;
	const char *file;
	json_t *warnings;	/* of the current input */
	json_t *errors;
	json_t *details;
};

int
cmd_list_append(char *list, size_t size, size_t *used, const char *item)
{
	size_t len = strlen(item);

	if (*used + len + 2 > size)
		return -1;
	if (*used > 0)
		list[(*used)++] = ',';
	memcpy(list + *used, item, len + 1);
	*used += len;
	return 0;
}

int
cmd_parse_span(const char *text, long long *seconds)
{
	char *end;
	long long n;

	if (text[0] < '0' || text[0] > '9')
		return -1;
	errno = 0;
	n = strtoll(text, &end, 10);
	if (errno != 0 || n > 100000 || end[0] == '\0' || end[1] != '\0')
		return -1;
	switch (end[0]) {
	case 'm': *seconds = n * 60; return 0;
	case 'h': *seconds = n * 3600; return 0;
	case 'd': *seconds = n * 86400; return 0;
	case 'w': *seconds = n * 7 * 86400; return 0;
	default: return -1;
	}
}

int
cmd_parse_size(const char *text, unsigned long long *value_r)
{
	unsigned long long value, mult = 1;
	char *end;

	errno = 0;
	if (text[0] < '0' || text[0] > '9')
		return -1;
	value = strtoull(text, &end, 10);
	if (errno != 0)
		return -1;
	switch (*end) {
	case '\0':
		break;
	case 'k': case 'K':
		mult = 1ULL << 10;
		end++;
		break;
	case 'm': case 'M':
		mult = 1ULL << 20;
		end++;
		break;
	case 'g': case 'G':
		mult = 1ULL << 30;
		end++;
		break;
	default:
		return -1;
	}
	if (*end == 'i' || *end == 'B')
		end++;
	if (*end == 'B')
		end++;
	if (*end != '\0' || (value != 0 && mult > ULLONG_MAX / value))
		return -1;
	*value_r = value * mult;
	return 0;
}

/* JSON strings must be UTF-8: replace anything else with U+FFFD. */
static json_t *
jstr(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t len, i, o = 0;
	json_t *j;
	char *copy;

	if (s == NULL)
		return json_null();
	len = strlen(s);
	j = json_stringn(s, len);
	if (j != NULL)
		return j;
	copy = malloc(len * 3 + 1);
	if (copy == NULL)
		return json_null();
	for (i = 0; i < len; i++) {
		size_t need = 0, k;

		if (p[i] < 0x80) {
			copy[o++] = (char)p[i];
			continue;
		}
		if ((p[i] & 0xE0) == 0xC0)
			need = 1;
		else if ((p[i] & 0xF0) == 0xE0)
			need = 2;
		else if ((p[i] & 0xF8) == 0xF0)
			need = 3;
		for (k = 1; need && k <= need; k++)
			if (i + k >= len || (p[i + k] & 0xC0) != 0x80)
				need = 0;
		if (need == 0) {
			memcpy(copy + o, "\xEF\xBF\xBD", 3);
			o += 3;
			continue;
		}
		memcpy(copy + o, p + i, need + 1);
		o += need + 1;
		i += need;
	}
	j = json_stringn(copy, o);
	free(copy);
	return j != NULL ? j : json_null();
}

static json_t *
jenum(enum dm_enum_type type, int value)
{
	return jstr(dm_enum_name(type, value));
}

static json_t *
jstrlist(const struct dm_strlist *list)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; i < list->count; i++)
		json_array_append_new(a, jstr(list->items[i]));
	return a;
}

static void
add_message(struct parse_run *run, json_t *list, const char *where,
    const char *msg, int is_error)
{
	char line[DM_ERROR_MSG_MAX + 600];

	if (where != NULL && where[0] != '\0')
		snprintf(line, sizeof(line), "%s: %s", where, msg);
	else
		snprintf(line, sizeof(line), "%s", msg);
	json_array_append_new(list, jstr(line));
	if (is_error || run->verbose)
		fprintf(stderr, "dmarcd: %s: %s%s\n", run->file,
		    is_error ? "" : "warning: ", line);
}

static void
add_warnings(struct parse_run *run, const char *where,
    const struct dm_warnings *w)
{
	char text[DM_MAX_WARNING_TEXT + 96];
	size_t i;

	if (w == NULL)
		return;
	for (i = 0; i < w->count; i++) {
		dm_warning_format(&w->items[i], text, sizeof(text));
		add_message(run, run->warnings, where, text, 0);
	}
	if (w->dropped > 0) {
		snprintf(text, sizeof(text), "%" PRIu64 " more warnings not "
		    "listed", w->dropped);
		add_message(run, run->warnings, where, text, 0);
	}
}

static json_t *
report_ids(const struct dm_report *r)
{
	return json_pack("{s:o,s:o,s:o,s:o,s:o,s:o}",
	    "org_name", jstr(r->org_name),
	    "email", jstr(r->email),
	    "report_id", jstr(r->report_id),
	    "policy_domain", jstr(r->policy.domain),
	    "begin", r->has_begin ? json_integer(r->begin) : json_null(),
	    "end", r->has_end ? json_integer(r->end) : json_null());
}

static void
print_line(json_t *obj)
{
	char *text = json_dumps(obj, JSON_COMPACT | JSON_ENSURE_ASCII * 0);

	if (text != NULL) {
		fputs(text, stdout);
		fputc('\n', stdout);
		free(text);
	}
	json_decref(obj);
}

static int
on_record(void *ctx, const struct dm_report *r, const struct dm_record *rec,
    struct dm_error *err)
{
	struct parse_run *run = ctx;
	json_t *o, *reasons, *dkim, *spf;
	size_t i;

	(void)err;
	if (run->format != FORMAT_NDJSON)
		return 0;
	reasons = json_array();
	for (i = 0; i < rec->reason_count; i++)
		json_array_append_new(reasons, json_pack("{s:o,s:o}",
		    "type", jenum(DM_ENUM_REASON, rec->reasons[i].type),
		    "comment", jstr(rec->reasons[i].comment)));
	dkim = json_array();
	for (i = 0; i < rec->dkim_count; i++) {
		const struct dm_dkim_result *d = &rec->dkim_results[i];

		json_array_append_new(dkim, json_pack("{s:o,s:o,s:o,s:o}",
		    "domain", jstr(d->domain), "selector", jstr(d->selector),
		    "result", jenum(DM_ENUM_DKIM_RESULT, d->result),
		    "human_result", jstr(d->human_result)));
	}
	spf = json_array();
	for (i = 0; i < rec->spf_count; i++) {
		const struct dm_spf_result *s = &rec->spf_results[i];

		json_array_append_new(spf, json_pack("{s:o,s:o,s:o,s:o}",
		    "domain", jstr(s->domain),
		    "scope", jenum(DM_ENUM_SPF_SCOPE, s->scope),
		    "result", jenum(DM_ENUM_SPF_RESULT, s->result),
		    "human_result", jstr(s->human_result)));
	}
	o = json_pack("{s:s,s:o,s:o,s:o,s:I,s:o,s:I,s:o,s:o,s:o,s:o,s:o,"
	    "s:o,s:o,s:o,s:o}",
	    "type", "record",
	    "file", jstr(run->file),
	    "where", jstr(r->where),
	    "report", report_ids(r),
	    "index", (json_int_t)rec->index,
	    "source_ip", jstr(rec->source_ip),
	    "count", (json_int_t)rec->count,
	    "disposition", jenum(DM_ENUM_DISPOSITION, rec->disposition),
	    "dkim", jenum(DM_ENUM_VERDICT, rec->dkim),
	    "spf", jenum(DM_ENUM_VERDICT, rec->spf),
	    "reasons", reasons,
	    "header_from", jstr(rec->header_from),
	    "envelope_from", jstr(rec->envelope_from),
	    "envelope_to", jstr(rec->envelope_to),
	    "auth_dkim", dkim,
	    "auth_spf", spf);
	if (rec->count > (uint64_t)INT64_MAX)	/* json_int_t is signed */
		json_object_set_new(o, "count", json_real((double)rec->count));
	print_line(o);
	return 0;
}

static char *
hex(const unsigned char *b, size_t n, char *out)
{
	size_t i;

	for (i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
	out[2 * n] = '\0';
	return out;
}

static int
on_report_end(void *ctx, const struct dm_report *r, struct dm_error *err)
{
	struct parse_run *run = ctx;
	const struct dm_policy_published *pp = &r->policy;
	json_t *d, *errors;
	char sha[65];
	size_t i;

	(void)err;
	add_warnings(run, r->where, r->warnings);
	if (r->status != DM_STATUS_OK)
		add_message(run, run->errors, r->where, r->error.msg, 1);
	if (run->format == FORMAT_NDJSON && r->status != DM_STATUS_OK) {
		/* Records printed before the rejection was known are void. */
		print_line(json_pack("{s:s,s:o,s:o,s:o,s:I,s:o}",
		    "type", "rejected", "file", jstr(run->file),
		    "where", jstr(r->where), "report", report_ids(r),
		    "records", (json_int_t)r->record_count,
		    "error", jstr(r->error.msg)));
		return 0;
	}
	if (run->format != FORMAT_SUMMARY)
		return 0;
	errors = json_array();
	for (i = 0; i < r->error_count; i++)
		json_array_append_new(errors, jstr(r->errors[i]));
	d = json_pack("{s:o,s:s,s:s,s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,"
	    "s:o,s:o,s:o}",
	    "where", jstr(r->where),
	    "kind", "aggregate",
	    "status", r->status == DM_STATUS_OK ? "ok" : "rejected",
	    "schema", dm_schema_name(r->schema),
	    "namespace", jstr(r->namespace_uri),
	    "version", jstr(r->version),
	    "org_name", jstr(r->org_name),
	    "email", jstr(r->email),
	    "extra_contact_info", jstr(r->extra_contact_info),
	    "report_id", jstr(r->report_id),
	    "generator", jstr(r->generator),
	    "begin", r->has_begin ? json_integer(r->begin) : json_null(),
	    "end", r->has_end ? json_integer(r->end) : json_null(),
	    "report_errors", errors,
	    "policy_published", json_pack("{s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,"
	    "s:o,s:o}",
		"domain", jstr(pp->domain),
		"adkim", jenum(DM_ENUM_ALIGNMENT, pp->adkim),
		"aspf", jenum(DM_ENUM_ALIGNMENT, pp->aspf),
		"p", jenum(DM_ENUM_POLICY, pp->p),
		"sp", jenum(DM_ENUM_POLICY, pp->sp),
		"np", jenum(DM_ENUM_POLICY, pp->np),
		"pct", pp->pct >= 0 ? json_integer(pp->pct) : json_null(),
		"fo", jstr(pp->fo),
		"testing", jenum(DM_ENUM_TESTING, pp->testing),
		"discovery_method", jenum(DM_ENUM_DISCOVERY,
		pp->discovery_method)));
	json_object_set_new(d, "records", json_integer(
	    (json_int_t)r->record_count));
	json_object_set_new(d, "messages", json_integer(
	    (json_int_t)r->message_count));
	json_object_set_new(d, "payload_bytes", json_integer(
	    (json_int_t)r->payload_bytes));
	json_object_set_new(d, "sha256", r->status == DM_STATUS_OK ?
	    json_string(hex(r->payload_sha256, 32, sha)) : json_null());
	if (r->status != DM_STATUS_OK)
		json_object_set_new(d, "error", jstr(r->error.msg));
	json_array_append_new(run->details, d);
	return 0;
}

static json_t *
failure_json(struct parse_run *run, const struct dm_failure *f)
{
	const struct dm_original_headers *h = &f->headers;
	json_t *o;

	o = json_pack("{s:s,s:o,s:o,s:b,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}",
	    "type", "failure",
	    "file", jstr(run->file),
	    "where", jstr(f->where),
	    "arf", f->arf,
	    "feedback_type", jstr(f->feedback_type),
	    "user_agent", jstr(f->user_agent),
	    "version", jstr(f->version),
	    "auth_failure", jstr(f->auth_failure),
	    "identity_alignment", jstr(f->identity_alignment),
	    "delivery_result", jstr(f->delivery_result),
	    "source_ip", jstr(f->source_ip),
	    "source_port", jstr(f->source_port),
	    "arrival_date", jstr(f->arrival_date));
	json_object_set_new(o, "arrival_time", f->has_arrival_time ?
	    json_integer(f->arrival_time) : json_null());
	json_object_set_new(o, "original_mail_from",
	    jstr(f->original_mail_from));
	json_object_set_new(o, "original_envelope_id",
	    jstr(f->original_envelope_id));
	json_object_set_new(o, "reporting_mta", jstr(f->reporting_mta));
	json_object_set_new(o, "incidents", json_integer(
	    (json_int_t)f->incidents));
	json_object_set_new(o, "reported_domain", jstrlist(&f->reported_domain));
	json_object_set_new(o, "original_rcpt_to",
	    jstrlist(&f->original_rcpt_to));
	json_object_set_new(o, "authentication_results",
	    jstrlist(&f->authentication_results));
	json_object_set_new(o, "reported_uri", jstrlist(&f->reported_uri));
	json_object_set_new(o, "dkim_domain", jstr(f->dkim_domain));
	json_object_set_new(o, "dkim_identity", jstr(f->dkim_identity));
	json_object_set_new(o, "dkim_selector", jstr(f->dkim_selector));
	json_object_set_new(o, "spf_dns", jstr(f->spf_dns));
	json_object_set_new(o, "headers", json_pack("{s:o,s:o,s:o,s:o,s:o,"
	    "s:o,s:o}",
	    "from", jstr(h->from), "to", jstr(h->to),
	    "subject", jstr(h->subject), "date", jstr(h->date),
	    "message_id", jstr(h->message_id),
	    "dkim_signature", jstrlist(&h->dkim_signature),
	    "authentication_results", jstrlist(&h->authentication_results)));
	json_object_set_new(o, "body", jstr(f->body));
	return o;
}

static int
on_failure(void *ctx, const struct dm_failure *f, struct dm_error *err)
{
	struct parse_run *run = ctx;
	json_t *o;

	(void)err;
	add_warnings(run, f->where, f->warnings);
	if (f->status != DM_STATUS_OK)
		add_message(run, run->errors, f->where, f->error.msg, 1);
	o = failure_json(run, f);
	if (run->format == FORMAT_NDJSON) {
		print_line(o);
		return 0;
	}
	json_object_del(o, "type");
	json_object_del(o, "file");
	json_object_set_new(o, "kind", json_string("failure"));
	json_object_set_new(o, "status", json_string(
	    f->status == DM_STATUS_OK ? "ok" : "rejected"));
	if (f->status != DM_STATUS_OK)
		json_object_set_new(o, "error", jstr(f->error.msg));
	json_array_append_new(run->details, o);
	return 0;
}

static int
on_problem(void *ctx, const struct dm_problem *p, struct dm_error *err)
{
	struct parse_run *run = ctx;

	(void)err;
	add_message(run, run->errors, p->where, p->error->msg, 1);
	if (run->format == FORMAT_SUMMARY)
		json_array_append_new(run->details, json_pack("{s:o,s:s,s:s,"
		    "s:o}", "where", jstr(p->where), "kind",
		    dm_kind_name(p->kind), "status", "rejected",
		    "error", jstr(p->error->msg)));
	return 0;
}

/*
 * Worse exit codes win: temporary (an MTA must retry) > usage or
 * configuration > unavailable > internal > I/O > no input > data; any
 * other non-zero code beats success.
 */
int
cmd_worse(int a, int b)
{
	static const int order[] = { 0, 65, 66, 74, 70, 71, 69, 78, 64, 75 };
	/* Ranks are 2 * index; an unknown non-zero code ranks 1: above
	 * success, below every known failure, whatever the order. */
	int ra = a != 0, rb = b != 0;
	size_t i;

	for (i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		if (order[i] == a)
			ra = 2 * (int)i;
		if (order[i] == b)
			rb = 2 * (int)i;
	}
	return rb > ra ? b : a;
}

static int
parse_one(struct parse_run *run, const char *path,
    const struct unpack_options *options, const struct dm_handler *h)
{
	struct unpack_result result;
	struct dm_error err;
	int status = 0;
	json_t *summary;

	run->file = path;
	run->warnings = json_array();
	run->errors = json_array();
	run->details = json_array();
	dm_error_clear(&err);
	if (unpack_path(path, options, h, &result, &err) != 0) {
		add_message(run, run->errors, "", err.msg, 1);
		status = dm_error_exit_code(err.code);
		if (status == 0)
			status = 70;
	} else if (result.rejected > 0)
		status = 65;
	if (run->verbose && result.parallel_chunks > 0)
		fprintf(stderr, "dmarcd: %s: note: %" PRIu64 " chunks of records "
		    "parsed by worker threads\n", path, result.parallel_chunks);
	if (run->format == FORMAT_SUMMARY) {
		summary = json_pack("{s:o,s:s,s:I,s:I,s:I,s:O,s:O,s:O}",
		    "file", jstr(path),
		    "kind", dm_kind_name(result.kind),
		    "reports", (json_int_t)(result.aggregate_reports +
		    result.failure_reports),
		    "records", (json_int_t)result.records,
		    "messages", (json_int_t)result.messages,
		    "warnings", run->warnings,
		    "errors", run->errors,
		    "details", run->details);
		print_line(summary);
	}
	json_decref(run->warnings);
	json_decref(run->errors);
	json_decref(run->details);
	fflush(stdout);
	return status;
}

int
cmd_parse(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "max-bytes", required_argument, NULL, 'b' },
		{ "max-ratio", required_argument, NULL, 'r' },
		{ "max-message", required_argument, NULL, 'm' },
		{ "keep-bodies", no_argument, NULL, 'k' },
		{ "threads", required_argument, NULL, 't' },
		{ "chunk", required_argument, NULL, 'c' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct unpack_options options;
	struct parse_run run;
	struct dm_handler handler;
	unsigned long long value;
	int c, i, status = 0;

	memset(&run, 0, sizeof(run));
	unpack_options_init(&options);
	optind = 1;
	while ((c = getopt_long(argc, argv, "f:vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			if (strcmp(optarg, "summary") == 0)
				run.format = FORMAT_SUMMARY;
			else if (strcmp(optarg, "ndjson") == 0)
				run.format = FORMAT_NDJSON;
			else {
				fprintf(stderr, "dmarcd parse: unknown format "
				    "'%s' (summary or ndjson)\n", optarg);
				return 64;
			}
			break;
		case 'b':
		case 'm':
			if (cmd_parse_size(optarg, &value) != 0 || value == 0) {
				fprintf(stderr, "dmarcd parse: '%s' is not a "
				    "size (e.g. 64M)\n", optarg);
				return 64;
			}
			if (c == 'b')
				options.limits.max_input_bytes = value;
			else
				options.limits.max_message_bytes = value;
			break;
		case 'r':
			if (cmd_parse_size(optarg, &value) != 0 ||
			    value > 1000000) {
				fprintf(stderr, "dmarcd parse: '%s' is not a "
				    "ratio (0 to 1000000)\n", optarg);
				return 64;
			}
			options.limits.max_ratio = (unsigned)value;
			break;
		case 'k':
			options.keep_bodies = 1;
			break;
		case 't':
			if (cmd_parse_size(optarg, &value) != 0 || value == 0 ||
			    value > UNPACK_MAX_THREADS) {
				fprintf(stderr, "dmarcd parse: --threads '%s': "
				    "1 to %d\n", optarg, UNPACK_MAX_THREADS);
				return 64;
			}
			options.parse_threads = (unsigned)value;
			break;
		case 'c':
			if (cmd_parse_size(optarg, &value) != 0 || value == 0 ||
			    value > (64ULL << 20)) {
				fprintf(stderr, "dmarcd parse: --chunk '%s' is not "
				    "a size from 1 to 64M\n", optarg);
				return 64;
			}
			options.parse_chunk = (size_t)value;
			break;
		case 'v':
			run.verbose = 1;
			break;
		case 'h':
			fputs(cmd_parse_usage, stdout);
			return 0;
		default:
			fputs(cmd_parse_usage, stderr);
			return 64;
		}
	}
	if (optind >= argc) {
		fputs(cmd_parse_usage, stderr);
		return 64;
	}
	memset(&handler, 0, sizeof(handler));
	handler.ctx = &run;
	handler.record = on_record;
	handler.report_end = on_report_end;
	handler.failure = on_failure;
	handler.problem = on_problem;
	for (i = optind; i < argc; i++)
		status = cmd_worse(status, parse_one(&run, argv[i], &options,
		    &handler));
	return status;
}
