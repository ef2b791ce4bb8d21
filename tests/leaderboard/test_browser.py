"""The rendered leaderboard in headless Chromium (Debian `chromium`), driven
over the DevTools protocol with a small stdlib WebSocket client: the page
loads with no console errors, exceptions or CSP violations, shows a row and a
details block for every entry, a <script> in a model name renders as text (no
dialog opens, only the page's own script exists), and the sort buttons work.
Skips when chromium is not installed."""
import base64
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import unittest
import urllib.request

import lbtest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(os.environ.get("PG19_BIN", os.path.join(TOP, "bin")), "leaderboard")
ENTRIES = os.path.join(TOP, "leaderboard", "entries")
EVIL = '<script>alert("pwned")</script><img src=x onerror=alert(1)>'


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(name)
        if p:
            return p
    return None


class WebSocket:
    """Just enough RFC 6455 for DevTools: text frames, client-side masking."""

    def __init__(self, url, timeout=30):
        m = re.match(r"ws://([^/:]+):(\d+)(/.*)", url)
        self.sock = socket.create_connection((m.group(1), int(m.group(2))), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        req = (f"GET {m.group(3)} HTTP/1.1\r\nHost: {m.group(1)}:{m.group(2)}\r\n"
               f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n")
        self.sock.sendall(req.encode())
        resp = b""
        while b"\r\n\r\n" not in resp:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("websocket handshake failed")
            resp += chunk
        if b" 101 " not in resp.split(b"\r\n")[0]:
            raise ConnectionError(resp.decode(errors="replace"))
        self.buf = resp.split(b"\r\n\r\n", 1)[1]

    def send(self, text):
        data = text.encode()
        head = bytearray([0x81])
        if len(data) < 126:
            head.append(0x80 | len(data))
        elif len(data) < 65536:
            head += bytes([0x80 | 126]) + struct.pack(">H", len(data))
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", len(data))
        mask = os.urandom(4)
        self.sock.sendall(bytes(head) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("websocket closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv(self):
        message = b""
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            payload = self._read(n)
            opcode = b0 & 0x0F
            if opcode == 8:
                raise ConnectionError("websocket closed by the browser")
            if opcode in (0, 1, 2):
                message += payload
                if b0 & 0x80:
                    return message.decode()


class DevTools:
    def __init__(self, ws_url):
        self.ws = WebSocket(ws_url)
        self.next_id = 0
        self.events = []

    def call(self, method, **params):
        self.next_id += 1
        my_id = self.next_id
        self.ws.send(json.dumps({"id": my_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def wait_event(self, name, timeout=30):
        deadline = time.time() + timeout
        for e in self.events:
            if e["method"] == name:
                return e
        self.ws.sock.settimeout(max(1, timeout))
        while time.time() < deadline:
            msg = json.loads(self.ws.recv())
            if "method" in msg:
                self.events.append(msg)
                if msg["method"] == name:
                    return msg
        raise TimeoutError(name)

    def eval(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expr}: {r['exceptionDetails']}")
        return r["result"].get("value")


@unittest.skipUnless(find_chromium(), "chromium is not installed (apt-get install chromium)")
class Browser(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        d = cls.tmp.name
        entries = os.path.join(d, "entries")
        os.makedirs(entries)
        for n in os.listdir(ENTRIES):
            shutil.copy(os.path.join(ENTRIES, n), entries)
        subs = [lbtest.sample(name=EVIL), lbtest.sample(name="tiny ct (valid)", split="validation"),
                lbtest.results([(3, 4, 10.0), (0, 0, 0.0), (2, 2, 9.0), (1, 3, 12.5)],
                               split="validation", official=False, books=2, name="subset")]
        for i, s in enumerate(subs):
            p = os.path.join(d, f"s{i}.json")
            with open(p, "w") as f:
                json.dump(s, f)
            subprocess.run([BIN, "submit", p, "--entries", entries], check=True, cwd=TOP,
                           stdout=subprocess.DEVNULL)
        cls.ids = sorted(n[:-5] for n in os.listdir(entries))
        cls.site = os.path.join(d, "site")
        subprocess.run([BIN, "render", "-o", cls.site, "--entries", entries], check=True,
                       cwd=TOP, stdout=subprocess.DEVNULL)
        cls.profile = os.path.join(d, "profile")
        cls.proc = subprocess.Popen(
            [find_chromium(), "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-first-run", "--disable-dev-shm-usage", f"--user-data-dir={cls.profile}",
             "--remote-debugging-port=0", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        ws_url = None
        deadline = time.time() + 60
        lines = []
        while time.time() < deadline:
            line = cls.proc.stderr.readline().decode(errors="replace")
            if not line:
                break
            lines.append(line)
            m = re.search(r"DevTools listening on (ws://\S+)", line)
            if m:
                ws_url = m.group(1)
                break
        if not ws_url:
            cls.proc.kill()
            raise RuntimeError("chromium did not start: " + "".join(lines[-20:]))
        port = int(re.match(r"ws://[^:]+:(\d+)/", ws_url).group(1))
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            pages = [t for t in json.load(r) if t["type"] == "page"]
        cls.dt = DevTools(pages[0]["webSocketDebuggerUrl"])
        for domain in ("Page", "Runtime", "Log"):
            cls.dt.call(f"{domain}.enable")
        url = "file://" + os.path.join(cls.site, "index.html")
        cls.dt.call("Page.navigate", url=url)
        cls.dt.wait_event("Page.loadEventFired")
        # let late errors (CSP reports, deferred exceptions) arrive
        time.sleep(0.5)
        cls.dt.eval("1")

    @classmethod
    def tearDownClass(cls):
        try:
            cls.dt.ws.sock.close()
        finally:
            cls.proc.terminate()
            try:
                cls.proc.wait(10)
            except subprocess.TimeoutExpired:
                cls.proc.kill()
                cls.proc.wait()
            cls.proc.stderr.close()
            cls.tmp.cleanup()

    def problems(self, levels=("error",)):
        """Console errors, uncaught exceptions, browser log errors (CSP
        violations land there) and dialogs seen so far."""
        out = []
        for e in self.dt.events:
            m, p = e["method"], e.get("params", {})
            if m == "Runtime.exceptionThrown":
                out.append(("exception", p["exceptionDetails"].get("text")))
            elif m == "Runtime.consoleAPICalled" and p.get("type") in levels + ("assert",):
                out.append(("console." + p["type"], [a.get("value") for a in p.get("args", [])]))
            elif m == "Log.entryAdded" and p["entry"]["level"] in levels:
                out.append(("log", p["entry"].get("text")))
            elif m == "Page.javascriptDialogOpening":
                out.append(("dialog", p.get("message")))
        return out

    def test_1_no_console_errors(self):
        print(f"# console errors, exceptions, dialogs: {self.problems()}")
        print(f"# warnings (not failures): {self.problems(('warning',))}")
        self.assertEqual(self.problems(), [])
        self.assertEqual(self.dt.eval("document.title"), "PG-19 leaderboard")

    def test_2_every_entry_shown(self):
        rows = self.dt.eval("Array.from(document.querySelectorAll('tr[data-entry]'))"
                            ".map(r => r.getAttribute('data-entry'))")
        print(f"# rows shown: {len(rows)} of {len(self.ids)} entries")
        self.assertEqual(sorted(rows), self.ids)
        details = self.dt.eval("Array.from(document.querySelectorAll('details[id^=entry-]'))"
                               ".map(d => d.id.slice(6))")
        self.assertEqual(sorted(details), self.ids)
        badges = self.dt.eval("Array.from(document.querySelectorAll('tr[data-entry] .badge'))"
                              ".map(b => b.textContent)")
        self.assertEqual(badges.count("reported"), 5)
        self.assertEqual(badges.count("measured"), 3)
        self.assertEqual(self.dt.eval("document.querySelectorAll('svg rect').length") > 0, True)

    def test_3_script_in_name_is_text(self):
        names = self.dt.eval("Array.from(document.querySelectorAll('a.model-name'))"
                             ".map(a => a.textContent)")
        print(f"# model names as text: {names}")
        n_scripts = self.dt.eval("document.scripts.length")
        n_images = self.dt.eval("document.querySelectorAll('img').length")
        print(f"# script elements: {n_scripts}, img elements: {n_images}")
        self.assertIn(EVIL, names)
        self.assertEqual(self.dt.eval("document.scripts.length"), 1)
        self.assertEqual(self.dt.eval("document.querySelectorAll('img').length"), 0)
        self.assertFalse([p for p in self.problems() if p[0] == "dialog"])

    def test_4_sorting(self):
        col = "Array.from(document.querySelectorAll('#board-test tbody tr')).map(r => r.cells[3].getAttribute('data-v'))"
        before = self.dt.eval(col)
        nums = [float(v) for v in before]
        self.assertEqual(nums, sorted(nums))  # ranked best first
        self.dt.eval("document.querySelector('#board-test th:nth-child(4) button').click()")
        self.dt.eval("document.querySelector('#board-test th:nth-child(4) button').click()")
        after = [float(v) for v in self.dt.eval(col)]
        self.assertEqual(after, sorted(nums, reverse=True))
        # unknown values (reported entries have no bits/byte) stay last both ways
        bpb = "Array.from(document.querySelectorAll('#board-test tbody tr')).map(r => r.cells[5].getAttribute('data-v'))"
        self.dt.eval("document.querySelector('#board-test th:nth-child(6) button').click()")
        v = self.dt.eval(bpb)
        self.assertNotEqual(v[0], "")
        self.assertEqual(v[-1], "")
        self.assertEqual(self.problems(), [])


if __name__ == "__main__":
    unittest.main()
