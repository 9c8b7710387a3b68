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
const CudaPluginV1* LoadCudaPlugin(std::string* why_not);

}  // namespace kaon
