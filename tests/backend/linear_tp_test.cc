// Tensor-parallel weight slicing at load: every rank's share of a column-,
// fused- or row-parallel layer recombines (concatenate / all-reduce sum) into
// the unsplit layer's output, biases included exactly once.
#include <random>

#include "gtest/gtest.h"
#include "kernels/cpu/gemm_ref.h"
#include "server/backend/cpu/linear.h"
#include "tests/common/test_paths.h"

namespace kaon::layers {
namespace {

std::vector<float> RandomInput(int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist;
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

class LinearTp : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = WeightStore::Open(testing::TestModelDir("tiny-qwen2"));
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }
  std::unique_ptr<WeightStore> store_;
};

TEST_F(LinearTp, FusedQkvSplitsPerPartAndRank) {
  // tiny-qwen2: 4 heads, 2 kv heads, head_dim 16, hidden 64, q/k/v biases.
  const std::vector<FusedPart> parts = {{"model.layers.0.self_attn.q_proj", 64},
                                        {"model.layers.0.self_attn.k_proj", 32},
                                        {"model.layers.0.self_attn.v_proj", 32}};
  auto full = LoadFusedColumnParallel(*store_, parts, 64, Bias::kRequired, {0, 1});
  ASSERT_TRUE(full.ok()) << full.status();
  const int64_t m = 3;
  const auto x = RandomInput(m * 64, 1);
  std::vector<float> y_full(m * 128);
  full->Forward(x.data(), m, y_full.data());

  // The fused layer equals the three projections computed separately.
  int64_t col = 0;
  for (const FusedPart& p : parts) {
    auto w = LoadTensor(*store_, p.name + ".weight", {p.out, 64});
    auto b = LoadTensor(*store_, p.name + ".bias", {p.out});
    ASSERT_TRUE(w.ok() && b.ok());
    std::vector<float> ref(m * p.out);
    kernels::cpu::LinearRef(x.data(), w->data(), b->data(), m, p.out, 64, ref.data());
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < p.out; ++j) EXPECT_NEAR(y_full[i * 128 + col + j], ref[i * p.out + j], 1e-4);
    }
    col += p.out;
  }

  // Rank r of 2 holds q[r half] | k[r half] | v[r half].
  for (int rank = 0; rank < 2; ++rank) {
    auto shard = LoadFusedColumnParallel(*store_, parts, 64, Bias::kRequired, {rank, 2});
    ASSERT_TRUE(shard.ok()) << shard.status();
    ASSERT_EQ(shard->out_features(), 64);
    std::vector<float> y(m * 64);
    shard->Forward(x.data(), m, y.data());
    int64_t full_col = 0, local_col = 0;
    for (const FusedPart& p : parts) {
      const int64_t half = p.out / 2;
      for (int64_t i = 0; i < m; ++i) {
        for (int64_t j = 0; j < half; ++j) {
          EXPECT_NEAR(y[i * 64 + local_col + j], y_full[i * 128 + full_col + rank * half + j], 1e-5);
        }
      }
      full_col += p.out;
      local_col += half;
    }
  }
}

TEST_F(LinearTp, RowParallelPartialsSumToFull) {
  const std::string name = "model.layers.1.mlp.down_proj";  // [64, 160]
  auto full = LoadRowParallel(*store_, name, 64, 160, Bias::kNone, {0, 1});
  ASSERT_TRUE(full.ok()) << full.status();
  const int64_t m = 2;
  const auto x = RandomInput(m * 160, 2);
  std::vector<float> y_full(m * 64), sum(m * 64, 0.0f);
  full->Forward(x.data(), m, y_full.data());
  for (int rank = 0; rank < 4; ++rank) {
    auto shard = LoadRowParallel(*store_, name, 64, 160, Bias::kNone, {rank, 4});
    ASSERT_TRUE(shard.ok()) << shard.status();
    ASSERT_EQ(shard->in_features(), 40);
    // Each rank sees only its 40 input columns.
    std::vector<float> xs(m * 40), y(m * 64);
    for (int64_t i = 0; i < m; ++i) std::copy_n(x.data() + i * 160 + rank * 40, 40, xs.data() + i * 40);
    shard->Forward(xs.data(), m, y.data());
    for (size_t i = 0; i < y.size(); ++i) sum[i] += y[i];
  }
  for (size_t i = 0; i < sum.size(); ++i) EXPECT_NEAR(sum[i], y_full[i], 1e-4);
}

TEST_F(LinearTp, BiasPresentButNotEnabledIsRefused) {
  auto l = LoadColumnParallel(*store_, "model.layers.0.self_attn.q_proj", 64, 64, Bias::kNone, {0, 1});
  ASSERT_FALSE(l.ok());
  EXPECT_NE(l.status().message().find("q_proj.bias"), std::string::npos);
}

}  // namespace
}  // namespace kaon::layers
