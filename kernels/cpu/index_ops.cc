#include "kernels/cpu/index_ops.h"

#include <algorithm>
#include <cstring>

namespace kaon::kernels::cpu {

KernelStatus GatherRows(const float* x, int64_t x_rows, int64_t cols, const int32_t* rows, int64_t n, float* out) {
  KAON_KERNEL_REQUIRE(n >= 0 && cols > 0 && x_rows >= 0, "gather_rows: bad shape");
  KAON_KERNEL_REQUIRE(n == 0 || (x && rows && out), "gather_rows: null pointer");
  for (int64_t i = 0; i < n; ++i) {
    float* dst = out + i * cols;
    const int64_t r = rows[i];
    if (r < 0 || r >= x_rows) {
      std::fill(dst, dst + cols, 0.0f);
    } else {
      std::memcpy(dst, x + r * cols, sizeof(float) * static_cast<size_t>(cols));
    }
  }
  return KernelStatus::Ok();
}

KernelStatus ApplyTableUpdates(const int32_t* updates, int64_t n, int32_t* table, int64_t table_size) {
  KAON_KERNEL_REQUIRE(n >= 0 && table_size >= 0, "apply_table_updates: bad shape");
  KAON_KERNEL_REQUIRE(n == 0 || (updates && table), "apply_table_updates: null pointer");
  for (int64_t i = 0; i < n; ++i) {
    const int64_t at = updates[2 * i];
    if (at >= 0 && at < table_size) table[at] = updates[2 * i + 1];
  }
  return KernelStatus::Ok();
}

}  // namespace kaon::kernels::cpu
