/* kb_impl.h: the LMDB layout of a repository's knowledge base, shared by store.c (opening,
 * records), index.c (updating) and graph.c (queries). Internal to src/kb/.
 *
 * Named databases (integers in keys and duplicate values are big-endian, so they sort):
 *   meta       "version" -> KB_VERSION; "root" -> the repository's absolute path;
 *              "next_sym" -> u64; "next_file" -> u32
 *   files      path -> file_rec
 *   file_ids   u32 file id -> path
 *   syms       u64 symbol id -> sym_rec, then name, qname, signature, doc (each NUL-ended)
 *   file_syms  u32 file id -> u64 symbol ids (duplicates, fixed size)
 *   by_name    name -> u64 symbol ids (duplicates, fixed size); names over KB_MAX_KEY bytes are
 *   by_qname   qname -> ...             cut there (a lookup then checks the whole name)
 *   refs_from  u64 from id -> ref_out (duplicates): the references a definition (or, with
 *              KB_FILE_BIT | file id, a file at its top level) makes
 *   refs_to    name -> ref_in (duplicates, fixed size): who references that name
 * and meta "fts_epoch" -> u64: the epoch the full-text index (fts.c, fts.sqlite) must carry.
 */
#ifndef HS_KB_IMPL_H
#define HS_KB_IMPL_H

#include <lmdb.h>
#include <limits.h>
#include <stdint.h>

#include "core/last_error.h"
#include "hswarm/kb.h"

#define KB_VERSION "hswarm-kb 1"
/* What extraction gives (definitions, signatures, docs) changes with src/code/ and the queries:
 * the index records this and the hash of the queries, and re-parses everything when either
 * differs (hs_kb_index). Raise it when extract.c's output changes. */
#define KB_EXTRACT_VERSION 3
#define KB_MAX_KEY 480
#define KB_FILE_BIT (1ull << 63)

extern _Thread_local hs_errbuf hs_kb_err;

typedef struct kb_fts kb_fts;

struct hs_kb {
  kb_fts *fts;
  int fts_stale;          /* fts.sqlite disagrees with LMDB: the next indexing rebuilds it */
  uint64_t epoch;         /* LMDB's fts_epoch */
  MDB_env *env;
  MDB_dbi meta, files, file_ids, syms, file_syms, by_name, by_qname, refs_from, refs_to;
  char root[PATH_MAX];
  char dir[PATH_MAX];
  const struct hs_tokenizer *ops_tok; /* counts tokens for the runtime operations (or NULL) */
};

typedef struct file_rec {
  uint32_t file_id;
  uint8_t lang;
  uint8_t pad[3];
  uint64_t hash;
  uint64_t size;
  int64_t mtime_ns;
  uint32_t n_defs;
  uint32_t n_lines;
} file_rec;

typedef struct sym_rec {
  uint32_t file_id;
  uint8_t kind;
  uint8_t lang;
  uint16_t pad;
  uint32_t start_byte, end_byte, start_line, end_line;
  uint64_t hash;
  uint64_t parent;
} sym_rec;

typedef struct ref_in {
  uint8_t from[8];   /* big-endian id */
  uint8_t kind;
  uint8_t pad[3];
  uint8_t line[4];   /* big-endian */
} ref_in;

/* ref_out: kind (1 byte), line (4 bytes big-endian), then the name (at most KB_MAX_KEY bytes). */

void kb_put_u64(uint8_t *p, uint64_t v);
uint64_t kb_get_u64(const uint8_t *p);
void kb_put_u32(uint8_t *p, uint32_t v);
uint32_t kb_get_u32(const uint8_t *p);

/* An LMDB failure as an HS_E* code with a message naming what was being done. */
int kb_fail(int mdb_rc, const char *what);

/* A name as a key: cut to KB_MAX_KEY bytes. */
MDB_val kb_name_key(const char *name);

/* Decodes a syms value into s; the strings point into the value (valid during the transaction).
 * 0, or HS_ECORRUPT. */
int kb_decode_sym(uint64_t id, const MDB_val *v, hs_kb_sym *s);

/* Reads symbol id in txn into s, with its path; every string of s is an own copy
 * (kb_sym_release). 0, HS_ENOENT, HS_ECORRUPT, HS_ENOMEM. */
int kb_read_sym(hs_kb *kb, MDB_txn *txn, uint64_t id, hs_kb_sym *s);
void kb_sym_release(hs_kb_sym *s);

/* The path of a file id into buf (NUL-terminated). 0, HS_ENOENT. */
int kb_file_path(hs_kb *kb, MDB_txn *txn, uint32_t file_id, char *buf, size_t cap);

/* ---- the full-text index (fts.c) ---- */
/* Opens or creates dir/fts.sqlite; *stale = 1 when its epoch is not epoch. */
int kb_fts_open(const char *dir, uint64_t epoch, kb_fts **out, int *stale);
void kb_fts_close(kb_fts *f);
int kb_fts_begin(kb_fts *f);
int kb_fts_commit(kb_fts *f, uint64_t epoch);
void kb_fts_rollback(kb_fts *f);
int kb_fts_clear(kb_fts *f);
int kb_fts_delete(kb_fts *f, uint64_t id);
int kb_fts_insert(kb_fts *f, uint64_t id, const char *name, const char *qname,
                  const char *signature, const char *doc, const char *body, size_t body_len);
/* Up to limit ids and BM25 scores (lower is better) into ids[] and scores[]. */
int kb_fts_search(kb_fts *f, const char *query, size_t limit, uint64_t *ids, double *scores,
                  size_t *n);
/* The words of an identifier ("parseHTTPHeader_v2" -> "parse http header v 2"). */
size_t kb_words(const char *s, char *out, size_t cap);
/* The search terms of a text (a query, a task): each identifier and each of its words, lower
 * case, distinct, min_len to 63 bytes long, at most max. Returns how many. */
size_t kb_text_terms(const char *text, char terms[][64], size_t max, size_t min_len);

/* The 8-byte ids stored as duplicates under key in db (at most max), in *ids (hs_free) and *n.
 * 0, or an HS_E* code with a message. */
int kb_dup_ids(MDB_txn *txn, MDB_dbi db, MDB_val key, size_t max, uint64_t **ids, size_t *n);

#endif
