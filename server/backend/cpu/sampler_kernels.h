// The CPU sampler's row kernels: vectorised passes over one logits row
// (argmax, max, candidate collection, the softmax-mass pass, the buckets of
// a flat row), each built twice, for SSE2 and AVX2, with identical rounding,
// so a row's decisions never depend on the host. Internal to the CPU sampler:
// sampler.cc composes them into the per-row pipeline.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>

namespace kaon::sampler_kernels {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr int64_t kBlock = 32;    // one word of the allowed mask
constexpr int64_t kChunk = 1024;  // float partial sums go to double this often

struct Cand {
  float key;  // logit after masks and penalties
  int32_t id;
  float w;    // SamplingWeight(key, max, 1 / T)
};

// Best first: higher logit, then lower id, so results never depend on sort
// stability or backend.
struct Better {
  bool operator()(const Cand& a, const Cand& b) const {
    return a.key > b.key || (a.key == b.key && a.id < b.id);
  }
};

// Gathers ids whose value is strictly above `thr`. Once `cap` are held it
// keeps the best `keep` and raises `thr` to the worst of them: a later id with
// an equal value loses the tie on id, so strict > stays exact. With keep 0
// it gives up instead (`overflow`): the row is flat, and the caller buckets it.
struct Collector {
  Cand* buf;
  int64_t keep;
  int64_t cap;
  float thr;
  int64_t count = 0;
  bool overflow = false;

  // At cap: compacts, or gives up. Returns the threshold to go on with.
  float Full() {
    if (keep == 0) {
      overflow = true;
      thr = std::numeric_limits<float>::infinity();
    } else {
      std::nth_element(buf, buf + keep - 1, buf + count, Better{});
      count = keep;
      thr = buf[keep - 1].key;
    }
    return thr;
  }
};

// The candidate cut-off of the mass pass as a function of the mass seen so far.
struct MassCutoff {
  float max;
  float temperature;
  double factor;  // (1 - p) / n, times the test scale
};

// The logit at or below which exp((l - max) / T) <= c: 1e-3 below the exact
// level in log space, far more than the float rounding of (l - max) / T and
// of expf (< 2e-5), so no token above c is ever cut.
float Level(float max, float temperature, double c);

// Per-thread room for one chunk's packed lanes (kChunk + 8 each).
struct Hot {
  float* keys;
  int32_t* ids;
};

// The buckets of a flat row: kept tokens by logit, linear over [lo, max]
// (those below lo share the last bucket), best first. Bucket b holds logits
// no higher than bucket b - 1's: the index is a monotone function of the
// logit, computed by the same vector code in every pass.
struct FlatRange {
  float max;
  float inv_t;
  float min_p;
  float scale;  // buckets per logit unit
  float last;   // buckets - 1
};

// Whether this CPU runs the AVX2 builds (checked once).
bool HasAvx2();

// Each kernel: `avx2` picks the build; `allowed` (the structured-output
// bitmask) may be null. Disallowed ids and ids past n read as -inf.

// The lowest id among the maximal logits (0 when all are masked).
int32_t Argmax(bool avx2, const float* row, int64_t n, const uint32_t* allowed);
float Max(bool avx2, const float* row, int64_t n, const uint32_t* allowed);
// The max, and every id above c->thr into c, in one pass.
float MaxCollect(bool avx2, const float* row, int64_t n, const uint32_t* allowed, Collector* c);
// The weights over the row: ids above a cut-off that rises with the mass seen
// go into c (c->thr ends as the final cut-off); returns the mass of the
// others. Sets c->overflow (and returns early) past c->cap candidates.
double MassCollect(bool avx2, const float* row, int64_t n, const uint32_t* allowed, const MassCutoff* cut,
                   Collector* c, const Hot* hot);
// The lowest finite logit (+inf if none).
float MinFinite(bool avx2, const float* row, int64_t n, const uint32_t* allowed);
// mass[b] += weight of every kept token in bucket b (in double).
void Histogram(bool avx2, const float* row, int64_t n, const uint32_t* allowed, const FlatRange* f, double* mass);
// The kept tokens of bucket `bucket` into out, in id order; returns how many.
int64_t Extract(bool avx2, const float* row, int64_t n, const uint32_t* allowed, const FlatRange* f,
                int32_t bucket, Cand* out);

}  // namespace kaon::sampler_kernels
