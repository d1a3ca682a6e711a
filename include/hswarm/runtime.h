/* hswarm/runtime.h: the agent runtime: agents, mailboxes, Lamport clocks, the event loop on a
 * virtual clock, asynchronous operations, the event log and replay.
 *
 * A runtime owns one shared arena (hs_runtime_arena), every agent, and the event loop. Agents are
 * Lua scripts (isolated: one sandboxed lua_State each; light: coroutines sharing one sandboxed state
 * per team) or native C agents (hs_native_agent). Agent ids start at 1 and are never reused.
 *
 * Virtual time is counted in steps (DESIGN.md, "Virtual time, execution modes, replay"). In lockstep
 * mode (the default) messages sent during step t are delivered before step t+1, to each recipient
 * in (sender's Lamport time, sender id, sender's sequence number) order, and every agent that has
 * something to handle runs in ascending id order until it blocks: the same scripts and seed give the
 * same run, bit for bit. In free-running mode a message is delivered the moment it is sent and its
 * recipient runs at the next turn of the loop, in the order it became ready; the event log records
 * that order so the run can be replayed.
 *
 * Threads. A runtime is driven by one thread (the one calling hs_runtime_run/step). The only
 * functions other threads may call are hs_runtime_op_complete and hs_runtime_request_stop. */
#ifndef HSWARM_RUNTIME_H
#define HSWARM_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include "hswarm/arena.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hs_runtime hs_runtime;
typedef uint32_t hs_agent_id;

typedef enum hs_mode { HS_MODE_LOCKSTEP = 0, HS_MODE_FREE = 1 } hs_mode;
typedef enum hs_agent_kind {
  HS_AGENT_ISOLATED = 0,
  HS_AGENT_LIGHT = 1,
  HS_AGENT_NATIVE = 2
} hs_agent_kind;

typedef struct hs_runtime_config {
  uint64_t seed;                /* seeds every agent's math.random (default 0) */
  hs_mode mode;                 /* default HS_MODE_LOCKSTEP */
  uint32_t mailbox_capacity;    /* messages per agent, delivered or in flight (default 4096) */
  uint64_t arena_bytes;         /* arena byte limit (default 4 GiB) */
  uint64_t arena_blobs;         /* arena blob limit (default 2^28) */
  uint64_t agent_memory;        /* Lua memory cap of an isolated agent, bytes (default 64 MiB) */
  uint64_t team_memory;         /* Lua memory cap of a light team's shared state (default 16 GiB) */
  uint64_t instruction_budget;  /* Lua instructions per activation (default 100,000,000); 0: no
                                 * limit and no count hook (Lua runs faster; a runaway loop then
                                 * stalls the run) */
  uint32_t max_agents;          /* agents ever spawned (default 16,777,216) */
  uint64_t max_steps;           /* stop after this many steps; 0 = no limit */
  const char *log_path;         /* event log to write; NULL = off. Copied. */
  const char *replay_path;      /* event log to replay against; NULL = normal run. Copied. */
  const char *lib_dir;          /* extra directory searched by require() (NULL: embedded only) */
  int quiet;                    /* 1: ctx.log/print output is not written to stderr */
} hs_runtime_config;

/* Fills *cfg with the defaults above. */
void hs_runtime_config_init(hs_runtime_config *cfg);

/* Creates a runtime. With cfg->log_path set, the log is created when the first agent is spawned
 * (its header names the main script). With cfg->replay_path set, the runtime checks every event it
 * produces against that log instead (see hs_runtime_replay). On error *out is NULL and
 * hs_runtime_create_error() tells why. */
int hs_runtime_create(const hs_runtime_config *cfg, hs_runtime **out);
const char *hs_runtime_create_error(void);
void hs_runtime_destroy(hs_runtime *rt);

/* The runtime's last error message with detail ("agent 17: instruction budget of 1000 per
 * activation exceeded"). Owned by the runtime, valid until the next call that fails. */
const char *hs_runtime_last_error(const hs_runtime *rt);

hs_arena *hs_runtime_arena(hs_runtime *rt);

/* Spawns the first agent from a script file: its main(ctx, args) gets args = {argv[0], ...} as
 * strings. Must be called once, before running. Returns its id (1) in *out_id. */
int hs_runtime_spawn_main(hs_runtime *rt, const char *script_path, int argc,
                          const char *const *argv, hs_agent_id *out_id);

/* Runs until no agent can make progress, max_steps is reached, a replay diverges, or a stop is
 * requested. Returns 0, or a negative code for a failure of the runtime itself (I/O on the log,
 * divergence, out of memory). A failing agent is not a runtime failure: see hs_runtime_stats. */
int hs_runtime_run(hs_runtime *rt);

/* Runs exactly one step. Returns 1 if there is more to do, 0 when the run is over, or a negative
 * code. */
int hs_runtime_step(hs_runtime *rt);

/* Asks hs_runtime_run to return at the end of the current step. Any thread; signal-safe. */
void hs_runtime_request_stop(hs_runtime *rt);

typedef struct hs_runtime_stats {
  uint64_t step;             /* virtual time now */
  uint64_t spawned;          /* agents ever created */
  uint64_t alive;            /* agents not yet ended */
  uint64_t exited;           /* agents that ended normally */
  uint64_t failed;           /* agents that ended with an error */
  uint64_t blocked;          /* alive agents waiting with nothing that can wake them (at the end) */
  uint64_t messages_sent;
  uint64_t messages_delivered;
  uint64_t activations;      /* agent resumptions */
  uint64_t log_records;      /* event log records written or checked */
  uint64_t lua_bytes;        /* bytes held by all Lua states now */
  uint64_t arena_bytes;      /* bytes held by live arena blobs now */
} hs_runtime_stats;

void hs_runtime_get_stats(const hs_runtime *rt, hs_runtime_stats *out);

/* Called once per step with fresh stats when set (progress display). */
typedef void (*hs_progress_fn)(const hs_runtime_stats *stats, void *ud);
void hs_runtime_set_progress(hs_runtime *rt, hs_progress_fn fn, void *ud);

/* The first agent's result (what its main returned or passed to ctx.exit), as a string copy into
 * buf; returns its full length, or -1 if it has not exited normally. */
long hs_runtime_main_result(hs_runtime *rt, char *buf, size_t size);

typedef enum hs_agent_status {
  HS_AGENT_UNKNOWN = 0, /* no such agent */
  HS_AGENT_ALIVE = 1,   /* running, or waiting (blocked at the end of a run, or cut by max_steps) */
  HS_AGENT_EXITED = 2,  /* ended normally */
  HS_AGENT_FAILED = 3   /* ended by an error or a limit */
} hs_agent_status;

hs_agent_status hs_runtime_agent_status(const hs_runtime *rt, hs_agent_id id);

/* 1 if the run ended because max_steps was reached or a stop was requested, else 0. */
int hs_runtime_was_stopped(const hs_runtime *rt);

/* The first failures, one line each ("agent 12 (worker.lua): worker.lua:3: boom"); up to max lines
 * copied into lines (each owned by the runtime, valid until destroy). Returns how many. */
size_t hs_runtime_failures(const hs_runtime *rt, const char **lines, size_t max);

/* ---- replay ---- */
typedef struct hs_replay_result {
  int identical;           /* 1: every record matched and the log ended with the run */
  uint64_t records;        /* records compared */
  uint64_t record;         /* first divergent record number (header = 0), when not identical */
  hs_agent_id agent;       /* the agent concerned, 0 if none */
  char expected[512];      /* the logged record, described */
  char actual[512];        /* what the replay produced, described */
  int script_changed;      /* 1 if the main script's hash differs from the log's */
} hs_replay_result;

/* Replays the log at path: re-executes its scripts with its seed and settings, checks every event
 * against the log, and fills *res. Returns 0 when the replay ran (identical or not; see
 * res->identical), or a negative code if the log cannot be read. quiet as in the config. */
int hs_runtime_replay(const char *log_path, int quiet, hs_replay_result *res);
const char *hs_runtime_replay_error(void);

/* ---- asynchronous operations ----
 * An agent starts an operation and blocks; whoever performs it calls hs_runtime_op_complete (from
 * any thread) with the result; the agent is resumed with it at the next step (lockstep) or turn
 * (free). Built in: "timer" (ctx.sleep, timeouts). Registered kinds are reachable from Lua as
 * ctx.call(kind, request_string) and return (result_string) or (nil, error). Results are written to
 * the event log in full; an operation registered as external (its result cannot be recomputed, like
 * a model call) is not started during a replay: the logged result is fed back instead.
 *
 * Operations performed on other threads (a pool running commands) would make a lockstep run
 * depend on how long they take. An operation registered as step-bound keeps lockstep runs
 * deterministic and still parallel: every step-bound operation started during step t runs
 * concurrently with the others (and with the engine's step), and the loop waits for all of them
 * before step t + 1, so each is delivered at step t + 1 whatever its duration. In free-running
 * mode the flag has no effect: results are delivered as they arrive. */
typedef uint64_t hs_op_token;

/* start: begin the operation; request/len is the agent's request (valid during the call only).
 * Return 0, or a negative code to fail the call at once. */
typedef int (*hs_op_start_fn)(hs_runtime *rt, hs_op_token token, hs_agent_id agent,
                              const void *request, size_t len, void *ud);

/* flags: 0, or an or of these. */
#define HS_OP_EXTERNAL 1   /* the result cannot be recomputed: replays take it from the log */
#define HS_OP_STEP_BOUND 2 /* lockstep: delivered at the next step, however long it takes */

int hs_runtime_register_op(hs_runtime *rt, const char *kind, int flags, hs_op_start_fn start,
                           void *ud);

/* Called at the start of hs_runtime_destroy, before any agent is ended, in the reverse order of
 * registration: a kind that performs operations on its own threads stops them here (completions
 * posted during the call are accepted and dropped). At most 16 per runtime: HS_ELIMIT. */
int hs_runtime_on_destroy(hs_runtime *rt, void (*fn)(void *ud), void *ud);

/* Completes an operation: status 0 with result bytes (copied), or a negative code with an error
 * message in data. Thread-safe. A token that is not a valid operation token gives HS_ENOENT; a
 * completion of an operation nobody waits for any more is ignored when the loop takes it. */
int hs_runtime_op_complete(hs_runtime *rt, hs_op_token token, int status, const void *data,
                           size_t len);

/* ---- an engine driven by the loop ----
 * An engine (the batch scheduler: hswarm/llm.h) that completes operations by stepping. step
 * returns 1 while it has work, 0 when idle, or a negative code (the run then stops with it). The
 * loop calls it once at the end of every step in which agents ran (lockstep: the agents' requests
 * of a step join the next engine step, and results finished at step t are delivered at step
 * t + 1), and, when no agent can run and operations are in flight, steps it instead of waiting:
 * each such engine step is one step of virtual time. Replays never call it (results come from
 * the log). NULL removes it. */
typedef int (*hs_engine_step_fn)(void *ud);
void hs_runtime_set_engine(hs_runtime *rt, hs_engine_step_fn step, void *ud);

/* ---- native agents ----
 * A native agent is a set of C callbacks. on_start runs at its first activation, on_message once per
 * delivered message (in delivery order). Inside a callback the agent may send and exit through
 * the hs_native_* functions; it never blocks. on_destroy is called exactly once per agent, when it
 * ends, with state NULL if on_start never ran. Registered kinds can be spawned from Lua with
 * ctx.spawn("native:KIND", args_string). */
typedef struct hs_native_msg {
  hs_agent_id from;
  uint64_t lamport;
  uint32_t seq;
  int is_exit;             /* 1: the exit notice of a child (data = its result) */
  hs_handle data;          /* valid during the callback; hs_arena_retain it to keep it */
} hs_native_msg;

typedef struct hs_native_agent {
  /* First activation. kind_ud is the pointer given at registration; *state may be set to the
   * agent's own state, passed to the other callbacks. Return 0, or a negative code to fail. */
  int (*on_start)(hs_runtime *rt, hs_agent_id self, const void *args, size_t len, void *kind_ud,
                  void **state);
  int (*on_message)(hs_runtime *rt, hs_agent_id self, const hs_native_msg *msg, void *state);
  void (*on_destroy)(void *state); /* the agent ended; may be NULL */
} hs_native_agent;

/* Registers a native kind (vt is copied; kind_ud is kept, not owned). */
int hs_runtime_register_native(hs_runtime *rt, const char *kind, const hs_native_agent *vt,
                               void *kind_ud);
/* Spawns a native agent of a registered kind from C, as a child of parent (0 for none). As the
 * first agent of a run it makes a run without Lua; such a run cannot keep an event log (HS_EINVAL
 * when a log is configured): logs and replays need a main script. */
int hs_runtime_spawn_native(hs_runtime *rt, const char *kind, hs_agent_id parent, const void *args,
                            size_t len, hs_agent_id *out_id);
/* Callable only from inside a native callback, for the agent `self`. */
int hs_native_send(hs_runtime *rt, hs_agent_id self, hs_agent_id to, const void *data, size_t len);
int hs_native_send_handle(hs_runtime *rt, hs_agent_id self, hs_agent_id to, hs_handle h);
int hs_native_exit(hs_runtime *rt, hs_agent_id self, const void *result, size_t len);
uint64_t hs_runtime_now(const hs_runtime *rt);

/* ---- latency probe (benchmarks) ----
 * When enabled, every message is stamped with a monotonic clock at send, and fn is called with the
 * send-to-receive latency in nanoseconds each time an agent takes a message. */
typedef void (*hs_latency_fn)(uint64_t nanoseconds, void *ud);
void hs_runtime_set_latency_probe(hs_runtime *rt, hs_latency_fn fn, void *ud);

#ifdef __cplusplus
}
#endif
#endif
