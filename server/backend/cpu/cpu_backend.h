// The CPU backend: fp32 weights (or, with --dtype bfloat16, bf16 matrices)
// and fp32 activations in host memory, kaon's GEMMs and kernels/cpu ops
// split over one thread pool, the reference sampler. Every buffer it hands
// out is counted (allocated_bytes), so tests can hold the start-up memory
// plan to what it really allocates.
// Engine thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "kernels/cpu/cpu_isa.h"
#include "kernels/cpu/thread_pool.h"
#include "server/backend/backend.h"
#include "server/backend/cpu/sampler.h"

namespace kaon {

struct CpuBackendOptions {
  int num_threads = 0;        // 0: hardware concurrency
  int64_t vocab_size = 0;     // logits row width, sizes the sampler
  int64_t max_model_len = 0;  // longest context a step may attend over
  std::string isa = "auto";   // kernels/cpu/cpu_isa.h: auto or a path to force
  // Matrices (linear weights, the embedding table) held as bf16, computed
  // with fp32 accumulation; norm weights, biases, activations and the KV
  // cache stay fp32. `--dtype bfloat16` on the CPU.
  bool bf16_weights = false;
  // Elements of the largest GEMM input (rows × in_features): with bf16
  // weights on the avx512bf16 path, x is rounded once into a buffer this big.
  int64_t max_gemm_input = 0;
};

class CpuBackend final : public Backend {
 public:
  static absl::StatusOr<std::unique_ptr<CpuBackend>> Create(const CpuBackendOptions& options);

  // "cpu float32 avx512": the kernels' path too, so a benchmark table says
  // what ran.
  std::string name() const override {
    return std::string(options_.bf16_weights ? "cpu bfloat16 " : "cpu float32 ") + kernels::cpu::CpuIsaName(isa_);
  }
  kernels::cpu::CpuIsa isa() const { return isa_; }
  int64_t allocated_bytes() const override { return allocated_bytes_; }
  int num_threads() const { return pool_->num_threads(); }

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

  // Bytes a CpuBackend with these options allocates before any tensor:
  // attention scratch and the sampler's per-thread buffers.
  static int64_t FixedBytes(const CpuBackendOptions& options);

 private:
  explicit CpuBackend(const CpuBackendOptions& options);
  // Counted, uninitialised host memory; ResourceExhausted naming `what`.
  absl::StatusOr<void*> NewBytes(int64_t bytes, const char* what);
  absl::StatusOr<float*> NewFloats(int64_t count, const char* what);

  CpuBackendOptions options_;
  kernels::cpu::CpuIsa isa_ = kernels::cpu::CpuIsa::kScalar;
  std::unique_ptr<kernels::cpu::ThreadPool> pool_;
  struct FreeBuffer {
    void operator()(void* p) const;
  };
  std::vector<std::unique_ptr<void, FreeBuffer>> buffers_;
  int64_t allocated_bytes_ = 0;
  KvCacheSpec kv_;
  std::vector<float*> k_pool_, v_pool_;  // per layer
  const float* rope_cos_ = nullptr;
  const float* rope_sin_ = nullptr;
  int64_t rope_positions_ = 0;
  std::unique_ptr<CpuSampler> sampler_;
  uint16_t* x_bf16_ = nullptr;  // [max_gemm_input], see CpuBackendOptions
  int64_t x_bf16_capacity_ = 0;
  ForwardBatch batch_;
};

}  // namespace kaon
