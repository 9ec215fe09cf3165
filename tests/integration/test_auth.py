"""test_auth.py — authentication and the users/permissions/tokens/audit API
against a real `tally serve --auth` (mlflow-auth.md §2, §5, §6, §7; docs/api.md
"Authentication"): 401 + WWW-Authenticate, 403, Basic and Bearer, token
revocation taking effect at once, admin-only endpoints, after-request rows,
search filtering with pagination, the audit log, the admin bootstrap, the
non-loopback refusal, and the server with auth off.

Python stdlib only; run directly (TALLY_BIN_DIR=<build dir>) or through CTest.
"""

import base64
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from auth_harness import ADMIN, AuthServer, basic  # noqa: E402
from server_harness import TallyServer, tally_binary  # noqa: E402

SRV = None
ALICE = ("alice", "alice-password-1")
BOB = ("bob", "bob-password-12")  # exactly 12 characters... plus 3: well over


def setUpModule():
    global SRV
    SRV = AuthServer().start()
    SRV.create_user(*ALICE)
    SRV.create_user(*BOB)


def tearDownModule():
    try:
        SRV.stop()
    finally:
        SRV.cleanup()


class Authentication(unittest.TestCase):
    def assert401(self, st, body, hdrs):
        self.assertEqual(st, 401, body)
        self.assertEqual(hdrs.get("www-authenticate"), 'Basic realm="tally"')
        self.assertEqual(body["error_code"], "UNAUTHENTICATED")

    def test_no_credentials(self):
        for method, rel in [("GET", "mlflow/experiments/search"),
                            ("POST", "mlflow/runs/log-batch"),
                            ("GET", "mlflow/no/such/endpoint"),
                            ("GET", "tally/audit/search")]:
            st, body, hdrs = SRV.call(method, rel, {}, as_=None)
            self.assert401(st, body, hdrs)
        for path in ["/version", "/metrics"]:
            st, hdrs, _ = SRV.request("GET", path)
            self.assertEqual(st, 401, path)
        st, _, _ = SRV.request("GET", "/health")
        self.assertEqual(st, 200)

    def test_bad_credentials(self):
        for hdr in [basic("alice", "wrong-password"), basic("nobody", "whatever-password"),
                    basic("alice", ""), "Basic !!!notbase64", "Basic " + base64.b64encode(b"nocolon").decode(),
                    "Bearer tly_" + "A" * 43, "Bearer short", "Digest abc", "", "Basic"]:
            st, body, hdrs = SRV.call("GET", "mlflow/experiments/search", {}, as_=None,
                                      headers={"Authorization": hdr})
            self.assert401(st, body, hdrs)

    def test_basic_scheme_case_and_colon_in_password(self):
        SRV.create_user("colon", "pass:word:with:colons")
        hdr = "bAsIc " + base64.b64encode(b"colon:pass:word:with:colons").decode()
        st, body, _ = SRV.call("GET", "mlflow/experiments/search", {}, as_=None,
                               headers={"Authorization": hdr})
        self.assertEqual(st, 200, body)

    def test_ajax_prefix_is_protected_too(self):
        st, body, hdrs = SRV.call("GET", "mlflow/experiments/search", {}, as_=None,
                                  prefix="/ajax-api/2.0/")
        self.assert401(st, body, hdrs)


class Users(unittest.TestCase):
    def test_create_rules(self):
        # Content-Type must be exactly application/json.
        st, body, _ = SRV.call("POST", "mlflow/users/create", {"username": "x1", "password": "p" * 12},
                               headers={"Content-Type": "application/json; charset=utf-8"})
        self.assertEqual(st, 400)
        self.assertIn("Invalid content type", body)
        st, body = SRV.mlflow("POST", "users/create", {"username": "", "password": "p" * 12})
        self.assertEqual(st, 400)
        self.assertIn("cannot be empty", body)
        st, body = SRV.mlflow("POST", "users/create", {"username": "x2", "password": "p" * 11})
        self.assertEqual((st, body["error_code"]), (400, "INVALID_PARAMETER_VALUE"))
        body = SRV.create_user("x3", "p" * 12)  # 12 is accepted
        self.assertEqual(body["user"]["username"], "x3")
        self.assertFalse(body["user"]["is_admin"])
        self.assertEqual(body["user"]["experiment_permissions"], [])
        self.assertEqual(body["user"]["registered_model_permissions"], [])
        self.assertEqual(body["user"]["scorer_permissions"], [])
        st, body = SRV.mlflow("POST", "users/create", {"username": "x3", "password": "p" * 12})
        self.assertEqual((st, body["error_code"]), (400, "RESOURCE_ALREADY_EXISTS"))

    def test_admin_only(self):
        for method, rel, obj in [("POST", "users/create", {"username": "y", "password": "p" * 12}),
                                 ("PATCH", "users/update-admin", {"username": "alice", "is_admin": True}),
                                 ("DELETE", "users/delete", {"username": "bob"})]:
            st, body = SRV.mlflow(method, rel, obj, as_=ALICE)
            self.assertEqual((st, body["error_code"]), (403, "PERMISSION_DENIED"), rel)
        st, body, _ = SRV.call("GET", "tally/audit/search", {}, as_=ALICE)
        self.assertEqual(st, 403)

    def test_get_self_or_admin(self):
        st, body = SRV.mlflow("GET", "users/get", {"username": "alice"}, as_=ALICE)
        self.assertEqual(st, 200, body)
        self.assertEqual(body["user"]["username"], "alice")
        st, body = SRV.mlflow("GET", "users/get", {"username": "bob"}, as_=ALICE)
        self.assertEqual(st, 403)
        st, body = SRV.mlflow("GET", "users/get", {"username": "bob"})
        self.assertEqual(st, 200)
        st, body = SRV.mlflow("GET", "users/get", {"username": "nobody"})
        self.assertEqual((st, body["error_code"]), (404, "RESOURCE_DOES_NOT_EXIST"))
        self.assertEqual(body["message"], "User with username=nobody not found")

    def test_password_change_takes_effect_at_once(self):
        u = ("carol", "carol-password-1")
        SRV.create_user(*u)
        self.assertEqual(SRV.mlflow("GET", "experiments/search", {}, as_=u)[0], 200)
        st, body = SRV.mlflow("PATCH", "users/update-password",
                              {"username": "carol", "password": "carol-password-2"}, as_=u)
        self.assertEqual(st, 200, body)
        self.assertEqual(SRV.mlflow("GET", "experiments/search", {}, as_=u)[0], 401)
        self.assertEqual(SRV.mlflow("GET", "experiments/search", {},
                                    as_=("carol", "carol-password-2"))[0], 200)
        # Someone else's password: no.
        st, _ = SRV.mlflow("PATCH", "users/update-password",
                           {"username": "alice", "password": "hijacked-password"},
                           as_=("carol", "carol-password-2"))
        self.assertEqual(st, 403)

    def test_update_admin_and_delete(self):
        u = ("dave", "dave-password-1")
        SRV.create_user(*u)
        exp = SRV.new_experiment("dave-owned")
        SRV.grant(exp, "dave", "READ")
        self.assertEqual(SRV.mlflow("GET", "users/get", {"username": "alice"}, as_=u)[0], 403)
        SRV.ok("PATCH", "users/update-admin", {"username": "dave", "is_admin": True})
        self.assertEqual(SRV.mlflow("GET", "users/get", {"username": "alice"}, as_=u)[0], 200)
        SRV.ok("PATCH", "users/update-admin", {"username": "dave", "is_admin": False})
        self.assertEqual(SRV.mlflow("GET", "users/get", {"username": "alice"}, as_=u)[0], 403)
        # Delete cascades the rows (MLflow would refuse) and locks the user out.
        SRV.ok("DELETE", "users/delete", {"username": "dave"})
        self.assertEqual(SRV.mlflow("GET", "experiments/search", {}, as_=u)[0], 401)
        st, body = SRV.mlflow("GET", "users/get", {"username": "dave"})
        self.assertEqual(st, 404)
        st, body = SRV.mlflow("DELETE", "users/delete", {"username": "dave"})
        self.assertEqual(st, 404)


class Permissions(unittest.TestCase):
    def test_row_api(self):
        exp = SRV.new_experiment("perm-api")
        body = SRV.grant(exp, "alice", "EDIT")
        self.assertEqual(body["experiment_permission"]["experiment_id"], exp)
        self.assertEqual(body["experiment_permission"]["permission"], "EDIT")
        self.assertIsInstance(body["experiment_permission"]["user_id"], int)
        st, body = SRV.mlflow("POST", "experiments/permissions/create",
                              {"experiment_id": exp, "username": "alice", "permission": "READ"})
        self.assertEqual((st, body["error_code"]), (400, "RESOURCE_ALREADY_EXISTS"))
        st, body = SRV.mlflow("POST", "experiments/permissions/create",
                              {"experiment_id": exp, "username": "bob", "permission": "read"})
        self.assertEqual((st, body["error_code"]), (400, "INVALID_PARAMETER_VALUE"))
        self.assertIn("Invalid permission 'read'", body["message"])
        st, body = SRV.mlflow("POST", "experiments/permissions/create",
                              {"experiment_id": exp, "username": "ghost", "permission": "READ"})
        self.assertEqual(st, 404)
        body = SRV.ok("GET", "experiments/permissions/get", {"experiment_id": exp, "username": "alice"})
        self.assertEqual(body["experiment_permission"]["permission"], "EDIT")
        SRV.ok("PATCH", "experiments/permissions/update",
               {"experiment_id": exp, "username": "alice", "permission": "MANAGE"})
        # alice now manages it: she may grant bob, even MANAGE.
        SRV.ok("POST", "experiments/permissions/create",
               {"experiment_id": exp, "username": "bob", "permission": "MANAGE"}, as_=ALICE)
        SRV.ok("DELETE", "experiments/permissions/delete", {"experiment_id": exp, "username": "bob"},
               as_=ALICE)
        st, body = SRV.mlflow("GET", "experiments/permissions/get", {"experiment_id": exp, "username": "bob"})
        self.assertEqual(st, 404)
        self.assertEqual(body["message"], f"Experiment permission with experiment_id={exp} and "
                                          "username=bob not found")
        # bob (default READ) may not manage.
        st, _ = SRV.mlflow("POST", "experiments/permissions/create",
                           {"experiment_id": exp, "username": "bob", "permission": "MANAGE"}, as_=BOB)
        self.assertEqual(st, 403)
        # Rows may name experiments that do not exist.
        SRV.grant("987654", "bob", "READ")

    def test_model_rows(self):
        body = SRV.ok("POST", "registered-models/permissions/create",
                      {"name": "m1", "username": "alice", "permission": "READ"})
        self.assertEqual(body["registered_model_permission"]["name"], "m1")
        SRV.ok("PATCH", "registered-models/permissions/update",
               {"name": "m1", "username": "alice", "permission": "EDIT"})
        body = SRV.ok("GET", "registered-models/permissions/get", {"name": "m1", "username": "alice"})
        self.assertEqual(body["registered_model_permission"]["permission"], "EDIT")
        st, _ = SRV.mlflow("POST", "registered-models/permissions/create",
                           {"name": "m1", "username": "bob", "permission": "READ"}, as_=ALICE)
        self.assertEqual(st, 403)  # EDIT is not MANAGE
        SRV.ok("DELETE", "registered-models/permissions/delete", {"name": "m1", "username": "alice"})
        st, body = SRV.mlflow("GET", "registered-models/permissions/get", {"name": "m1", "username": "alice"})
        self.assertEqual(st, 404)
        self.assertIn("Registered model permission with name=m1 and username=alice not found",
                      body["message"])

    def test_creator_gets_manage(self):
        exp = SRV.new_experiment("alice-made", as_=ALICE)
        body = SRV.ok("GET", "users/get", {"username": "alice"}, as_=ALICE)
        rows = {r["experiment_id"]: r["permission"] for r in body["user"]["experiment_permissions"]}
        self.assertEqual(rows.get(exp), "MANAGE")
        # And may delete it, which bob may not.
        st, _ = SRV.mlflow("POST", "experiments/delete", {"experiment_id": exp}, as_=BOB)
        self.assertEqual(st, 403)
        SRV.ok("POST", "experiments/delete", {"experiment_id": exp}, as_=ALICE)

    def test_grant_takes_effect_at_once(self):
        exp = SRV.new_experiment("grant-now")
        run = SRV.new_run(exp)
        args = {"run_id": run, "key": "k", "value": 1.0, "timestamp": 1, "step": 0}
        self.assertEqual(SRV.mlflow("POST", "runs/log-metric", args, as_=BOB)[0], 403)
        SRV.grant(exp, "bob", "EDIT")
        self.assertEqual(SRV.mlflow("POST", "runs/log-metric", args, as_=BOB)[0], 200)
        SRV.ok("PATCH", "experiments/permissions/update",
               {"experiment_id": exp, "username": "bob", "permission": "READ"})
        self.assertEqual(SRV.mlflow("POST", "runs/log-metric", args, as_=BOB)[0], 403)

    def test_ambiguous_resource_refused(self):
        mine = SRV.new_experiment("bob-own", as_=BOB)
        theirs = SRV.new_experiment("not-bobs")
        SRV.grant(theirs, "bob", "READ")
        run_mine = SRV.new_run(mine, as_=BOB)
        run_theirs = SRV.new_run(theirs)
        body = ('{"run_id": "%s", "run_id": "%s", "key": "k", "value": 1, "timestamp": 1}'
                % (run_mine, run_theirs))
        for b in [body, body.replace('"run_id": "%s", ' % run_mine, '"runId": "%s", ' % run_mine),
                  '{"run_id": "%s", "run\\u005fid": "%s", "key": "k", "value": 1, "timestamp": 1}'
                  % (run_mine, run_theirs)]:
            st, _, data = SRV.request("POST", "/api/2.0/mlflow/runs/log-metric", body=b,
                                      headers={"Content-Type": "application/json",
                                               "Authorization": basic(*BOB)})
            self.assertEqual(st, 400, (b, data))
        # The same with log-batch bodies large enough for the fast lookup path.
        metrics = ",".join('{"key":"m","value":%d,"timestamp":1,"step":%d}' % (i, i) for i in range(200))
        for b in ['{"run_id":"%s","metrics":[%s],"run_id":"%s"}' % (run_mine, metrics, run_theirs),
                  '{"runId":"%s","metrics":[%s],"run_uuid":"%s"}' % (run_mine, metrics, run_theirs),
                  '{"run_id":"%s","metrics":[%s],"run\\u005fid":"%s"}' % (run_mine, metrics, run_theirs)]:
            self.assertGreater(len(b), 4096)
            st, _, data = SRV.request("POST", "/api/2.0/mlflow/runs/log-batch", body=b,
                                      headers={"Content-Type": "application/json",
                                               "Authorization": basic(*BOB)})
            self.assertEqual(st, 400, data)
        ok = '{"run_id":"%s","metrics":[%s]}' % (run_mine, metrics)
        st, _, data = SRV.request("POST", "/api/2.0/mlflow/runs/log-batch", body=ok,
                                  headers={"Content-Type": "application/json",
                                           "Authorization": basic(*BOB)})
        self.assertEqual(st, 200, data)
        bad = '{"run_id":"%s","metrics":[%s]}' % (run_theirs, metrics)
        st, _, data = SRV.request("POST", "/api/2.0/mlflow/runs/log-batch", body=bad,
                                  headers={"Content-Type": "application/json",
                                           "Authorization": basic(*BOB)})
        self.assertEqual(st, 403, data)
        for key in ["k", "m"]:
            st, body = SRV.mlflow("GET", "metrics/get-history", {"run_id": run_theirs, "metric_key": key})
            self.assertEqual(st, 200)
            self.assertEqual(body.get("metrics", []), [])


class Tokens(unittest.TestCase):
    def test_bearer_and_revoke(self):
        st, body, _ = SRV.call("POST", "tally/tokens/create", {"name": "ci"}, as_=ALICE)
        self.assertEqual(st, 200, body)
        tok = body["token"]
        self.assertTrue(tok.startswith("tly_"))
        self.assertEqual(body["token_info"]["username"], "alice")
        tid = body["token_info"]["id"]
        self.assertEqual(SRV.mlflow("GET", "users/get", {"username": "alice"}, as_=tok)[0], 200)
        self.assertEqual(SRV.mlflow("GET", "users/get", {"username": "bob"}, as_=tok)[0], 403)
        st, body, _ = SRV.call("GET", "tally/tokens/list", {}, as_=tok)
        self.assertEqual(st, 200)
        self.assertIn(tid, [t["id"] for t in body["tokens"]])
        self.assertNotIn("token", str(body["tokens"]).replace("tokens", ""))  # the secret is never listed
        # bob can neither see nor revoke alice's token.
        st, body, _ = SRV.call("GET", "tally/tokens/list", {"username": "alice"}, as_=BOB)
        self.assertEqual(st, 403)
        st, body, _ = SRV.call("POST", "tally/tokens/revoke", {"id": tid}, as_=BOB)
        self.assertEqual(st, 404)
        self.assertEqual(SRV.mlflow("GET", "experiments/search", {}, as_=tok)[0], 200)
        # Revoke: the very next request with it is refused.
        conn = SRV.connection()
        try:
            conn.request("GET", "/api/2.0/mlflow/experiments/search",
                         headers={"Authorization": "Bearer " + tok})
            r = conn.getresponse()
            r.read()
            self.assertEqual(r.status, 200)
            st, body, _ = SRV.call("POST", "tally/tokens/revoke", {"id": tid}, as_=ALICE)
            self.assertEqual(st, 200, body)
            conn.request("GET", "/api/2.0/mlflow/experiments/search",
                         headers={"Authorization": "Bearer " + tok})
            r = conn.getresponse()
            r.read()
            self.assertEqual(r.status, 401)
        finally:
            conn.close()
        st, body, _ = SRV.call("GET", "tally/tokens/list", {}, as_=ALICE)
        revoked = [t for t in body["tokens"] if t["id"] == tid][0]
        self.assertIn("revoked_time", revoked)

    def test_admin_token_for_other_user_and_expiry(self):
        st, body, _ = SRV.call("POST", "tally/tokens/create",
                               {"name": "short", "username": "bob", "expires_in_s": 1})
        self.assertEqual(st, 200, body)
        self.assertEqual(body["token_info"]["username"], "bob")
        tok = body["token"]
        self.assertEqual(SRV.mlflow("GET", "users/get", {"username": "bob"}, as_=tok)[0], 200)
        time.sleep(1.3)
        self.assertEqual(SRV.mlflow("GET", "users/get", {"username": "bob"}, as_=tok)[0], 401)
        st, _, _ = SRV.call("POST", "tally/tokens/create", {"name": "x", "username": "alice"}, as_=BOB)
        self.assertEqual(st, 403)

    def test_deleted_user_tokens_die(self):
        u = ("erin", "erin-password-1")
        SRV.create_user(*u)
        st, body, _ = SRV.call("POST", "tally/tokens/create", {"name": "t"}, as_=u)
        tok = body["token"]
        self.assertEqual(SRV.mlflow("GET", "experiments/search", {}, as_=tok)[0], 200)
        SRV.ok("DELETE", "users/delete", {"username": "erin"})
        self.assertEqual(SRV.mlflow("GET", "experiments/search", {}, as_=tok)[0], 401)


class SearchFiltering(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # frank sees, by default READ, everything but the experiments denied
        # to him explicitly.
        SRV.create_user("frank", "frank-password-1")
        cls.frank = ("frank", "frank-password-1")
        cls.hidden, cls.visible = [], []
        for i in range(7):
            e = SRV.new_experiment(f"sf-{i}")
            SRV.new_run(e)
            SRV.new_run(e)
            if i % 2 == 0:
                SRV.grant(e, "frank", "NO_PERMISSIONS")
                cls.hidden.append(e)
            else:
                cls.visible.append(e)

    def all_pages(self, rel, args, key, as_):
        got, token, pages = [], None, 0
        while True:
            a = dict(args)
            if token:
                a["page_token"] = token
            st, body = SRV.mlflow("POST", rel, a, as_=as_)
            self.assertEqual(st, 200, body)
            items = body.get(key, [])
            pages += 1
            if body.get("next_page_token"):
                self.assertEqual(len(items), a["max_results"])  # pages stay full
            got += items
            token = body.get("next_page_token")
            if not token:
                return got, pages

    def test_experiments_search_never_leaks(self):
        got, pages = self.all_pages("experiments/search",
                                    {"max_results": 2, "filter": "name LIKE 'sf-%'"},
                                    "experiments", self.frank)
        ids = sorted(e["experiment_id"] for e in got)
        self.assertEqual(ids, sorted(self.visible))
        self.assertEqual(pages, 2)
        got, _ = self.all_pages("experiments/search", {"max_results": 2, "filter": "name LIKE 'sf-%'"},
                                "experiments", ADMIN)
        self.assertEqual(len(got), 7)
        st, body = SRV.mlflow("GET", "experiments/list", {}, as_=self.frank)
        names = [e["name"] for e in body["experiments"]]
        for e in self.hidden:
            st2, b2 = SRV.mlflow("GET", "experiments/get", {"experiment_id": e})
            self.assertNotIn(b2["experiment"]["name"], names)

    def test_runs_search_never_leaks(self):
        every = self.hidden + self.visible
        got, pages = self.all_pages("runs/search", {"experiment_ids": every, "max_results": 3},
                                    "runs", self.frank)
        exps = sorted({r["info"]["experiment_id"] for r in got})
        self.assertEqual(exps, sorted(self.visible))
        self.assertEqual(len(got), 2 * len(self.visible))
        self.assertEqual(pages, 2)
        st, body = SRV.mlflow("POST", "runs/search", {"experiment_ids": self.hidden}, as_=self.frank)
        self.assertEqual((st, body.get("runs", [])), (200, []))
        # Direct reads of a hidden run are refused, not just unlisted.
        run = SRV.mlflow("POST", "runs/search", {"experiment_ids": [self.hidden[0]]})[1]["runs"][0]
        st, _ = SRV.mlflow("GET", "runs/get", {"run_id": run["info"]["run_id"]}, as_=self.frank)
        self.assertEqual(st, 403)


    def test_logged_models_search_never_leaks(self):
        for e in self.hidden + self.visible:
            SRV.ok("POST", "logged-models", {"experiment_id": e, "name": f"lm-{e}"})
        st, body = SRV.mlflow("POST", "logged-models/search",
                              {"experiment_ids": self.hidden + self.visible}, as_=self.frank)
        self.assertEqual(st, 200, body)
        self.assertEqual(sorted(m["info"]["experiment_id"] for m in body.get("models", [])),
                         sorted(self.visible))
        st, body = SRV.mlflow("POST", "logged-models/search", {"experiment_ids": self.hidden},
                              as_=self.frank)
        self.assertEqual((st, body.get("models", [])), (200, []))


class RegistrySearchFiltering(unittest.TestCase):
    """registered-models/search and model-versions/search return only what
    the caller may read (MLflow filters the first and not the second; we
    filter both), before paging: pages stay full."""

    def make_models(self, srv, prefix, n):
        for i in range(n):
            srv.ok("POST", "registered-models/create", {"name": f"{prefix}-{i}"})
            for _ in range(2):
                srv.ok("POST", "model-versions/create", {"name": f"{prefix}-{i}",
                                                         "source": "s3://b/m"})

    def pages(self, srv, rel, filt, key, as_):
        got, token = [], None
        while True:
            args = {"max_results": 2, "filter": filt}
            if token:
                args["page_token"] = token
            st, body = srv.mlflow("GET", rel, args, as_=as_)
            self.assertEqual(st, 200, body)
            if body.get("next_page_token"):
                self.assertEqual(len(body[key]), 2)  # pages stay full
            got += body.get(key, [])
            token = body.get("next_page_token")
            if not token:
                return got

    def model_grant(self, srv, name, user, perm):
        srv.ok("POST", "registered-models/permissions/create",
               {"name": name, "username": user, "permission": perm})

    def test_default_readable_denied_rows_excluded(self):
        SRV.create_user("rina", "rina-password-1")
        rina = ("rina", "rina-password-1")
        self.make_models(SRV, "rsf", 5)
        for i in (0, 2, 4):
            self.model_grant(SRV, f"rsf-{i}", "rina", "NO_PERMISSIONS")
        models = self.pages(SRV, "registered-models/search", "name LIKE 'rsf-%'",
                            "registered_models", rina)
        self.assertEqual(sorted(m["name"] for m in models), ["rsf-1", "rsf-3"])
        versions = self.pages(SRV, "model-versions/search", "name LIKE 'rsf-%'",
                              "model_versions", rina)
        self.assertEqual(sorted((v["name"], v["version"]) for v in versions),
                         [("rsf-1", "1"), ("rsf-1", "2"), ("rsf-3", "1"), ("rsf-3", "2")])
        self.assertEqual(len(self.pages(SRV, "model-versions/search", "name LIKE 'rsf-%'",
                                        "model_versions", ADMIN)), 10)

    def test_default_denied_only_granted_rows(self):
        with AuthServer(default_permission="NO_PERMISSIONS") as srv:
            srv.create_user("hal", "hal-password-12")
            hal = ("hal", "hal-password-12")
            self.make_models(srv, "nd", 4)
            self.assertEqual(self.pages(srv, "registered-models/search", "", "registered_models",
                                        hal), [])
            self.assertEqual(self.pages(srv, "model-versions/search", "", "model_versions", hal),
                             [])
            self.model_grant(srv, "nd-1", "hal", "READ")
            self.model_grant(srv, "nd-3", "hal", "EDIT")
            self.model_grant(srv, "nd-2", "hal", "NO_PERMISSIONS")
            models = self.pages(srv, "registered-models/search", "", "registered_models", hal)
            self.assertEqual(sorted(m["name"] for m in models), ["nd-1", "nd-3"])
            versions = self.pages(srv, "model-versions/search", "", "model_versions", hal)
            self.assertEqual(len(versions), 4)
            self.assertEqual({v["name"] for v in versions}, {"nd-1", "nd-3"})


class AuditLog(unittest.TestCase):
    def test_records_changes_with_who_what_where(self):
        u = ("gina", "gina-password-1")
        SRV.create_user(*u)
        exp = SRV.new_experiment("audited", as_=u)
        run = SRV.new_run(exp, as_=u)
        SRV.ok("POST", "runs/set-tag", {"run_id": run, "key": "k", "value": "v"}, as_=u)
        other = SRV.new_experiment("not-gina")
        SRV.grant(other, "gina", "READ")
        st, _ = SRV.mlflow("POST", "experiments/delete", {"experiment_id": other}, as_=u)
        self.assertEqual(st, 403)
        SRV.mlflow("GET", "runs/get", {"run_id": run}, as_=u)  # a read: not audited
        st, body, _ = SRV.call("GET", "tally/audit/search", {"username": "gina"})
        self.assertEqual(st, 200, body)
        recs = body["records"]
        routes = [r["route"] for r in recs]
        self.assertEqual(routes, ["experiments/delete", "runs/set-tag", "runs/create",
                                  "experiments/create"])
        self.assertEqual(recs[0]["status"], 403)
        self.assertEqual(recs[0]["resource"], f"experiment_id={other}")
        self.assertEqual(recs[1]["resource"], f"run_id={run}")
        self.assertEqual(recs[3]["resource"], f"experiment_id={exp}")
        for r in recs:
            self.assertEqual(r["username"], "gina")
            self.assertTrue(r["remote"].startswith("127.0.0.1:"))
            self.assertEqual(r["method"], "POST")
            self.assertGreater(r["time_ms"], 1600000000000)
        # Filters and pagination.
        st, body, _ = SRV.call("GET", "tally/audit/search",
                               {"username": "gina", "route": "runs/set-tag"})
        self.assertEqual([r["route"] for r in body["records"]], ["runs/set-tag"])
        seen, token = [], None
        while True:
            args = {"username": "gina", "max_results": 1}
            if token:
                args["page_token"] = token
            st, body, _ = SRV.call("GET", "tally/audit/search", args)
            self.assertEqual(st, 200)
            seen += [r["id"] for r in body["records"]]
            token = body.get("next_page_token")
            if not token:
                break
        self.assertEqual(seen, [r["id"] for r in recs])
        st, body, _ = SRV.call("GET", "tally/audit/search",
                               {"username": "gina", "since_ms": recs[0]["time_ms"] + 1})
        self.assertEqual(body["records"], [])


class Restart(unittest.TestCase):
    def test_users_persist_and_admin_is_not_reset(self):
        with AuthServer() as s:
            s.create_user("hank", "hank-password-1")
            data = s.data_dir
            s.stop()
            # A different admin password in the config does not reset the admin.
            s2 = AuthServer(data_dir=data, args=[])
            s2.args[2] = "another-admin-pass"
            s2.start()
            try:
                self.assertEqual(s2.mlflow("GET", "users/get", {"username": "hank"},
                                           as_=("hank", "hank-password-1"))[0], 200)
                self.assertEqual(s2.mlflow("GET", "experiments/search", {},
                                           as_=("admin", "another-admin-pass"))[0], 401)
                self.assertEqual(s2.mlflow("GET", "experiments/search", {})[0], 200)
                # The audit record of a change made just before SIGTERM survived it.
                st, body, _ = s2.call("GET", "tally/audit/search", {"route": "users/create"})
                self.assertEqual(st, 200, body)
                self.assertEqual([r["username"] for r in body["records"]], ["admin"])
            finally:
                s2.stop()


class Startup(unittest.TestCase):
    def run_serve(self, args, env=None):
        base = os.environ.get("TALLY_TEST_TMP") or None
        import tempfile
        with tempfile.TemporaryDirectory(prefix="tally-auth-", dir=base) as d:
            p = subprocess.run([tally_binary(), "serve", "--port", "0", "--data", d + "/data"] + args,
                               capture_output=True, timeout=30, env=dict(os.environ, **(env or {})))
            return p.returncode, p.stderr.decode()

    def test_non_loopback_without_auth_refused(self):
        code, err = self.run_serve(["--host", "0.0.0.0"])
        self.assertEqual(code, 2, err)
        self.assertIn("--insecure-allow-public-without-auth", err)
        code, err = self.run_serve(["--host", "::"])
        self.assertEqual(code, 2, err)

    def test_non_loopback_allowed_with_flag_or_auth(self):
        # Binds all interfaces of this machine; the test talks to 127.0.0.1 only.
        s = TallyServer(args=["--host", "0.0.0.0", "--insecure-allow-public-without-auth"])
        s.start()
        try:
            s.host = "127.0.0.1"
            self.assertEqual(s.api("experiments/search", {})[0], 200)
        finally:
            s.stop()
            s.cleanup()
        s = AuthServer(args=["--host", "0.0.0.0"])
        s.start()
        try:
            s.host = "127.0.0.1"
            self.assertEqual(s.mlflow("GET", "experiments/search", {}, as_=None)[0], 401)
        finally:
            s.stop()
            s.cleanup()

    def test_admin_password_required_to_bootstrap(self):
        code, err = self.run_serve(["--auth"])
        self.assertEqual(code, 1, err)
        self.assertIn("--admin-password", err)
        code, err = self.run_serve(["--auth", "--admin-password", "short"])
        self.assertEqual(code, 1, err)
        code, err = self.run_serve(["--auth", "--default-permission", "WRITE",
                                    "--admin-password", "long-enough-pass"])
        self.assertEqual(code, 1, err)
        self.assertIn("default_permission", err)


class AuthOff(unittest.TestCase):
    def test_auth_endpoints_absent_and_nothing_checked(self):
        with TallyServer() as s:
            st, body = s.api("users/create", {"username": "u", "password": "p" * 12})
            self.assertEqual((st, body["error_code"]), (404, "ENDPOINT_NOT_FOUND"))
            st, body = s.get("/api/2.0/tally/audit/search")
            self.assertEqual(st, 404)
            st, body = s.api("experiments/create", {"name": "open"})
            self.assertEqual(st, 200)
            st, _, _ = s.request("GET", "/version")
            self.assertEqual(st, 200)


if __name__ == "__main__":
    unittest.main(verbosity=2)
