/* hnsw.h: an approximate nearest-neighbour index over unit vectors (cosine similarity): a
 * hierarchical navigable small-world graph (Malkov and Yashunin, 2016), in C, with deletion
 * (tombstones, skipped in results, still used to navigate) and a file format of its own.
 * Internal to src/kb/ (the vector tier of the knowledge base).
 *
 * Why not faiss (DESIGN.md's first choice): Debian 12's libfaiss-dev 1.7.3 ships no C library
 * (the C API headers without an implementation: a C++ shim would be needed), links LAPACK,
 * BLAS and OpenMP (its own thread pool beside ours), and its HNSW cannot remove entries
 * (remove_ids throws) while a repository's index must forget deleted and changed definitions.
 * A few hundred lines of C do what the index needs, and are measured against brute force
 * (recall@10, tests and BENCHMARKS.md).
 *
 * Parameters: M links per node (2M on level 0), ef_construction candidates while inserting,
 * ef searching (at least k). Levels are drawn from a seeded generator, so the same insertions
 * give the same graph. Not thread-safe: one caller at a time per index. */
#ifndef HS_KB_HNSW_H
#define HS_KB_HNSW_H

#include <stddef.h>
#include <stdint.h>

typedef struct hnsw hnsw;

/* dim 1 to 4096, m 4 to 64, ef_construction at least m. 0, HS_EINVAL, HS_ENOMEM. */
int hnsw_create(uint32_t dim, uint32_t m, uint32_t ef_construction, uint64_t seed, hnsw **out);
void hnsw_free(hnsw *h);

uint32_t hnsw_dim(const hnsw *h);
size_t hnsw_count(const hnsw *h);    /* live entries */
size_t hnsw_deleted(const hnsw *h);  /* tombstones */

/* Adds vector v (dim floats; normalised here) under id. An id already present is replaced (the
 * old entry becomes a tombstone). 0, HS_EINVAL (a zero or non-finite vector), HS_ENOMEM. */
int hnsw_add(hnsw *h, uint64_t id, const float *v);
/* 1 when id is a live entry. */
int hnsw_has(const hnsw *h, uint64_t id);
/* The live ids, in insertion order, into ids (cap of them); returns how many there are. */
size_t hnsw_ids(const hnsw *h, uint64_t *ids, size_t cap);

/* Marks id deleted: 0, or HS_ENOENT. */
int hnsw_remove(hnsw *h, uint64_t id);

/* The k nearest live entries to q (most similar first): ids[] and sims[] (cosine), *n of them.
 * ef: the search breadth (k when smaller). */
int hnsw_search(hnsw *h, const float *q, size_t k, size_t ef, uint64_t *ids, float *sims,
                size_t *n);
/* The exact k nearest by brute force over the live entries (for measuring recall). */
int hnsw_search_exact(const hnsw *h, const float *q, size_t k, uint64_t *ids, float *sims,
                      size_t *n);

/* Writes the index to path (a temporary file renamed over it) / reads one back. HS_EIO,
 * HS_ECORRUPT (a file that fails its checks), HS_EVERSION, HS_ENOMEM. */
int hnsw_save(const hnsw *h, const char *path);
int hnsw_load(const char *path, hnsw **out);

#endif
