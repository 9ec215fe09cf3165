"""test_disk_full.py — a disk that fills while the server ingests, and a disk
that turns read-only (issue 8): the data directory lives on a small tmpfs
made by the test. After a filler file takes the free space, writes that need
new space fail with 503 TEMPORARILY_UNAVAILABLE and Retry-After (never a 400
or a crash) — metrics (engine), metadata (SQLite) and artifact uploads
alike — while reads keep answering. When space returns the server resumes writing by itself, without
a restart, and after a restart every acknowledged point is there.

A read-only disk is not tested here: Linux refuses to remount a filesystem
read-only while files on it are open for writing (EBUSY), which the server's
always are; the engine's handling of EROFS is the same path as ENOSPC and is
tested through the fault hook (tests/integration/test_faults.c).

Needs root (mount); skipped otherwise."""

import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_harness import TallyServer  # noqa: E402

FS_MB = 160


def can_mount():
    return os.geteuid() == 0 and subprocess.run(["which", "mount"], capture_output=True).returncode == 0


@unittest.skipUnless(can_mount(), "needs root to mount a small tmpfs")
class DiskFull(unittest.TestCase):
    def setUp(self):
        self.mnt = tempfile.mkdtemp(prefix="tally-smallfs-")
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={FS_MB}m", "tmpfs", self.mnt],
                           capture_output=True, text=True)
        if r.returncode != 0:
            os.rmdir(self.mnt)
            self.skipTest("mount refused: " + r.stderr.strip())
        self.data = os.path.join(self.mnt, "data")

    def tearDown(self):
        subprocess.run(["umount", self.mnt], check=False)
        os.rmdir(self.mnt)

    def fill(self):
        """Takes all free space but a few KB."""
        path = os.path.join(self.mnt, "filler")
        with open(path, "wb") as f:
            chunk = b"\0" * (1 << 20)
            try:
                while True:
                    f.write(chunk)
                    f.flush()
            except OSError:
                pass
        return path

    def wait_writable(self, srv, run_id, step0, timeout=30.0):
        """Retries one log-batch until the server takes it again (it probes
        the disk by itself with a backoff of at most 5 s)."""
        deadline = time.monotonic() + timeout
        while True:
            st, body = self.log_batch(srv, run_id, step0)
            if st == 200:
                return
            self.assertEqual(st, 503, body)
            self.assertIn("retry-after", self.last_headers)
            self.assertLess(time.monotonic(), deadline, "writes never resumed")
            time.sleep(0.2)

    def history_steps(self, srv, run_id):
        steps, token = [], None
        while True:
            params = {"run_id": run_id, "metric_key": "loss", "max_results": 25000}
            if token:
                params["page_token"] = token
            st, body = srv.api("metrics/get-history", method="GET", params=params)
            self.assertEqual(st, 200, body)
            steps += [m["step"] for m in body.get("metrics", [])]
            token = body.get("next_page_token")
            if not token:
                return steps

    def post(self, srv, rel, obj):
        """POST /api/2.0/mlflow/<rel>; keeps the response headers in self.last_headers."""
        st, self.last_headers, data = srv.request("POST", "/api/2.0/mlflow/" + rel, json.dumps(obj),
                                                  {"Content-Type": "application/json"})
        return st, json.loads(data) if data else None

    def log_batch(self, srv, run_id, step0, n=1000, key="loss"):
        metrics = [{"key": key, "value": (step0 + i) * 0.5, "timestamp": 1700000000000 + step0 + i,
                    "step": step0 + i} for i in range(n)]
        return self.post(srv, "runs/log-batch", {"run_id": run_id, "metrics": metrics})

    def test_disk_fills_during_ingestion(self):
        srv = TallyServer(data_dir=self.data).start()
        acked = 0
        try:
            st, body = srv.api("experiments/create", {"name": "full"})
            self.assertEqual(st, 200, body)
            st, body = srv.api("runs/create", {"experiment_id": body["experiment_id"]})
            run_id = body["run"]["info"]["run_id"]
            for _ in range(3):
                st, body = self.log_batch(srv, run_id, acked)
                self.assertEqual(st, 200, body)
                acked += 1000
            filler = self.fill()
            # Keep logging: heads fill, the sealer needs segment space, the
            # engine fails over to refusing writes.
            saw_503 = False
            for _ in range(200):
                st, body = self.log_batch(srv, run_id, acked)
                if st == 200:
                    acked += 1000
                    continue
                self.assertEqual(st, 503, body)
                self.assertEqual(body["error_code"], "TEMPORARILY_UNAVAILABLE")
                saw_503 = True
                break
            self.assertTrue(saw_503, "writes never failed on a full disk")
            # Writes keep failing cleanly; reads keep working.
            st, body = self.log_batch(srv, run_id, acked)
            self.assertEqual(st, 503, body)
            st, body = srv.api("runs/get", method="GET", params={"run_id": run_id})
            self.assertEqual(st, 200, body)
            latest = {m["key"]: m for m in body["run"]["data"]["metrics"]}
            self.assertEqual(latest["loss"]["step"], acked - 1)
            st, body = srv.api("metrics/get-history", method="GET",
                               params={"run_id": run_id, "metric_key": "loss", "max_results": 25000})
            self.assertEqual(st, 200, body)
            self.assertGreaterEqual(len(body["metrics"]), min(acked, 25000))
            st, _, _ = srv.request("GET", "/health")
            self.assertEqual(st, 200)
            # The metadata store on the full disk: 503 with Retry-After too.
            # (Small writes may still fit in SQLite's free pages; fill on.)
            meta_503 = False
            for i in range(2000):
                st, body = self.post(srv, "runs/set-tag", {"run_id": run_id, "key": f"t{i}",
                                                    "value": "x" * 4000})
                if st == 200:
                    continue
                self.assertEqual(st, 503, body)
                self.assertEqual(body["error_code"], "TEMPORARILY_UNAVAILABLE")
                self.assertIn("retry-after", self.last_headers)
                meta_503 = True
                break
            self.assertTrue(meta_503, "metadata writes never failed on a full disk")
            st, body = srv.api("runs/get", method="GET", params={"run_id": run_id})
            self.assertEqual(st, 200, body)
            # Space returns: writes resume by themselves, no restart.
            os.unlink(filler)
            self.wait_writable(srv, run_id, acked)
            acked += 1000
            st, body = self.post(srv, "runs/set-tag", {"run_id": run_id, "key": "after", "value": "1"})
            self.assertEqual(st, 200, body)
            steps = self.history_steps(srv, run_id)
            self.assertEqual(sorted(steps), list(range(acked)))
            log = srv.log_tail(200000)
            self.assertIn("writes paused", log)
            self.assertIn("writes resumed", log)
            metrics = srv.metrics_text()
            self.assertIn("tally_engine_writes_paused 0", metrics)
            self.assertNotIn("tally_engine_write_recoveries_total 0", metrics)
        finally:
            srv.stop()  # recovered: a clean exit with a final checkpoint
        # A restart finds every acknowledged point, once.
        srv = TallyServer(data_dir=self.data).start()
        try:
            steps = self.history_steps(srv, run_id)
            self.assertEqual(sorted(steps), list(range(acked)))
            st, body = self.log_batch(srv, run_id, len(steps))
            self.assertEqual(st, 200, body)
            st, body = srv.api("runs/get", method="GET", params={"run_id": run_id})
            self.assertEqual(st, 200, body)
            self.assertIn("after", {t["key"] for t in body["run"]["data"]["tags"]})
        finally:
            srv.stop()

    def test_artifact_upload_on_full_disk(self):
        """A large upload (its writer thread on) that finds no space answers 503
        with Retry-After and leaves no temporary behind; with space back the same
        upload lands whole."""
        srv = TallyServer(data_dir=self.data).start()
        try:
            blob = bytes((i * 7 + i // 251) & 0xFF for i in range(24 << 20))
            path = "/api/2.0/mlflow-artifacts/artifacts/full/model.bin"
            hdr = {"Content-Type": "application/octet-stream"}
            filler = self.fill()
            # 8 MiB free: the first 4 MiB are written by the receiving thread,
            # the writer thread meets the full disk.
            os.truncate(filler, os.path.getsize(filler) - (8 << 20))
            st, headers, data = srv.request("PUT", path, blob, hdr, timeout=60.0)
            self.assertEqual(st, 503, data)
            self.assertEqual(json.loads(data)["error_code"], "TEMPORARILY_UNAVAILABLE")
            self.assertIn("retry-after", headers)
            left = [name for _, _, files in os.walk(os.path.join(self.data, "artifacts"))
                    for name in files]
            self.assertEqual(left, [])
            st, _, _ = srv.request("GET", "/health")
            self.assertEqual(st, 200)
            os.unlink(filler)
            st, _, data = srv.request("PUT", path, blob, hdr, timeout=60.0)
            self.assertEqual(st, 200, data)
            st, _, data = srv.request("GET", path, timeout=60.0)
            self.assertEqual(st, 200)
            self.assertEqual(data, blob)
        finally:
            srv.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
