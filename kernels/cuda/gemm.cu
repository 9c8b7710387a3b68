#include "kernels/cuda/gemm.h"

#include <string>
#include <utility>

#include <cublasLt.h>

#include "kernels/cuda/dtype.cuh"
#include "kernels/cuda/launch.h"

namespace kaon::kernels::gpu {
namespace {

KernelStatus LtStatus(cublasStatus_t s, const char* what) {
  if (s == CUBLAS_STATUS_SUCCESS) return KernelStatus::Ok();
  return KernelStatus::Invalid(std::string("gemm: ") + what + ": " + cublasLtGetStatusString(s));
}

#define KAON_LT_RETURN_IF_ERROR(expr, what)              \
  do {                                                   \
    const KernelStatus st_ = LtStatus((expr), (what));   \
    if (!st_.ok()) return st_;                           \
  } while (0)

// RAII for the per-call cuBLASLt descriptors, so every early return frees them.
struct MatmulDesc {
  cublasLtMatmulDesc_t d = nullptr;
  ~MatmulDesc() { if (d) cublasLtMatmulDescDestroy(d); }
};
struct Layout {
  cublasLtMatrixLayout_t d = nullptr;
  ~Layout() { if (d) cublasLtMatrixLayoutDestroy(d); }
};
struct Preference {
  cublasLtMatmulPreference_t d = nullptr;
  ~Preference() { if (d) cublasLtMatmulPreferenceDestroy(d); }
};

template <typename T> constexpr cudaDataType_t kDataType = CUDA_R_32F;
template <> constexpr cudaDataType_t kDataType<__nv_bfloat16> = CUDA_R_16BF;
template <> constexpr cudaDataType_t kDataType<__half> = CUDA_R_16F;

// The largest power of two (<= 256) dividing the address: what cuBLASLt may
// assume about a pointer. Its default assumption is 256 bytes, which a view
// into a larger buffer need not meet.
uint32_t AlignmentOf(const void* p) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  uint32_t align = 256;
  while (align > 1 && a % align != 0) align >>= 1;
  return align;
}

// Used only when no cuBLASLt algorithm takes the bias epilogue for a shape.
template <typename T>
__global__ void AddBiasKernel(T* y, const T* bias, int64_t n) {
  T* row = y + static_cast<int64_t>(blockIdx.x) * n;
  for (int64_t c = threadIdx.x; c < n; c += blockDim.x) {
    row[c] = detail::FromFloat<T>(detail::ToFloat(row[c]) + detail::ToFloat(bias[c]));
  }
}

}  // namespace

KernelStatus GemmHandle::Create(size_t workspace_bytes, std::unique_ptr<GemmHandle>* out) {
  KAON_KERNEL_REQUIRE(out != nullptr, "gemm: null output handle");
  std::unique_ptr<GemmHandle> h(new GemmHandle());
  cublasLtHandle_t lt = nullptr;
  KAON_LT_RETURN_IF_ERROR(cublasLtCreate(&lt), "cublasLtCreate");
  h->handle_ = lt;
  if (workspace_bytes > 0) {
    KernelStatus st = detail::CudaStatus(cudaMalloc(&h->workspace_, workspace_bytes), "gemm: workspace cudaMalloc");
    if (!st.ok()) return st;  // ~GemmHandle frees the handle
    h->workspace_bytes_ = workspace_bytes;
  }
  *out = std::move(h);
  return KernelStatus::Ok();
}

GemmHandle::~GemmHandle() {
  if (workspace_) cudaFree(workspace_);
  if (handle_) cublasLtDestroy(handle_);
}

template <typename T>
KernelStatus GemmHandle::Linear(const T* x, const T* w, const T* bias, int64_t m, int64_t n, int64_t k, T* y,
                                cudaStream_t stream) {
  KAON_KERNEL_REQUIRE(x && w && y, "gemm: null pointer");
  KAON_KERNEL_REQUIRE(m >= 0 && n > 0 && k > 0, "gemm: bad shape");
  KAON_KERNEL_REQUIRE(m <= detail::kMaxGridX && n <= detail::kMaxGridX && k <= detail::kMaxGridX,
                      "gemm: shape too large");
  KAON_KERNEL_REQUIRE(detail::Aligned<T>(x) && detail::Aligned<T>(w) && detail::Aligned<T>(y) &&
                          (bias == nullptr || detail::Aligned<T>(bias)),
                      "gemm: misaligned pointer");
  if (m == 0) return KernelStatus::Ok();
  constexpr cudaDataType_t type = kDataType<T>;

  // cuBLASLt is column-major. Row-major y[m, n] is column-major y^T [n, m] =
  // w * x^T, where row-major w[n, k] read column-major is w^T [k, n] (so
  // op(A) = T) and row-major x[m, k] is x^T [k, m] (op(B) = N). The bias
  // epilogue adds bias[i] to row i of the column-major D, i.e. to column i of y.
  MatmulDesc desc;
  KAON_LT_RETURN_IF_ERROR(cublasLtMatmulDescCreate(&desc.d, CUBLAS_COMPUTE_32F, CUDA_R_32F), "matmul desc");
  const cublasOperation_t op_t = CUBLAS_OP_T, op_n = CUBLAS_OP_N;
  KAON_LT_RETURN_IF_ERROR(
      cublasLtMatmulDescSetAttribute(desc.d, CUBLASLT_MATMUL_DESC_TRANSA, &op_t, sizeof(op_t)), "transa");
  KAON_LT_RETURN_IF_ERROR(
      cublasLtMatmulDescSetAttribute(desc.d, CUBLASLT_MATMUL_DESC_TRANSB, &op_n, sizeof(op_n)), "transb");
  Layout a, b, d;
  KAON_LT_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(&a.d, type, k, n, k), "layout A");
  KAON_LT_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(&b.d, type, k, m, k), "layout B");
  KAON_LT_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(&d.d, type, n, m, n), "layout D");

  Preference pref;
  KAON_LT_RETURN_IF_ERROR(cublasLtMatmulPreferenceCreate(&pref.d), "preference");
  const size_t ws = workspace_bytes_;
  KAON_LT_RETURN_IF_ERROR(cublasLtMatmulPreferenceSetAttribute(pref.d, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                               &ws, sizeof(ws)),
                          "workspace preference");
  const uint32_t align_a = AlignmentOf(w), align_b = AlignmentOf(x), align_d = AlignmentOf(y);
  KAON_LT_RETURN_IF_ERROR(cublasLtMatmulPreferenceSetAttribute(pref.d, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES,
                                                               &align_a, sizeof(align_a)),
                          "alignment A");
  KAON_LT_RETURN_IF_ERROR(cublasLtMatmulPreferenceSetAttribute(pref.d, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                                                               &align_b, sizeof(align_b)),
                          "alignment B");
  KAON_LT_RETURN_IF_ERROR(cublasLtMatmulPreferenceSetAttribute(pref.d, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES,
                                                               &align_d, sizeof(align_d)),
                          "alignment C");
  KAON_LT_RETURN_IF_ERROR(cublasLtMatmulPreferenceSetAttribute(pref.d, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES,
                                                               &align_d, sizeof(align_d)),
                          "alignment D");

  // Prefer the fused bias epilogue; if no algorithm offers it for this shape,
  // run the plain GEMM and add the bias with a small kernel.
  bool fused_bias = false;
  cublasLtMatmulHeuristicResult_t heuristic{};
  int found = 0;
  if (bias != nullptr) {
    const cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
    KAON_LT_RETURN_IF_ERROR(
        cublasLtMatmulDescSetAttribute(desc.d, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)), "epilogue");
    KAON_LT_RETURN_IF_ERROR(
        cublasLtMatmulDescSetAttribute(desc.d, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)), "bias");
    const cublasStatus_t hs =
        cublasLtMatmulAlgoGetHeuristic(handle_, desc.d, a.d, b.d, d.d, d.d, pref.d, 1, &heuristic, &found);
    fused_bias = hs == CUBLAS_STATUS_SUCCESS && found > 0;
    if (!fused_bias) {
      const cublasLtEpilogue_t none = CUBLASLT_EPILOGUE_DEFAULT;
      KAON_LT_RETURN_IF_ERROR(
          cublasLtMatmulDescSetAttribute(desc.d, CUBLASLT_MATMUL_DESC_EPILOGUE, &none, sizeof(none)), "epilogue");
    }
  }
  if (!fused_bias) {
    KAON_LT_RETURN_IF_ERROR(
        cublasLtMatmulAlgoGetHeuristic(handle_, desc.d, a.d, b.d, d.d, d.d, pref.d, 1, &heuristic, &found),
        "heuristic");
    KAON_KERNEL_REQUIRE(found > 0, "gemm: cuBLASLt has no algorithm for m=" + std::to_string(m) +
                                       " n=" + std::to_string(n) + " k=" + std::to_string(k));
  }
  const float alpha = 1.0f, beta = 0.0f;
  KAON_LT_RETURN_IF_ERROR(cublasLtMatmul(handle_, desc.d, &alpha, w, a.d, x, b.d, &beta, y, d.d, y, d.d,
                                         &heuristic.algo, workspace_, workspace_bytes_, stream),
                          "cublasLtMatmul");
  if (bias != nullptr && !fused_bias) {
    AddBiasKernel<T><<<static_cast<unsigned>(m), 256, 0, stream>>>(y, bias, n);
    return detail::LaunchStatus("gemm bias");
  }
  return detail::LaunchStatus("gemm");
}

template KernelStatus GemmHandle::Linear<float>(const float*, const float*, const float*, int64_t, int64_t,
                                                int64_t, float*, cudaStream_t);
template KernelStatus GemmHandle::Linear<__nv_bfloat16>(const __nv_bfloat16*, const __nv_bfloat16*,
                                                        const __nv_bfloat16*, int64_t, int64_t, int64_t,
                                                        __nv_bfloat16*, cudaStream_t);
template KernelStatus GemmHandle::Linear<__half>(const __half*, const __half*, const __half*, int64_t, int64_t,
                                                 int64_t, __half*, cudaStream_t);

}  // namespace kaon::kernels::gpu
