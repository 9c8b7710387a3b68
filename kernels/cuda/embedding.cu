#include "kernels/cuda/embedding.h"

#include "kernels/cuda/dtype.cuh"
#include "kernels/cuda/launch.h"

namespace kaon::kernels::gpu {
namespace {

constexpr int kThreads = 256;

// One block per token; a plain copy, so no conversion to fp32 is needed.
template <typename T>
__global__ void EmbeddingKernel(const T* table, int64_t shard_rows, int64_t hidden, int64_t vocab_begin,
                                int64_t vocab_size, const int32_t* ids, T* out, int32_t* bad_id_flag) {
  const int64_t t = blockIdx.x;
  const int64_t id = ids[t];
  T* dst = out + t * hidden;
  const int64_t row = id - vocab_begin;
  const bool bad = id < 0 || id >= vocab_size;
  if (bad && bad_id_flag != nullptr && threadIdx.x == 0) *bad_id_flag = 1;  // every writer stores 1
  if (bad || row < 0 || row >= shard_rows) {
    const T zero = detail::FromFloat<T>(0.0f);
    for (int64_t c = threadIdx.x; c < hidden; c += blockDim.x) dst[c] = zero;
    return;
  }
  const T* src = table + row * hidden;
  for (int64_t c = threadIdx.x; c < hidden; c += blockDim.x) dst[c] = src[c];
}

}  // namespace

template <typename T>
KernelStatus EmbeddingLookup(const T* table, int64_t shard_rows, int64_t hidden, int64_t vocab_begin,
                             int64_t vocab_size, const int32_t* ids, int64_t num_tokens, T* out,
                             int32_t* bad_id_flag, cudaStream_t stream) {
  KAON_KERNEL_REQUIRE(table && ids && out, "embedding: null pointer");
  KAON_KERNEL_REQUIRE(hidden > 0 && shard_rows > 0 && vocab_size > 0 && num_tokens >= 0,
                      "embedding: bad shape");
  KAON_KERNEL_REQUIRE(num_tokens <= detail::kMaxGridX, "embedding: too many tokens for one launch");
  KAON_KERNEL_REQUIRE(detail::Aligned<T>(table) && detail::Aligned<T>(out) && detail::Aligned<int32_t>(ids),
                      "embedding: misaligned pointer");
  if (num_tokens == 0) return KernelStatus::Ok();
  EmbeddingKernel<T><<<static_cast<unsigned>(num_tokens), kThreads, 0, stream>>>(
      table, shard_rows, hidden, vocab_begin, vocab_size, ids, out, bad_id_flag);
  return detail::LaunchStatus("embedding");
}

#define KAON_INSTANTIATE(T)                                                                        \
  template KernelStatus EmbeddingLookup<T>(const T*, int64_t, int64_t, int64_t, int64_t, const int32_t*, \
                                           int64_t, T*, int32_t*, cudaStream_t);
KAON_GPU_FOR_EACH_DTYPE(KAON_INSTANTIATE)
#undef KAON_INSTANTIATE

}  // namespace kaon::kernels::gpu
