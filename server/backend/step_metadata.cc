#include "server/backend/step_metadata.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace kaon {
namespace {

constexpr size_t kAlign = 16;

size_t Section(size_t* cursor, size_t bytes) {
  const size_t at = (*cursor + kAlign - 1) / kAlign * kAlign;
  *cursor = at + bytes;
  return at;
}

template <typename T>
size_t Put(std::byte* dst, size_t* cursor, const T* src, int64_t count) {
  const size_t at = Section(cursor, sizeof(T) * static_cast<size_t>(count));
  if (count > 0) std::memcpy(dst + at, src, sizeof(T) * static_cast<size_t>(count));
  return at;
}

template <typename T>
const T* At(const std::byte* base, size_t offset) {
  return reinterpret_cast<const T*>(base + offset);
}

}  // namespace

StepMetadataLayout::StepMetadataLayout(const Capacity& c) : capacity(c) {
  const int64_t tokens = c.max_num_batched_tokens, seqs = c.max_num_seqs;
  max_block_table_updates = seqs * c.max_blocks_per_seq();
  size_t cursor = 0;
  Section(&cursor, sizeof(int32_t) * tokens);
  Section(&cursor, sizeof(int32_t) * tokens);
  Section(&cursor, sizeof(int64_t) * tokens);
  Section(&cursor, sizeof(int32_t) * (seqs + 1));
  Section(&cursor, sizeof(int32_t) * seqs);
  Section(&cursor, sizeof(int32_t) * seqs);
  Section(&cursor, sizeof(int32_t) * c.max_logit_rows());
  Section(&cursor, sizeof(int32_t) * 2 * max_block_table_updates);
  total_bytes = (cursor + kAlign - 1) / kAlign * kAlign;
}

absl::StatusOr<PackedStep> PackStepMetadata(const ForwardBatch& b, const StepMetadataLayout& l, std::byte* dst) {
  const Capacity& c = l.capacity;
  if (b.num_tokens > c.max_num_batched_tokens || b.attn.num_seqs > c.max_num_seqs ||
      b.num_logits > c.max_logit_rows() || b.attn.max_blocks_per_seq != c.max_blocks_per_seq() ||
      b.num_block_table_updates > l.max_block_table_updates) {
    return absl::InvalidArgumentError(absl::StrCat(
        "step metadata exceeds the planned capacity (tokens ", b.num_tokens, "/", c.max_num_batched_tokens,
        ", sequences ", b.attn.num_seqs, "/", c.max_num_seqs, ", logits ", b.num_logits, "/", c.max_logit_rows(),
        ", block table width ", b.attn.max_blocks_per_seq, "/", c.max_blocks_per_seq(), ", table updates ",
        b.num_block_table_updates, "/", l.max_block_table_updates, ")"));
  }
  if (b.attn.num_seqs > 0 && b.attn.block_table_rows == nullptr) {
    return absl::InvalidArgumentError("step metadata: a device backend needs the block table's row per sequence");
  }
  PackedStep p;
  size_t cursor = 0;
  p.token_ids = Put(dst, &cursor, b.token_ids, b.num_tokens);
  p.positions = Put(dst, &cursor, b.positions, b.num_tokens);
  p.slot_mapping = Put(dst, &cursor, b.slot_mapping, b.num_tokens);
  p.query_start_loc = Put(dst, &cursor, b.attn.query_start_loc, b.attn.num_seqs + 1);
  p.seq_lens = Put(dst, &cursor, b.attn.seq_lens, b.attn.num_seqs);
  p.block_table_rows = Put(dst, &cursor, b.attn.block_table_rows, b.attn.num_seqs);
  p.logits_indices = Put(dst, &cursor, b.logits_indices, b.num_logits);
  p.block_table_updates =
      Put(dst, &cursor, b.block_table_updates, 2 * std::max<int64_t>(b.num_block_table_updates, 0));
  p.bytes = cursor;
  return p;
}

ForwardBatch DeviceView(const ForwardBatch& host, const PackedStep& p, const std::byte* base,
                        const int32_t* block_table) {
  ForwardBatch d = host;
  d.token_ids = At<int32_t>(base, p.token_ids);
  d.positions = At<int32_t>(base, p.positions);
  d.slot_mapping = At<int64_t>(base, p.slot_mapping);
  d.attn.query_start_loc = At<int32_t>(base, p.query_start_loc);
  d.attn.seq_lens = At<int32_t>(base, p.seq_lens);
  d.attn.block_table = block_table;
  d.attn.block_table_rows = At<int32_t>(base, p.block_table_rows);
  d.logits_indices = At<int32_t>(base, p.logits_indices);
  d.block_table_updates = At<int32_t>(base, p.block_table_updates);
  return d;
}

}  // namespace kaon
