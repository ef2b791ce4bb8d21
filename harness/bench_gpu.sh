#!/usr/bin/env bash
# `make bench` entry for the CUDA backend: the benchmark part of
# scripts/gpu-check.sh (ct36 and txl36 over a synthetic split shaped like the
# PG-19 test split; harness vs PyTorch eager and torch.compile). Without a
# usable GPU it says so and succeeds: the CPU benchmarks are harness/bench.py
# and harness/bench_train.py.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v nvidia-smi > /dev/null || ! nvidia-smi -L > /dev/null 2>&1; then
  echo "gpu bench: skipped (no NVIDIA GPU: nvidia-smi -L fails)"
  exit 0
fi
exec scripts/gpu-check.sh bench
