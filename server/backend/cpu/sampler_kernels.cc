#include "server/backend/cpu/sampler_kernels.h"

#include <cmath>
#include <cstring>

#include "server/backend/sampling.h"

namespace kaon::sampler_kernels {
namespace {

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
#if defined(__clang__)
    // Clang has no variable-index __builtin_shuffle (the fuzz build uses it);
    // the same lanes gathered one by one give the same result.
    V8f packed;
    for (int j = 0; j < 8; ++j) packed[j] = v[lanes[j]];
#else
    const V8f packed = __builtin_shuffle(v, lanes);  // vpermps under AVX2
#endif
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

}  // namespace

float Level(float max, float temperature, double c) {
  const double l = static_cast<double>(max) + static_cast<double>(temperature) * (std::log(c) - 1e-3);
  float f = static_cast<float>(l);
  if (static_cast<double>(f) > l) f = std::nextafter(f, kNegInf);
  return f;
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
  __attribute__((target("avx2"))) static ret name##Avx2 params {                                   \
    return allowed ? name##Impl<true, true> args : name##Impl<false, true> args;                   \
  }                                                                                                \
  static ret name##Sse2 params { return allowed ? name##Impl<true, false> args : name##Impl<false, false> args; } \
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

}  // namespace kaon::sampler_kernels
