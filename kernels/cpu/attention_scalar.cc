// PagedAttention's row on the scalar path (attention_rows.h over simd_scalar.h).
#include "kernels/cpu/attention_paths.h"
#include "kernels/cpu/attention_rows.h"
#include "kernels/cpu/simd_scalar.h"

namespace kaon::kernels::cpu {

void AttendRowScalar(const AttendRowArgs& a) { AttendRow<Scalar>(a); }

}  // namespace kaon::kernels::cpu
