// Host-side helpers shared by the CUDA entry points (not a public API): turn
// CUDA errors into KernelStatus and check pointer alignment.
#pragma once

#include <cstdint>
#include <string>

#include <cuda_runtime.h>

#include "kernels/common/kernel_status.h"

namespace kaon::kernels::gpu::detail {

// After every launch: a bad configuration or a sticky error from earlier work
// surfaces here, named after the operation, instead of at some later sync.
inline KernelStatus LaunchStatus(const char* op) {
  const cudaError_t e = cudaGetLastError();
  if (e == cudaSuccess) return KernelStatus::Ok();
  return KernelStatus::Invalid(std::string(op) + ": launch failed: " + cudaGetErrorString(e));
}

inline KernelStatus CudaStatus(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return KernelStatus::Ok();
  return KernelStatus::Invalid(std::string(what) + ": " + cudaGetErrorString(e));
}

template <typename T>
bool Aligned(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % alignof(T) == 0;
}

// Grid x is limited to 2^31 - 1 blocks; y and z to 65535.
constexpr int64_t kMaxGridX = 0x7fffffff;
constexpr int64_t kMaxGridY = 65535;

}  // namespace kaon::kernels::gpu::detail
