/* test_leaks.c: every allocation of the runtime is returned, counted through the allocation hook
 * (so these tests hold without a leak checker). Regression: a native agent ended before its first
 * activation used to keep its copy of the spawn arguments. */
#include "harness.h"
#include "hswarm/alloc.h"
#include "support/counting_alloc.h"

static void test_native_args_freed_when_agent_never_runs(void **state) {
  (void)state;
  hs_alloc_set_hooks(&counting_hooks);
  live_blocks = 0;
  hs_runtime_config cfg;
  hs_runtime_config_init(&cfg);
  cfg.quiet = 1;
  hs_runtime *rt = NULL;
  assert_int_equal(hs_runtime_create(&cfg, &rt), 0);
  hs_agent_id id = 0;
  assert_int_equal(hs_runtime_spawn_native(rt, "echo", 0, "some args", 9, &id), 0);
  hs_runtime_destroy(rt);
  long after = live_blocks;
  hs_alloc_set_hooks(NULL);
  assert_int_equal(after, 0);
}

static void test_native_args_freed_when_max_steps_ends_run(void **state) {
  (void)state;
  hs_runtime_config cfg;
  hs_runtime_config_init(&cfg);
  cfg.quiet = 1;
  cfg.max_steps = 1; /* the native spawned at step 0 would first run at step 1 */
  hs_alloc_set_hooks(&counting_hooks);
  live_blocks = 0;
  outcome o = run_cfg("function main(ctx) ctx.spawn('native:echo', 'args') ctx.recv() end", &cfg,
                      0, NULL);
  long after = live_blocks;
  hs_alloc_set_hooks(NULL);
  assert_int_equal(o.rc, 0);
  assert_int_equal(after, 0);
}

static void test_whole_runs_return_every_allocation(void **state) {
  (void)state;
  hs_alloc_set_hooks(&counting_hooks);
  live_blocks = 0;
  outcome o = run_src(
      "function main(ctx)\n"
      "  local ids = {}\n"
      "  for i = 1, 50 do ids[i] = ctx.spawn(function(c) local m = c.recv() return #m.data end, nil, {team = 2}) end\n"
      "  for i = 1, 10 do ctx.spawn('function main(ctx) ctx.recv() end') end\n" /* left blocked */
      "  ctx.send(ids, string.rep('z', 100))\n"
      "  local h = ctx.memory.write('kept until the end')\n"
      "  for i = 1, 50 do ctx.join(ids[i]) end\n"
      "  return 'ok'\n"
      "end\n");
  long after = live_blocks;
  hs_alloc_set_hooks(NULL);
  assert_result(o, "ok");
  assert_int_equal(o.stats.blocked, 10);
  assert_int_equal(after, 0);
}

static void test_log_needs_main_script(void **state) {
  (void)state;
  hs_runtime_config cfg;
  hs_runtime_config_init(&cfg);
  cfg.quiet = 1;
  cfg.log_path = "/tmp/hswarm-native-only.log";
  hs_runtime *rt;
  assert_int_equal(hs_runtime_create(&cfg, &rt), 0);
  hs_agent_id id;
  assert_int_equal(hs_runtime_spawn_native(rt, "echo", 0, NULL, 0, &id), HS_EINVAL);
  assert_non_null(strstr(hs_runtime_last_error(rt), "needs a Lua main script"));
  hs_runtime_destroy(rt);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_native_args_freed_when_agent_never_runs),
      cmocka_unit_test(test_native_args_freed_when_max_steps_ends_run),
      cmocka_unit_test(test_whole_runs_return_every_allocation),
      cmocka_unit_test(test_log_needs_main_script),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
