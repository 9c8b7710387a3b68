#include "server/common/files.h"

#include <filesystem>
#include <fstream>
#include <new>

#include "absl/strings/str_cat.h"
#include "server/common/bounded_json.h"

namespace kaon {

absl::StatusOr<std::string> ReadFileToString(const std::string& path, uint64_t max_bytes) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return absl::NotFoundError(absl::StrCat(path, ": no such file"));
  }
  const uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec) return absl::NotFoundError(absl::StrCat(path, ": cannot stat: ", ec.message()));
  if (size > max_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": file is ", size, " bytes, more than the ", max_bytes, "-byte limit for it"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::string text;
  try {
    text.resize(static_cast<size_t>(size));
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(absl::StrCat(path, ": out of memory reading ", size, " bytes"));
  }
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) return absl::DataLossError(absl::StrCat(path, ": read error"));
  // A file that shrank while being read is read as far as it goes.
  text.resize(static_cast<size_t>(in.gcount()));
  return text;
}

absl::StatusOr<nlohmann::ordered_json> ReadJsonFile(const std::string& path, uint64_t max_bytes) {
  auto text = ReadFileToString(path, max_bytes);
  if (!text.ok()) return text.status();
  try {
    BoundedJsonResult parsed = ParseJsonBounded(*text, kaon::JsonLimits{});
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": malformed JSON: ", parsed.error->message));
    }
    return std::move(parsed.value);
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(absl::StrCat(path, ": out of memory parsing ", text->size(), " bytes of JSON"));
  }
}

bool FileExists(const std::string& path) {
  std::error_code ec;
  return std::filesystem::is_regular_file(path, ec);
}

std::string JoinPath(const std::string& dir, const std::string& name) {
  return (std::filesystem::path(dir) / name).string();
}

}  // namespace kaon
