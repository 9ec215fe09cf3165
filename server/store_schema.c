/*
 * store_schema.c — the SQLite schema of the metadata store and its numbered
 * migrations.
 *
 * Rules:
 *  (1) Migrations are append-only: a released migration is never edited;
 *      changes are new numbers. tally_schema_version records each applied
 *      number, so opening is idempotent and an old database is upgraded in
 *      one IMMEDIATE transaction (all or nothing).
 *  (2) Every table is STRICT (SQLite 3.37+): a value of the wrong type is an
 *      error, never silently stored.
 *  (3) Foreign keys are declared and enforced (PRAGMA foreign_keys=ON per
 *      connection); nothing is ever hard-deleted except tags, so the
 *      references only guard against our own bugs.
 *  (4) A database whose recorded version is above what this build knows is
 *      refused (a newer Tally wrote it).
 *  (5) Numbers are reserved per area so work on separate areas never
 *      collides: 2 model registry, 3 webhooks, 4 users/permissions/tokens
 *      and the audit log, 5 logged models; later areas take 6 and up. The
 *      array stays sorted by number; a gap is allowed, and is filled later
 *      safely: the loop applies, in order, every listed number that has no
 *      row in tally_schema_version (not only those above the highest).
 *
 * Tables (migration 1):
 *
 *   experiments      experiment_id INTEGER PK (0 = Default), name UNIQUE,
 *                    artifact_location, lifecycle_stage, creation_time,
 *                    last_update_time (ms)
 *   experiment_tags  (experiment_id, key) PK, value
 *   runs             run_key INTEGER PK (internal), run_uuid UNIQUE (32 hex),
 *                    name, experiment_id, user_id,
 *                    status (RunStatus name), start_time, end_time (NULL
 *                    while unset), lifecycle_stage, deleted_time, artifact_uri
 *   params           (run_key, key) PK, value — write-once
 *   tags             (run_key, key) PK, value
 *   datasets         dataset_uuid PK, experiment_id, name, digest,
 *                    source_type, source, schema, profile
 *   run_inputs       (run_key, dataset_uuid) PK, seq (link order)
 *   input_tags       (run_key, dataset_uuid, key) PK, value
 *
 * Tables (migration 5, logged models: store_logged_models_sqlite.c):
 *
 *   logged_models        model_id PK, experiment_id, name, artifact_location,
 *                        creation/last_updated timestamps (ms), status
 *                        (LoggedModelStatus number), lifecycle_stage,
 *                        model_type, source_run_id, status_message
 *   logged_model_params  (model_id, key) PK, value — write-once
 *   logged_model_tags    (model_id, key) PK, value
 *   run_outputs          (run_key, model_id, step) PK, seq — runs/outputs
 * Migration 7 (cli): import_experiments (source, source_experiment_id) PK
 * -> experiment_id; import_runs source_run_id PK -> run_uuid, state
 * ('metadata' | 'done'), imported_time — the ledger of store_cli.h.
 * Migration 9 (importreg): import_models (source, name) PK, imported_time —
 * registered models imported whole (store_registry_import.h).
 *
 * Indexes serve runs/search: runs by experiment (and lifecycle, start_time),
 * params and tags by (key, value) so a filter `params.k = 'v'` is an index
 * range, not a scan; (run_key, key) primary keys serve per-run lookups
 * (ordering by a param or tag, run data for a page). Child tables key runs
 * by the integer run_key, not the 32-byte uuid: joins and IN-lists compare
 * integers, indexes are a third of the size, and a run row is one rowid
 * lookup away (10,000-run searches spend their time there).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "store.h"
#include "store_internal.h"

typedef struct migration {
    int version;             /* 1, 2, ... in order */
    const char *description; /* recorded in tally_schema_version */
    const char *sql;         /* one or more statements */
} migration;

static const migration migrations[] = {
    {1, "experiments, runs, params, tags, datasets",
     "CREATE TABLE experiments ("
     "  experiment_id INTEGER PRIMARY KEY,"
     "  name TEXT NOT NULL UNIQUE,"
     "  artifact_location TEXT NOT NULL,"
     "  lifecycle_stage TEXT NOT NULL CHECK (lifecycle_stage IN ('active', 'deleted')),"
     "  creation_time INTEGER NOT NULL,"
     "  last_update_time INTEGER NOT NULL"
     ") STRICT;"
     "CREATE TABLE experiment_tags ("
     "  experiment_id INTEGER NOT NULL REFERENCES experiments(experiment_id),"
     "  key TEXT NOT NULL,"
     "  value TEXT NOT NULL,"
     "  PRIMARY KEY (experiment_id, key)"
     ") STRICT, WITHOUT ROWID;"
     "CREATE TABLE runs ("
     "  run_key INTEGER PRIMARY KEY,"
     "  run_uuid TEXT NOT NULL UNIQUE,"
     "  name TEXT NOT NULL,"
     "  experiment_id INTEGER NOT NULL REFERENCES experiments(experiment_id),"
     "  user_id TEXT NOT NULL,"
     "  status TEXT NOT NULL CHECK (status IN"
     "    ('RUNNING', 'SCHEDULED', 'FINISHED', 'FAILED', 'KILLED')),"
     "  start_time INTEGER NOT NULL,"
     "  end_time INTEGER,"
     "  lifecycle_stage TEXT NOT NULL CHECK (lifecycle_stage IN ('active', 'deleted')),"
     "  deleted_time INTEGER,"
     "  artifact_uri TEXT NOT NULL"
     ") STRICT;"
     "CREATE INDEX runs_by_experiment ON runs(experiment_id, lifecycle_stage, start_time);"
     "CREATE TABLE params ("
     "  run_key INTEGER NOT NULL REFERENCES runs(run_key),"
     "  key TEXT NOT NULL,"
     "  value TEXT NOT NULL,"
     "  PRIMARY KEY (run_key, key)"
     ") STRICT, WITHOUT ROWID;"
     "CREATE INDEX params_by_key_value ON params(key, value);"
     "CREATE TABLE tags ("
     "  run_key INTEGER NOT NULL REFERENCES runs(run_key),"
     "  key TEXT NOT NULL,"
     "  value TEXT NOT NULL,"
     "  PRIMARY KEY (run_key, key)"
     ") STRICT, WITHOUT ROWID;"
     "CREATE INDEX tags_by_key_value ON tags(key, value);"
     "CREATE TABLE datasets ("
     "  dataset_uuid TEXT PRIMARY KEY,"
     "  experiment_id INTEGER NOT NULL REFERENCES experiments(experiment_id),"
     "  name TEXT NOT NULL,"
     "  digest TEXT NOT NULL,"
     "  source_type TEXT NOT NULL,"
     "  source TEXT NOT NULL,"
     "  schema TEXT,"
     "  profile TEXT,"
     "  UNIQUE (experiment_id, name, digest)"
     ") STRICT;"
     "CREATE INDEX datasets_by_name_digest ON datasets(name, digest);"
     "CREATE TABLE run_inputs ("
     "  run_key INTEGER NOT NULL REFERENCES runs(run_key),"
     "  dataset_uuid TEXT NOT NULL REFERENCES datasets(dataset_uuid),"
     "  seq INTEGER NOT NULL,"
     "  PRIMARY KEY (run_key, dataset_uuid)"
     ") STRICT, WITHOUT ROWID;"
     "CREATE INDEX run_inputs_by_dataset ON run_inputs(dataset_uuid);"
     "CREATE TABLE input_tags ("
     "  run_key INTEGER NOT NULL,"
     "  dataset_uuid TEXT NOT NULL,"
     "  key TEXT NOT NULL,"
     "  value TEXT NOT NULL,"
     "  PRIMARY KEY (run_key, dataset_uuid, key),"
     "  FOREIGN KEY (run_key, dataset_uuid) REFERENCES run_inputs(run_key, dataset_uuid)"
     ") STRICT, WITHOUT ROWID;"
     "CREATE INDEX input_tags_by_key_value ON input_tags(key, value);"},
    /* 2: the model registry (store_registry_sqlite.c has the table diagram).
     * Versions search (§5.4) is served by model_versions_by_model_* for a
     * name filter (one model's visible versions already in the wanted
     * order: no sort, OFFSET and LIMIT walk the index) and by
     * model_versions_by_updated/_by_created otherwise. The indexes are
     * partial (visible versions only): the query repeats their condition. */
    {2, "model registry: registered models, versions, tags, aliases",
     "CREATE TABLE registered_models ("
     "  model_key INTEGER PRIMARY KEY,"
     "  name TEXT NOT NULL UNIQUE,"
     "  creation_time INTEGER NOT NULL,"
     "  last_updated_time INTEGER NOT NULL,"
     "  description TEXT NOT NULL,"
     "  deployment_job_id TEXT,"
     "  max_version INTEGER NOT NULL"
     ") STRICT;"
     "CREATE INDEX registered_models_by_updated ON registered_models(last_updated_time);"
     "CREATE TABLE registered_model_tags ("
     "  model_key INTEGER NOT NULL REFERENCES registered_models(model_key),"
     "  key TEXT NOT NULL,"
     "  value TEXT NOT NULL,"
     "  PRIMARY KEY (model_key, key)"
     ") STRICT, WITHOUT ROWID;"
     "CREATE INDEX registered_model_tags_by_key_value ON registered_model_tags(key, value);"
     "CREATE TABLE model_versions ("
     "  version_key INTEGER PRIMARY KEY,"
     "  model_key INTEGER NOT NULL REFERENCES registered_models(model_key),"
     "  version INTEGER NOT NULL,"
     "  creation_time INTEGER NOT NULL,"
     "  last_updated_time INTEGER NOT NULL,"
     "  description TEXT NOT NULL,"
     "  current_stage TEXT NOT NULL CHECK (current_stage IN"
     "    ('None', 'Staging', 'Production', 'Archived', 'Deleted_Internal')),"
     "  source TEXT NOT NULL,"
     "  run_id TEXT NOT NULL,"
     "  run_link TEXT NOT NULL,"
     "  model_id TEXT,"
     "  storage_location TEXT,"
     "  status TEXT NOT NULL,"
     "  UNIQUE (model_key, version)"
     ") STRICT;"
     "CREATE INDEX model_versions_by_model_updated ON model_versions(model_key,"
     "  last_updated_time, version) WHERE current_stage != 'Deleted_Internal';"
     "CREATE INDEX model_versions_by_model_created ON model_versions(model_key,"
     "  creation_time, version) WHERE current_stage != 'Deleted_Internal';"
     "CREATE INDEX model_versions_by_updated ON model_versions(last_updated_time)"
     "  WHERE current_stage != 'Deleted_Internal';"
     "CREATE INDEX model_versions_by_created ON model_versions(creation_time)"
     "  WHERE current_stage != 'Deleted_Internal';"
     "CREATE INDEX model_versions_by_run ON model_versions(run_id);"
     "CREATE INDEX model_versions_by_model_stage ON model_versions(model_key, current_stage,"
     "  version);"
     "CREATE TABLE model_version_tags ("
     "  version_key INTEGER NOT NULL REFERENCES model_versions(version_key),"
     "  key TEXT NOT NULL,"
     "  value TEXT NOT NULL,"
     "  PRIMARY KEY (version_key, key)"
     ") STRICT, WITHOUT ROWID;"
     "CREATE INDEX model_version_tags_by_key_value ON model_version_tags(key, value);"
     "CREATE TABLE registered_model_aliases ("
     "  model_key INTEGER NOT NULL REFERENCES registered_models(model_key),"
     "  alias TEXT NOT NULL,"
     "  version_key INTEGER NOT NULL REFERENCES model_versions(version_key),"
     "  PRIMARY KEY (model_key, alias)"
     ") STRICT, WITHOUT ROWID;"
     "CREATE INDEX registered_model_aliases_by_version ON registered_model_aliases(version_key);"},
    /* 3: webhooks and their durable delivery queue (store_webhooks.h).
     * webhook_events holds lower-case entity/action names in the order
     * given (seq); webhook_deliveries is the queue and the delivery log's
     * head row (seq = queue order), webhook_attempts one row per attempt. */
    {3, "webhooks, webhook deliveries and attempts",
     "CREATE TABLE webhooks ("
     "  webhook_id TEXT PRIMARY KEY,"
     "  name TEXT NOT NULL,"
     "  description TEXT NOT NULL,"
     "  url TEXT NOT NULL,"
     "  secret TEXT NOT NULL,"
     "  status TEXT NOT NULL CHECK (status IN ('ACTIVE', 'DISABLED')),"
     "  creation_timestamp INTEGER NOT NULL,"
     "  last_updated_timestamp INTEGER NOT NULL,"
     "  deleted_timestamp INTEGER"
     ") STRICT;"
     "CREATE INDEX webhooks_by_creation ON webhooks(creation_timestamp);"
     "CREATE TABLE webhook_events ("
     "  webhook_id TEXT NOT NULL REFERENCES webhooks(webhook_id),"
     "  entity TEXT NOT NULL,"
     "  action TEXT NOT NULL,"
     "  seq INTEGER NOT NULL,"
     "  PRIMARY KEY (webhook_id, entity, action)"
     ") STRICT, WITHOUT ROWID;"
     "CREATE INDEX webhook_events_by_event ON webhook_events(entity, action);"
     "CREATE TABLE webhook_deliveries ("
     "  seq INTEGER PRIMARY KEY,"
     "  delivery_id TEXT NOT NULL UNIQUE,"
     "  webhook_id TEXT NOT NULL REFERENCES webhooks(webhook_id),"
     "  entity TEXT NOT NULL,"
     "  action TEXT NOT NULL,"
     "  data_json TEXT NOT NULL,"
     "  body TEXT NOT NULL,"
     "  timestamp_s INTEGER NOT NULL,"
     "  state TEXT NOT NULL CHECK (state IN ('PENDING', 'IN_FLIGHT', 'SUCCEEDED', 'FAILED')),"
     "  attempts INTEGER NOT NULL,"
     "  created_ms INTEGER NOT NULL,"
     "  next_attempt_ms INTEGER NOT NULL,"
     "  finished_ms INTEGER,"
     "  last_status INTEGER,"
     "  last_error TEXT"
     ") STRICT;"
     "CREATE INDEX webhook_deliveries_due ON webhook_deliveries(state, next_attempt_ms);"
     "CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries(webhook_id, seq);"
     "CREATE TABLE webhook_attempts ("
     "  seq INTEGER NOT NULL REFERENCES webhook_deliveries(seq),"
     "  attempt INTEGER NOT NULL,"
     "  started_ms INTEGER NOT NULL,"
     "  duration_ms INTEGER NOT NULL,"
     "  response_status INTEGER,"
     "  error TEXT,"
     "  response_snippet TEXT,"
     "  PRIMARY KEY (seq, attempt)"
     ") STRICT, WITHOUT ROWID;"},
    /* 4: users, permissions, API tokens, the audit log (store_auth_sqlite.c).
     * Permission rows may name experiments and models that do not exist
     * (mlflow-auth.md §3), so they carry no foreign key to them. */
    {4, "users, permissions, tokens, audit log",
     "CREATE TABLE users ("
     "  id INTEGER PRIMARY KEY,"
     "  username TEXT NOT NULL UNIQUE,"
     "  password_hash TEXT NOT NULL,"
     "  is_admin INTEGER NOT NULL CHECK (is_admin IN (0, 1))"
     ") STRICT;"
     "CREATE TABLE experiment_permissions ("
     "  experiment_id TEXT NOT NULL,"
     "  user_id INTEGER NOT NULL REFERENCES users(id),"
     "  permission TEXT NOT NULL CHECK (permission IN"
     "    ('READ', 'EDIT', 'MANAGE', 'NO_PERMISSIONS')),"
     "  PRIMARY KEY (experiment_id, user_id)"
     ") STRICT, WITHOUT ROWID;"
     "CREATE INDEX experiment_permissions_by_user ON experiment_permissions(user_id);"
     "CREATE TABLE registered_model_permissions ("
     "  name TEXT NOT NULL,"
     "  user_id INTEGER NOT NULL REFERENCES users(id),"
     "  permission TEXT NOT NULL CHECK (permission IN"
     "    ('READ', 'EDIT', 'MANAGE', 'NO_PERMISSIONS')),"
     "  PRIMARY KEY (name, user_id)"
     ") STRICT, WITHOUT ROWID;"
     "CREATE INDEX registered_model_permissions_by_user ON registered_model_permissions(user_id);"
     "CREATE TABLE auth_tokens ("
     "  id INTEGER PRIMARY KEY,"
     "  user_id INTEGER NOT NULL REFERENCES users(id),"
     "  name TEXT NOT NULL,"
     "  token_hash BLOB NOT NULL UNIQUE,"
     "  created_time INTEGER NOT NULL,"
     "  expires_time INTEGER,"
     "  revoked_time INTEGER"
     ") STRICT;"
     "CREATE INDEX auth_tokens_by_user ON auth_tokens(user_id);"
     "CREATE TABLE audit_log ("
     "  id INTEGER PRIMARY KEY,"
     "  time_ms INTEGER NOT NULL,"
     "  username TEXT NOT NULL,"
     "  method TEXT NOT NULL,"
     "  route TEXT NOT NULL,"
     "  path TEXT NOT NULL,"
     "  resource TEXT NOT NULL,"
     "  status INTEGER NOT NULL,"
     "  remote TEXT NOT NULL"
     ") STRICT;"
     "CREATE INDEX audit_log_by_time ON audit_log(time_ms);"
     "CREATE INDEX audit_log_by_user ON audit_log(username, id);"},
    {5, "logged models, their params and tags, run outputs",
     "CREATE TABLE logged_models ("
     "  model_id TEXT PRIMARY KEY,"
     "  experiment_id INTEGER NOT NULL REFERENCES experiments(experiment_id),"
     "  name TEXT NOT NULL,"
     "  artifact_location TEXT NOT NULL,"
     "  creation_timestamp_ms INTEGER NOT NULL,"
     "  last_updated_timestamp_ms INTEGER NOT NULL,"
     "  status INTEGER NOT NULL CHECK (status BETWEEN 0 AND 3),"
     "  lifecycle_stage TEXT NOT NULL CHECK (lifecycle_stage IN ('active', 'deleted')),"
     "  model_type TEXT,"
     "  source_run_id TEXT,"
     "  status_message TEXT"
     ") STRICT, WITHOUT ROWID;"
     "CREATE INDEX logged_models_by_experiment"
     "  ON logged_models(experiment_id, lifecycle_stage, creation_timestamp_ms);"
     "CREATE TABLE logged_model_params ("
     "  model_id TEXT NOT NULL REFERENCES logged_models(model_id),"
     "  key TEXT NOT NULL,"
     "  value TEXT NOT NULL,"
     "  PRIMARY KEY (model_id, key)"
     ") STRICT, WITHOUT ROWID;"
     "CREATE TABLE logged_model_tags ("
     "  model_id TEXT NOT NULL REFERENCES logged_models(model_id),"
     "  key TEXT NOT NULL,"
     "  value TEXT NOT NULL,"
     "  PRIMARY KEY (model_id, key)"
     ") STRICT, WITHOUT ROWID;"
     "CREATE TABLE run_outputs ("
     "  run_key INTEGER NOT NULL REFERENCES runs(run_key),"
     "  model_id TEXT NOT NULL,"
     "  step INTEGER NOT NULL,"
     "  seq INTEGER NOT NULL,"
     "  PRIMARY KEY (run_key, model_id, step)"
     ") STRICT, WITHOUT ROWID;"},
    /* 7 (cli): the import ledger of `tally import` (store_cli.h). */
    {7, "import ledger",
     "CREATE TABLE import_experiments ("
     "  source TEXT NOT NULL,"
     "  source_experiment_id TEXT NOT NULL,"
     "  experiment_id INTEGER NOT NULL REFERENCES experiments(experiment_id),"
     "  PRIMARY KEY (source, source_experiment_id)"
     ") STRICT, WITHOUT ROWID;"
     "CREATE TABLE import_runs ("
     "  source_run_id TEXT PRIMARY KEY,"
     "  run_uuid TEXT NOT NULL REFERENCES runs(run_uuid),"
     "  state TEXT NOT NULL CHECK (state IN ('metadata', 'done')),"
     "  imported_time INTEGER NOT NULL"
     ") STRICT, WITHOUT ROWID;"},
    /* 9 (importreg): registered models `tally import` has written, per
     * source (store_registry_import.h). No foreign key: a model deleted or
     * renamed in Tally afterwards must not be imported again. */
    {9, "import ledger of registered models",
     "CREATE TABLE import_models ("
     "  source TEXT NOT NULL,"
     "  name TEXT NOT NULL,"
     "  imported_time INTEGER NOT NULL,"
     "  PRIMARY KEY (source, name)"
     ") STRICT, WITHOUT ROWID;"},
};

#define N_MIGRATIONS (sizeof migrations / sizeof migrations[0])

int tally__store_latest_version(void)
{
    return migrations[N_MIGRATIONS - 1].version;
}

long long tally__store_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void tally__store_join_location(const char *root, long long id, char *out, size_t cap)
{
    size_t n = strlen(root);
    snprintf(out, cap, "%s%s%lld", root, n && root[n - 1] == '/' ? "" : "/", id);
}

static int exec(sqlite3 *db, const char *sql, char *err, size_t cap)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, cap, "metadata schema: %s", msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return TALLY_STORE_EIO;
    }
    return 0;
}

static int migrate_locked(sqlite3 *db, const char *default_root, char *err, size_t cap)
{
    int rc;
    sqlite3_stmt *st = NULL;
    if ((rc = exec(db,
                   "CREATE TABLE IF NOT EXISTS tally_schema_version ("
                   "  version INTEGER PRIMARY KEY,"
                   "  description TEXT NOT NULL,"
                   "  applied_time INTEGER NOT NULL"
                   ") STRICT;",
                   err, cap)) != 0)
        return rc;
    if (sqlite3_prepare_v2(db, "SELECT coalesce(max(version), 0) FROM tally_schema_version", -1,
                           &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        snprintf(err, cap, "metadata schema: %s", sqlite3_errmsg(db));
        sqlite3_finalize(st);
        return TALLY_STORE_EIO;
    }
    int current = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (current > tally__store_latest_version()) {
        snprintf(err, cap,
                 "metadata schema version %d is newer than this build knows (%d): upgrade Tally",
                 current, tally__store_latest_version());
        return TALLY_STORE_EIO;
    }
    for (size_t i = 0; i < N_MIGRATIONS; i++) {
        const migration *m = &migrations[i];
        /* Applied already? By its own row, not by the highest number: areas
         * merge in any order, so a database may hold 7 before 2 exists. */
        if (sqlite3_prepare_v2(db, "SELECT 1 FROM tally_schema_version WHERE version = ?", -1,
                               &st, NULL) != SQLITE_OK) {
            snprintf(err, cap, "metadata schema: %s", sqlite3_errmsg(db));
            return TALLY_STORE_EIO;
        }
        sqlite3_bind_int(st, 1, m->version);
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc == SQLITE_ROW)
            continue;
        if (rc != SQLITE_DONE) {
            snprintf(err, cap, "metadata schema: %s", sqlite3_errmsg(db));
            return TALLY_STORE_EIO;
        }
        if ((rc = exec(db, m->sql, err, cap)) != 0)
            return rc;
        if (sqlite3_prepare_v2(db,
                               "INSERT INTO tally_schema_version(version, description, "
                               "applied_time) VALUES (?, ?, ?)",
                               -1, &st, NULL) != SQLITE_OK) {
            snprintf(err, cap, "metadata schema: %s", sqlite3_errmsg(db));
            return TALLY_STORE_EIO;
        }
        sqlite3_bind_int(st, 1, m->version);
        sqlite3_bind_text(st, 2, m->description, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, tally__store_now_ms());
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE) {
            snprintf(err, cap, "metadata schema: %s", sqlite3_errmsg(db));
            return TALLY_STORE_EIO;
        }
    }
    /* Experiment 0 "Default". Experiments are never hard-deleted, so once
     * made it stays; OR IGNORE keeps a renamed Default as it is. */
    char loc[2200];
    tally__store_join_location(default_root, 0, loc, sizeof loc);
    if (sqlite3_prepare_v2(db,
                           "INSERT OR IGNORE INTO experiments(experiment_id, name, "
                           "artifact_location, lifecycle_stage, creation_time, last_update_time) "
                           "SELECT 0, 'Default', ?, 'active', ?, ? WHERE NOT EXISTS "
                           "(SELECT 1 FROM experiments WHERE experiment_id = 0)",
                           -1, &st, NULL) != SQLITE_OK) {
        snprintf(err, cap, "metadata schema: %s", sqlite3_errmsg(db));
        return TALLY_STORE_EIO;
    }
    long long now = tally__store_now_ms();
    sqlite3_bind_text(st, 1, loc, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, now);
    sqlite3_bind_int64(st, 3, now);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        snprintf(err, cap, "metadata schema: %s", sqlite3_errmsg(db));
        return TALLY_STORE_EIO;
    }
    return 0;
}

int tally__store_migrate(sqlite3 *db, const char *default_root, char *err, size_t cap)
{
    int rc = exec(db, "BEGIN IMMEDIATE", err, cap);
    if (rc != 0)
        return rc;
    rc = migrate_locked(db, default_root, err, cap);
    if (rc == 0)
        rc = exec(db, "COMMIT", err, cap);
    if (rc != 0)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}
