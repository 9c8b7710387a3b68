#include "kernels/cuda/activation.h"

#include "kernels/cuda/dtype.cuh"
#include "kernels/cuda/launch.h"

namespace kaon::kernels::gpu {
namespace {

constexpr int kThreads = 256;

// One block per row: the row's gate and up halves are each contiguous.
template <typename T>
__global__ void SiluAndMulKernel(const T* gate_up, int64_t cols, T* out) {
  const int64_t r = blockIdx.x;
  const T* g = gate_up + r * 2 * cols;
  const T* u = g + cols;
  T* o = out + r * cols;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    const float x = detail::ToFloat(g[c]);
    // x / (1 + e^-x): for very negative x, e^-x = inf and the quotient is -0.
    o[c] = detail::FromFloat<T>(x / (1.0f + expf(-x)) * detail::ToFloat(u[c]));
  }
}

}  // namespace

template <typename T>
KernelStatus SiluAndMul(const T* gate_up, int64_t rows, int64_t cols, T* out, cudaStream_t stream) {
  KAON_KERNEL_REQUIRE(gate_up && out, "silu_and_mul: null pointer");
  KAON_KERNEL_REQUIRE(rows >= 0 && cols > 0 && rows <= detail::kMaxGridX, "silu_and_mul: bad shape");
  KAON_KERNEL_REQUIRE(detail::Aligned<T>(gate_up) && detail::Aligned<T>(out), "silu_and_mul: misaligned pointer");
  if (rows == 0) return KernelStatus::Ok();
  SiluAndMulKernel<T><<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(gate_up, cols, out);
  return detail::LaunchStatus("silu_and_mul");
}

#define KAON_INSTANTIATE(T) \
  template KernelStatus SiluAndMul<T>(const T*, int64_t, int64_t, T*, cudaStream_t);
KAON_GPU_FOR_EACH_DTYPE(KAON_INSTANTIATE)
#undef KAON_INSTANTIATE

}  // namespace kaon::kernels::gpu
