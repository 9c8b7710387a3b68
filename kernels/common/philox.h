// Philox4x32-10 (Salmon et al., SC'11): a counter-based generator, so a draw
// depends only on (key, counter). One implementation for the host and the
// device: a seeded request draws the same u on every backend, alone or
// batched. kernels/cpu/sampling's Philox4x32 forwards here.
#pragma once

#include <cstdint>

#include "kernels/common/host_device.h"

namespace kaon::kernels {

// Ten rounds over the counter (c0..c3) with the 64-bit key (low word k0).
// Plain 64-bit integer products: exact, so host and device agree bit for bit.
KAON_HD inline void Philox4x32Generate(uint64_t key, uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3,
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

// A uniform float in [0, 1) from the first output word's top 24 bits; the
// counter is (counter_lo, counter_hi) split into 32-bit words, low first.
// The conversion and the scaling by 2^-24 are exact on any IEEE target.
KAON_HD inline float Philox4x32Uniform(uint64_t key, uint64_t counter_hi, uint64_t counter_lo) {
  uint32_t out[4];
  Philox4x32Generate(key, static_cast<uint32_t>(counter_lo), static_cast<uint32_t>(counter_lo >> 32),
                     static_cast<uint32_t>(counter_hi), static_cast<uint32_t>(counter_hi >> 32), out);
  return static_cast<float>(out[0] >> 8) * (1.0f / 16777216.0f);
}

}  // namespace kaon::kernels
