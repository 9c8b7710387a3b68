// The interface every model family implements. A model is built once for a
// fixed capacity (tokens per step, sequences per step, context length) and
// plans its activation workspace then, so Forward allocates nothing.
// Called from the engine thread only.
#pragma once

#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "server/backend/batch.h"
#include "server/backend/kv_cache.h"
#include "server/loading/model_config.h"

namespace kaon {

struct ModelCapacity {
  int64_t max_num_tokens = 2048;  // max_num_batched_tokens
  int64_t max_num_seqs = 256;
  int64_t max_num_logits = 0;     // logits rows per step (0: max_num_seqs)
  int64_t max_seq_len = 0;        // max_model_len
  int num_threads = 0;            // CPU worker threads; 0 = hardware concurrency
};

// Tensor-parallel position of this model replica (1 for now, but every
// parallel layer already slices its weights by it).
struct TpInfo {
  int rank = 0;
  int size = 1;
};

class CausalLM {
 public:
  virtual ~CausalLM() = default;
  virtual const ModelConfig& config() const = 0;
  // The KV cache's memory on this model's backend.
  virtual std::unique_ptr<KvCache> CreateKvCache(const kernels::PagedKvShape& shape) const = 0;
  // Runs the batch over the paged cache (one this model created) and writes
  // logits for the rows in batch.logits_indices into `logits` (host memory,
  // [num_logits, vocab_size]).
  virtual absl::Status Forward(const ForwardBatch& batch, KvCache& cache, float* logits) = 0;
};

}  // namespace kaon
