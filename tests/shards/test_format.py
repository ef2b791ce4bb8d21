"""An independent reading of shards/FORMAT.md in Python, checked against what
`shards build` writes: header fields, section layout (alignment, zero
padding, exact sizes, file end), the book table, word-start bits (first token
of each book set, popcount = words), token ids inside the vocabulary, the
vocabulary SHA-256, and word frequencies against a count done here.
(Checksums are XXH3, which the standard library lacks; the C tests cover
them, including every single-byte flip.)"""
import collections
import glob
import hashlib
import os
import shutil
import struct
import subprocess
import tempfile
import unicodedata
import unittest

BIN = os.environ.get("PG19_BIN", os.path.join(os.path.dirname(__file__), "..", "..", "bin"))

BOOKS = {
    "train": {3: b"The cat sat.\r\nThe dog sat, the cat ran!\r\n", 7: b"A cat.  \r\n\r\n",
              9: b"\"Well,\" said the Cat; well well.\r\n"},
    "test": {2: b"", 4: b"The cat and a bird.\r\n   ", 8: b"   \r\n", 11: b"Unseen words here cat"},
}


def word_type(w: str) -> str:
    a, b = 0, len(w)
    while a < b and unicodedata.category(w[a]).startswith("P"):
        a += 1
    while b > a and unicodedata.category(w[b - 1]).startswith("P"):
        b -= 1
    return (w[a:b] if a < b else w).lower()


class Format(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="pg19-fmt-")
        corpus = os.path.join(cls.tmp, "pg19")
        for split, books in BOOKS.items():
            os.makedirs(os.path.join(corpus, split))
            for bid, data in books.items():
                with open(os.path.join(corpus, split, f"{bid}.txt"), "wb") as f:
                    f.write(data)
        cls.model = os.path.join(cls.tmp, "m.model")
        env = dict(os.environ)
        env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":malloc_context_size=0"
        run = lambda args: subprocess.run(args, check=True, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, env=env)
        run([os.path.join(BIN, "tokenize"), "train", "--corpus", corpus, "--vocab-size", "300",
             "-o", cls.model])
        freqs = os.path.join(cls.tmp, "f.tsv")
        run([os.path.join(BIN, "tokenize"), "words", "--corpus", corpus, "-o", freqs])
        cls.out = os.path.join(cls.tmp, "shards")
        run([os.path.join(BIN, "shards"), "build", "--model", cls.model, "--corpus", corpus,
             "--split", "test", "-o", cls.out, "--word-freqs", freqs])
        run([os.path.join(BIN, "shards"), "build", "--model", cls.model, "--corpus", corpus,
             "--split", "train", "-o", cls.out])

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def parse(self, path):
        d = open(path, "rb").read()
        self.assertEqual(d[:8], b"PG19SHRD")
        version, bom, hsize, dtype, vocab, bos, split, flags = struct.unpack_from("<8I", d, 8)
        self.assertEqual((version, bom, hsize), (2, 0x0A0B0C0D, 256))
        self.assertIn(dtype, (2, 4))
        self.assertLess(bos, vocab)
        n_books, n_tokens, n_words, n_bytes = struct.unpack_from("<4Q", d, 40)
        sha = d[72:104]
        secs = [struct.unpack_from("<3Q", d, 104 + 24 * i) for i in range(4)]
        self.assertEqual(d[200:248], bytes(48))
        want = [88 * n_books, dtype * n_tokens, (n_tokens + 7) // 8, 8 * n_words if flags & 1 else 0]
        pos = 256
        for (off, size, _sum), w in zip(secs, want):
            self.assertEqual(off % 64, 0)
            self.assertGreaterEqual(off, pos)
            self.assertEqual(d[pos:off], bytes(off - pos))  # zero padding
            self.assertEqual(size, w)
            pos = off + size
        self.assertEqual(pos, len(d))
        books = [struct.unpack_from("<QIIQQQQQ32s", d, secs[0][0] + 88 * i)
                 for i in range(n_books)]
        fmt = "<%d%s" % (n_tokens, "H" if dtype == 2 else "I")
        tokens = struct.unpack_from(fmt, d, secs[1][0])
        bits = d[secs[2][0]:secs[2][0] + secs[2][1]]
        starts = [(bits[t // 8] >> (t % 8)) & 1 for t in range(n_tokens)]
        freqs = struct.unpack_from("<%dQ" % n_words, d, secs[3][0]) if flags & 1 else None
        return dict(vocab=vocab, split=split, sha=sha, books=books, tokens=tokens, starts=starts,
                    freqs=freqs, n_bytes=n_bytes, n_words=n_words)

    def test_layout_and_book_table(self):
        model_sha = hashlib.sha256(open(self.model, "rb").read()).digest()
        for split, code in (("train", 0), ("test", 2)):
            files = sorted(glob.glob(os.path.join(self.out, f"{split}-*.pgs")))
            self.assertEqual(len(files), 1)
            s = self.parse(files[0])
            self.assertEqual(s["split"], code)
            self.assertEqual(s["sha"], model_sha)
            self.assertEqual([b[0] for b in s["books"]], sorted(BOOKS[split]))
            tok = wrd = 0
            for bid, bsplit, zero, toff, ntok, woff, nw, nbytes, text_sha in s["books"]:
                self.assertEqual((bsplit, zero, toff, woff), (code, 0, tok, wrd))
                self.assertEqual(nbytes, len(BOOKS[split][bid]))
                self.assertEqual(text_sha, hashlib.sha256(BOOKS[split][bid]).digest())
                self.assertEqual(sum(s["starts"][toff:toff + ntok]), nw)
                if ntok:
                    self.assertEqual(s["starts"][toff], 1)
                tok += ntok
                wrd += nw
            self.assertEqual(tok, len(s["tokens"]))
            self.assertTrue(all(t < s["vocab"] for t in s["tokens"]))
            self.assertEqual(s["n_bytes"], sum(len(b) for b in BOOKS[split].values()))
            self.assertEqual(s["freqs"] is None, split == "train")

    def test_word_freqs_match_an_independent_count(self):
        counts = collections.Counter()
        for data in BOOKS["train"].values():
            counts.update(word_type(w) for w in data.decode().split())
        s = self.parse(os.path.join(self.out, "test-00000.pgs"))
        want = []
        for bid in sorted(BOOKS["test"]):
            words = BOOKS["test"][bid].decode().split()
            if not words and BOOKS["test"][bid]:
                want.append(0)  # whitespace-only book: one word of the empty type, unseen
            want += [counts.get(word_type(w), 0) for w in words]
        self.assertEqual(list(s["freqs"]), want)
        self.assertEqual(want[:2], [4, 4])  # "The": the x4; "cat": cat x3 + "Cat;"


if __name__ == "__main__":
    unittest.main()
