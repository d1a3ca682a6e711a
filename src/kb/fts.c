/* fts.c: tier 3's full-text part: an SQLite FTS5 table of the definitions (name, the words of
 * the name, signature, doc, body) ranked by BM25, in fts.sqlite next to the LMDB files. Its rows
 * are keyed by symbol id; an epoch shared with LMDB's meta tells when the two disagree (a crash
 * between the two commits, a deleted file), and the next indexing then rebuilds it. */
#include <ctype.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "hswarm/alloc.h"
#include "hswarm/error.h"
#include "kb/kb_impl.h"

#define MAX_BODY (16u << 10)
#define MAX_QUERY_WORDS 32

struct kb_fts {
  sqlite3 *db;
  sqlite3_stmt *ins, *del, *search;
};

static int fail_sql(sqlite3 *db, const char *what) {
  return hs_set_error(&hs_kb_err, HS_EIO, "kb: full-text index: %s: %s", what,
                      db ? sqlite3_errmsg(db) : "cannot open");
}

static int exec(sqlite3 *db, const char *sql) {
  char *msg = NULL;
  int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
  if (rc != SQLITE_OK) {
    hs_set_error(&hs_kb_err, HS_EIO, "kb: full-text index: %s", msg ? msg : "error");
    sqlite3_free(msg);
    return HS_EIO;
  }
  return 0;
}

int kb_fts_open(const char *dir, uint64_t epoch, kb_fts **out, int *stale) {
  *out = NULL;
  char path[PATH_MAX + 16];
  snprintf(path, sizeof path, "%s/fts.sqlite", dir);
  kb_fts *f = hs_calloc(1, sizeof *f);
  if (!f) return hs_set_error(&hs_kb_err, HS_ENOMEM, "kb: out of memory");
  if (sqlite3_open_v2(path, &f->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
      SQLITE_OK) {
    int rc = fail_sql(f->db, path);
    sqlite3_close(f->db);
    hs_free(f);
    return rc;
  }
  sqlite3_busy_timeout(f->db, 10000);
  int rc = exec(f->db,
                "PRAGMA journal_mode=WAL;"
                "CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v INTEGER);"
                "CREATE VIRTUAL TABLE IF NOT EXISTS sym USING fts5(name, words, signature, doc, "
                "body, tokenize=\"unicode61 tokenchars '_'\");");
  if (!rc && (sqlite3_prepare_v2(f->db, "INSERT INTO sym(rowid, name, words, signature, doc, "
                                        "body) VALUES(?,?,?,?,?,?)",
                                 -1, &f->ins, NULL) != SQLITE_OK ||
              sqlite3_prepare_v2(f->db, "DELETE FROM sym WHERE rowid = ?", -1, &f->del, NULL) !=
                  SQLITE_OK ||
              sqlite3_prepare_v2(f->db,
                                 "SELECT rowid, bm25(sym, 10.0, 5.0, 3.0, 2.0, 1.0) AS score "
                                 "FROM sym WHERE sym MATCH ? ORDER BY score LIMIT ?",
                                 -1, &f->search, NULL) != SQLITE_OK))
    rc = fail_sql(f->db, "preparing statements");
  sqlite3_stmt *q = NULL;
  int64_t have = -1;
  if (!rc && sqlite3_prepare_v2(f->db, "SELECT v FROM meta WHERE k = 'epoch'", -1, &q, NULL) ==
                 SQLITE_OK &&
      sqlite3_step(q) == SQLITE_ROW)
    have = sqlite3_column_int64(q, 0);
  sqlite3_finalize(q);
  if (rc) {
    kb_fts_close(f);
    return rc;
  }
  *stale = have != (int64_t)epoch;
  *out = f;
  return 0;
}

void kb_fts_close(kb_fts *f) {
  if (!f) return;
  sqlite3_finalize(f->ins);
  sqlite3_finalize(f->del);
  sqlite3_finalize(f->search);
  sqlite3_close(f->db);
  hs_free(f);
}

int kb_fts_begin(kb_fts *f) { return exec(f->db, "BEGIN IMMEDIATE"); }

int kb_fts_commit(kb_fts *f, uint64_t epoch) {
  char sql[128];
  snprintf(sql, sizeof sql, "INSERT OR REPLACE INTO meta VALUES('epoch', %lld); COMMIT",
           (long long)epoch);
  return exec(f->db, sql);
}

void kb_fts_rollback(kb_fts *f) { sqlite3_exec(f->db, "ROLLBACK", NULL, NULL, NULL); }

int kb_fts_clear(kb_fts *f) { return exec(f->db, "DELETE FROM sym"); }

int kb_fts_delete(kb_fts *f, uint64_t id) {
  sqlite3_reset(f->del);
  sqlite3_bind_int64(f->del, 1, (sqlite3_int64)id);
  return sqlite3_step(f->del) == SQLITE_DONE ? 0 : fail_sql(f->db, "delete");
}

/* The words of identifiers: split at non-alphanumerics, lower-to-upper case changes, the end of
 * an upper-case run before a capitalised word (HTTPServer: http server) and digits; lower case,
 * separated by spaces. */
size_t kb_words(const char *s, char *out, size_t cap) {
  size_t n = 0;
  int prev = 0; /* 0 none, 1 lower, 2 upper, 3 digit */
  for (size_t i = 0; s[i] && n + 2 < cap; i++) {
    unsigned char c = (unsigned char)s[i];
    int cls = islower(c) ? 1 : isupper(c) ? 2 : isdigit(c) ? 3 : 0;
    if (!cls) {
      prev = 0;
      continue;
    }
    int boundary = prev == 0 || (cls == 2 && prev == 1) || (cls == 3) != (prev == 3) ||
                   (cls == 2 && prev == 2 && islower((unsigned char)s[i + 1]));
    if (boundary && n) out[n++] = ' ';
    out[n++] = (char)tolower(c);
    prev = cls;
  }
  out[n] = 0;
  return n;
}

int kb_fts_insert(kb_fts *f, uint64_t id, const char *name, const char *qname,
                  const char *signature, const char *doc, const char *body, size_t body_len) {
  char words[1024];
  size_t n = kb_words(qname, words, sizeof words);
  (void)n;
  sqlite3_reset(f->ins);
  sqlite3_bind_int64(f->ins, 1, (sqlite3_int64)id);
  sqlite3_bind_text(f->ins, 2, name, -1, SQLITE_STATIC);
  sqlite3_bind_text(f->ins, 3, words, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(f->ins, 4, signature, -1, SQLITE_STATIC);
  sqlite3_bind_text(f->ins, 5, doc, -1, SQLITE_STATIC);
  sqlite3_bind_text(f->ins, 6, body, (int)(body_len > MAX_BODY ? MAX_BODY : body_len),
                    SQLITE_STATIC);
  return sqlite3_step(f->ins) == SQLITE_DONE ? 0 : fail_sql(f->db, "insert");
}

size_t kb_text_terms(const char *text, char terms[][64], size_t max, size_t min_len) {
  size_t n = 0;
  for (size_t i = 0; text[i] && n < max;) {
    while (text[i] && !(isalnum((unsigned char)text[i]) || text[i] == '_')) i++;
    size_t a = i;
    while (text[i] && (isalnum((unsigned char)text[i]) || text[i] == '_')) i++;
    if (i == a) break;
    char ident[128], split[400], all[600];
    size_t len = i - a < sizeof ident - 1 ? i - a : sizeof ident - 1;
    memcpy(ident, text + a, len);
    ident[len] = 0;
    kb_words(ident, split, sizeof split);
    snprintf(all, sizeof all, "%s %s", ident, split);
    char *save = NULL;
    for (char *w = strtok_r(all, " ", &save); w && n < max; w = strtok_r(NULL, " ", &save)) {
      for (char *c = w; *c; c++) *c = (char)tolower((unsigned char)*c);
      if (strlen(w) < min_len || strlen(w) >= 64) continue;
      int dup = 0;
      for (size_t k = 0; k < n && !dup; k++) dup = !strcmp(terms[k], w);
      if (!dup) snprintf(terms[n++], 64, "%s", w);
    }
  }
  return n;
}

/* The user's words as an FTS5 query: each identifier and each of its words as a quoted prefix
 * term, joined with OR (BM25 ranks the rows matching more and rarer terms first). */
static int make_query(const char *q, char *out, size_t cap) {
  char terms[MAX_QUERY_WORDS][64];
  size_t nt = kb_text_terms(q, terms, MAX_QUERY_WORDS, 1), n = 0;
  out[0] = 0;
  for (size_t t = 0; t < nt; t++) {
    int k = snprintf(out + n, cap - n, "%s\"%s\"*", t ? " OR " : "", terms[t]);
    if (k < 0 || (size_t)k >= cap - n) return -1;
    n += (size_t)k;
  }
  return nt ? 0 : -1;
}

int kb_fts_search(kb_fts *f, const char *query, size_t limit, uint64_t *ids, double *scores,
                  size_t *n) {
  char fq[8192];
  *n = 0;
  if (make_query(query, fq, sizeof fq) != 0)
    return hs_set_error(&hs_kb_err, HS_EINVAL, "kb: the query \"%.80s\" has no words to search",
                        query);
  sqlite3_reset(f->search);
  sqlite3_bind_text(f->search, 1, fq, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(f->search, 2, (sqlite3_int64)limit);
  int rc;
  while ((rc = sqlite3_step(f->search)) == SQLITE_ROW && *n < limit) {
    ids[*n] = (uint64_t)sqlite3_column_int64(f->search, 0);
    scores[*n] = sqlite3_column_double(f->search, 1);
    (*n)++;
  }
  return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : fail_sql(f->db, "search");
}
