#!/usr/bin/env bash
# Runs the numbered stage scripts of a pipeline (scripts/demo.d or scripts/pg19.d)
# in order. Each stage is a bash script that reads and extends the same work
# folder ($PG19_WORK: data/demo for the demo, data for pg19).
set -euo pipefail
dir=$1
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
case "$dir" in
  *demo.d) export PG19_WORK=${PG19_WORK:-$top/data/demo} ;;
  *)       export PG19_WORK=${PG19_WORK:-$top/data} ;;
esac
mkdir -p "$PG19_WORK"
for stage in "$dir"/[0-9][0-9]-*.sh; do
  [ -e "$stage" ] || continue
  echo "== stage $(basename "$stage" .sh)"
  bash "$stage"
done
echo "== done: results under $PG19_WORK"
