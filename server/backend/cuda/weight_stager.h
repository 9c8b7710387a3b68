// The one path weights take to the device: safetensors bytes (bf16, fp16 or
// fp32, as stored) → one of two bounded pinned chunks → device, converted on
// the device into the backend dtype when the two differ. The host fills one
// chunk while the other is in flight, so reading the mapped file overlaps the
// copies; nothing is held per tensor and the chunks are freed with the stager
// (before the KV cache is sized). Engine thread only.
#pragma once

#include <cstddef>
#include <cstdint>

#include <cuda_runtime.h>

#include "absl/status/status.h"
#include "server/backend/cuda/device_buffer.h"
#include "server/loading/safetensors.h"

namespace kaon::cuda_backend {

class WeightStager {
 public:
  // Two chunks of this many bytes, pinned on the host, and (for converting
  // copies) two raw device chunks.
  static constexpr size_t kChunkBytes = size_t{32} << 20;
  static constexpr size_t DeviceBytes() { return 2 * kChunkBytes; }

  explicit WeightStager(cudaStream_t stream) : stream_(stream) {}
  ~WeightStager();
  WeightStager(const WeightStager&) = delete;
  WeightStager& operator=(const WeightStager&) = delete;

  absl::Status Open();
  // dst[0, count) = elements [offset, offset + count) of `t`, as Dst
  // (float, __nv_bfloat16 or __half). Asynchronous: the copy may still be in
  // flight when this returns; Finish() waits for all of them.
  template <typename Dst>
  absl::Status Copy(const TensorView& t, size_t offset, size_t count, Dst* dst);
  absl::Status Finish();

 private:
  // Waits until chunk i's previous copy (and conversion) is done.
  absl::Status Claim(int i);

  cudaStream_t stream_;
  PinnedBuffer host_[2];
  DeviceBuffer device_[2];
  cudaEvent_t done_[2] = {nullptr, nullptr};
  bool pending_[2] = {false, false};
  int next_ = 0;
};

}  // namespace kaon::cuda_backend
