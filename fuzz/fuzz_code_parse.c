/* fuzz_code_parse.c: definitions and references (hswarm/code.h) of arbitrary bytes.
 *
 * The first byte picks the language; the rest is the file. Whatever the bytes, parsing must not
 * crash, over-read or leak, and what it returns must hold together: every definition's range is
 * inside the text and in order, its lines ordered, its name inside its range, its parent an
 * earlier definition containing it; every reference inside the text, in order, and its containing
 * definition really containing it. A broken promise aborts, which the fuzzer reports. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hswarm/code.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok) {
  if (!ok) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  hs_lang lang = (hs_lang)(1 + data[0] % (HS_LANG_COUNT - 1));
  const char *text = (const char *)data + 1;
  size_t len = size - 1;
  hs_parsed *p;
  check(hs_code_parse(lang, text, len, &p) == 0);
  check(p->lang == lang);
  check(p->hash == hs_code_hash(text, len));
  for (size_t i = 0; i < p->n_defs; i++) {
    const hs_def *d = &p->defs[i];
    check(d->start_byte <= d->end_byte && d->end_byte <= len);
    check(d->start_line >= 1 && d->start_line <= d->end_line);
    check(d->name_byte >= d->start_byte && d->name_byte < d->end_byte);
    check(hs_def_kind_name(d->kind) != NULL);
    check(d->name && d->qname && d->signature && d->doc);
    check(strlen(d->qname) >= strlen(d->name));
    check(d->hash == hs_code_hash(text + d->start_byte, d->end_byte - d->start_byte));
    if (i) check(p->defs[i - 1].start_byte <= d->start_byte);
    if (d->parent >= 0) {
      const hs_def *up = &p->defs[d->parent];
      check((size_t)d->parent < i);
      check(up->start_byte <= d->start_byte && d->end_byte <= up->end_byte);
    }
  }
  for (size_t i = 0; i < p->n_refs; i++) {
    const hs_ref *r = &p->refs[i];
    check(r->byte <= len && r->line >= 1 && r->name != NULL);
    check(hs_ref_kind_name(r->kind) != NULL);
    if (i) check(p->refs[i - 1].byte <= r->byte);
    if (r->def >= 0) {
      check((size_t)r->def < p->n_defs);
      const hs_def *d = &p->defs[r->def];
      check(d->start_byte <= r->byte && r->byte < d->end_byte);
    }
  }
  if (p->n_errors) check(p->first_error_line >= 1);
  hs_parsed_free(p);
  return 0;
}
