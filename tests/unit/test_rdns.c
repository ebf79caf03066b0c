/*
 * test_rdns.c - unit tests for the pure parts of collector/rdns.c.
 *
 * Proves: host names are lower-cased, lose their trailing dot and are
 * refused when they are junk (escaped bytes, spaces, empty or overlong
 * labels, a label starting or ending with '-', a single label, an
 * all-digit last label such as an address, over 253 bytes, a buffer too
 * small); TTLs are clamped to [1 h, 7 d] for answers, [15 min, 1 d] for
 * negative answers, 15 min for failures and 1 h for errors; PTR query
 * names for IPv4, IPv6 (32 nibbles, reversed) and IPv4-mapped IPv6, and
 * none for what is not an address or does not fit; status names as
 * dmarcd.ip_names has them. The DNS itself is tested against NSD in
 * tests/integration/resolve.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "collector/rdns.h"

static void
assert_name(const char *in, const char *want)
{
	char out[RDNS_NAME_MAX + 1];

	if (rdns_name_normalize(in, out, sizeof(out)) != 0)
		fail_msg("'%s' refused, expected '%s'", in, want);
	assert_string_equal(out, want);
}

static void
assert_junk(const char *in)
{
	char out[RDNS_NAME_MAX + 1];

	if (rdns_name_normalize(in, out, sizeof(out)) == 0)
		fail_msg("'%s' taken as '%s'", in, out);
}

static void
test_names(void **state)
{
	char label63[64], label64[65], long_name[300], out[RDNS_NAME_MAX + 1];
	(void)state;
	assert_name("mail.example.com", "mail.example.com");
	assert_name("Mail.Example.COM.", "mail.example.com");
	assert_name("o1.ptr1234.sendgrid.net", "o1.ptr1234.sendgrid.net");
	assert_name("a48-30.smtp-out.eu-west-1.amazonses.com.",
	    "a48-30.smtp-out.eu-west-1.amazonses.com");
	assert_name("_spf.example.org", "_spf.example.org");
	assert_name("1-2-3-4.dsl.example.net", "1-2-3-4.dsl.example.net");
	assert_name("mail.1example.de", "mail.1example.de");

	assert_junk("");
	assert_junk(".");
	assert_junk("localhost");
	assert_junk("localhost.");
	assert_junk("bad!name.example.net");
	assert_junk("x\\032y.example.net");	/* as ares_expand_name says */
	assert_junk("x y.example.net");
	assert_junk("a..b.example.net");
	assert_junk(".example.net");
	assert_junk("example.net..");
	assert_junk("-a.example.net");
	assert_junk("a-.example.net");
	assert_junk("a.example-");
	assert_junk("192.0.2.1");
	assert_junk("192.0.2.1.");
	assert_junk("host.example.123");
	assert_junk("caf\xc3\xa9.example.net");
	assert_junk("tab\t.example.net");

	memset(label63, 'a', 63);
	label63[63] = '\0';
	memset(label64, 'a', 64);
	label64[64] = '\0';
	snprintf(long_name, sizeof(long_name), "%s.example.net", label63);
	assert_name(long_name, long_name);
	snprintf(long_name, sizeof(long_name), "%s.example.net", label64);
	assert_junk(long_name);
	/* 253 bytes is the most; 254 is one too many. */
	snprintf(long_name, sizeof(long_name), "%s.%s.%s.%.61s", label63,
	    label63, label63, label63);
	assert_int_equal(strlen(long_name), 253);
	assert_name(long_name, long_name);
	snprintf(long_name, sizeof(long_name), "%s.%s.%s.%.62s", label63,
	    label63, label63, label63);
	assert_int_equal(strlen(long_name), 254);
	assert_junk(long_name);
	/* A buffer too small is a refusal, not a cut name. */
	assert_int_equal(rdns_name_normalize("mail.example.com", out, 16), -1);
	assert_int_equal(rdns_name_normalize("mail.example.com", out, 17), 0);
	assert_string_equal(out, "mail.example.com");
}

static void
test_ttl_clamp(void **state)
{
	(void)state;
	/* Answers: [1 hour, 7 days]. */
	assert_int_equal(rdns_ttl_clamp(RDNS_OK, 7200, 1), 7200);
	assert_int_equal(rdns_ttl_clamp(RDNS_OK, 60, 1), 3600);
	assert_int_equal(rdns_ttl_clamp(RDNS_OK, 0, 1), 3600);
	assert_int_equal(rdns_ttl_clamp(RDNS_OK, 3600, 1), 3600);
	assert_int_equal(rdns_ttl_clamp(RDNS_OK, 604800, 1), 604800);
	assert_int_equal(rdns_ttl_clamp(RDNS_OK, 604801, 1), 604800);
	assert_int_equal(rdns_ttl_clamp(RDNS_UNCONFIRMED, 2592000, 1),
	    604800);
	assert_int_equal(rdns_ttl_clamp(RDNS_UNCONFIRMED, 0x7fffffffU, 1),
	    604800);
	assert_int_equal(rdns_ttl_clamp(RDNS_UNCONFIRMED, 99999, 0), 3600);
	/* Negative answers: [15 minutes, 1 day]. */
	assert_int_equal(rdns_ttl_clamp(RDNS_NXDOMAIN, 1200, 1), 1200);
	assert_int_equal(rdns_ttl_clamp(RDNS_NXDOMAIN, 60, 1), 900);
	assert_int_equal(rdns_ttl_clamp(RDNS_NXDOMAIN, 100000, 1), 86400);
	assert_int_equal(rdns_ttl_clamp(RDNS_NODATA, 86400, 1), 86400);
	assert_int_equal(rdns_ttl_clamp(RDNS_NODATA, 5000, 0), 900);
	/* Failures: 15 minutes whatever the TTL; errors: 1 hour. */
	assert_int_equal(rdns_ttl_clamp(RDNS_TIMEOUT, 0, 0), 900);
	assert_int_equal(rdns_ttl_clamp(RDNS_SERVFAIL, 86400, 1), 900);
	assert_int_equal(rdns_ttl_clamp(RDNS_REFUSED, 5, 1), 900);
	assert_int_equal(rdns_ttl_clamp(RDNS_ERROR, 86400, 1), 3600);
}

static void
assert_arpa(const char *ip, const char *want)
{
	char out[128];

	if (rdns_arpa_name(ip, out, sizeof(out)) != 0)
		fail_msg("%s: no PTR name", ip);
	assert_string_equal(out, want);
}

static void
test_arpa(void **state)
{
	char out[128];

	(void)state;
	assert_arpa("192.0.2.10", "10.2.0.192.in-addr.arpa");
	assert_arpa("0.0.0.0", "0.0.0.0.in-addr.arpa");
	assert_arpa("255.254.253.252", "252.253.254.255.in-addr.arpa");
	assert_arpa("2001:db8::25", "5.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
	    "0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
	assert_arpa("2001:DB8:ABCD:12:3456:789A:BCDE:F012",
	    "2.1.0.f.e.d.c.b.a.9.8.7.6.5.4.3.2.1.0.0.d.c.b.a."
	    "8.b.d.0.1.0.0.2.ip6.arpa");
	assert_arpa("::1", "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
	    "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa");
	/* IPv4-mapped: looked up as the IPv4 address. */
	assert_arpa("::ffff:192.0.2.10", "10.2.0.192.in-addr.arpa");

	assert_int_equal(rdns_arpa_name("192.0.2", out, sizeof(out)), -1);
	assert_int_equal(rdns_arpa_name("192.0.2.256", out, sizeof(out)), -1);
	assert_int_equal(rdns_arpa_name("192.0.2.1/32", out, sizeof(out)), -1);
	assert_int_equal(rdns_arpa_name("mail.example.com", out, sizeof(out)),
	    -1);
	assert_int_equal(rdns_arpa_name("", out, sizeof(out)), -1);
	assert_int_equal(rdns_arpa_name("2001:db8::1::2", out, sizeof(out)),
	    -1);
	/* Too small: refused, nothing cut. */
	assert_int_equal(rdns_arpa_name("192.0.2.10", out, 23), -1);
	assert_int_equal(rdns_arpa_name("192.0.2.10", out, 24), 0);
	assert_int_equal(rdns_arpa_name("2001:db8::25", out, 72), -1);
	assert_int_equal(rdns_arpa_name("2001:db8::25", out, 73), 0);
}

static void
test_status_names(void **state)
{
	(void)state;
	assert_string_equal(rdns_status_name(RDNS_OK), "ok");
	assert_string_equal(rdns_status_name(RDNS_UNCONFIRMED),
	    "unconfirmed");
	assert_string_equal(rdns_status_name(RDNS_NXDOMAIN), "nxdomain");
	assert_string_equal(rdns_status_name(RDNS_NODATA), "nodata");
	assert_string_equal(rdns_status_name(RDNS_SERVFAIL), "servfail");
	assert_string_equal(rdns_status_name(RDNS_REFUSED), "refused");
	assert_string_equal(rdns_status_name(RDNS_TIMEOUT), "timeout");
	assert_string_equal(rdns_status_name(RDNS_ERROR), "error");
	assert_string_equal(rdns_status_name((enum rdns_status)42), "error");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_ttl_clamp),
		cmocka_unit_test(test_arpa),
		cmocka_unit_test(test_status_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
