// Packs a step's sampling rows (server/backend/sampling.h) into the flat
// table the device sampler reads (kernels/common/sampling_table.h): one
// contiguous byte buffer, so the host sends it to the device in one copy,
// and views of it rebased onto either copy (the host buffer for the CPU twin,
// the device copy for the kernel).
//
// Layout: 16-byte aligned sections of rows (SamplingRowDesc), bias ids, bias
// values, banned ids, history (prompt then output ids, per row) and allowed
// words (ceil(vocab / 32) per row with a mask). Only rows with an active
// penalty send history: repetition (!= 1) needs prompt ∪ output, frequency or
// presence (!= 0) the outputs alone, so a step without penalties sends none.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "kernels/common/sampling_table.h"
#include "server/backend/sampling.h"

namespace kaon {

struct PackedSamplingTable {
  std::vector<std::byte> bytes;  // the whole table; its capacity is reused by the next pack
  // Byte offsets of the sections in `bytes`.
  size_t rows = 0, bias_ids = 0, bias_values = 0, banned = 0, history = 0, allowed = 0;
  int32_t num_rows = 0;
  // The most top logprobs any row asks for (min(logprobs, vocab)): the
  // SampleOutputs top_stride the step needs; 0 when none asks.
  int32_t max_top_logprobs = 0;
};

// Packs `rows` for a vocabulary of vocab_size ids (0 < vocab_size < 2^20).
// Banned and logit_bias ids outside [0, vocab_size) are dropped (the sampler
// ignores them anyway); a penalised row's prompt or output id outside it, or
// logprobs < -1, is an error. An allowed mask is read as ceil(vocab_size / 32)
// words.
absl::Status PackSamplingTable(std::span<const SamplingRow> rows, int64_t vocab_size, PackedSamplingTable* out);

// The table's pointers into a copy of p.bytes that starts at `base`.
kernels::SamplingTable ViewSamplingTable(const PackedSamplingTable& p, const std::byte* base);

// One buffer for a step's SampleOutputs: byte offsets of its four arrays
// (16-byte aligned) and the total.
struct SampleOutputsLayout {
  size_t tokens = 0, logprobs = 0, top_ids = 0, top_logprobs = 0, bytes = 0;
  int32_t top_stride = 0;
};
SampleOutputsLayout LayoutSampleOutputs(int64_t rows, int32_t top_stride);
kernels::SampleOutputs ViewSampleOutputs(const SampleOutputsLayout& layout, std::byte* base);

}  // namespace kaon
