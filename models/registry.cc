#include "models/registry.h"

#include <charconv>
#include <optional>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "models/family.h"
#include "server/common/files.h"
#include "server/common/status.h"
#include "server/loading/safetensors.h"

namespace kaon {
namespace {

std::vector<ModelFamily> Families() {
  return {LlamaFamily(), MistralFamily(), Qwen2Family(), Qwen3Family()};
}

absl::StatusOr<ModelFamily> FindFamily(const std::string& arch, const std::string& path) {
  for (const ModelFamily& f : Families()) {
    for (const std::string& a : f.architectures) {
      if (a == arch) return f;
    }
  }
  return absl::UnimplementedError(absl::StrCat(path, ": architecture \"", arch,
                                               "\" is not supported (supported: ",
                                               absl::StrJoin(SupportedArchitectures(), ", "), ")"));
}

// Buffers that some Hugging Face checkpoints carry and that transformers and
// vLLM skip when loading a Llama-family model: the RoPE tables (kaon computes
// its own) and a stored head when the embeddings are tied (the head is the
// embedding matrix then).
bool IsIgnoredOnLoad(std::string_view name, const ModelConfig& c) {
  for (std::string_view suffix : {"rotary_emb.inv_freq", "rotary_emb.cos_cached", "rotary_emb.sin_cached"}) {
    if (name.ends_with(suffix) && (name.size() == suffix.size() || name[name.size() - suffix.size() - 1] == '.')) {
      return true;
    }
  }
  return c.tie_word_embeddings && name == "lm_head.weight";
}

// N of "model.layers.N.…".
std::optional<int64_t> LayerIndex(std::string_view name) {
  constexpr std::string_view kPrefix = "model.layers.";
  if (!name.starts_with(kPrefix)) return std::nullopt;
  name.remove_prefix(kPrefix.size());
  int64_t n = 0;
  const auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), n);
  if (ec != std::errc() || end == name.data() || end == name.data() + name.size() || *end != '.') return std::nullopt;
  return n;
}

// Names come from the checkpoint: keep the message one short line.
std::string NameForError(std::string name) {
  if (name.size() > 160) name = name.substr(0, 157) + "...";
  for (char& ch : name) {
    if (static_cast<unsigned char>(ch) < 0x20) ch = '?';
  }
  return name;
}

}  // namespace

absl::StatusOr<ModelInfo> LoadModelInfo(const std::string& model_dir) {
  ModelInfo info;
  const std::string path = JoinPath(model_dir, "config.json");
  KAON_ASSIGN_OR_RETURN(nlohmann::ordered_json j, ReadJsonFile(path, ConfigLimits::kMaxFileBytes));
  KAON_ASSIGN_OR_RETURN(info.config, ParseCommonConfig(j, path));
  KAON_ASSIGN_OR_RETURN(ModelFamily family, FindFamily(info.config.architecture, path));
  KAON_ASSIGN_OR_RETURN(info.options, family.configure(j, path, &info.config));
  KAON_ASSIGN_OR_RETURN(info.generation, LoadGenerationConfig(model_dir, &info.config));
  return info;
}

std::vector<std::string> SupportedArchitectures() {
  std::vector<std::string> names;
  for (const ModelFamily& f : Families()) names.insert(names.end(), f.architectures.begin(), f.architectures.end());
  return names;
}

absl::StatusOr<std::unique_ptr<CausalLM>> LoadModel(const std::string& model_dir, const ModelInfo& info,
                                                    const Capacity& capacity, std::unique_ptr<Backend> backend,
                                                    layers::TpInfo tp) {
  KAON_ASSIGN_OR_RETURN(std::unique_ptr<WeightStore> store, WeightStore::Open(model_dir));
  return LoadModelFromStore(*store, info, capacity, std::move(backend), tp);
}

absl::StatusOr<std::unique_ptr<CausalLM>> LoadModelFromStore(const WeightStore& store, const ModelInfo& info,
                                                             const Capacity& capacity,
                                                             std::unique_ptr<Backend> backend, layers::TpInfo tp) {
  KAON_ASSIGN_OR_RETURN(std::unique_ptr<DecoderModel> model,
                        DecoderModel::Load(info.config, info.options, store, capacity, tp, std::move(backend)));
  KAON_RETURN_IF_ERROR(RefuseUnusedTensors(store, info));
  return std::unique_ptr<CausalLM>(std::move(model));
}

absl::Status RefuseUnusedTensors(const WeightStore& store, const ModelInfo& info) {
  const ModelConfig& c = info.config;
  std::vector<WeightStore::Unread> unused;
  for (WeightStore::Unread& t : store.UnreadTensors()) {
    if (IsIgnoredOnLoad(t.name, c)) continue;
    unused.push_back(std::move(t));
  }
  if (unused.empty()) return absl::OkStatus();
  const WeightStore::Unread& first = unused.front();
  std::string why = absl::StrCat(c.architecture);
  // A layer past the config's count: the commonest mismatch, worth naming.
  if (std::optional<int64_t> layer = LayerIndex(first.name); layer && *layer >= c.num_layers) {
    absl::StrAppend(&why, " with num_hidden_layers ", c.num_layers);
  }
  std::string more;
  if (unused.size() > 1) more = absl::StrCat("and ", unused.size() - 1, " more unused tensors; ");
  return absl::InvalidArgumentError(absl::StrCat(first.file, ": tensor \"", NameForError(first.name),
                                                 "\" is not used by ", why, " (", more,
                                                 "is config.json from another model?)"));
}

}  // namespace kaon
