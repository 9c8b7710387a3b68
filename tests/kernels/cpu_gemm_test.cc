// GemmF32 on every ISA path this CPU runs: against a float64 reference, and
// bitwise batch invariance (a row computed alone, at any offset in a batch
// of 4, 16 or 64, or in a column slice, is the same bits).
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/cpu_isa.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/gemm_ref.h"

namespace kaon::kernels::cpu {
namespace {

std::vector<float> Random(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

std::vector<CpuIsa> SupportedPaths() {
  std::vector<CpuIsa> out;
  const CpuIsaSupport s = DetectCpuIsaSupport();
  for (CpuIsa isa : kAllCpuIsas) {
    if (s.Has(isa)) out.push_back(isa);
  }
  return out;
}

struct Shape {
  int64_t n, k;
};

class GemmPathTest : public ::testing::TestWithParam<CpuIsa> {};

TEST_P(GemmPathTest, MatchesFloat64Reference) {
  for (Shape s : {Shape{13, 37}, Shape{50, 768}, Shape{7, 1000}, Shape{33, 16}, Shape{9, 5}}) {
    for (bool with_bias : {false, true}) {
      const int64_t m = 11;
      auto x = Random(m * s.k, 1), w = Random(s.n * s.k, 2), b = Random(s.n, 3);
      const float* bias = with_bias ? b.data() : nullptr;
      std::vector<float> y(m * s.n), ref(m * s.n);
      GemmF32(GetParam(), x.data(), s.k, m, w.data(), s.n, s.k, bias, y.data(), s.n);
      LinearRef(x.data(), w.data(), bias, m, s.n, s.k, ref.data());
      for (size_t i = 0; i < y.size(); ++i) {
        // fp32 sums of k products of unit normals: error grows ~ sqrt(k).
        ASSERT_NEAR(y[i], ref[i], 2e-6 * std::sqrt(double(s.k)) * 4 + 1e-6)
            << CpuIsaName(GetParam()) << " n=" << s.n << " k=" << s.k << " at " << i;
      }
    }
  }
}

TEST_P(GemmPathTest, RowsAreBitwiseEqualAtEveryBatchSize) {
  const int64_t n = 45, k = 771, total = 64;  // k % 16 = 3: every path runs its tail
  auto x = Random(total * k, 4), w = Random(n * k, 5), b = Random(n, 6);
  std::vector<float> all(total * n);
  GemmF32(GetParam(), x.data(), k, total, w.data(), n, k, b.data(), all.data(), n);
  for (int64_t m : {1, 4, 16, 64}) {
    // Batches of m rows starting at offset 3, so each row sits at another
    // place in its tile than in the 64-row run.
    for (int64_t r0 = 3 % m; r0 + m <= total; r0 += m) {
      std::vector<float> y(m * n);
      GemmF32(GetParam(), x.data() + r0 * k, k, m, w.data(), n, k, b.data(), y.data(), n);
      ASSERT_EQ(0, std::memcmp(y.data(), all.data() + r0 * n, sizeof(float) * m * n))
          << CpuIsaName(GetParam()) << " m=" << m << " rows from " << r0;
    }
  }
  // Column slices, as the backend's threads split them.
  std::vector<float> sliced(total * n);
  for (int64_t j0 = 0; j0 < n; j0 += 10) {
    const int64_t cols = std::min<int64_t>(10, n - j0);
    GemmF32(GetParam(), x.data(), k, total, w.data() + j0 * k, cols, k, b.data() + j0, sliced.data() + j0, n);
  }
  EXPECT_EQ(0, std::memcmp(sliced.data(), all.data(), sizeof(float) * total * n)) << CpuIsaName(GetParam());
}

TEST_P(GemmPathTest, StridedRowsAndEmptyShapes) {
  const int64_t m = 5, n = 6, k = 20, ldx = 32, ldy = 9;
  auto x = Random(m * ldx, 7), w = Random(n * k, 8);
  std::vector<float> y(m * ldy, -7.0f), dense_x(m * k), ref(m * n);
  for (int64_t i = 0; i < m; ++i) std::memcpy(&dense_x[i * k], &x[i * ldx], sizeof(float) * k);
  GemmF32(GetParam(), x.data(), ldx, m, w.data(), n, k, nullptr, y.data(), ldy);
  LinearRef(dense_x.data(), w.data(), nullptr, m, n, k, ref.data());
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) EXPECT_NEAR(y[i * ldy + j], ref[i * n + j], 1e-4);
    for (int64_t j = n; j < ldy; ++j) EXPECT_EQ(y[i * ldy + j], -7.0f) << "wrote past column n";
  }
  const std::vector<float> before = y;
  GemmF32(GetParam(), x.data(), ldx, 0, w.data(), n, k, nullptr, y.data(), ldy);  // no rows: no-op
  EXPECT_EQ(y, before);
}

uint16_t ToBf16(float f) {  // round to nearest even, as the loader does
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

float FromBf16(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
}

std::vector<uint16_t> ToBf16(const std::vector<float>& v) {
  std::vector<uint16_t> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = ToBf16(v[i]);
  return out;
}

// bf16 weights: against float64 over the weights' bf16 values (and x's, on
// the path that rounds x to bf16), then bitwise across batch sizes.
TEST_P(GemmPathTest, Bf16MatchesReferenceAndIsBatchInvariant) {
  const bool rounds_x = GetParam() == CpuIsa::kAvx512Bf16;
  for (Shape s : {Shape{13, 37}, Shape{50, 768}, Shape{9, 5}, Shape{7, 64}}) {
    const int64_t m = 9;
    auto x = Random(m * s.k, 11), wf = Random(s.n * s.k, 12), b = Random(s.n, 13);
    const std::vector<uint16_t> w = ToBf16(wf);
    std::vector<float> xr(x.size()), wr(w.size()), y(m * s.n), ref(m * s.n);
    for (size_t i = 0; i < x.size(); ++i) xr[i] = rounds_x ? FromBf16(ToBf16(x[i])) : x[i];
    for (size_t i = 0; i < w.size(); ++i) wr[i] = FromBf16(w[i]);
    GemmBf16(GetParam(), x.data(), s.k, m, w.data(), s.n, s.k, b.data(), y.data(), s.n);
    LinearRef(xr.data(), wr.data(), b.data(), m, s.n, s.k, ref.data());
    for (size_t i = 0; i < y.size(); ++i) {
      ASSERT_NEAR(y[i], ref[i], 8e-6 * std::sqrt(double(s.k)) + 1e-6)
          << CpuIsaName(GetParam()) << " n=" << s.n << " k=" << s.k << " at " << i;
    }
  }
  const int64_t n = 29, k = 803, total = 64;  // k % 32 = 3: the tails run
  auto x = Random(total * k, 14);
  const std::vector<uint16_t> w = ToBf16(Random(n * k, 15));
  std::vector<float> all(total * n);
  GemmBf16(GetParam(), x.data(), k, total, w.data(), n, k, nullptr, all.data(), n);
  for (int64_t m : {1, 4, 16}) {
    for (int64_t r0 = 3 % m; r0 + m <= total; r0 += m) {
      std::vector<float> y(m * n);
      GemmBf16(GetParam(), x.data() + r0 * k, k, m, w.data(), n, k, nullptr, y.data(), n);
      ASSERT_EQ(0, std::memcmp(y.data(), all.data() + r0 * n, sizeof(float) * m * n))
          << CpuIsaName(GetParam()) << " m=" << m << " rows from " << r0;
    }
  }
}

// The avx512bf16 path's two-part form (x rounded once, then the GEMM over
// the copy) gives GemmBf16's bits; other paths decline to round.
TEST_P(GemmPathTest, PreRoundedBf16IsBitwiseTheSame) {
  const int64_t m = 37, n = 50, k = 771;
  auto x = Random(m * k, 16);
  const std::vector<uint16_t> w = ToBf16(Random(n * k, 17));
  std::vector<uint16_t> xb(m * k);
  if (!RoundToBf16(GetParam(), x.data(), m * k, xb.data())) {
    EXPECT_NE(GetParam(), CpuIsa::kAvx512Bf16);
    return;
  }
  for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(xb[i], ToBf16(x[i])) << i;
  std::vector<float> once(m * n), per_tile(m * n);
  GemmBf16PreRounded(xb.data(), k, m, w.data(), n, k, nullptr, once.data(), n);
  GemmBf16(GetParam(), x.data(), k, m, w.data(), n, k, nullptr, per_tile.data(), n);
  EXPECT_EQ(0, std::memcmp(once.data(), per_tile.data(), sizeof(float) * once.size()));
}

INSTANTIATE_TEST_SUITE_P(EverySupportedPath, GemmPathTest, ::testing::ValuesIn(SupportedPaths()),
                         [](const auto& info) { return std::string(CpuIsaName(info.param)); });

TEST(CpuIsa, ResolvesAutoToTheBestPath) {
  CpuIsa isa;
  std::string error;
  ASSERT_TRUE(ResolveCpuIsa("auto", CpuIsaSupport{true, true, true}, &isa, &error));
  EXPECT_EQ(isa, CpuIsa::kAvx512Bf16);
  ASSERT_TRUE(ResolveCpuIsa("auto", CpuIsaSupport{true, true}, &isa, &error));
  EXPECT_EQ(isa, CpuIsa::kAvx512);
  ASSERT_TRUE(ResolveCpuIsa("auto", CpuIsaSupport{true, false}, &isa, &error));
  EXPECT_EQ(isa, CpuIsa::kAvx2);
  ASSERT_TRUE(ResolveCpuIsa("auto", CpuIsaSupport{}, &isa, &error));
  EXPECT_EQ(isa, CpuIsa::kScalar);
  ASSERT_TRUE(ResolveCpuIsa("scalar", CpuIsaSupport{true, true}, &isa, &error));
  EXPECT_EQ(isa, CpuIsa::kScalar);
}

TEST(CpuIsa, RefusesAPathTheCpuLacksAndUnknownNames) {
  CpuIsa isa = CpuIsa::kScalar;
  std::string error;
  EXPECT_FALSE(ResolveCpuIsa("avx512", CpuIsaSupport{true, false}, &isa, &error));
  EXPECT_NE(error.find("avx512: this CPU lacks it (best here: avx2)"), std::string::npos) << error;
  EXPECT_FALSE(ResolveCpuIsa("avx2", CpuIsaSupport{}, &isa, &error));
  EXPECT_NE(error.find("avx2: this CPU lacks it"), std::string::npos) << error;
  EXPECT_FALSE(ResolveCpuIsa("sse9", CpuIsaSupport{true, true}, &isa, &error));
  EXPECT_NE(error.find("must be auto, avx512bf16, avx512, avx2 or scalar, got 'sse9'"), std::string::npos) << error;
  EXPECT_FALSE(ResolveCpuIsa("avx512bf16", CpuIsaSupport{true, true, false}, &isa, &error));
  EXPECT_NE(error.find("avx512bf16: this CPU lacks it (best here: avx512)"), std::string::npos) << error;
}

}  // namespace
}  // namespace kaon::kernels::cpu
