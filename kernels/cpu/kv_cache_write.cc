#include "kernels/cpu/kv_cache_write.h"

#include <cstring>
#include <string>

namespace kaon::kernels::cpu {

KernelStatus WriteKvCache(const float* k, int64_t k_row_stride, const float* v, int64_t v_row_stride,
                          const int64_t* slot_mapping, int64_t num_tokens, const PagedKvShape& shape,
                          float* k_cache, float* v_cache) {
  KAON_KERNEL_REQUIRE(k && v && slot_mapping && k_cache && v_cache, "kv_cache_write: null pointer");
  const int64_t stride = shape.slot_stride();
  KAON_KERNEL_REQUIRE(k_row_stride >= stride && v_row_stride >= stride,
                      "kv_cache_write: row stride smaller than the kv heads it holds");
  for (int64_t t = 0; t < num_tokens; ++t) {
    const int64_t slot = slot_mapping[t];
    if (slot == -1) continue;
    if (slot < 0 || slot >= shape.num_slots()) {
      return KernelStatus::Invalid("kv_cache_write: slot " + std::to_string(slot) +
                                   " outside the cache of " + std::to_string(shape.num_slots()));
    }
    std::memcpy(k_cache + slot * stride, k + t * k_row_stride, sizeof(float) * stride);
    std::memcpy(v_cache + slot * stride, v + t * v_row_stride, sizeof(float) * stride);
  }
  return KernelStatus::Ok();
}

}  // namespace kaon::kernels::cpu
