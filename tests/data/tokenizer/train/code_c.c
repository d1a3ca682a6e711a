/* ring.c: a fixed-size ring buffer of bytes, single producer, single consumer. */
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct ring {
  unsigned char *data;
  size_t cap;            /* a power of two */
  _Atomic size_t head;   /* next byte to read */
  _Atomic size_t tail;   /* next byte to write */
} ring;

int ring_init(ring *r, size_t cap) {
  if (cap == 0 || (cap & (cap - 1)) != 0) return -1;
  r->data = malloc(cap);
  if (!r->data) return -2;
  r->cap = cap;
  atomic_store(&r->head, 0);
  atomic_store(&r->tail, 0);
  return 0;
}

void ring_free(ring *r) {
  free(r->data);
  r->data = NULL;
  r->cap = 0;
}

size_t ring_used(const ring *r) {
  size_t h = atomic_load_explicit(&r->head, memory_order_acquire);
  size_t t = atomic_load_explicit(&r->tail, memory_order_acquire);
  return t - h;
}

size_t ring_write(ring *r, const void *src, size_t n) {
  size_t h = atomic_load_explicit(&r->head, memory_order_acquire);
  size_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
  size_t room = r->cap - (t - h);
  if (n > room) n = room;
  const unsigned char *p = src;
  for (size_t i = 0; i < n; i++) {
    r->data[(t + i) & (r->cap - 1)] = p[i];
  }
  atomic_store_explicit(&r->tail, t + n, memory_order_release);
  return n;
}

size_t ring_read(ring *r, void *dst, size_t n) {
  size_t t = atomic_load_explicit(&r->tail, memory_order_acquire);
  size_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
  size_t avail = t - h;
  if (n > avail) n = avail;
  unsigned char *p = dst;
  for (size_t i = 0; i < n; i++) {
    p[i] = r->data[(h + i) & (r->cap - 1)];
  }
  atomic_store_explicit(&r->head, h + n, memory_order_release);
  return n;
}

static uint32_t crc32_table[256];

static void crc32_init(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    crc32_table[i] = c;
  }
}

uint32_t crc32(const void *buf, size_t len) {
  static int ready = 0;
  if (!ready) {
    crc32_init();
    ready = 1;
  }
  const uint8_t *p = buf;
  uint32_t c = 0xFFFFFFFFu;
  while (len--) c = crc32_table[(c ^ *p++) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

int main(int argc, char **argv) {
  ring r;
  if (ring_init(&r, 1024) != 0) return 1;
  const char *msg = argc > 1 ? argv[1] : "hello, ring buffer";
  size_t w = ring_write(&r, msg, strlen(msg));
  char out[64] = {0};
  size_t got = ring_read(&r, out, sizeof out - 1);
  if (got != w || memcmp(out, msg, got) != 0) {
    ring_free(&r);
    return 2;
  }
  uint32_t sum = crc32(out, got);
  ring_free(&r);
  return sum == 0 ? 3 : 0;
}
