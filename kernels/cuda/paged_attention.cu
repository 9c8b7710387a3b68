#include "kernels/cuda/paged_attention.h"

#include <cmath>

#include "kernels/cuda/dtype.cuh"
#include "kernels/cuda/launch.h"

namespace kaon::kernels::gpu {
namespace {

constexpr int kWarps = 4;
constexpr int kMaxHeadDim = static_cast<int>(kPagedAttentionMaxHeadDim);
constexpr int kPerLane = kMaxHeadDim / 32;

struct Params {
  int64_t q_row_stride;
  int64_t num_blocks;
  int64_t block_size;
  int64_t slot_stride;  // num_kv_heads * head_dim
  int64_t head_dim;
  int64_t num_heads;
  int64_t group;        // num_heads / num_kv_heads
  const int32_t* query_start_loc;
  const int32_t* seq_lens;
  const int32_t* block_table;
  const int32_t* block_table_rows;  // null: row s
  int64_t num_seqs;
  int64_t max_blocks_per_seq;
  float scale;
};

// Correct first, not fast: one block per (query row, head). Its warps take
// context positions round-robin; for each position a warp computes q.k with
// the head dims spread over its lanes, reduces by shuffles, and folds the
// score into a per-warp online softmax (running max m, sum l, and the
// weighted V sum acc, lane i holding dims i, i + 32, ...). The warps' partial
// states are merged through shared memory at the end.
template <typename T>
__global__ void __launch_bounds__(kWarps * 32)
    PagedAttentionKernel(const T* q, const T* k_cache, const T* v_cache, Params p, T* out) {
  const int64_t t = blockIdx.x;
  const int64_t h = blockIdx.y;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t d = p.head_dim;
  T* o = out + (t * p.num_heads + h) * d;

  // The sequence owning row t: the last s with query_start_loc[s] <= t (empty
  // sequences share their start with the next one, so "last" matters).
  const int32_t* qsl = p.query_start_loc;
  if (p.num_seqs <= 0 || t < qsl[0] || t >= qsl[p.num_seqs]) {  // padding row
    for (int64_t i = threadIdx.x; i < d; i += blockDim.x) o[i] = detail::FromFloat<T>(0.0f);
    return;
  }
  int64_t lo = 0, hi = p.num_seqs;
  while (hi - lo > 1) {
    const int64_t mid = (lo + hi) / 2;
    if (qsl[mid] <= t) lo = mid; else hi = mid;
  }
  const int64_t s = lo;
  const int64_t q_len = qsl[s + 1] - qsl[s];
  const int64_t len = p.seq_lens[s];
  const int64_t pos = len - q_len + (t - qsl[s]);  // the last position this row sees
  bool bad = q_len > len || (len + p.block_size - 1) / p.block_size > p.max_blocks_per_seq;

  __shared__ float s_m[kWarps], s_l[kWarps];
  __shared__ float s_acc[kWarps][kMaxHeadDim];
  __shared__ int s_bad[kWarps];

  float qr[kPerLane];
  float acc[kPerLane];
#pragma unroll
  for (int j = 0; j < kPerLane; ++j) {
    const int64_t i = lane + 32 * j;
    qr[j] = i < d ? detail::ToFloat(q[t * p.q_row_stride + h * d + i]) * p.scale : 0.0f;
    acc[j] = 0.0f;
  }
  float m = -INFINITY, l = 0.0f;
  const int32_t* table = p.block_table + (p.block_table_rows ? p.block_table_rows[s] : s) * p.max_blocks_per_seq;
  const int64_t kv_offset = (h / p.group) * d;
  if (!bad) {
    for (int64_t j = warp; j <= pos; j += kWarps) {
      const int64_t block = table[j / p.block_size];
      if (block < 0 || block >= p.num_blocks) {  // same for the whole warp
        bad = true;
        break;
      }
      const int64_t base = (block * p.block_size + j % p.block_size) * p.slot_stride + kv_offset;
      float dot = 0.0f;
#pragma unroll
      for (int jj = 0; jj < kPerLane; ++jj) {
        const int64_t i = lane + 32 * jj;
        if (i < d) dot += qr[jj] * detail::ToFloat(k_cache[base + i]);
      }
      for (int off = 16; off > 0; off >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, off);
      const float m_new = fmaxf(m, dot);
      const float correction = expf(m - m_new);  // 0 on the first position (m = -inf)
      const float weight = expf(dot - m_new);
      l = l * correction + weight;
#pragma unroll
      for (int jj = 0; jj < kPerLane; ++jj) {
        const int64_t i = lane + 32 * jj;
        if (i < d) acc[jj] = acc[jj] * correction + weight * detail::ToFloat(v_cache[base + i]);
      }
      m = m_new;
    }
  }

  if (lane == 0) {
    s_m[warp] = m;
    s_l[warp] = l;
    s_bad[warp] = bad ? 1 : 0;
  }
#pragma unroll
  for (int jj = 0; jj < kPerLane; ++jj) {
    const int64_t i = lane + 32 * jj;
    if (i < d) s_acc[warp][i] = acc[jj];
  }
  __syncthreads();

  bool any_bad = false;
  float m_all = -INFINITY;
  for (int w = 0; w < kWarps; ++w) {
    any_bad = any_bad || s_bad[w] != 0;
    m_all = fmaxf(m_all, s_m[w]);
  }
  // Warps that saw no position (pos + 1 < kWarps) have m = -inf and weigh 0;
  // warp 0 always sees position 0, so m_all is finite on valid metadata.
  float scale_w[kWarps];
  float denom = 0.0f;
#pragma unroll
  for (int w = 0; w < kWarps; ++w) {
    scale_w[w] = s_m[w] == -INFINITY ? 0.0f : expf(s_m[w] - m_all);
    denom += s_l[w] * scale_w[w];
  }
  const float inv = 1.0f / denom;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
    float sum = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) sum += s_acc[w][i] * scale_w[w];
    o[i] = detail::FromFloat<T>(any_bad ? NAN : sum * inv);
  }
}

}  // namespace

template <typename T>
KernelStatus PagedAttention(const T* q, int64_t q_row_stride, const T* k_cache, const T* v_cache,
                            const PagedKvShape& shape, const AttentionMetadata& meta, int64_t num_tokens,
                            int64_t num_heads, float scale, T* out, cudaStream_t stream) {
  KAON_KERNEL_REQUIRE(q && k_cache && v_cache && out, "paged_attention: null pointer");
  KAON_KERNEL_REQUIRE(meta.query_start_loc && meta.seq_lens && meta.block_table,
                      "paged_attention: null metadata");
  KAON_KERNEL_REQUIRE(shape.num_kv_heads > 0 && num_heads > 0 && num_heads % shape.num_kv_heads == 0,
                      "paged_attention: num_heads must be a positive multiple of num_kv_heads");
  KAON_KERNEL_REQUIRE(shape.block_size > 0 && shape.num_blocks > 0, "paged_attention: bad cache shape");
  KAON_KERNEL_REQUIRE(shape.head_dim > 0 && shape.head_dim <= kPagedAttentionMaxHeadDim,
                      "paged_attention: head_dim must be in [1, 256]");
  KAON_KERNEL_REQUIRE(num_tokens >= 0 && meta.num_seqs >= 0 && meta.max_blocks_per_seq > 0,
                      "paged_attention: bad metadata shape");
  KAON_KERNEL_REQUIRE(q_row_stride >= num_heads * shape.head_dim,
                      "paged_attention: q row stride smaller than the heads it holds");
  KAON_KERNEL_REQUIRE(num_tokens <= detail::kMaxGridX && num_heads <= detail::kMaxGridY,
                      "paged_attention: grid too large");
  KAON_KERNEL_REQUIRE(detail::Aligned<T>(q) && detail::Aligned<T>(k_cache) && detail::Aligned<T>(v_cache) &&
                          detail::Aligned<T>(out) && detail::Aligned<int32_t>(meta.query_start_loc) &&
                          detail::Aligned<int32_t>(meta.seq_lens) && detail::Aligned<int32_t>(meta.block_table),
                      "paged_attention: misaligned pointer");
  KAON_KERNEL_REQUIRE(std::isfinite(scale), "paged_attention: scale must be finite");
  if (num_tokens == 0) return KernelStatus::Ok();
  Params p{};
  p.q_row_stride = q_row_stride;
  p.num_blocks = shape.num_blocks;
  p.block_size = shape.block_size;
  p.slot_stride = shape.slot_stride();
  p.head_dim = shape.head_dim;
  p.num_heads = num_heads;
  p.group = num_heads / shape.num_kv_heads;
  p.query_start_loc = meta.query_start_loc;
  p.seq_lens = meta.seq_lens;
  p.block_table = meta.block_table;
  p.block_table_rows = meta.block_table_rows;
  p.num_seqs = meta.num_seqs;
  p.max_blocks_per_seq = meta.max_blocks_per_seq;
  p.scale = scale;
  const dim3 grid(static_cast<unsigned>(num_tokens), static_cast<unsigned>(num_heads));
  PagedAttentionKernel<T><<<grid, kWarps * 32, 0, stream>>>(q, k_cache, v_cache, p, out);
  return detail::LaunchStatus("paged_attention");
}

#define KAON_INSTANTIATE(T)                                                                            \
  template KernelStatus PagedAttention<T>(const T*, int64_t, const T*, const T*, const PagedKvShape&, \
                                          const AttentionMetadata&, int64_t, int64_t, float, T*,      \
                                          cudaStream_t);
KAON_GPU_FOR_EACH_DTYPE(KAON_INSTANTIATE)
#undef KAON_INSTANTIATE

}  // namespace kaon::kernels::gpu
