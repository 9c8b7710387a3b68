#include "server/engine/offline_engine.h"

#include <algorithm>
#include <random>

#include "absl/strings/str_cat.h"
#include "server/common/status.h"

namespace kaon {

absl::StatusOr<std::unique_ptr<OfflineEngine>> OfflineEngine::Create(const std::string& model_dir,
                                                                     const EngineOptions& options) {
  std::unique_ptr<OfflineEngine> e(new OfflineEngine());
  KAON_ASSIGN_OR_RETURN(EngineParts parts, LoadEngineParts(model_dir, options));
  e->parts_ = std::move(parts);
  e->allocator_ = std::make_unique<BlockAllocator>(e->parts_.cache->shape().num_blocks, options.block_shuffle_seed);
  e->runner_ = std::make_unique<ModelRunner>(*e->parts_.model, *e->parts_.cache, e->parts_.runner_config);
  const ModelConfig& c = e->parts_.info.config;
  e->sample_scratch_.resize(2 * c.vocab_size);
  return e;
}

absl::Status OfflineEngine::Validate(const GenerateRequest& r) const {
  const int64_t n = static_cast<int64_t>(r.prompt_ids.size());
  if (n == 0) return absl::InvalidArgumentError("the prompt must contain at least one token");
  for (int32_t id : r.prompt_ids) {
    if (id < 0 || id >= parts_.info.config.vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat("prompt token id ", id, " is outside the vocabulary (0..",
                                                     parts_.info.config.vocab_size - 1, ")"));
    }
  }
  if (n >= parts_.runner_config.max_model_len) {
    return absl::InvalidArgumentError(absl::StrCat("the prompt has ", n, " tokens; max_model_len is ",
                                                   parts_.runner_config.max_model_len));
  }
  if (r.max_tokens <= 0) return absl::InvalidArgumentError("max_tokens must be at least 1");
  const auto& s = r.sampling;
  if (!(s.temperature >= 0.0f) || !(s.top_p > 0.0f && s.top_p <= 1.0f) || !(s.min_p >= 0.0f && s.min_p <= 1.0f) ||
      s.top_k < -1) {
    return absl::InvalidArgumentError(
        "sampling parameters out of range (temperature >= 0, 0 < top_p <= 1, 0 <= min_p <= 1, top_k >= -1)");
  }
  return absl::OkStatus();
}

absl::Status OfflineEngine::EnsureBlocks(int64_t num_tokens, std::vector<int32_t>* blocks) {
  const int64_t needed = (num_tokens + parts_.runner_config.block_size - 1) / parts_.runner_config.block_size;
  while (static_cast<int64_t>(blocks->size()) < needed) {
    std::optional<int32_t> b = allocator_->Allocate();
    if (!b) return absl::ResourceExhaustedError("the KV cache has no free blocks left");
    blocks->push_back(*b);
  }
  return absl::OkStatus();
}

absl::StatusOr<GenerateResult> OfflineEngine::Generate(const GenerateRequest& request) {
  KAON_RETURN_IF_ERROR(Validate(request));
  const int64_t vocab = parts_.info.config.vocab_size;
  kernels::cpu::SamplingParams sampling = request.sampling;
  if (sampling.seed == 0 && sampling.temperature > 0.0f) sampling.seed = std::random_device{}();

  std::vector<int32_t> tokens = request.prompt_ids;
  std::vector<int32_t> blocks;
  GenerateResult result;
  int64_t computed = 0;
  // Return every block on every exit path.
  struct Releaser {
    BlockAllocator& a;
    std::vector<int32_t>& b;
    ~Releaser() {
      for (int32_t id : b) a.Free(id);
    }
  } releaser{*allocator_, blocks};

  while (true) {
    // Chunked prefill: at most max_num_batched_tokens per step; the last
    // chunk (and every decode step) asks for logits.
    const int64_t chunk = std::min<int64_t>(static_cast<int64_t>(tokens.size()) - computed,
                                            parts_.runner_config.max_num_batched_tokens);
    const bool last_chunk = computed + chunk == static_cast<int64_t>(tokens.size());
    KAON_RETURN_IF_ERROR(EnsureBlocks(computed + chunk, &blocks));
    SequenceStep step;
    step.new_tokens = std::span<const int32_t>(tokens.data() + computed, chunk);
    step.num_computed = computed;
    step.block_ids = blocks;
    step.wants_logits = last_chunk;
    KAON_ASSIGN_OR_RETURN(std::span<const float> logits, runner_->Execute({&step, 1}));
    computed += chunk;
    if (!last_chunk) continue;

    const int64_t out_pos = static_cast<int64_t>(result.token_ids.size());
    if (out_pos < request.keep_logits_steps) result.logits.emplace_back(logits.begin(), logits.end());
    const float u = kernels::cpu::Philox4x32::Uniform(sampling.seed, 0, static_cast<uint64_t>(out_pos));
    int32_t next = 0;
    const kernels::KernelStatus ks =
        kernels::cpu::SampleToken(logits.data(), vocab, sampling, u, sample_scratch_.data(), &next);
    if (!ks.ok()) return absl::InvalidArgumentError(ks.message());
    result.token_ids.push_back(next);
    tokens.push_back(next);

    const auto& eos = parts_.info.config.eos_token_ids;
    if (!request.ignore_eos && std::find(eos.begin(), eos.end(), next) != eos.end()) {
      result.finish_reason = "stop";
      break;
    }
    if (static_cast<int64_t>(result.token_ids.size()) >= request.max_tokens ||
        static_cast<int64_t>(tokens.size()) >= parts_.runner_config.max_model_len) {
      result.finish_reason = "length";
      break;
    }
  }
  return result;
}

}  // namespace kaon
