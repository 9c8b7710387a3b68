#include "server/tokenizer/metaspace_split.h"

#include <algorithm>

namespace kaon {
namespace {

// A vocabulary with more merges across words than this gains little from
// cutting; checking their leaves would cost load time for nothing.
constexpr size_t kMaxBadMerges = 4096;

bool StartsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
bool EndsWith(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

// Length of the UTF-8 sequence a lead byte starts; 0 for a continuation or
// invalid byte.
size_t SequenceLength(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead & 0xE0) == 0xC0) return 2;
  if ((lead & 0xF0) == 0xE0) return 3;
  if ((lead & 0xF8) == 0xF0) return 4;
  return 0;
}

// The last character of s, or empty if s does not end with a whole one.
std::string_view LastChar(std::string_view s) {
  size_t j = s.size();
  for (int back = 0; back < 4 && j > 0; ++back) {
    --j;
    const auto c = static_cast<unsigned char>(s[j]);
    if ((c & 0xC0) != 0x80) return SequenceLength(c) == s.size() - j ? s.substr(j) : std::string_view();
  }
  return {};
}

}  // namespace

void MetaspaceSplit::Builder::AddMerge(std::string_view a, std::string_view b) {
  // An empty a is no symbol's string (symbols are characters, bytes or the
  // unknown token, and merges only concatenate), so it can join nothing.
  if (!a.empty() && !EndsWith(a, kMarker) && StartsWith(b, kMarker) && bad_.size() <= kMaxBadMerges) {
    bad_.emplace_back(a);
  }
}

std::optional<MetaspaceSplit> MetaspaceSplit::Builder::Finish(const Model& model) const {
  if (!model.marker_in_vocab || !model.ids_unique || model.ignore_merges || model.has_affixes) return std::nullopt;
  if (bad_.size() > kMaxBadMerges) return std::nullopt;
  // A character with no symbol at all would let the symbol before it (a
  // "▁" perhaps) end the left part.
  if (!model.unk && model.byte_tokens.size() != 256) return std::nullopt;
  // The leaves that do not depend on which character precedes the cut: the
  // left part may end with any of them, so none may end a bad a (or be a
  // string a merge could extend with "▁" on the right).
  std::vector<std::string_view> leaves(model.byte_tokens.begin(), model.byte_tokens.end());
  if (model.unk) leaves.push_back(*model.unk);
  for (std::string_view leaf : leaves) {
    if (leaf.empty() || EndsWith(leaf, kMarker)) return std::nullopt;
    for (const std::string& a : bad_) {
      if (EndsWith(a, leaf)) return std::nullopt;
    }
  }
  std::vector<std::string> last_chars;
  for (const std::string& a : bad_) {
    const std::string_view c = LastChar(a);
    if (c.empty()) return std::nullopt;
    last_chars.emplace_back(c);
  }
  std::sort(last_chars.begin(), last_chars.end());
  last_chars.erase(std::unique(last_chars.begin(), last_chars.end()), last_chars.end());
  return MetaspaceSplit(std::move(last_chars));
}

bool MetaspaceSplit::CutBefore(std::string_view word, size_t at) const {
  const std::string_view prev = LastChar(word.substr(0, at));
  // Not after a marker (runs of "▁" merge), nor after anything that is not a
  // whole character (never the case for valid UTF-8; be safe anyway).
  if (prev.empty() || prev == kMarker) return false;
  return unsafe_last_chars_.empty() ||
         !std::binary_search(unsafe_last_chars_.begin(), unsafe_last_chars_.end(), prev);
}

}  // namespace kaon
