/* fuzz_llm_request.c: an agent's JSON request to the model ("llm" operation, src/agent/
 * llm_request.c) against arbitrary input.
 *
 * Whatever the bytes, parsing must not crash, over-read or leak; a refusal must be HS_EINVAL (or
 * HS_ENOMEM) with a message that starts with "llm: "; an accepted request must have a prompt of
 * at least one token and consistent stop tokens. */
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
  hs_sched_request r;
  int32_t *ids = NULL;
  char msg[512];
  int rc = hs_llm_request_parse(NULL, 7, data, size, &r, &ids, msg, sizeof msg);
  if (rc) {
    check(rc == HS_EINVAL || rc == HS_ENOMEM);
    check(strncmp(msg, "llm: ", 5) == 0);
  } else {
    check(ids != NULL && r.prompt == ids && r.n_prompt >= 1);
    check((r.n_stop_tokens == 0) == (r.stop_tokens == NULL));
    check((unsigned)r.priority < HS_PRIORITY_COUNT);
  }
  hs_llm_request_free(&r, ids);
  return 0;
}
