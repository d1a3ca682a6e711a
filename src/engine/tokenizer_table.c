/* tokenizer_table.c: the small data structures under the tokenizers and the vocabulary trainer.
 *
 * - hs_strtab: strings numbered in the order added, stored NUL-terminated in one growing pool
 *   (so a Llama-3 vocabulary is a handful of allocations, not 128k), with an open-addressing
 *   index from string to number. The index stores entry numbers plus 32 bits of each hash, so
 *   a probe compares bytes only when the hashes agree. Duplicates are allowed: the index points
 *   to whichever entry was mapped last, which is llama.cpp's rule for a vocabulary that holds the
 *   same string twice.
 * - hs_u64map: 64-bit keys to 32-bit values, open addressing with linear probing; merges and
 *   pair counts are keyed by (left id << 32 | right id).
 * - UTF-8 helpers, and GPT-2's byte <-> printable-character table: bytes that are printable
 *   Latin-1 (! to ~, ¡ to ¬, ® to ÿ) stand for themselves, the other 68 bytes get code points
 *   256, 257, ... in byte order, so every byte string is spelled in visible characters. */
#include <stdlib.h>
#include <string.h>

#include "engine/tokenizer_internal.h"
#include "hswarm/alloc.h"
#include "hswarm/error.h"

/* ---- hashing ---- */

uint64_t hs_tok_hash(const void *p, size_t n) {
  const unsigned char *s = p;
  uint64_t h = 0x9e3779b97f4a7c15ull ^ (n * 0xff51afd7ed558ccdull);
  while (n >= 8) {
    uint64_t k;
    memcpy(&k, s, 8);
    h = (h ^ hs_tok_mix64(k)) * 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 29;
    s += 8;
    n -= 8;
  }
  if (n) {
    uint64_t k = 0;
    memcpy(&k, s, n);
    h = (h ^ hs_tok_mix64(k ^ 0x5bd1e995u)) * 0xc4ceb9fe1a85ec53ull;
  }
  return hs_tok_mix64(h);
}

/* ---- string table ---- */

void hs_strtab_init(hs_strtab *t) { memset(t, 0, sizeof *t); }

void hs_strtab_free(hs_strtab *t) {
  if (!t) return;
  hs_free(t->pool);
  hs_free(t->off);
  hs_free(t->len);
  hs_free(t->hash);
  hs_free(t->slots);
  memset(t, 0, sizeof *t);
}

static int grow(void **p, size_t elem, uint32_t *cap, uint32_t need) {
  if (need <= *cap) return 0;
  uint64_t c = *cap ? *cap : 64;
  while (c < need) c *= 2;
  if (c > UINT32_MAX) c = UINT32_MAX;
  void *q = hs_realloc(*p, (size_t)c * elem);
  if (!q) return HS_ENOMEM;
  *p = q;
  *cap = (uint32_t)c;
  return 0;
}

/* Rebuilds the index with room for at least `want` mapped entries at load <= 1/2. */
static int rehash(hs_strtab *t, uint32_t want) {
  uint64_t size = 64;
  while (size < (uint64_t)want * 2) size *= 2;
  if (size > (1ull << 31)) return HS_ENOMEM;
  uint32_t *slots = hs_calloc((size_t)size, sizeof *slots);
  if (!slots) return HS_ENOMEM;
  uint32_t mask = (uint32_t)size - 1;
  if (t->slots) {
    for (uint64_t i = 0; i <= t->slot_mask; i++) {
      uint32_t e = t->slots[i];
      if (!e) continue;
      uint32_t j = t->hash[e - 1] & mask;
      while (slots[j]) j = (j + 1) & mask;
      slots[j] = e;
    }
  }
  hs_free(t->slots);
  t->slots = slots;
  t->slot_mask = mask;
  return 0;
}

/* The slot holding s, or the empty slot where it would go. */
static uint32_t *find_slot(const hs_strtab *t, const char *s, size_t n, uint32_t h) {
  uint32_t j = h & t->slot_mask;
  for (;;) {
    uint32_t *slot = &t->slots[j];
    uint32_t e = *slot;
    if (!e) return slot;
    e--;
    if (t->hash[e] == h && t->len[e] == n && memcmp(t->pool + t->off[e], s, n) == 0) return slot;
    j = (j + 1) & t->slot_mask;
  }
}

int hs_strtab_add(hs_strtab *t, const char *s, size_t n, bool map, uint32_t *id) {
  if (n >= UINT32_MAX || t->n >= UINT32_MAX - 1) return HS_ENOMEM;
  uint32_t need = t->n + 1;
  if (need > t->cap) {
    uint32_t c0 = t->cap, c1 = t->cap, c2 = t->cap, c3 = t->cap;
    if (grow((void **)&t->off, sizeof *t->off, &c0, need) ||
        grow((void **)&t->len, sizeof *t->len, &c1, need) ||
        grow((void **)&t->hash, sizeof *t->hash, &c2, need))
      return HS_ENOMEM;
    c3 = c0 < c1 ? c0 : c1;
    t->cap = c3 < c2 ? c3 : c2;
  }
  if (t->pool_len + n + 1 > t->pool_cap) {
    size_t c = t->pool_cap ? t->pool_cap : 4096;
    while (c < t->pool_len + n + 1) {
      if (c > SIZE_MAX / 2) return HS_ENOMEM;
      c *= 2;
    }
    char *q = hs_realloc(t->pool, c);
    if (!q) return HS_ENOMEM;
    t->pool = q;
    t->pool_cap = c;
  }
  if (map && (!t->slots || (uint64_t)(t->n_mapped + 1) * 2 > (uint64_t)t->slot_mask + 1)) {
    int rc = rehash(t, t->n_mapped * 2 + 64);
    if (rc) return rc;
  }
  uint32_t e = t->n;
  uint32_t h = (uint32_t)hs_tok_hash(s, n);
  t->off[e] = t->pool_len;
  t->len[e] = (uint32_t)n;
  t->hash[e] = h;
  if (n) memcpy(t->pool + t->pool_len, s, n);
  t->pool[t->pool_len + n] = 0;
  t->pool_len += n + 1;
  t->n++;
  if (map) {
    uint32_t *slot = find_slot(t, s, n, h);
    if (!*slot) t->n_mapped++;
    *slot = e + 1;
  }
  if (id) *id = e;
  return 0;
}

uint32_t hs_strtab_find(const hs_strtab *t, const char *s, size_t n) {
  if (!t->slots || n >= UINT32_MAX) return HS_TOK_NONE;
  uint32_t e = *find_slot(t, s, n, (uint32_t)hs_tok_hash(s, n));
  return e ? e - 1 : HS_TOK_NONE;
}

int hs_strtab_intern(hs_strtab *t, const char *s, size_t n, uint32_t *id, bool *added) {
  uint32_t e = hs_strtab_find(t, s, n);
  if (e != HS_TOK_NONE) {
    if (id) *id = e;
    if (added) *added = false;
    return 0;
  }
  if (added) *added = true;
  return hs_strtab_add(t, s, n, true, id);
}

/* ---- 64-bit key map ---- */

void hs_u64map_init(hs_u64map *m) { memset(m, 0, sizeof *m); }

void hs_u64map_free(hs_u64map *m) {
  if (!m) return;
  hs_free(m->keys);
  hs_free(m->vals);
  memset(m, 0, sizeof *m);
}

uint32_t hs_u64map_get(const hs_u64map *m, uint64_t key) {
  if (!m->keys) return HS_TOK_NONE;
  uint32_t j = (uint32_t)hs_tok_mix64(key) & m->mask;
  for (;;) {
    uint64_t k = m->keys[j];
    if (k == key) return m->vals[j];
    if (k == UINT64_MAX) return HS_TOK_NONE;
    j = (j + 1) & m->mask;
  }
}

static int u64map_grow(hs_u64map *m) {
  uint64_t size = m->keys ? ((uint64_t)m->mask + 1) * 2 : 64;
  if (size > (1ull << 31)) return HS_ENOMEM;
  uint64_t *keys = hs_malloc((size_t)size * sizeof *keys);
  uint32_t *vals = hs_malloc((size_t)size * sizeof *vals);
  if (!keys || !vals) {
    hs_free(keys);
    hs_free(vals);
    return HS_ENOMEM;
  }
  memset(keys, 0xff, (size_t)size * sizeof *keys);
  uint32_t mask = (uint32_t)size - 1;
  if (m->keys) {
    for (uint64_t i = 0; i <= m->mask; i++) {
      if (m->keys[i] == UINT64_MAX) continue;
      uint32_t j = (uint32_t)hs_tok_mix64(m->keys[i]) & mask;
      while (keys[j] != UINT64_MAX) j = (j + 1) & mask;
      keys[j] = m->keys[i];
      vals[j] = m->vals[i];
    }
  }
  hs_free(m->keys);
  hs_free(m->vals);
  m->keys = keys;
  m->vals = vals;
  m->mask = mask;
  return 0;
}

int hs_u64map_put(hs_u64map *m, uint64_t key, uint32_t val, uint32_t **slot, bool *added) {
  if (!m->keys || (uint64_t)(m->count + 1) * 2 > (uint64_t)m->mask + 1) {
    int rc = u64map_grow(m);
    if (rc) return rc;
  }
  uint32_t j = (uint32_t)hs_tok_mix64(key) & m->mask;
  for (;;) {
    uint64_t k = m->keys[j];
    if (k == key) {
      if (slot) *slot = &m->vals[j];
      if (added) *added = false;
      return 0;
    }
    if (k == UINT64_MAX) break;
    j = (j + 1) & m->mask;
  }
  m->keys[j] = key;
  m->vals[j] = val;
  m->count++;
  if (slot) *slot = &m->vals[j];
  if (added) *added = true;
  return 0;
}

/* ---- UTF-8 ---- */

size_t hs_utf8_valid_len(const unsigned char *p, size_t n, uint32_t *cp) {
  if (n == 0) return 0;
  unsigned c = p[0];
  if (c < 0x80) {
    if (cp) *cp = c;
    return 1;
  }
  size_t need;
  uint32_t v;
  unsigned lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
  if (c >= 0xc2 && c <= 0xdf) {
    need = 2;
    v = c & 0x1f;
  } else if (c >= 0xe0 && c <= 0xef) {
    need = 3;
    v = c & 0x0f;
    if (c == 0xe0) lo = 0xa0;
    if (c == 0xed) hi = 0x9f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    need = 4;
    v = c & 0x07;
    if (c == 0xf0) lo = 0x90;
    if (c == 0xf4) hi = 0x8f;
  } else {
    return 0;
  }
  if (n < need) return 0;
  for (size_t i = 1; i < need; i++) {
    unsigned b = p[i];
    unsigned l = i == 1 ? lo : 0x80, h = i == 1 ? hi : 0xbf;
    if (b < l || b > h) return 0;
    v = (v << 6) | (b & 0x3f);
  }
  if (cp) *cp = v;
  return need;
}

size_t hs_utf8_put(uint32_t cp, char *out) {
  unsigned char *o = (unsigned char *)out;
  if (cp < 0x80) {
    o[0] = (unsigned char)cp;
    return 1;
  }
  if (cp < 0x800) {
    o[0] = (unsigned char)(0xc0 | (cp >> 6));
    o[1] = (unsigned char)(0x80 | (cp & 0x3f));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (unsigned char)(0xe0 | (cp >> 12));
    o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
    o[2] = (unsigned char)(0x80 | (cp & 0x3f));
    return 3;
  }
  o[0] = (unsigned char)(0xf0 | (cp >> 18));
  o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
  o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
  o[3] = (unsigned char)(0x80 | (cp & 0x3f));
  return 4;
}

/* ---- GPT-2's byte map ---- */

static int printable(unsigned b) {
  return (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
}

uint32_t hs_bpe_byte_cp(unsigned b) {
  if (printable(b)) return b;
  /* the n-th non-printable byte (in byte order) is 256 + n */
  uint32_t n = 0;
  if (b <= 0x20) n = b;                                  /* 0x00..0x20: 33 bytes */
  else if (b >= 0x7f && b <= 0xa0) n = 33 + (b - 0x7f); /* 0x7f..0xa0: 34 bytes */
  else n = 67;                                           /* 0xad */
  return 256 + n;
}

int hs_bpe_cp_byte(uint32_t cp) {
  if (cp < 256) return printable(cp) ? (int)cp : -1;
  uint32_t n = cp - 256;
  if (n <= 32) return (int)n;
  if (n <= 66) return (int)(0x7f + (n - 33));
  if (n == 67) return 0xad;
  return -1;
}

size_t hs_bpe_map_bytes(const unsigned char *in, size_t n, char *out) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) o += hs_utf8_put(hs_bpe_byte_cp(in[i]), out + o);
  return o;
}

/* ---- scratch ---- */

int hs_tok_scratch_reserve(void **p, size_t *cap, size_t need) {
  if (need <= *cap) return 0;
  size_t c = *cap ? *cap : 256;
  while (c < need) {
    if (c > SIZE_MAX / 2) return HS_ENOMEM;
    c *= 2;
  }
  void *q = hs_realloc(*p, c);
  if (!q) return HS_ENOMEM;
  *p = q;
  *cap = c;
  return 0;
}

void hs_tok_scratch_free(hs_tok_scratch *s) {
  hs_free(s->sym);
  hs_free(s->heap);
  hs_free(s->buf);
  memset(s, 0, sizeof *s);
}
