// PagedAttention's row on the avx512 path (attention_rows.h over simd_avx512.h).
#include "kernels/cpu/attention_paths.h"
#include "kernels/cpu/attention_rows.h"
#include "kernels/cpu/simd_avx512.h"

namespace kaon::kernels::cpu {

void AttendRowAvx512(const AttendRowArgs& a) { AttendRow<Avx512>(a); }

}  // namespace kaon::kernels::cpu
