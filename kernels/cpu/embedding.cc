#include "kernels/cpu/embedding.h"

#include <algorithm>
#include <cstring>
#include <string>

namespace kaon::kernels::cpu {

namespace {

void CopyRow(const float* src, int64_t n, float* dst) { std::memcpy(dst, src, sizeof(float) * n); }

void CopyRow(const uint16_t* src, int64_t n, float* dst) {
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t bits = static_cast<uint32_t>(src[i]) << 16;
    std::memcpy(dst + i, &bits, sizeof(float));
  }
}

template <typename T>
KernelStatus Lookup(const T* table, int64_t shard_rows, int64_t hidden, int64_t vocab_begin, int64_t vocab_size,
                    const int32_t* ids, int64_t num_tokens, float* out) {
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
      CopyRow(table + row * hidden, hidden, dst);
    } else {
      std::fill(dst, dst + hidden, 0.0f);
    }
  }
  return KernelStatus::Ok();
}

}  // namespace

KernelStatus EmbeddingLookup(const float* table, int64_t shard_rows, int64_t hidden, int64_t vocab_begin,
                             int64_t vocab_size, const int32_t* ids, int64_t num_tokens, float* out) {
  return Lookup(table, shard_rows, hidden, vocab_begin, vocab_size, ids, num_tokens, out);
}

KernelStatus EmbeddingLookupBf16(const uint16_t* table, int64_t shard_rows, int64_t hidden, int64_t vocab_begin,
                                 int64_t vocab_size, const int32_t* ids, int64_t num_tokens, float* out) {
  return Lookup(table, shard_rows, hidden, vocab_begin, vocab_size, ids, num_tokens, out);
}

}  // namespace kaon::kernels::cpu
