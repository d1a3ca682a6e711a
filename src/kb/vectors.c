/* vectors.c: tier 3's semantic part (hs_kb_embed, hs_kb_search_hybrid, hswarm/kb.h): each
 * definition's embedding (the engine's pooled hidden states of "KIND QNAME\nSIGNATURE\nDOC") in
 * an HNSW index (hnsw.c) kept beside the LMDB files as vectors.hnsw, tagged with the model that
 * made it (vectors.tag); hybrid search merges the full-text and the vector rankings by reciprocal
 * rank fusion. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hswarm/alloc.h"
#include "hswarm/engine.h"
#include "hswarm/error.h"
#include "hswarm/generate.h"
#include "hswarm/tokenizer.h"
#include "kb/hnsw.h"
#include "kb/kb_impl.h"

#define MAX_EMBED_TOKENS 256
#define CANDIDATES 50   /* per ranking, before fusion */
#define RRF_K 60.0

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* The tag file's text, or "" (no vectors yet). */
static void read_tag(const hs_kb *kb, char *buf, size_t cap) {
  char p[PATH_MAX + 16];
  snprintf(p, sizeof p, "%s/vectors.tag", kb->dir);
  buf[0] = 0;
  FILE *f = fopen(p, "r");
  if (!f) return;
  size_t n = fread(buf, 1, cap - 1, f);
  buf[n] = 0;
  fclose(f);
}

static int write_tag(const hs_kb *kb, const char *tag) {
  char p[PATH_MAX + 16];
  snprintf(p, sizeof p, "%s/vectors.tag", kb->dir);
  FILE *f = fopen(p, "w");
  if (!f) return HS_EIO;
  int ok = fputs(tag, f) >= 0;
  return fclose(f) == 0 && ok ? 0 : HS_EIO;
}

/* The embedding of text into out (n_embd floats). */
static int embed_text(hs_model *m, const hs_tokenizer *tok, const char *text, float *out) {
  int32_t ids[MAX_EMBED_TOKENS];
  size_t n = 0;
  int rc = hs_tokenizer_encode(tok, text, strlen(text), HS_TOKENIZE_ADD_BOS, ids,
                               MAX_EMBED_TOKENS, &n);
  if (rc == HS_ENOSPC) rc = 0, n = MAX_EMBED_TOKENS; /* the first tokens are enough */
  uint32_t ctx = hs_model_get_params(m)->n_ctx_train;
  if (n > ctx) n = ctx;
  if (rc || n == 0) return rc ? rc : HS_EINVAL;
  return hs_embed(m, ids, n, HS_POOLING_MEAN, out);
}

int hs_kb_embed(hs_kb *kb, hs_model *m, const struct hs_tokenizer *tok, const char *tag,
                hs_kb_embed_stats *st) {
  if (!kb || !m || !tok || !tag || !st)
    return hs_set_error(&hs_kb_err, HS_EINVAL, "kb: NULL argument");
  memset(st, 0, sizeof *st);
  double t0 = now_s();
  uint32_t dim = hs_model_get_params(m)->n_embd;
  char path[PATH_MAX + 16], old_tag[512];
  snprintf(path, sizeof path, "%s/vectors.hnsw", kb->dir);
  read_tag(kb, old_tag, sizeof old_tag);
  hnsw *h = NULL;
  int rc = 0;
  if (!strcmp(old_tag, tag) && hnsw_load(path, &h) == 0 && hnsw_dim(h) != dim) {
    hnsw_free(h);
    h = NULL;
  }
  if (!h && (rc = hnsw_create(dim, 16, 200, 1, &h)) != 0)
    return hs_set_error(&hs_kb_err, rc, "kb: cannot make a vector index of %u dimensions", dim);
  hs_kb_syms *all = NULL;
  float *v = hs_malloc(dim * sizeof *v);
  rc = v ? hs_kb_all_syms(kb, &all) : HS_ENOMEM;
  /* definitions gone since the last time leave the index */
  size_t nids = rc ? 0 : hnsw_ids(h, NULL, 0);
  uint64_t *ids = rc ? NULL : hs_calloc(nids + 1, sizeof *ids);
  uint64_t *present = rc ? NULL : hs_calloc(all->n + 1, sizeof *present);
  if (!rc && (!ids || !present)) rc = HS_ENOMEM;
  if (!rc) {
    hnsw_ids(h, ids, nids);
    for (size_t i = 0; i < all->n; i++) present[i] = all->items[i].id;
    if (all->n) qsort(present, all->n, sizeof *present, cmp_u64);
    for (size_t i = 0; i < nids; i++)
      if ((!all->n || !bsearch(&ids[i], present, all->n, sizeof *present, cmp_u64)) &&
          hnsw_remove(h, ids[i]) == 0)
        st->removed++;
  }
  for (size_t i = 0; !rc && i < all->n; i++) {
    const hs_kb_sym *s = &all->items[i];
    if (hnsw_has(h, s->id)) {
      st->kept++;
      continue;
    }
    size_t len = strlen(s->qname) + strlen(s->signature) + strlen(s->doc) + 32;
    char *text = hs_malloc(len);
    if (!text) {
      rc = HS_ENOMEM;
      break;
    }
    snprintf(text, len, "%s %s\n%s\n%s", hs_def_kind_name(s->kind), s->qname, s->signature,
             s->doc);
    int erc = embed_text(m, tok, text, v);
    hs_free(text);
    if (erc == 0) erc = hnsw_add(h, s->id, v);
    if (erc == 0) st->embedded++;
    else st->failed++;
  }
  if (!rc) rc = hnsw_save(h, path);
  if (!rc) rc = write_tag(kb, tag);
  st->vectors = hnsw_count(h);
  st->seconds = now_s() - t0;
  hs_free(ids);
  hs_free(present);
  hs_free(v);
  hs_kb_syms_free(all);
  hnsw_free(h);
  if (rc)
    return hs_set_error(&hs_kb_err, rc == HS_ENOMEM ? HS_ENOMEM : HS_EIO,
                        "kb: embedding the definitions failed (%s)", hs_strerror(rc));
  return 0;
}

typedef struct fused {
  uint64_t id;
  double score;
} fused;

static int cmp_fused(const void *a, const void *b) {
  const fused *x = a, *y = b;
  if (x->score != y->score) return x->score > y->score ? -1 : 1;
  return x->id < y->id ? -1 : x->id > y->id;
}

int hs_kb_search_hybrid(hs_kb *kb, const char *query, size_t limit, hs_model *m,
                        const struct hs_tokenizer *tok, const char *tag, hs_kb_hits **out) {
  if (!m || !tok || !tag) return hs_kb_search(kb, query, limit, out);
  if (!kb || !query || !out) return hs_set_error(&hs_kb_err, HS_EINVAL, "kb: NULL argument");
  *out = NULL;
  char have[512], path[PATH_MAX + 16];
  read_tag(kb, have, sizeof have);
  if (strcmp(have, tag) != 0)
    return hs_set_error(&hs_kb_err, HS_ENOENT,
                        "kb: no vectors of this model in the index: run `hswarm index -m MODEL`");
  snprintf(path, sizeof path, "%s/vectors.hnsw", kb->dir);
  hnsw *h;
  int rc = hnsw_load(path, &h);
  if (rc) return hs_set_error(&hs_kb_err, rc, "kb: the vector index %s: %s", path, hs_strerror(rc));
  /* the two rankings */
  hs_kb_hits *text = NULL;
  if (hs_kb_search(kb, query, CANDIDATES, &text) != 0) text = NULL; /* no words: vectors only */
  uint32_t dim = hnsw_dim(h);
  float *v = hs_malloc(dim * sizeof *v), sims[CANDIDATES];
  uint64_t vids[CANDIDATES];
  size_t nv = 0;
  rc = v ? embed_text(m, tok, query, v) : HS_ENOMEM;
  if (!rc) rc = hnsw_search(h, v, CANDIDATES, 128, vids, sims, &nv);
  hs_free(v);
  hnsw_free(h);
  if (rc) {
    hs_kb_hits_free(text);
    return hs_set_error(&hs_kb_err, rc, "kb: embedding the query failed (%s)", hs_strerror(rc));
  }
  /* reciprocal rank fusion */
  size_t nt = text ? text->n : 0, nf = 0;
  fused f[2 * CANDIDATES];
  for (size_t i = 0; i < nt + nv; i++) {
    uint64_t id = i < nt ? text->items[i].sym.id : vids[i - nt];
    size_t rank = i < nt ? i : i - nt;
    size_t k = 0;
    while (k < nf && f[k].id != id) k++;
    if (k == nf) f[nf++] = (fused){id, 0};
    f[k].score += 1.0 / (RRF_K + (double)rank + 1.0);
  }
  hs_kb_hits_free(text);
  qsort(f, nf, sizeof *f, cmp_fused);
  hs_kb_hits *h2 = hs_calloc(1, sizeof *h2);
  if (h2) h2->items = hs_calloc(limit ? limit : 1, sizeof *h2->items);
  if (!h2 || !h2->items) {
    hs_kb_hits_free(h2);
    return hs_set_error(&hs_kb_err, HS_ENOMEM, "kb: out of memory");
  }
  h2->method = "hybrid: full text (BM25) and vectors, reciprocal rank fusion";
  MDB_txn *txn;
  if ((rc = mdb_txn_begin(kb->env, NULL, MDB_RDONLY, &txn)) != 0) {
    hs_kb_hits_free(h2);
    return kb_fail(rc, "begin");
  }
  for (size_t i = 0; i < nf && h2->n < limit; i++) {
    if (kb_read_sym(kb, txn, f[i].id, &h2->items[h2->n].sym) != 0) continue;
    h2->items[h2->n++].score = f[i].score;
  }
  mdb_txn_abort(txn);
  *out = h2;
  return 0;
}
