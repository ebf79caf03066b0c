/*
 * report.c - enumerations, warnings and value parsing of the report model.
 *
 * Normalisation follows ../spec's table: compare case-insensitively after
 * trimming white space; known variants (SPF "hardfail", "unknown",
 * "error") map to their canonical class; anything else is *_UNKNOWN and
 * the caller keeps the raw value and warns.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/report.h"

struct enum_alias {
	const char *name;
	int value;
};

struct enum_def {
	const char *const *names;	/* canonical, indexed by value */
	int count;			/* values, including unset/unknown */
	const struct enum_alias *aliases;
};

static const char *const policy_names[] = {
	NULL, "none", "quarantine", "reject", "unknown" };
static const char *const align_names[] = { NULL, "r", "s", "unknown" };
static const char *const disp_names[] = {
	NULL, "none", "quarantine", "reject", "pass", "unknown" };
static const char *const verdict_names[] = { NULL, "pass", "fail", "unknown" };
static const char *const result_names[] = {
	NULL, "none", "pass", "fail", "softfail", "neutral", "policy",
	"temperror", "permerror", "unknown" };
static const char *const scope_names[] = { NULL, "mfrom", "helo", "unknown" };
static const char *const reason_names[] = {
	NULL, "forwarded", "sampled_out", "trusted_forwarder", "mailing_list",
	"local_policy", "other", "policy_test_mode", "unknown" };
static const char *const testing_names[] = { NULL, "n", "y", "unknown" };
static const char *const discovery_names[] = {
	NULL, "psl", "treewalk", "unknown" };

static const struct enum_alias align_aliases[] = {
	{ "relaxed", DM_ALIGN_RELAXED }, { "strict", DM_ALIGN_STRICT },
	{ NULL, 0 } };
/* RFC 4408 wording and real-world spellings (spec section 8). */
static const struct enum_alias result_aliases[] = {
	{ "hardfail", DM_RESULT_FAIL },
	{ "unknown", DM_RESULT_PERMERROR },
	{ "error", DM_RESULT_TEMPERROR },
	{ "temp_error", DM_RESULT_TEMPERROR },
	{ "perm_error", DM_RESULT_PERMERROR },
	{ NULL, 0 } };
static const struct enum_alias reason_aliases[] = {
	{ "trusted-forwarder", DM_REASON_TRUSTED_FORWARDER },
	{ "mailing-list", DM_REASON_MAILING_LIST },
	{ "local-policy", DM_REASON_LOCAL_POLICY },
	{ "sampled-out", DM_REASON_SAMPLED_OUT },
	{ NULL, 0 } };
static const struct enum_alias testing_aliases[] = {
	{ "no", DM_TESTING_N }, { "yes", DM_TESTING_Y }, { NULL, 0 } };
static const struct enum_alias verdict_aliases[] = {
	{ "hardfail", DM_VERDICT_FAIL }, { NULL, 0 } };

#define DEF(n, a) { n, (int)(sizeof(n) / sizeof(n[0])), a }
static const struct enum_def enum_defs[DM_ENUM_TYPE_COUNT] = {
	[DM_ENUM_POLICY] = DEF(policy_names, NULL),
	[DM_ENUM_ALIGNMENT] = DEF(align_names, align_aliases),
	[DM_ENUM_DISPOSITION] = DEF(disp_names, NULL),
	[DM_ENUM_VERDICT] = DEF(verdict_names, verdict_aliases),
	[DM_ENUM_DKIM_RESULT] = DEF(result_names, result_aliases),
	[DM_ENUM_SPF_RESULT] = DEF(result_names, result_aliases),
	[DM_ENUM_SPF_SCOPE] = DEF(scope_names, NULL),
	[DM_ENUM_REASON] = DEF(reason_names, reason_aliases),
	[DM_ENUM_TESTING] = DEF(testing_names, testing_aliases),
	[DM_ENUM_DISCOVERY] = DEF(discovery_names, NULL),
};
#undef DEF

static int
span_ieq(const char *a, size_t len, const char *b)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (b[i] == '\0' || tolower((unsigned char)a[i]) !=
		    tolower((unsigned char)b[i]))
			return 0;
	}
	return b[len] == '\0';
}

enum dm_enum_match
dm_enum_parse(enum dm_enum_type type, const char *raw, size_t len,
    int *value_r)
{
	const struct enum_def *def = &enum_defs[type];
	const char *s = raw;
	size_t n = len;
	const struct enum_alias *alias;
	int v;

	while (n > 0 && isspace((unsigned char)*s)) {
		s++;
		n--;
	}
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		n--;
	/* "unknown" is the placeholder name of the last value, not input. */
	for (v = 1; v < def->count - 1; v++) {
		if (len > 0 && def->names[v][0] == raw[0] &&
		    strncmp(def->names[v], raw, len) == 0 &&
		    def->names[v][len] == '\0') {
			*value_r = v;
			return DM_MATCH_EXACT;
		}
	}
	for (v = 1; v < def->count - 1; v++) {
		if (span_ieq(s, n, def->names[v])) {
			*value_r = v;
			return DM_MATCH_CASE;
		}
	}
	for (alias = def->aliases; alias != NULL && alias->name != NULL;
	    alias++) {
		if (span_ieq(s, n, alias->name)) {
			*value_r = alias->value;
			return DM_MATCH_ALIAS;
		}
	}
	*value_r = def->count - 1;
	return DM_MATCH_NONE;
}

const char *
dm_enum_name(enum dm_enum_type type, int value)
{
	const struct enum_def *def;

	if ((int)type < 0 || type >= DM_ENUM_TYPE_COUNT)
		return NULL;
	def = &enum_defs[type];
	if (value <= 0 || value >= def->count)
		return NULL;
	return def->names[value];
}

const char *
dm_kind_name(enum dm_kind kind)
{
	switch (kind) {
	case DM_KIND_AGGREGATE:
		return "aggregate";
	case DM_KIND_FAILURE:
		return "failure";
	case DM_KIND_TLSRPT:
		return "tlsrpt";
	case DM_KIND_UNKNOWN:
		break;
	}
	return "unknown";
}

const char *
dm_schema_name(enum dm_schema schema)
{
	switch (schema) {
	case DM_SCHEMA_RFC7489:
		return "rfc7489";
	case DM_SCHEMA_DMARC2:
		return "dmarc-2.0";
	case DM_SCHEMA_UNKNOWN:
		break;
	}
	return "unknown";
}

void
dm_warnings_clear(struct dm_warnings *w)
{
	w->count = 0;
	w->dropped = 0;
}

void
dm_warnings_add(struct dm_warnings *w, unsigned long line, const char *fmt,
    ...)
{
	char text[DM_MAX_WARNING_TEXT];
	va_list ap;
	size_t i;

	if (w == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	for (i = 0; i < w->count; i++) {
		if (strcmp(w->items[i].text, text) == 0) {
			w->items[i].count++;
			return;
		}
	}
	if (w->count == DM_MAX_WARNINGS) {
		w->dropped++;
		return;
	}
	memcpy(w->items[w->count].text, text, sizeof(text));
	w->items[w->count].line = line;
	w->items[w->count].count = 1;
	w->count++;
}

void
dm_warnings_merge(struct dm_warnings *dst, const struct dm_warnings *src,
    unsigned long line_base)
{
	size_t i, j;

	for (i = 0; i < src->count; i++) {
		const struct dm_warning *item = &src->items[i];

		for (j = 0; j < dst->count; j++)
			if (strcmp(dst->items[j].text, item->text) == 0)
				break;
		if (j < dst->count) {
			dst->items[j].count += item->count;
			continue;
		}
		if (dst->count == DM_MAX_WARNINGS) {
			dst->dropped += item->count;
			continue;
		}
		dst->items[dst->count] = *item;
		if (item->line > 0)
			dst->items[dst->count].line = item->line + line_base;
		dst->count++;
	}
	dst->dropped += src->dropped;
}

void
dm_warning_format(const struct dm_warning *warning, char *buf, size_t size)
{
	char where[48] = "";
	char times[48] = "";

	if (warning->line > 0)
		snprintf(where, sizeof(where), "line %lu: ", warning->line);
	if (warning->count > 1)
		snprintf(times, sizeof(times), " (%llu times)",
		    (unsigned long long)warning->count);
	snprintf(buf, size, "%s%s%s", where, warning->text, times);
}

/* A dotted quad already in canonical form (the common case), copied as is. */
static int
ipv4_canonical(const char *s, size_t len, char *out, size_t size)
{
	size_t i = 0;
	int octets = 0;

	while (i < len) {
		unsigned value = 0;
		size_t start = i;

		while (i < len && s[i] >= '0' && s[i] <= '9' && i - start < 4)
			value = value * 10 + (unsigned)(s[i++] - '0');
		if (i == start || i - start > 3 || value > 255 ||
		    (s[start] == '0' && i - start > 1))
			return -1;
		octets++;
		if (i == len)
			break;
		if (s[i] != '.' || octets == 4)
			return -1;
		i++;
		if (i == len)
			return -1;
	}
	if (octets != 4 || len >= size)
		return -1;
	memcpy(out, s, len);
	out[len] = '\0';
	return 0;
}

int
dm_ip_canonical(const char *text, char *out, size_t size)
{
	unsigned char addr[16];
	char copy[64];
	size_t len;

	while (isspace((unsigned char)*text))
		text++;
	len = strlen(text);
	while (len > 0 && isspace((unsigned char)text[len - 1]))
		len--;
	if (len == 0 || len >= sizeof(copy))
		return -1;
	if (ipv4_canonical(text, len, out, size) == 0)
		return 0;
	memcpy(copy, text, len);
	copy[len] = '\0';
	if (inet_pton(AF_INET, copy, addr) == 1)
		return inet_ntop(AF_INET, addr, out, size) ? 0 : -1;
	if (inet_pton(AF_INET6, copy, addr) == 1)
		return inet_ntop(AF_INET6, addr, out, size) ? 0 : -1;
	return -1;
}

int
dm_parse_uint64(const char *text, uint64_t *value_r, const char **why_r)
{
	const char *p = text;
	uint64_t value = 0;
	int digits = 0;

	while (isspace((unsigned char)*p))
		p++;
	if (*p == '-') {
		*why_r = "is negative";
		return -1;
	}
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');

		if (value > ((uint64_t)INT64_MAX - d) / 10) {
			*why_r = "is larger than 9223372036854775807, the "
			    "largest count stored (a signed 64-bit bigint)";
			return -1;
		}
		value = value * 10 + d;
		digits++;
	}
	while (isspace((unsigned char)*p))
		p++;
	if (digits == 0 || *p != '\0') {
		*why_r = "is not a whole number";
		return -1;
	}
	*value_r = value;
	return 0;
}

int
dm_parse_epoch(const char *text, int64_t *value_r, const char **why_r,
    const char **repair_r)
{
	const char *p = text;
	int negative = 0;
	int64_t value = 0;
	int digits = 0;

	*repair_r = NULL;
	while (isspace((unsigned char)*p))
		p++;
	if (*p == '-' || *p == '+')
		negative = *p++ == '-';
	for (; *p >= '0' && *p <= '9'; p++) {
		if (value > (INT64_MAX - 9) / 10) {
			*why_r = "is out of range";
			return -1;
		}
		value = value * 10 + (*p - '0');
		digits++;
	}
	if (digits == 0) {
		*why_r = "is not a timestamp";
		return -1;
	}
	if (*p == '.') {
		/* A float: keep whole seconds, say so unless it is ".0". */
		int nonzero = 0;

		for (p++; *p >= '0' && *p <= '9'; p++)
			nonzero |= *p != '0';
		*repair_r = nonzero ? "fractional seconds dropped" :
		    "float timestamp read as integer";
	}
	while (isspace((unsigned char)*p))
		p++;
	if (*p != '\0') {
		*why_r = "is not a timestamp";
		return -1;
	}
	if (negative) {
		*why_r = "is negative";
		return -1;
	}
	if (value > 100000000000LL) {	/* 10^11 s is year 5138: ms */
		value /= 1000;
		*repair_r = "milliseconds converted to seconds";
	}
	*value_r = value;
	return 0;
}
