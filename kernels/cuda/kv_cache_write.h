// CUDA K/V write into the paged cache. Twin of kernels/cpu/kv_cache_write.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

#include "kernels/common/kernel_status.h"
#include "kernels/cpu/paged_kv.h"

namespace kaon::kernels::gpu {

// Copies each token's K and V rows (num_kv_heads * head_dim elements, which may
// sit inside a wider fused qkv buffer: row strides in elements) into slot
// slot_mapping[t] of the caches, laid out as kernels/cpu/paged_kv.h says.
// A slot of -1 marks a padding token and is skipped. Slots live on the device:
// any other slot outside [0, shape.num_slots()) is skipped too, never written
// out of bounds. All pointers are device pointers.
template <typename T>
KernelStatus WriteKvCache(const T* k, int64_t k_row_stride, const T* v, int64_t v_row_stride,
                          const int64_t* slot_mapping, int64_t num_tokens, const PagedKvShape& shape,
                          T* k_cache, T* v_cache, cudaStream_t stream);

}  // namespace kaon::kernels::gpu
