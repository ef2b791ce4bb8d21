"""`harness run` under `mpirun --oversubscribe -np N` on the CPU backend:
the NLL dump is byte-identical to a one-process run, and so is the results
JSON apart from the fields that record when and how fast it ran
(`throughput`, `date`; see harness/README.md). Skips with the reason when
mpirun is missing."""
import json
import os
import subprocess
import tempfile
import unittest

from mpienv import mpi_env, mpirun_missing

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("PG19_BIN", os.path.join(TOP, "bin"))
WALL_CLOCK_FIELDS = ("throughput", "date")


class MpiRunTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.shards = os.path.join(cls.tmp.name, "shards")
        synth = os.path.join(BIN, "synth-shards")
        if not os.access(synth, os.X_OK):
            raise unittest.SkipTest(f"{synth} not built")
        subprocess.run([synth, "--out", cls.shards, "--split", "validation", "--books", "5",
                        "--tokens-per-book", "120", "--vocab", "32000"], check=True,
                       stderr=subprocess.DEVNULL)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def run_harness(self, tag, ranks=0, extra=()):
        d = os.path.join(self.tmp.name, tag)
        os.makedirs(d, exist_ok=True)
        args = [os.path.join(BIN, "harness"), "run", "--model", "ct-tiny", "--random-init", "3",
                "--split", "validation", "--shards", self.shards, "--threads", "1",
                "--out", os.path.join(d, "r.json"), "--nll-dump", os.path.join(d, "r.nll"),
                *extra]
        env = None
        if ranks:
            args = ["mpirun", "--oversubscribe", "-np", str(ranks), *args]
            env = mpi_env()
        p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                           timeout=600)
        self.assertEqual(p.returncode, 0, p.stderr.decode("utf-8", "replace"))
        with open(os.path.join(d, "r.json")) as f:
            r = json.load(f)
        with open(os.path.join(d, "r.nll"), "rb") as f:
            dump = f.read()
        return r, dump, p.stderr.decode()

    def assert_same(self, one, many):
        r1, d1, _ = one
        rn, dn, _ = many
        self.assertEqual(d1, dn, "NLL dumps differ")
        for k in WALL_CLOCK_FIELDS:
            r1.pop(k)
            rn.pop(k)
        self.assertEqual(r1, rn)

    def test_two_ranks_equal_one_process(self):
        if mpirun_missing():
            self.skipTest(mpirun_missing())
        one = self.run_harness("one")
        two = self.run_harness("two", ranks=2)
        self.assertIn("2 processes (MPI)", two[2])
        self.assertEqual(two[0]["eval"]["books"], 5)
        self.assert_same(one, two)

    def test_more_ranks_than_books(self):
        """3 ranks, 2 books: one rank has none, the outputs are still whole."""
        if mpirun_missing():
            self.skipTest(mpirun_missing())
        one = self.run_harness("one2", extra=("--max-books", "2"))
        three = self.run_harness("three", ranks=3, extra=("--max-books", "2"))
        self.assertEqual(three[0]["eval"]["books"], 2)
        self.assert_same(one, three)


if __name__ == "__main__":
    unittest.main()
