// Qwen2 / Qwen2.5 (Qwen2ForCausalLM): q/k/v projections always carry biases
// (o_proj never does). Its sliding window only applies when
// use_sliding_window is true.
#include "models/family.h"
#include "server/common/status.h"

namespace kaon {
namespace {

absl::StatusOr<DecoderOptions> ConfigureQwen2(const nlohmann::ordered_json& j, const std::string& path,
                                              ModelConfig* config) {
  KAON_RETURN_IF_ERROR(RefuseActiveSlidingWindow(j, path, *config, /*gated_by_use_sliding_window=*/true));
  config->qkv_bias = true;
  DecoderOptions o;
  o.qkv_bias = layers::Bias::kRequired;
  return o;
}

}  // namespace

ModelFamily Qwen2Family() { return {{"Qwen2ForCausalLM"}, &ConfigureQwen2}; }

}  // namespace kaon
