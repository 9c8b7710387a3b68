#!/usr/bin/env python3
"""Part 3 of the GPU check: `kaon serve` on a device, driven over HTTP.

Starts the real server on a free port, sends every golden prompt of the
bundled model (greedy, 128 tokens, ignore_eos) streaming and not, and checks
the text against the upstream reference; then checks /metrics and that
SIGTERM exits 0. Standard library only (the GPU machine has python3 but no
curl guarantee and no network).

  python3 tests/gpu/serve_check.py BIN_DIR/kaon [--device cuda] [--dtype float32]

Runs on the development machine too (--device cpu), which is how it is
tested before a device call.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join(ROOT, "models", "stories260k")


def post(port, path, body, stream=False):
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        raw = r.read().decode()
    if not stream:
        return json.loads(raw)
    text = ""
    for line in raw.splitlines():
        if line.startswith("data: ") and line != "data: [DONE]":
            chunk = json.loads(line[6:])
            for c in chunk.get("choices", []):
                text += c.get("text", "")
    return text


def metric(port, name):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kaon")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="float32")
    args = ap.parse_args()

    golden = json.load(open(os.path.join(MODEL, "golden.json")))["cases"]
    cmd = [args.kaon, "serve", MODEL, "--port", "0", "--device", args.device, "--dtype", args.dtype,
           "--disable-log-requests"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    port = None
    deadline = time.time() + 60
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        print("  " + line.rstrip())
        if line.startswith("kaon: serving"):
            port = int(line.rsplit(":", 1)[1])
            break
    if port is None:
        proc.kill()
        print("FAIL serve: no 'kaon: serving' line; stderr:", proc.stderr.read()[-2000:])
        return 1

    failures = 0
    t0 = time.time()
    for i, case in enumerate(golden):
        body = {"prompt": case["prompt"], "max_tokens": 128, "temperature": 0, "ignore_eos": True}
        whole = post(port, "/v1/completions", body)["choices"][0]["text"]
        streamed = post(port, "/v1/completions", dict(body, stream=True), stream=True)
        for kind, text in (("non-streaming", whole), ("streaming", streamed)):
            ok = text == case["greedy_text"]
            failures += not ok
            print(f"  [{'ok' if ok else 'FAIL'}] golden case {i} {kind}")
            if not ok:
                print(f"      got      {text[:120]!r}\n      expected {case['greedy_text'][:120]!r}")
    elapsed = time.time() - t0
    generated = metric(port, "kaon:generation_tokens_total")
    running = metric(port, "kaon:num_requests_running")
    expected_tokens = 2 * 128 * len(golden)
    if generated != expected_tokens or running != 0:
        failures += 1
        print(f"  [FAIL] /metrics: generation_tokens_total {generated} (expected {expected_tokens}), running {running}")
    else:
        print(f"  [ok] /metrics: {generated:.0f} tokens counted, nothing running")
    print(f"  {2 * len(golden)} requests in {elapsed:.2f} s")

    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = "timeout"
    if rc != 0:
        failures += 1
        print(f"  [FAIL] SIGTERM: exit {rc}")
    print(f"serve check ({args.device}, {args.dtype}): {'PASS' if failures == 0 else f'{failures} FAILED'}")
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
