// The arithmetic of the device sampler (kernels/cuda/sample_rows) and of its
// CPU twin (kernels/cpu/sample_rows), one source for both: every operation a
// decision depends on is spelled here so that the host and the device round
// it identically. Float and double operations go through the *_rn helpers,
// which nvcc never contracts into fused multiply-adds (the host file builds
// with -ffp-contract=off); masses are fixed-point integers, so a sum is the
// same in any order, whether a tree, atomics or a serial loop adds it.
#pragma once

#include <cstdint>
#include <cstring>

#include "kernels/common/host_device.h"

namespace kaon::kernels::sampling {

// Temperatures below this are greedy: server/backend/sampling.h's
// kGreedyTemperature (the packer static_asserts that they agree).
inline constexpr float kGreedyTemperature = 1e-5f;
// Masses are weight * 2^44 truncated. A weight is at most 1, so a row of
// fewer than 2^20 tokens sums without overflowing 64 bits.
inline constexpr int kMassShift = 44;
inline constexpr int64_t kMaxVocab = (int64_t{1} << 20) - 1;
// Rank keys: smaller is better. A kept (finite) logit never maps to this.
inline constexpr uint32_t kNoKey = 0xFFFFFFFFu;
inline constexpr int32_t kNoId = 0x7FFFFFFF;

KAON_HD inline float FAdd(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}
KAON_HD inline float FSub(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fsub_rn(a, b);
#else
  return a - b;
#endif
}
KAON_HD inline float FMul(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
KAON_HD inline float FDiv(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fdiv_rn(a, b);
#else
  return a / b;
#endif
}
KAON_HD inline double DAdd(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dadd_rn(a, b);
#else
  return a + b;
#endif
}
KAON_HD inline double DSub(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dsub_rn(a, b);
#else
  return a - b;
#endif
}
KAON_HD inline double DMul(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}
KAON_HD inline double DDiv(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __ddiv_rn(a, b);
#else
  return a / b;
#endif
}

KAON_HD inline uint32_t FloatBits(float f) {
#if defined(__CUDA_ARCH__)
  return static_cast<uint32_t>(__float_as_uint(f));
#else
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  return u;
#endif
}
KAON_HD inline float BitsFloat(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
#endif
}
KAON_HD inline uint64_t DoubleBits(double d) {
#if defined(__CUDA_ARCH__)
  return static_cast<uint64_t>(__double_as_longlong(d));
#else
  uint64_t u;
  std::memcpy(&u, &d, sizeof(u));
  return u;
#endif
}
KAON_HD inline double BitsDouble(uint64_t u) {
#if defined(__CUDA_ARCH__)
  return __longlong_as_double(static_cast<long long>(u));
#else
  double d;
  std::memcpy(&d, &u, sizeof(d));
  return d;
#endif
}

KAON_HD inline float NegInf() { return BitsFloat(0xFF800000u); }
KAON_HD inline bool IsFinite(float f) { return (FloatBits(f) & 0x7F800000u) != 0x7F800000u; }

// server/backend/sampling.h's SamplingWeight, operation for operation (a test
// checks that they agree bit for bit): exp((logit - max) * inv_temperature)
// by Cephes' expf polynomial, 0 below -87 or for NaN.
KAON_HD inline float SamplingWeight(float logit, float max, float inv_temperature) {
  const float x = FMul(FSub(logit, max), inv_temperature);
  if (!(x >= -87.0f)) return 0.0f;
  float fx = FMul(x, 1.44269504088896341f);
  fx = FSub(FAdd(fx, 12582912.0f), 12582912.0f);  // round to nearest: 1.5 * 2^23
  float r = FSub(x, FMul(fx, 0.693359375f));
  r = FSub(r, FMul(fx, -2.12194440e-4f));
  float p = 1.9875691500e-4f;
  p = FAdd(FMul(p, r), 1.3981999507e-3f);
  p = FAdd(FMul(p, r), 8.3334519073e-3f);
  p = FAdd(FMul(p, r), 4.1665795894e-2f);
  p = FAdd(FMul(p, r), 1.6666665459e-1f);
  p = FAdd(FMul(p, r), 5.0000001201e-1f);
  p = FAdd(FAdd(FMul(p, FMul(r, r)), r), 1.0f);
  const int32_t e = (static_cast<int32_t>(fx) + 127) << 23;
  return FMul(p, BitsFloat(static_cast<uint32_t>(e)));
}

// A weight in [0, 1] as fixed point: the scaling by 2^44 is exact and the
// conversion truncates on both sides.
KAON_HD inline uint64_t Mass(float w) { return static_cast<uint64_t>(FMul(w, 17592186044416.0f)); }

// Best first is "higher logit, then lower id"; the rank key orders logits so
// that a smaller key is better. -0 and +0 compare equal as floats, so they
// share a key (+0's); the caller never asks for a NaN's key.
KAON_HD inline uint32_t RankKey(float logit) {
  uint32_t b = FloatBits(logit);
  if (b == 0x80000000u) b = 0;
  const uint32_t ordered = (b & 0x80000000u) ? ~b : (b | 0x80000000u);  // larger float: larger
  return ~ordered;
}
// For the raw top-k logprobs every id ranks: NaN as -inf (the CPU sampler
// fills missing top entries with NaN and -inf ids alike, lowest id first).
KAON_HD inline uint32_t RawRankKey(float logit) { return RankKey(logit == logit ? logit : NegInf()); }

// The row after masks and penalties, as the cut-offs see it.
struct RowScale {
  float max;    // the largest processed logit (finite)
  float inv_t;  // 1 / temperature, as the CPU sampler computes it
  float min_p;
};

// Whether a processed logit is kept by min_p (and weighs anything), and if so
// its rank key and mass.
KAON_HD inline bool KeptToken(float logit, const RowScale& s, uint32_t* key, uint64_t* mass) {
  const float w = SamplingWeight(logit, s.max, s.inv_t);
  if (w <= 0.0f || w < s.min_p) return false;  // w is never NaN
  *key = RankKey(logit);
  *mass = Mass(w);
  return true;
}

// A best-first prefix of the kept tokens: those ranked no lower than
// (key, id). {kNoKey, kNoId} holds every token.
struct Boundary {
  uint32_t key;
  int32_t id;
};
KAON_HD inline bool InPrefix(uint32_t key, int32_t id, const Boundary& b) {
  return key < b.key || (key == b.key && id <= b.id);
}

// Where a select stops: the count or mass that must be reached (>= 1).
// top_p keeps a token while the mass strictly above it is below
// top_p * total: in integers, cum < ceil(top_p * total), so the last kept
// token is the first whose inclusive cumulative mass reaches that ceiling.
KAON_HD inline uint64_t CeilToU64(double x) {  // x >= 0, < 2^64
  const uint64_t t = static_cast<uint64_t>(x);
  return static_cast<double>(t) < x ? t + 1 : t;
}
KAON_HD inline uint64_t TopPTarget(uint64_t total, float top_p) {
  const uint64_t t = CeilToU64(DMul(static_cast<double>(top_p), static_cast<double>(total)));
  return t < 1 ? 1 : t;
}
// The draw takes the first token whose inclusive cumulative mass exceeds
// u * total: cum > floor(u * total), i.e. cum >= floor(u * total) + 1.
// Clamped to the total, which the best-first walk always reaches.
KAON_HD inline uint64_t DrawTarget(uint64_t total, float u) {
  const uint64_t t = static_cast<uint64_t>(DMul(static_cast<double>(u), static_cast<double>(total))) + 1;
  return t > total ? total : t;
}

// Natural log from + - * / alone, so both sides return the same bits
// (library logs differ in the last ulp): x = m * 2^e with m in
// [sqrt(1/2), sqrt(2)), log m = 2 atanh(s), s = (m - 1) / (m + 1), |s| < 0.172;
// eleven terms of the series leave an error under 1e-17.
KAON_HD inline double DeterministicLog(double x) {
  if (!(x > 0.0)) return x == 0.0 ? -BitsDouble(0x7FF0000000000000ull) : BitsDouble(0x7FF8000000000000ull);
  uint64_t bits = DoubleBits(x);
  int e = static_cast<int>((bits >> 52) & 0x7FF);
  if (e == 0x7FF) return x;  // +inf
  if (e == 0) {  // subnormal: scale by 2^54 first
    bits = DoubleBits(DMul(x, 18014398509481984.0));
    e = static_cast<int>((bits >> 52) & 0x7FF) - 54;
  }
  double m = BitsDouble((bits & 0x000FFFFFFFFFFFFFull) | 0x3FF0000000000000ull);
  e -= 1023;
  if (m > 1.4142135623730951) {
    m = DMul(m, 0.5);
    ++e;
  }
  const double s = DDiv(DSub(m, 1.0), DAdd(m, 1.0));
  const double s2 = DMul(s, s);
  double p = 0.047619047619047616;  // 1/21
  p = DAdd(DMul(p, s2), 0.05263157894736842);
  p = DAdd(DMul(p, s2), 0.058823529411764705);
  p = DAdd(DMul(p, s2), 0.06666666666666667);
  p = DAdd(DMul(p, s2), 0.07692307692307693);
  p = DAdd(DMul(p, s2), 0.09090909090909091);
  p = DAdd(DMul(p, s2), 0.1111111111111111);
  p = DAdd(DMul(p, s2), 0.14285714285714285);
  p = DAdd(DMul(p, s2), 0.2);
  p = DAdd(DMul(p, s2), 0.3333333333333333);
  p = DAdd(DMul(p, s2), 1.0);
  return DAdd(DMul(static_cast<double>(e), 0.6931471805599453), DMul(DMul(2.0, s), p));
}

// log-sum-exp of a raw row from its max and fixed-point mass (weights at
// temperature 1): max + log(mass * 2^-44).
KAON_HD inline double LogSumExp(float max, uint64_t mass) {
  return DAdd(static_cast<double>(max), DeterministicLog(DMul(static_cast<double>(mass), 5.684341886080802e-14)));
}
KAON_HD inline float Logprob(float raw, double lse) { return static_cast<float>(DSub(static_cast<double>(raw), lse)); }

}  // namespace kaon::kernels::sampling
