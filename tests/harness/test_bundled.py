"""The trained models that ship in models/ (ct-small, txl-small, dct-small)
on a real PG-19 validation book (PG19_TEST_CORPUS): shards built with the
bundled vocabulary, then `harness run --model NAME` with no --weights (the
weights are found beside the config, as on a fresh clone). Each run must
accept the shards (the weights name the vocabulary they were trained with),
report a trained model (weights, no seed) of its family, and give a word
perplexity far below a random model's; the DCT records its judge, and its
judge's choices differ from compressing every block (the judge is used).
"""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("PG19_BIN", os.path.join(TOP, "bin"))
CORPUS = os.environ.get("PG19_TEST_CORPUS")
BOOK = "28213"  # a real PG-19 validation book, byte-exact (pg19-sample/README.md)
PREFIX = 2048


@unittest.skipUnless(CORPUS, "PG19_TEST_CORPUS is not set")
class TestBundledModels(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="pg19-bundled-")
        corpus = os.path.join(cls.tmp, "pg19")
        os.makedirs(os.path.join(corpus, "validation"))
        shutil.copy(os.path.join(CORPUS, "pg19-sample", "validation", BOOK + ".txt"),
                    os.path.join(corpus, "validation"))
        cls.shards = os.path.join(cls.tmp, "shards")
        # word frequencies only place words in buckets (not checked here): the
        # book's own are enough for the shards to be evaluable
        freqs = os.path.join(cls.tmp, "freqs.tsv")
        subprocess.run([os.path.join(BIN, "tokenize"), "words", "--corpus", corpus, "--split",
                        "validation", "-o", freqs], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        subprocess.run([os.path.join(BIN, "shards"), "build", "--model",
                        os.path.join(TOP, "models", "pg19-sample-8k.model"), "--corpus", corpus,
                        "--split", "validation", "-o", cls.shards, "--word-freqs", freqs],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cls.random = cls.run_model("ct-small", "--random-init", "1")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def run_model(cls, name, *extra):
        out = os.path.join(cls.tmp, f"{name}{len(os.listdir(cls.tmp))}.json")
        p = subprocess.run([os.path.join(BIN, "harness"), "run", "--model", name, "--split",
                            "validation", "--shards", cls.shards, "--max-tokens-per-book",
                            str(PREFIX), "--threads", "2", "--out", out, *extra],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if p.returncode:
            raise AssertionError(f"harness run --model {name}: {p.stderr.decode()[-1500:]}")
        with open(out) as f:
            return json.load(f)

    def check(self, name, family):
        r = self.run_model(name)
        self.assertEqual(r["model"]["family"], family)
        self.assertEqual(len(r["model"]["weights_sha256"]), 64)
        self.assertIsNone(r["model"]["random_init_seed"])
        self.assertEqual(r["totals"]["tokens"], PREFIX)
        # trained: far below the random model (tens of thousands here)
        self.assertLess(r["word_ppl_exact"]["value"], self.random["word_ppl_exact"]["value"] / 3)
        return r

    def test_ct_small(self):
        self.check("ct-small", "compressive-transformer")

    def test_txl_small(self):
        self.check("txl-small", "transformer-xl")

    def test_dct_small(self):
        r = self.check("dct-small", "dct")
        j = r["context"]["judge"]
        self.assertEqual(j["policy"], "greedy")
        self.assertGreater(j["blocks_decided"], 0)
        self.assertLess(j["blocks_kept"], j["blocks_decided"])
        every = self.run_model("dct-small", "--dct-policy", "compress")
        self.assertEqual(every["context"]["judge"]["blocks_kept"],
                         every["context"]["judge"]["blocks_decided"])
        self.assertNotEqual(every["totals"]["nll"], r["totals"]["nll"])


if __name__ == "__main__":
    unittest.main()
