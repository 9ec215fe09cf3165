"""test_cli_backup.py — `tally backup` of a live server's data directory while
writers keep logging, then a server started on the copy: every batch
acknowledged before the backup began is there, every series holds whole
batches only (a contiguous prefix of what was logged, values exact), runs,
params and artifacts are there, and `tally verify` finds nothing wrong with
the copy. Also: the source keeps serving, DEST must be new or empty, usage.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_harness import TallyServer, tally_binary  # noqa: E402

BATCH = 200  # points per log-batch, steps [i*BATCH, (i+1)*BATCH)


def tally(*args):
    return subprocess.run([tally_binary()] + list(args), capture_output=True, text=True,
                          timeout=300)


def value(run_idx, step):
    return step * 0.25 + run_idx


class Writer(threading.Thread):
    """Logs batches round-robin over runs until stopped; acked[run] counts
    the batches acknowledged so far."""

    def __init__(self, srv, runs, first_index):
        super().__init__(daemon=True)
        self.srv, self.runs, self.first = srv, runs, first_index
        self.acked = {r: 0 for r in runs}
        self.stop_flag = threading.Event()
        self.error = None
        self.lock = threading.Lock()

    def run(self):
        try:
            i = 0
            while not self.stop_flag.is_set():
                ri = i % len(self.runs)
                rid = self.runs[ri]
                b = self.acked[rid]
                metrics = [{"key": "loss", "value": value(self.first + ri, s), "timestamp": 1000 + s,
                            "step": s} for s in range(b * BATCH, (b + 1) * BATCH)]
                st, body = self.srv.api("runs/log-batch", {"run_id": rid, "metrics": metrics})
                if st != 200:
                    raise AssertionError((st, body))
                with self.lock:
                    self.acked[rid] = b + 1
                i += 1
        except Exception as e:  # reported by the test
            self.error = e

    def snapshot(self):
        with self.lock:
            return dict(self.acked)


class TestBackup(unittest.TestCase):
    def setUp(self):
        base = os.environ.get("TALLY_TEST_TMP") or None
        if base:
            os.makedirs(base, exist_ok=True)
        self.tmp = tempfile.mkdtemp(prefix="cli-backup-", dir=base)

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_backup_under_live_ingestion(self):
        src = os.path.join(self.tmp, "src")
        dest = os.path.join(self.tmp, "copy")
        srv = TallyServer(data_dir=src)
        srv.start()
        writers = []
        try:
            st, b = srv.api("experiments/create", {"name": "live"})
            self.assertEqual(st, 200, b)
            exp = b["experiment_id"]
            runs = []
            for i in range(6):
                st, b = srv.api("runs/create", {"experiment_id": exp, "run_name": f"r{i}"})
                self.assertEqual(st, 200, b)
                rid = b["run"]["info"]["run_id"]
                runs.append(rid)
                st, b = srv.api("runs/log-parameter", {"run_id": rid, "key": "i",
                                                       "value": str(i)})
                self.assertEqual(st, 200, b)
                art = os.path.join(src, "artifacts", exp, rid, "artifacts", "model")
                os.makedirs(art)
                with open(os.path.join(art, "weights.bin"), "wb") as f:
                    f.write(bytes([i]) * (1000 + i))
            writers = [Writer(srv, runs[:3], 0), Writer(srv, runs[3:], 3)]
            for w in writers:
                w.start()
            time.sleep(1.0)  # some data in before the backup
            before = {}
            for w in writers:
                before.update(w.snapshot())
            p = tally("backup", dest, "--data", src)
            self.assertEqual(p.returncode, 0, p.stderr)
            time.sleep(0.3)  # the source keeps taking writes after the copy
            for w in writers:
                w.stop_flag.set()
            for w in writers:
                w.join(30)
                self.assertIsNone(w.error)
            after = {}
            for w in writers:
                after.update(w.snapshot())
            st, _ = srv.api("runs/get", method="GET", params={"run_id": runs[0]})
            self.assertEqual(st, 200)
        finally:
            for w in writers:
                w.stop_flag.set()
            srv.stop()
        self.assertTrue(any(before[r] > 0 for r in runs), before)
        # The key sealing webhook secrets comes along, private as the original.
        with open(os.path.join(src, "webhook-secret.key"), "rb") as f_src, \
                open(os.path.join(dest, "webhook-secret.key"), "rb") as f_dst:
            self.assertEqual(f_src.read(), f_dst.read())
        self.assertEqual(os.stat(os.path.join(dest, "webhook-secret.key")).st_mode & 0o777, 0o600)

        p = tally("verify", dest)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

        copy = TallyServer(data_dir=dest)
        copy.start()
        try:
            for i, rid in enumerate(runs):
                st, b = copy.api("runs/get", method="GET", params={"run_id": rid})
                self.assertEqual(st, 200, b)
                params = {p["key"]: p["value"] for p in b["run"]["data"].get("params", [])}
                self.assertEqual(params, {"i": str(i)})
                st, h = copy.api("metrics/get-history", method="GET",
                                 params={"run_id": rid, "metric_key": "loss"})
                self.assertEqual(st, 200, h)
                steps = sorted(int(m["step"]) for m in h.get("metrics", []))
                n = len(steps)
                self.assertEqual(n % BATCH, 0, f"run {i}: a batch in part ({n} points)")
                self.assertEqual(steps, list(range(n)), f"run {i}: not a prefix")
                self.assertGreaterEqual(n // BATCH, before[rid], f"run {i}: acked batch lost")
                self.assertLessEqual(n // BATCH, after[rid])
                for m in h.get("metrics", []):
                    self.assertEqual(float(m["value"]), value(i, int(m["step"])))
                st, lb = copy.api("artifacts/list", method="GET",
                                  params={"run_id": rid, "path": "model"})
                self.assertEqual(st, 200, lb)
                self.assertEqual([(f["path"], int(f["file_size"])) for f in lb["files"]],
                                 [("model/weights.bin", 1000 + i)])
        finally:
            copy.stop()

    def test_usage_and_errors(self):
        self.assertEqual(tally("backup", "--help").returncode, 0)
        self.assertEqual(tally("backup").returncode, 2)
        self.assertEqual(tally("backup", os.path.join(self.tmp, "x")).returncode, 2)
        p = tally("backup", os.path.join(self.tmp, "x"), "--data", os.path.join(self.tmp, "no"))
        self.assertEqual(p.returncode, 1)
        self.assertIn("not a Tally data directory", p.stderr)
        with TallyServer() as srv:
            busy = os.path.join(self.tmp, "busy")
            os.makedirs(busy)
            open(os.path.join(busy, "f"), "w").close()
            p = tally("backup", busy, "--data", srv.data_dir)
            self.assertEqual(p.returncode, 1)
            self.assertIn("not an empty directory", p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
