/*
 * test_alerts.c - unit tests for what collector/alerts.c builds without
 * a network or a database: the signature, the bodies, the sentences.
 *
 * Proves: the signature is HMAC-SHA256 (RFC 4231 test cases 1 and 2) as
 * "sha256=" and lower-case hex; the JSON body is {"alerts": [{domain,
 * kind, key, detail, raised_at}], "source": "dmarcd"} with the detail as
 * an object; a detail that is not a JSON object is refused
 * (DM_E_INTERNAL); the Slack body is {"text": "dmarcd: ..."} with &, <
 * and > escaped and a control character as a space (the key "...\n"
 * then ends in one before the space that follows); each kind has its
 * sentence, an unknown kind a plain one, a detail without the members
 * "?" in their place; a long key does not overflow the sentence.
 * Delivery itself is tested end to end in tests/integration/alerts.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "collector/alerts.h"

static struct store_alert
alert(const char *kind, const char *key, const char *detail)
{
	struct store_alert a;

	memset(&a, 0, sizeof(a));
	a.id = 7;
	a.domain = (char *)"example.com";
	a.kind = (char *)kind;
	a.key = (char *)key;
	a.detail = (char *)detail;
	snprintf(a.raised_at, sizeof(a.raised_at), "2026-01-30T08:00:00Z");
	return a;
}

static void
test_signature(void **state)
{
	char sig[ALERTS_SIGNATURE_SIZE];
	char key[21];

	(void)state;
	/* RFC 4231, test case 2. */
	alerts_signature("Jefe", "what do ya want for nothing?", 28, sig);
	assert_string_equal(sig, "sha256=5bdcc146bf60754e6a042426089575c7"
	    "5a003f089d2739839dec58b964ec3843");
	/* Test case 1: a key of twenty 0x0b bytes. */
	memset(key, 0x0b, 20);
	key[20] = '\0';
	alerts_signature(key, "Hi There", 8, sig);
	assert_string_equal(sig, "sha256=b0344c61d8db38535ca8afceaf0bf12b"
	    "881dc200c9833da726e9376c2e32cff7");
}

static void
test_json_body(void **state)
{
	struct store_alert a = alert("new_reporter", "new.example",
	    "{\"org_name\": \"new.example\", \"reports\": 2}");
	struct dm_error err;
	json_t *doc, *alerts, *one;
	char *body;

	(void)state;
	dm_error_clear(&err);
	body = alerts_body(&a, DM_ALERTS_JSON, &err);
	assert_non_null(body);
	doc = json_loads(body, 0, NULL);
	assert_non_null(doc);
	assert_int_equal(json_object_size(doc), 2);
	assert_string_equal(json_string_value(json_object_get(doc, "source")),
	    "dmarcd");
	alerts = json_object_get(doc, "alerts");
	assert_int_equal(json_array_size(alerts), 1);
	one = json_array_get(alerts, 0);
	assert_int_equal(json_object_size(one), 5);
	assert_string_equal(json_string_value(json_object_get(one, "domain")),
	    "example.com");
	assert_string_equal(json_string_value(json_object_get(one, "kind")),
	    "new_reporter");
	assert_string_equal(json_string_value(json_object_get(one, "key")),
	    "new.example");
	assert_string_equal(json_string_value(json_object_get(one,
	    "raised_at")), "2026-01-30T08:00:00Z");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(
	    one, "detail"), "reports")), 2);
	json_decref(doc);
	free(body);

	a.detail = (char *)"[1, 2]";
	assert_null(alerts_body(&a, DM_ALERTS_JSON, &err));
	assert_int_equal(err.code, DM_E_INTERNAL);
	a.detail = (char *)"{\"a\": ";
	assert_null(alerts_body(&a, DM_ALERTS_JSON, &err));
}

static void
test_slack_body(void **state)
{
	struct store_alert a = alert("new_reporter", "Mail & Co <m>\n",
	    "{\"first_report_begin\": \"2026-01-28T00:00:00Z\", "
	    "\"reports\": 1, \"messages\": 5}");
	struct dm_error err;
	json_t *doc;
	char *body;

	(void)state;
	body = alerts_body(&a, DM_ALERTS_SLACK, &err);
	assert_non_null(body);
	doc = json_loads(body, 0, NULL);
	assert_non_null(doc);
	assert_int_equal(json_object_size(doc), 1);
	assert_string_equal(json_string_value(json_object_get(doc, "text")),
	    "dmarcd: example.com has a new reporter: Mail &amp; Co &lt;m&gt;  "
	    "sent its first aggregate report on the domain (from 2026-01-28; "
	    "1 reports, 5 messages so far).");
	json_decref(doc);
	free(body);
}

static void
test_sentences(void **state)
{
	struct store_alert a;
	char out[1024], key[3000];

	(void)state;
	a = alert("unauthorised_sender", "198.51.100.0/24",
	    "{\"messages\": 150, \"window_days\": 7}");
	alerts_sentence(&a, out, sizeof(out));
	assert_string_equal(out, "example.com: an unauthorised sender, "
	    "198.51.100.0/24, sent 150 messages as the domain in the last 7 "
	    "days, failing DMARC.");
	a.detail = (char *)"{\"messages\": 150, \"window_days\": 7, "
	    "\"platform\": \"Bulk Mail\"}";
	alerts_sentence(&a, out, sizeof(out));
	assert_non_null(strstr(out, "198.51.100.0/24 (Bulk Mail), sent 150"));
	a = alert("aligned_share_drop", "2026-W05", "{\"recent_share\": 80.0, "
	    "\"previous_share\": 100.0, \"drop_points\": 20.0}");
	alerts_sentence(&a, out, sizeof(out));
	assert_string_equal(out, "example.com: the aligned share of "
	    "legitimate mail fell to 80.0% over the last 7 days, from 100.0% "
	    "over the 30 days before (20.0 points down).");
	a = alert("aligned_share_drop", "2026-W05", "{}");
	alerts_sentence(&a, out, sizeof(out));
	assert_non_null(strstr(out, "fell to ?% over"));
	a = alert("something_else", "k", "{}");
	alerts_sentence(&a, out, sizeof(out));
	assert_string_equal(out, "example.com: something_else k.");
	memset(key, 'x', sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0';
	a = alert("new_reporter", key, "not json");
	alerts_sentence(&a, out, sizeof(out));
	assert_int_equal(strlen(out), sizeof(out) - 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_signature),
		cmocka_unit_test(test_json_body),
		cmocka_unit_test(test_slack_body),
		cmocka_unit_test(test_sentences),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
