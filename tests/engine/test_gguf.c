/* test_gguf.c: the GGUF reader and writer (src/engine/gguf.c, src/engine/gguf_write.c).
 *
 * Round trips of every metadata type and array kind and of tensors of every supported type at
 * alignments 32 and 64 (through a file, so through mmap); typed lookups and their errors; version
 * and magic checks; every truncation and many single-byte corruptions of a small file, each
 * opened from an exactly-sized heap copy so that the sanitizers see any over-read; hand-made
 * hostile files, one per check of the reader; and out-of-memory on every allocation of open and
 * of the writer, with a counting allocator to prove that nothing leaks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "hswarm/alloc.h"
#include "hswarm/error.h"
#include "hswarm/gguf.h"

#include "support/counting_alloc.h"

static int group_setup(void **state) {
  hs_alloc_set_hooks(&counting_hooks);
  return make_tmpdir("hs_gguf");
}

static int group_teardown(void **state) {
  return remove_tmpdir_and_hooks();
}

/* ---- a raw byte builder, for hand-made files ---- */

typedef struct rb {
  uint8_t b[8192];
  size_t n;
} rb;

static void rb_le(rb *r, uint64_t v, unsigned n) {
  assert_true(r->n + n <= sizeof r->b);
  for (unsigned i = 0; i < n; i++) r->b[r->n++] = (uint8_t)(v >> (8 * i));
}

static void rb_bytes(rb *r, const void *p, size_t n) {
  assert_true(r->n + n <= sizeof r->b);
  memcpy(r->b + r->n, p, n);
  r->n += n;
}

static void rb_str(rb *r, const char *s) {
  rb_le(r, strlen(s), 8);
  rb_bytes(r, s, strlen(s));
}

static void rb_header(rb *r, uint32_t version, uint64_t n_t, uint64_t n_kv) {
  r->n = 0;
  rb_bytes(r, "GGUF", 4);
  rb_le(r, version, 4);
  rb_le(r, n_t, 8);
  rb_le(r, n_kv, 8);
}

static void rb_tensor(rb *r, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type,
                      uint64_t offset) {
  rb_str(r, name);
  rb_le(r, n_dims, 4);
  for (uint32_t d = 0; d < n_dims; d++) rb_le(r, ne[d], 8);
  rb_le(r, type, 4);
  rb_le(r, offset, 8);
}

static void rb_pad(rb *r, size_t align) {
  while (r->n % align) rb_le(r, 0, 1);
}

static void rb_zeros(rb *r, size_t n) {
  while (n--) rb_le(r, 0, 1);
}

/* Calls every accessor on an open file; checks a few invariants. */
static void exercise(const hs_gguf *g) {
  size_t n = hs_gguf_kv_count(g);
  for (size_t i = 0; i < n; i++) {
    const char *key = hs_gguf_kv_key(g, i);
    assert_non_null(key);
    size_t idx;
    assert_int_equal(hs_gguf_find_key(g, key, &idx), 0);
    assert_int_equal(idx, i);
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
    (void)hs_gguf_get_u8(g, key, &u8);
    (void)hs_gguf_get_i8(g, key, &i8);
    (void)hs_gguf_get_u16(g, key, &u16);
    (void)hs_gguf_get_i16(g, key, &i16);
    (void)hs_gguf_get_u32(g, key, &u32);
    (void)hs_gguf_get_i32(g, key, &i32);
    (void)hs_gguf_get_u64(g, key, &u64);
    (void)hs_gguf_get_i64(g, key, &i64);
    (void)hs_gguf_get_f32(g, key, &f);
    (void)hs_gguf_get_f64(g, key, &d);
    (void)hs_gguf_get_bool(g, key, &b);
    (void)hs_gguf_get_int(g, key, &i64);
    (void)hs_gguf_get_uint(g, key, &u64);
    if (hs_gguf_get_str(g, key, &s, &len) == 0) assert_int_equal(s[len], 0);
    hs_gguf_value_type et;
    uint64_t count;
    if (hs_gguf_get_arr(g, key, &et, &count) == 0) {
      const void *raw;
      size_t esz;
      if (hs_gguf_arr_raw(g, key, &raw, &esz) == 0) assert_true(esz >= 1 && esz <= 8);
      for (uint64_t j = 0; j <= count; j++) {
        (void)hs_gguf_arr_int(g, key, j, &i64);
        (void)hs_gguf_arr_uint(g, key, j, &u64);
        (void)hs_gguf_arr_f64(g, key, j, &d);
        (void)hs_gguf_arr_bool(g, key, j, &b);
        if (hs_gguf_arr_str(g, key, j, &s, &len) == 0) assert_int_equal(s[len], 0);
      }
    }
  }
  assert_null(hs_gguf_kv_key(g, n));
  assert_int_equal(hs_gguf_kv_type(g, n), -1);
  size_t nt = hs_gguf_tensor_count(g);
  for (size_t i = 0; i < nt; i++) {
    const hs_gguf_tensor *t = hs_gguf_tensor_get(g, i), *t2;
    size_t idx;
    assert_int_equal(hs_gguf_tensor_find(g, t->name, &t2, &idx), 0);
    assert_ptr_equal(t, t2);
    assert_int_equal(idx, i);
    assert_true(t->offset % hs_gguf_alignment(g) == 0);
    assert_true(hs_gguf_data_offset(g) + t->offset + t->size <= hs_gguf_file_size(g));
  }
  assert_null(hs_gguf_tensor_get(g, nt));
}

/* Opens an exactly-sized heap copy of data (so that ASan sees over-reads); exercises it if it
 * opens. Returns the open's code. */
static int try_open(const void *data, size_t n) {
  void *copy = malloc(n ? n : 1);
  assert_non_null(copy);
  if (n) memcpy(copy, data, n);
  hs_gguf *g = NULL;
  int rc = hs_gguf_open_mem(copy, n, "t.gguf", &g);
  if (rc == 0) {
    exercise(g);
    hs_gguf_close(g);
  } else {
    assert_null(g);
    assert_true(hs_gguf_last_error()[0] != 0);
  }
  free(copy);
  return rc;
}

static void expect_err(const rb *r, int code, const char *part) {
  int rc = try_open(r->b, r->n);
  if (rc != code)
    fail_msg("expected %s, got %s: %s", hs_strerror(code), hs_strerror(rc), hs_gguf_last_error());
  if (part) assert_msg_has(hs_gguf_last_error(), part);
}

/* ---- a sample file with metadata and tensors ---- */

static const uint8_t arr_u8[] = {0, 1, 255};
static const int8_t arr_i8[] = {-128, 0, 127};
static const uint16_t arr_u16[] = {0, 1, 65535};
static const int16_t arr_i16[] = {-32768, -1, 32767};
static const uint32_t arr_u32[] = {0, 7, 0xffffffffu};
static const int32_t arr_i32[] = {INT32_MIN, -5, INT32_MAX};
static const float arr_f32[] = {-1.5f, 0.0f, 3.25e10f};
static const bool arr_bool[] = {true, false, true};
static const uint64_t arr_u64[] = {0, 1, UINT64_MAX};
static const int64_t arr_i64[] = {INT64_MIN, -1, INT64_MAX};
static const double arr_f64[] = {-2.5, 1e-300, 3.141592653589793};
static const char *const arr_strs[] = {"", "x", "yz\xc3\xa9"};

static void add_all_metadata(hs_gguf_writer *w) {
  assert_int_equal(hs_gguf_writer_add_u8(w, "u8", 255), 0);
  assert_int_equal(hs_gguf_writer_add_i8(w, "i8", -128), 0);
  assert_int_equal(hs_gguf_writer_add_u16(w, "u16", 65535), 0);
  assert_int_equal(hs_gguf_writer_add_i16(w, "i16", -32768), 0);
  assert_int_equal(hs_gguf_writer_add_u32(w, "u32", 0xfffffffeu), 0);
  assert_int_equal(hs_gguf_writer_add_i32(w, "i32", INT32_MIN), 0);
  assert_int_equal(hs_gguf_writer_add_f32(w, "f32", -1.5f), 0);
  assert_int_equal(hs_gguf_writer_add_bool(w, "bool.t", true), 0);
  assert_int_equal(hs_gguf_writer_add_bool(w, "bool.f", false), 0);
  assert_int_equal(hs_gguf_writer_add_str(w, "str", "hello", 5), 0);
  assert_int_equal(hs_gguf_writer_add_str(w, "str.empty", "", 0), 0);
  assert_int_equal(hs_gguf_writer_add_str(w, "str.nul", "a\0b", 3), 0);
  assert_int_equal(hs_gguf_writer_add_u64(w, "u64", UINT64_MAX), 0);
  assert_int_equal(hs_gguf_writer_add_i64(w, "i64", INT64_MIN), 0);
  assert_int_equal(hs_gguf_writer_add_f64(w, "f64", 3.141592653589793), 0);
  assert_int_equal(hs_gguf_writer_add_i64(w, "i64.small", -3), 0);
  assert_int_equal(hs_gguf_writer_add_arr(w, "a.u8", HS_GGUF_UINT8, arr_u8, 3), 0);
  assert_int_equal(hs_gguf_writer_add_arr(w, "a.i8", HS_GGUF_INT8, arr_i8, 3), 0);
  assert_int_equal(hs_gguf_writer_add_arr(w, "a.u16", HS_GGUF_UINT16, arr_u16, 3), 0);
  assert_int_equal(hs_gguf_writer_add_arr(w, "a.i16", HS_GGUF_INT16, arr_i16, 3), 0);
  assert_int_equal(hs_gguf_writer_add_arr(w, "a.u32", HS_GGUF_UINT32, arr_u32, 3), 0);
  assert_int_equal(hs_gguf_writer_add_arr(w, "a.i32", HS_GGUF_INT32, arr_i32, 3), 0);
  assert_int_equal(hs_gguf_writer_add_arr(w, "a.f32", HS_GGUF_FLOAT32, arr_f32, 3), 0);
  assert_int_equal(hs_gguf_writer_add_arr(w, "a.bool", HS_GGUF_BOOL, arr_bool, 3), 0);
  assert_int_equal(hs_gguf_writer_add_arr(w, "a.u64", HS_GGUF_UINT64, arr_u64, 3), 0);
  assert_int_equal(hs_gguf_writer_add_arr(w, "a.i64", HS_GGUF_INT64, arr_i64, 3), 0);
  assert_int_equal(hs_gguf_writer_add_arr(w, "a.f64", HS_GGUF_FLOAT64, arr_f64, 3), 0);
  assert_int_equal(hs_gguf_writer_add_arr_str(w, "a.str", arr_strs, NULL, 3), 0);
  assert_int_equal(hs_gguf_writer_add_arr(w, "a.empty", HS_GGUF_UINT32, NULL, 0), 0);
  assert_int_equal(hs_gguf_writer_add_arr_str(w, "a.str.empty", NULL, NULL, 0), 0);
}

/* The keys and types above, in order. */
static const struct {
  const char *key;
  int type;
} sample_keys[] = {
    {"u8", HS_GGUF_UINT8},        {"i8", HS_GGUF_INT8},        {"u16", HS_GGUF_UINT16},
    {"i16", HS_GGUF_INT16},       {"u32", HS_GGUF_UINT32},     {"i32", HS_GGUF_INT32},
    {"f32", HS_GGUF_FLOAT32},     {"bool.t", HS_GGUF_BOOL},    {"bool.f", HS_GGUF_BOOL},
    {"str", HS_GGUF_STRING},      {"str.empty", HS_GGUF_STRING}, {"str.nul", HS_GGUF_STRING},
    {"u64", HS_GGUF_UINT64},      {"i64", HS_GGUF_INT64},      {"f64", HS_GGUF_FLOAT64},
    {"i64.small", HS_GGUF_INT64}, {"a.u8", HS_GGUF_ARRAY},     {"a.i8", HS_GGUF_ARRAY},
    {"a.u16", HS_GGUF_ARRAY},     {"a.i16", HS_GGUF_ARRAY},    {"a.u32", HS_GGUF_ARRAY},
    {"a.i32", HS_GGUF_ARRAY},     {"a.f32", HS_GGUF_ARRAY},    {"a.bool", HS_GGUF_ARRAY},
    {"a.u64", HS_GGUF_ARRAY},     {"a.i64", HS_GGUF_ARRAY},    {"a.f64", HS_GGUF_ARRAY},
    {"a.str", HS_GGUF_ARRAY},     {"a.empty", HS_GGUF_ARRAY},  {"a.str.empty", HS_GGUF_ARRAY},
};
#define N_SAMPLE_KEYS (sizeof sample_keys / sizeof sample_keys[0])

/* Supported tensor types with a shape and their expected byte size, worked out by hand. */
static const struct {
  const char *name;
  uint32_t type, n_dims;
  uint64_t ne[4];
  size_t size;
} sample_tensors[] = {
    {"t.f32", HS_QUANT_F32, 2, {8, 3, 1, 1}, 96},     /* 24 * 4 */
    {"t.f16", HS_QUANT_F16, 2, {16, 2, 1, 1}, 64},    /* 32 * 2 */
    {"t.q4_0", HS_QUANT_Q4_0, 2, {64, 2, 1, 1}, 72},  /* 4 blocks * 18 */
    {"t.q8_0", HS_QUANT_Q8_0, 3, {32, 3, 1, 1}, 102}, /* 3 blocks * 34 */
    {"t.q4_K", HS_QUANT_Q4_K, 2, {256, 2, 1, 1}, 288}, /* 2 blocks * 144 */
    {"t.q6_K", HS_QUANT_Q6_K, 1, {512, 1, 1, 1}, 420}, /* 2 blocks * 210 */
    {"t.bf16", HS_QUANT_BF16, 4, {4, 2, 3, 2}, 96},   /* 48 * 2 */
};
#define N_SAMPLE_TENSORS (sizeof sample_tensors / sizeof sample_tensors[0])

static uint8_t tensor_data[N_SAMPLE_TENSORS][512];

static void add_all_tensors(hs_gguf_writer *w) {
  for (size_t i = 0; i < N_SAMPLE_TENSORS; i++) {
    for (size_t j = 0; j < sizeof tensor_data[i]; j++)
      tensor_data[i][j] = (uint8_t)(j * 7 + i * 31 + 1);
    assert_int_equal(hs_gguf_writer_add_tensor(w, sample_tensors[i].name,
                                               sample_tensors[i].n_dims, sample_tensors[i].ne,
                                               sample_tensors[i].type, tensor_data[i],
                                               sample_tensors[i].size),
                     0);
  }
}

/* A file with all metadata and tensors, in a buffer from hs_malloc. */
static void *sample_file(uint32_t align, size_t *size) {
  hs_gguf_writer *w;
  assert_int_equal(hs_gguf_writer_create(&w), 0);
  add_all_metadata(w);
  if (align) assert_int_equal(hs_gguf_writer_set_alignment(w, align), 0);
  add_all_tensors(w);
  void *buf;
  assert_int_equal(hs_gguf_writer_write_mem(w, &buf, size), 0);
  hs_gguf_writer_destroy(w);
  return buf;
}

/* A small file for the truncation and corruption loops: two keys, three tensors. */
static void *small_file(size_t *size) {
  hs_gguf_writer *w;
  assert_int_equal(hs_gguf_writer_create(&w), 0);
  assert_int_equal(hs_gguf_writer_add_str(w, "general.name", "tiny", 4), 0);
  const char *toks[] = {"a", "bc"};
  assert_int_equal(hs_gguf_writer_add_arr_str(w, "tok", toks, NULL, 2), 0);
  assert_int_equal(hs_gguf_writer_add_arr(w, "n", HS_GGUF_INT32, arr_i32, 3), 0);
  static uint8_t data[64];
  uint64_t ne1[1] = {8}, ne2[2] = {32, 1};
  assert_int_equal(hs_gguf_writer_add_tensor(w, "w", 1, ne1, HS_QUANT_F32, data, 32), 0);
  assert_int_equal(hs_gguf_writer_add_tensor(w, "q", 2, ne2, HS_QUANT_Q8_0, data, 34), 0);
  assert_int_equal(hs_gguf_writer_add_tensor(w, "h", 1, ne1, HS_QUANT_F16, data, 16), 0);
  void *buf;
  assert_int_equal(hs_gguf_writer_write_mem(w, &buf, size), 0);
  hs_gguf_writer_destroy(w);
  return buf;
}

/* ======================================================================================== */

static void test_type_helpers(void **state) {
  assert_string_equal(hs_gguf_type_name(HS_QUANT_Q4_K), "q4_K");
  assert_string_equal(hs_gguf_type_name(HS_QUANT_BF16), "bf16");
  assert_string_equal(hs_gguf_type_name(3), "q4_1");
  assert_string_equal(hs_gguf_type_name(1000), "unknown");
  static const uint32_t ids[] = {0, 1, 2, 8, 12, 14, 30};
  static const uint32_t elems[] = {1, 1, 32, 32, 256, 256, 1};
  static const uint32_t bytes[] = {4, 2, 18, 34, 144, 210, 2};
  for (size_t i = 0; i < 7; i++) {
    assert_int_equal(hs_gguf_type_block_elems(ids[i]), elems[i]);
    assert_int_equal(hs_gguf_type_block_bytes(ids[i]), bytes[i]);
  }
  assert_int_equal(hs_gguf_type_block_elems(16), 0); /* iq2_xxs: not read */
  assert_int_equal(hs_gguf_type_block_bytes(99), 0);
  assert_string_equal(hs_gguf_value_type_name(HS_GGUF_ARRAY), "array");
  assert_string_equal(hs_gguf_value_type_name(13), "unknown");
}

static void test_metadata_round_trip(void **state) {
  long live = live_blocks;
  size_t size;
  void *buf = sample_file(0, &size);
  hs_gguf *g;
  assert_int_equal(hs_gguf_open_mem(buf, size, "m", &g), 0);
  assert_int_equal(hs_gguf_version(g), 3);
  assert_int_equal(hs_gguf_alignment(g), 32);
  assert_int_equal(hs_gguf_kv_count(g), N_SAMPLE_KEYS);
  for (size_t i = 0; i < N_SAMPLE_KEYS; i++) {
    assert_string_equal(hs_gguf_kv_key(g, i), sample_keys[i].key);
    assert_int_equal(hs_gguf_kv_type(g, i), sample_keys[i].type);
  }
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
  assert_int_equal(hs_gguf_get_u8(g, "u8", &u8), 0);
  assert_int_equal(u8, 255);
  assert_int_equal(hs_gguf_get_i8(g, "i8", &i8), 0);
  assert_int_equal(i8, -128);
  assert_int_equal(hs_gguf_get_u16(g, "u16", &u16), 0);
  assert_int_equal(u16, 65535);
  assert_int_equal(hs_gguf_get_i16(g, "i16", &i16), 0);
  assert_int_equal(i16, -32768);
  assert_int_equal(hs_gguf_get_u32(g, "u32", &u32), 0);
  assert_true(u32 == 0xfffffffeu);
  assert_int_equal(hs_gguf_get_i32(g, "i32", &i32), 0);
  assert_true(i32 == INT32_MIN);
  assert_int_equal(hs_gguf_get_f32(g, "f32", &f), 0);
  assert_true(f == -1.5f);
  assert_int_equal(hs_gguf_get_bool(g, "bool.t", &b), 0);
  assert_true(b);
  assert_int_equal(hs_gguf_get_bool(g, "bool.f", &b), 0);
  assert_false(b);
  assert_int_equal(hs_gguf_get_str(g, "str", &s, &len), 0);
  assert_int_equal(len, 5);
  assert_string_equal(s, "hello");
  assert_int_equal(hs_gguf_get_str(g, "str.empty", &s, &len), 0);
  assert_int_equal(len, 0);
  assert_string_equal(s, "");
  assert_int_equal(hs_gguf_get_str(g, "str.nul", &s, &len), 0);
  assert_int_equal(len, 3);
  assert_memory_equal(s, "a\0b", 4);
  assert_int_equal(hs_gguf_get_u64(g, "u64", &u64), 0);
  assert_true(u64 == UINT64_MAX);
  assert_int_equal(hs_gguf_get_i64(g, "i64", &i64), 0);
  assert_true(i64 == INT64_MIN);
  assert_int_equal(hs_gguf_get_f64(g, "f64", &d), 0);
  assert_true(d == 3.141592653589793);
  assert_int_equal(hs_gguf_get_f64(g, "f32", &d), 0); /* f64 accepts a float32 */
  assert_true(d == -1.5);

  /* Arrays: element type, count, every element, the raw bytes. */
  static const struct {
    const char *key;
    hs_gguf_value_type et;
  } arrs[] = {{"a.u8", HS_GGUF_UINT8},   {"a.i8", HS_GGUF_INT8},   {"a.u16", HS_GGUF_UINT16},
              {"a.i16", HS_GGUF_INT16},  {"a.u32", HS_GGUF_UINT32}, {"a.i32", HS_GGUF_INT32},
              {"a.f32", HS_GGUF_FLOAT32}, {"a.bool", HS_GGUF_BOOL}, {"a.u64", HS_GGUF_UINT64},
              {"a.i64", HS_GGUF_INT64},  {"a.f64", HS_GGUF_FLOAT64}, {"a.str", HS_GGUF_STRING}};
  for (size_t i = 0; i < sizeof arrs / sizeof arrs[0]; i++) {
    hs_gguf_value_type et;
    uint64_t count;
    assert_int_equal(hs_gguf_get_arr(g, arrs[i].key, &et, &count), 0);
    assert_int_equal(et, arrs[i].et);
    assert_int_equal(count, 3);
  }
  static const int64_t want_i[][3] = {{0, 1, 255},       {-128, 0, 127},       {0, 1, 65535},
                                      {-32768, -1, 32767}, {0, 7, 0xffffffffll},
                                      {INT32_MIN, -5, INT32_MAX}};
  static const char *const int_keys[] = {"a.u8", "a.i8", "a.u16", "a.i16", "a.u32", "a.i32"};
  for (size_t k = 0; k < 6; k++)
    for (uint64_t j = 0; j < 3; j++) {
      assert_int_equal(hs_gguf_arr_int(g, int_keys[k], j, &i64), 0);
      assert_true(i64 == want_i[k][j]);
    }
  for (uint64_t j = 0; j < 3; j++) {
    assert_int_equal(hs_gguf_arr_uint(g, "a.u64", j, &u64), 0);
    assert_true(u64 == arr_u64[j]);
    assert_int_equal(hs_gguf_arr_int(g, "a.i64", j, &i64), 0);
    assert_true(i64 == arr_i64[j]);
    assert_int_equal(hs_gguf_arr_f64(g, "a.f32", j, &d), 0);
    assert_true(d == (double)arr_f32[j]);
    assert_int_equal(hs_gguf_arr_f64(g, "a.f64", j, &d), 0);
    assert_true(d == arr_f64[j]);
    assert_int_equal(hs_gguf_arr_bool(g, "a.bool", j, &b), 0);
    assert_true(b == arr_bool[j]);
    assert_int_equal(hs_gguf_arr_str(g, "a.str", j, &s, &len), 0);
    assert_int_equal(len, strlen(arr_strs[j]));
    assert_string_equal(s, arr_strs[j]);
  }
  /* Generic getters refuse what does not fit. */
  assert_int_equal(hs_gguf_arr_int(g, "a.u64", 2, &i64), HS_EINVAL);
  assert_msg_has(hs_gguf_last_error(), "does not fit");
  assert_int_equal(hs_gguf_arr_uint(g, "a.i8", 0, &u64), HS_EINVAL);
  assert_msg_has(hs_gguf_last_error(), "negative");
  assert_int_equal(hs_gguf_arr_uint(g, "a.i8", 2, &u64), 0);
  assert_int_equal(u64, 127);
  const void *raw;
  size_t esz;
  assert_int_equal(hs_gguf_arr_raw(g, "a.u16", &raw, &esz), 0);
  assert_int_equal(esz, 2);
  assert_memory_equal(raw, "\x00\x00\x01\x00\xff\xff", 6);
  assert_int_equal(hs_gguf_arr_raw(g, "a.str", &raw, &esz), HS_EINVAL);
  hs_gguf_value_type et;
  uint64_t count;
  assert_int_equal(hs_gguf_get_arr(g, "a.empty", &et, &count), 0);
  assert_int_equal(et, HS_GGUF_UINT32);
  assert_int_equal(count, 0);
  assert_int_equal(hs_gguf_arr_int(g, "a.empty", 0, &i64), HS_EINVAL);
  assert_msg_has(hs_gguf_last_error(), "out of range");
  assert_int_equal(hs_gguf_get_arr(g, "a.str.empty", &et, &count), 0);
  assert_int_equal(et, HS_GGUF_STRING);
  assert_int_equal(count, 0);
  assert_int_equal(hs_gguf_arr_str(g, "a.str", 3, &s, &len), HS_EINVAL);
  exercise(g);
  hs_gguf_close(g);
  hs_free(buf);
  assert_int_equal(live_blocks, live);
}

static void test_typed_lookup_errors(void **state) {
  size_t size;
  void *buf = sample_file(0, &size);
  hs_gguf *g;
  assert_int_equal(hs_gguf_open_mem(buf, size, "m.gguf", &g), 0);
  uint32_t u32;
  int32_t i32;
  int64_t i64;
  uint64_t u64;
  float f;
  bool b;
  const char *s;
  double d;
  /* Missing key: ENOENT, naming the key and the file. */
  assert_int_equal(hs_gguf_get_u32(g, "nope", &u32), HS_ENOENT);
  assert_msg_has(hs_gguf_last_error(), "'nope'");
  assert_msg_has(hs_gguf_last_error(), "m.gguf");
  assert_int_equal(hs_gguf_get_str(g, "nope", &s, NULL), HS_ENOENT);
  assert_int_equal(hs_gguf_get_arr(g, "nope", NULL, NULL), HS_ENOENT);
  size_t idx;
  assert_int_equal(hs_gguf_find_key(g, "nope", &idx), HS_ENOENT);
  /* Wrong type: EINVAL, naming both types. */
  assert_int_equal(hs_gguf_get_u32(g, "i32", &u32), HS_EINVAL);
  assert_msg_has(hs_gguf_last_error(), "'i32' is a int32, not uint32");
  assert_int_equal(hs_gguf_get_i32(g, "u32", &i32), HS_EINVAL);
  assert_int_equal(hs_gguf_get_f32(g, "f64", &f), HS_EINVAL);
  assert_int_equal(hs_gguf_get_f64(g, "u8", &d), HS_EINVAL);
  assert_int_equal(hs_gguf_get_bool(g, "u8", &b), HS_EINVAL);
  assert_int_equal(hs_gguf_get_str(g, "a.str", &s, NULL), HS_EINVAL);
  assert_msg_has(hs_gguf_last_error(), "array");
  assert_int_equal(hs_gguf_get_arr(g, "str", NULL, NULL), HS_EINVAL);
  assert_int_equal(hs_gguf_get_int(g, "str", &i64), HS_EINVAL);
  assert_int_equal(hs_gguf_get_int(g, "f32", &i64), HS_EINVAL);
  assert_int_equal(hs_gguf_get_int(g, "bool.t", &i64), HS_EINVAL);
  assert_int_equal(hs_gguf_arr_str(g, "a.u8", 0, &s, NULL), HS_EINVAL);
  assert_msg_has(hs_gguf_last_error(), "array of uint8, not of string");
  assert_int_equal(hs_gguf_arr_int(g, "a.str", 0, &i64), HS_EINVAL);
  assert_int_equal(hs_gguf_arr_f64(g, "a.i32", 0, &d), HS_EINVAL);
  assert_int_equal(hs_gguf_arr_bool(g, "a.u8", 0, &b), HS_EINVAL);
  /* The generic integer getters: any integer type that fits. */
  static const struct {
    const char *key;
    int64_t v;
  } ints[] = {{"u8", 255},        {"i8", -128},         {"u16", 65535},
              {"i16", -32768},    {"u32", 0xfffffffeLL}, {"i32", INT32_MIN},
              {"i64", INT64_MIN}, {"i64.small", -3}};
  for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
    assert_int_equal(hs_gguf_get_int(g, ints[i].key, &i64), 0);
    assert_true(i64 == ints[i].v);
  }
  assert_int_equal(hs_gguf_get_int(g, "u64", &i64), HS_EINVAL); /* UINT64_MAX */
  assert_msg_has(hs_gguf_last_error(), "does not fit");
  assert_int_equal(hs_gguf_get_uint(g, "u64", &u64), 0);
  assert_true(u64 == UINT64_MAX);
  assert_int_equal(hs_gguf_get_uint(g, "u32", &u64), 0);
  assert_true(u64 == 0xfffffffeu);
  assert_int_equal(hs_gguf_get_uint(g, "i64.small", &u64), HS_EINVAL);
  assert_msg_has(hs_gguf_last_error(), "negative");
  /* NULL arguments. */
  assert_int_equal(hs_gguf_get_u32(g, "u32", NULL), HS_EINVAL);
  assert_int_equal(hs_gguf_get_u32(NULL, "u32", &u32), HS_EINVAL);
  /* Tensor lookups. */
  const hs_gguf_tensor *t;
  assert_int_equal(hs_gguf_tensor_find(g, "t.q4_K", &t, NULL), 0);
  assert_string_equal(t->name, "t.q4_K");
  assert_int_equal(hs_gguf_tensor_find(g, "missing", &t, NULL), HS_ENOENT);
  assert_msg_has(hs_gguf_last_error(), "'missing'");
  hs_gguf_close(g);
  hs_free(buf);
}

static void check_tensors_at(uint32_t align) {
  long live = live_blocks;
  char path[300];
  tmp_path(path, sizeof path, "tensors.gguf");
  hs_gguf_writer *w;
  assert_int_equal(hs_gguf_writer_create(&w), 0);
  assert_int_equal(hs_gguf_writer_add_str(w, "general.architecture", "llama", 5), 0);
  if (align != 32) assert_int_equal(hs_gguf_writer_set_alignment(w, align), 0);
  add_all_tensors(w);
  assert_int_equal(hs_gguf_writer_write_file(w, path), 0);
  hs_gguf_writer_destroy(w);

  /* mapped, then read into memory (hs_gguf_open_copy): the same view of the file */
  for (int copy = 0; copy < 2; copy++) {
  hs_gguf *g;
  assert_int_equal(copy ? hs_gguf_open_copy(path, &g) : hs_gguf_open(path, &g), 0);
  assert_int_equal(hs_gguf_alignment(g), align);
  assert_int_equal(hs_gguf_data_offset(g) % align, 0);
  assert_int_equal(hs_gguf_tensor_count(g), N_SAMPLE_TENSORS);
  const uint8_t *base = NULL;
  uint64_t prev_end = 0;
  for (size_t i = 0; i < N_SAMPLE_TENSORS; i++) {
    const hs_gguf_tensor *t = hs_gguf_tensor_get(g, i);
    assert_non_null(t);
    assert_string_equal(t->name, sample_tensors[i].name);
    assert_int_equal(t->type, sample_tensors[i].type);
    assert_int_equal(t->n_dims, sample_tensors[i].n_dims);
    uint64_t n = 1;
    for (int d = 0; d < HS_GGUF_MAX_DIMS; d++) {
      assert_int_equal(t->ne[d], sample_tensors[i].ne[d]);
      n *= t->ne[d];
    }
    assert_int_equal(t->n_elements, n);
    assert_int_equal(t->size, sample_tensors[i].size);
    assert_int_equal((uintptr_t)t->data % align, 0); /* mapping and copy are page-aligned */
    assert_int_equal(t->offset % align, 0);
    assert_true(t->offset >= prev_end);
    prev_end = t->offset + t->size;
    if (!base) base = (const uint8_t *)t->data - t->offset;
    assert_ptr_equal(t->data, base + t->offset);
    assert_memory_equal(t->data, tensor_data[i], t->size);
    const hs_gguf_tensor *f;
    size_t idx;
    assert_int_equal(hs_gguf_tensor_find(g, sample_tensors[i].name, &f, &idx), 0);
    assert_ptr_equal(f, t);
    assert_int_equal(idx, i);
  }
  hs_gguf_close(g);
  }
  assert_int_equal(live_blocks, live);
}

static void test_tensors_align32(void **state) { check_tensors_at(32); }
static void test_tensors_align64(void **state) { check_tensors_at(64); }

static void test_tensors_mem_aligned_buffer(void **state) {
  size_t size;
  void *buf = sample_file(256, &size);
  void *al = aligned_alloc(256, (size + 255) / 256 * 256);
  assert_non_null(al);
  memcpy(al, buf, size);
  hs_gguf *g;
  assert_int_equal(hs_gguf_open_mem(al, size, NULL, &g), 0);
  assert_int_equal(hs_gguf_alignment(g), 256);
  for (size_t i = 0; i < hs_gguf_tensor_count(g); i++) {
    const hs_gguf_tensor *t = hs_gguf_tensor_get(g, i);
    assert_int_equal((uintptr_t)t->data % 256, 0);
    assert_memory_equal(t->data, tensor_data[i], t->size);
  }
  hs_gguf_close(g);
  free(al);
  hs_free(buf);
}

static void test_version(void **state) {
  size_t size;
  uint8_t *buf = sample_file(0, &size);
  buf[4] = 2; /* versions 2 and 3 share the layout */
  hs_gguf *g;
  assert_int_equal(hs_gguf_open_mem(buf, size, "v2", &g), 0);
  assert_int_equal(hs_gguf_version(g), 2);
  assert_int_equal(hs_gguf_tensor_count(g), N_SAMPLE_TENSORS);
  hs_gguf_close(g);
  buf[4] = 1;
  assert_int_equal(hs_gguf_open_mem(buf, size, "v1", &g), HS_EVERSION);
  assert_null(g);
  assert_msg_has(hs_gguf_last_error(), "unsupported GGUF version 1");
  buf[4] = 4;
  assert_int_equal(hs_gguf_open_mem(buf, size, "v4", &g), HS_EVERSION);
  assert_msg_has(hs_gguf_last_error(), "unsupported GGUF version 4");
  buf[4] = 3;
  buf[0] = 'X';
  assert_int_equal(hs_gguf_open_mem(buf, size, "magic", &g), HS_ECORRUPT);
  assert_msg_has(hs_gguf_last_error(), "bad magic");
  hs_free(buf);
}

static void test_every_truncation(void **state) {
  long live = live_blocks;
  size_t size;
  void *buf = small_file(&size);
  assert_int_equal(try_open(buf, size), 0);
  /* Every cut before the end of the last tensor's data fails; the trailing padding may go. */
  hs_gguf *g;
  assert_int_equal(hs_gguf_open_mem(buf, size, NULL, &g), 0);
  const hs_gguf_tensor *last = hs_gguf_tensor_get(g, hs_gguf_tensor_count(g) - 1);
  size_t end = (size_t)(hs_gguf_data_offset(g) + last->offset + last->size);
  hs_gguf_close(g);
  assert_true(end < size);
  for (size_t n = end; n < size; n++) assert_int_equal(try_open(buf, n), 0);
  int n_trunc_reading = 0;
  for (size_t n = 0; n < end; n++) {
    int rc = try_open(buf, n);
    if (rc != HS_ETRUNC && rc != HS_ECORRUPT)
      fail_msg("length %zu: %s: %s", n, hs_strerror(rc), hs_gguf_last_error());
    const char *msg = hs_gguf_last_error();
    if (strstr(msg, "truncated reading")) n_trunc_reading++;
    if (rc == HS_ETRUNC && !strstr(msg, "truncated reading") && !strstr(msg, "runs past the end"))
      fail_msg("length %zu: message does not say what was read: %s", n, msg);
    assert_msg_has(msg, "t.gguf");
  }
  /* A few specific messages name the field. */
  try_open(buf, 6);
  assert_msg_has(hs_gguf_last_error(), "truncated reading version at offset 4");
  assert_int_equal(try_open(buf, end - 1), HS_ETRUNC);
  assert_msg_has(hs_gguf_last_error(), "tensor 2 ('h'): data at offset 96 (16 bytes) runs past");
  assert_true(n_trunc_reading > 0);
  hs_free(buf);
  assert_int_equal(live_blocks, live);
}

static void test_single_byte_corruption(void **state) {
  long live = live_blocks;
  size_t size;
  uint8_t *buf = small_file(&size);
  hs_gguf *g;
  assert_int_equal(hs_gguf_open_mem(buf, size, NULL, &g), 0);
  size_t header = (size_t)hs_gguf_data_offset(g);
  hs_gguf_close(g);
  uint8_t *copy = malloc(size);
  assert_non_null(copy);
  int errors = 0, total = 0;
  static const int muts[] = {0x00, 0xff, -1, -2}; /* -1: xor 0x01, -2: xor 0x80 */
  for (size_t off = 0; off < header; off++)
    for (size_t m = 0; m < 4; m++) {
      memcpy(copy, buf, size);
      copy[off] = muts[m] >= 0 ? (uint8_t)muts[m] : (uint8_t)(copy[off] ^ (muts[m] == -1 ? 1 : 0x80));
      if (copy[off] == buf[off]) continue;
      total++;
      if (try_open(copy, size)) errors++;
    }
  assert_true(errors > total / 4);
  /* Counts: high bytes of the tensor and metadata counts. */
  memcpy(copy, buf, size);
  copy[15] = 0x40;
  assert_int_equal(try_open(copy, size), HS_ECORRUPT);
  assert_msg_has(hs_gguf_last_error(), "tensor count");
  memcpy(copy, buf, size);
  copy[23] = 0x40;
  assert_int_equal(try_open(copy, size), HS_ECORRUPT);
  assert_msg_has(hs_gguf_last_error(), "metadata count");
  /* The first key's length. */
  memcpy(copy, buf, size);
  copy[24 + 7] = 0x7f;
  assert_int_equal(try_open(copy, size), HS_ETRUNC);
  assert_msg_has(hs_gguf_last_error(), "key of metadata 0 at offset 24");
  free(copy);
  hs_free(buf);
  assert_int_equal(live_blocks, live);
}

/* ---- hand-made hostile files ---- */

static void test_tensor_layout_errors(void **state) {
  rb r;
  uint64_t ne8[1] = {8}, ne16[1] = {16};
  /* Past the end: needs 32 bytes, 16 present. */
  rb_header(&r, 3, 1, 0);
  rb_tensor(&r, "w", 1, ne8, HS_QUANT_F32, 0);
  rb_pad(&r, 32);
  rb_zeros(&r, 16);
  expect_err(&r, HS_ETRUNC, "tensor 0 ('w'): data at offset 0 (32 bytes) runs past the end");
  /* Offset past the end entirely. */
  rb_header(&r, 3, 1, 0);
  rb_tensor(&r, "w", 1, ne8, HS_QUANT_F32, (uint64_t)1 << 62);
  rb_pad(&r, 32);
  expect_err(&r, HS_ETRUNC, "runs past the end");
  /* Overlap, in file order. */
  rb_header(&r, 3, 2, 0);
  rb_tensor(&r, "a", 1, ne16, HS_QUANT_F32, 0);
  rb_tensor(&r, "b", 1, ne8, HS_QUANT_F32, 32);
  rb_pad(&r, 32);
  rb_zeros(&r, 128);
  expect_err(&r, HS_ECORRUPT, "overlap");
  assert_msg_has(hs_gguf_last_error(), "'a'");
  assert_msg_has(hs_gguf_last_error(), "'b'");
  /* Overlap, out of file order (the sorted path). */
  rb_header(&r, 3, 2, 0);
  rb_tensor(&r, "b", 1, ne8, HS_QUANT_F32, 32);
  rb_tensor(&r, "a", 1, ne16, HS_QUANT_F32, 0);
  rb_pad(&r, 32);
  rb_zeros(&r, 128);
  expect_err(&r, HS_ECORRUPT, "overlap");
  /* Out of order but disjoint: fine. */
  rb_header(&r, 3, 2, 0);
  rb_tensor(&r, "b", 1, ne8, HS_QUANT_F32, 32);
  rb_tensor(&r, "a", 1, ne8, HS_QUANT_F32, 0);
  rb_pad(&r, 32);
  rb_zeros(&r, 64);
  assert_int_equal(try_open(r.b, r.n), 0);
  /* Misaligned offset. */
  rb_header(&r, 3, 1, 0);
  rb_tensor(&r, "w", 1, ne8, HS_QUANT_F32, 4);
  rb_pad(&r, 32);
  rb_zeros(&r, 64);
  expect_err(&r, HS_ECORRUPT, "tensor 0 ('w'): offset 4 is not a multiple of the alignment 32");
  /* Misaligned for a 64-byte alignment from the metadata. */
  rb_header(&r, 3, 1, 1);
  rb_str(&r, "general.alignment");
  rb_le(&r, HS_GGUF_UINT32, 4);
  rb_le(&r, 64, 4);
  rb_tensor(&r, "w", 1, ne8, HS_QUANT_F32, 32);
  rb_pad(&r, 64);
  rb_zeros(&r, 128);
  expect_err(&r, HS_ECORRUPT, "not a multiple of the alignment 64");
  /* Unknown and unsupported types. */
  rb_header(&r, 3, 1, 0);
  rb_tensor(&r, "blk.0.ffn", 1, ne8, 16, 0);
  rb_pad(&r, 32);
  rb_zeros(&r, 64);
  expect_err(&r, HS_ECORRUPT, "tensor 0 ('blk.0.ffn'): unsupported tensor type 16 (iq2_xxs)");
  rb_header(&r, 3, 1, 0);
  rb_tensor(&r, "w", 1, ne8, 9999, 0);
  rb_pad(&r, 32);
  rb_zeros(&r, 64);
  expect_err(&r, HS_ECORRUPT, "unsupported tensor type 9999 (unknown)");
  /* ne[0] not a multiple of the block. */
  rb_header(&r, 3, 1, 0);
  rb_tensor(&r, "q", 1, ne16, HS_QUANT_Q8_0, 0);
  rb_pad(&r, 32);
  rb_zeros(&r, 64);
  expect_err(&r, HS_ECORRUPT, "ne[0] = 16 is not a multiple of the q8_0 block size 32");
  /* n_dims 0 and 5. */
  uint64_t ne5[5] = {1, 1, 1, 1, 1};
  for (uint32_t nd = 0; nd <= 5; nd += 5) {
    rb_header(&r, 3, 1, 0);
    rb_tensor(&r, "w", nd, ne5, HS_QUANT_F32, 0);
    rb_pad(&r, 32);
    rb_zeros(&r, 64);
    char want[64];
    snprintf(want, sizeof want, "n_dims %u is not in 1..4", nd);
    expect_err(&r, HS_ECORRUPT, want);
  }
  /* Element count overflow, and a dimension above INT64_MAX. */
  uint64_t big[2] = {(uint64_t)1 << 40, (uint64_t)1 << 40};
  rb_header(&r, 3, 1, 0);
  rb_tensor(&r, "w", 2, big, HS_QUANT_F32, 0);
  rb_pad(&r, 32);
  expect_err(&r, HS_ECORRUPT, "element count overflows");
  uint64_t huge[1] = {UINT64_MAX};
  rb_header(&r, 3, 1, 0);
  rb_tensor(&r, "w", 1, huge, HS_QUANT_F32, 0);
  rb_pad(&r, 32);
  expect_err(&r, HS_ECORRUPT, "out of range");
  /* F32 of 2^62 elements: the byte size overflows u64. */
  uint64_t many[1] = {(uint64_t)1 << 62};
  rb_header(&r, 3, 1, 0);
  rb_tensor(&r, "w", 1, many, HS_QUANT_F32, 0);
  rb_pad(&r, 32);
  expect_err(&r, HS_ECORRUPT, "byte size overflows");
  /* Duplicate tensor names. */
  rb_header(&r, 3, 2, 0);
  rb_tensor(&r, "w", 1, ne8, HS_QUANT_F32, 0);
  rb_tensor(&r, "w", 1, ne8, HS_QUANT_F32, 32);
  rb_pad(&r, 32);
  rb_zeros(&r, 64);
  expect_err(&r, HS_ECORRUPT, "duplicate name 'w'");
  /* Padding before the data section cut off. */
  rb_header(&r, 3, 1, 0);
  rb_tensor(&r, "w", 1, ne8, HS_QUANT_F32, 0);
  expect_err(&r, HS_ETRUNC, "padding to the alignment 32");
  /* No tensors and no padding: accepted (vocabulary-only files). */
  rb_header(&r, 3, 0, 1);
  rb_str(&r, "k");
  rb_le(&r, HS_GGUF_UINT8, 4);
  rb_le(&r, 1, 1);
  assert_int_equal(try_open(r.b, r.n), 0);
}

static void test_metadata_errors(void **state) {
  rb r;
  /* Absurd counts. */
  rb_header(&r, 3, 0, UINT64_MAX);
  rb_zeros(&r, 64);
  expect_err(&r, HS_ECORRUPT, "metadata count 18446744073709551615 is impossible");
  rb_header(&r, 3, (uint64_t)1 << 40, 0);
  rb_zeros(&r, 64);
  expect_err(&r, HS_ECORRUPT, "tensor count 1099511627776 is impossible");
  /* An absurd key length. */
  rb_header(&r, 3, 0, 1);
  rb_le(&r, UINT64_MAX, 8);
  rb_zeros(&r, 16);
  expect_err(&r, HS_ETRUNC, "key of metadata 0 at offset 24");
  /* An absurd string value length. */
  rb_header(&r, 3, 0, 1);
  rb_str(&r, "s");
  rb_le(&r, HS_GGUF_STRING, 4);
  rb_le(&r, (uint64_t)1 << 50, 8);
  rb_zeros(&r, 16);
  expect_err(&r, HS_ETRUNC, "string value of metadata 0 ('s')");
  /* Absurd array lengths, of numbers and of strings. */
  rb_header(&r, 3, 0, 1);
  rb_str(&r, "a");
  rb_le(&r, HS_GGUF_ARRAY, 4);
  rb_le(&r, HS_GGUF_UINT32, 4);
  rb_le(&r, (uint64_t)1 << 61, 8);
  rb_zeros(&r, 16);
  expect_err(&r, HS_ECORRUPT, "array of 2305843009213693952 uint32 values cannot fit");
  rb_header(&r, 3, 0, 1);
  rb_str(&r, "a");
  rb_le(&r, HS_GGUF_ARRAY, 4);
  rb_le(&r, HS_GGUF_STRING, 4);
  rb_le(&r, UINT64_MAX, 8);
  rb_zeros(&r, 16);
  expect_err(&r, HS_ECORRUPT, "strings cannot fit");
  /* A string element running past the end. */
  rb_header(&r, 3, 0, 1);
  rb_str(&r, "a");
  rb_le(&r, HS_GGUF_ARRAY, 4);
  rb_le(&r, HS_GGUF_STRING, 4);
  rb_le(&r, 2, 8);
  rb_str(&r, "x");
  rb_le(&r, 100, 8);
  rb_zeros(&r, 4);
  expect_err(&r, HS_ETRUNC, "string 1 of array metadata 0 ('a')");
  /* Nested arrays, unknown value and element types, bad bools. */
  rb_header(&r, 3, 0, 1);
  rb_str(&r, "nest");
  rb_le(&r, HS_GGUF_ARRAY, 4);
  rb_le(&r, HS_GGUF_ARRAY, 4);
  rb_le(&r, 0, 8);
  expect_err(&r, HS_ECORRUPT, "metadata 0 ('nest'): nested arrays are not supported");
  rb_header(&r, 3, 0, 1);
  rb_str(&r, "k");
  rb_le(&r, 13, 4);
  rb_zeros(&r, 8);
  expect_err(&r, HS_ECORRUPT, "metadata 0 ('k'): unknown value type 13");
  rb_header(&r, 3, 0, 1);
  rb_str(&r, "k");
  rb_le(&r, HS_GGUF_ARRAY, 4);
  rb_le(&r, 77, 4);
  rb_le(&r, 0, 8);
  expect_err(&r, HS_ECORRUPT, "unknown array element type 77");
  rb_header(&r, 3, 0, 1);
  rb_str(&r, "b");
  rb_le(&r, HS_GGUF_BOOL, 4);
  rb_le(&r, 2, 1);
  expect_err(&r, HS_ECORRUPT, "bool value 2 is not 0 or 1");
  rb_header(&r, 3, 0, 1);
  rb_str(&r, "b");
  rb_le(&r, HS_GGUF_ARRAY, 4);
  rb_le(&r, HS_GGUF_BOOL, 4);
  rb_le(&r, 2, 8);
  rb_le(&r, 1, 1);
  rb_le(&r, 5, 1);
  expect_err(&r, HS_ECORRUPT, "bool element 1 is 5");
  /* Alignment: not a power of two, zero, wrong type. */
  static const uint32_t bad_align[] = {48, 0};
  for (int i = 0; i < 2; i++) {
    rb_header(&r, 3, 0, 1);
    rb_str(&r, "general.alignment");
    rb_le(&r, HS_GGUF_UINT32, 4);
    rb_le(&r, bad_align[i], 4);
    expect_err(&r, HS_ECORRUPT, "is not a power of two");
  }
  rb_header(&r, 3, 0, 1);
  rb_str(&r, "general.alignment");
  rb_le(&r, HS_GGUF_UINT64, 4);
  rb_le(&r, 32, 8);
  expect_err(&r, HS_ECORRUPT, "general.alignment must be a uint32, not a uint64");
  /* Duplicate keys; a NUL inside a key. */
  rb_header(&r, 3, 0, 2);
  for (int i = 0; i < 2; i++) {
    rb_str(&r, "dup");
    rb_le(&r, HS_GGUF_UINT8, 4);
    rb_le(&r, 1, 1);
  }
  expect_err(&r, HS_ECORRUPT, "metadata 1: duplicate key 'dup'");
  rb_header(&r, 3, 0, 1);
  rb_le(&r, 3, 8);
  rb_bytes(&r, "a\0b", 3);
  rb_le(&r, HS_GGUF_UINT8, 4);
  rb_le(&r, 1, 1);
  expect_err(&r, HS_ECORRUPT, "key contains a NUL byte");
  /* A scalar cut short. */
  rb_header(&r, 3, 0, 1);
  rb_str(&r, "x");
  rb_le(&r, HS_GGUF_UINT64, 4);
  rb_le(&r, 1, 4);
  expect_err(&r, HS_ETRUNC, "uint64 value of metadata 0 ('x')");
}

static void test_open_errors(void **state) {
  char path[300];
  hs_gguf *g = (hs_gguf *)1;
  tmp_path(path, sizeof path, "does-not-exist.gguf");
  assert_int_equal(hs_gguf_open(path, &g), HS_ENOENT);
  assert_null(g);
  assert_msg_has(hs_gguf_last_error(), "does-not-exist.gguf");
  assert_int_equal(hs_gguf_open(tmpdir, &g), HS_EIO);
  tmp_path(path, sizeof path, "empty.gguf");
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  fclose(f);
  assert_int_equal(hs_gguf_open(path, &g), HS_ETRUNC);
  assert_msg_has(hs_gguf_last_error(), "truncated reading magic");
  assert_int_equal(hs_gguf_open_copy(path, &g), HS_ETRUNC);
  assert_null(g);
  tmp_path(path, sizeof path, "does-not-exist.gguf");
  assert_int_equal(hs_gguf_open_copy(path, &g), HS_ENOENT);
  assert_msg_has(hs_gguf_last_error(), "does-not-exist.gguf");
  assert_int_equal(hs_gguf_open_copy(tmpdir, &g), HS_EIO);
  assert_int_equal(hs_gguf_open_copy(NULL, &g), HS_EINVAL);
  assert_int_equal(hs_gguf_open(NULL, &g), HS_EINVAL);
  assert_int_equal(hs_gguf_open_mem(NULL, 4, NULL, &g), HS_EINVAL);
  hs_gguf_close(NULL);
  /* Writer to a path that cannot be created. */
  hs_gguf_writer *w;
  assert_int_equal(hs_gguf_writer_create(&w), 0);
  tmp_path(path, sizeof path, "no/such/dir.gguf");
  assert_int_equal(hs_gguf_writer_write_file(w, path), HS_EIO);
  assert_msg_has(hs_gguf_writer_last_error(), "cannot create");
  hs_gguf_writer_destroy(w);
}

static void test_writer_errors(void **state) {
  long live = live_blocks;
  hs_gguf_writer *w;
  assert_int_equal(hs_gguf_writer_create(&w), 0);
  assert_int_equal(hs_gguf_writer_add_u32(w, "k", 1), 0);
  assert_int_equal(hs_gguf_writer_add_str(w, "k", "x", 1), HS_EINVAL);
  assert_msg_has(hs_gguf_writer_last_error(), "duplicate key 'k'");
  assert_int_equal(hs_gguf_writer_set_alignment(w, 48), HS_EINVAL);
  assert_int_equal(hs_gguf_writer_add_u32(w, "general.alignment", 12), HS_EINVAL);
  assert_int_equal(hs_gguf_writer_add_u64(w, "general.alignment", 64), HS_EINVAL);
  assert_int_equal(hs_gguf_writer_add_arr(w, "a", HS_GGUF_STRING, arr_u8, 1), HS_EINVAL);
  assert_int_equal(hs_gguf_writer_add_arr(w, "a", HS_GGUF_ARRAY, arr_u8, 1), HS_EINVAL);
  static uint8_t data[64];
  uint64_t ne[2] = {8, 2};
  assert_int_equal(hs_gguf_writer_add_tensor(w, "t", 2, ne, HS_QUANT_F32, data, 60),
                   HS_EINVAL);
  assert_msg_has(hs_gguf_writer_last_error(), "takes 64");
  assert_int_equal(hs_gguf_writer_add_tensor(w, "t", 2, ne, 3, data, 64), HS_EINVAL);
  assert_int_equal(hs_gguf_writer_add_tensor(w, "t", 0, ne, HS_QUANT_F32, data, 64),
                   HS_EINVAL);
  assert_int_equal(hs_gguf_writer_add_tensor(w, "t", 2, ne, HS_QUANT_Q8_0, data, 64),
                   HS_EINVAL);
  assert_int_equal(hs_gguf_writer_add_tensor(w, "t", 2, ne, HS_QUANT_F32, data, 64), 0);
  assert_int_equal(hs_gguf_writer_add_tensor(w, "t", 2, ne, HS_QUANT_F32, data, 64),
                   HS_EINVAL);
  assert_msg_has(hs_gguf_writer_last_error(), "duplicate tensor name 't'");
  /* set_alignment twice: the second replaces the first, one key. */
  assert_int_equal(hs_gguf_writer_set_alignment(w, 64), 0);
  assert_int_equal(hs_gguf_writer_set_alignment(w, 128), 0);
  void *buf;
  size_t size;
  assert_int_equal(hs_gguf_writer_write_mem(w, &buf, &size), 0);
  hs_gguf_writer_destroy(w);
  hs_gguf *g;
  assert_int_equal(hs_gguf_open_mem(buf, size, NULL, &g), 0);
  assert_int_equal(hs_gguf_alignment(g), 128);
  assert_int_equal(hs_gguf_kv_count(g), 2);
  assert_int_equal(hs_gguf_data_offset(g) % 128, 0);
  assert_int_equal(size % 128, 0); /* the last tensor is padded too */
  hs_gguf_close(g);
  hs_free(buf);
  assert_int_equal(live_blocks, live);
}

static void test_out_of_memory_open(void **state) {
  char path[300];
  tmp_path(path, sizeof path, "oom.gguf");
  size_t size;
  void *buf = sample_file(64, &size);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(buf, 1, size, f), size);
  fclose(f);
  long live = live_blocks;
  for (int via_file = 0; via_file < 2; via_file++) {
    int failures = 0;
    for (long n = 1; n < 100; n++) {
      hs_gguf *g;
      hs_alloc_fail_after(n);
      int rc = via_file ? hs_gguf_open(path, &g) : hs_gguf_open_mem(buf, size, NULL, &g);
      hs_alloc_fail_after(0);
      if (rc == 0) {
        assert_int_equal(hs_gguf_tensor_count(g), N_SAMPLE_TENSORS);
        hs_gguf_close(g);
        break;
      }
      assert_int_equal(rc, HS_ENOMEM);
      assert_msg_has(hs_gguf_last_error(), "out of memory");
      assert_int_equal(live_blocks, live);
      failures++;
    }
    assert_true(failures >= 2); /* the object, the index, the overlap check */
    assert_int_equal(live_blocks, live);
  }
  hs_free(buf);
}

static void test_out_of_memory_writer(void **state) {
  long live = live_blocks;
  int failures = 0;
  for (long n = 1; n < 1000; n++) {
    hs_gguf_writer *w = NULL;
    void *buf = NULL;
    size_t size;
    hs_alloc_fail_after(n);
    int rc = hs_gguf_writer_create(&w);
    if (!rc) {
      static const char *const keys[] = {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k",
                                         "l", "m", "n", "o", "p", "q", "r", "s"};
      for (size_t i = 0; i < sizeof keys / sizeof keys[0] && !rc; i++)
        rc = hs_gguf_writer_add_u32(w, keys[i], (uint32_t)i);
      if (!rc) rc = hs_gguf_writer_add_arr_str(w, "strs", arr_strs, NULL, 3);
      if (!rc) rc = hs_gguf_writer_add_arr(w, "f64s", HS_GGUF_FLOAT64, arr_f64, 3);
      static uint8_t data[32];
      uint64_t ne[1] = {8};
      if (!rc) rc = hs_gguf_writer_add_tensor(w, "t", 1, ne, HS_QUANT_F32, data, 32);
      if (!rc) rc = hs_gguf_writer_write_mem(w, &buf, &size);
    }
    hs_alloc_fail_after(0);
    hs_gguf_writer_destroy(w);
    if (rc == 0) {
      hs_gguf *g;
      assert_int_equal(hs_gguf_open_mem(buf, size, NULL, &g), 0);
      assert_int_equal(hs_gguf_kv_count(g), 21);
      hs_gguf_close(g);
      hs_free(buf);
      break;
    }
    assert_int_equal(rc, HS_ENOMEM);
    failures++;
    assert_int_equal(live_blocks, live);
  }
  assert_true(failures >= 5);
  assert_int_equal(live_blocks, live);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_type_helpers),
      cmocka_unit_test(test_metadata_round_trip),
      cmocka_unit_test(test_typed_lookup_errors),
      cmocka_unit_test(test_tensors_align32),
      cmocka_unit_test(test_tensors_align64),
      cmocka_unit_test(test_tensors_mem_aligned_buffer),
      cmocka_unit_test(test_version),
      cmocka_unit_test(test_every_truncation),
      cmocka_unit_test(test_single_byte_corruption),
      cmocka_unit_test(test_tensor_layout_errors),
      cmocka_unit_test(test_metadata_errors),
      cmocka_unit_test(test_open_errors),
      cmocka_unit_test(test_writer_errors),
      cmocka_unit_test(test_out_of_memory_open),
      cmocka_unit_test(test_out_of_memory_writer),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
