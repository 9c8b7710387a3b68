// CUDA index-driven copies of a step. Twin of kernels/cpu/index_ops.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

#include "kernels/common/kernel_status.h"

namespace kaon::kernels::gpu {

// out[i, :] = x[rows[i], :] for i < n (device pointers; the indices live on
// the device). A row index outside [0, x_rows) gives a zero row, never an
// out-of-bounds read. T is float, __nv_bfloat16 or __half.
template <typename T>
KernelStatus GatherRows(const T* x, int64_t x_rows, int64_t cols, const int32_t* rows, int64_t n, T* out,
                        cudaStream_t stream);

// table[updates[2 i]] = updates[2 i + 1] for i < n, in parallel: indices must
// be distinct. One outside [0, table_size) is skipped. Device pointers.
KernelStatus ApplyTableUpdates(const int32_t* updates, int64_t n, int32_t* table, int64_t table_size,
                               cudaStream_t stream);

}  // namespace kaon::kernels::gpu
