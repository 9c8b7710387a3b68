#include "server/backend/cuda/weight_stager.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "kernels/cuda/convert.h"

namespace kaon::cuda_backend {
namespace {

namespace gpu = kernels::gpu;

template <typename Dst>
bool SameDType(DType d) {
  if constexpr (std::is_same_v<Dst, float>) return d == DType::kF32;
  if constexpr (std::is_same_v<Dst, __nv_bfloat16>) return d == DType::kBF16;
  if constexpr (std::is_same_v<Dst, __half>) return d == DType::kF16;
  return false;
}

template <typename Dst>
kernels::KernelStatus ConvertFrom(DType src, const void* in, int64_t n, Dst* out, cudaStream_t stream) {
  switch (src) {
    case DType::kF32:
      return gpu::Convert<float, Dst>(static_cast<const float*>(in), n, out, stream);
    case DType::kBF16:
      return gpu::Convert<__nv_bfloat16, Dst>(static_cast<const __nv_bfloat16*>(in), n, out, stream);
    case DType::kF16:
      return gpu::Convert<__half, Dst>(static_cast<const __half*>(in), n, out, stream);
  }
  return kernels::KernelStatus::Invalid("weight staging: unknown source dtype");
}

}  // namespace

WeightStager::~WeightStager() {
  // Chunks may still be read by in-flight copies.
  if (pending_[0] || pending_[1]) cudaStreamSynchronize(stream_);
  for (cudaEvent_t e : done_) {
    if (e != nullptr) cudaEventDestroy(e);
  }
}

absl::Status WeightStager::Open() {
  for (int i = 0; i < 2; ++i) {
    KAON_RETURN_IF_ERROR(host_[i].Allocate(kChunkBytes, "weight staging (pinned host)"));
    KAON_RETURN_IF_ERROR(device_[i].Allocate(kChunkBytes, "weight staging (device)"));
    KAON_RETURN_IF_ERROR(CudaStatus(cudaEventCreateWithFlags(&done_[i], cudaEventDisableTiming), "weight staging"));
  }
  return absl::OkStatus();
}

absl::Status WeightStager::Claim(int i) {
  if (!pending_[i]) return absl::OkStatus();
  pending_[i] = false;
  return CudaStatus(cudaEventSynchronize(done_[i]), "weight staging");
}

template <typename Dst>
absl::Status WeightStager::Copy(const TensorView& t, size_t offset, size_t count, Dst* dst) {
  const size_t elem = DTypeSize(t.dtype);
  const size_t per_chunk = kChunkBytes / elem;
  const bool same = SameDType<Dst>(t.dtype);
  for (size_t done = 0; done < count;) {
    const size_t n = std::min(per_chunk, count - done);
    const int i = next_;
    next_ ^= 1;
    KAON_RETURN_IF_ERROR(Claim(i));
    // The host copy out of the mapped file is where the disk is read; the
    // other chunk's transfer runs meanwhile.
    std::memcpy(host_[i].as<std::byte>(), t.data + (offset + done) * elem, n * elem);
    if (same) {
      KAON_RETURN_IF_ERROR(CudaStatus(
          cudaMemcpyAsync(dst + done, host_[i].as<std::byte>(), n * elem, cudaMemcpyHostToDevice, stream_),
          "weight upload"));
    } else {
      KAON_RETURN_IF_ERROR(CudaStatus(cudaMemcpyAsync(device_[i].as<std::byte>(), host_[i].as<std::byte>(),
                                                      n * elem, cudaMemcpyHostToDevice, stream_),
                                      "weight upload"));
      KAON_RETURN_IF_ERROR(FromKernel(
          ConvertFrom<Dst>(t.dtype, device_[i].as<std::byte>(), static_cast<int64_t>(n), dst + done, stream_)));
    }
    KAON_RETURN_IF_ERROR(CudaStatus(cudaEventRecord(done_[i], stream_), "weight staging"));
    pending_[i] = true;
    done += n;
  }
  return absl::OkStatus();
}

absl::Status WeightStager::Finish() {
  pending_[0] = pending_[1] = false;
  return CudaStatus(cudaStreamSynchronize(stream_), "weight upload");
}

template absl::Status WeightStager::Copy<float>(const TensorView&, size_t, size_t, float*);
template absl::Status WeightStager::Copy<__nv_bfloat16>(const TensorView&, size_t, size_t, __nv_bfloat16*);
template absl::Status WeightStager::Copy<__half>(const TensorView&, size_t, size_t, __half*);

}  // namespace kaon::cuda_backend
