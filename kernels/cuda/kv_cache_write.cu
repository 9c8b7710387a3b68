#include "kernels/cuda/kv_cache_write.h"

#include "kernels/cuda/dtype.cuh"
#include "kernels/cuda/launch.h"

namespace kaon::kernels::gpu {
namespace {

constexpr int kThreads = 128;

// One block per token: a straight copy of its K and V rows, no conversion.
template <typename T>
__global__ void WriteKvKernel(const T* k, int64_t k_row_stride, const T* v, int64_t v_row_stride,
                              const int64_t* slot_mapping, int64_t num_slots, int64_t slot_stride,
                              T* k_cache, T* v_cache) {
  const int64_t t = blockIdx.x;
  const int64_t slot = slot_mapping[t];
  if (slot < 0 || slot >= num_slots) return;
  const T* ks = k + t * k_row_stride;
  const T* vs = v + t * v_row_stride;
  T* kd = k_cache + slot * slot_stride;
  T* vd = v_cache + slot * slot_stride;
  for (int64_t i = threadIdx.x; i < slot_stride; i += blockDim.x) {
    kd[i] = ks[i];
    vd[i] = vs[i];
  }
}

}  // namespace

template <typename T>
KernelStatus WriteKvCache(const T* k, int64_t k_row_stride, const T* v, int64_t v_row_stride,
                          const int64_t* slot_mapping, int64_t num_tokens, const PagedKvShape& shape,
                          T* k_cache, T* v_cache, cudaStream_t stream) {
  KAON_KERNEL_REQUIRE(k && v && slot_mapping && k_cache && v_cache, "kv_cache_write: null pointer");
  KAON_KERNEL_REQUIRE(shape.num_blocks > 0 && shape.block_size > 0 && shape.num_kv_heads > 0 &&
                          shape.head_dim > 0 && num_tokens >= 0,
                      "kv_cache_write: bad shape");
  const int64_t stride = shape.slot_stride();
  KAON_KERNEL_REQUIRE(k_row_stride >= stride && v_row_stride >= stride,
                      "kv_cache_write: row stride smaller than the kv heads it holds");
  KAON_KERNEL_REQUIRE(num_tokens <= detail::kMaxGridX, "kv_cache_write: too many tokens for one launch");
  KAON_KERNEL_REQUIRE(detail::Aligned<T>(k) && detail::Aligned<T>(v) && detail::Aligned<T>(k_cache) &&
                          detail::Aligned<T>(v_cache) && detail::Aligned<int64_t>(slot_mapping),
                      "kv_cache_write: misaligned pointer");
  if (num_tokens == 0) return KernelStatus::Ok();
  WriteKvKernel<T><<<static_cast<unsigned>(num_tokens), kThreads, 0, stream>>>(
      k, k_row_stride, v, v_row_stride, slot_mapping, shape.num_slots(), stride, k_cache, v_cache);
  return detail::LaunchStatus("kv_cache_write");
}

#define KAON_INSTANTIATE(T)                                                                          \
  template KernelStatus WriteKvCache<T>(const T*, int64_t, const T*, int64_t, const int64_t*, int64_t, \
                                        const PagedKvShape&, T*, T*, cudaStream_t);
KAON_GPU_FOR_EACH_DTYPE(KAON_INSTANTIATE)
#undef KAON_INSTANTIATE

}  // namespace kaon::kernels::gpu
