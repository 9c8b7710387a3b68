// The real `kaon` binary refuses, never aborts, at start-up: every size in
// config.json, tokenizer.json and safetensors headers is range-checked before
// anything is sized from it, the memory a model implies is compared with what
// the host has, and tensors the config does not use are refused. Each failure
// is one line on stderr naming the file and field, and exit code 1, from
// `kaon generate` and `kaon serve` alike.
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/loading/model_config.h"
#include "server/loading/safetensors.h"
#include "server/loading/safetensors_writer.h"
#include "tests/cli/model_copy.h"
#include "tests/cli/run_command.h"
#include "tests/common/test_paths.h"

namespace kaon {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;
using testing::CopyModel;
using testing::RunCommand;

std::string Kaon() { return testing::BinDir() + "/kaon"; }

testing::CommandResult Generate(const std::string& dir, const std::string& extra = "") {
  return RunCommand(Kaon() + " generate " + dir + " --prompt hi --max-tokens 2 --temperature 0" + extra);
}

// --port 0 and a timeout: a model that loaded would keep serving, so a
// refusal must end the process by itself.
testing::CommandResult Serve(const std::string& dir) {
  return RunCommand("timeout 60 " + Kaon() + " serve " + dir + " --port 0");
}

// Exit code 1 (not a signal, not the flag-error code), one line naming every fragment.
void ExpectRefused(const testing::CommandResult& r, const std::vector<std::string>& fragments) {
  testing::ExpectCleanFailure(r, fragments);
  EXPECT_EQ(r.exit_code, 1) << r.err;
}

void EditJson(const fs::path& file, const std::function<void(Json&)>& edit) {
  Json j = Json::parse(std::ifstream(file));
  edit(j);
  std::ofstream(file) << j.dump(2);
}

std::string WithConfig(const std::string& src, const std::function<void(Json&)>& edit) {
  return CopyModel(src, [&](const fs::path& d) { EditJson(d / "config.json", edit); });
}

const std::string kStories = testing::BundledModelDir();

TEST(StartupLimits, ConfigSizesAboveTheirBoundsAreRefusedByName) {
  using L = ConfigLimits;
  struct Case {
    const char* field;
    int64_t bound;
  };
  for (const Case& c : {Case{"vocab_size", L::kMaxVocabSize}, Case{"hidden_size", L::kMaxHiddenSize},
                        Case{"intermediate_size", L::kMaxIntermediateSize}, Case{"num_hidden_layers", L::kMaxLayers},
                        Case{"num_attention_heads", L::kMaxHeads},
                        Case{"max_position_embeddings", L::kMaxPositionEmbeddings}}) {
    SCOPED_TRACE(c.field);
    const std::string above = WithConfig(kStories, [&](Json& j) {
      j[c.field] = c.bound + (std::string(c.field) == "num_attention_heads" ? 4 : 1);
    });
    ExpectRefused(Generate(above),
                  {"kaon generate: ", "config.json: field \"" + std::string(c.field) + "\" must be at most " +
                                          std::to_string(c.bound)});
    // At the bound the range check passes; what stops the load then (the
    // memory check, or the checkpoint's shapes) is still one clean line.
    const std::string at = WithConfig(kStories, [&](Json& j) {
      j[c.field] = c.bound;
      if (std::string(c.field) == "num_attention_heads") j["num_key_value_heads"] = c.bound;
    });
    const testing::CommandResult r = Generate(at);
    EXPECT_TRUE(r.exited) << r.err;
    EXPECT_EQ(r.err.find("must be at most"), std::string::npos) << r.err;
    if (r.exit_code != 0) ExpectRefused(r, {"kaon generate: "});
    fs::remove_all(above);
    fs::remove_all(at);
  }
  const std::string huge = WithConfig(kStories, [](Json& j) { j["hidden_size"] = 10000000000000; });
  ExpectRefused(Generate(huge), {"config.json: field \"hidden_size\" must be at most 1048576, got 10000000000000"});
  ExpectRefused(Serve(huge),
                {"kaon serve: ", "config.json: field \"hidden_size\" must be at most 1048576, got 10000000000000"});
  const std::string rope = WithConfig(testing::TestModelDir("tiny-llama3"), [](Json& j) {
    j["rope_scaling"]["original_max_position_embeddings"] = 1e30;
  });
  ExpectRefused(Generate(rope), {"config.json: field \"rope_scaling.original_max_position_embeddings\""});
  const std::string bos = WithConfig(kStories, [](Json& j) { j["bos_token_id"] = 2147483647; });
  ExpectRefused(Generate(bos), {"config.json: field \"bos_token_id\" 2147483647 is outside the vocabulary"});
}

// What a config implies is compared with the host before it is allocated,
// with sizes no machine has: the KV cache of a 2^28-token context over 4096
// layers (512 TiB), weights of vocab_size 2^24 x hidden_size 2^20 (64 TiB
// per matrix), 2^30 KV blocks.
TEST(StartupLimits, MemoryTheHostDoesNotHaveIsRefusedBeforeAllocating) {
  const std::string context = WithConfig(kStories, [](Json& j) {
    j["max_position_embeddings"] = ConfigLimits::kMaxPositionEmbeddings;
    j["num_hidden_layers"] = ConfigLimits::kMaxLayers;
    j["num_key_value_heads"] = 8;
  });
  const std::vector<std::string> kv = {"512 TiB for KV cache (16777216 blocks of 16 tokens, room for a context of "
                                       "config.json's max_position_embeddings 268435456)",
                                       "are available (", "lower --max-model-len"};
  ExpectRefused(Generate(context), kv);
  ExpectRefused(Serve(context), kv);
  // The flag the message names is the way out.
  const std::string long_context =
      WithConfig(kStories, [](Json& j) { j["max_position_embeddings"] = ConfigLimits::kMaxPositionEmbeddings; });
  EXPECT_EQ(Generate(long_context, " --max-model-len 512").exit_code, 0);

  const std::string wide = WithConfig(kStories, [](Json& j) {
    j["vocab_size"] = ConfigLimits::kMaxVocabSize;
    j["hidden_size"] = ConfigLimits::kMaxHiddenSize;
    j["num_hidden_layers"] = 1;
  });
  ExpectRefused(Generate(wide, " --load-format dummy"),
                {"TiB for weights (fp32; config.json: hidden_size 1048576, intermediate_size 172, num_hidden_layers 1, "
                 "vocab_size 16777216)",
                 "for generated weights (--load-format dummy", "are available ("});
  // Flags too: a KV cache of 2^30 blocks is 10 TiB.
  ExpectRefused(Generate(kStories, " --num-kv-blocks 1073741824"), {"--num-kv-blocks 1073741824", "are available ("});
  for (const std::string& d : {context, long_context, wide}) fs::remove_all(d);
}

TEST(StartupLimits, AbsurdTokenizerIdsAreRefusedByField) {
  const std::string added = CopyModel(kStories, [](const fs::path& d) {
    EditJson(d / "tokenizer.json", [](Json& j) { j["added_tokens"][0]["id"] = 2147483647; });
  });
  const std::string msg = "tokenizer.json: added_tokens[0].id: id 2147483647 is larger than the limit of 16777215";
  ExpectRefused(Generate(added), {msg});
  ExpectRefused(Serve(added), {"kaon serve: ", msg});
  const std::string vocab = CopyModel(kStories, [](const fs::path& d) {
    EditJson(d / "tokenizer.json", [](Json& j) { j["model"]["vocab"]["zzz"] = 16777215; });
  });
  ExpectRefused(Generate(vocab), {"tokenizer.json: model.vocab: id 16777215 is far beyond the 513 entries"});
  const std::string deep = CopyModel(kStories, [](const fs::path& d) {
    std::string text = "{\"x\": " + std::string(100000, '[') + std::string(100000, ']') + ", ";
    std::ifstream in(d / "tokenizer.json");
    const std::string rest((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    text += rest.substr(rest.find('{') + 1);
    std::ofstream(d / "tokenizer.json") << text;
  });
  ExpectRefused(Generate(deep), {"tokenizer.json: JSON nests deeper than 64 levels"});
  // model_max_length 1e30 is a real quirk of tokenizer_config.json and loads.
  const std::string max_len = CopyModel(kStories, [](const fs::path& d) {
    EditJson(d / "tokenizer_config.json", [](Json& j) { j["model_max_length"] = 1e30; });
  });
  EXPECT_EQ(Generate(max_len).exit_code, 0);
  for (const std::string& d : {added, vocab, deep, max_len}) fs::remove_all(d);
}

// A model.safetensors whose only tensor has the given header entry.
std::string WithHeader(const std::string& entry, size_t data_bytes) {
  return CopyModel(kStories, [&](const fs::path& d) {
    const std::string header = "{\"model.embed_tokens.weight\": " + entry + "}";
    std::string bytes;
    for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<char>((header.size() >> (8 * i)) & 0xff));
    bytes += header + std::string(data_bytes, '\0');
    std::ofstream(d / "model.safetensors", std::ios::binary | std::ios::trunc) << bytes;
  });
}

TEST(StartupLimits, AbsurdSafetensorsHeadersAreRefusedByTensor) {
  std::string rank17 = "[1";
  for (int i = 0; i < 16; ++i) rank17 += ", 1";
  rank17 += "]";
  const std::string rank = WithHeader("{\"dtype\": \"F32\", \"shape\": " + rank17 + ", \"data_offsets\": [0, 4]}", 4);
  ExpectRefused(Generate(rank), {"model.safetensors: tensor model.embed_tokens.weight: shape has 17 dimensions"});
  const std::string dims = WithHeader(
      "{\"dtype\": \"F32\", \"shape\": [4611686018427387904, 4], \"data_offsets\": [0, 4]}", 4);
  ExpectRefused(Generate(dims), {"model.safetensors: tensor model.embed_tokens.weight", "overflow"});
  const std::string deep = WithHeader("{\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4], \"x\": " +
                                          std::string(100000, '[') + std::string(100000, ']') + "}",
                                      4);
  ExpectRefused(Generate(deep), {"model.safetensors: header is not valid JSON: JSON nests deeper than 8 levels"});
  const std::string count = CopyModel(kStories, [](const fs::path& d) {
    fs::remove(d / "model.safetensors");
    std::string index = "{\"weight_map\": {";
    for (size_t i = 0; i <= WeightStore::kMaxIndexTensors; ++i) {
      index += (i ? ",\"t" : "\"t") + std::to_string(i) + "\":\"model-00001.safetensors\"";
    }
    std::ofstream(d / "model.safetensors.index.json") << index << "}}";
  });
  ExpectRefused(Generate(count), {"model.safetensors.index.json: weight_map lists 1048577 tensors"});
  for (const std::string& d : {rank, dims, deep, count}) fs::remove_all(d);
}

// stories260k's tensors plus `extra`, written with the project's writer.
std::string WithExtraTensors(const std::vector<std::pair<std::string, std::vector<int64_t>>>& extra) {
  return CopyModel(kStories, [&](const fs::path& d) {
    auto store = WeightStore::Open(d.string());
    ASSERT_TRUE(store.ok()) << store.status();
    std::vector<TensorToWrite> tensors;
    for (const std::string& name : (*store)->Names()) {
      const TensorView t = *(*store)->Get(name);
      std::vector<float> values(static_cast<size_t>(t.numel()));
      ConvertToF32(t, 0, values.size(), values.data());
      tensors.push_back(TensorFromValues(name, DType::kF32, t.shape, std::move(values)));
    }
    for (const auto& [name, shape] : extra) {
      int64_t n = 1;
      for (int64_t s : shape) n *= s;
      tensors.push_back(TensorFromValues(name, DType::kF32, shape, std::vector<float>(n, 0.5f)));
    }
    store->reset();
    ASSERT_TRUE(WriteSafetensors((d / "model.safetensors").string(), std::move(tensors)).ok());
  });
}

TEST(StartupLimits, TensorsTheConfigDoesNotUseAreRefused) {
  // What transformers and vLLM skip is not an error: RoPE buffers, and a
  // stored head when the embeddings are tied (stories260k's are).
  const std::string harmless = WithExtraTensors({{"model.layers.0.self_attn.rotary_emb.inv_freq", {4}},
                                                 {"model.rotary_emb.inv_freq", {4}},
                                                 {"lm_head.weight", {512, 64}}});
  const testing::CommandResult ok = Generate(harmless);
  EXPECT_EQ(ok.exit_code, 0) << ok.err;

  const std::string extra = WithExtraTensors({{"model.layers.5.mlp.up_proj.weight", {172, 64}}});
  const std::vector<std::string> msg = {"model.safetensors: tensor \"model.layers.5.mlp.up_proj.weight\" is not used by "
                                        "LlamaForCausalLM with num_hidden_layers 5 (is config.json from another model?)"};
  ExpectRefused(Generate(extra), msg);
  ExpectRefused(Serve(extra), msg);
  // The same from the other side: a config with fewer layers than the checkpoint.
  const std::string fewer = WithConfig(kStories, [](Json& j) { j["num_hidden_layers"] = 4; });
  ExpectRefused(Generate(fewer), {"model.safetensors: tensor \"model.layers.4.", "with num_hidden_layers 4",
                                  "more unused tensors"});
  // Every shipped fixture uses all it holds.
  for (const char* fixture : {"tiny-llama3", "tiny-mistral", "tiny-qwen2", "tiny-qwen2-sharded", "tiny-qwen3"}) {
    const testing::CommandResult r = RunCommand(Kaon() + " generate " + testing::TestModelDir(fixture) +
                                                " --prompt-ids 1,2,3 --max-tokens 2 --temperature 0");
    EXPECT_EQ(r.exit_code, 0) << fixture << ": " << r.err;
  }
  for (const std::string& d : {harmless, extra, fewer}) fs::remove_all(d);
}

}  // namespace
}  // namespace kaon
