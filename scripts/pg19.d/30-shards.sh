#!/usr/bin/env bash
# Stage 30: shards of every split (at most 1 GB each; word frequencies for
# validation and test), verified against the source books, and statistics
# for DATASHEET.md.
set -euo pipefail
W=$PG19_WORK
M=$W/tokenizer/pg19-32k.model
for s in validation test train; do
  freqs=()
  [ "$s" = train ] || freqs=(--word-freqs "$W/tokenizer/train-word-freqs.tsv")
  bin/shards build --model "$M" --corpus "$W/pg19" --split "$s" -o "$W/shards" "${freqs[@]}"
done
bin/shards verify --model "$M" --corpus "$W/pg19" "$W"/shards/*.pgs
bin/shards stats --dir "$W/shards" --metadata "$W/pg19/metadata.csv" > "$W/shards/stats.json"
cat "$W/shards/stats.json"
