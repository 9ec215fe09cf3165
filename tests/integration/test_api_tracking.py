"""test_api_tracking.py — MLflow's experiment and run endpoints against a real
`tally serve` (mlflow-rest-api.md §3.1, §3.2, §3.3 log-parameter, §4.3, §4.7,
§5.1-§5.3, §6, §7): success and error paths, exact status codes and error
codes, response shapes, search filters, ordering, pagination, npm aliases.

Python stdlib only; run directly (python3 test_api_tracking.py) or by CTest
with TALLY_BIN_DIR pointing at the build directory.
"""

import json
import math
import os
import re
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


def api(rel, obj=None, method="POST", params=None):
    return SRV.api(rel, obj, method=method, params=params)


_counter = [0]


def uniq(prefix="x"):
    _counter[0] += 1
    return f"{prefix}-{os.getpid()}-{_counter[0]}-{time.monotonic_ns()}"


def new_exp(name=None, **kw):
    body = {"name": name or uniq("exp")}
    body.update(kw)
    st, b = api("experiments/create", body)
    assert st == 200, (st, b)
    return b["experiment_id"]


def new_run(exp, **kw):
    body = {"experiment_id": exp}
    body.update(kw)
    st, b = api("runs/create", body)
    assert st == 200, (st, b)
    return b["run"]


def get_run(run_id):
    st, b = api("runs/get", method="GET", params={"run_id": run_id})
    assert st == 200, (st, b)
    return b["run"]


def kvs(lst):
    return {t["key"]: t["value"] for t in lst or []}


class Base(unittest.TestCase):
    def assertError(self, resp, status, code):
        st, b = resp
        self.assertEqual(st, status, b)
        self.assertIsInstance(b, dict, b)
        self.assertEqual(b.get("error_code"), code, b)
        self.assertIsInstance(b.get("message"), str)

    def search_runs(self, exp_ids, **kw):
        body = {"experiment_ids": exp_ids}
        body.update(kw)
        st, b = api("runs/search", body)
        self.assertEqual(st, 200, b)
        return b

    def search_names(self, exp_ids, **kw):
        b = self.search_runs(exp_ids, **kw)
        return [r["info"]["run_name"] for r in b.get("runs", [])]


# ---------------------------------------------------------------------------
# Experiments
# ---------------------------------------------------------------------------


class TestExperiments(Base):
    def test_create_get_shape(self):
        name = uniq("shape")
        eid = new_exp(name, tags=[{"key": "team", "value": "vision"}])
        self.assertIsInstance(eid, str)
        self.assertTrue(eid.isdigit())
        st, b = api("experiments/get", method="GET", params={"experiment_id": eid})
        self.assertEqual(st, 200, b)
        e = b["experiment"]
        self.assertEqual(e["experiment_id"], eid)
        self.assertEqual(e["name"], name)
        self.assertEqual(e["artifact_location"], f"mlflow-artifacts:/{eid}")
        self.assertEqual(e["lifecycle_stage"], "active")
        self.assertIsInstance(e["creation_time"], int)
        self.assertIsInstance(e["last_update_time"], int)
        self.assertEqual(kvs(e["tags"]), {"team": "vision"})
        # No tags: the field is omitted.
        eid2 = new_exp()
        st, b = api("experiments/get", method="GET", params={"experiment_id": eid2})
        self.assertNotIn("tags", b["experiment"])

    def test_default_experiment(self):
        st, b = api("experiments/get", method="GET", params={"experiment_id": "0"})
        self.assertEqual(st, 200, b)
        self.assertEqual(b["experiment"]["name"], "Default")
        self.assertEqual(b["experiment"]["artifact_location"], "mlflow-artifacts:/0")

    def test_create_errors(self):
        name = uniq("dup")
        new_exp(name)
        self.assertError(api("experiments/create", {"name": name}), 400, "RESOURCE_ALREADY_EXISTS")
        self.assertError(api("experiments/create", {}), 400, "INVALID_PARAMETER_VALUE")
        self.assertError(api("experiments/create", {"name": ""}), 400, "INVALID_PARAMETER_VALUE")
        self.assertError(api("experiments/create", {"name": "x" * 501}), 400,
                         "INVALID_PARAMETER_VALUE")
        new_exp("y" * 500 + uniq()[:0])
        for loc in ["s3://b/p#frag", "s3://b/p;params", "s3://b/p?x=../y", "runs:/abc",
                    "s3://b/" + "a" * 2048]:
            self.assertError(api("experiments/create", {"name": uniq(), "artifact_location": loc}),
                             400, "INVALID_PARAMETER_VALUE")
        eid = new_exp(artifact_location="s3://bucket/path")
        st, b = api("experiments/get", method="GET", params={"experiment_id": eid})
        self.assertEqual(b["experiment"]["artifact_location"], "s3://bucket/path")

    def test_get_errors(self):
        self.assertError(api("experiments/get", method="GET", params={"experiment_id": "987654"}),
                         404, "RESOURCE_DOES_NOT_EXIST")
        self.assertError(api("experiments/get", method="GET", params={}), 400,
                         "INVALID_PARAMETER_VALUE")
        self.assertError(api("experiments/get", method="GET", params={"experiment_id": "abc"}),
                         400, "INVALID_PARAMETER_VALUE")
        self.assertError(api("experiments/get-by-name", method="GET",
                             params={"experiment_name": uniq("none")}),
                         404, "RESOURCE_DOES_NOT_EXIST")

    def test_get_by_name_returns_deleted(self):
        name = uniq("gbn")
        eid = new_exp(name)
        self.assertEqual(api("experiments/delete", {"experiment_id": eid})[0], 200)
        st, b = api("experiments/get-by-name", method="GET", params={"experiment_name": name})
        self.assertEqual(st, 200, b)
        self.assertEqual(b["experiment"]["lifecycle_stage"], "deleted")
        # The name stays reserved.
        self.assertError(api("experiments/create", {"name": name}), 400, "RESOURCE_ALREADY_EXISTS")

    def test_update(self):
        eid = new_exp()
        other = uniq("other")
        new_exp(other)
        st, b = api("experiments/get", method="GET", params={"experiment_id": eid})
        lut = b["experiment"]["last_update_time"]
        time.sleep(0.01)
        new_name = uniq("renamed")
        self.assertEqual(api("experiments/update", {"experiment_id": eid, "new_name": new_name}),
                         (200, {}))
        st, b = api("experiments/get", method="GET", params={"experiment_id": eid})
        self.assertEqual(b["experiment"]["name"], new_name)
        self.assertGreater(b["experiment"]["last_update_time"], lut)
        self.assertError(api("experiments/update", {"experiment_id": eid, "new_name": other}),
                         400, "BAD_REQUEST")
        self.assertError(api("experiments/update", {"experiment_id": eid}), 400,
                         "INVALID_PARAMETER_VALUE")
        self.assertError(api("experiments/update", {"experiment_id": "987654", "new_name": "z"}),
                         404, "RESOURCE_DOES_NOT_EXIST")
        api("experiments/delete", {"experiment_id": eid})
        self.assertError(api("experiments/update", {"experiment_id": eid, "new_name": uniq()}),
                         400, "INVALID_STATE")

    def test_delete_restore_cascade(self):
        eid = new_exp()
        r1 = new_run(eid)["info"]["run_id"]
        r2 = new_run(eid)["info"]["run_id"]
        self.assertEqual(api("runs/delete", {"run_id": r2}), (200, {}))
        self.assertEqual(api("experiments/delete", {"experiment_id": eid}), (200, {}))
        self.assertEqual(get_run(r1)["info"]["lifecycle_stage"], "deleted")
        self.assertError(api("experiments/delete", {"experiment_id": eid}), 404,
                         "RESOURCE_DOES_NOT_EXIST")
        # Writes to runs of a deleted experiment are refused.
        self.assertError(api("runs/set-tag", {"run_id": r1, "key": "k", "value": "v"}), 400,
                         "INVALID_PARAMETER_VALUE")
        self.assertError(api("runs/create", {"experiment_id": eid}), 400,
                         "INVALID_PARAMETER_VALUE")
        self.assertEqual(api("experiments/restore", {"experiment_id": eid}), (200, {}))
        self.assertEqual(get_run(r1)["info"]["lifecycle_stage"], "active")
        self.assertEqual(get_run(r2)["info"]["lifecycle_stage"], "active")
        self.assertError(api("experiments/restore", {"experiment_id": eid}), 404,
                         "RESOURCE_DOES_NOT_EXIST")
        self.assertError(api("experiments/delete", {"experiment_id": "987654"}), 404,
                         "RESOURCE_DOES_NOT_EXIST")

    def test_experiment_tags(self):
        eid = new_exp()
        st, b = api("experiments/get", method="GET", params={"experiment_id": eid})
        lut = b["experiment"]["last_update_time"]
        self.assertEqual(api("experiments/set-experiment-tag",
                             {"experiment_id": eid, "key": "k", "value": "v1"}), (200, {}))
        self.assertEqual(api("experiments/set-experiment-tag",
                             {"experiment_id": eid, "key": "k", "value": "v2"}), (200, {}))
        st, b = api("experiments/get", method="GET", params={"experiment_id": eid})
        self.assertEqual(kvs(b["experiment"]["tags"]), {"k": "v2"})
        self.assertEqual(b["experiment"]["last_update_time"], lut)
        self.assertError(api("experiments/set-experiment-tag",
                             {"experiment_id": eid, "key": "bad//key", "value": "v"}),
                         400, "INVALID_PARAMETER_VALUE")
        self.assertError(api("experiments/set-experiment-tag",
                             {"experiment_id": eid, "key": "k" * 251, "value": "v"}),
                         400, "INVALID_PARAMETER_VALUE")
        self.assertError(api("experiments/set-experiment-tag",
                             {"experiment_id": eid, "key": "big", "value": "v" * 5001}),
                         400, "INVALID_PARAMETER_VALUE")
        self.assertEqual(api("experiments/set-experiment-tag",
                             {"experiment_id": eid, "key": "big", "value": "v" * 5000})[0], 200)
        self.assertError(api("experiments/set-experiment-tag", {"experiment_id": eid}), 400,
                         "INVALID_PARAMETER_VALUE")
        self.assertError(api("experiments/set-experiment-tag",
                             {"experiment_id": "987654", "key": "k", "value": "v"}),
                         404, "RESOURCE_DOES_NOT_EXIST")
        self.assertEqual(api("experiments/delete-experiment-tag",
                             {"experiment_id": eid, "key": "k"}), (200, {}))
        self.assertError(api("experiments/delete-experiment-tag",
                             {"experiment_id": eid, "key": "k"}), 404, "RESOURCE_DOES_NOT_EXIST")
        api("experiments/delete", {"experiment_id": eid})
        self.assertError(api("experiments/set-experiment-tag",
                             {"experiment_id": eid, "key": "k", "value": "v"}),
                         400, "INVALID_PARAMETER_VALUE")
        self.assertError(api("experiments/delete-experiment-tag",
                             {"experiment_id": eid, "key": "big"}), 400, "INVALID_PARAMETER_VALUE")

    def test_npm_aliases(self):
        eid = new_exp()
        st, b = api("experimentsset-experiment-tag", {"experiment_id": eid, "key": "npm",
                                                      "value": "yes"})
        self.assertEqual((st, b), (200, {}))
        st, b = api("experiments/get", method="GET", params={"experiment_id": eid})
        self.assertEqual(kvs(b["experiment"]["tags"])["npm"], "yes")
        st, b = api("experiments/list", method="GET", params={})
        self.assertEqual(st, 200, b)
        ids = [e["experiment_id"] for e in b["experiments"]]
        self.assertIn(eid, ids)
        self.assertIn("0", ids)
        self.assertNotIn("next_page_token", b)
        st, b = api("experiments/list", method="GET", params={"view_type": "DELETED_ONLY"})
        self.assertEqual(st, 200, b)
        for e in b.get("experiments", []):
            self.assertEqual(e["lifecycle_stage"], "deleted")

    def test_ajax_prefix(self):
        st, b = SRV.get("/ajax-api/2.0/mlflow/experiments/get", {"experiment_id": "0"})
        self.assertEqual(st, 200, b)
        self.assertEqual(b["experiment"]["name"], "Default")


class TestExperimentSearch(Base):
    @classmethod
    def setUpClass(cls):
        cls.prefix = uniq("es")
        cls.ids = []
        for i, name in enumerate(["b-one", "a-two", "c-three", "A-four"]):
            tags = [{"key": "grp", "value": "even" if i % 2 == 0 else "odd"}]
            cls.ids.append(new_exp(f"{cls.prefix}-{name}", tags=tags))
            time.sleep(0.003)

    def search(self, method="POST", **kw):
        if method == "GET":
            st, b = api("experiments/search", method="GET", params=kw)
        else:
            st, b = api("experiments/search", kw)
        self.assertEqual(st, 200, b)
        return b

    def names(self, b):
        return [e["name"][len(self.prefix) + 1:] for e in b.get("experiments", [])]

    def test_filter_and_order(self):
        like = f"name LIKE '{self.prefix}-%'"
        b = self.search(filter=like, order_by=["name ASC"])
        self.assertEqual(self.names(b), ["A-four", "a-two", "b-one", "c-three"])
        b = self.search(filter=like)  # default creation_time DESC
        self.assertEqual(self.names(b), ["A-four", "c-three", "a-two", "b-one"])
        b = self.search(filter=f"{like} and tags.grp = 'odd'", order_by=["attribute.name DESC"])
        self.assertEqual(self.names(b), ["a-two", "A-four"])
        b = self.search(filter=f"name ilike '{self.prefix.upper()}-A%'", order_by=["name"])
        self.assertEqual(self.names(b), ["A-four", "a-two"])
        b = self.search(filter=f"name = '{self.prefix}-a-two'")
        self.assertEqual(self.names(b), ["a-two"])
        b = self.search(filter=f"{like} and creation_time > 0", order_by=["experiment_id DESC"])
        self.assertEqual(len(b["experiments"]), 4)
        self.assertEqual([e["experiment_id"] for e in b["experiments"]],
                         sorted(self.ids, key=int, reverse=True))
        b = self.search(filter=f"name = '{uniq('none')}'")
        self.assertEqual(b, {})

    def test_get_method_and_paging(self):
        like = f"name LIKE '{self.prefix}-%'"
        b = self.search(method="GET", filter=like, max_results=3, order_by="name ASC")
        self.assertEqual(self.names(b), ["A-four", "a-two", "b-one"])
        tok = b["next_page_token"]
        b = self.search(method="GET", filter=like, max_results=3, order_by="name ASC",
                        page_token=tok)
        self.assertEqual(self.names(b), ["c-three"])
        self.assertNotIn("next_page_token", b)
        # Exactly full page: no token.
        b = self.search(filter=like, max_results=4)
        self.assertNotIn("next_page_token", b)

    def test_view_type(self):
        eid = new_exp(f"{self.prefix}-zz-deleted")
        api("experiments/delete", {"experiment_id": eid})
        like = f"name LIKE '{self.prefix}-%'"
        self.assertEqual(len(self.search(filter=like)["experiments"]), 4)
        b = self.search(filter=like, view_type="DELETED_ONLY")
        self.assertEqual(self.names(b), ["zz-deleted"])
        self.assertEqual(len(self.search(filter=like, view_type="ALL")["experiments"]), 5)
        self.assertEqual(len(self.search(filter=like, view_type=3)["experiments"]), 5)

    def test_errors(self):
        for bad in [{"max_results": 50001}, {"max_results": -1},
                    {"filter": "name = 'a' OR name = 'b'"}, {"filter": "foo.bar = 'x'"},
                    {"filter": "name > 'x'"}, {"filter": "name = "},
                    {"order_by": ["bogus"]}, {"order_by": ["name", "name DESC"]},
                    {"page_token": "!!!not-base64"}, {"page_token": "eyJ4IjogMX0="}]:
            self.assertError(api("experiments/search", bad), 400, "INVALID_PARAMETER_VALUE")
        # max_results 0 / absent defaults to 1000.
        self.assertEqual(api("experiments/search", {"max_results": 0})[0], 200)
        self.assertEqual(api("experiments/search", {})[0], 200)


# ---------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------


class TestRuns(Base):
    @classmethod
    def setUpClass(cls):
        cls.exp = new_exp()

    def test_create_shape(self):
        run = new_run(self.exp, run_name="my-run", start_time=1700000000000, user_id="ann",
                      tags=[{"key": "t1", "value": "v1"}])
        info = run["info"]
        self.assertRegex(info["run_id"], r"^[0-9a-f]{32}$")
        self.assertEqual(info["run_uuid"], info["run_id"])
        self.assertEqual(info["run_name"], "my-run")
        self.assertEqual(info["experiment_id"], self.exp)
        self.assertEqual(info["user_id"], "ann")
        self.assertEqual(info["status"], "RUNNING")
        self.assertEqual(info["start_time"], 1700000000000)
        self.assertNotIn("end_time", info)
        self.assertEqual(info["lifecycle_stage"], "active")
        self.assertEqual(info["artifact_uri"],
                         f"mlflow-artifacts:/{self.exp}/{info['run_id']}/artifacts")
        self.assertEqual(kvs(run["data"]["tags"]), {"t1": "v1", "mlflow.runName": "my-run"})
        self.assertNotIn("params", run["data"])
        self.assertNotIn("metrics", run["data"])
        self.assertEqual(run["inputs"], {})

    def test_create_names(self):
        run = new_run(self.exp, tags=[{"key": "mlflow.runName", "value": "tagged"}])
        self.assertEqual(run["info"]["run_name"], "tagged")
        run = new_run(self.exp, run_name="same",
                      tags=[{"key": "mlflow.runName", "value": "same"}])
        self.assertEqual(run["info"]["run_name"], "same")
        self.assertError(api("runs/create", {"experiment_id": self.exp, "run_name": "a",
                                             "tags": [{"key": "mlflow.runName", "value": "b"}]}),
                         400, "INVALID_PARAMETER_VALUE")
        names = {new_run(self.exp)["info"]["run_name"] for _ in range(5)}
        for n in names:
            self.assertRegex(n, r"^[a-z]+-[a-z]+-\d{1,3}$")
        self.assertGreater(len(names), 1)
        # start_time absent is stored as 0; the tag is always written.
        run = new_run(self.exp)
        self.assertEqual(run["info"]["start_time"], 0)
        self.assertEqual(kvs(run["data"]["tags"])["mlflow.runName"], run["info"]["run_name"])

    def test_create_experiment_id_forms(self):
        st, b = api("runs/create", {})  # empty experiment id = Default
        self.assertEqual(st, 200, b)
        self.assertEqual(b["run"]["info"]["experiment_id"], "0")
        st, b = api("runs/create", {"experiment_id": int(self.exp)})  # numeric coerced
        self.assertEqual(st, 200, b)
        self.assertEqual(b["run"]["info"]["experiment_id"], self.exp)
        st, b = api("runs/create", {"experiment_id": self.exp, "start_time": "1700000000001"})
        self.assertEqual(st, 200, b)
        self.assertEqual(b["run"]["info"]["start_time"], 1700000000001)
        self.assertError(api("runs/create", {"experiment_id": "987654"}), 404,
                         "RESOURCE_DOES_NOT_EXIST")
        self.assertError(api("runs/create", {"experiment_id": self.exp,
                                             "tags": [{"key": "/bad", "value": "v"}]}),
                         400, "INVALID_PARAMETER_VALUE")
        self.assertError(api("runs/create", {"experiment_id": self.exp, "tags": [{"value": "v"}]}),
                         400, "INVALID_PARAMETER_VALUE")
        self.assertError(api("runs/create", {"experiment_id": self.exp, "start_time": "soon"}),
                         400, "INVALID_PARAMETER_VALUE")

    def test_get(self):
        rid = new_run(self.exp)["info"]["run_id"]
        st, b = api("runs/get", method="GET", params={"run_uuid": rid})
        self.assertEqual(st, 200, b)
        self.assertEqual(b["run"]["info"]["run_id"], rid)
        self.assertError(api("runs/get", method="GET", params={"run_id": "0" * 32}), 404,
                         "RESOURCE_DOES_NOT_EXIST")
        self.assertError(api("runs/get", method="GET", params={}), 400, "INVALID_PARAMETER_VALUE")

    def test_update(self):
        rid = new_run(self.exp, run_name="before")["info"]["run_id"]
        st, b = api("runs/update", {"run_id": rid, "status": "FINISHED", "end_time": 1700000000999})
        self.assertEqual(st, 200, b)
        info = b["run_info"]
        self.assertEqual(info["status"], "FINISHED")
        self.assertEqual(info["end_time"], 1700000000999)
        self.assertEqual(info["run_name"], "before")
        st, b = api("runs/update", {"run_uuid": rid, "run_name": "after", "status": 4})
        self.assertEqual(st, 200, b)
        self.assertEqual(b["run_info"]["status"], "FAILED")
        self.assertEqual(b["run_info"]["end_time"], 1700000000999)
        run = get_run(rid)
        self.assertEqual(run["info"]["run_name"], "after")
        self.assertEqual(kvs(run["data"]["tags"])["mlflow.runName"], "after")
        self.assertError(api("runs/update", {"run_id": rid, "status": "DONE"}), 400,
                         "INVALID_PARAMETER_VALUE")
        self.assertError(api("runs/update", {"run_id": "0" * 32, "status": "FINISHED"}), 404,
                         "RESOURCE_DOES_NOT_EXIST")
        self.assertError(api("runs/update", {}), 400, "INVALID_PARAMETER_VALUE")
        api("runs/delete", {"run_id": rid})
        self.assertError(api("runs/update", {"run_id": rid, "status": "KILLED"}), 400,
                         "INVALID_PARAMETER_VALUE")

    def test_delete_restore(self):
        rid = new_run(self.exp)["info"]["run_id"]
        for _ in range(2):
            self.assertEqual(api("runs/delete", {"run_id": rid}), (200, {}))
        self.assertEqual(get_run(rid)["info"]["lifecycle_stage"], "deleted")
        self.assertError(api("runs/log-parameter", {"run_id": rid, "key": "k", "value": "v"}),
                         400, "INVALID_PARAMETER_VALUE")
        for _ in range(2):
            self.assertEqual(api("runs/restore", {"run_uuid": rid}), (200, {}))
        self.assertEqual(get_run(rid)["info"]["lifecycle_stage"], "active")
        self.assertError(api("runs/delete", {"run_id": "0" * 32}), 404, "RESOURCE_DOES_NOT_EXIST")
        self.assertError(api("runs/restore", {"run_id": "0" * 32}), 404,
                         "RESOURCE_DOES_NOT_EXIST")

    def test_tags(self):
        rid = new_run(self.exp)["info"]["run_id"]
        self.assertEqual(api("runs/set-tag", {"run_id": rid, "key": "a b/c:d.e-f", "value": "1"}),
                         (200, {}))
        self.assertEqual(api("runs/set-tag", {"run_uuid": rid, "key": "a b/c:d.e-f",
                                              "value": "2"}), (200, {}))
        self.assertEqual(api("runs/set-tag", {"run_id": rid, "key": "empty"}), (200, {}))
        self.assertEqual(api("runs/set-tag", {"run_id": rid, "key": "long", "value": "x" * 9000}),
                         (200, {}))
        self.assertEqual(api("runs/set-tag", {"run_id": rid, "key": "mlflow.runName",
                                              "value": "renamed"}), (200, {}))
        run = get_run(rid)
        tags = kvs(run["data"]["tags"])
        self.assertEqual(tags["a b/c:d.e-f"], "2")
        self.assertEqual(tags["empty"], "")
        self.assertEqual(len(tags["long"]), 8000)
        self.assertEqual(run["info"]["run_name"], "renamed")
        for bad in ["", "/a", "a/", "a//b", "a/../b", "..", "a$b", "k" * 251]:
            self.assertError(api("runs/set-tag", {"run_id": rid, "key": bad, "value": "v"}), 400,
                             "INVALID_PARAMETER_VALUE")
        self.assertError(api("runs/set-tag", {"run_id": "0" * 32, "key": "k", "value": "v"}), 404,
                         "RESOURCE_DOES_NOT_EXIST")
        self.assertEqual(api("runs/delete-tag", {"run_id": rid, "key": "empty"}), (200, {}))
        self.assertError(api("runs/delete-tag", {"run_id": rid, "key": "empty"}), 404,
                         "RESOURCE_DOES_NOT_EXIST")
        self.assertError(api("runs/delete-tag", {"run_id": rid}), 400, "INVALID_PARAMETER_VALUE")

    def test_log_parameter(self):
        rid = new_run(self.exp)["info"]["run_id"]
        self.assertEqual(api("runs/log-parameter", {"run_id": rid, "key": "lr", "value": "0.1"}),
                         (200, {}))
        self.assertEqual(api("runs/log-parameter", {"run_id": rid, "key": "lr", "value": "0.1"}),
                         (200, {}))
        self.assertError(api("runs/log-parameter", {"run_id": rid, "key": "lr", "value": "0.2"}),
                         400, "INVALID_PARAMETER_VALUE")
        self.assertEqual(api("runs/log-parameter", {"run_uuid": rid, "key": "empty"}), (200, {}))
        self.assertEqual(api("runs/log-parameter", {"run_id": rid, "key": "long",
                                                    "value": "é" * 7000}), (200, {}))
        self.assertError(api("runs/log-parameter", {"run_id": rid, "key": "k" * 251,
                                                    "value": "v"}), 400, "INVALID_PARAMETER_VALUE")
        self.assertError(api("runs/log-parameter", {"run_id": rid, "key": "bad key!",
                                                    "value": "v"}), 400, "INVALID_PARAMETER_VALUE")
        self.assertError(api("runs/log-parameter", {"run_id": "0" * 32, "key": "k",
                                                    "value": "v"}), 404, "RESOURCE_DOES_NOT_EXIST")
        self.assertError(api("runs/log-parameter", {"run_id": rid, "value": "v"}), 400,
                         "INVALID_PARAMETER_VALUE")
        params = kvs(get_run(rid)["data"]["params"])
        self.assertEqual(params["lr"], "0.1")
        self.assertEqual(params["empty"], "")
        self.assertEqual(params["long"], "é" * 6000)

    def test_metrics_latest_in_run(self):
        rid = new_run(self.exp)["info"]["run_id"]
        pts = [("loss", 0.9, 10, 0), ("loss", 0.5, 5, 2), ("loss", 0.7, 20, 1),
               ("acc", "NaN", 1, 3)]
        for k, v, ts, step in pts:
            st, b = api("runs/log-metric", {"run_id": rid, "key": k, "value": v,
                                            "timestamp": ts, "step": step})
            if st == 404 and b.get("error_code") == "ENDPOINT_NOT_FOUND":
                self.skipTest("runs/log-metric not available")
            self.assertEqual(st, 200, b)
        m = {x["key"]: x for x in get_run(rid)["data"]["metrics"]}
        self.assertEqual(m["loss"], {"key": "loss", "value": 0.5, "timestamp": 5, "step": 2})
        self.assertEqual(m["acc"]["value"], "NaN")

    def test_log_inputs(self):
        rid = new_run(self.exp)["info"]["run_id"]
        ds = {"name": "mnist", "digest": "d1", "source_type": "local", "source": "/data"}
        body = {"run_id": rid, "datasets": [{"tags": [{"key": "mlflow.data.context",
                                                      "value": "train"}], "dataset": ds}]}
        self.assertEqual(api("runs/log-inputs", body), (200, {}))
        body["datasets"][0]["tags"][0]["value"] = "eval"
        self.assertEqual(api("runs/log-inputs", body), (200, {}))
        inputs = get_run(rid)["inputs"]["dataset_inputs"]
        self.assertEqual(len(inputs), 1)
        self.assertEqual(inputs[0]["dataset"], ds)
        self.assertEqual(kvs(inputs[0]["tags"]), {"mlflow.data.context": "train"})
        self.assertError(api("runs/log-inputs", {"run_id": rid, "datasets": [{"dataset": {
            "name": "x"}}]}), 400, "INVALID_PARAMETER_VALUE")
        self.assertError(api("runs/log-inputs", {"run_id": "0" * 32, "datasets": [
            {"dataset": ds}]}), 404, "RESOURCE_DOES_NOT_EXIST")


# ---------------------------------------------------------------------------
# Run search
# ---------------------------------------------------------------------------


class TestRunSearch(Base):
    @classmethod
    def setUpClass(cls):
        cls.exp = new_exp()
        cls.exp2 = new_exp()
        cls.runs = {}
        spec = [
            # name, start, params, tags, metrics (key -> value)
            ("r1", 1000, {"lr": "0.1", "opt": "adam"}, {"my tag": "x", "team": "A"},
             {"loss": 0.5, "acc": 0.9}),
            ("r2", 2000, {"lr": "0.01", "opt": "Adagrad"}, {"team": "B"}, {"loss": 0.2}),
            ("r3", 3000, {"lr": "0.1"}, {"team": "a"}, {"loss": "NaN", "acc": 0.1}),
            ("r4", 4000, {}, {}, {}),
        ]
        cls.has_metrics = True
        for name, start, params, tags, metrics in spec:
            run = new_run(cls.exp, run_name=name, start_time=start, user_id="u-" + name)
            rid = run["info"]["run_id"]
            cls.runs[name] = rid
            for k, v in params.items():
                assert api("runs/log-parameter", {"run_id": rid, "key": k, "value": v})[0] == 200
            for k, v in tags.items():
                assert api("runs/set-tag", {"run_id": rid, "key": k, "value": v})[0] == 200
            for k, v in metrics.items():
                st, b = api("runs/log-metric", {"run_id": rid, "key": k, "value": v,
                                                "timestamp": 1, "step": 0})
                if st != 200:
                    cls.has_metrics = False
        api("runs/update", {"run_id": cls.runs["r2"], "status": "FINISHED", "end_time": 5000})
        other = new_run(cls.exp2, run_name="other", start_time=500)
        cls.runs["other"] = other["info"]["run_id"]
        dead = new_run(cls.exp, run_name="dead", start_time=6000)
        cls.runs["dead"] = dead["info"]["run_id"]
        api("runs/delete", {"run_id": cls.runs["dead"]})

    def names(self, **kw):
        return self.search_names([self.exp], **kw)

    def test_default_order_and_views(self):
        self.assertEqual(self.names(), ["r4", "r3", "r2", "r1"])
        self.assertEqual(self.names(run_view_type="DELETED_ONLY"), ["dead"])
        self.assertEqual(self.names(run_view_type="ALL"), ["dead", "r4", "r3", "r2", "r1"])
        self.assertEqual(self.search_names([self.exp, self.exp2]),
                         ["r4", "r3", "r2", "r1", "other"])
        self.assertEqual(self.search_runs([]), {})

    def test_shape(self):
        b = self.search_runs([self.exp], filter="attributes.run_name = 'r1'")
        self.assertEqual(len(b["runs"]), 1)
        run = b["runs"][0]
        self.assertEqual(kvs(run["data"]["params"]), {"lr": "0.1", "opt": "adam"})
        self.assertEqual(kvs(run["data"]["tags"])["my tag"], "x")
        self.assertIsInstance(run["info"]["start_time"], int)
        self.assertEqual(run["inputs"], {})
        if self.has_metrics:
            self.assertEqual({m["key"] for m in run["data"]["metrics"]}, {"loss", "acc"})
        self.assertNotIn("next_page_token", b)
        self.assertEqual(self.search_runs([self.exp], filter="params.lr = 'nope'"), {})

    def test_param_tag_filters(self):
        self.assertEqual(self.names(filter="params.lr = '0.1'"), ["r3", "r1"])
        self.assertEqual(self.names(filter="params.lr != '0.1'"), ["r2"])  # r4 lacks it
        self.assertEqual(self.names(filter="param.opt LIKE 'ada%'"), ["r1"])
        self.assertEqual(self.names(filter="params.opt ILIKE 'ADA%'"), ["r2", "r1"])
        self.assertEqual(self.names(filter="params.opt LIKE '_dam'"), ["r1"])
        self.assertEqual(self.names(filter="tags.`my tag` = 'x'"), ["r1"])
        self.assertEqual(self.names(filter='tags."my tag" = "x"'), ["r1"])
        self.assertEqual(self.names(filter="tags.team = 'a'"), ["r3"])
        self.assertEqual(self.names(filter="tags.team ILIKE 'a'"), ["r3", "r1"])
        self.assertEqual(self.names(filter="params.lr = '0.1' AND tags.team = 'A'"), ["r1"])
        self.assertEqual(self.names(filter="params.lr = '0.1' and tags.team != 'A'"), ["r3"])

    def test_attribute_filters(self):
        self.assertEqual(self.names(filter="attributes.status = 'FINISHED'"), ["r2"])
        self.assertEqual(self.names(filter="status != 'FINISHED'"), ["r4", "r3", "r1"])
        self.assertEqual(self.names(filter="run_name = 'r2'"), ["r2"])
        self.assertEqual(self.names(filter="attributes.`Run name` LIKE 'r%'"),
                         ["r4", "r3", "r2", "r1"])
        self.assertEqual(self.names(filter="attributes.start_time >= 2000"), ["r4", "r3", "r2"])
        self.assertEqual(self.names(filter="attribute.created < 2000"), ["r1"])
        self.assertEqual(self.names(filter="attributes.end_time > 0"), ["r2"])
        self.assertEqual(self.names(filter="attributes.end_time != 1"), ["r2"])
        self.assertEqual(self.names(filter="attributes.user_id = 'u-r3'"), ["r3"])
        self.assertEqual(self.names(filter=f"attributes.artifact_uri LIKE '%{self.runs['r1']}%'"),
                         ["r1"])
        r1, r3 = self.runs["r1"], self.runs["r3"]
        self.assertEqual(self.names(filter=f"attributes.run_id IN ('{r1}', '{r3}')"), ["r3", "r1"])
        self.assertEqual(self.names(filter=f"run_id NOT IN ('{r1}')"), ["r4", "r3", "r2"])
        # Upper-case entries are dropped: the id no longer matches.
        self.assertEqual(self.names(filter=f"attributes.run_id IN ('{r1.upper()}')"), [])
        self.assertEqual(self.names(filter=f"attributes.run_id = '{r1}'"), ["r1"])

    def test_metric_filters(self):
        if not self.has_metrics:
            self.skipTest("runs/log-metric not available")
        self.assertEqual(self.names(filter="metrics.loss < 0.3"), ["r3", "r2"])  # NaN as 0
        self.assertEqual(self.names(filter="metrics.loss = 0"), ["r3"])
        self.assertEqual(self.names(filter="metrics.loss > 0.3"), ["r1"])
        self.assertEqual(self.names(filter="metrics.acc != 0.9"), ["r3"])  # missing never matches
        self.assertEqual(self.names(filter="metric.acc >= 0.1 and params.lr = '0.1'"),
                         ["r3", "r1"])
        self.assertEqual(self.names(filter="metrics.loss <= 1e3"), ["r3", "r2", "r1"])

    def test_ordering(self):
        if self.has_metrics:
            # Values, then NaN, then missing, in both directions.
            self.assertEqual(self.names(order_by=["metrics.loss ASC"]), ["r2", "r1", "r3", "r4"])
            self.assertEqual(self.names(order_by=["metrics.loss DESC"]), ["r1", "r2", "r3", "r4"])
            self.assertEqual(self.names(order_by=["metrics.acc"]), ["r3", "r1", "r4", "r2"])
            self.assertEqual(self.names(order_by=["metrics.acc DESC"]), ["r1", "r3", "r4", "r2"])
        self.assertEqual(self.names(order_by=["params.opt ASC"]), ["r2", "r1", "r4", "r3"])
        self.assertEqual(self.names(order_by=["params.opt DESC"]), ["r1", "r2", "r4", "r3"])
        self.assertEqual(self.names(order_by=["params.lr DESC", "start_time ASC"]),
                         ["r1", "r3", "r2", "r4"])
        self.assertEqual(self.names(order_by=["tags.team"]), ["r1", "r2", "r3", "r4"])
        self.assertEqual(self.names(order_by=["attributes.start_time"]), ["r1", "r2", "r3", "r4"])
        self.assertEqual(self.names(order_by=["attributes.end_time DESC"]),
                         ["r2", "r4", "r3", "r1"])
        self.assertEqual(self.names(order_by=["run_name DESC"]), ["r4", "r3", "r2", "r1"])
        self.assertEqual(self.names(order_by=["attributes.status"]), ["r2", "r4", "r3", "r1"])

    def test_pagination(self):
        seen, tok, pages = [], None, 0
        while True:
            body = {"max_results": 3}
            if tok:
                body["page_token"] = tok
            b = self.search_runs([self.exp], **body)
            seen += [r["info"]["run_name"] for r in b.get("runs", [])]
            pages += 1
            tok = b.get("next_page_token")
            if not tok:
                break
        self.assertEqual(seen, ["r4", "r3", "r2", "r1"])
        self.assertEqual(pages, 2)
        b = self.search_runs([self.exp], max_results=4)
        self.assertNotIn("next_page_token", b)
        self.assertEqual(len(self.search_runs([self.exp], max_results=0)["runs"]), 4)

    def test_errors(self):
        bad = [
            {"filter": "params.lr = 0.1"},            # unquoted value for a param
            {"filter": "metrics.loss = 'x'"},        # string for a metric
            {"filter": "foo.bar = 'x'"},              # bad entity
            {"filter": "attributes.nope = 'x'"},      # bad attribute
            {"filter": "params.a = 'x' OR params.b = 'y'"},
            {"filter": "(params.a = 'x')"},
            {"filter": "params.a = 'x' extra"},
            {"filter": "params.a > 'x'"},             # wrong operator for a string
            {"filter": "attributes.user_id IN ('a')"},  # IN only on run_id
            {"filter": "params.a"},
            {"order_by": ["metrics.loss", "metrics.loss DESC"]},
            {"order_by": ["params.x SIDEWAYS"]},
            {"order_by": ["nope.x"]},
            {"max_results": 50001},
            {"max_results": -5},
            {"page_token": "not a token"},
            {"page_token": "eyJvZmZzZXQiOiAiYSJ9"},  # {"offset": "a"}
            {"run_view_type": "SOME"},
        ]
        for b in bad:
            body = {"experiment_ids": [self.exp]}
            body.update(b)
            self.assertError(api("runs/search", body), 400, "INVALID_PARAMETER_VALUE")
        self.assertError(api("runs/search", {"experiment_ids": ["abc"]}), 400,
                         "INVALID_PARAMETER_VALUE")

    def test_datasets(self):
        ds = {"name": "mnist", "digest": "abc", "source_type": "local", "source": "/d"}
        api("runs/log-inputs", {"run_id": self.runs["r2"], "datasets": [
            {"tags": [{"key": "mlflow.data.context", "value": "train"}], "dataset": ds}]})
        self.assertEqual(self.names(filter="datasets.name = 'mnist'"), ["r2"])
        self.assertEqual(self.names(filter="dataset.context = 'train'"), ["r2"])
        self.assertEqual(self.names(filter="datasets.digest IN ('abc', 'zzz')"), ["r2"])
        self.assertEqual(self.names(filter="datasets.name LIKE 'x%'"), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
