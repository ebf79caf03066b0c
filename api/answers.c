/*
 * answers.c - the API's answers to summary, sources and readiness, kept
 * until the data under them changes.
 *
 * Working such an answer out costs a millisecond or more of PostgreSQL
 * time per request, and dashboards ask the same questions over and over
 * while the data changes only when reports are stored (a few times a
 * day). So an answer is kept, keyed by what was asked (the statement, the
 * domain and the day-rounded span), and dropped as soon as the data can
 * have changed:
 *
 *   - the store sends NOTIFY dmarcd_data, 'DOMAIN' in the transaction
 *     that stores a domain's reports, and '*' when what every domain's
 *     answers depend on changes (names of sources, the sender map, tree
 *     walk realignments: sql/0013_notify.sql); a listener thread of ours
 *     (LISTEN dmarcd_data on its own connection) drops the entries;
 *   - while the listener is not connected nothing is kept (an answer
 *     could go stale unseen), and everything is dropped when it connects
 *     again;
 *   - every entry is dropped after ttl seconds anyway;
 *   - an answer worked out while an invalidation came is not kept (the
 *     generation counter).
 *
 * The table is bounded: ANSWERS_SLOTS entries, ANSWERS_MAX_BYTES of
 * bodies; a full table evicts the oldest entry in the probe window.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "common/config.h"
#include "store/pq.h"

#define ANSWERS_SLOTS		8192	/* power of two */
#define ANSWERS_PROBE		16
#define ANSWERS_MAX_BYTES	(64u << 20)
#define ANSWERS_KEY_MAX		320

struct answer {
	char key[ANSWERS_KEY_MAX];	/* "" : free */
	char domain[256];
	char *body;
	size_t len;
	int64_t stored_at;
};

struct api_answers {
	pthread_mutex_t lock;
	struct answer slots[ANSWERS_SLOTS];
	size_t bytes;
	uint64_t generation;
	int listening;			/* the listener is connected */
	unsigned ttl_s;
	char conninfo[DM_CONFIG_CONNINFO_MAX];
	pthread_t thread;
	int started;
	int stop;			/* __atomic */
	uint64_t hits, misses;
};

static uint32_t
hash(const char *s)
{
	uint32_t h = 2166136261U;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 16777619U;
	return h;
}

static void
drop(struct api_answers *a, struct answer *e)
{
	a->bytes -= e->len;
	free(e->body);
	e->body = NULL;
	e->len = 0;
	e->key[0] = '\0';
}

/* Callers hold the lock. */
static void
drop_matching(struct api_answers *a, const char *domain)
{
	size_t i;

	a->generation++;
	for (i = 0; i < ANSWERS_SLOTS; i++)
		if (a->slots[i].key[0] != '\0' && (domain == NULL ||
		    strcmp(a->slots[i].domain, domain) == 0))
			drop(a, &a->slots[i]);
}

void
api_answers_invalidate(struct api_answers *a, const char *domain)
{
	if (a == NULL)
		return;
	pthread_mutex_lock(&a->lock);
	drop_matching(a, domain != NULL && strcmp(domain, "*") != 0 ?
	    domain : NULL);
	pthread_mutex_unlock(&a->lock);
}

int
api_answers_get(struct api_answers *a, const char *key, int64_t now,
    char **body_r, size_t *len_r, uint64_t *generation_r)
{
	uint32_t h;
	size_t i;
	int found = 0;

	*body_r = NULL;
	*generation_r = 0;
	if (a == NULL || strlen(key) >= ANSWERS_KEY_MAX)
		return 0;
	h = hash(key);
	pthread_mutex_lock(&a->lock);
	*generation_r = a->generation;
	for (i = 0; i < ANSWERS_PROBE && a->listening; i++) {
		struct answer *e = &a->slots[(h + i) & (ANSWERS_SLOTS - 1)];

		if (e->key[0] == '\0' || strcmp(e->key, key) != 0)
			continue;
		if (now - e->stored_at >= (int64_t)a->ttl_s) {
			drop(a, e);
			break;
		}
		*body_r = malloc(e->len + 1);
		if (*body_r != NULL) {
			memcpy(*body_r, e->body, e->len + 1);
			*len_r = e->len;
			found = 1;
		}
		break;
	}
	if (found)
		a->hits++;
	else
		a->misses++;
	pthread_mutex_unlock(&a->lock);
	return found;
}

void
api_answers_put(struct api_answers *a, const char *key, const char *domain,
    const char *body, size_t len, int64_t now, uint64_t generation)
{
	struct answer *victim = NULL;
	uint32_t h;
	size_t i;
	char *copy;

	if (a == NULL || strlen(key) >= ANSWERS_KEY_MAX ||
	    strlen(domain) >= sizeof(victim->domain) ||
	    len > ANSWERS_MAX_BYTES / 16)
		return;
	copy = malloc(len + 1);
	if (copy == NULL)
		return;
	memcpy(copy, body, len);
	copy[len] = '\0';
	h = hash(key);
	pthread_mutex_lock(&a->lock);
	/* Not kept: asked before an invalidation, or nobody listening. */
	if (!a->listening || generation != a->generation)
		goto out;
	for (i = 0; i < ANSWERS_PROBE; i++) {
		struct answer *e = &a->slots[(h + i) & (ANSWERS_SLOTS - 1)];

		if (e->key[0] == '\0' || strcmp(e->key, key) == 0) {
			victim = e;
			break;
		}
		if (victim == NULL || e->stored_at < victim->stored_at)
			victim = e;
	}
	if (victim->key[0] != '\0')
		drop(a, victim);
	/* Over the byte budget: start afresh rather than scan for room. */
	if (a->bytes + len > ANSWERS_MAX_BYTES)
		drop_matching(a, NULL);
	snprintf(victim->key, sizeof(victim->key), "%s", key);
	snprintf(victim->domain, sizeof(victim->domain), "%s", domain);
	victim->body = copy;
	victim->len = len;
	victim->stored_at = now;
	a->bytes += len;
	copy = NULL;
out:
	pthread_mutex_unlock(&a->lock);
	free(copy);
}

void
api_answers_counts(struct api_answers *a, uint64_t *hits_r,
    uint64_t *misses_r)
{
	*hits_r = *misses_r = 0;
	if (a == NULL)
		return;
	pthread_mutex_lock(&a->lock);
	*hits_r = a->hits;
	*misses_r = a->misses;
	pthread_mutex_unlock(&a->lock);
}

static void
set_listening(struct api_answers *a, int on)
{
	pthread_mutex_lock(&a->lock);
	drop_matching(a, NULL);
	a->listening = on;
	pthread_mutex_unlock(&a->lock);
}

/* One connection's life: LISTEN, then wait for notifications. */
static void
listen_once(struct api_answers *a)
{
	const char *keys[] = { "dbname", "connect_timeout",
	    "fallback_application_name", NULL };
	const char *values[] = { a->conninfo, "5", "dmarcd-api-listen", NULL };
	PGconn *pg;
	PGresult *res;
	PGnotify *n;
	int ok;

	pg = store_pq.PQconnectdbParams(keys, values, 1);
	if (pg == NULL || store_pq.PQstatus(pg) != CONNECTION_OK)
		goto out;
	res = store_pq.PQexec(pg, "LISTEN dmarcd_data");
	ok = res != NULL && store_pq.PQresultStatus(res) == PGRES_COMMAND_OK;
	store_pq.PQclear(res);
	if (!ok)
		goto out;
	set_listening(a, 1);
	while (!__atomic_load_n(&a->stop, __ATOMIC_ACQUIRE)) {
		struct pollfd p = { store_pq.PQsocket(pg), POLLIN, 0 };

		if (p.fd < 0)
			break;
		if (poll(&p, 1, 500) < 0 && errno != EINTR)
			break;
		if (p.revents == 0)
			continue;
		if (store_pq.PQconsumeInput(pg) == 0)
			break;		/* the connection broke */
		while ((n = store_pq.PQnotifies(pg)) != NULL) {
			api_answers_invalidate(a, n->extra);
			store_pq.PQfreemem(n);
		}
	}
out:
	set_listening(a, 0);
	if (pg != NULL)
		store_pq.PQfinish(pg);
}

static void *
listener(void *arg)
{
	struct api_answers *a = arg;

	while (!__atomic_load_n(&a->stop, __ATOMIC_ACQUIRE)) {
		listen_once(a);
		for (int i = 0; i < 10 &&
		    !__atomic_load_n(&a->stop, __ATOMIC_ACQUIRE); i++)
			usleep(100 * 1000);	/* then connect again */
	}
	return NULL;
}

struct api_answers *
api_answers_new(const char *conninfo, unsigned ttl_s, struct dm_error *err)
{
	struct api_answers *a;

	if (ttl_s == 0)
		return NULL;		/* keeping answers is off */
	if (store_pq_load(err) != 0)
		return NULL;
	a = calloc(1, sizeof(*a));
	if (a == NULL) {
		dm_error_set(err, DM_E_NOMEM, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&a->lock, NULL);
	a->ttl_s = ttl_s;
	snprintf(a->conninfo, sizeof(a->conninfo), "%s", conninfo);
	if (pthread_create(&a->thread, NULL, listener, a) != 0) {
		pthread_mutex_destroy(&a->lock);
		free(a);
		dm_error_set(err, DM_E_INTERNAL, "cannot start a thread");
		return NULL;
	}
	a->started = 1;
	return a;
}

void
api_answers_free(struct api_answers **ap)
{
	struct api_answers *a = *ap;

	if (a == NULL)
		return;
	__atomic_store_n(&a->stop, 1, __ATOMIC_RELEASE);
	if (a->started)
		pthread_join(a->thread, NULL);
	drop_matching(a, NULL);
	pthread_mutex_destroy(&a->lock);
	free(a);
	*ap = NULL;
}
