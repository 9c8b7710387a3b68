// GemmF32's AVX2 path: 8 lanes, 2 × 4 tiles (8 accumulators + 2 rows of x
// in the 16 ymm registers), 1 × 6 for a single row.
#include "kernels/cpu/gemm_paths.h"
#include "kernels/cpu/gemm_tiles.h"
#include "kernels/cpu/simd_avx2.h"

namespace kaon::kernels::cpu {

void GemmF32Avx2(const float* x, int64_t ldx, int64_t m, const float* w, int64_t n, int64_t k, const float* bias,
                 float* y, int64_t ldy) {
  if (m == 1) return GemmTiles<Avx2, 1, 6>(x, ldx, m, w, n, k, bias, y, ldy);
  GemmTiles<Avx2, 2, 4>(x, ldx, m, w, n, k, bias, y, ldy);
}

}  // namespace kaon::kernels::cpu
