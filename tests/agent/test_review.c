/* test_review.c: regression tests for bugs found in review of the agent runtime. Each test fails
 * on the code it was written against and names the bug it catches. */
#include <pthread.h>
#include <time.h>

#include "harness.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A watchdog that unblocks a runtime stuck in wait_for_completion: after `delay` seconds it asks
 * for a stop and posts a completion nobody waits for (so the condition variable is signalled). */
typedef struct watchdog {
  hs_runtime *rt;
  double delay;
  int stop_first;
} watchdog;

static void *watchdog_main(void *p) {
  watchdog *w = p;
  struct timespec ts = {.tv_sec = (time_t)w->delay,
                        .tv_nsec = (long)((w->delay - (double)(time_t)w->delay) * 1e9)};
  nanosleep(&ts, NULL);
  if (w->stop_first) hs_runtime_request_stop(w->rt);
  hs_runtime_op_complete(w->rt, ((hs_op_token)1 << 32) | 0xfffffffu, 0, NULL, 0);
  return NULL;
}

/* Runs src with a watchdog that breaks a hang after 2 s; returns the outcome and whether the
 * run had to be stopped by it. */
static outcome run_guarded(const char *src, int *was_stopped) {
  hs_runtime_config cfg;
  hs_runtime_config_init(&cfg);
  cfg.quiet = 1;
  hs_runtime *rt;
  assert_int_equal(hs_runtime_create(&cfg, &rt), 0);
  assert_int_equal(hs_runtime_spawn_main(rt, write_file("guarded.lua", src), 0, NULL, NULL), 0);
  watchdog w = {.rt = rt, .delay = 2.0, .stop_first = 1};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, watchdog_main, &w), 0);
  outcome o = run_outcome(rt);
  *was_stopped = hs_runtime_was_stopped(rt);
  pthread_join(th, NULL);
  hs_runtime_destroy(rt);
  return o;
}

/* Bug: ctx.sleep (lua_ctx.c ctx_sleep) counts the operation in flight and sets AS_WAIT_OP before
 * lua_yieldk, which fails in a non-yieldable context (a table.sort comparator, a __gc or
 * __tostring metamethod...). The error is caught, but ops_in_flight stays 1 forever, so once
 * nothing else can run hs_runtime_step waits in wait_for_completion for a completion that never
 * comes: the run hangs (and SIGINT cannot stop it, see below). */
static void test_sleep_in_non_yieldable_context_does_not_hang(void **state) {
  (void)state;
  int stopped = 0;
  outcome o = run_guarded(
      "function main(ctx)\n"
      "  local ok = pcall(table.sort, {3, 2, 1}, function(a, b) ctx.sleep(1) return a < b end)\n"
      "  return ok and 'slept' or 'refused'\n"
      "end\n",
      &stopped);
  assert_int_equal(stopped, 0); /* the watchdog had to stop a hung run */
  assert_result(o, "refused");
}

/* Same root cause without pcall: the agent fails, and the run still hangs. */
static void test_failed_sleep_in_non_yieldable_context_ends_the_run(void **state) {
  (void)state;
  int stopped = 0;
  outcome o = run_guarded(
      "function main(ctx)\n"
      "  table.sort({3, 2, 1}, function(a, b) ctx.sleep(1) return a < b end)\n"
      "end\n",
      &stopped);
  assert_int_equal(stopped, 0);
  assert_int_equal(o.stats.failed, 1);
}

/* Bug: ctx.recv (ctx_recv) sets AS_WAIT_MSG before a yield that fails in a non-yieldable context;
 * the agent goes on in state AS_WAIT_MSG, so its next plain ctx.yield() is taken for a wait on a
 * message (rt_run_agent only re-queues AS_RUNNING) and the agent is left blocked forever. */
static void test_recv_in_non_yieldable_context_keeps_agent_running(void **state) {
  (void)state;
  outcome o = run_src(
      "function main(ctx)\n"
      "  pcall(table.sort, {3, 2, 1}, function(a, b) ctx.recv() return a < b end)\n"
      "  ctx.yield()\n"
      "  return 'late'\n"
      "end\n");
  assert_int_equal(o.stats.blocked, 0);
  assert_result(o, "late");
}

/* Bug: ctx.exit (ctx_exit) stores the result and sets a->exiting before a yield that fails in a
 * non-yieldable context; the error is caught, but the next yield of any kind ends the agent with
 * the stale result (and a result later returned from main overwrites a->result without releasing
 * it in rt_finish_agent). */
static void test_exit_in_non_yieldable_context_has_no_effect(void **state) {
  (void)state;
  outcome o = run_src(
      "function main(ctx)\n"
      "  pcall(table.sort, {3, 2, 1}, function(a, b) ctx.exit('early') return a < b end)\n"
      "  ctx.yield()\n"
      "  return 'late'\n"
      "end\n");
  assert_result(o, "late");
}

/* Bug: joining the same child twice blocks forever. rt_take_exit (runtime.c) takes the exit notice
 * but does not set child->notice_taken (rt_take does), so the second ctx.join finds neither the
 * notice nor the flag and waits for a notice that will never come. recv-then-join works. */
static void test_join_twice(void **state) {
  (void)state;
  outcome o = run_src(
      "function main(ctx)\n"
      "  local c = ctx.spawn('function main() return \"x\" end')\n"
      "  local a = ctx.join(c)\n"
      "  local b = ctx.join(c)\n"
      "  return tostring(a) .. tostring(b)\n"
      "end\n");
  assert_int_equal(o.stats.blocked, 0);
  assert_result(o, "xx");
}

/* Bug: hs_runtime_request_stop only sets a flag; wait_for_completion (loop.c) sleeps in
 * pthread_cond_wait and is not woken by it, so a stop (Ctrl-C in `hswarm run`) while an operation
 * is in flight does nothing until some completion arrives. */
static int never_start(hs_runtime *rt, hs_op_token token, hs_agent_id agent, const void *req,
                       size_t len, void *ud) {
  (void)rt, (void)token, (void)agent, (void)req, (void)len, (void)ud;
  return 0; /* never completes */
}

static void *stop_soon(void *p) {
  struct timespec ts = {.tv_sec = 0, .tv_nsec = 200 * 1000 * 1000};
  nanosleep(&ts, NULL);
  hs_runtime_request_stop(p);
  return NULL;
}

static void test_request_stop_wakes_a_wait_for_operations(void **state) {
  (void)state;
  hs_runtime_config cfg;
  hs_runtime_config_init(&cfg);
  cfg.quiet = 1;
  hs_runtime *rt;
  assert_int_equal(hs_runtime_create(&cfg, &rt), 0);
  assert_int_equal(hs_runtime_register_op(rt, "never", HS_OP_EXTERNAL, never_start, NULL), 0);
  assert_int_equal(hs_runtime_spawn_main(
                       rt, write_file("stop.lua", "function main(ctx) ctx.call('never', '') end"),
                       0, NULL, NULL),
                   0);
  pthread_t stopper, guard;
  watchdog w = {.rt = rt, .delay = 3.0, .stop_first = 0}; /* unblocks the bug after 3 s */
  assert_int_equal(pthread_create(&stopper, NULL, stop_soon, rt), 0);
  assert_int_equal(pthread_create(&guard, NULL, watchdog_main, &w), 0);
  double t0 = now_s();
  int rc = hs_runtime_run(rt);
  double took = now_s() - t0;
  pthread_join(stopper, NULL);
  pthread_join(guard, NULL);
  assert_int_equal(rc, 0);
  assert_int_equal(hs_runtime_was_stopped(rt), 1);
  hs_runtime_destroy(rt);
  if (took >= 2.0) fprintf(stderr, "the stop took %.2f s\n", took);
  assert_true(took < 2.0);
}

/* Bug (determinism): every Lua state is made with lua_newstate, whose string-hash seed
 * (luai_makeseed in Debian's liblua5.4) mixes time(NULL) and addresses, so pairs() visits
 * string keys in a different order in every run: the same script and seed give different runs,
 * and a replay of a logged run diverges. */
static void test_pairs_order_replays(void **state) {
  (void)state;
  const char *script = write_file("pairs.lua",
                                  "function main(ctx)\n"
                                  "  local t = {}\n"
                                  "  for i = 1, 32 do t['key' .. i] = i end\n"
                                  "  local ks = {}\n"
                                  "  for k in pairs(t) do ks[#ks + 1] = k end\n"
                                  "  ctx.log(table.concat(ks, ','))\n"
                                  "  return 'ok'\n"
                                  "end\n");
  char log_path[600];
  snprintf(log_path, sizeof log_path, "%s/pairs.log", test_dir);
  hs_runtime_config cfg;
  hs_runtime_config_init(&cfg);
  cfg.quiet = 1;
  cfg.log_path = log_path;
  hs_runtime *rt;
  assert_int_equal(hs_runtime_create(&cfg, &rt), 0);
  assert_int_equal(hs_runtime_spawn_main(rt, script, 0, NULL, NULL), 0);
  assert_int_equal(hs_runtime_run(rt), 0);
  hs_runtime_destroy(rt);
  hs_replay_result res;
  assert_int_equal(hs_runtime_replay(log_path, 1, &res), 0);
  if (!res.identical) fprintf(stderr, "log:    %s\nreplay: %s\n", res.expected, res.actual);
  assert_int_equal(res.identical, 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sleep_in_non_yieldable_context_does_not_hang),
      cmocka_unit_test(test_failed_sleep_in_non_yieldable_context_ends_the_run),
      cmocka_unit_test(test_recv_in_non_yieldable_context_keeps_agent_running),
      cmocka_unit_test(test_exit_in_non_yieldable_context_has_no_effect),
      cmocka_unit_test(test_join_twice),
      cmocka_unit_test(test_request_stop_wakes_a_wait_for_operations),
      cmocka_unit_test(test_pairs_order_replays),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
