// libkaon_cuda.so's one exported symbol (see server/backend/cuda/plugin_abi.h).
#include "server/backend/cuda/cuda_decoder.h"
#include "server/backend/cuda/plugin_abi.h"

extern "C" __attribute__((visibility("default"))) const kaon::CudaPluginV1* kaon_cuda_plugin_v1() {
  static const kaon::CudaPluginV1 plugin{&kaon::CudaDeviceCount, &kaon::LoadCudaModel,
                                         &kaon::LoadCudaModelFromStore, &kaon::CudaMemoryInfo};
  return &plugin;
}
