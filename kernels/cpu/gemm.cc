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

bool RoundToBf16(CpuIsa isa, const float* x, int64_t count, uint16_t* out) {
#if KAON_X86_PATHS
  if (isa == CpuIsa::kAvx512Bf16) {
    RoundToBf16Avx512Bf16(x, count, out);
    return true;
  }
#endif
  (void)isa, (void)x, (void)count, (void)out;
  return false;
}

void GemmBf16PreRounded(const uint16_t* x, int64_t ldx, int64_t m, const uint16_t* w, int64_t n, int64_t k,
                        const float* bias, float* y, int64_t ldy) {
#if KAON_X86_PATHS
  if (m > 0 && n > 0) GemmBf16PreRoundedAvx512Bf16(x, ldx, m, w, n, k, bias, y, ldy);
#else
  (void)x, (void)ldx, (void)m, (void)w, (void)n, (void)k, (void)bias, (void)y, (void)ldy;
#endif
}

}  // namespace kaon::kernels::cpu
