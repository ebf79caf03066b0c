/*
 * test_dnsrec.c - unit tests for common/dnsrec.c, the DNS records of
 * mail authentication judged for `dmarcd check` (issue 7).
 *
 * Proves, over a fake dm_dns_fn answering from a small table (TXT, A,
 * AAAA, MX; names not in it are NXDOMAIN, a name with other types only
 * is NODATA, a listed name can TEMPFAIL): DMARC tags each valid and
 * invalid with their finding codes and the one fixed record; SPF
 * check_host() with ip4/ip6 CIDR pass, fail and softfail (IPv4-mapped
 * IPv6 as IPv4), a and mx with dual CIDR, exists with a macro, redirect,
 * the 10-lookup limit (10 passes, 11 fails), void lookups, include loops,
 * two records merged into one, an include without SPF, and every record
 * finding; DKIM key sizes from real keys (RSA 512, 1024, 2048 as
 * SubjectPublicKeyInfo and bare RSAPublicKey, Ed25519), revoked, several
 * records, truncated DER, bad base64; BIMI syntax and enforcement.
 *
 * The keys were made with openssl genrsa N | openssl rsa -pubout
 * -outform DER | base64 -w0 (and -RSAPublicKey_out; genpkey ed25519, the
 * last 32 octets of its SubjectPublicKeyInfo).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/dnsrec.h"

#define KEY_RSA1024 \
	"MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC1frmYeqbbZNV6iuxKcLUj" \
	"hwhkqHKz4aeZqZWe8FaUF7GZ6xvy3rAGL7vr69htZHKvJQcUPOGvCBU2DO4M" \
	"pQ/RpflKE9BP51TsirYZP2EUlUqFqxDQIkPzHHLywFyObsdJ4EPEc/WEK46u" \
	"FigCJiGQc6CKjCCgqzg6YbLuQ4XKGwIDAQAB"
#define KEY_RSA2048 \
	"MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAs5PJGu1QHMB1hvHv" \
	"+drjzQALFo6RoinNvN6ZbtIDY0pgxLll9n8V1d0WfRInnshmB7H1ernx5qHO" \
	"bjQNxF5MQuGCQW7jVVp6sLhQ/y/GA6ZrQRWlcX3mfqbOP/5eGGcJzl3MAHs2" \
	"Pvq6XCGbgbiBhfZcdjJo5udmGN/vm9Hf1S+sIj8N5eqehIWF48p5mkg7TmIF" \
	"LRMdiebjsBLI6ABJO03HhqAvG8hoDGuT0buTFk7O6D5L8rpcBV7a6+WuKjKq" \
	"MlbrnfG67PwT7T7a4V5rm6ukWZVmf7tlze9waKudUmlcTM+XoOKXN9BTaO04" \
	"6Fui5gcJD/HYK2MtiZPeGKTb9QIDAQAB"
#define KEY_RSA2048_BARE \
	"MIIBCgKCAQEAwKqkt65t0v3k3ybqgS3TxI0iKyWmy+GRxGfdvWAyAp1exUyX" \
	"trY7maI7IFMpNBCqs5hzPSCNXbQNTDiXVlNUBKx17NG0Nt7XFzrYIAb/za9K" \
	"XMpMu9wuX/tDBwArvsaU78TUUzaR+OJG2MhxIbNDZd4W93YQO5SdbVo1lO04" \
	"dKoOeVkgCyAGX18+3ScVSt+NOnUj+dkrR5y2t/X3fhQx043nJW/Nwh0Iee0G" \
	"GWg9MvOKCvm6t9sgT3oirdYvB0y8AYSzmjR0FfsyvYWH2kIDMtR4IWM1dgQB" \
	"BJfcTZnRqKSDsaClqUzne+8wjYrtpYBULAHo6vzvGz3d3YsB4C4gwQIDAQAB"
#define KEY_ED25519 \
	"DX++S5zbgHpTwhYMVm13gBX7A7Svtb0vjAZMQ2TI1NQ="
#define KEY_ED25519_SPKI \
	"MCowBQYDK2VwAyEADX++S5zbgHpTwhYMVm13gBX7A7Svtb0vjAZMQ2TI1NQ="
#define KEY_RSA512 \
	"MFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBANA+rC4vvUqu7rafcx48SXEksnBM" \
	"62XAl5g3IycjAemJr7/XDR+igaUZLvA1ZiLZeJv1aSr8RGyKjklB7erd5ocC" \
	"AwEAAQ=="

/* ---- the fake DNS ---- */

struct rr {
	const char *name;
	enum dm_dns_type type;
	const char *items[16];
};

static const struct rr *zone;
static const char *tempfail_name;
static unsigned queries;

static void
fake_dns(void *ctx, const char *name, enum dm_dns_type type,
    struct dm_dns_result *out)
{
	const struct rr *rr;
	int name_seen = 0;
	size_t n;

	(void)ctx;
	queries++;
	out->rc = DM_DNS_NXDOMAIN;
	out->items = NULL;
	out->count = 0;
	if (tempfail_name != NULL && strcmp(name, tempfail_name) == 0) {
		out->rc = DM_DNS_TEMPFAIL;
		return;
	}
	for (rr = zone; rr != NULL && rr->name != NULL; rr++) {
		if (strcmp(rr->name, name) != 0)
			continue;
		name_seen = 1;
		if (rr->type != type)
			continue;
		for (n = 0; rr->items[n] != NULL; n++)
			;
		out->items = calloc(n, sizeof(char *));
		assert_non_null(out->items);
		for (out->count = 0; out->count < n; out->count++)
			out->items[out->count] = strdup(rr->items[out->count]);
		out->rc = DM_DNS_FOUND;
		return;
	}
	if (name_seen)
		out->rc = DM_DNS_NODATA;
}

/* ---- finding helpers ---- */

static const struct dm_finding *
finding(const struct dm_findings *f, const char *code)
{
	size_t i;

	for (i = 0; i < f->count; i++)
		if (strcmp(f->items[i].code, code) == 0)
			return &f->items[i];
	return NULL;
}

static unsigned
count_code(const struct dm_findings *f, const char *code)
{
	unsigned n = 0;
	size_t i;

	for (i = 0; i < f->count; i++)
		if (strcmp(f->items[i].code, code) == 0)
			n++;
	return n;
}

/* The finding code is there with severity sev. */
static void
assert_finding(const struct dm_findings *f, const char *code,
    enum dm_sev sev)
{
	const struct dm_finding *x = finding(f, code);

	if (x == NULL) {
		size_t i;

		for (i = 0; i < f->count; i++)
			print_message("have %s %s: %s\n", f->items[i].code,
			    dm_sev_name(f->items[i].sev), f->items[i].what);
		fail_msg("no finding %s", code);
	}
	assert_int_equal(x->sev, sev);
	assert_true(x->what[0] != '\0');
}

/* ---- findings ---- */

static void
test_findings(void **state)
{
	struct dm_findings f = { NULL, 0, 0 };
	char big[4000];
	int i;

	(void)state;
	assert_int_equal(dm_findings_worst(&f), DM_SEV_OK);
	for (i = 0; i < 40; i++)
		assert_int_equal(dm_findings_add(&f, DM_SEV_INFO, "x.y",
		    "example.com", NULL, "n=%d", i), 0);
	assert_int_equal(f.count, 40);
	assert_string_equal(f.items[39].what, "n=39");
	assert_string_equal(f.items[39].fix, "");
	assert_int_equal(dm_findings_worst(&f), DM_SEV_INFO);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(dm_findings_add(&f, DM_SEV_FAIL, "x.z", big, big,
	    "%s", big), 0);
	assert_int_equal(strlen(f.items[40].subject), DM_FINDING_SUBJECT - 1);
	assert_int_equal(strlen(f.items[40].fix), DM_FINDING_FIX - 1);
	assert_int_equal(strlen(f.items[40].what), DM_FINDING_WHAT - 1);
	assert_int_equal(dm_findings_worst(&f), DM_SEV_FAIL);
	assert_string_equal(dm_sev_name(DM_SEV_OK), "ok");
	assert_string_equal(dm_sev_name(DM_SEV_INFO), "info");
	assert_string_equal(dm_sev_name(DM_SEV_WARN), "warn");
	assert_string_equal(dm_sev_name(DM_SEV_FAIL), "fail");
	assert_string_equal(dm_spf_result_name(DM_SPF_PERMERROR),
	    "permerror");
	assert_string_equal(dm_spf_result_name(DM_SPF_SOFTFAIL), "softfail");
	dm_findings_free(&f);
	assert_null(f.items);
	assert_int_equal(f.count, 0);
}

/* ---- DMARC ---- */

static void
dmarc(const char *record, struct dm_dmarc_policy *p, struct dm_findings *f)
{
	memset(f, 0, sizeof(*f));
	assert_int_equal(dm_dmarc_parse(record, "example.com",
	    "_dmarc.example.com", p, f), 0);
}

static void
test_dmarc_all_valid(void **state)
{
	struct dm_dmarc_policy p;
	struct dm_findings f;

	(void)state;
	dmarc("v=DMARC1; p=reject; sp=quarantine; np=reject; pct=100; "
	    "t=n; adkim=s; aspf=r; psd=n; rua=mailto:a@example.com!10m, "
	    "mailto:b@Reports.Example.NET; ruf=mailto:f@example.com!500; "
	    "fo=0:1:d:s; ri=3600; rf=afrf;;", &p, &f);
	assert_int_equal(p.valid, 1);
	assert_string_equal(p.p, "reject");
	assert_string_equal(p.sp, "quarantine");
	assert_string_equal(p.np, "reject");
	assert_int_equal(p.pct, 100);
	assert_int_equal(p.t, 'n');
	assert_int_equal(p.adkim, 's');
	assert_int_equal(p.aspf, 'r');
	assert_int_equal(p.psd, 'n');
	assert_string_equal(p.fo, "0:1:d:s");
	assert_int_equal(p.ri, 3600);
	assert_int_equal(p.nrua, 2);
	assert_string_equal(p.rua[0].scheme, "mailto");
	assert_string_equal(p.rua[0].address, "a@example.com");
	assert_string_equal(p.rua[0].domain, "example.com");
	assert_true(p.rua[0].max_size == 10ULL * 1024 * 1024);
	assert_string_equal(p.rua[1].domain, "reports.example.net");
	assert_true(p.rua[1].max_size == 0);
	assert_int_equal(p.nruf, 1);
	assert_true(p.ruf[0].max_size == 500);
	assert_int_equal(f.count, 1);
	assert_finding(&f, "dmarc.ok", DM_SEV_OK);
	assert_int_equal(dm_findings_worst(&f), DM_SEV_OK);
	dm_findings_free(&f);

	/* Defaults, names in any case, values trimmed. */
	dmarc("V=DMARC1;P = Reject ; RUA=mailto:d@example.com", &p, &f);
	assert_int_equal(p.valid, 1);
	assert_string_equal(p.p, "reject");
	assert_int_equal(p.pct, -1);
	assert_int_equal(p.ri, -1);
	assert_int_equal(p.adkim, 'r');
	assert_int_equal(p.aspf, 'r');
	assert_int_equal(p.t, 0);
	assert_string_equal(p.fo, "0");
	assert_int_equal(dm_findings_worst(&f), DM_SEV_OK);
	dm_findings_free(&f);

	/* Size suffixes k, g, t; t=y is information. */
	dmarc("v=DMARC1; p=quarantine; t=y; rua=mailto:a@example.com!2k,"
	    "mailto:b@example.com!1g,mailto:c@example.com!1T", &p, &f);
	assert_true(p.rua[0].max_size == 2048);
	assert_true(p.rua[1].max_size == 1024ULL * 1024 * 1024);
	assert_true(p.rua[2].max_size == 1024ULL * 1024 * 1024 * 1024);
	assert_int_equal(p.t, 'y');
	assert_finding(&f, "dmarc.testing", DM_SEV_INFO);
	assert_int_equal(dm_findings_worst(&f), DM_SEV_INFO);
	dm_findings_free(&f);
}

/* One bad tag: its code at sev, and the fix the whole record. */
static void
dmarc_bad(const char *record, const char *code, enum dm_sev sev,
    const char *fix)
{
	struct dm_dmarc_policy p;
	struct dm_findings f;

	dmarc(record, &p, &f);
	assert_finding(&f, code, sev);
	if (fix != NULL)
		assert_string_equal(finding(&f, code)->fix, fix);
	assert_null(finding(&f, "dmarc.ok"));
	dm_findings_free(&f);
}

#define RUA "rua=mailto:r@example.com"
#define FIXED(tags) "_dmarc.example.com. TXT \"v=DMARC1; " tags "\""

static void
test_dmarc_invalid(void **state)
{
	struct dm_dmarc_policy p;
	struct dm_findings f;

	(void)state;
	dmarc_bad("v=DMARC1; p=reject; sp=maybe; " RUA, "dmarc.sp",
	    DM_SEV_FAIL, FIXED("p=reject; " RUA));
	dmarc_bad("v=DMARC1; p=reject; np=x; " RUA, "dmarc.np", DM_SEV_FAIL,
	    FIXED("p=reject; " RUA));
	dmarc_bad("v=DMARC1; p=reject; pct=101; " RUA, "dmarc.pct",
	    DM_SEV_FAIL, FIXED("p=reject; " RUA));
	dmarc_bad("v=DMARC1; p=reject; pct=ten; " RUA, "dmarc.pct",
	    DM_SEV_FAIL, NULL);
	dmarc_bad("v=DMARC1; p=reject; t=maybe; " RUA, "dmarc.t",
	    DM_SEV_FAIL, FIXED("p=reject; " RUA));
	dmarc_bad("v=DMARC1; p=reject; adkim=x; " RUA, "dmarc.adkim",
	    DM_SEV_FAIL, FIXED("p=reject; " RUA));
	dmarc_bad("v=DMARC1; p=reject; aspf=relaxed; " RUA, "dmarc.aspf",
	    DM_SEV_FAIL, NULL);
	dmarc_bad("v=DMARC1; p=reject; psd=x; " RUA, "dmarc.psd",
	    DM_SEV_FAIL, NULL);
	dmarc_bad("v=DMARC1; p=reject; fo=2; " RUA, "dmarc.fo", DM_SEV_FAIL,
	    FIXED("p=reject; " RUA));
	dmarc_bad("v=DMARC1; p=reject; fo=0:x; " RUA, "dmarc.fo",
	    DM_SEV_FAIL, NULL);
	dmarc_bad("v=DMARC1; p=reject; ri=1h; " RUA, "dmarc.ri", DM_SEV_FAIL,
	    NULL);
	dmarc_bad("v=DMARC1; p=reject; rf=iodef; " RUA, "dmarc.rf",
	    DM_SEV_FAIL, NULL);
	dmarc_bad("v=DMARC1; p=reject; " RUA "; foo=bar", "dmarc.unknown_tag",
	    DM_SEV_WARN, FIXED("p=reject; " RUA));
	dmarc_bad("v=DMARC1; p=reject; " RUA "; p=none", "dmarc.duplicate",
	    DM_SEV_FAIL, FIXED("p=reject; " RUA));
	dmarc_bad("v=DMARC1; p=reject; garbage; " RUA, "dmarc.syntax",
	    DM_SEV_FAIL, FIXED("p=reject; " RUA));
	/* URIs: not a URI, a bad size, no @, another scheme. */
	dmarc_bad("v=DMARC1; p=reject; rua=reports@example.com",
	    "dmarc.bad_uri", DM_SEV_FAIL,
	    FIXED("p=reject; rua=mailto:dmarc-reports@example.com"));
	dmarc_bad("v=DMARC1; p=reject; rua=mailto:a@example.com!10x",
	    "dmarc.bad_uri", DM_SEV_FAIL, NULL);
	dmarc_bad("v=DMARC1; p=reject; rua=mailto:example.com",
	    "dmarc.bad_uri", DM_SEV_FAIL, NULL);
	dmarc_bad("v=DMARC1; p=reject; " RUA ",https://example.com/r",
	    "dmarc.uri_scheme", DM_SEV_WARN, NULL);
	dmarc_bad("v=DMARC1; p=reject; rua=mailto:a@example.com,"
	    "mailto:a@example.com,mailto:a@example.com,mailto:a@example.com,"
	    "mailto:a@example.com,mailto:a@example.com,mailto:a@example.com,"
	    "mailto:a@example.com,mailto:a@example.com", "dmarc.too_many_uris",
	    DM_SEV_WARN, NULL);

	/* pct under 100: information, honoured by RFC 7489 receivers. */
	dmarc("v=DMARC1; p=quarantine; pct=25; " RUA, &p, &f);
	assert_int_equal(p.pct, 25);
	assert_finding(&f, "dmarc.pct", DM_SEV_INFO);
	assert_int_equal(dm_findings_worst(&f), DM_SEV_INFO);
	dm_findings_free(&f);

	/* v not first, or not there: no record at all. */
	dmarc("p=reject; v=DMARC1; " RUA, &p, &f);
	assert_int_equal(p.valid, 0);
	assert_finding(&f, "dmarc.version", DM_SEV_FAIL);
	assert_int_equal(f.count, 1);
	dm_findings_free(&f);
	dmarc("v=DMARC2; p=reject", &p, &f);
	assert_int_equal(p.valid, 0);
	assert_finding(&f, "dmarc.version", DM_SEV_FAIL);
	dm_findings_free(&f);

	/* p= missing or invalid with rua: p=none, a failure, the fix. */
	dmarc("v=DMARC1; " RUA, &p, &f);
	assert_int_equal(p.valid, 1);
	assert_string_equal(p.p, "none");
	assert_finding(&f, "dmarc.p", DM_SEV_FAIL);
	assert_string_equal(finding(&f, "dmarc.p")->fix,
	    FIXED("p=none; " RUA));
	dm_findings_free(&f);
	dmarc("v=DMARC1; p=block; " RUA, &p, &f);
	assert_int_equal(p.valid, 1);
	assert_string_equal(p.p, "none");
	assert_finding(&f, "dmarc.p", DM_SEV_FAIL);
	dm_findings_free(&f);
	/* ... without rua the record is nothing. */
	dmarc("v=DMARC1; sp=reject", &p, &f);
	assert_int_equal(p.valid, 0);
	assert_finding(&f, "dmarc.p", DM_SEV_FAIL);
	assert_string_equal(finding(&f, "dmarc.p")->fix,
	    FIXED("p=none; sp=reject; "
	    "rua=mailto:dmarc-reports@example.com"));
	dm_findings_free(&f);

	/* p=none without rua: a warning with the record to publish. */
	dmarc("v=DMARC1; p=none", &p, &f);
	assert_int_equal(p.valid, 1);
	assert_finding(&f, "dmarc.no_rua", DM_SEV_WARN);
	assert_string_equal(finding(&f, "dmarc.no_rua")->fix,
	    "_dmarc.example.com. TXT \"v=DMARC1; p=none; "
	    "rua=mailto:dmarc-reports@example.com\"");
	assert_string_equal(finding(&f, "dmarc.no_rua")->subject,
	    "_dmarc.example.com");
	assert_int_equal(f.count, 1);
	dm_findings_free(&f);
	dmarc("v=DMARC1; p=reject", &p, &f);
	assert_finding(&f, "dmarc.no_rua", DM_SEV_INFO);
	assert_int_equal(dm_findings_worst(&f), DM_SEV_INFO);
	dm_findings_free(&f);
}

static void
test_dmarc_external(void **state)
{
	char name[256];

	(void)state;
	assert_int_equal(dm_dmarc_external("example.com",
	    "reports.example.net", name, sizeof(name)), 0);
	assert_string_equal(name,
	    "example.com._report._dmarc.reports.example.net");
	assert_int_equal(dm_dmarc_external("mail.example.co.uk",
	    "example.co.uk", name, sizeof(name)), 1);
	assert_int_equal(dm_dmarc_external("a.co.uk", "b.co.uk", name,
	    sizeof(name)), 0);
	assert_string_equal(name, "a.co.uk._report._dmarc.b.co.uk");
	assert_int_equal(dm_dmarc_external("example.com", "example.net",
	    name, 10), -1);
}

/* ---- SPF ---- */

static const struct rr spf_zone[] = {
	{ "nets.example", DM_DNS_TXT, { "v=spf1 ip4:192.0.2.0/24 "
	    "ip6:2001:db8::/32 ip4:203.0.113.7 ~all", "google-site-"
	    "verification=abc" } },
	{ "strict.example", DM_DNS_TXT, { "v=spf1 ip4:192.0.2.0/25 -all" } },
	{ "dual.example", DM_DNS_TXT, { "v=spf1 a/24//64 mx/28 -all" } },
	{ "dual.example", DM_DNS_A, { "192.0.2.10" } },
	{ "dual.example", DM_DNS_AAAA, { "2001:db8:1::1" } },
	{ "dual.example", DM_DNS_MX, { "mx1.dual.example" } },
	{ "mx1.dual.example", DM_DNS_A, { "198.51.100.20" } },
	{ "ex.example", DM_DNS_TXT, { "v=spf1 exists:%{i}.allow.example "
	    "-all" } },
	{ "192.0.2.1.allow.example", DM_DNS_A, { "127.0.0.2" } },
	{ "redir.example", DM_DNS_TXT, { "v=spf1 redirect=_spf.example" } },
	{ "_spf.example", DM_DNS_TXT, { "v=spf1 ip4:192.0.2.0/24 -all" } },
	{ "lim10.example", DM_DNS_TXT, { "v=spf1 include:i1.example "
	    "include:i2.example include:i3.example include:i4.example "
	    "include:i5.example include:i6.example include:i7.example "
	    "include:i8.example include:i9.example include:i10.example "
	    "-all" } },
	{ "lim11.example", DM_DNS_TXT, { "v=spf1 include:i1.example "
	    "include:i2.example include:i3.example include:i4.example "
	    "include:i5.example include:i6.example include:i7.example "
	    "include:i8.example include:i9.example include:i10.example "
	    "include:i11.example -all" } },
	{ "deep.example", DM_DNS_TXT, { "v=spf1 include:lim10.example "
	    "ip4:10.9.9.9 -all" } },
	{ "i1.example", DM_DNS_TXT, { "v=spf1 ip4:10.0.0.1 -all" } },
	{ "i2.example", DM_DNS_TXT, { "v=spf1 ip4:10.0.0.2 -all" } },
	{ "i3.example", DM_DNS_TXT, { "v=spf1 ip4:10.0.0.3 -all" } },
	{ "i4.example", DM_DNS_TXT, { "v=spf1 ip4:10.0.0.4 -all" } },
	{ "i5.example", DM_DNS_TXT, { "v=spf1 ip4:10.0.0.5 -all" } },
	{ "i6.example", DM_DNS_TXT, { "v=spf1 ip4:10.0.0.6 -all" } },
	{ "i7.example", DM_DNS_TXT, { "v=spf1 ip4:10.0.0.7 -all" } },
	{ "i8.example", DM_DNS_TXT, { "v=spf1 ip4:10.0.0.8 -all" } },
	{ "i9.example", DM_DNS_TXT, { "v=spf1 ip4:10.0.0.9 -all" } },
	{ "i10.example", DM_DNS_TXT, { "v=spf1 ip4:10.0.0.10 -all" } },
	{ "i11.example", DM_DNS_TXT, { "v=spf1 ip4:10.0.0.11 -all" } },
	{ "void2.example", DM_DNS_TXT, { "v=spf1 a:v1.example "
	    "mx:v2.example ip4:192.0.2.1 -all" } },
	{ "void3.example", DM_DNS_TXT, { "v=spf1 a:v1.example "
	    "mx:v2.example exists:v3.example ip4:192.0.2.1 -all" } },
	{ "v2.example", DM_DNS_A, { "192.0.2.99" } },	/* no MX: NODATA */
	{ "loopa.example", DM_DNS_TXT, { "v=spf1 include:loopb.example "
	    "-all" } },
	{ "loopb.example", DM_DNS_TXT, { "v=spf1 include:loopa.example "
	    "~all" } },
	{ "self.example", DM_DNS_TXT, { "v=spf1 include:self.example "
	    "-all" } },
	{ "multi.example", DM_DNS_TXT, { "v=spf1 ip4:192.0.2.1 -all",
	    "V=SPF1 include:_spf.example ip4:192.0.2.1 ~all",
	    "v=spf10 nothing" } },
	{ "incnone.example", DM_DNS_TXT, { "v=spf1 include:nospf.example "
	    "ip4:192.0.2.1 -all" } },
	{ "nospf.example", DM_DNS_TXT, { "hello world" } },
	{ "plus.example", DM_DNS_TXT, { "v=spf1 ip4:192.0.2.1 +all" } },
	{ "qall.example", DM_DNS_TXT, { "v=spf1 ip4:192.0.2.1 ?all" } },
	{ "noall.example", DM_DNS_TXT, { "v=spf1 ip4:192.0.2.1" } },
	{ "ptr.example", DM_DNS_TXT, { "v=spf1 ptr ip4:192.0.2.1 -all" } },
	{ "1.2.0.192.in-addr.arpa", DM_DNS_PTR, { "mail.ptr.example" } },
	{ "mail.ptr.example", DM_DNS_A, { "192.0.2.1" } },
	{ "ptr2.example", DM_DNS_TXT, { "v=spf1 ptr:ptr.example -all" } },
	{ "spf2.example", DM_DNS_TXT, { "spf2.0/pra ip4:192.0.2.1 -all",
	    "v=spf1 ip4:192.0.2.1 -all" } },
	{ "long.example", DM_DNS_TXT, { "v=spf1 "
	    "ip4:192.0.2.1 ip4:192.0.2.2 ip4:192.0.2.3 ip4:192.0.2.4 "
	    "ip4:192.0.2.5 ip4:192.0.2.6 ip4:192.0.2.7 ip4:192.0.2.8 "
	    "ip4:192.0.2.9 ip4:192.0.2.10 ip4:192.0.2.11 ip4:192.0.2.12 "
	    "ip4:192.0.2.13 ip4:192.0.2.14 ip4:192.0.2.15 ip4:192.0.2.16 "
	    "ip4:192.0.2.17 ip4:192.0.2.18 ip4:192.0.2.19 ip4:192.0.2.20 "
	    "ip4:192.0.2.21 ip4:192.0.2.22 ip4:192.0.2.23 ip4:192.0.2.24 "
	    "ip4:192.0.2.25 ip4:192.0.2.26 ip4:192.0.2.27 ip4:192.0.2.28 "
	    "ip4:192.0.2.29 ip4:192.0.2.30 ip4:192.0.2.31 ip4:192.0.2.32 "
	    "ip4:192.0.2.33 ip4:192.0.2.34 ip4:192.0.2.35 -all" } },
	{ "syntax.example", DM_DNS_TXT, { "v=spf1 ip4:192.0.2.1 foo:bar "
	    "-all" } },
	{ "badcidr.example", DM_DNS_TXT, { "v=spf1 ip4:192.0.2.0/33 "
	    "-all" } },
	{ "tmp.example", DM_DNS_TXT, { "v=spf1 include:down.example "
	    "-all" } },
	{ "manymx.example", DM_DNS_TXT, { "v=spf1 mx -all" } },
	{ "manymx.example", DM_DNS_MX, { "m1.example", "m2.example",
	    "m3.example", "m4.example", "m5.example", "m6.example",
	    "m7.example", "m8.example", "m9.example", "m10.example",
	    "m11.example" } },
	{ "mods.example", DM_DNS_TXT, { "v=spf1 ip4:192.0.2.1 "
	    "exp=explain.example foo=bar -all" } },
	{ "nospfhere.example", DM_DNS_A, { "192.0.2.1" } },
	{ "onlyinc.example", DM_DNS_TXT, { "v=spf1 include:nospfhere.example "
	    "-all" } },
	{ NULL, 0, { NULL } }
};

/* check_host() of ip (NULL: walk) at domain. */
static enum dm_spf_verdict
spf(const char *domain, const char *ip, struct dm_spf_walk *w,
    struct dm_findings *f)
{
	memset(f, 0, sizeof(*f));
	zone = spf_zone;
	assert_int_equal(dm_spf_check(domain, ip, fake_dns, NULL, w, f), 0);
	return w->result;
}

static void
assert_spf(const char *domain, const char *ip, enum dm_spf_verdict want)
{
	struct dm_spf_walk w;
	struct dm_findings f;
	enum dm_spf_verdict got = spf(domain, ip, &w, &f);

	if (got != want)
		fail_msg("%s for %s: %s, want %s (%s)", domain,
		    ip ? ip : "walk", dm_spf_result_name(got),
		    dm_spf_result_name(want), w.error);
	dm_findings_free(&f);
}

static void
test_spf_ip(void **state)
{
	struct dm_spf_walk w;
	struct dm_findings f;

	(void)state;
	assert_spf("nets.example", "192.0.2.77", DM_SPF_PASS);
	assert_spf("nets.example", "192.0.3.1", DM_SPF_SOFTFAIL);
	assert_spf("nets.example", "203.0.113.7", DM_SPF_PASS);
	assert_spf("nets.example", "203.0.113.8", DM_SPF_SOFTFAIL);
	assert_spf("nets.example", "2001:db8:ffff::1", DM_SPF_PASS);
	assert_spf("nets.example", "2001:db9::1", DM_SPF_SOFTFAIL);
	/* IPv4-mapped IPv6 is checked as IPv4 (RFC 7208 5). */
	assert_spf("nets.example", "::ffff:192.0.2.5", DM_SPF_PASS);
	assert_spf("nets.example", "::ffff:198.51.100.5", DM_SPF_SOFTFAIL);
	assert_spf("strict.example", "192.0.2.127", DM_SPF_PASS);
	assert_spf("strict.example", "192.0.2.128", DM_SPF_FAIL);
	assert_spf("strict.example", "not-an-ip", DM_SPF_PERMERROR);

	/* a/24//64 and mx/28 */
	assert_spf("dual.example", "192.0.2.200", DM_SPF_PASS);
	assert_spf("dual.example", "192.0.3.1", DM_SPF_FAIL);
	assert_spf("dual.example", "2001:db8:1::ffff", DM_SPF_PASS);
	assert_spf("dual.example", "2001:db8:1:1::1", DM_SPF_FAIL);
	assert_spf("dual.example", "198.51.100.30", DM_SPF_PASS);
	assert_spf("dual.example", "198.51.100.40", DM_SPF_FAIL);

	/* exists with %{i} */
	assert_spf("ex.example", "192.0.2.1", DM_SPF_PASS);
	assert_spf("ex.example", "192.0.2.2", DM_SPF_FAIL);
	spf("ex.example", NULL, &w, &f);
	assert_finding(&f, "spf.macros", DM_SEV_INFO);
	assert_int_equal(w.lookups, 1);
	assert_int_equal(w.result, DM_SPF_NEUTRAL);
	dm_findings_free(&f);

	/* redirect= */
	assert_spf("redir.example", "192.0.2.9", DM_SPF_PASS);
	assert_spf("redir.example", "10.1.1.1", DM_SPF_FAIL);
	spf("redir.example", NULL, &w, &f);
	assert_int_equal(w.redirect, 1);
	assert_string_equal(w.all, "");
	assert_int_equal(w.lookups, 1);
	assert_int_equal(w.records, 2);
	assert_null(finding(&f, "spf.no_all"));
	assert_finding(&f, "spf.ok", DM_SEV_OK);
	dm_findings_free(&f);

	/* ptr matches through the validated name. */
	assert_spf("ptr2.example", "192.0.2.1", DM_SPF_PASS);
	assert_spf("ptr2.example", "192.0.2.2", DM_SPF_FAIL);
	/* exp= and unknown modifiers are fine. */
	assert_spf("mods.example", "192.0.2.1", DM_SPF_PASS);
	spf("mods.example", NULL, &w, &f);
	assert_int_equal(f.count, 1);
	assert_finding(&f, "spf.ok", DM_SEV_OK);
	assert_string_equal(w.all, "-all");
	dm_findings_free(&f);
}

static void
test_spf_limits(void **state)
{
	struct dm_spf_walk w;
	struct dm_findings f;
	const struct dm_finding *x;

	(void)state;
	/* 10 DNS-querying terms: fine. */
	spf("lim10.example", NULL, &w, &f);
	assert_int_equal(w.result, DM_SPF_NEUTRAL);
	assert_int_equal(w.lookups, 10);
	assert_int_equal(w.records, 11);
	assert_null(finding(&f, "spf.lookups"));
	assert_finding(&f, "spf.ok", DM_SEV_OK);
	dm_findings_free(&f);
	assert_spf("lim10.example", "10.0.0.10", DM_SPF_PASS);
	assert_spf("lim10.example", "10.0.0.77", DM_SPF_FAIL);

	/* 11: permerror, with what each include costs. */
	spf("lim11.example", NULL, &w, &f);
	assert_int_equal(w.result, DM_SPF_PERMERROR);
	assert_int_equal(w.lookups, 11);
	assert_finding(&f, "spf.lookups", DM_SEV_FAIL);
	x = finding(&f, "spf.lookups");
	assert_non_null(strstr(x->what, "11 DNS-querying terms"));
	assert_non_null(strstr(x->what, "include:i11.example 1"));
	assert_string_equal(x->subject, "lim11.example");
	assert_null(finding(&f, "spf.ok"));
	dm_findings_free(&f);
	assert_spf("lim11.example", "10.0.0.1", DM_SPF_PASS);
	assert_spf("lim11.example", "10.0.0.11", DM_SPF_PERMERROR);

	/* One include costing 11 (itself and the 10 below). */
	spf("deep.example", NULL, &w, &f);
	assert_int_equal(w.lookups, 11);
	assert_int_equal(w.result, DM_SPF_PERMERROR);
	assert_non_null(strstr(finding(&f, "spf.lookups")->what,
	    "include:lim10.example 11"));
	dm_findings_free(&f);

	/* Void lookups: 2 are allowed, a third is permerror. */
	spf("void2.example", NULL, &w, &f);
	assert_int_equal(w.void_lookups, 2);
	assert_int_equal(w.result, DM_SPF_NEUTRAL);
	assert_null(finding(&f, "spf.void"));
	dm_findings_free(&f);
	assert_spf("void2.example", "192.0.2.1", DM_SPF_PASS);
	spf("void3.example", NULL, &w, &f);
	assert_int_equal(w.void_lookups, 3);
	assert_int_equal(w.result, DM_SPF_PERMERROR);
	assert_finding(&f, "spf.void", DM_SEV_FAIL);
	assert_non_null(strstr(finding(&f, "spf.void")->what,
	    "v3.example"));
	dm_findings_free(&f);
	assert_spf("void3.example", "192.0.2.1", DM_SPF_PERMERROR);

	/* More than 10 MX names: permerror. */
	spf("manymx.example", NULL, &w, &f);
	assert_int_equal(w.result, DM_SPF_PERMERROR);
	assert_finding(&f, "spf.mx_names", DM_SEV_FAIL);
	dm_findings_free(&f);
	assert_spf("manymx.example", "192.0.2.1", DM_SPF_PERMERROR);
}

static void
test_spf_records(void **state)
{
	struct dm_spf_walk w;
	struct dm_findings f;

	(void)state;
	/* Include loops, and a record including itself. */
	spf("loopa.example", NULL, &w, &f);
	assert_int_equal(w.result, DM_SPF_PERMERROR);
	assert_finding(&f, "spf.loop", DM_SEV_FAIL);
	assert_string_equal(finding(&f, "spf.loop")->subject,
	    "loopb.example");
	dm_findings_free(&f);
	assert_spf("loopa.example", "192.0.2.1", DM_SPF_PERMERROR);
	spf("self.example", NULL, &w, &f);
	assert_finding(&f, "spf.loop", DM_SEV_FAIL);
	dm_findings_free(&f);

	/* Two records: permerror, and the one merged record. */
	spf("multi.example", NULL, &w, &f);
	assert_int_equal(w.result, DM_SPF_PERMERROR);
	assert_finding(&f, "spf.multiple", DM_SEV_FAIL);
	assert_string_equal(finding(&f, "spf.multiple")->fix,
	    "multi.example. TXT \"v=spf1 ip4:192.0.2.1 "
	    "include:_spf.example -all\"");
	dm_findings_free(&f);
	assert_spf("multi.example", "192.0.2.1", DM_SPF_PERMERROR);

	/* Include of a name without SPF. */
	spf("incnone.example", NULL, &w, &f);
	assert_int_equal(w.result, DM_SPF_PERMERROR);
	assert_finding(&f, "spf.include_none", DM_SEV_FAIL);
	assert_string_equal(finding(&f, "spf.include_none")->fix,
	    "incnone.example. TXT \"v=spf1 ip4:192.0.2.1 -all\"");
	dm_findings_free(&f);
	assert_spf("incnone.example", "192.0.2.1", DM_SPF_PERMERROR);

	/* No record at all. */
	spf("nospfhere.example", NULL, &w, &f);
	assert_int_equal(w.result, DM_SPF_NONE);
	assert_finding(&f, "spf.none", DM_SEV_FAIL);
	dm_findings_free(&f);
	assert_spf("nxdomain.example", "192.0.2.1", DM_SPF_NONE);

	/* +all, ?all, no all, each with the record to publish. */
	spf("plus.example", NULL, &w, &f);
	assert_finding(&f, "spf.plus_all", DM_SEV_FAIL);
	assert_string_equal(finding(&f, "spf.plus_all")->fix,
	    "plus.example. TXT \"v=spf1 ip4:192.0.2.1 ~all\"");
	assert_string_equal(w.all, "+all");
	dm_findings_free(&f);
	assert_spf("plus.example", "198.51.100.1", DM_SPF_PASS);
	spf("qall.example", NULL, &w, &f);
	assert_finding(&f, "spf.neutral_all", DM_SEV_WARN);
	assert_string_equal(w.all, "?all");
	dm_findings_free(&f);
	assert_spf("qall.example", "198.51.100.1", DM_SPF_NEUTRAL);
	spf("noall.example", NULL, &w, &f);
	assert_finding(&f, "spf.no_all", DM_SEV_WARN);
	assert_string_equal(finding(&f, "spf.no_all")->fix,
	    "noall.example. TXT \"v=spf1 ip4:192.0.2.1 ~all\"");
	assert_string_equal(w.all, "");
	dm_findings_free(&f);
	assert_spf("noall.example", "198.51.100.1", DM_SPF_NEUTRAL);

	/* ptr: deprecated. */
	spf("ptr.example", NULL, &w, &f);
	assert_finding(&f, "spf.ptr", DM_SEV_WARN);
	assert_string_equal(finding(&f, "spf.ptr")->fix,
	    "ptr.example. TXT \"v=spf1 ip4:192.0.2.1 -all\"");
	assert_int_equal(w.lookups, 1);
	dm_findings_free(&f);

	/* spf2.0 beside v=spf1: information. */
	spf("spf2.example", NULL, &w, &f);
	assert_finding(&f, "spf.spf2", DM_SEV_INFO);
	assert_finding(&f, "spf.ok", DM_SEV_OK);
	assert_int_equal(w.result, DM_SPF_NEUTRAL);
	dm_findings_free(&f);

	/* Over 450 octets: information. */
	spf("long.example", NULL, &w, &f);
	assert_finding(&f, "spf.length", DM_SEV_INFO);
	assert_finding(&f, "spf.ok", DM_SEV_OK);
	dm_findings_free(&f);

	/* Syntax. */
	spf("syntax.example", NULL, &w, &f);
	assert_int_equal(w.result, DM_SPF_PERMERROR);
	assert_finding(&f, "spf.syntax", DM_SEV_FAIL);
	assert_non_null(strstr(finding(&f, "spf.syntax")->what, "foo:bar"));
	dm_findings_free(&f);
	assert_spf("badcidr.example", "192.0.2.1", DM_SPF_PERMERROR);

	/* A temporary DNS failure in an include. */
	tempfail_name = "down.example";
	spf("tmp.example", NULL, &w, &f);
	assert_int_equal(w.result, DM_SPF_TEMPERROR);
	assert_finding(&f, "spf.dns", DM_SEV_WARN);
	dm_findings_free(&f);
	assert_spf("tmp.example", "192.0.2.1", DM_SPF_TEMPERROR);
	tempfail_name = "tmp.example";
	assert_spf("tmp.example", "192.0.2.1", DM_SPF_TEMPERROR);
	tempfail_name = NULL;
}

/* ---- DKIM ---- */

static void
dkim1(const char *record, struct dm_dkim_key *k, struct dm_findings *f)
{
	const char *records[1] = { record };

	memset(f, 0, sizeof(*f));
	assert_int_equal(dm_dkim_parse(records, 1,
	    "s1._domainkey.example.com", k, f), 0);
}

static void
test_dkim_keys(void **state)
{
	struct dm_dkim_key k;
	struct dm_findings f;
	char folded[1024];

	(void)state;
	dkim1("v=DKIM1; k=rsa; p=" KEY_RSA2048, &k, &f);
	assert_int_equal(k.valid, 1);
	assert_int_equal(k.bits, 2048);
	assert_string_equal(k.k, "rsa");
	assert_int_equal(f.count, 1);
	assert_finding(&f, "dkim.ok", DM_SEV_OK);
	dm_findings_free(&f);

	/* A bare RSAPublicKey, no v=, k defaulted. */
	dkim1("p=" KEY_RSA2048_BARE, &k, &f);
	assert_int_equal(k.valid, 1);
	assert_int_equal(k.bits, 2048);
	assert_int_equal(dm_findings_worst(&f), DM_SEV_OK);
	dm_findings_free(&f);

	dkim1("v=DKIM1; p=" KEY_RSA1024, &k, &f);
	assert_int_equal(k.bits, 1024);
	assert_finding(&f, "dkim.short_key", DM_SEV_WARN);
	assert_null(finding(&f, "dkim.ok"));
	dm_findings_free(&f);

	dkim1("v=DKIM1; p=" KEY_RSA512, &k, &f);
	assert_int_equal(k.bits, 512);
	assert_finding(&f, "dkim.short_key", DM_SEV_FAIL);
	dm_findings_free(&f);

	/* White space inside p= (folded in the zone) is taken out. */
	snprintf(folded, sizeof(folded), "v=DKIM1; p=%.44s \t\r\n %s",
	    KEY_RSA2048, KEY_RSA2048 + 44);
	dkim1(folded, &k, &f);
	assert_int_equal(k.bits, 2048);
	dm_findings_free(&f);

	dkim1("v=DKIM1; k=ed25519; p=" KEY_ED25519, &k, &f);
	assert_int_equal(k.valid, 1);
	assert_int_equal(k.bits, 256);
	assert_string_equal(k.k, "ed25519");
	assert_finding(&f, "dkim.ok", DM_SEV_OK);
	dm_findings_free(&f);

	/* Ed25519 wants the raw 32 octets, not a SubjectPublicKeyInfo. */
	dkim1("v=DKIM1; k=ed25519; p=" KEY_ED25519_SPKI, &k, &f);
	assert_int_equal(k.valid, 0);
	assert_finding(&f, "dkim.key", DM_SEV_FAIL);
	dm_findings_free(&f);
	dkim1("v=DKIM1; k=rsa; p=" KEY_ED25519_SPKI, &k, &f);
	assert_finding(&f, "dkim.key", DM_SEV_FAIL);
	assert_non_null(strstr(finding(&f, "dkim.key")->what, "Ed25519"));
	dm_findings_free(&f);
	dkim1("v=DKIM1; k=rsa; p=" KEY_ED25519, &k, &f);
	assert_finding(&f, "dkim.key", DM_SEV_FAIL);
	dm_findings_free(&f);
}

static void
test_dkim_broken(void **state)
{
	struct dm_dkim_key k;
	struct dm_findings f;
	char truncated[256];
	const char *two[2];
	char want[2048];

	(void)state;
	dkim1("v=DKIM1; k=rsa; p=", &k, &f);
	assert_int_equal(k.revoked, 1);
	assert_int_equal(k.valid, 0);
	assert_finding(&f, "dkim.revoked", DM_SEV_FAIL);
	dm_findings_free(&f);

	/* The first 200 characters of a 2048-bit key: truncated DER. */
	snprintf(truncated, sizeof(truncated), "v=DKIM1; p=%.200s",
	    KEY_RSA2048);
	dkim1(truncated, &k, &f);
	assert_int_equal(k.valid, 0);
	assert_finding(&f, "dkim.key", DM_SEV_FAIL);
	assert_non_null(strstr(finding(&f, "dkim.key")->what, "truncated"));
	dm_findings_free(&f);
	/* Base64 of something that is no DER. */
	dkim1("v=DKIM1; p=aGVsbG8gd29ybGQ=", &k, &f);
	assert_finding(&f, "dkim.key", DM_SEV_FAIL);
	dm_findings_free(&f);
	dkim1("v=DKIM1; p=MIIB$IjAN", &k, &f);
	assert_finding(&f, "dkim.base64", DM_SEV_FAIL);
	dm_findings_free(&f);
	dkim1("v=DKIM1; p=MIIBI", &k, &f);
	assert_finding(&f, "dkim.base64", DM_SEV_FAIL);
	dm_findings_free(&f);

	dkim1("v=DKIM1; t=y; p=" KEY_RSA2048, &k, &f);
	assert_int_equal(k.testing, 1);
	assert_finding(&f, "dkim.testing", DM_SEV_WARN);
	dm_findings_free(&f);
	dkim1("v=DKIM1; t=s; h=sha256; s=email; p=" KEY_RSA2048, &k, &f);
	assert_int_equal(k.testing, 0);
	assert_string_equal(k.h, "sha256");
	assert_finding(&f, "dkim.ok", DM_SEV_OK);
	dm_findings_free(&f);
	dkim1("k=rsa; v=DKIM1; p=" KEY_RSA2048, &k, &f);
	assert_int_equal(k.valid, 0);
	assert_finding(&f, "dkim.version", DM_SEV_FAIL);
	dm_findings_free(&f);
	dkim1("v=DKIM1; h=sha1; p=" KEY_RSA2048, &k, &f);
	assert_finding(&f, "dkim.h", DM_SEV_FAIL);
	dm_findings_free(&f);
	dkim1("v=DKIM1; s=tlsrpt; p=" KEY_RSA2048, &k, &f);
	assert_finding(&f, "dkim.s", DM_SEV_FAIL);
	dm_findings_free(&f);
	dkim1("v=DKIM1; k=dsa; p=" KEY_RSA2048, &k, &f);
	assert_finding(&f, "dkim.k", DM_SEV_FAIL);
	assert_int_equal(k.valid, 0);
	dm_findings_free(&f);
	dkim1("v=DKIM1; k=rsa", &k, &f);
	assert_finding(&f, "dkim.no_key", DM_SEV_FAIL);
	dm_findings_free(&f);
	dkim1("v=DKIM1; p=" KEY_RSA2048 "; p=" KEY_RSA1024, &k, &f);
	assert_finding(&f, "dkim.syntax", DM_SEV_FAIL);
	dm_findings_free(&f);

	memset(&f, 0, sizeof(f));
	assert_int_equal(dm_dkim_parse(NULL, 0, "s1._domainkey.example.com",
	    &k, &f), 0);
	assert_finding(&f, "dkim.none", DM_SEV_FAIL);
	dm_findings_free(&f);

	/* Two records: a failure; the fix is one record of 255-octet
	 * strings of the good key. */
	two[0] = "v=DKIM1; p=";
	two[1] = "v=DKIM1; k=rsa; p=" KEY_RSA2048;
	memset(&f, 0, sizeof(f));
	assert_int_equal(dm_dkim_parse(two, 2, "s1._domainkey.example.com",
	    &k, &f), 0);
	assert_finding(&f, "dkim.multiple_records", DM_SEV_FAIL);
	assert_int_equal(k.bits, 2048);
	assert_int_equal(k.valid, 0);
	snprintf(want, sizeof(want), "s1._domainkey.example.com. TXT "
	    "\"%.255s\" \"%s\"", two[1], two[1] + 255);
	assert_string_equal(finding(&f, "dkim.multiple_records")->fix, want);
	/* The key itself is fine: said, as information. */
	assert_finding(&f, "dkim.ok", DM_SEV_INFO);
	assert_int_equal(count_code(&f, "dkim.ok"), 1);
	assert_int_equal(dm_findings_worst(&f), DM_SEV_FAIL);
	dm_findings_free(&f);

	/* A key cut into one record per piece (the Repro guide's warning),
	 * listed in the other order: neither is a key, joined they are;
	 * the fix is the joined record. */
	{
		static const char whole[] = "v=DKIM1; k=rsa; p=" KEY_RSA2048;
		char first[200], *second = (char *)whole + 150;

		snprintf(first, sizeof(first), "%.150s", whole);
		two[0] = second;
		two[1] = first;
		memset(&f, 0, sizeof(f));
		assert_int_equal(dm_dkim_parse(two, 2,
		    "s1._domainkey.example.com", &k, &f), 0);
		assert_finding(&f, "dkim.multiple_records", DM_SEV_FAIL);
		snprintf(want, sizeof(want), "s1._domainkey.example.com. TXT "
		    "\"%.255s\" \"%s\"", whole, whole + 255);
		assert_string_equal(finding(&f, "dkim.multiple_records")->fix,
		    want);
		assert_int_equal(k.bits, 2048);
		assert_int_equal(count_code(&f, "dkim.key"), 0);
		dm_findings_free(&f);
	}
}

/* ---- BIMI ---- */

static void
bimi(const char *record, struct dm_bimi *b, struct dm_findings *f)
{
	memset(f, 0, sizeof(*f));
	assert_int_equal(dm_bimi_parse(record, "default._bimi.example.com",
	    b, f), 0);
}

/* Review fixes: one bad rua URI keeps the good ones; a fix longer than
 * a character-string is cut into several; an include of nothing as the
 * only term gets no fix (-all alone would refuse the platform's mail);
 * an SSH key in p= is named. */
static void
test_review_fixes(void **state)
{
	struct dm_dmarc_policy p;
	struct dm_spf_walk w;
	struct dm_dkim_key k;
	struct dm_findings f;
	const char *one[1];
	char line[1024], big[600];

	(void)state;
	dmarc("v=DMARC1; p=none; rua=mailto:good@example.com!10m,"
	    "reports@example.com", &p, &f);
	assert_null(finding(&f, "dmarc.no_rua"));
	assert_finding(&f, "dmarc.bad_uri", DM_SEV_FAIL);
	assert_int_equal(p.nrua, 1);
	assert_string_equal(finding(&f, "dmarc.bad_uri")->fix,
	    FIXED("p=none; rua=mailto:good@example.com!10m"));
	dm_findings_free(&f);

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	dm_txt_record("x.example", big, line, sizeof(line));
	assert_int_equal(strncmp(line, "x.example. TXT \"", 15), 0);
	assert_non_null(strstr(line, "\" \""));
	assert_int_equal(strlen(line), strlen("x.example. TXT") +
	    3 * 3 + 599);	/* 3 strings: 255, 255, 89 */

	spf("onlyinc.example", NULL, &w, &f);
	assert_finding(&f, "spf.include_none", DM_SEV_FAIL);
	assert_string_equal(finding(&f, "spf.include_none")->fix, "");
	dm_findings_free(&f);

	/* base64 of "\0\0\0\7ssh-rsa\0\0\0\3\1\0\1" */
	one[0] = "v=DKIM1; k=rsa; p=AAAAB3NzaC1yc2EAAAADAQAB";
	memset(&f, 0, sizeof(f));
	assert_int_equal(dm_dkim_parse(one, 1, "s._domainkey.example.com",
	    &k, &f), 0);
	assert_finding(&f, "dkim.key", DM_SEV_FAIL);
	assert_non_null(strstr(finding(&f, "dkim.key")->what, "SSH"));
	dm_findings_free(&f);
}

static void
test_bimi(void **state)
{
	struct dm_bimi b;
	struct dm_findings f;
	struct dm_dmarc_policy p;

	(void)state;
	bimi("v=BIMI1; l=https://example.com/logo.svg; "
	    "a=https://example.com/vmc.pem", &b, &f);
	assert_int_equal(b.valid, 1);
	assert_string_equal(b.l, "https://example.com/logo.svg");
	assert_string_equal(b.a, "https://example.com/vmc.pem");
	assert_int_equal(f.count, 1);
	assert_finding(&f, "bimi.ok", DM_SEV_OK);
	dm_findings_free(&f);

	bimi("v=BIMI1; l=; a=;", &b, &f);
	assert_int_equal(b.valid, 1);
	assert_string_equal(b.l, "");
	assert_finding(&f, "bimi.declined", DM_SEV_INFO);
	dm_findings_free(&f);

	bimi("v=BIMI1; l=http://example.com/logo.svg", &b, &f);
	assert_int_equal(b.valid, 0);
	assert_finding(&f, "bimi.http", DM_SEV_FAIL);
	dm_findings_free(&f);
	bimi("v=BIMI1; l=https://example.com/logo.svg; "
	    "a=http://example.com/vmc.pem", &b, &f);
	assert_finding(&f, "bimi.http", DM_SEV_FAIL);
	assert_string_equal(b.a, "");
	dm_findings_free(&f);
	bimi("v=BIMI1; l=https://example.com/logo.png", &b, &f);
	assert_finding(&f, "bimi.not_svg", DM_SEV_WARN);
	dm_findings_free(&f);
	bimi("l=https://example.com/logo.svg; v=BIMI1", &b, &f);
	assert_int_equal(b.valid, 0);
	assert_finding(&f, "bimi.version", DM_SEV_FAIL);
	dm_findings_free(&f);
	bimi("v=BIMI1; a=https://example.com/vmc.pem", &b, &f);
	assert_finding(&f, "bimi.syntax", DM_SEV_FAIL);
	dm_findings_free(&f);
	bimi("v=BIMI1; l=ftp://example.com/logo.svg", &b, &f);
	assert_finding(&f, "bimi.syntax", DM_SEV_FAIL);
	dm_findings_free(&f);

	/* BIMI wants enforcement. */
	dmarc("v=DMARC1; p=none; " RUA, &p, &f);
	dm_findings_free(&f);
	memset(&f, 0, sizeof(f));
	assert_int_equal(dm_bimi_enforcement(&p, "default._bimi.example.com",
	    &f), 0);
	assert_finding(&f, "bimi.no_enforcement", DM_SEV_WARN);
	dm_findings_free(&f);
	dmarc("v=DMARC1; p=reject; pct=50; " RUA, &p, &f);
	dm_findings_free(&f);
	memset(&f, 0, sizeof(f));
	assert_int_equal(dm_bimi_enforcement(&p, "default._bimi.example.com",
	    &f), 0);
	assert_finding(&f, "bimi.no_enforcement", DM_SEV_WARN);
	dm_findings_free(&f);
	dmarc("v=DMARC1; p=quarantine; " RUA, &p, &f);
	dm_findings_free(&f);
	memset(&f, 0, sizeof(f));
	assert_int_equal(dm_bimi_enforcement(&p, "default._bimi.example.com",
	    &f), 0);
	assert_int_equal(f.count, 0);
	dm_findings_free(&f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_findings),
		cmocka_unit_test(test_dmarc_all_valid),
		cmocka_unit_test(test_dmarc_invalid),
		cmocka_unit_test(test_dmarc_external),
		cmocka_unit_test(test_spf_ip),
		cmocka_unit_test(test_spf_limits),
		cmocka_unit_test(test_spf_records),
		cmocka_unit_test(test_dkim_keys),
		cmocka_unit_test(test_dkim_broken),
		cmocka_unit_test(test_bimi),
		cmocka_unit_test(test_review_fixes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
