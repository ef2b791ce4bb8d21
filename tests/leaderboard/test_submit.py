"""`leaderboard submit / check / render` through the command line: one test per
rejection class (each must fail with a precise message and store nothing),
acceptance (exactly one entry file, written whole), duplicates, reported
entries, the committed seed entries, and the rendered page and Markdown."""
import html
import html.parser
import json
import math
import os
import re
import subprocess
import tempfile
import unittest

import lbtest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(os.environ.get("PG19_BIN", os.path.join(TOP, "bin")), "leaderboard")
ENTRIES = os.path.join(TOP, "leaderboard", "entries")


def run(*args):
    p = subprocess.run([BIN, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=TOP)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


class _BoardParser(html.parser.HTMLParser):
    """The ranked tables of index.html: {section title: [row cells]}; each row
    is a dict column index -> cell text, plus "model-name" (the link text of
    the model cell) and "source-first" (the source cell's text up to <br>)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tables, self.title, self.in_h2 = {}, None, False
        self.row, self.cell, self.col, self.in_name, self.br = None, None, -1, False, False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "h2":
            self.in_h2, self.title = True, ""
        elif tag == "tr" and "data-entry" in a:
            self.row, self.col = {}, -1
        elif tag == "td" and self.row is not None:
            self.col += 1
            self.cell, self.br = "", False
            self.row["source-first"] = self.row.get("source-first", None)
        elif tag == "a" and a.get("class") == "model-name":
            self.in_name = True
            self.row["model-name"] = ""
        elif tag == "br" and self.cell is not None:
            self.br = True

    def handle_endtag(self, tag):
        if tag == "h2":
            self.in_h2 = False
        elif tag == "a":
            self.in_name = False
        elif tag == "td" and self.row is not None:
            self.row[self.col] = self.cell.strip()
            if self.col == 14 and self.row["source-first"] is None:
                self.row["source-first"] = self.cell.strip()
            self.cell = None
        elif tag == "tr" and self.row is not None:
            self.tables.setdefault(self.title, []).append(self.row)
            self.row = None

    def handle_data(self, data):
        if self.in_h2:
            self.title += data
        if self.in_name:
            self.row["model-name"] += data
        if self.cell is not None:
            if self.col == 14 and self.br and self.row["source-first"] is None:
                self.row["source-first"] = self.cell.strip()
            self.cell += data


def parse_html_boards(path):
    p = _BoardParser()
    with open(path, encoding="utf-8") as f:
        p.feed(f.read())
    return p.tables


def parse_md_boards(path):
    """{section title: [[cell text, ...], ...]} of leaderboard.md, unescaped."""
    tables, title = {}, None
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("#### "):
                title = line[5:]
            elif re.match(r"\| \d+ \|", line):
                cells = re.split(r"(?<!\\)\|", line)[1:-1]
                cells = [html.unescape(re.sub(r"\\(.)", r"\1", c.strip())) for c in cells]
                tables.setdefault(title, []).append(cells)
    return tables


class Base(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name
        self.entries = os.path.join(self.dir, "entries")

    def tearDown(self):
        self.tmp.cleanup()

    def write(self, obj_or_bytes, name="sub.json"):
        path = os.path.join(self.dir, name)
        data = obj_or_bytes if isinstance(obj_or_bytes, bytes) else \
            json.dumps(obj_or_bytes).encode()
        with open(path, "wb") as f:
            f.write(data)
        return path

    def stored(self):
        return sorted(os.listdir(self.entries)) if os.path.isdir(self.entries) else []

    def reject(self, sub, pattern, *extra):
        """sub must be rejected with a message matching pattern, storing nothing."""
        rc, out, err = run("submit", self.write(sub), "--entries", self.entries, *extra)
        self.assertEqual(rc, 1, f"accepted, should fail with /{pattern}/: {out}{err}")
        self.assertRegex(err, pattern)
        self.assertEqual(self.stored(), [], "a rejected submission left files behind")
        return err

    def accept(self, sub, *extra):
        rc, out, err = run("submit", self.write(sub), "--entries", self.entries, *extra)
        self.assertEqual(rc, 0, f"rejected: {err}")
        m = re.match(r"accepted: (\S+)", out)
        self.assertTrue(m, out)
        return m.group(1)


def edit(fn):
    s = lbtest.sample()
    fn(s)
    return s


def rescale_ppl(s):
    """Recompute every derived number after totals/bucket edits."""
    t = s["totals"]
    t["nll"] = math.fsum(b["nll"] for b in s["buckets"])
    t["words"] = sum(b["words"] for b in s["buckets"])
    t["tokens"] = sum(b["tokens"] for b in s["buckets"])
    t["token_ppl"] = math.exp(t["nll"] / t["tokens"])
    t["bits_per_byte"] = t["nll"] / (t["bytes"] * math.log(2))
    s["word_ppl"]["value"] = math.exp(t["nll"] / s["word_ppl"]["words"])
    s["word_ppl_exact"]["words"] = t["words"]
    s["word_ppl_exact"]["value"] = math.exp(t["nll"] / t["words"])
    for b in s["buckets"]:
        b["word_ppl"] = math.exp(b["nll"] / b["words"]) if b["words"] else None


class Accept(Base):
    def test_accepted_writes_exactly_one_entry(self):
        path = self.accept(lbtest.sample(), "--source", "unit test run")
        self.assertEqual(len(self.stored()), 1, self.stored())
        self.assertTrue(self.stored()[0].startswith("test-tiny-ct-"))
        with open(path) as f:
            e = json.load(f)
        self.assertEqual(e["provenance"], {"kind": "measured", "source": "unit test run",
                                           "status": "unchecked", "consistency": None,
                                           "reproduction": None, "notes": None})
        # the stored numbers are exactly the submitted ones
        sub = lbtest.sample()
        del e["provenance"]
        self.assertEqual(e, json.loads(json.dumps(sub)))
        rc, out, err = run("check", "--entries", self.entries)
        self.assertEqual(rc, 0, err)

    def test_duplicate_rejected_and_first_kept(self):
        first = self.accept(lbtest.sample())
        with open(first, "rb") as f:
            before = f.read()
        rc, out, err = run("submit", self.write(lbtest.sample()), "--entries", self.entries)
        self.assertEqual(rc, 1)
        self.assertIn("already on the leaderboard", err)
        self.assertEqual(len(self.stored()), 1)
        with open(first, "rb") as f:
            self.assertEqual(f.read(), before)

    def test_dry_run_stores_nothing(self):
        rc, out, err = run("submit", self.write(lbtest.sample()), "--entries", self.entries,
                           "--dry-run")
        self.assertEqual(rc, 0, err)
        self.assertIn("valid:", out)
        self.assertEqual(self.stored(), [])

    def test_subset_uses_exact_normaliser(self):
        r = lbtest.results([(3, 4, 10.0), (0, 0, 0.0), (2, 2, 9.0), (1, 3, 12.5)],
                           split="validation", official=False, books=2)
        self.accept(r)

    def test_chunked_and_random_init(self):
        def f(s):
            s["eval"]["book_handling"] = "chunked"
            s["eval"]["chunk_tokens"] = 4096
            s["model"]["weights_sha256"] = None
            s["model"]["random_init_seed"] = 1
        self.accept(edit(f))

    def test_reported_with_nulls(self):
        with open(os.path.join(ENTRIES, sorted(os.listdir(ENTRIES))[0])) as f:
            e = json.load(f)
        del e["provenance"]
        e["word_ppl"]["value"] = 30.1
        self.accept(e, "--reported", "Someone et al. (2030), Table 9")
        # the same nulls in a measured submission are rejected
        self.reject_measured_nulls(e)

    def reject_measured_nulls(self, e):
        rc, out, err = run("submit", self.write(e, "m.json"), "--entries",
                           os.path.join(self.dir, "other"))
        self.assertEqual(rc, 1)
        self.assertIn("must not be null", err)

    def test_committed_seed_entries_are_valid(self):
        rc, out, err = run("check", "--entries", ENTRIES)
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"ok: [5-9]\d* entries|ok: \d{2,} entries")
        names = os.listdir(ENTRIES)
        seeds = {}
        for n in names:
            with open(os.path.join(ENTRIES, n)) as f:
                e = json.load(f)
            if e["provenance"]["kind"] == "reported":
                self.assertTrue(e["provenance"]["source"])
                self.assertIsNone(e["totals"])  # unknown, not invented
                seeds[(e["model"]["name"], e["eval"]["split"])] = e["word_ppl"]["value"]
                self.assertEqual(e["word_ppl"]["normaliser"], "pg19-table2")
        self.assertEqual(seeds[("Transformer-XL", "validation")], 45.5)
        self.assertEqual(seeds[("Transformer-XL", "test")], 36.3)
        self.assertEqual(seeds[("Compressive Transformer", "validation")], 43.4)
        self.assertEqual(seeds[("Compressive Transformer", "test")], 33.6)
        self.assertEqual(seeds[("Routing Transformer", "test")], 33.2)


class RejectShape(Base):
    def test_schema(self):
        self.reject(edit(lambda s: s.update(schema="pg19-results/2")), r"schema: .*not")

    def test_missing_required_fields(self):
        for section, key in [("tokenizer", "name"), ("tokenizer", "vocab_size"),
                             ("context", "window"), ("context", "memory"),
                             ("context", "compressed_memory"), ("model", "params"),
                             ("eval", "split"), ("eval", "book_handling"),
                             ("eval", "official"), ("totals", "nll")]:
            with self.subTest(field=f"{section}.{key}"):
                s = lbtest.sample()
                del s[section][key]
                self.reject(s, rf"{section}\.{key}: missing")
        for section in ["tokenizer", "context", "eval", "buckets", "word_ppl"]:
            with self.subTest(field=section):
                s = lbtest.sample()
                del s[section]
                self.reject(s, rf"{section}: missing")

    def test_unknown_keys(self):
        self.reject(edit(lambda s: s.update(leaderboard_rank=1)),
                    r'unknown key "leaderboard_rank"')
        self.reject(edit(lambda s: s["context"].update(window_tokens=1)),
                    r'context: unknown key "window_tokens"')
        self.reject(edit(lambda s: s["buckets"][2].update(note="x")),
                    r'buckets\[2\]: unknown key "note"')

    def test_provenance_not_submittable(self):
        self.reject(edit(lambda s: s.update(provenance={"kind": "measured", "verified": True})),
                    r"provenance: is set by the leaderboard")

    def test_types(self):
        self.reject(edit(lambda s: s["model"].update(params="277M")),
                    r"model\.params: must be an integer")
        self.reject(edit(lambda s: s["eval"].update(books=100.0)),
                    r"eval\.books: must be an integer \(got a real")
        self.reject(edit(lambda s: s["eval"].update(official="yes")),
                    r"eval\.official: must be true or false")
        self.reject(edit(lambda s: s.update(model=["ct"])), r"model: must be an object")
        self.reject(edit(lambda s: s["totals"].update(nll="1.0")), r"totals\.nll: must be a number")
        self.reject(edit(lambda s: s.update(buckets={})), r"buckets: must be an array")

    def test_ranges(self):
        self.reject(edit(lambda s: s["model"].update(params=0)), r"model\.params: 0 is out of range")
        self.reject(edit(lambda s: s["context"].update(window=0)), r"context\.window: 0 is out")
        self.reject(edit(lambda s: s["context"].update(memory=-1)), r"context\.memory: -1 is out")
        self.reject(edit(lambda s: s["tokenizer"].update(vocab_size=0)),
                    r"tokenizer\.vocab_size: 0 is out")
        self.reject(edit(lambda s: s["totals"].update(tokens=-5)), r"totals\.tokens: -5 is out")
        self.reject(edit(lambda s: s["hardware"].update(threads=0)), r"hardware\.threads")
        self.reject(edit(lambda s: s["context"].update(attention_span=100)),
                    r"context\.attention_span: 100 is shorter than the window")

    def test_enums_and_formats(self):
        self.reject(edit(lambda s: s["eval"].update(split="dev")), r"eval\.split: must be one of")
        self.reject(edit(lambda s: s["model"].update(family="lstm")), r"model\.family: must be one of")
        self.reject(edit(lambda s: s["eval"].update(book_handling="pages")),
                    r"eval\.book_handling: must be one of")
        self.reject(edit(lambda s: s.update(date="23/11/2026")), r"date: must be a UTC time")
        self.reject(edit(lambda s: s.update(date="2026-02-30T00:00:00Z")), r"date: must be")
        self.reject(edit(lambda s: s["model"].update(config_sha256="ABC")),
                    r"model\.config_sha256: must be 64 lower-case hex")
        self.reject(edit(lambda s: s["eval"]["shards"][0].update(file="../../etc/passwd")),
                    r"eval\.shards\[0\]: file .* is not named test-NNNNN\.pgs")
        self.reject(edit(lambda s: s["eval"]["shards"].append(dict(s["eval"]["shards"][0]))),
                    r"listed twice")
        self.reject(edit(lambda s: s.update(nll_dump={"file": "../x.nll", "sha256": "a" * 64})),
                    r"nll_dump\.file: must be a plain file name")

    def test_book_handling_rules(self):
        self.reject(edit(lambda s: s["eval"].update(book_handling="chunked")),
                    r"eval\.chunk_tokens: must be set")
        self.reject(edit(lambda s: s["eval"].update(chunk_tokens=512)),
                    r"eval\.chunk_tokens: must be null")

    def test_prefix_runs(self):
        # `harness run --max-tokens-per-book P`: only a prefix of each book is
        # scored, its bytes are unknown; never the official benchmark
        def prefix(s):
            s["eval"].update(official=False, books=3, book_handling="prefix",
                             chunk_tokens=4_000_000)
            s["totals"].update(bytes=0, bits_per_byte=None)
            s["word_ppl"] = dict(s["word_ppl_exact"])
        os.remove(self.accept(edit(prefix)))
        self.reject(edit(lambda s: (prefix(s), s["eval"].update(official=True, books=100))),
                    r"eval\.official: a run that scores only a prefix")
        self.reject(edit(lambda s: (prefix(s), s["eval"].update(chunk_tokens=None))),
                    r'eval\.chunk_tokens: must be set when book_handling is "prefix"')
        self.reject(edit(lambda s: (prefix(s), s["totals"].update(bytes=5))),
                    r"totals\.bytes: 5 is out of range \[0, 0\]")
        self.reject(edit(lambda s: (prefix(s), s["totals"].update(bits_per_byte=1.0))),
                    r"totals\.bits_per_byte: must be null for a prefix run")
        # bytes 0 / null bits per byte are only for prefix runs
        self.reject(edit(lambda s: s["totals"].update(bytes=0)), r"totals\.bytes: 0 is out of range")
        self.reject(edit(lambda s: s["totals"].update(bits_per_byte=None)),
                    r"totals\.bits_per_byte: must not be null")

    def test_weights_or_seed(self):
        self.reject(edit(lambda s: s["model"].update(random_init_seed=3)), r"exactly one of")
        self.reject(edit(lambda s: s["model"].update(weights_sha256=None)), r"exactly one of")

    def test_text_fields(self):
        self.reject(edit(lambda s: s["model"].update(name="x" * 101)),
                    r"model\.name: 101 characters, over the limit of 100")
        self.reject(edit(lambda s: s["model"].update(name="")), r"model\.name: must not be empty")
        self.reject(edit(lambda s: s["model"].update(name="a\u0007b")), r"control character")
        self.reject(edit(lambda s: s["model"].update(name="evil\u202eltr")), r"bidirectional")
        # 100 non-ASCII characters are fine (the limit counts characters, not bytes)
        self.accept(edit(lambda s: s["model"].update(name="\u00e9" * 100)))


class RejectNumbers(Base):
    def test_word_ppl_not_exp_nll_over_words(self):
        err = self.reject(edit(lambda s: s["word_ppl"].update(value=s["word_ppl"]["value"] * 1.01)),
                          r"word_ppl\.value: .* but exp\(totals\.nll / words\)")
        self.assertIn("word_ppl.value", err)

    def test_exact_ppl_mismatch(self):
        self.reject(edit(lambda s: s["word_ppl_exact"].update(value=s["word_ppl_exact"]["value"] + 0.5)),
                    r"word_ppl_exact\.value")

    def test_within_rounding_is_accepted(self):
        # a 17-digit writer and a reader that sums in another order differ in
        # the last bits: that is not a mismatch
        self.accept(edit(lambda s: s["word_ppl"].update(value=s["word_ppl"]["value"] * (1 + 1e-9))))

    def test_token_ppl_and_bits_per_byte(self):
        self.reject(edit(lambda s: s["totals"].update(token_ppl=s["totals"]["token_ppl"] * 1.001)),
                    r"totals\.token_ppl")
        self.reject(edit(lambda s: s["totals"].update(bits_per_byte=0.9)), r"totals\.bits_per_byte")

    def test_bucket_sums(self):
        def more_words(s):
            s["buckets"][0]["words"] += 1
            s["buckets"][0]["tokens"] += 1
            s["buckets"][0]["word_ppl"] = math.exp(s["buckets"][0]["nll"] / s["buckets"][0]["words"])
        self.reject(edit(more_words), r"buckets: bucket words sum to")

        def more_nll(s):
            s["buckets"][1]["nll"] *= 1.01
            s["buckets"][1]["word_ppl"] = math.exp(s["buckets"][1]["nll"] / s["buckets"][1]["words"])
        self.reject(edit(more_nll), r"buckets: bucket NLLs sum to")
        self.reject(edit(lambda s: s["buckets"][2].update(word_ppl=s["buckets"][2]["word_ppl"] + 1)),
                    r"buckets\[2\]: word_ppl .* but exp\(nll / words\)")

    def test_bucket_definitions(self):
        self.reject(edit(lambda s: s["buckets"][0].update(min_freq=5000)), r"buckets\[0\]: the frequent bucket")
        self.reject(edit(lambda s: s["buckets"].reverse()), r"buckets\[0\]\.name: must be one of \"frequent\"")
        self.reject(edit(lambda s: s["buckets"].pop()), r"must hold the 4 buckets")

    def test_consistent_edit_still_accepted(self):
        # the checks are identities, not fixed numbers: a consistent file with
        # other numbers passes
        def f(s):
            s["buckets"][3]["nll"] *= 1.2
            rescale_ppl(s)
        self.accept(edit(f))

    def test_words_exceed_tokens(self):
        def f(s):
            s["buckets"][0]["words"] = s["buckets"][0]["tokens"] + 1
            rescale_ppl(s)
        self.reject(edit(f), r"tokens for .* words")


class RejectImplausible(Base):
    """Self-consistent nonsense: each case passes every identity check and is
    refused by one plausibility rule, which the message names."""

    def test_date_in_the_future(self):
        err = self.reject(edit(lambda s: s.update(date="2999-01-01T00:00:00Z")),
                          r'date: 2999-01-01T00:00:00Z is in the future')
        self.assertIn('plausibility rule "date not in the future"', err)
        # before PG-19 existed
        self.reject(edit(lambda s: s.update(date="2001-05-05T00:00:00Z")),
                    r'date: .*before PG-19 was published .*rule "date not before PG-19"')
        # a clock a few hours ahead is not the future
        import datetime
        soon = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=3))
        self.accept(edit(lambda s: s.update(date=soon.strftime("%Y-%m-%dT%H:%M:%SZ"))))

    @staticmethod
    def huge(s, nll):
        """2^50 tokens (and bytes, words) with the given total NLL, consistent."""
        t = s["totals"]
        n = 1 << 50
        s["buckets"] = [dict(b, words=0, tokens=0, nll=0.0, word_ppl=None) for b in s["buckets"]]
        s["buckets"][0].update(words=n // 2, tokens=n, nll=nll,
                               word_ppl=math.exp(nll / (n // 2)))
        t.update(bytes=n)
        s["eval"].update(official=False, book_set="custom", books=100)
        s["word_ppl"] = dict(s["word_ppl_exact"], words=n // 2)
        rescale_ppl(s)

    def test_two_to_the_fifty_tokens_with_nll_zero(self):
        err = self.reject(edit(lambda s: self.huge(s, 0.0)), r"totals\.")
        self.assertIn("plausibility rule", err)
        # each half of it on its own: the size ...
        self.reject(edit(lambda s: self.huge(s, float(1 << 50))),
                    r'totals\.bytes: 1125899906842624 bytes in 100 books: no book is 1 GiB long '
                    r'\(refused by the plausibility rule "bytes <= books x 1 GiB"\)')

        # ... and the NLL of 0 at a normal size
        def zero(s):
            for b in s["buckets"]:
                b["nll"] = 0.0
            rescale_ppl(s)
        self.reject(edit(zero), r'totals\.nll: 0 nats over .* bytes is 0 bits per byte: no model '
                                r'predicts text that well \(refused by the plausibility rule '
                                r'"bits per byte >= 0\.05"\)')

    def test_tokens_more_than_bytes(self):
        def f(s):
            s["totals"]["bytes"] = s["totals"]["tokens"] - 1
            rescale_ppl(s)
        self.reject(edit(f), r'totals\.tokens: \d+ tokens but only \d+ bytes .*rule "tokens <= bytes"')

    def test_words_more_than_tokens_names_its_rule(self):
        def f(s):
            s["buckets"][0]["words"] = s["buckets"][0]["tokens"]
            s["buckets"][1]["words"] = s["buckets"][1]["tokens"] + 1
            rescale_ppl(s)
        self.reject(edit(f), r"tokens for .* words")
        r = lbtest.results([(5, 5, 10.0), (0, 0, 0.0), (0, 0, 0.0), (0, 0, 0.0)], official=False,
                           books=1, bytes_=4)
        self.reject(r, r'totals\.words: 5 words but only 4 bytes .*rule "words <= bytes"')

    def test_prefix_tokens_bounded_by_prefix_length(self):
        def prefix(s, chunk):
            s["eval"].update(official=False, books=3, book_handling="prefix", chunk_tokens=chunk)
            s["totals"].update(bytes=0, bits_per_byte=None)
            s["word_ppl"] = dict(s["word_ppl_exact"])
        self.reject(edit(lambda s: prefix(s, 1000)),
                    r'totals\.tokens: 8400000 tokens, but 3 books scored to at most 1000 tokens '
                    r'each .*rule "prefix tokens <= books x chunk_tokens"')

    def test_zero_width_character_in_name(self):
        err = self.reject(edit(lambda s: s["model"].update(name="tiny\u200b-ct")),
                          r'model\.name: contains U\+200B ZERO WIDTH SPACE')
        self.assertIn('plausibility rule "names of visible characters"', err)
        for bad in ["tiny\u2060ct", "tiny\u00adct", "tiny\ufeffct", "tiny\u3000ct",
                    "tiny\ue000ct", " tiny-ct", "tiny-ct ", "\u0301tiny", "tiny\u3164ct"]:
            with self.subTest(name=ascii(bad)):
                self.reject(edit(lambda s: s["model"].update(name=bad)),
                            r'model\.name: contains .*"names of visible characters"')
        self.reject(edit(lambda s: s["tokenizer"].update(name="pg19\u200d32k")),
                    r'tokenizer\.name: contains U\+200D')

    def test_name_not_nfc(self):
        # e + combining acute: looks like the precomposed \u00e9, is other bytes
        self.reject(edit(lambda s: s["model"].update(name="caf\u0065\u0301-lm")),
                    r'model\.name: is not in Unicode normalisation form C .*"names in Unicode NFC"')
        self.accept(edit(lambda s: s["model"].update(name="caf\u00e9-lm")))

    def test_slug_collision_with_another_spelling(self):
        # the zero-width name of the issue is refused above; a visible
        # look-alike that slugs like an existing entry is refused here
        first = self.accept(lbtest.sample(name="tiny-ct"))
        for other in ["Tiny CT", "tiny\u2010ct", "tiny_ct"]:
            with self.subTest(name=ascii(other)):
                rc, out, err = run("submit", self.write(lbtest.sample(name=other, split="validation")),
                                   "--entries", self.entries)
                self.assertEqual(rc, 1, out)
                self.assertIn('has the slug "tiny-ct" of "tiny-ct"', err)
                self.assertIn('plausibility rule "one spelling per name slug"', err)
                self.assertEqual(self.stored(), [os.path.basename(first)])
        # the same spelling on another split is the same model
        self.accept(lbtest.sample(name="tiny-ct", split="validation"))


class RejectNormaliser(Base):
    def test_official_test_must_use_pg19_table2(self):
        def f(s):
            s["word_ppl"] = dict(s["word_ppl_exact"])
        self.reject(edit(f), r'word_ppl\.normaliser: the official test split must use "pg19-table2"')

    def test_wrong_pg19_word_count(self):
        def f(s):
            s["word_ppl"]["words"] = lbtest.PG19_WORDS["validation"]
            s["word_ppl"]["value"] = math.exp(s["totals"]["nll"] / s["word_ppl"]["words"])
        self.reject(edit(f), r"word_ppl\.words: the pg19-table2 normaliser of the test split is 6966499")

    def test_validation_count(self):
        r = lbtest.sample(split="validation")
        self.assertEqual(r["word_ppl"]["words"], 3007061)
        self.accept(r)

    def test_subset_cannot_claim_pg19_table2(self):
        r = lbtest.sample(official=False, books=10)
        r["word_ppl"] = {"normaliser": "pg19-table2", "words": 6966499,
                         "value": math.exp(r["totals"]["nll"] / 6966499)}
        self.reject(r, r'"pg19-table2" only applies to the whole official')

    def test_official_book_count(self):
        self.reject(lbtest.sample(books=99), r"eval\.books: the official PG-19 test split has 100 books")


class RejectOfficialClaims(Base):
    """"official" is PG-19's own books of the split, byte for byte: the book
    set and its digest (shards/pg19_official.h) must say so."""

    def test_count_alone_is_not_official(self):
        # 100 test books that are not PG-19's (harness: book_set custom)
        self.reject(edit(lambda s: s["eval"].update(book_set="custom")),
                    r'eval\.official: true, but book_set is "custom"')
        self.reject(edit(lambda s: s["eval"].update(book_set="pg19-subset")),
                    r'eval\.official: true, but book_set is "pg19-subset"')

    def test_digest_must_be_pg19s(self):
        self.reject(edit(lambda s: s["eval"].update(books_sha256="ab" * 32)),
                    r"eval\.books_sha256: is not the digest of PG-19's 100 test books \("
                    + lbtest.pg19_digest("test"))
        r = lbtest.sample(split="validation")
        r["eval"]["books_sha256"] = lbtest.pg19_digest("test")
        self.reject(r, r"eval\.books_sha256: is not the digest of PG-19's 50 validation books")
        self.assertNotEqual(lbtest.pg19_digest("test"), lbtest.pg19_digest("validation"))

    def test_official_books_every_token_is_official(self):
        self.reject(edit(lambda s: s["eval"].update(official=False)),
                    r'eval\.official: false, but book_set is "official" and every token')

    def test_book_set_and_digest_required(self):
        self.reject(edit(lambda s: s["eval"].pop("books_sha256")),
                    r"eval\.books_sha256: missing")
        self.reject(edit(lambda s: s["eval"].update(book_set=None)),
                    r"eval\.book_set: must not be null")
        self.reject(edit(lambda s: s["eval"].update(book_set="all")),
                    r'eval\.book_set: must be one of "custom", "pg19-subset", "official"')

    def test_subsets_and_custom_books_are_accepted_as_such(self):
        for book_set in ("pg19-subset", "custom"):
            r = lbtest.sample(official=False, books=9, name=f"ok-{book_set}")
            r["eval"]["book_set"] = book_set
            self.accept(r)


class RejectEncoding(Base):
    def test_invalid_json(self):
        self.reject(b'{"schema": "pg19-results/1",', r"invalid JSON")
        self.reject(b"[1, 2]", r"top level must be a JSON object")
        good = json.dumps(lbtest.sample()).encode()
        self.reject(good + b" {}", r"invalid JSON")   # trailing data
        self.reject(good.replace(b'"nll": ', b'"nll": NaN, "x": ', 1), r"invalid JSON")
        self.reject(good.replace(b'"seconds": ', b'"seconds": 1e999, "y": ', 1), r"invalid JSON")

    def test_invalid_utf8(self):
        good = json.dumps(lbtest.sample()).encode()
        self.reject(good.replace(b'"tiny-ct"', b'"tiny-\xff\xfe"'), r"invalid JSON.*UTF-8|UTF-8")
        # an overlong encoding of '/' and a lone surrogate escape
        self.reject(good.replace(b'"tiny-ct"', b'"tiny\xc0\xafct"'), r"UTF-8")
        self.reject(good.replace(b'"tiny-ct"', b'"tiny\\ud800ct"'), r"invalid JSON")

    def test_nul(self):
        good = json.dumps(lbtest.sample()).encode()
        self.reject(good.replace(b'"tiny-ct"', b'"tiny\\u0000ct"'), r"invalid JSON")
        self.reject(good.replace(b'"tiny-ct"', b'"tiny\x00ct"'), r"NUL byte")

    def test_duplicate_keys(self):
        good = json.dumps(lbtest.sample()).encode()
        dup = good.replace(b'"schema": "pg19-results/1"',
                           b'"schema": "pg19-results/1", "schema": "pg19-results/1"', 1)
        self.reject(dup, r"duplicate object key")

    def test_oversized(self):
        good = json.dumps(lbtest.sample()).encode()
        self.reject(good + b" " * (1 << 20), r"larger than the 1048576-byte limit")

    def test_deep_nesting(self):
        self.reject(b"[" * 100000 + b"]" * 100000, r"invalid JSON")

    def test_missing_file(self):
        rc, out, err = run("submit", os.path.join(self.dir, "nope.json"), "--entries", self.entries)
        self.assertEqual(rc, 1)
        self.assertIn("nope.json: open", err)
        self.assertEqual(self.stored(), [])

    def test_usage(self):
        rc, out, err = run("submit")
        self.assertEqual(rc, 2)
        rc, out, err = run("frobnicate")
        self.assertEqual(rc, 2)


class Check(Base):
    def test_check_rejects_a_bad_entry_and_render_refuses(self):
        os.makedirs(self.entries)
        path = self.accept(lbtest.sample())
        with open(path) as f:
            e = json.load(f)
        e["provenance"]["status"] = "consistent"  # without a consistency record
        with open(path, "w") as f:
            json.dump(e, f)
        rc, out, err = run("check", "--entries", self.entries)
        self.assertEqual(rc, 1)
        self.assertIn("provenance.consistency", err)
        out_dir = os.path.join(self.dir, "site")
        rc, out, err = run("render", "-o", out_dir, "--entries", self.entries)
        self.assertEqual(rc, 1)
        self.assertFalse(os.path.exists(os.path.join(out_dir, "index.html")))

    def test_hand_edited_number_is_caught(self):
        # an entry whose numbers changed after submission no longer matches its
        # content-derived file name, even when the edit is self-consistent
        os.makedirs(self.entries)
        name = sorted(os.listdir(ENTRIES))[0]
        with open(os.path.join(ENTRIES, name)) as f:
            e = json.load(f)
        e["word_ppl"]["value"] = 12.0
        with open(os.path.join(self.entries, name), "w") as f:
            json.dump(e, f)
        rc, out, err = run("check", "--entries", self.entries)
        self.assertEqual(rc, 1)
        self.assertIn("does not match the entry's content", err)

    def test_reported_cannot_be_verified(self):
        src = os.path.join(ENTRIES, sorted(os.listdir(ENTRIES))[0])
        with open(src) as f:
            e = json.load(f)
        e["provenance"]["status"] = "consistent"
        e["provenance"]["consistency"] = {"date": "2026-11-23T00:00:00Z",
                                          "nll_sha256": "a" * 64, "tool": "x"}
        rc, out, err = run("check", self.write(e, "r.json"))
        self.assertEqual(rc, 1)
        self.assertIn("a reported result cannot be checked", err)

    def test_old_verified_flag_is_refused(self):
        # entries from before the consistent/verified split must be migrated
        src = os.path.join(ENTRIES, sorted(os.listdir(ENTRIES))[0])
        with open(src) as f:
            e = json.load(f)
        p = e["provenance"]
        del p["status"], p["consistency"], p["reproduction"]
        p["verified"], p["verification"] = False, None
        rc, out, err = run("check", self.write(e, "old.json"))
        self.assertEqual(rc, 1)
        self.assertIn("provenance.verified: replaced by provenance.status", err)


class Render(Base):
    def test_figures_are_copied_and_shown(self):
        figs = os.path.join(self.dir, "figs")
        os.makedirs(figs)
        good = '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>\n'
        with open(os.path.join(figs, "b-distance.svg"), "w") as f:
            f.write(good)
        with open(os.path.join(figs, "a-rare.svg"), "w") as f:
            f.write('<?xml version="1.0"?>\n' + good)
        with open(os.path.join(figs, "notes.txt"), "w") as f:  # not an .svg: ignored
            f.write("x")
        with open(os.path.join(figs, "we ird.svg"), "w") as f:  # odd name: ignored
            f.write(good)
        out_dir = os.path.join(self.dir, "site")
        rc, out, err = run("render", "-o", out_dir, "--figures", figs)
        self.assertEqual(rc, 0, err)
        self.assertEqual(sorted(os.listdir(os.path.join(out_dir, "figures"))),
                         ["a-rare.svg", "b-distance.svg"])
        with open(os.path.join(out_dir, "index.html"), encoding="utf-8") as f:
            page = f.read()
        self.assertIn("img-src 'self'", page)
        self.assertLess(page.index('src="figures/a-rare.svg"'),
                        page.index('src="figures/b-distance.svg"'))
        with open(os.path.join(out_dir, "leaderboard.md"), encoding="utf-8") as f:
            self.assertIn("(figures/b-distance.svg)", f.read())
        # a picture with a script, or one that is not SVG, fails the render
        for bad in ('<svg><script>alert(1)</script></svg>', '<html>hi</html>'):
            with open(os.path.join(figs, "c-bad.svg"), "w") as f:
                f.write(bad)
            rc, out, err = run("render", "-o", out_dir, "--figures", figs)
            self.assertNotEqual(rc, 0)
            self.assertIn("c-bad.svg", err)
        rc, out, err = run("render", "-o", out_dir, "--figures", os.path.join(figs, "none"))
        self.assertNotEqual(rc, 0)

    EVIL = '<script>alert("pwned")</script><img src=x onerror=alert(1)> | *bold* & \'q\''

    def test_render_escapes_and_lists_every_entry(self):
        os.makedirs(self.entries)
        for n in os.listdir(ENTRIES):
            with open(os.path.join(ENTRIES, n), "rb") as f, \
                    open(os.path.join(self.entries, n), "wb") as g:
                g.write(f.read())
        self.accept(lbtest.sample(name=self.EVIL), "--source", "<b>src</b>")
        self.accept(lbtest.sample(split="validation"))
        out_dir = os.path.join(self.dir, "site")
        rc, out, err = run("render", "-o", out_dir, "--entries", self.entries)
        self.assertEqual(rc, 0, err)
        with open(os.path.join(out_dir, "index.html"), encoding="utf-8") as f:
            html = f.read()
        with open(os.path.join(out_dir, "leaderboard.md"), encoding="utf-8") as f:
            md = f.read()
        ids = [n[:-5] for n in os.listdir(self.entries)]
        self.assertEqual(len(ids), len(os.listdir(ENTRIES)) + 2)
        for i in ids:
            self.assertIn(f'data-entry="{i}"', html)
            self.assertIn(f'id="entry-{i}"', html)
        # exactly one script element (ours), the submitted one is text
        self.assertEqual(html.count("<script>"), 1)
        self.assertNotIn("<img", html)
        self.assertNotIn("<b>src", html)
        self.assertIn("&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;", html)
        self.assertIn("Content-Security-Policy", html)
        # one chart per table with bucket data (the two samples' official
        # tables, and the subset table when a committed entry has buckets);
        # reported-only tables say so
        committed = [json.load(open(os.path.join(ENTRIES, n))) for n in os.listdir(ENTRIES)]
        subset = any(e.get("buckets") and not e["eval"].get("official") for e in committed)
        self.assertEqual(html.count("<svg"), 2 + subset)
        # Markdown: one row per entry; the evil name cannot break the table
        rows = [l for l in md.splitlines() if re.match(r"\| \d+ \|", l)]
        self.assertEqual(len(rows), len(ids))
        for r in rows:
            self.assertEqual(len(re.findall(r"(?<!\\)\|", r)), 12, r)
        self.assertNotIn("<script", md)
        self.assertIn("&lt;script&gt;", md)
        # ranking: within the test split, lower word perplexity first
        test_rows = md.split("#### Test split")[1].split("####")[0]
        ppls = [float(re.split(r" \| ", l)[3].split()[0]) for l in test_rows.splitlines()
                if re.match(r"\| \d+ \|", l)]
        self.assertEqual(ppls, sorted(ppls))

    def test_subsets_are_not_ranked_with_official_results(self):
        self.accept(lbtest.sample())
        self.accept(lbtest.sample(official=False, books=7, name="subset-run"))
        out_dir = os.path.join(self.dir, "site")
        rc, out, err = run("render", "-o", out_dir, "--entries", self.entries)
        self.assertEqual(rc, 0, err)
        md = open(os.path.join(out_dir, "leaderboard.md"), encoding="utf-8").read()
        official, other = md.split("#### Test split (official)")[1].split("#### Other evaluations")
        self.assertIn("tiny-ct", official)
        self.assertNotIn("subset-run", official)
        self.assertIn("subset-run", other)
        self.assertIn("(exact)", other)

    def test_markdown_cells_equal_html_cells(self):
        # leaderboard.md and index.html are two views of the same numbers: every
        # Markdown cell must show what the HTML shows in the same column
        os.makedirs(self.entries)
        for n in os.listdir(ENTRIES):
            with open(os.path.join(ENTRIES, n), "rb") as f, \
                    open(os.path.join(self.entries, n), "wb") as g:
                g.write(f.read())
        self.accept(lbtest.sample(), "--source", "unit test run")
        self.accept(lbtest.sample(split="validation", name="val-model"))
        r = lbtest.results([(3, 4, 10.0), (0, 0, 0.0), (2, 2, 9.0), (1, 3, 12.5)],
                           split="validation", official=False, books=2, name="subset-model")
        r["model"]["params"] = 2_200_000
        self.accept(r)

        def prefix(s):
            s["eval"].update(official=False, books=3, book_handling="prefix", chunk_tokens=4000000)
            s["totals"].update(bytes=0, bits_per_byte=None)
            s["word_ppl"] = dict(s["word_ppl_exact"])
            s["model"]["name"] = "prefix-model"
            s["model"]["params"] = 1234
        self.accept(edit(prefix))
        out_dir = os.path.join(self.dir, "site")
        rc, out, err = run("render", "-o", out_dir, "--entries", self.entries)
        self.assertEqual(rc, 0, err)
        html_tables = parse_html_boards(os.path.join(out_dir, "index.html"))
        md_tables = parse_md_boards(os.path.join(out_dir, "leaderboard.md"))
        self.assertEqual(list(md_tables), list(html_tables))
        # Markdown column -> HTML column (the HTML adds the four bucket columns)
        md_to_html = [0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14]
        n_rows = 0
        for title, md_rows in md_tables.items():
            html_rows = html_tables[title]
            self.assertEqual(len(md_rows), len(html_rows), title)
            for md, html in zip(md_rows, html_rows):
                n_rows += 1
                self.assertEqual(len(md), len(md_to_html), md)
                for col, hcol in enumerate(md_to_html):
                    want = html[hcol]
                    if hcol == 1:      # the model name (the family is beside it in HTML)
                        want = html["model-name"]
                    elif hcol == 14:   # the source, or else the date
                        want = html["source-first"]
                    self.assertEqual(md[col], want,
                                     f"{title}, row {md[0]}, Markdown column {col}: {md}")
        self.assertEqual(n_rows, len(os.listdir(self.entries)))

    def test_render_empty(self):
        os.makedirs(self.entries)
        out_dir = os.path.join(self.dir, "site")
        rc, out, err = run("render", "-o", out_dir, "--entries", self.entries)
        self.assertEqual(rc, 0, err)
        self.assertIn("0 entries", open(os.path.join(out_dir, "index.html")).read())


if __name__ == "__main__":
    unittest.main()


class VerifyCli(Base):
    def test_usage_and_refusals(self):
        seed = os.path.join(ENTRIES, sorted(os.listdir(ENTRIES))[0])
        self.assertEqual(run("verify", seed)[0], 2)
        self.assertEqual(run("verify", seed, "--nll")[0], 2)
        nll = self.write(lbtest.nll_dump([(1, [0.5, 1.0])]), "x.nll")
        rc, out, err = run("verify", seed, "--nll", nll, "--shards", self.dir)
        self.assertEqual(rc, 1)
        self.assertIn("a reported entry has no measurements to recompute", err)
        path = self.accept(lbtest.sample())
        rc, out, err = run("verify", path, "--nll", nll, "--shards", self.dir)
        self.assertEqual(rc, 1)
        self.assertIn("no test-NNNNN.pgs shard files", err)
        good = lbtest.nll_dump([(1, [0.5, 1.0])])
        bad = self.write(good[:-1] + bytes([good[-1] ^ 0xFF]), "bad.nll")
        rc, out, err = run("verify", path, "--nll", bad, "--shards", self.dir)
        self.assertEqual(rc, 1)
        self.assertIn("CRC32C mismatch", err)
        with open(path) as f:
            self.assertEqual(json.load(f)["provenance"]["status"], "unchecked")
