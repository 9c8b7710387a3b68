// `kaon generate`: offline generation through the engine, for scripts and tests.
#pragma once

#include <iosfwd>
#include <optional>
#include <string>

#include "server/engine/engine.h"

namespace kaon {

struct GenerateFlags {
  std::string model_dir;
  std::optional<std::string> prompt;
  std::optional<std::string> prompt_ids;  // "1,2,3"
  int64_t max_tokens = 16;
  std::optional<float> temperature;
  std::optional<float> top_p;
  std::optional<int32_t> top_k;
  std::optional<float> min_p;
  std::optional<uint64_t> seed;
  bool ignore_eos = false;
  bool json = false;
  EngineConfig engine;
};

// Returns the process exit code; errors go to `err` as one line.
int RunGenerateCommand(const GenerateFlags& flags, std::ostream& out, std::ostream& err);

}  // namespace kaon
