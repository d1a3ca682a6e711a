/* hswarm/arena.h: the shared arena, the "simulated memory" agents communicate through.
 *
 * A blob is allocated, written by its creator, then published. Publishing is a release fence: from
 * then on the blob is immutable and any thread that reads it through its handle sees the bytes that
 * were written. Readers get a pointer and a length into the arena itself: nothing is copied.
 *
 * Handles are 64-bit values: the low 32 bits are a slot index, the high 32 bits the slot's
 * generation, which changes every time the slot is freed. A stale handle (its blob was freed), a
 * released one, or a forged one is rejected with HS_ESTALE unless it happens to name a live slot with
 * its current generation. HS_HANDLE_NONE (0) is never a valid handle.
 *
 * Lifetimes. hs_arena_alloc returns a handle holding one reference, owned by the caller.
 * hs_arena_retain adds a reference; hs_arena_release drops one and frees the blob (and invalidates
 * every handle to it) when the count reaches zero. A pointer returned by hs_arena_read or
 * hs_arena_write_ptr stays valid while the caller (or someone it trusts) holds a reference.
 *
 * Capacity. An arena is created with a byte limit (the sum of live blob sizes) and a slot limit (the
 * number of live blobs). Going past either gives HS_ENOSPC with a message, never a crash.
 *
 * Threads. Every function is safe to call concurrently from several threads on one arena, except
 * hs_arena_destroy. Writing into an unpublished blob is the creator's business: only one thread
 * may write a blob, before publishing it. */
#ifndef HSWARM_ARENA_H
#define HSWARM_ARENA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef uint64_t hs_handle;
#define HS_HANDLE_NONE ((hs_handle)0)

typedef struct hs_arena hs_arena;

typedef struct hs_arena_stats {
  uint64_t live_blobs;     /* blobs allocated and not yet freed */
  uint64_t live_bytes;     /* sum of their sizes */
  uint64_t max_bytes;      /* the byte limit given at creation */
  uint64_t max_blobs;      /* the slot limit given at creation */
  uint64_t total_allocs;   /* blobs ever allocated */
} hs_arena_stats;

/* Creates an arena that holds at most max_bytes of blob data in at most max_blobs blobs
 * (max_blobs <= 2^31). On success *out owns the arena; destroy it with hs_arena_destroy. */
int hs_arena_create(uint64_t max_bytes, uint64_t max_blobs, hs_arena **out);

/* Frees the arena and every blob still in it. Handles to it must not be used afterwards. */
void hs_arena_destroy(hs_arena *arena);

/* Allocates an unpublished blob of size bytes (0 allowed). *out_handle gets its handle (one
 * reference, owned by the caller) and *out_ptr, if not NULL, a writable pointer to its bytes, valid
 * until the blob is freed. HS_ENOSPC when a limit would be passed, HS_ENOMEM when memory fails. */
int hs_arena_alloc(hs_arena *arena, size_t size, hs_handle *out_handle, void **out_ptr);

/* Writable pointer to an unpublished blob. HS_EPERM if it is already published. */
int hs_arena_write_ptr(hs_arena *arena, hs_handle h, void **out_ptr, size_t *out_len);

/* Publishes the blob (release fence). Publishing twice is HS_EPERM. */
int hs_arena_publish(hs_arena *arena, hs_handle h);

/* Convenience: alloc + copy len bytes + publish. */
int hs_arena_put(hs_arena *arena, const void *data, size_t len, hs_handle *out_handle);

/* Reads a published blob in place: *out_ptr and *out_len describe its bytes (acquire fence).
 * HS_ESTALE for an invalid handle, HS_EBUSY if the blob is not yet published. */
int hs_arena_read(hs_arena *arena, hs_handle h, const void **out_ptr, size_t *out_len);

/* Adds one reference. HS_ESTALE for an invalid handle. */
int hs_arena_retain(hs_arena *arena, hs_handle h);

/* Drops one reference; the blob is freed when none is left. HS_ESTALE for an invalid handle. */
int hs_arena_release(hs_arena *arena, hs_handle h);

/* 1 if h names a live blob now, else 0. */
int hs_arena_valid(hs_arena *arena, hs_handle h);

void hs_arena_get_stats(hs_arena *arena, hs_arena_stats *out);

/* The last error message of the calling thread for this module ("arena full: 1048576 of 1048576
 * bytes in use, 64 more asked"). Static per-thread storage; never NULL. */
const char *hs_arena_last_error(void);

#ifdef __cplusplus
}
#endif
#endif
