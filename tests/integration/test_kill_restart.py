"""test_kill_restart.py — kill -9 under load, N times (issue 8): writer
threads log metrics (runs/log-batch), params (runs/log-parameter), tags
(runs/set-tag), native ingest frames (tally/ingest), registry changes
(model-versions/create) and artifact files (PUT through the mlflow-artifacts
proxy) as fast as the server
takes them; at a random moment the server gets SIGKILL; it is restarted on
the same data directory and every write that was acknowledged (HTTP 200
received) before the kill must be there, with its value. Writes in flight at
the kill (no answer received) may or may not be there; nothing else is
checked about them.

N is TALLY_KILL_RESTARTS (default 6, which keeps this test well under two
minutes); `tally-bench crash` does the 100-restart run in C.

Adding a kind of write is one class with three
methods — setup(srv) once, write(conn, i) per request returning what to
remember when it is acknowledged, check(srv, acked) after each restart
returning the missing ones — and one entry in KINDS."""

import http.client
import json
import os
import random
import signal
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_harness import TallyServer  # noqa: E402
from tally_frame import encode_frame  # noqa: E402

RESTARTS = int(os.environ.get("TALLY_KILL_RESTARTS", "6"))
WRITERS_PER_KIND = 2


def post(conn, path, obj=None, raw=None, ctype="application/json"):
    body = raw if raw is not None else json.dumps(obj)
    conn.request("POST", path, body=body, headers={"Content-Type": ctype})
    r = conn.getresponse()
    data = r.read()
    return r.status, data


def history(srv, run_id, key):
    """Every (step, value) of run_id/key through get-history's pages."""
    out, token = {}, None
    while True:
        params = {"run_id": run_id, "metric_key": key, "max_results": 25000}
        if token:
            params["page_token"] = token
        st, body = srv.api("metrics/get-history", method="GET", params=params)
        assert st == 200, (st, body)
        for m in body.get("metrics", []):
            out[m["step"]] = m["value"]
        token = body.get("next_page_token")
        if not token:
            return out


def run_data(srv, run_id):
    st, body = srv.api("runs/get", method="GET", params={"run_id": run_id})
    assert st == 200, (st, body)
    return body["run"]["data"]


class Kind:
    """One kind of acknowledged write. write() is called by WRITERS_PER_KIND
    threads at once with distinct (writer, i)."""
    name = "?"

    def setup(self, srv):
        pass

    def write(self, conn, writer, i):
        raise NotImplementedError

    def check(self, srv, acked):
        raise NotImplementedError


class Metrics(Kind):
    name = "metrics"
    PER = 200

    def setup(self, srv):
        self.run_id = make_run(srv)

    def write(self, conn, writer, i):
        key = f"m{writer}"
        step0 = i * self.PER
        metrics = [{"key": key, "value": (step0 + j) * 0.25, "timestamp": 1700000000000 + step0 + j,
                    "step": step0 + j} for j in range(self.PER)]
        st, _ = post(conn, "/api/2.0/mlflow/runs/log-batch", {"run_id": self.run_id,
                                                               "metrics": metrics})
        return (key, step0) if st == 200 else None

    def check(self, srv, acked):
        missing, got = [], {}
        for key, step0 in acked:
            if key not in got:
                got[key] = history(srv, self.run_id, key)
            for j in range(self.PER):
                if got[key].get(step0 + j) != (step0 + j) * 0.25:
                    missing.append((key, step0 + j))
        return missing


class Params(Kind):
    name = "params"

    def setup(self, srv):
        self.run_id = make_run(srv)

    def write(self, conn, writer, i):
        key, value = f"p{writer}_{i}", f"v{i}"
        st, _ = post(conn, "/api/2.0/mlflow/runs/log-parameter",
                     {"run_id": self.run_id, "key": key, "value": value})
        return (key, value) if st == 200 else None

    def check(self, srv, acked):
        params = {p["key"]: p["value"] for p in run_data(srv, self.run_id).get("params", [])}
        return [a for a in acked if params.get(a[0]) != a[1]]


class Tags(Kind):
    name = "tags"

    def setup(self, srv):
        self.run_id = make_run(srv)

    def write(self, conn, writer, i):
        key, value = f"t{writer}_{i}", f"tag value {i}"
        st, _ = post(conn, "/api/2.0/mlflow/runs/set-tag",
                     {"run_id": self.run_id, "key": key, "value": value})
        return (key, value) if st == 200 else None

    def check(self, srv, acked):
        tags = {t["key"]: t["value"] for t in run_data(srv, self.run_id).get("tags", [])}
        return [a for a in acked if tags.get(a[0]) != a[1]]


class Native(Kind):
    name = "native"
    PER = 500

    def setup(self, srv):
        self.run_id = make_run(srv)

    def write(self, conn, writer, i):
        key = f"n{writer}"
        step0 = i * self.PER
        pts = [(step0 + j, 1700000000000 + step0 + j, (step0 + j) * 0.5) for j in range(self.PER)]
        st, _ = post(conn, "/api/2.0/tally/ingest", raw=encode_frame([(self.run_id, key, pts)]),
                     ctype="application/octet-stream")
        return (key, step0) if st == 200 else None

    def check(self, srv, acked):
        missing, got = [], {}
        for key, step0 in acked:
            if key not in got:
                got[key] = history(srv, self.run_id, key)
            for j in range(self.PER):
                if got[key].get(step0 + j) != (step0 + j) * 0.5:
                    missing.append((key, step0 + j))
        return missing


class Registry(Kind):
    """One model version per write (model-versions/create, with a tag), all
    of one registered model. Checked after each restart: every acknowledged
    version is there with its number, source and tag; the versions present
    are exactly 1..max (mlflow-rest-api.md §3.7: version = 1 + max, never
    reused, and nothing is ever deleted here, so no gap may appear); and a
    version acknowledged after a restart is numbered above every version
    present at that restart (a number lost and handed out again would show
    here or as a source mismatch)."""
    name = "registry"
    MODEL = "kill-restart-model"

    def setup(self, srv):
        st, body = srv.api("registered-models/create", {"name": self.MODEL})
        assert st == 200, body
        self.floor = 0     # highest version present at the last restart
        self.problems = []

    def write(self, conn, writer, i):
        floor = self.floor
        st, data = post(conn, "/api/2.0/mlflow/model-versions/create",
                        {"name": self.MODEL, "source": f"s3://bucket/w{writer}/{i}",
                         "tags": [{"key": "idx", "value": f"{writer}_{i}"}]})
        if st != 200:
            return None
        version = int(json.loads(data)["model_version"]["version"])
        if version <= floor:
            self.problems.append(("reused", version, writer, i))
        return (version, writer, i)

    def check(self, srv, acked):
        st, body = srv.api("model-versions/search", method="GET",
                           params={"filter": f"name='{self.MODEL}'", "max_results": 200000})
        assert st == 200, (st, body)
        present = {}
        for mv in body.get("model_versions", []):
            tags = {t["key"]: t["value"] for t in mv.get("tags", [])}
            present[int(mv["version"])] = (mv.get("source"), tags.get("idx"))
        missing = list(self.problems)
        numbers = [a[0] for a in acked]
        if len(set(numbers)) != len(numbers):
            missing.append(("version acknowledged twice", sorted(numbers)))
        for version, writer, i in acked:
            if present.get(version) != (f"s3://bucket/w{writer}/{i}", f"{writer}_{i}"):
                missing.append((version, writer, i, present.get(version)))
        top = max(present, default=0)
        if sorted(present) != list(range(1, top + 1)):
            missing.append(("gap in version numbers", sorted(set(range(1, top + 1)) - set(present))))
        self.floor = top
        return missing


def artifact_content(writer, i):
    """What file w<writer>/<i>.txt holds: sized by i (1-19 KiB) so that a
    torn file differs in length, and every line names its file."""
    line = f"artifact w{writer} i{i} ".ljust(63, ".") + "\n"
    return (line * (16 + (i % 19) * 16)).encode()


class Artifacts(Kind):
    """One PUT of a small file through the artifact proxy per write.
    Checked after each restart: every acknowledged file downloads with
    exactly its content, and every file listed at all (acknowledged or an
    upload in flight at the kill) has its full content: never a torn one."""
    name = "artifacts"
    ROOT = "kill-restart"

    def write(self, conn, writer, i):
        conn.request("PUT", f"/api/2.0/mlflow-artifacts/artifacts/{self.ROOT}/w{writer}/{i}.txt",
                     body=artifact_content(writer, i),
                     headers={"Content-Type": "application/octet-stream"})
        r = conn.getresponse()
        r.read()
        return (writer, i) if r.status == 200 else None

    def check(self, srv, acked):
        conn = srv.connection(timeout=30)
        missing, acked_set = [], set(acked)
        try:
            listed = set()
            for writer in range(WRITERS_PER_KIND):
                conn.request("GET", "/api/2.0/mlflow-artifacts/artifacts?path="
                             f"{self.ROOT}/w{writer}")
                r = conn.getresponse()
                body = json.loads(r.read() or b"{}")
                assert r.status == 200, (r.status, body)
                for f in body.get("files", []):
                    name = f["path"]
                    if not name.endswith(".txt") or not name[:-4].isdigit():
                        missing.append(("unexpected file", writer, name))
                        continue
                    listed.add((writer, int(name[:-4])))
            for writer, i in sorted(listed | acked_set):
                conn.request("GET", f"/api/2.0/mlflow-artifacts/artifacts/{self.ROOT}/"
                             f"w{writer}/{i}.txt")
                r = conn.getresponse()
                data = r.read()
                if r.status != 200 or data != artifact_content(writer, i):
                    missing.append((writer, i, r.status, len(data),
                                    "acknowledged" if (writer, i) in acked_set else "not acknowledged"))
        finally:
            conn.close()
        return missing


KINDS = [Metrics(), Params(), Tags(), Native(), Registry(), Artifacts()]


def make_run(srv):
    st, body = srv.api("experiments/create", {"name": f"kill-{time.monotonic_ns()}"})
    assert st == 200, body
    st, body = srv.api("runs/create", {"experiment_id": body["experiment_id"]})
    assert st == 200, body
    return body["run"]["info"]["run_id"]


class Writer(threading.Thread):
    """Writes one kind until the server goes away; keeps what was acked."""

    def __init__(self, srv, kind, writer, start_i, acked):
        super().__init__(daemon=True)
        self.srv, self.kind, self.writer, self.i, self.acked = srv, kind, writer, start_i, acked
        self.unexpected = []

    def run(self):
        conn = self.srv.connection(timeout=10)
        try:
            while True:
                i = self.i
                self.i += 1  # never reuse an index: an unanswered write may have landed
                try:
                    rec = self.kind.write(conn, self.writer, i)
                except (OSError, http.client.HTTPException):  # the kill
                    return
                except Exception as e:  # noqa: BLE001 (reported by the test)
                    self.unexpected.append(repr(e))
                    return
                if rec is not None:
                    self.acked.append(rec)
        finally:
            conn.close()


class KillRestart(unittest.TestCase):
    def test_kill_9_under_load(self):
        rng = random.Random(8)
        first = TallyServer()
        srv = first.start()
        data_dir = srv.data_dir
        try:
            for k in KINDS:
                k.setup(srv)
            acked = {k.name: [] for k in KINDS}
            next_i = {(k.name, w): 0 for k in KINDS for w in range(WRITERS_PER_KIND)}
            total_acked = 0
            for round_no in range(RESTARTS):
                writers = [Writer(srv, k, w, next_i[(k.name, w)], acked[k.name])
                           for k in KINDS for w in range(WRITERS_PER_KIND)]
                for w in writers:
                    w.start()
                time.sleep(rng.uniform(0.4, 1.5))
                srv.stop(expect_code=-signal.SIGKILL, sig=signal.SIGKILL)
                for w in writers:
                    w.join(timeout=30)
                    self.assertFalse(w.is_alive())
                    self.assertEqual(w.unexpected, [])
                    next_i[(w.kind.name, w.writer)] = w.i
                srv = TallyServer(data_dir=data_dir).start()
                for k in KINDS:
                    missing = k.check(srv, acked[k.name])
                    self.assertEqual(missing[:10], [],
                                     f"round {round_no}: {len(missing)} acknowledged {k.name} "
                                     f"writes lost")
                total_acked = sum(len(v) for v in acked.values())
            for k in KINDS:
                self.assertGreater(len(acked[k.name]), 0, f"no {k.name} write was acknowledged")
            per_kind = ", ".join(f"{k.name} {len(acked[k.name])}" for k in KINDS)
            print(f"{RESTARTS} kill -9 restarts, {total_acked} acknowledged writes ({per_kind}), "
                  "0 lost", file=sys.stderr)
        finally:
            srv.stop()
            first.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
