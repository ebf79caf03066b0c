/*
 * params.c - the API's query parameters and path segments, checked
 * before anything reaches SQL: times become Unix seconds, counts and
 * cursors integers, domains lower-case DNS names. Whatever does not fit
 * the grammar is refused (the caller answers 400): nothing is guessed,
 * clamped or passed on as text.
 *
 * Also the request's own grammar, before routing: percent-escapes
 * (api_unescape), the path's segments (api_split_path) and the bearer
 * token of the Authorization header (api_bearer). They are here, not in
 * server.c or routes.c, so that tests/fuzz/fuzz_api.c can reach them.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api/api.h"

#define YEAR_MIN	1970
#define YEAR_MAX	9999

/* Exactly n digits at s into *v. */
static int
digits(const char *s, int n, int *v)
{
	int i;

	*v = 0;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		*v = *v * 10 + (s[i] - '0');
	}
	return 0;
}

static int
leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int
days_in_month(int y, int m)
{
	static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31,
	    30, 31 };

	return m == 2 && leap(y) ? 29 : days[m - 1];
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t
days_from_civil(int y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = y / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int
parse_relative(const char *text, int64_t now, int64_t *t_r)
{
	size_t len = strlen(text), i;
	int64_t n = 0, unit;

	if (len < 2 || len > 8)
		return -1;
	for (i = 0; i + 1 < len; i++) {
		if (text[i] < '0' || text[i] > '9')
			return -1;
		n = n * 10 + (text[i] - '0');
	}
	switch (text[len - 1]) {
	case 's': unit = 1; break;
	case 'm': unit = 60; break;
	case 'h': unit = 3600; break;
	case 'd': unit = 86400; break;
	case 'w': unit = 7 * 86400; break;
	default: return -1;
	}
	/* At most 9,999,999 weeks: no overflow; the caller checks the
	 * range. */
	*t_r = now - n * unit;
	return 0;
}

/* 1970-01-01 to 9999-12-31T23:59:59Z: what to_timestamp() takes. */
#define TIME_MAX	INT64_C(253402300799)

static int parse_time(const char *text, int64_t now, int64_t *t_r);

int
api_parse_time(const char *text, int64_t now, int64_t *t_r)
{
	int64_t t;

	if (parse_time(text, now, &t) != 0 || t < 0 || t > TIME_MAX)
		return -1;
	*t_r = t;
	return 0;
}

static int
parse_time(const char *text, int64_t now, int64_t *t_r)
{
	int y, mo, d, h = 0, mi = 0, s = 0, oh, om, sign;
	const char *p;
	int64_t t;

	if (text == NULL || text[0] == '\0')
		return -1;
	if (strcmp(text, "now") == 0) {
		*t_r = now;
		return 0;
	}
	if (strlen(text) < 10 || text[4] != '-')
		return parse_relative(text, now, t_r);
	if (digits(text, 4, &y) != 0 || text[4] != '-' ||
	    digits(text + 5, 2, &mo) != 0 || text[7] != '-' ||
	    digits(text + 8, 2, &d) != 0)
		return -1;
	if (y < YEAR_MIN || y > YEAR_MAX || mo < 1 || mo > 12 || d < 1 ||
	    d > days_in_month(y, mo))
		return -1;
	p = text + 10;
	sign = 0;
	oh = om = 0;
	if (*p != '\0') {
		if (*p != 'T' && *p != 't' && *p != ' ')
			return -1;
		p++;
		if (digits(p, 2, &h) != 0 || p[2] != ':' ||
		    digits(p + 3, 2, &mi) != 0 || p[5] != ':' ||
		    digits(p + 6, 2, &s) != 0)
			return -1;
		p += 8;
		/* RFC 3339 allows 60 for a leap second. */
		if (h > 23 || mi > 59 || s > 60)
			return -1;
		if (*p == '.') {
			p++;
			if (*p < '0' || *p > '9')
				return -1;
			for (int n = 0; *p >= '0' && *p <= '9'; p++, n++)
				if (n >= 9)
					return -1;
		}
		if ((*p == 'Z' || *p == 'z') && p[1] == '\0')
			;
		else if ((*p == '+' || *p == '-') && strlen(p) == 6) {
			sign = *p == '+' ? 1 : -1;
			if (digits(p + 1, 2, &oh) != 0 || p[3] != ':' ||
			    digits(p + 4, 2, &om) != 0 || oh > 23 || om > 59)
				return -1;
		} else
			return -1;
	}
	t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
	t -= sign * (oh * 3600 + om * 60);
	*t_r = t;
	return 0;
}

int
api_parse_count(const char *text, uint64_t lo, uint64_t hi,
    uint64_t *value_r)
{
	uint64_t v = 0;
	size_t i;

	if (text == NULL || text[0] == '\0' || strlen(text) > 12)
		return -1;
	for (i = 0; text[i] != '\0'; i++) {
		if (text[i] < '0' || text[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(text[i] - '0');
	}
	if (v < lo || v > hi)
		return -1;
	*value_r = v;
	return 0;
}

int
api_parse_domain(const char *text, char *out, size_t size)
{
	size_t len, i, label = 0;
	char c;

	if (text == NULL)
		return -1;
	len = strlen(text);
	if (len == 0 || len > 253 || len >= size || text[0] == '.' ||
	    text[len - 1] == '.')
		return -1;
	for (i = 0; i < len; i++) {
		c = text[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c == '.') {
			if (label == 0)
				return -1;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_') {
			if (++label > 63)
				return -1;
		} else
			return -1;
		out[i] = c;
	}
	out[len] = '\0';
	return 0;
}

/* A signed decimal of 1 to 19 digits, up to end. */
static int
parse_int64(const char *s, const char *end, int64_t *v)
{
	int neg = 0;
	uint64_t u = 0;

	if (s < end && *s == '-') {
		neg = 1;
		s++;
	}
	if (s == end || end - s > 18)
		return -1;
	for (; s < end; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		u = u * 10 + (uint64_t)(*s - '0');
	}
	*v = neg ? -(int64_t)u : (int64_t)u;
	return 0;
}

int
api_parse_cursor(const char *text, int64_t *t_r, int64_t *id_r)
{
	const char *sep;

	if (text == NULL || (sep = strchr(text, '_')) == NULL)
		return -1;
	if (parse_int64(text, sep, t_r) != 0 ||
	    parse_int64(sep + 1, sep + 1 + strlen(sep + 1), id_r) != 0 ||
	    *id_r < 0)
		return -1;
	return 0;
}

void
api_printable(const char *text, size_t max, char *out, size_t size)
{
	size_t i;

	if (size == 0)
		return;
	for (i = 0; i < max && i + 1 < size && text[i] != '\0'; i++)
		out[i] = text[i] >= 0x20 && text[i] < 0x7f ? text[i] : '?';
	out[i] = '\0';
	if (text[i] != '\0' && i >= 3)		/* cut: say so */
		out[i - 1] = out[i - 2] = out[i - 3] = '.';
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* In place; %00 and bad escapes stay as they are (see server.c's top). */
size_t
api_unescape(char *s)
{
	char *in = s, *out = s;
	int hi, lo;

	while (*in != '\0') {
		if (in[0] == '%' && (hi = hexval(in[1])) >= 0 &&
		    (lo = hexval(in[2])) >= 0 && (hi | lo) != 0) {
			*out++ = (char)(hi << 4 | lo);
			in += 3;
		} else
			*out++ = *in++;
	}
	*out = '\0';
	return (size_t)(out - s);
}

int
api_split_path(struct api_req *r, const char *url)
{
	char *p;

	snprintf(r->path, sizeof(r->path), "%s", url);
	if (r->path[0] != '/')
		return -1;
	r->nseg = 0;
	if (r->path[1] == '\0')
		return 0;	/* "/": the status page */
	p = r->path + 1;
	for (;;) {
		char *slash = strchr(p, '/');

		if (*p == '\0' || slash == p)
			return -1;
		if (r->nseg == API_MAX_SEGMENTS)
			return -1;
		r->seg[r->nseg++] = p;
		if (slash == NULL)
			return 0;
		*slash = '\0';
		p = slash + 1;
	}
}

const char *
api_bearer(const char *h, size_t *len_r)
{
	const char *token;
	size_t len;

	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
		return NULL;
	for (token = h + 7; *token == ' '; token++)
		;
	len = strlen(token);
	while (len > 0 && token[len - 1] == ' ')
		len--;
	*len_r = len;
	return token;
}
