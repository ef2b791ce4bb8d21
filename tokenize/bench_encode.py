#!/usr/bin/env python3
"""`make bench` entry: encode throughput of `tokenize encode --lines` against
the baseline `spm_encode --output_format=id` (Debian package sentencepiece),
the same model and the same text, the ids compared.

Model: the 32,000-piece vocabulary the harness models use, trained by
`tokenize train` on the training books of the shared corpus
($PG19_TEST_CORPUS/pg19-sample/train, never its validation or test books;
--sample-bytes 32 MB to keep the first run short) and cached in
build/bench/ under a hash of the book list and options, so reruns reuse it.
Without the corpus: 8,000 pieces trained on the demo books (data/demo/pg19).

Text: the raw Gutenberg texts under $PG19_TEST_CORPUS, whole files in order
until PG19_BENCH_TOKENIZE_MB (default 16) megabytes, else the demo books.

Runs alternate (common/benchlib.py): spm_encode (one thread) and two
spm_encode processes on the two halves of the text (split at a line: what a
user with two cores does; their ids are checked equal to the one process's),
then ours with 1 and with 2 threads, 5 rounds after a warm-up round
(PG19_BENCH_PAIRS); the single-threaded runs are pinned to the same CPU; medians and spread of
wall MB/s and per-core MB/s (bytes over user+sys CPU seconds). Fair: both
read the same file and write ids to a file; ours on 1 thread is compared
with one spm_encode, ours on 2 threads with two.
Ids: lines identical, lines that are the same pieces in another order (exact
score ties that SentencePiece breaks by float rounding), other lines (must be
0). Then the per-word memo check over the whole text: `tokenize verify`
encodes every book with and without the memo and compares the ids.
"""
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(TOP, "bin")
WORK = os.path.join(TOP, "build", "bench")
sys.path.insert(0, os.path.join(TOP, "common"))
import benchlib  # noqa: E402

TRAIN_SAMPLE = 32_000_000
DEFAULT_PAIRS = 5


def train_model(corpus):
    """The cached 32k model (or 8k on the demo books); returns its path."""
    train = os.path.join(corpus, "pg19-sample") if corpus else None
    if train and os.path.isdir(os.path.join(train, "train")):
        vocab = 32000
    else:
        train, vocab = os.path.join(TOP, "data", "demo", "pg19"), 8000
    books = sorted(glob.glob(os.path.join(train, "train", "*.txt")))
    if not books:
        return None, None
    key = hashlib.sha256()
    for b in books:
        key.update(f"{os.path.basename(b)} {os.path.getsize(b)}\n".encode())
    key.update(f"{vocab} {TRAIN_SAMPLE}".encode())
    model = os.path.join(WORK, f"train-{vocab // 1000}k-{key.hexdigest()[:16]}.model")
    if not os.path.exists(model):
        print(f"training the {vocab}-piece model on {len(books)} training books (cached)...",
              flush=True)
        os.makedirs(WORK, exist_ok=True)
        subprocess.run([os.path.join(BIN, "tokenize"), "train", "--corpus", train, "--split",
                        "train", "--vocab-size", str(vocab), "--sample-bytes", str(TRAIN_SAMPLE),
                        "-o", model], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    return model, f"{vocab} pieces, trained on {len(books)} training books of {train}"


def run(args, stdin_path, stdout_path, cpus=None):
    """(wall s, CPU s) of one run, on the CPUs `cpus` (None: any)."""
    pin = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
    with open(stdout_path, "wb") as fout, \
            (open(stdin_path, "rb") if stdin_path else open(os.devnull, "rb")) as fin:
        wall, cpu, _ = benchlib.timed(lambda: subprocess.run(
            args, stdin=fin, stdout=fout, stderr=subprocess.DEVNULL, check=True,
            preexec_fn=pin))
    return wall, cpu


def split_in_two(path):
    """The file cut at the line boundary nearest its middle; the two paths."""
    data = open(path, "rb").read()
    cut = data.find(b"\n", len(data) // 2) + 1 or len(data)
    out = []
    for i, part in enumerate((data[:cut], data[cut:])):
        out.append(f"{path}.half{i}")
        with open(out[-1], "wb") as f:
            f.write(part)
    return out


def main():
    spm = shutil.which("spm_encode")
    if not spm:
        print("bench: spm_encode not installed (apt-get install sentencepiece)")
        return 1
    corpus = os.environ.get("PG19_TEST_CORPUS")
    files = []
    if corpus:
        for pattern in ("raw-pg-2003-2004/*.txt", "raw-pg-modern/**/*.txt",
                        "raw-pg-ebook11-history-and-zips/**/*.txt", "stripped-no-markers/**/*.txt"):
            files += sorted(glob.glob(os.path.join(corpus, pattern), recursive=True))
    else:
        files = sorted(glob.glob(os.path.join(TOP, "data", "demo", "pg19", "*", "*.txt")))
    if not files:
        print("bench: no text (set PG19_TEST_CORPUS or run make demo)")
        return 1
    books = os.path.join(WORK, "books")
    shutil.rmtree(books, ignore_errors=True)
    os.makedirs(os.path.join(books, "train"))
    text = os.path.join(WORK, "text.txt")
    limit = float(os.environ.get("PG19_BENCH_TOKENIZE_MB", "16")) * 1e6
    with open(text, "wb") as out:
        for i, f in enumerate(files, 1):
            if out.tell() >= limit:
                files = files[:i - 1]
                break
            data = open(f, "rb").read()
            out.write(data)
            os.symlink(os.path.abspath(f), os.path.join(books, "train", f"{i}.txt"))
    size = os.path.getsize(text)
    model, what = train_model(corpus)
    if not model:
        print("bench: no training books (set PG19_TEST_CORPUS or run make demo)")
        return 1
    print(f"text: {len(files)} files, {size / 1e6:.1f} MB; model {what} ({model})")
    # the single-threaded runs (spm_encode, ours on 1 thread) share one CPU:
    # on a shared VM the two vCPUs differ in speed from minute to minute
    # (common/benchlib.py pin_one_cpu)
    one = {min(os.sched_getaffinity(0))}
    benchlib.print_machine(f"spm_encode 1 and tokenize encode 1, both on CPU {min(one)}; "
                           f"tokenize encode 2 threads and 2 spm_encode processes, on any")

    # two cores: a user with spm_encode runs two of it on the two halves of
    # the text (split at a line, spm_encode encodes line by line)
    halves = split_in_two(text)

    def spm2_run():
        procs = []

        def start_both():
            for i, half in enumerate(halves):
                with open(half, "rb") as fin, open(os.path.join(WORK, f"spm2-{i}.ids"), "wb") as fo:
                    procs.append(subprocess.Popen([spm, "--model", model, "--output_format=id"],
                                                  stdin=fin, stdout=fo,
                                                  stderr=subprocess.DEVNULL))
            for pr in procs:
                if pr.wait():
                    sys.exit("bench: spm_encode failed")
        wall, cpu, _ = benchlib.timed(start_both)
        return wall, cpu

    def spm_run():
        return {1: run([spm, "--model", model, "--output_format=id"], text,
                       os.path.join(WORK, "spm.ids"), one),
                2: spm2_run()}

    def ours_run():
        out = {}
        for threads in (1, 2):
            out[threads] = run([os.path.join(BIN, "tokenize"), "encode", "--model", model,
                                "--lines", "--threads", str(threads), text], None,
                               os.path.join(WORK, f"ours{threads}.ids"),
                               one if threads == 1 else None)
        return out

    base, ours = benchlib.alternate(spm_run, ours_run, benchlib.n_pairs(DEFAULT_PAIRS),
                                    label="spm_encode / tokenize encode")
    mb = size / 1e6
    for threads in (1, 2):
        spm_wall = [mb / b[threads][0] for b in base]
        spm_core = [mb / b[threads][1] for b in base]
        wall = [mb / o[threads][0] for o in ours]
        core = [mb / o[threads][1] for o in ours]
        them = "spm_encode" if threads == 1 else "2 spm_encode on the halves"
        benchlib.result(f"tokenize encode {threads} thread(s) vs {them}, wall", wall,
                        spm_wall, "MB/s", True, baseline_name=them)
        benchlib.result(f"tokenize encode {threads} thread(s) vs {them}, per core", core,
                        spm_core, "MB/s per core", True, baseline_name=them)
    halves_ids = b"".join(open(os.path.join(WORK, f"spm2-{i}.ids"), "rb").read()
                          for i in range(2))
    if halves_ids != open(os.path.join(WORK, "spm.ids"), "rb").read():
        print("bench: spm_encode on the two halves differs from spm_encode on the whole text")
        return 1

    spm_lines = open(os.path.join(WORK, "spm.ids"), "rb").read().split(b"\n")
    text_lines = open(text, "rb").read().split(b"\n")

    def plain(line):
        """What spm_encode keeps intact: valid UTF-8 without NUL and U+2581
        (it turns invalid bytes into U+FFFD; ours keeps them as byte tokens)."""
        try:
            s = line.decode("utf-8")
        except UnicodeDecodeError:
            return False
        return "\x00" not in s and "\u2581" not in s

    status = 0
    for threads in (1, 2):
        ours = open(os.path.join(WORK, f"ours{threads}.ids"), "rb").read().split(b"\n")
        same = ties = lossy = other = 0
        for a, b, t in zip(ours, spm_lines, text_lines):
            if a == b:
                same += 1
            elif sorted(a.split()) == sorted(b.split()):
                ties += 1
            elif not plain(t):
                lossy += 1
            else:
                other += 1
        if len(ours) != len(spm_lines):
            other += abs(len(ours) - len(spm_lines))
        print(f"ids, {threads} thread(s) vs spm_encode: {same} lines identical, {ties} equal-score "
              f"reorderings, {lossy} lines not UTF-8 (spm_encode writes U+FFFD there, we keep "
              f"the bytes), {other} other")
        status |= other != 0
    v = subprocess.run([os.path.join(BIN, "tokenize"), "verify", "--model", model, "--corpus",
                        os.path.join(WORK, "books"), "--split", "train"],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    r = json.loads(v.stdout)
    print(f"per-word memo over the whole text: {r['books']} books, {r['tokens']} tokens, "
          f"{r['memo_mismatches']} books where memo ids != no-memo ids; "
          f"{r['roundtrip_failures']} round-trip failures")
    status |= v.returncode != 0
    return status


if __name__ == "__main__":
    sys.exit(main())
