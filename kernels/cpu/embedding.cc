#include "kernels/cpu/embedding.h"

#include <algorithm>
#include <cstring>
#include <string>

namespace kaon::kernels::cpu {

KernelStatus EmbeddingLookup(const float* table, int64_t shard_rows, int64_t hidden,
                             int64_t vocab_begin, int64_t vocab_size, const int32_t* ids,
                             int64_t num_tokens, float* out) {
  KAON_KERNEL_REQUIRE(table && ids && out, "embedding: null pointer");
  KAON_KERNEL_REQUIRE(hidden > 0 && shard_rows > 0 && num_tokens >= 0, "embedding: bad shape");
  for (int64_t i = 0; i < num_tokens; ++i) {
    if (ids[i] < 0 || ids[i] >= vocab_size) {
      return KernelStatus::Invalid("embedding: token id " + std::to_string(ids[i]) +
                                   " outside the vocabulary of " + std::to_string(vocab_size));
    }
  }
  for (int64_t i = 0; i < num_tokens; ++i) {
    const int64_t row = ids[i] - vocab_begin;
    float* dst = out + i * hidden;
    if (row >= 0 && row < shard_rows) {
      std::memcpy(dst, table + row * hidden, sizeof(float) * hidden);
    } else {
      std::fill(dst, dst + hidden, 0.0f);
    }
  }
  return KernelStatus::Ok();
}

}  // namespace kaon::kernels::cpu
