"""Integration tests of the Gutenberg subcommands: clean, catalog, split and
gutenberg (against a loopback mirror). Real-data cases skip without
$PG19_TEST_CORPUS."""
import csv
import hashlib
import io
import os
import re
import shutil
import tarfile
import tempfile
import unicodedata
import unittest
import zipfile

from gbtools import BODY, Mirror, corpus, make_raw, put, run

# Measured with `fetch clean --pg19` on raw-pg-2003-2004 (see DATASHEET.md):
# 86 of the 120 PG-19 books reproduce their PG-19 SHA-256 byte for byte.
PG19_EXACT_EXPECTED = 86

BODY_LATIN1 = "CHAPTER I\n\n\u00abCaf\u00e9,\u00bb said the na\u00efve man.\nSecond paragraph.\n"

# An independent statement of PG-19's cut (the corpus README's rule), used as
# the oracle for the fixtures.
PG19_START = re.compile(rb"\*\*\* ?START OF TH(E|IS) PROJECT GUTENBERG EBOOK[^\n]*?"
                        rb"(\*\*\*|\n[^\n]*\*\*\*)[^\n]*\n", re.S)
PG19_END = re.compile(rb"END OF TH(IS|E) PROJECT GUTENBERG EBOOK")


# Producer credits and Project Gutenberg notices that must not open a cleaned
# book (the forms found at the top of the real files' bodies).
CREDIT_AT_TOP = re.compile(
    r"\s*(Produced by|E-text prepared by|E-text revised by|Etext prepared by|"
    r"This etext was (prepared|produced) by|This eBook was (prepared|produced) by|"
    r"(The )?Project Gutenberg|\[Portions of this header|NOTE: This work has been previously|"
    r"\*+This file should be named|Executive Director's Notes|Many thanks to .* transcribed|"
    r"\[NOTE: There is a short list of bookmarks)", re.I)

# Of the ten raw-pg19-old-etext files (no START/END pair), `fetch clean --pg19`
# reproduces PG-19's file byte for byte for three: 1286, 2237, 3961. The other
# seven are other editions (1 to 253 bytes off; 4212 is Latin-1 and is off by
# 4 bytes after re-encoding).
PG19_OLD_ETEXT_EXACT = ["1286", "2237", "3961"]


def pg19_oracle(raw, encoding):
    m = PG19_START.search(raw)
    e = PG19_END.search(raw, m.end())
    cut = raw[m.end():e.start()]
    if encoding != "utf-8":
        cut = cut.decode("latin-1").encode("utf-8")
    return cut


def sha(b):
    return hashlib.sha256(b).hexdigest()


def readb(path):
    with open(path, "rb") as f:
        return f.read()


def readt(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def tsv(path):
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def clean_bytes(raw, *flags):
    with tempfile.TemporaryDirectory() as d:
        src, dst, rep = (os.path.join(d, n) for n in ("raw.txt", "out.txt", "rep.tsv"))
        with open(src, "wb") as f:
            f.write(raw)
        p = run(["clean", *flags, src, "-o", dst, "--report", rep])
        out = readb(dst) if p.returncode == 0 else None
        report = tsv(rep) if p.returncode == 0 else []
        return p, out, report


class CleanFixtures(unittest.TestCase):
    ERAS = ["1994", "2003", "2004-nosp", "2021", "2024", "none"]

    def test_default_every_era_and_encoding(self):
        for era in self.ERAS:
            for enc in ["utf-8", "cp1252", "latin-1"]:
                if era == "2024" and enc != "utf-8":
                    continue
                body = BODY_LATIN1 if enc == "latin-1" else BODY
                for eol in ["\r\n", "\n"]:
                    case = f"era={era} enc={enc} eol={eol!r}"
                    raw = make_raw(era, body, enc, eol)
                    p, out, rep = clean_bytes(raw)
                    self.assertEqual(p.returncode, 0, (case, p.stderr))
                    self.assertEqual(out.decode("utf-8"), body, case)
                    self.assertEqual(rep[0]["flags"], "no-markers" if era == "none" else "-", case)

    def test_default_is_nfc_and_bom_free(self):
        body = "Cafe\u0301 and A\u030a.\n"  # decomposed: NFC composes both
        raw = b"\xef\xbb\xbf" + make_raw("2021", body, "utf-8", "\n")
        p, out, rep = clean_bytes(raw)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(out.decode("utf-8"), unicodedata.normalize("NFC", body))
        self.assertEqual(rep[0]["boms"], "1")

    def test_pg19_cut_matches_oracle(self):
        for era in ["2003", "2004-nosp", "2021", "2024"]:
            for enc in ["utf-8", "latin-1"]:
                if era == "2024" and enc != "utf-8":
                    continue
                case = f"era={era} enc={enc}"
                raw = make_raw(era, BODY_LATIN1 if enc == "latin-1" else BODY, enc, "\r\n")
                p, out, _ = clean_bytes(raw, "--pg19")
                self.assertEqual(p.returncode, 0, (case, p.stderr))
                self.assertEqual(out, pg19_oracle(raw, enc), case)
                self.assertTrue(out.endswith(b"\r\n\r\n*** ") or out.endswith(b"***"), case)

    def test_pg19_keeps_unmarked_text_whole(self):
        # PG-19 includes a raw file with no START/END pair unchanged, licence
        # text and all (Latin-1 re-encoded to UTF-8).
        for era, enc in [("1994", "utf-8"), ("none", "utf-8"), ("1994", "latin-1")]:
            raw = make_raw(era, BODY_LATIN1 if enc == "latin-1" else BODY, enc, "\r\n")
            p, out, rep = clean_bytes(raw, "--pg19")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(out, raw if enc == "utf-8" else raw.decode("latin-1").encode(), era)
            self.assertEqual(rep[0]["flags"], "no-markers")
            self.assertIn(b"licence text included", p.stderr)

    def test_invalid_utf8_replaced_and_reported(self):
        raw = make_raw("2021", "ok \u00e9 \ufffdX\n", "utf-8", "\n").replace(
            "\ufffd".encode(), b"\xff\xfe")
        p, out, rep = clean_bytes(raw)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(out.decode("utf-8"), "ok \u00e9 \ufffd\ufffdX\n")
        self.assertEqual(rep[0]["replacements"], "2")
        self.assertIn(b"replaced by U+FFFD", p.stderr)

    def test_garbage_never_yields_invalid_utf8(self):
        rnd = hashlib.sha256(b"seed").digest() * 4096
        text_like = bytes(b if b >= 0x20 else b | 0x40 for b in rnd)  # no control bytes
        for mode in [[], ["--pg19"]]:
            raw = b"*** START OF THE PROJECT GUTENBERG EBOOK X ***\n" + text_like + \
                  b"\n*** END OF THE PROJECT GUTENBERG EBOOK X ***\n"
            p, out, _ = clean_bytes(raw, *mode)
            self.assertEqual(p.returncode, 0, p.stderr)
            out.decode("utf-8")  # strict: raises on invalid UTF-8

    def test_not_text_is_refused(self):
        # An ELF binary used to be "cleaned" into NUL bytes with exit 0.
        with open("/bin/true" if os.path.exists("/bin/true") else "/usr/bin/true", "rb") as f:
            elf = f.read()
        rnd = hashlib.sha256(b"seed").digest() * 4096  # random bytes: NULs and controls
        ctl = b"".join(b"word\x01\x02 " for _ in range(200))  # 25% control characters
        cases = [(elf, b"not text: the file is an ELF executable"),
                 (rnd, b"not text: NUL character"),
                 (b"*** START OF THE PROJECT GUTENBERG EBOOK X ***\n" + ctl +
                  b"\n*** END OF THE PROJECT GUTENBERG EBOOK X ***\n", b"not text: 400 of 1493 bytes are control"),
                 (b"\x1f\x8b\x08\x00" + b"gzipped" * 10, b"not text: the file is a gzip file")]
        for raw, msg in cases:
            for mode in [[], ["--pg19"]]:
                p, out, _ = clean_bytes(raw, *mode)
                self.assertEqual(p.returncode, 1, (msg, mode))
                self.assertIn(b"raw.txt: " + msg, p.stderr)
                self.assertIsNone(out)

    def test_licence_only_is_a_failed_book(self):
        # A file that is only licence text used to become an empty book, ok.
        lic = make_raw("2024", "", "utf-8", "\n")
        credits_only = make_raw("2003", "", "utf-8", "\r\n")  # PG-19 keeps its "End of" line
        for raw, mode in [(lic, []), (lic, ["--pg19"]), (credits_only, []), (b"", []),
                          (b"", ["--pg19"])]:
            p, out, _ = clean_bytes(raw, *mode)
            self.assertEqual(p.returncode, 1, (raw[:40], mode))
            self.assertIn(b"raw.txt: empty book", p.stderr)
            self.assertIsNone(out)

    def test_dir_mode_fails_bad_books_only(self):
        with tempfile.TemporaryDirectory() as d:
            src, dst = os.path.join(d, "raw"), os.path.join(d, "out")
            os.makedirs(src)
            os.makedirs(dst)
            put(src, "1.txt", make_raw("2021"))
            put(src, "2.txt", make_raw("2021", ""))            # licence only
            put(src, "3.txt", b"\x7fELF\x02\x01\x01" + bytes(64))  # a binary
            put(dst, "2.txt", b"stale book from an earlier run\n")
            rep = os.path.join(d, "rep.tsv")
            p = run(["clean", "--dir", src, "-o", dst, "--report", rep])
            self.assertEqual(p.returncode, 1)
            self.assertIn(b"2.txt: empty book", p.stderr)
            self.assertIn(b"3.txt: not text", p.stderr)
            self.assertEqual(sorted(os.listdir(dst)), ["1.txt"])
            self.assertEqual([r["file"] for r in tsv(rep)], ["1.txt"])

    def test_default_removes_etext_credits(self):
        # The 1990s credit forms, each in its own paragraph after the small print.
        credits = ("This etext was prepared by A. Volunteer, Somewhere.\n"
                   "E-text revised by B. Reviser.\n\n"
                   "NOTE: This work has been previously published in [Etext #2673]\n\n\n"
                   "Project Gutenberg Tales of Wonder\nwondr10.txt\n\n"
                   "[Portions of this header are copyright (C) 2001 by Michael Hart]\n\n"
                   "Etext prepared by Someone Else.\n\n")
        for eol in ["\r\n", "\n"]:
            raw = make_raw("1994", credits + BODY, "utf-8", eol)
            p, out, rep = clean_bytes(raw)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(out.decode(), BODY)
            self.assertEqual(rep[0]["credits"], "6")
        # A story whose first line mentions an etext is the book.
        story = "This etext was found in a drawer, and the etext prepared for him lay open.\n"
        for era in ["1994", "2021", "none"]:
            p, out, rep = clean_bytes(make_raw(era, story + "\n" + BODY, "utf-8", "\n"))
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(out.decode(), story + "\n" + BODY, era)

    def test_usage_errors(self):
        self.assertEqual(run(["clean"]).returncode, 2)
        self.assertEqual(run(["clean", "/nonexistent/x.txt", "-o", "/tmp/y"]).returncode, 1)


class RealCorpus(unittest.TestCase):
    def setUp(self):
        self.c = corpus()
        if not self.c:
            self.skipTest("PG19_TEST_CORPUS not set")

    def test_pg19_exact_match_count(self):
        raw_dir = os.path.join(self.c, "raw-pg-2003-2004")
        rows = tsv(os.path.join(raw_dir, "MANIFEST.tsv"))
        with tempfile.TemporaryDirectory() as d:
            p = run(["clean", "--pg19", "--dir", raw_dir, "-o", d])
            self.assertEqual(p.returncode, 0, p.stderr)
            exact, simple_ok_lost = 0, []
            for r in rows:
                if r["pg19_split"] == "-":
                    continue
                got = sha(readb(os.path.join(d, r["file"])))
                if got == r["pg19_sha256"]:
                    exact += 1
                elif r["pg19_exact_by_simple_cut"] == "yes":
                    simple_ok_lost.append(r["file"])
        self.assertEqual(simple_ok_lost, [])
        self.assertEqual(exact, PG19_EXACT_EXPECTED)

    def _clean_dir(self, src, d):
        p = run(["clean", "--dir", src, "-o", d, "--report", os.path.join(d, "report.tsv")])
        self.assertEqual(p.returncode, 0, p.stderr)
        return tsv(os.path.join(d, "report.tsv"))

    def assert_clean_text(self, name, text):
        s = text.decode("utf-8")
        self.assertTrue(unicodedata.is_normalized("NFC", s), name)
        self.assertNotIn("\r", s, name)
        self.assertNotIn("\ufeff", s, name)
        for bad in ["START OF THIS PROJECT GUTENBERG", "START OF THE PROJECT GUTENBERG",
                    "END OF THIS PROJECT GUTENBERG", "END OF THE PROJECT GUTENBERG",
                    "End of the Project Gutenberg EBook", "End of Project Gutenberg",
                    "SMALL PRINT!"]:
            self.assertNotIn(bad, s, name)
        self.assertFalse(CREDIT_AT_TOP.match(s), (name, s[:300]))
        self.assertTrue(s.endswith("\n") and not s.endswith("\n\n"), name)

    def test_default_clean_all_raw_files(self):
        for sub in ["raw-pg-2003-2004", "raw-pg-modern/vyjayanv-hub", "raw-pg-modern/haruka0221"]:
            with tempfile.TemporaryDirectory() as d:
                rep = self._clean_dir(os.path.join(self.c, sub), d)
                self.assertGreater(len(rep), 0)
                for r in rep:
                    self.assertEqual(r["flags"], "-", r)
                    self.assert_clean_text(r["file"], readb(os.path.join(d, r["file"])))

    def test_pg19_keeps_old_etexts_whole(self):
        src = os.path.join(self.c, "raw-pg19-old-etext")
        rows = tsv(os.path.join(src, "MANIFEST.tsv"))
        self.assertEqual(len(rows), 10)
        with tempfile.TemporaryDirectory() as d:
            p = run(["clean", "--pg19", "--dir", src, "-o", d])
            self.assertEqual(p.returncode, 0, p.stderr)
            exact = []
            for r in rows:
                out = readb(os.path.join(d, r["id"] + ".txt"))
                raw = readb(os.path.join(src, r["id"] + ".txt"))
                try:
                    raw.decode("utf-8")
                    want = raw
                except UnicodeDecodeError:
                    want = raw.decode("latin-1").encode("utf-8")
                self.assertEqual(out, want, r["id"])  # the whole file, re-encoded if Latin-1
                if sha(out) == r["pg19_sha256"]:
                    self.assertEqual(len(out), int(r["pg19_bytes"]))
                    exact.append(r["id"])
            self.assertEqual(exact, PG19_OLD_ETEXT_EXACT)
            self.assertEqual(PG19_OLD_ETEXT_EXACT,
                             [r["id"] for r in rows if r["whole_raw_file_is_pg19"] == "1"])

    def test_default_clean_old_etexts(self):
        # 1990s-2003 etexts: credits, PG title lines and notices after the small
        # print, "End of this Etext" footers, and one (4478) with the small
        # print at the end of the file.
        src = os.path.join(self.c, "raw-pg19-old-etext")
        first = {"3054": "VOLCANIC ISLANDS", "3272": "THE COMPLETE WORKS OF ARTEMUS WARD PART 2, WAR.",
                 "3961": "A ROMANCE OF YOUTH", "4212": "CULTURE AND ANARCHY: AN ESSAY",
                 "4333": "STUDIES FROM COURT AND CLOISTER", "4478": "BOOK 2.",
                 "2237": "Scanner's Notes: What this is and isn't.", "1286": "TALES FROM SHAKESPEARE",
                 "1224": "Sidney Lanier"}
        with tempfile.TemporaryDirectory() as d:
            rep = {r["file"]: r for r in self._clean_dir(src, d)}
            self.assertEqual(len(rep), 10)
            for name, r in rep.items():
                text = readb(os.path.join(d, name))
                self.assert_clean_text(name, text)
                s = text.decode()
                self.assertFalse("End of this Etext" in s, name)
                self.assertFalse("This file should be named" in s, name)
                self.assertGreater(len(s), 0.7 * os.path.getsize(os.path.join(src, name)), name)
                fid = name[:-4]
                if fid in first:
                    self.assertTrue(s.startswith(first[fid]), (name, s[:200]))
            self.assertEqual(rep["4478.txt"]["start"], "etext-header")
            self.assertTrue(readb(os.path.join(d, "4478.txt")).rstrip().endswith(b"[The End]"))

    def test_ebook11_eight_versions(self):
        hist = os.path.join(self.c, "raw-pg-ebook11-history-and-zips", "history")
        names = sorted(os.listdir(hist))
        self.assertEqual(len(names), 8)
        firsts = set()
        with tempfile.TemporaryDirectory() as d:
            for n in names:
                p = run(["clean", os.path.join(hist, n), "-o", os.path.join(d, "o.txt")])
                self.assertEqual(p.returncode, 0, p.stderr)
                text = readb(os.path.join(d, "o.txt"))
                self.assert_clean_text(n, text)
                s = text.decode()
                self.assertIn("Alice was beginning to get very tired", s)
                self.assertTrue(s.rstrip().endswith("THE END"), n)
                firsts.add(s.split("\n", 1)[0])
            self.assertEqual(firsts, {"[Illustration]"})
            alice30 = os.path.join(self.c, "raw-pg-ebook11-history-and-zips", "old", "alice30.txt")
            p, out, rep = clean_bytes(readb(alice30))
            self.assertEqual(rep[0]["start"], "small-print")
            self.assertTrue(out.decode().lstrip().startswith("ALICE'S ADVENTURES IN WONDERLAND"))

    def test_stripped_files_are_kept_and_flagged(self):
        with tempfile.TemporaryDirectory() as d:
            rep = self._clean_dir(os.path.join(self.c, "stripped-no-markers"), d)
            self.assertEqual(len(rep), 3)
            for r in rep:
                self.assertEqual(r["flags"], "no-markers")
                src = readb(os.path.join(self.c, "stripped-no-markers", r["file"]))
                out = readb(os.path.join(d, r["file"]))
                words = lambda b: b.decode("utf-8", "replace").split()
                self.assertEqual(len(words(out)), len(words(src.lstrip(b"\xef\xbb\xbf"))))

    def test_catalog_rdf_records(self):
        rdf = os.path.join(self.c, "catalog", "rdf")
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "cat.tsv")
            p = run(["catalog", "--rdf-dir", rdf, "-o", out])
            self.assertEqual(p.returncode, 0, p.stderr)
            rows = {r["id"]: r for r in tsv(out)}
            self.assertEqual(len(rows), len([n for n in os.listdir(rdf) if n.endswith(".rdf")]))
            r = rows["10006"]
            self.assertEqual(r["title"], "La Fiammetta")
            self.assertEqual(r["authors"], "Boccaccio, Giovanni (1313-1375)")
            self.assertEqual(r["languages"], "en")
            self.assertEqual(r["issued"], "2003-11-01")
            self.assertEqual(r["type"], "Text")
            self.assertIn("https://www.gutenberg.org/files/10006/10006-0.txt us-ascii", r["files"])
            # The same records streamed from a tar.bz2 feed give the same catalog.
            feed = os.path.join(d, "rdf-files.tar.bz2")
            with tarfile.open(feed, "w:bz2") as t:
                for n in sorted(os.listdir(rdf))[:40]:
                    t.add(os.path.join(rdf, n), arcname=f"cache/epub/{n[2:-4]}/{n}")
            out2 = os.path.join(d, "cat2.tsv")
            p = run(["catalog", feed, "-o", out2])
            self.assertEqual(p.returncode, 0, p.stderr)
            rows2 = tsv(out2)
            self.assertEqual(len(rows2), 40)
            for r2 in rows2:
                self.assertEqual(r2, rows[r2["id"]])

    def test_catalog_csv_cut_row_is_skipped(self):
        src = os.path.join(self.c, "catalog", "pg_catalog.TRUNCATED-sample.csv")
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "cat.tsv")
            p = run(["catalog", "--csv", src, "-o", out])
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn(b"cut off", p.stderr)
            with open(src, newline="") as f:
                n_rows = sum(1 for _ in csv.reader(f)) - 1
            rows = tsv(out)
            self.assertEqual(len(rows), n_rows - 1)
            self.assertEqual(rows[0]["id"], "1")

    def test_split_official(self):
        pg = os.path.join(self.c, "pg19")
        with tempfile.TemporaryDirectory() as d:
            p = run(["split", "--official", os.path.join(pg, "metadata.csv"),
                     os.path.join(pg, "pg19_files_derived.tsv"), "-o", d])
            self.assertEqual(p.returncode, 0, p.stderr)
            for s, n in [("train", 28602), ("validation", 50), ("test", 100)]:
                got = readt(os.path.join(d, s + ".txt")).split()
                want = readt(os.path.join(pg, f"{s}_ids_derived.txt")).split()
                self.assertEqual(len(got), n)
                self.assertEqual(sorted(map(int, got)), sorted(map(int, want)))
            # The same split from the release's object listing.
            listing = os.path.join(d, "listing.txt")
            with open(listing, "w") as f:
                f.write("gs://deepmind-gutenberg/metadata.csv\n")
                for r in tsv(os.path.join(pg, "pg19_files_derived.tsv")):
                    f.write(f"gs://deepmind-gutenberg/{r['split']}/{r['book_id']}.txt\n")
            p = run(["split", "--official", os.path.join(pg, "metadata.csv"), listing,
                     "-o", os.path.join(d, "b")])
            self.assertEqual(p.returncode, 0, p.stderr)
            for s in ["train", "validation", "test"]:
                self.assertEqual(readt(os.path.join(d, s + ".txt")),
                                 readt(os.path.join(d, "b", s + ".txt")))

    def test_real_mirror_zips(self):
        z = os.path.join(self.c, "raw-pg-ebook11-history-and-zips")
        with tempfile.TemporaryDirectory() as d:
            root = os.path.join(d, "mirror")
            layout = {11: ("11-0.zip", "files/11/11-0.zip"),
                      1342: ("1342-0.zip", "files/1342/1342-0.zip"),
                      12: ("old/alice30.zip", "files/12/12.zip"),
                      13: ("11.zip", "files/13/13.zip")}
            want = {}
            for book, (src, rel) in layout.items():
                data = readb(os.path.join(z, src))
                put(root, rel, data)
                with zipfile.ZipFile(io.BytesIO(data)) as zf:
                    member = [n for n in zf.namelist() if n.lower().endswith(".txt")][0]
                    want[book] = zf.read(member)
            with open(os.path.join(d, "ids"), "w") as f:
                f.write("\n".join(str(i) for i in layout) + "\n")
            with Mirror(root) as m:
                p = run(["gutenberg", "--ids", os.path.join(d, "ids"), "--mirror", m.url,
                         "--out", os.path.join(d, "out"), "--delay", "0"])
            self.assertEqual(p.returncode, 0, p.stderr)
            for book in layout:
                raw = readb(os.path.join(d, "out", "raw", f"{book}.txt"))
                self.assertEqual(raw, want[book])
                clean = readb(os.path.join(d, "out", "clean", f"{book}.txt"))
                self.assertNotIn(b"PROJECT GUTENBERG EBOOK", clean)


def rdf_record(book, title, lang, author, birth, death, issued="2004-01-01"):
    return f"""<?xml version="1.0" encoding="utf-8"?>
<rdf:RDF xml:base="http://www.gutenberg.org/"
  xmlns:dcterms="http://purl.org/dc/terms/"
  xmlns:pgterms="http://www.gutenberg.org/2009/pgterms/"
  xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
  xmlns:dcam="http://purl.org/dc/dcam/">
  <pgterms:ebook rdf:about="ebooks/{book}">
    <dcterms:issued>{issued}</dcterms:issued>
    <dcterms:rights>Public domain in the USA.</dcterms:rights>
    <dcterms:creator><pgterms:agent rdf:about="2009/agents/1">
      <pgterms:name>{author}</pgterms:name>
      <pgterms:birthdate>{birth}</pgterms:birthdate><pgterms:deathdate>{death}</pgterms:deathdate>
    </pgterms:agent></dcterms:creator>
    <dcterms:title>{title}</dcterms:title>
    <dcterms:language><rdf:Description><rdf:value>{lang}</rdf:value></rdf:Description></dcterms:language>
    <dcterms:type><rdf:Description><rdf:value>Text</rdf:value></rdf:Description></dcterms:type>
    <dcterms:hasFormat><pgterms:file rdf:about="https://www.gutenberg.org/files/{book}/{book}-0.txt">
      <dcterms:format><rdf:Description><rdf:value>text/plain; charset=utf-8</rdf:value></rdf:Description></dcterms:format>
    </pgterms:file></dcterms:hasFormat>
  </pgterms:ebook>
</rdf:RDF>
"""


class MirrorDownloads(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.d = self.tmp.name
        self.root = os.path.join(self.d, "mirror")
        os.makedirs(self.root)

    def tearDown(self):
        self.tmp.cleanup()

    def gutenberg(self, mirror, *args):
        return run(["gutenberg", "--mirror", mirror.url, "--out", os.path.join(self.d, "out"),
                    "--delay", "0", "--jobs", "2", *args])

    def manifest(self):
        path = os.path.join(self.d, "out", "manifest.tsv")
        return {r["id"]: r for r in tsv(path)}

    def ids(self, *ids):
        path = os.path.join(self.d, "ids.txt")
        with open(path, "w") as f:
            f.write("# books\n" + "\n".join(map(str, ids)) + "\n")
        return path

    def test_layout_priority_retry_zip_and_missing(self):
        r = self.root
        put(r, "files/10001/10001-0.txt", make_raw("2021", BODY, "utf-8"))
        put(r, "files/10001/10001.txt", b"the ASCII edition must not be chosen")
        put(r, "cache/epub/10002/pg10002.txt", make_raw("2024", BODY, "utf-8", "\n"))
        put(r, "files/10003/10003-8.txt", make_raw("2003", BODY_LATIN1, "latin-1"))
        zbuf = io.BytesIO()
        with zipfile.ZipFile(zbuf, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("10004/10004.txt", make_raw("2004-nosp", BODY, "cp1252"))
        put(r, "files/10004/10004.zip", zbuf.getvalue())
        with Mirror(r) as m:
            m.fail_once["/files/10001/10001-0.txt"] = 2
            p = self.gutenberg(m, "--ids", self.ids(10001, 10002, 10003, 10004, 10005))
            log = list(m.log)
        self.assertEqual(p.returncode, 0, p.stderr)
        man = self.manifest()
        self.assertEqual([man[i]["status"] for i in ["10001", "10002", "10003", "10004", "10005"]],
                         ["ok", "ok", "ok", "ok", "missing"])
        self.assertTrue(man["10001"]["url"].endswith("/files/10001/10001-0.txt"))
        self.assertTrue(man["10002"]["url"].endswith("/cache/epub/10002/pg10002.txt"))
        self.assertTrue(man["10003"]["url"].endswith("/files/10003/10003-8.txt"))
        self.assertTrue(man["10004"]["url"].endswith("/files/10004/10004.zip"))
        self.assertEqual(man["10003"]["encoding"], "windows-1252")
        self.assertEqual(sum(1 for path, _ in log if path == "/files/10001/10001-0.txt"), 3)
        for i, body in [("10001", BODY), ("10002", BODY), ("10003", BODY_LATIN1), ("10004", BODY)]:
            clean = readb(os.path.join(self.d, "out", "clean", i + ".txt"))
            self.assertEqual(clean.decode(), body)
            self.assertEqual(man[i]["clean_sha256"], sha(clean))
            raw = readb(os.path.join(self.d, "out", "raw", i + ".txt"))
            self.assertEqual(man[i]["raw_sha256"], sha(raw))
        # A second run finds everything in raw/ and asks the mirror nothing.
        with Mirror(r) as m:
            p = self.gutenberg(m, "--ids", self.ids(10001, 10002, 10003, 10004))
            self.assertEqual(m.log, [])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(self.manifest()["10001"]["url"].endswith("/files/10001/10001-0.txt"))

    def test_binary_and_licence_only_books_fail(self):
        # A binary served as a book, and a book that is only licence text, are
        # failed books (exit 1, manifest status failed, no clean file), not
        # "ok" books of NUL bytes or of nothing; --pg19 keeps an unmarked book.
        r = self.root
        put(r, "files/10001/10001-0.txt", make_raw("2021", BODY, "utf-8"))
        put(r, "files/10002/10002-0.txt", b"\x7fELF\x02\x01\x01" + bytes(200))
        put(r, "files/10003/10003-0.txt", make_raw("2024", "", "utf-8", "\n"))
        put(r, "files/10004/10004-0.txt", make_raw("1994", BODY, "utf-8"))
        for mode in [[], ["--pg19"]]:
            shutil.rmtree(os.path.join(self.d, "out"), ignore_errors=True)
            with Mirror(r) as m:
                p = self.gutenberg(m, "--ids", self.ids(10001, 10002, 10003, 10004), *mode)
            self.assertEqual(p.returncode, 1, mode)
            self.assertIn(b"book 10002 failed: ", p.stderr)
            self.assertIn(b"10002.txt: not text: the file is an ELF executable", p.stderr)
            self.assertIn(b"10003.txt: empty book", p.stderr)
            man = self.manifest()
            self.assertEqual([man[i]["status"] for i in ["10001", "10002", "10003", "10004"]],
                             ["ok", "failed", "failed", "ok"], mode)
            self.assertEqual(sorted(os.listdir(os.path.join(self.d, "out", "clean"))),
                             ["10001.txt", "10004.txt"])
            if mode:
                self.assertEqual((man["10004"]["start"], man["10004"]["end"]), ("none", "none"))
                self.assertEqual(readb(os.path.join(self.d, "out", "clean", "10004.txt")),
                                 make_raw("1994", BODY, "utf-8"))

    def test_429_honours_retry_after(self):
        put(self.root, "files/10001/10001-0.txt", make_raw("2021", BODY, "utf-8"))
        with Mirror(self.root) as m:
            m.throttle["/files/10001/10001-0.txt"] = 2
            p = self.gutenberg(m, "--ids", self.ids(10001))
            times = m.times["/files/10001/10001-0.txt"]
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(times), 2)
        self.assertGreaterEqual(times[1] - times[0], 1.9)
        self.assertEqual(self.manifest()["10001"]["status"], "ok")

    def test_resume_partial_download(self):
        data = make_raw("2003", BODY * 200, "utf-8")
        put(self.root, "files/10001/10001-0.txt", data)
        for ignore_range in [False, True]:
            out = os.path.join(self.d, "out")
            if os.path.isdir(out):
                import shutil
                shutil.rmtree(out)
            os.makedirs(os.path.join(out, "raw"))
            with open(os.path.join(out, "raw", "10001.txt.part"), "wb") as f:
                f.write(data[:1000])
            with Mirror(self.root) as m:
                m.ignore_range = ignore_range
                p = self.gutenberg(m, "--ids", self.ids(10001), "--pg19")
                ranges = [rg for _, rg in m.log]
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(ranges, ["bytes=1000-"])
            self.assertEqual(readb(os.path.join(out, "raw", "10001.txt")), data)
            self.assertFalse(os.path.exists(os.path.join(out, "raw", "10001.txt.part")))
            self.assertEqual(readb(os.path.join(out, "clean", "10001.txt")),
                             pg19_oracle(data, "utf-8"))

    def test_hostile_zip_is_refused(self):
        zbuf = io.BytesIO()
        with zipfile.ZipFile(zbuf, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("../../escaped.txt", b"x" * 100)
        put(self.root, "files/10001/10001.zip", zbuf.getvalue())
        zbuf = io.BytesIO()
        with zipfile.ZipFile(zbuf, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("10002.txt", b"\0" * (30 << 20))  # 30 MB -> ~30 KB
        put(self.root, "files/10002/10002.zip", zbuf.getvalue())
        with Mirror(self.root) as m:
            p = self.gutenberg(m, "--ids", self.ids(10001, 10002))
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"unsafe member path", p.stderr)
        self.assertIn(b"decompression bomb", p.stderr)
        man = self.manifest()
        self.assertEqual(man["10001"]["status"], "failed")
        self.assertEqual(man["10002"]["status"], "failed")
        self.assertFalse(os.path.exists(os.path.join(self.d, "escaped.txt")))
        self.assertFalse(os.path.exists(os.path.join(self.d, "out", "raw", "10002.txt")))

    def test_catalog_feed_url_and_selection(self):
        recs = [(10001, "One", "en", "Old, Writer", 1800, 1870, "2003-01-01"),
                (10002, "Deux", "fr", "Vieux, Auteur", 1800, 1880, "2003-01-01"),
                (10003, "Three", "en", "New, Writer", 1900, 1990, "2003-01-01"),
                (10004, "Four", "en", "Old, Writer", 1800, 1870, "2019-01-01")]
        feed = os.path.join(self.root, "cache", "epub", "feeds", "rdf-files.tar.bz2")
        os.makedirs(os.path.dirname(feed))
        with tarfile.open(feed, "w:bz2") as t:
            for rec in recs:
                data = rdf_record(*rec).encode()
                info = tarfile.TarInfo(f"cache/epub/{rec[0]}/pg{rec[0]}.rdf")
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
            bad = b"<rdf:RDF><not closed"
            info = tarfile.TarInfo("cache/epub/99/pg99.rdf")
            info.size = len(bad)
            t.addfile(info, io.BytesIO(bad))
        for rec in recs:
            put(self.root, f"files/{rec[0]}/{rec[0]}-0.txt", make_raw("2021", BODY, "utf-8"))
        cat = os.path.join(self.d, "cat.tsv")
        with Mirror(self.root) as m:
            p = run(["catalog", "--url", m.url + "/cache/epub/feeds/rdf-files.tar.bz2", "-o", cat])
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn(b"not well-formed", p.stderr)
            rows = tsv(cat)
            self.assertEqual([r["id"] for r in rows], ["10001", "10002", "10003", "10004"])
            self.assertEqual(rows[2]["authors"], "New, Writer (1900-1990)")
            p = self.gutenberg(m, "--catalog", cat, "--language", "en", "--max-issued-year", "2010",
                               "--author-died-before", "1950")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(sorted(self.manifest()), ["10001"])
        # The same selection feeds a hash split.
        sp = os.path.join(self.d, "split")
        p = run(["split", "--hash", cat, "--language", "en", "--test", "1", "--validation", "1",
                 "-o", sp])
        self.assertEqual(p.returncode, 0, p.stderr)
        got = {s: readt(os.path.join(sp, s + ".txt")).split()
               for s in ["train", "validation", "test"]}
        self.assertEqual(sorted(sum(got.values(), [])), ["10001", "10003", "10004"])
        self.assertEqual([len(got[s]) for s in ["train", "validation", "test"]], [1, 1, 1])

    def test_min_words_filter(self):
        put(self.root, "files/10001/10001-0.txt", make_raw("2021", BODY, "utf-8"))
        put(self.root, "files/10002/10002-0.txt", make_raw("2021", BODY * 50, "utf-8"))
        with Mirror(self.root) as m:
            p = self.gutenberg(m, "--ids", self.ids(10001, 10002), "--min-words", "100")
        self.assertEqual(p.returncode, 0, p.stderr)
        man = self.manifest()
        self.assertEqual((man["10001"]["status"], man["10002"]["status"]), ("short", "ok"))
        self.assertFalse(os.path.exists(os.path.join(self.d, "out", "clean", "10001.txt")))


class HashSplit(unittest.TestCase):
    def test_deterministic_sizes_and_seed(self):
        with tempfile.TemporaryDirectory() as d:
            ids = os.path.join(d, "ids.txt")
            with open(ids, "w") as f:
                f.write("\n".join(str(i) for i in range(1, 1001)) + "\n")

            def split(seed, out):
                p = run(["split", "--hash", ids, "--test", "100", "--validation", "50",
                         "--seed", seed, "-o", os.path.join(d, out)])
                self.assertEqual(p.returncode, 0, p.stderr)
                return {s: readt(os.path.join(d, out, s + ".txt"))
                        for s in ["train", "validation", "test"]}

            a, b, c = split("0", "a"), split("0", "b"), split("1", "c")
            self.assertEqual(a, b)
            self.assertNotEqual(a["test"], c["test"])
            self.assertEqual([len(a[s].split()) for s in ["train", "validation", "test"]],
                             [850, 50, 100])
            # Rule: test = the 100 ids with the smallest SHA-256("pg19-split:0:<id>").
            rank = sorted(range(1, 1001),
                          key=lambda i: hashlib.sha256(f"pg19-split:0:{i}".encode()).digest())
            self.assertEqual(sorted(map(int, a["test"].split())), sorted(rank[:100]))
            p = run(["split", "--hash", ids, "--test", "990", "--validation", "20",
                     "-o", os.path.join(d, "x")])
            self.assertEqual(p.returncode, 1)

    def test_official_checks(self):
        with tempfile.TemporaryDirectory() as d:
            meta = os.path.join(d, "metadata.csv")
            with open(meta, "w") as f:
                f.write('1,"A, title",1900,http://x/1\n2,B,1901,http://x/2\n3,C,1902,http://x/3\n')
            good = os.path.join(d, "good.txt")
            with open(good, "w") as f:
                f.write("gs://b/train/1.txt\ngs://b/train/2.txt\ngs://b/test/3.txt\n")
            p = run(["split", "--official", meta, good, "-o", os.path.join(d, "o")])
            self.assertEqual(p.returncode, 1)  # sizes are not PG-19's
            self.assertIn(b"PG-19's has", p.stderr)
            p = run(["split", "--official", meta, good, "-o", os.path.join(d, "o"), "--no-check"])
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(readt(os.path.join(d, "o", "train.txt")), "1\n2\n")
            for bad, why in [("gs://b/train/1.txt\ngs://b/test/1.txt\ngs://b/test/3.txt\n",
                              b"in both"),
                             ("gs://b/train/1.txt\ngs://b/train/2.txt\ngs://b/test/4.txt\n",
                              b"not in"),
                             ("gs://b/train/1.txt\ngs://b/train/2.txt\n", b"has 3 rows")]:
                path = os.path.join(d, "bad.txt")
                with open(path, "w") as f:
                    f.write(bad)
                p = run(["split", "--official", meta, path, "-o", os.path.join(d, "o2"),
                         "--no-check"])
                self.assertEqual(p.returncode, 1)
                self.assertIn(why, p.stderr)


if __name__ == "__main__":
    unittest.main()
