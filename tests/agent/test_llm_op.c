/* test_llm_op.c: the model as a runtime operation (src/agent/llm_op.c, the loop's engine hook):
 * Lua agents call ctx.call("llm", json), block, and resume with the result; the results are the
 * tokens the scheduler gives for the same request alone; lockstep runs are identical whatever the
 * thread count; the event log replays without a model; bad requests fail the call with a message
 * that names the problem. Then ctx.llm (src/agent/lua_llm.c) on a model with a byte tokenizer:
 * text prompts, pinned prefixes that every agent extends, prompts given as arena handles, stop
 * strings, default seeds derived from the run seed, agent and call count (identical runs, replay),
 * and its errors. */
#include "agent/harness.h"

#include <stdbool.h>

#include "hswarm/engine.h"
#include "hswarm/llm.h"
#include "hswarm/sched.h"
#include "hswarm/synth.h"
#include "hswarm/tokenizer.h"

static char model_path[512], bytes_path[512];

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
  hs_sched_destroy(s); /* before the binding and the runtime its callbacks use */
  hs_llm_free(l);
  hs_runtime_destroy(rt);
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

static const char *CTX_LLM_SCRIPT =
    "function main(ctx)\n"
    "  local shared = string.rep('You are one of many agents. ', 3)\n"
    "  local p, n = ctx.llm.pin(shared)\n"
    "  assert(n == #shared, n) -- one token per byte (this vocabulary adds no BOS)\n"
    "  local kids = {}\n"
    "  for i = 1, 3 do\n"
    "    kids[i] = ctx.spawn(function(c)\n"
    "      local out = {}\n"
    "      for call = 1, 2 do\n"
    "        local own = 'agent ' .. c.id\n"
    "        local r = assert(ctx.llm.generate{prompt = own, prefix = p, max_tokens = 5,\n"
    "                                          temperature = 50, ignore_eos = true})\n"
    "        assert(r.usage.prompt == n + #own, r.usage.prompt)\n"
    "        assert(r.usage.cached >= 64, r.usage.cached)\n"
    "        assert(r.usage.completion == 5 and #r.tokens == 5)\n"
    "        assert(r.finish_reason == 'length', r.finish_reason)\n"
    "        out[call] = table.concat(r.tokens, ',')\n"
    "      end\n"
    "      assert(out[1] ~= out[2], 'two calls of one agent got the same seed')\n"
    "      return table.concat(out, ';')\n"
    "    end)\n"
    "  end\n"
    "  local res = {}\n"
    "  for i = 1, 3 do res[i] = tostring(ctx.join(kids[i])) end\n"
    "  assert(res[1] ~= res[2] and res[2] ~= res[3])\n"
    "  ctx.llm.unpin(p)\n"
    "  local ok, err = ctx.llm.generate{prompt = 'x', prefix = p}\n"
    "  assert(not ok and err:find('not a pinned prefix'), err)\n"
    "  -- greedy, from a string and from an arena handle: the same tokens\n"
    "  local g = assert(ctx.llm.generate{prompt = 'abc', max_tokens = 12, temperature = 0,\n"
    "                                    ignore_eos = true})\n"
    "  local h = ctx.memory.write('abc')\n"
    "  for k = 1, 2 do -- the second time, the handle's ids come from the cache\n"
    "    local g2 = assert(ctx.llm.generate{prompt = h, max_tokens = 12, temperature = 0,\n"
    "                                       ignore_eos = true})\n"
    "    assert(table.concat(g2.tokens, ',') == table.concat(g.tokens, ','))\n"
    "    assert(g2.text == g.text)\n"
    "  end\n"
    "  -- a stop string: the output's third and fourth characters (the text is well-formed\n"
    "  -- UTF-8: ill-formed bytes come back as U+FFFD)\n"
    "  assert(utf8.len(g.text), 'ill-formed UTF-8 in a result')\n"
    "  local stop = g.text:sub(utf8.offset(g.text, 3), utf8.offset(g.text, 5) - 1)\n"
    "  local first = g.text:find(stop, 1, true)\n"
    "  local s = assert(ctx.llm.generate{prompt = 'abc', max_tokens = 12, temperature = 0,\n"
    "                                    ignore_eos = true, stop = {'\\1\\2', stop}})\n"
    "  assert(s.finish_reason == 'stop', s.finish_reason)\n"
    "  assert(s.text == g.text:sub(1, first - 1), s.text)\n"
    "  assert(#s.tokens < 12)\n"
    "  -- constrained: a GBNF grammar, and a JSON schema\n"
    "  local yn = assert(ctx.llm.generate{prompt = 'ok?', temperature = 1.0, max_tokens = 20,\n"
    "                                     grammar = 'root ::= \"yes\" | \"no\"'})\n"
    "  assert(yn.text == 'yes' or yn.text == 'no', yn.text)\n"
    "  assert(yn.finish_reason == 'stop', yn.finish_reason)\n"
    "  local js = assert(ctx.llm.generate{prompt = 'n:', temperature = 0.7, max_tokens = 40,\n"
    "    schema = '{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"integer\"}},'\n"
    "             .. '\"required\":[\"n\"]}'})\n"
    "  assert(js.text:match('^{%s*\"n\"%s*:%s*%-?%d+%s*}$') or js.finish_reason == 'length', js.text)\n"
    "  ok, err = ctx.llm.generate{prompt = 'x', grammar = 'root ::= ('}\n"
    "  assert(not ok and err:find('grammar'), err)\n"
    "  ok, err = pcall(ctx.llm.generate, {prompt = 'x', colour = 3})\n"
    "  assert(not ok and err:find('unknown key \"colour\"'), err)\n"
    "  ok, err = pcall(ctx.llm.generate, {prompt = 'x', max_tokens = 'many'})\n"
    "  assert(not ok and err:find('max_tokens must be a number'), err)\n"
    "  ok, err = pcall(ctx.llm.unpin, 99)\n"
    "  assert(not ok and err:find('not a pinned prefix'), err)\n"
    "  return table.concat(res, '\\n') .. '\\n' .. g.text\n"
    "end\n";

static char *run_ctx_llm(unsigned threads, uint64_t seed, const char *log_path, bool model) {
  hs_model_opts mo = {.n_threads = threads};
  hs_model *m = NULL;
  hs_tokenizer *tok = NULL;
  hs_sched *s = NULL;
  hs_llm *l = NULL;
  hs_runtime_config cfg;
  hs_runtime_config_init(&cfg);
  cfg.quiet = 1;
  cfg.seed = seed;
  cfg.log_path = log_path;
  hs_runtime *rt;
  assert_int_equal(hs_runtime_create(&cfg, &rt), 0);
  if (model) {
    assert_int_equal(hs_model_open(bytes_path, &mo, &m), 0);
    assert_int_equal(hs_tokenizer_load(hs_model_get_gguf(m), &tok), 0);
    hs_sched_opts so = {.tokenizer = tok};
    assert_int_equal(hs_sched_create(m, &so, &s), 0);
    assert_int_equal(hs_llm_attach(rt, s, tok, NULL, &l), 0);
  }
  const char *path = write_file("ctx_llm.lua", CTX_LLM_SCRIPT);
  assert_int_equal(hs_runtime_spawn_main(rt, path, 0, NULL, NULL), 0);
  int rc = hs_runtime_run(rt);
  char buf[4096] = "";
  long n = rc ? -1 : hs_runtime_main_result(rt, buf, sizeof buf);
  if (n < 0) {
    const char *lines[4];
    size_t k = hs_runtime_failures(rt, lines, 4);
    snprintf(buf, sizeof buf, "FAILED: %s", k ? lines[0] : hs_runtime_last_error(rt));
  }
  hs_sched_destroy(s);
  hs_llm_free(l);
  hs_runtime_destroy(rt);
  hs_tokenizer_destroy(tok);
  hs_model_close(m);
  return strdup(buf);
}

static void test_ctx_llm(void **state) {
  (void)state;
  char logp[600];
  snprintf(logp, sizeof logp, "%s/ctx_llm.log", test_dir);
  char *a = run_ctx_llm(1, 5, logp, true);
  if (!strncmp(a, "FAILED", 6)) fail_msg("%s", a);
  char *b = run_ctx_llm(2, 5, NULL, true);
  assert_string_equal(a, b); /* same seed: the same run, whatever the threads */
  char *c = run_ctx_llm(1, 6, NULL, true);
  assert_string_not_equal(a, c); /* another run seed: other samples */
  print_message("%s\n", a);
  hs_replay_result res;
  assert_int_equal(hs_runtime_replay(logp, 1, &res), 0);
  if (!res.identical) fprintf(stderr, "%s\n%s\n", res.expected, res.actual);
  assert_true(res.identical);
  char *d = run_ctx_llm(1, 5, NULL, false); /* no model: the first ctx.llm call fails clearly */
  if (!strstr(d, "no model")) fail_msg("%s", d);
  free(a);
  free(b);
  free(c);
  free(d);
}

int main(void) {
  harness_init();
  snprintf(model_path, sizeof model_path, "%s/llm.gguf", test_dir);
  hs_synth_spec s;
  if (hs_synth_preset("tiny-llama", &s) != 0) return 1;
  s.type = HS_SYNTH_Q8_0;
  if (hs_synth_write(&s, model_path, NULL) != 0) return 1;
  snprintf(bytes_path, sizeof bytes_path, "%s/bytes.gguf", test_dir);
  s.n_vocab = 260; /* the byte-level vocabulary and BOS, EOS */
  if (hs_synth_write(&s, bytes_path, NULL) != 0) return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_agents_call_the_model),
      cmocka_unit_test(test_ctx_llm),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
