// Added tokens (special or not), found in the text before the model sees it,
// with HF's AddedVocabulary semantics: leftmost-longest matches, tokens with
// normalized=false matched on the raw text and the others on normalized text.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "server/tokenizer/json_fields.h"

namespace kaon {

class Normalizer;

struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool special = false;
  bool normalized = true;
  bool lstrip = false;
  bool rstrip = false;
  bool single_word = false;
};

// A piece of text, or an added token found in it.
struct Segment {
  std::string text;
  std::optional<int32_t> token_id;
  size_t offset;  // byte offset of `text` in its parent
};

class AddedVocabulary {
 public:
  static absl::StatusOr<AddedVocabulary> FromJson(const tj::Json& list, const std::string& path,
                                                 const Normalizer* normalizer);

  // Splits `text` around the raw-text tokens (normalized == false).
  void SplitRaw(std::string_view text, std::vector<Segment>& out) const {
    Split(raw_, text, out);
  }
  // Splits already-normalized text around the normalized tokens.
  void SplitNormalized(std::string_view text, std::vector<Segment>& out) const {
    Split(normalized_, text, out);
  }
  bool HasNormalizedTokens() const { return !normalized_.tokens.empty(); }

  const AddedToken* FindById(int32_t id) const;
  std::optional<int32_t> FindByContent(std::string_view content) const;
  bool IsSpecialContent(std::string_view content) const;
  const std::vector<AddedToken>& tokens() const { return tokens_; }

 private:
  // A byte trie over token contents with a first-byte filter.
  struct Matcher {
    struct Node {
      std::vector<std::pair<unsigned char, int32_t>> children;
      int32_t token = -1;  // index into tokens_
    };
    std::vector<Node> nodes{Node{}};
    std::vector<int32_t> tokens;
    bool first_byte[256] = {};
    void Add(std::string_view pattern, int32_t token_index);
    // Longest match starting at `pos`: (token index, end) or token -1.
    std::pair<int32_t, size_t> LongestAt(std::string_view text, size_t pos) const;
  };

  void Split(const Matcher& m, std::string_view text, std::vector<Segment>& out) const;

  std::vector<AddedToken> tokens_;
  absl::flat_hash_map<int32_t, size_t> by_id_;
  absl::flat_hash_map<std::string, size_t> by_content_;
  Matcher raw_;
  Matcher normalized_;
};

}  // namespace kaon
