// One step's batch metadata packed into a single buffer, so a device backend
// moves it with one pinned-host → device copy. The layout is fixed at start-up
// from the runner's capacities (every section 16-byte aligned), and
// DeviceView re-points a ForwardBatch into the device copy. Pure host code.
#pragma once

#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"
#include "server/backend/batch.h"
#include "server/backend/capacity.h"

namespace kaon {

struct StepMetadataLayout {
  explicit StepMetadataLayout(const Capacity& capacity);

  Capacity capacity;
  size_t token_ids = 0;        // int32 [max_num_batched_tokens]
  size_t positions = 0;        // int32 [max_tokens]
  size_t slot_mapping = 0;     // int64 [max_tokens]
  size_t query_start_loc = 0;  // int32 [max_seqs + 1]
  size_t seq_lens = 0;         // int32 [max_seqs]
  size_t block_table = 0;      // int32 [max_seqs, max_blocks_per_seq]
  size_t block_table_rows = 0; // int32 [max_seqs]
  size_t logits_indices = 0;   // int32 [max_logits]
  size_t total_bytes = 0;
};

// Copies the batch's arrays into `dst` (total_bytes long) at the layout's
// offsets and returns how many leading bytes must be copied to the device.
// Fails if the batch exceeds the layout's capacities.
absl::StatusOr<size_t> PackStepMetadata(const ForwardBatch& batch, const StepMetadataLayout& layout,
                                        std::byte* dst);

// The batch with every pointer moved into `base` (the packed buffer's device
// copy); scalars are kept.
ForwardBatch DeviceView(const ForwardBatch& host, const StepMetadataLayout& layout, const std::byte* base);

}  // namespace kaon
