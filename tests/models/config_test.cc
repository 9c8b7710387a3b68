// Loading refuses, with the file and field named, what kaon cannot run
// correctly; and the pieces derived from configs match independent numbers.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <variant>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "models/registry.h"
#include "nlohmann/json.hpp"
#include "server/engine/engine_setup.h"
#include "server/engine/engine.h"
#include "models/rope_frequencies.h"
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

// Loading goes through the serving engine, as `kaon serve` does.
absl::StatusOr<std::unique_ptr<Engine>> Create(const std::string& dir, EngineOptions options = {}) {
  EngineConfig config;
  config.options = std::move(options);
  return Engine::Create(dir, config);
}

std::string ErrorOf(const std::string& dir) {
  auto engine = Create(dir);
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
  auto engine = Create(EditedModel(Tiny("tiny-mistral"), [](Json& j) { j["sliding_window"] = 2048; }));
  EXPECT_TRUE(engine.ok()) << engine.status();
  // Qwen's window is off unless use_sliding_window is true.
  engine = Create(EditedModel(Tiny("tiny-qwen2"), [](Json& j) { j["sliding_window"] = 128; }));
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

// A config of the largest real shapes: every range check admits it.
Json Llama405B() {
  return Json::parse(R"({
    "architectures": ["LlamaForCausalLM"], "vocab_size": 128256, "hidden_size": 16384,
    "intermediate_size": 53248, "num_hidden_layers": 126, "num_attention_heads": 128,
    "num_key_value_heads": 8, "max_position_embeddings": 131072, "bos_token_id": 128000,
    "eos_token_id": [128001, 128008, 128009], "rope_theta": 500000.0,
    "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                     "original_max_position_embeddings": 8192}})");
}

std::string ParseError(const Json& j) {
  auto c = ParseCommonConfig(j, "config.json");
  return c.ok() ? "" : std::string(c.status().message());
}

TEST(ModelConfigLimits, RealModelsPass) {
  EXPECT_EQ(ParseError(Llama405B()), "");
  Json qwen = Llama405B();
  qwen["vocab_size"] = 152064;
  EXPECT_EQ(ParseError(qwen), "");
  Json scout = Llama405B();  // Llama 4 Scout's 10M context
  scout["max_position_embeddings"] = 10485760;
  EXPECT_EQ(ParseError(scout), "");
}

TEST(ModelConfigLimits, EverySizeAtItsBoundPassesAndAboveIsRefused) {
  using L = ConfigLimits;
  struct Case {
    const char* field;
    int64_t bound;
  };
  for (const Case& c : {Case{"vocab_size", L::kMaxVocabSize}, Case{"hidden_size", L::kMaxHiddenSize},
                        Case{"intermediate_size", L::kMaxIntermediateSize}, Case{"num_hidden_layers", L::kMaxLayers},
                        Case{"max_position_embeddings", L::kMaxPositionEmbeddings}}) {
    SCOPED_TRACE(c.field);
    Json j = Llama405B();
    j["head_dim"] = 128;  // hidden_size no longer derives it
    j[c.field] = c.bound;
    EXPECT_EQ(ParseError(j), "");
    j[c.field] = c.bound + 1;
    EXPECT_EQ(ParseError(j), absl::StrCat("config.json: field \"", c.field, "\" must be at most ", c.bound, ", got ",
                                          c.bound + 1));
  }
  Json j = Llama405B();
  j["hidden_size"] = 10000000000000;
  EXPECT_EQ(ParseError(j), "config.json: field \"hidden_size\" must be at most 1048576, got 10000000000000");
  j = Llama405B();
  j["vocab_size"] = 1e30;  // an integer-valued float out of int64's range
  EXPECT_NE(ParseError(j).find("\"vocab_size\" is too large"), std::string::npos) << ParseError(j);
  j["vocab_size"] = Json(uint64_t{18446744073709551615u});
  EXPECT_NE(ParseError(j).find("\"vocab_size\" is too large"), std::string::npos) << ParseError(j);
}

TEST(ModelConfigLimits, HeadsAndHeadDim) {
  Json j = Llama405B();
  j["num_attention_heads"] = ConfigLimits::kMaxHeads;
  j["num_key_value_heads"] = ConfigLimits::kMaxHeads;
  j["head_dim"] = 64;  // 2^14 x 64 = 2^20, the q projection's bound
  EXPECT_EQ(ParseError(j), "");
  j["num_attention_heads"] = ConfigLimits::kMaxHeads + 2;
  EXPECT_NE(ParseError(j).find("\"num_attention_heads\" must be at most 16384"), std::string::npos);
  j = Llama405B();
  j["head_dim"] = ConfigLimits::kMaxHeadDim;
  j["num_attention_heads"] = 128;  // 128 x 8192 = 2^20
  EXPECT_EQ(ParseError(j), "");
  j["head_dim"] = ConfigLimits::kMaxHeadDim + 2;
  EXPECT_NE(ParseError(j).find("\"head_dim\" must be at most 8192"), std::string::npos) << ParseError(j);
  j["head_dim"] = ConfigLimits::kMaxHeadDim;
  j["num_attention_heads"] = 256;
  j["num_key_value_heads"] = 8;
  EXPECT_NE(ParseError(j).find("\"head_dim\" times num_attention_heads"), std::string::npos) << ParseError(j);
}

TEST(ModelConfigLimits, RopeTokenIdsAndFloats) {
  Json j = Llama405B();
  j["rope_scaling"]["original_max_position_embeddings"] = 1e30;
  EXPECT_NE(ParseError(j).find("\"rope_scaling.original_max_position_embeddings\" must be between 1 and 268435456"),
            std::string::npos)
      << ParseError(j);
  j["rope_scaling"]["original_max_position_embeddings"] = ConfigLimits::kMaxPositionEmbeddings;
  EXPECT_EQ(ParseError(j), "");
  j = Llama405B();
  j["bos_token_id"] = 2147483647;
  EXPECT_NE(ParseError(j).find("\"bos_token_id\" 2147483647 is outside the vocabulary"), std::string::npos);
  j["bos_token_id"] = -1;
  EXPECT_NE(ParseError(j).find("\"bos_token_id\""), std::string::npos);
  j = Llama405B();
  j["eos_token_id"] = Json::array();
  for (int i = 0; i <= 1024; ++i) j["eos_token_id"].push_back(i);
  EXPECT_NE(ParseError(j).find("\"eos_token_id\" lists 1025 ids, more than 1024"), std::string::npos);
  j = Llama405B();
  j["rope_theta"] = std::numeric_limits<double>::infinity();
  EXPECT_NE(ParseError(j).find("\"rope_theta\""), std::string::npos);
}

// The config's claim about the checkpoint is checked the other way too:
// tensors the model does not read are refused, as llama.cpp's converter does.
TEST(ModelConfigRefusal, TensorsTheConfigDoesNotUse) {
  ExpectError(EditedModel(kLlama, [](Json& j) { j["num_hidden_layers"] = 4; }),
              {"model.safetensors: tensor \"model.layers.4.", "is not used by LlamaForCausalLM with num_hidden_layers 4",
               "more unused tensors", "is config.json from another model?"});
  // The Qwen3 fixture read as Llama leaves its q/k norms unread.
  ExpectError(EditedModel(Tiny("tiny-qwen3"), [](Json& j) { j["architectures"] = {"LlamaForCausalLM"}; }),
              {"model.safetensors: tensor \"model.layers.0.self_attn.k_norm.weight\" is not used by LlamaForCausalLM ("});
}

// Start-up compares what the CPU backend will allocate with the host's
// memory before allocating any of it; a test fakes the host.
HostMemorySource FakeHost(int64_t bytes) {
  return [bytes]() -> absl::StatusOr<HostMemory> { return HostMemory{bytes, "a fake machine"}; };
}

constexpr int64_t kMiB = int64_t{1} << 20;

TEST(ModelMemory, RefusedOnASmallMachineLoadsOnALargeOne) {
  EngineOptions o;
  o.host_memory = FakeHost(kMiB);
  auto parts = LoadEngineParts(kLlama, o);
  ASSERT_FALSE(parts.ok());
  EXPECT_EQ(parts.status().code(), absl::StatusCode::kResourceExhausted);
  const std::string msg(parts.status().message());
  for (const char* f : {"the model needs", "for weights (fp32; config.json: hidden_size 64, intermediate_size 172, "
                        "num_hidden_layers 5, vocab_size 512)", "for KV cache (", "but only 1.00 MiB are available (a fake machine)"}) {
    EXPECT_NE(msg.find(f), std::string::npos) << f << " not in: " << msg;
  }
  EXPECT_EQ(msg.find('\n'), std::string::npos);
  o.host_memory = FakeHost(1024 * kMiB);
  EXPECT_TRUE(LoadEngineParts(kLlama, o).ok());
  // --load-format dummy also holds the generated checkpoint while loading.
  o.host_memory = FakeHost(kMiB);
  o.dummy_weights = true;
  parts = LoadEngineParts(kLlama, o);
  ASSERT_FALSE(parts.ok());
  EXPECT_NE(parts.status().message().find("for generated weights (--load-format dummy"), std::string::npos)
      << parts.status();
}

TEST(ModelMemory, AHugeContextIsRefusedBeforeTheKvCacheIsAllocated) {
  // The default cache holds at least one full context: 2^28 tokens of
  // stories260k's 1280 bytes per token (fp32 K and V) is 320 GiB.
  const std::string dir = EditedModel(kLlama, [](Json& j) { j["max_position_embeddings"] = ConfigLimits::kMaxPositionEmbeddings; });
  EngineOptions o;
  o.host_memory = FakeHost(64 * 1024 * kMiB);
  auto parts = LoadEngineParts(dir, o);
  ASSERT_FALSE(parts.ok());
  EXPECT_NE(parts.status().message().find("320 GiB for KV cache (16777216 blocks of 16 tokens, room for a context of "
                                          "config.json's max_position_embeddings 268435456)"),
            std::string::npos)
      << parts.status();
  EXPECT_NE(parts.status().message().find("lower --max-model-len"), std::string::npos);
  o.max_model_len = 4096;
  EXPECT_TRUE(LoadEngineParts(dir, o).ok());
}

TEST(ModelMemory, AbsurdFlagsCannotOverflowTheEstimate) {
  EngineOptions o;
  o.host_memory = FakeHost(1024 * kMiB);
  o.max_num_seqs = int64_t{1} << 62;
  o.max_num_batched_tokens = int64_t{1} << 62;
  auto parts = LoadEngineParts(kLlama, o);
  ASSERT_FALSE(parts.ok());
  EXPECT_EQ(parts.status().code(), absl::StatusCode::kResourceExhausted) << parts.status();
  EXPECT_NE(parts.status().message().find("more than 8 EiB"), std::string::npos) << parts.status();
  o = EngineOptions{};
  o.num_kv_blocks = int64_t{1} << 31;
  parts = LoadEngineParts(kLlama, o);
  ASSERT_FALSE(parts.ok());
  EXPECT_NE(parts.status().message().find("--num-kv-blocks must be at most 2147483647"), std::string::npos);
  o.num_kv_blocks = int64_t{1} << 30;  // allowed, but 10 TiB of KV cache
  o.host_memory = FakeHost(1024 * kMiB);
  parts = LoadEngineParts(kLlama, o);
  ASSERT_FALSE(parts.ok());
  EXPECT_NE(parts.status().message().find("--num-kv-blocks 1073741824"), std::string::npos) << parts.status();
  o = EngineOptions{};
  o.num_threads = 100000;
  parts = LoadEngineParts(kLlama, o);
  ASSERT_FALSE(parts.ok());
  EXPECT_NE(parts.status().message().find("--threads must be at most"), std::string::npos);
}

TEST(ModelConfigRefusal, EngineFlags) {
  EngineOptions o;
  o.max_model_len = 100000;
  auto engine = Create(kLlama, o);
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
  auto engine = Create(dir);
  ASSERT_TRUE(engine.ok()) << engine.status();
  // All of a handle's events, concatenated.
  struct Result {
    std::vector<int32_t> ids;
    FinishReason finish = FinishReason::kNone;
    std::variant<std::monostate, int32_t, std::string> stop_reason;
  };
  auto run = [&](const GenerationRequest& r) {
    Result out;
    auto h = (*engine)->Submit(r);
    EXPECT_TRUE(h.ok()) << h.status();
    if (!h.ok()) return out;
    while (auto ev = (*h)->Next()) {
      EXPECT_EQ(ev->error, "");
      out.ids.insert(out.ids.end(), ev->token_ids.begin(), ev->token_ids.end());
      if (ev->finished()) {
        out.finish = ev->finish_reason;
        out.stop_reason = ev->stop_reason;
      }
    }
    return out;
  };
  GenerationRequest r;
  r.prompt_ids = c["prompt_token_ids"].get<std::vector<int32_t>>();
  r.params.max_tokens = 128;
  r.params.temperature = 0;
  Result result = run(r);
  EXPECT_EQ(result.finish, FinishReason::kStop);
  EXPECT_EQ(result.stop_reason, (std::variant<std::monostate, int32_t, std::string>(stop_id)));
  EXPECT_EQ(result.ids, std::vector<int32_t>(ids.begin(), ids.begin() + first + 1));
  // ignore_eos runs on to max_tokens.
  r.params.ignore_eos = true;
  result = run(r);
  EXPECT_EQ(result.ids, ids);
  EXPECT_EQ(result.finish, FinishReason::kLength);
}

}  // namespace
}  // namespace kaon
