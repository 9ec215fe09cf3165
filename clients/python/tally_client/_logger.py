"""_logger.py — MetricLogger: buffers metric points from the training loop
and sends them to the server in native ingest frames from a background
thread.

Shape of the buffer: a dict key -> flat list [step, timestamp, value, step,
...] filled by log_metric under one lock (one small tuple and one list
extend per point, the cheapest thing CPython does), and a dict key -> list
of column chunks (array triples) filled by log_series without creating a
Python object per point. The sender turns rows into array columns with
strided slices (C loops) when it builds a frame. When it
holds batch_points points (or flush_interval seconds passed) the whole dict is
handed to the sender's queue and a fresh one started, so the training thread
never waits for the network.

Invariants:
  (1) Memory is bounded: points buffered + queued + being sent never exceed
      max_buffered_points (+ one batch). At the bound, log_metric waits for
      room (block_timeout None: as long as it takes; a number: then raises
      BufferFull without taking the point).
  (2) Every buffered row is valid: values are floats, steps and timestamps
      int64 — checked before the row is taken, so a bad argument raises
      (TypeError / OverflowError) and leaves nothing behind.
  (3) Every point accepted is sent, retried (backoff, Retry-After) until
      the server acknowledges it, or reported in `errors` (a final 4xx, or
      close() giving up after its timeout) with the count in `dropped_points`.
      Nothing is dropped silently.
  (4) flush() returns once every point accepted before the call is
      acknowledged by the server (or reported per (3)).
"""

import collections
import logging
import operator
import threading
import time
from array import array

from . import _frame
from ._rest import Connection, TallyError
from ._validate import check_key

log = logging.getLogger("tally_client")
_time_ns = time.time_ns
_I64 = 1 << 63


def as_float(value):
    """A metric value as MLflow takes it: a real number (int, float, bool,
    numpy/torch scalars through __float__); strings and None refused."""
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"metric value must be a number, got {type(value).__name__}")
    try:
        return float(value)
    except (TypeError, ValueError) as e:
        raise TypeError(f"metric value must be a number, got {type(value).__name__}") from e


def as_int64(v, what):
    """A step or timestamp: an integral number within int64."""
    if isinstance(v, (str, bytes, float)) or v is None:
        raise TypeError(f"{what} must be an integer, got {type(v).__name__}")
    try:
        v = operator.index(v)
    except TypeError as e:
        raise TypeError(f"{what} must be an integer, got {type(v).__name__}") from e
    if not -_I64 <= v < _I64:
        raise OverflowError(f"{what} {v} is outside the int64 range")
    return v
INGEST_PATH = "/api/2.0/tally/ingest"


class BufferFull(Exception):
    """log_metric could not take a point within block_timeout."""


class MetricLogger:
    def __init__(self, run_id, tracking_uri=None, *, batch_points=100_000,
                 max_buffered_points=4_000_000, flush_interval=1.0, block_timeout=None,
                 timeout=60.0):
        if batch_points < 1 or max_buffered_points < batch_points:
            raise ValueError("need 1 <= batch_points <= max_buffered_points")
        self.run_id = run_id
        self._rid = run_id.encode()
        self._batch_points = batch_points
        self._max_points = max_buffered_points
        self._flush_interval = flush_interval
        self._block_timeout = block_timeout
        self._lock = threading.Lock()
        self._cv = threading.Condition(self._lock)
        self._rows = {}             # key -> flat [step, ts, value, ...]
        self._chunks = {}           # key -> [(steps, timestamps, values) arrays]
        self._n = 0                 # points in _rows and _chunks
        self._limit = batch_points  # the hot path's one check: _n < _limit (see _set_limit)
        self._queue = collections.deque()
        self._pending = 0           # points queued or being sent
        self._handed = 0            # points ever handed to the sender
        self._done = 0              # points acknowledged or reported
        self._closing = False
        self._abandon = False
        self.errors = []
        self.dropped_points = 0
        self.sent_points = 0
        self._conn = Connection(tracking_uri, timeout=timeout)
        self._thread = threading.Thread(target=self._run, name="tally-metric-sender",
                                        daemon=True)
        self._thread.start()

    # -- the training loop's side -------------------------------------------

    def log_metric(self, key, value, step=None, timestamp=None, _now=_time_ns):
        # The hot path: plain floats and ints pass the type checks; anything
        # else goes through the converters (numpy scalars, bools, bad input).
        # The int64 bounds are literals and the clock a default argument:
        # constants and locals are the cheapest loads in CPython.
        if type(value) is not float:
            value = as_float(value)
        if step is None:
            step = 0
        elif (type(step) is not int or step >= 9223372036854775808
              or step < -9223372036854775808):
            step = as_int64(step, "step")
        if timestamp is None:
            timestamp = _now() // 1000000
        elif (type(timestamp) is not int or timestamp >= 9223372036854775808
              or timestamp < -9223372036854775808):
            timestamp = as_int64(timestamp, "timestamp")
        lock = self._lock
        lock.acquire()
        rows = self._rows.get(key)
        if rows is None or self._n >= self._limit:
            lock.release()
            return self._log_slow(key, step, timestamp, value)
        rows += (step, timestamp, value)
        self._n += 1
        lock.release()

    def _log_slow(self, key, step, timestamp, value):
        """log_metric for a new key, a full batch or a full buffer."""
        if key not in self._rows:
            check_key(key)
        with self._lock:
            self._make_room()
            self._rows.setdefault(key, []).extend((step, timestamp, value))
            self._n += 1

    def log_metrics(self, metrics, step=None, timestamp=None):
        """Several metrics at one step and one timestamp (MLflow's
        log_metrics). A bad value raises after the good ones before it."""
        if timestamp is None:
            timestamp = _time_ns() // 1_000_000
        for key, value in metrics.items():
            self.log_metric(key, value, step, timestamp)

    def log_series(self, key, values, steps=None, timestamps=None):
        """A whole column at once (bulk loading): values, with steps
        (default 0..n-1) and timestamps (default now) of the same length.
        Taken as array chunks: no Python object per point."""
        check_key(key)
        vals = array("d", values)
        n = len(vals)
        st = array("q", range(n) if steps is None else steps)
        if timestamps is None:
            ts = array("q", [_time_ns() // 1_000_000]) * n
        else:
            ts = array("q", timestamps)
        if len(st) != n or len(ts) != n:
            raise ValueError("values, steps and timestamps must have the same length")
        off = 0
        while off < n:
            with self._lock:
                self._make_room()
                end = min(n, off + max(1, self._batch_points - self._n))
                whole = off == 0 and end == n
                self._chunks.setdefault(key, []).append(
                    (st, ts, vals) if whole else (st[off:end], ts[off:end], vals[off:end]))
                self._n += end - off
                self._set_limit()
            off = end

    def flush(self, timeout=None):
        """Waits until every point accepted so far is acknowledged (or
        reported). Returns True, or False if timeout (seconds) passed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cv:
            self._hand_off()
            target = self._handed
            while self._done < target:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cv.wait(left)
        return True

    def close(self, timeout=60.0):
        """Flushes (up to timeout seconds of retrying), stops the sender.
        Points still unsent then are counted in dropped_points and reported
        in errors. Idempotent."""
        ok = self.flush(timeout)
        with self._cv:
            if not ok:
                self._abandon = True
            self._closing = True
            self._cv.notify_all()
        self._thread.join()
        self._conn.close()
        return ok and not self.errors

    @property
    def buffered_points(self):
        with self._lock:
            return self._n + self._pending

    @property
    def _accepted(self):
        with self._lock:
            return self._handed + self._n

    # -- internals (called with the lock held unless said otherwise) ---------

    def _set_limit(self):
        """_limit = how many points _rows/_chunks may hold before the hot
        path must stop: a full batch, or the room left in the buffer."""
        self._limit = max(0, min(self._batch_points, self._max_points - self._pending))

    def _make_room(self):
        """Before taking a point: hands off a full batch and waits while the
        buffer is full (invariant 1)."""
        if self._closing:
            raise RuntimeError("the metric logger is closed")
        if self._n >= self._batch_points:
            self._hand_off()
        if self._n + self._pending < self._max_points:
            return
        self._hand_off()
        deadline = None if self._block_timeout is None else time.monotonic() + self._block_timeout
        while self._n + self._pending >= self._max_points:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise BufferFull(f"{self._pending} points wait for the server; the buffer "
                                 f"holds at most {self._max_points}")
            self._cv.wait(left)
            self._hand_off()

    def _hand_off(self):
        if self._n:
            self._queue.append((self._rows, self._chunks, self._n))
            self._pending += self._n
            self._handed += self._n
            self._rows = {}
            self._chunks = {}
            self._n = 0
            self._set_limit()
            self._cv.notify_all()

    def _run(self):
        while True:
            with self._cv:
                while not self._queue and not self._closing:
                    if not self._cv.wait(self._flush_interval):
                        self._hand_off()
                if not self._queue:
                    return
                rows, chunks, n = self._queue.popleft()
            self._send_batch(rows, chunks)

    def _columns(self, rows, chunks):
        """Every (key, steps, timestamps, values) of a batch, as arrays."""
        for key, flat in rows.items():
            yield key, array("q", flat[0::3]), array("q", flat[1::3]), array("d", flat[2::3])
        for key, parts in chunks.items():
            for st, ts, vals in parts:
                yield key, st, ts, vals

    def _frames(self, rows, chunks):
        """A batch as frames of at most MAX_FRAME_BYTES of columns: yields
        (records, points). A key may have several records in one frame."""
        cap = max(1, _frame.MAX_FRAME_BYTES // _frame.BYTES_PER_POINT)
        records, used = [], 0
        for key, st, ts, vals in self._columns(rows, chunks):
            kb = key.encode()
            off, n = 0, len(vals)
            while off < n:
                take = min(n - off, cap - used)
                if off == 0 and take == n:
                    records.append((self._rid, kb, st, ts, vals))
                else:
                    end = off + take
                    records.append((self._rid, kb, st[off:end], ts[off:end], vals[off:end]))
                off += take
                used += take
                if used >= cap:
                    yield records, used
                    records, used = [], 0
        if records:
            yield records, used

    def _send_batch(self, rows, chunks):
        for records, n in self._frames(rows, chunks):
            body = _frame.encode(records)
            failure = None
            try:
                self._conn.request("POST", INGEST_PATH, body, "application/octet-stream",
                                   max_attempts=1 << 30, stop=lambda: self._abandon)
            except TallyError as e:
                failure = e
                log.error("tally_client: %d metric points of run %s not stored: %s", n,
                          self.run_id, e)
            with self._cv:
                if failure is None:
                    self.sent_points += n
                else:
                    self.errors.append(failure)
                    self.dropped_points += n
                self._pending -= n
                self._done += n
                self._set_limit()
                self._cv.notify_all()
