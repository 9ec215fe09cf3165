/*
 * store_registry_import_sqlite.c — tally_store_import_model on SQLite
 * (store_registry_import.h), a store module like store_registry_sqlite.c:
 * it writes the registry tables of migration 2 directly, with the numbers,
 * times and stages the source had, and the ledger table import_models of
 * migration 9, all in one write transaction (invariant 1 of the header).
 *
 * The model row's max_version is set to the highest imported number, so the
 * registry's numbering (store_registry_sqlite.c invariant 1) continues
 * after the imported versions, deleted ones included.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "store_internal.h"
#include "store_registry_import.h"

static const char SQL_LEDGER_HAS[] =
    "SELECT 1 FROM import_models WHERE source = ?1 AND name = ?2";
static const char SQL_LEDGER_PUT[] =
    "INSERT INTO import_models(source, name, imported_time) VALUES (?1, ?2, ?3)";
static const char SQL_NAME_TAKEN[] = "SELECT 1 FROM registered_models WHERE name = ?1";
static const char SQL_MODEL_PUT[] =
    "INSERT INTO registered_models(name, creation_time, last_updated_time, description, "
    "deployment_job_id, max_version) VALUES (?1, ?2, ?3, ?4, NULL, ?5)";
static const char SQL_MODEL_TAG_PUT[] =
    "INSERT INTO registered_model_tags(model_key, key, value) VALUES (?1, ?2, ?3) "
    "ON CONFLICT(model_key, key) DO UPDATE SET value = excluded.value";
static const char SQL_RUN_MAPPED[] = "SELECT run_uuid FROM import_runs WHERE source_run_id = ?1";
static const char SQL_VERSION_PUT[] =
    "INSERT INTO model_versions(model_key, version, creation_time, last_updated_time, "
    "description, current_stage, source, run_id, run_link, model_id, storage_location, status) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, NULL, ?10, ?11)";
static const char SQL_VTAG_PUT[] =
    "INSERT INTO model_version_tags(version_key, key, value) VALUES (?1, ?2, ?3) "
    "ON CONFLICT(version_key, key) DO UPDATE SET value = excluded.value";
static const char SQL_ALIAS_PUT[] =
    "INSERT INTO registered_model_aliases(model_key, alias, version_key) "
    "SELECT ?1, ?2, version_key FROM model_versions WHERE model_key = ?1 AND version = ?3 "
    "AND current_stage != 'Deleted_Internal' "
    "ON CONFLICT(model_key, alias) DO UPDATE SET version_key = excluded.version_key";

static int fail(char *err, size_t cap, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t cap, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    return rc;
}

#define PREP(var, c, sql)                                                                   \
    sqlite3_stmt *var = tally__conn_stmt((c), (sql));                                       \
    if (!var)                                                                                \
    return tally__conn_error((c), err, cap)

static void bind_str(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

/* Steps a statement; 0 (*row = 1 if it gave a row) or the store error. */
static int step(tally__conn *c, sqlite3_stmt *st, int *row, char *err, size_t cap)
{
    int rc = sqlite3_step(st);
    if (row)
        *row = rc == SQLITE_ROW;
    int out = (rc == SQLITE_DONE || rc == SQLITE_ROW) ? 0 : tally__conn_error(c, err, cap);
    tally__stmt_done(st);
    return out;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Checks what SQLite would not (header, EINVAL cases); *max gets the
 * highest version number. */
static int check_model(const tally_import_model *m, int64_t *max, char *err, size_t cap)
{
    if (!m->name || !*m->name)
        return fail(err, cap, TALLY_STORE_EINVAL, "a registered model has an empty name");
    for (size_t i = 0; i < m->n_tags; i++)
        if (!m->tags[i].key || !*m->tags[i].key)
            return fail(err, cap, TALLY_STORE_EINVAL,
                        "registered model '%.300s' has a tag with an empty key", m->name);
    *max = 0;
    if (m->n_versions == 0)
        return 0;
    int64_t *nums = malloc(m->n_versions * sizeof *nums);
    if (!nums)
        return fail(err, cap, TALLY_STORE_ENOMEM, "out of memory");
    for (size_t i = 0; i < m->n_versions; i++)
        nums[i] = m->versions[i].version;
    qsort(nums, m->n_versions, sizeof *nums, cmp_i64);
    int rc = 0;
    if (nums[0] < 1)
        rc = fail(err, cap, TALLY_STORE_EINVAL,
                  "registered model '%.300s' has version number %lld (must be 1 or more)",
                  m->name, (long long)nums[0]);
    for (size_t i = 1; rc == 0 && i < m->n_versions; i++)
        if (nums[i] == nums[i - 1])
            rc = fail(err, cap, TALLY_STORE_EINVAL,
                      "registered model '%.300s' has version %lld twice", m->name,
                      (long long)nums[i]);
    *max = nums[m->n_versions - 1];
    free(nums);
    return rc;
}

/* The Tally run id of a source run id (store_cli.h ledger), or the id. */
static int map_run_id(tally__conn *c, const char *run_id, char out[64], char *err, size_t cap)
{
    snprintf(out, 64, "%s", run_id);
    PREP(st, c, SQL_RUN_MAPPED);
    bind_str(st, 1, run_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        snprintf(out, 64, "%s", (const char *)sqlite3_column_text(st, 0));
    tally__stmt_done(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return tally__conn_error(c, err, cap);
    return 0;
}

static int put_version(tally__conn *c, const tally_import_model *m, int64_t mkey,
                       const tally_import_version *v, char *err, size_t cap)
{
    char mapped[64];
    int rc;
    const char *run = v->run_id ? v->run_id : "";
    if (*run && strlen(run) < sizeof mapped) { /* longer: no run id of ours, kept as given */
        if ((rc = map_run_id(c, run, mapped, err, cap)) != 0)
            return rc;
        run = mapped;
    }
    int deleted = v->stage == TALLY_STAGE_DELETED;
    PREP(st, c, SQL_VERSION_PUT);
    sqlite3_bind_int64(st, 1, mkey);
    sqlite3_bind_int64(st, 2, v->version);
    sqlite3_bind_int64(st, 3, v->creation_time_ms);
    sqlite3_bind_int64(st, 4, v->last_updated_time_ms ? v->last_updated_time_ms
                                                      : v->creation_time_ms);
    bind_str(st, 5, v->description ? v->description : "");
    bind_str(st, 6, tally_stage_name(v->stage));
    bind_str(st, 7, v->source ? v->source : "");
    bind_str(st, 8, run);
    bind_str(st, 9, v->run_link ? v->run_link : "");
    bind_str(st, 10, v->storage_location);
    bind_str(st, 11, v->status && *v->status ? v->status : "READY");
    if ((rc = step(c, st, NULL, err, cap)) != 0)
        return rc;
    int64_t vkey = sqlite3_last_insert_rowid(tally__conn_db(c));
    for (size_t i = 0; !deleted && i < v->n_tags; i++) {
        if (!v->tags[i].key || !*v->tags[i].key)
            return fail(err, cap, TALLY_STORE_EINVAL,
                        "version %lld of registered model '%.300s' has a tag with an empty key",
                        (long long)v->version, m->name);
        PREP(t, c, SQL_VTAG_PUT);
        sqlite3_bind_int64(t, 1, vkey);
        bind_str(t, 2, v->tags[i].key);
        bind_str(t, 3, v->tags[i].value ? v->tags[i].value : "");
        if ((rc = step(c, t, NULL, err, cap)) != 0)
            return rc;
    }
    return 0;
}

typedef struct import_op {
    const tally_import_model *m;
    int64_t max_version;
    int *written;
} import_op;

static int do_import_model(tally__conn *c, void *arg, char *err, size_t cap)
{
    import_op *op = arg;
    const tally_import_model *m = op->m;
    int row, rc;
    *op->written = 0;
    PREP(led, c, SQL_LEDGER_HAS);
    bind_str(led, 1, m->source);
    bind_str(led, 2, m->name);
    if ((rc = step(c, led, &row, err, cap)) != 0 || row)
        return rc; /* invariant (2) */
    PREP(tk, c, SQL_NAME_TAKEN);
    bind_str(tk, 1, m->name);
    if ((rc = step(c, tk, &row, err, cap)) != 0)
        return rc;
    if (row)
        return fail(err, cap, TALLY_STORE_EEXISTS,
                    "registered model '%.300s' already exists in the destination and was not "
                    "imported from this source: rename or delete it there first",
                    m->name);
    PREP(st, c, SQL_MODEL_PUT);
    bind_str(st, 1, m->name);
    sqlite3_bind_int64(st, 2, m->creation_time_ms);
    sqlite3_bind_int64(st, 3, m->last_updated_time_ms ? m->last_updated_time_ms
                                                      : m->creation_time_ms);
    bind_str(st, 4, m->description ? m->description : "");
    sqlite3_bind_int64(st, 5, op->max_version);
    if ((rc = step(c, st, NULL, err, cap)) != 0)
        return rc;
    int64_t mkey = sqlite3_last_insert_rowid(tally__conn_db(c));
    for (size_t i = 0; i < m->n_tags; i++) {
        PREP(t, c, SQL_MODEL_TAG_PUT);
        sqlite3_bind_int64(t, 1, mkey);
        bind_str(t, 2, m->tags[i].key);
        bind_str(t, 3, m->tags[i].value ? m->tags[i].value : "");
        if ((rc = step(c, t, NULL, err, cap)) != 0)
            return rc;
    }
    for (size_t i = 0; i < m->n_versions; i++)
        if ((rc = put_version(c, m, mkey, &m->versions[i], err, cap)) != 0)
            return rc;
    for (size_t i = 0; i < m->n_aliases; i++) {
        const tally_model_alias *al = &m->aliases[i];
        if (!al->alias || !*al->alias)
            return fail(err, cap, TALLY_STORE_EINVAL,
                        "registered model '%.300s' has an empty alias", m->name);
        PREP(a, c, SQL_ALIAS_PUT);
        sqlite3_bind_int64(a, 1, mkey);
        bind_str(a, 2, al->alias);
        sqlite3_bind_int64(a, 3, al->version);
        if ((rc = step(c, a, NULL, err, cap)) != 0)
            return rc;
        if (sqlite3_changes(tally__conn_db(c)) == 0)
            return fail(err, cap, TALLY_STORE_EINVAL,
                        "alias '%.255s' of registered model '%.300s' names version %lld, "
                        "which the source does not have (or has deleted)",
                        al->alias, m->name, (long long)al->version);
    }
    PREP(put, c, SQL_LEDGER_PUT);
    bind_str(put, 1, m->source);
    bind_str(put, 2, m->name);
    sqlite3_bind_int64(put, 3, tally__store_now_ms());
    if ((rc = step(c, put, NULL, err, cap)) != 0)
        return rc;
    *op->written = 1;
    return 0;
}

int tally_store_import_model(tally_store *s, const tally_import_model *m, int *written,
                             char *err, size_t cap)
{
    int dummy;
    import_op op = {.m = m, .written = written ? written : &dummy};
    *op.written = 0;
    int rc = check_model(m, &op.max_version, err, cap);
    if (rc != 0)
        return rc;
    return tally__store_write(s, do_import_model, &op, err, cap);
}
