// libkaon_cuda.so's one exported symbol (see server/backend/cuda/plugin_abi.h).
#include "server/backend/cuda/cuda_backend.h"
#include "server/backend/cuda/plugin_abi.h"

extern "C" __attribute__((visibility("default"))) const kaon::CudaPluginV2* kaon_cuda_plugin_v2() {
  static const kaon::CudaPluginV2 plugin{&kaon::CudaDeviceCount, &kaon::CudaMemoryInfo, &kaon::CudaBackendFixedBytes,
                                         &kaon::CreateCudaBackend};
  return &plugin;
}
