// Reading small files (configs, tokenizer.json) with errors that name the file.
// Every read is bounded: a file larger than its caller's limit is refused
// before anything is allocated for it, and JSON goes through the bounded
// parser (server/common/bounded_json.h), so a hostile file ends in a one-line
// error instead of std::bad_alloc, a stack overflow or a quadratic parse.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace kaon {

// The default ceiling for ReadFileToString / ReadJsonFile. Model directories'
// small files (config.json, generation_config.json, tokenizer_config.json,
// model.safetensors.index.json, chat templates) are kilobytes to a few
// megabytes; tokenizer.json, the largest, is tens of megabytes for real
// 256k-token vocabularies. 1 GiB is far above all of them and still far below
// what would exhaust a serving machine.
inline constexpr uint64_t kDefaultMaxFileBytes = uint64_t{1} << 30;

// The whole file; a file over `max_bytes` is refused by size (the error names
// the file, its size and the limit) before it is read.
absl::StatusOr<std::string> ReadFileToString(const std::string& path,
                                             uint64_t max_bytes = kDefaultMaxFileBytes);

// Parses a JSON file; the error names the file and the parser's position.
// ordered_json keeps key order, which templates and round trips depend on.
// Nesting deeper than bounded_json's default (128 levels, serde_json's) is
// refused: nothing a model directory holds comes near it.
absl::StatusOr<nlohmann::ordered_json> ReadJsonFile(const std::string& path,
                                                    uint64_t max_bytes = kDefaultMaxFileBytes);

bool FileExists(const std::string& path);

std::string JoinPath(const std::string& dir, const std::string& name);

}  // namespace kaon
