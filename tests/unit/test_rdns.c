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
 * dmarcd.ip_names has them.
 *
 * rdns_answer_parse() on DNS messages built here, byte by byte: a CNAME
 * chain written out of order is followed (and an A of another owner
 * ignored); a TXT of three character-strings is joined (its count and
 * the longest); several TXT records, one holding a NUL (txt_len >
 * strlen); MX records sorted by preference then name, the null MX "";
 * NXDOMAIN through a dangling CNAME keeps the CNAME; NODATA, SERVFAIL,
 * REFUSED, FORMERR; a CNAME question; more than RDNS_RR_MAX records and
 * the TC bit set truncated; and every malformed message is RDNS_ERROR:
 * each prefix of a good one, a compression loop, a pointer past the
 * end, a TXT length past its rdata, an A of 5 bytes, an MX of 2, a PTR
 * name running past its rdata, another question (name, type, none).
 * Messages are copied to a buffer of their exact size (valgrind or ASan
 * sees a read past it). The DNS itself is tested against NSD in
 * tests/integration/resolve.py and dnsquery.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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

/* ---- rdns_answer_parse(): DNS messages built by hand ---- */

#define T_A	1
#define T_CNAME	5
#define T_SOA	6
#define T_PTR	12
#define T_MX	15
#define T_TXT	16
#define T_AAAA	28

struct pkt {
	unsigned char b[8192];
	size_t n;
	size_t rdlen_at;	/* of the record being written */
};

static void
put8(struct pkt *p, unsigned v)
{
	assert_true(p->n < sizeof(p->b));
	p->b[p->n++] = (unsigned char)v;
}

static void
put16(struct pkt *p, unsigned v)
{
	put8(p, v >> 8);
	put8(p, v & 0xff);
}

static void
put32(struct pkt *p, uint32_t v)
{
	put16(p, v >> 16);
	put16(p, v & 0xffff);
}

static void
put_bytes(struct pkt *p, const void *data, size_t len)
{
	assert_true(p->n + len <= sizeof(p->b));
	memcpy(p->b + p->n, data, len);
	p->n += len;
}

/* put_name - "a.b.c" as labels, ending with the root; "" is the root. */
static void
put_name(struct pkt *p, const char *name)
{
	const char *dot;
	size_t len;

	while (*name != '\0') {
		dot = strchr(name, '.');
		len = dot != NULL ? (size_t)(dot - name) : strlen(name);
		put8(p, (unsigned)len);
		put_bytes(p, name, len);
		name += len + (dot != NULL);
	}
	put8(p, 0);
}

/* A compression pointer to offset off. */
static void
put_ptr(struct pkt *p, unsigned off)
{
	put16(p, 0xc000 | off);
}

/* header, flags QR RD RA, and the question (at offset 12). */
static void
begin(struct pkt *p, unsigned rcode, unsigned an, unsigned ns,
    const char *qname, unsigned qtype)
{
	memset(p, 0, sizeof(*p));
	put16(p, 0x1234);
	put16(p, 0x8180 | rcode);
	put16(p, 1);
	put16(p, an);
	put16(p, ns);
	put16(p, 0);
	put_name(p, qname);
	put16(p, qtype);
	put16(p, 1);
}

static void
rr_begin(struct pkt *p, const char *owner, unsigned type, uint32_t ttl)
{
	if (owner == NULL)
		put_ptr(p, 12);		/* the question's name */
	else
		put_name(p, owner);
	put16(p, type);
	put16(p, 1);
	put32(p, ttl);
	p->rdlen_at = p->n;
	put16(p, 0);
}

static void
rr_end(struct pkt *p)
{
	size_t len = p->n - p->rdlen_at - 2;

	p->b[p->rdlen_at] = (unsigned char)(len >> 8);
	p->b[p->rdlen_at + 1] = (unsigned char)(len & 0xff);
}

static void
rr_name(struct pkt *p, const char *owner, unsigned type, uint32_t ttl,
    const char *target)
{
	rr_begin(p, owner, type, ttl);
	put_name(p, target);
	rr_end(p);
}

static void
rr_a(struct pkt *p, const char *owner, unsigned a, unsigned b, unsigned c,
    unsigned d)
{
	rr_begin(p, owner, T_A, 300);
	put8(p, a);
	put8(p, b);
	put8(p, c);
	put8(p, d);
	rr_end(p);
}

static void
rr_mx(struct pkt *p, unsigned pref, const char *exchange)
{
	rr_begin(p, NULL, T_MX, 600);
	put16(p, pref);
	put_name(p, exchange);
	rr_end(p);
}

/* parse - p as a buffer of its exact size (a read past it is seen). */
static int
parse(const struct pkt *p, size_t len, const char *name, int type,
    struct rdns_answer *a)
{
	unsigned char *copy = malloc(len > 0 ? len : 1);
	int rc;

	assert_non_null(copy);
	memcpy(copy, p->b, len);
	rc = rdns_answer_parse(copy, (int)len, name, type, a);
	free(copy);
	return rc;
}

static void
test_answer_cname_chain(void **state)
{
	struct rdns_answer a;
	struct pkt p;

	(void)state;
	/* Out of order: the A records first, the chain's links reversed;
	 * an A of a name outside the chain is not taken. */
	begin(&p, 0, 5, 0, "WWW.Example.COM", T_A);
	rr_a(&p, "b.example.org", 192, 0, 2, 1);
	rr_a(&p, "other.example.com", 192, 0, 2, 9);
	rr_name(&p, "a.example.net", T_CNAME, 100, "B.example.org");
	rr_name(&p, NULL, T_CNAME, 200, "a.example.net");
	rr_a(&p, "b.example.org", 192, 0, 2, 2);
	assert_int_equal(parse(&p, p.n, "www.example.com.", T_A, &a), 0);
	assert_int_equal(a.status, RDNS_OK);
	assert_int_equal(a.count, 2);
	assert_int_equal(a.rr[0].type, T_A);
	assert_int_equal(a.rr[0].ttl, 300);
	assert_string_equal(a.rr[0].addr, "192.0.2.1");
	assert_string_equal(a.rr[1].addr, "192.0.2.2");
	assert_int_equal(a.cnames, 2);
	assert_string_equal(a.cname[0], "a.example.net");
	assert_string_equal(a.cname[1], "b.example.org");
	assert_int_equal(a.truncated, 0);
	rdns_answer_free(&a);
	assert_int_equal(a.count, 0);

	/* The CNAME question: the first link. */
	begin(&p, 0, 1, 0, "sel._domainkey.example.com", T_CNAME);
	rr_name(&p, NULL, T_CNAME, 3600, "Key.DKIM.example.net");
	assert_int_equal(parse(&p, p.n, "sel._domainkey.example.com", T_CNAME,
	    &a), 0);
	assert_int_equal(a.status, RDNS_OK);
	assert_int_equal(a.count, 1);
	assert_int_equal(a.rr[0].type, T_CNAME);
	assert_int_equal(a.rr[0].ttl, 3600);
	assert_string_equal(a.rr[0].name, "key.dkim.example.net");
	assert_int_equal(a.cnames, 1);
	rdns_answer_free(&a);

	/* A CNAME, and no record of the type at its end: NODATA. */
	begin(&p, 0, 1, 0, "www.example.com", T_AAAA);
	rr_name(&p, NULL, T_CNAME, 300, "v4only.example.com");
	assert_int_equal(parse(&p, p.n, "www.example.com", T_AAAA, &a), 0);
	assert_int_equal(a.status, RDNS_NODATA);
	assert_int_equal(a.count, 0);
	assert_int_equal(a.cnames, 1);
	assert_string_equal(a.cname[0], "v4only.example.com");
}

static void
test_answer_txt(void **state)
{
	char s1[256], s2[256], s3[101], want[700];
	struct rdns_answer a;
	struct pkt p;

	(void)state;
	memset(s1, 'A', 255);
	memset(s2, 'B', 255);
	memset(s3, 'C', 100);
	s1[0] = 'v';
	begin(&p, 0, 1, 0, "s2048._domainkey.example.com", T_TXT);
	rr_begin(&p, NULL, T_TXT, 3600);
	put8(&p, 255);
	put_bytes(&p, s1, 255);
	put8(&p, 255);
	put_bytes(&p, s2, 255);
	put8(&p, 100);
	put_bytes(&p, s3, 100);
	rr_end(&p);
	assert_int_equal(parse(&p, p.n, "s2048._domainkey.example.com", T_TXT,
	    &a), 0);
	assert_int_equal(a.status, RDNS_OK);
	assert_int_equal(a.count, 1);
	assert_int_equal(a.rr[0].type, T_TXT);
	assert_int_equal(a.rr[0].strings, 3);
	assert_int_equal(a.rr[0].longest, 255);
	assert_int_equal(a.rr[0].txt_len, 610);
	memcpy(want, s1, 255);
	memcpy(want + 255, s2, 255);
	memcpy(want + 510, s3, 100);
	want[610] = '\0';
	assert_string_equal(a.rr[0].txt, want);
	rdns_answer_free(&a);

	/* Two records at the name, one holding a NUL, and an empty one. */
	begin(&p, 0, 3, 0, "example.com", T_TXT);
	rr_begin(&p, NULL, T_TXT, 300);
	put8(&p, 8);
	put_bytes(&p, "v=spf1 ", 7);
	put8(&p, '-');
	put8(&p, 3);
	put_bytes(&p, "all", 3);
	rr_end(&p);
	rr_begin(&p, NULL, T_TXT, 300);
	put8(&p, 3);
	put_bytes(&p, "a\0b", 3);
	rr_end(&p);
	rr_begin(&p, NULL, T_TXT, 300);
	rr_end(&p);
	assert_int_equal(parse(&p, p.n, "example.com", T_TXT, &a), 0);
	assert_int_equal(a.status, RDNS_OK);
	assert_int_equal(a.count, 3);
	assert_string_equal(a.rr[0].txt, "v=spf1 -all");
	assert_int_equal(a.rr[0].txt_len, 11);
	assert_int_equal(a.rr[0].strings, 2);
	assert_int_equal(a.rr[0].longest, 8);
	assert_int_equal(a.rr[1].txt_len, 3);
	assert_int_equal(strlen(a.rr[1].txt), 1);
	assert_memory_equal(a.rr[1].txt, "a\0b", 4);
	assert_int_equal(a.rr[2].txt_len, 0);
	assert_int_equal(a.rr[2].strings, 0);
	assert_string_equal(a.rr[2].txt, "");
	rdns_answer_free(&a);
	rdns_answer_free(&a);	/* twice: nothing left to free */
}

static void
test_answer_mx(void **state)
{
	struct rdns_answer a;
	struct pkt p;
	size_t i;
	static const struct {
		unsigned pref;
		const char *name;
	} want[] = {
		{0, ""}, {10, "a.example.com"}, {10, "z.example.com"},
		{20, "b.example.com"}, {65535, "last.example.com"}
	};

	(void)state;
	begin(&p, 0, 5, 0, "example.com", T_MX);
	rr_mx(&p, 20, "B.Example.com");
	rr_mx(&p, 65535, "last.example.com");
	rr_mx(&p, 10, "z.example.com");
	/* a.example.com, its suffix compressed to the question's name */
	rr_begin(&p, NULL, T_MX, 600);
	put16(&p, 10);
	put8(&p, 1);
	put8(&p, 'a');
	put_ptr(&p, 12);
	rr_end(&p);
	rr_mx(&p, 0, "");
	assert_int_equal(parse(&p, p.n, "example.com", T_MX, &a), 0);
	assert_int_equal(a.status, RDNS_OK);
	assert_int_equal(a.count, 5);
	for (i = 0; i < 5; i++) {
		assert_int_equal(a.rr[i].type, T_MX);
		assert_int_equal(a.rr[i].pref, want[i].pref);
		assert_string_equal(a.rr[i].name, want[i].name);
	}
	rdns_answer_free(&a);
}

static void
test_answer_negative(void **state)
{
	struct rdns_answer a;
	struct pkt p;

	(void)state;
	/* A dangling CNAME: NXDOMAIN, the CNAME listed. */
	begin(&p, 3, 1, 1, "sel._domainkey.example.com", T_TXT);
	rr_name(&p, NULL, T_CNAME, 300, "gone.example.net");
	rr_begin(&p, "example.net", T_SOA, 300);
	put_name(&p, "ns1.example.net");
	put_name(&p, "hostmaster.example.net");
	put32(&p, 1);
	put32(&p, 3600);
	put32(&p, 600);
	put32(&p, 86400);
	put32(&p, 300);
	rr_end(&p);
	assert_int_equal(parse(&p, p.n, "sel._domainkey.example.com", T_TXT,
	    &a), 0);
	assert_int_equal(a.status, RDNS_NXDOMAIN);
	assert_int_equal(a.count, 0);
	assert_int_equal(a.cnames, 1);
	assert_string_equal(a.cname[0], "gone.example.net");

	/* NXDOMAIN itself: no CNAME. */
	begin(&p, 3, 0, 0, "nope.example.com", T_A);
	assert_int_equal(parse(&p, p.n, "nope.example.com", T_A, &a), 0);
	assert_int_equal(a.status, RDNS_NXDOMAIN);
	assert_int_equal(a.cnames, 0);

	/* NODATA: records of another type only. */
	begin(&p, 0, 1, 0, "example.com", T_AAAA);
	rr_a(&p, NULL, 192, 0, 2, 1);
	assert_int_equal(parse(&p, p.n, "example.com", T_AAAA, &a), 0);
	assert_int_equal(a.status, RDNS_NODATA);
	assert_int_equal(a.count, 0);

	begin(&p, 2, 0, 0, "example.com", T_A);
	assert_int_equal(parse(&p, p.n, "example.com", T_A, &a), 0);
	assert_int_equal(a.status, RDNS_SERVFAIL);
	/* REFUSED with no question at all (the header only). */
	begin(&p, 5, 0, 0, "example.com", T_A);
	assert_int_equal(parse(&p, 12, "example.com", T_A, &a), 0);
	assert_int_equal(a.status, RDNS_REFUSED);
	begin(&p, 1, 0, 0, "example.com", T_A);		/* FORMERR */
	assert_int_equal(parse(&p, p.n, "example.com", T_A, &a), 0);
	assert_int_equal(a.status, RDNS_ERROR);
}

static void
test_answer_truncated(void **state)
{
	struct rdns_answer a;
	struct pkt p;
	unsigned i;

	(void)state;
	begin(&p, 0, RDNS_RR_MAX + 1, 0, "example.com", T_TXT);
	for (i = 0; i < RDNS_RR_MAX + 1; i++) {
		rr_begin(&p, NULL, T_TXT, 300);
		put8(&p, 1);
		put8(&p, 'a' + i % 26);
		rr_end(&p);
	}
	assert_int_equal(parse(&p, p.n, "example.com", T_TXT, &a), 0);
	assert_int_equal(a.status, RDNS_OK);
	assert_int_equal(a.count, RDNS_RR_MAX);
	assert_int_equal(a.truncated, 1);
	{
		char last[2] = { (char)('a' + (RDNS_RR_MAX - 1) % 26), '\0' };

		assert_string_equal(a.rr[RDNS_RR_MAX - 1].txt, last);
	}
	rdns_answer_free(&a);

	/* TC set: what came is kept, and said to be partial. */
	begin(&p, 0, 1, 0, "example.com", T_A);
	p.b[2] |= 0x02;
	rr_a(&p, NULL, 192, 0, 2, 1);
	assert_int_equal(parse(&p, p.n, "example.com", T_A, &a), 0);
	assert_int_equal(a.status, RDNS_OK);
	assert_int_equal(a.count, 1);
	assert_int_equal(a.truncated, 1);

	/* PTR and AAAA, lower-cased. */
	begin(&p, 0, 1, 0, "1.2.0.192.in-addr.arpa", T_PTR);
	rr_name(&p, NULL, T_PTR, 300, "Mail.Example.NET");
	assert_int_equal(parse(&p, p.n, "1.2.0.192.in-addr.arpa", T_PTR, &a),
	    0);
	assert_int_equal(a.status, RDNS_OK);
	assert_string_equal(a.rr[0].name, "mail.example.net");
	begin(&p, 0, 1, 0, "example.com", T_AAAA);
	rr_begin(&p, NULL, T_AAAA, 300);
	put16(&p, 0x2001);
	put16(&p, 0x0db8);
	for (i = 0; i < 5; i++)
		put16(&p, 0);
	put16(&p, 0x25);
	rr_end(&p);
	assert_int_equal(parse(&p, p.n, "example.com", T_AAAA, &a), 0);
	assert_int_equal(a.status, RDNS_OK);
	assert_string_equal(a.rr[0].addr, "2001:db8::25");
}

static void
assert_error(const struct pkt *p, size_t len, const char *name, int type,
    const char *what)
{
	struct rdns_answer a;

	assert_int_equal(parse(p, len, name, type, &a), 0);
	if (a.status != RDNS_ERROR)
		fail_msg("%s: %s, expected error", what,
		    rdns_status_name(a.status));
	assert_int_equal(a.count, 0);
	assert_int_equal(a.cnames, 0);
}

static void
test_answer_malformed(void **state)
{
	struct pkt good, p;
	size_t len;

	(void)state;
	/* Each prefix of a good message (a CNAME, TXT, MX...). */
	begin(&good, 0, 3, 0, "www.example.com", T_TXT);
	rr_name(&good, NULL, T_CNAME, 300, "txt.example.com");
	rr_begin(&good, "txt.example.com", T_TXT, 300);
	put8(&good, 5);
	put_bytes(&good, "hello", 5);
	rr_end(&good);
	rr_begin(&good, "txt.example.com", T_TXT, 300);
	put8(&good, 2);
	put_bytes(&good, "hi", 2);
	rr_end(&good);
	for (len = 0; len < good.n; len++)
		assert_error(&good, len, "www.example.com", T_TXT, "a prefix");

	/* Another question: name, type; none. */
	assert_error(&good, good.n, "www.example.org", T_TXT, "other name");
	assert_error(&good, good.n, "www.example.com", T_A, "other type");
	p = good;
	p.b[5] = 0;
	assert_error(&p, p.n, "www.example.com", T_TXT, "qdcount 0");
	assert_error(&good, good.n, "www.example.com", 99, "unknown type");
	assert_error(&good, good.n, "", T_TXT, "empty name");

	/* A compression loop, a pointer past the end. */
	begin(&p, 0, 1, 0, "example.com", T_A);
	put_ptr(&p, (unsigned)p.n);
	put16(&p, T_A);
	put16(&p, 1);
	put32(&p, 300);
	put16(&p, 4);
	put32(&p, 0xc0000201);
	assert_error(&p, p.n, "example.com", T_A, "compression loop");
	begin(&p, 0, 1, 0, "example.com", T_CNAME);
	rr_begin(&p, NULL, T_CNAME, 300);
	put_ptr(&p, 4000);
	rr_end(&p);
	assert_error(&p, p.n, "example.com", T_CNAME, "pointer past the end");

	/* A TXT string longer than its rdata (the rdata inside the
	 * message: only the length byte lies). */
	begin(&p, 0, 1, 0, "example.com", T_TXT);
	rr_begin(&p, NULL, T_TXT, 300);
	put8(&p, 10);
	put_bytes(&p, "short", 5);
	rr_end(&p);
	put_bytes(&p, "padding...", 10);
	assert_error(&p, p.n, "example.com", T_TXT, "TXT length");

	/* An rdlen past the end of the message. */
	begin(&p, 0, 1, 0, "example.com", T_TXT);
	rr_begin(&p, NULL, T_TXT, 300);
	put8(&p, 2);
	put_bytes(&p, "ok", 2);
	p.b[p.rdlen_at + 1] = 200;
	assert_error(&p, p.n, "example.com", T_TXT, "rdlen");

	/* Records of the wrong size. */
	begin(&p, 0, 1, 0, "example.com", T_A);
	rr_begin(&p, NULL, T_A, 300);
	put32(&p, 0xc0000201);
	put8(&p, 0);
	rr_end(&p);
	assert_error(&p, p.n, "example.com", T_A, "A of 5 bytes");
	begin(&p, 0, 1, 0, "example.com", T_MX);
	rr_begin(&p, NULL, T_MX, 300);
	put16(&p, 10);
	rr_end(&p);
	assert_error(&p, p.n, "example.com", T_MX, "MX of 2 bytes");
	/* A PTR whose name runs past its rdata (rdlen 3 of 13). */
	begin(&p, 0, 1, 0, "example.com", T_PTR);
	rr_name(&p, NULL, T_PTR, 300, "mail.example.net");
	p.b[p.rdlen_at + 1] = 3;
	assert_error(&p, p.n, "example.com", T_PTR, "PTR past rdata");
	/* A CNAME without rdata, last in the message. */
	begin(&p, 0, 1, 0, "example.com", T_A);
	rr_begin(&p, NULL, T_CNAME, 300);
	rr_end(&p);
	assert_error(&p, p.n, "example.com", T_A, "empty CNAME");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_ttl_clamp),
		cmocka_unit_test(test_arpa),
		cmocka_unit_test(test_status_names),
		cmocka_unit_test(test_answer_cname_chain),
		cmocka_unit_test(test_answer_txt),
		cmocka_unit_test(test_answer_mx),
		cmocka_unit_test(test_answer_negative),
		cmocka_unit_test(test_answer_truncated),
		cmocka_unit_test(test_answer_malformed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
