#include "kernels/cuda/rope.h"

#include "kernels/cuda/dtype.cuh"
#include "kernels/cuda/launch.h"

namespace kaon::kernels::gpu {
namespace {

constexpr int kThreads = 128;

// One block per token; its threads walk the (head, pair) list of q's heads
// followed by k's. Each pair is owned by one thread, so in place is safe.
template <typename T>
__global__ void RotaryNeoxKernel(T* q, int64_t q_row_stride, T* k, int64_t k_row_stride,
                                 const int32_t* positions, int64_t num_heads, int64_t num_kv_heads,
                                 int64_t head_dim, const float* cos_cache, const float* sin_cache,
                                 int64_t max_positions) {
  const int64_t t = blockIdx.x;
  const int64_t pos = positions[t];
  if (pos < 0 || pos >= max_positions) return;
  const int64_t half = head_dim / 2;
  const float* c = cos_cache + pos * half;
  const float* s = sin_cache + pos * half;
  const int64_t pairs = (num_heads + num_kv_heads) * half;
  for (int64_t p = threadIdx.x; p < pairs; p += blockDim.x) {
    const int64_t h = p / half, i = p % half;
    T* x = h < num_heads ? q + t * q_row_stride + h * head_dim
                         : k + t * k_row_stride + (h - num_heads) * head_dim;
    const float x1 = detail::ToFloat(x[i]);
    const float x2 = detail::ToFloat(x[i + half]);
    x[i] = detail::FromFloat<T>(x1 * c[i] - x2 * s[i]);
    x[i + half] = detail::FromFloat<T>(x2 * c[i] + x1 * s[i]);
  }
}

}  // namespace

template <typename T>
KernelStatus ApplyRotaryNeox(T* q, int64_t q_row_stride, T* k, int64_t k_row_stride,
                             const int32_t* positions, int64_t num_tokens, int64_t num_heads,
                             int64_t num_kv_heads, int64_t head_dim, const float* cos_cache,
                             const float* sin_cache, int64_t max_positions, cudaStream_t stream) {
  KAON_KERNEL_REQUIRE(q && k && positions && cos_cache && sin_cache, "rope: null pointer");
  KAON_KERNEL_REQUIRE(head_dim > 0 && head_dim % 2 == 0, "rope: head_dim must be even");
  KAON_KERNEL_REQUIRE(num_tokens >= 0 && num_heads >= 0 && num_kv_heads >= 0 && max_positions > 0,
                      "rope: bad shape");
  KAON_KERNEL_REQUIRE(q_row_stride >= num_heads * head_dim && k_row_stride >= num_kv_heads * head_dim,
                      "rope: row stride smaller than the heads it holds");
  KAON_KERNEL_REQUIRE(num_tokens <= detail::kMaxGridX, "rope: too many tokens for one launch");
  KAON_KERNEL_REQUIRE(detail::Aligned<T>(q) && detail::Aligned<T>(k) && detail::Aligned<int32_t>(positions) &&
                          detail::Aligned<float>(cos_cache) && detail::Aligned<float>(sin_cache),
                      "rope: misaligned pointer");
  if (num_tokens == 0 || num_heads + num_kv_heads == 0) return KernelStatus::Ok();
  RotaryNeoxKernel<T><<<static_cast<unsigned>(num_tokens), kThreads, 0, stream>>>(
      q, q_row_stride, k, k_row_stride, positions, num_heads, num_kv_heads, head_dim, cos_cache, sin_cache,
      max_positions);
  return detail::LaunchStatus("rope");
}

#define KAON_INSTANTIATE(T)                                                                      \
  template KernelStatus ApplyRotaryNeox<T>(T*, int64_t, T*, int64_t, const int32_t*, int64_t, int64_t, \
                                           int64_t, int64_t, const float*, const float*, int64_t,     \
                                           cudaStream_t);
KAON_GPU_FOR_EACH_DTYPE(KAON_INSTANTIATE)
#undef KAON_INSTANTIATE

}  // namespace kaon::kernels::gpu
