#include "server/loading/safetensors_writer.h"

#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstring>
#include <exception>
#include <limits>
#include <set>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace kaon {
namespace {

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian");

// Closes the FILE* and removes the temporary on every early return.
class TempFile {
 public:
  explicit TempFile(std::string path) : path_(std::move(path)), f_(std::fopen(path_.c_str(), "wb")) {}
  ~TempFile() {
    if (f_ != nullptr) std::fclose(f_);
    if (!committed_) std::remove(path_.c_str());
  }
  FILE* get() const { return f_; }
  bool Close() {
    const bool ok = std::fclose(f_) == 0;
    f_ = nullptr;
    return ok;
  }
  void Commit() { committed_ = true; }

 private:
  std::string path_;
  FILE* f_;
  bool committed_ = false;
};

}  // namespace

int64_t TensorToWrite::numel() const {
  // Saturates instead of overflowing: callers size plans from it, and a
  // count of INT64_MAX is refused as too large wherever it is compared.
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return -1;
    if (__builtin_mul_overflow(n, d, &n)) return std::numeric_limits<int64_t>::max();
  }
  return n;
}

TensorToWrite TensorFromValues(std::string name, DType dtype, std::vector<int64_t> shape,
                               std::vector<float> values) {
  TensorToWrite t{std::move(name), dtype, std::move(shape), nullptr};
  t.fill = [values = std::move(values)](float* out) { std::copy(values.begin(), values.end(), out); };
  return t;
}

absl::StatusOr<uint64_t> WriteSafetensors(const std::string& path, std::vector<TensorToWrite> tensors) {
  std::sort(tensors.begin(), tensors.end(),
            [](const TensorToWrite& a, const TensorToWrite& b) { return a.name < b.name; });
  nlohmann::json header = nlohmann::json::object();
  header["__metadata__"] = {{"format", "pt"}};
  uint64_t offset = 0;
  int64_t max_numel = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorToWrite& t = tensors[i];
    auto bad = [&](const auto&... parts) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": tensor ", t.name, ": ", parts...));
    };
    if (t.name.empty() || t.name == "__metadata__") return bad("invalid tensor name");
    if (i > 0 && tensors[i - 1].name == t.name) return bad("duplicate tensor name");
    if (t.dtype != DType::kF32 && t.dtype != DType::kBF16) return bad("cannot write dtype ", DTypeName(t.dtype));
    if (!t.fill) return bad("no values");
    for (int64_t d : t.shape) {
      if (d < 0) return bad("negative dimension ", d);
    }
    uint64_t nbytes = 0, end = 0;
    if (t.numel() == std::numeric_limits<int64_t>::max() ||
        __builtin_mul_overflow(static_cast<uint64_t>(t.numel()), DTypeSize(t.dtype), &nbytes) ||
        __builtin_add_overflow(offset, nbytes, &end)) {
      return bad("shape overflows the file's byte count");
    }
    header[t.name] = {{"dtype", DTypeName(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
    max_numel = std::max(max_numel, t.numel());
  }
  std::string text = header.dump();
  // Spaces keep the JSON valid and put the data section on an 8-byte boundary.
  text.append((8 - text.size() % 8) % 8, ' ');

  const std::string tmp = path + ".tmp";
  TempFile file(tmp);
  if (file.get() == nullptr) {
    return absl::PermissionDeniedError(absl::StrCat(tmp, ": cannot open for writing: ", std::strerror(errno)));
  }
  auto write = [&](const void* data, size_t n) { return std::fwrite(data, 1, n, file.get()) == n; };
  const uint64_t header_len = text.size();
  unsigned char len_bytes[8];
  for (int i = 0; i < 8; ++i) len_bytes[i] = static_cast<unsigned char>(header_len >> (8 * i));
  bool ok = write(len_bytes, 8) && write(text.data(), text.size());
  // One tensor's values at a time; a tensor larger than memory is refused
  // here rather than ending the process.
  std::vector<float> values;
  std::vector<uint16_t> halves;
  try {
    values.resize(static_cast<size_t>(max_numel));
  } catch (const std::exception&) {  // bad_alloc, or length_error past max_size
    return absl::ResourceExhaustedError(
        absl::StrCat(path, ": cannot allocate ", max_numel, " fp32 values for the largest tensor"));
  }
  for (const TensorToWrite& t : tensors) {
    if (!ok) break;
    const size_t n = static_cast<size_t>(t.numel());
    t.fill(values.data());
    if (t.dtype == DType::kF32) {
      ok = write(values.data(), n * sizeof(float));
    } else {
      try {
        halves.resize(n);
      } catch (const std::exception&) {
        return absl::ResourceExhaustedError(absl::StrCat(path, ": cannot allocate ", n, " bf16 values for ", t.name));
      }
      for (size_t i = 0; i < n; ++i) halves[i] = FloatToBF16Bits(values[i]);
      ok = write(halves.data(), n * sizeof(uint16_t));
    }
  }
  if (!ok || !file.Close()) {
    return absl::InternalError(absl::StrCat(tmp, ": write failed: ", std::strerror(errno)));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cannot rename ", tmp, " to ", path, ": ", std::strerror(errno)));
  }
  file.Commit();
  return 8 + header_len + offset;
}

}  // namespace kaon
