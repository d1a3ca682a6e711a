/* store.c: opening a repository's knowledge base (hswarm/kb.h): where the index lives, the
 * LMDB environment and its databases (kb_impl.h), the format version, symbol records. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hswarm/alloc.h"
#include "hswarm/code.h"
#include "hswarm/error.h"
#include "kb/kb_impl.h"

#define MAP_SIZE (1ull << 36) /* address space only: the file grows with what is stored */

_Thread_local hs_errbuf hs_kb_err;

const char *hs_kb_last_error(void) { return hs_kb_err.msg; }

void kb_put_u64(uint8_t *p, uint64_t v) {
  for (int i = 7; i >= 0; i--, v >>= 8) p[i] = (uint8_t)v;
}
uint64_t kb_get_u64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = v << 8 | p[i];
  return v;
}
void kb_put_u32(uint8_t *p, uint32_t v) {
  for (int i = 3; i >= 0; i--, v >>= 8) p[i] = (uint8_t)v;
}
uint32_t kb_get_u32(const uint8_t *p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) v = v << 8 | p[i];
  return v;
}

int kb_fail(int rc, const char *what) {
  int code = rc == ENOMEM ? HS_ENOMEM : rc == MDB_MAP_FULL ? HS_ENOSPC
             : rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND ? HS_ECORRUPT
             : rc == MDB_VERSION_MISMATCH || rc == MDB_INVALID ? HS_EVERSION : HS_EIO;
  return hs_set_error(&hs_kb_err, code, "kb: %s: %s", what, mdb_strerror(rc));
}

MDB_val kb_name_key(const char *name) {
  size_t n = strlen(name);
  return (MDB_val){n > KB_MAX_KEY ? KB_MAX_KEY : n, (void *)name};
}

/* ---- where the index lives ---- */

static uint64_t path_hash(const char *s) { return hs_code_hash(s, strlen(s)); }

int hs_kb_default_dir(const char *root, char *buf, size_t cap) {
  char abs[PATH_MAX];
  if (!root || !buf) return hs_set_error(&hs_kb_err, HS_EINVAL, "kb: NULL argument");
  if (!realpath(root, abs))
    return hs_set_error(&hs_kb_err, HS_ENOENT, "kb: %s: %s", root, strerror(errno));
  const char *cache = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
  char base[PATH_MAX];
  if (cache && cache[0] == '/')
    snprintf(base, sizeof base, "%s/hswarm/index", cache);
  else if (home && home[0])
    snprintf(base, sizeof base, "%s/.cache/hswarm/index", home);
  else
    return hs_set_error(&hs_kb_err, HS_EINVAL,
                        "kb: neither XDG_CACHE_HOME nor HOME is set: give an index directory");
  const char *name = strrchr(abs, '/');
  name = name && name[1] ? name + 1 : "root";
  int n = snprintf(buf, cap, "%s/%.64s-%016llx", base, name,
                   (unsigned long long)path_hash(abs));
  if (n < 0 || (size_t)n >= cap)
    return hs_set_error(&hs_kb_err, HS_EINVAL, "kb: index path too long");
  return 0;
}

int hs_kb_find_root(const char *dir, char *buf, size_t cap) {
  char abs[PATH_MAX], probe[PATH_MAX + 8];
  if (!dir || !buf) return hs_set_error(&hs_kb_err, HS_EINVAL, "kb: NULL argument");
  if (!realpath(dir, abs))
    return hs_set_error(&hs_kb_err, HS_ENOENT, "kb: %s: %s", dir, strerror(errno));
  char cur[PATH_MAX];
  snprintf(cur, sizeof cur, "%s", abs);
  for (;;) {
    struct stat st;
    snprintf(probe, sizeof probe, "%s/.git", cur);
    if (stat(probe, &st) == 0) break;
    char *slash = strrchr(cur, '/');
    if (!slash || slash == cur) {
      snprintf(cur, sizeof cur, "%s", abs); /* no repository: the directory itself */
      break;
    }
    *slash = 0;
  }
  if (strlen(cur) + 1 > cap) return hs_set_error(&hs_kb_err, HS_EINVAL, "kb: path too long");
  strcpy(buf, cur);
  return 0;
}

/* mkdir -p */
static int make_dirs(const char *path) {
  char p[PATH_MAX];
  snprintf(p, sizeof p, "%s", path);
  for (char *s = p + 1; *s; s++)
    if (*s == '/') {
      *s = 0;
      if (mkdir(p, 0755) != 0 && errno != EEXIST) return -1;
      *s = '/';
    }
  return mkdir(p, 0755) == 0 || errno == EEXIST ? 0 : -1;
}

static void remove_index_files(const char *dir) {
  char p[PATH_MAX + 16];
  snprintf(p, sizeof p, "%s/data.mdb", dir);
  unlink(p);
  snprintf(p, sizeof p, "%s/lock.mdb", dir);
  unlink(p);
  static const char *const fts[] = {"fts.sqlite", "fts.sqlite-wal", "fts.sqlite-shm"};
  for (int i = 0; i < 3; i++) {
    snprintf(p, sizeof p, "%s/%s", dir, fts[i]);
    unlink(p);
  }
}

/* ---- opening ---- */

static int open_dbs(hs_kb *kb, MDB_txn *txn) {
  static const struct {
    const char *name;
    size_t off;
    unsigned flags;
  } dbs[] = {
      {"meta", offsetof(hs_kb, meta), 0},
      {"files", offsetof(hs_kb, files), 0},
      {"file_ids", offsetof(hs_kb, file_ids), 0},
      {"syms", offsetof(hs_kb, syms), 0},
      {"file_syms", offsetof(hs_kb, file_syms), MDB_DUPSORT | MDB_DUPFIXED},
      {"by_name", offsetof(hs_kb, by_name), MDB_DUPSORT | MDB_DUPFIXED},
      {"by_qname", offsetof(hs_kb, by_qname), MDB_DUPSORT | MDB_DUPFIXED},
      {"refs_from", offsetof(hs_kb, refs_from), MDB_DUPSORT},
      {"refs_to", offsetof(hs_kb, refs_to), MDB_DUPSORT | MDB_DUPFIXED},
  };
  for (size_t i = 0; i < sizeof dbs / sizeof dbs[0]; i++) {
    int rc = mdb_dbi_open(txn, dbs[i].name, dbs[i].flags | MDB_CREATE,
                          (MDB_dbi *)((char *)kb + dbs[i].off));
    if (rc) return kb_fail(rc, "opening the databases");
  }
  return 0;
}

static int meta_get(hs_kb *kb, MDB_txn *txn, const char *key, MDB_val *v) {
  MDB_val k = {strlen(key), (void *)key};
  return mdb_get(txn, kb->meta, &k, v);
}

static int meta_put(hs_kb *kb, MDB_txn *txn, const char *key, const void *data, size_t len) {
  MDB_val k = {strlen(key), (void *)key}, v = {len, (void *)data};
  return mdb_put(txn, kb->meta, &k, &v, 0);
}

int hs_kb_open(const char *root, const char *index_dir, int create, hs_kb **out) {
  if (!root || !out) return hs_set_error(&hs_kb_err, HS_EINVAL, "kb: NULL argument");
  *out = NULL;
  hs_kb *kb = hs_calloc(1, sizeof *kb);
  if (!kb) return hs_set_error(&hs_kb_err, HS_ENOMEM, "kb: out of memory");
  if (!realpath(root, kb->root)) {
    hs_free(kb);
    return hs_set_error(&hs_kb_err, HS_ENOENT, "kb: the repository %s: %s", root, strerror(errno));
  }
  int rc = 0;
  if (index_dir)
    snprintf(kb->dir, sizeof kb->dir, "%s", index_dir);
  else
    rc = hs_kb_default_dir(kb->root, kb->dir, sizeof kb->dir);
  char data[PATH_MAX + 16];
  snprintf(data, sizeof data, "%s/data.mdb", kb->dir);
  struct stat st;
  int exists = stat(data, &st) == 0;
  if (!rc && !exists && !create)
    rc = hs_set_error(&hs_kb_err, HS_ENOENT,
                      "kb: no index of %s in %s (run `hswarm index %s` first)", kb->root, kb->dir,
                      kb->root);
  if (!rc && create && make_dirs(kb->dir) != 0)
    rc = hs_set_error(&hs_kb_err, HS_EIO, "kb: cannot create %s: %s", kb->dir, strerror(errno));
  if (!rc && create == 2) remove_index_files(kb->dir);
  int mrc;
  if (!rc && (mrc = mdb_env_create(&kb->env)) != 0) rc = kb_fail(mrc, "creating the environment");
  if (!rc) {
    mdb_env_set_maxdbs(kb->env, 16);
    mdb_env_set_mapsize(kb->env, (size_t)MAP_SIZE);
    if ((mrc = mdb_env_open(kb->env, kb->dir, 0, 0644)) != 0) {
      rc = mrc == MDB_INVALID || mrc == MDB_VERSION_MISMATCH
               ? hs_set_error(&hs_kb_err, HS_EVERSION,
                              "kb: %s is not an index this hswarm can read (%s): rebuild it with "
                              "`hswarm index --rebuild`",
                              kb->dir, mdb_strerror(mrc))
               : kb_fail(mrc, kb->dir);
    }
  }
  MDB_txn *txn = NULL;
  if (!rc && (mrc = mdb_txn_begin(kb->env, NULL, 0, &txn)) != 0) rc = kb_fail(mrc, "begin");
  if (!rc) rc = open_dbs(kb, txn);
  if (!rc) {
    MDB_val v;
    if (meta_get(kb, txn, "version", &v) == 0) {
      if (v.mv_size != strlen(KB_VERSION) || memcmp(v.mv_data, KB_VERSION, v.mv_size) != 0)
        rc = hs_set_error(&hs_kb_err, HS_EVERSION,
                          "kb: the index in %s was written by another version (\"%.*s\", this is "
                          "\"%s\"): rebuild it with `hswarm index --rebuild`",
                          kb->dir, (int)(v.mv_size > 40 ? 40 : v.mv_size), (char *)v.mv_data,
                          KB_VERSION);
      else if (meta_get(kb, txn, "root", &v) == 0 &&
               (v.mv_size != strlen(kb->root) || memcmp(v.mv_data, kb->root, v.mv_size) != 0))
        rc = hs_set_error(&hs_kb_err, HS_EINVAL,
                          "kb: the index in %s belongs to the repository %.*s, not %s", kb->dir,
                          (int)v.mv_size, (char *)v.mv_data, kb->root);
    } else if ((mrc = meta_put(kb, txn, "version", KB_VERSION, strlen(KB_VERSION))) != 0 ||
               (mrc = meta_put(kb, txn, "root", kb->root, strlen(kb->root))) != 0) {
      rc = kb_fail(mrc, "writing the index's metadata");
    }
  }
  if (!rc) {
    MDB_val v;
    kb->epoch = meta_get(kb, txn, "fts_epoch", &v) == 0 && v.mv_size == 8
                    ? kb_get_u64(v.mv_data) : 0;
  }
  if (txn) {
    if (rc)
      mdb_txn_abort(txn);
    else if ((mrc = mdb_txn_commit(txn)) != 0)
      rc = kb_fail(mrc, "commit");
  }
  if (!rc) rc = kb_fts_open(kb->dir, kb->epoch, &kb->fts, &kb->fts_stale);
  if (rc) {
    if (kb->env) mdb_env_close(kb->env);
    hs_free(kb);
    return rc;
  }
  *out = kb;
  return 0;
}

void hs_kb_close(hs_kb *kb) {
  if (!kb) return;
  kb_fts_close(kb->fts);
  mdb_env_close(kb->env);
  hs_free(kb);
}

const char *hs_kb_root(const hs_kb *kb) { return kb->root; }
const char *hs_kb_dir(const hs_kb *kb) { return kb->dir; }

/* ---- records ---- */

int kb_decode_sym(uint64_t id, const MDB_val *v, hs_kb_sym *s) {
  if (v->mv_size < sizeof(sym_rec) + 4)
    return hs_set_error(&hs_kb_err, HS_ECORRUPT, "kb: symbol %llu: record too short",
                        (unsigned long long)id);
  sym_rec r;
  memcpy(&r, v->mv_data, sizeof r);
  const char *p = (const char *)v->mv_data + sizeof r, *end = (const char *)v->mv_data + v->mv_size;
  const char *str[4];
  for (int i = 0; i < 4; i++) {
    const char *z = memchr(p, 0, (size_t)(end - p));
    if (!z)
      return hs_set_error(&hs_kb_err, HS_ECORRUPT, "kb: symbol %llu: bad strings",
                          (unsigned long long)id);
    str[i] = p;
    p = z + 1;
  }
  *s = (hs_kb_sym){.id = id, .kind = (hs_def_kind)r.kind, .lang = (hs_lang)r.lang,
                   .name = str[0], .qname = str[1], .signature = str[2], .doc = str[3],
                   .start_byte = r.start_byte, .end_byte = r.end_byte,
                   .start_line = r.start_line, .end_line = r.end_line, .hash = r.hash,
                   .parent = r.parent};
  return 0;
}

int kb_file_path(hs_kb *kb, MDB_txn *txn, uint32_t file_id, char *buf, size_t cap) {
  uint8_t k[4];
  kb_put_u32(k, file_id);
  MDB_val key = {4, k}, v;
  if (mdb_get(txn, kb->file_ids, &key, &v) != 0 || v.mv_size + 1 > cap)
    return hs_set_error(&hs_kb_err, HS_ENOENT, "kb: file %u is not in the index", file_id);
  memcpy(buf, v.mv_data, v.mv_size);
  buf[v.mv_size] = 0;
  return 0;
}

void kb_sym_release(hs_kb_sym *s) {
  hs_free((char *)s->path);
  hs_free((char *)s->name);
  hs_free((char *)s->qname);
  hs_free((char *)s->signature);
  hs_free((char *)s->doc);
  memset(s, 0, sizeof *s);
}

int kb_read_sym(hs_kb *kb, MDB_txn *txn, uint64_t id, hs_kb_sym *s) {
  uint8_t k[8];
  kb_put_u64(k, id);
  MDB_val key = {8, k}, v;
  int rc = mdb_get(txn, kb->syms, &key, &v);
  if (rc) return rc == MDB_NOTFOUND ? HS_ENOENT : kb_fail(rc, "reading a symbol");
  hs_kb_sym d;
  if ((rc = kb_decode_sym(id, &v, &d)) != 0) return rc;
  sym_rec r;
  memcpy(&r, v.mv_data, sizeof r);
  char path[PATH_MAX];
  if ((rc = kb_file_path(kb, txn, r.file_id, path, sizeof path)) != 0) return rc;
  *s = d;
  s->path = hs_strdup(path);
  s->name = hs_strdup(d.name);
  s->qname = hs_strdup(d.qname);
  s->signature = hs_strdup(d.signature);
  s->doc = hs_strdup(d.doc);
  if (!s->path || !s->name || !s->qname || !s->signature || !s->doc) {
    kb_sym_release(s);
    return hs_set_error(&hs_kb_err, HS_ENOMEM, "kb: out of memory");
  }
  return 0;
}

int kb_dup_ids(MDB_txn *txn, MDB_dbi db, MDB_val key, size_t max, uint64_t **ids, size_t *n) {
  MDB_cursor *c;
  int rc = mdb_cursor_open(txn, db, &c);
  if (rc) return kb_fail(rc, "cursor");
  MDB_val v;
  size_t cap = 0;
  *ids = NULL;
  *n = 0;
  rc = mdb_cursor_get(c, &key, &v, MDB_SET);
  while (rc == 0 && *n < max) {
    if (*n == cap) {
      cap = cap ? cap * 2 : 16;
      uint64_t *x = hs_realloc(*ids, cap * sizeof *x);
      if (!x) {
        mdb_cursor_close(c);
        hs_free(*ids);
        *ids = NULL;
        return hs_set_error(&hs_kb_err, HS_ENOMEM, "kb: out of memory");
      }
      *ids = x;
    }
    (*ids)[(*n)++] = kb_get_u64(v.mv_data);
    rc = mdb_cursor_get(c, &key, &v, MDB_NEXT_DUP);
  }
  mdb_cursor_close(c);
  if (rc == 0 || rc == MDB_NOTFOUND) return 0;
  hs_free(*ids);
  *ids = NULL;
  return kb_fail(rc, "reading an index");
}
