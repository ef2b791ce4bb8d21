#!/usr/bin/env bash
# Stage 40: check that the evaluation shards are in place and say how to
# evaluate. Running ct36 on the whole test split on CPU takes days, so this
# stage does not start it.
set -euo pipefail
W=$PG19_WORK
for split in validation test; do
  if ! compgen -G "$W/shards/$split-[0-9]*.pgs" > /dev/null; then
    echo "stage 40: no $split shards under $W/shards (stage 30 builds them)" >&2
    exit 1
  fi
done
# Are they PG-19's own books, byte for byte? Only then does the harness report
# the official split (PG-19's normaliser); a fetch with --limit gives a subset.
for split in validation test; do
  if ! bin/shards official --dir "$W/shards" --split "$split"; then
    echo "stage 40: note: the $split shards are not PG-19's official $split split; results" \
         "on them are reported with the exact word count only" >&2
  fi
done
# A quick look at the model configs and that the shards open and fit them.
bin/harness info --model ct36
bin/harness run --model ct-tiny --random-init 1 --split validation --shards "$W/shards" \
  --max-books 1 --max-tokens-per-book 64 --tokenizer-name pg19-32k > /dev/null
cat <<MSG
Shards are ready for the harness. To evaluate (weights from your own training run,
tensor names in models/README.md; or --random-init SEED for throughput only):
  bin/harness run --model ct36 --weights ct36.safetensors --split test --shards $W/shards \\
      --tokenizer-name pg19-32k --out $W/results/test.json --nll-dump $W/results/test.nll
MSG
