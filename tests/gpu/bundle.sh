#!/usr/bin/env bash
# Prepares build-gpu/{bin,lib} on the development machine for one device call:
# the kernel check (GPU-check-only build) plus, from the normal build, the
# full-model check and `kaon` with its CUDA plugin (for serving on the GPU),
# with the shared libraries they need. Then, in one call:
#   run(command: "KAON_COMMIT=<hash> bash tests/gpu/check.sh build-gpu/bin",
#       carry: ["build-gpu/bin", "build-gpu/lib"], timeout_s: 420)
set -euo pipefail
cd "$(dirname "$0")/../.."
cmake -S . -B build-gpu -G Ninja -DKAON_GPU_CHECK_ONLY=ON -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-gpu
make build >/dev/null
cmake --build build --target kaon_gpu_model_check kaon kaon_cuda
cp build/bin/kaon_gpu_model_check build/bin/kaon build/bin/libkaon_cuda.so build-gpu/bin/
for b in kaon_gpu_model_check kaon libkaon_cuda.so; do
  tests/gpu_model/collect_libs.sh "build-gpu/bin/$b" build-gpu/lib >/dev/null
done
du -sh build-gpu/bin build-gpu/lib
