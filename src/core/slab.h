/* slab.h: a small-object allocator for one thread (internal).
 *
 * Lua allocates and frees many small blocks (tables, strings, closures, views) and tells its
 * allocator the size of every block it frees. That lets this allocator keep no header per block:
 * blocks of up to HS_SLAB_MAX bytes are rounded up to a multiple of 16 and served from one free
 * list per size class, refilled by carving 64 KiB chunks. Freed blocks go back to their class's
 * list and are reused by any Lua state of the runtime; chunks are returned to the system only by
 * hs_slab_destroy. Larger blocks are the caller's business (hs_malloc). Not thread-safe: the
 * runtime's loop thread owns it. */
#ifndef HS_CORE_SLAB_H
#define HS_CORE_SLAB_H

#include <stddef.h>
#include <stdint.h>

#define HS_SLAB_MAX 512

typedef struct hs_slab hs_slab;

int hs_slab_create(hs_slab **out);                 /* 0 or HS_ENOMEM */
void hs_slab_destroy(hs_slab *s);                  /* frees every chunk */
void *hs_slab_alloc(hs_slab *s, size_t size);      /* 0 < size <= HS_SLAB_MAX; NULL if no memory */
void hs_slab_free(hs_slab *s, void *p, size_t size); /* size as given to hs_slab_alloc */
uint64_t hs_slab_chunk_bytes(const hs_slab *s);    /* bytes held in chunks */

#endif
