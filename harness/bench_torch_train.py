"""The PyTorch baseline of the training benchmark (harness/bench_train.py):
one training step of the harness's Compressive Transformer (or
Transformer-XL) in PyTorch on the CPU, float32, written as a competent
PyTorch user writes Transformer-XL / Compressive Transformer training code,
doing the same per-step work as `harness train` (harness/train.c run_train,
harness/train_model.h pg_train_window):

  - B book streams batched in every product (batched F.linear and einsum,
    no Python loop over tokens, heads or streams), Transformer-XL's
    pad-and-reshape relative shift, LayerNorm over [compressed memory,
    memory, window] once per layer;
  - memories are layer inputs detached between windows; their keys and
    values are re-projected every window with the current weights (they
    change every step), the position projections once per layer and window;
  - the Compressive Transformer's memory update (Rae et al. 2020, Algorithm
    1: evicted rows through the conv compressor into a FIFO compressed
    memory) and its attention-reconstruction loss (Algorithm 2, as
    harness/train_model.h states it): content-only multi-head attention of
    the window's queries LN1(h) Wq^T over the evicted rows vs over their
    compression, sum of squared differences / (H dh), every input under a
    stopped gradient except the compressor's output, so that loss trains only
    the conv weights. The queries and the evicted rows' keys and values are
    the ones the layer already computed (detached), which is less work than
    the C code, which recomputes them: the baseline is not handicapped;
  - loss = (sum of token NLLs + reconstruction sum) / tokens (the mean
    cross-entropy plus the reconstruction loss, the scaling run_train
    applies), backward, torch.optim.Adam step (multi-tensor), gradients
    set to None between steps.

Threads (torch.set_num_threads), OMP_WAIT_POLICY and OpenBLAS's kernel are
set by the caller to the harness's. check_agreement() runs the same
objective over windows enough to fill the compressed memory and drop rows
from its FIFO, and compares the losses and every gradient tensor with
`harness train-grad` on the same weights and tokens.

tests/harness/torch_train_ref.py (the float64 reference of the gradient
test) is not used as the baseline: it loops in Python over streams and
heads and keeps usage counts in NumPy, which is right for a reference and
unfair as a speed baseline.
"""
import json
import math
import os
import struct
import subprocess
import tempfile
import time

import torch
import torch.nn.functional as F

from bench_torch import load_safetensors, rel_shift


def write_safetensors(path, weights):
    """F32 safetensors of a dict name -> torch tensor."""
    header, blobs, off = {}, [], 0
    for name, t in weights.items():
        raw = t.detach().contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape),
                        "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def windows_to_drop(cfg):
    """Full windows of one stream after which the memory is full, rows have
    been compressed and the compressed memory's FIFO has dropped rows."""
    W, nm = cfg["window"], cfg["memory"]
    ncm, c = cfg.get("compressed_memory", 0), cfg.get("compression_rate", 1)
    return -(-nm // W) + -(-ncm * c // W) + 1


class TorchTrainModel:
    """The harness model with autograd, float32 (float64 for the check), B
    streams in lockstep."""

    def __init__(self, cfg, W, batch, dtype=torch.float32):
        if cfg["family"] not in ("transformer-xl", "compressive-transformer"):
            raise ValueError(f"{cfg['name']}: bench_torch_train runs TXL and CT, "
                             f"not {cfg['family']}")
        if cfg.get("compressed_memory", 0) and cfg.get("compression") != "conv":
            raise ValueError(f"{cfg['name']}: bench_torch_train implements conv compression only")
        self.cfg, self.B, self.dtype = cfg, batch, dtype
        self.P = {k: torch.nn.Parameter(v.detach().to(dtype, copy=True)) for k, v in W.items()}
        d = cfg["d_model"]
        self.H, self.dh = cfg["n_head"], cfg["d_head"]
        self.eps = cfg.get("layer_norm_eps", 1e-5)
        self.nm, self.ncm = cfg["memory"], cfg.get("compressed_memory", 0)
        self.c = cfg.get("compression_rate", 1)
        span = cfg["window"] + self.nm + self.ncm
        inv = 1.0 / (10000 ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
        pos = torch.arange(span - 1, -1, -1, dtype=torch.float64)[:, None] * inv[None]
        self.pos = torch.cat([pos.sin(), pos.cos()], dim=1).to(dtype)  # distance span-1 .. 0
        self.masks = {}
        self.dropped = False  # has the compressed memory's FIFO dropped rows?
        self.reset()

    def reset(self):
        d, L = self.cfg["d_model"], self.cfg["n_layer"]
        self.mem = [torch.zeros(self.B, 0, d, dtype=self.dtype) for _ in range(L)]
        self.cmem = [torch.zeros(self.B, 0, d, dtype=self.dtype) for _ in range(L)]

    def mask(self, qlen, klen):
        if (qlen, klen) not in self.masks:
            self.masks[qlen, klen] = torch.ones(qlen, klen, dtype=torch.bool).triu(1 + klen - qlen)
        return self.masks[qlen, klen]

    def content_attention(self, q, k, v):
        """q [B, L, H, dh], k, v [B, n, H*dh] -> [B, L, H*dh]."""
        B, n = k.shape[:2]
        k, v = k.view(B, n, self.H, self.dh), v.view(B, n, self.H, self.dh)
        s = torch.einsum("bihd,bjhd->bhij", q, k) * (1.0 / math.sqrt(self.dh))
        out = torch.einsum("bhij,bjhd->bihd", s.softmax(dim=-1), v)
        return out.reshape(B, q.shape[1], self.H * self.dh)

    def layer(self, l, h):
        """One layer on h [B, L, d]; advances layer l's memories. Returns
        (layer output, reconstruction loss sum or None)."""
        P, p = self.P, f"layers.{l}."
        B, qlen, d = h.shape
        H, dh = self.H, self.dh
        cm = self.cmem[l].shape[1]
        cat = torch.cat([self.cmem[l], self.mem[l], h], dim=1)
        klen = cat.shape[1]
        ln1_w, ln1_b = P[p + "ln1.weight"], P[p + "ln1.bias"]
        cn = F.layer_norm(cat, (d,), ln1_w, ln1_b, self.eps)
        q = F.linear(cn[:, klen - qlen:], P[p + "attn.q.weight"]).view(B, qlen, H, dh)
        k = F.linear(cn, P[p + "attn.k.weight"])
        v = F.linear(cn, P[p + "attn.v.weight"])
        r = F.linear(self.pos[-klen:], P[p + "attn.r.weight"]).view(klen, H, dh)
        kh, vh = k.view(B, klen, H, dh), v.view(B, klen, H, dh)
        ac = torch.einsum("bihd,bjhd->bhij", q + P[p + "attn.r_w_bias"], kh)
        bd = rel_shift(torch.einsum("bihd,jhd->bhij", q + P[p + "attn.r_r_bias"], r))
        s = (ac + bd) * (1.0 / math.sqrt(dh))
        pr = s.masked_fill(self.mask(qlen, klen), float("-inf")).softmax(dim=-1)
        att = torch.einsum("bhij,bjhd->bihd", pr, vh).reshape(B, qlen, H * dh)
        # memory update (Algorithm 1): the layer input slides into the
        # memory; evicted rows are compressed (conv, kernel = stride = c)
        seq = torch.cat([self.mem[l], h.detach()], dim=1)
        n_evict = max(0, seq.shape[1] - self.nm)
        recon = None
        if self.ncm > 0 and n_evict >= self.c:
            n = n_evict // self.c * self.c
            old = seq[:, :n]
            new = F.conv1d(old.transpose(1, 2), P[p + "compress.weight"],
                           P[p + "compress.bias"], stride=self.c).transpose(1, 2)
            # Algorithm 2: attention over old (already projected: rows cm ..
            # cm+n of cat) vs over f_c(old), gradient only into f_c
            qd = q.detach()
            with torch.no_grad():
                a_old = self.content_attention(qd, k[:, cm:cm + n], v[:, cm:cm + n])
            nn_ = F.layer_norm(new, (d,), ln1_w.detach(), ln1_b.detach(), self.eps)
            a_new = self.content_attention(qd, F.linear(nn_, P[p + "attn.k.weight"].detach()),
                                           F.linear(nn_, P[p + "attn.v.weight"].detach()))
            recon = (a_new - a_old).square().sum() * (1.0 / (H * dh))
            grown = torch.cat([self.cmem[l], new.detach()], dim=1)
            self.dropped |= grown.shape[1] > self.ncm
            self.cmem[l] = grown[:, -self.ncm:]
        self.mem[l] = seq[:, n_evict:]
        h = h + F.linear(att, P[p + "attn.o.weight"])
        hn = F.layer_norm(h, (d,), P[p + "ln2.weight"], P[p + "ln2.bias"], self.eps)
        ff = F.relu(F.linear(hn, P[p + "ff.w1.weight"], P[p + "ff.w1.bias"]))
        return h + F.linear(ff, P[p + "ff.w2.weight"], P[p + "ff.w2.bias"]), recon

    def window_loss(self, inputs, targets):
        """inputs, targets [B, L]: (NLL sum, reconstruction sum) of one window."""
        P = self.P
        h = F.embedding(inputs, P["tok_emb.weight"])
        recon = h.new_zeros(())
        for l in range(self.cfg["n_layer"]):
            h, r = self.layer(l, h)
            if r is not None:
                recon = recon + r
        h = F.layer_norm(h, (self.cfg["d_model"],), P["ln_f.weight"], P["ln_f.bias"], self.eps)
        logits = F.linear(h, P["tok_emb.weight"])
        nll = F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.reshape(-1),
                              reduction="sum")
        return nll, recon


class TorchTrainer:
    """Steps of the training loop: zero gradients, window, (NLL + recon) /
    tokens, backward, Adam."""

    def __init__(self, cfg, W, batch, lr=1e-4):
        self.m = TorchTrainModel(cfg, W, batch)
        self.opt = torch.optim.Adam(self.m.P.values(), lr=lr, betas=(0.9, 0.999), eps=1e-8,
                                    foreach=True)
        g = torch.Generator().manual_seed(12345)
        V, Wn = cfg["vocab_size"], cfg["window"]
        self.inputs = torch.randint(0, V, (batch, Wn), generator=g)
        self.targets = torch.randint(0, V, (batch, Wn), generator=g)
        self.tokens = batch * Wn
        for _ in range(1 + (cfg["memory"] + cfg.get("compressed_memory", 0) *
                            cfg.get("compression_rate", 1)) // Wn):
            self.step()  # memories full and compressing, as train-bench warms up

    def step(self):
        self.opt.zero_grad(set_to_none=True)
        nll, recon = self.m.window_loss(self.inputs, self.targets)
        ((nll + recon) * (1.0 / self.tokens)).backward()
        self.opt.step()

    def run(self, seconds, min_steps=3):
        """Times steps until `seconds` have passed (at least min_steps);
        returns the per-step seconds."""
        times, t_start = [], time.perf_counter()
        while len(times) < min_steps or time.perf_counter() - t_start < seconds:
            t0 = time.perf_counter()
            self.step()
            times.append(time.perf_counter() - t0)
        return times


def harness_gradients(harness, config_path, weights, tokens):
    """`harness train-grad` on weights (dict of tensors) and tokens [B, n]
    (stream b = row b): (its JSON sums, its gradients)."""
    with tempfile.TemporaryDirectory(prefix="pg19-bench-train-") as tmp:
        wpath, tpath = os.path.join(tmp, "w.safetensors"), os.path.join(tmp, "t.bin")
        gpath = os.path.join(tmp, "g.safetensors")
        write_safetensors(wpath, weights)
        tokens.reshape(-1).numpy().astype("<u4").tofile(tpath)
        r = subprocess.run([harness, "train-grad", "--model", config_path, "--weights", wpath,
                            "--tokens", tpath, "--out", gpath, "--batch", str(tokens.shape[0]),
                            "--threads", str(torch.get_num_threads())],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if r.returncode:
            raise RuntimeError(f"harness train-grad failed:\n{r.stderr}")
        return json.loads(r.stdout), load_safetensors(gpath)


def compare(cfg, W, tokens, windows, sums, gc, dtype):
    """This model in dtype over the windows of tokens [B, windows*W + 1],
    gradients of the summed objective, against the harness's sums and
    gradients gc."""
    Wn = cfg["window"]
    m = TorchTrainModel(cfg, W, tokens.shape[0], dtype)
    nll_t = recon_t = 0.0
    for i in range(windows):
        a = i * Wn
        nll, recon = m.window_loss(tokens[:, a:a + Wn], tokens[:, a + 1:a + 1 + Wn])
        (nll + recon).backward()
        nll_t += nll.item()
        recon_t += recon.item()
    if set(gc) != set(m.P):
        raise RuntimeError(f"tensor names differ: {sorted(set(gc) ^ set(m.P))}")
    worst, worst_name = 0.0, None
    for name, p in m.P.items():
        gt = (p.grad if p.grad is not None else torch.zeros_like(p)).double()
        nt = gt.norm().item()
        diff = (gc[name].double() - gt).norm().item()
        rel = diff / nt if nt > 0 else (0.0 if diff == 0 else math.inf)
        if rel > worst:
            worst, worst_name = rel, name
    nll_rel = abs(sums["nll_sum"] - nll_t) / abs(nll_t)
    recon_rel = (abs(sums["recon_sum"] - recon_t) / abs(recon_t) if recon_t
                 else (0.0 if sums["recon_sum"] == 0 else math.inf))
    cw = m.P.get("layers.0.compress.weight")
    return {"nll": nll_t, "recon": recon_t, "nll_rel": nll_rel, "recon_rel": recon_rel,
            "grad_rel": worst, "grad_worst": worst_name, "dropped": m.dropped,
            "compressor_grad": cw.grad.norm().item() if cw is not None and cw.grad is not None
            else 0.0}


def check_agreement(cfg, harness, config_path, batch=2, windows=None, seed=7):
    """The objective of `harness train-grad` (B streams, gradients of the
    summed NLL + reconstruction loss over all windows, no optimizer step) in
    this model and in the harness, on the same weights (the harness's random
    init with every vector perturbed, so that no gradient path is
    degenerate) and random tokens, over enough windows that the compressed
    memory fills and drops rows.

    The model runs twice: in float64, which checks that it is the harness's
    objective (same code, dtype aside; the harness's float32 gradients are
    within a few 1e-6 of float64 values), and in float32, the precision it
    is timed in. float32 against float32 is compared too but bounded loosely:
    a pre-activation within rounding of 0 can take the other side of the
    ReLU in one of the two, which moves the gradients of the layers below it
    by up to about 1e-3 relative (measured on ct-small: PyTorch float32 vs
    float64 9e-4, the harness vs float64 9e-7).

    Returns {"windows", "batch", "harness": (nll_sum, recon_sum), "f64": ...,
    "f32": ...}; each of f64, f32 is compare()'s dict: nll, recon, nll_rel,
    recon_rel (relative differences of the sums), grad_rel (max over tensors
    of ||g_harness - g_torch|| / ||g_torch||) and grad_worst (its tensor),
    dropped (the compressed FIFO dropped rows), compressor_grad (norm of
    layer 0's conv gradient, which only the reconstruction loss gives)."""
    windows = windows or windows_to_drop(cfg) + 1
    Wn, V = cfg["window"], cfg["vocab_size"]
    with tempfile.TemporaryDirectory(prefix="pg19-bench-train-") as tmp:
        wpath = os.path.join(tmp, "w.safetensors")
        subprocess.run([harness, "init", "--model", config_path, "--random-init", str(seed),
                        "--out", wpath], check=True, stdout=subprocess.DEVNULL)
        W = load_safetensors(wpath)
    g = torch.Generator().manual_seed(seed)
    for name, t in W.items():
        if t.dim() == 1:
            t += 0.1 * torch.randn(t.shape, generator=g)
    tokens = torch.randint(0, V, (batch, windows * Wn + 1), generator=g)
    sums, gc = harness_gradients(harness, config_path, W, tokens)
    return {"windows": windows, "batch": batch, "harness": (sums["nll_sum"], sums["recon_sum"]),
            "f64": compare(cfg, W, tokens, windows, sums, gc, torch.float64),
            "f32": compare(cfg, W, tokens, windows, sums, gc, torch.float32)}
