#!/usr/bin/env bash
# Copies the shared libraries a binary needs beyond what a bare CUDA machine
# has (glibc, the driver and the CUDA toolkit) into DIR, for binaries built
# with an rpath of $ORIGIN/../lib.
#   tests/gpu_model/collect_libs.sh BINARY DIR
set -euo pipefail
bin=$1
dir=$2
mkdir -p "$dir"
ldd "$bin" | awk '$3 ~ /^\// {print $3}' | while read -r lib; do
  case "$(basename "$lib")" in
    libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|ld-linux*|libcuda*|libcublas*|libcudart*|libnv*) ;;
    *) cp -L "$lib" "$dir/" ;;
  esac
done
du -sh "$dir"
