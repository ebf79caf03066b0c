/*
 * fuzz_dnsrec.c - libFuzzer target for common/dnsrec.c: the DMARC, SPF,
 * DKIM key and BIMI record parsers, SPF's check_host() and
 * dm_txt_record(), with no network.
 *
 * The first byte chooses the IP that check_host() is asked about (or
 * none: the whole tree is walked) and how many records the DKIM parser
 * gets; the rest is cut at '\n' into up to FUZZ_RECORDS records. Record 0
 * is every parser's record. The fake DNS answers every TXT query with one
 * of the records (chosen by a hash of the name, so that an include or a
 * redirect of any name lands on fuzzer bytes), and A, AAAA, MX and PTR
 * queries from fixed tables; a few names hash to NXDOMAIN, NODATA or
 * TEMPFAIL. All of it depends only on the input: runs are deterministic.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/dnsrec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_RECORDS	8
#define FUZZ_MAX_INPUT	(64 * 1024)

static const char *const fuzz_ips[] = {
	NULL, "192.0.2.1", "198.51.100.7", "2001:db8::1", "::ffff:192.0.2.1",
	"10.0.0.1", "203.0.113.255", "2001:db8:ffff::"
};

struct zone {
	char *records[FUZZ_RECORDS];
	size_t count;
};

static size_t fuzz_sink;

static uint32_t
name_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h;
}

static int
answer(struct dm_dns_result *out, const char *const *items, size_t n)
{
	size_t i;

	out->items = calloc(n, sizeof(char *));
	if (out->items == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		out->items[i] = strdup(items[i]);
		if (out->items[i] == NULL)
			return -1;	/* freed by dm_dns_result_free */
		out->count++;
	}
	out->rc = DM_DNS_FOUND;
	return 0;
}

static void
fake_dns(void *ctx, const char *name, enum dm_dns_type type,
    struct dm_dns_result *out)
{
	static const char *const a[] = { "192.0.2.1", "198.51.100.7" };
	static const char *const aaaa[] = { "2001:db8::1" };
	static const char *const mx[] = {
		"mx1.example.com", "mx2.example.net"
	};
	static const char *const ptr[] = { "mail.example.com" };
	const struct zone *z = ctx;
	uint32_t h = name_hash(name) ^ (uint32_t)type;
	const char *txt;

	out->rc = DM_DNS_NXDOMAIN;
	out->items = NULL;
	out->count = 0;
	switch (h % 16) {
	case 0:
		return;			/* NXDOMAIN */
	case 1:
		out->rc = DM_DNS_NODATA;
		return;
	case 2:
		out->rc = DM_DNS_TEMPFAIL;
		return;
	default:
		break;
	}
	switch (type) {
	case DM_DNS_TXT:
		if (z->count == 0)
			return;
		txt = z->records[(h >> 4) % z->count];
		/* Now and then two records at a name: "several records". */
		if ((h >> 8) % 8 == 0 && z->count > 1) {
			const char *two[2];

			two[0] = txt;
			two[1] = z->records[((h >> 4) + 1) % z->count];
			answer(out, two, 2);
		} else
			answer(out, &txt, 1);
		break;
	case DM_DNS_A:
		answer(out, a, (h >> 4) % 2 + 1);
		break;
	case DM_DNS_AAAA:
		answer(out, aaaa, 1);
		break;
	case DM_DNS_MX:
		answer(out, mx, (h >> 4) % 2 + 1);
		break;
	case DM_DNS_PTR:
		answer(out, ptr, 1);
		break;
	default:
		break;
	}
}

/*
 * A fixed-size text field must end inside itself: ASan cannot see a
 * missing NUL that runs into the next field of the same struct.
 */
#define TERMINATED(field) \
	terminated((field), sizeof(field), #field)

static void
terminated(const char *text, size_t size, const char *name)
{
	if (memchr(text, '\0', size) == NULL) {
		fprintf(stderr, "fuzz_dnsrec: %s is not NUL-terminated\n",
		    name);
		abort();
	}
	fuzz_sink += strlen(text);
}

static void
touch_findings(const struct dm_findings *f)
{
	size_t i;

	for (i = 0; i < f->count; i++) {
		TERMINATED(f->items[i].code);
		TERMINATED(f->items[i].subject);
		TERMINATED(f->items[i].what);
		TERMINATED(f->items[i].fix);
	}
	fuzz_sink += strlen(dm_sev_name(dm_findings_worst(f)));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dm_dmarc_policy policy;
	struct dm_findings findings;
	struct dm_spf_walk walk;
	struct dm_dkim_key key;
	struct dm_bimi bimi;
	struct zone zone;
	char line[1024], external[600];
	const char *ip;
	size_t i, start, dkim_count, txt_size;
	char *text;
	unsigned mode;

	if (size < 1 || size > FUZZ_MAX_INPUT)
		return 0;
	mode = data[0];
	ip = fuzz_ips[mode % (sizeof(fuzz_ips) / sizeof(fuzz_ips[0]))];
	data++;
	size--;

	/* The records: NUL-terminated copies of each line. */
	text = malloc(size + 1);
	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	memset(&zone, 0, sizeof(zone));
	for (start = 0, i = 0; i <= size && zone.count < FUZZ_RECORDS; i++) {
		if (i < size && text[i] != '\n')
			continue;
		text[i] = '\0';
		zone.records[zone.count++] = text + start;
		start = i + 1;
	}

	memset(&findings, 0, sizeof(findings));
	if (dm_dmarc_parse(zone.records[0], "example.com",
	    "_dmarc.example.com", &policy, &findings) == 0) {
		TERMINATED(policy.p);
		TERMINATED(policy.sp);
		TERMINATED(policy.np);
		TERMINATED(policy.fo);
		if (policy.nrua > DM_DMARC_URIS ||
		    policy.nruf > DM_DMARC_URIS) {
			fprintf(stderr, "fuzz_dnsrec: more URIs than "
			    "DM_DMARC_URIS\n");
			abort();
		}
		for (i = 0; i < policy.nrua; i++) {
			TERMINATED(policy.rua[i].scheme);
			TERMINATED(policy.rua[i].address);
			TERMINATED(policy.rua[i].domain);
		}
		for (i = 0; i < policy.nruf; i++) {
			TERMINATED(policy.ruf[i].scheme);
			TERMINATED(policy.ruf[i].address);
			TERMINATED(policy.ruf[i].domain);
		}
		for (i = 0; i < policy.nrua; i++)
			dm_dmarc_external("example.com", policy.rua[i].domain,
			    external, sizeof(external));
		for (i = 0; i < policy.nruf; i++)
			dm_dmarc_external("example.com", policy.ruf[i].domain,
			    external, sizeof(external));
		dm_bimi_enforcement(&policy, "default._bimi.example.com",
		    &findings);
	}

	memset(&walk, 0, sizeof(walk));
	dm_spf_check("example.com", ip, fake_dns, &zone, &walk, &findings);
	TERMINATED(walk.error);
	TERMINATED(walk.all);
	fuzz_sink += strlen(dm_spf_result_name(walk.result));

	dkim_count = (mode >> 3) % zone.count + 1;
	if (dm_dkim_parse((const char *const *)zone.records, dkim_count,
	    "sel._domainkey.example.com", &key, &findings) == 0) {
		TERMINATED(key.k);
		TERMINATED(key.h);
	}

	if (dm_bimi_parse(zone.records[0], "default._bimi.example.com",
	    &bimi, &findings) == 0) {
		TERMINATED(bimi.l);
		TERMINATED(bimi.a);
	}

	/* A small out now and then, to reach the "..." cut. */
	line[0] = '\0';
	txt_size = (mode & 0x80) ? (size_t)(mode & 0x3f) : sizeof(line);
	dm_txt_record("example.com", zone.records[0], line, txt_size);
	if (txt_size > 0)
		terminated(line, txt_size, "dm_txt_record's out");

	touch_findings(&findings);
	dm_findings_free(&findings);
	free(text);
	return 0;
}
