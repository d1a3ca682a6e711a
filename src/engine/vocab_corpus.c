/* vocab_corpus.c: reading a training corpus from a file or a directory tree into one buffer.
 *
 * A directory is walked recursively; the regular files found are read in byte-wise sorted order
 * of their paths, so the same tree always gives the same buffer (and so the same vocabulary).
 * Entries whose names start with '.' (version-control directories, editor files) and symbolic
 * links to directories (which could loop) are skipped, and so are binary files: a file is taken
 * as text when its first 64 KiB hold no NUL byte and are well-formed UTF-8 (a character cut by
 * the 64 KiB boundary is allowed). A file of the tree that does not end with a newline gets one,
 * so that the last word of one file is not glued to the first of the next. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/tokenizer_internal.h"
#include "hswarm/alloc.h"
#include "hswarm/error.h"

#define ERR (&hs_tokenizer_err)
#define SNIFF 65536

typedef struct pathlist {
  char **p;
  size_t n, cap;
} pathlist;

static void pathlist_free(pathlist *l) {
  for (size_t i = 0; i < l->n; i++) hs_free(l->p[i]);
  hs_free(l->p);
}

static char *join(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  char *s = hs_malloc(la + lb + 2);
  if (!s) return NULL;
  memcpy(s, a, la);
  s[la] = '/';
  memcpy(s + la + 1, b, lb + 1);
  return s;
}

static int walk(const char *dir, pathlist *out, int depth) {
  if (depth > 64) return hs_set_error(ERR, HS_EINVAL, "corpus: directories nested too deep at %s", dir);
  DIR *d = opendir(dir);
  if (!d) return hs_set_error(ERR, HS_EIO, "corpus: cannot open directory %s: %s", dir, strerror(errno));
  int rc = 0;
  struct dirent *e;
  while (!rc && (e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    char *path = join(dir, e->d_name);
    if (!path) {
      rc = hs_set_error(ERR, HS_ENOMEM, "corpus: out of memory");
      break;
    }
    struct stat st, lst;
    if (lstat(path, &lst) != 0 || stat(path, &st) != 0) {
      hs_free(path); /* vanished or a dangling link: nothing to read */
      continue;
    }
    if (S_ISDIR(st.st_mode)) {
      if (!S_ISLNK(lst.st_mode)) rc = walk(path, out, depth + 1);
      hs_free(path);
    } else if (S_ISREG(st.st_mode)) {
      if (out->n == out->cap) {
        size_t c = out->cap ? out->cap * 2 : 64;
        char **q = hs_realloc(out->p, c * sizeof *q);
        if (!q) {
          hs_free(path);
          rc = hs_set_error(ERR, HS_ENOMEM, "corpus: out of memory");
          break;
        }
        out->p = q;
        out->cap = c;
      }
      out->p[out->n++] = path;
    } else {
      hs_free(path);
    }
  }
  closedir(d);
  return rc;
}

static int cmp_path(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_text(const unsigned char *p, size_t n) {
  size_t m = n < SNIFF ? n : SNIFF;
  if (memchr(p, 0, m)) return false;
  for (size_t i = 0; i < m;) {
    if (p[i] < 0x80) {
      i++;
      continue;
    }
    size_t k = hs_utf8_valid_len(p + i, n - i, NULL);
    if (!k) return i + 4 > m && m < n; /* a character cut by the sniffing window is fine */
    i += k;
  }
  return true;
}

typedef struct growbuf {
  char *p;
  size_t n, cap;
} growbuf;

static int append_file(const char *path, growbuf *b, bool from_dir) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    int e = errno;
    return hs_set_error(ERR, e == ENOENT ? HS_ENOENT : HS_EIO, "corpus: cannot open %s: %s", path,
                        strerror(e));
  }
  size_t start = b->n;
  int rc = 0;
  for (;;) {
    if (b->cap - b->n < 65536 + 2) {
      size_t c = b->cap ? b->cap * 2 : 1 << 20;
      char *q = hs_realloc(b->p, c);
      if (!q) {
        rc = hs_set_error(ERR, HS_ENOMEM, "corpus: out of memory reading %s", path);
        break;
      }
      b->p = q;
      b->cap = c;
    }
    size_t got = fread(b->p + b->n, 1, b->cap - b->n - 2, f);
    b->n += got;
    if (got == 0) {
      if (ferror(f)) rc = hs_set_error(ERR, HS_EIO, "corpus: cannot read %s", path);
      break;
    }
  }
  fclose(f);
  if (rc) {
    b->n = start;
    return rc;
  }
  if (!from_dir) return 0;
  if (!is_text((const unsigned char *)b->p + start, b->n - start)) {
    b->n = start; /* binary: skipped */
    return 0;
  }
  if (b->n > start && b->p[b->n - 1] != '\n') b->p[b->n++] = '\n';
  return 0;
}

int hs_vocab_read_corpus(const char *path, char **buf, size_t *len) {
  if (!path || !buf || !len) return hs_set_error(ERR, HS_EINVAL, "hs_vocab_read_corpus: NULL argument");
  *buf = NULL;
  *len = 0;
  struct stat st;
  if (stat(path, &st) != 0) {
    int e = errno;
    return hs_set_error(ERR, e == ENOENT ? HS_ENOENT : HS_EIO, "corpus: %s: %s", path, strerror(e));
  }
  growbuf b = {0};
  int rc = 0;
  if (S_ISDIR(st.st_mode)) {
    pathlist l = {0};
    rc = walk(path, &l, 0);
    if (!rc) {
      qsort(l.p, l.n, sizeof *l.p, cmp_path);
      for (size_t i = 0; i < l.n && !rc; i++) rc = append_file(l.p[i], &b, true);
    }
    pathlist_free(&l);
  } else {
    rc = append_file(path, &b, false); /* a file named by the caller is taken as it is */
  }
  if (!rc && !b.p) {
    b.p = hs_malloc(1);
    if (!b.p) rc = hs_set_error(ERR, HS_ENOMEM, "corpus: out of memory");
  }
  if (rc) {
    hs_free(b.p);
    return rc;
  }
  b.p[b.n] = 0;
  *buf = b.p;
  *len = b.n;
  return 0;
}
