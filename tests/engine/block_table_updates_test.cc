// The runner's block-table updates (ForwardBatch::block_table_updates), as a
// device backend consumes them: a mirror that starts empty and only ever
// applies each step's (index, block id) pairs with the CPU twin of the
// device kernel, or copies the table whole when the batch says -1, must
// hold every block a scheduled sequence reads, through prefills, decodes,
// preemption (rows reused) and many concurrent requests.
#include <memory>
#include <mutex>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/index_ops.h"
#include "server/engine/engine_setup.h"
#include "tests/common/test_paths.h"
#include "tests/engine/engine_test_util.h"

namespace kaon {
namespace {

struct MirrorStats {
  std::mutex mu;
  int64_t steps = 0, whole_steps = 0, updates = 0, mismatches = 0, max_updates_per_decode_seq = 0;
};

// Forwards to the CPU model after checking the mirror against the table.
class MirrorModel : public CausalLM {
 public:
  MirrorModel(std::unique_ptr<CausalLM> inner, const Capacity& cap, MirrorStats* stats)
      : inner_(std::move(inner)), width_(cap.max_blocks_per_seq()), block_size_(cap.block_size),
        mirror_(cap.max_num_seqs * cap.max_blocks_per_seq(), -7), stats_(stats) {}
  const ModelConfig& config() const override { return inner_->config(); }
  std::string device_name() const override { return inner_->device_name(); }
  int64_t allocated_bytes() const override { return inner_->allocated_bytes(); }
  absl::Status Sample(int32_t v, std::span<const SamplingRow> rows, SampleResult* out) override {
    return inner_->Sample(v, rows, out);
  }
  absl::Status Logprobs(int64_t row, int32_t token, int32_t k, float* lp, std::vector<TokenLogprob>* top) override {
    return inner_->Logprobs(row, token, k, lp, top);
  }
  absl::Status Forward(const ForwardBatch& b) override {
    std::lock_guard<std::mutex> lock(stats_->mu);
    ++stats_->steps;
    if (b.num_block_table_updates < 0) {
      ++stats_->whole_steps;
      mirror_.assign(b.attn.block_table, b.attn.block_table + mirror_.size());
    } else {
      stats_->updates += b.num_block_table_updates;
      EXPECT_TRUE(kernels::cpu::ApplyTableUpdates(b.block_table_updates, b.num_block_table_updates, mirror_.data(),
                                                  static_cast<int64_t>(mirror_.size()))
                      .ok());
    }
    int64_t decodes = 0;
    for (int64_t s = 0; s < b.attn.num_seqs; ++s) {
      const int64_t row = b.attn.block_table_rows[s];
      const int64_t used = (b.attn.seq_lens[s] + block_size_ - 1) / block_size_;
      for (int64_t j = 0; j < used; ++j) {
        if (mirror_[row * width_ + j] != b.attn.block_table[row * width_ + j]) ++stats_->mismatches;
      }
      decodes += b.attn.query_start_loc[s + 1] - b.attn.query_start_loc[s] == 1;
    }
    // A step of decodes only adds at most one block per sequence.
    if (decodes == b.attn.num_seqs && b.num_block_table_updates > b.attn.num_seqs) {
      stats_->max_updates_per_decode_seq = b.num_block_table_updates;
    }
    return inner_->Forward(b);
  }

 private:
  std::unique_ptr<CausalLM> inner_;
  int64_t width_, block_size_;
  std::vector<int32_t> mirror_;
  MirrorStats* stats_;
};

TEST(BlockTableUpdates, AMirrorFedOnlyTheUpdatesHoldsEveryBlockRead) {
  MirrorStats stats;
  EngineConfig config;
  config.options.num_threads = 2;
  config.options.block_size = 4;
  config.options.max_num_seqs = 4;
  config.options.max_num_batched_tokens = 48;
  // Few blocks: long requests preempt each other, so rows are freed and
  // reused by other requests.
  config.options.num_kv_blocks = 40;
  config.options.model_loader = [&stats](const std::string& dir, const ModelInfo& info,
                                         const Capacity& cap) -> absl::StatusOr<std::unique_ptr<CausalLM>> {
    auto m = LoadCpuModel(dir, info, cap, 2);
    if (!m.ok()) return m.status();
    return std::unique_ptr<CausalLM>(new MirrorModel(std::move(*m), cap, &stats));
  };
  auto engine = testing::MakeEngine(testing::BundledModelDir(), config);
  ASSERT_NE(engine, nullptr);
  std::vector<std::unique_ptr<RequestHandle>> handles;
  for (int i = 0; i < 10; ++i) {
    std::vector<int32_t> prompt;
    for (int t = 0; t < 3 + 7 * i % 23; ++t) prompt.push_back(1 + (t * 31 + i) % 400);
    auto h = engine->Submit(testing::Greedy(prompt, 20 + 5 * (i % 4)));
    ASSERT_TRUE(h.ok()) << h.status();
    handles.push_back(std::move(*h));
  }
  for (auto& h : handles) {
    const testing::Collected c = testing::Drain(*h);
    EXPECT_TRUE(c.error.empty()) << c.error;
  }
  std::lock_guard<std::mutex> lock(stats.mu);
  EXPECT_GT(stats.steps, 20);
  EXPECT_EQ(stats.whole_steps, 1);  // the first step only: nothing failed
  EXPECT_GT(stats.updates, 40);     // more entries than the cache has blocks: rows were reused
  EXPECT_EQ(stats.mismatches, 0);
  EXPECT_EQ(stats.max_updates_per_decode_seq, 0);
}

}  // namespace
}  // namespace kaon
