#!/usr/bin/env python3
"""The harness model in PyTorch on a GPU (bf16, inference mode), eager and
torch.compile, for scripts/gpu-check.sh: the baseline of `harness bench
--device cuda`. Same architecture as harness/bench_torch.py (conv
compression), same safetensors weights, same batch and window; steady
state (memories full), NLLs not computed (logits only), so PyTorch is
timed on slightly less work than the harness.

  bench_torch_gpu.py --config C.json --weights W.safetensors --batch B
                     [--windows N] [--compile] [--check-harness BIN]

--check-harness runs two windows of one book in fp32 (TF32 off) against
`harness logits --device cpu` first, so both compute the same model.
Prints "pytorch <mode> forward: ... tokens/s".
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_torch import load_safetensors, rel_shift  # noqa: E402


def make_layer_step(cfg):
    """One layer as a pure function (what torch.compile sees): returns the
    new hidden state and the layer's new memory and compressed memory."""
    H, dh, d = cfg["n_head"], cfg["d_head"], cfg["d_model"]
    nm, ncm = cfg["memory"], cfg.get("compressed_memory", 0)
    c, eps = cfg.get("compression_rate", 1), cfg.get("layer_norm_eps", 1e-5)

    def step(h, mem, cmem, pos, ln1w, ln1b, wq, wk, wv, wr, u, vb, wo, ln2w, ln2b, w1, b1, w2,
             b2, cw, cb):
        B, qlen, _ = h.shape
        cat = torch.cat([cmem, mem, h], dim=1)
        klen = cat.shape[1]
        hn = F.layer_norm(h, (d,), ln1w, ln1b, eps)
        cn = F.layer_norm(cat, (d,), ln1w, ln1b, eps)
        q = F.linear(hn, wq).view(B, qlen, H, dh)
        k = F.linear(cn, wk).view(B, klen, H, dh)
        v = F.linear(cn, wv).view(B, klen, H, dh)
        r = F.linear(pos[-klen:], wr).view(klen, H, dh)
        ac = torch.einsum("bihd,bjhd->bhij", q + u, k)
        bd = rel_shift(torch.einsum("bihd,jhd->bhij", q + vb, r))
        s = (ac + bd) / dh ** 0.5
        mask = torch.ones(qlen, klen, dtype=torch.bool, device=h.device).triu(1 + klen - qlen)
        pr = s.masked_fill(mask, float("-inf")).softmax(dim=-1)
        out = torch.einsum("bhij,bjhd->bihd", pr, v).reshape(B, qlen, H * dh)
        seq = torch.cat([mem, h], dim=1)
        n_evict = max(0, seq.shape[1] - nm)
        if ncm > 0 and n_evict >= c:
            g = n_evict // c
            new = F.conv1d(seq[:, :g * c].transpose(1, 2), cw, cb, stride=c).transpose(1, 2)
            cmem = torch.cat([cmem, new], dim=1)[:, -ncm:]
        mem = seq[:, n_evict:]
        h = h + F.linear(out, wo)
        hn = F.layer_norm(h, (d,), ln2w, ln2b, eps)
        h = h + F.linear(F.relu(F.linear(hn, w1, b1)), w2, b2)
        return h, mem, cmem

    return step


class GpuModel:
    def __init__(self, cfg, W, batch, dtype, compiled, device="cuda"):
        self.cfg, self.B = cfg, batch
        dev = torch.device(device)
        self.W = {k: v.to(dev, dtype) for k, v in W.items()}
        d = cfg["d_model"]
        span = cfg["window"] + cfg["memory"] + cfg.get("compressed_memory", 0)
        inv = 1.0 / (10000 ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
        pos = torch.arange(span - 1, -1, -1, dtype=torch.float64)[:, None] * inv[None]
        self.pos = torch.cat([pos.sin(), pos.cos()], dim=1).to(dev, dtype)
        self.dtype, self.dev = dtype, dev
        step = make_layer_step(cfg)
        if compiled:
            torch._dynamo.config.cache_size_limit = 64
            step = torch.compile(step)
        self.step = step
        L = cfg["n_layer"]
        self.mem = [torch.zeros(batch, 0, d, device=dev, dtype=dtype) for _ in range(L)]
        self.cmem = [torch.zeros(batch, 0, d, device=dev, dtype=dtype) for _ in range(L)]

    def window(self, tokens):
        W, d = self.W, self.cfg["d_model"]
        h = F.embedding(tokens, W["tok_emb.weight"])
        for l in range(self.cfg["n_layer"]):
            p = f"layers.{l}."
            cw = W.get(p + "compress.weight")
            cb = W.get(p + "compress.bias")
            h, self.mem[l], self.cmem[l] = self.step(
                h, self.mem[l], self.cmem[l], self.pos, W[p + "ln1.weight"], W[p + "ln1.bias"],
                W[p + "attn.q.weight"], W[p + "attn.k.weight"], W[p + "attn.v.weight"],
                W[p + "attn.r.weight"], W[p + "attn.r_w_bias"], W[p + "attn.r_r_bias"],
                W[p + "attn.o.weight"], W[p + "ln2.weight"], W[p + "ln2.bias"],
                W[p + "ff.w1.weight"], W[p + "ff.w1.bias"], W[p + "ff.w2.weight"],
                W[p + "ff.w2.bias"], cw, cb)
        h = F.layer_norm(h, (d,), W["ln_f.weight"], W["ln_f.bias"], self.cfg.get(
            "layer_norm_eps", 1e-5))
        return F.linear(h, W["tok_emb.weight"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--windows", type=int, default=10)
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--check-harness")
    ap.add_argument("--device", default="cuda", help="cpu: exercise this script without a GPU")
    a = ap.parse_args()
    sync = torch.cuda.synchronize if a.device == "cuda" else (lambda: None)
    with open(a.config) as f:
        cfg = json.load(f)
    assert cfg.get("compression", "conv") in ("conv", None), "conv compression only"
    W = load_safetensors(a.weights)
    Wn, V = cfg["window"], cfg["vocab_size"]
    g = torch.Generator().manual_seed(1)
    toks = torch.randint(0, V, (a.batch, Wn), generator=g)
    torch.backends.cuda.matmul.allow_tf32 = False
    with torch.inference_mode():
        if a.check_harness:
            m = GpuModel(cfg, W, 1, torch.float32, False, a.device)
            t0 = toks[:1].to(a.device)
            ref = torch.cat([m.window(t0), m.window(t0)], dim=1)[0].float().cpu().numpy()
            with tempfile.TemporaryDirectory() as tmp:
                tp, lp = os.path.join(tmp, "t.bin"), os.path.join(tmp, "l.f32")
                np.concatenate([toks[0].numpy()] * 2).astype("<u4").tofile(tp)
                subprocess.run([a.check_harness, "logits", "--model", a.config, "--weights",
                                a.weights, "--tokens", tp, "--out", lp, "--device", "cpu"],
                               check=True)
                got = np.fromfile(lp, dtype="<f4").reshape(2 * Wn, V)
            err = np.abs(got - ref).max() / np.abs(ref).max()
            print(f"pytorch ({a.device} fp32) vs harness (cpu) logits, 2 windows: max relative "
                  f"difference {err:.2e}", flush=True)
            if err > 1e-3:
                sys.exit("pytorch and harness disagree: not the same model")
            del m
        m = GpuModel(cfg, W, a.batch, torch.bfloat16, a.compile, a.device)
        x = toks.to(a.device)
        t_warm = time.time()
        warm = 2 + (cfg.get("compressed_memory", 0) * cfg.get("compression_rate", 1)) // Wn
        for _ in range(warm + 1):  # fills the memories (and compiles)
            m.window(x)
        sync()
        t_warm = time.time() - t_warm
        t0 = time.time()
        for _ in range(a.windows):
            m.window(x)
        sync()
        dt = time.time() - t0
    mode = "torch.compile" if a.compile else "eager"
    name = torch.cuda.get_device_name() if a.device == "cuda" else "cpu"
    print(f"pytorch {torch.__version__} {mode} forward (bf16, {name}): "
          f"batch {a.batch} x window {Wn}, {a.windows} windows: "
          f"{a.batch * Wn * a.windows / dt:.1f} tokens/s (warm-up {t_warm:.1f} s)")


if __name__ == "__main__":
    main()
