/* hash.h: one 64-bit mixing function for the hash tables of the library (tokenizer tables, the
 * prefix cache, the scheduler's id tables): SplitMix64's finalizer, a bijection whose every
 * output bit depends on every input bit. Internal. */
#ifndef HS_CORE_HASH_H
#define HS_CORE_HASH_H

#include <stdint.h>

static inline uint64_t hs_mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

#endif
