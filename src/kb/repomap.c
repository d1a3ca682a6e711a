/* repomap.c: the repo map (hs_kb_repo_map, hswarm/kb.h): the signatures of a repository's
 * definitions ranked by personalised PageRank over the reference graph, cut to a token budget.
 *
 * Nodes are the definitions. A reference from definition A (the innermost one containing it) to
 * a name gives an edge from A to each definition of that name, weighted 1 / (how many there
 * are), so a name defined in many places says little. A file-level reference counts for no
 * node. The personalisation vector puts its mass on definitions named in the task (10 for each
 * of their name's words that is a word of the task, 30 more for the whole name) and on the
 * definitions of files whose path has a task word (1); uniform when the task names nothing. 30 power iterations, damping 0.85,
 * dangling mass returned through the personalisation. The map lists files in order of their best
 * definition, each with its definitions' signatures in rank order, until the budget is spent. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hswarm/alloc.h"
#include "hswarm/error.h"
#include "kb/kb_impl.h"

#define ITERATIONS 30
#define DAMPING 0.85
#define MAX_TASK_WORDS 64

typedef struct edge {
  uint32_t from, to;
  float w;
} edge;

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* The node of symbol id, or -1. ids sorted. */
static long node_of(const uint64_t *ids, size_t n, uint64_t id) {
  const uint64_t *p = bsearch(&id, ids, n, sizeof *ids, cmp_u64);
  return p ? (long)(p - ids) : -1;
}

/* How much the task names s: 3 for its whole name, plus 1 per task word among its name's words
 * (hs_unified_diff: "unified" and "diff" make 2). */
static int named_in_task(const hs_kb_sym *s, char words[][64], size_t nw) {
  char low[256], split[600];
  snprintf(low, sizeof low, "%s", s->name);
  for (char *c = low; *c; c++) *c = (char)tolower((unsigned char)*c);
  kb_words(s->name, split, sizeof split);
  int score = 0;
  for (size_t k = 0; k < nw; k++) {
    if (!strcmp(low, words[k])) score += 3;
    for (char *w = split; *w;) {
      char *e = strchr(w, ' ');
      size_t len = e ? (size_t)(e - w) : strlen(w);
      if (len == strlen(words[k]) && !memcmp(w, words[k], len)) {
        score++;
        break;
      }
      w = e ? e + 1 : w + len;
    }
  }
  return score;
}

static int path_in_task(const char *path, char words[][64], size_t nw) {
  char low[1024];
  snprintf(low, sizeof low, "%s", path);
  for (char *c = low; *c; c++) *c = (char)tolower((unsigned char)*c);
  for (size_t k = 0; k < nw; k++)
    if (strstr(low, words[k])) return 1;
  return 0;
}

typedef struct ranked {
  uint32_t node;
  double rank;
} ranked;

static int cmp_rank(const void *a, const void *b) {
  const ranked *x = a, *y = b;
  if (x->rank != y->rank) return x->rank > y->rank ? -1 : 1;
  return x->node < y->node ? -1 : x->node > y->node;
}

void hs_kb_map_free(hs_kb_map *m) {
  if (!m) return;
  hs_free(m->text);
  hs_free(m);
}

int hs_kb_repo_map(hs_kb *kb, const char *task, uint64_t budget, const struct hs_tokenizer *tok,
                   hs_kb_map **out) {
  if (!kb || !out) return hs_set_error(&hs_kb_err, HS_EINVAL, "kb: NULL argument");
  *out = NULL;
  if (budget < 16) return hs_set_error(&hs_kb_err, HS_EINVAL, "kb: a budget of at least 16 tokens");
  hs_kb_syms *all;
  int rc = hs_kb_all_syms(kb, &all);
  if (rc) return rc;
  size_t n = all->n;
  uint64_t *ids = hs_calloc(n + 1, sizeof *ids);
  uint32_t *order = hs_calloc(n + 1, sizeof *order); /* ids sorted -> index in all */
  double *pers = hs_calloc(n + 1, sizeof *pers), *r = hs_calloc(n + 1, sizeof *r),
         *next = hs_calloc(n + 1, sizeof *next), *outw = hs_calloc(n + 1, sizeof *outw);
  edge *edges = NULL;
  size_t ne = 0, cap = 0;
  ranked *rk = hs_calloc(n + 1, sizeof *rk);
  hs_kb_map *m = hs_calloc(1, sizeof *m);
  if (!ids || !order || !pers || !r || !next || !outw || !rk || !m) {
    rc = hs_set_error(&hs_kb_err, HS_ENOMEM, "kb: out of memory");
    goto done;
  }
  /* nodes in id order (all is in path order) */
  for (size_t i = 0; i < n; i++) ids[i] = all->items[i].id;
  qsort(ids, n, sizeof *ids, cmp_u64);
  for (size_t i = 0; i < n; i++) order[node_of(ids, n, all->items[i].id)] = (uint32_t)i;
  /* edges: every reference made from a definition, to every definition of its name */
  MDB_txn *txn = NULL;
  MDB_cursor *c = NULL;
  if ((rc = mdb_txn_begin(kb->env, NULL, MDB_RDONLY, &txn)) != 0 ||
      (rc = mdb_cursor_open(txn, kb->refs_from, &c)) != 0) {
    if (txn) mdb_txn_abort(txn);
    rc = kb_fail(rc, "reading references");
    goto done;
  }
  MDB_val k, v;
  int mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
  while (mrc == 0 && !rc) {
    uint64_t from = kb_get_u64(k.mv_data);
    long fnode = from & KB_FILE_BIT ? -1 : node_of(ids, n, from);
    const uint8_t *rr = v.mv_data;
    if (fnode >= 0 && (rr[0] == HS_REF_CALL || rr[0] == HS_REF_TYPE)) {
      MDB_val name = {v.mv_size - 5, (void *)(rr + 5)}, t;
      MDB_cursor *nc;
      if (mdb_cursor_open(txn, kb->by_name, &nc) == 0) {
        size_t count = 0;
        if (mdb_cursor_get(nc, &name, &t, MDB_SET) == 0) {
          size_t cnt = 0;
          mdb_cursor_count(nc, &cnt);
          count = (size_t)cnt;
          int trc = 0;
          while (trc == 0 && count && count <= 64) { /* names defined in many places: no edge */
            long tnode = node_of(ids, n, kb_get_u64(t.mv_data));
            if (tnode >= 0 && tnode != fnode) {
              if (ne == cap) {
                cap = cap ? cap * 2 : 4096;
                edge *e = hs_realloc(edges, cap * sizeof *e);
                if (!e) {
                  rc = HS_ENOMEM;
                  break;
                }
                edges = e;
              }
              edges[ne++] = (edge){(uint32_t)fnode, (uint32_t)tnode, 1.0f / (float)count};
            }
            trc = mdb_cursor_get(nc, &name, &t, MDB_NEXT_DUP);
          }
        }
        mdb_cursor_close(nc);
      }
    }
    mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
  }
  mdb_cursor_close(c);
  mdb_txn_abort(txn);
  if (rc) {
    rc = hs_set_error(&hs_kb_err, HS_ENOMEM, "kb: out of memory");
    goto done;
  }
  /* personalisation */
  char words[MAX_TASK_WORDS][64];
  size_t nw = task ? kb_text_terms(task, words, MAX_TASK_WORDS, 3) : 0;
  double mass = 0;
  for (size_t i = 0; i < n && nw; i++) {
    const hs_kb_sym *s = &all->items[order[i]];
    pers[i] = 10.0 * named_in_task(s, words, nw) + (path_in_task(s->path, words, nw) ? 1.0 : 0);
    mass += pers[i];
    m->personalized += pers[i] > 0;
  }
  for (size_t i = 0; i < n; i++) pers[i] = mass > 0 ? pers[i] / mass : 1.0 / (double)(n ? n : 1);
  /* power iterations */
  for (size_t e = 0; e < ne; e++) outw[edges[e].from] += edges[e].w;
  for (size_t i = 0; i < n; i++) r[i] = pers[i];
  for (int it = 0; it < ITERATIONS; it++) {
    double dangling = 0;
    for (size_t i = 0; i < n; i++) {
      next[i] = 0;
      if (outw[i] == 0) dangling += r[i];
    }
    for (size_t e = 0; e < ne; e++)
      next[edges[e].to] += r[edges[e].from] * edges[e].w / outw[edges[e].from];
    for (size_t i = 0; i < n; i++)
      next[i] = (1 - DAMPING) * pers[i] + DAMPING * (next[i] + dangling * pers[i]);
    double *t = r;
    r = next;
    next = t;
  }
  for (size_t i = 0; i < n; i++) rk[i] = (ranked){(uint32_t)i, r[i]};
  qsort(rk, n, sizeof *rk, cmp_rank);
  /* the text: files in order of their best definition, definitions by rank, within budget */
  size_t tcap = 4096, tlen = 0;
  char *text = hs_malloc(tcap);
  char *used = hs_calloc(n + 1, 1);
  if (!text || !used) {
    hs_free(text);
    hs_free(used);
    rc = hs_set_error(&hs_kb_err, HS_ENOMEM, "kb: out of memory");
    goto done;
  }
  text[0] = 0;
  uint64_t tokens = 0;
  int full = 0;
  for (size_t a = 0; a < n && !full; a++) {
    if (used[rk[a].node]) continue;
    const char *path = all->items[order[rk[a].node]].path;
    char head[1100];
    int hl = snprintf(head, sizeof head, "%s:\n", path);
    uint64_t ht = hs_kb_count_tokens(tok, head, (size_t)hl);
    int wrote_head = 0;
    for (size_t b = a; b < n; b++) {
      const hs_kb_sym *s = &all->items[order[rk[b].node]];
      if (used[rk[b].node] || strcmp(s->path, path) != 0) continue;
      used[rk[b].node] = 1;
      char line[1400];
      int ll = snprintf(line, sizeof line, "  %u: %s\n", s->start_line, s->signature);
      if (ll >= (int)sizeof line) ll = (int)sizeof line - 1;
      uint64_t lt = hs_kb_count_tokens(tok, line, (size_t)ll) + (wrote_head ? 0 : ht);
      if (tokens + lt > budget) {
        if (!wrote_head) full = 1; /* not even this file's best fits: the map is full */
        continue;
      }
      size_t need = tlen + (wrote_head ? 0 : (size_t)hl) + (size_t)ll + 1;
      if (need > tcap) {
        while (tcap < need) tcap *= 2;
        char *t = hs_realloc(text, tcap);
        if (!t) {
          full = 1;
          rc = HS_ENOMEM;
          break;
        }
        text = t;
      }
      if (!wrote_head) {
        memcpy(text + tlen, head, (size_t)hl);
        tlen += (size_t)hl;
        wrote_head = 1;
        m->files++;
      }
      memcpy(text + tlen, line, (size_t)ll);
      tlen += (size_t)ll;
      text[tlen] = 0;
      tokens += lt;
      m->definitions++;
    }
  }
  hs_free(used);
  if (rc) {
    hs_free(text);
    rc = hs_set_error(&hs_kb_err, HS_ENOMEM, "kb: out of memory");
    goto done;
  }
  m->text = text;
  m->len = tlen;
  m->tokens = tokens;
  m->approximate = tok == NULL;
  m->edges = ne;
  m->nodes = n;
  *out = m;
  m = NULL;
done:
  hs_kb_map_free(m);
  hs_kb_syms_free(all);
  hs_free(ids);
  hs_free(order);
  hs_free(pers);
  hs_free(r);
  hs_free(next);
  hs_free(outw);
  hs_free(edges);
  hs_free(rk);
  return rc;
}
