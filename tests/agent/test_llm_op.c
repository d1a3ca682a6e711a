/* test_llm_op.c: the model as a runtime operation (src/agent/llm_op.c, the loop's engine hook):
 * Lua agents call ctx.call("llm", json), block, and resume with the result; the results are the
 * tokens the scheduler gives for the same request alone; lockstep runs are identical whatever the
 * thread count; the event log replays without a model; bad requests fail the call with a message
 * that names the problem. */
#include "agent/harness.h"

#include <stdbool.h>

#include "hswarm/engine.h"
#include "hswarm/llm.h"
#include "hswarm/sched.h"
#include "hswarm/synth.h"

static char model_path[512];

static const char *SCRIPT =
    "function main(ctx)\n"
    "  local ids = {}\n"
    "  for i = 1, 4 do\n"
    "    ids[i] = ctx.spawn(function(c)\n"
    "      local req = string.format('{\"prompt\": [1, 2, 3, %d, 5, 6], \"max_tokens\": %d, '\n"
    "        .. '\"temperature\": 0.8, \"seed\": %d, \"ignore_eos\": true}', 10 + c.id, 3 + c.id, c.id)\n"
    "      local res, err = ctx.call('llm', req)\n"
    "      assert(res, err)\n"
    "      return res\n"
    "    end)\n"
    "  end\n"
    "  local out = {}\n"
    "  for i = 1, 4 do out[i] = tostring(ctx.join(ids[i])) end\n"
    "  local ok, err = ctx.call('llm', '{\"prompt\": [1], \"colour\": 3}')\n"
    "  assert(not ok and err:find('unknown key \"colour\"'), err)\n"
    "  ok, err = ctx.call('llm', 'not json')\n"
    "  assert(not ok and err:find('not a JSON object'), err)\n"
    "  ok, err = ctx.call('llm', '{\"prompt\": [1, 999999]}')\n"
    "  assert(not ok and err:find('out of range'), err)\n"
    "  ok, err = ctx.call('llm', '{\"text\": \"hi\"}')\n"
    "  assert(not ok and err:find('needs a tokenizer'), err)\n"
    "  return table.concat(out, '\\n') .. '\\nsteps ' .. ctx.now()\n"
    "end\n";

/* Runs SCRIPT with the model on `threads` threads; returns the main result (malloc'd). */
static char *run(unsigned threads, const char *log_path) {
  hs_model_opts mo = {.n_threads = threads};
  hs_model *m;
  assert_int_equal(hs_model_open(model_path, &mo, &m), 0);
  hs_sched *s;
  assert_int_equal(hs_sched_create(m, NULL, &s), 0);
  hs_runtime_config cfg;
  hs_runtime_config_init(&cfg);
  cfg.quiet = 1;
  cfg.log_path = log_path;
  hs_runtime *rt;
  assert_int_equal(hs_runtime_create(&cfg, &rt), 0);
  hs_llm *l, *again;
  assert_int_equal(hs_llm_attach(rt, s, NULL, NULL, &l), 0);
  assert_int_equal(hs_llm_attach(rt, s, NULL, NULL, &again), HS_EINVAL); /* "llm" is taken */
  assert_null(again);
  const char *path = write_file("llm.lua", SCRIPT);
  assert_int_equal(hs_runtime_spawn_main(rt, path, 0, NULL, NULL), 0);
  int rc = hs_runtime_run(rt);
  if (rc) fail_msg("run: %s", hs_runtime_last_error(rt));
  char buf[4096];
  long n = hs_runtime_main_result(rt, buf, sizeof buf);
  if (n < 0) {
    const char *lines[4];
    size_t k = hs_runtime_failures(rt, lines, 4);
    fail_msg("main failed: %s", k ? lines[0] : "?");
  }
  hs_runtime_destroy(rt);
  hs_llm_free(l);
  hs_sched_destroy(s);
  hs_model_close(m);
  return strdup(buf);
}

/* The "tokens" array agent `id` should get, from the scheduler directly: "[a,b,c]". */
static char direct_buf[512];

static void direct_done(const hs_sched_result *r, void *ud) {
  (void)ud;
  size_t k = (size_t)snprintf(direct_buf, sizeof direct_buf, "\"tokens\":[");
  for (size_t i = 0; i < r->n_tokens; i++)
    k += (size_t)snprintf(direct_buf + k, sizeof direct_buf - k, "%s%d", i ? "," : "",
                          (int)r->tokens[i]);
  snprintf(direct_buf + k, sizeof direct_buf - k, "]");
}

static const char *direct(uint32_t id) {
  hs_model *m;
  assert_int_equal(hs_model_open(model_path, NULL, &m), 0);
  hs_sched *s;
  assert_int_equal(hs_sched_create(m, NULL, &s), 0);
  int32_t prompt[6] = {1, 2, 3, (int32_t)(10 + id), 5, 6};
  hs_sched_request r;
  hs_sched_request_init(&r);
  r.prompt = prompt;
  r.n_prompt = 6;
  r.max_tokens = 3 + id;
  r.sampling.temperature = 0.8f;
  r.sampling.seed = id;
  r.ignore_eos = true;
  r.on_done = direct_done;
  assert_int_equal(hs_sched_submit(s, &r, NULL), 0);
  assert_int_equal(hs_sched_run(s), 0);
  hs_sched_destroy(s);
  hs_model_close(m);
  return direct_buf;
}

static void test_agents_call_the_model(void **state) {
  (void)state;
  char logp[600];
  snprintf(logp, sizeof logp, "%s/llm.log", test_dir);
  char *a = run(1, logp);
  char *b = run(3, NULL);
  assert_string_equal(a, b);
  /* four results (agents 2 to 5), each with the tokens the scheduler gives it alone */
  for (uint32_t id = 2; id <= 5; id++) {
    const char *want = direct(id);
    if (!strstr(a, want)) fail_msg("agent %u: %s not in the results:\n%s", id, want, a);
  }
  print_message("%s\n", a);
  hs_replay_result res; /* no model, no "llm" registered: results come from the log */
  assert_int_equal(hs_runtime_replay(logp, 1, &res), 0);
  if (!res.identical) fprintf(stderr, "%s\n%s\n", res.expected, res.actual);
  assert_true(res.identical);
  free(a);
  free(b);
}

int main(void) {
  harness_init();
  snprintf(model_path, sizeof model_path, "%s/llm.gguf", test_dir);
  hs_synth_spec s;
  if (hs_synth_preset("tiny-llama", &s) != 0) return 1;
  s.type = HS_SYNTH_Q8_0;
  if (hs_synth_write(&s, model_path, NULL) != 0) return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_agents_call_the_model),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
