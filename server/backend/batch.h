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
};

}  // namespace kaon
