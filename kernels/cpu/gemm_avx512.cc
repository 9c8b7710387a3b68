// gemm.h's AVX-512 path, for fp32 weights and for bf16 weights widened to
// fp32 in registers (CPUs without AVX512_BF16): 16 lanes, 4 × 6 tiles (24
// accumulators + 4 rows of x in the 32 zmm registers), 1 × 8 for a single
// row (decode of one sequence: 8 weight rows stream at once).
#include "kernels/cpu/gemm_paths.h"
#include "kernels/cpu/gemm_tiles.h"
#include "kernels/cpu/simd_avx512.h"

namespace kaon::kernels::cpu {

void GemmF32Avx512(const float* x, int64_t ldx, int64_t m, const float* w, int64_t n, int64_t k, const float* bias,
                   float* y, int64_t ldy) {
  if (m == 1) return GemmTiles<F32Dot<Avx512>, 1, 8>(x, ldx, m, w, n, k, bias, y, ldy);
  GemmTiles<F32Dot<Avx512>, 4, 6>(x, ldx, m, w, n, k, bias, y, ldy);
}

void GemmBf16Avx512(const float* x, int64_t ldx, int64_t m, const uint16_t* w, int64_t n, int64_t k,
                    const float* bias, float* y, int64_t ldy) {
  if (m == 1) return GemmTiles<Bf16WidenDot<Avx512>, 1, 8>(x, ldx, m, w, n, k, bias, y, ldy);
  GemmTiles<Bf16WidenDot<Avx512>, 4, 6>(x, ldx, m, w, n, k, bias, y, ldy);
}

}  // namespace kaon::kernels::cpu
