#include "kernels/cpu/rope.h"

#include <cmath>
#include <string>

namespace kaon::kernels::cpu {

void BuildRopeCache(const double* inv_freq, int64_t half_dim, int64_t max_positions,
                    float* cos_out, float* sin_out) {
  for (int64_t p = 0; p < max_positions; ++p) {
    for (int64_t i = 0; i < half_dim; ++i) {
      const double angle = static_cast<double>(p) * inv_freq[i];
      cos_out[p * half_dim + i] = static_cast<float>(std::cos(angle));
      sin_out[p * half_dim + i] = static_cast<float>(std::sin(angle));
    }
  }
}

namespace {

inline void RotateHead(float* x, const float* c, const float* s, int64_t half) {
  for (int64_t i = 0; i < half; ++i) {
    const float x1 = x[i];
    const float x2 = x[i + half];
    x[i] = x1 * c[i] - x2 * s[i];
    x[i + half] = x2 * c[i] + x1 * s[i];
  }
}

}  // namespace

KernelStatus ApplyRotaryNeox(float* q, int64_t q_row_stride, float* k, int64_t k_row_stride,
                             const int32_t* positions, int64_t num_tokens, int64_t num_heads,
                             int64_t num_kv_heads, int64_t head_dim, const float* cos_cache,
                             const float* sin_cache, int64_t max_positions) {
  KAON_KERNEL_REQUIRE(q && k && positions && cos_cache && sin_cache, "rope: null pointer");
  KAON_KERNEL_REQUIRE(head_dim > 0 && head_dim % 2 == 0, "rope: head_dim must be even");
  KAON_KERNEL_REQUIRE(q_row_stride >= num_heads * head_dim && k_row_stride >= num_kv_heads * head_dim,
                      "rope: row stride smaller than the heads it holds");
  const int64_t half = head_dim / 2;
  for (int64_t t = 0; t < num_tokens; ++t) {
    const int32_t pos = positions[t];
    if (pos < 0 || pos >= max_positions) {
      return KernelStatus::Invalid("rope: position " + std::to_string(pos) +
                                   " outside the table of " + std::to_string(max_positions));
    }
    const float* c = cos_cache + static_cast<int64_t>(pos) * half;
    const float* s = sin_cache + static_cast<int64_t>(pos) * half;
    for (int64_t h = 0; h < num_heads; ++h) RotateHead(q + t * q_row_stride + h * head_dim, c, s, half);
    for (int64_t h = 0; h < num_kv_heads; ++h) RotateHead(k + t * k_row_stride + h * head_dim, c, s, half);
  }
  return KernelStatus::Ok();
}

}  // namespace kaon::kernels::cpu
