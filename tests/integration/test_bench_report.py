"""test_bench_report.py — `tally-bench SUITE --report-to URL` against a real
`tally serve`: the benchmark run appears as a FINISHED run of the experiment
"tally-bench" with params suite/quick/machine/commit, one metric per figure
equal to the figure `--json` printed in the same run, and unit/baseline tags;
a server that cannot be reached makes tally-bench exit non-zero.

Skipped (with the reason) when the build has no tally-bench
(TALLY_BUILD_BENCH=OFF).
"""

import json
import math
import os
import socket
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_harness import REPO, TallyServer  # noqa: E402

BIN_DIR = os.environ.get("TALLY_BIN_DIR") or os.path.join(REPO, "build")
BENCH = os.path.join(BIN_DIR, "tally-bench")


@unittest.skipUnless(os.path.exists(BENCH), "tally-bench not built")
class BenchReportTest(unittest.TestCase):
    def test_report_to_server(self):
        with TallyServer() as srv:
            r = subprocess.run([BENCH, "codec", "--quick", "--json", "--report-to", srv.base_url],
                               capture_output=True, text=True, timeout=600)
            self.assertEqual(r.returncode, 0, r.stderr[-2000:])
            figures = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
            self.assertGreater(len(figures), 10)
            status, body = srv.api("experiments/get-by-name", method="GET",
                                   params={"experiment_name": "tally-bench"})
            self.assertEqual(status, 200, body)
            exp = body["experiment"]["experiment_id"]
            status, body = srv.api("runs/search", {"experiment_ids": [exp]})
            self.assertEqual(status, 200)
            self.assertEqual(len(body["runs"]), 1)
            run = body["runs"][0]
            self.assertEqual(run["info"]["status"], "FINISHED")
            params = {p["key"]: p["value"] for p in run["data"]["params"]}
            self.assertEqual(params["suite"], "codec")
            self.assertEqual(params["quick"], "1")
            self.assertIn("cores", params["machine"])
            self.assertTrue(params["commit"])
            metrics = {m["key"]: m["value"] for m in run["data"]["metrics"]}
            tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
            for f in figures:
                self.assertAlmostEqual(float(metrics[f["figure"]]), f["value"],
                                       delta=abs(f["value"]) * 1e-9)
                self.assertEqual(tags["unit." + f["figure"]], f["unit"])
                if f["ratio"] is not None and math.isfinite(f["ratio"]):
                    self.assertAlmostEqual(float(metrics[f["figure"] + ".ratio"]), f["ratio"],
                                           delta=abs(f["ratio"]) * 1e-9)
                    self.assertEqual(tags["baseline." + f["figure"]], f["baseline"])

    def test_unreachable_server_fails(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        r = subprocess.run([BENCH, "codec", "--quick", "--report-to", f"http://127.0.0.1:{port}"],
                           capture_output=True, text=True, timeout=600)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("--report-to", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
