// gemm.h's bf16 path on CPUs with AVX512_BF16 (Zen 4+, Sapphire Rapids+):
// x is rounded to bf16 (nearest even) as it is loaded, and vdpbf16ps adds
// 32 bf16 products per instruction into 16 fp32 lanes, twice the
// multiply-adds of an fp32 FMA and half the weight bytes, as llama.cpp's
// BF16 path does. The same 4 × 6 / 1 × 8 tiles as the AVX-512 path.
#include "kernels/cpu/gemm_paths.h"
#include "kernels/cpu/gemm_tiles.h"
#include "kernels/cpu/simd_avx512.h"

namespace kaon::kernels::cpu {
namespace {

struct Avx512Bf16Dot {
  using Acc = __m512;
  using X = __m512bh;
  using Wv = __m512bh;
  using XElem = float;
  using W = uint16_t;
  static constexpr int kStep = 32;
  static Acc Zero() { return _mm512_setzero_ps(); }
  // Elements [0, 16) in the low half, [16, 32) in the high, as w's pairs.
  static X LoadX(const float* p) { return _mm512_cvtne2ps_pbh(_mm512_loadu_ps(p + 16), _mm512_loadu_ps(p)); }
  static X LoadXTail(const float* p, int n) {
    const __m512 lo = _mm512_maskz_loadu_ps(Avx512::Mask(std::min(n, 16)), p);
    const __m512 hi = n > 16 ? _mm512_maskz_loadu_ps(Avx512::Mask(n - 16), p + 16) : _mm512_setzero_ps();
    return _mm512_cvtne2ps_pbh(hi, lo);
  }
  static Wv LoadW(const uint16_t* p) { return (__m512bh)_mm512_loadu_si512(p); }
  static Wv LoadWTail(const uint16_t* p, int n) {
    return (__m512bh)_mm512_maskz_loadu_epi16(static_cast<__mmask32>((uint64_t{1} << n) - 1), p);
  }
  static Acc Dot(const X& x, const Wv& w, const Acc& acc) { return _mm512_dpbf16_ps(acc, x, w); }
  static float Sum(const Acc& v) { return Avx512::Sum(v); }
};

// x rounded to bf16 beforehand (RoundToBf16Avx512Bf16, the same rounding
// LoadX does), so the inner loop only loads: the same products and sums,
// bit for bit, without converting each row of x once per column tile.
struct Avx512Bf16PreRoundedDot : Avx512Bf16Dot {
  using XElem = uint16_t;
  static X LoadX(const uint16_t* p) { return LoadW(p); }
  static X LoadXTail(const uint16_t* p, int n) { return LoadWTail(p, n); }
};

}  // namespace

void RoundToBf16Avx512Bf16(const float* x, int64_t count, uint16_t* out) {
  int64_t i = 0;
  for (; i + 16 <= count; i += 16) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(x + i)));
  }
  if (i < count) {
    const __mmask16 mask = Avx512::Mask(static_cast<int>(count - i));
    _mm256_mask_storeu_epi16(out + i, mask, (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(mask, x + i)));
  }
}

void GemmBf16PreRoundedAvx512Bf16(const uint16_t* x, int64_t ldx, int64_t m, const uint16_t* w, int64_t n, int64_t k,
                                  const float* bias, float* y, int64_t ldy) {
  if (m == 1) return GemmTiles<Avx512Bf16PreRoundedDot, 1, 8>(x, ldx, m, w, n, k, bias, y, ldy);
  GemmTiles<Avx512Bf16PreRoundedDot, 4, 6>(x, ldx, m, w, n, k, bias, y, ldy);
}

void GemmBf16Avx512Bf16(const float* x, int64_t ldx, int64_t m, const uint16_t* w, int64_t n, int64_t k,
                        const float* bias, float* y, int64_t ldy) {
  if (m == 1) return GemmTiles<Avx512Bf16Dot, 1, 8>(x, ldx, m, w, n, k, bias, y, ldy);
  GemmTiles<Avx512Bf16Dot, 4, 6>(x, ldx, m, w, n, k, bias, y, ldy);
}

}  // namespace kaon::kernels::cpu
