"""`harness analyze`: the rare-word comparison of results JSONs, checked
against values computed here from the same JSONs, and its refusals."""
import csv
import json
import math
import os
import shutil
import subprocess
import tempfile
import unittest
import xml.etree.ElementTree as ET

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("PG19_BIN", os.path.join(TOP, "bin"))
BUCKETS = ["frequent", "common", "medium", "rare"]


def results(name, bucket_words, bucket_nll, split="validation"):
    """A results JSON with the fields the analysis reads (harness/RESULTS.md)."""
    words, nll = sum(bucket_words), sum(bucket_nll)
    return {
        "schema": "pg19-results/1",
        "model": {"name": name, "family": "compressive-transformer"},
        "eval": {"split": split},
        "context": {"window": 32, "memory": 32, "compressed_memory": 16,
                    "compression_rate": 2, "attention_span": 80},
        "totals": {"nll": nll, "words": words},
        "word_ppl_exact": {"normaliser": "exact", "words": words,
                           "value": math.exp(nll / words)},
        "buckets": [{"name": n, "words": w, "nll": l,
                     "word_ppl": math.exp(l / w) if w else None}
                    for n, w, l in zip(BUCKETS, bucket_words, bucket_nll)],
    }


class AnalyzeRareTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="pg19-analyze-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def write(self, name, obj):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(obj if isinstance(obj, str) else json.dumps(obj))
        return path

    def analyze(self, *args):
        return subprocess.run([os.path.join(BIN, "harness"), "analyze", "rare", *args],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def test_side_by_side(self):
        words = [700, 200, 80, 20]
        a = self.write("a.json", results("ct-small", words, [1400.0, 900.0, 500.0, 190.0]))
        b = self.write("b.json", results("txl-small", words, [1410.0, 930.0, 530.0, 0.0]))
        out = os.path.join(self.dir, "out")
        p = self.analyze(a, b, "-o", out)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(os.path.join(out, "rare-words.csv")) as f:
            rows = list(csv.DictReader(f))
        self.assertEqual(len(rows), 10)
        got = {(r["model"], r["bucket"]): float(r["word_ppl"]) for r in rows}
        self.assertAlmostEqual(got[("ct-small", "rare")], math.exp(190.0 / 20), places=9)
        self.assertAlmostEqual(got[("txl-small", "common")], math.exp(930.0 / 200), places=9)
        self.assertAlmostEqual(got[("ct-small", "all")], math.exp(2990.0 / 1000), places=9)
        self.assertEqual(got[("txl-small", "rare")], 1.0)
        md = open(os.path.join(out, "rare-words.md")).read()
        self.assertIn("| common | 200 | %.2f | %.2f | %.3f |" % (
            math.exp(4.5), math.exp(4.65), math.exp(4.65) / math.exp(4.5)), md)
        svg = ET.parse(os.path.join(out, "rare-words.svg")).getroot()
        texts = [t.text for t in svg.iter("{http://www.w3.org/2000/svg}text")]
        for n in BUCKETS + ["all words", "ct-small", "txl-small"]:
            self.assertIn(n, texts)
        bars = [r for r in svg.iter("{http://www.w3.org/2000/svg}rect") if r.find(
            "{http://www.w3.org/2000/svg}title") is not None]
        self.assertEqual(len(bars), 10)

    def test_labels_and_empty_bucket(self):
        a = self.write("a.json", results("m", [10, 0, 0, 5], [20.0, 0.0, 0.0, 15.0]))
        out = os.path.join(self.dir, "out")
        p = self.analyze(a, "--label", "my <model>", "-o", out)
        self.assertEqual(p.returncode, 0, p.stderr)
        md = open(os.path.join(out, "rare-words.md")).read()
        self.assertIn("| medium | 0 | — |", md)
        self.assertIn("my <model>", md)
        ET.parse(os.path.join(out, "rare-words.svg"))  # the label is escaped

    def test_refuses_runs_over_other_words(self):
        a = self.write("a.json", results("a", [700, 200, 80, 20], [1.0, 1.0, 1.0, 1.0]))
        b = self.write("b.json", results("b", [700, 201, 80, 19], [1.0, 1.0, 1.0, 1.0]))
        c = self.write("c.json", results("c", [700, 200, 80, 20], [1.0] * 4, split="test"))
        for other in (b, c):
            out = os.path.join(self.dir, "out")
            p = self.analyze(a, other, "-o", out)
            self.assertEqual(p.returncode, 1)
            self.assertIn("not comparable", p.stderr)
            self.assertFalse(os.path.exists(out))

    def test_refuses_bad_json(self):
        good = results("a", [7, 2, 1, 0], [1.0, 1.0, 1.0, 0.0])
        broken = json.loads(json.dumps(good))
        broken["buckets"][1]["nll"] = 5.0  # buckets no longer sum to the total
        reordered = json.loads(json.dumps(good))
        reordered["buckets"].reverse()
        cases = {"not-json.json": ("{", "not JSON"),
                 "sum.json": (broken, "do not sum"),
                 "order.json": (reordered, "must be \"frequent\""),
                 "missing.json": ({"model": {"name": "x"}}, "missing")}
        for name, (obj, msg) in cases.items():
            p = self.analyze(self.write(name, obj), "-o", os.path.join(self.dir, "o"))
            self.assertEqual(p.returncode, 1, name)
            self.assertIn(name, p.stderr)
            self.assertIn(msg, p.stderr)
        p = self.analyze(self.write("g.json", good), "--label", "x", "--label", "y", "-o", "o")
        self.assertEqual(p.returncode, 2)


def text(seed, n_words):
    """Zipf-ish pseudo-English: enough structure for a tokenizer, no corpus needed."""
    import random
    rnd = random.Random(seed)
    vocab = ["the", "of", "and", "a", "to", "in", "was", "he", "she", "it", "that", "his",
             "her", "ship", "sea", "house", "letter", "morning", "said", "Captain", "garden"]
    words = [vocab[min(int(rnd.paretovariate(1.2)) - 1, len(vocab) - 1)] for _ in range(n_words)]
    return (" ".join(words) + ".\n").encode()


class AnalyzeSweepTest(unittest.TestCase):
    """`analyze sweep` runs `harness run` per grid point (same numbers as a
    run by hand), writes the CSV and the chart, and resumes."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="pg19-sweep-")
        corpus = os.path.join(cls.dir, "pg19")
        for split, ids in (("train", range(1, 4)), ("validation", range(10, 12))):
            os.makedirs(os.path.join(corpus, split))
            for i in ids:
                with open(os.path.join(corpus, split, f"{i}.txt"), "wb") as f:
                    f.write(text(i, 300))
        run = lambda *a: subprocess.run(a, check=True, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE)
        model = os.path.join(cls.dir, "m.model")
        run(os.path.join(BIN, "tokenize"), "train", "--corpus", corpus, "--vocab-size", "300",
            "-o", model)
        freqs = os.path.join(cls.dir, "f.tsv")
        run(os.path.join(BIN, "tokenize"), "words", "--corpus", corpus, "-o", freqs)
        cls.shards = os.path.join(cls.dir, "shards")
        run(os.path.join(BIN, "shards"), "build", "--model", model, "--corpus", corpus,
            "--split", "validation", "-o", cls.shards, "--word-freqs", freqs)
        base = {"vocab_size": 300, "d_model": 16, "n_layer": 2, "n_head": 2, "d_head": 8,
                "d_ff": 32, "window": 8, "memory": 8}
        cls.ct = os.path.join(cls.dir, "ct.json")
        with open(cls.ct, "w") as f:
            json.dump(dict(base, name="ct-sweep", family="compressive-transformer",
                           compressed_memory=4, compression_rate=2, compression="mean_pool"), f)
        cls.txl = os.path.join(cls.dir, "txl.json")
        with open(cls.txl, "w") as f:
            json.dump(dict(base, name="txl-sweep", family="transformer-xl"), f)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def sweep(self, out, model, mems, cmems):
        return subprocess.run(
            [os.path.join(BIN, "harness"), "analyze", "sweep", "--memory", mems,
             "--compressed-memory", cmems, "-o", out, "--", "--model", model, "--split",
             "validation", "--shards", self.shards, "--random-init", "3"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def test_grid_resume_and_values(self):
        out = os.path.join(self.dir, "sweep")
        p = self.sweep(out, self.ct, "0,8", "0,4")
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(os.path.join(out, "sweep.csv")) as f:
            rows = list(csv.DictReader(f))
        self.assertEqual([(int(r["memory"]), int(r["compressed_memory"])) for r in rows],
                         [(0, 0), (0, 4), (8, 0), (8, 4)])
        self.assertEqual([int(r["memory_range_tokens"]) for r in rows], [0, 8, 8, 16])
        ppl = {(int(r["memory"]), int(r["compressed_memory"])): float(r["word_ppl"])
               for r in rows}
        self.assertEqual(len(set(ppl.values())), 4)  # the memory sizes matter
        # a point equals the same run made by hand
        one = os.path.join(self.dir, "one.json")
        subprocess.run([os.path.join(BIN, "harness"), "run", "--model", self.ct, "--split",
                        "validation", "--shards", self.shards, "--random-init", "3",
                        "--memory", "8", "--compressed-memory", "4", "--out", one],
                       check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        with open(one) as f:
            self.assertAlmostEqual(json.load(f)["word_ppl_exact"]["value"], ppl[(8, 4)],
                                   places=9)
        svg = ET.parse(os.path.join(out, "sweep.svg")).getroot()
        lines = list(svg.iter("{http://www.w3.org/2000/svg}polyline"))
        self.assertEqual(len(lines), 2)  # one per memory size
        # resume: every point is kept, none re-run
        p = self.sweep(out, self.ct, "0,8", "0,4")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr.count("kept"), 4)

    def test_txl_has_no_compressed_memory(self):
        out = os.path.join(self.dir, "sweep-txl")
        p = self.sweep(out, self.txl, "8", "0,4")
        self.assertEqual(p.returncode, 1)
        self.assertIn("no compression function", p.stderr)
        self.assertFalse(os.path.exists(os.path.join(out, "sweep.csv")))

    def test_bad_grid(self):
        for mems in ("", "8,,", "-1", "x"):
            p = self.sweep(os.path.join(self.dir, "bad"), self.ct, mems, "0")
            self.assertEqual(p.returncode, 2, mems)


class AnalyzeMemoryTest(unittest.TestCase):
    """`analyze memory` (attention by memory position, reading distance)
    against an independent float64 NumPy computation (ref_model.py) on the
    same books, weights and windows."""

    def test_against_numpy(self):
        import sys
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import numpy as np
        import ref_model
        d = tempfile.mkdtemp(prefix="pg19-mem-")
        self.addCleanup(shutil.rmtree, d, True)
        corpus = os.path.join(d, "pg19")
        books = {}
        for split, ids in (("train", range(1, 3)), ("validation", (21, 22))):
            os.makedirs(os.path.join(corpus, split))
            for i in ids:
                books[(split, i)] = os.path.join(corpus, split, f"{i}.txt")
                with open(books[(split, i)], "wb") as f:
                    f.write(text(i, 120 if split == "validation" else 300))
        run = lambda *a: subprocess.run(a, check=True, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE)
        model = os.path.join(d, "m.model")
        run(os.path.join(BIN, "tokenize"), "train", "--corpus", corpus, "--vocab-size", "300",
            "-o", model)
        bos = json.load(open(model + ".json"))["bos_id"]
        freqs = os.path.join(d, "f.tsv")
        run(os.path.join(BIN, "tokenize"), "words", "--corpus", corpus, "-o", freqs)
        run(os.path.join(BIN, "shards"), "build", "--model", model, "--corpus", corpus,
            "--split", "validation", "-o", os.path.join(d, "shards"), "--word-freqs", freqs)
        cfg = {"name": "ct-mem", "family": "compressive-transformer", "vocab_size": 300,
               "d_model": 16, "n_layer": 2, "n_head": 2, "d_head": 8, "d_ff": 32, "window": 8,
               "memory": 8, "compressed_memory": 4, "compression_rate": 2,
               "compression": "conv"}
        cpath, wpath = os.path.join(d, "ct.json"), os.path.join(d, "ct.safetensors")
        with open(cpath, "w") as f:
            json.dump(cfg, f)
        W = ref_model.random_weights(cfg, 5)
        ref_model.write_safetensors(wpath, W)
        out = os.path.join(d, "out")
        max_tokens = 100
        run(os.path.join(BIN, "harness"), "analyze", "memory", "--model", cpath, "--weights",
            wpath, "--split", "validation", "--shards", os.path.join(d, "shards"),
            "--max-tokens-per-book", str(max_tokens), "-o", out)
        # the reference: same books in id order, same windows, float64
        L, ncm, nm, win = 2, 4, 8, 8
        P = ncm + nm + win
        sums, pairs, dist = np.zeros((L, P)), np.zeros(L), []
        ref = ref_model.Reference(cfg, W)

        def hook(l, hh, pr, cm, m):
            q, k = pr.shape
            pos = [ncm - cm + j if j < cm else ncm + nm - m + (j - cm) if j < cm + m
                   else ncm + nm + (j - cm - m) for j in range(k)]
            for j in range(k):
                sums[l, pos[j]] += pr[:, j].sum()
            pairs[l] += q
            if l == 0 and hh == 0:
                dist.append(m + 2 * cm)
        ref.attn_hook = hook
        for i in (21, 22):
            p = subprocess.run([os.path.join(BIN, "tokenize"), "encode", "--model", model,
                                books[("validation", i)]], check=True, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
            toks = [int(t) for t in p.stdout.split()][:max_tokens]
            inputs = [bos] + toks[:-1]
            ref.reset()
            for t0 in range(0, len(toks), win):
                ref.window(np.array(inputs[t0:t0 + win]))
        want = sums / pairs[:, None]
        with open(os.path.join(out, "attention.csv")) as f:
            rows = list(csv.DictReader(f))
        self.assertEqual(len(rows), (L + 1) * P)
        for r in rows:
            pos, v = int(r["position"]), float(r["mean_attention"])
            w = want[:, pos].mean() if r["layer"] == "mean" else want[int(r["layer"]), pos]
            self.assertAlmostEqual(v, w, delta=1e-5, msg=f"layer {r['layer']} position {pos}")
        self.assertAlmostEqual(sum(float(r["mean_attention"]) for r in rows
                                   if r["layer"] == "mean"), 1.0, places=5)
        with open(os.path.join(out, "distance.csv")) as f:
            got = [int(r["reading_distance"]) for r in csv.DictReader(f)]
        self.assertEqual(got, dist)
        self.assertEqual(max(got), nm + 2 * ncm)  # the memories fill up
        for name in ("attention.svg", "distance.svg"):
            ET.parse(os.path.join(out, name))
        # A DCT made of these weights and a judge whose output bias always says
        # compress reads as far back as the CT; one that always discards keeps
        # only the memory (its compressed memory stays empty), and the blocks
        # it evicts are counted as judged and not kept.
        dcfg = dict(cfg, name="dct-mem", family="dct", judge_hidden=3)
        dpath = os.path.join(d, "dct.json")
        with open(dpath, "w") as f:
            json.dump(dcfg, f)
        for bias, want_dist in (([-30.0, 30.0], dist), ([30.0, -30.0], None)):
            DW = dict(W)
            h = 3
            for r in ("", "_reverse"):
                DW[f"judge.lstm.weight_ih_l0{r}"] = np.zeros((4 * h, 16), np.float32)
                DW[f"judge.lstm.weight_hh_l0{r}"] = np.zeros((4 * h, h), np.float32)
                DW[f"judge.lstm.bias_ih_l0{r}"] = np.zeros(4 * h, np.float32)
                DW[f"judge.lstm.bias_hh_l0{r}"] = np.zeros(4 * h, np.float32)
            DW["judge.fc.weight"] = np.zeros((2, 2 * h), np.float32)
            DW["judge.fc.bias"] = np.array(bias, np.float32)
            dw = os.path.join(d, "dct.safetensors")
            ref_model.write_safetensors(dw, DW)
            dout = os.path.join(d, "dout")
            run(os.path.join(BIN, "harness"), "analyze", "memory", "--model", dpath, "--weights",
                dw, "--split", "validation", "--shards", os.path.join(d, "shards"),
                "--max-tokens-per-book", str(max_tokens), "-o", dout)
            with open(os.path.join(dout, "distance.csv")) as f:
                rows = list(csv.DictReader(f))
            got = [int(r["reading_distance"]) for r in rows]
            evicted = sum(int(r["blocks_evicted"]) for r in rows)
            kept = sum(int(r["blocks_kept"]) for r in rows)
            self.assertGreater(evicted, 0)
            if want_dist is not None:
                self.assertEqual(got, want_dist)
                self.assertEqual(kept, evicted)
            else:
                self.assertEqual(kept, 0)
                self.assertEqual(max(got), nm)
            with open(os.path.join(dout, "distance.svg")) as f:
                self.assertIn("the judge kept", f.read())


if __name__ == "__main__":
    unittest.main()
