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

static int
psl_org(void *ctx, const char *domain, char *out, size_t size)
{
	(void)ctx;
	return dm_org_domain(domain, out, size);
}

int
dm_aligned_org(const char *a, const char *b, int strict, dm_org_fn org,
    void *ctx)
{
	char oa[DM_DOMAIN_MAX], ob[DM_DOMAIN_MAX];

	if (a == NULL || b == NULL || a[0] == '\0' || b[0] == '\0')
		return 0;
	if (strcmp(a, b) == 0)
		return 1;
	if (strict)
		return 0;
	if (org == NULL)
		org = psl_org;
	if (org(ctx, a, oa, sizeof(oa)) != 0 ||
	    org(ctx, b, ob, sizeof(ob)) != 0)
		return 0;
	return strcmp(oa, ob) == 0;
}

int
dm_aligned(const char *a, const char *b, int strict)
{
	return dm_aligned_org(a, b, strict, NULL, NULL);
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

/* How a record is judged: strictness and organizational domains. */
struct judge {
	int strict;
	dm_org_fn org;
	void *ctx;
};

static void
align_dkim(const struct dm_record *rec, const char *hf,
    const struct judge *j, struct dm_alignment *auth)
{
	int rank = 0;	/* of dkim_domain: 3 aligned pass, 2 pass, 1 any */
	size_t i;

	for (i = 0; i < rec->dkim_count; i++) {
		const struct dm_dkim_result *d = &rec->dkim_results[i];
		char dom[DM_DOMAIN_MAX];
		int aligned, pass, r;

		if (dm_domain_norm(d->domain, dom, sizeof(dom)) != 0)
			continue;
		aligned = dm_aligned_org(dom, hf, j->strict, j->org, j->ctx);
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
align_spf(const struct dm_record *rec, const char *hf,
    const struct judge *j, struct dm_alignment *auth)
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
	if (dm_aligned_org(dom, hf, j->strict, j->org, j->ctx))
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
	dm_align_record_org(pp, rec, NULL, NULL, auth);
}

void
dm_align_record_org(const struct dm_policy_published *pp,
    const struct dm_record *rec, dm_org_fn org, void *ctx,
    struct dm_alignment *auth)
{
	struct judge dkim = { 0, org, ctx }, spf = { 0, org, ctx };
	char hf[DM_DOMAIN_MAX];

	auth->bits = 0;
	auth->dkim_domain[0] = '\0';
	auth->spf_domain[0] = '\0';
	auth->override = override_of(rec);
	/* No From domain (or several, "a.example, b.example"): nothing can
	 * align with it, but what passed still counts. */
	if (dm_domain_norm(rec->header_from, hf, sizeof(hf)) != 0)
		hf[0] = '\0';
	dkim.strict = pp != NULL && pp->adkim == DM_ALIGN_STRICT;
	spf.strict = pp != NULL && pp->aspf == DM_ALIGN_STRICT;
	align_dkim(rec, hf, &dkim, auth);
	align_spf(rec, hf, &spf, auth);
}

/* ---- the DMARCbis tree walk ---- */

static int
wsp(char c)
{
	return c == ' ' || c == '\t';
}

int
dm_dmarc_record(const char *txt)
{
	const char *p = txt;

	if (p == NULL || (*p != 'v' && *p != 'V'))
		return 0;
	for (p++; wsp(*p); p++)
		;
	if (*p++ != '=')
		return 0;
	while (wsp(*p))
		p++;
	if (strncmp(p, "DMARC1", 6) != 0)
		return 0;
	p += 6;
	while (wsp(*p))
		p++;
	return *p == '\0' || *p == ';' || *p == '\r' || *p == '\n';
}

int
dm_dmarc_psd(const char *record)
{
	const char *p = record, *name, *value, *end;
	size_t name_len, value_len;

	/* tag-list: tag *WSP "=" *WSP value, separated by ';' (RFC 6376
	 * 3.2); the first tag is the version. */
	while (p != NULL && *p != '\0') {
		end = strchr(p, ';');
		if (end == NULL)
			end = p + strlen(p);
		while (p < end && isspace((unsigned char)*p))
			p++;
		name = p;
		while (p < end && *p != '=' && !isspace((unsigned char)*p))
			p++;
		name_len = (size_t)(p - name);
		while (p < end && isspace((unsigned char)*p))
			p++;
		if (p < end && *p == '=' && name_len == 3 &&
		    memcmp(name, "psd", 3) == 0) {
			for (p++; p < end && isspace((unsigned char)*p); p++)
				;
			value = p;
			value_len = (size_t)(end - value);
			while (value_len > 0 &&
			    isspace((unsigned char)value[value_len - 1]))
				value_len--;
			if (value_len == 1 && (*value == 'y' || *value == 'Y'))
				return 'y';
			if (value_len == 1 && (*value == 'n' || *value == 'N'))
				return 'n';
			return 'u';
		}
		p = *end == ';' ? end + 1 : end;
	}
	return 'u';
}

int
dm_treewalk_org(const char *domain, dm_dmarc_lookup lookup, void *ctx,
    char *out, size_t size)
{
	char norm[DM_DOMAIN_MAX], record[DM_DMARC_RECORD_MAX];
	size_t starts[DM_DOMAIN_MAX / 2 + 1];	/* of each label */
	size_t labels = 0, target = 0, i, len;
	const char *org = NULL, *found = NULL;
	unsigned queries;
	int n, psd;

	if (size > 0)
		out[0] = '\0';
	if (dm_domain_norm(domain, norm, sizeof(norm)) != 0)
		return DM_TREEWALK_BADNAME;
	starts[labels++] = 0;
	for (i = 0; norm[i] != '\0'; i++)
		if (norm[i] == '.')
			starts[labels++] = i + 1;
	/* target: the index of the first label of the name queried. */
	for (queries = 0; queries < DM_TREEWALK_QUERIES; queries++) {
		const char *name = norm + starts[target];

		n = lookup(ctx, name, record, sizeof(record));
		if (n < 0)
			return DM_TREEWALK_DNS;
		/* Several DMARC records at one name: all discarded. */
		if (n == 1) {
			record[sizeof(record) - 1] = '\0';
			found = name;
			psd = dm_dmarc_psd(record);
			if (psd == 'n') {
				org = name;
				break;
			}
			if (psd == 'y') {
				/* The name one label below it, on the way
				 * to domain (asked or skipped); domain
				 * itself when the walk started there. */
				org = target == 0 ? name :
				    norm + starts[target - 1];
				break;
			}
		}
		if (labels - target <= 1)
			break;		/* the last label was asked */
		if (target == 0 && labels > DM_TREEWALK_SHORTEN + 1)
			target = labels - DM_TREEWALK_SHORTEN;
		else
			target++;
	}
	if (org == NULL)
		org = found != NULL ? found : norm;
	len = strlen(org);
	if (len + 1 > size)
		return DM_TREEWALK_BADNAME;
	memcpy(out, org, len + 1);
	return DM_TREEWALK_OK;
}
