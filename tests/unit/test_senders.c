/*
 * test_senders.c - unit tests for store/senders.c and the sender map's
 * data files as built into dmarcd (sql/platforms.tsv, sql/sender_rules.tsv
 * through sql/senders.c).
 *
 * Proves: the built-in files pass every check; they hold the platforms
 * issue 6 names (Amazon SES, SendGrid, Mailchimp, Mandrill, Mailgun,
 * SparkPost, Postmark, Google Workspace, Microsoft 365, Salesforce,
 * Zendesk, HubSpot, Repro, Eploy, Altcraft, Catglobe, PORTERS), each with
 * a valid kind and non-empty fixes, urls https:// or empty; every rule is
 * of a known kind, its suffix a lower-case domain name of two labels or
 * more, its platform a row, no (kind, suffix) twice (checked here again,
 * apart from the parser); some well-known identifiers are mapped. And the
 * checker refuses, naming file and line: a suffix in upper case, with a
 * leading dot, of one label, with an empty label or a bad character; an
 * unknown rule kind or platform kind; a rule whose platform is missing;
 * a rule or a platform given twice (the platform case-folded); an empty
 * fix; too few or too many fields; a missing or wrong header; a CR; bad
 * UTF-8; a url that is not https. Comments and empty lines are skipped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "store/store.h"

static const char *const wanted[] = {
	"Amazon SES", "SendGrid", "Mailchimp", "Mandrill", "Mailgun",
	"SparkPost", "Postmark", "Google Workspace", "Microsoft 365",
	"Salesforce", "Zendesk", "HubSpot", "Repro", "Eploy", "Altcraft",
	"Catglobe", "PORTERS", NULL
};

static const struct store_sender_platform *
find_platform(const struct store_senders *m, const char *name)
{
	for (size_t i = 0; i < m->platform_count; i++)
		if (strcmp(m->platforms[i].name, name) == 0)
			return &m->platforms[i];
	return NULL;
}

/* The platform of the longest suffix of name, as platform_of() does. */
static const char *
lookup(const struct store_senders *m, const char *kind, const char *name)
{
	const char *best = NULL;
	size_t best_len = 0, nlen = strlen(name);

	for (size_t i = 0; i < m->rule_count; i++) {
		const struct store_sender_rule *r = &m->rules[i];
		size_t len = strlen(r->suffix);

		if (strcmp(r->kind, kind) != 0 || len > nlen)
			continue;
		if (strcmp(name + nlen - len, r->suffix) != 0)
			continue;
		if (len < nlen && name[nlen - len - 1] != '.')
			continue;
		if (len > best_len) {
			best = r->platform;
			best_len = len;
		}
	}
	return best;
}

static void
test_builtin_files(void **state)
{
	struct store_senders *m = NULL;
	struct dm_error err = { 0 };
	const char *const *w;
	size_t i, j;

	(void)state;
	if (store_senders_builtin(&m, &err) != 0)
		fail_msg("the built-in sender map is refused: %s", err.msg);
	assert_non_null(m);
	assert_true(m->platform_count >= 17);
	assert_true(m->rule_count >= 30);
	for (w = wanted; *w != NULL; w++) {
		const struct store_sender_platform *p = find_platform(m, *w);

		if (p == NULL)
			fail_msg("platform \"%s\" missing", *w);
		assert_true(strlen(p->spf_fix) > 20);
		assert_true(strlen(p->dkim_fix) > 20);
		assert_true(p->url[0] == '\0' ||
		    strncmp(p->url, "https://", 8) == 0);
	}
	for (i = 0; i < m->rule_count; i++) {
		const struct store_sender_rule *r = &m->rules[i];

		assert_true(strcmp(r->kind, "ptr") == 0 ||
		    strcmp(r->kind, "dkim") == 0 ||
		    strcmp(r->kind, "spf") == 0);
		if (!store_senders_suffix_ok(r->suffix))
			fail_msg("bad suffix \"%s\"", r->suffix);
		if (find_platform(m, r->platform) == NULL)
			fail_msg("rule %s %s: no platform \"%s\"", r->kind,
			    r->suffix, r->platform);
		for (j = 0; j < i; j++)
			if (strcmp(m->rules[j].kind, r->kind) == 0 &&
			    strcmp(m->rules[j].suffix, r->suffix) == 0)
				fail_msg("rule %s %s twice", r->kind,
				    r->suffix);
	}
	assert_string_equal(lookup(m, "ptr", "o1.ptr1234.sendgrid.net"),
	    "SendGrid");
	assert_string_equal(lookup(m, "ptr", "a8-31.smtp-out.amazonses.com"),
	    "Amazon SES");
	assert_string_equal(lookup(m, "dkim", "amazonses.com"), "Amazon SES");
	assert_string_equal(lookup(m, "spf", "eu-west-1.amazonses.com"),
	    "Amazon SES");
	assert_string_equal(lookup(m, "dkim",
	    "example-com.20230601.gappssmtp.com"), "Google Workspace");
	assert_string_equal(lookup(m, "dkim", "contoso.onmicrosoft.com"),
	    "Microsoft 365");
	assert_string_equal(lookup(m, "spf", "porterscloud.com"), "PORTERS");
	assert_string_equal(lookup(m, "spf", "pm.mtasv.net"), "Postmark");
	assert_null(lookup(m, "spf", "example.com"));
	assert_null(lookup(m, "ptr", "notsendgrid.net"));
	store_senders_free(&m);
	assert_null(m);
}

#define P_HEAD	"name\tkind\tspf_fix\tdkim_fix\turl\n"
#define R_HEAD	"kind\tsuffix\tplatform\n"
#define P_OK	P_HEAD "Acme Mail\tesp\tSet a bounce domain.\tSign with " \
		    "d=<domain>.\thttps://acme.example/doc\n"

struct bad_case {
	const char *what;
	const char *platforms, *rules;
	const char *file;	/* expected in the message */
	const char *line;	/* "line N", or NULL */
	const char *words;	/* expected in the message */
};

static const struct bad_case bad_cases[] = {
	{ "upper-case suffix", P_OK, R_HEAD "ptr\tAcme.example\tAcme Mail\n",
	    "r.tsv", "line 2", "lower-case domain name" },
	{ "leading dot", P_OK, R_HEAD "spf\t.acme.example\tAcme Mail\n",
	    "r.tsv", "line 2", "leading dot" },
	{ "one label", P_OK, R_HEAD "dkim\texample\tAcme Mail\n",
	    "r.tsv", "line 2", "two labels" },
	{ "empty label", P_OK, R_HEAD "dkim\tacme..example\tAcme Mail\n",
	    "r.tsv", "line 2", "domain name" },
	{ "underscore", P_OK, R_HEAD "dkim\tacme_x.example\tAcme Mail\n",
	    "r.tsv", "line 2", "domain name" },
	{ "label ends with hyphen", P_OK,
	    R_HEAD "dkim\tacme-.example\tAcme Mail\n",
	    "r.tsv", "line 2", "domain name" },
	{ "unknown rule kind", P_OK, R_HEAD "helo\tacme.example\tAcme Mail\n",
	    "r.tsv", "line 2", "none of ptr, dkim, spf" },
	{ "unknown platform", P_OK,
	    "# c\n" R_HEAD "\nptr\tacme.example\tAcme\n",
	    "r.tsv", "line 4", "not in the platforms file" },
	{ "rule twice", P_OK, R_HEAD "ptr\tacme.example\tAcme Mail\n"
	    "spf\tacme.example\tAcme Mail\nptr\tacme.example\tAcme Mail\n",
	    "r.tsv", "line 4", "twice" },
	{ "platform twice (case folded)", P_OK "ACME mail\tesp\ta\tb\t\n",
	    R_HEAD, "p.tsv", "line 3", "named twice" },
	{ "bad platform kind", P_HEAD "X\tbank\ta\tb\t\n", R_HEAD,
	    "p.tsv", "line 2", "none of esp" },
	{ "empty spf_fix", P_HEAD "X\tesp\t\tb\t\n", R_HEAD,
	    "p.tsv", "line 2", "spf_fix is empty" },
	{ "empty dkim_fix", P_HEAD "X\tesp\ta\t\t\n", R_HEAD,
	    "p.tsv", "line 2", "dkim_fix is empty" },
	{ "empty name", P_HEAD "\tesp\ta\tb\t\n", R_HEAD,
	    "p.tsv", "line 2", "name is empty" },
	{ "four fields", P_HEAD "X\tesp\ta\tb\n", R_HEAD,
	    "p.tsv", "line 2", "expected 5" },
	{ "six fields", P_HEAD "X\tesp\ta\tb\t\tz\n", R_HEAD,
	    "p.tsv", "line 2", "more than 5" },
	{ "two rule fields", P_OK, R_HEAD "ptr\tacme.example\n",
	    "r.tsv", "line 2", "expected 3" },
	{ "no header", "# only a comment\n", R_HEAD,
	    "p.tsv", NULL, "no header line" },
	{ "wrong header", P_OK, "kind\tsuffix\towner\n",
	    "r.tsv", "line 1", "not the header line" },
	{ "CRLF", P_OK, R_HEAD "ptr\tacme.example\tAcme Mail\r\n",
	    "r.tsv", "line 2", "carriage return" },
	{ "bad UTF-8", P_HEAD "# ok\nX\tesp\ta \xc3\x28\tb\t\n", R_HEAD,
	    "p.tsv", "line 3", "invalid UTF-8" },
	{ "overlong UTF-8", P_HEAD "X\tesp\ta \xc0\xaf\tb\t\n", R_HEAD,
	    "p.tsv", "line 2", "invalid UTF-8" },
	{ "http url", P_HEAD "X\tesp\ta\tb\thttp://x.example\n", R_HEAD,
	    "p.tsv", "line 2", "https://" },
	{ "control character", P_HEAD "X\tesp\ta\x01\tb\t\n", R_HEAD,
	    "p.tsv", "line 2", "control character" },
	{ "leading space", P_HEAD " X\tesp\ta\tb\t\n", R_HEAD,
	    "p.tsv", "line 2", "space" },
};

static void
test_bad_files(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]);
	    i++) {
		const struct bad_case *c = &bad_cases[i];
		struct store_senders *m = NULL;
		struct dm_error err = { 0 };

		if (store_senders_parse(&m, c->platforms, "p.tsv", c->rules,
		    "r.tsv", &err) == 0)
			fail_msg("%s: accepted", c->what);
		assert_null(m);
		if (err.code != DM_E_DATA)
			fail_msg("%s: code %d, not DM_E_DATA (%s)", c->what,
			    (int)err.code, err.msg);
		if (strncmp(err.msg, c->file, strlen(c->file)) != 0 ||
		    (c->line != NULL && strstr(err.msg, c->line) == NULL) ||
		    strstr(err.msg, c->words) == NULL)
			fail_msg("%s: message \"%s\" does not name %s %s: %s",
			    c->what, err.msg, c->file,
			    c->line != NULL ? c->line : "", c->words);
	}
}

static void
test_good_file(void **state)
{
	struct store_senders *m = NULL;
	struct dm_error err = { 0 };

	(void)state;
	if (store_senders_parse(&m,
	    "# comment\n\n" P_OK "\n# another\nBeta\tcrm\tx y\tz w\t",
	    "p.tsv",
	    R_HEAD "ptr\tacme.example\tAcme Mail\n"
	    "# comment\n\nspf\tbounce.acme-mail.example\tBeta\n"
	    "dkim\tacme.example\tAcme Mail", "r.tsv", &err) != 0)
		fail_msg("refused: %s", err.msg);
	assert_int_equal(m->platform_count, 2);
	assert_int_equal(m->rule_count, 3);
	assert_string_equal(m->platforms[0].url, "https://acme.example/doc");
	assert_string_equal(m->platforms[1].name, "Beta");
	assert_string_equal(m->platforms[1].url, "");
	assert_string_equal(m->rules[1].suffix, "bounce.acme-mail.example");
	assert_string_equal(m->rules[2].platform, "Acme Mail");
	store_senders_free(&m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_builtin_files),
		cmocka_unit_test(test_bad_files),
		cmocka_unit_test(test_good_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
