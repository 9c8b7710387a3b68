#!/usr/bin/env bash
# A/B offline throughput of two kaon builds in one run, on one machine, with the
# runs interleaved, so that both sides see the same machine state (other jobs,
# thermal and frequency drift) and a change is judged against its parent rather
# than against figures recorded on another day.
#
# Usage: bench/ab.sh [--base REV|BINARY] [--new REV|BINARY|worktree] [--rounds 3]
#                    [--model DIR] [--sampling builtin|greedy|t1]
#                    [--concurrency 1,16] [--num-prompts 16,32] [--output-len 64,128]
#                    [--input-len 128] [--cache DIR] [--jobs N] [-- extra kaon throughput flags]
#
# Run bench/ab.sh --help for the details. Exit status: 0 every concurrency
# PASSes, 3 some concurrency FAILs, 2 bad usage, 1 any other error.
set -euo pipefail

usage() {
  cat >&2 <<'EOF'
usage: bench/ab.sh [options] [-- extra kaon throughput flags]

Compares `kaon throughput ... --json` output tokens/s of two builds, alternating
base and new --rounds times per concurrency, and prints the medians, the ratio
new/base, and PASS (new is at most 5% slower than base, or faster) or FAIL.

  --base REV|BINARY     base build: a git revision, built out of tree and cached by
                        commit, or a path to a kaon binary (default: HEAD~1)
  --new REV|BINARY      new build, likewise (default: worktree = build/bin/kaon, the
                        working tree's current build, used as it is)
  --rounds N            base/new pairs per concurrency (default: 3); the order
                        alternates each round (base first, then new first)
  --model DIR           model directory (default: tiny-128k, a 2-layer random Llama
                        with the Llama 3.1 tokenizer, made by bench/make_tiny_128k.sh
                        in the cache directory)
  --sampling MODE       builtin (default): kaon throughput's own sampling, no flags
                        greedy: adds --temperature 0
                        t1: adds --temperature 1 --top-p 0.9
                        (greedy and t1 need both binaries to accept those flags)
  --concurrency LIST    comma-separated --max-concurrency values (default: 1,16)
  --num-prompts LIST    --num-prompts per concurrency, one value or one per entry
                        of --concurrency (default: 16,32)
  --output-len LIST     --output-len per concurrency, likewise (default: 64,128)
  --input-len N         --input-len for every run (default: 128)
  --cache DIR           where base builds, tiny-128k and run logs live
                        (default: build-ab/ in the repository, git-ignored)
  --jobs N              parallel compile jobs for out-of-tree builds (default: nproc)
  --                    everything after it goes to both binaries' `kaon throughput`
                        (e.g. -- --threads 2, or -- --device cuda)

Exit status: 0 all PASS, 3 some FAIL, 2 bad usage, 1 other errors.
EOF
  exit 2
}
die() { echo "ab.sh: $*" >&2; exit 1; }
bad_usage() { echo "ab.sh: $*" >&2; echo "run bench/ab.sh --help for usage" >&2; exit 2; }

repo=$(cd "$(dirname "$0")/.." && pwd)

base=HEAD~1
new=worktree
rounds=3
model=
sampling=builtin
concurrency=1,16
num_prompts=16,32
output_len=64,128
input_len=128
cache=$repo/build-ab
jobs=$(nproc)
extra=()

need_value() { [ $# -ge 2 ] && [ -n "$2" ] || bad_usage "$1 needs a value"; }
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage ;;
    --base) need_value "$@"; base=$2; shift 2 ;;
    --new) need_value "$@"; new=$2; shift 2 ;;
    --rounds) need_value "$@"; rounds=$2; shift 2 ;;
    --model) need_value "$@"; model=$2; shift 2 ;;
    --sampling) need_value "$@"; sampling=$2; shift 2 ;;
    --concurrency) need_value "$@"; concurrency=$2; shift 2 ;;
    --num-prompts) need_value "$@"; num_prompts=$2; shift 2 ;;
    --output-len) need_value "$@"; output_len=$2; shift 2 ;;
    --input-len) need_value "$@"; input_len=$2; shift 2 ;;
    --cache) need_value "$@"; cache=$2; shift 2 ;;
    --jobs) need_value "$@"; jobs=$2; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    *) bad_usage "unknown argument '$1'" ;;
  esac
done

is_count() { [[ "$1" =~ ^[1-9][0-9]*$ ]]; }
is_count "$rounds" || bad_usage "--rounds must be a positive integer, got '$rounds'"
is_count "$input_len" || bad_usage "--input-len must be a positive integer, got '$input_len'"
is_count "$jobs" || bad_usage "--jobs must be a positive integer, got '$jobs'"
case "$sampling" in
  builtin) sampling_flags=() ;;
  greedy) sampling_flags=(--temperature 0) ;;
  t1) sampling_flags=(--temperature 1 --top-p 0.9) ;;
  *) bad_usage "--sampling must be builtin, greedy or t1, got '$sampling'" ;;
esac

# Parallel lists: --num-prompts and --output-len give one value for all
# concurrencies or one per concurrency.
IFS=, read -r -a conc_list <<<"$concurrency"
IFS=, read -r -a prompts_list <<<"$num_prompts"
IFS=, read -r -a outlen_list <<<"$output_len"
[ ${#conc_list[@]} -gt 0 ] || bad_usage "--concurrency is empty"
expand_list() {  # NAME VALUES...: prints one value per concurrency
  local name=$1; shift
  local values=("$@") i
  if [ ${#values[@]} -ne 1 ] && [ ${#values[@]} -ne ${#conc_list[@]} ]; then
    bad_usage "$name has ${#values[@]} values; give 1 or ${#conc_list[@]} (one per --concurrency entry)"
  fi
  for i in "${!conc_list[@]}"; do
    local v=${values[0]}
    [ ${#values[@]} -eq 1 ] || v=${values[$i]}
    is_count "$v" || bad_usage "$name values must be positive integers, got '$v'"
    echo "$v"
  done
}
for c in "${conc_list[@]}"; do is_count "$c" || bad_usage "--concurrency values must be positive integers, got '$c'"; done
mapfile -t prompts_list < <(expand_list --num-prompts "${prompts_list[@]}")
mapfile -t outlen_list < <(expand_list --output-len "${outlen_list[@]}")
# mapfile of a failed process substitution yields an empty list; catch it here.
[ ${#prompts_list[@]} -eq ${#conc_list[@]} ] && [ ${#outlen_list[@]} -eq ${#conc_list[@]} ] || exit 2

mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
cd "$repo"

# Out-of-tree builds need CUDA only when a run may use the GPU: the plugin's
# nvcc compiles are the slowest part of a build and a CPU comparison never
# loads it.
want_cuda=OFF
for ((i = 0; i < ${#extra[@]}; i++)); do
  case "${extra[$i]}" in
    --device=cuda|--device=auto) want_cuda=ON ;;
    --device) case "${extra[$((i + 1))]:-}" in cuda|auto) want_cuda=ON ;; esac ;;
  esac
done

# Sets resolved_bin to a kaon binary for SPEC (a binary, "worktree", or a
# revision, built out of tree on first use) and resolved_desc to a line for
# the report.
resolve_build() {
  local spec=$1 side=$2
  if [ "$spec" = worktree ]; then
    resolved_bin=$repo/build/bin/kaon
    [ -x "$resolved_bin" ] || die "$side: $resolved_bin is missing; build the working tree first (make build)"
    local state=clean
    [ -z "$(git status --porcelain 2>/dev/null)" ] || state="with uncommitted changes"
    resolved_desc="working tree build $resolved_bin (HEAD $(git rev-parse --short HEAD), $state; built $(date -r "$resolved_bin" '+%F %T'))"
    return
  fi
  if [ -f "$spec" ] && [ -x "$spec" ]; then
    resolved_bin=$(realpath "$spec")
    resolved_desc="binary $resolved_bin"
    return
  fi
  local hash
  hash=$(git rev-parse --verify --quiet "$spec^{commit}") ||
    die "$side: '$spec' is neither a git revision nor an executable kaon binary"
  local cuda_tag=cpu
  [ "$want_cuda" = OFF ] || cuda_tag=cuda
  local dir=$cache/$hash-$cuda_tag
  resolved_bin=$dir/build/bin/kaon
  resolved_desc="revision $spec = ${hash:0:12}, built out of tree at $resolved_bin (CUDA $want_cuda)"
  [ -f "$dir/.built" ] && [ -x "$resolved_bin" ] && return
  echo "ab.sh: building $side $spec (${hash:0:12}, CUDA $want_cuda) in $dir; log: $dir/build.log" >&2
  # git archive gives exactly the committed tree and changes nothing in the
  # repository (no checkout, stash or worktree).
  if [ ! -f "$dir/src/.complete" ]; then
    rm -rf "$dir/src"
    mkdir -p "$dir/src"
    git archive --format=tar "$hash" | tar -x -C "$dir/src" || die "$side: git archive $hash failed"
    touch "$dir/src/.complete"
  fi
  # CCACHE_BASEDIR makes ccache hash paths relative to the build directory;
  # every revision has the same src/ and build/ layout under the cache, so
  # builds of different revisions share the objects of unchanged files.
  local start=$SECONDS
  if ! {
    CCACHE_BASEDIR=$cache cmake -S "$dir/src" -B "$dir/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DKAON_BUILD_TESTS=OFF -DKAON_WITH_CUDA="$want_cuda" &&
      CCACHE_BASEDIR=$cache cmake --build "$dir/build" --target kaon -j "$jobs"
  } >"$dir/build.log" 2>&1; then
    tail -n 30 "$dir/build.log" >&2
    die "$side: building $spec failed (full log: $dir/build.log)"
  fi
  [ -x "$resolved_bin" ] || die "$side: the build of $spec finished but $resolved_bin is missing"
  touch "$dir/.built"
  echo "ab.sh: built $side in $((SECONDS - start)) s" >&2
}

resolve_build "$base" base
base_bin=$resolved_bin base_desc=$resolved_desc
resolve_build "$new" new
new_bin=$resolved_bin new_desc=$resolved_desc

# Sampling flags are checked up front: `kaon throughput` with an unknown flag
# exits 2 on the first run, which would otherwise waste the base build's wait.
if [ ${#sampling_flags[@]} -gt 0 ]; then
  for pair in "base:$base_bin" "new:$new_bin"; do
    side=${pair%%:*} bin=${pair#*:}
    help=$("$bin" throughput --help 2>&1 || true)
    for flag in "${sampling_flags[@]}"; do
      [[ "$flag" == --* ]] || continue
      grep -q -- "$flag " <<<"$help" ||
        die "--sampling $sampling needs \`kaon throughput $flag\`, which the $side binary ($bin) does not accept"
    done
  done
fi

if [ -z "$model" ]; then
  # Keyed by the config's hash, so editing tiny-128k.json makes a fresh model.
  cfg_hash=$(sha256sum bench/configs/tiny-128k.json | cut -c1-12)
  model=$cache/models/tiny-128k-$cfg_hash
  if [ ! -f "$model/model.safetensors" ]; then
    echo "ab.sh: making the tiny-128k model in $model" >&2
    KAON=$new_bin bench/make_tiny_128k.sh "$model" || die "bench/make_tiny_128k.sh failed"
  fi
fi
[ -f "$model/config.json" ] || die "--model $model has no config.json"

runs=$cache/runs/$(date +%Y%m%d-%H%M%S)-$$
mkdir -p "$runs"

echo "== kaon A/B throughput, $(date '+%F %T')"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "base: $base_desc"
echo "new:  $new_desc"
echo "model: $model"
echo "sampling: $sampling${sampling_flags[*]:+ (${sampling_flags[*]})}; extra flags: ${extra[*]:-none}; rounds: $rounds; logs: $runs"

# One run: prints output tok/s, keeps the JSON and stderr in $runs.
run_one() {
  local side=$1 bin=$2 c=$3 n=$4 out_len=$5 round=$6
  local tag=$runs/$side-c$c-r$round
  local cmd=("$bin" throughput "$model" --num-prompts "$n" --input-len "$input_len" --output-len "$out_len"
    --max-concurrency "$c" --json "${sampling_flags[@]}" "${extra[@]}")
  printf '%q ' "${cmd[@]}" >"$tag.cmd"
  if ! "${cmd[@]}" >"$tag.json" 2>"$tag.err"; then
    cat "$tag.err" >&2
    die "$side run failed: $(cat "$tag.cmd")"
  fi
  jq -e '.output_tokens_per_second' "$tag.json" || die "$side run printed no output_tokens_per_second: $tag.json"
}

results=$runs/results.tsv
: >"$results"
for i in "${!conc_list[@]}"; do
  c=${conc_list[$i]} n=${prompts_list[$i]} out_len=${outlen_list[$i]}
  echo "-- concurrency $c: $n prompts, $input_len in / $out_len out"
  for ((r = 1; r <= rounds; r++)); do
    # ABBA-style ordering: a slow drift in machine state then hits both sides
    # alike instead of always favouring whichever runs first.
    if ((r % 2 == 1)); then order=(base new); else order=(new base); fi
    line="   round $r:"
    for side in "${order[@]}"; do
      if [ "$side" = base ]; then bin=$base_bin; else bin=$new_bin; fi
      tps=$(run_one "$side" "$bin" "$c" "$n" "$out_len" "$r")
      printf '%s\t%s\t%s\n' "$c" "$side" "$tps" >>"$results"
      line+=$(printf ' %s %.1f' "$side" "$tps")
    done
    echo "$line output tok/s"
  done
done

python3 - "$results" <<'PY'
import statistics, sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().splitlines() if l]
by = {}
for c, side, tps in rows:
    by.setdefault(int(c), {"base": [], "new": []})[side].append(float(tps))
print()
print("| concurrency | base median tok/s | new median tok/s | new/base | verdict (new >= 0.95 x base) |")
print("| ---: | ---: | ---: | ---: | --- |")
failed = False
for c in sorted(by):
    b = statistics.median(by[c]["base"])
    n = statistics.median(by[c]["new"])
    ratio = n / b
    ok = ratio >= 0.95
    failed |= not ok
    spread = lambda v: f"{min(v):.1f}-{max(v):.1f}"
    print(f"| {c} | {b:.1f} ({spread(by[c]['base'])}) | {n:.1f} ({spread(by[c]['new'])}) | {ratio:.3f} | {'PASS' if ok else 'FAIL'} |")
print()
print("FAIL: new is more than 5% slower than base" if failed else "PASS: new is within 5% of base or faster")
sys.exit(3 if failed else 0)
PY
