/*
 * dnsrec.h - the DNS records of mail authentication, parsed and judged:
 * DMARC (RFC 7489, DMARCbis RFC 9989), SPF (RFC 7208, evaluated over the
 * caller's lookups, with its limits), DKIM keys (RFC 6376, RFC 8463) and
 * BIMI. For `dmarcd check` (collector/cmd_check.c), which does the DNS.
 *
 * Pure: no DNS, no I/O here. What is wrong goes to a list of findings,
 * each with a stable code, what was found, and the fix: the exact record
 * to publish where there is one.
 */
#ifndef COMMON_DNSREC_H
#define COMMON_DNSREC_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

/* ---- findings ---- */

enum dm_sev {
	DM_SEV_OK,	/* checked, fine (said, so that the table is whole) */
	DM_SEV_INFO,	/* worth knowing, nothing to fix */
	DM_SEV_WARN,	/* should be fixed */
	DM_SEV_FAIL	/* broken: mail fails, or reports are lost */
};

#define DM_FINDING_CODE		48
#define DM_FINDING_SUBJECT	256	/* the name the record is at */
#define DM_FINDING_WHAT		1024
#define DM_FINDING_FIX		2048

struct dm_finding {
	enum dm_sev sev;
	char code[DM_FINDING_CODE];	/* "dmarc.no_rua", "spf.lookups"... */
	char subject[DM_FINDING_SUBJECT]; /* "_dmarc.example.com" */
	char what[DM_FINDING_WHAT];	/* what was found, what is wrong */
	char fix[DM_FINDING_FIX];	/* the record to publish, or ""; */
};

struct dm_findings {
	struct dm_finding *items;
	size_t count, alloc;
};

/* dm_findings_add - append one (what: printf); -1 out of memory. Texts
 * longer than their fields are cut. */
int dm_findings_add(struct dm_findings *f, enum dm_sev sev, const char *code,
    const char *subject, const char *fix, const char *what, ...)
    DM_PRINTF(6, 7);
void dm_findings_free(struct dm_findings *f);
/* dm_txt_record - "NAME. TXT "..." "..."": value as a zone file line,
 * cut into character-strings of at most 255 octets (a longer one cannot
 * be published); "..." at the end when out is too small. */
void dm_txt_record(const char *name, const char *value, char *out,
    size_t size);
/* dm_findings_worst - the highest severity (DM_SEV_OK when none). */
enum dm_sev dm_findings_worst(const struct dm_findings *f);
const char *dm_sev_name(enum dm_sev sev);	/* "ok", "info", "warn", "fail" */

/* ---- the caller's DNS ---- */

enum dm_dns_rc {
	DM_DNS_FOUND,		/* records of the type (count > 0) */
	DM_DNS_NODATA,		/* the name exists, no record of the type */
	DM_DNS_NXDOMAIN,	/* no such name */
	DM_DNS_TEMPFAIL		/* timeout, SERVFAIL, REFUSED, ... */
};

enum dm_dns_type {
	DM_DNS_A = 1, DM_DNS_CNAME = 5, DM_DNS_PTR = 12, DM_DNS_MX = 15,
	DM_DNS_TXT = 16, DM_DNS_AAAA = 28
};

/*
 * One lookup's answer: items are malloc'd texts, dm_dns_result_free()
 * frees them. TXT: each record's character-strings joined (one item a
 * record); A, AAAA: the addresses as text; MX: the exchange host names,
 * by preference (lowest first); PTR: the names; CNAME: the target.
 * Names without the trailing dot, lower case.
 */
struct dm_dns_result {
	enum dm_dns_rc rc;
	char **items;
	size_t count;
};

typedef void (*dm_dns_fn)(void *ctx, const char *name, enum dm_dns_type type,
    struct dm_dns_result *out);
void dm_dns_result_free(struct dm_dns_result *r);

/* ---- DMARC ---- */

#define DM_DMARC_URIS	8

struct dm_dmarc_uri {
	char scheme[16];		/* "mailto" (others are findings) */
	char address[320];		/* local@domain */
	char domain[254];		/* of address, lower case */
	uint64_t max_size;		/* the !size limit in bytes; 0: none */
};

struct dm_dmarc_policy {
	int valid;			/* v=DMARC1 first, p= readable */
	char p[16], sp[16], np[16];	/* "none", "quarantine", "reject"; "" */
	int pct;			/* -1: absent (100) */
	char t;				/* 'y', 'n', 0: absent */
	char adkim, aspf;		/* 'r', 's' (default 'r') */
	char psd;			/* 'y', 'n', 'u' */
	char fo[16];			/* "0" (default), "1", "d", "s", "0:d".. */
	long ri;			/* -1: absent (86400) */
	struct dm_dmarc_uri rua[DM_DMARC_URIS], ruf[DM_DMARC_URIS];
	unsigned nrua, nruf;
};

/*
 * dm_dmarc_parse - the record found at subject (e.g. _dmarc.example.com)
 * for policy domain domain, into *out, every tag validated: v first, p
 * (required, except where the organizational domain's record applies),
 * sp, np, pct (0-100), t (y/n), adkim, aspf (r/s), psd (y/n/u), rua and
 * ruf (comma-separated URIs, mailto only in practice, a !size suffix with
 * k/m/g/t), fo (0, 1, d, s, colon-separated), ri (seconds); duplicate
 * tags, unknown tags, bad syntax, p=none without rua. Findings to f.
 * 0, or -1 out of memory.
 */
int dm_dmarc_parse(const char *record, const char *domain,
    const char *subject, struct dm_dmarc_policy *out, struct dm_findings *f);

/*
 * dm_dmarc_external - the name that authorizes an external report
 * destination (RFC 7489 7.1): "<domain>._report._dmarc.<dest_domain>";
 * 0 when dest_domain needs it (its organizational domain differs from
 * domain's), 1 when it does not, -1 when out is too small.
 */
int dm_dmarc_external(const char *domain, const char *dest_domain,
    char *out, size_t size);

/* ---- SPF ---- */

/*
 * Named dm_spf_verdict, not dm_spf_result: struct dm_spf_result (a
 * report's SPF auth result, common/report.h) shares C's tag namespace.
 */
enum dm_spf_verdict {
	DM_SPF_NONE, DM_SPF_NEUTRAL, DM_SPF_PASS, DM_SPF_FAIL,
	DM_SPF_SOFTFAIL, DM_SPF_TEMPERROR, DM_SPF_PERMERROR
};
const char *dm_spf_result_name(enum dm_spf_verdict r);	/* "pass", ... */

#define DM_SPF_LOOKUP_LIMIT	10	/* DNS-querying terms (RFC 7208 4.6.4) */
#define DM_SPF_VOID_LIMIT	2	/* void lookups */

/* What evaluating a domain's SPF saw, over its whole include tree. */
struct dm_spf_walk {
	enum dm_spf_verdict result;	/* for the IP, or of the walk */
	unsigned lookups;		/* DNS-querying terms counted */
	unsigned void_lookups;
	unsigned records;		/* SPF records read (includes too) */
	char all[8];			/* the top record's all: "-all", "~all",
					 * "?all", "+all", "" (none) */
	int redirect;			/* the top record ends in redirect= */
	char error[256];		/* why permerror/temperror; "" */
};

/*
 * dm_spf_check - check_host() of RFC 7208 for ip (text; NULL: no IP,
 * walk the whole tree to count its lookups and find its problems) and the
 * SPF record of domain, asking lookup(ctx, ...) for TXT, A, AAAA, MX and
 * PTR. Limits: 10 DNS-querying terms, 2 void lookups, 10 MX or PTR names
 * per term; an include or redirect loop is a permerror. Findings (with
 * subject the name of each record read): no record, several records,
 * syntax, +all, ?all, no all, ptr, macros (information), include of a
 * name without SPF, the lookup limit, void lookups, a character-string
 * over 255 octets or a record over 450 (information: DNS answers over
 * UDP), legacy spf2.0 records (information). 0, or -1 out of memory.
 */
int dm_spf_check(const char *domain, const char *ip, dm_dns_fn lookup,
    void *ctx, struct dm_spf_walk *walk, struct dm_findings *f);

/* ---- DKIM ---- */

struct dm_dkim_key {
	int valid;
	char k[16];			/* "rsa" (default), "ed25519" */
	unsigned bits;			/* RSA modulus bits; 256 for ed25519 */
	int revoked;			/* p= empty */
	int testing;			/* t=y */
	char h[64];			/* h= as given, or "" */
};

/*
 * dm_dkim_parse - the TXT record(s) at subject (selector._domainkey.
 * domain): records[0..count) as the lookup gave them. Several records
 * is a failure (verifiers take one at random), a key split into several
 * character-strings of one record is fine. Validates v (DKIM1, first),
 * k, p (base64 of a SubjectPublicKeyInfo, or a bare RSAPublicKey; RSA
 * under 1024 bits fails, under 2048 warns), t=y, s, h; an empty p= is a
 * revoked key. Findings to f. 0, or -1 out of memory.
 */
int dm_dkim_parse(const char *const *records, size_t count,
    const char *subject, struct dm_dkim_key *out, struct dm_findings *f);

/* ---- BIMI ---- */

struct dm_bimi {
	int valid;
	char l[512];			/* the SVG's https URL, or "" */
	char a[512];			/* the VMC/CMC's https URL, or "" */
};

/*
 * dm_bimi_parse - the record at default._bimi.domain: v=BIMI1 first, l=
 * and a= https URLs (empty l= declines BIMI). Findings to f. 0, or -1.
 */
int dm_bimi_parse(const char *record, const char *subject,
    struct dm_bimi *out, struct dm_findings *f);

/*
 * dm_bimi_enforcement - BIMI is shown only under an enforcing DMARC
 * policy (p=quarantine or reject, pct 100, sp not none): a warning
 * bimi.no_enforcement to f when policy is not one. 0, or -1.
 */
int dm_bimi_enforcement(const struct dm_dmarc_policy *policy,
    const char *subject, struct dm_findings *f);

#endif
