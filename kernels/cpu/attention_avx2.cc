// PagedAttention's row on the avx2 path (attention_rows.h over simd_avx2.h).
#include "kernels/cpu/attention_paths.h"
#include "kernels/cpu/attention_rows.h"
#include "kernels/cpu/simd_avx2.h"

namespace kaon::kernels::cpu {

void AttendRowAvx2(const AttendRowArgs& a) { AttendRow<Avx2>(a); }

}  // namespace kaon::kernels::cpu
