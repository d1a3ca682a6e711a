/* eventlog.c: the event log, an append-only binary record of one run (include/hswarm/eventlog.h).
 *
 * The header file gives the file layout and the framing of a record:
 *
 *   file   = magic "HSWLOG\r\n" | version u32 | record*        (first record: HS_REC_HEADER)
 *   record = len u32 | type u8 | body (len - 1 bytes) | crc u32 (CRC-32 of type and body)
 *
 * This file fixes the body of each record type. Every integer is little-endian and fixed-width,
 * written byte by byte (never by copying a struct); an int32_t is stored as its two's-complement
 * u32. A string or byte array is "str": a u32 length followed by that many bytes, no terminator.
 * Fields appear in this order:
 *
 *   HEADER   seed u64, mode u32, mailbox_capacity u32, arena_bytes u64, agent_memory u64,
 *            instruction_budget u64, team_memory u64, max_steps u64, script_hash u64,
 *            script_path str, argc u32, then argc times str               (72 bytes + strings)
 *   SPAWN    step u64, agent u32, parent u32, team u32, kind u32, target_hash u64   (32 bytes)
 *   DELIVER  step u64, to u32, from u32, lamport u64, seq u64, flags u32, len u32,
 *            data_hash u64                                                          (48 bytes)
 *   OP       step u64, agent u32, op_seq u32, status i32, kind str, data str (28 bytes + both)
 *   EXIT     step u64, agent u32, status i32, lamport u64, len u32, data_hash u64,
 *            message str                                              (40 bytes + message)
 *   LOG      step u64, agent u32, text str                               (16 bytes + text)
 *   END      step u64, agents u64, messages u64, failed u64                        (32 bytes)
 *
 * So a deliver record takes 4 + 1 + 48 + 4 = 57 bytes in the file.
 *
 * Checksums. hs_fnv1a64 is 64-bit FNV-1a (xor each byte in, multiply by the FNV prime), the
 * fingerprint recorded for payloads and scripts. hs_crc32 is the CRC-32 of IEEE 802.3 (reflected
 * polynomial 0xEDB88320, initial value and final xor 0xFFFFFFFF), bit for bit zlib's crc32(), so
 * a log can be checked with any zlib-based tool. It is "slicing-by-8": eight 256-entry tables,
 * table k giving the CRC contribution of a byte followed by k zero bytes, so that eight input
 * bytes are folded in with eight independent look-ups instead of a chain of eight dependent ones.
 * The tables (8 KiB) are built once, under pthread_once.
 *
 * Writer. Records are encoded straight into a 64 KiB buffer, which is written to the file when
 * the next record does not fit, and on flush and close; a record bigger than the buffer is
 * encoded into a temporary allocation and written at once. An append is therefore a size check,
 * some stores and a CRC over about fifty bytes; the CRC is computed from the field values as they
 * are stored (see enc below), about 1.5 times faster than re-reading the fresh bytes. The file
 * is opened only after every allocation has succeeded, and the preamble and header are written
 * at open, so that a log exists on disk from the start and an unwritable path is reported by
 * open. An I/O error is sticky: every later call returns HS_EIO.
 *
 * Reader. The whole file is read into one buffer that the reader owns (a copy, for open_mem), and
 * records are decoded from it in order. Nothing is trusted: a frame's length is checked against
 * the limit and against the bytes left before anything is read, the checksum is verified before
 * the body is looked at, and each field is checked against the bytes left in the body (a
 * "cursor" that remembers the first field that did not fit). Counts are checked against the
 * bytes that could hold them before anything is allocated, so a hostile file can make the reader
 * allocate only in proportion to its own size.
 *
 * Decoded strings are NUL-terminated, although the header only promises this for argv: once a
 * record's checksum is verified, each string is moved four bytes down in the buffer, over its own
 * length prefix (already decoded), which leaves room for a terminating NUL right after it. This
 * costs no allocation and keeps every pointer inside the reader's buffer. The buffer is consumed
 * in this way exactly once, since records are read strictly in order. Errors of next() are
 * sticky: once a record is bad, every later call returns the same code and message. */
#include "hswarm/eventlog.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/last_error.h"
#include "hswarm/alloc.h"
#include "hswarm/error.h"

static _Thread_local hs_errbuf err;

const char *hs_eventlog_last_error(void) { return err.msg; }

#define MAGIC "HSWLOG\r\n"
#define MAGIC_LEN 8u
#define PREAMBLE_LEN 12u  /* magic and version */
#define FRAME_OVERHEAD 9u /* len u32, type u8, crc u32 */
#define WRITE_BUF_SIZE (64u * 1024u)
#define MAX_BODY (HS_EVENTLOG_MAX_RECORD - 1u)

/* Fixed parts of each body, in bytes (see the table above). */
#define HEADER_FIXED 72u
#define SPAWN_BODY 32u
#define DELIVER_BODY 48u
#define OP_FIXED 28u
#define EXIT_FIXED 40u
#define LOG_FIXED 16u
#define END_BODY 32u

static const char *type_name(unsigned type) {
  switch (type) {
  case HS_REC_HEADER: return "header";
  case HS_REC_SPAWN: return "spawn";
  case HS_REC_DELIVER: return "deliver";
  case HS_REC_OP: return "op";
  case HS_REC_EXIT: return "exit";
  case HS_REC_LOG: return "log";
  case HS_REC_END: return "end";
  default: return "unknown";
  }
}

/* ---- little-endian scalars ---- */

static inline uint8_t *put_u32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
  return p + 4;
}

static inline uint8_t *put_u64(uint8_t *p, uint64_t v) {
  put_u32(p, (uint32_t)v);
  put_u32(p + 4, (uint32_t)(v >> 32));
  return p + 8;
}


static inline uint32_t get_u32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t get_u64(const uint8_t *p) {
  return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

/* Two's-complement u32 to int32_t without implementation-defined conversion. */
static inline int32_t to_i32(uint32_t v) {
  return v <= INT32_MAX ? (int32_t)v : -(int32_t)(~v) - 1;
}

/* ======================================================================================== */
/* Checksums                                                                                */
/* ======================================================================================== */

uint64_t hs_fnv1a64(const void *data, size_t len) {
  const unsigned char *p = data;
  uint64_t h = 0xcbf29ce484222325ull; /* offset basis */
  for (size_t i = 0; i < len; i++) {
    h ^= p[i];
    h *= 0x100000001b3ull; /* FNV prime */
  }
  return h;
}

/* crc_table[k][b]: the CRC contribution of byte b followed by k zero bytes. */
static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void) {
  for (uint32_t n = 0; n < 256; n++) {
    uint32_t c = n;
    for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    crc_table[0][n] = c;
  }
  for (uint32_t n = 0; n < 256; n++) {
    uint32_t c = crc_table[0][n];
    for (int t = 1; t < 8; t++) {
      c = (c >> 8) ^ crc_table[0][c & 0xffu];
      crc_table[t][n] = c;
    }
  }
}

static void crc_tables(void) { pthread_once(&crc_once, crc_init); }

/* The steps below work on the inverted CRC register (~crc), as the CRC's definition does. */
static inline uint32_t crc_step8(uint32_t c, uint8_t v) {
  return (c >> 8) ^ crc_table[0][(c ^ v) & 0xffu];
}

/* Four bytes, v in little-endian order. */
static inline uint32_t crc_step32(uint32_t c, uint32_t v) {
  c ^= v;
  return crc_table[3][c & 0xffu] ^ crc_table[2][(c >> 8) & 0xffu] ^
         crc_table[1][(c >> 16) & 0xffu] ^ crc_table[0][c >> 24];
}

/* Eight bytes: lo then hi, each in little-endian order. */
static inline uint32_t crc_step64(uint32_t c, uint32_t lo, uint32_t hi) {
  lo ^= c;
  return crc_table[7][lo & 0xffu] ^ crc_table[6][(lo >> 8) & 0xffu] ^
         crc_table[5][(lo >> 16) & 0xffu] ^ crc_table[4][lo >> 24] ^
         crc_table[3][hi & 0xffu] ^ crc_table[2][(hi >> 8) & 0xffu] ^
         crc_table[1][(hi >> 16) & 0xffu] ^ crc_table[0][hi >> 24];
}

static uint32_t crc_bytes(uint32_t c, const uint8_t *p, size_t n) {
  while (n >= 8) {
    c = crc_step64(c, get_u32(p), get_u32(p + 4));
    p += 8;
    n -= 8;
  }
  while (n--) c = crc_step8(c, *p++);
  return c;
}

uint32_t hs_crc32(uint32_t crc, const void *data, size_t len) {
  crc_tables();
  return ~crc_bytes(~crc, data, len);
}

/* ======================================================================================== */
/* Writer                                                                                   */
/* ======================================================================================== */

struct hs_eventlog_writer {
  int fd;
  int err;        /* sticky I/O error, 0 if none */
  uint8_t *buf;   /* WRITE_BUF_SIZE bytes */
  size_t used;
  uint64_t count; /* records written, header included */
  char *path;
};

/* A string field given as pointer and length: a NULL pointer is allowed only with length 0. */
static int check_str(const void *s, uint32_t n, const char *type, const char *field) {
  if (n && !s)
    return hs_set_error(&err, HS_EINVAL, "event log: %s record: %s is NULL with length %" PRIu32,
                        type, field, n);
  return 0;
}

/* Validates rec and computes its body size (at most MAX_BODY). */
static int body_size(const hs_record *rec, size_t *out) {
  uint64_t n;
  int rc;
  switch (rec->type) {
  case HS_REC_HEADER: {
    const hs_rec_header *h = &rec->u.header;
    if ((rc = check_str(h->script_path, h->script_path_len, "header", "script_path"))) return rc;
    if (h->argc && !h->argv)
      return hs_set_error(&err, HS_EINVAL,
                          "event log: header record: argv is NULL with argc %" PRIu32, h->argc);
    n = HEADER_FIXED + (uint64_t)h->script_path_len;
    for (uint32_t i = 0; i < h->argc && n <= MAX_BODY; i++) {
      if (!h->argv[i])
        return hs_set_error(&err, HS_EINVAL,
                            "event log: header record: argv[%" PRIu32 "] is NULL", i);
      n += 4u + (uint64_t)strlen(h->argv[i]);
    }
    break;
  }
  case HS_REC_SPAWN: n = SPAWN_BODY; break;
  case HS_REC_DELIVER: n = DELIVER_BODY; break;
  case HS_REC_OP:
    if ((rc = check_str(rec->u.op.kind, rec->u.op.kind_len, "op", "kind"))) return rc;
    if ((rc = check_str(rec->u.op.data, rec->u.op.data_len, "op", "data"))) return rc;
    n = OP_FIXED + (uint64_t)rec->u.op.kind_len + rec->u.op.data_len;
    break;
  case HS_REC_EXIT:
    rc = check_str(rec->u.exit.message, rec->u.exit.message_len, "exit", "message");
    if (rc) return rc;
    n = EXIT_FIXED + (uint64_t)rec->u.exit.message_len;
    break;
  case HS_REC_LOG:
    if ((rc = check_str(rec->u.log.text, rec->u.log.text_len, "log", "text"))) return rc;
    n = LOG_FIXED + (uint64_t)rec->u.log.text_len;
    break;
  case HS_REC_END: n = END_BODY; break;
  default:
    return hs_set_error(&err, HS_EINVAL, "event log: cannot write a record of unknown type %d",
                        (int)rec->type);
  }
  if (n > MAX_BODY)
    return hs_set_error(&err, HS_EINVAL,
                        "event log: %s record of %" PRIu64 " bytes exceeds the limit of %u bytes",
                        type_name(rec->type), n + 1, HS_EVENTLOG_MAX_RECORD);
  *out = (size_t)n;
  return 0;
}

/* An output position and the running CRC (inverted register) of what was written there. Every
 * field is folded into the CRC from its value, in registers, as it is stored: reading back the
 * bytes just stored would stall on store forwarding, and the CRC is most of an append's cost. */
typedef struct enc {
  uint8_t *p;
  uint32_t crc;
} enc;

static inline void enc_u8(enc *e, uint8_t v) {
  *e->p++ = v;
  e->crc = crc_step8(e->crc, v);
}

static inline void enc_u32(enc *e, uint32_t v) {
  e->p = put_u32(e->p, v);
  e->crc = crc_step32(e->crc, v);
}

static inline void enc_i32(enc *e, int32_t v) { enc_u32(e, (uint32_t)v); }

static inline void enc_u64(enc *e, uint64_t v) {
  e->p = put_u64(e->p, v);
  e->crc = crc_step64(e->crc, (uint32_t)v, (uint32_t)(v >> 32));
}

static inline void enc_str(enc *e, const void *s, uint32_t n) {
  enc_u32(e, n);
  if (n) {
    memcpy(e->p, s, n);
    e->crc = crc_bytes(e->crc, s, n); /* from the caller's bytes, not the copy */
    e->p += n;
  }
}

/* Encodes the body of rec (already validated by body_size). */
static void encode_body(enc *e, const hs_record *rec) {
  switch (rec->type) {
  case HS_REC_HEADER: {
    const hs_rec_header *h = &rec->u.header;
    enc_u64(e, h->seed);
    enc_u32(e, h->mode);
    enc_u32(e, h->mailbox_capacity);
    enc_u64(e, h->arena_bytes);
    enc_u64(e, h->agent_memory);
    enc_u64(e, h->instruction_budget);
    enc_u64(e, h->team_memory);
    enc_u64(e, h->max_steps);
    enc_u64(e, h->script_hash);
    enc_str(e, h->script_path, h->script_path_len);
    enc_u32(e, h->argc);
    for (uint32_t i = 0; i < h->argc; i++)
      enc_str(e, h->argv[i], (uint32_t)strlen(h->argv[i]));
    break;
  }
  case HS_REC_SPAWN: {
    const hs_rec_spawn *s = &rec->u.spawn;
    enc_u64(e, s->step);
    enc_u32(e, s->agent);
    enc_u32(e, s->parent);
    enc_u32(e, s->team);
    enc_u32(e, s->kind);
    enc_u64(e, s->target_hash);
    break;
  }
  case HS_REC_DELIVER: {
    const hs_rec_deliver *d = &rec->u.deliver;
    enc_u64(e, d->step);
    enc_u32(e, d->to);
    enc_u32(e, d->from);
    enc_u64(e, d->lamport);
    enc_u64(e, d->seq);
    enc_u32(e, d->flags);
    enc_u32(e, d->len);
    enc_u64(e, d->data_hash);
    break;
  }
  case HS_REC_OP: {
    const hs_rec_op *o = &rec->u.op;
    enc_u64(e, o->step);
    enc_u32(e, o->agent);
    enc_u32(e, o->op_seq);
    enc_i32(e, o->status);
    enc_str(e, o->kind, o->kind_len);
    enc_str(e, o->data, o->data_len);
    break;
  }
  case HS_REC_EXIT: {
    const hs_rec_exit *x = &rec->u.exit;
    enc_u64(e, x->step);
    enc_u32(e, x->agent);
    enc_i32(e, x->status);
    enc_u64(e, x->lamport);
    enc_u32(e, x->len);
    enc_u64(e, x->data_hash);
    enc_str(e, x->message, x->message_len);
    break;
  }
  case HS_REC_LOG: {
    const hs_rec_log *l = &rec->u.log;
    enc_u64(e, l->step);
    enc_u32(e, l->agent);
    enc_str(e, l->text, l->text_len);
    break;
  }
  case HS_REC_END: {
    const hs_rec_end *t = &rec->u.end;
    enc_u64(e, t->step);
    enc_u64(e, t->agents);
    enc_u64(e, t->messages);
    enc_u64(e, t->failed);
    break;
  }
  }
}

/* Encodes the whole frame of rec, whose body is body bytes, at p (body + FRAME_OVERHEAD bytes). */
static void encode_frame(uint8_t *p, const hs_record *rec, size_t body) {
  enc e = {p + 4, 0xffffffffu};
  put_u32(p, (uint32_t)body + 1u);
  enc_u8(&e, (uint8_t)rec->type);
  encode_body(&e, rec);
  put_u32(e.p, ~e.crc);
}

static int write_all(hs_eventlog_writer *w, const uint8_t *p, size_t n) {
  while (n) {
    ssize_t k = write(w->fd, p, n);
    if (k < 0) {
      if (errno == EINTR) continue;
      w->err = HS_EIO;
      return hs_set_error(&err, HS_EIO, "%s: write failed: %s", w->path, strerror(errno));
    }
    p += k;
    n -= (size_t)k;
  }
  return 0;
}

int hs_eventlog_writer_flush(hs_eventlog_writer *w) {
  if (!w) return hs_set_error(&err, HS_EINVAL, "event log: flush of a NULL writer");
  if (w->err) return hs_set_error(&err, w->err, "%s: the log failed earlier", w->path);
  int rc = w->used ? write_all(w, w->buf, w->used) : 0;
  w->used = 0; /* after an error the buffered records are lost, and the writer stays failed */
  return rc;
}

/* Appends rec, of any type, after validating it. */
static int append(hs_eventlog_writer *w, const hs_record *rec) {
  size_t body;
  int rc = body_size(rec, &body);
  if (rc) return rc;
  size_t frame = body + FRAME_OVERHEAD;
  if (frame > WRITE_BUF_SIZE - w->used) {
    if ((rc = hs_eventlog_writer_flush(w))) return rc;
    if (frame > WRITE_BUF_SIZE) {
      uint8_t *tmp = hs_malloc(frame);
      if (!tmp)
        return hs_set_error(&err, HS_ENOMEM, "%s: out of memory for a %s record of %zu bytes",
                            w->path, type_name(rec->type), frame);
      encode_frame(tmp, rec, body);
      rc = write_all(w, tmp, frame);
      hs_free(tmp);
      if (rc) return rc;
      w->count++;
      return 0;
    }
  }
  encode_frame(w->buf + w->used, rec, body);
  w->used += frame;
  w->count++;
  return 0;
}

int hs_eventlog_writer_append(hs_eventlog_writer *w, const hs_record *rec) {
  if (!w || !rec) return hs_set_error(&err, HS_EINVAL, "event log: append with a NULL argument");
  if (w->err) return hs_set_error(&err, w->err, "%s: the log failed earlier", w->path);
  if (rec->type == HS_REC_HEADER)
    return hs_set_error(&err, HS_EINVAL, "%s: the header record is written only by open", w->path);
  return append(w, rec);
}

static void writer_free(hs_eventlog_writer *w) {
  hs_free(w->buf);
  hs_free(w->path);
  hs_free(w);
}

int hs_eventlog_writer_open(const char *path, const hs_rec_header *header,
                            hs_eventlog_writer **out) {
  if (!out) return hs_set_error(&err, HS_EINVAL, "event log: open with a NULL output pointer");
  *out = NULL;
  if (!path || !header)
    return hs_set_error(&err, HS_EINVAL, "event log: open with a NULL argument");
  hs_record rec;
  rec.type = HS_REC_HEADER;
  rec.u.header = *header;
  size_t body;
  int rc = body_size(&rec, &body);
  if (rc) return rc;

  crc_tables(); /* appends use the tables without asking */
  hs_eventlog_writer *w = hs_calloc(1, sizeof *w);
  if (!w) return hs_set_error(&err, HS_ENOMEM, "%s: out of memory", path);
  w->fd = -1;
  w->path = hs_strdup(path);
  w->buf = hs_malloc(WRITE_BUF_SIZE);
  /* A header bigger than the buffer needs a temporary frame: allocate it now, before the file
   * is created, so that out of memory leaves the file system untouched. */
  uint8_t *big = body + FRAME_OVERHEAD > WRITE_BUF_SIZE - PREAMBLE_LEN
                     ? hs_malloc(body + FRAME_OVERHEAD) : NULL;
  if (!w->path || !w->buf || (body + FRAME_OVERHEAD > WRITE_BUF_SIZE - PREAMBLE_LEN && !big)) {
    hs_free(big);
    writer_free(w);
    return hs_set_error(&err, HS_ENOMEM, "%s: out of memory", path);
  }

  w->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (w->fd < 0) {
    rc = hs_set_error(&err, HS_EIO, "%s: cannot create: %s", path, strerror(errno));
    hs_free(big);
    writer_free(w);
    return rc;
  }
  memcpy(w->buf, MAGIC, MAGIC_LEN);
  put_u32(w->buf + MAGIC_LEN, HS_EVENTLOG_VERSION);
  w->used = PREAMBLE_LEN;
  if (big) {
    encode_frame(big, &rec, body);
    rc = write_all(w, w->buf, w->used);
    if (!rc) rc = write_all(w, big, body + FRAME_OVERHEAD);
    w->used = 0;
    hs_free(big);
  } else {
    encode_frame(w->buf + w->used, &rec, body);
    w->used += body + FRAME_OVERHEAD;
    rc = hs_eventlog_writer_flush(w);
  }
  if (rc) {
    char msg[HS_ERRMSG_SIZE];
    memcpy(msg, err.msg, sizeof msg);
    struct stat st;
    /* The file holds no valid log: do not leave a broken one behind (but never remove a
     * device or anything else that is not a regular file). */
    int regular = fstat(w->fd, &st) == 0 && S_ISREG(st.st_mode);
    close(w->fd);
    if (regular) unlink(path);
    writer_free(w);
    memcpy(err.msg, msg, sizeof msg);
    return rc;
  }
  w->count = 1;
  *out = w;
  return 0;
}

int hs_eventlog_writer_close(hs_eventlog_writer *w) {
  if (!w) return 0;
  int rc = w->err ? hs_set_error(&err, w->err, "%s: the log failed earlier", w->path)
                  : hs_eventlog_writer_flush(w);
  if (close(w->fd) != 0 && rc == 0)
    rc = hs_set_error(&err, HS_EIO, "%s: close failed: %s", w->path, strerror(errno));
  writer_free(w);
  return rc;
}

uint64_t hs_eventlog_writer_count(const hs_eventlog_writer *w) { return w ? w->count : 0; }

/* ======================================================================================== */
/* Reader                                                                                   */
/* ======================================================================================== */

struct hs_eventlog_reader {
  char *name;         /* path or name, for messages */
  uint8_t *buf;       /* the whole file */
  size_t len;
  size_t pos;         /* offset of the next frame */
  uint64_t index;     /* records returned, header included */
  uint64_t offset;    /* offset of the record last returned */
  int truncated;      /* the log ended inside a frame */
  int done;           /* next() reached the end */
  int err;            /* sticky error of next() */
  char *errmsg;       /* its message (HS_ERRMSG_SIZE bytes, allocated with the reader) */
  const char **argv;  /* the header's argv, argc + 1 entries (NULL-terminated) */
};

/* A read position inside one record's body. The first field that does not fit is remembered
 * in missing; after that every read returns zero, and the caller reports the field. */
typedef struct cursor {
  uint8_t *p, *end;
  const char *missing;
} cursor;

static uint32_t cur_u32(cursor *c, const char *field) {
  if (c->missing) return 0;
  if ((size_t)(c->end - c->p) < 4) {
    c->missing = field;
    return 0;
  }
  uint32_t v = get_u32(c->p);
  c->p += 4;
  return v;
}

static uint64_t cur_u64(cursor *c, const char *field) {
  if (c->missing) return 0;
  if ((size_t)(c->end - c->p) < 8) {
    c->missing = field;
    return 0;
  }
  uint64_t v = get_u64(c->p);
  c->p += 8;
  return v;
}

static int32_t cur_i32(cursor *c, const char *field) { return to_i32(cur_u32(c, field)); }

/* Reads a str field, moves its bytes over their own length prefix and NUL-terminates them. */
static const char *cur_str(cursor *c, const char *field, uint32_t *len) {
  uint32_t n = cur_u32(c, field);
  *len = 0;
  if (c->missing) return "";
  if ((size_t)(c->end - c->p) < n) {
    c->missing = field;
    return "";
  }
  uint8_t *s = c->p - 4;
  memmove(s, c->p, n);
  s[n] = 0;
  c->p += n;
  *len = n;
  return (const char *)s;
}

/* Reports a record-level error: "NAME: record N at offset X: ...". */
#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static int record_error(const hs_eventlog_reader *r, int code, size_t offset, const char *fmt,
                        ...) {
  char detail[HS_ERRMSG_SIZE];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail, sizeof detail, fmt, ap);
  va_end(ap);
  return hs_set_error(&err, code, "%s: record %" PRIu64 " at offset %zu: %s", r->name, r->index,
                      offset, detail);
}

/* Decodes one body (checksum already verified) into rec. */
static int decode_body(hs_eventlog_reader *r, size_t offset, unsigned type, uint8_t *body,
                       size_t body_len, hs_record *rec) {
  cursor c = {body, body + body_len, NULL};
  memset(rec, 0, sizeof *rec);
  rec->type = (hs_rec_type)type;
  switch (type) {
  case HS_REC_HEADER: {
    hs_rec_header *h = &rec->u.header;
    h->seed = cur_u64(&c, "seed");
    h->mode = cur_u32(&c, "mode");
    h->mailbox_capacity = cur_u32(&c, "mailbox_capacity");
    h->arena_bytes = cur_u64(&c, "arena_bytes");
    h->agent_memory = cur_u64(&c, "agent_memory");
    h->instruction_budget = cur_u64(&c, "instruction_budget");
    h->team_memory = cur_u64(&c, "team_memory");
    h->max_steps = cur_u64(&c, "max_steps");
    h->script_hash = cur_u64(&c, "script_hash");
    h->script_path = cur_str(&c, "script_path", &h->script_path_len);
    h->argc = cur_u32(&c, "argc");
    if (c.missing) break;
    /* Each argument takes at least its 4-byte length: check before allocating. */
    if (h->argc > (size_t)(c.end - c.p) / 4)
      return record_error(r, HS_ECORRUPT, offset,
                          "header record: argc %" PRIu32 " does not fit the %zu bytes left",
                          h->argc, (size_t)(c.end - c.p));
    const char **argv = hs_malloc(((size_t)h->argc + 1) * sizeof *argv);
    if (!argv)
      return hs_set_error(&err, HS_ENOMEM, "%s: out of memory for %" PRIu32 " arguments", r->name,
                          h->argc);
    hs_free(r->argv);
    r->argv = argv;
    for (uint32_t i = 0; i < h->argc; i++) {
      uint32_t n;
      argv[i] = cur_str(&c, "argv", &n);
    }
    argv[h->argc] = NULL;
    h->argv = argv;
    break;
  }
  case HS_REC_SPAWN: {
    hs_rec_spawn *s = &rec->u.spawn;
    s->step = cur_u64(&c, "step");
    s->agent = cur_u32(&c, "agent");
    s->parent = cur_u32(&c, "parent");
    s->team = cur_u32(&c, "team");
    s->kind = cur_u32(&c, "kind");
    s->target_hash = cur_u64(&c, "target_hash");
    break;
  }
  case HS_REC_DELIVER: {
    hs_rec_deliver *d = &rec->u.deliver;
    d->step = cur_u64(&c, "step");
    d->to = cur_u32(&c, "to");
    d->from = cur_u32(&c, "from");
    d->lamport = cur_u64(&c, "lamport");
    d->seq = cur_u64(&c, "seq");
    d->flags = cur_u32(&c, "flags");
    d->len = cur_u32(&c, "len");
    d->data_hash = cur_u64(&c, "data_hash");
    break;
  }
  case HS_REC_OP: {
    hs_rec_op *o = &rec->u.op;
    o->step = cur_u64(&c, "step");
    o->agent = cur_u32(&c, "agent");
    o->op_seq = cur_u32(&c, "op_seq");
    o->status = cur_i32(&c, "status");
    o->kind = cur_str(&c, "kind", &o->kind_len);
    o->data = cur_str(&c, "data", &o->data_len);
    break;
  }
  case HS_REC_EXIT: {
    hs_rec_exit *e = &rec->u.exit;
    e->step = cur_u64(&c, "step");
    e->agent = cur_u32(&c, "agent");
    e->status = cur_i32(&c, "status");
    e->lamport = cur_u64(&c, "lamport");
    e->len = cur_u32(&c, "len");
    e->data_hash = cur_u64(&c, "data_hash");
    e->message = cur_str(&c, "message", &e->message_len);
    break;
  }
  case HS_REC_LOG: {
    hs_rec_log *l = &rec->u.log;
    l->step = cur_u64(&c, "step");
    l->agent = cur_u32(&c, "agent");
    l->text = cur_str(&c, "text", &l->text_len);
    break;
  }
  case HS_REC_END: {
    hs_rec_end *e = &rec->u.end;
    e->step = cur_u64(&c, "step");
    e->agents = cur_u64(&c, "agents");
    e->messages = cur_u64(&c, "messages");
    e->failed = cur_u64(&c, "failed");
    break;
  }
  default: /* read_frame rejects unknown types */
    return record_error(r, HS_ECORRUPT, offset, "unknown record type %u", type);
  }
  if (c.missing)
    return record_error(r, HS_ECORRUPT, offset,
                        "%s record: field '%s' does not fit in its body of %zu bytes",
                        type_name(type), c.missing, body_len);
  if (c.p != c.end)
    return record_error(r, HS_ECORRUPT, offset,
                        "%s record: %zu bytes left over after its last field (body %zu bytes)",
                        type_name(type), (size_t)(c.end - c.p), body_len);
  return 0;
}

/* Reads and checks the frame at r->pos. Returns 1 and advances, with the frame's offset, type and
 * body; 0 at the end of the log, with r->truncated set (and a message) if a partial frame
 * remains; or HS_ECORRUPT. */
static int read_frame(hs_eventlog_reader *r, size_t *offset, unsigned *type, uint8_t **body,
                      size_t *body_len) {
  size_t off = r->pos;
  size_t rem = r->len - off;
  *offset = off;
  if (rem == 0) return 0;
  if (rem < 4) {
    r->truncated = 1;
    record_error(r, HS_ETRUNC, off,
                 "truncated: the file ends inside the record's length (%zu of 4 bytes)", rem);
    return 0;
  }
  uint32_t n = get_u32(r->buf + off);
  if (n == 0) return record_error(r, HS_ECORRUPT, off, "record length 0");
  if (n > HS_EVENTLOG_MAX_RECORD)
    return record_error(r, HS_ECORRUPT, off, "record length %" PRIu32 " exceeds the limit of %u",
                        n, HS_EVENTLOG_MAX_RECORD);
  if (rem - 4 < (size_t)n + 4) {
    r->truncated = 1;
    record_error(r, HS_ETRUNC, off,
                 "truncated: the file ends inside the record (%zu of %zu bytes)", rem,
                 (size_t)n + 8);
    return 0;
  }
  const uint8_t *payload = r->buf + off + 4;
  uint32_t want = get_u32(payload + n);
  if (hs_crc32(0, payload, n) != want)
    return record_error(r, HS_ECORRUPT, off, "checksum mismatch");
  *type = payload[0];
  if (*type < HS_REC_HEADER || *type > HS_REC_END)
    return record_error(r, HS_ECORRUPT, off, "unknown record type %u", *type);
  *body = r->buf + off + 5;
  *body_len = n - 1u;
  r->pos = off + 8 + n;
  return 1;
}

void hs_eventlog_reader_close(hs_eventlog_reader *r) {
  if (!r) return;
  hs_free(r->argv);
  hs_free(r->buf);
  hs_free(r->errmsg);
  hs_free(r->name);
  hs_free(r);
}

/* Takes ownership of buf (len bytes), checks the preamble and decodes the header. */
static int open_buffer(const char *name, uint8_t *buf, size_t len, hs_eventlog_reader **out,
                       hs_rec_header *header) {
  hs_eventlog_reader *r = hs_calloc(1, sizeof *r);
  if (!r) {
    hs_free(buf);
    return hs_set_error(&err, HS_ENOMEM, "%s: out of memory", name);
  }
  r->buf = buf;
  r->len = len;
  r->name = hs_strdup(name);
  r->errmsg = hs_malloc(HS_ERRMSG_SIZE);
  int rc;
  if (!r->name || !r->errmsg) {
    rc = hs_set_error(&err, HS_ENOMEM, "%s: out of memory", name);
    goto fail;
  }
  if (memcmp(buf, MAGIC, len < MAGIC_LEN ? len : MAGIC_LEN) != 0) {
    rc = hs_set_error(&err, HS_ECORRUPT, "%s: not an hswarm event log (bad magic)", name);
    goto fail;
  }
  if (len < PREAMBLE_LEN) {
    rc = hs_set_error(&err, HS_ETRUNC,
                      "%s: truncated: %zu bytes, shorter than the %u-byte preamble", name, len,
                      PREAMBLE_LEN);
    goto fail;
  }
  uint32_t version = get_u32(buf + MAGIC_LEN);
  if (version != HS_EVENTLOG_VERSION) {
    rc = hs_set_error(&err, HS_EVERSION,
                      "%s: event log version %" PRIu32 ", this build reads version %u", name,
                      version, HS_EVENTLOG_VERSION);
    goto fail;
  }
  r->pos = PREAMBLE_LEN;
  size_t offset = 0, body_len = 0;
  unsigned type = 0;
  uint8_t *body = NULL;
  rc = read_frame(r, &offset, &type, &body, &body_len);
  if (rc == 0) {
    if (r->truncated)
      rc = record_error(r, HS_ETRUNC, offset, "truncated inside the header record");
    else
      rc = hs_set_error(&err, HS_ETRUNC, "%s: truncated: no header record", name);
    goto fail;
  }
  if (rc < 0) goto fail;
  if (type != HS_REC_HEADER) {
    rc = record_error(r, HS_ECORRUPT, offset, "the first record is %s, not a header",
                      type_name(type));
    goto fail;
  }
  hs_record rec;
  rc = decode_body(r, offset, type, body, body_len, &rec);
  if (rc) goto fail;
  r->offset = offset;
  r->index = 1;
  if (header) *header = rec.u.header;
  *out = r;
  return 0;
fail:
  hs_eventlog_reader_close(r);
  return rc;
}

int hs_eventlog_reader_open_mem(const void *data, size_t len, const char *name,
                                hs_eventlog_reader **out, hs_rec_header *header) {
  if (!out) return hs_set_error(&err, HS_EINVAL, "event log: open with a NULL output pointer");
  *out = NULL;
  if (!name) name = "<memory>";
  if (!data && len) return hs_set_error(&err, HS_EINVAL, "%s: NULL data of %zu bytes", name, len);
  uint8_t *buf = hs_malloc(len);
  if (!buf) return hs_set_error(&err, HS_ENOMEM, "%s: out of memory for %zu bytes", name, len);
  if (len) memcpy(buf, data, len);
  return open_buffer(name, buf, len, out, header);
}

/* Reads the whole file at path into a new buffer. */
static int read_file(const char *path, uint8_t **out, size_t *out_len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    return hs_set_error(&err, e == ENOENT ? HS_ENOENT : HS_EIO, "%s: cannot open: %s", path,
                        strerror(e));
  }
  struct stat st;
  size_t cap = 64u * 1024u;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
      (uint64_t)st.st_size < (uint64_t)SIZE_MAX)
    cap = (size_t)st.st_size + 1; /* one more, to see the end without growing */
  uint8_t *buf = hs_malloc(cap);
  size_t len = 0;
  int rc = 0;
  if (!buf) {
    rc = hs_set_error(&err, HS_ENOMEM, "%s: out of memory for %zu bytes", path, cap);
    goto done;
  }
  for (;;) {
    if (len == cap) {
      size_t ncap = cap * 2;
      uint8_t *nbuf = ncap > cap ? hs_realloc(buf, ncap) : NULL;
      if (!nbuf) {
        rc = hs_set_error(&err, HS_ENOMEM, "%s: out of memory reading the file", path);
        goto done;
      }
      buf = nbuf;
      cap = ncap;
    }
    ssize_t k = read(fd, buf + len, cap - len);
    if (k < 0) {
      if (errno == EINTR) continue;
      rc = hs_set_error(&err, HS_EIO, "%s: read failed: %s", path, strerror(errno));
      goto done;
    }
    if (k == 0) break;
    len += (size_t)k;
  }
done:
  close(fd);
  if (rc) {
    hs_free(buf);
    return rc;
  }
  *out = buf;
  *out_len = len;
  return 0;
}

int hs_eventlog_reader_open(const char *path, hs_eventlog_reader **out, hs_rec_header *header) {
  if (!out) return hs_set_error(&err, HS_EINVAL, "event log: open with a NULL output pointer");
  *out = NULL;
  if (!path) return hs_set_error(&err, HS_EINVAL, "event log: open with a NULL path");
  uint8_t *buf = NULL;
  size_t len = 0;
  int rc = read_file(path, &buf, &len);
  if (rc) return rc;
  return open_buffer(path, buf, len, out, header);
}

int hs_eventlog_reader_next(hs_eventlog_reader *r, hs_record *rec) {
  if (!r || !rec) return hs_set_error(&err, HS_EINVAL, "event log: next with a NULL argument");
  if (r->err) {
    memcpy(err.msg, r->errmsg, HS_ERRMSG_SIZE);
    return r->err;
  }
  if (r->done) return 0;
  size_t offset = 0, body_len = 0;
  unsigned type = 0;
  uint8_t *body = NULL;
  int rc = read_frame(r, &offset, &type, &body, &body_len);
  if (rc == 0) {
    r->done = 1;
    return 0;
  }
  if (rc > 0) {
    if (type == HS_REC_HEADER)
      rc = record_error(r, HS_ECORRUPT, offset, "a second header record");
    else
      rc = decode_body(r, offset, type, body, body_len, rec);
  }
  if (rc < 0) {
    r->err = rc;
    memcpy(r->errmsg, err.msg, HS_ERRMSG_SIZE);
    return rc;
  }
  r->offset = offset;
  r->index++;
  return 1;
}

uint64_t hs_eventlog_reader_index(const hs_eventlog_reader *r) { return r && r->index ? r->index - 1 : 0; }
uint64_t hs_eventlog_reader_offset(const hs_eventlog_reader *r) { return r ? r->offset : 0; }
int hs_eventlog_reader_truncated(const hs_eventlog_reader *r) { return r ? r->truncated : 0; }

/* ======================================================================================== */
/* Describing a record                                                                       */
/* ======================================================================================== */

#define DESCRIBE_TEXT_MAX 64 /* bytes of a text field shown before "..." */

/* A bounded string builder: writes what fits and always keeps buf NUL-terminated. */
typedef struct sbuf {
  char *buf;
  size_t size, len;
} sbuf;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void sb_printf(sbuf *b, const char *fmt, ...) {
  if (b->len + 1 >= b->size) return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(b->buf + b->len, b->size - b->len, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  b->len += (size_t)n < b->size - b->len ? (size_t)n : b->size - b->len - 1;
}

/* Appends name="text", escaping bytes that are not printable ASCII and cutting long text. */
static void sb_text(sbuf *b, const char *name, const void *data, uint32_t len) {
  const unsigned char *p = data;
  uint32_t shown = len > DESCRIBE_TEXT_MAX ? DESCRIBE_TEXT_MAX : len;
  sb_printf(b, " %s=\"", name);
  for (uint32_t i = 0; i < shown && p; i++) {
    unsigned char ch = p[i];
    switch (ch) {
    case '\n': sb_printf(b, "\\n"); break;
    case '\r': sb_printf(b, "\\r"); break;
    case '\t': sb_printf(b, "\\t"); break;
    case '"': sb_printf(b, "\\\""); break;
    case '\\': sb_printf(b, "\\\\"); break;
    default:
      if (ch >= 0x20 && ch < 0x7f)
        sb_printf(b, "%c", ch);
      else
        sb_printf(b, "\\x%02x", ch);
    }
  }
  sb_printf(b, "\"%s", shown < len ? "..." : "");
}

char *hs_record_describe(const hs_record *rec, char *buf, size_t size) {
  if (!buf || size == 0) return buf;
  sbuf b = {buf, size, 0};
  buf[0] = 0;
  if (!rec) {
    sb_printf(&b, "(null)");
    return buf;
  }
  switch (rec->type) {
  case HS_REC_HEADER: {
    const hs_rec_header *h = &rec->u.header;
    sb_printf(&b,
              "header seed=%" PRIu64 " mode=%" PRIu32 " mailbox_capacity=%" PRIu32
              " arena_bytes=%" PRIu64 " agent_memory=%" PRIu64 " instruction_budget=%" PRIu64
              " team_memory=%" PRIu64 " max_steps=%" PRIu64 " script_hash=%016" PRIx64,
              h->seed, h->mode, h->mailbox_capacity, h->arena_bytes, h->agent_memory,
              h->instruction_budget, h->team_memory, h->max_steps, h->script_hash);
    sb_text(&b, "script_path", h->script_path, h->script_path_len);
    sb_printf(&b, " argc=%" PRIu32, h->argc);
    for (uint32_t i = 0; i < h->argc && h->argv && i < 8; i++) {
      char field[24];
      snprintf(field, sizeof field, "argv[%" PRIu32 "]", i);
      const char *a = h->argv[i] ? h->argv[i] : "";
      size_t n = strlen(a);
      sb_text(&b, field, a, n > UINT32_MAX ? UINT32_MAX : (uint32_t)n);
    }
    if (h->argc > 8 && h->argv) sb_printf(&b, " ...");
    break;
  }
  case HS_REC_SPAWN: {
    const hs_rec_spawn *s = &rec->u.spawn;
    sb_printf(&b,
              "spawn step=%" PRIu64 " agent=%" PRIu32 " parent=%" PRIu32 " team=%" PRIu32
              " kind=%" PRIu32 " target_hash=%016" PRIx64,
              s->step, s->agent, s->parent, s->team, s->kind, s->target_hash);
    break;
  }
  case HS_REC_DELIVER: {
    const hs_rec_deliver *d = &rec->u.deliver;
    sb_printf(&b,
              "deliver step=%" PRIu64 " to=%" PRIu32 " from=%" PRIu32 " lamport=%" PRIu64
              " seq=%" PRIu64 " flags=%" PRIu32 " len=%" PRIu32 " hash=%016" PRIx64,
              d->step, d->to, d->from, d->lamport, d->seq, d->flags, d->len, d->data_hash);
    break;
  }
  case HS_REC_OP: {
    const hs_rec_op *o = &rec->u.op;
    sb_printf(&b, "op step=%" PRIu64 " agent=%" PRIu32 " op_seq=%" PRIu32 " status=%" PRId32,
              o->step, o->agent, o->op_seq, o->status);
    sb_text(&b, "kind", o->kind, o->kind_len);
    sb_printf(&b, " data_len=%" PRIu32, o->data_len);
    sb_text(&b, "data", o->data, o->data_len);
    break;
  }
  case HS_REC_EXIT: {
    const hs_rec_exit *e = &rec->u.exit;
    sb_printf(&b,
              "exit step=%" PRIu64 " agent=%" PRIu32 " status=%" PRId32 " lamport=%" PRIu64
              " len=%" PRIu32 " hash=%016" PRIx64,
              e->step, e->agent, e->status, e->lamport, e->len, e->data_hash);
    sb_text(&b, "message", e->message, e->message_len);
    break;
  }
  case HS_REC_LOG: {
    const hs_rec_log *l = &rec->u.log;
    sb_printf(&b, "log step=%" PRIu64 " agent=%" PRIu32, l->step, l->agent);
    sb_text(&b, "text", l->text, l->text_len);
    break;
  }
  case HS_REC_END: {
    const hs_rec_end *e = &rec->u.end;
    sb_printf(&b,
              "end step=%" PRIu64 " agents=%" PRIu64 " messages=%" PRIu64 " failed=%" PRIu64,
              e->step, e->agents, e->messages, e->failed);
    break;
  }
  default: sb_printf(&b, "unknown type=%d", (int)rec->type); break;
  }
  return buf;
}
