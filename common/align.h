/*
 * align.h - DMARC identifier alignment, worked out by dmarcd itself.
 *
 * A receiver's policy_evaluated says whether it found DKIM and SPF
 * aligned; dmarcd does not take its word for it. From a record's DKIM and
 * SPF results, its header_from and the published adkim/aspf,
 * dm_align_record() decides again (RFC 7489 section 3.1, RFC 9989):
 *
 *	relaxed		the two domains have the same organizational domain
 *	strict		the two domains are equal
 *
 * Organizational domains come from the Public Suffix List (libpsl, the
 * newest of its built-in list and the system's) at ingest, for every
 * report. A report that says discovery_method=treewalk is judged again
 * by `dmarcd resolve` with the DMARCbis DNS tree walk (RFC 9989 4.10):
 * dm_treewalk_org() is the walk's decision over the DMARC records found,
 * the DNS queries are the caller's (collector/rdns.c), and
 * dm_align_record_org() aligns with those organizational domains.
 *
 * Nothing here allocates or fails: names that are not domains simply do
 * not align.
 */
#ifndef COMMON_ALIGN_H
#define COMMON_ALIGN_H

#include <stddef.h>

#include "common/report.h"

#define DM_DOMAIN_MAX	256	/* a domain name's text, with its NUL */

/* The bits of dm_auth.bits; dmarcd.auth_bits (SQL) names them too. */
enum {
	DM_AUTH_DKIM_ALIGNED = 1,	/* a DKIM pass, aligned */
	DM_AUTH_SPF_ALIGNED = 2,	/* an SPF pass, aligned */
	DM_AUTH_DKIM_PASS = 4,		/* a DKIM pass for any domain */
	DM_AUTH_SPF_PASS = 8,		/* an SPF pass for any domain */
	DM_AUTH_SPF_OWN = 16,		/* the SPF domain is aligned */
	DM_AUTH_DKIM_OWN = 32,		/* some d= is aligned */
	DM_AUTH_GUESSED = 64		/* the receiver's verdict (old rows) */
};

struct dm_alignment {
	unsigned bits;
	char dkim_domain[DM_DOMAIN_MAX];	/* the d= that decided; "" */
	char spf_domain[DM_DOMAIN_MAX];		/* the SPF domain; "" */
	const char *override;			/* reason name; "" for none */
};

/*
 * dm_org_domain - the organizational domain of domain (lower case, no
 * trailing dot) into out. A public suffix or an unlisted single label is
 * its own organizational domain. -1 when domain is not a domain name or
 * does not fit.
 */
int dm_org_domain(const char *domain, char *out, size_t size);

/*
 * dm_domain_norm - domain lower-cased, white space and a trailing dot
 * taken off, into out; -1 (out "") when empty, too long or not a name.
 */
int dm_domain_norm(const char *domain, char *out, size_t size);

/* dm_aligned - whether a and b (normalized) align; strict or relaxed. */
int dm_aligned(const char *a, const char *b, int strict);

/* dm_align_record - dmarcd's verdict on one record under policy pp. */
void dm_align_record(const struct dm_policy_published *pp,
    const struct dm_record *rec, struct dm_alignment *auth);

/*
 * An organizational domain function: the organizational domain of domain
 * (normalized) into out; 0, or -1 when it has none (then nothing aligns
 * with domain but itself). dm_org_domain() is the PSL's.
 */
typedef int (*dm_org_fn)(void *ctx, const char *domain, char *out,
    size_t size);

/* dm_aligned_org - dm_aligned() with org (NULL: the PSL). */
int dm_aligned_org(const char *a, const char *b, int strict, dm_org_fn org,
    void *ctx);

/* dm_align_record_org - dm_align_record() with org (NULL: the PSL). */
void dm_align_record_org(const struct dm_policy_published *pp,
    const struct dm_record *rec, dm_org_fn org, void *ctx,
    struct dm_alignment *auth);

/* ---- the DMARCbis tree walk (RFC 9989 4.10.1 and 4.10.3) ---- */

#define DM_TREEWALK_QUERIES	8	/* at most, per walk */
#define DM_TREEWALK_SHORTEN	7	/* labels left after the first query
					 * of a longer name */
#define DM_DMARC_RECORD_MAX	2048	/* record text kept, with its NUL */

/*
 * dm_dmarc_record - whether a TXT record (its character-strings joined)
 * is a DMARC record: it starts with the version tag, "v" *WSP "=" *WSP
 * "DMARC1", followed by its end, white space or ';'.
 */
int dm_dmarc_record(const char *txt);

/*
 * dm_dmarc_psd - the psd tag of a DMARC record: 'y', 'n', or 'u' (absent,
 * "u", or a value that is none of these).
 */
int dm_dmarc_psd(const char *record);

/*
 * The DMARC records of one name: lookup(ctx, name, record, size) queries
 * _dmarc.name (name without "_dmarc.") and returns -1 when the DNS failed
 * (timeout, SERVFAIL, ...), 0 when the name has no DMARC record
 * (NXDOMAIN, no TXT, or TXT records none of which is DMARC), else the
 * number of DMARC records, the first one copied (truncated) into record.
 */
typedef int (*dm_dmarc_lookup)(void *ctx, const char *name, char *record,
    size_t size);

enum {
	DM_TREEWALK_OK = 0,
	DM_TREEWALK_DNS = -1,		/* a lookup failed: no verdict */
	DM_TREEWALK_BADNAME = -2	/* domain is not a domain name */
};

/*
 * dm_treewalk_org - the organizational domain of domain by the DNS tree
 * walk, into out (lower case, no trailing dot; "" on failure).
 *
 * The walk asks for the DMARC record of domain, then of its parent (or,
 * when domain has 8 labels or more, of its 7 rightmost labels), then of
 * each parent in turn, at most DM_TREEWALK_QUERIES names, and stops at
 * the first name with exactly one DMARC record carrying psd=y or psd=n
 * (several DMARC records at one name count as none). Then:
 *	psd=n at a name			that name
 *	psd=y at a name other than	the name one label below it, on the
 *	domain itself			way to domain
 *	otherwise			the shortest name that had a DMARC
 *					record; domain itself when none had
 * A lookup failure ends the walk with DM_TREEWALK_DNS: the caller keeps
 * the PSL's answer.
 */
int dm_treewalk_org(const char *domain, dm_dmarc_lookup lookup, void *ctx,
    char *out, size_t size);

#endif
