// The device KV plan kaon makes at start-up (--gpu-memory-utilization),
// checked without a device on a fixture whose sizes are worked out by hand.
#include "gtest/gtest.h"
#include "models/registry.h"
#include "server/engine/engine_setup.h"
#include "tests/common/test_paths.h"

namespace kaon {
namespace {

constexpr int64_t kGiB = int64_t{1} << 30;

// tiny-llama3: vocab 512, hidden 64, intermediate 160, 2 layers, 4 heads and
// 2 KV heads of 16, untied head.
constexpr int64_t kParams = 512 * 64                                   // embed_tokens
                            + 2 * (64 + 64                             // two norms
                                   + 64 * 64 + 2 * (32 * 64) + 64 * 64  // q, k, v, o
                                   + 3 * 160 * 64)                      // gate, up, down
                            + 64                                       // final norm
                            + 512 * 64;                                // lm_head
static_assert(kParams == 151872);

TEST(DevicePlan, KvGetsWhatWeightsActivationsAndReserveLeave) {
  auto info = LoadModelInfo(testing::TestModelDir("tiny-llama3"));
  ASSERT_TRUE(info.ok()) << info.status();
  EngineOptions o;
  o.gpu_memory_utilization = 0.5;
  o.block_size = 16;
  o.max_num_batched_tokens = 256;
  const int64_t total = 4 * kGiB;
  auto plan = PlanDeviceKvCache(*info, o, "bfloat16", /*free=*/total, total, /*max_logits=*/300);
  ASSERT_TRUE(plan.ok()) << plan.status();
  const int64_t weights = kParams * 2;
  const int64_t activations = ActivationBytes(info->config, 256, 300, 2);
  const int64_t per_block = 2 /*K,V*/ * 2 /*layers*/ * 2 /*kv heads*/ * 16 /*dims*/ * 16 /*tokens*/ * 2 /*bytes*/;
  EXPECT_EQ(KvBytesPerBlock(info->config, 16, 2), per_block);
  EXPECT_EQ(plan->num_blocks, (2 * kGiB - weights - activations - kGiB) / per_block);
  EXPECT_EQ(plan->max_model_len, 2048);  // the config's context fits many times over
  EXPECT_NE(plan->summary.find("blocks of 16 tokens"), std::string::npos) << plan->summary;

  // The backend's own buffers come off the KV share, and the device plan
  // of the allocations names every part.
  const int64_t fixed = int64_t{64} << 20;
  auto with_fixed = PlanDeviceKvCache(*info, o, "bfloat16", total, total, 300, fixed);
  ASSERT_TRUE(with_fixed.ok()) << with_fixed.status();
  EXPECT_EQ(with_fixed->num_blocks, (2 * kGiB - weights - activations - kGiB - fixed) / per_block);
  Capacity cap{.max_num_batched_tokens = 256, .max_num_seqs = 44, .max_model_len = 2048, .block_size = 16,
               .num_kv_blocks = with_fixed->num_blocks, .max_prompt_logprob_rows = 256};
  const BackendPlan parts = PlanDeviceBackend(*info, cap, "bfloat16", fixed);
  EXPECT_EQ(parts.weights, weights);
  EXPECT_EQ(parts.kv_cache, with_fixed->num_blocks * per_block);
  EXPECT_EQ(parts.workspace, activations + fixed);

  // float32 doubles every byte count.
  auto fp32 = PlanDeviceKvCache(*info, o, "float32", total, total, 300);
  ASSERT_TRUE(fp32.ok());
  EXPECT_EQ(fp32->num_blocks,
            (2 * kGiB - kParams * 4 - ActivationBytes(info->config, 256, 300, 4) - kGiB) / (2 * per_block));
}

TEST(DevicePlan, ErrorsNameTheFlag) {
  auto info = LoadModelInfo(testing::TestModelDir("tiny-llama3"));
  ASSERT_TRUE(info.ok());
  EngineOptions o;
  o.gpu_memory_utilization = 0.9;
  // Another process holds half the device: 0.9 of it cannot be had.
  auto busy = PlanDeviceKvCache(*info, o, "bfloat16", 2 * kGiB, 4 * kGiB, 300);
  ASSERT_FALSE(busy.ok());
  EXPECT_NE(busy.status().message().find("--gpu-memory-utilization"), std::string::npos) << busy.status();
  EXPECT_NE(busy.status().message().find("free"), std::string::npos) << busy.status();
  // A device too small for the reserve alone.
  auto tiny = PlanDeviceKvCache(*info, o, "bfloat16", kGiB, kGiB, 300);
  ASSERT_FALSE(tiny.ok());
  EXPECT_NE(tiny.status().message().find("--gpu-memory-utilization"), std::string::npos) << tiny.status();
  // Room for 100 blocks (1,600 tokens): an explicit --max-model-len 2048 is
  // refused, while the default context shrinks to what fits.
  const int64_t per_block = KvBytesPerBlock(info->config, 16, 2);
  const int64_t room = kGiB + kParams * 2 + ActivationBytes(info->config, 2048, 300, 2) + 100 * per_block;
  o.gpu_memory_utilization = 1.0;
  auto fits = PlanDeviceKvCache(*info, o, "bfloat16", room, room, 300);
  ASSERT_TRUE(fits.ok()) << fits.status();
  EXPECT_EQ(fits->num_blocks, 100);
  EXPECT_EQ(fits->max_model_len, 1600);
  o.max_model_len = 2048;
  auto len = PlanDeviceKvCache(*info, o, "bfloat16", room, room, 300);
  ASSERT_FALSE(len.ok());
  EXPECT_NE(len.status().message().find("--max-model-len"), std::string::npos) << len.status();
}

}  // namespace
}  // namespace kaon
