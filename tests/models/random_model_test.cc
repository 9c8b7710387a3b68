#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/cli/random_model_command.h"
#include "server/engine/engine.h"
#include "server/loading/safetensors.h"
#include "server/loading/safetensors_writer.h"
#include "tests/common/test_paths.h"
#include "tests/common/temp_dir.h"
#include "tests/engine/next_token_logprobs.h"

namespace kaon {
namespace {

namespace fs = std::filesystem;

using testing::TempDir;

std::string ReadBytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

float FromBits(uint16_t bf16) {
  const uint32_t bits = static_cast<uint32_t>(bf16) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

std::vector<float> Values(const TensorView& t) {
  std::vector<float> out(static_cast<size_t>(t.numel()));
  ConvertToF32(t, 0, out.size(), out.data());
  return out;
}

// ---------------------------------------------------------------------------
// Writer

TEST(SafetensorsWriterTest, Bf16RoundsToNearestEven) {
  EXPECT_EQ(FloatToBF16Bits(1.0f), 0x3f80);
  EXPECT_EQ(FloatToBF16Bits(1.0f + 0x1p-8f), 0x3f80);              // tie, even below
  EXPECT_EQ(FloatToBF16Bits(1.0f + 3 * 0x1p-8f), 0x3f82);          // tie, even above
  EXPECT_EQ(FloatToBF16Bits(1.0f + 0x1p-8f + 0x1p-16f), 0x3f81);   // above half
  EXPECT_EQ(FloatToBF16Bits(-2.5f), 0xc020);
  EXPECT_EQ(FloatToBF16Bits(std::numeric_limits<float>::max()), 0x7f80);  // rounds to inf
  EXPECT_EQ(FloatToBF16Bits(-std::numeric_limits<float>::infinity()), 0xff80);
  EXPECT_TRUE(std::isnan(FromBits(FloatToBF16Bits(std::numeric_limits<float>::quiet_NaN()))));
  // A NaN whose payload sits only in the dropped bits must not become inf.
  uint32_t nan_bits = 0x7f800001u;
  float nan;
  std::memcpy(&nan, &nan_bits, 4);
  EXPECT_TRUE(std::isnan(FromBits(FloatToBF16Bits(nan))));
}

TEST(SafetensorsWriterTest, RoundTripsThroughWeightStore) {
  TempDir dir;
  const std::vector<float> f32 = {0.5f, -1.25f, 3.0e-8f, 1e30f, -0.0f, 7.0f};
  const std::vector<float> bf = {1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f, 1.0f + 0x1p-8f + 0x1p-16f, -2.5f, 0.1f};
  std::vector<TensorToWrite> tensors;
  tensors.push_back(TensorFromValues("z.weight", DType::kF32, {2, 3}, f32));
  tensors.push_back(TensorFromValues("a.half", DType::kBF16, {5}, bf));
  tensors.push_back(TensorFromValues("m.empty", DType::kF32, {0, 4}, {}));
  auto bytes = WriteSafetensors((dir.path() / "model.safetensors").string(), tensors);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_EQ(*bytes, fs::file_size(dir.path() / "model.safetensors"));
  EXPECT_FALSE(fs::exists(dir.path() / "model.safetensors.tmp"));

  auto store = WeightStore::Open(dir.path().string());
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->Names(), (std::vector<std::string>{"a.half", "m.empty", "z.weight"}));
  auto z = (*store)->Get("z.weight", {2, 3});
  ASSERT_TRUE(z.ok()) << z.status();
  EXPECT_EQ(z->dtype, DType::kF32);
  EXPECT_EQ(Values(*z), f32);
  auto a = (*store)->Get("a.half", {5});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->dtype, DType::kBF16);
  const std::vector<float> got = Values(*a);
  EXPECT_EQ(got[0], 1.0f);
  EXPECT_EQ(got[1], 1.015625f);
  EXPECT_EQ(got[2], 1.0078125f);
  EXPECT_EQ(got[3], -2.5f);
  EXPECT_EQ(got[4], FromBits(0x3dcd));  // 0.1 = 0x3dcccccd rounds up
  auto empty = (*store)->Get("m.empty", {0, 4});
  ASSERT_TRUE(empty.ok()) << empty.status();

  // Layout: 8-byte LE length, padded JSON so data starts 8-aligned, format pt,
  // tensors back to back in name order.
  const std::string raw = ReadBytes(dir.path() / "model.safetensors");
  uint64_t len = 0;
  for (int i = 7; i >= 0; --i) len = (len << 8) | static_cast<unsigned char>(raw[i]);
  EXPECT_EQ((8 + len) % 8, 0u);
  const auto header = nlohmann::json::parse(raw.substr(8, len));
  EXPECT_EQ(header["__metadata__"]["format"], "pt");
  EXPECT_EQ(header["a.half"]["data_offsets"], nlohmann::json({0, 10}));
  EXPECT_EQ(header["m.empty"]["data_offsets"], nlohmann::json({10, 10}));
  EXPECT_EQ(header["z.weight"]["data_offsets"], nlohmann::json({10, 34}));
  EXPECT_EQ(header["z.weight"]["dtype"], "F32");
  EXPECT_EQ(raw.size(), 8 + len + 34);
}

TEST(SafetensorsWriterTest, RejectsDuplicateNamesAndF16) {
  TempDir dir;
  const std::string path = (dir.path() / "model.safetensors").string();
  auto dup = WriteSafetensors(path, {TensorFromValues("x", DType::kF32, {1}, {1.0f}),
                                     TensorFromValues("x", DType::kF32, {1}, {2.0f})});
  ASSERT_FALSE(dup.ok());
  EXPECT_NE(dup.status().message().find("duplicate"), std::string::npos) << dup.status();
  auto f16 = WriteSafetensors(path, {TensorFromValues("h", DType::kF16, {1}, {1.0f})});
  ASSERT_FALSE(f16.ok());
  EXPECT_NE(f16.status().message().find("h"), std::string::npos);
  EXPECT_FALSE(fs::exists(path));
}

// ---------------------------------------------------------------------------
// random-model

// Writes `config` (with overrides) to dir/in.json and runs the command into dir/model.
struct Written {
  int rc;
  std::string out, err;
  fs::path model;
};

Written RunCommand(const fs::path& dir, nlohmann::ordered_json config, RandomModelFlags flags) {
  fs::create_directories(dir);
  std::ofstream(dir / "in.json") << config.dump(2);
  flags.config_path = (dir / "in.json").string();
  if (flags.out_dir.empty()) flags.out_dir = (dir / "model").string();
  std::ostringstream out, err;
  const int rc = RunRandomModelCommand(flags, out, err);
  return {rc, out.str(), err.str(), fs::path(flags.out_dir)};
}

nlohmann::ordered_json ReadConfig(const std::string& path) {
  std::ifstream f(path);
  return nlohmann::ordered_json::parse(f);
}

// Loads `model` into the serving engine and generates 8 greedy tokens.
void ExpectGenerates(const fs::path& model) {
  EngineConfig config;
  config.options.max_model_len = 256;
  config.options.num_threads = 2;
  auto engine = Engine::Create(model.string(), config);
  ASSERT_TRUE(engine.ok()) << engine.status();
  GenerationRequest request;
  request.prompt_ids = {1, 403, 407, 261, 378};
  request.params.max_tokens = 8;
  request.params.temperature = 0.0f;
  request.params.ignore_eos = true;
  request.params.logprobs = 0;
  auto handle = (*engine)->Submit(request);
  ASSERT_TRUE(handle.ok()) << handle.status();
  std::vector<SampleResult> steps;
  while (auto ev = (*handle)->Next()) {
    ASSERT_EQ(ev->error, "");
    steps.insert(steps.end(), ev->logprobs.begin(), ev->logprobs.end());
  }
  ASSERT_EQ(steps.size(), 8u);
  std::vector<int32_t> context = request.prompt_ids;
  for (const SampleResult& step : steps) {
    EXPECT_GE(step.token, 0);
    EXPECT_LT(step.token, 512);
    // Sane activations: finite logits with some spread, not saturated. The
    // engine gives log_softmax of the logits over the whole vocabulary
    // (probed id by id), whose spread is the logits' spread.
    auto logprobs = testing::NextTokenLogprobs(**engine, context);
    ASSERT_TRUE(logprobs.ok()) << logprobs.status();
    ASSERT_EQ(logprobs->size(), 512u);
    double lo = (*logprobs)[0], hi = (*logprobs)[0];
    for (double l : *logprobs) {
      ASSERT_TRUE(std::isfinite(l));
      lo = std::min(lo, l);
      hi = std::max(hi, l);
    }
    EXPECT_GT(hi - lo, 0.1);
    EXPECT_LT(hi - lo, 100.0);
    // The decode step (KV cache of earlier steps) and the probes (a fresh
    // prefill of the same context) see the same distribution; greedy took its top.
    EXPECT_NEAR(step.logprob, (*logprobs)[step.token], 1e-4);
    EXPECT_NEAR(step.logprob, hi, 1e-4);
    context.push_back(step.token);
  }
}

TEST(RandomModelTest, Stories260kConfigWithTwoLayersGenerates) {
  TempDir dir;
  nlohmann::ordered_json config = ReadConfig(testing::BundledModelDir() + "/config.json");
  config["num_hidden_layers"] = 2;
  RandomModelFlags flags;
  flags.tokenizer_from = testing::BundledModelDir();
  flags.seed = 11;
  Written w = RunCommand(dir.path(), config, flags);
  ASSERT_EQ(w.rc, 0) << w.err;
  EXPECT_TRUE(w.err.empty());
  EXPECT_EQ(std::count(w.out.begin(), w.out.end(), '\n'), 1) << w.out;
  EXPECT_NE(w.out.find("parameters"), std::string::npos) << w.out;
  EXPECT_NE(w.out.find("bytes"), std::string::npos) << w.out;
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                        "generation_config.json"}) {
    EXPECT_TRUE(fs::exists(w.model / f)) << f;
  }
  auto store = WeightStore::Open(w.model.string());
  ASSERT_TRUE(store.ok()) << store.status();
  // embed + 2 × (2 norms + q/k/v/o + gate/up/down) + final norm; tied head.
  EXPECT_EQ((*store)->Names().size(), 20u);
  EXPECT_FALSE((*store)->Has("lm_head.weight"));
  // The recipe: embed std 0.1, norms 1 + 0.1 N(0, 1).
  auto embed = (*store)->Get("model.embed_tokens.weight", {512, 64});
  ASSERT_TRUE(embed.ok());
  double sum = 0, sumsq = 0;
  for (float v : Values(*embed)) {
    sum += v;
    sumsq += double(v) * v;
  }
  const double n = 512 * 64;
  EXPECT_NEAR(sum / n, 0.0, 0.005);
  EXPECT_NEAR(std::sqrt(sumsq / n), 0.1, 0.005);
  auto norm = (*store)->Get("model.norm.weight", {64});
  ASSERT_TRUE(norm.ok());
  double norm_mean = 0;
  for (float v : Values(*norm)) norm_mean += v / 64.0;
  EXPECT_NEAR(norm_mean, 1.0, 0.05);
  ExpectGenerates(w.model);
}

TEST(RandomModelTest, Qwen3ConfigWithQkNormGenerates) {
  TempDir dir;
  RandomModelFlags flags;
  flags.tokenizer_from = testing::BundledModelDir();
  Written w = RunCommand(dir.path(), ReadConfig(testing::TestModelDir("tiny-qwen3") + "/config.json"), flags);
  ASSERT_EQ(w.rc, 0) << w.err;
  auto store = WeightStore::Open(w.model.string());
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_TRUE((*store)->Get("model.layers.1.self_attn.q_norm.weight", {32}).ok());
  EXPECT_TRUE((*store)->Get("model.layers.0.self_attn.q_proj.weight", {128, 64}).ok());
  EXPECT_FALSE((*store)->Has("model.layers.0.self_attn.q_proj.bias"));
  ExpectGenerates(w.model);
}

TEST(RandomModelTest, Qwen2ConfigWithBiasesInBfloat16Generates) {
  TempDir dir;
  RandomModelFlags flags;
  flags.tokenizer_from = testing::BundledModelDir();
  flags.dtype = "bfloat16";
  Written w = RunCommand(dir.path(), ReadConfig(testing::TestModelDir("tiny-qwen2") + "/config.json"), flags);
  ASSERT_EQ(w.rc, 0) << w.err;
  EXPECT_EQ(ReadConfig((w.model / "config.json").string())["torch_dtype"], "bfloat16");
  auto store = WeightStore::Open(w.model.string());
  ASSERT_TRUE(store.ok()) << store.status();
  auto bias = (*store)->Get("model.layers.0.self_attn.k_proj.bias", {32});
  ASSERT_TRUE(bias.ok()) << bias.status();
  EXPECT_EQ(bias->dtype, DType::kBF16);
  EXPECT_FALSE((*store)->Has("model.layers.0.self_attn.o_proj.bias"));
  ExpectGenerates(w.model);
}

TEST(RandomModelTest, SameSeedSameBytesOtherSeedOtherBytes) {
  TempDir dir;
  nlohmann::ordered_json config = ReadConfig(testing::TestModelDir("tiny-llama3") + "/config.json");
  RandomModelFlags flags;
  flags.seed = 5;
  flags.out_dir = (dir.path() / "a").string();
  ASSERT_EQ(RunCommand(dir.path(), config, flags).rc, 0);
  flags.out_dir = (dir.path() / "b").string();
  ASSERT_EQ(RunCommand(dir.path(), config, flags).rc, 0);
  flags.seed = 6;
  flags.out_dir = (dir.path() / "c").string();
  ASSERT_EQ(RunCommand(dir.path(), config, flags).rc, 0);
  const std::string a = ReadBytes(dir.path() / "a" / "model.safetensors");
  EXPECT_EQ(a, ReadBytes(dir.path() / "b" / "model.safetensors"));
  EXPECT_NE(a, ReadBytes(dir.path() / "c" / "model.safetensors"));
  auto store = WeightStore::Open((dir.path() / "a").string());
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_TRUE((*store)->Has("lm_head.weight"));  // untied
  // No tokenizer requested: none copied.
  EXPECT_FALSE(fs::exists(dir.path() / "a" / "tokenizer.json"));
}

TEST(RandomModelTest, ErrorsNameTheFlagOrFile) {
  TempDir dir;
  nlohmann::ordered_json config = ReadConfig(testing::BundledModelDir() + "/config.json");
  RandomModelFlags flags;
  flags.dtype = "float16";
  Written w = RunCommand(dir.path(), config, flags);
  EXPECT_EQ(w.rc, 1);
  EXPECT_NE(w.err.find("--dtype"), std::string::npos) << w.err;

  flags = {};
  flags.tokenizer_from = (dir.path() / "missing").string();
  w = RunCommand(dir.path(), config, flags);
  EXPECT_EQ(w.rc, 1);
  EXPECT_NE(w.err.find("--tokenizer-from"), std::string::npos) << w.err;

  config["architectures"] = {"GPT2LMHeadModel"};
  w = RunCommand(dir.path(), config, {});
  EXPECT_EQ(w.rc, 1);
  EXPECT_NE(w.err.find("config.json"), std::string::npos) << w.err;
  EXPECT_EQ(std::count(w.err.begin(), w.err.end(), '\n'), 1) << w.err;
}

}  // namespace
}  // namespace kaon
