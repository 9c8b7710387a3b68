// The sampling table as the device sampler and its CPU twin read it: plain
// structs of fixed layout (no std containers), so the host packs it into one
// buffer (server/backend/sampling_table.h), copies that buffer to the device
// in one transfer, and rebases these pointers onto either copy.
#pragma once

#include <cstdint>

namespace kaon::kernels {

// One logits row's parameters (server/backend/sampling.h's SamplingRow, with
// its spans as ranges into the table's shared arrays).
struct SamplingRowDesc {
  float temperature, top_p, min_p;
  float repetition_penalty, frequency_penalty, presence_penalty;
  int32_t top_k;     // <= 0: off
  int32_t logprobs;  // -1: none, k >= 0: the sampled token's logprob + top k (raw logits)
  uint64_t seed;
  int32_t sample_index;
  int32_t pad_;
  int64_t output_position;
  int32_t bias_begin, bias_count;      // into bias_ids/bias_values, in request order
  int32_t banned_begin, banned_count;  // into banned
  int32_t prompt_begin, prompt_count;  // into history; only packed when a penalty is active
  int32_t output_begin, output_count;  // into history
  int64_t allowed_begin;               // word offset into allowed, -1: every token
};

// Pointers into one packed buffer (device memory for the kernel, host memory
// for the twin).
struct SamplingTable {
  const SamplingRowDesc* rows;
  int32_t num_rows;
  const int32_t* bias_ids;
  const float* bias_values;
  const int32_t* banned;
  const int32_t* history;
  const uint32_t* allowed;
};

// One packed output buffer, so the host copies it back in one transfer.
struct SampleOutputs {
  int32_t* tokens;        // [rows]
  float* logprobs;        // [rows] the sampled token's raw logprob (0 when the row's logprobs < 0)
  int32_t* top_ids;       // [rows * top_stride]; slots past the row's k hold -1
  float* top_logprobs;    // [rows * top_stride]; slots past the row's k hold 0
  int32_t top_stride;     // at least the largest logprobs of any row (the step's max)
};

}  // namespace kaon::kernels
