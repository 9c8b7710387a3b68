#include "kernels/cpu/gemm.h"

#include "kernels/cpu/gemm_paths.h"

namespace kaon::kernels::cpu {

void GemmF32(CpuIsa isa, const float* x, int64_t ldx, int64_t m, const float* w, int64_t n, int64_t k,
             const float* bias, float* y, int64_t ldy) {
  if (m <= 0 || n <= 0) return;
#if KAON_X86_PATHS
  switch (isa) {
    case CpuIsa::kAvx512Bf16:
    case CpuIsa::kAvx512:
      return GemmF32Avx512(x, ldx, m, w, n, k, bias, y, ldy);
    case CpuIsa::kAvx2:
      return GemmF32Avx2(x, ldx, m, w, n, k, bias, y, ldy);
    case CpuIsa::kScalar:
      break;
  }
#endif
  GemmF32Scalar(x, ldx, m, w, n, k, bias, y, ldy);
}

void GemmBf16(CpuIsa isa, const float* x, int64_t ldx, int64_t m, const uint16_t* w, int64_t n, int64_t k,
              const float* bias, float* y, int64_t ldy) {
  if (m <= 0 || n <= 0) return;
#if KAON_X86_PATHS
  switch (isa) {
    case CpuIsa::kAvx512Bf16:
      return GemmBf16Avx512Bf16(x, ldx, m, w, n, k, bias, y, ldy);
    case CpuIsa::kAvx512:
      return GemmBf16Avx512(x, ldx, m, w, n, k, bias, y, ldy);
    case CpuIsa::kAvx2:
      return GemmBf16Avx2(x, ldx, m, w, n, k, bias, y, ldy);
    case CpuIsa::kScalar:
      break;
  }
#endif
  GemmBf16Scalar(x, ldx, m, w, n, k, bias, y, ldy);
}

}  // namespace kaon::kernels::cpu
