// Qwen3 (Qwen3ForCausalLM): per-head RMSNorm on q and k before RoPE, an
// explicit head_dim that may differ from hidden_size / heads, and optional
// attention biases.
#include "models/family.h"
#include "server/common/status.h"

namespace kaon {
namespace {

absl::StatusOr<DecoderOptions> ConfigureQwen3(const nlohmann::ordered_json& j, const std::string& path,
                                              ModelConfig* config) {
  KAON_RETURN_IF_ERROR(RefuseActiveSlidingWindow(j, path, *config, /*gated_by_use_sliding_window=*/true));
  KAON_ASSIGN_OR_RETURN(bool bias, AttentionBias(j, path));
  config->qkv_bias = config->o_bias = bias;
  config->qk_norm = true;
  DecoderOptions o;
  o.qkv_bias = o.o_bias = bias ? layers::Bias::kRequired : layers::Bias::kNone;
  o.qk_norm = true;
  return o;
}

}  // namespace

ModelFamily Qwen3Family() { return {{"Qwen3ForCausalLM"}, &ConfigureQwen3}; }

}  // namespace kaon
