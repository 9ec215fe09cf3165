"""test_cli_verify_stat.py — `tally verify` and `tally stat` over a whole data
directory written by a real server: a clean directory verifies (exit 0); a
flipped byte inside a sealed block is reported with its segment file and
offset (exit 1); a series whose run is gone and an artifact directory of no
run are reported as orphaned; stat's counts match what was logged; both
refuse a directory a server is running on; usage errors exit 2.
"""

import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_harness import TallyServer, tally_binary  # noqa: E402


def tally(*args):
    return subprocess.run([tally_binary()] + list(args), capture_output=True, text=True,
                          timeout=300)


class TestVerifyStat(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        base = os.environ.get("TALLY_TEST_TMP") or None
        if base:
            os.makedirs(base, exist_ok=True)
        cls.tmp = tempfile.mkdtemp(prefix="cli-verify-", dir=base)
        cls.data = os.path.join(cls.tmp, "data")
        srv = TallyServer(data_dir=cls.data)
        srv.start()
        try:
            st, b = srv.api("experiments/create", {"name": "e"})
            assert st == 200, b
            exp = b["experiment_id"]
            cls.runs = []
            for i in range(3):
                st, b = srv.api("runs/create", {"experiment_id": exp, "run_name": f"r{i}"})
                assert st == 200, b
                rid = b["run"]["info"]["run_id"]
                cls.runs.append(rid)
                for k in range(2):
                    metrics = [{"key": f"m{k}", "value": j * 0.5 + i, "timestamp": 1000 + j,
                                "step": j} for j in range(900)]
                    st, b = srv.api("runs/log-batch", {"run_id": rid, "metrics": metrics,
                                                       "params": [{"key": f"p{k}", "value": "v"}]})
                    assert st == 200, b
            cls.points = 3 * 2 * 900
        finally:
            srv.stop()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def copy(self, name):
        d = os.path.join(self.tmp, name)
        shutil.copytree(self.data, d)
        return d

    def test_clean(self):
        p = tally("verify", self.data)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("0 problems", p.stdout)

    def test_stat(self):
        p = tally("stat", self.data)
        self.assertEqual(p.returncode, 0, p.stderr)
        out = p.stdout
        self.assertRegex(out, r"experiments +2 \(0 deleted\)")  # Default + e
        self.assertRegex(out, r"runs +3 \(0 deleted\)")
        self.assertRegex(out, r"params +6")
        self.assertRegex(out, r"series +6")
        self.assertRegex(out, rf"points +{self.points} ")
        self.assertRegex(out, r"bytes/point +[0-9.]+")
        self.assertRegex(out, r"WAL +\d+ files")
        self.assertRegex(out, r"total +\d+ bytes on disk")

    def test_corrupt_block_is_located(self):
        d = self.copy("corrupt")
        seg_dir = os.path.join(d, "metrics", "seg")
        seg = os.path.join(seg_dir, sorted(os.listdir(seg_dir))[0])
        size = os.path.getsize(seg)
        self.assertGreater(size, 200)
        with open(seg, "r+b") as f:
            f.seek(size // 2)
            b = f.read(1)
            f.seek(size // 2)
            f.write(bytes([b[0] ^ 0xFF]))
        p = tally("verify", d)
        self.assertEqual(p.returncode, 1, p.stdout)
        m = re.search(r"^metrics/seg/[0-9a-f]+\.seg @(\d+): ", p.stdout, re.M)
        self.assertIsNotNone(m, p.stdout)
        self.assertLessEqual(int(m.group(1)), size // 2)
        self.assertRegex(p.stdout, r"[1-9]\d* problems?")

    def test_orphans(self):
        d = self.copy("orphans")
        db = sqlite3.connect(os.path.join(d, "meta.db"))
        db.execute("PRAGMA foreign_keys=OFF")
        key = db.execute("SELECT run_key FROM runs WHERE run_uuid = ?",
                         (self.runs[0],)).fetchone()[0]
        for t in ("params", "tags"):
            db.execute(f"DELETE FROM {t} WHERE run_key = ?", (key,))
        db.execute("DELETE FROM runs WHERE run_key = ?", (key,))
        db.commit()
        db.close()
        os.makedirs(os.path.join(d, "artifacts", "1", "ab" * 16))
        p = tally("verify", d)
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertEqual(len(re.findall(rf"run {self.runs[0]}, metric 'm\d'.*orphaned",
                                        p.stdout)), 2, p.stdout)
        self.assertIn("artifacts/1/" + "ab" * 16 + " @0: orphaned", p.stdout)
        self.assertIn("3 problems", p.stdout)

    def test_broken_store(self):
        d = self.copy("badstore")
        with open(os.path.join(d, "meta.db"), "r+b") as f:
            f.seek(0)
            f.write(b"this is no database!")
        p = tally("verify", d)
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn("meta.db @0:", p.stdout)

    def test_served_directory_and_usage(self):
        with TallyServer() as srv:
            for cmd in ("verify", "stat"):
                p = tally(cmd, srv.data_dir)
                self.assertEqual(p.returncode, 1, (cmd, p.stdout, p.stderr))
                self.assertIn("server is running", p.stderr)
        self.assertEqual(tally("verify").returncode, 2)
        self.assertEqual(tally("stat").returncode, 2)
        self.assertEqual(tally("verify", "--help").returncode, 0)
        self.assertEqual(tally("stat", "--help").returncode, 0)
        self.assertEqual(tally("verify", os.path.join(self.tmp, "nope")).returncode, 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
