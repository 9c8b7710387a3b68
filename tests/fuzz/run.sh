#!/bin/bash
# Fuzzes every target in turn, one process at a time (the dev machine has two
# cores), each on a scratch copy of its checked-in corpus so the repo changes
# only when someone merges (tests/fuzz/README.md).
#
#   tests/fuzz/run.sh BIN_DIR [SECONDS_PER_TARGET] [TARGET...]
#
# Crashes land in $FUZZ_WORK/artifacts/NAME/; the exit status is non-zero if
# any target found one.
set -u
bin=${1:?usage: tests/fuzz/run.sh BIN_DIR [SECONDS] [TARGET...]}
secs=${2:-300}
shift $(( $# < 2 ? $# : 2 ))
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(http_body grpc_request tokenizer jinja model_files)
src=$(cd "$(dirname "$0")" && pwd)
work=${FUZZ_WORK:-/tmp/kaon-fuzz}
status=0
for name in "${targets[@]}"; do
  # Lengths and dictionaries as recorded in bench/RESULTS.md.
  case $name in
    http_body|grpc_request) opts=(-max_len=65536 -dict="$src/dict/json.dict") ;;
    jinja) opts=(-max_len=16384 -dict="$src/dict/jinja.dict") ;;
    model_files) opts=(-max_len=16384 -dict="$src/dict/json.dict") ;;
    tokenizer) opts=(-max_len=4096) ;;
    *) echo "unknown target $name" >&2; exit 2 ;;
  esac
  rm -rf "$work/corpus/$name" && mkdir -p "$work/corpus" "$work/artifacts/$name"
  cp -r "$src/corpus/$name" "$work/corpus/$name"
  echo "== $name: ${secs}s"
  "$bin/kaon_fuzz_$name" "${opts[@]}" -max_total_time="$secs" -timeout=10 -rss_limit_mb=4096 \
    -print_final_stats=1 -artifact_prefix="$work/artifacts/$name/" "$work/corpus/$name" || status=1
done
exit $status
