// The instruction-set paths of the CPU kernels, chosen once at start-up
// from cpuid (never from -march: one binary runs on every x86-64 machine).
// A path can be forced for tests and comparisons; forcing one this CPU
// lacks is refused at start-up instead of dying of SIGILL mid-request.
#pragma once

#include <string>
#include <string_view>

namespace kaon::kernels::cpu {

enum class CpuIsa {
  kScalar,  // plain C++: any x86-64 (or other) CPU
  kAvx2,    // AVX2 + FMA, 256-bit
  kAvx512,  // AVX-512 F/DQ/BW/VL, 512-bit
  // AVX-512 plus AVX512_BF16's dot-product instruction: bf16 GEMMs round x
  // to bf16 and use vdpbf16ps; fp32 kernels are kAvx512's.
  kAvx512Bf16,
};

// Which paths this CPU (and its OS, which must save the wider registers)
// can run. Scalar always.
struct CpuIsaSupport {
  bool avx2 = false;
  bool avx512 = false;
  bool avx512bf16 = false;
  bool Has(CpuIsa isa) const;
  CpuIsa Best() const;
};

CpuIsaSupport DetectCpuIsaSupport();

inline constexpr CpuIsa kAllCpuIsas[] = {CpuIsa::kScalar, CpuIsa::kAvx2, CpuIsa::kAvx512, CpuIsa::kAvx512Bf16};

// "scalar", "avx2", "avx512", "avx512bf16".
const char* CpuIsaName(CpuIsa isa);

// `requested` is "auto" (the best path `support` has) or a path's name.
// False with a one-line `error` for an unknown name or a path the CPU lacks.
bool ResolveCpuIsa(std::string_view requested, const CpuIsaSupport& support, CpuIsa* out, std::string* error);

}  // namespace kaon::kernels::cpu
