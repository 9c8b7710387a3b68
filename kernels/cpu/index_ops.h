// Index-driven copies of a step: gathering the rows whose logits are wanted,
// and applying a step's block-table updates to a persistent table. CPU twins
// of kernels/cuda/index_ops.
#pragma once

#include <cstdint>

#include "kernels/common/kernel_status.h"

namespace kaon::kernels::cpu {

// out[i, :] = x[rows[i], :] for i < n, each row `cols` elements. A row index
// outside [0, x_rows) gives a zero row: the device twin reads its indices on
// the device and must never read out of bounds, and both agree.
KernelStatus GatherRows(const float* x, int64_t x_rows, int64_t cols, const int32_t* rows, int64_t n, float* out);

// table[updates[2 i]] = updates[2 i + 1] for i < n. Indices must be distinct
// (the device applies them in parallel); one outside [0, table_size) is
// skipped, never written.
KernelStatus ApplyTableUpdates(const int32_t* updates, int64_t n, int32_t* table, int64_t table_size);

}  // namespace kaon::kernels::cpu
