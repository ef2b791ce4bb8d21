#!/usr/bin/python3
"""The PyTorch baseline of the training benchmark (harness/bench_torch_train.py)
computes the training objective of `harness train-grad`: on models/ct-tiny.json,
over enough windows that the compressed memory fills and drops rows, its NLL
and reconstruction sums and every gradient agree with the harness's within
the bounds harness/bench_train.py enforces, in float64 and float32; and the
check does catch a baseline that computes something else (queries scaled by
1% in the reconstruction loss's attention). Not a timing test: nothing is
timed. Skipped when PyTorch (Debian python3-torch) is missing.
"""
import json
import os
import sys
import unittest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(TOP, "harness"))
sys.path.insert(0, os.path.join(TOP, "common"))
BIN = os.environ.get("PG19_BIN", os.path.join(TOP, "bin"))
HARNESS = os.path.join(BIN, "harness")

try:
    import torch
    import bench_torch_train
    import bench_train
except ImportError:  # pragma: no cover
    torch = None

CONFIG = os.path.join(TOP, "models", "ct-tiny.json")


@unittest.skipIf(torch is None, "PyTorch missing (Debian python3-torch)")
class TestTrainBaselineAgreement(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        torch.set_num_threads(1)
        with open(CONFIG) as f:
            cls.cfg = json.load(f)

    def test_agrees_with_harness(self):
        res = bench_torch_train.check_agreement(self.cfg, HARNESS, CONFIG, batch=2)
        self.assertGreaterEqual(res["windows"], bench_torch_train.windows_to_drop(self.cfg))
        for dt, tol in (("f64", bench_train.TOL_F64), ("f32", bench_train.TOL_F32)):
            a = res[dt]
            self.assertTrue(a["dropped"], f"{dt}: the compressed memory never dropped rows")
            self.assertGreater(a["compressor_grad"], 0, f"{dt}: no reconstruction gradient")
            for k, bound in tol.items():
                self.assertLessEqual(a[k], bound, f"{dt} {k}: {a}")
        self.assertTrue(bench_train.report_agreement(res))

    def test_catches_a_different_objective(self):
        orig = bench_torch_train.TorchTrainModel.content_attention

        def skewed(model, q, k, v):
            return orig(model, q * 1.01, k, v)

        bench_torch_train.TorchTrainModel.content_attention = skewed
        try:
            res = bench_torch_train.check_agreement(self.cfg, HARNESS, CONFIG, batch=2)
        finally:
            bench_torch_train.TorchTrainModel.content_attention = orig
        self.assertGreater(res["f64"]["grad_rel"], bench_train.TOL_F64["grad_rel"])
        self.assertEqual(res["f64"]["grad_worst"].split(".")[-2], "compress")
        self.assertFalse(bench_train.report_agreement(res))


if __name__ == "__main__":
    unittest.main()
