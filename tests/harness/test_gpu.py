"""The CUDA backend (harness/cuda/) against the CPU forward, in the normal
suite: skips with the reason when this harness was built without CUDA or
the machine has no usable GPU (the probe is `harness logits --device
cuda`). scripts/gpu-check.sh runs these on a GPU machine, plus larger
parity runs and the benchmark.

Tolerances (harness/README.md, "CUDA backend"): fp32 logits within 1e-4 of
the CPU relative to their largest magnitude; bf16 per-token NLL within 0.1
nats of the CPU's and word perplexity within 0.5%."""
import json
import os
import subprocess
import tempfile
import unittest

import gpu_parity
from mpienv import mpi_env, mpirun_missing

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("PG19_BIN", os.path.join(TOP, "bin"))
HARNESS = os.path.join(BIN, "harness")


def gpu_missing():
    """None when `harness --device cuda` works here, else why not."""
    if not os.access(HARNESS, os.X_OK):
        return f"{HARNESS} not built"
    with tempfile.TemporaryDirectory() as d:
        t = os.path.join(d, "t.u32")
        with open(t, "wb") as f:
            f.write(b"\x01\x00\x00\x00")
        p = subprocess.run([HARNESS, "logits", "--model", "txl-tiny", "--random-init", "1",
                            "--tokens", t, "--out", os.path.join(d, "o"), "--device", "cuda"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=gpu_parity.gpu_env())
        if p.returncode != 0:
            return "no usable GPU: " + p.stderr.decode("utf-8", "replace").strip()[-300:]
    return None


class GpuTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        why = gpu_missing()
        if why:
            raise unittest.SkipTest(why)
        cls.tmp = tempfile.TemporaryDirectory()
        cls.shards = os.path.join(cls.tmp.name, "shards")
        subprocess.run([os.path.join(BIN, "synth-shards"), "--out", cls.shards, "--split",
                        "validation", "--books", "6", "--tokens-per-book", "400"], check=True,
                       stderr=subprocess.DEVNULL)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_fp32_logits_match_the_cpu(self):
        """txl-tiny and ct-tiny with every compression function, 300 tokens:
        windows of 32 with memory 32 and compressed memory 32 compress many
        times over."""
        for spec in ["txl-tiny"] + ["ct-tiny:" + c for c in gpu_parity.COMPRESSIONS]:
            with self.subTest(model=spec):
                err = gpu_parity.logits_parity(HARNESS, spec, 300, "cuda", "fp32")
                self.assertLess(err, 1e-4, f"{spec}: relative error {err:.3g}")

    def test_bf16_nll_and_word_perplexity(self):
        mx, mean, dppl, _, b = gpu_parity.nll_parity(HARNESS, self.shards, "validation",
                                                      "ct-tiny", "cuda", "bf16", batch=4)
        self.assertLess(mx, 0.1, f"max |dNLL| {mx:.3g} (mean {mean:.3g})")
        self.assertLess(dppl, 0.005, f"word perplexity differs by {dppl:.3g}")
        self.assertIn("(bf16)", b["hardware"]["gpu"])

    def test_deterministic_and_auto(self):
        with tempfile.TemporaryDirectory() as d:
            a, adump, _ = gpu_parity.harness_run(HARNESS, self.shards, "validation", "ct-tiny",
                                                 "cuda", d, "a", batch=3)
            b, bdump, err = gpu_parity.harness_run(HARNESS, self.shards, "validation",
                                                   "ct-tiny", "auto", d, "b", batch=3)
            self.assertIn("device cuda:", err.splitlines()[0])
            with open(adump, "rb") as f1, open(bdump, "rb") as f2:
                self.assertEqual(f1.read(), f2.read(), "two runs differ")
            self.assertEqual(a["totals"], b["totals"])

    def test_mpi_ranks_equal_one_process(self):
        if mpirun_missing():
            self.skipTest(mpirun_missing())
        with tempfile.TemporaryDirectory() as d:
            _, one, _ = gpu_parity.harness_run(HARNESS, self.shards, "validation", "ct-tiny",
                                               "cuda", d, "one", batch=2)
            env = mpi_env()
            env["ASAN_OPTIONS"] = gpu_parity.gpu_env()["ASAN_OPTIONS"]
            args = ["mpirun", "--oversubscribe", "-np", "2", HARNESS, "run", "--model",
                    "ct-tiny", "--random-init", "1", "--split", "validation", "--shards",
                    self.shards, "--nll-dump", os.path.join(d, "two.nll"), "--device", "cuda",
                    "--batch", "2"]
            p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
            self.assertEqual(p.returncode, 0, p.stderr.decode())
            with open(one, "rb") as f1, open(os.path.join(d, "two.nll"), "rb") as f2:
                self.assertEqual(f1.read(), f2.read())


if __name__ == "__main__":
    unittest.main()
