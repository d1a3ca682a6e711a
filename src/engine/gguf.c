/* gguf.c: the GGUF reader (include/hswarm/gguf.h).
 *
 * The header gives the file layout. The idea here is to trust nothing and to allocate once.
 *
 * A file is mapped read-only (or a caller's buffer is used in place) and its header, the
 * metadata and the tensor infos, is parsed twice by the same code (parse_header). The first pass
 * allocates nothing: it checks every field and counts what the index will need (the bytes of all
 * keys, string values and names plus their terminators, and the number of string-array
 * elements). Then one block is allocated that holds the whole index: the key/value records, the
 * tensor records, the string references, two hash tables and a pool of NUL-terminated copies of
 * every string (the mapping is read-only, so strings cannot be terminated in place). The second
 * pass fills it. Since the first pass has already accepted every byte the second one reads, the
 * second cannot fail; a truncated or hostile header therefore never allocates at all.
 *
 * What is checked, all with overflow-safe arithmetic on u64:
 *   - every length and count against the bytes left before it is used: a string of n bytes needs
 *     n bytes, an array of n numbers n * size, an array of n strings at least 8n (their lengths),
 *     m key/values at least 13m, t tensor infos at least 32t. So the index is O(header size);
 *   - value types 0..12, element types 0..12 except ARRAY (nested arrays), BOOL bytes 0 or 1,
 *     no NUL bytes in keys and tensor names (lookups take C strings), unique keys and names;
 *   - general.alignment a UINT32 power of two;
 *   - per tensor: n_dims 1..4, each ne at most INT64_MAX and their product too (as ggml uses
 *     int64_t), a supported type, ne[0] a multiple of its block, an aligned offset, and
 *     offset + size inside the data section;
 *   - no two tensors of non-zero size overlap: their extents are compared in offset order
 *     (files are normally written in that order, so the sort, which allocates, is rarely needed).
 *
 * Lookups by key or tensor name go through open-addressing hash tables (FNV-1a, linear probing,
 * capacity a power of two at least twice the count) built after the second pass; building them
 * is also how duplicates are found. A table slot holds index + 1, 0 meaning empty. */
#include "hswarm/gguf.h"
#include "hswarm/quant.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/last_error.h"
#include "hswarm/alloc.h"
#include "hswarm/error.h"

static _Thread_local hs_errbuf err;

const char *hs_gguf_last_error(void) { return err.msg; }

#define MIN_KV_BYTES 13u     /* key length u64, type u32, smallest value 1 byte */
#define MIN_TENSOR_BYTES 32u /* name length u64, n_dims u32, one ne u64, type u32, offset u64 */
#define SHOW 80              /* at most this many bytes of a key or name in a message */

/* ======================================================================================== */
/* Type tables                                                                              */
/* ======================================================================================== */

static const char *const ggml_names[] = {
    "f32",    "f16",     "q4_0",    "q4_1",  "q4_2", "q4_3",  "q5_0",  "q5_1",   "q8_0",
    "q8_1",   "q2_K",    "q3_K",    "q4_K",  "q5_K", "q6_K",  "q8_K",  "iq2_xxs", "iq2_xs",
    "iq3_xxs", "iq1_s",  "iq4_nl",  "iq3_s", "iq2_s", "iq4_xs", "i8",   "i16",    "i32",
    "i64",    "f64",     "iq1_m",   "bf16",  "q4_0_4_4", "q4_0_4_8", "q4_0_8_8", "tq1_0",
    "tq2_0"};

const char *hs_gguf_type_name(uint32_t type) {
  return type < sizeof ggml_names / sizeof ggml_names[0] ? ggml_names[type] : "unknown";
}

/* The block table lives with the codecs (quant.c): one table for the whole engine. */
uint32_t hs_gguf_type_block_elems(uint32_t type) {
  return type > INT32_MAX ? 0 : (uint32_t)hs_quant_block_elems((int)type);
}

uint32_t hs_gguf_type_block_bytes(uint32_t type) {
  return type > INT32_MAX ? 0 : (uint32_t)hs_quant_block_bytes((int)type);
}

static const char *const value_names[] = {"uint8",   "int8",  "uint16", "int16", "uint32",
                                          "int32",   "float32", "bool", "string", "array",
                                          "uint64",  "int64", "float64"};

/* Bytes of one scalar of each value type; 0 for STRING and ARRAY. */
static const uint8_t value_size[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

#define N_VALUE_TYPES 13u

const char *hs_gguf_value_type_name(uint32_t type) {
  return type < N_VALUE_TYPES ? value_names[type] : "unknown";
}

static int is_int_type(uint32_t t) {
  return t <= HS_GGUF_INT32 || t == HS_GGUF_UINT64 || t == HS_GGUF_INT64;
}

static int is_signed_type(uint32_t t) {
  return t == HS_GGUF_INT8 || t == HS_GGUF_INT16 || t == HS_GGUF_INT32 || t == HS_GGUF_INT64;
}

/* ======================================================================================== */
/* The object                                                                               */
/* ======================================================================================== */

typedef struct sref {
  const char *s; /* NUL-terminated copy in the pool */
  size_t len;
} sref;

typedef struct kv {
  sref key;
  uint32_t type;
  uint32_t arr_type;   /* ARRAY: element type */
  uint64_t raw;        /* scalar number or bool: its little-endian bits, zero-extended */
  uint64_t count;      /* ARRAY: element count */
  const uint8_t *data; /* ARRAY of numbers or bools: the elements in the file */
  sref str;            /* STRING */
  sref *strs;          /* ARRAY of STRING: count references */
} kv;

struct hs_gguf {
  const uint8_t *base;
  uint64_t size;
  int mapped;
  uint32_t version, alignment;
  uint64_t data_offset;
  size_t n_kv, n_tensors;
  kv *kvs;
  hs_gguf_tensor *tensors;
  size_t *kv_hash, *tensor_hash; /* index + 1, 0 empty */
  size_t kv_cap, tensor_cap;     /* powers of two, or 0 when the count is 0 */
  const char *name;
  void *block; /* the one allocation holding everything above */
};

/* ---- little-endian scalars ---- */

static inline uint32_t le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t le64(const uint8_t *p) {
  return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static uint64_t le_n(const uint8_t *p, unsigned n) {
  uint64_t v = 0;
  for (unsigned i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
  return v;
}

static uint64_t fnv1a(const char *s, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; i++) {
    h ^= (unsigned char)s[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

/* ======================================================================================== */
/* Parsing                                                                                  */
/* ======================================================================================== */

typedef struct parser {
  const uint8_t *p;
  uint64_t size, off;
  uint64_t need; /* after a failed read: the bytes that read needed */
  const char *name;
  hs_gguf *g;    /* NULL in the counting pass */
  char *pool;    /* fill pass: where the string copies go */
  sref *strs;    /* fill pass: string-array references */
  size_t pool_used, n_strs;
  uint32_t alignment;
} parser;

static uint64_t left(const parser *ps) { return ps->size - ps->off; }

/* ETRUNC for the read that just failed (ps->need bytes at ps->off); what says what it was. */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static int trunc_err(const parser *ps, const char *fmt, ...) {
  char what[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  return hs_set_error(&err, HS_ETRUNC,
                      "%s: truncated reading %s at offset %" PRIu64 " (needs %" PRIu64
                      " bytes, %" PRIu64 " left)",
                      ps->name, what, ps->off, ps->need, left(ps));
}

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static int corrupt(const parser *ps, uint64_t off, const char *fmt, ...) {
  char what[384];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  return hs_set_error(&err, HS_ECORRUPT, "%s: offset %" PRIu64 ": %s", ps->name, off, what);
}

static int rd_u32(parser *ps, uint32_t *v) {
  if (left(ps) < 4) return ps->need = 4, HS_ETRUNC;
  *v = le32(ps->p + ps->off);
  ps->off += 4;
  return 0;
}

static int rd_u64(parser *ps, uint64_t *v) {
  if (left(ps) < 8) return ps->need = 8, HS_ETRUNC;
  *v = le64(ps->p + ps->off);
  ps->off += 8;
  return 0;
}

/* A string: length u64 and bytes. *s points into the file. */
static int rd_str(parser *ps, const uint8_t **s, uint64_t *len) {
  uint64_t n;
  if (rd_u64(ps, &n)) return HS_ETRUNC;
  if (n > left(ps)) {
    ps->off -= 8; /* report the offset of the length */
    ps->need = n <= UINT64_MAX - 8 ? n + 8 : UINT64_MAX;
    return HS_ETRUNC;
  }
  *s = ps->p + ps->off;
  *len = n;
  ps->off += n;
  return 0;
}

/* Copies a string into the pool (fill pass) or counts its bytes (counting pass). */
static sref keep(parser *ps, const uint8_t *s, uint64_t len) {
  sref r = {NULL, (size_t)len};
  if (ps->g) {
    char *d = ps->pool + ps->pool_used;
    if (len) memcpy(d, s, (size_t)len);
    d[len] = 0;
    r.s = d;
  }
  ps->pool_used += (size_t)len + 1;
  return r;
}

/* Shows at most SHOW bytes of a key or name. */
#define SHOWN(len) ((int)((len) > SHOW ? SHOW : (len)))

/* Parses the value of metadata entry i (key kk) of type `type`, at ps->off, into *k. */
static int parse_value(parser *ps, kv *k, uint64_t i, const uint8_t *kk, uint64_t klen) {
  uint64_t start = ps->off;
  uint32_t type = k->type;
  if (type >= N_VALUE_TYPES)
    return corrupt(ps, start - 4, "metadata %" PRIu64 " ('%.*s'): unknown value type %" PRIu32, i,
                   SHOWN(klen), (const char *)kk, type);
  if (type == HS_GGUF_STRING) {
    const uint8_t *s;
    uint64_t n;
    if (rd_str(ps, &s, &n))
      return trunc_err(ps, "string value of metadata %" PRIu64 " ('%.*s')", i, SHOWN(klen),
                       (const char *)kk);
    k->str = keep(ps, s, n);
    return 0;
  }
  if (type != HS_GGUF_ARRAY) {
    unsigned sz = value_size[type];
    if (left(ps) < sz) {
      ps->need = sz;
      return trunc_err(ps, "%s value of metadata %" PRIu64 " ('%.*s')", value_names[type], i,
                       SHOWN(klen), (const char *)kk);
    }
    k->raw = le_n(ps->p + ps->off, sz);
    if (type == HS_GGUF_BOOL && k->raw > 1)
      return corrupt(ps, ps->off, "metadata %" PRIu64 " ('%.*s'): bool value %" PRIu64
                     " is not 0 or 1", i, SHOWN(klen), (const char *)kk, k->raw);
    ps->off += sz;
    return 0;
  }
  uint32_t et;
  uint64_t count;
  if (rd_u32(ps, &et))
    return trunc_err(ps, "array element type of metadata %" PRIu64 " ('%.*s')", i, SHOWN(klen),
                     (const char *)kk);
  if (et >= N_VALUE_TYPES)
    return corrupt(ps, ps->off - 4, "metadata %" PRIu64 " ('%.*s'): unknown array element type %"
                   PRIu32, i, SHOWN(klen), (const char *)kk, et);
  if (et == HS_GGUF_ARRAY)
    return corrupt(ps, ps->off - 4, "metadata %" PRIu64 " ('%.*s'): nested arrays are not "
                   "supported", i, SHOWN(klen), (const char *)kk);
  if (rd_u64(ps, &count))
    return trunc_err(ps, "array length of metadata %" PRIu64 " ('%.*s')", i, SHOWN(klen),
                     (const char *)kk);
  k->arr_type = et;
  k->count = count;
  if (et == HS_GGUF_STRING) {
    if (count > left(ps) / 8)
      return corrupt(ps, ps->off - 8, "metadata %" PRIu64 " ('%.*s'): array of %" PRIu64
                     " strings cannot fit in the %" PRIu64 " bytes left", i, SHOWN(klen),
                     (const char *)kk, count, left(ps));
    if (ps->g) k->strs = ps->strs + ps->n_strs;
    ps->n_strs += (size_t)count;
    for (uint64_t j = 0; j < count; j++) {
      const uint8_t *s;
      uint64_t n;
      if (rd_str(ps, &s, &n))
        return trunc_err(ps, "string %" PRIu64 " of array metadata %" PRIu64 " ('%.*s')", j, i,
                         SHOWN(klen), (const char *)kk);
      sref r = keep(ps, s, n);
      if (ps->g) k->strs[j] = r;
    }
    return 0;
  }
  unsigned sz = value_size[et];
  if (count > left(ps) / sz)
    return corrupt(ps, ps->off - 8, "metadata %" PRIu64 " ('%.*s'): array of %" PRIu64
                   " %s values cannot fit in the %" PRIu64 " bytes left", i, SHOWN(klen),
                   (const char *)kk, count, value_names[et], left(ps));
  k->data = ps->p + ps->off;
  if (et == HS_GGUF_BOOL) {
    for (uint64_t j = 0; j < count; j++)
      if (k->data[j] > 1)
        return corrupt(ps, ps->off + j, "metadata %" PRIu64 " ('%.*s'): bool element %" PRIu64
                       " is %u, not 0 or 1", i, SHOWN(klen), (const char *)kk, j, k->data[j]);
  }
  ps->off += count * sz;
  return 0;
}

/* Parses everything from the version to the end of the tensor infos. Counting pass when ps->g
 * is NULL; fill pass otherwise, into ps->g's records. */
static int parse_header(parser *ps, uint64_t *n_kv_out, uint64_t *n_t_out) {
  uint32_t version;
  uint64_t n_t, n_kv;
  ps->off = 4; /* after the magic, checked by the caller */
  if (rd_u32(ps, &version)) return trunc_err(ps, "version");
  if (version != 2 && version != 3)
    return hs_set_error(&err, HS_EVERSION,
                        "%s: unsupported GGUF version %" PRIu32 " (supported: 2 and 3)%s",
                        ps->name, version,
                        version == 1 ? "; version 1 files must be converted" : "");
  if (rd_u64(ps, &n_t)) return trunc_err(ps, "tensor count");
  if (rd_u64(ps, &n_kv)) return trunc_err(ps, "metadata count");
  if (n_kv > left(ps) / MIN_KV_BYTES)
    return corrupt(ps, 16, "metadata count %" PRIu64 " is impossible: %" PRIu64
                   " entries cannot fit in the %" PRIu64 " bytes left", n_kv, n_kv, left(ps));
  if (n_t > left(ps) / MIN_TENSOR_BYTES)
    return corrupt(ps, 8, "tensor count %" PRIu64 " is impossible: %" PRIu64
                   " tensor infos cannot fit in the %" PRIu64 " bytes left", n_t, n_t, left(ps));
  if (ps->g) {
    ps->g->version = version;
    ps->g->n_kv = (size_t)n_kv;
    ps->g->n_tensors = (size_t)n_t;
  }
  *n_kv_out = n_kv;
  *n_t_out = n_t;

  ps->alignment = HS_GGUF_DEFAULT_ALIGNMENT;
  for (uint64_t i = 0; i < n_kv; i++) {
    kv tmp;
    kv *k = ps->g ? &ps->g->kvs[i] : &tmp;
    memset(k, 0, sizeof *k);
    const uint8_t *key;
    uint64_t klen;
    if (rd_str(ps, &key, &klen)) return trunc_err(ps, "key of metadata %" PRIu64, i);
    if (memchr(key, 0, (size_t)klen))
      return corrupt(ps, ps->off - klen, "metadata %" PRIu64 ": key contains a NUL byte", i);
    k->key = keep(ps, key, klen);
    if (rd_u32(ps, &k->type))
      return trunc_err(ps, "value type of metadata %" PRIu64 " ('%.*s')", i, SHOWN(klen),
                       (const char *)key);
    uint64_t vstart = ps->off;
    int rc = parse_value(ps, k, i, key, klen);
    if (rc) return rc;
    if (klen == sizeof HS_GGUF_ALIGNMENT_KEY - 1 &&
        memcmp(key, HS_GGUF_ALIGNMENT_KEY, (size_t)klen) == 0) {
      if (k->type != HS_GGUF_UINT32)
        return corrupt(ps, vstart, "%s must be a uint32, not a %s", HS_GGUF_ALIGNMENT_KEY,
                       value_names[k->type]);
      if (k->raw == 0 || (k->raw & (k->raw - 1)) != 0)
        return corrupt(ps, vstart, "%s %" PRIu64 " is not a power of two",
                       HS_GGUF_ALIGNMENT_KEY, k->raw);
      ps->alignment = (uint32_t)k->raw;
    }
  }

  for (uint64_t t = 0; t < n_t; t++) {
    hs_gguf_tensor tmp;
    hs_gguf_tensor *ti = ps->g ? &ps->g->tensors[t] : &tmp;
    memset(ti, 0, sizeof *ti);
    const uint8_t *nm;
    uint64_t nlen;
    if (rd_str(ps, &nm, &nlen)) return trunc_err(ps, "name of tensor %" PRIu64, t);
    if (memchr(nm, 0, (size_t)nlen))
      return corrupt(ps, ps->off - nlen, "tensor %" PRIu64 ": name contains a NUL byte", t);
    ti->name = keep(ps, nm, nlen).s;
#define TNAME t, SHOWN(nlen), (const char *)nm
    if (rd_u32(ps, &ti->n_dims))
      return trunc_err(ps, "n_dims of tensor %" PRIu64 " ('%.*s')", TNAME);
    if (ti->n_dims < 1 || ti->n_dims > HS_GGUF_MAX_DIMS)
      return corrupt(ps, ps->off - 4, "tensor %" PRIu64 " ('%.*s'): n_dims %" PRIu32
                     " is not in 1..%d", TNAME, ti->n_dims, HS_GGUF_MAX_DIMS);
    uint64_t n_el = 1;
    for (uint32_t d = 0; d < HS_GGUF_MAX_DIMS; d++) ti->ne[d] = 1;
    for (uint32_t d = 0; d < ti->n_dims; d++) {
      if (rd_u64(ps, &ti->ne[d]))
        return trunc_err(ps, "ne[%" PRIu32 "] of tensor %" PRIu64 " ('%.*s')", d, TNAME);
      if (ti->ne[d] > (uint64_t)INT64_MAX)
        return corrupt(ps, ps->off - 8, "tensor %" PRIu64 " ('%.*s'): ne[%" PRIu32 "] = %" PRIu64
                       " is out of range", TNAME, d, ti->ne[d]);
      if (ti->ne[d] && n_el > (uint64_t)INT64_MAX / ti->ne[d])
        return corrupt(ps, ps->off - 8, "tensor %" PRIu64 " ('%.*s'): element count overflows",
                       TNAME);
      n_el *= ti->ne[d];
    }
    ti->n_elements = n_el;
    if (rd_u32(ps, &ti->type)) return trunc_err(ps, "type of tensor %" PRIu64 " ('%.*s')", TNAME);
    uint32_t be = hs_gguf_type_block_elems(ti->type), bb = hs_gguf_type_block_bytes(ti->type);
    if (!be)
      return corrupt(ps, ps->off - 4, "tensor %" PRIu64 " ('%.*s'): unsupported tensor type %"
                     PRIu32 " (%s)", TNAME, ti->type, hs_gguf_type_name(ti->type));
    if (ti->ne[0] % be)
      return corrupt(ps, ps->off - 4, "tensor %" PRIu64 " ('%.*s'): ne[0] = %" PRIu64
                     " is not a multiple of the %s block size %" PRIu32, TNAME, ti->ne[0],
                     hs_gguf_type_name(ti->type), be);
    uint64_t blocks = n_el / be;
    if (blocks > UINT64_MAX / bb)
      return corrupt(ps, ps->off - 4, "tensor %" PRIu64 " ('%.*s'): byte size overflows", TNAME);
    ti->size = blocks * bb;
    if (rd_u64(ps, &ti->offset))
      return trunc_err(ps, "offset of tensor %" PRIu64 " ('%.*s')", TNAME);
    if (ti->offset % ps->alignment)
      return corrupt(ps, ps->off - 8, "tensor %" PRIu64 " ('%.*s'): offset %" PRIu64
                     " is not a multiple of the alignment %" PRIu32, TNAME, ti->offset,
                     ps->alignment);
#undef TNAME
  }
  return 0;
}

/* ---- hash tables ---- */

static size_t table_cap(size_t n) {
  if (!n) return 0;
  size_t cap = 8;
  while (cap < 2 * n) cap *= 2;
  return cap;
}

/* Finds s (len bytes) in table; names[i] gives the i-th entry's name. Returns index + 1, or 0. */
typedef const char *(*name_at_fn)(const hs_gguf *g, size_t i, size_t *len);

static const char *kv_name(const hs_gguf *g, size_t i, size_t *len) {
  *len = g->kvs[i].key.len;
  return g->kvs[i].key.s;
}

static const char *tensor_name(const hs_gguf *g, size_t i, size_t *len) {
  *len = strlen(g->tensors[i].name);
  return g->tensors[i].name;
}

/* Returns the slot where s is, or the empty slot where it would go. */
static size_t *table_slot(const hs_gguf *g, size_t *table, size_t cap, name_at_fn name_at,
                          const char *s, size_t len) {
  size_t mask = cap - 1, h = (size_t)fnv1a(s, len) & mask;
  for (;;) {
    size_t *slot = &table[h];
    if (!*slot) return slot;
    size_t nlen;
    const char *n = name_at(g, *slot - 1, &nlen);
    if (nlen == len && memcmp(n, s, len) == 0) return slot;
    h = (h + 1) & mask;
  }
}

/* Builds a table of count entries; returns the index of the first duplicate + 1, or 0. */
static size_t table_build(const hs_gguf *g, size_t *table, size_t cap, size_t count,
                          name_at_fn name_at) {
  for (size_t i = 0; i < count; i++) {
    size_t len;
    const char *s = name_at(g, i, &len);
    size_t *slot = table_slot(g, table, cap, name_at, s, len);
    if (*slot) return i + 1;
    *slot = i + 1;
  }
  return 0;
}

/* ---- layout checks after the fill pass ---- */

static int cmp_by_offset(const void *a, const void *b) {
  const hs_gguf_tensor *x = *(const hs_gguf_tensor *const *)a;
  const hs_gguf_tensor *y = *(const hs_gguf_tensor *const *)b;
  return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Checks that no two tensors of non-zero size overlap, given them in offset order. */
static int check_overlap(const hs_gguf *g, const hs_gguf_tensor *const *order, size_t n) {
  const hs_gguf_tensor *prev = NULL;
  for (size_t i = 0; i < n; i++) {
    const hs_gguf_tensor *t = order[i];
    if (!t->size) continue;
    if (prev && t->offset < prev->offset + prev->size)
      return hs_set_error(&err, HS_ECORRUPT,
                          "%s: tensors '%.*s' (offset %" PRIu64 ", %" PRIu64
                          " bytes) and '%.*s' (offset %" PRIu64 ", %" PRIu64 " bytes) overlap",
                          g->name, SHOWN(strlen(prev->name)), prev->name, prev->offset,
                          prev->size, SHOWN(strlen(t->name)), t->name, t->offset, t->size);
    prev = t;
  }
  return 0;
}

static int check_tensors(hs_gguf *g) {
  uint64_t data_size = g->size - g->data_offset;
  int sorted = 1;
  for (size_t i = 0; i < g->n_tensors; i++) {
    hs_gguf_tensor *t = &g->tensors[i];
    if (t->offset > data_size || t->size > data_size - t->offset)
      return hs_set_error(&err, HS_ETRUNC,
                          "%s: tensor %zu ('%.*s'): data at offset %" PRIu64 " (%" PRIu64
                          " bytes) runs past the end of the file (data section of %" PRIu64
                          " bytes at file offset %" PRIu64 ")",
                          g->name, i, SHOWN(strlen(t->name)), t->name, t->offset, t->size,
                          data_size, g->data_offset);
    t->data = g->base + g->data_offset + t->offset;
    if (i && t->offset < g->tensors[i - 1].offset) sorted = 0;
  }
  if (g->n_tensors < 2) return 0;
  const hs_gguf_tensor **order = hs_malloc(g->n_tensors * sizeof *order);
  if (!order)
    return hs_set_error(&err, HS_ENOMEM, "%s: out of memory sorting %zu tensors", g->name,
                        g->n_tensors);
  for (size_t i = 0; i < g->n_tensors; i++) order[i] = &g->tensors[i];
  if (!sorted) qsort(order, g->n_tensors, sizeof *order, cmp_by_offset);
  int rc = check_overlap(g, order, g->n_tensors);
  hs_free(order);
  return rc;
}

/* ---- open ---- */

/* Adds n bytes, aligned to 8, to *total, failing on overflow. */
static int grow(size_t *total, size_t n) {
  size_t a = (n + 7u) & ~(size_t)7u;
  if (a < n || *total > SIZE_MAX - a) return -1;
  *total += a;
  return 0;
}

static int mul_ok(size_t a, size_t b, size_t *out) {
  if (b && a > SIZE_MAX / b) return -1;
  *out = a * b;
  return 0;
}

static int open_buffer(const uint8_t *base, uint64_t size, int mapped, const char *name,
                       hs_gguf **out) {
  parser ps;
  memset(&ps, 0, sizeof ps);
  ps.p = base;
  ps.size = size;
  ps.name = name;
  if (size < 4) {
    ps.need = 4;
    return trunc_err(&ps, "magic");
  }
  if (memcmp(base, HS_GGUF_MAGIC, 4) != 0)
    return corrupt(&ps, 0, "bad magic %02x %02x %02x %02x (not a GGUF file)", base[0], base[1],
                   base[2], base[3]);

  uint64_t n_kv, n_t;
  int rc = parse_header(&ps, &n_kv, &n_t);
  if (rc) return rc;
  uint64_t data_offset = (ps.off + ps.alignment - 1) / ps.alignment * ps.alignment;
  if (data_offset > size) {
    if (n_t) {
      ps.need = data_offset - ps.off;
      return trunc_err(&ps, "padding to the alignment %" PRIu32 " before the data section",
                       ps.alignment);
    }
    data_offset = size; /* no tensors: the data section may be absent */
  }

  /* One block: kvs, tensors, string refs, two tables, the pool (strings and the name). */
  size_t name_len = strlen(name);
  size_t kv_cap = table_cap((size_t)n_kv), t_cap = table_cap((size_t)n_t);
  size_t total = 0, b_kv, b_t, b_s, b_kh, b_th, pool_bytes = ps.pool_used + name_len + 1;
  size_t o_kv, o_t, o_s, o_kh, o_th, o_pool;
  if (mul_ok((size_t)n_kv, sizeof(kv), &b_kv) || mul_ok((size_t)n_t, sizeof(hs_gguf_tensor), &b_t) ||
      mul_ok(ps.n_strs, sizeof(sref), &b_s) || mul_ok(kv_cap, sizeof(size_t), &b_kh) ||
      mul_ok(t_cap, sizeof(size_t), &b_th) || pool_bytes < name_len)
    return hs_set_error(&err, HS_ENOMEM, "%s: index size overflows", name);
  o_kv = total;
  int bad = grow(&total, b_kv);
  o_t = total;
  bad |= grow(&total, b_t);
  o_s = total;
  bad |= grow(&total, b_s);
  o_kh = total;
  bad |= grow(&total, b_kh);
  o_th = total;
  bad |= grow(&total, b_th);
  o_pool = total;
  bad |= grow(&total, pool_bytes);
  if (bad) return hs_set_error(&err, HS_ENOMEM, "%s: index size overflows", name);

  hs_gguf *g = hs_calloc(1, sizeof *g);
  char *block = g ? hs_malloc(total) : NULL;
  if (!block) {
    hs_free(g);
    return hs_set_error(&err, HS_ENOMEM, "%s: out of memory for an index of %zu bytes", name,
                        total);
  }
  memset(block + o_kh, 0, b_kh + b_th); /* the tables are adjacent */
  g->block = block;
  g->base = base;
  g->size = size;
  g->alignment = ps.alignment;
  g->data_offset = data_offset;
  g->kvs = (kv *)(void *)(block + o_kv);
  g->tensors = (hs_gguf_tensor *)(void *)(block + o_t);
  g->kv_hash = (size_t *)(void *)(block + o_kh);
  g->tensor_hash = (size_t *)(void *)(block + o_th);
  g->kv_cap = kv_cap;
  g->tensor_cap = t_cap;
  char *pool = block + o_pool;
  memcpy(pool, name, name_len + 1);
  g->name = pool;

  /* The fill pass: the same parse, which cannot fail now. */
  parser fill;
  memset(&fill, 0, sizeof fill);
  fill.p = base;
  fill.size = size;
  fill.name = name;
  fill.g = g;
  fill.pool = pool + name_len + 1;
  fill.strs = (sref *)(void *)(block + o_s);
  rc = parse_header(&fill, &n_kv, &n_t);
  if (rc) goto fail;

  size_t dup = table_build(g, g->kv_hash, kv_cap, g->n_kv, kv_name);
  if (dup) {
    const sref *k = &g->kvs[dup - 1].key;
    rc = hs_set_error(&err, HS_ECORRUPT, "%s: metadata %zu: duplicate key '%.*s'", name, dup - 1,
                      SHOWN(k->len), k->s);
    goto fail;
  }
  dup = table_build(g, g->tensor_hash, t_cap, g->n_tensors, tensor_name);
  if (dup) {
    const char *n = g->tensors[dup - 1].name;
    rc = hs_set_error(&err, HS_ECORRUPT, "%s: tensor %zu: duplicate name '%.*s'", name, dup - 1,
                      SHOWN(strlen(n)), n);
    goto fail;
  }
  rc = check_tensors(g);
  if (rc) goto fail;
  g->mapped = mapped;
  *out = g;
  return 0;
fail:
  hs_free(g->block);
  hs_free(g);
  return rc;
}

int hs_gguf_open_mem(const void *data, size_t size, const char *name, hs_gguf **out) {
  if (!out) return hs_set_error(&err, HS_EINVAL, "gguf: open with a NULL output pointer");
  *out = NULL;
  if (!name) name = "<memory>";
  if (!data && size) return hs_set_error(&err, HS_EINVAL, "%s: NULL data of %zu bytes", name, size);
  return open_buffer(data, size, 0, name, out);
}

int hs_gguf_open(const char *path, hs_gguf **out) {
  if (!out) return hs_set_error(&err, HS_EINVAL, "gguf: open with a NULL output pointer");
  *out = NULL;
  if (!path) return hs_set_error(&err, HS_EINVAL, "gguf: open with a NULL path");
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    return hs_set_error(&err, e == ENOENT ? HS_ENOENT : HS_EIO, "%s: cannot open: %s", path,
                        strerror(e));
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    return hs_set_error(&err, HS_EIO, "%s: cannot stat: %s", path, strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return hs_set_error(&err, HS_EIO, "%s: not a regular file", path);
  }
  if ((uint64_t)st.st_size > (uint64_t)SIZE_MAX) {
    close(fd);
    return hs_set_error(&err, HS_EIO, "%s: too large to map", path);
  }
  size_t size = (size_t)st.st_size;
  void *map = NULL;
  if (size) {
    map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
      int e = errno;
      close(fd);
      return hs_set_error(&err, HS_EIO, "%s: cannot map %zu bytes: %s", path, size, strerror(e));
    }
  }
  close(fd);
  int rc = open_buffer(map, size, size != 0, path, out);
  if (rc && map) munmap(map, size);
  return rc;
}

/* The whole file in private anonymous memory with transparent huge pages asked for: weights
 * streamed from 2 MiB pages let the hardware prefetchers run on, where a mapped file's 4 KiB
 * pages stop them at every boundary (F32 decode ~1.35x on a 2-core AVX-512 machine). */
int hs_gguf_open_copy(const char *path, hs_gguf **out) {
  if (!out) return hs_set_error(&err, HS_EINVAL, "gguf: open with a NULL output pointer");
  *out = NULL;
  if (!path) return hs_set_error(&err, HS_EINVAL, "gguf: open with a NULL path");
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    return hs_set_error(&err, e == ENOENT ? HS_ENOENT : HS_EIO, "%s: cannot open: %s", path,
                        strerror(e));
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > (uint64_t)SIZE_MAX) {
    close(fd);
    return hs_set_error(&err, HS_EIO, "%s: not a regular file of a size that fits in memory",
                        path);
  }
  size_t size = (size_t)st.st_size;
  void *buf = NULL;
  if (size) {
    buf = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buf == MAP_FAILED) {
      close(fd);
      return hs_set_error(&err, HS_ENOMEM, "%s: no memory for a copy of %zu bytes", path, size);
    }
#ifdef MADV_HUGEPAGE
    madvise(buf, size, MADV_HUGEPAGE); /* a hint: without it the copy still works */
#endif
    for (size_t done = 0; done < size;) {
      ssize_t r = pread(fd, (char *)buf + done, size - done, (off_t)done);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) {
        int e = r < 0 ? errno : 0;
        munmap(buf, size);
        close(fd);
        return hs_set_error(&err, HS_EIO, "%s: read failed at byte %zu of %zu: %s", path, done,
                            size, e ? strerror(e) : "the file shrank while it was read");
      }
      done += (size_t)r;
    }
    mprotect(buf, size, PROT_READ); /* read-only from here on, as a mapped file is */
  }
  close(fd);
  int rc = open_buffer(buf, size, size != 0, path, out);
  if (rc && buf) munmap(buf, size);
  return rc;
}

void hs_gguf_close(hs_gguf *g) {
  if (!g) return;
  if (g->mapped) munmap((void *)g->base, (size_t)g->size);
  hs_free(g->block);
  hs_free(g);
}

uint32_t hs_gguf_version(const hs_gguf *g) { return g ? g->version : 0; }
uint32_t hs_gguf_alignment(const hs_gguf *g) { return g ? g->alignment : 0; }
uint64_t hs_gguf_data_offset(const hs_gguf *g) { return g ? g->data_offset : 0; }
uint64_t hs_gguf_file_size(const hs_gguf *g) { return g ? g->size : 0; }

/* ======================================================================================== */
/* Metadata                                                                                 */
/* ======================================================================================== */

size_t hs_gguf_kv_count(const hs_gguf *g) { return g ? g->n_kv : 0; }

const char *hs_gguf_kv_key(const hs_gguf *g, size_t i) {
  return g && i < g->n_kv ? g->kvs[i].key.s : NULL;
}

int hs_gguf_kv_type(const hs_gguf *g, size_t i) {
  return g && i < g->n_kv ? (int)g->kvs[i].type : -1;
}

int hs_gguf_find_key(const hs_gguf *g, const char *key, size_t *index) {
  if (!g || !key) return hs_set_error(&err, HS_EINVAL, "gguf: find_key with a NULL argument");
  if (g->kv_cap) {
    size_t *slot = table_slot(g, g->kv_hash, g->kv_cap, kv_name, key, strlen(key));
    if (*slot) {
      if (index) *index = *slot - 1;
      return 0;
    }
  }
  return hs_set_error(&err, HS_ENOENT, "%s: no metadata key '%s'", g->name, key);
}

/* The entry for key, or an error. */
static int lookup(const hs_gguf *g, const char *key, const void *out, const kv **k) {
  if (!g || !key || !out) return hs_set_error(&err, HS_EINVAL, "gguf: getter with a NULL argument");
  size_t i;
  int rc = hs_gguf_find_key(g, key, &i);
  if (rc) return rc;
  *k = &g->kvs[i];
  return 0;
}

static int wrong_type(const hs_gguf *g, const char *key, uint32_t have, const char *want) {
  return hs_set_error(&err, HS_EINVAL, "%s: metadata '%s' is a %s, not %s", g->name, key,
                      value_names[have], want);
}

/* Looks up key and requires exactly type t. */
static int lookup_exact(const hs_gguf *g, const char *key, const void *out, uint32_t t,
                        const kv **k) {
  int rc = lookup(g, key, out, k);
  if (rc) return rc;
  if ((*k)->type != t) return wrong_type(g, key, (*k)->type, value_names[t]);
  return 0;
}

/* Sign-extends the raw bits of an integer of type t into *v; *neg says it is negative. */
static void int_value(uint32_t t, uint64_t raw, uint64_t *v, int *neg) {
  unsigned bits = 8u * value_size[t];
  *neg = 0;
  if (is_signed_type(t) && bits && (raw >> (bits - 1)) & 1u) {
    *neg = 1;
    if (bits < 64) raw |= ~(uint64_t)0 << bits;
  }
  *v = raw;
}

/* Two's-complement u64 to int64_t without implementation-defined conversion. */
static int64_t to_i64(uint64_t v) {
  return v <= (uint64_t)INT64_MAX ? (int64_t)v : -(int64_t)(~v) - 1;
}

#define EXACT_GETTER(fn, T, vt, conv)                                    \
  int fn(const hs_gguf *g, const char *key, T *out) {                   \
    const kv *k = NULL;                                                 \
    int rc = lookup_exact(g, key, out, vt, &k);                         \
    if (rc) return rc;                                                  \
    uint64_t v = 0;                                                     \
    int neg = 0;                                                        \
    int_value(vt, k->raw, &v, &neg);                                    \
    (void)neg;                                                          \
    *out = (T)conv(v);                                                  \
    return 0;                                                           \
  }

#define AS_U(v) (v)
EXACT_GETTER(hs_gguf_get_u8, uint8_t, HS_GGUF_UINT8, AS_U)
EXACT_GETTER(hs_gguf_get_i8, int8_t, HS_GGUF_INT8, to_i64)
EXACT_GETTER(hs_gguf_get_u16, uint16_t, HS_GGUF_UINT16, AS_U)
EXACT_GETTER(hs_gguf_get_i16, int16_t, HS_GGUF_INT16, to_i64)
EXACT_GETTER(hs_gguf_get_u32, uint32_t, HS_GGUF_UINT32, AS_U)
EXACT_GETTER(hs_gguf_get_i32, int32_t, HS_GGUF_INT32, to_i64)
EXACT_GETTER(hs_gguf_get_u64, uint64_t, HS_GGUF_UINT64, AS_U)
EXACT_GETTER(hs_gguf_get_i64, int64_t, HS_GGUF_INT64, to_i64)

static float f32_bits(uint32_t b) {
  float f;
  memcpy(&f, &b, 4);
  return f;
}

static double f64_bits(uint64_t b) {
  double d;
  memcpy(&d, &b, 8);
  return d;
}

int hs_gguf_get_f32(const hs_gguf *g, const char *key, float *out) {
  const kv *k = NULL;
  int rc = lookup_exact(g, key, out, HS_GGUF_FLOAT32, &k);
  if (rc) return rc;
  *out = f32_bits((uint32_t)k->raw);
  return 0;
}

int hs_gguf_get_f64(const hs_gguf *g, const char *key, double *out) {
  const kv *k = NULL;
  int rc = lookup(g, key, out, &k);
  if (rc) return rc;
  if (k->type == HS_GGUF_FLOAT32)
    *out = f32_bits((uint32_t)k->raw);
  else if (k->type == HS_GGUF_FLOAT64)
    *out = f64_bits(k->raw);
  else
    return wrong_type(g, key, k->type, "a float32 or float64");
  return 0;
}

int hs_gguf_get_bool(const hs_gguf *g, const char *key, bool *out) {
  const kv *k = NULL;
  int rc = lookup_exact(g, key, out, HS_GGUF_BOOL, &k);
  if (rc) return rc;
  *out = k->raw != 0;
  return 0;
}

/* Converts an integer of type t (raw bits) to int64 (want_signed) or uint64, checking range. */
static int int_convert(const hs_gguf *g, const char *key, const char *what, uint32_t t,
                       uint64_t raw, int want_signed, int64_t *si, uint64_t *ui) {
  uint64_t v;
  int neg;
  int_value(t, raw, &v, &neg);
  if (want_signed) {
    if (!neg && v > (uint64_t)INT64_MAX)
      return hs_set_error(&err, HS_EINVAL, "%s: %s '%s' = %" PRIu64 " does not fit in an int64",
                          g->name, what, key, v);
    *si = to_i64(v);
  } else {
    if (neg)
      return hs_set_error(&err, HS_EINVAL, "%s: %s '%s' = %" PRId64
                          " is negative, not an unsigned integer", g->name, what, key, to_i64(v));
    *ui = v;
  }
  return 0;
}

static int get_integer(const hs_gguf *g, const char *key, const void *out, int want_signed,
                       int64_t *si, uint64_t *ui) {
  const kv *k = NULL;
  int rc = lookup(g, key, out, &k);
  if (rc) return rc;
  if (!is_int_type(k->type)) return wrong_type(g, key, k->type, "an integer");
  return int_convert(g, key, "metadata", k->type, k->raw, want_signed, si, ui);
}

int hs_gguf_get_int(const hs_gguf *g, const char *key, int64_t *out) {
  uint64_t u;
  return get_integer(g, key, out, 1, out, &u);
}

int hs_gguf_get_uint(const hs_gguf *g, const char *key, uint64_t *out) {
  int64_t s;
  return get_integer(g, key, out, 0, &s, out);
}

int hs_gguf_get_str(const hs_gguf *g, const char *key, const char **s, size_t *len) {
  const kv *k = NULL;
  int rc = lookup_exact(g, key, s, HS_GGUF_STRING, &k);
  if (rc) return rc;
  *s = k->str.s;
  if (len) *len = k->str.len;
  return 0;
}

/* ---- arrays ---- */

static int lookup_arr(const hs_gguf *g, const char *key, const void *out, const kv **k) {
  int rc = lookup(g, key, out, k);
  if (rc) return rc;
  if ((*k)->type != HS_GGUF_ARRAY) return wrong_type(g, key, (*k)->type, "an array");
  return 0;
}

int hs_gguf_get_arr(const hs_gguf *g, const char *key, hs_gguf_value_type *elem_type,
                    uint64_t *count) {
  const kv *k = NULL;
  int rc = lookup_arr(g, key, "", &k);
  if (rc) return rc;
  if (elem_type) *elem_type = (hs_gguf_value_type)k->arr_type;
  if (count) *count = k->count;
  return 0;
}

/* Element i of array key, whose element type must pass accept(); else an error. */
static int lookup_elem(const hs_gguf *g, const char *key, uint64_t i, const void *out,
                       int (*accept)(uint32_t), const char *want, const kv **k) {
  int rc = lookup_arr(g, key, out, k);
  if (rc) return rc;
  if (!accept((*k)->arr_type))
    return hs_set_error(&err, HS_EINVAL, "%s: metadata '%s' is an array of %s, not of %s",
                        g->name, key, value_names[(*k)->arr_type], want);
  if (i >= (*k)->count)
    return hs_set_error(&err, HS_EINVAL, "%s: index %" PRIu64 " is out of range for array '%s' "
                        "of %" PRIu64 " elements", g->name, i, key, (*k)->count);
  return 0;
}

static uint64_t elem_raw(const kv *k, uint64_t i) {
  unsigned sz = value_size[k->arr_type];
  return le_n(k->data + i * sz, sz);
}

static int accept_float(uint32_t t) { return t == HS_GGUF_FLOAT32 || t == HS_GGUF_FLOAT64; }
static int accept_bool(uint32_t t) { return t == HS_GGUF_BOOL; }
static int accept_str(uint32_t t) { return t == HS_GGUF_STRING; }
static int accept_num(uint32_t t) { return t != HS_GGUF_STRING && t != HS_GGUF_ARRAY; }

static int arr_integer(const hs_gguf *g, const char *key, uint64_t i, const void *out,
                       int want_signed, int64_t *si, uint64_t *ui) {
  const kv *k = NULL;
  int rc = lookup_elem(g, key, i, out, is_int_type, "integers", &k);
  if (rc) return rc;
  return int_convert(g, key, "array element of", k->arr_type, elem_raw(k, i), want_signed, si,
                     ui);
}

int hs_gguf_arr_int(const hs_gguf *g, const char *key, uint64_t i, int64_t *out) {
  uint64_t u;
  return arr_integer(g, key, i, out, 1, out, &u);
}

int hs_gguf_arr_uint(const hs_gguf *g, const char *key, uint64_t i, uint64_t *out) {
  int64_t s;
  return arr_integer(g, key, i, out, 0, &s, out);
}

int hs_gguf_arr_f64(const hs_gguf *g, const char *key, uint64_t i, double *out) {
  const kv *k = NULL;
  int rc = lookup_elem(g, key, i, out, accept_float, "float32 or float64", &k);
  if (rc) return rc;
  uint64_t raw = elem_raw(k, i);
  *out = k->arr_type == HS_GGUF_FLOAT32 ? (double)f32_bits((uint32_t)raw) : f64_bits(raw);
  return 0;
}

int hs_gguf_arr_bool(const hs_gguf *g, const char *key, uint64_t i, bool *out) {
  const kv *k = NULL;
  int rc = lookup_elem(g, key, i, out, accept_bool, "bool", &k);
  if (rc) return rc;
  *out = k->data[i] != 0;
  return 0;
}

int hs_gguf_arr_str(const hs_gguf *g, const char *key, uint64_t i, const char **s, size_t *len) {
  const kv *k = NULL;
  int rc = lookup_elem(g, key, i, s, accept_str, "string", &k);
  if (rc) return rc;
  *s = k->strs[i].s;
  if (len) *len = k->strs[i].len;
  return 0;
}

int hs_gguf_arr_raw(const hs_gguf *g, const char *key, const void **data, size_t *elem_size) {
  const kv *k = NULL;
  int rc = lookup_arr(g, key, data, &k);
  if (rc) return rc;
  if (!accept_num(k->arr_type))
    return hs_set_error(&err, HS_EINVAL, "%s: metadata '%s' is an array of strings, not numbers",
                        g->name, key);
  *data = k->data;
  if (elem_size) *elem_size = value_size[k->arr_type];
  return 0;
}

/* ======================================================================================== */
/* Tensors                                                                                  */
/* ======================================================================================== */

size_t hs_gguf_tensor_count(const hs_gguf *g) { return g ? g->n_tensors : 0; }

const hs_gguf_tensor *hs_gguf_tensor_get(const hs_gguf *g, size_t i) {
  return g && i < g->n_tensors ? &g->tensors[i] : NULL;
}

int hs_gguf_tensor_find(const hs_gguf *g, const char *name, const hs_gguf_tensor **out,
                        size_t *index) {
  if (!g || !name || !out)
    return hs_set_error(&err, HS_EINVAL, "gguf: tensor_find with a NULL argument");
  if (g->tensor_cap) {
    size_t *slot = table_slot(g, g->tensor_hash, g->tensor_cap, tensor_name, name, strlen(name));
    if (*slot) {
      *out = &g->tensors[*slot - 1];
      if (index) *index = *slot - 1;
      return 0;
    }
  }
  return hs_set_error(&err, HS_ENOENT, "%s: no tensor named '%s'", g->name, name);
}
