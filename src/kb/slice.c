/* slice.c: function slices (hs_kb_slice_of, hswarm/kb.h): what an agent needs to change one
 * definition, and no more: its full text, read from the repository now (checked against the
 * indexed hash), then the signatures of what it calls and of what calls it; with the tokens of
 * the slice against the tokens of the whole files it draws on. */
#include <stdio.h>
#include <string.h>

#include "core/strbuf.h"
#include "hswarm/alloc.h"
#include "hswarm/error.h"
#include "hswarm/tokenizer.h"
#include "kb/kb_impl.h"

#define MAX_FILE (64u << 20)
#define MAX_CALLERS 16   /* callers listed */
#define MAX_CALLEES 32   /* callees listed */
#define MAX_AMBIGUITY 3  /* a called name defined in more places than this is left out: by name
                            alone (obj.get()) it says little about what is really called */

uint64_t hs_kb_count_tokens(const struct hs_tokenizer *tok, const char *text, size_t len) {
  if (!tok) return (len + 3) / 4;
  size_t n = 0;
  int rc = hs_tokenizer_encode(tok, text, len, 0, NULL, 0, &n);
  return rc == 0 || rc == HS_ENOSPC ? n : (len + 3) / 4;
}

static char *read_file(const hs_kb *kb, const char *path, size_t *len) {
  char full[PATH_MAX * 2];
  snprintf(full, sizeof full, "%s/%s", kb->root, path);
  FILE *f = fopen(full, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *t = size >= 0 && size <= (long)MAX_FILE ? hs_malloc((size_t)size + 1) : NULL;
  size_t n = t ? fread(t, 1, (size_t)size, f) : 0;
  fclose(f);
  if (t) t[n] = 0;
  *len = n;
  return t;
}

static void addf(hs_strbuf *b, const char *fmt, const char *a, const char *c, unsigned line) {
  char tmp[1400];
  int n = snprintf(tmp, sizeof tmp, fmt, a, c, line);
  if (n > 0) hs_strbuf_add(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

void hs_kb_slice_free(hs_kb_slice *s) {
  if (!s) return;
  hs_free(s->text);
  kb_sym_release(&s->target);
  hs_free(s);
}

/* Adds path to the distinct paths (at most 256). */
static void note_path(const char **paths, size_t *n, const char *p) {
  for (size_t i = 0; i < *n; i++)
    if (!strcmp(paths[i], p)) return;
  if (*n < 256) paths[(*n)++] = p;
}

int hs_kb_slice_of(hs_kb *kb, const char *name, const struct hs_tokenizer *tok,
                   hs_kb_slice **out) {
  if (!kb || !name || !out) return hs_set_error(&hs_kb_err, HS_EINVAL, "kb: NULL argument");
  *out = NULL;
  hs_kb_syms *defs;
  int rc = hs_kb_lookup(kb, name, &defs);
  if (rc) return rc;
  if (defs->n != 1) {
    char list[700] = "";
    size_t k = 0;
    for (size_t i = 0; i < defs->n && k < sizeof list - 100; i++)
      k += (size_t)snprintf(list + k, sizeof list - k, "%s%s (%s:%u)", i ? ", " : "",
                            defs->items[i].qname, defs->items[i].path, defs->items[i].start_line);
    rc = defs->n ? hs_set_error(&hs_kb_err, HS_EINVAL,
                                "kb: %s is ambiguous: %s; use the qualified name", name, list)
                 : hs_set_error(&hs_kb_err, HS_ENOENT, "kb: no definition named %s", name);
    hs_kb_syms_free(defs);
    return rc;
  }
  hs_kb_slice *s = hs_calloc(1, sizeof *s);
  if (!s) {
    hs_kb_syms_free(defs);
    return hs_set_error(&hs_kb_err, HS_ENOMEM, "kb: out of memory");
  }
  s->target = defs->items[0];
  defs->n = 0;
  hs_kb_syms_free(defs);
  const hs_kb_sym *t = &s->target;
  const char *cm = t->lang == HS_LANG_PYTHON ? "#" : "//";
  size_t flen;
  char *file = read_file(kb, t->path, &flen);
  if (!file || t->end_byte > flen ||
      hs_code_hash(file + t->start_byte, t->end_byte - t->start_byte) != t->hash) {
    hs_free(file);
    rc = hs_set_error(&hs_kb_err, HS_ESTALE,
                      "kb: %s changed since it was indexed: run `hswarm index`", t->path);
    hs_kb_slice_free(s);
    return rc;
  }
  hs_strbuf b = {0};
  char head[PATH_MAX + 64];
  snprintf(head, sizeof head, "%s %s, lines %u-%u\n", cm, t->path, t->start_line, t->end_line);
  hs_strbuf_puts(&b, head);
  hs_strbuf_add(&b, file + t->start_byte, t->end_byte - t->start_byte);
  hs_strbuf_puts(&b, "\n");
  const char *paths[256];
  size_t np = 0;
  note_path(paths, &np, t->path);
  hs_kb_edges *callees = NULL, *callers = NULL;
  rc = hs_kb_callees(kb, t->qname, &callees);
  if (!rc) rc = hs_kb_callers(kb, t->name, &callers);
  if (!rc) {
    for (size_t i = 0; i < callees->n && s->n_callees < MAX_CALLEES; i++) {
      const hs_kb_edge *e = &callees->items[i];
      if (!e->resolved || e->from.id != t->id || e->to.id == t->id) continue;
      size_t defs_of_name = 0;
      for (size_t j = 0; j < callees->n; j++)
        defs_of_name += callees->items[j].resolved && !strcmp(callees->items[j].name, e->name);
      if (defs_of_name > MAX_AMBIGUITY) continue;
      if (!s->n_callees) addf(&b, "\n%s what it calls:\n", cm, "", 0);
      char fmt[32];
      snprintf(fmt, sizeof fmt, "%%s  %s %%s:%%u\n", cm);
      addf(&b, fmt, e->to.signature, e->to.path, e->to.start_line);
      note_path(paths, &np, e->to.path);
      s->n_callees++;
    }
    for (size_t i = 0; i < callers->n && s->n_callers < MAX_CALLERS; i++) {
      const hs_kb_edge *e = &callers->items[i];
      if (!e->from.id || e->from.id == t->id) continue; /* file-level calls, recursion */
      if (!s->n_callers) addf(&b, "\n%s what calls it:\n", cm, "", 0);
      char fmt[32];
      snprintf(fmt, sizeof fmt, "%%s  %s %%s:%%u\n", cm);
      addf(&b, fmt, e->from.signature, e->from.path, e->line);
      note_path(paths, &np, e->from.path);
      s->n_callers++;
    }
  }
  if (!rc && b.oom) rc = hs_set_error(&hs_kb_err, HS_ENOMEM, "kb: out of memory");
  if (!rc) {
    s->text = b.p;
    s->len = b.n;
    b.p = NULL;
    s->approximate = tok == NULL;
    s->slice_tokens = hs_kb_count_tokens(tok, s->text, s->len);
    s->n_files = np;
    for (size_t i = 0; i < np; i++) {
      size_t n;
      char *whole = i == 0 ? file : read_file(kb, paths[i], &n);
      if (i == 0) n = flen;
      uint64_t k = whole ? hs_kb_count_tokens(tok, whole, n) : 0;
      s->whole_tokens += k;
      if (i == 0) s->own_file_tokens = k;
      if (i) hs_free(whole);
    }
  }
  hs_free(b.p);
  hs_free(file);
  hs_kb_edges_free(callees);
  hs_kb_edges_free(callers);
  if (rc) {
    hs_kb_slice_free(s);
    return rc;
  }
  *out = s;
  return 0;
}
