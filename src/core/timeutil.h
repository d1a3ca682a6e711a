/* timeutil.h: the monotonic clock, for benchmarks and progress displays only (never the event log). */
#ifndef HS_CORE_TIMEUTIL_H
#define HS_CORE_TIMEUTIL_H
#include <stdint.h>
#include <time.h>

static inline uint64_t hs_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
#endif
