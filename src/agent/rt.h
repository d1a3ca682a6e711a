/* rt.h: the agent runtime's internal data structures, shared by the files of src/agent/.
 *
 *   runtime.c   creation, the agent table, sending and taking messages, ending agents, stats
 *   loop.c      the event loop: step boundaries, lockstep and free-running order, timers, ops
 *   lua_host.c  sandboxed Lua states: allocator with a memory cap, instruction budget, libraries
 *   lua_order.c deterministic next, pairs and tostring for the sandbox
 *   lua_ctx.c   the ctx table every Lua agent receives
 *   lua_spawn.c creating Lua agents (ctx.spawn and the first agent)
 *   lua_view.c  zero-copy views of arena blobs
 *   script.c    the script cache (files read once, paths resolved against the spawning script)
 *   journal.c   writing the event log, or checking a replay against it
 *   native.c    native (C) agents
 *
 * Ownership: the runtime owns every agent (a chunked table indexed by id, never moved), every Lua
 * host (one per isolated agent or light team), the arena and the log. An agent's mailbox owns one
 * arena reference per message; an agent owns the handles it wrote with ctx.memory.write. */
#ifndef HS_AGENT_RT_H
#define HS_AGENT_RT_H

#include <lua.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "core/last_error.h"
#include "core/mailbox.h"
#include "core/slab.h"
#include "core/timerheap.h"
#include "hswarm/eventlog.h"
#include "hswarm/runtime.h"

/* Agent states. */
enum {
  AS_NEW = 0,     /* spawned; first runs at the next step */
  AS_READY,       /* will run at the next step (yielded without waiting) */
  AS_RUNNING,
  AS_WAIT_MSG,    /* ctx.recv */
  AS_WAIT_JOIN,   /* ctx.join */
  AS_WAIT_OP,     /* ctx.sleep, ctx.call */
  AS_DONE
};

/* Why a limit killed an agent. */
enum { KILL_NONE = 0, KILL_BUDGET, KILL_MEMORY };

typedef struct lua_host lua_host;
typedef struct script script;
typedef struct native_kind native_kind;

typedef struct op_result {
  int32_t status;
  uint32_t len;
  char *data;            /* owned; result bytes or error message */
} op_result;

typedef struct hs_agent {
  uint32_t id, parent, team;
  uint8_t kind;          /* hs_agent_kind */
  uint8_t state;         /* AS_* */
  uint8_t queued;        /* in the run list of the next step */
  uint8_t dirty;         /* has pending messages to deliver at the boundary */
  uint8_t timed_out;     /* a recv timeout fired */
  uint8_t exiting;       /* ctx.exit was called */
  uint8_t killed;        /* KILL_*: a limit was passed; every further instruction raises */
  uint8_t notice_taken;  /* the parent took this agent's exit notice with recv */
  uint8_t op_done;       /* the pending operation completed; result in op */
  uint32_t seq;          /* messages sent */
  uint32_t op_seq;       /* operations started */
  uint32_t llm_calls;    /* ctx.llm.generate calls (their default seeds derive from it) */
  uint32_t timer_serial; /* matches the live timer, if any */
  uint32_t join_target;
  uint64_t lamport;
  hs_mailbox mb;
  lua_host *host;        /* NULL for native agents and after the end */
  lua_State *co;         /* the coroutine running main */
  int co_ref;            /* registry reference keeping co alive */
  const script *script;  /* where it came from (names in messages), may be NULL */
  hs_handle result;      /* result after the end (one reference), or NONE */
  int32_t exit_status;   /* 0, or HS_E* after a failure */
  char *error;           /* failure message, owned */
  op_result op;          /* result of the last completed operation */
  const char *op_name;   /* kind of the pending or last operation (static or registered) */
  uint8_t op_external;   /* the pending operation's result comes from outside */
  hs_handle *owned;      /* handles written with ctx.memory.write */
  uint32_t nowned, capowned;
  const native_kind *native;
  void *native_state;
  char *native_args;     /* native: args kept until the first activation */
  uint32_t native_args_len;
} hs_agent;

struct lua_host {
  lua_State *L;
  hs_runtime *rt;
  uint64_t mem_used, mem_limit;
  uint32_t agents;       /* agents living in this state */
  uint32_t team;         /* for light team hosts, the team; 0 for an isolated agent's own state */
  uint32_t refusals;     /* consecutive refused allocations */
  int cache_ref;         /* registry table: script key -> main function (team hosts) */
  uint64_t next_object_id; /* last id given by lua_order.c */
};

struct native_kind {
  char *name;
  hs_native_agent vt;
  void *kind_ud;
};

typedef struct op_kind {
  char *name;
  int flags;             /* HS_OP_EXTERNAL, HS_OP_STEP_BOUND */
  hs_op_start_fn start;
  void *ud;
} op_kind;

typedef struct completion {
  hs_op_token token;
  uint64_t step;         /* replay: the step at which the log delivered it */
  char kind[48];         /* replay: the operation's kind, as logged (cut to fit) */
  int32_t status;
  uint32_t len;
  char *data;
  struct completion *next;
} completion;

typedef struct team_entry {
  uint32_t team;
  lua_host *host;
} team_entry;

#define AGENT_CHUNK_BITS 12
#define AGENT_CHUNK (1u << AGENT_CHUNK_BITS)

struct hs_runtime {
  hs_runtime_config cfg;
  char *log_path, *replay_path;
  hs_arena *arena;
  hs_slab *slab;          /* small blocks of every Lua state (lua_host.c) */
  char errmsg[HS_ERRMSG_SIZE];

  /* agents: chunks of AGENT_CHUNK structs, allocated as ids grow */
  hs_agent **chunks;
  uint32_t nchunks;
  uint32_t nagents;      /* ids 1..nagents exist */
  hs_agent *current;     /* the agent running now, or NULL */

  /* light team hosts: a small open-addressing table team -> host */
  team_entry *teams;
  uint32_t teams_cap, teams_count;
  uint32_t next_team;

  /* the loop */
  uint64_t step;
  int started, finished;
  int stopped;            /* ended by max_steps or a stop request */
  atomic_int stop_requested;
  uint32_t *run_now, *run_next;   /* ids to run this step / next step */
  uint32_t nrun_now, nrun_next, caprun_now, caprun_next;
  uint32_t *dirty;                /* recipients with pending messages (lockstep) */
  uint32_t ndirty, capdirty;
  hs_timerheap timers;

  /* operations */
  hs_engine_step_fn engine_step; /* hs_runtime_set_engine */
  void *engine_ud;
  op_kind *op_kinds;
  uint32_t nop_kinds;
  uint32_t ops_in_flight;
  pthread_mutex_t completions_lock;
  pthread_cond_t completions_cond;
  completion *completions;        /* posted by hs_runtime_op_complete, newest first */
  completion *replay_ops;         /* replay: logged results of external operations */
  hs_op_token *bound;             /* lockstep: step-bound operations started and not yet */
  uint32_t nbound, capbound;      /* posted; the next boundary waits for them (loop.c) */
  struct {
    void (*fn)(void *ud);
    void *ud;
  } on_destroy[16];               /* hs_runtime_on_destroy, called in reverse order */
  uint32_t non_destroy;

  native_kind *natives;
  uint32_t nnatives;

  /* scripts */
  script *scripts;                /* linked list cache */
  uint32_t nsources;              /* source-text scripts so far (unique cache keys) */
  const script *main_script;

  /* the log */
  hs_eventlog_writer *log;
  hs_eventlog_reader *replay;
  hs_replay_result *replay_res;
  int diverged;
  int destroying;        /* hs_runtime_destroy is ending agents: nothing is logged */

  /* stats */
  hs_runtime_stats stats;
  uint64_t lua_bytes;
  hs_progress_fn progress;
  void *progress_ud;
  hs_latency_fn latency;
  void *latency_ud;
  char **failures;
  size_t nfailures;
  hs_handle main_result;
  int main_exited_ok;
};

/* Raises a Lua error formatted by printf rules (luaL_error knows only Lua's few formats),
 * with the position prefix luaL_error would add. */
int lua_raisef(lua_State *L, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* runtime.c */
hs_agent *rt_agent(hs_runtime *rt, uint32_t id); /* NULL if no such id */
int rt_error(hs_runtime *rt, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
int rt_new_agent(hs_runtime *rt, uint32_t parent, uint32_t team, int kind, hs_agent **out);
void rt_finish_agent(hs_runtime *rt, hs_agent *a, int status, const char *error, hs_handle result);
int rt_send(hs_runtime *rt, hs_agent *from, uint32_t to, hs_handle h, uint32_t flags, int32_t status);
int rt_take(hs_runtime *rt, hs_agent *a, hs_msg *out);      /* takes + logs + Lamport + probe */
int rt_take_exit(hs_runtime *rt, hs_agent *a, uint32_t child, hs_msg *out);
int rt_own_handle(hs_runtime *rt, hs_agent *a, hs_handle h);
int rt_release_owned(hs_runtime *rt, hs_agent *a, hs_handle h);
int rt_log_text(hs_runtime *rt, hs_agent *a, const char *text, size_t len);
const char *rt_agent_name(const hs_agent *a); /* script name or kind, for messages */

/* loop.c */
void rt_wake(hs_runtime *rt, hs_agent *a);              /* run at the next step */
int rt_set_timer(hs_runtime *rt, hs_agent *a, uint64_t steps);
int rt_op_start(hs_runtime *rt, hs_agent *a, const char *kind, const void *req, size_t len);
void rt_run_agent(hs_runtime *rt, hs_agent *a);

/* lua_host.c */
int host_create(hs_runtime *rt, uint64_t mem_limit, uint64_t seed_mix, uint32_t team,
                lua_host **out);
void host_release(hs_runtime *rt, lua_host *h);      /* one agent fewer; closes at zero */
void host_close(lua_host *h);                       /* closes now */
void host_begin_activation(hs_runtime *rt, lua_host *h);
void *host_sentinel(void);                          /* marks runtime yields */
lua_host *host_of(lua_State *L);

/* lua_ctx.c */
void ctx_open(lua_State *L);                        /* builds the shared ctx methods */
int ctx_push(lua_State *L, hs_agent *a);            /* pushes a new ctx table for a */
int ctx_yield(lua_State *L, lua_KFunction k);       /* yield to the runtime with continuation */
int ctx_log_args(lua_State *L, char sep);           /* print and ctx.log */
hs_agent *ctx_me(lua_State *L);                     /* the running agent of this state, or raise */
int ctx_check_can_block(lua_State *L, const char *fn); /* raise where Lua cannot yield */

/* lua_llm.c: ctx.llm (generate, pin, unpin) over the "llm" operations (hswarm/llm.h) */
int llm_open(lua_State *L);                          /* adds ctx.llm to the table on top */

/* lua_order.c: deterministic next, pairs and tostring in the sandbox */
void order_open(lua_State *L);
const char *order_tolstring(lua_State *L, int idx, size_t *len); /* pushes the text */

/* lua_view.c */
void view_open(lua_State *L);
int view_push(lua_State *L, hs_runtime *rt, hs_handle h); /* takes over one reference */
void view_set_handle(lua_State *L, int idx, hs_handle h);  /* fills a view pushed with NONE */
hs_handle view_check_handle(lua_State *L, int idx, int *is_view); /* view or lightuserdata */

/* lua spawn (lua_spawn.c) */
int spawn_open(lua_State *L);

/* script.c */
struct script {
  char *path;          /* resolved path, or "=(source)" for source text */
  char *dir;           /* directory for relative spawns */
  char *source;
  size_t len;
  uint64_t hash;
  char *name;          /* short name for messages */
  script *next;
};
int script_load(hs_runtime *rt, const char *target, const script *from, const script **out);
int script_from_source(hs_runtime *rt, const char *src, size_t len, const script **out);
void scripts_free(hs_runtime *rt);

/* journal.c */
int journal(hs_runtime *rt, hs_record *rec); /* write or check one record; <0 stops the run */
int journal_open(hs_runtime *rt, const script *main, int argc, const char *const *argv);
void journal_close(hs_runtime *rt);
int journal_replay_op(hs_runtime *rt, hs_agent *a, uint32_t op_seq); /* schedule logged result */
int journal_logged_op(hs_runtime *rt, uint32_t agent, uint32_t op_seq, const char *kind);

/* native.c */
const native_kind *native_find(hs_runtime *rt, const char *name);
int native_spawn(hs_runtime *rt, const native_kind *k, hs_agent *parent_or_null, uint32_t team,
                 const void *args, size_t len, uint32_t *out_id);
void native_run(hs_runtime *rt, hs_agent *a);
int native_register_builtins(hs_runtime *rt);

#endif
