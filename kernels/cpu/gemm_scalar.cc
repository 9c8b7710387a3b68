// GemmF32's portable path: eight float lanes in plain C++ (compiled with
// -ffp-contract=off, so a multiply-add rounds twice in every tile alike),
// for CPUs without AVX2 and as the forced reference path in tests.
#include "kernels/cpu/gemm_paths.h"
#include "kernels/cpu/gemm_tiles.h"
#include "kernels/cpu/simd_scalar.h"

namespace kaon::kernels::cpu {

void GemmF32Scalar(const float* x, int64_t ldx, int64_t m, const float* w, int64_t n, int64_t k, const float* bias,
                   float* y, int64_t ldy) {
  GemmTiles<Scalar, 1, 4>(x, ldx, m, w, n, k, bias, y, ldy);
}

}  // namespace kaon::kernels::cpu
