// The body of one attention unit (attention_paths.h), written once over a
// vector arch A (simd_*.h). One pass over the context with an online
// softmax (running max and denominator per head, the output rescaled when
// the max grows), so it needs no scratch of the context's length and reads
// each K and V row once for the whole GQA group. Anonymous namespace for the
// reason gemm_tiles.h gives.
#pragma once

#include <algorithm>
#include <cmath>

#include "kernels/cpu/attention_paths.h"

namespace kaon::kernels::cpu {
namespace {

template <class A>
float Dot(const float* a, const float* b, int64_t d) {
  typename A::V acc = A::Zero();
  int64_t i = 0;
  for (; i + A::kLanes <= d; i += A::kLanes) acc = A::Fma(A::Load(a + i), A::Load(b + i), acc);
  if (i < d) acc = A::Fma(A::LoadTail(a + i, int(d - i)), A::LoadTail(b + i, int(d - i)), acc);
  return A::Sum(acc);
}

// out[0, d) = out · keep + Σ_o p[o] · v[o * stride, + d), one A-wide slice of
// out at a time held in a register across the rows.
template <class A>
void ScaleAndAccumulate(float keep, const float* p, const float* v, int64_t stride, int64_t rows, int64_t d,
                        float* out) {
  const typename A::V k = A::Set1(keep);
  int64_t i = 0;
  for (; i + A::kLanes <= d; i += A::kLanes) {
    typename A::V acc = A::Mul(A::Load(out + i), k);
    for (int64_t o = 0; o < rows; ++o) acc = A::Fma(A::Set1(p[o]), A::Load(v + o * stride + i), acc);
    A::Store(out + i, acc);
  }
  if (i < d) {
    const int n = int(d - i);
    typename A::V acc = A::Mul(A::LoadTail(out + i, n), k);
    for (int64_t o = 0; o < rows; ++o) acc = A::Fma(A::Set1(p[o]), A::LoadTail(v + o * stride + i, n), acc);
    A::StoreTail(out + i, acc, n);
  }
}

template <class A>
void AttendRow(const AttendRowArgs& a) {
  constexpr int64_t kChunk = 16;  // positions scored before their softmax update
  const int64_t d = a.head_dim, bs = a.block_size, stride = a.slot_stride, g_count = a.group;
  float max_score[kMaxAttentionGroup], denom[kMaxAttentionGroup];
  for (int64_t g = 0; g < g_count; ++g) {
    max_score[g] = -INFINITY;
    denom[g] = 0.0f;
    std::fill(a.out + g * d, a.out + (g + 1) * d, 0.0f);
  }
  float p[kMaxAttentionGroup][kChunk];
  for (int64_t j0 = 0, b = 0; j0 <= a.pos; j0 += bs, ++b) {
    const int64_t base = static_cast<int64_t>(a.table[b]) * bs * stride + a.kv_head * d;
    const float* kb = a.k_cache + base;
    const float* vb = a.v_cache + base;
    const int64_t rows = std::min(bs, a.pos + 1 - j0);
    if (j0 + bs <= a.pos) {
      // The next block's rows for this head, while this one computes: its
      // slots are block_size × slot_stride apart in a scattered page, which
      // the hardware prefetcher does not follow.
      const int64_t next = static_cast<int64_t>(a.table[b + 1]) * bs * stride + a.kv_head * d;
      const int64_t next_rows = std::min(bs, a.pos + 1 - j0 - bs);
      for (int64_t o = 0; o < next_rows; ++o) {
        for (int64_t i = 0; i < d; i += 16) {
          __builtin_prefetch(a.k_cache + next + o * stride + i);
          __builtin_prefetch(a.v_cache + next + o * stride + i);
        }
      }
    }
    for (int64_t c0 = 0; c0 < rows; c0 += kChunk) {
      const int64_t n = std::min(kChunk, rows - c0);
      for (int64_t o = 0; o < n; ++o) {
        const float* k = kb + (c0 + o) * stride;
        for (int64_t g = 0; g < g_count; ++g) p[g][o] = Dot<A>(a.q + g * d, k, d) * a.scale;
      }
      for (int64_t g = 0; g < g_count; ++g) {
        float chunk_max = p[g][0];
        for (int64_t o = 1; o < n; ++o) chunk_max = std::max(chunk_max, p[g][o]);
        const float new_max = std::max(max_score[g], chunk_max);
        // exp(-inf) = 0 on the first chunk: nothing accumulated to keep.
        const float keep = std::exp(max_score[g] - new_max);
        float sum = 0.0f;
        for (int64_t o = 0; o < n; ++o) sum += (p[g][o] = std::exp(p[g][o] - new_max));
        denom[g] = denom[g] * keep + sum;
        max_score[g] = new_max;
        ScaleAndAccumulate<A>(keep, p[g], vb + c0 * stride, stride, n, d, a.out + g * d);
      }
    }
  }
  for (int64_t g = 0; g < g_count; ++g) {
    const float inv = 1.0f / denom[g];
    for (int64_t i = 0; i < d; ++i) a.out[g * d + i] *= inv;
  }
}

}  // namespace
}  // namespace kaon::kernels::cpu
