#include "server/tokenizer/normalizer.h"

#include <vector>

#include "server/common/status.h"
#include "server/tokenizer/replace_pattern.h"
#include "server/tokenizer/unicode.h"
#include "server/common/utf8.h"

namespace kaon {
namespace {

class SequenceNormalizer : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> parts)
      : parts_(std::move(parts)) {}
  void Normalize(std::string& text) const override {
    for (const auto& p : parts_) p->Normalize(text);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> parts_;
};

class ReplaceNormalizer : public Normalizer {
 public:
  explicit ReplaceNormalizer(ReplacePattern pattern) : pattern_(std::move(pattern)) {}
  void Normalize(std::string& text) const override { pattern_.Apply(text); }

 private:
  ReplacePattern pattern_;
};

class PrependNormalizer : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
  void Normalize(std::string& text) const override {
    // HF leaves empty pieces empty.
    if (!text.empty()) text = prefix_ + text;
  }

 private:
  std::string prefix_;
};

class NfcNormalizer : public Normalizer {
 public:
  void Normalize(std::string& text) const override {
    std::string out;
    if (unicode::ToNfc(text, &out)) text.swap(out);
  }
};

class StripNormalizer : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  void Normalize(std::string& text) const override {
    size_t begin = 0, end = text.size();
    if (left_) {
      for (size_t i = 0; i < end;) {
        if (!unicode::IsWhiteSpace(utf8::Next(text, i))) break;
        begin = i;
      }
    }
    if (right_) {
      // Walk forward remembering where the trailing whitespace run starts.
      size_t run_start = end;
      bool in_run = false;
      for (size_t i = begin; i < end;) {
        const size_t at = i;
        const bool ws = unicode::IsWhiteSpace(utf8::Next(text, i));
        if (ws && !in_run) run_start = at;
        in_run = ws;
      }
      if (in_run) end = run_start;
    }
    text = text.substr(begin, end - begin);
  }

 private:
  bool left_, right_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Normalizer>> ParseNormalizer(const tj::Json& json,
                                                            const std::string& path) {
  KAON_ASSIGN_OR_RETURN(std::string type, tj::Type(json, path));
  if (type == "Sequence") {
    KAON_ASSIGN_OR_RETURN(const tj::Json* list, tj::Array(json, "normalizers", path));
    std::vector<std::unique_ptr<Normalizer>> parts;
    for (size_t i = 0; i < list->size(); ++i) {
      KAON_ASSIGN_OR_RETURN(auto part,
                            ParseNormalizer((*list)[i], tj::Index(tj::Sub(path, "normalizers"), i)));
      parts.push_back(std::move(part));
    }
    return std::make_unique<SequenceNormalizer>(std::move(parts));
  }
  if (type == "Prepend") {
    KAON_ASSIGN_OR_RETURN(std::string prefix, tj::String(json, "prepend", path));
    return std::make_unique<PrependNormalizer>(std::move(prefix));
  }
  if (type == "Replace") {
    KAON_ASSIGN_OR_RETURN(ReplacePattern pattern, ReplacePattern::FromJson(json, path));
    return std::make_unique<ReplaceNormalizer>(std::move(pattern));
  }
  if (type == "NFC") return std::make_unique<NfcNormalizer>();
  if (type == "Strip") {
    KAON_ASSIGN_OR_RETURN(bool left, tj::BoolOr(json, "strip_left", path, false));
    KAON_ASSIGN_OR_RETURN(bool right, tj::BoolOr(json, "strip_right", path, false));
    return std::make_unique<StripNormalizer>(left, right);
  }
  return tj::Unsupported(tj::Sub(path, "type"), type);
}

}  // namespace kaon
