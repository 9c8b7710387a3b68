#include "server/engine/engine_setup.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "models/random_weights.h"
#include "server/engine/device.h"
#include "server/common/status.h"
#include "server/runtime/memory_plan.h"

namespace kaon {
namespace {

// Default KV budget when --num-kv-blocks is not given: room for max_num_seqs
// full contexts, but no more than this many bytes (and never less than one
// full context).
constexpr int64_t kDefaultKvBytes = int64_t{512} << 20;

}  // namespace

absl::Status ValidateEngineOptions(const EngineOptions& o, const ModelConfig& config) {
  if (o.max_model_len < 0) return absl::InvalidArgumentError("--max-model-len must be positive");
  if (o.max_model_len > config.max_position_embeddings) {
    return absl::InvalidArgumentError(absl::StrCat("--max-model-len ", o.max_model_len,
                                                   " exceeds the model's max_position_embeddings ",
                                                   config.max_position_embeddings));
  }
  if (o.max_num_batched_tokens <= 0) return absl::InvalidArgumentError("--max-num-batched-tokens must be positive");
  if (o.max_num_seqs <= 0) return absl::InvalidArgumentError("--max-num-seqs must be positive");
  if (o.block_size <= 0 || o.block_size > 1024) {
    return absl::InvalidArgumentError("--block-size must be between 1 and 1024");
  }
  if (o.num_kv_blocks < 0) return absl::InvalidArgumentError("--num-kv-blocks must be positive");
  if (o.num_threads < 0) return absl::InvalidArgumentError("--threads must be positive");
  return absl::OkStatus();
}

absl::StatusOr<EngineParts> LoadEngineParts(const std::string& model_dir, const EngineOptions& given) {
  EngineParts p;
  EngineOptions options = given;
  if (options.model_loader) {
    p.device = "injected";  // a test's or the GPU check's loader
  } else {
    KAON_ASSIGN_OR_RETURN(DeviceChoice d, ConfigureDevice(&options));
    p.device = d.device;
    p.dtype = d.dtype;
    p.device_reason = d.reason;
  }
  KAON_ASSIGN_OR_RETURN(p.info, LoadModelInfo(model_dir));
  const ModelConfig& c = p.info.config;
  KAON_RETURN_IF_ERROR(ValidateEngineOptions(options, c));

  const int64_t context = options.max_model_len > 0 ? options.max_model_len : c.max_position_embeddings;
  kernels::PagedKvShape shape;
  shape.block_size = options.block_size;
  shape.num_kv_heads = c.num_kv_heads;
  shape.head_dim = c.head_dim;
  const int64_t blocks_per_seq = (context + options.block_size - 1) / options.block_size;
  int64_t num_blocks = options.num_kv_blocks;
  if (num_blocks == 0) {
    const int64_t by_bytes = kDefaultKvBytes / KvBytesPerBlock(c, options.block_size, sizeof(float));
    num_blocks = std::max(blocks_per_seq, std::min(options.max_num_seqs * blocks_per_seq, by_bytes));
  }
  shape.num_blocks = num_blocks;

  RunnerConfig& rc = p.runner_config;
  // An explicit --max-model-len must fit the cache; the default shrinks to it.
  const int64_t cache_tokens = num_blocks * options.block_size;
  if (options.max_model_len > cache_tokens) {
    return absl::InvalidArgumentError(absl::StrCat("--max-model-len ", options.max_model_len,
                                                   " does not fit the KV cache (", num_blocks, " blocks of ",
                                                   options.block_size, " tokens); raise --num-kv-blocks"));
  }
  rc.max_model_len = std::min(context, cache_tokens);
  rc.max_num_batched_tokens = options.max_num_batched_tokens;
  rc.max_num_seqs = options.max_num_seqs;
  rc.block_size = options.block_size;
  // Prompt logprobs need a logits row per prompt token; a bounded number per
  // step keeps the logits buffer small for large vocabularies (the scheduler
  // spreads the rest over later steps).
  constexpr int64_t kPromptLogitsBytes = int64_t{64} << 20;
  rc.max_prompt_logits = std::clamp<int64_t>(kPromptLogitsBytes / (4 * c.vocab_size), 1, rc.max_num_batched_tokens);

  ModelCapacity capacity;
  capacity.max_num_tokens = rc.max_num_batched_tokens;
  capacity.max_num_seqs = rc.max_num_seqs;
  capacity.max_num_logits = rc.max_num_seqs + rc.max_prompt_logits;
  capacity.max_seq_len = rc.max_model_len;
  capacity.num_threads = options.num_threads;
  if (options.model_loader) {
    KAON_ASSIGN_OR_RETURN(p.model, options.model_loader(model_dir, p.info, capacity));
  } else if (options.dummy_weights) {
    // Seed 0, fp32: the model `kaon random-model --seed 0` would write.
    KAON_ASSIGN_OR_RETURN(std::unique_ptr<WeightStore> store, RandomWeightStore(p.info, 0, DType::kF32));
    KAON_ASSIGN_OR_RETURN(p.model, LoadModelFromStore(*store, p.info, capacity));
  } else {
    KAON_ASSIGN_OR_RETURN(p.model, LoadModel(model_dir, p.info, capacity));
  }
  p.cache = p.model->CreateKvCache(shape);
  return p;
}

}  // namespace kaon
