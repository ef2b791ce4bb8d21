"""Helpers for the Gutenberg fetch tests: the tool's command line, a loopback
mirror with Project Gutenberg's URL layout, and raw-text fixture generators.

The tool's location is decided in one place, fetch_cmd(): switch it when the
subcommands move into bin/fetch.
"""
import http.server
import os
import socketserver
import subprocess
import threading
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def fetch_cmd():
    """Command prefix that runs a Gutenberg subcommand: fetch_cmd() + ["clean", ...]."""
    bindir = os.environ.get("PG19_BIN", os.path.join(TOP, "build-san", "bin"))
    return [os.path.join(bindir, "fetch")]


def run(args, **kw):
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
    env["PG19_PROGRESS"] = "0"
    return subprocess.run(fetch_cmd() + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, env=env, **kw)


def corpus():
    """$PG19_TEST_CORPUS if set and present, else None."""
    c = os.environ.get("PG19_TEST_CORPUS")
    return c if c and os.path.isdir(c) else None


# ------------------------------------------------------------------ mirror --

class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        srv = self.server
        path = self.path.split("?", 1)[0]
        with srv.lock:
            srv.log.append((path, self.headers.get("Range")))
            srv.times.setdefault(path, []).append(time.time())
            fail = srv.fail_once.get(path, 0)
            if fail:
                srv.fail_once[path] = fail - 1
            throttle = srv.throttle.pop(path, None)
        if throttle is not None:
            self.send_response(429)
            self.send_header("Retry-After", str(throttle))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if fail:
            body = b"busy"
            self.send_response(503)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        local = os.path.normpath(os.path.join(srv.root, path.lstrip("/")))
        if not local.startswith(srv.root) or not os.path.isfile(local):
            body = b"not found"
            self.send_response(404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        with open(local, "rb") as f:
            data = f.read()
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes=") and not srv.ignore_range:
            start = int(rng[6:].split("-", 1)[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            data = data[start:]
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class Mirror(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """Loopback mirror serving root/ with the Gutenberg layout
    (files/ID/ID-0.txt, cache/epub/ID/pgID.txt, files/ID/ID.zip ...).
    fail_once[path] = n answers the first n requests for path with 503;
    throttle[path] = s answers the next one with 429 and Retry-After: s."""
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # clients that hang up early (a refused zip, a cap) are expected

    def __init__(self, root):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root = os.path.realpath(root)
        self.lock = threading.Lock()
        self.log = []
        self.fail_once = {}
        self.throttle = {}
        self.times = {}
        self.ignore_range = False
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.shutdown()
        self.server_close()


def put(root, rel, data):
    p = os.path.join(root, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(data)


# ---------------------------------------------------------------- fixtures --

BODY = ("CHAPTER I\n\n\u201cCaf\u00e9,\u201d said the na\u00efve man\u2014quietly.\n"
        "Second paragraph, plain ASCII.\n")


def make_raw(era, body=BODY, encoding="utf-8", eol="\r\n", title="A TEST BOOK"):
    """A raw Gutenberg file of the given era around body; returns bytes.

    eras: 1994 (small print block), 2003 (START OF THIS, credits), 2004-nosp
    (***START OF THE, marker wrapped over two lines), 2021 (START OF THE ... with
    title), 2024 (no header before the START line), none (no markers)."""
    declared = {"utf-8": "UTF-8", "latin-1": "ISO-8859-1", "cp1252": "ISO-8859-1",
                "ascii": "ASCII"}[encoding]
    if era == "1994":
        head = ("**The Project Gutenberg Etext of A Test Book**\n\n"
                "***START**THE SMALL PRINT!**FOR PUBLIC DOMAIN ETEXTS**START***\n"
                "Why is this \"Small Print!\" statement here?  You know: lawyers.\n"
                "*END*THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.04.29.93*END*\n\n"
                "This etext was prepared by A. Volunteer.\n\n")
        foot = "\nEnd of Project Gutenberg Etext of A Test Book\n"
    elif era == "2003":
        head = (f"The Project Gutenberg EBook of A Test Book, by Nobody\n\n"
                f"Title: A Test Book\n\nCharacter set encoding: {declared}\n\n"
                f"*** START OF THIS PROJECT GUTENBERG EBOOK {title} ***\n\n\n\n"
                "Produced by Some Volunteers and the Online\nDistributed Proofreading Team\n\n\n\n")
        foot = (f"\n\n\nEnd of the Project Gutenberg EBook of A Test Book, by Nobody\n\n"
                f"*** END OF THIS PROJECT GUTENBERG EBOOK {title} ***\n\n"
                "***** This file should be named 10001.txt or 10001.zip *****\n")
    elif era == "2004-nosp":
        head = (f"Title: A Test Book\n\nCharacter set encoding: {declared}\n\n\n"
                f"***START OF THE PROJECT GUTENBERG EBOOK {title}, WITH A\n"
                "LONG SUBTITLE***\n\n\nE-text prepared by Some Volunteers\n\n\n\n")
        foot = (f"\n\n\n\nEnd of the Project Gutenberg EBook of A Test Book\n\n"
                f"***END OF THE PROJECT GUTENBERG EBOOK {title}***\n\n"
                "******* This file should be named 10002.txt or 10002.zip *******\n")
    elif era == "2021":
        head = (f"The Project Gutenberg eBook of A Test Book, by Nobody\n\n"
                f"Title: A Test Book\n\nCharacter set encoding: {declared}\n\n"
                f"*** START OF THE PROJECT GUTENBERG EBOOK {title} ***\n"
                "Produced by Some Volunteers\n\n\n\n\n")
        foot = (f"\n\n\n\nEnd of the Project Gutenberg EBook of A Test Book, by Nobody\n\n"
                f"*** END OF THE PROJECT GUTENBERG EBOOK {title} ***\n\n"
                "Updated editions will replace the previous one.\n")
    elif era == "2024":
        head = "*** START OF THE PROJECT GUTENBERG EBOOK 10004 ***\n\n\n"
        foot = ("\n\n\n*** END OF THE PROJECT GUTENBERG EBOOK 10004 ***\n\n"
                "Updated editions will replace the previous one\u2014the old editions will\n")
    elif era == "none":
        head, foot = "", ""
    else:
        raise ValueError(era)
    text = (head + body + foot).replace("\n", eol)
    enc = {"latin-1": "latin-1", "cp1252": "cp1252", "utf-8": "utf-8", "ascii": "ascii"}[encoding]
    return text.encode(enc, errors="replace" if enc == "ascii" else "strict")


# ------------------------------------------------------------- demo mirror --

WORDS = ("the of and to in a that he was it his is with as for had you not be her on at by "
         "which have or from this him but all she they were my are me one their so an said "
         "them we who would been will no when there if more out up into do any your what has "
         "man could other than our some very time upon about may its only now like little then "
         "can should made did us such a great before must two these see know over much down "
         "after first mr good men own never most old shall day where those came come himself "
         "way work life without go make well through being long say might how am too even def "
         "house thought went heart eyes face night hand world father mother light people").split()


def demo_text(book, n_words, rng):
    """Deterministic English-looking prose for a demo book."""
    out, line = [f"CHAPTER I\n\nBook {book}.\n\n"], []
    for i in range(n_words):
        w = rng.choice(WORDS)
        if not line:
            w = w.capitalize()
        line.append(w)
        if len(" ".join(line)) > 64:
            out.append(" ".join(line) + "\n")
            line = []
        if i % 97 == 96:
            out.append(" ".join(line) + ".\n\n")
            line = []
    out.append(" ".join(line) + ".\n")
    return "".join(out)


def make_demo_mirror(root, books, seed=19):
    """A mirror of `books` generated ebooks in every header era and layout, plus
    the catalog feed cache/epub/feeds/rdf-files.tar.bz2."""
    import io
    import random
    import tarfile
    import zipfile
    rng = random.Random(seed)
    eras = ["2003", "2004-nosp", "2021", "2024", "1994"]
    feed = io.BytesIO()
    with tarfile.open(fileobj=feed, mode="w:bz2") as tar:
        for k in range(books):
            book = 20001 + k
            era = eras[k % len(eras)]
            enc = "cp1252" if era in ("2003", "2004-nosp") and k % 2 else "utf-8"
            body = demo_text(book, 6000 + rng.randrange(6000), rng)
            raw = make_raw(era, body, enc, "\r\n" if k % 3 else "\n", title=f"DEMO BOOK {book}")
            layout = k % 4
            if layout == 0:
                put(root, f"files/{book}/{book}-0.txt", raw)
            elif layout == 1:
                put(root, f"cache/epub/{book}/pg{book}.txt", raw)
            elif layout == 2:
                put(root, f"files/{book}/{book}.txt", raw)
            else:
                z = io.BytesIO()
                with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
                    zf.writestr(f"{book}/{book}.txt", raw)
                put(root, f"files/{book}/{book}.zip", z.getvalue())
            lang = "fr" if k % 10 == 9 else "en"
            rdf = _demo_rdf(book, f"Demo Book {book}", lang, 1800 + k, 1870 + k % 60)
            info = tarfile.TarInfo(f"cache/epub/{book}/pg{book}.rdf")
            info.size = len(rdf)
            tar.addfile(info, io.BytesIO(rdf))
    put(root, "cache/epub/feeds/rdf-files.tar.bz2", feed.getvalue())


def _demo_rdf(book, title, lang, birth, death):
    return f"""<?xml version="1.0" encoding="utf-8"?>
<rdf:RDF xml:base="http://www.gutenberg.org/" xmlns:dcterms="http://purl.org/dc/terms/"
  xmlns:pgterms="http://www.gutenberg.org/2009/pgterms/"
  xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <pgterms:ebook rdf:about="ebooks/{book}">
    <dcterms:issued>2004-01-01</dcterms:issued>
    <dcterms:rights>Public domain in the USA.</dcterms:rights>
    <dcterms:creator><pgterms:agent rdf:about="2009/agents/{book}">
      <pgterms:name>Writer, Demo</pgterms:name><pgterms:birthdate>{birth}</pgterms:birthdate>
      <pgterms:deathdate>{death}</pgterms:deathdate></pgterms:agent></dcterms:creator>
    <dcterms:title>{title}</dcterms:title>
    <dcterms:language><rdf:Description><rdf:value>{lang}</rdf:value></rdf:Description></dcterms:language>
    <dcterms:type><rdf:Description><rdf:value>Text</rdf:value></rdf:Description></dcterms:type>
  </pgterms:ebook>
</rdf:RDF>
""".encode()


def _main(argv):
    import argparse
    import time
    ap = argparse.ArgumentParser(description="demo Gutenberg mirror")
    sub = ap.add_subparsers(dest="cmd", required=True)
    mk = sub.add_parser("make-mirror")
    mk.add_argument("root")
    mk.add_argument("--books", type=int, default=60)
    sv = sub.add_parser("serve")
    sv.add_argument("root")
    sv.add_argument("--port-file", required=True)
    a = ap.parse_args(argv)
    if a.cmd == "make-mirror":
        make_demo_mirror(a.root, a.books)
        return 0
    with Mirror(a.root) as m:
        tmp = a.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(m.url + "\n")
        os.replace(tmp, a.port_file)
        while True:
            time.sleep(3600)


if __name__ == "__main__":
    import sys
    sys.exit(_main(sys.argv[1:]))
