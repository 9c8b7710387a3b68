#include "server/backend/cuda/cuda_backend.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <optional>
#include <vector>

#include "kernels/common/sampling_table.h"
#include "kernels/cpu/rope.h"
#include "kernels/cuda/activation.h"
#include "kernels/cuda/embedding.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/index_ops.h"
#include "kernels/cuda/kv_cache_write.h"
#include "kernels/cuda/paged_attention.h"
#include "kernels/cuda/rmsnorm.h"
#include "kernels/cuda/rope.h"
#include "kernels/cuda/sample_rows.h"
#include "server/backend/cuda/device_buffer.h"
#include "server/backend/cuda/weight_stager.h"
#include "server/backend/sampling_table.h"
#include "server/backend/step_metadata.h"
#include "server/backend/weight_parts.h"
#include "server/common/status.h"

namespace kaon {
namespace {

using cuda_backend::CudaStatus;
using cuda_backend::DeviceBuffer;
using cuda_backend::FromKernel;
using cuda_backend::PinnedBuffer;
namespace gpu = kernels::gpu;

// The API's cap on top logprobs (SamplingParams::kMaxLogprobs); the output
// buffer holds this many per row.
constexpr int32_t kMaxTopLogprobs = kMaxSampleTopLogprobs;

// The sampling table's device buffer at start-up: row descriptors and an
// allowed-token mask per row, plus this much for bias / banned / history
// lists. It grows (counted) when a step's penalty histories need more.
constexpr size_t kSamplingListBytes = size_t{4} << 20;

size_t SamplingTableBytes(const CudaBackendOptions& o) {
  const int64_t rows = o.capacity.max_num_seqs;
  const int64_t words = (o.vocab_size + 31) / 32;
  return static_cast<size_t>(rows) * (sizeof(kernels::SamplingRowDesc) + sizeof(uint32_t) * words) +
         kSamplingListBytes;
}

// The largest step's outputs (tokens, logprobs, top ids, top logprobs),
// then 16 bytes for the embedding's bad-id flag.
size_t SampleOutputBytes(int64_t rows) { return LayoutSampleOutputs(rows, kMaxTopLogprobs).bytes + 16; }

size_t BlockTableBytes(const Capacity& c) {
  return sizeof(int32_t) * static_cast<size_t>(c.max_num_seqs * c.max_blocks_per_seq());
}

int64_t RopeBytes(const CudaBackendOptions& o, int64_t half_dim) {
  return 2 * static_cast<int64_t>(sizeof(float)) * o.capacity.max_model_len * half_dim;
}

template <typename T>
class CudaBackend final : public Backend {
 public:
  CudaBackend(const CudaBackendOptions& o, std::string dtype) : o_(o), dtype_(std::move(dtype)), layout_(o.capacity) {}
  ~CudaBackend() override {
    if (stream_ != nullptr) cudaStreamSynchronize(stream_);
    stager_.reset();
    gemm_.reset();
    if (meta_copied_ != nullptr) cudaEventDestroy(meta_copied_);
    buffers_.clear();
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }

  absl::Status Init();

  std::string name() const override { return "cuda " + dtype_; }
  int64_t allocated_bytes() const override { return allocated_; }
  int64_t device_to_host_bytes() const override { return d2h_bytes_.load(std::memory_order_relaxed); }

  absl::StatusOr<Tensor> LoadWeight(const WeightStore& store, std::span<const WeightPart> parts) override;
  absl::StatusOr<Tensor> Allocate(int64_t rows, int64_t cols) override;
  absl::Status AllocateKvCache(const KvCacheSpec& spec) override;
  const KvCacheSpec& kv_cache() const override { return kv_; }
  absl::Status BuildRope(std::span<const double> inv_freq, int64_t max_positions) override;

  absl::Status BeginStep(const ForwardBatch& batch) override;
  absl::Status Embedding(const Tensor& table, int64_t vocab_begin, int64_t vocab_size, Tensor& out) override;
  absl::Status AddRmsNorm(Tensor& x, Tensor& residual, const Tensor& weight, float eps, bool first) override;
  absl::Status HeadRmsNorm(Tensor& x, int64_t col_begin, int64_t heads, int64_t head_dim, const Tensor& weight,
                           float eps) override;
  absl::Status Linear(const Tensor& x, const Tensor& weight, const Tensor* bias, Tensor& y,
                      int64_t rows = -1) override;
  absl::Status RopeAndWriteKv(Tensor& qkv, int64_t num_heads, int64_t num_kv_heads, int64_t head_dim,
                              int64_t layer) override;
  absl::Status PagedAttention(const Tensor& qkv, int64_t num_heads, int64_t head_dim, float scale, int64_t layer,
                              Tensor& out) override;
  absl::Status SiluAndMul(const Tensor& gate_up, Tensor& out) override;
  absl::Status GatherLogitRows(const Tensor& x, Tensor& out) override;
  absl::Status Sample(Tensor& logits, int32_t sampleable_vocab, std::span<const SamplingRow> rows,
                      SampleResult* out) override;
  absl::Status Logprobs(const Tensor& logits, int64_t row, int32_t token, int32_t k, float* token_logprob,
                        std::vector<TokenLogprob>* top) override;

 private:
  // Counted device memory, freed with the backend; ResourceExhausted naming
  // `what` when it does not fit.
  absl::StatusOr<void*> NewDevice(size_t bytes, const char* what);
  T* P(const Tensor& t) const { return static_cast<T*>(t.data); }
  // Copies the outputs back, waits, and turns a bad token id seen by the
  // embedding into an error.
  absl::Status FinishStep(size_t output_bytes);
  absl::Status CheckLayer(int64_t layer) const;

  CudaBackendOptions o_;
  std::string dtype_;
  StepMetadataLayout layout_;
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<gpu::GemmHandle> gemm_;
  std::vector<DeviceBuffer> buffers_;
  int64_t allocated_ = 0;
  std::unique_ptr<cuda_backend::WeightStager> stager_;  // loading only

  KvCacheSpec kv_;
  std::vector<T*> k_pool_, v_pool_;
  const float* rope_cos_ = nullptr;
  const float* rope_sin_ = nullptr;
  int64_t rope_positions_ = 0;

  // Step metadata: packed on pinned host memory, one copy to device_meta_.
  PinnedBuffer host_meta_;
  std::byte* device_meta_ = nullptr;
  int32_t* block_table_ = nullptr;  // the device mirror of the runner's table
  cudaEvent_t meta_copied_ = nullptr;
  bool meta_in_flight_ = false;
  ForwardBatch host_batch_;
  ForwardBatch dev_;

  // Sampling: the packed table, device scratch and the outputs.
  PackedSamplingTable table_;
  PinnedBuffer host_table_;
  size_t host_table_bytes_ = 0;
  std::byte* device_table_ = nullptr;
  size_t device_table_bytes_ = 0;
  void* sample_scratch_ = nullptr;
  std::byte* device_out_ = nullptr;
  PinnedBuffer host_out_;
  int32_t* bad_id_flag_ = nullptr;  // inside device_out_, at its end
  // Written on the engine thread, read by stats from others.
  std::atomic<int64_t> d2h_bytes_{0};
};

template <typename T>
absl::StatusOr<void*> CudaBackend<T>::NewDevice(size_t bytes, const char* what) {
  DeviceBuffer b;
  KAON_RETURN_IF_ERROR(b.Allocate(std::max<size_t>(bytes, 16), what));
  void* p = b.as<void>();
  allocated_ += static_cast<int64_t>(b.bytes());
  buffers_.push_back(std::move(b));
  return p;
}

template <typename T>
absl::Status CudaBackend<T>::Init() {
  KAON_RETURN_IF_ERROR(CudaStatus(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate"));
  KAON_RETURN_IF_ERROR(CudaStatus(cudaEventCreateWithFlags(&meta_copied_, cudaEventDisableTiming), "cudaEventCreate"));
  KAON_RETURN_IF_ERROR(FromKernel(gpu::GemmHandle::Create(gpu::GemmHandle::kDefaultWorkspaceBytes, &gemm_)));
  allocated_ += static_cast<int64_t>(gemm_->workspace_bytes());
  const Capacity& c = o_.capacity;
  KAON_RETURN_IF_ERROR(host_meta_.Allocate(layout_.total_bytes, "step metadata (pinned host)"));
  KAON_ASSIGN_OR_RETURN(void* meta, NewDevice(layout_.total_bytes, "step metadata"));
  device_meta_ = static_cast<std::byte*>(meta);
  KAON_ASSIGN_OR_RETURN(void* table, NewDevice(BlockTableBytes(c), "block table"));
  block_table_ = static_cast<int32_t*>(table);
  KAON_RETURN_IF_ERROR(CudaStatus(cudaMemsetAsync(block_table_, 0, BlockTableBytes(c), stream_), "block table"));
  KAON_ASSIGN_OR_RETURN(sample_scratch_,
                        NewDevice(gpu::SampleRowsScratchBytes(c.max_logit_rows(), o_.vocab_size), "sampler scratch"));
  device_table_bytes_ = SamplingTableBytes(o_);
  KAON_ASSIGN_OR_RETURN(void* st, NewDevice(device_table_bytes_, "sampling table"));
  device_table_ = static_cast<std::byte*>(st);
  host_table_bytes_ = device_table_bytes_;
  KAON_RETURN_IF_ERROR(host_table_.Allocate(host_table_bytes_, "sampling table (pinned host)"));
  const size_t out_bytes = SampleOutputBytes(c.max_logit_rows());
  KAON_ASSIGN_OR_RETURN(void* out, NewDevice(out_bytes, "sampler outputs"));
  device_out_ = static_cast<std::byte*>(out);
  bad_id_flag_ = reinterpret_cast<int32_t*>(device_out_ + out_bytes - 16);
  KAON_RETURN_IF_ERROR(host_out_.Allocate(out_bytes, "sampler outputs (pinned host)"));
  stager_ = std::make_unique<cuda_backend::WeightStager>(stream_);
  KAON_RETURN_IF_ERROR(stager_->Open());
  return CudaStatus(cudaStreamSynchronize(stream_), "CUDA backend start-up");
}

template <typename T>
absl::StatusOr<Tensor> CudaBackend<T>::LoadWeight(const WeightStore& store, std::span<const WeightPart> parts) {
  if (stager_ == nullptr) return absl::FailedPreconditionError("weights load before the KV cache is allocated");
  KAON_ASSIGN_OR_RETURN(WeightShape shape, ShapeOfParts(parts));
  KAON_ASSIGN_OR_RETURN(void* data,
                        NewDevice(sizeof(T) * static_cast<size_t>(shape.rows * shape.cols), parts.front().name.c_str()));
  T* dst = static_cast<T*>(data);
  // A column slice (tensor parallelism) is one run, so one copy, per row.
  KAON_RETURN_IF_ERROR(ForEachPartRun(
      store, parts,
      [this, dst](const TensorView& t, int64_t offset, int64_t count, int64_t at) {
        return stager_->Copy<T>(t, static_cast<size_t>(offset), static_cast<size_t>(count), dst + at);
      },
      [this, dst](int64_t at, int64_t count) {
        return CudaStatus(cudaMemsetAsync(dst + at, 0, sizeof(T) * count, stream_), "zero weight");
      }));
  return Tensor{data, shape.rows, shape.cols};
}

template <typename T>
absl::StatusOr<Tensor> CudaBackend<T>::Allocate(int64_t rows, int64_t cols) {
  const size_t bytes = sizeof(T) * static_cast<size_t>(rows * cols);
  KAON_ASSIGN_OR_RETURN(void* data, NewDevice(bytes, "activations"));
  KAON_RETURN_IF_ERROR(CudaStatus(cudaMemsetAsync(data, 0, bytes, stream_), "activations"));
  return Tensor{data, rows, cols};
}

template <typename T>
absl::Status CudaBackend<T>::AllocateKvCache(const KvCacheSpec& spec) {
  if (!k_pool_.empty()) return absl::FailedPreconditionError("the KV cache is already allocated");
  // Weights are in: the staging chunks go before the pools take the rest.
  if (stager_ != nullptr) {
    KAON_RETURN_IF_ERROR(stager_->Finish());
    stager_.reset();
  }
  const size_t bytes = sizeof(T) * static_cast<size_t>(spec.shape.layer_elems());
  for (int64_t l = 0; l < spec.num_layers; ++l) {
    absl::StatusOr<void*> k = NewDevice(bytes, "KV cache");
    absl::StatusOr<void*> v = k.ok() ? NewDevice(bytes, "KV cache") : k;
    if (!k.ok() || !v.ok()) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "the KV cache (", spec.shape.num_blocks, " blocks of ", spec.shape.block_size, " tokens, ",
          2 * spec.num_layers * static_cast<int64_t>(bytes),
          " bytes) does not fit in device memory; lower --gpu-memory-utilization or --num-kv-blocks (",
          k.ok() ? v.status().message() : k.status().message(), ")"));
    }
    k_pool_.push_back(static_cast<T*>(*k));
    v_pool_.push_back(static_cast<T*>(*v));
  }
  kv_ = spec;
  return CudaStatus(cudaStreamSynchronize(stream_), "KV cache");
}

template <typename T>
absl::Status CudaBackend<T>::BuildRope(std::span<const double> inv_freq, int64_t max_positions) {
  const int64_t half = static_cast<int64_t>(inv_freq.size());
  std::vector<float> cos(static_cast<size_t>(max_positions * half)), sin(cos.size());
  kernels::cpu::BuildRopeCache(inv_freq.data(), half, max_positions, cos.data(), sin.data());
  KAON_ASSIGN_OR_RETURN(void* dc, NewDevice(sizeof(float) * cos.size(), "RoPE tables"));
  KAON_ASSIGN_OR_RETURN(void* ds, NewDevice(sizeof(float) * sin.size(), "RoPE tables"));
  // Pageable sources: these copies return once the data is staged.
  KAON_RETURN_IF_ERROR(CudaStatus(
      cudaMemcpyAsync(dc, cos.data(), sizeof(float) * cos.size(), cudaMemcpyHostToDevice, stream_), "RoPE tables"));
  KAON_RETURN_IF_ERROR(CudaStatus(
      cudaMemcpyAsync(ds, sin.data(), sizeof(float) * sin.size(), cudaMemcpyHostToDevice, stream_), "RoPE tables"));
  rope_cos_ = static_cast<const float*>(dc);
  rope_sin_ = static_cast<const float*>(ds);
  rope_positions_ = max_positions;
  return CudaStatus(cudaStreamSynchronize(stream_), "RoPE tables");
}

template <typename T>
absl::Status CudaBackend<T>::BeginStep(const ForwardBatch& batch) {
  const Capacity& c = o_.capacity;
  if (batch.attn.max_seq_len > c.max_model_len || batch.attn.max_seq_len > rope_positions_) {
    return absl::InvalidArgumentError("sequence longer than the backend's planned context");
  }
  for (int64_t i = 0; i < batch.num_logits; ++i) {
    if (batch.logits_indices[i] < 0 || batch.logits_indices[i] >= batch.num_tokens) {
      return absl::InvalidArgumentError("logits index outside the batch");
    }
  }
  // The pinned buffer may still feed the previous step's copy.
  if (meta_in_flight_) {
    KAON_RETURN_IF_ERROR(CudaStatus(cudaEventSynchronize(meta_copied_), "step metadata"));
    meta_in_flight_ = false;
  }
  KAON_ASSIGN_OR_RETURN(PackedStep packed, PackStepMetadata(batch, layout_, host_meta_.as<std::byte>()));
  KAON_RETURN_IF_ERROR(CudaStatus(
      cudaMemcpyAsync(device_meta_, host_meta_.as<std::byte>(), packed.bytes, cudaMemcpyHostToDevice, stream_),
      "step metadata copy"));
  KAON_RETURN_IF_ERROR(CudaStatus(cudaEventRecord(meta_copied_, stream_), "step metadata"));
  meta_in_flight_ = true;
  dev_ = DeviceView(batch, packed, device_meta_, block_table_);
  const int64_t table_elems = c.max_num_seqs * c.max_blocks_per_seq();
  if (batch.num_block_table_updates < 0) {
    // The runner's table changed in ways it did not list: copy it whole
    // (rare: the first step and after a failed one).
    KAON_RETURN_IF_ERROR(CudaStatus(cudaMemcpyAsync(block_table_, batch.attn.block_table,
                                                    sizeof(int32_t) * table_elems, cudaMemcpyHostToDevice, stream_),
                                    "block table copy"));
  } else {
    KAON_RETURN_IF_ERROR(FromKernel(gpu::ApplyTableUpdates(dev_.block_table_updates, batch.num_block_table_updates,
                                                           block_table_, table_elems, stream_)));
  }
  host_batch_ = batch;
  return CudaStatus(cudaMemsetAsync(bad_id_flag_, 0, sizeof(int32_t), stream_), "embedding flag");
}

template <typename T>
absl::Status CudaBackend<T>::Embedding(const Tensor& table, int64_t vocab_begin, int64_t vocab_size, Tensor& out) {
  if (dev_.num_tokens > out.rows) return absl::InvalidArgumentError("embedding output smaller than the step");
  return FromKernel(gpu::EmbeddingLookup<T>(P(table), table.rows, table.cols, vocab_begin, vocab_size,
                                            dev_.token_ids, dev_.num_tokens, P(out), bad_id_flag_, stream_));
}

template <typename T>
absl::Status CudaBackend<T>::AddRmsNorm(Tensor& x, Tensor& residual, const Tensor& weight, float eps, bool first) {
  const int64_t n = dev_.num_tokens;
  if (first) {
    KAON_RETURN_IF_ERROR(CudaStatus(
        cudaMemcpyAsync(P(residual), P(x), sizeof(T) * n * x.cols, cudaMemcpyDeviceToDevice, stream_), "residual"));
    return FromKernel(gpu::RmsNorm<T>(P(residual), P(weight), eps, n, x.cols, P(x), stream_));
  }
  return FromKernel(gpu::FusedAddRmsNorm<T>(P(x), P(residual), P(weight), eps, n, x.cols, stream_));
}

template <typename T>
absl::Status CudaBackend<T>::HeadRmsNorm(Tensor& x, int64_t col_begin, int64_t heads, int64_t head_dim,
                                         const Tensor& weight, float eps) {
  return FromKernel(
      gpu::RmsNormHeads<T>(P(x) + col_begin, x.cols, dev_.num_tokens, heads, head_dim, P(weight), eps, stream_));
}

template <typename T>
absl::Status CudaBackend<T>::Linear(const Tensor& x, const Tensor& weight, const Tensor* bias, Tensor& y,
                                    int64_t rows) {
  const int64_t m = rows >= 0 ? rows : dev_.num_tokens;
  if (x.cols != weight.cols || y.cols != weight.rows || m > x.rows || m > y.rows) {
    return absl::InvalidArgumentError(absl::StrCat("linear shapes disagree: x [", x.rows, ", ", x.cols, "], w [",
                                                   weight.rows, ", ", weight.cols, "], y [", y.rows, ", ", y.cols,
                                                   "], rows ", m));
  }
  if (m == 0) return absl::OkStatus();
  const T* b = bias != nullptr && !bias->empty() ? P(*bias) : nullptr;
  return FromKernel(gemm_->Linear<T>(P(x), P(weight), b, m, weight.rows, x.cols, P(y), stream_));
}

template <typename T>
absl::Status CudaBackend<T>::CheckLayer(int64_t layer) const {
  if (layer < 0 || layer >= static_cast<int64_t>(k_pool_.size())) {
    return absl::InvalidArgumentError(absl::StrCat("no KV cache for layer ", layer));
  }
  return absl::OkStatus();
}

template <typename T>
absl::Status CudaBackend<T>::RopeAndWriteKv(Tensor& qkv, int64_t num_heads, int64_t num_kv_heads, int64_t head_dim,
                                            int64_t layer) {
  KAON_RETURN_IF_ERROR(CheckLayer(layer));
  const int64_t n = dev_.num_tokens, width = qkv.cols;
  T* q = P(qkv);
  T* k = q + num_heads * head_dim;
  T* v = k + num_kv_heads * head_dim;
  KAON_RETURN_IF_ERROR(FromKernel(gpu::ApplyRotaryNeox<T>(q, width, k, width, dev_.positions, n, num_heads,
                                                          num_kv_heads, head_dim, rope_cos_, rope_sin_,
                                                          rope_positions_, stream_)));
  return FromKernel(gpu::WriteKvCache<T>(k, width, v, width, dev_.slot_mapping, n, kv_.shape, k_pool_[layer],
                                         v_pool_[layer], stream_));
}

template <typename T>
absl::Status CudaBackend<T>::PagedAttention(const Tensor& qkv, int64_t num_heads, int64_t head_dim, float scale,
                                            int64_t layer, Tensor& out) {
  KAON_RETURN_IF_ERROR(CheckLayer(layer));
  if (head_dim != kv_.shape.head_dim) return absl::InvalidArgumentError("attention head_dim differs from the cache's");
  return FromKernel(gpu::PagedAttention<T>(P(qkv), qkv.cols, k_pool_[layer], v_pool_[layer], kv_.shape, dev_.attn,
                                           dev_.num_tokens, num_heads, scale, P(out), stream_));
}

template <typename T>
absl::Status CudaBackend<T>::SiluAndMul(const Tensor& gate_up, Tensor& out) {
  return FromKernel(gpu::SiluAndMul<T>(P(gate_up), dev_.num_tokens, out.cols, P(out), stream_));
}

template <typename T>
absl::Status CudaBackend<T>::GatherLogitRows(const Tensor& x, Tensor& out) {
  if (dev_.num_logits > out.rows || x.cols != out.cols) {
    return absl::InvalidArgumentError("logits rows do not fit the gathered buffer");
  }
  return FromKernel(gpu::GatherRows<T>(P(x), dev_.num_tokens, x.cols, dev_.logits_indices, dev_.num_logits, P(out),
                                       stream_));
}

template <typename T>
absl::Status CudaBackend<T>::FinishStep(size_t output_bytes) {
  // The outputs and the flag in one transfer: the flag sits at the end.
  const size_t flag_at = static_cast<size_t>(reinterpret_cast<std::byte*>(bad_id_flag_) - device_out_);
  KAON_RETURN_IF_ERROR(CudaStatus(cudaMemcpyAsync(host_out_.as<std::byte>(), device_out_, output_bytes,
                                                  cudaMemcpyDeviceToHost, stream_),
                                  "sampled ids copy"));
  KAON_RETURN_IF_ERROR(CudaStatus(cudaMemcpyAsync(host_out_.as<std::byte>() + flag_at, bad_id_flag_, sizeof(int32_t),
                                                  cudaMemcpyDeviceToHost, stream_),
                                  "embedding flag copy"));
  KAON_RETURN_IF_ERROR(CudaStatus(cudaStreamSynchronize(stream_), "step"));
  d2h_bytes_.fetch_add(static_cast<int64_t>(output_bytes + sizeof(int32_t)), std::memory_order_relaxed);
  int32_t bad = 0;
  std::memcpy(&bad, host_out_.as<std::byte>() + flag_at, sizeof(bad));
  if (bad != 0) return absl::InvalidArgumentError("a token id outside the vocabulary reached the embedding");
  return absl::OkStatus();
}

template <typename T>
absl::Status CudaBackend<T>::Sample(Tensor& logits, int32_t sampleable_vocab, std::span<const SamplingRow> rows,
                                    SampleResult* out) {
  const int64_t n = static_cast<int64_t>(rows.size());
  if (n > logits.rows || logits.cols != o_.vocab_size) return absl::InvalidArgumentError("sampling rows exceed the logits");
  if (sampleable_vocab <= 0 || sampleable_vocab > logits.cols) {
    return absl::InvalidArgumentError(absl::StrCat("sampleable vocabulary ", sampleable_vocab, " not in [1, ",
                                                   logits.cols, "]"));
  }
  if (n == 0) return absl::OkStatus();
  KAON_RETURN_IF_ERROR(PackSamplingTable(rows, o_.vocab_size, &table_));
  const size_t bytes = table_.bytes.size();
  if (bytes > device_table_bytes_) {
    // Long penalty histories: grow (counted; the old buffer stays until exit).
    KAON_ASSIGN_OR_RETURN(void* grown, NewDevice(2 * bytes, "sampling table"));
    device_table_ = static_cast<std::byte*>(grown);
    device_table_bytes_ = 2 * bytes;
  }
  if (bytes > host_table_bytes_) {
    KAON_RETURN_IF_ERROR(host_table_.Allocate(2 * bytes, "sampling table (pinned host)"));
    host_table_bytes_ = 2 * bytes;
  }
  // The previous step's copy of this buffer finished at its synchronisation.
  std::memcpy(host_table_.as<std::byte>(), table_.bytes.data(), bytes);
  KAON_RETURN_IF_ERROR(CudaStatus(
      cudaMemcpyAsync(device_table_, host_table_.as<std::byte>(), bytes, cudaMemcpyHostToDevice, stream_),
      "sampling table copy"));
  const int32_t stride = table_.max_top_logprobs;
  if (stride > kMaxTopLogprobs) return absl::InvalidArgumentError("more top logprobs than the backend holds");
  const SampleOutputsLayout layout = LayoutSampleOutputs(n, stride);
  KAON_RETURN_IF_ERROR(FromKernel(gpu::SampleRows<T>(P(logits), n, logits.cols, sampleable_vocab,
                                                     ViewSamplingTable(table_, device_table_), sample_scratch_,
                                                     ViewSampleOutputs(layout, device_out_), stream_)));
  // Only the rows' results cross: about n × (8 + 8 · stride) bytes.
  KAON_RETURN_IF_ERROR(FinishStep(layout.bytes));
  const kernels::SampleOutputs h = ViewSampleOutputs(layout, host_out_.as<std::byte>());
  for (int64_t i = 0; i < n; ++i) {
    SampleResult& r = out[i];
    r.token = h.tokens[i];
    r.logprob = rows[i].logprobs >= 0 ? h.logprobs[i] : 0.0f;
    r.top.clear();
    for (int32_t j = 0; j < std::min(rows[i].logprobs, stride); ++j) {
      r.top.push_back({h.top_ids[i * stride + j], h.top_logprobs[i * stride + j]});
    }
  }
  return absl::OkStatus();
}

template <typename T>
absl::Status CudaBackend<T>::Logprobs(const Tensor& logits, int64_t row, int32_t token, int32_t k, float* token_logprob,
                                      std::vector<TokenLogprob>* top) {
  if (row < 0 || row >= logits.rows) return absl::InvalidArgumentError("logprobs row outside the logits");
  if (k < 0 || k > kMaxTopLogprobs) return absl::InvalidArgumentError("more top logprobs than the backend holds");
  if (token < 0 || token >= logits.cols) return absl::InvalidArgumentError("logprobs token outside the vocabulary");
  float* lp = reinterpret_cast<float*>(device_out_);
  int32_t* ids = reinterpret_cast<int32_t*>(lp + 1);
  float* lps = reinterpret_cast<float*>(ids + kMaxTopLogprobs);
  KAON_RETURN_IF_ERROR(FromKernel(gpu::LogprobRow<T>(P(logits) + row * logits.cols, logits.cols, token, k,
                                                     sample_scratch_, lp, ids, lps, stream_)));
  KAON_RETURN_IF_ERROR(FinishStep(sizeof(float) * (1 + 2 * kMaxTopLogprobs)));
  const std::byte* h = host_out_.as<std::byte>();
  std::memcpy(token_logprob, h, sizeof(float));
  top->clear();
  for (int32_t j = 0; j < k; ++j) {
    int32_t id = 0;
    float v = 0;
    std::memcpy(&id, h + sizeof(float) * (1 + j), sizeof(id));
    std::memcpy(&v, h + sizeof(float) * (1 + kMaxTopLogprobs + j), sizeof(v));
    top->push_back({id, v});
  }
  return absl::OkStatus();
}

template <typename T>
absl::StatusOr<std::unique_ptr<Backend>> Make(const CudaBackendOptions& o) {
  auto b = std::make_unique<CudaBackend<T>>(o, o.dtype);
  KAON_RETURN_IF_ERROR(b->Init());
  return std::unique_ptr<Backend>(std::move(b));
}

}  // namespace

int64_t CudaBackendFixedBytes(const CudaBackendOptions& o) {
  const Capacity& c = o.capacity;
  const StepMetadataLayout layout(c);
  auto rounded = [](size_t b) { return static_cast<int64_t>(std::max<size_t>(b, 16)); };
  return static_cast<int64_t>(gpu::GemmHandle::kDefaultWorkspaceBytes) + rounded(layout.total_bytes) +
         rounded(BlockTableBytes(c)) + rounded(gpu::SampleRowsScratchBytes(c.max_logit_rows(), o.vocab_size)) +
         rounded(SamplingTableBytes(o)) + rounded(SampleOutputBytes(c.max_logit_rows())) +
         2 * rounded(static_cast<size_t>(RopeBytes(o, o.head_dim / 2) / 2));
}

absl::StatusOr<std::unique_ptr<Backend>> CreateCudaBackend(const CudaBackendOptions& o) {
  if (CudaDeviceCount() == 0) return absl::FailedPreconditionError("--device cuda: no CUDA device is available");
  if (o.vocab_size <= 0 || o.capacity.max_model_len <= 0 || o.capacity.max_num_seqs <= 0 ||
      o.capacity.max_num_batched_tokens <= 0 || o.capacity.block_size <= 0) {
    return absl::InvalidArgumentError("the CUDA backend needs a positive vocabulary size and capacity");
  }
  if (o.dtype == "float32") return Make<float>(o);
  if (o.dtype == "bfloat16") return Make<__nv_bfloat16>(o);
  if (o.dtype == "float16") return Make<__half>(o);
  return absl::InvalidArgumentError(absl::StrCat("--dtype must be float32, bfloat16 or float16, got ", o.dtype));
}

int CudaDeviceCount() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess ? n : 0;
}

absl::Status CudaMemoryInfo(int64_t* free_bytes, int64_t* total_bytes) {
  size_t free = 0, total = 0;
  KAON_RETURN_IF_ERROR(CudaStatus(cudaMemGetInfo(&free, &total), "cudaMemGetInfo"));
  *free_bytes = static_cast<int64_t>(free);
  *total_bytes = static_cast<int64_t>(total);
  return absl::OkStatus();
}

}  // namespace kaon
