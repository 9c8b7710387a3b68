#include "kernels/cpu/sampling.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

namespace kaon::kernels::cpu {

void Philox4x32::Generate(uint64_t key, uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3,
                          uint32_t out[4]) {
  constexpr uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
  constexpr uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;
  uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
  uint32_t x0 = c0, x1 = c1, x2 = c2, x3 = c3;
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = static_cast<uint64_t>(kMul0) * x0;
    const uint64_t p1 = static_cast<uint64_t>(kMul1) * x2;
    const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
    const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
    x0 = hi1 ^ x1 ^ k0;
    x1 = lo1;
    x2 = hi0 ^ x3 ^ k1;
    x3 = lo0;
    k0 += kWeyl0;
    k1 += kWeyl1;
  }
  out[0] = x0;
  out[1] = x1;
  out[2] = x2;
  out[3] = x3;
}

float Philox4x32::Uniform(uint64_t key, uint64_t counter_hi, uint64_t counter_lo) {
  uint32_t out[4];
  Generate(key, static_cast<uint32_t>(counter_lo), static_cast<uint32_t>(counter_lo >> 32),
           static_cast<uint32_t>(counter_hi), static_cast<uint32_t>(counter_hi >> 32), out);
  return static_cast<float>(out[0] >> 8) * (1.0f / 16777216.0f);
}

int32_t Argmax(const float* logits, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i) {
    if (logits[i] > logits[best]) best = i;
  }
  return static_cast<int32_t>(best);
}

KernelStatus SampleToken(const float* logits, int64_t n, const SamplingParams& params, float u,
                         float* scratch, int32_t* out_token) {
  KAON_KERNEL_REQUIRE(logits && scratch && out_token && n > 0, "sample: bad arguments");
  KAON_KERNEL_REQUIRE(params.temperature >= 0.0f && params.top_p > 0.0f && params.top_p <= 1.0f &&
                          params.min_p >= 0.0f && params.min_p <= 1.0f,
                      "sample: sampling parameters out of range");
  if (params.temperature == 0.0f) {
    *out_token = Argmax(logits, n);
    return KernelStatus::Ok();
  }
  // Sort candidate ids by logit (descending, lower id first on ties), then
  // apply the filters on the probability mass in that order.
  float* probs = scratch;
  int32_t* order = reinterpret_cast<int32_t*>(scratch + n);
  std::iota(order, order + n, 0);
  int64_t keep = n;
  if (params.top_k > 0 && params.top_k < n) keep = params.top_k;
  auto by_logit = [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  };
  std::partial_sort(order, order + keep, order + n, by_logit);

  const float max_logit = logits[order[0]];
  const float inv_t = 1.0f / params.temperature;
  double total = 0.0;
  for (int64_t i = 0; i < keep; ++i) {
    probs[i] = std::exp((logits[order[i]] - max_logit) * inv_t);
    total += probs[i];
  }
  // min_p: drop tokens whose probability is below min_p times the top one's.
  if (params.min_p > 0.0f) {
    const double threshold = params.min_p * probs[0];
    int64_t k = 1;
    while (k < keep && probs[k] >= threshold) ++k;
    for (int64_t i = k; i < keep; ++i) total -= probs[i];
    keep = k;
  }
  // top_p: the smallest prefix whose mass reaches top_p.
  if (params.top_p < 1.0f) {
    double cum = 0.0;
    int64_t k = 0;
    while (k < keep) {
      cum += probs[k++];
      if (cum >= params.top_p * total) break;
    }
    keep = k;
    total = cum;
  }
  const double target = static_cast<double>(u) * total;
  double cum = 0.0;
  for (int64_t i = 0; i < keep; ++i) {
    cum += probs[i];
    if (target < cum) {
      *out_token = order[i];
      return KernelStatus::Ok();
    }
  }
  *out_token = order[keep - 1];
  return KernelStatus::Ok();
}

}  // namespace kaon::kernels::cpu
