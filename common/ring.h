/*
 * ring.h - a bounded hand-off between one producer thread and one
 * consumer thread.
 *
 * The ring only counts slots; the caller owns the slots' memory (an array
 * of N buffers indexed by the numbers handed out here). A full ring puts
 * the producer to sleep until half of it is free, and each side wakes the
 * other only when it sleeps: on a virtual machine a futex wake-up per
 * chunk costs more than the chunk's work.
 */
#ifndef DM_RING_H
#define DM_RING_H

#include <pthread.h>

struct dm_ring {
	unsigned slots;
	unsigned head, tail;		/* published, released */
	int closed, cancelled;
	int producer_waits, consumer_waits;
	pthread_mutex_t lock;
	pthread_cond_t cond;
};

int dm_ring_init(struct dm_ring *r, unsigned slots);
void dm_ring_destroy(struct dm_ring *r);
/* Producer: a free slot's index, or -1 when the consumer cancelled. */
int dm_ring_acquire(struct dm_ring *r);
void dm_ring_publish(struct dm_ring *r);
/* Producer: nothing more will come. */
void dm_ring_close(struct dm_ring *r);
/* Consumer: a published slot's index, or -1 when closed and drained. */
int dm_ring_take(struct dm_ring *r);
void dm_ring_release(struct dm_ring *r);
/* Consumer: the producer should stop. */
void dm_ring_cancel(struct dm_ring *r);

#endif
