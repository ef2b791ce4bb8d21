#!/usr/bin/python3
"""`make bench` for harness training: one CPU training step of
models/ct-small.json (batch 4 x window 128, memories full and compressing,
random tokens) in `harness train-bench --serve` (harness/train.c: forward
with saved activations, backward, the attention-reconstruction loss with
the conv compressor's gradient, Adam) against two baselines, in alternating
turns of about a second (common/benchlib.py):

  1. PyTorch CPU (Debian's python3-torch), harness/bench_torch_train.py: the
     same model and step written as a competent PyTorch user writes it,
     when installed;
  2. the sgemm limit: `harness bench --serve`'s replay of the model's
     forward products at the same batch, run right after each turn of
     training steps; the fraction of it that the training step achieves
     (3x the forward's matrix-product FLOPs, memory re-projection included,
     elementwise work not counted) is reported only when the replay's rate
     is stable across runs.

Fair by construction: both sides get the same OMP_WAIT_POLICY (passive
unless the caller set one) and OpenBLAS thread-pool timeout, the same malloc
that keeps freed memory for reuse (benchlib.reuse_memory: PyTorch's tuning
guide's advice; glibc's default made PyTorch's step 1.45x slower), the same
thread count (torch.set_num_threads), the same OpenBLAS kernel (the one the harness
runs with, set before PyTorch loads OpenBLAS), float32, the same batch and
window, the same per-step work (memories detached between windows and
re-projected with the current weights, the reconstruction loss of Rae et
al. 2020 Alg. 2 with its gradient into the compressor only, mean loss,
backward, Adam). PyTorch reuses the queries, keys and values it already has
for the reconstruction loss where the C code recomputes them, so it does
slightly less work. Each turn reports its median step after the same warm-up
(memories full and the compressed memory's FIFO dropping rows). Before
anything is timed, PyTorch's losses and every gradient are checked against
`harness train-grad` over enough windows that the compressed memory fills
and drops rows (bench_torch_train.check_agreement); the benchmark fails if
they disagree.

PG19_BENCH_SECONDS (default 1) is the length of each side's turn,
PG19_BENCH_PAIRS (default 20, at least 5) the pairs,
PG19_BENCH_THREADS (default: every CPU) the threads of both sides; with 1,
both are pinned to one CPU (benchlib.bench_threads),
PG19_BENCH_TRAIN_MODEL (default models/ct-small.json) the model.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "common"))
sys.path.insert(0, os.path.join(TOP, "harness"))
import benchlib  # noqa: E402
from bench import print_machine, start_forward_server  # noqa: E402  (harness/bench.py)

HARNESS = os.path.join(TOP, "bin", "harness")
BATCH = 4
CHECK_BATCH = 2
# turns of about a second each (see common/benchlib.py)
DEFAULT_PAIRS = 20
# Agreement (bench_torch_train.check_agreement): the model in float64 is the
# harness's objective to these relative differences (measured on ct-small:
# sums 1e-8, gradients 2.5e-6); in float32, ReLU kinks allow about 1e-3.
TOL_F64 = {"nll_rel": 1e-6, "recon_rel": 1e-5, "grad_rel": 1e-4}
TOL_F32 = {"nll_rel": 1e-5, "recon_rel": 1e-5, "grad_rel": 1e-2}


def report_agreement(res):
    """Prints the agreement; returns False if a bound is exceeded."""
    ok = True
    for dt, tol in (("f64", TOL_F64), ("f32", TOL_F32)):
        a = res[dt]
        print(f"  pytorch {dt} vs harness: NLL sum {a['nll_rel']:.1e}, reconstruction sum "
              f"{a['recon_rel']:.1e}, gradients {a['grad_rel']:.1e} (worst {a['grad_worst']}) "
              f"relative; bounds {tol['nll_rel']:.0e}, {tol['recon_rel']:.0e}, "
              f"{tol['grad_rel']:.0e}")
        ok &= all(a[k] <= tol[k] for k in tol)
        ok &= a["dropped"] and a["compressor_grad"] > 0
    return ok


def main():
    alloc = benchlib.reuse_memory()  # re-executes once; see MALLOC_TUNABLES
    cfg = os.environ.get("PG19_BENCH_TRAIN_MODEL", os.path.join(TOP, "models", "ct-small.json"))
    turn = float(os.environ.get("PG19_BENCH_SECONDS", "1"))
    pairs = benchlib.n_pairs(DEFAULT_PAIRS)
    threads, pinned = benchlib.bench_threads()
    replay = start_forward_server(cfg, threads, BATCH)  # and the settings both sides share
    trainer_c = benchlib.Served([HARNESS, "train-bench", "--model", cfg, "--threads",
                                 str(threads), "--batch", str(BATCH), "--serve"],
                                "harness train-bench --serve")
    try:
        import torch
        import bench_torch_train
    except ImportError:
        torch = None
    print_machine(threads, pinned, alloc, replay)
    k_steps = trainer_c.per_turn(turn)
    k_replay = replay.per_turn(min(turn, 0.5), lambda r: r[0] + r[2])
    step_tokens, step_flop = trainer_c.ready
    replay_flop = replay.ready[1]
    with open(cfg) as f:
        c = json.load(f)
    name = c["name"]

    torch_run = None
    if torch is not None:
        torch.set_num_threads(threads)
        res = bench_torch_train.check_agreement(c, HARNESS, cfg, batch=CHECK_BATCH)
        print(f"pytorch {torch.__version__} vs harness train-grad, {name}, {res['batch']} streams "
              f"x {res['windows']} windows (compressed memory filled and dropping rows): losses "
              f"and gradients of the summed objective")
        if not report_agreement(res):
            sys.exit("bench_train: pytorch and harness disagree: not the same training step")
        with tempfile.TemporaryDirectory(prefix="pg19-bench-train-") as tmp:
            wpath = os.path.join(tmp, "w.safetensors")
            subprocess.run([HARNESS, "init", "--model", cfg, "--random-init", "1", "--out",
                            wpath], check=True, stdout=subprocess.DEVNULL)
            W = bench_torch_train.load_safetensors(wpath)
        trainer = bench_torch_train.TorchTrainer(c, W, BATCH)
        trainer.run(0, min_steps=3)  # memories full, compressed memory dropping rows
        k_torch = max(1, round(turn / statistics.median(trainer.run(0, min_steps=3))))

        def torch_run():
            med = statistics.median(trainer.run(0, min_steps=k_torch))
            return {"tokens_s": trainer.tokens / med}
        print(f"turns of about {turn:g} s: {k_torch} PyTorch steps, then {k_steps} harness steps "
              f"and {k_replay} windows of the forward's sgemm replay; {pairs} pairs", flush=True)
    else:
        print("pytorch: python3-torch is not installed (make deps); only the sgemm baseline runs")

    def harness_run():
        step_s = statistics.median(r[0] for r in trainer_c.run(k_steps))
        rep_s = statistics.median(r[2] for r in replay.run(k_replay))
        return {"tokens_s": step_tokens / step_s, "gflops": step_flop / step_s / 1e9,
                "replay": replay_flop / rep_s / 1e9}

    if torch_run:
        base, ours = benchlib.alternate(torch_run, harness_run, pairs, label="pytorch / harness")
        benchlib.result(f"harness {name} training step, {threads} thread(s), vs PyTorch",
                        [o["tokens_s"] for o in ours], [b["tokens_s"] for b in base], "tokens/s",
                        True, 1, baseline_name=f"pytorch {torch.__version__}")
    else:
        harness_run()  # warm-up
        ours = [harness_run() for _ in range(pairs)]
    trainer_c.close()
    replay.close()
    benchlib.sgemm_fraction(f"harness {name} training step, {threads} thread(s), vs its forward's "
                            "sgemm replay",
                            [o["gflops"] for o in ours], [o["replay"] for o in ours], per="turns")
    return 0


if __name__ == "__main__":
    sys.exit(main())
