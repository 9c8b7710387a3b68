#!/usr/bin/env bash
# Checks that what ships is hardened: PIE, stack protector, FORTIFY, full
# RELRO with BIND_NOW (Debian's hardening-check, package devscripts; installed
# here when missing). Usage: scripts/hardening-check.sh [BUILD_DIR]
set -euo pipefail
BUILD_DIR="${1:-build}"
if ! command -v hardening-check >/dev/null 2>&1; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends devscripts >/dev/null
fi
binaries=("$BUILD_DIR/bin/kaon")
# The CUDA plugin exists only where nvcc was found.
if [ -e "$BUILD_DIR/bin/libkaon_cuda.so" ]; then binaries+=("$BUILD_DIR/bin/libkaon_cuda.so"); fi
# Control-flow protection (CET) is not asked for: nvcc's device-link stubs
# and the static CUDA runtime are not built with it.
hardening-check --nocfprotection "${binaries[@]}"
