"""report_to.py — `tally-bench SUITE --report-to URL`: logs one benchmark run
into a Tally server as a run of the experiment "tally-bench", so the project
tracks its own performance over time in its own UI. Uses the Python client
(clients/python) like any training script would.

Input (stdin, from tally_bench.c): one JSON object per figure, in the
--json format (suite, figure, value, unit, baseline, baseline_value, ratio),
then {"end": <suite exit code>}. Settings come from the environment:
TALLY_REPORT_URL, TALLY_REPORT_SUITE, TALLY_REPORT_QUICK.

The run: name "<suite> <UTC time>"; params suite, quick, machine (host, CPU
model, cores, memory), commit (git HEAD of the source tree, "+dirty" when it
has changes; "unknown" outside a checkout); one metric per figure (its value,
step 0), plus "<figure>.baseline" and "<figure>.ratio" when the figure has a
baseline; tags "unit.<figure>" and "baseline.<figure>". The run ends FINISHED
when the suite succeeded, FAILED otherwise. Exit 0 only when everything was
stored.
"""

import datetime
import json
import math
import os
import platform
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "clients", "python"))
import tally_client  # noqa: E402


def machine():
    cpu = platform.processor() or "unknown cpu"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
            mem = f", {kb / (1 << 20):.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return f"{platform.node()}: {cpu}, {os.cpu_count()} cores{mem}, {platform.system()} {platform.release()}"


def commit():
    try:
        head = subprocess.run(["git", "-C", REPO, "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10)
        if head.returncode != 0:
            return "unknown"
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=30)
        return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def metric_key(name):
    # Figure names are [a-z0-9_]; keep anything else inside MLflow's key rule.
    return "".join(c if c.isalnum() or c in "_-./ :" else "_" for c in name)[:240]


def main():
    url = os.environ["TALLY_REPORT_URL"]
    suite = os.environ.get("TALLY_REPORT_SUITE", "unknown")
    figures, end = [], None
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        obj = json.loads(line)
        if "end" in obj:
            end = obj["end"]
        else:
            figures.append(obj)
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
    run = None
    try:
        run = tally_client.Run(experiment_name="tally-bench", run_name=f"{suite} {now}",
                               tracking_uri=url)
        run.log_params({"suite": suite, "quick": os.environ.get("TALLY_REPORT_QUICK", "0"),
                        "machine": machine()[:6000], "commit": commit()})
        tags = {}
        for f in figures:
            key = metric_key(f["figure"])
            for suffix, v in (("", f.get("value")), (".baseline", f.get("baseline_value")),
                              (".ratio", f.get("ratio"))):
                if isinstance(v, (int, float)) and math.isfinite(v):
                    run.log_metric(key + suffix, float(v), step=0)
            tags["unit." + key] = f.get("unit") or ""
            if f.get("baseline"):
                tags["baseline." + key] = f["baseline"]
        if tags:
            run.set_tags(tags)
        ok = run.end("FINISHED" if end == 0 else "FAILED")
    except (tally_client.TallyError, ValueError, OSError) as e:
        print(f"tally-bench: --report-to {url}: {e}", file=sys.stderr)
        if run is not None and not run.ended:
            try:
                run.end("FAILED", timeout=10)
            except (tally_client.TallyError, OSError):
                pass
        return 1
    if not ok:
        print(f"tally-bench: --report-to {url}: some figures were not stored: {run.metrics.errors}",
              file=sys.stderr)
        return 1
    print(f"tally-bench: reported {len(figures)} figures to {url} as run {run.run_id}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
