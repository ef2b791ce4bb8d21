#!/usr/bin/python3
"""Parity of one harness device against another (the CPU forward is the
reference): used by tests/harness/test_gpu.py and scripts/gpu-check.sh, and
runnable on any machine with `--device cpu` on both sides (which must agree
exactly), so that its logic is exercised without a GPU.

  gpu_parity.py logits --harness BIN --device cuda [--precision fp32] [--tokens N]
                       [--models txl-tiny,ct-tiny:conv,...] [--tol 1e-4]
      `harness logits` of each model (random init, seed 1) on N random
      tokens on the CPU and on the device: max |a - b| / max |a| <= tol.
      ct-tiny:F runs ct-tiny with compression function F.
  gpu_parity.py nll --harness BIN --device cuda --shards DIR --split S --model M
                    [--precision bf16] [--batch N] [--nll-tol X] [--ppl-tol 0.005]
      `harness run` on both: per-token NLL max and mean absolute difference
      (max <= nll-tol) and word perplexity within ppl-tol relative.
Prints one line per check and a last line "parity: ok" or "parity: FAILED".
Exit status 0 only when every check passed.
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COMPRESSIONS = ("conv", "dilated_conv", "max_pool", "mean_pool", "most_used")


def gpu_env():
    """The sanitizer build needs ASan's shadow gap open for the CUDA driver,
    and the driver's allocations are not leaks of ours."""
    env = dict(os.environ)
    opts = env.get("ASAN_OPTIONS", "")
    env["ASAN_OPTIONS"] = ":".join(x for x in (opts, "protect_shadow_gap=0", "detect_leaks=0")
                                   if x)
    return env


def model_config(spec):
    """'txl-tiny', 'ct-tiny:most_used', 'bench-mid' or a path: (name, dict)."""
    name, _, comp = spec.partition(":")
    path = name if name.endswith(".json") else os.path.join(TOP, "models", name + ".json")
    with open(path) as f:
        cfg = json.load(f)
    if comp:
        cfg["compression"] = comp
        cfg["name"] = f"{cfg['name']}-{comp}"
        if comp == "dilated_conv":
            cfg.setdefault("dilation", 2)
    return cfg["name"], cfg


def run(harness, args, env=None):
    p = subprocess.run([harness, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=env or gpu_env())
    if p.returncode != 0:
        raise RuntimeError(f"harness {' '.join(args)}: {p.stderr.decode().strip()}")
    return p


def logits(harness, cfg_path, tokens_path, out, device, precision=None, window=None):
    args = ["logits", "--model", cfg_path, "--random-init", "1", "--tokens", tokens_path,
            "--out", out, "--device", device]
    if precision:
        args += ["--precision", precision]
    if window:
        args += ["--window", str(window)]
    run(harness, args)
    return np.fromfile(out, dtype="<f4")


def logits_parity(harness, spec, n_tokens, device, precision="fp32", tmp=None, seed=7):
    """max |cpu - device| / max |cpu| over the logits of n_tokens tokens."""
    name, cfg = model_config(spec)
    with tempfile.TemporaryDirectory(dir=tmp) as d:
        cpath = os.path.join(d, name + ".json")
        with open(cpath, "w") as f:
            json.dump(cfg, f)
        toks = np.random.default_rng(seed).integers(0, cfg["vocab_size"], n_tokens)
        tpath = os.path.join(d, "tokens.u32")
        with open(tpath, "wb") as f:
            f.write(struct.pack(f"<{n_tokens}I", *[int(t) for t in toks]))
        ref = logits(harness, cpath, tpath, os.path.join(d, "cpu.f32"), "cpu")
        got = logits(harness, cpath, tpath, os.path.join(d, "dev.f32"), device, precision)
        if ref.shape != got.shape:
            raise RuntimeError(f"{name}: {got.shape} logits, expected {ref.shape}")
        return float(np.max(np.abs(got - ref)) / np.max(np.abs(ref)))


def read_nll_dump(path):
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"PG19NLL1", path
    nb, nt = struct.unpack_from("<QQ", data, 16)
    return np.frombuffer(data, dtype="<f4", count=nt, offset=32 + 16 * nb)


def harness_run(harness, shards, split, model, device, out_dir, tag, precision=None,
                batch=None, extra=(), launcher=()):
    out = os.path.join(out_dir, f"{tag}.json")
    dump = os.path.join(out_dir, f"{tag}.nll")
    args = ["run", "--model", model, "--random-init", "1", "--split", split, "--shards",
            shards, "--out", out, "--nll-dump", dump, "--device", device, *extra]
    if precision:
        args += ["--precision", precision]
    if batch:
        args += ["--batch", str(batch)]
    p = subprocess.run([*launcher, harness, *args], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=gpu_env())
    if p.returncode != 0:
        raise RuntimeError(f"harness {' '.join(args)}: {p.stderr.decode().strip()}")
    with open(out) as f:
        return json.load(f), dump, p.stderr.decode()


def nll_parity(harness, shards, split, model, device, precision=None, batch=None, tmp=None,
               extra=()):
    """(max |dNLL|, mean |dNLL|, relative word-ppl difference, cpu json, device json)"""
    with tempfile.TemporaryDirectory(dir=tmp) as d:
        a, adump, _ = harness_run(harness, shards, split, model, "cpu", d, "cpu", extra=extra)
        b, bdump, _ = harness_run(harness, shards, split, model, device, d, "dev", precision,
                                  batch, extra=extra)
        x, y = read_nll_dump(adump), read_nll_dump(bdump)
        diff = np.abs(x.astype(np.float64) - y.astype(np.float64))
        ppl_a, ppl_b = a["word_ppl_exact"]["value"], b["word_ppl_exact"]["value"]
        return float(diff.max()), float(diff.mean()), abs(ppl_b - ppl_a) / ppl_a, a, b


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=("logits", "nll"))
    ap.add_argument("--harness", default=os.path.join(TOP, "bin", "harness"))
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--precision")
    ap.add_argument("--tokens", type=int, default=400)
    ap.add_argument("--models", default="txl-tiny," + ",".join(
        "ct-tiny:" + c for c in COMPRESSIONS))
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--shards")
    ap.add_argument("--split", default="test")
    ap.add_argument("--model", default="ct-tiny")
    ap.add_argument("--batch", type=int)
    ap.add_argument("--nll-tol", type=float, default=0.1)
    ap.add_argument("--ppl-tol", type=float, default=0.005)
    a = ap.parse_args()
    ok = True
    if a.what == "logits":
        for spec in a.models.split(","):
            err = logits_parity(a.harness, spec, a.tokens, a.device, a.precision or "fp32")
            good = err <= a.tol
            ok &= good
            print(f"logits {spec:24s} {a.tokens} tokens, {a.device} "
                  f"{a.precision or 'fp32'} vs cpu: max rel error {err:.3g} "
                  f"(tolerance {a.tol:g}) {'ok' if good else 'FAILED'}", flush=True)
    else:
        mx, mean, dppl, ra, rb = nll_parity(a.harness, a.shards, a.split, a.model, a.device,
                                            a.precision, a.batch)
        good = mx <= a.nll_tol and dppl <= a.ppl_tol
        ok &= good
        print(f"nll {a.model} on {a.split} ({ra['totals']['tokens']} tokens), {a.device} "
              f"{a.precision or 'default'} vs cpu: per-token |dNLL| max {mx:.3g} mean "
              f"{mean:.3g} (tolerance {a.nll_tol:g}); word ppl {ra['word_ppl_exact']['value']:.6g}"
              f" vs {rb['word_ppl_exact']['value']:.6g}, rel {dppl:.3g} (tolerance "
              f"{a.ppl_tol:g}) {'ok' if good else 'FAILED'}", flush=True)
    print("parity: ok" if ok else "parity: FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
