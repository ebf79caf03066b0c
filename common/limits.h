/*
 * limits.h - every cap dmarcd puts on what the outside feeds it.
 *
 * One list, so that a reviewer sees at a glance how much a hostile report,
 * mail or request can cost. Values marked "default" can be changed at run
 * time (struct unpack_limits, command-line options); the others are
 * structural and fixed.
 */
#ifndef DM_LIMITS_H
#define DM_LIMITS_H

/* Decompression (defaults; see struct unpack_limits). */
#define DM_MAX_INPUT_BYTES	(4ULL << 30)	/* decompressed bytes per input */
#define DM_MAX_RATIO		250		/* decompressed : compressed */
#define DM_RATIO_GRACE_BYTES	(1ULL << 20)	/* ratio checked past this */
#define DM_MAX_MESSAGE_BYTES	(64ULL << 20)	/* a mail held for MIME parsing */
#define DM_MAX_ZIP_MEMBERS	256
#define DM_MAX_CONTAINER_DEPTH	6		/* gzip in zip in mail ... */

/* MIME. */
#define DM_MAX_MIME_DEPTH	8		/* message/rfc822 and multipart */
#define DM_MAX_MIME_PARTS	512
/* Checked by a linear scan before libetpan builds its tree, which costs
 * memory per header line and time quadratic in nesting. */
#define DM_MAX_MIME_HEADER_LINES 20000		/* in all header blocks */
#define DM_MAX_MIME_TYPE_FIELDS	1024		/* Content-Type fields */
#define DM_MAX_MIME_DASH_LINES	4096		/* "--..." boundary-like lines */
#define DM_MAX_JSON_BYTES	(16ULL << 20)	/* a JSON document read whole */

/* XML. */
#define DM_MAX_XML_DEPTH	32		/* element nesting */
#define DM_MAX_TEXT		(64 * 1024)	/* one text node */
#define DM_MAX_ATTR		4096		/* one attribute value */
#define DM_MAX_XML_ERRORS	50		/* recovered errors per report */
#define DM_MAX_DKIM_RESULTS	100		/* per record (RFC 9990 SHOULD) */
#define DM_MAX_SPF_RESULTS	100		/* per record */
#define DM_MAX_REASONS		32		/* per record */
#define DM_MAX_META_ERRORS	64		/* report_metadata/error */
#define DM_MAX_RECORD_TEXT	(1024 * 1024)	/* all strings of one record */
#define DM_MAX_REPORT_TEXT	(1024 * 1024)	/* all strings of the metadata */

/* Failure reports. */
#define DM_MAX_FAILURE_TEXT	(4 * 1024 * 1024)
#define DM_MAX_FAILURE_LIST	32		/* repeated fields */
#define DM_MAX_FAILURE_BODY	(1024 * 1024)	/* kept only on request */

/* Diagnostics. */
#define DM_MAX_WARNINGS		64		/* distinct warnings per report */
#define DM_MAX_WARNING_TEXT	320

#endif
