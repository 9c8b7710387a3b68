// `kaon throughput`: offline throughput through the engine with distinct
// random prompts, like `vllm bench throughput`: requests/s, output tokens/s
// and total tokens/s, timed from the first submit to the last completion.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>

#include "server/engine/engine.h"

namespace kaon {

struct ThroughputFlags {
  std::string model_dir;
  int64_t num_prompts = 100;
  int64_t input_len = 128;
  int64_t output_len = 128;
  int64_t max_concurrency = 0;  // 0: every prompt at once
  uint64_t seed = 0;
  // vLLM's sampling flags; the defaults (temperature 1, no filters) are what
  // `vllm bench throughput` samples with.
  float temperature = 1.0f;
  float top_p = 1.0f;
  int32_t top_k = 0;
  float min_p = 0.0f;
  float repetition_penalty = 1.0f;
  bool json = false;
  EngineConfig engine;
};

int RunThroughputCommand(const ThroughputFlags& flags, std::ostream& out, std::ostream& err);

}  // namespace kaon
