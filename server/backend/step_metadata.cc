#include "server/backend/step_metadata.h"

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
void Put(std::byte* dst, size_t offset, const T* src, int64_t count) {
  if (count > 0) std::memcpy(dst + offset, src, sizeof(T) * static_cast<size_t>(count));
}

template <typename T>
const T* At(const std::byte* base, size_t offset) {
  return reinterpret_cast<const T*>(base + offset);
}

}  // namespace

StepMetadataLayout::StepMetadataLayout(const Capacity& c) : capacity(c) {
  const int64_t tokens = c.max_num_batched_tokens, seqs = c.max_num_seqs;
  size_t cursor = 0;
  token_ids = Section(&cursor, sizeof(int32_t) * tokens);
  positions = Section(&cursor, sizeof(int32_t) * tokens);
  slot_mapping = Section(&cursor, sizeof(int64_t) * tokens);
  query_start_loc = Section(&cursor, sizeof(int32_t) * (seqs + 1));
  seq_lens = Section(&cursor, sizeof(int32_t) * seqs);
  block_table = Section(&cursor, sizeof(int32_t) * seqs * c.max_blocks_per_seq());
  block_table_rows = Section(&cursor, sizeof(int32_t) * seqs);
  logits_indices = Section(&cursor, sizeof(int32_t) * c.max_logit_rows());
  total_bytes = (cursor + kAlign - 1) / kAlign * kAlign;
}

absl::StatusOr<size_t> PackStepMetadata(const ForwardBatch& b, const StepMetadataLayout& l, std::byte* dst) {
  const Capacity& c = l.capacity;
  if (b.num_tokens > c.max_num_batched_tokens || b.attn.num_seqs > c.max_num_seqs ||
      b.num_logits > c.max_logit_rows() || b.attn.max_blocks_per_seq != c.max_blocks_per_seq()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "step metadata exceeds the planned capacity (tokens ", b.num_tokens, "/", c.max_num_batched_tokens,
        ", sequences ", b.attn.num_seqs, "/", c.max_num_seqs, ", logits ", b.num_logits, "/", c.max_logit_rows(),
        ", block table width ", b.attn.max_blocks_per_seq, "/", c.max_blocks_per_seq(), ")"));
  }
  Put(dst, l.token_ids, b.token_ids, b.num_tokens);
  Put(dst, l.positions, b.positions, b.num_tokens);
  Put(dst, l.slot_mapping, b.slot_mapping, b.num_tokens);
  Put(dst, l.query_start_loc, b.attn.query_start_loc, b.attn.num_seqs + 1);
  Put(dst, l.seq_lens, b.attn.seq_lens, b.attn.num_seqs);
  // With row indirection the rows in use can be any of the table's: send
  // it whole (a device backend keeping its own copy sends only deltas).
  const int64_t table_rows = b.attn.block_table_rows != nullptr ? c.max_num_seqs : b.attn.num_seqs;
  Put(dst, l.block_table, b.attn.block_table, table_rows * c.max_blocks_per_seq());
  if (b.attn.block_table_rows != nullptr) Put(dst, l.block_table_rows, b.attn.block_table_rows, b.attn.num_seqs);
  Put(dst, l.logits_indices, b.logits_indices, b.num_logits);
  // The logits indices are the last section, so everything up to their end
  // covers what this step uses.
  return l.logits_indices + sizeof(int32_t) * static_cast<size_t>(b.num_logits);
}

ForwardBatch DeviceView(const ForwardBatch& host, const StepMetadataLayout& l, const std::byte* base) {
  ForwardBatch d = host;
  d.token_ids = At<int32_t>(base, l.token_ids);
  d.positions = At<int32_t>(base, l.positions);
  d.slot_mapping = At<int64_t>(base, l.slot_mapping);
  d.attn.query_start_loc = At<int32_t>(base, l.query_start_loc);
  d.attn.seq_lens = At<int32_t>(base, l.seq_lens);
  d.attn.block_table = At<int32_t>(base, l.block_table);
  if (host.attn.block_table_rows != nullptr) d.attn.block_table_rows = At<int32_t>(base, l.block_table_rows);
  d.logits_indices = At<int32_t>(base, l.logits_indices);
  return d;
}

}  // namespace kaon
