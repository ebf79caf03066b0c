/*
 * align.c - DMARC identifier alignment from a record's own results.
 *
 * The Public Suffix List is loaded once per process (libpsl's
 * psl_latest(): the system's list when it is newer than the built-in
 * one) and only read afterwards, so the functions are safe to call from
 * several threads.
 */
#include <ctype.h>
#include <pthread.h>
#include <string.h>

#include <libpsl.h>

#include "common/align.h"

static psl_ctx_t *psl;
static pthread_once_t psl_once = PTHREAD_ONCE_INIT;

static void
psl_load(void)
{
	psl = psl_latest(NULL);
	if (psl == NULL)
		psl = (psl_ctx_t *)psl_builtin();
}

int
dm_domain_norm(const char *domain, char *out, size_t size)
{
	size_t len = 0;
	const char *p;

	if (size == 0)
		return -1;
	out[0] = '\0';
	if (domain == NULL)
		return -1;
	while (isspace((unsigned char)*domain))
		domain++;
	for (p = domain; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		if (isspace(c))
			break;
		/* Letters, digits, '-', '_' (DKIM selectors' kin), '.',
		 * and UTF-8 (U-labels): anything else is no domain. */
		if (!(isalnum(c) || c == '-' || c == '_' || c == '.' ||
		    c >= 0x80))
			goto bad;
		if (len + 1 >= size)
			goto bad;
		out[len++] = (char)tolower(c);
	}
	for (; *p != '\0'; p++)
		if (!isspace((unsigned char)*p))
			goto bad;
	while (len > 0 && out[len - 1] == '.')
		len--;
	out[len] = '\0';
	if (len == 0 || out[0] == '.' || strstr(out, "..") != NULL)
		goto bad;
	return 0;
bad:
	out[0] = '\0';
	return -1;
}

int
dm_org_domain(const char *domain, char *out, size_t size)
{
	char norm[DM_DOMAIN_MAX];
	const char *reg;
	size_t len;

	if (dm_domain_norm(domain, norm, sizeof(norm)) != 0)
		goto bad;
	pthread_once(&psl_once, psl_load);
	reg = psl != NULL ? psl_registrable_domain(psl, norm) : NULL;
	if (reg == NULL)
		reg = norm;	/* a public suffix is its own */
	len = strlen(reg);
	if (len + 1 > size)
		goto bad;
	memcpy(out, reg, len + 1);
	return 0;
bad:
	if (size > 0)
		out[0] = '\0';
	return -1;
}

int
dm_aligned(const char *a, const char *b, int strict)
{
	char oa[DM_DOMAIN_MAX], ob[DM_DOMAIN_MAX];

	if (a == NULL || b == NULL || a[0] == '\0' || b[0] == '\0')
		return 0;
	if (strcmp(a, b) == 0)
		return 1;
	if (strict)
		return 0;
	if (dm_org_domain(a, oa, sizeof(oa)) != 0 ||
	    dm_org_domain(b, ob, sizeof(ob)) != 0)
		return 0;
	return strcmp(oa, ob) == 0;
}

/* The override reason that matters most for the classes, or "". */
static const char *
override_of(const struct dm_record *rec)
{
	static const int order[] = { DM_REASON_FORWARDED,
		DM_REASON_MAILING_LIST, DM_REASON_TRUSTED_FORWARDER,
		DM_REASON_LOCAL_POLICY, DM_REASON_SAMPLED_OUT,
		DM_REASON_POLICY_TEST_MODE, DM_REASON_OTHER };
	size_t i, j;

	for (i = 0; i < sizeof(order) / sizeof(order[0]); i++)
		for (j = 0; j < rec->reason_count; j++)
			if (rec->reasons[j].type == order[i])
				return dm_enum_name(DM_ENUM_REASON, order[i]);
	return "";
}

static void
copy_domain(char *dst, const char *src)
{
	size_t len = strlen(src);

	if (len >= DM_DOMAIN_MAX)
		len = DM_DOMAIN_MAX - 1;
	memcpy(dst, src, len);
	dst[len] = '\0';
}

static void
align_dkim(const struct dm_record *rec, const char *hf, int strict,
    struct dm_alignment *auth)
{
	int rank = 0;	/* of dkim_domain: 3 aligned pass, 2 pass, 1 any */
	size_t i;

	for (i = 0; i < rec->dkim_count; i++) {
		const struct dm_dkim_result *d = &rec->dkim_results[i];
		char dom[DM_DOMAIN_MAX];
		int aligned, pass, r;

		if (dm_domain_norm(d->domain, dom, sizeof(dom)) != 0)
			continue;
		aligned = dm_aligned(dom, hf, strict);
		pass = d->result == DM_RESULT_PASS;
		if (aligned)
			auth->bits |= DM_AUTH_DKIM_OWN;
		if (pass)
			auth->bits |= DM_AUTH_DKIM_PASS;
		if (pass && aligned)
			auth->bits |= DM_AUTH_DKIM_ALIGNED;
		r = pass ? (aligned ? 3 : 2) : 1;
		if (r > rank) {
			rank = r;
			copy_domain(auth->dkim_domain, dom);
		}
	}
}

/*
 * SPF: DMARC checks the MAIL FROM identity, and HELO only when MAIL FROM
 * was empty; a report says which by scope (often not at all: then it is
 * MAIL FROM). The first MAIL FROM result with a domain decides; HELO only
 * when there is none (a MAIL FROM result with an empty domain is the null
 * reverse path, whose SPF identity is HELO's).
 */
static void
align_spf(const struct dm_record *rec, const char *hf, int strict,
    struct dm_alignment *auth)
{
	const struct dm_spf_result *chosen = NULL;
	char dom[DM_DOMAIN_MAX];
	size_t i;

	for (i = 0; i < rec->spf_count && chosen == NULL; i++)
		if (rec->spf_results[i].scope != DM_SCOPE_HELO &&
		    dm_domain_norm(rec->spf_results[i].domain, dom,
		    sizeof(dom)) == 0)
			chosen = &rec->spf_results[i];
	for (i = 0; i < rec->spf_count && chosen == NULL; i++)
		if (dm_domain_norm(rec->spf_results[i].domain, dom,
		    sizeof(dom)) == 0)
			chosen = &rec->spf_results[i];
	if (chosen == NULL)
		return;
	copy_domain(auth->spf_domain, dom);
	if (dm_aligned(dom, hf, strict))
		auth->bits |= DM_AUTH_SPF_OWN;
	if (chosen->result == DM_RESULT_PASS) {
		auth->bits |= DM_AUTH_SPF_PASS;
		if (auth->bits & DM_AUTH_SPF_OWN)
			auth->bits |= DM_AUTH_SPF_ALIGNED;
	}
}

void
dm_align_record(const struct dm_policy_published *pp,
    const struct dm_record *rec, struct dm_alignment *auth)
{
	char hf[DM_DOMAIN_MAX];

	auth->bits = 0;
	auth->dkim_domain[0] = '\0';
	auth->spf_domain[0] = '\0';
	auth->override = override_of(rec);
	/* No From domain (or several, "a.example, b.example"): nothing can
	 * align with it, but what passed still counts. */
	if (dm_domain_norm(rec->header_from, hf, sizeof(hf)) != 0)
		hf[0] = '\0';
	align_dkim(rec, hf, pp != NULL && pp->adkim == DM_ALIGN_STRICT, auth);
	align_spf(rec, hf, pp != NULL && pp->aspf == DM_ALIGN_STRICT, auth);
}
