// The GEMM loop nest shared by every ISA path of GemmF32 (gemm.h), written
// once over a vector "arch" type A:
//   A::V, A::kLanes, A::Zero(), A::Load(p), A::LoadTail(p, n) (n < kLanes
//   floats, the rest zero), A::Fma(a, b, acc) = a·b + acc, A::Sum(v) (the
//   fixed halving tree over the lanes).
// Each output is one A::V accumulator fed the same sequence of Fma calls in
// every tile shape, which is what makes rows batch-invariant.
//
// Everything here sits in an anonymous namespace on purpose: each includer
// is compiled for a different instruction set, and a shared inline symbol
// could let the linker hand the AVX-512 copy to the scalar path.
#pragma once

#include <algorithm>
#include <cstdint>

namespace kaon::kernels::cpu {
namespace {

template <class A, int MR, int NR>
void Tile(const float* x, int64_t ldx, const float* w, int64_t k, const float* bias, float* y, int64_t ldy) {
  typename A::V acc[MR][NR];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 8
    for (int j = 0; j < NR; ++j) acc[i][j] = A::Zero();
  }
  int64_t p = 0;
  for (; p + A::kLanes <= k; p += A::kLanes) {
    typename A::V xv[MR];
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) xv[i] = A::Load(x + i * ldx + p);
#pragma GCC unroll 8
    for (int j = 0; j < NR; ++j) {
      const typename A::V wv = A::Load(w + j * k + p);
#pragma GCC unroll 8
      for (int i = 0; i < MR; ++i) acc[i][j] = A::Fma(xv[i], wv, acc[i][j]);
    }
  }
  if (p < k) {
    const int rem = static_cast<int>(k - p);
    typename A::V xv[MR];
    for (int i = 0; i < MR; ++i) xv[i] = A::LoadTail(x + i * ldx + p, rem);
    for (int j = 0; j < NR; ++j) {
      const typename A::V wv = A::LoadTail(w + j * k + p, rem);
      for (int i = 0; i < MR; ++i) acc[i][j] = A::Fma(xv[i], wv, acc[i][j]);
    }
  }
  for (int i = 0; i < MR; ++i) {
    for (int j = 0; j < NR; ++j) {
      const float dot = A::Sum(acc[i][j]);
      y[i * ldy + j] = bias ? dot + bias[j] : dot;
    }
  }
}

// Tile<A, mr, nr> for an edge tile smaller than MR × NR.
template <class A, int MR, int NR>
void EdgeTile(int mr, int nr, const float* x, int64_t ldx, const float* w, int64_t k, const float* bias, float* y,
              int64_t ldy) {
  if constexpr (MR > 1) {
    if (mr < MR) return EdgeTile<A, MR - 1, NR>(mr, nr, x, ldx, w, k, bias, y, ldy);
  }
  if constexpr (NR > 1) {
    if (nr < NR) return EdgeTile<A, MR, NR - 1>(mr, nr, x, ldx, w, k, bias, y, ldy);
  }
  Tile<A, MR, NR>(x, ldx, w, k, bias, y, ldy);
}

// Rows in blocks whose x stays in L2 while every column tile passes over
// them; within a block, one column tile (NR rows of w, hot in L1/L2) meets
// every row tile before the next.
template <class A, int MR, int NR>
void GemmTiles(const float* x, int64_t ldx, int64_t m, const float* w, int64_t n, int64_t k, const float* bias,
               float* y, int64_t ldy) {
  constexpr int64_t kRowBlock = 128;
  for (int64_t i0 = 0; i0 < m; i0 += kRowBlock) {
    const int64_t i1 = std::min(m, i0 + kRowBlock);
    for (int64_t j = 0; j < n; j += NR) {
      const int nr = static_cast<int>(std::min<int64_t>(NR, n - j));
      for (int64_t i = i0; i < i1; i += MR) {
        const int mr = static_cast<int>(std::min<int64_t>(MR, i1 - i));
        EdgeTile<A, MR, NR>(mr, nr, x + i * ldx, ldx, w + j * k, k, bias ? bias + j : nullptr, y + i * ldy + j,
                            ldy);
      }
    }
  }
}

}  // namespace
}  // namespace kaon::kernels::cpu
