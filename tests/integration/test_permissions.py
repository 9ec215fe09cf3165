"""test_permissions.py — who may call what: every tracking, metric, artifact,
native and permission endpoint x every permission level (NO_PERMISSIONS,
READ, EDIT, MANAGE, plus an admin and the default permission), against a
real `tally serve --auth` (mlflow-auth.md §3, §4).

One table, ENDPOINTS: (name, needed level, request builder). For each
endpoint and level a fresh experiment (with a run, a tag, metrics) is made by
the admin, the user is given exactly that level on it, and the request must
answer 200 when the level suffices and 403 when it does not. 200 proves the
handler really ran; 403 must leave the data unchanged (checked for writes).
The test also asserts that every route the server lists in /metrics is
either in the table or deliberately covered elsewhere, so a new endpoint
cannot slip in untested.

Python stdlib only; run directly (TALLY_BIN_DIR=<build dir>) or through CTest.
"""

import json
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from auth_harness import ADMIN, AuthServer, basic  # noqa: E402
from tally_frame import encode_frame  # noqa: E402

LEVELS = ["NO_PERMISSIONS", "READ", "EDIT", "MANAGE"]
RANK = {name: i for i, name in enumerate(LEVELS)}
ANY = "AUTHENTICATED"  # any authenticated user, whatever the level
USER = ("pat", "pat-password-12")
SRV = None


class Fixture:
    """A fresh experiment with one active run (tag t=v, metric m at steps
    0..2), one experiment tag, and a second, deleted run."""

    def __init__(self, srv, n):
        self.exp = srv.new_experiment(f"perm-{n}")
        srv.ok("POST", "experiments/set-experiment-tag", {"experiment_id": self.exp, "key": "et", "value": "1"})
        self.run = srv.new_run(self.exp)
        srv.ok("POST", "runs/set-tag", {"run_id": self.run, "key": "t", "value": "v"})
        srv.ok("POST", "runs/log-batch", {"run_id": self.run, "metrics": [
            {"key": "m", "value": float(i), "timestamp": 1000 + i, "step": i} for i in range(3)]})
        self.dead_run = srv.new_run(self.exp)
        srv.ok("POST", "runs/delete", {"run_id": self.dead_run})
        self.name = f"perm-{n}"
        self.srv = srv

    def deleted(self):
        """Deletes the experiment first (for restore); returns None."""
        self.srv.ok("POST", "experiments/delete", {"experiment_id": self.exp})


def j(method, rel, obj, prefix="/api/2.0/mlflow/"):
    return (method, prefix + rel, obj)


# (endpoint name, level needed, f(fixture) -> (method, path, params or body))
ENDPOINTS = [
    # read
    ("experiments/get", "READ", lambda f: j("GET", "experiments/get", {"experiment_id": f.exp})),
    ("experiments/get-by-name", "READ",
     lambda f: j("GET", "experiments/get-by-name", {"experiment_name": f.name})),
    ("runs/get", "READ", lambda f: j("GET", "runs/get", {"run_id": f.run})),
    ("metrics/get-history", "READ",
     lambda f: j("GET", "metrics/get-history", {"run_id": f.run, "metric_key": "m"})),
    ("metrics/get-history-bulk-interval", "READ",
     lambda f: j("GET", "metrics/get-history-bulk-interval",
                 {"run_ids": [f.run], "metric_key": "m", "max_results": 10})),
    ("metrics/get-history-bulk", "READ",
     lambda f: j("GET", "metrics/get-history-bulk", {"run_id": [f.run], "metric_key": "m"},
                 prefix="/ajax-api/2.0/mlflow/")),
    ("artifacts/list", "READ", lambda f: j("GET", "artifacts/list", {"run_id": f.run})),
    ("tally/query", "READ",
     lambda f: j("GET", "tally/query", {"run_ids": [f.run], "key": "m"}, prefix="/api/2.0/")),
    # edit
    ("experiments/update", "EDIT",
     lambda f: j("POST", "experiments/update", {"experiment_id": f.exp, "new_name": f.name + "-r"})),
    ("experiments/set-experiment-tag", "EDIT",
     lambda f: j("POST", "experiments/set-experiment-tag", {"experiment_id": f.exp, "key": "k", "value": "v"})),
    ("experiments/delete-experiment-tag", "EDIT",
     lambda f: j("POST", "experiments/delete-experiment-tag", {"experiment_id": f.exp, "key": "et"})),
    ("experimentsset-experiment-tag", "EDIT",
     lambda f: j("POST", "experimentsset-experiment-tag", {"experiment_id": f.exp, "key": "k", "value": "v"})),
    ("runs/create", "EDIT", lambda f: j("POST", "runs/create", {"experiment_id": f.exp})),
    ("runs/update", "EDIT", lambda f: j("POST", "runs/update", {"run_id": f.run, "status": "FINISHED"})),
    ("runs/log-metric", "EDIT",
     lambda f: j("POST", "runs/log-metric", {"run_id": f.run, "key": "x", "value": 1, "timestamp": 5, "step": 0})),
    ("runs/log-batch", "EDIT",
     lambda f: j("POST", "runs/log-batch", {"run_id": f.run, "params": [{"key": "p", "value": "1"}]})),
    ("runs/log-parameter", "EDIT",
     lambda f: j("POST", "runs/log-parameter", {"run_id": f.run, "key": "q", "value": "2"})),
    ("runs/set-tag", "EDIT", lambda f: j("POST", "runs/set-tag", {"run_id": f.run, "key": "k", "value": "v"})),
    ("runs/delete-tag", "EDIT", lambda f: j("POST", "runs/delete-tag", {"run_id": f.run, "key": "t"})),
    ("runs/log-inputs", "EDIT", lambda f: j("POST", "runs/log-inputs", {"run_id": f.run, "datasets": []})),
    ("runs/log-model", "EDIT",
     lambda f: j("POST", "runs/log-model", {"run_id": f.run, "model_json": json.dumps(
         {"artifact_path": "model", "flavors": {}, "run_id": f.run,
          "utc_time_created": "2024-01-01 00:00:00.000000"})})),
    ("tally/ingest", "EDIT", lambda f: ("POST", "/api/2.0/tally/ingest",
                                        encode_frame([(f.run, "n", [(0, 1, 1.0), (1, 2, 2.0)])]))),
    # manage (delete)
    ("experiments/delete", "MANAGE", lambda f: j("POST", "experiments/delete", {"experiment_id": f.exp})),
    ("experiments/restore", "MANAGE", lambda f: f.deleted() or
     j("POST", "experiments/restore", {"experiment_id": f.exp})),
    ("runs/delete", "MANAGE", lambda f: j("POST", "runs/delete", {"run_id": f.run})),
    ("runs/restore", "MANAGE", lambda f: j("POST", "runs/restore", {"run_id": f.dead_run})),
    # manage (permissions of the resource)
    ("experiments/permissions/get", "MANAGE",
     lambda f: j("GET", "experiments/permissions/get", {"experiment_id": f.exp, "username": USER[0]})),
    ("experiments/permissions/update", "MANAGE",
     lambda f: j("PATCH", "experiments/permissions/update",
                 {"experiment_id": f.exp, "username": USER[0], "permission": "MANAGE"})),
    ("experiments/permissions/create", "MANAGE",
     lambda f: j("POST", "experiments/permissions/create",
                 {"experiment_id": f.exp, "username": "other", "permission": "READ"})),
    ("experiments/permissions/delete", "MANAGE",
     lambda f: j("DELETE", "experiments/permissions/delete", {"experiment_id": f.exp, "username": USER[0]})),
    # any authenticated user (results filtered where they list)
    ("experiments/create", ANY, lambda f: j("POST", "experiments/create", {"name": f.name + "-new"})),
    ("experiments/search", ANY, lambda f: j("POST", "experiments/search", {"max_results": 5})),
    ("experiments/list", ANY, lambda f: j("GET", "experiments/list", {})),
    ("runs/search", ANY, lambda f: j("POST", "runs/search", {"experiment_ids": [f.exp]})),
    ("version", ANY, lambda f: ("GET", "/version", None)),
    ("metrics", ANY, lambda f: ("GET", "/metrics", None)),
]

# Routes covered by test_auth.py (users, tokens, audit, model permission
# rows) or public (/health).
ELSEWHERE = {"health", "users/create", "users/get", "users/update-password", "users/update-admin",
             "users/delete", "tokens/create", "tokens/list", "tokens/revoke", "audit/search",
             "registered-models/permissions/create", "registered-models/permissions/get",
             "registered-models/permissions/update", "registered-models/permissions/delete"}


def send(srv, method, path, obj, as_):
    headers = {"Authorization": basic(*as_)}
    if path.endswith("tally/ingest"):
        headers["Content-Type"] = "application/octet-stream"
        return srv.request(method, path, body=obj, headers=headers)
    if method == "GET":
        if obj:
            import urllib.parse
            path += "?" + urllib.parse.urlencode(obj, doseq=True)
        return srv.request("GET", path, headers=headers)
    headers["Content-Type"] = "application/json"
    return srv.request(method, path, body=json.dumps(obj), headers=headers)


def setUpModule():
    global SRV
    # Default NO_PERMISSIONS: only the explicit row decides.
    SRV = AuthServer(default_permission="NO_PERMISSIONS").start()
    SRV.create_user(*USER)
    SRV.create_user("other", "other-password-1")


def tearDownModule():
    try:
        SRV.stop()
    finally:
        SRV.cleanup()


class Matrix(unittest.TestCase):
    def test_every_endpoint_every_level(self):
        n = 0
        failures = []
        for name, need, build in ENDPOINTS:
            for level in LEVELS + ["admin"]:
                n += 1
                f = Fixture(SRV, n)
                if level == "admin":
                    SRV.grant(f.exp, USER[0], "READ")  # a row for the permission endpoints
                    as_ = ADMIN
                    allowed = True
                else:
                    SRV.grant(f.exp, USER[0], level)
                    as_ = USER
                    allowed = need == ANY or RANK[level] >= RANK[need]
                method, path, obj = build(f)
                before = SRV.ok("GET", "runs/get", {"run_id": f.run})
                exp_before = SRV.ok("GET", "experiments/get", {"experiment_id": f.exp})
                st, _, data = send(SRV, method, path, obj, as_)
                want = 200 if allowed else 403
                if st != want:
                    failures.append(f"{name} as {level}: {st} (want {want}) {data[:200]!r}")
                    continue
                if not allowed:
                    body = json.loads(data)
                    if body.get("error_code") != "PERMISSION_DENIED":
                        failures.append(f"{name} as {level}: error_code {body}")
                    after = SRV.ok("GET", "runs/get", {"run_id": f.run})
                    exp_after = SRV.ok("GET", "experiments/get", {"experiment_id": f.exp})
                    if after != before or exp_after != exp_before:
                        failures.append(f"{name} as {level}: refused but data changed")
        self.assertEqual(failures, [], "\n".join(failures))

    def test_table_covers_every_route(self):
        st, _, data = SRV.request("GET", "/metrics", headers={"Authorization": basic(*ADMIN)})
        self.assertEqual(st, 200)
        routes = set(re.findall(r'route="([^"]+)"', data.decode())) - {"unmatched"}
        self.assertGreater(len(routes), 20)
        covered = {e[0] for e in ENDPOINTS} | ELSEWHERE
        self.assertEqual(sorted(routes - covered), [], "routes without a permission test")

    def test_default_permission_applies_without_row(self):
        f = Fixture(SRV, 10000)
        # No row, default NO_PERMISSIONS: nothing but authenticated-only calls.
        st, _, _ = send(SRV, "GET", "/api/2.0/mlflow/runs/get", {"run_id": f.run}, USER)
        self.assertEqual(st, 403)
        with AuthServer(default_permission="EDIT") as s:
            s.create_user(*USER)
            exp = s.new_experiment("d")
            run = s.new_run(exp)
            self.assertEqual(send(s, "POST", "/api/2.0/mlflow/runs/set-tag",
                                  {"run_id": run, "key": "a", "value": "b"}, USER)[0], 200)
            self.assertEqual(send(s, "POST", "/api/2.0/mlflow/runs/delete", {"run_id": run}, USER)[0], 403)
            # A row below the default wins over it.
            s.grant(exp, USER[0], "READ")
            self.assertEqual(send(s, "POST", "/api/2.0/mlflow/runs/set-tag",
                                  {"run_id": run, "key": "a", "value": "c"}, USER)[0], 403)

    def test_lookup_errors_match_the_unprotected_server(self):
        st, _, data = send(SRV, "GET", "/api/2.0/mlflow/runs/get", {"run_id": "f" * 32}, USER)
        self.assertEqual(st, 404)
        self.assertEqual(json.loads(data)["error_code"], "RESOURCE_DOES_NOT_EXIST")
        st, _, data = send(SRV, "GET", "/api/2.0/mlflow/experiments/get", {}, USER)
        self.assertEqual(st, 400)
        self.assertIn("Missing value for required parameter 'experiment_id'", json.loads(data)["message"])
        st, _, data = send(SRV, "GET", "/api/2.0/mlflow/experiments/get-by-name",
                           {"experiment_name": "no-such"}, USER)
        self.assertEqual(st, 404)


if __name__ == "__main__":
    unittest.main(verbosity=2)
