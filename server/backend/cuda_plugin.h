// Finds and opens the optional CUDA backend (libkaon_cuda.so, whose ABI is
// server/backend/cuda/plugin_abi.h) with dlopen, so CPU-only runs never load
// the CUDA runtime and a build without CUDA still runs everywhere.
#pragma once

#include <string>

#include "server/backend/cuda/plugin_abi.h"

namespace kaon {

// The plugin next to the running binary, or in ../lib (a bundle's layout);
// null with the reason in *why_not. The handle stays open for the process's
// lifetime: models it built run until exit.
const CudaPluginV2* LoadCudaPlugin(std::string* why_not);

// Where the plugin's RUNPATH looks for the CUDA libraries (server/backend/
// cuda/CMakeLists.txt sets it), for messages.
inline constexpr const char* kCudaPluginRunpathText =
    "the plugin's folder, ../lib, /usr/local/cuda/lib64 or /usr/local/cuda/targets/x86_64-linux/lib";

// One line for a failed dlopen of `file`: a missing dependency (cuBLASLt,
// say) is named with the folders that were searched.
std::string DescribeLoadError(const std::string& file, const std::string& dl_error);

}  // namespace kaon
