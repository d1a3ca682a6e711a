/* error.c: names of the library's error codes (include/hswarm/error.h). */
#include "hswarm/error.h"

const char *hs_strerror(int code) {
  switch (code) {
  case HS_OK: return "success";
  case HS_EINVAL: return "invalid argument";
  case HS_ENOMEM: return "out of memory";
  case HS_ENOSPC: return "capacity exhausted";
  case HS_ESTALE: return "stale or invalid handle";
  case HS_ENOENT: return "no such entry";
  case HS_EFULL: return "queue full";
  case HS_EIO: return "input/output error";
  case HS_ECORRUPT: return "corrupt data";
  case HS_ETRUNC: return "truncated data";
  case HS_EPERM: return "operation not permitted in this state";
  case HS_ESCRIPT: return "script error";
  case HS_ELIMIT: return "resource limit exceeded";
  case HS_EDIVERGE: return "replay diverged";
  case HS_EVERSION: return "unsupported version";
  case HS_EBUSY: return "busy";
  default: return "unknown error";
  }
}
