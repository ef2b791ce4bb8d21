"""`leaderboard verify --weights FILE --model CONFIG [--sample N]`: an entry is
"verified" only when the harness, re-run with the entry's weights and config
on the shards, reproduces the submitted per-token NLLs within the documented
tolerance. A dump that is consistent with its entry but was not produced by
the model (here: every NLL scaled by 0.9, the entry rescaled to match) stays
"consistent". Entries without weights can never be verified. Also `harness
run --books`, which the re-run uses for --sample.

The shards are the leaderboard unit test's fixture (3 books, 4,500 tokens,
vocabulary 200), exported by build-san/tests/leaderboard_test."""
import hashlib
import json
import math
import os
import re
import shutil
import struct
import subprocess
import tempfile
import unittest

import lbtest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("PG19_BIN", os.path.join(TOP, "bin"))
TEST_BIN = os.environ.get("PG19_TEST_BIN", os.path.join(TOP, "build-san", "tests"))
LB = os.path.join(BIN, "leaderboard")
HARNESS = os.path.join(BIN, "harness")
TOLERANCE = {"abs": 1e-4, "rel": 1e-5}  # leaderboard/plausible.h, CPU fp32


def sh(*args, check=True):
    p = subprocess.run(list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=TOP)
    out, err = p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")
    if check and p.returncode != 0:
        raise AssertionError(f"{args[:2]} failed ({p.returncode}): {out}{err}")
    return p.returncode, out, err


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def read_dump(path):
    """{book id: [nll, ...]} and the evaluation order of a PG19NLL1 file."""
    with open(path, "rb") as f:
        d = f.read()
    nb, nt = struct.unpack_from("<QQ", d, 16)
    books = [struct.unpack_from("<QQ", d, 32 + 16 * i) for i in range(nb)]
    vals = struct.unpack_from(f"<{nt}f", d, 32 + 16 * nb)
    out, o = {}, 0
    for bid, n in books:
        out[bid] = list(vals[o:o + n])
        o += n
    return out, [b for b, _ in books]


# ---- an independent reading of the documented sample (reproduce.h) ----------

def jansson_real(x):
    """A real as jansson writes it with JSON_REAL_PRECISION(17)."""
    s = "%.17g" % x
    if "." not in s and "e" not in s:
        s += ".0"
    m = re.match(r"^(.*e)([+-]?)0*(\d+)$", s)
    if m:
        s = m.group(1) + ("-" if m.group(2) == "-" else "") + m.group(3)
    return s


def canonical(v):
    """jansson's JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(17)."""
    if isinstance(v, dict):
        return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + canonical(v[k])
                              for k in sorted(v)) + "}"
    if isinstance(v, list):
        return "[" + ",".join(canonical(x) for x in v) + "]"
    if isinstance(v, bool) or v is None or isinstance(v, (int, str)):
        return json.dumps(v, ensure_ascii=False)
    return jansson_real(v)


def content_sha256(entry):
    bare = {k: v for k, v in entry.items() if k != "provenance"}
    return hashlib.sha256(canonical(bare).encode()).hexdigest()


def sample(ids, seed, n):
    mask = (1 << 64) - 1
    state, ids = seed, sorted(ids)
    for i in range(n):
        state = (state + 0x9E3779B97F4A7C15) & mask
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        z ^= z >> 31
        j = i + z % (len(ids) - i)
        ids[i], ids[j] = ids[j], ids[i]
    return sorted(ids[:n])


@unittest.skipUnless(os.access(HARNESS, os.X_OK) and os.access(LB, os.X_OK),
                     "harness or leaderboard not built")
class Reproduce(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        exe = os.path.join(TEST_BIN, "leaderboard_test")
        if not os.access(exe, os.X_OK):
            raise unittest.SkipTest(f"{exe} not built")
        cls.tmp = tempfile.TemporaryDirectory()
        w = cls.w = cls.tmp.name
        subprocess.run([exe], env=dict(os.environ, PG19_LB_FIXTURE_OUT=w), cwd=TOP,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        cls.shards = os.path.join(w, "shards")
        with open(os.path.join(TOP, "models", "ct-tiny.json")) as f:
            cfg = json.load(f)
        cfg["vocab_size"] = 200  # the fixture's vocabulary
        cls.config = os.path.join(w, "ct-tiny-200.json")
        with open(cls.config, "w") as f:
            json.dump(cfg, f)
        cls.weights = os.path.join(w, "ct-tiny-200.safetensors")
        sh(HARNESS, "init", "--model", cls.config, "--random-init", "7", "--out", cls.weights)
        cls.results = os.path.join(w, "test.json")
        cls.nll = os.path.join(w, "test.nll")
        sh(HARNESS, "run", "--model", cls.config, "--weights", cls.weights, "--split", "test",
           "--shards", cls.shards, "--out", cls.results, "--nll-dump", cls.nll)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def setUp(self):
        self.entries = tempfile.mkdtemp(dir=self.w)

    def submit(self, path):
        rc, out, err = sh(LB, "submit", path, "--entries", self.entries)
        return out.split("accepted: ")[1].strip()

    def verify(self, entry, *extra, nll=None, check=False):
        return sh(LB, "verify", entry, "--nll", nll or self.nll, "--shards", self.shards, *extra,
                  check=check)

    def load(self, path):
        with open(path) as f:
            return json.load(f)

    def test_rerun_verifies_and_records_what_was_run(self):
        entry = self.submit(self.results)
        rc, out, err = self.verify(entry, check=True)
        self.assertIn("consistent:", out)
        self.assertIn("not verified", out)  # arithmetic only
        self.assertEqual(self.load(entry)["provenance"]["status"], "consistent")
        rc, out, err = self.verify(entry, "--weights", self.weights, "--model", self.config,
                                   check=True)
        self.assertRegex(out, r"verified: .*re-ran 3 of 3 books, 4500 tokens")
        e = self.load(entry)
        p = e["provenance"]
        self.assertEqual(p["status"], "verified")
        r = p["reproduction"]
        self.assertEqual(r["weights_sha256"], sha256(self.weights))
        self.assertEqual(r["config_sha256"], sha256(self.config))
        self.assertEqual(r["nll_sha256"], sha256(self.nll))
        self.assertEqual(p["consistency"]["nll_sha256"], sha256(self.nll))
        self.assertEqual((r["backend"], r["precision"], r["tolerance"]), ("cpu", "fp32", TOLERANCE))
        self.assertIsNone(r["sample"])
        self.assertEqual(r["books"], sorted(read_dump(self.nll)[0]))
        self.assertEqual(r["tokens"], 4500)
        # the same machine reproduces the dump bit for bit
        self.assertEqual(r["max_abs_deviation"], 0.0)
        self.assertRegex(r["harness"], r"^pg19-harness ")
        rc, out, err = sh(LB, "check", "--entries", self.entries, check=False)
        self.assertEqual(rc, 0, err)
        site = os.path.join(self.w, "site")
        sh(LB, "render", "-o", site, "--entries", self.entries)
        with open(os.path.join(site, "index.html"), encoding="utf-8") as f:
            self.assertIn('<span class="badge verified">verified</span></td>', f.read())
        # checking the arithmetic again with the same dump keeps the re-run
        self.verify(entry, check=True)
        self.assertEqual(self.load(entry)["provenance"]["status"], "verified")

    def test_sample_is_chosen_by_the_entry_hash(self):
        entry = self.submit(self.results)
        rc, out, err = self.verify(entry, "--weights", self.weights, "--model", self.config,
                                   "--sample", "2", check=True)
        self.assertRegex(out, r"verified: .*re-ran 2 of 3 books")
        e = self.load(entry)
        content = content_sha256(e)
        # our canonical form is the one that names the file
        self.assertTrue(os.path.basename(entry).endswith(f"-{content[:12]}.json"), content)
        r = e["provenance"]["reproduction"]
        self.assertEqual(r["sample"], {"books": 2, "seed": content[:16]})
        self.assertEqual(r["books"], sample(read_dump(self.nll)[0], int(content[:16], 16), 2))
        dump = read_dump(self.nll)[0]
        self.assertEqual(r["tokens"], sum(len(dump[b]) for b in r["books"]))
        # a seed that is not the content's is caught by check
        r["sample"]["seed"] = "0" * 16
        with open(entry, "w") as f:
            json.dump(e, f)
        rc, out, err = sh(LB, "check", "--entries", self.entries, check=False)
        self.assertEqual(rc, 1)
        self.assertIn("is not the seed derived from the entry's content", err)

    def fake(self, scale):
        """A dump of the same books with every NLL scaled, and results
        rescaled to match it exactly: consistent, but not what the model says."""
        dump, order = read_dump(self.nll)
        books = [(b, [struct.unpack("<f", struct.pack("<f", x * scale))[0] for x in dump[b]])
                 for b in order]
        nll = os.path.join(self.w, f"fake-{scale}.nll")
        with open(nll, "wb") as f:
            f.write(lbtest.nll_dump(books))
        r = self.load(self.results)
        t = r["totals"]
        for b in r["buckets"]:
            b["nll"] *= scale
            b["word_ppl"] = math.exp(b["nll"] / b["words"]) if b["words"] else None
        t["nll"] = math.fsum(b["nll"] for b in r["buckets"])
        t["token_ppl"] = math.exp(t["nll"] / t["tokens"])
        t["bits_per_byte"] = t["nll"] / (t["bytes"] * math.log(2))
        r["word_ppl"]["value"] = math.exp(t["nll"] / r["word_ppl"]["words"])
        r["word_ppl_exact"]["value"] = math.exp(t["nll"] / r["word_ppl_exact"]["words"])
        r["nll_dump"] = {"file": os.path.basename(nll), "sha256": sha256(nll)}
        path = os.path.join(self.w, f"fake-{scale}.json")
        with open(path, "w") as f:
            json.dump(r, f)
        return path, nll

    def test_consistent_fake_dump_is_not_verified(self):
        results, nll = self.fake(0.9)
        entry = self.submit(results)
        self.verify(entry, nll=nll, check=True)  # the arithmetic agrees ...
        self.assertEqual(self.load(entry)["provenance"]["status"], "consistent")
        with open(entry, "rb") as f:
            before = f.read()
        rc, out, err = self.verify(entry, "--weights", self.weights, "--model", self.config,
                                   nll=nll)  # ... the model does not
        self.assertEqual(rc, 1, out + err)
        self.assertRegex(err, r"mismatch: book \d+ token \d+: the dump says NLL .* the re-run")
        self.assertIn("tokens in all outside the tolerance", err)
        self.assertIn("not verified", err)
        self.assertNotIn("verified:", out)
        with open(entry, "rb") as f:
            self.assertEqual(f.read(), before, "a failed re-run changed the entry")

    def test_deviation_just_outside_the_tolerance_fails(self):
        # one token moved by twice its tolerance: the re-run finds it
        dump, order = read_dump(self.nll)
        b0 = order[0]
        x = dump[b0][10]
        dump[b0][10] = x + 2 * (TOLERANCE["abs"] + TOLERANCE["rel"] * x)
        nll = os.path.join(self.w, "nudged.nll")
        with open(nll, "wb") as f:
            f.write(lbtest.nll_dump([(b, dump[b]) for b in order]))
        r = self.load(self.results)
        del r["nll_dump"]  # the totals move by less than the 1e-6 identity tolerance
        path = os.path.join(self.w, "nudged.json")
        with open(path, "w") as f:
            json.dump(r, f)
        entry = self.submit(path)
        self.verify(entry, nll=nll, check=True)
        rc, out, err = self.verify(entry, "--weights", self.weights, "--model", self.config, nll=nll)
        self.assertEqual(rc, 1, out + err)
        self.assertIn(f"mismatch: book {b0} token 10:", err)

    def test_evaluation_time_memories_are_rerun_as_recorded(self):
        # harness run --memory/--compressed-memory: the config's sizes are not
        # the entry's; the re-run must use the entry's
        results = os.path.join(self.w, "mem.json")
        nll = os.path.join(self.w, "mem.nll")
        sh(HARNESS, "run", "--model", self.config, "--weights", self.weights, "--split", "test",
           "--shards", self.shards, "--memory", "16", "--compressed-memory", "8",
           "--out", results, "--nll-dump", nll)
        self.assertEqual(self.load(results)["context"]["memory"], 16)
        entry = self.submit(results)
        rc, out, err = self.verify(entry, "--weights", self.weights, "--model", self.config,
                                   "--sample", "1", nll=nll)
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(self.load(entry)["provenance"]["status"], "verified")

    def test_without_weights_never_verified(self):
        results = os.path.join(self.w, "seed.json")
        nll = os.path.join(self.w, "seed.nll")
        sh(HARNESS, "run", "--model", self.config, "--random-init", "7", "--split", "test",
           "--shards", self.shards, "--out", results, "--nll-dump", nll)
        entry = self.submit(results)
        with open(entry, "rb") as f:
            before = f.read()
        rc, out, err = self.verify(entry, "--weights", self.weights, "--model", self.config, nll=nll)
        self.assertEqual(rc, 1)
        self.assertIn("an entry without weights can never be verified", err)
        with open(entry, "rb") as f:
            self.assertEqual(f.read(), before)
        self.verify(entry, nll=nll, check=True)  # consistent is as far as it goes
        self.assertEqual(self.load(entry)["provenance"]["status"], "consistent")

    def test_other_weights_or_config_refused(self):
        entry = self.submit(self.results)
        other = os.path.join(self.w, "other.safetensors")
        sh(HARNESS, "init", "--model", self.config, "--random-init", "8", "--out", other)
        rc, out, err = self.verify(entry, "--weights", other, "--model", self.config)
        self.assertEqual(rc, 1)
        self.assertIn("not the weights of this entry", err)
        cfg = os.path.join(self.w, "other-config.json")
        shutil.copy(self.config, cfg)
        with open(cfg, "a") as f:
            f.write("\n")
        rc, out, err = self.verify(entry, "--weights", self.weights, "--model", cfg)
        self.assertEqual(rc, 1)
        self.assertIn("not the config of this entry", err)
        self.assertEqual(self.load(entry)["provenance"]["status"], "unchecked")

    def test_usage(self):
        entry = self.submit(self.results)
        self.assertEqual(self.verify(entry, "--weights", self.weights)[0], 2)
        self.assertEqual(self.verify(entry, "--sample", "2")[0], 2)
        self.assertEqual(self.verify(entry, "--weights", self.weights, "--model", self.config,
                                     "--sample", "0")[0], 2)

    def test_harness_books_subset_is_bitwise_the_full_run(self):
        full, order = read_dump(self.nll)
        pick = [order[2], order[0]]
        nll = os.path.join(self.w, "subset.nll")
        out = os.path.join(self.w, "subset.json")
        sh(HARNESS, "run", "--model", self.config, "--weights", self.weights, "--split", "test",
           "--shards", self.shards, "--books", ",".join(map(str, pick)), "--nll-dump", nll,
           "--out", out)
        sub, sub_order = read_dump(nll)
        self.assertEqual(sub_order, pick)
        for b in pick:
            self.assertEqual(sub[b], full[b])
        self.assertEqual(self.load(out)["eval"]["books"], 2)
        self.assertFalse(self.load(out)["eval"]["official"])
        for bad, msg in [("999999", "book 999999 is not in the shards"),
                         (f"{pick[0]},{pick[0]}", "is selected twice"),
                         ("1,,2", "empty item"), ("x", "is not a book id")]:
            rc, o, err = sh(HARNESS, "run", "--model", self.config, "--weights", self.weights,
                            "--split", "test", "--shards", self.shards, "--books", bad,
                            check=False)
            self.assertEqual(rc, 1, bad)
            self.assertIn(msg, err)


if __name__ == "__main__":
    unittest.main()
