// Memory-mapped safetensors checkpoints, single-file or sharded
// (model.safetensors.index.json). Every header field is validated against the
// file before a tensor is handed out; errors name the file and the tensor.
// Thread-safety: immutable after Open; any thread may read.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace kaon {

// Dtypes kaon reads from disk. Others (F64, I8, F8_*, …) are refused by name.
enum class DType { kF32, kF16, kBF16 };

const char* DTypeName(DType dtype);  // "F32", "F16", "BF16" (safetensors spelling)
size_t DTypeSize(DType dtype);

// A tensor inside a mapped file; valid while its WeightStore lives.
struct TensorView {
  std::string name;
  std::string file;  // path of the file holding it, for error messages
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const std::byte* data = nullptr;
  size_t nbytes = 0;

  int64_t numel() const;
};

// Widens `count` elements starting at element `offset` to fp32 (exact for
// F16/BF16). The caller guarantees offset + count <= numel().
void ConvertToF32(const TensorView& t, size_t offset, size_t count, float* out);

// fp32 → bfloat16 bits, rounding to nearest with ties to even (as torch and
// gguf-py do); NaN stays a quiet NaN of the same sign, overflow gives ±inf.
uint16_t FloatToBF16Bits(float value);

// The same elements as bfloat16 bits: BF16 copied, F32 and F16 rounded to
// nearest even (what a checkpoint converted with torch would hold).
void ConvertToBF16(const TensorView& t, size_t offset, size_t count, uint16_t* out);

class SafetensorsFile;

// A tensor whose bytes the store owns (--load-format dummy: random weights
// generated in memory instead of read from files).
struct OwnedTensor {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  std::vector<std::byte> bytes;
};

// All tensors of a model directory. Get records which tensors were read, so
// that after a model has loaded, UnreadNames() lists what the checkpoint holds
// that the model does not use (models/registry.h refuses those).
class WeightStore {
 public:
  // Opens `dir/model.safetensors`, or every shard listed in
  // `dir/model.safetensors.index.json` (checking that each listed tensor is in
  // the shard the index names).
  static absl::StatusOr<std::unique_ptr<WeightStore>> Open(const std::string& dir);
  // Bounds on model.safetensors.index.json, checked before it is parsed or
  // any shard is opened. DeepSeek-V3's index (91k tensors, 163 shards) is
  // 9 MB; Kimi K2's, about 15 MB.
  static constexpr uint64_t kMaxIndexFileBytes = uint64_t{128} << 20;
  static constexpr size_t kMaxIndexTensors = size_t{1} << 20;
  // Serves `tensors` from memory; `label` stands for the directory in error
  // messages. Byte counts must match dtype and shape (checked).
  static absl::StatusOr<std::unique_ptr<WeightStore>> FromMemory(std::string label, std::vector<OwnedTensor> tensors);
  ~WeightStore();

  bool Has(const std::string& name) const;
  // NotFound error naming the tensor and the directory when absent.
  absl::StatusOr<TensorView> Get(const std::string& name) const;
  // Get + a check that the shape equals `shape` (error names file, tensor,
  // expected and actual shapes).
  absl::StatusOr<TensorView> Get(const std::string& name, const std::vector<int64_t>& shape) const;
  std::vector<std::string> Names() const;
  // Tensors no Get has returned yet, in name order, each with its file.
  // Has() does not count as a read.
  struct Unread {
    std::string name;
    std::string file;
  };
  std::vector<Unread> UnreadTensors() const;

 private:
  struct Entry {
    explicit Entry(TensorView v) : view(std::move(v)) {}
    TensorView view;
    // Set by Get, which any thread may call (loaders are single-threaded
    // today; the flag keeps Get const and race-free anyway).
    mutable std::atomic<bool> read{false};
  };
  WeightStore() = default;
  // Adds the tensor; false when the name is already there.
  bool Add(TensorView view);
  std::string dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::vector<OwnedTensor> owned_;
  std::map<std::string, Entry> tensors_;
};

}  // namespace kaon
