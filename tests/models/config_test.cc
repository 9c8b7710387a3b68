// Loading refuses, with the file and field named, what kaon cannot run
// correctly; and the pieces derived from configs match independent numbers.
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include "gtest/gtest.h"
#include "models/registry.h"
#include "nlohmann/json.hpp"
#include "server/engine/offline_engine.h"
#include "server/runtime/rope_frequencies.h"
#include "tests/common/test_paths.h"

namespace kaon {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

// A copy of a model directory whose config.json has been edited.
std::string EditedModel(const std::string& src, const std::function<void(Json&)>& edit,
                        const std::string& file = "config.json") {
  static int counter = 0;
  const fs::path dir = fs::path(::testing::TempDir()) /
                       ("kaon_cfg_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
  fs::remove_all(dir);
  fs::create_directories(dir);
  for (const auto& e : fs::directory_iterator(src)) fs::copy_file(e.path(), dir / e.path().filename());
  fs::permissions(dir / file, fs::perms::owner_write, fs::perm_options::add);
  Json j = Json::parse(std::ifstream(dir / file));
  edit(j);
  std::ofstream(dir / file) << j.dump(2);
  return dir.string();
}

std::string ErrorOf(const std::string& dir) {
  auto engine = OfflineEngine::Create(dir, EngineOptions{});
  EXPECT_FALSE(engine.ok()) << "loading " << dir << " should fail";
  return engine.ok() ? "" : std::string(engine.status().message());
}

void ExpectError(const std::string& dir, const std::vector<std::string>& fragments) {
  const std::string msg = ErrorOf(dir);
  for (const std::string& f : fragments) EXPECT_NE(msg.find(f), std::string::npos) << "\"" << f << "\" not in: " << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << "error must be one line: " << msg;
}

const std::string kLlama = testing::BundledModelDir();
std::string Tiny(const char* name) { return testing::TestModelDir(name); }

TEST(ModelConfigRefusal, MissingConfigFile) {
  ExpectError(testing::SourceDir() + "/tests/data", {"config.json", "no such file"});
}

TEST(ModelConfigRefusal, MalformedJson) {
  const std::string dir = EditedModel(kLlama, [](Json&) {});
  std::ofstream(dir + "/config.json") << "{\"architectures\": [\"LlamaForCausalLM\",";
  ExpectError(dir, {"config.json", "malformed JSON"});
}

TEST(ModelConfigRefusal, UnknownArchitecture) {
  ExpectError(EditedModel(kLlama, [](Json& j) { j["architectures"] = {"GPT2LMHeadModel"}; }),
              {"config.json", "GPT2LMHeadModel", "not supported", "LlamaForCausalLM"});
}

TEST(ModelConfigRefusal, ActiveSlidingWindowMistral) {
  ExpectError(EditedModel(Tiny("tiny-mistral"), [](Json& j) { j["sliding_window"] = 1024; }),
              {"config.json", "sliding_window", "not supported"});
}

TEST(ModelConfigRefusal, InactiveSlidingWindowIsAccepted) {
  // A window as long as the context never slides.
  auto engine = OfflineEngine::Create(
      EditedModel(Tiny("tiny-mistral"), [](Json& j) { j["sliding_window"] = 2048; }), EngineOptions{});
  EXPECT_TRUE(engine.ok()) << engine.status();
  // Qwen's window is off unless use_sliding_window is true.
  engine = OfflineEngine::Create(EditedModel(Tiny("tiny-qwen2"), [](Json& j) { j["sliding_window"] = 128; }),
                                 EngineOptions{});
  EXPECT_TRUE(engine.ok()) << engine.status();
}

TEST(ModelConfigRefusal, UseSlidingWindowQwen) {
  for (const char* m : {"tiny-qwen2", "tiny-qwen3"}) {
    ExpectError(EditedModel(Tiny(m),
                            [](Json& j) {
                              j["use_sliding_window"] = true;
                              j["sliding_window"] = 512;
                            }),
                {"config.json", "sliding_window", "not supported"});
  }
}

TEST(ModelConfigRefusal, UnsupportedRopeScaling) {
  for (const char* type : {"yarn", "dynamic", "longrope", "su"}) {
    ExpectError(EditedModel(kLlama, [&](Json& j) { j["rope_scaling"] = {{"rope_type", type}, {"factor", 4.0}}; }),
                {"config.json", "rope_scaling.rope_type", type, "not supported"});
  }
  // The legacy "type" key is read too.
  ExpectError(EditedModel(kLlama, [&](Json& j) { j["rope_scaling"] = {{"type", "yarn"}, {"factor", 4.0}}; }),
              {"rope_scaling.rope_type", "yarn"});
}

TEST(ModelConfigRefusal, QuantizationConfig) {
  ExpectError(EditedModel(kLlama, [](Json& j) { j["quantization_config"] = {{"quant_method", "awq"}}; }),
              {"config.json", "quantization_config", "not supported"});
}

TEST(ModelConfigRefusal, MlpBias) {
  ExpectError(EditedModel(kLlama, [](Json& j) { j["mlp_bias"] = true; }), {"config.json", "mlp_bias"});
}

TEST(ModelConfigRefusal, Activation) {
  ExpectError(EditedModel(kLlama, [](Json& j) { j["hidden_act"] = "gelu"; }), {"hidden_act", "gelu"});
}

TEST(ModelConfigRefusal, MissingAndInvalidFields) {
  ExpectError(EditedModel(kLlama, [](Json& j) { j.erase("hidden_size"); }), {"config.json", "hidden_size", "missing"});
  ExpectError(EditedModel(kLlama, [](Json& j) { j["num_key_value_heads"] = 3; }), {"num_key_value_heads"});
  ExpectError(EditedModel(kLlama, [](Json& j) { j["vocab_size"] = "512"; }), {"vocab_size", "integer"});
  ExpectError(EditedModel(kLlama, [](Json& j) { j["num_hidden_layers"] = -1; }), {"num_hidden_layers", "positive"});
  ExpectError(EditedModel(kLlama, [](Json& j) { j["architectures"] = Json::array(); }), {"architectures"});
  ExpectError(EditedModel(kLlama, [](Json& j) { j["eos_token_id"] = 100000; }), {"eos_token_id", "vocabulary"});
}

TEST(ModelConfigRefusal, GenerationConfigErrors) {
  ExpectError(EditedModel(
                  kLlama, [](Json& j) { j["eos_token_id"] = "two"; }, "generation_config.json"),
              {"generation_config.json", "eos_token_id"});
  const std::string dir = EditedModel(kLlama, [](Json&) {});
  std::ofstream(dir + "/generation_config.json") << "{";
  ExpectError(dir, {"generation_config.json", "malformed JSON"});
}

TEST(ModelConfigRefusal, WeightsThatDoNotMatchTheConfig) {
  // One layer more than the checkpoint has: the missing tensor is named.
  ExpectError(EditedModel(kLlama, [](Json& j) { j["num_hidden_layers"] = 6; }), {"model.layers.5."});
  // A wider model than the checkpoint: the shape mismatch is named.
  ExpectError(EditedModel(kLlama, [](Json& j) { j["intermediate_size"] = 256; }),
              {"model.safetensors", "mlp.gate_proj.weight", "[172, 64]", "[256, 64]"});
  // Qwen3 needs q/k norms that a Llama checkpoint lacks.
  ExpectError(EditedModel(Tiny("tiny-llama3"), [](Json& j) { j["architectures"] = {"Qwen3ForCausalLM"}; }),
              {"q_norm.weight"});
  // attention_bias promises biases the checkpoint does not have.
  ExpectError(EditedModel(kLlama, [](Json& j) { j["attention_bias"] = true; }), {"q_proj.bias"});
  // Untied head without lm_head.weight.
  ExpectError(EditedModel(kLlama, [](Json& j) { j["tie_word_embeddings"] = false; }), {"lm_head.weight"});
  // Biases in the checkpoint that the config does not enable are refused, not dropped.
  ExpectError(EditedModel(Tiny("tiny-qwen2"), [](Json& j) { j["architectures"] = {"LlamaForCausalLM"}; }),
              {"q_proj.bias"});
}

TEST(ModelConfigRefusal, EngineFlags) {
  EngineOptions o;
  o.max_model_len = 100000;
  auto engine = OfflineEngine::Create(kLlama, o);
  ASSERT_FALSE(engine.ok());
  EXPECT_NE(engine.status().message().find("--max-model-len"), std::string::npos);
}

TEST(ModelConfig, FamiliesAndDerivedFields) {
  auto qwen2 = LoadModelInfo(Tiny("tiny-qwen2"));
  ASSERT_TRUE(qwen2.ok()) << qwen2.status();
  EXPECT_EQ(qwen2->config.head_dim, 16);  // no head_dim key: hidden / heads
  EXPECT_TRUE(qwen2->config.qkv_bias);
  EXPECT_TRUE(qwen2->config.tie_word_embeddings);
  auto qwen3 = LoadModelInfo(Tiny("tiny-qwen3"));
  ASSERT_TRUE(qwen3.ok()) << qwen3.status();
  EXPECT_EQ(qwen3->config.head_dim, 32);
  EXPECT_TRUE(qwen3->config.qk_norm);
  auto stories = LoadModelInfo(kLlama);
  ASSERT_TRUE(stories.ok()) << stories.status();
  // config.json's eos (2) plus generation_config.json's list [2, 1].
  EXPECT_EQ(stories->config.eos_token_ids, (std::vector<int32_t>{2, 1}));
  EXPECT_EQ(stories->config.num_kv_heads, 4);
}

TEST(RopeFrequencies, Llama3ScalingMatchesFixtureTable) {
  // Values from tests/data/models/README.md (transformers' llama3 rule).
  auto info = LoadModelInfo(Tiny("tiny-llama3"));
  ASSERT_TRUE(info.ok()) << info.status();
  const std::vector<double> inv = ComputeRopeInvFreq(info->config);
  ASSERT_EQ(inv.size(), 8u);
  EXPECT_NEAR(inv[0], 1.0, 1e-12);
  EXPECT_NEAR(inv[1], 0.079403, 1e-6);
  EXPECT_NEAR(inv[1], 0.193923 / 2.44226, 1e-6);
  EXPECT_NEAR(inv[2], 0.037606 / 8, 1e-7);
}

TEST(RopeFrequencies, LinearScalingDividesEveryFrequency) {
  auto info = LoadModelInfo(EditedModel(
      kLlama, [](Json& j) { j["rope_scaling"] = {{"type", "linear"}, {"factor", 4.0}}; }));
  ASSERT_TRUE(info.ok()) << info.status();
  const std::vector<double> inv = ComputeRopeInvFreq(info->config);
  // head_dim 8, theta 1e4: 1, 1e4^-0.25, 1e4^-0.5, 1e4^-0.75, each / 4.
  EXPECT_NEAR(inv[0], 0.25, 1e-12);
  EXPECT_NEAR(inv[1], 0.1 / 4, 1e-12);
  EXPECT_NEAR(inv[3], 0.001 / 4, 1e-12);
}

TEST(GenerationConfig, StopsAtItsEosIds) {
  // With an end id taken from the golden path, greedy generation stops right
  // after that token's first appearance, with finish_reason "stop".
  const nlohmann::json golden =
      nlohmann::json::parse(std::ifstream(testing::BundledModelDir() + "/golden.json"));
  const auto& c = golden["cases"][0];
  const auto ids = c["greedy_token_ids"].get<std::vector<int32_t>>();
  const int32_t stop_id = ids[20];
  const size_t first = std::find(ids.begin(), ids.end(), stop_id) - ids.begin();
  const std::string dir = EditedModel(kLlama, [&](Json& j) { j["eos_token_id"] = {stop_id}; },
                                      "generation_config.json");
  auto engine = OfflineEngine::Create(dir, EngineOptions{});
  ASSERT_TRUE(engine.ok()) << engine.status();
  GenerateRequest r;
  r.prompt_ids = c["prompt_token_ids"].get<std::vector<int32_t>>();
  r.max_tokens = 128;
  r.sampling.temperature = 0;
  auto result = (*engine)->Generate(r);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->finish_reason, "stop");
  EXPECT_EQ(result->token_ids, std::vector<int32_t>(ids.begin(), ids.begin() + first + 1));
  // ignore_eos runs on to max_tokens.
  r.ignore_eos = true;
  result = (*engine)->Generate(r);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->token_ids, ids);
  EXPECT_EQ(result->finish_reason, "length");
}

}  // namespace
}  // namespace kaon
