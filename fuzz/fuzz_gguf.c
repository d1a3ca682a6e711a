/* fuzz_gguf.c: the GGUF reader against arbitrary bytes, and the writer against what it accepts.
 *
 * The input is opened in place with hs_gguf_open_mem (from an exactly-sized copy, so that the
 * sanitizers see any read past its end). Whatever the input, open must not over-read, crash, leak
 * or allocate out of proportion; a failure must leave a message. When the input opens, every
 * accessor is called on every key (the matching getter and all the mismatching ones, every array
 * element and one past the end) and on every tensor, whose data bytes are all read. Then the file
 * is rebuilt with the writer from what the reader returned, read back, and compared: a round trip
 * that checks the reader and the writer against each other. A broken promise aborts, which the
 * fuzzer reports as a crash. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hswarm/alloc.h"
#include "hswarm/error.h"
#include "hswarm/gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok) {
  if (!ok) abort();
}

static volatile uint8_t sink;

/* Every getter on key i; returns nothing, checks consistency between them. */
static void visit_key(const hs_gguf *g, size_t i) {
  const char *key = hs_gguf_kv_key(g, i);
  int type = hs_gguf_kv_type(g, i);
  check(key != NULL && type >= 0 && type <= HS_GGUF_FLOAT64);
  size_t idx = (size_t)-1;
  check(hs_gguf_find_key(g, key, &idx) == 0 && idx == i);
  uint8_t u8;
  int8_t i8;
  uint16_t u16;
  int16_t i16;
  uint32_t u32;
  int32_t i32;
  uint64_t u64;
  int64_t i64;
  float f;
  double d;
  bool b;
  const char *s;
  size_t len;
  check((hs_gguf_get_u8(g, key, &u8) == 0) == (type == HS_GGUF_UINT8));
  check((hs_gguf_get_i8(g, key, &i8) == 0) == (type == HS_GGUF_INT8));
  check((hs_gguf_get_u16(g, key, &u16) == 0) == (type == HS_GGUF_UINT16));
  check((hs_gguf_get_i16(g, key, &i16) == 0) == (type == HS_GGUF_INT16));
  check((hs_gguf_get_u32(g, key, &u32) == 0) == (type == HS_GGUF_UINT32));
  check((hs_gguf_get_i32(g, key, &i32) == 0) == (type == HS_GGUF_INT32));
  check((hs_gguf_get_u64(g, key, &u64) == 0) == (type == HS_GGUF_UINT64));
  check((hs_gguf_get_i64(g, key, &i64) == 0) == (type == HS_GGUF_INT64));
  check((hs_gguf_get_f32(g, key, &f) == 0) == (type == HS_GGUF_FLOAT32));
  check((hs_gguf_get_f64(g, key, &d) == 0) ==
        (type == HS_GGUF_FLOAT32 || type == HS_GGUF_FLOAT64));
  check((hs_gguf_get_bool(g, key, &b) == 0) == (type == HS_GGUF_BOOL));
  int rs = hs_gguf_get_int(g, key, &i64), ru = hs_gguf_get_uint(g, key, &u64);
  int is_int = type <= HS_GGUF_INT32 && type != HS_GGUF_FLOAT32 && type != HS_GGUF_BOOL &&
               type != HS_GGUF_STRING && type != HS_GGUF_ARRAY;
  is_int = is_int || type == HS_GGUF_UINT64 || type == HS_GGUF_INT64;
  if (!is_int) check(rs == HS_EINVAL && ru == HS_EINVAL);
  else check(rs == 0 || ru == 0); /* every integer fits one of them */
  if (hs_gguf_get_str(g, key, &s, &len) == 0) {
    check(type == HS_GGUF_STRING && s[len] == 0);
  } else {
    check(type != HS_GGUF_STRING);
    check(hs_gguf_last_error()[0] != 0);
  }
  hs_gguf_value_type et;
  uint64_t count;
  if (hs_gguf_get_arr(g, key, &et, &count) != 0) {
    check(type != HS_GGUF_ARRAY);
    return;
  }
  const void *raw;
  size_t esz = 0;
  if (hs_gguf_arr_raw(g, key, &raw, &esz) == 0) {
    check(et != HS_GGUF_STRING && esz >= 1 && esz <= 8);
    for (uint64_t j = 0; j < count * esz; j++) sink = ((const uint8_t *)raw)[j];
  }
  for (uint64_t j = 0; j <= count; j++) {
    int in = j < count;
    int a = hs_gguf_arr_int(g, key, j, &i64), c = hs_gguf_arr_uint(g, key, j, &u64);
    if (!in) check(a != 0 && c != 0);
    check((hs_gguf_arr_f64(g, key, j, &d) == 0) ==
          (in && (et == HS_GGUF_FLOAT32 || et == HS_GGUF_FLOAT64)));
    check((hs_gguf_arr_bool(g, key, j, &b) == 0) == (in && et == HS_GGUF_BOOL));
    int r = hs_gguf_arr_str(g, key, j, &s, &len);
    check((r == 0) == (in && et == HS_GGUF_STRING));
    if (r == 0) check(s[len] == 0);
  }
}

static void visit_tensors(const hs_gguf *g, const uint8_t *buf, size_t size) {
  size_t n = hs_gguf_tensor_count(g);
  for (size_t i = 0; i < n; i++) {
    const hs_gguf_tensor *t = hs_gguf_tensor_get(g, i), *t2 = NULL;
    check(t != NULL && t->name != NULL);
    size_t idx = (size_t)-1;
    check(hs_gguf_tensor_find(g, t->name, &t2, &idx) == 0 && t2 == t && idx == i);
    check(t->n_dims >= 1 && t->n_dims <= HS_GGUF_MAX_DIMS);
    uint32_t be = hs_gguf_type_block_elems(t->type), bb = hs_gguf_type_block_bytes(t->type);
    check(be != 0 && t->ne[0] % be == 0);
    check(t->size == t->n_elements / be * bb);
    const uint8_t *p = t->data;
    check(p >= buf && t->size <= size && (size_t)(p - buf) <= size - t->size);
    check((size_t)(p - buf) % hs_gguf_alignment(g) == 0);
    uint8_t x = 0;
    for (uint64_t j = 0; j < t->size; j++) x ^= p[j];
    sink = x;
  }
  check(hs_gguf_tensor_get(g, n) == NULL);
  const hs_gguf_tensor *t;
  check(hs_gguf_tensor_find(g, "\x01no such tensor", &t, NULL) == HS_ENOENT);
}

/* Copies metadata entry i of g into w. */
static int copy_key(const hs_gguf *g, size_t i, hs_gguf_writer *w) {
  const char *key = hs_gguf_kv_key(g, i);
  union {
    uint8_t u8;
    int8_t i8;
    uint16_t u16;
    int16_t i16;
    uint32_t u32;
    int32_t i32;
    uint64_t u64;
    int64_t i64;
    float f;
    double d;
    bool b;
  } v;
  const char *s;
  size_t len;
  switch (hs_gguf_kv_type(g, i)) {
  case HS_GGUF_UINT8: check(!hs_gguf_get_u8(g, key, &v.u8)); return hs_gguf_writer_add_u8(w, key, v.u8);
  case HS_GGUF_INT8: check(!hs_gguf_get_i8(g, key, &v.i8)); return hs_gguf_writer_add_i8(w, key, v.i8);
  case HS_GGUF_UINT16: check(!hs_gguf_get_u16(g, key, &v.u16)); return hs_gguf_writer_add_u16(w, key, v.u16);
  case HS_GGUF_INT16: check(!hs_gguf_get_i16(g, key, &v.i16)); return hs_gguf_writer_add_i16(w, key, v.i16);
  case HS_GGUF_UINT32: check(!hs_gguf_get_u32(g, key, &v.u32)); return hs_gguf_writer_add_u32(w, key, v.u32);
  case HS_GGUF_INT32: check(!hs_gguf_get_i32(g, key, &v.i32)); return hs_gguf_writer_add_i32(w, key, v.i32);
  case HS_GGUF_UINT64: check(!hs_gguf_get_u64(g, key, &v.u64)); return hs_gguf_writer_add_u64(w, key, v.u64);
  case HS_GGUF_INT64: check(!hs_gguf_get_i64(g, key, &v.i64)); return hs_gguf_writer_add_i64(w, key, v.i64);
  case HS_GGUF_FLOAT32: check(!hs_gguf_get_f32(g, key, &v.f)); return hs_gguf_writer_add_f32(w, key, v.f);
  case HS_GGUF_FLOAT64: check(!hs_gguf_get_f64(g, key, &v.d)); return hs_gguf_writer_add_f64(w, key, v.d);
  case HS_GGUF_BOOL: check(!hs_gguf_get_bool(g, key, &v.b)); return hs_gguf_writer_add_bool(w, key, v.b);
  case HS_GGUF_STRING: check(!hs_gguf_get_str(g, key, &s, &len)); return hs_gguf_writer_add_str(w, key, s, len);
  default: break;
  }
  hs_gguf_value_type et;
  uint64_t count;
  check(hs_gguf_get_arr(g, key, &et, &count) == 0);
  if (et != HS_GGUF_STRING) {
    const void *raw = NULL;
    size_t esz;
    check(hs_gguf_arr_raw(g, key, &raw, &esz) == 0);
    return hs_gguf_writer_add_arr(w, key, et, raw, count); /* little-endian host assumed */
  }
  const char **strs = malloc((count ? count : 1) * sizeof *strs);
  size_t *lens = malloc((count ? count : 1) * sizeof *lens);
  check(strs && lens);
  for (uint64_t j = 0; j < count; j++) check(!hs_gguf_arr_str(g, key, j, &strs[j], &lens[j]));
  int rc = hs_gguf_writer_add_arr_str(w, key, strs, lens, count);
  free(strs);
  free(lens);
  return rc;
}

/* Two open files hold the same metadata and tensors (not necessarily at the same offsets). */
static void compare(const hs_gguf *a, const hs_gguf *b) {
  check(hs_gguf_kv_count(a) == hs_gguf_kv_count(b));
  check(hs_gguf_alignment(a) == hs_gguf_alignment(b));
  for (size_t i = 0; i < hs_gguf_kv_count(a); i++) {
    const char *key = hs_gguf_kv_key(a, i);
    check(strcmp(key, hs_gguf_kv_key(b, i)) == 0);
    int type = hs_gguf_kv_type(a, i);
    check(type == hs_gguf_kv_type(b, i));
    const char *s1 = NULL, *s2 = NULL;
    size_t l1 = 0, l2 = 0;
    if (type == HS_GGUF_STRING) {
      check(!hs_gguf_get_str(a, key, &s1, &l1) && !hs_gguf_get_str(b, key, &s2, &l2));
      check(l1 == l2 && memcmp(s1, s2, l1) == 0);
    } else if (type == HS_GGUF_ARRAY) {
      hs_gguf_value_type e1 = HS_GGUF_UINT8, e2 = HS_GGUF_UINT8;
      uint64_t c1 = 0, c2 = 0;
      check(!hs_gguf_get_arr(a, key, &e1, &c1) && !hs_gguf_get_arr(b, key, &e2, &c2));
      check(e1 == e2 && c1 == c2);
      if (e1 == HS_GGUF_STRING) {
        for (uint64_t j = 0; j < c1; j++) {
          check(!hs_gguf_arr_str(a, key, j, &s1, &l1) && !hs_gguf_arr_str(b, key, j, &s2, &l2));
          check(l1 == l2 && memcmp(s1, s2, l1) == 0);
        }
      } else {
        const void *r1 = NULL, *r2 = NULL;
        size_t z1 = 0, z2 = 0;
        check(!hs_gguf_arr_raw(a, key, &r1, &z1) && !hs_gguf_arr_raw(b, key, &r2, &z2));
        check(z1 == z2 && (c1 == 0 || memcmp(r1, r2, c1 * z1) == 0));
      }
    } else {
      uint64_t u1 = 0, u2 = 0;
      int64_t i1 = 0, i2 = 0;
      double d1 = 0, d2 = 0;
      bool b1 = 0, b2 = 0;
      if (type == HS_GGUF_FLOAT32 || type == HS_GGUF_FLOAT64) {
        check(!hs_gguf_get_f64(a, key, &d1) && !hs_gguf_get_f64(b, key, &d2));
        check(memcmp(&d1, &d2, sizeof d1) == 0 || (d1 != d1 && d2 != d2));
      } else if (type == HS_GGUF_BOOL) {
        check(!hs_gguf_get_bool(a, key, &b1) && !hs_gguf_get_bool(b, key, &b2) && b1 == b2);
      } else if (hs_gguf_get_int(a, key, &i1) == 0) {
        check(!hs_gguf_get_int(b, key, &i2) && i1 == i2);
      } else {
        check(!hs_gguf_get_uint(a, key, &u1) && !hs_gguf_get_uint(b, key, &u2) && u1 == u2);
      }
    }
  }
  check(hs_gguf_tensor_count(a) == hs_gguf_tensor_count(b));
  for (size_t i = 0; i < hs_gguf_tensor_count(a); i++) {
    const hs_gguf_tensor *x = hs_gguf_tensor_get(a, i), *y = hs_gguf_tensor_get(b, i);
    check(strcmp(x->name, y->name) == 0 && x->type == y->type && x->n_dims == y->n_dims);
    check(memcmp(x->ne, y->ne, sizeof x->ne) == 0 && x->size == y->size);
    check(x->size == 0 || memcmp(x->data, y->data, x->size) == 0);
  }
}

static void round_trip(const hs_gguf *g) {
  hs_gguf_writer *w;
  check(hs_gguf_writer_create(&w) == 0);
  for (size_t i = 0; i < hs_gguf_kv_count(g); i++) check(copy_key(g, i, w) == 0);
  for (size_t i = 0; i < hs_gguf_tensor_count(g); i++) {
    const hs_gguf_tensor *t = hs_gguf_tensor_get(g, i);
    check(hs_gguf_writer_add_tensor(w, t->name, t->n_dims, t->ne, t->type, t->data,
                                    (size_t)t->size) == 0);
  }
  void *buf;
  size_t size;
  check(hs_gguf_writer_write_mem(w, &buf, &size) == 0);
  hs_gguf_writer_destroy(w);
  hs_gguf *g2;
  check(hs_gguf_open_mem(buf, size, "rewritten", &g2) == 0);
  check(hs_gguf_version(g2) == HS_GGUF_VERSION);
  compare(g, g2);
  hs_gguf_close(g2);
  hs_free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t *copy = malloc(size ? size : 1);
  if (!copy) return 0;
  if (size) memcpy(copy, data, size);
  hs_gguf *g = (hs_gguf *)1;
  int rc = hs_gguf_open_mem(copy, size, "fuzz", &g);
  if (rc) {
    check(g == NULL && rc < 0 && hs_gguf_last_error()[0] != 0);
    free(copy);
    return 0;
  }
  check(hs_gguf_version(g) == 2 || hs_gguf_version(g) == 3);
  uint32_t a = hs_gguf_alignment(g);
  check(a && (a & (a - 1)) == 0);
  check(hs_gguf_file_size(g) == size && hs_gguf_data_offset(g) <= size);
  for (size_t i = 0; i < hs_gguf_kv_count(g); i++) visit_key(g, i);
  check(hs_gguf_kv_key(g, hs_gguf_kv_count(g)) == NULL);
  visit_tensors(g, copy, size);
  if (a <= 65536) round_trip(g); /* a file without tensors may claim 2^31; the writer pads */
  hs_gguf_close(g);
  free(copy);
  return 0;
}
