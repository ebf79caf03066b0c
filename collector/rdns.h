/*
 * rdns.h - who the source addresses are: reverse DNS, forward-confirmed,
 * through c-ares, and the organizational domains of the DKIM and SPF
 * domains seen (docs/resolve.md).
 *
 *	rdns_enrich(store, cfg, &limits, &totals, &err);   dmarcd resolve
 *	rdns_bg_start(&bg, cfg, deadline_s, &err);	   dmarcd run, after
 *	rdns_bg_poll(bg, &totals, &err);		   a pass that stored
 *	rdns_bg_stop(&bg);				   something
 *
 * For each address due (dmarcd.rollup_daily has it and dmarcd.ip_names
 * has no row for it, or an expired one) a PTR query (in-addr.arpa or
 * ip6.arpa; an IPv4-mapped IPv6 address is looked up as IPv4), then for
 * each PTR name, up to max_names, an A (or AAAA) query: a name is
 * confirmed when one of its addresses is the source address. Many
 * addresses are resolved at once (concurrency), each query within
 * timeout_ms (retries included) and the whole run within a deadline; at
 * the deadline (or when *stop is set) what is still in flight is
 * cancelled and not stored, so that the next run asks again. A server
 * that never answers costs a timeout, never a hang.
 *
 * Names are taken only when they are host names: lower-cased, the
 * trailing dot removed, 1 to 253 bytes, labels of 1 to 63 letters,
 * digits, '-' or '_' (not starting nor ending with '-'), at least two
 * labels, the last one not all digits. Anything else in a PTR answer
 * (escaped bytes, spaces, an address) is junk: it is dropped, counted,
 * and never looked up.
 *
 * Status of an address and how long the answer is kept (expires_at):
 *	ok		a name is confirmed; ptr is the first confirmed
 *			name in the order of the PTR answer
 *	unconfirmed	PTR names, none resolving back to the address
 *			(or the answer held only junk)
 *	  both: the TTL of the PTR answer, clamped to [1 hour, 7 days]
 *	nxdomain, nodata  the negative TTL (RFC 2308: the SOA's TTL or
 *			its minimum, the smaller), clamped to [15 minutes,
 *			1 day]; 15 minutes without a SOA
 *	servfail, refused, timeout  15 minutes; also when the PTR names
 *			are known but a forward lookup failed so (no name
 *			confirmed)
 *	error		a malformed answer or a local failure: 1 hour
 *
 * DIAGNOSTICS
 *	-1 with err: DM_E_UNAVAILABLE when c-ares cannot be set up with a
 *	server (no nameserver in resolv.conf, a server list c-ares
 *	refuses) and, from rdns_enrich, when queries were sent but not one
 *	got an answer (every server down); DM_E_USAGE for a bad server
 *	list; DM_E_NOMEM; the store's errors (DM_E_TEMP when PostgreSQL is
 *	away). A DNS failure of one address is its status, not an error.
 */
#ifndef COLLECTOR_RDNS_H
#define COLLECTOR_RDNS_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define RDNS_NAME_MAX		253	/* a host name, without the NUL */
#define RDNS_MAX_NAMES		8	/* PTR names kept and looked up */
#define RDNS_IP_MAX		46	/* INET6_ADDRSTRLEN */
#define RDNS_CONCURRENCY_MAX	1024	/* addresses in flight */
#define RDNS_BATCH		1000	/* addresses listed at a time */

/* How long an answer is kept (seconds). */
#define RDNS_TTL_POS_MIN	3600
#define RDNS_TTL_POS_MAX	(7 * 86400)
#define RDNS_TTL_NEG_MIN	900
#define RDNS_TTL_NEG_MAX	86400
#define RDNS_TTL_RETRY		900	/* timeout, servfail, refused */
#define RDNS_TTL_ERROR		3600

enum rdns_status {
	RDNS_OK,
	RDNS_UNCONFIRMED,
	RDNS_NXDOMAIN,
	RDNS_NODATA,
	RDNS_SERVFAIL,
	RDNS_REFUSED,
	RDNS_TIMEOUT,
	RDNS_ERROR
};

/* One address resolved (or not: done == 0 at the deadline). */
struct rdns_result {
	char ip[RDNS_IP_MAX];		/* as given */
	int done;
	enum rdns_status status;
	int confirmed;
	char ptr[RDNS_NAME_MAX + 1];	/* the confirmed name, or "" */
	char names[RDNS_MAX_NAMES][RDNS_NAME_MAX + 1];
	unsigned name_count;
	unsigned junk;			/* PTR names refused */
	unsigned ttl;			/* seconds to keep it, clamped */
};

struct rdns_options {
	const char *servers;	/* "ADDR:PORT,...", or "" / NULL: resolv.conf */
	unsigned concurrency;	/* 1..RDNS_CONCURRENCY_MAX */
	unsigned timeout_ms;	/* per query, its retries included */
	unsigned max_names;	/* 1..RDNS_MAX_NAMES */
};

struct rdns;

/* rdns_new - a resolver (a c-ares channel); DM_E_UNAVAILABLE without a
 * server. */
int rdns_new(struct rdns **r_out, const struct rdns_options *opt,
    struct dm_error *err);
void rdns_free(struct rdns **r);
/* rdns_servers - the servers in use, "ADDR:PORT,..." (for messages). */
const char *rdns_servers(const struct rdns *r);

/*
 * rdns_resolve - resolve count addresses (text) into results[]; returns
 * when all are done, at deadline (a CLOCK_MONOTONIC time in seconds, see
 * rdns_now()) or when *stop (may be NULL) is set: the others have done 0.
 * An address that is not one gets RDNS_ERROR.
 */
int rdns_resolve(struct rdns *r, const char *const *ips, size_t count,
    struct rdns_result *results, double deadline,
    volatile sig_atomic_t *stop, struct dm_error *err);

double rdns_now(void);

/* The pure parts, for the tests. */

struct rdns_answer;
/*
 * rdns_answer_parse - the DNS message buf (len bytes) answering name and
 * type (as rdns_query() asks) into *a, as rdns_query() fills it: status
 * from the RCODE and the records; RDNS_ERROR when the message is
 * malformed (cut short, a length past its end, a bad compression pointer,
 * an A that is not 4 bytes...) or not the answer to that question:
 * nothing outside buf is read. 0, or -1 out of memory (a->status
 * RDNS_ERROR). Free it with rdns_answer_free().
 */
int rdns_answer_parse(const unsigned char *buf, int len, const char *name,
    int type, struct rdns_answer *a);
/* rdns_status_name - "ok", "unconfirmed", ... as dmarcd.ip_names has it. */
const char *rdns_status_name(enum rdns_status status);
/*
 * rdns_name_normalize - name (as ares_expand_name gives it, trailing dot
 * or not) lower-cased into out (size bytes); -1 if it is not a host name
 * (see above) or does not fit.
 */
int rdns_name_normalize(const char *name, char *out, size_t size);
/* rdns_ttl_clamp - how long to keep a result of status with that TTL
 * (ttl: the answer's, or the negative TTL; 0 when there was none). */
unsigned rdns_ttl_clamp(enum rdns_status status, uint32_t ttl, int has_ttl);
/*
 * rdns_arpa_name - the PTR query name of ip (IPv4 or IPv6 text; an
 * IPv4-mapped IPv6 address gives the IPv4 name), without a trailing dot;
 * -1 if ip is not an address or out is too small.
 */
int rdns_arpa_name(const char *ip, char *out, size_t size);
/* ---- enrichment: the store ---- */

struct store;
struct dm_config;

struct rdns_limits {
	const char *servers;	/* NULL: [resolve] servers (or resolv.conf) */
	const char *since;	/* YYYY-MM-DD: addresses seen since; or NULL */
	unsigned deadline_ms;	/* 0: [resolve] deadline */
	volatile sig_atomic_t *stop;	/* set: stop now; may be NULL */
};

struct rdns_totals {
	uint64_t resolved;	/* ip_names rows written */
	uint64_t confirmed;	/* of which ok */
	uint64_t failed;	/* timeout, servfail, refused, error */
	uint64_t answered;	/* a server answered (any status but timeout) */
	uint64_t unfinished;	/* due, not resolved before the deadline */
	uint64_t domains;	/* domain_orgs rows written */
};

/*
 * rdns_enrich - the organizational domain of each DKIM and SPF domain
 * not in dmarcd.domain_orgs yet, then every address due, a batch at a
 * time, until none is due or the deadline. Each batch is stored as it is
 * resolved: what was stored stays stored when an error ends the run.
 */
int rdns_enrich(struct store *store, const struct dm_config *cfg,
    const struct rdns_limits *limits, struct rdns_totals *totals,
    struct dm_error *err);

/*
 * rdns_dmarc - the DMARC records at _dmarc.name (a dm_dmarc_lookup, with
 * a deadline): -1 when the DNS failed (*status_r says how: timeout,
 * servfail, refused, error), 0 none (NXDOMAIN, no TXT, no TXT record
 * that is DMARC), else how many, the first one (its character-strings
 * joined, truncated to size) in record; -2 at the deadline or *stop.
 */
int rdns_dmarc(struct rdns *r, const char *name, char *record, size_t size,
    double deadline, volatile sig_atomic_t *stop, enum rdns_status *status_r);

/*
 * rdns_query - one question, name and type (a dm_dns_type of
 * common/dnsrec.h: A, AAAA, MX, TXT, PTR, CNAME), answered into *a:
 * status RDNS_OK with the records of that type (after the CNAMEs the
 * answer followed, which are listed in cname[]), RDNS_NODATA,
 * RDNS_NXDOMAIN, RDNS_SERVFAIL, RDNS_REFUSED, RDNS_TIMEOUT (also at the
 * deadline or *stop) or RDNS_ERROR. A TXT record's character-strings are
 * joined (txt, malloc'd), with their number and the longest; MX records
 * come sorted by preference (then name). rdns_answer_free() frees it. 0,
 * or -1 out of memory (err).
 *
 * Only the records of the type owned by name or by the last name of the
 * CNAME chain are kept; RDNS_NXDOMAIN with cname[] filled is a dangling
 * CNAME (its target does not exist). A TXT record holding a NUL byte is
 * kept: its txt_len is then more than strlen(txt). A type CNAME question
 * is answered with the CNAME of name itself (also in cname[]). Names are
 * lower case, without the trailing dot, as ares_expand_name() writes
 * them (any byte that is not printable escaped \DDD); the null MX
 * (RFC 7505) has the name "". A name that is not one (empty, over 253
 * bytes) or a type not listed: RDNS_ERROR, nothing asked. Answers over
 * 512 bytes come over TCP (the server sets TC, c-ares asks again).
 */
#define RDNS_RR_MAX	64	/* records kept from one answer */
#define RDNS_CNAMES	8	/* CNAMEs followed in an answer */

struct rdns_rr {
	int type;			/* a dm_dns_type */
	uint32_t ttl;
	unsigned pref;			/* MX */
	char name[RDNS_NAME_MAX + 1];	/* MX exchange, PTR name, CNAME target */
	char addr[RDNS_IP_MAX];		/* A, AAAA */
	char *txt;			/* TXT: the strings joined */
	size_t txt_len;
	unsigned strings;		/* TXT: how many character-strings */
	size_t longest;			/* TXT: the longest's length */
};

struct rdns_answer {
	enum rdns_status status;
	struct rdns_rr rr[RDNS_RR_MAX];
	size_t count;
	char cname[RDNS_CNAMES][RDNS_NAME_MAX + 1];	/* followed, in order */
	size_t cnames;
	int truncated;			/* more records than RDNS_RR_MAX */
};

int rdns_query(struct rdns *r, const char *name, int type,
    struct rdns_answer *a, double deadline, volatile sig_atomic_t *stop,
    struct dm_error *err);
void rdns_answer_free(struct rdns_answer *a);

#define RDNS_WALK_TTL	86400	/* a tree walk's answer is kept a day */

struct rdns_walk_totals {
	uint64_t walked;	/* treewalk_orgs rows written */
	uint64_t differ;	/* of which the walk and the PSL differ */
	uint64_t failed;	/* the DNS failed (the PSL's verdict stays) */
	uint64_t unfinished;	/* due, not walked before the deadline */
	uint64_t reports;	/* treewalk reports realigned */
	uint64_t changed;	/* of which a record's verdict changed */
	uint64_t records;	/* records whose verdict changed */
	uint64_t waiting;	/* reports left for a domain not walked */
};

/*
 * rdns_treewalk - the DMARCbis tree walk (RFC 9989 4.10, common/align.h)
 * of each domain of the reports that say discovery_method=treewalk not
 * walked yet or expired (dmarcd.treewalk_orgs: a day; 15 minutes after a
 * DNS failure, which keeps an earlier answer), one query at a time with
 * the answers shared between the walks of a run, within the deadline;
 * then store_treewalk_realign(): those reports aligned again where the
 * walk and the PSL disagree, their rollup redone. DM_E_UNAVAILABLE when
 * queries were sent and not one answered.
 */
int rdns_treewalk(struct store *store, const struct dm_config *cfg,
    const struct rdns_limits *limits, struct rdns_walk_totals *totals,
    struct dm_error *err);

/*
 * The daemon's way: rdns_enrich, then rdns_treewalk, in a thread of its
 * own, with its own connection (conninfo of cfg) and a copy of cfg,
 * within deadline_s seconds. rdns_bg_poll: 0 while it runs, 1 once it is
 * over (totals and err filled, err->code DM_E_NONE when it went well; bg
 * freed and set to NULL). rdns_bg_stop: ask it to stop, wait for it, free
 * it.
 */
struct rdns_bg;
int rdns_bg_start(struct rdns_bg **bg_out, const struct dm_config *cfg,
    unsigned deadline_s, struct dm_error *err);
int rdns_bg_poll(struct rdns_bg **bg, struct rdns_totals *totals,
    struct dm_error *err);
void rdns_bg_stop(struct rdns_bg **bg);

#endif
