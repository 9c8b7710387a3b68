// The start-up memory plan for the CPU backend (PlanCpuBackend, which the
// host-memory check uses) against what the backend really allocated, as its
// allocation counter reports: they must agree within 1 %, for tied and
// untied heads, biases, q/k norms and a context-heavy capacity.
#include <string>

#include "gtest/gtest.h"
#include "server/engine/engine_setup.h"
#include "tests/common/test_paths.h"

namespace kaon {
namespace {

void ExpectPlanMatches(const std::string& dir, const EngineOptions& options) {
  auto parts = LoadEngineParts(dir, options);
  ASSERT_TRUE(parts.ok()) << dir << ": " << parts.status();
  const BackendPlan plan =
      PlanCpuBackend(parts->info, parts->capacity, options.num_threads, options.dtype == "bfloat16");
  const int64_t allocated = parts->model->allocated_bytes();
  ASSERT_GT(allocated, 0);
  const double ratio = static_cast<double>(plan.total()) / static_cast<double>(allocated);
  EXPECT_NEAR(ratio, 1.0, 0.01) << dir << ": planned " << plan.total() << " (weights " << plan.weights << ", KV "
                                << plan.kv_cache << ", workspace " << plan.workspace << "), allocated " << allocated;
}

TEST(CpuMemoryPlan, MatchesWhatTheBackendAllocates) {
  EngineOptions o;
  o.num_threads = 2;
  ExpectPlanMatches(testing::BundledModelDir(), o);
  for (const char* tiny : {"tiny-llama3", "tiny-qwen2", "tiny-qwen3", "tiny-mistral"}) {
    ExpectPlanMatches(testing::TestModelDir(tiny), o);
  }
}

// --dtype bfloat16: matrices at 2 bytes, vectors at 4.
TEST(CpuMemoryPlan, MatchesWithBf16Weights) {
  EngineOptions o;
  o.num_threads = 2;
  o.dtype = "bfloat16";
  ExpectPlanMatches(testing::BundledModelDir(), o);
  for (const char* tiny : {"tiny-llama3", "tiny-qwen2", "tiny-qwen3", "tiny-mistral"}) {
    ExpectPlanMatches(testing::TestModelDir(tiny), o);
  }
}

TEST(CpuMemoryPlan, MatchesForLargeBatchesAndCaches) {
  EngineOptions o;
  o.num_threads = 3;
  o.max_num_batched_tokens = 4096;
  o.max_num_seqs = 64;
  o.num_kv_blocks = 512;
  o.block_size = 32;
  ExpectPlanMatches(testing::TestModelDir("tiny-llama3"), o);
}

TEST(CpuMemoryPlan, AKvCacheTooLargeForTheHostIsANamedError) {
  EngineOptions o;
  o.num_kv_blocks = 1000000000;
  auto parts = LoadEngineParts(testing::BundledModelDir(), o);
  ASSERT_FALSE(parts.ok());
  EXPECT_EQ(parts.status().code(), absl::StatusCode::kResourceExhausted) << parts.status();
  EXPECT_NE(parts.status().message().find("--num-kv-blocks"), std::string::npos) << parts.status();
}

}  // namespace
}  // namespace kaon
