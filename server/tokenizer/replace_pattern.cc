#include "server/tokenizer/replace_pattern.h"

#include <utility>
#include <vector>

#include "server/common/status.h"

namespace kaon {

absl::StatusOr<ReplacePattern> ReplacePattern::FromJson(const tj::Json& json, const std::string& path) {
  ReplacePattern r;
  bool is_regex = false;
  KAON_ASSIGN_OR_RETURN(std::string pattern, tj::Pattern(json, "pattern", path, &is_regex));
  KAON_ASSIGN_OR_RETURN(r.content_, tj::String(json, "content", path));
  if (is_regex) {
    auto compiled = Regex::Compile(pattern);
    if (!compiled.ok()) return tj::Invalid(tj::Sub(path, "pattern"), std::string(compiled.status().message()));
    r.regex_ = *std::move(compiled);
  } else {
    r.literal_ = std::move(pattern);
  }
  return r;
}

void ReplacePattern::Apply(std::string& text) const {
  std::vector<std::pair<size_t, size_t>> matches;
  if (regex_) {
    regex_->FindAll(text, &matches);
  } else if (!literal_.empty()) {
    for (size_t pos = text.find(literal_); pos != std::string::npos;
         pos = text.find(literal_, pos + literal_.size())) {
      matches.emplace_back(pos, pos + literal_.size());
    }
  }
  if (matches.empty()) return;
  std::string out;
  out.reserve(text.size() + matches.size() * content_.size());
  size_t prev = 0;
  for (const auto& [s, e] : matches) {
    out.append(text, prev, s - prev);
    out += content_;
    prev = e;
  }
  out.append(text, prev, std::string::npos);
  text.swap(out);
}

}  // namespace kaon
