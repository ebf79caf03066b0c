/*
 * mime.h - what the parser needs from libetpan's MIME parser.
 *
 * libetpan parses a whole message held in memory into a tree of struct
 * mailmime; these helpers read a part's media type, parameters and file
 * name, undo its transfer encoding, and read header blocks as raw
 * (unfolded) name/value pairs. Only parser/ uses them.
 *
 * libetpan is loaded on first use (common/dl.h): mime_parse loads it,
 * and every other helper here takes a tree mime_parse made, except
 * mime_header_each and mime_parse_date, which fail as on bad input when
 * the library is missing.
 *
 * DIAGNOSTICS: mime_parse and mime_decode return -1 with DM_E_DATA when
 * libetpan cannot parse or decode, DM_E_NOMEM when it runs out of memory;
 * mime_parse and mime_load with DM_E_UNAVAILABLE when libetpan cannot be
 * loaded.
 */
#ifndef PARSER_MIME_H
#define PARSER_MIME_H

#include <stddef.h>

#include "common/error.h"

struct mailmime;

struct mime_part_info {
	char type[128];		/* "application/gzip", lower case */
	char filename[160];	/* printable ASCII, "" when none */
	char report_type[64];	/* multipart/report; report-type=... */
};

/* mime_skip_mbox_from - length of a leading mbox "From " line, or 0. */
size_t mime_skip_mbox_from(const char *data, size_t len);

/*
 * mime_prescan - refuse, in one linear pass and flat memory, a mail whose
 * structure would make libetpan's tree huge or its walk quadratic: too
 * many header lines, Content-Type fields or boundary lines (limits.h).
 * -1 with DM_E_LIMIT and the reason.
 */
int mime_prescan(const char *data, size_t len, struct dm_error *err);

/* The same, fed in pieces as the mail is read. */
struct mime_scan {
	int in_header;
	unsigned long header_lines, type_fields, dash_lines;
	size_t line_len, head_len;
	char head[16];			/* a line's first bytes */
};

void mime_scan_init(struct mime_scan *scan);
int mime_scan_feed(struct mime_scan *scan, const char *data, size_t len,
    struct dm_error *err);

/* mime_load - load libetpan now; mime_library_version - "1.9" or NULL. */
int mime_load(struct dm_error *err);
const char *mime_library_version(void);

int mime_parse(const char *data, size_t len, struct mailmime **mime_r,
    struct dm_error *err);
void mime_free(struct mailmime **mime);

void mime_part_info(const struct mailmime *part, struct mime_part_info *info);

/*
 * mime_decode - the part's content with its transfer encoding undone.
 * *owned_r is non-NULL when memory was allocated: release it with
 * mime_decoded_free.
 */
int mime_decode(const struct mailmime *part, const char **data_r,
    size_t *len_r, char **owned_r, struct dm_error *err);
void mime_decoded_free(char **owned);

/* mime_raw_content - the part's content as it stands in the message. */
int mime_raw_content(const struct mailmime *part, const char **data_r,
    size_t *len_r);

/*
 * mime_header_each - call fn for each field of a header block (until the
 * empty line), with the value unfolded and trimmed. *body_off_r is where
 * the body starts (or len). Returns the number of fields, -1 on error.
 */
int mime_header_each(const char *data, size_t len,
    int (*fn)(void *ctx, const char *name, const char *value), void *ctx,
    size_t *body_off_r);

/* mime_parse_date - an RFC 5322 date to epoch seconds; -1 if invalid. */
int mime_parse_date(const char *value, long long *epoch_r);

/* mime_header_value - first field named name among a message's own. */
const char *mime_message_subject(const struct mailmime *message);

#endif
