/* search.c: tier 3 queries (hs_kb_search, hswarm/kb.h): the full-text index's best rows, read
 * back as definitions from LMDB. */
#include <string.h>

#include "hswarm/alloc.h"
#include "hswarm/error.h"
#include "kb/kb_impl.h"

void hs_kb_hits_free(hs_kb_hits *h) {
  if (!h) return;
  for (size_t i = 0; i < h->n; i++) kb_sym_release(&h->items[i].sym);
  hs_free(h->items);
  hs_free(h);
}

int hs_kb_search(hs_kb *kb, const char *query, size_t limit, hs_kb_hits **out) {
  if (!kb || !query || !out) return hs_set_error(&hs_kb_err, HS_EINVAL, "kb: NULL argument");
  *out = NULL;
  if (limit < 1 || limit > 1000)
    return hs_set_error(&hs_kb_err, HS_EINVAL, "kb: the limit must be 1 to 1000");
  if (kb->fts_stale)
    return hs_set_error(&hs_kb_err, HS_EIO,
                        "kb: the full-text index is out of date: run `hswarm index`");
  uint64_t *ids = hs_calloc(limit, sizeof *ids);
  double *scores = hs_calloc(limit, sizeof *scores);
  hs_kb_hits *h = hs_calloc(1, sizeof *h);
  if (h) h->items = hs_calloc(limit, sizeof *h->items);
  if (!ids || !scores || !h || !h->items) {
    hs_free(ids);
    hs_free(scores);
    hs_kb_hits_free(h);
    return hs_set_error(&hs_kb_err, HS_ENOMEM, "kb: out of memory");
  }
  h->method = "full text (BM25)";
  size_t n = 0;
  int rc = kb_fts_search(kb->fts, query, limit, ids, scores, &n);
  MDB_txn *txn = NULL;
  if (!rc && (rc = mdb_txn_begin(kb->env, NULL, MDB_RDONLY, &txn)) != 0)
    rc = kb_fail(rc, "begin");
  for (size_t i = 0; !rc && i < n; i++) {
    int r = kb_read_sym(kb, txn, ids[i], &h->items[h->n].sym);
    if (r == HS_ENOENT) continue; /* cannot happen while the epochs agree; skip if it does */
    if (r) rc = r;
    else h->items[h->n++].score = -scores[i]; /* BM25 in SQLite: lower is better */
  }
  if (txn) mdb_txn_abort(txn);
  hs_free(ids);
  hs_free(scores);
  if (rc) {
    hs_kb_hits_free(h);
    return rc;
  }
  *out = h;
  return 0;
}
