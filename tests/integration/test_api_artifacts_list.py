"""test_api_artifacts_list.py — GET mlflow/artifacts/list (mlflow-rest-api.md
§3.5) against a real `tally serve`: run-relative paths, one level, sorted,
directories without sizes, files and missing paths listing nothing, and every
path-traversal form of §4.8 refused with 400 without reading outside the
artifact root (including through a symlink planted inside it)."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_harness import TallyServer  # noqa: E402


class ArtifactsList(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = TallyServer().start()
        st, body = cls.srv.api("experiments/create", {"name": "arts"})
        assert st == 200, body
        cls.exp = body["experiment_id"]
        st, body = cls.srv.api("runs/create", {"experiment_id": cls.exp, "start_time": 1})
        assert st == 200, body
        cls.run_id = body["run"]["info"]["run_id"]
        cls.uri = body["run"]["info"]["artifact_uri"]
        assert cls.uri == f"mlflow-artifacts:/{cls.exp}/{cls.run_id}/artifacts", cls.uri
        # Lay out files where the artifact proxy puts them: <data>/artifacts/<exp>/<run>/artifacts.
        cls.root = os.path.join(cls.srv.data_dir, "artifacts", cls.exp, cls.run_id, "artifacts")
        os.makedirs(os.path.join(cls.root, "model", "sub"))
        for rel, data in [("model/MLmodel", b"flavors: {}\n"), ("model/weights.bin", b"x" * 1234),
                          ("notes.txt", b"hello"), ("model/sub/deep.txt", b"")]:
            with open(os.path.join(cls.root, rel), "wb") as f:
                f.write(data)
        # A secret outside the root, and a symlink to it planted inside.
        cls.secret = os.path.join(cls.srv.data_dir, "secret.txt")
        with open(cls.secret, "w") as f:
            f.write("do not list")
        os.symlink(cls.srv.data_dir, os.path.join(cls.root, "escape"))

    @classmethod
    def tearDownClass(cls):
        try:
            cls.srv.stop()
        finally:
            cls.srv.cleanup()

    def list(self, path=None, **extra):
        params = {"run_id": self.run_id}
        if path is not None:
            params["path"] = path
        params.update(extra)
        return self.srv.api("artifacts/list", method="GET", params=params)

    def test_root_level(self):
        st, body = self.list()
        self.assertEqual(st, 200, body)
        self.assertEqual(body["root_uri"], self.uri)
        self.assertEqual(body["files"], [
            {"path": "model", "is_dir": True},
            {"path": "notes.txt", "is_dir": False, "file_size": 5},
        ])  # the symlink is neither listed nor followed

    def test_sub_directory(self):
        st, body = self.list("model")
        self.assertEqual(st, 200, body)
        self.assertEqual([f["path"] for f in body["files"]],
                         ["model/MLmodel", "model/sub", "model/weights.bin"])
        self.assertEqual(body["files"][2]["file_size"], 1234)
        st, body = self.list("model/./sub/")
        self.assertEqual([f["path"] for f in body["files"]], ["model/sub/deep.txt"])

    def test_file_and_missing_list_nothing(self):
        for path in ["notes.txt", "nope", "model/nope/deeper"]:
            st, body = self.list(path)
            self.assertEqual(st, 200, body)
            self.assertEqual(body, {"root_uri": self.uri}, path)

    def test_traversal_refused(self):
        for path in ["..", "../..", "model/../../x", "%2e%2e", "%252e%252e/x", "/etc", "a#b",
                     "C:/Windows", "..%2f..", "model/%2E%2E/%2E%2E", "a\\..\\b", "x%00y"]:
            st, body = self.list(path)
            self.assertEqual(st, 400, path)
            self.assertEqual(body["error_code"], "INVALID_PARAMETER_VALUE", path)
            self.assertEqual(body["message"], "Invalid path")

    def test_symlink_escape_refused(self):
        st, body = self.list("escape")
        self.assertEqual(st, 400, body)
        st, body = self.list("escape/secret.txt")
        self.assertEqual(st, 400, body)

    def test_errors(self):
        st, body = self.srv.api("artifacts/list", method="GET", params={})
        self.assertEqual(st, 400)
        self.assertEqual(body["error_code"], "INVALID_PARAMETER_VALUE")
        st, body = self.srv.api("artifacts/list", method="GET",
                                params={"run_id": "0" * 32})
        self.assertEqual(st, 404)
        self.assertEqual(body["error_code"], "RESOURCE_DOES_NOT_EXIST")
        st, body = self.list(page_token="bogus")
        self.assertEqual(st, 400)
        # run_uuid is accepted in place of run_id, and /ajax-api/ serves it too.
        st, body = self.srv.get("/ajax-api/2.0/mlflow/artifacts/list", {"run_uuid": self.run_id})
        self.assertEqual(st, 200, body)
        self.assertEqual(len(body["files"]), 2)


if __name__ == "__main__":
    unittest.main(verbosity=2)
