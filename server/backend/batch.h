// The flattened batch a forward pass consumes. Both backends read the same
// struct; pointers refer to the runner's persistent host buffers (or their
// device mirrors), so building a batch allocates nothing.
#pragma once

#include <cstdint>

#include "kernels/cpu/paged_kv.h"

namespace kaon {

struct ForwardBatch {
  int64_t num_tokens = 0;
  const int32_t* token_ids = nullptr;     // [num_tokens]
  const int32_t* positions = nullptr;     // [num_tokens]
  const int64_t* slot_mapping = nullptr;  // [num_tokens], -1 = padding
  kernels::AttentionMetadata attn;
  int64_t num_logits = 0;
  const int32_t* logits_indices = nullptr;  // rows of the batch whose logits are wanted
  // Room for batched LoRA: the adapter of each sequence ([attn.num_seqs]).
  // Always null today (adapters are not supported); a backend that gains
  // them reads it in Linear, and the prefix cache keys blocks by it.
  const int32_t* adapter_ids = nullptr;
  // What changed in the persistent block table since the previous step:
  // (flat index row * max_blocks_per_seq + column, block id) pairs. A backend
  // that mirrors the table in device memory applies only these (a decode
  // step adds at most one per sequence) instead of copying the table.
  // -1: the table changed in ways not listed (the first step, or after a
  // failed one): copy it whole.
  int64_t num_block_table_updates = 0;
  const int32_t* block_table_updates = nullptr;  // [2 * num_block_table_updates]
};

}  // namespace kaon
