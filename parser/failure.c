/*
 * failure.c - ARF failure reports and plain-text failure notices.
 *
 * Field names are matched case-insensitively. Single-valued fields keep
 * their first occurrence (a repeat is a warning); repeatable ones
 * (Reported-Domain, Original-Rcpt-To, Authentication-Results,
 * Reported-URI) collect up to DM_MAX_FAILURE_LIST values.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <libetpan/libetpan.h>

#include "parser/failure.h"
#include "parser/mime.h"

struct fill {
	struct dm_failure *f;
	struct dm_arena *arena;
	struct dm_warnings *warnings;
	int oom;
};

static const char *
dup_str(struct fill *fl, const char *s, int lowercase)
{
	char *copy = dm_arena_strndup(fl->arena, s, strlen(s));
	char *c;

	if (copy == NULL) {
		fl->oom = 1;
		return NULL;
	}
	if (lowercase)
		for (c = copy; *c != '\0'; c++)
			*c = (char)tolower((unsigned char)*c);
	return copy;
}

static void
set_once(struct fill *fl, const char **field, const char *name,
    const char *value, int lowercase)
{
	if (*field != NULL) {
		dm_warnings_add(fl->warnings, 0, "repeated %s field ignored",
		    name);
		return;
	}
	*field = dup_str(fl, value, lowercase);
}

static void
list_add(struct fill *fl, struct dm_strlist *list, const char *name,
    const char *value)
{
	const char *copy;

	if (list->count == DM_MAX_FAILURE_LIST) {
		dm_warnings_add(fl->warnings, 0, "more than %d %s fields: the "
		    "rest ignored", DM_MAX_FAILURE_LIST, name);
		return;
	}
	copy = dup_str(fl, value, 0);
	if (copy != NULL)
		list->items[list->count++] = copy;
}

/* "<a@b>" -> "a@b" for address fields. */
static const char *
strip_angles(const char *value, char *buf, size_t size)
{
	size_t len = strlen(value);

	if (len >= 2 && value[0] == '<' && value[len - 1] == '>' &&
	    len - 2 < size) {
		memcpy(buf, value + 1, len - 2);
		buf[len - 2] = '\0';
		return buf;
	}
	return value;
}

static void
set_source_ip(struct fill *fl, const char *value)
{
	char canon[64];

	if (fl->f->source_ip_raw != NULL) {
		dm_warnings_add(fl->warnings, 0, "repeated Source-IP field "
		    "ignored");
		return;
	}
	fl->f->source_ip_raw = dup_str(fl, value, 0);
	/* "192.0.2.1 (host.example)": the address is the first word. */
	{
		size_t n = strcspn(value, " \t(");

		if (n < sizeof(canon) && value[n] != '\0') {
			char word[64];

			memcpy(word, value, n);
			word[n] = '\0';
			if (dm_ip_canonical(word, canon, sizeof(canon)) == 0) {
				fl->f->source_ip = dup_str(fl, canon, 0);
				return;
			}
		}
	}
	if (dm_ip_canonical(value, canon, sizeof(canon)) == 0)
		fl->f->source_ip = dup_str(fl, canon, 0);
	else
		dm_warnings_add(fl->warnings, 0, "Source-IP '%.60s' is not an "
		    "IP address", value);
}

static void
set_arrival(struct fill *fl, const char *value)
{
	long long epoch;

	if (fl->f->arrival_date != NULL) {
		dm_warnings_add(fl->warnings, 0, "repeated Arrival-Date field "
		    "ignored");
		return;
	}
	fl->f->arrival_date = dup_str(fl, value, 0);
	if (mime_parse_date(value, &epoch) == 0) {
		fl->f->arrival_time = epoch;
		fl->f->has_arrival_time = 1;
	} else
		dm_warnings_add(fl->warnings, 0, "Arrival-Date '%.60s' is not "
		    "an RFC 5322 date", value);
}

static int
feedback_field(void *ctx, const char *name, const char *value)
{
	struct fill *fl = ctx;
	struct dm_failure *f = fl->f;
	char addr[512];

	if (strcasecmp(name, "Feedback-Type") == 0)
		set_once(fl, &f->feedback_type, name, value, 1);
	else if (strcasecmp(name, "User-Agent") == 0)
		set_once(fl, &f->user_agent, name, value, 0);
	else if (strcasecmp(name, "Version") == 0)
		set_once(fl, &f->version, name, value, 0);
	else if (strcasecmp(name, "Auth-Failure") == 0)
		set_once(fl, &f->auth_failure, name, value, 1);
	else if (strcasecmp(name, "Identity-Alignment") == 0)
		set_once(fl, &f->identity_alignment, name, value, 1);
	else if (strcasecmp(name, "Delivery-Result") == 0)
		set_once(fl, &f->delivery_result, name, value, 1);
	else if (strcasecmp(name, "Source-IP") == 0)
		set_source_ip(fl, value);
	else if (strcasecmp(name, "Source-Port") == 0)
		set_once(fl, &f->source_port, name, value, 0);
	else if (strcasecmp(name, "Arrival-Date") == 0 ||
	    strcasecmp(name, "Received-Date") == 0)
		set_arrival(fl, value);
	else if (strcasecmp(name, "Original-Mail-From") == 0)
		set_once(fl, &f->original_mail_from, name,
		    strip_angles(value, addr, sizeof(addr)), 0);
	else if (strcasecmp(name, "Original-Envelope-Id") == 0)
		set_once(fl, &f->original_envelope_id, name, value, 0);
	else if (strcasecmp(name, "Reporting-MTA") == 0)
		set_once(fl, &f->reporting_mta, name, value, 0);
	else if (strcasecmp(name, "DKIM-Domain") == 0)
		set_once(fl, &f->dkim_domain, name, value, 1);
	else if (strcasecmp(name, "DKIM-Identity") == 0)
		set_once(fl, &f->dkim_identity, name, value, 0);
	else if (strcasecmp(name, "DKIM-Selector") == 0)
		set_once(fl, &f->dkim_selector, name, value, 0);
	else if (strcasecmp(name, "SPF-DNS") == 0)
		set_once(fl, &f->spf_dns, name, value, 0);
	else if (strcasecmp(name, "Reported-Domain") == 0)
		list_add(fl, &f->reported_domain, name, value);
	else if (strcasecmp(name, "Original-Rcpt-To") == 0)
		list_add(fl, &f->original_rcpt_to, name,
		    strip_angles(value, addr, sizeof(addr)));
	else if (strcasecmp(name, "Authentication-Results") == 0)
		list_add(fl, &f->authentication_results, name, value);
	else if (strcasecmp(name, "Reported-URI") == 0)
		list_add(fl, &f->reported_uri, name, value);
	else if (strcasecmp(name, "Incidents") == 0) {
		uint64_t n;
		const char *why;

		if (dm_parse_uint64(value, &n, &why) == 0)
			f->incidents = n;
		else
			dm_warnings_add(fl->warnings, 0, "Incidents '%.40s' "
			    "%s: read as 1", value, why);
	}
	return fl->oom ? -1 : 0;
}

static int
original_field(void *ctx, const char *name, const char *value)
{
	struct fill *fl = ctx;
	struct dm_original_headers *h = &fl->f->headers;

	if (strcasecmp(name, "From") == 0 && h->from == NULL)
		h->from = dup_str(fl, value, 0);
	else if (strcasecmp(name, "To") == 0 && h->to == NULL)
		h->to = dup_str(fl, value, 0);
	else if (strcasecmp(name, "Subject") == 0 && h->subject == NULL)
		h->subject = dup_str(fl, value, 0);
	else if (strcasecmp(name, "Date") == 0 && h->date == NULL)
		h->date = dup_str(fl, value, 0);
	else if (strcasecmp(name, "Message-ID") == 0 && h->message_id == NULL)
		h->message_id = dup_str(fl, value, 0);
	else if (strcasecmp(name, "DKIM-Signature") == 0)
		list_add(fl, &h->dkim_signature, name, value);
	else if (strcasecmp(name, "Authentication-Results") == 0)
		list_add(fl, &h->authentication_results, name, value);
	return fl->oom ? -1 : 0;
}

static void
failure_init(struct dm_failure *f, const struct arf_options *o)
{
	memset(f, 0, sizeof(*f));
	f->input = o->input;
	f->where = o->where;
	f->warnings = o->warnings;
	f->incidents = 1;
}

/* Read the original message's header block (and body, if kept). */
static void
read_original(struct fill *fl, const char *data, size_t len,
    const struct arf_options *o)
{
	size_t body_off;

	if (mime_header_each(data, len, original_field, fl, &body_off) <= 0) {
		dm_warnings_add(fl->warnings, 0, "the original message's "
		    "headers could not be read");
		return;
	}
	if (o->keep_bodies && body_off < len) {
		size_t body_len = len - body_off;

		if (body_len > DM_MAX_FAILURE_BODY) {
			dm_warnings_add(fl->warnings, 0, "original body cut to "
			    "%d bytes", DM_MAX_FAILURE_BODY);
			body_len = DM_MAX_FAILURE_BODY;
		}
		fl->f->body = dm_arena_strndup(fl->arena, data + body_off,
		    body_len);
		fl->f->body_len = fl->f->body ? body_len : 0;
	}
}

const struct mailmime *
arf_feedback_part(const struct mailmime *multipart)
{
	clistiter *it;

	if (multipart->mm_type != MAILMIME_MULTIPLE)
		return NULL;
	for (it = clist_begin(multipart->mm_data.mm_multipart.mm_mp_list);
	    it != NULL; it = clist_next(it)) {
		const struct mailmime *child = clist_content(it);
		struct mime_part_info info;

		mime_part_info(child, &info);
		if (strcmp(info.type, "message/feedback-report") == 0)
			return child;
	}
	return NULL;
}

int
arf_parse(const struct mailmime *multipart, const struct arf_options *o,
    struct dm_arena *arena, struct dm_failure *f, struct dm_error *err)
{
	struct fill fl = { f, arena, o->warnings, 0 };
	const struct mailmime *feedback = arf_feedback_part(multipart);
	const char *data;
	size_t len, body_off;
	char *owned = NULL;
	clistiter *it;
	int fields, have_original = 0;

	failure_init(f, o);
	f->arf = 1;
	if (feedback == NULL)
		return dm_error_set(err, DM_E_DATA, "no message/feedback-report "
		    "part");
	if (feedback->mm_data.mm_single != NULL &&
	    feedback->mm_data.mm_single->dt_encoding ==
	    MAILMIME_MECHANISM_BASE64)
		dm_warnings_add(o->warnings, 0, "the message/feedback-report "
		    "part is base64-encoded (RFC 2046 forbids it)");
	if (mime_decode(feedback, &data, &len, &owned, err) != 0)
		return -1;
	fields = mime_header_each(data, len, feedback_field, &fl, &body_off);
	mime_decoded_free(&owned);
	if (fl.oom)
		return dm_error_set(err, DM_E_LIMIT, "the failure report's "
		    "text exceeds %zu bytes", arena->max);
	if (fields <= 0)
		return dm_error_set(err, DM_E_DATA, "the message/feedback-report "
		    "part has no readable field");
	if (f->feedback_type == NULL)
		dm_warnings_add(o->warnings, 0, "no Feedback-Type field");
	else if (strcmp(f->feedback_type, "auth-failure") != 0)
		dm_warnings_add(o->warnings, 0, "Feedback-Type is '%.40s', not "
		    "auth-failure: not a DMARC failure report",
		    f->feedback_type);
	if (f->user_agent == NULL)
		dm_warnings_add(o->warnings, 0, "no User-Agent field");
	if (f->version == NULL)
		dm_warnings_add(o->warnings, 0, "no Version field");

	for (it = clist_begin(multipart->mm_data.mm_multipart.mm_mp_list);
	    it != NULL; it = clist_next(it)) {
		const struct mailmime *child = clist_content(it);
		struct mime_part_info info;

		mime_part_info(child, &info);
		if (strcmp(info.type, "message/rfc822") == 0 &&
		    mime_raw_content(child, &data, &len) == 0) {
			read_original(&fl, data, len, o);
			have_original = 1;
			break;
		}
		if (strcmp(info.type, "text/rfc822-headers") == 0 ||
		    strcmp(info.type, "message/rfc822-headers") == 0) {
			if (mime_decode(child, &data, &len, &owned, err) != 0)
				return -1;
			read_original(&fl, data, len, o);
			mime_decoded_free(&owned);
			have_original = 1;
			break;
		}
	}
	if (fl.oom)
		return dm_error_set(err, DM_E_LIMIT, "the failure report's "
		    "text exceeds %zu bytes", arena->max);
	if (!have_original)
		dm_warnings_add(o->warnings, 0, "no original message or headers "
		    "in the failure report");
	return 0;
}

int
arf_looks_like_notice(const char *subject, const char *text, size_t len)
{
	static const char *const marks[] = {
		"failed the published DMARC policy",
		"DMARC Forensic Report",
		"DMARC Failure Report",
		"DMARC failure report",
		"authentication-failure report",
		NULL };
	const char *const *m;

	for (m = marks; *m != NULL; m++) {
		if (subject != NULL && strstr(subject, *m) != NULL)
			return 1;
		if (text != NULL && memmem(text, len, *m, strlen(*m)) != NULL)
			return 1;
	}
	return 0;
}

/* "  Sender Domain: example.com" lines of a notice. */
static int
notice_line(struct fill *fl, const char *line, size_t len)
{
	char name[64], value[512];
	const char *colon = memchr(line, ':', len);
	size_t nlen, vlen;
	struct dm_failure *f = fl->f;

	if (colon == NULL)
		return 0;
	while (len > 0 && (*line == ' ' || *line == '\t')) {
		line++;
		len--;
	}
	nlen = (size_t)(colon - line);
	if (nlen == 0 || nlen >= sizeof(name))
		return 0;
	memcpy(name, line, nlen);
	name[nlen] = '\0';
	colon++;
	vlen = len - (size_t)(colon - line);
	while (vlen > 0 && (*colon == ' ' || *colon == '\t')) {
		colon++;
		vlen--;
	}
	while (vlen > 0 && (colon[vlen - 1] == '\r' || colon[vlen - 1] == ' '))
		vlen--;
	if (vlen == 0 || vlen >= sizeof(value))
		return 0;
	memcpy(value, colon, vlen);
	value[vlen] = '\0';
	if (strcasecmp(name, "Sender Domain") == 0)
		list_add(fl, &f->reported_domain, "Sender Domain", value);
	else if (strcasecmp(name, "Sender IP Address") == 0)
		set_source_ip(fl, value);
	else if (strcasecmp(name, "Received date") == 0)
		set_arrival(fl, value);
	else
		return 0;
	return 1;
}

int
arf_parse_notice(const char *text, size_t len, const struct arf_options *o,
    struct dm_arena *arena, struct dm_failure *f, struct dm_error *err)
{
	static const char marker[] = "copy of the headers";
	struct fill fl = { f, arena, o->warnings, 0 };
	const char *p = text, *end = text + len, *copy;
	int found = 0;

	failure_init(f, o);
	f->arf = 0;
	dm_warnings_add(o->warnings, 0, "a plain-text failure notice without "
	    "an ARF part: fields read from its text");
	copy = memmem(text, len, marker, sizeof(marker) - 1);
	while (p < end && (copy == NULL || p < copy)) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t line_len = nl ? (size_t)(nl - p) : (size_t)(end - p);

		found += notice_line(&fl, p, line_len);
		p = nl ? nl + 1 : end;
	}
	if (copy != NULL) {
		/*
		 * The marker may wrap onto a second line (exim writes "...
		 * before the error\n       was detected."); the headers
		 * start after the empty line that follows it.
		 */
		const char *q = copy, *start = NULL;

		while (q < end) {
			const char *nl = memchr(q, '\n', (size_t)(end - q));

			if (nl == NULL)
				break;
			q = nl + 1;
			if (q < end && *q == '\r')
				q++;
			if (q < end && *q == '\n') {
				start = q + 1;
				break;
			}
		}
		if (start != NULL && start < end)
			read_original(&fl, start, (size_t)(end - start), o);
	}
	if (fl.oom)
		return dm_error_set(err, DM_E_LIMIT, "the failure notice's "
		    "text exceeds %zu bytes", arena->max);
	if (found == 0)
		dm_warnings_add(o->warnings, 0, "no sender domain, IP or date "
		    "found in the notice");
	return 0;
}
