"""Shared helpers for the fetch tests and benchmark: fixture buckets, the
loopback server (gcs_server.py) and running bin/fetch."""
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
BIN = os.environ.get("PG19_BIN", os.path.join(TOP, "bin"))

WORDS = ("the of and to a in that he was it his had with as for i which you at "
         "but not be on her she him by my all this from so said have were one they "
         "captain ship harbour letter morning garden église naïve cœur café — “quoted” ‘single’").split()


def fetch_cmd(*args):
    return [os.path.join(BIN, "fetch"), "pg19", *args]


def _lexicon():
    """A fixed Zipf-like lexicon: common English words, then generated ones,
    so that word frequencies span the rare-word buckets."""
    rng = random.Random(1234)
    syll = "ka lo mi ne ra tu ve so dan mer ith ol ar en gar wyn bel cor pha stri".split()
    made = set()
    while len(made) < 4000:
        made.add("".join(rng.choice(syll) for _ in range(rng.randint(2, 4))))
    return WORDS + sorted(made)


LEXICON = _lexicon()
_WEIGHTS = [1.0 / (r + 1) for r in range(len(LEXICON))]


def book_text(book_id, size):
    """Deterministic PG-19-like text: CRLF lines wrapped near 70 columns,
    sentences and paragraphs, Zipf-distributed words, some non-ASCII."""
    rng = random.Random(book_id)
    lines, line, n = [], [], 0
    sentence_start = True
    while n < size:
        words = rng.choices(LEXICON, weights=_WEIGHTS, k=32)
        for w in words:
            if sentence_start:
                w = w[:1].upper() + w[1:]
                sentence_start = False
            if rng.random() < 0.08:
                w += rng.choice([".", ".", ",", ";", "!", "?"])
                sentence_start = w[-1] in ".!?"
            line.append(w)
            if sum(len(x) + 1 for x in line) > 66:
                text = " ".join(line)
                lines.append(text)
                n += len(text.encode()) + 2
                line = []
                if rng.random() < 0.1:
                    lines.append("")
                    n += 2
    if line:
        lines.append(" ".join(line))
    return ("\r\n".join(lines) + "\r\n").encode()


def make_bucket(root, books=None, sizes=(500, 30000)):
    """Writes metadata.csv and {split}/{id}.txt under root; returns {name: bytes}."""
    books = books or {"train": [101, 102, 103, 104, 105, 1006], "validation": [201, 202], "test": [301, 302, 303]}
    rng = random.Random(7)
    objs = {}
    meta = []
    for split, ids in books.items():
        os.makedirs(os.path.join(root, split), exist_ok=True)
        for i in ids:
            data = book_text(i, rng.randint(*sizes))
            name = f"{split}/{i}.txt"
            with open(os.path.join(root, name), "wb") as f:
                f.write(data)
            objs[name] = data
            meta.append(f"{i},Book {i} by Somebody,19{i % 100:02d},http://www.gutenberg.org/ebooks/{i}")
    data = ("\n".join(meta) + "\n").encode()
    with open(os.path.join(root, "metadata.csv"), "wb") as f:
        f.write(data)
    objs["metadata.csv"] = data
    return objs


class Server:
    """gcs_server.py in a subprocess on 127.0.0.1, stopped on exit."""

    def __init__(self, root, faults=None, page_size=1000, no_range=False, rate=0, workdir=None, log=True,
                 backlog=None):
        self.workdir = workdir or tempfile.mkdtemp(prefix="pg19-srv-")
        self.log = os.path.join(self.workdir, "requests.jsonl")
        args = [PY, os.path.join(HERE, "gcs_server.py"), root, "--page-size", str(page_size)]
        if log:
            args += ["--log", self.log]
        if faults:
            fpath = os.path.join(self.workdir, "faults.json")
            with open(fpath, "w") as f:
                json.dump(faults, f)
            args += ["--faults", fpath]
        if no_range:
            args.append("--no-range")
        if rate:
            args += ["--rate", str(rate)]
        if backlog:
            args += ["--backlog", str(backlog)]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        line = self.proc.stdout.readline().decode()
        if not line.startswith("PORT "):
            raise RuntimeError("server did not start: " + line)
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"

    def requests(self):
        if not os.path.exists(self.log):
            return []
        with open(self.log) as f:
            return [json.loads(l) for l in f if l.strip()]

    def object_requests(self, name=None):
        return [r for r in self.requests() if not r["path"].startswith("/storage/")
                and (name is None or r["path"].endswith("/" + name))]

    def stop(self):
        self.proc.kill()
        self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def tree_files(root):
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            full = os.path.join(dirpath, f)
            out[os.path.relpath(full, root)] = full
    return out


def sha256(data):
    return hashlib.sha256(data).hexdigest()
