// gemm.h's AVX2 path, for fp32 weights and for bf16 weights widened to fp32
// in registers: 8 lanes, 2 × 4 tiles (8 accumulators + 2 rows of x in the 16
// ymm registers), 1 × 6 for a single row.
#include "kernels/cpu/gemm_paths.h"
#include "kernels/cpu/gemm_tiles.h"
#include "kernels/cpu/simd_avx2.h"

namespace kaon::kernels::cpu {

void GemmF32Avx2(const float* x, int64_t ldx, int64_t m, const float* w, int64_t n, int64_t k, const float* bias,
                 float* y, int64_t ldy) {
  if (m == 1) return GemmTiles<F32Dot<Avx2>, 1, 6>(x, ldx, m, w, n, k, bias, y, ldy);
  GemmTiles<F32Dot<Avx2>, 2, 4>(x, ldx, m, w, n, k, bias, y, ldy);
}

void GemmBf16Avx2(const float* x, int64_t ldx, int64_t m, const uint16_t* w, int64_t n, int64_t k, const float* bias,
                  float* y, int64_t ldy) {
  if (m == 1) return GemmTiles<Bf16WidenDot<Avx2>, 1, 6>(x, ldx, m, w, n, k, bias, y, ldy);
  GemmTiles<Bf16WidenDot<Avx2>, 2, 4>(x, ldx, m, w, n, k, bias, y, ldy);
}

}  // namespace kaon::kernels::cpu
