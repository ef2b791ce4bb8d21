#!/usr/bin/env python3
"""A loopback stand-in for the Cloud Storage bucket `fetch pg19` reads.

Serves the files under ROOT as objects (ROOT/train/1.txt is object
"train/1.txt") through the two endpoints fetch uses:

  GET /storage/v1/b/BUCKET/o?prefix=P[&pageToken=T]   JSON listing, paginated
  GET /BUCKET/NAME                                     the object (Range: bytes=N- honoured)

Listing items carry name, size (a decimal string, as the real API sends it),
md5Hash and crc32c (base64, crc32c big-endian). Faults are injected per
object (or per listing with the key "LIST") from a JSON file given with
--faults: {"train/1.txt": ["500", "reset:1000"], ...}; each request takes the
next fault in the list, a fault ending in "*" stays forever. Fault kinds:
  500 503 404 ...  that HTTP status
  429:S            429 with Retry-After: S
  reset:N          N body bytes, then a TCP reset
  truncate:N       Content-Length says all, N bytes are sent, clean close
  short:N          a consistent response that is N bytes short
  corrupt          one byte flipped in the middle
  extra            10 bytes more than the object, consistently
  stall:S          half the body, then S seconds of silence, then close
  trickle:R        the body at R bytes/s (e.g. 4: alive, but far too slow)
  garbage          (LIST only) a body that is not JSON
  endless          (LIST only) every page has a nextPageToken, past the end
  flood:N          (LIST only) every page has N made-up objects and a next page
Every request is appended to --log as a JSON line (t, path, range, fault).
With --port 0 the chosen port is printed as "PORT n" on stdout. --backlog N
(default 5, Python's) is for benchmarks, where 16 parallel clients overflow
a listen queue of 5.
"""
import argparse
import base64
import hashlib
import http.server
import json
import os
import socket
import struct
import sys
import threading
import time
import urllib.parse

_CRC_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ (0x82F63B78 if _c & 1 else 0)
    _CRC_TABLE.append(_c)


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    table = _CRC_TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


class Bucket:
    def __init__(self, root, bucket):
        self.root = root
        self.bucket = bucket
        self.meta = {}
        names = []
        for dirpath, _dirs, files in os.walk(root):
            for f in files:
                full = os.path.join(dirpath, f)
                names.append(os.path.relpath(full, root).replace(os.sep, "/"))
        for name in sorted(names):
            self.meta[name] = None  # checksums computed lazily, once
        self.names = sorted(names)
        self.lock = threading.Lock()

    def info(self, name):
        with self.lock:
            m = self.meta.get(name)
        if m is None:
            data = open(os.path.join(self.root, name), "rb").read()
            m = {
                "name": name,
                "bucket": self.bucket,
                "size": str(len(data)),
                "md5Hash": base64.b64encode(hashlib.md5(data).digest()).decode(),
                "crc32c": base64.b64encode(struct.pack(">I", crc32c(data))).decode(),
            }
            with self.lock:
                self.meta[name] = m
        return m


class Faults:
    def __init__(self, path):
        self.faults = {}
        if path:
            with open(path) as f:
                self.faults = json.load(f)
        self.lock = threading.Lock()

    def take(self, key):
        with self.lock:
            lst = self.faults.get(key)
            if not lst:
                return None
            f = lst[0]
            if f.endswith("*"):
                return f[:-1]
            lst.pop(0)
            return f


def make_handler(bucket, faults, page_size, ranges, rate, log):
    log_lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms delayed-ACK wait

        def log_message(self, fmt, *args):
            pass

        def _log(self, fault):
            if not log:
                return
            rec = {"t": time.time(), "path": self.path, "range": self.headers.get("Range"), "fault": fault}
            with log_lock:
                with open(log, "a") as f:
                    f.write(json.dumps(rec) + "\n")

        def _status(self, code, extra=None):
            body = json.dumps({"error": {"code": code}}).encode()
            self.send_response(code)
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _generic_fault(self, fault):
            """Handles faults that do not depend on the body; True if handled."""
            if fault is None:
                return False
            if fault.isdigit():
                self._status(int(fault))
                return True
            if fault.startswith("429"):
                secs = fault.split(":", 1)[1] if ":" in fault else "1"
                self._status(429, {"Retry-After": secs})
                return True
            return False

        def _send_body(self, status, headers, body, fault):
            kind, _, arg = (fault or "").partition(":")
            length = len(body)
            if kind == "corrupt" and body:
                mid = len(body) // 2
                body = body[:mid] + bytes([body[mid] ^ 0x55]) + body[mid + 1:]
            elif kind == "extra":
                body = body + b"0123456789"
                length = len(body)
            elif kind == "short":
                body = body[: max(0, len(body) - int(arg or 1))]
                length = len(body)
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(length))
            self.end_headers()
            if kind in ("reset", "truncate"):
                n = min(int(arg or 0), len(body))
                self.wfile.write(body[:n])
                self.wfile.flush()
                if kind == "reset":
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
                self.connection.close()
                return
            if kind == "trickle":
                step = 1.0 / float(arg)
                chunk = max(1, int(float(arg) / 20))
                for i in range(0, len(body), chunk):
                    self.wfile.write(body[i:i + chunk])
                    self.wfile.flush()
                    time.sleep(step * chunk)
                return
            if kind == "stall":
                half = len(body) // 2
                self.wfile.write(body[:half])
                self.wfile.flush()
                time.sleep(float(arg or 10))
                self.close_connection = True
                return
            if rate:
                chunk = max(1, int(rate / 20))
                for i in range(0, len(body), chunk):
                    self.wfile.write(body[i:i + chunk])
                    self.wfile.flush()
                    time.sleep(chunk / rate)
            else:
                self.wfile.write(body)

        def do_GET(self):
            u = urllib.parse.urlsplit(self.path)
            list_prefix = f"/storage/v1/b/{bucket.bucket}/o"
            if u.path == list_prefix:
                fault = faults.take("LIST")
                self._log(fault)
                if self._generic_fault(fault):
                    return
                q = urllib.parse.parse_qs(u.query)
                prefix = q.get("prefix", [""])[0]
                start = int(q.get("pageToken", ["0"])[0] or 0)
                matching = [n for n in bucket.names if n.startswith(prefix)]
                page = matching[start:start + page_size]
                doc = {"kind": "storage#objects", "items": [bucket.info(n) for n in page]}
                if start + page_size < len(matching) or fault == "endless":
                    doc["nextPageToken"] = str(start + page_size)
                if fault and fault.startswith("flood:"):
                    n = int(fault.split(":", 1)[1])
                    doc["items"] = [{"name": f"{prefix}{start + i}.txt", "size": "1000",
                                     "md5Hash": "kAFQmDzST7DWlj99KOF/cg==", "crc32c": "Nks/tw=="}
                                    for i in range(n)]
                    doc["nextPageToken"] = str(start + n)
                if fault in ("endless",) or (fault and fault.startswith("flood:")):
                    fault = None
                body = json.dumps(doc).encode()
                if fault == "garbage":
                    body = b"<html>not json</html>"
                    fault = None
                self._send_body(200, {"Content-Type": "application/json"}, body, fault)
                return
            obj_prefix = f"/{bucket.bucket}/"
            if not u.path.startswith(obj_prefix):
                self._log(None)
                self._status(404)
                return
            name = urllib.parse.unquote(u.path[len(obj_prefix):])
            fault = faults.take(name)
            self._log(fault)
            if name not in bucket.meta:
                self._status(404)
                return
            if self._generic_fault(fault):
                return
            data = open(os.path.join(bucket.root, name), "rb").read()
            rng = self.headers.get("Range")
            if ranges and rng and rng.startswith("bytes=") and rng.endswith("-"):
                start = int(rng[6:-1])
                if start >= len(data):
                    self._status(416)
                    return
                headers = {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"}
                self._send_body(206, headers, data[start:], fault)
            else:
                self._send_body(200, {"Content-Type": "text/plain"}, data, fault)

    return Handler


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("--bucket", default="deepmind-gutenberg")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--page-size", type=int, default=1000)
    ap.add_argument("--faults")
    ap.add_argument("--no-range", action="store_true")
    ap.add_argument("--rate", type=float, default=0, help="bytes/s per response (0 = unlimited)")
    ap.add_argument("--log")
    ap.add_argument("--backlog", type=int, default=5, help="listen backlog (benchmarks: large)")
    a = ap.parse_args()
    bucket = Bucket(a.root, a.bucket)
    handler = make_handler(bucket, Faults(a.faults), a.page_size, not a.no_range, a.rate, a.log)
    class Server(http.server.ThreadingHTTPServer):
        request_queue_size = a.backlog

    srv = Server(("127.0.0.1", a.port), handler)
    srv.daemon_threads = True
    print(f"PORT {srv.server_address[1]}", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
