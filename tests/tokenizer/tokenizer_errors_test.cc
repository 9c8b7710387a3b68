// Broken or unsupported tokenizer files fail cleanly, naming file and field.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "server/tokenizer/tokenizer.h"
#include "tests/tokenizer/test_tokenizers.h"
#include "tests/common/temp_dir.h"

namespace kaon {
namespace {

using nlohmann::json;

std::string ErrorOf(const json& j) {
  auto t = Tokenizer::FromJsonString(j.dump(), "tokenizer.json");
  return t.ok() ? "ok" : std::string(t.status().message());
}

TEST(TokenizerErrorsTest, MissingFileNamesIt) {
  auto t = Tokenizer::FromFile("/nonexistent/dir/tokenizer.json");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("/nonexistent/dir/tokenizer.json"), std::string::npos);
  auto d = Tokenizer::FromModelDir("/nonexistent/dir");
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("tokenizer.json"), std::string::npos);
}

TEST(TokenizerErrorsTest, MalformedJson) {
  auto t = Tokenizer::FromJsonString("{\"model\": ", "x/tokenizer.json");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("x/tokenizer.json"), std::string::npos);
  EXPECT_NE(ErrorOf(json::array()).find("tokenizer.json"), std::string::npos);
  EXPECT_NE(ErrorOf(json::object()).find("model: missing"), std::string::npos);
}

TEST(TokenizerErrorsTest, UnsupportedModelTypes) {
  for (const char* type : {"Unigram", "WordPiece", "WordLevel"}) {
    json j = testing::ByteLevelTokenizerJson();
    j["model"]["type"] = type;
    EXPECT_EQ(ErrorOf(j), std::string("tokenizer.json: model.type \"") + type + "\" is not supported");
  }
}

TEST(TokenizerErrorsTest, UnsupportedComponents) {
  json j = testing::ByteLevelTokenizerJson();
  j["normalizer"] = {{"type", "NFKC"}};
  EXPECT_EQ(ErrorOf(j), "tokenizer.json: normalizer.type \"NFKC\" is not supported");

  j = testing::ByteLevelTokenizerJson();
  j["pre_tokenizer"]["pretokenizers"][1] = {{"type", "Whitespace"}};
  EXPECT_EQ(ErrorOf(j),
            "tokenizer.json: pre_tokenizer.pretokenizers[1].type \"Whitespace\" is not supported");

  j = testing::ByteLevelTokenizerJson();
  j["decoder"] = {{"type", "Sequence"}, {"decoders", {{{"type", "WordPiece"}}}}};
  EXPECT_EQ(ErrorOf(j), "tokenizer.json: decoder.decoders[0].type \"WordPiece\" is not supported");

  j = testing::ByteLevelTokenizerJson();
  j["post_processor"] = {{"type", "Mystery"}};
  EXPECT_EQ(ErrorOf(j), "tokenizer.json: post_processor.type \"Mystery\" is not supported");

  j = testing::ByteLevelTokenizerJson();
  j["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Sideways";
  EXPECT_EQ(ErrorOf(j),
            "tokenizer.json: pre_tokenizer.pretokenizers[0].behavior \"Sideways\" is not supported");

  j = testing::ByteLevelTokenizerJson();
  j["model"]["dropout"] = 0.1;
  EXPECT_NE(ErrorOf(j).find("model.dropout"), std::string::npos);
}

TEST(TokenizerErrorsTest, BadFields) {
  json j = testing::ByteLevelTokenizerJson();
  j["pre_tokenizer"]["pretokenizers"][0]["pattern"] = {{"Regex", "(unclosed"}};
  EXPECT_NE(ErrorOf(j).find("tokenizer.json: pre_tokenizer.pretokenizers[0].pattern"), std::string::npos);

  j = testing::ByteLevelTokenizerJson();
  j["model"]["vocab"] = json::array();
  EXPECT_NE(ErrorOf(j).find("model.vocab"), std::string::npos);

  j = testing::ByteLevelTokenizerJson();
  j["model"].erase("merges");
  EXPECT_EQ(ErrorOf(j), "tokenizer.json: model.merges: missing");

  j = testing::ByteLevelTokenizerJson();
  j["added_tokens"][0].erase("content");
  EXPECT_EQ(ErrorOf(j), "tokenizer.json: added_tokens[0].content: missing");

  j = testing::ByteLevelTokenizerJson();
  j["post_processor"]["special_tokens"] = json::object();
  EXPECT_NE(ErrorOf(j).find("post_processor.special_tokens.<|bos|>"), std::string::npos);
}

TEST(TokenizerErrorsTest, MergesReferencingUnknownTokens) {
  json j = testing::ByteLevelTokenizerJson();
  j["model"]["merges"].push_back("nosuch token");
  const std::string e = ErrorOf(j);
  EXPECT_NE(e.find("tokenizer.json: model.merges[9]"), std::string::npos) << e;
  EXPECT_NE(e.find("\"nosuch\""), std::string::npos) << e;

  j = testing::ByteLevelTokenizerJson();
  j["model"]["merges"].push_back(json::array({"a", "b"}));  // "ab" is not in the vocabulary
  EXPECT_NE(ErrorOf(j).find("merged token \"ab\""), std::string::npos);

  j = testing::ByteLevelTokenizerJson();
  j["model"]["merges"].push_back("a b c");
  EXPECT_NE(ErrorOf(j).find("model.merges[9]"), std::string::npos);
}

// Ids size tables (the id -> token table is dense) and reach the model: an
// absurd one is a one-line error naming the field, never a huge allocation.
TEST(TokenizerErrorsTest, AbsurdIdsAreRefusedBeforeAnythingIsSized) {
  json j = testing::ByteLevelTokenizerJson();
  j["model"]["vocab"]["x"] = 2147483647;
  EXPECT_EQ(ErrorOf(j), "tokenizer.json: model.vocab.x: id 2147483647 is larger than the limit of 16777215");
  j["model"]["vocab"]["x"] = -1;
  EXPECT_NE(ErrorOf(j).find("model.vocab.x: expected a non-negative integer id, got -1"), std::string::npos);
  // Within the limit but far past the entries: the table would be mostly holes.
  j["model"]["vocab"]["x"] = 16777215;
  const int64_t entries = static_cast<int64_t>(j["model"]["vocab"].size());
  EXPECT_NE(ErrorOf(j).find("tokenizer.json: model.vocab: id 16777215 is far beyond the " + std::to_string(entries) +
                            " entries"),
            std::string::npos)
      << ErrorOf(j);
  // Holes up to 4 x entries + 65536 are fine (converters leave gaps).
  j["model"]["vocab"]["x"] = 4 * entries + 65535;
  EXPECT_EQ(ErrorOf(j), "ok");
  j["model"]["vocab"]["x"] = 4 * entries + 65536;
  EXPECT_NE(ErrorOf(j), "ok");

  j = testing::ByteLevelTokenizerJson();
  j["added_tokens"][0]["id"] = 2147483647;
  EXPECT_EQ(ErrorOf(j), "tokenizer.json: added_tokens[0].id: id 2147483647 is larger than the limit of 16777215");
  j["added_tokens"][0]["id"] = 16777215;  // at the limit: no table is sized from it
  EXPECT_EQ(ErrorOf(j), "ok");
  j["added_tokens"][0]["id"] = "300";
  EXPECT_NE(ErrorOf(j).find("added_tokens[0].id: expected a non-negative integer id"), std::string::npos);

  j = testing::ByteLevelTokenizerJson();
  j["post_processor"]["special_tokens"]["<|bos|>"]["ids"] = {4294967296};
  EXPECT_EQ(ErrorOf(j),
            "tokenizer.json: post_processor.special_tokens.<|bos|>.ids: id 4294967296 is larger than the limit of "
            "16777215");
  j["post_processor"] = {{"type", "BertProcessing"}, {"cls", {"[CLS]", -5}}, {"sep", {"[SEP]", 1}}};
  EXPECT_NE(ErrorOf(j).find("post_processor.cls: expected a non-negative integer id"), std::string::npos);
}

TEST(TokenizerErrorsTest, DeepNestingIsRefusedNotRecursedInto) {
  // Sequence components are parsed recursively: 100000 nested normalizers
  // would overflow the stack.
  std::string deep;
  for (int i = 0; i < 100000; ++i) deep += R"({"type": "Sequence", "normalizers": [)";
  deep += R"({"type": "NFC"})";
  for (int i = 0; i < 100000; ++i) deep += "]}";
  json j = testing::ByteLevelTokenizerJson();
  std::string text = j.dump();
  text.insert(1, "\"normalizer\": " + deep + ", ");
  auto t = Tokenizer::FromJsonString(text, "tokenizer.json");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().message(), "tokenizer.json: JSON nests deeper than 64 levels");
}

TEST(TokenizerErrorsTest, MessagesStayOnOneLine) {
  json j = testing::ByteLevelTokenizerJson();
  j["model"]["vocab"]["line\nbreak"] = -3;
  const std::string e = ErrorOf(j);
  EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  EXPECT_NE(e.find("line?break"), std::string::npos) << e;
  j = testing::ByteLevelTokenizerJson();
  j["added_tokens"][0]["special"] = json::array();
  for (int i = 0; i < 100000; ++i) j["added_tokens"][0]["special"].push_back(i);
  EXPECT_LT(ErrorOf(j).size(), 300u);
}

TEST(TokenizerConfigTest, NamedTemplatesWithOddNamesDoNotThrow) {
  // nlohmann's value("name", "") throws on a non-string name.
  const auto c = ParseTokenizerConfig(nlohmann::ordered_json::parse(
                                          R"({"chat_template": [{"name": 5, "template": "x"},
                                                                {"name": "default", "template": "y"}]})"),
                                      "tokenizer_config.json");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->chat_template, "y");
}

using testing::TempDir;

TEST(TokenizerConfigTest, HugeModelMaxLengthAndTokenObjects) {
  TempDir dir;
  dir.Write("tokenizer.json", testing::ByteLevelTokenizerJson().dump());
  dir.Write("tokenizer_config.json",
            R"({"model_max_length": 1000000000000000019884624838656,
                "bos_token": {"content": "<|bos|>", "lstrip": false},
                "eos_token": "<|eot|>", "pad_token": null, "add_bos_token": true,
                "clean_up_tokenization_spaces": true, "chat_template": "{{ x }}"})");
  auto t = Tokenizer::FromModelDir(dir.path());
  ASSERT_TRUE(t.ok()) << t.status();
  const TokenizerConfig& c = (*t)->config();
  EXPECT_EQ(c.model_max_length, INT64_MAX);
  EXPECT_EQ(c.bos_token, "<|bos|>");
  EXPECT_EQ(c.eos_token, "<|eot|>");
  EXPECT_FALSE(c.pad_token.has_value());
  EXPECT_EQ(c.add_bos_token, true);
  EXPECT_FALSE(c.add_eos_token.has_value());
  EXPECT_TRUE(c.clean_up_tokenization_spaces);
  EXPECT_EQ(c.chat_template, "{{ x }}");

  dir.Write("tokenizer_config.json", R"({"model_max_length": 1e30})");
  t = Tokenizer::FromModelDir(dir.path());
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ((*t)->config().model_max_length, INT64_MAX);

  dir.Write("tokenizer_config.json", R"({"model_max_length": 18446744073709551615})");
  t = Tokenizer::FromModelDir(dir.path());
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ((*t)->config().model_max_length, INT64_MAX);
}

TEST(TokenizerConfigTest, AbsentConfigGivesDefaults) {
  TempDir dir;
  dir.Write("tokenizer.json", testing::ByteLevelTokenizerJson().dump());
  auto t = Tokenizer::FromModelDir(dir.path());
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_FALSE((*t)->config().bos_token.has_value());
  EXPECT_EQ((*t)->config().model_max_length, INT64_MAX);
}

TEST(TokenizerConfigTest, BadConfigNamesFileAndField) {
  TempDir dir;
  dir.Write("tokenizer.json", testing::ByteLevelTokenizerJson().dump());
  const std::string path = dir.Write("tokenizer_config.json", R"({"eos_token": 5})");
  auto t = Tokenizer::FromModelDir(dir.path());
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find(path), std::string::npos);
  EXPECT_NE(t.status().message().find("eos_token"), std::string::npos);
  dir.Write("tokenizer_config.json", "{not json");
  t = Tokenizer::FromModelDir(dir.path());
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("tokenizer_config.json"), std::string::npos);
}

}  // namespace
}  // namespace kaon
