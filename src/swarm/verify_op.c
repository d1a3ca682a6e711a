/* verify_op.c: command verifiers as the runtime operation "verify" (hswarm/verify.h): a JSON
 * request from an agent, the command run at once in its sandbox, the outcome as the result. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "hswarm/alloc.h"
#include "hswarm/error.h"
#include "hswarm/runtime.h"
#include "hswarm/verify.h"

#define MAX_FILES 256

static int fail(hs_runtime *rt, hs_op_token token, int code, const char *msg) {
  return hs_runtime_op_complete(rt, token, code, msg, strlen(msg));
}

static int number(json_t *o, const char *key, double lo, double hi, double *out, char *msg,
                  size_t cap) {
  json_t *v = json_object_get(o, key);
  if (!v) return 0;
  if (!json_is_number(v) || !(json_number_value(v) >= lo && json_number_value(v) <= hi)) {
    snprintf(msg, cap, "verify: \"%s\" must be a number in [%g, %g]", key, lo, hi);
    return -1;
  }
  *out = json_number_value(v);
  return 0;
}

static int start(hs_runtime *rt, hs_op_token token, hs_agent_id agent, const void *req,
                 size_t len, void *ud) {
  (void)agent, (void)ud;
  char msg[600];
  json_error_t je;
  json_t *o = json_loadb(req, len, 0, &je);
  if (!o || !json_is_object(o)) {
    json_decref(o);
    snprintf(msg, sizeof msg, "verify: the request is not a JSON object");
    return fail(rt, token, HS_EINVAL, msg);
  }
  static const char *const known[] = {"cmd", "workdir", "files", "time_limit", "cpu_seconds",
                                      "memory", "max_processes", "max_output", "allow_network",
                                      NULL};
  const char *key;
  json_t *v;
  json_object_foreach(o, key, v) {
    int ok = 0;
    for (int i = 0; known[i]; i++) ok |= !strcmp(key, known[i]);
    if (!ok) {
      snprintf(msg, sizeof msg, "verify: unknown key \"%s\"", key);
      json_decref(o);
      return fail(rt, token, HS_EINVAL, msg);
    }
  }
  hs_verify_opts vo;
  hs_verify_opts_init(&vo);
  const char *cmd = json_string_value(json_object_get(o, "cmd"));
  json_t *wd = json_object_get(o, "workdir"), *files = json_object_get(o, "files");
  double d;
  int bad = !cmd;
  if (bad) snprintf(msg, sizeof msg, "verify: \"cmd\" (a string) is required");
  if (!bad && wd && !json_is_string(wd)) {
    bad = 1;
    snprintf(msg, sizeof msg, "verify: \"workdir\" must be a string");
  }
  if (!bad && files && (!json_is_object(files) || json_object_size(files) > MAX_FILES)) {
    bad = 1;
    snprintf(msg, sizeof msg, "verify: \"files\" must be an object of at most %d path: text",
             MAX_FILES);
  }
  vo.workdir = wd ? json_string_value(wd) : NULL;
  if (!bad && !number(o, "time_limit", 0.001, 86400, &vo.time_limit_s, msg, sizeof msg)) {
    d = (double)vo.cpu_seconds;
    bad = number(o, "cpu_seconds", 1, 86400, &d, msg, sizeof msg);
    vo.cpu_seconds = (uint64_t)d;
    d = (double)vo.memory_bytes;
    bad = bad || number(o, "memory", 1 << 20, 1e15, &d, msg, sizeof msg);
    vo.memory_bytes = (uint64_t)d;
    d = (double)vo.max_processes;
    bad = bad || number(o, "max_processes", 1, 1e6, &d, msg, sizeof msg);
    vo.max_processes = (uint64_t)d;
    d = (double)vo.max_output;
    bad = bad || number(o, "max_output", 0, 1 << 30, &d, msg, sizeof msg);
    vo.max_output = (size_t)d;
  } else {
    bad = 1;
  }
  vo.allow_network = json_is_true(json_object_get(o, "allow_network"));
  hs_verify_file fl[MAX_FILES];
  size_t nf = 0;
  if (!bad && files) {
    json_object_foreach(files, key, v) {
      if (!json_is_string(v)) {
        bad = 1;
        snprintf(msg, sizeof msg, "verify: files[\"%s\"] must be a string", key);
        break;
      }
      fl[nf++] = (hs_verify_file){key, json_string_value(v), json_string_length(v)};
    }
  }
  vo.files = fl;
  vo.n_files = nf;
  if (bad) {
    json_decref(o);
    return fail(rt, token, HS_EINVAL, msg);
  }
  hs_verify_result r;
  int rc = hs_verify_command(cmd, &vo, &r);
  json_decref(o);
  if (rc) return fail(rt, token, rc, hs_verify_last_error());
  size_t cap = r.output_len + strlen(r.sandbox) + 128;
  char *out = hs_malloc(cap);
  if (!out) {
    hs_verify_result_free(&r);
    return fail(rt, token, HS_ENOMEM, "verify: out of memory");
  }
  int n = snprintf(out, cap, "%d %d %d %d %d %.3f\n%s\n", r.passed, r.exit_code, r.signal,
                   r.timed_out, r.truncated, r.seconds, r.sandbox);
  memcpy(out + n, r.output, r.output_len);
  rc = hs_runtime_op_complete(rt, token, 0, out, (size_t)n + r.output_len);
  hs_free(out);
  hs_verify_result_free(&r);
  return rc;
}

int hs_verify_attach(hs_runtime *rt) {
  return hs_runtime_register_op(rt, "verify", 1, start, NULL);
}
