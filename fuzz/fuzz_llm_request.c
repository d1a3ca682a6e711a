/* fuzz_llm_request.c: an agent's JSON request to the model ("llm" operation, src/agent/
 * llm_request.c) against arbitrary input.
 *
 * Whatever the bytes, parsing must not crash, over-read or leak; a refusal must be HS_EINVAL (or
 * HS_ENOMEM) with a message that starts with "llm: "; an accepted request must have exactly one
 * prompt form, consistent stop tokens and strings, and a valid priority. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/llm_request.h"
#include "hswarm/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok) {
  if (!ok) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  hs_llm_request q;
  char msg[512];
  int rc = hs_llm_request_parse(7, data, size, &q, msg, sizeof msg);
  if (rc) {
    check(rc == HS_EINVAL || rc == HS_ENOMEM);
    check(strncmp(msg, "llm: ", 5) == 0);
  } else {
    check((q.ids != NULL) + (q.text != NULL) + q.has_handle == 1);
    check(!q.ids || q.n_ids >= 1);
    check((q.r.n_stop_tokens == 0) == (q.r.stop_tokens == NULL));
    check((q.n_stops == 0) == (q.stops == NULL));
    for (size_t i = 0; i < q.n_stops; i++) check(q.stops[i] && q.stops[i][0]);
    check((unsigned)q.r.priority < HS_PRIORITY_COUNT);
  }
  hs_llm_request_free(&q);
  return 0;
}
