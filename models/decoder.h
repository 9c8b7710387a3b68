// The pre-norm decoder-only transformer that Llama, Mistral, Qwen2 and Qwen3
// share, composed from the layer vocabulary: embedding, RMSNorm, fused QKV
// projection (optional biases), optional per-head q/k RMSNorm, rotary
// attention over the paged cache, fused gate/up SwiGLU MLP, LM head. A family
// file states its differences as DecoderOptions and validates its config.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/cpu/thread_pool.h"
#include "server/backend/cpu/linear.h"
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
  static absl::StatusOr<std::unique_ptr<DecoderModel>> Load(const ModelConfig& config,
                                                            const DecoderOptions& options,
                                                            const WeightStore& store,
                                                            const ModelCapacity& capacity, TpInfo tp);

  const ModelConfig& config() const override { return config_; }
  std::unique_ptr<KvCache> CreateKvCache(const kernels::PagedKvShape& shape) const override;
  absl::Status Forward(const ForwardBatch& batch, KvCache& cache, float* logits) override;

 private:
  struct Layer {
    std::vector<float> input_norm;
    std::vector<float> post_attention_norm;
    std::vector<float> q_norm;  // [head_dim], qk_norm only
    std::vector<float> k_norm;
    layers::Linear qkv;
    layers::Linear o;
    layers::Linear gate_up;
    layers::Linear down;
  };

  DecoderModel(const ModelConfig& config, const DecoderOptions& options, const ModelCapacity& capacity,
               TpInfo tp);
  absl::Status LoadWeights(const WeightStore& store);
  void PlanWorkspace();
  absl::Status Attention(int64_t layer_index, const Layer& layer, const ForwardBatch& batch,
                         HostKvCache& cache);

  ModelConfig config_;
  DecoderOptions options_;
  ModelCapacity capacity_;
  TpInfo tp_;
  int64_t local_heads_ = 0;
  int64_t local_kv_heads_ = 0;
  layers::Shard vocab_shard_{0, 0};

  std::vector<float> embed_;   // [vocab_shard rows, hidden]
  std::vector<Layer> layers_;
  std::vector<float> final_norm_;
  layers::Linear lm_head_;     // vocab-parallel; shares embed_ when tied
  std::vector<float> rope_cos_;  // [max_seq_len, head_dim / 2]
  std::vector<float> rope_sin_;

  // Activation workspace, sized once for capacity_.
  std::vector<float> hidden_, residual_, qkv_, attn_out_, gate_up_, act_, gathered_, attn_scratch_;
  std::unique_ptr<kernels::cpu::ThreadPool> pool_;
};

}  // namespace kaon
