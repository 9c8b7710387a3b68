#pragma once

#include <cstdint>

#include "kernels/common/kernel_status.h"
#include "kernels/cpu/paged_kv.h"

namespace kaon::kernels::cpu {

// Writes each token's K and V rows into its slot of the paged cache. A slot of
// -1 marks a padding token and is skipped. k/v rows may sit inside a wider
// fused qkv buffer (row strides in floats).
KernelStatus WriteKvCache(const float* k, int64_t k_row_stride, const float* v, int64_t v_row_stride,
                          const int64_t* slot_mapping, int64_t num_tokens, const PagedKvShape& shape,
                          float* k_cache, float* v_cache);

}  // namespace kaon::kernels::cpu
