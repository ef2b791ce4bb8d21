#!/usr/bin/env bash
# Stage 50 (demo): put the harness's results (stage 40) on a demo copy of the
# leaderboard, check them against the per-token NLL dump and the shards when
# both exist (the entry becomes "consistent"; the demo's model is random-init,
# which has no weights to re-run, so it cannot become "verified"), and render
# the site to $PG19_WORK/site/.
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
for r in "${results[@]}"; do
  split=$(basename "$r" .json)
  out=$("$lb" submit "$r" --entries "$entries" --source "make demo: $(basename "$r")")
  echo "$out"
  entry=${out#accepted: }
  nll=$PG19_WORK/results/$split.nll
  shards=("$PG19_WORK"/shards/"$split"-*.pgs)
  if [ -f "$nll" ] && [ ${#shards[@]} -gt 0 ]; then
    "$lb" verify "$entry" --nll "$nll" --shards "$PG19_WORK/shards"
  else
    echo "50-leaderboard: not verifying $r: needs $nll and $PG19_WORK/shards/$split-*.pgs"
  fi
done
"$lb" render -o "$site" --entries "$entries"
