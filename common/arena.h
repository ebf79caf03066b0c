/*
 * arena.h - a capped string arena whose pointers never move.
 *
 * The parser keeps every string of one record (or of one report's
 * metadata) here and resets the arena when the record has been handed
 * on, so memory stays flat however many records a report has. Chunks
 * are allocated as needed and kept across resets; the total is capped
 * and an allocation past the cap fails instead of growing.
 */
#ifndef DM_ARENA_H
#define DM_ARENA_H

#include <stddef.h>

#include "common/error.h"

struct dm_arena_chunk;

struct dm_arena {
	struct dm_arena_chunk *chunks;	/* first chunk */
	struct dm_arena_chunk *current;
	size_t used;			/* bytes handed out since reset */
	size_t max;			/* cap on used */
};

void dm_arena_init(struct dm_arena *a, size_t max);
void dm_arena_reset(struct dm_arena *a);
void dm_arena_free(struct dm_arena *a);

/* dm_arena_strndup - copy len bytes and a NUL; NULL when over the cap. */
char *dm_arena_strndup(struct dm_arena *a, const char *s, size_t len)
    DM_WARN_UNUSED;
void *dm_arena_alloc(struct dm_arena *a, size_t len) DM_WARN_UNUSED;

#endif
