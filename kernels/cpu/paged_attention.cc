#include "kernels/cpu/paged_attention.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace kaon::kernels::cpu {
namespace {

KernelStatus Validate(const PagedKvShape& shape, const AttentionMetadata& meta, int64_t num_heads) {
  KAON_KERNEL_REQUIRE(meta.query_start_loc && meta.seq_lens && meta.block_table,
                      "paged_attention: null metadata");
  KAON_KERNEL_REQUIRE(shape.num_kv_heads > 0 && num_heads % shape.num_kv_heads == 0,
                      "paged_attention: num_heads must be a multiple of num_kv_heads");
  KAON_KERNEL_REQUIRE(shape.block_size > 0 && shape.head_dim > 0, "paged_attention: bad cache shape");
  for (int64_t s = 0; s < meta.num_seqs; ++s) {
    const int64_t q_len = meta.query_start_loc[s + 1] - meta.query_start_loc[s];
    const int64_t len = meta.seq_lens[s];
    if (q_len < 0 || q_len > len || len > meta.max_seq_len) {
      return KernelStatus::Invalid("paged_attention: sequence " + std::to_string(s) + " has " +
                                   std::to_string(q_len) + " queries for " + std::to_string(len) +
                                   " tokens");
    }
    const int64_t blocks = (len + shape.block_size - 1) / shape.block_size;
    if (blocks > meta.max_blocks_per_seq) {
      return KernelStatus::Invalid("paged_attention: sequence " + std::to_string(s) +
                                   " needs more blocks than its table row holds");
    }
    for (int64_t b = 0; b < blocks; ++b) {
      const int32_t id = meta.block_table[(meta.block_table_rows ? meta.block_table_rows[s] : s) * meta.max_blocks_per_seq + b];
      if (id < 0 || id >= shape.num_blocks) {
        return KernelStatus::Invalid("paged_attention: block id " + std::to_string(id) +
                                     " outside the cache of " + std::to_string(shape.num_blocks));
      }
    }
  }
  return KernelStatus::Ok();
}

}  // namespace

KernelStatus PagedAttention(const float* q, int64_t q_row_stride, const float* k_cache,
                            const float* v_cache, const PagedKvShape& shape,
                            const AttentionMetadata& meta, int64_t num_heads, float scale,
                            float* out, float* scratch, ThreadPool* pool) {
  KAON_KERNEL_REQUIRE(q && k_cache && v_cache && out && scratch, "paged_attention: null pointer");
  KernelStatus st = Validate(shape, meta, num_heads);
  if (!st.ok()) return st;

  const int64_t d = shape.head_dim;
  const int64_t bs = shape.block_size;
  const int64_t group = num_heads / shape.num_kv_heads;
  const int64_t slot_stride = shape.slot_stride();
  const int64_t num_tokens = meta.query_start_loc[meta.num_seqs];

  // Work splits evenly over (token, head) pairs whatever the mix of prefill
  // and decode; a row finds its sequence by binary search (no allocation).
  // Below this many multiply-adds a thread hand-off costs more than it saves.
  constexpr int64_t kMinParallelWork = int64_t{1} << 16;
  const int64_t work = num_tokens * num_heads * meta.max_seq_len * d;
  ParallelFor(work >= kMinParallelWork ? pool : nullptr, num_tokens * num_heads, [&](int64_t begin, int64_t end, int thread) {
    float* scores = scratch + thread * meta.max_seq_len;
    for (int64_t work = begin; work < end; ++work) {
      const int64_t t = work / num_heads;
      const int64_t h = work % num_heads;
      const int64_t s = std::upper_bound(meta.query_start_loc, meta.query_start_loc + meta.num_seqs + 1,
                                         static_cast<int32_t>(t)) - meta.query_start_loc - 1;
      const int64_t q_len = meta.query_start_loc[s + 1] - meta.query_start_loc[s];
      const int64_t pos = meta.seq_lens[s] - q_len + (t - meta.query_start_loc[s]);
      const int32_t* table =
          meta.block_table + (meta.block_table_rows ? meta.block_table_rows[s] : s) * meta.max_blocks_per_seq;
      const float* qh = q + t * q_row_stride + h * d;
      const int64_t kvh = h / group;

      // Walk the sequence block by block: no division per position, and each
      // block's rows are contiguous.
      float max_score = -INFINITY;
      for (int64_t j0 = 0, b = 0; j0 <= pos; j0 += bs, ++b) {
        const float* kb = k_cache + static_cast<int64_t>(table[b]) * bs * slot_stride + kvh * d;
        const int64_t rows = std::min(bs, pos + 1 - j0);
        for (int64_t o = 0; o < rows; ++o) {
          const float* kj = kb + o * slot_stride;
          float dot = 0.0f;
          for (int64_t i = 0; i < d; ++i) dot += qh[i] * kj[i];
          scores[j0 + o] = dot * scale;
          max_score = std::max(max_score, scores[j0 + o]);
        }
      }
      float denom = 0.0f;
      for (int64_t j = 0; j <= pos; ++j) {
        scores[j] = std::exp(scores[j] - max_score);
        denom += scores[j];
      }
      float* oh = out + t * num_heads * d + h * d;
      std::fill(oh, oh + d, 0.0f);
      const float inv = 1.0f / denom;
      for (int64_t j0 = 0, b = 0; j0 <= pos; j0 += bs, ++b) {
        const float* vb = v_cache + static_cast<int64_t>(table[b]) * bs * slot_stride + kvh * d;
        const int64_t rows = std::min(bs, pos + 1 - j0);
        for (int64_t o = 0; o < rows; ++o) {
          const float* vj = vb + o * slot_stride;
          const float p = scores[j0 + o] * inv;
          for (int64_t i = 0; i < d; ++i) oh[i] += p * vj[i];
        }
      }
    }
  });
  return KernelStatus::Ok();
}

}  // namespace kaon::kernels::cpu
