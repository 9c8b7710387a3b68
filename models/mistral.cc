// Mistral (MistralForCausalLM): Llama's decoder without attention biases. Its
// defining feature, sliding-window attention, is refused until kaon's
// attention supports it (a window at least as long as the context is inert).
#include "models/family.h"
#include "server/common/status.h"

namespace kaon {
namespace {

absl::StatusOr<DecoderOptions> ConfigureMistral(const nlohmann::ordered_json& j, const std::string& path,
                                                ModelConfig* config) {
  KAON_RETURN_IF_ERROR(RefuseActiveSlidingWindow(j, path, *config, /*gated_by_use_sliding_window=*/false));
  return DecoderOptions{};
}

}  // namespace

ModelFamily MistralFamily() { return {{"MistralForCausalLM"}, &ConfigureMistral}; }

}  // namespace kaon
