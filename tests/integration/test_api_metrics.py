"""test_api_metrics.py — the metric endpoints against a real `tally serve`:
MLflow's log-metric, log-batch, get-history, get-history-bulk-interval,
get-history-bulk (mlflow-rest-api.md §3.3, §3.4, §4.1, §4.2, §4.4-§4.6, §6)
and Tally's native ingest and query (docs/api.md, "Native API").

Success and error paths with exact statuses and error codes; NaN/inf round
trips; duplicates collapsed, same-step points kept; latest metric per §4.2;
paging with the 25000 cap and without max_results; bulk-interval against a
Python transcription of §4.6; native ingest then query (M4 checked against
brute force); concurrent writers read back exactly; SIGKILL while logging,
restart, every acknowledged point present.

Python stdlib only; run directly (python3 test_api_metrics.py) or by CTest
with TALLY_BIN_DIR pointing at the build directory.
"""

import json
import math
import os
import random
import signal
import struct
import sys
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_harness import TallyServer  # noqa: E402
from tally_frame import decode_query_binary, encode_frame  # noqa: E402

SRV = None


def setUpModule():
    global SRV
    SRV = TallyServer().start()


def tearDownModule():
    try:
        SRV.stop()
    finally:
        SRV.cleanup()


def api(rel, obj=None, method="POST", params=None, srv=None):
    return (srv or SRV).api(rel, obj, method=method, params=params)


def new_run(srv=None):
    st, body = api("runs/create", {"experiment_id": "0", "start_time": 1}, srv=srv)
    assert st == 200, (st, body)
    return body["run"]["info"]["run_id"]


def log_batch(run_id, metrics=(), params=(), tags=(), srv=None):
    body = {"run_id": run_id}
    if metrics:
        body["metrics"] = [{"key": k, "value": v, "timestamp": t, "step": s} for k, v, t, s in metrics]
    if params:
        body["params"] = [{"key": k, "value": v} for k, v in params]
    if tags:
        body["tags"] = [{"key": k, "value": v} for k, v in tags]
    return api("runs/log-batch", body, srv=srv)


def history(run_id, key, max_results=None, token=None, srv=None):
    params = {"run_id": run_id, "metric_key": key}
    if max_results is not None:
        params["max_results"] = max_results
    if token is not None:
        params["page_token"] = token
    return api("metrics/get-history", method="GET", params=params, srv=srv)


def full_history(run_id, key, srv=None):
    st, body = history(run_id, key, srv=srv)
    assert st == 200, (st, body)
    assert "next_page_token" not in body
    return body.get("metrics", [])


def val(v):
    """A response value as a float ("NaN"/"Infinity" strings included)."""
    return float(v)


def same_value(a, b):
    return (math.isnan(a) and math.isnan(b)) or a == b


def ingest(frame, srv=None, ajax=False):
    s = srv or SRV
    path = ("/ajax-api" if ajax else "/api") + "/2.0/tally/ingest"
    st, _, data = s.request("POST", path, body=frame,
                            headers={"Content-Type": "application/octet-stream"})
    return st, json.loads(data) if data else None


def hist_key(m):
    v = val(m["value"])
    return (m["timestamp"], m["step"], (1, 0.0) if math.isnan(v) else (0, v))


class ErrorAssertions(unittest.TestCase):
    def assertError(self, resp, status, code, contains=None):
        st, body = resp
        self.assertEqual(st, status, body)
        self.assertIsInstance(body, dict, body)
        self.assertEqual(body.get("error_code"), code, body)
        if contains:
            self.assertIn(contains, body.get("message", ""), body)


# ---------------------------------------------------------------------------
# log-metric
# ---------------------------------------------------------------------------


class TestLogMetric(ErrorAssertions):
    def test_log_and_read(self):
        run = new_run()
        st, body = api("runs/log-metric", {"run_id": run, "key": "loss", "value": 0.25,
                                           "timestamp": 1700000000000, "step": 3})
        self.assertEqual((st, body), (200, {}))
        ms = full_history(run, "loss")
        self.assertEqual(ms, [{"key": "loss", "value": 0.25, "timestamp": 1700000000000, "step": 3}])

    def test_scalar_forms(self):
        run = new_run()
        cases = [(True, 1.0), (False, 0.0), ("NaN", float("nan")), ("Infinity", float("inf")),
                 ("-Infinity", float("-inf")), ("0.5", 0.5), (7, 7.0)]
        for i, (v, want) in enumerate(cases):
            st, body = api("runs/log-metric", {"run_uuid": run, "key": "v", "value": v,
                                               "timestamp": str(1000 + i), "step": "%d" % i})
            self.assertEqual(st, 200, (v, body))
        ms = sorted(full_history(run, "v"), key=lambda m: m["step"])
        self.assertEqual(len(ms), len(cases))
        for m, (_, want) in zip(ms, cases):
            self.assertTrue(same_value(val(m["value"]), want), (m, want))
        # Non-finite values come back as MLflow's strings.
        self.assertEqual([m["value"] for m in ms[2:5]], ["NaN", "Infinity", "-Infinity"])
        # step defaults to 0
        api("runs/log-metric", {"run_id": run, "key": "nostep", "value": 1, "timestamp": 5})
        self.assertEqual(full_history(run, "nostep")[0]["step"], 0)

    def test_errors(self):
        run = new_run()
        ok = {"run_id": run, "key": "k", "value": 1.0, "timestamp": 1, "step": 0}

        def without(f):
            d = dict(ok)
            del d[f]
            return d

        for f in ("run_id", "key", "value", "timestamp"):
            self.assertError(api("runs/log-metric", without(f)), 400, "INVALID_PARAMETER_VALUE", f)
        bad = [("key", "a//b"), ("key", "/abs"), ("key", "x" * 251), ("key", "bad*char"),
               ("timestamp", -1), ("value", "abc"), ("value", [1]), ("step", "1.5"),
               ("timestamp", True), ("value", None)]
        for f, v in bad:
            d = dict(ok)
            d[f] = v
            self.assertError(api("runs/log-metric", d), 400, "INVALID_PARAMETER_VALUE")
        self.assertError(api("runs/log-metric", dict(ok, run_id="f" * 32)), 404,
                         "RESOURCE_DOES_NOT_EXIST")
        st, _, data = SRV.request("POST", "/api/2.0/mlflow/runs/log-metric", body=json.dumps(ok))
        self.assertEqual(st, 400)
        self.assertEqual(json.loads(data)["error_code"], "INVALID_PARAMETER_VALUE")
        self.assertEqual(api("runs/delete", {"run_id": run})[0], 200)
        self.assertError(api("runs/log-metric", ok), 400, "INVALID_PARAMETER_VALUE", "active")


# ---------------------------------------------------------------------------
# log-batch
# ---------------------------------------------------------------------------


class TestLogBatch(ErrorAssertions):
    def test_batch_and_semantics(self):
        run = new_run()
        st, body = log_batch(run, metrics=[("loss", 1.0, 100, 5), ("loss", 2.0, 200, 3),
                                           ("loss", 3.0, 100, 5), ("acc", "NaN", 10, 0)],
                             params=[("lr", "0.1")], tags=[("t", "a"), ("t", "b")])
        self.assertEqual((st, body), (200, {}))
        # Duplicates collapse (same key, value, timestamp, step), in one batch and across.
        self.assertEqual(log_batch(run, metrics=[("dup", 1.0, 5, 1), ("dup", 1.0, 5, 1)])[0], 200)
        self.assertEqual(log_batch(run, metrics=[("dup", 1.0, 5, 1)])[0], 200)
        self.assertEqual(len(full_history(run, "dup")), 1)
        # Same step, different timestamp or value: both kept.
        self.assertEqual(log_batch(run, metrics=[("same", 1.0, 5, 1), ("same", 1.0, 6, 1),
                                                 ("same", 2.0, 6, 1)])[0], 200)
        self.assertEqual(len(full_history(run, "same")), 3)
        # Latest metric per §4.2: greatest (step, timestamp, value).
        st, body = api("runs/get", method="GET", params={"run_id": run})
        self.assertEqual(st, 200, body)
        latest = {m["key"]: m for m in body["run"]["data"].get("metrics", [])}
        self.assertEqual(latest["loss"]["value"], 3.0)
        self.assertEqual((latest["loss"]["step"], latest["loss"]["timestamp"]), (5, 100))
        self.assertEqual(latest["acc"]["value"], "NaN")
        self.assertEqual(latest["same"]["value"], 2.0)
        params = {p["key"]: p["value"] for p in body["run"]["data"].get("params", [])}
        tags = {t["key"]: t["value"] for t in body["run"]["data"].get("tags", [])}
        self.assertEqual(params.get("lr"), "0.1")
        self.assertEqual(tags.get("t"), "b")  # last wins
        # Param immutability: same value OK, other value 400.
        self.assertEqual(log_batch(run, params=[("lr", "0.1")])[0], 200)
        self.assertError(log_batch(run, params=[("lr", "0.2")]), 400, "INVALID_PARAMETER_VALUE")

    def test_body_forms(self):
        run = new_run()
        inner = json.dumps({"run_id": run, "metrics": [{"key": "d", "value": 1.5, "timestamp": 1}]})
        st, _, data = SRV.request("POST", "/api/2.0/mlflow/runs/log-batch", body=json.dumps(inner),
                                  headers={"Content-Type": "application/json; charset=utf-8"})
        self.assertEqual(st, 200, data)
        self.assertEqual(full_history(run, "d")[0]["value"], 1.5)
        body = json.dumps({"runId": run, "metrics": [{"key": "e", "value": "2", "timestamp": "3",
                                                      "step": 4.0, "datasetName": "x"}]})
        st, _, data = SRV.request("POST", "/api/2.0/mlflow/runs/log-batch", body=body,
                                  headers={"Content-Type": "application/json"})
        self.assertEqual(st, 200, data)
        self.assertEqual(full_history(run, "e"), [{"key": "e", "value": 2.0, "timestamp": 3, "step": 4}])
        for raw in [b"", b"{", b'{"run_id":"a",}', b"[]", b'{"run_id": abc}', b'{"run_id":"x"} {}']:
            st, _, data = SRV.request("POST", "/api/2.0/mlflow/runs/log-batch", body=raw,
                                      headers={"Content-Type": "application/json"})
            self.assertEqual(st, 400, (raw, data))
            self.assertEqual(json.loads(data)["error_code"], "INVALID_PARAMETER_VALUE")
        st, _, data = SRV.request("POST", "/api/2.0/mlflow/runs/log-batch", body=body,
                                  headers={"Content-Type": "text/plain"})
        self.assertEqual(st, 400)

    def test_error_order_and_messages(self):
        run = new_run()
        m = [{"key": "k", "value": 1, "timestamp": 1, "step": i} for i in range(5)]

        def req(**kw):
            b = {"run_id": run, "metrics": [dict(x) for x in m]}
            b.update(kw)
            return b

        self.assertError(api("runs/log-batch", {"metrics": m}), 400, "INVALID_PARAMETER_VALUE",
                         "'run_id'")
        b = req()
        del b["metrics"][3]["timestamp"]
        self.assertError(api("runs/log-batch", b), 400, "INVALID_PARAMETER_VALUE",
                         "metrics[3].timestamp")
        b = req()
        b["metrics"][2]["value"] = "x"
        self.assertError(api("runs/log-batch", b), 400, "INVALID_PARAMETER_VALUE", "metrics[2].value")
        b = req()
        b["metrics"][4]["key"] = "a/../b"
        self.assertError(api("runs/log-batch", b), 400, "INVALID_PARAMETER_VALUE", "metrics[4].key")
        b = req()
        b["metrics"][1]["timestamp"] = -5
        self.assertError(api("runs/log-batch", b), 400, "INVALID_PARAMETER_VALUE",
                         "metrics[1].timestamp")
        self.assertError(api("runs/log-batch", req(params=[{"value": "v"}])), 400,
                         "INVALID_PARAMETER_VALUE", "params[0].key")
        self.assertError(api("runs/log-batch", req(tags=[{"key": "ok"}, {"key": "bad//"}])), 400,
                         "INVALID_PARAMETER_VALUE", "tags[1].key")
        self.assertError(api("runs/log-batch", req(run_id="-bad id")), 400, "INVALID_PARAMETER_VALUE",
                         "run_id")
        # Type errors come before the run id format (MLflow parses, then validates).
        b = req(run_id="-bad id")
        b["metrics"][0]["value"] = {}
        self.assertError(api("runs/log-batch", b), 400, "INVALID_PARAMETER_VALUE", "metrics[0].value")
        many = [{"key": "k", "value": 1, "timestamp": 1, "step": i} for i in range(1001)]
        self.assertError(api("runs/log-batch", {"run_id": run, "metrics": many}), 400,
                         "INVALID_PARAMETER_VALUE", "at most 1000 metrics")
        # Element errors come before counts.
        many[700]["key"] = "bad//key"
        self.assertError(api("runs/log-batch", {"run_id": run, "metrics": many}), 400,
                         "INVALID_PARAMETER_VALUE", "metrics[700].key")
        ps = [{"key": "p%d" % i, "value": "v"} for i in range(101)]
        self.assertError(api("runs/log-batch", {"run_id": run, "params": ps}), 400,
                         "INVALID_PARAMETER_VALUE", "at most 100 params")
        ts = [{"key": "t%d" % i, "value": "v"} for i in range(101)]
        self.assertError(api("runs/log-batch", {"run_id": run, "tags": ts}), 400,
                         "INVALID_PARAMETER_VALUE", "at most 100 tags")
        many[700]["key"] = "k"
        self.assertError(api("runs/log-batch", {"run_id": run, "metrics": many[:901],
                                                "params": ps[:100]}), 400,
                         "INVALID_PARAMETER_VALUE", "in total")
        # Counts come before duplicate params.
        dup = [{"key": "a", "value": "1"}, {"key": "a", "value": "2"}]
        self.assertError(api("runs/log-batch", {"run_id": run, "params": dup, "tags": ts}), 400,
                         "INVALID_PARAMETER_VALUE", "at most 100 tags")
        self.assertError(api("runs/log-batch", {"run_id": run, "params": dup}), 400,
                         "INVALID_PARAMETER_VALUE", "Duplicate parameter keys")
        # Duplicates come before the run check.
        self.assertError(api("runs/log-batch", {"run_id": "f" * 32, "params": dup}), 400,
                         "INVALID_PARAMETER_VALUE", "Duplicate")
        self.assertError(api("runs/log-batch", {"run_id": "f" * 32, "metrics": m}), 404,
                         "RESOURCE_DOES_NOT_EXIST")
        self.assertError(api("runs/log-batch", {"run_id": "f" * 32, "params": [{"key": "a", "value": "b"}]}),
                         404, "RESOURCE_DOES_NOT_EXIST")
        self.assertEqual(api("runs/delete", {"run_id": run})[0], 200)
        self.assertError(api("runs/log-batch", {"run_id": run, "metrics": m}), 400,
                         "INVALID_PARAMETER_VALUE", "active")
        # Nothing of the failed batches was written.
        self.assertEqual(full_history(run, "k"), [])

    def test_large_body_accepted(self):
        """A maximal Python-client batch (100 x 6000-char params + 100 x
        8000-char tags... here 1000 entries with long tag values) > 1 MB."""
        run = new_run()
        tags = [{"key": "t%d" % i, "value": "x" * 8000} for i in range(100)]
        params = [{"key": "p%d" % i, "value": "y" * 6000} for i in range(100)]
        metrics = [{"key": "m", "value": i, "timestamp": i, "step": i} for i in range(800)]
        st, body = api("runs/log-batch", {"run_id": run, "metrics": metrics, "params": params,
                                          "tags": tags})
        self.assertEqual(st, 200, body)
        self.assertEqual(len(full_history(run, "m")), 800)


# ---------------------------------------------------------------------------
# get-history
# ---------------------------------------------------------------------------


class TestGetHistory(ErrorAssertions):
    @classmethod
    def setUpClass(cls):
        cls.run_id = new_run()
        cls.n = 70000  # > 65536: the server pages internally without max_results
        rng = random.Random(5)
        cls.points = []
        for i in range(cls.n):
            # Timestamps out of step order in places, some equal.
            ts = 1700000000000 + (i // 3) * 7 + (rng.randrange(5) if i % 97 == 0 else 0)
            cls.points.append((i // 2, ts, rng.random()))
        frame = encode_frame([(cls.run_id, "h", cls.points)])
        st, body = ingest(frame)
        assert st == 200, body

    def test_paging_25000(self):
        got, token, pages = [], None, 0
        while True:
            st, body = history(self.run_id, "h", max_results=25000, token=token)
            self.assertEqual(st, 200, body)
            got += body.get("metrics", [])
            pages += 1
            token = body.get("next_page_token")
            if not token:
                break
        self.assertEqual(pages, 3)
        self.assertEqual(len(got), self.n)
        want = sorted(self.points, key=lambda p: (p[1], p[0], p[2]))
        self.assertEqual([(m["step"], m["timestamp"], m["value"]) for m in got], want)

    def test_cap_and_complete(self):
        st, body = history(self.run_id, "h", max_results=100000)
        self.assertEqual(st, 200)
        self.assertEqual(len(body["metrics"]), 25000)
        self.assertIn("next_page_token", body)
        ms = full_history(self.run_id, "h")
        self.assertEqual(len(ms), self.n)
        self.assertEqual([hist_key(m) for m in ms], sorted(hist_key(m) for m in ms))
        st, body = history(self.run_id, "h", max_results=7)
        self.assertEqual(len(body["metrics"]), 7)
        st, body2 = history(self.run_id, "h", max_results=5, token=body["next_page_token"])
        self.assertEqual(body2["metrics"], ms[7:12])

    def test_errors_and_unknown(self):
        for n in (0, -1):
            self.assertError(history(self.run_id, "h", max_results=n), 400, "INVALID_PARAMETER_VALUE")
        self.assertError(history(self.run_id, "h", max_results=10, token="garbage"), 400,
                         "INVALID_PARAMETER_VALUE")
        self.assertError(history(self.run_id, "h", max_results="x"), 400, "INVALID_PARAMETER_VALUE")
        self.assertEqual(history("f" * 32, "h"), (200, {}))
        self.assertEqual(history(self.run_id, "nokey", max_results=10), (200, {}))
        self.assertError(api("metrics/get-history", method="GET", params={"run_id": self.run_id}), 400,
                         "INVALID_PARAMETER_VALUE", "metric_key")

    def test_nonfinite_round_trip(self):
        run = new_run()
        pts = [(0, 1, float("nan")), (1, 2, float("inf")), (2, 3, float("-inf")), (3, 4, -0.0),
               (4, 5, 5e-324), (5, 6, 1.7976931348623157e308), (6, 7, 0.1)]
        self.assertEqual(ingest(encode_frame([(run, "nf", pts)]))[0], 200)
        log_batch(run, metrics=[("nf2", "NaN", 1, 0), ("nf2", "Infinity", 2, 1),
                                ("nf2", "-Infinity", 3, 2)])
        ms = full_history(run, "nf")
        for m, p in zip(ms, pts):
            self.assertTrue(same_value(val(m["value"]), p[2]), (m, p))
        self.assertEqual([m["value"] for m in full_history(run, "nf2")],
                         ["NaN", "Infinity", "-Infinity"])


# ---------------------------------------------------------------------------
# get-history-bulk-interval (§4.6)
# ---------------------------------------------------------------------------


def sampled(runs_points, m, rng=None):
    """§4.6 transcribed: runs_points is a list (request order) of point
    lists (step, ts, value)."""
    per_run = [sorted(set(p[0] for p in pts)) for pts in runs_points]
    b = set()
    for s in per_run:
        if s:
            b.add(min(s))
            b.add(max(s))
    u = sorted(set(x for s in per_run for x in s))
    if rng is None:
        lo, hi = 0, (max(u) if u else 0)
    else:
        lo, hi = rng
    b2 = {s for s in b if lo <= s <= hi}
    w = [s for s in u if lo <= s <= hi]
    n = len(w)
    if n <= m:
        p = set(w)
    else:
        d = n / m
        p = {w[math.floor(i * d)] for i in range(m)} | {w[n - 1]}
    steps = p | b2
    out = []
    for pts in runs_points:
        chosen = sorted({q for q in pts if q[0] in steps},
                        key=lambda q: (q[0], q[1], (1, 0.0) if math.isnan(q[2]) else (0, q[2])))
        out.append(chosen[:25000])
    return out


class TestBulkInterval(ErrorAssertions):
    @classmethod
    def setUpClass(cls):
        rng = random.Random(11)
        cls.runs = [new_run() for _ in range(3)]
        cls.points = []
        series = []
        for r, run in enumerate(cls.runs):
            pts = set()
            for i in range(3000 + 1000 * r):
                step = rng.randrange(-50, 8000) if r == 2 else i * (r + 1)
                pts.add((step, 1000 + i + rng.randrange(3), float(rng.randrange(100))))
            pts = sorted(pts)
            cls.points.append(pts)
            series.append((run, "bi", pts))
        assert ingest(encode_frame(series, lz4=True))[0] == 200

    def query(self, run_ids, **kw):
        params = {"run_ids": run_ids, "metric_key": "bi"}
        params.update(kw)
        return api("metrics/get-history-bulk-interval", method="GET", params=params)

    def check(self, run_ids, pts, m=None, rng=None):
        kw = {}
        if m is not None:
            kw["max_results"] = m
        if rng is not None:
            kw["start_step"], kw["end_step"] = rng
        st, body = self.query(run_ids, **kw)
        self.assertEqual(st, 200, body)
        want = sampled(pts, m or 2500, rng)
        got = body.get("metrics", [])
        flat = []
        for run, w in zip(run_ids, want):
            flat += [(run, s, t, v) for s, t, v in w]
        self.assertEqual([(g["run_id"], g["step"], g["timestamp"], g["value"]) for g in got], flat)
        for g in got:
            self.assertEqual(g["key"], "bi")

    def test_against_transcription(self):
        self.check(self.runs, self.points)
        self.check(self.runs, self.points, m=320)
        self.check(self.runs, self.points, m=1)
        self.check(self.runs[1:], self.points[1:], m=100, rng=(500, 4000))
        self.check([self.runs[2]], [self.points[2]], m=50, rng=(-100, 10))
        self.check([self.runs[0], "f" * 32], [self.points[0], []], m=77)

    def test_errors(self):
        r = self.runs[0]
        self.assertError(api("metrics/get-history-bulk-interval", method="GET",
                             params={"metric_key": "bi"}), 400, "INVALID_PARAMETER_VALUE", "run_ids")
        self.assertError(self.query([r] * 101), 400, "INVALID_PARAMETER_VALUE", "100")
        self.assertError(api("metrics/get-history-bulk-interval", method="GET",
                             params={"run_ids": r}), 400, "INVALID_PARAMETER_VALUE", "metric_key")
        for m in (0, 2501, -3):
            self.assertError(self.query([r], max_results=m), 400, "INVALID_PARAMETER_VALUE")
        self.assertError(self.query([r], start_step=5), 400, "INVALID_PARAMETER_VALUE", "both")
        self.assertError(self.query([r], end_step=5), 400, "INVALID_PARAMETER_VALUE", "both")
        self.assertError(self.query([r], start_step=6, end_step=5), 400, "INVALID_PARAMETER_VALUE")
        self.assertEqual(self.query(["f" * 32]), (200, {}))


# ---------------------------------------------------------------------------
# get-history-bulk (ajax only)
# ---------------------------------------------------------------------------


class TestBulk(ErrorAssertions):
    def bulk(self, params, ajax=True):
        prefix = "/ajax-api" if ajax else "/api"
        return SRV.get(prefix + "/2.0/mlflow/metrics/get-history-bulk", params)

    def test_bulk(self):
        runs = sorted(new_run() for _ in range(3))
        for i, run in enumerate(runs):
            log_batch(run, metrics=[("b", float(j), 100 - j, j) for j in range(10 + i)])
        st, body = self.bulk({"run_id": [runs[2], runs[0], runs[1], runs[0]], "metric_key": "b"})
        self.assertEqual(st, 200, body)
        ms = body["metrics"]
        self.assertEqual(len(ms), 10 + 11 + 12)
        keyed = [(m["run_id"], m["timestamp"], m["step"], m["value"]) for m in ms]
        self.assertEqual(keyed, sorted(keyed))
        st, body = self.bulk({"run_id": runs, "metric_key": "b", "max_results": 15})
        self.assertEqual(len(body["metrics"]), 15)
        self.assertEqual([m["run_id"] for m in body["metrics"]], [runs[0]] * 10 + [runs[1]] * 5)
        self.assertEqual(self.bulk({"run_id": ["f" * 32], "metric_key": "b"}), (200, {"metrics": []}))
        self.assertError(self.bulk({"metric_key": "b"}), 400, "INVALID_PARAMETER_VALUE")
        self.assertError(self.bulk({"run_id": runs}), 400, "INVALID_PARAMETER_VALUE")
        self.assertError(self.bulk({"run_id": ["a"] * 101, "metric_key": "b"}), 400,
                         "INVALID_PARAMETER_VALUE")
        self.assertError(self.bulk({"run_id": runs, "metric_key": "b"}, ajax=False), 404,
                         "ENDPOINT_NOT_FOUND")


# ---------------------------------------------------------------------------
# Native ingest and query
# ---------------------------------------------------------------------------


def m4_brute(points, lo, hi, width):
    """Per pixel column over [lo, hi] of step: first, last, min, max (first
    occurrence), as a set of points."""
    span = hi - lo + 1
    cols = {}
    for p in sorted(points, key=lambda q: (q[0], q[1])):
        if p[0] < lo or p[0] > hi:
            continue
        c = (p[0] - lo) * width // span
        cols.setdefault(c, []).append(p)
    out = set()
    for pts in cols.values():
        fin = [q for q in pts if not math.isnan(q[2])]
        out.add(pts[0])
        out.add(pts[-1])
        if fin:
            out.add(min(fin, key=lambda q: q[2]))
            out.add(max(fin, key=lambda q: q[2]))
    return out


class TestNative(ErrorAssertions):
    @classmethod
    def setUpClass(cls):
        cls.runs = [new_run() for _ in range(3)]
        rng = random.Random(3)
        cls.series = []
        for r, run in enumerate(cls.runs):
            pts = [(i, 1700000000000 + 10 * i + r, math.sin(i / 50.0) + rng.random() * 0.1)
                   for i in range(5000 + 1000 * r)]
            cls.series.append((run, "loss", pts))
        st, body = ingest(encode_frame(cls.series))
        assert (st, body) == (200, {"series": 3, "points": 5000 + 6000 + 7000}), (st, body)

    def query(self, params, method="GET", headers=None):
        if method == "GET":
            path = "/api/2.0/tally/query?" + urllib.parse.urlencode(params, doseq=True)
            return SRV.request("GET", path, headers=headers or {})
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        return SRV.request("POST", "/api/2.0/tally/query", body=json.dumps(params), headers=h)

    def test_ingest_then_history(self):
        run = new_run()
        pts = [(i, 1000 + i, float(i) / 3) for i in range(100)]
        st, body = ingest(encode_frame([(run, "a", pts), (run, "b", pts[:10])], lz4=True), ajax=True)
        self.assertEqual((st, body), (200, {"series": 2, "points": 110}))
        ms = full_history(run, "a")
        self.assertEqual([(m["step"], m["timestamp"], m["value"]) for m in ms], pts)

    def test_m4_json_and_binary(self):
        st, h, data = self.query({"run_ids": self.runs, "key": "loss", "width": 100})
        self.assertEqual(st, 200, data)
        body = json.loads(data)
        self.assertEqual((body["key"], body["x_axis"], body["method"], body["width"]),
                         ("loss", "step", "m4", 100))
        self.assertEqual([s["run_id"] for s in body["series"]], self.runs)
        for s, (_, _, pts) in zip(body["series"], self.series):
            self.assertEqual(s["n_source"], len(pts))
            self.assertEqual(s["range"], [0, len(pts) - 1])
            got = {(x, y) for x, y in zip(s["x"], s["y"])}
            want = {(p[0], p[2]) for p in m4_brute(pts, 0, len(pts) - 1, 100)}
            self.assertEqual(got, want)
            self.assertEqual(s["x"], sorted(s["x"]))
        # Binary: same numbers.
        st, h, data = self.query({"run_ids": self.runs, "key": "loss", "width": 100},
                                 headers={"Accept": "application/octet-stream"})
        self.assertEqual(st, 200)
        self.assertEqual(h.get("content-type"), "application/octet-stream")
        b = decode_query_binary(data)
        self.assertEqual((b["method"], b["x_axis"], b["width"]), (0, 0, 100))
        for s, js in zip(b["series"], body["series"]):
            self.assertEqual(s["x"], [float(x) for x in js["x"]])
            self.assertEqual(s["y"], js["y"])
            self.assertEqual(s["n_source"], js["n_source"])
        st, _, data2 = self.query({"run_ids": self.runs, "key": "loss", "width": 100,
                                   "format": "binary"}, method="POST")
        self.assertEqual((st, data2), (200, data))

    def test_buckets_lttb_ranges_axes(self):
        run, _, pts = self.series[0]
        st, _, data = self.query({"run_id": run, "key": "loss", "method": "buckets", "width": 10,
                                  "x_lo": 100, "x_hi": 1099})
        self.assertEqual(st, 200, data)
        s = json.loads(data)["series"][0]
        self.assertEqual(sum(s["count"]), 1000)
        for lo, hi, mn, mx, mean in zip(s["x_lo"], s["x_hi"], s["min"], s["max"], s["mean"]):
            ys = [p[2] for p in pts if lo <= p[0] <= hi]
            self.assertEqual((mn, mx), (min(ys), max(ys)))
            self.assertAlmostEqual(mean, sum(ys) / len(ys), places=9)
        st, _, data = self.query({"run_id": run, "key": "loss", "method": "lttb", "width": 50})
        s = json.loads(data)["series"][0]
        self.assertEqual(len(s["x"]), 50)
        self.assertEqual((s["x"][0], s["x"][-1]), (0, len(pts) - 1))
        st, _, data = self.query({"run_id": run, "key": "loss", "x_axis": "time", "width": 10})
        s = json.loads(data)["series"][0]
        self.assertEqual(s["x"][0], pts[0][1])
        st, _, data = self.query({"run_id": run, "key": "loss", "x_axis": "relative", "width": 10})
        s = json.loads(data)["series"][0]
        self.assertEqual((s["x"][0], s["x"][-1]), (0, pts[-1][1] - pts[0][1]))
        st, _, data = self.query({"run_id": ["f" * 32], "key": "loss"})
        self.assertEqual(json.loads(data)["series"], [{"run_id": "f" * 32, "n_source": 0, "x": [],
                                                       "y": []}])

    def test_query_errors(self):
        run = self.runs[0]
        bad = [{"key": "loss"}, {"run_id": run}, {"run_id": run, "key": "loss", "width": 0},
               {"run_id": run, "key": "loss", "width": 65537},
               {"run_id": run, "key": "loss", "x_lo": 5},
               {"run_id": run, "key": "loss", "x_lo": 5, "x_hi": 4},
               {"run_id": run, "key": "loss", "method": "avg"},
               {"run_id": run, "key": "loss", "x_axis": "wall"},
               {"run_id": run, "key": "loss", "format": "xml"},
               {"run_id": [run] * 1001, "key": "loss"}]
        for p in bad:
            st, _, data = self.query(p, method="POST")
            self.assertEqual(st, 400, (p, data))
            self.assertEqual(json.loads(data)["error_code"], "INVALID_PARAMETER_VALUE")

    def test_ingest_errors(self):
        run = new_run()
        good = encode_frame([(run, "k", [(1, 2, 3.0)])])
        self.assertEqual(ingest(good)[0], 200)
        corrupt = bytearray(good)
        corrupt[-1] ^= 1
        for frame in [b"", b"TLYF", bytes(corrupt), good[:-1], good + b"\0",
                      encode_frame([(run, "k", [(1, 2, 3.0)])], version=2),
                      b"XXXX" + good[4:], encode_frame([(run, "bad//key", [(1, 2, 3.0)])]),
                      encode_frame([(run, "", [(1, 2, 3.0)])])]:
            st, body = ingest(frame)
            self.assertEqual(st, 400, (frame[:40], body))
            self.assertEqual(body["error_code"], "INVALID_PARAMETER_VALUE")
        st, body = ingest(encode_frame([(run, "k", [(1, 2, 3.0)]), ("f" * 32, "k", [(1, 2, 3.0)])]))
        self.assertEqual((st, body["error_code"]), (404, "RESOURCE_DOES_NOT_EXIST"))
        # All or nothing: the good series of the refused frame is not there.
        self.assertEqual(len(full_history(run, "k")), 1)
        self.assertEqual(api("runs/delete", {"run_id": run})[0], 200)
        st, body = ingest(good)
        self.assertEqual((st, body["error_code"]), (400, "INVALID_PARAMETER_VALUE"))


# ---------------------------------------------------------------------------
# Concurrency and crash recovery
# ---------------------------------------------------------------------------


class Writer(threading.Thread):
    """Logs batches for one (run, key) until stop is set or n batches are
    done; records the points of every acknowledged batch."""

    def __init__(self, srv, run, key, native, n_batches, per_batch, stop=None):
        super().__init__(daemon=True)
        self.srv, self.run_id, self.key, self.native = srv, run, key, native
        self.n_batches, self.per_batch, self.stop = n_batches, per_batch, stop
        self.acked, self.sent, self.errors = [], [], []

    def run(self):  # noqa: D401 (thread body)
        conn = self.srv.connection(timeout=30)
        step = 0
        try:
            for b in range(self.n_batches):
                if self.stop is not None and self.stop.is_set():
                    break
                pts = [(step + i, 1700000000000 + step + i, (step + i) * 0.5)
                       for i in range(self.per_batch)]
                step += self.per_batch
                self.sent += pts
                try:
                    if self.native:
                        conn.request("POST", "/api/2.0/tally/ingest",
                                     body=encode_frame([(self.run_id, self.key, pts)]),
                                     headers={"Content-Type": "application/octet-stream"})
                    else:
                        body = json.dumps({"run_id": self.run_id, "metrics": [
                            {"key": self.key, "value": v, "timestamp": t, "step": s}
                            for s, t, v in pts]})
                        conn.request("POST", "/api/2.0/mlflow/runs/log-batch", body=body,
                                     headers={"Content-Type": "application/json"})
                    r = conn.getresponse()
                    data = r.read()
                    if r.status == 200:
                        self.acked += pts
                    elif r.status == 429:
                        time.sleep(0.05)
                    else:
                        self.errors.append((r.status, data[:200]))
                except OSError:
                    if self.stop is None:
                        raise
                    break
        finally:
            conn.close()


class TestConcurrency(unittest.TestCase):
    def test_parallel_writers_read_back_exactly(self):
        run = new_run()
        writers = [Writer(SRV, run, "c%d" % i, native=i >= 4, n_batches=25, per_batch=400)
                   for i in range(6)]
        for w in writers:
            w.start()
        for w in writers:
            w.join(120)
        for w in writers:
            self.assertEqual(w.errors, [])
            self.assertEqual(len(w.acked), 25 * 400)
            ms = full_history(run, w.key)
            self.assertEqual([(m["step"], m["timestamp"], m["value"]) for m in ms], w.acked)


class TestRestart(unittest.TestCase):
    def test_sigkill_while_logging_keeps_acknowledged(self):
        srv = TallyServer().start()
        try:
            run = new_run(srv)
            stop = threading.Event()
            writers = [Writer(srv, run, "r%d" % i, native=i % 2 == 1, n_batches=10 ** 6,
                              per_batch=200, stop=stop) for i in range(4)]
            for w in writers:
                w.start()
            time.sleep(1.5)
            srv.proc.send_signal(signal.SIGKILL)
            srv.proc.wait(30)
            stop.set()
            for w in writers:
                w.join(30)
            srv.stop(expect_code=None)
            self.assertTrue(all(len(w.acked) > 0 for w in writers), [len(w.acked) for w in writers])
            srv2 = TallyServer(data_dir=srv.data_dir).start()
            try:
                for w in writers:
                    ms = full_history(run, w.key, srv=srv2)
                    got = [(m["step"], m["timestamp"], m["value"]) for m in ms]
                    gotset = set(got)
                    missing = [p for p in w.acked if p not in gotset]
                    self.assertEqual(missing, [], w.key)
                    # Nothing that was never sent; at most what was sent.
                    self.assertTrue(gotset <= set(w.sent))
                    self.assertEqual(len(got), len(gotset))
            finally:
                srv2.stop()
        finally:
            srv.cleanup()


if __name__ == "__main__":
    unittest.main()
