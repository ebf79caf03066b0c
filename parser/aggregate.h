/*
 * aggregate.h - DMARC aggregate XML (RFC 7489 and RFC 9990) to events.
 *
 * A libxml2 SAX2 push parser fed in chunks: memory does not grow with the
 * number of records. Elements are matched on local names in any order and
 * any namespace; the namespace of <feedback> and <version> decide the
 * schema. report_begin is emitted when the first <record> opens (or at the
 * end when there is none), each record when it closes, report_end after
 * the last byte (the payload hash covers every byte).
 *
 * Hardening: no network, no DTD (a DOCTYPE ends the parse: XXE and
 * entity expansion are impossible), caps on depth, text, attributes,
 * recovered XML errors and record size (common/limits.h).
 *
 * Tolerance: enum case variants, unknown elements, white space, invalid
 * UTF-8 (read as Windows-1252), C0 control characters (removed), float
 * and millisecond timestamps, missing optional parts; each repair is a
 * warning on the report. Malformed XML is parsed in libxml2's recover
 * mode and each recovered error is a warning.
 *
 * DIAGNOSTICS: agg_feed and agg_finish return -1 when parsing must stop.
 * err->code is DM_E_DATA or DM_E_LIMIT for a bad report (when <feedback>
 * was seen, report_end has been delivered with status rejected and the
 * same message; when it was not, agg_has_report() is 0 and the input is
 * no aggregate report), or the handler's own code when a handler failed.
 * Messages name line, column and element: "line 12, column 9, in <count>:
 * '-1' is negative".
 */
#ifndef PARSER_AGGREGATE_H
#define PARSER_AGGREGATE_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/report.h"

struct agg_parser;

struct agg_options {
	const char *input;		/* names copied into struct dm_report */
	const char *where;
	struct dm_warnings *warnings;	/* where repairs are recorded */
	int hash_elsewhere;		/* agg_set_payload_sha256 will come */
	/*
	 * threads > 1: once the first <record> of a <feedback> root has
	 * closed, later records are cut into chunks at </record> and parsed
	 * by that many worker threads, each with its own libxml2 parser; the
	 * handler still sees every event in document order, on the calling
	 * thread, exactly as a serial parse would deliver it. A chunk a
	 * worker cannot parse cleanly (an XML error, a rejection, markup
	 * other than records, bytes that need the UTF-8 filter) is parsed
	 * again here, and so is everything after it. Records then reach
	 * the handler later than the bytes that hold them were fed (at the
	 * latest in agg_finish), and a handler's failure with them. chunk:
	 * bytes per chunk (0: AGG_CHUNK_DEFAULT).
	 */
	unsigned threads;
	size_t chunk;
};

#define AGG_MAX_THREADS		4
#define AGG_CHUNK_DEFAULT	(64 * 1024)

struct agg_parser *agg_new(const struct agg_options *options,
    const struct dm_handler *handler, struct dm_error *err);
int agg_feed(struct agg_parser *p, const void *data, size_t len,
    struct dm_error *err);
/*
 * agg_feed_hinted - the same, when the caller already knows that the first
 * clean bytes are plain ASCII text (agg_clean_prefix): a reader thread
 * runs that scan so that the parsing thread does not.
 */
int agg_feed_hinted(struct agg_parser *p, const void *data, size_t len,
    size_t clean, struct dm_error *err);
/* agg_clean_prefix - leading bytes that are ASCII text without controls
 * other than TAB, LF and CR. */
size_t agg_clean_prefix(const unsigned char *data, size_t len);
int agg_finish(struct agg_parser *p, struct dm_error *err);
/*
 * agg_abort - the bytes stopped coming (a read error below): end an open
 * report as rejected with err's message.
 */
int agg_abort(struct agg_parser *p, const struct dm_error *why,
    struct dm_error *err);
/*
 * agg_set_payload_sha256 - the SHA-256 of every byte fed, computed by the
 * caller (hash_elsewhere); before agg_finish or agg_abort.
 */
void agg_set_payload_sha256(struct agg_parser *p,
    const unsigned char digest[32]);
/* agg_parallel_chunks - chunks of records the workers parsed. */
uint64_t agg_parallel_chunks(const struct agg_parser *p);
/* agg_has_report - whether <feedback> was seen (report events flowed). */
int agg_has_report(const struct agg_parser *p);
/* agg_root_name - the document's root element, "" before it is seen. */
const char *agg_root_name(const struct agg_parser *p);
void agg_free(struct agg_parser **p);

/* agg_init - call once per process before threads (xmlInitParser). */
void agg_init(void);

#endif
