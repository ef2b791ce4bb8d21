#!/usr/bin/python3
"""`harness bench` (harness/bench.c): its sgemm replay must make the same
products as the forward. On tiny configs of every memory kind, with one
slot per thread and with threads sharing each product, the replay's FLOP
per window equals the forward's steady-state FLOP per window, and the report
has its three lines. `--serve` (harness/bench.h) answers its protocol and
refuses malformed requests; benchlib.Served drives it; PyTorch's strided
relative shift (harness/bench_torch.py) equals Transformer-XL's copying one.
Not a timing test: the rates are not checked."""
import json
import os
import re
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_reference import HARNESS, ct_config, txl_config  # noqa: E402

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(TOP, "common"))
sys.path.insert(0, os.path.join(TOP, "harness"))
import benchlib  # noqa: E402
try:
    import torch
    import bench_torch
except ImportError:
    torch = None


class TestBenchReplay(unittest.TestCase):
    def bench(self, cfg, batch):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, cfg["name"] + ".json")
            with open(path, "w") as f:
                json.dump(cfg, f)
            p = subprocess.run([HARNESS, "bench", "--model", path, "--seconds", "0.01",
                                "--batch", str(batch), "--threads", "2"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout

    def test_replay_matches_forward_flops(self):
        cfgs = [txl_config(), ct_config("conv"), ct_config("dilated_conv", dilation=2),
                ct_config("mean_pool"), ct_config("most_used"),
                ct_config("conv", window=6, compression_rate=3)]
        for cfg in cfgs:
            for batch in (1, 2, 3):
                with self.subTest(config=cfg["name"], window=cfg["window"], batch=batch):
                    out = self.bench(cfg, batch)
                    fwd = re.search(r"harness forward:.*; (\d+) FLOP per window", out)
                    rep = re.search(r"sgemm replay .*; (\d+) FLOP per window", out)
                    self.assertTrue(fwd and rep, out)
                    self.assertEqual(int(fwd.group(1)), int(rep.group(1)), out)
                    self.assertRegex(out, r"ratio harness / sgemm replay: (\d|not reported)")


class TestServe(unittest.TestCase):
    def serve(self, cmd, stdin, cfg=None):
        cfg = cfg or ct_config("conv")
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, cfg["name"] + ".json")
            with open(path, "w") as f:
                json.dump(cfg, f)
            return subprocess.run([HARNESS, cmd, "--model", path, "--threads", "2", "--serve"],
                                  input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)

    def ready_and_rows(self, out):
        lines = out.splitlines()
        i = next(i for i, l in enumerate(lines) if l.startswith("ready "))
        return [float(x) for x in lines[i].split()[1:]], [l.split() for l in lines[i + 1:]]

    def test_bench_serve(self):
        cfg = ct_config("conv")
        p = self.serve("bench", "2\n1\n3", cfg)  # the last request without a newline
        self.assertEqual(p.returncode, 0, p.stderr)
        ready, rows = self.ready_and_rows(p.stdout)
        self.assertEqual(ready[0], 2 * cfg["window"])  # batch 2 x window
        self.assertEqual(len(rows), 6)
        for r in rows:
            self.assertEqual(len(r), 3)
            self.assertGreater(float(r[0]), 0)
            self.assertGreater(float(r[2]), 0)
            self.assertEqual(float(r[1]), ready[1])  # forward FLOP = the replay's

    def test_train_bench_serve(self):
        p = self.serve("train-bench", "2\n")
        self.assertEqual(p.returncode, 0, p.stderr)
        ready, rows = self.ready_and_rows(p.stdout)
        self.assertEqual(len(ready), 2)
        self.assertGreater(ready[1], 0)
        self.assertEqual(len(rows), 2)
        self.assertTrue(all(len(r) == 1 and float(r[0]) > 0 for r in rows))

    def test_malformed_requests_refused(self):
        for cmd in ("bench", "train-bench"):
            for bad, line in (("0\n", 1), ("1\nx\n", 2), ("\n", 1), ("-1\n", 1),
                              ("100001\n", 1), ("1 2\n", 1), ("9" * 40 + "\n", 1),
                              ("99999999999999999999\n", 1)):
                with self.subTest(cmd=cmd, request=bad[:12]):
                    p = self.serve(cmd, bad)
                    self.assertEqual(p.returncode, 1, p.stdout)
                    self.assertIn(f"standard input line {line}", p.stderr)

    def test_served_drives_it(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "ct.json")
            with open(path, "w") as f:
                json.dump(ct_config("conv"), f)
            s = benchlib.Served([HARNESS, "bench", "--model", path, "--threads", "1", "--serve"],
                                "harness bench --serve")
            self.assertIn("OpenBLAS core", s.header[0])
            self.assertEqual(len(s.run(4)), 4)
            self.assertGreaterEqual(s.per_turn(0.05, lambda r: r[0] + r[2]), 1)
            s.close()

    @unittest.skipIf(torch is None, "python3-torch is not installed")
    def test_strided_rel_shift_is_transformer_xl_shift(self):
        g = torch.Generator().manual_seed(3)
        for q, k in ((4, 4), (3, 7), (5, 12), (1, 6)):
            x = torch.randn(2, 3, q, k, generator=g)
            want, got = bench_torch.rel_shift(x), bench_torch.rel_shift_view(x)
            i = torch.arange(q)[:, None]
            j = torch.arange(k)[None, :]
            seen = j <= k - q + i  # the causal entries; the others are masked
            with self.subTest(q=q, k=k):
                self.assertTrue(torch.equal(want[..., seen], got[..., seen]))
                # and both are the distance rule: [i, j] = x[i, j + q-1-i]
                for a in range(q):
                    for b in range(k - q + a + 1):
                        self.assertEqual(got[1, 2, a, b].item(), x[1, 2, a, b + q - 1 - a].item())


if __name__ == "__main__":
    unittest.main()
