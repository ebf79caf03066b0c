/*
 * arena.c - capped arena of stable strings (see arena.h).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"

#define ARENA_CHUNK	(16 * 1024)

struct dm_arena_chunk {
	struct dm_arena_chunk *next;
	size_t size;
	size_t used;
	_Alignas(max_align_t) unsigned char data[];
};

void
dm_arena_init(struct dm_arena *a, size_t max)
{
	a->chunks = NULL;
	a->current = NULL;
	a->used = 0;
	a->max = max;
}

void
dm_arena_reset(struct dm_arena *a)
{
	struct dm_arena_chunk *c;

	for (c = a->chunks; c != NULL; c = c->next)
		c->used = 0;
	a->current = a->chunks;
	a->used = 0;
}

void
dm_arena_free(struct dm_arena *a)
{
	struct dm_arena_chunk *c, *next;

	for (c = a->chunks; c != NULL; c = next) {
		next = c->next;
		free(c);
	}
	a->chunks = a->current = NULL;
	a->used = 0;
}

void *
dm_arena_alloc(struct dm_arena *a, size_t len)
{
	struct dm_arena_chunk *c, *prev = NULL;
	size_t need = (len + 15) & ~(size_t)15;
	size_t size;

	if (need < len || need > a->max - a->used || a->used > a->max)
		return NULL;
	/* Reuse a kept chunk with room, from the current one on. */
	for (c = a->current; c != NULL; prev = c, c = c->next) {
		if (c->size - c->used >= need) {
			void *p = c->data + c->used;

			c->used += need;
			a->current = c;
			a->used += need;
			return p;
		}
	}
	size = need > ARENA_CHUNK ? need : ARENA_CHUNK;
	c = malloc(sizeof(*c) + size);
	if (c == NULL)
		return NULL;
	c->next = NULL;
	c->size = size;
	c->used = need;
	if (prev == NULL) {
		/* No chunk after current: append at the very end. */
		struct dm_arena_chunk **tail = &a->chunks;

		while (*tail != NULL)
			tail = &(*tail)->next;
		*tail = c;
	} else
		prev->next = c;
	a->current = c;
	a->used += need;
	return c->data;
}

char *
dm_arena_strndup(struct dm_arena *a, const char *s, size_t len)
{
	char *p;

	if (len == SIZE_MAX)
		return NULL;
	p = dm_arena_alloc(a, len + 1);
	if (p == NULL)
		return NULL;
	if (len > 0)
		memcpy(p, s, len);
	p[len] = '\0';
	return p;
}
