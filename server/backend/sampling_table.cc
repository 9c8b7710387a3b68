#include "server/backend/sampling_table.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "kernels/common/sampling_math.h"

namespace kaon {
namespace {

static_assert(kernels::sampling::kGreedyTemperature == kGreedyTemperature,
              "the device sampler's greedy cut-off must be the backend's");
static_assert(sizeof(kernels::SamplingRowDesc) % 16 == 0, "rows are copied as 16-byte aligned records");

constexpr size_t kAlign = 16;
size_t Align(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

bool InVocab(int32_t id, int64_t vocab) { return id >= 0 && id < vocab; }
bool Repetition(const SamplingRow& r) { return r.repetition_penalty != 1.0f; }
bool Counted(const SamplingRow& r) { return r.frequency_penalty != 0.0f || r.presence_penalty != 0.0f; }

template <typename T>
void Put(std::vector<std::byte>& bytes, size_t offset, size_t index, const T& value) {
  std::memcpy(bytes.data() + offset + index * sizeof(T), &value, sizeof(T));
}

}  // namespace

absl::Status PackSamplingTable(std::span<const SamplingRow> rows, int64_t vocab_size, PackedSamplingTable* out) {
  if (vocab_size <= 0 || vocab_size > kernels::sampling::kMaxVocab) {
    return absl::InvalidArgumentError(absl::StrCat("sampling table: vocab size ", vocab_size, " not in [1, 2^20)"));
  }
  if (rows.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    return absl::InvalidArgumentError("sampling table: too many rows");
  }
  const int64_t words = (vocab_size + 31) / 32;
  // Sizes first, with the checks, so nothing is written for a bad step.
  int64_t bias = 0, banned = 0, history = 0, allowed = 0;
  int32_t max_top = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    const SamplingRow& r = rows[i];
    if (r.logprobs < -1) {
      return absl::InvalidArgumentError(absl::StrCat("sampling table: row ", i, ": logprobs ", r.logprobs));
    }
    max_top = std::max<int32_t>(max_top, static_cast<int32_t>(std::min<int64_t>(r.logprobs, vocab_size)));
    for (const auto& [id, value] : r.logit_bias) bias += InVocab(id, vocab_size);
    for (int32_t id : r.banned_ids) banned += InVocab(id, vocab_size);
    const bool rep = Repetition(r);
    if (rep || Counted(r)) {
      for (auto ids : {rep ? r.prompt_ids : std::span<const int32_t>(), r.output_ids}) {
        for (int32_t id : ids) {
          if (!InVocab(id, vocab_size)) {
            return absl::InvalidArgumentError(
                absl::StrCat("sampling table: row ", i, ": history id ", id, " outside vocab ", vocab_size));
          }
        }
        history += static_cast<int64_t>(ids.size());
      }
    }
    if (r.allowed != nullptr) allowed += words;
  }
  constexpr int64_t kMaxIndex = std::numeric_limits<int32_t>::max();
  if (bias > kMaxIndex || banned > kMaxIndex || history > kMaxIndex) {
    return absl::InvalidArgumentError("sampling table: too many ids in one step");
  }
  out->num_rows = static_cast<int32_t>(rows.size());
  out->max_top_logprobs = max_top;
  out->rows = 0;
  out->bias_ids = Align(out->rows + rows.size() * sizeof(kernels::SamplingRowDesc));
  out->bias_values = Align(out->bias_ids + static_cast<size_t>(bias) * sizeof(int32_t));
  out->banned = Align(out->bias_values + static_cast<size_t>(bias) * sizeof(float));
  out->history = Align(out->banned + static_cast<size_t>(banned) * sizeof(int32_t));
  out->allowed = Align(out->history + static_cast<size_t>(history) * sizeof(int32_t));
  out->bytes.resize(Align(out->allowed + static_cast<size_t>(allowed) * sizeof(uint32_t)));
  std::vector<std::byte>& b = out->bytes;
  int32_t nb = 0, nx = 0, nh = 0;
  int64_t na = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    const SamplingRow& r = rows[i];
    kernels::SamplingRowDesc d{};
    d.temperature = r.temperature;
    d.top_p = r.top_p;
    d.min_p = r.min_p;
    d.repetition_penalty = r.repetition_penalty;
    d.frequency_penalty = r.frequency_penalty;
    d.presence_penalty = r.presence_penalty;
    d.top_k = r.top_k;
    d.logprobs = r.logprobs;
    d.seed = r.seed;
    d.sample_index = r.sample_index;
    d.output_position = r.output_position;
    d.bias_begin = nb;
    for (const auto& [id, value] : r.logit_bias) {  // request order: duplicates add in it
      if (!InVocab(id, vocab_size)) continue;
      Put(b, out->bias_ids, nb, id);
      Put(b, out->bias_values, nb++, value);
    }
    d.bias_count = nb - d.bias_begin;
    d.banned_begin = nx;
    for (int32_t id : r.banned_ids) {
      if (InVocab(id, vocab_size)) Put(b, out->banned, nx++, id);
    }
    d.banned_count = nx - d.banned_begin;
    const bool rep = Repetition(r), counted = Counted(r);
    d.prompt_begin = nh;
    if (rep) {
      for (int32_t id : r.prompt_ids) Put(b, out->history, nh++, id);
    }
    d.prompt_count = nh - d.prompt_begin;
    d.output_begin = nh;
    if (rep || counted) {
      for (int32_t id : r.output_ids) Put(b, out->history, nh++, id);
    }
    d.output_count = nh - d.output_begin;
    d.allowed_begin = -1;
    if (r.allowed != nullptr) {
      d.allowed_begin = na;
      std::memcpy(b.data() + out->allowed + static_cast<size_t>(na) * sizeof(uint32_t), r.allowed,
                  static_cast<size_t>(words) * sizeof(uint32_t));
      na += words;
    }
    Put(b, out->rows, i, d);
  }
  return absl::OkStatus();
}

kernels::SamplingTable ViewSamplingTable(const PackedSamplingTable& p, const std::byte* base) {
  kernels::SamplingTable t{};
  t.rows = reinterpret_cast<const kernels::SamplingRowDesc*>(base + p.rows);
  t.num_rows = p.num_rows;
  t.bias_ids = reinterpret_cast<const int32_t*>(base + p.bias_ids);
  t.bias_values = reinterpret_cast<const float*>(base + p.bias_values);
  t.banned = reinterpret_cast<const int32_t*>(base + p.banned);
  t.history = reinterpret_cast<const int32_t*>(base + p.history);
  t.allowed = reinterpret_cast<const uint32_t*>(base + p.allowed);
  return t;
}

SampleOutputsLayout LayoutSampleOutputs(int64_t rows, int32_t top_stride) {
  SampleOutputsLayout l;
  const size_t n = static_cast<size_t>(std::max<int64_t>(rows, 0));
  const size_t top = n * static_cast<size_t>(std::max(top_stride, 0));
  l.top_stride = std::max(top_stride, 0);
  l.tokens = 0;
  l.logprobs = Align(n * sizeof(int32_t));
  l.top_ids = Align(l.logprobs + n * sizeof(float));
  l.top_logprobs = Align(l.top_ids + top * sizeof(int32_t));
  l.bytes = Align(l.top_logprobs + top * sizeof(float));
  return l;
}

kernels::SampleOutputs ViewSampleOutputs(const SampleOutputsLayout& layout, std::byte* base) {
  kernels::SampleOutputs o{};
  o.tokens = reinterpret_cast<int32_t*>(base + layout.tokens);
  o.logprobs = reinterpret_cast<float*>(base + layout.logprobs);
  o.top_ids = reinterpret_cast<int32_t*>(base + layout.top_ids);
  o.top_logprobs = reinterpret_cast<float*>(base + layout.top_logprobs);
  o.top_stride = layout.top_stride;
  return o;
}

}  // namespace kaon
