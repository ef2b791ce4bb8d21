#!/usr/bin/env python3
"""The test runner behind `make test`.

Runs every cmocka unit test binary in $PG19_TEST_BIN and every Python test
module tests/**/test_*.py, each speaking TAP (cmocka through
CMOCKA_MESSAGE_OUTPUT=TAP, Python through tests/tap.py), and ends with the
plain summary line `N passed, N failed, N skipped`.

Arguments, if any, are substrings: only tests whose path contains one run.
"""
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


def discover():
    progs = []
    bindir = os.environ.get("PG19_TEST_BIN", os.path.join(TOP, "build-san", "tests"))
    if os.path.isdir(bindir):
        for name in sorted(os.listdir(bindir)):
            p = os.path.join(bindir, name)
            if os.access(p, os.X_OK) and os.path.isfile(p):
                progs.append(("c", p))
    for root, _dirs, files in sorted(os.walk(HERE)):
        for f in sorted(files):
            if f.startswith("test_") and f.endswith(".py"):
                progs.append(("py", os.path.join(root, f)))
    return progs


TAP_LINE = re.compile(r"^(not ok|ok)\b\s*(\d+)?\s*(?:-\s*)?(.*)$")


def run_one(kind, path):
    env = dict(os.environ)
    env["CMOCKA_MESSAGE_OUTPUT"] = "TAP"
    env.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    if kind == "c":
        cmd = [path]
    else:
        cmd = [PY, os.path.join(HERE, "tap.py"), path]
    t0 = time.time()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=TOP)
    out = proc.stdout.decode("utf-8", "replace")
    passed = failed = skipped = 0
    names = []
    for line in out.splitlines():
        m = TAP_LINE.match(line)
        if not m:
            continue
        status, _num, rest = m.groups()
        if "# SKIP" in line or "# skip" in line:
            skipped += 1
            names.append(("SKIP", rest))
        elif status == "ok":
            passed += 1
        else:
            failed += 1
            names.append(("FAIL", rest))
    # A crash, a sanitizer report or a non-zero exit with no failing case is a failure.
    if proc.returncode != 0 and failed == 0:
        failed += 1
        names.append(("FAIL", f"{os.path.basename(path)} exited with status {proc.returncode}"))
    if passed + failed + skipped == 0:
        failed += 1
        names.append(("FAIL", f"{os.path.basename(path)} ran no test"))
    return passed, failed, skipped, names, out, time.time() - t0


def main():
    filters = sys.argv[1:]
    tot_p = tot_f = tot_s = 0
    for kind, path in discover():
        rel = os.path.relpath(path, TOP)
        if filters and not any(f in rel for f in filters):
            continue
        p, f, s, names, out, dt = run_one(kind, path)
        tot_p, tot_f, tot_s = tot_p + p, tot_f + f, tot_s + s
        print(f"{rel}: {p} passed, {f} failed, {s} skipped ({dt:.1f} s)", flush=True)
        for tag, n in names:
            print(f"    {tag} {n}")
        if f:
            print("---- output of " + rel)
            print(out[-20000:])
            print("----")
    if tot_p + tot_f + tot_s == 0:
        print("no test found", flush=True)
        tot_f = 1
    print(f"{tot_p} passed, {tot_f} failed, {tot_s} skipped")
    return 1 if tot_f else 0


if __name__ == "__main__":
    sys.exit(main())
