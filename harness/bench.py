#!/usr/bin/python3
"""`make bench` for the harness: the CPU forward of models/bench-mid.json
(random weights, batch 2, memories full) against two baselines, in
alternating pairs (common/benchlib.py):

  1. the sgemm limit: `harness bench` alternates forward windows with
     replays of the same window's cblas_sgemm calls (harness/bench.c) and
     prints both; the fraction is reported only when the replay is stable;
  2. PyTorch CPU (Debian's python3-torch) on the same weights
     (harness/bench_torch.py), when installed.

Fair by construction: both processes get the same OMP_WAIT_POLICY (passive
unless the caller set one; the harness would otherwise set passive for
itself only; PyTorch's OpenBLAS thread pool then gets the shortest spin,
OPENBLAS_THREAD_TIMEOUT=4), the same thread count, the same OpenBLAS kernel (the one the
harness runs with, set before PyTorch loads OpenBLAS), the same batch and
float32; PyTorch caches memory keys/values and position projections as the
harness does and runs under inference_mode; its logits are checked against
the harness over 5 windows, so compressed memory is filled and dropped.

PG19_BENCH_SECONDS (default 4) is the length of each run,
PG19_BENCH_MODEL (default models/bench-mid.json) the model,
PG19_BENCH_PAIRS (default 5) the pairs.
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


def parse_harness(out):
    """Medians from `harness bench`'s report."""
    def num(pattern):
        m = re.search(pattern, out)
        if not m:
            sys.exit(f"bench: cannot read {pattern!r} in harness output:\n{out}")
        return float(m.group(1))
    return {
        "tokens_s": num(r"harness forward:.*?median ([0-9.]+) tokens/s"),
        "gflops": num(r"harness forward:.*?median ([0-9.]+) GFLOP/s"),
        "replay": num(r"sgemm replay.*?median ([0-9.]+) GFLOP/s"),
        "core": re.search(r"OpenBLAS core (\S+)", out).group(1),
    }


def run_harness(cfg, secs, threads, batch):
    r = subprocess.run([HARNESS, "bench", "--model", cfg, "--seconds", str(secs), "--threads",
                        str(threads), "--batch", str(batch)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode:
        sys.exit(f"bench: harness bench failed:\n{r.stderr}")
    return r.stdout


def main():
    cfg = os.environ.get("PG19_BENCH_MODEL", os.path.join(TOP, "models", "bench-mid.json"))
    secs = float(os.environ.get("PG19_BENCH_SECONDS", "4"))
    threads = os.cpu_count()
    batch = 2  # the harness's default batch for `bench`
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
    first = run_harness(cfg, 1, threads, batch)  # warm-up; tells the kernel it runs
    core = parse_harness(first)["core"]
    os.environ["OPENBLAS_CORETYPE"] = core
    os.environ["PG19_KEEP_OPENBLAS_CORETYPE"] = "1"
    try:
        import torch
        import bench_torch
    except ImportError:
        torch = None
    benchlib.print_machine(threads, f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']} for both, "
                           f"OPENBLAS_THREAD_TIMEOUT={os.environ.get('OPENBLAS_THREAD_TIMEOUT')}; "
                           f"harness: {first.splitlines()[0].split(': ', 1)[1]}")

    torch_run = None
    if torch is not None:
        import json
        import time
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
        with torch.inference_mode():
            for _ in range(3):  # memories to their steady state
                model.window(toks)

        def torch_run():
            rates, t_start = [], time.perf_counter()
            with torch.inference_mode():
                while time.perf_counter() - t_start < secs or len(rates) < 3:
                    t0 = time.perf_counter()
                    model.window(toks)
                    rates.append(batch * c["window"] / (time.perf_counter() - t0))
            return {"tokens_s": statistics.median(rates)}
    else:
        print("pytorch: python3-torch is not installed (make deps); only the sgemm baseline runs")

    def harness_run():
        return parse_harness(run_harness(cfg, secs, threads, batch))

    name = os.path.basename(cfg).rsplit(".", 1)[0]
    if torch_run:
        base, ours = benchlib.alternate(torch_run, harness_run, label="pytorch / harness")
        benchlib.result(f"harness {name} forward vs PyTorch", [o["tokens_s"] for o in ours],
                        [b["tokens_s"] for b in base], "tokens/s", True, 1,
                        baseline_name=f"pytorch {torch.__version__}")
    else:
        ours = [harness_run() for _ in range(benchlib.n_pairs())]
    benchlib.sgemm_fraction(f"harness {name} forward vs its sgemm replay",
                            [o["gflops"] for o in ours], [o["replay"] for o in ours])
    return 0


if __name__ == "__main__":
    sys.exit(main())
