/* engine/cpu/simd.h: target attributes and the fixed horizontal reduction shared by the SIMD
 * kernels (internal to engine/cpu).
 *
 * Kernels are compiled for their instruction set with GCC function attributes, so the library
 * needs no per-file flags and still runs (on the reference path) on a CPU without AVX2; the
 * backend only calls a path after checking the CPU supports it. Helpers used from such functions
 * must carry the same attribute to be inlined.
 *
 * Every SIMD dot product accumulates 16 f32 lanes and ends with hs_cpu_sum16's order (types.h):
 * (v[i] + v[i+8]), then + the upper four, then + the upper two, then the last two. The AVX2
 * paths hold the 16 lanes as two 8-lane halves and reduce them in the same order, so for the same
 * lane values AVX2 and AVX-512 give the same bits. */
#ifndef HS_ENGINE_CPU_SIMD_H
#define HS_ENGINE_CPU_SIMD_H

#if defined(__x86_64__) && defined(__GNUC__)
#define HS_CPU_X86 1
#include <immintrin.h>

#define HS_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#define HS_TARGET_AVX512 \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")))
/* lower-case aliases, for macros that paste an ISA name */
#define HS_TARGET_avx2 HS_TARGET_AVX2
#define HS_TARGET_avx512 HS_TARGET_AVX512
#define HS_INLINE static inline __attribute__((always_inline))

/* hs_cpu_sum16 of a 16-lane vector. */
HS_INLINE HS_TARGET_AVX512 float hs_sum16_avx512(__m512 v) {
  __m256 s8 = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
  __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
}

/* The 8 lanes of v summed in a fixed tree: halves, then pairs, then the last two. */
HS_INLINE HS_TARGET_AVX2 float hs_sum8_avx2(__m256 v) {
  __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
}

/* hs_cpu_sum16 of lanes 0..7 (lo) and 8..15 (hi): the halves added lane by lane first. */
HS_INLINE HS_TARGET_AVX2 float hs_sum16_avx2(__m256 lo, __m256 hi) {
  return hs_sum8_avx2(_mm256_add_ps(lo, hi));
}
#endif

#endif
