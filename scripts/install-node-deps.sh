#!/usr/bin/env bash
# Installs the pinned npm packages the tests use as references and real clients
# (tests/node/package.json + package-lock.json), only when they are missing or stale.
set -euo pipefail
cd "$(dirname "$0")/../tests/node"
if ! command -v npm >/dev/null 2>&1; then
  echo "install-node-deps: npm is required for the conformance tests" >&2
  exit 1
fi
stamp=node_modules/.kaon-lock-stamp
if [ -f "$stamp" ] && cmp -s package-lock.json "$stamp"; then
  exit 0
fi
npm ci --no-audit --no-fund --loglevel=error
cp package-lock.json "$stamp"
