// The real kaon and kaon-bench binaries: size flags take vLLM's forms, and a
// malformed, out-of-range or unknown flag gives exactly one readable line on
// stderr and exit code 2 (argparse's, so vLLM's), before any model loads or
// request is sent; an exception escaping start-up is one line and exit 1.
#include <algorithm>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/cli/run_command.h"
#include "tests/common/test_paths.h"

namespace kaon {
namespace {

using testing::RunCommand;

std::string Kaon() { return testing::BinDir() + "/kaon"; }
std::string KaonBench() { return testing::BinDir() + "/kaon-bench"; }

struct FlagCase {
  std::string args;
  std::string line;  // all of stderr
};

void ExpectUsageError(const std::string& binary, const FlagCase& c) {
  const testing::CommandResult r = RunCommand(binary + " " + c.args);
  EXPECT_TRUE(r.exited) << c.args << ": crashed: " << r.err;
  EXPECT_EQ(r.exit_code, 2) << c.args << ": " << r.err;
  EXPECT_EQ(r.err, c.line + "\n") << c.args;
  EXPECT_EQ(r.out, "") << c.args;
}

TEST(KaonFlags, BadValuesAndUnknownFlagsGetOneLine) {
  const std::string gen = "generate " + testing::BundledModelDir() + " --prompt hi ";
  const FlagCase cases[] = {
      {"serve --max-model-len 1x",
       "kaon serve: --max-model-len: \"1x\" is not a size (use 4096, 4k = 4000, 4K = 4096)"},
      {"serve --max-model-len 1.5", "kaon serve: --max-model-len: \"1.5\" is not a whole number"},
      {"serve --max-model-len 1kk",
       "kaon serve: --max-model-len: \"1kk\" is not a size (use 4096, 4k = 4000, 4K = 4096)"},
      {"serve --max-model-len -1k",
       "kaon serve: --max-model-len: -1k (= -1000) is out of range (at least 0)"},
      // Was a 309-digit range: CLI11's NonNegativeNumber bounds are doubles.
      {"serve --max-model-len 99999999999999999999",
       "kaon serve: --max-model-len: 99999999999999999999 is out of range [0, 9223372036854775807]"},
      {"serve --port 70000", "kaon serve: --port: 70000 is out of range [0, 65535]"},
      {"serve --grpc-port -1", "kaon serve: --grpc-port: -1 is out of range [0, 65535]"},
      {"serve --block-size 2K", "kaon serve: --block-size: \"2K\" is not an integer"},
      {"serve --block-size 2048", "kaon serve: --block-size: 2048 is out of range [1, 1024]"},
      {"serve --max-num-seqs 0", "kaon serve: --max-num-seqs: 0 is out of range (at least 1)"},
      {"serve --max-request-bytes 16X",
       "kaon serve: --max-request-bytes: \"16X\" is not a size (use 4096, 4k = 4000, 4K = 4096)"},
      {"serve --engine-step-timeout 0", "kaon serve: --engine-step-timeout: 0 is out of range (above 0)"},
      {"serve --max-mdoel-len 4096", "kaon serve: unknown flag --max-mdoel-len (did you mean --max-model-len?)"},
      // In the order given (CLI11's own message reverses them).
      {"serve --zeta --alpha --mid", "kaon serve: unknown flags --zeta --alpha --mid"},
      {"serve --max-model-len", "kaon serve: --max-model-len: a value is missing"},
      {gen + "--temperature -1", "kaon generate: --temperature: -1 is out of range (at least 0)"},
      {gen + "--top-p 2", "kaon generate: --top-p: 2 is out of range [0, 1]"},
      {gen + "--max-tokens 0", "kaon generate: --max-tokens: 0 is out of range (at least 1)"},
      {gen + "--max-tokens 1.5", "kaon generate: --max-tokens: \"1.5\" is not a whole number"},
      {"throughput " + testing::BundledModelDir() + " --num-prompts 1e3",
       "kaon throughput: --num-prompts: \"1e3\" is not a size (use 4096, 4k = 4000, 4K = 4096)"},
      {"frobnicate",
       "kaon: unknown command frobnicate (commands: serve, generate, throughput, random-model, chat-template, "
       "tokenize)"},
  };
  for (const FlagCase& c : cases) ExpectUsageError(Kaon(), c);
}

TEST(KaonFlags, SizeFormsAreAccepted) {
  // 0.008k = 8 tokens; 0.25K = 256 (stories260k's context is 512); 1K = 1024.
  const auto r = RunCommand(Kaon() + " generate " + testing::BundledModelDir() +
                            " --prompt 'Once upon a time' --temperature 0 --json --max-tokens 0.008k"
                            " --max-model-len 0.25K --max-num-batched-tokens 1K --max-num-seqs 2k"
                            " --num-kv-blocks 0.1k --max-num-queued-requests 1m");
  ASSERT_TRUE(r.exited) << r.err;
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("\"finish_reason\":\"length\""), std::string::npos) << r.out;
  const size_t ids = r.out.find("\"token_ids\":[");
  ASSERT_NE(ids, std::string::npos) << r.out;
  const std::string list = r.out.substr(ids, r.out.find(']', ids) - ids);
  EXPECT_EQ(std::count(list.begin(), list.end(), ','), 7) << "8 tokens from --max-tokens 0.008k: " << r.out;

  // 1K is 1,024, past the model's 512: refused by the engine's own check.
  const auto too_long = RunCommand(Kaon() + " generate " + testing::BundledModelDir() +
                                   " --prompt hi --max-model-len 1K");
  EXPECT_TRUE(too_long.exited);
  EXPECT_NE(too_long.exit_code, 0);
  EXPECT_NE(too_long.err.find("--max-model-len"), std::string::npos) << too_long.err;
  EXPECT_NE(too_long.err.find("1024"), std::string::npos) << "1K is 1024: " << too_long.err;
}

TEST(KaonFlags, HelpStillPrints) {
  const auto r = RunCommand(Kaon() + " serve --help");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_NE(r.out.find("--max-model-len SIZE"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--port INT=8000"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("4K = 4096"), std::string::npos) << "the SIZE footer: " << r.out;
  const auto top = RunCommand(Kaon() + " --help");
  EXPECT_EQ(top.exit_code, 0) << top.err;
  EXPECT_NE(top.out.find("throughput"), std::string::npos) << top.out;
}

// The last resort: an allocation that start-up checks let through (here made
// to fail by a 1 GB address-space limit) is one line and exit 1, not an abort.
TEST(KaonStartup, OutOfMemoryIsOneLineNotAnAbort) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  // The sanitizers reserve terabytes of shadow address space at start-up,
  // so no sanitized binary starts under `ulimit -v`.
  GTEST_SKIP() << "ulimit -v cannot apply to a sanitized binary";
#endif
  const auto r = RunCommand("ulimit -v 1000000; " + Kaon() + " generate " + testing::BundledModelDir() +
                            " --prompt hi --max-tokens 2 --num-kv-blocks 1m");
  EXPECT_TRUE(r.exited) << "killed by a signal (exit " << r.exit_code << "): " << r.err;
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(r.err.rfind("kaon generate: ", 0), 0u) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST(KaonBenchFlags, BadValuesAndUnknownFlagsGetOneLine) {
  // Nothing listens on port 9: a flag error must come before any request.
  const std::string base = "--base-url http://127.0.0.1:9 ";
  const FlagCase cases[] = {
      {base + "--num-prompts 1x",
       "kaon-bench: --num-prompts: \"1x\" is not a size (use 4096, 4k = 4000, 4K = 4096)"},
      {base + "--num-prompts 0", "kaon-bench: --num-prompts: 0 is out of range (at least 1)"},
      {base + "--num-prompts 3G", "kaon-bench: --num-prompts: 3G (= 3221225472) is out of range [1, 2147483647]"},
      {base + "--random-input-len 1.2345k", "kaon-bench: --random-input-len: \"1.2345k\" is not a whole number"},
      {"--port 70000", "kaon-bench: --port: 70000 is out of range [1, 65535]"},
      {base + "--random-range-ratio 1", "kaon-bench: --random-range-ratio: 1 is out of range [0, 1)"},
      {base + "--burstiness 0", "kaon-bench: --burstiness: 0 is out of range (above 0)"},
      {base + "--max-concurency 4", "kaon-bench: unknown flag --max-concurency (did you mean --max-concurrency?)"},
      {base + "--zeta 1 --alpha", "kaon-bench: unknown flags --zeta --alpha"},
      {base + "--seed abc", "kaon-bench: --seed: \"abc\" is not an integer"},
  };
  for (const FlagCase& c : cases) ExpectUsageError(KaonBench(), c);
}

TEST(KaonBenchFlags, HelpStillPrints) {
  const auto r = RunCommand(KaonBench() + " --help");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("--num-prompts SIZE=1000"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("4K = 4096"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace kaon
