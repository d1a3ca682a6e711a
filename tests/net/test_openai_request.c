/* test_openai_request.c: OpenAI-style request bodies (src/net/openai_request.c): what the
 * official clients send is accepted with every field where it belongs; every wrong type, range,
 * unknown or unsupported field is refused with status 400 and a message naming the parameter;
 * nothing leaks, whether the parse succeeds or fails (also when allocation fails anywhere). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hswarm/alloc.h"
#include "hswarm/error.h"
#include "net/openai_request.h"

#include "support/counting_alloc.h"

static int parse(hs_oai_kind kind, const char *body, hs_oai_request *q, hs_oai_error *e) {
  return hs_oai_request_parse(kind, body, strlen(body), NULL, q, e);
}

static void test_chat_full(void **state) {
  (void)state;
  hs_oai_request q;
  hs_oai_error e;
  const char *body =
      "{\"model\":\"m\",\"messages\":[{\"role\":\"developer\",\"content\":\"be brief\"},"
      "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\","
      "\"text\":\"b\"}],\"name\":\"ann\"},{\"role\":\"assistant\",\"content\":\"ok\"}],"
      "\"max_completion_tokens\":12,\"temperature\":0.5,\"top_p\":0.9,\"seed\":-3,\"stop\":"
      "[\"\\n\",\"END\"],\"n\":3,\"stream\":true,\"stream_options\":{\"include_usage\":true},"
      "\"logprobs\":true,\"top_logprobs\":2,\"presence_penalty\":0.5,\"frequency_penalty\":-1,"
      "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\",\"schema\":"
      "{\"type\":\"object\"},\"strict\":true}},\"priority\":\"urgent\",\"team\":7,\"user\":\"u\","
      "\"logit_bias\":{},\"metadata\":null}";
  assert_int_equal(parse(HS_OAI_CHAT, body, &q, &e), 0);
  assert_string_equal(q.model, "m");
  assert_int_equal(q.n_messages, 3);
  assert_string_equal(q.messages[0].role, "system");
  assert_string_equal(q.messages[0].content, "be brief");
  assert_string_equal(q.messages[1].content, "a\nb");
  assert_string_equal(q.messages[2].role, "assistant");
  assert_int_equal(q.max_tokens, 12);
  assert_true(q.temperature == 0.5f && q.top_p == 0.9f);
  assert_true(q.has_seed);
  assert_true(q.seed == (uint64_t)-3);
  assert_int_equal(q.n_stops, 2);
  assert_string_equal(q.stops[1], "END");
  assert_int_equal(q.n, 3);
  assert_true(q.stream && q.stream_usage && q.logprobs);
  assert_int_equal(q.top_logprobs, 2);
  assert_true(q.presence_penalty == 0.5f && q.frequency_penalty == -1.0f);
  assert_string_equal(q.json_schema, "{\"type\":\"object\"}");
  assert_int_equal(q.priority, HS_PRIORITY_URGENT);
  assert_int_equal(q.team, 7);
  hs_oai_request_free(&q);
}

static void test_defaults(void **state) {
  (void)state;
  hs_oai_request q;
  hs_oai_error e;
  assert_int_equal(parse(HS_OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
                         &q, &e), 0);
  assert_null(q.model);
  assert_int_equal(q.max_tokens, 4096);
  assert_true(q.temperature == 1.0f && q.top_p == 1.0f);
  assert_int_equal(q.n, 1);
  assert_false(q.stream || q.logprobs || q.has_seed);
  assert_null(q.json_schema);
  assert_int_equal(q.priority, HS_PRIORITY_NORMAL);
  hs_oai_request_free(&q);
  /* null is "not given" */
  assert_int_equal(parse(HS_OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                                      "\"temperature\":null,\"stop\":null,\"n\":null}", &q, &e), 0);
  assert_true(q.temperature == 1.0f);
  assert_int_equal(q.n, 1);
  hs_oai_request_free(&q);
  /* json_object: any object */
  assert_int_equal(parse(HS_OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                                      "\"response_format\":{\"type\":\"json_object\"}}", &q, &e), 0);
  assert_string_equal(q.json_schema, "{\"type\":\"object\"}");
  hs_oai_request_free(&q);
}

static void test_completions(void **state) {
  (void)state;
  hs_oai_request q;
  hs_oai_error e;
  assert_int_equal(parse(HS_OAI_COMPLETION, "{\"prompt\":\"2+2=\",\"max_tokens\":4,\"logprobs\":"
                                            "3,\"echo\":true,\"stop\":\"\\n\",\"best_of\":1}",
                         &q, &e), 0);
  assert_string_equal(q.prompt, "2+2=");
  assert_true(q.logprobs && q.echo);
  assert_int_equal(q.top_logprobs, 3);
  assert_int_equal(q.n_stops, 1);
  hs_oai_request_free(&q);
  assert_int_equal(parse(HS_OAI_COMPLETION, "{\"prompt\":[[5,6,7]],\"max_tokens\":1}", &q, &e), 0);
  assert_int_equal(q.prompt_ids.n, 3);
  assert_int_equal(q.prompt_ids.ids[2], 7);
  assert_null(q.prompt);
  hs_oai_request_free(&q);
  assert_int_equal(parse(HS_OAI_COMPLETION, "{\"prompt\":[\"one\"],\"logprobs\":0}", &q, &e), 0);
  assert_string_equal(q.prompt, "one");
  assert_true(q.logprobs);
  assert_int_equal(q.top_logprobs, 0);
  hs_oai_request_free(&q);
  assert_int_equal(parse(HS_OAI_COMPLETION, "{\"prompt\":\"x\",\"max_tokens\":0,\"echo\":true}",
                         &q, &e), 0);
  hs_oai_request_free(&q);
}

static void test_prefix(void **state) {
  (void)state;
  hs_oai_request q;
  hs_oai_error e;
  assert_int_equal(parse(HS_OAI_PREFIX, "{\"messages\":[{\"role\":\"system\",\"content\":\"s\"}]}",
                         &q, &e), 0);
  assert_int_equal(q.n_messages, 1);
  hs_oai_request_free(&q);
  assert_int_equal(parse(HS_OAI_PREFIX, "{\"prompt\":[1,2,3]}", &q, &e), 0);
  assert_int_equal(q.prompt_ids.n, 3);
  hs_oai_request_free(&q);
}

static void test_embeddings(void **state) {
  (void)state;
  hs_oai_request q;
  hs_oai_error e;
  assert_int_equal(parse(HS_OAI_EMBEDDING, "{\"input\":\"hello\",\"model\":\"m\"}", &q, &e), 0);
  assert_int_equal(q.n_inputs, 1);
  assert_string_equal(q.inputs[0], "hello");
  assert_false(q.base64);
  hs_oai_request_free(&q);
  assert_int_equal(parse(HS_OAI_EMBEDDING, "{\"input\":[\"a\",\"b\"],\"encoding_format\":"
                                           "\"base64\"}", &q, &e), 0);
  assert_int_equal(q.n_inputs, 2);
  assert_string_equal(q.inputs[1], "b");
  assert_true(q.base64);
  hs_oai_request_free(&q);
  assert_int_equal(parse(HS_OAI_EMBEDDING, "{\"input\":[1,2]}", &q, &e), 0);
  assert_int_equal(q.n_inputs, 1);
  assert_int_equal(q.input_ids[0].n, 2);
  hs_oai_request_free(&q);
  assert_int_equal(parse(HS_OAI_EMBEDDING, "{\"input\":[[1],[2,3]]}", &q, &e), 0);
  assert_int_equal(q.n_inputs, 2);
  assert_int_equal(q.input_ids[1].ids[1], 3);
  hs_oai_request_free(&q);
}

/* Each bad body: refused with 400, the parameter named, the message containing a phrase. */
static void test_refusals(void **state) {
  (void)state;
  static const struct {
    hs_oai_kind kind;
    const char *body, *param, *phrase;
  } cases[] = {
      {HS_OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]", "", "not valid JSON"},
      {HS_OAI_CHAT, "[1]", "", "must be a JSON object"},
      {HS_OAI_CHAT, "{}", "messages", "'messages' is required"},
      {HS_OAI_CHAT, "{\"messages\":[]}", "messages", "non-empty array"},
      {HS_OAI_CHAT, "{\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}", "messages[0]",
       "must be system, developer, user or assistant"},
      {HS_OAI_CHAT, "{\"messages\":[{\"role\":\"user\"}]}", "messages[0].content",
       "must be a string or an array of text parts"},
      {HS_OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]}",
       "messages[0].content", "only parts of type \"text\""},
      {HS_OAI_CHAT, "{\"messages\":[{\"role\":\"assistant\",\"content\":\"x\",\"tool_calls\":[]}]}",
       "messages[0]", "'tool_calls' is not supported"},
      {HS_OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":\"hot\"}",
       "temperature", "must be a number"},
      {HS_OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":3}",
       "temperature", "between 0 and 2"},
      {HS_OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":0}",
       "max_tokens", "between 1 and 4096"},
      {HS_OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":1e9}",
       "max_tokens", "must be an integer"},
      {HS_OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":17}", "n",
       "between 1 and 16"},
      {HS_OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stop\":[\"a\",\"b\","
                    "\"c\",\"d\",\"e\"]}", "stop", "at most 4"},
      {HS_OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stop\":[\"\"]}", "stop",
       "1 to 256 bytes"},
      {HS_OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"top_logprobs\":2}",
       "top_logprobs", "needs 'logprobs': true"},
      {HS_OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[]}", "tools",
       "unrecognized request argument supplied: tools"},
      {HS_OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"prompt\":\"x\"}",
       "prompt", "unrecognized request argument"},
      {HS_OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logit_bias\":{\"1\":2}}",
       "logit_bias", "not supported"},
      {HS_OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":"
                    "{\"type\":\"xml\"}}", "response_format.type", "json_object or json_schema"},
      {HS_OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":"
                    "{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\"}}}",
       "response_format.json_schema.schema", "must be a JSON schema"},
      {HS_OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"priority\":\"high\"}",
       "priority", "\"urgent\", \"normal\" or \"background\""},
      {HS_OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"team\":-1}", "team",
       "between 0 and"},
      {HS_OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stream_options\":"
                    "{\"chunk\":1}}", "stream_options", "only include_usage"},
      {HS_OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":1,\"n\":2}", "",
       "not valid JSON"},
      {HS_OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"a\\u0000b\"}]}", "",
       "u0000 is not allowed"},
      {HS_OAI_COMPLETION, "{\"prompt\":[\"a\",\"b\"]}", "prompt", "one prompt per request"},
      {HS_OAI_COMPLETION, "{\"prompt\":[1,-2]}", "prompt", "must be a token id"},
      {HS_OAI_COMPLETION, "{\"prompt\":\"x\",\"logprobs\":6}", "logprobs", "between 0 and 5"},
      {HS_OAI_COMPLETION, "{\"prompt\":\"x\",\"max_tokens\":0}", "max_tokens", "0 only with echo"},
      {HS_OAI_COMPLETION, "{\"prompt\":\"x\",\"best_of\":3}", "best_of", "not supported"},
      {HS_OAI_COMPLETION, "{\"prompt\":\"x\",\"top_logprobs\":1}", "top_logprobs",
       "unrecognized request argument"},
      {HS_OAI_EMBEDDING, "{\"input\":\"\"}", "input", "must not be an empty string"},
      {HS_OAI_EMBEDDING, "{\"input\":[\"a\",3]}", "input[1]", "must be a string"},
      {HS_OAI_EMBEDDING, "{\"input\":[[1],\"a\"]}", "input[1]", "array of token ids"},
      {HS_OAI_EMBEDDING, "{\"input\":\"a\",\"encoding_format\":\"hex\"}", "encoding_format",
       "\"float\" or \"base64\""},
      {HS_OAI_EMBEDDING, "{\"input\":\"a\",\"dimensions\":8}", "dimensions",
       "unrecognized request argument"},
      {HS_OAI_EMBEDDING, "{\"input\":[]}", "input", "must be a string, an array"},
      {HS_OAI_PREFIX, "{}", "prompt", "(or 'messages')"},
      {HS_OAI_COMPLETION, "{\"prompt\":\"x\",\"grammar\":\"\"}", "grammar", "must not be empty"},
      {HS_OAI_COMPLETION, "{\"prompt\":\"x\",\"grammar\":\"root ::= \\\"a\\\"\",\"response_format\":{\"type\":\"json_object\"}}", "grammar", "not both"},
      {HS_OAI_PREFIX, "{\"prompt\":\"a\",\"messages\":[{\"role\":\"user\",\"content\":\"b\"}]}",
       "messages", "not both"},
      {HS_OAI_PREFIX, "{\"prompt\":\"a\",\"max_tokens\":3}", "max_tokens", "unrecognized"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    hs_oai_request q;
    hs_oai_error e;
    int rc = parse(cases[i].kind, cases[i].body, &q, &e);
    if (rc != HS_EINVAL) fail_msg("case %zu (%s) was accepted (%d)", i, cases[i].body, rc);
    assert_int_equal(e.status, 400);
    assert_string_equal(e.type, "invalid_request_error");
    if (strcmp(e.param, cases[i].param) != 0)
      fail_msg("case %zu: param \"%s\", expected \"%s\" (%s)", i, e.param, cases[i].param,
               e.message);
    assert_msg_has(e.message, cases[i].phrase);
    assert_null(q.messages);
    assert_null(q.prompt);
    hs_oai_request_free(&q);
  }
}

/* Out of memory at every allocation of a full request: refused with status 500, nothing
 * leaked; with enough memory, accepted. */
static void test_out_of_memory(void **state) {
  (void)state;
  const char *bodies[] = {
      "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"}]},"
      "{\"role\":\"system\",\"content\":\"s\"}],\"stop\":[\"x\",\"y\"],\"response_format\":"
      "{\"type\":\"json_object\"},\"model\":\"m\"}",
      "{\"input\":[\"a\",\"b\",\"c\"]}",
      "{\"input\":[[1,2],[3]]}",
  };
  hs_oai_kind kinds[] = {HS_OAI_CHAT, HS_OAI_EMBEDDING, HS_OAI_EMBEDDING};
  for (size_t b = 0; b < 3; b++) {
    bool done = false;
    for (long n = 1; n < 200 && !done; n++) {
      hs_alloc_fail_after(n);
      hs_oai_request q;
      hs_oai_error e;
      int rc = parse(kinds[b], bodies[b], &q, &e);
      hs_alloc_fail_after(0);
      if (rc == 0) done = true;
      else assert_int_equal(e.status, 500);
      hs_oai_request_free(&q);
      assert_int_equal(live_blocks, 0);
    }
    assert_true(done);
  }
}

int main(void) {
  hs_alloc_set_hooks(&counting_hooks);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_chat_full, reset_live_blocks, fail_on_leaked_blocks),
      cmocka_unit_test_setup_teardown(test_defaults, reset_live_blocks, fail_on_leaked_blocks),
      cmocka_unit_test_setup_teardown(test_completions, reset_live_blocks, fail_on_leaked_blocks),
      cmocka_unit_test_setup_teardown(test_embeddings, reset_live_blocks, fail_on_leaked_blocks),
      cmocka_unit_test_setup_teardown(test_prefix, reset_live_blocks, fail_on_leaked_blocks),
      cmocka_unit_test_setup_teardown(test_refusals, reset_live_blocks, fail_on_leaked_blocks),
      cmocka_unit_test_setup_teardown(test_out_of_memory, reset_live_blocks,
                                      fail_on_leaked_blocks),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  hs_alloc_set_hooks(NULL);
  return rc;
}
