/*
 * rdns.c - reverse DNS of the source addresses, forward-confirmed, with
 * c-ares; and the enrichment that stores it (see rdns.h).
 *
 * One c-ares channel, many queries in flight: an address is a small
 * state machine (PTR query, then one A or AAAA query per PTR name, all at
 * once) driven by c-ares callbacks; the loop starts addresses while fewer
 * than concurrency are in flight and waits with poll(2) on c-ares'
 * sockets (ares_getsock, so no FD_SETSIZE limit), never past the
 * deadline. Answers are read here, not with ares_parse_ptr_reply(),
 * because the TTLs (and the SOA of a negative answer) are needed and
 * c-ares' PTR parser drops them; ares_expand_name() does the name
 * decompression, with its bounds checks.
 *
 * c-ares gives each query `tries` rounds over the servers, the timeout
 * doubling each round: the per-try timeout is set so that all of them
 * together fit in the configured timeout. A server that does not answer
 * (or whose port is closed) makes c-ares try the next one; a SERVFAIL
 * or REFUSED answer is taken as it is (ARES_FLAG_NOCHECKRESP: without
 * it c-ares 1.18 ends such a query as ARES_ECONNREFUSED, which cannot be
 * told from a dead server), so it is not asked of the next server.
 *
 * rdns_query() (dmarcd check) and rdns_dmarc() (the tree walk) ask one
 * question through the same channel and loop (ask()); rdns_query()'s
 * answer is read by rdns_answer_parse() over answer_read(), its CNAME
 * chain included. No EDNS is sent: an answer over 512 bytes (a 4096-bit
 * DKIM key) comes back with TC set and c-ares asks again over TCP
 * (tests/integration/dnsquery.py checks both).
 */
#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "collector/rdns.h"
#include "common/align.h"
#include "common/config.h"
#include "store/store.h"

#define RDNS_TRIES		2	/* rounds over the servers */
#define RDNS_TRY_MIN_MS		100	/* shortest per-try timeout */
#define RDNS_ANSWER_RRS		64	/* records read from one answer */
#define RDNS_CHAIN_MAX		8	/* CNAMEs followed in an answer */
#define RDNS_WAIT_MAX_MS	200	/* poll at least this often */
#define RDNS_BG_DEADLINE_MAX_S	60	/* dmarcd run, per pass */

/* ---- the pure parts ---- */

static const char *const status_names[] = {
	[RDNS_OK] = "ok",
	[RDNS_UNCONFIRMED] = "unconfirmed",
	[RDNS_NXDOMAIN] = "nxdomain",
	[RDNS_NODATA] = "nodata",
	[RDNS_SERVFAIL] = "servfail",
	[RDNS_REFUSED] = "refused",
	[RDNS_TIMEOUT] = "timeout",
	[RDNS_ERROR] = "error",
};

const char *
rdns_status_name(enum rdns_status status)
{
	if ((unsigned)status >= sizeof(status_names) / sizeof(status_names[0]))
		return "error";
	return status_names[status];
}

static int
temporary(enum rdns_status status)
{
	return status == RDNS_TIMEOUT || status == RDNS_SERVFAIL ||
	    status == RDNS_REFUSED;
}

static unsigned
clamp(uint32_t value, unsigned lo, unsigned hi)
{
	return value < lo ? lo : value > hi ? hi : value;
}

unsigned
rdns_ttl_clamp(enum rdns_status status, uint32_t ttl, int has_ttl)
{
	switch (status) {
	case RDNS_OK:
	case RDNS_UNCONFIRMED:
		return clamp(has_ttl ? ttl : 0, RDNS_TTL_POS_MIN,
		    RDNS_TTL_POS_MAX);
	case RDNS_NXDOMAIN:
	case RDNS_NODATA:
		return clamp(has_ttl ? ttl : 0, RDNS_TTL_NEG_MIN,
		    RDNS_TTL_NEG_MAX);
	case RDNS_SERVFAIL:
	case RDNS_REFUSED:
	case RDNS_TIMEOUT:
		return RDNS_TTL_RETRY;
	case RDNS_ERROR:
		break;
	}
	return RDNS_TTL_ERROR;
}

int
rdns_name_normalize(const char *name, char *out, size_t size)
{
	size_t len = strlen(name), i, label = 0, labels = 1;
	int digits_only = 1;
	char c;

	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > RDNS_NAME_MAX || len >= size)
		return -1;
	for (i = 0; i < len; i++) {
		c = name[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c == '.') {
			/* An empty label, or one ending with '-'. */
			if (label == 0 || out[i - 1] == '-')
				return -1;
			label = 0;
			labels++;
			digits_only = 1;
			out[i] = c;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_'))
			return -1;
		if (c == '-' && label == 0)
			return -1;
		if (c < '0' || c > '9')
			digits_only = 0;
		if (++label > 63)
			return -1;
		out[i] = c;
	}
	if (label == 0 || out[len - 1] == '-' || labels < 2 || digits_only)
		return -1;
	out[len] = '\0';
	return 0;
}

/* parse_ip - ip as the address looked up: IPv4-mapped IPv6 as IPv4. */
static int
parse_ip(const char *ip, int *family, unsigned char addr[16])
{
	struct in6_addr v6;

	if (inet_pton(AF_INET, ip, addr) == 1) {
		*family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, ip, &v6) != 1)
		return -1;
	if (IN6_IS_ADDR_V4MAPPED(&v6)) {
		memcpy(addr, v6.s6_addr + 12, 4);
		*family = AF_INET;
	} else {
		memcpy(addr, v6.s6_addr, 16);
		*family = AF_INET6;
	}
	return 0;
}

static int
arpa_of(int family, const unsigned char *addr, char *out, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;
	int i;

	if (family == AF_INET)
		return (size_t)snprintf(out, size, "%u.%u.%u.%u.in-addr.arpa",
		    addr[3], addr[2], addr[1], addr[0]) < size ? 0 : -1;
	/* 32 nibbles, each "x.", then "ip6.arpa" */
	if (size < 64 + sizeof("ip6.arpa"))
		return -1;
	for (i = 15; i >= 0; i--) {
		out[n++] = hex[addr[i] & 0xf];
		out[n++] = '.';
		out[n++] = hex[addr[i] >> 4];
		out[n++] = '.';
	}
	memcpy(out + n, "ip6.arpa", sizeof("ip6.arpa"));
	return 0;
}

int
rdns_arpa_name(const char *ip, char *out, size_t size)
{
	unsigned char addr[16];
	int family;

	if (parse_ip(ip, &family, addr) != 0)
		return -1;
	return arpa_of(family, addr, out, size);
}

double
rdns_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- reading an answer ---- */

struct rr {
	char *owner;		/* ares_expand_name(); ares_free_string */
	int type;
	int authority;		/* in the authority section */
	uint32_t ttl;
	const unsigned char *rdata;
	int rdlen;
};

struct answer {
	const unsigned char *buf;
	int len;
	struct rr rrs[RDNS_ANSWER_RRS];
	size_t count;
	/* What was reached from the query name through CNAMEs. */
	const char *chain[RDNS_CHAIN_MAX + 1];
	size_t chain_count;
	uint32_t chain_ttl;
	int has_chain_ttl;
};

static unsigned
get16(const unsigned char *p)
{
	return ((unsigned)p[0] << 8) | p[1];
}

static uint32_t
get32(const unsigned char *p)
{
	uint32_t v = ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	    ((uint32_t)p[2] << 8) | p[3];

	/* RFC 2181 8: a TTL with the top bit set is read as 0. */
	return v & 0x80000000U ? 0 : v;
}

static void
answer_free(struct answer *a)
{
	size_t i;

	for (i = 0; i < a->count; i++)
		ares_free_string(a->rrs[i].owner);
	a->count = 0;
}

/*
 * answer_read - the answer and authority records of a DNS message (at
 * most RDNS_ANSWER_RRS), and the CNAME chain from qname; -1 if the
 * message is malformed.
 */
static int
answer_read(const unsigned char *buf, int len, const char *qname,
    int qtype, struct answer *a)
{
	const unsigned char *p, *end;
	unsigned qd, an, ns, i;
	long enclen;
	char *name;
	size_t k, j;
	int added;

	memset(a, 0, sizeof(*a));
	a->buf = buf;
	a->len = len;
	if (buf == NULL || len < HFIXEDSZ)
		return -1;
	p = buf + HFIXEDSZ;
	end = buf + len;
	qd = get16(buf + 4);
	an = get16(buf + 6);
	ns = get16(buf + 8);
	/* The question must be ours: c-ares does not check it with
	 * ARES_FLAG_NOCHECKRESP. */
	if (qd != 1)
		return -1;
	if (ares_expand_name(p, buf, len, &name, &enclen) != ARES_SUCCESS)
		return -1;
	i = strcasecmp(name, qname) != 0;
	ares_free_string(name);
	if (i || end - p < enclen + QFIXEDSZ ||
	    (int)get16(p + enclen) != qtype || get16(p + enclen + 2) != C_IN)
		return -1;
	p += enclen + QFIXEDSZ;
	for (i = 0; i < an + ns && a->count < RDNS_ANSWER_RRS; i++) {
		struct rr *r = &a->rrs[a->count];

		if (ares_expand_name(p, buf, len, &r->owner, &enclen) !=
		    ARES_SUCCESS)
			goto bad;
		a->count++;
		if (end - p < enclen + RRFIXEDSZ)
			goto bad;
		p += enclen;
		r->type = (int)get16(p);
		r->ttl = get32(p + 4);
		r->rdlen = (int)get16(p + 8);
		r->authority = i >= an;
		p += RRFIXEDSZ;
		if (end - p < r->rdlen)
			goto bad;
		r->rdata = p;
		p += r->rdlen;
	}
	/* The chain: the query name, and each CNAME target reached. */
	a->chain[a->chain_count++] = qname;
	do {
		added = 0;
		for (k = 0; k < a->count; k++) {
			struct rr *r = &a->rrs[k];

			if (r->authority || r->type != T_CNAME)
				continue;
			for (j = 0; j < a->chain_count; j++)
				if (strcasecmp(a->chain[j], r->owner) == 0)
					break;
			if (j == a->chain_count)
				continue;
			if (r->rdlen < 1 ||
			    ares_expand_name(r->rdata, buf, len, &name,
			    &enclen) != ARES_SUCCESS)
				goto bad;
			for (j = 0; j < a->chain_count; j++)
				if (strcasecmp(a->chain[j], name) == 0)
					break;
			if (j < a->chain_count ||
			    a->chain_count == RDNS_CHAIN_MAX + 1) {
				ares_free_string(name);
				continue;
			}
			/* Kept as the owner of a record: freed with it. */
			ares_free_string(r->owner);
			r->owner = name;
			r->type = -T_CNAME;	/* followed */
			a->chain[a->chain_count++] = name;
			if (!a->has_chain_ttl || r->ttl < a->chain_ttl)
				a->chain_ttl = r->ttl;
			a->has_chain_ttl = 1;
			added = 1;
		}
	} while (added);
	return 0;
bad:
	answer_free(a);
	return -1;
}

/* in_chain - whether a record's owner is the query name or reached. */
static int
in_chain(const struct answer *a, const struct rr *r)
{
	size_t j;

	if (r->type == -T_CNAME)
		return 0;	/* its owner field holds the target now */
	for (j = 0; j < a->chain_count; j++)
		if (strcasecmp(a->chain[j], r->owner) == 0)
			return 1;
	return 0;
}

/*
 * negative_ttl - RFC 2308 5: the TTL of a negative answer is the SOA's
 * TTL or its MINIMUM field, the smaller. 0 if there is no SOA.
 */
static int
negative_ttl(const struct answer *a, uint32_t *ttl)
{
	const unsigned char *p;
	long enclen;
	char *name;
	size_t k;
	int n;

	for (k = 0; k < a->count; k++) {
		const struct rr *r = &a->rrs[k];

		if (!r->authority || r->type != T_SOA)
			continue;
		p = r->rdata;
		for (n = 0; n < 2; n++) {	/* MNAME, RNAME */
			if (ares_expand_name(p, a->buf, a->len, &name,
			    &enclen) != ARES_SUCCESS)
				return 0;
			ares_free_string(name);
			p += enclen;
		}
		if (p + 20 > r->rdata + r->rdlen)
			return 0;
		*ttl = get32(p + 16);
		if (r->ttl < *ttl)
			*ttl = r->ttl;
		return 1;
	}
	return 0;
}

/* ---- one question's answer, any type (rdns_query) ---- */

static int
query_type(int type)
{
	return type == T_A || type == T_AAAA || type == T_MX ||
	    type == T_TXT || type == T_PTR || type == T_CNAME;
}

/*
 * name_lower - a name lower-cased, without its trailing dot, into out.
 * Not rdns_name_normalize(): a TXT owner (_dmarc, _domainkey), a null MX
 * ("") or an escaped byte are not host names, and the caller judges them.
 */
static int
name_lower(const char *name, char *out, size_t size)
{
	size_t len = strlen(name), i;

	if (len > 0 && name[len - 1] == '.' &&
	    (len < 2 || name[len - 2] != '\\'))
		len--;
	if (len > RDNS_NAME_MAX || len >= size)
		return -1;
	for (i = 0; i < len; i++)
		out[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ?
		    name[i] - 'A' + 'a' : name[i]);
	out[len] = '\0';
	return 0;
}

/* rr_name - the name at p, inside the rdata of r, into out; -1 if it is
 * malformed, runs past the rdata or does not fit. */
static int
rr_name(const struct answer *ans, const struct rr *r,
    const unsigned char *p, char *out, size_t size)
{
	char *name;
	long enclen;
	int rc;

	if (p >= r->rdata + r->rdlen)
		return -1;
	if (ares_expand_name(p, ans->buf, ans->len, &name, &enclen) !=
	    ARES_SUCCESS)
		return -1;
	rc = enclen > (r->rdata + r->rdlen) - p ? -1 :
	    name_lower(name, out, size);
	ares_free_string(name);
	return rc;
}

/* txt_take - a TXT record's character-strings joined (malloc'd) into
 * out; -1 when a length runs past the rdata, -2 out of memory. */
static int
txt_take(const unsigned char *rdata, int rdlen, struct rdns_rr *out)
{
	size_t total = 0, n;
	unsigned strings = 0;
	int i = 0;

	/* The bounds first: every length inside the rdata. */
	while (i < rdlen) {
		n = rdata[i];
		if ((int)n > rdlen - i - 1)
			return -1;
		total += n;
		i += 1 + (int)n;
		strings++;
	}
	out->txt = malloc(total + 1);
	if (out->txt == NULL)
		return -2;
	total = 0;
	i = 0;
	while (i < rdlen) {
		n = rdata[i++];
		memcpy(out->txt + total, rdata + i, n);
		total += n;
		i += (int)n;
		if (n > out->longest)
			out->longest = n;
	}
	/* A NUL inside stays: txt_len > strlen(txt) tells it. */
	out->txt[total] = '\0';
	out->txt_len = total;
	out->strings = strings;
	return 0;
}

/* rr_take - record r (of type type) into out: 0, -1 malformed, -2 out of
 * memory. */
static int
rr_take(const struct answer *ans, const struct rr *r, int type,
    struct rdns_rr *out)
{
	out->type = type;
	out->ttl = r->ttl;
	switch (type) {
	case T_A:
	case T_AAAA:
		if (r->rdlen != (type == T_A ? 4 : 16) ||
		    inet_ntop(type == T_A ? AF_INET : AF_INET6, r->rdata,
		    out->addr, sizeof(out->addr)) == NULL)
			return -1;
		return 0;
	case T_MX:
		if (r->rdlen < 3)
			return -1;
		out->pref = get16(r->rdata);
		return rr_name(ans, r, r->rdata + 2, out->name,
		    sizeof(out->name));
	case T_PTR:
		return rr_name(ans, r, r->rdata, out->name, sizeof(out->name));
	case T_TXT:
		return txt_take(r->rdata, r->rdlen, out);
	}
	return -1;
}

static int
mx_order(const void *x, const void *y)
{
	const struct rdns_rr *a = x, *b = y;

	if (a->pref != b->pref)
		return a->pref < b->pref ? -1 : 1;
	return strcmp(a->name, b->name);
}

void
rdns_answer_free(struct rdns_answer *a)
{
	size_t i;

	for (i = 0; i < a->count && i < RDNS_RR_MAX; i++) {
		free(a->rr[i].txt);
		a->rr[i].txt = NULL;
	}
	a->count = 0;
}

int
rdns_answer_parse(const unsigned char *buf, int len, const char *name,
    int type, struct rdns_answer *out)
{
	char qname[RDNS_NAME_MAX + 1];
	struct answer ans;
	const char *last;
	unsigned answers = 0;
	size_t k;
	int rcode, rc = 0;

	memset(out, 0, sizeof(*out));
	out->status = RDNS_ERROR;
	if (!query_type(type) || name_lower(name, qname, sizeof(qname)) != 0 ||
	    qname[0] == '\0' || buf == NULL || len < HFIXEDSZ)
		return 0;
	rcode = buf[3] & 0x0f;
	if (rcode == SERVFAIL || rcode == REFUSED) {
		/* Nothing else in it is needed (nor always there). */
		out->status = rcode == SERVFAIL ? RDNS_SERVFAIL : RDNS_REFUSED;
		return 0;
	}
	if ((rcode != NOERROR && rcode != NXDOMAIN) ||
	    answer_read(buf, len, qname, type, &ans) != 0)
		return 0;
	/* The CNAMEs followed: a dangling one is NXDOMAIN with them. */
	for (k = 1; k < ans.chain_count && out->cnames < RDNS_CNAMES; k++) {
		if (name_lower(ans.chain[k], out->cname[out->cnames],
		    sizeof(out->cname[0])) != 0)
			goto bad;
		out->cnames++;
	}
	last = ans.chain[ans.chain_count - 1];
	for (k = 0; k < ans.count; k++) {
		const struct rr *r = &ans.rrs[k];

		if (r->authority)
			continue;
		answers++;
		if (type == T_CNAME) {
			/* The first link: its owner field holds its target
			 * now (answer_read). */
			if (r->type != -T_CNAME || ans.chain_count < 2 ||
			    strcasecmp(r->owner, ans.chain[1]) != 0 ||
			    out->count > 0)
				continue;
			out->rr[0].type = T_CNAME;
			out->rr[0].ttl = r->ttl;
			memcpy(out->rr[0].name, out->cname[0],
			    sizeof(out->rr[0].name));
			out->count = 1;
			continue;
		}
		if (r->type != type || (strcasecmp(r->owner, qname) != 0 &&
		    strcasecmp(r->owner, last) != 0))
			continue;
		if (out->count == RDNS_RR_MAX) {
			out->truncated = 1;
			continue;
		}
		rc = rr_take(&ans, r, type, &out->rr[out->count]);
		if (rc != 0) {
			free(out->rr[out->count].txt);
			out->rr[out->count].txt = NULL;
			goto bad;
		}
		out->count++;
	}
	/* Records past what answer_read() reads, or a message cut short
	 * (TC) that c-ares did not ask again over TCP. */
	if (get16(buf + 6) > answers || (buf[2] & 0x02) != 0)
		out->truncated = 1;
	answer_free(&ans);
	if (type == T_MX && out->count > 1)
		qsort(out->rr, out->count, sizeof(out->rr[0]), mx_order);
	out->status = rcode == NXDOMAIN ? RDNS_NXDOMAIN :
	    out->count > 0 ? RDNS_OK : RDNS_NODATA;
	return 0;
bad:
	answer_free(&ans);
	rdns_answer_free(out);
	memset(out->cname, 0, sizeof(out->cname));
	out->cnames = 0;
	out->truncated = 0;
	out->status = RDNS_ERROR;
	return rc == -2 ? -1 : 0;
}

/* ---- the resolver ---- */

struct job;

struct forward {
	struct job *job;
	unsigned index;		/* in res->names */
};

struct job {
	struct rdns *r;
	struct rdns_result *res;
	int family;		/* of the lookups */
	unsigned char addr[16];
	char qname[80];
	uint32_t ptr_ttl;
	int has_ttl;
	unsigned forward_pending;
	enum rdns_status forward_fail;	/* RDNS_OK: none */
	int cancelled;
	unsigned char name_confirmed[RDNS_MAX_NAMES];
	struct forward forward[RDNS_MAX_NAMES];
};

struct rdns {
	ares_channel channel;
	int channel_ok;
	struct rdns_options opt;
	char servers[DM_CONFIG_SERVERS_MAX];
	int cancelling;
	size_t active;		/* addresses in flight */
	size_t queries;		/* queries in flight */
};

static void
finish(struct job *j, enum rdns_status status, uint32_t ttl, int has_ttl)
{
	j->res->status = status;
	j->res->ttl = rdns_ttl_clamp(status, ttl, has_ttl);
	j->res->done = 1;
	j->r->active--;
}

/* A failure c-ares reports as its status. */
static enum rdns_status
status_of(int ares_status)
{
	switch (ares_status) {
	case ARES_ENOTFOUND:
		return RDNS_NXDOMAIN;
	case ARES_ENODATA:
		return RDNS_NODATA;
	case ARES_ESERVFAIL:
		return RDNS_SERVFAIL;
	case ARES_EREFUSED:
		return RDNS_REFUSED;
	case ARES_ETIMEOUT:
	case ARES_ECONNREFUSED:	/* nothing listens: no answer either */
		return RDNS_TIMEOUT;
	}
	return RDNS_ERROR;
}

static int
cancelled(int status)
{
	return status == ARES_ECANCELLED || status == ARES_EDESTRUCTION;
}

/* The worse of two temporary failures: a timeout says least. */
static enum rdns_status
worse_failure(enum rdns_status a, enum rdns_status b)
{
	if (a == RDNS_TIMEOUT || b == RDNS_TIMEOUT)
		return RDNS_TIMEOUT;
	if (a == RDNS_SERVFAIL || b == RDNS_SERVFAIL)
		return RDNS_SERVFAIL;
	return a != RDNS_OK ? a : b;
}

static void
forward_done(struct job *j)
{
	unsigned i;

	if (j->cancelled) {
		j->r->active--;		/* not done: asked next time */
		return;
	}
	for (i = 0; i < j->res->name_count; i++) {
		if (j->name_confirmed[i]) {
			snprintf(j->res->ptr, sizeof(j->res->ptr), "%s",
			    j->res->names[i]);
			j->res->confirmed = 1;
			finish(j, RDNS_OK, j->ptr_ttl, j->has_ttl);
			return;
		}
	}
	if (j->forward_fail != RDNS_OK)
		finish(j, j->forward_fail, 0, 0);
	else
		finish(j, RDNS_UNCONFIRMED, j->ptr_ttl, j->has_ttl);
}

static void
on_forward(void *arg, int status, int timeouts, unsigned char *abuf,
    int alen)
{
	struct forward *f = arg;
	struct job *j = f->job;
	struct answer a;
	size_t k;
	int type = j->family == AF_INET ? T_A : T_AAAA;
	int size = j->family == AF_INET ? 4 : 16;

	(void)timeouts;
	j->r->queries--;
	j->forward_pending--;
	if (cancelled(status))
		j->cancelled = 1;
	else if (status == ARES_SUCCESS) {
		if (answer_read(abuf, alen, j->res->names[f->index], type,
		    &a) == 0) {
			for (k = 0; k < a.count; k++)
				if (!a.rrs[k].authority &&
				    a.rrs[k].type == type &&
				    a.rrs[k].rdlen == size &&
				    in_chain(&a, &a.rrs[k]) &&
				    memcmp(a.rrs[k].rdata, j->addr,
				    (size_t)size) == 0)
					j->name_confirmed[f->index] = 1;
			answer_free(&a);
		}
	} else if (temporary(status_of(status)))
		j->forward_fail = worse_failure(j->forward_fail,
		    status_of(status));
	if (j->forward_pending == 0)
		forward_done(j);
}

/* add_name - a PTR name, if it is a host name not seen yet. */
static void
add_name(struct job *j, const char *raw)
{
	char name[RDNS_NAME_MAX + 1];
	unsigned i;

	if (rdns_name_normalize(raw, name, sizeof(name)) != 0) {
		j->res->junk++;
		return;
	}
	for (i = 0; i < j->res->name_count; i++)
		if (strcmp(j->res->names[i], name) == 0)
			return;
	if (j->res->name_count == j->r->opt.max_names)
		return;
	memcpy(j->res->names[j->res->name_count++], name, strlen(name) + 1);
}

static void
on_ptr(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct job *j = arg;
	struct answer a;
	uint32_t ttl = 0;
	long enclen;
	char *name;
	size_t k;
	unsigned i, n;
	int has_ttl;

	(void)timeouts;
	j->r->queries--;
	if (cancelled(status)) {
		j->r->active--;
		return;
	}
	if (status != ARES_SUCCESS) {
		has_ttl = 0;
		if ((status == ARES_ENOTFOUND || status == ARES_ENODATA) &&
		    answer_read(abuf, alen, j->qname, T_PTR, &a) == 0) {
			has_ttl = negative_ttl(&a, &ttl);
			answer_free(&a);
		}
		finish(j, status_of(status), ttl, has_ttl);
		return;
	}
	if (answer_read(abuf, alen, j->qname, T_PTR, &a) != 0) {
		finish(j, RDNS_ERROR, 0, 0);
		return;
	}
	j->has_ttl = a.has_chain_ttl;
	j->ptr_ttl = a.chain_ttl;
	n = 0;
	for (k = 0; k < a.count; k++) {
		struct rr *r = &a.rrs[k];

		if (r->authority || r->type != T_PTR || !in_chain(&a, r))
			continue;
		n++;
		if (!j->has_ttl || r->ttl < j->ptr_ttl)
			j->ptr_ttl = r->ttl;
		j->has_ttl = 1;
		if (ares_expand_name(r->rdata, abuf, alen, &name, &enclen) !=
		    ARES_SUCCESS) {
			j->res->junk++;
			continue;
		}
		add_name(j, name);
		ares_free_string(name);
	}
	if (n == 0) {
		/* Only CNAMEs that lead nowhere: no PTR. */
		has_ttl = negative_ttl(&a, &ttl);
		answer_free(&a);
		finish(j, RDNS_NODATA, ttl, has_ttl);
		return;
	}
	answer_free(&a);
	if (j->r->cancelling) {
		j->r->active--;		/* the run is over: asked next time */
		return;
	}
	if (j->res->name_count == 0) {
		/* Only junk: nothing to confirm. */
		finish(j, RDNS_UNCONFIRMED, j->ptr_ttl, j->has_ttl);
		return;
	}
	/* Counted first: a query may fail at once, calling back inside
	 * ares_query(). */
	j->forward_pending = j->res->name_count;
	j->r->queries += j->res->name_count;
	for (i = 0; i < j->res->name_count; i++) {
		j->forward[i].job = j;
		j->forward[i].index = i;
		ares_query(j->r->channel, j->res->names[i], C_IN,
		    j->family == AF_INET ? T_A : T_AAAA, on_forward,
		    &j->forward[i]);
	}
}

static void
job_start(struct rdns *r, struct job *j)
{
	j->r = r;
	if (parse_ip(j->res->ip, &j->family, j->addr) != 0 ||
	    arpa_of(j->family, j->addr, j->qname, sizeof(j->qname)) != 0)
		return;		/* not an address: left undone */
	r->active++;
	r->queries++;
	ares_query(r->channel, j->qname, C_IN, T_PTR, on_ptr, j);
}

static void
servers_text(struct rdns *r)
{
	struct ares_addr_port_node *list = NULL, *s;
	char addr[INET6_ADDRSTRLEN];
	size_t used = 0;
	int n;

	r->servers[0] = '\0';
	if (ares_get_servers_ports(r->channel, &list) != ARES_SUCCESS)
		return;
	for (s = list; s != NULL; s = s->next) {
		if (inet_ntop(s->family, &s->addr, addr, sizeof(addr)) == NULL)
			continue;
		n = snprintf(r->servers + used, sizeof(r->servers) - used,
		    s->family == AF_INET6 ? "%s[%s]:%d" : "%s%s:%d",
		    used > 0 ? "," : "", addr, s->udp_port != 0 ?
		    s->udp_port : 53);
		if (n < 0 || (size_t)n >= sizeof(r->servers) - used)
			break;
		used += (size_t)n;
	}
	ares_free_data(list);
}

static size_t
server_count(struct rdns *r)
{
	struct ares_addr_port_node *list = NULL, *s;
	size_t n = 0;

	if (ares_get_servers_ports(r->channel, &list) != ARES_SUCCESS)
		return 0;
	for (s = list; s != NULL; s = s->next)
		n++;
	ares_free_data(list);
	return n;
}

/* channel_init - r's channel with that per-try timeout and servers. */
static int
channel_init(struct rdns *r, unsigned per_try_ms, const char *servers,
    struct dm_error *err)
{
	struct ares_options o;
	int rc;

	memset(&o, 0, sizeof(o));
	o.timeout = (int)per_try_ms;
	o.tries = RDNS_TRIES;
	/* SERVFAIL and REFUSED answers reach the callback (else c-ares
	 * ends such a query as ARES_ECONNREFUSED, like a dead server); the
	 * question is checked in answer_read(). */
	o.flags = ARES_FLAG_NOCHECKRESP;
	rc = ares_init_options(&r->channel, &o, ARES_OPT_TIMEOUTMS |
	    ARES_OPT_TRIES | ARES_OPT_FLAGS);
	if (rc != ARES_SUCCESS)
		return dm_error_set(err, DM_E_UNAVAILABLE, "cannot set up "
		    "the DNS resolver (c-ares): %s", ares_strerror(rc));
	r->channel_ok = 1;
	if (servers != NULL && servers[0] != '\0') {
		rc = ares_set_servers_ports_csv(r->channel, servers);
		if (rc != ARES_SUCCESS) {
			ares_destroy(r->channel);
			r->channel_ok = 0;
			return dm_error_set(err, DM_E_USAGE, "DNS servers "
			    "'%s': %s", servers, ares_strerror(rc));
		}
	}
	return 0;
}

int
rdns_new(struct rdns **r_out, const struct rdns_options *opt,
    struct dm_error *err)
{
	struct rdns *r;
	size_t nservers;
	unsigned per_try;

	*r_out = NULL;
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return dm_error_set(err, DM_E_NOMEM, "out of memory");
	r->opt = *opt;
	if (r->opt.concurrency == 0)
		r->opt.concurrency = DM_CONFIG_RESOLVE_CONCURRENCY;
	if (r->opt.concurrency > RDNS_CONCURRENCY_MAX)
		r->opt.concurrency = RDNS_CONCURRENCY_MAX;
	if (r->opt.max_names == 0 || r->opt.max_names > RDNS_MAX_NAMES)
		r->opt.max_names = RDNS_MAX_NAMES;
	if (r->opt.timeout_ms == 0)
		r->opt.timeout_ms = DM_CONFIG_RESOLVE_TIMEOUT_S * 1000;
	if (channel_init(r, r->opt.timeout_ms, opt->servers, err) != 0) {
		free(r);
		return -1;
	}
	nservers = server_count(r);
	if (nservers == 0) {
		rdns_free(&r);
		return dm_error_set(err, DM_E_UNAVAILABLE, "no DNS server: "
		    "none in /etc/resolv.conf, and none given ([resolve] "
		    "servers or --server)");
	}
	servers_text(r);
	/*
	 * c-ares makes `tries` rounds over the servers, each round's
	 * timeout double the one before: T * nservers * (2^tries - 1) in
	 * all, which the timeout must hold.
	 */
	per_try = r->opt.timeout_ms / (unsigned)(nservers *
	    ((1U << RDNS_TRIES) - 1));
	if (per_try < RDNS_TRY_MIN_MS)
		per_try = RDNS_TRY_MIN_MS;
	ares_destroy(r->channel);
	r->channel_ok = 0;
	if (channel_init(r, per_try, opt->servers, err) != 0) {
		free(r);
		return -1;
	}
	*r_out = r;
	return 0;
}

void
rdns_free(struct rdns **rp)
{
	struct rdns *r = *rp;

	if (r == NULL)
		return;
	if (r->channel_ok)
		ares_destroy(r->channel);
	free(r);
	*rp = NULL;
}

const char *
rdns_servers(const struct rdns *r)
{
	return r->servers;
}

/* wait - for c-ares' sockets, its next timeout, at most until deadline. */
static void
wait_events(struct rdns *r, double deadline)
{
	ares_socket_t socks[ARES_GETSOCK_MAXNUM];
	struct pollfd pfd[ARES_GETSOCK_MAXNUM];
	struct timeval max, tv, *tvp;
	double left = deadline - rdns_now();
	unsigned bits;
	int i, n = 0, ms;

	/* Not ARES_GETSOCK_WRITABLE(): its 1 << 31 overflows an int. */
	bits = (unsigned)ares_getsock(r->channel, socks, ARES_GETSOCK_MAXNUM);
	for (i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
		short events = 0;

		if (bits & (1U << i))
			events |= POLLIN;
		if (bits & (1U << (i + ARES_GETSOCK_MAXNUM)))
			events |= POLLOUT;
		if (events == 0)
			continue;
		pfd[n].fd = socks[i];
		pfd[n].events = events;
		pfd[n].revents = 0;
		n++;
	}
	ms = RDNS_WAIT_MAX_MS;
	if (left * 1000 < ms)
		ms = left <= 0 ? 0 : (int)(left * 1000) + 1;
	max.tv_sec = ms / 1000;
	max.tv_usec = (ms % 1000) * 1000;
	tvp = ares_timeout(r->channel, &max, &tv);
	ms = (int)(tvp->tv_sec * 1000 + (tvp->tv_usec + 999) / 1000);
	if (poll(pfd, (nfds_t)n, ms) <= 0) {
		/* Nothing (or a signal): c-ares looks at its timeouts. */
		ares_process_fd(r->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
		return;
	}
	for (i = 0; i < n; i++) {
		if (pfd[i].revents == 0)
			continue;
		ares_process_fd(r->channel, (pfd[i].revents & (POLLIN |
		    POLLERR | POLLHUP)) ? pfd[i].fd : ARES_SOCKET_BAD,
		    (pfd[i].revents & POLLOUT) ? pfd[i].fd : ARES_SOCKET_BAD);
	}
}

int
rdns_resolve(struct rdns *r, const char *const *ips, size_t count,
    struct rdns_result *results, double deadline,
    volatile sig_atomic_t *stop, struct dm_error *err)
{
	struct job *jobs;
	size_t next = 0, i;

	for (i = 0; i < count; i++) {
		memset(&results[i], 0, sizeof(results[i]));
		snprintf(results[i].ip, sizeof(results[i].ip), "%s", ips[i]);
	}
	if (count == 0)
		return 0;
	jobs = calloc(count, sizeof(*jobs));
	if (jobs == NULL)
		return dm_error_set(err, DM_E_NOMEM, "out of memory");
	for (i = 0; i < count; i++)
		jobs[i].res = &results[i];
	r->cancelling = 0;
	r->active = 0;
	r->queries = 0;
	for (;;) {
		int over = rdns_now() >= deadline ||
		    (stop != NULL && *stop);

		while (!over && next < count &&
		    r->active < r->opt.concurrency)
			job_start(r, &jobs[next++]);
		if (r->queries == 0 && (over || next == count))
			break;
		if (over) {
			/* What is in flight is called back with
			 * ARES_ECANCELLED and left undone. */
			r->cancelling = 1;
			ares_cancel(r->channel);
			break;
		}
		if (r->queries > 0)
			wait_events(r, deadline);
	}
	r->cancelling = 0;
	free(jobs);
	return 0;
}

/*
 * ask - one question, until its callback (which sets *done) has run or
 * the deadline or *stop came: then it is cancelled (called back with
 * ARES_ECANCELLED).
 */
static void
ask(struct rdns *r, const char *qname, int type, ares_callback callback,
    void *arg, const int *done, double deadline,
    volatile sig_atomic_t *stop)
{
	r->cancelling = 0;
	ares_query(r->channel, qname, C_IN, type, callback, arg);
	while (!*done) {
		if (rdns_now() >= deadline || (stop != NULL && *stop)) {
			r->cancelling = 1;
			ares_cancel(r->channel);
			r->cancelling = 0;
			break;
		}
		wait_events(r, deadline);
	}
}

/* ---- the DMARC records of a name (the tree walk's lookups) ---- */

struct txt_query {
	const char *qname;
	int done;
	int cancelled;
	int count;		/* DMARC records; -1 a failure */
	enum rdns_status status;
	char *record;
	size_t size;
};

/* txt_join - the character-strings of a TXT record, joined, into out;
 * -1 when one holds a NUL (no DMARC record). Truncated to size. */
static int
txt_join(const unsigned char *rdata, int rdlen, char *out, size_t size)
{
	size_t used = 0, n;
	int i = 0;

	while (i < rdlen) {
		n = rdata[i++];
		if ((int)n > rdlen - i)
			return -1;
		if (memchr(rdata + i, '\0', n) != NULL)
			return -1;
		if (used + n >= size)
			n = size - 1 - used;
		memcpy(out + used, rdata + i, n);
		used += n;
		i += rdata[i - 1];
	}
	out[used] = '\0';
	return 0;
}

static void
on_txt(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct txt_query *q = arg;
	char *text;
	struct answer a;
	size_t k;

	(void)timeouts;
	q->done = 1;
	if (cancelled(status)) {
		q->cancelled = 1;
		return;
	}
	if (status == ARES_ENOTFOUND || status == ARES_ENODATA) {
		q->status = status_of(status);
		q->count = 0;
		return;
	}
	if (status != ARES_SUCCESS) {
		q->status = status_of(status);
		q->count = -1;
		return;
	}
	if (answer_read(abuf, alen, q->qname, T_TXT, &a) != 0) {
		q->status = RDNS_ERROR;
		q->count = -1;
		return;
	}
	text = malloc(DM_DMARC_RECORD_MAX);
	if (text == NULL) {
		answer_free(&a);
		q->status = RDNS_ERROR;
		q->count = -1;
		return;
	}
	q->status = RDNS_OK;
	q->count = 0;
	for (k = 0; k < a.count; k++) {
		struct rr *r = &a.rrs[k];

		if (r->authority || r->type != T_TXT || !in_chain(&a, r))
			continue;
		if (txt_join(r->rdata, r->rdlen, text,
		    DM_DMARC_RECORD_MAX) != 0 || !dm_dmarc_record(text))
			continue;
		if (q->count++ == 0)
			snprintf(q->record, q->size, "%s", text);
	}
	free(text);
	answer_free(&a);
}

int
rdns_dmarc(struct rdns *r, const char *name, char *record, size_t size,
    double deadline, volatile sig_atomic_t *stop, enum rdns_status *status_r)
{
	struct txt_query q;
	char qname[RDNS_NAME_MAX + sizeof("_dmarc.")];

	memset(&q, 0, sizeof(q));
	*status_r = RDNS_ERROR;
	if (size > 0)
		record[0] = '\0';
	if ((size_t)snprintf(qname, sizeof(qname), "_dmarc.%s", name) >=
	    sizeof(qname)) {
		*status_r = RDNS_NXDOMAIN;
		return 0;	/* too long to exist */
	}
	q.qname = qname;
	q.record = record;
	q.size = size;
	ask(r, qname, T_TXT, on_txt, &q, &q.done, deadline, stop);
	if (!q.done || q.cancelled) {
		*status_r = RDNS_TIMEOUT;
		return -2;	/* the deadline: not an answer */
	}
	*status_r = q.status;
	return q.count;
}

/* ---- one question, any type ---- */

struct any_query {
	const char *qname;
	int type;
	struct rdns_answer *a;
	int done;
	int cancelled;
	int nomem;
};

static void
on_any(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct any_query *q = arg;

	(void)timeouts;
	q->done = 1;
	if (cancelled(status)) {
		q->cancelled = 1;
		return;
	}
	/* NOERROR or NXDOMAIN: the answer itself says what it holds (a
	 * dangling CNAME, records of another type only). */
	if ((status == ARES_SUCCESS || status == ARES_ENOTFOUND ||
	    status == ARES_ENODATA) && abuf != NULL) {
		if (rdns_answer_parse(abuf, alen, q->qname, q->type, q->a) != 0)
			q->nomem = 1;
		return;
	}
	if (status == ARES_ENOMEM)
		q->nomem = 1;
	q->a->status = status_of(status);
}

int
rdns_query(struct rdns *r, const char *name, int type,
    struct rdns_answer *a, double deadline, volatile sig_atomic_t *stop,
    struct dm_error *err)
{
	char qname[RDNS_NAME_MAX + 1];
	struct any_query q;

	memset(a, 0, sizeof(*a));
	a->status = RDNS_ERROR;
	if (!query_type(type) || name_lower(name, qname, sizeof(qname)) != 0 ||
	    qname[0] == '\0')
		return 0;	/* nothing to ask */
	memset(&q, 0, sizeof(q));
	q.qname = qname;
	q.type = type;
	q.a = a;
	ask(r, qname, type, on_any, &q, &q.done, deadline, stop);
	if (q.nomem) {
		rdns_answer_free(a);
		a->status = RDNS_ERROR;
		return dm_error_set(err, DM_E_NOMEM, "out of memory");
	}
	if (!q.done || q.cancelled) {
		rdns_answer_free(a);
		a->status = RDNS_TIMEOUT;
	}
	return 0;
}

/* ---- enrichment ---- */

/* Names listed from the store, copied. */
struct listing {
	char **items;
	size_t count, cap;
};

static int
listing_add(void *ctx, const char *value)
{
	struct listing *l = ctx;

	if (l->count == l->cap)
		return -1;	/* cannot happen: the store's LIMIT */
	l->items[l->count] = strdup(value);
	if (l->items[l->count] == NULL)
		return -1;
	l->count++;
	return 0;
}

static void
listing_clear(struct listing *l)
{
	size_t i;

	for (i = 0; i < l->count; i++)
		free(l->items[i]);
	l->count = 0;
}

#define ORG_MAX	DM_DOMAIN_MAX

static int
enrich_domains(struct store *s, const char *since, struct listing *l,
    struct rdns_totals *t, struct dm_error *err)
{
	const char **orgs;
	char (*org_text)[ORG_MAX];
	size_t i;
	int rc = 0;

	orgs = calloc(RDNS_BATCH, sizeof(*orgs));
	org_text = calloc(RDNS_BATCH, sizeof(*org_text));
	if (orgs == NULL || org_text == NULL) {
		free(orgs);
		free(org_text);
		return dm_error_set(err, DM_E_NOMEM, "out of memory");
	}
	for (;;) {
		listing_clear(l);
		if (store_domains_due(s, since, RDNS_BATCH, listing_add, l,
		    err) != 0) {
			if (err->code == DM_E_NONE)
				dm_error_set(err, DM_E_NOMEM, "out of memory");
			rc = -1;
			break;
		}
		if (l->count == 0)
			break;
		for (i = 0; i < l->count; i++) {
			/* Not a domain: '' so that it is not asked again. */
			if (dm_org_domain(l->items[i], org_text[i],
			    ORG_MAX) != 0)
				org_text[i][0] = '\0';
			orgs[i] = org_text[i];
		}
		if (store_domain_orgs_save(s, (const char *const *)l->items,
		    orgs, l->count, err) != 0) {
			rc = -1;
			break;
		}
		t->domains += l->count;
		if (l->count < RDNS_BATCH)
			break;
	}
	listing_clear(l);
	free(orgs);
	free(org_text);
	return rc;
}

/* save - the done results of a batch; how many were saved in *saved. */
static int
save_batch(struct store *s, const struct rdns_result *res, size_t count,
    struct rdns_totals *t, size_t *saved, struct dm_error *err)
{
	struct store_ip_name *rows;
	const char **names;
	char (*orgs)[ORG_MAX];
	size_t i, n = 0;
	unsigned k;
	int rc;

	*saved = 0;
	rows = calloc(count, sizeof(*rows));
	names = calloc(count * RDNS_MAX_NAMES, sizeof(*names));
	orgs = calloc(count, sizeof(*orgs));
	if (rows == NULL || names == NULL || orgs == NULL) {
		free(rows);
		free(names);
		free(orgs);
		return dm_error_set(err, DM_E_NOMEM, "out of memory");
	}
	for (i = 0; i < count; i++) {
		const struct rdns_result *r = &res[i];
		struct store_ip_name *row = &rows[n];

		if (!r->done) {
			t->unfinished++;
			continue;
		}
		for (k = 0; k < r->name_count; k++)
			names[n * RDNS_MAX_NAMES + k] = r->names[k];
		if (!r->confirmed ||
		    dm_org_domain(r->ptr, orgs[n], ORG_MAX) != 0)
			orgs[n][0] = '\0';
		row->ip = r->ip;
		row->ptr = r->ptr;
		row->names = &names[n * RDNS_MAX_NAMES];
		row->name_count = r->name_count;
		row->confirmed = r->confirmed;
		row->org = orgs[n];
		row->status = rdns_status_name(r->status);
		row->temporary = temporary(r->status);
		row->ttl_s = r->ttl;
		n++;
		if (r->status == RDNS_OK)
			t->confirmed++;
		if (temporary(r->status) || r->status == RDNS_ERROR)
			t->failed++;
		if (r->status != RDNS_TIMEOUT)
			t->answered++;
	}
	rc = store_ip_names_save(s, rows, n, err);
	if (rc == 0) {
		*saved = n;
		t->resolved += n;
	}
	free(rows);
	free(names);
	free(orgs);
	return rc;
}

int
rdns_enrich(struct store *s, const struct dm_config *cfg,
    const struct rdns_limits *limits, struct rdns_totals *t,
    struct dm_error *err)
{
	struct rdns_options opt;
	struct rdns_result *results = NULL;
	struct rdns *r = NULL;
	struct listing l;
	double deadline;
	unsigned deadline_ms;
	size_t saved;
	int rc = 0;

	memset(t, 0, sizeof(*t));
	memset(&l, 0, sizeof(l));
	l.cap = RDNS_BATCH;
	l.items = calloc(l.cap, sizeof(*l.items));
	if (l.items == NULL)
		return dm_error_set(err, DM_E_NOMEM, "out of memory");
	deadline_ms = limits->deadline_ms != 0 ? limits->deadline_ms :
	    cfg->resolve_deadline_s * 1000U;
	deadline = rdns_now() + deadline_ms / 1000.0;
	if (enrich_domains(s, limits->since, &l, t, err) != 0) {
		free(l.items);
		return -1;
	}

	memset(&opt, 0, sizeof(opt));
	opt.servers = limits->servers != NULL ? limits->servers :
	    cfg->resolve_servers;
	opt.concurrency = cfg->resolve_concurrency;
	opt.timeout_ms = cfg->resolve_timeout_s * 1000U;
	opt.max_names = RDNS_MAX_NAMES;
	for (;;) {
		if (rdns_now() >= deadline ||
		    (limits->stop != NULL && *limits->stop))
			break;
		listing_clear(&l);
		if (store_ips_due(s, limits->since, RDNS_BATCH, listing_add,
		    &l, err) != 0) {
			if (err->code == DM_E_NONE)
				dm_error_set(err, DM_E_NOMEM, "out of memory");
			rc = -1;
			break;
		}
		if (l.count == 0)
			break;
		/* The resolver only once there is something to ask. */
		if (r == NULL) {
			results = calloc(RDNS_BATCH, sizeof(*results));
			if (results == NULL) {
				rc = dm_error_set(err, DM_E_NOMEM, "out of "
				    "memory");
				break;
			}
			if (rdns_new(&r, &opt, err) != 0) {
				rc = -1;
				break;
			}
		}
		if (rdns_resolve(r, (const char *const *)l.items, l.count,
		    results, deadline, limits->stop, err) != 0 ||
		    save_batch(s, results, l.count, t, &saved, err) != 0) {
			rc = -1;
			break;
		}
		if (saved == 0 || saved < l.count)
			break;		/* the deadline, or not addresses */
	}
	if (rc == 0 && t->resolved > 0 && t->answered == 0)
		rc = dm_error_set(err, DM_E_UNAVAILABLE, "no DNS server "
		    "answered (%s): %" PRIu64 " address%s timed out, asked "
		    "again in %d minutes", r != NULL ? rdns_servers(r) : "",
		    t->resolved, t->resolved == 1 ? "" : "es",
		    RDNS_TTL_RETRY / 60);
	listing_clear(&l);
	free(l.items);
	free(results);
	rdns_free(&r);
	return rc;
}

/* ---- the DMARCbis tree walk of the treewalk reports' domains ---- */

/* What a name answered in this run, shared by the walks. */
struct dmarc_answer {
	char *name;
	int count;
	enum rdns_status status;
	char *record;
};

struct walker {
	struct rdns *r;
	double deadline;
	volatile sig_atomic_t *stop;
	struct dmarc_answer *answers;
	size_t answer_count, answer_cap;
	enum rdns_status failure;	/* of the walk's failed lookup */
	int over;			/* the deadline came */
	uint64_t asked, answered;
};

static void
walker_clear(struct walker *w)
{
	size_t i;

	for (i = 0; i < w->answer_count; i++) {
		free(w->answers[i].name);
		free(w->answers[i].record);
	}
	free(w->answers);
	w->answers = NULL;
	w->answer_count = w->answer_cap = 0;
}

/* A dm_dmarc_lookup: an earlier answer, or the DNS. */
static int
walker_lookup(void *ctx, const char *name, char *record, size_t size)
{
	struct walker *w = ctx;
	struct dmarc_answer *a;
	enum rdns_status status;
	size_t i;
	int n;

	for (i = 0; i < w->answer_count; i++) {
		a = &w->answers[i];
		if (strcmp(a->name, name) != 0)
			continue;
		if (a->count < 0)
			w->failure = a->status;
		if (a->count > 0)
			snprintf(record, size, "%s", a->record);
		return a->count;
	}
	if (w->over)
		return -1;
	w->asked++;
	n = rdns_dmarc(w->r, name, record, size, w->deadline, w->stop,
	    &status);
	if (n == -2) {
		w->over = 1;
		return -1;
	}
	if (status != RDNS_TIMEOUT)
		w->answered++;
	if (n < 0)
		w->failure = status;
	if (w->answer_count == w->answer_cap) {
		size_t cap = w->answer_cap == 0 ? 64 : w->answer_cap * 2;
		struct dmarc_answer *more = realloc(w->answers,
		    cap * sizeof(*more));

		if (more == NULL)
			return n;	/* not remembered: asked again */
		w->answers = more;
		w->answer_cap = cap;
	}
	a = &w->answers[w->answer_count];
	a->name = strdup(name);
	a->record = strdup(n > 0 ? record : "");
	if (a->name == NULL || a->record == NULL) {
		free(a->name);
		free(a->record);
		return n;
	}
	a->count = n;
	a->status = status;
	w->answer_count++;
	return n;
}

/* walk_batch - walk each domain of l and save the answers; *walked the
 * number saved (fewer than l->count: the deadline). */
static int
walk_batch(struct store *s, struct walker *w, const struct listing *l,
    struct rdns_walk_totals *t, size_t *walked, struct dm_error *err)
{
	struct store_treewalk_org *rows;
	char (*orgs)[ORG_MAX], (*psl)[ORG_MAX];
	size_t i, n = 0;
	int rc;

	*walked = 0;
	rows = calloc(l->count, sizeof(*rows));
	orgs = calloc(l->count, sizeof(*orgs));
	psl = calloc(l->count, sizeof(*psl));
	if (rows == NULL || orgs == NULL || psl == NULL) {
		free(rows);
		free(orgs);
		free(psl);
		return dm_error_set(err, DM_E_NOMEM, "out of memory");
	}
	for (i = 0; i < l->count; i++) {
		struct store_treewalk_org *row = &rows[n];

		if (w->over || rdns_now() >= w->deadline ||
		    (w->stop != NULL && *w->stop)) {
			t->unfinished++;
			continue;
		}
		w->failure = RDNS_ERROR;
		rc = dm_treewalk_org(l->items[i], walker_lookup, w, orgs[n],
		    ORG_MAX);
		if (rc == DM_TREEWALK_DNS && w->over) {
			t->unfinished++;
			continue;
		}
		if (dm_org_domain(l->items[i], psl[n], ORG_MAX) != 0)
			psl[n][0] = '\0';
		row->domain = l->items[i];
		row->org = orgs[n];
		row->psl_org = psl[n];
		if (rc == DM_TREEWALK_OK) {
			row->status = "ok";
			row->ttl_s = RDNS_WALK_TTL;
			if (strcmp(orgs[n], psl[n]) != 0)
				t->differ++;
		} else if (rc == DM_TREEWALK_BADNAME) {
			row->status = "invalid";
			row->ttl_s = RDNS_WALK_TTL;
		} else {
			row->status = rdns_status_name(w->failure);
			row->temporary = 1;
			row->ttl_s = w->failure == RDNS_ERROR ?
			    RDNS_TTL_ERROR : RDNS_TTL_RETRY;
			t->failed++;
		}
		n++;
	}
	rc = store_treewalk_save(s, rows, n, err);
	if (rc == 0) {
		*walked = n;
		t->walked += n;
	}
	free(rows);
	free(orgs);
	free(psl);
	return rc;
}

int
rdns_treewalk(struct store *s, const struct dm_config *cfg,
    const struct rdns_limits *limits, struct rdns_walk_totals *t,
    struct dm_error *err)
{
	struct rdns_options opt;
	struct store_realign_totals rt;
	struct walker w;
	struct listing l;
	unsigned deadline_ms;
	size_t walked;
	int rc = 0;

	memset(t, 0, sizeof(*t));
	memset(&w, 0, sizeof(w));
	memset(&l, 0, sizeof(l));
	l.cap = RDNS_BATCH;
	l.items = calloc(l.cap, sizeof(*l.items));
	if (l.items == NULL)
		return dm_error_set(err, DM_E_NOMEM, "out of memory");
	deadline_ms = limits->deadline_ms != 0 ? limits->deadline_ms :
	    cfg->resolve_deadline_s * 1000U;
	w.deadline = rdns_now() + deadline_ms / 1000.0;
	w.stop = limits->stop;
	memset(&opt, 0, sizeof(opt));
	opt.servers = limits->servers != NULL ? limits->servers :
	    cfg->resolve_servers;
	opt.concurrency = 1;
	opt.timeout_ms = cfg->resolve_timeout_s * 1000U;
	opt.max_names = RDNS_MAX_NAMES;
	for (;;) {
		if (w.over || rdns_now() >= w.deadline ||
		    (limits->stop != NULL && *limits->stop))
			break;
		listing_clear(&l);
		if (store_treewalk_due(s, limits->since, RDNS_BATCH,
		    listing_add, &l, err) != 0) {
			if (err->code == DM_E_NONE)
				dm_error_set(err, DM_E_NOMEM, "out of memory");
			rc = -1;
			break;
		}
		if (l.count == 0)
			break;
		if (w.r == NULL && rdns_new(&w.r, &opt, err) != 0) {
			rc = -1;
			break;
		}
		if (walk_batch(s, &w, &l, t, &walked, err) != 0) {
			rc = -1;
			break;
		}
		if (walked < l.count)
			break;		/* the deadline */
	}
	/* Realigned even when the walk failed: what was walked before. */
	if (rc == 0 || err->code == DM_E_UNAVAILABLE) {
		struct dm_error rerr;

		dm_error_clear(&rerr);
		/* A realigned report's rollup rows are taken away and
		 * appended again; what is due is compacted here too. */
		if (store_treewalk_realign(s, &rt, &rerr) != 0 ||
		    store_compact(s, STORE_COMPACT_AGE, 20000, NULL,
		    &rerr) != 0) {
			*err = rerr;
			rc = -1;
		} else {
			t->reports = rt.reports;
			t->changed = rt.changed;
			t->records = rt.records;
			t->waiting = rt.waiting;
		}
	}
	if (rc == 0 && w.asked > 0 && w.answered == 0)
		rc = dm_error_set(err, DM_E_UNAVAILABLE, "no DNS server "
		    "answered (%s): %" PRIu64 " DMARC quer%s timed out, "
		    "walked again in %d minutes", w.r != NULL ?
		    rdns_servers(w.r) : "", w.asked, w.asked == 1 ? "y" :
		    "ies", RDNS_TTL_RETRY / 60);
	listing_clear(&l);
	free(l.items);
	walker_clear(&w);
	rdns_free(&w.r);
	return rc;
}

/* ---- in the daemon: a thread of its own ---- */

struct rdns_bg {
	pthread_t thread;
	struct dm_config cfg;		/* a copy */
	unsigned deadline_s;
	volatile sig_atomic_t stop;
	struct rdns_totals totals;
	struct dm_error err;
	int finished;			/* __atomic */
};

static void *
bg_main(void *arg)
{
	struct rdns_bg *bg = arg;
	struct rdns_limits limits;
	struct store *s = NULL;

	memset(&limits, 0, sizeof(limits));
	limits.deadline_ms = bg->deadline_s * 1000U;
	limits.stop = &bg->stop;
	if (store_connect(&s, bg->cfg.conninfo, &bg->err) == 0 &&
	    store_check_schema(s, &bg->err) == 0 &&
	    rdns_enrich(s, &bg->cfg, &limits, &bg->totals, &bg->err) == 0 &&
	    !bg->stop) {
		/* Then the tree walk of treewalk reports, as resolve does. */
		struct rdns_walk_totals walk;

		memset(&walk, 0, sizeof(walk));
		rdns_treewalk(s, &bg->cfg, &limits, &walk, &bg->err);
	}
	if (s != NULL)
		store_free(s);
	__atomic_store_n(&bg->finished, 1, __ATOMIC_RELEASE);
	return NULL;
}

int
rdns_bg_start(struct rdns_bg **bg_out, const struct dm_config *cfg,
    unsigned deadline_s, struct dm_error *err)
{
	struct rdns_bg *bg;
	sigset_t all, old;
	int rc;

	*bg_out = NULL;
	bg = calloc(1, sizeof(*bg));
	if (bg == NULL)
		return dm_error_set(err, DM_E_NOMEM, "out of memory");
	if (dm_config_copy(&bg->cfg, cfg, err) != 0) {
		free(bg);
		return -1;
	}
	bg->deadline_s = deadline_s;
	if (bg->deadline_s == 0 || bg->deadline_s > RDNS_BG_DEADLINE_MAX_S)
		bg->deadline_s = RDNS_BG_DEADLINE_MAX_S;
	if (bg->deadline_s > cfg->resolve_deadline_s)
		bg->deadline_s = cfg->resolve_deadline_s;
	dm_error_clear(&bg->err);
	/* Signals stay with the daemon's thread: its poll() wakes. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&bg->thread, NULL, bg_main, bg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		dm_config_free(&bg->cfg);
		free(bg);
		return dm_error_set(err, DM_E_NOMEM, "cannot start the "
		    "resolver thread: %s", strerror(rc));
	}
	*bg_out = bg;
	return 0;
}

static void
bg_free(struct rdns_bg **bgp)
{
	struct rdns_bg *bg = *bgp;

	pthread_join(bg->thread, NULL);
	dm_config_free(&bg->cfg);
	free(bg);
	*bgp = NULL;
}

int
rdns_bg_poll(struct rdns_bg **bgp, struct rdns_totals *t,
    struct dm_error *err)
{
	struct rdns_bg *bg = *bgp;

	if (bg == NULL || !__atomic_load_n(&bg->finished, __ATOMIC_ACQUIRE))
		return 0;
	*t = bg->totals;
	*err = bg->err;
	bg_free(bgp);
	return 1;
}

void
rdns_bg_stop(struct rdns_bg **bgp)
{
	if (*bgp == NULL)
		return;
	(*bgp)->stop = 1;
	bg_free(bgp);
}
