// The one capacity struct: how much one step and the KV cache may hold,
// resolved once at start-up from the flags and the model (server/engine/
// engine_setup.h). The scheduler, the runner, the model and the backend all
// read these same fields; nothing else restates them.
#pragma once

#include <cstdint>

namespace kaon {

struct Capacity {
  int64_t max_num_batched_tokens = 2048;  // tokens per forward pass
  int64_t max_num_seqs = 256;             // sequences per forward pass
  int64_t max_model_len = 0;              // prompt + output of one sequence
  int64_t block_size = 16;                // tokens per KV block
  int64_t num_kv_blocks = 0;
  // Prompt-logprob rows per step, on top of one sampling row per sequence
  // (each needs a logits row; the scheduler spreads the rest over steps).
  int64_t max_prompt_logprob_rows = 0;

  int64_t max_logit_rows() const { return max_num_seqs + max_prompt_logprob_rows; }
  int64_t max_blocks_per_seq() const { return (max_model_len + block_size - 1) / block_size; }
};

}  // namespace kaon
