#!/usr/bin/python3
"""The harness model in PyTorch (CPU), for `make bench`: the same
architecture (models/README.md) on the same safetensors weights, timed the
way `harness bench` times the C forward (batch of books x window tokens,
memories carried, logits of every token). Before timing it checks its logits
against `harness logits` on the same weights, so the two really compute the
same model. Needs Debian's python3-torch; `make bench` skips it otherwise.
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F


def load_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        assert t["dtype"] == "F32", "bench_torch reads F32 weights (harness init writes them)"
        b, e = t["data_offsets"]
        a = np.frombuffer(data[base + b:base + e], dtype="<f4").reshape(t["shape"])
        out[name] = torch.from_numpy(a.copy())
    return out


def rel_shift(x):
    """[..., qlen, klen]: Transformer-XL's pad-and-reshape relative shift."""
    *lead, q, k = x.shape
    x = torch.cat([x.new_zeros(*lead, q, 1), x], dim=-1).view(*lead, k + 1, q)
    return x[..., 1:, :].reshape(*lead, q, k)


class TorchModel:
    def __init__(self, cfg, W, batch):
        self.cfg, self.W, self.B = cfg, W, batch
        d = cfg["d_model"]
        self.eps = cfg.get("layer_norm_eps", 1e-5)
        span = cfg["window"] + cfg["memory"] + cfg.get("compressed_memory", 0)
        inv = 1.0 / (10000 ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
        pos = torch.arange(span - 1, -1, -1, dtype=torch.float64)[:, None] * inv[None]
        self.pos = torch.cat([pos.sin(), pos.cos()], dim=1).float()  # distance span-1 .. 0
        self.reset()

    def reset(self):
        d, L = self.cfg["d_model"], self.cfg["n_layer"]
        self.mem = [torch.zeros(self.B, 0, d) for _ in range(L)]
        self.cmem = [torch.zeros(self.B, 0, d) for _ in range(L)]

    def layer(self, l, h):
        cfg, W = self.cfg, self.W
        p = f"layers.{l}."
        B, qlen, d = h.shape
        H, dh = cfg["n_head"], cfg["d_head"]
        cat = torch.cat([self.cmem[l], self.mem[l], h], dim=1)
        klen = cat.shape[1]
        ln1 = (W[p + "ln1.weight"], W[p + "ln1.bias"])
        hn = F.layer_norm(h, (d,), *ln1, self.eps)
        cn = F.layer_norm(cat, (d,), *ln1, self.eps)
        q = F.linear(hn, W[p + "attn.q.weight"]).view(B, qlen, H, dh)
        k = F.linear(cn, W[p + "attn.k.weight"]).view(B, klen, H, dh)
        v = F.linear(cn, W[p + "attn.v.weight"]).view(B, klen, H, dh)
        r = F.linear(self.pos[-klen:], W[p + "attn.r.weight"]).view(klen, H, dh)
        ac = torch.einsum("bihd,bjhd->bhij", q + W[p + "attn.r_w_bias"], k)
        bd = rel_shift(torch.einsum("bihd,jhd->bhij", q + W[p + "attn.r_r_bias"], r))
        s = (ac + bd) / dh ** 0.5
        mlen = klen - qlen
        mask = torch.ones(qlen, klen, dtype=torch.bool).triu(1 + mlen)
        pr = s.masked_fill(mask, float("-inf")).softmax(dim=-1)
        out = torch.einsum("bhij,bjhd->bihd", pr, v).reshape(B, qlen, H * dh)
        # memory update: evicted rows compressed (conv kernel = stride = c)
        seq = torch.cat([self.mem[l], h], dim=1)
        n_evict = max(0, seq.shape[1] - cfg["memory"])
        ncm, c = cfg.get("compressed_memory", 0), cfg.get("compression_rate", 1)
        if ncm > 0 and n_evict >= c:
            assert cfg["compression"] == "conv", "bench_torch implements conv compression"
            g = n_evict // c
            new = F.conv1d(seq[:, :g * c].transpose(1, 2), W[p + "compress.weight"],
                           W[p + "compress.bias"], stride=c).transpose(1, 2)
            self.cmem[l] = torch.cat([self.cmem[l], new], dim=1)[:, -ncm:]
        self.mem[l] = seq[:, n_evict:]
        h = h + F.linear(out, W[p + "attn.o.weight"])
        hn = F.layer_norm(h, (d,), W[p + "ln2.weight"], W[p + "ln2.bias"], self.eps)
        ff = F.relu(F.linear(hn, W[p + "ff.w1.weight"], W[p + "ff.w1.bias"]))
        return h + F.linear(ff, W[p + "ff.w2.weight"], W[p + "ff.w2.bias"])

    def window(self, tokens):
        h = F.embedding(tokens, self.W["tok_emb.weight"])
        for l in range(self.cfg["n_layer"]):
            h = self.layer(l, h)
        h = F.layer_norm(h, (self.cfg["d_model"],), self.W["ln_f.weight"],
                         self.W["ln_f.bias"], self.eps)
        return F.linear(h, self.W["tok_emb.weight"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--harness", required=True)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    with open(a.config) as f:
        cfg = json.load(f)
    W = load_safetensors(a.weights)
    Wn, V = cfg["window"], cfg["vocab_size"]
    g = torch.Generator().manual_seed(1)
    toks = torch.randint(0, V, (a.batch, Wn), generator=g)
    with torch.no_grad():
        # same model? two windows of book 0 against `harness logits`
        m = TorchModel(cfg, W, 1)
        ref = torch.cat([m.window(toks[:1]), m.window(toks[:1])], dim=1)[0].numpy()
        with tempfile.TemporaryDirectory() as tmp:
            tp, lp = os.path.join(tmp, "t.bin"), os.path.join(tmp, "l.f32")
            np.concatenate([toks[0].numpy()] * 2).astype("<u4").tofile(tp)
            subprocess.run([a.harness, "logits", "--model", a.config, "--weights", a.weights,
                            "--tokens", tp, "--out", lp], check=True)
            got = np.fromfile(lp, dtype="<f4").reshape(2 * Wn, V)
        err = np.abs(got - ref).max() / np.abs(ref).max()
        print(f"pytorch vs harness logits, 2 windows: max relative difference {err:.2e}")
        if err > 1e-3:
            sys.exit("pytorch and harness disagree: not the same model")
        m = TorchModel(cfg, W, a.batch)
        m.window(toks)  # warm-up fills the memories
        n, t0 = 0, time.time()
        while time.time() - t0 < a.seconds or n < 2:
            m.window(toks)
            n += 1
        dt = time.time() - t0
    print(f"pytorch {torch.__version__} forward: batch {a.batch} x window {Wn}, {n} windows, "
          f"{a.threads} threads: {a.batch * Wn * n / dt:.1f} tokens/s")


if __name__ == "__main__":
    main()
