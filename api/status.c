/*
 * status.c - the status page at /: one HTML page for a browser, rendered
 * on the server from the very JSON answers the API gives for each domain
 * (summary, sources, readiness: routes.c fetches them, kept answers
 * included), so that the page and the API never disagree.
 *
 * Content: the domains with their messages, DMARC pass share and aligned
 * share over the window and their readiness verdict; per domain the
 * verdict's advice, an SVG bar chart of the daily aligned share (the
 * readiness trend) and the largest senders of each class.
 *
 * No external asset and no script: the CSS is one inline style element,
 * allowed by its SHA-256 in the Content-Security-Policy (api_status_csp),
 * the charts are inline SVG with presentation attributes. Every text that
 * comes from the database is escaped (api_html_text): domain, sender, PTR
 * and From names come from reports, that is from anyone.
 *
 * Bounded: API_STATUS_MAX_DOMAINS domains, API_STATUS_MAX_SENDERS senders
 * per class, API_STATUS_DAYS_MAX bars, names cut at NAME_MAX_SHOWN bytes,
 * and the whole page in a dm_buf of API_STATUS_MAX_BYTES; the page says
 * what it leaves out.
 *
 * DIAGNOSTICS
 *	api_status_render() returns -1 when the page would pass its cap or
 *	memory runs out; an answer that does not parse is shown as
 *	unavailable for its domain, not as an error of the page.
 */
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "api/api.h"
#include "common/buf.h"

#define NAME_MAX_SHOWN		120	/* bytes of a sender or From name */
#define ADVICE_MAX_SHOWN	2000
#define FROM_MAX_SHOWN		3	/* From domains per sender */

/* Chart geometry (SVG user units). */
#define CHART_W		720
#define CHART_H		240
#define PLOT_X		56
#define PLOT_Y		16
#define PLOT_W		(CHART_W - PLOT_X - 16)
#define PLOT_H		(CHART_H - PLOT_Y - 48)

static const char css[] =
    "body{font:15px/1.4 system-ui,sans-serif;margin:0 auto;max-width:"
    "1100px;padding:0 16px 32px;color:#1b1f24;background:#fff}"
    "h1{font-size:24px;margin:20px 0 4px}h2{font-size:19px;margin:28px 0 "
    "6px;border-bottom:1px solid #d0d7de;padding-bottom:4px}"
    "h3{font-size:16px;margin:18px 0 6px}h4{font-size:14px;margin:12px 0 "
    "4px}"
    "table{border-collapse:collapse;margin:4px 0 8px;width:100%}"
    "th,td{text-align:left;padding:4px 8px;border-bottom:1px solid "
    "#eaeef2;vertical-align:top}"
    "td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}"
    "table.senders{table-layout:fixed}table.senders td{overflow-wrap:"
    "anywhere}"
    "thead th{background:#f6f8fa;font-weight:600}"
    ".v{display:inline-block;padding:1px 8px;border-radius:10px;"
    "font-weight:600;font-size:13px;background:#eaeef2}"
    ".v-ready,.v-enforced{background:#d1f0d8;color:#0a5c1f}"
    ".v-not_ready{background:#fff1c2;color:#6b4a00}"
    ".v-at_risk{background:#ffd8d3;color:#8a1206}"
    ".note,.muted{color:#57606a;font-size:13px}"
    ".advice{margin:6px 0}svg{max-width:100%;height:auto}"
    "nav a{margin-right:10px}figure{margin:8px 0}";

/* ---- a bounded HTML writer: the first failure sticks ---- */

struct html {
	struct dm_buf *b;
	int failed;
};

static void
raw(struct html *h, const char *s)
{
	if (!h->failed && dm_buf_append(h->b, s, strlen(s)) != 0)
		h->failed = 1;
}

static void DM_PRINTF(2, 3)
fmt(struct html *h, const char *format, ...)
{
	char small[512];
	va_list ap;
	int n;

	if (h->failed)
		return;
	va_start(ap, format);
	n = vsnprintf(small, sizeof(small), format, ap);
	va_end(ap);
	/* Only numbers and our own words go through here: never long. */
	if (n < 0 || (size_t)n >= sizeof(small) ||
	    dm_buf_append(h->b, small, (size_t)n) != 0)
		h->failed = 1;
}

static void
text(struct html *h, const char *s, size_t max)
{
	if (!h->failed && api_html_text(h->b, s != NULL ? s : "", max) != 0)
		h->failed = 1;
}

int
api_html_text(struct dm_buf *b, const char *s, size_t max)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t len = strlen(s), i, start = 0, cut = len;
	const char *ref;
	int fail = 0;

	if (len > max) {
		/* Back to the start of a UTF-8 character. */
		cut = max;
		while (cut > 0 && (p[cut] & 0xc0) == 0x80)
			cut--;
	}
	for (i = 0; i < cut && !fail; i++) {
		switch (p[i]) {
		case '&': ref = "&amp;"; break;
		case '<': ref = "&lt;"; break;
		case '>': ref = "&gt;"; break;
		case '"': ref = "&quot;"; break;
		case '\'': ref = "&#39;"; break;
		default:
			ref = p[i] < 0x20 || p[i] == 0x7f ? "\xEF\xBF\xBD" :
			    NULL;
			break;
		}
		if (ref == NULL)
			continue;
		fail |= dm_buf_append(b, s + start, i - start);
		fail |= dm_buf_append(b, ref, strlen(ref));
		start = i + 1;
	}
	if (!fail)
		fail |= dm_buf_append(b, s + start, cut - start);
	if (!fail && cut < len)
		fail |= dm_buf_append(b, "\xE2\x80\xA6", 3);	/* ... */
	return fail ? -1 : 0;
}

/* ---- the CSP: the style element's hash, computed once ---- */

static char csp[256];
static pthread_once_t csp_once = PTHREAD_ONCE_INIT;

static void
csp_make(void)
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned char sha[33];
	char hash[48];
	size_t i, n = 0;
	uint32_t v;

	api_token_hash(css, sizeof(css) - 1, sha);
	sha[32] = 0;
	for (i = 0; i < 33; i += 3) {
		v = (uint32_t)sha[i] << 16 | (uint32_t)sha[i + 1] << 8 |
		    (i + 2 < 33 ? sha[i + 2] : 0);
		hash[n++] = b64[(v >> 18) & 63];
		hash[n++] = b64[(v >> 12) & 63];
		hash[n++] = b64[(v >> 6) & 63];
		/* 32 bytes: the last group has two, and one '=' */
		hash[n++] = i + 3 < 33 ? b64[v & 63] : '=';
	}
	hash[n] = '\0';
	snprintf(csp, sizeof(csp), "default-src 'none'; style-src "
	    "'sha256-%s'; img-src data:; base-uri 'none'; form-action 'none'; "
	    "frame-ancestors 'none'", hash);
}

const char *
api_status_csp(void)
{
	pthread_once(&csp_once, csp_make);
	return csp;
}

/* ---- reading the answers ---- */

static const char *
str(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

static json_int_t
num(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	if (json_is_integer(v))
		return json_integer_value(v);
	if (json_is_real(v))
		return (json_int_t)json_real_value(v);
	return 0;
}

/* A share (0..1) or NaN when absent or null. */
static double
share(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_number(v) ? json_number_value(v) : NAN;
}

static void
percent(struct html *h, double s)
{
	if (isnan(s))
		raw(h, "&#8211;");
	else
		fmt(h, "%.2f%%", s * 100.0);
}

static void
day_text(char out[11], int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL)
		snprintf(out, 11, "?");
	else
		strftime(out, 11, "%Y-%m-%d", &tm);
}

/* "at_risk" as "at risk". */
static void
verdict_badge(struct html *h, const char *status)
{
	const char *s = status != NULL ? status : "unavailable";
	char word[32];
	size_t i;

	snprintf(word, sizeof(word), "%s", s);
	for (i = 0; word[i] != '\0'; i++)
		if (word[i] == '_')
			word[i] = ' ';
	raw(h, "<span class=\"v v-");
	text(h, s, 20);
	raw(h, "\" data-k=\"verdict\">");
	text(h, word, sizeof(word));
	raw(h, "</span>");
}

/* ---- the chart: one bar a day ---- */

static int64_t
parse_day(const char *s)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (s == NULL || strlen(s) != 10 ||
	    sscanf(s, "%4d-%2d-%2d", &tm.tm_year, &tm.tm_mon,
	    &tm.tm_mday) != 3)
		return INT64_MIN;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (int64_t)timegm(&tm);
}

static void
chart(struct html *h, const struct api_status_page *pg, size_t idx,
    const char *domain, json_t *trend)
{
	double bar_w = (double)PLOT_W / (double)pg->days;
	char first[11], last[11], mid[11], day[11];
	size_t i, with_mail = 0;
	double lo = NAN, hi = NAN;
	json_t *e;
	int tick;

	day_text(first, pg->since);
	day_text(last, pg->until - 86400);
	json_array_foreach(trend, i, e) {
		double s = share(e, "share");

		if (isnan(s) || num(e, "legitimate") <= 0)
			continue;
		with_mail++;
		if (isnan(lo) || s < lo)
			lo = s;
		if (isnan(hi) || s > hi)
			hi = s;
	}
	fmt(h, "<figure><svg xmlns=\"http://www.w3.org/2000/svg\" "
	    "role=\"img\" viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" "
	    "aria-labelledby=\"c%zu-t c%zu-d\" class=\"chart\">",
	    CHART_W, CHART_H, CHART_W, CHART_H, idx, idx);
	fmt(h, "<title id=\"c%zu-t\">Daily aligned share of legitimate "
	    "mail, ", idx);
	text(h, domain, 253);
	fmt(h, "</title><desc id=\"c%zu-d\">One bar per UTC day from %s to "
	    "%s: the share of legitimate mail (senders classed aligned or "
	    "unaligned) that passes DMARC. %zu of %u days have such mail",
	    idx, first, last, with_mail, pg->days);
	if (with_mail > 0) {
		raw(h, "; lowest ");
		percent(h, lo);
		raw(h, ", highest ");
		percent(h, hi);
	}
	raw(h, ". The dashed line is 98%, the share readiness asks for."
	    "</desc>");
	/* Grid and y axis: 0, 25, 50, 75, 100%. */
	for (tick = 0; tick <= 100; tick += 25) {
		double y = PLOT_Y + PLOT_H - PLOT_H * tick / 100.0;

		fmt(h, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" "
		    "stroke=\"#d0d7de\" stroke-width=\"1\"/>", PLOT_X, y,
		    PLOT_X + PLOT_W, y);
		fmt(h, "<text x=\"%d\" y=\"%.1f\" font-size=\"11\" "
		    "text-anchor=\"end\" fill=\"#57606a\">%d%%</text>",
		    PLOT_X - 6, y + 4, tick);
	}
	fmt(h, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" "
	    "stroke=\"#57606a\"/>", PLOT_X, PLOT_Y, PLOT_X, PLOT_Y + PLOT_H);
	fmt(h, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" "
	    "stroke=\"#57606a\"/>", PLOT_X, PLOT_Y + PLOT_H, PLOT_X + PLOT_W,
	    PLOT_Y + PLOT_H);
	/* The bars. */
	json_array_foreach(trend, i, e) {
		double s = share(e, "share"), x, bh;
		int64_t t = parse_day(str(e, "day"));
		int64_t slot;

		if (isnan(s) || num(e, "legitimate") <= 0 ||
		    t == INT64_MIN || t < pg->since || t >= pg->until)
			continue;
		slot = (t - pg->since) / 86400;
		x = PLOT_X + bar_w * (double)slot;
		if (s < 0)
			s = 0;
		if (s > 1)
			s = 1;
		bh = PLOT_H * s;
		day_text(day, t);
		fmt(h, "<rect class=\"bar\" data-day=\"%s\" "
		    "data-share=\"%.4f\" x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" "
		    "height=\"%.2f\" fill=\"%s\">", day, share(e, "share"),
		    x + bar_w * 0.1, PLOT_Y + PLOT_H - bh, bar_w * 0.8, bh,
		    s >= 0.98 ? "#2da44e" : "#bf8700");
		fmt(h, "<title>%s: ", day);
		percent(h, share(e, "share"));
		fmt(h, " aligned (%" JSON_INTEGER_FORMAT " of %"
		    JSON_INTEGER_FORMAT ")</title></rect>", num(e, "aligned"),
		    num(e, "legitimate"));
	}
	/* The 98% line, the x labels, the axis titles. */
	fmt(h, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" "
	    "stroke=\"#0969da\" stroke-dasharray=\"6 4\"/>", PLOT_X,
	    PLOT_Y + PLOT_H * 0.02, PLOT_X + PLOT_W, PLOT_Y + PLOT_H * 0.02);
	day_text(mid, pg->since + (int64_t)(pg->days / 2) * 86400);
	fmt(h, "<text x=\"%d\" y=\"%d\" font-size=\"11\" fill=\"#57606a\">"
	    "%s</text>", PLOT_X, PLOT_Y + PLOT_H + 16, first);
	if (pg->days > 2)
		fmt(h, "<text x=\"%.1f\" y=\"%d\" font-size=\"11\" "
		    "text-anchor=\"middle\" fill=\"#57606a\">%s</text>",
		    PLOT_X + bar_w * (pg->days / 2) + bar_w / 2,
		    PLOT_Y + PLOT_H + 16, mid);
	fmt(h, "<text x=\"%d\" y=\"%d\" font-size=\"11\" text-anchor=\"end\" "
	    "fill=\"#57606a\">%s</text>", PLOT_X + PLOT_W,
	    PLOT_Y + PLOT_H + 16, last);
	fmt(h, "<text x=\"%d\" y=\"%d\" font-size=\"12\" "
	    "text-anchor=\"middle\" fill=\"#1b1f24\">Day (UTC)</text>",
	    PLOT_X + PLOT_W / 2, CHART_H - 8);
	fmt(h, "<text x=\"14\" y=\"%d\" font-size=\"12\" "
	    "text-anchor=\"middle\" fill=\"#1b1f24\" transform=\"rotate(-90 "
	    "14 %d)\">Aligned share</text>", PLOT_Y + PLOT_H / 2,
	    PLOT_Y + PLOT_H / 2);
	raw(h, "</svg>");
	if (with_mail == 0)
		raw(h, "<figcaption class=\"note\">No legitimate mail in the "
		    "window: nothing to draw.</figcaption>");
	raw(h, "</figure>");
}

/* ---- top senders by class ---- */

static const char *const classes[] = {
	"aligned", "unaligned", "unauthorised", "forwarded"
};

static int
by_messages(const void *a, const void *b)
{
	json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	json_int_t mx = num(x, "messages"), my = num(y, "messages");
	const char *sx = str(x, "sender"), *sy = str(y, "sender");

	if (mx != my)
		return mx > my ? -1 : 1;
	return strcmp(sx != NULL ? sx : "", sy != NULL ? sy : "");
}

static void
senders(struct html *h, json_t *list, json_t *summary_classes)
{
	json_t **picked, *e, *from, *f;
	size_t i, j, k, n, total = json_array_size(list);

	picked = calloc(total + 1, sizeof(*picked));
	if (picked == NULL) {
		h->failed = 1;
		return;
	}
	for (k = 0; k < sizeof(classes) / sizeof(classes[0]); k++) {
		json_t *sc = json_object_get(summary_classes, classes[k]);

		n = 0;
		json_array_foreach(list, i, e) {
			const char *c = str(e, "class");

			if (c != NULL && strcmp(c, classes[k]) == 0)
				picked[n++] = e;
		}
		qsort(picked, n, sizeof(*picked), by_messages);
		fmt(h, "<h4 data-class=\"%s\">%c%s: %zu sender%s, %"
		    JSON_INTEGER_FORMAT " messages</h4>", classes[k],
		    classes[k][0] - 'a' + 'A', classes[k] + 1, n,
		    n == 1 ? "" : "s", sc != NULL ? num(sc, "messages") : 0);
		if (n == 0)
			continue;
		fmt(h, "<table class=\"senders\" data-class=\"%s\"><thead><tr>"
		    "<th scope=\"col\">Sender</th><th scope=\"col\">Platform"
		    "</th><th scope=\"col\" class=\"n\">Messages</th><th "
		    "scope=\"col\" class=\"n\">DMARC pass</th><th "
		    "scope=\"col\" class=\"n\">Failing</th><th "
		    "scope=\"col\">From</th></tr></thead><tbody>", classes[k]);
		for (i = 0; i < n && i < API_STATUS_MAX_SENDERS; i++) {
			e = picked[i];
			raw(h, "<tr><td data-k=\"sender\">");
			text(h, str(e, "sender"), NAME_MAX_SHOWN);
			raw(h, "</td><td data-k=\"platform\">");
			text(h, str(e, "platform"), NAME_MAX_SHOWN);
			fmt(h, "</td><td class=\"n\" data-k=\"messages\">%"
			    JSON_INTEGER_FORMAT "</td><td class=\"n\" "
			    "data-k=\"dmarc_pass\">%" JSON_INTEGER_FORMAT
			    "</td><td class=\"n\" data-k=\"failing\">%"
			    JSON_INTEGER_FORMAT "</td><td data-k=\"from\">",
			    num(e, "messages"), num(e, "dmarc_pass"),
			    num(e, "failing"));
			from = json_object_get(e, "header_from");
			json_array_foreach(from, j, f) {
				if (j == FROM_MAX_SHOWN) {
					fmt(h, " and %zu more",
					    json_array_size(from) - j);
					break;
				}
				if (j > 0)
					raw(h, ", ");
				text(h, json_is_string(f) ?
				    json_string_value(f) : "", NAME_MAX_SHOWN);
			}
			raw(h, "</td></tr>");
		}
		raw(h, "</tbody></table>");
		if (n > API_STATUS_MAX_SENDERS)
			fmt(h, "<p class=\"note\">The %d largest of %zu "
			    "senders.</p>", API_STATUS_MAX_SENDERS, n);
	}
	free(picked);
}

/* ---- the page ---- */

struct parsed {
	json_t *summary, *sources, *readiness;
};

static json_t *
parse(const char *text_json)
{
	json_t *doc;

	if (text_json == NULL)
		return NULL;
	doc = json_loads(text_json, 0, NULL);
	if (doc != NULL && !json_is_object(doc)) {
		json_decref(doc);
		return NULL;
	}
	return doc;
}

static void
domain_row(struct html *h, size_t idx, const char *domain,
    const struct parsed *p)
{
	json_t *verdict = json_object_get(p->readiness, "verdict");
	json_t *legit = json_object_get(p->readiness, "legitimate");

	raw(h, "<tr data-domain=\"");
	text(h, domain, 253);
	fmt(h, "\"><th scope=\"row\"><a href=\"#d%zu\" data-k=\"domain\">",
	    idx);
	text(h, domain, 253);
	raw(h, "</a></th>");
	if (p->summary != NULL) {
		fmt(h, "<td class=\"n\" data-k=\"messages\">%"
		    JSON_INTEGER_FORMAT "</td><td class=\"n\" "
		    "data-k=\"dmarc_pass_share\">", num(p->summary,
		    "messages"));
		percent(h, share(p->summary, "dmarc_pass_share"));
		raw(h, "</td>");
	} else
		raw(h, "<td colspan=\"2\">unavailable</td>");
	raw(h, "<td class=\"n\" data-k=\"aligned_share\">");
	percent(h, share(legit, "share"));
	raw(h, "</td><td>");
	verdict_badge(h, str(verdict, "status"));
	raw(h, "</td><td data-k=\"policy\">");
	text(h, str(p->readiness, "current"), 100);
	raw(h, "</td></tr>");
}

static void
domain_section(struct html *h, const struct api_status_page *pg,
    size_t idx, const char *domain, const struct parsed *p)
{
	json_t *verdict = json_object_get(p->readiness, "verdict");

	fmt(h, "<section class=\"domain\" id=\"d%zu\" data-domain=\"", idx);
	text(h, domain, 253);
	raw(h, "\"><h2>");
	text(h, domain, 253);
	raw(h, "</h2>");
	if (p->readiness == NULL) {
		raw(h, "<p>Readiness: unavailable (the database did not "
		    "answer).</p>");
	} else {
		raw(h, "<p class=\"advice\">Readiness: ");
		verdict_badge(h, str(verdict, "status"));
		raw(h, " <span data-k=\"advice\">");
		text(h, str(verdict, "advice"), ADVICE_MAX_SHOWN);
		raw(h, "</span></p>");
		if (str(verdict, "next") != NULL) {
			raw(h, "<p>Next step: <code data-k=\"next\">");
			text(h, str(verdict, "next"), 200);
			raw(h, "</code></p>");
		}
		chart(h, pg, idx, domain, json_object_get(p->readiness,
		    "trend"));
	}
	raw(h, "<h3>Top senders by class</h3>");
	if (p->sources == NULL || p->summary == NULL)
		raw(h, "<p>Senders: unavailable (the database did not "
		    "answer).</p>");
	else
		senders(h, json_object_get(p->sources, "senders"),
		    json_object_get(p->summary, "classes"));
	raw(h, "</section>");
}

int
api_status_render(const struct api_status_page *pg, struct dm_buf *out)
{
	struct html h = { out, 0 };
	struct parsed *parsed;
	char since[11], last[11], now_text[32];
	time_t now = (time_t)pg->now;
	struct tm tm;
	size_t i;

	parsed = calloc(pg->ndomains + 1, sizeof(*parsed));
	if (parsed == NULL) {
		dm_buf_free(out);
		return -1;
	}
	for (i = 0; i < pg->ndomains; i++) {
		parsed[i].summary = parse(pg->domains[i].summary);
		parsed[i].sources = parse(pg->domains[i].sources);
		parsed[i].readiness = parse(pg->domains[i].readiness);
	}
	day_text(since, pg->since);
	day_text(last, pg->until - 86400);
	if (gmtime_r(&now, &tm) == NULL ||
	    strftime(now_text, sizeof(now_text), "%Y-%m-%d %H:%M", &tm) == 0)
		snprintf(now_text, sizeof(now_text), "?");
	raw(&h, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta "
	    "charset=\"utf-8\"><meta name=\"viewport\" content=\"width="
	    "device-width, initial-scale=1\"><meta name=\"robots\" "
	    "content=\"noindex\"><title>dmarcd status</title><style>");
	raw(&h, css);
	raw(&h, "</style></head><body><header><h1>dmarcd status</h1>");
	fmt(&h, "<p id=\"window\" data-since=\"%s\" data-until=\"%s\" "
	    "data-days=\"%u\">The %u complete UTC days from <time>%s</time> "
	    "to <time>%s</time> (today is not complete: its reports come "
	    "tomorrow). Made %s UTC.</p>", since, last, pg->days, pg->days,
	    since, last, now_text);
	raw(&h, "<nav class=\"note\">Window: <a href=\"?days=7\">7 days</a>"
	    "<a href=\"?days=30\">30 days</a><a href=\"?days=90\">90 days</a>"
	    "<a href=\"?days=365\">365 days</a></nav>");
	if (pg->public_page)
		raw(&h, "<p class=\"note\">This page is public ([api] "
		    "status_public): it shows every domain.</p>");
	raw(&h, "</header><main><section id=\"domains\"><h2>Domains</h2>");
	if (pg->domains_total > pg->ndomains)
		fmt(&h, "<p class=\"note\" id=\"cut\">The %zu domains with the "
		    "most messages of %zu.</p>", pg->ndomains,
		    pg->domains_total);
	if (pg->ndomains == 0)
		raw(&h, "<p>No domain has reports yet.</p>");
	else {
		raw(&h, "<table class=\"domains\"><thead><tr><th scope=\"col\">"
		    "Domain</th><th scope=\"col\" class=\"n\">Messages</th><th "
		    "scope=\"col\" class=\"n\">DMARC pass</th><th "
		    "scope=\"col\" class=\"n\">Aligned share</th><th "
		    "scope=\"col\">Readiness</th><th scope=\"col\">Policy</th>"
		    "</tr></thead><tbody>");
		for (i = 0; i < pg->ndomains; i++)
			domain_row(&h, i + 1, pg->domains[i].domain,
			    &parsed[i]);
		raw(&h, "</tbody></table><p class=\"note\">Messages and DMARC "
		    "pass: every message reported in the window. Aligned "
		    "share: of legitimate mail (senders classed aligned or "
		    "unaligned), as readiness judges it.</p>");
	}
	raw(&h, "</section>");
	for (i = 0; i < pg->ndomains; i++)
		domain_section(&h, pg, i + 1, pg->domains[i].domain,
		    &parsed[i]);
	raw(&h, "</main></body></html>\n");
	for (i = 0; i < pg->ndomains; i++) {
		json_decref(parsed[i].summary);
		json_decref(parsed[i].sources);
		json_decref(parsed[i].readiness);
	}
	free(parsed);
	if (h.failed) {
		dm_buf_free(out);
		return -1;
	}
	return 0;
}

int
api_status_error(unsigned status, const char *message, struct dm_buf *out)
{
	struct html h = { out, 0 };

	fmt(&h, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta "
	    "charset=\"utf-8\"><title>dmarcd: %u</title><style>", status);
	raw(&h, css);
	fmt(&h, "</style></head><body><h1>dmarcd status: %u</h1><p>", status);
	text(&h, message, 1000);
	raw(&h, "</p></body></html>\n");
	if (h.failed) {
		dm_buf_free(out);
		return -1;
	}
	return 0;
}

/* ---- which domains ---- */

struct pick {
	const char *domain;
	json_int_t messages;
};

static int
by_volume(const void *a, const void *b)
{
	const struct pick *x = a, *y = b;

	if (x->messages != y->messages)
		return x->messages > y->messages ? -1 : 1;
	return strcmp(x->domain, y->domain);
}

int
api_status_domains(const char *json, char names[][256], size_t max,
    size_t *n_r, size_t *total_r)
{
	json_t *doc = json_loads(json, 0, NULL), *e;
	struct pick *picks;
	size_t i, n = 0;

	*n_r = *total_r = 0;
	if (!json_is_array(doc)) {
		json_decref(doc);
		return -1;
	}
	picks = calloc(json_array_size(doc) + 1, sizeof(*picks));
	if (picks == NULL) {
		json_decref(doc);
		return -1;
	}
	json_array_foreach(doc, i, e) {
		const char *d = str(e, "domain");

		if (d == NULL || strlen(d) >= 256)
			continue;
		picks[n].domain = d;
		picks[n].messages = num(e, "messages");
		n++;
	}
	qsort(picks, n, sizeof(*picks), by_volume);
	*total_r = n;
	for (i = 0; i < n && i < max; i++)
		snprintf(names[i], 256, "%s", picks[i].domain);
	*n_r = i;
	free(picks);
	json_decref(doc);
	return 0;
}
