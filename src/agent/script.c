/* script.c: the script cache. A script file is read once per run, whatever the number of agents
 * spawned from it; paths are resolved against the spawning script's directory (the first script's
 * against the working directory) and made absolute, so the event log names them exactly. Source
 * text given to ctx.spawn is cached by content. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/rt.h"
#include "hswarm/alloc.h"
#include "hswarm/error.h"

#define MAX_SCRIPT_BYTES (64u << 20)

static void script_free(script *s) {
  hs_free(s->path);
  hs_free(s->dir);
  hs_free(s->source);
  hs_free(s->name);
  hs_free(s);
}

void scripts_free(hs_runtime *rt) {
  while (rt->scripts) {
    script *next = rt->scripts->next;
    script_free(rt->scripts);
    rt->scripts = next;
  }
}

static int read_file(hs_runtime *rt, const char *path, const char *shown, char **out,
                     size_t *out_len) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return rt_error(rt, errno == ENOENT ? HS_ENOENT : HS_EIO, "cannot read script %s: %s", shown,
                    strerror(errno));
  char *buf = NULL;
  size_t len = 0, cap = 0;
  for (;;) {
    if (len == cap) {
      cap = cap ? cap * 2 : 4096;
      if (cap > MAX_SCRIPT_BYTES + 1) {
        fclose(f);
        hs_free(buf);
        return rt_error(rt, HS_EINVAL, "script %s is larger than %u bytes", shown,
                        MAX_SCRIPT_BYTES);
      }
      char *nb = hs_realloc(buf, cap + 1);
      if (!nb) {
        fclose(f);
        hs_free(buf);
        return rt_error(rt, HS_ENOMEM, "out of memory reading script %s", shown);
      }
      buf = nb;
    }
    size_t n = fread(buf + len, 1, cap - len, f);
    len += n;
    if (n == 0) break;
  }
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    hs_free(buf);
    return rt_error(rt, HS_EIO, "cannot read script %s: read error", shown);
  }
  buf[len] = 0;
  *out = buf;
  *out_len = len;
  return 0;
}

static const char *base_name(const char *path) {
  const char *slash = strrchr(path, '/');
  return slash ? slash + 1 : path;
}

int script_load(hs_runtime *rt, const char *target, const script *from, const script **out) {
  char joined[PATH_MAX];
  if (target[0] == '/' || !from || !from->dir)
    snprintf(joined, sizeof joined, "%s", target);
  else
    snprintf(joined, sizeof joined, "%s/%s", from->dir, target);
  char resolved[PATH_MAX];
  if (!realpath(joined, resolved))
    return rt_error(rt, errno == ENOENT ? HS_ENOENT : HS_EIO, "cannot read script %s: %s",
                    joined, strerror(errno));
  for (script *s = rt->scripts; s; s = s->next) {
    if (!strcmp(s->path, resolved)) {
      *out = s;
      return 0;
    }
  }
  script *s = hs_calloc(1, sizeof *s);
  if (!s) return rt_error(rt, HS_ENOMEM, "out of memory loading %s", joined);
  int rc = read_file(rt, resolved, joined, &s->source, &s->len);
  if (rc) {
    hs_free(s);
    return rc;
  }
  s->path = hs_strdup(resolved);
  s->dir = hs_strdup(resolved);
  s->name = hs_strdup(base_name(resolved));
  if (!s->path || !s->dir || !s->name) {
    script_free(s);
    return rt_error(rt, HS_ENOMEM, "out of memory loading %s", joined);
  }
  char *slash = strrchr(s->dir, '/');
  if (slash) *(slash == s->dir ? slash + 1 : slash) = 0;
  s->hash = hs_fnv1a64(s->source, s->len);
  s->next = rt->scripts;
  rt->scripts = s;
  *out = s;
  return 0;
}

int script_from_source(hs_runtime *rt, const char *src, size_t len, const script **out) {
  uint64_t hash = hs_fnv1a64(src, len);
  for (script *s = rt->scripts; s; s = s->next) {
    if (s->hash == hash && s->len == len && s->path[0] == '=' && !memcmp(s->source, src, len)) {
      *out = s;
      return 0;
    }
  }
  script *s = hs_calloc(1, sizeof *s);
  char key[64];
  /* the serial keeps keys unique even if two different sources share a hash */
  snprintf(key, sizeof key, "=source:%016llx:%u", (unsigned long long)hash, ++rt->nsources);
  if (!s || !(s->source = hs_malloc(len + 1)) || !(s->path = hs_strdup(key)) ||
      !(s->name = hs_strdup(key + 1))) {
    if (s) script_free(s);
    return rt_error(rt, HS_ENOMEM, "out of memory storing script source");
  }
  memcpy(s->source, src, len);
  s->source[len] = 0;
  s->len = len;
  s->hash = hash;
  s->dir = rt->main_script && rt->main_script->dir ? hs_strdup(rt->main_script->dir) : NULL;
  s->next = rt->scripts;
  rt->scripts = s;
  *out = s;
  return 0;
}
