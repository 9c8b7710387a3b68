#include "server/engine/model_runner.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "server/common/status.h"
#include "server/engine/sampling_rows.h"

namespace kaon {
namespace {

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

ModelRunner::ModelRunner(CausalLM& model, const Capacity& capacity, int32_t sampleable_vocab,
                         std::vector<int32_t> eos_ids)
    : model_(model), capacity_(capacity), sampleable_vocab_(sampleable_vocab), eos_ids_(std::move(eos_ids)) {
  max_blocks_per_seq_ = capacity.max_blocks_per_seq();
  const int64_t t = capacity.max_num_batched_tokens, s = capacity.max_num_seqs;
  token_ids_.resize(t);
  positions_.resize(t);
  slot_mapping_.resize(t);
  query_start_loc_.resize(s + 1);
  seq_lens_.resize(s);
  block_table_.assign(s * max_blocks_per_seq_, 0);
  block_table_rows_.resize(s);
  // Every entry of the table can change in one step at most once.
  block_table_updates_.reserve(2 * s * max_blocks_per_seq_);
  logits_indices_.resize(capacity.max_logit_rows());
  rows_.reserve(s);
  output_.sampled.reserve(s);
  output_.samples.reserve(s);
  free_rows_.reserve(s);
  // Popped from the back: row 0 first.
  for (int64_t r = s - 1; r >= 0; --r) free_rows_.push_back(static_cast<int32_t>(r));
  slots_.reserve(s);
}

void ModelRunner::Release(int64_t request_id) {
  auto it = slots_.find(request_id);
  if (it == slots_.end()) return;
  free_rows_.push_back(it->second.row);
  slots_.erase(it);
}

absl::Status ModelRunner::AddNewRequests(const SchedulerOutput& out) {
  for (const NewRequestData& n : out.new_requests) {
    auto [it, inserted] = slots_.try_emplace(n.id);
    if (!inserted) return absl::InternalError(absl::StrCat("request ", n.id, " is new to the runner twice"));
    if (free_rows_.empty()) {
      slots_.erase(it);
      return absl::InternalError("more running sequences than batch slots");
    }
    Slot& slot = it->second;
    slot.row = free_rows_.back();
    free_rows_.pop_back();
    // Room for every token it can reach: no reallocation while it decodes.
    slot.tokens.reserve(static_cast<size_t>(
        std::min<int64_t>(capacity_.max_model_len, static_cast<int64_t>(n.token_ids.size()) + n.params.max_tokens)));
    slot.tokens.assign(n.token_ids.begin(), n.token_ids.end());
    slot.num_prompt_tokens = n.num_prompt_tokens;
    slot.params = n.params;
    slot.seed = n.seed;
    slot.sample_index = n.sample_index;
    slot.num_prompt_logprobs = n.num_prompt_logprobs;
  }
  return absl::OkStatus();
}

absl::Status ModelRunner::BuildBatch(const SchedulerOutput& out) {
  const int64_t num_seqs = static_cast<int64_t>(out.scheduled.size());
  if (num_seqs > capacity_.max_num_seqs) {
    return absl::InvalidArgumentError(absl::StrCat("step has ", num_seqs, " sequences, more than max_num_seqs ",
                                                   capacity_.max_num_seqs));
  }
  KAON_RETURN_IF_ERROR(AddNewRequests(out));
  const int64_t bs = capacity_.block_size;
  int64_t n = 0, num_logits = 0, max_len = 0, new_block_entries = 0;
  query_start_loc_[0] = 0;
  step_slots_.clear();
  block_table_updates_.clear();
  for (int64_t s = 0; s < num_seqs; ++s) {
    const ScheduledRequest& sched = out.scheduled[s];
    auto it = slots_.find(sched.id);
    if (it == slots_.end()) return absl::InternalError(absl::StrCat("request ", sched.id, " is unknown to the runner"));
    Slot& slot = it->second;
    step_slots_.push_back(&slot);
    const int64_t q_len = sched.num_new_tokens;
    const int64_t len = sched.num_computed_tokens + q_len;
    if (q_len <= 0) return absl::InvalidArgumentError("a scheduled sequence has no new tokens");
    if (n + q_len > capacity_.max_num_batched_tokens) {
      return absl::InvalidArgumentError(absl::StrCat("step has more than max_num_batched_tokens ",
                                                     capacity_.max_num_batched_tokens, " tokens"));
    }
    if (len > capacity_.max_model_len) {
      return absl::InvalidArgumentError(
          absl::StrCat("sequence of ", len, " tokens exceeds max_model_len ", capacity_.max_model_len));
    }
    if (len > static_cast<int64_t>(slot.tokens.size())) {
      return absl::InternalError(absl::StrCat("request ", sched.id, " scheduled to ", len, " tokens but the runner has ",
                                              slot.tokens.size()));
    }
    // A request's block list only grows while it holds its slot: append the
    // new ids (a decode adds one every block_size steps).
    const int64_t num_new_blocks = sched.block_ids_end - sched.block_ids_begin;
    if (sched.block_ids_begin < 0 || num_new_blocks < 0 ||
        sched.block_ids_end > static_cast<int64_t>(out.block_ids.size()) ||
        slot.num_blocks + num_new_blocks > max_blocks_per_seq_) {
      return absl::InvalidArgumentError(absl::StrCat("request ", sched.id, " has a bad block id range"));
    }
    int32_t* table = block_table_.data() + static_cast<int64_t>(slot.row) * max_blocks_per_seq_;
    for (int64_t j = 0; j < num_new_blocks; ++j) {
      const int32_t id = out.block_ids[sched.block_ids_begin + j];
      table[slot.num_blocks + j] = id;
      block_table_updates_.push_back(static_cast<int32_t>(slot.row * max_blocks_per_seq_ + slot.num_blocks + j));
      block_table_updates_.push_back(id);
    }
    slot.num_blocks += num_new_blocks;
    new_block_entries += num_new_blocks;
    if (slot.num_blocks < (len + bs - 1) / bs) {
      return absl::InvalidArgumentError(
          absl::StrCat("sequence of ", len, " tokens has only ", slot.num_blocks, " KV blocks"));
    }
    block_table_rows_[s] = slot.row;
    const int32_t* tokens = slot.tokens.data() + sched.num_computed_tokens;
    for (int64_t i = 0; i < q_len; ++i) {
      const int64_t pos = sched.num_computed_tokens + i;
      token_ids_[n + i] = tokens[i];
      positions_[n + i] = static_cast<int32_t>(pos);
      slot_mapping_[n + i] = static_cast<int64_t>(table[pos / bs]) * bs + pos % bs;
    }
    n += q_len;
    query_start_loc_[s + 1] = static_cast<int32_t>(n);
    seq_lens_[s] = static_cast<int32_t>(len);
    max_len = std::max(max_len, len);
    if (sched.samples) logits_indices_[num_logits++] = static_cast<int32_t>(n - 1);
  }
  // Prompt-logit rows follow the sampling rows.
  int64_t start = 0;
  for (int64_t s = 0; s < num_seqs; ++s) {
    const ScheduledRequest& sched = out.scheduled[s];
    const Slot& slot = *step_slots_[s];
    const int64_t from = sched.num_computed_tokens;
    const int64_t rows = PromptLogitRows(slot.params, slot.num_prompt_logprobs, slot.num_prompt_tokens, from,
                                         from + sched.num_new_tokens);
    if (rows > 0) {
      if (num_logits + rows > static_cast<int64_t>(logits_indices_.size())) {
        return absl::InvalidArgumentError(absl::StrCat("step asks for more than ", capacity_.max_prompt_logprob_rows,
                                                       " prompt-logit rows"));
      }
      const int64_t begin = std::max<int64_t>(from, slot.num_prompt_logprobs) - from;
      for (int64_t i = 0; i < rows; ++i) logits_indices_[num_logits++] = static_cast<int32_t>(start + begin + i);
    }
    start += sched.num_new_tokens;
  }
  batch_.num_tokens = n;
  batch_.token_ids = token_ids_.data();
  batch_.positions = positions_.data();
  batch_.slot_mapping = slot_mapping_.data();
  batch_.attn.query_start_loc = query_start_loc_.data();
  batch_.attn.seq_lens = seq_lens_.data();
  batch_.attn.block_table = block_table_.data();
  batch_.attn.block_table_rows = block_table_rows_.data();
  batch_.attn.num_seqs = num_seqs;
  batch_.attn.max_blocks_per_seq = max_blocks_per_seq_;
  batch_.attn.max_seq_len = max_len;
  batch_.num_logits = num_logits;
  batch_.logits_indices = logits_indices_.data();
  batch_.num_block_table_updates = static_cast<int64_t>(block_table_updates_.size() / 2);
  batch_.block_table_updates = block_table_updates_.data();
  metadata_bytes_ = n * static_cast<int64_t>(2 * sizeof(int32_t) + sizeof(int64_t)) +
                    (3 * num_seqs + 1 + num_logits + new_block_entries) * static_cast<int64_t>(sizeof(int32_t));
  return absl::OkStatus();
}

void ModelRunner::BuildSamplingRows(const SchedulerOutput& out) {
  rows_.clear();
  banned_.clear();
  // Banned ids first, so the spans into banned_ stay valid.
  banned_ranges_.clear();
  for (size_t s = 0; s < out.scheduled.size(); ++s) {
    if (!out.scheduled[s].samples) continue;
    const Slot& slot = *step_slots_[s];
    const size_t begin = banned_.size();
    AppendBannedIds(slot.params, static_cast<int64_t>(slot.tokens.size()) - slot.num_prompt_tokens, eos_ids_,
                    &banned_);
    banned_ranges_.emplace_back(begin, banned_.size());
  }
  size_t k = 0;
  for (size_t s = 0; s < out.scheduled.size(); ++s) {
    if (!out.scheduled[s].samples) continue;
    const Slot& slot = *step_slots_[s];
    const std::span<const int32_t> tokens(slot.tokens);
    const auto [b0, b1] = banned_ranges_[k++];
    rows_.push_back(MakeSamplingRow(slot.params, slot.seed, slot.sample_index, tokens.first(slot.num_prompt_tokens),
                                    tokens.subspan(slot.num_prompt_tokens),
                                    std::span<const int32_t>(banned_.data() + b0, b1 - b0)));
  }
}

absl::Status ModelRunner::CollectPromptLogprobs(const SchedulerOutput& out) {
  output_.prompt_logprobs.clear();
  int64_t row = static_cast<int64_t>(rows_.size());  // prompt rows follow the sampling rows
  for (size_t i = 0; i < out.scheduled.size(); ++i) {
    const ScheduledRequest& sched = out.scheduled[i];
    Slot& slot = *step_slots_[i];
    const int64_t from = sched.num_computed_tokens;
    const int64_t rows = PromptLogitRows(slot.params, slot.num_prompt_logprobs, slot.num_prompt_tokens, from,
                                         from + sched.num_new_tokens);
    if (rows == 0) continue;
    const int64_t first = std::max<int64_t>(from, slot.num_prompt_logprobs);
    std::vector<SampleResult> entries(rows);
    for (int64_t k = 0; k < rows; ++k, ++row) {
      SampleResult& lp = entries[k];
      lp.token = slot.tokens[first + k + 1];
      KAON_RETURN_IF_ERROR(model_.Logprobs(row, lp.token, slot.params.prompt_logprobs, &lp.logprob, &lp.top));
    }
    slot.num_prompt_logprobs = first + rows;
    output_.prompt_logprobs.emplace_back(i, std::move(entries));
  }
  return absl::OkStatus();
}

// The runner's copy of each sampling request's tokens grows by its sampled
// id, so the next step's decode input comes from here, not from the scheduler.
void ModelRunner::AppendSampled(const SchedulerOutput& out) {
  size_t k = 0;
  for (size_t s = 0; s < out.scheduled.size(); ++s) {
    if (out.scheduled[s].samples) step_slots_[s]->tokens.push_back(output_.sampled[k++]);
  }
}

absl::StatusOr<const StepOutput*> ModelRunner::Execute(const SchedulerOutput& out) {
  auto t0 = std::chrono::steady_clock::now();
  for (int64_t id : out.freed) Release(id);
  for (int64_t id : out.preempted) Release(id);
  // Table changes reach a device mirror only through a Forward: until one
  // succeeds, a failed build or step leaves the mirror behind, and the next
  // step asks for the whole table instead of its deltas.
  const bool resync = table_resync_;
  table_resync_ = true;
  KAON_RETURN_IF_ERROR(BuildBatch(out));
  if (resync) batch_.num_block_table_updates = -1;
  BuildSamplingRows(out);
  timings_.prepare = SecondsSince(t0);

  t0 = std::chrono::steady_clock::now();
  ++num_forward_calls_;
  num_forward_tokens_ += batch_.num_tokens;
  KAON_RETURN_IF_ERROR(model_.Forward(batch_));
  table_resync_ = false;
  timings_.forward = SecondsSince(t0);

  t0 = std::chrono::steady_clock::now();
  KAON_RETURN_IF_ERROR(CollectPromptLogprobs(out));
  output_.samples.resize(rows_.size());
  if (!rows_.empty()) KAON_RETURN_IF_ERROR(model_.Sample(sampleable_vocab_, rows_, output_.samples.data()));
  output_.sampled.clear();
  for (const SampleResult& s : output_.samples) output_.sampled.push_back(s.token);
  AppendSampled(out);
  timings_.sample = SecondsSince(t0);
  return &output_;
}

}  // namespace kaon
