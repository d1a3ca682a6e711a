/* hswarm/error.h: error codes shared by every module of libhswarm.
 *
 * A fallible function returns int: 0 on success or one of the negative HS_E* codes below.
 * hs_strerror() names a code in a short static string. Objects that can fail in more than one
 * way (the arena, the event log, the runtime) also keep a last-error message with detail (which
 * file, which offset, which agent); see each module's *_last_error() function. */
#ifndef HSWARM_ERROR_H
#define HSWARM_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

enum hs_error {
  HS_OK = 0,
  HS_EINVAL = -1,     /* an argument is out of range or malformed */
  HS_ENOMEM = -2,     /* an allocation failed (or the allocation hook refused it) */
  HS_ENOSPC = -3,     /* a fixed capacity (arena bytes or slots, log size) is exhausted */
  HS_ESTALE = -4,     /* a handle is stale, released, forged or was never valid */
  HS_ENOENT = -5,     /* no such agent, file or entry */
  HS_EFULL = -6,      /* a bounded queue (a mailbox) is full */
  HS_EIO = -7,        /* an operating-system I/O call failed */
  HS_ECORRUPT = -8,   /* stored data fails a check (bad magic, checksum, field out of range) */
  HS_ETRUNC = -9,     /* stored data ends before a complete item */
  HS_EPERM = -10,     /* the operation is not allowed in this state (e.g. writing a published blob) */
  HS_ESCRIPT = -11,   /* an agent script failed (syntax or runtime error) */
  HS_ELIMIT = -12,    /* an agent exceeded a resource limit (memory, instructions) */
  HS_EDIVERGE = -13,  /* a replay differs from its log */
  HS_EVERSION = -14,  /* a file was written by an unsupported version */
  HS_EBUSY = -15      /* the object is in use (e.g. not yet published) */
};

/* Returns a short static English name for an error code ("stale handle"). Never NULL. */
const char *hs_strerror(int code);

#ifdef __cplusplus
}
#endif
#endif
