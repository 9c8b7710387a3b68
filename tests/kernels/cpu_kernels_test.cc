// The CPU kernels against plain float64 formulas on random inputs. These CPU
// twins are the references the CUDA kernels are checked against, so they are
// checked here first.
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/activation.h"
#include "kernels/cpu/cpu_isa.h"
#include "kernels/cpu/embedding.h"
#include "kernels/cpu/kv_cache_write.h"
#include "kernels/cpu/paged_attention.h"
#include "kernels/cpu/rmsnorm.h"
#include "kernels/cpu/rope.h"
#include "kernels/cpu/sampling.h"

namespace kaon::kernels::cpu {
namespace {

std::vector<float> Random(size_t n, uint64_t seed, float scale = 1.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

TEST(CpuKernels, RmsNormMatchesFormula) {
  const int64_t rows = 5, cols = 37;
  auto x = Random(rows * cols, 1), w = Random(cols, 2);
  std::vector<float> out(rows * cols);
  ASSERT_TRUE(RmsNorm(x.data(), w.data(), 1e-5f, rows, cols, out.data()).ok());
  for (int64_t r = 0; r < rows; ++r) {
    double ss = 0;
    for (int64_t c = 0; c < cols; ++c) ss += double(x[r * cols + c]) * x[r * cols + c];
    const double inv = 1.0 / std::sqrt(ss / cols + 1e-5);
    for (int64_t c = 0; c < cols; ++c) EXPECT_NEAR(out[r * cols + c], x[r * cols + c] * inv * w[c], 1e-5);
  }
  EXPECT_FALSE(RmsNorm(x.data(), w.data(), 1e-5f, rows, 0, out.data()).ok());
}

TEST(CpuKernels, FusedAddRmsNormUpdatesResidual) {
  const int64_t rows = 3, cols = 16;
  auto x = Random(rows * cols, 3), res = Random(rows * cols, 4), w = Random(cols, 5);
  std::vector<float> sum(rows * cols), expect(rows * cols);
  for (size_t i = 0; i < sum.size(); ++i) sum[i] = x[i] + res[i];
  ASSERT_TRUE(RmsNorm(sum.data(), w.data(), 1e-6f, rows, cols, expect.data()).ok());
  ASSERT_TRUE(FusedAddRmsNorm(x.data(), res.data(), w.data(), 1e-6f, rows, cols).ok());
  for (size_t i = 0; i < sum.size(); ++i) {
    EXPECT_FLOAT_EQ(res[i], sum[i]);
    EXPECT_FLOAT_EQ(x[i], expect[i]);
  }
}

TEST(CpuKernels, SiluAndMul) {
  auto gu = Random(2 * 2 * 7, 6);
  std::vector<float> out(2 * 7);
  ASSERT_TRUE(SiluAndMul(gu.data(), 2, 7, out.data()).ok());
  for (int r = 0; r < 2; ++r) {
    for (int c = 0; c < 7; ++c) {
      const double g = gu[r * 14 + c], u = gu[r * 14 + 7 + c];
      EXPECT_NEAR(out[r * 7 + c], g / (1 + std::exp(-g)) * u, 1e-6);
    }
  }
}

TEST(CpuKernels, EmbeddingShardAndBounds) {
  auto table = Random(4 * 3, 7);  // rows 4..7 of an 8-token vocabulary
  const int32_t ids[] = {5, 1, 7};
  std::vector<float> out(9);
  ASSERT_TRUE(EmbeddingLookup(table.data(), 4, 3, 4, 8, ids, 3, out.data()).ok());
  for (int c = 0; c < 3; ++c) {
    EXPECT_EQ(out[c], table[1 * 3 + c]);
    EXPECT_EQ(out[3 + c], 0.0f);  // id 1 belongs to another rank
    EXPECT_EQ(out[6 + c], table[3 * 3 + c]);
  }
  const int32_t bad[] = {8};
  EXPECT_FALSE(EmbeddingLookup(table.data(), 4, 3, 4, 8, bad, 1, out.data()).ok());
}

TEST(CpuKernels, RotaryNeoxPairsHalves) {
  const int64_t d = 8, half = 4, max_pos = 10;
  std::vector<double> inv = {1.0, 0.1, 0.01, 0.001};
  std::vector<float> cs(max_pos * half), sn(max_pos * half);
  BuildRopeCache(inv.data(), half, max_pos, cs.data(), sn.data());
  auto q = Random(2 * d, 8), k = Random(1 * d, 9);
  auto q0 = q, k0 = k;
  const int32_t pos[] = {7};
  ASSERT_TRUE(ApplyRotaryNeox(q.data(), 2 * d, k.data(), d, pos, 1, 2, 1, d, cs.data(), sn.data(), max_pos).ok());
  for (int h = 0; h < 2; ++h) {
    for (int i = 0; i < half; ++i) {
      const double a = 7 * inv[i];
      const double x1 = q0[h * d + i], x2 = q0[h * d + i + half];
      EXPECT_NEAR(q[h * d + i], x1 * std::cos(a) - x2 * std::sin(a), 1e-6);
      EXPECT_NEAR(q[h * d + i + half], x2 * std::cos(a) + x1 * std::sin(a), 1e-6);
    }
  }
  const int32_t far[] = {10};
  EXPECT_FALSE(ApplyRotaryNeox(q.data(), 2 * d, k.data(), d, far, 1, 2, 1, d, cs.data(), sn.data(), max_pos).ok());
}

// Mixed batch: a decode (context 9) and a prefill chunk (3 new of 6) with
// GQA, over scattered blocks, against dense causal attention.
void CheckPagedAttention(CpuIsa isa, int64_t d) {
  SCOPED_TRACE(std::string(CpuIsaName(isa)) + " head_dim " + std::to_string(d));
  const int64_t heads = 4, kv_heads = 2, bs = 4, num_blocks = 8;
  PagedKvShape shape{num_blocks, bs, kv_heads, d};
  const int32_t seq_lens[] = {9, 6};
  const int32_t qsl[] = {0, 1, 4};
  const int32_t table[] = {5, 2, 7, /*seq1*/ 0, 6, 0};
  AttentionMetadata meta{qsl, seq_lens, table, 2, 3, 9};

  // Full K/V per sequence, then scattered into the cache through the tables.
  std::vector<float> kc(shape.layer_elems(), NAN), vc(shape.layer_elems(), NAN);
  std::vector<std::vector<float>> K(2), V(2);
  for (int s = 0; s < 2; ++s) {
    K[s] = Random(seq_lens[s] * kv_heads * d, 10 + s);
    V[s] = Random(seq_lens[s] * kv_heads * d, 20 + s);
    std::vector<int64_t> slots(seq_lens[s]);
    for (int j = 0; j < seq_lens[s]; ++j) slots[j] = table[s * 3 + j / bs] * bs + j % bs;
    ASSERT_TRUE(WriteKvCache(K[s].data(), kv_heads * d, V[s].data(), kv_heads * d, slots.data(), seq_lens[s],
                             shape, kc.data(), vc.data()).ok());
  }
  auto q = Random(4 * heads * d, 30);
  std::vector<float> out(4 * heads * d);
  ThreadPool pool(2);
  ASSERT_TRUE(PagedAttention(q.data(), heads * d, kc.data(), vc.data(), shape, meta, heads, 0.25f, out.data(),
                             &pool, isa).ok());
  for (int t = 0; t < 4; ++t) {
    const int s = t == 0 ? 0 : 1;
    const int q_len = qsl[s + 1] - qsl[s];
    const int pos = seq_lens[s] - q_len + (t - qsl[s]);
    for (int h = 0; h < heads; ++h) {
      const int kvh = h / 2;
      std::vector<double> p(pos + 1);
      double mx = -1e300, den = 0;
      for (int j = 0; j <= pos; ++j) {
        double dot = 0;
        for (int i = 0; i < d; ++i) dot += double(q[(t * heads + h) * d + i]) * K[s][(j * kv_heads + kvh) * d + i];
        p[j] = dot * 0.25;
        mx = std::max(mx, p[j]);
      }
      for (double& x : p) den += (x = std::exp(x - mx));
      for (int i = 0; i < d; ++i) {
        double o = 0;
        for (int j = 0; j <= pos; ++j) o += p[j] / den * V[s][(j * kv_heads + kvh) * d + i];
        EXPECT_NEAR(out[(t * heads + h) * d + i], o, 1e-5) << "token " << t << " head " << h;
      }
    }
  }
  // A block id outside the cache is refused, not read.
  const int32_t bad_table[] = {5, 2, 9, 0, 6, 0};
  AttentionMetadata bad = meta;
  bad.block_table = bad_table;
  EXPECT_FALSE(PagedAttention(q.data(), heads * d, kc.data(), vc.data(), shape, bad, heads, 0.25f, out.data(),
                              nullptr, isa).ok());
}

// Every SIMD path this CPU runs, at head dims that are whole vectors (16,
// 64) and not (12, 20: the masked tails).
TEST(CpuKernels, PagedAttentionMatchesDenseCausal) {
  const CpuIsaSupport support = DetectCpuIsaSupport();
  for (CpuIsa isa : kAllCpuIsas) {
    if (!support.Has(isa)) continue;
    for (int64_t d : {16, 64, 12, 20}) CheckPagedAttention(isa, d);
  }
}

TEST(CpuKernels, PhiloxKnownAnswer) {
  // Known-answer vectors from the Random123 distribution (philox4x32_10).
  uint32_t out[4];
  Philox4x32::Generate(0, 0, 0, 0, 0, out);
  EXPECT_EQ(out[0], 0x6627e8d5u);
  EXPECT_EQ(out[1], 0xe169c58du);
  EXPECT_EQ(out[2], 0xbc57ac4cu);
  EXPECT_EQ(out[3], 0x9b00dbd8u);
  Philox4x32::Generate(0xffffffffffffffffull, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, out);
  EXPECT_EQ(out[0], 0x408f276du);
  EXPECT_EQ(out[1], 0x41c83b0eu);
  EXPECT_EQ(out[2], 0xa20bc7c6u);
  EXPECT_EQ(out[3], 0x6d5451fdu);
}

TEST(CpuKernels, PhiloxUniform) {
  // The top 24 bits of the first output word over 2^24: with the known
  // answer above, (0x6627e8d5 >> 8) / 2^24 for key 0, counter 0.
  EXPECT_EQ(Philox4x32::Uniform(0, 0, 0), static_cast<float>(0x6627e8u) / 16777216.0f);
  double sum = 0;
  for (uint64_t i = 0; i < 20000; ++i) {
    const float u = Philox4x32::Uniform(42, 0, i);
    ASSERT_GE(u, 0.0f);
    ASSERT_LT(u, 1.0f);
    sum += u;
  }
  EXPECT_NEAR(sum / 20000, 0.5, 0.01);  // sd of the mean: 0.002
}

TEST(CpuKernels, ArgmaxTakesTheLowestIdOnTies) {
  // Greedy decoding's rule, as llama2.c's and the references' argmax.
  const float logits[] = {1.0f, 3.0f, 2.0f, 3.0f, -1.0f};
  EXPECT_EQ(Argmax(logits, 5), 1);
  EXPECT_EQ(Argmax(logits, 1), 0);
  const float ninf = -std::numeric_limits<float>::infinity();
  const float masked[] = {ninf, ninf, -5.0f, ninf};
  EXPECT_EQ(Argmax(masked, 4), 2);
  const float flat[] = {0.5f, 0.5f, 0.5f};
  EXPECT_EQ(Argmax(flat, 3), 0);
}

}  // namespace
}  // namespace kaon::kernels::cpu
