/* graph.c: queries of a repository's knowledge base (hswarm/kb.h): definitions by name, a file's
 * definitions, callers, callees and transitive dependencies over the references by name. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "hswarm/alloc.h"
#include "hswarm/code.h"
#include "hswarm/error.h"
#include "kb/kb_impl.h"

#define MAX_RESULTS 100000

/* ---- growing result arrays ---- */

static int syms_push(hs_kb_syms *s, size_t *cap, const hs_kb_sym *x) {
  if (s->n == *cap) {
    size_t c = *cap ? *cap * 2 : 16;
    hs_kb_sym *v = hs_realloc(s->items, c * sizeof *v);
    if (!v) return HS_ENOMEM;
    s->items = v;
    *cap = c;
  }
  s->items[s->n++] = *x;
  return 0;
}

void hs_kb_syms_free(hs_kb_syms *s) {
  if (!s) return;
  for (size_t i = 0; i < s->n; i++) kb_sym_release(&s->items[i]);
  hs_free(s->items);
  hs_free(s);
}

void hs_kb_edges_free(hs_kb_edges *e) {
  if (!e) return;
  for (size_t i = 0; i < e->n; i++) {
    hs_free((char *)e->items[i].name);
    kb_sym_release(&e->items[i].from);
    kb_sym_release(&e->items[i].to);
  }
  hs_free(e->items);
  hs_free(e);
}

static int cmp_sym(const void *pa, const void *pb) {
  const hs_kb_sym *a = pa, *b = pb;
  int c = strcmp(a->path, b->path);
  if (c) return c;
  return a->start_byte < b->start_byte ? -1 : a->start_byte > b->start_byte;
}

/* Definitions whose (q)name is exactly name, from db. */
static int collect_named(hs_kb *kb, MDB_txn *txn, MDB_dbi db, const char *name, int qualified,
                         hs_kb_syms *s, size_t *cap) {
  uint64_t *ids;
  size_t n;
  int rc = kb_dup_ids(txn, db, kb_name_key(name), MAX_RESULTS, &ids, &n);
  for (size_t i = 0; !rc && i < n; i++) {
    hs_kb_sym x;
    rc = kb_read_sym(kb, txn, ids[i], &x);
    if (rc == HS_ENOENT) {
      rc = 0;
      continue;
    }
    if (rc) break;
    if (strcmp(qualified ? x.qname : x.name, name) != 0) { /* a cut key matched */
      kb_sym_release(&x);
      continue;
    }
    if ((rc = syms_push(s, cap, &x)) != 0) kb_sym_release(&x);
  }
  hs_free(ids);
  return rc;
}

static int lookup_in(hs_kb *kb, MDB_txn *txn, const char *name, hs_kb_syms *s, size_t *cap) {
  int rc = 0;
  if (strchr(name, '.')) rc = collect_named(kb, txn, kb->by_qname, name, 1, s, cap);
  if (!rc && s->n == 0) rc = collect_named(kb, txn, kb->by_name, name, 0, s, cap);
  if (!rc && s->n) qsort(s->items, s->n, sizeof *s->items, cmp_sym);
  return rc;
}

static int begin_read(hs_kb *kb, MDB_txn **txn) {
  int rc = mdb_txn_begin(kb->env, NULL, MDB_RDONLY, txn);
  return rc ? kb_fail(rc, "begin") : 0;
}

int hs_kb_lookup(hs_kb *kb, const char *name, hs_kb_syms **out) {
  if (!kb || !name || !out) return hs_set_error(&hs_kb_err, HS_EINVAL, "kb: NULL argument");
  *out = hs_calloc(1, sizeof **out);
  if (!*out) return hs_set_error(&hs_kb_err, HS_ENOMEM, "kb: out of memory");
  MDB_txn *txn;
  int rc = begin_read(kb, &txn);
  size_t cap = 0;
  if (!rc) {
    rc = lookup_in(kb, txn, name, *out, &cap);
    mdb_txn_abort(txn);
  }
  if (rc) {
    hs_kb_syms_free(*out);
    *out = NULL;
  }
  return rc;
}

int hs_kb_file_syms(hs_kb *kb, const char *path, hs_kb_syms **out) {
  if (!kb || !path || !out) return hs_set_error(&hs_kb_err, HS_EINVAL, "kb: NULL argument");
  *out = hs_calloc(1, sizeof **out);
  if (!*out) return hs_set_error(&hs_kb_err, HS_ENOMEM, "kb: out of memory");
  MDB_txn *txn;
  int rc = begin_read(kb, &txn);
  if (rc) {
    hs_free(*out);
    *out = NULL;
    return rc;
  }
  MDB_val key = {strlen(path), (void *)path}, v;
  size_t cap = 0;
  if (mdb_get(txn, kb->files, &key, &v) != 0 || v.mv_size != sizeof(file_rec)) {
    rc = hs_set_error(&hs_kb_err, HS_ENOENT, "kb: %s is not in the index", path);
  } else {
    file_rec fr;
    memcpy(&fr, v.mv_data, sizeof fr);
    uint8_t fk[4];
    kb_put_u32(fk, fr.file_id);
    uint64_t *ids;
    size_t n;
    rc = kb_dup_ids(txn, kb->file_syms, (MDB_val){4, fk}, MAX_RESULTS, &ids, &n);
    for (size_t i = 0; !rc && i < n; i++) {
      hs_kb_sym x;
      if ((rc = kb_read_sym(kb, txn, ids[i], &x)) == 0 && (rc = syms_push(*out, &cap, &x)) != 0)
        kb_sym_release(&x);
    }
    hs_free(ids);
    if (!rc && (*out)->n) qsort((*out)->items, (*out)->n, sizeof *(*out)->items, cmp_sym);
  }
  mdb_txn_abort(txn);
  if (rc) {
    hs_kb_syms_free(*out);
    *out = NULL;
  }
  return rc;
}

int hs_kb_all_syms(hs_kb *kb, hs_kb_syms **out) {
  if (!kb || !out) return hs_set_error(&hs_kb_err, HS_EINVAL, "kb: NULL argument");
  *out = hs_calloc(1, sizeof **out);
  if (!*out) return hs_set_error(&hs_kb_err, HS_ENOMEM, "kb: out of memory");
  MDB_txn *txn = NULL;
  int rc = begin_read(kb, &txn);
  MDB_cursor *c = NULL;
  if (!rc && (rc = mdb_cursor_open(txn, kb->syms, &c)) != 0) rc = kb_fail(rc, "cursor");
  size_t cap = 0;
  MDB_val k, v;
  int mrc = rc ? MDB_NOTFOUND : mdb_cursor_get(c, &k, &v, MDB_FIRST);
  while (!rc && mrc == 0) {
    hs_kb_sym x;
    if ((rc = kb_read_sym(kb, txn, kb_get_u64(k.mv_data), &x)) == 0 &&
        (rc = syms_push(*out, &cap, &x)) != 0)
      kb_sym_release(&x);
    mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
  }
  if (c) mdb_cursor_close(c);
  if (!rc && mrc != MDB_NOTFOUND) rc = kb_fail(mrc, "reading the symbols");
  if (!rc && (*out)->n) qsort((*out)->items, (*out)->n, sizeof *(*out)->items, cmp_sym);
  if (txn) mdb_txn_abort(txn);
  if (rc) {
    hs_kb_syms_free(*out);
    *out = NULL;
  }
  return rc;
}

/* ---- edges ---- */

typedef struct edges_b {
  hs_kb_edges *e;
  size_t cap;
} edges_b;

static int edge_push(edges_b *b, hs_kb_edge *x) {
  if (b->e->n == b->cap) {
    size_t c = b->cap ? b->cap * 2 : 16;
    hs_kb_edge *v = hs_realloc(b->e->items, c * sizeof *v);
    if (!v) return HS_ENOMEM;
    b->e->items = v;
    b->cap = c;
  }
  b->e->items[b->e->n++] = *x;
  return 0;
}

/* The "from" side of a reference: a definition, or a file at its top level. */
static int read_from(hs_kb *kb, MDB_txn *txn, uint64_t from, hs_kb_sym *s) {
  if (!(from & KB_FILE_BIT)) return kb_read_sym(kb, txn, from, s);
  char path[PATH_MAX];
  int rc = kb_file_path(kb, txn, (uint32_t)(from & 0xffffffffu), path, sizeof path);
  if (rc) return rc;
  memset(s, 0, sizeof *s);
  s->kind = (hs_def_kind)-1;
  s->path = hs_strdup(path);
  s->name = hs_strdup("");
  s->qname = hs_strdup("");
  s->signature = hs_strdup("");
  s->doc = hs_strdup("");
  if (!s->path || !s->name || !s->qname || !s->signature || !s->doc) {
    kb_sym_release(s);
    return HS_ENOMEM;
  }
  return 0;
}

/* Appends the calls of name (callers), each from a definition or file, at depth. seen (ids)
 * filters repeats when given. */
static int add_callers(hs_kb *kb, MDB_txn *txn, const char *name, uint32_t depth, edges_b *b,
                       uint64_t **seen, size_t *n_seen, size_t *cap_seen) {
  MDB_cursor *c;
  int rc = mdb_cursor_open(txn, kb->refs_to, &c);
  if (rc) return kb_fail(rc, "cursor");
  MDB_val key = kb_name_key(name), v;
  rc = mdb_cursor_get(c, &key, &v, MDB_SET);
  int err = 0;
  while (rc == 0 && !err && b->e->n < MAX_RESULTS) {
    ref_in in;
    memcpy(&in, v.mv_data, sizeof in);
    uint64_t from = kb_get_u64(in.from);
    int dup = 0;
    for (size_t i = 0; seen && i < *n_seen && !dup; i++) dup = (*seen)[i] == from;
    if (in.kind == HS_REF_CALL && !dup) {
      hs_kb_edge e = {.depth = depth, .kind = HS_REF_CALL, .line = kb_get_u32(in.line)};
      e.name = hs_strdup(name);
      err = e.name ? read_from(kb, txn, from, &e.from) : HS_ENOMEM;
      if (err == HS_ENOENT) { /* a reference whose definition went: skip */
        hs_free((char *)e.name);
        err = 0;
      } else if (!err && (err = edge_push(b, &e)) != 0) {
        hs_free((char *)e.name);
        kb_sym_release(&e.from);
      }
      if (!err && seen) {
        if (*n_seen == *cap_seen) {
          *cap_seen = *cap_seen ? *cap_seen * 2 : 64;
          uint64_t *x = hs_realloc(*seen, *cap_seen * sizeof *x);
          if (!x) err = HS_ENOMEM;
          else *seen = x;
        }
        if (!err) (*seen)[(*n_seen)++] = from;
      }
    }
    rc = mdb_cursor_get(c, &key, &v, MDB_NEXT_DUP);
  }
  mdb_cursor_close(c);
  if (err) return err == HS_ENOMEM ? hs_set_error(&hs_kb_err, err, "kb: out of memory") : err;
  return rc == 0 || rc == MDB_NOTFOUND ? 0 : kb_fail(rc, "reading references");
}

/* Appends the calls made by the definitions named name, resolved where possible. */
static int add_callees(hs_kb *kb, MDB_txn *txn, const char *name, uint32_t depth, edges_b *b,
                       uint64_t **seen, size_t *n_seen, size_t *cap_seen) {
  hs_kb_syms defs = {0};
  size_t dcap = 0;
  int rc = lookup_in(kb, txn, name, &defs, &dcap);
  for (size_t d = 0; !rc && d < defs.n; d++) {
    MDB_cursor *c;
    if ((rc = mdb_cursor_open(txn, kb->refs_from, &c)) != 0) {
      rc = kb_fail(rc, "cursor");
      break;
    }
    uint8_t k[8];
    kb_put_u64(k, defs.items[d].id);
    MDB_val key = {8, k}, v;
    int mrc = mdb_cursor_get(c, &key, &v, MDB_SET);
    while (mrc == 0 && !rc && b->e->n < MAX_RESULTS) {
      const uint8_t *r = v.mv_data;
      if (r[0] == HS_REF_CALL) {
        char callee[KB_MAX_KEY + 1];
        memcpy(callee, r + 5, v.mv_size - 5);
        callee[v.mv_size - 5] = 0;
        hs_kb_syms targets = {0};
        size_t tcap = 0;
        rc = lookup_in(kb, txn, callee, &targets, &tcap);
        /* only what can be called: functions, methods, prototypes, macros, classes */
        size_t callable = 0;
        for (size_t t = 0; t < targets.n; t++) {
          hs_def_kind dk = targets.items[t].kind;
          if (dk == HS_DEF_FUNCTION || dk == HS_DEF_METHOD || dk == HS_DEF_PROTOTYPE ||
              dk == HS_DEF_MACRO || dk == HS_DEF_CLASS)
            targets.items[callable++] = targets.items[t];
          else
            kb_sym_release(&targets.items[t]);
        }
        targets.n = callable;
        /* a definition with a body stands for its prototypes */
        size_t bodies = 0;
        for (size_t t = 0; t < targets.n; t++) bodies += targets.items[t].kind != HS_DEF_PROTOTYPE;
        if (bodies && bodies < targets.n) {
          size_t kept = 0;
          for (size_t t = 0; t < targets.n; t++) {
            if (targets.items[t].kind != HS_DEF_PROTOTYPE)
              targets.items[kept++] = targets.items[t];
            else
              kb_sym_release(&targets.items[t]);
          }
          targets.n = kept;
        }
        /* a name defined in the caller's own file means that definition (C statics, local
         * helpers): the others of that name are left out */
        size_t local = 0;
        for (size_t t = 0; t < targets.n; t++)
          local += !strcmp(targets.items[t].path, defs.items[d].path);
        if (local && local < targets.n) {
          size_t kept = 0;
          for (size_t t = 0; t < targets.n; t++) {
            if (!strcmp(targets.items[t].path, defs.items[d].path))
              targets.items[kept++] = targets.items[t];
            else
              kb_sym_release(&targets.items[t]);
          }
          targets.n = kept;
        }
        size_t nt = targets.n ? targets.n : 1;
        for (size_t t = 0; !rc && t < nt; t++) {
          /* each target once; an unresolved name once per caller (by the hash of its name) */
          uint64_t tid = targets.n ? targets.items[t].id
                                   : (KB_FILE_BIT >> 1) ^ hs_code_hash(callee, strlen(callee)) ^
                                         defs.items[d].id;
          int dup = 0;
          for (size_t i = 0; seen && i < *n_seen && !dup; i++) dup = (*seen)[i] == tid;
          if (dup) continue;
          hs_kb_edge e = {.depth = depth, .kind = HS_REF_CALL, .line = kb_get_u32(r + 1)};
          e.name = hs_strdup(callee);
          rc = e.name ? kb_read_sym(kb, txn, defs.items[d].id, &e.from) : HS_ENOMEM;
          if (!rc && targets.n) {
            e.resolved = 1;
            e.to = targets.items[t];
            memset(&targets.items[t], 0, sizeof targets.items[t]);
          }
          if (!rc) rc = edge_push(b, &e);
          if (rc) {
            hs_free((char *)e.name);
            kb_sym_release(&e.from);
            kb_sym_release(&e.to);
          }
          if (!rc && seen) {
            if (*n_seen == *cap_seen) {
              *cap_seen = *cap_seen ? *cap_seen * 2 : 64;
              uint64_t *x = hs_realloc(*seen, *cap_seen * sizeof *x);
              if (!x) rc = HS_ENOMEM;
              else *seen = x;
            }
            if (!rc) (*seen)[(*n_seen)++] = tid;
          }
        }
        for (size_t t = 0; t < targets.n; t++) kb_sym_release(&targets.items[t]);
        hs_free(targets.items);
      }
      mrc = mdb_cursor_get(c, &key, &v, MDB_NEXT_DUP);
    }
    mdb_cursor_close(c);
    if (!rc && mrc != 0 && mrc != MDB_NOTFOUND) rc = kb_fail(mrc, "reading references");
  }
  for (size_t d = 0; d < defs.n; d++) kb_sym_release(&defs.items[d]);
  hs_free(defs.items);
  return rc == HS_ENOMEM ? hs_set_error(&hs_kb_err, rc, "kb: out of memory") : rc;
}

static int edges_query(hs_kb *kb, const char *name, int forward, uint32_t depth,
                       hs_kb_edges **out) {
  if (!kb || !name || !out) return hs_set_error(&hs_kb_err, HS_EINVAL, "kb: NULL argument");
  if (depth < 1 || depth > 16)
    return hs_set_error(&hs_kb_err, HS_EINVAL, "kb: depth must be 1 to 16 (got %u)", depth);
  *out = hs_calloc(1, sizeof **out);
  if (!*out) return hs_set_error(&hs_kb_err, HS_ENOMEM, "kb: out of memory");
  edges_b b = {*out, 0};
  MDB_txn *txn = NULL;
  int rc = begin_read(kb, &txn);
  uint64_t *seen = NULL;
  size_t n_seen = 0, cap_seen = 0;
  size_t level_start = 0;
  for (uint32_t d = 1; !rc && d <= depth; d++) {
    size_t level_end = b.e->n;
    if (d == 1) {
      rc = forward ? add_callees(kb, txn, name, 1, &b, &seen, &n_seen, &cap_seen)
                   : add_callers(kb, txn, name, 1, &b, &seen, &n_seen, &cap_seen);
      level_start = 0;
      continue;
    }
    /* the next level: from the names reached at the previous one */
    for (size_t i = level_start; !rc && i < level_end; i++) {
      const hs_kb_edge *e = &b.e->items[i];
      /* forward: the definition reached, by qualified name; backward: references are by the
       * name as written, so the callers of a caller are found by its plain name */
      const char *next = forward ? (e->resolved ? e->to.qname : NULL)
                                 : (e->from.id ? e->from.name : NULL);
      if (!next || !*next) continue;
      char *copy = hs_strdup(next); /* items may move as the array grows */
      if (!copy) {
        rc = HS_ENOMEM;
        break;
      }
      rc = forward ? add_callees(kb, txn, copy, d, &b, &seen, &n_seen, &cap_seen)
                   : add_callers(kb, txn, copy, d, &b, &seen, &n_seen, &cap_seen);
      hs_free(copy);
    }
    level_start = level_end;
    if (b.e->n == level_end) break;
  }
  if (txn) mdb_txn_abort(txn);
  hs_free(seen);
  if (rc) {
    hs_kb_edges_free(*out);
    *out = NULL;
  }
  return rc;
}

int hs_kb_callers(hs_kb *kb, const char *name, hs_kb_edges **out) {
  return edges_query(kb, name, 0, 1, out);
}

int hs_kb_callees(hs_kb *kb, const char *name, hs_kb_edges **out) {
  return edges_query(kb, name, 1, 1, out);
}

int hs_kb_deps(hs_kb *kb, const char *name, int forward, uint32_t depth, hs_kb_edges **out) {
  return edges_query(kb, name, forward, depth, out);
}
