"""The harness model in PyTorch (CPU): the baseline of `make bench`
(harness/bench.py). The same architecture (models/README.md) on the same
safetensors weights, written as a competent PyTorch user writes inference:

  - torch.inference_mode, float32, the batch the harness uses;
  - the keys and values of memory and compressed-memory rows cached with the
    memories (a row's LayerNorm and projections never change), so a window
    projects only its own rows and the rows it compresses, as the harness
    does; the projected positions R Wr^T computed once per layer;
  - attention as batched matmuls, the 1/sqrt(d_head) scale on the queries
    rather than the scores, Transformer-XL's relative shift as a strided
    view (rel_shift_view) added in place, the causal masks cached: the
    [B, H, qlen, klen] scores are written twice and read once before the
    softmax (the pad-and-reshape shift, a separate scale and an out-of-place
    sum made 3 more passes over them, 5% of a bench-mid window).

TorchInferenceModel therefore does the same arithmetic as the harness (about
17% less than Transformer-XL code that re-projects the memories every
window). Threads and the OpenMP wait policy are set by the caller, the same
as the harness's. The training baseline is harness/bench_torch_train.py.
check_agreement() compares its logits with `harness logits` over enough
windows that the compressed memory fills and its FIFO drops rows.
"""
import json
import os
import struct
import subprocess
import tempfile

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
        if t["dtype"] != "F32":
            raise ValueError(f"{path}: {name} is {t['dtype']}; bench_torch reads F32 "
                             "(harness init writes F32)")
        b, e = t["data_offsets"]
        a = np.frombuffer(data[base + b:base + e], dtype="<f4").reshape(t["shape"])
        out[name] = torch.from_numpy(a.copy())
    return out


def rel_shift_view(x):
    """[..., qlen, klen] contiguous, column m for relative distance klen-1-m:
    a view whose [i, j] is x[i, j + qlen-1-i], the distance between query i
    (at klen-qlen+i) and key j, without a copy (Transformer-XL's relative
    shift as the strides it amounts to). Entries above the causal diagonal
    read into the next row: they are masked."""
    x = x.contiguous()
    *lead, q, k = x.shape
    stride = list(x.stride())
    stride[-2] = k - 1
    return x.as_strided((*lead, q, k), stride, x.storage_offset() + q - 1)


def rel_shift(x):
    """[..., qlen, klen]: Transformer-XL's pad-and-reshape relative shift."""
    *lead, q, k = x.shape
    x = torch.cat([x.new_zeros(*lead, q, 1), x], dim=-1).view(*lead, k + 1, q)
    return x[..., 1:, :].reshape(*lead, q, k)


class TorchInferenceModel:
    def __init__(self, cfg, W, batch):
        if cfg.get("compressed_memory", 0) and cfg.get("compression") != "conv":
            raise ValueError("bench_torch implements conv compression only")
        self.cfg, self.W, self.B = cfg, W, batch
        d, L = cfg["d_model"], cfg["n_layer"]
        self.H, self.dh = cfg["n_head"], cfg["d_head"]
        self.eps = cfg.get("layer_norm_eps", 1e-5)
        span = cfg["window"] + cfg["memory"] + cfg.get("compressed_memory", 0)
        inv = 1.0 / (10000 ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
        pos = torch.arange(span - 1, -1, -1, dtype=torch.float64)[:, None] * inv[None]
        pos = torch.cat([pos.sin(), pos.cos()], dim=1).float()  # distance span-1 .. 0
        with torch.inference_mode():
            # projected positions, once per layer: [span, H, dh]
            self.r = [F.linear(pos, W[f"layers.{l}.attn.r.weight"]).view(span, self.H, self.dh)
                      for l in range(L)]
        self.masks = {}
        self.reset()

    def reset(self):
        d, L, HD = self.cfg["d_model"], self.cfg["n_layer"], self.H * self.dh
        z = lambda w: torch.zeros(self.B, 0, w)  # noqa: E731
        self.mem = [z(d) for _ in range(L)]
        self.kmem, self.vmem = [z(HD) for _ in range(L)], [z(HD) for _ in range(L)]
        self.kcm, self.vcm = [z(HD) for _ in range(L)], [z(HD) for _ in range(L)]

    def mask(self, qlen, klen):
        key = (qlen, klen)
        if key not in self.masks:
            self.masks[key] = torch.ones(qlen, klen, dtype=torch.bool).triu(1 + klen - qlen)
        return self.masks[key]

    def layer(self, l, h):
        cfg, W = self.cfg, self.W
        p = f"layers.{l}."
        B, qlen, d = h.shape
        H, dh = self.H, self.dh
        ln1 = (W[p + "ln1.weight"], W[p + "ln1.bias"])
        hn = F.layer_norm(h, (d,), *ln1, self.eps)
        q = F.linear(hn, W[p + "attn.q.weight"]).view(B, qlen, H, dh)
        k_new = F.linear(hn, W[p + "attn.k.weight"])
        v_new = F.linear(hn, W[p + "attn.v.weight"])
        k = torch.cat([self.kcm[l], self.kmem[l], k_new], dim=1)
        v = torch.cat([self.vcm[l], self.vmem[l], v_new], dim=1)
        klen = k.shape[1]
        k, v = k.view(B, klen, H, dh), v.view(B, klen, H, dh)
        r = self.r[l][-klen:]
        # the scale goes on the queries ([B, qlen, H, dh]), not on the scores
        # ([B, H, qlen, klen], up to 3x as many numbers); the relative shift
        # is a strided view and the position term is added in place, so the
        # scores are written twice and read once before the softmax
        scale = 1.0 / dh ** 0.5
        qh = q.transpose(1, 2)  # [B, H, qlen, dh]
        s = torch.matmul((qh + W[p + "attn.r_w_bias"][:, None]) * scale, k.permute(0, 2, 3, 1))
        bd = torch.matmul((qh + W[p + "attn.r_r_bias"][:, None]) * scale, r.permute(1, 2, 0))
        s.add_(rel_shift_view(bd))
        pr = s.masked_fill_(self.mask(qlen, klen), float("-inf")).softmax(dim=-1)
        out = torch.einsum("bhij,bjhd->bihd", pr, v).reshape(B, qlen, H * dh)
        # memories take the layer input; evicted rows are compressed (conv,
        # kernel = stride = c) and their keys and values computed once
        seq = torch.cat([self.mem[l], h], dim=1)
        n_evict = max(0, seq.shape[1] - cfg["memory"])
        ncm, c = cfg.get("compressed_memory", 0), cfg.get("compression_rate", 1)
        if ncm > 0 and n_evict >= c:
            g = n_evict // c
            new = F.conv1d(seq[:, :g * c].transpose(1, 2), W[p + "compress.weight"],
                           W[p + "compress.bias"], stride=c).transpose(1, 2)
            nn_ = F.layer_norm(new, (d,), *ln1, self.eps)
            self.kcm[l] = torch.cat([self.kcm[l], F.linear(nn_, W[p + "attn.k.weight"])], 1)[:, -ncm:]
            self.vcm[l] = torch.cat([self.vcm[l], F.linear(nn_, W[p + "attn.v.weight"])], 1)[:, -ncm:]
        self.mem[l] = seq[:, n_evict:]
        self.kmem[l] = torch.cat([self.kmem[l], k_new], dim=1)[:, n_evict:]
        self.vmem[l] = torch.cat([self.vmem[l], v_new], dim=1)[:, n_evict:]
        h = h + F.linear(out, W[p + "attn.o.weight"])
        hn = F.layer_norm(h, (d,), W[p + "ln2.weight"], W[p + "ln2.bias"], self.eps)
        ff = F.relu(F.linear(hn, W[p + "ff.w1.weight"], W[p + "ff.w1.bias"]))
        return h + F.linear(ff, W[p + "ff.w2.weight"], W[p + "ff.w2.bias"])

    def window(self, tokens):
        """Logits [B, qlen, V] of one window; memories carried."""
        h = F.embedding(tokens, self.W["tok_emb.weight"])
        for l in range(self.cfg["n_layer"]):
            h = self.layer(l, h)
        h = F.layer_norm(h, (self.cfg["d_model"],), self.W["ln_f.weight"],
                         self.W["ln_f.bias"], self.eps)
        return F.linear(h, self.W["tok_emb.weight"])


def check_agreement(cfg, W, harness, config_path, weights_path, windows):
    """Max |difference| / max |logit| between this model and `harness
    logits` over `windows` windows of one book (random tokens)."""
    Wn, V = cfg["window"], cfg["vocab_size"]
    g = torch.Generator().manual_seed(1)
    toks = torch.randint(0, V, (1, windows * Wn), generator=g)
    m = TorchInferenceModel(cfg, W, 1)
    with torch.inference_mode():
        ref = torch.cat([m.window(toks[:, i * Wn:(i + 1) * Wn]) for i in range(windows)],
                        dim=1)[0].numpy()
    with tempfile.TemporaryDirectory() as tmp:
        tp, lp = os.path.join(tmp, "t.bin"), os.path.join(tmp, "l.f32")
        toks[0].numpy().astype("<u4").tofile(tp)
        subprocess.run([harness, "logits", "--model", config_path, "--weights", weights_path,
                        "--tokens", tp, "--out", lp], check=True)
        got = np.fromfile(lp, dtype="<f4").reshape(windows * Wn, V)
    return float(np.abs(got - ref).max() / np.abs(ref).max())
