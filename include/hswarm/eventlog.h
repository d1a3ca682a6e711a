/* hswarm/eventlog.h: the event log, an append-only binary record of one run.
 *
 * File layout (all integers little-endian):
 *   magic   8 bytes  "HSWLOG\r\n"
 *   version u32      HS_EVENTLOG_VERSION
 *   then records, the first of which is always an HS_REC_HEADER record.
 * A record is framed as
 *   len  u32   number of payload bytes (type byte included), at most HS_EVENTLOG_MAX_RECORD
 *   type u8    an hs_rec_type
 *   body len-1 bytes, the encoding of the typed record below
 *   crc  u32   CRC-32 (IEEE 802.3, as zlib's crc32) of the type byte and body
 *
 * A log cut short by a crash is readable up to its last whole record: the reader reports the end
 * of the log, and hs_eventlog_reader_truncated() says that a partial record followed. A record whose
 * checksum or fields are wrong is HS_ECORRUPT, with the record number and byte offset in the
 * message.
 *
 * Typed records. The writer encodes, and the reader decodes, the structs below. Strings and byte
 * arrays in a decoded record point into the reader's buffer and stay valid until the next call to
 * hs_eventlog_reader_next or hs_eventlog_reader_close. Wall-clock time never enters the log. */
#ifndef HSWARM_EVENTLOG_H
#define HSWARM_EVENTLOG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HS_EVENTLOG_VERSION 1u
#define HS_EVENTLOG_MAX_RECORD (64u * 1024u * 1024u)

typedef enum hs_rec_type {
  HS_REC_HEADER = 1,   /* run configuration; always first */
  HS_REC_SPAWN = 2,    /* an agent was created */
  HS_REC_DELIVER = 3,  /* a message was taken by its recipient */
  HS_REC_OP = 4,       /* an asynchronous operation completed */
  HS_REC_EXIT = 5,     /* an agent ended, normally or by failure */
  HS_REC_LOG = 6,      /* ctx.log output */
  HS_REC_END = 7       /* the run ended; totals */
} hs_rec_type;

/* HS_REC_HEADER */
typedef struct hs_rec_header {
  uint64_t seed;
  uint32_t mode;             /* 0 lockstep, 1 free */
  uint32_t mailbox_capacity; /* messages per agent */
  uint64_t arena_bytes;      /* arena byte limit */
  uint64_t agent_memory;     /* per-agent (isolated) or per-team (light) Lua memory cap, bytes */
  uint64_t instruction_budget; /* Lua instructions per activation */
  uint64_t team_memory;      /* Lua memory cap of a light team's shared state, bytes */
  uint64_t max_steps;        /* the run stops after this many steps; 0 = no limit */
  uint64_t script_hash;      /* 64-bit FNV-1a of the main script's bytes */
  const char *script_path;   /* absolute path of the main script */
  uint32_t script_path_len;
  uint32_t argc;             /* script arguments, each a length-prefixed string */
  const char *const *argv;   /* argc strings (NUL-terminated when decoded) */
} hs_rec_header;

/* HS_REC_SPAWN */
typedef struct hs_rec_spawn {
  uint64_t step;
  uint32_t agent, parent, team; /* parent 0 for the first agent */
  uint32_t kind;                /* 0 isolated, 1 light, 2 native */
  uint64_t target_hash;         /* FNV-1a of the script source (0 for a function target) */
} hs_rec_spawn;

/* HS_REC_DELIVER */
typedef struct hs_rec_deliver {
  uint64_t step;
  uint32_t to, from;
  uint64_t lamport;    /* sender's Lamport time stamped on the message */
  uint64_t seq;        /* sender's sequence number */
  uint32_t flags;      /* 1 = exit notice */
  uint32_t len;        /* payload length */
  uint64_t data_hash;  /* FNV-1a of the payload */
} hs_rec_deliver;

/* HS_REC_OP */
typedef struct hs_rec_op {
  uint64_t step;
  uint32_t agent;
  uint32_t op_seq;     /* the agent's operation counter */
  int32_t status;      /* 0 or a negative HS_E* code */
  const char *kind;    /* operation name ("timer") */
  uint32_t kind_len;
  const void *data;    /* result bytes, recorded in full so a replay can feed them back */
  uint32_t data_len;
} hs_rec_op;

/* HS_REC_EXIT */
typedef struct hs_rec_exit {
  uint64_t step;
  uint32_t agent;
  int32_t status;      /* 0 normal exit, else a negative HS_E* code */
  uint64_t lamport;
  uint32_t len;        /* result length */
  uint64_t data_hash;  /* FNV-1a of the result */
  const char *message; /* error message, empty when status is 0 */
  uint32_t message_len;
} hs_rec_exit;

/* HS_REC_LOG */
typedef struct hs_rec_log {
  uint64_t step;
  uint32_t agent;
  const char *text;
  uint32_t text_len;
} hs_rec_log;

/* HS_REC_END */
typedef struct hs_rec_end {
  uint64_t step;       /* virtual time at the end */
  uint64_t agents;     /* agents ever spawned */
  uint64_t messages;   /* messages delivered */
  uint64_t failed;     /* agents that failed */
} hs_rec_end;

typedef struct hs_record {
  hs_rec_type type;
  union {
    hs_rec_header header;
    hs_rec_spawn spawn;
    hs_rec_deliver deliver;
    hs_rec_op op;
    hs_rec_exit exit;
    hs_rec_log log;
    hs_rec_end end;
  } u;
} hs_record;

/* 64-bit FNV-1a, the hash used for payloads and scripts in the log. */
uint64_t hs_fnv1a64(const void *data, size_t len);
/* CRC-32 (IEEE), as zlib's crc32(crc, data, len); start with crc = 0. */
uint32_t hs_crc32(uint32_t crc, const void *data, size_t len);

/* ---- writing ---- */
typedef struct hs_eventlog_writer hs_eventlog_writer;

/* Creates (truncating) the file at path, writes the magic, version and the header record.
 * On success *out owns the writer. Writes are buffered; hs_eventlog_writer_close flushes. */
int hs_eventlog_writer_open(const char *path, const hs_rec_header *header,
                            hs_eventlog_writer **out);
/* Appends one record (rec->type must not be HS_REC_HEADER). */
int hs_eventlog_writer_append(hs_eventlog_writer *w, const hs_record *rec);
/* Writes buffered records to the file (not fsync). */
int hs_eventlog_writer_flush(hs_eventlog_writer *w);
/* Flushes, closes and frees. Returns the first error of the flush or close. NULL is ignored. */
int hs_eventlog_writer_close(hs_eventlog_writer *w);
uint64_t hs_eventlog_writer_count(const hs_eventlog_writer *w); /* records written, header incl. */

/* ---- reading ---- */
typedef struct hs_eventlog_reader hs_eventlog_reader;

/* Opens a log, checks magic and version and decodes the header record into *header (its strings
 * valid until the reader is closed). Errors: HS_ENOENT, HS_EIO, HS_ECORRUPT (bad magic, header),
 * HS_EVERSION, HS_ETRUNC (shorter than magic + version + header). */
int hs_eventlog_reader_open(const char *path, hs_eventlog_reader **out, hs_rec_header *header);
/* Same, over a buffer in memory (copied). name is used in messages. */
int hs_eventlog_reader_open_mem(const void *data, size_t len, const char *name,
                                hs_eventlog_reader **out, hs_rec_header *header);
/* Decodes the next record into *rec. Returns 1 if a record was read, 0 at the end of the log (a
 * partial last record counts as the end; see hs_eventlog_reader_truncated), or a negative code:
 * HS_ECORRUPT for a bad checksum, an unknown type, or fields that do not fit the record's length. */
int hs_eventlog_reader_next(hs_eventlog_reader *r, hs_record *rec);
/* Number of the record last returned: 0 for the header (after open), 1 for the first after it. */
uint64_t hs_eventlog_reader_index(const hs_eventlog_reader *r);
/* Byte offset in the file of the record last returned. */
uint64_t hs_eventlog_reader_offset(const hs_eventlog_reader *r);
/* 1 if the log ended with a partial record (a crash while writing), else 0. Valid after next()
 * returned 0. */
int hs_eventlog_reader_truncated(const hs_eventlog_reader *r);
void hs_eventlog_reader_close(hs_eventlog_reader *r);

/* Last error message of the calling thread for this module ("log.bin: record 12 at offset 4410:
 * checksum mismatch"). Never NULL. */
const char *hs_eventlog_last_error(void);

/* Describes a record on one line ("deliver step=3 to=5 from=2 lamport=7 seq=1 len=4") into buf,
 * for divergence reports and `hswarm log`. Returns buf. */
char *hs_record_describe(const hs_record *rec, char *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif
