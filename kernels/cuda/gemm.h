// GEMMs through cuBLASLt: the CUDA twin of kernels/cpu/gemm_ref.h LinearRef.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include <cuda_runtime.h>

#include "kernels/common/kernel_status.h"

struct cublasLtContext;  // cublasLtHandle_t, without pulling cublasLt.h into every includer

namespace kaon::kernels::gpu {

// Owns a cuBLASLt handle and a device workspace. Calls through one handle
// share the workspace, so use a handle from one stream at a time (one per
// stream otherwise). Not copyable or movable: the workspace is tied to it.
class GemmHandle {
 public:
  static constexpr size_t kDefaultWorkspaceBytes = size_t{32} << 20;

  // Creates the handle on the current device. Fails (status, no throw) when
  // there is no device or cuBLASLt cannot start.
  static KernelStatus Create(size_t workspace_bytes, std::unique_ptr<GemmHandle>* out);

  ~GemmHandle();
  GemmHandle(const GemmHandle&) = delete;
  GemmHandle& operator=(const GemmHandle&) = delete;

  // y[m, n] = x[m, k] * w[n, k]^T (+ bias[n] when bias is not null), all
  // row-major device arrays; w is a Hugging Face Linear weight as stored.
  // T = __nv_bfloat16 or __half: tensor-core GEMM with fp32 accumulation
  // (CUBLAS_COMPUTE_32F), one rounding to T at the end.
  // T = float: CUBLAS_COMPUTE_32F with fp32 operands, which in cuBLASLt means
  // plain fp32 FMA (TF32 happens only with CUBLAS_COMPUTE_32F_FAST_TF32), so
  // the result can be compared tightly with the CPU.
  // y must not overlap x, w or bias.
  template <typename T>
  KernelStatus Linear(const T* x, const T* w, const T* bias, int64_t m, int64_t n, int64_t k, T* y,
                      cudaStream_t stream);

  size_t workspace_bytes() const { return workspace_bytes_; }

 private:
  GemmHandle() = default;
  cublasLtContext* handle_ = nullptr;
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 0;
};

}  // namespace kaon::kernels::gpu
