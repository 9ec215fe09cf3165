"""mlflow_stores.py — build MLflow tracking stores, byte for byte in the layouts
MLflow writes them, for the import tests (not a test itself).

* write_file_store(root, data): MLflow's FileStore (mlflow/store/tracking/
  file_store.py): <exp>/meta.yaml (yaml.safe_dump of the experiment's fields,
  as MLflow's write_yaml does), <exp>/tags/<key>, <exp>/<run>/meta.yaml (run
  info with the status as its RunStatus number, "tags: []", deleted_time once
  deleted), metrics/<key> lines "timestamp value step" with Python's float
  text (nan, inf, -inf), params/<key> and tags/<key> holding the value
  without a newline, artifacts/; deleted experiments under .trash/.
* write_sqlite_db(path, data): the tables of MLflow's SQLAlchemy store with
  its column types and keys; NaN stored as value 0 with is_nan 1 and +-inf as
  +-1.7976931348623157e308, as SqlAlchemyStore does.
* sample_data(): experiments and runs covering what import must keep: NaN and
  +-inf values, duplicate steps, an old two-field metric line, nested keys,
  long param and tag values, deleted runs, a deleted experiment, a large
  random-style experiment id, artifacts in subdirectories.
* sample_registry(data): registered models over those runs: version numbers
  with a gap (a deleted version), every stage, statuses, tags (nested keys,
  multi-line values), aliases, a models:/ source, a model without versions.
  write_file_store(..., models=) writes them as MLflow's registry FileStore
  does (mlflow/store/model_registry/file_store.py): models/<name>/meta.yaml,
  tags/<key>, aliases/<alias> holding the version, version-<n>/meta.yaml
  (current_stage Deleted_Internal once deleted, the directory kept) and
  version-<n>/tags/<key>; write_sqlite_db(..., models=) into the registry
  tables, a deleted version redacted and without tags as SqlModelVersion
  delete leaves it.
"""

import os
import random
import sqlite3
import sys

import yaml  # python3-yaml (Debian); MLflow itself writes these files with PyYAML

STATUS_NUM = {"RUNNING": 1, "SCHEDULED": 2, "FINISHED": 3, "FAILED": 4, "KILLED": 5}
DBL_MAX = sys.float_info.max


def _hex_id(rng):
    return "%032x" % rng.getrandbits(128)


def sample_data(seed=7, n_bulk_runs=0, bulk_points=0):
    """A dict: experiments (list), each with runs (list)."""
    rng = random.Random(seed)
    t0 = 1_700_000_000_000
    exps = [
        {"id": "0", "name": "Default", "lifecycle": "active", "created": t0, "updated": t0,
         "tags": {}, "runs": []},
        {"id": "1", "name": "vision baseline", "lifecycle": "active", "created": t0 + 5,
         "updated": t0 + 9, "tags": {"team": "vision", "mlflow.note.content": "two\nlines"},
         "runs": []},
        {"id": "482793114329614521", "name": "big id", "lifecycle": "active",
         "created": t0 + 10, "updated": t0 + 10, "tags": {}, "runs": []},
        {"id": "3", "name": "thrown away", "lifecycle": "deleted", "created": t0 + 20,
         "updated": t0 + 30, "tags": {"why": "bad data"}, "runs": []},
    ]

    def run(exp, name, status="FINISHED", deleted=False, metrics=None, params=None, tags=None,
            artifacts=None, end=True):
        r = {"id": _hex_id(rng), "name": name, "user": "alice", "status": status,
             "start": t0 + 100 + len(exp["runs"]), "end": (t0 + 5000) if end else None,
             "lifecycle": "deleted" if deleted else "active",
             "deleted_time": (t0 + 9000) if deleted else None,
             "metrics": metrics or {}, "params": params or {},
             "tags": dict(tags or {}), "artifacts": artifacts or {}}
        r["tags"].setdefault("mlflow.runName", name)
        r["tags"].setdefault("mlflow.user", "alice")
        exp["runs"].append(r)
        return r

    curve = [(t0 + 1000 + i, 1.0 / (i + 1), i) for i in range(20000)]
    run(exps[1], "special values", metrics={
        "loss": [(t0 + 1, float("nan"), 0), (t0 + 2, float("inf"), 1),
                 (t0 + 3, float("-inf"), 2), (t0 + 4, 0.1, 3), (t0 + 5, -0.0, 4),
                 (t0 + 6, 1e-310, 5), (t0 + 7, 1.7976931348623157e308, 6)],
        "dup/steps": [(t0 + 1, 0.5, 1), (t0 + 2, 0.6, 1), (t0 + 3, 0.7, 1), (t0 + 1, 0.4, 0)],
        "long curve": curve,
    }, params={"lr": "0.001", "nested/param": "x", "long": "p" * 6000,
               "longer": "q" * 9000, "empty": "", "unicode": "λ → ü"},
        tags={"note": "t" * 8000, "multi": "a\nb\n"},
        artifacts={"model/MLmodel": b"flavors: {}\n", "model/data/w.bin": bytes(range(256)) * 40,
                   "readme.txt": b"hello"})
    run(exps[1], "deleted run", deleted=True,
        metrics={"acc": [(t0 + 1, 0.9, 0), (t0 + 2, 0.95, 1)]}, params={"a": "1"})
    run(exps[1], "still running", status="RUNNING", end=False,
        metrics={"acc": [(t0 + 1, 0.1, 0)]})
    run(exps[0], "in default", status="FAILED", metrics={"m": [(t0, 3.0, -5), (t0, 4.0, 7)]})
    run(exps[2], "under big id", status="KILLED", metrics={"x": [(t0, 1.0, 0)]},
        artifacts={"a.txt": b"A"})
    run(exps[3], "in deleted experiment", deleted=True,
        metrics={"y": [(t0, 2.0, 0), (t0 + 1, 2.5, 1)]})
    for i in range(n_bulk_runs):
        run(exps[2], f"bulk {i}", metrics={
            f"m{k}": [(t0 + s, rng.random(), s) for s in range(bulk_points)] for k in range(2)},
            params={"i": str(i)})
    return {"experiments": exps}


def sample_registry(data):
    """A list of registered models (dicts) whose versions name runs of data."""
    t0 = 1_700_100_000_000
    runs = [r for e in data["experiments"] for r in e["runs"]]

    def version(n, stage, run, tags=None, status="READY", source=None, desc=None):
        return {"version": n, "created": t0 + 10 * n, "updated": t0 + 10 * n + 3,
                "stage": stage, "source": source or "runs:/%s/model" % run["id"],
                "run_id": run["id"], "run_link": "http://mlflow.example/#/runs/" + run["id"],
                "status": status, "description": desc, "tags": tags or {},
                "user_id": "alice"}

    return [
        {"name": "resnet 50", "created": t0, "updated": t0 + 99,
         "description": "image model\nsecond line",
         "tags": {"team": "vision", "nested/key": "v", "long": "L" * 3000},
         "versions": [
             version(1, "Archived", runs[0], tags={"v": "1"}, desc="first"),
             version(2, "Deleted_Internal", runs[1]),
             version(3, "Production", runs[0], tags={"validated": "yes", "a/b": "c\nd"}),
             version(4, "Staging", runs[2], status="PENDING_REGISTRATION"),
             version(5, "None", runs[3], status="FAILED_REGISTRATION"),
             version(7, "Staging", runs[4], source="models:/resnet 50/3"),
         ],
         "aliases": {"champion": 3, "challenger": 7}},
        {"name": "empty", "created": t0 + 1, "updated": t0 + 1, "description": None,
         "tags": {}, "versions": [], "aliases": {}},
    ]


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def _write_yaml(path, d):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(d, f, default_flow_style=False, allow_unicode=True)


def file_uri(path):
    from pathlib import Path
    return Path(os.path.abspath(path)).as_uri()


def write_file_registry(root, models):
    """MLflow's registry FileStore under root/models."""
    for m in models:
        mdir = os.path.join(root, "models", m["name"])
        _write_yaml(os.path.join(mdir, "meta.yaml"), {
            "aliases": {a: str(v) for a, v in m["aliases"].items()},
            "creation_timestamp": m["created"], "deployment_job_id": None,
            "description": m["description"], "last_updated_timestamp": m["updated"],
            "name": m["name"]})
        for k, v in m["tags"].items():
            _write(os.path.join(mdir, "tags", k), v)
        for a, v in m["aliases"].items():
            _write(os.path.join(mdir, "aliases", a), str(v))
        for v in m["versions"]:
            vdir = os.path.join(mdir, "version-%d" % v["version"])
            storage = v["source"]
            if v["source"].startswith("models:/"):
                storage = "runs:/%s/model" % v["run_id"]
            _write_yaml(os.path.join(vdir, "meta.yaml"), {
                "aliases": [a for a, n in m["aliases"].items() if n == v["version"]],
                "creation_timestamp": v["created"], "current_stage": v["stage"],
                "description": v["description"],
                "last_updated_timestamp": v["updated"], "name": m["name"],
                "run_id": v["run_id"], "run_link": v["run_link"], "source": v["source"],
                "status": v["status"], "status_message": None,
                "storage_location": storage, "user_id": v["user_id"],
                "version": v["version"]})
            for k, val in v["tags"].items():
                _write(os.path.join(vdir, "tags", k), val)


def write_file_store(root, data, old_style_line=True, models=None):
    """MLflow's file store under root (the mlruns directory); models: a
    sample_registry() list written under root/models."""
    os.makedirs(root, exist_ok=True)
    if models:
        write_file_registry(root, models)
    for e in data["experiments"]:
        edir = os.path.join(root, ".trash" if e["lifecycle"] == "deleted" else "", e["id"])
        _write_yaml(os.path.join(edir, "meta.yaml"), {
            "artifact_location": file_uri(os.path.join(root, e["id"])),
            "creation_time": e["created"], "experiment_id": e["id"],
            "last_update_time": e["updated"], "lifecycle_stage": e["lifecycle"],
            "name": e["name"]})
        for k, v in e["tags"].items():
            _write(os.path.join(edir, "tags", k), v)
        for r in e["runs"]:
            rdir = os.path.join(edir, r["id"])
            info = {"artifact_uri": file_uri(os.path.join(root, e["id"], r["id"], "artifacts")),
                    "end_time": r["end"], "entry_point_name": "", "experiment_id": e["id"],
                    "lifecycle_stage": r["lifecycle"], "run_id": r["id"],
                    "run_name": r["name"], "run_uuid": r["id"], "source_name": "",
                    "source_type": 4, "source_version": "", "start_time": r["start"],
                    "status": STATUS_NUM[r["status"]], "tags": [], "user_id": r["user"]}
            if r["deleted_time"] is not None:
                info["deleted_time"] = r["deleted_time"]
            _write_yaml(os.path.join(rdir, "meta.yaml"), info)
            os.makedirs(os.path.join(rdir, "metrics"), exist_ok=True)
            os.makedirs(os.path.join(rdir, "params"), exist_ok=True)
            os.makedirs(os.path.join(rdir, "tags"), exist_ok=True)
            os.makedirs(os.path.join(rdir, "artifacts"), exist_ok=True)
            for k, pts in r["metrics"].items():
                lines = []
                for i, (ts, v, step) in enumerate(pts):
                    # MLflow before 1.0 wrote "timestamp value" (step 0)
                    if old_style_line and step == 0 and i == 0 and k == "m":
                        lines.append("%s %s\n" % (ts, v))
                    else:
                        lines.append("%s %s %s\n" % (ts, v, step))
                _write(os.path.join(rdir, "metrics", k), "".join(lines))
            for k, v in r["params"].items():
                _write(os.path.join(rdir, "params", k), v)
            for k, v in r["tags"].items():
                _write(os.path.join(rdir, "tags", k), v)
            for rel, b in r["artifacts"].items():
                p = os.path.join(rdir, "artifacts", rel)
                os.makedirs(os.path.dirname(p), exist_ok=True)
                with open(p, "wb") as f:
                    f.write(b)


SQL_SCHEMA = """
CREATE TABLE experiments (
  experiment_id INTEGER NOT NULL, name VARCHAR(256) NOT NULL,
  artifact_location VARCHAR(256), lifecycle_stage VARCHAR(32),
  creation_time BIGINT, last_update_time BIGINT,
  CONSTRAINT experiment_pk PRIMARY KEY (experiment_id), UNIQUE (name),
  CONSTRAINT experiments_lifecycle_stage CHECK (lifecycle_stage IN ('active', 'deleted')));
CREATE TABLE experiment_tags (
  key VARCHAR(250) NOT NULL, value VARCHAR(5000), experiment_id INTEGER NOT NULL,
  CONSTRAINT experiment_tag_pk PRIMARY KEY (key, experiment_id),
  FOREIGN KEY(experiment_id) REFERENCES experiments (experiment_id));
CREATE TABLE runs (
  run_uuid VARCHAR(32) NOT NULL, name VARCHAR(250), source_type VARCHAR(20),
  source_name VARCHAR(500), entry_point_name VARCHAR(50), user_id VARCHAR(256),
  status VARCHAR(9), start_time BIGINT, end_time BIGINT, source_version VARCHAR(50),
  lifecycle_stage VARCHAR(20), artifact_uri VARCHAR(200), experiment_id INTEGER,
  deleted_time BIGINT,
  CONSTRAINT run_pk PRIMARY KEY (run_uuid),
  CONSTRAINT source_type CHECK (source_type IN ('NOTEBOOK', 'JOB', 'LOCAL', 'UNKNOWN', 'PROJECT')),
  CONSTRAINT runs_lifecycle_stage CHECK (lifecycle_stage IN ('active', 'deleted')),
  CONSTRAINT status CHECK (status IN ('SCHEDULED', 'FAILED', 'FINISHED', 'RUNNING', 'KILLED')),
  FOREIGN KEY(experiment_id) REFERENCES experiments (experiment_id));
CREATE TABLE metrics (
  key VARCHAR(250) NOT NULL, value FLOAT NOT NULL, timestamp BIGINT NOT NULL,
  run_uuid VARCHAR(32) NOT NULL, step BIGINT DEFAULT '0' NOT NULL,
  is_nan BOOLEAN DEFAULT '0' NOT NULL,
  CONSTRAINT metric_pk PRIMARY KEY (key, timestamp, step, run_uuid, value, is_nan),
  FOREIGN KEY(run_uuid) REFERENCES runs (run_uuid));
CREATE INDEX index_metrics_run_uuid ON metrics (run_uuid);
CREATE TABLE latest_metrics (
  key VARCHAR(250) NOT NULL, value FLOAT NOT NULL, timestamp BIGINT, step BIGINT NOT NULL,
  is_nan BOOLEAN NOT NULL, run_uuid VARCHAR(32) NOT NULL,
  CONSTRAINT latest_metric_pk PRIMARY KEY (key, run_uuid),
  FOREIGN KEY(run_uuid) REFERENCES runs (run_uuid));
CREATE TABLE params (
  key VARCHAR(250) NOT NULL, value VARCHAR(8000) NOT NULL, run_uuid VARCHAR(32) NOT NULL,
  CONSTRAINT param_pk PRIMARY KEY (key, run_uuid),
  FOREIGN KEY(run_uuid) REFERENCES runs (run_uuid));
CREATE TABLE tags (
  key VARCHAR(250) NOT NULL, value VARCHAR(8000), run_uuid VARCHAR(32) NOT NULL,
  CONSTRAINT tag_pk PRIMARY KEY (key, run_uuid),
  FOREIGN KEY(run_uuid) REFERENCES runs (run_uuid));
CREATE TABLE registered_models (
  name VARCHAR(256) NOT NULL, creation_time BIGINT, last_updated_time BIGINT,
  description VARCHAR(5000), CONSTRAINT registered_model_pk PRIMARY KEY (name), UNIQUE (name));
CREATE TABLE model_versions (
  name VARCHAR(256) NOT NULL, version INTEGER NOT NULL, creation_time BIGINT,
  last_updated_time BIGINT, description VARCHAR(5000), user_id VARCHAR(256),
  current_stage VARCHAR(20), source VARCHAR(500), run_id VARCHAR(32), status VARCHAR(20),
  status_message VARCHAR(500), run_link VARCHAR(500), storage_location VARCHAR(500),
  CONSTRAINT model_version_pk PRIMARY KEY (name, version),
  FOREIGN KEY(name) REFERENCES registered_models (name) ON UPDATE cascade);
CREATE TABLE registered_model_tags (
  key VARCHAR(250) NOT NULL, value VARCHAR(5000), name VARCHAR(256) NOT NULL,
  CONSTRAINT registered_model_tag_pk PRIMARY KEY (key, name),
  FOREIGN KEY(name) REFERENCES registered_models (name) ON UPDATE cascade);
CREATE TABLE model_version_tags (
  key VARCHAR(250) NOT NULL, value VARCHAR(5000), name VARCHAR(256) NOT NULL,
  version INTEGER NOT NULL,
  CONSTRAINT model_version_tag_pk PRIMARY KEY (key, name, version),
  FOREIGN KEY(name, version) REFERENCES model_versions (name, version) ON UPDATE cascade);
CREATE TABLE registered_model_aliases (
  alias VARCHAR(256) NOT NULL, version INTEGER NOT NULL, name VARCHAR(256) NOT NULL,
  CONSTRAINT registered_model_alias_pk PRIMARY KEY (name, alias),
  FOREIGN KEY(name) REFERENCES registered_models (name) ON DELETE cascade ON UPDATE cascade);
"""


def sql_value(v):
    """(value, is_nan) as SqlAlchemyStore stores a metric value."""
    if v != v:
        return 0.0, 1
    if v == float("inf"):
        return DBL_MAX, 0
    if v == float("-inf"):
        return -DBL_MAX, 0
    return v, 0


def write_sql_registry(db, models):
    """The registry tables of MLflow's SQL store."""
    for m in models:
        db.execute("INSERT INTO registered_models VALUES (?,?,?,?)",
                   (m["name"], m["created"], m["updated"], m["description"]))
        for k, v in m["tags"].items():
            db.execute("INSERT INTO registered_model_tags VALUES (?,?,?)", (k, v, m["name"]))
        for v in m["versions"]:
            deleted = v["stage"] == "Deleted_Internal"
            src = "REDACTED-SOURCE-PATH" if deleted else v["source"]
            db.execute("INSERT INTO model_versions(name, version, creation_time, "
                       "last_updated_time, description, user_id, current_stage, source, "
                       "run_id, status, status_message, run_link, storage_location) "
                       "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                       (m["name"], v["version"], v["created"], v["updated"], v["description"],
                        v["user_id"], v["stage"], src,
                        "REDACTED-RUN-ID" if deleted else v["run_id"], v["status"], None,
                        "REDACTED-RUN-LINK" if deleted else v["run_link"],
                        "runs:/%s/model" % v["run_id"]))
            for k, val in ({} if deleted else v["tags"]).items():
                db.execute("INSERT INTO model_version_tags VALUES (?,?,?,?)",
                           (k, val, m["name"], v["version"]))
        for a, n in m["aliases"].items():
            db.execute("INSERT INTO registered_model_aliases VALUES (?,?,?)", (a, n, m["name"]))


def write_sqlite_db(path, data, artifact_root, models=None):
    """MLflow's SQL store in a SQLite file; run artifacts under artifact_root
    as `mlflow server --artifacts-destination` keeps them
    (mlflow-artifacts:/<exp>/<run>/artifacts); models: a sample_registry()
    list in the registry tables."""
    db = sqlite3.connect(path)
    db.executescript(SQL_SCHEMA)
    if models:
        write_sql_registry(db, models)
    for e in data["experiments"]:
        db.execute("INSERT INTO experiments VALUES (?,?,?,?,?,?)",
                   (int(e["id"]), e["name"], "mlflow-artifacts:/" + e["id"], e["lifecycle"],
                    e["created"], e["updated"]))
        for k, v in e["tags"].items():
            db.execute("INSERT INTO experiment_tags VALUES (?,?,?)", (k, v, int(e["id"])))
        for r in e["runs"]:
            uri = "mlflow-artifacts:/%s/%s/artifacts" % (e["id"], r["id"])
            db.execute("INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                       (r["id"], r["name"], "UNKNOWN", "", "", r["user"], r["status"],
                        r["start"], r["end"], "", r["lifecycle"], uri, int(e["id"]),
                        r["deleted_time"]))
            for k, pts in r["metrics"].items():
                for ts, v, step in pts:
                    sv, nan = sql_value(v)
                    db.execute("INSERT OR IGNORE INTO metrics VALUES (?,?,?,?,?,?)",
                               (k, sv, ts, r["id"], step, nan))
            for k, v in r["params"].items():
                db.execute("INSERT INTO params VALUES (?,?,?)", (k, v, r["id"]))
            for k, v in r["tags"].items():
                db.execute("INSERT INTO tags VALUES (?,?,?)", (k, v, r["id"]))
            for rel, b in r["artifacts"].items():
                p = os.path.join(artifact_root, e["id"], r["id"], "artifacts", rel)
                os.makedirs(os.path.dirname(p), exist_ok=True)
                with open(p, "wb") as f:
                    f.write(b)
    db.commit()
    db.close()
