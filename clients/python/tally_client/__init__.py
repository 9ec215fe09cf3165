"""tally_client — log metrics from a training loop to a Tally tracking server
in bulk, with MLflow's names and meaning. Standard library only, Python >= 3.9.

    import tally_client as tally

    with tally.start_run(experiment_name="resnet", run_name="lr-3e-4") as run:
        tally.log_params({"lr": 3e-4, "batch": 256})
        for step in range(steps):
            tally.log_metric("loss", loss, step=step)    # ~1 us, never waits for the network
        tally.set_tags({"stage": "done"})

Metric points are buffered and sent from a background thread in Tally's
native columnar frame (POST /api/2.0/tally/ingest); runs, params and tags use
MLflow's REST endpoints, so MLflow's UI and clients see everything. The server
address comes from MLFLOW_TRACKING_URI (default http://127.0.0.1:5000), with
MLflow's credential variables. At interpreter exit the active run is flushed
and ended FINISHED, as MLflow does.

Module functions act on the active run (start_run sets it); a Run object has
the same methods for code that logs to several runs.
"""

import atexit
import threading

from ._logger import BufferFull, MetricLogger
from ._rest import TallyError, tracking_uri
from ._run import Run

__all__ = ["start_run", "end_run", "active_run", "log_metric", "log_metrics", "log_series",
           "log_param", "log_params", "set_tag", "set_tags", "flush", "Run", "MetricLogger",
           "TallyError", "BufferFull", "tracking_uri"]
__version__ = "0.1.0"

_active = None
_active_lock = threading.Lock()


class _ActiveRunContext:
    """What start_run returns: the Run, usable as a context manager that also
    clears the module's active run."""

    def __init__(self, run):
        self.run = run

    def __getattr__(self, name):
        return getattr(self.run, name)

    def __enter__(self):
        return self.run

    def __exit__(self, exc_type, exc, tb):
        end_run("FINISHED" if exc_type is None else "FAILED")
        return False


def start_run(run_id=None, experiment_id=None, experiment_name=None, run_name=None, tags=None,
              tracking_uri=None, **logger_options):
    """Creates (or, with run_id / MLFLOW_RUN_ID, resumes) a run and makes it
    the active run. logger_options go to MetricLogger (batch_points,
    max_buffered_points, flush_interval, block_timeout)."""
    global _active
    with _active_lock:
        if _active is not None and not _active.ended:
            raise RuntimeError(f"run {_active.run_id} is already active; end_run() first")
        _active = Run(run_id, experiment_id, experiment_name, run_name, tags, tracking_uri,
                      **logger_options)
        return _ActiveRunContext(_active)


def active_run():
    return _active if _active is not None and not _active.ended else None


def _run():
    r = active_run()
    if r is None:
        raise RuntimeError("no active run: call tally_client.start_run() first")
    return r


def end_run(status="FINISHED", timeout=60.0):
    global _active
    with _active_lock:
        r, _active = _active, None
    if r is not None:
        return r.end(status, timeout)
    return True


def log_metric(key, value, step=None, timestamp=None):
    _run().log_metric(key, value, step, timestamp)


def log_metrics(metrics, step=None, timestamp=None):
    _run().log_metrics(metrics, step, timestamp)


def log_series(key, values, steps=None, timestamps=None):
    _run().log_series(key, values, steps, timestamps)


def log_param(key, value):
    _run().log_param(key, value)


def log_params(params):
    _run().log_params(params)


def set_tag(key, value):
    _run().set_tag(key, value)


def set_tags(tags):
    _run().set_tags(tags)


def flush(timeout=None):
    r = active_run()
    return True if r is None else r.flush(timeout)


@atexit.register
def _end_at_exit():
    try:
        end_run("FINISHED")
    except Exception as e:  # the interpreter is going away: say it, don't raise
        import sys
        print(f"tally_client: could not end the active run at exit: {e}", file=sys.stderr)
