/* grammar_schema.c: a subset of JSON Schema to GBNF text (include/hswarm/grammar.h lists what
 * is supported, and the whitespace policy).
 *
 * The schema is parsed with jansson (which keeps object keys in document order, so properties
 * come out in schema order) and walked recursively, each call producing a GBNF expression for
 * one subschema: a reference to a shared primitive rule (string, number, value, ...), an inline
 * group (an enum's literals, a bounded string), or a reference to a rule made for it (objects,
 * arrays, anyOf, type lists, $defs). Rules are named after where they are in the schema
 * (a property "name" of the root gives "name", an array's items "<array>-item"), made unique
 * with a numeric suffix; the primitives are emitted at the end, only those used (with what they
 * depend on). The grammar is checked by compiling it before it is returned.
 *
 * Objects. Properties p0..pn-1 in schema order, some required. A member list that starts at pk
 * has no members before it, so pk must come before the first required property f; the list is
 * then pk followed by the rest in order, each required one as "," pj and each optional one as
 * ("," pj)?. So members ::= alternatives for k = 0..f, plus nothing when none is required. The
 * alternatives start with different keys, so the matcher keeps them apart after a few bytes.
 * Every value is followed by ws inside its member, so a member list is followed directly by "}".
 *
 * Strings exclude \u0000 and unpaired surrogate escapes; numbers are bounded in digits (16 before
 * the point, 16 after it, 2 in the exponent) so every one fits an int64 or a finite double, and
 * no model can write digits forever. Recursion through the schema is bounded by
 * HS_GRAMMAR_MAX_NESTING; $refs are compiled once each, so recursive schemas give recursive
 * rules (left recursion and rules that can never finish are then refused by the parser). */
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/grammar_internal.h"
#include "hswarm/alloc.h"
#include "hswarm/error.h"

/* ======================================================================================== */
/* A string builder                                                                         */
/* ======================================================================================== */

typedef struct sb {
  char *s;
  size_t n, cap;
  bool oom;
} sb;

static void sb_put(sb *b, const char *s, size_t n) {
  if (b->oom || n == 0) return;
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->n + n + 1) cap *= 2;
    char *q = hs_realloc(b->s, cap);
    if (!q) {
      b->oom = true;
      return;
    }
    b->s = q;
    b->cap = cap;
  }
  memcpy(b->s + b->n, s, n);
  b->n += n;
  b->s[b->n] = 0;
}

static void sb_puts(sb *b, const char *s) { sb_put(b, s, strlen(s)); }

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void sb_printf(sb *b, const char *fmt, ...) {
  char buf[128];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= sizeof buf) {
    b->oom = true; /* never happens: only short numeric formats are used */
    return;
  }
  sb_put(b, buf, (size_t)n);
}

/* A GBNF string literal for the bytes s[0..n) (valid UTF-8). */
static void sb_literal(sb *b, const char *s, size_t n) {
  sb_put(b, "\"", 1);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"') sb_put(b, "\\\"", 2);
    else if (c == '\\') sb_put(b, "\\\\", 2);
    else if (c < 0x20 || c == 0x7F) sb_printf(b, "\\x%02X", c);
    else sb_put(b, (const char *)&c, 1);
  }
  sb_put(b, "\"", 1);
}

/* ======================================================================================== */
/* The converter                                                                            */
/* ======================================================================================== */

enum {
  P_WS = 1 << 0,
  P_VALUE = 1 << 1,
  P_OBJECT = 1 << 2,
  P_MEMBER = 1 << 3,
  P_ARRAY = 1 << 4,
  P_STRING = 1 << 5,
  P_CHAR = 1 << 6,
  P_UESC = 1 << 7,
  P_HEX = 1 << 8,
  P_NUMBER = 1 << 9,
  P_INTEGER = 1 << 10,
  P_INTEGRAL = 1 << 11,
  P_BOOLEAN = 1 << 12,
  P_NULL = 1 << 13,
};

typedef struct prim {
  unsigned bit, deps;
  const char *name, *body;
} prim;

static const prim prims[] = {
    {P_VALUE, P_OBJECT | P_ARRAY | P_STRING | P_NUMBER | P_BOOLEAN | P_NULL, "value",
     "object | array | string | number | boolean | null"},
    {P_OBJECT, P_WS | P_MEMBER, "object", "\"{\" ws ( member ( \",\" ws member )* )? \"}\""},
    {P_MEMBER, P_STRING | P_WS | P_VALUE, "member", "string ws \":\" ws value ws"},
    {P_ARRAY, P_WS | P_VALUE, "array", "\"[\" ws ( value ws ( \",\" ws value ws )* )? \"]\""},
    {P_STRING, P_CHAR, "string", "\"\\\"\" char* \"\\\"\""},
    {P_CHAR, P_UESC, "char", "[^\"\\\\\\x00-\\x1F] | \"\\\\\" ( [\"\\\\/bfnrt] | \"u\" unicode-escape )"},
    {P_UESC, P_HEX, "unicode-escape",
     "[1-9a-cA-Ce-fE-F] hex hex hex | [dD] [0-7] hex hex |\n"
     "  \"0\" ( [1-9a-fA-F] hex hex | \"0\" ( [1-9a-fA-F] hex | \"0\" [1-9a-fA-F] ) ) |\n"
     "  [dD] [89abAB] hex hex \"\\\\u\" [dD] [c-fC-F] hex hex"},
    {P_HEX, 0, "hex", "[0-9a-fA-F]"},
    {P_NUMBER, P_INTEGRAL, "number",
     "\"-\"? integral ( \".\" [0-9]{1,16} )? ( [eE] [-+]? [0-9]{1,2} )?"},
    {P_INTEGER, P_INTEGRAL, "integer", "\"-\"? integral"},
    {P_INTEGRAL, 0, "integral", "\"0\" | [1-9] [0-9]{0,15}"},
    {P_BOOLEAN, 0, "boolean", "\"true\" | \"false\""},
    {P_NULL, 0, "null", "\"null\""},
    {P_WS, 0, "ws", "( \" \" | \"\\n\" [ \\t]{0,20} )?"},
};
#define N_PRIMS (sizeof prims / sizeof prims[0])

typedef struct srule {
  char *name;
  sb body;
  bool filled;
} srule;

typedef struct ref_memo {
  json_t *schema;
  size_t rule;
} ref_memo;

typedef struct conv {
  json_t *root;
  srule *rules;
  size_t n_rules, cap_rules;
  uint32_t *names; /* open addressing over rules: index + 1 */
  size_t names_cap;
  ref_memo *refs;
  size_t n_refs, cap_refs;
  unsigned used; /* P_* */
  char path[512];
  size_t path_len;
  int depth;
} conv;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static int serr(conv *c, const char *fmt, ...) {
  char msg[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return hs_set_error(hs_grammar_errbuf(), HS_EINVAL, "json schema at %s: %s", c->path, msg);
}

static int nomem(void) {
  return hs_set_error(hs_grammar_errbuf(), HS_ENOMEM, "json schema: out of memory");
}

/* Path handling: push appends "/seg" (JSON-pointer escaped, cut short if long); pop restores. */
static size_t path_push(conv *c, const char *seg) {
  size_t saved = c->path_len;
  if (c->path_len + 2 >= sizeof c->path) return saved;
  c->path[c->path_len++] = '/';
  for (const char *s = seg; *s && c->path_len + 3 < sizeof c->path; s++) {
    if (*s == '~') c->path[c->path_len++] = '~', c->path[c->path_len++] = '0';
    else if (*s == '/') c->path[c->path_len++] = '~', c->path[c->path_len++] = '1';
    else c->path[c->path_len++] = *s;
  }
  c->path[c->path_len] = 0;
  return saved;
}

static void path_pop(conv *c, size_t saved) {
  c->path_len = saved;
  c->path[saved] = 0;
}

static size_t path_push_index(conv *c, size_t i) {
  char buf[24];
  snprintf(buf, sizeof buf, "%zu", i);
  return path_push(c, buf);
}

/* ---- rule names ---- */

static uint32_t str_hash(const char *s) {
  uint32_t h = 2166136261u;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
  return h;
}

static bool name_taken(const conv *c, const char *name) {
  for (size_t i = 0; i < N_PRIMS; i++)
    if (strcmp(prims[i].name, name) == 0) return true;
  if (!c->names_cap) return false;
  for (size_t j = str_hash(name) & (c->names_cap - 1); c->names[j]; j = (j + 1) & (c->names_cap - 1))
    if (strcmp(c->rules[c->names[j] - 1].name, name) == 0) return true;
  return false;
}

static int names_insert(conv *c, size_t idx) {
  if ((c->n_rules + 1) * 2 > c->names_cap) {
    size_t cap = c->names_cap ? c->names_cap * 2 : 64;
    uint32_t *t = hs_calloc(cap, sizeof *t);
    if (!t) return nomem();
    for (size_t i = 0; i < c->names_cap; i++) {
      uint32_t v = c->names[i];
      if (!v) continue;
      size_t j = str_hash(c->rules[v - 1].name) & (cap - 1);
      while (t[j]) j = (j + 1) & (cap - 1);
      t[j] = v;
    }
    hs_free(c->names);
    c->names = t;
    c->names_cap = cap;
  }
  size_t j = str_hash(c->rules[idx].name) & (c->names_cap - 1);
  while (c->names[j]) j = (j + 1) & (c->names_cap - 1);
  c->names[j] = (uint32_t)idx + 1;
  return 0;
}

/* A new rule named after hint (letters, digits and '-' kept, runs of others become one '-'),
 * made unique with a suffix. */
static int rule_new(conv *c, const char *hint, size_t *out) {
  char base[72];
  size_t n = 0;
  for (const char *s = hint; *s && n < 64; s++) {
    unsigned char ch = (unsigned char)*s;
    bool word = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
    if (word) base[n++] = (char)ch;
    else if (n && base[n - 1] != '-') base[n++] = '-';
  }
  while (n && base[n - 1] == '-') n--;
  if (!n) base[n++] = 'r';
  base[n] = 0;
  char name[96];
  snprintf(name, sizeof name, "%s", base);
  for (unsigned k = 2; name_taken(c, name); k++) snprintf(name, sizeof name, "%s-%u", base, k);
  if (c->n_rules >= HS_GRAMMAR_MAX_ELEMENTS) return serr(c, "schema too large");
  if (c->n_rules + 1 > c->cap_rules) {
    size_t cap = c->cap_rules ? 2 * c->cap_rules : 16;
    srule *r = hs_realloc(c->rules, cap * sizeof *r);
    if (!r) return nomem();
    c->rules = r;
    c->cap_rules = cap;
  }
  srule *r = &c->rules[c->n_rules];
  memset(r, 0, sizeof *r);
  r->name = hs_strdup(name);
  if (!r->name) return nomem();
  c->n_rules++;
  int rc = names_insert(c, c->n_rules - 1);
  if (rc) return rc;
  *out = c->n_rules - 1;
  return 0;
}

/* Gives rule idx its body (taking b's buffer). */
static void rule_set(conv *c, size_t idx, sb *b) {
  c->rules[idx].body = *b;
  c->rules[idx].filled = true;
  memset(b, 0, sizeof *b);
}

/* A child's name hint: the key alone under the root, else parent-key. */
static void child_hint(const char *parent, const char *key, char *buf, size_t size) {
  if (strcmp(parent, "root") == 0) snprintf(buf, size, "%s", key);
  else snprintf(buf, size, "%.40s-%.40s", parent, key);
}

/* ======================================================================================== */
/* Keywords                                                                                 */
/* ======================================================================================== */

static const char *const annotations[] = {"title",    "description", "default",  "examples",
                                          "$schema",  "$id",         "$comment", "deprecated",
                                          "readOnly", "writeOnly",   "$anchor",  "$defs",
                                          "definitions"};
static const char *const supported[] = {
    "type",     "enum",     "const",    "anyOf",     "oneOf",     "$ref",      "properties",
    "required", "items",    "minItems", "maxItems",  "minLength", "maxLength", "uniqueItems",
    "additionalProperties"};

static bool in_list(const char *k, const char *const *list, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(k, list[i]) == 0) return true;
  return false;
}

#define IN(k, list) in_list(k, list, sizeof list / sizeof list[0])

/* Refuses unknown keywords, and keywords beside $ref/anyOf/oneOf/enum/const that we would drop. */
static int check_keywords(conv *c, json_t *s) {
  const char *k;
  json_t *v;
  json_object_foreach(s, k, v) {
    if (IN(k, annotations)) continue;
    if (!IN(k, supported)) return serr(c, "unsupported keyword '%.80s'", k);
    if (strcmp(k, "uniqueItems") == 0 && !json_is_false(v))
      return serr(c, "unsupported keyword 'uniqueItems' (only false is supported)");
  }
  /* these replace the rest of the schema, so nothing else may constrain it (enum and const are
   * filtered by type, so type may stay) */
  static const char *const alone[] = {"$ref", "anyOf", "oneOf", "enum", "const"};
  for (size_t i = 0; i < sizeof alone / sizeof alone[0]; i++) {
    if (!json_object_get(s, alone[i])) continue;
    json_object_foreach(s, k, v) {
      if (IN(k, annotations) || strcmp(k, alone[i]) == 0) continue;
      if (i >= 3 && (strcmp(k, "type") == 0 || strcmp(k, "enum") == 0 || strcmp(k, "const") == 0))
        continue;
      return serr(c, "keyword '%.80s' beside '%s' is not supported", k, alone[i]);
    }
  }
  return 0;
}

/* Reads an optional non-negative integer keyword (at most HS_GRAMMAR_MAX_REPEAT); -1 if absent. */
static int get_count(conv *c, json_t *s, const char *key, long *out) {
  json_t *v = json_object_get(s, key);
  *out = -1;
  if (!v) return 0;
  if (!json_is_integer(v) || json_integer_value(v) < 0)
    return serr(c, "'%s' must be a non-negative integer", key);
  if (json_integer_value(v) > HS_GRAMMAR_MAX_REPEAT)
    return serr(c, "'%s' of %lld is above the supported %d", key, (long long)json_integer_value(v),
                HS_GRAMMAR_MAX_REPEAT);
  *out = (long)json_integer_value(v);
  return 0;
}

/* ======================================================================================== */
/* Schemas to expressions                                                                   */
/* ======================================================================================== */

static int gen(conv *c, json_t *s, const char *hint, long into, sb *out);

/* The name of rule idx, or, when into >= 0, rule `into` takes the place of a new one. */
static int rule_for(conv *c, const char *hint, long into, size_t *idx) {
  if (into >= 0) {
    *idx = (size_t)into;
    return 0;
  }
  return rule_new(c, hint, idx);
}

static const char *const type_names[] = {"object", "array",   "string", "number",
                                         "integer", "boolean", "null"};

static bool json_has_type(json_t *v, const char *t) {
  if (strcmp(t, "object") == 0) return json_is_object(v);
  if (strcmp(t, "array") == 0) return json_is_array(v);
  if (strcmp(t, "string") == 0) return json_is_string(v);
  if (strcmp(t, "number") == 0) return json_is_number(v);
  if (strcmp(t, "integer") == 0) {
    if (json_is_integer(v)) return true;
    double d = json_is_real(v) ? json_real_value(v) : 0.5;
    return d == floor(d) && fabs(d) < 9007199254740992.0; /* 2^53: exact */
  }
  if (strcmp(t, "boolean") == 0) return json_is_boolean(v);
  return json_is_null(v);
}

/* The types a schema allows: n names in types[] (0 = any). */
static int get_types(conv *c, json_t *s, const char **types, size_t *n) {
  json_t *t = json_object_get(s, "type");
  *n = 0;
  if (!t) return 0;
  if (json_is_string(t)) {
    for (size_t i = 0; i < 7; i++)
      if (strcmp(json_string_value(t), type_names[i]) == 0) {
        types[(*n)++] = type_names[i];
        return 0;
      }
    return serr(c, "unknown type '%.80s'", json_string_value(t));
  }
  if (!json_is_array(t) || json_array_size(t) == 0)
    return serr(c, "'type' must be a type name or a non-empty array of them");
  size_t i;
  json_t *e;
  json_array_foreach(t, i, e) {
    size_t k = 0;
    while (k < 7 && !(json_is_string(e) && strcmp(json_string_value(e), type_names[k]) == 0)) k++;
    if (k == 7) return serr(c, "'type' lists something that is not a type name");
    bool dup = false;
    for (size_t j = 0; j < *n; j++) dup |= types[j] == type_names[k];
    if (!dup) types[(*n)++] = type_names[k];
  }
  return 0;
}

/* enum / const: the compact JSON text of each value, as literals. */
static int gen_enum(conv *c, json_t *s, sb *out) {
  const char *types[7];
  size_t nt;
  int rc = get_types(c, s, types, &nt);
  if (rc) return rc;
  json_t *cst = json_object_get(s, "const"), *en = json_object_get(s, "enum");
  if (cst && en) return serr(c, "'enum' and 'const' together are not supported");
  json_t *list = en;
  if (en && (!json_is_array(en) || json_array_size(en) == 0))
    return serr(c, "'enum' must be a non-empty array");
  size_t count = en ? json_array_size(en) : 1, kept = 0;
  sb alts = {0};
  for (size_t i = 0; i < count; i++) {
    json_t *v = list ? json_array_get(list, i) : cst;
    bool ok = nt == 0;
    for (size_t k = 0; k < nt; k++) ok |= json_has_type(v, types[k]);
    if (!ok) continue;
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
    if (!text) {
      hs_free(alts.s);
      return nomem();
    }
    if (kept++) sb_puts(&alts, " | ");
    sb_literal(&alts, text, strlen(text));
    free(text); /* jansson's allocator */
  }
  if (!kept) {
    hs_free(alts.s);
    return serr(c, "no value of '%s' has the schema's type", en ? "enum" : "const");
  }
  if (kept > 1) sb_puts(out, "( ");
  sb_put(out, alts.s, alts.n);
  if (kept > 1) sb_puts(out, " )");
  hs_free(alts.s);
  return alts.oom ? nomem() : 0;
}

/* $ref to "#", "#/$defs/X" or "#/definitions/X". */
static int gen_ref(conv *c, json_t *s, sb *out) {
  json_t *r = json_object_get(s, "$ref");
  if (!json_is_string(r)) return serr(c, "'$ref' must be a string");
  const char *ref = json_string_value(r);
  if (strcmp(ref, "#") == 0) {
    sb_puts(out, "root");
    return 0;
  }
  const char *section = NULL, *name = NULL;
  if (strncmp(ref, "#/$defs/", 8) == 0) section = "$defs", name = ref + 8;
  else if (strncmp(ref, "#/definitions/", 14) == 0) section = "definitions", name = ref + 14;
  else return serr(c, "unsupported $ref '%.100s' (only \"#\", \"#/$defs/NAME\" and \"#/definitions/NAME\")", ref);
  char key[256];
  size_t n = 0;
  for (const char *p = name; *p; p++) {
    if (*p == '/') return serr(c, "unsupported $ref '%.100s' (only one level below %s)", ref, section);
    char ch = *p;
    if (ch == '~') {
      if (p[1] == '0') ch = '~';
      else if (p[1] == '1') ch = '/';
      else return serr(c, "bad JSON pointer escape in $ref '%.100s'", ref);
      p++;
    }
    if (n + 1 >= sizeof key) return serr(c, "$ref name too long");
    key[n++] = ch;
  }
  key[n] = 0;
  json_t *defs = json_object_get(c->root, section);
  json_t *target = json_is_object(defs) ? json_object_get(defs, key) : NULL;
  if (!target) return serr(c, "$ref '%.100s' names no definition", ref);
  for (size_t i = 0; i < c->n_refs; i++)
    if (c->refs[i].schema == target) {
      sb_puts(out, c->rules[c->refs[i].rule].name);
      return 0;
    }
  size_t idx;
  int rc = rule_new(c, key, &idx);
  if (rc) return rc;
  if (c->n_refs + 1 > c->cap_refs) {
    size_t cap = c->cap_refs ? 2 * c->cap_refs : 8;
    ref_memo *m = hs_realloc(c->refs, cap * sizeof *m);
    if (!m) return nomem();
    c->refs = m;
    c->cap_refs = cap;
  }
  c->refs[c->n_refs].schema = target;
  c->refs[c->n_refs].rule = idx;
  c->n_refs++;
  /* the definition is compiled where it is, so its errors name its own path */
  char saved[sizeof c->path];
  size_t saved_len = c->path_len;
  memcpy(saved, c->path, sizeof saved);
  snprintf(c->path, sizeof c->path, "#");
  c->path_len = 1;
  path_push(c, section);
  path_push(c, key);
  sb body = {0};
  rc = gen(c, target, c->rules[idx].name, (long)idx, &body);
  memcpy(c->path, saved, sizeof saved);
  c->path_len = saved_len;
  if (!rc && !c->rules[idx].filled) rule_set(c, idx, &body);
  hs_free(body.s);
  if (rc) return rc;
  sb_puts(out, c->rules[idx].name);
  return 0;
}

static int gen_any_of(conv *c, json_t *s, const char *hint, long into, sb *out) {
  const char *kw = json_object_get(s, "anyOf") ? "anyOf" : "oneOf";
  if (json_object_get(s, "anyOf") && json_object_get(s, "oneOf"))
    return serr(c, "'anyOf' and 'oneOf' together are not supported");
  json_t *list = json_object_get(s, kw);
  if (!json_is_array(list) || json_array_size(list) == 0)
    return serr(c, "'%s' must be a non-empty array", kw);
  size_t idx;
  int rc = rule_for(c, hint, into, &idx);
  if (rc) return rc;
  char name[128];
  snprintf(name, sizeof name, "%s", c->rules[idx].name);
  sb body = {0};
  size_t i;
  json_t *sub;
  size_t saved = path_push(c, kw);
  json_array_foreach(list, i, sub) {
    char h[160];
    snprintf(h, sizeof h, "%.100s-%zu", name, i);
    size_t sp = path_push_index(c, i);
    if (i) sb_puts(&body, " | ");
    rc = gen(c, sub, h, -1, &body);
    path_pop(c, sp);
    if (rc) break;
  }
  path_pop(c, saved);
  if (rc || body.oom) {
    hs_free(body.s);
    return rc ? rc : nomem();
  }
  rule_set(c, idx, &body);
  sb_puts(out, name);
  return 0;
}

static int gen_object(conv *c, json_t *s, const char *hint, long into, sb *out) {
  json_t *props = json_object_get(s, "properties"), *req = json_object_get(s, "required");
  json_t *addl = json_object_get(s, "additionalProperties");
  if (props && !json_is_object(props)) return serr(c, "'properties' must be an object");
  if (req && !json_is_array(req)) return serr(c, "'required' must be an array");
  if (addl && !json_is_boolean(addl) && !json_is_object(addl))
    return serr(c, "'additionalProperties' must be a boolean or a schema");
  size_t i;
  json_t *r;
  json_array_foreach(req, i, r) {
    if (!json_is_string(r)) return serr(c, "'required' must list property names");
    if (!props || !json_object_get(props, json_string_value(r)))
      return serr(c, "required property '%.80s' is not in 'properties' (no other property is "
                  "ever generated)", json_string_value(r));
  }
  size_t n = props ? json_object_size(props) : 0;
  if (n == 0) {
    if (addl && json_is_false(addl)) {
      c->used |= P_WS;
      sb_puts(out, "( \"{\" ws \"}\" )");
      return 0;
    }
    if (addl && json_is_object(addl) && json_object_size(addl) > 0)
      return serr(c, "'additionalProperties' with a schema is only supported beside 'properties'");
    c->used |= P_OBJECT;
    sb_puts(out, "object");
    return 0;
  }
  size_t idx;
  int rc = rule_for(c, hint, into, &idx);
  if (rc) return rc;
  char name[128];
  snprintf(name, sizeof name, "%s", c->rules[idx].name);
  /* one rule per property: "key" ws ":" ws value ws */
  size_t *kv = hs_malloc(n * sizeof *kv);
  bool *required = hs_calloc(n, sizeof *required);
  if (!kv || !required) {
    hs_free(kv);
    hs_free(required);
    return nomem();
  }
  size_t m = 0; /* properties kept (an optional one with schema false is left out) */
  const char *key;
  json_t *ps;
  size_t saved = path_push(c, "properties");
  json_object_foreach(props, key, ps) {
    bool is_req = false;
    json_array_foreach(req, i, r) is_req |= strcmp(json_string_value(r), key) == 0;
    size_t sp = path_push(c, key);
    if (json_is_false(ps)) {
      if (is_req) rc = serr(c, "required property with schema false can never be valid");
      path_pop(c, sp);
      if (rc) break;
      continue;
    }
    char h[128], hk[140];
    child_hint(name, key, h, sizeof h);
    snprintf(hk, sizeof hk, "%s-kv", h);
    size_t k;
    if ((rc = rule_new(c, hk, &k))) {
      path_pop(c, sp);
      break;
    }
    sb body = {0};
    json_t *kj = json_string(key);
    char *kt = kj ? json_dumps(kj, JSON_ENCODE_ANY) : NULL;
    json_decref(kj);
    if (!kt) {
      path_pop(c, sp);
      rc = nomem();
      break;
    }
    sb_literal(&body, kt, strlen(kt));
    free(kt);
    sb_puts(&body, " ws \":\" ws ");
    rc = gen(c, ps, h, -1, &body);
    sb_puts(&body, " ws");
    path_pop(c, sp);
    if (rc || body.oom) {
      hs_free(body.s);
      rc = rc ? rc : nomem();
      break;
    }
    rule_set(c, k, &body);
    kv[m] = k;
    required[m] = is_req;
    m++;
  }
  path_pop(c, saved);
  if (rc) {
    hs_free(kv);
    hs_free(required);
    return rc;
  }
  c->used |= P_WS;
  size_t first_req = m;
  for (size_t j = 0; j < m; j++)
    if (required[j]) {
      first_req = j;
      break;
    }
  sb body = {0};
  sb_puts(&body, "\"{\" ws ");
  if (m) {
    sb_puts(&body, "(");
    for (size_t k = 0; k <= first_req && k < m; k++) {
      sb_puts(&body, k ? "\n    | " : " ");
      sb_puts(&body, c->rules[kv[k]].name);
      for (size_t j = k + 1; j < m; j++) {
        if (required[j]) sb_printf(&body, " \",\" ws ");
        else sb_puts(&body, " ( \",\" ws ");
        sb_puts(&body, c->rules[kv[j]].name);
        if (!required[j]) sb_puts(&body, " )?");
      }
    }
    if (first_req == m) sb_puts(&body, "\n    | ");
    sb_puts(&body, " ) ");
  }
  sb_puts(&body, "\"}\"");
  hs_free(kv);
  hs_free(required);
  if (body.oom) {
    hs_free(body.s);
    return nomem();
  }
  rule_set(c, idx, &body);
  sb_puts(out, name);
  return 0;
}

static int gen_array(conv *c, json_t *s, const char *hint, long into, sb *out) {
  json_t *items = json_object_get(s, "items");
  if (items && json_is_array(items))
    return serr(c, "'items' as an array (a tuple) is not supported");
  long min, max;
  int rc;
  if ((rc = get_count(c, s, "minItems", &min)) || (rc = get_count(c, s, "maxItems", &max))) return rc;
  if (min < 0) min = 0;
  if (max >= 0 && max < min) return serr(c, "maxItems is below minItems: no array is valid");
  size_t idx;
  if ((rc = rule_for(c, hint, into, &idx))) return rc;
  char name[128], h[160];
  snprintf(name, sizeof name, "%s", c->rules[idx].name);
  snprintf(h, sizeof h, "%s-item", name);
  sb item = {0}, body = {0};
  if (items) {
    size_t sp = path_push(c, "items");
    rc = gen(c, items, h, -1, &item);
    path_pop(c, sp);
  } else {
    c->used |= P_VALUE;
    sb_puts(&item, "value");
  }
  if (rc || item.oom) {
    hs_free(item.s);
    return rc ? rc : nomem();
  }
  c->used |= P_WS;
  /* "[" ws ( item ws ( "," ws item ws ){lo,hi} )? "]", the group mandatory when min >= 1 */
  sb_puts(&body, "\"[\" ws ");
  if (max != 0) {
    long lo = min ? min - 1 : 0, hi = max < 0 ? -1 : max - 1;
    if (min == 0) sb_puts(&body, "( ");
    sb_puts(&body, item.s);
    sb_puts(&body, " ws ");
    if (hi != 0) {
      sb_puts(&body, "( \",\" ws ");
      sb_puts(&body, item.s);
      sb_puts(&body, " ws )");
      if (hi < 0 && lo == 0) sb_puts(&body, "*");
      else if (hi < 0) sb_printf(&body, "{%ld,}", lo);
      else if (hi == lo) sb_printf(&body, "{%ld}", lo);
      else sb_printf(&body, "{%ld,%ld}", lo, hi);
      sb_puts(&body, " ");
    }
    if (min == 0) sb_puts(&body, ")? ");
  }
  sb_puts(&body, "\"]\"");
  hs_free(item.s);
  if (body.oom) {
    hs_free(body.s);
    return nomem();
  }
  rule_set(c, idx, &body);
  sb_puts(out, name);
  return 0;
}

static int gen_string(conv *c, json_t *s, sb *out) {
  long min, max;
  int rc;
  if ((rc = get_count(c, s, "minLength", &min)) || (rc = get_count(c, s, "maxLength", &max))) return rc;
  if (min < 0 && max < 0) {
    c->used |= P_STRING;
    sb_puts(out, "string");
    return 0;
  }
  if (min < 0) min = 0;
  if (max >= 0 && max < min) return serr(c, "maxLength is below minLength: no string is valid");
  c->used |= P_CHAR;
  sb_puts(out, "( \"\\\"\" char");
  if (max < 0) sb_printf(out, "{%ld,}", min);
  else if (max == min) sb_printf(out, "{%ld}", min);
  else sb_printf(out, "{%ld,%ld}", min, max);
  sb_puts(out, " \"\\\"\" )");
  return 0;
}

static int gen_type(conv *c, json_t *s, const char *type, const char *hint, long into, sb *out) {
  if (strcmp(type, "object") == 0) return gen_object(c, s, hint, into, out);
  if (strcmp(type, "array") == 0) return gen_array(c, s, hint, into, out);
  if (strcmp(type, "string") == 0) return gen_string(c, s, out);
  unsigned bit = strcmp(type, "number") == 0    ? P_NUMBER
                 : strcmp(type, "integer") == 0 ? P_INTEGER
                 : strcmp(type, "boolean") == 0 ? P_BOOLEAN
                                                : P_NULL;
  c->used |= bit;
  sb_puts(out, type);
  return 0;
}

static int gen_inner(conv *c, json_t *s, const char *hint, long into, sb *out) {
  if (json_is_true(s)) {
    c->used |= P_VALUE;
    sb_puts(out, "value");
    return 0;
  }
  if (json_is_false(s)) return serr(c, "schema false matches nothing");
  if (!json_is_object(s)) return serr(c, "a schema must be an object or a boolean");
  int rc = check_keywords(c, s);
  if (rc) return rc;
  if (json_object_get(s, "$ref")) return gen_ref(c, s, out);
  if (json_object_get(s, "anyOf") || json_object_get(s, "oneOf")) return gen_any_of(c, s, hint, into, out);
  if (json_object_get(s, "enum") || json_object_get(s, "const")) return gen_enum(c, s, out);
  const char *types[7];
  size_t nt;
  if ((rc = get_types(c, s, types, &nt))) return rc;
  if (nt == 0) { /* inferred from the keywords present */
    if (json_object_get(s, "properties") || json_object_get(s, "required") ||
        json_object_get(s, "additionalProperties"))
      types[nt++] = "object";
    else if (json_object_get(s, "items") || json_object_get(s, "minItems") ||
             json_object_get(s, "maxItems"))
      types[nt++] = "array";
    else if (json_object_get(s, "minLength") || json_object_get(s, "maxLength"))
      types[nt++] = "string";
  }
  if (nt == 0) {
    c->used |= P_VALUE;
    sb_puts(out, "value");
    return 0;
  }
  if (nt == 1) return gen_type(c, s, types[0], hint, into, out);
  size_t idx;
  if ((rc = rule_for(c, hint, into, &idx))) return rc;
  char name[128];
  snprintf(name, sizeof name, "%s", c->rules[idx].name);
  sb body = {0};
  for (size_t i = 0; i < nt && !rc; i++) {
    char h[160];
    snprintf(h, sizeof h, "%.100s-%s", name, types[i]);
    if (i) sb_puts(&body, " | ");
    rc = gen_type(c, s, types[i], h, -1, &body);
  }
  if (rc || body.oom) {
    hs_free(body.s);
    return rc ? rc : nomem();
  }
  rule_set(c, idx, &body);
  sb_puts(out, name);
  return 0;
}

/* Appends an expression for schema s to out. When into >= 0 and s needs a rule of its own, rule
 * `into` is that rule (its body is set) and its name is appended. */
static int gen(conv *c, json_t *s, const char *hint, long into, sb *out) {
  if (c->depth >= HS_GRAMMAR_MAX_NESTING)
    return serr(c, "schemas nested deeper than %d", HS_GRAMMAR_MAX_NESTING);
  c->depth++;
  int rc = gen_inner(c, s, hint, into, out);
  c->depth--;
  if (!rc && out->oom) rc = nomem();
  return rc;
}

static void conv_free(conv *c) {
  for (size_t i = 0; i < c->n_rules; i++) {
    hs_free(c->rules[i].name);
    hs_free(c->rules[i].body.s);
  }
  hs_free(c->rules);
  hs_free(c->names);
  hs_free(c->refs);
}

/* Builds the GBNF text; *text is hs_malloc'd. */
static int convert(const char *json, size_t len, char **text) {
  hs_errbuf *e = hs_grammar_errbuf();
  if (!json && len) return hs_set_error(e, HS_EINVAL, "json schema: NULL text of %zu bytes", len);
  if (len > HS_GRAMMAR_MAX_TEXT)
    return hs_set_error(e, HS_EINVAL, "json schema: text of %zu bytes is above the limit of %u", len,
                        HS_GRAMMAR_MAX_TEXT);
  json_error_t jerr;
  json_t *root = json_loadb(json ? json : "", len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
  if (!root)
    return hs_set_error(e, HS_EINVAL, "json schema: invalid JSON at line %d, column %d: %s",
                        jerr.line, jerr.column, jerr.text);
  conv c;
  memset(&c, 0, sizeof c);
  c.root = root;
  snprintf(c.path, sizeof c.path, "#");
  c.path_len = 1;
  size_t idx;
  sb body = {0}, all = {0};
  int rc = rule_new(&c, "root", &idx);
  if (!rc) rc = gen(&c, root, "root", (long)idx, &body);
  if (!rc && !c.rules[idx].filled) rule_set(&c, idx, &body);
  hs_free(body.s);
  if (!rc) {
    /* rules in order of creation (root first), then the primitives used and their needs */
    for (size_t i = 0; i < c.n_rules; i++) {
      sb_puts(&all, c.rules[i].name);
      sb_puts(&all, " ::= ");
      sb_put(&all, c.rules[i].body.s ? c.rules[i].body.s : "", c.rules[i].body.n);
      sb_puts(&all, "\n");
    }
    unsigned used = c.used, before;
    do {
      before = used;
      for (size_t i = 0; i < N_PRIMS; i++)
        if (used & prims[i].bit) used |= prims[i].deps;
    } while (used != before);
    for (size_t i = 0; i < N_PRIMS; i++) {
      if (!(used & prims[i].bit)) continue;
      sb_puts(&all, prims[i].name);
      sb_puts(&all, " ::= ");
      sb_puts(&all, prims[i].body);
      sb_puts(&all, "\n");
    }
    if (all.oom) rc = nomem();
    else if (all.n > HS_GRAMMAR_MAX_TEXT)
      rc = hs_set_error(e, HS_EINVAL, "json schema: the grammar would have %zu bytes (limit %u)",
                        all.n, HS_GRAMMAR_MAX_TEXT);
  }
  conv_free(&c);
  json_decref(root);
  if (rc) {
    hs_free(all.s);
    return rc;
  }
  *text = all.s;
  return 0;
}

/* Compiles text; on failure the parser's message is kept, prefixed to say where it came from. */
static int compile(const char *text, hs_grammar **out) {
  int rc = hs_grammar_parse(text, strlen(text), "root", out);
  if (rc == HS_EINVAL) {
    char why[HS_ERRMSG_SIZE];
    snprintf(why, sizeof why, "%s", hs_grammar_last_error());
    return hs_set_error(hs_grammar_errbuf(), HS_EINVAL,
                        "json schema: the generated grammar is refused: %.400s", why);
  }
  return rc;
}

int hs_grammar_json_schema_to_gbnf(const char *json, size_t len, char **gbnf) {
  if (!gbnf) return hs_set_error(hs_grammar_errbuf(), HS_EINVAL, "json schema: NULL output pointer");
  *gbnf = NULL;
  char *text = NULL;
  int rc = convert(json, len, &text);
  if (rc) return rc;
  hs_grammar *g = NULL;
  rc = compile(text, &g);
  hs_grammar_destroy(g);
  if (rc) {
    hs_free(text);
    return rc;
  }
  *gbnf = text;
  return 0;
}

int hs_grammar_from_json_schema(const char *json, size_t len, hs_grammar **out) {
  if (!out) return hs_set_error(hs_grammar_errbuf(), HS_EINVAL, "json schema: NULL output pointer");
  *out = NULL;
  char *text = NULL;
  int rc = convert(json, len, &text);
  if (rc) return rc;
  rc = compile(text, out);
  hs_free(text);
  return rc;
}
