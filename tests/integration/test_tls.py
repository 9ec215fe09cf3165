"""test_tls.py — HTTPS served by `tally serve --tls-cert --tls-key` itself
(libmicrohttpd + GnuTLS): a self-signed certificate made here with Debian's
`openssl`, a verified TLS connection carrying an authenticated MLflow call,
plain HTTP refused on the TLS port, and clear startup errors for missing or
bad files.

Python stdlib only; run directly (TALLY_BIN_DIR=<build dir>) or through CTest.
"""

import base64
import http.client
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from auth_harness import ADMIN, basic  # noqa: E402
from server_harness import tally_binary  # noqa: E402
from test_http import mhd_threads  # noqa: E402


def make_cert(d):
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


class Tls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not shutil.which("openssl"):
            raise unittest.SkipTest("openssl is not installed (tools/install-deps.sh installs it)")
        base = os.environ.get("TALLY_TEST_TMP") or None
        cls.tmp = tempfile.TemporaryDirectory(prefix="tally-tls-", dir=base)
        cls.cert, cls.key = make_cert(cls.tmp.name)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def serve(self, args):
        data = tempfile.mkdtemp(dir=self.tmp.name)
        log = open(os.path.join(data, "server.log"), "wb")
        p = subprocess.Popen([tally_binary(), "serve", "--port", "0", "--data", data + "/d"] + args,
                             stdout=subprocess.PIPE, stderr=log)
        log.close()
        return p, data

    def test_https_round_trip_with_auth(self):
        p, data = self.serve(["--tls-cert", self.cert, "--tls-key", self.key, "--auth",
                              "--admin-password", ADMIN[1], "--threads", "3"])
        try:
            line = p.stdout.readline().decode()
            self.assertIn("tally listening on https://", line)
            want = ["MHD-worker"] * 3
            self.assertEqual(mhd_threads(p.pid, want), want)  # TLS and the pool together
            port = int(line.split("https://", 1)[1].split()[0].rsplit(":", 1)[1])
            ctx = ssl.create_default_context(cafile=self.cert)
            deadline = time.monotonic() + 20
            while True:
                try:
                    c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
                    c.request("GET", "/health")
                    r = c.getresponse()
                    r.read()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            self.assertEqual(r.status, 200)
            c.request("POST", "/api/2.0/mlflow/experiments/create", body=json.dumps({"name": "tls"}),
                      headers={"Content-Type": "application/json", "Authorization": basic(*ADMIN)})
            r = c.getresponse()
            body = json.loads(r.read())
            self.assertEqual(r.status, 200, body)
            self.assertIn("experiment_id", body)
            c.request("GET", "/api/2.0/mlflow/experiments/search")
            r = c.getresponse()
            r.read()
            self.assertEqual(r.status, 401)
            c.close()
            # The certificate is checked: a client trusting nothing else fails.
            with self.assertRaises(ssl.SSLError):
                c2 = http.client.HTTPSConnection("127.0.0.1", port,
                                                 context=ssl.create_default_context(), timeout=10)
                c2.request("GET", "/health")
                c2.getresponse()
            # Plain HTTP on the TLS port gets no HTTP answer.
            c3 = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            with self.assertRaises((http.client.HTTPException, OSError)):
                c3.request("GET", "/health")
                c3.getresponse()
            c3.close()
        finally:
            p.terminate()
            self.assertEqual(p.wait(timeout=30), 0)
            p.stdout.close()

    def test_bad_files_refused_at_start(self):
        bogus = os.path.join(self.tmp.name, "bogus.pem")
        with open(bogus, "w") as f:
            f.write("not a certificate\n")
        for args, text in [(["--tls-cert", self.cert], "--tls-key"),
                           (["--tls-cert", self.cert, "--tls-key", "/nonexistent/key.pem"], "cannot read"),
                           (["--tls-cert", bogus, "--tls-key", self.key], "not a PEM file"),
                           (["--tls-cert", self.key, "--tls-key", self.key], "")]:
            p, data = self.serve(args)
            out, _ = p.communicate(timeout=30)
            self.assertEqual(p.returncode, 1, args)
            with open(os.path.join(data, "server.log")) as f:
                self.assertIn(text, f.read())


if __name__ == "__main__":
    unittest.main(verbosity=2)
