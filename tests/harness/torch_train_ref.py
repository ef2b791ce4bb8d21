"""An independent PyTorch (float64, autograd) implementation of the training
objective of `harness train` (harness/train_model.h), for the gradient test.

Written from the papers and models/README.md, not from harness/train_model.c:
Transformer-XL's relative attention with the pad-and-reshape shift (Dai et
al. 2019), memories detached between windows; the Compressive Transformer's
memory update (Rae et al. 2020, Algorithm 1) and its attention-reconstruction
loss (Algorithm 2): content attention over the evicted memories vs over their
compression, everything but the compression function under
torch.no_grad / detach. Objective = sum over target tokens of the NLL + the
sum over layers and window rows of ||new - old||^2 / (H dh).
"""
import json
import math
import struct

import numpy as np
import torch
import torch.nn.functional as F


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    hdr = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for k, v in hdr.items():
        if k == "__metadata__":
            continue
        assert v["dtype"] == "F32"
        b, e = v["data_offsets"]
        out[k] = np.frombuffer(data[base + b:base + e], dtype="<f4").reshape(v["shape"])
    return out


def sinusoid(klen, d):
    pos = torch.arange(klen - 1, -1, -1, dtype=torch.float64)
    inv = 1.0 / (10000.0 ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
    x = pos[:, None] * inv[None, :]
    return torch.cat([torch.sin(x), torch.cos(x)], dim=1)


def rel_shift(x):
    qlen, klen = x.shape
    padded = torch.cat([torch.zeros(qlen, 1, dtype=x.dtype), x], dim=1).reshape(klen + 1, qlen)
    return padded[1:].reshape(qlen, klen)


def compress(cfg, P, l, x, usage):
    c, kind = cfg["compression_rate"], cfg["compression"]
    g = x.shape[0] // c
    x = x[:g * c]
    if kind in ("conv", "dilated_conv"):
        w, b = P[f"layers.{l}.compress.weight"], P[f"layers.{l}.compress.bias"]
        dil = 1 if kind == "conv" else cfg.get("dilation", 2)
        xp = F.pad(x.t()[None], ((c - 1) * (dil - 1), 0))
        return F.conv1d(xp, w, b, stride=c, dilation=dil)[0].t()
    if kind == "max_pool":
        return x.reshape(g, c, -1).max(dim=1).values
    if kind == "mean_pool":
        return x.reshape(g, c, -1).mean(dim=1)
    if kind == "most_used":
        keep = np.sort(np.argsort(-usage[:g * c], kind="stable")[:g])
        return x[torch.as_tensor(keep)]
    raise ValueError(kind)


class TorchTrainRef:
    def __init__(self, cfg, weights):
        self.cfg = cfg
        self.P = {k: torch.tensor(np.asarray(v, dtype=np.float64), requires_grad=True)
                  for k, v in weights.items()}

    def ln(self, x, l, which="ln1", detach=False):
        w = self.P[f"layers.{l}.{which}.weight"] if l is not None else self.P["ln_f.weight"]
        b = self.P[f"layers.{l}.{which}.bias"] if l is not None else self.P["ln_f.bias"]
        if detach:
            w, b = w.detach(), b.detach()
        return F.layer_norm(x, (x.shape[-1],), w, b, self.cfg.get("layer_norm_eps", 1e-5))

    def recon(self, l, h, old, new):
        """Algorithm 2: stop-gradient everywhere except through new."""
        cfg, P = self.cfg, self.P
        H, dh = cfg["n_head"], cfg["d_head"]
        p = f"layers.{l}."
        wq, wk, wv = (P[p + f"attn.{n}.weight"].detach() for n in "qkv")
        q = (self.ln(h.detach(), l, detach=True) @ wq.t()).reshape(-1, H, dh)

        def attn(mem):
            mn = self.ln(mem, l, detach=True)
            k = (mn @ wk.t()).reshape(-1, H, dh)
            v = (mn @ wv.t()).reshape(-1, H, dh)
            s = torch.einsum("ihe,jhe->hij", q, k) / math.sqrt(dh)
            return torch.einsum("hij,jhe->ihe", torch.softmax(s, dim=-1), v)

        return ((attn(new) - attn(old.detach())) ** 2).sum() / (H * dh)

    def stream_loss(self, tokens_in, tokens_tg, state):
        cfg, P = self.cfg, self.P
        H, dh, L = cfg["n_head"], cfg["d_head"], cfg["n_layer"]
        ncm, nm = cfg.get("compressed_memory", 0), cfg["memory"]
        c = cfg.get("compression_rate", 1)
        h = P["tok_emb.weight"][torch.as_tensor(tokens_in)]
        recon = torch.zeros((), dtype=torch.float64)
        for l in range(L):
            p = f"layers.{l}."
            mem, cmem, usage = state["mem"][l], state["cmem"][l], state["usage"][l]
            qlen = h.shape[0]
            cat = torch.cat([cmem, mem, h], dim=0)
            klen = cat.shape[0]
            mlen = klen - qlen
            q = (self.ln(h, l) @ P[p + "attn.q.weight"].t()).reshape(qlen, H, dh)
            cn = self.ln(cat, l)
            k = (cn @ P[p + "attn.k.weight"].t()).reshape(klen, H, dh)
            v = (cn @ P[p + "attn.v.weight"].t()).reshape(klen, H, dh)
            r = (sinusoid(klen, cfg["d_model"]) @ P[p + "attn.r.weight"].t()).reshape(klen, H, dh)
            u, vb = P[p + "attn.r_w_bias"], P[p + "attn.r_r_bias"]
            mask = torch.arange(klen)[None, :] > (mlen + torch.arange(qlen))[:, None]
            outs, used = [], np.zeros(klen)
            for hh in range(H):
                ac = (q[:, hh] + u[hh]) @ k[:, hh].t()
                bd = rel_shift((q[:, hh] + vb[hh]) @ r[:, hh].t())
                s = ((ac + bd) / math.sqrt(dh)).masked_fill(mask, float("-inf"))
                pr = torch.softmax(s, dim=1)
                outs.append(pr @ v[:, hh])
                used += pr.detach().sum(dim=0).numpy()
            att = torch.cat(outs, dim=1) @ P[p + "attn.o.weight"].t()
            # memory update (Algorithm 1); memories are detached layer inputs
            m = mem.shape[0]
            usage = np.concatenate([usage + used[cmem.shape[0]:cmem.shape[0] + m],
                                    np.zeros(qlen)])
            seq = torch.cat([mem, h.detach()], dim=0)
            n_evict = max(0, seq.shape[0] - nm)
            if ncm > 0 and n_evict >= c:
                g = n_evict // c
                new = compress(cfg, P, l, seq[:g * c], usage[:g * c])
                if cfg["compression"] in ("conv", "dilated_conv"):
                    recon = recon + self.recon(l, h, seq[:g * c], new)
                state["cmem"][l] = torch.cat([cmem, new.detach()], dim=0)[-ncm:]
            state["mem"][l] = seq[n_evict:]
            state["usage"][l] = usage[n_evict:]
            h = h + att
            ff = torch.relu(self.ln(h, l, "ln2") @ P[p + "ff.w1.weight"].t() + P[p + "ff.w1.bias"])
            h = h + ff @ P[p + "ff.w2.weight"].t() + P[p + "ff.w2.bias"]
        logits = self.ln(h, None) @ P["tok_emb.weight"].t()
        nll = F.cross_entropy(logits, torch.as_tensor(tokens_tg, dtype=torch.long),
                              reduction="sum")
        return nll, recon

    def grads(self, tokens, batch):
        """The objective of `harness train-grad --batch B` on tokens: B equal
        streams, windows of the config's length, gradients summed."""
        cfg = self.cfg
        per = len(tokens) // batch
        W, L, d = cfg["window"], cfg["n_layer"], cfg["d_model"]
        nll_sum = recon_sum = 0.0
        for b in range(batch):
            st = {"mem": [torch.zeros(0, d, dtype=torch.float64) for _ in range(L)],
                  "cmem": [torch.zeros(0, d, dtype=torch.float64) for _ in range(L)],
                  "usage": [np.zeros(0) for _ in range(L)]}
            s = tokens[b * per:(b + 1) * per]
            for pos in range(0, per - 1, W):
                n = min(W, per - 1 - pos)
                nll, rec = self.stream_loss(s[pos:pos + n], s[pos + 1:pos + 1 + n], st)
                (nll + rec).backward()
                nll_sum += nll.item()
                recon_sum += rec.item()
        return ({k: v.grad.numpy() if v.grad is not None else np.zeros(v.shape)
                 for k, v in self.P.items()}, nll_sum, recon_sum)
