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

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def fetch_cmd():
    """Command prefix that runs a Gutenberg subcommand: fetch_cmd() + ["clean", ...]."""
    bindir = os.environ.get("PG19_BIN", os.path.join(TOP, "build-san", "bin"))
    return [os.path.join(bindir, "fetch-gutenberg")]


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
            fail = srv.fail_once.get(path, 0)
            if fail:
                srv.fail_once[path] = fail - 1
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
    fail_once[path] = n answers the first n requests for path with 503."""
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # clients that hang up early (a refused zip, a cap) are expected

    def __init__(self, root):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root = os.path.realpath(root)
        self.lock = threading.Lock()
        self.log = []
        self.fail_once = {}
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
