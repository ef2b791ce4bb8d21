"""benchlib.py - what every `make bench` entry shares.

A benchmark compares ours with a named baseline. On a machine shared with
other work, two timings taken minutes apart measure the load as much as the
code, so every entry here:
  - runs baseline and ours alternately (B A B A ..., PG19_BENCH_PAIRS pairs,
    at least 5) after one warm-up pair that is not counted,
  - reports medians with the spread (min .. max), and the ratio as the median
    of the per-pair ratios (each pair ran under about the same load),
  - prints the machine once: CPU model, cores, load, the OpenBLAS kernel and
    the threads the entry uses.
Entries whose tools can be driven step by step (`harness bench --serve`,
`harness train-bench --serve`: class Served) alternate in short turns of
about a second rather than in whole runs: on this kind of shared VM a busy
spell of a few seconds otherwise lands on one side of a pair only.
Every entry ends with one line per comparison,
  RESULT <entry> | ours <median> (<min> .. <max>) <unit> | baseline ... | ratio ...
so that the table of a whole `make bench` is `grep ^RESULT`.
"""
import ctypes
import ctypes.util
import os
import resource
import statistics
import subprocess
import sys
import time

MIN_PAIRS = 5
# an sgemm rate whose interquartile range across runs exceeds this fraction
# of its median is not a limit to compare with (the machine is busy)
STABLE_IQR = 0.10


def n_pairs(default=MIN_PAIRS):
    """Pairs to run: PG19_BENCH_PAIRS, else `default` (at least MIN_PAIRS)."""
    try:
        n = int(os.environ.get("PG19_BENCH_PAIRS", str(default)))
    except ValueError:
        n = MIN_PAIRS
    return max(MIN_PAIRS, n)


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def openblas_core():
    """The kernel OpenBLAS picks in this process's environment (it reads
    OPENBLAS_CORETYPE when loaded), through openblas_get_corename."""
    for name in ("libopenblas.so.0", ctypes.util.find_library("openblas")):
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
            lib.openblas_get_corename.restype = ctypes.c_char_p
            return lib.openblas_get_corename().decode()
        except (OSError, AttributeError):
            continue
    return "OpenBLAS not found"


def print_machine(threads, extra=""):
    """Prints the machine line, once per entry."""
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    ct = os.environ.get("OPENBLAS_CORETYPE", "unset")
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores, load average {load}; "
          f"OpenBLAS core {openblas_core()} (OPENBLAS_CORETYPE={ct}); threads: {threads}"
          + (f"; {extra}" if extra else ""), flush=True)


def pin_one_cpu():
    """Runs this process, and every process it starts, on one CPU (the one it
    is on now where Python can tell, else the lowest it may use) and returns
    that CPU. For single-core comparisons: on a
    shared VM the vCPUs differ in speed from minute to minute (a busy
    neighbour on one hyperthread), and a baseline run in this process and
    ours in a child on the other vCPU then measure the two vCPUs rather than
    the two programs (seen as ratios of 0.80 and 1.59 in two back-to-back
    runs of the clean benchmark)."""
    try:
        cpu = os.sched_getcpu() if hasattr(os, "sched_getcpu") else min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return cpu
    except (OSError, AttributeError):
        return None


# glibc malloc serves blocks over its mmap threshold (at most 32 MiB however
# it adapts) with fresh mmap()s and returns them on free(). PyTorch allocates
# every activation as it goes; bench-mid's logits alone are 65 MB, so each
# window page-faulted about 40,000 fresh pages (1.5-3 s of system time in a
# 4 s run), and the page-fault cost on this VM moved PyTorch's rate between
# 340 and 1,185 tokens/s from run to run. PyTorch's own performance tuning
# guide tells CPU users to switch to an allocator that reuses memory (jemalloc
# or TCMalloc); these glibc tunables do the same without another package: no
# block is mmap()ed on its own and freed memory stays in the heap, which is
# backed by transparent huge pages (hugetlb=1: madvise, as PyTorch 2 itself
# now does for large blocks). With 4 KiB pages PyTorch's single-threaded
# forward varied from process to process with where its pages landed (536 to
# 706 tokens/s in three processes; 915 to 947 with huge pages). Both sides
# get the same settings; the harness (one allocation at start) is unchanged.
MALLOC_TUNABLES = ("glibc.malloc.mmap_threshold=4294967295:glibc.malloc.trim_threshold=4294967295"
                   ":glibc.malloc.hugetlb=1")


def reuse_memory():
    """Makes this process (and the processes it starts) keep freed memory
    for reuse (MALLOC_TUNABLES), re-executing it once because glibc reads
    its tunables at start. Call first thing in an entry whose baseline is a
    PyTorch model; returns the setting for the machine line."""
    have = os.environ.get("GLIBC_TUNABLES", "")
    if MALLOC_TUNABLES not in have:
        os.environ["GLIBC_TUNABLES"] = (have + ":" if have else "") + MALLOC_TUNABLES
        os.execv(sys.executable, [sys.executable] + sys.argv)
    return "GLIBC_TUNABLES=" + os.environ["GLIBC_TUNABLES"]


def bench_threads():
    """Threads for an entry: PG19_BENCH_THREADS, else every CPU. With 1,
    this process and every process it starts are pinned to one CPU
    (pin_one_cpu), so both sides of a pair run on the same vCPU and no
    thread waits on another: on a shared VM the 2-thread ratios of a
    PyTorch baseline move with how fast a sleeping thread is woken (the
    training step's ratio gave 1.10 to 1.55 in four runs); the 1-thread
    ones measure the arithmetic alone. Returns (threads, a phrase for the
    machine line)."""
    try:
        n = int(os.environ.get("PG19_BENCH_THREADS", "0"))
    except ValueError:
        n = 0
    n = n if n > 0 else os.cpu_count()
    if n == 1:
        return 1, f"pinned to CPU {pin_one_cpu()}"
    return n, "not pinned"


def cpu_seconds():
    """User + system CPU seconds of this process and its waited-for children."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + ch.ru_utime + ch.ru_stime


def timed(fn):
    """Runs fn(); returns (wall seconds, CPU seconds, fn's result)."""
    t0, c0 = time.perf_counter(), cpu_seconds()
    out = fn()
    return time.perf_counter() - t0, cpu_seconds() - c0, out


class Served:
    """A tool in --serve mode (harness/bench.h): started and warmed up once,
    then asked for k windows or steps at a time, each answered with one line
    of numbers. Between requests it blocks on its standard input (its
    threads wait passively), so it costs the other side of a pair nothing."""

    def __init__(self, argv, what):
        self.what = what
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, bufsize=1)
        self.header = []
        for line in self.p.stdout:
            if line.startswith("ready "):
                self.ready = [float(x) for x in line.split()[1:]]
                return
            self.header.append(line.rstrip("\n"))
        self.fail("ended before it was ready")

    def fail(self, why):
        self.p.kill()
        err = self.p.stderr.read()
        sys.exit(f"bench: {self.what} {why}: {err.strip()}")

    def run(self, k):
        """Runs k windows (steps); returns one tuple of floats per window."""
        try:
            self.p.stdin.write(f"{k}\n")
            self.p.stdin.flush()
        except OSError:
            self.fail("stopped reading its requests")
        rows = []
        for _ in range(k):
            line = self.p.stdout.readline()
            if not line:
                self.fail("ended mid-request")
            rows.append(tuple(float(x) for x in line.split()))
        return rows

    def per_turn(self, seconds, time_of_row=lambda row: row[0]):
        """The count of windows (steps) that takes about `seconds`, from a
        timed probe of three."""
        t = statistics.median(time_of_row(r) for r in self.run(3))
        return max(1, round(seconds / t))

    def close(self):
        self.p.stdin.close()
        if self.p.wait():
            sys.exit(f"bench: {self.what} failed: {self.p.stderr.read().strip()}")


def show(measured):
    """A pair's measurement, short: its numbers, with their keys."""
    if isinstance(measured, dict):
        return " ".join(f"{k} {show(v)}" for k, v in measured.items()
                        if isinstance(v, (int, float, tuple, list, dict)))
    if isinstance(measured, (tuple, list)):
        return "(" + " ".join(show(v) for v in measured) + ")"
    return f"{measured:.4g}"


def alternate(baseline, ours, pairs=None, warmup=True, label=""):
    """Runs baseline() and ours() alternately, `pairs` times each after one
    uncounted warm-up pair. Each returns a dict of measurements (or a
    number, stored as "value"). Returns (baseline list, ours list)."""
    pairs = pairs or n_pairs()
    base, mine = [], []
    for i in range(-1 if warmup else 0, pairs):
        b = baseline()
        o = ours()
        if i >= 0:
            base.append(b if isinstance(b, dict) else {"value": b})
            mine.append(o if isinstance(o, dict) else {"value": o})
        if label:
            print(f"  {label}: pair {i + 1}/{pairs}: {show(b)} | {show(o)}" if i >= 0
                  else f"  {label}: warm-up pair done", flush=True)
    return base, mine


def spread(values):
    """(median, min, max)."""
    return statistics.median(values), min(values), max(values)


def fmt(values, digits=2):
    m, lo, hi = spread(values)
    return f"{m:.{digits}f} ({lo:.{digits}f} .. {hi:.{digits}f})"


def result(entry, ours, baseline, unit, higher_is_better, digits=2, baseline_name="baseline"):
    """Prints the RESULT line of one comparison. ours and baseline are the
    per-pair values (same length, pair i ran back to back); the ratio is
    ours/baseline for rates and baseline/ours for times, so > 1 means ours
    is faster; its median is over the per-pair ratios. Returns the median
    ratio."""
    ratios = [(o / b if higher_is_better else b / o) if o > 0 and b > 0 else 0.0
              for o, b in zip(ours, baseline)]
    print(f"RESULT {entry} | ours {fmt(ours, digits)} {unit} | {baseline_name} "
          f"{fmt(baseline, digits)} {unit} | ratio {fmt(ratios)} (> 1: ours faster; "
          f"median of {len(ratios)} pairs)", flush=True)
    return statistics.median(ratios)


def sgemm_fraction(entry, ours_gflops, replay_gflops, what="ours", per="runs"):
    """Prints the RESULT line of our achieved GFLOP/s against the sgemm rate
    of the same products (`harness bench`'s "sgemm replay" line), one value
    of each per run (or turn: `per`). The fraction (median of the per-run
    ratios) is given only when the replay's rate is stable across runs
    (interquartile range at most STABLE_IQR of its median); otherwise says
    why not. Returns the
    median fraction or None."""
    gf, rep = list(ours_gflops), list(replay_gflops)
    q = statistics.quantiles(rep, n=4)
    iqr = (q[2] - q[0]) / statistics.median(rep)
    head = (f"RESULT {entry} | {what} {fmt(gf, 1)} GFLOP/s | sgemm replay {fmt(rep, 1)} "
            f"GFLOP/s | ")
    if iqr <= STABLE_IQR:
        ratios = [g / r for g, r in zip(gf, rep)]
        print(head + f"fraction of the sgemm limit {fmt(ratios)} (median of {len(ratios)} {per})",
              flush=True)
        return statistics.median(ratios)
    print(head + f"fraction not reported: the replay's rate is unstable across {per} "
          f"(interquartile range {100 * iqr:.0f}% of the median > {100 * STABLE_IQR:.0f}%)",
          flush=True)
    return None
