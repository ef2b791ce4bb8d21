#!/usr/bin/env bash
# `make bench` for the harness: the CPU forward of a mid-size Compressive
# Transformer (models/bench-mid.json, random weights) against
#   1. OpenBLAS sgemm peak measured in the same run (inside `harness bench`),
#   2. the same binary on OpenBLAS's Haswell kernels (what OPENBLAS_CORETYPE=
#      Haswell, set on some AMD hosts, gives) instead of the default it picks,
#   3. the same model in PyTorch CPU on the same weights (harness/bench_torch.py),
#      when Debian's python3-torch is installed.
# PG19_BENCH_SECONDS (default 20) sets the timed seconds of each run.
set -euo pipefail
cd "$(dirname "$0")/.."
cfg=models/bench-mid.json
secs=${PG19_BENCH_SECONDS:-20}
threads=$(nproc)
rate() { sed -n 's/.* \([0-9.]*\) tokens\/s.*/\1/p' | head -1; }

main=$(bin/harness bench --model "$cfg" --seconds "$secs" --threads "$threads")
echo "$main"
tps=$(echo "$main" | grep '^harness forward' | rate)

hw=$(PG19_KEEP_OPENBLAS_CORETYPE=1 OPENBLAS_CORETYPE=Haswell \
     bin/harness bench --model "$cfg" --seconds "$secs" --threads "$threads")
echo "$hw" | sed 's/^/[Haswell kernels] /'
hw_tps=$(echo "$hw" | grep '^harness forward' | rate)
awk -v a="$tps" -v b="$hw_tps" 'BEGIN { printf "ratio default kernels / Haswell kernels: %.2f\n", a / b }'

if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  bin/harness init --model "$cfg" --random-init 1 --out "$tmp/w.safetensors"
  # PyTorch's Debian build uses OpenBLAS too: give it the same kernels as the harness
  core=$(echo "$main" | sed -n 's/.*OpenBLAS core \([A-Za-z0-9]*\).*/\1/p')
  pt=$(OPENBLAS_CORETYPE=$core /usr/bin/python3 harness/bench_torch.py --config "$cfg" \
       --weights "$tmp/w.safetensors" --harness bin/harness --seconds "$secs" --threads "$threads")
  echo "$pt"
  pt_tps=$(echo "$pt" | grep '^pytorch .* forward' | rate)
  awk -v a="$tps" -v b="$pt_tps" 'BEGIN { printf "ratio harness / pytorch: %.2f\n", a / b }'
else
  echo "pytorch: python3-torch is not installed; skipped (apt-get install python3-torch)"
fi
