/*
 * import_mlflow_db_models.c — the model registry tables of MLflow's SQL
 * store (mlflow/store/model_registry/dbmodels/models.py), read from the
 * open database into import_model calls (import.h):
 *
 *   registered_models(name, creation_time, last_updated_time, description)
 *   model_versions(name, version, creation_time, last_updated_time,
 *                  description, current_stage, source, run_id, run_link,
 *                  status, storage_location)   — deleted versions stay with
 *                  current_stage 'Deleted_Internal'
 *   registered_model_tags(key, value, name)
 *   model_version_tags(key, value, name, version)
 *   registered_model_aliases(alias, version, name)   (MLflow 2.3 and later)
 *
 * A database without registered_models has no registry (nothing to do);
 * one without storage_location or the alias table is an older MLflow, read
 * with NULLs / no aliases. Each model is read whole (strings in an arena)
 * and written in one call.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "import_sources.h"

typedef struct reader {
    sqlite3 *db;
    sqlite3_stmt *models, *versions, *vtags, *mtags, *aliases; /* aliases may be NULL */
} reader;

static const char *dup_col(tally_arena *a, sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? tally_arena_strndup(a, (const char *)t, (size_t)sqlite3_column_bytes(st, i))
             : NULL;
}

/* arr (n elements of elem bytes, room for *cap) with room for one more:
 * arr itself, or a bigger copy in the arena; NULL (with a message) out of
 * memory. */
static void *room(tally_arena *a, void *arr, size_t elem, size_t n, size_t *cap)
{
    if (n < *cap)
        return arr;
    size_t nc = *cap ? *cap * 2 : 8;
    void *nv = tally_arena_alloc(a, nc * elem);
    if (!nv) {
        fprintf(stderr, "tally import: out of memory\n");
        return NULL;
    }
    if (n)
        memcpy(nv, arr, n * elem);
    *cap = nc;
    return nv;
}

static int db_error(reader *r, const char *what)
{
    fprintf(stderr, "tally import: reading %s: %s\n", what, sqlite3_errmsg(r->db));
    return 1;
}

/* Rows of st (key, value) for the bound parameters, into the arena. */
static int read_kvs(reader *r, sqlite3_stmt *st, tally_arena *a, tally_kv **out, size_t *n,
                    const char *what)
{
    size_t cap = 0;
    int rc;
    *out = NULL;
    *n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        tally_kv *nv = room(a, *out, sizeof *nv, *n, &cap);
        if (!nv) {
            sqlite3_reset(st);
            return 1;
        }
        *out = nv;
        (*out)[*n].key = dup_col(a, st, 0);
        (*out)[*n].value = dup_col(a, st, 1);
        if (!(*out)[*n].key)
            (*out)[*n].key = "";
        (*n)++;
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : db_error(r, what);
}

static int read_versions(reader *r, const char *name, tally_arena *a, tally_import_model *m)
{
    size_t cap = 0, n = 0;
    tally_import_version *vs = NULL;
    int rc;
    sqlite3_bind_text(r->versions, 1, name, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(r->versions)) == SQLITE_ROW) {
        tally_import_version *nv = room(a, vs, sizeof *nv, n, &cap);
        if (!nv) {
            sqlite3_reset(r->versions);
            return 1;
        }
        vs = nv;
        sqlite3_stmt *st = r->versions;
        tally_import_version *v = &vs[n++];
        memset(v, 0, sizeof *v);
        v->version = sqlite3_column_int64(st, 0);
        v->creation_time_ms = sqlite3_column_int64(st, 1);
        v->last_updated_time_ms = sqlite3_column_int64(st, 2);
        v->description = dup_col(a, st, 3);
        const char *stage = (const char *)sqlite3_column_text(st, 4);
        if (stage && strcmp(stage, tally_stage_name(TALLY_STAGE_DELETED)) == 0)
            v->stage = TALLY_STAGE_DELETED;
        else if (stage && tally_stage_parse(stage, &v->stage) != 0) {
            fprintf(stderr, "tally import: model '%s' version %lld: unknown stage '%s'\n", name,
                    (long long)v->version, stage);
            sqlite3_reset(st);
            return 1;
        }
        v->source = dup_col(a, st, 5);
        v->run_id = dup_col(a, st, 6);
        v->run_link = dup_col(a, st, 7);
        v->status = dup_col(a, st, 8);
        if (v->source && strncmp(v->source, "models:/", 8) == 0)
            v->storage_location = dup_col(a, st, 9); /* kept for models:/ sources only */
    }
    sqlite3_reset(r->versions);
    if (rc != SQLITE_DONE)
        return db_error(r, "model_versions");
    for (size_t i = 0; i < n; i++) {
        sqlite3_bind_text(r->vtags, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(r->vtags, 2, vs[i].version);
        tally_kv *tags;
        if (read_kvs(r, r->vtags, a, &tags, &vs[i].n_tags, "model_version_tags"))
            return 1;
        vs[i].tags = tags;
    }
    m->versions = vs;
    m->n_versions = n;
    return 0;
}

static int read_aliases(reader *r, const char *name, tally_arena *a, tally_import_model *m)
{
    if (!r->aliases)
        return 0;
    size_t cap = 0, n = 0;
    tally_model_alias *out = NULL;
    int rc;
    sqlite3_bind_text(r->aliases, 1, name, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(r->aliases)) == SQLITE_ROW) {
        tally_model_alias *nv = room(a, out, sizeof *nv, n, &cap);
        if (!nv) {
            sqlite3_reset(r->aliases);
            return 1;
        }
        out = nv;
        out[n].alias = dup_col(a, r->aliases, 0);
        out[n].version = sqlite3_column_int64(r->aliases, 1);
        n++;
    }
    sqlite3_reset(r->aliases);
    if (rc != SQLITE_DONE)
        return db_error(r, "registered_model_aliases");
    m->aliases = out;
    m->n_aliases = n;
    return 0;
}

static int import_one(import_ctx *c, reader *r)
{
    tally_arena *a = tally_arena_new();
    if (!a) {
        fprintf(stderr, "tally import: out of memory\n");
        return 1;
    }
    tally_import_model m = {0};
    m.name = dup_col(a, r->models, 0);
    m.creation_time_ms = sqlite3_column_int64(r->models, 1);
    m.last_updated_time_ms = sqlite3_column_int64(r->models, 2);
    m.description = dup_col(a, r->models, 3);
    int bad = !m.name;
    if (bad)
        fprintf(stderr, "tally import: a registered model without a name\n");
    tally_kv *tags = NULL;
    if (!bad) {
        sqlite3_bind_text(r->mtags, 1, m.name, -1, SQLITE_STATIC);
        bad = read_kvs(r, r->mtags, a, &tags, &m.n_tags, "registered_model_tags");
        m.tags = tags;
    }
    bad = bad || read_versions(r, m.name, a, &m) || read_aliases(r, m.name, a, &m) ||
          import_model(c, &m);
    tally_arena_free(a);
    return bad;
}

int import_mlflow_db_models(import_ctx *c, sqlite3 *db)
{
    if (!import_db_has_column(db, "registered_models", "name"))
        return 0; /* no registry in this database */
    reader r = {.db = db};
    const char *versions_sql =
        import_db_has_column(db, "model_versions", "storage_location")
            ? "SELECT version, creation_time, last_updated_time, description, current_stage, "
              "source, run_id, run_link, status, storage_location FROM model_versions "
              "WHERE name = ?1 ORDER BY version"
            : "SELECT version, creation_time, last_updated_time, description, current_stage, "
              "source, run_id, run_link, status, NULL FROM model_versions "
              "WHERE name = ?1 ORDER BY version";
    int bad =
        sqlite3_prepare_v2(db,
                           "SELECT name, creation_time, last_updated_time, description "
                           "FROM registered_models ORDER BY name",
                           -1, &r.models, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, versions_sql, -1, &r.versions, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db,
                           "SELECT key, value FROM model_version_tags WHERE name = ?1 AND "
                           "version = ?2 ORDER BY key",
                           -1, &r.vtags, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db,
                           "SELECT key, value FROM registered_model_tags WHERE name = ?1 "
                           "ORDER BY key",
                           -1, &r.mtags, NULL) != SQLITE_OK ||
        (import_db_has_column(db, "registered_model_aliases", "alias") &&
         sqlite3_prepare_v2(db,
                            "SELECT alias, version FROM registered_model_aliases WHERE "
                            "name = ?1 ORDER BY alias",
                            -1, &r.aliases, NULL) != SQLITE_OK);
    if (bad)
        db_error(&r, "the registry tables");
    int rc = SQLITE_DONE;
    while (!bad && (rc = sqlite3_step(r.models)) == SQLITE_ROW)
        bad = import_one(c, &r);
    if (!bad && rc != SQLITE_DONE)
        bad = db_error(&r, "registered_models");
    sqlite3_finalize(r.models);
    sqlite3_finalize(r.versions);
    sqlite3_finalize(r.vtags);
    sqlite3_finalize(r.mtags);
    sqlite3_finalize(r.aliases);
    return bad;
}
