"""_run.py — a run on the tracking server, created and ended through
MLflow's REST endpoints (so MLflow's UI and clients see it), with its
metrics going through a MetricLogger (native ingest) and its params and tags
through MLflow's log-batch, synchronously, as MLflow's client sends them.

Invariants:
  (1) end() flushes every metric point before it marks the run terminated,
      so a FINISHED run has all its points.
  (2) Params and tags are sent in chunks within MLflow's log-batch limits
      (100 params, 100 tags per request); a refused chunk raises TallyError
      naming the server's error_code.
"""

import getpass
import os
import sys
import time

from ._logger import MetricLogger
from ._rest import Connection
from ._validate import check_key

PARAMS_PER_REQUEST = 100
TAGS_PER_REQUEST = 100
TERMINAL = ("FINISHED", "FAILED", "KILLED")


def _now_ms():
    return time.time_ns() // 1_000_000


def resolve_experiment(conn, experiment_id=None, experiment_name=None):
    """experiment_id, else experiment_name (created if missing, as
    mlflow.set_experiment), else MLFLOW_EXPERIMENT_ID, else
    MLFLOW_EXPERIMENT_NAME (must exist, as MLflow), else "0"."""
    if experiment_id is not None:
        return str(experiment_id)
    if experiment_name is None:
        env_id = os.environ.get("MLFLOW_EXPERIMENT_ID")
        if env_id:
            return env_id
        env_name = os.environ.get("MLFLOW_EXPERIMENT_NAME")
        if not env_name:
            return "0"
        got = conn.call("mlflow/experiments/get-by-name", {"experiment_name": env_name}, "GET")
        return got["experiment"]["experiment_id"]
    try:
        got = conn.call("mlflow/experiments/get-by-name",
                        {"experiment_name": experiment_name}, "GET")
        return got["experiment"]["experiment_id"]
    except Exception as e:
        if getattr(e, "error_code", None) != "RESOURCE_DOES_NOT_EXIST":
            raise
    return conn.call("mlflow/experiments/create", {"name": experiment_name})["experiment_id"]


class Run:
    """A run being logged to. Use as a context manager: leaving the block
    ends the run FINISHED, or FAILED when an exception escapes it."""

    def __init__(self, run_id=None, experiment_id=None, experiment_name=None, run_name=None,
                 tags=None, tracking_uri=None, **logger_options):
        self._conn = Connection(tracking_uri)
        self.tracking_uri = self._conn.uri
        run_id = run_id or os.environ.get("MLFLOW_RUN_ID")
        if run_id:
            info = self._conn.call("mlflow/runs/get", {"run_id": run_id}, "GET")["run"]["info"]
            self._conn.call("mlflow/runs/update", {"run_id": run_id, "status": "RUNNING"})
        else:
            exp = resolve_experiment(self._conn, experiment_id, experiment_name)
            all_tags = {"mlflow.user": _user(), "mlflow.source.type": "LOCAL",
                        "mlflow.source.name": os.path.basename(sys.argv[0]) if sys.argv and
                        sys.argv[0] else "<console>"}
            all_tags.update(tags or {})
            body = {"experiment_id": exp, "start_time": _now_ms(), "user_id": _user(),
                    "tags": [{"key": k, "value": str(v)} for k, v in all_tags.items()]}
            if run_name:
                body["run_name"] = run_name
            info = self._conn.call("mlflow/runs/create", body)["run"]["info"]
        self.info = info
        self.run_id = info["run_id"]
        self.experiment_id = info["experiment_id"]
        self.metrics = MetricLogger(self.run_id, self.tracking_uri, **logger_options)
        self.ended = False
        # The hot path: bound methods, so run.log_metric costs one call.
        self.log_metric = self.metrics.log_metric
        self.log_metrics = self.metrics.log_metrics
        self.log_series = self.metrics.log_series

    def log_param(self, key, value):
        self.log_params({key: value})

    def log_params(self, params):
        items = [{"key": k, "value": str(v)} for k, v in params.items()]
        for k in params:
            check_key(k, "param")
        for i in range(0, len(items), PARAMS_PER_REQUEST):
            self._conn.call("mlflow/runs/log-batch",
                            {"run_id": self.run_id, "params": items[i:i + PARAMS_PER_REQUEST]})

    def set_tag(self, key, value):
        self.set_tags({key: value})

    def set_tags(self, tags):
        items = [{"key": k, "value": str(v)} for k, v in tags.items()]
        for k in tags:
            check_key(k, "tag")
        for i in range(0, len(items), TAGS_PER_REQUEST):
            self._conn.call("mlflow/runs/log-batch",
                            {"run_id": self.run_id, "tags": items[i:i + TAGS_PER_REQUEST]})

    def flush(self, timeout=None):
        return self.metrics.flush(timeout)

    def end(self, status="FINISHED", timeout=60.0):
        """Flushes the metrics (up to timeout seconds), then marks the run
        terminated with status. Returns True when every point was stored.
        Idempotent."""
        if status not in TERMINAL:
            raise ValueError(f"status must be one of {TERMINAL}")
        if self.ended:
            return not self.metrics.errors
        ok = self.metrics.close(timeout)
        self._conn.call("mlflow/runs/update",
                        {"run_id": self.run_id, "status": status, "end_time": _now_ms()})
        self._conn.close()
        self.ended = True
        return ok

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.end("FINISHED" if exc_type is None else "FAILED")
        return False


def _user():
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"
