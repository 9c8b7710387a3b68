// Reading small files (configs, tokenizer.json) with errors that name the file.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace kaon {

absl::StatusOr<std::string> ReadFileToString(const std::string& path);

// Parses a JSON file; the error names the file and the parser's position.
// ordered_json keeps key order, which templates and round trips depend on.
absl::StatusOr<nlohmann::ordered_json> ReadJsonFile(const std::string& path);

bool FileExists(const std::string& path);

std::string JoinPath(const std::string& dir, const std::string& name);

}  // namespace kaon
