"""test_cli_import.py — `tally import mlruns` and `tally import mlflow-db`
into a data directory, then a real `tally serve` on it, compared field by
field with what was written (mlflow_stores.py builds the MLflow stores in
MLflow's own layouts): experiments (ids, names, lifecycle, times, tags), runs
(ids kept, names, users, status, times, lifecycle, deleted_time), params and
tags (long values whole), every metric point (NaN, +-inf, duplicate steps, an
old two-field line), artifacts. Also: a second import imports nothing, an
import that fails half-way (a malformed metric line) resumes after the fix
without duplicates, an import killed with SIGKILL resumes, usage errors.
The model registry of both sources (mlflow_stores.sample_registry): models,
versions with their numbers (a gap from a deleted version, which stays
hidden and whose number is not reused), stages, statuses, sources, run ids
and links, tags, aliases, times, through the server's registry endpoints;
re-import imports no model twice; a malformed version fails its model only
and the re-run completes it; a name taken by another source is refused.
"""

import json
import math
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_harness import TallyServer, tally_binary  # noqa: E402
import mlflow_stores  # noqa: E402


def tally(*args, check=None, timeout=300):
    p = subprocess.run([tally_binary()] + list(args), capture_output=True, text=True,
                       timeout=timeout, env=dict(os.environ, TALLY_PROGRESS="1"))
    if check is not None and p.returncode != check:
        raise AssertionError(f"tally {' '.join(args)} exited {p.returncode}, expected {check}\n"
                             f"stdout: {p.stdout}\nstderr: {p.stderr}")
    return p


def fval(v):
    return float(v)


def same(a, b):
    # JSON "-0" parses as int 0 in Python, so -0.0 is checked by test_cli_export
    return (math.isnan(a) and math.isnan(b)) or a == b


def point_key(p):
    ts, v, step = p
    return (step, ts, (1, 0.0) if math.isnan(v) else (0, v))


class ImportCase(unittest.TestCase):
    def setUp(self):
        base = os.environ.get("TALLY_TEST_TMP") or None
        if base:
            os.makedirs(base, exist_ok=True)
        self.tmp = tempfile.mkdtemp(prefix="cli-import-", dir=base)

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- comparison against a server on the imported directory -------------

    def check_all(self, srv, data, from_sql=False, run_ids=None):
        """run_ids: source run id -> Tally run id after --to (experiments are
        then found by name: their ids and times are the server's)."""
        api = srv.api
        st, body = api("experiments/search", {"view_type": "ALL", "max_results": 1000})
        self.assertEqual(st, 200, body)
        by_id = {e["experiment_id"]: e for e in body["experiments"]}
        by_name = {e["name"]: e for e in body["experiments"]}
        for e in data["experiments"]:
            got = by_name.get(e["name"]) if run_ids else by_id.get(e["id"])
            self.assertIsNotNone(got, f"experiment {e['id']} missing")
            self.assertEqual(got["name"], e["name"])
            self.assertEqual(got["lifecycle_stage"], e["lifecycle"])
            if e["id"] != "0" and not run_ids:  # Default exists in Tally already (merged into)
                self.assertEqual(int(got["creation_time"]), e["created"])
                self.assertEqual(int(got["last_update_time"]), e["updated"])
            tags = {t["key"]: t["value"] for t in got.get("tags", [])}
            for k, v in e["tags"].items():
                self.assertEqual(tags.get(k), v, k)
            for r in e["runs"]:
                self.check_run(srv, e, r, from_sql,
                               (got["experiment_id"], run_ids[r["id"]]) if run_ids else None)

    def check_run(self, srv, e, r, from_sql, remote=None):
        """remote: (experiment id, run id) on a server imported into with
        --to: new ids, long values truncated by the REST API, artifacts read
        back over HTTP."""
        exp_id, rid = remote or (e["id"], r["id"])
        st, body = srv.api("runs/get", method="GET", params={"run_id": rid})
        self.assertEqual(st, 200, body)
        info, d = body["run"]["info"], body["run"]["data"]
        self.assertEqual(info["run_id"], rid)  # MLflow ids are kept (with --data)
        self.assertEqual(info["experiment_id"], exp_id)
        self.assertEqual(info["run_name"], r["name"])
        self.assertEqual(info["user_id"], r["user"])
        self.assertEqual(info["status"], r["status"])
        self.assertEqual(int(info["start_time"]), r["start"])
        if r["end"] is None:
            self.assertNotIn("end_time", info)
        else:
            self.assertEqual(int(info["end_time"]), r["end"])
        self.assertEqual(info["lifecycle_stage"], r["lifecycle"])
        self.assertEqual(info["artifact_uri"],
                         "mlflow-artifacts:/%s/%s/artifacts" % (exp_id, rid))
        cut_p, cut_t = (6000, 8000) if remote else (None, None)
        params = {p["key"]: p["value"] for p in d.get("params", [])}
        self.assertEqual(params, {k: v[:cut_p] for k, v in r["params"].items()})
        tags = {t["key"]: t["value"] for t in d.get("tags", [])}
        self.assertEqual(tags, {k: v[:cut_t] for k, v in r["tags"].items()})
        for key, pts in r["metrics"].items():
            want = sorted(set(pts), key=point_key) if not from_sql else None
            if from_sql:
                want = []
                seen = set()
                for ts, v, step in pts:
                    sv, nan = mlflow_stores.sql_value(v)
                    k = (ts, sv, step, nan)
                    if k in seen:
                        continue
                    seen.add(k)
                    want.append((ts, float("nan") if nan else sv, step))
                want.sort(key=point_key)
            st, hb = srv.api("metrics/get-history", method="GET",
                             params={"run_id": rid, "metric_key": key})
            self.assertEqual(st, 200, hb)
            got = [(int(m["timestamp"]), fval(m["value"]), int(m["step"]))
                   for m in hb.get("metrics", [])]
            got.sort(key=point_key)
            self.assertEqual(len(got), len(want), f"{r['name']}/{key}")
            for g, w in zip(got, want):
                self.assertEqual(g[0], w[0], (key, g, w))
                self.assertEqual(g[2], w[2], (key, g, w))
                self.assertTrue(same(g[1], w[1]), (key, g, w))
        for rel, b in r["artifacts"].items():
            d, name = os.path.split(rel)
            st, lb = srv.api("artifacts/list", method="GET",
                             params={"run_id": rid, "path": d} if d else {"run_id": rid})
            self.assertEqual(st, 200, lb)
            files = {f["path"]: f for f in lb.get("files", [])}
            self.assertIn(rel, files, lb)
            self.assertEqual(int(files[rel]["file_size"]), len(b))
            path = "/api/2.0/mlflow-artifacts/artifacts/%s/%s/artifacts/%s" % (exp_id, rid, rel)
            st, _, got = srv.request("GET", path)
            self.assertEqual(st, 200, rel)
            self.assertEqual(got, b, rel)

    def check_registry(self, srv, models, run_ids=None):
        """run_ids: source run id -> Tally run id after --to (then the
        server's times and statuses are not the source's)."""
        api = srv.api
        exact = run_ids is None
        st, body = api("registered-models/search", method="GET", params={"max_results": 1000})
        self.assertEqual(st, 200, body)
        self.assertEqual(sorted(m["name"] for m in body.get("registered_models", [])),
                         sorted(m["name"] for m in models))
        for m in models:
            st, b = api("registered-models/get", method="GET", params={"name": m["name"]})
            self.assertEqual(st, 200, b)
            got = b["registered_model"]
            if exact:
                self.assertEqual(int(got["creation_timestamp"]), m["created"])
                self.assertEqual(int(got["last_updated_timestamp"]), m["updated"])
            self.assertEqual(got["description"], m["description"] or "")
            self.assertEqual({t["key"]: t["value"] for t in got.get("tags", [])}, m["tags"])
            self.assertEqual({a["alias"]: int(a["version"]) for a in got.get("aliases", [])},
                             m["aliases"])
            for v in m["versions"]:
                q = {"name": m["name"], "version": str(v["version"])}
                st, vb = api("model-versions/get", method="GET", params=q)
                if v["stage"] == "Deleted_Internal":
                    self.assertEqual(st, 404, vb)  # kept hidden, number reserved
                    continue
                self.assertEqual(st, 200, vb)
                gv = vb["model_version"]
                self.assertEqual(gv["version"], str(v["version"]))
                if exact:
                    self.assertEqual(int(gv["creation_timestamp"]), v["created"])
                    self.assertEqual(int(gv["last_updated_timestamp"]), v["updated"])
                    self.assertEqual(gv["status"], v["status"])
                self.assertEqual(gv["current_stage"], v["stage"])
                self.assertEqual(gv["description"], v["description"] or "")
                self.assertEqual(gv["source"], v["source"])
                self.assertEqual(gv["run_id"],
                                 run_ids[v["run_id"]] if run_ids else v["run_id"])
                self.assertEqual(gv["run_link"], v["run_link"])
                self.assertEqual({t["key"]: t["value"] for t in gv.get("tags", [])}, v["tags"])
                self.assertEqual(sorted(gv.get("aliases", [])),
                                 sorted(a for a, n in m["aliases"].items()
                                        if n == v["version"]))
                st, ub = api("model-versions/get-download-uri", method="GET", params=q)
                self.assertEqual(st, 200, ub)
                if exact:  # --to: the server resolves a models:/ source itself
                    self.assertEqual(ub["artifact_uri"],
                                     "runs:/%s/model" % v["run_id"]
                                     if v["source"].startswith("models:/") else v["source"])
            for a, n in m["aliases"].items():
                st, ab = api("registered-models/alias", method="GET",
                             params={"name": m["name"], "alias": a})
                self.assertEqual(st, 200, ab)
                self.assertEqual(ab["model_version"]["version"], str(n))
            # numbering continues after the highest imported number (deleted included)
            top = max([v["version"] for v in m["versions"]] or [0])
            st, cb = api("model-versions/create", {"name": m["name"], "source": "s3://b/new"})
            self.assertEqual(st, 200, cb)
            self.assertEqual(cb["model_version"]["version"], str(top + 1))

    def serve_and_check(self, data_dir, data, from_sql=False, models=None):
        srv = TallyServer(data_dir=data_dir)
        srv.start()
        try:
            self.check_all(srv, data, from_sql)
            if models is not None:
                self.check_registry(srv, models)
        finally:
            srv.stop()


class TestImportMlruns(ImportCase):
    def test_lossless_and_idempotent(self):
        data = mlflow_stores.sample_data()
        models = mlflow_stores.sample_registry(data)
        mlruns = os.path.join(self.tmp, "mlruns")
        mlflow_stores.write_file_store(mlruns, data, models=models)
        dd = os.path.join(self.tmp, "data")
        p = tally("import", "mlruns", mlruns, "--data", dd, check=0)
        self.assertIn("6 runs imported, 0 already done", p.stdout)
        self.assertIn("2 registered models imported (6 versions), 0 already done", p.stdout)
        self.assertIn("import mlruns", p.stderr)  # the progress line
        p = tally("import", "mlruns", mlruns, "--data", dd, check=0)
        self.assertIn("0 runs imported, 6 already done, 0 metric points", p.stdout)
        self.assertIn("0 registered models imported (0 versions), 2 already done", p.stdout)
        self.serve_and_check(dd, data, models=models)

    def test_registry_failure_then_resume_and_conflict(self):
        data = mlflow_stores.sample_data(seed=13)
        models = mlflow_stores.sample_registry(data)
        mlruns = os.path.join(self.tmp, "mlruns")
        mlflow_stores.write_file_store(mlruns, data, models=models)
        meta = os.path.join(mlruns, "models", "resnet 50", "version-3", "meta.yaml")
        with open(meta) as f:
            good = f.read()
        with open(meta, "w") as f:
            f.write(good.replace("current_stage: Production", "current_stage: Nowhere"))
        dd = os.path.join(self.tmp, "data")
        p = tally("import", "mlruns", mlruns, "--data", dd, check=1)
        self.assertIn("version-3/meta.yaml: unknown current_stage", p.stderr)
        c = sqlite3.connect(os.path.join(dd, "meta.db"))
        self.assertEqual(c.execute("SELECT count(*) FROM registered_models WHERE name = ?",
                                   ("resnet 50",)).fetchone()[0], 0)  # nothing half-written
        self.assertEqual(c.execute("SELECT count(*) FROM model_versions").fetchone()[0], 0)
        c.close()
        with open(meta, "w") as f:
            f.write(good)
        p = tally("import", "mlruns", mlruns, "--data", dd, check=0)
        self.assertIn("0 runs imported, 6 already done", p.stdout)
        self.assertRegex(p.stdout, r"[12] registered models imported")
        # another source with a model of a name already imported: refused
        other = os.path.join(self.tmp, "other")
        mlflow_stores.write_file_store(other, mlflow_stores.sample_data(seed=14),
                                       models=models[1:])
        p = tally("import", "mlruns", other, "--data", dd, check=1)
        self.assertIn("registered model 'empty': registered model 'empty' already exists in "
                      "the destination", p.stderr)
        self.serve_and_check(dd, data, models=models)

    def test_failure_then_resume(self):
        data = mlflow_stores.sample_data(seed=11)
        mlruns = os.path.join(self.tmp, "mlruns")
        mlflow_stores.write_file_store(mlruns, data)
        run = data["experiments"][1]["runs"][0]  # the one with "long curve"
        bad = os.path.join(mlruns, "1", run["id"], "metrics", "zz_bad")
        with open(bad, "w") as f:
            f.write("1700000000000 0.5 0\nthis is not a metric line\n")
        dd = os.path.join(self.tmp, "data")
        p = tally("import", "mlruns", mlruns, "--data", dd, "--threads", "1", check=1)
        self.assertIn("zz_bad:2", p.stderr)
        self.assertIn("run again to resume", p.stdout)
        os.unlink(bad)
        p = tally("import", "mlruns", mlruns, "--data", dd, check=0)
        self.serve_and_check(dd, data)  # nothing lost, nothing doubled

    def test_killed_then_resume(self):
        data = mlflow_stores.sample_data(seed=5, n_bulk_runs=150, bulk_points=1000)
        mlruns = os.path.join(self.tmp, "mlruns")
        mlflow_stores.write_file_store(mlruns, data)
        dd = os.path.join(self.tmp, "data")
        proc = subprocess.Popen([tally_binary(), "import", "mlruns", mlruns, "--data", dd,
                                 "--threads", "1"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # kill it once the ledger holds some runs done (the first batch of 64)
        ledger = os.path.join(dd, "meta.db")
        done = 0
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline and done == 0:
            time.sleep(0.01)
            try:
                c = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=1)
                done = c.execute("SELECT count(*) FROM import_runs WHERE state = 'done'"
                                 ).fetchone()[0]
                c.close()
            except sqlite3.Error:
                pass
        proc.send_signal(signal.SIGKILL)
        killed_early = proc.wait() == -signal.SIGKILL
        p = tally("import", "mlruns", mlruns, "--data", dd, check=0)
        first = p.stdout
        print("after SIGKILL:", first.strip(), file=sys.stderr)
        if killed_early:  # resumed: what was done stays done, the rest is imported
            self.assertRegex(first, r"[1-9][0-9]* runs imported, [1-9][0-9]* already done", first)
        p = tally("import", "mlruns", mlruns, "--data", dd, check=0)
        self.assertIn("0 runs imported, 156 already done", p.stdout, first)
        self.serve_and_check(dd, data)

    def test_usage_and_errors(self):
        self.assertEqual(tally("import", "--help").returncode, 0)
        self.assertIn("usage: tally import", tally("import", "--help").stdout)
        self.assertEqual(tally("import").returncode, 2)
        self.assertEqual(tally("import", "mlruns", self.tmp).returncode, 2)  # no --data
        self.assertEqual(tally("import", "csv", self.tmp, "--data", self.tmp).returncode, 2)
        p = tally("import", "mlruns", os.path.join(self.tmp, "nope"), "--data",
                  os.path.join(self.tmp, "d"))
        self.assertEqual(p.returncode, 1)
        p = tally("import", "mlruns", self.tmp, "--data", os.path.join(self.tmp, "d"))
        self.assertEqual(p.returncode, 1)
        self.assertIn("no MLflow experiment", p.stderr)
        self.assertEqual(tally("help").returncode, 0)
        self.assertIn("import", tally("help").stdout)

    def test_locked_by_running_server(self):
        data = mlflow_stores.sample_data()
        mlruns = os.path.join(self.tmp, "mlruns")
        mlflow_stores.write_file_store(mlruns, data)
        with TallyServer() as srv:
            p = tally("import", "mlruns", mlruns, "--data", srv.data_dir)
            self.assertEqual(p.returncode, 1)
            self.assertIn("locked", p.stderr)


class TestImportMlflowDb(ImportCase):
    def test_lossless_and_idempotent(self):
        data = mlflow_stores.sample_data(seed=3)
        models = mlflow_stores.sample_registry(data)
        db = os.path.join(self.tmp, "mlflow.db")
        art = os.path.join(self.tmp, "mlartifacts")
        mlflow_stores.write_sqlite_db(db, data, art, models=models)
        dd = os.path.join(self.tmp, "data")
        p = tally("import", "mlflow-db", db, "--data", dd, "--artifact-root", art, check=0)
        self.assertIn("6 runs imported", p.stdout)
        self.assertIn("2 registered models imported (6 versions), 0 already done", p.stdout)
        p = tally("import", "mlflow-db", db, "--data", dd, "--artifact-root", art, check=0)
        self.assertIn("0 runs imported, 6 already done, 0 metric points", p.stdout)
        self.assertIn("0 registered models imported (0 versions), 2 already done", p.stdout)
        self.serve_and_check(dd, data, from_sql=True, models=models)

    def test_not_an_mlflow_db(self):
        db = os.path.join(self.tmp, "other.db")
        import sqlite3
        c = sqlite3.connect(db)
        c.execute("CREATE TABLE t (x)")
        c.commit()
        c.close()
        p = tally("import", "mlflow-db", db, "--data", os.path.join(self.tmp, "d"))
        self.assertEqual(p.returncode, 1)
        self.assertIn("not an MLflow tracking database", p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
