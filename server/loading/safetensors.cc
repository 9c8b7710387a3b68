#include "server/loading/safetensors.h"

#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/common/files.h"
#include "server/common/status.h"
#include "server/loading/safetensors_file.h"

namespace kaon {
namespace {

constexpr char kSingleFile[] = "model.safetensors";
constexpr char kIndexFile[] = "model.safetensors.index.json";

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

// The index is untrusted input: a shard name must stay inside the model
// directory.
bool IsPlainFileName(const std::string& name) {
  return !name.empty() && name.find('/') == std::string::npos &&
         name.find('\\') == std::string::npos && name.find("..") == std::string::npos &&
         name != ".";
}

}  // namespace

WeightStore::~WeightStore() = default;

absl::StatusOr<std::unique_ptr<WeightStore>> WeightStore::Open(const std::string& dir) {
  std::unique_ptr<WeightStore> store(new WeightStore());
  store->dir_ = dir;
  const std::string single = JoinPath(dir, kSingleFile);
  const std::string index_path = JoinPath(dir, kIndexFile);

  // Like Hugging Face, a single-file checkpoint wins over an index.
  if (FileExists(single)) {
    KAON_ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> file, SafetensorsFile::Open(single));
    for (const auto& [name, view] : file->tensors()) store->Add(view);
    store->files_.push_back(std::move(file));
    return store;
  }
  if (!FileExists(index_path)) {
    return absl::NotFoundError(absl::StrCat("no ", kSingleFile, " or ", kIndexFile, " in ", dir));
  }

  KAON_ASSIGN_OR_RETURN(nlohmann::ordered_json index, ReadJsonFile(index_path, kMaxIndexFileBytes));
  if (!index.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(index_path, ": is a JSON ", index.type_name(), ", expected an object"));
  }
  auto wm = index.find("weight_map");
  if (wm == index.end()) {
    return absl::InvalidArgumentError(absl::StrCat(index_path, ": missing weight_map"));
  }
  if (!wm->is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(index_path, ": weight_map is a JSON ",
                                                   wm->type_name(), ", expected an object"));
  }
  if (wm->empty()) {
    return absl::InvalidArgumentError(absl::StrCat(index_path, ": weight_map lists no tensors"));
  }
  if (wm->size() > kMaxIndexTensors) {
    return absl::InvalidArgumentError(absl::StrCat(index_path, ": weight_map lists ", wm->size(),
                                                   " tensors, more than the limit of ", kMaxIndexTensors));
  }

  // Validate every entry before touching any shard so a bad index fails fast
  // and never opens a path outside `dir`.
  std::map<std::string, std::string> tensor_to_shard;
  std::map<std::string, const SafetensorsFile*> shards;  // ordered: deterministic open order
  for (const auto& [tensor, shard] : wm->items()) {
    if (!shard.is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat(index_path, ": weight_map entry for tensor ", tensor, " is not a string"));
    }
    std::string shard_name = shard.get<std::string>();
    if (!IsPlainFileName(shard_name)) {
      return absl::InvalidArgumentError(absl::StrCat(index_path, ": shard \"", shard_name,
                                                     "\" for tensor ", tensor,
                                                     " is not a plain file name in ", dir));
    }
    shards.emplace(shard_name, nullptr);
    tensor_to_shard[tensor] = std::move(shard_name);
  }

  for (auto& [shard_name, shard_file] : shards) {
    KAON_ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> file,
                          SafetensorsFile::Open(JoinPath(dir, shard_name)));
    for (const auto& [name, view] : file->tensors()) {
      if (!store->Add(view)) {
        return absl::InvalidArgumentError(absl::StrCat("tensor ", name, " appears in both ",
                                                       store->tensors_.at(name).view.file, " and ", view.file));
      }
    }
    shard_file = file.get();
    store->files_.push_back(std::move(file));
  }

  for (const auto& [tensor, shard_name] : tensor_to_shard) {
    const SafetensorsFile* file = shards.at(shard_name);
    if (file->tensors().count(tensor) == 0) {
      return absl::InvalidArgumentError(absl::StrCat(index_path, ": tensor ", tensor,
                                                     " is mapped to shard ", shard_name, " but ",
                                                     file->path(), " does not contain it"));
    }
  }
  return store;
}

absl::StatusOr<std::unique_ptr<WeightStore>> WeightStore::FromMemory(std::string label,
                                                                    std::vector<OwnedTensor> tensors) {
  std::unique_ptr<WeightStore> store(new WeightStore());
  store->dir_ = std::move(label);
  store->owned_ = std::move(tensors);
  for (const OwnedTensor& t : store->owned_) {
    TensorView view;
    view.name = t.name;
    view.file = store->dir_;
    view.dtype = t.dtype;
    view.shape = t.shape;
    view.data = t.bytes.data();
    view.nbytes = t.bytes.size();
    if (view.nbytes != static_cast<size_t>(view.numel()) * DTypeSize(t.dtype)) {
      return absl::InvalidArgumentError(absl::StrCat(store->dir_, ": tensor ", t.name, " has ", view.nbytes,
                                                     " bytes for shape ", ShapeString(t.shape)));
    }
    if (!store->Add(std::move(view))) {
      return absl::InvalidArgumentError(absl::StrCat(store->dir_, ": tensor ", t.name, " given twice"));
    }
  }
  return store;
}

bool WeightStore::Add(TensorView view) {
  std::string name = view.name;
  return tensors_.try_emplace(std::move(name), std::move(view)).second;
}

bool WeightStore::Has(const std::string& name) const { return tensors_.count(name) != 0; }

absl::StatusOr<TensorView> WeightStore::Get(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) {
    return absl::NotFoundError(absl::StrCat("tensor ", name, " not found in ", dir_));
  }
  it->second.read.store(true, std::memory_order_relaxed);
  return it->second.view;
}

absl::StatusOr<TensorView> WeightStore::Get(const std::string& name,
                                            const std::vector<int64_t>& shape) const {
  KAON_ASSIGN_OR_RETURN(TensorView view, Get(name));
  if (view.shape != shape) {
    return absl::InvalidArgumentError(absl::StrCat(view.file, ": tensor ", name, " has shape ",
                                                   ShapeString(view.shape), ", expected ",
                                                   ShapeString(shape)));
  }
  return view;
}

std::vector<std::string> WeightStore::Names() const {
  std::vector<std::string> names;
  names.reserve(tensors_.size());
  for (const auto& [name, entry] : tensors_) names.push_back(name);
  return names;
}

std::vector<WeightStore::Unread> WeightStore::UnreadTensors() const {
  std::vector<Unread> unread;
  for (const auto& [name, entry] : tensors_) {
    if (!entry.read.load(std::memory_order_relaxed)) unread.push_back({name, entry.view.file});
  }
  return unread;
}

}  // namespace kaon
