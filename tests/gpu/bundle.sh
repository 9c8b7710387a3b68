#!/usr/bin/env bash
# Prepares build-gpu/{bin,lib} on the development machine for one device call:
# the kernel check (GPU-check-only build) plus, from the normal build, the
# full-model check and `kaon` with its CUDA plugin (for serving on the GPU),
# with the shared libraries they need. The libraries (~60 MB with kaon's gRPC,
# protobuf and OpenSSL) travel as build-gpu/lib.tar.xz (~12 MB) to stay
# inside the device tool's 64 MiB carry limit; check.sh unpacks it. Then, in
# one call:
#   run(command: "KAON_COMMIT=<hash> bash tests/gpu/check.sh build-gpu/bin",
#       carry: ["build-gpu/bin", "build-gpu/lib.tar.xz"], timeout_s: 420)
set -euo pipefail
cd "$(dirname "$0")/../.."
cmake -S . -B build-gpu -G Ninja -DKAON_GPU_CHECK_ONLY=ON -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-gpu
make build >/dev/null
cmake --build build --target kaon_gpu_model_check kaon kaon_cuda cuda_kernels_test cuda_sample_rows_test
cp build/bin/kaon_gpu_model_check build/bin/kaon build/bin/libkaon_cuda.so build/bin/cuda_kernels_test \
  build/bin/cuda_sample_rows_test build-gpu/bin/
rm -rf build-gpu/lib build-gpu/lib.tar.xz
for b in kaon_gpu_model_check kaon libkaon_cuda.so cuda_kernels_test cuda_sample_rows_test; do
  tests/gpu_model/collect_libs.sh "build-gpu/bin/$b" build-gpu/lib >/dev/null
done
tar -cJf build-gpu/lib.tar.xz -C build-gpu lib
du -sh build-gpu/bin build-gpu/lib build-gpu/lib.tar.xz
