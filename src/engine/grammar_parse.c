/* grammar_parse.c: GBNF text to a compiled grammar (include/hswarm/grammar.h for the syntax,
 * grammar_internal.h for the compiled form).
 *
 * A recursive-descent parser with one function per construct (rule, alternatives, sequence,
 * literal, class, repetition). Its recursion is bounded by the nesting of parentheses
 * (HS_GRAMMAR_MAX_NESTING), so hostile text cannot exhaust the C stack; every other loop is
 * iterative. Each rule is built in its own growing element buffer; at the end the buffers are
 * concatenated into the flat arrays of hs_grammar.
 *
 * Desugaring, so that the matcher only knows characters, classes and rule references:
 *   - a group ( ... ) becomes a generated rule and a reference to it;
 *   - a repeated item that is not a single element (a literal of several characters) is first
 *     wrapped in a generated rule, so every repetition repeats one element x;
 *   - x{m,n} is m copies of x followed by a chain of n - m optional rules
 *     o1 ::= x o2 | (empty), ..., ok ::= x | (empty), which accepts up to n - m more without
 *     ambiguity (each copy is either taken, and the next optional follows, or not);
 *   - x{m,} is m copies followed by s ::= x s | (empty): right recursion, which the matcher
 *     runs in constant stack depth since the recursive reference is last in its alternative;
 *   - x* is {0,}, x+ is {1,}, x? is {0,1}; a character class is sorted into disjoint ranges,
 *     complemented when negated, and limited to Unicode scalar values (no surrogates).
 *
 * Checks after parsing, each linear in the size of the grammar, in this order:
 *   - every referenced rule is defined, and the root rule exists;
 *   - nullability (a rule can match the empty text): a rule is nullable if one of its
 *     alternatives has only references to nullable rules, found by counting with a work list
 *     (each alternative counts its references not yet known nullable) rather than by passes;
 *   - left recursion: the graph with an edge A -> B when B is referenced in an alternative of A
 *     after only nullable elements must have no cycle among reachable rules, or expanding A would
 *     loop. A depth-first search with an explicit stack finds a cycle and the message shows it. A
 *     repetition x* of a nullable x is such a cycle (s ::= x s), and is reported as one;
 *   - productivity: a rule can finish if one of its alternatives has only characters and
 *     references to rules that can finish (the same counting). A rule reachable from the root
 *     that cannot finish is refused: a model that entered it could never end its answer. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/grammar_internal.h"
#include "hswarm/alloc.h"
#include "hswarm/error.h"

static _Thread_local hs_errbuf err;

hs_errbuf *hs_grammar_errbuf(void) { return &err; }

const char *hs_grammar_last_error(void) { return err.msg; }

#define MAX_CP 0x10FFFFu

enum { ORIGIN_USER, ORIGIN_GROUP, ORIGIN_WRAP, ORIGIN_STAR, ORIGIN_OPT };

typedef struct prule {
  char *name; /* user rules only */
  size_t name_len;
  hs_gelem *el;
  size_t n, cap;
  int defined;  /* user rule: seen its definition */
  int origin;   /* ORIGIN_* */
  size_t off;   /* definition, or the construct that generated it */
  size_t use;   /* first reference (for "undefined rule") */
} prule;

typedef struct parser {
  const char *s;
  size_t len, pos;
  prule *rules;
  size_t n_rules, cap_rules;
  uint32_t *tab; /* user rule names: index + 1, 0 empty */
  size_t tab_cap, n_named;
  hs_gclass *classes;
  size_t n_classes, cap_classes;
  uint32_t *ranges; /* pairs */
  size_t n_ranges, cap_ranges;
  uint32_t *tmp; /* pairs of the class being read */
  size_t n_tmp, cap_tmp;
  uint32_t any_class; /* class of '.', UINT32_MAX until needed */
  size_t total;       /* elements in all rules */
  int depth;
} parser;

/* ======================================================================================== */
/* Errors                                                                                   */
/* ======================================================================================== */

static void line_col(const char *s, size_t len, size_t off, size_t *line, size_t *col) {
  size_t l = 1, c = 1;
  if (off > len) off = len;
  for (size_t i = 0; i < off; i++) {
    if (s[i] == '\n') {
      l++;
      c = 1;
    } else if (((unsigned char)s[i] & 0xC0) != 0x80) {
      c++;
    }
  }
  *line = l;
  *col = c;
}

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static int perr(parser *p, int code, size_t off, const char *fmt, ...) {
  char msg[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  size_t line, col;
  line_col(p->s, p->len, off, &line, &col);
  return hs_set_error(&err, code, "line %zu, column %zu: %s", line, col, msg);
}

static int oom(void) { return hs_set_error(&err, HS_ENOMEM, "grammar: out of memory"); }

/* A printable rendering of the character at off, for messages. */
static void show_char(parser *p, size_t off, char *buf, size_t size) {
  unsigned char c = (unsigned char)p->s[off];
  if (c >= 0x21 && c < 0x7F) snprintf(buf, size, "'%c'", c);
  else if (c == '\n') snprintf(buf, size, "a newline");
  else snprintf(buf, size, "byte 0x%02X", c);
}

/* ======================================================================================== */
/* Rules and elements                                                                       */
/* ======================================================================================== */

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap) return 0;
  size_t n = *cap ? *cap : 8;
  while (n < need) n *= 2;
  void *q = hs_realloc(*p, n * elem);
  if (!q) return oom();
  *p = q;
  *cap = n;
  return 0;
}

static int new_rule(parser *p, int origin, size_t off, uint32_t *out) {
  if (p->n_rules >= HS_GRAMMAR_MAX_ELEMENTS)
    return perr(p, HS_EINVAL, off, "grammar too large: more than %u rules", HS_GRAMMAR_MAX_ELEMENTS);
  int rc = grow((void **)&p->rules, &p->cap_rules, p->n_rules + 1, sizeof *p->rules);
  if (rc) return rc;
  prule *r = &p->rules[p->n_rules];
  memset(r, 0, sizeof *r);
  r->origin = origin;
  r->off = off;
  r->use = off;
  r->defined = origin != ORIGIN_USER;
  *out = (uint32_t)p->n_rules++;
  return 0;
}

static int push(parser *p, uint32_t rule, uint32_t kind, uint32_t value) {
  if (p->total >= HS_GRAMMAR_MAX_ELEMENTS)
    return perr(p, HS_EINVAL, p->pos,
                "grammar too large: more than %u elements after expanding repetitions",
                HS_GRAMMAR_MAX_ELEMENTS);
  prule *r = &p->rules[rule];
  int rc = grow((void **)&r->el, &r->cap, r->n + 1, sizeof *r->el);
  if (rc) return rc;
  r->el[r->n].kind = kind;
  r->el[r->n].value = value;
  r->n++;
  p->total++;
  return 0;
}

static uint32_t name_hash(const char *s, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
  return h;
}

static int tab_rehash(parser *p) {
  size_t cap = p->tab_cap ? p->tab_cap * 2 : 64;
  uint32_t *t = hs_calloc(cap, sizeof *t);
  if (!t) return oom();
  for (size_t i = 0; i < p->tab_cap; i++) {
    uint32_t v = p->tab[i];
    if (!v) continue;
    prule *r = &p->rules[v - 1];
    size_t j = name_hash(r->name, r->name_len) & (cap - 1);
    while (t[j]) j = (j + 1) & (cap - 1);
    t[j] = v;
  }
  hs_free(p->tab);
  p->tab = t;
  p->tab_cap = cap;
  return 0;
}

/* Finds the user rule called name, creating an undefined one (first used at off) if absent. */
static int rule_lookup(parser *p, const char *name, size_t n, size_t off, uint32_t *out) {
  if (p->tab_cap) {
    size_t j = name_hash(name, n) & (p->tab_cap - 1);
    while (p->tab[j]) {
      prule *r = &p->rules[p->tab[j] - 1];
      if (r->name_len == n && memcmp(r->name, name, n) == 0) {
        *out = p->tab[j] - 1;
        return 0;
      }
      j = (j + 1) & (p->tab_cap - 1);
    }
  }
  uint32_t id;
  int rc = new_rule(p, ORIGIN_USER, off, &id);
  if (rc) return rc;
  char *copy = hs_malloc(n + 1);
  if (!copy) return oom();
  memcpy(copy, name, n);
  copy[n] = 0;
  p->rules[id].name = copy;
  p->rules[id].name_len = n;
  p->rules[id].defined = 0;
  p->rules[id].use = off;
  /* keep the table at most half full */
  p->n_named++;
  if (p->n_named * 2 > p->tab_cap && (rc = tab_rehash(p))) return rc;
  size_t j = name_hash(name, n) & (p->tab_cap - 1);
  while (p->tab[j]) j = (j + 1) & (p->tab_cap - 1);
  p->tab[j] = id + 1;
  *out = id;
  return 0;
}

/* ======================================================================================== */
/* Lexical pieces                                                                           */
/* ======================================================================================== */

static bool is_word(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

/* Skips blanks and comments; newlines too when newline_ok. */
static void skip_space(parser *p, bool newline_ok) {
  while (p->pos < p->len) {
    char c = p->s[p->pos];
    if (c == ' ' || c == '\t' || c == '\r') {
      p->pos++;
    } else if (c == '#') {
      while (p->pos < p->len && p->s[p->pos] != '\n') p->pos++;
    } else if (c == '\n' && newline_ok) {
      p->pos++;
    } else {
      break;
    }
  }
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Decodes one UTF-8 character at s[0..n). Returns its length, 0 if invalid. */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp) {
  unsigned char c = s[0];
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  size_t len;
  uint32_t v, min;
  if (c >= 0xC2 && c <= 0xDF) len = 2, v = c & 0x1F, min = 0x80;
  else if (c >= 0xE0 && c <= 0xEF) len = 3, v = c & 0x0F, min = 0x800;
  else if (c >= 0xF0 && c <= 0xF4) len = 4, v = c & 0x07, min = 0x10000;
  else return 0;
  if (n < len) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    v = (v << 6) | (s[i] & 0x3F);
  }
  if (v < min || v > MAX_CP || (v >= 0xD800 && v <= 0xDFFF)) return 0;
  *cp = v;
  return len;
}

/* One character of a literal or class: an escape or a UTF-8 character. */
static int read_char(parser *p, uint32_t *cp) {
  size_t at = p->pos;
  unsigned char c = (unsigned char)p->s[at];
  if (c != '\\') {
    size_t n = utf8_decode((const unsigned char *)p->s + at, p->len - at, cp);
    if (!n) return perr(p, HS_EINVAL, at, "invalid UTF-8 (byte 0x%02X)", c);
    p->pos += n;
    return 0;
  }
  if (at + 1 >= p->len) return perr(p, HS_EINVAL, at, "unterminated escape at the end of the text");
  char e = p->s[at + 1];
  int digits = 0;
  switch (e) {
  case 'n': *cp = '\n'; break;
  case 't': *cp = '\t'; break;
  case 'r': *cp = '\r'; break;
  case '\\': *cp = '\\'; break;
  case '"': *cp = '"'; break;
  case '[': *cp = '['; break;
  case ']': *cp = ']'; break;
  case '-': *cp = '-'; break;
  case 'x': digits = 2; break;
  case 'u': digits = 4; break;
  case 'U': digits = 8; break;
  default: {
    char shown[32];
    show_char(p, at + 1, shown, sizeof shown);
    return perr(p, HS_EINVAL, at, "unknown escape '\\' followed by %s", shown);
  }
  }
  p->pos = at + 2;
  if (!digits) return 0;
  uint32_t v = 0;
  for (int i = 0; i < digits; i++) {
    int h = p->pos < p->len ? hexval(p->s[p->pos]) : -1;
    if (h < 0)
      return perr(p, HS_EINVAL, at, "expected %d hexadecimal digits after '\\%c'", digits, e);
    v = v * 16 + (uint32_t)h;
    p->pos++;
  }
  if (v > MAX_CP)
    return perr(p, HS_EINVAL, at, "code point U+%X is beyond U+10FFFF", (unsigned)v);
  *cp = v;
  return 0;
}

/* ======================================================================================== */
/* Character classes                                                                        */
/* ======================================================================================== */

static int cmp_range(const void *a, const void *b) {
  const uint32_t *x = a, *y = b;
  return x[0] < y[0] ? -1 : x[0] > y[0];
}

static int tmp_add(parser *p, uint32_t lo, uint32_t hi) {
  int rc = grow((void **)&p->tmp, &p->cap_tmp, 2 * (p->n_tmp + 1), sizeof *p->tmp);
  if (rc) return rc;
  p->tmp[2 * p->n_tmp] = lo;
  p->tmp[2 * p->n_tmp + 1] = hi;
  p->n_tmp++;
  return 0;
}

/* Normalises the ranges in tmp (sort, merge, complement when negated, drop surrogates) and
 * stores them as a class. *single is the code point when the class has exactly one, else
 * UINT32_MAX. Fails when the class is empty. */
static int finish_class(parser *p, bool negate, size_t off, uint32_t *cls, uint32_t *single) {
  if (p->n_tmp > 1) qsort(p->tmp, p->n_tmp, 2 * sizeof *p->tmp, cmp_range);
  size_t m = 0;
  for (size_t i = 0; i < p->n_tmp; i++) {
    uint32_t lo = p->tmp[2 * i], hi = p->tmp[2 * i + 1];
    if (m && lo <= p->tmp[2 * (m - 1) + 1] + 1) {
      if (hi > p->tmp[2 * (m - 1) + 1]) p->tmp[2 * (m - 1) + 1] = hi;
    } else {
      p->tmp[2 * m] = lo;
      p->tmp[2 * m + 1] = hi;
      m++;
    }
  }
  /* the result, complemented if needed, then minus surrogates, goes to the end of ranges[] */
  size_t first = p->n_ranges, cnt = 0;
  uint32_t segs[4] = {0, 0xD7FF, 0xE000, MAX_CP}; /* the scalar values */
  for (int s = 0; s < 2; s++) {
    uint32_t slo = segs[2 * s], shi = segs[2 * s + 1];
    uint32_t next = 0; /* for the complement: start of the gap after the last range */
    for (size_t i = 0; i <= m; i++) {
      uint32_t lo, hi;
      if (!negate) {
        if (i == m) break;
        lo = p->tmp[2 * i];
        hi = p->tmp[2 * i + 1];
      } else {
        if (i < m) {
          if (p->tmp[2 * i] == 0) {
            next = p->tmp[2 * i + 1] + 1;
            continue;
          }
          lo = next;
          hi = p->tmp[2 * i] - 1;
          next = p->tmp[2 * i + 1] + 1;
        } else {
          if (next > MAX_CP) break;
          lo = next;
          hi = MAX_CP;
        }
        if (lo > hi) continue;
      }
      if (lo < slo) lo = slo;
      if (hi > shi) hi = shi;
      if (lo > hi) continue;
      int rc = grow((void **)&p->ranges, &p->cap_ranges, 2 * (p->n_ranges + 1), sizeof *p->ranges);
      if (rc) return rc;
      p->ranges[2 * p->n_ranges] = lo;
      p->ranges[2 * p->n_ranges + 1] = hi;
      p->n_ranges++;
      cnt++;
    }
  }
  if (cnt == 0) return perr(p, HS_EINVAL, off, "character class matches no character");
  if (cnt == 1 && p->ranges[2 * first] == p->ranges[2 * first + 1]) {
    *single = p->ranges[2 * first];
    p->n_ranges = first;
    return 0;
  }
  *single = UINT32_MAX;
  int rc = grow((void **)&p->classes, &p->cap_classes, p->n_classes + 1, sizeof *p->classes);
  if (rc) return rc;
  hs_gclass *k = &p->classes[p->n_classes];
  memset(k, 0, sizeof *k);
  k->first = (uint32_t)first;
  k->count = (uint32_t)cnt;
  for (size_t i = first; i < first + cnt; i++) {
    uint32_t lo = p->ranges[2 * i], hi = p->ranges[2 * i + 1];
    for (uint32_t c = lo; c <= hi && c < 128; c++) k->ascii[c >> 5] |= 1u << (c & 31);
  }
  *cls = (uint32_t)p->n_classes++;
  return 0;
}

static int parse_class(parser *p, uint32_t rule) {
  size_t start = p->pos;
  p->pos++;
  bool negate = p->pos < p->len && p->s[p->pos] == '^';
  if (negate) p->pos++;
  p->n_tmp = 0;
  for (;;) {
    if (p->pos >= p->len || p->s[p->pos] == '\n')
      return perr(p, HS_EINVAL, start, "unterminated character class");
    if (p->s[p->pos] == ']') {
      p->pos++;
      break;
    }
    uint32_t lo, hi;
    int rc = read_char(p, &lo);
    if (rc) return rc;
    hi = lo;
    if (p->pos + 1 < p->len && p->s[p->pos] == '-' && p->s[p->pos + 1] != ']') {
      size_t dash = p->pos;
      p->pos++;
      if (p->s[p->pos] == '\n') return perr(p, HS_EINVAL, start, "unterminated character class");
      if ((rc = read_char(p, &hi))) return rc;
      if (hi < lo)
        return perr(p, HS_EINVAL, dash, "character range U+%04X-U+%04X is reversed", (unsigned)lo,
                    (unsigned)hi);
    }
    if ((rc = tmp_add(p, lo, hi))) return rc;
  }
  if (p->n_tmp == 0 && !negate) return perr(p, HS_EINVAL, start, "empty character class");
  uint32_t cls, single;
  int rc = finish_class(p, negate, start, &cls, &single);
  if (rc) return rc;
  return single != UINT32_MAX ? push(p, rule, HS_GE_CHAR, single) : push(p, rule, HS_GE_CLASS, cls);
}

static int parse_any(parser *p, uint32_t rule) {
  if (p->any_class == UINT32_MAX) {
    p->n_tmp = 0;
    uint32_t single;
    int rc = finish_class(p, true, p->pos, &p->any_class, &single); /* [^] = everything */
    if (rc) return rc;
  }
  p->pos++;
  return push(p, rule, HS_GE_CLASS, p->any_class);
}

static int parse_literal(parser *p, uint32_t rule) {
  size_t start = p->pos;
  p->pos++;
  for (;;) {
    if (p->pos >= p->len || p->s[p->pos] == '\n')
      return perr(p, HS_EINVAL, start, "unterminated string literal");
    if (p->s[p->pos] == '"') {
      p->pos++;
      return 0;
    }
    size_t at = p->pos;
    uint32_t cp;
    int rc = read_char(p, &cp);
    if (rc) return rc;
    if (cp >= 0xD800 && cp <= 0xDFFF)
      return perr(p, HS_EINVAL, at, "surrogate U+%04X is not a character and can never be generated",
                  (unsigned)cp);
    if ((rc = push(p, rule, HS_GE_CHAR, cp))) return rc;
  }
}

/* ======================================================================================== */
/* Repetition                                                                               */
/* ======================================================================================== */

static int read_count(parser *p, size_t brace, uint32_t *out) {
  if (p->pos >= p->len || p->s[p->pos] < '0' || p->s[p->pos] > '9')
    return perr(p, HS_EINVAL, p->pos < p->len ? p->pos : brace, "expected a number in repetition");
  uint64_t v = 0;
  size_t at = p->pos;
  while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') {
    v = v * 10 + (uint64_t)(p->s[p->pos] - '0');
    if (v > HS_GRAMMAR_MAX_REPEAT)
      return perr(p, HS_EINVAL, at, "repetition count above the limit of %d", HS_GRAMMAR_MAX_REPEAT);
    p->pos++;
  }
  *out = (uint32_t)v;
  return 0;
}

static void skip_blanks(parser *p) {
  while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t')) p->pos++;
}

/* Replaces the item at rule's elements [item, n) by its repetition {min, max} (max UINT32_MAX:
 * unbounded). */
static int repeat(parser *p, uint32_t rule, size_t item, uint32_t min, uint32_t max, int star_origin,
                  size_t off) {
  int rc;
  size_t span = p->rules[rule].n - item;
  hs_gelem x;
  if (span == 1) {
    x = p->rules[rule].el[item];
  } else {
    uint32_t w;
    if ((rc = new_rule(p, ORIGIN_WRAP, off, &w))) return rc;
    for (size_t i = item; i < p->rules[rule].n; i++) {
      hs_gelem e = p->rules[rule].el[i];
      if ((rc = push(p, w, e.kind, e.value))) return rc;
    }
    if ((rc = push(p, w, HS_GE_END, 0))) return rc;
    x.kind = HS_GE_REF;
    x.value = w;
  }
  p->total -= p->rules[rule].n - item;
  p->rules[rule].n = item;
  for (uint32_t i = 0; i < min; i++)
    if ((rc = push(p, rule, x.kind, x.value))) return rc;
  if (max == UINT32_MAX) {
    uint32_t s;
    if ((rc = new_rule(p, star_origin, off, &s))) return rc;
    if ((rc = push(p, s, x.kind, x.value)) || (rc = push(p, s, HS_GE_REF, s)) ||
        (rc = push(p, s, HS_GE_END, 0)) || (rc = push(p, s, HS_GE_END, 0)))
      return rc;
    return push(p, rule, HS_GE_REF, s);
  }
  if (max == min) return 0;
  uint32_t first = (uint32_t)p->n_rules;
  for (uint32_t k = 0; k < max - min; k++) {
    uint32_t o;
    if ((rc = new_rule(p, ORIGIN_OPT, off, &o))) return rc;
    if ((rc = push(p, o, x.kind, x.value))) return rc;
    if (k + 1 < max - min && (rc = push(p, o, HS_GE_REF, o + 1))) return rc;
    if ((rc = push(p, o, HS_GE_END, 0)) || (rc = push(p, o, HS_GE_END, 0))) return rc;
  }
  return push(p, rule, HS_GE_REF, first);
}

/* ======================================================================================== */
/* Rules, alternatives, sequences                                                           */
/* ======================================================================================== */

static int parse_alternatives(parser *p, uint32_t rule, bool nested);

static int parse_sequence(parser *p, uint32_t rule, bool nested) {
  int rc;
  for (;;) {
    skip_space(p, nested);
    if (p->pos >= p->len) return 0;
    unsigned char c = (unsigned char)p->s[p->pos];
    size_t item = p->rules[rule].n, at = p->pos;
    if (c == '"') {
      rc = parse_literal(p, rule);
    } else if (c == '[') {
      rc = parse_class(p, rule);
    } else if (c == '.') {
      rc = parse_any(p, rule);
    } else if (c == '(') {
      if (p->depth >= HS_GRAMMAR_MAX_NESTING)
        return perr(p, HS_EINVAL, at, "parentheses nested deeper than %d", HS_GRAMMAR_MAX_NESTING);
      uint32_t g;
      if ((rc = new_rule(p, ORIGIN_GROUP, at, &g))) return rc;
      p->pos++;
      p->depth++;
      skip_space(p, true);
      if ((rc = parse_alternatives(p, g, true))) return rc;
      p->depth--;
      skip_space(p, true);
      if (p->pos >= p->len || p->s[p->pos] != ')') {
        size_t line, col;
        line_col(p->s, p->len, at, &line, &col);
        if (p->pos >= p->len)
          return perr(p, HS_EINVAL, p->pos, "expected ')' to close the group opened at line %zu, column %zu",
                      line, col);
        char shown[32];
        show_char(p, p->pos, shown, sizeof shown);
        return perr(p, HS_EINVAL, p->pos,
                    "unexpected %s: expected ')' to close the group opened at line %zu, column %zu",
                    shown, line, col);
      }
      p->pos++;
      rc = push(p, rule, HS_GE_REF, g);
    } else if (is_word(c)) {
      size_t b = p->pos;
      while (p->pos < p->len && is_word((unsigned char)p->s[p->pos])) p->pos++;
      uint32_t r;
      if ((rc = rule_lookup(p, p->s + b, p->pos - b, b, &r))) return rc;
      rc = push(p, rule, HS_GE_REF, r);
    } else {
      return 0; /* the caller decides whether what follows is acceptable */
    }
    if (rc) return rc;
    /* postfix operators, each applying to the result of the previous one */
    for (;;) {
      skip_space(p, nested);
      if (p->pos >= p->len) return 0;
      char o = p->s[p->pos];
      size_t op = p->pos;
      uint32_t min, max;
      if (o == '*') min = 0, max = UINT32_MAX;
      else if (o == '+') min = 1, max = UINT32_MAX;
      else if (o == '?') min = 0, max = 1;
      else if (o == '{') {
        p->pos++;
        skip_blanks(p);
        if ((rc = read_count(p, op, &min))) return rc;
        skip_blanks(p);
        max = min;
        if (p->pos < p->len && p->s[p->pos] == ',') {
          p->pos++;
          skip_blanks(p);
          if (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') {
            if ((rc = read_count(p, op, &max))) return rc;
            skip_blanks(p);
          } else {
            max = UINT32_MAX;
          }
        }
        if (p->pos >= p->len || p->s[p->pos] != '}')
          return perr(p, HS_EINVAL, op, "expected '}' to close the repetition");
        if (max < min)
          return perr(p, HS_EINVAL, op, "repetition {%u,%u} has its maximum below its minimum",
                      (unsigned)min, (unsigned)max);
      } else {
        break;
      }
      p->pos++;
      /* the result occupies [item, n): a further operator applies to all of it */
      if ((rc = repeat(p, rule, item, min, max, ORIGIN_STAR, op))) return rc;
    }
  }
}

static int parse_alternatives(parser *p, uint32_t rule, bool nested) {
  int rc = parse_sequence(p, rule, nested);
  while (!rc && p->pos < p->len && p->s[p->pos] == '|') {
    if ((rc = push(p, rule, HS_GE_END, 0))) return rc;
    p->pos++;
    skip_space(p, true);
    rc = parse_sequence(p, rule, nested);
  }
  return rc ? rc : push(p, rule, HS_GE_END, 0);
}

/* The message for a character that cannot continue a rule. */
static int unexpected(parser *p) {
  char c = p->s[p->pos];
  if (c == '*' || c == '+' || c == '?' || c == '{')
    return perr(p, HS_EINVAL, p->pos, "repetition operator '%c' with nothing before it", c);
  if (c == ')') return perr(p, HS_EINVAL, p->pos, "unexpected ')' without a matching '('");
  if (c == ':' && p->len - p->pos >= 3 && memcmp(p->s + p->pos, "::=", 3) == 0)
    return perr(p, HS_EINVAL, p->pos, "unexpected '::=' inside a rule (a newline missing before a rule name?)");
  char shown[32];
  show_char(p, p->pos, shown, sizeof shown);
  return perr(p, HS_EINVAL, p->pos, "unexpected %s", shown);
}

static int parse_rule(parser *p) {
  size_t start = p->pos;
  if (!is_word((unsigned char)p->s[p->pos])) {
    char shown[32];
    show_char(p, p->pos, shown, sizeof shown);
    return perr(p, HS_EINVAL, p->pos, "expected a rule name, found %s", shown);
  }
  while (p->pos < p->len && is_word((unsigned char)p->s[p->pos])) p->pos++;
  size_t name_end = p->pos;
  skip_space(p, false);
  if (p->len - p->pos < 3 || memcmp(p->s + p->pos, "::=", 3) != 0)
    return perr(p, HS_EINVAL, p->pos, "expected '::=' after the rule name '%.*s'",
                (int)(name_end - start > 64 ? 64 : name_end - start), p->s + start);
  uint32_t r;
  int rc = rule_lookup(p, p->s + start, name_end - start, start, &r);
  if (rc) return rc;
  if (p->rules[r].defined) {
    size_t line, col;
    line_col(p->s, p->len, p->rules[r].off, &line, &col);
    return perr(p, HS_EINVAL, start, "rule '%s' is defined twice (first at line %zu)",
                p->rules[r].name, line);
  }
  p->rules[r].defined = 1;
  p->rules[r].off = start;
  p->pos += 3;
  skip_space(p, true);
  if ((rc = parse_alternatives(p, r, false))) return rc;
  skip_space(p, false);
  if (p->pos < p->len && p->s[p->pos] != '\n') return unexpected(p);
  return 0;
}

/* ======================================================================================== */
/* Checks on the compiled grammar                                                           */
/* ======================================================================================== */

/* "rule 'x'" or "the group at line L, column C" etc. */
static void describe(parser *p, uint32_t r, char *buf, size_t size) {
  const prule *q = &p->rules[r];
  if (q->origin == ORIGIN_USER) {
    snprintf(buf, size, "'%.64s'", q->name);
    return;
  }
  size_t line, col;
  line_col(p->s, p->len, q->off, &line, &col);
  snprintf(buf, size, "(%s at line %zu, column %zu)",
           q->origin == ORIGIN_GROUP ? "group" : "repetition", line, col);
}

/* Per-alternative counting of a property (productive or nullable) over the rules: a rule has
 * it when one alternative has only elements that have it. out[r] is set to 1 for those rules. */
static int fixpoint(const hs_grammar *g, const uint32_t *alt_rule, bool nullable, uint8_t *out) {
  size_t nr = g->n_rules, na = g->n_alts;
  uint32_t *cnt = hs_calloc(na ? na : 1, sizeof *cnt);
  uint32_t *occ_start = hs_calloc(nr + 1, sizeof *occ_start);
  uint32_t *queue = hs_malloc((nr ? nr : 1) * sizeof *queue);
  uint32_t *occ = NULL;
  size_t n_refs = 0;
  for (size_t i = 0; i < g->n_elems; i++) n_refs += g->elems[i].kind == HS_GE_REF;
  occ = hs_malloc((n_refs ? n_refs : 1) * sizeof *occ);
  if (!cnt || !occ_start || !queue || !occ) {
    hs_free(cnt), hs_free(occ_start), hs_free(queue), hs_free(occ);
    return oom();
  }
  size_t qn = 0;
  for (size_t a = 0; a < na; a++) {
    uint32_t refs = 0, terms = 0;
    for (uint32_t i = g->alts[a]; g->elems[i].kind != HS_GE_END; i++) {
      if (g->elems[i].kind == HS_GE_REF) {
        refs++;
        occ_start[g->elems[i].value + 1]++;
      } else {
        terms++;
      }
    }
    cnt[a] = nullable && terms ? UINT32_MAX : refs;
    if (cnt[a] == 0 && !out[alt_rule[a]]) {
      out[alt_rule[a]] = 1;
      queue[qn++] = alt_rule[a];
    }
  }
  for (size_t r = 0; r < nr; r++) occ_start[r + 1] += occ_start[r];
  uint32_t *fill = hs_malloc((nr ? nr : 1) * sizeof *fill);
  if (!fill) {
    hs_free(cnt), hs_free(occ_start), hs_free(queue), hs_free(occ);
    return oom();
  }
  memcpy(fill, occ_start, nr * sizeof *fill);
  for (size_t a = 0; a < na; a++)
    for (uint32_t i = g->alts[a]; g->elems[i].kind != HS_GE_END; i++)
      if (g->elems[i].kind == HS_GE_REF) occ[fill[g->elems[i].value]++] = (uint32_t)a;
  hs_free(fill);
  size_t qh = 0;
  while (qh < qn) {
    uint32_t r = queue[qh++];
    for (uint32_t k = occ_start[r]; k < occ_start[r + 1]; k++) {
      uint32_t a = occ[k];
      if (cnt[a] == UINT32_MAX || cnt[a] == 0) continue;
      if (--cnt[a] == 0 && !out[alt_rule[a]]) {
        out[alt_rule[a]] = 1;
        queue[qn++] = alt_rule[a];
      }
    }
  }
  hs_free(cnt), hs_free(occ_start), hs_free(queue), hs_free(occ);
  return 0;
}

static int check_grammar(parser *p, const hs_grammar *g) {
  size_t nr = g->n_rules;
  int rc = 0;
  uint32_t *alt_rule = hs_malloc((g->n_alts ? g->n_alts : 1) * sizeof *alt_rule);
  uint8_t *reach = hs_calloc(nr, 1), *prod = hs_calloc(nr, 1), *null = hs_calloc(nr, 1);
  uint8_t *color = hs_calloc(nr, 1);
  uint32_t *stack = hs_malloc(nr * sizeof *stack);
  uint32_t *alt_i = hs_malloc(nr * sizeof *alt_i), *el_i = hs_malloc(nr * sizeof *el_i);
  if (!alt_rule || !reach || !prod || !null || !color || !stack || !alt_i || !el_i) {
    rc = oom();
    goto done;
  }
  for (size_t r = 0; r < nr; r++)
    for (uint32_t a = g->rules[r].alt_first; a < g->rules[r].alt_first + g->rules[r].alt_count; a++)
      alt_rule[a] = (uint32_t)r;
  /* reachability from the root */
  size_t sn = 0;
  reach[g->root] = 1;
  stack[sn++] = g->root;
  while (sn) {
    uint32_t r = stack[--sn];
    for (uint32_t a = g->rules[r].alt_first; a < g->rules[r].alt_first + g->rules[r].alt_count; a++)
      for (uint32_t i = g->alts[a]; g->elems[i].kind != HS_GE_END; i++)
        if (g->elems[i].kind == HS_GE_REF && !reach[g->elems[i].value]) {
          reach[g->elems[i].value] = 1;
          stack[sn++] = g->elems[i].value;
        }
  }
  if ((rc = fixpoint(g, alt_rule, false, prod)) || (rc = fixpoint(g, alt_rule, true, null))) goto done;
  /* left recursion: depth-first search over reachable rules, edges to rules referenced after
   * a nullable prefix. color: 0 unvisited, 1 on the stack, 2 finished. */
  for (size_t start = 0; start < nr; start++) {
    if (!reach[start] || color[start]) continue;
    sn = 0;
    stack[sn] = (uint32_t)start;
    alt_i[sn] = g->rules[start].alt_first;
    el_i[sn] = g->alts[alt_i[sn]];
    color[start] = 1;
    sn++;
    while (sn) {
      uint32_t r = stack[sn - 1];
      const hs_grule *R = &g->rules[r];
      if (alt_i[sn - 1] >= R->alt_first + R->alt_count) {
        color[r] = 2;
        sn--;
        continue;
      }
      hs_gelem e = g->elems[el_i[sn - 1]];
      if (e.kind != HS_GE_REF) { /* a character or the end: this alternative is done */
        if (++alt_i[sn - 1] < R->alt_first + R->alt_count) el_i[sn - 1] = g->alts[alt_i[sn - 1]];
        continue;
      }
      uint32_t t = e.value;
      /* move this frame on first: within the alternative only past a nullable reference */
      if (null[t]) {
        el_i[sn - 1]++;
      } else if (++alt_i[sn - 1] < R->alt_first + R->alt_count) {
        el_i[sn - 1] = g->alts[alt_i[sn - 1]];
      }
      if (color[t] == 1) { /* a cycle: t ... r -> t */
        size_t from = sn - 1;
        while (stack[from] != t) from--;
        for (size_t k = from; k < sn; k++) {
          if (p->rules[stack[k]].origin == ORIGIN_STAR) {
            rc = perr(p, HS_EINVAL, p->rules[stack[k]].off,
                      "repetition of something that can match the empty text would loop "
                      "(left recursion)");
            goto done;
          }
        }
        char msg[HS_ERRMSG_SIZE] = "", d[128];
        size_t used = 0;
        for (size_t k = from; k <= sn && used < sizeof msg - 1; k++) {
          describe(p, k < sn ? stack[k] : t, d, sizeof d);
          int w = snprintf(msg + used, sizeof msg - used, "%s%s", k > from ? " -> " : "", d);
          if (w < 0) break;
          used += (size_t)w;
        }
        size_t first_user = from;
        for (size_t k = from; k < sn; k++)
          if (p->rules[stack[k]].origin == ORIGIN_USER) {
            first_user = k;
            break;
          }
        rc = perr(p, HS_EINVAL, p->rules[stack[first_user]].off,
                  "left recursion: %s (a rule reaches itself without consuming a character)", msg);
        goto done;
      }
      if (color[t] == 0) {
        color[t] = 1;
        stack[sn] = t;
        alt_i[sn] = g->rules[t].alt_first;
        el_i[sn] = g->alts[alt_i[sn]];
        sn++;
      }
    }
  }
  memset(color, 0, nr);
  for (size_t r0 = 0; r0 < nr; r0++) {
    if (!reach[r0] || prod[r0]) continue;
    /* Every alternative of a rule that cannot finish refers to another such rule: follow the
     * first such reference until a rule repeats, and name a rule of that cycle (a user's, if
     * one is on it), which is where the grammar needs a way out. */
    size_t pn = 0;
    uint32_t r = (uint32_t)r0;
    while (!color[r]) {
      color[r] = 1;
      stack[pn++] = r;
      uint32_t next = r;
      for (uint32_t i = g->alts[g->rules[r].alt_first]; g->elems[i].kind != HS_GE_END; i++)
        if (g->elems[i].kind == HS_GE_REF && !prod[g->elems[i].value]) {
          next = g->elems[i].value;
          break;
        }
      r = next;
    }
    size_t from = 0;
    while (stack[from] != r) from++;
    uint32_t culprit = r;
    for (size_t k = from; k < pn; k++)
      if (p->rules[stack[k]].origin == ORIGIN_USER) {
        culprit = stack[k];
        break;
      }
    char d[128];
    describe(p, culprit, d, sizeof d);
    rc = perr(p, HS_EINVAL, p->rules[culprit].off,
              "rule %s can never finish: every alternative leads back into it or into another "
              "rule that cannot finish",
              d);
    goto done;
  }
done:
  hs_free(alt_rule), hs_free(reach), hs_free(prod), hs_free(null), hs_free(color);
  hs_free(stack), hs_free(alt_i), hs_free(el_i);
  return rc;
}

/* ======================================================================================== */
/* Assembly                                                                                 */
/* ======================================================================================== */

void hs_grammar_destroy(hs_grammar *g) {
  if (!g) return;
  hs_free(g->elems);
  hs_free(g->alts);
  hs_free(g->rules);
  hs_free(g->classes);
  hs_free(g->ranges);
  hs_free(g->names);
  hs_free(g);
}

static void parser_free(parser *p) {
  for (size_t i = 0; i < p->n_rules; i++) {
    hs_free(p->rules[i].name);
    hs_free(p->rules[i].el);
  }
  hs_free(p->rules);
  hs_free(p->tab);
  hs_free(p->classes);
  hs_free(p->ranges);
  hs_free(p->tmp);
}

static int assemble(parser *p, uint32_t root, hs_grammar **out) {
  hs_grammar *g = hs_calloc(1, sizeof *g);
  if (!g) return oom();
  size_t n_alts = 0, names = 0;
  for (size_t r = 0; r < p->n_rules; r++) {
    for (size_t i = 0; i < p->rules[r].n; i++) n_alts += p->rules[r].el[i].kind == HS_GE_END;
    names += (p->rules[r].name ? p->rules[r].name_len : 12) + 1;
  }
  g->n_elems = p->total;
  g->n_alts = n_alts;
  g->n_rules = p->n_rules;
  g->elems = hs_malloc(p->total * sizeof *g->elems);
  g->alts = hs_malloc(n_alts * sizeof *g->alts);
  g->rules = hs_malloc(p->n_rules * sizeof *g->rules);
  g->names = hs_malloc(names);
  g->classes = hs_malloc((p->n_classes ? p->n_classes : 1) * sizeof *g->classes);
  g->ranges = hs_malloc((p->n_ranges ? 2 * p->n_ranges : 1) * sizeof *g->ranges);
  if (!g->elems || !g->alts || !g->rules || !g->names || !g->classes || !g->ranges) {
    hs_grammar_destroy(g);
    return oom();
  }
  if (p->n_classes) memcpy(g->classes, p->classes, p->n_classes * sizeof *g->classes);
  if (p->n_ranges) memcpy(g->ranges, p->ranges, 2 * p->n_ranges * sizeof *g->ranges);
  g->n_classes = p->n_classes;
  g->n_ranges = p->n_ranges;
  size_t e = 0, a = 0, nm = 0;
  for (size_t r = 0; r < p->n_rules; r++) {
    const prule *q = &p->rules[r];
    g->rules[r].alt_first = (uint32_t)a;
    g->rules[r].name = (uint32_t)nm;
    if (q->name) memcpy(g->names + nm, q->name, q->name_len + 1), nm += q->name_len + 1;
    else nm += (size_t)snprintf(g->names + nm, 13, "_g%zu", r % 1000000000u) + 1;
    bool at_start = true;
    for (size_t i = 0; i < q->n; i++) {
      if (at_start) g->alts[a++] = (uint32_t)e;
      g->elems[e++] = q->el[i];
      at_start = q->el[i].kind == HS_GE_END;
    }
    g->rules[r].alt_count = (uint32_t)(a - g->rules[r].alt_first);
  }
  g->root = root;
  int rc = check_grammar(p, g);
  if (rc) {
    hs_grammar_destroy(g);
    return rc;
  }
  *out = g;
  return 0;
}

int hs_grammar_parse(const char *text, size_t len, const char *root, hs_grammar **out) {
  if (!out) return hs_set_error(&err, HS_EINVAL, "grammar: parse with a NULL output pointer");
  *out = NULL;
  if (!text && len) return hs_set_error(&err, HS_EINVAL, "grammar: NULL text of %zu bytes", len);
  if (len > HS_GRAMMAR_MAX_TEXT)
    return hs_set_error(&err, HS_EINVAL, "grammar: text of %zu bytes is above the limit of %u",
                        len, HS_GRAMMAR_MAX_TEXT);
  if (!root) root = "root";
  parser p;
  memset(&p, 0, sizeof p);
  p.s = text ? text : "";
  p.len = len;
  p.any_class = UINT32_MAX;
  int rc = 0;
  skip_space(&p, true);
  while (!rc && p.pos < p.len) {
    rc = parse_rule(&p);
    skip_space(&p, true);
  }
  /* undefined rules: report the earliest use */
  size_t bad = SIZE_MAX;
  for (size_t r = 0; !rc && r < p.n_rules; r++)
    if (!p.rules[r].defined && (bad == SIZE_MAX || p.rules[r].use < p.rules[bad].use)) bad = r;
  if (!rc && bad != SIZE_MAX)
    rc = perr(&p, HS_EINVAL, p.rules[bad].use, "undefined rule '%.64s'", p.rules[bad].name);
  uint32_t root_id = 0;
  if (!rc) {
    size_t rl = strlen(root), found = SIZE_MAX;
    for (size_t r = 0; r < p.n_rules && found == SIZE_MAX; r++)
      if (p.rules[r].name && p.rules[r].name_len == rl && memcmp(p.rules[r].name, root, rl) == 0)
        found = r;
    if (found == SIZE_MAX)
      rc = hs_set_error(&err, HS_EINVAL, "grammar has no rule named '%.64s' to start from", root);
    root_id = (uint32_t)found;
  }
  if (!rc) rc = assemble(&p, root_id, out);
  parser_free(&p);
  return rc;
}
