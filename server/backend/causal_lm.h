// What the model runner drives: a model on a backend. Forward leaves the
// logits in backend memory; Sample and Logprobs read them there, so only
// sampled ids and the requested logprob rows reach the host. The decoder
// (models/decoder.h) implements it over any Backend. Engine thread only.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "server/backend/batch.h"
#include "server/backend/capacity.h"
#include "server/backend/sampling.h"
#include "server/loading/model_config.h"

namespace kaon {

class CausalLM {
 public:
  virtual ~CausalLM() = default;
  virtual const ModelConfig& config() const = 0;
  // "cpu float32", "cuda bfloat16".
  virtual std::string device_name() const = 0;
  // Bytes its backend allocated (weights, workspace, KV cache, scratch).
  virtual int64_t allocated_bytes() const = 0;
  // Bytes its backend copied from device to host so far (0 on the CPU).
  virtual int64_t device_to_host_bytes() const { return 0; }

  // Runs the batch over the KV cache; logits for the rows in
  // batch.logits_indices stay on the backend until the next Forward.
  virtual absl::Status Forward(const ForwardBatch& batch) = 0;
  // Samples logits rows [0, rows.size()) (the sampling rows come first).
  virtual absl::Status Sample(int32_t sampleable_vocab, std::span<const SamplingRow> rows, SampleResult* out) = 0;
  // Raw log-softmax of logits row `row`: `token`'s logprob and the top k.
  virtual absl::Status Logprobs(int64_t row, int32_t token, int32_t k, float* token_logprob,
                                std::vector<TokenLogprob>* top) = 0;
};

}  // namespace kaon
