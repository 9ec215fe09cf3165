"""test_logged_models.py — MLflow 3's `mlflow.<flavor>.log_model` against a real
`tally serve`, as the exact sequence of HTTP calls the Python client makes
(mlflow-rest-api.md §8; the mlflow package itself cannot be installed here):
run set-up, runs/get for the run's params, POST logged-models, runs/outputs,
the metric copy for the model's step (get-history + log-batch with model_id),
the model's files PUT through the artifact proxy at the model's artifact_uri,
PATCH finalize to LOGGED_MODEL_READY; then loading it back the two ways the
client resolves a model (models:/<id> via GET logged-models/{id}, runs:/<run>/
<name> via logged-models/search), and the rest of the LoggedModel API: tags,
params, search filters/order/paging, delete, errors, persistence across a
restart."""

import hashlib
import json
import os
import sys
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_harness import TallyServer  # noqa: E402

PROXY = "/api/2.0/mlflow-artifacts/artifacts"

MODEL_FILES = {
    "MLmodel": b"artifact_path: model\nflavors:\n  python_function: {loader_module: mlflow.sklearn}\n"
               b"  sklearn: {pickled_model: model.pkl, sklearn_version: 1.5.0}\n"
               b"mlflow_version: 3.6.0\nmodel_id: MODEL_ID\n",
    "conda.yaml": b"channels: [conda-forge]\ndependencies: [python=3.11, pip]\n",
    "python_env.yaml": b"python: 3.11\nbuild_dependencies: [pip]\n",
    "requirements.txt": b"mlflow==3.6.0\nscikit-learn==1.5.0\n",
    "model.pkl": bytes(range(256)) * 4000,
}


class LoggedModels(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = TallyServer().start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.srv.stop()
        finally:
            cls.srv.cleanup()

    def api(self, method, rel, obj=None, params=None):
        path = "/api/2.0/mlflow/" + rel
        if method == "GET":
            return self.srv.get(path, params)
        return self.srv.post(path, obj, method=method)

    def ok(self, method, rel, obj=None, params=None):
        st, body = self.api(method, rel, obj, params)
        self.assertEqual(st, 200, f"{method} {rel}: {body}")
        return body

    def new_run(self, exp_name):
        st, body = self.api("GET", "experiments/get-by-name", params={"experiment_name": exp_name})
        self.assertEqual(st, 404)
        self.assertEqual(body["error_code"], "RESOURCE_DOES_NOT_EXIST")
        exp = self.ok("POST", "experiments/create", {"name": exp_name})["experiment_id"]
        self.ok("GET", "experiments/get", params={"experiment_id": exp})
        tags = [{"key": "mlflow.user", "value": "ann"},
                {"key": "mlflow.source.name", "value": "train.py"},
                {"key": "mlflow.source.type", "value": "LOCAL"}]
        run = self.ok("POST", "runs/create", {"experiment_id": exp, "user_id": "ann",
                                              "start_time": 1700000000000, "tags": tags})["run"]
        return exp, run["info"]["run_id"]

    def log_model(self, exp, run_id, name, files, step=0):
        """Model.log's HTTP calls, in order (mlflow/models/model.py, MLflow 3)."""
        run = self.ok("GET", "runs/get", params={"run_id": run_id, "run_uuid": run_id})["run"]
        params = run["data"].get("params", [])
        tags = [{"key": "mlflow.user", "value": "ann"},
                {"key": "mlflow.source.name", "value": "train.py"},
                {"key": "mlflow.source.type", "value": "LOCAL"},
                {"key": "mlflow.source.git.commit", "value": "abc123"}]
        model = self.ok("POST", "logged-models", {"experiment_id": exp, "name": name,
                                                  "source_run_id": run_id, "params": params,
                                                  "tags": tags})["model"]
        info = model["info"]
        self.assertEqual(info["status"], "LOGGED_MODEL_PENDING")
        self.assertTrue(info["model_id"].startswith("m-") and len(info["model_id"]) == 34)
        self.assertEqual(info["artifact_uri"],
                         f"mlflow-artifacts:/{exp}/models/{info['model_id']}/artifacts")
        model_id = info["model_id"]
        # _use_logged_model: outputs, then the run's metrics at `step` copied with model_id.
        self.ok("POST", "runs/outputs", {"run_id": run_id,
                                         "models": [{"model_id": model_id, "step": step}]})
        run = self.ok("GET", "runs/get", params={"run_id": run_id})["run"]
        copied = []
        for m in run["data"].get("metrics", []):
            hist = self.ok("GET", "metrics/get-history",
                           params={"run_id": run_id, "metric_key": m["key"], "max_results": 25000})
            copied += [dict(p, model_id=model_id, run_id=run_id)
                       for p in hist.get("metrics", []) if p["step"] == step]
        self.ok("POST", "runs/log-batch", {"run_id": run_id, "metrics": copied})
        # client.log_model_artifacts: one PUT per file under the model's artifact_uri.
        root = info["artifact_uri"][len("mlflow-artifacts:/"):]
        for rel, data in files.items():
            data = data.replace(b"MODEL_ID", model_id.encode())
            st, _, body = self.srv.request("PUT", f"{PROXY}/{root}/{rel}", data,
                                           {"Content-Type": "application/octet-stream"})
            self.assertEqual((st, json.loads(body)), (200, {}), rel)
        model = self.ok("PATCH", f"logged-models/{model_id}",
                        {"model_id": model_id, "status": "LOGGED_MODEL_READY"})["model"]
        self.assertEqual(model["info"]["status"], "LOGGED_MODEL_READY")
        return model

    def download_model(self, artifact_uri, sub=""):
        """What the client does to download a model directory: list, recurse, GET."""
        root = artifact_uri[len("mlflow-artifacts:/"):]
        out = {}
        st, body = self.srv.get(PROXY, {"path": f"{root}/{sub}".rstrip("/")})
        self.assertEqual(st, 200, body)
        for f in body.get("files", []):
            rel = f"{sub}/{f['path']}".lstrip("/")
            if f["is_dir"]:
                out.update(self.download_model(artifact_uri, rel))
            else:
                st, h, data = self.srv.request("GET", f"{PROXY}/{root}/{rel}")
                self.assertEqual(st, 200, rel)
                self.assertEqual(int(h["content-length"]), f["file_size"])
                out[rel] = data
        return out

    # -------------------------------------------------------------------------

    def test_log_model_flow_end_to_end(self):
        exp, run_id = self.new_run("lm-flow")
        self.ok("POST", "runs/log-batch", {"run_id": run_id,
                                           "params": [{"key": "alpha", "value": "0.5"}],
                                           "metrics": [{"key": "rmse", "value": 0.25,
                                                        "timestamp": 1700000001000, "step": 0}]})
        model = self.log_model(exp, run_id, "model", MODEL_FILES)
        model_id = model["info"]["model_id"]
        self.assertEqual(model["info"]["source_run_id"], run_id)
        self.assertEqual(model["info"]["experiment_id"], exp)
        self.assertEqual(model["info"]["name"], "model")
        self.assertEqual(model["data"]["params"], [{"key": "alpha", "value": "0.5"}])
        tags = {t["key"]: t["value"] for t in model["info"]["tags"]}
        self.assertEqual(tags["mlflow.source.git.commit"], "abc123")
        self.assertGreaterEqual(model["info"]["last_updated_timestamp_ms"],
                                model["info"]["creation_timestamp_ms"])
        self.ok("POST", "runs/update", {"run_id": run_id, "status": "FINISHED",
                                        "end_time": 1700000100000})
        # runs/get shows the model among the run's outputs (RunOutputs).
        run = self.ok("GET", "runs/get", params={"run_id": run_id})["run"]
        self.assertEqual(run["outputs"], {"model_outputs": [{"model_id": model_id, "step": 0}]})

        # models:/<model_id>: GET logged-models/{id}, then the files.
        got = self.ok("GET", f"logged-models/{model_id}")["model"]
        self.assertEqual(got["info"]["status"], "LOGGED_MODEL_READY")
        files = self.download_model(got["info"]["artifact_uri"])
        expect = {k: v.replace(b"MODEL_ID", model_id.encode()) for k, v in MODEL_FILES.items()}
        self.assertEqual({k: hashlib.sha256(v).hexdigest() for k, v in files.items()},
                         {k: hashlib.sha256(v).hexdigest() for k, v in expect.items()})

        # runs:/<run_id>/model: the client searches the run's experiment by name.
        found = self.ok("POST", "logged-models/search", {
            "experiment_ids": [exp], "filter": f"source_run_id='{run_id}' AND name='model'",
            "max_results": 2})
        self.assertEqual([m["info"]["model_id"] for m in found["models"]], [model_id])

        # The model's own listing endpoint.
        listing = self.ok("GET", f"logged-models/{model_id}/artifacts/directories")
        self.assertEqual(listing["root_uri"], got["info"]["artifact_uri"])
        self.assertEqual([f["path"] for f in listing["files"]], sorted(MODEL_FILES))
        st, body = self.api("GET", f"logged-models/{model_id}/artifacts/directories",
                            params={"artifact_directory_path": "../../.."})
        self.assertEqual((st, body["error_code"]), (400, "INVALID_PARAMETER_VALUE"))

    def test_tags_params_delete(self):
        exp, run_id = self.new_run("lm-tags")
        m = self.ok("POST", "logged-models", {"experiment_id": exp})["model"]
        mid = m["info"]["model_id"]
        self.assertRegex(m["info"]["name"], r"^[a-z]+-[a-z]+-\d+$")  # generated name
        self.assertNotIn("source_run_id", m["info"])
        m = self.ok("PATCH", f"logged-models/{mid}/tags",
                    {"tags": [{"key": "stage", "value": "dev"}, {"key": "owner", "value": "ann"}]})
        self.assertEqual(m["model"]["info"]["tags"], [{"key": "owner", "value": "ann"},
                                                      {"key": "stage", "value": "dev"}])
        self.ok("PATCH", f"logged-models/{mid}/tags", {"tags": [{"key": "stage", "value": "prod"}]})
        self.ok("DELETE", f"logged-models/{mid}/tags/owner")
        st, body = self.api("DELETE", f"logged-models/{mid}/tags/owner")
        self.assertEqual((st, body["error_code"]), (404, "RESOURCE_DOES_NOT_EXIST"))
        info = self.ok("GET", f"logged-models/{mid}")["model"]["info"]
        self.assertEqual(info["tags"], [{"key": "stage", "value": "prod"}])
        # Tag keys with slashes and dots travel in the URL path.
        self.ok("PATCH", f"logged-models/{mid}/tags", {"tags": [{"key": "a/b.c", "value": "1"}]})
        self.ok("DELETE", f"logged-models/{mid}/tags/" + urllib.parse.quote("a/b.c", safe=""))
        # Params are write-once.
        self.ok("POST", f"logged-models/{mid}/params", {"params": [{"key": "lr", "value": "0.1"}]})
        self.ok("POST", f"logged-models/{mid}/params", {"params": [{"key": "lr", "value": "0.1"}]})
        st, body = self.api("POST", f"logged-models/{mid}/params",
                            {"params": [{"key": "lr", "value": "0.2"}]})
        self.assertEqual((st, body["error_code"]), (400, "INVALID_PARAMETER_VALUE"))
        data = self.ok("GET", f"logged-models/{mid}")["model"]["data"]
        self.assertEqual(data["params"], [{"key": "lr", "value": "0.1"}])
        # UPLOAD_FAILED is a valid final status; PENDING is not.
        st, body = self.api("PATCH", f"logged-models/{mid}", {"status": "LOGGED_MODEL_PENDING"})
        self.assertEqual(st, 400)
        st, body = self.api("PATCH", f"logged-models/{mid}", {})
        self.assertEqual(st, 400)
        m = self.ok("PATCH", f"logged-models/{mid}", {"status": 3})["model"]
        self.assertEqual(m["info"]["status"], "LOGGED_MODEL_UPLOAD_FAILED")
        # Delete: gone for every read and write.
        self.ok("DELETE", f"logged-models/{mid}")
        for method, rel, obj in [("GET", f"logged-models/{mid}", None),
                                 ("DELETE", f"logged-models/{mid}", None),
                                 ("PATCH", f"logged-models/{mid}", {"status": "LOGGED_MODEL_READY"}),
                                 ("PATCH", f"logged-models/{mid}/tags", {"tags": []}),
                                 ("POST", f"logged-models/{mid}/params", {"params": []})]:
            st, body = self.api(method, rel, obj)
            self.assertEqual((st, body["error_code"]), (404, "RESOURCE_DOES_NOT_EXIST"), rel)
        self.assertEqual(self.ok("POST", "logged-models/search", {"experiment_ids": [exp]}), {})

    def test_search(self):
        exp, run_id = self.new_run("lm-search")
        ids = []
        for i in range(5):
            m = self.ok("POST", "logged-models", {
                "experiment_id": exp, "name": f"net{i}", "model_type": "Classifier" if i % 2 else "LLM",
                "source_run_id": run_id, "tags": [{"key": "fold", "value": str(i)}],
                "params": [{"key": "depth", "value": str(10 + i)}]})["model"]
            ids.append(m["info"]["model_id"])
        self.ok("PATCH", f"logged-models/{ids[2]}", {"status": "LOGGED_MODEL_READY"})

        def search(**kw):
            body = {"experiment_ids": [exp]}
            body.update(kw)
            return self.ok("POST", "logged-models/search", body)

        def names(res):
            return [m["info"]["name"] for m in res.get("models", [])]

        # Default order: newest first (ties, same millisecond, by model_id).
        res = search()
        times = [m["info"]["creation_timestamp_ms"] for m in res["models"]]
        self.assertEqual(times, sorted(times, reverse=True))
        self.assertEqual(sorted(names(res)), ["net0", "net1", "net2", "net3", "net4"])
        self.assertEqual(sorted(names(search(filter="model_type = 'LLM'"))), ["net0", "net2", "net4"])
        self.assertEqual(names(search(filter="tags.fold IN ('1', '3') AND params.depth != '11'")),
                         ["net3"])
        self.assertEqual(names(search(filter="name LIKE 'net%' AND attributes.status = 'READY'")),
                         ["net2"])
        self.assertEqual(names(search(filter="status = 'LOGGED_MODEL_PENDING' and name ilike 'NET1'")),
                         ["net1"])
        self.assertEqual(names(search(filter="tags.missing = 'x'")), [])
        self.assertEqual(names(search(filter="creation_timestamp > 0", order_by=[
            {"field_name": "name", "ascending": True}])), ["net0", "net1", "net2", "net3", "net4"])
        # Paging with opaque tokens.
        seen, token = [], None
        while True:
            body = {"max_results": 2, "order_by": [{"field_name": "name", "ascending": False}]}
            if token:
                body["page_token"] = token
            res = search(**body)
            seen += names(res)
            token = res.get("next_page_token")
            if not token:
                break
        self.assertEqual(seen, ["net4", "net3", "net2", "net1", "net0"])
        # Errors are 400 INVALID_PARAMETER_VALUE.
        for bad in [{"filter": "metrics.acc > 0.5"}, {"filter": "name = 'a' OR name = 'b'"},
                    {"filter": "bogus = 'x'"}, {"filter": "name = unquoted"},
                    {"filter": "creation_timestamp LIKE 'x'"}, {"filter": "name = 'x"},
                    {"order_by": [{"field_name": "metrics.acc"}]},
                    {"order_by": [{"field_name": "nope"}]}, {"max_results": 0},
                    {"page_token": "not-a-token"},
                    {"datasets": [{"dataset_name": "test"}]}, {"experiment_ids": []}]:
            body = {"experiment_ids": [exp]}
            body.update(bad)
            st, res = self.api("POST", "logged-models/search", body)
            self.assertEqual((st, res["error_code"]), (400, "INVALID_PARAMETER_VALUE"), bad)

    def test_create_errors(self):
        exp, run_id = self.new_run("lm-errors")
        cases = [({}, 400), ({"experiment_id": "nope"}, 400), ({"experiment_id": "999999"}, 404),
                 ({"experiment_id": exp, "name": "a/b"}, 400),
                 ({"experiment_id": exp, "name": "a.b"}, 400),
                 ({"experiment_id": exp, "name": ""}, 400),
                 ({"experiment_id": exp, "tags": [{"key": "", "value": "x"}]}, 400),
                 ({"experiment_id": exp, "params": [{"value": "x"}]}, 400),
                 ({"experiment_id": exp, "tags": "not-a-list"}, 400)]
        for body, status in cases:
            st, res = self.api("POST", "logged-models", body)
            self.assertEqual(st, status, body)
            self.assertIn("error_code", res)
        st, res = self.srv.post("/api/2.0/mlflow/logged-models", {"experiment_id": exp},
                                headers={"Content-Type": "text/plain"})
        self.assertEqual(st, 400)
        # A deleted experiment takes no new models.
        exp2 = self.ok("POST", "experiments/create", {"name": "lm-deleted"})["experiment_id"]
        self.ok("POST", "experiments/delete", {"experiment_id": exp2})
        st, res = self.api("POST", "logged-models", {"experiment_id": exp2})
        self.assertEqual((st, res["error_code"]), (400, "INVALID_PARAMETER_VALUE"))
        st, res = self.api("GET", "logged-models/m-00000000000000000000000000000000")
        self.assertEqual((st, res["error_code"]), (404, "RESOURCE_DOES_NOT_EXIST"))
        st, res = self.api("GET", "logged-models/some-id/unknown")
        self.assertEqual((st, res["error_code"]), (404, "ENDPOINT_NOT_FOUND"))
        # runs/outputs: unknown run 404, missing model_id 400, deleted run 400.
        st, res = self.api("POST", "runs/outputs", {"run_id": "0" * 32,
                                                   "models": [{"model_id": "m-x", "step": 0}]})
        self.assertEqual(st, 404)
        st, res = self.api("POST", "runs/outputs", {"run_id": run_id, "models": [{"step": 1}]})
        self.assertEqual(st, 400)
        self.ok("POST", "runs/delete", {"run_id": run_id})
        st, res = self.api("POST", "runs/outputs", {"run_id": run_id,
                                                   "models": [{"model_id": "m-x", "step": 0}]})
        self.assertEqual((st, res["error_code"]), (400, "INVALID_PARAMETER_VALUE"))


class Persistence(unittest.TestCase):
    def test_models_survive_restart(self):
        srv = TallyServer().start()
        try:
            st, body = srv.api("experiments/create", {"name": "persist"})
            exp = body["experiment_id"]
            st, body = srv.api("logged-models", {"experiment_id": exp, "name": "keep",
                                                 "tags": [{"key": "k", "value": "v"}]})
            self.assertEqual(st, 200, body)
            mid = body["model"]["info"]["model_id"]
            srv.stop()
            srv.start()
            st, body = srv.get(f"/api/2.0/mlflow/logged-models/{mid}")
            self.assertEqual(st, 200, body)
            self.assertEqual(body["model"]["info"]["name"], "keep")
            self.assertEqual(body["model"]["info"]["tags"], [{"key": "k", "value": "v"}])
            srv.stop()
        finally:
            srv.stop(expect_code=None)
            srv.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
