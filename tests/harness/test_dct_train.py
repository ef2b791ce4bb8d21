"""The DCT end to end on small synthetic books: a CT and a TXL trained by
`harness train`, then a DCT trained from the CT's weights with the TXL as
the frozen baseline (REINFORCE + entropy bonus), and evaluated by
`harness run` like any model:
  - the run logs the judge (decisions, kept fraction, advantage, entropy);
  - kill -9 and --resume continue exactly (weights bitwise those of an
    uninterrupted run): the judge's records, views and generators are in
    the checkpoint;
  - the DCT training changes the judge's weights (REINFORCE reaches them)
    and a DCT without --baseline is refused with a message;
  - `harness run --dct-policy compress` on the DCT's weights gives the CT's
    NLL sums exactly for the same weights, `discard` a different one, and
    greedy/sample runs record the judge in context.judge (kept <= decided),
    with --dct-sample reproducible for a seed.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ref_model  # noqa: E402
import test_train  # noqa: E402

TOP = test_train.TOP
BIN = test_train.BIN
HARNESS = test_train.HARNESS

BASE = {"vocab_size": 300, "d_model": 32, "n_layer": 2, "n_head": 2, "d_head": 16, "d_ff": 64,
        "window": 16, "memory": 16}
CT = dict(BASE, name="dct-test-ct", family="compressive-transformer", compressed_memory=8,
          compression_rate=2, compression="conv")
TXL = dict(BASE, name="dct-test-txl", family="transformer-xl")
DCT = dict(CT, name="dct-test", family="dct", judge_hidden=8)
COMMON = ["--lr", "3e-3", "--warmup", "5", "--log-every", "1000", "--threads", "1",
          "--batch", "2"]


class DctTrainTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        tools = [os.path.join(BIN, t) for t in ("tokenize", "shards", "harness")]
        if not all(os.access(t, os.X_OK) for t in tools):
            raise unittest.SkipTest("tokenize/shards/harness not built")
        cls.tmp = tempfile.mkdtemp(prefix="pg19-dct-test-")
        cls.shards = test_train.build_fixture(cls.tmp, tools)
        cls.cfg = {}
        for cfg in (CT, TXL, DCT):
            path = os.path.join(cls.tmp, cfg["name"] + ".json")
            with open(path, "w") as f:
                json.dump(cfg, f)
            cls.cfg[cfg["family"]] = path
        # the pretrained CT and the baseline TXL
        for fam in ("compressive-transformer", "transformer-xl"):
            out = os.path.join(cls.tmp, fam)
            subprocess.run([HARNESS, "train", "--model", cls.cfg[fam], "--shards", cls.shards,
                            "--out", out, "--steps", "12", *COMMON], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cls.ct_w = os.path.join(cls.tmp, "compressive-transformer", "weights-00000012.safetensors")
        cls.txl_w = os.path.join(cls.tmp, "transformer-xl", "weights-00000012.safetensors")
        cls.n = 0

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def out(self):
        DctTrainTest.n += 1
        return os.path.join(self.tmp, f"dct{DctTrainTest.n}")

    def dct_args(self, out, steps):
        return [HARNESS, "train", "--model", self.cfg["dct"], "--shards", self.shards, "--out",
                out, "--steps", str(steps), "--init-weights", self.ct_w, "--baseline",
                self.cfg["transformer-xl"], "--baseline-weights", self.txl_w,
                "--dct-alpha", "0.05", "--checkpoint-every", "1", *COMMON]

    def train_dct(self, out, steps):
        p = subprocess.run(self.dct_args(out, steps), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
        if p.returncode:
            self.fail(p.stderr.decode()[-2000:])

    def weights(self, out, step):
        return test_train.read_safetensors(os.path.join(out, f"weights-{step:08d}.safetensors"))

    def log(self, out):
        with open(os.path.join(out, "log.jsonl")) as f:
            return [json.loads(line) for line in f if "loss" in line]

    def run_eval(self, model, weights, *extra):
        res = os.path.join(self.tmp, f"res{time.monotonic_ns()}.json")
        p = subprocess.run([HARNESS, "run", "--model", model, "--weights", weights, "--split",
                            "validation", "--shards", self.shards, "--max-tokens-per-book", "300",
                            "--out", res, *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if p.returncode:
            self.fail(p.stderr.decode()[-2000:])
        with open(res) as f:
            return json.load(f)

    def test_training_logs_the_judge_and_trains_it(self):
        out = self.out()
        self.train_dct(out, 10)
        log = self.log(out)
        self.assertEqual([r["step"] for r in log], list(range(1, 11)))
        # windows of 16 into a memory of 16: from the second window on, 8 blocks each
        for r in log[1:]:
            self.assertEqual(r["dct_decisions"], 2 * 8)
            self.assertGreaterEqual(r["dct_kept"], 0.0)
            self.assertLessEqual(r["dct_kept"], 1.0)
            self.assertIn("baseline_loss", r)
            self.assertGreaterEqual(r["judge_grad_norm"], 0.0)
        rewarded = [r for r in log if r["dct_advantage"] is not None]
        self.assertGreater(len(rewarded), 5)
        self.assertTrue(all(0 < r["dct_entropy"] <= 0.6932 for r in rewarded))
        w0 = test_train.read_safetensors(self.ct_w)
        w = self.weights(out, 10)
        # the CT's tensors moved on from the CT's weights, and the judge learned
        self.assertTrue(any(k.startswith("judge.") for k in w))
        self.assertGreater(abs(w["layers.0.attn.q.weight"] - w0["layers.0.attn.q.weight"]).max(),
                           0)
        first = os.path.join(out, "weights-00000001.safetensors")
        self.assertFalse(os.path.exists(first))  # only the last checkpoint is kept

    def test_kill_and_resume_is_exact(self):
        whole, part = self.out(), self.out()
        self.train_dct(whole, 40)
        p = subprocess.Popen(self.dct_args(part, 40), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        state = os.path.join(part, "state.bin")
        deadline = time.time() + 120
        while time.time() < deadline:  # wait for a checkpoint past step 3
            log = os.path.join(part, "log.jsonl")
            if os.path.exists(log) and os.path.exists(state):
                with open(log) as f:
                    if sum(1 for _ in f) >= 4:
                        break
            time.sleep(0.02)
        p.send_signal(signal.SIGKILL)
        p.wait()
        # killed part-way: the last step's weights are not there yet
        self.assertFalse(os.path.exists(os.path.join(part, "weights-00000040.safetensors")))
        r = subprocess.run([HARNESS, "train", "--out", part, "--resume", "--threads", "1"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertEqual(r.returncode, 0, r.stderr.decode()[-2000:])
        a, b = self.weights(whole, 40), self.weights(part, 40)
        self.assertEqual(sorted(a), sorted(b))
        for k in a:
            self.assertTrue((a[k] == b[k]).all(), k)

    def test_dct_needs_a_baseline(self):
        out = self.out()
        p = subprocess.run([HARNESS, "train", "--model", self.cfg["dct"], "--shards",
                            self.shards, "--out", out, "--steps", "2", *COMMON],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(b"--baseline", p.stderr)

    def test_evaluation_policies(self):
        out = self.out()
        self.train_dct(out, 4)
        w = os.path.join(out, "weights-00000004.safetensors")
        dct = self.cfg["dct"]
        comp = self.run_eval(dct, w, "--dct-policy", "compress")
        disc = self.run_eval(dct, w, "--dct-policy", "discard")
        greedy = self.run_eval(dct, w)
        s1 = self.run_eval(dct, w, "--dct-sample", "7")
        s2 = self.run_eval(dct, w, "--dct-sample", "7")
        # the CT with the same weights (the judge's tensors dropped)
        ct_w = os.path.join(self.tmp, f"ctw{self.n}.safetensors")
        tensors = test_train.read_safetensors(w)
        ct = {k: v for k, v in tensors.items() if not k.startswith("judge.")}
        ref_model.write_safetensors(ct_w, ct)
        ct_res = self.run_eval(self.cfg["compressive-transformer"], ct_w)
        self.assertEqual(comp["totals"]["nll"], ct_res["totals"]["nll"])
        self.assertNotEqual(disc["totals"]["nll"], ct_res["totals"]["nll"])
        self.assertEqual(comp["model"]["family"], "dct")
        j = comp["context"]["judge"]
        self.assertEqual(j["policy"], "compress")
        self.assertEqual(j["blocks_kept"], j["blocks_decided"])
        self.assertEqual(disc["context"]["judge"]["blocks_kept"], 0)
        g = greedy["context"]["judge"]
        self.assertEqual((g["policy"], g["seed"]), ("greedy", None))
        self.assertGreater(g["blocks_decided"], 0)
        self.assertLessEqual(g["blocks_kept"], g["blocks_decided"])
        self.assertEqual(s1["context"]["judge"]["seed"], 7)
        self.assertEqual(s1["totals"]["nll"], s2["totals"]["nll"])
        self.assertEqual(s1["context"]["judge"]["blocks_kept"],
                         s2["context"]["judge"]["blocks_kept"])
        # the DCT's options are refused for other models
        p = subprocess.run([HARNESS, "run", "--model", self.cfg["compressive-transformer"],
                            "--weights", ct_w, "--split", "validation", "--shards", self.shards,
                            "--dct-sample", "3"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(b"not a DCT", p.stderr)


if __name__ == "__main__":
    unittest.main()
