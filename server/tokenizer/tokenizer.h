// Hugging Face tokenizer.json tokenization, token for token identical to the
// Rust `tokenizers` library for the BPE tokenizers real models ship.
// Immutable after loading: Encode and Decode may run concurrently.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "server/tokenizer/added_vocabulary.h"
#include "server/tokenizer/tokenizer_config.h"

namespace kaon {

class BpeModel;
class Normalizer;
class PreTokenizer;
class PostProcessor;
class Decoder;

class Tokenizer {
 public:
  // Errors name the file and the unsupported or invalid field, e.g.
  // "tokenizer.json: model.type \"Unigram\" is not supported".
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromFile(const std::string& path);
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromJsonString(
      const std::string& json, const std::string& origin_for_errors);
  // dir/tokenizer.json plus dir/tokenizer_config.json when present.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromModelDir(const std::string& dir);

  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // Special tokens written in the text are always recognised (HF's default);
  // add_special_tokens only controls the post-processor (e.g. BOS).
  // Invalid UTF-8 is first replaced as Rust's from_utf8_lossy would.
  std::vector<int32_t> Encode(std::string_view text, bool add_special_tokens) const;
  // Unknown ids are skipped, as HF does.
  std::string Decode(std::span<const int32_t> ids, bool skip_special_tokens) const;

  // One past the largest id of the vocabulary and the added tokens.
  int32_t VocabSize() const;
  std::optional<int32_t> TokenToId(std::string_view token) const;
  // Empty for unknown ids.
  std::string IdToToken(int32_t id) const;
  bool IsSpecial(int32_t id) const;
  // The token string Decode hands the decoder, or nullptr (unknown or
  // skipped). Borrowed from the tokenizer.
  const std::string* DecodeToken(int32_t id, bool skip_special_tokens) const;
  const TokenizerConfig& config() const { return config_; }

 private:
  Tokenizer();
  static absl::StatusOr<std::unique_ptr<Tokenizer>> Parse(const std::string& json, const std::string& origin);
  // Applies tokenizer_config.json's add_bos_token / add_eos_token where
  // transformers does (see tokenizer.cc).
  absl::Status ApplyBosEosConfig(const std::string& config_path);
  void EncodeSegment(std::string text, bool at_start, std::vector<int32_t>& ids) const;

  std::unique_ptr<BpeModel> model_;
  std::unique_ptr<Normalizer> normalizer_;
  std::unique_ptr<PreTokenizer> pre_tokenizer_;
  std::unique_ptr<PostProcessor> post_processor_;
  std::unique_ptr<Decoder> decoder_;
  AddedVocabulary added_;
  TokenizerConfig config_;
};

}  // namespace kaon
