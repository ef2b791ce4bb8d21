"""An independent NumPy reference of the harness models (float64).

Written from the papers, not from harness/model.c: Transformer-XL's relative
attention with its pad-and-reshape relative shift (Dai et al. 2019, the
`_rel_shift` of the original code), and the Compressive Transformer's memory
update (Rae et al. 2020, Algorithm 1) with compression functions written as
the usual array operations (strided / dilated conv1d, pooling, top-k usage).
The architecture and tensor names are those of models/README.md.
"""
import json
import struct

import numpy as np


def sinusoid(pos, d):
    """Transformer-XL positional embedding: [sin(p f), cos(p f)], f = 1e4^(-2k/d)."""
    inv_freq = 1.0 / (10000.0 ** (np.arange(0, d, 2, dtype=np.float64) / d))
    x = np.outer(pos.astype(np.float64), inv_freq)
    return np.concatenate([np.sin(x), np.cos(x)], axis=1)


def layer_norm(x, w, b, eps):
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def rel_shift(x):
    """[qlen, klen] -> [qlen, klen]: TXL's zero-pad, reshape, drop-row trick."""
    qlen, klen = x.shape
    padded = np.concatenate([np.zeros((qlen, 1)), x], axis=1).reshape(klen + 1, qlen)
    return padded[1:].reshape(qlen, klen)


def conv1d(x, w, b, stride, dilation, pad_left):
    """PyTorch-style conv1d over time: x [n, d_in], w [d_out, d_in, k]."""
    k = w.shape[2]
    xp = np.concatenate([np.zeros((pad_left, x.shape[1])), x], axis=0)
    span = (k - 1) * dilation + 1
    n_out = (xp.shape[0] - span) // stride + 1
    out = np.tile(b, (n_out, 1)).astype(np.float64)
    for j in range(n_out):
        for t in range(k):
            out[j] += w[:, :, t] @ xp[j * stride + t * dilation]
    return out


def compress(cfg, W, l, x, usage):
    c = cfg["compression_rate"]
    kind = cfg["compression"]
    g = x.shape[0] // c
    if kind == "conv":
        w, b = W[f"layers.{l}.compress.weight"], W[f"layers.{l}.compress.bias"]
        # kernel = stride = c: out[j] = b + sum_{t,i} w[o,i,t] x[jc+t, i]
        return np.einsum("jti,oit->jo", x.reshape(g, c, -1), w) + b
    if kind == "dilated_conv":
        w, b = W[f"layers.{l}.compress.weight"], W[f"layers.{l}.compress.bias"]
        dil = cfg.get("dilation", 2)
        return conv1d(x, w, b, stride=c, dilation=dil, pad_left=(c - 1) * (dil - 1))
    if kind == "max_pool":
        return x.reshape(g, c, -1).max(axis=1)
    if kind == "mean_pool":
        return x.reshape(g, c, -1).mean(axis=1)
    if kind == "most_used":
        keep = np.sort(np.argsort(-usage, kind="stable")[:g])
        return x[keep]
    raise ValueError(kind)


class Reference:
    def __init__(self, cfg, weights):
        self.cfg = cfg
        self.W = {k: v.astype(np.float64) for k, v in weights.items()}
        # attn_hook(layer, head, probabilities [q, k], compressed rows, memory rows):
        # called for every head of every window (the analyses' reference)
        self.attn_hook = None
        self.reset()

    def reset(self):
        L, d = self.cfg["n_layer"], self.cfg["d_model"]
        self.mem = [np.zeros((0, d)) for _ in range(L)]
        self.cmem = [np.zeros((0, d)) for _ in range(L)]
        self.usage = [np.zeros(0) for _ in range(L)]

    def layer(self, l, h):
        cfg, W = self.cfg, self.W
        H, dh, eps = cfg["n_head"], cfg["d_head"], cfg.get("layer_norm_eps", 1e-5)
        p = f"layers.{l}."
        qlen = h.shape[0]
        cm = self.cmem[l].shape[0]
        cat = np.concatenate([self.cmem[l], self.mem[l], h], axis=0)
        klen = cat.shape[0]
        mlen = klen - qlen
        hn = layer_norm(h, W[p + "ln1.weight"], W[p + "ln1.bias"], eps)
        cn = layer_norm(cat, W[p + "ln1.weight"], W[p + "ln1.bias"], eps)
        q = (hn @ W[p + "attn.q.weight"].T).reshape(qlen, H, dh)
        k = (cn @ W[p + "attn.k.weight"].T).reshape(klen, H, dh)
        v = (cn @ W[p + "attn.v.weight"].T).reshape(klen, H, dh)
        pos = np.arange(klen - 1, -1, -1)  # TXL: r row m is distance klen-1-m
        r = (sinusoid(pos, cfg["d_model"]) @ W[p + "attn.r.weight"].T).reshape(klen, H, dh)
        u, vb = W[p + "attn.r_w_bias"], W[p + "attn.r_r_bias"]
        out = np.zeros((qlen, H, dh))
        used = np.zeros(klen)
        mask = np.arange(klen)[None, :] > (mlen + np.arange(qlen))[:, None]
        for hh in range(H):
            ac = (q[:, hh] + u[hh]) @ k[:, hh].T
            bd = rel_shift((q[:, hh] + vb[hh]) @ r[:, hh].T)
            s = (ac + bd) / np.sqrt(dh)
            s[mask] = -np.inf
            s = s - s.max(axis=1, keepdims=True)
            pr = np.exp(s)
            pr /= pr.sum(axis=1, keepdims=True)
            out[:, hh] = pr @ v[:, hh]
            used += pr.sum(axis=0)
            if self.attn_hook:
                self.attn_hook(l, hh, pr, cm, self.mem[l].shape[0])
        att = out.reshape(qlen, H * dh) @ W[p + "attn.o.weight"].T
        # Memory update (Algorithm 1): memories hold this layer's input h.
        m = self.mem[l].shape[0]
        usage = self.usage[l] + used[cm:cm + m]
        seq = np.concatenate([self.mem[l], h], axis=0)
        useq = np.concatenate([usage, np.zeros(qlen)])
        n_evict = max(0, seq.shape[0] - cfg["memory"])
        ncm = cfg.get("compressed_memory", 0)
        c = cfg.get("compression_rate", 1)
        if ncm > 0 and n_evict >= c:
            g = n_evict // c
            new = compress(cfg, W, l, seq[:g * c], useq[:g * c])
            self.cmem[l] = np.concatenate([self.cmem[l], new], axis=0)[-ncm:]
        self.mem[l] = seq[n_evict:]
        self.usage[l] = useq[n_evict:]
        h = h + att
        hn2 = layer_norm(h, W[p + "ln2.weight"], W[p + "ln2.bias"], eps)
        ff = np.maximum(hn2 @ W[p + "ff.w1.weight"].T + W[p + "ff.w1.bias"], 0.0)
        return h + ff @ W[p + "ff.w2.weight"].T + W[p + "ff.w2.bias"]

    def window(self, tokens):
        h = self.W["tok_emb.weight"][tokens]
        for l in range(self.cfg["n_layer"]):
            h = self.layer(l, h)
        eps = self.cfg.get("layer_norm_eps", 1e-5)
        h = layer_norm(h, self.W["ln_f.weight"], self.W["ln_f.bias"], eps)
        return h @ self.W["tok_emb.weight"].T

    def logits(self, tokens, window):
        self.reset()
        return np.concatenate([self.window(tokens[i:i + window])
                               for i in range(0, len(tokens), window)], axis=0)


def tensor_shapes(cfg):
    """Name -> shape of every tensor, from models/README.md."""
    d, H, dh, ff, V = (cfg[k] for k in ("d_model", "n_head", "d_head", "d_ff", "vocab_size"))
    shapes = {"tok_emb.weight": (V, d)}
    for l in range(cfg["n_layer"]):
        p = f"layers.{l}."
        shapes.update({
            p + "ln1.weight": (d,), p + "ln1.bias": (d,),
            p + "attn.q.weight": (H * dh, d), p + "attn.k.weight": (H * dh, d),
            p + "attn.v.weight": (H * dh, d), p + "attn.r.weight": (H * dh, d),
            p + "attn.r_w_bias": (H, dh), p + "attn.r_r_bias": (H, dh),
            p + "attn.o.weight": (d, H * dh),
            p + "ln2.weight": (d,), p + "ln2.bias": (d,),
            p + "ff.w1.weight": (ff, d), p + "ff.w1.bias": (ff,),
            p + "ff.w2.weight": (d, ff), p + "ff.w2.bias": (d,)})
        if cfg.get("compression") in ("conv", "dilated_conv"):
            shapes[p + "compress.weight"] = (d, d, cfg["compression_rate"])
            shapes[p + "compress.bias"] = (d,)
    shapes["ln_f.weight"] = (d,)
    shapes["ln_f.bias"] = (d,)
    return shapes


def random_weights(cfg, seed):
    rng = np.random.default_rng(seed)
    W = {}
    for name, shape in tensor_shapes(cfg).items():
        if name.endswith(("ln1.weight", "ln2.weight", "ln_f.weight")):
            W[name] = (1.0 + 0.1 * rng.standard_normal(shape)).astype(np.float32)
        elif len(shape) == 1:
            W[name] = (0.1 * rng.standard_normal(shape)).astype(np.float32)
        else:
            fan_in = np.prod(shape[1:])
            W[name] = (rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32)
    return W


def write_safetensors(path, weights, dtype="F32", order=None):
    names = order or list(weights)
    header, blobs, off = {}, [], 0
    for n in names:
        a = np.ascontiguousarray(weights[n], dtype=np.float32)
        if dtype == "F32":
            raw = a.astype("<f4").tobytes()
        elif dtype == "F16":
            raw = a.astype("<f2").tobytes()
        elif dtype == "BF16":
            raw = (a.view(np.uint32) >> 16).astype("<u2").tobytes()
        header[n] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def as_stored(weights, dtype):
    """The float values a reader gets back from weights stored as dtype."""
    if dtype == "F16":
        return {k: v.astype(np.float16).astype(np.float32) for k, v in weights.items()}
    if dtype == "BF16":
        return {k: ((v.view(np.uint32) >> 16) << 16).view(np.float32) for k, v in weights.items()}
    return weights
