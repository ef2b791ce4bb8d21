#!/usr/bin/env python3
"""Benchmark: `fetch pg19` against `curl --parallel` on 2,000 small files.

Both download the same 2,000 objects from the same loopback server
(gcs_server.py) at the same concurrency. fetch also lists the bucket,
verifies MD5/CRC32C/SHA-256 of every file and fsyncs it; curl does none of
that. Prints both times and the ratio curl/fetch (> 1: fetch is faster).
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

from fetchlib import BIN, Server, book_text

N_FILES = int(os.environ.get("BENCH_FETCH_FILES", "2000"))
JOBS = int(os.environ.get("BENCH_FETCH_JOBS", "16"))
REPEAT = int(os.environ.get("BENCH_FETCH_REPEAT", "3"))


def main():
    if not shutil.which("curl"):
        print("bench_fetch: curl is not installed (make deps)")
        return 1
    tmp = tempfile.mkdtemp(prefix="pg19-bench-fetch-")
    try:
        root = os.path.join(tmp, "bucket")
        os.makedirs(os.path.join(root, "train"))
        names = []
        for i in range(N_FILES):
            name = f"train/{100000 + i}.txt"
            with open(os.path.join(root, name), "wb") as f:
                f.write(book_text(i, 2000 + (i * 37) % 6000))
            names.append(name)
        with open(os.path.join(root, "metadata.csv"), "w") as f:
            f.write("1,x,1900,http://example\n")
        names.append("metadata.csv")
        with Server(root, log=False) as srv:
            # warm the server's checksum cache so neither side pays for it
            subprocess.run([os.path.join(BIN, "fetch"), "pg19", "--base-url", srv.url, "--split", "train",
                            "--limit", "0", "--out", os.path.join(tmp, "warm")], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            import urllib.request
            urllib.request.urlopen(srv.url + "/storage/v1/b/deepmind-gutenberg/o?prefix=train/").read()

            out_fetch = os.path.join(tmp, "fetch")
            out_curl = os.path.join(tmp, "curl")
            cfg = os.path.join(tmp, "curl.cfg")
            with open(cfg, "w") as f:
                for n in names:
                    f.write(f'url = "{srv.url}/deepmind-gutenberg/{n}"\noutput = "{out_curl}/{n}"\n')
            # alternate the two, REPEAT times each, and compare medians
            t_fetch, t_curl = [], []
            for _ in range(REPEAT):
                shutil.rmtree(out_fetch, ignore_errors=True)
                t0 = time.time()
                r = subprocess.run([os.path.join(BIN, "fetch"), "pg19", "--base-url", srv.url, "--split", "train",
                                    "--jobs", str(JOBS), "--out", out_fetch],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                t_fetch.append(time.time() - t0)
                if r.returncode != 0:
                    print(r.stderr.decode())
                    return 1
                shutil.rmtree(out_curl, ignore_errors=True)
                t0 = time.time()
                r = subprocess.run(["curl", "--silent", "--fail", "--create-dirs", "--parallel",
                                    "--parallel-max", str(JOBS), "--config", cfg], stderr=subprocess.PIPE)
                t_curl.append(time.time() - t0)
                if r.returncode != 0:
                    print(r.stderr.decode())
                    return 1
            t_fetch = sorted(t_fetch)[len(t_fetch) // 2]
            t_curl = sorted(t_curl)[len(t_curl) // 2]
        for n in names:
            a = open(os.path.join(out_fetch, n), "rb").read()
            b = open(os.path.join(out_curl, n), "rb").read()
            if a != b:
                print(f"bench_fetch: {n} differs between fetch and curl")
                return 1
        print(f"fetch pg19 ({len(names)} files, {JOBS} jobs, listed + verified + synced, median of {REPEAT}): {t_fetch:.2f} s")
        print(f"curl --parallel --parallel-max {JOBS} (baseline, no verification, median of {REPEAT}): {t_curl:.2f} s")
        print(f"ratio curl/fetch: {t_curl / t_fetch:.2f}x  (> 1 means fetch is faster)")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
