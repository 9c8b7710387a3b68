#include "kernels/cuda/index_ops.h"

#include "kernels/cuda/dtype.cuh"
#include "kernels/cuda/launch.h"

namespace kaon::kernels::gpu {
namespace {

constexpr int kThreads = 256;

// One block per gathered row.
template <typename T>
__global__ void GatherRowsKernel(const T* x, int64_t x_rows, int64_t cols, const int32_t* rows, T* out) {
  const int64_t i = blockIdx.x;
  const int64_t r = rows[i];
  T* dst = out + i * cols;
  const bool inside = r >= 0 && r < x_rows;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    dst[c] = inside ? x[r * cols + c] : detail::FromFloat<T>(0.0f);
  }
}

__global__ void ApplyTableUpdatesKernel(const int32_t* updates, int64_t n, int32_t* table, int64_t table_size) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const int64_t at = updates[2 * i];
  if (at >= 0 && at < table_size) table[at] = updates[2 * i + 1];
}

}  // namespace

template <typename T>
KernelStatus GatherRows(const T* x, int64_t x_rows, int64_t cols, const int32_t* rows, int64_t n, T* out,
                        cudaStream_t stream) {
  KAON_KERNEL_REQUIRE(n >= 0 && cols > 0 && x_rows >= 0 && n <= detail::kMaxGridX, "gather_rows: bad shape");
  KAON_KERNEL_REQUIRE(n == 0 || (x && rows && out), "gather_rows: null pointer");
  if (n == 0) return KernelStatus::Ok();
  GatherRowsKernel<T><<<static_cast<unsigned>(n), kThreads, 0, stream>>>(x, x_rows, cols, rows, out);
  return detail::LaunchStatus("gather_rows");
}

KernelStatus ApplyTableUpdates(const int32_t* updates, int64_t n, int32_t* table, int64_t table_size,
                               cudaStream_t stream) {
  KAON_KERNEL_REQUIRE(n >= 0 && table_size >= 0, "apply_table_updates: bad shape");
  KAON_KERNEL_REQUIRE(n == 0 || (updates && table), "apply_table_updates: null pointer");
  if (n == 0) return KernelStatus::Ok();
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  KAON_KERNEL_REQUIRE(blocks <= detail::kMaxGridX, "apply_table_updates: too many updates");
  ApplyTableUpdatesKernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(updates, n, table, table_size);
  return detail::LaunchStatus("apply_table_updates");
}

#define KAON_INSTANTIATE(T) \
  template KernelStatus GatherRows<T>(const T*, int64_t, int64_t, const int32_t*, int64_t, T*, cudaStream_t);
KAON_GPU_FOR_EACH_DTYPE(KAON_INSTANTIATE)
#undef KAON_INSTANTIATE

}  // namespace kaon::kernels::gpu
