/* test_eventlog.c: the event log and its checksums (src/core/eventlog.c).
 *
 * Round trips of every record type, many records across buffer flushes, every truncation and
 * every single-byte corruption of a small log, hand-made hostile records, I/O errors, and
 * out-of-memory on every allocation of the open paths, with a counting allocator to prove that
 * nothing leaks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "hswarm/alloc.h"
#include "hswarm/error.h"
#include "hswarm/eventlog.h"

#include "support/counting_alloc.h"

static int group_setup(void **state) {
  hs_alloc_set_hooks(&counting_hooks);
  return make_tmpdir("hs_eventlog");
}

static int group_teardown(void **state) {
  static const char *names[] = {"rt.log", "many.log", "small.log", "big.log", "oom.log",
                                "argv.log", "w.log", "pipe.log"};
  char path[512];
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    tmp_path(path, sizeof path, names[i]);
    unlink(path);
  }
  rmdir(tmpdir);
  hs_alloc_set_hooks(NULL);
  return 0;
}

/* ---- helpers ---- */

static uint8_t *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
  assert_non_null(buf);
  *len = fread(buf, 1, (size_t)n, f);
  assert_int_equal(*len, (size_t)n);
  fclose(f);
  return buf;
}

static void put32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static const char *const small_argv[] = {"--agents", "", "x y\tz"};

static hs_rec_header small_header(void) {
  hs_rec_header h;
  memset(&h, 0, sizeof h);
  h.seed = 42;
  h.mode = 1;
  h.mailbox_capacity = 64;
  h.arena_bytes = 1u << 20;
  h.agent_memory = 4u << 20;
  h.instruction_budget = 100000;
  h.team_memory = 1ull << 34;
  h.max_steps = 77;
  h.script_hash = hs_fnv1a64("print(1)", 8);
  h.script_path = "/abs/main.lua";
  h.script_path_len = 13;
  h.argc = 3;
  h.argv = small_argv;
  return h;
}

/* The records of the small test log, every type and both empty and non-empty strings. */
static size_t small_records(hs_record *recs) {
  size_t n = 0;
  memset(recs, 0, 8 * sizeof *recs);
  recs[n].type = HS_REC_SPAWN;
  recs[n++].u.spawn = (hs_rec_spawn){1, 1, 0, 1, 0, 0x1234};
  recs[n].type = HS_REC_DELIVER;
  recs[n++].u.deliver = (hs_rec_deliver){3, 5, 2, 7, 1, 0, 4, 0xabcdef};
  recs[n].type = HS_REC_OP;
  recs[n++].u.op = (hs_rec_op){4, 5, 1, 0, "timer", 5, "\x01\x00\x02", 3};
  recs[n].type = HS_REC_LOG;
  recs[n++].u.log = (hs_rec_log){5, 5, "hello\nworld", 11};
  recs[n].type = HS_REC_EXIT;
  recs[n++].u.exit = (hs_rec_exit){6, 5, HS_ESCRIPT, 9, 2, 77, "boom", 4};
  recs[n].type = HS_REC_END;
  recs[n++].u.end = (hs_rec_end){6, 1, 1, 1};
  return n;
}

/* Writes the small log to small.log and returns its bytes, with the offsets where each record
 * (header first) starts; offsets[count] is the file length. */
static uint8_t *small_log(size_t *len, size_t *offsets, size_t *count) {
  char path[512];
  tmp_path(path, sizeof path, "small.log");
  hs_rec_header h = small_header();
  hs_eventlog_writer *w;
  assert_int_equal(hs_eventlog_writer_open(path, &h, &w), 0);
  hs_record recs[8];
  size_t n = small_records(recs);
  for (size_t i = 0; i < n; i++) assert_int_equal(hs_eventlog_writer_append(w, &recs[i]), 0);
  assert_int_equal(hs_eventlog_writer_count(w), n + 1);
  assert_int_equal(hs_eventlog_writer_close(w), 0);
  uint8_t *buf = slurp(path, len);
  /* walk the frames */
  size_t off = 12, k = 0;
  while (off < *len) {
    offsets[k++] = off;
    uint32_t l = (uint32_t)buf[off] | (uint32_t)buf[off + 1] << 8 | (uint32_t)buf[off + 2] << 16 |
                 (uint32_t)buf[off + 3] << 24;
    off += 8 + l;
  }
  assert_int_equal(off, *len);
  offsets[k] = off;
  *count = k;
  assert_int_equal(k, n + 1);
  return buf;
}

static void assert_records_equal(const hs_record *a, const hs_record *b) {
  char da[1024], db[1024];
  assert_int_equal(a->type, b->type);
  assert_string_equal(hs_record_describe(a, da, sizeof da), hs_record_describe(b, db, sizeof db));
  switch (a->type) {
  case HS_REC_SPAWN: assert_memory_equal(&a->u.spawn, &b->u.spawn, sizeof a->u.spawn); break;
  case HS_REC_DELIVER:
    assert_true(a->u.deliver.step == b->u.deliver.step);
    assert_true(a->u.deliver.to == b->u.deliver.to);
    assert_true(a->u.deliver.from == b->u.deliver.from);
    assert_true(a->u.deliver.lamport == b->u.deliver.lamport);
    assert_true(a->u.deliver.seq == b->u.deliver.seq);
    assert_true(a->u.deliver.flags == b->u.deliver.flags);
    assert_true(a->u.deliver.len == b->u.deliver.len);
    assert_true(a->u.deliver.data_hash == b->u.deliver.data_hash);
    break;
  case HS_REC_OP:
    assert_true(a->u.op.step == b->u.op.step);
    assert_true(a->u.op.agent == b->u.op.agent);
    assert_true(a->u.op.op_seq == b->u.op.op_seq);
    assert_true(a->u.op.status == b->u.op.status);
    assert_int_equal(a->u.op.kind_len, b->u.op.kind_len);
    assert_int_equal(a->u.op.data_len, b->u.op.data_len);
    if (a->u.op.kind_len) assert_memory_equal(a->u.op.kind, b->u.op.kind, a->u.op.kind_len);
    if (a->u.op.data_len) assert_memory_equal(a->u.op.data, b->u.op.data, a->u.op.data_len);
    break;
  case HS_REC_EXIT:
    assert_true(a->u.exit.step == b->u.exit.step);
    assert_true(a->u.exit.agent == b->u.exit.agent);
    assert_true(a->u.exit.status == b->u.exit.status);
    assert_true(a->u.exit.lamport == b->u.exit.lamport);
    assert_true(a->u.exit.len == b->u.exit.len);
    assert_true(a->u.exit.data_hash == b->u.exit.data_hash);
    assert_int_equal(a->u.exit.message_len, b->u.exit.message_len);
    if (a->u.exit.message_len)
      assert_memory_equal(a->u.exit.message, b->u.exit.message, a->u.exit.message_len);
    break;
  case HS_REC_LOG:
    assert_true(a->u.log.step == b->u.log.step);
    assert_true(a->u.log.agent == b->u.log.agent);
    assert_int_equal(a->u.log.text_len, b->u.log.text_len);
    if (a->u.log.text_len) assert_memory_equal(a->u.log.text, b->u.log.text, a->u.log.text_len);
    break;
  case HS_REC_END: assert_memory_equal(&a->u.end, &b->u.end, sizeof a->u.end); break;
  default: fail_msg("unexpected record type %d", (int)a->type);
  }
}

/* The decoded strings of a record are NUL-terminated. */
static void assert_terminated(const hs_record *r) {
  switch (r->type) {
  case HS_REC_OP:
    assert_int_equal(r->u.op.kind[r->u.op.kind_len], 0);
    assert_int_equal(((const char *)r->u.op.data)[r->u.op.data_len], 0);
    break;
  case HS_REC_EXIT: assert_int_equal(r->u.exit.message[r->u.exit.message_len], 0); break;
  case HS_REC_LOG: assert_int_equal(r->u.log.text[r->u.log.text_len], 0); break;
  default: break;
  }
}

static void assert_header_equal(const hs_rec_header *a, const hs_rec_header *b) {
  assert_true(a->seed == b->seed);
  assert_int_equal(a->mode, b->mode);
  assert_int_equal(a->mailbox_capacity, b->mailbox_capacity);
  assert_true(a->arena_bytes == b->arena_bytes);
  assert_true(a->agent_memory == b->agent_memory);
  assert_true(a->instruction_budget == b->instruction_budget);
  assert_true(a->team_memory == b->team_memory);
  assert_true(a->max_steps == b->max_steps);
  assert_true(a->script_hash == b->script_hash);
  assert_int_equal(a->script_path_len, b->script_path_len);
  if (a->script_path_len) assert_memory_equal(a->script_path, b->script_path, a->script_path_len);
  assert_int_equal(b->script_path[b->script_path_len], 0);
  assert_int_equal(a->argc, b->argc);
  assert_non_null(b->argv);
  for (uint32_t i = 0; i < a->argc; i++) assert_string_equal(a->argv[i], b->argv[i]);
  assert_null(b->argv[b->argc]);
}

/* A frame with the given length field, type and body, and a correct CRC over type + body. */
static size_t make_frame(uint8_t *out, uint32_t len_field, uint8_t type, const uint8_t *body,
                         size_t body_len) {
  put32(out, len_field);
  out[4] = type;
  if (body_len) memcpy(out + 5, body, body_len);
  put32(out + 5 + body_len, hs_crc32(0, out + 4, body_len + 1));
  return body_len + 9;
}

/* ---- checksums ---- */

static uint32_t crc_bitwise(uint32_t crc, const uint8_t *p, size_t n) {
  crc = ~crc;
  while (n--) {
    crc ^= *p++;
    for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

static void test_crc32_vectors(void **state) {
  assert_int_equal(hs_crc32(0, "123456789", 9), 0xCBF43926u);
  assert_int_equal(hs_crc32(0, "", 0), 0);
  assert_int_equal(hs_crc32(0, "a", 1), 0xE8B7BE43u);
  assert_int_equal(hs_crc32(0, "The quick brown fox jumps over the lazy dog", 43), 0x414FA339u);
  /* continuation: crc(ab) = crc(crc(a), b) */
  assert_int_equal(hs_crc32(hs_crc32(0, "12345", 5), "6789", 4), 0xCBF43926u);
  /* the sliced loop against a bit-at-a-time reference, every length and alignment */
  uint8_t buf[300];
  for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)(i * 131u + 7u);
  for (size_t start = 0; start < 9; start++)
    for (size_t n = 0; n + start <= sizeof buf; n += 1 + n / 16)
      assert_int_equal(hs_crc32(0x1234u, buf + start, n), crc_bitwise(0x1234u, buf + start, n));
}

static void test_fnv1a64_vectors(void **state) {
  assert_true(hs_fnv1a64("", 0) == 0xcbf29ce484222325ull);
  assert_true(hs_fnv1a64(NULL, 0) == 0xcbf29ce484222325ull);
  assert_true(hs_fnv1a64("a", 1) == 0xaf63dc4c8601ec8cull);
  assert_true(hs_fnv1a64("foobar", 6) == 0x85944171f73967e8ull);
}

/* ---- round trips ---- */

static void test_roundtrip_all_types(void **state) {
  char path[512];
  tmp_path(path, sizeof path, "rt.log");
  long live = live_blocks;
  static const char *const argv[] = {"", "one", "two words", "\x01\xff"};
  hs_rec_header h = {UINT64_MAX, UINT32_MAX, UINT32_MAX, UINT64_MAX, UINT64_MAX,
                     UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX, "/a/b.lua",
                     8,          4,          argv};
  static const uint8_t blob[] = {0, 1, 2, 0xff, 0, '\n'};
  hs_record in[16];
  size_t n = 0;
  memset(in, 0, sizeof in);
  in[n].type = HS_REC_SPAWN;
  in[n++].u.spawn = (hs_rec_spawn){0, 1, 0, 0, 0, 0};
  in[n].type = HS_REC_SPAWN;
  in[n++].u.spawn = (hs_rec_spawn){UINT64_MAX, UINT32_MAX, UINT32_MAX, UINT32_MAX, 2, UINT64_MAX};
  in[n].type = HS_REC_DELIVER;
  in[n++].u.deliver = (hs_rec_deliver){0, 0, 0, 0, 0, 0, 0, 0};
  in[n].type = HS_REC_DELIVER;
  in[n++].u.deliver = (hs_rec_deliver){UINT64_MAX, UINT32_MAX, UINT32_MAX, UINT64_MAX,
                                        UINT64_MAX, UINT32_MAX, UINT32_MAX, UINT64_MAX};
  in[n].type = HS_REC_OP;
  in[n++].u.op = (hs_rec_op){7, 3, 9, INT32_MIN, "timer", 5, blob, sizeof blob};
  in[n].type = HS_REC_OP;
  in[n++].u.op = (hs_rec_op){UINT64_MAX, UINT32_MAX, UINT32_MAX, INT32_MAX, NULL, 0, NULL, 0};
  in[n].type = HS_REC_EXIT;
  in[n++].u.exit = (hs_rec_exit){8, 3, 0, 11, 0, hs_fnv1a64("", 0), "", 0};
  in[n].type = HS_REC_EXIT;
  in[n++].u.exit = (hs_rec_exit){UINT64_MAX, UINT32_MAX, HS_ELIMIT, UINT64_MAX, UINT32_MAX,
                                 UINT64_MAX, "out of \"memory\"", 15};
  in[n].type = HS_REC_LOG;
  in[n++].u.log = (hs_rec_log){9, 3, "", 0};
  in[n].type = HS_REC_LOG;
  in[n++].u.log = (hs_rec_log){UINT64_MAX, UINT32_MAX, "tab\there \x7f", 11};
  in[n].type = HS_REC_END;
  in[n++].u.end = (hs_rec_end){0, 0, 0, 0};
  in[n].type = HS_REC_END;
  in[n++].u.end = (hs_rec_end){UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX};

  hs_eventlog_writer *w;
  assert_int_equal(hs_eventlog_writer_open(path, &h, &w), 0);
  assert_int_equal(hs_eventlog_writer_count(w), 1);
  for (size_t i = 0; i < n; i++) assert_int_equal(hs_eventlog_writer_append(w, &in[i]), 0);
  assert_int_equal(hs_eventlog_writer_flush(w), 0);
  assert_int_equal(hs_eventlog_writer_count(w), n + 1);
  assert_int_equal(hs_eventlog_writer_close(w), 0);

  hs_eventlog_reader *r;
  hs_rec_header got;
  assert_int_equal(hs_eventlog_reader_open(path, &r, &got), 0);
  assert_header_equal(&h, &got);
  assert_int_equal(hs_eventlog_reader_index(r), 0);
  assert_int_equal(hs_eventlog_reader_offset(r), 12);
  uint64_t last_offset = 12;
  for (size_t i = 0; i < n; i++) {
    hs_record rec;
    assert_int_equal(hs_eventlog_reader_next(r, &rec), 1);
    assert_records_equal(&in[i], &rec);
    assert_terminated(&rec);
    assert_int_equal(hs_eventlog_reader_index(r), i + 1);
    assert_true(hs_eventlog_reader_offset(r) > last_offset);
    last_offset = hs_eventlog_reader_offset(r);
  }
  hs_record rec;
  assert_int_equal(hs_eventlog_reader_next(r, &rec), 0);
  assert_int_equal(hs_eventlog_reader_truncated(r), 0);
  assert_int_equal(hs_eventlog_reader_next(r, &rec), 0); /* the end stays the end */
  /* the header's strings stay valid until close */
  assert_string_equal(got.argv[2], "two words");
  assert_string_equal(got.script_path, "/a/b.lua");
  hs_eventlog_reader_close(r);
  assert_int_equal(live_blocks, live);

  /* the same bytes through open_mem */
  size_t len;
  uint8_t *bytes = slurp(path, &len);
  assert_int_equal(hs_eventlog_reader_open_mem(bytes, len, NULL, &r, &got), 0);
  memset(bytes, 0, len); /* the reader has its own copy */
  assert_header_equal(&h, &got);
  for (size_t i = 0; i < n; i++) {
    assert_int_equal(hs_eventlog_reader_next(r, &rec), 1);
    assert_records_equal(&in[i], &rec);
  }
  assert_int_equal(hs_eventlog_reader_next(r, &rec), 0);
  hs_eventlog_reader_close(r);
  free(bytes);
  assert_int_equal(live_blocks, live);
}

static void test_deliver_encoding(void **state) {
  /* The documented body layout, byte for byte. */
  size_t len, offsets[16], count;
  uint8_t *buf = small_log(&len, offsets, &count);
  const uint8_t *f = buf + offsets[2]; /* the deliver record */
  uint8_t want[57];
  uint8_t body[48];
  put64(body, 3);
  put32(body + 8, 5);
  put32(body + 12, 2);
  put64(body + 16, 7);
  put64(body + 24, 1);
  put32(body + 32, 0);
  put32(body + 36, 4);
  put64(body + 40, 0xabcdef);
  assert_int_equal(make_frame(want, 49, HS_REC_DELIVER, body, sizeof body), 57);
  assert_int_equal(offsets[3] - offsets[2], 57);
  assert_memory_equal(f, want, 57);
  assert_memory_equal(buf, "HSWLOG\r\n\x01\x00\x00\x00", 12);
  free(buf);
}

static void test_many_records(void **state) {
  char path[512];
  tmp_path(path, sizeof path, "many.log");
  long live = live_blocks;
  hs_rec_header h = small_header();
  hs_eventlog_writer *w;
  assert_int_equal(hs_eventlog_writer_open(path, &h, &w), 0);
  enum { N = 60000, BIG = 200000 };
  char *big = malloc(BIG);
  assert_non_null(big);
  for (size_t i = 0; i < BIG; i++) big[i] = (char)('a' + i % 26);
  for (uint32_t i = 0; i < N; i++) {
    hs_record rec;
    memset(&rec, 0, sizeof rec);
    if (i % 10000 == 5000) { /* a record bigger than the write buffer, now and then */
      rec.type = HS_REC_LOG;
      rec.u.log = (hs_rec_log){i, i, big, BIG - i / 10000};
    } else if (i % 7 == 3) {
      rec.type = HS_REC_LOG;
      rec.u.log = (hs_rec_log){i, i, big, i % 300};
    } else {
      rec.type = HS_REC_DELIVER;
      rec.u.deliver = (hs_rec_deliver){i, i + 1, i + 2, (uint64_t)i << 32, i, i & 1, i % 100,
                                       hs_fnv1a64(&i, sizeof i)};
    }
    assert_int_equal(hs_eventlog_writer_append(w, &rec), 0);
  }
  assert_int_equal(hs_eventlog_writer_count(w), N + 1);
  assert_int_equal(hs_eventlog_writer_close(w), 0);

  hs_eventlog_reader *r;
  assert_int_equal(hs_eventlog_reader_open(path, &r, NULL), 0);
  for (uint32_t i = 0; i < N; i++) {
    hs_record rec;
    assert_int_equal(hs_eventlog_reader_next(r, &rec), 1);
    if (i % 10000 == 5000) {
      assert_int_equal(rec.type, HS_REC_LOG);
      assert_int_equal(rec.u.log.text_len, BIG - i / 10000);
      assert_memory_equal(rec.u.log.text, big, rec.u.log.text_len);
    } else if (i % 7 == 3) {
      assert_int_equal(rec.type, HS_REC_LOG);
      assert_true(rec.u.log.step == i);
      assert_int_equal(rec.u.log.text_len, i % 300);
      if (i % 300) assert_memory_equal(rec.u.log.text, big, i % 300);
    } else {
      assert_int_equal(rec.type, HS_REC_DELIVER);
      assert_true(rec.u.deliver.step == i);
      assert_int_equal(rec.u.deliver.to, i + 1);
      assert_int_equal(rec.u.deliver.from, i + 2);
      assert_true(rec.u.deliver.lamport == (uint64_t)i << 32);
      assert_true(rec.u.deliver.seq == i);
      assert_int_equal(rec.u.deliver.flags, i & 1);
      assert_int_equal(rec.u.deliver.len, i % 100);
      assert_true(rec.u.deliver.data_hash == hs_fnv1a64(&i, sizeof i));
    }
  }
  hs_record rec;
  assert_int_equal(hs_eventlog_reader_next(r, &rec), 0);
  assert_int_equal(hs_eventlog_reader_truncated(r), 0);
  assert_int_equal(hs_eventlog_reader_index(r), N);
  hs_eventlog_reader_close(r);
  free(big);
  assert_int_equal(live_blocks, live);
}

static void test_big_header(void **state) {
  /* A header bigger than the write buffer takes the writer's other path. */
  char path[512];
  tmp_path(path, sizeof path, "argv.log");
  enum { ARGC = 1000, ALEN = 100 };
  char **argv = malloc(ARGC * sizeof *argv);
  assert_non_null(argv);
  for (int i = 0; i < ARGC; i++) {
    argv[i] = malloc(ALEN + 1);
    assert_non_null(argv[i]);
    memset(argv[i], 'A' + i % 26, ALEN);
    argv[i][ALEN] = 0;
  }
  hs_rec_header h = small_header();
  h.argc = ARGC;
  h.argv = (const char *const *)argv;
  hs_eventlog_writer *w;
  assert_int_equal(hs_eventlog_writer_open(path, &h, &w), 0);
  hs_record rec = {.type = HS_REC_END};
  assert_int_equal(hs_eventlog_writer_append(w, &rec), 0);
  assert_int_equal(hs_eventlog_writer_close(w), 0);
  hs_eventlog_reader *r;
  hs_rec_header got;
  assert_int_equal(hs_eventlog_reader_open(path, &r, &got), 0);
  assert_header_equal(&h, &got);
  assert_int_equal(hs_eventlog_reader_next(r, &rec), 1);
  assert_int_equal(rec.type, HS_REC_END);
  assert_int_equal(hs_eventlog_reader_next(r, &rec), 0);
  hs_eventlog_reader_close(r);
  for (int i = 0; i < ARGC; i++) free(argv[i]);
  free(argv);
}

static void test_read_from_pipe(void **state) {
  /* A file whose size fstat does not give is read in growing chunks. */
  char path[512], fifo[512];
  tmp_path(path, sizeof path, "big.log");
  tmp_path(fifo, sizeof fifo, "pipe.log");
  hs_rec_header h = small_header();
  hs_eventlog_writer *w;
  assert_int_equal(hs_eventlog_writer_open(path, &h, &w), 0);
  enum { TEXT = 300000 };
  char *text = malloc(TEXT);
  assert_non_null(text);
  for (size_t i = 0; i < TEXT; i++) text[i] = (char)(i * 7u);
  hs_record rec = {.type = HS_REC_LOG};
  rec.u.log = (hs_rec_log){1, 2, text, TEXT};
  assert_int_equal(hs_eventlog_writer_append(w, &rec), 0);
  assert_int_equal(hs_eventlog_writer_close(w), 0);
  size_t len;
  uint8_t *bytes = slurp(path, &len);
  unlink(fifo);
  assert_int_equal(mkfifo(fifo, 0600), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    FILE *f = fopen(fifo, "wb");
    size_t put = f ? fwrite(bytes, 1, len, f) : 0;
    if (f) fclose(f);
    _exit(put == len ? 0 : 1);
  }
  hs_eventlog_reader *r;
  int rc = hs_eventlog_reader_open(fifo, &r, NULL);
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  assert_int_equal(rc, 0);
  assert_int_equal(hs_eventlog_reader_next(r, &rec), 1);
  assert_int_equal(rec.u.log.text_len, TEXT);
  assert_memory_equal(rec.u.log.text, text, TEXT);
  assert_int_equal(hs_eventlog_reader_next(r, &rec), 0);
  assert_int_equal(hs_eventlog_reader_truncated(r), 0);
  hs_eventlog_reader_close(r);
  unlink(fifo);
  free(bytes);
  free(text);
}

/* ---- truncation and corruption ---- */

static void test_truncation_every_prefix(void **state) {
  size_t len, offsets[16], count;
  uint8_t *buf = small_log(&len, offsets, &count);
  long live = live_blocks;
  for (size_t cut = 0; cut <= len; cut++) {
    hs_eventlog_reader *r = NULL;
    hs_rec_header h;
    int rc = hs_eventlog_reader_open_mem(buf, cut, "cut.log", &r, &h);
    if (cut < offsets[1]) { /* shorter than preamble + header */
      assert_int_equal(rc, HS_ETRUNC);
      assert_null(r);
      assert_non_null(strstr(hs_eventlog_last_error(), "cut.log"));
      assert_non_null(strstr(hs_eventlog_last_error(), "truncated"));
      continue;
    }
    assert_int_equal(rc, 0);
    size_t whole = 0; /* records after the header that fit entirely in the prefix */
    while (whole + 1 < count && offsets[whole + 2] <= cut) whole++;
    hs_record rec;
    for (size_t i = 0; i < whole; i++) assert_int_equal(hs_eventlog_reader_next(r, &rec), 1);
    assert_int_equal(hs_eventlog_reader_next(r, &rec), 0);
    int partial = cut != offsets[whole + 1];
    assert_int_equal(hs_eventlog_reader_truncated(r), partial);
    if (partial) {
      char want[128];
      snprintf(want, sizeof want, "cut.log: record %zu at offset %zu: truncated", whole + 1,
               offsets[whole + 1]);
      assert_non_null(strstr(hs_eventlog_last_error(), want));
    }
    hs_eventlog_reader_close(r);
  }
  assert_int_equal(live_blocks, live);
  free(buf);
}

/* Reads a log to its end; returns the number of records that matched the originals, and via
 * *outcome: 0 clean end, 1 truncated end, or the negative error code. */
static size_t read_all(const uint8_t *buf, size_t len, const hs_record *orig, size_t norig,
                       int *outcome) {
  hs_eventlog_reader *r;
  int rc = hs_eventlog_reader_open_mem(buf, len, "flip.log", &r, NULL);
  if (rc < 0) {
    assert_true(hs_eventlog_last_error()[0] != 0);
    *outcome = rc;
    return 0;
  }
  size_t n = 0;
  hs_record rec;
  char da[1024], db[1024];
  while ((rc = hs_eventlog_reader_next(r, &rec)) == 1) {
    hs_record_describe(&rec, da, sizeof da); /* must not crash on anything decoded */
    if (n < norig && strcmp(da, hs_record_describe(&orig[n], db, sizeof db)) == 0) n++;
    else n = SIZE_MAX / 2; /* a silently different record */
  }
  *outcome = rc < 0 ? rc : hs_eventlog_reader_truncated(r);
  if (rc < 0) assert_non_null(strstr(hs_eventlog_last_error(), "flip.log: record "));
  hs_eventlog_reader_close(r);
  return n;
}

static void test_every_byte_flip(void **state) {
  size_t len, offsets[16], count;
  uint8_t *buf = small_log(&len, offsets, &count);
  hs_record orig[8];
  size_t norig = small_records(orig);
  uint8_t *copy = malloc(len);
  assert_non_null(copy);
  static const uint8_t masks[] = {0x01, 0x80, 0xff, 0x10};
  long live = live_blocks;
  for (size_t pos = 0; pos < len; pos++) {
    for (size_t m = 0; m < sizeof masks; m++) {
      memcpy(copy, buf, len);
      copy[pos] ^= masks[m];
      int outcome;
      size_t matched = read_all(copy, len, orig, norig, &outcome);
      if (pos < offsets[1]) { /* preamble or header: open fails */
        assert_true(outcome < 0);
        if (pos < 8) assert_int_equal(outcome, HS_ECORRUPT);
        else if (pos < 12) assert_int_equal(outcome, HS_EVERSION);
        continue;
      }
      /* the damaged record: every record before it reads back unchanged, then an error or a
       * truncation, never a clean end and never a different record */
      size_t k = 1;
      while (offsets[k + 1] <= pos) k++;
      assert_true(outcome == HS_ECORRUPT || outcome == 1);
      assert_int_equal(matched, k - 1);
    }
  }
  assert_int_equal(live_blocks, live);
  free(copy);
  free(buf);
}

static void test_bad_magic(void **state) {
  size_t len, offsets[16], count;
  uint8_t *buf = small_log(&len, offsets, &count);
  hs_eventlog_reader *r = (hs_eventlog_reader *)1;
  buf[0] = 'X';
  assert_int_equal(hs_eventlog_reader_open_mem(buf, len, "m.log", &r, NULL), HS_ECORRUPT);
  assert_null(r);
  assert_non_null(strstr(hs_eventlog_last_error(), "m.log: not an hswarm event log"));
  const char *text = "hello, this is not a log at all\n";
  assert_int_equal(hs_eventlog_reader_open_mem(text, strlen(text), "t.txt", &r, NULL), HS_ECORRUPT);
  assert_non_null(strstr(hs_eventlog_last_error(), "not an hswarm event log"));
  assert_int_equal(hs_eventlog_reader_open_mem("HSX", 3, "short", &r, NULL), HS_ECORRUPT);
  assert_int_equal(hs_eventlog_reader_open_mem("", 0, "empty", &r, NULL), HS_ETRUNC);
  assert_int_equal(hs_eventlog_reader_open_mem("HSWLOG\r\n\x01", 9, "p", &r, NULL), HS_ETRUNC);
  free(buf);
}

static void test_wrong_version(void **state) {
  size_t len, offsets[16], count;
  uint8_t *buf = small_log(&len, offsets, &count);
  hs_eventlog_reader *r;
  put32(buf + 8, 2);
  assert_int_equal(hs_eventlog_reader_open_mem(buf, len, "v.log", &r, NULL), HS_EVERSION);
  assert_non_null(strstr(hs_eventlog_last_error(), "v.log: event log version 2"));
  assert_non_null(strstr(hs_eventlog_last_error(), "reads version 1"));
  put32(buf + 8, 0);
  assert_int_equal(hs_eventlog_reader_open_mem(buf, len, "v.log", &r, NULL), HS_EVERSION);
  free(buf);
}

/* The small log's preamble and header, followed by the given frame. */
static uint8_t *with_frame(const uint8_t *frame, size_t frame_len, size_t *out_len) {
  size_t len, offsets[16], count;
  uint8_t *buf = small_log(&len, offsets, &count);
  uint8_t *out = malloc(offsets[1] + frame_len);
  assert_non_null(out);
  memcpy(out, buf, offsets[1]);
  memcpy(out + offsets[1], frame, frame_len);
  *out_len = offsets[1] + frame_len;
  free(buf);
  return out;
}

/* Opens buf (which must open) and expects its first record to fail with code and a message
 * containing each of the given strings. Checks that the error is sticky. */
static void expect_record_error(const uint8_t *buf, size_t len, int code, const char *s1,
                                const char *s2) {
  hs_eventlog_reader *r;
  assert_int_equal(hs_eventlog_reader_open_mem(buf, len, "bad.log", &r, NULL), 0);
  hs_record rec;
  assert_int_equal(hs_eventlog_reader_next(r, &rec), code);
  const char *msg = hs_eventlog_last_error();
  assert_non_null(strstr(msg, "bad.log: record 1 at offset "));
  if (s1 && !strstr(msg, s1)) fail_msg("'%s' lacks '%s'", msg, s1);
  if (s2 && !strstr(msg, s2)) fail_msg("'%s' lacks '%s'", msg, s2);
  char saved[512];
  snprintf(saved, sizeof saved, "%s", msg);
  assert_int_equal(hs_eventlog_reader_next(r, &rec), code);
  assert_string_equal(hs_eventlog_last_error(), saved);
  hs_eventlog_reader_close(r);
}

static void test_oversized_length(void **state) {
  uint8_t frame[64];
  size_t n, len;
  memset(frame, 0, sizeof frame);
  put32(frame, HS_EVENTLOG_MAX_RECORD + 1u);
  uint8_t *buf = with_frame(frame, sizeof frame, &len);
  expect_record_error(buf, len, HS_ECORRUPT, "exceeds the limit", "67108865");
  free(buf);
  put32(frame, UINT32_MAX);
  buf = with_frame(frame, sizeof frame, &len);
  expect_record_error(buf, len, HS_ECORRUPT, "exceeds the limit", NULL);
  free(buf);
  put32(frame, 0);
  buf = with_frame(frame, sizeof frame, &len);
  expect_record_error(buf, len, HS_ECORRUPT, "record length 0", NULL);
  free(buf);
  /* the limit itself is only a truncation when the file is shorter */
  put32(frame, HS_EVENTLOG_MAX_RECORD);
  buf = with_frame(frame, sizeof frame, &len);
  hs_eventlog_reader *r;
  hs_record rec;
  assert_int_equal(hs_eventlog_reader_open_mem(buf, len, "bad.log", &r, NULL), 0);
  assert_int_equal(hs_eventlog_reader_next(r, &rec), 0);
  assert_int_equal(hs_eventlog_reader_truncated(r), 1);
  hs_eventlog_reader_close(r);
  free(buf);
  /* an oversized header record */
  uint8_t pre[32] = "HSWLOG\r\n\x01\x00\x00\x00";
  put32(pre + 12, 0x80000000u);
  assert_int_equal(hs_eventlog_reader_open_mem(pre, sizeof pre, "h.log", &r, NULL), HS_ECORRUPT);
  assert_non_null(strstr(hs_eventlog_last_error(), "h.log: record 0 at offset 12"));
  (void)n;
}

static void test_checksum_message(void **state) {
  size_t len, offsets[16], count;
  uint8_t *buf = small_log(&len, offsets, &count);
  buf[offsets[3] + 6] ^= 0x40; /* the body of record 3 */
  hs_eventlog_reader *r;
  hs_record rec;
  assert_int_equal(hs_eventlog_reader_open_mem(buf, len, "log.bin", &r, NULL), 0);
  assert_int_equal(hs_eventlog_reader_next(r, &rec), 1);
  assert_int_equal(hs_eventlog_reader_next(r, &rec), 1);
  assert_int_equal(hs_eventlog_reader_next(r, &rec), HS_ECORRUPT);
  char want[128];
  snprintf(want, sizeof want, "log.bin: record 3 at offset %zu: checksum mismatch", offsets[3]);
  assert_string_equal(hs_eventlog_last_error(), want);
  assert_int_equal(hs_eventlog_reader_index(r), 2);
  hs_eventlog_reader_close(r);
  free(buf);
}

static void test_unknown_type(void **state) {
  uint8_t body[32] = {0}, frame[64];
  size_t len;
  size_t n = make_frame(frame, 33, 9, body, sizeof body);
  uint8_t *buf = with_frame(frame, n, &len);
  expect_record_error(buf, len, HS_ECORRUPT, "unknown record type 9", NULL);
  free(buf);
  n = make_frame(frame, 33, 0, body, sizeof body);
  buf = with_frame(frame, n, &len);
  expect_record_error(buf, len, HS_ECORRUPT, "unknown record type 0", NULL);
  free(buf);
}

static void test_bad_fields(void **state) {
  uint8_t body[128], frame[160];
  size_t n, len;
  uint8_t *buf;
  memset(body, 0, sizeof body);
  /* a deliver one byte short, and one byte long */
  n = make_frame(frame, 48, HS_REC_DELIVER, body, 47);
  buf = with_frame(frame, n, &len);
  expect_record_error(buf, len, HS_ECORRUPT, "deliver record", "'data_hash'");
  free(buf);
  n = make_frame(frame, 50, HS_REC_DELIVER, body, 49);
  buf = with_frame(frame, n, &len);
  expect_record_error(buf, len, HS_ECORRUPT, "deliver record", "1 bytes left over");
  free(buf);
  /* an empty body */
  n = make_frame(frame, 1, HS_REC_END, body, 0);
  buf = with_frame(frame, n, &len);
  expect_record_error(buf, len, HS_ECORRUPT, "end record", "'step'");
  free(buf);
  /* a log whose text length runs past the body */
  put64(body, 1);
  put32(body + 8, 2);
  put32(body + 12, 100);
  n = make_frame(frame, 1 + 16 + 10, HS_REC_LOG, body, 16 + 10);
  buf = with_frame(frame, n, &len);
  expect_record_error(buf, len, HS_ECORRUPT, "log record", "'text'");
  free(buf);
  put32(body + 12, UINT32_MAX);
  n = make_frame(frame, 1 + 16 + 10, HS_REC_LOG, body, 16 + 10);
  buf = with_frame(frame, n, &len);
  expect_record_error(buf, len, HS_ECORRUPT, "log record", "'text'");
  free(buf);
  /* an op whose data length is missing */
  memset(body, 0, sizeof body);
  put32(body + 20, 3);
  memcpy(body + 24, "abc", 3);
  n = make_frame(frame, 1 + 27, HS_REC_OP, body, 27);
  buf = with_frame(frame, n, &len);
  expect_record_error(buf, len, HS_ECORRUPT, "op record", "'data'");
  free(buf);
  /* an exit whose message is cut */
  memset(body, 0, sizeof body);
  put32(body + 36, 8);
  n = make_frame(frame, 1 + 44, HS_REC_EXIT, body, 44);
  buf = with_frame(frame, n, &len);
  expect_record_error(buf, len, HS_ECORRUPT, "exit record", "'message'");
  free(buf);
  /* a spawn short of its last field */
  n = make_frame(frame, 1 + 28, HS_REC_SPAWN, body, 28);
  buf = with_frame(frame, n, &len);
  expect_record_error(buf, len, HS_ECORRUPT, "spawn record", "'target_hash'");
  free(buf);
}

static void test_second_header(void **state) {
  size_t len, offsets[16], count;
  uint8_t *buf = small_log(&len, offsets, &count);
  size_t hlen = offsets[1] - 12;
  uint8_t *frame = malloc(hlen);
  assert_non_null(frame);
  memcpy(frame, buf + 12, hlen);
  size_t total;
  uint8_t *log = with_frame(frame, hlen, &total);
  expect_record_error(log, total, HS_ECORRUPT, "second header", NULL);
  free(log);
  free(frame);
  free(buf);
}

static void test_bad_header(void **state) {
  uint8_t file[256], body[128];
  hs_eventlog_reader *r;
  memcpy(file, "HSWLOG\r\n\x01\x00\x00\x00", 12);
  /* a first record that is not a header */
  memset(body, 0, sizeof body);
  size_t n = make_frame(file + 12, 33, HS_REC_END, body, 32);
  assert_int_equal(hs_eventlog_reader_open_mem(file, 12 + n, "h.log", &r, NULL), HS_ECORRUPT);
  assert_non_null(strstr(hs_eventlog_last_error(), "not a header"));
  /* a header claiming a billion arguments in a few bytes (body: 64 bytes of integers, the
   * script path's length at 64, argc at 68, arguments from 72) */
  put32(body + 64, 0);
  put32(body + 68, 1000000000);
  n = make_frame(file + 12, 1 + 72 + 8, HS_REC_HEADER, body, 72 + 8);
  long live = live_blocks;
  assert_int_equal(hs_eventlog_reader_open_mem(file, 12 + n, "h.log", &r, NULL), HS_ECORRUPT);
  assert_non_null(strstr(hs_eventlog_last_error(), "argc 1000000000"));
  assert_int_equal(live_blocks, live);
  /* two arguments announced, one whole, the other cut */
  put32(body + 68, 2);
  put32(body + 72, 1);
  body[76] = 'x';
  put32(body + 77, 5);
  n = make_frame(file + 12, 1 + 72 + 9, HS_REC_HEADER, body, 72 + 9);
  assert_int_equal(hs_eventlog_reader_open_mem(file, 12 + n, "h.log", &r, NULL), HS_ECORRUPT);
  assert_non_null(strstr(hs_eventlog_last_error(), "header record: field 'argv'"));
  /* two announced, one present */
  n = make_frame(file + 12, 1 + 72 + 5, HS_REC_HEADER, body, 72 + 5);
  assert_int_equal(hs_eventlog_reader_open_mem(file, 12 + n, "h.log", &r, NULL), HS_ECORRUPT);
  assert_non_null(strstr(hs_eventlog_last_error(), "argc 2"));
  assert_int_equal(live_blocks, live);
  /* the same, whole: it opens */
  put32(body + 77, 0);
  n = make_frame(file + 12, 1 + 72 + 9, HS_REC_HEADER, body, 72 + 9);
  hs_rec_header h;
  assert_int_equal(hs_eventlog_reader_open_mem(file, 12 + n, "h.log", &r, &h), 0);
  assert_int_equal(h.argc, 2);
  assert_string_equal(h.argv[0], "x");
  assert_string_equal(h.argv[1], "");
  assert_null(h.argv[2]);
  assert_int_equal(h.script_path_len, 0);
  assert_string_equal(h.script_path, "");
  hs_eventlog_reader_close(r);
  /* just the preamble */
  assert_int_equal(hs_eventlog_reader_open_mem(file, 12, "h.log", &r, NULL), HS_ETRUNC);
  assert_non_null(strstr(hs_eventlog_last_error(), "no header"));
}

/* ---- errors of the API ---- */

static void test_writer_io_error(void **state) {
  hs_rec_header h = small_header();
  hs_eventlog_writer *w = (hs_eventlog_writer *)1;
  const char *path = "/nonexistent-hswarm-dir/sub/x.log";
  assert_int_equal(hs_eventlog_writer_open(path, &h, &w), HS_EIO);
  assert_null(w);
  assert_non_null(strstr(hs_eventlog_last_error(), path));
  assert_non_null(strstr(hs_eventlog_last_error(), "No such file or directory"));
  /* a device where every write fails */
  if (access("/dev/full", W_OK) == 0) {
    assert_int_equal(hs_eventlog_writer_open("/dev/full", &h, &w), HS_EIO);
    assert_non_null(strstr(hs_eventlog_last_error(), "/dev/full: write failed"));
    assert_int_equal(access("/dev/full", F_OK), 0);
  }
  hs_eventlog_reader *r = (hs_eventlog_reader *)1;
  assert_int_equal(hs_eventlog_reader_open("/nonexistent-hswarm-dir/x.log", &r, NULL), HS_ENOENT);
  assert_null(r);
  assert_non_null(strstr(hs_eventlog_last_error(), "/nonexistent-hswarm-dir/x.log"));
  assert_int_equal(hs_eventlog_reader_open(tmpdir, &r, NULL), HS_EIO); /* a directory */
  assert_non_null(strstr(hs_eventlog_last_error(), tmpdir));
}

static void test_writer_bad_records(void **state) {
  char path[512];
  tmp_path(path, sizeof path, "w.log");
  hs_rec_header h = small_header();
  hs_eventlog_writer *w;
  h.script_path = NULL;
  assert_int_equal(hs_eventlog_writer_open(path, &h, &w), HS_EINVAL);
  h = small_header();
  h.argv = NULL;
  assert_int_equal(hs_eventlog_writer_open(path, &h, &w), HS_EINVAL);
  static const char *const holes[] = {"a", NULL};
  h.argc = 2;
  h.argv = holes;
  assert_int_equal(hs_eventlog_writer_open(path, &h, &w), HS_EINVAL);
  assert_non_null(strstr(hs_eventlog_last_error(), "argv[1] is NULL"));
  h = small_header();
  assert_int_equal(hs_eventlog_writer_open(path, &h, &w), 0);
  hs_record rec;
  memset(&rec, 0, sizeof rec);
  rec.type = HS_REC_HEADER;
  rec.u.header = h;
  assert_int_equal(hs_eventlog_writer_append(w, &rec), HS_EINVAL);
  rec.type = (hs_rec_type)42;
  assert_int_equal(hs_eventlog_writer_append(w, &rec), HS_EINVAL);
  assert_non_null(strstr(hs_eventlog_last_error(), "unknown type 42"));
  memset(&rec, 0, sizeof rec);
  rec.type = HS_REC_LOG;
  rec.u.log.text_len = 3;
  assert_int_equal(hs_eventlog_writer_append(w, &rec), HS_EINVAL);
  rec.u.log.text = "x"; /* never read: the size is checked first */
  rec.u.log.text_len = HS_EVENTLOG_MAX_RECORD;
  assert_int_equal(hs_eventlog_writer_append(w, &rec), HS_EINVAL);
  assert_non_null(strstr(hs_eventlog_last_error(), "exceeds the limit"));
  rec.type = HS_REC_OP;
  memset(&rec.u, 0, sizeof rec.u);
  rec.u.op.data_len = 1;
  assert_int_equal(hs_eventlog_writer_append(w, &rec), HS_EINVAL);
  assert_int_equal(hs_eventlog_writer_count(w), 1);
  assert_int_equal(hs_eventlog_writer_close(w), 0);
  assert_int_equal(hs_eventlog_writer_close(NULL), 0);
  /* the log holds just its header */
  hs_eventlog_reader *r;
  assert_int_equal(hs_eventlog_reader_open(path, &r, NULL), 0);
  assert_int_equal(hs_eventlog_reader_next(r, &rec), 0);
  assert_int_equal(hs_eventlog_reader_truncated(r), 0);
  hs_eventlog_reader_close(r);
  hs_eventlog_reader_close(NULL);
}

static void test_out_of_memory(void **state) {
  char path[512];
  tmp_path(path, sizeof path, "oom.log");
  hs_rec_header h = small_header();
  long live = live_blocks;
  int fails = 0;
  /* writer open */
  for (long n = 1;; n++) {
    hs_eventlog_writer *w = NULL;
    hs_alloc_fail_after(n);
    int rc = hs_eventlog_writer_open(path, &h, &w);
    hs_alloc_fail_after(0);
    if (rc == 0) {
      hs_record rec = {.type = HS_REC_END};
      assert_int_equal(hs_eventlog_writer_append(w, &rec), 0);
      assert_int_equal(hs_eventlog_writer_close(w), 0);
      break;
    }
    assert_int_equal(rc, HS_ENOMEM);
    assert_null(w);
    assert_int_equal(live_blocks, live);
    fails++;
  }
  assert_true(fails >= 2);
  /* reader open, from a file and from memory */
  size_t len;
  uint8_t *bytes = slurp(path, &len);
  for (int mem = 0; mem < 2; mem++) {
    fails = 0;
    for (long n = 1;; n++) {
      hs_eventlog_reader *r = NULL;
      hs_rec_header got;
      hs_alloc_fail_after(n);
      int rc = mem ? hs_eventlog_reader_open_mem(bytes, len, "oom", &r, &got)
                   : hs_eventlog_reader_open(path, &r, &got);
      hs_alloc_fail_after(0);
      if (rc == 0) {
        assert_header_equal(&h, &got);
        hs_record rec;
        assert_int_equal(hs_eventlog_reader_next(r, &rec), 1);
        assert_int_equal(hs_eventlog_reader_next(r, &rec), 0);
        hs_eventlog_reader_close(r);
        break;
      }
      assert_int_equal(rc, HS_ENOMEM);
      assert_null(r);
      assert_int_equal(live_blocks, live);
      fails++;
    }
    assert_true(fails >= 4);
  }
  free(bytes);
  /* a record bigger than the write buffer needs a temporary frame */
  hs_eventlog_writer *w;
  assert_int_equal(hs_eventlog_writer_open(path, &h, &w), 0);
  char *big = calloc(1, 100000);
  assert_non_null(big);
  hs_record rec = {.type = HS_REC_LOG};
  rec.u.log = (hs_rec_log){1, 1, big, 100000};
  hs_alloc_fail_after(1);
  assert_int_equal(hs_eventlog_writer_append(w, &rec), HS_ENOMEM);
  hs_alloc_fail_after(0);
  assert_int_equal(hs_eventlog_writer_append(w, &rec), 0);
  assert_int_equal(hs_eventlog_writer_count(w), 2);
  assert_int_equal(hs_eventlog_writer_close(w), 0);
  free(big);
  assert_int_equal(live_blocks, live);
}

/* ---- describing ---- */

static void test_describe(void **state) {
  char buf[512];
  hs_record rec;
  memset(&rec, 0, sizeof rec);
  rec.type = HS_REC_DELIVER;
  rec.u.deliver = (hs_rec_deliver){3, 5, 2, 7, 1, 0, 4, 0xabc};
  assert_string_equal(hs_record_describe(&rec, buf, sizeof buf),
                      "deliver step=3 to=5 from=2 lamport=7 seq=1 flags=0 len=4 "
                      "hash=0000000000000abc");
  rec.type = HS_REC_LOG;
  rec.u.log = (hs_rec_log){9, 4, "a\"b\\c\n\x01\xff", 8};
  assert_string_equal(hs_record_describe(&rec, buf, sizeof buf),
                      "log step=9 agent=4 text=\"a\\\"b\\\\c\\n\\x01\\xff\"");
  char longtext[300];
  memset(longtext, 'z', sizeof longtext);
  rec.u.log = (hs_rec_log){1, 2, longtext, sizeof longtext};
  hs_record_describe(&rec, buf, sizeof buf);
  assert_non_null(strstr(buf, "zzz\"..."));
  assert_true(strlen(buf) < 120);
  rec.type = HS_REC_OP;
  rec.u.op = (hs_rec_op){1, 2, 3, -5, "timer", 5, "\x00\x01", 2};
  assert_string_equal(hs_record_describe(&rec, buf, sizeof buf),
                      "op step=1 agent=2 op_seq=3 status=-5 kind=\"timer\" data_len=2 "
                      "data=\"\\x00\\x01\"");
  rec.type = HS_REC_EXIT;
  rec.u.exit = (hs_rec_exit){1, 2, -11, 4, 5, 6, "bad", 3};
  assert_string_equal(hs_record_describe(&rec, buf, sizeof buf),
                      "exit step=1 agent=2 status=-11 lamport=4 len=5 hash=0000000000000006 "
                      "message=\"bad\"");
  rec.type = HS_REC_SPAWN;
  rec.u.spawn = (hs_rec_spawn){1, 2, 3, 4, 1, 0xff};
  assert_string_equal(hs_record_describe(&rec, buf, sizeof buf),
                      "spawn step=1 agent=2 parent=3 team=4 kind=1 target_hash=00000000000000ff");
  rec.type = HS_REC_END;
  rec.u.end = (hs_rec_end){10, 2, 3, 1};
  assert_string_equal(hs_record_describe(&rec, buf, sizeof buf),
                      "end step=10 agents=2 messages=3 failed=1");
  rec.type = HS_REC_HEADER;
  rec.u.header = small_header();
  hs_record_describe(&rec, buf, sizeof buf);
  assert_non_null(strstr(buf, "header seed=42 mode=1"));
  assert_non_null(strstr(buf, "argv[2]=\"x y\\tz\""));
  rec.type = (hs_rec_type)99;
  assert_string_equal(hs_record_describe(&rec, buf, sizeof buf), "unknown type=99");
  /* small buffers: cut, terminated, never overrun */
  rec.type = HS_REC_DELIVER;
  rec.u.deliver = (hs_rec_deliver){3, 5, 2, 7, 1, 0, 4, 0xabc};
  char small[12];
  memset(small, 'X', sizeof small);
  hs_record_describe(&rec, small, 8);
  assert_string_equal(small, "deliver");
  assert_int_equal(small[8], 'X');
  rec.type = HS_REC_LOG;
  rec.u.log = (hs_rec_log){1, 2, "\x01\x02\x03\x04", 4};
  for (size_t size = 1; size <= sizeof small; size++) {
    memset(small, 'X', sizeof small);
    hs_record_describe(&rec, small, size);
    assert_int_equal(strlen(small), size - 1);
    if (size < sizeof small) assert_int_equal(small[size], 'X');
  }
  assert_ptr_equal(hs_record_describe(&rec, small, 0), small);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_crc32_vectors),
      cmocka_unit_test(test_fnv1a64_vectors),
      cmocka_unit_test(test_roundtrip_all_types),
      cmocka_unit_test(test_deliver_encoding),
      cmocka_unit_test(test_many_records),
      cmocka_unit_test(test_big_header),
      cmocka_unit_test(test_read_from_pipe),
      cmocka_unit_test(test_truncation_every_prefix),
      cmocka_unit_test(test_every_byte_flip),
      cmocka_unit_test(test_bad_magic),
      cmocka_unit_test(test_wrong_version),
      cmocka_unit_test(test_oversized_length),
      cmocka_unit_test(test_checksum_message),
      cmocka_unit_test(test_unknown_type),
      cmocka_unit_test(test_bad_fields),
      cmocka_unit_test(test_second_header),
      cmocka_unit_test(test_bad_header),
      cmocka_unit_test(test_writer_io_error),
      cmocka_unit_test(test_writer_bad_records),
      cmocka_unit_test(test_out_of_memory),
      cmocka_unit_test(test_describe),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
