/*
 * imap.c - an IMAP session: libetpan for IMAP, our own socket and GnuTLS
 * for the transport (see imap.h for why).
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <libetpan/libetpan.h>

#include "collector/imap.h"
#include "common/dl.h"

/* Every libetpan function this file calls; clist_* are macros. */
#define IMAP_SYMS(X, a)							\
	X(a, mailimap_new) X(a, mailimap_free) X(a, mailimap_connect)	\
	X(a, mailimap_set_timeout) X(a, mailimap_starttls)		\
	X(a, mailimap_capability) X(a, mailimap_capability_data_free)	\
	X(a, mailimap_has_extension) X(a, mailimap_has_authentication)	\
	X(a, mailimap_login) X(a, mailimap_authenticate)		\
	X(a, mailimap_oauth2_authenticate) X(a, mailimap_logout)	\
	X(a, mailimap_select) X(a, mailimap_uid_search)			\
	X(a, mailimap_search_key_new_uid) X(a, mailimap_search_key_free)	\
	X(a, mailimap_search_result_free) X(a, mailimap_set_new_interval)	\
	X(a, mailimap_set_new_empty) X(a, mailimap_set_add_single)	\
	X(a, mailimap_set_add_interval) X(a, mailimap_set_free)		\
	X(a, mailimap_fetch_type_new_fetch_att_list_empty)		\
	X(a, mailimap_fetch_type_new_fetch_att_list_add)		\
	X(a, mailimap_fetch_type_free) X(a, mailimap_fetch_att_new_uid)	\
	X(a, mailimap_fetch_att_new_rfc822_size)			\
	X(a, mailimap_fetch_att_new_body_peek_section)			\
	X(a, mailimap_fetch_att_new_body_peek_section_partial)		\
	X(a, mailimap_section_new) X(a, mailimap_uid_fetch)		\
	X(a, mailimap_fetch_list_free) X(a, mailimap_uid_move)		\
	X(a, mailimap_uid_copy) X(a, mailimap_flag_list_new_empty)	\
	X(a, mailimap_flag_list_add) X(a, mailimap_flag_new_deleted)	\
	X(a, mailimap_store_att_flags_new_add_flags_silent)		\
	X(a, mailimap_store_att_flags_free) X(a, mailimap_uid_store)	\
	X(a, mailimap_uid_expunge) X(a, mailimap_expunge)		\
	X(a, mailimap_create) X(a, mailimap_list)			\
	X(a, mailimap_list_result_free) X(a, mailimap_idle)		\
	X(a, mailimap_idle_done) X(a, mailimap_noop)			\
	X(a, mailstream_new) X(a, mailstream_low_new) X(a, mailstream_close)

static struct imap_api {
	DM_DL_FIELDS(IMAP_SYMS)
} etp;
static const struct dm_dl_sym imap_syms[] = {
	DM_DL_SYMS(struct imap_api, IMAP_SYMS)
};
static struct dm_dl_lib imap_lib = DM_DL_LIB(LIBETPAN_SONAME,
    "to collect mail over IMAP", imap_syms, &etp);

#define TLS_SYMS(X, a)							\
	X(a, gnutls_init) X(a, gnutls_deinit)				\
	X(a, gnutls_set_default_priority) X(a, gnutls_credentials_set)	\
	X(a, gnutls_certificate_allocate_credentials)			\
	X(a, gnutls_certificate_free_credentials)			\
	X(a, gnutls_certificate_set_x509_trust_file)			\
	X(a, gnutls_certificate_set_x509_system_trust)			\
	X(a, gnutls_server_name_set) X(a, gnutls_session_set_verify_cert)	\
	X(a, gnutls_session_get_verify_cert_status)			\
	X(a, gnutls_transport_set_int2) X(a, gnutls_handshake)		\
	X(a, gnutls_handshake_set_timeout) X(a, gnutls_error_is_fatal)	\
	X(a, gnutls_strerror) X(a, gnutls_record_recv)			\
	X(a, gnutls_record_send) X(a, gnutls_record_check_pending)	\
	X(a, gnutls_bye) X(a, gnutls_record_get_direction)

static struct tls_api {
	DM_DL_FIELDS(TLS_SYMS)
} tls;
static const struct dm_dl_sym tls_syms[] = {
	DM_DL_SYMS(struct tls_api, TLS_SYMS)
};
static struct dm_dl_lib tls_lib = DM_DL_LIB(GNUTLS_SONAME,
    "to verify IMAP servers' certificates", tls_syms, &tls);

#define IMAP_OK(r) ((r) == MAILIMAP_NO_ERROR || \
	(r) == MAILIMAP_NO_ERROR_AUTHENTICATED || \
	(r) == MAILIMAP_NO_ERROR_NON_AUTHENTICATED)

/* The transport under libetpan: a socket, with TLS once it is on. */
struct link {
	int fd;
	gnutls_session_t tls;	/* NULL: plain */
	int timeout_ms;
};

struct imap_conn {
	mailimap *imap;
	struct link *link;	/* owned by imap's stream once link_owned */
	int link_owned;
	gnutls_certificate_credentials_t cred;
	char name[300];
	int auth_refused;
	int idling;
	int warned_uidplus;
	void (*warn)(void *ctx, const char *text);
	void *warn_ctx;
};

/* ---- the stream driver ---- */

static volatile sig_atomic_t *stop_flag;

void
imap_set_stop_flag(volatile sig_atomic_t *flag)
{
	stop_flag = flag;
}

static int
wait_fd(struct link *l, short events)
{
	struct pollfd pfd = { l->fd, events, 0 };
	int r;

	do
		r = poll(&pfd, 1, l->timeout_ms);
	while (r < 0 && errno == EINTR && (stop_flag == NULL || !*stop_flag));
	return r > 0 ? 0 : -1;
}

static ssize_t
link_read(mailstream_low *s, void *buf, size_t len)
{
	struct link *l = s->data;
	ssize_t r;

	for (;;) {
		if (l->tls == NULL || tls.gnutls_record_check_pending(l->tls)
		    == 0) {
			if (wait_fd(l, POLLIN) != 0)
				return -1;
		}
		if (l->tls == NULL) {
			r = recv(l->fd, buf, len, 0);
			if (r < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			return r;
		}
		r = tls.gnutls_record_recv(l->tls, buf, len);
		if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
			continue;
		if (r == GNUTLS_E_PREMATURE_TERMINATION)
			return 0;
		return r < 0 ? -1 : r;
	}
}

static ssize_t
link_write(mailstream_low *s, const void *buf, size_t len)
{
	struct link *l = s->data;
	ssize_t r;

	for (;;) {
		if (l->tls == NULL) {
			if (wait_fd(l, POLLOUT) != 0)
				return -1;
			r = send(l->fd, buf, len, MSG_NOSIGNAL);
			if (r < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			return r;
		}
		r = tls.gnutls_record_send(l->tls, buf, len);
		if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
			if (wait_fd(l, POLLOUT) != 0)
				return -1;
			continue;
		}
		return r < 0 ? -1 : r;
	}
}

static int
link_close(mailstream_low *s)
{
	struct link *l = s->data;

	if (l->tls != NULL) {
		tls.gnutls_deinit(l->tls);
		l->tls = NULL;
	}
	if (l->fd >= 0) {
		close(l->fd);
		l->fd = -1;
	}
	return 0;
}

static int
link_fd(mailstream_low *s)
{
	return ((struct link *)s->data)->fd;
}

static void
link_free(mailstream_low *s)
{
	link_close(s);
	free(s->data);
	free(s);
}

/* A link no stream took: closed and freed here. */
static void
link_release(struct link *l)
{
	if (l->tls != NULL)
		tls.gnutls_deinit(l->tls);
	if (l->fd >= 0)
		close(l->fd);
	free(l);
}

static struct mailstream_cancel *
link_cancel_get(mailstream_low *s)
{
	(void)s;
	return NULL;
}

static void
link_cancel(mailstream_low *s)
{
	(void)s;
}

static mailstream_low_driver link_driver = {
	link_read, link_write, link_close, link_fd, link_free, link_cancel,
	link_cancel_get, NULL, NULL, NULL, NULL
};

/* ---- helpers ---- */

int
imap_is_loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (strcasecmp(host, "localhost") == 0)
		return 1;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6);
	return 0;
}

/* The server's last words (its response text), for messages. */
static const char *
said(struct imap_conn *c)
{
	const char *t = c->imap != NULL ? c->imap->imap_response : NULL;

	return t != NULL && *t != '\0' ? t : "no answer";
}

static int
failed(struct imap_conn *c, int r, const char *what, struct dm_error *err)
{
	if (r == MAILIMAP_ERROR_STREAM || r == MAILIMAP_ERROR_CONNECTION_REFUSED)
		return dm_error_set(err, DM_E_TEMP, "%s: %s: the connection "
		    "broke or timed out", c->name, what);
	if (r == MAILIMAP_ERROR_PARSE && (c->imap == NULL ||
	    c->imap->imap_response == NULL))
		return dm_error_set(err, DM_E_TEMP, "%s: %s: no answer that "
		    "reads as IMAP (the server closed the connection, or sent "
		    "something else)", c->name, what);
	return dm_error_set(err, DM_E_TEMP, "%s: %s failed: %s", c->name,
	    what, said(c));
}

static int
connect_tcp(struct imap_conn *c, const char *host, unsigned port, int ms,
    struct dm_error *err)
{
	struct addrinfo hints, *res = NULL, *ai;
	char service[16];
	int fd = -1, r, e = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_family = AF_UNSPEC;
	snprintf(service, sizeof(service), "%u", port);
	r = getaddrinfo(host, service, &hints, &res);
	if (r != 0)
		return dm_error_set(err, DM_E_TEMP, "%s: cannot resolve %s: %s",
		    c->name, host, gai_strerror(r));
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		struct pollfd pfd;
		socklen_t sl = sizeof(e);

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC |
		    SOCK_NONBLOCK, ai->ai_protocol);
		if (fd < 0) {
			e = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		e = errno;
		if (e == EINPROGRESS) {
			pfd.fd = fd;
			pfd.events = POLLOUT;
			do
				r = poll(&pfd, 1, ms);
			while (r < 0 && errno == EINTR);
			if (r == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &e,
			    &sl) == 0 && e == 0)
				break;
			if (r == 0)
				e = ETIMEDOUT;
		}
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return dm_error_set(err, DM_E_TEMP, "%s: cannot connect: %s",
		    c->name, strerror(e != 0 ? e : ECONNREFUSED));
	return fd;
}

/* Why GnuTLS refused the certificate, in words. */
static void
verify_why(unsigned status, char *out, size_t size)
{
	static const struct {
		unsigned bit;
		const char *text;
	} why[] = {
		{ GNUTLS_CERT_UNEXPECTED_OWNER, "it is not for this host name" },
		{ GNUTLS_CERT_SIGNER_NOT_FOUND, "its issuer is not a trusted "
		    "CA (ca_file or the system store)" },
		{ GNUTLS_CERT_EXPIRED, "it has expired" },
		{ GNUTLS_CERT_NOT_ACTIVATED, "it is not valid yet" },
		{ GNUTLS_CERT_REVOKED, "it is revoked" },
		{ GNUTLS_CERT_INSECURE_ALGORITHM, "it is signed with an "
		    "insecure algorithm" },
		{ GNUTLS_CERT_SIGNER_NOT_CA, "its issuer is not a CA" },
		{ GNUTLS_CERT_SIGNATURE_FAILURE, "its signature is wrong" },
		{ GNUTLS_CERT_PURPOSE_MISMATCH, "it is not for a TLS server" },
	};
	size_t i, n = 0;

	out[0] = '\0';
	for (i = 0; i < sizeof(why) / sizeof(why[0]); i++)
		if ((status & why[i].bit) && n < size)
			n += (size_t)snprintf(out + n, size - n, "%s%s",
			    n ? "; " : "", why[i].text);
	if (n == 0)
		snprintf(out, size, "it is not trusted (status 0x%x)", status);
}

/* TLS on the link's socket, the server verified; before any IMAP byte. */
static int
start_tls(struct imap_conn *c, const struct imap_params *p,
    struct dm_error *err)
{
	struct link *l = c->link;
	gnutls_session_t s;
	int r;

	r = tls.gnutls_certificate_allocate_credentials(&c->cred);
	if (r < 0)
		return dm_error_set(err, DM_E_NOMEM, "%s: TLS: %s", c->name,
		    tls.gnutls_strerror(r));
	if (p->ca_file != NULL && p->ca_file[0] != '\0') {
		r = tls.gnutls_certificate_set_x509_trust_file(c->cred,
		    p->ca_file, GNUTLS_X509_FMT_PEM);
		if (r <= 0)
			return dm_error_set(err, DM_E_USAGE, "%s: ca_file %s: "
			    "%s", c->name, p->ca_file, r == 0 ? "no "
			    "certificate in it" : tls.gnutls_strerror(r));
	} else {
		r = tls.gnutls_certificate_set_x509_system_trust(c->cred);
		if (r <= 0 && p->tls_verify)
			return dm_error_set(err, DM_E_USAGE, "%s: the system "
			    "CA store is empty or unreadable (%s); install "
			    "ca-certificates or set ca_file", c->name, r == 0 ?
			    "no certificates" : tls.gnutls_strerror(r));
	}
	r = tls.gnutls_init(&s, GNUTLS_CLIENT);
	if (r < 0)
		return dm_error_set(err, DM_E_NOMEM, "%s: TLS: %s", c->name,
		    tls.gnutls_strerror(r));
	l->tls = s;
	if ((r = tls.gnutls_set_default_priority(s)) < 0 ||
	    (r = tls.gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE,
	    c->cred)) < 0)
		return dm_error_set(err, DM_E_TEMP, "%s: TLS: %s", c->name,
		    tls.gnutls_strerror(r));
	/* SNI takes a DNS name, never an address. */
	{
		struct in6_addr a;

		if (inet_pton(AF_INET, p->host, &a) != 1 &&
		    inet_pton(AF_INET6, p->host, &a) != 1)
			tls.gnutls_server_name_set(s, GNUTLS_NAME_DNS, p->host,
			    strlen(p->host));
	}
	if (p->tls_verify)
		tls.gnutls_session_set_verify_cert(s, p->host, 0);
	else if (p->warn != NULL) {
		char text[700];

		snprintf(text, sizeof(text), "%s: tls_verify = no: the "
		    "server's certificate is NOT checked; anyone on the path "
		    "can read the password and the mail", c->name);
		p->warn(p->warn_ctx, text);
	}
	tls.gnutls_transport_set_int2(s, l->fd, l->fd);
	tls.gnutls_handshake_set_timeout(s, (unsigned)l->timeout_ms);
	do {
		r = tls.gnutls_handshake(s);
		if (r == GNUTLS_E_AGAIN && wait_fd(l,
		    tls.gnutls_record_get_direction(s) ? POLLOUT : POLLIN)
		    != 0) {
			r = GNUTLS_E_TIMEDOUT;
			break;
		}
	} while (r < 0 && !tls.gnutls_error_is_fatal(r));
	if (r == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR) {
		char why[300];

		verify_why(tls.gnutls_session_get_verify_cert_status(s), why,
		    sizeof(why));
		return dm_error_set(err, DM_E_TEMP, "%s: certificate "
		    "verification failed for %s: %s; nothing was sent",
		    c->name, p->host, why);
	}
	if (r < 0)
		return dm_error_set(err, DM_E_TEMP, "%s: TLS handshake "
		    "failed: %s", c->name, tls.gnutls_strerror(r));
	return 0;
}

static int
login(struct imap_conn *c, const struct imap_params *p, struct dm_error *err)
{
	mailimap *im = c->imap;
	int auth = p->auth, r;
	const char *how;

	/*
	 * auto: LOGIN, which every server takes over TLS and which needs no
	 * SASL plugin on this side; AUTHENTICATE PLAIN (Cyrus SASL's plain
	 * plugin, libsasl2-modules) only where the server disables LOGIN.
	 */
	if (auth == DM_AUTH_AUTO)
		auth = p->oauth2_token != NULL ? DM_AUTH_XOAUTH2 :
		    etp.mailimap_has_extension(im, "LOGINDISABLED") &&
		    etp.mailimap_has_authentication(im, "PLAIN") ?
		    DM_AUTH_PLAIN : DM_AUTH_LOGIN;
	switch (auth) {
	case DM_AUTH_XOAUTH2:
		how = "AUTHENTICATE XOAUTH2";
		if (p->oauth2_token == NULL)
			return dm_error_set(err, DM_E_USAGE, "%s: XOAUTH2 "
			    "without an access token", c->name);
		r = etp.mailimap_oauth2_authenticate(im, p->user,
		    p->oauth2_token);
		break;
	case DM_AUTH_PLAIN:
		how = "AUTHENTICATE PLAIN";
		im->imap_response = NULL;	/* see below */
		r = etp.mailimap_authenticate(im, "PLAIN", p->host, NULL, NULL,
		    p->user, p->user, p->password != NULL ? p->password : "",
		    NULL);
		break;
	default:
		how = "LOGIN";
		r = etp.mailimap_login(im, p->user, p->password != NULL ?
		    p->password : "");
		break;
	}
	if (IMAP_OK(r))
		return 0;
	if (r == MAILIMAP_ERROR_STREAM)
		return failed(c, r, how, err);
	/*
	 * No answer parsed: Cyrus SASL could not start PLAIN on this side,
	 * nothing was sent. (imap_response points into libetpan's buffer;
	 * parse_response() clears it the same way.)
	 */
	if (auth == DM_AUTH_PLAIN && im->imap_response == NULL)
		return dm_error_set(err, DM_E_USAGE, "%s: AUTHENTICATE PLAIN "
		    "cannot start here: Cyrus SASL has no PLAIN mechanism "
		    "(Debian: install libsasl2-modules), or set auth = login",
		    c->name);
	c->auth_refused = 1;
	return dm_error_set(err, DM_E_TEMP, "%s: %s as %s refused: %s",
	    c->name, how, p->user, said(c));
}

static int
refresh_caps(struct imap_conn *c, struct dm_error *err)
{
	struct mailimap_capability_data *cap = NULL;
	int r = etp.mailimap_capability(c->imap, &cap);

	if (!IMAP_OK(r))
		return failed(c, r, "CAPABILITY", err);
	etp.mailimap_capability_data_free(cap);
	return 0;
}

int
imap_open(struct imap_conn **c_r, const struct imap_params *p,
    struct dm_error *err)
{
	struct imap_conn *c;
	mailstream_low *low;
	mailstream *stream;
	unsigned port = p->port;
	int r, fd;

	*c_r = NULL;
	if (port == 0)
		port = p->tls == DM_TLS_IMAPS ? 993 : 143;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return dm_error_set(err, DM_E_NOMEM, "out of memory");
	*c_r = c;
	snprintf(c->name, sizeof(c->name), "%s:%u", p->host, port);
	c->warn = p->warn;
	c->warn_ctx = p->warn_ctx;
	if (p->tls == DM_TLS_NONE && !p->tls_none_explicit &&
	    !imap_is_loopback(p->host))
		return dm_error_set(err, DM_E_USAGE, "%s: plain IMAP (no TLS) "
		    "only to a loopback address, or with tls = none",
		    c->name);
	if (dm_dl_need(&imap_lib, err) != 0 || (p->tls != DM_TLS_NONE &&
	    dm_dl_need(&tls_lib, err) != 0))
		return -1;
	c->link = calloc(1, sizeof(*c->link));
	if (c->link == NULL)
		return dm_error_set(err, DM_E_NOMEM, "out of memory");
	c->link->fd = -1;
	c->link->timeout_ms = (int)(p->timeout_s > 0 ? p->timeout_s : 60) *
	    1000;
	fd = connect_tcp(c, p->host, port, c->link->timeout_ms, err);
	if (fd < 0)
		return -1;
	c->link->fd = fd;
	if (p->tls == DM_TLS_IMAPS && start_tls(c, p, err) != 0)
		return -1;
	c->imap = etp.mailimap_new(0, NULL);
	low = c->imap != NULL ? etp.mailstream_low_new(c->link, &link_driver)
	    : NULL;
	if (low == NULL)
		return dm_error_set(err, DM_E_NOMEM, "out of memory");
	stream = etp.mailstream_new(low, 8192);
	if (stream == NULL) {
		free(low);
		return dm_error_set(err, DM_E_NOMEM, "out of memory");
	}
	/* The stream (and the link with it) belongs to imap from here. */
	c->link_owned = 1;
	etp.mailimap_set_timeout(c->imap, (time_t)(p->timeout_s > 0 ?
	    p->timeout_s : 60));
	r = etp.mailimap_connect(c->imap, stream);
	if (!IMAP_OK(r))
		return failed(c, r, "the greeting", err);
	if (p->tls == DM_TLS_STARTTLS) {
		if (refresh_caps(c, err) != 0)
			return -1;
		if (!etp.mailimap_has_extension(c->imap, "STARTTLS"))
			return dm_error_set(err, DM_E_TEMP, "%s: the server "
			    "does not offer STARTTLS; nothing was sent",
			    c->name);
		r = etp.mailimap_starttls(c->imap);
		/*
		 * Bytes after the answer would pass for TLS-protected.
		 * Debian's libetpan (CVE-2020-15953) fails STARTTLS itself
		 * then, with the OK's text: say what it is first.
		 */
		if (c->imap->imap_stream != NULL &&
		    c->imap->imap_stream->read_buffer_len > 0)
			return dm_error_set(err, DM_E_TEMP, "%s: the server "
			    "sent data after its STARTTLS answer, before the "
			    "handshake (an injection attempt?); refused",
			    c->name);
		if (!IMAP_OK(r))
			return failed(c, r, "STARTTLS", err);
		if (start_tls(c, p, err) != 0)
			return -1;
	}
	if (refresh_caps(c, err) != 0 || login(c, p, err) != 0)
		return -1;
	/* After login the capabilities may change (MOVE, IDLE). */
	return refresh_caps(c, err);
}

void
imap_abandon(struct imap_conn *c)
{
	if (c == NULL)
		return;
	if (c->imap != NULL) {
		/* mailimap_free() would LOGOUT and wait for the answer of a
		 * server that may be gone: close the stream first. */
		if (c->imap->imap_stream != NULL) {
			etp.mailstream_close(c->imap->imap_stream);
			c->imap->imap_stream = NULL;
		} else if (!c->link_owned && c->link != NULL)
			link_release(c->link);
		etp.mailimap_free(c->imap);
	} else if (c->link != NULL)
		link_release(c->link);
	if (c->cred != NULL)
		tls.gnutls_certificate_free_credentials(c->cred);
	free(c);
}

void
imap_close(struct imap_conn *c)
{
	if (c == NULL)
		return;
	if (c->imap != NULL && c->imap->imap_state >= MAILIMAP_STATE_AUTHENTICATED
	    && !c->idling)
		etp.mailimap_logout(c->imap);
	imap_abandon(c);
}

int
imap_auth_refused(const struct imap_conn *c)
{
	return c != NULL && c->auth_refused;
}

const char *
imap_name(const struct imap_conn *c)
{
	return c->name;
}

int
imap_has_idle(struct imap_conn *c)
{
	return etp.mailimap_has_extension(c->imap, "IDLE");
}

int
imap_has_move(struct imap_conn *c)
{
	return etp.mailimap_has_extension(c->imap, "MOVE");
}

int
imap_select(struct imap_conn *c, const char *mailbox, uint32_t *uidvalidity_r,
    struct dm_error *err)
{
	int r = etp.mailimap_select(c->imap, mailbox);

	if (!IMAP_OK(r))
		return dm_error_set(err, DM_E_TEMP, "%s: SELECT %s failed: %s",
		    c->name, mailbox, r == MAILIMAP_ERROR_STREAM ?
		    "the connection broke" : said(c));
	if (c->imap->imap_selection_info == NULL ||
	    c->imap->imap_selection_info->sel_uidvalidity == 0)
		return dm_error_set(err, DM_E_TEMP, "%s: %s has no UIDVALIDITY",
		    c->name, mailbox);
	*uidvalidity_r = c->imap->imap_selection_info->sel_uidvalidity;
	return 0;
}

int
imap_ensure_folder(struct imap_conn *c, const char *folder,
    struct dm_error *err)
{
	clist *list = NULL;
	int r, found;

	r = etp.mailimap_list(c->imap, "", folder, &list);
	if (!IMAP_OK(r))
		return failed(c, r, "LIST", err);
	found = list != NULL && clist_begin(list) != NULL;
	if (list != NULL)
		etp.mailimap_list_result_free(list);
	if (found)
		return 0;
	r = etp.mailimap_create(c->imap, folder);
	if (!IMAP_OK(r)) {
		char what[300];

		snprintf(what, sizeof(what), "CREATE %s", folder);
		return failed(c, r, what, err);
	}
	return 0;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

int
imap_search_after(struct imap_conn *c, uint32_t uid, uint32_t **uids_r,
    size_t *n_r, struct dm_error *err)
{
	struct mailimap_set *set;
	struct mailimap_search_key *key;
	clist *res = NULL;
	clistiter *it;
	uint32_t *uids;
	size_t n = 0;
	int r;

	*uids_r = NULL;
	*n_r = 0;
	if (uid == UINT32_MAX)
		return 0;
	set = etp.mailimap_set_new_interval(uid + 1, 0);
	key = set != NULL ? etp.mailimap_search_key_new_uid(set) : NULL;
	if (key == NULL) {
		if (set != NULL)
			etp.mailimap_set_free(set);
		return dm_error_set(err, DM_E_NOMEM, "out of memory");
	}
	r = etp.mailimap_uid_search(c->imap, NULL, key, &res);
	etp.mailimap_search_key_free(key);
	if (!IMAP_OK(r))
		return failed(c, r, "UID SEARCH", err);
	uids = malloc((res != NULL ? (size_t)clist_count(res) : 0) *
	    sizeof(*uids) + 1);
	if (uids == NULL) {
		etp.mailimap_search_result_free(res);
		return dm_error_set(err, DM_E_NOMEM, "out of memory");
	}
	for (it = res != NULL ? clist_begin(res) : NULL; it != NULL;
	    it = clist_next(it)) {
		uint32_t u = *(uint32_t *)clist_content(it);

		/* "N:*" always matches the highest UID, even below N. */
		if (u > uid)
			uids[n++] = u;
	}
	if (res != NULL)
		etp.mailimap_search_result_free(res);
	qsort(uids, n, sizeof(*uids), cmp_u32);
	if (n == 0) {
		free(uids);
		uids = NULL;
	}
	*uids_r = uids;
	*n_r = n;
	return 0;
}

/* UID and size, or body bytes, of one fetched message. */
struct fetched {
	uint32_t uid;
	uint64_t size;
	const char *body;
	size_t body_len;
	int has_body;
	int has_size;
};

static void
fetched_of(struct mailimap_msg_att *ma, struct fetched *f)
{
	clistiter *i;

	memset(f, 0, sizeof(*f));
	for (i = clist_begin(ma->att_list); i != NULL; i = clist_next(i)) {
		struct mailimap_msg_att_item *it = clist_content(i);
		struct mailimap_msg_att_static *st;

		if (it->att_type != MAILIMAP_MSG_ATT_ITEM_STATIC)
			continue;
		st = it->att_data.att_static;
		switch (st->att_type) {
		case MAILIMAP_MSG_ATT_UID:
			f->uid = st->att_data.att_uid;
			break;
		case MAILIMAP_MSG_ATT_RFC822_SIZE:
			f->size = st->att_data.att_rfc822_size;
			f->has_size = 1;
			break;
		case MAILIMAP_MSG_ATT_BODY_SECTION:
			f->body = st->att_data.att_body_section->sec_body_part;
			f->body_len = st->att_data.att_body_section->sec_length;
			f->has_body = 1;
			break;
		default:
			break;
		}
	}
}

static struct mailimap_set *
set_of(const uint32_t *uids, size_t n)
{
	struct mailimap_set *set = etp.mailimap_set_new_empty();
	size_t i, j;

	for (i = 0; set != NULL && i < n; i = j) {
		/* runs of consecutive UIDs as one interval */
		for (j = i + 1; j < n && uids[j] == uids[j - 1] + 1; j++)
			;
		if ((j - i == 1 ? etp.mailimap_set_add_single(set, uids[i]) :
		    etp.mailimap_set_add_interval(set, uids[i], uids[j - 1]))
		    != MAILIMAP_NO_ERROR) {
			etp.mailimap_set_free(set);
			return NULL;
		}
	}
	return set;
}

/* UID FETCH set (UID RFC822.SIZE [BODY.PEEK[]<off.len>]). */
static int
uid_fetch(struct imap_conn *c, const uint32_t *uids, size_t n, int body,
    int partial, uint32_t off, uint32_t len, clist **res,
    struct dm_error *err)
{
	struct mailimap_set *set = set_of(uids, n);
	struct mailimap_fetch_type *ft;
	struct mailimap_fetch_att *a;
	int r;

	*res = NULL;
	ft = set != NULL ?
	    etp.mailimap_fetch_type_new_fetch_att_list_empty() : NULL;
	if (ft == NULL) {
		if (set != NULL)
			etp.mailimap_set_free(set);
		return dm_error_set(err, DM_E_NOMEM, "out of memory");
	}
	etp.mailimap_fetch_type_new_fetch_att_list_add(ft,
	    etp.mailimap_fetch_att_new_uid());
	etp.mailimap_fetch_type_new_fetch_att_list_add(ft,
	    etp.mailimap_fetch_att_new_rfc822_size());
	if (body) {
		struct mailimap_section *sec = etp.mailimap_section_new(NULL);

		a = partial ?
		    etp.mailimap_fetch_att_new_body_peek_section_partial(sec,
		    off, len) : etp.mailimap_fetch_att_new_body_peek_section(
		    sec);
		etp.mailimap_fetch_type_new_fetch_att_list_add(ft, a);
	}
	r = etp.mailimap_uid_fetch(c->imap, set, ft, res);
	etp.mailimap_fetch_type_free(ft);
	etp.mailimap_set_free(set);
	if (!IMAP_OK(r)) {
		*res = NULL;
		return failed(c, r, "UID FETCH", err);
	}
	return 0;
}

/* Whether the message uid is still in the selected mailbox. */
static int
still_there(struct imap_conn *c, uint32_t uid, int *there_r,
    struct dm_error *err)
{
	struct mailimap_set *set = etp.mailimap_set_new_empty();
	struct mailimap_search_key *key;
	clist *res = NULL;
	clistiter *it;
	int r;

	*there_r = 0;
	if (set == NULL || etp.mailimap_set_add_single(set, uid) !=
	    MAILIMAP_NO_ERROR) {
		if (set != NULL)
			etp.mailimap_set_free(set);
		return dm_error_set(err, DM_E_NOMEM, "out of memory");
	}
	key = etp.mailimap_search_key_new_uid(set);
	if (key == NULL) {
		etp.mailimap_set_free(set);
		return dm_error_set(err, DM_E_NOMEM, "out of memory");
	}
	r = etp.mailimap_uid_search(c->imap, NULL, key, &res);
	etp.mailimap_search_key_free(key);
	if (!IMAP_OK(r))
		return failed(c, r, "UID SEARCH", err);
	for (it = res != NULL ? clist_begin(res) : NULL; it != NULL;
	    it = clist_next(it))
		if (*(uint32_t *)clist_content(it) == uid)
			*there_r = 1;
	if (res != NULL)
		etp.mailimap_search_result_free(res);
	return 0;
}

/*
 * A message the server did not send: gone (expunged meanwhile: skip it,
 * 0), or there all the same (a FETCH answered NO in part): an error, so
 * that nothing after it is stored and the mailbox's mark stays below it.
 */
static int
not_sent(struct imap_conn *c, uint32_t uid, const char *said_before,
    struct dm_error *err)
{
	char before[256];
	int there;

	/* said_before points into libetpan's buffer: the search reuses it. */
	snprintf(before, sizeof(before), "%s", said_before);
	if (still_there(c, uid, &there, err) != 0)
		return -1;
	if (!there)
		return 0;
	return dm_error_set(err, DM_E_TEMP, "%s: UID %" PRIu32 " is there "
	    "but the server did not send it (%s); it and what comes after "
	    "it are left for the next pass", c->name, uid, before);
}

/* Index of uid in the ascending uids[0..n), or -1. */
static ssize_t
find_uid(const uint32_t *uids, size_t n, uint32_t uid)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (uids[mid] == uid)
			return (ssize_t)mid;
		if (uids[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/*
 * match_lines - line[k] = the FETCH line of uids[k] (ascending) in res,
 * or NULL: only what was asked, once each (a server may add FETCH lines
 * of its own, flag changes with their UID), and only a line that answers
 * (with the body, or with RFC822.SIZE).
 */
static void
match_lines(clist *res, const uint32_t *uids, size_t n, int body,
    struct mailimap_msg_att **line)
{
	struct fetched f;
	clistiter *i;
	ssize_t k;

	memset(line, 0, n * sizeof(*line));
	for (i = res != NULL ? clist_begin(res) : NULL; i != NULL;
	    i = clist_next(i)) {
		fetched_of(clist_content(i), &f);
		if (f.uid == 0 || !(body ? f.has_body : f.has_size) ||
		    (k = find_uid(uids, n, f.uid)) < 0 || line[k] != NULL)
			continue;
		line[k] = clist_content(i);
	}
}

/*
 * One big message, in parts of IMAP_PART until a part comes short:
 * RFC822.SIZE is only an estimate on some servers (Exchange), so it
 * decides nothing here.
 */
static int
fetch_parts(struct imap_conn *c, uint32_t uid, const struct imap_fetch_cb *cb,
    struct dm_error *err)
{
	uint64_t off = 0;
	int begun = 0;

	for (;;) {
		struct fetched f;
		clist *res;
		clistiter *i;
		size_t got = 0;
		int found = 0, rc = 0;

		if (off > UINT32_MAX - IMAP_PART)
			return dm_error_set(err, DM_E_LIMIT, "%s: UID %" PRIu32
			    " is over 4 GiB", c->name, uid);
		if (uid_fetch(c, &uid, 1, 1, 1, (uint32_t)off, IMAP_PART, &res,
		    err) != 0)
			return -1;
		for (i = res != NULL ? clist_begin(res) : NULL; i != NULL;
		    i = clist_next(i)) {
			fetched_of(clist_content(i), &f);
			if (f.uid != uid || !f.has_body || found)
				continue;
			found = 1;
			got = f.body_len;
			if (!begun && cb->begin(cb->ctx, uid, 0, err) != 0)
				rc = -1;
			begun = 1;
			if (rc == 0 && got > 0 && cb->data(cb->ctx, f.body, got,
			    err) != 0)
				rc = -1;
		}
		if (res != NULL)
			etp.mailimap_fetch_list_free(res);
		if (rc != 0)
			return -1;
		if (!found) {
			if (begun)
				return dm_error_set(err, DM_E_TEMP, "%s: UID %"
				    PRIu32 " vanished while it was being "
				    "fetched", c->name, uid);
			return not_sent(c, uid, said(c), err);
		}
		if (got < IMAP_PART)
			break;
		off += got;
	}
	return cb->end(cb->ctx, err);
}

/* Bytes of small messages asked for in one UID FETCH (libetpan holds the
 * whole answer, and again as parsed). */
#define RUN_BYTES	(8U << 20)

/* Small messages uids[0..n) in one UID FETCH, delivered in UID order. */
static int
fetch_run(struct imap_conn *c, const uint32_t *uids, size_t n,
    const struct imap_fetch_cb *cb, struct dm_error *err)
{
	struct mailimap_msg_att **line;
	struct fetched f;
	clist *res = NULL;
	size_t j;
	int rc = -1;

	line = calloc(n, sizeof(*line));
	if (line == NULL)
		return dm_error_set(err, DM_E_NOMEM, "out of memory");
	if (uid_fetch(c, uids, n, 1, 0, 0, 0, &res, err) != 0)
		goto out;
	match_lines(res, uids, n, 1, line);
	for (j = 0; j < n; j++) {
		if (line[j] == NULL) {
			if (not_sent(c, uids[j], said(c), err) != 0)
				goto out;
			continue;
		}
		fetched_of(line[j], &f);
		if (cb->begin(cb->ctx, f.uid, f.body_len, err) != 0 ||
		    (f.body_len > 0 && cb->data(cb->ctx, f.body, f.body_len,
		    err) != 0) || cb->end(cb->ctx, err) != 0)
			goto out;
	}
	rc = 0;
out:
	if (res != NULL)
		etp.mailimap_fetch_list_free(res);
	free(line);
	return rc;
}

int
imap_fetch(struct imap_conn *c, const uint32_t *uids, size_t n,
    size_t max_whole, const struct imap_fetch_cb *cb, struct dm_error *err)
{
	clist *res = NULL;
	struct mailimap_msg_att **line = NULL;
	struct fetched f;
	uint64_t *size;
	unsigned char *seen;
	size_t j, k;
	uint64_t bytes;
	int rc = -1;

	if (n == 0)
		return 0;
	for (j = 1; j < n; j++)
		if (uids[j] <= uids[j - 1])
			return dm_error_set(err, DM_E_INTERNAL, "imap_fetch: "
			    "UIDs not ascending");
	size = calloc(n, sizeof(*size));
	seen = calloc(n, 1);
	line = calloc(n, sizeof(*line));
	if (size == NULL || seen == NULL || line == NULL) {
		dm_error_set(err, DM_E_NOMEM, "out of memory");
		goto out;
	}
	/* The sizes first: who fits in one FETCH, who comes in parts. */
	if (uid_fetch(c, uids, n, 0, 0, 0, 0, &res, err) != 0)
		goto out;
	match_lines(res, uids, n, 0, line);
	for (j = 0; j < n; j++)
		if (line[j] != NULL) {
			fetched_of(line[j], &f);
			seen[j] = 1;
			size[j] = f.size;
		}
	if (res != NULL)
		etp.mailimap_fetch_list_free(res);
	res = NULL;
	for (j = 0; j < n; j = k) {
		if (!seen[j]) {
			if (not_sent(c, uids[j], said(c), err) != 0)
				goto out;
			k = j + 1;
			continue;
		}
		if (size[j] > max_whole) {
			if (fetch_parts(c, uids[j], cb, err) != 0)
				goto out;
			k = j + 1;
			continue;
		}
		/* A run of small ones, up to RUN_BYTES. */
		bytes = 0;
		for (k = j; k < n && seen[k] && size[k] <= max_whole &&
		    (k == j || bytes + size[k] <= RUN_BYTES); k++)
			bytes += size[k];
		if (fetch_run(c, uids + j, k - j, cb, err) != 0)
			goto out;
	}
	rc = 0;
out:
	free(size);
	free(seen);
	free(line);
	return rc;
}

int
imap_move(struct imap_conn *c, const uint32_t *uids, size_t n,
    const char *folder, struct dm_error *err)
{
	struct mailimap_set *set;
	struct mailimap_flag_list *fl;
	struct mailimap_store_att_flags *sf;
	int r;

	if (n == 0)
		return 0;
	set = set_of(uids, n);
	if (set == NULL)
		return dm_error_set(err, DM_E_NOMEM, "out of memory");
	if (folder != NULL && imap_has_move(c)) {
		r = etp.mailimap_uid_move(c->imap, set, folder);
		etp.mailimap_set_free(set);
		return IMAP_OK(r) ? 0 : failed(c, r, "UID MOVE", err);
	}
	if (folder != NULL) {
		r = etp.mailimap_uid_copy(c->imap, set, folder);
		if (!IMAP_OK(r)) {
			etp.mailimap_set_free(set);
			return failed(c, r, "UID COPY", err);
		}
	}
	fl = etp.mailimap_flag_list_new_empty();
	sf = NULL;
	if (fl != NULL && etp.mailimap_flag_list_add(fl,
	    etp.mailimap_flag_new_deleted()) == MAILIMAP_NO_ERROR)
		sf = etp.mailimap_store_att_flags_new_add_flags_silent(fl);
	if (sf == NULL) {
		etp.mailimap_set_free(set);
		return dm_error_set(err, DM_E_NOMEM, "out of memory");
	}
	r = etp.mailimap_uid_store(c->imap, set, sf);
	etp.mailimap_store_att_flags_free(sf);
	if (!IMAP_OK(r)) {
		etp.mailimap_set_free(set);
		return failed(c, r, "UID STORE +FLAGS (\\Deleted)", err);
	}
	/*
	 * Without UIDPLUS there is no UID EXPUNGE, and EXPUNGE would also
	 * remove what other clients marked \Deleted: the messages stay,
	 * marked (and are not read again: their UIDs are behind the mark).
	 */
	if (!etp.mailimap_has_extension(c->imap, "UIDPLUS")) {
		etp.mailimap_set_free(set);
		if (!c->warned_uidplus && c->warn != NULL) {
			char text[700];

			snprintf(text, sizeof(text), "%s: the server has no "
			    "UIDPLUS: moved or stored messages are marked "
			    "\\Deleted but not expunged (EXPUNGE would also "
			    "remove other clients' deleted mail)", c->name);
			c->warn(c->warn_ctx, text);
		}
		c->warned_uidplus = 1;
		return 0;
	}
	r = etp.mailimap_uid_expunge(c->imap, set);
	etp.mailimap_set_free(set);
	return IMAP_OK(r) ? 0 : failed(c, r, "UID EXPUNGE", err);
}

int
imap_noop(struct imap_conn *c, struct dm_error *err)
{
	int r = etp.mailimap_noop(c->imap);

	return IMAP_OK(r) ? 0 : failed(c, r, "NOOP", err);
}

int
imap_idle_start(struct imap_conn *c, struct dm_error *err)
{
	int r;

	/* libetpan's IDLE writes to the selected mailbox's state: without
	 * one it would crash, so it is refused here. */
	if (c->imap->imap_selection_info == NULL)
		return dm_error_set(err, DM_E_INTERNAL, "IDLE: no mailbox is "
		    "selected");
	r = etp.mailimap_idle(c->imap);
	if (!IMAP_OK(r))
		return failed(c, r, "IDLE", err);
	c->idling = 1;
	return 0;
}

int
imap_idle_fd(struct imap_conn *c)
{
	return c->link->fd;
}

int
imap_idle_pending(struct imap_conn *c)
{
	return c->imap->imap_stream->read_buffer_len > 0 ||
	    (c->link->tls != NULL &&
	    tls.gnutls_record_check_pending(c->link->tls) > 0);
}

int
imap_idle_done(struct imap_conn *c, struct dm_error *err)
{
	int r;

	c->idling = 0;
	r = etp.mailimap_idle_done(c->imap);
	return IMAP_OK(r) ? 0 : failed(c, r, "IDLE DONE", err);
}
