#!/usr/bin/env bash
# Prepares build-gpu/{bin,lib} on the development machine for one device call:
# the kernel check (GPU-check-only build) plus the full-model check from the
# normal build with the shared libraries it needs. Then, in one call:
#   run(command: "KAON_COMMIT=<hash> bash tests/gpu/check.sh build-gpu/bin",
#       carry: ["build-gpu/bin", "build-gpu/lib"], timeout_s: 420)
set -euo pipefail
cd "$(dirname "$0")/../.."
cmake -S . -B build-gpu -G Ninja -DKAON_GPU_CHECK_ONLY=ON -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-gpu
make build >/dev/null
cmake --build build --target kaon_gpu_model_check
cp build/bin/kaon_gpu_model_check build-gpu/bin/
tests/gpu_model/collect_libs.sh build-gpu/bin/kaon_gpu_model_check build-gpu/lib
du -sh build-gpu/bin build-gpu/lib
