/*
 * test_align.c - unit tests for common/align.c, dmarcd's own DMARC
 * identifier alignment.
 *
 * Proves: dm_domain_norm lower-cases, takes white space and a trailing
 * dot off and refuses what is no name (junk, inner space, empty labels,
 * empty, too long for the buffer); dm_org_domain gives the Public Suffix
 * List's organizational domain (example.co.uk under a.b.example.co.uk, a
 * wildcard rule, a public suffix or a single label is its own, U-labels
 * in UTF-8); dm_aligned is relaxed (same organizational domain, either
 * way round) or strict (equal), and two names under one public suffix
 * (a.co.uk, b.co.uk) never align; dm_align_record, over hand-built
 * records, sets each auth bit (1 dkim_aligned, 2 spf_aligned, 4
 * dkim_pass, 8 spf_pass, 16 spf_own, 32 dkim_own) exactly when it should,
 * picks the deciding d= (an aligned pass, else a pass, else the first
 * signature), judges SPF on MAIL FROM first and HELO only without one,
 * honours adkim=s and aspf=s, aligns nothing without a single From domain
 * while still counting passes, and names the override reason that
 * matters most (forwarded > mailing_list > trusted_forwarder >
 * local_policy > sampled_out > policy_test_mode > other).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/align.h"
#include "common/report.h"

#define AL_DKIM		DM_AUTH_DKIM_ALIGNED
#define AL_SPF		DM_AUTH_SPF_ALIGNED
#define DKIM_PASS	DM_AUTH_DKIM_PASS
#define SPF_PASS	DM_AUTH_SPF_PASS
#define SPF_OWN		DM_AUTH_SPF_OWN
#define DKIM_OWN	DM_AUTH_DKIM_OWN

/* dm_domain_norm */

static void
assert_norm(const char *in, const char *want)
{
	char out[DM_DOMAIN_MAX];

	memset(out, 'x', sizeof(out));
	if (want == NULL) {
		if (dm_domain_norm(in, out, sizeof(out)) != -1)
			fail_msg("dm_domain_norm(\"%s\") accepted it as \"%s\"",
			    in, out);
		assert_string_equal(out, "");
		return;
	}
	if (dm_domain_norm(in, out, sizeof(out)) != 0)
		fail_msg("dm_domain_norm(\"%s\") refused it", in);
	assert_string_equal(out, want);
}

static void
test_norm_case_dot_space(void **state)
{
	(void)state;
	assert_norm("example.com", "example.com");
	assert_norm("Example.COM", "example.com");
	assert_norm("example.com.", "example.com");
	assert_norm("  Mail.Example.com.\t\n", "mail.example.com");
	assert_norm("_dmarc.example.com", "_dmarc.example.com");
	assert_norm("xn--bcher-kva.de", "xn--bcher-kva.de");
	/* UTF-8 U-labels pass through (bytes >= 0x80). */
	assert_norm("b\xc3\xbc" "cher.de", "b\xc3\xbc" "cher.de");
	assert_norm("localhost", "localhost");
}

static void
test_norm_refuses_junk(void **state)
{
	(void)state;
	assert_norm(NULL, NULL);
	assert_norm("", NULL);
	assert_norm("   ", NULL);
	assert_norm(".", NULL);
	assert_norm("..", NULL);
	assert_norm(".example.com", NULL);
	assert_norm("a..example.com", NULL);
	assert_norm("exa mple.com", NULL);
	assert_norm("example.com x", NULL);
	assert_norm("a.example, b.example", NULL);
	assert_norm("user@example.com", NULL);
	assert_norm("<example.com>", NULL);
	assert_norm("example.com/", NULL);
	assert_norm("exa\"mple.com", NULL);
	assert_norm("example.com;", NULL);
}

static void
test_norm_length(void **state)
{
	char name[DM_DOMAIN_MAX + 8], out[DM_DOMAIN_MAX], small[4];
	size_t i;

	(void)state;
	/* The longest that fits: DM_DOMAIN_MAX - 1 characters. */
	for (i = 0; i < DM_DOMAIN_MAX - 1; i++)
		name[i] = (i % 10 == 9) ? '.' : 'a';
	name[DM_DOMAIN_MAX - 1] = '\0';
	assert_int_equal(dm_domain_norm(name, out, sizeof(out)), 0);
	assert_int_equal(strlen(out), DM_DOMAIN_MAX - 1);
	/* One more: refused, out left empty (not cut). */
	name[DM_DOMAIN_MAX - 1] = 'a';
	name[DM_DOMAIN_MAX] = '\0';
	assert_int_equal(dm_domain_norm(name, out, sizeof(out)), -1);
	assert_string_equal(out, "");
	/* Any buffer size is honoured. */
	assert_int_equal(dm_domain_norm("a.b", small, sizeof(small)), 0);
	assert_string_equal(small, "a.b");
	assert_int_equal(dm_domain_norm("ab.cd", small, sizeof(small)), -1);
	assert_string_equal(small, "");
	assert_int_equal(dm_domain_norm("a", small, 0), -1);
}

/* dm_org_domain */

static void
assert_org(const char *in, const char *want)
{
	char out[DM_DOMAIN_MAX];

	memset(out, 'x', sizeof(out));
	if (want == NULL) {
		if (dm_org_domain(in, out, sizeof(out)) != -1)
			fail_msg("dm_org_domain(\"%s\") gave \"%s\"", in, out);
		assert_string_equal(out, "");
		return;
	}
	if (dm_org_domain(in, out, sizeof(out)) != 0)
		fail_msg("dm_org_domain(\"%s\") refused it", in);
	if (strcmp(out, want) != 0)
		fail_msg("dm_org_domain(\"%s\") = \"%s\", not \"%s\"", in, out,
		    want);
}

static void
test_org_domain(void **state)
{
	char small[8];

	(void)state;
	assert_org("example.com", "example.com");
	assert_org("mail.example.com", "example.com");
	assert_org("A.B.Example.COM.", "example.com");
	assert_org("a.b.example.co.uk", "example.co.uk");
	assert_org("example.co.uk", "example.co.uk");
	assert_org("o1.em.sendgrid.net", "sendgrid.net");
	assert_org("a.bounces.amazonses.com", "amazonses.com");
	/* A wildcard rule (*.ck): one label more. */
	assert_org("a.b.example.ck", "b.example.ck");
	/* A public suffix, a TLD, an unlisted single label: their own. */
	assert_org("co.uk", "co.uk");
	assert_org("com", "com");
	assert_org("localhost", "localhost");
	/* IDN: U-labels in UTF-8 and A-labels. */
	assert_org("www.b\xc3\xbc" "cher.de", "b\xc3\xbc" "cher.de");
	assert_org("www.xn--bcher-kva.de", "xn--bcher-kva.de");
	/* Not domains. */
	assert_org("", NULL);
	assert_org("a..b", NULL);
	assert_org("a.example, b.example", NULL);
	assert_org(NULL, NULL);
	/* Does not fit: -1 and an empty string, never a cut name. */
	assert_int_equal(dm_org_domain("www.example.com", small,
	    sizeof(small)), -1);
	assert_string_equal(small, "");
}

/* dm_aligned */

static void
test_aligned(void **state)
{
	(void)state;
	/* Relaxed: the same organizational domain, either way round. */
	assert_true(dm_aligned("example.com", "example.com", 0));
	assert_true(dm_aligned("mail.example.com", "example.com", 0));
	assert_true(dm_aligned("example.com", "mail.example.com", 0));
	assert_true(dm_aligned("a.example.com", "b.c.example.com", 0));
	assert_true(dm_aligned("a.example.co.uk", "example.co.uk", 0));
	/* Strict: equal only. */
	assert_true(dm_aligned("example.com", "example.com", 1));
	assert_false(dm_aligned("mail.example.com", "example.com", 1));
	assert_false(dm_aligned("example.com", "mail.example.com", 1));
	assert_false(dm_aligned("a.example.com", "b.example.com", 1));
	/* Different organizations. */
	assert_false(dm_aligned("example.com", "example.net", 0));
	assert_false(dm_aligned("sendgrid.net", "example.com", 0));
	assert_false(dm_aligned("example.com.evil.example", "example.com",
	    0));
	assert_false(dm_aligned("notexample.com", "example.com", 0));
	/* Siblings under a public suffix are different organizations. */
	assert_false(dm_aligned("a.co.uk", "b.co.uk", 0));
	assert_false(dm_aligned("x.a.co.uk", "b.co.uk", 0));
	assert_false(dm_aligned("a.co.uk", "co.uk", 0));
	assert_false(dm_aligned("a.b.example.ck", "c.example.ck", 0));
	assert_true(dm_aligned("a.b.example.ck", "b.example.ck", 0));
	/* Nothing aligns with nothing. */
	assert_false(dm_aligned("", "", 0));
	assert_false(dm_aligned("example.com", "", 0));
	assert_false(dm_aligned(NULL, "example.com", 0));
	assert_false(dm_aligned("example.com", NULL, 1));
	assert_false(dm_aligned("a..b", "a..b.", 0));
}

/* dm_align_record */

static void
rec_init(struct dm_record *rec, const char *header_from)
{
	memset(rec, 0, sizeof(*rec));
	rec->index = 1;
	rec->source_ip = "192.0.2.1";
	rec->count = 1;
	rec->header_from = header_from;
}

static void
add_dkim(struct dm_record *rec, const char *domain, int result)
{
	struct dm_dkim_result *d = &rec->dkim_results[rec->dkim_count++];

	d->domain = domain;
	d->selector = "s1";
	d->result = result;
}

static void
add_spf(struct dm_record *rec, const char *domain, int scope, int result)
{
	struct dm_spf_result *f = &rec->spf_results[rec->spf_count++];

	f->domain = domain;
	f->scope = scope;
	f->result = result;
}

static void
add_reason(struct dm_record *rec, int type)
{
	rec->reasons[rec->reason_count++].type = type;
}

static struct dm_policy_published
policy(int adkim, int aspf)
{
	struct dm_policy_published pp;

	memset(&pp, 0, sizeof(pp));
	pp.domain = "example.com";
	pp.adkim = adkim;
	pp.aspf = aspf;
	pp.p = DM_POLICY_NONE;
	pp.pct = -1;
	return pp;
}

static const struct dm_policy_published relaxed = { .domain = "example.com",
	.adkim = DM_ALIGN_RELAXED, .aspf = DM_ALIGN_RELAXED,
	.p = DM_POLICY_NONE, .pct = -1 };

/* Run dm_align_record and compare all four outputs. */
static void
check(const struct dm_policy_published *pp, const struct dm_record *rec,
    unsigned bits, const char *dkim_domain, const char *spf_domain,
    const char *override)
{
	struct dm_alignment auth;

	memset(&auth, 0x5a, sizeof(auth));	/* nothing left over counts */
	auth.override = "garbage";
	dm_align_record(pp, rec, &auth);
	if (auth.bits != bits)
		fail_msg("header_from %s: bits %u, not %u", rec->header_from ?
		    rec->header_from : "(none)", auth.bits, bits);
	assert_string_equal(auth.dkim_domain, dkim_domain);
	assert_string_equal(auth.spf_domain, spf_domain);
	assert_non_null(auth.override);
	assert_string_equal(auth.override, override);
}

static void
test_record_nothing(void **state)
{
	struct dm_record rec;

	(void)state;
	rec_init(&rec, "example.com");
	check(&relaxed, &rec, 0, "", "", "");
	/* Results that are no pass and for another domain: still 0. */
	add_dkim(&rec, "evil.example", DM_RESULT_FAIL);
	add_spf(&rec, "evil.example", DM_SCOPE_MFROM, DM_RESULT_SOFTFAIL);
	check(&relaxed, &rec, 0, "evil.example", "evil.example", "");
}

static void
test_record_each_bit(void **state)
{
	struct dm_record rec;

	(void)state;
	/* 1|4|32: an aligned DKIM pass (subdomain d=, relaxed). */
	rec_init(&rec, "example.com");
	add_dkim(&rec, "Mail.Example.com", DM_RESULT_PASS);
	check(&relaxed, &rec, AL_DKIM | DKIM_PASS | DKIM_OWN,
	    "mail.example.com", "", "");
	/* 4 alone: a pass for someone else's d=. */
	rec_init(&rec, "example.com");
	add_dkim(&rec, "sendgrid.net", DM_RESULT_PASS);
	check(&relaxed, &rec, DKIM_PASS, "sendgrid.net", "", "");
	/* 32 alone: the domain's own signature, failed. */
	rec_init(&rec, "example.com");
	add_dkim(&rec, "example.com", DM_RESULT_FAIL);
	check(&relaxed, &rec, DKIM_OWN, "example.com", "", "");
	/* 2|8|16: an aligned SPF pass (a subdomain envelope). */
	rec_init(&rec, "news.example.com");
	add_spf(&rec, "bounce.example.com", DM_SCOPE_MFROM, DM_RESULT_PASS);
	check(&relaxed, &rec, AL_SPF | SPF_PASS | SPF_OWN, "",
	    "bounce.example.com", "");
	/* 8 alone: SPF passes for the platform's envelope. */
	rec_init(&rec, "example.com");
	add_spf(&rec, "amazonses.com", DM_SCOPE_MFROM, DM_RESULT_PASS);
	check(&relaxed, &rec, SPF_PASS, "", "amazonses.com", "");
	/* 16 alone: the own envelope, SPF failing (forwarded). */
	rec_init(&rec, "example.com");
	add_spf(&rec, "example.com", DM_SCOPE_MFROM, DM_RESULT_FAIL);
	check(&relaxed, &rec, SPF_OWN, "", "example.com", "");
	/* Each SPF result other than pass is no pass. */
	{
		static const int notpass[] = { DM_RESULT_NONE,
			DM_RESULT_FAIL, DM_RESULT_SOFTFAIL, DM_RESULT_NEUTRAL,
			DM_RESULT_POLICY, DM_RESULT_TEMPERROR,
			DM_RESULT_PERMERROR, DM_RESULT_UNKNOWN,
			DM_RESULT_UNSET };
		size_t i;

		for (i = 0; i < sizeof(notpass) / sizeof(notpass[0]); i++) {
			rec_init(&rec, "example.com");
			add_spf(&rec, "example.com", DM_SCOPE_MFROM,
			    notpass[i]);
			add_dkim(&rec, "example.com", notpass[i]);
			check(&relaxed, &rec, SPF_OWN | DKIM_OWN,
			    "example.com", "example.com", "");
		}
	}
	/* Everything at once. */
	rec_init(&rec, "example.com");
	add_dkim(&rec, "example.com", DM_RESULT_PASS);
	add_spf(&rec, "example.com", DM_SCOPE_MFROM, DM_RESULT_PASS);
	check(&relaxed, &rec, AL_DKIM | AL_SPF | DKIM_PASS | SPF_PASS |
	    SPF_OWN | DKIM_OWN, "example.com", "example.com", "");
	/* The guessed bit is never set here. */
	assert_int_equal(DM_AUTH_GUESSED, 64);
}

static void
test_record_dkim_domain_choice(void **state)
{
	struct dm_record rec;

	(void)state;
	/* An aligned pass beats a pass and a failed own signature, in
	 * whatever place it comes. */
	rec_init(&rec, "example.com");
	add_dkim(&rec, "example.com", DM_RESULT_FAIL);
	add_dkim(&rec, "sendgrid.net", DM_RESULT_PASS);
	add_dkim(&rec, "s.example.com", DM_RESULT_PASS);
	add_dkim(&rec, "example.com", DM_RESULT_PASS);
	check(&relaxed, &rec, AL_DKIM | DKIM_PASS | DKIM_OWN,
	    "s.example.com", "", "");
	/* A pass beats a failed own signature that comes first; the own
	 * signature still sets dkim_own. */
	rec_init(&rec, "example.com");
	add_dkim(&rec, "example.com", DM_RESULT_FAIL);
	add_dkim(&rec, "mailchimp.example", DM_RESULT_PASS);
	add_dkim(&rec, "sendgrid.net", DM_RESULT_PASS);
	check(&relaxed, &rec, DKIM_PASS | DKIM_OWN, "mailchimp.example", "",
	    "");
	/* Nothing passes: the first signature. */
	rec_init(&rec, "example.com");
	add_dkim(&rec, "other.example", DM_RESULT_FAIL);
	add_dkim(&rec, "example.com", DM_RESULT_FAIL);
	check(&relaxed, &rec, DKIM_OWN, "other.example", "", "");
	/* A signature whose d= is no name is passed over. */
	rec_init(&rec, "example.com");
	add_dkim(&rec, NULL, DM_RESULT_PASS);
	add_dkim(&rec, "bad domain", DM_RESULT_PASS);
	add_dkim(&rec, "other.example", DM_RESULT_FAIL);
	check(&relaxed, &rec, 0, "other.example", "", "");
}

static void
test_record_spf_scope(void **state)
{
	struct dm_record rec;

	(void)state;
	/* MAIL FROM decides even when HELO passes aligned and comes first. */
	rec_init(&rec, "example.com");
	add_spf(&rec, "mx.example.com", DM_SCOPE_HELO, DM_RESULT_PASS);
	add_spf(&rec, "bounces.platform.example", DM_SCOPE_MFROM,
	    DM_RESULT_FAIL);
	check(&relaxed, &rec, 0, "", "bounces.platform.example", "");
	/* A result without scope is MAIL FROM (most reports say none). */
	rec_init(&rec, "example.com");
	add_spf(&rec, "mx.example.com", DM_SCOPE_HELO, DM_RESULT_PASS);
	add_spf(&rec, "platform.example", DM_SCOPE_UNSET, DM_RESULT_PASS);
	check(&relaxed, &rec, SPF_PASS, "", "platform.example", "");
	/* The first MAIL FROM result decides, not a later one. */
	rec_init(&rec, "example.com");
	add_spf(&rec, "platform.example", DM_SCOPE_MFROM, DM_RESULT_PASS);
	add_spf(&rec, "example.com", DM_SCOPE_MFROM, DM_RESULT_PASS);
	check(&relaxed, &rec, SPF_PASS, "", "platform.example", "");
	/* HELO only: it is what counts. */
	rec_init(&rec, "example.com");
	add_spf(&rec, "mx.example.com", DM_SCOPE_HELO, DM_RESULT_PASS);
	check(&relaxed, &rec, AL_SPF | SPF_PASS | SPF_OWN, "",
	    "mx.example.com", "");
	/* Several HELO results: the first. */
	rec_init(&rec, "example.com");
	add_spf(&rec, "mx.other.example", DM_SCOPE_HELO, DM_RESULT_PASS);
	add_spf(&rec, "mx.example.com", DM_SCOPE_HELO, DM_RESULT_PASS);
	check(&relaxed, &rec, SPF_PASS, "", "mx.other.example", "");
	/* A null reverse path (MAIL FROM result with an empty domain): SPF
	 * is HELO's (RFC 7208 section 2.4, RFC 7489 section 3.1.2). */
	rec_init(&rec, "example.com");
	add_spf(&rec, "", DM_SCOPE_MFROM, DM_RESULT_NONE);
	add_spf(&rec, "mx.example.com", DM_SCOPE_HELO, DM_RESULT_PASS);
	check(&relaxed, &rec, AL_SPF | SPF_PASS | SPF_OWN, "",
	    "mx.example.com", "");
	/* No SPF domain at all: nothing. */
	rec_init(&rec, "example.com");
	add_spf(&rec, NULL, DM_SCOPE_MFROM, DM_RESULT_PASS);
	check(&relaxed, &rec, 0, "", "", "");
}

static void
test_record_strict(void **state)
{
	struct dm_policy_published pp;
	struct dm_record rec;

	(void)state;
	rec_init(&rec, "example.com");
	add_dkim(&rec, "mail.example.com", DM_RESULT_PASS);
	add_spf(&rec, "bounce.example.com", DM_SCOPE_MFROM, DM_RESULT_PASS);
	/* Relaxed (and absent, and unrecognised): both align. */
	check(&relaxed, &rec, AL_DKIM | AL_SPF | DKIM_PASS | SPF_PASS |
	    SPF_OWN | DKIM_OWN, "mail.example.com", "bounce.example.com", "");
	check(NULL, &rec, AL_DKIM | AL_SPF | DKIM_PASS | SPF_PASS | SPF_OWN |
	    DKIM_OWN, "mail.example.com", "bounce.example.com", "");
	pp = policy(DM_ALIGN_UNSET, DM_ALIGN_UNKNOWN);
	check(&pp, &rec, AL_DKIM | AL_SPF | DKIM_PASS | SPF_PASS | SPF_OWN |
	    DKIM_OWN, "mail.example.com", "bounce.example.com", "");
	/* adkim=s: the subdomain d= no longer aligns; SPF still does. */
	pp = policy(DM_ALIGN_STRICT, DM_ALIGN_RELAXED);
	check(&pp, &rec, AL_SPF | DKIM_PASS | SPF_PASS | SPF_OWN,
	    "mail.example.com", "bounce.example.com", "");
	/* aspf=s: the other way round. */
	pp = policy(DM_ALIGN_RELAXED, DM_ALIGN_STRICT);
	check(&pp, &rec, AL_DKIM | DKIM_PASS | SPF_PASS | DKIM_OWN,
	    "mail.example.com", "bounce.example.com", "");
	/* Both strict: passes, none aligned. */
	pp = policy(DM_ALIGN_STRICT, DM_ALIGN_STRICT);
	check(&pp, &rec, DKIM_PASS | SPF_PASS, "mail.example.com",
	    "bounce.example.com", "");
	/* Strict and exactly equal (case and trailing dot aside): aligned. */
	rec_init(&rec, "Example.COM.");
	add_dkim(&rec, "example.com", DM_RESULT_PASS);
	add_spf(&rec, "EXAMPLE.com", DM_SCOPE_MFROM, DM_RESULT_PASS);
	check(&pp, &rec, AL_DKIM | AL_SPF | DKIM_PASS | SPF_PASS | SPF_OWN |
	    DKIM_OWN, "example.com", "example.com", "");
	/* Strict: an aligned pass for the exact name beats a subdomain's. */
	pp = policy(DM_ALIGN_STRICT, DM_ALIGN_STRICT);
	rec_init(&rec, "example.com");
	add_dkim(&rec, "mail.example.com", DM_RESULT_PASS);
	add_dkim(&rec, "example.com", DM_RESULT_PASS);
	check(&pp, &rec, AL_DKIM | DKIM_PASS | DKIM_OWN, "example.com", "",
	    "");
}

static void
test_record_header_from(void **state)
{
	static const char *const bad[] = { NULL, "", "a.example, b.example",
		"a.example b.example", "<example.com>" };
	struct dm_record rec;
	size_t i;

	(void)state;
	/* No single From domain: nothing aligns, passes still count. */
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		rec_init(&rec, bad[i]);
		add_dkim(&rec, "a.example", DM_RESULT_PASS);
		add_spf(&rec, "a.example", DM_SCOPE_MFROM, DM_RESULT_PASS);
		check(&relaxed, &rec, DKIM_PASS | SPF_PASS, "a.example",
		    "a.example", "");
	}
	/* The From domain of a subdomain aligns relaxed with the parent. */
	rec_init(&rec, "News.Example.com");
	add_dkim(&rec, "example.com", DM_RESULT_PASS);
	check(&relaxed, &rec, AL_DKIM | DKIM_PASS | DKIM_OWN, "example.com",
	    "", "");
	/* A From under a public suffix sibling does not. */
	rec_init(&rec, "a.co.uk");
	add_dkim(&rec, "b.co.uk", DM_RESULT_PASS);
	add_spf(&rec, "co.uk", DM_SCOPE_MFROM, DM_RESULT_PASS);
	check(&relaxed, &rec, DKIM_PASS | SPF_PASS, "b.co.uk", "co.uk", "");
}

static void
test_record_override(void **state)
{
	static const struct {
		int reasons[4];
		const char *want;
	} cases[] = {
		{ { 0 }, "" },
		{ { DM_REASON_OTHER }, "other" },
		{ { DM_REASON_UNKNOWN }, "" },
		{ { DM_REASON_LOCAL_POLICY }, "local_policy" },
		{ { DM_REASON_LOCAL_POLICY, DM_REASON_FORWARDED }, "forwarded" },
		{ { DM_REASON_SAMPLED_OUT, DM_REASON_MAILING_LIST },
		    "mailing_list" },
		{ { DM_REASON_TRUSTED_FORWARDER, DM_REASON_MAILING_LIST },
		    "mailing_list" },
		{ { DM_REASON_MAILING_LIST, DM_REASON_FORWARDED,
		    DM_REASON_TRUSTED_FORWARDER }, "forwarded" },
		{ { DM_REASON_LOCAL_POLICY, DM_REASON_TRUSTED_FORWARDER },
		    "trusted_forwarder" },
		{ { DM_REASON_OTHER, DM_REASON_SAMPLED_OUT,
		    DM_REASON_LOCAL_POLICY }, "local_policy" },
		{ { DM_REASON_POLICY_TEST_MODE, DM_REASON_SAMPLED_OUT },
		    "sampled_out" },
		{ { DM_REASON_OTHER, DM_REASON_POLICY_TEST_MODE },
		    "policy_test_mode" },
		{ { DM_REASON_UNKNOWN, DM_REASON_OTHER }, "other" },
	};
	struct dm_record rec;
	size_t i, j;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		rec_init(&rec, "example.com");
		add_dkim(&rec, "example.com", DM_RESULT_FAIL);
		for (j = 0; j < 4 && cases[i].reasons[j] != 0; j++)
			add_reason(&rec, cases[i].reasons[j]);
		/* The override changes no bit. */
		check(&relaxed, &rec, DKIM_OWN, "example.com", "",
		    cases[i].want);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_norm_case_dot_space),
		cmocka_unit_test(test_norm_refuses_junk),
		cmocka_unit_test(test_norm_length),
		cmocka_unit_test(test_org_domain),
		cmocka_unit_test(test_aligned),
		cmocka_unit_test(test_record_nothing),
		cmocka_unit_test(test_record_each_bit),
		cmocka_unit_test(test_record_dkim_domain_choice),
		cmocka_unit_test(test_record_spf_scope),
		cmocka_unit_test(test_record_strict),
		cmocka_unit_test(test_record_header_from),
		cmocka_unit_test(test_record_override),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
