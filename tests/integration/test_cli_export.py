"""test_cli_export.py — `tally export experiments|runs|metrics` in CSV and
NDJSON from a data directory (filled by `tally import mlruns` from an MLflow
file store built by mlflow_stores.py): every point of every series comes
back bit for bit (NaN, +-inf, -0.0, subnormals), runs carry their params,
tags and latest metrics, filters by experiment, run and search expression,
--output, and the errors (bad filter, bad arguments, a served directory).
"""

import csv
import io
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_harness import TallyServer, tally_binary  # noqa: E402
import mlflow_stores  # noqa: E402

TMP = None
DATA = None
SAMPLE = None


def tally(*args):
    return subprocess.run([tally_binary()] + list(args), capture_output=True, text=True,
                          timeout=300)


def setUpModule():
    global TMP, DATA, SAMPLE
    base = os.environ.get("TALLY_TEST_TMP") or None
    if base:
        os.makedirs(base, exist_ok=True)
    TMP = tempfile.mkdtemp(prefix="cli-export-", dir=base)
    SAMPLE = mlflow_stores.sample_data(seed=21)
    mlruns = os.path.join(TMP, "mlruns")
    mlflow_stores.write_file_store(mlruns, SAMPLE, old_style_line=False)
    DATA = os.path.join(TMP, "data")
    p = tally("import", "mlruns", mlruns, "--data", DATA, "--quiet")
    assert p.returncode == 0, p.stderr


def tearDownModule():
    shutil.rmtree(TMP, ignore_errors=True)


def bits(v):
    return struct.pack("<d", v)


def all_runs():
    for e in SAMPLE["experiments"]:
        for r in e["runs"]:
            yield e, r


def csv_float(s):
    return float(s)  # NaN, inf, -inf, shortest decimals


class TestExport(unittest.TestCase):
    def export(self, *args, code=0):
        p = tally("export", *args, "--data", DATA, "--quiet")
        self.assertEqual(p.returncode, code, p.stderr)
        return p.stdout

    def test_metrics_ndjson_bit_exact(self):
        out = self.export("metrics", "--format", "ndjson", "--view", "all")
        got = {}
        for line in out.splitlines():
            o = json.loads(line)
            v = o["value"]
            v = float(v) if isinstance(v, str) else float(v)
            got.setdefault((o["run_id"], o["key"]), []).append((o["timestamp"], v, o["step"]))
        # -0.0 must be written with its sign
        self.assertIn('"value":-0.0}', out)
        n = 0
        for e, r in all_runs():
            for key, pts in r["metrics"].items():
                want = sorted(set(pts), key=lambda p: (p[2], p[0]))
                g = got.get((r["id"], key))
                self.assertIsNotNone(g, (r["name"], key))
                self.assertEqual(len(g), len(want), (r["name"], key))
                for a, b in zip(g, want):
                    self.assertEqual((a[0], a[2]), (b[0], b[2]))
                    if math.isnan(b[1]):
                        self.assertTrue(math.isnan(a[1]))
                    elif b[1] == 0:
                        self.assertEqual(a[1], 0.0)
                    else:
                        self.assertEqual(bits(a[1]), bits(b[1]), (key, a, b))
                n += len(want)
        self.assertEqual(sum(len(v) for v in got.values()), n)

    def test_metrics_csv(self):
        r = SAMPLE["experiments"][1]["runs"][0]
        out = self.export("metrics", "--run", r["id"])
        rows = list(csv.DictReader(io.StringIO(out)))
        loss = [row for row in rows if row["key"] == "loss"]
        self.assertEqual([row["value"] for row in loss][:3], ["NaN", "inf", "-inf"])
        vals = [csv_float(row["value"]) for row in loss]
        want = [p[1] for p in sorted(r["metrics"]["loss"], key=lambda p: (p[2], p[0]))]
        for a, b in zip(vals, want):
            self.assertTrue((math.isnan(a) and math.isnan(b)) or bits(a) == bits(b)
                            or (a == 0 and b == 0), (a, b))
        self.assertEqual(len(rows), sum(len(set(p)) for p in r["metrics"].values()))
        self.assertEqual({row["run_id"] for row in rows}, {r["id"]})

    def test_runs_csv_and_ndjson(self):
        out = self.export("runs", "--view", "all")
        rows = {row["run_id"]: row for row in csv.DictReader(io.StringIO(out))}
        self.assertEqual(len(rows), sum(1 for _ in all_runs()))
        for e, r in all_runs():
            row = rows[r["id"]]
            self.assertEqual(row["experiment_id"], e["id"])
            self.assertEqual(row["run_name"], r["name"])
            self.assertEqual(row["status"], r["status"])
            self.assertEqual(row["lifecycle_stage"], r["lifecycle"])
            self.assertEqual(row["end_time"], "" if r["end"] is None else str(r["end"]))
            for k, v in r["params"].items():
                self.assertEqual(row["params." + k], v)
            for k, v in r["tags"].items():
                self.assertEqual(row["tags." + k], v)
        out = self.export("runs", "--format", "ndjson", "--view", "all")
        objs = {o["run_id"]: o for o in map(json.loads, out.splitlines())}
        for e, r in all_runs():
            o = objs[r["id"]]
            self.assertEqual(o["params"], r["params"])
            self.assertEqual(o["tags"], r["tags"])
            for k, pts in r["metrics"].items():
                latest = max(pts, key=lambda p: (p[2], p[0], 0.0 if math.isnan(p[1]) else p[1]))
                got = o["metrics"][k]
                got = float(got) if isinstance(got, str) else got
                self.assertTrue(got == latest[1] or (math.isnan(got) and math.isnan(latest[1])),
                                (k, got, latest))

    def test_filters(self):
        out = self.export("runs", "--format", "ndjson", "--filter",
                          "params.lr = '0.001' and attributes.status = 'FINISHED'")
        ids = [json.loads(l)["run_id"] for l in out.splitlines()]
        self.assertEqual(ids, [SAMPLE["experiments"][1]["runs"][0]["id"]])
        out = self.export("runs", "--format", "ndjson", "--view", "all", "--filter",
                          "metrics.acc > 0.5")
        ids = [json.loads(l)["run_id"] for l in out.splitlines()]
        self.assertEqual(ids, [SAMPLE["experiments"][1]["runs"][1]["id"]])  # the deleted one
        out = self.export("runs", "--format", "ndjson", "--experiment", "482793114329614521")
        self.assertEqual([json.loads(l)["run_name"] for l in out.splitlines()], ["under big id"])
        out = self.export("experiments", "--format", "ndjson", "--view", "all")
        exps = {o["experiment_id"]: o for o in map(json.loads, out.splitlines())}
        self.assertEqual(exps["1"]["tags"], SAMPLE["experiments"][1]["tags"])
        self.assertEqual(exps["3"]["lifecycle_stage"], "deleted")
        out = self.export("experiments")
        self.assertNotIn("thrown away", out)  # active only by default

    def test_output_file(self):
        path = os.path.join(TMP, "m.csv")
        self.assertEqual(self.export("metrics", "--output", path), "")
        with open(path) as f:
            self.assertTrue(f.readline().startswith("run_id,experiment_id,key,step"))

    def test_errors(self):
        self.export("runs", "--filter", "metrics.acc >>> 1", code=2)
        self.export("nothing", code=2)
        self.export("runs", "--format", "xml", code=2)
        self.export("runs", "--experiment", "abc", code=2)
        p = tally("export", "runs")
        self.assertEqual(p.returncode, 2)
        p = tally("export", "runs", "--data", os.path.join(TMP, "nope"))
        self.assertEqual(p.returncode, 1)
        self.assertIn("not a Tally data directory", p.stderr)
        self.assertEqual(tally("export", "--help").returncode, 0)
        with TallyServer() as srv:
            p = tally("export", "runs", "--data", srv.data_dir)
            self.assertEqual(p.returncode, 1)
            self.assertIn("server is running", p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
