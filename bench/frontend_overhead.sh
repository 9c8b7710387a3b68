#!/usr/bin/env bash
# Front-end overhead: the same load offline (`kaon throughput`) and through
# `kaon serve` + `kaon-bench` over HTTP (SSE streams), with the server's CPU
# time per thread group. Usage: bench/frontend_overhead.sh [MODEL_DIR] [CLIENTS] [PROMPTS]
# Default model: a ~76M-parameter random Llama (bench/configs/llama-70m.json),
# written to /tmp/kaon-llama70m on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/bin
model=${1:-/tmp/kaon-llama70m}
clients=${2:-64}
prompts=${3:-256}
in_len=128
out_len=128
if [ ! -f "$model/config.json" ]; then
  "$bin/kaon" random-model --config bench/configs/llama-70m.json --out "$model" --tokenizer-from models/stories260k >/dev/null
fi

# Sum of utime+stime (clock ticks) of the server's threads whose name starts with $2.
thread_ticks() {
  local pid=$1 prefix=$2 total=0
  for t in /proc/"$pid"/task/*; do
    if [[ "$(cat "$t/comm" 2>/dev/null)" == "$prefix"* ]]; then
      # utime and stime are fields 14 and 15; after the ")" that closes
      # comm, fields count from 3 (state).
      # shellcheck disable=SC2046
      set -- $(sed 's/.*) //' "$t/stat")
      total=$((total + ${12} + ${13}))
    fi
  done
  echo "$total"
}

echo "== offline: kaon throughput ($prompts prompts, $in_len in / $out_len out, concurrency $clients)"
"$bin/kaon" throughput "$model" --num-prompts "$prompts" --input-len $in_len --output-len $out_len \
  --max-concurrency "$clients" --json | tee /tmp/kaon-offline.json

log=$(mktemp)
"$bin/kaon" serve "$model" --port 0 --disable-log-requests >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 100); do grep -q "kaon: serving" "$log" && break; sleep 0.1; done
port=$(grep -o 'on http://[0-9.]*:[0-9]*' "$log" | sed 's/.*://')
http_before=$(thread_ticks $server kaon-http)
engine_before=$(thread_ticks $server kaon-engine)
worker_before=$(thread_ticks $server kaon-worker)
echo "== online: kaon-bench over HTTP, $clients concurrent streams"
"$bin/kaon-bench" --base-url "http://127.0.0.1:$port" --dataset-name random --random-input-len $in_len \
  --random-output-len $out_len --num-prompts "$prompts" --max-concurrency "$clients" --ignore-eos \
  --tokenizer "$model" --seed 1 --disable-tqdm --result-json /tmp/kaon-online.json | grep -E "throughput|Successful|Failed|duration"
http_ticks=$(( $(thread_ticks $server kaon-http) - http_before ))
engine_ticks=$(( $(thread_ticks $server kaon-engine) - engine_before ))
worker_ticks=$(( $(thread_ticks $server kaon-worker) - worker_before ))
hz=$(getconf CLK_TCK)
python3 - "$http_ticks" "$engine_ticks" "$worker_ticks" "$hz" <<'PY'
import json, sys
http, engine, worker, hz = (int(x) for x in sys.argv[1:])
off = json.load(open('/tmp/kaon-offline.json'))
on = json.load(open('/tmp/kaon-online.json'))
off_tps = off['output_tokens_per_second']
on_tps = on['output_throughput']
tokens = on['total_output_tokens']
print(f"offline output tok/s {off_tps:.1f}  online (HTTP) output tok/s {on_tps:.1f}  ratio {on_tps / off_tps:.3f}")
print(f"server CPU: http threads {http / hz:.2f} s, engine thread {engine / hz:.2f} s, workers {worker / hz:.2f} s")
print(f"http CPU per streamed token: {http / hz / tokens * 1e6:.1f} us ({tokens} tokens)")
PY
