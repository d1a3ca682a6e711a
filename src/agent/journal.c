/* journal.c: the runtime's side of the event log: writing it during a run, and checking a replay
 * against it.
 *
 * During a run every event (spawn, message taken, operation completed, exit, log line, end) is
 * appended as it happens. During a replay the same calls compare each event with the next record
 * of the log instead; the first difference stops the run and is reported with the record number,
 * the agent, and both records described. Operations that are not timers are not re-executed in a
 * replay: their logged results are fed back at the steps the log gives (journal_replay_op), so a
 * replay needs no model and no network. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/rt.h"
#include "hswarm/alloc.h"
#include "hswarm/error.h"

static _Thread_local hs_errbuf replay_err;
const char *hs_runtime_replay_error(void) { return replay_err.msg; }

int journal_open(hs_runtime *rt, const script *main, int argc, const char *const *argv) {
  if (!rt->log_path || rt->replay) return 0;
  hs_rec_header h = {.seed = rt->cfg.seed,
                     .mode = (uint32_t)rt->cfg.mode,
                     .mailbox_capacity = rt->cfg.mailbox_capacity,
                     .arena_bytes = rt->cfg.arena_bytes,
                     .agent_memory = rt->cfg.agent_memory,
                     .instruction_budget = rt->cfg.instruction_budget,
                     .team_memory = rt->cfg.team_memory,
                     .max_steps = rt->cfg.max_steps,
                     .script_hash = main->hash,
                     .script_path = main->path,
                     .script_path_len = (uint32_t)strlen(main->path),
                     .argc = (uint32_t)argc,
                     .argv = argv};
  int rc = hs_eventlog_writer_open(rt->log_path, &h, &rt->log);
  if (rc) return rt_error(rt, rc, "%s", hs_eventlog_last_error());
  return 0;
}

void journal_close(hs_runtime *rt) {
  if (rt->log) hs_eventlog_writer_close(rt->log);
  rt->log = NULL;
  if (rt->replay) hs_eventlog_reader_close(rt->replay);
  rt->replay = NULL;
}

static uint32_t record_agent(const hs_record *r) {
  switch (r->type) {
  case HS_REC_SPAWN: return r->u.spawn.agent;
  case HS_REC_DELIVER: return r->u.deliver.to;
  case HS_REC_OP: return r->u.op.agent;
  case HS_REC_EXIT: return r->u.exit.agent;
  case HS_REC_LOG: return r->u.log.agent;
  default: return 0;
  }
}

static int bytes_eq(const void *a, uint32_t la, const void *b, uint32_t lb) {
  return la == lb && (la == 0 || memcmp(a, b, la) == 0);
}

static int records_equal(const hs_record *a, const hs_record *b) {
  if (a->type != b->type) return 0;
  switch (a->type) {
  case HS_REC_SPAWN: {
    const hs_rec_spawn *x = &a->u.spawn, *y = &b->u.spawn;
    return x->step == y->step && x->agent == y->agent && x->parent == y->parent &&
           x->team == y->team && x->kind == y->kind && x->target_hash == y->target_hash;
  }
  case HS_REC_DELIVER: {
    const hs_rec_deliver *x = &a->u.deliver, *y = &b->u.deliver;
    return x->step == y->step && x->to == y->to && x->from == y->from &&
           x->lamport == y->lamport && x->seq == y->seq && x->flags == y->flags &&
           x->len == y->len && x->data_hash == y->data_hash;
  }
  case HS_REC_OP: {
    const hs_rec_op *x = &a->u.op, *y = &b->u.op;
    return x->step == y->step && x->agent == y->agent && x->op_seq == y->op_seq &&
           x->status == y->status && bytes_eq(x->kind, x->kind_len, y->kind, y->kind_len) &&
           bytes_eq(x->data, x->data_len, y->data, y->data_len);
  }
  case HS_REC_EXIT: {
    const hs_rec_exit *x = &a->u.exit, *y = &b->u.exit;
    return x->step == y->step && x->agent == y->agent && x->status == y->status &&
           x->lamport == y->lamport && x->len == y->len && x->data_hash == y->data_hash &&
           bytes_eq(x->message, x->message_len, y->message, y->message_len);
  }
  case HS_REC_LOG: {
    const hs_rec_log *x = &a->u.log, *y = &b->u.log;
    return x->step == y->step && x->agent == y->agent &&
           bytes_eq(x->text, x->text_len, y->text, y->text_len);
  }
  case HS_REC_END: {
    const hs_rec_end *x = &a->u.end, *y = &b->u.end;
    return x->step == y->step && x->agents == y->agents && x->messages == y->messages &&
           x->failed == y->failed;
  }
  default: return 0;
  }
}

static void diverge(hs_runtime *rt, uint64_t record, uint32_t agent, const char *expected,
                    const hs_record *actual) {
  rt->diverged = 1;
  hs_replay_result *res = rt->replay_res;
  if (!res) return;
  res->identical = 0;
  res->record = record;
  res->agent = agent;
  snprintf(res->expected, sizeof res->expected, "%s", expected);
  if (actual)
    hs_record_describe(actual, res->actual, sizeof res->actual);
  else
    snprintf(res->actual, sizeof res->actual, "(the replay ended here)");
}

int journal(hs_runtime *rt, hs_record *rec) {
  if (rt->destroying || rt->diverged) return 0;
  if (rt->log) {
    rt->stats.log_records++;
    int rc = hs_eventlog_writer_append(rt->log, rec);
    if (rc) {
      rt->diverged = 1; /* stops the run: a log that cannot be written is useless */
      return rt_error(rt, rc, "event log: %s", hs_eventlog_last_error());
    }
    return 0;
  }
  if (!rt->replay) return 0;
  rt->stats.log_records++;
  if (rt->replay_res) rt->replay_res->records++;
  hs_record logged;
  int rc = hs_eventlog_reader_next(rt->replay, &logged);
  uint64_t index = hs_eventlog_reader_index(rt->replay);
  if (rc < 0) {
    diverge(rt, index + 1, record_agent(rec), hs_eventlog_last_error(), rec);
    return rt_error(rt, rc, "%s", hs_eventlog_last_error());
  }
  if (rc == 0) {
    diverge(rt, index + 1, record_agent(rec),
            hs_eventlog_reader_truncated(rt->replay)
                ? "(the log ends here, inside a partial record: the run that wrote it was cut short)"
                : "(the log ends here)",
            rec);
    return rt_error(rt, HS_EDIVERGE, "replay diverged: the log ends before the run");
  }
  if (!records_equal(&logged, rec)) {
    char expected[512];
    hs_record_describe(&logged, expected, sizeof expected);
    uint32_t agent = record_agent(rec) ? record_agent(rec) : record_agent(&logged);
    diverge(rt, index, agent, expected, rec);
    return rt_error(rt, HS_EDIVERGE, "replay diverged at record %llu",
                    (unsigned long long)index);
  }
  return 0;
}

int journal_logged_op(hs_runtime *rt, uint32_t agent, uint32_t op_seq, const char *kind) {
  hs_op_token token = ((uint64_t)agent << 32) | op_seq;
  char cut[48];
  snprintf(cut, sizeof cut, "%s", kind);
  for (completion *c = rt->replay_ops; c; c = c->next)
    if (c->token == token) return !strcmp(c->kind, cut);
  return 0;
}

int journal_replay_op(hs_runtime *rt, hs_agent *a, uint32_t op_seq) {
  hs_op_token token = ((uint64_t)a->id << 32) | op_seq;
  /* the logged result, if any, was indexed before the run (hs_runtime_replay) */
  for (completion *c = rt->replay_ops; c; c = c->next)
    if (c->token == token) return 0; /* delivered by drain_completions at its logged step */
  /* not in the log: the run cannot continue the way it went */
  char expected[160];
  snprintf(expected, sizeof expected, "(no result of operation %u of agent %u in the log)",
           op_seq, a->id);
  hs_record rec = {.type = HS_REC_OP};
  rec.u.op = (hs_rec_op){.step = rt->step, .agent = a->id, .op_seq = op_seq,
                         .kind = a->op_name, .kind_len = (uint32_t)strlen(a->op_name)};
  diverge(rt, hs_eventlog_reader_index(rt->replay) + 1, a->id, expected, &rec);
  return rt_error(rt, HS_EDIVERGE, "%s", expected);
}

/* Collects the logged results of every operation that is not a timer. */
static int index_ops(const char *path, completion **out) {
  hs_eventlog_reader *r;
  hs_rec_header h;
  int rc = hs_eventlog_reader_open(path, &r, &h);
  if (rc) return rc;
  hs_record rec;
  completion **tail = out;
  while ((rc = hs_eventlog_reader_next(r, &rec)) > 0) {
    if (rec.type != HS_REC_OP ||
        (rec.u.op.kind_len == 5 && !memcmp(rec.u.op.kind, "timer", 5)))
      continue;
    completion *c = hs_calloc(1, sizeof *c);
    if (!c || (rec.u.op.data_len && !(c->data = hs_malloc(rec.u.op.data_len)))) {
      hs_free(c);
      rc = HS_ENOMEM;
      break;
    }
    c->token = ((uint64_t)rec.u.op.agent << 32) | rec.u.op.op_seq;
    c->step = rec.u.op.step;
    c->status = rec.u.op.status;
    c->len = rec.u.op.data_len;
    snprintf(c->kind, sizeof c->kind, "%.*s", (int)rec.u.op.kind_len, rec.u.op.kind);
    if (c->len) memcpy(c->data, rec.u.op.data, c->len);
    *tail = c;
    tail = &c->next;
  }
  hs_eventlog_reader_close(r);
  return rc < 0 ? rc : 0;
}

int hs_runtime_replay(const char *log_path, int quiet, hs_replay_result *res) {
  memset(res, 0, sizeof *res);
  hs_eventlog_reader *reader;
  hs_rec_header h;
  int rc = hs_eventlog_reader_open(log_path, &reader, &h);
  if (rc) return hs_set_error(&replay_err, rc, "%s", hs_eventlog_last_error());
  hs_runtime_config cfg;
  hs_runtime_config_init(&cfg);
  cfg.seed = h.seed;
  cfg.mode = h.mode == 1 ? HS_MODE_FREE : HS_MODE_LOCKSTEP;
  cfg.mailbox_capacity = h.mailbox_capacity;
  cfg.arena_bytes = h.arena_bytes;
  cfg.agent_memory = h.agent_memory;
  cfg.instruction_budget = h.instruction_budget;
  cfg.team_memory = h.team_memory;
  cfg.max_steps = h.max_steps;
  cfg.quiet = quiet;
  hs_runtime *rt;
  rc = hs_runtime_create(&cfg, &rt);
  if (rc) {
    hs_eventlog_reader_close(reader);
    return hs_set_error(&replay_err, rc, "%s: %s", log_path, hs_runtime_create_error());
  }
  rc = index_ops(log_path, &rt->replay_ops);
  if (rc) {
    hs_eventlog_reader_close(reader);
    hs_runtime_destroy(rt);
    return hs_set_error(&replay_err, rc, "%s", hs_eventlog_last_error());
  }
  rt->replay = reader;
  rt->replay_res = res;
  res->identical = 1;
  char *path = hs_strdup(h.script_path);
  rc = hs_runtime_spawn_main(rt, path ? path : "", (int)h.argc, h.argv, NULL);
  hs_free(path);
  if (rc && !rt->diverged) {
    rc = hs_set_error(&replay_err, rc, "cannot start the replay: %s", rt->errmsg);
    hs_runtime_destroy(rt);
    return rc;
  }
  if (rt->main_script && rt->main_script->hash != h.script_hash) res->script_changed = 1;
  rc = hs_runtime_run(rt);
  if (!rt->diverged) {
    hs_record extra;
    int more = hs_eventlog_reader_next(rt->replay, &extra);
    if (more > 0) {
      char expected[512];
      hs_record_describe(&extra, expected, sizeof expected);
      diverge(rt, hs_eventlog_reader_index(rt->replay), record_agent(&extra), expected, NULL);
    } else if (more < 0) {
      diverge(rt, hs_eventlog_reader_index(rt->replay) + 1, 0, hs_eventlog_last_error(), NULL);
    }
  }
  hs_runtime_destroy(rt);
  (void)rc;
  return 0;
}
