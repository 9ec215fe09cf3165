"""test_overload.py — the HTTP layer under overload and hostile clients
(issue 8): the request-body budget answers 429 with Retry-After before
buffering a body that does not fit (Content-Length or chunked) and frees its
bytes when a request ends; a slowloris crowd (many connections trickling
bodies from one address) is capped per address and cut off by the body
timeout while a normal client keeps being served quickly; idle connections
are closed by the connection timeout.

Slow clients connect from 127.0.0.2 (all of 127/8 is loopback on Linux), the
normal client from 127.0.0.1, so the per-address limit applies to the crowd
only."""

import json
import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_harness import TallyServer  # noqa: E402

LOG_BATCH = "/api/2.0/mlflow/runs/log-batch"


def raw_connect(srv, source="127.0.0.1", timeout=5.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((source, 0))
    s.connect((srv.host, srv.port))
    return s


def post_headers(path, length=None, chunked=False):
    h = f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
    if chunked:
        h += "Transfer-Encoding: chunked\r\n"
    else:
        h += f"Content-Length: {length}\r\n"
    return (h + "\r\n").encode()


def read_response(s):
    """Reads one HTTP response (status, lower-case headers, body) or None if
    the peer closed first."""
    data = b""
    while b"\r\n\r\n" not in data:
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, socket.timeout):
            return None
        if not chunk:
            return None
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for ln in lines[1:]:
        k, v = ln.split(":", 1)
        headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0"))
    while len(body) < n:
        chunk = s.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, headers, body


def closed_by_peer(s, wait):
    """Whether the server closes s within wait seconds."""
    s.settimeout(wait)
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


class Overload(unittest.TestCase):
    def make_run(self, srv):
        st, body = srv.api("experiments/create", {"name": f"e{time.monotonic_ns()}"})
        self.assertEqual(st, 200, body)
        st, body = srv.api("runs/create", {"experiment_id": body["experiment_id"]})
        self.assertEqual(st, 200, body)
        return body["run"]["info"]["run_id"]

    def test_body_budget_admission(self):
        with TallyServer(args=["--request-budget", "1M", "--max-body-bytes", "700K"]) as srv:
            run_id = self.make_run(srv)
            big = 700 * 1024
            # A holds 700K of the 1M budget: it announced it and sends slowly.
            a = raw_connect(srv)
            a.sendall(post_headers(LOG_BATCH, big) + b'{"run_id": "')
            time.sleep(0.3)
            # B announces another 700K: refused at once, before any body.
            b = raw_connect(srv)
            b.sendall(post_headers(LOG_BATCH, big))
            r = read_response(b)
            self.assertIsNotNone(r, "no answer to an over-budget request")
            status, headers, body = r
            self.assertEqual(status, 429, body)
            self.assertIn("retry-after", headers)
            self.assertEqual(json.loads(body)["error_code"], "REQUEST_LIMIT_EXCEEDED")
            b.close()
            # A chunked body that grows past what is left: 429 at its end.
            c = raw_connect(srv)
            c.sendall(post_headers(LOG_BATCH, chunked=True))
            piece = b"x" * 65536
            for _ in range(8):  # 512K > the 324K left
                c.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
            c.sendall(b"0\r\n\r\n")
            r = read_response(c)
            self.assertIsNotNone(r)
            self.assertEqual(r[0], 429, r[2])
            self.assertIn("retry-after", r[1])
            c.close()
            # Small requests still fit and are served.
            for i in range(20):
                st, body = srv.api("runs/log-metric", {"run_id": run_id, "key": "m", "value": i,
                                                       "timestamp": 1, "step": i})
                self.assertEqual(st, 200, body)
            # A leaves: its reservation returns, and a big body fits again.
            a.close()
            time.sleep(0.3)
            metrics = [{"key": "big", "value": 1.0, "timestamp": 1, "step": i} for i in range(900)]
            st, body = srv.api("runs/log-batch", {"run_id": run_id, "metrics": metrics})
            self.assertEqual(st, 200, body)
            text = json.dumps({"run_id": run_id, "metrics": metrics})
            self.assertGreater(len(text), 1024 * 40)

    def test_slowloris_crowd(self):
        args = ["--max-connections", "300", "--max-connections-per-ip", "20",
                "--body-timeout", "3", "--timeout", "20", "--threads", "2"]
        with TallyServer(args=args) as srv:
            run_id = self.make_run(srv)
            crowd = []
            for _ in range(100):
                try:
                    s = raw_connect(srv, source="127.0.0.2")
                    s.sendall(post_headers(LOG_BATCH, 4096) + b"{")
                    crowd.append(s)
                except OSError:
                    pass
            time.sleep(1.0)
            # Over the per-address limit, the server closed them at once.
            held = []
            for s in crowd:
                if closed_by_peer(s, 0.01):
                    s.close()
                else:
                    held.append(s)
            crowd = held
            self.assertGreaterEqual(len(crowd), 1)
            self.assertLessEqual(len(crowd), 20)
            # The normal client is served quickly while the crowd trickles.
            lat = []
            t_end = time.monotonic() + 4.0
            i = 0
            while time.monotonic() < t_end:
                for s in list(crowd):
                    try:
                        s.send(b" ")
                    except OSError:
                        crowd.remove(s)  # cut off by the body timeout
                        s.close()
                t0 = time.monotonic()
                st, body = srv.api("runs/log-metric", {"run_id": run_id, "key": "m", "value": i,
                                                       "timestamp": 1, "step": i})
                lat.append(time.monotonic() - t0)
                self.assertEqual(st, 200, body)
                i += 1
                time.sleep(0.05)
            lat.sort()
            p99 = lat[int(len(lat) * 0.99) - 1] if len(lat) >= 100 else lat[-1]
            self.assertGreater(len(lat), 20)
            self.assertLess(p99, 1.0, f"normal client slowed down: p99 {p99:.3f}s")
            # The body timeout (3 s) cut off every one still trickling.
            alive = [s for s in crowd if not closed_by_peer(s, 0.5)]
            self.assertEqual(alive, [], "trickling connections outlived the body timeout")
            for s in crowd:
                s.close()
            st, body = srv.api("runs/get", method="GET", params={"run_id": run_id})
            self.assertEqual(st, 200, body)

    def test_idle_connection_closed(self):
        with TallyServer(args=["--timeout", "2"]) as srv:
            s = raw_connect(srv)
            t0 = time.monotonic()
            self.assertTrue(closed_by_peer(s, 6.0), "idle connection was not closed")
            self.assertLess(time.monotonic() - t0, 5.0)
            s.close()
            st, _ = srv.get("/health")
            self.assertEqual(st, 200)


if __name__ == "__main__":
    unittest.main(verbosity=2)
