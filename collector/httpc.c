/*
 * httpc.c - libcurl loaded on first use, URL checks and safe options for
 * dmarcd's HTTP clients (see httpc.h).
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "collector/httpc.h"

#ifndef LIBCURL_SONAME
#define LIBCURL_SONAME "libcurl.so.4"
#endif

struct httpc_curl_api httpc_curl;

static const struct dm_dl_sym curl_syms[] = {
	DM_DL_SYMS(struct httpc_curl_api, HTTPC_CURL_SYMS)
};

static struct dm_dl_lib curl_lib = DM_DL_LIB(LIBCURL_SONAME,
    "for HTTP requests (OAuth2 access tokens, alert webhooks)", curl_syms,
    &httpc_curl);

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void
curl_init(void)
{
	curl_init_rc = httpc_curl.curl_global_init(CURL_GLOBAL_DEFAULT);
}

int
httpc_load(struct dm_error *err)
{
	if (dm_dl_need(&curl_lib, err) != 0)
		return -1;
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK)
		return dm_error_set(err, DM_E_UNAVAILABLE, "curl_global_init: "
		    "%s", httpc_curl.curl_easy_strerror(curl_init_rc));
	return 0;
}

int
httpc_loaded(void)
{
	return dm_dl_loaded(&curl_lib);
}

int
httpc_is_loopback(const char *host)
{
	struct in_addr v4;
	struct in6_addr v6;
	char inner[64];
	size_t len = strlen(host);

	if (strcasecmp(host, "localhost") == 0)
		return 1;
	if (inet_pton(AF_INET, host, &v4) == 1)
		return (ntohl(v4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &v6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&v6);
	/* curl gives an IPv6 address in brackets. */
	if (len > 2 && len < sizeof(inner) + 2 && host[0] == '[' &&
	    host[len - 1] == ']') {
		memcpy(inner, host + 1, len - 2);
		inner[len - 2] = '\0';
		if (inet_pton(AF_INET6, inner, &v6) == 1)
			return IN6_IS_ADDR_LOOPBACK(&v6);
	}
	return 0;
}

void
httpc_url_for_message(char *out, size_t size, const char *url,
    int show_path)
{
	const char *start = url, *scheme_end, *at, *slash;
	size_t len, host_len;

	if (size == 0)
		return;
	out[0] = '\0';
	if ((scheme_end = strstr(url, "://")) != NULL) {
		slash = scheme_end + 3 + strcspn(scheme_end + 3, "/?#");
		at = strchr(scheme_end + 3, '@');
		snprintf(out, size, "%.*s", (int)(scheme_end + 3 - url), url);
		start = at != NULL && at < slash ? at + 1 : scheme_end + 3;
		host_len = (size_t)(slash - start);
		if (!show_path) {
			if (host_len > 120)
				host_len = 120;
			snprintf(out + strlen(out), size - strlen(out),
			    "%.*s%s", (int)host_len, start,
			    *slash != '\0' ? "/..." : "");
			goto printable;
		}
	}
	len = strcspn(start, "?#");
	if (len > 120)
		len = 120;
	snprintf(out + strlen(out), size - strlen(out), "%.*s", (int)len,
	    start);
printable:
	for (char *p = out; *p != '\0'; p++)
		if (*p < 0x20 || *p >= 0x7f)
			*p = '?';
}

int
httpc_check_url(const char *what, const char *url, int show_path,
    struct httpc_target *t, CURLU **u_r, struct dm_error *err)
{
	char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL;
	CURLU *u;
	CURLUcode uc;
	int rc = -1;

	*u_r = NULL;
	memset(t, 0, sizeof(*t));
	httpc_url_for_message(t->url, sizeof(t->url), url, show_path);
	if ((u = httpc_curl.curl_url()) == NULL)
		return dm_error_set(err, DM_E_NOMEM, "%s %s: out of memory",
		    what, t->url);
	uc = httpc_curl.curl_url_set(u, CURLUPART_URL, url, 0);
	if (uc != CURLUE_OK) {
		dm_error_set(err, DM_E_USAGE, "%s %s: %s", what, t->url,
		    httpc_curl.curl_url_strerror(uc));
		goto out;
	}
	if (httpc_curl.curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) !=
	    CURLUE_OK) {
		dm_error_set(err, DM_E_USAGE, "%s %s: no scheme", what,
		    t->url);
		goto out;
	}
	t->https = strcmp(scheme, "https") == 0;
	if (!t->https && strcmp(scheme, "http") != 0) {
		dm_error_set(err, DM_E_USAGE, "%s %s: refused: not https://",
		    what, t->url);
		goto out;
	}
	if (httpc_curl.curl_url_get(u, CURLUPART_HOST, &host, 0) !=
	    CURLUE_OK || httpc_curl.curl_url_get(u, CURLUPART_PATH, &path,
	    0) != CURLUE_OK) {
		dm_error_set(err, DM_E_USAGE, "%s %s: no host", what, t->url);
		goto out;
	}
	if (httpc_curl.curl_url_get(u, CURLUPART_PORT, &port, 0) != CURLUE_OK)
		port = NULL;
	snprintf(t->url, sizeof(t->url), "%s://%.100s%s%s%.100s", scheme,
	    host, port != NULL ? ":" : "", port != NULL ? port : "",
	    show_path ? path : strcmp(path, "/") != 0 ? "/..." : "");
	for (char *p = t->url; *p != '\0'; p++)
		if (*p < 0x20 || *p >= 0x7f)
			*p = '?';
	t->loopback = httpc_is_loopback(host);
	if (t->https || t->loopback) {
		*u_r = u;
		u = NULL;
		rc = 0;
	} else
		dm_error_set(err, DM_E_USAGE, "%s %s: refused: http:// only "
		    "to localhost, 127.0.0.0/8 or [::1]; use https://", what,
		    t->url);
out:
	httpc_curl.curl_free(scheme);
	httpc_curl.curl_free(host);
	httpc_curl.curl_free(port);
	httpc_curl.curl_free(path);
	if (u != NULL)
		httpc_curl.curl_url_cleanup(u);
	return rc;
}

CURLcode
httpc_safe_options(CURL *h, const struct httpc_target *t, CURLU *u,
    const char *ca_file, long timeout_s, char *errbuf)
{
	CURLcode rc = CURLE_OK;

#define SET(option, value)						\
	do {								\
		if (rc == CURLE_OK)					\
			rc = httpc_curl.curl_easy_setopt(h, option, value); \
	} while (0)
	SET(CURLOPT_CURLU, u);
#if LIBCURL_VERSION_NUM >= 0x075500
	SET(CURLOPT_PROTOCOLS_STR, t->https ? "https" : "http");
	SET(CURLOPT_REDIR_PROTOCOLS_STR, t->https ? "https" : "http");
#else
	SET(CURLOPT_PROTOCOLS, t->https ? (long)CURLPROTO_HTTPS :
	    (long)CURLPROTO_HTTP);
	SET(CURLOPT_REDIR_PROTOCOLS, t->https ? (long)CURLPROTO_HTTPS :
	    (long)CURLPROTO_HTTP);
#endif
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_MAXREDIRS, 0L);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	if (ca_file != NULL && ca_file[0] != '\0')
		SET(CURLOPT_CAINFO, ca_file);
	/* What is sent is not for a proxy to see. */
	if (t->loopback)
		SET(CURLOPT_NOPROXY, "*");
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_TIMEOUT, timeout_s);
	SET(CURLOPT_CONNECTTIMEOUT, timeout_s);
	SET(CURLOPT_ERRORBUFFER, errbuf);
	SET(CURLOPT_USERAGENT, PACKAGE_NAME "/" PACKAGE_VERSION);
#undef SET
	return rc;
}
