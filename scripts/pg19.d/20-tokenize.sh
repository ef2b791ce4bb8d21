#!/usr/bin/env bash
# Stage 20: the 32k lossless SentencePiece vocabulary from a deterministic
# 1 GB sample of the training split (evenly spaced 64 KB windows of every
# book, by id), training-split word-type frequencies, and a round-trip check
# of every book of every split. Training is skipped when the model exists
# (delete $PG19_WORK/tokenizer/pg19-32k.model to retrain).
set -euo pipefail
W=$PG19_WORK
M=$W/tokenizer/pg19-32k.model
mkdir -p "$W/tokenizer"
if [ ! -f "$M" ]; then
  bin/tokenize train --corpus "$W/pg19" --split train --vocab-size 32000 \
    --sample-bytes 1000000000 -o "$M" 2>"$W/tokenizer/pg19-32k.train.log"
fi
sha256sum "$M"
[ -f "$W/tokenizer/train-word-freqs.tsv" ] ||
  bin/tokenize words --corpus "$W/pg19" --split train -o "$W/tokenizer/train-word-freqs.tsv"
for s in validation test train; do
  bin/tokenize verify --model "$M" --corpus "$W/pg19" --split "$s" | tee "$W/tokenizer/verify-$s.json"
done
