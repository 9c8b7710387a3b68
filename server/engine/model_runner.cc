#include "server/engine/model_runner.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "server/common/status.h"

namespace kaon {

ModelRunner::ModelRunner(CausalLM& model, KvCache& cache, const RunnerConfig& config)
    : model_(model), cache_(cache), config_(config) {
  KAON_CHECK(config.block_size == cache.shape().block_size) << "runner and cache disagree on block size";
  max_blocks_per_seq_ = (config.max_model_len + config.block_size - 1) / config.block_size;
  const int64_t t = config.max_num_batched_tokens, s = config.max_num_seqs;
  token_ids_.resize(t);
  positions_.resize(t);
  slot_mapping_.resize(t);
  query_start_loc_.resize(s + 1);
  seq_lens_.resize(s);
  block_table_.resize(s * max_blocks_per_seq_);
  logits_indices_.resize(s + config.max_prompt_logits);
  logits_.resize((s + config.max_prompt_logits) * model.config().vocab_size);
}

absl::Status ModelRunner::BuildBatch(std::span<const SequenceStep> steps) {
  if (static_cast<int64_t>(steps.size()) > config_.max_num_seqs) {
    return absl::InvalidArgumentError(absl::StrCat("step has ", steps.size(), " sequences, more than max_num_seqs ",
                                                   config_.max_num_seqs));
  }
  const int64_t bs = config_.block_size;
  int64_t n = 0, num_logits = 0, max_len = 0;
  query_start_loc_[0] = 0;
  for (size_t s = 0; s < steps.size(); ++s) {
    const SequenceStep& step = steps[s];
    const int64_t q_len = static_cast<int64_t>(step.new_tokens.size());
    const int64_t len = step.num_computed + q_len;
    if (q_len == 0) return absl::InvalidArgumentError("a scheduled sequence has no new tokens");
    if (n + q_len > config_.max_num_batched_tokens) {
      return absl::InvalidArgumentError(absl::StrCat("step has more than max_num_batched_tokens ",
                                                     config_.max_num_batched_tokens, " tokens"));
    }
    if (len > config_.max_model_len) {
      return absl::InvalidArgumentError(absl::StrCat("sequence of ", len, " tokens exceeds max_model_len ",
                                                     config_.max_model_len));
    }
    const int64_t blocks_needed = (len + bs - 1) / bs;
    if (static_cast<int64_t>(step.block_ids.size()) < blocks_needed) {
      return absl::InvalidArgumentError(absl::StrCat("sequence of ", len, " tokens has only ",
                                                     step.block_ids.size(), " KV blocks"));
    }
    int32_t* table = block_table_.data() + s * max_blocks_per_seq_;
    std::copy_n(step.block_ids.begin(), blocks_needed, table);
    std::fill(table + blocks_needed, table + max_blocks_per_seq_, 0);
    for (int64_t i = 0; i < q_len; ++i) {
      const int64_t pos = step.num_computed + i;
      token_ids_[n + i] = step.new_tokens[i];
      positions_[n + i] = static_cast<int32_t>(pos);
      slot_mapping_[n + i] = static_cast<int64_t>(table[pos / bs]) * bs + pos % bs;
    }
    n += q_len;
    query_start_loc_[s + 1] = static_cast<int32_t>(n);
    seq_lens_[s] = static_cast<int32_t>(len);
    max_len = std::max(max_len, len);
    if (step.wants_logits) logits_indices_[num_logits++] = static_cast<int32_t>(n - 1);
  }
  batch_.num_tokens = n;
  batch_.token_ids = token_ids_.data();
  batch_.positions = positions_.data();
  batch_.slot_mapping = slot_mapping_.data();
  batch_.attn.query_start_loc = query_start_loc_.data();
  batch_.attn.seq_lens = seq_lens_.data();
  batch_.attn.block_table = block_table_.data();
  batch_.attn.num_seqs = static_cast<int64_t>(steps.size());
  batch_.attn.max_blocks_per_seq = max_blocks_per_seq_;
  batch_.attn.max_seq_len = max_len;
  // Prompt-logit rows follow the sampling rows.
  int64_t start = 0;
  for (size_t s = 0; s < steps.size(); ++s) {
    const SequenceStep& step = steps[s];
    if (step.num_prompt_logits > 0) {
      if (step.prompt_logits_begin < 0 ||
          step.prompt_logits_begin + step.num_prompt_logits > static_cast<int64_t>(step.new_tokens.size())) {
        return absl::InvalidArgumentError("prompt-logit rows outside the scheduled chunk");
      }
      if (num_logits + step.num_prompt_logits > static_cast<int64_t>(logits_indices_.size())) {
        return absl::InvalidArgumentError(absl::StrCat("step asks for more than ", config_.max_prompt_logits,
                                                       " prompt-logit rows"));
      }
      for (int64_t i = 0; i < step.num_prompt_logits; ++i) {
        logits_indices_[num_logits++] = static_cast<int32_t>(start + step.prompt_logits_begin + i);
      }
    }
    start += static_cast<int64_t>(step.new_tokens.size());
  }
  batch_.num_logits = num_logits;
  batch_.logits_indices = logits_indices_.data();
  return absl::OkStatus();
}

absl::StatusOr<std::span<const float>> ModelRunner::Execute(std::span<const SequenceStep> steps) {
  KAON_RETURN_IF_ERROR(BuildBatch(steps));
  ++num_forward_calls_;
  num_forward_tokens_ += batch_.num_tokens;
  KAON_RETURN_IF_ERROR(model_.Forward(batch_, cache_, logits_.data()));
  return std::span<const float>(logits_.data(), batch_.num_logits * model_.config().vocab_size);
}

}  // namespace kaon
