// Llama 2 / 3 / 3.1 / 3.2 (LlamaForCausalLM): the plain decoder; rope scaling
// (llama3, linear), GQA, tied or untied head and optional attention biases are
// all handled by the shared config and layers.
#include "absl/strings/str_cat.h"
#include "models/family.h"
#include "server/common/status.h"

namespace kaon {

absl::Status RefuseActiveSlidingWindow(const nlohmann::ordered_json& j, const std::string& path,
                                       const ModelConfig& config, bool gated_by_use_sliding_window) {
  KAON_ASSIGN_OR_RETURN(std::optional<int64_t> window, OptionalInt(j, "sliding_window", path));
  if (!window) return absl::OkStatus();
  if (gated_by_use_sliding_window) {
    KAON_ASSIGN_OR_RETURN(std::optional<bool> use, OptionalBool(j, "use_sliding_window", path));
    if (!use.value_or(false)) return absl::OkStatus();
  }
  if (*window >= config.max_position_embeddings) return absl::OkStatus();
  return absl::UnimplementedError(absl::StrCat(
      path, ": field \"sliding_window\" ", *window, " is smaller than max_position_embeddings ",
      config.max_position_embeddings, "; sliding-window attention is not supported by kaon yet"));
}

absl::StatusOr<bool> AttentionBias(const nlohmann::ordered_json& j, const std::string& path) {
  KAON_ASSIGN_OR_RETURN(std::optional<bool> bias, OptionalBool(j, "attention_bias", path));
  return bias.value_or(false);
}

namespace {

absl::StatusOr<DecoderOptions> ConfigureLlama(const nlohmann::ordered_json& j, const std::string& path,
                                              ModelConfig* config) {
  KAON_RETURN_IF_ERROR(RefuseActiveSlidingWindow(j, path, *config, /*gated_by_use_sliding_window=*/false));
  KAON_ASSIGN_OR_RETURN(bool bias, AttentionBias(j, path));
  config->qkv_bias = config->o_bias = bias;
  DecoderOptions o;
  o.qkv_bias = o.o_bias = bias ? layers::Bias::kRequired : layers::Bias::kNone;
  return o;
}

}  // namespace

ModelFamily LlamaFamily() { return {{"LlamaForCausalLM"}, &ConfigureLlama}; }

}  // namespace kaon
