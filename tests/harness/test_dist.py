"""harness/dist.c across real processes: the dist unit test binary under
`mpirun --oversubscribe -np 2` (Open MPI), where every collective crosses
processes. Skips with the reason when mpirun or the binary is missing."""
import os
import subprocess
import unittest

from mpienv import mpi_env, mpirun_missing

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TEST_BIN = os.environ.get("PG19_TEST_BIN", os.path.join(TOP, "build-san", "tests"))


class DistTest(unittest.TestCase):
    def test_two_ranks(self):
        prog = os.path.join(TEST_BIN, "harness_dist_test")
        if mpirun_missing():
            self.skipTest(mpirun_missing())
        if not os.access(prog, os.X_OK):
            self.skipTest(f"{prog} not built")
        env = mpi_env()
        env["PG19_EXPECT_RANKS"] = "2"
        proc = subprocess.run(["mpirun", "--oversubscribe", "-np", "2", prog],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                              timeout=120)
        out = proc.stdout.decode("utf-8", "replace")
        self.assertEqual(proc.returncode, 0, out)
        self.assertIn("[  PASSED  ] 5 test(s).", out)


if __name__ == "__main__":
    unittest.main()
