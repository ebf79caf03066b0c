/*
 * test_oauth2.c - unit tests for collector/oauth2.c: XOAUTH2 access
 * tokens from a token endpoint, through libcurl.
 *
 * Proves: a good answer gives the token and an expiry counted from the
 * request, and the request is a form POST with the grant, the
 * URL-encoded refresh token, client_id and client_secret, and Accept:
 * application/json; a second call is served from the cache without a
 * request, as is one with 61 s left, while 30 s left or oauth2_forget()
 * asks again; expires_in as a string of digits, a real or absent (3600)
 * is understood; invalid_grant (HTTP 400) is DM_E_USAGE naming the URL
 * and the endpoint's error and description, and the message holds
 * neither the refresh token nor the client secret even when the endpoint
 * echoes them; HTTP 503, a timeout, an answer that is not JSON (and the
 * message does not quote it), a missing, spaced or too long
 * access_token, token_type "mac", a zero expires_in and an answer over
 * 64 KiB (with or without Content-Length) are DM_E_TEMP and leave the
 * cache as it was; a redirect is DM_E_USAGE and not followed; http:// to
 * a host that is not loopback, and other schemes, are refused before any
 * request; http://localhost works; https:// is verified against ca_file:
 * the right CA gives a token, another CA is an error.
 *
 * The endpoint is a small HTTP server in a thread of this program, on
 * 127.0.0.1, answering one canned answer per connection; for https it
 * speaks TLS with a certificate made here with GnuTLS for this run.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "collector/oauth2.h"

#define REFRESH_TOKEN	"1//0refresh+token/with=odd&chars"
#define REFRESH_ESCAPED	"1%2F%2F0refresh%2Btoken%2Fwith%3Dodd%26chars"
#define CLIENT_ID	"123-client.apps.example"
#define CLIENT_SECRET	"GOCSPX-client-secret"
#define GOOD_TOKEN	"ya29.a0AfH6SMBgoodtoken"

struct server {
	int listen_fd;
	int port;
	pthread_t thread;
	gnutls_certificate_credentials_t tls;	/* NULL: plain HTTP */
	pthread_mutex_t lock;
	char answer[160 * 1024];	/* the raw HTTP answer */
	size_t answer_len;
	int hang;			/* read the request, never answer */
	unsigned connections;
	char request[16 * 1024];	/* the last one, head and body */
	size_t request_len;
	int stop;
};

static struct server plain;
static char url[128];

/* Certificates made for this run: a CA, a server signed by it, another
 * CA that signed nothing; the CAs' PEM files. */
static gnutls_x509_privkey_t ca_key, server_key, other_key;
static gnutls_x509_crt_t ca_crt, server_crt, other_crt;
static char ca_file[64] = "", other_ca_file[64] = "";

/* --- the server --------------------------------------------------- */

static ssize_t
conn_read(int fd, gnutls_session_t s, char *buf, size_t n)
{
	ssize_t got;

	if (s == NULL)
		return recv(fd, buf, n, 0);
	do
		got = gnutls_record_recv(s, buf, n);
	while (got == GNUTLS_E_AGAIN || got == GNUTLS_E_INTERRUPTED);
	return got < 0 ? -1 : got;
}

static void
conn_write(int fd, gnutls_session_t s, const char *buf, size_t n)
{
	ssize_t put;

	while (n > 0) {
		put = s == NULL ? send(fd, buf, n, MSG_NOSIGNAL) :
		    gnutls_record_send(s, buf, n);
		if (s != NULL && (put == GNUTLS_E_AGAIN ||
		    put == GNUTLS_E_INTERRUPTED))
			continue;
		if (put <= 0)
			return;	/* the client went away */
		buf += put;
		n -= (size_t)put;
	}
}

/* Read a request: the head, then Content-Length bytes of body. */
static void
read_request(struct server *srv, int fd, gnutls_session_t s)
{
	char buf[sizeof(srv->request)];
	size_t len = 0, want = 0;
	const char *end, *cl;
	ssize_t got;

	for (;;) {
		buf[len] = '\0';
		end = strstr(buf, "\r\n\r\n");
		if (end != NULL && want == 0) {
			cl = strcasestr(buf, "\r\nContent-Length:");
			want = (size_t)(end + 4 - buf) +
			    (cl != NULL && cl < end ?
			    strtoul(cl + 17, NULL, 10) : 0);
		}
		if (want != 0 && len >= want)
			break;
		if (len + 1 >= sizeof(buf))
			break;
		got = conn_read(fd, s, buf + len, sizeof(buf) - 1 - len);
		if (got <= 0)
			break;
		len += (size_t)got;
	}
	pthread_mutex_lock(&srv->lock);
	memcpy(srv->request, buf, len);
	srv->request[len] = '\0';
	srv->request_len = len;
	pthread_mutex_unlock(&srv->lock);
}

static void *
serve(void *arg)
{
	struct server *srv = arg;
	struct timeval five = { 5, 0 };
	gnutls_session_t s;
	char sink[512];
	int fd, hang;

	for (;;) {
		fd = accept(srv->listen_fd, NULL, NULL);
		if (fd < 0)
			continue;
		pthread_mutex_lock(&srv->lock);
		if (srv->stop) {
			pthread_mutex_unlock(&srv->lock);
			close(fd);
			break;
		}
		srv->connections++;
		hang = srv->hang;
		pthread_mutex_unlock(&srv->lock);
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &five, sizeof(five));
		s = NULL;
		if (srv->tls != NULL) {
			gnutls_init(&s, GNUTLS_SERVER);
			gnutls_set_default_priority(s);
			gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE,
			    srv->tls);
			gnutls_transport_set_int(s, fd);
			gnutls_handshake_set_timeout(s, 5000);
			if (gnutls_handshake(s) < 0) {
				gnutls_deinit(s);
				close(fd);
				continue;
			}
		}
		read_request(srv, fd, s);
		if (hang) {
			/* Until the client gives up and closes. */
			while (conn_read(fd, s, sink, sizeof(sink)) > 0)
				;
		} else {
			pthread_mutex_lock(&srv->lock);
			conn_write(fd, s, srv->answer, srv->answer_len);
			pthread_mutex_unlock(&srv->lock);
		}
		if (s != NULL) {
			gnutls_bye(s, GNUTLS_SHUT_WR);
			gnutls_deinit(s);
		}
		close(fd);
	}
	return NULL;
}

static int
server_start(struct server *srv, gnutls_certificate_credentials_t tls)
{
	struct sockaddr_in sin;
	socklen_t sin_len = sizeof(sin);

	memset(srv, 0, sizeof(*srv));
	pthread_mutex_init(&srv->lock, NULL);
	srv->tls = tls;
	srv->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	if (srv->listen_fd < 0)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(srv->listen_fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
	    listen(srv->listen_fd, 8) != 0 ||
	    getsockname(srv->listen_fd, (struct sockaddr *)&sin,
	    &sin_len) != 0)
		return -1;
	srv->port = ntohs(sin.sin_port);
	return pthread_create(&srv->thread, NULL, serve, srv) == 0 ? 0 : -1;
}

static void
server_stop(struct server *srv)
{
	struct sockaddr_in sin;
	int fd;

	pthread_mutex_lock(&srv->lock);
	srv->stop = 1;
	pthread_mutex_unlock(&srv->lock);
	/* Wake accept(). */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((uint16_t)srv->port);
	connect(fd, (struct sockaddr *)&sin, sizeof(sin));
	pthread_join(srv->thread, NULL);
	close(fd);
	close(srv->listen_fd);
	pthread_mutex_destroy(&srv->lock);
}

/* The next answer: status line, extra header lines, body. */
static void
answer_with(struct server *srv, const char *status, const char *headers,
    const char *body)
{
	pthread_mutex_lock(&srv->lock);
	srv->hang = 0;
	srv->answer_len = (size_t)snprintf(srv->answer, sizeof(srv->answer),
	    "HTTP/1.1 %s\r\nContent-Type: application/json\r\n"
	    "Content-Length: %zu\r\nConnection: close\r\n%s\r\n%s", status,
	    strlen(body), headers, body);
	pthread_mutex_unlock(&srv->lock);
}

static void
answer(const char *status, const char *body)
{
	answer_with(&plain, status, "", body);
}

static unsigned
connections(struct server *srv)
{
	unsigned n;

	pthread_mutex_lock(&srv->lock);
	n = srv->connections;
	pthread_mutex_unlock(&srv->lock);
	return n;
}

/* --- certificates ------------------------------------------------- */

static int
make_cert(gnutls_x509_crt_t *crt_r, gnutls_x509_privkey_t *key_r,
    const char *dn, gnutls_x509_crt_t issuer, gnutls_x509_privkey_t
    issuer_key)
{
	static unsigned char serial = 1;
	unsigned char id[64];
	size_t id_len = sizeof(id);
	const unsigned char loopback[4] = { 127, 0, 0, 1 };
	gnutls_x509_crt_t crt;
	gnutls_x509_privkey_t key;
	time_t now = time(NULL);
	int rc = 0;

	rc |= gnutls_x509_privkey_init(&key);
	rc |= gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
	    GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0);
	rc |= gnutls_x509_crt_init(&crt);
	rc |= gnutls_x509_crt_set_version(crt, 3);
	serial++;
	rc |= gnutls_x509_crt_set_serial(crt, &serial, 1);
	rc |= gnutls_x509_crt_set_activation_time(crt, now - 3600);
	rc |= gnutls_x509_crt_set_expiration_time(crt, now + 86400);
	rc |= gnutls_x509_crt_set_dn(crt, dn, NULL);
	rc |= gnutls_x509_crt_set_key(crt, key);
	rc |= gnutls_x509_crt_get_key_id(crt, 0, id, &id_len);
	rc |= gnutls_x509_crt_set_subject_key_id(crt, id, id_len);
	if (issuer == NULL) {
		rc |= gnutls_x509_crt_set_basic_constraints(crt, 1, -1);
		rc |= gnutls_x509_crt_set_key_usage(crt,
		    GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN);
		rc |= gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256,
		    0);
	} else {
		rc |= gnutls_x509_crt_set_basic_constraints(crt, 0, -1);
		rc |= gnutls_x509_crt_set_key_usage(crt,
		    GNUTLS_KEY_DIGITAL_SIGNATURE);
		rc |= gnutls_x509_crt_set_key_purpose_oid(crt,
		    GNUTLS_KP_TLS_WWW_SERVER, 0);
		rc |= gnutls_x509_crt_set_subject_alt_name(crt,
		    GNUTLS_SAN_IPADDRESS, loopback, sizeof(loopback),
		    GNUTLS_FSAN_SET);
		rc |= gnutls_x509_crt_set_subject_alt_name(crt,
		    GNUTLS_SAN_DNSNAME, "localhost", 9, GNUTLS_FSAN_APPEND);
		id_len = sizeof(id);
		rc |= gnutls_x509_crt_get_subject_key_id(issuer, id, &id_len,
		    NULL);
		rc |= gnutls_x509_crt_set_authority_key_id(crt, id, id_len);
		rc |= gnutls_x509_crt_sign2(crt, issuer, issuer_key,
		    GNUTLS_DIG_SHA256, 0);
	}
	*crt_r = crt;
	*key_r = key;
	return rc == 0 ? 0 : -1;
}

static int
write_pem(char *path, gnutls_x509_crt_t crt)
{
	gnutls_datum_t pem;
	int fd, rc;

	snprintf(path, 64, "/tmp/test_oauth2_ca.XXXXXX");
	if ((fd = mkstemp(path)) < 0)
		return -1;
	if (gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &pem) != 0) {
		close(fd);
		return -1;
	}
	rc = write(fd, pem.data, pem.size) == (ssize_t)pem.size ? 0 : -1;
	gnutls_free(pem.data);
	close(fd);
	return rc;
}

/* --- fixtures ----------------------------------------------------- */

static void
client_for(struct oauth2_client *c, const char *token_url)
{
	memset(c, 0, sizeof(*c));
	c->token_url = token_url;
	c->client_id = CLIENT_ID;
	c->client_secret = CLIENT_SECRET;
	c->refresh_token = REFRESH_TOKEN;
	c->timeout_s = 10;
}

static void
assert_no_secrets(const char *msg)
{
	assert_null(strstr(msg, REFRESH_TOKEN));
	assert_null(strstr(msg, REFRESH_ESCAPED));
	assert_null(strstr(msg, CLIENT_SECRET));
	assert_null(strstr(msg, GOOD_TOKEN));
	assert_null(strstr(msg, "SECRETACCESS"));
}

/* A call that must fail with code, leave the cache as it was and name
 * the URL in a message without secrets. */
static void
assert_fails(const char *token_url, enum dm_error_code code,
    const char *in_msg)
{
	struct oauth2_client c;
	struct oauth2_token t, before;
	struct dm_error err;

	client_for(&c, token_url);
	memset(&t, 0, sizeof(t));
	snprintf(t.access_token, sizeof(t.access_token), "old");
	t.expires_at = time(NULL) + 10;	/* stale, so the endpoint is asked */
	before = t;
	dm_error_clear(&err);
	assert_int_equal(oauth2_access_token(&c, &t, &err), -1);
	print_message("# %s\n", err.msg);
	assert_int_equal(err.code, code);
	if (in_msg != NULL)
		assert_non_null(strstr(err.msg, in_msg));
	assert_no_secrets(err.msg);
	assert_string_equal(t.access_token, before.access_token);
	assert_int_equal(t.expires_at, before.expires_at);
}

static int
group_setup(void **state)
{
	signal(SIGPIPE, SIG_IGN);
	if (server_start(&plain, NULL) != 0)
		return -1;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/token", plain.port);
	return 0;
}

static int
group_teardown(void **state)
{
	server_stop(&plain);
	if (ca_file[0] != '\0')
		unlink(ca_file);
	if (other_ca_file[0] != '\0')
		unlink(other_ca_file);
	return 0;
}

/* --- tests -------------------------------------------------------- */

static void
test_good_answer(void **state)
{
	struct oauth2_client c;
	struct oauth2_token t;
	struct dm_error err;
	time_t before, after;
	const char *body;

	answer("200 OK", "{\"access_token\": \"" GOOD_TOKEN "\", "
	    "\"expires_in\": 3599, \"scope\": \"https://mail.google.com/\", "
	    "\"token_type\": \"Bearer\"}");
	client_for(&c, url);
	memset(&t, 0, sizeof(t));
	before = time(NULL);
	assert_int_equal(oauth2_access_token(&c, &t, &err), 0);
	after = time(NULL);
	assert_string_equal(t.access_token, GOOD_TOKEN);
	assert_in_range(t.expires_at, before + 3599, after + 3599);
	assert_int_equal(t.requests, 1);

	assert_non_null(strstr(plain.request, "POST /token HTTP/1.1\r\n"));
	assert_non_null(strcasestr(plain.request,
	    "\r\nAccept: application/json\r\n"));
	assert_non_null(strcasestr(plain.request, "\r\nContent-Type: "
	    "application/x-www-form-urlencoded\r\n"));
	body = strstr(plain.request, "\r\n\r\n");
	assert_non_null(body);
	assert_string_equal(body + 4, "grant_type=refresh_token"
	    "&refresh_token=" REFRESH_ESCAPED "&client_id=" CLIENT_ID
	    "&client_secret=" CLIENT_SECRET);
}

static void
test_no_client_secret(void **state)
{
	struct oauth2_client c;
	struct oauth2_token t;
	struct dm_error err;

	answer("200 OK", "{\"access_token\": \"" GOOD_TOKEN "\"}");
	client_for(&c, url);
	c.client_secret = "";
	memset(&t, 0, sizeof(t));
	assert_int_equal(oauth2_access_token(&c, &t, &err), 0);
	assert_null(strstr(plain.request, "client_secret"));
}

static void
test_cache(void **state)
{
	struct oauth2_client c;
	struct oauth2_token t;
	struct dm_error err;
	unsigned conns;

	answer("200 OK", "{\"access_token\": \"" GOOD_TOKEN "\", "
	    "\"expires_in\": 3600, \"token_type\": \"bearer\"}");
	client_for(&c, url);
	memset(&t, 0, sizeof(t));
	assert_int_equal(oauth2_access_token(&c, &t, &err), 0);
	conns = connections(&plain);

	/* Cached: no request. */
	answer("200 OK", "{\"access_token\": \"second\"}");
	assert_int_equal(oauth2_access_token(&c, &t, &err), 0);
	assert_string_equal(t.access_token, GOOD_TOKEN);
	assert_int_equal(t.requests, 1);
	assert_int_equal(connections(&plain), conns);

	/* 61 s left: still cached. */
	t.expires_at = time(NULL) + 61;
	assert_int_equal(oauth2_access_token(&c, &t, &err), 0);
	assert_string_equal(t.access_token, GOOD_TOKEN);
	assert_int_equal(t.requests, 1);

	/* 30 s left: a new one. */
	t.expires_at = time(NULL) + 30;
	assert_int_equal(oauth2_access_token(&c, &t, &err), 0);
	assert_string_equal(t.access_token, "second");
	assert_int_equal(t.requests, 2);
	assert_int_equal(connections(&plain), conns + 1);

	/* Forgotten: a new one. */
	answer("200 OK", "{\"access_token\": \"third\"}");
	oauth2_forget(&t);
	assert_int_equal(t.expires_at, 0);
	assert_int_equal(oauth2_access_token(&c, &t, &err), 0);
	assert_string_equal(t.access_token, "third");
	assert_int_equal(t.requests, 3);
}

static void
test_expires_in_forms(void **state)
{
	static const struct {
		const char *json;
		time_t seconds;
	} cases[] = {
		{ "\"3600\"", 3600 },	/* Microsoft's v1 endpoint */
		{ "1800.7", 1800 },
		{ NULL, 3600 },		/* absent */
		{ "99999999999", OAUTH2_MAX_EXPIRES },
	};
	struct oauth2_client c;
	struct oauth2_token t;
	struct dm_error err;
	char body[256];
	time_t before;

	client_for(&c, url);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (cases[i].json != NULL)
			snprintf(body, sizeof(body), "{\"access_token\": \"x\","
			    " \"expires_in\": %s}", cases[i].json);
		else
			snprintf(body, sizeof(body), "{\"access_token\": "
			    "\"x\"}");
		answer("200 OK", body);
		memset(&t, 0, sizeof(t));
		before = time(NULL);
		assert_int_equal(oauth2_access_token(&c, &t, &err), 0);
		assert_in_range(t.expires_at, before + cases[i].seconds,
		    time(NULL) + cases[i].seconds);
	}
}

static void
test_invalid_grant(void **state)
{
	/* Echoes the secrets: they must not reach the message. */
	answer("400 Bad Request", "{\"error\": \"invalid_grant\", "
	    "\"error_description\": \"Token has been expired or revoked: "
	    REFRESH_TOKEN " for " CLIENT_SECRET "\"}");
	assert_fails(url, DM_E_USAGE, "invalid_grant: Token has been "
	    "expired or revoked");
	assert_fails(url, DM_E_USAGE, url);

	answer("401 Unauthorized", "{\"error\": \"invalid_client\"}");
	assert_fails(url, DM_E_USAGE, "HTTP 401: invalid_client");

	/* Long and with control characters, as Microsoft's are. */
	answer("400 Bad Request", "{\"error\": \"invalid_grant\", "
	    "\"error_description\": \"AADSTS70000: The provided grant has "
	    "expired.\\r\\nTrace ID: 0000\\r\\nCorrelation ID: 1111\\r\\n"
	    "Timestamp: 2024-01-01 00:00:00Z xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "\"}");
	assert_fails(url, DM_E_USAGE, "AADSTS70000: The provided grant has "
	    "expired. Trace ID: 0000 Correlation");
	assert_fails(url, DM_E_USAGE, "xxx...");

	answer("400 Bad Request", "{\"error\": \"temporarily_unavailable\"}");
	assert_fails(url, DM_E_TEMP, "temporarily_unavailable");
	answer("403 Forbidden", "<html>no</html>");
	assert_fails(url, DM_E_USAGE, "HTTP 403 (no OAuth2 error given)");
}

static void
test_server_trouble(void **state)
{
	struct oauth2_client c;
	struct oauth2_token t;
	struct dm_error err;

	answer("503 Service Unavailable", "<html>busy</html>");
	assert_fails(url, DM_E_TEMP, "HTTP 503");
	answer("429 Too Many Requests", "{\"error\": \"slow_down\"}");
	assert_fails(url, DM_E_TEMP, "HTTP 429: slow_down");
	answer_with(&plain, "302 Found", "Location: http://127.0.0.1:1/\r\n",
	    "");
	assert_fails(url, DM_E_USAGE, "redirects are not followed");

	/* No answer within timeout_s. */
	pthread_mutex_lock(&plain.lock);
	plain.hang = 1;
	pthread_mutex_unlock(&plain.lock);
	client_for(&c, url);
	c.timeout_s = 1;
	memset(&t, 0, sizeof(t));
	assert_int_equal(oauth2_access_token(&c, &t, &err), -1);
	print_message("# %s\n", err.msg);
	assert_int_equal(err.code, DM_E_TEMP);
	assert_int_equal(t.requests, 1);
	assert_string_equal(t.access_token, "");

	/* Nobody listening. */
	assert_fails("http://127.0.0.1:1/token", DM_E_TEMP, "127.0.0.1:1");
}

static void
test_bad_answers(void **state)
{
	answer("200 OK", "<html>Sign in</html>");
	assert_fails(url, DM_E_TEMP, "is not JSON");
	/* Cut short: jansson would quote the token in "near '...'". */
	answer("200 OK", "{\"access_token\": \"SECRETACCESS");
	assert_fails(url, DM_E_TEMP, "is not JSON");
	answer("200 OK", "[\"SECRETACCESS\"]");
	assert_fails(url, DM_E_TEMP, "not a JSON object");
	answer("200 OK", "{\"token_type\": \"Bearer\", \"expires_in\": 3600}");
	assert_fails(url, DM_E_TEMP, "no access_token");
	answer("200 OK", "{\"access_token\": 12}");
	assert_fails(url, DM_E_TEMP, "no access_token");
	answer("200 OK", "{\"access_token\": \"\"}");
	assert_fails(url, DM_E_TEMP, "access_token is 0 bytes");
	answer("200 OK", "{\"access_token\": \"SECRETACCESS\\u0001x\"}");
	assert_fails(url, DM_E_TEMP, "not visible ASCII");
	answer("200 OK", "{\"access_token\": \"SECRETACCESS\", "
	    "\"token_type\": \"mac\"}");
	assert_fails(url, DM_E_TEMP, "token_type is \"mac\", not Bearer");
	answer("200 OK", "{\"access_token\": \"SECRETACCESS\", "
	    "\"token_type\": 1}");
	assert_fails(url, DM_E_TEMP, "token_type is not a string");
	answer("200 OK", "{\"access_token\": \"SECRETACCESS\", "
	    "\"expires_in\": 0}");
	assert_fails(url, DM_E_TEMP, "expires_in is not a positive number");
	answer("200 OK", "{\"access_token\": \"SECRETACCESS\", "
	    "\"expires_in\": \"soon\"}");
	assert_fails(url, DM_E_TEMP, "expires_in");
	answer("200 OK", "{\"access_token\": \"SECRETACCESS\", "
	    "\"access_token\": \"SECRETACCESS2\"}");
	assert_fails(url, DM_E_TEMP, "is not JSON");
}

static void
test_token_too_long(void **state)
{
	static char body[10000];
	size_t len;

	len = (size_t)snprintf(body, sizeof(body), "{\"access_token\": \"");
	memset(body + len, 'a', 8192);
	snprintf(body + len + 8192, sizeof(body) - len - 8192, "\"}");
	answer("200 OK", body);
	assert_fails(url, DM_E_TEMP, "8192 bytes long");
}

static void
test_oversized(void **state)
{
	static char body[100 * 1024];

	memset(body, ' ', sizeof(body) - 1);
	memcpy(body, "{\"access_token\": \"x\"}", 21);
	body[sizeof(body) - 1] = '\0';
	answer("200 OK", body);
	assert_fails(url, DM_E_TEMP, "larger than 65536 bytes");

	/* No Content-Length: the write callback stops it. */
	pthread_mutex_lock(&plain.lock);
	plain.answer_len = (size_t)snprintf(plain.answer,
	    sizeof(plain.answer), "HTTP/1.1 200 OK\r\nConnection: close\r\n"
	    "\r\n%s", body);
	pthread_mutex_unlock(&plain.lock);
	assert_fails(url, DM_E_TEMP, "larger than 65536 bytes");
}

static void
test_refused_urls(void **state)
{
	unsigned conns = connections(&plain);
	struct oauth2_client c;
	struct oauth2_token t;
	struct dm_error err;
	char localhost[128];

	assert_fails("http://192.0.2.1/token", DM_E_USAGE, "refused");
	assert_fails("http://example.com/token", DM_E_USAGE,
	    "http://example.com/token");
	assert_fails("http://127.0.0.1.example.com/token", DM_E_USAGE,
	    "refused");
	assert_fails("http://[::2]/token", DM_E_USAGE, "refused");
	assert_fails("ftp://127.0.0.1/token", DM_E_USAGE, "not https");
	assert_fails("file:///etc/passwd", DM_E_USAGE, "not https");
	assert_fails("not a url", DM_E_USAGE, "OAuth2 token URL");
	/* The user name and password are not named. */
	assert_fails("http://user:" CLIENT_SECRET "@192.0.2.1/token?a=b",
	    DM_E_USAGE, "http://192.0.2.1/token:");
	assert_fails("", DM_E_USAGE, "no token URL");
	assert_int_equal(connections(&plain), conns);

	client_for(&c, url);
	c.refresh_token = "";
	memset(&t, 0, sizeof(t));
	assert_int_equal(oauth2_access_token(&c, &t, &err), -1);
	assert_int_equal(err.code, DM_E_USAGE);
	assert_int_equal(t.requests, 0);

	/* localhost is loopback. */
	answer("200 OK", "{\"access_token\": \"" GOOD_TOKEN "\"}");
	snprintf(localhost, sizeof(localhost), "http://localhost:%d/token",
	    plain.port);
	client_for(&c, localhost);
	memset(&t, 0, sizeof(t));
	assert_int_equal(oauth2_access_token(&c, &t, &err), 0);
	assert_string_equal(t.access_token, GOOD_TOKEN);
}

static void
test_https(void **state)
{
	gnutls_certificate_credentials_t tls;
	struct server secure;
	struct oauth2_client c;
	struct oauth2_token t;
	struct dm_error err;
	char https_url[128];

	assert_int_equal(make_cert(&ca_crt, &ca_key, "CN=dmarcd test CA",
	    NULL, NULL), 0);
	assert_int_equal(make_cert(&server_crt, &server_key,
	    "CN=127.0.0.1", ca_crt, ca_key), 0);
	assert_int_equal(make_cert(&other_crt, &other_key,
	    "CN=another CA", NULL, NULL), 0);
	assert_int_equal(write_pem(ca_file, ca_crt), 0);
	assert_int_equal(write_pem(other_ca_file, other_crt), 0);
	assert_int_equal(gnutls_certificate_allocate_credentials(&tls), 0);
	assert_int_equal(gnutls_certificate_set_x509_key(tls, &server_crt, 1,
	    server_key), 0);
	assert_int_equal(server_start(&secure, tls), 0);
	answer_with(&secure, "200 OK", "", "{\"access_token\": \""
	    GOOD_TOKEN "\", \"expires_in\": 3600}");
	snprintf(https_url, sizeof(https_url), "https://127.0.0.1:%d/token",
	    secure.port);

	client_for(&c, https_url);
	c.ca_file = ca_file;
	memset(&t, 0, sizeof(t));
	dm_error_clear(&err);
	if (oauth2_access_token(&c, &t, &err) != 0)
		print_message("# %s\n", err.msg);
	assert_string_equal(t.access_token, GOOD_TOKEN);
	assert_non_null(strstr(secure.request, "grant_type=refresh_token"));

	/* A CA that did not sign the server's certificate. */
	c.ca_file = other_ca_file;
	memset(&t, 0, sizeof(t));
	assert_int_equal(oauth2_access_token(&c, &t, &err), -1);
	print_message("# %s\n", err.msg);
	assert_int_equal(err.code, DM_E_TEMP);
	assert_non_null(strstr(err.msg, https_url));
	assert_string_equal(t.access_token, "");
	assert_int_equal(t.requests, 1);

	/* A CA file that is not there. */
	c.ca_file = "/nonexistent/ca.pem";
	assert_int_equal(oauth2_access_token(&c, &t, &err), -1);
	print_message("# %s\n", err.msg);
	assert_int_equal(err.code, DM_E_USAGE);

	server_stop(&secure);
	gnutls_certificate_free_credentials(tls);
	gnutls_x509_crt_deinit(ca_crt);
	gnutls_x509_crt_deinit(server_crt);
	gnutls_x509_crt_deinit(other_crt);
	gnutls_x509_privkey_deinit(ca_key);
	gnutls_x509_privkey_deinit(server_key);
	gnutls_x509_privkey_deinit(other_key);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_answer),
		cmocka_unit_test(test_no_client_secret),
		cmocka_unit_test(test_cache),
		cmocka_unit_test(test_expires_in_forms),
		cmocka_unit_test(test_invalid_grant),
		cmocka_unit_test(test_server_trouble),
		cmocka_unit_test(test_bad_answers),
		cmocka_unit_test(test_token_too_long),
		cmocka_unit_test(test_oversized),
		cmocka_unit_test(test_refused_urls),
		cmocka_unit_test(test_https),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
