#include "kernels/cuda/sampling.h"

#include <climits>

#include "kernels/cuda/dtype.cuh"
#include "kernels/cuda/launch.h"

namespace kaon::kernels::gpu {
namespace {

constexpr int kThreads = 512;
constexpr int kNone = INT_MAX;  // "no candidate yet"

// (value, index) pairs ordered so that the result is the CPU twin's: larger
// value first, then lower index; a missing candidate loses to anything.
__device__ __forceinline__ bool Better(float v, int i, float bv, int bi) {
  if (i == kNone) return false;
  if (bi == kNone) return true;
  return v > bv || (v == bv && i < bi);
}

// One block per row. Each thread scans a strided slice in increasing index
// order, then the block reduces with Better(), which is associative and
// commutative, so the answer does not depend on the reduction order.
template <typename T>
__global__ void ArgmaxKernel(const T* logits, int64_t vocab, int64_t sampleable, int32_t* out_ids) {
  __shared__ float s_v[kThreads / 32];
  __shared__ int s_i[kThreads / 32];
  const T* row = logits + static_cast<int64_t>(blockIdx.x) * vocab;
  float bv = 0.0f;
  int bi = kNone;
  for (int64_t c = threadIdx.x; c < sampleable; c += blockDim.x) {
    const float v = detail::ToFloat(row[c]);
    if (v != v) continue;  // NaN
    if (Better(v, static_cast<int>(c), bv, bi)) {
      bv = v;
      bi = static_cast<int>(c);
    }
  }
  for (int off = 16; off > 0; off >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, bv, off);
    const int oi = __shfl_xor_sync(0xffffffffu, bi, off);
    if (Better(ov, oi, bv, bi)) {
      bv = ov;
      bi = oi;
    }
  }
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  if (lane == 0) {
    s_v[warp] = bv;
    s_i[warp] = bi;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < static_cast<int>(blockDim.x >> 5); ++w) {
      if (Better(s_v[w], s_i[w], bv, bi)) {
        bv = s_v[w];
        bi = s_i[w];
      }
    }
    out_ids[blockIdx.x] = bi == kNone ? 0 : bi;
  }
}

}  // namespace

template <typename T>
KernelStatus ArgmaxRows(const T* logits, int64_t rows, int64_t vocab, int64_t sampleable_vocab,
                        int32_t* out_ids, cudaStream_t stream) {
  KAON_KERNEL_REQUIRE(logits && out_ids, "argmax: null pointer");
  KAON_KERNEL_REQUIRE(rows >= 0 && vocab > 0 && sampleable_vocab > 0 && sampleable_vocab <= vocab,
                      "argmax: bad shape (need 0 < sampleable_vocab <= vocab)");
  KAON_KERNEL_REQUIRE(vocab < kNone && rows <= detail::kMaxGridX, "argmax: shape too large");
  KAON_KERNEL_REQUIRE(detail::Aligned<T>(logits) && detail::Aligned<int32_t>(out_ids), "argmax: misaligned pointer");
  if (rows == 0) return KernelStatus::Ok();
  ArgmaxKernel<T><<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(logits, vocab, sampleable_vocab, out_ids);
  return detail::LaunchStatus("argmax");
}

#define KAON_INSTANTIATE(T) \
  template KernelStatus ArgmaxRows<T>(const T*, int64_t, int64_t, int64_t, int32_t*, cudaStream_t);
KAON_GPU_FOR_EACH_DTYPE(KAON_INSTANTIATE)
#undef KAON_INSTANTIATE

}  // namespace kaon::kernels::gpu
