/* test_chat.c: chat template files: the shipped templates render the published conventions
 * exactly, detection from a model's tokenizer.chat_template, and every parse error names its line
 * and column. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../support/counting_alloc.h"
#include "hswarm/chat.h"
#include "hswarm/error.h"

static char template_dir[1024];

static int setup(void **state) {
  const char *src = getenv("HS_SOURCE_DIR");
  snprintf(template_dir, sizeof template_dir, "%s/templates/chat", src ? src : ".");
  hs_alloc_set_hooks(&counting_hooks);
  live_blocks = 0;
  return make_tmpdir("hs_chat");
}

static int teardown(void **state) { return remove_tmpdir_and_hooks(); }

static char *render_named(const char *name, const hs_chat_message *m, size_t n, bool gen) {
  hs_chat_template *t = NULL;
  assert_int_equal(hs_chat_template_load_named(template_dir, name, &t), 0);
  char *out = NULL;
  int rc = hs_chat_render(t, m, n, gen, &out);
  if (rc) fail_msg("render %s: %s", name, hs_chat_last_error());
  hs_chat_template_destroy(t);
  return out;
}

static void test_llama3(void **state) {
  hs_chat_message m[] = {{"system", "  Be brief. "}, {"user", "Hi"}, {"assistant", "Hello!"},
                         {"user", "2+2?"}};
  char *s = render_named("llama3", m, 4, true);
  assert_string_equal(s,
                      "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
                      "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
                      "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
                      "<|start_header_id|>user<|end_header_id|>\n\n2+2?<|eot_id|>"
                      "<|start_header_id|>assistant<|end_header_id|>\n\n");
  hs_free(s);
  assert_int_equal(live_blocks, 0);
}

static void test_llama2_system_folded(void **state) {
  hs_chat_message m[] = {{"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello!"},
                         {"user", "Bye"}};
  char *s = render_named("llama2", m, 4, true);
  assert_string_equal(s, "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello! </s>"
                         "<s>[INST] Bye [/INST]");
  hs_free(s);
  hs_chat_message u[] = {{"user", "Hi"}};
  s = render_named("llama2", u, 1, true);
  assert_string_equal(s, "[INST] Hi [/INST]");
  hs_free(s);
  assert_int_equal(live_blocks, 0);
}

static void test_mistral(void **state) {
  hs_chat_message m[] = {{"system", "Sys"}, {"user", "Hi"}, {"assistant", "Yo"}, {"user", "Q"}};
  char *s = render_named("mistral", m, 4, true);
  assert_string_equal(s, "[INST] Sys\n\nHi [/INST]Yo</s>[INST] Q [/INST]");
  hs_free(s);
}

static void test_chatml_default_system(void **state) {
  hs_chat_message m[] = {{"user", "Hi"}};
  char *s = render_named("chatml", m, 1, true);
  assert_string_equal(s, "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
                         "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  hs_free(s);
  hs_chat_message m2[] = {{"system", "S"}, {"user", "Hi"}};
  s = render_named("chatml", m2, 2, false);
  assert_string_equal(s, "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n");
  hs_free(s);
  assert_int_equal(live_blocks, 0);
}

/* Gemma: the system message folded into the first user turn, "model" for the assistant. */
static void test_gemma(void **state) {
  hs_chat_message m[] = {{"system", " Be brief. "}, {"user", "Hi"}, {"assistant", "Hello!"},
                         {"user", "2+2?"}};
  char *s = render_named("gemma", m, 4, true);
  assert_string_equal(s, "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n"
                         "<start_of_turn>model\nHello!<end_of_turn>\n"
                         "<start_of_turn>user\n2+2?<end_of_turn>\n<start_of_turn>model\n");
  hs_free(s);
  hs_chat_message u[] = {{"user", "Hi"}};
  s = render_named("gemma", u, 1, true);
  assert_string_equal(s, "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n");
  hs_free(s);
  assert_int_equal(live_blocks, 0);
}

/* SmolLM2: ChatML with its own default system message. */
static void test_smollm2(void **state) {
  hs_chat_message m[] = {{"user", "Hi"}};
  char *s = render_named("chatml-smollm2", m, 1, true);
  assert_string_equal(s, "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, "
                         "trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                         "<|im_start|>assistant\n");
  hs_free(s);
  assert_int_equal(live_blocks, 0);
}

static void test_stops_and_name(void **state) {
  hs_chat_template *t = NULL;
  assert_int_equal(hs_chat_template_load_named(template_dir, "llama3", &t), 0);
  assert_string_equal(hs_chat_template_name(t), "llama3");
  assert_int_equal(hs_chat_template_n_stops(t), 1);
  assert_string_equal(hs_chat_template_stop(t, 0), "<|eot_id|>");
  assert_null(hs_chat_template_stop(t, 1));
  hs_chat_template_destroy(t);
  assert_int_equal(hs_chat_template_load_named(template_dir, "nope", &t), HS_ENOENT);
  assert_msg_has(hs_chat_last_error(), "no chat template named 'nope'");
  assert_int_equal(hs_chat_template_load_named(template_dir, "../etc", &t), HS_EINVAL);
}

/* Fragments of the Jinja templates real GGUF files carry. */
static void test_detect(void **state) {
  struct {
    const char *jinja, *want;
  } cases[] = {
      {"{% for message in messages %}{{'<|start_header_id|>' + message['role'] + "
       "'<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>'}}",
       "llama3"},
      {"{% if messages[0]['role'] == 'system' %}{{ '<<SYS>>\\n' + system + '\\n<</SYS>>' }}"
       "{{ bos_token + '[INST] ' + content + ' [/INST]' }}",
       "llama2"},
      {"{{ bos_token }}{% for message in messages %}{{ '[INST] ' + message['content'] + "
       "' [/INST]' }}{% endfor %}",
       "mistral"},
      {"{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
       "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}",
       "chatml"},
      /* SmolLM2's template, which names its default system message (before plain ChatML) */
      {"{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
       "{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by "
       "Hugging Face<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + "
       "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}",
       "chatml-smollm2"},
      {"{{ bos_token }}{%- for message in loop_messages -%}{{ '<start_of_turn>' + role + '\\n' "
       "+ (first_user_prefix if loop.first else '') }}{{ message['content'] | trim }}"
       "{{ '<end_of_turn>\\n' }}{%- endfor -%}",
       "gemma"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    hs_chat_template *t = NULL;
    int rc = hs_chat_template_detect(template_dir, cases[i].jinja, &t);
    if (rc) fail_msg("case %zu: %s", i, hs_chat_last_error());
    assert_string_equal(hs_chat_template_name(t), cases[i].want);
    hs_chat_template_destroy(t);
  }
  hs_chat_template *t = NULL;
  assert_int_equal(hs_chat_template_detect(template_dir, "{{ plain }}", &t), HS_ENOENT);
  assert_msg_has(hs_chat_last_error(), "choose one by name");
  assert_int_equal(live_blocks, 0);
}

static void test_render_errors(void **state) {
  hs_chat_template *t = NULL;
  assert_int_equal(hs_chat_template_load_named(template_dir, "mistral", &t), 0);
  char *out = NULL;
  hs_chat_message bad_role[] = {{"tool", "x"}};
  assert_int_equal(hs_chat_render(t, bad_role, 1, true, &out), HS_EINVAL);
  assert_msg_has(hs_chat_last_error(), "unknown role 'tool'");
  hs_chat_message late_sys[] = {{"user", "a"}, {"system", "b"}};
  assert_int_equal(hs_chat_render(t, late_sys, 2, true, &out), HS_EINVAL);
  assert_msg_has(hs_chat_last_error(), "system message only first");
  hs_chat_message only_sys[] = {{"system", "a"}};
  assert_int_equal(hs_chat_render(t, only_sys, 1, true, &out), HS_EINVAL);
  assert_msg_has(hs_chat_last_error(), "there is none");
  assert_null(out);
  hs_chat_template_destroy(t);
  assert_int_equal(live_blocks, 0);
}

static void expect_parse_error(const char *text, const char *part) {
  hs_chat_template *t = NULL;
  int rc = hs_chat_template_parse(text, strlen(text), "t.chat", &t);
  if (rc != HS_ECORRUPT) fail_msg("parsed (rc %d): %s", rc, text);
  assert_null(t);
  assert_msg_has(hs_chat_last_error(), part);
}

#define MIN "name = \"x\"\nuser = \"{content}\"\nassistant = \"{content}\"\ngeneration_prompt = \"\"\n"

static void test_parse_errors(void **state) {
  expect_parse_error(MIN "bogus = \"1\"\n", "t.chat: line 5, column 1: unknown setting");
  expect_parse_error(MIN "stop = \"abc\n", "line 5, column 12: unterminated string");
  expect_parse_error(MIN "system = \"{who}\"\n", "line 5, column 10: unknown placeholder");
  expect_parse_error(MIN "system = \"{system}\"\n", "takes {content}");
  expect_parse_error(MIN "generation_prompt = \"a\"\n", "setting given twice");
  expect_parse_error(MIN "user_first = \"a}\"\n", "lone '}'");
  expect_parse_error(MIN "stop = \"\\q\"\n", "unknown escape");
  expect_parse_error(MIN "stop = \"\\x4\"\n", "two hexadecimal digits");
  expect_parse_error(MIN "trim = yes\n", "trim takes true or false");
  expect_parse_error(MIN "stop \"a\"\n", "expected '='");
  expect_parse_error(MIN "stop = \"a\" b\n", "unexpected text");
  expect_parse_error(MIN "stop = \"\"\n", "an empty string");
  expect_parse_error("user = \"{content}\"\nassistant = \"{content}\"\ngeneration_prompt = \"\"\n",
                     "'name' is missing");
  expect_parse_error("name = \"x\"\nuser = \"{content}\"\ngeneration_prompt = \"\"\n",
                     "'assistant' is missing");
  expect_parse_error("name = \"a b\"\n", "a name takes");
  hs_chat_template *t = NULL;
  assert_int_equal(hs_chat_template_parse("na\0me", 5, NULL, &t), HS_ECORRUPT);
  assert_int_equal(live_blocks, 0);
}

static void test_escapes_and_braces(void **state) {
  const char *text = "# comment\n\nname = \"e\"  # trailing comment\n"
                     "user = \"{{{content}}}\\t\\x41\\\\\\\"\"\r\n"
                     "assistant = \"{content}\"\ngeneration_prompt = \"G\"\ntrim = false\n";
  hs_chat_template *t = NULL;
  int rc = hs_chat_template_parse(text, strlen(text), "e.chat", &t);
  if (rc) fail_msg("%s", hs_chat_last_error());
  hs_chat_message m[] = {{"user", " x "}};
  char *out = NULL;
  assert_int_equal(hs_chat_render(t, m, 1, true, &out), 0);
  assert_string_equal(out, "{ x }\tA\\\"G");
  hs_free(out);
  hs_chat_template_destroy(t);
  assert_int_equal(live_blocks, 0);
}

static void test_out_of_memory(void **state) {
  hs_chat_message m[] = {{"system", "S"}, {"user", "Hi"}};
  for (long n = 0; n < 200; n++) {
    hs_chat_template *t = NULL;
    hs_alloc_fail_after(n);
    int rc = hs_chat_template_load_named(template_dir, "llama3", &t);
    char *out = NULL;
    if (!rc) {
      rc = hs_chat_render(t, m, 2, true, &out);
      hs_chat_template_destroy(t);
    }
    hs_alloc_fail_after(-1);
    if (!rc) {
      hs_free(out);
      assert_int_equal(live_blocks, 0);
      return; /* got through without failures: every earlier failure point was tried */
    }
    assert_int_equal(rc, HS_ENOMEM);
    assert_int_equal(live_blocks, 0);
  }
  fail_msg("still failing after 200 allocations");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_llama3, setup, teardown),
      cmocka_unit_test_setup_teardown(test_llama2_system_folded, setup, teardown),
      cmocka_unit_test_setup_teardown(test_mistral, setup, teardown),
      cmocka_unit_test_setup_teardown(test_chatml_default_system, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stops_and_name, setup, teardown),
      cmocka_unit_test_setup_teardown(test_detect, setup, teardown),
      cmocka_unit_test_setup_teardown(test_gemma, setup, teardown),
      cmocka_unit_test_setup_teardown(test_smollm2, setup, teardown),
      cmocka_unit_test_setup_teardown(test_render_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_parse_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_escapes_and_braces, setup, teardown),
      cmocka_unit_test_setup_teardown(test_out_of_memory, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
