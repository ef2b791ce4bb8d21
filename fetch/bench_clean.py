#!/usr/bin/env python3
"""make bench: `fetch clean` throughput against a named baseline.

Input: every raw text of $PG19_TEST_CORPUS/raw-pg-2003-2004 and raw-pg-modern
(or, without the corpus, 150 generated fixture files of about 200 KB).

  ours      bin/fetch clean --dir RAW -o OUT   (one process, one core;
            ICU decoding, licence cut, NFC, atomic fsync'd writes)
  baseline  "c-w/gutenberg in Python": a re-implementation of the c-w/gutenberg
            strip_headers algorithm (line-prefix start/end marker lists, start
            markers honoured in the first 600 lines, end markers after line 100),
            with UTF-8-else-cp1252 decoding, NFC and LF output, one process.

Both write to the same kind of folder (/dev/shm when present) and run
alternately (common/benchlib.py: baseline, ours, ... 15 pairs after a warm-up
pair: a run takes under a second, so 5 pairs let one busy second move the
median; PG19_BENCH_PAIRS sets it); medians and spread are printed. Throughput per core is input
megabytes (10^6 bytes) per CPU second (user+sys), which a busy machine
disturbs less than wall time; both are printed. Ours also fsyncs every
output file (crash-safe writes); the baseline does not. Fair: the baseline
is the header/footer stripping a Python user would reach for
(c-w/gutenberg's strip_headers) with the same decoding and NFC, one process
on one core like ours, reading the same files from the same page cache.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import unicodedata

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "tests", "fetch_gutenberg"))
sys.path.insert(0, os.path.join(TOP, "common"))
import benchlib  # noqa: E402

DEFAULT_PAIRS = 15

# c-w/gutenberg's marker lists (the commonest entries).
START_MARKERS = (
    "*END*THE SMALL PRINT", "*** START OF THE PROJECT GUTENBERG",
    "*** START OF THIS PROJECT GUTENBERG", "This etext was prepared by", "E-text prepared by",
    "Produced by", "Distributed Proofreading Team", "Proofreading Team at http://www.pgdp.net",
    "http://www.pgdp.net", "by The Internet Archive)", "Internet Archive)",
    "material from the Google Print project", "*END THE SMALL PRINT",
    "***START OF THE PROJECT GUTENBERG", "This etext was produced by",
    "*** START OF THE COPYRIGHTED", "The Project Gutenberg", "Beginning of this Project Gutenberg",
    "Project Gutenberg Online Distributed", "Gutenberg Online Distributed",
    "the Project Gutenberg Online Distributed", "Project Gutenberg TEI",
    "This eBook was prepared by", "This Etext was prepared by",
    "This Project Gutenberg Etext was prepared by", "Gutenberg Distributed Proofreaders",
    "Project Gutenberg Distributed Proofreaders", "**The Project Gutenberg", "*SMALL PRINT!",
    "More information about this book is at the top of this file.",
    "tells you about restrictions in how the file may be used.",
    "We need your donations more than ever!", " *** START OF THIS PROJECT GUTENBERG",
    "****     SMALL PRINT!", '["Small Print" V.', "      (http://www.ibiblio.org/gutenberg/",
    "and the Project Gutenberg Online Distributed Proofreading Team",
)
END_MARKERS = (
    "*** END OF THE PROJECT GUTENBERG", "*** END OF THIS PROJECT GUTENBERG",
    "***END OF THE PROJECT GUTENBERG", "End of the Project Gutenberg",
    "End of The Project Gutenberg", "by Project Gutenberg", "End of Project Gutenberg",
    "End of this Project Gutenberg", "        ***END OF THE PROJECT GUTENBERG",
    "*** END OF THE COPYRIGHTED", "End of this is COPYRIGHTED",
    "**This is a COPYRIGHTED Project Gutenberg Etext, Details Above**",
    "The Project Gutenberg Etext of ",
    "More information about this book is at the top of this file.",
    "We need your donations more than ever!", "END OF PROJECT GUTENBERG",
    " End of the Project Gutenberg", " *** END OF THIS PROJECT GUTENBERG",
)
LEGALESE_START = ("<<THIS ELECTRONIC VERSION OF",)
LEGALESE_END = ("SERVICE THAT CHARGES FOR DOWNLOAD",)


def baseline_strip(text):
    kept = []
    n = 0
    in_legalese = False
    for line in text.splitlines():
        if n <= 600 and line.startswith(START_MARKERS):
            kept = []
            continue
        if n >= 100 and line.startswith(END_MARKERS):
            break
        if line.startswith(LEGALESE_START):
            in_legalese = True
            continue
        if line.startswith(LEGALESE_END):
            in_legalese = False
            continue
        if not in_legalese:
            kept.append(line)
            n += 1
    return "\n".join(kept).strip("\n") + "\n"


def baseline_clean_dir(src, dst):
    for name in sorted(os.listdir(src)):
        if not name.endswith(".txt"):
            continue
        with open(os.path.join(src, name), "rb") as f:
            raw = f.read()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = raw.decode("cp1252", errors="replace")
        text = baseline_strip(unicodedata.normalize("NFC", text))
        with open(os.path.join(dst, name), "w", encoding="utf-8") as f:
            f.write(text)


def gather(work):
    """Copies (or generates) the input files into work/raw; returns (dir, bytes, files)."""
    raw = os.path.join(work, "raw")
    os.makedirs(raw)
    corpus = os.environ.get("PG19_TEST_CORPUS")
    if corpus and os.path.isdir(corpus):
        subs = ["raw-pg-2003-2004", "raw-pg-modern/vyjayanv-hub", "raw-pg-modern/haruka0221"]
        for sub in subs:
            d = os.path.join(corpus, sub)
            for n in sorted(os.listdir(d)):
                if n.endswith(".txt"):
                    # a symlink: the corpus is read, never copied
                    os.symlink(os.path.join(d, n), os.path.join(raw, sub.replace("/", "_") + n))
        what = "real corpus: " + ", ".join(subs)
    else:
        from gbtools import BODY, make_raw
        eras = ["1994", "2003", "2004-nosp", "2021", "2024"]
        for i in range(150):
            body = (BODY * 1200).replace("CHAPTER I", f"CHAPTER {i}")
            enc = "utf-8" if i % 3 or eras[i % 5] == "2024" else "cp1252"
            with open(os.path.join(raw, f"{10000 + i}.txt"), "wb") as f:
                f.write(make_raw(eras[i % 5], body, enc))
        what = "generated fixtures (PG19_TEST_CORPUS unset)"
    files = [os.path.join(raw, n) for n in os.listdir(raw)]
    return raw, sum(os.path.getsize(p) for p in files), len(files), what


def main():
    tool = os.path.join(TOP, "bin", "fetch")
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory(dir=base) as work:
        raw, nbytes, nfiles, what = gather(work)
        out_ours, out_base = os.path.join(work, "ours"), os.path.join(work, "base")

        def ours():
            shutil.rmtree(out_ours, ignore_errors=True)
            env = dict(os.environ, PG19_PROGRESS="0")
            subprocess.run([tool, "clean", "--dir", raw, "-o", out_ours], check=True, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def baseline():
            shutil.rmtree(out_base, ignore_errors=True)
            os.makedirs(out_base)
            baseline_clean_dir(raw, out_base)

        mb = nbytes / 1e6
        print(f"input: {nfiles} files, {mb:.1f} MB ({what})")
        cpu = benchlib.pin_one_cpu()
        benchlib.print_machine(f"1 (both are one process, both pinned to CPU {cpu})")
        base, mine = benchlib.alternate(lambda: benchlib.timed(baseline)[:2],
                                        lambda: benchlib.timed(ours)[:2],
                                        benchlib.n_pairs(DEFAULT_PAIRS))
        benchlib.result("fetch clean vs c-w/gutenberg algorithm in Python, per core",
                        [mb / o["value"][1] for o in mine], [mb / b["value"][1] for b in base],
                        "MB/s per CPU second", True, 1, baseline_name="python")
        benchlib.result("fetch clean vs c-w/gutenberg algorithm in Python, wall",
                        [mb / o["value"][0] for o in mine], [mb / b["value"][0] for b in base],
                        "MB/s", True, 1, baseline_name="python")


if __name__ == "__main__":
    main()
