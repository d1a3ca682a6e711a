/* hswarm/kb.h: the knowledge base of a repository: its definitions (tier 1, symbols) and the
 * references between them (tier 2, the dependency graph), in LMDB, kept outside the repository
 * and updated incrementally.
 *
 *   hs_kb *kb;
 *   hs_kb_open("/src/project", NULL, 1, &kb);            // the index under the user's cache
 *   hs_kb_index_stats st;
 *   hs_kb_index(kb, NULL, NULL, &st);                     // parses only files that changed
 *   hs_kb_syms *s;
 *   hs_kb_lookup(kb, "Shape.area", &s);                   // s->items[i].path, .start_line...
 *   hs_kb_syms_free(s);
 *   hs_kb_close(kb);
 *
 * The index of a repository lives in its own directory: by default
 * $XDG_CACHE_HOME/hswarm/index/NAME-HASH (or ~/.cache/...), NAME the repository directory's name
 * and HASH a hash of its absolute path; indexing never writes inside the repository. Files: the
 * languages of hswarm/code.h, found with `git ls-files` (tracked and untracked, not ignored) when
 * the root is a git work tree, else by walking the directory (hidden directories, node_modules,
 * __pycache__ and build* directories left out); symbolic links are not followed. A file over
 * max_file_bytes, or binary (a NUL byte in its first 8 KiB), is skipped and counted; a file with
 * syntax errors is indexed for what parses and counted. Re-indexing reads only files whose size
 * or modification time changed, re-parses only those whose content hash changed, and removes
 * files that are gone.
 *
 * References are by name, as written (a call of `area` is an edge to every definition named
 * area): callers of NAME are the definitions containing a call of it (or files, for calls at
 * file level); callees of NAME are the names its definitions call, each resolved to the
 * definitions of that name where the repository has some.
 *
 * Opening an index written by another version of the format gives HS_EVERSION and a message
 * saying to rebuild it (hs_kb_open with create = 2 discards and rebuilds).
 *
 * Ownership: hs_kb_syms and hs_kb_edges results own their strings (free them). Threads: one
 * hs_kb per thread; several processes may read while one indexes (LMDB). */
#ifndef HSWARM_KB_H
#define HSWARM_KB_H

#include <stddef.h>
#include <stdint.h>

#include "hswarm/code.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hs_kb hs_kb;

/* The default index directory of the repository at root (absolute or relative) into buf.
 * 0, HS_EINVAL (buf too small, no HOME), HS_ENOENT (root does not exist). */
int hs_kb_default_dir(const char *root, char *buf, size_t cap);

/* The root of the repository containing dir: the nearest directory upwards holding .git, else
 * dir itself; absolute, into buf. 0, HS_ENOENT, HS_EINVAL. */
int hs_kb_find_root(const char *dir, char *buf, size_t cap);

/* Opens the index of the repository at root, in index_dir (NULL: hs_kb_default_dir).
 * create: 0 the index must exist (HS_ENOENT otherwise); 1 create it if missing; 2 discard any
 * existing one and start empty. Errors: HS_ENOENT, HS_EVERSION (another format: the message
 * says how to rebuild), HS_EINVAL (an index of another repository), HS_EIO, HS_ENOMEM. */
int hs_kb_open(const char *root, const char *index_dir, int create, hs_kb **out);
void hs_kb_close(hs_kb *kb);
const char *hs_kb_root(const hs_kb *kb);
const char *hs_kb_dir(const hs_kb *kb);

typedef struct hs_kb_index_stats {
  uint64_t files;          /* source files of known languages seen */
  uint64_t parsed;         /* of which read and parsed (new or changed content) */
  uint64_t unchanged;      /* of which left as they were */
  uint64_t removed;        /* indexed files that are gone */
  uint64_t skipped_large;  /* over max_file_bytes */
  uint64_t skipped_binary;
  uint64_t unreadable;     /* could not be read (permissions, vanished) */
  uint64_t with_errors;    /* parsed with syntax errors (indexed for what parsed) */
  uint64_t definitions;    /* in the index afterwards */
  uint64_t references;
  uint64_t lines_parsed;   /* lines of the files parsed this time */
  double seconds;
} hs_kb_index_stats;

typedef struct hs_kb_index_opts {
  uint64_t max_file_bytes; /* 0: 4 MiB */
  /* called after each file (path relative to the root), with the stats so far; may be NULL */
  void (*progress)(const hs_kb_index_stats *st, const char *path, uint64_t total, void *ud);
  void *ud;
} hs_kb_index_opts;

/* Brings the index up to date with the files under the root. 0 and *st (may be NULL), or
 * HS_EIO / HS_ENOMEM (the index keeps its previous state: one transaction). */
int hs_kb_index(hs_kb *kb, const hs_kb_index_opts *o, hs_kb_index_stats *st);

typedef struct hs_kb_sym {
  uint64_t id;
  hs_def_kind kind;
  hs_lang lang;
  const char *path;       /* relative to the root */
  const char *name, *qname, *signature, *doc;
  uint32_t start_byte, end_byte, start_line, end_line;
  uint64_t hash;
  uint64_t parent;        /* id of the enclosing definition, or 0 */
} hs_kb_sym;

typedef struct hs_kb_syms {
  hs_kb_sym *items;
  size_t n;
} hs_kb_syms;

/* The definitions named name: by qualified name when it has one ("Shape.area"), else by plain
 * name; in path order. 0 (possibly with n = 0), or HS_EIO, HS_ENOMEM. */
int hs_kb_lookup(hs_kb *kb, const char *name, hs_kb_syms **out);
/* Every definition of one file, in order. */
int hs_kb_file_syms(hs_kb *kb, const char *path, hs_kb_syms **out);
/* Every definition in the index (benchmarks, exports), in path order. */
int hs_kb_all_syms(hs_kb *kb, hs_kb_syms **out);
void hs_kb_syms_free(hs_kb_syms *s);

typedef struct hs_kb_edge {
  uint32_t depth;         /* 1: direct */
  hs_ref_kind kind;
  const char *name;       /* the name referenced */
  uint32_t line;          /* where (in from's file) */
  hs_kb_sym from;         /* the definition containing the reference (id 0, kind -1 and only
                             path set when it is at file level) */
  int resolved;           /* deps/callees: 1 when `to` is a definition in the repository */
  hs_kb_sym to;
} hs_kb_edge;

typedef struct hs_kb_edges {
  hs_kb_edge *items;
  size_t n;
} hs_kb_edges;

/* Definitions (or files) that call name. */
int hs_kb_callers(hs_kb *kb, const char *name, hs_kb_edges **out);
/* What the definitions named name call, resolved where the repository defines it. */
int hs_kb_callees(hs_kb *kb, const char *name, hs_kb_edges **out);
/* Transitive: callees (forward = 1) or callers (forward = 0) of name, breadth first, to depth
 * levels (1 to 16), each definition once (at its smallest depth). */
int hs_kb_deps(hs_kb *kb, const char *name, int forward, uint32_t depth, hs_kb_edges **out);
void hs_kb_edges_free(hs_kb_edges *e);

/* ---- tier 3: search ---- */
typedef struct hs_kb_hit {
  hs_kb_sym sym;
  double score;           /* higher is better */
} hs_kb_hit;

typedef struct hs_kb_hits {
  hs_kb_hit *items;       /* best first */
  size_t n;
  const char *method;     /* how they were ranked: "full text (BM25)" */
} hs_kb_hits;

/* Definitions matching query (words; identifiers are also split into their words: parseFile
 * finds parse_file), at most limit (1 to 1000), best first. Full text over names, the words of
 * names, signatures, doc comments and bodies, ranked by BM25 with those columns weighted
 * 10, 5, 3, 2, 1. 0, HS_EINVAL (no words in query; limit), HS_EIO (the full-text index is out of
 * date: index again). */
int hs_kb_search(hs_kb *kb, const char *query, size_t limit, hs_kb_hits **out);
void hs_kb_hits_free(hs_kb_hits *h);

/* ---- tier 3: vectors ---- */
struct hs_model;
struct hs_tokenizer;

typedef struct hs_kb_embed_stats {
  uint64_t embedded;      /* definitions embedded this time */
  uint64_t kept;          /* already in the vector index */
  uint64_t removed;       /* vectors of definitions that are gone */
  uint64_t failed;        /* could not be embedded (empty text) */
  uint64_t vectors;       /* in the index afterwards */
  double seconds;
} hs_kb_embed_stats;

/* Brings the vector index up to date with the definitions (run after hs_kb_index): each new one
 * embedded with m (the engine's mean-pooled final hidden states of "KIND QNAME\nSIGNATURE\nDOC",
 * its first 256 tokens), those gone removed. tag names the model (vectors made by another tag
 * are discarded and made again). Stored in the index directory (vectors.hnsw, an HNSW graph:
 * src/kb/hnsw.h). 0, HS_EIO, HS_ENOMEM. */
int hs_kb_embed(hs_kb *kb, struct hs_model *m, const struct hs_tokenizer *tok, const char *tag,
                hs_kb_embed_stats *st);

/* hs_kb_search, merged with the nearest definitions to the query's embedding (50 of each,
 * reciprocal rank fusion with k = 60). Without a model (m NULL) it is hs_kb_search. HS_ENOENT
 * when the index holds no vectors of tag (run hs_kb_embed). */
int hs_kb_search_hybrid(hs_kb *kb, const char *query, size_t limit, struct hs_model *m,
                        const struct hs_tokenizer *tok, const char *tag, hs_kb_hits **out);

/* ---- context for agents: function slices ---- */
struct hs_tokenizer;

/* Tokens of text by tok's encoding, or without a tokenizer (tok NULL) the approximation
 * ceil(bytes / 4), about what BPE vocabularies give on source code. */
uint64_t hs_kb_count_tokens(const struct hs_tokenizer *tok, const char *text, size_t len);

typedef struct hs_kb_slice {
  char *text;             /* the slice: the definition's full text, then the signatures of what
                             it calls (names defined in at most 3 places; up to 32) and of what
                             calls it (up to 16), each with its place (comments) */
  size_t len;
  hs_kb_sym target;
  size_t n_callees, n_callers;
  uint64_t slice_tokens;  /* tokens of text */
  uint64_t whole_tokens;  /* tokens of the whole files the slice draws on */
  uint64_t own_file_tokens; /* tokens of the definition's own file alone */
  size_t n_files;         /* those files */
  int approximate;        /* 1: token counts are the approximation (no tokenizer) */
} hs_kb_slice;

/* The function slice of the one definition named name (qualified, or a plain name that is
 * unique; otherwise HS_EINVAL naming the candidates; none: HS_ENOENT). The definition is read
 * from the repository's file now: HS_ESTALE when it changed since indexing (index again). */
int hs_kb_slice_of(hs_kb *kb, const char *name, const struct hs_tokenizer *tok,
                   hs_kb_slice **out);
void hs_kb_slice_free(hs_kb_slice *s);

/* ---- context for agents: the repo map ---- */
typedef struct hs_kb_map {
  char *text;             /* "path:\n  LINE: signature\n..." files in order of their best
                             definition, definitions in rank order */
  size_t len;
  uint64_t tokens;        /* of text, at most the budget */
  size_t files, definitions;   /* in the map */
  size_t nodes, edges;    /* of the reference graph ranked */
  size_t personalized;    /* definitions the task named (0: the ranking is not personalised) */
  int approximate;        /* 1: tokens counted by the approximation (no tokenizer) */
} hs_kb_map;

/* The repo map for task (may be NULL): the definitions' signatures ranked by PageRank over the
 * reference graph, personalised towards the definitions and files the task's words name, cut
 * to budget tokens (at least 16) counted with tok (NULL: hs_kb_count_tokens's approximation).
 * See src/kb/repomap.c for the graph and the weights. */
int hs_kb_repo_map(hs_kb *kb, const char *task, uint64_t budget, const struct hs_tokenizer *tok,
                   hs_kb_map **out);
void hs_kb_map_free(hs_kb_map *m);

/* ---- for swarm scripts ----
 * Registers the runtime operations "code.sym", "code.callers", "code.callees", "code.search",
 * "code.slice", "code.map" and "code.patch" over kb (lua/code.lua is their Lua face; requests and results
 * are JSON, documented there). Results are logged, so replays need neither kb nor repository.
 * kb must outlive rt. 0, or the runtime's error code. */
struct hs_runtime;
int hs_kb_attach(struct hs_runtime *rt, hs_kb *kb);
/* Makes code.slice and code.map count tokens with tok (borrowed: it must outlive kb's use by the
 * runtime) instead of the approximation, so that their counts are the model's. */
void hs_kb_set_ops_tokenizer(hs_kb *kb, const struct hs_tokenizer *tok);

/* The calling thread's last error message of this module. Never NULL. */
const char *hs_kb_last_error(void);

#ifdef __cplusplus
}
#endif
#endif
