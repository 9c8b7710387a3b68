#include "server/loading/safetensors_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <new>
#include <optional>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "server/common/bounded_json.h"
#include "server/common/status.h"

namespace kaon {
namespace {

// The bounded parser builds ordered_json; key order does not matter here.
using json = nlohmann::ordered_json;

std::optional<DType> ParseDType(const std::string& s) {
  if (s == "F32") return DType::kF32;
  if (s == "F16") return DType::kF16;
  if (s == "BF16") return DType::kBF16;
  return std::nullopt;
}

// The length prefix is little-endian on disk whatever the host is.
uint64_t ReadLE64(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// JSON dumps of header values go into one-line error messages; cap them so a
// hostile header cannot produce a megabyte error.
std::string Excerpt(const json& j) {
  std::string s = j.dump(-1, ' ', /*ensure_ascii=*/true, json::error_handler_t::replace);
  if (s.size() > 80) s = s.substr(0, 77) + "...";
  return s;
}

// Header strings quoted in errors: keep the message on one line and short.
std::string OneLine(std::string s, size_t max = 32) {
  if (s.size() > max) s = s.substr(0, max - 3) + "...";
  for (char& c : s) {
    if (static_cast<unsigned char>(c) < 0x20) c = '?';
  }
  return s;
}

// Tensor names are long (model.layers.31.self_attn.q_proj.weight) but a
// hostile one can be megabytes or hold newlines.
std::string NameForError(const std::string& name) { return OneLine(name, 160); }

}  // namespace

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile(path));

  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    std::string msg = absl::StrCat(path, ": cannot open: ", std::strerror(err));
    return err == ENOENT ? absl::NotFoundError(msg) : absl::PermissionDeniedError(msg);
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return absl::InternalError(absl::StrCat(path, ": fstat failed: ", std::strerror(err)));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a regular file"));
  }
  const size_t size = static_cast<size_t>(st.st_size);
  if (size < 8) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": file is ", size, " bytes, too short for the 8-byte safetensors header length"));
  }
  // Read-only private mapping: pages come in lazily, so the data section is
  // not touched until a tensor is actually read.
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  int map_err = errno;
  ::close(fd);  // the mapping keeps the file alive
  if (map == MAP_FAILED) {
    return absl::InternalError(absl::StrCat(path, ": mmap failed: ", std::strerror(map_err)));
  }
  file->map_ = map;
  file->map_size_ = size;
  KAON_RETURN_IF_ERROR(file->ParseHeader());
  return file;
}

SafetensorsFile::~SafetensorsFile() {
  if (map_ != nullptr) ::munmap(map_, map_size_);
}

absl::Status SafetensorsFile::ParseHeader() {
  const auto* base = static_cast<const unsigned char*>(map_);
  const uint64_t header_len = ReadLE64(base);
  if (header_len > kMaxHeaderBytes) {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": header length ", header_len,
                                                   " exceeds the ", kMaxHeaderBytes,
                                                   "-byte limit; corrupt file?"));
  }
  if (header_len > map_size_ - 8) {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": header length ", header_len,
                                                   " runs past the end of the file (", map_size_,
                                                   " bytes)"));
  }
  const char* header_begin = reinterpret_cast<const char*>(base + 8);
  // The bounded parser stops deep nesting and runaway element counts while
  // parsing (a 100 MB header of empty arrays would otherwise build gigabytes
  // of DOM); a real header has about ten values per tensor.
  JsonLimits limits;
  limits.max_depth = kMaxHeaderDepth;
  limits.max_elements = kMaxTensors * 32;
  BoundedJsonResult parsed;
  try {
    parsed = ParseJsonBounded(std::string_view(header_begin, header_len), limits);
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(absl::StrCat(path_, ": out of memory parsing the ", header_len, "-byte header"));
  }
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": header is not valid JSON: ", parsed.error->message));
  }
  const json& header = parsed.value;
  if (!header.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path_, ": header is a JSON ", header.type_name(), ", expected an object"));
  }
  if (const size_t n = header.size() - header.count("__metadata__"); n > kMaxTensors) {
    return absl::InvalidArgumentError(
        absl::StrCat(path_, ": header lists ", n, " tensors, more than the limit of ", kMaxTensors));
  }

  const std::byte* data = reinterpret_cast<const std::byte*>(base + 8 + header_len);
  const uint64_t data_size = map_size_ - 8 - header_len;

  struct Range {
    uint64_t begin, end;
    const std::string* name;
  };
  std::vector<Range> ranges;

  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) {
        return absl::InvalidArgumentError(absl::StrCat(path_, ": __metadata__ is a JSON ",
                                                       entry.type_name(), ", expected an object"));
      }
      for (const auto& [key, value] : entry.items()) {
        if (!value.is_string()) {
          return absl::InvalidArgumentError(absl::StrCat(path_, ": __metadata__ value for \"", NameForError(key),
                                                         "\" is not a string: ", Excerpt(value)));
        }
        metadata_[key] = value.get<std::string>();
      }
      continue;
    }
    // `name` by init-capture: clang 14 (the fuzz build) cannot capture a
    // structured binding directly.
    auto bad = [&, &name = name](const auto&... parts) {
      return absl::InvalidArgumentError(absl::StrCat(path_, ": tensor ", NameForError(name), ": ", parts...));
    };
    if (!entry.is_object())
      return bad("entry is a JSON ", entry.type_name(), ", expected an object");

    auto dtype_it = entry.find("dtype");
    if (dtype_it == entry.end()) return bad("missing dtype");
    if (!dtype_it->is_string()) return bad("dtype is not a string: ", Excerpt(*dtype_it));
    const std::string dtype_str = dtype_it->get<std::string>();
    std::optional<DType> dtype = ParseDType(dtype_str);
    if (!dtype) {
      return absl::InvalidArgumentError(absl::StrCat("unsupported dtype ", OneLine(dtype_str),
                                                     " for tensor ", NameForError(name), " in ", path_));
    }

    auto shape_it = entry.find("shape");
    if (shape_it == entry.end()) return bad("missing shape");
    if (!shape_it->is_array()) return bad("shape is not an array: ", Excerpt(*shape_it));
    if (shape_it->size() > kMaxRank) {
      return bad("shape has ", shape_it->size(), " dimensions, more than the limit of ", kMaxRank);
    }
    std::vector<int64_t> shape;
    int64_t numel = 1;
    for (const json& dim : *shape_it) {
      // JSON "64.0" is a float to nlohmann; only true integers are dims.
      if (!dim.is_number_integer()) return bad("shape dim is not an integer: ", Excerpt(dim));
      if (!dim.is_number_unsigned()) return bad("shape dim is negative: ", Excerpt(dim));
      const uint64_t u = dim.get<uint64_t>();
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return bad("shape dim ", u, " is too large");
      }
      const auto d = static_cast<int64_t>(u);
      if (__builtin_mul_overflow(numel, d, &numel)) {
        return bad("shape ", Excerpt(*shape_it), " overflows the element count");
      }
      shape.push_back(d);
    }

    size_t expected_bytes = 0;
    if (__builtin_mul_overflow(static_cast<uint64_t>(numel), DTypeSize(*dtype), &expected_bytes)) {
      return bad("shape ", Excerpt(*shape_it), " overflows the byte count");
    }

    auto offsets_it = entry.find("data_offsets");
    if (offsets_it == entry.end()) return bad("missing data_offsets");
    const json& offsets = *offsets_it;
    if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
        !offsets[1].is_number_unsigned()) {
      return bad("data_offsets must be two non-negative integers, got ", Excerpt(offsets));
    }
    const uint64_t begin = offsets[0].get<uint64_t>();
    const uint64_t end = offsets[1].get<uint64_t>();
    if (begin > end) return bad("data_offsets [", begin, ", ", end, "] are not ascending");
    if (end > data_size) {
      return bad("data_offsets end ", end, " is past the end of the data section (", data_size,
                 " bytes)");
    }
    if (end - begin != expected_bytes) {
      return bad("data_offsets [", begin, ", ", end, "] span ", end - begin, " bytes but ",
                 dtype_str, " shape ", Excerpt(*shape_it), " needs ", expected_bytes);
    }

    TensorView view;
    view.name = name;
    view.file = path_;
    view.dtype = *dtype;
    view.shape = std::move(shape);
    view.data = data + begin;
    view.nbytes = static_cast<size_t>(end - begin);
    auto [it, inserted] = tensors_.emplace(name, std::move(view));
    if (end > begin) ranges.push_back({begin, end, &it->first});
  }

  // Empty tensors occupy no bytes, so only non-empty ranges can collide.
  std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) {
    return std::tie(a.begin, a.end) < std::tie(b.begin, b.end);
  });
  for (size_t i = 1; i < ranges.size(); ++i) {
    if (ranges[i].begin < ranges[i - 1].end) {
      return absl::InvalidArgumentError(
          absl::StrCat(path_, ": tensor ", NameForError(*ranges[i].name), " bytes [", ranges[i].begin, ", ",
                       ranges[i].end, ") overlap tensor ", NameForError(*ranges[i - 1].name), " bytes [",
                       ranges[i - 1].begin, ", ", ranges[i - 1].end, ")"));
    }
  }
  return absl::OkStatus();
}

}  // namespace kaon
