"""`harness run` against hostile conditions, end to end.

A generated corpus (12 test books of about 10k tokens) goes through the
project's own `tokenize train`, `tokenize words` and `shards build`; tiny
models with a 300-piece vocabulary then run on it:

- a shard truncated while the run reads it (a clear error naming the file,
  not a silent SIGBUS), or cut inside its last page (noticed before any
  result is written);
- weights holding NaN (refused when loaded, naming the tensor and index) and
  finite weights that overflow in the forward (the run stops at the first
  non-finite NLL, naming the book and the token);
- OpenBLAS kernels that fail the start-up sgemm self-check (the harness falls
  back to the coretype the environment asked for, and says so).

No run that fails may leave a results JSON or an NLL dump behind.
"""
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ref_model  # noqa: E402

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("PG19_BIN", os.path.join(TOP, "bin"))
HARNESS = os.path.join(BIN, "harness")

TXL = {"name": "robust-txl", "family": "transformer-xl", "vocab_size": 300, "d_model": 32,
       "n_layer": 2, "n_head": 2, "d_head": 16, "d_ff": 64, "window": 32, "memory": 32}
CT = dict(TXL, name="robust-ct", family="compressive-transformer", memory=16,
          compressed_memory=16, compression_rate=2, compression="conv")


def env_without_harness_defaults(**extra):
    """The caller's environment minus the harness's own re-execution markers."""
    e = {k: v for k, v in os.environ.items()
         if not k.startswith(("PG19_HARNESS_", "PG19_KEEP_OPENBLAS", "PG19_TEST_SGEMM"))}
    e.update(extra)
    return e


def cpu_has_avx512():
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((l.split(":", 1)[1].split() for l in f if l.startswith("flags")), [])
    except OSError:
        return False
    return all(x in flags for x in ("avx512f", "avx512vl", "avx512bw", "avx512dq"))


class TestRobust(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="pg19-harness-robust-")
        corpus = os.path.join(cls.tmp, "pg19")
        rng = random.Random(5)
        syll = ["ka", "lo", "mi", "ten", "sar", "ve", "qu", "dor", "ai", "nu", "pel", "ros"]
        words = ["".join(rng.choice(syll) for _ in range(rng.randint(1, 3)))
                 for _ in range(300)]
        for split, n_books, n_words in (("train", 4, 6000), ("test", 12, 3000)):
            os.makedirs(os.path.join(corpus, split))
            for b in range(n_books):
                text = " ".join(rng.choice(words) + ("." if rng.random() < 0.08 else "")
                                + ("\n" if rng.random() < 0.02 else "")
                                for _ in range(n_words))
                with open(os.path.join(corpus, split, f"{100 + b}.txt"), "w") as f:
                    f.write(text)
        cls.corpus = corpus
        t = cls.tmp
        cls.tok_model = f"{t}/tok.model"

        def run(*a):
            subprocess.run(a, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        run(os.path.join(BIN, "tokenize"), "train", "--corpus", corpus, "--vocab-size", "300",
            "-o", cls.tok_model)
        run(os.path.join(BIN, "tokenize"), "words", "--corpus", corpus, "-o", f"{t}/freqs.tsv")
        run(os.path.join(BIN, "shards"), "build", "--model", cls.tok_model, "--corpus", corpus,
            "--split", "test", "-o", f"{t}/shards", "--word-freqs", f"{t}/freqs.tsv")
        info = subprocess.run([os.path.join(BIN, "shards"), "info", f"{t}/shards/test-00000.pgs"],
                              check=True, stdout=subprocess.PIPE).stdout
        info = json.loads(info)
        cls.bos_id = info["bos_id"]
        cls.first_book = info["book_table"][0]["id"]
        for cfg in (TXL, CT):
            with open(os.path.join(t, cfg["name"] + ".json"), "w") as f:
                json.dump(cfg, f)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.dir = tempfile.mkdtemp(dir=self.tmp)
        self.shards = os.path.join(self.dir, "shards")
        shutil.copytree(os.path.join(self.tmp, "shards"), self.shards)
        self.shard = os.path.join(self.shards, "test-00000.pgs")
        self.out = os.path.join(self.dir, "test.json")
        self.dump = os.path.join(self.dir, "test.nll")

    def config(self, cfg):
        return os.path.join(self.tmp, cfg["name"] + ".json")

    def run_args(self, cfg, weights=None, extra=()):
        w = ["--weights", weights] if weights else ["--random-init", "1"]
        return [HARNESS, "run", "--model", self.config(cfg), *w, "--split", "test", "--shards",
                self.shards, "--out", self.out, "--nll-dump", self.dump, *extra]

    def assert_no_results(self):
        self.assertFalse(os.path.exists(self.out), "a results JSON was left behind")
        self.assertFalse(os.path.exists(self.dump), "an NLL dump was left behind")
        self.assertEqual([f for f in os.listdir(self.dir) if f != "shards"], [],
                         "temporary files were left behind")

    def start_then(self, action, env=None):
        """Starts a run (one book at a time), calls action once it has
        opened its shards and begun, returns (exit status, stderr)."""
        p = subprocess.Popen(self.run_args(TXL, extra=("--batch", "1", "--threads", "1")),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        first = p.stderr.readline().decode()  # "harness: robust-txl on test (12 books) ..."
        self.assertIn("on test (12 books)", first)
        action()
        rest = p.stderr.read().decode()
        return p.wait(timeout=600), first + rest

    def test_shard_truncated_mid_run(self):
        rc, err = self.start_then(lambda: os.truncate(self.shard, 0))
        self.assertEqual(rc, 1, f"exit status {rc} (negative: killed by a signal): {err}")
        self.assertIn(self.shard, err)
        self.assertIn("truncated or rewritten", err)
        self.assertIn("is now 0 bytes", err)
        self.assert_no_results()

    def test_shard_cut_inside_its_last_page(self):
        # The tail of the last page reads as zeros (no SIGBUS): the run must
        # notice that the file is not the one it verified.
        size = os.path.getsize(self.shard)
        rc, err = self.start_then(lambda: os.truncate(self.shard, size - 8))
        self.assertEqual(rc, 1, err)
        self.assertIn(self.shard, err)
        self.assertIn("changed during the run", err)
        self.assert_no_results()

    def write_weights(self, cfg, edit):
        W = ref_model.random_weights(cfg, 3)
        edit(W)
        path = os.path.join(self.tmp, f"{cfg['name']}-{self._testMethodName}.safetensors")
        ref_model.write_safetensors(path, W)
        return path

    def test_nan_weight_refused_at_load(self):
        def edit(W):
            W["layers.1.ff.w1.weight"][3, 5] = np.nan
        w = self.write_weights(CT, edit)
        p = subprocess.run(self.run_args(CT, w), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        err = p.stderr.decode()
        self.assertEqual(p.returncode, 1, err)
        self.assertIn("layers.1.ff.w1.weight holds NaN at [3, 5]", err)
        self.assertNotIn("on test", err)  # refused before any book is scored
        self.assert_no_results()

    def test_overflow_stops_at_first_nonfinite_nll(self):
        # Finite weights (they pass the load check) whose compression overflows:
        # only tokens that attend to compressed memory get non-finite logits.
        def edit(W):
            W["layers.0.compress.weight"][:] = 3e38
        w = self.write_weights(CT, edit)
        # where the first non-finite logit is, from `harness logits` on book 1
        ids = subprocess.run([os.path.join(BIN, "tokenize"), "encode", "--model", self.tok_model,
                              os.path.join(self.corpus, "test", f"{self.first_book}.txt")],
                             check=True, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL).stdout.split()
        ids = [int(x) for x in ids][:400]
        tpath = os.path.join(self.tmp, "book-tokens.u32")
        with open(tpath, "wb") as f:
            f.write(struct.pack(f"<{len(ids)}I", self.bos_id, *ids[:-1]))
        lpath = os.path.join(self.tmp, "book-logits.f32")
        subprocess.run([HARNESS, "logits", "--model", self.config(CT), "--weights", w,
                        "--tokens", tpath, "--out", lpath], check=True)
        logits = np.fromfile(lpath, dtype="<f4").reshape(len(ids), CT["vocab_size"])
        bad = np.flatnonzero(~np.isfinite(logits).all(axis=1))
        self.assertTrue(len(bad) and bad[0] > 0, "the weights should overflow after token 0")
        p = subprocess.run(self.run_args(CT, w, ("--batch", "1")), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
        err = p.stderr.decode()
        self.assertEqual(p.returncode, 1, err)
        self.assertIn(f"book {self.first_book}, token {bad[0]} ", err)
        self.assertIn("not finite", err)
        self.assert_no_results()

    @unittest.skipUnless(cpu_has_avx512(), "no AVX-512: the harness never switches kernels")
    def test_sgemm_selfcheck_fallback(self):
        def run(**env):
            p = subprocess.run(self.run_args(TXL, extra=("--max-books", "1",
                                                         "--max-tokens-per-book", "8")),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env=env_without_harness_defaults(OPENBLAS_CORETYPE="Haswell", **env))
            self.assertEqual(p.returncode, 0, p.stderr.decode())
            return p.stderr.decode()
        err = run()
        self.assertIn("OpenBLAS SkylakeX", err)
        self.assertNotIn("falling back", err)
        # the test-only switch makes the self-check disagree
        err = run(PG19_TEST_SGEMM_SELFCHECK_PERTURB="1")
        self.assertIn("OpenBLAS SkylakeX kernels disagree with a plain loop", err)
        self.assertIn("falling back to OPENBLAS_CORETYPE=Haswell", err)
        self.assertIn("OpenBLAS Haswell", err)  # the run's banner, after the fallback


if __name__ == "__main__":
    unittest.main()
