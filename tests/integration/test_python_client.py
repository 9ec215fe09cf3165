"""test_python_client.py — the Python client (clients/python, package
tally_client) against a real `tally serve`:

- `pip install ./clients/python` into a fresh venv works with no package
  index, and the installed package imports and logs;
- a run created through MLflow's REST endpoints, metrics logged per call, per
  dict and as whole columns, read back exactly through get-history (NaN,
  ±inf, -0.0, large steps and timestamps, repeated steps), params and tags
  through runs/get, the run ended FINISHED (FAILED when the block raises);
- MLFLOW_TRACKING_URI, MLFLOW_EXPERIMENT_NAME and MLFLOW_RUN_ID are read as
  MLflow reads them;
- bad arguments raise at the call and leave nothing behind;
- retries: a proxy in front of the server answers 503 + Retry-After and drops
  connections for a while; every point still arrives exactly once;
- bounded memory: with the server unreachable the buffer stops at its bound
  and log_metric raises BufferFull after block_timeout;
- flush at exit: a script that logs and just exits leaves every point stored
  and its run FINISHED.
"""

import http.client
import http.server
import json
import math
import os
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CLIENT = os.path.join(REPO, "clients", "python")
sys.path.insert(0, HERE)
sys.path.insert(0, CLIENT)
from server_harness import TallyServer  # noqa: E402

import tally_client  # noqa: E402
from tally_client import BufferFull, MetricLogger, Run, TallyError  # noqa: E402

SRV = None


def setUpModule():
    global SRV
    SRV = TallyServer().start()


def tearDownModule():
    SRV.stop()
    SRV.cleanup()


def history(run_id, key):
    status, body = SRV.get("/api/2.0/mlflow/metrics/get-history",
                           {"run_id": run_id, "metric_key": key})
    assert status == 200, body
    return body.get("metrics", [])


def as_float(v):
    return float(v) if not isinstance(v, str) else float(v.replace("Infinity", "inf"))


def get_run(run_id):
    status, body = SRV.api("runs/get", method="GET", params={"run_id": run_id})
    assert status == 200, body
    return body["run"]


def same_float(a, b):
    a, b = as_float(a), as_float(b)
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return struct.pack("<d", a) == struct.pack("<d", b)


class FlakyProxy:
    """An HTTP proxy to the server that fails the first `fail` ingest
    requests: alternately 503 with Retry-After: 0 and a dropped connection."""

    def __init__(self, target_port, fail):
        self.fail_left = fail
        self.ingest_seen = 0
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _forward(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                if "/tally/ingest" in self.path:
                    with proxy.lock:
                        proxy.ingest_seen += 1
                        failing = proxy.fail_left > 0
                        if failing:
                            proxy.fail_left -= 1
                            kind = proxy.fail_left % 2
                    if failing and kind == 0:
                        self.send_response(503)
                        self.send_header("Retry-After", "0")
                        self.send_header("Content-Type", "application/json")
                        msg = b'{"error_code": "TEMPORARILY_UNAVAILABLE", "message": "busy"}'
                        self.send_header("Content-Length", str(len(msg)))
                        self.end_headers()
                        self.wfile.write(msg)
                        return
                    if failing:
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return
                c = http.client.HTTPConnection("127.0.0.1", target_port, timeout=30)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "connection")}
                c.request(self.command, self.path, body=body, headers=headers)
                r = c.getresponse()
                data = r.read()
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() not in ("connection", "transfer-encoding", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                c.close()

            do_GET = do_POST = _forward

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class PythonClientTest(unittest.TestCase):
    def uri(self):
        return SRV.base_url

    def test_install_with_pip_offline(self):
        with tempfile.TemporaryDirectory(prefix="tally-pyclient-") as tmp:
            venv = os.path.join(tmp, "venv")
            subprocess.run([sys.executable, "-m", "venv", venv], check=True)
            py = os.path.join(venv, "bin", "python")
            env = dict(os.environ, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
            r = subprocess.run([py, "-m", "pip", "install", "--no-index", CLIENT],
                               capture_output=True, text=True, env=env, cwd=tmp)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            script = ("import tally_client as t, sys\n"
                      "assert t.__file__.startswith(sys.prefix), t.__file__\n"
                      "with t.start_run(run_name='from-venv') as run:\n"
                      "    t.log_metric('x', 1.5, step=3)\n"
                      "print(run.run_id)\n")
            r = subprocess.run([py, "-c", script], capture_output=True, text=True, cwd=tmp,
                               env=dict(os.environ, MLFLOW_TRACKING_URI=self.uri()))
            self.assertEqual(r.returncode, 0, r.stderr)
            run_id = r.stdout.strip()
            pts = history(run_id, "x")
            self.assertEqual([(p["step"], p["value"]) for p in pts], [(3, 1.5)])
            self.assertEqual(get_run(run_id)["info"]["status"], "FINISHED")

    def test_run_lifecycle_and_exact_round_trip(self):
        specials = [float("nan"), float("inf"), float("-inf"), -0.0, 5e-324, 1.7976931348623157e308]
        with tally_client.start_run(experiment_name="pyclient-e2e", run_name="exact",
                                    tracking_uri=self.uri(), tags={"team": "core"}) as run:
            self.assertIs(tally_client.active_run(), run)
            for i in range(5000):
                tally_client.log_metric("loss", 1.0 / (i + 1), step=i, timestamp=1_700_000_000_000 + i)
            for i, v in enumerate(specials):
                run.log_metric("special", v, step=i, timestamp=1000 + i)
            run.log_metric("big", 2.5, step=(1 << 62), timestamp=(1 << 52))
            run.log_metric("dup", 1.0, step=7, timestamp=5)
            run.log_metric("dup", 2.0, step=7, timestamp=5)
            tally_client.log_metrics({"a": 1, "b": True}, step=9, timestamp=77)
            run.log_series("col", [0.5 * i for i in range(20000)], steps=range(20000),
                           timestamps=[3] * 20000)
            # One key through both paths before a flush: two records of one
            # series in one frame.
            run.log_metric("mixed", 1.0, step=0, timestamp=1)
            run.log_series("mixed", [2.0, 3.0], steps=[1, 2], timestamps=[2, 3])
            run.log_metric("mixed", 4.0, step=3, timestamp=4)
            tally_client.log_params({"lr": 0.001, "long": "v" * 5000, "huge": "w" * 9000})
            tally_client.log_param("opt", "adam")
            tally_client.set_tags({"stage": "train"})
            tally_client.set_tag("note", "ok")
            run_id = run.run_id
        self.assertIsNone(tally_client.active_run())
        info = get_run(run_id)
        self.assertEqual(info["info"]["status"], "FINISHED")
        self.assertIn("end_time", info["info"])
        params = {p["key"]: p["value"] for p in info["data"]["params"]}
        # MLflow truncates param values to 6000 characters (mlflow-rest-api.md §6).
        self.assertEqual(params, {"lr": "0.001", "long": "v" * 5000, "huge": "w" * 6000,
                                  "opt": "adam"})
        tags = {t["key"]: t["value"] for t in info["data"]["tags"]}
        self.assertEqual(tags["team"], "core")
        self.assertEqual(tags["stage"], "train")
        self.assertEqual(tags["note"], "ok")
        self.assertEqual(tags["mlflow.runName"], "exact")
        self.assertIn("mlflow.user", tags)

        loss = history(run_id, "loss")
        self.assertEqual(len(loss), 5000)
        got = sorted((p["step"], p["timestamp"], as_float(p["value"])) for p in loss)
        self.assertEqual(got, [(i, 1_700_000_000_000 + i, 1.0 / (i + 1)) for i in range(5000)])
        sp = sorted(history(run_id, "special"), key=lambda p: p["step"])
        self.assertEqual(len(sp), len(specials))
        for p, v in zip(sp, specials):
            self.assertTrue(same_float(p["value"], v), (p, v))
        self.assertEqual([(p["step"], p["timestamp"]) for p in history(run_id, "big")],
                         [(1 << 62, 1 << 52)])
        self.assertEqual(sorted(as_float(p["value"]) for p in history(run_id, "dup")), [1.0, 2.0])
        self.assertEqual([as_float(p["value"]) for p in history(run_id, "b")], [1.0])
        self.assertEqual(sorted((p["step"], as_float(p["value"])) for p in history(run_id, "mixed")),
                         [(0, 1.0), (1, 2.0), (2, 3.0), (3, 4.0)])
        col = history(run_id, "col")
        self.assertEqual(len(col), 20000)
        self.assertEqual(sorted((p["step"], as_float(p["value"])) for p in col),
                         [(i, 0.5 * i) for i in range(20000)])
        # The experiment was created by name, and the run is found by search.
        status, body = SRV.api("runs/search", {"experiment_ids": [info["info"]["experiment_id"]]})
        self.assertEqual(status, 200)
        self.assertEqual([r["info"]["run_id"] for r in body["runs"]], [run_id])

    def test_failed_block_ends_failed(self):
        with self.assertRaises(ZeroDivisionError):
            with Run(tracking_uri=self.uri()) as run:
                run.log_metric("m", 1.0)
                1 / 0
        self.assertEqual(get_run(run.run_id)["info"]["status"], "FAILED")
        self.assertEqual(len(history(run.run_id, "m")), 1)

    def test_environment_variables(self):
        status, body = SRV.api("experiments/create", {"name": "env-exp"})
        self.assertEqual(status, 200)
        exp_id = body["experiment_id"]
        old = dict(os.environ)
        try:
            os.environ["MLFLOW_TRACKING_URI"] = self.uri()
            os.environ["MLFLOW_EXPERIMENT_NAME"] = "env-exp"
            with Run() as run:
                run.log_metric("m", 2.0)
            self.assertEqual(run.experiment_id, exp_id)
            os.environ["MLFLOW_RUN_ID"] = run.run_id
            with Run() as resumed:  # resumes the same run
                resumed.log_metric("m", 3.0, step=1)
            self.assertEqual(resumed.run_id, run.run_id)
            self.assertEqual(len(history(run.run_id, "m")), 2)
            os.environ["MLFLOW_TRACKING_URI"] = "file:///tmp/mlruns"
            with self.assertRaises(ValueError):
                Run()
            os.environ.pop("MLFLOW_RUN_ID")
            os.environ["MLFLOW_TRACKING_URI"] = self.uri()
            os.environ["MLFLOW_EXPERIMENT_NAME"] = "no-such-experiment"
            with self.assertRaises(TallyError) as cm:
                Run()
            self.assertEqual(cm.exception.error_code, "RESOURCE_DOES_NOT_EXIST")
        finally:
            os.environ.clear()
            os.environ.update(old)

    def test_bad_arguments_raise_and_leave_nothing(self):
        with Run(tracking_uri=self.uri()) as run:
            for bad in ("1.0", None, [1], b"x"):
                with self.assertRaises(TypeError):
                    run.log_metric("m", bad)
            for bad in (1.5, "3", None):
                with self.assertRaises(TypeError):
                    run.log_metric("m", 1.0, step=bad if bad is not None else [])
            with self.assertRaises(OverflowError):
                run.log_metric("m", 1.0, step=1 << 63)
            with self.assertRaises(OverflowError):
                run.log_metric("m", 1.0, timestamp=-(1 << 64))
            for key in ("", "../up", "/abs", "a//b", "bad\nkey", "x" * 251, "a/./b"):
                with self.assertRaises(ValueError):
                    run.log_metric(key, 1.0)
            with self.assertRaises(TypeError):
                run.log_metric(7, 1.0)
            with self.assertRaises(ValueError):
                run.log_series("s", [1.0, 2.0], steps=[1])
            run.log_metric("m", 4.0, step=1)
            self.assertTrue(run.flush(30))
            run.log_params({"p": "first"})
            with self.assertRaises(TallyError) as cm:
                run.log_params({"p": "changed"})  # params are write-once (MLflow §4)
            self.assertEqual((cm.exception.status, cm.exception.error_code),
                             (400, "INVALID_PARAMETER_VALUE"))
        self.assertEqual([(p["step"], as_float(p["value"])) for p in history(run.run_id, "m")],
                         [(1, 4.0)])
        self.assertEqual(run.metrics.errors, [])

    def test_retries_through_a_flaky_proxy(self):
        with Run(tracking_uri=self.uri()) as setup:
            run_id = setup.run_id
            setup.log_metric("warm", 0.0)
        SRV.api("runs/update", {"run_id": run_id, "status": "RUNNING"})
        proxy = FlakyProxy(SRV.port, fail=6)
        try:
            logger = MetricLogger(run_id, f"http://127.0.0.1:{proxy.port}", batch_points=1000)
            for i in range(10000):
                logger.log_metric("flaky", float(i), step=i, timestamp=i)
            self.assertTrue(logger.close(timeout=120))
            self.assertEqual(logger.errors, [])
            self.assertEqual(logger.sent_points, 10000)
            self.assertGreaterEqual(proxy.ingest_seen, 10 + 6)
        finally:
            proxy.close()
        pts = history(run_id, "flaky")
        self.assertEqual(sorted(p["step"] for p in pts), list(range(10000)))

    def test_bounded_memory_when_server_is_down(self):
        # A port nobody listens on: every send fails and is retried.
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
        s.close()
        logger = MetricLogger("0" * 32, f"http://127.0.0.1:{dead}", batch_points=100,
                              max_buffered_points=1000, block_timeout=0.3)
        with self.assertRaises(BufferFull):
            for i in range(100000):
                logger.log_metric("m", 1.0, step=i)
        self.assertLessEqual(logger.buffered_points, 1000)
        self.assertFalse(logger.close(timeout=0.5))
        self.assertEqual(logger.dropped_points, logger._accepted - logger.sent_points)
        self.assertGreater(logger.dropped_points, 0)
        self.assertTrue(logger.errors)

    def test_final_error_is_reported_not_retried(self):
        logger = MetricLogger("f" * 32, SRV.base_url, batch_points=10)  # unknown run: 404
        for i in range(25):
            logger.log_metric("m", 1.0, step=i)
        self.assertFalse(logger.close(timeout=30))
        self.assertEqual(logger.dropped_points, 25)
        self.assertEqual({e.error_code for e in logger.errors}, {"RESOURCE_DOES_NOT_EXIST"})

    def test_flush_at_exit(self):
        script = ("import sys; sys.path.insert(0, %r)\n"
                  "import tally_client as t\n"
                  "run = t.start_run(run_name='atexit', batch_points=1000000)\n"
                  "for i in range(30000):\n"
                  "    t.log_metric('m', float(i), step=i)\n"
                  "print(run.run_id, flush=True)\n") % CLIENT
        r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           env=dict(os.environ, MLFLOW_TRACKING_URI=self.uri()), timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        run_id = r.stdout.strip()
        self.assertEqual(len(history(run_id, "m")), 30000)
        self.assertEqual(get_run(run_id)["info"]["status"], "FINISHED")


if __name__ == "__main__":
    unittest.main(verbosity=2)
