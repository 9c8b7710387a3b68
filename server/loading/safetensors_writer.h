// Writing a single-file safetensors checkpoint (random-weight test models,
// fixtures). Layout follows the format's reference implementation: 8-byte
// little-endian header length, a JSON header with dtype / shape /
// data_offsets per tensor and __metadata__ {"format": "pt"}, padded with
// spaces so the data section starts 8-byte aligned, then the tensors back to
// back (no holes, as the format requires) in name order.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/loading/safetensors.h"

namespace kaon {

struct TensorToWrite {
  std::string name;
  DType dtype = DType::kF32;  // kF32 or kBF16
  std::vector<int64_t> shape;
  // Writes the tensor's numel() fp32 values to `out`. Called exactly once,
  // when the tensor's turn in the file comes, so a checkpoint larger than
  // memory can be streamed one tensor at a time.
  std::function<void(float* out)> fill;

  int64_t numel() const;
};

// A TensorToWrite holding a copy of `values` (tests, small tensors).
TensorToWrite TensorFromValues(std::string name, DType dtype, std::vector<int64_t> shape,
                               std::vector<float> values);

// Writes `tensors` to `path` (through `path`.tmp and a rename, so a reader
// never sees a half-written file). Returns the file size in bytes. Errors name
// the path and the offending tensor.
absl::StatusOr<uint64_t> WriteSafetensors(const std::string& path, std::vector<TensorToWrite> tensors);


}  // namespace kaon
