"""test_api_registry.py — MLflow's model registry against a real `tally serve`
(mlflow-rest-api.md §3.7, §4, §5.4, §6, §9): every endpoint under /api/2.0/
and /ajax-api/2.0/, success and error paths, status codes and error codes,
JSON shapes, version numbering after deletes, aliases (incl. `latest`),
stage transitions with archive_existing_versions, search grammar, ordering
and paging, prompts hidden from searches.

Python stdlib only; run directly or by CTest (py_test_api_registry).
"""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_harness import TallyServer  # noqa: E402

SRV = None


def setUpModule():
    global SRV
    SRV = TallyServer().start()


def tearDownModule():
    try:
        SRV.stop()
    finally:
        SRV.cleanup()


def api(rel, obj=None, method="POST", params=None, ajax=False):
    if ajax:
        path = "/ajax-api/2.0/mlflow/" + rel
        if method == "GET":
            return SRV.get(path, params)
        return SRV.post(path, obj, method=method)
    return SRV.api(rel, obj, method=method, params=params)


_n = [0]


def uniq(prefix="m"):
    _n[0] += 1
    return f"{prefix}-{os.getpid()}-{_n[0]}-{time.monotonic_ns()}"


def new_model(name=None, **kw):
    body = {"name": name or uniq()}
    body.update(kw)
    st, b = api("registered-models/create", body)
    assert st == 200, (st, b)
    return b["registered_model"]["name"]


def new_version(name, source="s3://bucket/model", **kw):
    body = {"name": name, "source": source}
    body.update(kw)
    st, b = api("model-versions/create", body)
    assert st == 200, (st, b)
    return b["model_version"]


def err(st, b, status, code):
    assert st == status, (st, b)
    assert isinstance(b, dict) and b.get("error_code") == code, b
    assert isinstance(b.get("message"), str) and b["message"], b


class RegisteredModels(unittest.TestCase):
    def test_create_get_shape(self):
        name = uniq()
        st, b = api("registered-models/create",
                    {"name": name, "description": "desc",
                     "tags": [{"key": "k", "value": "1"}, {"key": "k", "value": "2"}]})
        self.assertEqual(st, 200, b)
        rm = b["registered_model"]
        self.assertEqual(rm["name"], name)
        self.assertEqual(rm["description"], "desc")
        self.assertIsInstance(rm["creation_timestamp"], int)
        self.assertEqual(rm["creation_timestamp"], rm["last_updated_timestamp"])
        self.assertGreater(rm["creation_timestamp"], 1_600_000_000_000)
        self.assertEqual(rm["tags"], [{"key": "k", "value": "2"}])  # last wins
        self.assertNotIn("latest_versions", rm)
        self.assertNotIn("aliases", rm)
        self.assertNotIn("user_id", rm)
        st, b = api("registered-models/get", method="GET", params={"name": name})
        self.assertEqual(st, 200, b)
        self.assertEqual(b["registered_model"], rm)
        # ajax-api twin
        st, b2 = api("registered-models/get", method="GET", params={"name": name}, ajax=True)
        self.assertEqual(st, 200)
        self.assertEqual(b2, b)

    def test_create_errors(self):
        name = new_model()
        err(*api("registered-models/create", {"name": name}), 400, "RESOURCE_ALREADY_EXISTS")
        err(*api("registered-models/create", {}), 400, "INVALID_PARAMETER_VALUE")
        err(*api("registered-models/create", {"name": ""}), 400, "INVALID_PARAMETER_VALUE")
        err(*api("registered-models/create", {"name": "x" * 300}), 400,
            "INVALID_PARAMETER_VALUE")
        st, b = api("registered-models/create",
                    {"name": uniq(), "tags": [{"key": "bad/../key", "value": "v"}]})
        err(st, b, 400, "INVALID_PARAMETER_VALUE")
        st, b = api("registered-models/create",
                    {"name": uniq(), "tags": [{"key": "k", "value": "v" * 100001}]})
        err(st, b, 400, "INVALID_PARAMETER_VALUE")
        # Content-Type rule applies
        st, _, _ = SRV.request("POST", "/api/2.0/mlflow/registered-models/create",
                               body='{"name":"ct"}')
        self.assertEqual(st, 400)

    def test_get_missing(self):
        err(*api("registered-models/get", method="GET", params={"name": uniq()}), 404,
            "RESOURCE_DOES_NOT_EXIST")
        err(*api("registered-models/get", method="GET", params={}), 400,
            "INVALID_PARAMETER_VALUE")

    def test_update(self):
        name = new_model(description="old")
        time.sleep(0.005)
        st, b = api("registered-models/update", {"name": name, "description": "new"},
                    method="PATCH")
        self.assertEqual(st, 200, b)
        rm = b["registered_model"]
        self.assertEqual(rm["description"], "new")
        self.assertGreater(rm["last_updated_timestamp"], rm["creation_timestamp"])
        st, b = api("registered-models/update", {"name": name}, method="PATCH")
        self.assertEqual(b["registered_model"]["description"], "")  # absent clears
        err(*api("registered-models/update", {"name": uniq()}, method="PATCH"), 404,
            "RESOURCE_DOES_NOT_EXIST")
        # wrong method is an unknown endpoint
        err(*api("registered-models/update", {"name": name}), 404, "ENDPOINT_NOT_FOUND")

    def test_rename_moves_everything(self):
        name = new_model(tags=[{"key": "t", "value": "v"}])
        new_version(name, tags=[{"key": "vt", "value": "1"}])
        new_version(name)
        self.assertEqual(api("registered-models/alias",
                             {"name": name, "alias": "champ", "version": "2"})[0], 200)
        new_name = uniq("renamed")
        st, b = api("registered-models/rename", {"name": name, "new_name": new_name})
        self.assertEqual(st, 200, b)
        rm = b["registered_model"]
        self.assertEqual(rm["name"], new_name)
        self.assertEqual(rm["tags"], [{"key": "t", "value": "v"}])
        self.assertEqual(rm["aliases"], [{"alias": "champ", "version": "2"}])
        err(*api("registered-models/get", method="GET", params={"name": name}), 404,
            "RESOURCE_DOES_NOT_EXIST")
        st, b = api("model-versions/get", method="GET", params={"name": new_name, "version": "1"})
        self.assertEqual(st, 200)
        self.assertEqual(b["model_version"]["name"], new_name)
        self.assertEqual(b["model_version"]["tags"], [{"key": "vt", "value": "1"}])
        st, b = api("registered-models/alias", method="GET",
                    params={"name": new_name, "alias": "champ"})
        self.assertEqual(b["model_version"]["version"], "2")
        # the next version continues the numbering
        self.assertEqual(new_version(new_name)["version"], "3")
        other = new_model()
        err(*api("registered-models/rename", {"name": new_name, "new_name": other}), 400,
            "RESOURCE_ALREADY_EXISTS")
        err(*api("registered-models/rename", {"name": uniq(), "new_name": uniq()}), 404,
            "RESOURCE_DOES_NOT_EXIST")
        err(*api("registered-models/rename", {"name": other}), 400, "INVALID_PARAMETER_VALUE")

    def test_delete_cascades(self):
        name = new_model(tags=[{"key": "t", "value": "v"}])
        new_version(name)
        new_version(name)
        api("registered-models/alias", {"name": name, "alias": "a", "version": "1"})
        st, b = api("registered-models/delete", {"name": name}, method="DELETE")
        self.assertEqual((st, b), (200, {}))
        err(*api("registered-models/get", method="GET", params={"name": name}), 404,
            "RESOURCE_DOES_NOT_EXIST")
        err(*api("model-versions/get", method="GET", params={"name": name, "version": "1"}),
            404, "RESOURCE_DOES_NOT_EXIST")
        err(*api("registered-models/delete", {"name": name}, method="DELETE"), 404,
            "RESOURCE_DOES_NOT_EXIST")
        # recreated: a fresh model, no tags, numbering from 1
        new_model(name)
        st, b = api("registered-models/get", method="GET", params={"name": name})
        self.assertNotIn("tags", b["registered_model"])
        self.assertEqual(new_version(name)["version"], "1")

    def test_tags(self):
        name = new_model()
        self.assertEqual(api("registered-models/set-tag",
                             {"name": name, "key": "k", "value": "v"}), (200, {}))
        self.assertEqual(api("registered-models/set-tag",
                             {"name": name, "key": "k", "value": "w"}), (200, {}))
        self.assertEqual(api("registered-models/set-tag", {"name": name, "key": "e"}), (200, {}))
        st, b = api("registered-models/get", method="GET", params={"name": name})
        self.assertEqual(b["registered_model"]["tags"],
                         [{"key": "e", "value": ""}, {"key": "k", "value": "w"}])
        self.assertEqual(api("registered-models/delete-tag", {"name": name, "key": "k"},
                             method="DELETE"), (200, {}))
        # missing key is not an error (contrast run tags)
        self.assertEqual(api("registered-models/delete-tag", {"name": name, "key": "k"},
                             method="DELETE"), (200, {}))
        err(*api("registered-models/set-tag", {"name": uniq(), "key": "k", "value": "v"}), 404,
            "RESOURCE_DOES_NOT_EXIST")
        err(*api("registered-models/delete-tag", {"name": uniq(), "key": "k"}, method="DELETE"),
            404, "RESOURCE_DOES_NOT_EXIST")
        err(*api("registered-models/set-tag", {"name": name, "value": "v"}), 400,
            "INVALID_PARAMETER_VALUE")
        err(*api("registered-models/set-tag", {"name": name, "key": "k" * 251, "value": "v"}),
            400, "INVALID_PARAMETER_VALUE")

    def test_get_latest_versions(self):
        name = new_model()
        for _ in range(4):
            new_version(name)
        api("model-versions/transition-stage", {"name": name, "version": "1", "stage": "Staging"})
        api("model-versions/transition-stage",
            {"name": name, "version": "2", "stage": "production"})
        api("model-versions/delete", {"name": name, "version": "4"}, method="DELETE")
        st, b = api("registered-models/get-latest-versions", {"name": name})
        self.assertEqual(st, 200, b)
        got = {(v["current_stage"], v["version"]) for v in b["model_versions"]}
        self.assertEqual(got, {("None", "3"), ("Staging", "1"), ("Production", "2")})
        st, b = api("registered-models/get-latest-versions",
                    {"name": name, "stages": ["PRODUCTION", "archived"]})
        self.assertEqual([v["version"] for v in b["model_versions"]], ["2"])
        st, b = api("registered-models/get-latest-versions", method="GET",
                    params={"name": name, "stages": "staging"})
        self.assertEqual(st, 200, b)
        self.assertEqual([v["version"] for v in b["model_versions"]], ["1"])
        st, b = api("registered-models/get-latest-versions",
                    {"name": name, "stages": ["Archived"]})
        self.assertEqual((st, b), (200, {}))
        err(*api("registered-models/get-latest-versions", {"name": name, "stages": ["bogus"]}),
            400, "INVALID_PARAMETER_VALUE")
        err(*api("registered-models/get-latest-versions", {"name": uniq()}), 404,
            "RESOURCE_DOES_NOT_EXIST")
        # registered model's latest_versions agree
        st, b = api("registered-models/get", method="GET", params={"name": name})
        self.assertEqual({v["version"] for v in b["registered_model"]["latest_versions"]},
                         {"1", "2", "3"})


class Aliases(unittest.TestCase):
    def test_alias_lifecycle(self):
        name = new_model()
        new_version(name)
        new_version(name)
        self.assertEqual(api("registered-models/alias",
                             {"name": name, "alias": "champ", "version": "1"}), (200, {}))
        st, b = api("registered-models/alias", method="GET",
                    params={"name": name, "alias": "champ"})
        self.assertEqual(st, 200, b)
        self.assertEqual(b["model_version"]["version"], "1")
        self.assertEqual(b["model_version"]["aliases"], ["champ"])
        # upsert moves it
        api("registered-models/alias", {"name": name, "alias": "champ", "version": 2})
        st, b = api("model-versions/get", method="GET", params={"name": name, "version": "1"})
        self.assertNotIn("aliases", b["model_version"])
        st, b = api("model-versions/get", method="GET", params={"name": name, "version": "2"})
        self.assertEqual(b["model_version"]["aliases"], ["champ"])
        # unknown alias: 400, not 404
        err(*api("registered-models/alias", method="GET",
                 params={"name": name, "alias": "nope"}), 400, "INVALID_PARAMETER_VALUE")
        # delete; missing alias is not an error
        self.assertEqual(api("registered-models/alias", {"name": name, "alias": "champ"},
                             method="DELETE"), (200, {}))
        self.assertEqual(api("registered-models/alias", {"name": name, "alias": "champ"},
                             method="DELETE"), (200, {}))
        err(*api("registered-models/alias", {"name": uniq(), "alias": "a"}, method="DELETE"),
            404, "RESOURCE_DOES_NOT_EXIST")

    def test_alias_rules(self):
        name = new_model()
        new_version(name)
        for bad in ["latest", "LATEST", "v1", "V22", "has space", "a.b", "x" * 256]:
            err(*api("registered-models/alias", {"name": name, "alias": bad, "version": "1"}),
                400, "INVALID_PARAMETER_VALUE")
        self.assertEqual(api("registered-models/alias",
                             {"name": name, "alias": "v1x-ok_2", "version": "1"})[0], 200)
        err(*api("registered-models/alias", {"name": name, "alias": "a", "version": "9"}), 404,
            "RESOURCE_DOES_NOT_EXIST")
        err(*api("registered-models/alias", {"name": name, "alias": "a", "version": "x"}), 400,
            "INVALID_PARAMETER_VALUE")
        err(*api("registered-models/alias", {"name": name, "alias": "a"}), 400,
            "INVALID_PARAMETER_VALUE")
        err(*api("registered-models/alias", {"name": uniq(), "alias": "a", "version": "1"}), 404,
            "RESOURCE_DOES_NOT_EXIST")

    def test_latest_alias(self):
        name = new_model()
        err(*api("registered-models/alias", method="GET",
                 params={"name": name, "alias": "latest"}), 404, "RESOURCE_DOES_NOT_EXIST")
        new_version(name)
        new_version(name)
        new_version(name)
        api("model-versions/delete", {"name": name, "version": "3"}, method="DELETE")
        for spelling in ["latest", "Latest", "LATEST"]:
            st, b = api("registered-models/alias", method="GET",
                        params={"name": name, "alias": spelling})
            self.assertEqual(st, 200, b)
            self.assertEqual(b["model_version"]["version"], "2")

    def test_deleting_version_drops_its_aliases(self):
        name = new_model()
        new_version(name)
        new_version(name)
        api("registered-models/alias", {"name": name, "alias": "a1", "version": "1"})
        api("registered-models/alias", {"name": name, "alias": "a2", "version": "2"})
        api("model-versions/delete", {"name": name, "version": "1"}, method="DELETE")
        st, b = api("registered-models/get", method="GET", params={"name": name})
        self.assertEqual(b["registered_model"]["aliases"], [{"alias": "a2", "version": "2"}])
        err(*api("registered-models/alias", method="GET", params={"name": name, "alias": "a1"}),
            400, "INVALID_PARAMETER_VALUE")


class ModelVersions(unittest.TestCase):
    def test_create_shape(self):
        name = new_model()
        v = new_version(name, run_id="0123abcd", run_link="http://x/run",
                        description="first", tags=[{"key": "t", "value": "1"}])
        self.assertEqual(v["name"], name)
        self.assertEqual(v["version"], "1")
        self.assertIsInstance(v["version"], str)
        self.assertEqual(v["current_stage"], "None")
        self.assertEqual(v["status"], "READY")
        self.assertEqual(v["source"], "s3://bucket/model")
        self.assertEqual(v["run_id"], "0123abcd")
        self.assertEqual(v["run_link"], "http://x/run")
        self.assertEqual(v["description"], "first")
        self.assertEqual(v["tags"], [{"key": "t", "value": "1"}])
        self.assertIsInstance(v["creation_timestamp"], int)
        self.assertNotIn("aliases", v)
        self.assertNotIn("user_id", v)
        # creating a version bumps the model
        st, b = api("registered-models/get", method="GET", params={"name": name})
        self.assertGreaterEqual(b["registered_model"]["last_updated_timestamp"],
                                v["creation_timestamp"])
        # ajax twin
        st, b = api("model-versions/get", method="GET", params={"name": name, "version": "1"},
                    ajax=True)
        self.assertEqual(st, 200)
        self.assertEqual(b["model_version"], v)

    def test_create_errors(self):
        name = new_model()
        err(*api("model-versions/create", {"name": uniq(), "source": "s3://b/m"}), 404,
            "RESOURCE_DOES_NOT_EXIST")
        err(*api("model-versions/create", {"name": name}), 400, "INVALID_PARAMETER_VALUE")
        err(*api("model-versions/create", {"source": "s3://b/m"}), 400, "INVALID_PARAMETER_VALUE")
        for bad in ["s3://b/../x", "s3://b/%2e%2e/x", "s3://b/%252E%252E/x", "..",
                    "http://h/a/..%2Fb"]:
            err(*api("model-versions/create", {"name": name, "source": bad}), 400,
                "INVALID_PARAMETER_VALUE")
        # local paths need a run whose artifact dir contains them
        err(*api("model-versions/create", {"name": name, "source": "/tmp/model"}), 400,
            "INVALID_PARAMETER_VALUE")
        err(*api("model-versions/create", {"name": name, "source": "file:///tmp/model"}), 400,
            "INVALID_PARAMETER_VALUE")
        st, b = api("runs/create", {"experiment_id": "0"})
        run_id = b["run"]["info"]["run_id"]
        # the default artifact root is mlflow-artifacts:/, not local: refused
        err(*api("model-versions/create",
                 {"name": name, "source": "/tmp/model", "run_id": run_id}), 400,
            "INVALID_PARAMETER_VALUE")
        err(*api("model-versions/create",
                 {"name": name, "source": "/tmp/model", "run_id": "f" * 32}), 404,
            "RESOURCE_DOES_NOT_EXIST")
        # no version was consumed by the failures
        self.assertEqual(new_version(name)["version"], "1")

    def test_local_source_inside_run_dir(self):
        loc = "/tmp/" + uniq("local-exp")
        st, b = api("experiments/create", {"name": uniq("e"), "artifact_location": loc})
        self.assertEqual(st, 200, b)
        st, b = api("runs/create", {"experiment_id": b["experiment_id"]})
        run = b["run"]["info"]
        name = new_model()
        v = new_version(name, source=run["artifact_uri"] + "/model", run_id=run["run_id"])
        self.assertEqual(v["source"], run["artifact_uri"] + "/model")
        v = new_version(name, source="file://" + run["artifact_uri"] + "/model",
                        run_id=run["run_id"])
        self.assertEqual(v["version"], "2")
        err(*api("model-versions/create",
                 {"name": name, "source": loc + "/other", "run_id": run["run_id"]}), 400,
            "INVALID_PARAMETER_VALUE")

    def test_numbers_never_reused(self):
        name = new_model()
        for i in range(1, 4):
            self.assertEqual(new_version(name)["version"], str(i))
        self.assertEqual(api("model-versions/delete", {"name": name, "version": "3"},
                             method="DELETE"), (200, {}))
        self.assertEqual(new_version(name)["version"], "4")
        api("model-versions/delete", {"name": name, "version": "4"}, method="DELETE")
        api("model-versions/delete", {"name": name, "version": "2"}, method="DELETE")
        self.assertEqual(new_version(name)["version"], "5")
        # deleted versions are invisible everywhere
        for v in ["2", "3", "4"]:
            err(*api("model-versions/get", method="GET", params={"name": name, "version": v}),
                404, "RESOURCE_DOES_NOT_EXIST")
            err(*api("model-versions/delete", {"name": name, "version": v}, method="DELETE"),
                404, "RESOURCE_DOES_NOT_EXIST")
            err(*api("model-versions/set-tag",
                     {"name": name, "version": v, "key": "k", "value": "v"}), 404,
                "RESOURCE_DOES_NOT_EXIST")
        st, b = api("model-versions/search", method="GET",
                    params={"filter": f"name = '{name}'"})
        self.assertEqual(sorted(v["version"] for v in b["model_versions"]), ["1", "5"])

    def test_get_update_download_uri(self):
        name = new_model()
        new_version(name, source="s3://b/m1", description="d")
        err(*api("model-versions/get", method="GET", params={"name": name, "version": "x"}), 400,
            "INVALID_PARAMETER_VALUE")
        err(*api("model-versions/get", method="GET", params={"name": name, "version": "7"}), 404,
            "RESOURCE_DOES_NOT_EXIST")
        err(*api("model-versions/get", method="GET", params={"name": name}), 400,
            "INVALID_PARAMETER_VALUE")
        time.sleep(0.005)
        st, b = api("model-versions/update", {"name": name, "version": "1",
                                              "description": "new"}, method="PATCH")
        self.assertEqual(st, 200, b)
        self.assertEqual(b["model_version"]["description"], "new")
        self.assertGreater(b["model_version"]["last_updated_timestamp"],
                           b["model_version"]["creation_timestamp"])
        err(*api("model-versions/update", {"name": name, "version": "3"}, method="PATCH"), 404,
            "RESOURCE_DOES_NOT_EXIST")
        st, b = api("model-versions/get-download-uri", method="GET",
                    params={"name": name, "version": "1"})
        self.assertEqual((st, b), (200, {"artifact_uri": "s3://b/m1"}))
        # models:/ sources resolve to the referenced version's location
        api("registered-models/alias", {"name": name, "alias": "prod", "version": "1"})
        other = new_model()
        for i, src in enumerate([f"models:/{name}/1", f"models:/{name}@prod",
                                 f"models:/{name}/latest", f"models:/{name}/None"], start=1):
            v = new_version(other, source=src)
            self.assertEqual(v["source"], src)
            st, b = api("model-versions/get-download-uri", method="GET",
                        params={"name": other, "version": str(i)})
            self.assertEqual(b, {"artifact_uri": "s3://b/m1"})
        err(*api("model-versions/create", {"name": other, "source": f"models:/{name}/9"}), 404,
            "RESOURCE_DOES_NOT_EXIST")

    def test_transition_stage(self):
        name = new_model()
        for _ in range(3):
            new_version(name)
        st, b = api("model-versions/transition-stage",
                    {"name": name, "version": "1", "stage": "production"})
        self.assertEqual(st, 200, b)
        self.assertEqual(b["model_version"]["current_stage"], "Production")
        api("model-versions/transition-stage", {"name": name, "version": "2",
                                                "stage": "Production"})
        st, b = api("model-versions/transition-stage",
                    {"name": name, "version": "3", "stage": "PRODUCTION",
                     "archive_existing_versions": True})
        self.assertEqual(b["model_version"]["current_stage"], "Production")
        stages = {}
        for v in ["1", "2", "3"]:
            st, b = api("model-versions/get", method="GET", params={"name": name, "version": v})
            stages[v] = b["model_version"]["current_stage"]
        self.assertEqual(stages, {"1": "Archived", "2": "Archived", "3": "Production"})
        # without the flag others stay
        api("model-versions/transition-stage", {"name": name, "version": "1",
                                                "stage": "Production"})
        st, b = api("model-versions/get", method="GET", params={"name": name, "version": "3"})
        self.assertEqual(b["model_version"]["current_stage"], "Production")
        # Staging archive only touches Staging
        api("model-versions/transition-stage", {"name": name, "version": "2", "stage": "Staging",
                                                "archive_existing_versions": "true"})
        st, b = api("model-versions/get", method="GET", params={"name": name, "version": "1"})
        self.assertEqual(b["model_version"]["current_stage"], "Production")
        err(*api("model-versions/transition-stage",
                 {"name": name, "version": "1", "stage": "Archived",
                  "archive_existing_versions": True}), 400, "INVALID_PARAMETER_VALUE")
        err(*api("model-versions/transition-stage",
                 {"name": name, "version": "1", "stage": "Deleted_Internal"}), 400,
            "INVALID_PARAMETER_VALUE")
        err(*api("model-versions/transition-stage", {"name": name, "version": "1",
                                                     "stage": "bogus"}), 400,
            "INVALID_PARAMETER_VALUE")
        err(*api("model-versions/transition-stage", {"name": name, "version": "1"}), 400,
            "INVALID_PARAMETER_VALUE")
        err(*api("model-versions/transition-stage", {"name": name, "version": "9",
                                                     "stage": "None"}), 404,
            "RESOURCE_DOES_NOT_EXIST")
        err(*api("model-versions/transition-stage",
                 {"name": name, "version": "1", "stage": "None",
                  "archive_existing_versions": "maybe"}), 400, "INVALID_PARAMETER_VALUE")

    def test_version_tags(self):
        name = new_model()
        new_version(name)
        self.assertEqual(api("model-versions/set-tag",
                             {"name": name, "version": "1", "key": "k", "value": "v"}), (200, {}))
        self.assertEqual(api("model-versions/set-tag",
                             {"name": name, "version": "1", "key": "e", "value": ""}), (200, {}))
        err(*api("model-versions/set-tag", {"name": name, "version": "1", "key": "k"}), 400,
            "INVALID_PARAMETER_VALUE")  # value must not be null
        st, b = api("model-versions/get", method="GET", params={"name": name, "version": "1"})
        self.assertEqual(b["model_version"]["tags"],
                         [{"key": "e", "value": ""}, {"key": "k", "value": "v"}])
        self.assertEqual(api("model-versions/delete-tag",
                             {"name": name, "version": "1", "key": "k"}, method="DELETE"),
                         (200, {}))
        self.assertEqual(api("model-versions/delete-tag",
                             {"name": name, "version": "1", "key": "k"}, method="DELETE"),
                         (200, {}))
        err(*api("model-versions/delete-tag", {"name": name, "version": "2", "key": "k"},
                 method="DELETE"), 404, "RESOURCE_DOES_NOT_EXIST")
        err(*api("model-versions/set-tag",
                 {"name": uniq(), "version": "1", "key": "k", "value": "v"}), 404,
            "RESOURCE_DOES_NOT_EXIST")
        err(*api("model-versions/set-tag",
                 {"name": name, "version": "1", "key": "/abs", "value": "v"}), 400,
            "INVALID_PARAMETER_VALUE")


class Search(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.prefix = uniq("srch")
        cls.names = [f"{cls.prefix}-a", f"{cls.prefix}-b", f"{cls.prefix}-C"]
        for i, n in enumerate(cls.names):
            new_model(n, tags=[{"key": "team", "value": "x" if i < 2 else "y"}])
            for k in range(3):
                new_version(n, source=f"s3://b/{n}/{k}", run_id=f"run{k}",
                            tags=[{"key": "q", "value": str(k)}])
                time.sleep(0.002)
        # a prompt: hidden unless asked for
        cls.prompt = f"{cls.prefix}-prompt"
        new_model(cls.prompt, tags=[{"key": "mlflow.prompt.is_prompt", "value": "true"}])
        new_version(cls.prompt, source="s3://b/p")

    def models(self, **params):
        st, b = api("registered-models/search", method="GET", params=params)
        self.assertEqual(st, 200, b)
        return [m["name"] for m in b.get("registered_models", [])], b.get("next_page_token")

    def versions(self, **params):
        st, b = api("model-versions/search", method="GET", params=params)
        self.assertEqual(st, 200, b)
        return [(v["name"], v["version"]) for v in b.get("model_versions", [])], \
            b.get("next_page_token")

    def test_models_filter(self):
        p = self.prefix
        self.assertEqual(self.models(filter=f"name LIKE '{p}-%'")[0], sorted(self.names))
        self.assertEqual(self.models(filter=f"name = '{p}-a'")[0], [f"{p}-a"])
        self.assertEqual(self.models(filter=f"name ILIKE '{p}-c'")[0], [f"{p}-C"])
        self.assertEqual(self.models(filter=f"name LIKE '{p}-c'")[0], [])
        self.assertEqual(self.models(filter=f"name LIKE '{p}-%' AND tags.team = 'x'")[0],
                         sorted(self.names[:2]))
        self.assertEqual(self.models(filter=f"attribute.name LIKE '{p}%' and tag.team != 'x'")[0],
                         [f"{p}-C"])
        self.assertEqual(self.models(filter=f"name != '{p}-a' AND name LIKE '{p}-_'")[0],
                         sorted(self.names[1:]))
        # prompts: excluded unless the filter names the tag
        self.assertNotIn(self.prompt, self.models(filter=f"name LIKE '{p}%'")[0])
        self.assertEqual(self.models(filter=f"name LIKE '{p}%' AND "
                                     "tags.`mlflow.prompt.is_prompt` = 'true'")[0], [self.prompt])

    def test_models_order_and_paging(self):
        p = self.prefix
        f = f"name LIKE '{p}-%'"
        self.assertEqual(self.models(filter=f, order_by="name DESC")[0],
                         sorted(self.names, reverse=True))
        got = self.models(filter=f, order_by=["last_updated_timestamp DESC"])[0]
        self.assertEqual(sorted(got), sorted(self.names))
        self.assertEqual(got, self.models(filter=f, order_by=["timestamp DESC"])[0])
        seen, tok = [], None
        while True:
            params = {"filter": f, "max_results": 2}
            if tok:
                params["page_token"] = tok
            page, tok = self.models(**params)
            self.assertLessEqual(len(page), 2)
            seen += page
            if not tok:
                break
        self.assertEqual(seen, sorted(self.names))
        st, b = api("registered-models/search", method="GET",
                    params={"filter": f"name = '{p}-none'"})
        self.assertEqual((st, b), (200, {}))
        # POST works too (client falls back between methods)
        st, b = api("registered-models/search", {"filter": f"name = '{p}-a'"})
        self.assertEqual([m["name"] for m in b["registered_models"]], [f"{p}-a"])

    def test_models_errors(self):
        for params in [{"max_results": 1001}, {"max_results": 0}, {"max_results": "x"},
                       {"page_token": "garbage!"}, {"filter": "name = 'a' OR name = 'b'"},
                       {"filter": "metrics.x > 1"}, {"filter": "run_id = 'a'"},
                       {"filter": "name > 'a'"}, {"filter": "name = a"},
                       {"order_by": "bogus"}, {"order_by": "name sideways"},
                       {"order_by": ["name", "name DESC"]}]:
            err(*api("registered-models/search", method="GET", params=params), 400,
                "INVALID_PARAMETER_VALUE")
        self.assertEqual(api("registered-models/search", method="GET",
                             params={"max_results": 1000})[0], 200)

    def test_versions_filter(self):
        p = self.prefix
        a, b_, c = self.names
        got, _ = self.versions(filter=f"name = '{a}'")
        self.assertEqual(got, [(a, "3"), (a, "2"), (a, "1")])  # default order: newest first
        got, _ = self.versions(filter=f"name = '{a}' AND version_number >= 2",
                               order_by="version_number ASC")
        self.assertEqual(got, [(a, "2"), (a, "3")])
        got, _ = self.versions(filter=f"name LIKE '{p}-%' AND run_id = 'run1'",
                               order_by="name")
        self.assertEqual(got, [(c, "2"), (a, "2"), (b_, "2")])  # 'C' < 'a' bytewise
        got, _ = self.versions(filter=f"run_id IN ('run0', 'run2') AND name = '{b_}'",
                               order_by="version_number")
        self.assertEqual(got, [(b_, "1"), (b_, "3")])
        got, _ = self.versions(filter=f"source_path = 's3://b/{a}/0'")
        self.assertEqual(got, [(a, "1")])
        got, _ = self.versions(filter=f"name ILIKE '{p}-c' AND tags.q = '2'")
        self.assertEqual(got, [(c, "3")])
        got, _ = self.versions(filter=f"name LIKE '{p}%' AND version_number != 1 AND "
                               "version_number < 3", order_by=["name ASC"])
        self.assertEqual(got, [(c, "2"), (a, "2"), (b_, "2")])
        # prompt versions hidden unless asked
        self.assertEqual(self.versions(filter=f"name = '{self.prompt}'")[0], [])

    def test_versions_order_and_paging(self):
        p = self.prefix
        f = f"name LIKE '{p}-%'"
        everything, _ = self.versions(filter=f, order_by=["creation_timestamp ASC"])
        self.assertEqual(len(everything), 9)
        self.assertEqual(everything[0], (self.names[0], "1"))
        self.assertEqual(everything[-1], (self.names[2], "3"))
        got, _ = self.versions(filter=f, order_by=["name DESC", "version_number ASC"])
        self.assertEqual(got[:3], [(self.names[1], "1"), (self.names[1], "2"),
                                   (self.names[1], "3")])
        seen, tok = [], None
        while True:
            params = {"filter": f, "max_results": 4, "order_by": "version_number"}
            if tok:
                params["page_token"] = tok
            page, tok = self.versions(**params)
            seen += page
            if not tok:
                break
        self.assertEqual(len(seen), 9)
        self.assertEqual(len(set(seen)), 9)
        # tie-breakers: name ASC then version DESC
        self.assertEqual(seen[:3], [(self.names[2], "1"), (self.names[0], "1"),
                                    (self.names[1], "1")])

    def test_versions_errors(self):
        for params in [{"max_results": 200001}, {"max_results": -1},
                       {"filter": "version_number = 1.5"}, {"filter": "version_number = 'a'"},
                       {"filter": "name IN ('a')"}, {"filter": "run_id NOT IN ('a')"},
                       {"filter": "params.x = 'a'"}, {"order_by": "source_path"},
                       {"order_by": "tags.x"}, {"page_token": "eyJvZmY="}]:
            err(*api("model-versions/search", method="GET", params=params), 400,
                "INVALID_PARAMETER_VALUE")
        self.assertEqual(api("model-versions/search", method="GET",
                             params={"max_results": 200000, "filter": "name = 'zz'"}),
                         (200, {}))


if __name__ == "__main__":
    unittest.main(verbosity=2)
