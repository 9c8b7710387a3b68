#include "server/tokenizer/added_vocabulary.h"

#include <algorithm>

#include "absl/strings/string_view.h"
#include "server/common/status.h"
#include "server/tokenizer/normalizer.h"
#include "server/tokenizer/regex.h"
#include "server/tokenizer/unicode.h"
#include "server/common/utf8.h"

namespace kaon {
namespace {

// HF decides single_word with the regex crate's Unicode \w.
bool IsWordChar(char32_t cp) {
  if (cp < 0x80) {
    return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || (cp >= '0' && cp <= '9') ||
           cp == '_';
  }
  static const auto* const word =
      Regex::Compile("[\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}]")->release();
  std::string s;
  utf8::Append(s, cp);
  std::vector<std::pair<size_t, size_t>> m;
  word->FindAll(s, &m);
  return !m.empty();
}

char32_t LastChar(std::string_view s) {
  size_t i = s.size();
  while (i > 0 && (static_cast<unsigned char>(s[i - 1]) & 0xC0) == 0x80) --i;
  if (i > 0) --i;
  return utf8::Next(s, i);
}

}  // namespace

void AddedVocabulary::Matcher::Add(std::string_view pattern, int32_t token_index) {
  if (pattern.empty()) return;
  int32_t node = 0;
  for (char ch : pattern) {
    const auto c = static_cast<unsigned char>(ch);
    int32_t next = -1;
    for (const auto& [k, v] : nodes[node].children) {
      if (k == c) next = v;
    }
    if (next < 0) {
      next = static_cast<int32_t>(nodes.size());
      nodes[node].children.emplace_back(c, next);
      nodes.emplace_back();
    }
    node = next;
  }
  // The first token with a given content wins, like aho-corasick's pattern order.
  if (nodes[node].token < 0) nodes[node].token = token_index;
  first_byte[static_cast<unsigned char>(pattern[0])] = true;
  tokens.push_back(token_index);
}

std::pair<int32_t, size_t> AddedVocabulary::Matcher::LongestAt(std::string_view text,
                                                               size_t pos) const {
  std::pair<int32_t, size_t> best{-1, pos};
  int32_t node = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    int32_t next = -1;
    for (const auto& [k, v] : nodes[node].children) {
      if (k == c) {
        next = v;
        break;
      }
    }
    if (next < 0) break;
    node = next;
    if (nodes[node].token >= 0) best = {nodes[node].token, i + 1};
  }
  return best;
}

absl::StatusOr<AddedVocabulary> AddedVocabulary::FromJson(const tj::Json& list,
                                                          const std::string& path,
                                                          const Normalizer* normalizer) {
  AddedVocabulary v;
  if (list.is_null()) return v;
  if (!list.is_array()) return tj::Invalid(path, "expected an array");
  for (size_t i = 0; i < list.size(); ++i) {
    const tj::Json& t = list[i];
    const std::string p = tj::Index(path, i);
    AddedToken a;
    if (!t.is_object() || !t.contains("id")) return tj::Invalid(tj::Sub(p, "id"), "missing");
    KAON_ASSIGN_OR_RETURN(a.id, tj::TokenId(t["id"], tj::Sub(p, "id")));
    KAON_ASSIGN_OR_RETURN(a.content, tj::String(t, "content", p));
    KAON_ASSIGN_OR_RETURN(a.special, tj::BoolOr(t, "special", p, false));
    KAON_ASSIGN_OR_RETURN(a.normalized, tj::BoolOr(t, "normalized", p, !a.special));
    KAON_ASSIGN_OR_RETURN(a.lstrip, tj::BoolOr(t, "lstrip", p, false));
    KAON_ASSIGN_OR_RETURN(a.rstrip, tj::BoolOr(t, "rstrip", p, false));
    KAON_ASSIGN_OR_RETURN(a.single_word, tj::BoolOr(t, "single_word", p, false));
    const size_t index = v.tokens_.size();
    v.by_id_.try_emplace(a.id, index);
    v.by_content_.try_emplace(a.content, index);
    v.tokens_.push_back(std::move(a));
  }
  // HF registers special tokens before the others.
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t i = 0; i < v.tokens_.size(); ++i) {
      const AddedToken& a = v.tokens_[i];
      if (a.special != (pass == 0)) continue;
      if (a.normalized) {
        std::string pattern = a.content;
        if (normalizer != nullptr) normalizer->Normalize(pattern);
        v.normalized_.Add(pattern, static_cast<int32_t>(i));
      } else {
        v.raw_.Add(a.content, static_cast<int32_t>(i));
      }
    }
  }
  return v;
}

void AddedVocabulary::Split(const Matcher& m, std::string_view text,
                            std::vector<Segment>& out) const {
  size_t start_offset = 0;
  if (!m.tokens.empty()) {
    size_t pos = 0;
    while (pos < text.size()) {
      if (!m.first_byte[static_cast<unsigned char>(text[pos])]) {
        ++pos;
        continue;
      }
      auto [index, end] = m.LongestAt(text, pos);
      if (index < 0) {
        ++pos;
        continue;
      }
      const AddedToken& tok = tokens_[index];
      size_t start = pos;
      size_t stop = end;
      pos = end;
      if (tok.single_word) {
        const bool start_space = start == 0 || !IsWordChar(LastChar(text.substr(0, start)));
        size_t k = stop;
        const bool stop_space = stop == text.size() || !IsWordChar(utf8::Next(text, k));
        if (!start_space || !stop_space) continue;
      }
      if (tok.lstrip) {
        size_t s = start;
        while (s > 0) {
          size_t b = s - 1;
          while (b > 0 && (static_cast<unsigned char>(text[b]) & 0xC0) == 0x80) --b;
          size_t k = b;
          if (!unicode::IsWhiteSpace(utf8::Next(text, k))) break;
          s = b;
        }
        start = std::max(s, start_offset);
      }
      if (tok.rstrip) {
        while (stop < text.size()) {
          size_t k = stop;
          if (!unicode::IsWhiteSpace(utf8::Next(text, k))) break;
          stop = k;
        }
      }
      if (start_offset < start) {
        out.push_back(Segment{std::string(text.substr(start_offset, start - start_offset)),
                              std::nullopt, start_offset});
      }
      out.push_back(Segment{std::string(text.substr(start, stop - start)), tok.id, start});
      start_offset = stop;
    }
  }
  if (start_offset < text.size()) {
    out.push_back(Segment{std::string(text.substr(start_offset)), std::nullopt, start_offset});
  }
}

const AddedToken* AddedVocabulary::FindById(int32_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

std::optional<int32_t> AddedVocabulary::FindByContent(std::string_view content) const {
  auto it = by_content_.find(absl::string_view(content.data(), content.size()));
  if (it == by_content_.end()) return std::nullopt;
  return tokens_[it->second].id;
}

bool AddedVocabulary::IsSpecialContent(std::string_view content) const {
  auto it = by_content_.find(absl::string_view(content.data(), content.size()));
  return it != by_content_.end() && tokens_[it->second].special;
}

}  // namespace kaon
