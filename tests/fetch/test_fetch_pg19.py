"""Integration tests for `fetch pg19` against a real HTTP server on 127.0.0.1
(gcs_server.py) with injected faults. Each test checks the final tree byte for
byte, or that the tool failed cleanly and left earlier good files intact."""
import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest

from fetchlib import PY, Server, fetch_cmd, make_bucket, tree_files

CORPUS = os.environ.get("PG19_TEST_CORPUS")


class FetchCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="pg19-fetch-test-")
        self.bucket_root = os.path.join(self.tmp, "bucket")
        self.out = os.path.join(self.tmp, "out")
        self.objs = make_bucket(self.bucket_root)

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def run_fetch(self, server, *extra, timeout=120):
        args = fetch_cmd("--out", self.out, "--base-url", server.url, "--jobs", "4",
                         "--stall-timeout", "2", *extra)
        return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)

    def assert_tree_complete(self, objs=None):
        objs = objs or self.objs
        for name, data in objs.items():
            path = os.path.join(self.out, name)
            with open(path, "rb") as f:
                self.assertEqual(f.read(), data, name)
        files = tree_files(self.out)
        stray = [p for p in files if ".tmp." in p or (not p.startswith(".partial") and p != "MANIFEST.tsv"
                                                        and p not in objs)]
        self.assertEqual(stray, [])
        # the manifest lists exactly these files with the right checksums
        with open(os.path.join(self.out, "MANIFEST.tsv")) as f:
            lines = f.read().splitlines()
        self.assertEqual(lines[0], "split\tid\tbytes\tmd5\tcrc32c\tsha256")
        rows = {}
        for line in lines[1:]:
            split, ident, nbytes, md5, crc, sha = line.split("\t")
            name = ident if split == "-" else f"{split}/{ident}.txt"
            rows[name] = (int(nbytes), md5, sha)
        for name, data in objs.items():
            self.assertEqual(rows[name], (len(data), hashlib.md5(data).hexdigest(),
                                          hashlib.sha256(data).hexdigest()), name)

    def assert_ok(self, r):
        self.assertEqual(r.returncode, 0, r.stderr.decode())

    def start_fetch(self, server, *extra):
        """A run in the background (stderr piped), for tests that act while it downloads."""
        args = fetch_cmd("--out", self.out, "--base-url", server.url, "--stall-timeout", "2", *extra)
        return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def wait_for_partial(self, name, at_least, proc):
        partial = os.path.join(self.out, ".partial", name)
        deadline = time.time() + 30
        while time.time() < deadline:
            if os.path.exists(partial) and os.path.getsize(partial) >= at_least:
                return partial
            if proc.poll() is not None:
                break
            time.sleep(0.02)
        self.fail(f"{name}: no partial file of {at_least} bytes appeared")

    def use_slow_books(self, ids, size):
        """A bucket of a few big books, served slowly enough to act mid-download."""
        shutil.rmtree(self.bucket_root)
        self.objs = make_bucket(self.bucket_root, books={"train": ids}, sizes=(size, size + 1))


class TestClean(FetchCase):
    def test_full_fetch_with_pagination(self):
        with Server(self.bucket_root, page_size=2) as srv:
            r = self.run_fetch(srv)
            self.assert_ok(r)
            self.assert_tree_complete()
            pages = [q for q in srv.requests() if q["path"].startswith("/storage/") and "train" in q["path"]]
            self.assertGreaterEqual(len(pages), 3)  # 6 train books, 2 per page
            # the summary line, no live progress in a pipe
            self.assertIn(b"fetch pg19:", r.stderr)
            self.assertNotIn(b"\r", r.stderr)

    def test_rerun_skips_verified_files(self):
        with Server(self.bucket_root) as srv:
            self.assert_ok(self.run_fetch(srv))
            before = len(srv.object_requests())
            r = self.run_fetch(srv)
            self.assert_ok(r)
            self.assertEqual(len(srv.object_requests()), before)
            self.assertIn(b"already verified", r.stderr)
            self.assert_tree_complete()

    def test_split_subset_and_limit(self):
        with Server(self.bucket_root) as srv:
            self.assert_ok(self.run_fetch(srv, "--split", "train,test", "--limit", "2"))
        want = {"metadata.csv": self.objs["metadata.csv"], "train/101.txt": self.objs["train/101.txt"],
                "train/102.txt": self.objs["train/102.txt"], "test/301.txt": self.objs["test/301.txt"],
                "test/302.txt": self.objs["test/302.txt"]}
        self.assert_tree_complete(want)
        self.assertFalse(os.path.exists(os.path.join(self.out, "validation")))

    def test_numeric_order_for_limit(self):
        # 1006 sorts before 101 as a string; --limit takes the smallest ids
        with Server(self.bucket_root) as srv:
            self.assert_ok(self.run_fetch(srv, "--split", "train", "--limit", "5"))
        self.assertFalse(os.path.exists(os.path.join(self.out, "train", "1006.txt")))
        self.assertTrue(os.path.exists(os.path.join(self.out, "train", "105.txt")))

    def test_file_placed_before_manifest_checkpoint_is_adopted(self):
        with Server(self.bucket_root) as srv:
            self.assert_ok(self.run_fetch(srv))
            os.unlink(os.path.join(self.out, "MANIFEST.tsv"))
            before = len(srv.object_requests())
            r = self.run_fetch(srv)
            self.assert_ok(r)
            self.assertEqual(len(srv.object_requests()), before)
            self.assert_tree_complete()

    def test_tampered_file_is_replaced_on_recheck(self):
        with Server(self.bucket_root) as srv:
            self.assert_ok(self.run_fetch(srv))
            with open(os.path.join(self.out, "train", "103.txt"), "r+b") as f:
                f.write(b"X")
            self.assert_ok(self.run_fetch(srv, "--recheck"))
            self.assert_tree_complete()


class TestFaults(FetchCase):
    def test_5xx_then_success(self):
        faults = {"train/101.txt": ["500", "503"], "test/301.txt": ["503"]}
        with Server(self.bucket_root, faults=faults) as srv:
            self.assert_ok(self.run_fetch(srv))
            self.assertEqual(len(srv.object_requests("train/101.txt")), 3)
        self.assert_tree_complete()

    def test_429_honours_retry_after(self):
        with Server(self.bucket_root, faults={"train/102.txt": ["429:2"]}) as srv:
            self.assert_ok(self.run_fetch(srv))
            reqs = srv.object_requests("train/102.txt")
            self.assertEqual(len(reqs), 2)
            self.assertGreaterEqual(reqs[1]["t"] - reqs[0]["t"], 1.9)
        self.assert_tree_complete()

    def test_reset_mid_body(self):
        big = max((n for n in self.objs if n.endswith(".txt")), key=lambda n: len(self.objs[n]))
        with Server(self.bucket_root, faults={big: ["reset:4000", "reset:0"]}) as srv:
            self.assert_ok(self.run_fetch(srv))
            self.assertEqual(len(srv.object_requests(big)), 3)
        self.assert_tree_complete()

    def test_truncated_body_resumes_with_range(self):
        faults = {"train/104.txt": ["truncate:100"], "validation/201.txt": ["short:7"]}
        with Server(self.bucket_root, faults=faults) as srv:
            self.assert_ok(self.run_fetch(srv))
            reqs = srv.object_requests("train/104.txt")
            self.assertEqual([q["range"] for q in reqs], [None, "bytes=100-"])
            # a consistent but short body is completed the same way
            reqs = srv.object_requests("validation/201.txt")
            self.assertEqual(len(reqs), 2)
            self.assertIsNotNone(reqs[1]["range"])
        self.assert_tree_complete()

    def test_416_on_resume_restarts_file(self):
        # a stale partial file (from an older object) is refused with 416
        with Server(self.bucket_root) as srv:
            self.assert_ok(self.run_fetch(srv, "--split", "test", "--limit", "0"))
        part = os.path.join(self.out, ".partial", "test", "301.txt")
        os.makedirs(os.path.dirname(part), exist_ok=True)
        with open(part, "wb") as f:
            f.write(b"stale bytes")
        with Server(self.bucket_root, faults={"test/301.txt": ["416"]}) as srv:
            self.assert_ok(self.run_fetch(srv))
            reqs = srv.object_requests("test/301.txt")
            self.assertEqual([q["range"] for q in reqs], ["bytes=11-", None])
        self.assert_tree_complete()

    def test_range_ignored_restarts_file(self):
        with Server(self.bucket_root, faults={"train/105.txt": ["truncate:300"]}, no_range=True) as srv:
            self.assert_ok(self.run_fetch(srv))
        self.assert_tree_complete()

    def test_corrupt_once_is_retried(self):
        with Server(self.bucket_root, faults={"test/302.txt": ["corrupt"]}) as srv:
            self.assert_ok(self.run_fetch(srv))
            self.assertEqual(len(srv.object_requests("test/302.txt")), 2)
        self.assert_tree_complete()

    def test_oversized_body_is_cut_and_retried(self):
        with Server(self.bucket_root, faults={"train/103.txt": ["extra"]}) as srv:
            self.assert_ok(self.run_fetch(srv))
        self.assert_tree_complete()

    def test_stall_times_out_and_retries(self):
        with Server(self.bucket_root, faults={"train/101.txt": ["stall:30"]}) as srv:
            t0 = time.time()
            self.assert_ok(self.run_fetch(srv))
            self.assertLess(time.time() - t0, 25)
        self.assert_tree_complete()

    def test_listing_errors_are_retried(self):
        with Server(self.bucket_root, faults={"LIST": ["503", "429:1", "reset:10"]}) as srv:
            self.assert_ok(self.run_fetch(srv))
        self.assert_tree_complete()

    def test_persistent_corruption_fails_cleanly_and_keeps_good_files(self):
        with Server(self.bucket_root) as srv:
            self.assert_ok(self.run_fetch(srv))
        good = os.path.join(self.out, "test", "303.txt")
        mtime = os.stat(good).st_mtime_ns
        os.unlink(os.path.join(self.out, "train", "102.txt"))
        with Server(self.bucket_root, faults={"train/102.txt": ["corrupt*"]}) as srv:
            r = self.run_fetch(srv, "--retries", "3")
        self.assertEqual(r.returncode, 1)
        err = r.stderr.decode()
        self.assertIn("FAILED train/102.txt after 3 attempt(s)", err)
        self.assertIn("md5 mismatch", err)
        self.assertFalse(os.path.exists(os.path.join(self.out, "train", "102.txt")))
        self.assertEqual(os.stat(good).st_mtime_ns, mtime)
        partial = os.path.join(self.out, ".partial", "train", "102.txt")
        self.assertFalse(os.path.exists(partial))  # bad bytes are not kept
        objs = dict(self.objs)
        del objs["train/102.txt"]
        for name, data in objs.items():
            with open(os.path.join(self.out, name), "rb") as f:
                self.assertEqual(f.read(), data)

    def test_404_is_not_retried(self):
        os.unlink(os.path.join(self.bucket_root, "test", "301.txt"))  # listed by nobody now
        with Server(self.bucket_root, faults={"test/302.txt": ["404*"]}) as srv:
            r = self.run_fetch(srv)
            self.assertEqual(r.returncode, 1)
            self.assertEqual(len(srv.object_requests("test/302.txt")), 1)
        self.assertIn(b"HTTP 404", r.stderr)

    def test_garbage_listing_fails_cleanly(self):
        with Server(self.bucket_root, faults={"LIST": ["garbage*"]}) as srv:
            r = self.run_fetch(srv)
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"not valid JSON", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.out, "train")))

    def test_offline_fails_fast(self):
        t0 = time.time()
        r = subprocess.run(fetch_cmd("--out", self.out, "--base-url", "http://pg19-no-such-host.invalid"),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(r.returncode, 1)
        self.assertLess(time.time() - t0, 10)
        self.assertIn(b"no internet access", r.stderr)

    def test_bad_arguments(self):
        for args in (["--split", "dev"], ["--jobs", "0"], ["--limit", "x"], ["extra"]):
            r = subprocess.run(fetch_cmd(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            self.assertEqual(r.returncode, 2, args)


class TestKill(FetchCase):
    def test_kill9_mid_download_then_rerun(self):
        shutil.rmtree(self.bucket_root)
        self.objs = make_bucket(self.bucket_root, books={"train": [11, 12]}, sizes=(200000, 220000))
        with Server(self.bucket_root, rate=100000) as srv:
            p = subprocess.Popen(fetch_cmd("--out", self.out, "--base-url", srv.url, "--jobs", "2"),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            partial = os.path.join(self.out, ".partial", "train", "11.txt")
            deadline = time.time() + 30
            while time.time() < deadline:
                if os.path.exists(partial) and os.path.getsize(partial) > 20000:
                    break
                time.sleep(0.05)
            p.send_signal(signal.SIGKILL)
            p.wait()
            self.assertFalse(os.path.exists(os.path.join(self.out, "train", "11.txt")))
            self.assertGreater(os.path.getsize(partial), 0)
            r = self.run_fetch(srv)
            self.assert_ok(r)
            ranged = [q for q in srv.object_requests("train/11.txt") if q["range"]]
            self.assertEqual(len(ranged), 1)
        self.assert_tree_complete({k: v for k, v in self.objs.items()})

    def test_sigint_keeps_partials_and_exits_130(self):
        shutil.rmtree(self.bucket_root)
        self.objs = make_bucket(self.bucket_root, books={"train": [21]}, sizes=(300000, 300001))
        with Server(self.bucket_root, rate=100000) as srv:
            p = subprocess.Popen(fetch_cmd("--out", self.out, "--base-url", srv.url),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            partial = os.path.join(self.out, ".partial", "train", "21.txt")
            deadline = time.time() + 30
            while time.time() < deadline and not (os.path.exists(partial) and os.path.getsize(partial) > 10000):
                time.sleep(0.05)
            p.send_signal(signal.SIGINT)
            _, err = p.communicate(timeout=30)
            self.assertEqual(p.returncode, 130, err)
            self.assertIn(b"interrupted", err)
            self.assertGreater(os.path.getsize(partial), 0)
            self.assert_ok(self.run_fetch(srv))
        self.assert_tree_complete()


class TestOutputLock(FetchCase):
    """One run at a time per output folder, and bytes checked as they are on disk."""

    def test_second_run_into_the_same_folder_is_refused(self):
        self.use_slow_books([31, 32], 200000)
        with Server(self.bucket_root, rate=100000) as srv:
            first = self.start_fetch(srv, "--jobs", "2")
            self.wait_for_partial("train/31.txt", 10000, first)
            second = self.run_fetch(srv)
            _, first_err = first.communicate(timeout=60)
            self.assertEqual(first.returncode, 0, first_err.decode())
        self.assertNotEqual(second.returncode, 0)
        err = second.stderr.decode()
        self.assertIn(f"pid {first.pid}", err)
        self.assertIn(".fetch.lock", err)
        self.assert_tree_complete()
        self.assertFalse(os.path.exists(os.path.join(self.out, ".fetch.lock")))

    def test_partial_changed_on_disk_is_not_placed(self):
        # Another writer overwrites bytes fetch has already received and
        # hashed: the streamed checksums match, the file on disk does not.
        self.use_slow_books([41], 300000)
        with Server(self.bucket_root, rate=100000) as srv:
            p = self.start_fetch(srv, "--jobs", "1")
            partial = self.wait_for_partial("train/41.txt", 100000, p)
            with open(partial, "r+b") as f:
                f.write(b"\0" * 32768)
            _, err = p.communicate(timeout=60)
            self.assertEqual(p.returncode, 0, err.decode())
            self.assertEqual(len(srv.object_requests("train/41.txt")), 2)
        self.assert_tree_complete()

    def test_missing_partial_fails_only_itself(self):
        # Two books finish together and are placed in one batch; one partial
        # file was deleted mid-download. The other is placed, that one retried.
        self.use_slow_books([51, 52], 200000)
        with Server(self.bucket_root, rate=100000) as srv:
            p = self.start_fetch(srv, "--jobs", "3")
            partial = self.wait_for_partial("train/51.txt", 50000, p)
            self.wait_for_partial("train/52.txt", 50000, p)
            os.unlink(partial)
            _, err = p.communicate(timeout=60)
            self.assertEqual(p.returncode, 0, err.decode())
            self.assertEqual(len(srv.object_requests("train/51.txt")), 2)
            self.assertEqual(len(srv.object_requests("train/52.txt")), 1)
        self.assert_tree_complete()


class TestHostileListing(FetchCase):
    """Listings that never end or list far more objects than PG-19 has."""

    def run_measured(self, server, timeout=60):
        """Runs fetch; returns (exit status, stderr, peak RSS of fetch in KiB)."""
        args = fetch_cmd("--out", self.out, "--base-url", server.url, "--stall-timeout", "2")
        # a small ASan quarantine, so that freed pages do not count as memory in use
        env = dict(os.environ, ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=8")
        p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        killer = threading.Timer(timeout, p.kill)
        killer.start()
        try:
            err = p.stderr.read()
            _, status, usage = os.wait4(p.pid, 0)
        finally:
            killer.cancel()
            p.stderr.close()
        p.returncode = os.waitstatus_to_exitcode(status)
        return p.returncode, err, usage.ru_maxrss

    def test_endless_pages_are_refused(self):
        with Server(self.bucket_root, faults={"LIST": ["endless*"]}, log=False) as srv:
            rc, err, _ = self.run_measured(srv)
        self.assertEqual(rc, 1, err)
        self.assertIn(b"more than 2000 listing pages", err)

    def test_too_many_objects_are_refused_in_bounded_memory(self):
        with Server(self.bucket_root, faults={"LIST": ["flood:1000*"]}, log=False) as srv:
            rc, err, rss_kib = self.run_measured(srv)
        self.assertEqual(rc, 1, err)
        self.assertIn(b"more than 100000 objects", err)
        # 100,000 entries (about 30 MB) and one page at a time: 41 MiB measured, 72 MiB under ASan
        self.assertLess(rss_kib, 200 * 1024)


class TestSlowServers(FetchCase):
    def biggest_book(self):
        return max((n for n in self.objs if n.endswith(".txt")), key=lambda n: len(self.objs[n]))

    def test_trickle_is_cut_off_by_the_minimum_rate(self):
        # 4 bytes/s is not a stall (bytes keep coming), but far below any useful rate
        big = self.biggest_book()
        with Server(self.bucket_root, faults={big: ["trickle:4"]}) as srv:
            t0 = time.time()
            r = self.run_fetch(srv, timeout=60)
            self.assert_ok(r)
            self.assertLess(time.time() - t0, 20)
            reqs = srv.object_requests(big)
            self.assertEqual(len(reqs), 2)
            self.assertIsNotNone(reqs[1]["range"])  # the trickled bytes are kept
        self.assert_tree_complete()

    def test_deadline_bounds_each_attempt(self):
        # fast enough for the minimum rate, too slow for the deadline
        big = self.biggest_book()
        rate = len(self.objs[big]) // 6
        with Server(self.bucket_root, faults={big: [f"trickle:{rate}*"]}) as srv:
            t0 = time.time()
            r = self.run_fetch(srv, "--deadline", "1", "--retries", "2", timeout=60)
            self.assertLess(time.time() - t0, 20)
            self.assertEqual(len(srv.object_requests(big)), 2)
        self.assertEqual(r.returncode, 1)
        err = r.stderr.decode()
        self.assertIn(f"FAILED {big} after 2 attempt(s)", err)
        self.assertIn("timed out", err)
        self.assertFalse(os.path.exists(os.path.join(self.out, big)))

    def test_bad_rate_arguments(self):
        for args in (["--deadline", "0"], ["--min-rate", "-1"], ["--min-rate", "x"]):
            r = subprocess.run(fetch_cmd(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            self.assertEqual(r.returncode, 2, args)
            self.assertIn(args[0].encode(), r.stderr)


class TestDamagedManifest(FetchCase):
    def test_damaged_manifest_is_rebuilt_from_the_files(self):
        with Server(self.bucket_root) as srv:
            self.assert_ok(self.run_fetch(srv))
            man = os.path.join(self.out, "MANIFEST.tsv")
            with open(man, "rb") as f:
                text = f.read()
            with open(man, "wb") as f:  # cut mid-line, then junk
                f.write(text[: len(text) // 2] + b"\x00\xffjunk\n")
            with open(os.path.join(self.out, "train", "103.txt"), "r+b") as f:
                f.write(b"X")  # and one book no longer matches the listing
            before = len(srv.object_requests())
            r = self.run_fetch(srv)
            self.assert_ok(r)
            err = r.stderr.decode()
            self.assertIn("MANIFEST.tsv", err)
            self.assertIn("rebuilding it", err)
            fetched = [q["path"] for q in srv.object_requests()[before:]]
            self.assertEqual(fetched, ["/deepmind-gutenberg/train/103.txt"])
        self.assert_tree_complete()

    def test_unreadable_manifest_says_what_to_do(self):
        with Server(self.bucket_root) as srv:
            self.assert_ok(self.run_fetch(srv, "--split", "test"))
            man = os.path.join(self.out, "MANIFEST.tsv")
            os.unlink(man)
            os.mkdir(man)  # not a file: cannot be rebuilt in place
            r = self.run_fetch(srv, "--split", "test")
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"MANIFEST.tsv", r.stderr)
        self.assertIn(b"remove it", r.stderr)


class TestFullDisk(FetchCase):
    """Books fail to write and then the manifest cannot be saved either:
    each failed book must still be reported."""

    def check_report(self, r):
        self.assertEqual(r.returncode, 1)
        err = r.stderr.decode()
        self.assertIn("MANIFEST.tsv", err)
        failed = [n for n in self.objs if not os.path.exists(os.path.join(self.out, n))]
        self.assertTrue(failed)
        for name in failed:
            self.assertIn(f"FAILED {name}", err)

    def test_file_size_limit(self):
        # RLIMIT_FSIZE makes writes fail (EFBIG) as a full disk does, with no privileges
        shutil.rmtree(self.bucket_root)
        self.objs = make_bucket(self.bucket_root, books={"train": list(range(1000, 1040))}, sizes=(300, 600))
        for name in ("train/1001.txt", "train/1002.txt"):
            with open(os.path.join(self.bucket_root, name), "ab") as f:
                f.write(b"x" * 20000)
            with open(os.path.join(self.bucket_root, name), "rb") as f:
                self.objs[name] = f.read()

        def limit():
            import resource
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

        with Server(self.bucket_root) as srv:
            args = fetch_cmd("--out", self.out, "--base-url", srv.url, "--stall-timeout", "2")
            r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120,
                               preexec_fn=limit)
        self.check_report(r)
        self.assertIn("File too large", r.stderr.decode())

    def test_full_tmpfs(self):
        if os.geteuid() != 0:
            self.skipTest("mounting a small tmpfs needs root")
        mnt = os.path.join(self.tmp, "small")
        os.mkdir(mnt)
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", mnt],
                          stderr=subprocess.DEVNULL).returncode != 0:
            self.skipTest("cannot mount a tmpfs here")
        try:
            self.out = os.path.join(mnt, "out")
            with Server(self.bucket_root) as srv:
                r = self.run_fetch(srv)
            self.check_report(r)
            self.assertIn("No space left on device", r.stderr.decode())
        finally:
            subprocess.run(["umount", mnt])


@unittest.skipUnless(CORPUS, "PG19_TEST_CORPUS is not set")
class TestRealBooks(unittest.TestCase):
    """Serves the three real PG-19 books and the real metadata.csv in the
    bucket layout and checks each SHA-256 against pg19_files_derived.tsv."""

    def test_real_books_sha256(self):
        src = os.path.join(CORPUS, "pg19", "hf-dummy-real-books", "dummy_data")
        tsv = os.path.join(CORPUS, "pg19", "pg19_files_derived.tsv")
        tmp = tempfile.mkdtemp(prefix="pg19-real-")
        try:
            root = os.path.join(tmp, "bucket")
            objs = {}
            for split, ident in (("train", "10006"), ("validation", "28213"), ("test", "12204")):
                os.makedirs(os.path.join(root, split))
                with open(os.path.join(src, f"{ident}.txt"), "rb") as f:
                    objs[f"{split}/{ident}.txt"] = f.read()
                shutil.copy(os.path.join(src, f"{ident}.txt"), os.path.join(root, split))
            with open(os.path.join(CORPUS, "pg19", "metadata.csv"), "rb") as f:
                objs["metadata.csv"] = f.read()
            shutil.copy(os.path.join(CORPUS, "pg19", "metadata.csv"), root)
            out = os.path.join(tmp, "out")
            with Server(root) as srv:
                r = subprocess.run(fetch_cmd("--out", out, "--base-url", srv.url, "--sha256-list", tsv),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
            self.assertEqual(r.returncode, 0, r.stderr.decode())
            expected = {}
            with open(tsv) as f:
                next(f)
                for line in f:
                    split, ident, nbytes, sha = line.rstrip("\n").split("\t")
                    expected[f"{split}/{ident}.txt"] = (int(nbytes), sha)
            for name in objs:
                with open(os.path.join(out, name), "rb") as f:
                    data = f.read()
                self.assertEqual(data, objs[name])
                if name in expected:
                    self.assertEqual((len(data), hashlib.sha256(data).hexdigest()), expected[name], name)
            # metadata.csv is the published one (SHA-256 from the corpus README)
            self.assertTrue(hashlib.sha256(objs["metadata.csv"]).hexdigest().startswith("fbb2fdb4"))
            # a book whose bytes differ from the SHA-256 list is refused
            with open(os.path.join(root, "train", "10006.txt"), "ab") as f:
                f.write(b"x")
            out2 = os.path.join(tmp, "out2")
            with Server(root) as srv:
                r = subprocess.run(fetch_cmd("--out", out2, "--base-url", srv.url, "--sha256-list", tsv),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
            self.assertEqual(r.returncode, 1)
            self.assertIn(b"train/10006.txt", r.stderr)
            self.assertFalse(os.path.exists(os.path.join(out2, "train", "10006.txt")))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
