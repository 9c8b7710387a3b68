#include "server/cli/random_model_command.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "models/registry.h"
#include "models/random_weights.h"
#include "server/common/files.h"
#include "server/common/status.h"
#include "server/loading/safetensors_writer.h"

namespace kaon {
namespace {

namespace fs = std::filesystem;

absl::Status CopyFile(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot copy ", from.string(), " to ", to.string(), ": ", ec.message()));
  return absl::OkStatus();
}

absl::Status CopyTokenizer(const std::string& from_dir, const fs::path& out) {
  const fs::path from(from_dir);
  if (!fs::is_directory(from)) {
    return absl::NotFoundError(absl::StrCat("--tokenizer-from ", from_dir, " is not a directory"));
  }
  if (!fs::is_regular_file(from / "tokenizer.json")) {
    return absl::NotFoundError(absl::StrCat("--tokenizer-from ", from_dir, " has no tokenizer.json"));
  }
  KAON_RETURN_IF_ERROR(CopyFile(from / "tokenizer.json", out / "tokenizer.json"));
  // Optional in HF repos: copied when present so chat templates, special
  // tokens and EOS ids come along.
  for (const char* name : {"tokenizer_config.json", "generation_config.json"}) {
    if (fs::is_regular_file(from / name)) KAON_RETURN_IF_ERROR(CopyFile(from / name, out / name));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<RandomModelSummary> WriteRandomModel(const RandomModelFlags& flags) {
  const auto start = std::chrono::steady_clock::now();
  if (flags.config_path.empty()) return absl::InvalidArgumentError("--config is required");
  if (flags.out_dir.empty()) return absl::InvalidArgumentError("--out is required");
  DType dtype;
  if (flags.dtype == "float32") {
    dtype = DType::kF32;
  } else if (flags.dtype == "bfloat16") {
    dtype = DType::kBF16;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--dtype must be float32 or bfloat16, got \"", flags.dtype, "\""));
  }
  KAON_ASSIGN_OR_RETURN(nlohmann::ordered_json config, ReadJsonFile(flags.config_path));
  if (!config.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(flags.config_path, ": expected a JSON object"));
  }
  const fs::path out(flags.out_dir);
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create --out ", flags.out_dir, ": ", ec.message()));

  // Tokenizer files first: generation_config.json contributes EOS ids that
  // LoadModelInfo validates along with the config.
  if (!flags.tokenizer_from.empty()) KAON_RETURN_IF_ERROR(CopyTokenizer(flags.tokenizer_from, out));
  // The config records the dtype actually written, as HF checkpoints do.
  config["torch_dtype"] = flags.dtype;
  {
    const fs::path path = out / "config.json";
    std::ofstream f(path);
    f << config.dump(2) << "\n";
    if (!f.good()) return absl::InternalError(absl::StrCat("cannot write ", path.string()));
  }
  KAON_ASSIGN_OR_RETURN(ModelInfo info, LoadModelInfo(flags.out_dir));

  std::vector<TensorToWrite> tensors = RandomModelTensors(info, flags.seed, dtype);
  RandomModelSummary summary;
  summary.num_tensors = static_cast<int64_t>(tensors.size());
  for (const TensorToWrite& t : tensors) summary.num_parameters += t.numel();
  KAON_ASSIGN_OR_RETURN(summary.file_bytes,
                        WriteSafetensors((out / "model.safetensors").string(), std::move(tensors)));
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

int RunRandomModelCommand(const RandomModelFlags& flags, std::ostream& out, std::ostream& err) {
  absl::StatusOr<RandomModelSummary> s = WriteRandomModel(flags);
  if (!s.ok()) {
    err << "kaon random-model: " << s.status().message() << "\n";
    return 1;
  }
  out << absl::StrFormat("kaon random-model: wrote %s: %d tensors, %d parameters (%.1fM), %s, %d bytes in %.2f s\n",
                         (fs::path(flags.out_dir) / "model.safetensors").string(), s->num_tensors,
                         s->num_parameters, static_cast<double>(s->num_parameters) / 1e6, flags.dtype,
                         s->file_bytes, s->seconds);
  return 0;
}

}  // namespace kaon
