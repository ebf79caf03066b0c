/*
 * alerts.c - raising alerts and posting them to the webhook (see
 * alerts.h).
 *
 * Each alert is its own request, so that the rate limit counts alerts
 * and requests alike, a failure holds back one alert, and the receiver
 * can acknowledge each. The delivery lock is PostgreSQL's (one session
 * at a time), so that two `dmarcd alerts`, or one beside `dmarcd run`,
 * never send the same alert twice nor go over max_per_hour together.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <nettle/hmac.h>

#include "collector/alerts.h"
#include "collector/httpc.h"

/* Blotted paths shorter than this would blot ordinary words. */
#define BLOT_MIN_LEN	4

/* How one request ended. */
enum outcome {
	SENT,		/* 2xx */
	RETRY,		/* 408, 429, 5xx: try again */
	REFUSED,	/* 3xx, other 4xx: counts towards giving up */
	UNREACHABLE	/* no answer: timeout, connection, TLS */
};

/* One request. */
struct exchange {
	const struct dm_config *cfg;
	struct httpc_target target;
	const char *path;	/* of the webhook URL, to blot */
	size_t path_len;
	char answer[ALERTS_MAX_ANSWER + 1];
	size_t answer_len;
	char curl_error[CURL_ERROR_SIZE];
	long retry_after_s;	/* the server's, or 0 */
	char why[512];		/* the failure, for last_error */
};

int
alerts_enabled(const struct dm_config *cfg)
{
	return cfg->alerts_webhook[0] != '\0';
}

void
alerts_scan_params(const struct dm_config *cfg, struct store_alert_scan *scan)
{
	scan->min_messages = cfg->alerts_min_messages;
	scan->share_drop = cfg->alerts_share_drop;
	scan->window_days = cfg->alerts_window_days;
}

void
alerts_signature(const char *secret, const char *body, size_t len,
    char out[ALERTS_SIGNATURE_SIZE])
{
	struct hmac_sha256_ctx ctx;
	uint8_t digest[SHA256_DIGEST_SIZE];
	size_t i;

	hmac_sha256_set_key(&ctx, strlen(secret), (const uint8_t *)secret);
	hmac_sha256_update(&ctx, len, (const uint8_t *)body);
	hmac_sha256_digest(&ctx, sizeof(digest), digest);
	memcpy(out, "sha256=", 7);
	for (i = 0; i < sizeof(digest); i++)
		snprintf(out + 7 + 2 * i, 3, "%02x", digest[i]);
	explicit_bzero(&ctx, sizeof(ctx));
}

/* Slack's mrkdwn: &, < and > are escaped; control characters are
 * spaces. At most size - 1 bytes, never half an escape. */
static void
slack_escape(char *out, size_t size, const char *in)
{
	size_t n = 0;
	const char *rep;
	char one[2] = { 0, 0 };

	for (; *in != '\0'; in++) {
		switch (*in) {
		case '&':
			rep = "&amp;";
			break;
		case '<':
			rep = "&lt;";
			break;
		case '>':
			rep = "&gt;";
			break;
		default:
			one[0] = (unsigned char)*in < 0x20 ? ' ' : *in;
			rep = one;
		}
		if (n + strlen(rep) + 1 > size)
			break;
		memcpy(out + n, rep, strlen(rep));
		n += strlen(rep);
	}
	if (size > 0)
		out[n] = '\0';
}

/* A member of the detail as text: a string as it is, a number printed,
 * else "?". */
static void
member(json_t *detail, const char *name, char *out, size_t size)
{
	json_t *v = json_object_get(detail, name);

	if (json_is_string(v))
		snprintf(out, size, "%s", json_string_value(v));
	else if (json_is_integer(v))
		snprintf(out, size, "%" JSON_INTEGER_FORMAT,
		    json_integer_value(v));
	else if (json_is_real(v))
		snprintf(out, size, "%.1f", json_real_value(v));
	else
		snprintf(out, size, "?");
}

void
alerts_sentence(const struct store_alert *a, char *out, size_t size)
{
	json_t *d = json_loads(a->detail, 0, NULL);
	char x[256], y[200], z[256], w[64];

	if (strcmp(a->kind, "new_reporter") == 0) {
		member(d, "first_report_begin", x, sizeof(x));
		member(d, "reports", y, sizeof(y));
		member(d, "messages", z, sizeof(z));
		snprintf(out, size, "%s has a new reporter: %s sent its first "
		    "aggregate report on the domain (from %.10s; %s reports, "
		    "%s messages so far).", a->domain, a->key, x, y, z);
	} else if (strcmp(a->kind, "unauthorised_sender") == 0) {
		member(d, "messages", x, sizeof(x));
		member(d, "window_days", w, sizeof(w));
		member(d, "platform", y, sizeof(y));
		snprintf(z, sizeof(z), " (%s)", y);
		snprintf(out, size, "%s: an unauthorised sender, %s%s, sent %s "
		    "messages as the domain in the last %s days, failing "
		    "DMARC.", a->domain, a->key, y[0] != '\0' &&
		    strcmp(y, "?") != 0 ? z : "", x, w);
	} else if (strcmp(a->kind, "aligned_share_drop") == 0) {
		member(d, "recent_share", x, sizeof(x));
		member(d, "previous_share", y, sizeof(y));
		member(d, "drop_points", z, sizeof(z));
		snprintf(out, size, "%s: the aligned share of legitimate mail "
		    "fell to %s%% over the last 7 days, from %s%% over the 30 "
		    "days before (%s points down).", a->domain, x, y, z);
	} else
		snprintf(out, size, "%s: %s %s.", a->domain, a->kind, a->key);
	json_decref(d);
}

char *
alerts_body(const struct store_alert *a, int format, struct dm_error *err)
{
	char sentence[1024], text[2048];
	json_t *doc = NULL, *detail = NULL, *alert;
	char *body = NULL;

	if (format == DM_ALERTS_SLACK) {
		alerts_sentence(a, sentence, sizeof(sentence));
		snprintf(text, sizeof(text), "dmarcd: ");
		slack_escape(text + 8, sizeof(text) - 8, sentence);
		doc = json_pack("{s:s}", "text", text);
	} else {
		detail = json_loads(a->detail, JSON_REJECT_DUPLICATES, NULL);
		if (!json_is_object(detail)) {
			json_decref(detail);
			dm_error_set(err, DM_E_INTERNAL, "alert %" PRId64 ": "
			    "its detail is not a JSON object", a->id);
			return NULL;
		}
		alert = json_pack("{s:s, s:s, s:s, s:o, s:s}", "domain",
		    a->domain, "kind", a->kind, "key", a->key, "detail",
		    detail, "raised_at", a->raised_at);
		if (alert != NULL)
			doc = json_pack("{s:[o], s:s}", "alerts", alert,
			    "source", "dmarcd");
	}
	if (doc != NULL)
		body = json_dumps(doc, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(doc);
	if (body == NULL)
		dm_error_set(err, DM_E_NOMEM, "alert %" PRId64 ": out of "
		    "memory, or text that is not UTF-8", a->id);
	return body;
}

/* Replace each occurrence of the webhook's path in msg with "/...". */
static void
blot_path(const struct exchange *x, char *msg)
{
	size_t msg_len;
	char *at;

	if (x->path == NULL || x->path_len < BLOT_MIN_LEN)
		return;
	while ((at = strstr(msg, x->path)) != NULL) {
		msg_len = strlen(msg);
		memcpy(at, "/...", 4);
		memmove(at + 4, at + x->path_len, msg_len - (size_t)(at -
		    msg) - x->path_len + 1);
	}
}

/* The answer, fit for a one-line message. */
static void
answer_text(const struct exchange *x, char *out, size_t size)
{
	size_t i, n = 0;

	for (i = 0; i < x->answer_len && i < 200 && n + 4 < size; i++) {
		unsigned char c = (unsigned char)x->answer[i];

		if (c < 0x20) {
			if (n > 0 && out[n - 1] != ' ')
				out[n++] = ' ';
		} else
			out[n++] = c < 0x7f ? (char)c : '?';
	}
	while (n > 0 && out[n - 1] == ' ')
		n--;
	if (i < x->answer_len && n + 3 < size) {
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n] = '\0';
}

static size_t
on_answer(char *data, size_t size, size_t nmemb, void *arg)
{
	struct exchange *x = arg;
	size_t len = size * nmemb, room = ALERTS_MAX_ANSWER - x->answer_len;

	/* Kept up to the cap, the rest read and dropped. */
	if (len < room)
		room = len;
	memcpy(x->answer + x->answer_len, data, room);
	x->answer_len += room;
	x->answer[x->answer_len] = '\0';
	return len;
}

/* The request's headers, or NULL when out of memory. */
static struct curl_slist *
headers_for(const struct store_alert *a, const struct dm_config *cfg,
    const char *body, size_t len)
{
	char line[128], sig[ALERTS_SIGNATURE_SIZE];
	struct curl_slist *list = NULL, *more;
	const char *fixed[] = {
		"Content-Type: application/json",
		"Expect:",
	};
	size_t i;

	for (i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		if ((more = httpc_curl.curl_slist_append(list, fixed[i])) ==
		    NULL)
			goto nomem;
		list = more;
	}
	snprintf(line, sizeof(line), "X-Dmarcd-Alert-Id: %" PRId64, a->id);
	if ((more = httpc_curl.curl_slist_append(list, line)) == NULL)
		goto nomem;
	list = more;
	if (cfg->alerts_secret[0] != '\0') {
		alerts_signature(cfg->alerts_secret, body, len, sig);
		snprintf(line, sizeof(line), "X-Dmarcd-Signature: %s", sig);
		if ((more = httpc_curl.curl_slist_append(list, line)) == NULL)
			goto nomem;
		list = more;
	}
	return list;
nomem:
	if (list != NULL)
		httpc_curl.curl_slist_free_all(list);
	return NULL;
}

/* post - one request; the outcome, with x->why on a failure. err only
 * for what no retry mends (out of memory, an option refused). */
static int
post(struct exchange *x, CURLU *u, const struct store_alert *a,
    const char *body, enum outcome *outcome_r, struct dm_error *err)
{
	const struct dm_config *cfg = x->cfg;
	struct curl_slist *headers;
	CURL *h;
	CURLcode rc;
	long status = 0;
	size_t len = strlen(body);
	char said[256];
	int result = 0;

	x->answer_len = 0;
	x->answer[0] = '\0';
	x->curl_error[0] = '\0';
	x->retry_after_s = 0;
	x->why[0] = '\0';
	if ((h = httpc_curl.curl_easy_init()) == NULL)
		return dm_error_set(err, DM_E_NOMEM, "webhook %s: out of "
		    "memory", x->target.url);
	if ((headers = headers_for(a, cfg, body, len)) == NULL) {
		httpc_curl.curl_easy_cleanup(h);
		return dm_error_set(err, DM_E_NOMEM, "webhook %s: out of "
		    "memory", x->target.url);
	}
	rc = httpc_safe_options(h, &x->target, u, cfg->alerts_ca_file,
	    (long)cfg->alerts_timeout_s, x->curl_error);
#define SET(option, value)						\
	do {								\
		if (rc == CURLE_OK)					\
			rc = httpc_curl.curl_easy_setopt(h, option, value); \
	} while (0)
	SET(CURLOPT_HTTPHEADER, headers);
	SET(CURLOPT_POST, 1L);
	SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	SET(CURLOPT_POSTFIELDS, body);
	SET(CURLOPT_WRITEFUNCTION, on_answer);
	SET(CURLOPT_WRITEDATA, x);
#undef SET
	if (rc != CURLE_OK) {
		result = dm_error_set(err, rc == CURLE_OUT_OF_MEMORY ?
		    DM_E_NOMEM : DM_E_UNAVAILABLE, "webhook %s: libcurl "
		    "refused an option: %s", x->target.url,
		    httpc_curl.curl_easy_strerror(rc));
		goto out;
	}
	rc = httpc_curl.curl_easy_perform(h);
	if (rc != CURLE_OK) {
		snprintf(x->why, sizeof(x->why), "%s", x->curl_error[0] !=
		    '\0' ? x->curl_error : httpc_curl.curl_easy_strerror(rc));
		*outcome_r = UNREACHABLE;
		goto out;
	}
	httpc_curl.curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
#if LIBCURL_VERSION_NUM >= 0x074200
	{
		curl_off_t after = 0;

		if (httpc_curl.curl_easy_getinfo(h, CURLINFO_RETRY_AFTER,
		    &after) == CURLE_OK && after > 0)
			x->retry_after_s = after > ALERTS_RETRY_MAX_S ?
			    ALERTS_RETRY_MAX_S : (long)after;
	}
#endif
	if (status >= 200 && status < 300) {
		*outcome_r = SENT;
		goto out;
	}
	answer_text(x, said, sizeof(said));
	snprintf(x->why, sizeof(x->why), "HTTP %ld%s%s%s", status,
	    said[0] != '\0' ? ": " : "", said,
	    status >= 300 && status < 400 ? " (redirects are not followed: "
	    "check the URL)" : "");
	*outcome_r = status == 408 || status == 429 || status >= 500 ||
	    status < 200 ? RETRY : REFUSED;
out:
	blot_path(x, x->why);
	httpc_curl.curl_slist_free_all(headers);
	httpc_curl.curl_easy_cleanup(h);
	return result;
}

/* A signal (dmarcd run's SIGTERM) cuts the wait short. */
static void
pause_s(long seconds)
{
	struct timespec ts = { seconds, 0 };

	(void)nanosleep(&ts, NULL);
}

/* How long an alert is held back after its attempts-th failed request. */
static unsigned
retry_after(unsigned attempts, long server_s)
{
	unsigned s = ALERTS_RETRY_MIN_S, i;

	for (i = 1; i < attempts && s < ALERTS_RETRY_MAX_S; i++)
		s *= 2;
	if (server_s > (long)s)
		s = (unsigned)server_s;
	return s < ALERTS_RETRY_MAX_S ? s : ALERTS_RETRY_MAX_S;
}

/*
 * deliver - one alert: up to ALERTS_TRIES requests. 0 sent, 1 failed
 * (recorded; err says why), -1 with err on what stops the run anyway.
 */
static int
deliver(struct store *s, struct exchange *x, CURLU *u,
    const struct store_alert *a, struct alerts_result *r,
    struct dm_error *err)
{
	enum outcome outcome = UNREACHABLE;
	unsigned tries = 0, total;
	long wait_s = 1;
	char *body;
	int give_up;

	if ((body = alerts_body(a, x->cfg->alerts_format, err)) == NULL)
		return -1;
	for (;;) {
		tries++;
		if (post(x, u, a, body, &outcome, err) != 0) {
			free(body);
			return -1;
		}
		if (outcome == SENT || outcome == UNREACHABLE ||
		    tries >= ALERTS_TRIES)
			break;
		if (x->retry_after_s > ALERTS_MAX_WAIT_S)
			break;	/* asked to wait longer: a later run */
		pause_s(x->retry_after_s > wait_s ? x->retry_after_s : wait_s);
		wait_s *= 2;
	}
	free(body);
	if (outcome == SENT) {
		if (store_alert_sent(s, a->id, tries, err) != 0)
			return -1;
		r->sent++;
		return 0;
	}
	total = a->attempts + tries;
	give_up = (outcome == REFUSED && total >= ALERTS_GIVE_UP_REFUSED) ||
	    total >= ALERTS_GIVE_UP_ANY;
	if (store_alert_failed(s, a->id, tries, x->why, retry_after(total,
	    x->retry_after_s), give_up, err) != 0)
		return -1;
	r->failed++;
	if (give_up)
		r->given_up++;
	dm_error_set(err, DM_E_TEMP, "webhook %s: alert %" PRId64 " (%s %s "
	    "%s): %s; %s after %u request%s", x->target.url, a->id, a->domain,
	    a->kind, a->key, x->why, give_up ? "given up" : "to be tried "
	    "again later", total, total == 1 ? "" : "s");
	return 1;
}

/* The queue, holding the lock. */
static int
deliver_due(struct store *s, struct exchange *x, CURLU *u,
    struct alerts_result *r, struct dm_error *err)
{
	struct store_alert *list = NULL;
	unsigned sent_last_hour, waiting, due, budget;
	size_t count = 0, i;
	int rc = 0;

	if (store_alerts_counts(s, &sent_last_hour, &waiting, &due, err) != 0)
		return -1;
	budget = x->cfg->alerts_max_per_hour > sent_last_hour ?
	    x->cfg->alerts_max_per_hour - sent_last_hour : 0;
	if (budget > 0 && due > 0 &&
	    store_alerts_due(s, budget, &list, &count, err) != 0)
		return -1;
	for (i = 0; i < count && rc == 0; i++)
		rc = deliver(s, x, u, &list[i], r, err);
	store_alerts_free(list, count);
	if (rc == 0 && due > budget)
		r->held = due - budget;
	return rc != 0 ? -1 : 0;
}

int
alerts_run(struct store *s, const struct dm_config *cfg,
    struct alerts_result *result, struct dm_error *err)
{
	struct alerts_result mine;
	struct store_alert_scan scan;
	struct exchange *x = NULL;
	struct dm_error unlock_err;
	unsigned sent_last_hour, due;
	CURLU *u = NULL;
	int got = 0, rc = -1;

	if (result == NULL)
		result = &mine;
	memset(result, 0, sizeof(*result));
	if (!alerts_enabled(cfg))
		return dm_error_set(err, DM_E_USAGE, "no webhook: set [alerts] "
		    "webhook or webhook_file (docs/alerts.md)");
	if (httpc_load(err) != 0)
		return -1;
	if ((x = calloc(1, sizeof(*x))) == NULL)
		return dm_error_set(err, DM_E_NOMEM, "out of memory");
	x->cfg = cfg;
	if (httpc_check_url("webhook", cfg->alerts_webhook, 0, &x->target, &u,
	    err) != 0)
		goto out;
	/* httpc_check_url() took it: it has a scheme. */
	if ((x->path = strstr(cfg->alerts_webhook, "://")) != NULL)
		x->path = strchr(x->path + 3, '/');
	x->path_len = x->path != NULL ? strlen(x->path) : 0;
	alerts_scan_params(cfg, &scan);
	if (store_alerts_raise(s, &scan, &result->raised, err) != 0 ||
	    store_alerts_lock(s, &got, err) != 0)
		goto out;
	if (!got) {
		result->other_process = 1;
		rc = 0;
	} else {
		rc = deliver_due(s, x, u, result, err);
		dm_error_clear(&unlock_err);
		if (store_alerts_unlock(s, &unlock_err) != 0 && rc == 0) {
			*err = unlock_err;
			rc = -1;
		}
	}
	dm_error_clear(&unlock_err);
	if (store_alerts_counts(s, &sent_last_hour, &result->waiting, &due,
	    rc == 0 ? err : &unlock_err) != 0)
		rc = -1;
out:
	if (u != NULL)
		httpc_curl.curl_url_cleanup(u);
	if (x != NULL)
		explicit_bzero(x, sizeof(*x));
	free(x);
	return rc;
}
