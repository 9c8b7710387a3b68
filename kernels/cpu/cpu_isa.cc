#include "kernels/cpu/cpu_isa.h"

namespace kaon::kernels::cpu {

bool CpuIsaSupport::Has(CpuIsa isa) const {
  switch (isa) {
    case CpuIsa::kScalar:
      return true;
    case CpuIsa::kAvx2:
      return avx2;
    case CpuIsa::kAvx512:
      return avx512;
    case CpuIsa::kAvx512Bf16:
      return avx512bf16;
  }
  return false;
}

CpuIsa CpuIsaSupport::Best() const {
  if (avx512bf16) return CpuIsa::kAvx512Bf16;
  if (avx512) return CpuIsa::kAvx512;
  if (avx2) return CpuIsa::kAvx2;
  return CpuIsa::kScalar;
}

CpuIsaSupport DetectCpuIsaSupport() {
  CpuIsaSupport s;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  // libgcc's cpuid probe also checks XGETBV, so a feature counts only when
  // the OS saves its registers across context switches.
  __builtin_cpu_init();
  s.avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  s.avx512 = s.avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
  s.avx512bf16 = s.avx512 && __builtin_cpu_supports("avx512bf16");
#endif
  return s;
}

const char* CpuIsaName(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::kScalar:
      return "scalar";
    case CpuIsa::kAvx2:
      return "avx2";
    case CpuIsa::kAvx512:
      return "avx512";
    case CpuIsa::kAvx512Bf16:
      return "avx512bf16";
  }
  return "?";
}

bool ResolveCpuIsa(std::string_view requested, const CpuIsaSupport& support, CpuIsa* out, std::string* error) {
  if (requested == "auto") {
    *out = support.Best();
    return true;
  }
  for (CpuIsa isa : kAllCpuIsas) {
    if (requested != CpuIsaName(isa)) continue;
    if (!support.Has(isa)) {
      *error = std::string("--cpu-isa ") + CpuIsaName(isa) + ": this CPU lacks it (best here: " +
               CpuIsaName(support.Best()) + ")";
      return false;
    }
    *out = isa;
    return true;
  }
  *error = "--cpu-isa must be auto, avx512bf16, avx512, avx2 or scalar, got '" + std::string(requested) + "'";
  return false;
}

}  // namespace kaon::kernels::cpu
