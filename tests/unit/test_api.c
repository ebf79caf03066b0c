/*
 * test_api.c - api/params.c: what the HTTP API accepts as since/until,
 * limit, days, a domain segment and a cursor, and what it refuses (each
 * refusal is a 400, never a value passed on to SQL); api/token.c: the
 * token's form and hash, and the password of Basic credentials;
 * api/status.c: HTML escaping, the choice of domains, and a page rendered
 * from answers holding hostile names and broken JSON.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "api/api.h"
#include "common/buf.h"

#define NOW	INT64_C(1767225600)	/* 2026-01-01T00:00:00Z */

static void
test_times(void **state)
{
	static const struct {
		const char *text;
		int64_t want;
	} good[] = {
		{ "2026-01-01", NOW },
		{ "2026-01-01T00:00:00Z", NOW },
		{ "2026-01-01t00:00:00z", NOW },
		{ "2026-01-01 00:00:00Z", NOW },
		{ "2026-01-01T02:00:00+02:00", NOW },
		{ "2025-12-31T19:00:00-05:00", NOW },
		{ "2026-01-01T00:00:00.123456Z", NOW },
		{ "2024-02-29", INT64_C(1709164800) },
		{ "1970-01-01", 0 },
		{ "9999-12-31T23:59:59Z", INT64_C(253402300799) },
		{ "now", NOW },
		{ "30d", NOW - 30 * 86400 },
		{ "12h", NOW - 12 * 3600 },
		{ "2w", NOW - 14 * 86400 },
		{ "90m", NOW - 90 * 60 },
		{ "5s", NOW - 5 },
	};
	static const char *const bad[] = {
		"", "yesterday", "2026-13-01", "2026-02-30", "2025-02-29",
		"2026-1-01", "2026-01-01T", "2026-01-01T25:00:00Z",
		"2026-01-01T00:00:00", "2026-01-01T00:00:00+2:00",
		"2026-01-01T00:00Z", "2026-01-01T00:00:00.Z",
		"2026-01-01T00:00:00.1234567891Z", "1969-12-31",
		"10000-01-01", "-30d", "30", "30x", "d", "30 d",
		"2026-01-01'; DROP TABLE dmarcd.reports; --",
		"999999999w", "9999999w", "2026-01-01%00",
		"2026-01-01T00:00:00Z ", " 2026-01-01",
	};
	size_t i;
	int64_t t;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (api_parse_time(good[i].text, NOW, &t) != 0)
			fail_msg("'%s' refused", good[i].text);
		if (t != good[i].want)
			fail_msg("'%s' -> %lld, want %lld", good[i].text,
			    (long long)t, (long long)good[i].want);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (api_parse_time(bad[i], NOW, &t) == 0)
			fail_msg("'%s' accepted (%lld)", bad[i], (long long)t);
}

static void
test_counts(void **state)
{
	uint64_t v;

	(void)state;
	assert_int_equal(api_parse_count("1", 1, 1000, &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(api_parse_count("1000", 1, 1000, &v), 0);
	assert_int_equal(v, 1000);
	assert_int_equal(api_parse_count("0", 1, 1000, &v), -1);
	assert_int_equal(api_parse_count("1001", 1, 1000, &v), -1);
	assert_int_equal(api_parse_count("-1", 1, 1000, &v), -1);
	assert_int_equal(api_parse_count("+5", 1, 1000, &v), -1);
	assert_int_equal(api_parse_count("5 ", 1, 1000, &v), -1);
	assert_int_equal(api_parse_count("0x10", 1, 1000, &v), -1);
	assert_int_equal(api_parse_count("", 1, 1000, &v), -1);
	assert_int_equal(api_parse_count("99999999999999999999", 1, 1000,
	    &v), -1);
	assert_int_equal(api_parse_count("1e3", 1, 1000, &v), -1);
}

static void
test_domains(void **state)
{
	char out[256], long_label[80], long_name[300];

	(void)state;
	assert_int_equal(api_parse_domain("Example.COM", out, sizeof(out)), 0);
	assert_string_equal(out, "example.com");
	assert_int_equal(api_parse_domain("_dmarc.a-b.example", out,
	    sizeof(out)), 0);
	assert_int_equal(api_parse_domain("com", out, sizeof(out)), 0);
	assert_int_equal(api_parse_domain("", out, sizeof(out)), -1);
	assert_int_equal(api_parse_domain(".example.com", out, sizeof(out)),
	    -1);
	assert_int_equal(api_parse_domain("example.com.", out, sizeof(out)),
	    -1);
	assert_int_equal(api_parse_domain("a..b", out, sizeof(out)), -1);
	assert_int_equal(api_parse_domain("example.com' OR '1'='1", out,
	    sizeof(out)), -1);
	assert_int_equal(api_parse_domain("a%00b", out, sizeof(out)), -1);
	assert_int_equal(api_parse_domain("exa mple.com", out, sizeof(out)),
	    -1);
	assert_int_equal(api_parse_domain("b\xc3\xa4r.example", out,
	    sizeof(out)), -1);
	memset(long_label, 'a', 64);
	long_label[64] = '\0';
	assert_int_equal(api_parse_domain(long_label, out, sizeof(out)), -1);
	long_label[63] = '\0';
	assert_int_equal(api_parse_domain(long_label, out, sizeof(out)), 0);
	memset(long_name, 'a', sizeof(long_name));
	for (size_t i = 50; i < sizeof(long_name); i += 51)
		long_name[i] = '.';
	long_name[254] = '\0';
	assert_int_equal(api_parse_domain(long_name, out, sizeof(out)), -1);
	long_name[253] = '\0';
	if (long_name[252] == '.')
		long_name[252] = 'a';
	assert_int_equal(api_parse_domain(long_name, out, sizeof(out)), 0);
}

static void
test_cursors(void **state)
{
	int64_t t, id;

	(void)state;
	assert_int_equal(api_parse_cursor("1767225600000000_42", &t, &id), 0);
	assert_true(t == INT64_C(1767225600000000) && id == 42);
	assert_int_equal(api_parse_cursor("-5_0", &t, &id), 0);
	assert_true(t == -5 && id == 0);
	assert_int_equal(api_parse_cursor("0_1", &t, &id), 0);
	assert_int_equal(api_parse_cursor("", &t, &id), -1);
	assert_int_equal(api_parse_cursor("_", &t, &id), -1);
	assert_int_equal(api_parse_cursor("1_", &t, &id), -1);
	assert_int_equal(api_parse_cursor("_1", &t, &id), -1);
	assert_int_equal(api_parse_cursor("1_-1", &t, &id), -1);
	assert_int_equal(api_parse_cursor("1_2_3", &t, &id), -1);
	assert_int_equal(api_parse_cursor("abc", &t, &id), -1);
	assert_int_equal(api_parse_cursor("1_2 OR 1=1", &t, &id), -1);
	assert_int_equal(api_parse_cursor("99999999999999999999_1", &t, &id),
	    -1);
}

static void
test_printable(void **state)
{
	char out[16];

	(void)state;
	api_printable("ok\n\x01\xff", 100, out, sizeof(out));
	assert_string_equal(out, "ok???");
	api_printable("0123456789abcdefghij", 100, out, sizeof(out));
	assert_int_equal(strlen(out), 15);
	assert_string_equal(out + 12, "...");
}

static void
test_tokens(void **state)
{
	char a[API_TOKEN_SIZE], b[API_TOKEN_SIZE];
	unsigned char h[32];
	struct dm_error err;
	size_t i;
	/* sha256("abc") */
	static const unsigned char abc[32] = {
		0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41,
		0x40, 0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3,
		0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00,
		0x15, 0xad,
	};

	(void)state;
	assert_int_equal(api_token_new(a, &err), 0);
	assert_int_equal(api_token_new(b, &err), 0);
	assert_int_equal(strlen(a), API_TOKEN_SIZE - 1);
	assert_int_equal(strncmp(a, "dmarcd_", 7), 0);
	for (i = 7; a[i] != '\0'; i++)
		assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklm"
		    "nopqrstuvwxyz0123456789-_", a[i]));
	assert_string_not_equal(a, b);
	api_token_hash("abc", 3, h);
	assert_memory_equal(h, abc, 32);
}

static void
test_basic(void **state)
{
	char out[64];
	size_t len;

	(void)state;
	/* "user:dmarcd_tok" */
	assert_int_equal(api_basic_password("dXNlcjpkbWFyY2RfdG9r", out,
	    sizeof(out), &len), 0);
	assert_string_equal(out, "dmarcd_tok");
	assert_int_equal(len, 10);
	/* ":pw" (no user), "a:b:c" (the password holds the second ':') */
	assert_int_equal(api_basic_password("OnB3", out, sizeof(out), &len),
	    0);
	assert_string_equal(out, "pw");
	assert_int_equal(api_basic_password("YTpiOmM=", out, sizeof(out),
	    &len), 0);
	assert_string_equal(out, "b:c");
	/* "u:" : an empty password */
	assert_int_equal(api_basic_password("dTo=", out, sizeof(out), &len),
	    0);
	assert_int_equal(len, 0);
	/* no ':', not base64, '=' inside, bad length, a NUL, too long */
	assert_int_equal(api_basic_password("dXNlcg==", out, sizeof(out),
	    &len), -1);
	assert_int_equal(api_basic_password("!!!!", out, sizeof(out), &len),
	    -1);
	assert_int_equal(api_basic_password("YT=pi", out, sizeof(out), &len),
	    -1);
	assert_int_equal(api_basic_password("YTpiO", out, sizeof(out), &len),
	    -1);
	assert_int_equal(api_basic_password("YTpiAGM=", out, sizeof(out),
	    &len), -1);
	assert_int_equal(api_basic_password("YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFh"
	    "YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYTpi", out, 16, &len), -1);
	assert_int_equal(api_basic_password("", out, sizeof(out), &len), -1);
}

static void
test_html_text(void **state)
{
	struct dm_buf b;

	(void)state;
	dm_buf_init(&b, 1024);
	assert_int_equal(api_html_text(&b, "<script>alert('x\")&</script>",
	    100), 0);
	assert_string_equal(dm_buf_cstr(&b), "&lt;script&gt;alert(&#39;x"
	    "&quot;)&amp;&lt;/script&gt;");
	dm_buf_reset(&b);
	/* a control character becomes U+FFFD */
	assert_int_equal(api_html_text(&b, "a\x01" "b", 100), 0);
	assert_string_equal(dm_buf_cstr(&b), "a\xEF\xBF\xBD" "b");
	dm_buf_reset(&b);
	/* cut on a character boundary: "é" is two bytes */
	assert_int_equal(api_html_text(&b, "ab\xC3\xA9z", 3), 0);
	assert_string_equal(dm_buf_cstr(&b), "ab\xE2\x80\xA6");
	dm_buf_reset(&b);
	dm_buf_free(&b);
	/* the cap: all or nothing */
	dm_buf_init(&b, 8);
	assert_int_equal(api_html_text(&b, "<<<<", 100), -1);
	dm_buf_free(&b);
}

static void
test_status_domains(void **state)
{
	char names[3][256];
	size_t n, total;

	(void)state;
	assert_int_equal(api_status_domains("[{\"domain\":\"b.example\","
	    "\"messages\":5},{\"domain\":\"a.example\",\"messages\":5},"
	    "{\"domain\":\"c.example\",\"messages\":9},"
	    "{\"domain\":\"d.example\","
	    "\"messages\":1},{\"messages\":100}]", names, 3, &n, &total), 0);
	assert_int_equal(n, 3);
	assert_int_equal(total, 4);
	assert_string_equal(names[0], "c.example");
	assert_string_equal(names[1], "a.example");
	assert_string_equal(names[2], "b.example");
	assert_int_equal(api_status_domains("{}", names, 3, &n, &total), -1);
	assert_int_equal(api_status_domains("[", names, 3, &n, &total), -1);
}

static void
test_status_render(void **state)
{
	static const char summary[] = "{\"messages\":10,\"dmarc_pass_share\":"
	    "0.5,\"classes\":{\"aligned\":{\"senders\":1,\"messages\":5},"
	    "\"unauthorised\":{\"senders\":1,\"messages\":5}}}";
	static const char sources[] = "{\"senders\":[{\"sender\":"
	    "\"<script>x</script>\",\"class\":\"unauthorised\",\"messages\":5,"
	    "\"dmarc_pass\":0,\"failing\":5,\"header_from\":[\"<b>f</b>\"]},"
	    "{\"sender\":\"ok.example\",\"class\":\"aligned\",\"messages\":5,"
	    "\"dmarc_pass\":5,\"failing\":0}]}";
	static const char readiness[] = "{\"current\":\"p=none\",\"verdict\":"
	    "{\"status\":\"not_ready\",\"advice\":\"<i>fix</i>\"},"
	    "\"legitimate\":{\"share\":1.0},\"trend\":[{\"day\":\"2026-01-02\","
	    "\"share\":0.25,\"aligned\":1,\"legitimate\":4},{\"day\":"
	    "\"<svg>\",\"share\":1},{\"day\":\"2025-01-01\",\"share\":0.5,"
	    "\"legitimate\":2}]}";
	struct api_status_domain d[2] = {
		{ "a.example", summary, sources, readiness },
		{ "b<i>.example", "not json", "[1]", NULL },
	};
	struct api_status_page page;
	struct dm_buf b;
	const char *html;

	(void)state;
	memset(&page, 0, sizeof(page));
	page.since = NOW;
	page.until = NOW + 3 * 86400;
	page.days = 3;
	page.now = NOW + 3 * 86400 + 60;
	page.domains = d;
	page.ndomains = 2;
	page.domains_total = 30;
	dm_buf_init(&b, API_STATUS_MAX_BYTES);
	assert_int_equal(api_status_render(&page, &b), 0);
	html = dm_buf_cstr(&b);
	assert_null(strstr(html, "<script"));
	assert_null(strstr(html, "<b>"));
	assert_null(strstr(html, "<i>"));
	assert_null(strstr(html, "<svg>"));
	assert_non_null(strstr(html, "&lt;script&gt;x&lt;/script&gt;"));
	assert_non_null(strstr(html, "b&lt;i&gt;.example"));
	assert_non_null(strstr(html, "The 2 domains with the most messages "
	    "of 30."));
	assert_non_null(strstr(html, "data-k=\"dmarc_pass_share\">50.00%"));
	/* one bar: the day in the window; the others are not drawn */
	assert_non_null(strstr(html, "data-day=\"2026-01-02\" "
	    "data-share=\"0.2500\""));
	assert_null(strstr(html, "data-day=\"2025-01-01\""));
	assert_non_null(strstr(html, "unavailable"));
	dm_buf_free(&b);
	/* over the cap: -1, nothing left behind */
	dm_buf_init(&b, 4096);
	assert_int_equal(api_status_render(&page, &b), -1);
	assert_null(b.data);
	assert_non_null(strstr(api_status_csp(), "default-src 'none'"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_times),
		cmocka_unit_test(test_counts),
		cmocka_unit_test(test_domains),
		cmocka_unit_test(test_cursors),
		cmocka_unit_test(test_printable),
		cmocka_unit_test(test_tokens),
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_html_text),
		cmocka_unit_test(test_status_domains),
		cmocka_unit_test(test_status_render),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
