#!/usr/bin/env bash
# Demo stage 20: a small lossless SentencePiece vocabulary (2,000 pieces, so
# it trains in about a second), training-split word-type frequencies, and a
# round-trip check of every split. Uses $PG19_WORK/pg19 from stage 10; if that
# stage is absent, writes a few synthetic PG-19-style books first.
set -euo pipefail
W=$PG19_WORK
if [ ! -d "$W/pg19/train" ]; then
  echo "20-tokenize: no $W/pg19 (stage 10 absent): writing synthetic demo books"
  /usr/bin/python3 tokenize/gen_demo_books.py "$W/pg19"
fi
mkdir -p "$W/tokenizer"
bin/tokenize train --corpus "$W/pg19" --split train --vocab-size 2000 \
  -o "$W/tokenizer/demo-2k.model" 2>"$W/tokenizer/demo-2k.train.log"
bin/tokenize words --corpus "$W/pg19" --split train -o "$W/tokenizer/train-word-freqs.tsv"
for s in train validation test; do
  bin/tokenize verify --model "$W/tokenizer/demo-2k.model" --corpus "$W/pg19" --split "$s" --check-spm
done
