// tokenizer_config.json's add_bos_token / add_eos_token are honoured the way
// transformers honours them: Llama-class tokenizers rebuild their template,
// other classes keep tokenizer.json's post-processor.
#include <filesystem>
#include <functional>
#include <fstream>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/tokenizer/tokenizer.h"
#include "tests/common/test_paths.h"

namespace kaon {
namespace {

namespace fs = std::filesystem;

std::string StoriesWithConfig(const std::function<void(nlohmann::ordered_json&)>& edit) {
  static int counter = 0;
  const fs::path dir = fs::path(::testing::TempDir()) /
                       ("kaon_tokcfg_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const fs::path src = testing::BundledModelDir();
  fs::copy_file(src / "tokenizer.json", dir / "tokenizer.json");
  auto cfg = nlohmann::ordered_json::parse(std::ifstream(src / "tokenizer_config.json"));
  edit(cfg);
  std::ofstream(dir / "tokenizer_config.json") << cfg.dump();
  return dir.string();
}

// "Once upon a time" without special tokens, from golden.json's prompt ids.
const std::vector<int32_t> kBody = {403, 407, 261, 378};

std::vector<int32_t> With(std::vector<int32_t> before, std::vector<int32_t> after) {
  before.insert(before.end(), kBody.begin(), kBody.end());
  before.insert(before.end(), after.begin(), after.end());
  return before;
}

TEST(TokenizerConfig, LlamaClassHonoursAddBosAndAddEos) {
  auto t = Tokenizer::FromModelDir(StoriesWithConfig([](auto& c) { c["add_bos_token"] = false; }));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ((*t)->Encode("Once upon a time", true), With({}, {}));

  t = Tokenizer::FromModelDir(StoriesWithConfig([](auto& c) { c["add_eos_token"] = true; }));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ((*t)->Encode("Once upon a time", true), With({1}, {2}));
  // Without special tokens nothing is added either way.
  EXPECT_EQ((*t)->Encode("Once upon a time", false), With({}, {}));
}

TEST(TokenizerConfig, OtherClassesKeepTokenizerJson) {
  auto t = Tokenizer::FromModelDir(StoriesWithConfig([](auto& c) {
    c["tokenizer_class"] = "PreTrainedTokenizerFast";
    c["add_bos_token"] = false;
    c["add_eos_token"] = true;
  }));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ((*t)->Encode("Once upon a time", true), With({1}, {}));
}

TEST(TokenizerConfig, AddBosWithoutABosTokenIsAnError) {
  auto t = Tokenizer::FromModelDir(StoriesWithConfig([](auto& c) { c["bos_token"] = "<nope>"; }));
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("tokenizer_config.json"), std::string::npos) << t.status();
  EXPECT_NE(t.status().message().find("<nope>"), std::string::npos) << t.status();
}

}  // namespace
}  // namespace kaon
