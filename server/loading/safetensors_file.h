// One memory-mapped .safetensors file (internal to the loader; use
// WeightStore). The whole header is validated in Open, so every TensorView it
// hands out points inside the mapping with a size that matches dtype × shape.
// Immutable after Open; any thread may read.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "server/loading/safetensors.h"

namespace kaon {

class SafetensorsFile {
 public:
  // Headers beyond this are corrupt or hostile; real checkpoints use a few MB.
  static constexpr uint64_t kMaxHeaderBytes = 100ull << 20;
  // Tensors in one file. Real shards hold hundreds to a few thousand (a
  // whole Llama 3.1 405B is 1138 tensors; DeepSeek-V3, 91k over 163 shards).
  static constexpr size_t kMaxTensors = size_t{1} << 18;
  // Dimensions of one tensor: real weights have 1 to 5.
  static constexpr size_t kMaxRank = 16;
  // The format nests three levels (header, entry, shape); a little room for
  // unknown fields, which the reference implementation ignores.
  static constexpr int kMaxHeaderDepth = 8;

  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);
  ~SafetensorsFile();

  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const std::map<std::string, TensorView>& tensors() const { return tensors_; }
  // The optional "__metadata__" object (string → string).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  explicit SafetensorsFile(std::string path) : path_(std::move(path)) {}
  absl::Status ParseHeader();

  std::string path_;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  std::map<std::string, TensorView> tensors_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace kaon
