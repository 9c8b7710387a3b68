#include "server/tokenizer/post_processor.h"

#include "server/common/status.h"

namespace kaon {
namespace {

// A single-sequence template: fixed ids before and after the sequence.
class TemplatePostProcessor : public PostProcessor {
 public:
  TemplatePostProcessor(std::vector<int32_t> before, std::vector<int32_t> after)
      : before_(std::move(before)), after_(std::move(after)) {}
  void Process(std::vector<int32_t>& ids) const override {
    ids.insert(ids.begin(), before_.begin(), before_.end());
    ids.insert(ids.end(), after_.begin(), after_.end());
  }

 private:
  std::vector<int32_t> before_, after_;
};

class NoopPostProcessor : public PostProcessor {
 public:
  // ByteLevel only adjusts offsets, which kaon does not report.
  void Process(std::vector<int32_t>&) const override {}
};

class SequencePostProcessor : public PostProcessor {
 public:
  explicit SequencePostProcessor(std::vector<std::unique_ptr<PostProcessor>> parts)
      : parts_(std::move(parts)) {}
  void Process(std::vector<int32_t>& ids) const override {
    for (const auto& p : parts_) p->Process(ids);
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> parts_;
};

absl::StatusOr<std::unique_ptr<PostProcessor>> ParseTemplate(const tj::Json& json,
                                                             const std::string& path) {
  KAON_ASSIGN_OR_RETURN(const tj::Json* single, tj::Array(json, "single", path));
  const std::string specials_path = tj::Sub(path, "special_tokens");
  const tj::Json empty = tj::Json::object();
  const tj::Json& specials = json.contains("special_tokens") ? json["special_tokens"] : empty;
  std::vector<int32_t> before, after;
  bool seen_sequence = false;
  for (size_t i = 0; i < single->size(); ++i) {
    const tj::Json& piece = (*single)[i];
    const std::string p = tj::Index(tj::Sub(path, "single"), i);
    if (piece.contains("Sequence")) {
      seen_sequence = true;
      continue;
    }
    if (!piece.contains("SpecialToken")) {
      return tj::Invalid(p, "expected {\"Sequence\": ...} or {\"SpecialToken\": ...}");
    }
    KAON_ASSIGN_OR_RETURN(std::string name, tj::String(piece["SpecialToken"], "id", p + ".SpecialToken"));
    if (!specials.contains(name) || !specials[name].contains("ids") ||
        !specials[name]["ids"].is_array()) {
      return tj::Invalid(tj::Sub(specials_path, name), "missing (used by " + p + ")");
    }
    for (const auto& id : specials[name]["ids"]) {
      KAON_ASSIGN_OR_RETURN(const int32_t checked, tj::TokenId(id, tj::Sub(tj::Sub(specials_path, name), "ids")));
      (seen_sequence ? after : before).push_back(checked);
    }
  }
  return std::make_unique<TemplatePostProcessor>(std::move(before), std::move(after));
}

// RobertaProcessing and BertProcessing wrap the sequence as [cls] A [sep].
absl::StatusOr<std::unique_ptr<PostProcessor>> ParseClsSep(const tj::Json& json,
                                                           const std::string& path) {
  std::vector<int32_t> ids[2];
  const char* keys[2] = {"cls", "sep"};
  for (int k = 0; k < 2; ++k) {
    const std::string p = tj::Sub(path, keys[k]);
    if (!json.contains(keys[k]) || !json[keys[k]].is_array() || json[keys[k]].size() != 2) {
      return tj::Invalid(p, "expected [token, id]");
    }
    KAON_ASSIGN_OR_RETURN(const int32_t id, tj::TokenId(json[keys[k]][1], p));
    ids[k].push_back(id);
  }
  return std::make_unique<TemplatePostProcessor>(std::move(ids[0]), std::move(ids[1]));
}

}  // namespace

std::unique_ptr<PostProcessor> MakeTemplatePostProcessor(std::vector<int32_t> before,
                                                         std::vector<int32_t> after) {
  return std::make_unique<TemplatePostProcessor>(std::move(before), std::move(after));
}

absl::StatusOr<std::unique_ptr<PostProcessor>> ParsePostProcessor(const tj::Json& json,
                                                                  const std::string& path) {
  KAON_ASSIGN_OR_RETURN(std::string type, tj::Type(json, path));
  if (type == "TemplateProcessing") return ParseTemplate(json, path);
  if (type == "ByteLevel") return std::make_unique<NoopPostProcessor>();
  if (type == "RobertaProcessing" || type == "BertProcessing") return ParseClsSep(json, path);
  if (type == "Sequence") {
    KAON_ASSIGN_OR_RETURN(const tj::Json* list, tj::Array(json, "processors", path));
    std::vector<std::unique_ptr<PostProcessor>> parts;
    for (size_t i = 0; i < list->size(); ++i) {
      KAON_ASSIGN_OR_RETURN(
          auto part, ParsePostProcessor((*list)[i], tj::Index(tj::Sub(path, "processors"), i)));
      parts.push_back(std::move(part));
    }
    return std::make_unique<SequencePostProcessor>(std::move(parts));
  }
  return tj::Unsupported(tj::Sub(path, "type"), type);
}

}  // namespace kaon
