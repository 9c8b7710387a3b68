// gemm.h's portable path, for fp32 weights and for bf16 weights widened to
// fp32: eight float lanes in plain C++ (compiled with -ffp-contract=off, so a
// multiply-add rounds twice in every tile alike), for CPUs without AVX2 and
// as the forced reference path in tests.
#include "kernels/cpu/gemm_paths.h"
#include "kernels/cpu/gemm_tiles.h"
#include "kernels/cpu/simd_scalar.h"

namespace kaon::kernels::cpu {

void GemmF32Scalar(const float* x, int64_t ldx, int64_t m, const float* w, int64_t n, int64_t k, const float* bias,
                   float* y, int64_t ldy) {
  GemmTiles<F32Dot<Scalar>, 1, 4>(x, ldx, m, w, n, k, bias, y, ldy);
}

void GemmBf16Scalar(const float* x, int64_t ldx, int64_t m, const uint16_t* w, int64_t n, int64_t k,
                    const float* bias, float* y, int64_t ldy) {
  GemmTiles<Bf16WidenDot<Scalar>, 1, 4>(x, ldx, m, w, n, k, bias, y, ldy);
}

}  // namespace kaon::kernels::cpu
