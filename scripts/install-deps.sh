#!/usr/bin/env bash
# Installs the Debian packages kaon builds against, only when one is missing.
# The list is the one in the README ("Dependencies"); keep them in step.
set -euo pipefail

PACKAGES=(
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev
  nlohmann-json3-dev libboost-dev libpcre2-dev libopenblas-dev libxxhash-dev
  libgtest-dev libgmock-dev libbenchmark-dev libcli11-dev ninja-build ccache pkg-config cmake g++
  python3-jinja2
)
# `make fuzz` (scripts/install-deps.sh fuzz) also needs Clang and its libFuzzer
# runtime; CI replays the corpora with g++ and does not install them.
if [ "${1:-}" = "fuzz" ]; then PACKAGES+=(clang-14 libclang-rt-14-dev); fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
