// The GEMM loop nest shared by every ISA path of gemm.h, written once over a
// "dot" type D that says how k elements of x (fp32) and of w (D::W: fp32 or
// bf16) meet an fp32 vector accumulator:
//   D::Acc, D::X, D::Wv, D::XElem and D::W (x's and w's element types),
//   D::kStep (k elements per step),
//   D::Zero(), D::LoadX(p) / D::LoadXTail(p, n), D::LoadW(p) / LoadWTail(p, n)
//   (n < kStep, the rest zero), D::Dot(x, w, acc) (acc += the step's
//   products), D::Sum(acc) (the fixed halving tree over the lanes).
// Each output is one D::Acc accumulator fed the same sequence of Dot calls
// in every tile shape, which is what makes rows batch-invariant.
//
// F32Dot<A> and Bf16WidenDot<A> adapt a vector arch A (simd_*.h); the
// AVX512_BF16 path defines its own D (gemm_avx512bf16.cc).
//
// Everything here sits in an anonymous namespace on purpose: each includer
// is compiled for a different instruction set, and a shared inline symbol
// could let the linker hand the AVX-512 copy to the scalar path.
#pragma once

#include <algorithm>
#include <cstdint>

namespace kaon::kernels::cpu {
namespace {

// fp32 x and fp32 w: one fused multiply-add per lane per step.
template <class A>
struct F32Dot {
  using Acc = typename A::V;
  using X = typename A::V;
  using Wv = typename A::V;
  using XElem = float;
  using W = float;
  static constexpr int kStep = A::kLanes;
  static Acc Zero() { return A::Zero(); }
  static X LoadX(const float* p) { return A::Load(p); }
  static X LoadXTail(const float* p, int n) { return A::LoadTail(p, n); }
  static Wv LoadW(const float* p) { return A::Load(p); }
  static Wv LoadWTail(const float* p, int n) { return A::LoadTail(p, n); }
  static Acc Dot(const X& x, const Wv& w, const Acc& acc) { return A::Fma(x, w, acc); }
  static float Sum(const Acc& v) { return A::Sum(v); }
};

// fp32 x and bf16 w widened to fp32 in registers (exact: a bf16 is the top
// half of an fp32), then as F32Dot. A needs LoadBf16 / LoadBf16Tail.
template <class A>
struct Bf16WidenDot : F32Dot<A> {
  using W = uint16_t;
  static typename A::V LoadW(const uint16_t* p) { return A::LoadBf16(p); }
  static typename A::V LoadWTail(const uint16_t* p, int n) { return A::LoadBf16Tail(p, n); }
};

template <class D, int MR, int NR>
void Tile(const typename D::XElem* x, int64_t ldx, const typename D::W* w, int64_t k, const float* bias, float* y, int64_t ldy) {
  typename D::Acc acc[MR][NR];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 8
    for (int j = 0; j < NR; ++j) acc[i][j] = D::Zero();
  }
  int64_t p = 0;
  for (; p + D::kStep <= k; p += D::kStep) {
    typename D::X xv[MR];
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) xv[i] = D::LoadX(x + i * ldx + p);
#pragma GCC unroll 8
    for (int j = 0; j < NR; ++j) {
      const typename D::Wv wv = D::LoadW(w + j * k + p);
#pragma GCC unroll 8
      for (int i = 0; i < MR; ++i) acc[i][j] = D::Dot(xv[i], wv, acc[i][j]);
    }
  }
  if (p < k) {
    const int rem = static_cast<int>(k - p);
    typename D::X xv[MR];
    for (int i = 0; i < MR; ++i) xv[i] = D::LoadXTail(x + i * ldx + p, rem);
    for (int j = 0; j < NR; ++j) {
      const typename D::Wv wv = D::LoadWTail(w + j * k + p, rem);
      for (int i = 0; i < MR; ++i) acc[i][j] = D::Dot(xv[i], wv, acc[i][j]);
    }
  }
  for (int i = 0; i < MR; ++i) {
    for (int j = 0; j < NR; ++j) {
      const float dot = D::Sum(acc[i][j]);
      y[i * ldy + j] = bias ? dot + bias[j] : dot;
    }
  }
}

// Tile<D, mr, nr> for an edge tile smaller than MR × NR.
template <class D, int MR, int NR>
void EdgeTile(int mr, int nr, const typename D::XElem* x, int64_t ldx, const typename D::W* w, int64_t k, const float* bias,
              float* y, int64_t ldy) {
  if constexpr (MR > 1) {
    if (mr < MR) return EdgeTile<D, MR - 1, NR>(mr, nr, x, ldx, w, k, bias, y, ldy);
  }
  if constexpr (NR > 1) {
    if (nr < NR) return EdgeTile<D, MR, NR - 1>(mr, nr, x, ldx, w, k, bias, y, ldy);
  }
  Tile<D, MR, NR>(x, ldx, w, k, bias, y, ldy);
}

// Rows in blocks whose x stays in L2 while every column tile passes over
// them; within a block, one column tile (NR rows of w, hot in L1/L2) meets
// every row tile before the next.
template <class D, int MR, int NR>
void GemmTiles(const typename D::XElem* x, int64_t ldx, int64_t m, const typename D::W* w, int64_t n, int64_t k,
               const float* bias, float* y, int64_t ldy) {
  constexpr int64_t kRowBlock = 128;
  for (int64_t i0 = 0; i0 < m; i0 += kRowBlock) {
    const int64_t i1 = std::min(m, i0 + kRowBlock);
    for (int64_t j = 0; j < n; j += NR) {
      const int nr = static_cast<int>(std::min<int64_t>(NR, n - j));
      for (int64_t i = i0; i < i1; i += MR) {
        const int mr = static_cast<int>(std::min<int64_t>(MR, i1 - i));
        EdgeTile<D, MR, NR>(mr, nr, x + i * ldx, ldx, w + j * k, k, bias ? bias + j : nullptr, y + i * ldy + j,
                            ldy);
      }
    }
  }
}

}  // namespace
}  // namespace kaon::kernels::cpu
