#include "server/backend/cuda_plugin.h"

#include <dlfcn.h>

#include <filesystem>

#include "absl/strings/str_cat.h"

namespace kaon {

const CudaPluginV1* LoadCudaPlugin(std::string* why_not) {
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) {
    *why_not = "cannot locate the kaon binary (/proc/self/exe)";
    return nullptr;
  }
  std::string last_error;
  for (const std::filesystem::path& dir : {exe.parent_path(), exe.parent_path().parent_path() / "lib"}) {
    const std::filesystem::path file = dir / kCudaPluginFile;
    if (!std::filesystem::exists(file)) continue;
    void* handle = ::dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      last_error = absl::StrCat(file.string(), ": ", ::dlerror());
      continue;
    }
    using Entry = const CudaPluginV1* (*)();
    auto entry = reinterpret_cast<Entry>(::dlsym(handle, kCudaPluginSymbol));
    if (entry == nullptr) {
      last_error = absl::StrCat(file.string(), " has no ", kCudaPluginSymbol, " (built from another kaon version?)");
      continue;
    }
    return entry();
  }
  *why_not = last_error.empty() ? absl::StrCat("this build has no CUDA backend (", kCudaPluginFile,
                                               " is not next to the kaon binary)")
                                : last_error;
  return nullptr;
}

}  // namespace kaon
