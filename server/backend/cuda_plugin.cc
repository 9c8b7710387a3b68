#include "server/backend/cuda_plugin.h"

#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>
#include <string_view>

#include "absl/strings/str_cat.h"

namespace kaon {

std::string DescribeLoadError(const std::string& file, const std::string& dl_error) {
  // dlerror: "libcublasLt.so.13: cannot open shared object file: No such
  // file or directory" when a dependency is missing.
  constexpr std::string_view kMissing = ": cannot open shared object file";
  const size_t at = dl_error.find(kMissing);
  if (at == std::string::npos) return absl::StrCat(file, ": ", dl_error);
  const std::string lib = dl_error.substr(0, at);
  if (lib == file) return absl::StrCat(file, ": ", dl_error);
  const char* path = std::getenv("LD_LIBRARY_PATH");
  return absl::StrCat(file, " needs ", lib, ", which is in none of LD_LIBRARY_PATH (",
                      path != nullptr && *path != '\0' ? path : "unset", ")", ", ", kCudaPluginRunpathText,
                      "; install the CUDA toolkit's libraries or add their folder to LD_LIBRARY_PATH");
}

const CudaPluginV2* LoadCudaPlugin(std::string* why_not) {
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
      last_error = DescribeLoadError(file.string(), ::dlerror());
      continue;
    }
    using Entry = const CudaPluginV2* (*)();
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
