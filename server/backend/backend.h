// The backend seam: everything that touches device memory. A backend owns
// the weights (loaded once, straight into its dtype, each tensor sliced by a
// shard descriptor so tensor parallelism can split it), the activation
// workspace and KV pools planned at start-up, the step's metadata and the
// sampler. The decoder (models/decoder.h) composes the ops below and never
// sees a pointer's contents; logits stay in backend memory and only sampled
// ids (and requested logprob rows) come back.
//
// Block tables: a persistent padded table [max_num_seqs, max_blocks_per_seq]
// indexed by the runner's batch slot (ForwardBatch::attn.block_table_rows), updated
// by row deltas: a decode step writes at most one new block id per sequence,
// so the bytes a step sends grow with the number of sequences, not with
// sequences × blocks. Both backends use it.
//
// Room left for later work: SamplingRow::allowed (structured output) and
// ForwardBatch::adapter_ids (batched LoRA) once adapters exist.
//
// Engine thread only: one step at a time, ops in call order. An op may run
// asynchronously on a device; Sample() is where the host waits.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kernels/cpu/paged_kv.h"
#include "server/backend/batch.h"
#include "server/backend/sampling.h"
#include "server/loading/safetensors.h"

namespace kaon {

// A 2-D tensor in backend memory: `rows` × `cols` elements of the backend's
// dtype, row-major. Activations are allocated for the step's capacity and
// ops touch only the rows a step uses.
struct Tensor {
  void* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
  // Set where a backend mixes element types: the CPU backend in bfloat16
  // holds its matrices as kBF16 and norm weights, biases and activations as
  // kF32. A device backend's tensors are all its compute dtype and leave it.
  DType dtype = DType::kF32;
  bool empty() const { return data == nullptr; }
};

// One checkpoint tensor's share of a backend tensor: rows [row_begin,
// row_end) and columns [col_begin, col_end) of `name` ([rows, cols] as
// checkpoints store weights). The 2-D parts of one LoadWeight call stack
// their rows (fused q|k|v, gate|up) and must have equal column counts; 1-D
// parts (norm weights, biases: one row, sliced by columns) concatenate into
// one row.
struct WeightPart {
  std::string name;
  std::vector<int64_t> shape;  // the full tensor's shape, checked against the file
  int64_t row_begin = 0, row_end = 0;
  int64_t col_begin = 0, col_end = 0;
  // Loaded as zeros, though still read and checked (a row-parallel bias on
  // ranks other than 0).
  bool zero = false;
};

// What a backend holds per layer for attention: a paged K and V pool.
struct KvCacheSpec {
  int64_t num_layers = 0;
  kernels::PagedKvShape shape;
};

class Backend {
 public:
  virtual ~Backend() = default;

  // "cpu float32", "cuda bfloat16".
  virtual std::string name() const = 0;
  // Bytes this backend has allocated so far (weights, workspace, KV pools,
  // metadata, sampler scratch): what the start-up memory plan must predict.
  virtual int64_t allocated_bytes() const = 0;
  // Bytes copied from device to host memory so far (0 for the CPU): what
  // the GPU check reports per step.
  virtual int64_t device_to_host_bytes() const { return 0; }

  // ---- start-up
  virtual absl::StatusOr<Tensor> LoadWeight(const WeightStore& store, std::span<const WeightPart> parts) = 0;
  // A zeroed activation buffer.
  virtual absl::StatusOr<Tensor> Allocate(int64_t rows, int64_t cols) = 0;
  // The KV pools; ResourceExhausted (naming --num-kv-blocks) when they do
  // not fit.
  virtual absl::Status AllocateKvCache(const KvCacheSpec& spec) = 0;
  virtual const KvCacheSpec& kv_cache() const = 0;
  // RoPE cos/sin tables for positions [0, max_positions) from inverse
  // frequencies (models/rope_frequencies.h), [half_dim] each.
  virtual absl::Status BuildRope(std::span<const double> inv_freq, int64_t max_positions) = 0;

  // ---- one step
  // Makes `batch` (host memory) the step's metadata; the ops below read it.
  virtual absl::Status BeginStep(const ForwardBatch& batch) = 0;
  // out[t] = table[token_ids[t] - vocab_begin] (zeros for ids outside the
  // shard).
  virtual absl::Status Embedding(const Tensor& table, int64_t vocab_begin, int64_t vocab_size, Tensor& out) = 0;
  // residual += x (residual = x when `first`: the stream starts at the
  // embeddings); x = rmsnorm(residual) * weight, over the step's tokens.
  virtual absl::Status AddRmsNorm(Tensor& x, Tensor& residual, const Tensor& weight, float eps,
                                  bool first = false) = 0;
  // rmsnorm of each `head_dim` slice of columns [col_begin, col_begin +
  // heads * head_dim) of x, in place (Qwen3's q/k norm).
  virtual absl::Status HeadRmsNorm(Tensor& x, int64_t col_begin, int64_t heads, int64_t head_dim,
                                   const Tensor& weight, float eps) = 0;
  // y[:rows] = x[:rows] · wᵀ (+ bias); rows = the step's tokens, or `rows`
  // when given (the LM head over the gathered logits rows).
  virtual absl::Status Linear(const Tensor& x, const Tensor& weight, const Tensor* bias, Tensor& y,
                              int64_t rows = -1) = 0;
  // RoPE (NeoX) on the q and k heads of the fused [q | k | v] rows, then k
  // and v into `layer`'s pages at the step's slot mapping.
  virtual absl::Status RopeAndWriteKv(Tensor& qkv, int64_t num_heads, int64_t num_kv_heads, int64_t head_dim,
                                      int64_t layer) = 0;
  // Causal paged attention of the q heads of `qkv` over `layer`'s pages.
  virtual absl::Status PagedAttention(const Tensor& qkv, int64_t num_heads, int64_t head_dim, float scale,
                                      int64_t layer, Tensor& out) = 0;
  // out = silu(gate) * up of [gate | up] rows.
  virtual absl::Status SiluAndMul(const Tensor& gate_up, Tensor& out) = 0;
  // out[i] = x[logits_indices[i]] for the step's logits rows.
  virtual absl::Status GatherLogitRows(const Tensor& x, Tensor& out) = 0;
  // Samples one token from each of the first rows.size() rows of `logits`
  // (which it may overwrite). Results in host memory.
  virtual absl::Status Sample(Tensor& logits, int32_t sampleable_vocab, std::span<const SamplingRow> rows,
                              SampleResult* out) = 0;
  // Raw log-softmax of logits row `row`: `token`'s logprob and the top `k`
  // (prompt logprobs).
  virtual absl::Status Logprobs(const Tensor& logits, int64_t row, int32_t token, int32_t k, float* token_logprob,
                                std::vector<TokenLogprob>* top) = 0;
};

}  // namespace kaon
