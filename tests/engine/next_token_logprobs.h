// The whole next-token distribution, read through the engine's public API.
// A step reports at most SamplingParams::kMaxLogprobs alternatives, so the
// rest of the vocabulary is probed: one greedy request per id with that id
// forced by a logit_bias. The sampler reports the sampled token's raw logprob
// (log_softmax of the model's logits, taken before any bias), so the request
// for id t yields log p(t | context). No gtest here: the GPU model check,
// a plain program, uses it too.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "server/engine/engine.h"

namespace kaon::testing {

// Large enough to win the argmax on the test models (their logits span well
// under 100), small enough for any sane logit_bias range check. A token the
// bias fails to force is an error, never a silent wrong value.
inline constexpr float kForcingBias = 100.0f;

// log p(t | context) for every id t the engine may sample (ids below both
// the model's and the tokenizer's vocabulary sizes).
inline absl::StatusOr<std::vector<double>> NextTokenLogprobs(Engine& engine, const std::vector<int32_t>& context) {
  const int64_t n = std::min<int64_t>(engine.info().config.vocab_size, engine.tokenizer().VocabSize());
  std::vector<std::unique_ptr<RequestHandle>> handles;
  handles.reserve(static_cast<size_t>(n));
  for (int32_t t = 0; t < n; ++t) {
    GenerationRequest r;
    r.prompt_ids = context;
    r.params.temperature = 0.0f;
    r.params.max_tokens = 1;
    r.params.ignore_eos = true;
    r.params.logprobs = 0;
    r.params.logit_bias = {{t, kForcingBias}};
    absl::StatusOr<std::unique_ptr<RequestHandle>> h = engine.Submit(std::move(r));
    if (!h.ok()) return h.status();
    handles.push_back(std::move(*h));
  }
  std::vector<double> out(static_cast<size_t>(n));
  for (int32_t t = 0; t < n; ++t) {
    std::optional<SampleResult> sampled;
    std::string error;
    while (std::optional<RequestOutput> ev = handles[t]->Next()) {
      if (!ev->error.empty()) error = ev->error;
      if (!ev->logprobs.empty()) sampled = ev->logprobs.front();
    }
    if (!error.empty()) return absl::InternalError(absl::StrCat("probe for token ", t, ": ", error));
    if (!sampled) return absl::InternalError(absl::StrCat("probe for token ", t, ": no logprobs returned"));
    if (sampled->token != t) {
      return absl::InternalError(
          absl::StrCat("probe for token ", t, ": a logit_bias of ", kForcingBias, " sampled ", sampled->token));
    }
    out[t] = sampled->logprob;
  }
  return out;
}

// log_softmax in double, for references given as raw logits.
inline std::vector<double> LogSoftmax(const std::vector<double>& logits) {
  double mx = logits.empty() ? 0.0 : logits[0];
  for (double v : logits) mx = std::max(mx, v);
  double z = 0;
  for (double v : logits) z += std::exp(v - mx);
  const double lse = mx + std::log(z);
  std::vector<double> out(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) out[i] = logits[i] - lse;
  return out;
}

}  // namespace kaon::testing
