"""test_artifacts.py — the artifact proxy `mlflow-artifacts` (mlflow-rest-api.md
§3.6) and the UI's get-artifact / upload-artifact over real HTTP against
`tally serve`: upload, download, list, delete, nested directories, empty files,
overwrite, concurrent uploads of one path (the last rename wins, never a torn
file), an upload cut off mid-body (nothing visible, nothing left on disk),
every path-traversal form of §4.8 refused with 400 and MLflow error JSON with
nothing written, read or removed outside the root (symlinks planted inside it
included), multipart endpoints answered 501, stale temporaries swept at start,
and a file larger than 1 GiB streamed both ways while the server's RSS is
sampled from /proc/<pid>/status (bounded growth) and checksums compared.

The main class runs the default `--artifact-fsync background`; FsyncModes
covers both modes: `always` serves the same way, `background` files are
readable right after the 200, survive a SIGKILL sent right after it, are
fsync'd promptly (the syncer's /metrics counters) and drained at
shutdown, and malformed values of the option are refused at start."""

import hashlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_harness import TallyServer, tally_binary  # noqa: E402

A = "/api/2.0/mlflow-artifacts/artifacts"
BIG = (1 << 30) + 12345          # a little over 1 GiB
RSS_BOUND = 32 << 20             # allowed RSS growth while streaming (target 16 MiB)


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


class RssSampler(threading.Thread):
    """Samples a process's RSS every 20 ms until stopped; keeps the peak."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.base = rss_bytes(pid)
        self.peak = self.base
        self.samples = 0
        self._stop_evt = threading.Event()

    def run(self):
        while not self._stop_evt.is_set():
            try:
                self.peak = max(self.peak, rss_bytes(self.pid))
                self.samples += 1
            except OSError:
                return
            time.sleep(0.02)

    def stop(self):
        self._stop_evt.set()
        self.join()
        return self.peak - self.base


def pattern_block(i, size=1 << 20):
    """1 MiB block i of a deterministic, non-repeating stream."""
    seed = hashlib.sha256(i.to_bytes(8, "little")).digest()
    return (seed * (size // len(seed) + 1))[:size]


class Artifacts(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = TallyServer().start()
        cls.root = os.path.join(cls.srv.data_dir, "artifacts")
        # A directory outside the root with a secret, to detect escapes.
        cls.outside = os.path.join(os.path.dirname(cls.srv.data_dir), "outside")
        os.makedirs(cls.outside, exist_ok=True)
        with open(os.path.join(cls.outside, "secret.txt"), "w") as f:
            f.write("secret")

    @classmethod
    def tearDownClass(cls):
        try:
            cls.srv.stop()
        finally:
            cls.srv.cleanup()

    # -- helpers -------------------------------------------------------------

    def req(self, method, path, body=None, headers=None):
        return self.srv.request(method, path, body=body, headers=headers or {})

    def put(self, rel, data, ctype="application/octet-stream"):
        st, h, body = self.req("PUT", f"{A}/{rel}", data, {"Content-Type": ctype})
        return st, self.srv._decode(body)

    def get(self, rel):
        st, h, body = self.req("GET", f"{A}/{rel}")
        return st, h, body

    def listing(self, path=None):
        q = "" if path is None else "?" + urllib.parse.urlencode({"path": path})
        st, _, body = self.req("GET", A + q)
        return st, self.srv._decode(body)

    def assert_invalid(self, st, body, what):
        self.assertEqual(st, 400, what)
        self.assertIsInstance(body, dict, what)
        self.assertEqual(body["error_code"], "INVALID_PARAMETER_VALUE", what)

    def outside_snapshot(self):
        """Every file under the data dir's parent except the root's own tree."""
        snap = {}
        base = os.path.dirname(self.srv.data_dir)
        for d, dirs, files in os.walk(base):
            if os.path.commonpath([d, self.root]) == self.root:
                continue
            for name in files:
                p = os.path.join(d, name)
                if p.endswith("-server.log") or os.path.basename(p) in ("meta.db-wal", "meta.db-shm", "meta.db") \
                        or "/metrics" in p:
                    continue
                with open(p, "rb") as f:
                    snap[p] = hashlib.sha256(f.read()).hexdigest()
        return snap

    def temporaries(self):
        found = []
        for d, _, files in os.walk(self.root):
            found += [os.path.join(d, f) for f in files if f.startswith(".tally-")]
        return found

    # -- basic operations ----------------------------------------------------

    def test_upload_download_list_delete(self):
        st, body = self.put("1/run1/artifacts/model/MLmodel", b"flavors: {}\n", "text/plain")
        self.assertEqual((st, body), (200, {}))
        st, body = self.put("1/run1/artifacts/model/data/weights.bin", b"\x00\x01" * 1000)
        self.assertEqual(st, 200, body)
        st, body = self.put("1/run1/artifacts/empty.txt", b"")
        self.assertEqual(st, 200, body)

        st, h, data = self.get("1/run1/artifacts/model/MLmodel")
        self.assertEqual(st, 200)
        self.assertEqual(data, b"flavors: {}\n")
        self.assertEqual(h["content-type"], "text/plain")
        self.assertEqual(h["x-content-type-options"], "nosniff")
        self.assertIn('attachment; filename="MLmodel"', h["content-disposition"])
        self.assertEqual(h["content-length"], "12")
        st, h, data = self.get("1/run1/artifacts/model/data/weights.bin")
        self.assertEqual((st, data), (200, b"\x00\x01" * 1000))
        self.assertEqual(h["content-type"], "application/octet-stream")
        st, h, data = self.get("1/run1/artifacts/empty.txt")
        self.assertEqual((st, data, h["content-length"]), (200, b"", "0"))
        st, h, data = self.req("HEAD", f"{A}/1/run1/artifacts/model/data/weights.bin")
        self.assertEqual((st, data, h["content-length"]), (200, b"", "2000"))

        # Listing: basenames, one level, sorted, directories without size.
        st, body = self.listing("1/run1/artifacts")
        self.assertEqual(st, 200, body)
        self.assertEqual(body, {"files": [
            {"path": "empty.txt", "is_dir": False, "file_size": 0},
            {"path": "model", "is_dir": True}]})
        st, body = self.listing("1/run1/artifacts/model/")
        self.assertEqual([f["path"] for f in body["files"]], ["MLmodel", "data"])
        # A file, or a missing directory, lists nothing (§9.11).
        for p in ["1/run1/artifacts/model/MLmodel", "1/nope", "1/run1/artifacts/empty.txt/x"]:
            self.assertEqual(self.listing(p), (200, {}), p)
        st, body = self.listing()
        self.assertIn({"path": "1", "is_dir": True}, body["files"])
        # /ajax-api/ serves the same.
        st, _, data = self.req("GET", "/ajax-api/2.0/mlflow-artifacts/artifacts/1/run1/artifacts/empty.txt")
        self.assertEqual((st, data), (200, b""))

        # Missing file and a directory: 404 with MLflow JSON.
        for rel in ["1/run1/artifacts/nope.txt", "1/run1/artifacts/model"]:
            st, _, data = self.get(rel)
            self.assertEqual(st, 404, rel)
            self.assertEqual(json.loads(data)["error_code"], "RESOURCE_DOES_NOT_EXIST")

        # Recursive delete; deleting something missing is fine.
        st, _, data = self.req("DELETE", f"{A}/1/run1/artifacts/model")
        self.assertEqual((st, json.loads(data)), (200, {}))
        self.assertFalse(os.path.exists(os.path.join(self.root, "1/run1/artifacts/model")))
        self.assertEqual(self.listing("1/run1/artifacts")[1]["files"],
                         [{"path": "empty.txt", "is_dir": False, "file_size": 0}])
        st, _, data = self.req("DELETE", f"{A}/1/run1/artifacts/model")
        self.assertEqual(st, 200)
        st, _, data = self.req("DELETE", f"{A}/")
        self.assertEqual(st, 400)
        self.assertTrue(os.path.isdir(self.root))

    def test_overwrite_and_conflicts(self):
        self.assertEqual(self.put("2/f.txt", b"first version")[0], 200)
        self.assertEqual(self.put("2/f.txt", b"v2")[0], 200)
        self.assertEqual(self.get("2/f.txt")[2], b"v2")
        # A file where a directory is needed, and a directory as a file.
        st, body = self.put("2/f.txt/child", b"x")
        self.assert_invalid(st, body, "parent is a file")
        self.assertEqual(self.put("2/dir/inner", b"x")[0], 200)
        st, body = self.put("2/dir", b"x")
        self.assert_invalid(st, body, "target is a directory")
        self.assertEqual(self.temporaries(), [])

    def test_content_types_and_disposition(self):
        cases = {"a.json": "text/plain", "b.png": "image/png", "c.html": "text/plain",
                 "d.pkl": "application/octet-stream", "e.yaml": "text/plain",
                 "MLproject": "application/octet-stream", "requirements.txt": "text/plain"}
        for name, ctype in cases.items():
            self.assertEqual(self.put(f"3/{name}", b"x")[0], 200)
            st, h, _ = self.get(f"3/{name}")
            self.assertEqual(h["content-type"], ctype, name)
        # A name with quotes, spaces and UTF-8 is safely quoted and encoded.
        name = 'we"ird na\u00efve.txt'
        self.assertEqual(self.put("3/" + urllib.parse.quote(name), b"ok")[0], 200)
        st, h, data = self.get("3/" + urllib.parse.quote(name))
        self.assertEqual((st, data), (200, b"ok"))
        cd = h["content-disposition"]
        self.assertIn('filename="we_ird na__ve.txt"', cd)
        self.assertIn("filename*=UTF-8''we%22ird%20na%C3%AFve.txt", cd)
        # CR/LF in a name cannot inject headers.
        self.assertEqual(self.put("3/a%0D%0AX-Evil:%201", b"ok")[0], 200)
        st, h, data = self.get("3/a%0D%0AX-Evil:%201")
        self.assertEqual(st, 200)
        self.assertNotIn("x-evil", h)

    # -- concurrency and interruption -----------------------------------------

    def test_concurrent_uploads_never_torn(self):
        size = 4 << 20
        writers, rounds = 4, 3
        errors = []
        stop = threading.Event()
        seen = set()

        def writer(k):
            try:
                for _ in range(rounds):
                    st, body = self.put("4/same.bin", bytes([k]) * size)
                    if st != 200:
                        errors.append(("put", st, body))
            except Exception as e:  # noqa: BLE001
                errors.append(e)

        def reader():
            while not stop.is_set():
                st, _, data = self.get("4/same.bin")
                if st == 404:
                    continue
                if st != 200 or len(data) != size or data.count(data[0]) != size:
                    errors.append(("torn", st, len(data)))
                    return
                seen.add(data[0])

        threads = [threading.Thread(target=writer, args=(k + 1,)) for k in range(writers)]
        r = threading.Thread(target=reader)
        r.start()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stop.set()
        r.join()
        self.assertEqual(errors, [])
        st, _, data = self.get("4/same.bin")
        self.assertEqual(len(data), size)
        self.assertIn(data[0], range(1, writers + 1))
        self.assertEqual(data.count(data[0]), size)
        self.assertEqual(self.temporaries(), [])

    def raw_partial_put(self, rel, total, send):
        """PUT with Content-Length total, send `send` bytes, then close."""
        s = socket.create_connection((self.srv.host, self.srv.port))
        s.sendall((f"PUT {A}/{rel} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
                   f"Content-Length: {total}\r\n\r\n").encode())
        chunk = b"z" * 65536
        sent = 0
        while sent < send:
            n = min(len(chunk), send - sent)
            s.sendall(chunk[:n])
            sent += n
        time.sleep(0.2)
        s.close()

    def wait_no_temporaries(self):
        deadline = time.monotonic() + 10
        while self.temporaries() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.temporaries(), [])

    def test_interrupted_upload_leaves_nothing(self):
        self.raw_partial_put("5/cut.bin", 10 << 20, 3 << 20)
        self.wait_no_temporaries()
        self.assertEqual(self.get("5/cut.bin")[0], 404)
        self.assertEqual(self.listing("5"), (200, {}))
        # An interrupted overwrite keeps the previous version whole.
        self.assertEqual(self.put("5/keep.bin", b"old" * 1000)[0], 200)
        self.raw_partial_put("5/keep.bin", 10 << 20, 1 << 20)
        self.wait_no_temporaries()
        self.assertEqual(self.get("5/keep.bin")[2], b"old" * 1000)
        # The server is still fine.
        self.assertEqual(self.srv.request("GET", "/health")[0], 200)

    # -- path safety ----------------------------------------------------------

    def test_traversal_refused(self):
        before = self.outside_snapshot()
        attacks = ["../x", "a/../../x", "..", "%2e%2e/x", "%2E%2E/%2e%2e/x", "%252e%252e/x",
                   "..%2fx", "%2e%2e%2fx", "a/%2e%2e%2f%2e%2e%2fx", "%25252e%25252e/x",
                   "/etc/passwd", "%2fetc%2fpasswd", "a%5c..%5cb", "a\\..\\x", "C:/x", "c%3a/x",
                   "a%23b", "a%00b", "x/.tally-upload-0000", ".tally-x/y"]
        for rel in attacks:
            for method in ["PUT", "GET", "DELETE"]:
                body = b"pwned" if method == "PUT" else None
                st, _, data = self.req(method, f"{A}/{rel}", body)
                self.assert_invalid(st, self.srv._decode(data), f"{method} {rel}")
            st, body = self.listing(urllib.parse.unquote(rel))
            self.assert_invalid(st, body, f"list {rel}")
            st, _, data = self.req("POST", f"/api/2.0/mlflow-artifacts/mpu/create/{rel}",
                                   json.dumps({"path": rel}), {"Content-Type": "application/json"})
            self.assert_invalid(st, self.srv._decode(data), f"mpu {rel}")
        self.assertEqual(self.outside_snapshot(), before)
        for name in ["x", "pwned", "passwd"]:
            self.assertFalse(os.path.exists(os.path.join(os.path.dirname(self.srv.data_dir), name)))

    def test_symlinks_inside_root_are_not_followed(self):
        os.makedirs(os.path.join(self.root, "6"), exist_ok=True)
        os.symlink(self.outside, os.path.join(self.root, "6", "evil_dir"))
        os.symlink(os.path.join(self.outside, "secret.txt"), os.path.join(self.root, "6", "evil.txt"))
        before = self.outside_snapshot()
        for rel in ["6/evil_dir/secret.txt", "6/evil_dir/new.txt", "6/evil_dir/sub/new.txt"]:
            st, body = self.put(rel, b"pwned")
            self.assert_invalid(st, body, "PUT " + rel)
            st, _, data = self.get(rel)
            self.assert_invalid(st, self.srv._decode(data), "GET " + rel)
            st, _, data = self.req("DELETE", f"{A}/{rel}")
            self.assert_invalid(st, self.srv._decode(data), "DELETE " + rel)
        st, _, data = self.get("6/evil.txt")
        self.assert_invalid(st, self.srv._decode(data), "GET symlinked file")
        st, body = self.listing("6/evil_dir")
        self.assert_invalid(st, body, "list through symlink")
        # Symlinks are never listed.
        self.assertEqual(self.listing("6"), (200, {}))
        self.assertEqual(self.outside_snapshot(), before)
        self.assertEqual(sorted(os.listdir(self.outside)), ["secret.txt"])
        # Deleting the link removes the link itself, never its target.
        st, _, _ = self.req("DELETE", f"{A}/6/evil_dir")
        self.assertEqual(st, 200)
        self.assertFalse(os.path.lexists(os.path.join(self.root, "6", "evil_dir")))
        # Uploading over a symlinked file replaces the link, not the target.
        self.assertEqual(self.put("6/evil.txt", b"replaced")[0], 200)
        self.assertFalse(os.path.islink(os.path.join(self.root, "6", "evil.txt")))
        with open(os.path.join(self.outside, "secret.txt")) as f:
            self.assertEqual(f.read(), "secret")

    def test_multipart_not_implemented(self):
        for op in ["create", "complete", "abort"]:
            st, _, data = self.req("POST", f"/api/2.0/mlflow-artifacts/mpu/{op}/7/big.bin",
                                   json.dumps({"path": "7/big.bin", "num_parts": 3}),
                                   {"Content-Type": "application/json"})
            body = json.loads(data)
            self.assertEqual(st, 501, op)
            self.assertEqual(body["error_code"], "NOT_IMPLEMENTED")
            self.assertTrue(body["message"].startswith(
                "Multipart upload is not supported for the current artifact repository"))

    # -- legacy UI endpoints ----------------------------------------------------

    def test_get_artifact_and_ajax_upload(self):
        st, body = self.srv.api("experiments/create", {"name": "legacy"})
        exp = body["experiment_id"]
        st, body = self.srv.api("runs/create", {"experiment_id": exp, "start_time": 1})
        run = body["run"]["info"]
        self.assertEqual(run["artifact_uri"], f"mlflow-artifacts:/{exp}/{run['run_id']}/artifacts")
        self.assertEqual(self.put(f"{exp}/{run['run_id']}/artifacts/plots/a.png", b"PNG")[0], 200)
        q = urllib.parse.urlencode({"run_id": run["run_id"], "path": "plots/a.png"})
        st, h, data = self.req("GET", "/get-artifact?" + q)
        self.assertEqual((st, data, h["content-type"]), (200, b"PNG", "image/png"))
        self.assertEqual(h["x-content-type-options"], "nosniff")
        q = urllib.parse.urlencode({"run_uuid": run["run_id"], "path": "../../x"})
        st, _, data = self.req("GET", "/get-artifact?" + q)
        self.assert_invalid(st, self.srv._decode(data), "get-artifact traversal")
        st, _, data = self.req("GET", "/get-artifact?run_id=" + "0" * 32 + "&path=a")
        self.assertEqual(st, 404)
        # The UI's upload: raw body, parameters in the query, at most 10 MB.
        q = urllib.parse.urlencode({"run_uuid": run["run_id"], "path": "notes/n.txt"})
        st, _, data = self.req("POST", "/ajax-api/2.0/mlflow/upload-artifact?" + q, b"note",
                               {"Content-Type": "text/plain"})
        self.assertEqual((st, json.loads(data)), (200, {}))
        st, _, data = self.get(f"{exp}/{run['run_id']}/artifacts/notes/n.txt")
        self.assertEqual(data, b"note")
        st, _, data = self.req("POST", "/ajax-api/2.0/mlflow/upload-artifact?" + q,
                               b"x" * (10 * 1024 * 1024 + 1), {"Content-Type": "text/plain"})
        self.assertEqual(st, 400)
        self.assertEqual(self.get(f"{exp}/{run['run_id']}/artifacts/notes/n.txt")[2], b"note")
        st, _, _ = self.req("POST", "/api/2.0/mlflow/upload-artifact?" + q, b"x")
        self.assertEqual(st, 404)  # ajax only
        self.wait_no_temporaries()

    # -- a file larger than 1 GiB, streamed both ways ---------------------------

    def test_big_file_streamed_with_bounded_rss(self):
        pid = self.srv.proc.pid
        h_up = hashlib.sha256()
        conn = self.srv.connection(timeout=600)
        sampler = RssSampler(pid)
        sampler.start()
        t0 = time.monotonic()
        conn.putrequest("PUT", f"{A}/8/big.bin")
        conn.putheader("Content-Type", "application/octet-stream")
        conn.putheader("Content-Length", str(BIG))
        conn.endheaders()
        sent, i = 0, 0
        while sent < BIG:
            block = pattern_block(i)[:BIG - sent]
            h_up.update(block)
            conn.send(block)
            sent += len(block)
            i += 1
        r = conn.getresponse()
        self.assertEqual((r.status, json.loads(r.read())), (200, {}))
        up_s = time.monotonic() - t0
        up_growth = sampler.stop()
        conn.close()
        self.assertEqual(os.path.getsize(os.path.join(self.root, "8", "big.bin")), BIG)

        sampler = RssSampler(pid)
        sampler.start()
        t0 = time.monotonic()
        conn = self.srv.connection(timeout=600)
        conn.request("GET", f"{A}/8/big.bin")
        r = conn.getresponse()
        self.assertEqual(r.status, 200)
        self.assertEqual(int(r.getheader("Content-Length")), BIG)
        h_down = hashlib.sha256()
        got = 0
        while True:
            chunk = r.read(1 << 20)
            if not chunk:
                break
            h_down.update(chunk)
            got += len(chunk)
        conn.close()
        down_s = time.monotonic() - t0
        down_growth = sampler.stop()
        print(f"\n  1 GiB+: upload {BIG / up_s / 1e6:.0f} MB/s, RSS +{up_growth >> 10} KiB "
              f"({sampler.samples} samples); download {BIG / down_s / 1e6:.0f} MB/s, "
              f"RSS +{down_growth >> 10} KiB", file=sys.stderr)
        self.assertEqual(got, BIG)
        self.assertEqual(h_down.hexdigest(), h_up.hexdigest())
        self.assertLess(up_growth, RSS_BOUND)
        self.assertLess(down_growth, RSS_BOUND)
        st, _, _ = self.req("DELETE", f"{A}/8")
        self.assertEqual(st, 200)


def sync_counters(srv):
    """The artifact syncer's counters from /metrics ({} when it has none)."""
    out = {}
    for line in srv.metrics_text().splitlines():
        m = re.match(r"tally_artifact_sync_(\w+?)(?:_total)? (\d+)$", line)
        if m:
            out[m.group(1)] = int(m.group(2))
    return out


def content(i, n):
    """n bytes unique to file i (a torn or swapped file never matches)."""
    return (hashlib.sha256(b"%d" % i).digest() * (n // 32 + 1))[:n]


class FsyncModes(unittest.TestCase):
    def upload(self, srv, rel, data):
        st, _, body = srv.request("PUT", f"{A}/{rel}", data,
                                  {"Content-Type": "application/octet-stream"})
        self.assertEqual((st, body), (200, b"{}"), rel)

    def test_always_mode_serves_the_same(self):
        with TallyServer(["--artifact-fsync", "always"]) as srv:
            for i in range(5):
                self.upload(srv, f"a/{i}.bin", content(i, 1000 + 70000 * i))
            for i in range(5):
                st, _, data = srv.request("GET", f"{A}/a/{i}.bin")
                self.assertEqual((st, data), (200, content(i, 1000 + 70000 * i)))
            self.assertEqual(sync_counters(srv), {})  # no syncer in this mode

    def test_background_synced_promptly_and_drained_at_shutdown(self):
        srv = TallyServer(["--artifact-fsync", "background"]).start()
        try:
            for i in range(20):
                self.upload(srv, f"b/{i % 3}/{i}.bin", content(i, 5000 * i))
                st, _, data = srv.request("GET", f"{A}/b/{i % 3}/{i}.bin")
                self.assertEqual((st, data), (200, content(i, 5000 * i)))
            deadline = time.monotonic() + 5.0  # the syncer starts at once; 5 s for loaded CI disks
            while True:
                c = sync_counters(srv)
                if c["synced"] + c["refused"] == 20 or time.monotonic() > deadline:
                    break
                time.sleep(0.01)
            self.assertEqual(c["pushed"] + c["refused"], 20, c)
            self.assertEqual((c["synced"], c["queued"], c["failed"]), (c["pushed"], 0, 0), c)
            # Files deleted (with their directory) while maybe still queued:
            # fsync of an unlinked file or a removed directory is no failure.
            for i in range(10):
                self.upload(srv, f"gone/{i}.bin", content(i, 3000))
            st, _, _ = srv.request("DELETE", f"{A}/gone")
            self.assertEqual(st, 200)
            # Shutdown right after a burst of uploads: the queue is drained.
            for i in range(30):
                self.upload(srv, f"c/{i}.bin", content(i, 3000))
            srv.stop()  # asserts exit code 0: no fsync failed
            with open(srv.log_path) as f:
                drained = [json.loads(line) for line in f
                           if "artifact syncer drained" in line]
            self.assertEqual(len(drained), 1)
            d = drained[0]
            self.assertEqual(d["pushed"] + d["refused"], 60, d)
            self.assertEqual((d["synced"], d["failed"]), (d["pushed"], 0), d)
        finally:
            srv.stop(expect_code=None)
            srv.cleanup()

    def test_sigkill_right_after_the_ack_keeps_the_file(self):
        srv = TallyServer().start()  # the default mode: background
        try:
            sizes = [0, 1, 4096, 300000, 3 << 20, (8 << 20) + 77]
            acked = {}
            for rnd in range(6):
                for k, n in enumerate(sizes):
                    i = rnd * 100 + k
                    rel = f"k/{rnd}/f{k}.bin"
                    self.upload(srv, rel, content(i, n))
                    acked[rel] = content(i, n)
                # Overwrite one file, then kill -9 the moment its 200 is read.
                rel = f"k/{rnd}/f{rnd % len(sizes)}.bin"
                acked[rel] = content(10000 + rnd, 2 << 20)
                self.upload(srv, rel, acked[rel])
                srv.stop(expect_code=-signal.SIGKILL, sig=signal.SIGKILL)
                srv.start()
                for r, want in acked.items():
                    st, _, data = srv.request("GET", f"{A}/{r}")
                    self.assertEqual(st, 200, r)
                    self.assertEqual(len(data), len(want), r)
                    self.assertTrue(data == want, r)
                root = os.path.join(srv.data_dir, "artifacts")
                left = [f for _, _, fs in os.walk(root) for f in fs if f.startswith(".tally-")]
                self.assertEqual(left, [])
        finally:
            srv.stop(expect_code=None)
            srv.cleanup()

    def test_direct_writes_on_and_off(self):
        # Past 4 MiB an upload's writer thread takes over (at an unaligned
        # offset for these piece sizes); with direct writes on (the default)
        # its aligned body goes to disk with O_DIRECT, its head and tail
        # through the page cache. Every byte must come back in both modes.
        sizes = [(4 << 20) - 1, 4 << 20, (4 << 20) + 1, (9 << 20) + 77, (13 << 20) + 4095]
        for args in ([], ["--artifact-direct-writes", "0"]):
            with TallyServer(args) as srv:
                for i, n in enumerate(sizes):
                    self.upload(srv, f"d/{i}.bin", content(i, n))
                for i, n in enumerate(sizes):
                    st, _, data = srv.request("GET", f"{A}/d/{i}.bin")
                    self.assertEqual(st, 200, (args, n))
                    self.assertEqual(len(data), n, (args, n))
                    self.assertTrue(data == content(i, n), (args, n))

    def test_bad_values_refused_at_start(self):
        base = os.environ.get("TALLY_TEST_TMP") or None
        with tempfile.TemporaryDirectory(prefix="tally-it-", dir=base) as tmp:
            conf = os.path.join(tmp, "tally.conf")
            with open(conf, "w") as f:
                f.write("artifact_fsync = weekly\n")
            data = os.path.join(tmp, "data")
            cases = [
                (["--artifact-fsync", "sometimes"], {},
                 "flag --artifact-fsync: artifact_fsync must be always or background, not 'sometimes'"),
                ([], {"TALLY_ARTIFACT_FSYNC": "nope"},
                 "TALLY_ARTIFACT_FSYNC: artifact_fsync must be always or background, not 'nope'"),
                (["--config", conf], {},
                 f"file {conf}:1: artifact_fsync must be always or background, not 'weekly'"),
                (["--artifact-direct-writes", "maybe"], {},
                 "flag --artifact-direct-writes: artifact_direct_writes must be 0 or 1, not 'maybe'"),
            ]
            for args, env, msg in cases:
                p = subprocess.run([tally_binary(), "serve", "--port", "0", "--data", data] + args,
                                   env=dict(os.environ, **env), capture_output=True,
                                   timeout=30)
                self.assertEqual(p.returncode, 2, (args, env, p.stderr))
                self.assertIn(msg, p.stderr.decode(), (args, env))
                self.assertEqual(p.stdout, b"", (args, env))  # never started listening


class Sweep(unittest.TestCase):
    def test_stale_temporaries_removed_at_start(self):
        srv = TallyServer().start()
        try:
            st, _, _ = srv.request("PUT", f"{A}/1/a/keep.txt", b"keep")
            self.assertEqual(st, 200)
            srv.stop()
            d = os.path.join(srv.data_dir, "artifacts", "1", "a")
            stale = os.path.join(d, ".tally-upload-0123456789abcdef")
            with open(stale, "wb") as f:
                f.write(b"half an upload")
            srv.start()
            self.assertFalse(os.path.exists(stale))
            self.assertEqual(sorted(os.listdir(d)), ["keep.txt"])
            st, _, data = srv.request("GET", f"{A}/1/a/keep.txt")
            self.assertEqual((st, data), (200, b"keep"))
            srv.stop()
        finally:
            srv.stop(expect_code=None)
            srv.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
