/*
 * api.h - dmarcd's HTTP API: GET-only JSON over libmicrohttpd, read from
 * PostgreSQL as a role with dmarcd_reader.
 *
 *	api_start(&cfg, &api, &err);	[api] listen, database, threads...
 *	...				requests are served by MHD threads
 *	api_stop(&api);
 *
 * Every path, parameter and answer is in api/openapi.yaml and
 * docs/api.md. In short: /healthz, /readyz (no token), /metrics and /v1/...
 * (Authorization: Bearer TOKEN; the token's SHA-256 is looked up in
 * dmarcd.api_tokens and a valid one remembered for [api] token_cache
 * seconds). A successful JSON answer is {"data": ...} (lists add
 * "next_cursor"); an error is {"error": {"code": ..., "message": ...}}.
 *
 * Each MHD worker thread has its own PostgreSQL connection, opened on its
 * first request (kept, and opened again after a failure), with its
 * statements prepared once, statement_timeout set to [api]
 * request_timeout and the session read-only. libmicrohttpd (which links
 * GnuTLS) and libpq are loaded on first use (common/dl.h).
 *
 * DIAGNOSTICS
 *	api_start() returns -1 with err: DM_E_USAGE when [api] listen is
 *	empty, an address cannot be bound (in use, not local) or the TLS
 *	files cannot be read; DM_E_UNAVAILABLE when libmicrohttpd or libpq
 *	cannot be loaded (or the library has no TLS); DM_E_NOMEM. It does
 *	not connect to PostgreSQL: /readyz tells whether the database
 *	answers and its schema is current.
 */
#ifndef API_API_H
#define API_API_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

struct dm_config;
struct api;

/*
 * api_start - bind every [api] listen address and serve. Signals are
 * blocked in the server's threads: the caller's thread gets them all.
 */
int api_start(const struct dm_config *cfg, struct api **api_r,
    struct dm_error *err);
/* api_stop - stop serving, close the connections; *api is NULLed. */
void api_stop(struct api **api);
/*
 * api_addresses - "127.0.0.1:8025 [::1]:8025", the addresses bound (a
 * port 0 replaced by the one the kernel chose).
 */
void api_addresses(const struct api *api, char *out, size_t size);

/* ---- tokens: dmarcd token add ---- */

#define API_TOKEN_PREFIX	"dmarcd_"
/* The prefix, 43 base64url characters (32 random bytes), the NUL. */
#define API_TOKEN_SIZE		(sizeof(API_TOKEN_PREFIX) - 1 + 43 + 1)
/* api_token_new - a new random token (getrandom) into out. */
int api_token_new(char out[API_TOKEN_SIZE], struct dm_error *err);
/* api_token_hash - what dmarcd.api_tokens.sha256 holds for a token. */
void api_token_hash(const char *token, size_t len, unsigned char out[32]);
/*
 * api_basic_password - the password of HTTP Basic credentials (the
 * base64 after "Basic ", RFC 7617): the user is ignored, the password is
 * the token. Into out (size bytes, NUL-terminated), its length in *len_r;
 * 0, or -1 (not base64, no ':', a NUL byte, larger than out), out zeroed.
 */
int api_basic_password(const char *credentials, char *out, size_t size,
    size_t *len_r);

/* ---- query parameters (api/params.c; the unit tests call them) ---- */

#define API_LIMIT_DEFAULT	100
#define API_LIMIT_MAX		1000
#define API_DAYS_DEFAULT	30
#define API_DAYS_MAX		3650
#define API_SINCE_DEFAULT_S	(30 * 86400)

/*
 * api_parse_time - since/until: an RFC 3339 date (2026-01-31: midnight
 * UTC) or date-time (2026-01-31T12:00:00Z, +02:00, fractions ignored),
 * "now", or a time before now: N followed by s, m, h, d or w ("30d").
 * Years 1970 to 9999. 0 with the Unix time in *t_r, or -1.
 */
int api_parse_time(const char *text, int64_t now, int64_t *t_r);
/* api_parse_count - only digits, lo..hi; 0 or -1. */
int api_parse_count(const char *text, uint64_t lo, uint64_t hi,
    uint64_t *value_r);
/*
 * api_parse_domain - a DNS name as a path segment: letters, digits, '-',
 * '_' and '.', labels 1 to 63, 1 to 253 in all, no dot at either end;
 * written to out (size bytes) in lower case. 0 or -1.
 */
int api_parse_domain(const char *text, char *out, size_t size);
/* api_parse_cursor - "T_ID" (two integers, T may be negative). */
int api_parse_cursor(const char *text, int64_t *t_r, int64_t *id_r);
/*
 * api_printable - text (at most max bytes of it) with every byte that is
 * not printable ASCII replaced by '?', for an error message.
 */
void api_printable(const char *text, size_t max, char *out, size_t size);

/*
 * ---- between api/'s own files: server.c (HTTP) and routes.c (paths,
 * tokens, SQL) ----
 */
struct dm_buf;
struct api_routes;

#define API_PATH_MAX		1024	/* longer: 414 */
#define API_MAX_SEGMENTS	8	/* more: 404 */

struct api_req {
	struct api *api;
	struct api_routes *routes;
	void *conn;			/* struct MHD_Connection */
	int head;			/* HEAD: the same answer, no body */
	int html;			/* errors as HTML (the status page) */
	int bad_method;			/* not GET nor HEAD: 405 */
	char path[API_PATH_MAX + 1];	/* cut into segments */
	char *seg[API_MAX_SEGMENTS];
	size_t nseg;
	int64_t now;			/* Unix seconds at arrival */
	/* the answer */
	unsigned status;
	void *response;			/* struct MHD_Response * */
};

/*
 * api_unescape - decode s's percent-escapes in place; %00 and malformed
 * escapes are kept as written. The new length.
 */
size_t api_unescape(char *s);
/*
 * api_split_path - url (already unescaped) into r->path, cut at each '/'
 * into r->seg[0..nseg); "/" has no segment. -1 for a path not starting
 * with '/', an empty segment (// or a final /) or more than
 * API_MAX_SEGMENTS.
 */
int api_split_path(struct api_req *r, const char *url);
/*
 * api_bearer - the token of an Authorization header "Bearer TOKEN"
 * (scheme in any case, spaces around the token dropped), its length in
 * *len_r; NULL when h is NULL or not a bearer header. Points into h.
 */
const char *api_bearer(const char *h, size_t *len_r);

/*
 * api_arg - query parameter name, or NULL when absent. A value holding a
 * NUL byte or longer than 256 bytes sets *bad (answer 400).
 */
const char *api_arg(struct api_req *r, const char *name, int *bad);
/* api_header - a request header, or NULL. */
const char *api_header(struct api_req *r, const char *name);
/* api_reply - answer with body (malloc'd, taken) as content_type. */
int api_reply(struct api_req *r, unsigned status, const char *content_type,
    char *body, size_t len);
/*
 * api_fail - the JSON error {"error":{"code":code,"message":...}}; the
 * message is made printable ASCII. 401 adds WWW-Authenticate, 405 Allow.
 * With r->html, a small HTML page instead (api_status_error), and 401
 * asks for Basic authentication.
 */
int api_fail(struct api_req *r, unsigned status, const char *code,
    const char *fmt, ...) DM_PRINTF(4, 5);
/*
 * api_reply_stream - a body of size bytes from read(ctx, buf, max):
 * bytes (> 0), 0 at the end, -1 on an error (the connection is cut);
 * done(ctx) when the answer is finished or abandoned. filename for
 * Content-Disposition.
 */
int api_reply_stream(struct api_req *r, uint64_t size,
    const char *content_type, const char *filename,
    long (*read)(void *ctx, char *buf, size_t max), void (*done)(void *ctx),
    void *ctx);
/* api_requests_metrics - the request counters by status, Prometheus. */
int api_requests_metrics(const struct api *a, struct dm_buf *out);

/*
 * Answers kept until their data changes (answers.c): NULL when ttl_s is 0
 * (then every call below does nothing). get copies the body out (malloc'd)
 * and gives the generation to hand to put, which keeps nothing when an
 * invalidation came in between.
 */
struct api_answers;
struct api_answers *api_answers_new(const char *conninfo, unsigned ttl_s,
    struct dm_error *err);
void api_answers_free(struct api_answers **a);
int api_answers_get(struct api_answers *a, const char *key, int64_t now,
    char **body_r, size_t *len_r, uint64_t *generation_r);
void api_answers_put(struct api_answers *a, const char *key,
    const char *domain, const char *body, size_t len, int64_t now,
    uint64_t generation);
void api_answers_invalidate(struct api_answers *a, const char *domain);
void api_answers_counts(struct api_answers *a, uint64_t *hits_r,
    uint64_t *misses_r);

/*
 * ---- the status page at / (status.c): HTML rendered from the JSON
 * texts of the summary, sources and readiness answers ----
 */
#define API_STATUS_MAX_DOMAINS	25	/* the ones with the most messages */
#define API_STATUS_MAX_SENDERS	5	/* per class, the largest */
#define API_STATUS_DAYS_MAX	366	/* days=: one bar a day in the chart */
#define API_STATUS_MAX_BYTES	(8u << 20)

struct api_status_domain {
	const char *domain;
	const char *summary;		/* JSON texts as the API answers them */
	const char *sources;		/* (NULL: the answer failed) */
	const char *readiness;
};

struct api_status_page {
	int64_t since, until;		/* whole UTC days: [since, until) */
	unsigned days;
	int64_t now;
	size_t domains_total;		/* the token's domains with data */
	const struct api_status_domain *domains;
	size_t ndomains;		/* at most API_STATUS_MAX_DOMAINS */
	int public_page;		/* [api] status_public: no token */
};

/*
 * api_status_domains - from the JSON of /v1/domains (an array of
 * {"domain", "messages", ...}), the names of the max domains with the
 * most messages (then by name) into names, their count in *n_r, the
 * array's length in *total_r. 0, or -1 (not that JSON).
 */
int api_status_domains(const char *json, char names[][256], size_t max,
    size_t *n_r, size_t *total_r);
/*
 * api_status_render - the page into out (a dm_buf of at most
 * API_STATUS_MAX_BYTES); 0, or -1 when it does not fit or memory runs
 * out (out is then freed).
 */
int api_status_render(const struct api_status_page *page,
    struct dm_buf *out);
/* api_status_error - a small HTML page for an error: status, message. */
int api_status_error(unsigned status, const char *message,
    struct dm_buf *out);
/*
 * api_status_csp - the Content-Security-Policy of every HTML answer: no
 * source at all but the page's own style element (by its SHA-256) and
 * data: images.
 */
const char *api_status_csp(void);
/*
 * api_html_text - append text HTML-escaped (& < > " ' as references,
 * control characters as U+FFFD), at most max bytes of it (cut on a UTF-8
 * character boundary, with an ellipsis); 0 or -1 (the buffer's cap).
 */
int api_html_text(struct dm_buf *b, const char *text, size_t max);

struct api_routes *api_routes_new(const struct dm_config *cfg,
    struct dm_error *err);
void api_routes_free(struct api_routes **rt);
/* api_route - answer r (one of the api_reply* functions is called). */
void api_route(struct api_req *r);

#endif
