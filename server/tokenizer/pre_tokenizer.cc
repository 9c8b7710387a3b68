#include "server/tokenizer/pre_tokenizer.h"

#include <algorithm>
#include <utility>

#include "server/common/status.h"
#include "server/tokenizer/byte_level.h"
#include "server/tokenizer/regex.h"
#include "server/common/utf8.h"

namespace kaon {
namespace {

using Ranges = std::vector<std::pair<size_t, size_t>>;

enum class Behavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

// GPT-2's pattern, used by ByteLevel when use_regex is true.
constexpr char kGpt2Pattern[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

struct Piece {
  size_t start, end;
  bool is_match;
};

// HF's NormalizedString::split: turns the matches of a pattern into pieces
// according to the delimiter behavior.
void SplitByMatches(PreToken& token, const Ranges& matches, bool invert, Behavior behavior,
                    std::vector<PreToken>& out) {
  const std::string& text = token.text;
  std::vector<Piece> pieces;
  size_t prev = 0;
  for (const auto& [s, e] : matches) {
    if (prev != s) pieces.push_back({prev, s, invert});
    pieces.push_back({s, e, !invert});
    prev = e;
  }
  if (prev != text.size() || text.empty()) pieces.push_back({prev, text.size(), invert});

  std::vector<Piece> kept;  // is_match now means "remove"
  bool previous_match = false;
  switch (behavior) {
    case Behavior::kRemoved:
      kept = std::move(pieces);
      break;
    case Behavior::kIsolated:
      for (Piece p : pieces) kept.push_back({p.start, p.end, false});
      break;
    case Behavior::kMergedWithPrevious:
      for (Piece p : pieces) {
        if (p.is_match && !previous_match && !kept.empty()) {
          kept.back().end = p.end;
        } else {
          kept.push_back({p.start, p.end, false});
        }
        previous_match = p.is_match;
      }
      break;
    case Behavior::kMergedWithNext:
      for (auto it = pieces.rbegin(); it != pieces.rend(); ++it) {
        if (it->is_match && !previous_match && !kept.empty()) {
          kept.back().start = it->start;
        } else {
          kept.push_back({it->start, it->end, false});
        }
        previous_match = it->is_match;
      }
      std::reverse(kept.begin(), kept.end());
      break;
    case Behavior::kContiguous:
      for (Piece p : pieces) {
        if (p.is_match == previous_match && !kept.empty()) {
          kept.back().end = p.end;
        } else {
          kept.push_back({p.start, p.end, false});
        }
        previous_match = p.is_match;
      }
      break;
  }
  if (kept.size() == 1 && !kept[0].is_match && kept[0].start == 0 && kept[0].end == text.size()) {
    if (!text.empty()) out.push_back(std::move(token));
    return;
  }
  for (const Piece& p : kept) {
    if (p.is_match || p.start == p.end) continue;
    out.push_back(PreToken{text.substr(p.start, p.end - p.start), token.at_start && p.start == 0});
  }
}

absl::StatusOr<Behavior> ParseBehavior(const tj::Json& json, const std::string& path) {
  KAON_ASSIGN_OR_RETURN(std::string b, tj::String(json, "behavior", path));
  if (b == "Removed") return Behavior::kRemoved;
  if (b == "Isolated") return Behavior::kIsolated;
  if (b == "MergedWithPrevious") return Behavior::kMergedWithPrevious;
  if (b == "MergedWithNext") return Behavior::kMergedWithNext;
  if (b == "Contiguous") return Behavior::kContiguous;
  return tj::Unsupported(tj::Sub(path, "behavior"), b);
}

class SequencePreTokenizer : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> parts)
      : parts_(std::move(parts)) {}
  void Apply(std::vector<PreToken>& tokens) const override {
    for (const auto& p : parts_) p->Apply(tokens);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> parts_;
};

class SplitPreTokenizer : public PreTokenizer {
 public:
  SplitPreTokenizer(std::unique_ptr<Regex> regex, Behavior behavior, bool invert)
      : regex_(std::move(regex)), behavior_(behavior), invert_(invert) {}
  void Apply(std::vector<PreToken>& tokens) const override {
    std::vector<PreToken> out;
    out.reserve(tokens.size() * 4);
    Ranges matches;
    for (PreToken& t : tokens) {
      regex_->FindAll(t.text, &matches);
      SplitByMatches(t, matches, invert_, behavior_, out);
    }
    tokens.swap(out);
  }

 private:
  std::unique_ptr<Regex> regex_;
  Behavior behavior_;
  bool invert_;
};

class ByteLevelPreTokenizer : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, std::unique_ptr<Regex> regex)
      : add_prefix_space_(add_prefix_space), regex_(std::move(regex)) {}
  void Apply(std::vector<PreToken>& tokens) const override {
    if (add_prefix_space_) {
      for (PreToken& t : tokens) {
        if (t.text.empty() || t.text[0] != ' ') t.text = " " + t.text;  // insert(0, ...) trips GCC 12's -Wrestrict
      }
    }
    if (regex_) {
      std::vector<PreToken> out;
      Ranges matches;
      for (PreToken& t : tokens) {
        regex_->FindAll(t.text, &matches);
        SplitByMatches(t, matches, false, Behavior::kIsolated, out);
      }
      tokens.swap(out);
    }
    std::string mapped;
    for (PreToken& t : tokens) {
      mapped.clear();
      byte_level::Encode(t.text, mapped);
      t.text.swap(mapped);
    }
  }

 private:
  bool add_prefix_space_;
  std::unique_ptr<Regex> regex_;  // null when use_regex is false
};

class MetaspacePreTokenizer : public PreTokenizer {
 public:
  enum class Prepend { kAlways, kFirst, kNever };
  MetaspacePreTokenizer(std::string replacement, Prepend prepend, bool split)
      : replacement_(std::move(replacement)), prepend_(prepend), split_(split) {}
  void Apply(std::vector<PreToken>& tokens) const override {
    std::vector<PreToken> out;
    for (PreToken& t : tokens) {
      std::string replaced;
      for (char c : t.text) {
        if (c == ' ') {
          replaced += replacement_;
        } else {
          replaced.push_back(c);
        }
      }
      const bool starts = replaced.compare(0, replacement_.size(), replacement_) == 0;
      if (!starts && (prepend_ == Prepend::kAlways || (prepend_ == Prepend::kFirst && t.at_start))) {
        replaced = replacement_ + replaced;
      }
      PreToken r{std::move(replaced), t.at_start};
      if (!split_) {
        if (!r.text.empty()) out.push_back(std::move(r));
        continue;
      }
      Ranges matches;
      for (size_t p = r.text.find(replacement_); p != std::string::npos;
           p = r.text.find(replacement_, p + replacement_.size())) {
        matches.emplace_back(p, p + replacement_.size());
      }
      SplitByMatches(r, matches, false, Behavior::kMergedWithNext, out);
    }
    tokens.swap(out);
  }

 private:
  std::string replacement_;
  Prepend prepend_;
  bool split_;
};

absl::StatusOr<std::unique_ptr<Regex>> CompileAt(const std::string& pattern, const std::string& field) {
  auto r = Regex::Compile(pattern);
  if (!r.ok()) return tj::Invalid(field, std::string(r.status().message()));
  return r;
}

}  // namespace

absl::StatusOr<std::unique_ptr<PreTokenizer>> ParsePreTokenizer(const tj::Json& json,
                                                                const std::string& path) {
  KAON_ASSIGN_OR_RETURN(std::string type, tj::Type(json, path));
  if (type == "Sequence") {
    KAON_ASSIGN_OR_RETURN(const tj::Json* list, tj::Array(json, "pretokenizers", path));
    std::vector<std::unique_ptr<PreTokenizer>> parts;
    for (size_t i = 0; i < list->size(); ++i) {
      KAON_ASSIGN_OR_RETURN(
          auto part, ParsePreTokenizer((*list)[i], tj::Index(tj::Sub(path, "pretokenizers"), i)));
      parts.push_back(std::move(part));
    }
    return std::make_unique<SequencePreTokenizer>(std::move(parts));
  }
  if (type == "Split") {
    bool is_regex = false;
    KAON_ASSIGN_OR_RETURN(std::string pattern, tj::Pattern(json, "pattern", path, &is_regex));
    KAON_ASSIGN_OR_RETURN(Behavior behavior, ParseBehavior(json, path));
    KAON_ASSIGN_OR_RETURN(bool invert, tj::BoolOr(json, "invert", path, false));
    const std::string field = tj::Sub(path, "pattern");
    std::unique_ptr<Regex> regex;
    if (is_regex) {
      KAON_ASSIGN_OR_RETURN(regex, CompileAt(pattern, field));
    } else {
      auto r = Regex::Literal(pattern);
      if (!r.ok()) return tj::Invalid(field, std::string(r.status().message()));
      regex = *std::move(r);
    }
    return std::make_unique<SplitPreTokenizer>(std::move(regex), behavior, invert);
  }
  if (type == "ByteLevel") {
    KAON_ASSIGN_OR_RETURN(bool add_prefix_space, tj::BoolOr(json, "add_prefix_space", path, true));
    KAON_ASSIGN_OR_RETURN(bool use_regex, tj::BoolOr(json, "use_regex", path, true));
    std::unique_ptr<Regex> regex;
    if (use_regex) {
      KAON_ASSIGN_OR_RETURN(regex, CompileAt(kGpt2Pattern, path));
    }
    return std::make_unique<ByteLevelPreTokenizer>(add_prefix_space, std::move(regex));
  }
  if (type == "Metaspace") {
    KAON_ASSIGN_OR_RETURN(std::string replacement, tj::StringOr(json, "replacement", path, "\u2581"));
    size_t n = 0;
    if (replacement.empty() || (utf8::Next(replacement, n), n != replacement.size())) {
      return tj::Invalid(tj::Sub(path, "replacement"), "expected a single character");
    }
    auto prepend = MetaspacePreTokenizer::Prepend::kAlways;
    if (json.contains("prepend_scheme") && !json["prepend_scheme"].is_null()) {
      KAON_ASSIGN_OR_RETURN(std::string scheme, tj::String(json, "prepend_scheme", path));
      if (scheme == "always") {
        prepend = MetaspacePreTokenizer::Prepend::kAlways;
      } else if (scheme == "first") {
        prepend = MetaspacePreTokenizer::Prepend::kFirst;
      } else if (scheme == "never") {
        prepend = MetaspacePreTokenizer::Prepend::kNever;
      } else {
        return tj::Unsupported(tj::Sub(path, "prepend_scheme"), scheme);
      }
    } else {
      KAON_ASSIGN_OR_RETURN(bool add, tj::BoolOr(json, "add_prefix_space", path, true));
      prepend = add ? MetaspacePreTokenizer::Prepend::kAlways : MetaspacePreTokenizer::Prepend::kNever;
    }
    KAON_ASSIGN_OR_RETURN(bool split, tj::BoolOr(json, "split", path, true));
    return std::make_unique<MetaspacePreTokenizer>(std::move(replacement), prepend, split);
  }
  return tj::Unsupported(tj::Sub(path, "type"), type);
}

}  // namespace kaon
