#!/usr/bin/env bash
# Demo stage 30: shards of every split (word frequencies for the evaluation
# splits), verified against the source books, and their statistics.
set -euo pipefail
W=$PG19_WORK
M=$W/tokenizer/demo-2k.model
for s in train validation test; do
  freqs=()
  [ "$s" = train ] || freqs=(--word-freqs "$W/tokenizer/train-word-freqs.tsv")
  bin/shards build --model "$M" --corpus "$W/pg19" --split "$s" -o "$W/shards" "${freqs[@]}"
done
bin/shards verify --model "$M" --corpus "$W/pg19" "$W"/shards/*.pgs
meta=()
[ -f "$W/pg19/metadata.csv" ] && meta=(--metadata "$W/pg19/metadata.csv")
bin/shards stats --dir "$W/shards" "${meta[@]}" > "$W/shards/stats.json"
cat "$W/shards/stats.json"
