// Shared by the device sampler's tests (the CPU twin against CpuSampler, the
// CUDA kernel against the twin): the parameter combinations, fast random
// logits, and rows packed as the backend packs them.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "server/backend/sampling.h"
#include "server/backend/sampling_table.h"

namespace kaon::sample_rows_testing {

// xorshift64*: the tests draw ~10^9 numbers, too many for mt19937_64.
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
  uint64_t operator()() {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 0x2545F4914F6CDD1Dull;
  }
  double Unit() { return static_cast<double>((*this)() >> 11) * (1.0 / 9007199254740992.0); }
  int32_t Below(int64_t n) { return static_cast<int32_t>((*this)() % static_cast<uint64_t>(n)); }
};

// Rows of normal logits at scales from flat (0.3) to peaked (6.4), some
// quantised (ties), some with -inf holes or a few dominant tokens. Built from
// a pool of standard normals, rotated and scaled per row: generating fresh
// normals would dominate the tests' time.
class LogitSource {
 public:
  explicit LogitSource(int32_t vocab, uint64_t seed = 7) : vocab_(vocab), pool_(static_cast<size_t>(vocab) * 8) {
    std::mt19937_64 g(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (float& x : pool_) x = normal(g);
  }
  void Fill(Rng& rng, float* out) const {
    static constexpr float kSigma[] = {0.3f, 1.0f, 2.5f, 6.4f};
    const float sigma = kSigma[rng() % 4];
    const size_t offset = rng() % pool_.size();
    const bool ties = rng.Unit() < 0.3, holes = rng.Unit() < 0.3, spikes = rng.Unit() < 0.2;
    for (int32_t i = 0; i < vocab_; ++i) {
      float l = sigma * pool_[(offset + static_cast<size_t>(i) * 7) % pool_.size()];
      if (ties) l = std::round(l * 4.0f) / 4.0f;
      out[i] = l;
    }
    if (holes) {
      for (int32_t i = vocab_ / 10; i > 0; --i) out[rng.Below(vocab_)] = -INFINITY;
    }
    if (spikes) {
      for (int32_t i = std::max(1, vocab_ / 100); i > 0; --i) out[rng.Below(vocab_)] += 4.0f * sigma;
    }
  }
  int32_t vocab() const { return vocab_; }

 private:
  int32_t vocab_;
  std::vector<float> pool_;
};

// A row's parameters and the storage its spans point into.
struct RowData {
  SamplingRow row;
  std::vector<std::pair<int32_t, float>> bias;
  std::vector<int32_t> banned, prompt, output;
  std::vector<uint32_t> allowed;

  void Bind() {
    row.logit_bias = bias;
    row.banned_ids = banned;
    row.prompt_ids = prompt;
    row.output_ids = output;
    row.allowed = allowed.empty() ? nullptr : allowed.data();
  }
};

// Fills d (seed and counter already drawn) for a vocabulary of `vocab`, n
// sampleable.
using Maker = void (*)(Rng& rng, RowData& d, int32_t vocab, int32_t n);

inline float Between(Rng& rng, double lo, double hi) { return static_cast<float>(lo + (hi - lo) * rng.Unit()); }

inline void History(Rng& rng, RowData& d, int32_t vocab) {
  const int32_t hot = 1 + rng.Below(std::min(vocab, 40));  // repeats are common
  for (int i = rng.Below(60); i > 0; --i) d.prompt.push_back(rng.Unit() < 0.5 ? rng.Below(hot) : rng.Below(vocab));
  for (int i = rng.Below(60); i > 0; --i) d.output.push_back(rng.Unit() < 0.5 ? rng.Below(hot) : rng.Below(vocab));
}

struct Combo {
  const char* name;
  Maker make;
};

inline const std::vector<Combo>& Combos() {
  static const std::vector<Combo> combos = {
      {"greedy", [](Rng& rng, RowData& d, int32_t, int32_t) { d.row.temperature = rng.Unit() < 0.5 ? 0.0f : 1e-6f; }},
      {"t1", [](Rng&, RowData& d, int32_t, int32_t) { d.row.temperature = 1.0f; }},
      {"t06_top_p09",
       [](Rng&, RowData& d, int32_t, int32_t) {
         d.row.temperature = 0.6f;
         d.row.top_p = 0.9f;
       }},
      {"top_k1", [](Rng&, RowData& d, int32_t, int32_t) { d.row.top_k = 1; }},
      {"top_k50", [](Rng&, RowData& d, int32_t, int32_t) { d.row.top_k = 50; }},
      {"top_k_vocab", [](Rng&, RowData& d, int32_t vocab, int32_t) { d.row.top_k = vocab; }},
      {"min_p005", [](Rng&, RowData& d, int32_t, int32_t) { d.row.min_p = 0.05f; }},
      {"min_p02", [](Rng&, RowData& d, int32_t, int32_t) { d.row.min_p = 0.2f; }},
      {"top_k_top_p_min_p",
       [](Rng& rng, RowData& d, int32_t, int32_t n) {
         d.row.temperature = Between(rng, 0.3, 1.5);
         d.row.top_k = 1 + rng.Below(rng.Unit() < 0.8 ? 100 : n);
         d.row.top_p = rng.Unit() < 0.1 ? 0.99999994f : Between(rng, 0.05, 0.99);
         d.row.min_p = rng.Unit() < 0.2 ? 1e-6f : Between(rng, 0.0, 0.3);
       }},
      {"penalties",
       [](Rng& rng, RowData& d, int32_t vocab, int32_t) {
         d.row.temperature = Between(rng, 0.2, 1.5);
         const int which = rng.Below(4);  // all three, or each alone
         if (which == 0 || which == 1) d.row.repetition_penalty = Between(rng, 0.5, 2.0);
         if (which == 0 || which == 2) d.row.frequency_penalty = Between(rng, -1.0, 1.0);
         if (which == 0 || which == 3) d.row.presence_penalty = Between(rng, -1.0, 1.0);
         History(rng, d, vocab);
       }},
      {"greedy_penalties",
       [](Rng& rng, RowData& d, int32_t vocab, int32_t) {
         d.row.temperature = 0.0f;
         d.row.repetition_penalty = Between(rng, 0.5, 2.0);
         d.row.frequency_penalty = Between(rng, -1.0, 1.0);
         d.row.presence_penalty = Between(rng, -1.0, 1.0);
         History(rng, d, vocab);
       }},
      {"logit_bias",
       [](Rng& rng, RowData& d, int32_t vocab, int32_t) {
         d.row.temperature = Between(rng, 0.2, 1.5);
         for (int i = 1 + rng.Below(6); i > 0; --i) {
           const float v = rng.Unit() < 0.2 ? (rng.Unit() < 0.5 ? 100.0f : -100.0f) : Between(rng, -10.0, 10.0);
           const int32_t id = rng.Unit() < 0.05 ? vocab + rng.Below(3) : rng.Below(vocab);
           d.bias.emplace_back(id, v);
           if (rng.Unit() < 0.3) d.bias.emplace_back(id, Between(rng, -3.0, 3.0));  // a duplicate
         }
       }},
      {"banned",
       [](Rng& rng, RowData& d, int32_t vocab, int32_t) {
         d.row.temperature = rng.Unit() < 0.2 ? 0.0f : Between(rng, 0.2, 1.5);
         for (int i = 1 + rng.Below(8); i > 0; --i) d.banned.push_back(rng.Below(vocab + 4) - 2);  // some out of range
       }},
      {"allowed",
       [](Rng& rng, RowData& d, int32_t vocab, int32_t) {
         d.row.temperature = rng.Unit() < 0.2 ? 0.0f : Between(rng, 0.2, 1.5);
         if (rng.Unit() < 0.3) d.row.top_p = Between(rng, 0.1, 0.99);
         d.allowed.assign((vocab + 31) / 32, 0u);
         const double u = rng.Unit();
         if (u < 0.2) {  // exactly one token allowed
           const int32_t id = rng.Below(vocab);
           d.allowed[id / 32] |= 1u << (id % 32);
         } else if (u < 0.22) {
           // nothing allowed: the argmax of an all -inf row (id 0)
         } else {
           const double density = std::vector<double>{0.02, 0.5, 0.95}[rng() % 3];
           for (int32_t i = 0; i < vocab; ++i) {
             if (rng.Unit() < density) d.allowed[i / 32] |= 1u << (i % 32);
           }
         }
       }},
      {"logprobs",
       [](Rng& rng, RowData& d, int32_t, int32_t) {
         static constexpr int32_t kK[] = {0, 5, 20};
         d.row.logprobs = kK[rng() % 3];
         d.row.temperature = rng.Unit() < 0.2 ? 0.0f : Between(rng, 0.2, 1.5);
       }},
      {"everything",
       [](Rng& rng, RowData& d, int32_t vocab, int32_t n) {
         d.row.temperature = rng.Unit() < 0.1 ? 0.0f : Between(rng, 0.2, 1.5);
         if (rng.Unit() < 0.5) d.row.top_k = 1 + rng.Below(rng.Unit() < 0.8 ? 100 : n);
         if (rng.Unit() < 0.5) d.row.top_p = Between(rng, 0.05, 0.99);
         if (rng.Unit() < 0.5) d.row.min_p = Between(rng, 0.0, 0.3);
         if (rng.Unit() < 0.5) {
           d.row.repetition_penalty = Between(rng, 0.5, 2.0);
           d.row.frequency_penalty = Between(rng, -1.0, 1.0);
           d.row.presence_penalty = Between(rng, -1.0, 1.0);
           History(rng, d, vocab);
         }
         for (int i = rng.Below(3); i > 0; --i) d.bias.emplace_back(rng.Below(vocab), Between(rng, -10.0, 10.0));
         for (int i = rng.Below(3); i > 0; --i) d.banned.push_back(rng.Below(vocab));
         if (rng.Unit() < 0.3) {
           d.allowed.assign((vocab + 31) / 32, 0u);
           for (int32_t i = 0; i < vocab; ++i) {
             if (rng.Unit() < 0.5) d.allowed[i / 32] |= 1u << (i % 32);
           }
         }
         if (rng.Unit() < 0.3) d.row.logprobs = rng.Below(21);
       }},
  };
  return combos;
}

// A batch of rows with its logits and packed table.
struct Batch {
  int32_t vocab = 0, n = 0;
  std::vector<float> logits;  // [rows, vocab], raw
  std::vector<RowData> data;
  std::vector<SamplingRow> rows;
  PackedSamplingTable packed;
};

inline void MakeBatch(Rng& rng, const LogitSource& source, int32_t n, Maker make, int rows, Batch* b) {
  b->vocab = source.vocab();
  b->n = n;
  b->logits.resize(static_cast<size_t>(rows) * b->vocab);
  b->data.assign(rows, RowData{});
  b->rows.clear();
  for (int i = 0; i < rows; ++i) {
    source.Fill(rng, b->logits.data() + static_cast<size_t>(i) * b->vocab);
    RowData& d = b->data[i];
    d.row.seed = rng();
    d.row.sample_index = rng.Below(4);
    d.row.output_position = rng.Below(1000);
    make(rng, d, b->vocab, n);
    d.Bind();
    b->rows.push_back(d.row);
  }
}

}  // namespace kaon::sample_rows_testing
