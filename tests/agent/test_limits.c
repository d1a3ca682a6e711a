/* test_limits.c: the sandbox and the per-agent limits. Syntax errors, runtime errors, infinite
 * loops (even inside pcall), memory bombs: each fails only the agent concerned, with a message
 * naming the agent and the limit, while the others keep running. */
#include "harness.h"

/* A parent that spawns `bad` (Lua source) next to a well-behaved sibling and reports both. */
static outcome run_with_sibling(const char *bad, const hs_runtime_config *cfg) {
  static char src[4096];
  snprintf(src, sizeof src,
           "local bad = [==[%s]==]\n"
           "function main(ctx)\n"
           "  local b = ctx.spawn(bad)\n"
           "  local good = ctx.spawn('function main(ctx) ctx.sleep(3) local s = 0 for i = 1, 1000 do s = s + i end return s end')\n"
           "  local rb, err = ctx.join(b)\n"
           "  local rg = ctx.join(good)\n"
           "  assert(rb == nil and err, 'the bad agent should fail')\n"
           "  return tostring(rg)\n"
           "end\n",
           bad);
  return run_cfg(src, cfg, 0, NULL);
}

static void test_syntax_error_fails_only_child(void **state) {
  (void)state;
  outcome o = run_with_sibling("function main(ctx) local x = = 1 end", NULL);
  assert_result(o, "500500");
  assert_int_equal(o.stats.failed, 1);
  assert_true(failure_has(&o, "agent 2"));
  assert_true(failure_has(&o, "unexpected symbol near '='"));
}

static void test_main_syntax_error(void **state) {
  (void)state;
  outcome o = run_src("function main(ctx) return ) end");
  assert_true(o.result_len < 0);
  assert_true(failure_has(&o, "agent 1 (main.lua): main.lua:1:"));
}

static void test_missing_main(void **state) {
  (void)state;
  outcome o = run_with_sibling("x = 1", NULL);
  assert_result(o, "500500");
  assert_true(failure_has(&o, "defines no main(ctx, args) function"));
}

static void test_runtime_error(void **state) {
  (void)state;
  outcome o = run_with_sibling("function main(ctx) local t = nil; return t.x end", NULL);
  assert_result(o, "500500");
  assert_true(failure_has(&o, "attempt to index a nil value"));
}

static void test_infinite_loop(void **state) {
  (void)state;
  hs_runtime_config cfg;
  hs_runtime_config_init(&cfg);
  cfg.quiet = 1;
  cfg.instruction_budget = 200000;
  outcome o = run_with_sibling("function main(ctx) while true do end end", &cfg);
  assert_result(o, "500500");
  assert_true(failure_has(&o, "agent 2"));
  assert_true(failure_has(&o, "instruction budget of 200000 per activation exceeded"));
}

static void test_infinite_loop_behind_pcall(void **state) {
  (void)state;
  hs_runtime_config cfg;
  hs_runtime_config_init(&cfg);
  cfg.quiet = 1;
  cfg.instruction_budget = 200000;
  outcome o = run_with_sibling(
      "function main(ctx)\n"
      "  while true do pcall(function() while true do end end) end\n"
      "end",
      &cfg);
  assert_result(o, "500500");
  assert_true(failure_has(&o, "instruction budget of 200000 per activation exceeded"));
  /* inside a user coroutine too */
  outcome o2 = run_with_sibling(
      "function main(ctx)\n"
      "  local co = coroutine.wrap(function() while true do pcall(string.rep, 'x', 10) end end)\n"
      "  while true do pcall(co) end\n"
      "end",
      &cfg);
  assert_result(o2, "500500");
  assert_true(failure_has(&o2, "instruction budget"));
}

static void test_budget_is_per_activation(void **state) {
  (void)state;
  hs_runtime_config cfg;
  hs_runtime_config_init(&cfg);
  cfg.quiet = 1;
  cfg.instruction_budget = 200000;
  /* 10 activations of ~100k instructions each: fine, since the budget restarts each time */
  outcome o = run_cfg("function main(ctx) local s = 0 for k = 1, 10 do for i = 1, 25000 do s = s + i end ctx.yield() end return s end",
                      &cfg, 0, NULL);
  assert_result(o, "3125125000");
}

static void test_memory_bomb(void **state) {
  (void)state;
  hs_runtime_config cfg;
  hs_runtime_config_init(&cfg);
  cfg.quiet = 1;
  cfg.agent_memory = 4 << 20;
  outcome o = run_with_sibling(
      "function main(ctx) local t = {} local s = 'x' while true do s = s .. s t[#t + 1] = s end end",
      &cfg);
  assert_result(o, "500500");
  assert_true(failure_has(&o, "agent 2: memory limit of 4194304 bytes exceeded"));
  /* a bomb that swallows its memory errors with pcall is killed too */
  outcome o2 = run_with_sibling(
      "function main(ctx) local t = {} while true do pcall(function() t[#t + 1] = string.rep('y', 65536) end) end end",
      &cfg);
  assert_result(o2, "500500");
  assert_true(failure_has(&o2, "memory limit of 4194304 bytes exceeded"));
}

static void test_no_budget_still_stops_memory_bombs(void **state) {
  (void)state;
  hs_runtime_config cfg;
  hs_runtime_config_init(&cfg);
  cfg.quiet = 1;
  cfg.agent_memory = 4 << 20;
  cfg.instruction_budget = 0; /* no count hook until the allocator kills the agent */
  outcome o = run_with_sibling(
      "function main(ctx) local t = {} while true do pcall(function() t[#t + 1] = string.rep('y', 65536) end) end end",
      &cfg);
  assert_result(o, "500500");
  assert_true(failure_has(&o, "memory limit of 4194304 bytes exceeded"));
  outcome o2 = run_cfg("function main(ctx) local s = 0 for i = 1, 3000000 do s = s + 1 end return s end",
                       &cfg, 0, NULL);
  assert_result(o2, "3000000"); /* no budget: long loops run to the end */
}

static void test_sandbox_globals(void **state) {
  (void)state;
  outcome o = run_src(
      "function main(ctx)\n"
      "  assert(io == nil and os == nil and debug == nil and package == nil)\n"
      "  assert(dofile == nil and loadfile == nil)\n"
      "  assert(string and table and math and utf8 and coroutine)\n"
      "  local f = load('return 1 + 1')\n"
      "  assert(f() == 2)\n"
      "  local env = {y = 5}\n"
      "  assert(load('return y', 'c', 't', env)() == 5)\n"
      "  local bin = string.dump(function() return 3 end)\n"
      "  local g, err = load(bin)\n"
      "  assert(g == nil and err:find('binary'), err)\n"
      "  local ok, e = pcall(load, function() return nil end)\n"
      "  assert(not ok and e:find('only source text'))\n"
      "  local ok2, e2 = pcall(require, 'os')\n"
      "  assert(not ok2 and e2:find(\"module 'os' not found\"), e2)\n"
      "  return 'sandboxed'\n"
      "end\n");
  assert_result(o, "sandboxed");
}

static void test_deterministic_order_and_names(void **state) {
  (void)state;
  outcome o = run_src(
      "function main(ctx)\n"
      "  local f = function() end\n"
      "  local t = {zeta = 1, alpha = 2, [3] = 'three', [1.5] = 'x', [true] = 'y', beta = 3}\n"
      "  local obj = {}\n"
      "  t[obj] = 'o'\n"
      "  local ks = {}\n"
      "  for k in pairs(t) do ks[#ks + 1] = type(k) == 'table' and 'obj' or tostring(k) end\n"
      "  assert(table.concat(ks, ',') == 'true,1.5,3,alpha,beta,zeta,obj', table.concat(ks, ','))\n"
      "  local viaNext, k = {}, nil\n"
      "  repeat k = next(t, k) if k ~= nil then viaNext[#viaNext + 1] = type(k) == 'table' and 'obj' or tostring(k) end until k == nil\n"
      "  assert(table.concat(viaNext, ',') == table.concat(ks, ','), 'next agrees with pairs')\n"
      "  local seen = 0\n"
      "  for key in pairs(t) do t.beta = nil t.zeta = nil seen = seen + 1 end\n" /* removals skip */
      "  assert(seen == 5, 'removed keys are skipped: ' .. seen)\n"
      "  local u = {}\n"
      "  for i = 1, 20 do u['s' .. i] = i end\n"
      "  for i = 1, 20 do u['s' .. i] = nil end\n"
      "  u[100], u[7], u[55], u[2.5] = 1, 2, 3, 4\n"
      "  local us = {}\n"
      "  for k in pairs(u) do us[#us + 1] = k end\n"
      "  assert(table.concat(us, ',') == '2.5,7,55,100', table.concat(us, ','))\n"
      "  local q, qs = {10, 20, 30, 40}, {}\n"
      "  for i, v in pairs(q) do qs[#qs + 1] = i if i == 1 then q[2] = nil end end\n"
      "  assert(table.concat(qs, ',') == '1,3,4', table.concat(qs, ','))\n"
      "  assert(next(q) == 1 and next(q, 1) == 3 and next(q, 4) == nil)\n"
      "  local arr = {10, 20, 30}\n"
      "  local s = ''\n"
      "  for i, v in pairs(arr) do s = s .. i .. '=' .. v .. ' ' end\n"
      "  assert(s == '1=10 2=20 3=30 ')\n"
      "  local mt = setmetatable({}, {__pairs = function(x) return function(_, i) if not i then return 1, 'p' end end, x, nil end})\n"
      "  for i, v in pairs(mt) do assert(i == 1 and v == 'p') end\n"
      "  assert(next({}) == nil)\n"
      "  local a, b = {}, {}\n"
      "  local na, nb = tostring(a), tostring(b)\n"
      "  assert(na:match('^table: #%d+$') and na ~= nb and tostring(a) == na, na)\n"
      "  assert(tostring(f):match('^function: #%d+$'))\n"
      "  assert(tostring(setmetatable({}, {__tostring = function() return 'custom' end})) == 'custom')\n"
      "  print(a, 1, 'x')\n"
      "  return na .. ' ' .. nb\n"
      "end\n");
  outcome o2 = run_src(
      "function main(ctx) local a, b = {}, {} return tostring(a) .. ' ' .. tostring(b) end");
  outcome o3 = run_src(
      "function main(ctx) local a, b = {}, {} return tostring(a) .. ' ' .. tostring(b) end");
  assert_true(o.result_len > 0);
  assert_string_equal(o.result, "table: #2 table: #3"); /* the key object got #1 when sorted */
  /* ids follow execution order, not addresses: every run names objects the same way */
  assert_string_equal(o2.result, "table: #1 table: #2");
  assert_string_equal(o2.result, o3.result);
}

static void test_random_seeded_per_agent(void **state) {
  (void)state;
  const char *src =
      "function main(ctx)\n"
      "  local a = ctx.spawn('function main() return math.random(1, 1000000) end')\n"
      "  local b = ctx.spawn('function main() return math.random(1, 1000000) end')\n"
      "  return math.random(1, 1000000) .. ',' .. tostring(ctx.join(a)) .. ',' .. tostring(ctx.join(b))\n"
      "end\n";
  hs_runtime_config cfg;
  hs_runtime_config_init(&cfg);
  cfg.quiet = 1;
  cfg.seed = 11;
  outcome o1 = run_cfg(src, &cfg, 0, NULL);
  outcome o2 = run_cfg(src, &cfg, 0, NULL);
  cfg.seed = 12;
  outcome o3 = run_cfg(src, &cfg, 0, NULL);
  assert_true(o1.result_len > 0);
  assert_string_equal(o1.result, o2.result);   /* same seed, same numbers */
  assert_string_not_equal(o1.result, o3.result); /* another seed, other numbers */
  int x, y, z;
  assert_int_equal(sscanf(o1.result, "%d,%d,%d", &x, &y, &z), 3);
  assert_true(x != y && y != z); /* each agent its own generator */
}

static void test_failure_in_light_team_spares_teammates(void **state) {
  (void)state;
  outcome o = run_src(
      "function main(ctx)\n"
      "  local ids = {}\n"
      "  for i = 1, 5 do ids[i] = ctx.spawn(function(c, n) if n == 3 then error('member 3 broke') end return n end, i, {team = 4}) end\n"
      "  local s = 0\n"
      "  for i = 1, 5 do local r = ctx.join(ids[i]) if r then s = s + tonumber(tostring(r)) end end\n"
      "  return s\n"
      "end\n");
  assert_result(o, "12");
  assert_true(failure_has(&o, "member 3 broke"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_syntax_error_fails_only_child),
      cmocka_unit_test(test_main_syntax_error),
      cmocka_unit_test(test_missing_main),
      cmocka_unit_test(test_runtime_error),
      cmocka_unit_test(test_infinite_loop),
      cmocka_unit_test(test_infinite_loop_behind_pcall),
      cmocka_unit_test(test_budget_is_per_activation),
      cmocka_unit_test(test_memory_bomb),
      cmocka_unit_test(test_no_budget_still_stops_memory_bombs),
      cmocka_unit_test(test_sandbox_globals),
      cmocka_unit_test(test_deterministic_order_and_names),
      cmocka_unit_test(test_random_seeded_per_agent),
      cmocka_unit_test(test_failure_in_light_team_spares_teammates),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
