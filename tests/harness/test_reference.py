"""harness models against the independent NumPy reference (ref_model.py).

Each case writes a tiny config and random weights (safetensors) to a temp
directory, runs `harness logits` (the sanitizer build under `make test`) and
compares the logits with the reference: max |C - ref| / max |ref| < 1e-4.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ref_model  # noqa: E402

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("PG19_BIN", os.path.join(TOP, "bin"))
HARNESS = os.path.join(BIN, "harness")

BASE = {"vocab_size": 37, "d_model": 16, "n_layer": 2, "n_head": 2, "d_head": 8, "d_ff": 24,
        "window": 4}


def ct_config(compression, **kw):
    cfg = dict(BASE, name=f"ct-{compression}", family="compressive-transformer", memory=6,
               compressed_memory=5, compression_rate=2, compression=compression)
    cfg.update(kw)
    return cfg


def txl_config(**kw):
    cfg = dict(BASE, name="txl", family="transformer-xl", memory=6)
    cfg.update(kw)
    return cfg


class HarnessCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def write_model(self, cfg, seed=1, dtype="F32"):
        cpath = os.path.join(self.dir, cfg["name"] + ".json")
        with open(cpath, "w") as f:
            json.dump(cfg, f)
        W = ref_model.random_weights(cfg, seed)
        wpath = os.path.join(self.dir, cfg["name"] + ".safetensors")
        ref_model.write_safetensors(wpath, W, dtype=dtype)
        return cpath, wpath, ref_model.as_stored(W, dtype)

    def harness(self, *args, check=True, env=None):
        e = dict(os.environ)
        e.update(env or {})
        p = subprocess.run([HARNESS, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=e)
        if check and p.returncode != 0:
            self.fail(f"harness {' '.join(args)} failed ({p.returncode}): {p.stderr.decode()}")
        return p

    def c_logits(self, cpath, wpath, tokens, window=None, threads=None, extra=()):
        tpath = os.path.join(self.dir, "tokens.bin")
        with open(tpath, "wb") as f:
            f.write(struct.pack(f"<{len(tokens)}I", *tokens))
        out = os.path.join(self.dir, "logits.f32")
        args = ["logits", "--model", cpath, "--weights", wpath, "--tokens", tpath, "--out", out]
        if window:
            args += ["--window", str(window)]
        if threads:
            args += ["--threads", str(threads)]
        self.harness(*args, *extra)
        with open(cpath) as f:
            V = json.load(f)["vocab_size"]
        return np.fromfile(out, dtype="<f4").reshape(len(tokens), V)

    def assert_close(self, got, want, tol=1e-4):
        err = np.max(np.abs(got - want)) / np.max(np.abs(want))
        self.assertLess(err, tol, f"relative error {err:.3g}")


def tokens_for(cfg, n, seed=7):
    return [int(x) for x in np.random.default_rng(seed).integers(0, cfg["vocab_size"], n)]


class TestAgainstReference(HarnessCase):
    """C forward == NumPy reference, window by window with memories carried
    (37 tokens: 10 windows of 4 and a partial one, so the memory and the
    compressed-memory FIFO both overflow)."""

    def check(self, cfg, n=37, window=None, dtype="F32"):
        cpath, wpath, W = self.write_model(cfg, dtype=dtype)
        toks = tokens_for(cfg, n)
        got = self.c_logits(cpath, wpath, toks, window=window)
        want = ref_model.Reference(cfg, W).logits(np.array(toks), window or cfg["window"])
        self.assert_close(got, want)

    def test_transformer_xl(self):
        self.check(txl_config())

    def test_transformer_xl_no_memory(self):
        self.check(txl_config(memory=0))

    def test_memory_overrides_at_evaluation(self):
        """--memory/--compressed-memory give the reference model with those
        sizes (same weights: they do not depend on the memory sizes)."""
        cfg = ct_config("conv")
        cpath, wpath, W = self.write_model(cfg)
        toks = tokens_for(cfg, 37)
        for mem, cmem in ((4, 3), (2, 0), (0, 6)):
            got = self.c_logits(cpath, wpath, toks, extra=(
                "--memory", str(mem), "--compressed-memory", str(cmem)))
            want = ref_model.Reference(dict(cfg, memory=mem, compressed_memory=cmem),
                                       W).logits(np.array(toks), cfg["window"])
            self.assert_close(got, want)
        base = self.c_logits(cpath, wpath, toks)
        self.assertFalse(np.array_equal(base, got))
        tpath, twpath, _ = self.write_model(txl_config())
        p = self.harness("logits", "--model", tpath, "--weights", twpath, "--tokens",
                         os.path.join(self.dir, "tokens.bin"), "--out",
                         os.path.join(self.dir, "x.f32"), "--compressed-memory", "4",
                         check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("no compression function", p.stderr.decode())

    def test_ct_conv(self):
        self.check(ct_config("conv"))

    def test_ct_dilated_conv(self):
        self.check(ct_config("dilated_conv"))

    def test_ct_dilated_conv_rate3(self):
        self.check(ct_config("dilated_conv", compression_rate=3, dilation=3, window=6,
                             memory=6, compressed_memory=4))

    def test_ct_max_pool(self):
        self.check(ct_config("max_pool"))

    def test_ct_mean_pool(self):
        self.check(ct_config("mean_pool"))

    def test_ct_most_used(self):
        self.check(ct_config("most_used"))

    def test_ct_conv_rate4_long_memory(self):
        self.check(ct_config("conv", compression_rate=4, window=8, memory=16,
                             compressed_memory=3), n=70)

    def test_ct_no_plain_memory(self):
        # n_m = 0: every window goes straight into compression
        self.check(ct_config("mean_pool", memory=0))

    def test_bf16_and_f16_weights(self):
        self.check(ct_config("conv"), dtype="BF16")
        self.check(txl_config(), dtype="F16")


class TestInvariances(HarnessCase):
    def test_threads_bitwise(self):
        cfg = ct_config("conv", d_model=64, n_head=4, d_head=16, d_ff=300, vocab_size=700)
        cpath, wpath, _ = self.write_model(cfg)
        toks = tokens_for(cfg, 29)
        one = self.c_logits(cpath, wpath, toks, threads=1)
        two = self.c_logits(cpath, wpath, toks, threads=2)
        self.assertTrue(np.array_equal(one, two), "1 and 2 threads differ")

    def test_whole_book_equals_windows_when_memory_covers_it(self):
        # With a memory at least as long as the sequence nothing is ever
        # evicted, so every token attends to all its predecessors whatever
        # the window: one window over the whole book == windows of 5 == 1.
        cfg = txl_config(memory=64, window=64)
        cpath, wpath, W = self.write_model(cfg)
        toks = tokens_for(cfg, 40)
        whole = self.c_logits(cpath, wpath, toks, window=40)
        for w in (5, 1):
            self.assert_close(self.c_logits(cpath, wpath, toks, window=w), whole, tol=1e-5)
        full = ref_model.Reference(cfg, W).logits(np.array(toks), 40)
        self.assert_close(whole, full)


class TestWeightsErrors(HarnessCase):
    def test_missing_weights_says_how_to_get_them(self):
        cpath, _, _ = self.write_model(txl_config())
        p = self.harness("logits", "--model", cpath, "--weights",
                         os.path.join(self.dir, "nope.safetensors"), "--tokens", cpath,
                         "--out", os.path.join(self.dir, "x"), check=False)
        self.assertEqual(p.returncode, 1)
        msg = p.stderr.decode()
        self.assertIn("not found", msg)
        self.assertIn("--random-init", msg)
        self.assertIn("save_file", msg)

    def bad_file(self, mutate):
        cfg = txl_config()
        cpath, wpath, _ = self.write_model(cfg)
        with open(wpath, "rb") as f:
            data = bytearray(f.read())
        data = mutate(data)
        with open(wpath, "wb") as f:
            f.write(data)
        tpath = os.path.join(self.dir, "t.bin")
        with open(tpath, "wb") as f:
            f.write(struct.pack("<3I", 1, 2, 3))
        p = self.harness("logits", "--model", cpath, "--weights", wpath, "--tokens", tpath,
                         "--out", os.path.join(self.dir, "x"), check=False)
        self.assertEqual(p.returncode, 1, p.stderr.decode())
        self.assertIn(os.path.basename(wpath), p.stderr.decode())
        return p.stderr.decode()

    def test_corrupt_headers(self):
        def header_edit(fn):
            def m(data):
                n = struct.unpack("<Q", data[:8])[0]
                h = json.loads(bytes(data[8:8 + n]))
                fn(h)
                hb = json.dumps(h).encode()
                hb += b" " * (-len(hb) % 8)
                return bytearray(struct.pack("<Q", len(hb)) + hb + data[8 + n:])
            return m

        self.assertIn("header length", self.bad_file(lambda d: bytearray(
            struct.pack("<Q", 1 << 60) + d[8:])))
        self.assertIn("header length", self.bad_file(lambda d: bytearray(
            struct.pack("<Q", len(d)) + d[8:])))
        self.assertIn("too short", self.bad_file(lambda d: d[:5]))
        self.assertIn("not a JSON", self.bad_file(lambda d: bytearray(
            struct.pack("<Q", 4) + b"[1,2" + d[12:])))
        self.assertIn("data_offsets", self.bad_file(header_edit(
            lambda h: h["tok_emb.weight"].update(data_offsets=[0, 1 << 40]))))
        self.assertIn("data_offsets", self.bad_file(header_edit(
            lambda h: h["tok_emb.weight"].update(data_offsets=[8, 4]))))
        self.assertIn("bytes for", self.bad_file(header_edit(
            lambda h: h["tok_emb.weight"].update(data_offsets=[0, 4]))))
        self.assertIn("dimension", self.bad_file(header_edit(
            lambda h: h["tok_emb.weight"].update(shape=[37, 17]))))
        self.assertIn("dtype", self.bad_file(header_edit(
            lambda h: h["tok_emb.weight"].update(dtype="I64"))))
        self.assertIn("not part of model", self.bad_file(header_edit(
            lambda h: h.update(extra=h["ln_f.bias"]))))
        self.assertIn("missing", self.bad_file(header_edit(lambda h: h.pop("ln_f.bias"))))
        self.assertIn("vocab_sha256", self.bad_file(header_edit(
            lambda h: h.update(__metadata__={"vocab_sha256": "xyz"}))))
        # truncated data: offsets point past the end of the file
        self.assertIn("data_offsets", self.bad_file(lambda d: d[:-16]))

    def test_random_init_needs_no_weights(self):
        cpath, _, _ = self.write_model(txl_config())
        tpath = os.path.join(self.dir, "t.bin")
        with open(tpath, "wb") as f:
            f.write(struct.pack("<5I", 1, 2, 3, 4, 36))
        out = os.path.join(self.dir, "a.f32")
        self.harness("logits", "--model", cpath, "--random-init", "5", "--tokens", tpath,
                     "--out", out)
        a = np.fromfile(out, dtype="<f4")
        self.harness("logits", "--model", cpath, "--random-init", "5", "--tokens", tpath,
                     "--out", out)
        self.assertTrue(np.array_equal(a, np.fromfile(out, dtype="<f4")))
        self.harness("logits", "--model", cpath, "--random-init", "6", "--tokens", tpath,
                     "--out", out)
        self.assertFalse(np.array_equal(a, np.fromfile(out, dtype="<f4")))
        # init writes the random weights as safetensors that load back the same
        wpath = os.path.join(self.dir, "init.safetensors")
        self.harness("init", "--model", cpath, "--random-init", "5", "--out", wpath)
        self.harness("logits", "--model", cpath, "--weights", wpath, "--tokens", tpath,
                     "--out", out)
        self.assertTrue(np.array_equal(a, np.fromfile(out, dtype="<f4")))

    def test_bad_token_and_config(self):
        cpath, wpath, _ = self.write_model(txl_config())
        tpath = os.path.join(self.dir, "t.bin")
        with open(tpath, "wb") as f:
            f.write(struct.pack("<2I", 1, 37))
        p = self.harness("logits", "--model", cpath, "--weights", wpath, "--tokens", tpath,
                         "--out", os.path.join(self.dir, "x"), check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("vocabulary size", p.stderr.decode())
        ccfg, cw, _ = self.write_model(ct_config("conv"))
        p = self.harness("logits", "--model", ccfg, "--weights", cw, "--tokens", tpath,
                         "--out", os.path.join(self.dir, "x"), "--window", "3", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("multiple of the compression rate", p.stderr.decode())
        for bad in ({"d_model": 15}, {"n_layer": 0}, {"family": "gpt"}, {"typo": 1},
                    {"compression": "conv"}):
            cfg = txl_config(**bad)
            with open(cpath, "w") as f:
                json.dump(cfg, f)
            p = self.harness("info", "--model", cpath, check=False)
            self.assertEqual(p.returncode, 1, bad)


class TestShippedConfigs(unittest.TestCase):
    def test_configs_parse_and_ct36_size(self):
        for name in ("ct36", "txl36", "ct-tiny", "txl-tiny", "bench-mid"):
            p = subprocess.run([HARNESS, "info", "--model",
                                os.path.join(TOP, "models", name + ".json")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            self.assertEqual(p.returncode, 0, p.stderr.decode())
        out = subprocess.run([HARNESS, "info", "--model", os.path.join(TOP, "models",
                                                                         "txl36.json")],
                             stdout=subprocess.PIPE).stdout.decode()
        self.assertIn("276.3M without the embedding", out)


if __name__ == "__main__":
    unittest.main()
