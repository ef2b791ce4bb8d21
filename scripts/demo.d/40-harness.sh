#!/usr/bin/env bash
# Demo stage 40: evaluate the bundled trained Compressive Transformer
# (models/ct-small: trained on real PG-19 train books with its own 8,192-piece
# vocabulary, models/pg19-sample-8k.model; see models/README.md) on the
# demo's validation and test books, and print the results table. The shards of
# stage 30 use the demo's 2k vocabulary, so this stage builds evaluation
# shards of the same books with the model's vocabulary into
# $PG19_WORK/eval-shards. Writes results/<split>.json, results/<split>.nll and
# results/<split>.model (config and weights, for stage 50's re-run).
# Without the bundled weights it falls back to ct-tiny with random weights.
#
# The demo's books are generated word salad, on which a model trained on real
# books is (rightly) terrible. When real PG-19 books are at hand
# ($PG19_TEST_CORPUS/pg19-sample, as in CI), the validation split is instead
# the 9 real PG-19 validation books there, each scored on its first 4,096
# tokens (a labelled prefix, to keep the demo quick), with rare-word buckets
# from the real train books' word frequencies.
set -euo pipefail
W=$PG19_WORK
mkdir -p "$W/results"
model=models/ct-small.json weights=models/ct-small.safetensors vocab=models/pg19-sample-8k.model
if [ ! -f "$weights" ] || [ ! -f "$vocab" ]; then
  echo "40-harness: no bundled $weights: ct-tiny with random weights instead"
  model=ct-tiny weights= vocab=$W/tokenizer/demo-2k.model
fi
real=${PG19_TEST_CORPUS:+$PG19_TEST_CORPUS/pg19-sample}
rm -rf "$W/eval-shards"
n=0
for split in validation test; do
  corpus=$W/pg19 freqs=$W/tokenizer/train-word-freqs.tsv prefix=()
  if [ "$split" = validation ] && [ -n "$weights" ] && [ -n "$real" ] && [ -d "$real/validation" ]; then
    echo "-- 40-harness: validation = the real PG-19 validation books of $real (first 4096 tokens each)"
    corpus=$real freqs=$W/tokenizer/real-train-word-freqs.tsv prefix=(--max-tokens-per-book 4096)
    [ -f "$freqs" ] || bin/tokenize words --corpus "$real" --split train -o "$freqs"
  fi
  compgen -G "$corpus/$split/*.txt" > /dev/null || continue
  bin/shards build --model "$vocab" --corpus "$corpus" --split "$split" -o "$W/eval-shards" \
    --word-freqs "$freqs" > /dev/null
  echo "-- harness: $model on $split"
  if [ -n "$weights" ]; then
    bin/harness run --model "$model" --weights "$weights" --split "$split" \
      --shards "$W/eval-shards" --tokenizer-name pg19-sample-8k "${prefix[@]}" \
      --out "$W/results/$split.json" --nll-dump "$W/results/$split.nll"
    printf '%s\t%s\n' "$model" "$weights" > "$W/results/$split.model"
  else
    bin/harness run --model "$model" --random-init 1 --split "$split" --shards "$W/eval-shards" \
      --tokenizer-name demo-2k --out "$W/results/$split.json" --nll-dump "$W/results/$split.nll"
    rm -f "$W/results/$split.model"
  fi
  n=$((n + 1))
done
if [ "$n" = 0 ]; then
  echo "stage 40: no validation or test books under $W/pg19 (stages 10-20 write them)" >&2
  exit 1
fi
