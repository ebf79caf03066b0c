/*
 * dnsrec.c - the DNS records of mail authentication, parsed and judged
 * (see dnsrec.h): DMARC (RFC 7489, RFC 9989), SPF (RFC 7208 check_host()
 * over the caller's lookups), DKIM keys (RFC 6376, RFC 8463) and BIMI.
 *
 * Pure: the only DNS is the caller's dm_dns_fn, the only output a list of
 * findings. Every record is copied into a buffer of bounded size before
 * it is taken apart, the SPF evaluation is bounded in depth and in the
 * lookups it makes even in walk mode (where it goes on past the limit to
 * say how far over it is), and the DER reader never reads past its
 * input.
 *
 * Failure modes: -1 out of memory (the findings list, a record copy);
 * everything else about a record is a finding, never an error.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/align.h"
#include "common/dnsrec.h"

#define RECORD_MAX	8192	/* a TXT record we take apart */
#define TAGS_MAX	48	/* tags in one tag=value list */

/* ---- findings ---- */

int
dm_findings_add(struct dm_findings *f, enum dm_sev sev, const char *code,
    const char *subject, const char *fix, const char *what, ...)
{
	struct dm_finding *item;
	va_list ap;

	if (f->count == f->alloc) {
		size_t alloc = f->alloc ? f->alloc * 2 : 16;
		struct dm_finding *items;

		if (alloc > SIZE_MAX / sizeof(*items))
			return -1;
		items = realloc(f->items, alloc * sizeof(*items));
		if (items == NULL)
			return -1;
		f->items = items;
		f->alloc = alloc;
	}
	item = &f->items[f->count++];
	item->sev = sev;
	snprintf(item->code, sizeof(item->code), "%s", code ? code : "");
	snprintf(item->subject, sizeof(item->subject), "%s",
	    subject ? subject : "");
	snprintf(item->fix, sizeof(item->fix), "%s", fix ? fix : "");
	va_start(ap, what);
	vsnprintf(item->what, sizeof(item->what), what, ap);
	va_end(ap);
	return 0;
}

void
dm_findings_free(struct dm_findings *f)
{
	free(f->items);
	f->items = NULL;
	f->count = f->alloc = 0;
}

enum dm_sev
dm_findings_worst(const struct dm_findings *f)
{
	enum dm_sev worst = DM_SEV_OK;
	size_t i;

	for (i = 0; i < f->count; i++)
		if (f->items[i].sev > worst)
			worst = f->items[i].sev;
	return worst;
}

const char *
dm_sev_name(enum dm_sev sev)
{
	switch (sev) {
	case DM_SEV_OK:
		return "ok";
	case DM_SEV_INFO:
		return "info";
	case DM_SEV_WARN:
		return "warn";
	case DM_SEV_FAIL:
		return "fail";
	}
	return "?";
}

void
dm_dns_result_free(struct dm_dns_result *r)
{
	size_t i;

	if (r->items != NULL) {
		for (i = 0; i < r->count; i++)
			free(r->items[i]);
		free(r->items);
	}
	r->items = NULL;
	r->count = 0;
}

/* ---- helpers ---- */

static int
is_space(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static char *
trim(char *s)
{
	char *end;

	while (is_space((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && is_space((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

static void
lower(char *s)
{
	for (; *s != '\0'; s++)
		*s = (char)tolower((unsigned char)*s);
}

/* Appends to a bounded string; what does not fit is cut. */
static void
append(char *dst, size_t size, const char *fmt, ...) DM_PRINTF(3, 4);

static void
append(char *dst, size_t size, const char *fmt, ...)
{
	size_t len = strlen(dst);
	va_list ap;

	if (len + 1 >= size)
		return;
	va_start(ap, fmt);
	vsnprintf(dst + len, size - len, fmt, ap);
	va_end(ap);
}

void
dm_txt_record(const char *name, const char *value, char *out, size_t size)
{
	size_t len = strlen(value), at, j;
	int n;

	if (size == 0)
		return;
	n = snprintf(out, size, "%s. TXT", name);
	at = n < 0 ? 0 : (size_t)n;
	for (j = 0; (j < len || j == 0) && at < size; j += 255) {
		n = snprintf(out + at, size - at, " \"%.*s\"",
		    (int)(len - j > 255 ? 255 : len - j), value + j);
		if (n < 0 || (size_t)n >= size - at) {
			/* Cut: say so rather than give half a record. */
			if (size > 4)
				memcpy(out + size - 4, "...", 4);
			return;
		}
		at += (size_t)n;
	}
}

/* The fix as a zone file line: name. TXT "record". */
static void
txt_line(char *out, size_t size, const char *subject, const char *record)
{
	dm_txt_record(subject, record, out, size);
}

/* Whether an SPF record is "v=spf1" and at most an all. */
static int
spf_only_all(const char *record)
{
	const char *p = record + 6;	/* "v=spf1" */

	while (*p == ' ')
		p++;
	if (*p == '-' || *p == '~' || *p == '?' || *p == '+')
		p++;
	if (strncasecmp(p, "all", 3) == 0)
		p += 3;
	while (*p == ' ')
		p++;
	return *p == '\0';
}

/* A domain name of letters, digits, '-' and '_' with a dot. */
static int
plain_domain(const char *d)
{
	size_t label = 0, len = 0;
	int dots = 0;

	if (*d == '\0' || *d == '.')
		return 0;
	for (; *d != '\0'; d++, len++) {
		if (*d == '.') {
			if (label == 0)
				return 0;
			label = 0;
			dots++;
			continue;
		}
		if (!isalnum((unsigned char)*d) && *d != '-' && *d != '_')
			return 0;
		if (++label > 63)
			return 0;
	}
	return label > 0 && dots > 0 && len <= 253;
}

/*
 * A tag=value list (DMARC, DKIM, BIMI): parts split at ';', names and
 * values trimmed, empty parts skipped. Pointers into buf.
 */
struct tag {
	char *name, *value;
};

struct taglist {
	char *buf;
	struct tag tags[TAGS_MAX];
	size_t count;
	char error[160];	/* the first syntax problem; "" */
};

static int
taglist_parse(const char *record, struct taglist *tl)
{
	char *part, *next;
	size_t len = strlen(record);

	memset(tl, 0, sizeof(*tl));
	if (len > RECORD_MAX) {
		snprintf(tl->error, sizeof(tl->error),
		    "the record is %zu octets long, over %d", len, RECORD_MAX);
		len = RECORD_MAX;
	}
	if ((tl->buf = malloc(len + 1)) == NULL)
		return -1;
	memcpy(tl->buf, record, len);
	tl->buf[len] = '\0';
	for (part = tl->buf; part != NULL; part = next) {
		char *eq, *name;

		if ((next = strchr(part, ';')) != NULL)
			*next++ = '\0';
		part = trim(part);
		if (*part == '\0')
			continue;
		if ((eq = strchr(part, '=')) == NULL) {
			if (tl->error[0] == '\0')
				snprintf(tl->error, sizeof(tl->error),
				    "\"%.60s\" is no tag=value", part);
			continue;
		}
		*eq = '\0';
		name = trim(part);
		if (*name == '\0' || !isalpha((unsigned char)*name) ||
		    strspn(name, "abcdefghijklmnopqrstuvwxyz"
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != strlen(name)) {
			if (tl->error[0] == '\0')
				snprintf(tl->error, sizeof(tl->error),
				    "\"%.60s\" is no tag name", name);
			continue;
		}
		if (tl->count == TAGS_MAX) {
			if (tl->error[0] == '\0')
				snprintf(tl->error, sizeof(tl->error),
				    "more than %d tags", TAGS_MAX);
			break;
		}
		tl->tags[tl->count].name = name;
		tl->tags[tl->count].value = trim(eq + 1);
		tl->count++;
	}
	return 0;
}

/* Index of the first tag called name, or -1. */
static int
tag_find(const struct taglist *tl, const char *name)
{
	size_t i;

	for (i = 0; i < tl->count; i++)
		if (strcasecmp(tl->tags[i].name, name) == 0)
			return (int)i;
	return -1;
}

/* The first tag named like an earlier one, or NULL. */
static const char *
tag_duplicate(const struct taglist *tl)
{
	size_t i, j;

	for (i = 1; i < tl->count; i++)
		for (j = 0; j < i; j++)
			if (strcasecmp(tl->tags[i].name,
			    tl->tags[j].name) == 0)
				return tl->tags[i].name;
	return NULL;
}

static int
one_of(const char *value, const char *const *words)
{
	for (; *words != NULL; words++)
		if (strcasecmp(value, *words) == 0)
			return 1;
	return 0;
}

/* ---- DMARC ---- */

static const char *const dmarc_policies[] = {
	"none", "quarantine", "reject", NULL
};

/* The tags that may stay in the fixed record, in the order written. */
static const char *const dmarc_known[] = {
	"v", "p", "sp", "np", "pct", "t", "adkim", "aspf", "psd", "rua",
	"ruf", "fo", "ri", "rf", NULL
};

/* A size limit: digits with an optional k, m, g or t (RFC 7489 6.4). */
static int
dmarc_size(const char *s, uint64_t *bytes)
{
	uint64_t n = 0, unit = 1;

	if (!isdigit((unsigned char)*s))
		return -1;
	for (; isdigit((unsigned char)*s); s++) {
		if (n > (UINT64_MAX - 9) / 10)
			return -1;
		n = n * 10 + (uint64_t)(*s - '0');
	}
	switch (tolower((unsigned char)*s)) {
	case '\0':
		break;
	case 'k':
		unit = 1024ULL;
		break;
	case 'm':
		unit = 1024ULL * 1024;
		break;
	case 'g':
		unit = 1024ULL * 1024 * 1024;
		break;
	case 't':
		unit = 1024ULL * 1024 * 1024 * 1024;
		break;
	default:
		return -1;
	}
	if (*s != '\0' && s[1] != '\0')
		return -1;
	if (n > UINT64_MAX / unit)
		return -1;
	*bytes = n * unit;
	return 0;
}

/*
 * One rua/ruf list into uris. A URI that is not one fails (its text in
 * bad); a scheme other than mailto is kept and warned of by the caller.
 * Returns the URIs kept; *over is set when there were more than fit.
 */
static unsigned
dmarc_uris(const char *value, struct dm_dmarc_uri *uris, char *bad,
    size_t badsize, int *over)
{
	char list[1024], *item, *next;
	unsigned count = 0;

	bad[0] = '\0';
	*over = 0;
	snprintf(list, sizeof(list), "%s", value);
	for (item = list; item != NULL; item = next) {
		struct dm_dmarc_uri u;
		char *bang, *colon, *at;

		if ((next = strchr(item, ',')) != NULL)
			*next++ = '\0';
		item = trim(item);
		memset(&u, 0, sizeof(u));
		if ((bang = strchr(item, '!')) != NULL) {
			*bang = '\0';
			if (dmarc_size(bang + 1, &u.max_size) == -1)
				goto bad;
		}
		if ((colon = strchr(item, ':')) == NULL || colon == item ||
		    (size_t)(colon - item) >= sizeof(u.scheme))
			goto bad;
		*colon = '\0';
		if (!isalpha((unsigned char)*item) || strspn(item,
		    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "0123456789+-.") != strlen(item))
			goto bad;
		snprintf(u.scheme, sizeof(u.scheme), "%s", item);
		lower(u.scheme);
		if (strcmp(u.scheme, "mailto") == 0) {
			char domain[DM_DOMAIN_MAX];

			/* Query parameters of a mailto: URI are no part of
			 * the address. */
			colon[1 + strcspn(colon + 1, "?")] = '\0';
			at = strrchr(colon + 1, '@');
			if (at == NULL || at == colon + 1 ||
			    strlen(colon + 1) >= sizeof(u.address) ||
			    strpbrk(colon + 1, " \t<>\"") != NULL ||
			    dm_domain_norm(at + 1, domain,
			    sizeof(domain)) == -1 || !plain_domain(domain) ||
			    strlen(domain) >= sizeof(u.domain)) {
				*colon = ':';
				goto bad;
			}
			snprintf(u.address, sizeof(u.address), "%s",
			    colon + 1);
			snprintf(u.domain, sizeof(u.domain), "%s", domain);
		} else {
			if (colon[1] == '\0') {
				*colon = ':';
				goto bad;
			}
			snprintf(u.address, sizeof(u.address), "%s",
			    colon + 1);
		}
		if (count == DM_DMARC_URIS) {
			*over = 1;
			continue;
		}
		uris[count++] = u;
		continue;
bad:
		if (bad[0] == '\0')
			snprintf(bad, badsize, "%s%s%s", item,
			    bang ? "!" : "", bang ? bang + 1 : "");
	}
	return count;
}

/*
 * keep_good_uris - a rua= or ruf= value with the URIs that are no URI
 * taken out, in place (the good ones as written, size limits and all).
 */
static void
keep_good_uris(char *value)
{
	char in[1024], *item, *next, bad[256];
	struct dm_dmarc_uri u[1];
	size_t at = 0;
	int over;

	snprintf(in, sizeof(in), "%s", value);
	value[0] = '\0';
	for (item = in; item != NULL; item = next) {
		if ((next = strchr(item, ',')) != NULL)
			*next++ = '\0';
		if (dmarc_uris(item, u, bad, sizeof(bad), &over) == 1 &&
		    bad[0] == '\0') {
			/* Never longer than value: a part of it. */
			at += (size_t)sprintf(value + at, "%s%s", at ? "," :
			    "", item + strspn(item, " \t"));
		}
	}
}

/* fo=: 0, 1, d, s separated by colons. */
static int
dmarc_fo(const char *value)
{
	const char *s = value;

	if (*s == '\0')
		return 0;
	for (;;) {
		while (*s == ' ')
			s++;
		if (*s != '0' && *s != '1' && tolower((unsigned char)*s) !=
		    'd' && tolower((unsigned char)*s) != 's')
			return 0;
		s++;
		while (*s == ' ')
			s++;
		if (*s == '\0')
			return 1;
		if (*s++ != ':')
			return 0;
	}
}

static int
single_char(const char *value, const char *allowed, char *out)
{
	if (strlen(value) != 1 || strchr(allowed,
	    tolower((unsigned char)value[0])) == NULL)
		return 0;
	*out = (char)tolower((unsigned char)value[0]);
	return 1;
}

static int
parse_uint(const char *s, long max, long *out)
{
	long n = 0;

	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++) {
		if (!isdigit((unsigned char)*s))
			return 0;
		n = n * 10 + (*s - '0');
		if (n > max)
			return 0;
	}
	*out = n;
	return 1;
}

#define DF(sev, code, fix, ...) do {					\
	if (dm_findings_add(f, sev, code, subject, fix, __VA_ARGS__) == -1) \
		goto nomem;						\
	if ((sev) >= DM_SEV_WARN)					\
		problems++;						\
} while (0)

int
dm_dmarc_parse(const char *record, const char *domain, const char *subject,
    struct dm_dmarc_policy *out, struct dm_findings *f)
{
	struct taglist tl;
	char keep[TAGS_MAX];		/* the tag stays in the fixed record */
	char fixed[DM_FINDING_FIX - 300], line[DM_FINDING_FIX];
	char bad[320];
	int p_ok = 0, rua_ok = 0, version_ok, problems = 0;
	int need_fix = 0;
	size_t i;

	memset(out, 0, sizeof(*out));
	out->pct = -1;
	out->ri = -1;
	out->adkim = out->aspf = 'r';
	snprintf(out->fo, sizeof(out->fo), "0");
	if (taglist_parse(record, &tl) == -1)
		return -1;
	memset(keep, 1, sizeof(keep));

	version_ok = tl.count > 0 && strcasecmp(tl.tags[0].name, "v") == 0 &&
	    strcmp(tl.tags[0].value, "DMARC1") == 0;
	if (!version_ok) {
		int v = tag_find(&tl, "v");

		if (v > 0)
			DF(DM_SEV_FAIL, "dmarc.version", "", "v=%s is not "
			    "the first tag: a DMARC record must begin with "
			    "v=DMARC1, receivers ignore this one",
			    tl.tags[v].value);
		else
			DF(DM_SEV_FAIL, "dmarc.version", "", "the record does "
			    "not begin with v=DMARC1 (\"%.40s\"): receivers "
			    "ignore it", record);
		free(tl.buf);
		return 0;
	}
	if (tl.error[0] != '\0') {
		DF(DM_SEV_FAIL, "dmarc.syntax", "", "%s: receivers may "
		    "ignore the whole record", tl.error);
		need_fix = 1;
	}

	for (i = 1; i < tl.count; i++) {
		const char *name = tl.tags[i].name, *value = tl.tags[i].value;
		size_t j;
		int dup = 0;

		for (j = 0; j < i; j++)
			if (strcasecmp(tl.tags[j].name, name) == 0)
				dup = 1;
		if (dup) {
			DF(DM_SEV_FAIL, "dmarc.duplicate", "", "the tag %s= "
			    "appears more than once (%s=%s is the later one): "
			    "RFC 7489 leaves the record's meaning undefined",
			    name, name, value);
			keep[i] = 0;
			need_fix = 1;
			continue;
		}
		if (strcasecmp(name, "v") == 0) {
			keep[i] = 0;
		} else if (strcasecmp(name, "p") == 0 ||
		    strcasecmp(name, "sp") == 0 ||
		    strcasecmp(name, "np") == 0) {
			char *dst = strcasecmp(name, "p") == 0 ? out->p :
			    strcasecmp(name, "sp") == 0 ? out->sp : out->np;

			if (one_of(value, dmarc_policies)) {
				snprintf(dst, sizeof(out->p), "%s", value);
				lower(dst);
				if (dst == out->p)
					p_ok = 1;
			} else if (dst != out->p) {
				char code[16];

				snprintf(code, sizeof(code), "dmarc.%s", name);
				lower(code);
				DF(DM_SEV_FAIL, code, "", "%s=%s is not none, "
				    "quarantine or reject: %s", name, value,
				    strcasecmp(name, "sp") == 0 ? "RFC 7489 "
				    "receivers then treat the whole record as "
				    "p=none (with a valid rua=) or ignore it "
				    "(6.6.3), whatever p= says" : "receivers "
				    "ignore it and apply sp= or p= instead");
				keep[i] = 0;
				need_fix = 1;
			} else
				keep[i] = 0;
		} else if (strcasecmp(name, "pct") == 0) {
			long pct;

			if (!parse_uint(value, 100, &pct)) {
				DF(DM_SEV_FAIL, "dmarc.pct", "", "pct=%s is "
				    "not a number from 0 to 100", value);
				keep[i] = 0;
				need_fix = 1;
			} else {
				out->pct = (int)pct;
				if (pct < 100)
					DF(DM_SEV_INFO, "dmarc.pct", "",
					    "pct=%ld: RFC 7489 receivers apply "
					    "the policy to %ld%% of failing "
					    "mail; DMARCbis (RFC 9989) removed "
					    "pct, its receivers ignore it (t=y "
					    "is its testing mode)", pct, pct);
			}
		} else if (strcasecmp(name, "t") == 0) {
			if (!single_char(value, "yn", &out->t)) {
				DF(DM_SEV_FAIL, "dmarc.t", "", "t=%s is not y "
				    "or n", value);
				keep[i] = 0;
				need_fix = 1;
			} else if (out->t == 'y')
				DF(DM_SEV_INFO, "dmarc.testing", "", "t=y: "
				    "testing mode, DMARCbis receivers apply "
				    "one step less than p= (reject as "
				    "quarantine, quarantine as none)");
		} else if (strcasecmp(name, "adkim") == 0 ||
		    strcasecmp(name, "aspf") == 0) {
			char *dst = tolower((unsigned char)name[1]) == 'd' ?
			    &out->adkim : &out->aspf;

			if (!single_char(value, "rs", dst)) {
				char code[16];

				snprintf(code, sizeof(code), "dmarc.%s", name);
				lower(code);
				DF(DM_SEV_FAIL, code, "", "%s=%s is not r "
				    "(relaxed) or s (strict)", name, value);
				keep[i] = 0;
				need_fix = 1;
			}
		} else if (strcasecmp(name, "psd") == 0) {
			if (!single_char(value, "ynu", &out->psd)) {
				DF(DM_SEV_FAIL, "dmarc.psd", "", "psd=%s is "
				    "not y, n or u", value);
				keep[i] = 0;
				need_fix = 1;
			}
		} else if (strcasecmp(name, "rua") == 0 ||
		    strcasecmp(name, "ruf") == 0) {
			int is_rua = tolower((unsigned char)name[2]) == 'a';
			struct dm_dmarc_uri *uris = is_rua ? out->rua :
			    out->ruf;
			unsigned n, k;
			int over;

			n = dmarc_uris(value, uris, bad, sizeof(bad), &over);
			if (is_rua)
				out->nrua = n;
			else
				out->nruf = n;
			if (bad[0] != '\0') {
				DF(DM_SEV_FAIL, "dmarc.bad_uri", "", "%s= "
				    "holds \"%s\", which is no URI (a "
				    "mailto:local@domain with an optional "
				    "!size such as !10m): no reports go there",
				    name, bad);
				keep[i] = 0;
				need_fix = 1;
			}
			if (over)
				DF(DM_SEV_WARN, "dmarc.too_many_uris", "",
				    "%s= lists more than %d URIs: receivers "
				    "send to a few at most", name,
				    DM_DMARC_URIS);
			for (k = 0; k < n; k++)
				if (strcmp(uris[k].scheme, "mailto") != 0)
					DF(DM_SEV_WARN, "dmarc.uri_scheme",
					    "", "%s=%s:%s: receivers send "
					    "reports by mail only (mailto:)",
					    name, uris[k].scheme,
					    uris[k].address);
			/* One good URI is enough (RFC 7489 6.6.3): the
			 * record keeps the good ones. */
			if (is_rua && n > 0)
				rua_ok = 1;
			if (bad[0] != '\0' && n > 0) {
				keep_good_uris(tl.tags[i].value);
				keep[i] = 1;
			}
		} else if (strcasecmp(name, "fo") == 0) {
			if (!dmarc_fo(value)) {
				DF(DM_SEV_FAIL, "dmarc.fo", "", "fo=%s is not "
				    "0, 1, d or s separated by colons", value);
				keep[i] = 0;
				need_fix = 1;
			} else {
				snprintf(out->fo, sizeof(out->fo), "%s",
				    value);
				lower(out->fo);
			}
		} else if (strcasecmp(name, "ri") == 0) {
			if (!parse_uint(value, 0x7fffffffL, &out->ri)) {
				DF(DM_SEV_FAIL, "dmarc.ri", "", "ri=%s is "
				    "not a number of seconds", value);
				keep[i] = 0;
				need_fix = 1;
			}
		} else if (strcasecmp(name, "rf") == 0) {
			if (strcasecmp(value, "afrf") != 0) {
				DF(DM_SEV_FAIL, "dmarc.rf", "", "rf=%s: the "
				    "only failure report format is afrf",
				    value);
				keep[i] = 0;
				need_fix = 1;
			}
		} else {
			DF(DM_SEV_WARN, "dmarc.unknown_tag", "", "unknown tag "
			    "%s=%s: receivers ignore it (a typo?)", name,
			    value);
			keep[i] = 0;
			need_fix = 1;
		}
	}

	/* RFC 7489 6.6.3: a missing or invalid p= with a valid rua= is
	 * p=none; without rua= the record is not a policy at all. */
	out->valid = p_ok || rua_ok;
	if (!p_ok) {
		int p = tag_find(&tl, "p");

		snprintf(out->p, sizeof(out->p), "none");
		need_fix = 1;
		p = p >= 0 ? p : 0;
		if (p == 0)
			DF(DM_SEV_FAIL, "dmarc.p", "", "no p= tag: %s",
			    rua_ok ? "receivers treat the record as p=none" :
			    "without p= and rua= receivers ignore the record");
		else
			DF(DM_SEV_FAIL, "dmarc.p", "", "p=%s is not none, "
			    "quarantine or reject: %s", tl.tags[p].value,
			    rua_ok ? "receivers treat the record as p=none" :
			    "without a valid p= and rua= receivers ignore "
			    "the record");
	}
	if (!rua_ok)
		need_fix = 1;

	/* The record to publish: v, p first, the good tags in the order
	 * given, and a rua= where there was none. */
	snprintf(fixed, sizeof(fixed), "v=DMARC1; p=%s", out->p);
	for (i = 1; i < tl.count; i++)
		if (keep[i] && strcasecmp(tl.tags[i].name, "p") != 0 &&
		    one_of(tl.tags[i].name, dmarc_known))
			append(fixed, sizeof(fixed), "; %s=%s",
			    tl.tags[i].name, tl.tags[i].value);
	if (!rua_ok)
		append(fixed, sizeof(fixed), "; rua=mailto:dmarc-reports@%s",
		    domain);
	txt_line(line, sizeof(line), subject, fixed);

	if (!rua_ok)
		DF(strcmp(out->p, "none") == 0 ? DM_SEV_WARN : DM_SEV_INFO,
		    "dmarc.no_rua", line, "no valid rua=: no receiver sends "
		    "aggregate reports, so %s", strcmp(out->p, "none") == 0 ?
		    "p=none teaches you nothing" : "you do not see who "
		    "sends as the domain or what fails");
	/* Every finding about this record that wants a change gets the one
	 * record that makes all of them. */
	if (need_fix)
		for (i = 0; i < f->count; i++)
			if (f->items[i].sev >= DM_SEV_WARN &&
			    strcmp(f->items[i].subject, subject) == 0 &&
			    strncmp(f->items[i].code, "dmarc.", 6) == 0 &&
			    f->items[i].fix[0] == '\0')
				snprintf(f->items[i].fix, DM_FINDING_FIX, "%s",
				    line);
	if (problems == 0)
		DF(DM_SEV_OK, "dmarc.ok", "", "v=DMARC1; p=%s%s%s, reports "
		    "to %s%s", out->p, out->sp[0] ? ", sp=" : "", out->sp,
		    out->nrua ? out->rua[0].address : "nobody",
		    out->nrua > 1 ? " and others" : "");
	free(tl.buf);
	return 0;
nomem:
	free(tl.buf);
	return -1;
}

int
dm_dmarc_external(const char *domain, const char *dest_domain, char *out,
    size_t size)
{
	char org[DM_DOMAIN_MAX], dest_org[DM_DOMAIN_MAX];
	int n;

	if (size > 0)
		out[0] = '\0';
	if (dm_org_domain(domain, org, sizeof(org)) == 0 &&
	    dm_org_domain(dest_domain, dest_org, sizeof(dest_org)) == 0 &&
	    strcmp(org, dest_org) == 0)
		return 1;
	n = snprintf(out, size, "%s._report._dmarc.%s", domain, dest_domain);
	if (n < 0 || (size_t)n >= size) {
		if (size > 0)
			out[0] = '\0';
		return -1;
	}
	return 0;
}

/* ---- DKIM ---- */

/* Base64 with white space ignored (RFC 6376 3.6.1: FWS inside p=). */
static int
base64_decode(const char *in, uint8_t *out, size_t size, size_t *len,
    char *why, size_t whysize)
{
	uint32_t acc = 0;
	size_t n = 0, bits = 0, pad = 0;

	for (; *in != '\0'; in++) {
		int c = (unsigned char)*in, v;

		if (is_space(c))
			continue;
		if (c == '=') {
			pad++;
			continue;
		}
		if (pad > 0) {
			snprintf(why, whysize, "data after the '=' padding");
			return -1;
		}
		if (c >= 'A' && c <= 'Z')
			v = c - 'A';
		else if (c >= 'a' && c <= 'z')
			v = c - 'a' + 26;
		else if (c >= '0' && c <= '9')
			v = c - '0' + 52;
		else if (c == '+')
			v = 62;
		else if (c == '/')
			v = 63;
		else {
			snprintf(why, whysize, "'%c' is no base64 character",
			    isprint(c) ? c : '?');
			return -1;
		}
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n == size) {
				snprintf(why, whysize, "the key is over %zu "
				    "octets", size);
				return -1;
			}
			out[n++] = (uint8_t)(acc >> bits);
		}
	}
	if (pad > 2 || bits >= 6 || (pad > 0 && bits / 2 != pad)) {
		snprintf(why, whysize, "the base64 ends short (its length "
		    "is not a whole number of octets)");
		return -1;
	}
	*len = n;
	return 0;
}

/* A bounded DER reader: one TLV at a time, never past the input. */
struct der {
	const uint8_t *p;
	size_t len;
};

static int
der_next(struct der *d, uint8_t tag, struct der *content, char *why,
    size_t whysize)
{
	size_t len, i, nlen;

	if (d->len < 2) {
		snprintf(why, whysize, "the DER ends early (truncated key)");
		return -1;
	}
	if (d->p[0] != tag) {
		snprintf(why, whysize, "the DER holds tag 0x%02x where 0x%02x "
		    "(%s) belongs", d->p[0], tag, tag == 0x30 ? "SEQUENCE" :
		    tag == 0x02 ? "INTEGER" : tag == 0x03 ? "BIT STRING" :
		    tag == 0x06 ? "OBJECT IDENTIFIER" : "?");
		return -1;
	}
	len = d->p[1];
	i = 2;
	if (len & 0x80) {
		nlen = len & 0x7f;
		if (nlen == 0 || nlen > 4) {
			snprintf(why, whysize, "the DER has a bad length");
			return -1;
		}
		if (d->len < 2 + nlen) {
			snprintf(why, whysize, "the DER ends early (truncated "
			    "key)");
			return -1;
		}
		for (len = 0; nlen > 0; nlen--)
			len = (len << 8) | d->p[i++];
	}
	if (len > d->len - i) {
		snprintf(why, whysize, "the DER ends early: %zu octets "
		    "announced, %zu there (truncated key)", len, d->len - i);
		return -1;
	}
	content->p = d->p + i;
	content->len = len;
	d->p += i + len;
	d->len -= i + len;
	return 0;
}

static const uint8_t oid_rsa[] = {
	0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01
};
static const uint8_t oid_ed25519[] = { 0x2b, 0x65, 0x70 };

/* RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER } */
static int
rsa_public_key(struct der *d, unsigned *bits, char *why, size_t whysize)
{
	struct der seq, n, e;
	uint8_t top;

	if (der_next(d, 0x30, &seq, why, whysize) == -1 ||
	    der_next(&seq, 0x02, &n, why, whysize) == -1 ||
	    der_next(&seq, 0x02, &e, why, whysize) == -1)
		return -1;
	if (seq.len != 0 || d->len != 0) {
		snprintf(why, whysize, "the DER has octets after the key");
		return -1;
	}
	if (n.len > 0 && (n.p[0] & 0x80)) {
		snprintf(why, whysize, "the RSA modulus is negative");
		return -1;
	}
	while (n.len > 0 && n.p[0] == 0) {
		n.p++;
		n.len--;
	}
	if (n.len == 0 || e.len == 0) {
		snprintf(why, whysize, "the RSA modulus or exponent is zero");
		return -1;
	}
	*bits = (unsigned)(n.len - 1) * 8;
	for (top = n.p[0]; top != 0; top >>= 1)
		(*bits)++;
	return 0;
}

/* The modulus size of a SubjectPublicKeyInfo or a bare RSAPublicKey. */
static int
rsa_key_bits(const uint8_t *key, size_t len, unsigned *bits, char *why,
    size_t whysize)
{
	struct der d = { key, len }, outer, alg, oid, bitstr, probe;

	probe = d;
	if (der_next(&probe, 0x30, &outer, why, whysize) == -1)
		return -1;
	if (outer.len > 0 && outer.p[0] == 0x02)
		return rsa_public_key(&d, bits, why, whysize);
	if (der_next(&d, 0x30, &outer, why, whysize) == -1 ||
	    der_next(&outer, 0x30, &alg, why, whysize) == -1 ||
	    der_next(&alg, 0x06, &oid, why, whysize) == -1)
		return -1;
	if (oid.len == sizeof(oid_ed25519) &&
	    memcmp(oid.p, oid_ed25519, oid.len) == 0) {
		snprintf(why, whysize, "the key is an Ed25519 "
		    "SubjectPublicKeyInfo: k=ed25519 wants the 32 raw octets");
		return -1;
	}
	if (oid.len != sizeof(oid_rsa) || memcmp(oid.p, oid_rsa,
	    oid.len) != 0) {
		snprintf(why, whysize, "the key's algorithm is not "
		    "rsaEncryption");
		return -1;
	}
	if (der_next(&outer, 0x03, &bitstr, why, whysize) == -1)
		return -1;
	if (outer.len != 0 || d.len != 0) {
		snprintf(why, whysize, "the DER has octets after the key");
		return -1;
	}
	if (bitstr.len < 1 || bitstr.p[0] != 0) {
		snprintf(why, whysize, "the key's BIT STRING is malformed");
		return -1;
	}
	bitstr.p++;
	bitstr.len--;
	return rsa_public_key(&bitstr, bits, why, whysize);
}

/*
 * One DKIM key record into *out, its findings to f. Returns the number of
 * warnings and failures, or -1 out of memory.
 */
static int
dkim_one(const char *record, const char *subject, struct dm_dkim_key *out,
    struct dm_findings *f)
{
	struct taglist tl;
	uint8_t key[2048];
	char why[160];
	const char *dup;
	size_t keylen, i;
	int problems = 0, p, v;

	memset(out, 0, sizeof(*out));
	snprintf(out->k, sizeof(out->k), "rsa");
	if (taglist_parse(record, &tl) == -1)
		return -1;
	if (tl.error[0] != '\0')
		DF(DM_SEV_FAIL, "dkim.syntax", "", "%s: verifiers reject the "
		    "key record", tl.error);
	if ((dup = tag_duplicate(&tl)) != NULL)
		DF(DM_SEV_FAIL, "dkim.syntax", "", "the tag %s= appears more "
		    "than once: RFC 6376 3.2 makes the record invalid", dup);
	v = tag_find(&tl, "v");
	if (v > 0 || (v == 0 && strcmp(tl.tags[0].value, "DKIM1") != 0))
		DF(DM_SEV_FAIL, "dkim.version", "", "v=%s%s: verifiers "
		    "ignore the key", tl.tags[v].value, v > 0 ? " is not "
		    "the first tag" : " is not DKIM1");
	for (i = 0; i < tl.count; i++) {
		const char *name = tl.tags[i].name, *value = tl.tags[i].value;

		if (strcasecmp(name, "k") == 0) {
			if (strcasecmp(value, "rsa") != 0 &&
			    strcasecmp(value, "ed25519") != 0)
				DF(DM_SEV_FAIL, "dkim.k", "", "k=%s: "
				    "verifiers know rsa and ed25519 only",
				    value);
			snprintf(out->k, sizeof(out->k), "%s", value);
			lower(out->k);
		} else if (strcasecmp(name, "t") == 0) {
			char flags[64], *flag, *next;

			snprintf(flags, sizeof(flags), "%s", value);
			for (flag = flags; flag != NULL; flag = next) {
				if ((next = strchr(flag, ':')) != NULL)
					*next++ = '\0';
				if (strcmp(trim(flag), "y") == 0)
					out->testing = 1;
			}
		} else if (strcasecmp(name, "h") == 0) {
			char list[64], *alg, *next;
			int known = 0;

			snprintf(out->h, sizeof(out->h), "%s", value);
			snprintf(list, sizeof(list), "%s", value);
			for (alg = list; alg != NULL; alg = next) {
				if ((next = strchr(alg, ':')) != NULL)
					*next++ = '\0';
				if (strcasecmp(trim(alg), "sha256") == 0)
					known = 1;
			}
			if (!known)
				DF(DM_SEV_FAIL, "dkim.h", "", "h=%s does not "
				    "allow sha256: verifiers refuse every "
				    "signature (sha1 is obsolete, RFC 8301)",
				    value);
		} else if (strcasecmp(name, "s") == 0) {
			if (strstr(value, "*") == NULL &&
			    strstr(value, "email") == NULL)
				DF(DM_SEV_FAIL, "dkim.s", "", "s=%s: the key "
				    "is not for email (s=* or s=email)",
				    value);
		}
	}
	if ((p = tag_find(&tl, "p")) < 0) {
		DF(DM_SEV_FAIL, "dkim.no_key", "", "no p= tag: this is no "
		    "DKIM key record");
		goto done;
	}
	if (tl.tags[p].value[strspn(tl.tags[p].value, " \t\r\n")] == '\0') {
		out->revoked = 1;
		DF(DM_SEV_FAIL, "dkim.revoked", "", "p= is empty: the key is "
		    "revoked, every signature with this selector fails");
		goto done;
	}
	if (base64_decode(tl.tags[p].value, key, sizeof(key), &keylen, why,
	    sizeof(why)) == -1) {
		DF(DM_SEV_FAIL, "dkim.base64", "", "p= is not base64: %s",
		    why);
		goto done;
	}
	if (strcmp(out->k, "ed25519") == 0) {
		if (keylen != 32) {
			DF(DM_SEV_FAIL, "dkim.key", "", "k=ed25519 wants a "
			    "32-octet key in p=, this one has %zu", keylen);
			goto done;
		}
		out->bits = 256;
	} else if (strcmp(out->k, "rsa") == 0) {
		if (keylen > 11 && memcmp(key, "\0\0\0\7ssh-rsa", 11) == 0) {
			DF(DM_SEV_FAIL, "dkim.key", "", "p= is an SSH public "
			    "key (ssh-rsa), not a DKIM key: publish the DKIM "
			    "public key the signing platform gives (base64 "
			    "DER, \"MIIB...\")");
			goto done;
		}
		if (rsa_key_bits(key, keylen, &out->bits, why,
		    sizeof(why)) == -1) {
			DF(DM_SEV_FAIL, "dkim.key", "", "p= is no RSA public "
			    "key: %s", why);
			goto done;
		}
		if (out->bits < 1024)
			DF(DM_SEV_FAIL, "dkim.short_key", "", "a %u-bit RSA "
			    "key: verifiers refuse keys under 1024 bits "
			    "(RFC 8301); publish a 2048-bit key", out->bits);
		else if (out->bits < 2048)
			DF(DM_SEV_WARN, "dkim.short_key", "", "a %u-bit RSA "
			    "key: RFC 8301 asks for 2048 bits; publish a "
			    "2048-bit key under a new selector", out->bits);
	} else
		goto done;
	out->valid = v <= 0 && (v < 0 || strcmp(tl.tags[0].value,
	    "DKIM1") == 0);
	if (out->testing)
		DF(DM_SEV_WARN, "dkim.testing", "", "t=y: the domain is "
		    "testing DKIM, verifiers may treat failures as no "
		    "signature");
	if (problems == 0)
		DF(DM_SEV_OK, "dkim.ok", "", "%s key of %u bits", out->k,
		    out->bits);
done:
	free(tl.buf);
	return problems;
nomem:
	free(tl.buf);
	return -1;
}

int
dm_dkim_parse(const char *const *records, size_t count, const char *subject,
    struct dm_dkim_key *out, struct dm_findings *f)
{
	struct dm_findings scratch = { NULL, 0, 0 };
	struct dm_dkim_key key;
	size_t i, chosen = 0, j;
	int problems = 0, found = 0;
	char *joined = NULL;

	memset(out, 0, sizeof(*out));
	snprintf(out->k, sizeof(out->k), "rsa");
	if (count == 0) {
		DF(DM_SEV_FAIL, "dkim.none", "", "no DKIM key record: every "
		    "signature with this selector fails");
		return 0;
	}
	/* With several records, judge the first one that is a good key:
	 * it is the one to keep. */
	for (i = 0; i < count && !found; i++) {
		if (dkim_one(records[i], subject, &key, &scratch) == -1)
			goto nomem;
		if (key.valid || i == 0) {
			chosen = i;
			*out = key;
			found = key.valid;
		}
		dm_findings_free(&scratch);
	}
	/*
	 * None is a key alone: the usual mistake (the Repro guide warns of
	 * it) is a long key cut into one record per piece. Joined in the
	 * order given, or the other way for two, it may be one: then that
	 * is the record to publish.
	 */
	if (count > 1 && !found) {
		size_t total = 0, order;

		for (i = 0; i < count; i++)
			total += strlen(records[i]);
		if ((joined = malloc(total + 1)) == NULL)
			goto nomem;
		for (order = 0; order < (count == 2 ? 2U : 1U) && !found;
		    order++) {
			joined[0] = '\0';
			for (i = 0; i < count; i++)
				strcat(joined, records[order ? count - 1 - i :
				    i]);
			if (dkim_one(joined, subject, &key, &scratch) == -1)
				goto nomem;
			dm_findings_free(&scratch);
			found = key.valid;
		}
		if (!found) {
			free(joined);
			joined = NULL;
		}
	}
	if (count > 1) {
		char fix[DM_FINDING_FIX];
		const char *r = joined != NULL ? joined : records[chosen];

		dm_txt_record(subject, r, fix, sizeof(fix));
		DF(DM_SEV_FAIL, "dkim.multiple_records", fix, "%zu TXT "
		    "records at the selector: verifiers take any one of them "
		    "and fail signatures when it is the wrong one; publish "
		    "one record (a long key as several strings of one "
		    "record)%s", count, joined != NULL ? ". Joined, they "
		    "make one key: the fix is that record" : "");
	}
	if (dkim_one(joined != NULL ? joined : records[chosen], subject, &key,
	    f) == -1)
		goto nomem;
	free(joined);
	joined = NULL;
	*out = key;
	if (problems > 0)
		out->valid = 0;
	/* The OK of the key itself says nothing of the other records. */
	if (problems > 0)
		for (j = 0; j < f->count; j++)
			if (f->items[j].sev == DM_SEV_OK &&
			    strcmp(f->items[j].code, "dkim.ok") == 0 &&
			    strcmp(f->items[j].subject, subject) == 0)
				f->items[j].sev = DM_SEV_INFO;
	return 0;
nomem:
	free(joined);
	dm_findings_free(&scratch);
	return -1;
}

/* ---- BIMI ---- */

static int
https_url(const char *url)
{
	return strncasecmp(url, "https://", 8) == 0 && url[8] != '\0' &&
	    url[8] != '/' && strpbrk(url, " \t\"<>") == NULL;
}

int
dm_bimi_parse(const char *record, const char *subject, struct dm_bimi *out,
    struct dm_findings *f)
{
	struct taglist tl;
	const char *dup;
	int problems = 0, l, a;

	memset(out, 0, sizeof(*out));
	if (taglist_parse(record, &tl) == -1)
		return -1;
	if (tl.count == 0 || strcasecmp(tl.tags[0].name, "v") != 0 ||
	    strcmp(tl.tags[0].value, "BIMI1") != 0) {
		DF(DM_SEV_FAIL, "bimi.version", "", "the record does not "
		    "begin with v=BIMI1: mailbox providers ignore it");
		goto done;
	}
	if (tl.error[0] != '\0')
		DF(DM_SEV_FAIL, "bimi.syntax", "", "%s", tl.error);
	if ((dup = tag_duplicate(&tl)) != NULL)
		DF(DM_SEV_FAIL, "bimi.syntax", "", "the tag %s= appears more "
		    "than once", dup);
	if ((l = tag_find(&tl, "l")) < 0)
		DF(DM_SEV_FAIL, "bimi.syntax", "", "no l= tag (the logo's "
		    "https URL; empty to decline BIMI)");
	else if (tl.tags[l].value[0] == '\0')
		DF(DM_SEV_INFO, "bimi.declined", "", "l= is empty: the domain "
		    "declines to show a logo");
	else if (strncasecmp(tl.tags[l].value, "http://", 7) == 0)
		DF(DM_SEV_FAIL, "bimi.http", "", "l=%s: the logo must be "
		    "fetched over https", tl.tags[l].value);
	else if (!https_url(tl.tags[l].value))
		DF(DM_SEV_FAIL, "bimi.syntax", "", "l=%s is no https URL",
		    tl.tags[l].value);
	else {
		size_t n = strlen(tl.tags[l].value);

		snprintf(out->l, sizeof(out->l), "%s", tl.tags[l].value);
		if (n < 4 || strcasecmp(tl.tags[l].value + n - 4, ".svg") != 0)
			DF(DM_SEV_WARN, "bimi.not_svg", "", "l=%s does not "
			    "name an .svg file: BIMI logos are SVG Tiny PS",
			    tl.tags[l].value);
	}
	if ((a = tag_find(&tl, "a")) >= 0 && tl.tags[a].value[0] != '\0') {
		if (strncasecmp(tl.tags[a].value, "http://", 7) == 0)
			DF(DM_SEV_FAIL, "bimi.http", "", "a=%s: the "
			    "certificate must be fetched over https",
			    tl.tags[a].value);
		else if (!https_url(tl.tags[a].value))
			DF(DM_SEV_FAIL, "bimi.syntax", "", "a=%s is no "
			    "https URL", tl.tags[a].value);
		else
			snprintf(out->a, sizeof(out->a), "%s",
			    tl.tags[a].value);
	}
	out->valid = problems == 0;
	if (problems == 0)
		DF(DM_SEV_OK, "bimi.ok", "", "v=BIMI1%s%s%s%s", out->l[0] ?
		    ", logo " : "", out->l, out->a[0] ? ", certificate " : "",
		    out->a);
done:
	free(tl.buf);
	return 0;
nomem:
	free(tl.buf);
	return -1;
}

int
dm_bimi_enforcement(const struct dm_dmarc_policy *policy,
    const char *subject, struct dm_findings *f)
{
	const char *p = policy->p;
	int problems = 0;

	if (!policy->valid || strcmp(p, "none") == 0 ||
	    (policy->pct >= 0 && policy->pct < 100) ||
	    strcmp(policy->sp, "none") == 0)
		DF(DM_SEV_WARN, "bimi.no_enforcement", "", "BIMI needs an "
		    "enforcing DMARC policy (p=quarantine or reject at 100%%, "
		    "sp not none); the domain has p=%s%s%s%s: no logo is "
		    "shown", policy->valid ? p : "(no valid record)",
		    policy->sp[0] ? " sp=" : "", policy->sp,
		    policy->pct >= 0 && policy->pct < 100 ? " pct<100" : "");
	return 0;
nomem:
	return -1;
}

/* ---- SPF ---- */

/*
 * check_host() of RFC 7208 over the caller's lookups. With an IP it stops
 * at the first match, as a receiver does. Without one ("walk") it goes
 * through every term of every record, includes and redirect too, to
 * count what the whole tree costs: the count a receiver reaches on the
 * worst path. Walk mode goes on past the limits to say by how much (up
 * to SPF_WALK_MAX lookups) and its result is NONE, PERMERROR, TEMPERROR
 * or else NEUTRAL (evaluable; no IP to match).
 *
 * Macros: in walk mode a macro-bearing domain-spec is checked for syntax
 * and not evaluated (its lookup is counted); with an IP they are
 * expanded: %{s} is postmaster@<domain checked>, %{l} postmaster, %{o}
 * and %{h} the domain checked (no HELO is known), %{d} the current
 * domain, %{i} %{v} from the IP, %{p} "unknown" (RFC 7208 7.3 allows it
 * when not validated); c, r, t are for exp= only and fail here.
 */

#define SPF_DEPTH	16	/* includes and redirects nested */
#define SPF_WALK_MAX	60	/* walk mode stops counting here */
#define SPF_NAMES_MAX	10	/* MX or PTR names per term */
#define SPF_TERMS_MAX	64
#define SPF_COSTS	24

struct spf_cost {
	char label[96];
	unsigned lookups;
};

struct spf {
	dm_dns_fn lookup;
	void *ctx;
	struct dm_findings *f;
	struct dm_spf_walk *walk;
	const char *top;		/* the domain checked */
	int walking;			/* no IP */
	int family;			/* 4 or 6 */
	uint8_t addr[16];
	enum dm_spf_verdict walk_error;	/* the first error, walk mode */
	char stack[SPF_DEPTH][DM_DOMAIN_MAX];
	int depth;
	int nomem;
	int limit_said, void_said;
	char voids[256];		/* names of void lookups */
	struct spf_cost costs[SPF_COSTS];
	unsigned ncosts;
};

enum spf_mech {
	M_ALL, M_INCLUDE, M_A, M_MX, M_PTR, M_IP4, M_IP6, M_EXISTS,
	M_REDIRECT, M_EXP, M_OTHER_MOD
};

struct spf_term {
	char qual;
	enum spf_mech mech;
	char *text;			/* as written */
	char *spec;			/* domain-spec or NULL */
	size_t speclen;			/* a, mx: it ends before the cidr */
	int cidr4, cidr6;
	uint8_t addr[16];
};

const char *
dm_spf_result_name(enum dm_spf_verdict r)
{
	static const char *const names[] = {
		"none", "neutral", "pass", "fail", "softfail", "temperror",
		"permerror"
	};

	if ((unsigned)r < sizeof(names) / sizeof(names[0]))
		return names[r];
	return "?";
}

static void
spf_finding(struct spf *s, enum dm_sev sev, const char *code,
    const char *subject, const char *fix, const char *fmt, ...)
    DM_PRINTF(6, 7);

static void
spf_finding(struct spf *s, enum dm_sev sev, const char *code,
    const char *subject, const char *fix, const char *fmt, ...)
{
	char what[DM_FINDING_WHAT];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (dm_findings_add(s->f, sev, code, subject, fix, "%s", what) == -1)
		s->nomem = 1;
}

/* An error result: its reason kept (the first), returned. */
static enum dm_spf_verdict
spf_error(struct spf *s, enum dm_spf_verdict r, const char *fmt, ...)
    DM_PRINTF(3, 4);

static enum dm_spf_verdict
spf_error(struct spf *s, enum dm_spf_verdict r, const char *fmt, ...)
{
	va_list ap;

	if (s->walk->error[0] == '\0') {
		va_start(ap, fmt);
		vsnprintf(s->walk->error, sizeof(s->walk->error), fmt, ap);
		va_end(ap);
	}
	if (s->walk_error == DM_SPF_NONE)
		s->walk_error = r;
	return r;
}

static enum dm_dns_rc
spf_dns(struct spf *s, const char *name, enum dm_dns_type type,
    struct dm_dns_result *r)
{
	memset(r, 0, sizeof(*r));
	r->rc = DM_DNS_TEMPFAIL;
	s->lookup(s->ctx, name, type, r);
	if (r->rc == DM_DNS_FOUND && r->count == 0)
		r->rc = DM_DNS_NODATA;
	return r->rc;
}

/* A void lookup (RFC 7208 4.6.4); 1 when it is one too many. */
static int
spf_void(struct spf *s, const char *name)
{
	s->walk->void_lookups++;
	if (strstr(s->voids, name) == NULL)
		append(s->voids, sizeof(s->voids), "%s%s",
		    s->voids[0] ? ", " : "", name);
	return s->walk->void_lookups > DM_SPF_VOID_LIMIT;
}

/* A DNS-querying term; 1 when over the limit. */
static int
spf_count(struct spf *s)
{
	s->walk->lookups++;
	return s->walk->lookups > DM_SPF_LOOKUP_LIMIT;
}

static int
parse_ip(const char *text, int *family, uint8_t *addr)
{
	static const uint8_t mapped[12] = {
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
	};
	uint8_t a6[16];

	if (inet_pton(AF_INET, text, addr) == 1) {
		*family = 4;
		return 0;
	}
	if (inet_pton(AF_INET6, text, a6) != 1)
		return -1;
	/* RFC 7208 5: an IPv4-mapped IPv6 address is checked as IPv4. */
	if (memcmp(a6, mapped, sizeof(mapped)) == 0) {
		memcpy(addr, a6 + 12, 4);
		*family = 4;
		return 0;
	}
	memcpy(addr, a6, 16);
	*family = 6;
	return 0;
}

static int
prefix_match(const uint8_t *a, const uint8_t *b, int bits)
{
	int i;

	for (i = 0; bits >= 8; i++, bits -= 8)
		if (a[i] != b[i])
			return 0;
	if (bits > 0) {
		uint8_t mask = (uint8_t)(0xff << (8 - bits));

		if ((a[i] & mask) != (b[i] & mask))
			return 0;
	}
	return 1;
}

/* "/n": 0 to max, no leading zero; -1 when bad. */
static int
parse_cidr(const char *s, int max)
{
	long n;

	if (s[0] == '0' && s[1] != '\0')
		return -1;
	if (strlen(s) > 3 || !parse_uint(s, max, &n))
		return -1;
	return (int)n;
}

/* The IP as %{i} gives it: dotted quad, or dotted nibbles. */
static void
ip_macro(const struct spf *s, char *out, size_t size)
{
	int i;

	out[0] = '\0';
	if (s->walking) {
		snprintf(out, size, "192.0.2.1");
		return;
	}
	if (s->family == 4) {
		snprintf(out, size, "%u.%u.%u.%u", s->addr[0], s->addr[1],
		    s->addr[2], s->addr[3]);
		return;
	}
	for (i = 0; i < 16; i++)
		append(out, size, "%s%x.%x", i ? "." : "", s->addr[i] >> 4,
		    s->addr[i] & 15);
}

/*
 * Expands a domain-spec's macros (RFC 7208 7) into out. -1 bad syntax
 * (why in err), 0 done.
 */
static int
spf_expand(const struct spf *s, const char *spec, const char *domain,
    char *out, size_t size, char *err, size_t errsize)
{
	char value[512], parts[512], *list[128], *pos;
	size_t len = 0;

	out[0] = '\0';
	while (*spec != '\0') {
		char letter, delims[8] = "";
		int reverse = 0, keep = 0, nparts = 0, i, first;
		size_t k;

		if (*spec != '%') {
			if (len + 1 < size)
				out[len++] = *spec;
			spec++;
			out[len] = '\0';
			continue;
		}
		spec++;
		if (*spec == '%' || *spec == '_' || *spec == '-') {
			append(out, size, "%s", *spec == '%' ? "%" :
			    *spec == '_' ? " " : "%20");
			len = strlen(out);
			spec++;
			continue;
		}
		if (*spec != '{') {
			snprintf(err, errsize, "'%%' not followed by {, %%, _ "
			    "or -");
			return -1;
		}
		letter = (char)tolower((unsigned char)spec[1]);
		switch (letter) {
		case 's':
			snprintf(value, sizeof(value), "postmaster@%s", s->top);
			break;
		case 'l':
			snprintf(value, sizeof(value), "postmaster");
			break;
		case 'o':
		case 'h':
			snprintf(value, sizeof(value), "%s", s->top);
			break;
		case 'd':
			snprintf(value, sizeof(value), "%s", domain);
			break;
		case 'i':
			ip_macro(s, value, sizeof(value));
			break;
		case 'p':
			snprintf(value, sizeof(value), "unknown");
			break;
		case 'v':
			snprintf(value, sizeof(value), "%s", s->family == 6 ?
			    "ip6" : "in-addr");
			break;
		default:
			snprintf(err, errsize, "%%{%c is no macro of a "
			    "domain-spec", spec[1] ? spec[1] : '?');
			return -1;
		}
		spec += 2;
		/* Past 999 every label is kept (there are at most 128):
		 * stop counting, so that a long run of digits cannot
		 * overflow keep. */
		for (; isdigit((unsigned char)*spec); spec++)
			if (keep < 1000)
				keep = keep * 10 + (*spec - '0');
		if (keep == 0 && isdigit((unsigned char)spec[-1])) {
			snprintf(err, errsize, "a macro keeps 0 labels");
			return -1;
		}
		if (tolower((unsigned char)*spec) == 'r') {
			reverse = 1;
			spec++;
		}
		for (k = 0; *spec != '\0' && strchr(".-+,/_=", *spec); spec++)
			if (k + 1 < sizeof(delims))
				delims[k++] = *spec;
		delims[k] = '\0';
		if (*spec != '}') {
			snprintf(err, errsize, "a macro does not end in }");
			return -1;
		}
		spec++;
		/* Split at the delimiters, reverse, keep the rightmost. */
		snprintf(parts, sizeof(parts), "%s", value);
		for (pos = parts; nparts < 128;) {
			list[nparts++] = pos;
			pos += strcspn(pos, delims[0] ? delims : ".");
			if (*pos == '\0')
				break;
			*pos++ = '\0';
		}
		if (reverse)
			for (i = 0; i < nparts / 2; i++) {
				char *t = list[i];

				list[i] = list[nparts - 1 - i];
				list[nparts - 1 - i] = t;
			}
		first = keep > 0 && keep < nparts ? nparts - keep : 0;
		for (i = first; i < nparts; i++)
			append(out, size, "%s%s", i > first ? "." : "",
			    list[i]);
		len = strlen(out);
	}
	/* RFC 7208 7.3: over 253 octets, labels go from the left. */
	pos = out;
	while (strlen(pos) > 253 && strchr(pos, '.') != NULL)
		pos = strchr(pos, '.') + 1;
	if (pos != out)
		memmove(out, pos, strlen(pos) + 1);
	return 0;
}

/* The record's text from its terms, with one term replaced or gone. */
static void
spf_rebuild(char *out, size_t size, struct spf_term *terms, size_t nterms,
    size_t skip, const char *replace, const char *add)
{
	size_t i;

	snprintf(out, size, "v=spf1");
	for (i = 0; i < nterms; i++) {
		if (i == skip) {
			if (replace != NULL)
				append(out, size, " %s", replace);
			continue;
		}
		append(out, size, " %s", terms[i].text);
	}
	if (add != NULL)
		append(out, size, " %s", add);
}

static int
spf_record(const char *txt)
{
	return strncasecmp(txt, "v=spf1", 6) == 0 &&
	    (txt[6] == '\0' || txt[6] == ' ');
}

/* One term into *t; -1 with why on bad syntax. */
static int
spf_term(char *text, struct spf_term *t, char *why, size_t whysize)
{
	static const struct {
		const char *name;
		enum spf_mech mech;
	} mechs[] = {
		{ "all", M_ALL }, { "include", M_INCLUDE }, { "a", M_A },
		{ "mx", M_MX }, { "ptr", M_PTR }, { "ip4", M_IP4 },
		{ "ip6", M_IP6 }, { "exists", M_EXISTS }
	};
	char *p = text, *name, *slash, *rest;
	size_t namelen, i;
	int found = 0;

	memset(t, 0, sizeof(*t));
	t->text = text;
	t->qual = '+';
	t->cidr4 = 32;
	t->cidr6 = 128;
	if (strchr("+-~?", *p) != NULL)
		t->qual = *p++;
	name = p;
	namelen = strspn(p, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.");
	rest = p + namelen;
	if (*rest == '=') {
		if (p != text || namelen == 0 || !isalpha((unsigned char)*p)) {
			snprintf(why, whysize, "\"%s\" is no modifier", text);
			return -1;
		}
		*rest = '\0';
		t->spec = rest + 1;
		if (strcasecmp(name, "redirect") == 0)
			t->mech = M_REDIRECT;
		else if (strcasecmp(name, "exp") == 0)
			t->mech = M_EXP;
		else
			t->mech = M_OTHER_MOD;
		*rest = '=';
		if (t->mech != M_OTHER_MOD && *t->spec == '\0') {
			snprintf(why, whysize, "\"%s\" names no domain", text);
			return -1;
		}
		return 0;
	}
	for (i = 0; i < sizeof(mechs) / sizeof(mechs[0]); i++)
		if (strlen(mechs[i].name) == namelen &&
		    strncasecmp(mechs[i].name, name, namelen) == 0) {
			t->mech = mechs[i].mech;
			found = 1;
		}
	if (!found || (*rest != '\0' && *rest != ':' && *rest != '/')) {
		snprintf(why, whysize, "\"%s\" is no SPF mechanism", text);
		return -1;
	}
	switch (t->mech) {
	case M_ALL:
		if (*rest != '\0')
			goto bad;
		return 0;
	case M_INCLUDE:
	case M_EXISTS:
		if (*rest != ':' || rest[1] == '\0')
			goto bad;
		t->spec = rest + 1;
		return 0;
	case M_PTR:
		if (*rest == '/')
			goto bad;
		if (*rest == ':') {
			if (rest[1] == '\0')
				goto bad;
			t->spec = rest + 1;
		}
		return 0;
	case M_IP4:
	case M_IP6: {
		char ip[64];
		int family;

		if (*rest != ':')
			goto bad;
		rest++;
		slash = strchr(rest, '/');
		snprintf(ip, sizeof(ip), "%.*s", slash ? (int)(slash - rest) :
		    (int)strlen(rest), rest);
		if (parse_ip(ip, &family, t->addr) == -1 || (family == 4) !=
		    (t->mech == M_IP4) || (t->mech == M_IP6 &&
		    strchr(ip, ':') == NULL))
			goto bad;
		if (t->mech == M_IP6 && family == 4)
			goto bad;
		if (slash != NULL) {
			int n = parse_cidr(slash + 1, t->mech == M_IP4 ? 32 :
			    128);

			if (n < 0)
				goto bad;
			if (t->mech == M_IP4)
				t->cidr4 = n;
			else
				t->cidr6 = n;
		}
		return 0;
	}
	default:			/* a, mx */
		break;
	}
	/* a and mx: [":" domain-spec] [ip4-cidr] ["//" ip6-cidr] */
	slash = NULL;
	if (*rest == ':') {
		int brace = 0;

		t->spec = rest + 1;
		for (p = t->spec; *p != '\0'; p++) {
			if (*p == '{')
				brace = 1;
			else if (*p == '}')
				brace = 0;
			else if (*p == '/' && !brace) {
				slash = p;
				break;
			}
		}
		if (slash == t->spec)
			goto bad;
	} else if (*rest == '/')
		slash = rest;
	if (slash != NULL) {
		char cidr[16], *dual;
		int n;

		snprintf(cidr, sizeof(cidr), "%s", slash);
		if (strlen(slash) >= sizeof(cidr))
			goto bad;
		if ((dual = strstr(cidr, "//")) != NULL) {
			if ((n = parse_cidr(dual + 2, 128)) < 0)
				goto bad;
			t->cidr6 = n;
			*dual = '\0';
		}
		if (cidr[0] != '\0') {
			if (cidr[0] != '/' || (n = parse_cidr(cidr + 1,
			    32)) < 0)
				goto bad;
			t->cidr4 = n;
		}
		/* The domain-spec ends at the cidr; the text keeps it. */
		if (t->spec != NULL)
			t->speclen = (size_t)(slash - t->spec);
	}
	return 0;
bad:
	snprintf(why, whysize, "\"%s\" is not valid SPF", text);
	return -1;
}

static enum dm_spf_verdict spf_host(struct spf *, const char *, int);

static enum dm_spf_verdict
spf_qualified(char qual)
{
	switch (qual) {
	case '-':
		return DM_SPF_FAIL;
	case '~':
		return DM_SPF_SOFTFAIL;
	case '?':
		return DM_SPF_NEUTRAL;
	default:
		return DM_SPF_PASS;
	}
}

static enum dm_spf_verdict
spf_tempfail(struct spf *s, const char *name, const char *type)
{
	spf_finding(s, DM_SEV_WARN, "spf.dns", name, "", "the %s lookup of "
	    "%s failed temporarily: receivers give temperror and may defer "
	    "mail", type, name);
	return spf_error(s, DM_SPF_TEMPERROR, "%s %s: temporary DNS failure",
	    type, name);
}

static enum dm_spf_verdict
spf_too_many_voids(struct spf *s)
{
	return spf_error(s, DM_SPF_PERMERROR, "more than %d void lookups",
	    DM_SPF_VOID_LIMIT);
}

/*
 * Whether the addresses of name (A or AAAA by the IP's family) hold the
 * IP within the cidr: 1 yes, 0 no, -1 the error in *r. A void answer
 * counts when count_void.
 */
static int
spf_addr_match(struct spf *s, const char *name, int cidr4, int cidr6,
    int count_void, enum dm_spf_verdict *r)
{
	struct dm_dns_result res;
	enum dm_dns_rc rc;
	size_t i;
	int match = 0;

	if (s->walking) {
		/* No IP: a void is a name with neither A nor AAAA. */
		rc = spf_dns(s, name, DM_DNS_A, &res);
		dm_dns_result_free(&res);
		if (rc == DM_DNS_TEMPFAIL) {
			*r = spf_tempfail(s, name, "A");
			return -1;
		}
		if (rc == DM_DNS_FOUND)
			return 0;
		rc = spf_dns(s, name, DM_DNS_AAAA, &res);
		dm_dns_result_free(&res);
		if (rc == DM_DNS_TEMPFAIL) {
			*r = spf_tempfail(s, name, "AAAA");
			return -1;
		}
		if (rc != DM_DNS_FOUND && count_void && spf_void(s, name))
			spf_too_many_voids(s);
		return 0;
	}
	rc = spf_dns(s, name, s->family == 4 ? DM_DNS_A : DM_DNS_AAAA, &res);
	if (rc == DM_DNS_TEMPFAIL) {
		dm_dns_result_free(&res);
		*r = spf_tempfail(s, name, s->family == 4 ? "A" : "AAAA");
		return -1;
	}
	if (rc != DM_DNS_FOUND) {
		dm_dns_result_free(&res);
		if (count_void && spf_void(s, name)) {
			*r = spf_too_many_voids(s);
			return -1;
		}
		return 0;
	}
	for (i = 0; i < res.count && !match; i++) {
		uint8_t addr[16];
		int family;

		if (parse_ip(res.items[i], &family, addr) == 0 &&
		    family == s->family)
			match = prefix_match(addr, s->addr, s->family == 4 ?
			    cidr4 : cidr6);
	}
	dm_dns_result_free(&res);
	return match;
}

/* mx: up to 10 exchanges, each one's addresses. */
static int
spf_mx(struct spf *s, const char *name, const char *target,
    const struct spf_term *t, enum dm_spf_verdict *r)
{
	struct dm_dns_result res;
	enum dm_dns_rc rc;
	size_t i;
	int match = 0;

	rc = spf_dns(s, target, DM_DNS_MX, &res);
	if (rc == DM_DNS_TEMPFAIL) {
		dm_dns_result_free(&res);
		*r = spf_tempfail(s, target, "MX");
		return -1;
	}
	if (rc != DM_DNS_FOUND) {
		dm_dns_result_free(&res);
		if (spf_void(s, target) && !s->walking) {
			*r = spf_too_many_voids(s);
			return -1;
		}
		return 0;
	}
	if (res.count > SPF_NAMES_MAX) {
		spf_finding(s, DM_SEV_FAIL, "spf.mx_names", name, "", "%s "
		    "has %zu MX records: RFC 7208 4.6.4 allows the mx "
		    "mechanism %d, receivers give permerror", target,
		    res.count, SPF_NAMES_MAX);
		dm_dns_result_free(&res);
		*r = spf_error(s, DM_SPF_PERMERROR, "%s: more than %d MX "
		    "names", target, SPF_NAMES_MAX);
		return -1;
	}
	for (i = 0; i < res.count && !match && !s->walking; i++) {
		int m;

		if (res.items[i][0] == '\0' || strcmp(res.items[i], ".") == 0)
			continue;	/* a null MX (RFC 7505) */
		m = spf_addr_match(s, res.items[i], t->cidr4, t->cidr6, 0, r);
		if (m == -1) {
			dm_dns_result_free(&res);
			return -1;
		}
		match = m;
	}
	dm_dns_result_free(&res);
	return match;
}

/*
 * ptr (RFC 7208 5.5): the IP's names that resolve back to it, one of
 * them target or under it. Errors make no match; past 10 names the rest
 * are ignored (unlike mx, which fails).
 */
static int
spf_ptr(struct spf *s, const char *target)
{
	struct dm_dns_result res;
	char rev[128];
	size_t i, tlen = strlen(target);
	int match = 0, j;

	if (s->walking)
		return 0;
	rev[0] = '\0';
	if (s->family == 4)
		snprintf(rev, sizeof(rev), "%u.%u.%u.%u.in-addr.arpa",
		    s->addr[3], s->addr[2], s->addr[1], s->addr[0]);
	else {
		for (j = 15; j >= 0; j--)
			append(rev, sizeof(rev), "%x.%x.", s->addr[j] & 15,
			    s->addr[j] >> 4);
		append(rev, sizeof(rev), "ip6.arpa");
	}
	if (spf_dns(s, rev, DM_DNS_PTR, &res) != DM_DNS_FOUND) {
		if (res.rc != DM_DNS_TEMPFAIL)
			spf_void(s, rev);
		dm_dns_result_free(&res);
		return 0;
	}
	for (i = 0; i < res.count && i < SPF_NAMES_MAX && !match; i++) {
		const char *n = res.items[i];
		size_t nlen = strlen(n);
		enum dm_spf_verdict ignored;

		if (!(strcasecmp(n, target) == 0 || (nlen > tlen &&
		    n[nlen - tlen - 1] == '.' &&
		    strcasecmp(n + nlen - tlen, target) == 0)))
			continue;
		if (spf_addr_match(s, n, 32, 128, 0, &ignored) == 1)
			match = 1;
	}
	dm_dns_result_free(&res);
	return match;
}

/* Is name one of the records being evaluated (an include loop)? */
static int
spf_on_stack(const struct spf *s, const char *name)
{
	int i;

	for (i = 0; i < s->depth; i++)
		if (strcmp(s->stack[i], name) == 0)
			return 1;
	return 0;
}

/* The TXT records of domain: the one SPF record into *record (malloc'd),
 * or a result. */
static int
spf_fetch(struct spf *s, const char *domain, int counted, char **record,
    enum dm_spf_verdict *r)
{
	struct dm_dns_result res;
	enum dm_dns_rc rc;
	char merged[DM_FINDING_FIX - 300], fix[DM_FINDING_FIX];
	char best_all[8] = "";
	size_t i, found = 0, pick = 0;

	*record = NULL;
	rc = spf_dns(s, domain, DM_DNS_TXT, &res);
	if (rc == DM_DNS_TEMPFAIL) {
		dm_dns_result_free(&res);
		*r = spf_tempfail(s, domain, "TXT");
		return -1;
	}
	if (rc != DM_DNS_FOUND) {
		dm_dns_result_free(&res);
		if (counted && spf_void(s, domain) && !s->walking) {
			*r = spf_too_many_voids(s);
			return -1;
		}
		*r = DM_SPF_NONE;
		return -1;
	}
	for (i = 0; i < res.count; i++) {
		if (strncasecmp(res.items[i], "spf2.0/", 7) == 0)
			spf_finding(s, DM_SEV_INFO, "spf.spf2", domain, "",
			    "\"%.60s\": a Sender ID record (RFC 4406, "
			    "obsolete); nobody checks it, it does no harm",
			    res.items[i]);
		if (spf_record(res.items[i]) && found++ == 0)
			pick = i;
	}
	if (found == 0) {
		dm_dns_result_free(&res);
		*r = DM_SPF_NONE;
		return -1;
	}
	if (found > 1) {
		/* One record with every term of them all, once, and the
		 * strictest all (or the first redirect when none has one). */
		char terms[DM_FINDING_FIX - 300] = "", redirect[300] = "";

		for (i = 0; i < res.count; i++) {
			char copy[RECORD_MAX / 2], *term, *save;

			if (!spf_record(res.items[i]))
				continue;
			snprintf(copy, sizeof(copy), "%s", res.items[i] + 6);
			for (term = strtok_r(copy, " ", &save); term != NULL;
			    term = strtok_r(NULL, " ", &save)) {
				char *bare = term + (strchr("+-~?", *term) ?
				    1 : 0);
				char padded[320];

				if (strcasecmp(bare, "all") == 0) {
					const char *order = "+?~-";
					char q = bare == term ? '+' : *term;

					if (best_all[0] == '\0' ||
					    strchr(order, q) > strchr(order,
					    best_all[0]))
						snprintf(best_all,
						    sizeof(best_all), "%call",
						    q);
					continue;
				}
				if (strncasecmp(term, "redirect=", 9) == 0) {
					if (redirect[0] == '\0')
						snprintf(redirect,
						    sizeof(redirect), "%s",
						    term);
					continue;
				}
				snprintf(padded, sizeof(padded), " %s ", term);
				if (strstr(terms, padded) == NULL)
					append(terms, sizeof(terms), " %s ",
					    term);
			}
		}
		snprintf(merged, sizeof(merged), "v=spf1");
		{
			char *term, *save;

			for (term = strtok_r(terms, " ", &save); term != NULL;
			    term = strtok_r(NULL, " ", &save))
				append(merged, sizeof(merged), " %s", term);
		}
		if (best_all[0] != '\0')
			append(merged, sizeof(merged), " %s",
			    best_all[0] == '+' ? "all" : best_all);
		else if (redirect[0] != '\0')
			append(merged, sizeof(merged), " %s", redirect);
		txt_line(fix, sizeof(fix), domain, merged);
		spf_finding(s, DM_SEV_FAIL, "spf.multiple", domain, fix,
		    "%zu SPF records: receivers give permerror (RFC 7208 "
		    "4.5) and SPF fails for all mail; publish one record",
		    found);
		dm_dns_result_free(&res);
		*r = spf_error(s, DM_SPF_PERMERROR, "%s: %zu SPF records",
		    domain, found);
		return -1;
	}
	*record = strdup(res.items[pick]);
	dm_dns_result_free(&res);
	if (*record == NULL) {
		s->nomem = 1;
		*r = spf_error(s, DM_SPF_TEMPERROR, "out of memory");
		return -1;
	}
	return 0;
}

/* check_host() for domain; counted: the TXT lookup is a term's. */
static enum dm_spf_verdict
spf_host(struct spf *s, const char *domain, int counted)
{
	struct spf_term terms[SPF_TERMS_MAX];
	enum dm_spf_verdict r = DM_SPF_NEUTRAL, err;
	char *record = NULL, *p, why[200], fix[DM_FINDING_FIX];
	char rebuilt[DM_FINDING_FIX - 300];
	size_t nterms = 0, i, len;
	int redirect = -1, exp = -1, all = -1, macros = 0, errored = 0;

	if (s->depth >= SPF_DEPTH)
		return spf_error(s, DM_SPF_PERMERROR, "includes nested over "
		    "%d deep", SPF_DEPTH);
	if (spf_fetch(s, domain, counted, &record, &r) == -1)
		return r;
	s->walk->records++;
	len = strlen(record);
	if (len > 450)
		spf_finding(s, DM_SEV_INFO, "spf.length", domain, "", "the "
		    "SPF record is %zu octets: over 450 the DNS answer may not "
		    "fit in 512 octets of UDP (RFC 7208 3.4)", len);

	/* Terms, separated by spaces. */
	for (p = record + 6; *p != '\0';) {
		char *term;

		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		term = p;
		p += strcspn(p, " ");
		if (*p != '\0')
			*p++ = '\0';
		if (nterms == SPF_TERMS_MAX) {
			snprintf(why, sizeof(why), "more than %d terms",
			    SPF_TERMS_MAX);
			goto syntax;
		}
		if (spf_term(term, &terms[nterms], why, sizeof(why)) == -1)
			goto syntax;
		if (terms[nterms].spec != NULL &&
		    strchr(terms[nterms].spec, '%') != NULL) {
			char out[512];
			struct spf_term *t = &terms[nterms];
			char spec[300];

			snprintf(spec, sizeof(spec), "%.*s", (int)(t->speclen ?
			    t->speclen : strlen(t->spec)), t->spec);
			if (spf_expand(s, spec, domain, out, sizeof(out), why,
			    sizeof(why)) == -1)
				goto syntax;
			if (t->mech != M_EXP)
				macros = 1;
		}
		switch (terms[nterms].mech) {
		case M_REDIRECT:
			if (redirect >= 0) {
				snprintf(why, sizeof(why), "two redirect=");
				goto syntax;
			}
			redirect = (int)nterms;
			break;
		case M_EXP:
			if (exp >= 0) {
				snprintf(why, sizeof(why), "two exp=");
				goto syntax;
			}
			exp = (int)nterms;
			break;
		case M_ALL:
			if (all < 0)
				all = (int)nterms;
			break;
		default:
			break;
		}
		nterms++;
	}

	/* What is wrong with the record itself. */
	if (all >= 0 && terms[all].qual == '+') {
		spf_rebuild(rebuilt, sizeof(rebuilt), terms, nterms,
		    (size_t)all, "~all", NULL);
		txt_line(fix, sizeof(fix), domain, rebuilt);
		spf_finding(s, DM_SEV_FAIL, "spf.plus_all", domain, fix, "%s: "
		    "every host on the Internet passes SPF for %s",
		    terms[all].text, domain);
	}
	if (s->depth == 0) {
		if (all >= 0)
			snprintf(s->walk->all, sizeof(s->walk->all), "%call",
			    terms[all].qual);
		s->walk->redirect = redirect >= 0 && all < 0;
		if (all >= 0 && terms[all].qual == '?') {
			spf_rebuild(rebuilt, sizeof(rebuilt), terms, nterms,
			    (size_t)all, "~all", NULL);
			txt_line(fix, sizeof(fix), domain, rebuilt);
			spf_finding(s, DM_SEV_WARN, "spf.neutral_all", domain,
			    fix, "?all: mail from anywhere else is neutral, "
			    "as if there were no SPF record");
		}
		if (all < 0 && redirect < 0) {
			spf_rebuild(rebuilt, sizeof(rebuilt), terms, nterms,
			    (size_t)-1, NULL, "~all");
			txt_line(fix, sizeof(fix), domain, rebuilt);
			spf_finding(s, DM_SEV_WARN, "spf.no_all", domain, fix,
			    "no all and no redirect=: mail from anywhere "
			    "else is neutral; end the record in ~all or "
			    "-all");
		}
	}
	for (i = 0; i < nterms; i++)
		if (terms[i].mech == M_PTR) {
			spf_rebuild(rebuilt, sizeof(rebuilt), terms, nterms, i,
			    NULL, NULL);
			txt_line(fix, sizeof(fix), domain, rebuilt);
			spf_finding(s, DM_SEV_WARN, "spf.ptr", domain, fix,
			    "%s: the ptr mechanism is slow, unreliable and "
			    "deprecated (RFC 7208 5.5); list the addresses "
			    "with ip4:/ip6: instead", terms[i].text);
		}
	if (macros)
		spf_finding(s, DM_SEV_INFO, "spf.macros", domain, "", "the "
		    "record uses macros: what they query depends on each "
		    "message%s", s->walking ? "; they are not evaluated "
		    "here, but their lookups are counted" : "");

	snprintf(s->stack[s->depth], sizeof(s->stack[0]), "%s", domain);
	s->depth++;
	for (i = 0; i <= nterms; i++) {
		struct spf_term *t;
		char target[512], spec[300];
		unsigned before = s->walk->lookups;
		int match = 0, querying;

		if (i == nterms) {
			/* redirect= applies when nothing matched and there
			 * is no all (RFC 7208 6.1). */
			if (redirect < 0 || all >= 0)
				break;
			t = &terms[redirect];
		} else {
			t = &terms[i];
			if (t->mech == M_REDIRECT || t->mech == M_EXP ||
			    t->mech == M_OTHER_MOD)
				continue;
		}
		querying = t->mech == M_INCLUDE || t->mech == M_A ||
		    t->mech == M_MX || t->mech == M_PTR ||
		    t->mech == M_EXISTS || t->mech == M_REDIRECT;
		if (querying && spf_count(s)) {
			err = spf_error(s, DM_SPF_PERMERROR, "more than %d DNS "
			    "lookups", DM_SPF_LOOKUP_LIMIT);
			if (!s->walking) {
				r = err;
				goto out;
			}
			if (s->walk->lookups > SPF_WALK_MAX)
				break;
		}
		snprintf(target, sizeof(target), "%s", domain);
		if (t->spec != NULL && t->mech != M_IP4 && t->mech != M_IP6) {
			snprintf(spec, sizeof(spec), "%.*s", (int)(t->speclen ?
			    t->speclen : strlen(t->spec)), t->spec);
			if (strchr(spec, '%') != NULL && s->walking)
				goto cost;	/* not evaluable */
			if (spf_expand(s, spec, domain, target,
			    sizeof(target), why, sizeof(why)) == -1)
				goto syntax_stacked;
			lower(target);
			if (strlen(target) > 0 &&
			    target[strlen(target) - 1] == '.')
				target[strlen(target) - 1] = '\0';
			if (!plain_domain(target)) {
				snprintf(why, sizeof(why), "\"%s\" is no "
				    "domain name", target);
				goto syntax_stacked;
			}
		}
		switch (t->mech) {
		case M_ALL:
			match = 1;
			break;
		case M_IP4:
		case M_IP6:
			match = !s->walking && s->family ==
			    (t->mech == M_IP4 ? 4 : 6) &&
			    prefix_match(t->addr, s->addr, t->mech == M_IP4 ?
			    t->cidr4 : t->cidr6);
			break;
		case M_A:
			match = spf_addr_match(s, target, t->cidr4, t->cidr6,
			    1, &r);
			break;
		case M_MX:
			match = spf_mx(s, domain, target, t, &r);
			break;
		case M_PTR:
			match = spf_ptr(s, target);
			break;
		case M_EXISTS: {
			struct dm_dns_result res;
			enum dm_dns_rc rc;

			rc = spf_dns(s, target, DM_DNS_A, &res);
			dm_dns_result_free(&res);
			if (rc == DM_DNS_TEMPFAIL) {
				r = spf_tempfail(s, target, "A");
				match = -1;
			} else if (rc == DM_DNS_FOUND)
				match = !s->walking;
			else if (spf_void(s, target) && !s->walking) {
				r = spf_too_many_voids(s);
				match = -1;
			}
			break;
		}
		case M_INCLUDE:
		case M_REDIRECT: {
			const char *kind = t->mech == M_INCLUDE ? "include:" :
			    "redirect=";
			enum dm_spf_verdict sub;

			if (spf_on_stack(s, target)) {
				spf_finding(s, DM_SEV_FAIL, "spf.loop", domain,
				    "", "%s%s loops back to a record that "
				    "includes it: receivers give permerror",
				    kind, target);
				r = spf_error(s, DM_SPF_PERMERROR, "%s%s "
				    "loops", kind, target);
				match = -1;
				break;
			}
			sub = spf_host(s, target, 1);
			if (sub == DM_SPF_NONE) {
				spf_rebuild(rebuilt, sizeof(rebuilt), terms,
				    nterms, i == nterms ? (size_t)redirect : i,
				    NULL, NULL);
				/* Without it, a record of nothing but an
				 * all would refuse the platform's mail:
				 * then no record, the name to correct. */
				if (spf_only_all(rebuilt))
					fix[0] = '\0';
				else
					txt_line(fix, sizeof(fix), domain,
					    rebuilt);
				spf_finding(s, DM_SEV_FAIL, "spf.include_none",
				    domain, fix, "%s%s: that name has no SPF "
				    "record, a permerror for every receiver "
				    "(RFC 7208 5.2, 6.1); %s", kind, target,
				    fix[0] != '\0' ? "the fix drops it, or "
				    "correct the name to the platform's" :
				    "correct the name to the one the "
				    "platform's guide gives");
				r = spf_error(s, DM_SPF_PERMERROR, "%s%s has "
				    "no SPF record", kind, target);
				match = -1;
			} else if (sub == DM_SPF_TEMPERROR ||
			    sub == DM_SPF_PERMERROR) {
				r = sub;
				match = -1;
			} else if (t->mech == M_REDIRECT) {
				r = sub;
				match = s->walking ? 0 : 2;
			} else
				match = sub == DM_SPF_PASS && !s->walking;
			break;
		}
		default:
			break;
		}
cost:
		if (s->depth == 1 && querying && s->ncosts < SPF_COSTS) {
			snprintf(s->costs[s->ncosts].label,
			    sizeof(s->costs[0].label), "%s", t->text);
			s->costs[s->ncosts++].lookups = s->walk->lookups -
			    before;
		}
		if (match == -1) {
			errored = 1;
			if (!s->walking)
				goto out;
			r = DM_SPF_NEUTRAL;
			continue;
		}
		if (match == 2)
			goto out;	/* the redirect's result */
		if (match && !s->walking) {
			r = spf_qualified(t->qual);
			goto out;
		}
	}
	r = DM_SPF_NEUTRAL;
	if (s->walking && (errored || s->walk_error != DM_SPF_NONE))
		r = DM_SPF_NEUTRAL;
out:
	s->depth--;
	free(record);
	return r;
syntax_stacked:
	s->depth--;
syntax:
	spf_finding(s, DM_SEV_FAIL, "spf.syntax", domain, "", "%s: the record "
	    "is invalid, receivers give permerror", why);
	free(record);
	return spf_error(s, DM_SPF_PERMERROR, "%s: %s", domain, why);
}

int
dm_spf_check(const char *domain, const char *ip, dm_dns_fn lookup,
    void *ctx, struct dm_spf_walk *walk, struct dm_findings *f)
{
	struct spf *s;
	enum dm_spf_verdict r;
	size_t first = f->count, i;
	int worse = 0;

	memset(walk, 0, sizeof(*walk));
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return -1;
	s->lookup = lookup;
	s->ctx = ctx;
	s->f = f;
	s->walk = walk;
	s->top = domain;
	s->walking = ip == NULL;
	if (ip != NULL && parse_ip(ip, &s->family, s->addr) == -1) {
		walk->result = spf_error(s, DM_SPF_PERMERROR, "%s is no IP "
		    "address", ip);
		free(s);
		return 0;
	}
	r = spf_host(s, domain, 0);
	if (r == DM_SPF_NONE && walk->records == 0 && s->walk_error ==
	    DM_SPF_NONE)
		spf_finding(s, DM_SEV_FAIL, "spf.none", domain, "", "%s has no "
		    "SPF record: receivers cannot tell its servers from "
		    "forgers, DMARC rests on DKIM alone", domain);
	if (walk->lookups > DM_SPF_LOOKUP_LIMIT) {
		char what[DM_FINDING_WHAT];

		snprintf(what, sizeof(what), "%s%u DNS-querying terms, over "
		    "the limit of %d: receivers give permerror and SPF fails "
		    "for all mail. What each term costs:", s->walking ? "" :
		    "at least ", walk->lookups, DM_SPF_LOOKUP_LIMIT);
		for (i = 0; i < s->ncosts; i++)
			append(what, sizeof(what), "%s %s %u", i ? "," : "",
			    s->costs[i].label, s->costs[i].lookups);
		append(what, sizeof(what), ". Replace includes with the ip4:/"
		    "ip6: ranges they hold, or drop senders you no longer "
		    "use");
		spf_finding(s, DM_SEV_FAIL, "spf.lookups", domain, "", "%s",
		    what);
		spf_error(s, DM_SPF_PERMERROR, "more than %d DNS lookups",
		    DM_SPF_LOOKUP_LIMIT);
	}
	if (walk->void_lookups > DM_SPF_VOID_LIMIT) {
		spf_too_many_voids(s);
		spf_finding(s, DM_SEV_FAIL, "spf.void", domain, "", "%u "
		    "lookups found nothing (%s), more than %d: receivers give "
		    "permerror; remove the terms naming them",
		    walk->void_lookups, s->voids, DM_SPF_VOID_LIMIT);
	}
	if (s->walking)
		walk->result = r == DM_SPF_NONE && walk->records == 0 ?
		    (s->walk_error != DM_SPF_NONE ? s->walk_error :
		    DM_SPF_NONE) : s->walk_error != DM_SPF_NONE ?
		    s->walk_error : DM_SPF_NEUTRAL;
	else
		walk->result = r;
	for (i = first; i < f->count; i++)
		if (f->items[i].sev >= DM_SEV_WARN)
			worse = 1;
	if (!worse && walk->records > 0)
		spf_finding(s, DM_SEV_OK, "spf.ok", domain, "", "SPF: %u DNS "
		    "lookups of %d, %u void, %u records read%s%s",
		    walk->lookups, DM_SPF_LOOKUP_LIMIT, walk->void_lookups,
		    walk->records, walk->all[0] ? ", ends in " : "",
		    walk->all);
	i = s->nomem;
	free(s);
	return i ? -1 : 0;
}
