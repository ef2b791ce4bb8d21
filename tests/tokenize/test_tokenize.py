"""Integration tests for `tokenize` and `shards` on generated fixtures (CRLF,
non-Latin scripts, emoji, lines over 100 KB, empty and whitespace-only books,
bytes that are not UTF-8, NUL, U+2581, Unicode spaces) and, when
PG19_TEST_CORPUS is set, on real PG-19 and Project Gutenberg books.

Word counts are checked against an independent count in Python with the
Unicode White_Space list written out here."""
import glob
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import tempfile
import unittest

BIN = os.environ.get("PG19_BIN", os.path.join(os.path.dirname(__file__), "..", "..", "bin"))
TOKENIZE = os.path.join(BIN, "tokenize")
SHARDS = os.path.join(BIN, "shards")
CORPUS = os.environ.get("PG19_TEST_CORPUS")

# Unicode White_Space (PropList.txt), independent of ICU.
WHITE_SPACE = ([0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680] + list(range(0x2000, 0x200B))
               + [0x2028, 0x2029, 0x202F, 0x205F, 0x3000])
WS_RE = re.compile("[" + "".join(re.escape(chr(c)) for c in WHITE_SPACE) + "]+")


def count_words(data: bytes) -> int:
    text = data.decode("utf-8", "surrogateescape")
    words = [w for w in WS_RE.split(text) if w]
    if not words and data:
        return 1  # a whitespace-only book is one word (see shards/FORMAT.md)
    return len(words)


def run(args, check=True):
    env = dict(os.environ)
    # SentencePiece allocates on every call; recording a stack per allocation
    # made ASan ~3x slower here. Checks stay on, only allocation stacks go.
    env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":malloc_context_size=0"
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    if check and p.returncode != 0:
        raise AssertionError(f"{args} failed ({p.returncode}):\n{p.stderr.decode(errors='replace')[-3000:]}")
    return p


def fixture_books():
    """id -> bytes of generated books covering the hard cases."""
    rng = random.Random(4)
    words = ["the", "river", "Ζεύς", "ἀρετή", "Москва", "東京都", "السلام", "नमस्ते", "naïve",
             "🙂", "👩‍👩‍👧", "🇫🇷", "“quoted”", "—", "don't", "\u00e9t\u00e9", "x²"]
    def prose(n):
        out = []
        for i in range(n):
            out.append(rng.choice(words))
            out.append(rng.choice([" ", " ", " ", "\r\n", "  ", "\r\n\r\n", "\t", "\u00a0", "\u3000"]))
        return "".join(out)
    books = {
        1: b"",                                              # empty book
        2: (prose(3000)).encode(),                           # mixed scripts, CRLF, NBSP, tabs
        3: ("A" * 150_000 + " " + "b\u2581c " * 30_000 + "\r\n").encode(),  # >100 KB line, U+2581
        4: b"   \r\n\t  \r\n",                              # whitespace only
        5: "Caf\xe9 na\xefve \x00NUL end".encode("latin-1") + b"\xff\xfe\x80 \xe2\x82",  # not UTF-8
        6: ("\r\n\r\n" + prose(2000) + "   \r\n\r\n").encode(),  # leading and trailing space
        7: "x\u2028y\u2029z\u0085w\u1680v\u202fu\u205ft\u200bs\u180et".encode(),  # rare spaces
        8: b"word",                                          # one word, no newline
    }
    return books


class Fixtures(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="pg19-tok-")
        cls.corpus = os.path.join(cls.tmp, "pg19")
        cls.books = fixture_books()
        for split, ids in {"train": [1, 2, 3, 4, 5, 6, 7, 8], "validation": [2, 5], "test": [1, 3, 6]}.items():
            os.makedirs(os.path.join(cls.corpus, split))
            for i in ids:
                with open(os.path.join(cls.corpus, split, f"{i}.txt"), "wb") as f:
                    f.write(cls.books[i])
        cls.model = os.path.join(cls.tmp, "tok", "m.model")
        out = run([TOKENIZE, "train", "--corpus", cls.corpus, "--split", "train",
                   "--vocab-size", "600", "-o", cls.model]).stdout.decode()
        cls.model_sha = out.split()[0]

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_model_sha_printed_and_recorded(self):
        with open(self.model, "rb") as f:
            self.assertEqual(hashlib.sha256(f.read()).hexdigest(), self.model_sha)
        with open(self.model + ".json") as f:
            meta = json.load(f)
        self.assertEqual(meta["sha256"], self.model_sha)
        self.assertEqual(meta["kind"], "sentencepiece-unigram")

    def test_training_is_deterministic(self):
        other = os.path.join(self.tmp, "again.model")
        run([TOKENIZE, "train", "--corpus", self.corpus, "--split", "train",
             "--vocab-size", "600", "-o", other])
        with open(self.model, "rb") as a, open(other, "rb") as b:
            self.assertEqual(a.read(), b.read())

    def test_verify_roundtrip_every_split(self):
        for split in ("train", "validation", "test"):
            p = run([TOKENIZE, "verify", "--model", self.model, "--corpus", self.corpus,
                     "--split", split, "--threads", "2"])
            r = json.loads(p.stdout)
            self.assertEqual(r["roundtrip_failures"], 0)
            self.assertEqual(r["memo_mismatches"], 0)
            self.assertEqual(r["word_count_mismatches"], 0)
            want_words = sum(count_words(open(f, "rb").read())
                             for f in glob.glob(os.path.join(self.corpus, split, "*.txt")))
            self.assertEqual(r["words"], want_words, split)

    def peak_rss_kb(self, args):
        """Runs args; returns (exit status, stdout, the child's peak RSS in KiB).
        ASan's quarantine is off so that freed memory is not counted."""
        env = dict(os.environ)
        env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":malloc_context_size=0:quarantine_size_mb=0"
        with tempfile.TemporaryFile() as out:
            proc = subprocess.Popen(args, stdout=out, stderr=subprocess.DEVNULL, env=env)
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            out.seek(0)
            return proc.returncode, out.read(), usage.ru_maxrss

    def test_check_spm_memory_is_bounded(self):
        # One 512 KB single-line book. SentencePiece on the whole book in one
        # call holds ~230 bytes of lattice per byte (12.2 GB for a 50 MB book;
        # here +120 MB over the run without --check-spm); streamed in spans cut
        # at word ends it holds one span's lattice (+15 MB here) at any size.
        rng = random.Random(7)
        words = ["the", "river", "naïve", "quiet", "morning", "Москва", "said", "don't", "x²"]
        text = " ".join(rng.choice(words) for _ in range(80_000)).encode()[:512 * 1024]
        text = text[:text.rindex(b" ")]
        corpus = os.path.join(self.tmp, "oneline")
        os.makedirs(os.path.join(corpus, "test"), exist_ok=True)
        with open(os.path.join(corpus, "test", "1.txt"), "wb") as f:
            f.write(text)
        base = [TOKENIZE, "verify", "--model", self.model, "--corpus", corpus, "--split", "test",
                "--threads", "1", "--no-memo"]
        rc0, _, rss0 = self.peak_rss_kb(base)
        rc1, out, rss1 = self.peak_rss_kb(base + ["--check-spm"])
        self.assertEqual((rc0, rc1), (0, 0))
        r = json.loads(out)
        self.assertEqual(r["whole_book_spm_checked"], 1)
        self.assertEqual(r["whole_book_spm_equal"] + r["whole_book_spm_equal_score_ties"]
                         + r["whole_book_spm_lower_score"], 1)
        self.assertLess(rss1 - rss0, 48 * 1024, f"--check-spm peak RSS {rss1} KiB vs {rss0} KiB")

    def test_encode_decodes_to_input(self):
        # encode one book, decode ids through the model's pieces by hand
        p = run([TOKENIZE, "encode", "--model", self.model, os.path.join(self.corpus, "train", "2.txt")])
        ids = [int(x) for x in p.stdout.split()]
        self.assertGreater(len(ids), 1000)
        self.assertTrue(all(0 <= i < 600 for i in ids))
        # several books at once (OpenMP across files): one line each, in argument order
        files = [os.path.join(self.corpus, "train", f"{i}.txt") for i in (6, 1, 2, 5, 3)]
        together = run([TOKENIZE, "encode", "--model", self.model, "--threads", "2"] + files).stdout
        alone = b"".join(run([TOKENIZE, "encode", "--model", self.model, f]).stdout for f in files)
        self.assertEqual(together, alone)
        self.assertEqual(together.count(b"\n"), 5)

    def test_lines_mode_matches_spm_encode(self):
        spm = shutil.which("spm_encode")
        if not spm:
            self.skipTest("spm_encode not installed")
        # valid UTF-8 text without NUL and U+2581, where spm_encode is lossless too
        src = os.path.join(self.tmp, "lines.txt")
        with open(src, "wb") as f:
            f.write(self.books[2] + self.books[6] + b"\r\nA plain line.\r\n")
        ours = run([TOKENIZE, "encode", "--model", self.model, "--lines", src]).stdout.decode().splitlines()
        with open(src, "rb") as f:
            theirs = subprocess.run([spm, "--model", self.model, "--output_format=id"], stdin=f,
                                    stdout=subprocess.PIPE, check=True).stdout.decode().splitlines()
        self.assertEqual(len(ours), len(theirs))
        for a, b in zip(ours, theirs):
            # identical, or an equal-score reordering of the same pieces (a tie)
            self.assertEqual(sorted(a.split()), sorted(b.split()))

    def test_shards_build_verify_info(self):
        freqs = os.path.join(self.tmp, "freqs.tsv")
        run([TOKENIZE, "words", "--corpus", self.corpus, "--split", "train", "-o", freqs])
        out = os.path.join(self.tmp, "shards")
        for split in ("train", "validation", "test"):
            extra = [] if split == "train" else ["--word-freqs", freqs]
            # a tiny size cap forces several shards per split
            r = json.loads(run([SHARDS, "build", "--model", self.model, "--corpus", self.corpus,
                                "--split", split, "-o", out, "--max-bytes", "100000"] + extra).stdout)
            self.assertEqual(r["vocab_sha256"], self.model_sha)
        files = sorted(glob.glob(os.path.join(out, "*.pgs")))
        self.assertGreater(len(files), 3)
        run([SHARDS, "verify", "--model", self.model, "--corpus", self.corpus] + files)
        total = {}
        for f in files:
            info = json.loads(run([SHARDS, "info", f]).stdout)
            self.assertEqual(info["vocab_sha256"], self.model_sha)
            self.assertEqual(info["token_dtype"], "uint16")
            self.assertLessEqual(info["file_bytes"], 100000 if len(info["book_table"]) > 1 else 1 << 30)
            for b in info["book_table"]:
                total[(info["split"], b["id"])] = b
        for (split, bid), b in total.items():
            data = self.books[bid]
            self.assertEqual(b["bytes"], len(data))
            self.assertEqual(b["sha256"], hashlib.sha256(data).hexdigest())
            self.assertEqual(b["words"], count_words(data), (split, bid))
        self.assertEqual(len(total), 8 + 2 + 3)
        stats = json.loads(run([SHARDS, "stats", "--dir", out]).stdout)
        self.assertEqual(stats["test"]["books"], 3)
        self.assertEqual(stats["train"]["bytes"], sum(len(self.books[i]) for i in range(1, 9)))

    def test_verify_detects_flipped_bytes(self):
        out = os.path.join(self.tmp, "flip")
        run([SHARDS, "build", "--model", self.model, "--corpus", self.corpus, "--split", "test", "-o", out])
        path = os.path.join(out, "test-00000.pgs")
        data = bytearray(open(path, "rb").read())
        rng = random.Random(7)
        for pos in [0, 13, 100, 255, 256, len(data) // 2, len(data) - 1] + rng.sample(range(len(data)), 20):
            bad = bytearray(data)
            bad[pos] ^= 0x10
            with open(path, "wb") as f:
                f.write(bad)
            p = run([SHARDS, "verify", path], check=False)
            self.assertNotEqual(p.returncode, 0, f"flip at {pos} not detected")
        with open(path, "wb") as f:
            f.write(data)
        run([SHARDS, "verify", path])

    def test_rejects_bad_inputs(self):
        bad = os.path.join(self.tmp, "badcorpus")
        os.makedirs(os.path.join(bad, "train"))
        with open(os.path.join(bad, "train", "notanid.txt"), "w") as f:
            f.write("x")
        p = run([TOKENIZE, "words", "--corpus", bad, "-o", os.path.join(self.tmp, "w.tsv")], check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(b"<id>.txt", p.stderr)
        junk = os.path.join(self.tmp, "junk.model")
        with open(junk, "wb") as f:
            f.write(b"\x00" * 100)
        p = run([TOKENIZE, "verify", "--model", junk, "--corpus", self.corpus, "--split", "test"], check=False)
        self.assertNotEqual(p.returncode, 0)
        freqs = os.path.join(self.tmp, "bad-freqs.tsv")
        for content in [b"", b"#pg19-word-freqs/1\tsplit=train\tbooks=1\twords=3\ttypes=2\nb\t1\na\t2\n",
                        b"#pg19-word-freqs/1\tsplit=train\tbooks=1\twords=9\ttypes=1\na\t2\n",
                        b"#pg19-word-freqs/1\tsplit=train\tbooks=1\twords=2\ttypes=1\na\t-2\n"]:
            with open(freqs, "wb") as f:
                f.write(content)
            p = run([SHARDS, "build", "--model", self.model, "--corpus", self.corpus, "--split", "test",
                     "-o", os.path.join(self.tmp, "s2"), "--word-freqs", freqs], check=False)
            self.assertNotEqual(p.returncode, 0, content)


class RealBooks(unittest.TestCase):
    """The three real PG-19 books, plus every raw Gutenberg text of the test
    corpus for round-trip coverage (Latin-1, BOMs, CRLF and LF)."""

    @classmethod
    def setUpClass(cls):
        if not CORPUS:
            raise unittest.SkipTest("PG19_TEST_CORPUS is unset")
        cls.tmp = tempfile.mkdtemp(prefix="pg19-real-")
        cls.corpus = os.path.join(cls.tmp, "pg19")
        dummy = os.path.join(CORPUS, "pg19", "hf-dummy-real-books", "dummy_data")
        for split, bid in (("train", 10006), ("validation", 28213), ("test", 12204)):
            os.makedirs(os.path.join(cls.corpus, split))
            os.symlink(os.path.join(dummy, f"{bid}.txt"), os.path.join(cls.corpus, split, f"{bid}.txt"))
        # Raw Gutenberg texts for round-trip coverage, one of each kind (the
        # sanitizer build is slow; `make bench` runs all of them): from
        # raw-pg-2003-2004 per MANIFEST.tsv class (BOM, line ends, encoding)
        # up to 4 files, the 6 smallest modern files, all ebook-11 versions,
        # and the texts without markers.
        raw = os.path.join(cls.tmp, "raw", "train")
        os.makedirs(raw)
        picked, per_class = [], {}
        with open(os.path.join(CORPUS, "raw-pg-2003-2004", "MANIFEST.tsv")) as f:
            rows = [line.rstrip("\n").split("\t") for line in f][1:]
        for row in sorted(rows, key=lambda r: int(r[1])):
            key = (row[3], row[4], row[5])
            if per_class.get(key, 0) < 4:
                per_class[key] = per_class.get(key, 0) + 1
                picked.append(os.path.join(CORPUS, "raw-pg-2003-2004", row[0]))
        modern = sorted(glob.glob(os.path.join(CORPUS, "raw-pg-modern", "**", "*.txt"), recursive=True),
                        key=os.path.getsize)
        picked += modern[:6]
        for pattern in ("raw-pg-ebook11-history-and-zips/**/*.txt", "stripped-no-markers/**/*.txt"):
            picked += sorted(glob.glob(os.path.join(CORPUS, pattern), recursive=True))
        for n, f in enumerate(picked, 1):
            os.symlink(f, os.path.join(raw, f"{n}.txt"))
        cls.n_raw = len(picked)
        cls.model = os.path.join(cls.tmp, "real-2k.model")
        cls.sha = run([TOKENIZE, "train", "--corpus", cls.corpus, "--vocab-size", "2000",
                       "-o", cls.model]).stdout.split()[0].decode()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_real_books_roundtrip_and_words(self):
        for split in ("train", "validation", "test"):
            r = json.loads(run([TOKENIZE, "verify", "--model", self.model, "--corpus", self.corpus,
                                "--split", split, "--check-spm"]).stdout)
            self.assertEqual(r["roundtrip_failures"], 0)
            # equal, an exact tie, or whole-book float32 Viterbi scoring lower
            self.assertEqual(r["whole_book_spm_equal"] + r["whole_book_spm_equal_score_ties"]
                             + r["whole_book_spm_lower_score"], r["whole_book_spm_checked"])
            self.assertEqual(r["whole_book_spm_checked"], 1)
            f = glob.glob(os.path.join(self.corpus, split, "*.txt"))[0]
            self.assertEqual(r["words"], count_words(open(f, "rb").read()))
            self.assertEqual(r["vocab_sha256"], self.sha)
            print(f"# real {split}: tokens/word {r['tokens_per_word']}, vocab sha256 {self.sha}")

    def test_raw_gutenberg_texts_roundtrip(self):
        self.assertGreaterEqual(self.n_raw, 20)
        r = json.loads(run([TOKENIZE, "verify", "--model", self.model, "--corpus",
                            os.path.join(self.tmp, "raw"), "--split", "train", "--threads", "2"]).stdout)
        self.assertEqual(r["books"], self.n_raw)
        self.assertEqual(r["roundtrip_failures"], 0)
        self.assertEqual(r["memo_mismatches"], 0)

    def test_real_shards(self):
        freqs = os.path.join(self.tmp, "freqs.tsv")
        w = json.loads(run([TOKENIZE, "words", "--corpus", self.corpus, "-o", freqs]).stdout)
        out = os.path.join(self.tmp, "shards")
        for split in ("train", "validation", "test"):
            run([SHARDS, "build", "--model", self.model, "--corpus", self.corpus, "--split", split,
                 "-o", out, "--word-freqs", freqs])
        files = sorted(glob.glob(os.path.join(out, "*.pgs")))
        self.assertEqual(len(files), 3)
        run([SHARDS, "verify", "--model", self.model, "--corpus", self.corpus] + files)
        stats = json.loads(run([SHARDS, "stats", "--dir", out, "--metadata",
                                os.path.join(CORPUS, "pg19", "metadata.csv")]).stdout)
        self.assertEqual(stats["train"]["words"], w["words"])
        self.assertEqual(stats["validation"]["publication_decades"], {"1870": 1})


if __name__ == "__main__":
    unittest.main()
