/* bench_grammar.c: cost of the allowed-token mask of a grammar state (include/hswarm/grammar.h).
 *
 * A synthetic vocabulary of realistic subword strings is built (deterministically): the 256
 * single bytes (as byte-fallback tokens), common English words and pieces with and without a
 * leading space, numbers, punctuation and JSON/code fragments (`{"`, `":`, `},`, ...), runs of
 * spaces and newlines, and words in other scripts (accented Latin, Cyrillic, CJK, emoji), until
 * the requested size; a few eog and control tokens are added. For each vocabulary size (32000
 * and 128256 by default) and each grammar position below, the mask is computed repeatedly on one
 * state (warm: the state's transition cache already knows the configurations met) and once on a
 * fresh clone (cold: only the current configuration is known). Positions, in grammars/json.gbnf
 * unless noted:
 *   start       nothing yet: only "{" and blanks can come
 *   key         after {"na: inside a key string
 *   string      inside a string value: nearly every token is allowed (the worst case)
 *   number      after "age": 3
 *   after_comma after a member and ",": a key or blanks
 *   array       after "[": any value
 *   schema_str  a JSON-schema grammar (an object with typed properties), inside a string value
 *
 *   bench_grammar [--json] [--reps N] [--vocab N]...   (grammars/ found via $HS_SOURCE_DIR,
 *                                                    else the source tree it was built from)
 *
 * Figures are milliseconds per mask (warm: median of reps; cold: median of up to 11 clones), the
 * time to index the vocabulary (build_ms), and the number of tokens allowed. With --json exactly
 * one JSON object goes to stdout. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hswarm/alloc.h"
#include "hswarm/grammar.h"

#define MAX_REPS 1001

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static uint64_t rng_state = 0x243F6A8885A308D3ull;

static uint64_t rnd(void) { /* splitmix64 */
  uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static size_t pick(size_t n) { return (size_t)(rnd() % n); }

/* ---- the synthetic vocabulary ---- */

typedef struct vocab {
  char **tok;
  size_t *len;
  bool *eog;
  size_t n, cap;
  /* a small hash set so that (like a real BPE vocabulary) strings are mostly distinct */
  uint64_t *seen;
  size_t seen_cap;
} vocab;

static uint64_t fnv(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
  return h | 1;
}

static bool add(vocab *v, const char *s, size_t n, bool allow_dup) {
  uint64_t h = fnv(s, n);
  size_t j = h & (v->seen_cap - 1);
  while (v->seen[j]) {
    if (v->seen[j] == h && !allow_dup) return false;
    j = (j + 1) & (v->seen_cap - 1);
  }
  if (v->n == v->cap) return false;
  v->seen[j] = h;
  v->tok[v->n] = malloc(n ? n : 1);
  memcpy(v->tok[v->n], s, n);
  v->len[v->n] = n;
  v->eog[v->n] = false;
  v->n++;
  return true;
}

static const char *const onsets[] = {"", "b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n",
                                     "p", "r", "s", "t", "v", "w", "y", "z", "bl", "br", "ch",
                                     "cl", "cr", "dr", "fl", "fr", "gr", "pl", "pr", "sh", "sl",
                                     "sp", "st", "str", "th", "tr", "wh", "sc", "qu"};
static const char *const nuclei[] = {"a", "e", "i", "o", "u", "ea", "ee", "ai", "ou", "oo", "ie",
                                     "y", "io", "au"};
static const char *const codas[] = {"", "", "", "n", "r", "s", "t", "l", "m", "d", "ng", "nd",
                                    "st", "ck", "ll", "ss", "nt", "rs", "th", "ch", "sh", "x"};
static const char *const suffixes[] = {"ing", "tion", "ed", "er", "ly", "s", "es", "ment", "ness",
                                       "able", "ize", "ity", "ous", "ive", "al", "ers", "est"};
static const char *const fragments[] = {
    "{", "}", "[", "]", "{\"", "\"}", "\":", "\": ", "\",", "\", \"", "},", "],", "}]", "]}",
    "\":\"", "\": \"", "\": {", "\": [", "\"]", "[\"", "\\\"", "\\n", "\\", "\"", "'", ":", ",",
    ".", ";", "(", ")", "()", "();", "->", "=>", "==", "!=", "<=", ">=", "&&", "||", "++", "+=",
    "//", "/*", "*/", "#", "##", "<", ">", "</", "/>", "=\"", "\">", "...", "--", "_", "__", "$",
    "%", "@", "!", "?", "true", "false", "null", " true", " false", " null", "0.", ".0", "e-",
    "E+", "-1", "1e", " {", " }", " [", " ]", " \"", " (", " -", " +", " *", " /", " =", " :"};
static const char *const scripts[] = {
    "é", "è", "ü", "ö", "ä", "ñ", "ç", "ß", "ø", "å", "ł", "ž", "ş", "ğ", "ı",
    "д", "и", "в", "е", "т", "ь", "с", "к", "а", "я", "ж", "ш", "ы", "ю",
    "的", "是", "不", "我", "一", "有", "大", "在", "人", "了", "中", "到", "资", "要",
    "の", "に", "は", "を", "た", "が", "で", "て", "と", "し", "れ", "さ", "ア", "イ",
    "한", "국", "어", "는", "이", "다", "😀", "👍", "🎉", "🔥", "✅", "→", "•", "…", "—", "€"};

static void make_word(char *buf, size_t size, size_t syllables) {
  size_t n = 0;
  buf[0] = 0;
  for (size_t s = 0; s < syllables; s++) {
    const char *parts[3] = {onsets[pick(sizeof onsets / sizeof *onsets)],
                            nuclei[pick(sizeof nuclei / sizeof *nuclei)],
                            codas[pick(sizeof codas / sizeof *codas)]};
    for (int k = 0; k < 3; k++) {
      size_t l = strlen(parts[k]);
      if (n + l + 1 < size) memcpy(buf + n, parts[k], l), n += l;
    }
  }
  buf[n] = 0;
}

static void build_vocab(vocab *v, size_t n) {
  memset(v, 0, sizeof *v);
  v->cap = n;
  v->tok = calloc(n, sizeof *v->tok);
  v->len = calloc(n, sizeof *v->len);
  v->eog = calloc(n, sizeof *v->eog);
  v->seen_cap = 1;
  while (v->seen_cap < 4 * n) v->seen_cap *= 2;
  v->seen = calloc(v->seen_cap, sizeof *v->seen);
  rng_state = 0x243F6A8885A308D3ull;
  /* 3 control tokens (no text) and 2 eog tokens first, like <unk> <s> </s> */
  for (int i = 0; i < 5; i++) {
    v->tok[v->n] = NULL;
    v->len[v->n] = 0;
    v->eog[v->n] = i == 2 || i == 4;
    v->n++;
  }
  for (int b = 0; b < 256; b++) {
    char c = (char)b;
    add(v, &c, 1, true);
  }
  for (size_t i = 0; i < sizeof fragments / sizeof *fragments; i++)
    add(v, fragments[i], strlen(fragments[i]), false);
  for (int i = 0; i < 1000 && v->n < n; i++) { /* numbers */
    char buf[16];
    int l = snprintf(buf, sizeof buf, i < 100 ? "%d" : " %d", i);
    add(v, buf, (size_t)l, false);
  }
  for (int k = 2; k <= 16 && v->n < n; k++) { /* blank runs */
    char buf[40];
    memset(buf, ' ', (size_t)k);
    add(v, buf, (size_t)k, false);
    buf[0] = '\n';
    add(v, buf, (size_t)k, false);
    memset(buf, '\t', (size_t)k);
    add(v, buf, (size_t)(k / 2 + 1), false);
  }
  char word[128], tok[160];
  while (v->n < n) {
    size_t r = pick(100);
    size_t l = 0;
    if (r < 55) { /* " word" */
      make_word(word, sizeof word, 1 + pick(3));
      l = (size_t)snprintf(tok, sizeof tok, " %s", word);
      if (pick(8) == 0) tok[1] = (char)(tok[1] - 32); /* capitalised */
    } else if (r < 80) { /* a piece inside a word */
      make_word(word, sizeof word, 1 + pick(2));
      l = (size_t)snprintf(tok, sizeof tok, "%s", word);
    } else if (r < 88) { /* word + suffix */
      make_word(word, sizeof word, 1 + pick(2));
      l = (size_t)snprintf(tok, sizeof tok, "%s%s", pick(2) ? " " : "",
                           suffixes[pick(sizeof suffixes / sizeof *suffixes)]);
      memmove(tok + strlen(word), tok, l + 1);
      memcpy(tok, word, strlen(word));
      l += strlen(word);
    } else if (r < 96) { /* other scripts: 1 to 3 characters, sometimes after a space */
      l = 0;
      if (pick(3) == 0) tok[l++] = ' ';
      for (size_t k = 1 + pick(3); k > 0; k--) {
        const char *s = scripts[pick(sizeof scripts / sizeof *scripts)];
        memcpy(tok + l, s, strlen(s));
        l += strlen(s);
      }
    } else { /* code-ish: identifier with punctuation */
      make_word(word, sizeof word, 1);
      const char *f = fragments[pick(sizeof fragments / sizeof *fragments)];
      l = (size_t)snprintf(tok, sizeof tok, "%s%s", word, f);
    }
    add(v, tok, l, false);
  }
}

static const vocab *sorting;

static int cmp_tok(const void *a, const void *b) {
  size_t x = *(const size_t *)a, y = *(const size_t *)b;
  size_t lx = sorting->len[x], ly = sorting->len[y];
  int c = memcmp(sorting->tok[x], sorting->tok[y], lx < ly ? lx : ly);
  return c ? c : (lx > ly) - (lx < ly);
}

/* Nodes of the vocabulary's trie (distinct non-empty prefixes), and the tokens' mean length. */
static size_t trie_nodes(const vocab *v, double *mean_len) {
  size_t *ids = malloc(v->n * sizeof *ids), m = 0, nodes = 0, bytes = 0;
  for (size_t i = 0; i < v->n; i++)
    if (v->len[i] && !v->eog[i]) ids[m++] = i;
  sorting = v;
  qsort(ids, m, sizeof *ids, cmp_tok);
  for (size_t i = 0; i < m; i++) {
    size_t l = 0, len = v->len[ids[i]];
    if (i) {
      size_t pl = v->len[ids[i - 1]];
      while (l < len && l < pl && v->tok[ids[i]][l] == v->tok[ids[i - 1]][l]) l++;
    }
    nodes += len - l;
    bytes += len;
  }
  *mean_len = m ? (double)bytes / (double)m : 0;
  free(ids);
  return nodes;
}

static void free_vocab(vocab *v) {
  for (size_t i = 0; i < v->n; i++) free(v->tok[i]);
  free(v->tok);
  free(v->len);
  free(v->eog);
  free(v->seen);
}

/* ---- measurements ---- */

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static char *read_file(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)size + 1);
  *n = fread(buf, 1, (size_t)size, f);
  buf[*n] = 0;
  fclose(f);
  return buf;
}

typedef struct scenario {
  const char *name;
  int grammar; /* 0 json.gbnf, 1 the schema */
  const char *prefix;
} scenario;

static const scenario scenarios[] = {
    {"start", 0, ""},
    {"key", 0, "{\"na"},
    {"string", 0, "{\"name\": \"Al"},
    {"number", 0, "{\"name\": \"Alice\", \"age\": 3"},
    {"after_comma", 0, "{\"name\": \"Alice\", \"age\": 31, "},
    {"array", 0, "{\"items\": ["},
    {"schema_str", 1, "{\"name\": \"Al"},
};
#define N_SCEN (sizeof scenarios / sizeof scenarios[0])

static const char *schema =
    "{\"type\":\"object\",\"properties\":{"
    "\"name\":{\"type\":\"string\"},\"age\":{\"type\":\"integer\"},"
    "\"email\":{\"type\":\"string\",\"maxLength\":80},"
    "\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"maxItems\":8},"
    "\"role\":{\"enum\":[\"admin\",\"user\",\"guest\"]}},"
    "\"required\":[\"name\",\"age\"]}";

int main(int argc, char **argv) {
  bool json = false;
  int reps = 51;
  size_t sizes[8] = {32000, 128256};
  size_t n_sizes = 2, given = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--json") == 0) json = true;
    else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) reps = atoi(argv[++i]);
    else if (strcmp(argv[i], "--vocab") == 0 && i + 1 < argc && given < 8)
      sizes[given++] = (size_t)strtoull(argv[++i], NULL, 10);
    else {
      fprintf(stderr, "usage: bench_grammar [--json] [--reps N] [--vocab N]...\n");
      return 2;
    }
  }
  if (given) n_sizes = given;
  if (reps < 1 || reps > MAX_REPS) reps = 51;
  /* the source tree: $HS_SOURCE_DIR, else where this file was compiled from */
  char path[4096];
  const char *src = getenv("HS_SOURCE_DIR");
  if (src) {
    snprintf(path, sizeof path, "%s/grammars/json.gbnf", src);
  } else {
    snprintf(path, sizeof path, "%s", __FILE__);
    char *cut = strstr(path, "bench/bench_grammar.c");
    if (cut) snprintf(cut, sizeof path - (size_t)(cut - path), "grammars/json.gbnf");
  }
  size_t glen;
  char *gtext = read_file(path, &glen);
  if (!gtext) {
    fprintf(stderr, "bench_grammar: cannot read %s (set HS_SOURCE_DIR)\n", path);
    return 1;
  }
  hs_grammar *g[2];
  if (hs_grammar_parse(gtext, glen, NULL, &g[0]) ||
      hs_grammar_from_json_schema(schema, strlen(schema), &g[1])) {
    fprintf(stderr, "bench_grammar: %s\n", hs_grammar_last_error());
    return 1;
  }
  free(gtext);
  if (json) printf("{\"bench\":\"grammar_mask\",\"reps\":%d,\"results\":[", reps);
  else printf("%-8s %-12s %9s %9s %9s %8s\n", "vocab", "position", "warm_ms", "cold_ms",
              "build_ms", "allowed");
  bool first = true;
  for (size_t z = 0; z < n_sizes; z++) {
    vocab sv;
    build_vocab(&sv, sizes[z]);
    double t0 = now_ms();
    hs_grammar_vocab *v;
    if (hs_grammar_vocab_create((const char *const *)sv.tok, sv.len, sv.eog, sv.n, &v)) {
      fprintf(stderr, "bench_grammar: %s\n", hs_grammar_last_error());
      return 1;
    }
    double build = now_ms() - t0, mean_len;
    size_t nodes = trie_nodes(&sv, &mean_len);
    if (!json)
      printf("# vocabulary of %zu tokens, mean length %.2f bytes, %zu trie nodes\n", sv.n, mean_len,
             nodes);
    uint8_t *mask = malloc(sv.n);
    for (size_t k = 0; k < N_SCEN; k++) {
      const scenario *sc = &scenarios[k];
      hs_grammar_state *s, *cold;
      if (hs_grammar_state_create(g[sc->grammar], &s) ||
          hs_grammar_state_accept_bytes(s, sc->prefix, strlen(sc->prefix))) {
        fprintf(stderr, "bench_grammar: %s: %s\n", sc->name, hs_grammar_last_error());
        return 1;
      }
      /* cold: the first mask of a fresh clone (median over up to 11 clones) */
      double times[MAX_REPS];
      int colds = reps < 11 ? reps : 11, allowed = 0;
      for (int r = 0; r < colds; r++) {
        if (hs_grammar_state_clone(s, &cold)) return 1;
        t0 = now_ms();
        allowed = hs_grammar_state_mask(cold, v, mask);
        times[r] = now_ms() - t0;
        hs_grammar_state_destroy(cold);
      }
      qsort(times, (size_t)colds, sizeof *times, cmp_d);
      double cold_ms = times[colds / 2];
      for (int r = 0; r < reps; r++) {
        t0 = now_ms();
        allowed = hs_grammar_state_mask(s, v, mask);
        times[r] = now_ms() - t0;
      }
      if (allowed < 0) {
        fprintf(stderr, "bench_grammar: mask: %s\n", hs_grammar_last_error());
        return 1;
      }
      qsort(times, (size_t)reps, sizeof *times, cmp_d);
      double warm = times[reps / 2];
      if (json)
        printf("%s{\"vocab\":%zu,\"trie_nodes\":%zu,\"position\":\"%s\",\"warm_ms\":%.4f,"
               "\"cold_ms\":%.4f,\"build_ms\":%.1f,\"allowed\":%d}",
               first ? "" : ",", sv.n, nodes, sc->name, warm, cold_ms, build, allowed);
      else
        printf("%-8zu %-12s %9.4f %9.4f %9.1f %8d\n", sv.n, sc->name, warm, cold_ms, build, allowed);
      first = false;
      hs_grammar_state_destroy(s);
    }
    free(mask);
    hs_grammar_vocab_destroy(v);
    free_vocab(&sv);
  }
  if (json) printf("]}\n");
  hs_grammar_destroy(g[0]);
  hs_grammar_destroy(g[1]);
  return 0;
}
