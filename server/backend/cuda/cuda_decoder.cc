#include "server/backend/cuda/cuda_decoder.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/rope.h"
#include "kernels/cuda/activation.h"
#include "kernels/cuda/convert.h"
#include "kernels/cuda/embedding.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/kv_cache_write.h"
#include "kernels/cuda/paged_attention.h"
#include "kernels/cuda/rmsnorm.h"
#include "kernels/cuda/rope.h"
#include "server/backend/cuda/device_buffer.h"
#include "server/backend/cpu/sampler.h"
#include "server/backend/cuda/host_weights.h"
#include "server/common/status.h"
#include "models/rope_frequencies.h"
#include "server/loading/safetensors.h"
#include "server/backend/step_metadata.h"

namespace kaon {
namespace {

using cuda_backend::CudaStatus;
using cuda_backend::DeviceBuffer;
using cuda_backend::FromKernel;
using cuda_backend::PinnedBuffer;
namespace gpu = kernels::gpu;

template <typename T>
class DeviceKvCache {
 public:
  absl::Status Allocate(int64_t num_layers, const kernels::PagedKvShape& shape) {
    num_layers_ = num_layers;
    shape_ = shape;
    k_.resize(num_layers);
    v_.resize(num_layers);
    const size_t bytes = sizeof(T) * static_cast<size_t>(shape.layer_elems());
    for (int64_t l = 0; l < num_layers; ++l) {
      KAON_RETURN_IF_ERROR(k_[l].Allocate(bytes, "KV cache (K)"));
      KAON_RETURN_IF_ERROR(v_[l].Allocate(bytes, "KV cache (V)"));
    }
    return absl::OkStatus();
  }
  T* k(int64_t l) { return k_[l].template as<T>(); }
  T* v(int64_t l) { return v_[l].template as<T>(); }
  int64_t num_layers() const { return num_layers_; }
  const kernels::PagedKvShape& shape() const { return shape_; }

 private:
  int64_t num_layers_ = 0;
  kernels::PagedKvShape shape_;
  std::vector<DeviceBuffer> k_, v_;
};

template <typename T>
class CudaDecoderModel : public CausalLM {
 public:
  CudaDecoderModel(const ModelInfo& info, const Capacity& capacity, std::string dtype)
      : info_(info), capacity_(capacity), dtype_(std::move(dtype)) {}
  ~CudaDecoderModel() override {
    if (stream_) cudaStreamDestroy(stream_);
  }

  absl::Status Load(const WeightStore& store);

  const ModelConfig& config() const override { return info_.config; }

  std::string device_name() const override { return "cuda " + dtype_; }
  // Not counted on this path: the CUDA backend behind server/backend/backend.h
  // (the next issue) counts its allocations as the CPU backend does.
  int64_t allocated_bytes() const override { return 0; }

  absl::Status Forward(const ForwardBatch& batch) override;
  // Logits come to the host here (the legacy path); the CPU sampler draws.
  absl::Status Sample(int32_t sampleable_vocab, std::span<const SamplingRow> rows, SampleResult* out) override {
    if (sampler_ == nullptr) sampler_ = std::make_unique<CpuSampler>(info_.config.vocab_size, nullptr);
    sampler_->Sample(host_logits_.data(), sampleable_vocab, rows, out);
    return absl::OkStatus();
  }
  absl::Status Logprobs(int64_t row, int32_t token, int32_t k, float* token_logprob,
                        std::vector<TokenLogprob>* top) override {
    if (sampler_ == nullptr) sampler_ = std::make_unique<CpuSampler>(info_.config.vocab_size, nullptr);
    sampler_->Logprobs(host_logits_.data() + row * info_.config.vocab_size, token, k, token_logprob, top);
    return absl::OkStatus();
  }

 private:
  struct Layer {
    DeviceBuffer input_norm, post_attention_norm, q_norm, k_norm;
    DeviceBuffer qkv, qkv_bias, o, o_bias, gate_up, down;
    int64_t qkv_out = 0;
  };

  absl::Status Upload(const std::vector<float>& host, DeviceBuffer* dst, const char* what);
  absl::Status UploadLinear(const layers::Linear& l, DeviceBuffer* w, DeviceBuffer* b, const char* what);
  T* Ptr(const DeviceBuffer& b) const { return b.template as<T>(); }

  ModelInfo info_;
  Capacity capacity_;
  std::string dtype_;
  DeviceKvCache<T> kv_;
  std::vector<float> host_logits_;
  std::unique_ptr<CpuSampler> sampler_;
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<gpu::GemmHandle> gemm_;
  std::unique_ptr<StepMetadataLayout> layout_;
  PinnedBuffer host_meta_;
  DeviceBuffer device_meta_;
  DeviceBuffer staging_;  // fp32 upload staging for conversions

  DeviceBuffer embed_, final_norm_, lm_head_, rope_cos_, rope_sin_;
  std::vector<Layer> layers_;
  DeviceBuffer hidden_, residual_, qkv_, attn_out_, gate_up_, act_, gathered_, logits_t_, logits_f32_, bad_id_;
};

template <typename T>
absl::Status CudaDecoderModel<T>::Upload(const std::vector<float>& host, DeviceBuffer* dst, const char* what) {
  KAON_RETURN_IF_ERROR(dst->Allocate(sizeof(T) * host.size(), what));
  if (host.empty()) return absl::OkStatus();
  if constexpr (std::is_same_v<T, float>) {
    return CudaStatus(cudaMemcpyAsync(dst->as<float>(), host.data(), sizeof(float) * host.size(),
                                      cudaMemcpyHostToDevice, stream_),
                      what);
  } else {
    if (staging_.bytes() < sizeof(float) * host.size()) {
      KAON_RETURN_IF_ERROR(CudaStatus(cudaStreamSynchronize(stream_), "staging"));
      KAON_RETURN_IF_ERROR(staging_.Allocate(sizeof(float) * host.size(), "upload staging"));
    }
    KAON_RETURN_IF_ERROR(CudaStatus(cudaMemcpyAsync(staging_.as<float>(), host.data(), sizeof(float) * host.size(),
                                                    cudaMemcpyHostToDevice, stream_),
                                    what));
    KAON_RETURN_IF_ERROR(FromKernel(gpu::Convert<float, T>(staging_.as<float>(), static_cast<int64_t>(host.size()),
                                                            dst->as<T>(), stream_)));
    // The staging buffer is reused by the next upload.
    return CudaStatus(cudaStreamSynchronize(stream_), what);
  }
}

template <typename T>
absl::Status CudaDecoderModel<T>::UploadLinear(const layers::Linear& l, DeviceBuffer* w, DeviceBuffer* b,
                                               const char* what) {
  std::vector<float> weight(l.weight(), l.weight() + l.out_features() * l.in_features());
  KAON_RETURN_IF_ERROR(Upload(weight, w, what));
  if (l.bias() != nullptr && b != nullptr) {
    std::vector<float> bias(l.bias(), l.bias() + l.out_features());
    KAON_RETURN_IF_ERROR(Upload(bias, b, what));
  }
  return absl::OkStatus();
}

template <typename T>
absl::Status CudaDecoderModel<T>::Load(const WeightStore& store) {
  using layers::Bias;
  const ModelConfig& c = info_.config;
  const DecoderOptions& opt = info_.options;
  const int64_t h = c.hidden_size, d = c.head_dim;
  const layers::TpInfo tp;
  KAON_RETURN_IF_ERROR(CudaStatus(cudaStreamCreate(&stream_), "cudaStreamCreate"));
  KAON_RETURN_IF_ERROR(FromKernel(gpu::GemmHandle::Create(gpu::GemmHandle::kDefaultWorkspaceBytes, &gemm_)));

  KAON_ASSIGN_OR_RETURN(std::vector<float> embed,
                        layers::LoadTensor(store, "model.embed_tokens.weight", {c.vocab_size, h}));
  KAON_RETURN_IF_ERROR(Upload(embed, &embed_, "embed_tokens"));
  layers_.resize(c.num_layers);
  auto name = [](int64_t i, const char* s) { return absl::StrCat("model.layers.", i, ".", s); };
  for (int64_t i = 0; i < c.num_layers; ++i) {
    Layer& L = layers_[i];
    KAON_ASSIGN_OR_RETURN(auto in_norm, layers::LoadTensor(store, name(i, "input_layernorm.weight"), {h}));
    KAON_RETURN_IF_ERROR(Upload(in_norm, &L.input_norm, "input_layernorm"));
    KAON_ASSIGN_OR_RETURN(auto post, layers::LoadTensor(store, name(i, "post_attention_layernorm.weight"), {h}));
    KAON_RETURN_IF_ERROR(Upload(post, &L.post_attention_norm, "post_attention_layernorm"));
    KAON_ASSIGN_OR_RETURN(layers::Linear qkv,
                          layers::LoadFusedColumnParallel(store,
                                                          {{name(i, "self_attn.q_proj"), c.num_heads * d},
                                                           {name(i, "self_attn.k_proj"), c.num_kv_heads * d},
                                                           {name(i, "self_attn.v_proj"), c.num_kv_heads * d}},
                                                          h, opt.qkv_bias, tp));
    L.qkv_out = qkv.out_features();
    KAON_RETURN_IF_ERROR(UploadLinear(qkv, &L.qkv, &L.qkv_bias, "qkv_proj"));
    KAON_ASSIGN_OR_RETURN(layers::Linear o, layers::LoadRowParallel(store, name(i, "self_attn.o_proj"), h,
                                                                    c.num_heads * d, opt.o_bias, tp));
    KAON_RETURN_IF_ERROR(UploadLinear(o, &L.o, &L.o_bias, "o_proj"));
    if (opt.qk_norm) {
      KAON_ASSIGN_OR_RETURN(auto qn, layers::LoadTensor(store, name(i, "self_attn.q_norm.weight"), {d}));
      KAON_RETURN_IF_ERROR(Upload(qn, &L.q_norm, "q_norm"));
      KAON_ASSIGN_OR_RETURN(auto kn, layers::LoadTensor(store, name(i, "self_attn.k_norm.weight"), {d}));
      KAON_RETURN_IF_ERROR(Upload(kn, &L.k_norm, "k_norm"));
    }
    KAON_ASSIGN_OR_RETURN(layers::Linear gate_up,
                          layers::LoadFusedColumnParallel(store,
                                                          {{name(i, "mlp.gate_proj"), c.intermediate_size},
                                                           {name(i, "mlp.up_proj"), c.intermediate_size}},
                                                          h, Bias::kNone, tp));
    KAON_RETURN_IF_ERROR(UploadLinear(gate_up, &L.gate_up, nullptr, "gate_up_proj"));
    KAON_ASSIGN_OR_RETURN(layers::Linear down, layers::LoadRowParallel(store, name(i, "mlp.down_proj"), h,
                                                                       c.intermediate_size, Bias::kNone, tp));
    KAON_RETURN_IF_ERROR(UploadLinear(down, &L.down, nullptr, "down_proj"));
  }
  KAON_ASSIGN_OR_RETURN(auto final_norm, layers::LoadTensor(store, "model.norm.weight", {h}));
  KAON_RETURN_IF_ERROR(Upload(final_norm, &final_norm_, "model.norm"));
  if (!c.tie_word_embeddings) {
    KAON_ASSIGN_OR_RETURN(auto head, layers::LoadTensor(store, "lm_head.weight", {c.vocab_size, h}));
    KAON_RETURN_IF_ERROR(Upload(head, &lm_head_, "lm_head"));
  }

  // RoPE tables stay fp32 whatever T is.
  const std::vector<double> inv_freq = ComputeRopeInvFreq(c);
  const int64_t half = d / 2, max_pos = capacity_.max_model_len;
  std::vector<float> cos(max_pos * half), sin(max_pos * half);
  kernels::cpu::BuildRopeCache(inv_freq.data(), half, max_pos, cos.data(), sin.data());
  for (auto [src, dst] : {std::pair{&cos, &rope_cos_}, std::pair{&sin, &rope_sin_}}) {
    KAON_RETURN_IF_ERROR(dst->Allocate(sizeof(float) * src->size(), "rope table"));
    KAON_RETURN_IF_ERROR(CudaStatus(cudaMemcpyAsync(dst->template as<float>(), src->data(), sizeof(float) * src->size(),
                                                    cudaMemcpyHostToDevice, stream_),
                                    "rope table"));
  }

  // Workspace for a full step, planned once.
  const int64_t t = capacity_.max_num_batched_tokens, lg = capacity_.max_logit_rows();
  const int64_t qkv_width = (c.num_heads + 2 * c.num_kv_heads) * d;
  KAON_RETURN_IF_ERROR(hidden_.Allocate(sizeof(T) * t * h, "hidden"));
  KAON_RETURN_IF_ERROR(residual_.Allocate(sizeof(T) * t * h, "residual"));
  KAON_RETURN_IF_ERROR(qkv_.Allocate(sizeof(T) * t * qkv_width, "qkv"));
  KAON_RETURN_IF_ERROR(attn_out_.Allocate(sizeof(T) * t * c.num_heads * d, "attention output"));
  KAON_RETURN_IF_ERROR(gate_up_.Allocate(sizeof(T) * t * 2 * c.intermediate_size, "gate_up"));
  KAON_RETURN_IF_ERROR(act_.Allocate(sizeof(T) * t * c.intermediate_size, "activation"));
  KAON_RETURN_IF_ERROR(gathered_.Allocate(sizeof(T) * lg * h, "gathered rows"));
  KAON_RETURN_IF_ERROR(logits_t_.Allocate(sizeof(T) * lg * c.vocab_size, "logits"));
  KAON_RETURN_IF_ERROR(logits_f32_.Allocate(sizeof(float) * lg * c.vocab_size, "logits (fp32)"));
  KAON_RETURN_IF_ERROR(bad_id_.Allocate(sizeof(int32_t), "embedding flag"));

  host_logits_.resize(lg * c.vocab_size);
  kernels::PagedKvShape shape;
  shape.num_blocks = capacity_.num_kv_blocks;
  shape.block_size = capacity_.block_size;
  shape.num_kv_heads = c.num_kv_heads;
  shape.head_dim = d;
  KAON_RETURN_IF_ERROR(kv_.Allocate(c.num_layers, shape));
  layout_ = std::make_unique<StepMetadataLayout>(capacity_);
  KAON_RETURN_IF_ERROR(host_meta_.Allocate(layout_->total_bytes, "step metadata (host)"));
  KAON_RETURN_IF_ERROR(device_meta_.Allocate(layout_->total_bytes, "step metadata (device)"));
  return CudaStatus(cudaStreamSynchronize(stream_), "loading weights");
}

template <typename T>
absl::Status CudaDecoderModel<T>::Forward(const ForwardBatch& batch) {
  const ModelConfig& c = info_.config;
  DeviceKvCache<T>* cache = &kv_;
  const int64_t n = batch.num_tokens, h = c.hidden_size, d = c.head_dim;
  if (n > capacity_.max_num_batched_tokens || batch.num_logits > capacity_.max_logit_rows() ||
      batch.attn.max_seq_len > capacity_.max_model_len) {
    return absl::InvalidArgumentError("batch larger than the model's planned capacity");
  }
  KAON_ASSIGN_OR_RETURN(size_t used, PackStepMetadata(batch, *layout_, host_meta_.as<std::byte>()));
  KAON_RETURN_IF_ERROR(CudaStatus(cudaMemcpyAsync(device_meta_.as<std::byte>(), host_meta_.as<std::byte>(), used,
                                                  cudaMemcpyHostToDevice, stream_),
                                  "step metadata copy"));
  const ForwardBatch dev = DeviceView(batch, *layout_, device_meta_.as<std::byte>());

  const float eps = static_cast<float>(c.rms_norm_eps);
  const int64_t width = (c.num_heads + 2 * c.num_kv_heads) * d;
  T* x = Ptr(hidden_);
  T* res = Ptr(residual_);
  T* q = Ptr(qkv_);
  T* k = q + c.num_heads * d;
  T* v = k + c.num_kv_heads * d;
  KAON_RETURN_IF_ERROR(CudaStatus(cudaMemsetAsync(bad_id_.as<int32_t>(), 0, sizeof(int32_t), stream_), "flag"));
  KAON_RETURN_IF_ERROR(FromKernel(gpu::EmbeddingLookup<T>(Ptr(embed_), c.vocab_size, h, 0, c.vocab_size,
                                                          dev.token_ids, n, x, bad_id_.as<int32_t>(), stream_)));
  // The residual stream starts at zero so every layer uses the fused add+norm.
  KAON_RETURN_IF_ERROR(CudaStatus(cudaMemsetAsync(res, 0, sizeof(T) * n * h, stream_), "residual"));
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  for (int64_t li = 0; li < c.num_layers; ++li) {
    const Layer& L = layers_[li];
    KAON_RETURN_IF_ERROR(FromKernel(gpu::FusedAddRmsNorm<T>(x, res, Ptr(L.input_norm), eps, n, h, stream_)));
    KAON_RETURN_IF_ERROR(FromKernel(gemm_->Linear<T>(x, Ptr(L.qkv), L.qkv_bias.bytes() ? Ptr(L.qkv_bias) : nullptr,
                                                     n, L.qkv_out, h, q, stream_)));
    if (info_.options.qk_norm) {
      KAON_RETURN_IF_ERROR(FromKernel(gpu::RmsNormHeads<T>(q, width, n, c.num_heads, d, Ptr(L.q_norm), eps, stream_)));
      KAON_RETURN_IF_ERROR(
          FromKernel(gpu::RmsNormHeads<T>(k, width, n, c.num_kv_heads, d, Ptr(L.k_norm), eps, stream_)));
    }
    KAON_RETURN_IF_ERROR(FromKernel(gpu::ApplyRotaryNeox<T>(q, width, k, width, dev.positions, n, c.num_heads,
                                                            c.num_kv_heads, d, rope_cos_.as<float>(),
                                                            rope_sin_.as<float>(), capacity_.max_model_len, stream_)));
    KAON_RETURN_IF_ERROR(FromKernel(gpu::WriteKvCache<T>(k, width, v, width, dev.slot_mapping, n, cache->shape(),
                                                         cache->k(li), cache->v(li), stream_)));
    KAON_RETURN_IF_ERROR(FromKernel(gpu::PagedAttention<T>(q, width, cache->k(li), cache->v(li), cache->shape(),
                                                           dev.attn, n, c.num_heads, scale, Ptr(attn_out_),
                                                           stream_)));
    KAON_RETURN_IF_ERROR(FromKernel(gemm_->Linear<T>(Ptr(attn_out_), Ptr(L.o), L.o_bias.bytes() ? Ptr(L.o_bias) : nullptr,
                                                     n, h, c.num_heads * d, x, stream_)));
    KAON_RETURN_IF_ERROR(
        FromKernel(gpu::FusedAddRmsNorm<T>(x, res, Ptr(L.post_attention_norm), eps, n, h, stream_)));
    KAON_RETURN_IF_ERROR(FromKernel(
        gemm_->Linear<T>(x, Ptr(L.gate_up), nullptr, n, 2 * c.intermediate_size, h, Ptr(gate_up_), stream_)));
    KAON_RETURN_IF_ERROR(
        FromKernel(gpu::SiluAndMul<T>(Ptr(gate_up_), n, c.intermediate_size, Ptr(act_), stream_)));
    KAON_RETURN_IF_ERROR(
        FromKernel(gemm_->Linear<T>(Ptr(act_), Ptr(L.down), nullptr, n, h, c.intermediate_size, x, stream_)));
  }
  KAON_RETURN_IF_ERROR(FromKernel(gpu::FusedAddRmsNorm<T>(x, res, Ptr(final_norm_), eps, n, h, stream_)));

  // Rows whose logits are wanted (few: one per sequence, plus prompt rows).
  for (int64_t i = 0; i < batch.num_logits; ++i) {
    const int32_t row = batch.logits_indices[i];
    if (row < 0 || row >= n) return absl::InvalidArgumentError("logits index outside the batch");
    KAON_RETURN_IF_ERROR(CudaStatus(cudaMemcpyAsync(Ptr(gathered_) + i * h, x + static_cast<int64_t>(row) * h,
                                                    sizeof(T) * h, cudaMemcpyDeviceToDevice, stream_),
                                    "gather"));
  }
  const T* head = c.tie_word_embeddings ? Ptr(embed_) : Ptr(lm_head_);
  const int64_t rows = batch.num_logits, vocab = c.vocab_size;
  KAON_RETURN_IF_ERROR(
      FromKernel(gemm_->Linear<T>(Ptr(gathered_), head, nullptr, rows, vocab, h, Ptr(logits_t_), stream_)));
  const float* out = nullptr;
  if constexpr (std::is_same_v<T, float>) {
    out = logits_t_.as<float>();
  } else {
    KAON_RETURN_IF_ERROR(FromKernel(gpu::Convert<T, float>(Ptr(logits_t_), rows * vocab, logits_f32_.as<float>(), stream_)));
    out = logits_f32_.as<float>();
  }
  int32_t bad = 0;
  KAON_RETURN_IF_ERROR(CudaStatus(
      cudaMemcpyAsync(host_logits_.data(), out, sizeof(float) * rows * vocab, cudaMemcpyDeviceToHost, stream_),
      "logits copy"));
  KAON_RETURN_IF_ERROR(
      CudaStatus(cudaMemcpyAsync(&bad, bad_id_.as<int32_t>(), sizeof(int32_t), cudaMemcpyDeviceToHost, stream_), "flag"));
  KAON_RETURN_IF_ERROR(CudaStatus(cudaStreamSynchronize(stream_), "forward"));
  if (bad != 0) return absl::InvalidArgumentError("a token id outside the vocabulary reached the embedding");
  return absl::OkStatus();
}

template <typename T>
absl::StatusOr<std::unique_ptr<CausalLM>> Build(const WeightStore& store, const ModelInfo& info,
                                                const Capacity& capacity, const std::string& dtype) {
  auto model = std::make_unique<CudaDecoderModel<T>>(info, capacity, dtype);
  KAON_RETURN_IF_ERROR(model->Load(store));
  KAON_RETURN_IF_ERROR(RefuseUnusedTensors(store, info));
  return std::unique_ptr<CausalLM>(std::move(model));
}

}  // namespace

int CudaDeviceCount() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess ? n : 0;
}

absl::Status CudaMemoryInfo(int64_t* free_bytes, int64_t* total_bytes) {
  size_t free = 0, total = 0;
  KAON_RETURN_IF_ERROR(cuda_backend::CudaStatus(cudaMemGetInfo(&free, &total), "cudaMemGetInfo"));
  *free_bytes = static_cast<int64_t>(free);
  *total_bytes = static_cast<int64_t>(total);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<CausalLM>> LoadCudaModelFromStore(const WeightStore& store, const ModelInfo& info,
                                                                 const Capacity& capacity,
                                                                 const std::string& dtype) {
  if (CudaDeviceCount() == 0) return absl::FailedPreconditionError("--device cuda: no CUDA device is available");
  if (dtype == "float32") return Build<float>(store, info, capacity, dtype);
  if (dtype == "bfloat16") return Build<__nv_bfloat16>(store, info, capacity, dtype);
  if (dtype == "float16") return Build<__half>(store, info, capacity, dtype);
  return absl::InvalidArgumentError(absl::StrCat("--dtype must be float32, bfloat16 or float16, got ", dtype));
}

absl::StatusOr<std::unique_ptr<CausalLM>> LoadCudaModel(const std::string& model_dir, const ModelInfo& info,
                                                        const Capacity& capacity, const std::string& dtype) {
  KAON_ASSIGN_OR_RETURN(std::unique_ptr<WeightStore> store, WeightStore::Open(model_dir));
  return LoadCudaModelFromStore(*store, info, capacity, dtype);
}

}  // namespace kaon
