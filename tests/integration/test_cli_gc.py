"""test_cli_gc.py — `tally gc` on a data directory written by a real server:
runs and an experiment deleted through the API are removed for good (their
metric series, artifacts and rows) once old enough, the space of their
points is reclaimed, everything else is intact (every point, params,
artifacts), `tally verify` is clean, and the server on the directory answers
404 for what was removed. Also --older-than, --run-ids/--experiment-ids
(errors for what is not deleted), --dry-run, a served directory, usage.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_harness import TallyServer, tally_binary  # noqa: E402

N_POINTS = 30000


def tally(*args):
    return subprocess.run([tally_binary()] + list(args), capture_output=True, text=True,
                          timeout=300)


def seg_bytes(data):
    d = os.path.join(data, "metrics", "seg")
    return sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))


class TestGc(unittest.TestCase):
    def setUp(self):
        base = os.environ.get("TALLY_TEST_TMP") or None
        if base:
            os.makedirs(base, exist_ok=True)
        self.tmp = tempfile.mkdtemp(prefix="cli-gc-", dir=base)
        self.addCleanup(shutil.rmtree, self.tmp, True)  # also when setUp fails
        self.data = os.path.join(self.tmp, "data")
        srv = TallyServer(data_dir=self.data)
        srv.start()
        try:
            self.exps = {}
            for name in ("keep", "drop"):
                st, b = srv.api("experiments/create", {"name": name})
                self.assertEqual(st, 200, b)
                self.exps[name] = b["experiment_id"]
            self.runs = {}
            for exp, names in (("keep", ["a", "b", "c"]), ("drop", ["d"])):
                for n in names:
                    st, b = srv.api("runs/create", {"experiment_id": self.exps[exp],
                                                    "run_name": n})
                    self.assertEqual(st, 200, b)
                    rid = b["run"]["info"]["run_id"]
                    self.runs[n] = rid
                    for off in range(0, N_POINTS, 999):
                        ms = [{"key": "loss", "value": s * 0.001 + ord(n), "timestamp": 1000 + s,
                               "step": s} for s in range(off, min(off + 999, N_POINTS))]
                        st, r = srv.api("runs/log-batch", {
                            "run_id": rid, "metrics": ms,
                            "params": [{"key": "n", "value": n}] if off == 0 else []})
                        self.assertEqual(st, 200, r)
                    art = os.path.join(self.data, "artifacts", self.exps[exp], rid, "artifacts")
                    os.makedirs(art)
                    with open(os.path.join(art, "f.txt"), "w") as f:
                        f.write(n * 100)
            # Logged models: run c (deleted below) outputs one; the dropped
            # experiment holds one. gc must remove their rows too.
            self.models = {}
            for n, exp in (("c", "keep"), ("d", "drop")):
                st, b = srv.api("logged-models", {"experiment_id": self.exps[exp],
                                                  "name": "m-" + n,
                                                  "source_run_id": self.runs[n],
                                                  "params": [{"key": "k", "value": "v"}],
                                                  "tags": [{"key": "t", "value": "u"}]})
                self.assertEqual(st, 200, b)
                self.models[n] = b["model"]["info"]["model_id"]
                st, b = srv.api("runs/outputs", {"run_id": self.runs[n], "models": [
                    {"model_id": self.models[n], "step": 0}]})
                self.assertEqual(st, 200, b)
            for n in ("b", "c"):
                st, r = srv.api("runs/delete", {"run_id": self.runs[n]})
                self.assertEqual(st, 200, r)
            st, r = srv.api("experiments/delete", {"experiment_id": self.exps["drop"]})
            self.assertEqual(st, 200, r)
        finally:
            srv.stop()

    def art_dir(self, exp, n):
        return os.path.join(self.data, "artifacts", self.exps[exp], self.runs[n])

    def test_gc_removes_and_reclaims(self):
        # deleted just now: nothing is a day old
        p = tally("gc", "--data", self.data, "--older-than", "1d")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("0 runs, 0 experiments", p.stdout)
        p = tally("gc", "--data", self.data, "--dry-run")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("would remove run " + self.runs["b"], p.stdout)
        self.assertIn("would remove experiment " + self.exps["drop"], p.stdout)
        self.assertTrue(os.path.isdir(self.art_dir("keep", "b")))  # dry run touched nothing
        # only run b, by id
        before = seg_bytes(self.data)
        p = tally("gc", "--data", self.data, "--run-ids", self.runs["b"])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("removed 1 runs, 0 experiments, 1 series, %d metric points" % N_POINTS,
                      p.stdout)
        mid = seg_bytes(self.data)
        self.assertLess(mid, before)
        self.assertFalse(os.path.exists(self.art_dir("keep", "b")))
        # everything else deleted, after a second has passed
        time.sleep(1.1)
        p = tally("gc", "--data", self.data, "--older-than", "1s")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("removed 2 runs, 1 experiments, 2 series", p.stdout)
        after = seg_bytes(self.data)
        self.assertLess(after, mid)
        self.assertLess(after, before * 0.5)  # 1 of 4 equal series left... plus headers
        self.assertFalse(os.path.exists(self.art_dir("keep", "c")))
        self.assertFalse(os.path.exists(os.path.join(self.data, "artifacts", self.exps["drop"])))
        self.assertTrue(os.path.isfile(os.path.join(self.art_dir("keep", "a"), "artifacts",
                                                    "f.txt")))
        p = tally("verify", self.data)
        self.assertEqual(p.returncode, 0, p.stdout)
        p = tally("gc", "--data", self.data)
        self.assertIn("0 runs, 0 experiments", p.stdout)

        with TallyServer(data_dir=self.data) as srv:
            for n in ("b", "c", "d"):
                st, b = srv.api("runs/get", method="GET", params={"run_id": self.runs[n]})
                self.assertEqual(st, 404, b)
                self.assertEqual(b["error_code"], "RESOURCE_DOES_NOT_EXIST")
            st, b = srv.api("experiments/get", method="GET",
                            params={"experiment_id": self.exps["drop"]})
            self.assertEqual(st, 404, b)
            st, b = srv.api("runs/get", method="GET", params={"run_id": self.runs["a"]})
            self.assertEqual(st, 200, b)
            self.assertEqual(b["run"]["data"]["params"], [{"key": "n", "value": "a"}])
            st, h = srv.api("metrics/get-history", method="GET",
                            params={"run_id": self.runs["a"], "metric_key": "loss"})
            self.assertEqual(st, 200, h)
            ms = h["metrics"]
            self.assertEqual(len(ms), N_POINTS)
            self.assertEqual(sorted(int(m["step"]) for m in ms), list(range(N_POINTS)))
            for m in ms:
                self.assertEqual(float(m["value"]), int(m["step"]) * 0.001 + ord("a"))
            # the dropped experiment's logged model went with it; the
            # model run c logged stays (its experiment lives) without the output
            st, b = srv.api("logged-models/" + self.models["d"], method="GET")
            self.assertEqual(st, 404, b)
            st, b = srv.api("logged-models/" + self.models["c"], method="GET")
            self.assertEqual(st, 200, b)
            # the name of a removed experiment is free again
            st, b = srv.api("experiments/create", {"name": "drop"})
            self.assertEqual(st, 200, b)

    def test_errors(self):
        p = tally("gc", "--data", self.data, "--run-ids", self.runs["a"])
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("is not in `deleted` lifecycle stage", p.stderr)
        p = tally("gc", "--data", self.data, "--experiment-ids", self.exps["keep"])
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("not in the deleted lifecycle stage", p.stderr)
        p = tally("gc", "--data", self.data, "--run-ids", "f" * 32)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertEqual(tally("gc", "--data", self.data, "--older-than", "3x").returncode, 2)
        self.assertEqual(tally("gc").returncode, 2)
        self.assertEqual(tally("gc", "--help").returncode, 0)
        with TallyServer(data_dir=self.data) as srv:
            p = tally("gc", "--data", srv.data_dir)
            self.assertEqual(p.returncode, 1, p.stdout)
            self.assertIn("server is running", p.stderr)
        # nothing was removed by the failed attempts
        self.assertTrue(os.path.isdir(self.art_dir("keep", "b")))
        p = tally("stat", self.data)
        self.assertRegex(p.stdout, r"runs +4 \(3 deleted\)")


if __name__ == "__main__":
    unittest.main(verbosity=2)
