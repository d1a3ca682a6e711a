/* test_messages.c: agents, mailboxes, Lamport clocks, lockstep ordering, spawn kinds, join and
 * exit notices, timers, views and handles, through Lua scripts run by the real runtime. */
#include "harness.h"

static void test_main_result_and_args(void **state) {
  (void)state;
  const char *argv[2] = {"alpha", "42"};
  outcome o = run_cfg("function main(ctx, args) return args[1] .. ':' .. args[2] + 1 .. ':' .. "
                      "ctx.id .. ':' .. ctx.parent .. ':' .. ctx.team end",
                      NULL, 2, argv);
  assert_int_equal(o.rc, 0);
  assert_result(o, "alpha:43:1:0:1");
}

static void test_send_recv_fields_and_lamport(void **state) {
  (void)state;
  /* child receives a message, checks fields, replies with its clock */
  outcome o = run_src(
      "local child = [[function main(ctx)\n"
      "  local m = ctx.recv()\n"
      "  assert(m.from == ctx.parent and m.seq == 2 and tostring(m.data) == 'hello')\n"
      "  assert(ctx.clock() == math.max(1, m.clock) + 1, 'lamport on receive')\n"
      "  ctx.send(m.from, ctx.clock())\n"
      "end]]\n"
      "function main(ctx)\n"
      "  local c = ctx.spawn(child)\n"                /* clock 1 */
      "  assert(ctx.clock() == 1)\n"
      "  ctx.send(c, 'hello')\n"                      /* clock 2, seq 2 (spawn is seq 0) */
      "  assert(ctx.clock() == 2)\n"
      "  local m = ctx.recv()\n"
      "  assert(m.clock == tonumber(tostring(m.data)) + 1)\n"
      "  assert(ctx.clock() == m.clock + 1)\n"
      "  return 'ok ' .. ctx.clock()\n"
      "end\n");
  /* the sender's seq counts messages: spawning does not send, so 'hello' is seq 1 */
  (void)o;
  outcome o2 = run_src(
      "local child = [[function main(ctx)\n"
      "  local m = ctx.recv()\n"
      "  assert(m.from == ctx.parent and m.seq == 1 and tostring(m.data) == 'hello', 'fields')\n"
      "  assert(m.clock == 2, 'stamp ' .. m.clock)\n"
      "  assert(ctx.clock() == 3, 'child clock ' .. ctx.clock())\n"
      "  ctx.send(m.from, 'back')\n"
      "end]]\n"
      "function main(ctx)\n"
      "  local c = ctx.spawn(child)\n"
      "  ctx.send(c, 'hello')\n"
      "  local m = ctx.recv()\n"
      "  assert(m.clock == 4, 'reply stamp ' .. m.clock)\n"
      "  assert(ctx.clock() == 5, 'parent clock ' .. ctx.clock())\n"
      "  return 'ok'\n"
      "end\n");
  assert_result(o2, "ok");
}

static void test_lockstep_delivery_order(void **state) {
  (void)state;
  /* Three senders send in the same step; the collector receives in (lamport, sender, seq) order.
   * Sender 4 sends twice, after advancing its clock, so its messages come last. */
  outcome o = run_src(
      "local sender = [[function main(ctx, args)\n"
      "  for i = 1, args.bump do ctx.memory.fence() end\n"
      "  for i = 1, args.count do ctx.send(args.to, ctx.id .. '.' .. i) end\n"
      "end]]\n"
      "function main(ctx)\n"
      "  local col = ctx.spawn([[function main(ctx)\n"
      "    local seen = {}\n"
      "    for i = 1, 4 do seen[i] = tostring(ctx.recv().data) end\n"
      "    return table.concat(seen, ' ')\n"
      "  end]])\n"
      "  ctx.spawn(sender, {to = col, count = 1, bump = 0})\n"
      "  ctx.spawn(sender, {to = col, count = 2, bump = 0})\n"
      "  ctx.spawn(sender, {to = col, count = 1, bump = 0})\n"
      "  local r = ctx.join(col)\n"
      "  return tostring(r)\n"
      "end\n");
  /* All senders start from clock 2,3,4 (parent clock after each spawn): agent 3 stamps 3,
   * agent 4 stamps 4 and 5, agent 5 stamps 5. Order: (3,3) (4,4) (5,4) (5,5). */
  assert_result(o, "3.1 4.1 4.2 5.1");
}

static void test_spawn_kinds(void **state) {
  (void)state;
  outcome o = run_src(
      "function main(ctx)\n"
      "  local shared = {n = 0}\n"
      "  local function light(c, args) args.n = args.n + 1; return 'light' .. c.team end\n"
      "  local a = ctx.spawn(light, shared, {team = 7})\n"
      "  local b = ctx.spawn('function main(c, args) return \"iso\" .. args.x end', {x = 5})\n"
      "  local s = 'function main(c, args) return \"team\" .. c.team .. \":\" .. args end'\n"
      "  local c = ctx.spawn(s, 'v', {kind = 'light', team = 9})\n"
      "  local e = ctx.spawn('native:echo')\n"
      "  ctx.send(e, 'echoed')\n"
      "  local echo = ctx.recv()\n"
      "  while echo.exit do echo = ctx.recv() end\n"
      "  ctx.send(e, 'exit')\n"
      "  local r = {tostring(ctx.join(a)), tostring(ctx.join(b)), tostring(ctx.join(c)),\n"
      "             tostring(echo.data), tostring(ctx.join(e)), tostring(shared.n)}\n"
      "  return table.concat(r, ',')\n"
      "end\n");
  assert_result(o, "light7,iso5,team9:v,echoed,nil,1");
  assert_int_equal(o.stats.spawned, 5);
  assert_int_equal(o.stats.failed, 0);
}

static void test_spawn_script_path_relative(void **state) {
  (void)state;
  write_file("worker.lua", "function main(ctx, args) return args.k * 2 end\n");
  outcome o = run_src("function main(ctx) return tostring(ctx.join(ctx.spawn('worker.lua', {k = 21}))) end");
  assert_result(o, "42");
  outcome o2 = run_src("function main(ctx) ctx.spawn('missing.lua') end");
  assert_true(o2.result_len < 0);
  assert_true(failure_has(&o2, "cannot read script"));
  assert_true(failure_has(&o2, "missing.lua"));
}

static void test_args_cannot_hold_functions_for_isolated(void **state) {
  (void)state;
  outcome o = run_src("function main(ctx) ctx.spawn('function main() end', {f = print}) end");
  assert_true(o.result_len < 0);
  assert_true(failure_has(&o, "args cannot contain a function"));
}

static void test_join_and_exit_notices(void **state) {
  (void)state;
  outcome o = run_src(
      "function main(ctx)\n"
      "  local ok = ctx.spawn('function main(ctx) ctx.exit(\"early\") error(\"not reached\") end')\n"
      "  local bad = ctx.spawn('function main(ctx) error(\"boom\") end')\n"
      "  local quiet = ctx.spawn('function main(ctx) end')\n"
      "  local r1 = ctx.join(ok)\n"
      "  local r2, err = ctx.join(bad)\n"
      "  local m = ctx.recv()\n" /* quiet's exit notice arrives as a message */
      "  assert(m.exit and m.ok and m.from == quiet and m.data == nil)\n"
      "  local r3 = ctx.join(quiet)\n" /* already taken by recv: join still answers */
      "  assert(r3 == nil)\n"
      "  local okj, e = pcall(ctx.join, 999)\n"
      "  assert(not okj and e:find('not a child'))\n"
      "  return tostring(r1) .. '|' .. tostring(r2) .. '|' .. err\n"
      "end\n");
  assert_int_equal(o.rc, 0);
  assert_true(o.result_len > 0);
  assert_non_null(strstr(o.result, "early|nil|"));
  assert_non_null(strstr(o.result, "boom"));
  assert_int_equal(o.stats.failed, 1);
  assert_true(failure_has(&o, "boom"));
}

static void test_sleep_and_recv_timeout(void **state) {
  (void)state;
  outcome o = run_src(
      "function main(ctx)\n"
      "  local t0 = ctx.now()\n"
      "  ctx.sleep(5)\n"
      "  local t1 = ctx.now()\n"
      "  local m = ctx.recv(3)\n"
      "  local t2 = ctx.now()\n"
      "  assert(m == nil)\n"
      "  assert(ctx.recv(0) == nil)\n"
      "  return (t1 - t0) .. ',' .. (t2 - t1)\n"
      "end\n");
  assert_result(o, "5,3");
  /* a message before the timeout wins, and the stale timer does not wake the agent later */
  outcome o2 = run_src(
      "function main(ctx)\n"
      "  local c = ctx.spawn('function main(ctx) ctx.sleep(2) ctx.send(ctx.parent, \"hi\") end')\n"
      "  local m = ctx.recv(10)\n"
      "  local at = ctx.now()\n"
      "  local m2 = ctx.recv(20)\n"
      "  return tostring(m.data) .. at .. ',' .. tostring(m2 and m2.exit) .. ',' .. ctx.now()\n"
      "end\n");
  assert_result(o2, "hi4,true,4"); /* spawned at 0, runs at 1, sends at 3, arrives at 4 */
}

static void test_views_and_handles(void **state) {
  (void)state;
  outcome o = run_src(
      "function main(ctx)\n"
      "  local h = ctx.memory.write('hello, shared world')\n"
      "  local v = ctx.memory.read(h)\n"
      "  assert(#v == 19 and v:sub(8, 13) == 'shared' and v:sub(-5) == 'world')\n"
      "  local i, j = v:find('world', 1, true)\n"
      "  assert(i == 15 and j == 19 and v:find('nope', 1, true) == nil)\n"
      "  assert(v:find('s%a+') == 8)\n"
      "  assert(v:byte(1) == 104 and tostring(v) == 'hello, shared world')\n"
      "  assert(v:handle() == h and v == ctx.memory.read(h))\n"
      "  local c = ctx.spawn('function main(ctx) local m = ctx.recv() ctx.send(ctx.parent, m.data:handle()) end')\n"
      "  ctx.send(c, h)\n"
      "  local back = ctx.recv()\n"
      "  assert(back.data:handle() == h, 'same blob, not a copy')\n"
      "  ctx.memory.release(h)\n"
      "  local ok, err = pcall(ctx.memory.release, h)\n"
      "  assert(not ok and err:find('does not hold'))\n"
      "  return 'ok'\n"
      "end\n");
  assert_result(o, "ok");
}

static void test_stale_handle(void **state) {
  (void)state;
  outcome o = run_src(
      "function main(ctx)\n"
      "  local h = ctx.memory.write('x')\n"
      "  ctx.memory.release(h)\n"
      "  collectgarbage()\n"
      "  local ok, err = pcall(ctx.memory.read, h)\n"
      "  assert(not ok and err:find('stale'), err)\n"
      "  ok, err = pcall(ctx.send, ctx.id, h)\n"
      "  assert(not ok and err:find('stale'), err)\n"
      "  ctx.memory.read(h)\n"
      "end\n");
  assert_true(o.result_len < 0);
  assert_true(failure_has(&o, "ctx.memory.read: stale or invalid handle"));
}

static void test_unknown_recipient_and_bad_values(void **state) {
  (void)state;
  outcome o = run_src(
      "function main(ctx)\n"
      "  local ok, err = pcall(ctx.send, 12345, 'x')\n"
      "  assert(not ok and err:find('agent 1 sent to agent 12345, which does not exist'), err)\n"
      "  ok, err = pcall(ctx.send, ctx.id, {})\n"
      "  assert(not ok and err:find('a table cannot be sent'), err)\n"
      "  ok, err = pcall(ctx.send, ctx, 'x')\n"
      "  assert(not ok and err:find('ctx.send, not ctx:send'), err)\n"
      "  ctx.send(777, 'unguarded')\n"
      "end\n");
  assert_true(o.result_len < 0);
  assert_true(failure_has(&o, "agent 1 (main.lua): main.lua:8: ctx.send: agent 1 sent to agent 777"));
  assert_int_equal(o.stats.failed, 1);
}

static void test_mailbox_full(void **state) {
  (void)state;
  hs_runtime_config cfg;
  hs_runtime_config_init(&cfg);
  cfg.quiet = 1;
  cfg.mailbox_capacity = 3;
  outcome o = run_cfg(
      "function main(ctx)\n"
      "  local c = ctx.spawn('function main(ctx) ctx.sleep(5) local n = 0 while ctx.recv(0) do n = n + 1 end return n end')\n"
      "  for i = 1, 3 do ctx.send(c, i) end\n"
      "  local ok, err = pcall(ctx.send, c, 4)\n"
      "  assert(not ok and err:find('mailbox is full %(3 messages%)'), err)\n"
      "  return tostring(ctx.join(c))\n"
      "end\n",
      &cfg, 0, NULL);
  assert_result(o, "3"); /* nothing already sent was lost */
}

static void test_arena_full(void **state) {
  (void)state;
  hs_runtime_config cfg;
  hs_runtime_config_init(&cfg);
  cfg.quiet = 1;
  cfg.arena_bytes = 1 << 20;
  outcome o = run_cfg(
      "function main(ctx)\n"
      "  local keep = ctx.memory.write(string.rep('k', 1000))\n"
      "  local big = string.rep('x', 100000)\n"
      "  local n, ok, err = 0, true, nil\n"
      "  while ok do ok, err = pcall(ctx.memory.write, big) n = n + 1 end\n"
      "  assert(err:find('arena full'), err)\n"
      "  assert(#ctx.memory.read(keep) == 1000, 'stored data intact')\n"
      "  return n - 1\n"
      "end\n",
      &cfg, 0, NULL);
  assert_result(o, "10");
}

static void test_blocking_inside_user_coroutines(void **state) {
  (void)state;
  outcome o = run_src(
      "function main(ctx)\n"
      "  local c = ctx.spawn('function main(ctx) for i = 1, 3 do ctx.send(ctx.parent, i) end end')\n"
      "  local co = coroutine.wrap(function()\n"
      "    local got = {}\n"
      "    for i = 1, 3 do got[i] = tostring(ctx.recv().data) coroutine.yield(i) end\n"
      "    ctx.sleep(2)\n"
      "    return table.concat(got)\n"
      "  end)\n"
      "  local ys = co() .. co() .. co()\n"
      "  local inner = coroutine.create(function() return ctx.join(c) end)\n"
      "  local ok, r = coroutine.resume(inner)\n"
      "  assert(ok and r == nil and coroutine.status(inner) == 'dead')\n"
      "  return ys .. ':' .. co()\n"
      "end\n");
  assert_result(o, "123:123");
}

static void test_plain_yield_runs_next_step(void **state) {
  (void)state;
  outcome o = run_src(
      "function main(ctx)\n"
      "  local t = ctx.now()\n"
      "  coroutine.yield()\n"
      "  ctx.yield()\n"
      "  return ctx.now() - t\n"
      "end\n");
  assert_result(o, "2");
}

static void test_exit_result_types(void **state) {
  (void)state;
  outcome o = run_src("function main(ctx) ctx.exit(true) end");
  assert_result(o, "true");
  outcome o2 = run_src("function main(ctx) return 2.5 end");
  assert_result(o2, "2.5");
  outcome o3 = run_src("function main(ctx) return {} end");
  assert_true(o3.result_len < 0);
  assert_true(failure_has(&o3, "a table cannot be sent"));
}

static void test_blocked_agents_end_the_run(void **state) {
  (void)state;
  outcome o = run_src(
      "function main(ctx)\n"
      "  for i = 1, 3 do ctx.spawn('function main(ctx) ctx.recv() end') end\n"
      "  return 'done'\n"
      "end\n");
  assert_result(o, "done");
  assert_int_equal(o.stats.blocked, 3);
  assert_int_equal(o.rc, 0);
}

static void test_free_mode_same_results(void **state) {
  (void)state;
  const char *src =
      "function main(ctx)\n"
      "  local ids = {}\n"
      "  for i = 1, 20 do ids[i] = ctx.spawn('function main(ctx, a) local m = ctx.recv() ctx.send(ctx.parent, a * #m.data) end', i, {kind = 'light'}) end\n"
      "  for i = 1, 20 do ctx.send(ids[i], string.rep('x', i)) end\n"
      "  local s = 0\n"
      "  for i = 1, 40 do local m = ctx.recv() if not m.exit then s = s + tonumber(tostring(m.data)) end end\n"
      "  return s\n"
      "end\n";
  hs_runtime_config cfg;
  hs_runtime_config_init(&cfg);
  cfg.quiet = 1;
  cfg.mode = HS_MODE_FREE;
  outcome o = run_cfg(src, &cfg, 0, NULL);
  assert_result(o, "2870");
  outcome o2 = run_src(src);
  assert_result(o2, "2870");
}

static void test_max_steps(void **state) {
  (void)state;
  hs_runtime_config cfg;
  hs_runtime_config_init(&cfg);
  cfg.quiet = 1;
  cfg.max_steps = 10;
  outcome o = run_cfg("function main(ctx) while true do ctx.sleep(3) end end", &cfg, 0, NULL);
  assert_int_equal(o.rc, 0);
  assert_int_equal(o.stats.step, 10);
  assert_int_equal(o.stats.alive, 1);
}

static void test_multicast_send(void **state) {
  (void)state;
  outcome o = run_src(
      "function main(ctx)\n"
      "  local ids = {}\n"
      "  for i = 1, 5 do ids[i] = ctx.spawn(function(c) local m = c.recv() c.send(c.parent, m.data:handle()) end) end\n"
      "  ctx.send(ids, 'same blob for all')\n"
      "  local first\n"
      "  for _, m in ipairs(require('swarm').gather(ctx, 5)) do\n"
      "    first = first or m.data:handle()\n"
      "    assert(m.data:handle() == first and tostring(m.data) == 'same blob for all')\n"
      "  end\n"
      "  local ok, err = pcall(ctx.send, {ids[1], 999, ids[2]}, 'x')\n"
      "  assert(not ok and err:find('agent 999, which does not exist'), err)\n"
      "  ok, err = pcall(ctx.send, {ids[1], 'nope'}, 'x')\n"
      "  assert(not ok and err:find('does not exist'), err)\n"
      "  ctx.send({}, 'nobody')\n"
      "  local s = require('swarm')\n"
      "  assert(s.majority({3, 1, 3, 1}) == '1' and select(2, s.majority({'b', 'a', 'b'})) == 2)\n"
      "  return 'ok'\n"
      "end\n");
  assert_result(o, "ok");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_main_result_and_args),
      cmocka_unit_test(test_send_recv_fields_and_lamport),
      cmocka_unit_test(test_lockstep_delivery_order),
      cmocka_unit_test(test_spawn_kinds),
      cmocka_unit_test(test_spawn_script_path_relative),
      cmocka_unit_test(test_args_cannot_hold_functions_for_isolated),
      cmocka_unit_test(test_join_and_exit_notices),
      cmocka_unit_test(test_sleep_and_recv_timeout),
      cmocka_unit_test(test_views_and_handles),
      cmocka_unit_test(test_stale_handle),
      cmocka_unit_test(test_unknown_recipient_and_bad_values),
      cmocka_unit_test(test_mailbox_full),
      cmocka_unit_test(test_arena_full),
      cmocka_unit_test(test_blocking_inside_user_coroutines),
      cmocka_unit_test(test_plain_yield_runs_next_step),
      cmocka_unit_test(test_exit_result_types),
      cmocka_unit_test(test_blocked_agents_end_the_run),
      cmocka_unit_test(test_free_mode_same_results),
      cmocka_unit_test(test_max_steps),
      cmocka_unit_test(test_multicast_send),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
