// The paged KV cache layout shared by every backend: per layer, K and V are
// each [num_blocks, block_size, num_kv_heads, head_dim]; token slot s lives in
// block s / block_size at offset s % block_size.
#pragma once

#include <cstdint>

namespace kaon::kernels {

struct PagedKvShape {
  int64_t num_blocks = 0;
  int64_t block_size = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;

  int64_t slot_stride() const { return num_kv_heads * head_dim; }
  int64_t num_slots() const { return num_blocks * block_size; }
  int64_t layer_elems() const { return num_slots() * slot_stride(); }
};

// One step's attention metadata, flattened over sequences (FlashInfer/vLLM
// style). Sequence s owns query rows [query_start_loc[s], query_start_loc[s+1])
// which are the last q_len of its seq_lens[s] context tokens; its pages are
// row r = block_table_rows[s] (s when null) of the padded block table:
// block_table[r * max_blocks_per_seq ...]. The rows let the table persist
// across steps, indexed by the runner's batch slot, and change by deltas.
struct AttentionMetadata {
  const int32_t* query_start_loc = nullptr;  // [num_seqs + 1]
  const int32_t* seq_lens = nullptr;         // [num_seqs]
  const int32_t* block_table = nullptr;      // [rows, max_blocks_per_seq]
  int64_t num_seqs = 0;
  int64_t max_blocks_per_seq = 0;
  int64_t max_seq_len = 0;                   // max over seq_lens, sizes scratch
  const int32_t* block_table_rows = nullptr; // [num_seqs] or null (last, so positional initialisers still work)
};

}  // namespace kaon::kernels
