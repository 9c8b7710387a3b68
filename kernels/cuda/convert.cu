#include "kernels/cuda/convert.h"

#include "kernels/cuda/dtype.cuh"
#include "kernels/cuda/launch.h"

namespace kaon::kernels::gpu {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 65536;  // grid-stride beyond this

// Through fp32: exact for every pair instantiated below (fp32 holds any bf16
// or fp16 value exactly, and the final rounding is the only one).
template <typename Src, typename Dst>
__global__ void ConvertKernel(const Src* in, int64_t n, Dst* out) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    out[i] = detail::FromFloat<Dst>(detail::ToFloat(in[i]));
  }
}

}  // namespace

template <typename Src, typename Dst>
KernelStatus Convert(const Src* in, int64_t n, Dst* out, cudaStream_t stream) {
  KAON_KERNEL_REQUIRE(in && out && n >= 0, "convert: bad arguments");
  KAON_KERNEL_REQUIRE(detail::Aligned<Src>(in) && detail::Aligned<Dst>(out), "convert: misaligned pointer");
  if (n == 0) return KernelStatus::Ok();
  int64_t blocks = (n + kThreads - 1) / kThreads;
  if (blocks > kMaxBlocks) blocks = kMaxBlocks;
  ConvertKernel<Src, Dst><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(in, n, out);
  return detail::LaunchStatus("convert");
}

template KernelStatus Convert<float, __nv_bfloat16>(const float*, int64_t, __nv_bfloat16*, cudaStream_t);
template KernelStatus Convert<float, __half>(const float*, int64_t, __half*, cudaStream_t);
template KernelStatus Convert<__nv_bfloat16, float>(const __nv_bfloat16*, int64_t, float*, cudaStream_t);
template KernelStatus Convert<__half, float>(const __half*, int64_t, float*, cudaStream_t);
template KernelStatus Convert<float, float>(const float*, int64_t, float*, cudaStream_t);
template KernelStatus Convert<__nv_bfloat16, __half>(const __nv_bfloat16*, int64_t, __half*, cudaStream_t);
template KernelStatus Convert<__half, __nv_bfloat16>(const __half*, int64_t, __nv_bfloat16*, cudaStream_t);
template KernelStatus Convert<__nv_bfloat16, __nv_bfloat16>(const __nv_bfloat16*, int64_t, __nv_bfloat16*,
                                                            cudaStream_t);
template KernelStatus Convert<__half, __half>(const __half*, int64_t, __half*, cudaStream_t);

}  // namespace kaon::kernels::gpu
