/* slab.c: header-free small-object allocator with one free list per 16-byte size class; see
 * slab.h. */
#include "core/slab.h"

#include "hswarm/alloc.h"
#include "hswarm/error.h"

#define CLASS_BYTES 16
#define NCLASSES (HS_SLAB_MAX / CLASS_BYTES)
#define CHUNK_BYTES (64u * 1024u)

typedef struct free_block {
  struct free_block *next;
} free_block;

typedef struct chunk {
  struct chunk *next;
} chunk;

struct hs_slab {
  free_block *free[NCLASSES];
  char *bump, *bump_end;   /* the unused tail of the newest chunk */
  chunk *chunks;
  uint64_t chunk_bytes;
};

int hs_slab_create(hs_slab **out) {
  *out = hs_calloc(1, sizeof **out);
  return *out ? 0 : HS_ENOMEM;
}

void hs_slab_destroy(hs_slab *s) {
  if (!s) return;
  while (s->chunks) {
    chunk *next = s->chunks->next;
    hs_free(s->chunks);
    s->chunks = next;
  }
  hs_free(s);
}

static size_t class_of(size_t size) { return (size - 1) / CLASS_BYTES; }

void *hs_slab_alloc(hs_slab *s, size_t size) {
  size_t c = class_of(size);
  free_block *b = s->free[c];
  if (b) {
    s->free[c] = b->next;
    return b;
  }
  size_t bytes = (c + 1) * CLASS_BYTES;
  if ((size_t)(s->bump_end - s->bump) < bytes) {
    /* the tail of the old chunk goes to the free lists, largest classes first */
    while (s->bump && (size_t)(s->bump_end - s->bump) >= CLASS_BYTES) {
      size_t left = (size_t)(s->bump_end - s->bump);
      size_t k = (left > HS_SLAB_MAX ? HS_SLAB_MAX : left) / CLASS_BYTES - 1;
      free_block *f = (free_block *)s->bump;
      f->next = s->free[k];
      s->free[k] = f;
      s->bump += (k + 1) * CLASS_BYTES;
    }
    chunk *ch = hs_malloc(CHUNK_BYTES);
    if (!ch) return NULL;
    ch->next = s->chunks;
    s->chunks = ch;
    s->chunk_bytes += CHUNK_BYTES;
    s->bump = (char *)ch + CLASS_BYTES; /* keeps blocks 16-byte aligned */
    s->bump_end = (char *)ch + CHUNK_BYTES;
  }
  void *p = s->bump;
  s->bump += bytes;
  return p;
}

void hs_slab_free(hs_slab *s, void *p, size_t size) {
  free_block *b = p;
  size_t c = class_of(size);
  b->next = s->free[c];
  s->free[c] = b;
}

uint64_t hs_slab_chunk_bytes(const hs_slab *s) { return s->chunk_bytes; }
