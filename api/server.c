/*
 * server.c - the HTTP side of the API: one libmicrohttpd daemon per
 * [api] listen address, each with a pool of [api] threads worker threads
 * (MHD_USE_INTERNAL_POLLING_THREAD, epoll), [api] max_connections
 * connections, at most [api] max_connections_per_ip of them from one
 * client address, an idle timeout of [api] request_timeout and 32 KiB of
 * memory per connection (the request line and headers must fit: longer
 * ones get libmicrohttpd's own 414 or 431).
 *
 * The idle timeout alone does not stop a slow client (slowloris): one
 * byte a second keeps a connection alive forever. So the request line
 * and headers of each request must arrive in full within [api]
 * header_timeout seconds of the connection opening or of the previous
 * answer; a watchdog thread shuts down the socket of a connection past
 * that deadline (libmicrohttpd then closes it as if the client had).
 *
 * Nor does it stop a slow reader: a client that asks for a large answer
 * and reads it a byte a second resets the idle timer with every byte. So
 * each request must also be over, from its request line (libmicrohttpd's
 * first hook; the time before it is header_timeout's) to the last byte of
 * its answer, within [api] answer_timeout seconds (0: no limit). The same
 * watchdog resets such a connection (SO_LINGER 0, then shutdown): a plain
 * close would leave the kernel trickling the queued answer out to it.
 *
 * Only GET and HEAD are served, without a body: a request that carries
 * one is refused at once (413), before it is read. Every answer here is
 * JSON with a code, except /metrics and raw downloads (routes.c).
 *
 * Percent-escapes are decoded by api_unescape() (params.c), not
 * libmicrohttpd's own: %00 and malformed escapes are kept as written, so
 * a NUL byte can never cut a path or a value short, and the checks in
 * params.c see and refuse the '%'.
 *
 * libmicrohttpd is loaded on first use: it links GnuTLS, which dmarcd
 * parse must not map (tests/startup.sh).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>

#include "api/api.h"
#include "common/buf.h"
#include "common/config.h"
#include "common/dl.h"

#ifndef LIBMICROHTTPD_SONAME
#define LIBMICROHTTPD_SONAME "libmicrohttpd.so.12"
#endif

#define MHD_SYMS(X, a)							\
	X(a, MHD_start_daemon) X(a, MHD_stop_daemon)			\
	X(a, MHD_get_daemon_info) X(a, MHD_create_response_from_buffer)	\
	X(a, MHD_create_response_from_callback)				\
	X(a, MHD_add_response_header) X(a, MHD_queue_response)		\
	X(a, MHD_destroy_response) X(a, MHD_lookup_connection_value_n)	\
	X(a, MHD_lookup_connection_value) X(a, MHD_is_feature_supported)	\
	X(a, MHD_get_connection_info)

static struct mhd_api {
	DM_DL_FIELDS(MHD_SYMS)
} mhd;
static const struct dm_dl_sym mhd_syms[] = {
	DM_DL_SYMS(struct mhd_api, MHD_SYMS)
};
static struct dm_dl_lib mhd_lib = DM_DL_LIB(LIBMICROHTTPD_SONAME,
    "to serve the HTTP API", mhd_syms, &mhd);

#define CONNECTION_MEMORY	(32 * 1024)
#define TLS_FILE_MAX		(1024 * 1024)
#define ARG_MAX_LEN		256
#define STATUS_MIN		100
#define STATUS_MAX		599

/* An open connection, watched for its deadlines (see the top). */
struct watched {
	struct watched *prev, *next;
	int fd;
	int waiting;		/* for the head of a request */
	struct timespec since;	/* opened, or its last answer sent */
	int answering;		/* a request is under way */
	struct timespec started;	/* its request line arrived */
};

struct api {
	struct MHD_Daemon *daemons[DM_CONFIG_MAX_LISTEN];
	char bound[DM_CONFIG_MAX_LISTEN][80];
	size_t ndaemons;
	struct api_routes *routes;
	char *tls_cert, *tls_key;
	uint64_t requests[STATUS_MAX + 1];	/* by status, atomic */
	/* The deadlines: the list, and the thread that enforces them. */
	pthread_mutex_t watch_lock;
	pthread_cond_t watch_wake;
	struct watched *watched;
	long header_timeout_ms;
	long answer_timeout_ms;	/* 0: no answer deadline */
	int watchdog_started, stopping;
	pthread_t watchdog;
};

/* ---- request helpers for routes.c ---- */

const char *
api_arg(struct api_req *r, const char *name, int *bad)
{
	const char *value = NULL;
	size_t len = 0;

	if (mhd.MHD_lookup_connection_value_n(r->conn, MHD_GET_ARGUMENT_KIND,
	    name, strlen(name), &value, &len) != MHD_YES)
		return NULL;
	if (value == NULL)
		return "";
	if (strlen(value) != len || len > ARG_MAX_LEN)
		*bad = 1;
	return value;
}

const char *
api_header(struct api_req *r, const char *name)
{
	return mhd.MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
	    name);
}

static void
common_headers(struct MHD_Response *resp, const char *content_type)
{
	mhd.MHD_add_response_header(resp, "Content-Type", content_type);
	mhd.MHD_add_response_header(resp, "Cache-Control", "no-store");
	mhd.MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	/* The status page: nothing but itself, never framed nor referred. */
	if (strncmp(content_type, "text/html", 9) == 0) {
		mhd.MHD_add_response_header(resp, "Content-Security-Policy",
		    api_status_csp());
		mhd.MHD_add_response_header(resp, "X-Frame-Options", "DENY");
		mhd.MHD_add_response_header(resp, "Referrer-Policy",
		    "no-referrer");
	}
}

int
api_reply(struct api_req *r, unsigned status, const char *content_type,
    char *body, size_t len)
{
	struct MHD_Response *resp;

	resp = mhd.MHD_create_response_from_buffer(len, body,
	    MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(body);
		return -1;
	}
	common_headers(resp, content_type);
	if (r->response != NULL)
		mhd.MHD_destroy_response(r->response);
	r->response = resp;
	r->status = status;
	return 0;
}

int
api_fail(struct api_req *r, unsigned status, const char *code,
    const char *fmt, ...)
{
	char msg[512], clean[512];
	json_t *doc;
	char *text;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	api_printable(msg, sizeof(clean) - 1, clean, sizeof(clean));
	if (r->html) {
		struct dm_buf b;

		dm_buf_init(&b, 64 * 1024);
		if (api_status_error(status, clean, &b) != 0 ||
		    api_reply(r, status, "text/html; charset=utf-8", b.data,
		    b.len) != 0)
			return -1;
		if (status == 401)
			mhd.MHD_add_response_header(r->response,
			    "WWW-Authenticate", "Basic realm=\"dmarcd\", "
			    "charset=\"UTF-8\"");
		if (status == 405)
			mhd.MHD_add_response_header(r->response, "Allow",
			    "GET, HEAD");
		return 0;
	}
	doc = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message",
	    clean);
	text = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	if (text == NULL)
		return -1;
	if (api_reply(r, status, "application/json", text,
	    strlen(text)) != 0)
		return -1;
	if (status == 401)
		mhd.MHD_add_response_header(r->response, "WWW-Authenticate",
		    strcmp(code, "no_token") == 0 ? "Bearer realm=\"dmarcd\"" :
		    "Bearer realm=\"dmarcd\", error=\"invalid_token\"");
	if (status == 405)
		mhd.MHD_add_response_header(r->response, "Allow", "GET, HEAD");
	return 0;
}

struct stream {
	long (*read)(void *ctx, char *buf, size_t max);
	void (*done)(void *ctx);
	void *ctx;
};

static ssize_t
stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct stream *s = cls;
	long n;

	(void)pos;
	n = s->read(s->ctx, buf, max);
	if (n > 0)
		return n;
	return n == 0 ? MHD_CONTENT_READER_END_OF_STREAM :
	    MHD_CONTENT_READER_END_WITH_ERROR;
}

static void
stream_free(void *cls)
{
	struct stream *s = cls;

	s->done(s->ctx);
	free(s);
}

int
api_reply_stream(struct api_req *r, uint64_t size, const char *content_type,
    const char *filename, long (*read)(void *ctx, char *buf, size_t max),
    void (*done)(void *ctx), void *ctx)
{
	struct MHD_Response *resp;
	struct stream *s;
	char disposition[300];

	s = malloc(sizeof(*s));
	if (s == NULL) {
		done(ctx);
		return -1;
	}
	s->read = read;
	s->done = done;
	s->ctx = ctx;
	resp = mhd.MHD_create_response_from_callback(size, 64 * 1024,
	    stream_read, s, stream_free);
	if (resp == NULL) {
		stream_free(s);
		return -1;
	}
	common_headers(resp, content_type);
	snprintf(disposition, sizeof(disposition), "attachment; "
	    "filename=\"%s\"", filename);
	mhd.MHD_add_response_header(resp, "Content-Disposition", disposition);
	if (r->response != NULL)
		mhd.MHD_destroy_response(r->response);
	r->response = resp;
	r->status = 200;
	return 0;
}

int
api_requests_metrics(const struct api *a, struct dm_buf *out)
{
	unsigned code;
	uint64_t n;

	if (dm_buf_printf(out, "# HELP dmarcd_api_requests_total HTTP "
	    "requests answered, by status code.\n# TYPE "
	    "dmarcd_api_requests_total counter\n") != 0)
		return -1;
	for (code = STATUS_MIN; code <= STATUS_MAX; code++) {
		n = __atomic_load_n(&a->requests[code], __ATOMIC_RELAXED);
		if (n > 0 && dm_buf_printf(out, "dmarcd_api_requests_total"
		    "{code=\"%u\"} %llu\n", code, (unsigned long long)n) != 0)
			return -1;
	}
	return 0;
}

/* ---- libmicrohttpd callbacks ---- */

/* libmicrohttpd's unescape callback: api_unescape(), in place. */
static size_t
unescape(void *cls, struct MHD_Connection *c, char *s)
{
	(void)cls;
	(void)c;
	return api_unescape(s);
}

/* ---- the header and answer deadlines ---- */

static long
elapsed_ms(const struct timespec *since, const struct timespec *now)
{
	return (long)(now->tv_sec - since->tv_sec) * 1000 +
	    (now->tv_nsec - since->tv_nsec) / 1000000;
}

static struct watched *
watched_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *info;

	info = mhd.MHD_get_connection_info(c,
	    MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return info != NULL ? info->socket_context : NULL;
}

/*
 * watch_set - waiting: whether c now waits for the head of a request;
 * done: its answer is sent (or abandoned), so no answer deadline runs.
 */
static void
watch_set(struct api *a, struct MHD_Connection *c, int waiting, int done)
{
	struct watched *w;

	if ((w = watched_of(c)) == NULL)
		return;
	pthread_mutex_lock(&a->watch_lock);
	w->waiting = waiting;
	clock_gettime(CLOCK_MONOTONIC, &w->since);
	if (done)
		w->answering = 0;
	pthread_mutex_unlock(&a->watch_lock);
}

/*
 * on_uri - libmicrohttpd has the request line of a new request: its
 * answer deadline starts. NULL keeps *con_cls NULL for on_request.
 */
static void *
on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
	struct api *a = cls;
	struct watched *w;

	(void)uri;
	if ((w = watched_of(c)) == NULL)
		return NULL;
	pthread_mutex_lock(&a->watch_lock);
	w->answering = 1;
	clock_gettime(CLOCK_MONOTONIC, &w->started);
	pthread_mutex_unlock(&a->watch_lock);
	return NULL;
}

/*
 * on_connection - a connection opens or closes. libmicrohttpd calls it
 * for CLOSED before it closes the socket, so the watchdog never sees a
 * descriptor that another connection may have reused.
 */
static void
on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
    enum MHD_ConnectionNotificationCode code)
{
	struct api *a = cls;
	const union MHD_ConnectionInfo *info;
	struct watched *w;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		info = mhd.MHD_get_connection_info(c,
		    MHD_CONNECTION_INFO_CONNECTION_FD);
		/* Out of memory: this one connection has no deadline. */
		if (info == NULL || (w = calloc(1, sizeof(*w))) == NULL)
			return;
		w->fd = info->connect_fd;
		w->waiting = 1;
		clock_gettime(CLOCK_MONOTONIC, &w->since);
		pthread_mutex_lock(&a->watch_lock);
		w->next = a->watched;
		if (a->watched != NULL)
			a->watched->prev = w;
		a->watched = w;
		pthread_mutex_unlock(&a->watch_lock);
		*socket_context = w;
		return;
	}
	if ((w = *socket_context) == NULL)
		return;
	pthread_mutex_lock(&a->watch_lock);
	if (w->prev != NULL)
		w->prev->next = w->next;
	else
		a->watched = w->next;
	if (w->next != NULL)
		w->next->prev = w->prev;
	pthread_mutex_unlock(&a->watch_lock);
	free(w);
	*socket_context = NULL;
}

/* on_completed - an answer is sent: the next request's clock starts. */
static void
on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
    enum MHD_RequestTerminationCode code)
{
	(void)con_cls;
	(void)code;
	watch_set(cls, c, 1, 1);
}

/*
 * cut - end a connection from the watchdog, with watch_lock held: the
 * descriptor is still this connection's (see on_connection). reset: a
 * reset rather than a FIN, for a client that left an answer unread.
 */
static void
cut(struct watched *w, int reset)
{
	struct linger hard = { 1, 0 };

	if (reset)
		(void)setsockopt(w->fd, SOL_SOCKET, SO_LINGER, &hard,
		    sizeof(hard));
	(void)shutdown(w->fd, SHUT_RDWR);
}

/*
 * watchdog - cut every connection whose head is late or whose request
 * has lasted too long, 4 times a second.
 */
static void *
watchdog(void *cls)
{
	struct api *a = cls;
	struct timespec now, until;
	struct watched *w;

	pthread_mutex_lock(&a->watch_lock);
	while (!a->stopping) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		for (w = a->watched; w != NULL; w = w->next) {
			if (w->waiting && elapsed_ms(&w->since, &now) >=
			    a->header_timeout_ms) {
				cut(w, 0);
				w->waiting = 0;
			}
			if (w->answering && a->answer_timeout_ms > 0 &&
			    elapsed_ms(&w->started, &now) >=
			    a->answer_timeout_ms) {
				cut(w, 1);
				w->answering = 0;
			}
		}
		until = now;
		until.tv_nsec += 250 * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&a->watch_wake, &a->watch_lock,
		    &until);
	}
	pthread_mutex_unlock(&a->watch_lock);
	return NULL;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_size, void **con_cls)
{
	struct api *a = cls;
	struct api_req r;
	const char *length, *chunked;
	enum MHD_Result rc;
	static int waiting, answered;	/* *con_cls: where the request is */

	(void)version;
	(void)upload;
	/*
	 * The first call comes with the headers. A GET is answered on the
	 * second, once libmicrohttpd knows the request is complete: an answer
	 * queued earlier closes the connection (no keep-alive).
	 */
	if (*con_cls == &answered) {
		*upload_size = 0;	/* a body after the answer: dropped */
		return MHD_YES;
	}
	if (*con_cls == NULL) {
		*con_cls = &waiting;
		watch_set(a, c, 0, 0);
		length = mhd.MHD_lookup_connection_value(c, MHD_HEADER_KIND,
		    MHD_HTTP_HEADER_CONTENT_LENGTH);
		chunked = mhd.MHD_lookup_connection_value(c, MHD_HEADER_KIND,
		    MHD_HTTP_HEADER_TRANSFER_ENCODING);
		if ((length == NULL || strcmp(length, "0") == 0) &&
		    chunked == NULL)
			return MHD_YES;
	}
	*con_cls = &answered;
	memset(&r, 0, sizeof(r));
	r.api = a;
	r.routes = a->routes;
	r.conn = c;
	r.now = (int64_t)time(NULL);
	r.head = strcmp(method, "HEAD") == 0;
	length = mhd.MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_CONTENT_LENGTH);
	chunked = mhd.MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_TRANSFER_ENCODING);
	if (strlen(url) > API_PATH_MAX)
		api_fail(&r, 414, "uri_too_long", "the path is longer than "
		    "%d bytes", API_PATH_MAX);
	else if ((length != NULL && strcmp(length, "0") != 0) ||
	    chunked != NULL)
		api_fail(&r, 413, "body_not_allowed", "requests have no "
		    "body here");
	else if (api_split_path(&r, url) != 0)
		api_fail(&r, 404, "not_found", "no such path");
	else {
		/* 404 before 405: api_route() matches the path first. */
		r.bad_method = strcmp(method, "GET") != 0 && !r.head;
		api_route(&r);
	}
	if (r.response == NULL) {
		if (api_fail(&r, 500, "internal", "out of memory") != 0)
			return MHD_NO;
	}
	rc = mhd.MHD_queue_response(c, r.status, r.response);
	mhd.MHD_destroy_response(r.response);
	if (r.status >= STATUS_MIN && r.status <= STATUS_MAX)
		__atomic_add_fetch(&a->requests[r.status], 1, __ATOMIC_RELAXED);
	return rc;
}

/* ---- start and stop ---- */

static char *
read_small_file(const char *path, struct dm_error *err)
{
	struct dm_buf b;
	char block[4096];
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		dm_error_set(err, DM_E_USAGE, "[api] cannot open %s: %s", path,
		    strerror(errno));
		return NULL;
	}
	dm_buf_init(&b, TLS_FILE_MAX);
	while ((n = read(fd, block, sizeof(block))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || dm_buf_append(&b, block, (size_t)n) != 0) {
			dm_error_set(err, DM_E_USAGE, "[api] %s: %s", path,
			    n < 0 ? strerror(errno) : "larger than 1 MiB");
			close(fd);
			dm_buf_free(&b);
			return NULL;
		}
	}
	close(fd);
	if (b.len == 0) {
		dm_error_set(err, DM_E_USAGE, "[api] %s is empty", path);
		dm_buf_free(&b);
		return NULL;
	}
	return b.data;	/* the buffer's bytes are the caller's now */
}

/*
 * in_use - after libmicrohttpd could not listen: whether the address is
 * taken (EADDRINUSE), which a restart may cure (the other process goes),
 * unlike an address that is not local or a bad certificate.
 */
static int
in_use(const struct sockaddr_storage *ss)
{
	socklen_t len = ss->ss_family == AF_INET6 ?
	    sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	int fd, on = 1, taken;

	fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	taken = bind(fd, (const struct sockaddr *)ss, len) != 0 &&
	    errno == EADDRINUSE;
	close(fd);
	return taken;
}

static int
start_one(struct api *a, const struct dm_config *cfg,
    const struct dm_listen *l, struct dm_error *err)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL;
	const union MHD_DaemonInfo *info;
	struct MHD_Daemon *d;
	size_t i = a->ndaemons;

	memset(&ss, 0, sizeof(ss));
	if (l->ipv6) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)l->port);
		inet_pton(AF_INET6, l->host, &sin6->sin6_addr);
		flags |= MHD_USE_IPv6;
	} else {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)l->port);
		inet_pton(AF_INET, l->host, &sin->sin_addr);
	}
	if (a->tls_cert != NULL)
		flags |= MHD_USE_TLS;
	if (a->tls_cert != NULL)
		d = mhd.MHD_start_daemon(flags, 0, NULL, NULL, on_request, a,
		    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
		    MHD_OPTION_THREAD_POOL_SIZE, cfg->api_threads,
		    MHD_OPTION_CONNECTION_LIMIT, cfg->api_max_connections,
		    MHD_OPTION_CONNECTION_TIMEOUT, cfg->api_request_timeout_s,
		    MHD_OPTION_CONNECTION_MEMORY_LIMIT,
		    (size_t)CONNECTION_MEMORY,
		    MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL,
		    MHD_OPTION_PER_IP_CONNECTION_LIMIT,
		    cfg->api_max_connections_per_ip,
		    MHD_OPTION_NOTIFY_CONNECTION, on_connection, a,
		    MHD_OPTION_NOTIFY_COMPLETED, on_completed, a,
		    MHD_OPTION_URI_LOG_CALLBACK, on_uri, a,
		    MHD_OPTION_HTTPS_MEM_CERT, a->tls_cert,
		    MHD_OPTION_HTTPS_MEM_KEY, a->tls_key,
		    MHD_OPTION_END);
	else
		d = mhd.MHD_start_daemon(flags, 0, NULL, NULL, on_request, a,
		    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
		    MHD_OPTION_THREAD_POOL_SIZE, cfg->api_threads,
		    MHD_OPTION_CONNECTION_LIMIT, cfg->api_max_connections,
		    MHD_OPTION_CONNECTION_TIMEOUT, cfg->api_request_timeout_s,
		    MHD_OPTION_CONNECTION_MEMORY_LIMIT,
		    (size_t)CONNECTION_MEMORY,
		    MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL,
		    MHD_OPTION_PER_IP_CONNECTION_LIMIT,
		    cfg->api_max_connections_per_ip,
		    MHD_OPTION_NOTIFY_CONNECTION, on_connection, a,
		    MHD_OPTION_NOTIFY_COMPLETED, on_completed, a,
		    MHD_OPTION_URI_LOG_CALLBACK, on_uri, a,
		    MHD_OPTION_END);
	if (d == NULL && in_use(&ss))
		return dm_error_set(err, DM_E_TEMP, "[api] listen: %s%s%s:%u "
		    "is in use (by another dmarcd serve, or dmarcd run with "
		    "[api] listen?): try again once it is free",
		    l->ipv6 ? "[" : "", l->host, l->ipv6 ? "]" : "", l->port);
	if (d == NULL)
		return dm_error_set(err, DM_E_USAGE, "[api] listen: cannot "
		    "serve on %s%s%s:%u (address in use, not local, or a bad "
		    "TLS certificate or key)", l->ipv6 ? "[" : "", l->host,
		    l->ipv6 ? "]" : "", l->port);
	a->daemons[i] = d;
	a->ndaemons++;
	info = mhd.MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	snprintf(a->bound[i], sizeof(a->bound[i]), "%s%s%s:%u",
	    l->ipv6 ? "[" : "", l->host, l->ipv6 ? "]" : "",
	    info != NULL ? (unsigned)info->port : l->port);
	return 0;
}

int
api_start(const struct dm_config *cfg, struct api **api_r,
    struct dm_error *err)
{
	struct api *a;
	sigset_t all, saved;
	size_t i;
	int rc = 0;

	*api_r = NULL;
	if (cfg->api_nlisten == 0)
		return dm_error_set(err, DM_E_USAGE, "[api] listen is not set: "
		    "no address to serve on");
	if (dm_dl_need(&mhd_lib, err) != 0)
		return -1;
	if (cfg->api_tls_cert[0] != '\0' &&
	    mhd.MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
		return dm_error_set(err, DM_E_UNAVAILABLE, "[api] tls_cert: "
		    "this libmicrohttpd has no TLS");
	a = calloc(1, sizeof(*a));
	if (a == NULL)
		return dm_error_set(err, DM_E_NOMEM, "out of memory");
	a->header_timeout_ms = (long)cfg->api_header_timeout_s * 1000;
	a->answer_timeout_ms = (long)cfg->api_answer_timeout_s * 1000;
	pthread_mutex_init(&a->watch_lock, NULL);
	{
		pthread_condattr_t attr;

		pthread_condattr_init(&attr);
		pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
		pthread_cond_init(&a->watch_wake, &attr);
		pthread_condattr_destroy(&attr);
	}
	if (cfg->api_tls_cert[0] != '\0' &&
	    ((a->tls_cert = read_small_file(cfg->api_tls_cert, err)) == NULL ||
	    (a->tls_key = read_small_file(cfg->api_tls_key, err)) == NULL)) {
		api_stop(&a);
		return -1;
	}
	a->routes = api_routes_new(cfg, err);
	if (a->routes == NULL) {
		api_stop(&a);
		return -1;
	}
	/* The worker threads inherit this mask: signals go to the caller. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &saved);
	if ((rc = pthread_create(&a->watchdog, NULL, watchdog, a)) != 0)
		rc = dm_error_set(err, DM_E_NOMEM, "[api] cannot start a "
		    "thread: %s", strerror(rc));
	else
		a->watchdog_started = 1;
	for (i = 0; i < cfg->api_nlisten && rc == 0; i++)
		rc = start_one(a, cfg, &cfg->api_listen[i], err);
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	if (rc != 0) {
		api_stop(&a);
		return -1;
	}
	*api_r = a;
	return 0;
}

void
api_stop(struct api **ap)
{
	struct api *a = *ap;
	size_t i;

	if (a == NULL)
		return;
	/* Joins the worker threads: their connections close (routes.c). */
	for (i = 0; i < a->ndaemons; i++)
		mhd.MHD_stop_daemon(a->daemons[i]);
	if (a->watchdog_started) {
		pthread_mutex_lock(&a->watch_lock);
		a->stopping = 1;
		pthread_cond_signal(&a->watch_wake);
		pthread_mutex_unlock(&a->watch_lock);
		pthread_join(a->watchdog, NULL);
	}
	pthread_cond_destroy(&a->watch_wake);
	pthread_mutex_destroy(&a->watch_lock);
	api_routes_free(&a->routes);
	if (a->tls_key != NULL) {
		explicit_bzero(a->tls_key, strlen(a->tls_key));
		free(a->tls_key);
	}
	free(a->tls_cert);
	free(a);
	*ap = NULL;
}

void
api_addresses(const struct api *a, char *out, size_t size)
{
	size_t i, n = 0;

	if (size == 0)
		return;
	out[0] = '\0';
	for (i = 0; i < a->ndaemons && n < size; i++)
		n += (size_t)snprintf(out + n, size - n, "%s%s",
		    i > 0 ? " " : "", a->bound[i]);
}
