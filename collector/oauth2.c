/*
 * oauth2.c - XOAUTH2 access tokens from an OAuth2 token endpoint (see
 * oauth2.h), through libcurl loaded on first use.
 *
 * The refresh token and the client secret travel only in the POST body,
 * which is built here, handed to curl without a copy
 * (CURLOPT_POSTFIELDS) and wiped afterwards, as is the answer that holds
 * the access token. Error sentences are built from the URL, curl's
 * message and the endpoint's "error" and "error_description", then
 * scrubbed of the secrets in case the endpoint or curl echoed one.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "collector/httpc.h"
#include "collector/oauth2.h"

/* "Expect:": no 100-continue wait for a long (Microsoft) refresh token. */
static const char *const header_lines[] = {
	"Accept: application/json",
	"Content-Type: application/x-www-form-urlencoded",
	"Expect:",
};

/* Shorter secrets are not blotted: they would blot ordinary words. */
#define SECRET_MIN_LEN	4

/* One exchange with the endpoint. */
struct exchange {
	const struct oauth2_client *client;
	struct httpc_target target;	/* target.url: for messages */
	char *answer;		/* OAUTH2_MAX_RESPONSE bytes + NUL */
	size_t answer_len;
	int too_big;
	char curl_error[CURL_ERROR_SIZE];
};

/* Replace each occurrence of secret in msg with "***". */
static void
blot(char *msg, const char *secret)
{
	size_t len, msg_len;
	char *at;

	if (secret == NULL || (len = strlen(secret)) < SECRET_MIN_LEN)
		return;
	while ((at = strstr(msg, secret)) != NULL) {
		msg_len = strlen(msg);
		memcpy(at, "***", 3);
		memmove(at + 3, at + len, msg_len - (size_t)(at - msg) - len +
		    1);
	}
}

/* fail - set err and blot the client's secrets from it; returns -1. */
static int DM_PRINTF(4, 5)
fail(struct dm_error *err, const struct oauth2_client *c,
    enum dm_error_code code, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return -1;
	va_start(ap, fmt);
	dm_error_vset(err, code, fmt, ap);
	va_end(ap);
	if (c != NULL) {
		blot(err->msg, c->refresh_token);
		blot(err->msg, c->client_secret);
	}
	return -1;
}

/* Text from the endpoint, fit for a one-line message: printable ASCII
 * (a run of control characters, such as Microsoft's CR LF, is one space;
 * other bytes are '?'), at most OAUTH2_MAX_ERROR_TEXT characters. */
static void
printable(char *out, size_t n, const char *text)
{
	const unsigned char *in = (const unsigned char *)text;
	size_t o = 0;

	for (; *in != '\0' && o < OAUTH2_MAX_ERROR_TEXT && o + 4 < n; in++)
		if (*in < 0x20) {
			if (o > 0 && out[o - 1] != ' ')
				out[o++] = ' ';
		} else
			out[o++] = *in < 0x7f ? (char)*in : '?';
	if (*in != '\0' && o + 3 < n) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
}

static void
wipe_free(char *p, size_t len)
{
	if (p == NULL)
		return;
	explicit_bzero(p, len);
	free(p);
}

/*
 * check_url - the token URL as curl will parse it (httpc_check_url), with
 * the secrets blotted from a message.
 */
static int
check_url(struct exchange *x, CURLU **u_r, struct dm_error *err)
{
	const struct oauth2_client *c = x->client;

	if (httpc_check_url("OAuth2 token URL", c->token_url, 1, &x->target,
	    u_r, err) == 0)
		return 0;
	if (err != NULL) {
		blot(err->msg, c->refresh_token);
		blot(err->msg, c->client_secret);
	}
	return -1;
}

/* escape - curl_easy_escape(), NULL when out of memory. */
static char *
escape(CURL *h, const char *s)
{
	return httpc_curl.curl_easy_escape(h, s, (int)strlen(s));
}

static void
free_escaped(char *s)
{
	if (s == NULL)
		return;
	explicit_bzero(s, strlen(s));
	httpc_curl.curl_free(s);
}

/* The form body; wiped and freed by the caller (wipe_free, *len_r). */
static char *
form_body(CURL *h, const struct oauth2_client *c, size_t *len_r)
{
	char *refresh = escape(h, c->refresh_token);
	char *id = escape(h, c->client_id);
	char *secret = NULL;
	char *body = NULL;
	size_t size;
	int with_secret = c->client_secret != NULL &&
	    c->client_secret[0] != '\0';

	if (with_secret)
		secret = escape(h, c->client_secret);
	if (refresh == NULL || id == NULL || (with_secret && secret == NULL))
		goto out;
	size = sizeof("grant_type=refresh_token&refresh_token=") +
	    strlen(refresh) + sizeof("&client_id=") + strlen(id) +
	    (with_secret ? sizeof("&client_secret=") + strlen(secret) : 0);
	if ((body = malloc(size)) == NULL)
		goto out;
	snprintf(body, size, "grant_type=refresh_token&refresh_token=%s"
	    "&client_id=%s%s%s", refresh, id,
	    with_secret ? "&client_secret=" : "", with_secret ? secret : "");
	*len_r = size;
out:
	free_escaped(refresh);
	free_escaped(id);
	free_escaped(secret);
	return body;
}

static size_t
on_answer(char *data, size_t size, size_t nmemb, void *arg)
{
	struct exchange *x = arg;
	size_t len = size * nmemb;

	if (len > OAUTH2_MAX_RESPONSE - x->answer_len) {
		x->too_big = 1;
		return 0;	/* curl stops with CURLE_WRITE_ERROR */
	}
	memcpy(x->answer + x->answer_len, data, len);
	x->answer_len += len;
	x->answer[x->answer_len] = '\0';
	return len;
}

/* A failed curl_easy_perform(). */
static int
perform_failed(struct exchange *x, CURLcode rc, struct dm_error *err)
{
	const struct oauth2_client *c = x->client;
	const char *why = x->curl_error[0] != '\0' ? x->curl_error :
	    httpc_curl.curl_easy_strerror(rc);
	enum dm_error_code code = DM_E_TEMP;

	if (x->too_big || rc == CURLE_FILESIZE_EXCEEDED)
		return fail(err, c, DM_E_TEMP, "OAuth2 token endpoint %s: "
		    "the answer is larger than %d bytes", x->target.url,
		    OAUTH2_MAX_RESPONSE);
	switch (rc) {
	case CURLE_OUT_OF_MEMORY:
		code = DM_E_NOMEM;
		break;
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
	case CURLE_NOT_BUILT_IN:
		code = DM_E_USAGE;
		break;
	default:
		/* Network, timeout, TLS handshake and certificate. */
		break;
	}
	return fail(err, c, code, "OAuth2 token endpoint %s: %s", x->target.url,
	    why);
}

/* The endpoint's "error" and "error_description", if the answer is a
 * JSON object that has them: ": invalid_grant: Token has been ...";
 * *temporary_r is the error if it says to try again later, else "". */
static void
endpoint_error(const struct exchange *x, char *out, size_t n,
    const char **temporary_r)
{
	char error[OAUTH2_MAX_ERROR_TEXT + 4];
	char description[OAUTH2_MAX_ERROR_TEXT + 4];
	json_t *doc, *e, *d;

	out[0] = '\0';
	*temporary_r = "";
	doc = json_loadb(x->answer, x->answer_len, 0, NULL);
	if (!json_is_object(doc)) {
		json_decref(doc);
		return;
	}
	e = json_object_get(doc, "error");
	d = json_object_get(doc, "error_description");
	if (json_is_string(e)) {
		printable(error, sizeof(error), json_string_value(e));
		if (strcmp(error, "temporarily_unavailable") == 0)
			*temporary_r = "temporarily_unavailable";
		else if (strcmp(error, "server_error") == 0)
			*temporary_r = "server_error";
		if (json_is_string(d)) {
			printable(description, sizeof(description),
			    json_string_value(d));
			snprintf(out, n, ": %s: %s", error, description);
		} else
			snprintf(out, n, ": %s", error);
	}
	json_decref(doc);
}

/* What jansson says is wrong, without the "near '...'" part, which
 * quotes the answer (and could quote a token). */
static void
json_problem(const json_error_t *jerr, char *out, size_t n)
{
	const char *near = strstr(jerr->text, " near ");
	int len = near != NULL ? (int)(near - jerr->text) :
	    (int)strlen(jerr->text);

	snprintf(out, n, "line %d column %d: %.*s", jerr->line, jerr->column,
	    len, jerr->text);
}

/* expires_in: a number, or a string of digits; absent: the default. */
static int
expires_in(const struct exchange *x, json_t *doc, long long *seconds_r,
    struct dm_error *err)
{
	const struct oauth2_client *c = x->client;
	json_t *v = json_object_get(doc, "expires_in");
	long long seconds = 0;

	if (v == NULL) {
		*seconds_r = OAUTH2_DEFAULT_EXPIRES;
		return 0;
	}
	if (json_is_integer(v))
		seconds = json_integer_value(v);
	else if (json_is_real(v)) {
		double d = json_real_value(v);

		if (!isfinite(d))
			seconds = -1;
		else if (d > (double)OAUTH2_MAX_EXPIRES)
			seconds = OAUTH2_MAX_EXPIRES;
		else
			seconds = (long long)d;
	} else if (json_is_string(v)) {
		const char *s = json_string_value(v);
		size_t digits = strspn(s, "0123456789");

		if (digits == 0 || digits > 12 || s[digits] != '\0')
			return fail(err, c, DM_E_TEMP, "OAuth2 token endpoint "
			    "%s: expires_in is a string but not a number",
			    x->target.url);
		seconds = strtoll(s, NULL, 10);
	} else
		return fail(err, c, DM_E_TEMP, "OAuth2 token endpoint %s: "
		    "expires_in is not a number", x->target.url);
	if (seconds <= 0)
		return fail(err, c, DM_E_TEMP, "OAuth2 token endpoint %s: "
		    "expires_in is not a positive number", x->target.url);
	*seconds_r = seconds < OAUTH2_MAX_EXPIRES ? seconds :
	    OAUTH2_MAX_EXPIRES;
	return 0;
}

/* Check a 200 answer and put its token in t. */
static int
take_token(struct exchange *x, time_t asked_at, struct oauth2_token *t,
    struct dm_error *err)
{
	const struct oauth2_client *c = x->client;
	json_error_t jerr;
	json_t *doc, *v;
	const char *token;
	size_t len, i;
	long long seconds = 0;
	char problem[300];
	int rc = -1;

	doc = json_loadb(x->answer, x->answer_len, JSON_REJECT_DUPLICATES,
	    &jerr);
	if (doc == NULL) {
		json_problem(&jerr, problem, sizeof(problem));
		return fail(err, c, DM_E_TEMP, "OAuth2 token endpoint %s: the "
		    "answer (%zu bytes) is not JSON: %s", x->target.url,
		    x->answer_len, problem);
	}
	if (!json_is_object(doc)) {
		fail(err, c, DM_E_TEMP, "OAuth2 token endpoint %s: the answer "
		    "is not a JSON object", x->target.url);
		goto out;
	}
	v = json_object_get(doc, "token_type");
	if (v != NULL && !json_is_string(v)) {
		fail(err, c, DM_E_TEMP, "OAuth2 token endpoint %s: token_type "
		    "is not a string", x->target.url);
		goto out;
	}
	if (v != NULL && strcasecmp(json_string_value(v), "Bearer") != 0) {
		printable(problem, sizeof(problem), json_string_value(v));
		fail(err, c, DM_E_TEMP, "OAuth2 token endpoint %s: token_type "
		    "is \"%s\", not Bearer", x->target.url, problem);
		goto out;
	}
	v = json_object_get(doc, "access_token");
	if (!json_is_string(v)) {
		fail(err, c, DM_E_TEMP, "OAuth2 token endpoint %s: no "
		    "access_token string in the answer", x->target.url);
		goto out;
	}
	token = json_string_value(v);
	len = json_string_length(v);
	if (len == 0 || len >= sizeof(t->access_token)) {
		fail(err, c, DM_E_TEMP, "OAuth2 token endpoint %s: the "
		    "access_token is %zu bytes long (1 to %zu expected)",
		    x->target.url, len, sizeof(t->access_token) - 1);
		goto out;
	}
	/* It goes into "auth=Bearer TOKEN\1\1": no \1, no space. */
	for (i = 0; i < len; i++)
		if (token[i] <= 0x20 || token[i] >= 0x7f)
			break;
	if (i < len) {
		fail(err, c, DM_E_TEMP, "OAuth2 token endpoint %s: the "
		    "access_token holds a byte that is not visible ASCII",
		    x->target.url);
		goto out;
	}
	if (expires_in(x, doc, &seconds, err) != 0)
		goto out;
	/*
	 * A "refresh_token" in the answer is not kept: we go on sending the
	 * configured one. Google does not rotate refresh tokens. Microsoft's
	 * identity platform sends a new one with every refresh but does not
	 * revoke the old one, which stays valid for its own lifetime (90
	 * days by default, less under some tenant policies); so with
	 * Microsoft the configured refresh token must be renewed before
	 * then. Writing the new one back to oauth2_refresh_token_file would
	 * lift that, and is the caller's business, not this module's.
	 */
	explicit_bzero(t->access_token, sizeof(t->access_token));
	memcpy(t->access_token, token, len);
	t->access_token[len] = '\0';
	/* The lifetime counts from before the question was sent. */
	t->expires_at = asked_at + (time_t)seconds;
	rc = 0;
out:
	if (json_is_object(doc) &&
	    json_is_string(v = json_object_get(doc, "access_token")))
		/* jansson frees without wiping: wipe the copy it holds. */
		explicit_bzero((char *)json_string_value(v),
		    json_string_length(v));
	json_decref(doc);
	return rc;
}

/* Act on the HTTP status and the answer. */
static int
answered(struct exchange *x, CURL *h, time_t asked_at,
    struct oauth2_token *t, struct dm_error *err)
{
	const struct oauth2_client *c = x->client;
	long status = 0;
	char said[2 * OAUTH2_MAX_ERROR_TEXT + 16];
	const char *temporary;

	httpc_curl.curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	if (status == 200)
		return take_token(x, asked_at, t, err);
	endpoint_error(x, said, sizeof(said), &temporary);
	if (status >= 300 && status < 400)
		return fail(err, c, DM_E_USAGE, "OAuth2 token endpoint %s: "
		    "HTTP %ld (redirects are not followed: check the URL)",
		    x->target.url, status);
	if (status >= 400 && status < 500 && status != 408 &&
	    status != 429 && temporary[0] == '\0')
		return fail(err, c, DM_E_USAGE, "OAuth2 token endpoint %s "
		    "refused the refresh token: HTTP %ld%s", x->target.url,
		    status, said[0] != '\0' ? said :
		    " (no OAuth2 error given)");
	return fail(err, c, DM_E_TEMP, "OAuth2 token endpoint %s: HTTP %ld%s",
	    x->target.url, status, said);
}

/* Set the options that make the exchange safe; CURLE_OK or the first
 * option curl refused. */
static CURLcode
set_options(CURL *h, struct exchange *x, CURLU *u, struct curl_slist *headers,
    const char *body, size_t body_len)
{
	const struct oauth2_client *c = x->client;
	long timeout = c->timeout_s != 0 ? (long)c->timeout_s :
	    OAUTH2_DEFAULT_TIMEOUT;
	CURLcode rc = CURLE_OK;

#define SET(option, value)						\
	do {								\
		if (rc == CURLE_OK)					\
			rc = httpc_curl.curl_easy_setopt(h, option, value); \
	} while (0)
	/* The refresh token is not for a proxy to see in clear: none to
	 * a loopback host. */
	rc = httpc_safe_options(h, &x->target, u, c->ca_file, timeout,
	    x->curl_error);
	SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)OAUTH2_MAX_RESPONSE);
	SET(CURLOPT_HTTPHEADER, headers);
	SET(CURLOPT_POST, 1L);
	SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
	SET(CURLOPT_POSTFIELDS, body);
	SET(CURLOPT_WRITEFUNCTION, on_answer);
	SET(CURLOPT_WRITEDATA, x);
#undef SET
	return rc;
}

static int
request(const struct oauth2_client *c, struct oauth2_token *t,
    struct dm_error *err)
{
	struct exchange x;
	struct curl_slist *headers = NULL, *more;
	CURLU *u = NULL;
	CURL *h = NULL;
	char *body = NULL;
	size_t body_size = 0;
	time_t asked_at;
	CURLcode rc;
	int result = -1;

	memset(&x, 0, sizeof(x));
	x.client = c;
	if (check_url(&x, &u, err) != 0)
		return -1;
	if ((h = httpc_curl.curl_easy_init()) == NULL ||
	    (x.answer = malloc(OAUTH2_MAX_RESPONSE + 1)) == NULL ||
	    (body = form_body(h, c, &body_size)) == NULL) {
		fail(err, c, DM_E_NOMEM, "OAuth2 token endpoint %s: out of "
		    "memory", x.target.url);
		goto out;
	}
	x.answer[0] = '\0';
	for (size_t i = 0; i < sizeof(header_lines) / sizeof(header_lines[0]);
	    i++) {
		if ((more = httpc_curl.curl_slist_append(headers,
		    header_lines[i])) == NULL) {
			fail(err, c, DM_E_NOMEM, "OAuth2 token endpoint %s: "
			    "out of memory", x.target.url);
			goto out;
		}
		headers = more;
	}
	/* strlen: the body's size counted its NUL. */
	rc = set_options(h, &x, u, headers, body, strlen(body));
	if (rc != CURLE_OK) {
		fail(err, c, rc == CURLE_OUT_OF_MEMORY ? DM_E_NOMEM :
		    DM_E_UNAVAILABLE, "OAuth2 token endpoint %s: libcurl "
		    "refused an option: %s", x.target.url,
		    httpc_curl.curl_easy_strerror(rc));
		goto out;
	}
	asked_at = time(NULL);
	t->requests++;
	rc = httpc_curl.curl_easy_perform(h);
	if (rc != CURLE_OK)
		perform_failed(&x, rc, err);
	else
		result = answered(&x, h, asked_at, t, err);
out:
	if (h != NULL)
		httpc_curl.curl_easy_cleanup(h);
	if (u != NULL)
		httpc_curl.curl_url_cleanup(u);
	if (headers != NULL)
		httpc_curl.curl_slist_free_all(headers);
	wipe_free(body, body_size);
	wipe_free(x.answer, OAUTH2_MAX_RESPONSE + 1);
	return result;
}

int
oauth2_access_token(const struct oauth2_client *c, struct oauth2_token *t,
    struct dm_error *err)
{
	time_t now = time(NULL);
	char url[160];

	if (t->expires_at != 0 && t->access_token[0] != '\0' &&
	    t->expires_at - now > OAUTH2_MIN_LIFETIME)
		return 0;
	if (c->token_url == NULL || c->token_url[0] == '\0')
		return fail(err, c, DM_E_USAGE, "OAuth2: no token URL");
	if (c->client_id == NULL || c->client_id[0] == '\0' ||
	    c->refresh_token == NULL || c->refresh_token[0] == '\0') {
		httpc_url_for_message(url, sizeof(url), c->token_url, 1);
		return fail(err, c, DM_E_USAGE, "OAuth2 token URL %s: a "
		    "client_id and a refresh_token are needed", url);
	}
	if (httpc_load(err) != 0)
		return -1;
	return request(c, t, err);
}

void
oauth2_forget(struct oauth2_token *t)
{
	explicit_bzero(t->access_token, sizeof(t->access_token));
	t->expires_at = 0;
}
