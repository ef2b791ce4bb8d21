#!/usr/bin/python3
"""`make bench` for the harness: the CPU forward of models/bench-mid.json
(random weights, batch 2, memories full) against two baselines, in
alternating turns of about a second (common/benchlib.py), the harness
driven through `harness bench --serve`:

  1. the sgemm limit: each harness window is followed by a replay of the
     same window's cblas_sgemm calls (harness/bench.c); the fraction is
     reported only when the replay is stable across turns;
  2. PyTorch CPU (Debian's python3-torch) on the same weights
     (harness/bench_torch.py), when installed.

Fair by construction: both processes get the same OMP_WAIT_POLICY (passive
unless the caller set one; the harness would otherwise set passive for
itself only; PyTorch's OpenBLAS thread pool then gets the shortest spin,
OPENBLAS_THREAD_TIMEOUT=4), the same malloc that keeps freed memory for
reuse (benchlib.reuse_memory: PyTorch's tuning guide's advice; with glibc's
default each window page-faulted its 65 MB of logits afresh), the same
thread count, the same OpenBLAS kernel (the one the harness runs with, set
before PyTorch loads OpenBLAS), the same batch and float32; PyTorch caches
memory keys/values and position projections as the harness does and runs
under inference_mode; its logits are checked against the harness over 5
windows, so compressed memory is filled and dropped.

PG19_BENCH_SECONDS (default 1) is the length of each side's turn,
PG19_BENCH_MODEL (default models/bench-mid.json) the model,
PG19_BENCH_PAIRS (default 20, at least 5) the pairs,
PG19_BENCH_THREADS (default: every CPU) the threads of both sides; with 1,
both are pinned to one CPU (benchlib.bench_threads).
"""
import os
import re
import statistics
import subprocess
import sys
import tempfile

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "common"))
sys.path.insert(0, os.path.join(TOP, "harness"))
import benchlib  # noqa: E402

HARNESS = os.path.join(TOP, "bin", "harness")
CHECK_WINDOWS = 5
# turns of about a second each: 20 pairs take under a minute
DEFAULT_PAIRS = 20


def torch_turn(model, toks, windows):
    """`windows` PyTorch windows; the median window's tokens/s."""
    import time
    import torch
    rates = []
    with torch.inference_mode():
        for _ in range(windows):
            t0 = time.perf_counter()
            model.window(toks)
            rates.append(toks.numel() / (time.perf_counter() - t0))
    return {"tokens_s": statistics.median(rates)}


def harness_turn(server, windows):
    """`windows` pairs of a harness window and its sgemm replay from the
    --serve process; medians of the windows' rates."""
    rows = server.run(windows)
    tokens, replay_flop = server.ready
    return {"tokens_s": statistics.median(tokens / fs for fs, _, _ in rows),
            "gflops": statistics.median(ff / fs / 1e9 for fs, ff, _ in rows),
            "replay": statistics.median(replay_flop / rs / 1e9 for _, _, rs in rows)}


def start_forward_server(cfg, threads, batch):
    """Sets what both sides of a harness entry share and starts `harness
    bench --serve` (the forward with its sgemm replay); returns it. Call
    before PyTorch is imported: it sets the OpenBLAS kernel PyTorch loads."""
    # the same wait policy for both processes (the harness sets passive for
    # itself when unset; a spinning PyTorch against it would be unfair)
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")
    # PyTorch also calls OpenBLAS's own thread pool, whose idle threads spin
    # for a while; the harness calls OpenBLAS single-threaded inside its
    # OpenMP threads (no pool). With a passive policy, OpenBLAS's pool waits
    # passively too (its shortest timeout), so neither side spins.
    if os.environ["OMP_WAIT_POLICY"].lower() == "passive":
        os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
    os.environ["OMP_NUM_THREADS"] = str(threads)
    server = benchlib.Served([HARNESS, "bench", "--model", cfg, "--threads", str(threads),
                              "--batch", str(batch), "--serve"], "harness bench --serve")
    # PyTorch loads OpenBLAS later: the same kernel as the harness's
    os.environ["OPENBLAS_CORETYPE"] = re.search(r"OpenBLAS core (\S+)",
                                                server.header[0]).group(1)
    os.environ["PG19_KEEP_OPENBLAS_CORETYPE"] = "1"
    return server


def print_machine(threads, pinned, alloc, server):
    """The machine line, with the settings both sides share."""
    benchlib.print_machine(f"{threads} ({pinned})",
                           f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']} for both, "
                           f"OPENBLAS_THREAD_TIMEOUT={os.environ.get('OPENBLAS_THREAD_TIMEOUT')}, "
                           f"{alloc} for both; "
                           f"harness: {server.header[0].split(': ', 1)[1]}")


def main():
    alloc = benchlib.reuse_memory()  # re-executes once; see MALLOC_TUNABLES
    cfg = os.environ.get("PG19_BENCH_MODEL", os.path.join(TOP, "models", "bench-mid.json"))
    turn = float(os.environ.get("PG19_BENCH_SECONDS", "1"))
    pairs = benchlib.n_pairs(DEFAULT_PAIRS)
    threads, pinned = benchlib.bench_threads()
    batch = 2  # the harness's default batch for `bench`
    server = start_forward_server(cfg, threads, batch)
    try:
        import torch
        import bench_torch
    except ImportError:
        torch = None
    print_machine(threads, pinned, alloc, server)
    k_ours = server.per_turn(turn, lambda r: r[0] + r[2])
    name = os.path.basename(cfg).rsplit(".", 1)[0]
    if torch is not None:
        import json
        torch.set_num_threads(threads)
        with open(cfg) as f:
            c = json.load(f)
        tmp = tempfile.mkdtemp(prefix="pg19-bench-")
        wpath = os.path.join(tmp, "w.safetensors")
        subprocess.run([HARNESS, "init", "--model", cfg, "--random-init", "1", "--out", wpath],
                       check=True, stdout=subprocess.DEVNULL)
        W = bench_torch.load_safetensors(wpath)
        err = bench_torch.check_agreement(c, W, HARNESS, cfg, wpath, CHECK_WINDOWS)
        os.remove(wpath)
        os.rmdir(tmp)
        print(f"pytorch {torch.__version__} vs harness logits over {CHECK_WINDOWS} windows "
              f"(compressed memory filled and dropping): max relative difference {err:.2e}")
        if err > 1e-4:
            sys.exit("bench: pytorch and harness disagree: not the same model")
        model = bench_torch.TorchInferenceModel(c, W, batch)
        g = torch.Generator().manual_seed(2)
        toks = torch.randint(0, c["vocab_size"], (batch, c["window"]), generator=g)
        torch_turn(model, toks, 3)  # memories to their steady state
        t_window = batch * c["window"] / torch_turn(model, toks, 3)["tokens_s"]
        k_torch = max(1, round(turn / t_window))
        print(f"turns of about {turn:g} s: {k_torch} PyTorch windows, then {k_ours} harness "
              f"windows each followed by its sgemm replay; {pairs} pairs", flush=True)
        base, ours = benchlib.alternate(lambda: torch_turn(model, toks, k_torch),
                                        lambda: harness_turn(server, k_ours), pairs,
                                        label="pytorch / harness")
        benchlib.result(f"harness {name} forward, {threads} thread(s), vs PyTorch",
                        [o["tokens_s"] for o in ours], [b["tokens_s"] for b in base],
                        "tokens/s", True, 1, baseline_name=f"pytorch {torch.__version__}")
    else:
        print("pytorch: python3-torch is not installed (make deps); only the sgemm baseline runs")
        ours = [harness_turn(server, k_ours) for _ in range(pairs)]
    server.close()
    benchlib.sgemm_fraction(f"harness {name} forward, {threads} thread(s), vs its sgemm replay",
                            [o["gflops"] for o in ours], [o["replay"] for o in ours], per="turns")
    return 0


if __name__ == "__main__":
    sys.exit(main())
