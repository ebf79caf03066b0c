/*
 * failure.h - failure (forensic) reports: ARF (RFC 5965, RFC 6591) and the
 * plain-text notices some gateways send instead.
 *
 * arf_parse reads the message/feedback-report part of a report and the
 * original message's headers (message/rfc822 or text/rfc822-headers).
 * The original body is kept only when asked (privacy). arf_parse_notice
 * reads what it can from a plain-text notice ("Sender Domain: ...").
 * Strings are allocated in the caller's arena.
 *
 * DIAGNOSTICS: -1 with DM_E_DATA when the feedback part has no field at
 * all, DM_E_LIMIT when the report's text exceeds the arena's cap.
 */
#ifndef PARSER_FAILURE_H
#define PARSER_FAILURE_H

#include "common/arena.h"
#include "common/report.h"

struct mailmime;

struct arf_options {
	const char *input;
	const char *where;
	int keep_bodies;
	struct dm_warnings *warnings;
};

/* arf_feedback_part - the message/feedback-report child, or NULL. */
const struct mailmime *arf_feedback_part(const struct mailmime *multipart);

int arf_parse(const struct mailmime *multipart,
    const struct arf_options *options, struct dm_arena *arena,
    struct dm_failure *failure, struct dm_error *err);

/* arf_looks_like_notice - a DMARC failure notice in plain text? */
int arf_looks_like_notice(const char *subject, const char *text,
    size_t len);

int arf_parse_notice(const char *text, size_t len,
    const struct arf_options *options, struct dm_arena *arena,
    struct dm_failure *failure, struct dm_error *err);

#endif
