// `kaon random-model`: a random-weight checkpoint for any supported
// Llama-family config.json, for throughput tests of model shapes whose real
// weights are not at hand. The output directory loads like a Hugging Face one.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>

#include "absl/status/statusor.h"

namespace kaon {

struct RandomModelFlags {
  std::string config_path;     // --config: a config.json
  std::string out_dir;         // --out: created if missing; files in it are replaced
  std::string tokenizer_from;  // --tokenizer-from: model dir to copy the tokenizer from ("" = none)
  uint64_t seed = 0;           // --seed
  std::string dtype = "float32";  // --dtype: float32 | bfloat16
};

struct RandomModelSummary {
  int64_t num_tensors = 0;
  int64_t num_parameters = 0;
  uint64_t file_bytes = 0;  // model.safetensors
  double seconds = 0.0;     // whole command
};

// Writes out_dir/config.json (the input with torch_dtype set to --dtype),
// out_dir/model.safetensors, and — with --tokenizer-from — copies
// tokenizer.json (required) plus tokenizer_config.json and
// generation_config.json (when present). The config is validated with
// LoadModelInfo before any weight is drawn; errors name the file or flag.
absl::StatusOr<RandomModelSummary> WriteRandomModel(const RandomModelFlags& flags);

// Runs WriteRandomModel and prints one summary line to `out`; returns the
// process exit code (errors go to `err` as one line).
int RunRandomModelCommand(const RandomModelFlags& flags, std::ostream& out, std::ostream& err);

}  // namespace kaon
