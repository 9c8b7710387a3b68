// One step's batch metadata packed into a single buffer, so a device backend
// moves it with one pinned-host → device copy of only the bytes the step
// uses: each array is packed back to back (16-byte aligned) at offsets chosen
// per step, and DeviceView re-points a ForwardBatch into the device copy.
// The block table is not in it: a device keeps a persistent mirror of the
// runner's table and receives the step's (index, block id) updates instead,
// so a decode step's bytes grow with the number of sequences, not with
// sequences × blocks. Pure host code.
#pragma once

#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"
#include "server/backend/batch.h"
#include "server/backend/capacity.h"

namespace kaon {

// The largest packed step the capacities allow (what to allocate).
struct StepMetadataLayout {
  explicit StepMetadataLayout(const Capacity& capacity);

  Capacity capacity;
  int64_t max_block_table_updates = 0;  // every table entry at most once
  size_t total_bytes = 0;
};

// Where one step's arrays sit in the packed buffer (byte offsets).
struct PackedStep {
  size_t token_ids = 0;            // int32 [num_tokens]
  size_t positions = 0;            // int32 [num_tokens]
  size_t slot_mapping = 0;         // int64 [num_tokens]
  size_t query_start_loc = 0;      // int32 [num_seqs + 1]
  size_t seq_lens = 0;             // int32 [num_seqs]
  size_t block_table_rows = 0;     // int32 [num_seqs]
  size_t logits_indices = 0;       // int32 [num_logits]
  size_t block_table_updates = 0;  // int32 [2 * num_block_table_updates] (pairs)
  size_t bytes = 0;                // leading bytes to copy
};

// Packs the batch's arrays into `dst` (layout.total_bytes long). Fails if the
// batch exceeds the layout's capacities or has no block-table rows.
absl::StatusOr<PackedStep> PackStepMetadata(const ForwardBatch& batch, const StepMetadataLayout& layout,
                                            std::byte* dst);

// The batch with every array moved into `base` (the packed buffer's device
// copy) and the block table at `block_table` (the device mirror); scalars are
// kept.
ForwardBatch DeviceView(const ForwardBatch& host, const PackedStep& packed, const std::byte* base,
                        const int32_t* block_table);

}  // namespace kaon
