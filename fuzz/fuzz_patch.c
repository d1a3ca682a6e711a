/* fuzz_patch.c: the function-level patch parser and applier (hswarm/patch.h) on arbitrary input.
 *
 * The input is a patch text, optionally followed by a line "%%" and the text of every file the
 * patch names (served from memory, whatever the path; the language comes from the path's
 * extension, default path "a.py"). Parsing must not crash, over-read or leak; a refusal must be
 * HS_EINVAL with a message naming a line. When it parses, applying must not crash either, and
 * what it reports must hold together: ok exactly when there are no errors; each file's text after
 * differs from before only as its diff says (the diff is empty exactly when they are equal). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "code/patch_impl.h"
#include "hswarm/alloc.h"
#include "hswarm/error.h"
#include "hswarm/patch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok) {
  if (!ok) abort();
}

typedef struct mem {
  const char *text;
  size_t len;
} mem;

static char *read_mem(void *ud, const char *path, size_t *len, char *why, size_t cap) {
  (void)path, (void)why, (void)cap;
  const mem *m = ud;
  char *t = hs_malloc(m->len + 1);
  if (!t) return NULL;
  memcpy(t, m->text, m->len);
  t[m->len] = 0;
  *len = m->len;
  return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *text = (const char *)data;
  size_t plen = size;
  mem file = {"", 0};
  for (size_t i = 0; i + 3 <= size; i++)
    if (!memcmp(text + i, "%%\n", 3) && (i == 0 || text[i - 1] == '\n')) {
      plen = i;
      file.text = text + i + 3;
      file.len = size - i - 3;
      break;
    }
  hs_patch *p = NULL;
  int rc = hs_patch_parse(text, plen, &p);
  if (rc) {
    check(rc == HS_EINVAL && p == NULL && strstr(hs_patch_last_error(), "patch") != NULL);
    return 0;
  }
  check(p->n_ops > 0);
  for (size_t i = 0; i < p->n_ops; i++) {
    check(p->ops[i].symbol && p->ops[i].symbol[0] && p->ops[i].text);
    check(p->ops[i].line >= 1);
    check(p->ops[i].kind != HS_PATCH_DELETE || p->ops[i].text_len == 0);
  }
  hs_patch_result *r = NULL;
  check(patch_apply_with(p, read_mem, &file, "a.py", &r) == 0);
  check(r->ok == (r->n_errors == 0));
  size_t changed = 0;
  for (size_t i = 0; i < r->n_files; i++) {
    const hs_patch_file *f = &r->files[i];
    check(f->before_len == file.len && !memcmp(f->before, file.text, file.len));
    changed += f->after_len != f->before_len || memcmp(f->after, f->before, f->before_len) != 0;
  }
  check((r->diff[0] != 0) == (changed > 0));
  hs_patch_result_free(r);
  hs_patch_free(p);
  return 0;
}
