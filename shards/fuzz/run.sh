#!/usr/bin/env bash
# Builds the shard-reader libFuzzer target with clang (ASan+UBSan) and runs it
# on a copy of the seed corpus for $1 seconds (default 600).
#   bash shards/fuzz/run.sh 600
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-600}
out=${FUZZ_OUT:-build/fuzz}
mkdir -p "$out/corpus" "$out/artifacts"
clang -std=c11 -D_GNU_SOURCE -I. -g -O1 -fsanitize=fuzzer,address,undefined \
  -fno-sanitize-recover=undefined \
  shards/fuzz/fuzz_shard_reader.c shards/shard_reader.c shards/map_guard.c common/error.c \
  -lxxhash -o "$out/fuzz_shard_reader"
cp -n shards/fuzz/corpus/* "$out/corpus/" 2>/dev/null || true
"$out/fuzz_shard_reader" -max_total_time="$secs" -max_len=4096 -timeout=10 \
  -artifact_prefix="$out/artifacts/" "$out/corpus" shards/fuzz/corpus
