#include "models/decoder.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "models/rope_frequencies.h"
#include "server/common/status.h"

namespace kaon {
namespace {

std::string LayerName(int64_t i, const char* suffix) { return absl::StrCat("model.layers.", i, ".", suffix); }

}  // namespace

DecoderModel::DecoderModel(const ModelConfig& config, const DecoderOptions& options, const Capacity& capacity,
                           layers::TpInfo tp, std::unique_ptr<Backend> backend)
    : config_(config), options_(options), capacity_(capacity), tp_(tp), backend_(std::move(backend)) {}

absl::StatusOr<std::unique_ptr<DecoderModel>> DecoderModel::Load(const ModelConfig& config,
                                                                 const DecoderOptions& options,
                                                                 const WeightStore& store, const Capacity& capacity,
                                                                 layers::TpInfo tp, std::unique_ptr<Backend> backend) {
  if (tp.size < 1 || tp.rank < 0 || tp.rank >= tp.size) {
    return absl::InvalidArgumentError(absl::StrCat("invalid tensor-parallel rank ", tp.rank, " of ", tp.size));
  }
  for (auto [what, n] : {std::pair<const char*, int64_t>{"num_attention_heads", config.num_heads},
                         {"num_key_value_heads", config.num_kv_heads},
                         {"intermediate_size", config.intermediate_size},
                         {"vocab_size", config.vocab_size}}) {
    if (n % tp.size != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " (", n, ") does not split over tensor-parallel size ", tp.size));
    }
  }
  if (capacity.max_num_batched_tokens <= 0 || capacity.max_num_seqs <= 0 || capacity.max_model_len <= 0 ||
      capacity.block_size <= 0 || capacity.num_kv_blocks <= 0) {
    return absl::InvalidArgumentError("model capacity must be positive");
  }
  if (backend == nullptr) return absl::InvalidArgumentError("a model needs a backend");
  std::unique_ptr<DecoderModel> m(new DecoderModel(config, options, capacity, tp, std::move(backend)));
  m->local_heads_ = config.num_heads / tp.size;
  m->local_kv_heads_ = config.num_kv_heads / tp.size;
  m->vocab_shard_ = layers::ShardOf(config.vocab_size, tp);
  KAON_RETURN_IF_ERROR(m->LoadWeights(store));
  KAON_RETURN_IF_ERROR(m->PlanWorkspace());
  return m;
}

absl::Status DecoderModel::LoadWeights(const WeightStore& store) {
  using layers::Bias;
  Backend& b = *backend_;
  const ModelConfig& c = config_;
  const int64_t h = c.hidden_size, d = c.head_dim;
  KAON_ASSIGN_OR_RETURN(embed_, layers::LoadRows(b, store, "model.embed_tokens.weight", c.vocab_size, h, vocab_shard_));
  layers_.resize(c.num_layers);
  for (int64_t i = 0; i < c.num_layers; ++i) {
    Layer& L = layers_[i];
    KAON_ASSIGN_OR_RETURN(L.input_norm, layers::LoadVector(b, store, LayerName(i, "input_layernorm.weight"), h));
    KAON_ASSIGN_OR_RETURN(L.post_attention_norm,
                          layers::LoadVector(b, store, LayerName(i, "post_attention_layernorm.weight"), h));
    KAON_ASSIGN_OR_RETURN(L.qkv, layers::LoadColumnParallel(b, store,
                                                            {{LayerName(i, "self_attn.q_proj"), c.num_heads * d},
                                                             {LayerName(i, "self_attn.k_proj"), c.num_kv_heads * d},
                                                             {LayerName(i, "self_attn.v_proj"), c.num_kv_heads * d}},
                                                            h, options_.qkv_bias, tp_));
    KAON_ASSIGN_OR_RETURN(L.o, layers::LoadRowParallel(b, store, LayerName(i, "self_attn.o_proj"), h, c.num_heads * d,
                                                       options_.o_bias, tp_));
    if (options_.qk_norm) {
      KAON_ASSIGN_OR_RETURN(L.q_norm, layers::LoadVector(b, store, LayerName(i, "self_attn.q_norm.weight"), d));
      KAON_ASSIGN_OR_RETURN(L.k_norm, layers::LoadVector(b, store, LayerName(i, "self_attn.k_norm.weight"), d));
    }
    KAON_ASSIGN_OR_RETURN(L.gate_up, layers::LoadColumnParallel(b, store,
                                                                {{LayerName(i, "mlp.gate_proj"), c.intermediate_size},
                                                                 {LayerName(i, "mlp.up_proj"), c.intermediate_size}},
                                                                h, Bias::kNone, tp_));
    KAON_ASSIGN_OR_RETURN(L.down, layers::LoadRowParallel(b, store, LayerName(i, "mlp.down_proj"), h,
                                                          c.intermediate_size, Bias::kNone, tp_));
  }
  KAON_ASSIGN_OR_RETURN(final_norm_, layers::LoadVector(b, store, "model.norm.weight", h));
  if (c.tie_word_embeddings) {
    lm_head_ = embed_;
  } else {
    KAON_ASSIGN_OR_RETURN(lm_head_, layers::LoadRows(b, store, "lm_head.weight", c.vocab_size, h, vocab_shard_));
  }
  const std::vector<double> inv_freq = ComputeRopeInvFreq(c);
  return b.BuildRope(inv_freq, capacity_.max_model_len);
}

absl::Status DecoderModel::PlanWorkspace() {
  Backend& b = *backend_;
  const ModelConfig& c = config_;
  const int64_t t = capacity_.max_num_batched_tokens, d = c.head_dim;
  const int64_t inter = c.intermediate_size / tp_.size;
  const int64_t logit_rows = capacity_.max_logit_rows();
  KAON_ASSIGN_OR_RETURN(hidden_, b.Allocate(t, c.hidden_size));
  KAON_ASSIGN_OR_RETURN(residual_, b.Allocate(t, c.hidden_size));
  KAON_ASSIGN_OR_RETURN(qkv_, b.Allocate(t, (local_heads_ + 2 * local_kv_heads_) * d));
  KAON_ASSIGN_OR_RETURN(attn_out_, b.Allocate(t, local_heads_ * d));
  KAON_ASSIGN_OR_RETURN(gate_up_, b.Allocate(t, 2 * inter));
  KAON_ASSIGN_OR_RETURN(act_, b.Allocate(t, inter));
  KAON_ASSIGN_OR_RETURN(gathered_, b.Allocate(logit_rows, c.hidden_size));
  KAON_ASSIGN_OR_RETURN(logits_, b.Allocate(logit_rows, vocab_shard_.size()));
  KvCacheSpec kv;
  kv.num_layers = c.num_layers;
  kv.shape.num_blocks = capacity_.num_kv_blocks;
  kv.shape.block_size = capacity_.block_size;
  kv.shape.num_kv_heads = local_kv_heads_;
  kv.shape.head_dim = d;
  return b.AllocateKvCache(kv);
}

absl::Status DecoderModel::Forward(const ForwardBatch& batch) {
  Backend& b = *backend_;
  const ModelConfig& c = config_;
  if (batch.num_tokens > capacity_.max_num_batched_tokens || batch.num_logits > capacity_.max_logit_rows()) {
    return absl::InvalidArgumentError("batch larger than the model's planned capacity");
  }
  const float eps = static_cast<float>(c.rms_norm_eps);
  const int64_t d = c.head_dim;
  KAON_RETURN_IF_ERROR(b.BeginStep(batch));
  KAON_RETURN_IF_ERROR(b.Embedding(embed_, vocab_shard_.begin, c.vocab_size, hidden_));
  for (int64_t li = 0; li < c.num_layers; ++li) {
    const Layer& L = layers_[li];
    KAON_RETURN_IF_ERROR(b.AddRmsNorm(hidden_, residual_, L.input_norm, eps, /*first=*/li == 0));
    KAON_RETURN_IF_ERROR(b.Linear(hidden_, L.qkv.weight, L.qkv.bias_or_null(), qkv_));
    if (options_.qk_norm) {
      // Qwen3 normalises every head of q and k before RoPE.
      KAON_RETURN_IF_ERROR(b.HeadRmsNorm(qkv_, 0, local_heads_, d, L.q_norm, eps));
      KAON_RETURN_IF_ERROR(b.HeadRmsNorm(qkv_, local_heads_ * d, local_kv_heads_, d, L.k_norm, eps));
    }
    KAON_RETURN_IF_ERROR(b.RopeAndWriteKv(qkv_, local_heads_, local_kv_heads_, d, li));
    KAON_RETURN_IF_ERROR(b.PagedAttention(qkv_, local_heads_, d, 1.0f / std::sqrt(static_cast<float>(d)), li,
                                          attn_out_));
    KAON_RETURN_IF_ERROR(b.Linear(attn_out_, L.o.weight, L.o.bias_or_null(), hidden_));
    KAON_RETURN_IF_ERROR(b.AddRmsNorm(hidden_, residual_, L.post_attention_norm, eps));
    KAON_RETURN_IF_ERROR(b.Linear(hidden_, L.gate_up.weight, nullptr, gate_up_));
    KAON_RETURN_IF_ERROR(b.SiluAndMul(gate_up_, act_));
    KAON_RETURN_IF_ERROR(b.Linear(act_, L.down.weight, nullptr, hidden_));
  }
  KAON_RETURN_IF_ERROR(b.AddRmsNorm(hidden_, residual_, final_norm_, eps));
  KAON_RETURN_IF_ERROR(b.GatherLogitRows(hidden_, gathered_));
  return b.Linear(gathered_, lm_head_, nullptr, logits_, batch.num_logits);
}

absl::Status DecoderModel::Sample(int32_t sampleable_vocab, std::span<const SamplingRow> rows, SampleResult* out) {
  return backend_->Sample(logits_, sampleable_vocab, rows, out);
}

absl::Status DecoderModel::Logprobs(int64_t row, int32_t token, int32_t k, float* token_logprob,
                                    std::vector<TokenLogprob>* top) {
  return backend_->Logprobs(logits_, row, token, k, token_logprob, top);
}

}  // namespace kaon
