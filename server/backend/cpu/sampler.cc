#include "server/backend/cpu/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/cpu/sampling.h"
#include "kernels/cpu/thread_pool.h"
#include "server/common/status.h"

namespace kaon {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// ---------------------------------------------------------------------------
// Row kernels. GCC vector extensions rather than intrinsics: the same source
// compiles to SSE2 (the baseline, two registers per vector) and, through the
// target("avx2") clones below, to AVX2. No FMA anywhere, so both builds round
// identically and a row's decisions never depend on the host.

typedef float V8f __attribute__((vector_size(32)));
typedef int32_t V8i __attribute__((vector_size(32)));
// For unaligned loads straight into a register (a memcpy into a vector array
// is split into 16-byte stores that the 32-byte loads then stall on).
typedef float V8fLoad __attribute__((vector_size(32), aligned(4), may_alias));
#define KAON_ALWAYS_INLINE inline __attribute__((always_inline))

constexpr int64_t kBlock = 32;    // one word of the allowed mask
constexpr int64_t kChunk = 1024;  // float partial sums go to double this often

struct Cand {
  float key;  // logit after masks and penalties
  int32_t id;
  float w;    // exp((key - max) / T), exactly as the reference computes it
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

// A macro: returning a 32-byte vector by value changes the SSE2 ABI (-Wpsabi).
#define KAON_SPLAT(x) (V8f{} + (x))

// Calls body(v, i) for each block row[i, i + 32) of [begin, end) (begin a
// multiple of 32) with disallowed ids read as -inf; a partial last block is
// padded with -inf, outside the hot loop.
template <bool kMasked, class Body>
KAON_ALWAYS_INLINE void ForBlocks(const float* row, int64_t begin, int64_t end, const uint32_t* allowed,
                                  Body&& body) {
  auto mask = [&](V8f (&v)[4], int64_t i) __attribute__((always_inline)) {
    if constexpr (kMasked) {
      const uint32_t word = allowed[i / kBlock];
      const V8i bit = {1, 2, 4, 8, 16, 32, 64, 128};
      for (int q = 0; q < 4; ++q) {
        const V8i on = ((V8i{} + static_cast<int32_t>((word >> (8 * q)) & 0xFFu)) & bit) != 0;
        v[q] = on ? v[q] : KAON_SPLAT(kNegInf);
      }
    }
  };
  const int64_t full = begin + (end - begin) / kBlock * kBlock;
  for (int64_t i = begin; i < full; i += kBlock) {
    V8f v[4];
    for (int q = 0; q < 4; ++q) v[q] = *reinterpret_cast<const V8fLoad*>(row + i + 8 * q);
    mask(v, i);
    body(v, i);
  }
  if (full < end) {
    float tail[kBlock];
    for (int64_t j = 0; j < kBlock; ++j) tail[j] = full + j < end ? row[full + j] : kNegInf;
    V8f v[4];
    for (int q = 0; q < 4; ++q) v[q] = *reinterpret_cast<const V8fLoad*>(tail + 8 * q);
    mask(v, full);
    body(v, full);
  }
}

// Bit j set: lane j is true. SSE's movmskps on the halves: the AVX forms
// are only declared where AVX is enabled for the whole file.
KAON_ALWAYS_INLINE uint32_t Bits8(const V8i& hit) {
  const V8f h = (V8f)hit;  // a bit cast between vector types
  const uint32_t lo = static_cast<uint32_t>(__builtin_ia32_movmskps(__builtin_shufflevector(h, h, 0, 1, 2, 3)));
  const uint32_t hi = static_cast<uint32_t>(__builtin_ia32_movmskps(__builtin_shufflevector(h, h, 4, 5, 6, 7)));
  return lo | hi << 4;
}

// Bit 8q + j set: lane j of hit[q] is true; 0 tested first, as it mostly is.
KAON_ALWAYS_INLINE uint32_t Bits(const V8i (&hit)[4]) {
  if (__builtin_expect(Bits8(hit[0] | hit[1] | hit[2] | hit[3]) == 0, 1)) return 0;
  return Bits8(hit[0]) | Bits8(hit[1]) << 8 | Bits8(hit[2]) << 16 | Bits8(hit[3]) << 24;
}

// Source lanes of a left-pack, by mask: kPack[m][k] is the k-th set bit of m.
struct PackTable {
  int32_t lanes[256][8];
  constexpr PackTable() : lanes() {
    for (int m = 0; m < 256; ++m) {
      int k = 0;
      for (int j = 0; j < 8; ++j) {
        if (m >> j & 1) lanes[m][k++] = j;
      }
    }
  }
};
constexpr PackTable kPack;

// Appends the lanes of v (ids from `base`) where `up` is set to keys/ids at
// *h, in lane order and without branching on the data: mispredicted exits of
// a per-lane loop cost more than the exponentials saved.
template <bool kAvx2>
KAON_ALWAYS_INLINE void Pack(const V8f& v, const V8i& up, int64_t base, float* keys, int32_t* ids, int64_t* h) {
  if constexpr (kAvx2) {
    const uint32_t m = Bits8(up);
    V8i lanes;
    std::memcpy(&lanes, kPack.lanes[m], sizeof(lanes));
    const V8f packed = __builtin_shuffle(v, lanes);  // vpermps under AVX2
    const V8i packed_ids = lanes + static_cast<int32_t>(base);
    std::memcpy(keys + *h, &packed, sizeof(packed));
    std::memcpy(ids + *h, &packed_ids, sizeof(packed_ids));
    *h += __builtin_popcount(m);
  } else {
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) {
      keys[*h] = v[j];
      ids[*h] = static_cast<int32_t>(base + j);
      *h += up[j] & 1;
    }
  }
}

// The hit lanes of block i; their values are the row's (only allowed, finite
// lanes can be above a threshold), so no vector lane is read back.
KAON_ALWAYS_INLINE void Push(Collector* c, const float* row, uint32_t bits, int64_t i) {
  while (bits != 0) {
    const int j = __builtin_ctz(bits);
    bits &= bits - 1;
    c->buf[c->count++] = Cand{row[i + j], static_cast<int32_t>(i + j), 0.0f};
  }
}

KAON_ALWAYS_INLINE float HMax(const V8f (&m)[4]) {
  const V8f a = m[0] > m[1] ? m[0] : m[1];
  const V8f b = m[2] > m[3] ? m[2] : m[3];
  const V8f c = a > b ? a : b;
  float r = kNegInf;
#pragma GCC unroll 8
  for (int j = 0; j < 8; ++j) r = c[j] > r ? c[j] : r;
  return r;
}

KAON_ALWAYS_INLINE double HSum(const V8f (&s)[4]) {
  double r = 0.0;
#pragma GCC unroll 4
  for (int q = 0; q < 4; ++q) {
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) r += s[q][j];
  }
  return r;
}

// SamplingWeight's exponential (server/backend/sampling.h) on eight lanes: the
// same operations in the same order, so each lane is bit-identical to the
// scalar function (the file builds with -ffp-contract=off).
KAON_ALWAYS_INLINE void FastExp(const V8f& x_in, V8f& out) {
  const V8i under = ~(x_in >= -87.0f);
  const V8f x = under ? V8f{} : x_in;
  V8f fx = x * 1.44269504088896341f;
  fx = (fx + 12582912.0f) - 12582912.0f;  // round to nearest: 1.5 * 2^23
  V8f r = x - fx * 0.693359375f;
  r = r - fx * -2.12194440e-4f;
  V8f p = KAON_SPLAT(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  const V8i e = (__builtin_convertvector(fx, V8i) + 127) << 23;
  V8f scale;
  std::memcpy(&scale, &e, sizeof(scale));
  out = under ? V8f{} : p * scale;
}

// Greedy in one pass: per-lane best value and its first index, then the
// lowest index among lanes holding the maximum. All masked: 0, as Argmax.
template <bool kMasked, bool kAvx2>
KAON_ALWAYS_INLINE int32_t ArgmaxImpl(const float* row, int64_t n, const uint32_t* allowed) {
  const V8i lane = {0, 1, 2, 3, 4, 5, 6, 7};
  V8f best[4];
  V8i at[4];
  for (int q = 0; q < 4; ++q) {
    best[q] = KAON_SPLAT(kNegInf);
    at[q] = V8i{};
  }
  ForBlocks<kMasked>(row, 0, n, allowed, [&](const V8f (&v)[4], int64_t i) __attribute__((always_inline)) {
    for (int q = 0; q < 4; ++q) {
      const V8i gt = v[q] > best[q];
      best[q] = gt ? v[q] : best[q];
      at[q] = gt ? lane + static_cast<int32_t>(i + 8 * q) : at[q];
    }
  });
  const float m = HMax(best);
  if (!(m > kNegInf)) return 0;
  float values[kBlock];
  int32_t ids[kBlock];
  std::memcpy(values, best, sizeof(values));
  std::memcpy(ids, at, sizeof(ids));
  int32_t id = std::numeric_limits<int32_t>::max();
  for (int j = 0; j < kBlock; ++j) {
    if (values[j] == m && ids[j] < id) id = ids[j];
  }
  return id;
}

template <bool kMasked, bool kAvx2>
KAON_ALWAYS_INLINE float MaxImpl(const float* row, int64_t n, const uint32_t* allowed) {
  V8f m[4];
  for (V8f& x : m) x = KAON_SPLAT(kNegInf);
  ForBlocks<kMasked>(row, 0, n, allowed, [&](const V8f (&v)[4], int64_t) __attribute__((always_inline)) {
    for (int q = 0; q < 4; ++q) m[q] = v[q] > m[q] ? v[q] : m[q];  // NaN never wins
  });
  return HMax(m);
}

// The max, and every id above c->thr into c, in one pass.
template <bool kMasked, bool kAvx2>
KAON_ALWAYS_INLINE float MaxCollectImpl(const float* row, int64_t n, const uint32_t* allowed, Collector* c) {
  V8f m[4];
  for (V8f& x : m) x = KAON_SPLAT(kNegInf);
  V8f thr = KAON_SPLAT(c->thr);
  ForBlocks<kMasked>(row, 0, n, allowed, [&](const V8f (&v)[4], int64_t i) __attribute__((always_inline)) {
    V8i hit[4];
    for (int q = 0; q < 4; ++q) {
      m[q] = v[q] > m[q] ? v[q] : m[q];
      hit[q] = v[q] > thr;
    }
    const uint32_t bits = Bits(hit);
    if (__builtin_expect(bits == 0, 1)) return;
    Push(c, row, bits, i);
    if (c->count >= c->cap) thr = KAON_SPLAT(c->Full());
  });
  return HMax(m);
}

// The candidate cut-off of the mass pass as a function of the mass seen so far.
struct MassCutoff {
  float max;
  float temperature;
  double factor;  // (1 - p) / n, times the test scale
};

// The logit at or below which exp((l - max) / T) <= c: 1e-3 below the exact
// level in log space, far more than the float rounding of (l - max) / T and
// of expf (< 2e-5), so no token above c is ever cut.
float Level(float max, float temperature, double c) {
  const double l = static_cast<double>(max) + static_cast<double>(temperature) * (std::log(c) - 1e-3);
  float f = static_cast<float>(l);
  if (static_cast<double>(f) > l) f = std::nextafter(f, kNegInf);
  return f;
}

// Per-thread room for one chunk's packed lanes (kChunk + 8 each).
struct Hot {
  float* keys;
  int32_t* ids;
};

// Weights under this times the mass so far over n are skipped: together they
// are under 2^-24 of the total, the float rounding of the weights themselves.
constexpr double kSkip = 1.0 / 16777216.0;

// exp((l - max) / T) over the row: ids above a cut-off that rises with the
// mass seen go into c (c->thr ends as the final cut-off); returns the mass of
// the others. In a real row only a few percent of the lanes weigh anything,
// so each chunk first packs those into `hot` and exponentiates them densely;
// after a chunk where most lanes were packed, the next works in place.
template <bool kMasked, bool kAvx2>
KAON_ALWAYS_INLINE double MassCollectImpl(const float* row, int64_t n, const uint32_t* allowed,
                                          const MassCutoff* cut, Collector* c, const Hot* hot) {
  const V8f max = KAON_SPLAT(cut->max), inv_t = KAON_SPLAT(1.0f / cut->temperature);
  double seen = 0.0, rest = 0.0;
  c->thr = Level(cut->max, cut->temperature, cut->factor);  // the max alone weighs 1
  float skip = Level(cut->max, cut->temperature, kSkip / static_cast<double>(n));
  float* const keys = hot->keys;  // locals: stores through them cannot move them
  int32_t* const ids = hot->ids;
  bool dense = false;
  for (int64_t start = 0; start < n; start += kChunk) {
    const V8f thr = KAON_SPLAT(c->thr), low = KAON_SPLAT(skip);
    V8f all[4], out[4];
    for (int q = 0; q < 4; ++q) all[q] = out[q] = V8f{};
    const int64_t stop = std::min(n, start + kChunk);
    if (dense) {
      ForBlocks<kMasked>(row, start, stop, allowed, [&](const V8f (&v)[4], int64_t i) __attribute__((always_inline)) {
        V8i hit[4];
        for (int q = 0; q < 4; ++q) {
          V8f w;
          FastExp((v[q] - max) * inv_t, w);
          hit[q] = v[q] > thr;
          all[q] += w;
          out[q] += hit[q] ? V8f{} : w;
        }
        const uint32_t bits = Bits(hit);
        if (__builtin_expect(bits != 0, 0)) Push(c, row, bits, i);
      });
    } else {
      int64_t h = 0;
      ForBlocks<kMasked>(row, start, stop, allowed, [&](const V8f (&v)[4], int64_t i) __attribute__((always_inline)) {
        for (int q = 0; q < 4; ++q) Pack<kAvx2>(v[q], v[q] > low, i + 8 * q, keys, ids, &h);
      });
      for (int64_t k = h; k % 8 != 0; ++k) keys[k] = kNegInf;
      for (int64_t k = 0; k < h; k += 8) {
        const V8f v = *reinterpret_cast<const V8fLoad*>(keys + k);
        V8f w;
        FastExp((v - max) * inv_t, w);
        const V8i hit = v > thr;
        all[0] += w;
        out[0] += hit ? V8f{} : w;
        for (uint32_t bits = Bits8(hit); bits != 0; bits &= bits - 1) {
          const int j = __builtin_ctz(bits);
          c->buf[c->count++] = Cand{keys[k + j], ids[k + j], 0.0f};
        }
      }
      dense = 2 * h > stop - start;
    }
    if (c->count > c->cap) {
      c->overflow = true;
      return 0.0;
    }
    seen += HSum(all);
    rest += HSum(out);
    const double mass = std::max(1.0, seen);
    c->thr = Level(cut->max, cut->temperature, cut->factor * mass);
    skip = Level(cut->max, cut->temperature, kSkip / static_cast<double>(n) * mass);
  }
  return rest;
}

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

// Weights of the eight lanes (0 where not kept) and their bucket indices.
KAON_ALWAYS_INLINE void FlatLanes(const V8f& v, const FlatRange& f, V8f& w, V8i& b) {
  FastExp((v - f.max) * f.inv_t, w);
  const V8i kept = (w > 0.0f) & ~(w < f.min_p);
  w = kept ? w : V8f{};
  V8f d = kept ? (f.max - v) * f.scale : V8f{};
  d = d < f.last ? d : KAON_SPLAT(f.last);
  b = __builtin_convertvector(d, V8i);
}

// The lowest finite logit (+inf if none).
template <bool kMasked, bool kAvx2>
KAON_ALWAYS_INLINE float MinFiniteImpl(const float* row, int64_t n, const uint32_t* allowed) {
  V8f m[4];
  for (V8f& x : m) x = KAON_SPLAT(std::numeric_limits<float>::infinity());
  ForBlocks<kMasked>(row, 0, n, allowed, [&](const V8f (&v)[4], int64_t) __attribute__((always_inline)) {
    for (int q = 0; q < 4; ++q) m[q] = (v[q] > kNegInf) & (v[q] < m[q]) ? v[q] : m[q];
  });
  float r = std::numeric_limits<float>::infinity();
  for (int q = 0; q < 4; ++q) {
    for (int j = 0; j < 8; ++j) r = m[q][j] < r ? m[q][j] : r;
  }
  return r;
}

// Each bucket's mass (mass[b] += weight, in double); returns nothing: the
// total is the buckets' sum.
template <bool kMasked, bool kAvx2>
KAON_ALWAYS_INLINE void HistogramImpl(const float* row, int64_t n, const uint32_t* allowed, const FlatRange* f,
                                      double* mass) {
  const FlatRange range = *f;
  ForBlocks<kMasked>(row, 0, n, allowed, [&](const V8f (&v)[4], int64_t) __attribute__((always_inline)) {
    // All four exponentials before any scatter: their polynomial chains
    // overlap only when no store sits between them.
    V8f w[4];
    V8i b[4];
    for (int q = 0; q < 4; ++q) FlatLanes(v[q], range, w[q], b[q]);
    float ws[kBlock];
    int32_t bs[kBlock];
    std::memcpy(ws, w, sizeof(ws));
    std::memcpy(bs, b, sizeof(bs));
#pragma GCC unroll 8
    for (int j = 0; j < kBlock; ++j) mass[bs[j]] += ws[j];
  });
}

// The kept tokens of bucket `bucket` into out, in id order; returns how many.
// The bucket index needs no exponential: only the few lanes that land in
// the bucket get their weight (SamplingWeight, bit-identical to the lanes
// Histogram summed) and the kept test.
template <bool kMasked, bool kAvx2>
KAON_ALWAYS_INLINE int64_t ExtractImpl(const float* row, int64_t n, const uint32_t* allowed, const FlatRange* f,
                                       int32_t bucket, Cand* out) {
  const FlatRange range = *f;
  int64_t count = 0;
  ForBlocks<kMasked>(row, 0, n, allowed, [&](const V8f (&v)[4], int64_t i) __attribute__((always_inline)) {
    V8i hit[4];
    for (int q = 0; q < 4; ++q) {
      // As FlatLanes for a kept lane; an unkept one may hit and is dropped below.
      V8f d = (range.max - v[q]) * range.scale;
      d = d < range.last ? d : KAON_SPLAT(range.last);  // -inf: +inf here, NaN: false → last
      hit[q] = __builtin_convertvector(d, V8i) == bucket;
    }
    uint32_t bits = Bits(hit);
    if (__builtin_expect(bits == 0, 1)) return;
    while (bits != 0) {
      const int j = __builtin_ctz(bits);
      bits &= bits - 1;
      // Padding past n and disallowed ids read as -inf above: never kept.
      if (i + j >= n || (kMasked && !((allowed[(i + j) / kBlock] >> ((i + j) % kBlock)) & 1u))) continue;
      const float key = row[i + j];
      const float w = SamplingWeight(key, range.max, range.inv_t);
      if (w > 0.0f && !(w < range.min_p)) out[count++] = Cand{key, static_cast<int32_t>(i + j), w};
    }
  });
  return count;
}

bool HasAvx2() {
  static const bool yes = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") != 0;
  }();
  return yes;
}

// Each kernel twice, SSE2 and AVX2; the caller picks (tests force SSE2).
#define KAON_STRIP(...) __VA_ARGS__
#define KAON_ROW_KERNEL(ret, name, params, args)                                                   \
  __attribute__((target("avx2"))) ret name##Avx2 params {                                          \
    return allowed ? name##Impl<true, true> args : name##Impl<false, true> args;                   \
  }                                                                                                \
  ret name##Sse2 params { return allowed ? name##Impl<true, false> args : name##Impl<false, false> args; } \
  ret name(bool avx2, KAON_STRIP params) { return avx2 ? name##Avx2 args : name##Sse2 args; }

KAON_ROW_KERNEL(int32_t, Argmax, (const float* row, int64_t n, const uint32_t* allowed), (row, n, allowed))
KAON_ROW_KERNEL(float, Max, (const float* row, int64_t n, const uint32_t* allowed), (row, n, allowed))
KAON_ROW_KERNEL(float, MaxCollect, (const float* row, int64_t n, const uint32_t* allowed, Collector* c),
                (row, n, allowed, c))
KAON_ROW_KERNEL(double, MassCollect,
                (const float* row, int64_t n, const uint32_t* allowed, const MassCutoff* cut, Collector* c,
                 const Hot* hot),
                (row, n, allowed, cut, c, hot))
KAON_ROW_KERNEL(float, MinFinite, (const float* row, int64_t n, const uint32_t* allowed), (row, n, allowed))
KAON_ROW_KERNEL(void, Histogram,
                (const float* row, int64_t n, const uint32_t* allowed, const FlatRange* f, double* mass),
                (row, n, allowed, f, mass))
KAON_ROW_KERNEL(int64_t, Extract,
                (const float* row, int64_t n, const uint32_t* allowed, const FlatRange* f, int32_t bucket,
                 Cand* out),
                (row, n, allowed, f, bucket, out))
#undef KAON_ROW_KERNEL
#undef KAON_STRIP

constexpr int32_t kDefaultFlatBuckets = 2048;  // CpuSampler::Tuning::flat_buckets
constexpr uint8_t kSeen = 1;   // in prompt ∪ output (repetition penalty)
constexpr uint8_t kSaved = 2;  // raw value saved before an in-place edit

}  // namespace

// ---------------------------------------------------------------------------
// One thread's scratch and the per-row pipeline.

class RowSampler {
 public:
  explicit RowSampler(int64_t vocab)
      : vocab_(vocab),
        cand_(vocab + 2 * kBlock),
        counts_(vocab, 0),
        flags_(vocab, 0),
        hot_keys_(kChunk + 8),
        hot_ids_(kChunk + 8),
        hot_{hot_keys_.data(), hot_ids_.data()} {
    touched_.reserve(vocab);  // at most one entry per distinct id
    saved_.reserve(vocab);
    mass_.reserve(kDefaultFlatBuckets);
  }

  // As the constructor sizes the buffers (the memory plan's figure).
  static int64_t PlannedBytes(int64_t vocab) {
    return (vocab + 2 * kBlock) * static_cast<int64_t>(sizeof(Cand)) +
           vocab * static_cast<int64_t>(sizeof(int32_t) + sizeof(uint8_t) + sizeof(int32_t) +
                                        sizeof(std::pair<int32_t, float>)) +
           (kChunk + 8) * static_cast<int64_t>(sizeof(float) + sizeof(int32_t)) +
           kDefaultFlatBuckets * static_cast<int64_t>(sizeof(double));
  }

  // Candidates a top-m collector holds before compacting: slack of at least
  // m keeps a large k amortised O(vocab) (each compaction halves the buffer);
  // tests set a fixed slack to force compactions.
  int64_t TopKCap(int64_t m) const {
    const int64_t slack = tuning.topk_slack > 0 ? tuning.topk_slack : std::max<int64_t>(256, m);
    return std::min<int64_t>(vocab_, m + slack);
  }

  // What the buffers hold now.
  int64_t Bytes() const {
    auto bytes = [](const auto& v) { return static_cast<int64_t>(v.capacity() * sizeof(v[0])); };
    return bytes(cand_) + bytes(counts_) + bytes(flags_) + bytes(touched_) + bytes(saved_) + bytes(hot_keys_) +
           bytes(hot_ids_) + bytes(mass_);
  }

  CpuSampler::Tuning tuning;

  void Sample(float* row, int32_t n, const SamplingRow& r, SampleResult* out) {
    avx2_ = HasAvx2() && !tuning.baseline_kernels;
    const bool logprobs = r.logprobs >= 0;
    out->top.clear();
    const double lse = logprobs ? RawLogSumExp(row, r.logprobs, &out->top) : 0.0;
    Penalize(row, n, r, logprobs);
    out->token = r.greedy() ? Argmax(avx2_, row, n, r.allowed) : Draw(row, n, r);
    out->logprob = logprobs ? static_cast<float>(RawValue(row, out->token) - lse) : 0.0f;
    for (const auto& [id, value] : saved_) flags_[id] &= static_cast<uint8_t>(~kSaved);
    saved_.clear();
  }

  void Logprobs(const float* row, int32_t token, int32_t k, float* token_logprob,
                std::vector<TokenLogprob>* top) {
    avx2_ = HasAvx2() && !tuning.baseline_kernels;
    if (top != nullptr) top->clear();
    const double lse = RawLogSumExp(row, top != nullptr ? k : 0, top);
    if (token_logprob != nullptr) {
      KAON_CHECK(token >= 0 && token < vocab_) << "logprob token " << token << " outside vocab " << vocab_;
      *token_logprob = static_cast<float>(row[token] - lse);
    }
  }

 private:
  // log-sum-exp of the raw row (all vocab ids), and its top k into `top`.
  double RawLogSumExp(const float* row, int32_t k, std::vector<TokenLogprob>* top) {
    float max;
    int64_t count = 0;
    if (k > 0) {
      const int64_t m = std::min<int64_t>(k, vocab_);
      Collector c{cand_.data(), m, TopKCap(m), kNegInf};
      max = MaxCollect(avx2_, row, vocab_, nullptr, &c);
      if (c.count > m) c.Full();
      // Fewer than k finite logits: the rest of the top are -inf, lowest ids first.
      for (int32_t id = 0; c.count < m; ++id) {
        if (!(row[id] > kNegInf)) cand_[c.count++] = Cand{kNegInf, id, 0.0f};
      }
      count = c.count;
      std::sort(cand_.begin(), cand_.begin() + count, Better{});
    } else {
      max = Max(avx2_, row, vocab_, nullptr);
    }
    // Float partial sums of at most 32 terms each, added in double: 152k
    // terms keep about 7 digits. An infinite cut-off collects nothing.
    const MassCutoff cut{max, 1.0f, std::numeric_limits<double>::infinity()};
    Collector none{cand_.data(), 0, 0, kNegInf};
    const double lse = max + std::log(MassCollect(avx2_, row, vocab_, nullptr, &cut, &none, &hot_));
    for (int64_t i = 0; i < count; ++i) {
      top->push_back(TokenLogprob{cand_[i].id, static_cast<float>(row[cand_[i].id] - lse)});
    }
    return lse;
  }

  double RawValue(const float* row, int32_t token) const {
    for (const auto& [id, value] : saved_) {
      if (id == token) return value;
    }
    return row[token];
  }

  // Banned ids, logit_bias and penalties, in place: they touch only the few
  // ids named, so the row passes that follow see the processed logits. The
  // allowed mask is applied by those passes instead (everything after it maps
  // -inf to -inf, so the order is unchanged).
  void Penalize(float* row, int32_t n, const SamplingRow& r, bool save_raw) {
    auto edit = [&](int32_t id) -> float& {
      if (save_raw && !(flags_[id] & kSaved)) {
        flags_[id] |= kSaved;
        saved_.emplace_back(id, row[id]);
      }
      return row[id];
    };
    for (int32_t id : r.banned_ids) {
      if (id >= 0 && id < n) edit(id) = kNegInf;
    }
    for (const auto& [id, bias] : r.logit_bias) {
      if (id >= 0 && id < n) edit(id) += bias;
    }
    auto check = [&](int32_t id) {
      KAON_CHECK(id >= 0 && id < vocab_) << "token id " << id << " outside vocab " << vocab_;
    };
    if (r.repetition_penalty != 1.0f) {
      // Once per distinct id of prompt ∪ output, as vLLM's prompt/output masks.
      touched_.clear();
      for (auto ids : {r.prompt_ids, r.output_ids}) {
        for (int32_t id : ids) {
          check(id);
          if (!(flags_[id] & kSeen)) {
            flags_[id] |= kSeen;
            touched_.push_back(id);
          }
        }
      }
      const float rp = r.repetition_penalty;
      for (int32_t id : touched_) {
        flags_[id] &= static_cast<uint8_t>(~kSeen);
        if (id >= n) continue;
        float& l = edit(id);
        l = l > 0.0f ? l / rp : l * rp;
      }
    }
    if (r.frequency_penalty != 0.0f || r.presence_penalty != 0.0f) {
      touched_.clear();
      for (int32_t id : r.output_ids) {
        check(id);
        if (counts_[id]++ == 0) touched_.push_back(id);
      }
      for (int32_t id : touched_) {
        if (id < n) {
          // Two steps, as vLLM: subtract frequency * count, then presence.
          float& l = edit(id);
          l -= r.frequency_penalty * static_cast<float>(counts_[id]);
          l -= r.presence_penalty;
        }
        counts_[id] = 0;
      }
    }
  }

  float Weight(float key) const { return SamplingWeight(key, max_, inv_t_); }
  bool Kept(float w) const { return !(w <= 0.0f || w < min_p_); }  // zero weight or under min_p: dropped

  // temperature → min_p → top_k → top_p → inverse-CDF draw, over candidates
  // that provably hold every token the reference would keep (see the cases).
  int32_t Draw(const float* row, int32_t n, const SamplingRow& r) {
    row_ = row;
    n_ = n;
    allowed_ = r.allowed;
    temperature_ = r.temperature;
    inv_t_ = 1.0f / r.temperature;
    min_p_ = r.min_p;
    const float u = kernels::cpu::Philox4x32::Uniform(r.seed, static_cast<uint64_t>(r.sample_index),
                                                      static_cast<uint64_t>(r.output_position));
    Cand* buf = cand_.data();
    double total = 0.0;
    if (r.top_k > 0 && r.top_k < n) {
      // Only the k best can be kept; k + 1 tell whether min_p left more
      // than k (then the reference sums the k best-first, else by id).
      const int64_t m = static_cast<int64_t>(r.top_k) + 1;
      Collector c{buf, m, TopKCap(m), kNegInf};
      max_ = MaxCollect(avx2_, row, n, allowed_, &c);
      if (!std::isfinite(max_)) return Argmax(avx2_, row, n, allowed_);
      if (c.count > m) c.Full();
      for (int64_t i = 0; i < c.count; ++i) buf[i].w = Weight(buf[i].key);
      std::sort(buf, buf + c.count, Better{});
      int64_t kept = 0;  // the weight falls with the logit, so min_p cuts a suffix
      while (kept < c.count && Kept(buf[kept].w)) ++kept;
      if (kept > r.top_k) {
        kept = r.top_k;
        for (int64_t i = 0; i < kept; ++i) total += buf[i].w;
      } else {
        std::sort(buf, buf + kept, [](const Cand& a, const Cand& b) { return a.id < b.id; });
        for (int64_t i = 0; i < kept; ++i) total += buf[i].w;
        std::sort(buf, buf + kept, Better{});
      }
      end_ = sorted_ = kept;
      complete_ = true;
    } else {
      max_ = Max(avx2_, row, n, allowed_);
      // Everything masked, or a logit overflowed to +inf: nothing to
      // normalise, so take the argmax (lowest id among the best).
      if (!std::isfinite(max_)) return Argmax(avx2_, row, n, allowed_);
      // Past flat_candidates the row is flat: bucket it instead.
      Collector c{buf, 0, std::max<int64_t>(1, tuning.flat_candidates), kNegInf};
      double rest = 0.0;
      if (r.min_p > 0.0f) {
        // Every kept token weighs >= min_p: the candidates are all of them.
        c.thr = Level(max_, temperature_, r.min_p);
        MaxCollect(avx2_, row, n, allowed_, &c);
      } else {
        // A kept token has mass above it < p * total (top_p), or <= u * total
        // for the drawn one (no top_p), so the mass at or below it, at most
        // n times its weight, is > (1 - p) * total: weights under
        // (1 - p) * total / n need no sorting. They only add to the total.
        const double p = r.top_p < 1.0f ? r.top_p : u;
        const MassCutoff cut{max_, temperature_, (1.0 - p) / n * tuning.cutoff_scale};
        rest = MassCollect(avx2_, row, n, allowed_, &cut, &c, &hot_);
      }
      if (c.overflow) return DrawFlat(row, n, r, u);
      level_ = c.thr;
      // Exact weights, in id order as the reference sums them; ids taken
      // under an earlier, lower cut-off join the rest.
      int64_t kept = 0;
      for (int64_t i = 0; i < c.count; ++i) {
        Cand x = buf[i];
        x.w = Weight(x.key);
        if (!(x.key > level_)) {
          rest += Kept(x.w) ? x.w : 0.0f;
        } else if (Kept(x.w)) {
          total += x.w;
          buf[kept++] = x;
        }
      }
      total += rest;
      end_ = kept;
      sorted_ = 0;
      complete_ = r.min_p > 0.0f;
    }
    appended_ = false;
    const int32_t token = Walk(r.top_p, u, total);
    // The rest was needed: its scan summed the exact total in id order, as
    // the reference does, so redo the walk with it for identical decisions.
    return appended_ ? Walk(r.top_p, u, exact_total_) : token;
  }

  // A row where thousands of tokens weigh something (a random or undertrained
  // model, a high temperature): sorting them would cost ~100x a pass over the
  // row. Instead one pass sums the kept weights into buckets by logit (best
  // first), and only the bucket where the top_p walk ends and the one where
  // the draw lands are extracted and sorted. The sums differ from a token-by-
  // token walk only in double rounding (~1e-16 of the total).
  int32_t DrawFlat(const float* row, int32_t n, const SamplingRow& r, float u) {
    const int32_t buckets = std::max(1, tuning.flat_buckets);
    // Logits under max - 88 T weigh 0 and under the min_p level are not kept:
    // no bucket is spent on them.
    float lo = std::max(MinFinite(avx2_, row, n, allowed_), max_ - 88.0f * temperature_);
    if (min_p_ > 0.0f) lo = std::max(lo, Level(max_, temperature_, min_p_));
    const float span = max_ - lo;
    flat_ = FlatRange{max_, inv_t_, min_p_,
                      span > 0.0f && std::isfinite(span) ? static_cast<float>(buckets) / span : 0.0f,
                      static_cast<float>(buckets - 1)};
    mass_.assign(buckets, 0.0);
    Histogram(avx2_, row, n, allowed_, &flat_, mass_.data());
    extracted_ = -1;
    // top_p: keep tokens while the mass above them is below top_p * total.
    int32_t cut_bucket = buckets;  // buckets before it are kept whole
    int64_t cut_count = 0;         // of its sorted tokens, the first cut_count are kept
    int32_t last_kept = -1;
    double kept_total = 0.0;
    for (double m : mass_) kept_total += m;
    if (r.top_p < 1.0f) {
      const double threshold = static_cast<double>(r.top_p) * kept_total;
      double cum = 0.0;
      for (int32_t b = 0; b < buckets && cut_bucket == buckets; ++b) {
        if (mass_[b] == 0.0) continue;
        if (cum + mass_[b] < threshold) {
          cum += mass_[b];
          continue;
        }
        const int64_t count = ExtractSorted(row, n, b);
        int64_t i = 0;
        while (i < count && cum < threshold) cum += cand_[i++].w;
        if (i < count || !(cum < threshold)) {
          cut_bucket = b;
          cut_count = i;
          last_kept = cand_[i - 1].id;
        }
      }
      kept_total = cum;
    }
    const double target = static_cast<double>(u) * kept_total;
    double cum = 0.0;
    for (int32_t b = 0; b <= std::min(cut_bucket, buckets - 1); ++b) {
      if (mass_[b] == 0.0) continue;
      if (b < cut_bucket && !(target < cum + mass_[b])) {
        cum += mass_[b];
        continue;
      }
      const int64_t extracted = ExtractSorted(row, n, b);
      const int64_t count = b == cut_bucket ? cut_count : extracted;
      for (int64_t i = 0; i < count; ++i) {
        cum += cand_[i].w;
        if (target < cum) return cand_[i].id;
      }
      if (count > 0 && b == cut_bucket) return cand_[count - 1].id;
    }
    // Only reached through rounding: the worst kept token, as the walk's end.
    if (last_kept >= 0) return last_kept;
    for (int32_t b = buckets - 1; b >= 0; --b) {
      if (mass_[b] > 0.0) {
        const int64_t count = ExtractSorted(row, n, b);
        if (count > 0) return cand_[count - 1].id;
      }
    }
    return Argmax(avx2_, row, n, allowed_);
  }

  // Bucket b's kept tokens into cand_, best first.
  int64_t ExtractSorted(const float* row, int32_t n, int32_t b) {
    if (extracted_ == b) return extracted_count_;
    Cand* buf = cand_.data();
    const int64_t count = Extract(avx2_, row, n, allowed_, &flat_, b, buf);
    // In id order already; equal logits (a quantised row) need no sort.
    bool equal = true;
    for (int64_t i = 1; i < count && equal; ++i) equal = buf[i].key == buf[0].key;
    if (!equal) std::sort(buf, buf + count, Better{});
    extracted_ = b;
    extracted_count_ = count;
    return count;
  }

  int32_t Walk(float top_p, float u, double total) {
    const Cand* buf = cand_.data();
    limit_ = std::numeric_limits<int64_t>::max();
    if (top_p < 1.0f) {
      // vLLM keeps a token while the mass strictly above it is below top_p.
      const double threshold = static_cast<double>(top_p) * total;
      double cum = 0.0;
      int64_t i = 0;
      while (cum < threshold && Has(i)) cum += WeightAt(i++);
      limit_ = i;
      total = cum;
    }
    const double target = static_cast<double>(u) * total;
    double cum = 0.0;
    for (int64_t i = 0; Has(i); ++i) {
      cum += WeightAt(i);
      if (target < cum) return buf[i].id;
    }
    // Only reached through rounding of `total`.
    return buf[std::min(limit_, end_) - 1].id;
  }

  // Whether the i-th best kept token exists; past the candidates, appends the
  // rest of the kept tokens (all ranked below every candidate).
  bool Has(int64_t i) {
    if (i >= limit_) return false;
    if (i < end_) return true;
    if (complete_) return false;
    complete_ = appended_ = true;
    exact_total_ = 0.0;
    for (int32_t id = 0; id < n_; ++id) {
      if (allowed_ != nullptr && !((allowed_[id / 32] >> (id % 32)) & 1u)) continue;
      const float key = row_[id];
      if (!(key > kNegInf)) continue;
      const float w = Weight(key);
      if (!Kept(w)) continue;
      exact_total_ += w;
      if (!(key > level_)) cand_[end_++] = Cand{key, id, w};
    }
    return i < end_;
  }

  // The i-th best candidate's weight, sorting lazily in growing blocks: the
  // probability mass sits in the first few, so most draws sort very little.
  double WeightAt(int64_t i) {
    if (i >= sorted_) {
      const int64_t count = std::min(end_, std::max<int64_t>(2 * sorted_, 64));
      Cand* first = cand_.data() + sorted_;
      Cand* mid = cand_.data() + count;
      Cand* last = cand_.data() + end_;
      if (mid < last) std::nth_element(first, mid, last, Better{});
      std::sort(first, mid, Better{});
      sorted_ = count;
    }
    return cand_[i].w;
  }

  int64_t vocab_;
  std::vector<Cand> cand_;
  std::vector<int32_t> counts_;  // output-token occurrences, by id (zero between calls)
  std::vector<uint8_t> flags_;   // kSeen | kSaved, by id (zero between calls)
  std::vector<int32_t> touched_;
  std::vector<std::pair<int32_t, float>> saved_;  // raw values of edited ids, when logprobs are wanted
  std::vector<float> hot_keys_;
  std::vector<int32_t> hot_ids_;
  Hot hot_;

  bool avx2_ = false;
  // The row being drawn from.
  const float* row_ = nullptr;
  int32_t n_ = 0;
  const uint32_t* allowed_ = nullptr;
  float max_ = 0.0f, temperature_ = 1.0f, inv_t_ = 1.0f, min_p_ = 0.0f;
  float level_ = kNegInf;  // candidates are exactly the kept ids above this
  int64_t end_ = 0;        // candidates held in cand_
  int64_t sorted_ = 0;     // cand_[0, sorted_) is sorted and precedes the rest
  int64_t limit_ = 0;      // kept count once top_p has cut
  bool complete_ = false;  // cand_ holds every kept token
  bool appended_ = false;  // this draw scanned the row for the rest
  double exact_total_ = 0.0;
  // DrawFlat's buckets.
  FlatRange flat_{};
  std::vector<double> mass_;
  int32_t extracted_ = -1;  // the bucket cand_ holds
  int64_t extracted_count_ = 0;
};

// ---------------------------------------------------------------------------

CpuSampler::CpuSampler(int64_t vocab_size, kernels::cpu::ThreadPool* pool) : vocab_size_(vocab_size), pool_(pool) {
  KAON_CHECK(vocab_size > 0 && vocab_size <= std::numeric_limits<int32_t>::max()) << vocab_size;
  const int threads = pool != nullptr ? pool->num_threads() : 1;
  for (int i = 0; i < threads; ++i) threads_.push_back(std::make_unique<RowSampler>(vocab_size));
}

static_assert(CpuSampler::Tuning{}.flat_buckets == kDefaultFlatBuckets);

int64_t CpuSampler::ScratchBytes(int64_t vocab_size, int num_threads) {
  return std::max(1, num_threads) * RowSampler::PlannedBytes(vocab_size);
}

int64_t CpuSampler::scratch_bytes() const {
  int64_t total = 0;
  for (const auto& t : threads_) total += t->Bytes();
  return total;
}

CpuSampler::~CpuSampler() = default;

void CpuSampler::set_tuning_for_test(const Tuning& tuning) {
  for (auto& t : threads_) t->tuning = tuning;
}

void CpuSampler::Sample(float* logits, int32_t sampleable_vocab, std::span<const SamplingRow> rows, SampleResult* out) {
  KAON_CHECK(sampleable_vocab > 0 && sampleable_vocab <= vocab_size_)
      << "sampleable_vocab " << sampleable_vocab << " not in [1, " << vocab_size_ << "]";
  struct Job {
    CpuSampler* self;
    float* logits;
    int32_t sampleable_vocab;
    std::span<const SamplingRow> rows;
    SampleResult* out;
  } job{this, logits, sampleable_vocab, rows, out};
  // One pointer captured: std::function stores it without allocating.
  const Job* j = &job;
  kernels::cpu::ParallelFor(pool_, static_cast<int64_t>(rows.size()), [j](int64_t begin, int64_t end, int t) {
    RowSampler& rs = *j->self->threads_[t];
    for (int64_t i = begin; i < end; ++i) {
      rs.Sample(j->logits + i * j->self->vocab_size_, j->sampleable_vocab, j->rows[i], &j->out[i]);
    }
  });
}

void CpuSampler::Logprobs(const float* logits, int32_t token, int32_t k, float* token_logprob,
                          std::vector<TokenLogprob>* top) {
  threads_[0]->Logprobs(logits, token, k, token_logprob, top);
}

}  // namespace kaon
