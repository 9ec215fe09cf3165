"""_rest.py — HTTP to a Tally (or MLflow) tracking server: the tracking URI,
credentials, one keep-alive connection per Connection object, retries.

Environment, as MLflow reads it: MLFLOW_TRACKING_URI (http:// or https://;
default http://127.0.0.1:5000, where `tally serve` listens by default),
MLFLOW_TRACKING_USERNAME + MLFLOW_TRACKING_PASSWORD (HTTP Basic),
MLFLOW_TRACKING_TOKEN (Bearer), MLFLOW_TRACKING_INSECURE_TLS=true (skip
certificate checks), MLFLOW_TRACKING_SERVER_CERT_PATH (a CA bundle).

Retry rule (shared by the REST calls and the metric sender): connection
errors and statuses 429, 500, 502, 503, 504 are retried with exponential
backoff (base 0.1 s, doubling, capped at 10 s, plus up to 25 % jitter);
a Retry-After header replaces the computed wait. Any other status is final
and raises TallyError with the server's error_code and message.

Invariants:
  (1) A Connection is used by one thread at a time (http.client is not
      thread-safe); the logger's sender thread owns its own.
  (2) A request that fails by connection error is re-sent on a fresh
      connection; the server's writes are idempotent for the requests this
      client repeats (log-batch and ingest collapse exact duplicates).
"""

import base64
import http.client
import json
import os
import random
import ssl
import time
import urllib.parse

RETRY_STATUSES = frozenset((429, 500, 502, 503, 504))
DEFAULT_URI = "http://127.0.0.1:5000"


class TallyError(Exception):
    """An error answered by the server (or the last one before giving up)."""

    def __init__(self, message, error_code=None, status=None):
        super().__init__(message)
        self.error_code = error_code
        self.status = status


def tracking_uri(uri=None):
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI
    parts = urllib.parse.urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"tracking URI {uri!r} is not an http(s) server address; the Tally client "
            "logs to a server (set MLFLOW_TRACKING_URI=http://host:port)")
    return uri.rstrip("/")


def backoff_delay(attempt, retry_after=None):
    """Seconds to wait before retry number attempt (1, 2, ...)."""
    if retry_after is not None:
        return retry_after
    base = min(10.0, 0.1 * (2 ** (attempt - 1)))
    return base * (1.0 + 0.25 * random.random())


def _parse_retry_after(value):
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: fall back to the computed backoff


class Connection:
    def __init__(self, uri=None, timeout=60.0):
        self.uri = tracking_uri(uri)
        parts = urllib.parse.urlsplit(self.uri)
        self.https = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.https else 80)
        self.prefix = parts.path.rstrip("/")
        self.timeout = timeout
        self.headers = {}
        user = os.environ.get("MLFLOW_TRACKING_USERNAME")
        password = os.environ.get("MLFLOW_TRACKING_PASSWORD")
        token = os.environ.get("MLFLOW_TRACKING_TOKEN")
        if user is not None and password is not None:
            cred = base64.b64encode(f"{user}:{password}".encode()).decode()
            self.headers["Authorization"] = "Basic " + cred
        elif token:
            self.headers["Authorization"] = "Bearer " + token
        self._ssl = None
        if self.https:
            if os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true":
                self._ssl = ssl._create_unverified_context()
            else:
                cafile = os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH") or None
                self._ssl = ssl.create_default_context(cafile=cafile)
        self._conn = None

    def close(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connect(self):
        if self._conn is None:
            if self.https:
                self._conn = http.client.HTTPSConnection(self.host, self.port,
                                                         timeout=self.timeout, context=self._ssl)
            else:
                self._conn = http.client.HTTPConnection(self.host, self.port,
                                                        timeout=self.timeout)
        return self._conn

    def send_once(self, method, path, body, content_type):
        """One attempt. Returns (status, headers, body bytes); raises OSError
        or http.client.HTTPException on transport failure."""
        headers = dict(self.headers)
        if body is not None:
            headers["Content-Type"] = content_type
        conn = self._connect()
        try:
            conn.request(method, self.prefix + path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        if resp.getheader("Connection", "").lower() == "close":
            self.close()
        return resp.status, resp, data

    def request(self, method, path, body=None, content_type="application/json",
                max_attempts=6, stop=None):
        """Sends with the retry rule. stop: optional callable; when it returns
        True no further retry is made. Returns (status, body bytes) of a
        final answer, raising TallyError for a non-2xx final status."""
        attempt = 0
        while True:
            attempt += 1
            retry_after = None
            try:
                status, resp, data = self.send_once(method, path, body, content_type)
                if status < 300:
                    return status, data
                if status not in RETRY_STATUSES:
                    raise _error_from(status, data)
                retry_after = _parse_retry_after(resp.getheader("Retry-After"))
                last = _error_from(status, data)
            except (OSError, http.client.HTTPException) as e:
                last = TallyError(f"cannot reach the tracking server at {self.uri}: {e}")
            if attempt >= max_attempts or (stop is not None and stop()):
                raise last
            time.sleep(backoff_delay(attempt, retry_after))

    def call(self, endpoint, payload, method="POST"):
        """An MLflow JSON endpoint ("mlflow/runs/create") -> decoded JSON."""
        path = "/api/2.0/" + endpoint
        if method == "GET":
            if payload:
                path += "?" + urllib.parse.urlencode(payload, doseq=True)
            _, data = self.request("GET", path)
        else:
            _, data = self.request(method, path, json.dumps(payload).encode())
        return json.loads(data) if data else {}


def _error_from(status, data):
    try:
        obj = json.loads(data)
        code, msg = obj.get("error_code"), obj.get("message")
    except (ValueError, AttributeError):
        code, msg = None, None
    if not msg:
        msg = data[:200].decode("utf-8", "replace") or f"HTTP {status}"
    return TallyError(f"{code or 'HTTP ' + str(status)}: {msg}", error_code=code, status=status)
