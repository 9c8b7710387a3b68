// The AVX2 + FMA "vector arch" (see simd_avx512.h): 8 fp32 lanes. Include
// only from files compiled with -mavx2 -mfma.
#pragma once

#include <cstdint>

#include <immintrin.h>

namespace kaon::kernels::cpu {
namespace {

struct Avx2 {
  using V = __m256;
  static constexpr int kLanes = 8;
  static __m256i Mask(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static V Zero() { return _mm256_setzero_ps(); }
  static V Set1(float f) { return _mm256_set1_ps(f); }
  static V Load(const float* p) { return _mm256_loadu_ps(p); }
  static V LoadTail(const float* p, int n) { return _mm256_maskload_ps(p, Mask(n)); }
  static void Store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static void StoreTail(float* p, V v, int n) { _mm256_maskstore_ps(p, Mask(n), v); }
  // bf16 → fp32 is exact: the bf16 bits become the top half of the float.
  static V LoadBf16(const uint16_t* p) {
    return _mm256_castsi256_ps(
        _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16));
  }
  static V LoadBf16Tail(const uint16_t* p, int n) {
    alignas(16) uint16_t tail[kLanes] = {};
    for (int i = 0; i < n; ++i) tail[i] = p[i];
    return LoadBf16(tail);
  }
  static V Mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V Fma(V a, V b, V acc) { return _mm256_fmadd_ps(a, b, acc); }
  // Lane i + lane i + 4, then + 2, + 1.
  static float Sum(V v) {
    const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
  }
};

}  // namespace
}  // namespace kaon::kernels::cpu
