/* gguf_write.c: the GGUF writer (include/hswarm/gguf.h).
 *
 * Each metadata entry is encoded when it is added, key and all, into its own small buffer, so
 * that writing is concatenation; the entry's key is kept beside it to refuse duplicates and to
 * find general.alignment. Tensors are kept as (name, shape, type, borrowed data pointer) and laid
 * out at write time: the header, the entries, the tensor infos, padding to the alignment, then
 * each tensor's data at the next multiple of the alignment, the last one padded too (as
 * llama.cpp writes). Padding is zero bytes. The file is version 3. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/last_error.h"
#include "hswarm/alloc.h"
#include "hswarm/error.h"
#include "hswarm/gguf.h"

static _Thread_local hs_errbuf err;

const char *hs_gguf_writer_last_error(void) { return err.msg; }

typedef struct wkv {
  char *key;
  uint8_t *enc; /* the whole entry as written: key, type, value */
  size_t len;
} wkv;

typedef struct wtensor {
  char *name;
  uint32_t n_dims, type;
  uint64_t ne[HS_GGUF_MAX_DIMS];
  const void *data;
  size_t size;
} wtensor;

struct hs_gguf_writer {
  wkv *kvs;
  size_t n_kv, cap_kv;
  wtensor *tensors;
  size_t n_t, cap_t;
  uint32_t alignment;
};

/* ---- a growing byte buffer ---- */

typedef struct buf {
  uint8_t *p;
  size_t len, cap;
  int oom;
} buf;

static void put(buf *b, const void *data, size_t n) {
  if (b->oom) return;
  if (n > b->cap - b->len) {
    size_t cap = b->cap ? b->cap : 64;
    while (cap - b->len < n) {
      if (cap > SIZE_MAX / 2) {
        b->oom = 1;
        return;
      }
      cap *= 2;
    }
    uint8_t *p = hs_realloc(b->p, cap);
    if (!p) {
      b->oom = 1;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  if (n) memcpy(b->p + b->len, data, n);
  b->len += n;
}

static void put_le(buf *b, uint64_t v, unsigned n) {
  uint8_t t[8];
  for (unsigned i = 0; i < n; i++) t[i] = (uint8_t)(v >> (8 * i));
  put(b, t, n);
}

static void put_str(buf *b, const char *s, size_t n) {
  put_le(b, n, 8);
  put(b, s, n);
}

/* ---- life cycle ---- */

int hs_gguf_writer_create(hs_gguf_writer **out) {
  if (!out) return hs_set_error(&err, HS_EINVAL, "gguf writer: create with a NULL pointer");
  *out = hs_calloc(1, sizeof **out);
  if (!*out) return hs_set_error(&err, HS_ENOMEM, "gguf writer: out of memory");
  (*out)->alignment = HS_GGUF_DEFAULT_ALIGNMENT;
  return 0;
}

void hs_gguf_writer_destroy(hs_gguf_writer *w) {
  if (!w) return;
  for (size_t i = 0; i < w->n_kv; i++) {
    hs_free(w->kvs[i].key);
    hs_free(w->kvs[i].enc);
  }
  for (size_t i = 0; i < w->n_t; i++) hs_free(w->tensors[i].name);
  hs_free(w->kvs);
  hs_free(w->tensors);
  hs_free(w);
}

/* ---- metadata ---- */

static wkv *find_kv(const hs_gguf_writer *w, const char *key) {
  for (size_t i = 0; i < w->n_kv; i++)
    if (strcmp(w->kvs[i].key, key) == 0) return &w->kvs[i];
  return NULL;
}

static int is_pow2(uint64_t a) { return a && !(a & (a - 1)); }

/* Starts an entry: checks the key and encodes it and the type into b. */
static int begin(hs_gguf_writer *w, const char *key, uint32_t type, buf *b) {
  memset(b, 0, sizeof *b);
  if (!w || !key) return hs_set_error(&err, HS_EINVAL, "gguf writer: NULL writer or key");
  if (find_kv(w, key))
    return hs_set_error(&err, HS_EINVAL, "gguf writer: duplicate key '%s'", key);
  if (type != HS_GGUF_UINT32 && strcmp(key, HS_GGUF_ALIGNMENT_KEY) == 0)
    return hs_set_error(&err, HS_EINVAL, "gguf writer: %s must be a uint32",
                        HS_GGUF_ALIGNMENT_KEY);
  put_str(b, key, strlen(key));
  put_le(b, type, 4);
  return 0;
}

/* Finishes an entry: takes b's bytes into the writer. */
static int commit(hs_gguf_writer *w, const char *key, buf *b) {
  char *k = NULL;
  if (!b->oom && w->n_kv == w->cap_kv) {
    size_t cap = w->cap_kv ? 2 * w->cap_kv : 16;
    wkv *kvs = hs_realloc(w->kvs, cap * sizeof *kvs);
    if (kvs) {
      w->kvs = kvs;
      w->cap_kv = cap;
    } else {
      b->oom = 1;
    }
  }
  if (!b->oom) k = hs_strdup(key);
  if (!k) {
    hs_free(b->p);
    return hs_set_error(&err, HS_ENOMEM, "gguf writer: out of memory adding '%s'", key);
  }
  w->kvs[w->n_kv++] = (wkv){k, b->p, b->len};
  return 0;
}

static int add_scalar(hs_gguf_writer *w, const char *key, uint32_t type, uint64_t raw,
                      unsigned n) {
  int is_align = key && type == HS_GGUF_UINT32 && strcmp(key, HS_GGUF_ALIGNMENT_KEY) == 0;
  if (is_align && !is_pow2(raw))
    return hs_set_error(&err, HS_EINVAL, "gguf writer: alignment %" PRIu64
                        " is not a power of two", raw);
  buf b;
  int rc = begin(w, key, type, &b);
  if (rc) return rc;
  put_le(&b, raw, n);
  rc = commit(w, key, &b);
  if (!rc && is_align) w->alignment = (uint32_t)raw;
  return rc;
}

int hs_gguf_writer_add_u8(hs_gguf_writer *w, const char *key, uint8_t v) {
  return add_scalar(w, key, HS_GGUF_UINT8, v, 1);
}
int hs_gguf_writer_add_i8(hs_gguf_writer *w, const char *key, int8_t v) {
  return add_scalar(w, key, HS_GGUF_INT8, (uint8_t)v, 1);
}
int hs_gguf_writer_add_u16(hs_gguf_writer *w, const char *key, uint16_t v) {
  return add_scalar(w, key, HS_GGUF_UINT16, v, 2);
}
int hs_gguf_writer_add_i16(hs_gguf_writer *w, const char *key, int16_t v) {
  return add_scalar(w, key, HS_GGUF_INT16, (uint16_t)v, 2);
}
int hs_gguf_writer_add_u32(hs_gguf_writer *w, const char *key, uint32_t v) {
  return add_scalar(w, key, HS_GGUF_UINT32, v, 4);
}
int hs_gguf_writer_add_i32(hs_gguf_writer *w, const char *key, int32_t v) {
  return add_scalar(w, key, HS_GGUF_INT32, (uint32_t)v, 4);
}
int hs_gguf_writer_add_u64(hs_gguf_writer *w, const char *key, uint64_t v) {
  return add_scalar(w, key, HS_GGUF_UINT64, v, 8);
}
int hs_gguf_writer_add_i64(hs_gguf_writer *w, const char *key, int64_t v) {
  return add_scalar(w, key, HS_GGUF_INT64, (uint64_t)v, 8);
}
int hs_gguf_writer_add_f32(hs_gguf_writer *w, const char *key, float v) {
  uint32_t u;
  memcpy(&u, &v, 4);
  return add_scalar(w, key, HS_GGUF_FLOAT32, u, 4);
}
int hs_gguf_writer_add_f64(hs_gguf_writer *w, const char *key, double v) {
  uint64_t u;
  memcpy(&u, &v, 8);
  return add_scalar(w, key, HS_GGUF_FLOAT64, u, 8);
}
int hs_gguf_writer_add_bool(hs_gguf_writer *w, const char *key, bool v) {
  return add_scalar(w, key, HS_GGUF_BOOL, v ? 1 : 0, 1);
}

int hs_gguf_writer_add_str(hs_gguf_writer *w, const char *key, const char *s, size_t len) {
  if (!s && len) return hs_set_error(&err, HS_EINVAL, "gguf writer: NULL string for '%s'",
                                     key ? key : "(null)");
  buf b;
  int rc = begin(w, key, HS_GGUF_STRING, &b);
  if (rc) return rc;
  put_str(&b, s, len);
  return commit(w, key, &b);
}

int hs_gguf_writer_add_arr(hs_gguf_writer *w, const char *key, hs_gguf_value_type elem_type,
                           const void *elems, uint64_t count) {
  static const uint8_t size[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
  if ((unsigned)elem_type > HS_GGUF_FLOAT64 || !size[elem_type])
    return hs_set_error(&err, HS_EINVAL, "gguf writer: '%s': element type %d is not a number "
                        "or bool (use add_arr_str for strings)", key ? key : "(null)",
                        (int)elem_type);
  if (!elems && count)
    return hs_set_error(&err, HS_EINVAL, "gguf writer: NULL elements for '%s'",
                        key ? key : "(null)");
  buf b;
  int rc = begin(w, key, HS_GGUF_ARRAY, &b);
  if (rc) return rc;
  put_le(&b, (uint32_t)elem_type, 4);
  put_le(&b, count, 8);
  unsigned n = size[elem_type];
  for (uint64_t i = 0; i < count && !b.oom; i++) {
    uint64_t raw;
    if (elem_type == HS_GGUF_BOOL) {
      raw = ((const bool *)elems)[i] ? 1 : 0;
    } else {
      const uint8_t *e = (const uint8_t *)elems + i * n; /* native order, maybe unaligned */
      uint8_t v8;
      uint16_t v16;
      uint32_t v32;
      uint64_t v64;
      switch (n) {
      case 1: memcpy(&v8, e, 1); raw = v8; break;
      case 2: memcpy(&v16, e, 2); raw = v16; break;
      case 4: memcpy(&v32, e, 4); raw = v32; break;
      default: memcpy(&v64, e, 8); raw = v64; break;
      }
    }
    put_le(&b, raw, n);
  }
  return commit(w, key, &b);
}

int hs_gguf_writer_add_arr_str(hs_gguf_writer *w, const char *key, const char *const *strs,
                               const size_t *lens, uint64_t count) {
  if (!strs && count)
    return hs_set_error(&err, HS_EINVAL, "gguf writer: NULL strings for '%s'",
                        key ? key : "(null)");
  for (uint64_t i = 0; i < count; i++)
    if (!strs[i] && (!lens || lens[i]))
      return hs_set_error(&err, HS_EINVAL, "gguf writer: '%s': string %" PRIu64 " is NULL",
                          key ? key : "(null)", i);
  buf b;
  int rc = begin(w, key, HS_GGUF_ARRAY, &b);
  if (rc) return rc;
  put_le(&b, HS_GGUF_STRING, 4);
  put_le(&b, count, 8);
  for (uint64_t i = 0; i < count && !b.oom; i++)
    put_str(&b, strs[i], lens ? lens[i] : strlen(strs[i]));
  return commit(w, key, &b);
}

int hs_gguf_writer_set_alignment(hs_gguf_writer *w, uint32_t alignment) {
  if (!w) return hs_set_error(&err, HS_EINVAL, "gguf writer: NULL writer");
  if (!is_pow2(alignment))
    return hs_set_error(&err, HS_EINVAL, "gguf writer: alignment %" PRIu32
                        " is not a power of two", alignment);
  wkv *k = find_kv(w, HS_GGUF_ALIGNMENT_KEY);
  if (!k) return hs_gguf_writer_add_u32(w, HS_GGUF_ALIGNMENT_KEY, alignment);
  size_t vt_off = 8 + strlen(HS_GGUF_ALIGNMENT_KEY);
  if (k->len != vt_off + 8 || k->enc[vt_off] != HS_GGUF_UINT32)
    return hs_set_error(&err, HS_EINVAL, "gguf writer: %s was added with another type",
                        HS_GGUF_ALIGNMENT_KEY);
  for (unsigned i = 0; i < 4; i++) k->enc[vt_off + 4 + i] = (uint8_t)(alignment >> (8 * i));
  w->alignment = alignment;
  return 0;
}

/* ---- tensors ---- */

int hs_gguf_writer_add_tensor(hs_gguf_writer *w, const char *name, uint32_t n_dims,
                              const uint64_t *ne, uint32_t type, const void *data, size_t size) {
  if (!w || !name || !ne || (!data && size))
    return hs_set_error(&err, HS_EINVAL, "gguf writer: add_tensor with a NULL argument");
  if (n_dims < 1 || n_dims > HS_GGUF_MAX_DIMS)
    return hs_set_error(&err, HS_EINVAL, "gguf writer: tensor '%s': n_dims %" PRIu32
                        " is not in 1..%d", name, n_dims, HS_GGUF_MAX_DIMS);
  uint32_t be = hs_gguf_type_block_elems(type), bb = hs_gguf_type_block_bytes(type);
  if (!be)
    return hs_set_error(&err, HS_EINVAL, "gguf writer: tensor '%s': unsupported type %" PRIu32
                        " (%s)", name, type, hs_gguf_type_name(type));
  if (ne[0] % be)
    return hs_set_error(&err, HS_EINVAL, "gguf writer: tensor '%s': ne[0] = %" PRIu64
                        " is not a multiple of the block size %" PRIu32, name, ne[0], be);
  uint64_t n_el = 1;
  for (uint32_t d = 0; d < n_dims; d++) {
    if (ne[d] > (uint64_t)INT64_MAX || (ne[d] && n_el > (uint64_t)INT64_MAX / ne[d]))
      return hs_set_error(&err, HS_EINVAL, "gguf writer: tensor '%s': shape too large", name);
    n_el *= ne[d];
  }
  if (n_el / be > UINT64_MAX / bb || (n_el / be) * bb != (uint64_t)size)
    return hs_set_error(&err, HS_EINVAL, "gguf writer: tensor '%s': %zu data bytes, but a %s "
                        "tensor of %" PRIu64 " elements takes %" PRIu64, name, size,
                        hs_gguf_type_name(type), n_el, (n_el / be) * bb);
  for (size_t i = 0; i < w->n_t; i++)
    if (strcmp(w->tensors[i].name, name) == 0)
      return hs_set_error(&err, HS_EINVAL, "gguf writer: duplicate tensor name '%s'", name);
  if (w->n_t == w->cap_t) {
    size_t cap = w->cap_t ? 2 * w->cap_t : 16;
    wtensor *t = hs_realloc(w->tensors, cap * sizeof *t);
    if (!t) return hs_set_error(&err, HS_ENOMEM, "gguf writer: out of memory adding '%s'", name);
    w->tensors = t;
    w->cap_t = cap;
  }
  char *n = hs_strdup(name);
  if (!n) return hs_set_error(&err, HS_ENOMEM, "gguf writer: out of memory adding '%s'", name);
  wtensor *t = &w->tensors[w->n_t++];
  memset(t, 0, sizeof *t);
  t->name = n;
  t->n_dims = n_dims;
  t->type = type;
  for (uint32_t d = 0; d < HS_GGUF_MAX_DIMS; d++) t->ne[d] = d < n_dims ? ne[d] : 1;
  t->data = data;
  t->size = size;
  return 0;
}

/* ---- writing ---- */

static size_t pad_to(size_t off, uint32_t a) { return (a - off % a) % a; }

/* Encodes everything before the data section, padding included, into b; *total gets the file
 * size. */
static int encode_header(const hs_gguf_writer *w, buf *b, size_t *total) {
  memset(b, 0, sizeof *b);
  put(b, HS_GGUF_MAGIC, 4);
  put_le(b, HS_GGUF_VERSION, 4);
  put_le(b, w->n_t, 8);
  put_le(b, w->n_kv, 8);
  for (size_t i = 0; i < w->n_kv; i++) put(b, w->kvs[i].enc, w->kvs[i].len);
  size_t off = 0;
  for (size_t i = 0; i < w->n_t; i++) {
    const wtensor *t = &w->tensors[i];
    put_str(b, t->name, strlen(t->name));
    put_le(b, t->n_dims, 4);
    for (uint32_t d = 0; d < t->n_dims; d++) put_le(b, t->ne[d], 8);
    put_le(b, t->type, 4);
    put_le(b, off, 8);
    size_t step = t->size + pad_to(t->size, w->alignment);
    if (step < t->size || off > SIZE_MAX - step) b->oom = 1;
    off += step;
  }
  static const uint8_t zeros[256];
  size_t pad = b->oom ? 0 : pad_to(b->len, w->alignment);
  while (pad && !b->oom) {
    size_t n = pad < sizeof zeros ? pad : sizeof zeros;
    put(b, zeros, n);
    pad -= n;
  }
  if (b->oom || b->len > SIZE_MAX - off) {
    hs_free(b->p);
    b->p = NULL;
    return hs_set_error(&err, HS_ENOMEM, "gguf writer: out of memory encoding the header");
  }
  *total = b->len + off;
  return 0;
}

int hs_gguf_writer_write_mem(const hs_gguf_writer *w, void **out, size_t *size) {
  if (!w || !out || !size)
    return hs_set_error(&err, HS_EINVAL, "gguf writer: write_mem with a NULL argument");
  *out = NULL;
  *size = 0;
  buf b;
  size_t total;
  int rc = encode_header(w, &b, &total);
  if (rc) return rc;
  uint8_t *p = hs_malloc(total);
  if (!p) {
    hs_free(b.p);
    return hs_set_error(&err, HS_ENOMEM, "gguf writer: out of memory for %zu bytes", total);
  }
  memcpy(p, b.p, b.len);
  size_t off = b.len;
  hs_free(b.p);
  for (size_t i = 0; i < w->n_t; i++) {
    const wtensor *t = &w->tensors[i];
    if (t->size) memcpy(p + off, t->data, t->size);
    size_t pad = pad_to(t->size, w->alignment);
    memset(p + off + t->size, 0, pad);
    off += t->size + pad;
  }
  *out = p;
  *size = total;
  return 0;
}

static int write_all(int fd, const void *data, size_t n) {
  const uint8_t *p = data;
  while (n) {
    ssize_t k = write(fd, p, n);
    if (k < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += k;
    n -= (size_t)k;
  }
  return 0;
}

int hs_gguf_writer_write_file(const hs_gguf_writer *w, const char *path) {
  if (!w || !path)
    return hs_set_error(&err, HS_EINVAL, "gguf writer: write_file with a NULL argument");
  buf b;
  size_t total;
  int rc = encode_header(w, &b, &total);
  if (rc) return rc;
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    int e = errno;
    hs_free(b.p);
    return hs_set_error(&err, HS_EIO, "%s: cannot create: %s", path, strerror(e));
  }
  static const uint8_t zeros[256];
  int bad = write_all(fd, b.p, b.len);
  hs_free(b.p);
  for (size_t i = 0; i < w->n_t && !bad; i++) {
    const wtensor *t = &w->tensors[i];
    bad = write_all(fd, t->data, t->size);
    for (size_t pad = pad_to(t->size, w->alignment); pad && !bad;) {
      size_t n = pad < sizeof zeros ? pad : sizeof zeros;
      bad = write_all(fd, zeros, n);
      pad -= n;
    }
  }
  int e = errno;
  if (close(fd) != 0 && !bad) {
    bad = 1;
    e = errno;
  }
  if (bad) return hs_set_error(&err, HS_EIO, "%s: write failed: %s", path, strerror(e));
  return 0;
}
