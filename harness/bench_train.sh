#!/usr/bin/env bash
# `make bench` for harness training: the CPU training step (forward with
# saved activations, backward, attention-reconstruction loss, Adam) of
# models/ct-small.json on random tokens, `harness train-bench`, against
#   1. the OpenBLAS sgemm rate of the model's forward products, replayed by
#      `harness bench` (its "sgemm replay" line),
#   2. a PyTorch CPU training step of the same model, same threads and batch
#      (harness/bench_torch_train.py), when Debian's python3-torch is installed.
# PG19_BENCH_SECONDS (default 20) sets the timed seconds of each run.
set -euo pipefail
cd "$(dirname "$0")/.."
cfg=models/ct-small.json
secs=${PG19_BENCH_SECONDS:-20}
threads=$(nproc)
batch=4
rate() { sed -n 's/.* \([0-9.]*\) tokens\/s.*/\1/p' | head -1; }
gflops() { sed -n 's/.* \([0-9.]*\) GFLOP\/s.*/\1/p' | head -1; }

c=$(PG19_BENCH_SECONDS=$secs bin/harness train-bench --model "$cfg" --batch "$batch" \
    --threads "$threads")
echo "$c"
tps=$(echo "$c" | rate)
gf=$(echo "$c" | gflops)
# the sgemm reference: `harness bench`'s replay of the same model's forward
# products (harness/bench.c; median of its alternating rounds)
peak=$(bin/harness bench --model "$cfg" --seconds 1 --threads "$threads" --batch "$batch" |
       sed -n 's/^sgemm replay.*: median \([0-9.]*\) GFLOP\/s.*/\1/p')
echo "baseline: OpenBLAS sgemm replay of $cfg's forward products, $threads threads: $peak GFLOP/s"
awk -v a="$gf" -v b="$peak" 'BEGIN { printf "ratio harness train / sgemm peak: %.2f\n", a / b }'

if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  bin/harness init --model "$cfg" --random-init 1 --out "$tmp/w.safetensors"
  core=$(bin/harness bench --model models/ct-tiny.json --seconds 0.1 --threads 1 |
         sed -n 's/.*OpenBLAS core \([A-Za-z0-9]*\).*/\1/p')
  pt=$(OPENBLAS_CORETYPE=$core /usr/bin/python3 harness/bench_torch_train.py --config "$cfg" \
       --weights "$tmp/w.safetensors" --batch "$batch" --seconds "$secs" --threads "$threads")
  echo "$pt"
  pt_tps=$(echo "$pt" | rate)
  awk -v a="$tps" -v b="$pt_tps" 'BEGIN { printf "ratio harness train / pytorch train: %.2f\n", a / b }'
else
  echo "pytorch: python3-torch is not installed; skipped (apt-get install python3-torch)"
fi
