/* fuzz_eventlog.c: the event-log reader against arbitrary bytes.
 *
 * Opens the input with hs_eventlog_reader_open_mem, then reads and describes every record until
 * the end or the first error. Whatever the input, the reader must not over-read, crash, leak or
 * allocate more than in proportion to the input; the sanitizers check the first three. It also
 * checks a few promises of the API: an error leaves a message, errors are sticky, the end stays
 * the end, and decoded strings are NUL-terminated. A broken promise aborts, which the fuzzer
 * reports as a crash.
 *
 * A random mutation almost never keeps a record's CRC right, so on its own the fuzzer would
 * hardly get past the checksum into the field decoders. Each input is therefore read twice: as
 * it is, and again with the CRC of every whole frame recomputed, so that the mutations of the
 * lengths, types and fields inside a frame reach the decoders. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hswarm/error.h"
#include "hswarm/eventlog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok) {
  if (!ok) abort();
}

static void check_record(const hs_record *rec) {
  switch (rec->type) {
  case HS_REC_OP:
    check(rec->u.op.kind[rec->u.op.kind_len] == 0);
    check(((const char *)rec->u.op.data)[rec->u.op.data_len] == 0);
    break;
  case HS_REC_EXIT: check(rec->u.exit.message[rec->u.exit.message_len] == 0); break;
  case HS_REC_LOG: check(rec->u.log.text[rec->u.log.text_len] == 0); break;
  case HS_REC_SPAWN:
  case HS_REC_DELIVER:
  case HS_REC_END: break;
  default: check(0); /* next() never returns a header or an unknown type */
  }
}

static uint32_t le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Rewrites the CRC of every whole frame after the 12-byte preamble, as far as the frames can be
 * followed. */
static void fix_checksums(uint8_t *p, size_t size) {
  size_t off = 12;
  while (off <= size && size - off >= 9) {
    uint32_t n = le32(p + off);
    if (n == 0 || n > size - off - 8) break;
    uint32_t crc = hs_crc32(0, p + off + 4, n);
    uint8_t *c = p + off + 4 + n;
    c[0] = (uint8_t)crc;
    c[1] = (uint8_t)(crc >> 8);
    c[2] = (uint8_t)(crc >> 16);
    c[3] = (uint8_t)(crc >> 24);
    off += (size_t)n + 8;
  }
}

static void read_log(const uint8_t *data, size_t size) {
  hs_eventlog_reader *r = NULL;
  hs_rec_header header;
  char line[1024];
  int rc = hs_eventlog_reader_open_mem(data, size, "fuzz", &r, &header);
  if (rc < 0) {
    check(r == NULL && hs_eventlog_last_error()[0] != 0);
    return;
  }
  hs_record rec;
  rec.type = HS_REC_HEADER;
  rec.u.header = header;
  hs_record_describe(&rec, line, sizeof line);
  check(header.script_path[header.script_path_len] == 0);
  for (uint32_t i = 0; i < header.argc; i++) check(header.argv[i] != NULL);
  check(header.argv[header.argc] == NULL);

  uint64_t count = 0;
  while ((rc = hs_eventlog_reader_next(r, &rec)) == 1) {
    check_record(&rec);
    hs_record_describe(&rec, line, sizeof line);
    check(strlen(line) < sizeof line);
    count++;
    check(hs_eventlog_reader_index(r) == count);
    check(hs_eventlog_reader_offset(r) < size);
  }
  if (rc < 0) {
    check(rc == HS_ECORRUPT);
    check(hs_eventlog_last_error()[0] != 0);
    check(hs_eventlog_reader_next(r, &rec) == rc); /* sticky */
  } else {
    check(hs_eventlog_reader_next(r, &rec) == 0);
  }
  /* describe with a tiny buffer must stay inside it */
  char tiny[5];
  hs_record_describe(&rec, tiny, sizeof tiny);
  check(strlen(tiny) < sizeof tiny);
  hs_eventlog_reader_close(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  read_log(data, size);
  uint8_t *copy = malloc(size ? size : 1);
  if (!copy) return 0;
  if (size) memcpy(copy, data, size);
  fix_checksums(copy, size);
  read_log(copy, size);
  free(copy);
  return 0;
}
