#include "server/backend/cpu/cpu_backend.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"
#include "kernels/cpu/activation.h"
#include "kernels/cpu/embedding.h"
#include "kernels/cpu/index_ops.h"
#include "kernels/cpu/kv_cache_write.h"
#include "kernels/cpu/paged_attention.h"
#include "kernels/cpu/rmsnorm.h"
#include "kernels/cpu/rope.h"
#include "server/backend/cpu/gemm.h"
#include "server/backend/weight_parts.h"
#include "server/common/status.h"

namespace kaon {
namespace {

absl::Status FromKernel(const kernels::KernelStatus& s) {
  if (s.ok()) return absl::OkStatus();
  return absl::InternalError(s.message());
}

float* F(const Tensor& t) { return static_cast<float*>(t.data); }

int ResolveThreads(int n) { return n > 0 ? n : static_cast<int>(std::max(1u, std::thread::hardware_concurrency())); }

}  // namespace

CpuBackend::CpuBackend(const CpuBackendOptions& options) : options_(options) {}

namespace {

// The bf16 copy of a GEMM's x: only where the GEMMs read one.
int64_t RoundedInputElems(const CpuBackendOptions& o, kernels::cpu::CpuIsa isa) {
  return o.bf16_weights && isa == kernels::cpu::CpuIsa::kAvx512Bf16 ? o.max_gemm_input : 0;
}

}  // namespace

int64_t CpuBackend::FixedBytes(const CpuBackendOptions& o) {
  const int64_t threads = ResolveThreads(o.num_threads);
  kernels::cpu::CpuIsa isa = kernels::cpu::CpuIsa::kScalar;
  std::string error;
  kernels::cpu::ResolveCpuIsa(o.isa, kernels::cpu::DetectCpuIsaSupport(), &isa, &error);
  return CpuSampler::ScratchBytes(o.vocab_size, static_cast<int>(threads)) +
         RoundedInputElems(o, isa) * static_cast<int64_t>(sizeof(uint16_t));
}

absl::StatusOr<std::unique_ptr<CpuBackend>> CpuBackend::Create(const CpuBackendOptions& options) {
  if (options.vocab_size <= 0 || options.max_model_len <= 0) {
    return absl::InvalidArgumentError("the CPU backend needs a positive vocabulary size and context length");
  }
  std::unique_ptr<CpuBackend> b(new CpuBackend(options));
  std::string isa_error;
  if (!kernels::cpu::ResolveCpuIsa(options.isa, kernels::cpu::DetectCpuIsaSupport(), &b->isa_, &isa_error)) {
    return absl::InvalidArgumentError(isa_error);
  }
  b->pool_ = std::make_unique<kernels::cpu::ThreadPool>(ResolveThreads(options.num_threads));
  // Created now, not at the first step, so its scratch is in the plan and
  // in allocated_bytes() before the KV cache is sized.
  b->sampler_ = std::make_unique<CpuSampler>(options.vocab_size, b->pool_.get());
  b->allocated_bytes_ += b->sampler_->scratch_bytes();
  if (const int64_t n = RoundedInputElems(options, b->isa_); n > 0) {
    KAON_ASSIGN_OR_RETURN(void* p, b->NewBytes(n * static_cast<int64_t>(sizeof(uint16_t)), "bf16 GEMM input"));
    b->x_bf16_ = static_cast<uint16_t*>(p);
    b->x_bf16_capacity_ = n;
  }
  return b;
}

void CpuBackend::FreeBuffer::operator()(void* p) const { std::free(p); }

absl::StatusOr<float*> CpuBackend::NewFloats(int64_t count, const char* what) {
  KAON_ASSIGN_OR_RETURN(void* p, NewBytes(count * static_cast<int64_t>(sizeof(float)), what));
  return static_cast<float*>(p);
}

absl::StatusOr<void*> CpuBackend::NewBytes(int64_t count, const char* what) {
  // Buffers of 2 MiB and more start on a 2 MiB boundary and ask for
  // transparent huge pages: a decode step streams every weight (4 KiB pages
  // cost a TLB miss every 4 KiB), and the KV pool, left untouched until a
  // sequence writes it, would otherwise take a page fault per 4 KiB written
  // (measured: 7% of a decode-heavy run's engine thread in page clearing).
  constexpr size_t kHuge = size_t{2} << 20;
  const size_t bytes = static_cast<size_t>(std::max<int64_t>(count, 1));
  const bool huge = bytes >= kHuge;
  const size_t align = huge ? kHuge : 64;
  void* p = std::aligned_alloc(align, (bytes + align - 1) / align * align);
  if (p != nullptr && huge) madvise(p, (bytes + align - 1) / align * align, MADV_HUGEPAGE);  // a hint: may fail
  if (p == nullptr) {
    return absl::ResourceExhaustedError(
        absl::StrCat("out of host memory allocating ", what, " (", count, " bytes)"));
  }
  buffers_.emplace_back(p);
  allocated_bytes_ += count;
  return p;
}

namespace {

// The parts' runs into `data`, converted by convert(view, offset, count, out)
// (ConvertToF32 or ConvertToBF16); zeroed parts as zeros.
template <typename T, typename Convert>
absl::Status FillParts(const WeightStore& store, std::span<const WeightPart> parts, T* data, Convert convert) {
  return ForEachPartRun(
      store, parts,
      [&](const TensorView& t, int64_t offset, int64_t count, int64_t dst) {
        convert(t, static_cast<size_t>(offset), static_cast<size_t>(count), data + dst);
        return absl::OkStatus();
      },
      [&](int64_t dst, int64_t count) {
        std::fill(data + dst, data + dst + count, T{0});
        return absl::OkStatus();
      });
}

}  // namespace

absl::StatusOr<Tensor> CpuBackend::LoadWeight(const WeightStore& store, std::span<const WeightPart> parts) {
  KAON_ASSIGN_OR_RETURN(WeightShape shape, ShapeOfParts(parts));
  const int64_t n = shape.rows * shape.cols;
  if (options_.bf16_weights && parts.front().shape.size() == 2) {
    KAON_ASSIGN_OR_RETURN(void* raw, NewBytes(n * 2, parts.front().name.c_str()));
    uint16_t* bits = static_cast<uint16_t*>(raw);
    KAON_RETURN_IF_ERROR(FillParts(store, parts, bits, ConvertToBF16));
    return Tensor{bits, shape.rows, shape.cols, DType::kBF16};
  }
  KAON_ASSIGN_OR_RETURN(float* data, NewFloats(n, parts.front().name.c_str()));
  KAON_RETURN_IF_ERROR(FillParts(store, parts, data, ConvertToF32));
  return Tensor{data, shape.rows, shape.cols};
}

absl::StatusOr<Tensor> CpuBackend::Allocate(int64_t rows, int64_t cols) {
  KAON_ASSIGN_OR_RETURN(float* data, NewFloats(rows * cols, "activations"));
  std::fill(data, data + rows * cols, 0.0f);
  return Tensor{data, rows, cols};
}

absl::Status CpuBackend::AllocateKvCache(const KvCacheSpec& spec) {
  if (!k_pool_.empty()) return absl::FailedPreconditionError("the KV cache is already allocated");
  const int64_t elems = spec.shape.layer_elems();
  for (int64_t l = 0; l < spec.num_layers; ++l) {
    // Left uninitialised: attention only reads slots its sequence wrote, and
    // untouched pages of a large pool cost no memory or start-up time.
    absl::StatusOr<float*> k = NewFloats(elems, "KV cache");
    absl::StatusOr<float*> v = k.ok() ? NewFloats(elems, "KV cache") : k;
    if (!k.ok() || !v.ok()) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "the KV cache (", spec.shape.num_blocks, " blocks of ", spec.shape.block_size, " tokens, ",
          2 * spec.num_layers * elems * static_cast<int64_t>(sizeof(float)),
          " bytes) does not fit in host memory; lower --num-kv-blocks or --max-model-len"));
    }
    k_pool_.push_back(*k);
    v_pool_.push_back(*v);
  }
  kv_ = spec;
  return absl::OkStatus();
}

absl::Status CpuBackend::BuildRope(std::span<const double> inv_freq, int64_t max_positions) {
  const int64_t half = static_cast<int64_t>(inv_freq.size());
  KAON_ASSIGN_OR_RETURN(float* cos, NewFloats(max_positions * half, "RoPE tables"));
  KAON_ASSIGN_OR_RETURN(float* sin, NewFloats(max_positions * half, "RoPE tables"));
  kernels::cpu::BuildRopeCache(inv_freq.data(), half, max_positions, cos, sin);
  rope_cos_ = cos;
  rope_sin_ = sin;
  rope_positions_ = max_positions;
  return absl::OkStatus();
}

absl::Status CpuBackend::BeginStep(const ForwardBatch& batch) {
  if (batch.attn.max_seq_len > options_.max_model_len) {
    return absl::InvalidArgumentError("sequence longer than the backend's planned context");
  }
  batch_ = batch;
  return absl::OkStatus();
}

absl::Status CpuBackend::Embedding(const Tensor& table, int64_t vocab_begin, int64_t vocab_size, Tensor& out) {
  if (batch_.num_tokens > out.rows) return absl::InvalidArgumentError("embedding output smaller than the step");
  if (table.dtype == DType::kBF16) {
    return FromKernel(kernels::cpu::EmbeddingLookupBf16(static_cast<const uint16_t*>(table.data), table.rows,
                                                        table.cols, vocab_begin, vocab_size, batch_.token_ids,
                                                        batch_.num_tokens, F(out)));
  }
  return FromKernel(kernels::cpu::EmbeddingLookup(F(table), table.rows, table.cols, vocab_begin, vocab_size,
                                                  batch_.token_ids, batch_.num_tokens, F(out)));
}

absl::Status CpuBackend::AddRmsNorm(Tensor& x, Tensor& residual, const Tensor& weight, float eps, bool first) {
  if (first) {
    std::memcpy(F(residual), F(x), sizeof(float) * batch_.num_tokens * x.cols);
    return FromKernel(kernels::cpu::RmsNorm(F(residual), F(weight), eps, batch_.num_tokens, x.cols, F(x)));
  }
  return FromKernel(kernels::cpu::FusedAddRmsNorm(F(x), F(residual), F(weight), eps, batch_.num_tokens, x.cols));
}

absl::Status CpuBackend::HeadRmsNorm(Tensor& x, int64_t col_begin, int64_t heads, int64_t head_dim,
                                     const Tensor& weight, float eps) {
  for (int64_t t = 0; t < batch_.num_tokens; ++t) {
    float* row = F(x) + t * x.cols + col_begin;
    KAON_RETURN_IF_ERROR(FromKernel(kernels::cpu::RmsNorm(row, F(weight), eps, heads, head_dim, row)));
  }
  return absl::OkStatus();
}

absl::Status CpuBackend::Linear(const Tensor& x, const Tensor& weight, const Tensor* bias, Tensor& y,
                                int64_t rows) {
  const int64_t m = rows >= 0 ? rows : batch_.num_tokens;
  if (x.cols != weight.cols || y.cols != weight.rows || m > x.rows || m > y.rows) {
    return absl::InvalidArgumentError(absl::StrCat("linear shapes disagree: x [", x.rows, ", ", x.cols, "], w [",
                                                   weight.rows, ", ", weight.cols, "], y [", y.rows, ", ", y.cols,
                                                   "], rows ", m));
  }
  const float* b = bias != nullptr && !bias->empty() ? F(*bias) : nullptr;
  if (weight.dtype == DType::kBF16) {
    cpu::Gemm(isa_, F(x), static_cast<const uint16_t*>(weight.data), b, m, x.cols, y.cols, F(y), pool_.get(), x_bf16_,
              x_bf16_capacity_);
  } else {
    cpu::Gemm(isa_, F(x), F(weight), b, m, x.cols, y.cols, F(y), pool_.get());
  }
  return absl::OkStatus();
}

absl::Status CpuBackend::RopeAndWriteKv(Tensor& qkv, int64_t num_heads, int64_t num_kv_heads, int64_t head_dim,
                                        int64_t layer) {
  if (layer < 0 || layer >= static_cast<int64_t>(k_pool_.size())) {
    return absl::InvalidArgumentError(absl::StrCat("no KV cache for layer ", layer));
  }
  const int64_t n = batch_.num_tokens, width = qkv.cols;
  float* q = F(qkv);
  float* k = q + num_heads * head_dim;
  float* v = k + num_kv_heads * head_dim;
  KAON_RETURN_IF_ERROR(FromKernel(kernels::cpu::ApplyRotaryNeox(q, width, k, width, batch_.positions, n, num_heads,
                                                                num_kv_heads, head_dim, rope_cos_, rope_sin_,
                                                                rope_positions_)));
  return FromKernel(kernels::cpu::WriteKvCache(k, width, v, width, batch_.slot_mapping, n, kv_.shape,
                                               k_pool_[layer], v_pool_[layer]));
}

absl::Status CpuBackend::PagedAttention(const Tensor& qkv, int64_t num_heads, int64_t head_dim, float scale,
                                        int64_t layer, Tensor& out) {
  if (layer < 0 || layer >= static_cast<int64_t>(k_pool_.size())) {
    return absl::InvalidArgumentError(absl::StrCat("no KV cache for layer ", layer));
  }
  return FromKernel(kernels::cpu::PagedAttention(F(qkv), qkv.cols, k_pool_[layer], v_pool_[layer], kv_.shape,
                                                 batch_.attn, num_heads, scale, F(out), pool_.get(),
                                                 isa_));
}

absl::Status CpuBackend::SiluAndMul(const Tensor& gate_up, Tensor& out) {
  return FromKernel(kernels::cpu::SiluAndMul(F(gate_up), batch_.num_tokens, out.cols, F(out)));
}

absl::Status CpuBackend::GatherLogitRows(const Tensor& x, Tensor& out) {
  if (batch_.num_logits > out.rows) return absl::InvalidArgumentError("more logits rows than planned");
  for (int64_t i = 0; i < batch_.num_logits; ++i) {
    const int32_t row = batch_.logits_indices[i];
    if (row < 0 || row >= batch_.num_tokens) return absl::InvalidArgumentError("logits index outside the batch");
  }
  return FromKernel(
      kernels::cpu::GatherRows(F(x), batch_.num_tokens, x.cols, batch_.logits_indices, batch_.num_logits, F(out)));
}

absl::Status CpuBackend::Sample(Tensor& logits, int32_t sampleable_vocab, std::span<const SamplingRow> rows,
                                SampleResult* out) {
  if (static_cast<int64_t>(rows.size()) > logits.rows || logits.cols != options_.vocab_size) {
    return absl::InvalidArgumentError("sampling rows exceed the logits");
  }
  if (sampleable_vocab <= 0 || sampleable_vocab > logits.cols) {
    return absl::InvalidArgumentError(absl::StrCat("sampleable vocabulary ", sampleable_vocab, " not in [1, ",
                                                   logits.cols, "]"));
  }
  sampler_->Sample(F(logits), sampleable_vocab, rows, out);
  return absl::OkStatus();
}

absl::Status CpuBackend::Logprobs(const Tensor& logits, int64_t row, int32_t token, int32_t k, float* token_logprob,
                                  std::vector<TokenLogprob>* top) {
  if (row < 0 || row >= logits.rows) return absl::InvalidArgumentError("logprobs row outside the logits");
  sampler_->Logprobs(F(logits) + row * logits.cols, token, k, token_logprob, top);
  return absl::OkStatus();
}

}  // namespace kaon
