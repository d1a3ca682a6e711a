/* test_kb.c: a repository's knowledge base (hswarm/kb.h) on a small repository made here:
 * lookups by plain and qualified name, a file's definitions, callers, callees (a name defined in
 * the caller's file preferred, only callable kinds), transitive dependencies both ways;
 * incremental re-indexing (unchanged files not parsed; a changed file's old definitions gone, new
 * ones found; a deleted file removed); binary and large files skipped, symbolic-link loops not
 * followed; nothing written in the repository; another format's or repository's index refused;
 * full-text search (BM25) kept in step, and rebuilt when its file is lost. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <lmdb.h>

#include "hswarm/error.h"
#include "hswarm/kb.h"

static char repo[256], idx[256];

static void put(const char *name, const char *text) {
  char p[512];
  snprintf(p, sizeof p, "%s/%s", repo, name);
  char *slash = strrchr(p, '/');
  *slash = 0;
  mkdir(p, 0755);
  *slash = '/';
  FILE *f = fopen(p, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static int setup(void **state) {
  (void)state;
  snprintf(repo, sizeof repo, "/tmp/hswarm-kb-repo-XXXXXX");
  snprintf(idx, sizeof idx, "/tmp/hswarm-kb-index-XXXXXX");
  if (!mkdtemp(repo) || !mkdtemp(idx)) return -1;
  put("geo/shapes.py",
      "from geo import util\n"
      "\n"
      "class Square:\n"
      "    def area(self):\n"
      "        return util.square(self.side)\n"
      "\n"
      "class Circle:\n"
      "    def area(self):\n"
      "        return 3 * util.square(self.r)\n"
      "\n"
      "def total(shapes):\n"
      "    return sum(s.area() for s in shapes)\n");
  put("geo/util.py",
      "def square(x):\n"
      "    return x * x\n"
      "\n"
      "square_all = lambda xs: [square(x) for x in xs]\n");
  put("c/main.c",
      "#include \"lib.h\"\n"
      "static int helper(int x) { return x + 1; }\n"
      "int main(void) { return run(helper(1)); }\n");
  put("c/lib.c",
      "struct run { int n; };\n"
      "static int helper(int x) { return x - 1; }\n"
      "int run(int x) { return helper(x); }\n");
  put("notes.txt", "not source\n");
  return 0;
}

static int teardown(void **state) {
  (void)state;
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", repo, idx);
  return system(cmd) == 0 ? 0 : -1;
}

static hs_kb *open_kb(int create) {
  hs_kb *kb = NULL;
  int rc = hs_kb_open(repo, idx, create, &kb);
  if (rc) fprintf(stderr, "%s\n", hs_kb_last_error());
  assert_int_equal(rc, 0);
  return kb;
}

static hs_kb_index_stats reindex(hs_kb *kb) {
  hs_kb_index_stats st;
  assert_int_equal(hs_kb_index(kb, NULL, &st), 0);
  return st;
}

static int has_edge(const hs_kb_edges *e, const char *from, const char *to_path, uint32_t depth) {
  for (size_t i = 0; i < e->n; i++) {
    const hs_kb_edge *x = &e->items[i];
    if (x->depth != depth) continue;
    if (strcmp(x->from.id ? x->from.qname : x->from.path, from) != 0) continue;
    if (!to_path || (x->resolved && !strcmp(x->to.path, to_path))) return 1;
  }
  return 0;
}

static void test_index_and_query(void **state) {
  (void)state;
  hs_kb *kb;
  assert_int_equal(hs_kb_open(repo, idx, 0, &kb), HS_ENOENT); /* not created yet */
  assert_non_null(strstr(hs_kb_last_error(), "hswarm index"));
  kb = open_kb(1);
  hs_kb_index_stats st = reindex(kb);
  assert_int_equal(st.files, 4); /* notes.txt is not source */
  assert_int_equal(st.parsed, 4);
  assert_true(st.definitions >= 9);

  hs_kb_syms *s;
  assert_int_equal(hs_kb_lookup(kb, "area", &s), 0);
  assert_int_equal(s->n, 2);
  assert_string_equal(s->items[0].qname, "Square.area");
  assert_string_equal(s->items[0].path, "geo/shapes.py");
  assert_int_equal(s->items[0].kind, HS_DEF_METHOD);
  assert_int_equal(s->items[0].start_line, 4);
  assert_string_equal(s->items[1].qname, "Circle.area");
  hs_kb_syms_free(s);
  assert_int_equal(hs_kb_lookup(kb, "Circle.area", &s), 0);
  assert_int_equal(s->n, 1);
  assert_int_equal(s->items[0].start_line, 8);
  hs_kb_syms_free(s);
  assert_int_equal(hs_kb_lookup(kb, "nothing_like_this", &s), 0);
  assert_int_equal(s->n, 0);
  hs_kb_syms_free(s);
  assert_int_equal(hs_kb_file_syms(kb, "c/lib.c", &s), 0);
  assert_int_equal(s->n, 3);
  assert_string_equal(s->items[0].name, "run");
  assert_int_equal(s->items[0].kind, HS_DEF_STRUCT);
  hs_kb_syms_free(s);
  assert_int_equal(hs_kb_file_syms(kb, "c/none.c", &s), HS_ENOENT);

  hs_kb_edges *e;
  assert_int_equal(hs_kb_callers(kb, "square", &e), 0);
  assert_true(has_edge(e, "Square.area", NULL, 1));
  assert_true(has_edge(e, "Circle.area", NULL, 1));
  assert_true(has_edge(e, "square_all", NULL, 1)); /* a module global bound to a lambda */
  hs_kb_edges_free(e);
  /* main calls run (lib.c) and its own helper, not lib.c's; run is a function, not the struct */
  assert_int_equal(hs_kb_callees(kb, "main", &e), 0);
  assert_int_equal(e->n, 2);
  assert_true(has_edge(e, "main", "c/lib.c", 1));
  assert_true(has_edge(e, "main", "c/main.c", 1));
  for (size_t i = 0; i < e->n; i++)
    if (!strcmp(e->items[i].name, "run")) assert_int_equal(e->items[i].to.kind, HS_DEF_FUNCTION);
  hs_kb_edges_free(e);
  /* transitively: main -> run -> helper (lib.c) */
  assert_int_equal(hs_kb_deps(kb, "main", 1, 3, &e), 0);
  assert_true(has_edge(e, "run", "c/lib.c", 2));
  hs_kb_edges_free(e);
  /* callers, transitively: square <- Square.area <- total */
  assert_int_equal(hs_kb_deps(kb, "square", 0, 2, &e), 0);
  assert_true(has_edge(e, "total", NULL, 2));
  hs_kb_edges_free(e);
  assert_int_equal(hs_kb_deps(kb, "square", 0, 17, &e), HS_EINVAL);
  hs_kb_close(kb);
}

static void test_incremental(void **state) {
  (void)state;
  hs_kb *kb = open_kb(1);
  hs_kb_index_stats st = reindex(kb);
  assert_int_equal(st.parsed, 0);
  assert_int_equal(st.unchanged, 4);
  /* a changed file: the old definition goes, the new one comes */
  put("geo/util.py", "def cube(x):\n    return x * x * x\n");
  /* a deleted file; a binary one; a large one; a symbolic-link loop */
  char p[600];
  snprintf(p, sizeof p, "%s/c/main.c", repo);
  assert_int_equal(unlink(p), 0);
  snprintf(p, sizeof p, "%s/geo/blob.py", repo);
  FILE *f = fopen(p, "wb");
  fwrite("x = 1\0\1\2", 1, 9, f);
  fclose(f);
  snprintf(p, sizeof p, "%s/geo/big.py", repo);
  f = fopen(p, "w");
  for (int i = 0; i < 200000; i++) fputs("x = 1  # padding padding padding\n", f);
  fclose(f);
  snprintf(p, sizeof p, "%s/geo/loop", repo);
  assert_int_equal(symlink(".", p), 0);
  hs_kb_index_opts o = {.max_file_bytes = 1 << 20};
  assert_int_equal(hs_kb_index(kb, &o, &st), 0);
  assert_int_equal(st.parsed, 1);
  assert_int_equal(st.removed, 1);
  assert_int_equal(st.skipped_binary, 1);
  assert_int_equal(st.skipped_large, 1);
  hs_kb_syms *s;
  assert_int_equal(hs_kb_lookup(kb, "square", &s), 0);
  assert_int_equal(s->n, 0);
  hs_kb_syms_free(s);
  assert_int_equal(hs_kb_lookup(kb, "cube", &s), 0);
  assert_int_equal(s->n, 1);
  hs_kb_syms_free(s);
  assert_int_equal(hs_kb_lookup(kb, "main", &s), 0);
  assert_int_equal(s->n, 0);
  hs_kb_syms_free(s);
  hs_kb_edges *e; /* the references of the removed and changed files are gone too */
  assert_int_equal(hs_kb_callers(kb, "helper", &e), 0);
  assert_int_equal(e->n, 1);
  assert_string_equal(e->items[0].from.qname, "run");
  hs_kb_edges_free(e);
  /* full text follows: the new definition is found, the removed one is not */
  hs_kb_hits *h;
  assert_int_equal(hs_kb_search(kb, "cube", 10, &h), 0);
  assert_int_equal(h->n, 1);
  assert_string_equal(h->items[0].sym.qname, "cube");
  assert_string_equal(h->method, "full text (BM25)");
  hs_kb_hits_free(h);
  assert_int_equal(hs_kb_search(kb, "square_all", 10, &h), 0);
  for (size_t i = 0; i < h->n; i++) assert_string_not_equal(h->items[i].sym.qname, "square_all");
  hs_kb_hits_free(h);
  assert_int_equal(hs_kb_search(kb, "!!!", 10, &h), HS_EINVAL);
  assert_int_equal(hs_kb_search(kb, "cube", 0, &h), HS_EINVAL);
  hs_kb_close(kb);
  /* a lost full-text index is noticed and rebuilt by the next indexing */
  snprintf(p, sizeof p, "rm -f %s/fts.sqlite*", idx);
  assert_int_equal(system(p), 0);
  kb = open_kb(0);
  assert_int_equal(hs_kb_search(kb, "cube", 10, &h), HS_EIO);
  assert_non_null(strstr(hs_kb_last_error(), "run `hswarm index`"));
  st = reindex(kb);
  assert_int_equal(st.parsed, st.files - st.skipped_binary - st.skipped_large);
  assert_int_equal(hs_kb_search(kb, "Square area", 10, &h), 0);
  int found = 0; /* the class and its method, at the top */
  for (size_t i = 0; i < h->n && i < 2; i++) found += !strcmp(h->items[i].sym.qname, "Square.area");
  assert_int_equal(found, 1);
  hs_kb_hits_free(h);
  hs_kb_close(kb);
  /* nothing was written inside the repository */
  char cmd[700];
  snprintf(cmd, sizeof cmd, "test -z \"$(find '%s' -name '*.mdb')\"", repo);
  assert_int_equal(system(cmd), 0);
}

static void test_refusals(void **state) {
  (void)state;
  /* another repository's index */
  char other[256];
  snprintf(other, sizeof other, "/tmp/hswarm-kb-other-XXXXXX");
  assert_non_null(mkdtemp(other));
  hs_kb *kb;
  assert_int_equal(hs_kb_open(other, idx, 1, &kb), HS_EINVAL);
  assert_non_null(strstr(hs_kb_last_error(), "belongs to the repository"));
  rmdir(other);
  /* another version of the format */
  MDB_env *env;
  MDB_txn *txn;
  MDB_dbi meta;
  assert_int_equal(mdb_env_create(&env), 0);
  mdb_env_set_maxdbs(env, 16);
  assert_int_equal(mdb_env_open(env, idx, 0, 0644), 0);
  assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
  assert_int_equal(mdb_dbi_open(txn, "meta", 0, &meta), 0);
  MDB_val k = {7, "version"}, v = {11, "hswarm-kb 0"};
  assert_int_equal(mdb_put(txn, meta, &k, &v, 0), 0);
  assert_int_equal(mdb_txn_commit(txn), 0);
  mdb_env_close(env);
  assert_int_equal(hs_kb_open(repo, idx, 1, &kb), HS_EVERSION);
  assert_non_null(strstr(hs_kb_last_error(), "hswarm index --rebuild"));
  /* rebuilding starts afresh */
  kb = open_kb(2);
  hs_kb_index_stats st = reindex(kb);
  assert_true(st.parsed >= 3);
  hs_kb_close(kb);
  /* the default directory is under the cache, keyed by the repository */
  char d1[4096], d2[4096];
  setenv("XDG_CACHE_HOME", "/tmp/some-cache", 1);
  assert_int_equal(hs_kb_default_dir(repo, d1, sizeof d1), 0);
  assert_true(strncmp(d1, "/tmp/some-cache/hswarm/index/hswarm-kb-repo-", 44) == 0);
  assert_int_equal(hs_kb_default_dir("/tmp", d2, sizeof d2), 0);
  assert_string_not_equal(d1, d2);
  assert_int_equal(hs_kb_default_dir("/no/such/dir", d2, sizeof d2), HS_ENOENT);
  char root[4096], sub[600];
  snprintf(sub, sizeof sub, "%s/geo", repo);
  assert_int_equal(hs_kb_find_root(sub, root, sizeof root), 0);
  assert_string_equal(root, sub); /* no .git: the directory itself */
  snprintf(sub, sizeof sub, "%s/.git", repo);
  mkdir(sub, 0755);
  snprintf(sub, sizeof sub, "%s/geo", repo);
  assert_int_equal(hs_kb_find_root(sub, root, sizeof root), 0);
  assert_string_equal(root, repo);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_index_and_query),
      cmocka_unit_test(test_incremental),
      cmocka_unit_test(test_refusals),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
