#include "models/decoder.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"
#include "kernels/cpu/activation.h"
#include "kernels/cpu/embedding.h"
#include "kernels/cpu/kv_cache_write.h"
#include "kernels/cpu/paged_attention.h"
#include "kernels/cpu/rmsnorm.h"
#include "kernels/cpu/rope.h"
#include "server/common/status.h"
#include "models/rope_frequencies.h"

namespace kaon {
namespace {

absl::Status FromKernel(const kernels::KernelStatus& s) {
  if (s.ok()) return absl::OkStatus();
  return absl::InternalError(s.message());
}

std::string LayerName(int64_t i, const char* suffix) {
  return absl::StrCat("model.layers.", i, ".", suffix);
}

}  // namespace

DecoderModel::DecoderModel(const ModelConfig& config, const DecoderOptions& options,
                           const ModelCapacity& capacity, TpInfo tp)
    : config_(config), options_(options), capacity_(capacity), tp_(tp) {}

absl::StatusOr<std::unique_ptr<DecoderModel>> DecoderModel::Load(const ModelConfig& config,
                                                                 const DecoderOptions& options,
                                                                 const WeightStore& store,
                                                                 const ModelCapacity& capacity,
                                                                 TpInfo tp) {
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
  if (capacity.max_num_tokens <= 0 || capacity.max_num_seqs <= 0 || capacity.max_seq_len <= 0) {
    return absl::InvalidArgumentError("model capacity must be positive");
  }
  std::unique_ptr<DecoderModel> m(new DecoderModel(config, options, capacity, tp));
  m->local_heads_ = config.num_heads / tp.size;
  m->local_kv_heads_ = config.num_kv_heads / tp.size;
  m->vocab_shard_ = layers::ShardOf(config.vocab_size, tp);
  KAON_RETURN_IF_ERROR(m->LoadWeights(store));
  m->PlanWorkspace();
  return m;
}

absl::Status DecoderModel::LoadWeights(const WeightStore& store) {
  using layers::Bias;
  const ModelConfig& c = config_;
  const int64_t h = c.hidden_size, d = c.head_dim;
  KAON_ASSIGN_OR_RETURN(embed_, layers::LoadRows(store, "model.embed_tokens.weight", {c.vocab_size, h},
                                                 vocab_shard_.begin, vocab_shard_.end));
  layers_.resize(c.num_layers);
  for (int64_t i = 0; i < c.num_layers; ++i) {
    Layer& L = layers_[i];
    KAON_ASSIGN_OR_RETURN(L.input_norm, layers::LoadTensor(store, LayerName(i, "input_layernorm.weight"), {h}));
    KAON_ASSIGN_OR_RETURN(L.post_attention_norm,
                          layers::LoadTensor(store, LayerName(i, "post_attention_layernorm.weight"), {h}));
    KAON_ASSIGN_OR_RETURN(L.qkv, layers::LoadFusedColumnParallel(
                                     store,
                                     {{LayerName(i, "self_attn.q_proj"), c.num_heads * d},
                                      {LayerName(i, "self_attn.k_proj"), c.num_kv_heads * d},
                                      {LayerName(i, "self_attn.v_proj"), c.num_kv_heads * d}},
                                     h, options_.qkv_bias, tp_));
    KAON_ASSIGN_OR_RETURN(L.o, layers::LoadRowParallel(store, LayerName(i, "self_attn.o_proj"), h,
                                                       c.num_heads * d, options_.o_bias, tp_));
    if (options_.qk_norm) {
      KAON_ASSIGN_OR_RETURN(L.q_norm, layers::LoadTensor(store, LayerName(i, "self_attn.q_norm.weight"), {d}));
      KAON_ASSIGN_OR_RETURN(L.k_norm, layers::LoadTensor(store, LayerName(i, "self_attn.k_norm.weight"), {d}));
    }
    KAON_ASSIGN_OR_RETURN(L.gate_up, layers::LoadFusedColumnParallel(
                                         store,
                                         {{LayerName(i, "mlp.gate_proj"), c.intermediate_size},
                                          {LayerName(i, "mlp.up_proj"), c.intermediate_size}},
                                         h, Bias::kNone, tp_));
    KAON_ASSIGN_OR_RETURN(L.down, layers::LoadRowParallel(store, LayerName(i, "mlp.down_proj"), h,
                                                          c.intermediate_size, Bias::kNone, tp_));
  }
  KAON_ASSIGN_OR_RETURN(final_norm_, layers::LoadTensor(store, "model.norm.weight", {h}));
  if (c.tie_word_embeddings) {
    lm_head_ = layers::Linear(vocab_shard_.size(), h, embed_, {});
  } else {
    KAON_ASSIGN_OR_RETURN(lm_head_, layers::LoadColumnParallel(store, "lm_head", c.vocab_size, h,
                                                               Bias::kNone, tp_));
  }
  const std::vector<double> inv_freq = ComputeRopeInvFreq(c);
  const int64_t half = d / 2;
  rope_cos_.resize(capacity_.max_seq_len * half);
  rope_sin_.resize(capacity_.max_seq_len * half);
  kernels::cpu::BuildRopeCache(inv_freq.data(), half, capacity_.max_seq_len, rope_cos_.data(),
                               rope_sin_.data());
  return absl::OkStatus();
}

void DecoderModel::PlanWorkspace() {
  const int64_t t = capacity_.max_num_tokens;
  const ModelConfig& c = config_;
  const int64_t qkv_width = (local_heads_ + 2 * local_kv_heads_) * c.head_dim;
  hidden_.assign(t * c.hidden_size, 0.0f);
  residual_.assign(t * c.hidden_size, 0.0f);
  qkv_.assign(t * qkv_width, 0.0f);
  attn_out_.assign(t * local_heads_ * c.head_dim, 0.0f);
  const int64_t inter = c.intermediate_size / tp_.size;
  gate_up_.assign(t * 2 * inter, 0.0f);
  act_.assign(t * inter, 0.0f);
  if (capacity_.max_num_logits <= 0) capacity_.max_num_logits = capacity_.max_num_seqs;
  gathered_.assign(capacity_.max_num_logits * c.hidden_size, 0.0f);
  int threads = capacity_.num_threads > 0 ? capacity_.num_threads
                                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  pool_ = std::make_unique<kernels::cpu::ThreadPool>(threads);
  layers::UseSingleThreadedBlas();
  attn_scratch_.assign(static_cast<size_t>(threads) * capacity_.max_seq_len, 0.0f);
}

std::unique_ptr<KvCache> DecoderModel::CreateKvCache(const kernels::PagedKvShape& shape) const {
  return std::make_unique<HostKvCache>(config_.num_layers, shape);
}

absl::Status DecoderModel::Attention(int64_t li, const Layer& L, const ForwardBatch& batch, HostKvCache& cache) {
  const ModelConfig& c = config_;
  const int64_t n = batch.num_tokens, d = c.head_dim;
  const int64_t width = L.qkv.out_features();
  float* q = qkv_.data();
  float* k = q + local_heads_ * d;
  float* v = k + local_kv_heads_ * d;
  if (options_.qk_norm) {
    // Qwen3 normalises every head of q and k before RoPE.
    const float eps = static_cast<float>(c.rms_norm_eps);
    for (int64_t t = 0; t < n; ++t) {
      KAON_RETURN_IF_ERROR(FromKernel(kernels::cpu::RmsNorm(q + t * width, L.q_norm.data(), eps,
                                                            local_heads_, d, q + t * width)));
      KAON_RETURN_IF_ERROR(FromKernel(kernels::cpu::RmsNorm(k + t * width, L.k_norm.data(), eps,
                                                            local_kv_heads_, d, k + t * width)));
    }
  }
  KAON_RETURN_IF_ERROR(FromKernel(kernels::cpu::ApplyRotaryNeox(
      q, width, k, width, batch.positions, n, local_heads_, local_kv_heads_, d, rope_cos_.data(),
      rope_sin_.data(), capacity_.max_seq_len)));
  const kernels::PagedKvShape& shape = cache.shape();
  KAON_RETURN_IF_ERROR(FromKernel(
      kernels::cpu::WriteKvCache(k, width, v, width, batch.slot_mapping, n, shape, cache.k(li), cache.v(li))));
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  return FromKernel(kernels::cpu::PagedAttention(q, width, cache.k(li), cache.v(li), shape, batch.attn,
                                                 local_heads_, scale, attn_out_.data(),
                                                 attn_scratch_.data(), pool_.get()));
}

absl::Status DecoderModel::Forward(const ForwardBatch& batch, KvCache& kv_cache, float* logits) {
  auto* host_cache = dynamic_cast<HostKvCache*>(&kv_cache);
  if (host_cache == nullptr) return absl::InvalidArgumentError("the CPU model needs a host KV cache");
  HostKvCache& cache = *host_cache;
  const ModelConfig& c = config_;
  const int64_t n = batch.num_tokens, h = c.hidden_size;
  if (n > capacity_.max_num_tokens || batch.num_logits > capacity_.max_num_logits) {
    return absl::InvalidArgumentError("batch larger than the model's planned capacity");
  }
  if (batch.attn.max_seq_len > capacity_.max_seq_len) {
    return absl::InvalidArgumentError("sequence longer than the model's planned context");
  }
  if (cache.num_layers() != c.num_layers || cache.shape().num_kv_heads != local_kv_heads_ ||
      cache.shape().head_dim != c.head_dim) {
    return absl::InvalidArgumentError("KV cache shape does not match the model");
  }
  const float eps = static_cast<float>(c.rms_norm_eps);
  float* x = hidden_.data();
  float* res = residual_.data();
  KAON_RETURN_IF_ERROR(FromKernel(kernels::cpu::EmbeddingLookup(
      embed_.data(), vocab_shard_.size(), h, vocab_shard_.begin, c.vocab_size, batch.token_ids, n, x)));
  // The residual stream starts at zero so every layer can use the fused
  // add+norm: residual += x; x = norm(residual).
  std::fill(res, res + n * h, 0.0f);
  for (int64_t li = 0; li < c.num_layers; ++li) {
    const Layer& L = layers_[li];
    KAON_RETURN_IF_ERROR(FromKernel(kernels::cpu::FusedAddRmsNorm(x, res, L.input_norm.data(), eps, n, h)));
    L.qkv.Forward(x, n, qkv_.data(), pool_.get());
    KAON_RETURN_IF_ERROR(Attention(li, L, batch, cache));
    L.o.Forward(attn_out_.data(), n, x, pool_.get());
    KAON_RETURN_IF_ERROR(
        FromKernel(kernels::cpu::FusedAddRmsNorm(x, res, L.post_attention_norm.data(), eps, n, h)));
    L.gate_up.Forward(x, n, gate_up_.data(), pool_.get());
    KAON_RETURN_IF_ERROR(
        FromKernel(kernels::cpu::SiluAndMul(gate_up_.data(), n, L.down.in_features(), act_.data())));
    L.down.Forward(act_.data(), n, x, pool_.get());
  }
  KAON_RETURN_IF_ERROR(FromKernel(kernels::cpu::FusedAddRmsNorm(x, res, final_norm_.data(), eps, n, h)));
  for (int64_t i = 0; i < batch.num_logits; ++i) {
    const int32_t row = batch.logits_indices[i];
    if (row < 0 || row >= n) return absl::InvalidArgumentError("logits index outside the batch");
    std::memcpy(gathered_.data() + i * h, x + static_cast<int64_t>(row) * h, sizeof(float) * h);
  }
  lm_head_.Forward(gathered_.data(), batch.num_logits, logits, pool_.get());
  return absl::OkStatus();
}

}  // namespace kaon
