// kernels/common/philox.h: the Random123 known-answer vectors for
// Philox4x32-10, and the uniforms the CPU sampler drew before the generator
// moved there (a seeded request must keep its tokens across the change).
#include <cstdint>

#include "gtest/gtest.h"
#include "kernels/common/philox.h"
#include "kernels/cpu/sampling.h"

namespace kaon::kernels {
namespace {

TEST(Philox, KnownAnswerVectors) {
  struct Kat {
    uint64_t key;
    uint32_t ctr[4], want[4];
  };
  const Kat kats[] = {
      {0, {0, 0, 0, 0}, {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}},
      {~0ull, {~0u, ~0u, ~0u, ~0u}, {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}},
      {0x299f31d0a4093822ull,
       {0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u},
       {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}},
  };
  for (const Kat& k : kats) {
    uint32_t out[4], old[4];
    Philox4x32Generate(k.key, k.ctr[0], k.ctr[1], k.ctr[2], k.ctr[3], out);
    cpu::Philox4x32::Generate(k.key, k.ctr[0], k.ctr[1], k.ctr[2], k.ctr[3], old);
    for (int i = 0; i < 4; ++i) {
      EXPECT_EQ(out[i], k.want[i]) << i;
      EXPECT_EQ(old[i], k.want[i]) << i;
    }
  }
}

TEST(Philox, UniformsAsBeforeTheMove) {
  struct Draw {
    uint64_t key, hi, lo;
    float u;
  };
  // Printed with %.9g (exact for floats) by the previous implementation.
  const Draw draws[] = {
      {0ull, 0ull, 0ull, 0.399046421f},
      {0ull, 0ull, 7ull, 0.658983052f},
      {0ull, 0ull, 8589934592ull, 0.34763217f},
      {0ull, 3ull, 0ull, 0.940079331f},
      {0ull, 3ull, 7ull, 0.0135285258f},
      {0ull, 3ull, 8589934592ull, 0.785221338f},
      {1ull, 0ull, 0ull, 0.890259147f},
      {1ull, 0ull, 7ull, 0.480692387f},
      {1ull, 3ull, 8589934592ull, 0.549915671f},
      {42ull, 0ull, 0ull, 0.612959862f},
      {42ull, 3ull, 0ull, 0.0403083563f},
      {42ull, 3ull, 8589934592ull, 0.503773272f},
      {16045690984503111693ull, 0ull, 0ull, 0.0679748654f},
      {16045690984503111693ull, 0ull, 8589934592ull, 0.764391005f},
      {16045690984503111693ull, 3ull, 7ull, 0.175168753f},
  };
  for (const Draw& d : draws) {
    EXPECT_EQ(Philox4x32Uniform(d.key, d.hi, d.lo), d.u) << d.key << " " << d.hi << " " << d.lo;
    EXPECT_EQ(cpu::Philox4x32::Uniform(d.key, d.hi, d.lo), d.u);
  }
}

TEST(Philox, UniformIsInUnitInterval) {
  for (uint64_t lo = 0; lo < 100000; ++lo) {
    const float u = Philox4x32Uniform(0x1234, lo % 7, lo);
    ASSERT_GE(u, 0.0f);
    ASSERT_LT(u, 1.0f);
  }
}

}  // namespace
}  // namespace kaon::kernels
