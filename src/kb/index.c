/* index.c: bringing a repository's knowledge base up to date (hs_kb_index): the file list (git
 * ls-files, or a walk), and per file: unchanged (size and mtime, then content hash), or parsed
 * and its old records replaced; files that are gone removed. One write transaction. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hswarm/alloc.h"
#include "hswarm/code.h"
#include "hswarm/error.h"
#include "code/lang.h"
#include "kb/kb_impl.h"

#define DEFAULT_MAX_FILE (4ull << 20)
#define KB_FAILED (-1) /* a failure whose message is already set, among LMDB codes */

/* ---- the file list ---- */

typedef struct paths {
  char **v;
  size_t n, cap;
} paths;

static int paths_add(paths *p, const char *s, size_t len) {
  if (p->n == p->cap) {
    size_t cap = p->cap ? p->cap * 2 : 256;
    char **v = hs_realloc(p->v, cap * sizeof *v);
    if (!v) return HS_ENOMEM;
    p->v = v;
    p->cap = cap;
  }
  char *d = hs_malloc(len + 1);
  if (!d) return HS_ENOMEM;
  memcpy(d, s, len);
  d[len] = 0;
  p->v[p->n++] = d;
  return 0;
}

static void paths_free(paths *p) {
  for (size_t i = 0; i < p->n; i++) hs_free(p->v[i]);
  hs_free(p->v);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* `git ls-files -z -co --exclude-standard` in root: 0 and the paths, or -1 (not a work tree,
 * no git). */
static int list_git(const char *root, paths *out) {
  char git[PATH_MAX + 8];
  struct stat st;
  snprintf(git, sizeof git, "%s/.git", root);
  if (stat(git, &st) != 0) return -1;
  int fd[2];
  if (pipe(fd) != 0) return -1;
  pid_t pid = fork();
  if (pid < 0) {
    close(fd[0]), close(fd[1]);
    return -1;
  }
  if (pid == 0) {
    dup2(fd[1], 1);
    close(fd[0]);
    close(fd[1]);
    int null = open("/dev/null", 0);
    if (null >= 0) dup2(null, 2);
    execlp("git", "git", "-C", root, "ls-files", "-z", "-co", "--exclude-standard", (char *)NULL);
    _exit(127);
  }
  close(fd[1]);
  size_t cap = 1 << 16, n = 0;
  char *buf = hs_malloc(cap);
  ssize_t k;
  int rc = buf ? 0 : HS_ENOMEM;
  while (!rc && (k = read(fd[0], buf + n, cap - n)) != 0) {
    if (k < 0) {
      if (errno == EINTR) continue;
      break;
    }
    n += (size_t)k;
    if (n == cap) {
      char *b = hs_realloc(buf, cap * 2);
      if (!b) rc = HS_ENOMEM;
      else buf = b, cap *= 2;
    }
  }
  close(fd[0]);
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  if (!rc && (!WIFEXITED(status) || WEXITSTATUS(status) != 0)) rc = -1;
  for (size_t a = 0, i = 0; !rc && i < n; i++)
    if (buf[i] == 0) {
      if (i > a && hs_lang_of_path(buf + a) != HS_LANG_UNKNOWN) rc = paths_add(out, buf + a, i - a);
      a = i + 1;
    }
  hs_free(buf);
  return rc;
}

static int skip_dir(const char *name) {
  return name[0] == '.' || !strcmp(name, "node_modules") || !strcmp(name, "__pycache__") ||
         !strncmp(name, "build", 5);
}

/* Walks root/rel (depth-first, no symbolic links followed). */
static int list_walk(const char *root, const char *rel, paths *out, int depth) {
  if (depth > 64) return 0;
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s%s%s", root, rel[0] ? "/" : "", rel);
  DIR *d = opendir(dir);
  if (!d) return 0;
  struct dirent *e;
  int rc = 0;
  while (!rc && (e = readdir(d)) != NULL) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    char sub[PATH_MAX];
    int n = snprintf(sub, sizeof sub, "%s%s%s", rel, rel[0] ? "/" : "", e->d_name);
    if (n < 0 || (size_t)n >= sizeof sub) continue;
    char full[PATH_MAX * 2];
    snprintf(full, sizeof full, "%s/%s", root, sub);
    struct stat st;
    if (lstat(full, &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      if (!skip_dir(e->d_name)) rc = list_walk(root, sub, out, depth + 1);
    } else if (S_ISREG(st.st_mode) && hs_lang_of_path(sub) != HS_LANG_UNKNOWN) {
      rc = paths_add(out, sub, (size_t)n);
    }
  }
  closedir(d);
  return rc;
}

/* ---- removing a file's records ---- */

static int del_dup(MDB_txn *txn, MDB_dbi db, MDB_val key, const void *val, size_t len) {
  MDB_val v = {len, (void *)val};
  int rc = mdb_del(txn, db, &key, &v);
  return rc == MDB_NOTFOUND ? 0 : rc;
}

/* The references made from id: each removed from refs_to, then all from refs_from. */
static int remove_refs_from(hs_kb *kb, MDB_txn *txn, uint64_t id) {
  uint8_t k[8];
  kb_put_u64(k, id);
  MDB_val key = {8, k}, v;
  MDB_cursor *c;
  int rc = mdb_cursor_open(txn, kb->refs_from, &c);
  if (rc) return rc;
  rc = mdb_cursor_get(c, &key, &v, MDB_SET);
  while (rc == 0) {
    const uint8_t *r = v.mv_data;
    ref_in in = {.kind = r[0]};
    kb_put_u64(in.from, id);
    memcpy(in.line, r + 1, 4);
    MDB_val name = {v.mv_size - 5, (void *)(r + 5)};
    int d = del_dup(txn, kb->refs_to, name, &in, sizeof in);
    if (d) {
      mdb_cursor_close(c);
      return d;
    }
    rc = mdb_cursor_get(c, &key, &v, MDB_NEXT_DUP);
  }
  mdb_cursor_close(c);
  if (rc != MDB_NOTFOUND) return rc;
  rc = mdb_del(txn, kb->refs_from, &key, NULL);
  return rc == MDB_NOTFOUND ? 0 : rc;
}

static int remove_file_records(hs_kb *kb, MDB_txn *txn, uint32_t file_id) {
  uint8_t fk[4];
  kb_put_u32(fk, file_id);
  MDB_val key = {4, fk};
  size_t n = 0;
  uint64_t *ids = NULL;
  if (kb_dup_ids(txn, kb->file_syms, key, SIZE_MAX, &ids, &n) != 0) return KB_FAILED;
  int rc = 0;
  for (size_t i = 0; !rc && i < n; i++) {
    uint8_t sk[8];
    kb_put_u64(sk, ids[i]);
    MDB_val skey = {8, sk}, sv;
    if (mdb_get(txn, kb->syms, &skey, &sv) == 0) {
      hs_kb_sym s;
      if (kb_decode_sym(ids[i], &sv, &s) == 0) {
        char name[KB_MAX_KEY + 1], qname[KB_MAX_KEY + 1]; /* the value goes away with the del */
        MDB_val nk = kb_name_key(s.name), qk = kb_name_key(s.qname);
        memcpy(name, nk.mv_data, nk.mv_size);
        memcpy(qname, qk.mv_data, qk.mv_size);
        nk.mv_data = name;
        qk.mv_data = qname;
        rc = del_dup(txn, kb->by_name, nk, sk, 8);
        if (!rc) rc = del_dup(txn, kb->by_qname, qk, sk, 8);
      }
      if (!rc) rc = mdb_del(txn, kb->syms, &skey, NULL);
    }
    if (!rc && kb_fts_delete(kb->fts, ids[i]) != 0) rc = KB_FAILED;
    if (!rc) rc = remove_refs_from(kb, txn, ids[i]);
  }
  hs_free(ids);
  if (!rc) rc = remove_refs_from(kb, txn, KB_FILE_BIT | file_id);
  if (!rc) {
    rc = mdb_del(txn, kb->file_syms, &key, NULL);
    if (rc == MDB_NOTFOUND) rc = 0;
  }
  return rc;
}

/* ---- adding a parsed file ---- */

static int next_counter(hs_kb *kb, MDB_txn *txn, const char *name, uint64_t *out) {
  MDB_val k = {strlen(name), (void *)name}, v;
  uint64_t n = 1;
  if (mdb_get(txn, kb->meta, &k, &v) == 0 && v.mv_size == 8) n = kb_get_u64(v.mv_data) + 1;
  uint8_t b[8];
  kb_put_u64(b, n);
  MDB_val nv = {8, b};
  int rc = mdb_put(txn, kb->meta, &k, &nv, 0);
  *out = n;
  return rc;
}

static int add_symbols(hs_kb *kb, MDB_txn *txn, uint32_t file_id, hs_lang lang,
                       const hs_parsed *p, const char *text) {
  uint64_t *ids = hs_calloc(p->n_defs ? p->n_defs : 1, sizeof *ids);
  if (!ids) return ENOMEM;
  int rc = 0;
  uint8_t fk[4];
  kb_put_u32(fk, file_id);
  for (size_t i = 0; !rc && i < p->n_defs; i++) {
    const hs_def *d = &p->defs[i];
    rc = next_counter(kb, txn, "next_sym", &ids[i]);
    if (rc) break;
    size_t ln[4] = {strlen(d->name) + 1, strlen(d->qname) + 1, strlen(d->signature) + 1,
                    strlen(d->doc) + 1};
    size_t len = sizeof(sym_rec) + ln[0] + ln[1] + ln[2] + ln[3];
    char *buf = hs_malloc(len);
    if (!buf) {
      rc = ENOMEM;
      break;
    }
    sym_rec r = {.file_id = file_id, .kind = (uint8_t)d->kind, .lang = (uint8_t)lang,
                 .start_byte = d->start_byte, .end_byte = d->end_byte,
                 .start_line = d->start_line, .end_line = d->end_line, .hash = d->hash,
                 .parent = d->parent >= 0 ? ids[d->parent] : 0};
    memcpy(buf, &r, sizeof r);
    size_t at = sizeof r;
    const char *s[4] = {d->name, d->qname, d->signature, d->doc};
    for (int k = 0; k < 4; k++) {
      memcpy(buf + at, s[k], ln[k]);
      at += ln[k];
    }
    uint8_t sk[8];
    kb_put_u64(sk, ids[i]);
    MDB_val key = {8, sk}, val = {len, buf}, id = {8, sk}, fkey = {4, fk};
    rc = mdb_put(txn, kb->syms, &key, &val, 0);
    hs_free(buf);
    MDB_val nk = kb_name_key(d->name), qk = kb_name_key(d->qname);
    if (!rc) rc = mdb_put(txn, kb->by_name, &nk, &id, 0);
    if (!rc) rc = mdb_put(txn, kb->by_qname, &qk, &id, 0);
    if (!rc) rc = mdb_put(txn, kb->file_syms, &fkey, &id, 0);
    if (!rc && kb_fts_insert(kb->fts, ids[i], d->name, d->qname, d->signature, d->doc,
                             text + d->start_byte, d->end_byte - d->start_byte) != 0)
      rc = KB_FAILED;
  }
  for (size_t i = 0; !rc && i < p->n_refs; i++) {
    const hs_ref *r = &p->refs[i];
    uint64_t from = r->def >= 0 ? ids[r->def] : (KB_FILE_BIT | file_id);
    MDB_val nk = kb_name_key(r->name);
    if (nk.mv_size == 0) continue;
    uint8_t out[5 + KB_MAX_KEY], fkb[8];
    out[0] = (uint8_t)r->kind;
    kb_put_u32(out + 1, r->line);
    memcpy(out + 5, nk.mv_data, nk.mv_size);
    kb_put_u64(fkb, from);
    MDB_val key = {8, fkb}, val = {5 + nk.mv_size, out};
    rc = mdb_put(txn, kb->refs_from, &key, &val, MDB_NODUPDATA);
    if (rc == MDB_KEYEXIST) { /* the same reference twice on one line: once is enough */
      rc = 0;
      continue;
    }
    ref_in in = {.kind = (uint8_t)r->kind};
    memcpy(in.from, fkb, 8);
    kb_put_u32(in.line, r->line);
    MDB_val iv = {sizeof in, &in};
    if (!rc) rc = mdb_put(txn, kb->refs_to, &nk, &iv, 0);
  }
  hs_free(ids);
  return rc;
}

/* ---- the update ---- */

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static char *read_whole(const char *path, size_t size, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *b = hs_malloc(size + 1);
  size_t n = b ? fread(b, 1, size, f) : 0;
  fclose(f);
  if (!b) return NULL;
  b[n] = 0;
  *len = n;
  return b;
}

/* One file: unchanged, parsed and replaced, or skipped. */
static int index_file(hs_kb *kb, MDB_txn *txn, const char *rel, uint64_t max, int force,
                      hs_kb_index_stats *st) {
  char full[PATH_MAX * 2];
  snprintf(full, sizeof full, "%s/%s", kb->root, rel);
  MDB_val key = {strlen(rel), (void *)rel}, v;
  file_rec old;
  int known = mdb_get(txn, kb->files, &key, &v) == 0 && v.mv_size == sizeof old;
  if (known) memcpy(&old, v.mv_data, sizeof old);
  struct stat sb;
  st->files++;
  if (lstat(full, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    st->unreadable++;
    return 0; /* a vanished file is removed with the others that are gone */
  }
  int64_t mtime = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
  if (!force && known && old.size == (uint64_t)sb.st_size && old.mtime_ns == mtime) {
    st->unchanged++;
    return 0;
  }
  int rc = 0;
  if ((uint64_t)sb.st_size > max) {
    st->skipped_large++;
    if (known && (rc = remove_file_records(kb, txn, old.file_id)) == 0) old.n_defs = 0;
    return rc;
  }
  size_t len;
  char *text = read_whole(full, (size_t)sb.st_size, &len);
  if (!text) {
    st->unreadable++;
    return 0;
  }
  if (memchr(text, 0, len < 8192 ? len : 8192)) {
    st->skipped_binary++;
    hs_free(text);
    if (known) rc = remove_file_records(kb, txn, old.file_id);
    return rc;
  }
  uint64_t hash = hs_code_hash(text, len);
  file_rec rec = known ? old : (file_rec){0};
  rec.size = (uint64_t)sb.st_size;
  rec.mtime_ns = mtime;
  if (!force && known && old.hash == hash) {
    st->unchanged++;
    hs_free(text);
    MDB_val nv = {sizeof rec, &rec};
    return mdb_put(txn, kb->files, &key, &nv, 0);
  }
  hs_lang lang = hs_lang_of_path(rel);
  hs_parsed *p;
  if (hs_code_parse(lang, text, len, &p) != 0) {
    st->unreadable++;
    hs_free(text);
    return 0;
  }
  st->parsed++;
  for (size_t i = 0; i < len; i++) st->lines_parsed += text[i] == '\n';
  if (len && text[len - 1] != '\n') st->lines_parsed++;
  st->with_errors += p->n_errors > 0;
  if (known) {
    rc = remove_file_records(kb, txn, old.file_id);
  } else {
    uint64_t id;
    rc = next_counter(kb, txn, "next_file", &id);
    rec.file_id = (uint32_t)id;
    uint8_t ik[4];
    kb_put_u32(ik, rec.file_id);
    MDB_val ikey = {4, ik}, path = {strlen(rel), (void *)rel};
    if (!rc) rc = mdb_put(txn, kb->file_ids, &ikey, &path, 0);
  }
  rec.lang = (uint8_t)lang;
  rec.hash = hash;
  rec.n_defs = (uint32_t)p->n_defs;
  if (!rc) rc = add_symbols(kb, txn, rec.file_id, lang, p, text);
  hs_parsed_free(p);
  hs_free(text);
  MDB_val nv = {sizeof rec, &rec};
  if (!rc) rc = mdb_put(txn, kb->files, &key, &nv, 0);
  return rc;
}

/* Removes the indexed files that are not in seen (sorted). */
static int remove_gone(hs_kb *kb, MDB_txn *txn, const paths *seen, hs_kb_index_stats *st) {
  MDB_cursor *c;
  int rc = mdb_cursor_open(txn, kb->files, &c);
  if (rc) return rc;
  paths gone = {0};
  MDB_val k, v;
  rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
  while (rc == 0) {
    char path[PATH_MAX];
    size_t n = k.mv_size < sizeof path - 1 ? k.mv_size : sizeof path - 1;
    memcpy(path, k.mv_data, n);
    path[n] = 0;
    const char *pp = path;
    if ((!seen->n || !bsearch(&pp, seen->v, seen->n, sizeof *seen->v, cmp_str)) &&
        paths_add(&gone, path, n))
      rc = ENOMEM;
    if (!rc) rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
  }
  mdb_cursor_close(c);
  if (rc != MDB_NOTFOUND) {
    paths_free(&gone);
    return rc;
  }
  rc = 0;
  for (size_t i = 0; !rc && i < gone.n; i++) {
    MDB_val key = {strlen(gone.v[i]), gone.v[i]};
    if (mdb_get(txn, kb->files, &key, &v) != 0 || v.mv_size != sizeof(file_rec)) continue;
    file_rec rec;
    memcpy(&rec, v.mv_data, sizeof rec);
    rc = remove_file_records(kb, txn, rec.file_id);
    uint8_t ik[4];
    kb_put_u32(ik, rec.file_id);
    MDB_val ikey = {4, ik};
    if (!rc) rc = mdb_del(txn, kb->file_ids, &ikey, NULL);
    if (!rc) rc = mdb_del(txn, kb->files, &key, NULL);
    st->removed++;
  }
  paths_free(&gone);
  return rc;
}

int hs_kb_index(hs_kb *kb, const hs_kb_index_opts *o, hs_kb_index_stats *out) {
  if (!kb) return hs_set_error(&hs_kb_err, HS_EINVAL, "kb: NULL argument");
  double t0 = now_s();
  hs_kb_index_stats st = {0};
  uint64_t max = o && o->max_file_bytes ? o->max_file_bytes : DEFAULT_MAX_FILE;
  paths files = {0};
  int rc = list_git(kb->root, &files);
  if (rc == HS_ENOMEM) {
    paths_free(&files);
    return hs_set_error(&hs_kb_err, HS_ENOMEM, "kb: out of memory listing files");
  }
  if (rc) {
    paths_free(&files);
    files = (paths){0};
    if ((rc = list_walk(kb->root, "", &files, 0)) != 0) {
      paths_free(&files);
      return hs_set_error(&hs_kb_err, HS_ENOMEM, "kb: out of memory listing files");
    }
  }
  if (files.n) qsort(files.v, files.n, sizeof *files.v, cmp_str);
  MDB_txn *txn;
  if ((rc = mdb_txn_begin(kb->env, NULL, 0, &txn)) != 0) {
    paths_free(&files);
    return kb_fail(rc, "begin");
  }
  /* the full-text index changes in its own transaction, committed right after LMDB's; when it
   * disagrees with LMDB (see kb_fts_open), every file is parsed again and it is rebuilt */
  /* a different extraction (this program's, or its queries) re-parses every file */
  char parser[64];
  snprintf(parser, sizeof parser, "%d-%016llx", KB_EXTRACT_VERSION,
           (unsigned long long)code_queries_hash());
  MDB_val pk = {6, "parser"}, pv;
  int new_parser = mdb_get(txn, kb->meta, &pk, &pv) != 0 || pv.mv_size != strlen(parser) ||
                   memcmp(pv.mv_data, parser, pv.mv_size) != 0;
  if (new_parser) {
    MDB_val nv = {strlen(parser), parser};
    rc = mdb_put(txn, kb->meta, &pk, &nv, 0);
  }
  int force = kb->fts_stale || new_parser;
  if (rc || kb_fts_begin(kb->fts) != 0 || (force && kb_fts_clear(kb->fts) != 0)) {
    mdb_txn_abort(txn);
    paths_free(&files);
    return HS_EIO;
  }
  for (size_t i = 0; !rc && i < files.n; i++) {
    rc = index_file(kb, txn, files.v[i], max, force, &st);
    if (o && o->progress) o->progress(&st, files.v[i], files.n, o->ud);
  }
  if (!rc) rc = remove_gone(kb, txn, &files, &st);
  paths_free(&files);
  if (!rc) {
    MDB_stat ms;
    if (mdb_stat(txn, kb->syms, &ms) == 0) st.definitions = ms.ms_entries;
    if (mdb_stat(txn, kb->refs_to, &ms) == 0) st.references = ms.ms_entries;
  }
  uint64_t epoch = kb->epoch + 1;
  if (!rc) {
    uint8_t e[8];
    kb_put_u64(e, epoch);
    MDB_val k = {9, "fts_epoch"}, v = {8, e};
    rc = mdb_put(txn, kb->meta, &k, &v, 0);
  }
  if (rc) {
    mdb_txn_abort(txn);
    kb_fts_rollback(kb->fts);
    return rc == KB_FAILED ? HS_EIO
           : rc == ENOMEM      ? hs_set_error(&hs_kb_err, HS_ENOMEM, "kb: out of memory")
                               : kb_fail(rc, "indexing");
  }
  if ((rc = mdb_txn_commit(txn)) != 0) {
    kb_fts_rollback(kb->fts);
    return kb_fail(rc, "commit");
  }
  kb->epoch = epoch;
  if (kb_fts_commit(kb->fts, epoch) != 0) {
    char why[HS_ERRMSG_SIZE];
    snprintf(why, sizeof why, "%s", hs_kb_last_error());
    kb->fts_stale = 1;
    return hs_set_error(&hs_kb_err, HS_EIO,
                        "kb: the symbols are indexed but the full-text index could not be saved "
                        "(%.300s); the next indexing rebuilds it", why);
  }
  kb->fts_stale = 0;
  st.seconds = now_s() - t0;
  if (out) *out = st;
  return 0;
}
