/* timerheap.c: binary min-heap of virtual-clock timers; see timerheap.h. */
#include "core/timerheap.h"

#include "hswarm/alloc.h"
#include "hswarm/error.h"

static int before(const hs_timer *a, const hs_timer *b) {
  if (a->deadline != b->deadline) return a->deadline < b->deadline;
  if (a->agent != b->agent) return a->agent < b->agent;
  return a->serial < b->serial;
}

static void swap(hs_timer *a, hs_timer *b) {
  hs_timer t = *a;
  *a = *b;
  *b = t;
}

int hs_timerheap_push(hs_timerheap *h, hs_timer t) {
  if (h->count == h->cap) {
    size_t cap = h->cap ? h->cap * 2 : 64;
    hs_timer *items = hs_realloc(h->items, cap * sizeof *items);
    if (!items) return HS_ENOMEM;
    h->items = items;
    h->cap = cap;
  }
  size_t i = h->count++;
  h->items[i] = t;
  while (i > 0 && before(&h->items[i], &h->items[(i - 1) / 2])) {
    swap(&h->items[i], &h->items[(i - 1) / 2]);
    i = (i - 1) / 2;
  }
  return 0;
}

int hs_timerheap_pop_due(hs_timerheap *h, uint64_t now, hs_timer *out) {
  if (h->count == 0 || h->items[0].deadline > now) return 0;
  *out = h->items[0];
  h->items[0] = h->items[--h->count];
  size_t i = 0;
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < h->count && before(&h->items[l], &h->items[m])) m = l;
    if (r < h->count && before(&h->items[r], &h->items[m])) m = r;
    if (m == i) break;
    swap(&h->items[i], &h->items[m]);
    i = m;
  }
  return 1;
}

uint64_t hs_timerheap_next(const hs_timerheap *h) {
  return h->count ? h->items[0].deadline : UINT64_MAX;
}

void hs_timerheap_free(hs_timerheap *h) {
  hs_free(h->items);
  h->items = 0;
  h->count = h->cap = 0;
}
