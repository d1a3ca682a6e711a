/* chat.c: chat templates (see hswarm/chat.h for the file format) and rendering a conversation.
 *
 * A template is a handful of strings with {content} / {system} placeholders, kept in a file a
 * user can edit, instead of an embedded Jinja interpreter: the three conventions the engine
 * supports (Llama 3 headers, [INST] markers, ChatML) are all "a prefix and a suffix around each
 * message", plus two wrinkles handled by optional fields: conventions without a system turn fold
 * the system message into the first user message (user_first_with_system), and some add a default
 * system message when none is given (default_system).
 *
 * Parsing is strict: unknown keys, a missing required field (user, assistant, generation_prompt),
 * an unterminated string, a bad escape or an unknown placeholder are errors naming the line and
 * column, so a typo in an edited template is reported instead of silently changing prompts. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/last_error.h"
#include "core/strbuf.h"
#include "hswarm/alloc.h"
#include "hswarm/chat.h"
#include "hswarm/error.h"

#define MAX_DETECT 8
#define MAX_STOPS 8
#define MAX_TEMPLATE_BYTES (1u << 20)

static _Thread_local hs_errbuf err;

const char *hs_chat_last_error(void) { return err.msg; }

enum field {
  F_SYSTEM,
  F_USER,
  F_ASSISTANT,
  F_USER_FIRST_WITH_SYSTEM,
  F_USER_FIRST,
  F_GENERATION_PROMPT,
  F_DEFAULT_SYSTEM,
  F_COUNT
};

static const char *const field_names[F_COUNT] = {
    "system", "user", "assistant", "user_first_with_system", "user_first", "generation_prompt",
    "default_system"};

struct hs_chat_template {
  char *name;
  char *fields[F_COUNT]; /* NULL when absent */
  char *detect[MAX_DETECT];
  size_t n_detect;
  char *stops[MAX_STOPS];
  size_t n_stops;
  bool trim;
};

/* ---- parsing ---- */

typedef struct parser {
  const char *s, *end, *origin;
  unsigned line;
  const char *line_start;
} parser;

static int perr(const parser *p, const char *at, const char *what) {
  return hs_set_error(&err, HS_ECORRUPT, "%s: line %u, column %u: %s", p->origin, p->line,
                      (unsigned)(at - p->line_start) + 1, what);
}

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Reads a double-quoted string at p->s (on the current line) into *out. */
static int parse_string(parser *p, char **out) {
  if (p->s >= p->end || *p->s != '"') return perr(p, p->s, "expected a double-quoted string");
  const char *q = p->s + 1;
  hs_strbuf b = {0};
  for (;;) {
    if (q >= p->end || *q == '\n') {
      hs_free(b.p);
      return perr(p, q, "unterminated string");
    }
    char c = *q;
    if (c == '"') break;
    if (c != '\\') {
      hs_strbuf_add(&b, q, 1);
      q++;
      continue;
    }
    if (q + 1 >= p->end) {
      hs_free(b.p);
      return perr(p, q, "unterminated string");
    }
    char e = q[1], v;
    switch (e) {
    case 'n': v = '\n'; break;
    case 't': v = '\t'; break;
    case 'r': v = '\r'; break;
    case '\\': v = '\\'; break;
    case '"': v = '"'; break;
    case 'x': {
      int h = q + 3 < p->end ? hexval(q[2]) : -1, l = q + 3 < p->end ? hexval(q[3]) : -1;
      if (h < 0 || l < 0) {
        hs_free(b.p);
        return perr(p, q, "\\x needs two hexadecimal digits");
      }
      v = (char)(h * 16 + l);
      q += 2;
      break;
    }
    default:
      hs_free(b.p);
      return perr(p, q, "unknown escape (use \\n \\t \\r \\\\ \\\" or \\xHH)");
    }
    hs_strbuf_add(&b, &v, 1);
    q += 2;
  }
  p->s = q + 1;
  char *s = hs_strbuf_take(&b);
  if (!s) return hs_set_error(&err, HS_ENOMEM, "out of memory parsing a chat template");
  *out = s;
  return 0;
}

/* Checks the placeholders of a field's text: only {content}, and {system} where allowed. */
static int check_placeholders(parser *p, const char *at, const char *text, bool allow_content,
                              bool allow_system) {
  for (const char *c = text; *c; c++) {
    if ((c[0] == '{' && c[1] == '{') || (c[0] == '}' && c[1] == '}')) {
      c++;
      continue;
    }
    if (*c == '}') return perr(p, at, "a lone '}' (write '}}' for a literal brace)");
    if (*c != '{') continue;
    if (allow_content && !strncmp(c, "{content}", 9)) {
      c += 8;
    } else if (allow_system && !strncmp(c, "{system}", 8)) {
      c += 7;
    } else {
      return perr(p, at,
                  allow_system ? "unknown placeholder (this field takes {system} and {content})"
                  : allow_content ? "unknown placeholder (this field takes {content})"
                                  : "this field takes no placeholder (write '{{' for a brace)");
    }
  }
  return 0;
}

static bool valid_name(const char *s) {
  if (!*s) return false;
  for (; *s; s++)
    if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.') return false;
  return true;
}

static int parse_line(parser *p, hs_chat_template *t) {
  const char *key = p->s;
  while (p->s < p->end && (isalnum((unsigned char)*p->s) || *p->s == '_')) p->s++;
  size_t klen = (size_t)(p->s - key);
  if (!klen) return perr(p, key, "expected a setting name");
  while (p->s < p->end && (*p->s == ' ' || *p->s == '\t')) p->s++;
  if (p->s >= p->end || *p->s != '=') return perr(p, p->s, "expected '=' after the setting name");
  p->s++;
  while (p->s < p->end && (*p->s == ' ' || *p->s == '\t')) p->s++;
  const char *value_at = p->s;

#define KEY_IS(lit) (klen == sizeof(lit) - 1 && !memcmp(key, lit, klen))
  if (KEY_IS("trim")) {
    if (p->end - p->s >= 4 && !memcmp(p->s, "true", 4)) {
      t->trim = true;
      p->s += 4;
    } else if (p->end - p->s >= 5 && !memcmp(p->s, "false", 5)) {
      t->trim = false;
      p->s += 5;
    } else {
      return perr(p, value_at, "trim takes true or false");
    }
    return 0;
  }
  char *value = NULL;
  int rc = parse_string(p, &value);
  if (rc) return rc;
  if (KEY_IS("name")) {
    if (t->name) rc = perr(p, key, "name given twice");
    else if (!valid_name(value)) rc = perr(p, value_at, "a name takes letters, digits, '-', '_', '.'");
    else {
      t->name = value;
      return 0;
    }
  } else if (KEY_IS("detect") || KEY_IS("stop")) {
    bool detect = KEY_IS("detect");
    size_t *n = detect ? &t->n_detect : &t->n_stops;
    if (!*value) rc = perr(p, value_at, "an empty string");
    else if (*n == (detect ? MAX_DETECT : MAX_STOPS)) rc = perr(p, key, "too many of this setting");
    else {
      (detect ? t->detect : t->stops)[(*n)++] = value;
      return 0;
    }
  } else {
    int f = -1;
    for (int i = 0; i < F_COUNT; i++)
      if (strlen(field_names[i]) == klen && !memcmp(field_names[i], key, klen)) f = i;
    if (f < 0) rc = perr(p, key, "unknown setting");
    else if (t->fields[f]) rc = perr(p, key, "setting given twice");
    else {
      bool content = f != F_GENERATION_PROMPT && f != F_DEFAULT_SYSTEM;
      rc = check_placeholders(p, value_at, value, content, f == F_USER_FIRST_WITH_SYSTEM);
      if (!rc) {
        t->fields[f] = value;
        return 0;
      }
    }
  }
#undef KEY_IS
  hs_free(value);
  return rc;
}

int hs_chat_template_parse(const char *text, size_t len, const char *origin,
                           hs_chat_template **out) {
  if (!text || !out) return hs_set_error(&err, HS_EINVAL, "hs_chat_template_parse: NULL argument");
  if (!origin) origin = "chat template";
  if (memchr(text, '\0', len))
    return hs_set_error(&err, HS_ECORRUPT, "%s: contains a NUL byte", origin);
  hs_chat_template *t = hs_calloc(1, sizeof *t);
  if (!t) return hs_set_error(&err, HS_ENOMEM, "out of memory parsing a chat template");
  parser p = {text, text + len, origin, 1, text};
  int rc = 0;
  while (p.s < p.end && !rc) {
    while (p.s < p.end && (*p.s == ' ' || *p.s == '\t' || *p.s == '\r')) p.s++;
    if (p.s < p.end && *p.s != '\n' && *p.s != '#') {
      rc = parse_line(&p, t);
      while (!rc && p.s < p.end && (*p.s == ' ' || *p.s == '\t' || *p.s == '\r')) p.s++;
      if (!rc && p.s < p.end && *p.s != '\n' && *p.s != '#')
        rc = perr(&p, p.s, "unexpected text after the value");
    }
    while (!rc && p.s < p.end && *p.s != '\n') p.s++; /* comment or end of line */
    if (p.s < p.end) {
      p.s++;
      p.line++;
      p.line_start = p.s;
    }
  }
  if (!rc) {
    const char *missing = !t->name                           ? "name"
                          : !t->fields[F_USER]               ? "user"
                          : !t->fields[F_ASSISTANT]          ? "assistant"
                          : !t->fields[F_GENERATION_PROMPT] ? "generation_prompt"
                                                             : NULL;
    if (missing) rc = hs_set_error(&err, HS_ECORRUPT, "%s: the setting '%s' is missing", origin, missing);
  }
  if (rc) {
    hs_chat_template_destroy(t);
    return rc;
  }
  *out = t;
  return 0;
}

void hs_chat_template_destroy(hs_chat_template *t) {
  if (!t) return;
  hs_free(t->name);
  for (int i = 0; i < F_COUNT; i++) hs_free(t->fields[i]);
  for (size_t i = 0; i < t->n_detect; i++) hs_free(t->detect[i]);
  for (size_t i = 0; i < t->n_stops; i++) hs_free(t->stops[i]);
  hs_free(t);
}

int hs_chat_template_load_file(const char *path, hs_chat_template **out) {
  if (!path || !out) return hs_set_error(&err, HS_EINVAL, "hs_chat_template_load_file: NULL argument");
  FILE *f = fopen(path, "rb");
  if (!f)
    return hs_set_error(&err, errno == ENOENT ? HS_ENOENT : HS_EIO, "%s: %s", path, strerror(errno));
  hs_strbuf b = {0};
  char chunk[4096];
  size_t got;
  while ((got = fread(chunk, 1, sizeof chunk, f)) > 0 && b.n <= MAX_TEMPLATE_BYTES) hs_strbuf_add(&b, chunk, got);
  int io_error = ferror(f);
  fclose(f);
  if (io_error) {
    hs_free(b.p);
    return hs_set_error(&err, HS_EIO, "%s: read error", path);
  }
  if (b.n > MAX_TEMPLATE_BYTES) {
    hs_free(b.p);
    return hs_set_error(&err, HS_ECORRUPT, "%s: larger than %u bytes", path, MAX_TEMPLATE_BYTES);
  }
  size_t n = b.n;
  char *text = hs_strbuf_take(&b);
  if (!text) return hs_set_error(&err, HS_ENOMEM, "out of memory reading %s", path);
  int rc = hs_chat_template_parse(text, n, path, out);
  hs_free(text);
  return rc;
}

int hs_chat_template_load_named(const char *dir, const char *name, hs_chat_template **out) {
  if (!dir || !name || !out) return hs_set_error(&err, HS_EINVAL, "hs_chat_template_load_named: NULL argument");
  if (!valid_name(name))
    return hs_set_error(&err, HS_EINVAL, "'%s' is not a template name (letters, digits, '-', '_', '.')", name);
  char path[4096];
  if ((size_t)snprintf(path, sizeof path, "%s/%s.chat", dir, name) >= sizeof path)
    return hs_set_error(&err, HS_EINVAL, "template path too long");
  int rc = hs_chat_template_load_file(path, out);
  if (rc == HS_ENOENT)
    hs_set_error(&err, HS_ENOENT, "no chat template named '%s' (looked for %s)", name, path);
  return rc;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

int hs_chat_template_detect(const char *dir, const char *model_template, hs_chat_template **out) {
  if (!dir || !model_template || !out)
    return hs_set_error(&err, HS_EINVAL, "hs_chat_template_detect: NULL argument");
  DIR *d = opendir(dir);
  if (!d) return hs_set_error(&err, HS_ENOENT, "%s: %s", dir, strerror(errno));
  char *names[256];
  size_t n = 0;
  struct dirent *e;
  int rc = 0;
  while ((e = readdir(d)) && n < 256) {
    size_t len = strlen(e->d_name);
    if (len <= 5 || strcmp(e->d_name + len - 5, ".chat")) continue;
    names[n] = hs_malloc(len + 1);
    if (!names[n]) {
      rc = hs_set_error(&err, HS_ENOMEM, "out of memory listing %s", dir);
      break;
    }
    memcpy(names[n++], e->d_name, len + 1);
  }
  closedir(d);
  if (!rc) qsort(names, n, sizeof names[0], cmp_str);
  hs_chat_template *found = NULL;
  for (size_t i = 0; i < n && !rc && !found; i++) {
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, names[i]) >= sizeof path) continue;
    hs_chat_template *t = NULL;
    rc = hs_chat_template_load_file(path, &t);
    if (rc) break; /* a broken installed template is reported, not skipped */
    if (hs_chat_template_matches(t, model_template)) found = t;
    else hs_chat_template_destroy(t);
  }
  for (size_t i = 0; i < n; i++) hs_free(names[i]);
  if (rc) return rc;
  if (!found)
    return hs_set_error(&err, HS_ENOENT,
                        "no chat template in %s matches the model's tokenizer.chat_template; "
                        "choose one by name", dir);
  *out = found;
  return 0;
}

const char *hs_chat_template_name(const hs_chat_template *t) { return t ? t->name : ""; }

bool hs_chat_template_matches(const hs_chat_template *t, const char *model_template) {
  if (!t || !model_template || !t->n_detect) return false;
  for (size_t i = 0; i < t->n_detect; i++)
    if (!strstr(model_template, t->detect[i])) return false;
  return true;
}

size_t hs_chat_template_n_stops(const hs_chat_template *t) { return t ? t->n_stops : 0; }

const char *hs_chat_template_stop(const hs_chat_template *t, size_t i) {
  return t && i < t->n_stops ? t->stops[i] : NULL;
}

/* ---- rendering ---- */

static void add_content(hs_strbuf *b, const char *s, bool trim) {
  size_t n = strlen(s);
  if (trim) {
    while (n && isspace((unsigned char)*s)) s++, n--;
    while (n && isspace((unsigned char)s[n - 1])) n--;
  }
  hs_strbuf_add(b, s, n);
}

/* Appends a field's text with its placeholders filled. */
static void expand(hs_strbuf *b, const char *field, const char *content, const char *system, bool trim) {
  const char *c = field;
  while (*c) {
    const char *brace = strpbrk(c, "{}");
    if (!brace) {
      hs_strbuf_add(b, c, strlen(c));
      break;
    }
    hs_strbuf_add(b, c, (size_t)(brace - c));
    if (brace[0] == brace[1]) { /* {{ or }} */
      hs_strbuf_add(b, brace, 1);
      c = brace + 2;
    } else if (!strncmp(brace, "{content}", 9)) {
      add_content(b, content ? content : "", trim);
      c = brace + 9;
    } else { /* {system}: the parser admits nothing else */
      add_content(b, system ? system : "", trim);
      c = brace + 8;
    }
  }
}

int hs_chat_render(const hs_chat_template *t, const hs_chat_message *msgs, size_t n,
                   bool add_generation_prompt, char **out) {
  if (!t || (!msgs && n) || !out) return hs_set_error(&err, HS_EINVAL, "hs_chat_render: NULL argument");
  for (size_t i = 0; i < n; i++) {
    if (!msgs[i].role || !msgs[i].content)
      return hs_set_error(&err, HS_EINVAL, "message %zu: NULL role or content", i);
    if (strcmp(msgs[i].role, "system") && strcmp(msgs[i].role, "user") &&
        strcmp(msgs[i].role, "assistant"))
      return hs_set_error(&err, HS_EINVAL,
                          "message %zu: unknown role '%s' (system, user or assistant)", i, msgs[i].role);
  }
  hs_strbuf b = {0};
  size_t i = 0;
  /* the conversation's system message: the first message's, or the template's default */
  const char *system = NULL;
  if (n && !strcmp(msgs[0].role, "system")) system = msgs[i++].content;
  else system = t->fields[F_DEFAULT_SYSTEM];
  bool fold = system && !t->fields[F_SYSTEM];
  if (fold && !t->fields[F_USER_FIRST_WITH_SYSTEM]) {
    return hs_set_error(&err, HS_EINVAL, "chat template '%s' has no place for a system message",
                        t->name);
  }
  if (system && !fold) expand(&b, t->fields[F_SYSTEM], system, NULL, t->trim);
  bool first_user = true;
  for (; i < n; i++) {
    const hs_chat_message *m = &msgs[i];
    if (!strcmp(m->role, "system")) {
      if (!t->fields[F_SYSTEM]) {
        hs_free(b.p);
        return hs_set_error(&err, HS_EINVAL,
                            "message %zu: chat template '%s' takes a system message only first", i,
                            t->name);
      }
      expand(&b, t->fields[F_SYSTEM], m->content, NULL, t->trim);
    } else if (!strcmp(m->role, "user")) {
      const char *f = t->fields[F_USER];
      if (first_user && fold) f = t->fields[F_USER_FIRST_WITH_SYSTEM];
      else if (first_user && t->fields[F_USER_FIRST]) f = t->fields[F_USER_FIRST];
      expand(&b, f, m->content, system, t->trim);
      first_user = false;
    } else {
      expand(&b, t->fields[F_ASSISTANT], m->content, NULL, t->trim);
    }
  }
  if (fold && first_user) {
    hs_free(b.p);
    return hs_set_error(&err, HS_EINVAL,
                        "chat template '%s' folds the system message into the first user message, "
                        "and there is none", t->name);
  }
  if (add_generation_prompt) hs_strbuf_add(&b, t->fields[F_GENERATION_PROMPT], strlen(t->fields[F_GENERATION_PROMPT]));
  char *s = hs_strbuf_take(&b);
  if (!s) return hs_set_error(&err, HS_ENOMEM, "out of memory rendering a chat");
  *out = s;
  return 0;
}
