/*
 * ring.c - single-producer single-consumer slot hand-off (see ring.h).
 */
#include "common/ring.h"

int
dm_ring_init(struct dm_ring *r, unsigned slots)
{
	r->slots = slots;
	r->head = r->tail = 0;
	r->closed = r->cancelled = 0;
	r->producer_waits = r->consumer_waits = 0;
	if (pthread_mutex_init(&r->lock, NULL) != 0)
		return -1;
	if (pthread_cond_init(&r->cond, NULL) != 0) {
		pthread_mutex_destroy(&r->lock);
		return -1;
	}
	return 0;
}

void
dm_ring_destroy(struct dm_ring *r)
{
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->lock);
}

int
dm_ring_acquire(struct dm_ring *r)
{
	int slot;

	pthread_mutex_lock(&r->lock);
	if (r->head - r->tail == r->slots && !r->cancelled) {
		r->producer_waits = 1;
		while (r->head - r->tail > r->slots / 2 && !r->cancelled)
			pthread_cond_wait(&r->cond, &r->lock);
		r->producer_waits = 0;
	}
	slot = r->cancelled ? -1 : (int)(r->head % r->slots);
	pthread_mutex_unlock(&r->lock);
	return slot;
}

void
dm_ring_publish(struct dm_ring *r)
{
	pthread_mutex_lock(&r->lock);
	r->head++;
	if (r->consumer_waits)
		pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

void
dm_ring_close(struct dm_ring *r)
{
	pthread_mutex_lock(&r->lock);
	r->closed = 1;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

int
dm_ring_take(struct dm_ring *r)
{
	int slot;

	pthread_mutex_lock(&r->lock);
	r->consumer_waits = 1;
	while (r->head == r->tail && !r->closed)
		pthread_cond_wait(&r->cond, &r->lock);
	r->consumer_waits = 0;
	slot = r->head == r->tail ? -1 : (int)(r->tail % r->slots);
	pthread_mutex_unlock(&r->lock);
	return slot;
}

void
dm_ring_release(struct dm_ring *r)
{
	pthread_mutex_lock(&r->lock);
	r->tail++;
	if (r->producer_waits && r->head - r->tail <= r->slots / 2)
		pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

void
dm_ring_cancel(struct dm_ring *r)
{
	pthread_mutex_lock(&r->lock);
	r->cancelled = 1;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
}
