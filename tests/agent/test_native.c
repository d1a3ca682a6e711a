/* test_native.c: native (C) agents through the public API (include/hswarm/runtime.h): registering
 * kinds, per-agent state, spawning from Lua and from C, pure-native runs with the built-in "echo"
 * kind, failures, on_destroy, the calling rules of hs_native_*, and the latency probe.
 *
 * Callbacks never use cmocka's assertions (they would jump out through the library's frames): a
 * callback that sees something wrong returns an error, which fails its agent, and the test checks
 * the agent's outcome. */
#include "harness.h"

/* ---- helpers ---- */

/* Runs src as the main script of rt (natives registered beforehand) and fills *o; rt survives. */
static void run_main_in(hs_runtime *rt, const char *src, outcome *o) {
  const char *path = write_file("main.lua", src);
  int rc = hs_runtime_spawn_main(rt, path, 0, NULL, NULL);
  if (rc) fprintf(stderr, "spawn_main: %s\n", hs_runtime_last_error(rt));
  assert_int_equal(rc, 0);
  memset(o, 0, sizeof *o);
  o->rc = hs_runtime_run(rt);
  hs_runtime_get_stats(rt, &o->stats);
  o->result_len = hs_runtime_main_result(rt, o->result, sizeof o->result);
  const char *f[8];
  o->nfailures = hs_runtime_failures(rt, f, 8);
  for (size_t i = 0; i < o->nfailures; i++)
    snprintf(o->failures[i], sizeof o->failures[i], "%s", f[i]);
}

static hs_runtime *new_runtime(hs_mode mode) {
  hs_runtime_config cfg;
  hs_runtime_config_init(&cfg);
  cfg.quiet = 1;
  cfg.mode = mode;
  hs_runtime *rt = NULL;
  assert_int_equal(hs_runtime_create(&cfg, &rt), 0);
  assert_non_null(rt);
  return rt;
}

/* Copies the payload of h (or "" for none) into buf as a C string; returns the length or an error. */
static long payload(hs_runtime *rt, hs_handle h, char *buf, size_t size) {
  buf[0] = 0;
  if (h == HS_HANDLE_NONE) return 0;
  const void *p = NULL;
  size_t len = 0;
  int rc = hs_arena_read(hs_runtime_arena(rt), h, &p, &len);
  if (rc) return rc;
  if (len >= size) return HS_EINVAL;
  memcpy(buf, p, len);
  buf[len] = 0;
  return (long)len;
}

/* ---- the "adder" kind: sums the numbers it receives, exits with the sum on "done" ---- */

#define MAX_IDS 64

typedef struct kind_counts {
  int starts, messages, exits_seen, destroys;
  int destroyed[MAX_IDS];   /* on_destroy calls per agent id */
  char args[64];            /* args of the last start */
  long args_len;
  int bad_ud;               /* a callback saw an unexpected kind_ud */
} kind_counts;

typedef struct adder {
  kind_counts *counts;
  hs_agent_id self;
  long long sum;
} adder;

static int adder_start(hs_runtime *rt, hs_agent_id self, const void *args, size_t len,
                       void *kind_ud, void **state) {
  (void)rt;
  kind_counts *c = kind_ud;
  c->starts++;
  c->args_len = (long)len;
  snprintf(c->args, sizeof c->args, "%.*s", (int)len, args ? (const char *)args : "");
  adder *a = calloc(1, sizeof *a);
  if (!a) return HS_ENOMEM;
  a->counts = c;
  a->self = self;
  *state = a;
  return 0;
}

static int adder_message(hs_runtime *rt, hs_agent_id self, const hs_native_msg *msg, void *state) {
  adder *a = state;
  if (!a || a->self != self) return HS_EINVAL;
  a->counts->messages++;
  if (msg->is_exit) {
    a->counts->exits_seen++;
    return 0;
  }
  char buf[64];
  long len = payload(rt, msg->data, buf, sizeof buf);
  if (len < 0) return (int)len;
  if (!strcmp(buf, "done")) {
    char out[32];
    int n = snprintf(out, sizeof out, "%lld", a->sum);
    return hs_native_exit(rt, self, out, (size_t)n);
  }
  char *end = NULL;
  long long v = strtoll(buf, &end, 10);
  if (len == 0 || *end) return HS_EINVAL; /* not a number: fail the agent */
  a->sum += v;
  return 0;
}

static void adder_destroy(void *state) {
  adder *a = state;
  if (!a) return;
  if (a->self < MAX_IDS) a->counts->destroyed[a->self]++;
  a->counts->destroys++;
  free(a);
}

static const hs_native_agent adder_vt = {adder_start, adder_message, adder_destroy};

/* ---- tests: native agents spawned from Lua ---- */

static void test_adder_spawned_from_lua(void **state) {
  (void)state;
  for (int mode = HS_MODE_LOCKSTEP; mode <= HS_MODE_FREE; mode++) {
    kind_counts counts;
    memset(&counts, 0, sizeof counts);
    hs_runtime *rt = new_runtime((hs_mode)mode);
    assert_int_equal(hs_runtime_register_native(rt, "adder", &adder_vt, &counts), 0);
    outcome o;
    run_main_in(rt,
                "function main(ctx, args)\n"
                "  local a = ctx.spawn('native:adder', 'args')\n"
                "  local b = ctx.spawn('native:adder', 'args')\n"
                "  for i = 1, 10 do ctx.send(a, i) end\n"
                "  ctx.send(b, 100)\n"
                "  ctx.send(b, -300)\n"
                "  ctx.send(a, 'done')\n"
                "  ctx.send(b, 'done')\n"
                "  return tostring(ctx.join(a)) .. ',' .. tostring(ctx.join(b))\n"
                "end\n",
                &o);
    assert_int_equal(o.rc, 0);
    assert_result(o, "55,-200"); /* each agent kept its own sum */
    assert_int_equal(o.stats.spawned, 3);
    assert_int_equal(o.stats.exited, 3);
    assert_int_equal(o.stats.failed, 0);
    assert_int_equal(o.stats.alive, 0);
    assert_int_equal(counts.starts, 2);
    assert_string_equal(counts.args, "args");
    assert_int_equal(counts.args_len, 4);
    assert_int_equal(counts.messages, 10 + 1 + 2 + 1); /* nothing after "done" */
    /* each agent's state was destroyed when it exited, once */
    assert_int_equal(counts.destroys, 2);
    assert_int_equal(counts.destroyed[2], 1);
    assert_int_equal(counts.destroyed[3], 1);
    hs_runtime_destroy(rt);
    assert_int_equal(counts.destroys, 2);
  }
}

static void test_native_failure_and_on_destroy_once_per_agent(void **state) {
  (void)state;
  kind_counts counts;
  memset(&counts, 0, sizeof counts);
  hs_runtime *rt = new_runtime(HS_MODE_LOCKSTEP);
  assert_int_equal(hs_runtime_register_native(rt, "adder", &adder_vt, &counts), 0);
  outcome o;
  /* agent 2 exits normally, agent 3 fails on a bad number, agent 4 is never told "done" and is
   * still waiting when the run ends */
  run_main_in(rt,
              "function main(ctx)\n"
              "  local ok = ctx.spawn('native:adder')\n"
              "  local bad = ctx.spawn('native:adder')\n"
              "  local idle = ctx.spawn('native:adder')\n"
              "  ctx.send(ok, 2) ctx.send(ok, 'done')\n"
              "  ctx.send(bad, 'seven') ctx.send(bad, 'done')\n"
              "  ctx.send(idle, 5)\n"
              "  local r1 = ctx.join(ok)\n"
              "  local r2, err = ctx.join(bad)\n"
              "  return tostring(r1) .. '|' .. tostring(r2) .. '|' .. tostring(err)\n"
              "end\n",
              &o);
  assert_int_equal(o.rc, 0);
  assert_true(o.result_len > 0);
  assert_non_null(strstr(o.result, "2|nil|"));
  assert_non_null(strstr(o.result, "native agent adder failed"));
  assert_int_equal(counts.args_len, 0); /* spawned without args */
  assert_int_equal(o.stats.spawned, 4);
  assert_int_equal(o.stats.failed, 1);
  assert_int_equal(o.stats.exited, 2);
  assert_int_equal(o.stats.alive, 1);
  assert_int_equal(o.stats.blocked, 1);
  assert_true(failure_has(&o, "agent 3 (adder)"));
  /* the two that ended were destroyed at their end; the waiting one not yet */
  assert_int_equal(counts.destroyed[2], 1);
  assert_int_equal(counts.destroyed[3], 1);
  assert_int_equal(counts.destroyed[4], 0);
  hs_runtime_destroy(rt);
  assert_int_equal(counts.destroyed[2], 1);
  assert_int_equal(counts.destroyed[3], 1);
  assert_int_equal(counts.destroyed[4], 1);
  assert_int_equal(counts.destroys, 3);
  assert_int_equal(counts.starts, 3);
}

/* A kind whose on_start fails after setting its state: on_destroy still frees it, once, and
 * on_message is never called. */
static int badstart_start(hs_runtime *rt, hs_agent_id self, const void *args, size_t len,
                          void *kind_ud, void **state) {
  int rc = adder_start(rt, self, args, len, kind_ud, state);
  return rc ? rc : HS_ENOSPC;
}

static void test_on_start_failure(void **state) {
  (void)state;
  kind_counts counts;
  memset(&counts, 0, sizeof counts);
  hs_runtime *rt = new_runtime(HS_MODE_LOCKSTEP);
  hs_native_agent vt = adder_vt;
  vt.on_start = badstart_start;
  assert_int_equal(hs_runtime_register_native(rt, "badstart", &vt, &counts), 0);
  outcome o;
  run_main_in(rt,
              "function main(ctx)\n"
              "  local c = ctx.spawn('native:badstart', 'xyz')\n"
              "  ctx.send(c, 1)\n"
              "  local r, err = ctx.join(c)\n"
              "  assert(r == nil)\n"
              "  return err\n"
              "end\n",
              &o);
  assert_int_equal(o.rc, 0);
  assert_true(o.result_len > 0);
  assert_non_null(strstr(o.result, "native agent badstart failed"));
  assert_non_null(strstr(o.result, hs_strerror(HS_ENOSPC)));
  assert_int_equal(counts.starts, 1);
  assert_string_equal(counts.args, "xyz");
  assert_int_equal(counts.messages, 0);
  assert_int_equal(counts.destroyed[2], 1);
  hs_runtime_destroy(rt);
  assert_int_equal(counts.destroys, 1);
}

static void test_unknown_native_kind(void **state) {
  (void)state;
  /* the main agent itself */
  outcome o = run_src("function main(ctx) ctx.spawn('native:nosuch', 'a') return 'spawned' end");
  assert_int_equal(o.rc, 0);
  assert_true(o.result_len < 0);
  assert_int_equal(o.stats.failed, 1);
  assert_int_equal(o.stats.spawned, 1);
  assert_true(failure_has(&o, "no native agent kind \"nosuch\""));

  /* a child: only that agent fails; the parent sees the message through join */
  outcome o2 = run_src(
      "function main(ctx)\n"
      "  local c = ctx.spawn('function main(ctx) ctx.spawn(\"native:missing_kind\") end')\n"
      "  local r, err = ctx.join(c)\n"
      "  local ok, e2 = pcall(ctx.spawn, 'native:')\n"
      "  return tostring(r) .. '|' .. err .. '|' .. tostring(ok) .. '|' .. e2\n"
      "end\n");
  assert_int_equal(o2.rc, 0);
  assert_true(o2.result_len > 0);
  assert_non_null(strstr(o2.result, "nil|"));
  assert_non_null(strstr(o2.result, "missing_kind"));
  assert_non_null(strstr(o2.result, "|false|"));
  assert_int_equal(o2.stats.failed, 1);
  assert_true(failure_has(&o2, "agent 2"));
  assert_true(failure_has(&o2, "missing_kind"));

  /* from C */
  hs_runtime *rt = new_runtime(HS_MODE_LOCKSTEP);
  hs_agent_id id = 77;
  assert_int_equal(hs_runtime_spawn_native(rt, "nosuch", 0, NULL, 0, &id), HS_ENOENT);
  assert_non_null(strstr(hs_runtime_last_error(rt), "nosuch"));
  hs_runtime_stats st;
  hs_runtime_get_stats(rt, &st);
  assert_int_equal(st.spawned, 0);
  hs_runtime_destroy(rt);
}

/* ---- tests: registration and calling rules ---- */

static int other_message(hs_runtime *rt, hs_agent_id self, const hs_native_msg *msg, void *state) {
  (void)rt, (void)self, (void)msg, (void)state;
  return HS_EIO;
}

static void test_register_duplicate_and_invalid_kinds(void **state) {
  (void)state;
  kind_counts first, second;
  memset(&first, 0, sizeof first);
  memset(&second, 0, sizeof second);
  hs_runtime *rt = new_runtime(HS_MODE_LOCKSTEP);
  assert_int_equal(hs_runtime_register_native(rt, "adder", &adder_vt, &first), 0);
  hs_native_agent other = {NULL, other_message, NULL};
  assert_int_equal(hs_runtime_register_native(rt, "adder", &other, &second), HS_EINVAL);
  assert_non_null(strstr(hs_runtime_last_error(rt), "\"adder\" already registered"));
  assert_int_equal(hs_runtime_register_native(rt, "echo", &other, NULL), HS_EINVAL); /* built in */
  assert_non_null(strstr(hs_runtime_last_error(rt), "echo"));
  assert_int_equal(hs_runtime_register_native(rt, "", &other, NULL), HS_EINVAL);
  assert_int_equal(hs_runtime_register_native(rt, NULL, &other, NULL), HS_EINVAL);
  assert_int_equal(hs_runtime_register_native(rt, "x", NULL, NULL), HS_EINVAL);
  hs_native_agent no_msg = {adder_start, NULL, adder_destroy};
  assert_int_equal(hs_runtime_register_native(rt, "x", &no_msg, NULL), HS_EINVAL);
  /* a different name is fine; the vt was copied, so changing ours afterwards changes nothing */
  hs_native_agent vt = adder_vt;
  assert_int_equal(hs_runtime_register_native(rt, "adder2", &vt, &second), 0);
  vt.on_message = other_message;

  /* the first registration is the one in force */
  outcome o;
  run_main_in(rt,
              "function main(ctx)\n"
              "  local a = ctx.spawn('native:adder')\n"
              "  local b = ctx.spawn('native:adder2')\n"
              "  ctx.send(a, 4) ctx.send(a, 'done') ctx.send(b, 6) ctx.send(b, 'done')\n"
              "  return tostring(ctx.join(a)) .. tostring(ctx.join(b))\n"
              "end\n",
              &o);
  assert_result(o, "46");
  assert_int_equal(first.starts, 1);
  assert_int_equal(second.starts, 1);
  assert_int_equal(first.messages, 2);
  assert_int_equal(second.messages, 2);
  hs_runtime_destroy(rt);
}

/* The "impostor" kind tries to act for another agent from inside its own callback. */
typedef struct impostor_log {
  int rc_send, rc_send_handle, rc_exit, rc_self_send;
  hs_agent_id victim;
} impostor_log;

static int impostor_start(hs_runtime *rt, hs_agent_id self, const void *args, size_t len,
                          void *kind_ud, void **state) {
  (void)args, (void)len, (void)state;
  impostor_log *log = kind_ud;
  hs_handle h;
  if (hs_arena_put(hs_runtime_arena(rt), "x", 1, &h) != 0) return HS_ENOMEM;
  log->rc_send = hs_native_send(rt, log->victim, self, "x", 1);
  log->rc_send_handle = hs_native_send_handle(rt, log->victim, self, h);
  log->rc_exit = hs_native_exit(rt, log->victim, "r", 1);
  log->rc_self_send = hs_native_send_handle(rt, self, log->victim, h); /* allowed */
  hs_arena_release(hs_runtime_arena(rt), h);
  return hs_native_exit(rt, self, "impostor done", 13);
}

static int ignore_message(hs_runtime *rt, hs_agent_id self, const hs_native_msg *msg, void *st) {
  (void)st;
  if (msg->is_exit) return 0;
  char buf[16];
  if (payload(rt, msg->data, buf, sizeof buf) != 1 || buf[0] != 'x') return HS_EINVAL;
  return hs_native_exit(rt, self, "victim done", 11);
}

static void test_native_calls_outside_callback_are_eperm(void **state) {
  (void)state;
  hs_runtime *rt = new_runtime(HS_MODE_LOCKSTEP);
  hs_arena *arena = hs_runtime_arena(rt);
  hs_handle h;
  assert_int_equal(hs_arena_put(arena, "payload", 7, &h), 0);
  /* no agent at all */
  assert_int_equal(hs_native_send(rt, 1, 1, "x", 1), HS_EPERM);
  assert_non_null(strstr(hs_runtime_last_error(rt), "not the running native agent"));
  assert_int_equal(hs_native_send_handle(rt, 1, 1, h), HS_EPERM);
  assert_int_equal(hs_native_exit(rt, 1, "r", 1), HS_EPERM);

  impostor_log log = {0};
  hs_native_agent imp = {impostor_start, ignore_message, NULL};
  hs_native_agent victim = {NULL, ignore_message, NULL};
  assert_int_equal(hs_runtime_register_native(rt, "impostor", &imp, &log), 0);
  assert_int_equal(hs_runtime_register_native(rt, "victim", &victim, NULL), 0);
  hs_agent_id vid = 0, iid = 0;
  assert_int_equal(hs_runtime_spawn_native(rt, "victim", 0, NULL, 0, &vid), 0);
  assert_int_equal(hs_runtime_spawn_native(rt, "impostor", vid, NULL, 0, &iid), 0);
  assert_int_equal(vid, 1);
  assert_int_equal(iid, 2);
  log.victim = vid;
  /* agents exist but none is running */
  assert_int_equal(hs_native_send(rt, vid, iid, "x", 1), HS_EPERM);
  assert_int_equal(hs_native_send_handle(rt, iid, vid, h), HS_EPERM);
  assert_int_equal(hs_native_exit(rt, vid, NULL, 0), HS_EPERM);
  hs_arena_stats st;
  hs_arena_get_stats(arena, &st);
  assert_int_equal(st.live_blobs, 1); /* the refused sends made no blob and took no reference */

  assert_int_equal(hs_runtime_run(rt), 0);
  /* inside its callback the impostor could act only for itself */
  assert_int_equal(log.rc_send, HS_EPERM);
  assert_int_equal(log.rc_send_handle, HS_EPERM);
  assert_int_equal(log.rc_exit, HS_EPERM);
  assert_int_equal(log.rc_self_send, 0);
  hs_runtime_stats rs;
  hs_runtime_get_stats(rt, &rs);
  assert_int_equal(rs.exited, 2);
  assert_int_equal(rs.failed, 0);
  assert_int_equal(rs.messages_sent, 2); /* the impostor's one message and its exit notice */
  char buf[64];
  assert_int_equal(hs_runtime_main_result(rt, buf, sizeof buf), 11);
  assert_string_equal(buf, "victim done");

  /* after the run: still refused */
  assert_int_equal(hs_native_send(rt, iid, vid, "x", 1), HS_EPERM);
  assert_int_equal(hs_native_exit(rt, iid, NULL, 0), HS_EPERM);
  assert_int_equal(hs_arena_release(arena, h), 0);
  hs_runtime_destroy(rt);
}

/* The "flooder" sends to a missing agent and past a full mailbox; the "sink" counts what it gets. */
typedef struct flood_log {
  hs_agent_id sink;
  int rc_missing, rc_sends[5];
  uint64_t blobs_before, blobs_after; /* live blobs around the refused sends */
  int sink_got;
} flood_log;

static uint64_t live_blobs(hs_runtime *rt) {
  hs_arena_stats st;
  hs_arena_get_stats(hs_runtime_arena(rt), &st);
  return st.live_blobs;
}

static int flooder_start(hs_runtime *rt, hs_agent_id self, const void *args, size_t len,
                         void *kind_ud, void **state) {
  (void)args, (void)len, (void)state;
  flood_log *log = kind_ud;
  log->blobs_before = live_blobs(rt);
  log->rc_missing = hs_native_send(rt, self, 999, "lost", 4);
  for (int i = 0; i < 5; i++) log->rc_sends[i] = hs_native_send(rt, self, log->sink, "m", 1);
  log->blobs_after = live_blobs(rt);
  return hs_native_exit(rt, self, NULL, 0);
}

static int sink_message(hs_runtime *rt, hs_agent_id self, const hs_native_msg *msg, void *st) {
  (void)rt, (void)self;
  flood_log *log = st;
  if (!msg->is_exit) log->sink_got++;
  return 0;
}

static int sink_start(hs_runtime *rt, hs_agent_id self, const void *args, size_t len,
                      void *kind_ud, void **state) {
  (void)rt, (void)self, (void)args, (void)len;
  *state = kind_ud;
  return 0;
}

static void test_native_send_errors_keep_nothing(void **state) {
  (void)state;
  hs_runtime_config cfg;
  hs_runtime_config_init(&cfg);
  cfg.quiet = 1;
  cfg.mailbox_capacity = 3;
  hs_runtime *rt = NULL;
  assert_int_equal(hs_runtime_create(&cfg, &rt), 0);
  flood_log log;
  memset(&log, 0, sizeof log);
  hs_native_agent flooder = {flooder_start, ignore_message, NULL};
  hs_native_agent sink = {sink_start, sink_message, NULL};
  assert_int_equal(hs_runtime_register_native(rt, "flooder", &flooder, &log), 0);
  assert_int_equal(hs_runtime_register_native(rt, "sink", &sink, &log), 0);
  hs_agent_id sid = 0, fid = 0;
  assert_int_equal(hs_runtime_spawn_native(rt, "sink", 0, NULL, 0, &sid), 0);
  assert_int_equal(hs_runtime_spawn_native(rt, "flooder", sid, NULL, 0, &fid), 0);
  log.sink = sid;
  assert_int_equal(hs_runtime_run(rt), 0);
  assert_int_equal(log.rc_missing, HS_ENOENT);
  assert_int_equal(log.rc_sends[0], 0);
  assert_int_equal(log.rc_sends[1], 0);
  assert_int_equal(log.rc_sends[2], 0);
  assert_int_equal(log.rc_sends[3], HS_EFULL);
  assert_int_equal(log.rc_sends[4], HS_EFULL);
  /* only the three accepted messages hold a blob: refused sends left none behind */
  assert_int_equal(log.blobs_after, log.blobs_before + 3);
  assert_int_equal(log.sink_got, 3);
  hs_runtime_stats st;
  hs_runtime_get_stats(rt, &st);
  assert_int_equal(st.messages_sent, 3 + 1); /* + the flooder's exit notice */
  assert_int_equal(st.failed, 0);
  assert_int_equal(st.alive, 1); /* the sink waits for more */
  hs_runtime_destroy(rt);
}

/* ---- tests: pure-native runs with "echo" ---- */

typedef struct pinger_cfg {
  hs_agent_id echo;      /* set by the test once the echo agent is spawned */
  int rounds;
  int starts, replies, destroys, echo_exit_seen;
  int problems;          /* anything unexpected seen by a callback */
} pinger_cfg;

typedef struct pinger {
  pinger_cfg *cfg;
  int sent;
  hs_handle last;        /* the blob of the ping in flight */
} pinger;

static int ping_next(hs_runtime *rt, hs_agent_id self, pinger *p) {
  char text[32];
  int n = snprintf(text, sizeof text, "ping %d", p->sent + 1);
  hs_handle h;
  int rc = hs_arena_put(hs_runtime_arena(rt), text, (size_t)n, &h);
  if (rc) return rc;
  rc = hs_native_send_handle(rt, self, p->cfg->echo, h);
  hs_arena_release(hs_runtime_arena(rt), h); /* the message holds its own reference */
  if (rc) return rc;
  p->last = h;
  p->sent++;
  return 0;
}

static int pinger_start(hs_runtime *rt, hs_agent_id self, const void *args, size_t len,
                        void *kind_ud, void **state) {
  pinger_cfg *cfg = kind_ud;
  cfg->starts++;
  if (len != 3 || memcmp(args, "abc", 3) != 0) cfg->problems++;
  pinger *p = calloc(1, sizeof *p);
  if (!p) return HS_ENOMEM;
  p->cfg = cfg;
  *state = p;
  return ping_next(rt, self, p);
}

static int pinger_message(hs_runtime *rt, hs_agent_id self, const hs_native_msg *msg, void *state) {
  pinger *p = state;
  pinger_cfg *cfg = p->cfg;
  if (msg->from != cfg->echo) {
    cfg->problems++;
    return HS_EINVAL;
  }
  if (msg->is_exit) {
    cfg->echo_exit_seen++;
    char out[32];
    int n = snprintf(out, sizeof out, "pongs=%d", cfg->replies);
    return hs_native_exit(rt, self, out, (size_t)n);
  }
  /* echo sends back the payload handle itself, not a copy */
  if (msg->data != p->last) cfg->problems++;
  char buf[32], want[32];
  snprintf(want, sizeof want, "ping %d", p->sent);
  if (payload(rt, msg->data, buf, sizeof buf) < 0 || strcmp(buf, want) != 0) cfg->problems++;
  cfg->replies++;
  if (p->sent < cfg->rounds) return ping_next(rt, self, p);
  return hs_native_send(rt, self, cfg->echo, "exit", 4);
}

static void pinger_destroy(void *state) {
  pinger *p = state;
  p->cfg->destroys++;
  free(p);
}

static const hs_native_agent pinger_vt = {pinger_start, pinger_message, pinger_destroy};

typedef struct probe_log {
  uint64_t calls, max_ns;
} probe_log;

static void probe(uint64_t ns, void *ud) {
  probe_log *l = ud;
  l->calls++;
  if (ns > l->max_ns) l->max_ns = ns;
}

/* Runs pinger (agent 1, no Lua) against echo (agent 2, its child) for `rounds` round trips. */
static void run_pure_native(hs_mode mode, int rounds, probe_log *pl, pinger_cfg *cfg,
                            hs_runtime_stats *st, char *result, size_t size) {
  memset(cfg, 0, sizeof *cfg);
  cfg->rounds = rounds;
  hs_runtime *rt = new_runtime(mode);
  if (pl) hs_runtime_set_latency_probe(rt, probe, pl);
  assert_int_equal(hs_runtime_register_native(rt, "pinger", &pinger_vt, cfg), 0);
  hs_agent_id pid = 0, eid = 0;
  assert_int_equal(hs_runtime_spawn_native(rt, "pinger", 0, "abc", 3, &pid), 0);
  assert_int_equal(hs_runtime_spawn_native(rt, "echo", pid, NULL, 0, &eid), 0);
  assert_int_equal(pid, 1);
  assert_int_equal(eid, 2);
  cfg->echo = eid;
  assert_int_equal(hs_runtime_run(rt), 0);
  hs_runtime_get_stats(rt, st);
  long n = hs_runtime_main_result(rt, result, size);
  assert_true(n >= 0);
  const char *f[4];
  size_t nf = hs_runtime_failures(rt, f, 4);
  for (size_t i = 0; i < nf; i++) fprintf(stderr, "failure: %s\n", f[i]);
  assert_int_equal(nf, 0);
  hs_runtime_destroy(rt);
}

static void test_pure_native_run_with_echo(void **state) {
  (void)state;
  for (int mode = HS_MODE_LOCKSTEP; mode <= HS_MODE_FREE; mode++) {
    enum { ROUNDS = 25 };
    pinger_cfg cfg;
    hs_runtime_stats st;
    char result[64];
    run_pure_native((hs_mode)mode, ROUNDS, NULL, &cfg, &st, result, sizeof result);
    assert_string_equal(result, "pongs=25");
    assert_int_equal(cfg.problems, 0);
    assert_int_equal(cfg.starts, 1);
    assert_int_equal(cfg.replies, ROUNDS);
    assert_int_equal(cfg.echo_exit_seen, 1); /* the child's exit notice reached its native parent */
    assert_int_equal(cfg.destroys, 1);
    assert_int_equal(st.spawned, 2);
    assert_int_equal(st.exited, 2);
    assert_int_equal(st.failed, 0);
    assert_int_equal(st.alive, 0);
    assert_int_equal(st.blocked, 0);
    /* ROUNDS pings + "exit" from the pinger, ROUNDS echoes, one exit notice */
    assert_int_equal(st.messages_sent, 2 * ROUNDS + 2);
    assert_int_equal(st.messages_delivered, 2 * ROUNDS + 2);
    assert_int_equal(st.arena_bytes, 8); /* only the main result is left: "pongs=25" */
    if (mode == HS_MODE_LOCKSTEP) assert_true(st.step >= 2 * ROUNDS); /* a step each way */
  }
}

/* ---- tests: latency probe ---- */

static void test_latency_probe_once_per_taken_message(void **state) {
  (void)state;
  /* pure native ping-pong */
  for (int mode = HS_MODE_LOCKSTEP; mode <= HS_MODE_FREE; mode++) {
    probe_log pl = {0};
    pinger_cfg cfg;
    hs_runtime_stats st;
    char result[64];
    run_pure_native((hs_mode)mode, 10, &pl, &cfg, &st, result, sizeof result);
    assert_string_equal(result, "pongs=10");
    assert_int_equal(st.messages_delivered, 22);
    assert_int_equal(pl.calls, 22);
    assert_true(pl.max_ns < 60ull * 1000000000ull); /* a real duration, not a wrapped stamp */
  }

  /* Lua main against echo: 5 pings taken by echo, 5 replies taken by main, "exit" taken by echo,
   * echo's exit notice taken by join: 12. The message sent after echo's end is never taken. */
  const char *src =
      "function main(ctx)\n"
      "  local e = ctx.spawn('native:echo')\n"
      "  for i = 1, 5 do\n"
      "    ctx.send(e, 'p' .. i)\n"
      "    local m = ctx.recv()\n"
      "    assert(m.from == e and tostring(m.data) == 'p' .. i, 'bad echo')\n"
      "  end\n"
      "  ctx.send(e, 'exit')\n"
      "  ctx.join(e)\n"
      "  ctx.send(e, 'late')\n"
      "  return 'ok'\n"
      "end\n";
  probe_log pl = {0};
  hs_runtime *rt = new_runtime(HS_MODE_LOCKSTEP);
  hs_runtime_set_latency_probe(rt, probe, &pl);
  outcome o;
  run_main_in(rt, src, &o);
  assert_result(o, "ok");
  assert_int_equal(o.stats.messages_sent, 13);
  assert_int_equal(o.stats.messages_delivered, 12);
  assert_int_equal(pl.calls, 12);
  hs_runtime_destroy(rt);

  /* a probe removed before the run is never called */
  probe_log off = {0};
  rt = new_runtime(HS_MODE_LOCKSTEP);
  hs_runtime_set_latency_probe(rt, probe, &off);
  hs_runtime_set_latency_probe(rt, NULL, NULL);
  run_main_in(rt, src, &o);
  assert_result(o, "ok");
  assert_int_equal(off.calls, 0);
  hs_runtime_destroy(rt);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_adder_spawned_from_lua),
      cmocka_unit_test(test_native_failure_and_on_destroy_once_per_agent),
      cmocka_unit_test(test_on_start_failure),
      cmocka_unit_test(test_unknown_native_kind),
      cmocka_unit_test(test_register_duplicate_and_invalid_kinds),
      cmocka_unit_test(test_native_calls_outside_callback_are_eperm),
      cmocka_unit_test(test_native_send_errors_keep_nothing),
      cmocka_unit_test(test_pure_native_run_with_echo),
      cmocka_unit_test(test_latency_probe_once_per_taken_message),
  };
  return cmocka_run_group_tests_name("native", tests, NULL, NULL);
}
