// What kaon reads from a model directory's config.json and
// generation_config.json, validated once at load. Anything kaon cannot run
// correctly yet is refused here with the field's name, never approximated.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace kaon {

// Upper bounds on config.json sizes, checked before anything is sized from
// them. Each is far above every released model (a factor of 30 or more) and
// far below where int64 byte counts derived from them could overflow: the
// products start-up forms (weights, KV cache, activations) stay below 2^62
// bytes even with every field at its bound, and the memory check
// (server/backend/memory_plan.h) then refuses what does not fit the machine.
struct ConfigLimits {
  // 2^24: tokenizer ids are bounded the same way (server/tokenizer), and the
  // largest vocabularies are ~256k (Gemma 3: 262144; Qwen2.5: 152064).
  static constexpr int64_t kMaxVocabSize = int64_t{1} << 24;
  // Llama 3.1 405B: 16384, the widest released dense model.
  static constexpr int64_t kMaxHiddenSize = int64_t{1} << 20;
  // Llama 3.1 405B: 53248.
  static constexpr int64_t kMaxIntermediateSize = int64_t{1} << 22;
  // Llama 3.1 405B: 126.
  static constexpr int64_t kMaxLayers = int64_t{1} << 12;
  // Llama 3.1 405B: 128 query heads; the q projection (heads × head_dim) is
  // bounded like hidden_size below.
  static constexpr int64_t kMaxHeads = int64_t{1} << 14;
  // Real head sizes are 64 to 256.
  static constexpr int64_t kMaxHeadDim = int64_t{1} << 13;
  // Llama 4 Scout: 10485760 (10M), the longest released context; 2^28 is 25x
  // that. The KV cache and RoPE tables it implies are checked against memory.
  static constexpr int64_t kMaxPositionEmbeddings = int64_t{1} << 28;
  // Llama 3 lists 3 end ids; a list is deduplicated in quadratic time.
  static constexpr size_t kMaxEosIds = 1024;
  // config.json and generation_config.json are a few kilobytes.
  static constexpr uint64_t kMaxFileBytes = uint64_t{16} << 20;
};

struct RopeScaling {
  enum class Type { kNone, kLinear, kLlama3 };
  Type type = Type::kNone;
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;
};

struct ModelConfig {
  std::string architecture;  // config.json "architectures"[0]
  std::string model_type;
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool qkv_bias = false;   // Qwen2 always; Llama/Qwen3 with attention_bias
  bool o_bias = false;     // Llama with attention_bias
  bool qk_norm = false;    // Qwen3
  std::string torch_dtype;
  std::optional<int32_t> bos_token_id;
  std::vector<int32_t> eos_token_ids;  // config.json, then generation_config.json
};

// Default sampling from generation_config.json (absent fields stay unset).
struct GenerationDefaults {
  std::optional<float> temperature;
  std::optional<float> top_p;
  std::optional<int32_t> top_k;
  std::optional<float> min_p;
  std::optional<float> repetition_penalty;
  std::optional<bool> do_sample;
  std::optional<int64_t> max_new_tokens;
};

// Reads the fields every supported family shares and refuses options no
// family implements (quantization, unsupported rope scaling, mlp_bias, a
// non-SiLU activation). Family-specific checks live in the model files.
absl::StatusOr<ModelConfig> ParseCommonConfig(const nlohmann::ordered_json& j,
                                              const std::string& path);

// Reads generation_config.json when present: its eos ids are added to
// config->eos_token_ids; sampling defaults are returned.
absl::StatusOr<GenerationDefaults> LoadGenerationConfig(const std::string& model_dir,
                                                        ModelConfig* config);

// Helpers the family files use to read optional typed fields with errors that
// name the file and the field.
absl::StatusOr<std::optional<int64_t>> OptionalInt(const nlohmann::ordered_json& j,
                                                   const std::string& key, const std::string& path);
absl::StatusOr<std::optional<double>> OptionalNumber(const nlohmann::ordered_json& j,
                                                     const std::string& key, const std::string& path);
absl::StatusOr<std::optional<bool>> OptionalBool(const nlohmann::ordered_json& j,
                                                 const std::string& key, const std::string& path);

}  // namespace kaon
