/*
 * fuzz_common.h - a handler that touches every field of every event, so
 * that a dangling pointer or a missing NUL shows up under ASan.
 */
#ifndef TESTS_FUZZ_COMMON_H
#define TESTS_FUZZ_COMMON_H

#include <string.h>

#include "common/report.h"

static size_t fuzz_sink;

static void
fuzz_touch(const char *s)
{
	if (s != NULL)
		fuzz_sink += strlen(s);
}

static int
fuzz_record(void *ctx, const struct dm_report *r, const struct dm_record *rec,
    struct dm_error *err)
{
	size_t i;

	(void)ctx;
	(void)err;
	fuzz_touch(r->org_name);
	fuzz_touch(r->report_id);
	fuzz_touch(rec->source_ip);
	fuzz_touch(rec->header_from);
	fuzz_touch(rec->envelope_from);
	for (i = 0; i < rec->dkim_count; i++) {
		fuzz_touch(rec->dkim_results[i].domain);
		fuzz_touch(rec->dkim_results[i].selector);
	}
	for (i = 0; i < rec->spf_count; i++)
		fuzz_touch(rec->spf_results[i].domain);
	for (i = 0; i < rec->reason_count; i++)
		fuzz_touch(rec->reasons[i].comment);
	return 0;
}

static int
fuzz_report_end(void *ctx, const struct dm_report *r, struct dm_error *err)
{
	size_t i;

	(void)ctx;
	(void)err;
	fuzz_touch(r->email);
	fuzz_touch(r->policy.domain);
	fuzz_touch(r->error.msg);
	for (i = 0; i < r->error_count; i++)
		fuzz_touch(r->errors[i]);
	for (i = 0; r->warnings != NULL && i < r->warnings->count; i++)
		fuzz_touch(r->warnings->items[i].text);
	return 0;
}

static int
fuzz_failure(void *ctx, const struct dm_failure *f, struct dm_error *err)
{
	size_t i;

	(void)ctx;
	(void)err;
	fuzz_touch(f->feedback_type);
	fuzz_touch(f->source_ip);
	fuzz_touch(f->headers.from);
	fuzz_touch(f->headers.subject);
	fuzz_touch(f->body);
	for (i = 0; i < f->reported_domain.count; i++)
		fuzz_touch(f->reported_domain.items[i]);
	for (i = 0; i < f->authentication_results.count; i++)
		fuzz_touch(f->authentication_results.items[i]);
	return 0;
}

static int
fuzz_problem(void *ctx, const struct dm_problem *p, struct dm_error *err)
{
	(void)ctx;
	(void)err;
	fuzz_touch(p->where);
	fuzz_touch(p->error->msg);
	return 0;
}

static const struct dm_handler fuzz_handler = {
	NULL, NULL, fuzz_record, fuzz_report_end, fuzz_failure, fuzz_problem
};

#endif
