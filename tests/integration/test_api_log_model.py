"""test_api_log_model.py — POST mlflow/runs/log-model (mlflow-rest-api.md §3.3):
model metadata appended to the run's JSON-list tag mlflow.log-model.history,
validation of the model JSON, inactive and unknown runs, and the 8000-character
tag cap keeping the list valid JSON."""

import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_harness import TallyServer  # noqa: E402


def model(run_id, path="model", pad=""):
    return json.dumps({"artifact_path": path, "flavors": {"python_function": {}},
                       "utc_time_created": "2026-11-28 09:00:00.000000", "run_id": run_id,
                       "pad": pad})


class LogModel(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = TallyServer().start()
        st, body = cls.srv.api("experiments/create", {"name": "models"})
        cls.exp = body["experiment_id"]

    @classmethod
    def tearDownClass(cls):
        try:
            cls.srv.stop()
        finally:
            cls.srv.cleanup()

    def new_run(self):
        st, body = self.srv.api("runs/create", {"experiment_id": self.exp})
        self.assertEqual(st, 200, body)
        return body["run"]["info"]["run_id"]

    def history(self, run_id):
        st, body = self.srv.api("runs/get", method="GET", params={"run_id": run_id})
        tags = {t["key"]: t["value"] for t in body["run"]["data"].get("tags", [])}
        return json.loads(tags["mlflow.log-model.history"])

    def test_appends(self):
        rid = self.new_run()
        for path in ["m1", "m2"]:
            st, body = self.srv.api("runs/log-model", {"run_id": rid, "model_json": model(rid, path)})
            self.assertEqual((st, body), (200, {}))
        self.assertEqual([m["artifact_path"] for m in self.history(rid)], ["m1", "m2"])

    def test_cap_keeps_valid_json(self):
        rid = self.new_run()
        for i in range(6):
            st, body = self.srv.api("runs/log-model",
                                    {"run_id": rid, "model_json": model(rid, f"m{i}", "x" * 2000)})
            self.assertEqual(st, 200, body)
        hist = self.history(rid)
        self.assertLess(len(hist), 6)
        self.assertEqual(hist[-1]["artifact_path"], "m5")

    def test_errors(self):
        rid = self.new_run()
        cases = [
            ({"run_id": rid}, 400),
            ({"run_id": rid, "model_json": "not json"}, 400),
            ({"run_id": rid, "model_json": "[1]"}, 400),
            ({"run_id": rid, "model_json": json.dumps({"artifact_path": "m"})}, 400),
            ({"run_id": "0" * 32, "model_json": model("0" * 32)}, 404),
        ]
        for obj, status in cases:
            st, body = self.srv.api("runs/log-model", obj)
            self.assertEqual(st, status, (obj, body))
        self.srv.api("runs/delete", {"run_id": rid})
        st, body = self.srv.api("runs/log-model", {"run_id": rid, "model_json": model(rid)})
        self.assertEqual(st, 400, body)
        self.assertEqual(body["error_code"], "INVALID_PARAMETER_VALUE")


if __name__ == "__main__":
    unittest.main(verbosity=2)
