/* mailbox.c: an agent's bounded mailbox: a growable ring of delivered then pending messages.
 * See mailbox.h for the contract. Delivery of pending messages sorts them by the lockstep order
 * (sender's Lamport time, sender id, sequence); the common case of a single sender is already in
 * order and costs one linear check. */
#include "core/mailbox.h"

#include <stdlib.h>
#include <string.h>

#include "hswarm/alloc.h"
#include "hswarm/error.h"

#define MAILBOX_FIRST_SIZE 4u

static int grow(hs_mailbox *mb, uint32_t need) {
  uint32_t size = mb->size ? mb->size : MAILBOX_FIRST_SIZE;
  while (size < need) {
    if (size > UINT32_MAX / 2) return HS_ENOMEM;
    size *= 2;
  }
  if (size == mb->size) return 0;
  hs_msg *ring = hs_malloc((size_t)size * sizeof *ring);
  if (!ring) return HS_ENOMEM;
  uint32_t count = hs_mailbox_count(mb);
  for (uint32_t i = 0; i < count; i++) ring[i] = mb->ring[(mb->head + i) & (mb->size - 1)];
  hs_free(mb->ring);
  mb->ring = ring;
  mb->size = size;
  mb->head = 0;
  return 0;
}

int hs_mailbox_push(hs_mailbox *mb, const hs_msg *msg, uint32_t limit, int delivered) {
  uint32_t count = hs_mailbox_count(mb);
  if (count >= limit && !(msg->flags & HS_MSG_EXIT)) return HS_EFULL;
  if (count + 1 > mb->size) {
    int rc = grow(mb, count + 1);
    if (rc) return rc;
  }
  if (delivered && mb->pending) {
    /* Free-running mode never leaves messages pending; keep order if it ever mixes. */
    hs_mailbox_deliver_pending(mb);
  }
  mb->ring[(mb->head + count) & (mb->size - 1)] = *msg;
  if (delivered)
    mb->delivered++;
  else
    mb->pending++;
  return 0;
}

static int msg_before(const hs_msg *a, const hs_msg *b) {
  if (a->lamport != b->lamport) return a->lamport < b->lamport;
  if (a->from != b->from) return a->from < b->from;
  return a->seq < b->seq;
}

static int msg_cmp(const void *pa, const void *pb) {
  const hs_msg *a = pa, *b = pb;
  if (msg_before(a, b)) return -1;
  if (msg_before(b, a)) return 1;
  return 0;
}

uint32_t hs_mailbox_deliver_pending(hs_mailbox *mb) {
  uint32_t n = mb->pending;
  if (n == 0) return 0;
  uint32_t mask = mb->size - 1, first = mb->head + mb->delivered;
  int sorted = 1;
  for (uint32_t i = 1; i < n && sorted; i++)
    sorted = !msg_before(&mb->ring[(first + i) & mask], &mb->ring[(first + i - 1) & mask]);
  if (!sorted) {
    hs_msg *tmp = hs_malloc((size_t)n * sizeof *tmp);
    if (tmp) {
      for (uint32_t i = 0; i < n; i++) tmp[i] = mb->ring[(first + i) & mask];
      qsort(tmp, n, sizeof *tmp, msg_cmp);
      for (uint32_t i = 0; i < n; i++) mb->ring[(first + i) & mask] = tmp[i];
      hs_free(tmp);
    }
  }
  mb->delivered += n;
  mb->pending = 0;
  return n;
}

int hs_mailbox_take(hs_mailbox *mb, hs_msg *out) {
  if (!mb->delivered) return -1;
  *out = mb->ring[mb->head];
  mb->head = (mb->head + 1) & (mb->size - 1);
  mb->delivered--;
  return 0;
}

int hs_mailbox_take_exit(hs_mailbox *mb, uint32_t from, hs_msg *out) {
  uint32_t mask = mb->size - 1;
  for (uint32_t i = 0; i < mb->delivered; i++) {
    hs_msg *m = &mb->ring[(mb->head + i) & mask];
    if (!(m->flags & HS_MSG_EXIT) || m->from != from) continue;
    *out = *m;
    /* close the gap: shift the later messages (delivered and pending) one slot forward */
    uint32_t count = hs_mailbox_count(mb);
    for (uint32_t j = i; j + 1 < count; j++)
      mb->ring[(mb->head + j) & mask] = mb->ring[(mb->head + j + 1) & mask];
    mb->delivered--;
    return 0;
  }
  return -1;
}

void hs_mailbox_clear(hs_mailbox *mb, hs_arena *arena) {
  uint32_t count = hs_mailbox_count(mb);
  for (uint32_t i = 0; i < count && arena; i++) {
    hs_handle h = mb->ring[(mb->head + i) & (mb->size - 1)].data;
    if (h != HS_HANDLE_NONE) hs_arena_release(arena, h);
  }
  hs_free(mb->ring);
  memset(mb, 0, sizeof *mb);
}
