/* hswarm/gguf.h: reading and writing GGUF files, llama.cpp's model format.
 *
 * File layout (all integers little-endian):
 *   magic             4 bytes "GGUF"
 *   version           u32, 2 or 3 (HS_EVERSION otherwise; version 1 had 32-bit counts)
 *   tensor_count      u64
 *   metadata_count    u64
 *   metadata_count times: key (str), value_type u32, value
 *   tensor_count times:   name (str), n_dims u32 (1..4), ne u64[n_dims], type u32, offset u64
 *   padding to the alignment, then the data section
 * A "str" is a u64 byte length followed by that many bytes, no terminator. A value is its type's
 * little-endian encoding; a BOOL is one byte (0 or 1); an ARRAY is elem_type u32, count u64 and
 * count elements (arrays of arrays are rejected). The alignment is the UINT32 metadata key
 * "general.alignment" (a power of two), HS_GGUF_DEFAULT_ALIGNMENT without it. A tensor's offset is
 * counted from the start of the data section and is a multiple of the alignment; ne[0] is the
 * innermost (contiguous) dimension and a multiple of its type's block.
 *
 * Reading. A file is mapped read-only (MAP_PRIVATE) and never copied; hs_gguf_open_mem reads a
 * caller's buffer in place. Everything is checked before it is used: every length against the
 * bytes left, every count against the bytes that could hold it, types, dimensions, alignment,
 * and that each tensor lies inside the data section without overlapping another. Keys and tensor
 * names must be unique. A bad file is HS_ETRUNC (it ends inside an item) or HS_ECORRUPT (a field
 * is out of range), with a message naming the field and its offset (hs_gguf_last_error). The
 * reader allocates in proportion to the file's header, never more than in proportion to its size.
 *
 * Lifetimes. Every pointer a reader returns (keys, strings, tensor records and their data) points
 * into memory owned by the hs_gguf object or into the mapping/buffer, and stays valid until
 * hs_gguf_close. Strings returned by the reader are NUL-terminated copies; string values may also
 * contain NUL bytes, so their length is returned too. A hs_gguf object is immutable after open:
 * any number of threads may read it at once (error messages are per thread).
 *
 * Writing. A hs_gguf_writer collects metadata and tensors in order and writes a version-3 file,
 * in memory or to a path; hs_gguf_open reads back exactly what was written. */
#ifndef HSWARM_GGUF_H
#define HSWARM_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hswarm/quant.h"

#ifdef __cplusplus
extern "C" {
#endif

#define HS_GGUF_MAGIC "GGUF"
#define HS_GGUF_VERSION 3u           /* the version the writer writes */
#define HS_GGUF_MAX_DIMS 4
#define HS_GGUF_DEFAULT_ALIGNMENT 32u
#define HS_GGUF_ALIGNMENT_KEY "general.alignment"

/* Metadata value types, as stored in the file. */
typedef enum hs_gguf_value_type {
  HS_GGUF_UINT8 = 0,
  HS_GGUF_INT8 = 1,
  HS_GGUF_UINT16 = 2,
  HS_GGUF_INT16 = 3,
  HS_GGUF_UINT32 = 4,
  HS_GGUF_INT32 = 5,
  HS_GGUF_FLOAT32 = 6,
  HS_GGUF_BOOL = 7,
  HS_GGUF_STRING = 8,
  HS_GGUF_ARRAY = 9,
  HS_GGUF_UINT64 = 10,
  HS_GGUF_INT64 = 11,
  HS_GGUF_FLOAT64 = 12
} hs_gguf_value_type;

/* Tensor types: ggml's ids, one enum for the whole engine (HS_QUANT_*, in hswarm/quant.h, with
 * their block layouts). */

/* ---- type helpers ---- */

/* ggml's name of a tensor type ("q4_K"); for an id this library does not read, still ggml's name
 * where it has one, else "unknown". Never NULL; static. */
const char *hs_gguf_type_name(uint32_t type);
/* Elements and bytes per block of a supported tensor type; 0 for any other id. */
uint32_t hs_gguf_type_block_elems(uint32_t type);
uint32_t hs_gguf_type_block_bytes(uint32_t type);
/* Name of a metadata value type ("uint32", "array"); "unknown" when out of range. Static. */
const char *hs_gguf_value_type_name(uint32_t type);

/* ---- reading ---- */

typedef struct hs_gguf hs_gguf;

/* One tensor of an open file. Owned by the hs_gguf object; valid until hs_gguf_close. */
typedef struct hs_gguf_tensor {
  const char *name;                /* NUL-terminated */
  uint32_t n_dims;                 /* 1..HS_GGUF_MAX_DIMS */
  uint64_t ne[HS_GGUF_MAX_DIMS];   /* ne[0] innermost; entries past n_dims are 1 */
  uint32_t type;                   /* ggml type id (HS_QUANT_*, hswarm/quant.h) */
  uint64_t n_elements;             /* product of ne; at most INT64_MAX */
  uint64_t offset;                 /* from the start of the data section; multiple of alignment */
  uint64_t size;                   /* bytes: n_elements / block elems * block bytes */
  const void *data;                /* size bytes inside the mapping or the caller's buffer */
} hs_gguf_tensor;

/* Maps the file at path read-only and checks it. On success *out owns the object (close it with
 * hs_gguf_close) and the mapping. Errors: HS_EINVAL (NULL argument), HS_ENOENT (no such file),
 * HS_EIO (cannot open, stat or map), HS_ECORRUPT, HS_ETRUNC, HS_EVERSION, HS_ENOMEM. */
int hs_gguf_open(const char *path, hs_gguf **out);
/* Same, but the file is read into private anonymous memory (transparent huge pages asked for)
 * instead of being mapped: faster to stream weights from, at the cost of the file's size in
 * private memory and of reading it all at open. Owned and closed as with hs_gguf_open. */
int hs_gguf_open_copy(const char *path, hs_gguf **out);
/* Same over size bytes at data, read in place, not copied: the caller keeps the buffer alive and
 * unchanged until hs_gguf_close. Tensor data pointers are aligned relative to data. name is used
 * in messages (NULL: "<memory>"); it is copied. */
int hs_gguf_open_mem(const void *data, size_t size, const char *name, hs_gguf **out);
/* Unmaps and frees. Every pointer obtained from g becomes invalid. NULL is ignored. */
void hs_gguf_close(hs_gguf *g);

/* The calling thread's last error message of this module ("m.gguf: tensor 3 ('blk.0.attn_q'):
 * offset 100 is not a multiple of the alignment 32"). Never NULL. */
const char *hs_gguf_last_error(void);

uint32_t hs_gguf_version(const hs_gguf *g);       /* 2 or 3 */
uint32_t hs_gguf_alignment(const hs_gguf *g);     /* power of two */
uint64_t hs_gguf_data_offset(const hs_gguf *g);   /* file offset of the data section */
uint64_t hs_gguf_file_size(const hs_gguf *g);

/* ---- metadata ---- */

/* Number of key/value pairs; they are numbered 0..count-1 in file order. */
size_t hs_gguf_kv_count(const hs_gguf *g);
/* Key of pair i, NUL-terminated, valid until close; NULL if i is out of range. */
const char *hs_gguf_kv_key(const hs_gguf *g, size_t i);
/* Value type of pair i (an hs_gguf_value_type), or -1 if i is out of range. */
int hs_gguf_kv_type(const hs_gguf *g, size_t i);
/* Index of key: 0 and *index set, or HS_ENOENT. */
int hs_gguf_find_key(const hs_gguf *g, const char *key, size_t *index);

/* Typed lookups by key. Each returns 0 and stores the value, HS_ENOENT when the key is missing,
 * HS_EINVAL when its value has another type (or, for the generic getters, does not fit), each
 * with a message naming the key. The exact getters accept only their own type: get_u32 only a
 * UINT32 and so on; get_f64 accepts FLOAT32 or FLOAT64. get_int and get_uint accept any integer
 * type (UINT8 .. INT64) whose value fits in the result. */
int hs_gguf_get_u8(const hs_gguf *g, const char *key, uint8_t *out);
int hs_gguf_get_i8(const hs_gguf *g, const char *key, int8_t *out);
int hs_gguf_get_u16(const hs_gguf *g, const char *key, uint16_t *out);
int hs_gguf_get_i16(const hs_gguf *g, const char *key, int16_t *out);
int hs_gguf_get_u32(const hs_gguf *g, const char *key, uint32_t *out);
int hs_gguf_get_i32(const hs_gguf *g, const char *key, int32_t *out);
int hs_gguf_get_u64(const hs_gguf *g, const char *key, uint64_t *out);
int hs_gguf_get_i64(const hs_gguf *g, const char *key, int64_t *out);
int hs_gguf_get_f32(const hs_gguf *g, const char *key, float *out);
int hs_gguf_get_f64(const hs_gguf *g, const char *key, double *out);
int hs_gguf_get_bool(const hs_gguf *g, const char *key, bool *out);
int hs_gguf_get_int(const hs_gguf *g, const char *key, int64_t *out);
int hs_gguf_get_uint(const hs_gguf *g, const char *key, uint64_t *out);
/* A STRING value: *s NUL-terminated (it may contain NULs; *len is its length without the
 * terminator; len may be NULL), valid until close. */
int hs_gguf_get_str(const hs_gguf *g, const char *key, const char **s, size_t *len);

/* Arrays. hs_gguf_get_arr: HS_EINVAL unless the value is an ARRAY; stores the element type and
 * count (either pointer may be NULL). The element getters return HS_EINVAL for an index out of
 * range or an element type they do not accept, as the scalar getters above: arr_int/arr_uint any
 * integer elements that fit, arr_f64 FLOAT32 or FLOAT64, arr_bool BOOL, arr_str STRING. */
int hs_gguf_get_arr(const hs_gguf *g, const char *key, hs_gguf_value_type *elem_type,
                    uint64_t *count);
int hs_gguf_arr_int(const hs_gguf *g, const char *key, uint64_t i, int64_t *out);
int hs_gguf_arr_uint(const hs_gguf *g, const char *key, uint64_t i, uint64_t *out);
int hs_gguf_arr_f64(const hs_gguf *g, const char *key, uint64_t i, double *out);
int hs_gguf_arr_bool(const hs_gguf *g, const char *key, uint64_t i, bool *out);
int hs_gguf_arr_str(const hs_gguf *g, const char *key, uint64_t i, const char **s, size_t *len);
/* The elements of a numeric or BOOL array as stored: count * elem_size little-endian bytes inside
 * the mapping, valid until close, NOT aligned to their type (copy with memcpy). HS_EINVAL for a
 * string array. */
int hs_gguf_arr_raw(const hs_gguf *g, const char *key, const void **data, size_t *elem_size);

/* ---- tensors ---- */

/* Number of tensors; they are numbered 0..count-1 in file order. */
size_t hs_gguf_tensor_count(const hs_gguf *g);
/* Tensor i, valid until close; NULL if i is out of range. */
const hs_gguf_tensor *hs_gguf_tensor_get(const hs_gguf *g, size_t i);
/* The tensor named name: 0 and *out set (valid until close), or HS_ENOENT with a message. index
 * may be NULL; otherwise it receives the tensor's number. */
int hs_gguf_tensor_find(const hs_gguf *g, const char *name, const hs_gguf_tensor **out,
                        size_t *index);

/* ---- writing ---- */

typedef struct hs_gguf_writer hs_gguf_writer;

/* A new, empty writer, owned by the caller (hs_gguf_writer_destroy). */
int hs_gguf_writer_create(hs_gguf_writer **out);
void hs_gguf_writer_destroy(hs_gguf_writer *w); /* NULL is ignored */

/* The calling thread's last error message of the writer. Never NULL. */
const char *hs_gguf_writer_last_error(void);

/* Metadata, written in the order added. key is copied; a key added twice is HS_EINVAL. Adding
 * "general.alignment" as a UINT32 sets the alignment (a power of two, else HS_EINVAL). */
int hs_gguf_writer_add_u8(hs_gguf_writer *w, const char *key, uint8_t v);
int hs_gguf_writer_add_i8(hs_gguf_writer *w, const char *key, int8_t v);
int hs_gguf_writer_add_u16(hs_gguf_writer *w, const char *key, uint16_t v);
int hs_gguf_writer_add_i16(hs_gguf_writer *w, const char *key, int16_t v);
int hs_gguf_writer_add_u32(hs_gguf_writer *w, const char *key, uint32_t v);
int hs_gguf_writer_add_i32(hs_gguf_writer *w, const char *key, int32_t v);
int hs_gguf_writer_add_u64(hs_gguf_writer *w, const char *key, uint64_t v);
int hs_gguf_writer_add_i64(hs_gguf_writer *w, const char *key, int64_t v);
int hs_gguf_writer_add_f32(hs_gguf_writer *w, const char *key, float v);
int hs_gguf_writer_add_f64(hs_gguf_writer *w, const char *key, double v);
int hs_gguf_writer_add_bool(hs_gguf_writer *w, const char *key, bool v);
/* A string of len bytes (may contain NULs), copied. */
int hs_gguf_writer_add_str(hs_gguf_writer *w, const char *key, const char *s, size_t len);
/* An array of count numbers or bools of elem_type, given as a C array of the matching type
 * (uint8_t .. double; bool for BOOL), copied. elem_type STRING or ARRAY is HS_EINVAL. */
int hs_gguf_writer_add_arr(hs_gguf_writer *w, const char *key, hs_gguf_value_type elem_type,
                           const void *elems, uint64_t count);
/* An array of count strings; lens[i] is the length of strs[i], or lens NULL for NUL-terminated
 * strings. Copied. */
int hs_gguf_writer_add_arr_str(hs_gguf_writer *w, const char *key, const char *const *strs,
                               const size_t *lens, uint64_t count);
/* Sets the alignment (a power of two): adds general.alignment, or replaces its value. */
int hs_gguf_writer_set_alignment(hs_gguf_writer *w, uint32_t alignment);

/* A tensor, written in the order added. name is copied; data (size bytes, which must equal the
 * type's size for ne) is NOT copied: it must stay valid and unchanged until the writer has
 * written it or is destroyed. Checks as the reader does: n_dims 1..4, a supported type, ne[0] a
 * multiple of the block, a unique name. */
int hs_gguf_writer_add_tensor(hs_gguf_writer *w, const char *name, uint32_t n_dims,
                              const uint64_t *ne, uint32_t type, const void *data, size_t size);

/* Writes the whole file into a new buffer from hs_malloc: *out (the caller frees it with hs_free)
 * and *size. The writer may be written again. */
int hs_gguf_writer_write_mem(const hs_gguf_writer *w, void **out, size_t *size);
/* Writes the whole file to path (created or truncated). HS_EIO with a message on failure. */
int hs_gguf_writer_write_file(const hs_gguf_writer *w, const char *path);

#ifdef __cplusplus
}
#endif
#endif
