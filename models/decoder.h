// The pre-norm decoder-only transformer that Llama, Mistral, Qwen2 and Qwen3
// share, composed from the backend's ops (server/backend/backend.h):
// embedding, fused add + RMSNorm, fused QKV projection (optional biases),
// optional per-head q/k RMSNorm, RoPE + KV write, paged attention, fused
// gate/up SwiGLU MLP, LM head. It knows no backend: the same code runs on
// every one. A family file states its differences as DecoderOptions.
#pragma once

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "models/layers/parallel_linear.h"
#include "server/backend/backend.h"
#include "server/backend/causal_lm.h"
#include "server/loading/safetensors.h"

namespace kaon {

struct DecoderOptions {
  layers::Bias qkv_bias = layers::Bias::kNone;
  layers::Bias o_bias = layers::Bias::kNone;
  bool qk_norm = false;
};

class DecoderModel : public CausalLM {
 public:
  // Loads the weights into `backend`, plans the activations for `capacity`
  // and allocates the KV cache.
  static absl::StatusOr<std::unique_ptr<DecoderModel>> Load(const ModelConfig& config, const DecoderOptions& options,
                                                            const WeightStore& store, const Capacity& capacity,
                                                            layers::TpInfo tp, std::unique_ptr<Backend> backend);

  const ModelConfig& config() const override { return config_; }
  std::string device_name() const override { return backend_->name(); }
  int64_t allocated_bytes() const override { return backend_->allocated_bytes(); }
  int64_t device_to_host_bytes() const override { return backend_->device_to_host_bytes(); }
  absl::Status Forward(const ForwardBatch& batch) override;
  absl::Status Sample(int32_t sampleable_vocab, std::span<const SamplingRow> rows, SampleResult* out) override;
  absl::Status Logprobs(int64_t row, int32_t token, int32_t k, float* token_logprob,
                        std::vector<TokenLogprob>* top) override;

 private:
  struct Layer {
    Tensor input_norm, post_attention_norm;
    Tensor q_norm, k_norm;  // [1, head_dim], qk_norm only
    layers::LinearWeights qkv, o, gate_up, down;
  };

  DecoderModel(const ModelConfig& config, const DecoderOptions& options, const Capacity& capacity,
               layers::TpInfo tp, std::unique_ptr<Backend> backend);
  absl::Status LoadWeights(const WeightStore& store);
  absl::Status PlanWorkspace();

  ModelConfig config_;
  DecoderOptions options_;
  Capacity capacity_;
  layers::TpInfo tp_;
  std::unique_ptr<Backend> backend_;
  int64_t local_heads_ = 0;
  int64_t local_kv_heads_ = 0;
  layers::Shard vocab_shard_{0, 0};

  Tensor embed_;  // [vocab shard, hidden]
  std::vector<Layer> layers_;
  Tensor final_norm_;
  Tensor lm_head_;  // vocab-parallel; the embedding itself when tied

  // Activations, planned once for capacity_.
  Tensor hidden_, residual_, qkv_, attn_out_, gate_up_, act_, gathered_, logits_;
};

}  // namespace kaon
