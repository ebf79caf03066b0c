/*
 * fuzz_aggregate.c - libFuzzer target for the SAX aggregate parser alone,
 * fed in chunks whose size comes from the first byte, so that chunk
 * boundaries fall inside multi-byte characters, tags and entities.
 *
 * Each input is parsed twice: serially, and with two worker threads and
 * a chunk size from the second byte. When libxml2 had nothing to say of
 * the input (no XML error, no NUL byte, no limit), the two must agree on
 * every record (number, line, count, address, identifiers), on the
 * report's status and error, and on every warning: a difference aborts.
 * Malformed XML is only run both ways: libxml2's recovery, and which of
 * two errors comes first, depend on where the bytes were split, in a
 * serial parse too.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parser/aggregate.h"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* FNV-1a over what a parse delivered. */
struct digest {
	uint64_t h;
	int xml_trouble;	/* libxml2 complained, or a limit tripped */
};

static void
mix(struct digest *d, const void *p, size_t n)
{
	const unsigned char *b = p;
	size_t i;

	for (i = 0; i < n; i++) {
		d->h ^= b[i];
		d->h *= 0x100000001b3ULL;
	}
}

static void
mix_str(struct digest *d, const char *s)
{
	mix(d, s != NULL ? s : "\1", s != NULL ? strlen(s) + 1 : 1);
}

static int
digest_record(void *ctx, const struct dm_report *r, const struct dm_record *rec,
    struct dm_error *err)
{
	struct digest *d = ctx;
	size_t i;

	fuzz_record(NULL, r, rec, err);
	mix(d, &rec->index, sizeof(rec->index));
	mix(d, &rec->line, sizeof(rec->line));
	mix(d, &rec->count, sizeof(rec->count));
	mix_str(d, rec->source_ip_raw);
	mix_str(d, rec->header_from);
	mix_str(d, rec->envelope_from);
	mix(d, &rec->dkim_count, sizeof(rec->dkim_count));
	for (i = 0; i < rec->dkim_count; i++)
		mix_str(d, rec->dkim_results[i].domain);
	mix(d, &rec->spf_count, sizeof(rec->spf_count));
	mix(d, &rec->reason_count, sizeof(rec->reason_count));
	return 0;
}

static int
digest_report_end(void *ctx, const struct dm_report *r, struct dm_error *err)
{
	struct digest *d = ctx;
	size_t i;

	fuzz_report_end(NULL, r, err);
	mix(d, &r->status, sizeof(r->status));
	mix_str(d, r->error.msg);
	mix(d, &r->record_count, sizeof(r->record_count));
	mix(d, &r->message_count, sizeof(r->message_count));
	for (i = 0; r->warnings != NULL && i < r->warnings->count; i++) {
		if (strstr(r->warnings->items[i].text, "XML ") != NULL)
			d->xml_trouble = 1;
		mix_str(d, r->warnings->items[i].text);
		mix(d, &r->warnings->items[i].line,
		    sizeof(r->warnings->items[i].line));
		mix(d, &r->warnings->items[i].count,
		    sizeof(r->warnings->items[i].count));
	}
	return 0;
}

static uint64_t
parse(const uint8_t *data, size_t size, size_t feed, unsigned threads,
    size_t chunk, int *trouble)
{
	struct dm_warnings *warnings;
	struct agg_options options;
	struct dm_handler handler;
	struct digest d = { 0xcbf29ce484222325ULL, 0 };
	struct agg_parser *p;
	struct dm_error err;
	size_t off;

	warnings = calloc(1, sizeof(*warnings));
	if (warnings == NULL)
		abort();
	memset(&options, 0, sizeof(options));
	options.input = "fuzz";
	options.where = "";
	options.warnings = warnings;
	options.threads = threads;
	options.chunk = chunk;
	memset(&handler, 0, sizeof(handler));
	handler.ctx = &d;
	handler.record = digest_record;
	handler.report_end = digest_report_end;
	p = agg_new(&options, &handler, &err);
	if (p == NULL)
		abort();
	for (off = 0; off < size; off += feed) {
		size_t n = size - off < feed ? size - off : feed;

		if (agg_feed(p, data + off, n, &err) != 0)
			break;
	}
	agg_finish(p, &err);
	mix_str(&d, err.msg);
	if (err.code == DM_E_LIMIT || strstr(err.msg, "XML") != NULL ||
	    strstr(err.msg, "NUL byte") != NULL)
		d.xml_trouble = 1;
	for (off = 0; off < warnings->count; off++)
		if (strstr(warnings->items[off].text, "XML ") != NULL)
			d.xml_trouble = 1;
	*trouble = d.xml_trouble;
	agg_free(&p);
	free(warnings);
	return d.h;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int initialised;
	size_t feed, chunk;
	uint64_t serial, parallel;
	int trouble, ignored;

	if (!initialised) {
		agg_init();
		initialised = 1;
	}
	if (size < 2)
		return 0;
	feed = (size_t)data[0] % 64 + 1;
	chunk = (size_t)data[1] * 4 + 1;
	data += 2;
	size -= 2;
	serial = parse(data, size, feed, 0, 0, &trouble);
	parallel = parse(data, size, feed, 2, chunk, &ignored);
	if (!trouble && serial != parallel) {
		fprintf(stderr, "serial and parallel parses differ (feed %zu, "
		    "chunk %zu)\n", feed, chunk);
		abort();
	}
	return 0;
}
