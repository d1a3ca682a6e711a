/* mailbox.h: an agent's bounded mailbox (internal to libhswarm).
 *
 * A mailbox is a ring of hs_msg. Its front holds messages delivered to the agent and not yet taken;
 * behind them sit messages sent but not yet delivered (lockstep mode delivers them at the next step
 * boundary, after sorting them by (Lamport time, sender, sequence)). Both count against the limit
 * given to hs_mailbox_push; exit notices of children bypass it, since a child's end cannot be
 * refused. The ring is allocated on first use and grows by doubling, so an idle agent costs only
 * the struct. Payloads are arena handles: a mailbox owns one reference per message it holds.
 * Not thread-safe: the runtime's loop thread owns every mailbox. */
#ifndef HS_CORE_MAILBOX_H
#define HS_CORE_MAILBOX_H

#include <stdint.h>

#include "hswarm/arena.h"

#define HS_MSG_EXIT 1u /* the message is a child's exit notice */

typedef struct hs_msg {
  hs_handle data;     /* payload (owned reference), or HS_HANDLE_NONE */
  uint64_t lamport;   /* sender's Lamport time when sending */
  uint64_t sent_ns;   /* monotonic send time, only when the latency probe is on */
  uint32_t from;      /* sender id */
  uint32_t seq;       /* sender's sequence number */
  uint32_t flags;     /* HS_MSG_* */
  int32_t status;     /* exit notices: the child's status (0 or HS_E*) */
} hs_msg;

typedef struct hs_mailbox {
  hs_msg *ring;        /* NULL until the first message */
  uint32_t size;       /* slots allocated (a power of two, or 0) */
  uint32_t head;       /* index of the oldest delivered message */
  uint32_t delivered;  /* messages ready to be taken */
  uint32_t pending;    /* messages behind them, not yet delivered */
} hs_mailbox;

/* Appends a message as pending (delivered = 0) or delivered (delivered = 1). Fails with HS_EFULL
 * when delivered + pending would pass limit (unless the message is an exit notice), HS_ENOMEM. */
int hs_mailbox_push(hs_mailbox *mb, const hs_msg *msg, uint32_t limit, int delivered);

/* Turns every pending message into a delivered one, ordered by (lamport, from, seq) among
 * themselves. Returns how many were delivered. If the sort's scratch space cannot be allocated
 * they are still delivered, in arrival order. */
uint32_t hs_mailbox_deliver_pending(hs_mailbox *mb);

/* The oldest delivered message, or NULL. */
static inline hs_msg *hs_mailbox_front(hs_mailbox *mb) {
  return mb->delivered ? &mb->ring[mb->head] : 0;
}

/* Removes the oldest delivered message into *out (the caller takes its reference). 0 or -1. */
int hs_mailbox_take(hs_mailbox *mb, hs_msg *out);

/* Removes the delivered exit notice sent by child `from` into *out. 0, or -1 if none. */
int hs_mailbox_take_exit(hs_mailbox *mb, uint32_t from, hs_msg *out);

/* Releases every held payload into arena (may be NULL) and frees the ring. */
void hs_mailbox_clear(hs_mailbox *mb, hs_arena *arena);

static inline uint32_t hs_mailbox_count(const hs_mailbox *mb) { return mb->delivered + mb->pending; }

#endif
