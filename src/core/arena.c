/* arena.c: the shared arena: blobs addressed by generation-checked handles (hswarm/arena.h).
 *
 * The idea
 * --------
 * Each blob lives in its own allocation (one hs_malloc of its size) and is described by a slot:
 *
 *     state  atomic 64 bits: generation (bits 63..32) | refcount (bits 31..1) | published (bit 0)
 *     data   atomic pointer to the blob's bytes, NULL while the slot is free
 *     len    atomic size of the blob
 *     next   atomic index of the next free slot, while the slot is on the free list
 *
 * A handle is (generation << 32) | slot index. It is good while its slot's state carries the same
 * generation and a refcount above zero. Generations start at 1 and skip 0 when they wrap, so a
 * handle with generation 0, HS_HANDLE_NONE included, never names anything.
 *
 * Slot table. Slots come in chunks of CHUNK_SLOTS. The array of chunk pointers is sized at creation
 * from max_blobs, so it never moves. A chunk is made under `chunk_lock` the first time one of its
 * slots is needed, initialised, then published with a release store; looking a handle up is an
 * acquire load of that pointer and takes no lock. Chunks are freed only by hs_arena_destroy, so a
 * slot's memory stays valid for the arena's whole life, whatever happens to its blobs.
 *
 * Lifetimes, all by compare-and-swap on `state`:
 *   alloc    the thread that took the slot off the free list owns it alone: it stores len and
 *            data, then state = gen | 1 reference | unpublished (release store).
 *   publish  CAS that sets the published bit (release): the creator's writes to the bytes happen
 *            before any reader's acquire load that sees the bit.
 *   retain   CAS that adds a reference, only if the generation matches and refcount > 0, so a
 *            retain can never bring a freed blob back.
 *   release  CAS that drops a reference. The last one swaps in (gen + 1) | 0 references in the
 *            same CAS: from that instant every handle to the blob is stale. The releasing thread
 *            then owns the slot alone: it clears data, frees the bytes, gives back the byte count
 *            and pushes the slot on the free list. The CAS is acq_rel, so every other holder's use
 *            of the bytes happens before the free.
 *
 * Why readers are safe. hs_arena_read loads state (acquire) and checks generation, refcount and the
 * published bit; loads data and len (acquire); then loads state again and checks that the
 * generation is unchanged and the blob still live (a seqlock-style re-check). A release that frees
 * the blob bumps the generation before anyone can store another data pointer or length in the slot
 * (the slot only comes back through the free list), and those stores are release stores, so a
 * reader that saw a newer data or len also sees the newer generation and answers HS_ESTALE. A bad
 * handle therefore never yields another blob's bytes, and the lookup itself never touches freed
 * memory: it reads only the slot, which lives as long as the arena. As the header says, the pointer
 * handed out stays valid only while somebody holds a reference.
 *
 * Free slots. A lock-free Treiber stack of slot indices: `free_head` packs a 32-bit tag with the
 * index on top, and each free slot holds the next index. We chose it over a mutex-protected stack
 * because alloc and release are the hot path, called by many agent threads at once: a push or a pop
 * is one CAS, with no system call, and a thread descheduled mid-operation holds nobody up. The
 * usual hazards of the Treiber stack do not bite: a popper may read `next` of a slot that another
 * thread popped meanwhile, but slots are never freed before the arena, so that read is harmless
 * (and atomic), and the tag, bumped by every successful push and pop, makes the popper's CAS fail
 * (no ABA). Slots never used yet are handed out from `fresh_next`, a high-water mark.
 *
 * Capacity. `live_bytes` and `live_blobs` are reserved by CAS loops before anything is allocated,
 * so the limits are exact and a refused or failed request changes nothing. A freed slot is pushed
 * back on the free list before `live_blobs` drops, so a thread holding a `live_blobs` reservation
 * always finds a slot, fresh or on the stack (it may have to retry a pop that raced, and yields
 * while a releaser finishes its push).
 */
#include "hswarm/arena.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#include "core/last_error.h"
#include "hswarm/alloc.h"
#include "hswarm/error.h"

#define CHUNK_SHIFT 12
#define CHUNK_SLOTS (1u << CHUNK_SHIFT) /* 4096 slots per chunk */
#define MAX_BLOBS_LIMIT (UINT64_C(1) << 31)
#define NIL_INDEX UINT32_MAX /* end of the free list */

/* state word layout */
#define PUBLISHED_BIT UINT64_C(1)
#define REF_ONE UINT64_C(2)
#define REF_MASK UINT64_C(0xFFFFFFFE)
#define REF_MAX (REF_MASK >> 1) /* 2^31 - 1 references */

typedef struct hs_slot {
  _Atomic uint64_t state;
  _Atomic(unsigned char *) data;
  _Atomic size_t len;
  _Atomic uint32_t next; /* next free slot, while on the free list */
} hs_slot;

struct hs_arena {
  /* Fixed at creation: read by every lookup. */
  uint64_t max_bytes;
  uint64_t max_blobs;
  uint32_t nchunks;
  _Atomic(hs_slot *) *chunks; /* nchunks pointers, NULL until the chunk is made */
  pthread_mutex_t chunk_lock; /* serialises chunk creation only */
  char pad[64];               /* keeps the read-mostly fields off the hot counters' cache line */
  /* Hot counters, written by every alloc and release. */
  _Atomic uint64_t free_head; /* tag << 32 | top index (NIL_INDEX when empty) */
  _Atomic uint64_t live_bytes;
  _Atomic uint64_t live_blobs; /* includes reservations of allocs in progress */
  _Atomic uint64_t total_allocs;
  _Atomic uint32_t fresh_next; /* slots [0, fresh_next) have been handed out at least once */
};

static _Thread_local hs_errbuf err;

const char *hs_arena_last_error(void) { return err.msg; }

/* ---- state word helpers ---- */

static inline uint32_t state_gen(uint64_t s) { return (uint32_t)(s >> 32); }
static inline uint32_t state_refs(uint64_t s) { return (uint32_t)((s & REF_MASK) >> 1); }
static inline bool state_published(uint64_t s) { return (s & PUBLISHED_BIT) != 0; }
static inline uint64_t make_state(uint32_t gen, uint32_t refs) {
  return ((uint64_t)gen << 32) | ((uint64_t)refs << 1);
}
static inline uint32_t next_gen(uint32_t gen) { return gen == UINT32_MAX ? 1 : gen + 1; }

static inline uint32_t handle_index(hs_handle h) { return (uint32_t)h; }
static inline uint32_t handle_gen(hs_handle h) { return (uint32_t)(h >> 32); }
static inline hs_handle make_handle(uint32_t gen, uint32_t index) {
  return ((hs_handle)gen << 32) | index;
}

/* ---- slot table ---- */

/* The slot for an index whose chunk is known to exist. */
static inline hs_slot *slot_at(hs_arena *a, uint32_t index) {
  hs_slot *chunk = atomic_load_explicit(&a->chunks[index >> CHUNK_SHIFT], memory_order_acquire);
  return &chunk[index & (CHUNK_SLOTS - 1)];
}

/* Makes chunk c if it does not exist yet. HS_ENOMEM if it cannot. */
static int ensure_chunk(hs_arena *a, uint32_t c) {
  if (atomic_load_explicit(&a->chunks[c], memory_order_acquire)) return HS_OK;
  int rc = HS_OK;
  pthread_mutex_lock(&a->chunk_lock);
  if (!atomic_load_explicit(&a->chunks[c], memory_order_relaxed)) {
    hs_slot *chunk = hs_malloc(CHUNK_SLOTS * sizeof *chunk);
    if (chunk) {
      for (uint32_t i = 0; i < CHUNK_SLOTS; i++) {
        atomic_init(&chunk[i].state, make_state(1, 0));
        atomic_init(&chunk[i].data, NULL);
        atomic_init(&chunk[i].len, 0);
        atomic_init(&chunk[i].next, NIL_INDEX);
      }
      atomic_store_explicit(&a->chunks[c], chunk, memory_order_release);
    } else {
      rc = hs_set_error(&err, HS_ENOMEM, "arena: out of memory for a chunk of %u slots",
                        CHUNK_SLOTS);
    }
  }
  pthread_mutex_unlock(&a->chunk_lock);
  return rc;
}

/* ---- free list (tagged Treiber stack) ---- */

static uint32_t free_list_pop(hs_arena *a) {
  uint64_t head = atomic_load_explicit(&a->free_head, memory_order_acquire);
  for (;;) {
    uint32_t index = (uint32_t)head;
    if (index == NIL_INDEX) return NIL_INDEX;
    uint32_t next = atomic_load_explicit(&slot_at(a, index)->next, memory_order_relaxed);
    uint64_t tag = (head >> 32) + 1;
    uint64_t new_head = (tag << 32) | next;
    if (atomic_compare_exchange_weak_explicit(&a->free_head, &head, new_head, memory_order_acquire,
                                              memory_order_acquire))
      return index;
  }
}

static void free_list_push(hs_arena *a, uint32_t index) {
  hs_slot *s = slot_at(a, index);
  uint64_t head = atomic_load_explicit(&a->free_head, memory_order_relaxed);
  for (;;) {
    atomic_store_explicit(&s->next, (uint32_t)head, memory_order_relaxed);
    uint64_t tag = (head >> 32) + 1;
    uint64_t new_head = (tag << 32) | index;
    if (atomic_compare_exchange_weak_explicit(&a->free_head, &head, new_head, memory_order_release,
                                              memory_order_relaxed))
      return;
  }
}

/* Takes a slot off the free list, or a fresh one. The caller holds a live_blobs reservation, so one
 * is available (possibly after a pop that raced with a push). HS_ENOMEM if a chunk cannot be made.
 */
static int take_slot(hs_arena *a, uint32_t *out_index) {
  for (;;) {
    uint32_t index = free_list_pop(a);
    if (index != NIL_INDEX) {
      *out_index = index;
      return HS_OK;
    }
    uint32_t fresh = atomic_load_explicit(&a->fresh_next, memory_order_relaxed);
    if (fresh < a->max_blobs) {
      int rc = ensure_chunk(a, fresh >> CHUNK_SHIFT);
      if (rc) return rc;
      if (atomic_compare_exchange_weak_explicit(&a->fresh_next, &fresh, fresh + 1,
                                                memory_order_release, memory_order_relaxed)) {
        *out_index = fresh;
        return HS_OK;
      }
    } else {
      sched_yield(); /* a releaser is between its last-reference CAS and its push: let it run */
    }
  }
}

/* ---- capacity ---- */

static int reserve_bytes(hs_arena *a, size_t size) {
  uint64_t used = atomic_load_explicit(&a->live_bytes, memory_order_relaxed);
  do {
    if ((uint64_t)size > a->max_bytes - used)
      return hs_set_error(&err, HS_ENOSPC, "arena full: %llu of %llu bytes in use, %llu more asked",
                          (unsigned long long)used, (unsigned long long)a->max_bytes,
                          (unsigned long long)size);
  } while (!atomic_compare_exchange_weak_explicit(&a->live_bytes, &used, used + size,
                                                  memory_order_relaxed, memory_order_relaxed));
  return HS_OK;
}

static int reserve_blob(hs_arena *a) {
  uint64_t used = atomic_load_explicit(&a->live_blobs, memory_order_relaxed);
  do {
    if (used >= a->max_blobs)
      return hs_set_error(&err, HS_ENOSPC, "arena full: %llu of %llu blobs in use, 1 more asked",
                          (unsigned long long)used, (unsigned long long)a->max_blobs);
  } while (!atomic_compare_exchange_weak_explicit(&a->live_blobs, &used, used + 1,
                                                  memory_order_relaxed, memory_order_relaxed));
  return HS_OK;
}

static void unreserve(hs_arena *a, size_t size) {
  atomic_fetch_sub_explicit(&a->live_bytes, size, memory_order_relaxed);
  atomic_fetch_sub_explicit(&a->live_blobs, 1, memory_order_relaxed);
}

/* ---- handle lookup ---- */

static int stale(hs_handle h, const char *why) {
  return hs_set_error(&err, HS_ESTALE, "arena: handle 0x%016llx is invalid: %s",
                      (unsigned long long)h, why);
}

/* The slot a handle's index names, or NULL if there is none. Takes no lock and sets no error. */
static inline hs_slot *find_slot(hs_arena *a, uint32_t index) {
  if (index >= a->max_blobs) return NULL;
  hs_slot *chunk = atomic_load_explicit(&a->chunks[index >> CHUNK_SHIFT], memory_order_acquire);
  return chunk ? &chunk[index & (CHUNK_SLOTS - 1)] : NULL;
}

/* The slot a handle names, or NULL (error set) if its index or generation cannot be right. */
static hs_slot *lookup_slot(hs_arena *a, hs_handle h) {
  if (handle_gen(h) == 0) {
    stale(h, h == HS_HANDLE_NONE ? "it is HS_HANDLE_NONE" : "generation 0 is never valid");
    return NULL;
  }
  hs_slot *s = find_slot(a, handle_index(h));
  if (!s)
    hs_set_error(&err, HS_ESTALE,
                 "arena: handle 0x%016llx is invalid: slot %u out of range (max_blobs %llu, "
                 "%u slots ever used)",
                 (unsigned long long)h, handle_index(h), (unsigned long long)a->max_blobs,
                 atomic_load_explicit(&a->fresh_next, memory_order_relaxed));
  return s;
}

/* Checks a state word against a handle; HS_OK if the handle names a live blob in that state. */
static int check_live(hs_handle h, uint64_t state) {
  if (state_gen(state) != handle_gen(h)) {
    return hs_set_error(&err, HS_ESTALE,
                        "arena: handle 0x%016llx is invalid: generation %u does not match the "
                        "slot's %u (the blob it named was freed, or it is forged)",
                        (unsigned long long)h, handle_gen(h), state_gen(state));
  }
  if (state_refs(state) == 0) return stale(h, "its slot holds no blob (freed, or never allocated)");
  return HS_OK;
}

/* Loads the live state of h's slot (acquire). */
static int load_live(hs_arena *a, hs_handle h, hs_slot **out_slot, uint64_t *out_state) {
  hs_slot *s = lookup_slot(a, h);
  if (!s) return HS_ESTALE;
  uint64_t state = atomic_load_explicit(&s->state, memory_order_acquire);
  int rc = check_live(h, state);
  if (rc) return rc;
  *out_slot = s;
  *out_state = state;
  return HS_OK;
}

/* Reads data and len of a slot seen live, then re-checks that the blob was not freed meanwhile. */
static int load_bytes(hs_slot *s, hs_handle h, unsigned char **out_ptr, size_t *out_len) {
  unsigned char *p = atomic_load_explicit(&s->data, memory_order_acquire);
  size_t n = atomic_load_explicit(&s->len, memory_order_acquire);
  uint64_t again = atomic_load_explicit(&s->state, memory_order_relaxed);
  if (state_gen(again) != handle_gen(h) || state_refs(again) == 0)
    return stale(h, "blob freed while being read");
  *out_ptr = p;
  *out_len = n;
  return HS_OK;
}

/* ---- create / destroy ---- */

int hs_arena_create(uint64_t max_bytes, uint64_t max_blobs, hs_arena **out) {
  if (!out) return hs_set_error(&err, HS_EINVAL, "arena: out is NULL");
  *out = NULL;
  if (max_blobs > MAX_BLOBS_LIMIT)
    return hs_set_error(&err, HS_EINVAL, "arena: max_blobs %llu is above the limit of %llu",
                        (unsigned long long)max_blobs, (unsigned long long)MAX_BLOBS_LIMIT);
  hs_arena *a = hs_calloc(1, sizeof *a);
  if (!a) return hs_set_error(&err, HS_ENOMEM, "arena: out of memory for the arena");
  a->max_bytes = max_bytes;
  a->max_blobs = max_blobs;
  uint32_t nchunks = (uint32_t)((max_blobs + CHUNK_SLOTS - 1) / CHUNK_SLOTS);
  a->nchunks = nchunks;
  a->chunks = hs_calloc(nchunks ? nchunks : 1, sizeof *a->chunks);
  if (!a->chunks) {
    hs_free(a);
    return hs_set_error(&err, HS_ENOMEM, "arena: out of memory for a table of %u chunks", nchunks);
  }
  for (uint32_t c = 0; c < a->nchunks; c++) atomic_init(&a->chunks[c], NULL);
  atomic_init(&a->free_head, (uint64_t)NIL_INDEX);
  atomic_init(&a->live_bytes, 0);
  atomic_init(&a->live_blobs, 0);
  atomic_init(&a->total_allocs, 0);
  atomic_init(&a->fresh_next, 0);
  if (pthread_mutex_init(&a->chunk_lock, NULL) != 0) {
    hs_free(a->chunks);
    hs_free(a);
    return hs_set_error(&err, HS_ENOMEM, "arena: cannot create its mutex");
  }
  *out = a;
  return HS_OK;
}

void hs_arena_destroy(hs_arena *a) {
  if (!a) return;
  uint32_t used = atomic_load_explicit(&a->fresh_next, memory_order_acquire);
  for (uint32_t i = 0; i < used; i++)
    hs_free(atomic_load_explicit(&slot_at(a, i)->data, memory_order_relaxed));
  for (uint32_t c = 0; c < a->nchunks; c++)
    hs_free(atomic_load_explicit(&a->chunks[c], memory_order_relaxed));
  pthread_mutex_destroy(&a->chunk_lock);
  hs_free(a->chunks);
  hs_free(a);
}

/* ---- blobs ---- */

int hs_arena_alloc(hs_arena *a, size_t size, hs_handle *out_handle, void **out_ptr) {
  if (!a || !out_handle) return hs_set_error(&err, HS_EINVAL, "arena: arena or out_handle is NULL");
  *out_handle = HS_HANDLE_NONE;
  int rc = reserve_bytes(a, size);
  if (rc) return rc;
  rc = reserve_blob(a);
  if (rc) {
    atomic_fetch_sub_explicit(&a->live_bytes, size, memory_order_relaxed);
    return rc;
  }
  unsigned char *bytes = hs_malloc(size ? size : 1);
  if (!bytes) {
    unreserve(a, size);
    return hs_set_error(&err, HS_ENOMEM, "arena: out of memory for a blob of %zu bytes", size);
  }
  uint32_t index;
  rc = take_slot(a, &index);
  if (rc) {
    hs_free(bytes);
    unreserve(a, size);
    return rc;
  }
  /* The slot is ours alone until its state says it is live. */
  hs_slot *s = slot_at(a, index);
  uint32_t gen = state_gen(atomic_load_explicit(&s->state, memory_order_relaxed));
  atomic_store_explicit(&s->len, size, memory_order_release);
  atomic_store_explicit(&s->data, bytes, memory_order_release);
  atomic_store_explicit(&s->state, make_state(gen, 1), memory_order_release);
  atomic_fetch_add_explicit(&a->total_allocs, 1, memory_order_relaxed);
  *out_handle = make_handle(gen, index);
  if (out_ptr) *out_ptr = bytes;
  return HS_OK;
}

/* The bytes of a live blob, for hs_arena_read and hs_arena_write_ptr. */
static int give_bytes(hs_slot *s, hs_handle h, void **out_ptr, size_t *out_len) {
  unsigned char *p = NULL;
  size_t n = 0;
  int rc = load_bytes(s, h, &p, &n);
  if (rc) return rc;
  *out_ptr = p;
  if (out_len) *out_len = n;
  return HS_OK;
}

int hs_arena_write_ptr(hs_arena *a, hs_handle h, void **out_ptr, size_t *out_len) {
  if (!a || !out_ptr) return hs_set_error(&err, HS_EINVAL, "arena: arena or out_ptr is NULL");
  hs_slot *s;
  uint64_t state;
  int rc = load_live(a, h, &s, &state);
  if (rc) return rc;
  if (state_published(state))
    return hs_set_error(&err, HS_EPERM, "arena: blob 0x%016llx is published, hence read-only",
                        (unsigned long long)h);
  return give_bytes(s, h, out_ptr, out_len);
}

int hs_arena_publish(hs_arena *a, hs_handle h) {
  if (!a) return hs_set_error(&err, HS_EINVAL, "arena: arena is NULL");
  hs_slot *s;
  uint64_t state;
  int rc = load_live(a, h, &s, &state);
  if (rc) return rc;
  for (;;) {
    if (state_published(state))
      return hs_set_error(&err, HS_EPERM, "arena: blob 0x%016llx is already published",
                          (unsigned long long)h);
    if (atomic_compare_exchange_weak_explicit(&s->state, &state, state | PUBLISHED_BIT,
                                              memory_order_acq_rel, memory_order_acquire))
      return HS_OK;
    rc = check_live(h, state);
    if (rc) return rc;
  }
}

int hs_arena_put(hs_arena *a, const void *data, size_t len, hs_handle *out_handle) {
  if (out_handle) *out_handle = HS_HANDLE_NONE;
  if (!data && len) return hs_set_error(&err, HS_EINVAL, "arena: data is NULL, len is %zu", len);
  void *p;
  hs_handle h;
  int rc = hs_arena_alloc(a, len, &h, &p);
  if (rc) return rc;
  if (len) memcpy(p, data, len);
  rc = hs_arena_publish(a, h);
  if (rc) {
    hs_arena_release(a, h);
    return rc;
  }
  *out_handle = h;
  return HS_OK;
}

int hs_arena_read(hs_arena *a, hs_handle h, const void **out_ptr, size_t *out_len) {
  if (!a || !out_ptr) return hs_set_error(&err, HS_EINVAL, "arena: arena or out_ptr is NULL");
  hs_slot *s;
  uint64_t state;
  int rc = load_live(a, h, &s, &state);
  if (rc) return rc;
  if (!state_published(state))
    return hs_set_error(&err, HS_EBUSY, "arena: blob 0x%016llx is not yet published",
                        (unsigned long long)h);
  void *p = NULL;
  rc = give_bytes(s, h, &p, out_len);
  if (rc == HS_OK) *out_ptr = p;
  return rc;
}

int hs_arena_retain(hs_arena *a, hs_handle h) {
  if (!a) return hs_set_error(&err, HS_EINVAL, "arena: arena is NULL");
  hs_slot *s;
  uint64_t state;
  int rc = load_live(a, h, &s, &state);
  if (rc) return rc;
  for (;;) {
    if (state_refs(state) >= REF_MAX)
      return hs_set_error(&err, HS_ENOSPC, "arena: blob 0x%016llx has the most references (%llu)",
                          (unsigned long long)h, (unsigned long long)REF_MAX);
    if (atomic_compare_exchange_weak_explicit(&s->state, &state, state + REF_ONE,
                                              memory_order_acq_rel, memory_order_acquire))
      return HS_OK;
    rc = check_live(h, state);
    if (rc) return rc;
  }
}

/* Frees the blob of a slot whose last reference was just dropped; the caller owns the slot. */
static void free_slot(hs_arena *a, hs_slot *s, uint32_t index) {
  unsigned char *p = atomic_load_explicit(&s->data, memory_order_relaxed);
  size_t n = atomic_load_explicit(&s->len, memory_order_relaxed);
  atomic_store_explicit(&s->data, NULL, memory_order_release);
  hs_free(p);
  atomic_fetch_sub_explicit(&a->live_bytes, n, memory_order_relaxed);
  free_list_push(a, index); /* before live_blobs drops: see "Capacity" above */
  atomic_fetch_sub_explicit(&a->live_blobs, 1, memory_order_relaxed);
}

int hs_arena_release(hs_arena *a, hs_handle h) {
  if (!a) return hs_set_error(&err, HS_EINVAL, "arena: arena is NULL");
  hs_slot *s;
  uint64_t state;
  int rc = load_live(a, h, &s, &state);
  if (rc) return rc;
  for (;;) {
    bool last = state_refs(state) == 1;
    uint64_t next = last ? make_state(next_gen(state_gen(state)), 0) : state - REF_ONE;
    if (atomic_compare_exchange_weak_explicit(&s->state, &state, next, memory_order_acq_rel,
                                              memory_order_acquire)) {
      if (last) free_slot(a, s, handle_index(h));
      return HS_OK;
    }
    rc = check_live(h, state);
    if (rc) return rc;
  }
}

int hs_arena_valid(hs_arena *a, hs_handle h) {
  if (!a || handle_gen(h) == 0) return 0;
  hs_slot *s = find_slot(a, handle_index(h));
  if (!s) return 0;
  uint64_t state = atomic_load_explicit(&s->state, memory_order_acquire);
  return state_gen(state) == handle_gen(h) && state_refs(state) > 0;
}

void hs_arena_get_stats(hs_arena *a, hs_arena_stats *out) {
  if (!out) return;
  memset(out, 0, sizeof *out);
  if (!a) return;
  out->live_blobs = atomic_load_explicit(&a->live_blobs, memory_order_relaxed);
  out->live_bytes = atomic_load_explicit(&a->live_bytes, memory_order_relaxed);
  out->max_bytes = a->max_bytes;
  out->max_blobs = a->max_blobs;
  out->total_allocs = atomic_load_explicit(&a->total_allocs, memory_order_relaxed);
}
