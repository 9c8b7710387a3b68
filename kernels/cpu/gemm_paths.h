// The per-ISA bodies of GemmF32 and GemmBf16 (gemm.h), each in its own file compiled
// for its instruction set; only gemm.cc calls them, after cpuid said yes.
#pragma once

#include <cstdint>

namespace kaon::kernels::cpu {

#define KAON_GEMM_F32_ARGS                                                                                \
  const float *x, int64_t ldx, int64_t m, const float *w, int64_t n, int64_t k, const float *bias, float *y, \
      int64_t ldy
void GemmF32Scalar(KAON_GEMM_F32_ARGS);
void GemmF32Avx2(KAON_GEMM_F32_ARGS);
void GemmF32Avx512(KAON_GEMM_F32_ARGS);
#undef KAON_GEMM_F32_ARGS

#define KAON_GEMM_BF16_ARGS                                                                                  \
  const float *x, int64_t ldx, int64_t m, const uint16_t *w, int64_t n, int64_t k, const float *bias, float *y, \
      int64_t ldy
void GemmBf16Scalar(KAON_GEMM_BF16_ARGS);
void GemmBf16Avx2(KAON_GEMM_BF16_ARGS);
void GemmBf16Avx512(KAON_GEMM_BF16_ARGS);
void GemmBf16Avx512Bf16(KAON_GEMM_BF16_ARGS);
#undef KAON_GEMM_BF16_ARGS
void RoundToBf16Avx512Bf16(const float* x, int64_t count, uint16_t* out);
void GemmBf16PreRoundedAvx512Bf16(const uint16_t* x, int64_t ldx, int64_t m, const uint16_t* w, int64_t n, int64_t k,
                                  const float* bias, float* y, int64_t ldy);

}  // namespace kaon::kernels::cpu
