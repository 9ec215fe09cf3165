"""test_api_ui.py — the server additions made for the web UI, over real HTTP:

* tally/run-summaries (server/api_run_summaries.c): latest/min/max/count per
  run and key, key selection, unknown runs, parameter errors;
* tally/query format=binary32 (server/native_compact.c): layout, exact x,
  float32 y, relative time, refusals (buckets, unknown format);
* the embedded UI (server/ui_static.c): app paths answer index.html, assets
  carry ETag / Cache-Control / precompressed encodings, 304 on If-None-Match,
  HEAD, and unknown paths still answer 404 ENDPOINT_NOT_FOUND JSON.
"""

import json
import os
import re
import struct
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_harness import TallyServer  # noqa: E402

SRV = None


def setUpModule():
    global SRV
    SRV = TallyServer().start()


def tearDownModule():
    SRV.stop()
    SRV.cleanup()


def new_run():
    status, body = SRV.api("experiments/create", {"name": f"ui-{os.urandom(4).hex()}"})
    assert status == 200, body
    status, body = SRV.api("runs/create", {"experiment_id": body["experiment_id"]})
    assert status == 200, body
    return body["run"]["info"]["run_id"]


def log(run_id, key, points):
    metrics = [{"key": key, "value": v, "timestamp": ts, "step": s} for s, ts, v in points]
    status, body = SRV.api("runs/log-batch", {"run_id": run_id, "metrics": metrics})
    assert status == 200, body


def decode_binary32(data):
    assert data[:4] == b"TLYQ"
    version, _, method, axis, n, width = struct.unpack_from("<BBBBII", data, 4)
    assert version == 2
    off, series = 16, []
    for _ in range(n):
        cnt, zero, n_source, x_lo, x_hi = struct.unpack_from("<IIQqq", data, off)
        assert zero == 0
        off += 32
        dx = struct.unpack_from(f"<{cnt}I", data, off)
        off += 4 * cnt
        y = struct.unpack_from(f"<{cnt}f", data, off)
        off += 4 * cnt
        series.append({"n_source": n_source, "x_lo": x_lo, "x_hi": x_hi,
                       "x": [x_lo + d for d in dx], "y": list(y)})
    assert off == len(data), (off, len(data))
    return {"method": method, "axis": axis, "width": width, "series": series}


class RunSummaries(unittest.TestCase):
    def test_summaries(self):
        a, b = new_run(), new_run()
        log(a, "loss", [(0, 1000, 3.0), (1, 1001, "NaN"), (2, 1002, 0.5), (3, 1003, 1.25)])
        log(a, "acc", [(0, 1000, 0.1)])
        log(b, "loss", [(5, 2000, 7.0)])
        st, body = SRV.post("/api/2.0/tally/run-summaries", {"run_ids": [a, b, "0" * 32]})
        self.assertEqual(st, 200, body)
        runs = body["runs"]
        self.assertEqual([r["run_id"] for r in runs], [a, b, "0" * 32])
        ma = {m["key"]: m for m in runs[0]["metrics"]}
        self.assertEqual(set(ma), {"loss", "acc"})
        self.assertEqual((ma["loss"]["latest"], ma["loss"]["step"], ma["loss"]["timestamp"]),
                         (1.25, 3, 1003))
        self.assertEqual((ma["loss"]["min"], ma["loss"]["max"], ma["loss"]["count"]), (0.5, 3.0, 4))
        self.assertEqual(runs[1]["metrics"][0]["latest"], 7.0)
        self.assertEqual(runs[2]["metrics"], [])
        # keys select; GET with repeated query keys works the same
        st, body = SRV.get("/ajax-api/2.0/tally/run-summaries", {"run_ids": [a], "keys": ["acc", "nope"]})
        self.assertEqual(st, 200, body)
        self.assertEqual([m["key"] for m in body["runs"][0]["metrics"]], ["acc"])

    def test_all_nan_series_has_nan_min_max(self):
        a = new_run()
        log(a, "x", [(0, 1, "NaN"), (1, 2, "NaN")])
        st, body = SRV.post("/api/2.0/tally/run-summaries", {"run_ids": [a]})
        self.assertEqual(st, 200, body)
        m = body["runs"][0]["metrics"][0]
        self.assertEqual((m["min"], m["max"], m["count"]), ("NaN", "NaN", 2))

    def test_errors(self):
        for payload, pattern in [({}, "run_ids"), ({"run_ids": []}, "run_ids"),
                                 ({"run_ids": ["a"] * 1001}, "at most 1000 runs"),
                                 ({"run_ids": ["a"], "keys": ["k"] * 1001}, "at most 1000 keys"),
                                 ({"run_ids": [{"x": 1}]}, "run_ids")]:
            st, body = SRV.post("/api/2.0/tally/run-summaries", payload)
            self.assertEqual(st, 400, body)
            self.assertEqual(body["error_code"], "INVALID_PARAMETER_VALUE")
            self.assertRegex(body["message"], pattern)


class QueryBinary32(unittest.TestCase):
    def test_layout_and_values(self):
        a, b = new_run(), new_run()
        t0 = 1_700_000_000_000
        pts = [(s, t0 + 10 * s, 1.0 / (1 + s) + (0.1 if s % 3 == 0 else 0)) for s in range(5000)]
        log(a, "loss", pts[:1000])
        log(a, "loss", pts[1000:2000])
        log(a, "loss", pts[2000:3000])
        log(a, "loss", pts[3000:4000])
        log(a, "loss", pts[4000:])
        st, _, data = SRV.request("POST", "/api/2.0/tally/query",
                                  body='{"run_ids": ["%s", "%s"], "key": "loss", "width": 100, '
                                       '"format": "binary32"}' % (a, b),
                                  headers={"Content-Type": "application/json"})
        self.assertEqual(st, 200, data[:300])
        got = decode_binary32(data)
        self.assertEqual((got["method"], got["axis"], got["width"]), (0, 0, 100))
        s0, s1 = got["series"]
        self.assertEqual((s0["n_source"], s0["x_lo"], s0["x_hi"]), (5000, 0, 4999))
        self.assertEqual(s1["n_source"], 0)
        self.assertEqual(s1["x"], [])
        # the same points as format=json, x exact, y rounded to float32
        st, js = SRV.post("/api/2.0/tally/query", {"run_ids": [a], "key": "loss", "width": 100})
        self.assertEqual(st, 200, js)
        ref = js["series"][0]
        self.assertEqual(s0["x"], ref["x"])
        for y32, y64 in zip(s0["y"], ref["y"]):
            self.assertEqual(y32, struct.unpack("<f", struct.pack("<f", y64))[0])
        self.assertLessEqual(len(s0["x"]), 4 * 100)
        # a zoomed range, time axes: x stays exact (offsets from x_lo)
        for axis, lo, hi in [("step", 1000, 1099), ("time", t0 + 20000, t0 + 20990),
                             ("relative", 0, 49990)]:
            st, _, data = SRV.request(
                "GET", f"/api/2.0/tally/query?run_ids={a}&key=loss&width=50&format=binary32"
                       f"&x_axis={axis}&x_lo={lo}&x_hi={hi}")
            self.assertEqual(st, 200, data[:300])
            st2, js = SRV.get("/api/2.0/tally/query", {"run_ids": a, "key": "loss", "width": 50,
                                                       "x_axis": axis, "x_lo": lo, "x_hi": hi})
            self.assertEqual(decode_binary32(data)["series"][0]["x"], js["series"][0]["x"], axis)

    def test_refusals(self):
        a = new_run()
        log(a, "loss", [(0, 1, 1.0)])
        for extra, pattern in [("&method=buckets", "not buckets"), ("&format=binary16", "binary32")]:
            fmt = "" if "format" in extra else "&format=binary32"
            st, _, data = SRV.request("GET", f"/api/2.0/tally/query?run_ids={a}&key=loss{fmt}{extra}")
            self.assertEqual(st, 400, data)
            self.assertIn(b"INVALID_PARAMETER_VALUE", data)
            self.assertRegex(data.decode(), pattern)

    def test_series_beyond_u32_offsets(self):
        # Steps more than 2^32 apart cannot be u32 offsets from x_lo: the whole
        # answer is refused, naming the first such series (by request order,
        # whichever worker encoded it), and format=binary serves it.
        fits, wide, wide2 = new_run(), new_run(), new_run()
        log(fits, "loss", [(0, 1, 1.0), (1, 2, 2.0)])
        log(wide, "loss", [(0, 1, 1.0), (2**33, 2, 2.0)])
        log(wide2, "loss", [(5, 1, 1.0), (5 + 2**32, 2, 2.0)])
        runs = [fits, fits, wide2, wide]
        body = {"run_ids": runs, "key": "loss", "width": 10}
        st, _, data = SRV.request("POST", "/api/2.0/tally/query",
                                  body=json.dumps(dict(body, format="binary32")),
                                  headers={"Content-Type": "application/json"})
        self.assertEqual(st, 400, data)
        err = json.loads(data)
        self.assertEqual(err["error_code"], "INVALID_PARAMETER_VALUE")
        self.assertIn("(series 2); use format binary", err["message"])
        st, js = SRV.post("/api/2.0/tally/query", body)
        self.assertEqual(st, 200, js)
        self.assertEqual([s["x"] for s in js["series"]],
                         [[0, 1], [0, 1], [5, 5 + 2**32], [0, 2**33]])
        # steps exactly 2^32 - 1 apart still fit
        edge = new_run()
        log(edge, "loss", [(7, 1, 1.0), (7 + 2**32 - 1, 2, 2.0)])
        st, _, data = SRV.request("POST", "/api/2.0/tally/query",
                                  body=json.dumps({"run_ids": [edge, fits], "key": "loss",
                                                   "format": "binary32"}),
                                  headers={"Content-Type": "application/json"})
        self.assertEqual(st, 200, data[:300])
        self.assertEqual([s["x"] for s in decode_binary32(data)["series"]],
                         [[7, 7 + 2**32 - 1], [0, 1]])


class StaticUI(unittest.TestCase):
    def test_pages_and_assets(self):
        for path in ["/", "/experiments", "/experiments/12?filter=x", "/runs/abc", "/compare?runs=a",
                     "/models", "/models/m%2Fx"]:
            st, h, data = SRV.request("GET", path)
            self.assertEqual(st, 200, path)
            self.assertTrue(h["content-type"].startswith("text/html"), path)
            self.assertIn(b'<div id="app">', data)
            self.assertEqual(h["cache-control"], "no-cache")
        st, h, html = SRV.request("GET", "/")
        etag = h["etag"]
        st, h2, body = SRV.request("GET", "/", headers={"If-None-Match": etag})
        self.assertEqual((st, body), (304, b""))
        st, h3, body = SRV.request("HEAD", "/")
        self.assertEqual((st, body), (200, b""))
        js = re.search(rb'src="(/assets/[^"]+\.js)"', html).group(1).decode()
        css = re.search(rb'href="(/assets/[^"]+\.css)"', html).group(1).decode()
        st, h, raw = SRV.request("GET", js)
        self.assertEqual(st, 200)
        self.assertTrue(h["content-type"].startswith("text/javascript"))
        self.assertIn("immutable", h["cache-control"])
        self.assertNotIn("content-encoding", h)
        import gzip
        st, h, gz = SRV.request("GET", js, headers={"Accept-Encoding": "gzip, deflate"})
        self.assertEqual(h.get("content-encoding"), "gzip")
        self.assertEqual(gzip.decompress(gz), raw)
        self.assertLess(len(gz), len(raw))
        st, h, br = SRV.request("GET", js, headers={"Accept-Encoding": "br;q=1.0, gzip;q=0.5"})
        self.assertEqual(h.get("content-encoding"), "br")
        self.assertLess(len(br), len(gz))
        st, h, plain = SRV.request("GET", js, headers={"Accept-Encoding": "br;q=0, gzip;q=0"})
        self.assertEqual(plain, raw)
        st, h, _ = SRV.request("GET", css)
        self.assertTrue(h["content-type"].startswith("text/css"))

    def test_unknown_paths_stay_json_404(self):
        for method, path in [("GET", "/assets/nope.js"), ("GET", "/nope"), ("GET", "/api/2.0/nope"),
                             ("POST", "/"), ("DELETE", "/experiments/1"), ("GET", "/health/")]:
            st, h, data = SRV.request(method, path, body=b"{}" if method != "GET" else None,
                                      headers={"Content-Type": "application/json"})
            self.assertEqual(st, 404, (method, path))
            self.assertIn(b"ENDPOINT_NOT_FOUND", data)


if __name__ == "__main__":
    unittest.main()
