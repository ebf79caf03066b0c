/*
 * oauth2.h - XOAUTH2 access tokens from an OAuth2 token endpoint.
 *
 * The IMAP collector logs in to Google and Microsoft 365 with an access
 * token that lives about an hour. It is obtained with the refresh_token
 * grant (RFC 6749 section 6):
 *
 *	POST token_url
 *	Content-Type: application/x-www-form-urlencoded
 *	Accept: application/json
 *
 *	grant_type=refresh_token&refresh_token=...&client_id=...
 *	    [&client_secret=...]
 *
 * and kept in a struct oauth2_token, one per account, until it has no
 * more than OAUTH2_MIN_LIFETIME seconds to live. The answer must be a
 * JSON object with "access_token" (a string of visible ASCII shorter than
 * the cache), "expires_in" (a positive number, or a string of digits as
 * Microsoft's v1 endpoint sends it; absent: 3600) and, if present,
 * "token_type" equal to "Bearer" in any case. A new "refresh_token" in the
 * answer is not kept (see oauth2.c).
 *
 * libcurl is loaded on first use (common/dl.h). TLS is always verified
 * (ca_file, else the system store); the only protocol allowed is https,
 * or http when the URL's host is localhost, 127.0.0.0/8 or [::1] (tests,
 * a local token broker), and then no proxy is used. Redirects are not
 * followed; the answer is read up to OAUTH2_MAX_RESPONSE bytes and never
 * decompressed; timeout_s (0: 60) bounds the whole exchange.
 *
 * The cache is not locked: one thread at a time per struct oauth2_token.
 * Different tokens may be used from different threads.
 *
 * DIAGNOSTICS: every error names the token URL (without user name,
 * password or query) and never contains the refresh token, the client
 * secret or an access token, nor a part of the answer that could hold
 * one; text the endpoint sends ("error", "error_description") is cut to
 * OAUTH2_MAX_ERROR_TEXT printable characters, with the secrets blotted.
 *	DM_E_USAGE	a bad client (no URL, client_id or refresh_token),
 *			a URL that is not https (or http to a loopback
 *			host) or that cannot be parsed, a ca_file curl
 *			cannot read; an HTTP 3xx (the URL is wrong), or a
 *			4xx other than 408 and 429: the endpoint refused
 *			the grant (invalid_grant: the refresh token was
 *			revoked or has expired; invalid_client: wrong
 *			client_id or secret). Retrying will not help.
 *	DM_E_TEMP	no connection, a timeout, a TLS handshake or
 *			certificate failure, HTTP 408, 429 or 5xx, an
 *			error "temporarily_unavailable" or "server_error",
 *			an answer over OAUTH2_MAX_RESPONSE bytes, an answer
 *			that is not JSON or lacks a valid access_token,
 *			expires_in or token_type.
 *	DM_E_NOMEM	out of memory.
 *	DM_E_UNAVAILABLE libcurl cannot be loaded, or curl_global_init()
 *			failed.
 * On failure the cache is left as it was (except requests).
 */
#ifndef DM_OAUTH2_H
#define DM_OAUTH2_H

#include <stddef.h>
#include <time.h>

#include "common/error.h"

#define OAUTH2_MAX_RESPONSE	(64 * 1024)	/* bytes of an answer */
#define OAUTH2_MIN_LIFETIME	60		/* seconds a cached token
						 * must still have */
#define OAUTH2_DEFAULT_EXPIRES	3600		/* no expires_in */
#define OAUTH2_MAX_EXPIRES	(366 * 86400)	/* a longer one is cut */
#define OAUTH2_DEFAULT_TIMEOUT	60		/* timeout_s 0 */
#define OAUTH2_MAX_ERROR_TEXT	200		/* of the endpoint's text */

struct oauth2_client {
	const char *token_url;	/* https://...; http:// only to a loopback
				 * address */
	const char *client_id;
	const char *client_secret; /* may be NULL or "" */
	const char *refresh_token;
	const char *ca_file;	/* NULL: system store */
	unsigned timeout_s;	/* 0: OAUTH2_DEFAULT_TIMEOUT */
};

struct oauth2_token {		/* the cache, one per account; zero it first */
	char access_token[8192];
	time_t expires_at;	/* time(NULL) clock; 0: none cached */
	unsigned requests;	/* how many times the endpoint was asked */
};

/*
 * oauth2_access_token - the cached token while it has more than
 * OAUTH2_MIN_LIFETIME seconds to live, else a new one from the endpoint,
 * which is then cached. On success t->access_token is the token.
 * 0 or -1 with err.
 */
int oauth2_access_token(const struct oauth2_client *c,
    struct oauth2_token *t, struct dm_error *err);

/* oauth2_forget - drop the cached token (the server refused it). */
void oauth2_forget(struct oauth2_token *t);

#endif
