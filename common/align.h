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
 * newest of its built-in list and the system's). A report that says
 * discovery_method=treewalk is judged by the PSL as well: the DMARCbis
 * tree walk needs the DNS at the time of the message, which a report does
 * not carry; where the two differ (a psd= record in the tree) the
 * receiver's verdict, kept beside ours, tells.
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

#endif
