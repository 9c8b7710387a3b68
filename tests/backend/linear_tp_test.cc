// Tensor-parallel weight slicing at load (models/layers/parallel_linear.h
// over the CPU backend): every rank's share of a column-, fused- or
// row-parallel layer recombines (concatenate / all-reduce sum) into the
// unsplit layer's output, biases included exactly once. The reference reads
// the checkpoint directly and multiplies with the naive kernel.
#include <cstring>
#include <random>

#include "gtest/gtest.h"
#include "kernels/cpu/gemm_ref.h"
#include "models/layers/parallel_linear.h"
#include "server/backend/cpu/cpu_backend.h"
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
    CpuBackendOptions o;
    o.num_threads = 2;
    o.vocab_size = 256;
    o.max_model_len = 64;
    auto b = CpuBackend::Create(o);
    ASSERT_TRUE(b.ok()) << b.status();
    backend_ = std::move(*b);
  }

  // The whole checkpoint tensor as fp32, straight from the file.
  std::vector<float> Read(const std::string& name, const std::vector<int64_t>& shape) {
    auto t = store_->Get(name, shape);
    EXPECT_TRUE(t.ok()) << t.status();
    std::vector<float> out(t->numel());
    ConvertToF32(*t, 0, out.size(), out.data());
    return out;
  }

  // y = x · wᵀ + b through the backend, for m rows.
  std::vector<float> Apply(const LinearWeights& l, const std::vector<float>& x, int64_t m) {
    auto xt = backend_->Allocate(m, l.weight.cols);
    auto yt = backend_->Allocate(m, l.weight.rows);
    EXPECT_TRUE(xt.ok() && yt.ok());
    std::memcpy(xt->data, x.data(), sizeof(float) * x.size());
    EXPECT_TRUE(backend_->Linear(*xt, l.weight, l.bias_or_null(), *yt, m).ok());
    const float* y = static_cast<const float*>(yt->data);
    return std::vector<float>(y, y + m * l.weight.rows);
  }

  std::unique_ptr<WeightStore> store_;
  std::unique_ptr<CpuBackend> backend_;
};

TEST_F(LinearTp, FusedQkvSplitsPerPartAndRank) {
  // tiny-qwen2: 4 heads, 2 kv heads, head_dim 16, hidden 64, q/k/v biases.
  const std::vector<FusedPart> parts = {{"model.layers.0.self_attn.q_proj", 64},
                                        {"model.layers.0.self_attn.k_proj", 32},
                                        {"model.layers.0.self_attn.v_proj", 32}};
  auto full = LoadColumnParallel(*backend_, *store_, parts, 64, Bias::kRequired, {0, 1});
  ASSERT_TRUE(full.ok()) << full.status();
  ASSERT_EQ(full->weight.rows, 128);
  const int64_t m = 3;
  const auto x = RandomInput(m * 64, 1);
  const std::vector<float> y_full = Apply(*full, x, m);
  // The fused layer equals the three projections computed separately.
  int64_t col = 0;
  for (const FusedPart& p : parts) {
    const auto w = Read(p.name + ".weight", {p.out, 64});
    const auto b = Read(p.name + ".bias", {p.out});
    std::vector<float> ref(m * p.out);
    kernels::cpu::LinearRef(x.data(), w.data(), b.data(), m, p.out, 64, ref.data());
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < p.out; ++j) EXPECT_NEAR(y_full[i * 128 + col + j], ref[i * p.out + j], 1e-4);
    }
    col += p.out;
  }
  // Rank r of 2 holds q[r half] | k[r half] | v[r half].
  for (int rank = 0; rank < 2; ++rank) {
    auto shard = LoadColumnParallel(*backend_, *store_, parts, 64, Bias::kRequired, {rank, 2});
    ASSERT_TRUE(shard.ok()) << shard.status();
    ASSERT_EQ(shard->weight.rows, 64);
    const std::vector<float> y = Apply(*shard, x, m);
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
  auto full = LoadRowParallel(*backend_, *store_, name, 64, 160, Bias::kNone, {0, 1});
  ASSERT_TRUE(full.ok()) << full.status();
  const int64_t m = 2;
  const auto x = RandomInput(m * 160, 2);
  const std::vector<float> y_full = Apply(*full, x, m);
  const auto w = Read(name + ".weight", {64, 160});
  std::vector<float> ref(m * 64), sum(m * 64, 0.0f);
  kernels::cpu::LinearRef(x.data(), w.data(), nullptr, m, 64, 160, ref.data());
  for (size_t i = 0; i < ref.size(); ++i) EXPECT_NEAR(y_full[i], ref[i], 1e-4);
  for (int rank = 0; rank < 4; ++rank) {
    auto shard = LoadRowParallel(*backend_, *store_, name, 64, 160, Bias::kNone, {rank, 4});
    ASSERT_TRUE(shard.ok()) << shard.status();
    ASSERT_EQ(shard->weight.cols, 40);
    // Each rank sees only its 40 input columns.
    std::vector<float> xs(m * 40);
    for (int64_t i = 0; i < m; ++i) std::copy_n(x.data() + i * 160 + rank * 40, 40, xs.data() + i * 40);
    const std::vector<float> y = Apply(*shard, xs, m);
    for (size_t i = 0; i < y.size(); ++i) sum[i] += y[i];
  }
  for (size_t i = 0; i < sum.size(); ++i) EXPECT_NEAR(sum[i], y_full[i], 1e-4);
}

TEST_F(LinearTp, BiasPresentButNotEnabledIsRefused) {
  auto l = LoadColumnParallel(*backend_, *store_, {{"model.layers.0.self_attn.q_proj", 64}}, 64, Bias::kNone, {0, 1});
  ASSERT_FALSE(l.ok());
  EXPECT_NE(l.status().message().find("q_proj.bias"), std::string::npos);
}

TEST_F(LinearTp, BackendCountsWhatItLoads) {
  const int64_t before = backend_->allocated_bytes();
  auto l = LoadRowParallel(*backend_, *store_, "model.layers.1.mlp.down_proj", 64, 160, Bias::kNone, {1, 4});
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ(backend_->allocated_bytes() - before, 64 * 40 * static_cast<int64_t>(sizeof(float)));
}

}  // namespace
}  // namespace kaon::layers
