/* fuzz_openai_request.c: OpenAI-style request bodies (src/net/openai_request.c) against
 * arbitrary input, parsed as each of the four kinds (completions, chat, embeddings, prefixes).
 *
 * Whatever the bytes, parsing must not crash, over-read or leak; a refusal must be HS_EINVAL
 * with status 400 and a message (or HS_ENOMEM with 500); an accepted request must have its one
 * input form, values within the limits, and non-empty stop strings. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hswarm/error.h"
#include "net/openai_request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok) {
  if (!ok) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  for (int kind = HS_OAI_COMPLETION; kind <= HS_OAI_PREFIX; kind++) {
    hs_oai_request q;
    hs_oai_error e;
    int rc = hs_oai_request_parse((hs_oai_kind)kind, data, size, NULL, &q, &e);
    if (rc) {
      check((rc == HS_EINVAL && e.status == 400) || (rc == HS_ENOMEM && e.status == 500));
      check(e.message[0] != 0);
      check(!q.messages && !q.prompt && !q.inputs && !q.stops && !q.json_schema);
    } else {
      size_t forms = (q.prompt != NULL) + (q.prompt_ids.ids != NULL) + (q.messages != NULL) +
                     (q.n_inputs > 0);
      check(forms == 1);
      check(q.n >= 1 && q.n <= 16 && q.max_tokens <= 4096 && q.n_stops <= 4);
      check(q.temperature >= 0 && q.temperature <= 2 && q.top_p >= 0 && q.top_p <= 1);
      for (size_t i = 0; i < q.n_stops; i++) check(q.stops[i] && q.stops[i][0]);
      for (size_t i = 0; i < q.n_messages; i++) check(q.messages[i].role && q.messages[i].content);
      check((unsigned)q.priority < HS_PRIORITY_COUNT);
    }
    hs_oai_request_free(&q);
  }
  return 0;
}
