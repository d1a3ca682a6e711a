/* core/threadpool.h: a persistent pool of worker threads for data-parallel loops (the engine's
 * kernels). Internal to the library.
 *
 * hs_threadpool_run(tp, fn, ctx, n_tasks) calls fn(ctx, task, worker) for every task in
 * [0, n_tasks), spread over the pool's threads AND the calling thread, and returns when all have
 * finished. Tasks are claimed dynamically (an atomic counter), so which thread runs a task varies;
 * code whose results must be reproducible gives each task a fixed piece of output. worker is in
 * [0, hs_threadpool_size(tp)) and is unique among concurrently running calls of fn (use it to
 * index per-thread scratch).
 *
 * Idle workers spin briefly for the next job, then sleep on a condition variable, so back-to-back
 * small jobs (one token's matrix-vector products) do not pay a wake-up each.
 *
 * One caller at a time: hs_threadpool_run must not be called concurrently on the same pool, nor
 * from inside fn. Ownership: the pool owns its threads; hs_threadpool_destroy joins them.
 */
#ifndef HS_CORE_THREADPOOL_H
#define HS_CORE_THREADPOOL_H

#include <stddef.h>

typedef struct hs_threadpool hs_threadpool;

typedef void (*hs_threadpool_fn)(void *ctx, size_t task, unsigned worker);

/* A pool of n_threads threads counting the caller (n_threads - 1 are created); 0 means the
 * number of online CPUs. Returns 0, HS_EINVAL, or HS_ENOMEM/HS_EIO when threads cannot start. */
int hs_threadpool_create(unsigned n_threads, hs_threadpool **out);
void hs_threadpool_destroy(hs_threadpool *tp); /* NULL is ignored */

/* Threads counting the caller; 1 for a NULL pool. */
unsigned hs_threadpool_size(const hs_threadpool *tp);

/* Runs fn over n_tasks tasks as described above. A NULL tp runs them all on the caller's thread
 * (worker 0). */
void hs_threadpool_run(hs_threadpool *tp, hs_threadpool_fn fn, void *ctx, size_t n_tasks);

#endif
