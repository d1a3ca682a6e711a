/* timerheap.h: a binary min-heap of timers on the virtual clock (internal).
 * Each timer is (deadline step, agent id, serial); ties break by agent id then serial, so timers
 * due at the same step fire in a deterministic order. Cancellation is lazy: the runtime compares the
 * serial of a popped timer with the agent's current one and ignores stale timers. */
#ifndef HS_CORE_TIMERHEAP_H
#define HS_CORE_TIMERHEAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct hs_timer {
  uint64_t deadline;
  uint32_t agent;
  uint32_t serial;
} hs_timer;

typedef struct hs_timerheap {
  hs_timer *items;
  size_t count, cap;
} hs_timerheap;

int hs_timerheap_push(hs_timerheap *h, hs_timer t); /* 0 or HS_ENOMEM */
/* Pops the earliest timer if its deadline is <= now into *out: 1 popped, 0 none due. */
int hs_timerheap_pop_due(hs_timerheap *h, uint64_t now, hs_timer *out);
/* Earliest deadline, or UINT64_MAX when empty. */
uint64_t hs_timerheap_next(const hs_timerheap *h);
void hs_timerheap_free(hs_timerheap *h);

#endif
