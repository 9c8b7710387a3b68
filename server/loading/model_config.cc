#include "server/loading/model_config.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "server/common/files.h"
#include "server/common/status.h"

namespace kaon {
namespace {

using Json = nlohmann::ordered_json;

absl::Status FieldError(const std::string& path, const std::string& field, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": field \"", field, "\" ", what));
}

absl::Status Unsupported(const std::string& path, const std::string& field, const std::string& what) {
  return absl::UnimplementedError(
      absl::StrCat(path, ": field \"", field, "\" ", what, " is not supported by kaon yet"));
}

// A required size in [1, max]: checked before anything is sized from it.
absl::StatusOr<int64_t> RequiredSize(const Json& j, const std::string& key, const std::string& path, int64_t max) {
  KAON_ASSIGN_OR_RETURN(std::optional<int64_t> v, OptionalInt(j, key, path));
  if (!v) return FieldError(path, key, "is missing");
  if (*v <= 0) return FieldError(path, key, absl::StrCat("must be positive, got ", *v));
  if (*v > max) return FieldError(path, key, absl::StrCat("must be at most ", max, ", got ", *v));
  return *v;
}

// eos_token_id may be one id or a list of ids.
absl::Status AppendTokenIds(const Json& j, const std::string& key, const std::string& path,
                            std::vector<int32_t>* out) {
  if (!j.contains(key) || j[key].is_null()) return absl::OkStatus();
  const Json& v = j[key];
  auto add = [&](const Json& id) -> absl::Status {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 ||
        id.get<int64_t>() > std::numeric_limits<int32_t>::max()) {
      return FieldError(path, key, "must hold non-negative integer token ids");
    }
    const int32_t t = static_cast<int32_t>(id.get<int64_t>());
    for (int32_t e : *out) {
      if (e == t) return absl::OkStatus();
    }
    out->push_back(t);
    return absl::OkStatus();
  };
  if (v.is_array()) {
    if (v.size() > ConfigLimits::kMaxEosIds) {
      return FieldError(path, key, absl::StrCat("lists ", v.size(), " ids, more than ", ConfigLimits::kMaxEosIds));
    }
    for (const Json& id : v) KAON_RETURN_IF_ERROR(add(id));
    return absl::OkStatus();
  }
  return add(v);
}

absl::Status ParseRopeScaling(const Json& j, const std::string& path, RopeScaling* out) {
  if (!j.contains("rope_scaling") || j["rope_scaling"].is_null()) return absl::OkStatus();
  const Json& rs = j["rope_scaling"];
  if (!rs.is_object()) return FieldError(path, "rope_scaling", "must be an object or null");
  std::string type;
  for (const char* key : {"rope_type", "type"}) {
    if (rs.contains(key) && rs[key].is_string()) {
      type = rs[key].get<std::string>();
      break;
    }
  }
  if (type.empty()) return FieldError(path, "rope_scaling.rope_type", "is missing");
  auto number = [&](const char* key, double* dst, bool required) -> absl::Status {
    if (!rs.contains(key)) {
      return required ? FieldError(path, absl::StrCat("rope_scaling.", key), "is missing")
                      : absl::OkStatus();
    }
    if (!rs[key].is_number() || !std::isfinite(rs[key].get<double>())) {
      return FieldError(path, absl::StrCat("rope_scaling.", key), "must be a finite number");
    }
    *dst = rs[key].get<double>();
    return absl::OkStatus();
  };
  if (type == "default") return absl::OkStatus();
  if (type == "linear") {
    out->type = RopeScaling::Type::kLinear;
    KAON_RETURN_IF_ERROR(number("factor", &out->factor, true));
  } else if (type == "llama3") {
    out->type = RopeScaling::Type::kLlama3;
    double orig = 0;
    KAON_RETURN_IF_ERROR(number("factor", &out->factor, true));
    KAON_RETURN_IF_ERROR(number("low_freq_factor", &out->low_freq_factor, true));
    KAON_RETURN_IF_ERROR(number("high_freq_factor", &out->high_freq_factor, true));
    KAON_RETURN_IF_ERROR(number("original_max_position_embeddings", &orig, true));
    // Compared as a double first: converting an out-of-range double is UB.
    if (!(orig >= 1 && orig <= static_cast<double>(ConfigLimits::kMaxPositionEmbeddings))) {
      return FieldError(path, "rope_scaling.original_max_position_embeddings",
                        absl::StrCat("must be between 1 and ", ConfigLimits::kMaxPositionEmbeddings, ", got ", orig));
    }
    out->original_max_position_embeddings = static_cast<int64_t>(orig);
    if (out->high_freq_factor <= out->low_freq_factor) {
      return FieldError(path, "rope_scaling", "needs high_freq_factor > low_freq_factor");
    }
  } else {
    return Unsupported(path, "rope_scaling.rope_type", absl::StrCat("\"", type, "\""));
  }
  if (!(out->factor > 0) || !std::isfinite(out->factor)) {
    return FieldError(path, "rope_scaling.factor", "must be a positive number");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::optional<int64_t>> OptionalInt(const Json& j, const std::string& key,
                                                   const std::string& path) {
  if (!j.contains(key) || j[key].is_null()) return std::optional<int64_t>();
  const Json& v = j[key];
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return FieldError(path, key, absl::StrCat("is too large, got ", v.get<uint64_t>()));
  }
  if (v.is_number_integer()) return std::optional<int64_t>(v.get<int64_t>());
  // Some configs write integers as floats (e.g. 4096.0); accept exact ones.
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d)) {
      if (std::fabs(d) >= 9.0e18) return FieldError(path, key, absl::StrCat("is too large, got ", d));
      return std::optional<int64_t>(static_cast<int64_t>(d));
    }
  }
  return FieldError(path, key, "must be an integer");
}

absl::StatusOr<std::optional<double>> OptionalNumber(const Json& j, const std::string& key,
                                                     const std::string& path) {
  if (!j.contains(key) || j[key].is_null()) return std::optional<double>();
  if (!j[key].is_number()) return FieldError(path, key, "must be a number");
  return std::optional<double>(j[key].get<double>());
}

absl::StatusOr<std::optional<bool>> OptionalBool(const Json& j, const std::string& key,
                                                 const std::string& path) {
  if (!j.contains(key) || j[key].is_null()) return std::optional<bool>();
  if (!j[key].is_boolean()) return FieldError(path, key, "must be true or false");
  return std::optional<bool>(j[key].get<bool>());
}

absl::StatusOr<ModelConfig> ParseCommonConfig(const Json& j, const std::string& path) {
  if (!j.is_object()) return absl::InvalidArgumentError(absl::StrCat(path, ": must be a JSON object"));
  ModelConfig c;
  if (!j.contains("architectures") || !j["architectures"].is_array() || j["architectures"].empty() ||
      !j["architectures"][0].is_string()) {
    return FieldError(path, "architectures", "must be a non-empty list of names");
  }
  c.architecture = j["architectures"][0].get<std::string>();
  if (j.contains("model_type") && j["model_type"].is_string()) c.model_type = j["model_type"].get<std::string>();
  if (j.contains("quantization_config") && !j["quantization_config"].is_null()) {
    return Unsupported(path, "quantization_config", "(quantized checkpoints)");
  }
  using L = ConfigLimits;
  KAON_ASSIGN_OR_RETURN(c.vocab_size, RequiredSize(j, "vocab_size", path, L::kMaxVocabSize));
  KAON_ASSIGN_OR_RETURN(c.hidden_size, RequiredSize(j, "hidden_size", path, L::kMaxHiddenSize));
  KAON_ASSIGN_OR_RETURN(c.intermediate_size, RequiredSize(j, "intermediate_size", path, L::kMaxIntermediateSize));
  KAON_ASSIGN_OR_RETURN(c.num_layers, RequiredSize(j, "num_hidden_layers", path, L::kMaxLayers));
  KAON_ASSIGN_OR_RETURN(c.num_heads, RequiredSize(j, "num_attention_heads", path, L::kMaxHeads));
  KAON_ASSIGN_OR_RETURN(std::optional<int64_t> kv, OptionalInt(j, "num_key_value_heads", path));
  c.num_kv_heads = kv.value_or(c.num_heads);
  if (c.num_kv_heads <= 0 || c.num_heads % c.num_kv_heads != 0) {
    return FieldError(path, "num_key_value_heads",
                      absl::StrCat("must be positive and divide num_attention_heads (", c.num_heads, ")"));
  }
  KAON_ASSIGN_OR_RETURN(std::optional<int64_t> hd, OptionalInt(j, "head_dim", path));
  if (hd) {
    c.head_dim = *hd;
  } else {
    if (c.hidden_size % c.num_heads != 0) {
      return FieldError(path, "head_dim", "is missing and hidden_size is not a multiple of num_attention_heads");
    }
    c.head_dim = c.hidden_size / c.num_heads;
  }
  if (c.head_dim <= 0 || c.head_dim % 2 != 0) {
    return FieldError(path, "head_dim", "must be a positive even number");
  }
  if (c.head_dim > L::kMaxHeadDim) {
    return FieldError(path, "head_dim", absl::StrCat("must be at most ", L::kMaxHeadDim, ", got ", c.head_dim));
  }
  // Both at most 2^14 and 2^13, so the product cannot overflow.
  if (c.num_heads * c.head_dim > L::kMaxHiddenSize) {
    return FieldError(path, "head_dim",
                      absl::StrCat("times num_attention_heads (", c.head_dim, " x ", c.num_heads,
                                   ") must be at most ", L::kMaxHiddenSize));
  }
  KAON_ASSIGN_OR_RETURN(c.max_position_embeddings,
                        RequiredSize(j, "max_position_embeddings", path, L::kMaxPositionEmbeddings));
  KAON_ASSIGN_OR_RETURN(std::optional<double> eps, OptionalNumber(j, "rms_norm_eps", path));
  c.rms_norm_eps = eps.value_or(1e-6);
  if (!(c.rms_norm_eps > 0) || !std::isfinite(c.rms_norm_eps)) {
    return FieldError(path, "rms_norm_eps", "must be positive and finite");
  }
  KAON_ASSIGN_OR_RETURN(std::optional<double> theta, OptionalNumber(j, "rope_theta", path));
  c.rope_theta = theta.value_or(10000.0);
  if (!(c.rope_theta > 0) || !std::isfinite(c.rope_theta)) {
    return FieldError(path, "rope_theta", "must be positive and finite");
  }
  KAON_RETURN_IF_ERROR(ParseRopeScaling(j, path, &c.rope_scaling));
  if (j.contains("partial_rotary_factor") && j["partial_rotary_factor"].is_number() &&
      j["partial_rotary_factor"].get<double>() != 1.0) {
    return Unsupported(path, "partial_rotary_factor", "other than 1.0");
  }

  std::string act = "silu";
  for (const char* key : {"hidden_act", "hidden_activation"}) {
    if (j.contains(key) && j[key].is_string()) act = j[key].get<std::string>();
  }
  if (act != "silu" && act != "swish") return Unsupported(path, "hidden_act", absl::StrCat("\"", act, "\""));
  KAON_ASSIGN_OR_RETURN(std::optional<bool> mlp_bias, OptionalBool(j, "mlp_bias", path));
  if (mlp_bias.value_or(false)) return Unsupported(path, "mlp_bias", "true");
  KAON_ASSIGN_OR_RETURN(std::optional<bool> tie, OptionalBool(j, "tie_word_embeddings", path));
  // transformers' PretrainedConfig defaults tie_word_embeddings to true.
  c.tie_word_embeddings = tie.value_or(true);
  if (j.contains("torch_dtype") && j["torch_dtype"].is_string()) c.torch_dtype = j["torch_dtype"].get<std::string>();

  KAON_ASSIGN_OR_RETURN(std::optional<int64_t> bos, OptionalInt(j, "bos_token_id", path));
  if (bos) {
    if (*bos < 0 || *bos >= c.vocab_size) {
      return FieldError(path, "bos_token_id", absl::StrCat(*bos, " is outside the vocabulary (vocab_size ", c.vocab_size, ")"));
    }
    c.bos_token_id = static_cast<int32_t>(*bos);
  }
  KAON_RETURN_IF_ERROR(AppendTokenIds(j, "eos_token_id", path, &c.eos_token_ids));
  for (int32_t e : c.eos_token_ids) {
    if (e >= c.vocab_size) return FieldError(path, "eos_token_id", absl::StrCat(e, " is outside the vocabulary"));
  }
  return c;
}

absl::StatusOr<GenerationDefaults> LoadGenerationConfig(const std::string& model_dir,
                                                        ModelConfig* config) {
  GenerationDefaults d;
  const std::string path = JoinPath(model_dir, "generation_config.json");
  if (!FileExists(path)) return d;
  KAON_ASSIGN_OR_RETURN(Json j, ReadJsonFile(path, ConfigLimits::kMaxFileBytes));
  if (!j.is_object()) return absl::InvalidArgumentError(absl::StrCat(path, ": must be a JSON object"));
  KAON_RETURN_IF_ERROR(AppendTokenIds(j, "eos_token_id", path, &config->eos_token_ids));
  for (int32_t e : config->eos_token_ids) {
    if (e >= config->vocab_size) return FieldError(path, "eos_token_id", absl::StrCat(e, " is outside the vocabulary"));
  }
  auto set_float = [&](const char* key, std::optional<float>* dst) -> absl::Status {
    KAON_ASSIGN_OR_RETURN(std::optional<double> v, OptionalNumber(j, key, path));
    if (v) *dst = static_cast<float>(*v);
    return absl::OkStatus();
  };
  KAON_RETURN_IF_ERROR(set_float("temperature", &d.temperature));
  KAON_RETURN_IF_ERROR(set_float("top_p", &d.top_p));
  KAON_RETURN_IF_ERROR(set_float("min_p", &d.min_p));
  KAON_RETURN_IF_ERROR(set_float("repetition_penalty", &d.repetition_penalty));
  KAON_ASSIGN_OR_RETURN(std::optional<int64_t> top_k, OptionalInt(j, "top_k", path));
  // Beyond int32 a top_k keeps every token, as the largest int32 does.
  if (top_k) {
    d.top_k = static_cast<int32_t>(std::clamp<int64_t>(*top_k, std::numeric_limits<int32_t>::min(),
                                                       std::numeric_limits<int32_t>::max()));
  }
  KAON_ASSIGN_OR_RETURN(d.do_sample, OptionalBool(j, "do_sample", path));
  KAON_ASSIGN_OR_RETURN(d.max_new_tokens, OptionalInt(j, "max_new_tokens", path));
  return d;
}

}  // namespace kaon
