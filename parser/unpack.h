/*
 * unpack.h - the parser's front door: find every report in whatever
 * arrived, and hand it on as events.
 *
 * The input is recognised by its bytes only, never by a file name or a
 * Content-Type: XML (any BOM), gzip (several members; gzip in gzip), raw
 * zlib, zip (every member), a whole mail (RFC 5322/MIME, mbox From_ line
 * allowed; reports in any part, base64 or quoted-printable, message/rfc822
 * wrapping), ARF failure reports and plain-text failure notices. After
 * each decompression the content is sniffed again, up to
 * DM_MAX_CONTAINER_DEPTH layers.
 *
 * Every decompressed byte counts against limits.max_input_bytes and each
 * layer's ratio against limits.max_ratio, so bombs are refused early. Zip
 * member names are labels only: nothing is ever written under them.
 *
 * Events go to the handler (common/report.h): aggregate reports, failure
 * reports, and a problem event for every part that is no report or could
 * not be read. The result counts what was found.
 *
 * DIAGNOSTICS: unpack_* return 0 when the input was read to its end, even
 * when reports in it were rejected (see result->rejected and the events).
 * They return -1 when the input could not be read (DM_E_NOINPUT, DM_E_IO)
 * or a handler stopped the parse (the handler's error code).
 */
#ifndef PARSER_UNPACK_H
#define PARSER_UNPACK_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/report.h"

struct unpack_limits {
	uint64_t max_input_bytes;	/* decompressed, all layers */
	unsigned max_ratio;		/* per layer; 0 = no check */
	uint64_t max_message_bytes;	/* a mail held for MIME parsing */
	unsigned max_zip_members;
};

struct unpack_options {
	struct unpack_limits limits;
	int keep_bodies;		/* failure reports' original body */
	/* Threads parsing the records of a big aggregate report (0: one per
	 * CPU, up to AGG_MAX_THREADS; 1: none) and their chunk size in bytes
	 * (0: AGG_CHUNK_DEFAULT); see agg_options. */
	unsigned parse_threads;
	size_t parse_chunk;
};

#define UNPACK_MAX_THREADS	4	/* = AGG_MAX_THREADS */

struct unpack_result {
	enum dm_kind kind;		/* most significant kind found */
	unsigned aggregate_reports;
	unsigned failure_reports;
	unsigned problems;
	unsigned rejected;		/* rejected reports + problems */
	uint64_t records;		/* of accepted aggregate reports */
	uint64_t messages;		/* sum of their counts */
	uint64_t parallel_chunks;	/* parsed by worker threads */
};

void unpack_options_init(struct unpack_options *options);

/* unpack_path - a file, or standard input for "-". */
int unpack_path(const char *path, const struct unpack_options *options,
    const struct dm_handler *handler, struct unpack_result *result,
    struct dm_error *err);
int unpack_fd(int fd, const char *name, const struct unpack_options *options,
    const struct dm_handler *handler, struct unpack_result *result,
    struct dm_error *err);
int unpack_memory(const void *data, size_t len, const char *name,
    const struct unpack_options *options, const struct dm_handler *handler,
    struct unpack_result *result, struct dm_error *err);

/*
 * The versions of the libraries loaded on first use (common/dl.h), for
 * dmarcd --version: this loads them; NULL when one cannot be loaded.
 */
const char *unpack_libzip_version(void);
const char *unpack_libetpan_version(void);

/* unpack_init - once per process, before threads. */
void unpack_init(void);

#endif
