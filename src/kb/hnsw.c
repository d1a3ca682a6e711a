/* hnsw.c: hierarchical navigable small-world graphs over unit vectors (hnsw.h). */
#include "kb/hnsw.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hswarm/alloc.h"
#include "hswarm/error.h"

#define MAX_LEVEL 15
#define MAGIC "HSWHNSW1"

typedef struct node {
  uint64_t id;
  uint8_t level;
  uint8_t deleted;
  uint32_t n0;          /* links on level 0 */
  int32_t *links0;      /* 2M */
  uint32_t *nup;        /* links on levels 1..level */
  int32_t **up;         /* [level - 1][M] */
} node;

struct hnsw {
  uint32_t dim, m, efc;
  uint64_t rng;
  node *nodes;
  float *vecs;          /* dim floats per node */
  size_t n, cap, live, dead;
  int32_t entry;
  int max_level;
  /* id -> node (open addressing; -1 empty) */
  int32_t *slots;
  size_t nslots;
  /* search scratch */
  uint32_t *visited, gen;
  size_t vcap;
};

typedef struct cand {
  float d;
  int32_t n;
} cand;

/* ---- small heaps: min (closest first) and max (farthest first) ---- */

typedef struct heap {
  cand *v;
  size_t n, cap;
  int max; /* 1: the farthest on top */
} heap;

static int before(const heap *h, cand a, cand b) { return h->max ? a.d > b.d : a.d < b.d; }

static int heap_push(heap *h, cand c) {
  if (h->n == h->cap) {
    size_t cap = h->cap ? h->cap * 2 : 64;
    cand *v = hs_realloc(h->v, cap * sizeof *v);
    if (!v) return HS_ENOMEM;
    h->v = v;
    h->cap = cap;
  }
  size_t i = h->n++;
  h->v[i] = c;
  while (i && before(h, h->v[i], h->v[(i - 1) / 2])) {
    cand t = h->v[i];
    h->v[i] = h->v[(i - 1) / 2];
    h->v[(i - 1) / 2] = t;
    i = (i - 1) / 2;
  }
  return 0;
}

static cand heap_pop(heap *h) {
  cand top = h->v[0];
  h->v[0] = h->v[--h->n];
  size_t i = 0;
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, b = i;
    if (l < h->n && before(h, h->v[l], h->v[b])) b = l;
    if (r < h->n && before(h, h->v[r], h->v[b])) b = r;
    if (b == i) break;
    cand t = h->v[i];
    h->v[i] = h->v[b];
    h->v[b] = t;
    i = b;
  }
  return top;
}

/* ---- basics ---- */

/* 1 - cosine of unit vectors. Eight partial sums, so that the compiler can keep them in one
 * vector register (a single running sum would have to be added in order). */
static float dist(const hnsw *h, const float *a, const float *b) {
  float p[8] = {0};
  uint32_t i = 0;
  for (; i + 8 <= h->dim; i += 8)
    for (int j = 0; j < 8; j++) p[j] += a[i + j] * b[i + j];
  float s = ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]));
  for (; i < h->dim; i++) s += a[i] * b[i];
  return 1.0f - s;
}

static const float *vec(const hnsw *h, int32_t n) { return h->vecs + (size_t)n * h->dim; }

static uint64_t next_rand(hnsw *h) { /* splitmix64 */
  uint64_t z = (h->rng += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static int random_level(hnsw *h) {
  double u = ((double)(next_rand(h) >> 11) + 0.5) / 9007199254740992.0;
  int l = (int)floor(-log(u) / log((double)h->m));
  return l > MAX_LEVEL ? MAX_LEVEL : l;
}

static size_t slot_of(const hnsw *h, uint64_t id) {
  uint64_t x = id * 0x9e3779b97f4a7c15ull;
  return (size_t)(x ^ (x >> 29)) & (h->nslots - 1);
}

static int32_t find(const hnsw *h, uint64_t id) {
  for (size_t s = slot_of(h, id);; s = (s + 1) & (h->nslots - 1)) {
    int32_t n = h->slots[s];
    if (n < 0) return -1;
    if (h->nodes[n].id == id && !h->nodes[n].deleted) return n;
  }
}

static int rehash(hnsw *h, size_t nslots) {
  int32_t *s = hs_malloc(nslots * sizeof *s);
  if (!s) return HS_ENOMEM;
  for (size_t i = 0; i < nslots; i++) s[i] = -1;
  hs_free(h->slots);
  h->slots = s;
  h->nslots = nslots;
  for (size_t n = 0; n < h->n; n++) {
    if (h->nodes[n].deleted) continue;
    size_t k = slot_of(h, h->nodes[n].id);
    while (s[k] >= 0) k = (k + 1) & (nslots - 1);
    s[k] = (int32_t)n;
  }
  return 0;
}

int hnsw_create(uint32_t dim, uint32_t m, uint32_t efc, uint64_t seed, hnsw **out) {
  *out = NULL;
  if (dim < 1 || dim > 4096 || m < 4 || m > 64 || efc < m) return HS_EINVAL;
  hnsw *h = hs_calloc(1, sizeof *h);
  if (!h) return HS_ENOMEM;
  h->dim = dim;
  h->m = m;
  h->efc = efc;
  h->rng = seed;
  h->entry = -1;
  h->max_level = -1;
  if (rehash(h, 64) != 0) {
    hs_free(h);
    return HS_ENOMEM;
  }
  *out = h;
  return 0;
}

void hnsw_free(hnsw *h) {
  if (!h) return;
  for (size_t i = 0; i < h->n; i++) {
    hs_free(h->nodes[i].links0);
    for (int l = 0; l < h->nodes[i].level; l++) hs_free(h->nodes[i].up[l]);
    hs_free(h->nodes[i].up);
    hs_free(h->nodes[i].nup);
  }
  hs_free(h->nodes);
  hs_free(h->vecs);
  hs_free(h->slots);
  hs_free(h->visited);
  hs_free(h);
}

uint32_t hnsw_dim(const hnsw *h) { return h->dim; }
size_t hnsw_count(const hnsw *h) { return h->live; }
size_t hnsw_deleted(const hnsw *h) { return h->dead; }

/* The links of node n on level l, with their count. */
static int32_t *links(hnsw *h, int32_t n, int l, uint32_t **count) {
  node *x = &h->nodes[n];
  if (l == 0) {
    *count = &x->n0;
    return x->links0;
  }
  *count = &x->nup[l - 1];
  return x->up[l - 1];
}

static int begin_visit(hnsw *h) {
  if (h->vcap < h->n) {
    size_t cap = h->n * 2 + 64;
    uint32_t *v = hs_realloc(h->visited, cap * sizeof *v);
    if (!v) return HS_ENOMEM;
    memset(v + h->vcap, 0, (cap - h->vcap) * sizeof *v);
    h->visited = v;
    h->vcap = cap;
  }
  if (++h->gen == 0) {
    memset(h->visited, 0, h->vcap * sizeof *h->visited);
    h->gen = 1;
  }
  return 0;
}

/* The ef nearest to q found from ep on level l, into res (a max-heap). With live_only, deleted
 * nodes are walked through but not collected, and the search goes on until it has ef live ones
 * (or runs out): a deleted region does not end it. */
static int search_layer(hnsw *h, const float *q, int32_t ep, size_t ef, int l, int live_only,
                        heap *res) {
  heap cands = {.max = 0};
  int rc = begin_visit(h);
  if (rc) return rc;
  cand e = {dist(h, q, vec(h, ep)), ep};
  h->visited[ep] = h->gen;
  res->n = 0;
  rc = heap_push(&cands, e);
  if (!rc && !(live_only && h->nodes[ep].deleted)) rc = heap_push(res, e);
  while (!rc && cands.n) {
    cand c = heap_pop(&cands);
    if (res->n >= ef && c.d > res->v[0].d) break;
    uint32_t *cnt;
    int32_t *lk = links(h, c.n, l, &cnt);
    for (uint32_t i = 0; i < *cnt && !rc; i++) {
      int32_t nb = lk[i];
      if (h->visited[nb] == h->gen) continue;
      h->visited[nb] = h->gen;
      float d = dist(h, q, vec(h, nb));
      if (res->n < ef || d < res->v[0].d) {
        rc = heap_push(&cands, (cand){d, nb});
        if (!rc && !(live_only && h->nodes[nb].deleted)) {
          rc = heap_push(res, (cand){d, nb});
          if (!rc && res->n > ef) heap_pop(res);
        }
      }
    }
  }
  hs_free(cands.v);
  return rc;
}

/* From the entry point down to level `until` + 1: on each level, move to a closer neighbour
 * while there is one. The node reached. */
static int32_t descend(hnsw *h, const float *q, int until) {
  int32_t ep = h->entry;
  for (int l = h->max_level; l > until; l--) {
    int moved = 1;
    float d = dist(h, q, vec(h, ep));
    while (moved) {
      moved = 0;
      uint32_t *cnt;
      int32_t *lk = links(h, ep, l, &cnt);
      for (uint32_t i = 0; i < *cnt; i++) {
        float dn = dist(h, q, vec(h, lk[i]));
        if (dn < d) {
          d = dn;
          ep = lk[i];
          moved = 1;
        }
      }
    }
  }
  return ep;
}

static int cmp_cand(const void *a, const void *b) {
  const cand *x = a, *y = b;
  if (x->d != y->d) return x->d < y->d ? -1 : 1;
  return x->n < y->n ? -1 : x->n > y->n;
}

/* The neighbour selection heuristic: c is kept when it is closer to the base than to every
 * neighbour kept before it; the pruned ones fill what is left of the max slots. c sorted. */
static size_t select_links(const hnsw *h, cand *c, size_t nc, size_t max, int32_t *out) {
  size_t k = 0;
  char *kept = hs_calloc(nc ? nc : 1, 1);
  for (size_t i = 0; i < nc && k < max; i++) {
    int good = 1;
    for (size_t j = 0; j < k && good; j++)
      good = dist(h, vec(h, c[i].n), vec(h, out[j])) > c[i].d;
    if (good || !kept) {
      out[k++] = c[i].n;
      if (kept) kept[i] = 1;
    }
  }
  for (size_t i = 0; kept && i < nc && k < max; i++)
    if (!kept[i]) out[k++] = c[i].n;
  hs_free(kept);
  return k;
}

/* Adds link to n's links on level l, shrinking them with the heuristic when full. */
static int connect(hnsw *h, int32_t n, int l, int32_t to) {
  uint32_t *cnt;
  int32_t *lk = links(h, n, l, &cnt);
  size_t max = l ? h->m : 2 * h->m;
  for (uint32_t i = 0; i < *cnt; i++)
    if (lk[i] == to) return 0;
  if (*cnt < max) {
    lk[(*cnt)++] = to;
    return 0;
  }
  cand *c = hs_malloc((max + 1) * sizeof *c);
  if (!c) return HS_ENOMEM;
  for (uint32_t i = 0; i < *cnt; i++) c[i] = (cand){dist(h, vec(h, n), vec(h, lk[i])), lk[i]};
  c[max] = (cand){dist(h, vec(h, n), vec(h, to)), to};
  qsort(c, max + 1, sizeof *c, cmp_cand);
  *cnt = (uint32_t)select_links(h, c, max + 1, max, lk);
  hs_free(c);
  return 0;
}

static int grow(hnsw *h) {
  if (h->n < h->cap) return 0;
  size_t cap = h->cap ? h->cap * 2 : 256;
  node *nodes = hs_realloc(h->nodes, cap * sizeof *nodes);
  if (!nodes) return HS_ENOMEM;
  h->nodes = nodes;
  float *v = hs_realloc(h->vecs, cap * h->dim * sizeof *v);
  if (!v) return HS_ENOMEM;
  h->vecs = v;
  h->cap = cap;
  return 0;
}

/* A new node (links allocated, not connected). */
static int new_node(hnsw *h, uint64_t id, const float *unit, int level, int32_t *out) {
  int rc = grow(h);
  if (rc) return rc;
  node *x = &h->nodes[h->n];
  memset(x, 0, sizeof *x);
  x->id = id;
  x->level = (uint8_t)level;
  x->links0 = hs_malloc(2 * h->m * sizeof *x->links0);
  if (level) {
    x->up = hs_calloc((size_t)level, sizeof *x->up);
    x->nup = hs_calloc((size_t)level, sizeof *x->nup);
  }
  int bad = !x->links0 || (level && (!x->up || !x->nup));
  for (int l = 0; !bad && l < level; l++) bad = !(x->up[l] = hs_malloc(h->m * sizeof(int32_t)));
  if (bad) {
    hs_free(x->links0);
    for (int l = 0; x->up && l < level; l++) hs_free(x->up[l]);
    hs_free(x->up);
    hs_free(x->nup);
    return HS_ENOMEM;
  }
  memcpy(h->vecs + h->n * h->dim, unit, h->dim * sizeof *unit);
  *out = (int32_t)h->n++;
  return 0;
}

static int normalise(const hnsw *h, const float *v, float *out) {
  double s = 0;
  for (uint32_t i = 0; i < h->dim; i++) {
    if (!isfinite(v[i])) return HS_EINVAL;
    s += (double)v[i] * v[i];
  }
  if (!(s > 0)) return HS_EINVAL;
  float inv = (float)(1.0 / sqrt(s));
  for (uint32_t i = 0; i < h->dim; i++) out[i] = v[i] * inv;
  return 0;
}

int hnsw_add(hnsw *h, uint64_t id, const float *v) {
  float *unit = hs_malloc(h->dim * sizeof *unit);
  if (!unit) return HS_ENOMEM;
  int rc = normalise(h, v, unit);
  if (rc) {
    hs_free(unit);
    return rc;
  }
  if (find(h, id) >= 0) hnsw_remove(h, id);
  if ((h->live + h->dead + 1) * 2 > h->nslots && (rc = rehash(h, h->nslots * 2)) != 0) {
    hs_free(unit);
    return rc;
  }
  int level = random_level(h);
  int32_t q;
  if ((rc = new_node(h, id, unit, level, &q)) != 0) {
    hs_free(unit);
    return rc;
  }
  hs_free(unit);
  size_t s = slot_of(h, id);
  while (h->slots[s] >= 0) s = (s + 1) & (h->nslots - 1);
  h->slots[s] = q;
  h->live++;
  if (h->entry < 0) {
    h->entry = q;
    h->max_level = level;
    return 0;
  }
  const float *qv = vec(h, q);
  int32_t ep = descend(h, qv, level);
  heap res = {.max = 1};
  for (int l = level < h->max_level ? level : h->max_level; l >= 0 && !rc; l--) {
    rc = search_layer(h, qv, ep, h->efc, l, 0, &res);
    if (rc) break;
    qsort(res.v, res.n, sizeof *res.v, cmp_cand);
    uint32_t *cnt;
    int32_t *lk = links(h, q, l, &cnt);
    *cnt = (uint32_t)select_links(h, res.v, res.n, h->m, lk);
    for (uint32_t i = 0; i < *cnt && !rc; i++) rc = connect(h, lk[i], l, q);
    ep = res.v[0].n;
  }
  hs_free(res.v);
  if (!rc && level > h->max_level) {
    h->max_level = level;
    h->entry = q;
  }
  return rc;
}

int hnsw_has(const hnsw *h, uint64_t id) { return find(h, id) >= 0; }

size_t hnsw_ids(const hnsw *h, uint64_t *ids, size_t cap) {
  size_t k = 0;
  for (size_t i = 0; i < h->n; i++)
    if (!h->nodes[i].deleted) {
      if (k < cap) ids[k] = h->nodes[i].id;
      k++;
    }
  return k;
}

int hnsw_remove(hnsw *h, uint64_t id) {
  for (size_t s = slot_of(h, id);; s = (s + 1) & (h->nslots - 1)) {
    int32_t n = h->slots[s];
    if (n < 0) return HS_ENOENT;
    if (h->nodes[n].id == id && !h->nodes[n].deleted) {
      h->nodes[n].deleted = 1; /* stays in the slot table (probe chains) and the graph */
      h->live--;
      h->dead++;
      return 0;
    }
  }
}

int hnsw_search(hnsw *h, const float *q, size_t k, size_t ef, uint64_t *ids, float *sims,
                size_t *n) {
  *n = 0;
  if (h->entry < 0 || !k) return 0;
  float *unit = hs_malloc(h->dim * sizeof *unit);
  if (!unit) return HS_ENOMEM;
  int rc = normalise(h, q, unit);
  if (rc) {
    hs_free(unit);
    return rc;
  }
  int32_t ep = descend(h, unit, 0);
  size_t want = ef > k ? ef : k;
  heap res = {.max = 1};
  rc = search_layer(h, unit, ep, want, 0, 1, &res);
  hs_free(unit);
  if (!rc) {
    qsort(res.v, res.n, sizeof *res.v, cmp_cand);
    for (size_t i = 0; i < res.n && *n < k; i++) {
      if (h->nodes[res.v[i].n].deleted) continue;
      ids[*n] = h->nodes[res.v[i].n].id;
      sims[*n] = 1.0f - res.v[i].d;
      (*n)++;
    }
  }
  hs_free(res.v);
  return rc;
}

int hnsw_search_exact(const hnsw *h, const float *q, size_t k, uint64_t *ids, float *sims,
                      size_t *n) {
  *n = 0;
  float *unit = hs_malloc(h->dim * sizeof *unit);
  if (!unit) return HS_ENOMEM;
  int rc = normalise(h, q, unit);
  heap res = {.max = 1};
  for (size_t i = 0; !rc && i < h->n; i++) {
    if (h->nodes[i].deleted) continue;
    float d = dist(h, unit, vec(h, (int32_t)i));
    if (res.n < k || d < res.v[0].d) {
      rc = heap_push(&res, (cand){d, (int32_t)i});
      if (!rc && res.n > k) heap_pop(&res);
    }
  }
  hs_free(unit);
  if (!rc) {
    qsort(res.v, res.n, sizeof *res.v, cmp_cand);
    for (size_t i = 0; i < res.n; i++) {
      ids[i] = h->nodes[res.v[i].n].id;
      sims[i] = 1.0f - res.v[i].d;
    }
    *n = res.n;
  }
  hs_free(res.v);
  return rc;
}

/* ---- files ---- */

static int put(FILE *f, const void *p, size_t n) { return fwrite(p, 1, n, f) == n ? 0 : -1; }
static int get(FILE *f, void *p, size_t n) { return fread(p, 1, n, f) == n ? 0 : -1; }

int hnsw_save(const hnsw *h, const char *path) {
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", path);
  int fd = mkstemp(tmp);
  FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
  if (!f) {
    if (fd >= 0) close(fd);
    return HS_EIO;
  }
  uint64_t n = h->n;
  int32_t entry = h->entry, ml = h->max_level;
  int bad = put(f, MAGIC, 8) || put(f, &h->dim, 4) || put(f, &h->m, 4) || put(f, &h->efc, 4) ||
            put(f, &h->rng, 8) || put(f, &n, 8) || put(f, &entry, 4) || put(f, &ml, 4);
  for (size_t i = 0; !bad && i < h->n; i++) {
    const node *x = &h->nodes[i];
    bad = put(f, &x->id, 8) || put(f, &x->level, 1) || put(f, &x->deleted, 1) ||
          put(f, vec(h, (int32_t)i), h->dim * sizeof(float)) || put(f, &x->n0, 4) ||
          put(f, x->links0, x->n0 * sizeof(int32_t));
    for (int l = 0; !bad && l < x->level; l++)
      bad = put(f, &x->nup[l], 4) || put(f, x->up[l], x->nup[l] * sizeof(int32_t));
  }
  bad |= fflush(f) != 0 || fsync(fileno(f)) != 0;
  bad |= fclose(f) != 0;
  if (bad || rename(tmp, path) != 0) {
    unlink(tmp);
    return HS_EIO;
  }
  return 0;
}

int hnsw_load(const char *path, hnsw **out) {
  *out = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) return HS_ENOENT;
  char magic[8];
  uint32_t dim, m, efc;
  uint64_t rng, n;
  int32_t entry, ml;
  int rc = 0;
  if (get(f, magic, 8))
    rc = HS_ECORRUPT;
  else if (memcmp(magic, MAGIC, 8) != 0) /* another version of ours, or not ours */
    rc = memcmp(magic, MAGIC, 7) == 0 ? HS_EVERSION : HS_ECORRUPT;
  else if (get(f, &dim, 4) || get(f, &m, 4) || get(f, &efc, 4) || get(f, &rng, 8) ||
           get(f, &n, 8) || get(f, &entry, 4) || get(f, &ml, 4))
    rc = HS_ECORRUPT;
  hnsw *h = NULL;
  if (!rc && (n > (1u << 30) || entry < -1 || (int64_t)entry >= (int64_t)n || ml > MAX_LEVEL))
    rc = HS_ECORRUPT;
  if (!rc) rc = hnsw_create(dim, m, efc, rng, &h) == 0 ? 0 : HS_ECORRUPT;
  float *v = !rc ? hs_malloc(dim * sizeof *v) : NULL;
  if (!rc && !v) rc = HS_ENOMEM;
  for (uint64_t i = 0; !rc && i < n; i++) {
    uint64_t id;
    uint8_t level, deleted;
    uint32_t cnt;
    int32_t q;
    if (get(f, &id, 8) || get(f, &level, 1) || get(f, &deleted, 1) || level > MAX_LEVEL ||
        get(f, v, dim * sizeof *v)) {
      rc = HS_ECORRUPT;
      break;
    }
    if ((rc = new_node(h, id, v, level, &q)) != 0) break;
    node *x = &h->nodes[q];
    x->deleted = deleted;
    if (get(f, &cnt, 4) || cnt > 2 * m || get(f, x->links0, cnt * sizeof(int32_t))) {
      rc = HS_ECORRUPT;
      break;
    }
    x->n0 = cnt;
    for (int l = 0; !rc && l < level; l++) {
      if (get(f, &cnt, 4) || cnt > m || get(f, x->up[l], cnt * sizeof(int32_t))) rc = HS_ECORRUPT;
      else x->nup[l] = cnt;
    }
    if (deleted) h->dead++;
    else h->live++;
  }
  hs_free(v);
  if (!rc && fgetc(f) != EOF) rc = HS_ECORRUPT;
  fclose(f);
  /* every link must name a node that exists, on a level that node has */
  for (size_t i = 0; !rc && i < h->n; i++) {
    const node *x = &h->nodes[i];
    for (uint32_t k = 0; !rc && k < x->n0; k++)
      if (x->links0[k] < 0 || (size_t)x->links0[k] >= h->n) rc = HS_ECORRUPT;
    for (int l = 0; !rc && l < x->level; l++)
      for (uint32_t k = 0; !rc && k < x->nup[l]; k++)
        if (x->up[l][k] < 0 || (size_t)x->up[l][k] >= h->n ||
            h->nodes[x->up[l][k]].level < l + 1)
          rc = HS_ECORRUPT;
  }
  if (!rc && entry >= 0 && h->nodes[entry].level != ml) rc = HS_ECORRUPT;
  if (!rc) {
    h->entry = entry;
    h->max_level = ml;
    size_t slots = 64;
    while (slots < 2 * (h->live + h->dead) + 2) slots *= 2;
    rc = rehash(h, slots);
  }
  if (rc) {
    hnsw_free(h);
    return rc;
  }
  *out = h;
  return 0;
}
