#include "kernels/cpu/paged_attention.h"

#include "kernels/cpu/attention_paths.h"

#include <algorithm>
#include <string>

namespace kaon::kernels::cpu {
namespace {

KernelStatus Validate(const PagedKvShape& shape, const AttentionMetadata& meta, int64_t num_heads) {
  KAON_KERNEL_REQUIRE(meta.query_start_loc && meta.seq_lens && meta.block_table,
                      "paged_attention: null metadata");
  KAON_KERNEL_REQUIRE(shape.num_kv_heads > 0 && num_heads % shape.num_kv_heads == 0,
                      "paged_attention: num_heads must be a multiple of num_kv_heads");
  KAON_KERNEL_REQUIRE(shape.block_size > 0 && shape.head_dim > 0, "paged_attention: bad cache shape");
  KAON_KERNEL_REQUIRE(num_heads / shape.num_kv_heads <= kMaxAttentionGroup,
                      "paged_attention: more than 32 query heads per KV head");
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
                            float* out, ThreadPool* pool, CpuIsa isa) {
  KAON_KERNEL_REQUIRE(q && k_cache && v_cache && out, "paged_attention: null pointer");
  KernelStatus st = Validate(shape, meta, num_heads);
  if (!st.ok()) return st;

  const int64_t d = shape.head_dim;
  const int64_t bs = shape.block_size;
  const int64_t group = num_heads / shape.num_kv_heads;
  const int64_t slot_stride = shape.slot_stride();
  const int64_t num_tokens = meta.query_start_loc[meta.num_seqs];
  void (*row)(const AttendRowArgs&) = AttendRowScalar;
#if KAON_X86_PATHS
  if (isa == CpuIsa::kAvx512 || isa == CpuIsa::kAvx512Bf16) row = AttendRowAvx512;
  if (isa == CpuIsa::kAvx2) row = AttendRowAvx2;
#else
  (void)isa;
#endif

  // Work splits evenly over (KV head, token) units, heads outermost: a chunk
  // holds whole heads, so threads get equal work even when a long prefill's
  // later tokens cost more than its first. A unit finds its sequence by
  // binary search (no allocation).
  // Below this many multiply-adds a thread hand-off costs more than it saves.
  constexpr int64_t kMinParallelWork = int64_t{1} << 16;
  const int64_t work = num_tokens * num_heads * meta.max_seq_len * d;
  const int64_t kv_heads = shape.num_kv_heads;
  ParallelFor(work >= kMinParallelWork ? pool : nullptr, num_tokens * kv_heads, [&](int64_t begin, int64_t end, int) {
    for (int64_t unit = begin; unit < end; ++unit) {
      const int64_t kvh = unit / num_tokens;
      const int64_t t = unit % num_tokens;
      const int64_t s = std::upper_bound(meta.query_start_loc, meta.query_start_loc + meta.num_seqs + 1,
                                         static_cast<int32_t>(t)) - meta.query_start_loc - 1;
      const int64_t q_len = meta.query_start_loc[s + 1] - meta.query_start_loc[s];
      const int64_t pos = meta.seq_lens[s] - q_len + (t - meta.query_start_loc[s]);
      const int32_t* table =
          meta.block_table + (meta.block_table_rows ? meta.block_table_rows[s] : s) * meta.max_blocks_per_seq;
      const int64_t h0 = kvh * group;
      row(AttendRowArgs{q + t * q_row_stride + h0 * d, k_cache, v_cache, table, pos, bs, slot_stride, kvh, d, group,
                        scale, out + (t * num_heads + h0) * d});
    }
  });
  return KernelStatus::Ok();
}

}  // namespace kaon::kernels::cpu
