// One (query token, KV head) unit of PagedAttention (paged_attention.h): the
// `group` query heads that share a KV head, so each K/V row is fetched once
// for all of them. Per ISA path: each in its own file compiled for its instruction set
// (attention_rows.h holds the shared body); only paged_attention.cc calls
// them, after cpuid said yes.
#pragma once

#include <cstdint>

#include "kernels/cpu/cpu_isa.h"

namespace kaon::kernels::cpu {

// Most query heads per KV head a unit takes (Llama 3 70B has 8).
inline constexpr int64_t kMaxAttentionGroup = 32;

struct AttendRowArgs {
  const float* q;         // [group, head_dim], the group's queries
  const float* k_cache;   // the layer's pools
  const float* v_cache;
  const int32_t* table;   // the sequence's block ids
  int64_t pos;            // attends to positions [0, pos]
  int64_t block_size;
  int64_t slot_stride;    // floats between consecutive slots
  int64_t kv_head;
  int64_t head_dim;
  int64_t group;          // query heads per KV head, ≤ kMaxAttentionGroup
  float scale;
  float* out;             // [group, head_dim]
};

void AttendRowScalar(const AttendRowArgs& a);
void AttendRowAvx2(const AttendRowArgs& a);
void AttendRowAvx512(const AttendRowArgs& a);

}  // namespace kaon::kernels::cpu
