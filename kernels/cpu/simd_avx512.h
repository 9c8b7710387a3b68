// The AVX-512 "vector arch" for the kernels written once over one
// (gemm_tiles.h, attention_rows.h): 16 fp32 lanes. Include only from files
// compiled with the AVX-512 flags (kernels/CMakeLists.txt); anonymous
// namespace for the reason gemm_tiles.h gives.
#pragma once

#include <cstdint>

// GCC 12's intrinsics headers seed "undefined" registers with `__Y = __Y`,
// which -Wuninitialized flags once inlined (a false positive).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

namespace kaon::kernels::cpu {
namespace {

struct Avx512 {
  using V = __m512;
  static constexpr int kLanes = 16;
  static __mmask16 Mask(int n) { return static_cast<__mmask16>((1u << n) - 1); }
  static V Zero() { return _mm512_setzero_ps(); }
  static V Set1(float f) { return _mm512_set1_ps(f); }
  static V Load(const float* p) { return _mm512_loadu_ps(p); }
  static V LoadTail(const float* p, int n) { return _mm512_maskz_loadu_ps(Mask(n), p); }
  static void Store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static void StoreTail(float* p, V v, int n) { _mm512_mask_storeu_ps(p, Mask(n), v); }
  // bf16 → fp32 is exact: the bf16 bits become the top half of the float.
  static V LoadBf16(const uint16_t* p) {
    return _mm512_castsi512_ps(
        _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))), 16));
  }
  static V LoadBf16Tail(const uint16_t* p, int n) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(Mask(n), p)), 16));
  }
  static V Mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V Fma(V a, V b, V acc) { return _mm512_fmadd_ps(a, b, acc); }
  // Lane i + lane i + 8, then + 4, + 2, + 1.
  static float Sum(V v) {
    const __m256 s8 = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
  }
};

}  // namespace
}  // namespace kaon::kernels::cpu
