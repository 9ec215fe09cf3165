"""test_disk_full.py — a disk that fills while the server ingests (issue 4's
"a failing disk returns 503 to writers and keeps serving reads"): the data
directory lives on a small tmpfs made by the test; after a filler file takes
the free space, writes that need new space fail with 503
TEMPORARILY_UNAVAILABLE (never a 400 or a crash), reads keep answering, and
after a restart with space back every acknowledged point is there.

Needs root (mount); skipped otherwise."""

import os
import subprocess
import sys
import tempfile
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

    def log_batch(self, srv, run_id, step0, n=1000, key="loss"):
        metrics = [{"key": key, "value": (step0 + i) * 0.5, "timestamp": 1700000000000 + step0 + i,
                    "step": step0 + i} for i in range(n)]
        return srv.api("runs/log-batch", {"run_id": run_id, "metrics": metrics})

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
        finally:
            srv.stop(expect_code=None)  # a poisoned engine may report its error at exit
        # Space returns; a restart recovers every acknowledged point.
        os.unlink(filler)
        srv = TallyServer(data_dir=self.data).start()
        try:
            steps = []
            token = None
            while True:
                params = {"run_id": run_id, "metric_key": "loss", "max_results": 25000}
                if token:
                    params["page_token"] = token
                st, body = srv.api("metrics/get-history", method="GET", params=params)
                self.assertEqual(st, 200, body)
                steps += [m["step"] for m in body.get("metrics", [])]
                token = body.get("next_page_token")
                if not token:
                    break
            self.assertGreaterEqual(len(steps), acked)
            self.assertEqual(sorted(steps)[:acked], list(range(acked)))
            st, body = self.log_batch(srv, run_id, len(steps))
            self.assertEqual(st, 200, body)
        finally:
            srv.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
