#include "models/registry.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "models/family.h"
#include "server/common/files.h"
#include "server/common/status.h"
#include "server/runtime/safetensors.h"

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

}  // namespace

absl::StatusOr<ModelInfo> LoadModelInfo(const std::string& model_dir) {
  ModelInfo info;
  const std::string path = JoinPath(model_dir, "config.json");
  KAON_ASSIGN_OR_RETURN(nlohmann::ordered_json j, ReadJsonFile(path));
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
                                                    const ModelCapacity& capacity, TpInfo tp) {
  KAON_ASSIGN_OR_RETURN(std::unique_ptr<WeightStore> store, WeightStore::Open(model_dir));
  return LoadModelFromStore(*store, info, capacity, tp);
}

absl::StatusOr<std::unique_ptr<CausalLM>> LoadModelFromStore(const WeightStore& store, const ModelInfo& info,
                                                             const ModelCapacity& capacity, TpInfo tp) {
  KAON_ASSIGN_OR_RETURN(std::unique_ptr<DecoderModel> model,
                        DecoderModel::Load(info.config, info.options, store, capacity, tp));
  return std::unique_ptr<CausalLM>(std::move(model));
}

}  // namespace kaon
