"""Whole-model gradients of `harness train-grad` (the C backward of
harness/train_model.c) against PyTorch autograd in float64
(torch_train_ref.py, written independently), for Transformer-XL and the
Compressive Transformer with every compression function, over several
windows so that memories fill, rows get evicted and compressed, and the
reconstruction loss trains the compressor. Tolerance: every tensor's
||g_C - g_torch|| / ||g_torch|| < 1e-4, and the loss sums to 1e-6.
Skipped when PyTorch (Debian python3-torch) is missing.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ref_model  # noqa: E402

try:
    import torch  # noqa: F401
    import torch_train_ref  # noqa: E402
except ImportError:  # pragma: no cover
    torch_train_ref = None

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("PG19_BIN", os.path.join(TOP, "bin"))
HARNESS = os.path.join(BIN, "harness")

BASE = {"vocab_size": 37, "d_model": 16, "n_layer": 2, "n_head": 2, "d_head": 8, "d_ff": 24,
        "window": 4}


def ct(compression, **kw):
    cfg = dict(BASE, name=f"ct-{compression}", family="compressive-transformer", memory=6,
               compressed_memory=5, compression_rate=2, compression=compression)
    cfg.update(kw)
    return cfg


@unittest.skipIf(torch_train_ref is None, "PyTorch missing (Debian python3-torch)")
class TrainGradTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def check(self, cfg, n_tokens=46, batch=2, seed=5, real_config=None):
        if real_config:
            with open(os.path.join(TOP, "models", real_config + ".json")) as f:
                cfg = json.load(f)
        cpath = os.path.join(self.dir, "m.json")
        with open(cpath, "w") as f:
            json.dump(cfg, f)
        W = ref_model.random_weights(cfg, seed)
        wpath = os.path.join(self.dir, "w.safetensors")
        ref_model.write_safetensors(wpath, W)
        rng = np.random.default_rng(seed)
        tokens = rng.integers(0, cfg["vocab_size"], n_tokens).astype("<u4")
        tpath = os.path.join(self.dir, "tok.bin")
        tokens.tofile(tpath)
        gpath = os.path.join(self.dir, "g.safetensors")
        p = subprocess.run([HARNESS, "train-grad", "--model", cpath, "--weights", wpath,
                            "--tokens", tpath, "--out", gpath, "--batch", str(batch)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        sums = json.loads(p.stdout)
        gc = torch_train_ref.read_safetensors(gpath)
        ref = torch_train_ref.TorchTrainRef(cfg, W)
        gt, nll, recon = ref.grads([int(t) for t in tokens], batch)
        self.assertAlmostEqual(sums["nll_sum"] / nll, 1.0, delta=1e-6)
        if recon or sums["recon_sum"]:
            self.assertAlmostEqual(sums["recon_sum"] / recon, 1.0, delta=1e-5)
        self.assertEqual(set(gc), set(gt))
        worst = 0.0
        for name, g in gt.items():
            ng = np.linalg.norm(g)
            diff = np.linalg.norm(gc[name].astype(np.float64) - g)
            if ng == 0:
                self.assertLess(diff, 1e-9, name)
                continue
            rel = diff / ng
            worst = max(worst, rel)
            self.assertLess(rel, 1e-4, f"{cfg['name']}: {name}: relative error {rel:.2e}")
        if cfg.get("compression") in ("conv", "dilated_conv"):
            # the compressor learns, and only from the reconstruction loss
            self.assertGreater(np.linalg.norm(gt["layers.0.compress.weight"]), 0)
        print(f"{cfg['name']}: worst relative gradient error {worst:.2e}", file=sys.stderr)
        return worst

    def test_txl(self):
        self.check(dict(BASE, name="txl", family="transformer-xl", memory=6))

    def test_ct_conv(self):
        self.check(ct("conv"))

    def test_ct_dilated_conv(self):
        self.check(ct("dilated_conv", dilation=2))

    def test_ct_max_pool(self):
        self.check(ct("max_pool"))

    def test_ct_mean_pool(self):
        self.check(ct("mean_pool"))

    def test_ct_most_used(self):
        self.check(ct("most_used"))

    def test_partial_windows_and_rate_3(self):
        # window 6, c = 3, a ragged last window, one stream
        self.check(ct("conv", window=6, memory=6, compressed_memory=4, compression_rate=3),
                   n_tokens=40, batch=1)

    def test_ct_tiny(self):
        self.check(None, n_tokens=140, batch=1, real_config="ct-tiny")

    def test_txl_tiny(self):
        self.check(None, n_tokens=140, batch=1, real_config="txl-tiny")


if __name__ == "__main__":
    unittest.main()
