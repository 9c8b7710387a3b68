// The flattened batch a forward pass consumes. Both backends read the same
// struct; pointers refer to the runner's persistent host buffers (or their
// device mirrors), so building a batch allocates nothing.
#pragma once

#include <cstdint>
#include <span>

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
};

// One sequence's share of a step, as a scheduler hands it to the runner: the
// new tokens (continuing after `num_computed` cached ones) and its block table.
struct SequenceStep {
  std::span<const int32_t> new_tokens;
  int64_t num_computed = 0;
  std::span<const int32_t> block_ids;
  bool wants_logits = true;  // the chunk's last row samples the next token
  // Rows [prompt_logits_begin, prompt_logits_begin + num_prompt_logits) of
  // this chunk also return logits (prompt logprobs).
  int64_t prompt_logits_begin = 0;
  int64_t num_prompt_logits = 0;
};

}  // namespace kaon
