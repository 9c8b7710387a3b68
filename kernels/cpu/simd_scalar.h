// The portable "vector arch" (see simd_avx512.h): eight float lanes in plain
// C++. Its includers are compiled with -ffp-contract=off, so a multiply-add
// rounds twice in every kernel shape alike.
#pragma once

#include <cstdint>

#include <cstring>

namespace kaon::kernels::cpu {
namespace {

struct Scalar {
  static constexpr int kLanes = 8;
  struct V {
    float l[kLanes];
  };
  static V Zero() { return V{}; }
  static V Set1(float f) {
    V v;
    for (float& x : v.l) x = f;
    return v;
  }
  static V Load(const float* p) {
    V v;
    std::memcpy(v.l, p, sizeof(v.l));
    return v;
  }
  static V LoadTail(const float* p, int n) {
    V v{};
    std::memcpy(v.l, p, sizeof(float) * n);
    return v;
  }
  static void Store(float* p, const V& v) { std::memcpy(p, v.l, sizeof(v.l)); }
  static void StoreTail(float* p, const V& v, int n) { std::memcpy(p, v.l, sizeof(float) * n); }
  // bf16 → fp32 is exact: the bf16 bits become the top half of the float.
  static V LoadBf16(const uint16_t* p) { return LoadBf16Tail(p, kLanes); }
  static V LoadBf16Tail(const uint16_t* p, int n) {
    V v{};
    for (int i = 0; i < n; ++i) {
      const uint32_t bits = static_cast<uint32_t>(p[i]) << 16;
      std::memcpy(&v.l[i], &bits, sizeof(float));
    }
    return v;
  }
  static V Mul(const V& a, const V& b) {
    V v;
    for (int i = 0; i < kLanes; ++i) v.l[i] = a.l[i] * b.l[i];
    return v;
  }
  static V Fma(const V& a, const V& b, V acc) {
    for (int i = 0; i < kLanes; ++i) acc.l[i] += a.l[i] * b.l[i];
    return acc;
  }
  // Lane i + lane i + 4, then + 2, + 1.
  static float Sum(const V& v) {
    float s4[4], s2[2];
    for (int i = 0; i < 4; ++i) s4[i] = v.l[i] + v.l[i + 4];
    for (int i = 0; i < 2; ++i) s2[i] = s4[i] + s4[i + 2];
    return s2[0] + s2[1];
  }
};

}  // namespace
}  // namespace kaon::kernels::cpu
