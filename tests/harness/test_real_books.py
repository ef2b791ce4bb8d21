"""`harness run` end to end on real PG-19 books (PG19_TEST_CORPUS).

The three real PG-19 books of the corpus (train 10006, validation 28213,
test 12204) go through the project's own pipeline: `tokenize train` (a small
vocabulary), `tokenize words` (training word frequencies), `shards build`,
then `harness run` with tiny random-init models. The results JSON and the
NLL dump are checked against harness/RESULTS.md and against the books
themselves (bytes, and words counted here as runs of non-White_Space).
"""
import json
import math
import os
import re
import shutil
import struct
import subprocess
import tempfile
import unittest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("PG19_BIN", os.path.join(TOP, "bin"))
CORPUS = os.environ.get("PG19_TEST_CORPUS")
BOOKS = {"train": "10006", "validation": "28213", "test": "12204"}
WHITE_SPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
RESULT_KEYS = {"schema", "model", "tokenizer", "context", "eval", "totals", "word_ppl",
               "word_ppl_exact", "buckets", "throughput", "harness", "date", "hardware",
               "nll_dump"}


def crc32c(data):
    poly, crc = 0x82F63B78, 0xFFFFFFFF
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table.append(c)
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def read_nll_dump(path):
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"PG19NLL1"
    version, dtype, n_books, n_tokens = struct.unpack("<IIQQ", data[8:32])
    assert (version, dtype) == (1, 1)
    assert len(data) == 32 + 16 * n_books + 4 * n_tokens + 4
    assert struct.unpack("<I", data[-4:])[0] == crc32c(data[:-4])
    books = [struct.unpack("<QQ", data[32 + 16 * i:48 + 16 * i]) for i in range(n_books)]
    assert sum(n for _, n in books) == n_tokens
    off = 32 + 16 * n_books
    nll = struct.unpack(f"<{n_tokens}f", data[off:off + 4 * n_tokens])
    return books, nll


@unittest.skipUnless(CORPUS, "PG19_TEST_CORPUS is not set")
class TestRealBooks(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        src = os.path.join(CORPUS, "pg19", "hf-dummy-real-books", "dummy_data")
        tools = [os.path.join(BIN, t) for t in ("tokenize", "shards", "harness")]
        if not os.path.isdir(src) or not all(os.access(t, os.X_OK) for t in tools):
            raise unittest.SkipTest("real books or the tokenize/shards tools are missing")
        cls.tmp = tempfile.mkdtemp(prefix="pg19-harness-real-")
        cls.corpus = os.path.join(cls.tmp, "pg19")
        for split, book in BOOKS.items():
            os.makedirs(os.path.join(cls.corpus, split))
            shutil.copy(os.path.join(src, book + ".txt"), os.path.join(cls.corpus, split))
        t = cls.tmp

        def run(*a):
            subprocess.run(a, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        run(tools[0], "train", "--corpus", cls.corpus, "--split", "train", "--vocab-size",
            "1000", "-o", f"{t}/tok.model")
        run(tools[0], "words", "--corpus", cls.corpus, "--split", "train", "-o",
            f"{t}/freqs.tsv")
        for split in ("validation", "test"):
            run(tools[1], "build", "--model", f"{t}/tok.model", "--corpus", cls.corpus,
                "--split", split, "-o", f"{t}/shards", "--word-freqs", f"{t}/freqs.tsv")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def harness_run(self, model, split, extra=()):
        out = os.path.join(self.tmp, f"{split}.json")
        dump = os.path.join(self.tmp, f"{split}.nll")
        p = subprocess.run([os.path.join(BIN, "harness"), "run", "--model", model,
                            "--random-init", "1", "--split", split, "--shards",
                            os.path.join(self.tmp, "shards"), "--out", out, "--nll-dump", dump,
                            *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        with open(out) as f:
            return json.load(f), dump, p.stdout.decode()

    def check_results(self, r, dump, split):
        book = BOOKS[split]
        with open(os.path.join(self.corpus, split, book + ".txt"), "rb") as f:
            raw = f.read()
        words = len(re.findall(f"[^{WHITE_SPACE}]+", raw.decode("utf-8")))
        self.assertEqual(set(r), RESULT_KEYS)
        self.assertEqual(r["schema"], "pg19-results/1")
        t = r["totals"]
        self.assertEqual(t["bytes"], len(raw))
        self.assertEqual(t["words"], words)
        self.assertEqual(r["eval"]["split"], split)
        self.assertEqual(r["eval"]["books"], 1)
        self.assertFalse(r["eval"]["official"])
        self.assertEqual(r["eval"]["book_handling"], "whole")
        self.assertTrue(math.isclose(t["token_ppl"], math.exp(t["nll"] / t["tokens"]),
                                     rel_tol=1e-12))
        self.assertTrue(math.isclose(t["bits_per_byte"], t["nll"] / (t["bytes"] * math.log(2)),
                                     rel_tol=1e-12))
        self.assertEqual(r["word_ppl"]["normaliser"], "exact")
        self.assertEqual(r["word_ppl_exact"]["words"], t["words"])
        self.assertTrue(math.isclose(r["word_ppl"]["value"], math.exp(t["nll"] / words),
                                     rel_tol=1e-12))
        b = r["buckets"]
        self.assertEqual([x["name"] for x in b], ["frequent", "common", "medium", "rare"])
        self.assertEqual(sum(x["words"] for x in b), t["words"])
        self.assertEqual(sum(x["tokens"] for x in b), t["tokens"])
        self.assertTrue(math.isclose(sum(x["nll"] for x in b), t["nll"], rel_tol=1e-6))
        for x in b:
            if x["words"]:
                self.assertTrue(math.isclose(x["word_ppl"], math.exp(x["nll"] / x["words"]),
                                             rel_tol=1e-12))
            else:
                self.assertIsNone(x["word_ppl"])
        books, nll = read_nll_dump(dump)
        self.assertEqual(books, [(int(book), t["tokens"])])
        self.assertTrue(math.isclose(math.fsum(nll), t["nll"], rel_tol=1e-9))
        self.assertTrue(all(x >= 0 for x in nll))
        with open(dump, "rb") as f:
            import hashlib
            self.assertEqual(r["nll_dump"]["sha256"], hashlib.sha256(f.read()).hexdigest())

    def test_transformer_xl_validation(self):
        r, dump, table = self.harness_run("txl-tiny", "validation")
        self.assertEqual(r["model"]["family"], "transformer-xl")
        self.assertIsNone(r["context"]["compression_rate"])
        self.check_results(r, dump, "validation")
        self.assertIn("word-level perplexity", table)

    def test_compressive_transformer_test(self):
        r, dump, _ = self.harness_run("ct-tiny", "test", ("--batch", "3", "--threads", "2"))
        self.assertEqual(r["model"]["family"], "compressive-transformer")
        self.assertEqual(r["context"]["attention_span"], 96)
        self.check_results(r, dump, "test")

    def test_weights_name_their_vocabulary(self):
        import hashlib
        weights = os.path.join(self.tmp, "txl.safetensors")
        subprocess.run([os.path.join(BIN, "harness"), "init", "--model", "txl-tiny",
                        "--random-init", "4", "--out", weights], check=True)
        with open(os.path.join(self.tmp, "tok.model"), "rb") as f:
            vocab = hashlib.sha256(f.read()).hexdigest()

        def with_vocab(sha):
            with open(weights, "rb") as f:
                data = f.read()
            n = struct.unpack("<Q", data[:8])[0]
            h = json.loads(data[8:8 + n])
            h["__metadata__"]["vocab_sha256"] = sha
            hb = json.dumps(h).encode()
            hb += b" " * (-len(hb) % 8)
            with open(weights, "wb") as f:
                f.write(struct.pack("<Q", len(hb)) + hb + data[8 + n:])

        def run():
            return subprocess.run([os.path.join(BIN, "harness"), "run", "--model", "txl-tiny",
                                   "--weights", weights, "--split", "test", "--shards",
                                   os.path.join(self.tmp, "shards"), "--max-tokens-per-book",
                                   "40"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        with_vocab("0" * 64)
        p = run()
        self.assertEqual(p.returncode, 1)
        self.assertIn("trained with vocabulary", p.stderr.decode())
        with_vocab(vocab)
        p = run()
        self.assertEqual(p.returncode, 0, p.stderr.decode())

    def test_prefix_mode_is_labelled(self):
        r, dump, _ = self.harness_run("ct-tiny", "validation", ("--max-tokens-per-book", "100"))
        self.assertEqual(r["eval"]["book_handling"], "prefix")
        self.assertEqual(r["eval"]["chunk_tokens"], 100)
        self.assertEqual(r["totals"]["tokens"], 100)
        self.assertIsNone(r["totals"]["bits_per_byte"])
        self.assertFalse(r["eval"]["official"])
        books, nll = read_nll_dump(dump)
        self.assertEqual(len(nll), 100)


if __name__ == "__main__":
    unittest.main()
