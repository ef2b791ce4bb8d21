#!/usr/bin/env bash
# scripts/gpu-check.sh - everything the GPU path needs checked on a GPU
# machine, in one run of under about 6 minutes (H200), with a short report:
#
#   1. build   make bin/harness bin/synth-shards and the harness unit tests
#              (the build says whether the CUDA backend was built)
#   2. tests   the normal suite's GPU, backend and MPI tests
#              (tests/harness/test_gpu.py, test_backend, test_mpi_run.py)
#   3. parity  fp32 logits vs the CPU forward within 1e-4 relative: txl-tiny,
#              ct-tiny with each compression function, bench-mid, over token
#              sequences that compress many times; bf16 per-token NLL within
#              0.1 nats and word perplexity within 0.5% of the CPU's (ct-tiny
#              and bench-mid random init on a synthetic split)
#   4. mpi     1 rank vs N ranks on the GPU: identical NLL dump (skipped
#              without mpirun)
#   5. bench   ct36 and txl36 (random init) over a synthetic split shaped like
#              the PG-19 test split (100 books, per-book lengths from
#              pg19_files_derived.tsv bytes / 3.9): wall time, tokens/s,
#              TFLOP/s and the fraction of 790 TFLOP/s (dense bf16); `harness
#              bench` steady state vs PyTorch eager and torch.compile (bf16,
#              same weights and batch; harness/bench_torch_gpu.py)
#
# Usage: scripts/gpu-check.sh [PARTS]   PARTS: comma list of the above
#        (default build,tests,parity,mpi,bench). The report goes to
#        $OUT/gpu-check-report.txt ($OUT defaults to ./gpu-check-out), the
#        full log beside it. Exit status 0 only when every part that ran passed.
# Environment: PG19_GPU_CHECK_DEVICE (default cuda), PG19_BENCH_TIMEOUT
# (seconds per whole-split run, default 150), PG19_TEST_CORPUS or
# PG19_LENGTHS_TSV (the book lengths; without them: 100 books of about
# 105,869 tokens), PG19_CPU_ONLY=1 (exercise the script on a machine without
# a GPU: --device cpu, small sizes; the numbers mean nothing).
set -uo pipefail
cd "$(dirname "$0")/.."
TOP=$PWD
PARTS=${1:-build,tests,parity,mpi,bench}
OUT=${OUT:-$TOP/gpu-check-out}
mkdir -p "$OUT"
REPORT=$OUT/gpu-check-report.txt
LOG=$OUT/gpu-check-log.txt
: > "$REPORT"
: > "$LOG"
DEV=${PG19_GPU_CHECK_DEVICE:-cuda}
CPU_ONLY=${PG19_CPU_ONLY:-0}
[ "$CPU_ONLY" = 1 ] && DEV=cpu
BENCH_TIMEOUT=${PG19_BENCH_TIMEOUT:-150}
PEAK_TFLOPS=790
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
FAILED=0
T_START=$(date +%s)

say() { echo "$*" | tee -a "$REPORT"; }
logged() { "$@" >> "$LOG" 2>&1; }
part() { [[ ",$PARTS," == *",$1,"* ]]; }
fail() { say "FAILED: $*"; FAILED=1; }
elapsed() { echo $(( $(date +%s) - T_START )); }

# a python3 with numpy (tests) and one with torch (bench), if any
PY=""
for p in python3 /usr/bin/python3 /opt/torch/.venv/bin/python3; do
  if command -v "$p" > /dev/null && "$p" -c 'import numpy' 2> /dev/null; then PY=$p; break; fi
done
PYT=""
for p in python3 /opt/torch/.venv/bin/python3 /usr/bin/python3; do
  if command -v "$p" > /dev/null && "$p" -c 'import torch, numpy' 2> /dev/null; then PYT=$p; break; fi
done

say "gpu-check $(date -u +%FT%TZ) on $(hostname), parts: $PARTS, device: $DEV"
if command -v nvidia-smi > /dev/null; then
  say "gpu: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -1)"
else
  say "gpu: nvidia-smi not found"
fi
say "nvcc: $(command -v nvcc > /dev/null && nvcc --version | tail -1 || echo none); mpirun: $(command -v mpirun || echo none); python (numpy): ${PY:-none}; python (torch): ${PYT:-none}"

# ---------------------------------------------------------------- 1. build
if part build; then
  if logged make -j"$(nproc)" bin/harness bin/synth-shards build/tests/harness_backend_test; then
    say "build: ok ($(grep -m1 '^harness: build' "$LOG" || echo 'see log'))"
  else
    fail "build (see $LOG; missing system packages? harness/deps.txt lists them)"
    say "report: $REPORT"
    exit 1
  fi
fi
[ -x bin/harness ] || { fail "bin/harness missing"; exit 1; }

# ---------------------------------------------------------------- 2. tests
if part tests; then
  if [ -z "$PY" ]; then
    fail "tests: no python3 with numpy"
  else
    for t in tests/harness/test_gpu.py tests/harness/test_mpi_run.py; do
      res=$(PG19_BIN=$TOP/bin PG19_TEST_BIN=$TOP/build/tests "$PY" tests/tap.py "$t" 2>&1)
      echo "$res" >> "$LOG"
      nok=$(echo "$res" | grep -c '^not ok')
      nskip=$(echo "$res" | grep -c '# SKIP')
      npass=$(echo "$res" | grep '^ok' | grep -vc '# SKIP')
      say "tests $t: $npass passed, $nok failed, $nskip skipped$(echo "$res" | grep -m1 '# SKIP' | sed 's/.*# SKIP/ (/; s/$/)/')"
      [ "$nok" = 0 ] || fail "tests $t"
      # on a GPU machine a skipped GPU test is a failure: the GPU was not usable
      if [ "$CPU_ONLY" != 1 ] && [ "$t" = tests/harness/test_gpu.py ] && [ "$nskip" != 0 ]; then
        fail "tests $t skipped on a GPU machine"
      fi
    done
    if build/tests/harness_backend_test >> "$LOG" 2>&1; then say "tests harness_backend_test: ok"
    else fail "tests harness_backend_test"; fi
  fi
fi

# ---------------------------------------------------------------- 3. parity
if part parity && [ -n "$PY" ]; then
  ntok=2000; nbench=2048
  [ "$CPU_ONLY" = 1 ] && ntok=200 && nbench=300
  out=$("$PY" tests/harness/gpu_parity.py logits --harness bin/harness --device "$DEV" \
        --precision fp32 --tokens "$ntok" --tol 1e-4 2>&1)
  echo "$out" | tee -a "$LOG" | grep -v '^parity:' | sed 's/^/parity /' | tee -a "$REPORT"
  echo "$out" | grep -q '^parity: ok' || fail "fp32 logits parity"
  out=$("$PY" tests/harness/gpu_parity.py logits --harness bin/harness --device "$DEV" \
        --precision fp32 --tokens "$nbench" --models bench-mid --tol 1e-4 2>&1)
  echo "$out" | tee -a "$LOG" | grep -v '^parity:' | sed 's/^/parity /' | tee -a "$REPORT"
  echo "$out" | grep -q '^parity: ok' || fail "fp32 logits parity (bench-mid)"
  # bf16 NLL and word perplexity on a synthetic split
  per=3000; [ "$CPU_ONLY" = 1 ] && per=300
  logged bin/synth-shards --out "$WORK/par" --split validation --books 8 \
    --tokens-per-book "$per" --vocab 32000 --seed 5
  prec=bf16; [ "$CPU_ONLY" = 1 ] && prec=""
  for model in ct-tiny bench-mid; do
    out=$("$PY" tests/harness/gpu_parity.py nll --harness bin/harness --device "$DEV" \
          ${prec:+--precision $prec} --shards "$WORK/par" --split validation --model "$model" \
          --batch 4 --nll-tol 0.1 --ppl-tol 0.005 2>&1)
    echo "$out" | tee -a "$LOG" | grep -v '^parity:' | sed 's/^/parity /' | tee -a "$REPORT"
    echo "$out" | grep -q '^parity: ok' || fail "bf16 NLL parity ($model)"
  done
  say "parity done at $(elapsed) s"
fi

# ---------------------------------------------------------------- 4. mpi
if part mpi; then
  if ! command -v mpirun > /dev/null; then
    say "mpi: skipped (mpirun not installed)"
  else
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader \
      OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_plm_rsh_agent=
    [ -d "$WORK/par" ] || logged bin/synth-shards --out "$WORK/par" --split validation \
      --books 8 --tokens-per-book 300 --vocab 32000 --seed 5
    ngpu=$(nvidia-smi -L 2> /dev/null | grep -c '^GPU' || true)
    for n in 2 $([ "${ngpu:-0}" -gt 2 ] && echo "$ngpu"); do
      common=(run --model bench-mid --random-init 1 --split validation --shards "$WORK/par"
              --device "$DEV" --batch 3 --threads 4)
      logged bin/harness "${common[@]}" --nll-dump "$WORK/one.nll"
      logged mpirun --oversubscribe -np "$n" bin/harness "${common[@]}" --nll-dump "$WORK/n.nll"
      if cmp -s "$WORK/one.nll" "$WORK/n.nll"; then
        say "mpi: 1 rank vs $n ranks ($DEV, bench-mid, batch 3): identical NLL dumps"
      else
        fail "mpi: 1 rank vs $n ranks: NLL dumps differ"
      fi
    done
  fi
fi

# ---------------------------------------------------------------- 5. bench
# whole split: wall time, tokens/s, TFLOP/s from the results table
bench_split() {
  local model=$1 shards=$2
  local t0 t1 rc
  t0=$(date +%s.%N)
  timeout "$BENCH_TIMEOUT" bin/harness run --model "$model" --random-init 1 --split test \
    --shards "$shards" --device "$DEV" --out "$WORK/$model.json" > "$WORK/$model.table" \
    2> "$WORK/$model.err"
  rc=$?
  t1=$(date +%s.%N)
  cat "$WORK/$model.err" "$WORK/$model.table" >> "$LOG"
  if [ $rc != 0 ]; then
    fail "bench $model: $( [ $rc = 124 ] && echo "not done within ${BENCH_TIMEOUT} s" || tail -1 "$WORK/$model.err")"
    return
  fi
  local line tps gfs
  line=$(grep '^throughput' "$WORK/$model.table")
  tps=$(echo "$line" | sed -n 's/^throughput *\([0-9.]*\) tokens.*/\1/p')
  gfs=$(echo "$line" | sed -n 's/.* \([0-9.]*\) GFLOP\/s.*/\1/p')
  awk -v m="$model" -v w="$(echo "$t1 - $t0" | bc)" -v t="$tps" -v g="$gfs" -v p=$PEAK_TFLOPS \
      -v dev="$(head -1 "$WORK/$model.err")" 'BEGIN {
    printf "bench %s whole split: %.1f s wall (process), %.0f tokens/s, %.1f TFLOP/s, %.3f of %d TFLOP/s bf16 peak\n  [%s]\n",
      m, w, t, g / 1000, g / 1000 / p, p, dev }' | tee -a "$REPORT"
}

if part bench; then
  tsv=${PG19_LENGTHS_TSV:-${PG19_TEST_CORPUS:-/nonexistent}/pg19/pg19_files_derived.tsv}
  if [ "$CPU_ONLY" = 1 ]; then
    logged bin/synth-shards --out "$WORK/test" --split test --books 4 --tokens-per-book 200
    say "bench: CPU-only exercise, 4 books of about 200 tokens"
    bench_models="ct-tiny txl-tiny"
  elif [ -f "$tsv" ]; then
    logged bin/synth-shards --out "$WORK/test" --split test --lengths "$tsv" --bytes-per-token 3.9
    say "bench: synthetic test split from $tsv: $(grep -c '^test' "$tsv") books, $(grep 'synth-shards: test' "$LOG" | tail -1 | sed 's/.*books, //')"
    bench_models="ct36 txl36"
  else
    logged bin/synth-shards --out "$WORK/test" --split test --books 100 --tokens-per-book 105869
    say "bench: no pg19_files_derived.tsv (PG19_TEST_CORPUS/PG19_LENGTHS_TSV): 100 books of 52,935-158,803 tokens instead"
    bench_models="ct36 txl36"
  fi
  for model in $bench_models; do
    bench_split "$model" "$WORK/test"
  done
  # steady state at a fixed batch: harness vs PyTorch eager and torch.compile
  model=${bench_models%% *}
  B=$(sed -n 's/.*, batch \([0-9]*\).*/\1/p' "$WORK/$model.err" 2> /dev/null | head -1)
  B=${B:-32}
  [ "$CPU_ONLY" = 1 ] && B=2
  hb=$(bin/harness bench --model "$model" --device "$DEV" --batch "$B" --seconds 10 2>&1)
  echo "$hb" >> "$LOG"
  htps=$(echo "$hb" | sed -n 's/^harness forward.* \([0-9.]*\) tokens\/s.*/\1/p')
  say "bench harness steady state: $(echo "$hb" | grep '^harness forward')"
  if [ -z "$PYT" ]; then
    say "bench pytorch: skipped (no python3 with torch)"
  else
    logged bin/harness init --model "$model" --random-init 1 --out "$WORK/w.safetensors"
    modes="eager compile"; [ "$CPU_ONLY" = 1 ] && modes=eager
    for mode in $modes; do
      flag=""; [ "$mode" = compile ] && flag=--compile
      check=""; [ "$mode" = eager ] && check="--check-harness bin/harness"
      pt=$(timeout 240 "$PYT" harness/bench_torch_gpu.py --config "models/$model.json" \
           --weights "$WORK/w.safetensors" --batch "$B" --windows 5 --device "${DEV%%:*}" \
           $flag $check 2>&1)
      echo "$pt" >> "$LOG"
      ptps=$(echo "$pt" | sed -n 's/^pytorch .* \([0-9.]*\) tokens\/s.*/\1/p')
      echo "$pt" | grep -E '^pytorch' | sed 's/^/bench /' | tee -a "$REPORT"
      if [ -n "$ptps" ] && [ -n "$htps" ]; then
        awk -v a="$htps" -v b="$ptps" -v m="$mode" \
          'BEGIN { printf "bench ratio harness / pytorch %s: %.2f\n", m, a / b }' | tee -a "$REPORT"
      else
        say "bench pytorch $mode: no number (see log)"
      fi
    done
  fi
fi

say "gpu-check: $([ $FAILED = 0 ] && echo ok || echo FAILED) after $(elapsed) s (log: $LOG)"
exit $FAILED
