#!/usr/bin/python3
"""`harness bench` (harness/bench.c): its sgemm replay must make the same
products as the forward. On tiny configs of every memory kind, with one
slot per thread and with threads sharing each product, the replay's FLOP
per window equals the forward's steady-state FLOP per window, and the report
has its three lines. Not a timing test: the rates are not checked."""
import json
import os
import re
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_reference import HARNESS, ct_config, txl_config  # noqa: E402


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


if __name__ == "__main__":
    unittest.main()
