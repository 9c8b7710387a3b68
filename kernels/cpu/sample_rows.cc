#include "kernels/cpu/sample_rows.h"

#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include "kernels/common/philox.h"
#include "kernels/common/sampling_math.h"

namespace kaon::kernels::cpu {
namespace {

using sampling::Boundary;
using sampling::RowScale;

// A member of a select: the kernel recomputes these per pass from the row;
// the twin computes them once and keeps the members in id order.
struct Member {
  uint32_t key;
  int32_t id;
  uint64_t mass;
};

struct Selected {
  bool found = false;
  Boundary at{sampling::kNoKey, sampling::kNoId};  // the token where the target was reached
  uint64_t mass_through = 0;                     // cumulative mass up to and including it
};

// Reusable buffers for one call (sized for the vocabulary once).
struct Scratch {
  std::vector<Member> kept, prefix, select, next;
  std::vector<uint32_t> seen;  // distinct-id bitmap for the penalties (cleared after each row)
  std::vector<float> weight;   // a row's weights
};

// The first member, best first (lower key, then lower id), at which the
// cumulative count (by_mass false) or mass reaches `target` (>= 1). The
// kernel's radix select: per 8-bit digit of the key, most significant first,
// a histogram of the members matching the digits chosen so far; the digit
// where the cumulative value reaches the target is chosen. The members left
// then share one key (and one mass), in id order.
Selected Select(const std::vector<Member>& members, bool by_mass, uint64_t target, Scratch* s) {
  s->select.assign(members.begin(), members.end());
  uint64_t remaining = target, before_mass = 0;
  for (int shift = 24; shift >= 0; shift -= 8) {
    std::array<uint64_t, 256> count{}, mass{};
    for (const Member& m : s->select) {
      const uint32_t d = (m.key >> shift) & 0xFFu;
      ++count[d];
      mass[d] += m.mass;
    }
    uint64_t cum = 0, cum_mass = 0;
    int digit = -1;
    for (int d = 0; d < 256; ++d) {
      const uint64_t v = by_mass ? mass[d] : count[d];
      if (v > 0 && cum + v >= remaining) {
        digit = d;
        break;
      }
      cum += v;
      cum_mass += mass[d];
    }
    if (digit < 0) return Selected{};  // the members hold less than the target
    remaining -= cum;
    before_mass += cum_mass;
    s->next.clear();
    for (const Member& m : s->select) {
      if (((m.key >> shift) & 0xFFu) == static_cast<uint32_t>(digit)) s->next.push_back(m);
    }
    s->select.swap(s->next);
  }
  // Equal keys, equal masses: the position in id order follows arithmetically.
  const uint64_t q = s->select[0].mass;
  const uint64_t p = by_mass ? (remaining - 1) / q : remaining - 1;
  const Member& m = s->select[p];
  return Selected{true, Boundary{m.key, m.id}, before_mass + (p + 1) * q};
}

// Keeps the members ranked no lower than b (a best-first prefix).
void CutTo(const std::vector<Member>& from, const Boundary& b, std::vector<Member>* to) {
  to->clear();
  for (const Member& m : from) {
    if (sampling::InPrefix(m.key, m.id, b)) to->push_back(m);
  }
}

// Masks, banned ids, logit_bias and penalties into w[0, n).
void Process(const float* raw, int64_t n, const SamplingRowDesc& d, const SamplingTable& t, float* w,
             Scratch* s) {
  const uint32_t* allowed = d.allowed_begin >= 0 ? t.allowed + d.allowed_begin : nullptr;
  for (int64_t i = 0; i < n; ++i) {
    w[i] = allowed != nullptr && !((allowed[i / 32] >> (i % 32)) & 1u) ? sampling::NegInf() : raw[i];
  }
  for (int32_t j = 0; j < d.banned_count; ++j) {
    const int32_t id = t.banned[d.banned_begin + j];
    if (id >= 0 && id < n) w[id] = sampling::NegInf();
  }
  // In list order, so duplicate ids add their biases in request order (the
  // kernel adds each id's biases in that order too).
  for (int32_t j = 0; j < d.bias_count; ++j) {
    const int32_t id = t.bias_ids[d.bias_begin + j];
    if (id >= 0 && id < n) w[id] = sampling::FAdd(w[id], t.bias_values[d.bias_begin + j]);
  }
  const bool repetition = d.repetition_penalty != 1.0f;
  const bool counted = d.frequency_penalty != 0.0f || d.presence_penalty != 0.0f;
  if (!repetition && !counted) return;
  // Distinct ids of prompt ∪ output (repetition) or of the output: the
  // first occurrence owns its id and applies all of its penalties.
  const int32_t prompt = repetition ? d.prompt_count : 0;
  const int32_t* out_ids = t.history + d.output_begin;
  const int64_t words = static_cast<int64_t>(s->seen.size());
  for (int32_t j = 0; j < prompt + d.output_count; ++j) {
    const int32_t id = j < prompt ? t.history[d.prompt_begin + j] : out_ids[j - prompt];
    if (id < 0 || id / 32 >= words) continue;  // the packer rejects these
    const uint32_t bit = 1u << (id % 32);
    if (s->seen[id / 32] & bit) continue;
    s->seen[id / 32] |= bit;
    if (id >= n) continue;
    float l = w[id];
    if (repetition) {
      l = l > 0.0f ? sampling::FDiv(l, d.repetition_penalty) : sampling::FMul(l, d.repetition_penalty);
    }
    if (counted) {
      int32_t count = 0;
      for (int32_t k = 0; k < d.output_count; ++k) count += out_ids[k] == id;
      if (count > 0) {  // two steps, as vLLM: frequency * count, then presence
        l = sampling::FSub(l, sampling::FMul(d.frequency_penalty, static_cast<float>(count)));
        l = sampling::FSub(l, d.presence_penalty);
      }
    }
    w[id] = l;
  }
  for (int32_t j = 0; j < prompt + d.output_count; ++j) {
    const int32_t id = j < prompt ? t.history[d.prompt_begin + j] : out_ids[j - prompt];
    if (id >= 0 && id / 32 < words) s->seen[id / 32] = 0;
  }
}

// The lowest id among the largest values; NaN never wins; 0 when every value
// is -inf or NaN.
int32_t Argmax(const float* w, int64_t n) {
  float best = sampling::NegInf();
  int32_t id = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (w[i] > best) {
      best = w[i];
      id = static_cast<int32_t>(i);
    }
  }
  return id;
}

int32_t Draw(const float* w, int64_t n, const SamplingRowDesc& d, Scratch* s) {
  if (d.temperature < sampling::kGreedyTemperature) return Argmax(w, n);
  float max = sampling::NegInf();
  for (int64_t i = 0; i < n; ++i) max = w[i] > max ? w[i] : max;
  // Everything masked, or a logit overflowed to +inf: take the argmax.
  if (!sampling::IsFinite(max)) return Argmax(w, n);
  const RowScale scale{max, sampling::FDiv(1.0f, d.temperature), d.min_p};
  // The weights first, in a loop the compiler vectorises, then the kept ones
  // (the predicate is KeptToken's).
  float* weight = s->weight.data();
  for (int64_t i = 0; i < n; ++i) weight[i] = sampling::SamplingWeight(w[i], scale.max, scale.inv_t);
  s->kept.clear();
  uint64_t total = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (weight[i] <= 0.0f || weight[i] < scale.min_p) continue;
    const Member m{sampling::RankKey(w[i]), static_cast<int32_t>(i), sampling::Mass(weight[i])};
    s->kept.push_back(m);
    total += m.mass;
  }
  const std::vector<Member>* pool = &s->kept;
  if (d.top_k > 0 && static_cast<int64_t>(d.top_k) < static_cast<int64_t>(s->kept.size())) {
    const Selected k = Select(*pool, false, static_cast<uint64_t>(d.top_k), s);
    CutTo(*pool, k.at, &s->prefix);
    pool = &s->prefix;
    total = k.mass_through;
  }
  if (d.top_p < 1.0f) {
    const Selected p = Select(*pool, true, sampling::TopPTarget(total, d.top_p), s);
    if (p.found) {  // else every token is kept
      s->next.clear();
      CutTo(*pool, p.at, &s->next);
      s->prefix.swap(s->next);
      pool = &s->prefix;
      total = p.mass_through;
    }
  }
  const float u = Philox4x32Uniform(d.seed, static_cast<uint64_t>(d.sample_index),
                                    static_cast<uint64_t>(d.output_position));
  return Select(*pool, true, sampling::DrawTarget(total, u), s).at.id;
}

// log-softmax of the raw row: the token's logprob and the top k.
void RawLogprobs(const float* raw, int64_t vocab, int32_t token, int32_t k, int32_t slots, float* token_logprob,
                 int32_t* top_ids, float* top_logprobs, Scratch* s) {
  float max = sampling::NegInf();
  for (int64_t i = 0; i < vocab; ++i) max = raw[i] > max ? raw[i] : max;
  uint64_t mass = 0;
  for (int64_t i = 0; i < vocab; ++i) mass += sampling::Mass(sampling::SamplingWeight(raw[i], max, 1.0f));
  const double lse = sampling::LogSumExp(max, mass);
  *token_logprob = sampling::Logprob(raw[token], lse);
  const int64_t m = std::min<int64_t>(k, vocab);
  if (m > 0) {
    s->kept.clear();
    for (int64_t i = 0; i < vocab; ++i) {
      s->kept.push_back(Member{sampling::RawRankKey(raw[i]), static_cast<int32_t>(i), 0});
    }
    const Selected last = Select(s->kept, false, static_cast<uint64_t>(m), s);
    CutTo(s->kept, last.at, &s->prefix);  // exactly m members
    std::sort(s->prefix.begin(), s->prefix.end(),
              [](const Member& a, const Member& b) { return a.key < b.key || (a.key == b.key && a.id < b.id); });
    for (int64_t i = 0; i < m; ++i) {
      top_ids[i] = s->prefix[i].id;
      top_logprobs[i] = sampling::Logprob(raw[s->prefix[i].id], lse);
    }
  }
  for (int64_t i = std::max<int64_t>(m, 0); i < slots; ++i) {
    top_ids[i] = -1;
    top_logprobs[i] = 0.0f;
  }
}

}  // namespace

KernelStatus SampleRows(const float* logits, int64_t rows, int64_t vocab, int64_t sampleable_vocab,
                        const SamplingTable& table, float* work, SampleOutputs out) {
  KAON_KERNEL_REQUIRE(rows >= 0 && vocab > 0 && vocab <= sampling::kMaxVocab,
                      "sample_rows: bad shape (need 0 < vocab < 2^20)");
  KAON_KERNEL_REQUIRE(sampleable_vocab > 0 && sampleable_vocab <= vocab,
                      "sample_rows: sampleable_vocab not in [1, vocab]");
  KAON_KERNEL_REQUIRE(table.num_rows == rows, "sample_rows: table rows differ from logits rows");
  KAON_KERNEL_REQUIRE(out.top_stride >= 0, "sample_rows: negative top_stride");
  if (rows == 0) return KernelStatus::Ok();
  KAON_KERNEL_REQUIRE(logits && work && table.rows && out.tokens && out.logprobs, "sample_rows: null pointer");
  KAON_KERNEL_REQUIRE(out.top_stride == 0 || (out.top_ids && out.top_logprobs), "sample_rows: null top outputs");
  for (int64_t r = 0; r < rows; ++r) {
    KAON_KERNEL_REQUIRE(table.rows[r].logprobs >= -1 && table.rows[r].logprobs <= out.top_stride,
                        "sample_rows: row " + std::to_string(r) + " asks for more top logprobs than top_stride");
  }
  Scratch s;
  s.seen.assign(static_cast<size_t>((vocab + 31) / 32), 0u);
  s.weight.resize(static_cast<size_t>(vocab));
  for (int64_t r = 0; r < rows; ++r) {
    const SamplingRowDesc& d = table.rows[r];
    const float* raw = logits + r * vocab;
    float* w = work + r * vocab;
    Process(raw, sampleable_vocab, d, table, w, &s);
    const int32_t token = Draw(w, sampleable_vocab, d, &s);
    out.tokens[r] = token;
    int32_t* top_ids = out.top_ids + r * out.top_stride;
    float* top_logprobs = out.top_logprobs + r * out.top_stride;
    if (d.logprobs >= 0) {
      RawLogprobs(raw, vocab, token, d.logprobs, out.top_stride, &out.logprobs[r], top_ids, top_logprobs, &s);
    } else {
      out.logprobs[r] = 0.0f;
      for (int32_t i = 0; i < out.top_stride; ++i) {
        top_ids[i] = -1;
        top_logprobs[i] = 0.0f;
      }
    }
  }
  return KernelStatus::Ok();
}

KernelStatus LogprobRow(const float* logits_row, int64_t vocab, int32_t token, int32_t k, float* token_logprob,
                        int32_t* top_ids, float* top_logprobs) {
  KAON_KERNEL_REQUIRE(vocab > 0 && vocab <= sampling::kMaxVocab, "logprob_row: bad vocab (need 0 < vocab < 2^20)");
  KAON_KERNEL_REQUIRE(token >= 0 && token < vocab, "logprob_row: token outside the vocabulary");
  KAON_KERNEL_REQUIRE(k >= 0, "logprob_row: negative k");
  KAON_KERNEL_REQUIRE(logits_row && token_logprob && (k == 0 || (top_ids && top_logprobs)),
                      "logprob_row: null pointer");
  Scratch s;
  RawLogprobs(logits_row, vocab, token, k, k, token_logprob, top_ids, top_logprobs, &s);
  return KernelStatus::Ok();
}

}  // namespace kaon::kernels::cpu
