#!/usr/bin/env bash
# Stage 50 (demo): put the harness's results (stage 40) on a demo copy of the
# leaderboard, check them against the per-token NLL dump and the shards when
# both exist (the entry becomes "consistent"), re-run the model when stage 40
# names its weights in results/<split>.model (the entry becomes "verified";
# a random-init model has no weights to re-run and stays "consistent"), and
# render the site to $PG19_WORK/site/. Shards: $PG19_WORK/eval-shards (stage
# 40's, in the model's vocabulary) when present, else $PG19_WORK/shards.
#
# The committed leaderboard/entries/ is never modified: the demo works on
# $PG19_WORK/leaderboard/entries, a fresh copy of the seed entries each run.
set -euo pipefail
: "${PG19_WORK:?PG19_WORK must be set (scripts/run-stages.sh sets it)}"
top=$(cd "$(dirname "$0")/../.." && pwd)
lb=${PG19_BIN:-$top/bin}/leaderboard
entries=$PG19_WORK/leaderboard/entries
site=$PG19_WORK/site

rm -rf "$entries"
mkdir -p "$entries"
cp "$top"/leaderboard/entries/*.json "$entries"/

shopt -s nullglob
results=("$PG19_WORK"/results/*.json)
if [ ${#results[@]} -eq 0 ]; then
  echo "50-leaderboard: no results in $PG19_WORK/results (stage 40, harness, has not run on this branch); rendering the seed entries only"
fi
sdir=$PG19_WORK/shards
[ -d "$PG19_WORK/eval-shards" ] && sdir=$PG19_WORK/eval-shards
for r in "${results[@]}"; do
  split=$(basename "$r" .json)
  out=$("$lb" submit "$r" --entries "$entries" --source "make demo: $(basename "$r")")
  echo "$out"
  entry=${out#accepted: }
  nll=$PG19_WORK/results/$split.nll
  shards=("$sdir"/"$split"-*.pgs)
  rerun=()
  if [ -f "$PG19_WORK/results/$split.model" ]; then
    IFS=$'\t' read -r model weights < "$PG19_WORK/results/$split.model"
    rerun=(--weights "$weights" --model "$model")
  fi
  if [ -f "$nll" ] && [ ${#shards[@]} -gt 0 ]; then
    "$lb" verify "$entry" --nll "$nll" --shards "$sdir" "${rerun[@]}"
  else
    echo "50-leaderboard: not verifying $r: needs $nll and $sdir/$split-*.pgs"
  fi
done
"$lb" render -o "$site" --entries "$entries" --figures "$top/models/cards"
