"""server_harness.py — run a real `tally serve` for integration tests (stdlib only).

Usage from a test file in tests/integration/:

    from server_harness import TallyServer
    with TallyServer() as srv:                 # fresh data dir, any free port
        status, body = srv.post("/api/2.0/mlflow/experiments/create", {"name": "e"})
        status, body = srv.get("/api/2.0/mlflow/experiments/get", {"experiment_id": "1"})
    # leaving the block sends SIGTERM and asserts exit code 0

The binary is $TALLY_BIN_DIR/tally (CTest sets TALLY_BIN_DIR to the build
directory); without it, build/tally next to the repo root. The server is started
with --port 0 and the port is read from its "tally listening on http://H:P" line,
so parallel tests never race for a port. Its stderr (request log) goes to
<data>/server.log and is printed when start or stop fails.
"""

import http.client
import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.parse

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def tally_binary():
    d = os.environ.get("TALLY_BIN_DIR") or os.path.join(REPO, "build")
    path = os.path.join(d, "tally")
    if not os.path.exists(path):
        raise RuntimeError(f"no tally binary at {path} (set TALLY_BIN_DIR)")
    return path


class TallyServer:
    """A `tally serve` subprocess with JSON helpers.

    args: extra command-line flags, e.g. ["--max-body-bytes", "1K"].
    data_dir: reuse a directory (e.g. to test restarts); default a fresh one.
    """

    def __init__(self, args=(), data_dir=None, env=None, start_timeout=30.0):
        self.args = list(args)
        base = os.environ.get("TALLY_TEST_TMP") or None
        if base:
            os.makedirs(base, exist_ok=True)
        self._tmp = None
        if data_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="tally-it-", dir=base)
            data_dir = os.path.join(self._tmp.name, "data")
        self.data_dir = data_dir
        self.env = dict(os.environ, **(env or {}))
        self.start_timeout = start_timeout
        self.proc = None
        self.host = "127.0.0.1"
        self.port = None
        self.log_path = None
        self._conn = None

    # -- lifecycle ---------------------------------------------------------

    def start(self):
        os.makedirs(self.data_dir, exist_ok=True)
        self.log_path = os.path.join(os.path.dirname(self.data_dir.rstrip("/")) or ".",
                                     os.path.basename(self.data_dir.rstrip("/")) + "-server.log")
        log = open(self.log_path, "ab")
        cmd = [tally_binary(), "serve", "--host", self.host, "--port", "0",
               "--data", self.data_dir] + self.args
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, env=self.env)
        log.close()
        deadline = time.monotonic() + self.start_timeout
        line = self.proc.stdout.readline().decode(errors="replace")
        if "tally listening on http://" not in line:
            self.proc.wait(timeout=10)
            raise RuntimeError(f"server did not start (exit {self.proc.returncode}): "
                               f"{line!r}\n{self.log_tail()}")
        hostport = line.split("http://", 1)[1].split()[0]
        self.port = int(hostport.rsplit(":", 1)[1])
        while time.monotonic() < deadline:
            try:
                status, _, _ = self.request("GET", "/health")
                if status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("server never became healthy\n" + self.log_tail())

    def stop(self, expect_code=0, timeout=60.0, sig=signal.SIGTERM):
        """Sends sig, waits, and asserts the exit code (None: don't check)."""
        if self._conn:
            self._conn.close()
            self._conn = None
        if not self.proc:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("server did not exit after SIGTERM\n" + self.log_tail())
        finally:
            if self.proc.stdout:
                self.proc.stdout.close()
        self.proc = None
        if expect_code is not None and code != expect_code:
            raise AssertionError(f"server exited {code}, expected {expect_code}\n" + self.log_tail())
        return code

    def cleanup(self):
        if self._tmp:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, exc, tb):
        try:
            self.stop(expect_code=None if exc_type else 0)
        finally:
            self.cleanup()
        return False

    def log_tail(self, n=40):
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode(errors="replace").splitlines()
            return "--- server log (tail) ---\n" + "\n".join(lines[-n:])
        except (OSError, TypeError):
            return "(no server log)"

    # -- requests ----------------------------------------------------------

    @property
    def base_url(self):
        return f"http://{self.host}:{self.port}"

    def connection(self, timeout=30.0):
        """A new http.client connection to the server (caller closes it)."""
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=30.0):
        """One request on a fresh connection. Returns (status, headers dict
        with lower-case names, body bytes)."""
        conn = self.connection(timeout)
        try:
            if isinstance(body, str):
                body = body.encode()
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            conn.close()

    @staticmethod
    def _decode(data):
        if not data:
            return None
        try:
            return json.loads(data)
        except ValueError:
            return data.decode(errors="replace")

    def get(self, path, params=None, headers=None):
        """GET path?params (a dict; list values repeat the key). Returns
        (status, parsed JSON or text)."""
        if params:
            path += "?" + urllib.parse.urlencode(params, doseq=True)
        status, _, data = self.request("GET", path, headers=headers)
        return status, self._decode(data)

    def post(self, path, obj=None, headers=None, method="POST"):
        """Sends obj as JSON (Content-Type: application/json). Returns
        (status, parsed JSON or text)."""
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        body = json.dumps(obj if obj is not None else {})
        status, _, data = self.request(method, path, body=body, headers=h)
        return status, self._decode(data)

    def api(self, rel, obj=None, method="POST", params=None):
        """Shorthand for /api/2.0/mlflow/<rel>: POST obj, or GET params."""
        path = "/api/2.0/mlflow/" + rel
        if method == "GET":
            return self.get(path, params)
        return self.post(path, obj, method=method)

    def metrics_text(self):
        status, _, data = self.request("GET", "/metrics")
        assert status == 200, status
        return data.decode()
