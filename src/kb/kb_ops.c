/* kb_ops.c: the knowledge base and function-level patches as runtime operations (hs_kb_attach,
 * hswarm/kb.h), so that swarm scripts reach them through ctx.call (lua/code.lua wraps them):
 * requests and results are JSON; every result is logged, so a replay needs no repository. */
#include <jansson.h>
#include <string.h>

#include "hswarm/alloc.h"
#include "hswarm/error.h"
#include "hswarm/patch.h"
#include "hswarm/runtime.h"
#include "kb/kb_impl.h"

static int reply(hs_runtime *rt, hs_op_token token, json_t *v) {
  char *s = v ? json_dumps(v, JSON_COMPACT) : NULL;
  json_decref(v);
  if (!s) return hs_runtime_op_complete(rt, token, HS_ENOMEM, "out of memory", 13);
  int rc = hs_runtime_op_complete(rt, token, 0, s, strlen(s));
  free(s);
  return rc;
}

static int fail(hs_runtime *rt, hs_op_token token, int code, const char *msg) {
  return hs_runtime_op_complete(rt, token, code, msg, strlen(msg));
}

static json_t *sym_json(const hs_kb_sym *s) {
  return json_pack("{s:s, s:s, s:s, s:s, s:i, s:i, s:i, s:i, s:s, s:s}", "kind",
                   (int)s->kind >= 0 ? hs_def_kind_name(s->kind) : "file", "name", s->name,
                   "qname", s->qname, "path", s->path, "start_line", (json_int_t)s->start_line,
                   "end_line", (json_int_t)s->end_line, "start_byte", (json_int_t)s->start_byte,
                   "end_byte", (json_int_t)s->end_byte, "signature", s->signature, "doc", s->doc);
}

/* A request that is a JSON object, or a bare string taken as {"name": it} (or the key given). */
static json_t *request(const void *req, size_t len, const char *bare_key) {
  json_error_t e;
  json_t *o = len && ((const char *)req)[0] == '{' ? json_loadb(req, len, 0, &e) : NULL;
  if (o) return o;
  json_t *s = json_stringn(req, len);
  return s ? json_pack("{s:o}", bare_key, s) : NULL;
}

static int op_sym(hs_runtime *rt, hs_op_token token, hs_agent_id agent, const void *req,
                  size_t len, void *ud) {
  (void)agent;
  json_t *r = request(req, len, "name");
  const char *name = json_string_value(json_object_get(r, "name"));
  const char *path = json_string_value(json_object_get(r, "path"));
  hs_kb_syms *s = NULL;
  int rc = !name && !path ? HS_EINVAL
           : path        ? hs_kb_file_syms(ud, path, &s)
                         : hs_kb_lookup(ud, name, &s);
  json_decref(r);
  if (rc) return fail(rt, token, rc, rc == HS_EINVAL ? "code.sym: a name or a path is needed"
                                                      : hs_kb_last_error());
  json_t *a = json_array();
  for (size_t i = 0; a && i < s->n; i++) json_array_append_new(a, sym_json(&s->items[i]));
  hs_kb_syms_free(s);
  return reply(rt, token, a);
}

static int edges(hs_runtime *rt, hs_op_token token, const void *req, size_t len, void *ud,
                 int forward) {
  json_t *r = request(req, len, "name");
  const char *name = json_string_value(json_object_get(r, "name"));
  json_int_t depth = json_is_integer(json_object_get(r, "depth"))
                         ? json_integer_value(json_object_get(r, "depth")) : 1;
  hs_kb_edges *e = NULL;
  int rc = name ? hs_kb_deps(ud, name, forward, (uint32_t)(depth < 1 || depth > 16 ? 0 : depth), &e)
                : HS_EINVAL;
  json_decref(r);
  if (rc) return fail(rt, token, rc, name ? hs_kb_last_error() : "a name is needed");
  json_t *a = json_array();
  for (size_t i = 0; a && i < e->n; i++) {
    const hs_kb_edge *x = &e->items[i];
    json_t *o = json_pack("{s:i, s:s, s:i, s:o, s:o}", "depth", (json_int_t)x->depth, "name",
                          x->name, "line", (json_int_t)x->line, "from", sym_json(&x->from), "to",
                          x->resolved ? sym_json(&x->to) : json_null());
    json_array_append_new(a, o);
  }
  hs_kb_edges_free(e);
  return reply(rt, token, a);
}

static int op_callers(hs_runtime *rt, hs_op_token token, hs_agent_id agent, const void *req,
                      size_t len, void *ud) {
  (void)agent;
  return edges(rt, token, req, len, ud, 0);
}

static int op_callees(hs_runtime *rt, hs_op_token token, hs_agent_id agent, const void *req,
                      size_t len, void *ud) {
  (void)agent;
  return edges(rt, token, req, len, ud, 1);
}

static int op_search(hs_runtime *rt, hs_op_token token, hs_agent_id agent, const void *req,
                     size_t len, void *ud) {
  (void)agent;
  json_t *r = request(req, len, "query");
  const char *q = json_string_value(json_object_get(r, "query"));
  json_int_t limit = json_is_integer(json_object_get(r, "limit"))
                         ? json_integer_value(json_object_get(r, "limit")) : 10;
  hs_kb_hits *h = NULL;
  int rc = q ? hs_kb_search(ud, q, (size_t)(limit < 1 ? 0 : limit), &h) : HS_EINVAL;
  json_decref(r);
  if (rc) return fail(rt, token, rc, q ? hs_kb_last_error() : "a query is needed");
  json_t *a = json_array();
  for (size_t i = 0; a && i < h->n; i++)
    json_array_append_new(a, json_pack("{s:f, s:o}", "score", h->items[i].score, "definition",
                                       sym_json(&h->items[i].sym)));
  json_t *o = json_pack("{s:s, s:o}", "method", h->method, "hits", a);
  hs_kb_hits_free(h);
  return reply(rt, token, o);
}

static int op_slice(hs_runtime *rt, hs_op_token token, hs_agent_id agent, const void *req,
                    size_t len, void *ud) {
  (void)agent;
  json_t *r = request(req, len, "name");
  const char *name = json_string_value(json_object_get(r, "name"));
  hs_kb_slice *s = NULL;
  int rc = name ? hs_kb_slice_of(ud, name, ((hs_kb *)ud)->ops_tok, &s) : HS_EINVAL;
  json_decref(r);
  if (rc) return fail(rt, token, rc, name ? hs_kb_last_error() : "a name is needed");
  json_t *o = json_pack("{s:s%, s:o, s:i, s:i, s:i, s:i, s:i}", "text", s->text, s->len,
                        "definition", sym_json(&s->target), "tokens",
                        (json_int_t)s->slice_tokens, "whole_file_tokens",
                        (json_int_t)s->whole_tokens, "own_file_tokens",
                        (json_int_t)s->own_file_tokens, "callees", (json_int_t)s->n_callees,
                        "callers", (json_int_t)s->n_callers);
  hs_kb_slice_free(s);
  return reply(rt, token, o);
}

/* {"task": text, "budget": tokens} */
static int op_map(hs_runtime *rt, hs_op_token token, hs_agent_id agent, const void *req,
                  size_t len, void *ud) {
  (void)agent;
  json_t *r = request(req, len, "task");
  const char *task = json_string_value(json_object_get(r, "task"));
  json_int_t budget = json_is_integer(json_object_get(r, "budget"))
                          ? json_integer_value(json_object_get(r, "budget")) : 1024;
  hs_kb_map *m = NULL;
  int rc = hs_kb_repo_map(ud, task, (uint64_t)(budget < 0 ? 0 : budget), ((hs_kb *)ud)->ops_tok,
                          &m);
  json_decref(r);
  if (rc) return fail(rt, token, rc, hs_kb_last_error());
  json_t *o = json_pack("{s:s%, s:i, s:i, s:i, s:i}", "text", m->text, m->len, "tokens",
                        (json_int_t)m->tokens, "files", (json_int_t)m->files, "definitions",
                        (json_int_t)m->definitions, "personalized", (json_int_t)m->personalized);
  hs_kb_map_free(m);
  return reply(rt, token, o);
}

/* {"patch": text, "root": dir (default: the repository), "file": default path, "write": bool} */
static int op_patch(hs_runtime *rt, hs_op_token token, hs_agent_id agent, const void *req,
                    size_t len, void *ud) {
  (void)agent;
  hs_kb *kb = ud;
  json_t *r = request(req, len, "patch");
  const char *text = json_string_value(json_object_get(r, "patch"));
  const char *root = json_string_value(json_object_get(r, "root"));
  const char *file = json_string_value(json_object_get(r, "file"));
  int write = json_is_true(json_object_get(r, "write"));
  if (!text) {
    json_decref(r);
    return fail(rt, token, HS_EINVAL, "code.patch: \"patch\" (the patch text) is needed");
  }
  hs_patch *p = NULL;
  hs_patch_result *res = NULL;
  json_t *o;
  if (hs_patch_parse(text, json_string_length(json_object_get(r, "patch")), &p) != 0) {
    o = json_pack("{s:b, s:b, s:s, s:[s], s:[]}", "ok", 0, "written", 0, "diff", "", "errors",
                  hs_patch_last_error(), "files");
  } else if (hs_patch_apply(p, root ? root : kb->root, file, &res) != 0) {
    o = json_pack("{s:b, s:b, s:s, s:[s], s:[]}", "ok", 0, "written", 0, "diff", "", "errors",
                  hs_patch_last_error(), "files");
  } else {
    int written = res->ok && write && hs_patch_write(res, root ? root : kb->root) == 0;
    json_t *errs = json_array(), *files = json_array();
    for (size_t i = 0; i < res->n_errors; i++)
      json_array_append_new(errs, json_string(res->errors[i]));
    if (res->ok && write && !written)
      json_array_append_new(errs, json_string(hs_patch_last_error()));
    for (size_t i = 0; i < res->n_files; i++)
      json_array_append_new(files, json_pack("{s:s, s:s%}", "path", res->files[i].path, "text",
                                             res->files[i].after, res->files[i].after_len));
    o = json_pack("{s:b, s:b, s:s, s:o, s:o}", "ok", res->ok, "written", written, "diff",
                  res->diff, "errors", errs, "files", files);
  }
  hs_patch_result_free(res);
  hs_patch_free(p);
  json_decref(r);
  return reply(rt, token, o);
}

int hs_kb_attach(struct hs_runtime *rt, hs_kb *kb) {
  static const struct {
    const char *kind;
    hs_op_start_fn fn;
  } ops[] = {{"code.sym", op_sym},       {"code.callers", op_callers}, {"code.callees", op_callees},
             {"code.search", op_search}, {"code.slice", op_slice},     {"code.patch", op_patch},
             {"code.map", op_map}};
  if (!rt || !kb) return HS_EINVAL;
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
    int rc = hs_runtime_register_op(rt, ops[i].kind, HS_OP_EXTERNAL, ops[i].fn, kb);
    if (rc) return rc;
  }
  return 0;
}

void hs_kb_set_ops_tokenizer(hs_kb *kb, const struct hs_tokenizer *tok) {
  if (kb) kb->ops_tok = tok;
}
