/* fuzz_chat_template.c: the chat template parser against arbitrary bytes.
 *
 * Whatever the input, parsing must not over-read, crash or leak, and a failure must leave a
 * message naming a line. When the input parses, the template renders a fixed conversation (with
 * and without a system message and a generation prompt); rendering may refuse a conversation the
 * template cannot express, but must then say why. A broken promise aborts. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hswarm/alloc.h"
#include "hswarm/chat.h"
#include "hswarm/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok) {
  if (!ok) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *copy = malloc(size ? size : 1); /* exactly sized: the sanitizers see an over-read */
  if (!copy) return 0;
  memcpy(copy, data, size);
  hs_chat_template *t = NULL;
  int rc = hs_chat_template_parse(copy, size, "fuzz.chat", &t);
  if (rc) {
    check(t == NULL && rc < 0);
    check(strlen(hs_chat_last_error()) > 0);
  } else {
    check(t != NULL && strlen(hs_chat_template_name(t)) > 0);
    for (size_t i = 0; i < hs_chat_template_n_stops(t); i++) check(hs_chat_template_stop(t, i) != NULL);
    const hs_chat_message convo[] = {{"system", " sys {content} "}, {"user", "u1"},
                                     {"assistant", "a1"}, {"user", "u2"}};
    for (int v = 0; v < 4; v++) {
      char *out = NULL;
      const hs_chat_message *m = (v & 1) ? convo + 1 : convo;
      size_t n = (v & 1) ? 3 : 4;
      int r = hs_chat_render(t, m, n, v & 2, &out);
      if (r) {
        check(out == NULL && strlen(hs_chat_last_error()) > 0);
      } else {
        check(out != NULL && strlen(out) < 1u << 24);
        hs_free(out);
      }
    }
    hs_chat_template_destroy(t);
  }
  free(copy);
  return 0;
}
