"""scripts/demo.d/50-leaderboard.sh: with no harness results it renders the seed
entries and says why; with results it submits them; with results, an NLL dump
and shards (the leaderboard unit test's fixture, exported) it checks them
(a "consistent" entry: the demo's model is random-init, which has no weights
to re-run, so it is never "verified");
and it never modifies the committed leaderboard/entries/."""
import hashlib
import json
import os
import subprocess
import tempfile
import unittest

import lbtest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STAGE = os.path.join(TOP, "scripts", "demo.d", "50-leaderboard.sh")
ENTRIES = os.path.join(TOP, "leaderboard", "entries")
BIN = os.environ.get("PG19_BIN", os.path.join(TOP, "bin"))
TEST_BIN = os.environ.get("PG19_TEST_BIN", os.path.join(TOP, "build-san", "tests"))


def tree_digest(d):
    h = hashlib.sha256()
    for n in sorted(os.listdir(d)):
        h.update(n.encode())
        with open(os.path.join(d, n), "rb") as f:
            h.update(f.read())
    return h.hexdigest()


class DemoStage(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.work = self.tmp.name
        self.before = tree_digest(ENTRIES)

    def tearDown(self):
        self.assertEqual(tree_digest(ENTRIES), self.before, "the demo touched leaderboard/entries")
        self.tmp.cleanup()

    def stage(self):
        env = dict(os.environ, PG19_WORK=self.work, PG19_BIN=BIN)
        p = subprocess.run(["bash", STAGE], env=env, cwd=TOP, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        out = p.stdout.decode("utf-8", "replace")
        self.assertEqual(p.returncode, 0, out)
        return out

    def page(self):
        with open(os.path.join(self.work, "site", "index.html"), encoding="utf-8") as f:
            return f.read()

    def test_without_results(self):
        out = self.stage()
        self.assertIn("no results in", out)
        self.assertEqual(self.page().count("<tr id=\"row-"), len(os.listdir(ENTRIES)))
        self.assertTrue(os.path.exists(os.path.join(self.work, "site", "leaderboard.md")))

    def test_results_without_dump(self):
        os.makedirs(os.path.join(self.work, "results"))
        with open(os.path.join(self.work, "results", "test.json"), "w") as f:
            json.dump(lbtest.sample(official=False, books=5), f)
        for _ in range(2):  # rerunnable: a fresh copy of the entries each time
            out = self.stage()
            self.assertIn("accepted:", out)
            self.assertIn("not verifying", out)
            self.assertEqual(self.page().count("<tr id=\"row-"), len(os.listdir(ENTRIES)) + 1)

    def test_results_with_dump_and_shards_verify(self):
        exe = os.path.join(TEST_BIN, "leaderboard_test")
        if not os.access(exe, os.X_OK):
            self.skipTest(f"{exe} not built")
        env = dict(os.environ, PG19_LB_FIXTURE_OUT=self.work)
        p = subprocess.run([exe], env=env, cwd=TOP, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        self.assertEqual(p.returncode, 0, p.stdout.decode(errors="replace"))
        out = self.stage()
        self.assertRegex(out, r"consistent: .* \(3 books, 4500 tokens")
        self.assertIn('<span class="badge consistent">consistent</span>', self.page())
        # no weights to re-run (results/<split>.model absent): never verified
        # (the committed entries may be verified; the demo's own one is not)
        self.assertNotRegex(out, r"(?m)^verified: ")

    def test_tampered_results_fail_the_stage(self):
        exe = os.path.join(TEST_BIN, "leaderboard_test")
        if not os.access(exe, os.X_OK):
            self.skipTest(f"{exe} not built")
        env = dict(os.environ, PG19_LB_FIXTURE_OUT=self.work)
        subprocess.run([exe], env=env, cwd=TOP, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=True)
        path = os.path.join(self.work, "results", "test.json")
        with open(path) as f:
            r = json.load(f)
        r["totals"]["bytes"] += 7
        t = r["totals"]
        import math
        t["bits_per_byte"] = t["nll"] / (t["bytes"] * math.log(2))
        with open(path, "w") as f:
            json.dump(r, f)
        env = dict(os.environ, PG19_WORK=self.work, PG19_BIN=BIN)
        p = subprocess.run(["bash", STAGE], env=env, cwd=TOP, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        out = p.stdout.decode(errors="replace")
        self.assertNotEqual(p.returncode, 0, out)
        self.assertIn("mismatch: totals.bytes", out)


if __name__ == "__main__":
    unittest.main()


class HarnessIntegration(unittest.TestCase):
    """Once the harness (issue 5) is on the branch: its own output, on shards
    from the shard writer, is accepted by submit and found consistent by verify."""

    def test_harness_results_verify(self):
        harness = os.path.join(BIN, "harness")
        exe = os.path.join(TEST_BIN, "leaderboard_test")
        cfg_src = os.path.join(TOP, "models", "txl-tiny.json")
        if not (os.access(harness, os.X_OK) and os.path.exists(cfg_src)):
            self.skipTest("the harness is not built on this branch")
        if not os.access(exe, os.X_OK):
            self.skipTest(f"{exe} not built")
        with tempfile.TemporaryDirectory() as work:
            env = dict(os.environ, PG19_LB_FIXTURE_OUT=work)
            subprocess.run([exe], env=env, cwd=TOP, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=True)
            with open(cfg_src) as f:
                cfg = json.load(f)
            cfg["vocab_size"] = 200  # the fixture's vocabulary
            cfg_path = os.path.join(work, "txl-tiny-200.json")
            with open(cfg_path, "w") as f:
                json.dump(cfg, f)
            out = os.path.join(work, "harness")
            os.makedirs(out)
            # a prefix run keeps this quick under the sanitizers
            p = subprocess.run([harness, "run", "--model", cfg_path, "--random-init", "3",
                                "--split", "test", "--shards", os.path.join(work, "shards"),
                                "--max-tokens-per-book", "64",
                                "--out", os.path.join(out, "test.json"),
                                "--nll-dump", os.path.join(out, "test.nll")],
                               cwd=TOP, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            self.assertEqual(p.returncode, 0, p.stdout.decode(errors="replace"))
            entries = os.path.join(work, "entries")
            lb = os.path.join(BIN, "leaderboard")
            p = subprocess.run([lb, "submit", os.path.join(out, "test.json"), "--entries", entries],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            self.assertEqual(p.returncode, 0, p.stderr.decode(errors="replace"))
            entry = p.stdout.decode().split("accepted: ")[1].strip()
            p = subprocess.run([lb, "verify", entry, "--nll", os.path.join(out, "test.nll"),
                                "--shards", os.path.join(work, "shards")],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            self.assertEqual(p.returncode, 0, p.stdout.decode(errors="replace"))
            self.assertIn("consistent:", p.stdout.decode())
