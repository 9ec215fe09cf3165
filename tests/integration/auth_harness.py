"""auth_harness.py — helpers for the authentication tests (stdlib only): a
`tally serve --auth` with a known admin, and requests sent as a given user
(HTTP Basic) or token (Bearer).

    from auth_harness import AuthServer, ADMIN
    with AuthServer() as srv:
        srv.create_user("alice", "alice-password-1")
        st, body = srv.call("POST", "experiments/create", {"name": "e"}, as_=("alice", "alice-password-1"))
"""

import base64
import json
import os
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_harness import TallyServer  # noqa: E402

ADMIN = ("admin", "admin-password-123")


def basic(user, password):
    raw = f"{user}:{password}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def auth_header(as_):
    """as_: (user, password), a token string, or None (no header)."""
    if as_ is None:
        return {}
    if isinstance(as_, str):
        return {"Authorization": "Bearer " + as_}
    return {"Authorization": basic(*as_)}


class AuthServer(TallyServer):
    def __init__(self, args=(), default_permission="READ", **kw):
        args = ["--auth", "--admin-password", ADMIN[1], "--default-permission",
                default_permission] + list(args)
        super().__init__(args=args, **kw)

    def start(self):
        # The harness waits for /health, which needs no credentials.
        return super().start()

    def call(self, method, rel, obj=None, as_=ADMIN, prefix="/api/2.0/", headers=None):
        """method on prefix + rel: GET/DELETE-with-params send obj as the query
        string, others as a JSON body. Returns (status, parsed body, headers)."""
        h = dict(auth_header(as_))
        h.update(headers or {})
        path = prefix + rel
        body = None
        if method == "GET":
            if obj:
                path += "?" + urllib.parse.urlencode(obj, doseq=True)
        else:
            h.setdefault("Content-Type", "application/json")
            body = json.dumps(obj if obj is not None else {})
        status, hdrs, data = self.request(method, path, body=body, headers=h)
        return status, self._decode(data), hdrs

    def mlflow(self, method, rel, obj=None, as_=ADMIN):
        st, body, _ = self.call(method, "mlflow/" + rel, obj, as_=as_)
        return st, body

    def ok(self, method, rel, obj=None, as_=ADMIN):
        st, body = self.mlflow(method, rel, obj, as_=as_)
        assert st == 200, (method, rel, obj, st, body)
        return body

    def create_user(self, user, password):
        return self.ok("POST", "users/create", {"username": user, "password": password})

    def grant(self, exp_id, user, perm):
        return self.ok("POST", "experiments/permissions/create",
                       {"experiment_id": str(exp_id), "username": user, "permission": perm})

    def new_experiment(self, name, as_=ADMIN):
        return self.ok("POST", "experiments/create", {"name": name}, as_=as_)["experiment_id"]

    def new_run(self, exp_id, as_=ADMIN):
        body = self.ok("POST", "runs/create", {"experiment_id": str(exp_id)}, as_=as_)
        return body["run"]["info"]["run_id"]
