/* kv_pool.c: the KV block pool (see kv.h): one allocation of fixed-size blocks made at model
 * open, a free list, storing a position's keys and values, and converting f16 blocks to f32 for
 * attention.
 *
 * The budget is fixed at start-up: the pool never grows, so a model's KV memory is known in
 * advance and a request that cannot fit is refused instead of taking memory from the others. The
 * allocation is made at once but the system commits pages only as blocks are first used.
 *
 * f16 storage halves the memory of f32 and the bytes attention reads. Values are rounded to
 * nearest even when stored; reading converts exactly (every f16 is an f32), so the conversion
 * gives the same bits whichever instruction set does it: vcvtph2ps (AVX-512, AVX2 with F16C) or
 * the scalar reference. */
#include <string.h>

#include "engine/kv.h"
#include "hswarm/alloc.h"
#include "hswarm/error.h"
#include "hswarm/quant.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HAVE_X86 1
#endif

size_t hs_kv_block_bytes(uint32_t n_layer, uint32_t n_head_kv, uint32_t head_dim,
                         hs_kv_type type) {
  return (size_t)n_layer * n_head_kv * 2 * HS_KV_BLOCK * head_dim * (type == HS_KV_F32 ? 4 : 2);
}

int hs_kv_pool_init(hs_kv_pool *p, uint32_t n_layer, uint32_t n_head_kv, uint32_t head_dim,
                    hs_kv_type type, size_t budget) {
  memset(p, 0, sizeof *p);
  p->type = type;
  p->elem = type == HS_KV_F32 ? 4 : 2;
  p->n_heads_kv = n_head_kv;
  p->v_offset = (size_t)HS_KV_BLOCK * head_dim * p->elem;
  p->head_bytes = 2 * p->v_offset;
  p->block_bytes = hs_kv_block_bytes(n_layer, n_head_kv, head_dim, type);
  size_t n = budget / p->block_bytes;
  if (n == 0) return HS_EINVAL;
  if (n > UINT32_MAX - 1) n = UINT32_MAX - 1;
  p->mem = hs_malloc(n * p->block_bytes);
  p->free_list = hs_malloc(n * sizeof *p->free_list);
  if (!p->mem || !p->free_list) {
    hs_kv_pool_free(p);
    return HS_ENOMEM;
  }
  p->n_blocks = (uint32_t)n;
  /* block 0 on top: blocks are taken in address order */
  for (uint32_t i = 0; i < p->n_blocks; i++) p->free_list[i] = p->n_blocks - 1 - i;
  p->n_free = p->n_blocks;
  return 0;
}

void hs_kv_pool_free(hs_kv_pool *p) {
  hs_free(p->mem);
  hs_free(p->free_list);
  memset(p, 0, sizeof *p);
}

uint32_t hs_kv_pool_take(hs_kv_pool *p) {
  if (p->n_free == 0) return HS_KV_NONE;
  uint32_t b = p->free_list[--p->n_free];
  memset(p->mem + (size_t)b * p->block_bytes, 0, p->block_bytes);
  return b;
}

void hs_kv_pool_put(hs_kv_pool *p, uint32_t b) { p->free_list[p->n_free++] = b; }

void hs_kv_pool_store(hs_kv_pool *p, uint32_t b, uint32_t l, uint32_t j, size_t hd,
                      const float *k, const float *v) {
  for (uint32_t h = 0; h < p->n_heads_kv; h++) {
    uint8_t *kb = hs_kv_pool_head(p, b, l, h), *vb = kb + p->v_offset;
    const float *kh = k + h * hd, *vh = v + h * hd;
    if (p->type == HS_KV_F32) {
      float *K = (float *)(void *)kb, *V = (float *)(void *)vb + (size_t)j * hd;
      for (size_t d = 0; d < hd; d++) K[d * HS_KV_BLOCK + j] = kh[d];
      memcpy(V, vh, hd * sizeof *V);
    } else {
      uint16_t *K = (uint16_t *)(void *)kb, *V = (uint16_t *)(void *)vb + (size_t)j * hd;
      for (size_t d = 0; d < hd; d++) K[d * HS_KV_BLOCK + j] = hs_quant_f32_to_fp16(kh[d]);
      for (size_t d = 0; d < hd; d++) V[d] = hs_quant_f32_to_fp16(vh[d]);
    }
  }
}

/* ---- f16 -> f32 ---- */

static void f16_ref(const uint16_t *src, float *dst, size_t n) {
  for (size_t i = 0; i < n; i++) dst[i] = hs_quant_fp16_to_f32(src[i]);
}

#ifdef HAVE_X86
__attribute__((target("avx2,f16c"))) static void f16_avx2(const uint16_t *src, float *dst,
                                                            size_t n) {
  for (size_t i = 0; i < n; i += 8)
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
}

__attribute__((target("avx512f"))) static void f16_avx512(const uint16_t *src, float *dst,
                                                          size_t n) {
  for (size_t i = 0; i < n; i += 16)
    _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(src + i))));
}
#endif

hs_kv_f16_fn hs_kv_f16_to_f32_for(hs_cpu_isa isa) {
#ifdef HAVE_X86
  if (isa == HS_CPU_ISA_AVX512) return f16_avx512;
  if (isa == HS_CPU_ISA_AVX2) return f16_avx2;
#endif
  (void)isa;
  return f16_ref;
}
