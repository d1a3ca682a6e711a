/* util.c: small helpers for the hswarm subcommands: numbers, JSON strings, clocks, memory. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "hswarm/alloc.h"

int cli_parse_u64(const char *s, int binary, uint64_t *out) {
  if (!s || !*s || *s == '-') return -1;
  char *end;
  unsigned long long v = strtoull(s, &end, 10);
  if (end == s) return -1;
  uint64_t mult = 1, k = binary ? 1024 : 1000;
  if (*end == 'k' || *end == 'K') mult = k, end++;
  else if (*end == 'm' || *end == 'M') mult = k * k, end++;
  else if (*end == 'g' || *end == 'G') mult = k * k * k, end++;
  if (*end) return -1;
  if (v > UINT64_MAX / mult) return -1;
  *out = v * mult;
  return 0;
}

void cli_json_string_n(FILE *f, const char *s, size_t n) {
  fputc('"', f);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    switch (c) {
    case '"': fputs("\\\"", f); break;
    case '\\': fputs("\\\\", f); break;
    case '\n': fputs("\\n", f); break;
    case '\r': fputs("\\r", f); break;
    case '\t': fputs("\\t", f); break;
    default:
      if (c < 0x20)
        fprintf(f, "\\u%04x", c);
      else
        fputc(c, f);
    }
  }
  fputc('"', f);
}

void cli_json_string(FILE *f, const char *s) {
  if (!s) {
    fputs("null", f);
    return;
  }
  cli_json_string_n(f, s, strlen(s));
}

void cli_json_error(const char *command, const char *message) {
  printf("{\"command\":");
  cli_json_string(stdout, command);
  printf(",\"status\":\"error\",\"error\":");
  cli_json_string(stdout, message);
  printf("}\n");
}

static char last_failure[1024];

void cli_fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_failure, sizeof last_failure, fmt, ap);
  va_end(ap);
  fprintf(stderr, "hswarm: %s\n", last_failure);
}

const char *cli_last_failure(void) {
  return last_failure[0] ? last_failure : "the command failed (no detail recorded)";
}

double cli_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

uint64_t cli_rss_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f) return 0;
  unsigned long long size = 0, resident = 0;
  if (fscanf(f, "%llu %llu", &size, &resident) != 2) resident = 0;
  fclose(f);
  return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

int cli_stderr_is_tty(void) { return isatty(2); }

const char *cli_data_dir(const char *rel) {
  static const char *candidates[] = {
#ifdef HS_SOURCE_DIR
      HS_SOURCE_DIR,
#endif
#ifdef HS_INSTALL_DATADIR
      HS_INSTALL_DATADIR,
#endif
      NULL};
  for (int i = 0; candidates[i]; i++) {
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", candidates[i], rel);
    if (stat(path, &st) == 0) return candidates[i];
  }
  return NULL;
}

const char *const *cli_model_dirs(void) {
  static char env[4096], build[4096], share[4096];
  static const char *dirs[4];
  size_t n = 0;
  const char *e = getenv("HS_MODELS_DIR");
  if (e && *e) {
    snprintf(env, sizeof env, "%s", e);
    dirs[n++] = env;
  }
#ifdef HS_SOURCE_DIR
  snprintf(build, sizeof build, "%s/.deps/models", HS_SOURCE_DIR);
  dirs[n++] = build;
#endif
#ifdef HS_INSTALL_DATADIR
  snprintf(share, sizeof share, "%s/models", HS_INSTALL_DATADIR);
  dirs[n++] = share;
#endif
  (void)build;
  (void)share;
  dirs[n] = NULL;
  return dirs;
}

const char *cli_model_path(const char *arg) {
  static char found[16][4096];
  static int n_found;
  struct stat st;
  size_t len = strlen(arg);
  if (stat(arg, &st) == 0 || strchr(arg, '/') || (len >= 5 && !strcmp(arg + len - 5, ".gguf")))
    return arg;
  if (n_found == 16) return arg;
  for (const char *const *d = cli_model_dirs(); *d; d++) {
    char *path = found[n_found];
    snprintf(path, sizeof found[0], "%s/%s.gguf", *d, arg);
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
      n_found++;
      return path;
    }
  }
  return arg;
}

char *cli_read_file(const char *path, size_t *len) {
  FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
  if (!f) {
    cli_fail("%s: %s", path, strerror(errno));
    return NULL;
  }
  size_t cap = 65536, n = 0, k;
  char *buf = hs_malloc(cap);
  const char *why = buf ? NULL : "out of memory";
  while (buf && (k = fread(buf + n, 1, cap - n - 1, f)) > 0) {
    n += k;
    if (n + 1 < cap) continue;
    char *b = cap >= CLI_MAX_FILE ? NULL : hs_realloc(buf, cap * 2);
    if (!b) {
      why = cap >= CLI_MAX_FILE ? "larger than 64 MiB" : "out of memory";
      hs_free(buf);
      buf = NULL;
    } else {
      buf = b;
      cap *= 2;
    }
  }
  if (buf && ferror(f)) {
    why = "read error";
    hs_free(buf);
    buf = NULL;
  }
  if (f != stdin) fclose(f);
  if (!buf) {
    cli_fail("%s: %s", path, why);
    return NULL;
  }
  buf[n] = 0;
  if (len) *len = n;
  return buf;
}
