"""test_webhooks.py — MLflow's webhooks on a real `tally serve` over real HTTP
(mlflow-webhooks.md), with receivers started by the test (http.server in a
thread): CRUD and validation errors, the synchronous test endpoint, queued
deliveries with verified signatures, retries, Retry-After, a receiver that is
down, durable deliveries across a crash and a graceful restart, API latency
while a receiver sleeps, and the `tally webhooks` command.

Events are driven through POST .../webhooks/{id}/deliveries (Tally's
extension: the test endpoint's example event, queued through the durable
queue) and, when the model registry endpoints exist, through
registered-models/create.

Run: python3 tests/integration/test_webhooks.py (TALLY_BIN_DIR=<build dir>),
or through CTest (py_test_webhooks).
"""

import base64
import hashlib
import hmac
import http.server
import json
import os
import signal
import sqlite3
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_harness import TallyServer, tally_binary  # noqa: E402

# Fast retries for tests; everything else as MLflow's defaults except the
# allowed schemes (plain http receivers) and the per-attempt timeout.
FAST_ENV = {
    "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
    "MLFLOW_WEBHOOK_REQUEST_TIMEOUT": "2",
    "MLFLOW_WEBHOOK_DELIVERY_MAX_WORKERS": "3",
    "TALLY_WEBHOOK_BACKOFF_BASE_MS": "100",
    "TALLY_WEBHOOK_BACKOFF_JITTER_MS": "20",
}

EVENTS_MV = [{"entity": "MODEL_VERSION", "action": "CREATED"},
             {"entity": "MODEL_VERSION_ALIAS", "action": "DELETED"}]


class Receiver:
    """An HTTP receiver in a thread. script: a list of (status, headers,
    delay_s, body) answered in order, then (200, {}, 0, "ok") forever."""

    def __init__(self, script=(), port=0):
        self.script = list(script)
        self.requests = []  # (monotonic time, headers dict lower-case, body bytes, path)
        self.lock = threading.Lock()
        self.cv = threading.Condition(self.lock)
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                with outer.cv:
                    outer.requests.append((time.monotonic(),
                                           {k.lower(): v for k, v in self.headers.items()},
                                           body, self.path))
                    step = outer.script.pop(0) if outer.script else (200, {}, 0, "ok")
                    outer.cv.notify_all()
                status, headers, delay, text = step
                if delay:
                    time.sleep(delay)
                data = text.encode()
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/hook"

    def wait(self, n, timeout=20.0):
        """Waits until n requests arrived; returns them."""
        deadline = time.monotonic() + timeout
        with self.cv:
            while len(self.requests) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"receiver got {len(self.requests)} requests, wanted {n}")
                self.cv.wait(left)
            return list(self.requests)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def free_port():
    """A port nothing listens on (bound, then closed)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def expected_signature(secret, delivery_id, timestamp, body):
    msg = delivery_id.encode() + b"." + timestamp.encode() + b"." + body
    mac = hmac.new(secret.encode(), msg, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def verify(test, secret, headers, body):
    """MLflow's sample receiver checks (§6)."""
    test.assertEqual(headers.get("content-type"), "application/json")
    did = headers["x-mlflow-delivery-id"]
    ts = headers["x-mlflow-timestamp"]
    test.assertRegex(did, r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
    test.assertRegex(ts, r"^[0-9]+$")
    test.assertLess(abs(time.time() - int(ts)), 300)
    if secret:
        sig = headers["x-mlflow-signature"]
        test.assertTrue(hmac.compare_digest(sig, expected_signature(secret, did, ts, body)),
                        (sig, body))
    else:
        test.assertNotIn("x-mlflow-signature", headers)
    return json.loads(body)


class Base(unittest.TestCase):
    srv = None

    def api(self, rel, obj=None, method="POST", params=None):
        return self.srv.api(rel, obj, method=method, params=params)

    def assertError(self, resp, status, code, contains=None):
        st, b = resp
        self.assertEqual(st, status, b)
        self.assertIsInstance(b, dict, b)
        self.assertEqual(b.get("error_code"), code, b)
        self.assertIsInstance(b.get("message"), str)
        if contains:
            self.assertIn(contains, b["message"])

    def create(self, url, name="hook", events=None, **kw):
        body = {"name": name, "url": url, "events": events or EVENTS_MV}
        body.update(kw)
        st, b = self.api("webhooks", body)
        self.assertEqual(st, 200, b)
        return b["webhook"]

    def queue(self, wid, event=None):
        st, b = self.api(f"webhooks/{wid}/deliveries", {"event": event} if event else {})
        self.assertEqual(st, 200, b)
        return b["delivery"]

    def deliveries(self, wid, **params):
        st, b = self.api(f"webhooks/{wid}/deliveries", method="GET", params=params or None)
        self.assertEqual(st, 200, b)
        return b

    def wait_state(self, wid, delivery_id, states=("SUCCEEDED", "FAILED"), timeout=20.0):
        deadline = time.monotonic() + timeout
        while True:
            st, b = self.api(f"webhooks/{wid}/deliveries/{delivery_id}", method="GET")
            self.assertEqual(st, 200, b)
            if b["delivery"]["state"] in states:
                return b["delivery"]
            if time.monotonic() > deadline:
                raise AssertionError(f"delivery stuck: {b}")
            time.sleep(0.05)


# ---------------------------------------------------------------------------
# CRUD, validation, test endpoint, deliveries (one shared server)
# ---------------------------------------------------------------------------


class TestWebhooks(Base):
    @classmethod
    def setUpClass(cls):
        cls.srv = TallyServer(env=FAST_ENV).start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.srv.stop()
        finally:
            cls.srv.cleanup()

    def test_crud(self):
        t0 = int(time.time() * 1000)
        w = self.create("https://ci.example.com/hook", name="mv-notifier", secret="s3cret",
                        description="to CI")
        self.assertRegex(w["webhook_id"], r"^[0-9a-f-]{36}$")
        self.assertEqual(w["name"], "mv-notifier")
        self.assertEqual(w["url"], "https://ci.example.com/hook")
        self.assertEqual(w["events"], EVENTS_MV)
        self.assertEqual(w["status"], "ACTIVE")
        self.assertEqual(w["description"], "to CI")
        self.assertNotIn("secret", w)
        self.assertEqual(w["creation_timestamp"], w["last_updated_timestamp"])
        self.assertGreaterEqual(w["creation_timestamp"], t0)
        wid = w["webhook_id"]

        st, b = self.api(f"webhooks/{wid}", method="GET")
        self.assertEqual((st, b), (200, {"webhook": w}))
        # Both prefixes.
        st, b = self.srv.get(f"/ajax-api/2.0/mlflow/webhooks/{wid}")
        self.assertEqual((st, b), (200, {"webhook": w}))
        self.assertNotIn(b"s3cret", self.srv.request("GET", f"/api/2.0/mlflow/webhooks/{wid}")[2])

        # No description -> omitted.
        w2 = self.create("https://x.example.com/h", name="second", status="DISABLED")
        self.assertNotIn("description", w2)
        self.assertEqual(w2["status"], "DISABLED")

        # PATCH: non-empty fields replace, ""/[]/absent leave as is.
        time.sleep(0.01)
        st, b = self.api(f"webhooks/{wid}", {"name": "renamed", "description": "", "events": [],
                                             "secret": ""}, method="PATCH")
        self.assertEqual(st, 200, b)
        u = b["webhook"]
        self.assertEqual(u["name"], "renamed")
        self.assertEqual(u["description"], "to CI")
        self.assertEqual(u["events"], EVENTS_MV)
        self.assertGreater(u["last_updated_timestamp"], w["last_updated_timestamp"])
        st, b = self.api(f"webhooks/{wid}", {"events": [{"entity": "PROMPT", "action": "CREATED"}],
                                             "status": "DISABLED", "url": "https://y.example.com/"},
                         method="PATCH")
        self.assertEqual(st, 200, b)
        self.assertEqual(b["webhook"]["events"], [{"entity": "PROMPT", "action": "CREATED"}])
        self.assertEqual(b["webhook"]["status"], "DISABLED")
        self.assertEqual(b["webhook"]["url"], "https://y.example.com/")
        st, b = self.api(f"webhooks/{wid}", {"status": 1}, method="PATCH")
        self.assertEqual(b["webhook"]["status"], "ACTIVE")
        # Nothing changed: still bumped.
        before = b["webhook"]["last_updated_timestamp"]
        time.sleep(0.01)
        st, b = self.api(f"webhooks/{wid}", {}, method="PATCH")
        self.assertGreater(b["webhook"]["last_updated_timestamp"], before)

        # DELETE: soft, then 404 everywhere.
        st, b = self.api(f"webhooks/{wid}", method="DELETE")
        self.assertEqual((st, b), (200, {}))
        msg = f"Webhook with ID {wid} not found."
        self.assertError(self.api(f"webhooks/{wid}", method="GET"), 404, "RESOURCE_DOES_NOT_EXIST",
                         msg)
        self.assertError(self.api(f"webhooks/{wid}", method="DELETE"), 404,
                         "RESOURCE_DOES_NOT_EXIST", msg)
        self.assertError(self.api(f"webhooks/{wid}", {"name": "x"}, method="PATCH"), 404,
                         "RESOURCE_DOES_NOT_EXIST", msg)
        self.assertError(self.api(f"webhooks/{wid}/test", {}), 404, "RESOURCE_DOES_NOT_EXIST")
        self.assertError(self.api(f"webhooks/{wid}/deliveries", method="GET"), 404,
                         "RESOURCE_DOES_NOT_EXIST")
        st, b = self.api("webhooks", method="GET", params={"max_results": 1000})
        self.assertNotIn(wid, [x["webhook_id"] for x in b.get("webhooks", [])])

    def test_list_newest_first_paged(self):
        srv = TallyServer(env=FAST_ENV).start()
        try:
            st, b = srv.api("webhooks", method="GET")
            self.assertEqual((st, b), (200, {}))
            ids = []
            for i in range(5):
                st, b = srv.api("webhooks", {"name": f"h{i}", "url": "https://e.example.com/",
                                             "events": EVENTS_MV})
                self.assertEqual(st, 200, b)
                ids.append(b["webhook"]["webhook_id"])
                time.sleep(0.002)
            seen, token = [], None
            while True:
                params = {"max_results": 2}
                if token:
                    params["page_token"] = token
                st, b = srv.api("webhooks", method="GET", params=params)
                self.assertEqual(st, 200, b)
                seen += [w["webhook_id"] for w in b["webhooks"]]
                token = b.get("next_page_token")
                if not token:
                    break
            self.assertEqual(seen, ids[::-1])
            st, b = srv.api("webhooks", method="GET", params={"max_results": 5})
            self.assertNotIn("next_page_token", b)
            self.assertEqual(len(b["webhooks"]), 5)
        finally:
            srv.stop()
            srv.cleanup()

    def test_validation(self):
        ok = {"name": "ok", "url": "https://e.example.com/", "events": EVENTS_MV}

        def bad(change, contains=None, method="POST", rel="webhooks"):
            body = dict(ok)
            body.update(change)
            body = {k: v for k, v in body.items() if v is not None}
            self.assertError(self.api(rel, body, method=method), 400, "INVALID_PARAMETER_VALUE",
                             contains)

        bad({"name": None}, "Missing value for required parameter 'name'")
        bad({"name": ""}, "Missing value for required parameter 'name'")
        bad({"url": None}, "Missing value for required parameter 'url'")
        for name in ["-a", "a-", "a b", "x" * 64, "é", "a/b", "_a"]:
            bad({"name": name}, "Invalid webhook name")
        for name in ["a", "A.b_c-9", "x" * 63]:
            st, b = self.api("webhooks", dict(ok, name=name))
            self.assertEqual(st, 200, b)
        bad({"url": "   "}, "URL")
        bad({"url": "ftp://e.example.com/"}, "scheme")
        bad({"url": "e.example.com/hook"}, "scheme")
        bad({"url": "https://e.example.com/" + "a" * 500})
        bad({"events": None}, "Webhook events must be a non-empty list")
        bad({"events": []}, "Webhook events must be a non-empty list")
        bad({"events": [{"entity": "REGISTERED_MODEL", "action": "DELETED"}]},
            "Invalid action 'deleted' for entity 'registered_model'. Valid actions are: ['created']")
        bad({"events": [{"entity": "MODEL_VERSION", "action": "UPDATED"}]}, "Invalid action")
        bad({"events": [{"entity": "ENTITY_UNSPECIFIED", "action": "CREATED"}]})
        bad({"events": [{"entity": 0, "action": 1}]})
        bad({"events": [{"entity": "NOPE", "action": "CREATED"}]})
        bad({"events": [{"entity": "MODEL_VERSION"}]})
        bad({"events": ["model_version.created"]})
        bad({"events": "x"})
        bad({"status": "PAUSED"})
        bad({"description": "d" * 1001})
        # Numbers work as enum values; a repeated pair is de-duplicated.
        st, b = self.api("webhooks", dict(ok, events=[{"entity": 2, "action": 1},
                                                      {"entity": "MODEL_VERSION",
                                                       "action": "CREATED"}]))
        self.assertEqual(st, 200, b)
        self.assertEqual(b["webhook"]["events"], [{"entity": "MODEL_VERSION", "action": "CREATED"}])
        wid = b["webhook"]["webhook_id"]
        bad({"name": "-x"}, "Invalid webhook name", method="PATCH", rel=f"webhooks/{wid}")
        bad({"url": "gopher://x"}, "scheme", method="PATCH", rel=f"webhooks/{wid}")
        bad({"events": [{"entity": "PROMPT_TAG", "action": "CREATED"}]}, "Valid actions are",
            method="PATCH", rel=f"webhooks/{wid}")
        for params in [{"max_results": 0}, {"max_results": 1001}]:
            self.assertError(self.api("webhooks", method="GET", params=params), 400,
                             "INVALID_PARAMETER_VALUE", "max_results must be between 1 and 1000.")
        self.assertError(self.api("webhooks", method="GET", params={"page_token": "@@"}), 400,
                         "INVALID_PARAMETER_VALUE")
        self.assertError(self.api("webhooks/nope", method="GET"), 404, "RESOURCE_DOES_NOT_EXIST",
                         "Webhook with ID nope not found.")
        self.assertError(self.api(f"webhooks/{wid}/nope", {}), 404, "ENDPOINT_NOT_FOUND")
        self.assertError(self.api(f"webhooks/{wid}/test", method="GET"), 404, "ENDPOINT_NOT_FOUND")
        # Malformed JSON is a 400, not a crash.
        st, _, data = self.srv.request("POST", "/api/2.0/mlflow/webhooks", body=b"{",
                                       headers={"Content-Type": "application/json"})
        self.assertEqual(st, 400, data)

    def test_https_only_by_default(self):
        srv = TallyServer().start()
        try:
            st, b = srv.api("webhooks", {"name": "h", "url": "http://127.0.0.1:1/",
                                         "events": EVENTS_MV})
            self.assertEqual(st, 400, b)
            self.assertIn("scheme", b["message"])
            st, b = srv.api("webhooks", {"name": "h", "url": "https://127.0.0.1:1/",
                                         "events": EVENTS_MV})
            self.assertEqual(st, 200, b)
        finally:
            srv.stop()
            srv.cleanup()

    def test_bad_setting_is_a_config_error(self):
        env = dict(os.environ, MLFLOW_WEBHOOK_REQUEST_MAX_RETRIES="many")
        p = subprocess.run([tally_binary(), "serve", "--port", "0", "--data",
                            os.path.join(self.srv.data_dir, "unused")],
                           capture_output=True, text=True, env=env, timeout=60)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("MLFLOW_WEBHOOK_REQUEST_MAX_RETRIES", p.stderr)

    def test_test_endpoint(self):
        rcv = Receiver([(200, {}, 0, "received!"), (404, {}, 0, "no such hook")])
        try:
            w = self.create(rcv.url, secret="s3cret", status="DISABLED")
            wid = w["webhook_id"]
            # Synchronous, even for a DISABLED webhook; the first event by default.
            st, b = self.api(f"webhooks/{wid}/test", {})
            self.assertEqual(st, 200, b)
            self.assertEqual(b, {"result": {"success": True, "response_status": 200,
                                            "response_body": "received!"}})
            _, headers, body, _ = rcv.wait(1)[0]
            payload = verify(self, "s3cret", headers, body)
            self.assertEqual(list(payload), ["entity", "action", "timestamp", "data"])
            self.assertEqual((payload["entity"], payload["action"]), ("model_version", "created"))
            self.assertEqual(payload["data"], {
                "name": "example_model", "version": "1", "source": "models:/123",
                "run_id": "abcd1234abcd5678", "tags": {"example_key": "example_value"},
                "description": "An example model version"})
            self.assertRegex(payload["timestamp"],
                             r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?\+00:00$")
            self.assertIn(b'"entity": "model_version", "action": "created"', body)
            # A chosen event, not subscribed to; a 404 answer is a failed result.
            st, b = self.api(f"webhooks/{wid}/test",
                             {"event": {"entity": "PROMPT_ALIAS", "action": "DELETED"}})
            self.assertEqual(b, {"result": {"success": False, "response_status": 404,
                                            "response_body": "no such hook"}})
            payload = json.loads(rcv.wait(2)[1][2])
            self.assertEqual(payload["data"], {"name": "example_prompt", "alias": "example_alias"})
            self.assertError(self.api(f"webhooks/{wid}/test",
                                      {"event": {"entity": "PROMPT", "action": "DELETED"}}),
                             400, "INVALID_PARAMETER_VALUE", "Valid actions are")
        finally:
            rcv.close()
        # No secret: no signature header. Retries on 503 within the call.
        rcv = Receiver([(503, {}, 0, "busy")])
        try:
            wid = self.create(rcv.url)["webhook_id"]
            st, b = self.api(f"webhooks/{wid}/test", {})
            self.assertEqual(b["result"], {"success": True, "response_status": 200,
                                           "response_body": "ok"})
            reqs = rcv.wait(2)
            verify(self, None, reqs[0][1], reqs[0][2])
            self.assertEqual(reqs[0][1]["x-mlflow-delivery-id"], reqs[1][1]["x-mlflow-delivery-id"])
            self.assertEqual(reqs[0][2], reqs[1][2])
        finally:
            rcv.close()
        # Receiver down: a transport error, still HTTP 200.
        wid = self.create(f"http://127.0.0.1:{free_port()}/hook")["webhook_id"]
        st, b = self.api(f"webhooks/{wid}/test", {})
        self.assertEqual(st, 200, b)
        self.assertFalse(b["result"]["success"])
        self.assertTrue(b["result"]["error_message"].startswith("Failed to test webhook: "), b)
        self.assertNotIn("response_status", b["result"])

    def test_queued_delivery_signed_and_logged(self):
        rcv = Receiver([(200, {}, 0, "thanks")])
        try:
            w = self.create(rcv.url, secret="k3y")
            d = self.queue(w["webhook_id"], {"entity": "MODEL_VERSION_TAG", "action": "SET"})
            self.assertEqual(d["state"], "PENDING")
            self.assertEqual(d["event"], "model_version_tag.set")
            self.assertEqual(d["attempts"], 0)
            _, headers, body, _ = rcv.wait(1)[0]
            payload = verify(self, "k3y", headers, body)
            self.assertEqual(headers["x-mlflow-delivery-id"], d["delivery_id"])
            self.assertEqual(headers["x-mlflow-timestamp"], str(d["timestamp"]))
            self.assertEqual(body.decode(), d["payload"])
            self.assertEqual(payload["data"], {"name": "example_model", "version": "1",
                                               "key": "example_key", "value": "example_value"})
            done = self.wait_state(w["webhook_id"], d["delivery_id"])
            self.assertEqual(done["state"], "SUCCEEDED")
            self.assertEqual(done["attempts"], 1)
            self.assertEqual(done["last_response_status"], 200)
            [att] = done["attempt_log"]
            self.assertEqual(att["attempt"], 1)
            self.assertEqual(att["response_status"], 200)
            self.assertEqual(att["response_snippet"], "thanks")
            self.assertGreaterEqual(att["duration_ms"], 0)
            self.assertNotIn("error", att)
            # The log lists it, newest first, paged.
            d2 = self.queue(w["webhook_id"])
            self.wait_state(w["webhook_id"], d2["delivery_id"])
            b = self.deliveries(w["webhook_id"], max_results=1)
            self.assertEqual([x["delivery_id"] for x in b["deliveries"]], [d2["delivery_id"]])
            b = self.deliveries(w["webhook_id"], max_results=1, page_token=b["next_page_token"])
            self.assertEqual([x["delivery_id"] for x in b["deliveries"]], [d["delivery_id"]])
            self.assertNotIn("next_page_token", b)
            self.assertNotIn("k3y", json.dumps(b))
            # Redelivery: a new delivery of the same event and data.
            st, b = self.api(f"webhooks/{w['webhook_id']}/deliveries/{d['delivery_id']}/redeliver",
                             {})
            self.assertEqual(st, 200, b)
            r = b["delivery"]
            self.assertNotEqual(r["delivery_id"], d["delivery_id"])
            self.assertEqual(r["event"], d["event"])
            self.wait_state(w["webhook_id"], r["delivery_id"])
            payload = json.loads(rcv.wait(3)[2][2])
            self.assertEqual(payload["data"]["key"], "example_key")
            self.assertError(self.api(f"webhooks/{w['webhook_id']}/deliveries/nope", method="GET"),
                             404, "RESOURCE_DOES_NOT_EXIST")
        finally:
            rcv.close()

    def test_retries_then_success(self):
        rcv = Receiver([(500, {}, 0, "e1"), (502, {}, 0, "e2"), (504, {}, 0, "e3")])
        try:
            w = self.create(rcv.url, secret="s")
            d = self.queue(w["webhook_id"])
            done = self.wait_state(w["webhook_id"], d["delivery_id"])
            self.assertEqual(done["state"], "SUCCEEDED", done)
            self.assertEqual([a["response_status"] for a in done["attempt_log"]],
                             [500, 502, 504, 200])
            self.assertEqual(done["attempt_log"][0]["response_snippet"], "e1")
            reqs = rcv.wait(4)
            # Same id, timestamp and bytes on every retry, each signed.
            self.assertEqual(len({r[1]["x-mlflow-delivery-id"] for r in reqs}), 1)
            self.assertEqual(len({r[1]["x-mlflow-timestamp"] for r in reqs}), 1)
            self.assertEqual(len({r[2] for r in reqs}), 1)
            for r in reqs:
                verify(self, "s", r[1], r[2])
            # Backoff: no wait before the first retry, then base*2, base*4
            # (base 100 ms here), plus jitter.
            gaps = [reqs[i + 1][0] - reqs[i][0] for i in range(3)]
            self.assertGreaterEqual(gaps[1], 0.19, gaps)
            self.assertGreaterEqual(gaps[2], 0.39, gaps)
            self.assertLess(gaps[0], gaps[1], gaps)
        finally:
            rcv.close()

    def test_final_status_and_attempt_bound(self):
        rcv = Receiver([(400, {}, 0, "bad")] + [(503, {}, 0, "down")] * 10)
        try:
            wid = self.create(rcv.url)["webhook_id"]
            d = self.wait_state(wid, self.queue(wid)["delivery_id"])
            self.assertEqual((d["state"], d["attempts"], d["last_response_status"]),
                             ("FAILED", 1, 400))
            # 503 forever: 1 + MLFLOW_WEBHOOK_REQUEST_MAX_RETRIES (3) attempts.
            d = self.wait_state(wid, self.queue(wid)["delivery_id"])
            self.assertEqual((d["state"], d["attempts"]), ("FAILED", 4), d)
            self.assertEqual([a["attempt"] for a in d["attempt_log"]], [1, 2, 3, 4])
            time.sleep(0.5)
            self.assertEqual(len(rcv.requests), 5)
        finally:
            rcv.close()

    def test_retry_after_honoured(self):
        rcv = Receiver([(429, {"Retry-After": "1"}, 0, "slow down"),
                        (503, {"Retry-After": "0"}, 0, "")])
        try:
            wid = self.create(rcv.url)["webhook_id"]
            d = self.wait_state(wid, self.queue(wid)["delivery_id"])
            self.assertEqual(d["state"], "SUCCEEDED", d)
            reqs = rcv.wait(3)
            # The first retry would have no backoff; Retry-After: 1 replaces it.
            self.assertGreaterEqual(reqs[1][0] - reqs[0][0], 0.95)
            self.assertLess(reqs[2][0] - reqs[1][0], 0.9)
        finally:
            rcv.close()

    def test_receiver_down_attempts_logged(self):
        wid = self.create(f"http://127.0.0.1:{free_port()}/hook")["webhook_id"]
        d = self.wait_state(wid, self.queue(wid)["delivery_id"])
        self.assertEqual((d["state"], d["attempts"]), ("FAILED", 4), d)
        for a in d["attempt_log"]:
            self.assertNotIn("response_status", a)
            self.assertIn("connection refused", a["error"])
        self.assertIn("last_error", d)

    def test_changes_apply_to_next_event(self):
        r1, r2 = Receiver(), Receiver()
        try:
            wid = self.create(r1.url, secret="old")["webhook_id"]
            self.wait_state(wid, self.queue(wid)["delivery_id"])
            verify(self, "old", *r1.wait(1)[0][1:3])
            # New URL and secret: the very next delivery uses them.
            st, b = self.api(f"webhooks/{wid}", {"url": r2.url, "secret": "new"}, method="PATCH")
            self.assertEqual(st, 200, b)
            self.wait_state(wid, self.queue(wid)["delivery_id"])
            verify(self, "new", *r2.wait(1)[0][1:3])
            # Disabled: queued rows end FAILED without being sent.
            self.api(f"webhooks/{wid}", {"status": "DISABLED"}, method="PATCH")
            d = self.wait_state(wid, self.queue(wid)["delivery_id"])
            self.assertEqual((d["state"], d["attempts"]), ("FAILED", 0))
            self.assertIn("disabled", d["last_error"])
            time.sleep(0.2)
            self.assertEqual((len(r1.requests), len(r2.requests)), (1, 1))
        finally:
            r1.close()
            r2.close()

    def test_registry_event_end_to_end(self):
        rcv = Receiver()
        try:
            self.create(rcv.url, secret="reg",
                        events=[{"entity": "REGISTERED_MODEL", "action": "CREATED"},
                                {"entity": "MODEL_VERSION", "action": "CREATED"},
                                {"entity": "MODEL_VERSION_ALIAS", "action": "CREATED"}])
            st, b = self.srv.post("/api/2.0/mlflow/registered-models/create",
                                  {"name": "wh-model", "tags": [{"key": "k", "value": "v"}]})
            self.assertEqual(st, 200, b)
            _, headers, body, _ = rcv.wait(1)[0]
            payload = verify(self, "reg", headers, body)
            self.assertEqual((payload["entity"], payload["action"]),
                             ("registered_model", "created"))
            self.assertEqual(payload["data"],
                             {"name": "wh-model", "tags": {"k": "v"}, "description": ""})
            # Fields in the order of mlflow-webhooks.md §5.
            self.assertEqual(list(payload["data"]), ["name", "tags", "description"])
            st, b = self.srv.post("/api/2.0/mlflow/model-versions/create",
                                  {"name": "wh-model", "source": "s3://bucket/model"})
            self.assertEqual(st, 200, b)
            st, b = self.srv.post("/api/2.0/mlflow/registered-models/alias",
                                  {"name": "wh-model", "alias": "prod", "version": "1"})
            self.assertEqual(st, 200, b)
            got = [verify(self, "reg", h, bd) for _, h, bd, _ in rcv.wait(3)[1:]]
            got.sort(key=lambda p: p["entity"])
            self.assertEqual([(p["entity"], p["action"]) for p in got],
                             [("model_version", "created"), ("model_version_alias", "created")])
            self.assertEqual(got[0]["data"], {"name": "wh-model", "version": "1",
                                              "source": "s3://bucket/model", "run_id": None,
                                              "tags": {}, "description": None})
            self.assertEqual(got[1]["data"], {"name": "wh-model", "alias": "prod",
                                              "version": "1"})
        finally:
            rcv.close()

    def test_api_latency_unaffected_by_slow_receiver(self):
        rcv = Receiver([(200, {}, 1.5, "slow")] * 20)
        try:
            wid = self.create(rcv.url)["webhook_id"]

            def timed(fn):
                t = time.monotonic()
                fn()
                return time.monotonic() - t

            base = sorted(timed(lambda: self.api("webhooks", method="GET")) for _ in range(5))[2]
            queue_times = [timed(lambda: self.queue(wid)) for _ in range(10)]
            rcv.wait(3)  # every worker is now stuck on the sleeping receiver
            busy = [timed(lambda: self.api("webhooks", method="GET")) for _ in range(5)]
            busy += [timed(lambda: self.queue(wid)) for _ in range(3)]
            # Handlers only enqueue: nothing near the receiver's 1.5 s.
            self.assertLess(max(queue_times), 0.5, queue_times)
            self.assertLess(max(busy), 0.5, (base, busy))
        finally:
            rcv.close()


# ---------------------------------------------------------------------------
# Durability across restarts
# ---------------------------------------------------------------------------


class TestDurability(Base):
    def start(self, data_dir=None, port_env=None):
        env = dict(FAST_ENV)
        env["MLFLOW_WEBHOOK_DELIVERY_MAX_WORKERS"] = "1"
        env["MLFLOW_WEBHOOK_REQUEST_TIMEOUT"] = "30"
        self.srv = TallyServer(env=env, data_dir=data_dir).start()
        return self.srv

    def test_crash_with_pending_deliveries(self):
        port = free_port()
        slow = Receiver([(200, {}, 30, "never seen")], port=port)
        first = self.start()
        try:
            wid = self.create(slow.url, secret="dur")["webhook_id"]
            ids = [self.queue(wid)["delivery_id"] for _ in range(5)]
            slow.wait(1)  # the one worker is inside attempt 1 of the first delivery
            first.stop(expect_code=None, sig=signal.SIGKILL)
            slow.close()
            # Restart on the same data with a healthy receiver on the same URL.
            rcv = Receiver(port=port)
            try:
                self.start(data_dir=first.data_dir)
                for did in ids:
                    d = self.wait_state(wid, did)
                    self.assertEqual(d["state"], "SUCCEEDED", d)
                reqs = rcv.wait(5)
                got = {r[1]["x-mlflow-delivery-id"] for r in reqs}
                self.assertEqual(got, set(ids))
                for r in reqs:
                    verify(self, "dur", r[1], r[2])
                self.srv.stop()
            finally:
                rcv.close()
        finally:
            first.cleanup()

    def test_secrets_sealed_at_rest(self):
        secret = "a-very-distinct-secret-1234"
        port = free_port()
        first = self.start()
        try:
            wid = self.create(f"http://127.0.0.1:{port}/hook", secret=secret)["webhook_id"]
            key = os.path.join(first.data_dir, "webhook-secret.key")
            self.assertEqual(os.stat(key).st_mode & 0o777, 0o600)
            first.stop()
            # Neither the database nor its WAL holds the secret in clear.
            for name in os.listdir(first.data_dir):
                if name.startswith("meta.db"):
                    with open(os.path.join(first.data_dir, name), "rb") as f:
                        self.assertNotIn(secret.encode(), f.read(), name)
            db = sqlite3.connect(os.path.join(first.data_dir, "meta.db"))
            (stored,) = db.execute("SELECT secret FROM webhooks WHERE webhook_id = ?",
                                   (wid,)).fetchone()
            db.close()
            self.assertTrue(stored.startswith("tally-sealed:v1:"), stored)
            # Restarted with its key: deliveries are signed with the secret.
            rcv = Receiver(port=port)
            try:
                self.start(data_dir=first.data_dir)
                self.queue(wid)
                (req,) = rcv.wait(1)
                verify(self, secret, req[1], req[2])
                self.srv.stop()
            finally:
                rcv.close()
            # Without the key the server refuses to start (a new key could not
            # open the sealed secrets) and makes no new key.
            os.rename(key, key + ".kept")
            p = subprocess.run([tally_binary(), "serve", "--port", "0", "--data",
                                first.data_dir], capture_output=True, text=True, timeout=60)
            self.assertNotEqual(p.returncode, 0, p.stderr)
            self.assertIn("webhook-secret.key", p.stderr)
            self.assertIn("missing", p.stderr)
            self.assertFalse(os.path.exists(key))
            os.rename(key + ".kept", key)
        finally:
            first.cleanup()

    def test_graceful_stop_leaves_in_flight_pending(self):
        port = free_port()
        slow = Receiver([(200, {}, 30, "never seen")], port=port)
        first = self.start()
        try:
            wid = self.create(slow.url)["webhook_id"]
            did = self.queue(wid)["delivery_id"]
            slow.wait(1)
            t = time.monotonic()
            first.stop()  # exit 0, without waiting for the 30 s receiver
            self.assertLess(time.monotonic() - t, 10)
            slow.close()
            rcv = Receiver(port=port)
            try:
                self.start(data_dir=first.data_dir)
                d = self.wait_state(wid, did)
                self.assertEqual(d["state"], "SUCCEEDED", d)
                # The aborted attempt was not counted.
                self.assertEqual(d["attempts"], 1, d)
                self.srv.stop()
            finally:
                rcv.close()
        finally:
            first.cleanup()

    def test_shutdown_aborts_a_test_delivery(self):
        slow = Receiver([(200, {}, 30, "never seen")])
        srv = self.start()
        try:
            wid = self.create(slow.url)["webhook_id"]
            out = {}

            def call():
                try:
                    out["resp"] = srv.api(f"webhooks/{wid}/test", {})
                except OSError as e:
                    out["error"] = e

            t = threading.Thread(target=call)
            t.start()
            slow.wait(1)
            t0 = time.monotonic()
            srv.stop()  # exit 0, not held by the 30 s receiver
            self.assertLess(time.monotonic() - t0, 10)
            t.join(30)
            self.assertFalse(t.is_alive())
            # The drain let the aborted call answer.
            self.assertIn("resp", out, out)
            st, b = out["resp"]
            self.assertEqual(st, 200, b)
            self.assertFalse(b["result"]["success"])
            self.assertIn("stopping", b["result"]["error_message"])
        finally:
            slow.close()
            srv.cleanup()


# ---------------------------------------------------------------------------
# `tally webhooks`
# ---------------------------------------------------------------------------


class TestCli(Base):
    @classmethod
    def setUpClass(cls):
        cls.srv = TallyServer(env=FAST_ENV).start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.srv.stop()
        finally:
            cls.srv.cleanup()

    def tally(self, *args, env=None):
        e = dict(os.environ)
        e.pop("MLFLOW_TRACKING_URI", None)
        e.update(env or {})
        p = subprocess.run([tally_binary(), "webhooks", *args], capture_output=True, text=True,
                           env=e, timeout=60)
        return p.returncode, p.stdout, p.stderr

    def test_cli(self):
        rcv = Receiver([(500, {}, 0, "oops")])
        try:
            w = self.create(rcv.url, name="cli-hook", secret="zz")
            wid = w["webhook_id"]
            d = self.wait_state(wid, self.queue(wid)["delivery_id"])
            url = self.srv.base_url
            code, out, err = self.tally("list", "--url", url)
            self.assertEqual(code, 0, err)
            self.assertIn(wid, out)
            self.assertIn("cli-hook", out)
            self.assertNotIn("zz", out)
            code, out, err = self.tally("list", env={"MLFLOW_TRACKING_URI": url})
            self.assertEqual(code, 0, err)
            self.assertIn(wid, out)
            code, out, err = self.tally("deliveries", wid, "--url", url)
            self.assertEqual(code, 0, err)
            self.assertIn(d["delivery_id"], out)
            self.assertIn("SUCCEEDED", out)
            self.assertIn("500", out)
            code, out, err = self.tally("deliveries", wid, "--url", url, "--json")
            self.assertEqual(code, 0, err)
            self.assertEqual(json.loads(out)["deliveries"][0]["delivery_id"], d["delivery_id"])
            code, out, err = self.tally("redeliver", wid, d["delivery_id"], "--url", url)
            self.assertEqual(code, 0, err)
            rcv.wait(3)
            code, out, err = self.tally("test", wid, "--url", url)
            self.assertEqual(code, 0, err)
            self.assertIn("success: yes", out)
            self.assertIn("response status: 200", out)
            code, out, err = self.tally("list", "--url", url, "--json", "--max-results", "1")
            self.assertEqual(code, 0, err)
            self.assertEqual(len(json.loads(out)["webhooks"]), 1)
            code, out, err = self.tally("deliveries", "nope", "--url", url)
            self.assertEqual(code, 1)
            self.assertIn("not found", err)
            code, out, err = self.tally("list")
            self.assertEqual(code, 2)
            code, out, err = self.tally("frobnicate", "--url", url)
            self.assertEqual(code, 2)
            code, out, err = self.tally("--help")
            self.assertEqual(code, 0)
            self.assertIn("deliveries", out)
            code, out, err = self.tally("list", "--url", f"http://127.0.0.1:{free_port()}")
            self.assertEqual(code, 1)
        finally:
            rcv.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
