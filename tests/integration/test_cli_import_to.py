"""test_cli_import_to.py — `tally import ... --to URL`: an MLflow file store
and an MLflow SQLite database (mlflow_stores.py, with a model registry)
imported into a running `tally serve` over its REST, native ingest and
artifact endpoints, then compared through the same server: experiments
(by name), runs (mapped through the client-side ledger: new ids), params
and tags (long values truncated as the REST API does), every metric point,
artifact bytes, registered models with version numbers (gaps kept through
deleted placeholders), stages, sources, mapped run ids, tags, aliases. A
second import sends nothing; an import that failed half-way resumes its
created runs instead of making new ones; a ledger of another destination
is refused.
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_harness import TallyServer  # noqa: E402
import mlflow_stores  # noqa: E402
from test_cli_import import ImportCase, tally  # noqa: E402


def read_ledger(path):
    """source run id -> Tally run id, from the R records (last wins)."""
    ids = {}
    with open(path, encoding="utf-8") as f:
        for line in f.read().split("\n")[1:]:
            fld = line.split("\t")
            if fld[0] == "R":
                ids[fld[1]] = fld[2]
    return ids


class TestImportTo(ImportCase):
    def check_remote(self, srv, data, models, ids, from_sql=False):
        self.check_all(srv, data, from_sql, run_ids=ids)
        self.check_registry(srv, models, run_ids=ids)

    def test_mlruns_to_server(self):
        data = mlflow_stores.sample_data(seed=21)
        models = mlflow_stores.sample_registry(data)
        mlruns = os.path.join(self.tmp, "mlruns")
        mlflow_stores.write_file_store(mlruns, data, models=models)
        with TallyServer() as srv:
            p = tally("import", "mlruns", mlruns, "--to", srv.base_url, check=0)
            self.assertIn("6 runs imported, 0 already done", p.stdout)
            self.assertIn("2 registered models imported (6 versions), 0 already done", p.stdout)
            p = tally("import", "mlruns", mlruns, "--to", srv.base_url, check=0)
            self.assertIn("0 runs imported, 6 already done, 0 metric points, 0 artifact files",
                          p.stdout)
            self.assertIn("0 registered models imported (0 versions), 2 already done", p.stdout)
            ids = read_ledger(mlruns + ".tally-import-ledger")
            self.assertEqual(len(ids), 6)
            self.check_remote(srv, data, models, ids)
            # the ledger belongs to this server: another URL is refused
            p = tally("import", "mlruns", mlruns, "--to", srv.base_url + "/x/..", check=1)
            self.assertIn("is the ledger of another import", p.stderr)

    def test_failure_then_resume(self):
        data = mlflow_stores.sample_data(seed=23)
        models = mlflow_stores.sample_registry(data)
        mlruns = os.path.join(self.tmp, "mlruns")
        mlflow_stores.write_file_store(mlruns, data, models=models)
        run = data["experiments"][1]["runs"][0]  # params, tags, points and artifacts
        bad = os.path.join(mlruns, "1", run["id"], "metrics", "zz_bad")
        with open(bad, "w") as f:
            f.write("1700000000000 0.5 0\nnot a metric line\n")
        with TallyServer() as srv:
            p = tally("import", "mlruns", mlruns, "--to", srv.base_url, "--threads", "1",
                      check=1)
            self.assertIn("zz_bad:2", p.stderr)
            os.unlink(bad)
            p = tally("import", "mlruns", mlruns, "--to", srv.base_url, check=0)
            ids = read_ledger(mlruns + ".tally-import-ledger")
            self.assertEqual(len(ids), 6)
            st, eb = srv.api("experiments/get-by-name", method="GET",
                             params={"experiment_name": data["experiments"][1]["name"]})
            self.assertEqual(st, 200, eb)
            eid = eb["experiment"]["experiment_id"]
            st, body = srv.api("runs/search", {"experiment_ids": [eid], "run_view_type": "ALL",
                                               "max_results": 1000})
            self.assertEqual(st, 200, body)
            n = sum(1 for r in body.get("runs", []) if r["info"]["run_name"] == run["name"])
            self.assertEqual(n, 1)  # resumed, not created twice
            self.check_remote(srv, data, models, ids)

    def test_mlflow_db_to_server(self):
        data = mlflow_stores.sample_data(seed=22)
        models = mlflow_stores.sample_registry(data)
        db = os.path.join(self.tmp, "mlflow.db")
        art = os.path.join(self.tmp, "mlartifacts")
        mlflow_stores.write_sqlite_db(db, data, art, models=models)
        ledger = os.path.join(self.tmp, "my.ledger")
        with TallyServer() as srv:
            p = tally("import", "mlflow-db", db, "--artifact-root", art, "--to",
                      srv.base_url, "--ledger", ledger, check=0)
            self.assertIn("6 runs imported", p.stdout)
            p = tally("import", "mlflow-db", db, "--artifact-root", art, "--to",
                      srv.base_url, "--ledger", ledger, check=0)
            self.assertIn("0 runs imported, 6 already done, 0 metric points", p.stdout)
            self.check_remote(srv, data, models, read_ledger(ledger), from_sql=True)

    def test_usage(self):
        p = tally("import", "mlruns", self.tmp, "--to", "http://127.0.0.1:9", "--data", self.tmp)
        self.assertEqual(p.returncode, 2)
        p = tally("import", "mlruns", self.tmp, "--data", self.tmp, "--ledger", "x")
        self.assertEqual(p.returncode, 2)
        p = tally("import", "mlruns", self.tmp, "--to", "http://127.0.0.1:9")
        self.assertEqual(p.returncode, 1)
        self.assertIn("not an MLflow tracking server that answers", p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
