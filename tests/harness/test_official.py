""""Official" means PG-19's own books, byte for byte (issue 11).

Book counts prove nothing: 100 one-line fake books are 100 test books. The
shards record each book's SHA-256 and the harness and the leaderboard check
them against PG-19's file list (shards/pg19_files.tsv), so:
- 100 fake test books (ids 1..100, or PG-19's own test ids) scored with a
  random model come out `custom`, with the exact normaliser, never official;
- an entry made from them that claims official is refused by `leaderboard
  submit`, and one that also copies PG-19's digest is refused by `verify`;
- with PG19_TEST_CORPUS, the nine byte-exact PG-19 validation books of the
  corpus are a `pg19-subset`, and the same books with one byte changed are
  `custom`.
"""
import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(TOP, "tests", "leaderboard"))
import lbtest  # noqa: E402

BIN = os.environ.get("PG19_BIN", os.path.join(TOP, "bin"))
CORPUS = os.environ.get("PG19_TEST_CORPUS")
TOOLS = {t: os.path.join(BIN, t) for t in ("tokenize", "shards", "harness", "leaderboard")}
WORDS = ("the of and to a in that was he it his is with as had for you not be her on at by "
         "which have or from this him but all she they were my are me one their so an said "
         "them we who would been will no when there if more out up into do any your what has "
         "man could other than our some very time upon about may its only now like little then "
         "can should made did us such great before must two these see know over much down after "
         "first good men own never most old shall day where those came come himself way work "
         "life without go make well through being long say might how am too even def again "
         "many back here think every people went yet just thought").split()


def run(*args, check=True):
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({p.returncode}):\n{p.stderr.decode()}")
    return p


def write_books(root, split, books):
    os.makedirs(os.path.join(root, split), exist_ok=True)
    for book_id, text in books.items():
        with open(os.path.join(root, split, f"{book_id}.txt"), "wb") as f:
            f.write(text)


@unittest.skipUnless(all(os.access(t, os.X_OK) for t in TOOLS.values()),
                     "the tokenize/shards/harness/leaderboard tools are not built")
class OfficialMeansPG19Books(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="pg19-official-")
        t = cls.tmp
        # a small deterministic training split for the vocabulary and frequencies
        x = 12345
        train = {}
        for book in range(1, 7):
            words = []
            for _ in range(6000):
                x = (x * 6364136223846793005 + 1442695040888963407) % (1 << 64)
                words.append(WORDS[(x >> 33) % len(WORDS)])
            lines = [" ".join(words[i:i + 12]) for i in range(0, len(words), 12)]
            train[book] = ("\r\n".join(lines) + "\r\n").encode()
        write_books(f"{t}/train-corpus", "train", train)
        run(TOOLS["tokenize"], "train", "--corpus", f"{t}/train-corpus", "--split", "train",
            "--vocab-size", "400", "-o", f"{t}/tok.model")
        run(TOOLS["tokenize"], "words", "--corpus", f"{t}/train-corpus", "--split", "train",
            "-o", f"{t}/freqs.tsv")
        cls.pg19_test_ids = [i for i, _, _ in lbtest.pg19_books("test")]
        assert len(cls.pg19_test_ids) == 100
        # 100 one-line fake test books, ids 1..100 and PG-19's own test ids
        cls.fake = cls.build("fake", "test", {i: f"This is fake book {i}.\n".encode()
                                              for i in range(1, 101)})
        cls.fake_ids = cls.build("fake-ids", "test", {
            i: f"A fake text under PG-19 test id {i}.\n".encode() for i in cls.pg19_test_ids})

    @classmethod
    def build(cls, name, split, books):
        corpus = os.path.join(cls.tmp, f"{name}-corpus")
        write_books(corpus, split, books)
        shards = os.path.join(cls.tmp, f"{name}-shards")
        run(TOOLS["shards"], "build", "--model", f"{cls.tmp}/tok.model", "--corpus", corpus,
            "--split", split, "-o", shards, "--word-freqs", f"{cls.tmp}/freqs.tsv")
        return shards

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def harness(self, shards, split, name, extra=()):
        out = os.path.join(self.tmp, f"{name}.json")
        dump = os.path.join(self.tmp, f"{name}.nll")
        p = run(TOOLS["harness"], "run", "--model", "txl-tiny", "--random-init", "7", "--split",
                split, "--shards", shards, "--out", out, "--nll-dump", dump, "--threads", "2",
                *extra)
        with open(out) as f:
            return json.load(f), out, dump, p.stdout.decode(), p.stderr.decode()

    def assert_not_official(self, r, book_set, stdout):
        ev = r["eval"]
        self.assertFalse(ev["official"])
        self.assertEqual(ev["book_set"], book_set)
        self.assertRegex(ev["books_sha256"], "^[0-9a-f]{64}$")
        self.assertEqual(r["word_ppl"]["normaliser"], "exact")
        self.assertEqual(r["word_ppl"]["words"], r["totals"]["words"])
        self.assertNotIn("pg19-table2", stdout)
        self.assertIn(book_set, stdout)

    def test_fake_books_are_custom(self):
        r, _, _, stdout, stderr = self.harness(self.fake, "test", "fake")
        self.assertEqual(r["eval"]["books"], 100)
        self.assert_not_official(r, "custom", stdout)
        self.assertIn("book 1 is not a PG-19 book", stdout)
        self.assertIn("not the official split", stderr)
        # the digest is that of the fake books' text, as RESULTS.md defines it
        books = [(i, len(f"This is fake book {i}.\n"),
                  hashlib.sha256(f"This is fake book {i}.\n".encode()).hexdigest())
                 for i in range(1, 101)]
        self.assertEqual(r["eval"]["books_sha256"], lbtest.books_digest(books))

    def test_shards_official_command(self):
        for shards, split, book_set in ((self.fake, "test", "custom"),
                                        (self.fake_ids, "test", "custom")):
            p = run(TOOLS["shards"], "official", "--dir", shards, "--split", split, check=False)
            self.assertEqual(p.returncode, 1)  # 0 only for the official split
            d = json.loads(p.stdout)
            self.assertEqual((d["book_set"], d["books"], d["pg19_books"], d["matching"]),
                             (book_set, 100, 100, 0))

    def test_fake_text_under_pg19_ids_is_custom(self):
        r, _, _, stdout, _ = self.harness(self.fake_ids, "test", "fake-ids")
        self.assertEqual(r["eval"]["books"], 100)
        self.assert_not_official(r, "custom", stdout)
        self.assertRegex(stdout, r"book \d+ has \d+ bytes, PG-19's file \d+")

    def test_leaderboard_refuses_fake_official_claims(self):
        r, path, dump, _, _ = self.harness(self.fake, "test", "fake-lb")
        entries = os.path.join(self.tmp, "entries")
        lb = TOOLS["leaderboard"]
        # honest: accepted as what it is, and verifies
        p = run(lb, "submit", path, "--entries", entries)
        entry = p.stdout.decode().split("accepted: ", 1)[1].strip()
        run(lb, "verify", entry, "--nll", dump, "--shards", self.fake)

        def claim(edit, name):
            c = json.loads(json.dumps(r))
            edit(c)
            c["eval"]["official"] = True
            c["word_ppl"] = {"normaliser": "pg19-table2", "words": lbtest.PG19_WORDS["test"],
                             "value": math.exp(c["totals"]["nll"] / lbtest.PG19_WORDS["test"])}
            out = os.path.join(self.tmp, name)
            with open(out, "w") as f:
                json.dump(c, f)
            return out

        # official with PG-19's normaliser, its own books: refused by submit
        p = run(lb, "submit", claim(lambda c: None, "claim1.json"), "--entries", entries,
                check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn('eval.official: true, but book_set is "custom"', p.stderr.decode())
        # ... also calling its books official without PG-19's digest: refused
        p = run(lb, "submit", claim(lambda c: c["eval"].update(book_set="official"),
                                    "claim2.json"), "--entries", entries, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("eval.books_sha256: is not the digest of PG-19's 100 test books",
                      p.stderr.decode())
        # ... copying PG-19's digest (a public constant) passes submit, but the
        # shards' books are not PG-19's: verify refuses and leaves it untouched
        forged = claim(lambda c: c["eval"].update(book_set="official",
                                                  books_sha256=lbtest.pg19_digest("test")),
                       "claim3.json")
        p = run(lb, "submit", forged, "--entries", entries)
        entry = p.stdout.decode().split("accepted: ", 1)[1].strip()
        with open(entry, "rb") as f:
            before = f.read()
        p = run(lb, "verify", entry, "--nll", dump, "--shards", self.fake, check=False)
        self.assertEqual(p.returncode, 1)
        err = p.stderr.decode()
        self.assertIn("mismatch: eval.books_sha256", err)
        self.assertIn("mismatch: eval.book_set: entry says official, recomputed custom", err)
        self.assertIn("mismatch: eval.official: entry says true, but the shards' books are "
                      "custom (book 1 is not a PG-19 book", err)
        with open(entry, "rb") as f:
            self.assertEqual(f.read(), before)

    @unittest.skipUnless(CORPUS, "PG19_TEST_CORPUS is not set")
    def test_real_validation_books_are_a_subset(self):
        src = os.path.join(CORPUS, "pg19-sample", "validation")
        if not os.path.isdir(src):
            self.skipTest("pg19-sample/validation is missing")
        books = {}
        for name in sorted(os.listdir(src)):
            if re.fullmatch(r"\d+\.txt", name):
                with open(os.path.join(src, name), "rb") as f:
                    books[int(name[:-4])] = f.read()
        self.assertEqual(len(books), 9)
        listed = {i: (b, h) for i, b, h in lbtest.pg19_books("validation")}
        for i, text in books.items():  # the corpus promises byte-exact books
            self.assertEqual((len(text), hashlib.sha256(text).hexdigest()), listed[i])
        real = self.build("real", "validation", books)
        # one byte changed in one real book (same id, same size)
        first = min(books)
        tampered = dict(books)
        t = bytearray(books[first])
        t[len(t) // 2] ^= 0x20
        tampered[first] = bytes(t)
        bad = self.build("tampered", "validation", tampered)
        # The books' set is decided from all of each book's bytes (the SHA-256
        # in the shards), whatever is scored: score a prefix only, which keeps
        # this test fast (1.3 MB of text under the sanitizers otherwise).
        quick = ("--max-tokens-per-book", "64")
        p = run(TOOLS["shards"], "official", "--dir", real, "--split", "validation",
                check=False)
        self.assertEqual(p.returncode, 1)
        d = json.loads(p.stdout)
        self.assertEqual((d["book_set"], d["books"], d["pg19_books"], d["matching"]),
                         ("pg19-subset", 9, 50, 9))
        r, _, _, stdout, _ = self.harness(real, "validation", "real", quick)
        self.assert_not_official(r, "pg19-subset", stdout)
        self.assertIn("9 of PG-19's 50 validation books", stdout)
        self.assertEqual(r["eval"]["books_sha256"], lbtest.books_digest(
            [(i, len(x), hashlib.sha256(x).hexdigest()) for i, x in books.items()]))
        r, _, _, stdout, _ = self.harness(bad, "validation", "tampered", quick)
        self.assert_not_official(r, "custom", stdout)
        self.assertIn(f"book {first} differs from PG-19's file", stdout)


if __name__ == "__main__":
    unittest.main()
