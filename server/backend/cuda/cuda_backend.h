// The CUDA backend: server/backend/backend.h's ops over kernels/cuda on one
// stream, weights and activations in float32, bfloat16 or float16 with fp32
// accumulation, KV pools in device memory, sampling on the device. Per step
// the host sends one packed metadata copy (the block table travels as the
// runner's updates to a device mirror) and one sampling table, and receives
// only sampled ids and requested logprob rows: rows × (8 + 8 · top_logprobs)
// bytes, plus a 4-byte flag. Every device allocation is counted
// (allocated_bytes), so the start-up plan can be held to it. Engine thread
// only.
#pragma once

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "server/backend/backend.h"
#include "server/backend/cuda/plugin_abi.h"

namespace kaon {

// Device bytes Create() allocates before any tensor (what fixed_bytes says).
int64_t CudaBackendFixedBytes(const CudaBackendOptions& options);

// A backend on the current device; FailedPrecondition without one.
absl::StatusOr<std::unique_ptr<Backend>> CreateCudaBackend(const CudaBackendOptions& options);

int CudaDeviceCount();
absl::Status CudaMemoryInfo(int64_t* free_bytes, int64_t* total_bytes);

}  // namespace kaon
