/* ring.c: a fixed-size ring buffer of bytes.
 *
 * The writer owns head, the reader owns tail; both wrap at cap. */
#include <stdint.h>
#include <string.h>

typedef struct {
	uint8_t *buf;	/* owned, cap bytes */
	size_t cap, head, tail;
} ring;

static size_t ring_used(const ring *r) {
	return r->head >= r->tail ? r->head - r->tail : r->cap - (r->tail - r->head);
}

int ring_push(ring *r, const void *p, size_t n) {
	if (n > r->cap - 1 - ring_used(r)) {
		return -1;		// full
	}
	for (size_t i = 0; i < n; i++) {
		r->buf[r->head] = ((const uint8_t *)p)[i];
		r->head = (r->head + 1) % r->cap;
	}
	return 0;
}

#define MAX(a, b) ((a) > (b) ? (a) : (b))
    /* four spaces */
        /* eight spaces */
	    /* tab then spaces */
    	/* spaces then tab */
const char *msg = "line\n\ttab \"quoted\" 0x7fffffff";
unsigned long long big = 18446744073709551615ULL;
