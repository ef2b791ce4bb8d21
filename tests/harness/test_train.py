"""`harness train` end to end on small synthetic books (tokenize train,
shards build, then training): the run directory, exact resume after kill -9
and after SIGTERM (bitwise-identical weights to an uninterrupted run),
refusal of corrupt checkpoints, a NaN loss stopping the run with the step
named, validation through the code of `harness run`, and data parallelism
under mpirun (2 ranks x batch 1 vs 1 process x batch 2; a 2-rank checkpoint
resumed by 1 process).
"""
import json
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mpienv  # noqa: E402
import ref_model  # noqa: E402

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("PG19_BIN", os.path.join(TOP, "bin"))
HARNESS = os.path.join(BIN, "harness")

MODEL = {"name": "train-test", "family": "compressive-transformer", "vocab_size": 300,
         "d_model": 32, "n_layer": 2, "n_head": 2, "d_head": 16, "d_ff": 64, "window": 16,
         "memory": 16, "compressed_memory": 8, "compression_rate": 2, "compression": "conv"}
COMMON = ["--lr", "3e-3", "--warmup", "5", "--log-every", "1000", "--threads", "1"]
LR = 3e-3


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def write_bytes(path, data):
    with open(path, "wb") as f:
        f.write(data)


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    hdr = json.loads(data[8:8 + n])
    out = {}
    for k, v in hdr.items():
        if k != "__metadata__":
            b, e = v["data_offsets"]
            out[k] = np.frombuffer(data[8 + n + b:8 + n + e], dtype="<f4").reshape(v["shape"])
    return out


def build_fixture(tmp, tools):
    """Small synthetic books under tmp (6 train, 2 validation), a 300-piece
    vocabulary trained on the train books, and their shards; returns the
    shard directory. Also used by test_dct_train.py."""
    corpus = os.path.join(tmp, "pg19")
    rng = random.Random(4)
    words = ("the a cat dog sat on mat and ran to house old man sea ship in of he she was "
             "is green river light dark").split()
    for split, ids in (("train", range(101, 107)), ("validation", range(201, 203))):
        os.makedirs(os.path.join(corpus, split))
        for i in ids:
            text = " ".join(rng.choice(words) + ("." if rng.random() < 0.1 else "")
                            for _ in range(700))
            with open(os.path.join(corpus, split, f"{i}.txt"), "w") as f:
                f.write(text + "\n")
    t = tmp

    def run(*a):
        subprocess.run(a, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    run(tools[0], "train", "--corpus", corpus, "--split", "train", "--vocab-size", "300",
        "-o", f"{t}/tok.model")
    run(tools[0], "words", "--corpus", corpus, "--split", "train", "-o", f"{t}/freqs.tsv")
    for split in ("train", "validation"):
        run(tools[1], "build", "--model", f"{t}/tok.model", "--corpus", corpus, "--split",
            split, "-o", f"{t}/shards", "--word-freqs", f"{t}/freqs.tsv")
    return os.path.join(t, "shards")


class TrainTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        tools = [os.path.join(BIN, t) for t in ("tokenize", "shards", "harness")]
        if not all(os.access(t, os.X_OK) for t in tools):
            raise unittest.SkipTest("tokenize/shards/harness not built")
        cls.tmp = tempfile.mkdtemp(prefix="pg19-train-test-")
        build_fixture(cls.tmp, tools)
        t = cls.tmp
        cls.model = os.path.join(t, "model.json")
        with open(cls.model, "w") as f:
            json.dump(MODEL, f)
        cls.shards = os.path.join(t, "shards")
        cls.n = 0

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def out(self):
        TrainTest.n += 1
        return os.path.join(self.tmp, f"run{TrainTest.n}")

    def train(self, out, *extra, check=True, resume=False, env=None, mpi=0):
        args = [HARNESS, "train", "--out", out, *extra]
        if not resume:
            args[2:2] = ["--model", self.model, "--shards", self.shards, *COMMON]
        else:
            args += ["--resume", "--threads", "1"]
        if mpi:
            args = ["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", str(mpi), *args]
        p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=env or (mpienv.mpi_env() if mpi else None))
        if check and p.returncode != 0:
            self.fail(f"{' '.join(args)}: exit {p.returncode}: {p.stderr.decode()[-2000:]}")
        return p

    def weights(self, out, step):
        with open(os.path.join(out, f"weights-{step:08d}.safetensors"), "rb") as f:
            return f.read()

    def log(self, out):
        with open(os.path.join(out, "log.jsonl")) as f:
            return [json.loads(line) for line in f]

    def test_run_directory_and_validation(self):
        out = self.out()
        self.train(out, "--steps", "20", "--batch", "2", "--eval-every", "10",
                   "--checkpoint-every", "10", "--eval-books", "2", "--eval-tokens", "200")
        for name in ("config.json", "model.json", "log.jsonl", "loss.svg", "state.bin",
                     "weights-00000020.safetensors"):
            self.assertTrue(os.path.exists(os.path.join(out, name)), name)
        # the weights name the vocabulary of the shards they were trained on
        data = read_bytes(os.path.join(out, "weights-00000020.safetensors"))
        meta = json.loads(data[8:8 + struct.unpack("<Q", data[:8])[0]])["__metadata__"]
        shard = read_bytes(os.path.join(self.shards, "train-00000.pgs"))
        self.assertIn(bytes.fromhex(meta["vocab_sha256"]), shard)
        self.assertFalse(os.path.exists(os.path.join(out, "weights-00000010.safetensors")))
        log = self.log(out)
        steps = [r for r in log if "loss" in r]
        self.assertEqual([r["step"] for r in steps], list(range(1, 21)))
        self.assertLess(steps[-1]["loss"], steps[0]["loss"])
        self.assertTrue(all(r["tokens"] == 32 * r["step"] for r in steps))
        self.assertAlmostEqual(steps[0]["lr"], LR / 5, places=7)  # warm-up
        val = [r for r in log if "val_word_ppl" in r]
        self.assertEqual([r["step"] for r in val], [10, 20])
        # the same evaluation as `harness run` on the final weights
        res = os.path.join(out, "results.json")
        subprocess.run([HARNESS, "run", "--model", os.path.join(out, "model.json"), "--weights",
                        os.path.join(out, "weights-00000020.safetensors"), "--split",
                        "validation", "--shards", self.shards, "--max-books", "2",
                        "--max-tokens-per-book", "200", "--out", res], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(res) as f:
            r = json.load(f)
        self.assertAlmostEqual(r["word_ppl_exact"]["value"] / val[-1]["val_word_ppl"], 1.0,
                               delta=1e-9)
        with open(os.path.join(out, "loss.svg")) as f:
            self.assertIn("<svg", f.read())
        # a second run into the same directory is refused
        p = self.train(out, "--steps", "5", check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(b"--resume", p.stderr)

    def test_threads_do_not_change_the_weights(self):
        one, two = self.out(), self.out()
        self.train(one, "--steps", "6", "--batch", "3")
        self.train(two, "--steps", "6", "--batch", "3", "--threads", "2")
        self.assertEqual(self.weights(one, 6), self.weights(two, 6))

    def test_update_frequency_knob(self):
        out = self.out()
        self.train(out, "--steps", "5", "--batch", "2", "--update-freq-after", "2",
                   "--update-freq", "3")
        tokens = [r["tokens"] for r in self.log(out) if "loss" in r]
        # 2 streams x 16-token windows; from step 3 on, 3 windows per update
        self.assertEqual(tokens, [32, 64, 160, 256, 352])
        self.assertEqual(json.loads(read_bytes(os.path.join(out, "config.json")))["update_freq"],
                         3)

    def test_export_bf16(self):
        out = self.out()
        self.train(out, "--steps", "3", "--batch", "2")
        f32 = os.path.join(out, "weights-00000003.safetensors")
        bf = os.path.join(out, "bf16.safetensors")
        subprocess.run([HARNESS, "train-export", "--model", os.path.join(out, "model.json"),
                        "--weights", f32, "--out", bf, "--shards", self.shards], check=True)
        data = read_bytes(bf)
        n = struct.unpack("<Q", data[:8])[0]
        hdr = json.loads(data[8:8 + n])
        self.assertEqual(len(hdr["__metadata__"]["vocab_sha256"]), 64)
        a = read_safetensors(f32)
        for k, v in hdr.items():
            if k == "__metadata__":
                continue
            self.assertEqual(v["dtype"], "BF16")
            b, e = v["data_offsets"]
            got = np.frombuffer(data[8 + n + b:8 + n + e], dtype="<u2").astype(np.uint32) << 16
            got = got.view(np.float32).reshape(v["shape"])
            np.testing.assert_allclose(got, a[k], rtol=2 ** -8, atol=0, err_msg=k)
        # loads in `harness run`, whose vocabulary check passes on these shards
        subprocess.run([HARNESS, "run", "--model", os.path.join(out, "model.json"), "--weights",
                        bf, "--split", "validation", "--shards", self.shards, "--max-books", "1",
                        "--max-tokens-per-book", "50"], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)

    def test_resume_after_kill9_is_exact(self):
        ref = self.out()
        self.train(ref, "--steps", "300", "--batch", "2", "--checkpoint-every", "7")
        out = self.out()
        args = [HARNESS, "train", "--model", self.model, "--shards", self.shards, "--out", out,
                *COMMON, "--steps", "300", "--batch", "2", "--checkpoint-every", "7"]
        p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        state = os.path.join(out, "state.bin")
        deadline = time.time() + 60
        while not os.path.exists(state) and time.time() < deadline and p.poll() is None:
            time.sleep(0.005)
        p.kill()
        self.assertEqual(p.wait(), -signal.SIGKILL, "the run ended before it could be killed")
        self.train(out, resume=True)
        self.assertEqual(self.weights(out, 300), self.weights(ref, 300))
        steps = [r["step"] for r in self.log(out) if "loss" in r]
        self.assertEqual(steps, list(range(1, 301)))

    def test_sigterm_writes_checkpoint_and_resumes_exactly(self):
        ref = self.out()
        self.train(ref, "--steps", "200", "--batch", "2", "--checkpoint-every", "1000")
        out = self.out()
        args = [HARNESS, "train", "--model", self.model, "--shards", self.shards, "--out", out,
                *COMMON, "--steps", "200", "--batch", "2", "--checkpoint-every", "1000"]
        p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        log = os.path.join(out, "log.jsonl")
        deadline = time.time() + 60
        while time.time() < deadline and p.poll() is None:
            if os.path.exists(log) and os.path.getsize(log) > 0:
                break
            time.sleep(0.005)
        p.send_signal(signal.SIGTERM)
        err = p.communicate()[1]
        self.assertEqual(p.returncode, 130, err.decode())
        self.assertIn(b"interrupted after step", err)
        self.assertTrue(os.path.exists(os.path.join(out, "state.bin")))
        self.train(out, resume=True)
        self.assertEqual(self.weights(out, 200), self.weights(ref, 200))

    def test_corrupt_checkpoint_is_refused(self):
        out = self.out()
        self.train(out, "--steps", "4", "--batch", "2")
        state = os.path.join(out, "state.bin")
        good = read_bytes(state)
        bad = bytearray(good)
        bad[len(bad) // 2] ^= 1
        write_bytes(state, bad)
        p = self.train(out, "--steps", "8", check=False, resume=True)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(b"checksum mismatch", p.stderr)
        write_bytes(state, good[:-100])
        p = self.train(out, "--steps", "8", check=False, resume=True)
        self.assertIn(b"refusing to resume", p.stderr)
        write_bytes(state, good)
        w = os.path.join(out, "weights-00000004.safetensors")
        wb = bytearray(read_bytes(w))
        wb[-3] ^= 0x40
        write_bytes(w, wb)
        p = self.train(out, "--steps", "8", check=False, resume=True)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(b"SHA-256 differs", p.stderr)
        wb[-3] ^= 0x40
        write_bytes(w, wb)
        cfg = os.path.join(out, "config.json")
        good_cfg = read_bytes(cfg)
        write_bytes(cfg, b"{not json")
        p = self.train(out, "--steps", "8", check=False, resume=True)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(b"config.json", p.stderr)
        write_bytes(cfg, good_cfg)
        p = self.train(out, "--steps", "8", "--batch", "3", check=False, resume=True)
        self.assertIn(b"global batch", p.stderr)
        self.train(out, "--steps", "8", resume=True)

    def test_nan_loss_stops_with_the_step(self):
        # finite weights that overflow in the forward (NaN weights are refused
        # at load, test_nan_weights_are_refused)
        W = ref_model.random_weights(MODEL, 1)
        W["layers.1.ff.w2.bias"][:8] = 3e38
        init = os.path.join(self.tmp, "overflow.safetensors")
        ref_model.write_safetensors(init, W)
        out = self.out()
        p = self.train(out, "--steps", "5", "--batch", "2", "--init-weights", init, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(b"step 1: loss", p.stderr)
        self.assertIn(b"not finite", p.stderr)
        self.assertFalse(os.path.exists(os.path.join(out, "state.bin")))

    def test_nan_weights_are_refused(self):
        W = ref_model.random_weights(MODEL, 1)
        W["layers.1.ff.w2.bias"][3] = np.nan
        init = os.path.join(self.tmp, "nan.safetensors")
        ref_model.write_safetensors(init, W)
        out = self.out()
        p = self.train(out, "--steps", "5", "--batch", "2", "--init-weights", init, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(b"layers.1.ff.w2.bias holds NaN", p.stderr)
        self.assertFalse(os.path.exists(os.path.join(out, "state.bin")))

    @unittest.skipIf(mpienv.mpirun_missing(), mpienv.mpirun_missing() or "")
    def test_data_parallel_matches_one_process(self):
        """2 ranks x batch 1 = 1 process x batch 2, within fp32 tolerance: the
        gradient sums differ only in order (losses agree to 1e-6 relative);
        weights to 2e-5 absolute, except attn.r.weight, whose gradient along
        near-constant sinusoid features is zero by the softmax's shift
        invariance: Adam turns that rounding noise into steps of up to lr,
        so those entries are only bounded by lr x steps."""
        one, two, mixed = self.out(), self.out(), self.out()
        self.train(one, "--steps", "10", "--batch", "2")
        self.train(two, "--steps", "10", "--batch", "1", mpi=2)
        self.train(mixed, "--steps", "5", "--batch", "1", mpi=2)
        self.train(mixed, "--steps", "10", resume=True)  # 2-rank checkpoint, 1 process
        a = read_safetensors(os.path.join(one, "weights-00000010.safetensors"))
        for other in (two, mixed):
            b = read_safetensors(os.path.join(other, "weights-00000010.safetensors"))
            for k in a:
                tol = LR * 10 if k.endswith("attn.r.weight") else 2e-5
                self.assertLess(np.abs(a[k] - b[k]).max(), tol, f"{other}: {k}")
            la = [r["loss"] for r in self.log(one)]
            lb = [r["loss"] for r in self.log(other)]
            np.testing.assert_allclose(la, lb, rtol=1e-6)


if __name__ == "__main__":
    unittest.main()
