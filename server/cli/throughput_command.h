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
  bool json = false;
  EngineConfig engine;
};

int RunThroughputCommand(const ThroughputFlags& flags, std::ostream& out, std::ostream& err);

}  // namespace kaon
