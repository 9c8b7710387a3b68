// --dtype bfloat16 on the CPU (bf16 matrices, fp32 accumulation) against the
// fp32 forward pass, on every bf16 GEMM path this CPU runs: on stories260k
// and every tiny fixture, step 0's logits over the whole vocabulary within
// 1e-2 × the largest |logit| (3e-2 for the fixtures, see below; compared
// through log-probabilities: a logit row less one constant), and stories260k's golden greedy ids for the first
// 16 tokens of every case (llama.cpp's BF16 GGUF reproduces those too).
#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/cpu_isa.h"
#include "nlohmann/json.hpp"
#include "tests/common/test_paths.h"
#include "tests/engine/engine_test_util.h"
#include "tests/engine/next_token_logprobs.h"

namespace kaon {
namespace {

using Json = nlohmann::json;
using kernels::cpu::CpuIsa;

Json ReadJson(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  return Json::parse(in);
}

std::unique_ptr<Engine> MakeEngine(const std::string& dir, const std::string& dtype, CpuIsa isa) {
  EngineConfig c;
  c.options.dtype = dtype;
  c.options.cpu_isa = kernels::cpu::CpuIsaName(isa);
  c.options.max_num_seqs = 4;
  return testing::MakeEngine(dir, c);
}

std::vector<CpuIsa> SupportedPaths() {
  std::vector<CpuIsa> out;
  for (CpuIsa isa : kernels::cpu::kAllCpuIsas) {
    if (kernels::cpu::DetectCpuIsaSupport().Has(isa)) out.push_back(isa);
  }
  return out;
}

// Two log-probability rows are their logits less one constant each, so with
// d = a - b the logit difference is d + c for an unknown c, and the least
// max |d + c| over c, (max d - min d) / 2, is what the rows can show of it.
double LogitError(const std::vector<double>& a, const std::vector<double>& b) {
  double lo = INFINITY, hi = -INFINITY;
  for (size_t i = 0; i < a.size(); ++i) {
    lo = std::min(lo, a[i] - b[i]);
    hi = std::max(hi, a[i] - b[i]);
  }
  return (hi - lo) / 2;
}

class Bf16Weights : public ::testing::TestWithParam<CpuIsa> {};

TEST_P(Bf16Weights, Stories260kGoldenIdsAndLogits) {
  const Json golden = ReadJson(testing::BundledModelDir() + "/golden.json");
  auto fp32 = MakeEngine(testing::BundledModelDir(), "float32", GetParam());
  auto bf16 = MakeEngine(testing::BundledModelDir(), "bfloat16", GetParam());
  ASSERT_NE(fp32, nullptr);
  ASSERT_NE(bf16, nullptr);
  EXPECT_EQ(bf16->device_summary(), std::string("cpu bfloat16 ") + kernels::cpu::CpuIsaName(GetParam()));
  for (const Json& c : golden["cases"]) {
    SCOPED_TRACE(c["prompt"].get<std::string>());
    const auto prompt = c["prompt_token_ids"].get<std::vector<int32_t>>();
    const auto want = c["greedy_token_ids"].get<std::vector<int32_t>>();
    const size_t n = std::min<size_t>(16, want.size());
    auto h = bf16->Submit(testing::Greedy(prompt, static_cast<int64_t>(n)));
    ASSERT_TRUE(h.ok()) << h.status();
    const auto out = testing::Drain(**h);
    ASSERT_EQ(out.error, "");
    EXPECT_EQ(out.ids, std::vector<int32_t>(want.begin(), want.begin() + static_cast<long>(n)));

    auto a = testing::NextTokenLogprobs(*fp32, prompt);
    auto b = testing::NextTokenLogprobs(*bf16, prompt);
    ASSERT_TRUE(a.ok() && b.ok());
    // fp32 logits = fp32 logprobs + C, C from the golden top logit.
    if (!c.contains("top5_logits")) continue;
    const Json& top = c["top5_logits"][0]["top5"][0];
    const double offset = top["logit"].get<double>() - (*a)[top["token_id"].get<size_t>()];
    double max_logit = 0;
    for (double lp : *a) max_logit = std::max(max_logit, std::fabs(lp + offset));
    EXPECT_LE(LogitError(*b, *a), 1e-2 * max_logit);
  }
}

TEST_P(Bf16Weights, TinyFixturesStep0Logits) {
  for (const char* m : {"tiny-llama3", "tiny-qwen2", "tiny-qwen2-sharded", "tiny-qwen3", "tiny-mistral"}) {
    SCOPED_TRACE(m);
    const std::string dir = testing::TestModelDir(m);
    const Json ref = ReadJson(dir + "/reference.json");
    auto bf16 = MakeEngine(dir, "bfloat16", GetParam());
    ASSERT_NE(bf16, nullptr);
    for (const Json& c : ref["cases"]) {
      const auto logits = c["step0_logits"].get<std::vector<double>>();
      double max_logit = 0;
      for (double l : logits) max_logit = std::max(max_logit, std::fabs(l));
      auto got = testing::NextTokenLogprobs(*bf16, c["prompt_token_ids"].get<std::vector<int32_t>>());
      ASSERT_TRUE(got.ok()) << got.status();
      ASSERT_EQ(got->size(), logits.size());
      // 3e-2, not stories260k's 1e-2: these random fixtures' logits are
      // small (|logit| ≤ ~2.7), and rounding their fp32 checkpoints to bf16
      // alone moves them by up to 1.6e-2 of that on the paths that widen
      // the weights exactly and keep x in fp32 (scalar, avx2, avx512), so it
      // is the weights' rounding, not a kernel's; avx512bf16, which also
      // rounds x to bf16 (as llama.cpp's BF16 path does), reaches 2.05e-2.
      EXPECT_LE(LogitError(*got, testing::LogSoftmax(logits)), 3e-2 * max_logit) << c["prompt_token_ids"].dump();
    }
  }
}

INSTANTIATE_TEST_SUITE_P(EverySupportedPath, Bf16Weights, ::testing::ValuesIn(SupportedPaths()),
                         [](const auto& info) { return std::string(kernels::cpu::CpuIsaName(info.param)); });

}  // namespace
}  // namespace kaon
