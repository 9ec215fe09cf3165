"""pyclient_bench.py — the measurements of `tally-bench pyclient` (driven by
bench/suite_pyclient.c, which passes the tally binary, a scratch directory
and --quick). Starts `tally serve` on the scratch directory, then measures
the Python client (clients/python) against, in the same run, what MLflow's
Python client does for the same work:

  log_metric_overhead_us   median over rounds of the time per
        run.log_metric(key, value, step) call in the training loop (buffered;
        the sender thread runs meanwhile). Baseline: one synchronous
        POST mlflow/runs/log-metric per call over a keep-alive connection,
        which is what mlflow.log_metric does.
  sustained_points_per_s   points per second from one process: N points
        logged with run.log_metric, then flush() — the clock stops when the
        server has acknowledged every point. Baseline: the same points sent
        as MLflow's log_batch does (JSON log-batch of 1000 metrics per
        request, synchronous, one connection).
  log_series_points_per_s  the same through run.log_series (whole columns),
        no baseline.
  log_metric_cpu_us, sustained_points_per_client_cpu_s   the same two
        measurements in CPU time of the training thread (time.thread_time)
        and of the whole client process (time.process_time, the sender
        thread included): what the client costs, independent of how busy
        the machine is (wall-clock figures on a loaded 2-core machine mostly
        measure the wait for a core).

Prints one line per figure: FIGURE <name> <value> <unit> <baseline> <baseline_value>
(baseline '-' when none). Everything else goes to stderr.
"""

import argparse
import http.client
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "clients", "python"))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
import tally_client  # noqa: E402
from server_harness import TallyServer  # noqa: E402


def figure(name, value, unit, baseline="-", baseline_value=None):
    bv = "-" if baseline_value is None else repr(float(baseline_value))
    print(f"FIGURE {name} {float(value)!r} {unit} {baseline} {bv}", flush=True)


def mlflow_style_log_metric(port, run_id, n):
    """Per-call synchronous REST, as mlflow.log_metric; returns seconds/call list."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    times = []
    ts = int(time.time() * 1000)
    for i in range(n):
        body = json.dumps({"run_id": run_id, "key": "rest", "value": 0.5, "timestamp": ts,
                           "step": i})
        t = time.perf_counter()
        conn.request("POST", "/api/2.0/mlflow/runs/log-metric", body,
                     {"Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        times.append(time.perf_counter() - t)
        assert r.status == 200, r.status
    conn.close()
    return times


def mlflow_style_log_batch(port, run_id, n):
    """n points as JSON log-batch requests of 1000 metrics; returns seconds."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    ts = int(time.time() * 1000)
    t = time.perf_counter()
    for off in range(0, n, 1000):
        metrics = [{"key": "batch", "value": 0.25 * i, "timestamp": ts, "step": i}
                   for i in range(off, min(n, off + 1000))]
        conn.request("POST", "/api/2.0/mlflow/runs/log-batch",
                     json.dumps({"run_id": run_id, "metrics": metrics}),
                     {"Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        assert r.status == 200, r.status
    el = time.perf_counter() - t
    conn.close()
    return el


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--work", required=True)
    args = ap.parse_args()
    n_sustained = 300_000 if args.quick else 3_000_000
    rounds, per_round = (21, 20_000) if args.quick else (51, 50_000)
    n_rest = 500 if args.quick else 3000

    srv = TallyServer(args=["--log-requests", "0"], data_dir=os.path.join(args.work, "server"))
    srv.start()
    try:
        uri = srv.base_url
        # Overhead per call: rounds of per_round calls; the median round.
        with tally_client.start_run(run_name="overhead", tracking_uri=uri) as run:
            lm = run.log_metric
            step = 0
            per_call, per_call_cpu = [], []
            for _ in range(rounds):
                t = time.perf_counter()
                c = time.thread_time()
                for _ in range(per_round):
                    lm("loss", 0.5, step)
                    step += 1
                per_call_cpu.append((time.thread_time() - c) / per_round)
                per_call.append((time.perf_counter() - t) / per_round)
            rest = mlflow_style_log_metric(srv.port, run.run_id, n_rest)
        figure("log_metric_overhead_us", statistics.median(per_call) * 1e6, "us",
               "mlflow_rest_log_metric_us", statistics.median(rest) * 1e6)
        figure("log_metric_cpu_us", statistics.median(per_call_cpu) * 1e6, "us")
        print(f"log_metric per call: p10 {sorted(per_call)[len(per_call) // 10] * 1e6:.3f} us, "
              f"p90 {sorted(per_call)[len(per_call) * 9 // 10] * 1e6:.3f} us", file=sys.stderr)

        # Sustained points/s, measured to the server's acknowledgement.
        with tally_client.start_run(run_name="sustained", tracking_uri=uri) as run:
            lm = run.log_metric
            t = time.perf_counter()
            c = time.process_time()
            for i in range(n_sustained):
                lm("loss", 0.5, i)
            assert run.flush()
            el = time.perf_counter() - t
            cpu = time.process_time() - c
            assert run.metrics.sent_points == n_sustained and not run.metrics.errors
            base = mlflow_style_log_batch(srv.port, run.run_id, n_sustained // 4)
        figure("sustained_points_per_s", n_sustained / el, "points/s",
               "mlflow_json_log_batch_points_per_s", (n_sustained // 4) / base)
        figure("sustained_points_per_client_cpu_s", n_sustained / cpu, "points/s")

        with tally_client.start_run(run_name="series", tracking_uri=uri) as run:
            vals = [0.001 * i for i in range(n_sustained)]
            t = time.perf_counter()
            run.log_series("loss", vals)
            assert run.flush()
            el = time.perf_counter() - t
        figure("log_series_points_per_s", n_sustained / el, "points/s")
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
