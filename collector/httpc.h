/*
 * httpc.h - what dmarcd's HTTP clients share: libcurl loaded on first
 * use, the checks a URL must pass, and the options that make a request
 * safe. Used by oauth2.c (XOAUTH2 tokens) and alerts.c (webhooks).
 *
 *	if (httpc_load(err) != 0) return -1;
 *	if (httpc_check_url("webhook", url, 0, &target, &u, err) != 0) ...
 *	h = httpc_curl.curl_easy_init();
 *	rc = httpc_safe_options(h, &target, u, ca_file, timeout_s, errbuf);
 *	... the request's own options, curl_easy_perform ...
 *
 * httpc_curl is the table of libcurl functions (common/dl.h), filled by
 * httpc_load(), which also runs curl_global_init() once.
 *
 * A URL is allowed when it is https://, or http:// to a loopback host
 * (localhost, 127.0.0.0/8, [::1]): a test, a local relay. The safe
 * options: that one protocol only, no redirects, TLS verified (peer and
 * host name, TLS 1.2 at least; ca_file or the system store), no proxy
 * for a loopback host, no signals, the timeout on connecting and on the
 * whole exchange.
 *
 * A URL may hold a secret (a Slack webhook's path, a user and password,
 * a query): httpc_check_url() fills target->url, the form of the URL that
 * messages may show: scheme://host[:port] and the path if show_path, else
 * "/..." in its place; never the user info, query nor fragment.
 *
 * DIAGNOSTICS: -1 with err:
 *	DM_E_UNAVAILABLE libcurl cannot be loaded, or curl_global_init()
 *			failed (httpc_load)
 *	DM_E_USAGE	a URL curl cannot parse, without a host, not
 *			http(s), or http to a host that is not loopback;
 *			messages name "WHAT URL" with target->url's form
 *	DM_E_NOMEM	out of memory
 */
#ifndef COLLECTOR_HTTPC_H
#define COLLECTOR_HTTPC_H

#include <stddef.h>

/* The type-checking macros would stand in the way of calls through the
 * table (httpc_curl.curl_easy_setopt(...)). */
#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>

#include "common/dl.h"
#include "common/error.h"

#define HTTPC_CURL_SYMS(X, a)						\
	X(a, curl_global_init) X(a, curl_easy_init)			\
	X(a, curl_easy_setopt) X(a, curl_easy_perform)			\
	X(a, curl_easy_getinfo) X(a, curl_easy_cleanup)			\
	X(a, curl_easy_escape) X(a, curl_free) X(a, curl_easy_strerror)	\
	X(a, curl_slist_append) X(a, curl_slist_free_all)		\
	X(a, curl_url) X(a, curl_url_set) X(a, curl_url_get)		\
	X(a, curl_url_cleanup) X(a, curl_url_strerror)

struct httpc_curl_api {
	DM_DL_FIELDS(HTTPC_CURL_SYMS)
};
extern struct httpc_curl_api httpc_curl;

/* A URL as checked. */
struct httpc_target {
	char url[256];		/* for messages only (see above) */
	int https;		/* else http, to a loopback host */
	int loopback;
};

/* httpc_load - load libcurl and initialise it, once; 0 or -1 with err. */
int httpc_load(struct dm_error *err);

/* httpc_loaded - whether libcurl is loaded (without loading it). */
int httpc_loaded(void);

/* httpc_is_loopback - localhost, 127.0.0.0/8, ::1 or [::1]. */
int httpc_is_loopback(const char *host);

/*
 * httpc_url_for_message - the configured URL before curl parsed it, for a
 * message: no user info, query or fragment; the path only if show_path;
 * cut short; unprintable bytes as '?'.
 */
void httpc_url_for_message(char *out, size_t size, const char *url,
    int show_path);

/*
 * httpc_check_url - parse url as curl will and decide whether it may be
 * used (see above); what names it in messages ("OAuth2 token URL"). On
 * success *u_r is the parsed URL for CURLOPT_CURLU (the caller frees it
 * with curl_url_cleanup). Needs httpc_load() first.
 */
int httpc_check_url(const char *what, const char *url, int show_path,
    struct httpc_target *target, CURLU **u_r, struct dm_error *err);

/*
 * httpc_safe_options - set the options above on h for u; errbuf is
 * CURL_ERROR_SIZE bytes. CURLE_OK or the first option curl refused.
 */
CURLcode httpc_safe_options(CURL *h, const struct httpc_target *target,
    CURLU *u, const char *ca_file, long timeout_s, char *errbuf);

#endif
