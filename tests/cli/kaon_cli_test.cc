// The real `kaon` binary: the acceptance commands of the foundation issue and
// every bad-input path at start-up (one-line error naming the file and field,
// non-zero exit, never a crash).
#include <filesystem>
#include <fstream>
#include <functional>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/cli/model_copy.h"
#include "tests/cli/run_command.h"
#include "tests/common/test_paths.h"

namespace kaon {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using testing::CopyModel;
using testing::ExpectCleanFailure;
using testing::RunCommand;
using testing::ShellQuote;

std::string Kaon() { return testing::BinDir() + "/kaon"; }

Json ReadJson(const std::string& path) { return Json::parse(std::ifstream(path)); }

TEST(KaonGenerate, GoldensFromPromptText) {
  const Json golden = ReadJson(testing::BundledModelDir() + "/golden.json");
  for (const Json& c : golden["cases"]) {
    for (const char* block : {"1", "16"}) {
      const auto r = RunCommand(Kaon() + " generate " + testing::BundledModelDir() + " --prompt " +
                                ShellQuote(c["prompt"].get<std::string>()) +
                                " --max-tokens 128 --temperature 0 --ignore-eos --json --block-size " + block);
      ASSERT_EQ(r.exit_code, 0) << r.err;
      const Json out = Json::parse(r.out);
      EXPECT_EQ(out["prompt_token_ids"], c["prompt_token_ids"]) << c["prompt"];
      EXPECT_EQ(out["token_ids"], c["greedy_token_ids"]) << c["prompt"];
      EXPECT_EQ(out["text"], c["greedy_text"]) << c["prompt"];
      EXPECT_EQ(out["finish_reason"], "length");
    }
  }
}

TEST(KaonGenerate, PromptIdsAndFixtures) {
  const Json ref = ReadJson(testing::TestModelDir("tiny-qwen3") + "/reference.json");
  const Json& c = ref["cases"][1];
  std::string ids;
  for (const Json& id : c["prompt_token_ids"]) {
    if (!ids.empty()) ids.push_back(',');
    ids.append(std::to_string(id.get<int>()));
  }
  const auto r = RunCommand(Kaon() + " generate " + testing::TestModelDir("tiny-qwen3") + " --prompt-ids " + ids +
                            " --max-tokens 32 --temperature 0 --ignore-eos --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Json::parse(r.out)["token_ids"], c["greedy_token_ids"]);
}

// --load-format dummy generates in memory exactly the weights `kaon
// random-model --seed 0` writes, so both give the same greedy tokens; the
// dummy directory has no safetensors at all, proving none were read.
TEST(KaonGenerate, DummyWeightsEqualRandomModelSeedZero) {
  for (const char* fixture : {"tiny-qwen2", "tiny-qwen3", "tiny-llama3"}) {
    const std::string dummy = CopyModel(testing::TestModelDir(fixture), [](const fs::path& dir) {
      for (const auto& e : fs::directory_iterator(dir)) {
        if (e.path().extension() == ".safetensors") fs::remove(e.path());
      }
    });
    const std::string args = " --prompt-ids 1,5,9,17 --max-tokens 12 --temperature 0 --ignore-eos --json";
    const auto d = RunCommand(Kaon() + " generate " + dummy + " --load-format dummy" + args);
    ASSERT_EQ(d.exit_code, 0) << fixture << ": " << d.err;
    const auto missing = RunCommand(Kaon() + " generate " + dummy + args);
    EXPECT_NE(missing.exit_code, 0) << fixture << ": without --load-format dummy the weights are required";

    const std::string written = dummy + "_written";
    const auto w = RunCommand(Kaon() + " random-model --config " + dummy + "/config.json --out " + written +
                              " --tokenizer-from " + dummy);
    ASSERT_EQ(w.exit_code, 0) << w.err;
    const auto f = RunCommand(Kaon() + " generate " + written + args);
    ASSERT_EQ(f.exit_code, 0) << f.err;
    const Json from_dummy = Json::parse(d.out);
    EXPECT_EQ(from_dummy["token_ids"].size(), 12u);
    EXPECT_EQ(from_dummy["token_ids"], Json::parse(f.out)["token_ids"]) << fixture;
    fs::remove_all(dummy);
    fs::remove_all(written);
  }
  const auto bad = RunCommand(Kaon() + " generate " + testing::BundledModelDir() + " --load-format fast --prompt x");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("--load-format"), std::string::npos) << bad.err;
}

TEST(KaonGenerate, SeededSamplingIsReproducible) {
  const std::string cmd = Kaon() + " generate " + testing::BundledModelDir() +
                          " --prompt 'Once upon a time' --max-tokens 40 --temperature 0.8 --top-p 0.9 --seed 7 --json";
  const auto a = RunCommand(cmd), b = RunCommand(cmd);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(Json::parse(a.out)["token_ids"], Json::parse(b.out)["token_ids"]);
  const auto greedy = RunCommand(Kaon() + " generate " + testing::BundledModelDir() +
                                 " --prompt 'Once upon a time' --max-tokens 40 --temperature 0 --json");
  EXPECT_NE(Json::parse(a.out)["token_ids"], Json::parse(greedy.out)["token_ids"]);
}

TEST(KaonGenerate, StopsAtGenerationConfigEos) {
  // Stories end with BOS (id 1), which generation_config.json lists as an end
  // id; long enough greedy runs reach one.
  const auto r = RunCommand(Kaon() + " generate " + testing::BundledModelDir() +
                            " --prompt 'Once upon a time' --max-tokens 400 --temperature 0 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Json out = Json::parse(r.out);
  const auto ids = out["token_ids"].get<std::vector<int>>();
  const auto all = RunCommand(Kaon() + " generate " + testing::BundledModelDir() +
                              " --prompt 'Once upon a time' --max-tokens 400 --temperature 0 --ignore-eos --json");
  const auto full = Json::parse(all.out)["token_ids"].get<std::vector<int>>();
  auto first_end = std::find_if(full.begin(), full.end(), [](int t) { return t == 1 || t == 2; });
  ASSERT_NE(first_end, full.end()) << "the model should end a story within 400 tokens";
  EXPECT_EQ(out["finish_reason"], "stop");
  EXPECT_EQ(ids, std::vector<int>(full.begin(), first_end + 1));
}

TEST(KaonStartup, BadInputsFailCleanly) {
  const std::string gen = " generate ";
  const std::string args = " --prompt hi --max-tokens 4";
  ExpectCleanFailure(RunCommand(Kaon() + gen + "/nonexistent/model" + args), {"/nonexistent/model"});

  ExpectCleanFailure(RunCommand(Kaon() + gen + CopyModel(testing::BundledModelDir(), [](const fs::path& d) {
                                                std::ofstream(d / "config.json") << "{not json";
                                              }) + args),
                     {"config.json", "malformed JSON"});
  ExpectCleanFailure(RunCommand(Kaon() + gen + CopyModel(testing::BundledModelDir(), [](const fs::path& d) {
                                                fs::remove(d / "model.safetensors");
                                              }) + args),
                     {"model.safetensors"});
  // A header that claims more data than the file holds.
  ExpectCleanFailure(RunCommand(Kaon() + gen + CopyModel(testing::BundledModelDir(), [](const fs::path& d) {
                                                fs::resize_file(d / "model.safetensors", 500000);
                                              }) + args),
                     {"model.safetensors"});
  // A header whose first tensor has the wrong dtype.
  ExpectCleanFailure(RunCommand(Kaon() + gen + CopyModel(testing::BundledModelDir(), [](const fs::path& d) {
                                                std::fstream f(d / "model.safetensors",
                                                               std::ios::in | std::ios::out | std::ios::binary);
                                                std::string head(4096, '\0');
                                                f.read(head.data(), head.size());
                                                const size_t at = head.find("\"F32\"");
                                                ASSERT_NE(at, std::string::npos);
                                                f.seekp(at);
                                                f.write("\"F64\"", 5);
                                              }) + args),
                     {"model.safetensors", "F64"});
  ExpectCleanFailure(RunCommand(Kaon() + gen + CopyModel(testing::BundledModelDir(), [](const fs::path& d) {
                                                std::ofstream(d / "tokenizer.json")
                                                    << R"({"model": {"type": "Unigram", "vocab": []}})";
                                              }) + args),
                     {"tokenizer.json", "Unigram"});
  ExpectCleanFailure(RunCommand(Kaon() + gen + CopyModel(testing::BundledModelDir(), [](const fs::path& d) {
                                                fs::remove(d / "tokenizer.json");
                                              }) + args),
                     {"tokenizer.json"});
  ExpectCleanFailure(RunCommand(Kaon() + gen + testing::BundledModelDir() + " --prompt-ids 1,x"), {"--prompt-ids"});
  ExpectCleanFailure(RunCommand(Kaon() + gen + testing::BundledModelDir() + " --prompt-ids 1,600"),
                     {"600", "vocabulary"});
  ExpectCleanFailure(RunCommand(Kaon() + gen + testing::BundledModelDir() + " --max-tokens 4"),
                     {"--prompt"});
  ExpectCleanFailure(RunCommand(Kaon() + gen + testing::BundledModelDir() + " --prompt hi --max-model-len 4096"),
                     {"--max-model-len"});
}

TEST(KaonStartup, FlagErrorsExitNonZero) {
  auto r = RunCommand(Kaon() + " generate " + testing::BundledModelDir() + " --prompt hi --temperature -1");
  EXPECT_TRUE(r.exited);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--temperature"), std::string::npos) << r.err;
  r = RunCommand(Kaon() + " generate " + testing::BundledModelDir() + " --prompt hi --no-such-flag");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--no-such-flag"), std::string::npos) << r.err;
  r = RunCommand(Kaon() + " frobnicate");
  EXPECT_NE(r.exit_code, 0);
  r = RunCommand(Kaon() + " --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("generate"), std::string::npos);
}

// --device: auto falls back to the CPU with the same output; cuda without a
// GPU (or in a build without libkaon_cuda.so) fails with one line naming the
// flag; the CPU takes float32 and bfloat16 and refuses float16.
TEST(KaonStartup, DeviceSelection) {
  const std::string gen = Kaon() + " generate " + testing::BundledModelDir() +
                          " --prompt 'Once upon a time' --max-tokens 16 --temperature 0 --json";
  const auto cpu = RunCommand(gen + " --device cpu");
  ASSERT_EQ(cpu.exit_code, 0) << cpu.err;
  const auto cuda = RunCommand(gen + " --device cuda");
  if (cuda.exit_code == 0) {
    // A machine with a GPU: greedy tokens agree on this tiny model.
    EXPECT_EQ(Json::parse(cuda.out)["token_ids"], Json::parse(cpu.out)["token_ids"]);
  } else {
    ExpectCleanFailure(cuda, {"--device cuda"});
    const auto fallback = RunCommand(gen + " --device auto");
    ASSERT_EQ(fallback.exit_code, 0) << fallback.err;
    EXPECT_EQ(Json::parse(fallback.out)["token_ids"], Json::parse(cpu.out)["token_ids"]);
  }
  ExpectCleanFailure(RunCommand(gen + " --device tpu"), {"--device"});
  // bf16 weights on the CPU: the same greedy ids on this tiny model
  // (golden_test holds every golden case's first 16 ids to this).
  const auto bf16 = RunCommand(gen + " --device cpu --dtype bfloat16");
  ASSERT_EQ(bf16.exit_code, 0) << bf16.err;
  EXPECT_EQ(Json::parse(bf16.out)["token_ids"], Json::parse(cpu.out)["token_ids"]);
  ExpectCleanFailure(RunCommand(gen + " --device cpu --dtype float16"), {"--dtype float16"});
  ExpectCleanFailure(RunCommand(gen + " --dtype float8"), {"--dtype"});
  ExpectCleanFailure(RunCommand(gen + " --tensor-parallel-size 2"), {"--tensor-parallel-size"});
  EXPECT_EQ(RunCommand(gen + " --tensor-parallel-size 1").exit_code, 0);
}

// --cpu-isa: the portable path runs and gives the tiny model's greedy ids;
// an unknown path is one line naming the flag, at start-up. (A path the CPU
// lacks takes the same exit; its message is checked in cpu_gemm_test, as
// every x86-64 CI machine has the scalar path and most have all three.)
TEST(KaonStartup, CpuIsaSelection) {
  const std::string gen = Kaon() + " generate " + testing::BundledModelDir() +
                          " --prompt 'Once upon a time' --max-tokens 16 --temperature 0 --json";
  const auto best = RunCommand(gen);
  ASSERT_EQ(best.exit_code, 0) << best.err;
  const auto scalar = RunCommand(gen + " --cpu-isa scalar");
  ASSERT_EQ(scalar.exit_code, 0) << scalar.err;
  EXPECT_EQ(Json::parse(scalar.out)["token_ids"], Json::parse(best.out)["token_ids"]);
  ExpectCleanFailure(RunCommand(gen + " --cpu-isa sse9"), {"--cpu-isa", "sse9"});
}

TEST(KaonTokenize, EncodesAndDecodesJsonLines) {
  const auto r = RunCommand(Kaon() + " tokenize " + testing::BundledModelDir() + " --jsonl",
                            "{\"text\": \"Once upon a time\"}\n{\"ids\": [1, 403, 407, 261, 378]}\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::istringstream lines(r.out);
  std::string l1, l2;
  std::getline(lines, l1);
  std::getline(lines, l2);
  EXPECT_EQ(Json::parse(l1)["ids"], Json::parse("[1, 403, 407, 261, 378]"));
  EXPECT_EQ(Json::parse(l2)["text"].get<std::string>().find("Once upon a time") != std::string::npos, true) << l2;
}

}  // namespace
}  // namespace kaon
