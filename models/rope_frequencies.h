#pragma once

#include <vector>

#include "server/loading/model_config.h"

namespace kaon {

// Inverse rotary frequencies for one head (head_dim / 2 values), with the
// config's rope scaling applied exactly as transformers' rope init functions
// define it (default, linear, llama3).
std::vector<double> ComputeRopeInvFreq(const ModelConfig& config);

}  // namespace kaon
