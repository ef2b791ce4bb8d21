#!/usr/bin/python3
"""A PyTorch CPU training step of the harness model, for `make bench`
(harness/bench_train.sh): the batched model of bench_torch.py with autograd
(memories detached between windows, as Transformer-XL training code does),
mean cross-entropy, backward, torch.optim.Adam; timed the way
`harness train-bench` times the C training step (batch x window tokens of
random ids, memories full, steady state). It does not run the
attention-reconstruction loss (the C step does: it costs a few per cent), so
the comparison slightly favours PyTorch.
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_torch import TorchModel, load_safetensors  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    with open(a.config) as f:
        cfg = json.load(f)
    W = {k: v.requires_grad_(True) for k, v in load_safetensors(a.weights).items()}
    opt = torch.optim.Adam(list(W.values()), lr=1e-4)
    Wn, V = cfg["window"], cfg["vocab_size"]
    g = torch.Generator().manual_seed(1)
    toks = torch.randint(0, V, (a.batch, Wn), generator=g)
    tgts = torch.randint(0, V, (a.batch, Wn), generator=g)
    m = TorchModel(cfg, W, a.batch)

    def step():
        opt.zero_grad()
        logits = m.window(toks)
        loss = F.cross_entropy(logits.reshape(-1, V), tgts.reshape(-1))
        loss.backward()
        opt.step()
        m.mem = [x.detach() for x in m.mem]
        m.cmem = [x.detach() for x in m.cmem]

    warm = 1 + (cfg["memory"] + cfg.get("compressed_memory", 0) *
                cfg.get("compression_rate", 1)) // Wn
    for _ in range(warm):
        step()
    n, t0 = 0, time.time()
    while time.time() - t0 < a.seconds or n < 2:
        step()
        n += 1
    dt = time.time() - t0
    print(f"pytorch {torch.__version__} train: batch {a.batch} x window {Wn}, {n} steps, "
          f"{a.threads} threads: {a.batch * Wn * n / dt:.1f} tokens/s")


if __name__ == "__main__":
    main()
