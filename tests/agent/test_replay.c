/* test_replay.c: the event log and replay. Same script and seed give byte-identical logs; a replay
 * confirms identity (10,000 agents); a changed script is caught as a divergence naming the record
 * and agent; corrupt and truncated logs give clear errors; results of external operations,
 * completed by another thread, are fed back from the log; step-bound operations all arrive at the
 * next step whatever their durations; on_destroy functions run in reverse order. */
#include <pthread.h>

#include "harness.h"

static long file_size(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return -1;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fclose(f);
  return n;
}

static char *read_all(const char *path, long *len) {
  *len = file_size(path);
  assert_true(*len > 0);
  char *buf = malloc((size_t)*len);
  FILE *f = fopen(path, "rb");
  assert_int_equal(fread(buf, 1, (size_t)*len, f), (size_t)*len);
  fclose(f);
  return buf;
}

static void write_all(const char *path, const char *buf, long len) {
  FILE *f = fopen(path, "wb");
  fwrite(buf, 1, (size_t)len, f);
  fclose(f);
}

/* Runs script (a path) with a log at log_path; returns the runtime's run code. */
static int run_logged(const char *script, const char *log_path, hs_mode mode, int argc,
                      const char *const *argv, void (*setup)(hs_runtime *)) {
  hs_runtime_config cfg;
  hs_runtime_config_init(&cfg);
  cfg.quiet = 1;
  cfg.seed = 5;
  cfg.mode = mode;
  cfg.log_path = log_path;
  hs_runtime *rt;
  assert_int_equal(hs_runtime_create(&cfg, &rt), 0);
  if (setup) setup(rt);
  assert_int_equal(hs_runtime_spawn_main(rt, script, argc, argv, NULL), 0);
  int rc = hs_runtime_run(rt);
  hs_runtime_destroy(rt);
  return rc;
}

static const char *vote_script =
    "function main(ctx, args)\n"
    "  local ids = {}\n"
    "  for i = 1, 8 do\n"
    "    ids[i] = ctx.spawn(function(c)\n"
    "      local peers = c.recv()\n"
    "      ctx.sleep(math.random(1, 3))\n"
    "      ctx.send(c.parent, math.random(1, 5))\n"
    "      c.log('voted')\n"
    "    end, nil, {team = 3})\n"
    "  end\n"
    "  for i = 1, 8 do ctx.send(ids[i], 'go') end\n"
    "  local sum = 0\n"
    "  for i = 1, 16 do local m = ctx.recv() if not m.exit then sum = sum + tonumber(tostring(m.data)) end end\n"
    "  return sum\n"
    "end\n";

static void test_same_seed_identical_logs(void **state) {
  (void)state;
  const char *script = write_file("vote.lua", vote_script);
  char a[600], b[600];
  snprintf(a, sizeof a, "%s/a.log", test_dir);
  snprintf(b, sizeof b, "%s/b.log", test_dir);
  for (int mode = 0; mode <= 1; mode++) {
    assert_int_equal(run_logged(script, a, (hs_mode)mode, 0, NULL, NULL), 0);
    assert_int_equal(run_logged(script, b, (hs_mode)mode, 0, NULL, NULL), 0);
    long la, lb;
    char *x = read_all(a, &la), *y = read_all(b, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(x, y, (size_t)la);
    free(x);
    free(y);
    hs_replay_result res;
    assert_int_equal(hs_runtime_replay(a, 1, &res), 0);
    assert_true(res.identical);
    assert_true(res.records > 40);
  }
}

static void test_replay_10000_agents_and_changed_script(void **state) {
  (void)state;
  char script[600], logp[600];
  const char *src = getenv("HS_SOURCE_DIR");
  assert_non_null(src);
  snprintf(script, sizeof script, "%s/examples/fanout.lua", src);
  snprintf(logp, sizeof logp, "%s/fan.log", test_dir);
  const char *argv[3] = {"10000", "100", "light"};
  assert_int_equal(run_logged(script, logp, HS_MODE_LOCKSTEP, 3, argv, NULL), 0);
  hs_replay_result res;
  assert_int_equal(hs_runtime_replay(logp, 1, &res), 0);
  assert_true(res.identical);
  assert_true(res.records >= 3 * 10000);

  /* the same run from a copy of the script, then the copy changed: a divergence */
  long len;
  char *text = read_all(script, &len);
  const char *copy = write_file("fanout.lua", "");
  write_all(copy, text, len);
  assert_int_equal(run_logged(copy, logp, HS_MODE_LOCKSTEP, 3, argv, NULL), 0);
  char *edit = strstr(text, "s = s + i * i");
  assert_non_null(edit);
  memcpy(edit, "s = s + i + i", 13);
  write_all(copy, text, len);
  free(text);
  assert_int_equal(hs_runtime_replay(logp, 1, &res), 0);
  assert_false(res.identical);
  assert_true(res.script_changed);
  assert_int_equal(res.record, 1); /* the first spawn names the script's hash */
  assert_int_equal(res.agent, 1);
  assert_non_null(strstr(res.expected, "spawn"));
}

static void test_changed_behaviour_found_late(void **state) {
  (void)state;
  /* the main script is unchanged; a spawned script changes what it sends */
  const char *child = write_file("child.lua", "function main(ctx) ctx.send(ctx.parent, 'v1') end\n");
  (void)child;
  const char *script = write_file("parent.lua",
                                  "function main(ctx)\n"
                                  "  for i = 1, 3 do ctx.spawn('child.lua') end\n"
                                  "  for i = 1, 6 do ctx.recv() end\n"
                                  "end\n");
  char logp[600];
  snprintf(logp, sizeof logp, "%s/late.log", test_dir);
  assert_int_equal(run_logged(script, logp, HS_MODE_LOCKSTEP, 0, NULL, NULL), 0);
  write_file("child.lua", "function main(ctx) ctx.send(ctx.parent, 'v2') end\n");
  hs_replay_result res;
  assert_int_equal(hs_runtime_replay(logp, 1, &res), 0);
  assert_false(res.identical);
  assert_false(res.script_changed);
  assert_int_equal(res.agent, 2);           /* the first spawn of the changed child script */
  assert_non_null(strstr(res.expected, "spawn step=0 agent=2"));
  write_file("child.lua", "function main(ctx) ctx.send(ctx.parent, 'v1') end\n");
  assert_int_equal(hs_runtime_replay(logp, 1, &res), 0);
  assert_true(res.identical);
}

static void test_corrupt_and_truncated_logs(void **state) {
  (void)state;
  const char *script = write_file("vote.lua", vote_script);
  char logp[600], bad[600];
  snprintf(logp, sizeof logp, "%s/c.log", test_dir);
  snprintf(bad, sizeof bad, "%s/bad.log", test_dir);
  assert_int_equal(run_logged(script, logp, HS_MODE_LOCKSTEP, 0, NULL, NULL), 0);
  long len;
  char *buf = read_all(logp, &len);
  /* a flipped byte in the middle: the replay stops with a corrupt-record error or divergence */
  buf[len / 2] ^= 0x40;
  write_all(bad, buf, len);
  hs_replay_result res;
  int rc = hs_runtime_replay(bad, 1, &res);
  assert_true(rc == 0 ? !res.identical : rc == HS_ECORRUPT);
  if (rc == 0) assert_non_null(strstr(res.expected, "checksum"));
  buf[len / 2] ^= 0x40;
  /* cut short: identical up to the cut, then reported as a log ending inside a record */
  write_all(bad, buf, len - 7);
  assert_int_equal(hs_runtime_replay(bad, 1, &res), 0);
  assert_false(res.identical);
  assert_non_null(strstr(res.expected, "partial record"));
  /* not a log at all */
  write_all(bad, "hello world, not a log", 22);
  assert_int_equal(hs_runtime_replay(bad, 1, &res), HS_ECORRUPT);
  assert_non_null(strstr(hs_runtime_replay_error(), "not an hswarm event log"));
  assert_int_not_equal(hs_runtime_replay("/nonexistent/x.log", 1, &res), 0);
  free(buf);
}

/* ---- external operations ---- */

typedef struct ext_job {
  hs_runtime *rt;
  hs_op_token token;
  char reply[64];
} ext_job;

static void *ext_thread(void *p) {
  ext_job *j = p;
  usleep(2000);
  hs_runtime_op_complete(j->rt, j->token, 0, j->reply, strlen(j->reply));
  free(j);
  return NULL;
}

static int ext_start(hs_runtime *rt, hs_op_token token, hs_agent_id agent, const void *req,
                     size_t len, void *ud) {
  (void)ud;
  ext_job *j = malloc(sizeof *j);
  j->rt = rt;
  j->token = token;
  snprintf(j->reply, sizeof j->reply, "agent %u asked %.*s", agent, (int)len, (const char *)req);
  pthread_t t;
  pthread_create(&t, NULL, ext_thread, j);
  pthread_detach(t);
  return 0;
}

static void setup_ext(hs_runtime *rt) {
  assert_int_equal(hs_runtime_register_op(rt, "ext", HS_OP_EXTERNAL, ext_start, NULL), 0);
}

static void test_external_ops_from_threads_and_replay(void **state) {
  (void)state;
  const char *script = write_file("ext.lua",
                                  "function main(ctx)\n"
                                  "  local ids = {}\n"
                                  "  for i = 1, 4 do ids[i] = ctx.spawn(function(c) return ctx.call('ext', 'q' .. c.id) end) end\n"
                                  "  local out = {}\n"
                                  "  for i = 1, 4 do out[i] = tostring(ctx.join(ids[i])) end\n"
                                  "  local ok, err = pcall(ctx.call, 'nope', '')\n"
                                  "  assert(not ok and err:find('no operation kind \"nope\"'))\n"
                                  "  return table.concat(out, ';')\n"
                                  "end\n");
  char logp[600];
  snprintf(logp, sizeof logp, "%s/ext.log", test_dir);
  for (int mode = 0; mode <= 1; mode++) {
    assert_int_equal(run_logged(script, logp, (hs_mode)mode, 0, NULL, setup_ext), 0);
    hs_replay_result res; /* no "ext" registered in the replay: results come from the log */
    assert_int_equal(hs_runtime_replay(logp, 1, &res), 0);
    if (!res.identical) fprintf(stderr, "%s\n%s\n", res.expected, res.actual);
    assert_true(res.identical);
  }
  hs_runtime_config cfg;
  hs_runtime_config_init(&cfg);
  cfg.quiet = 1;
  hs_runtime *rt;
  assert_int_equal(hs_runtime_create(&cfg, &rt), 0);
  setup_ext(rt);
  assert_int_equal(hs_runtime_spawn_main(rt, script, 0, NULL, NULL), 0);
  assert_int_equal(hs_runtime_run(rt), 0);
  char result[256];
  assert_true(hs_runtime_main_result(rt, result, sizeof result) > 0);
  assert_string_equal(result, "agent 2 asked q2;agent 3 asked q3;agent 4 asked q4;agent 5 asked q5");
  assert_int_equal(hs_runtime_op_complete(rt, 0, 0, NULL, 0), HS_ENOENT);
  hs_runtime_destroy(rt);
}

/* ---- step-bound operations ---- */

typedef struct slow_job {
  hs_runtime *rt;
  hs_op_token token;
  int ms;
} slow_job;

static void *slow_thread(void *p) {
  slow_job *j = p;
  usleep((useconds_t)j->ms * 1000);
  hs_runtime_op_complete(j->rt, j->token, 0, "done", 4);
  free(j);
  return NULL;
}

/* request: milliseconds to wait before completing, from a thread of its own */
static int slow_start(hs_runtime *rt, hs_op_token token, hs_agent_id agent, const void *req,
                      size_t len, void *ud) {
  (void)agent, (void)ud, (void)len;
  slow_job *j = malloc(sizeof *j);
  *j = (slow_job){rt, token, atoi((const char *)req)};
  pthread_t t;
  pthread_create(&t, NULL, slow_thread, j);
  pthread_detach(t);
  return 0;
}

static void setup_bound(hs_runtime *rt) {
  assert_int_equal(
      hs_runtime_register_op(rt, "slow", HS_OP_EXTERNAL | HS_OP_STEP_BOUND, slow_start, NULL), 0);
}

static void setup_unbound(hs_runtime *rt) {
  assert_int_equal(hs_runtime_register_op(rt, "slow", HS_OP_EXTERNAL, slow_start, NULL), 0);
}

/* Four agents start operations of 0 to 150 ms in the same step. Step-bound: all four results
 * come at the next step (lockstep), whatever the durations, and the run replays. Not step-bound:
 * the slow ones come later (which shows the test can tell). */
static void test_step_bound_ops_arrive_next_step(void **state) {
  (void)state;
  const char *script = write_file("bound.lua",
                                  "local delays = {150, 0, 60, 5}\n"
                                  "function main(ctx)\n"
                                  "  local ids = {}\n"
                                  "  for i = 1, 4 do ids[i] = ctx.spawn(function(c)\n"
                                  "    local t0 = c.now()\n"
                                  "    assert(c.call('slow', tostring(delays[i])) == 'done')\n"
                                  "    return tostring(c.now() - t0)\n"
                                  "  end) end\n"
                                  "  local out = {}\n"
                                  "  for i = 1, 4 do out[i] = tostring(ctx.join(ids[i])) end\n"
                                  "  return table.concat(out, ',')\n"
                                  "end\n");
  char logp[600];
  snprintf(logp, sizeof logp, "%s/bound.log", test_dir);
  for (int bound = 1; bound >= 0; bound--) {
    hs_runtime_config cfg;
    hs_runtime_config_init(&cfg);
    cfg.quiet = 1;
    cfg.log_path = logp;
    hs_runtime *rt;
    assert_int_equal(hs_runtime_create(&cfg, &rt), 0);
    (bound ? setup_bound : setup_unbound)(rt);
    assert_int_equal(hs_runtime_spawn_main(rt, script, 0, NULL, NULL), 0);
    assert_int_equal(hs_runtime_run(rt), 0);
    char res[64];
    assert_true(hs_runtime_main_result(rt, res, sizeof res) > 0);
    if (bound)
      assert_string_equal(res, "1,1,1,1");
    else
      assert_string_not_equal(res, "1,1,1,1");
    hs_runtime_destroy(rt);
    hs_replay_result rr;
    assert_int_equal(hs_runtime_replay(logp, 1, &rr), 0);
    assert_true(rr.identical);
  }
}

static char destroyed[32];
static void mark_destroyed(void *ud) { strncat(destroyed, (const char *)ud, 1); }

static void test_on_destroy_order(void **state) {
  (void)state;
  hs_runtime_config cfg;
  hs_runtime_config_init(&cfg);
  hs_runtime *rt;
  assert_int_equal(hs_runtime_create(&cfg, &rt), 0);
  assert_int_equal(hs_runtime_on_destroy(rt, mark_destroyed, "a"), 0);
  assert_int_equal(hs_runtime_on_destroy(rt, mark_destroyed, "b"), 0);
  assert_int_equal(hs_runtime_on_destroy(rt, NULL, NULL), HS_EINVAL);
  for (int i = 2; i < 16; i++) assert_int_equal(hs_runtime_on_destroy(rt, mark_destroyed, "c"), 0);
  assert_int_equal(hs_runtime_on_destroy(rt, mark_destroyed, "d"), HS_ELIMIT);
  destroyed[0] = 0;
  hs_runtime_destroy(rt);
  assert_string_equal(destroyed, "ccccccccccccccba"); /* reverse order of registration */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_same_seed_identical_logs),
      cmocka_unit_test(test_replay_10000_agents_and_changed_script),
      cmocka_unit_test(test_changed_behaviour_found_late),
      cmocka_unit_test(test_corrupt_and_truncated_logs),
      cmocka_unit_test(test_external_ops_from_threads_and_replay),
      cmocka_unit_test(test_step_bound_ops_arrive_next_step),
      cmocka_unit_test(test_on_destroy_order),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
