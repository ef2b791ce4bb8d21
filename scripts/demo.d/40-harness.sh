#!/usr/bin/env bash
# Demo stage 40: evaluate a tiny Compressive Transformer (random weights:
# the demo has no trained model) on the demo shards of stage 30 and print
# the results table; writes results/<split>.json and results/<split>.nll.
set -euo pipefail
W=$PG19_WORK
mkdir -p "$W/results"
n=0
for split in validation test; do
  compgen -G "$W/shards/$split-[0-9]*.pgs" > /dev/null || continue
  echo "-- harness: ct-tiny on $split"
  bin/harness run --model ct-tiny --random-init 1 --split "$split" --shards "$W/shards" \
    --tokenizer-name demo-2k --out "$W/results/$split.json" --nll-dump "$W/results/$split.nll"
  n=$((n + 1))
done
if [ "$n" = 0 ]; then
  echo "stage 40: no validation or test shards under $W/shards (stage 30 builds them)" >&2
  exit 1
fi
