"""test_cli_auth.py — `tally users`, `tally tokens` and `tally audit` against a
real `tally serve --auth` (they talk to the server over HTTP): exit codes,
output, and that their changes take effect in the server at once.

Python stdlib only; run directly (TALLY_BIN_DIR=<build dir>) or through CTest.
"""

import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from auth_harness import ADMIN, AuthServer  # noqa: E402
from server_harness import tally_binary  # noqa: E402

SRV = None


def setUpModule():
    global SRV
    SRV = AuthServer().start()


def tearDownModule():
    try:
        SRV.stop()
    finally:
        SRV.cleanup()


def tally(*args, as_=ADMIN, stdin=None, env=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING_")}
    e["TALLY_URL"] = SRV.base_url
    if isinstance(as_, str):
        e["MLFLOW_TRACKING_TOKEN"] = as_
    elif as_:
        e["MLFLOW_TRACKING_USERNAME"], e["MLFLOW_TRACKING_PASSWORD"] = as_
    e.update(env or {})
    p = subprocess.run([tally_binary()] + list(args), input=(stdin or "").encode(),
                       capture_output=True, env=e, timeout=60)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


class Cli(unittest.TestCase):
    def test_users_lifecycle(self):
        code, out, err = tally("users", "create", "ivy", stdin="ivy-password-123\n")
        self.assertEqual(code, 0, err)
        self.assertEqual(json.loads(out)["user"]["username"], "ivy")
        ivy = ("ivy", "ivy-password-123")
        exp = SRV.new_experiment("cli-exp")
        code, out, err = tally("users", "grant", "experiment", exp, "ivy", "EDIT")
        self.assertEqual(code, 0, err)
        code, out, err = tally("users", "grant", "experiment", exp, "ivy", "READ")  # update
        self.assertEqual(code, 0, err)
        code, out, err = tally("users", "get", "ivy")
        rows = json.loads(out)["user"]["experiment_permissions"]
        self.assertEqual([(r["experiment_id"], r["permission"]) for r in rows], [(exp, "READ")])
        code, out, err = tally("users", "grant", "experiment", exp, "ivy", "WRITE")
        self.assertEqual(code, 1)
        self.assertIn("INVALID_PARAMETER_VALUE", err)
        code, out, err = tally("users", "revoke", "experiment", exp, "ivy")
        self.assertEqual(code, 0, err)
        # Non-admins are refused by the server (exit 1, message).
        code, out, err = tally("users", "delete", "admin", as_=ivy)
        self.assertEqual(code, 1)
        self.assertIn("PERMISSION_DENIED", err)
        code, out, err = tally("users", "set-password", "ivy", env={"TALLY_NEW_PASSWORD": "ivy-password-456"},
                               as_=ivy)
        self.assertEqual(code, 0, err)
        self.assertEqual(SRV.mlflow("GET", "experiments/search", {}, as_=ivy)[0], 401)
        code, out, err = tally("users", "set-admin", "ivy", "true")
        self.assertEqual(code, 0, err)
        code, out, err = tally("users", "delete", "ivy")
        self.assertEqual(code, 0, err)
        code, out, err = tally("users", "get", "ivy")
        self.assertEqual(code, 1)
        self.assertIn("RESOURCE_DOES_NOT_EXIST", err)

    def test_tokens(self):
        SRV.create_user("jo", "jo-password-123")
        jo = ("jo", "jo-password-123")
        code, out, err = tally("tokens", "create", "laptop", as_=jo)
        self.assertEqual(code, 0, err)
        tok = out.strip()
        self.assertTrue(tok.startswith("tly_"))
        tid = json.loads(err)["id"]
        code, out, err = tally("tokens", "list", as_=tok)
        self.assertEqual(code, 0, err)
        self.assertEqual([t["name"] for t in json.loads(out)["tokens"]], ["laptop"])
        code, out, err = tally("tokens", "revoke", str(tid), as_=tok)
        self.assertEqual(code, 0, err)
        code, out, err = tally("tokens", "list", as_=tok)
        self.assertEqual(code, 1)
        self.assertIn("401", err)

    def test_audit(self):
        SRV.create_user("kim", "kim-password-123")
        SRV.new_experiment("kim-exp", as_=("kim", "kim-password-123"))
        code, out, err = tally("audit", "--who", "kim", "--json")
        self.assertEqual(code, 0, err)
        recs = [json.loads(line) for line in out.splitlines()]
        self.assertEqual([r["route"] for r in recs], ["experiments/create"])
        code, out, err = tally("audit", "--limit", "2")
        self.assertEqual(code, 0, err)
        self.assertEqual(len(out.splitlines()), 2)
        code, out, err = tally("audit", as_=("kim", "kim-password-123"))
        self.assertEqual(code, 1)

    def test_usage_and_unreachable(self):
        self.assertEqual(tally("users")[0], 2)
        self.assertEqual(tally("tokens", "bogus")[0], 2)
        self.assertEqual(tally("audit", "--limit", "x")[0], 2)
        for cmd in ["users", "tokens", "audit"]:
            code, out, _ = tally(cmd, "--help")
            self.assertEqual(code, 0)
            self.assertIn("usage: tally " + cmd, out)
        code, out, err = tally("audit", env={"TALLY_URL": "http://127.0.0.1:1"})
        self.assertEqual(code, 1)
        self.assertIn("cannot connect", err)
        code, out, err = tally("audit", env={"TALLY_URL": "https://127.0.0.1:1"})
        self.assertEqual(code, 2)


if __name__ == "__main__":
    unittest.main(verbosity=2)
