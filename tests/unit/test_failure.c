/*
 * test_failure.c - unit tests for parser/failure.c: failure (forensic)
 * reports, parsed through unpack_memory as they arrive by mail.
 *
 * Proves: every field of an ARF report (RFC 5965, RFC 6591) comes out
 * normalised as report.h documents (Feedback-Type lower-cased, Source-IP
 * canonical, Arrival-Date as epoch with its time zone applied, repeated
 * fields as lists, Original-Rcpt-To without angle brackets,
 * Authentication-Results unfolded); the original message's headers are
 * read from message/rfc822 and from text/rfc822-headers; its body is kept
 * only when asked; a base64-encoded feedback part is read with a warning;
 * a feedback part without fields rejects the report; and a plain-text
 * notice (exim's "DMARC Forensic Report") is kept with arf = 0 and the
 * fields its text has.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/buf.h"
#include "common/report.h"
#include "parser/unpack.h"

/* A deep copy of the one failure event, taken during the callback. */
struct list_copy {
	char *items[8];
	size_t count;
};

struct failure_copy {
	char *where;
	int arf;
	char *feedback_type, *user_agent, *version, *auth_failure;
	char *identity_alignment, *delivery_result, *source_ip;
	char *source_ip_raw, *source_port, *arrival_date;
	int64_t arrival_time;
	int has_arrival_time;
	char *original_mail_from, *original_envelope_id, *reporting_mta;
	uint64_t incidents;
	char *dkim_domain, *dkim_identity, *dkim_selector, *spf_dns;
	struct list_copy reported_domain, original_rcpt_to;
	struct list_copy authentication_results, reported_uri;
	char *h_from, *h_to, *h_subject, *h_date, *h_message_id;
	struct list_copy h_dkim_signature, h_authentication_results;
	char *body;
	size_t body_len;
	int has_body;
	char warnings[4096];
	enum dm_status status;
	struct dm_error error;
};

struct recorder {
	int failures, reports, problems;
	struct failure_copy f;
	char problem_msg[DM_ERROR_MSG_MAX];
	char **pool;
	size_t pool_len;
};

static char *
copy(struct recorder *r, const char *s)
{
	char *c;

	if (s == NULL)
		return NULL;
	c = strdup(s);
	r->pool = realloc(r->pool, (r->pool_len + 1) * sizeof(*r->pool));
	if (c == NULL || r->pool == NULL)
		abort();
	r->pool[r->pool_len++] = c;
	return c;
}

static void
copy_list(struct recorder *r, struct list_copy *out,
    const struct dm_strlist *in)
{
	size_t i;

	out->count = in->count;
	for (i = 0; i < in->count && i < 8; i++)
		out->items[i] = copy(r, in->items[i]);
}

static int
rec_failure(void *ctx, const struct dm_failure *f, struct dm_error *err)
{
	struct recorder *r = ctx;
	struct failure_copy *c = &r->f;
	size_t i, o = 0;

	(void)err;
	r->failures++;
	c->where = copy(r, f->where);
	c->arf = f->arf;
	c->feedback_type = copy(r, f->feedback_type);
	c->user_agent = copy(r, f->user_agent);
	c->version = copy(r, f->version);
	c->auth_failure = copy(r, f->auth_failure);
	c->identity_alignment = copy(r, f->identity_alignment);
	c->delivery_result = copy(r, f->delivery_result);
	c->source_ip = copy(r, f->source_ip);
	c->source_ip_raw = copy(r, f->source_ip_raw);
	c->source_port = copy(r, f->source_port);
	c->arrival_date = copy(r, f->arrival_date);
	c->arrival_time = f->arrival_time;
	c->has_arrival_time = f->has_arrival_time;
	c->original_mail_from = copy(r, f->original_mail_from);
	c->original_envelope_id = copy(r, f->original_envelope_id);
	c->reporting_mta = copy(r, f->reporting_mta);
	c->incidents = f->incidents;
	c->dkim_domain = copy(r, f->dkim_domain);
	c->dkim_identity = copy(r, f->dkim_identity);
	c->dkim_selector = copy(r, f->dkim_selector);
	c->spf_dns = copy(r, f->spf_dns);
	copy_list(r, &c->reported_domain, &f->reported_domain);
	copy_list(r, &c->original_rcpt_to, &f->original_rcpt_to);
	copy_list(r, &c->authentication_results, &f->authentication_results);
	copy_list(r, &c->reported_uri, &f->reported_uri);
	c->h_from = copy(r, f->headers.from);
	c->h_to = copy(r, f->headers.to);
	c->h_subject = copy(r, f->headers.subject);
	c->h_date = copy(r, f->headers.date);
	c->h_message_id = copy(r, f->headers.message_id);
	copy_list(r, &c->h_dkim_signature, &f->headers.dkim_signature);
	copy_list(r, &c->h_authentication_results,
	    &f->headers.authentication_results);
	c->has_body = f->body != NULL;
	c->body_len = f->body_len;
	if (f->body != NULL) {
		c->body = malloc(f->body_len + 1);
		if (c->body == NULL)
			abort();
		memcpy(c->body, f->body, f->body_len);
		c->body[f->body_len] = '\0';
		r->pool = realloc(r->pool, (r->pool_len + 1) *
		    sizeof(*r->pool));
		if (r->pool == NULL)
			abort();
		r->pool[r->pool_len++] = c->body;
	}
	c->warnings[0] = '\0';
	for (i = 0; f->warnings != NULL && i < f->warnings->count &&
	    o + 1 < sizeof(c->warnings); i++)
		o += (size_t)snprintf(c->warnings + o, sizeof(c->warnings) - o,
		    "%s\n", f->warnings->items[i].text);
	c->status = f->status;
	c->error = f->error;
	return 0;
}

static int
rec_report_end(void *ctx, const struct dm_report *rep, struct dm_error *err)
{
	struct recorder *r = ctx;

	(void)rep;
	(void)err;
	r->reports++;
	return 0;
}

static int
rec_problem(void *ctx, const struct dm_problem *p, struct dm_error *err)
{
	struct recorder *r = ctx;

	(void)err;
	r->problems++;
	snprintf(r->problem_msg, sizeof(r->problem_msg), "%s", p->error->msg);
	return 0;
}

struct fixture {
	struct recorder rec;
	struct unpack_result result;
	struct dm_buf mail;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	dm_buf_init(&f->mail, 1u << 20);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	size_t i;

	for (i = 0; i < f->rec.pool_len; i++)
		free(f->rec.pool[i]);
	free(f->rec.pool);
	dm_buf_free(&f->mail);
	free(f);
	return 0;
}

/* Parse f->mail; exactly one failure event is expected. */
static const struct failure_copy *
parse_mail(struct fixture *f, int keep_bodies)
{
	struct unpack_options opt;
	struct dm_handler h;
	struct dm_error err;

	memset(&h, 0, sizeof(h));
	h.ctx = &f->rec;
	h.failure = rec_failure;
	h.report_end = rec_report_end;
	h.problem = rec_problem;
	unpack_options_init(&opt);
	opt.keep_bodies = keep_bodies;
	dm_error_clear(&err);
	assert_int_equal(unpack_memory(f->mail.data, f->mail.len, "ruf.eml",
	    &opt, &h, &f->result, &err), 0);
	if (f->rec.problems != 0)
		fail_msg("problem: %s", f->rec.problem_msg);
	assert_int_equal(f->rec.failures, 1);
	assert_int_equal(f->rec.reports, 0);
	assert_int_equal(f->result.failure_reports, 1);
	assert_int_equal(f->result.kind, DM_KIND_FAILURE);
	return &f->rec.f;
}

static void
put(struct dm_buf *b, const char *s)
{
	assert_int_equal(dm_buf_append(b, s, strlen(s)), 0);
}

#define assert_contains(hay, needle) do {				\
	if (strstr((hay), (needle)) == NULL)				\
		fail_msg("\"%s\" does not contain \"%s\"", (hay),	\
		    (needle));						\
} while (0)

/* ARF */

#define ARF_HEAD \
	"From: ruf@receiver.example\r\n" \
	"To: dmarc-ruf@example.com\r\n" \
	"Subject: DMARC Failure Report for example.com\r\n" \
	"Date: Sat, 03 Jan 2026 09:30:00 +0000\r\n" \
	"Message-ID: <ruf-1@receiver.example>\r\n" \
	"MIME-Version: 1.0\r\n" \
	"Content-Type: multipart/report; report-type=\"feedback-report\"; " \
	"boundary=\"ARF\"\r\n" \
	"\r\n" \
	"--ARF\r\n" \
	"Content-Type: text/plain; charset=\"us-ascii\"\r\n" \
	"\r\n" \
	"This is an authentication failure report.\r\n" \
	"\r\n"

#define FEEDBACK_FIELDS \
	"Feedback-Type: Auth-Failure\r\n" \
	"User-Agent: ExampleReporter/2.1\r\n" \
	"Version: 1\r\n" \
	"Original-Mail-From: <billing@example.com>\r\n" \
	"Original-Rcpt-To: <victim@receiver.example>\r\n" \
	"Original-Rcpt-To: other@receiver.example\r\n" \
	"Original-Envelope-Id: env-42\r\n" \
	"Arrival-Date: Sat, 03 Jan 2026 09:29:41 +0100\r\n" \
	"Reporting-MTA: dns; mx.receiver.example\r\n" \
	"Source-IP: 2001:DB8:0:0::1\r\n" \
	"Source-Port: 52314\r\n" \
	"Incidents: 3\r\n" \
	"Reported-Domain: example.com\r\n" \
	"Reported-Domain: mail.example.com\r\n" \
	"Reported-URI: http://example.com/pay\r\n" \
	"Authentication-Results: mx.receiver.example;\r\n" \
	"\tdmarc=fail (p=none) header.from=example.com;\r\n" \
	"        spf=fail smtp.mailfrom=example.com\r\n" \
	"Auth-Failure: DMARC\r\n" \
	"Identity-Alignment: DKIM,SPF\r\n" \
	"Delivery-Result: Delivered\r\n" \
	"DKIM-Domain: Example.COM\r\n" \
	"DKIM-Identity: @example.com\r\n" \
	"DKIM-Selector: s2026\r\n" \
	"SPF-DNS: txt : example.com : \"v=spf1 -all\"\r\n"

#define ORIGINAL_HEADERS \
	"Received: from mail.example.biz (mail.example.biz [2001:db8::1])\r\n" \
	"\tby mx.receiver.example; Sat, 03 Jan 2026 09:29:41 +0100\r\n" \
	"DKIM-Signature: v=1; a=rsa-sha256; d=example.com;\r\n" \
	"\ts=s2026; b=AbCd\r\n" \
	"Authentication-Results: mx.receiver.example; dkim=fail\r\n" \
	"From: \"Example Billing\" <billing@example.com>\r\n" \
	"To: victim@receiver.example\r\n" \
	"Subject: Your invoice is overdue\r\n" \
	"Date: Sat, 03 Jan 2026 09:29:38 +0000\r\n" \
	"Message-ID: <phish-77@mail.example.biz>\r\n"

#define ORIGINAL_BODY \
	"Please pay now.\r\n" \
	"Line two.\r\n"

static const char arf_rfc822[] =
	ARF_HEAD
	"--ARF\r\n"
	"Content-Type: message/feedback-report\r\n"
	"\r\n"
	FEEDBACK_FIELDS
	"\r\n"
	"--ARF\r\n"
	"Content-Type: message/rfc822\r\n"
	"Content-Disposition: inline\r\n"
	"\r\n"
	ORIGINAL_HEADERS
	"\r\n"
	ORIGINAL_BODY
	"\r\n"
	"--ARF--\r\n";

static void
assert_original_headers(const struct failure_copy *c)
{
	assert_string_equal(c->h_from, "\"Example Billing\" "
	    "<billing@example.com>");
	assert_string_equal(c->h_to, "victim@receiver.example");
	assert_string_equal(c->h_subject, "Your invoice is overdue");
	assert_string_equal(c->h_date, "Sat, 03 Jan 2026 09:29:38 +0000");
	assert_string_equal(c->h_message_id, "<phish-77@mail.example.biz>");
	assert_int_equal(c->h_dkim_signature.count, 1);
	assert_string_equal(c->h_dkim_signature.items[0], "v=1; a=rsa-sha256; "
	    "d=example.com; s=s2026; b=AbCd");
	assert_int_equal(c->h_authentication_results.count, 1);
	assert_string_equal(c->h_authentication_results.items[0],
	    "mx.receiver.example; dkim=fail");
}

static void
test_arf_every_field(void **state)
{
	struct fixture *f = *state;
	const struct failure_copy *c;

	put(&f->mail, arf_rfc822);
	c = parse_mail(f, 0);
	assert_int_equal(c->status, DM_STATUS_OK);
	assert_int_equal(f->result.rejected, 0);
	assert_true(c->arf);
	assert_string_equal(c->where, "");
	assert_string_equal(c->feedback_type, "auth-failure");
	assert_string_equal(c->user_agent, "ExampleReporter/2.1");
	assert_string_equal(c->version, "1");
	assert_string_equal(c->auth_failure, "dmarc");
	assert_string_equal(c->identity_alignment, "dkim,spf");
	assert_string_equal(c->delivery_result, "delivered");
	assert_string_equal(c->source_ip, "2001:db8::1");
	assert_string_equal(c->source_ip_raw, "2001:DB8:0:0::1");
	assert_string_equal(c->source_port, "52314");
	assert_string_equal(c->arrival_date, "Sat, 03 Jan 2026 09:29:41 "
	    "+0100");
	assert_true(c->has_arrival_time);
	/* 08:29:41 UTC: the +0100 is taken off. */
	assert_true(c->arrival_time == 1767428981);
	assert_string_equal(c->original_mail_from, "billing@example.com");
	assert_string_equal(c->original_envelope_id, "env-42");
	assert_string_equal(c->reporting_mta, "dns; mx.receiver.example");
	assert_true(c->incidents == 3);
	assert_string_equal(c->dkim_domain, "example.com");
	assert_string_equal(c->dkim_identity, "@example.com");
	assert_string_equal(c->dkim_selector, "s2026");
	assert_string_equal(c->spf_dns, "txt : example.com : \"v=spf1 -all\"");
	assert_int_equal(c->reported_domain.count, 2);
	assert_string_equal(c->reported_domain.items[0], "example.com");
	assert_string_equal(c->reported_domain.items[1], "mail.example.com");
	assert_int_equal(c->original_rcpt_to.count, 2);
	assert_string_equal(c->original_rcpt_to.items[0],
	    "victim@receiver.example");
	assert_string_equal(c->original_rcpt_to.items[1],
	    "other@receiver.example");
	assert_int_equal(c->reported_uri.count, 1);
	assert_string_equal(c->reported_uri.items[0], "http://example.com/pay");
	assert_int_equal(c->authentication_results.count, 1);
	/* Unfolded: one line, runs of white space made one space. */
	assert_string_equal(c->authentication_results.items[0],
	    "mx.receiver.example; dmarc=fail (p=none) header.from=example.com; "
	    "spf=fail smtp.mailfrom=example.com");
	assert_original_headers(c);
	/* Privacy: no body unless asked. */
	assert_false(c->has_body);
	assert_int_equal(c->body_len, 0);
	assert_string_equal(c->warnings, "");
}

static void
test_arf_keep_bodies(void **state)
{
	struct fixture *f = *state;
	const struct failure_copy *c;

	put(&f->mail, arf_rfc822);
	c = parse_mail(f, 1);
	assert_int_equal(c->status, DM_STATUS_OK);
	assert_true(c->has_body);
	/* The body, without the CRLF that belongs to the boundary. */
	assert_string_equal(c->body, ORIGINAL_BODY);
	assert_int_equal(c->body_len, strlen(ORIGINAL_BODY));
	assert_original_headers(c);
}

static void
test_arf_rfc822_headers_part(void **state)
{
	struct fixture *f = *state;
	const struct failure_copy *c;

	put(&f->mail, ARF_HEAD
	    "--ARF\r\n"
	    "Content-Type: message/feedback-report\r\n"
	    "\r\n"
	    FEEDBACK_FIELDS
	    "\r\n"
	    "--ARF\r\n"
	    "Content-Type: text/rfc822-headers\r\n"
	    "\r\n"
	    ORIGINAL_HEADERS
	    "\r\n"
	    "--ARF--\r\n");
	c = parse_mail(f, 1);
	assert_int_equal(c->status, DM_STATUS_OK);
	assert_string_equal(c->feedback_type, "auth-failure");
	assert_original_headers(c);
	/* Headers only: there is no body to keep. */
	assert_true(!c->has_body || c->body_len == 0);
	assert_null(strstr(c->warnings, "headers could not be read"));
}

static void
test_arf_base64_feedback_part(void **state)
{
	struct fixture *f = *state;
	const struct failure_copy *c;

	/* "Feedback-Type: auth-failure\r\nSource-IP: 192.0.2.1
	 * (mail.example.biz)\r\nReported-Domain: example.com\r\n" */
	put(&f->mail, ARF_HEAD
	    "--ARF\r\n"
	    "Content-Type: message/feedback-report\r\n"
	    "Content-Transfer-Encoding: base64\r\n"
	    "\r\n"
	    "RmVlZGJhY2stVHlwZTogYXV0aC1mYWlsdXJlDQpTb3VyY2UtSVA6IDE5Mi4wLjIu"
	    "MSAobWFp\r\n"
	    "bC5leGFtcGxlLmJpeikNClJlcG9ydGVkLURvbWFpbjogZXhhbXBsZS5jb20NCg=="
	    "\r\n"
	    "\r\n"
	    "--ARF\r\n"
	    "Content-Type: text/rfc822-headers\r\n"
	    "\r\n"
	    ORIGINAL_HEADERS
	    "\r\n"
	    "--ARF--\r\n");
	c = parse_mail(f, 0);
	assert_int_equal(c->status, DM_STATUS_OK);
	assert_true(c->arf);
	assert_string_equal(c->feedback_type, "auth-failure");
	assert_string_equal(c->source_ip, "192.0.2.1");
	assert_string_equal(c->source_ip_raw, "192.0.2.1 (mail.example.biz)");
	assert_int_equal(c->reported_domain.count, 1);
	assert_string_equal(c->reported_domain.items[0], "example.com");
	assert_true(c->incidents == 1);
	assert_contains(c->warnings, "the message/feedback-report part is "
	    "base64-encoded");
	assert_contains(c->warnings, "no User-Agent field");
	assert_contains(c->warnings, "no Version field");
}

static void
test_arf_without_fields_rejected(void **state)
{
	struct fixture *f = *state;
	const struct failure_copy *c;

	put(&f->mail, ARF_HEAD
	    "--ARF\r\n"
	    "Content-Type: message/feedback-report\r\n"
	    "\r\n"
	    "this is not a field at all\r\n"
	    "\r\n"
	    "--ARF--\r\n");
	c = parse_mail(f, 0);
	assert_int_equal(c->status, DM_STATUS_REJECTED);
	assert_int_equal(c->error.code, DM_E_DATA);
	assert_contains(c->error.msg, "no readable field");
	assert_int_equal(f->result.rejected, 1);
}

static void
test_arf_bad_values_warn(void **state)
{
	struct fixture *f = *state;
	const struct failure_copy *c;

	put(&f->mail, ARF_HEAD
	    "--ARF\r\n"
	    "Content-Type: message/feedback-report\r\n"
	    "\r\n"
	    "Feedback-Type: abuse\r\n"
	    "Feedback-Type: auth-failure\r\n"
	    "User-Agent: x/1\r\n"
	    "Version: 1\r\n"
	    "Source-IP: X.X.X.X\r\n"
	    "Arrival-Date: yesterday\r\n"
	    "Incidents: many\r\n"
	    "\r\n"
	    "--ARF--\r\n");
	c = parse_mail(f, 0);
	assert_int_equal(c->status, DM_STATUS_OK);
	/* The first occurrence wins. */
	assert_string_equal(c->feedback_type, "abuse");
	assert_null(c->source_ip);
	assert_string_equal(c->source_ip_raw, "X.X.X.X");
	assert_false(c->has_arrival_time);
	assert_string_equal(c->arrival_date, "yesterday");
	assert_true(c->incidents == 1);
	assert_contains(c->warnings, "repeated Feedback-Type field ignored");
	assert_contains(c->warnings, "not auth-failure");
	assert_contains(c->warnings, "Source-IP 'X.X.X.X' is not an IP "
	    "address");
	assert_contains(c->warnings, "Arrival-Date 'yesterday' is not an RFC "
	    "5322 date");
	assert_contains(c->warnings, "Incidents 'many'");
	assert_contains(c->warnings, "no original message or headers");
}

/* Plain-text notices */

/* As exim's moan.c writes it (ERRMESS_DMARC_FORENSIC), headers only. */
static const char exim_notice[] =
	"Return-path: <>\n"
	"From: Mail Delivery System <Mailer-Daemon@mx.receiver.example>\n"
	"To: dmarc-ruf@example.com\n"
	"Subject: DMARC Forensic Report for example.com from IP 192.0.2.25\n"
	"Auto-Submitted: auto-replied\n"
	"Message-Id: <E1W5Yhx-0001aB-Cd@mx.receiver.example>\n"
	"Date: Tue, 21 Jan 2014 12:23:53 -0530\n"
	"\n"
	"A message claiming to be from you has failed the published DMARC\n"
	"policy for your domain.\n"
	"\n"
	"  Sender Domain: example.com\n"
	"  Sender IP Address: 192.0.2.25\n"
	"  Received Date: Tue, 21 Jan 2014 12:23:52 -0530\n"
	"  SPF Alignment: no\n"
	"  DKIM Alignment: no\n"
	"  DMARC Results: Reject\n"
	"\n"
	"------ This is a copy of the headers that were received before the "
	"error\n"
	"       was detected.\n"
	"\n"
	"Received: from [192.0.2.25] (helo=mail.example.biz)\n"
	"\tby mx.receiver.example with esmtp (Exim 4.82)\n"
	"\tid 1W5Yhw-0001a9-Ab; Tue, 21 Jan 2014 12:23:52 -0530\n"
	"From: billing@example.com\n"
	"To: victim@receiver.example\n"
	"Subject: Invoice\n"
	"Date: Tue, 21 Jan 2014 12:23:50 -0530\n"
	"Message-ID: <abc@mail.example.biz>\n"
	"\n";

static void
test_plain_text_notice_fields(void **state)
{
	struct fixture *f = *state;
	const struct failure_copy *c;

	put(&f->mail, exim_notice);
	c = parse_mail(f, 0);
	assert_int_equal(c->status, DM_STATUS_OK);
	assert_false(c->arf);
	assert_int_equal(c->reported_domain.count, 1);
	assert_string_equal(c->reported_domain.items[0], "example.com");
	assert_string_equal(c->source_ip, "192.0.2.25");
	assert_true(c->has_arrival_time);
	assert_true(c->arrival_time == 1390326832);
	assert_null(c->feedback_type);
	assert_contains(c->warnings, "a plain-text failure notice without an "
	    "ARF part");
	assert_null(strstr(c->warnings, "no sender domain, IP or date"));
}

/* The copy of the original headers that follows exim's two-line marker. */
static void
test_plain_text_notice_headers(void **state)
{
	struct fixture *f = *state;
	const struct failure_copy *c;

	put(&f->mail, exim_notice);
	c = parse_mail(f, 0);
	assert_null(strstr(c->warnings, "headers could not be read"));
	assert_string_equal(c->h_from, "billing@example.com");
	assert_string_equal(c->h_to, "victim@receiver.example");
	assert_string_equal(c->h_subject, "Invoice");
	assert_string_equal(c->h_message_id, "<abc@mail.example.biz>");
}

/* A notice without any field it knows is still kept, with a warning. */
static void
test_plain_text_notice_without_fields(void **state)
{
	struct fixture *f = *state;
	const struct failure_copy *c;

	put(&f->mail, "From: postmaster@receiver.example\r\n"
	    "To: dmarc-ruf@example.com\r\n"
	    "Subject: DMARC Failure Report\r\n"
	    "\r\n"
	    "A message from your domain failed DMARC.\r\n");
	c = parse_mail(f, 0);
	assert_false(c->arf);
	assert_int_equal(c->reported_domain.count, 0);
	assert_null(c->source_ip);
	assert_contains(c->warnings, "no sender domain, IP or date found");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(test_arf_every_field),
		T(test_arf_keep_bodies),
		T(test_arf_rfc822_headers_part),
		T(test_arf_base64_feedback_part),
		T(test_arf_without_fields_rejected),
		T(test_arf_bad_values_warn),
		T(test_plain_text_notice_fields),
		T(test_plain_text_notice_headers),
		T(test_plain_text_notice_without_fields),
#undef T
	};

	unpack_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
