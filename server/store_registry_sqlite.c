/*
 * store_registry_sqlite.c — the model registry on SQLite (store_registry.h),
 * a store module: it borrows the store's connections through
 * store_internal.h and keeps its own statements. Tables (migration 2 in
 * store_schema.c):
 *
 *   registered_models        model_key PK, name UNIQUE, creation_time,
 *                            last_updated_time, description, deployment_job_id,
 *                            max_version (highest number ever given)
 *   registered_model_tags    (model_key, key) PK, value
 *   model_versions           version_key PK, (model_key, version) UNIQUE,
 *                            times, description, current_stage, source, run_id,
 *                            run_link, model_id, storage_location, status
 *   model_version_tags       (version_key, key) PK, value
 *   registered_model_aliases (model_key, alias) PK, version_key
 *
 * Children key their parent by integer keys, never by name, so a rename is
 * one UPDATE of registered_models.name and versions, tags and aliases move
 * with it.
 *
 * Searches render the parsed filter with tally_search_sql_where (search.h)
 * against the expressions below, add the prompt exclusion and the order_by
 * keys (every registry order key is a NOT NULL column), and let SQLite do
 * filter, order, offset and limit in one statement; tags and aliases are
 * then read for the page only.
 *
 * Invariants:
 *  (1) max_version >= every version number of the model; a new version is
 *      max_version + 1 (set in the same transaction): numbers never repeat.
 *  (2) A row with current_stage 'Deleted_Internal' is never returned by a
 *      read; it has no tags and no alias points at it.
 *  (3) Every alias points at a visible version of its own model.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sqlite3.h>

#include "buf.h"
#include "store_internal.h"
#include "store_registry.h"

#define DELETED_STAGE "Deleted_Internal"
#define VISIBLE "v.current_stage != 'Deleted_Internal'"
#define VERSION_COLS                                                                        \
    "v.version_key, m.name, v.version, v.creation_time, v.last_updated_time, v.description, " \
    "v.current_stage, v.source, v.run_id, v.run_link, v.model_id, v.storage_location, v.status"
#define MODEL_COLS                                                                          \
    "m.model_key, m.name, m.creation_time, m.last_updated_time, m.description, "             \
    "m.deployment_job_id"
/* A model that is a prompt (§3.7): its tag is "true", any case. */
#define IS_PROMPT_OF(key_expr)                                                              \
    "EXISTS (SELECT 1 FROM registered_model_tags pt WHERE pt.model_key = " key_expr          \
    " AND pt.key = 'mlflow.prompt.is_prompt' AND lower(pt.value) = 'true')"

static const char SQL_MODEL_BY_NAME[] = "SELECT " MODEL_COLS " FROM registered_models m WHERE m.name = ?1";
static const char SQL_MODEL_KEY[] = "SELECT model_key FROM registered_models WHERE name = ?1";
static const char SQL_MODEL_INSERT[] =
    "INSERT INTO registered_models(name, creation_time, last_updated_time, description, "
    "deployment_job_id, max_version) VALUES (?1, ?2, ?2, ?3, ?4, 0)";
static const char SQL_MODEL_TAG_UPSERT[] =
    "INSERT INTO registered_model_tags(model_key, key, value) VALUES (?1, ?2, ?3) "
    "ON CONFLICT(model_key, key) DO UPDATE SET value = excluded.value";
static const char SQL_MODEL_TAG_DELETE[] =
    "DELETE FROM registered_model_tags WHERE model_key = ?1 AND key = ?2";
static const char SQL_MODEL_TAGS[] =
    "SELECT key, value FROM registered_model_tags WHERE model_key = ?1 ORDER BY key";
static const char SQL_MODEL_IS_PROMPT[] = "SELECT " IS_PROMPT_OF("?1");
static const char SQL_MODEL_ALIASES[] =
    "SELECT a.alias, v.version FROM registered_model_aliases a JOIN model_versions v "
    "ON v.version_key = a.version_key WHERE a.model_key = ?1 ORDER BY a.alias";
static const char SQL_MODEL_RENAME[] =
    "UPDATE registered_models SET name = ?2, last_updated_time = ?3 WHERE model_key = ?1";
static const char SQL_MODEL_TOUCH_VERSIONS[] =
    "UPDATE model_versions SET last_updated_time = ?2 WHERE model_key = ?1 AND "
    "current_stage != 'Deleted_Internal'";
static const char SQL_MODEL_UPDATE[] =
    "UPDATE registered_models SET description = ?2, last_updated_time = ?3 WHERE model_key = ?1";
static const char SQL_MODEL_TOUCH[] =
    "UPDATE registered_models SET last_updated_time = ?2 WHERE model_key = ?1";
static const char SQL_MODEL_DEL_ALIASES[] = "DELETE FROM registered_model_aliases WHERE model_key = ?1";
static const char SQL_MODEL_DEL_VTAGS[] =
    "DELETE FROM model_version_tags WHERE version_key IN "
    "(SELECT version_key FROM model_versions WHERE model_key = ?1)";
static const char SQL_MODEL_DEL_VERSIONS[] = "DELETE FROM model_versions WHERE model_key = ?1";
static const char SQL_MODEL_DEL_TAGS[] = "DELETE FROM registered_model_tags WHERE model_key = ?1";
static const char SQL_MODEL_DEL[] = "DELETE FROM registered_models WHERE model_key = ?1";

static const char SQL_VERSION_BY_NUMBER[] =
    "SELECT " VERSION_COLS " FROM model_versions v JOIN registered_models m ON m.model_key = "
    "v.model_key WHERE v.model_key = ?1 AND v.version = ?2 AND " VISIBLE;
static const char SQL_VERSION_NEXT[] =
    "UPDATE registered_models SET max_version = max_version + 1, last_updated_time = ?2 "
    "WHERE model_key = ?1 RETURNING max_version";
static const char SQL_VERSION_INSERT[] =
    "INSERT INTO model_versions(model_key, version, creation_time, last_updated_time, "
    "description, current_stage, source, run_id, run_link, model_id, storage_location, status) "
    "VALUES (?1, ?2, ?3, ?3, ?4, 'None', ?5, ?6, ?7, ?8, ?9, 'READY')";
static const char SQL_VTAG_UPSERT[] =
    "INSERT INTO model_version_tags(version_key, key, value) VALUES (?1, ?2, ?3) "
    "ON CONFLICT(version_key, key) DO UPDATE SET value = excluded.value";
static const char SQL_VTAG_DELETE[] = "DELETE FROM model_version_tags WHERE version_key = ?1 AND key = ?2";
static const char SQL_VTAG_DELETE_ALL[] = "DELETE FROM model_version_tags WHERE version_key = ?1";
static const char SQL_VTAGS[] =
    "SELECT key, value FROM model_version_tags WHERE version_key = ?1 ORDER BY key";
static const char SQL_VALIASES[] =
    "SELECT alias FROM registered_model_aliases WHERE version_key = ?1 ORDER BY alias";
static const char SQL_VALIAS_DELETE_ALL[] = "DELETE FROM registered_model_aliases WHERE version_key = ?1";
static const char SQL_VERSION_UPDATE[] =
    "UPDATE model_versions SET description = ?2, last_updated_time = ?3 WHERE version_key = ?1";
static const char SQL_VERSION_DELETE[] =
    "UPDATE model_versions SET current_stage = 'Deleted_Internal', source = "
    "'REDACTED-SOURCE-PATH', run_id = 'REDACTED-RUN-ID', run_link = 'REDACTED-RUN-LINK', "
    "last_updated_time = ?2 WHERE version_key = ?1";
static const char SQL_VERSION_STAGE[] =
    "UPDATE model_versions SET current_stage = ?2, last_updated_time = ?3 WHERE version_key = ?1";
static const char SQL_VERSION_ARCHIVE_OTHERS[] =
    "UPDATE model_versions SET current_stage = 'Archived', last_updated_time = ?3 "
    "WHERE model_key = ?1 AND current_stage = ?2 AND version_key != ?4";
static const char SQL_ALIAS_UPSERT[] =
    "INSERT INTO registered_model_aliases(model_key, alias, version_key) VALUES (?1, ?2, ?3) "
    "ON CONFLICT(model_key, alias) DO UPDATE SET version_key = excluded.version_key";
static const char SQL_ALIAS_DELETE[] =
    "DELETE FROM registered_model_aliases WHERE model_key = ?1 AND alias = ?2";
static const char SQL_ALIAS_GET[] =
    "SELECT v.version FROM registered_model_aliases a JOIN model_versions v ON v.version_key = "
    "a.version_key WHERE a.model_key = ?1 AND a.alias = ?2";
static const char SQL_VERSION_BY_STAGE[] =
    "SELECT max(v.version) FROM model_versions v WHERE v.model_key = ?1 AND v.current_stage = ?2";

/* ------------------------------------------------------------------------ */
/* Names                                                                     */
/* ------------------------------------------------------------------------ */

static const char *const stage_names[] = {"None", "Staging", "Production", "Archived",
                                          DELETED_STAGE};

const char *tally_stage_name(tally_stage s)
{
    return (unsigned)s <= TALLY_STAGE_DELETED ? stage_names[s] : "None";
}

int tally_stage_parse(const char *name, tally_stage *out)
{
    for (int i = 0; i < TALLY_STAGE_N_VISIBLE; i++)
        if (name && strcasecmp(name, stage_names[i]) == 0) {
            *out = (tally_stage)i;
            return 0;
        }
    return -1;
}

static tally_stage stage_of(const char *text)
{
    for (int i = 0; i <= TALLY_STAGE_DELETED; i++)
        if (text && strcmp(text, stage_names[i]) == 0)
            return (tally_stage)i;
    return TALLY_STAGE_NONE;
}

/* ------------------------------------------------------------------------ */
/* Validation (§6)                                                           */
/* ------------------------------------------------------------------------ */

static int fail(char *err, size_t cap, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t cap, int rc, const char *fmt, ...)
{
    if (err && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return rc;
}

int tally_registry_check_name(const char *name, char *err, size_t cap)
{
    if (!name || !*name)
        return fail(err, cap, TALLY_STORE_EINVAL,
                    "Registered model name cannot be empty.");
    if (strlen(name) > TALLY_REGISTRY_MAX_NAME)
        return fail(err, cap, TALLY_STORE_EINVAL,
                    "Registered model name '%.64s...' exceeds the maximum length of %d",
                    name, TALLY_REGISTRY_MAX_NAME);
    return 0;
}

int tally_registry_check_tag(const char *key, const char *value, char *err, size_t cap)
{
    int rc = tally_store_check_key("tag", key, err, cap);
    if (rc != 0)
        return rc;
    /* check_key allows 250 characters: the registry's limit too. */
    size_t n = value ? tally_utf8_chars(value) : 0;
    if (n > TALLY_REGISTRY_MAX_TAG_VALUE)
        return fail(err, cap, TALLY_STORE_EINVAL,
                    "Tag value '%.64s...' had length %zu, which exceeded length limit of %d",
                    value, n, TALLY_REGISTRY_MAX_TAG_VALUE);
    return 0;
}

int tally_registry_check_alias(const char *alias, int for_set, char *err, size_t cap)
{
    if (!alias || !*alias)
        return fail(err, cap, TALLY_STORE_EINVAL, "Alias name cannot be empty.");
    size_t n = strlen(alias);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)alias[i];
        int word = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                   (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch >= 0x80;
        if (!word)
            return fail(err, cap, TALLY_STORE_EINVAL,
                        "Invalid alias name: '%.300s'. Names may only contain alphanumerics, "
                        "underscores (_), and dashes (-).",
                        alias);
    }
    if (tally_utf8_chars(alias) > TALLY_REGISTRY_MAX_ALIAS)
        return fail(err, cap, TALLY_STORE_EINVAL,
                    "Alias name '%.64s...' exceeds the maximum length of %d characters", alias,
                    TALLY_REGISTRY_MAX_ALIAS);
    if (for_set) {
        int vnum = (alias[0] == 'v' || alias[0] == 'V') && alias[1] &&
                   strspn(alias + 1, "0123456789") == n - 1;
        if (strcasecmp(alias, "latest") == 0 || vnum)
            return fail(err, cap, TALLY_STORE_EINVAL,
                        "'%s' alias name (case insensitive) is reserved.", alias);
    }
    return 0;
}

int tally_registry_parse_version(const char *text, int64_t *out, char *err, size_t cap)
{
    const char *p = text ? text : "";
    int neg = *p == '-';
    size_t nd = strspn(p + neg, "0123456789");
    if (nd == 0 || p[neg + nd] != 0 || nd > 18)
        return fail(err, cap, TALLY_STORE_EINVAL,
                    "Parameter 'version' must be an integer, got '%.100s'.", p);
    *out = strtoll(p, NULL, 10);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Statement helpers                                                         */
/* ------------------------------------------------------------------------ */

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

/* Runs a statement without rows; 0 or the store error. */
static int run(tally__conn *c, sqlite3_stmt *st, char *err, size_t cap)
{
    int rc = sqlite3_step(st);
    int out = (rc == SQLITE_DONE || rc == SQLITE_ROW) ? 0 : tally__conn_error(c, err, cap);
    tally__stmt_done(st);
    return out;
}

static int model_not_found(const char *name, char *err, size_t cap)
{
    return fail(err, cap, TALLY_STORE_ENOTFOUND, "Registered Model with name=%.300s not found",
                name);
}

static int version_not_found(const char *name, int64_t version, char *err, size_t cap)
{
    return fail(err, cap, TALLY_STORE_ENOTFOUND,
                "Model Version (name=%.300s, version=%lld) not found", name, (long long)version);
}

/* The key of model `name`, or ENOTFOUND. */
static int model_key(tally__conn *c, const char *name, int64_t *key, char *err, size_t cap)
{
    PREP(st, c, SQL_MODEL_KEY);
    bind_str(st, 1, name);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *key = sqlite3_column_int64(st, 0);
    tally__stmt_done(st);
    if (rc == SQLITE_ROW)
        return 0;
    if (rc == SQLITE_DONE)
        return model_not_found(name, err, cap);
    return tally__conn_error(c, err, cap);
}

static int model_is_prompt(tally__conn *c, int64_t key, int *out, char *err, size_t cap)
{
    if (!out)
        return 0;
    PREP(st, c, SQL_MODEL_IS_PROMPT);
    sqlite3_bind_int64(st, 1, key);
    int rc = sqlite3_step(st);
    *out = rc == SQLITE_ROW && sqlite3_column_int(st, 0);
    tally__stmt_done(st);
    return rc == SQLITE_ROW ? 0 : tally__conn_error(c, err, cap);
}

/* Reads tags of one entity (statement with ?1 = key) into the arena. */
static int load_kvs(tally__conn *c, const char *sql, int64_t key, tally_arena *a, tally_kv **out,
                    size_t *n_out, char *err, size_t cap)
{
    PREP(st, c, sql);
    sqlite3_bind_int64(st, 1, key);
    tally_kv *v = NULL;
    size_t n = 0, vcap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (tally__arena_reserve(a, &v, sizeof *v, n, &vcap, 8) != 0) {
            tally__stmt_done(st);
            return fail(err, cap, TALLY_STORE_ENOMEM, "Out of memory.");
        }
        v[n].key = tally__col_dup_null(a, st, 0);
        v[n].value = tally__col_dup_null(a, st, 1);
        if (!v[n].key || !v[n].value) {
            tally__stmt_done(st);
            return fail(err, cap, TALLY_STORE_ENOMEM, "Out of memory.");
        }
        n++;
    }
    tally__stmt_done(st);
    if (rc != SQLITE_DONE)
        return tally__conn_error(c, err, cap);
    *out = v;
    *n_out = n;
    return 0;
}

/* One version row (VERSION_COLS) into out; *vkey its key. */
static int version_row(sqlite3_stmt *st, tally_arena *a, tally_model_version *out, int64_t *vkey)
{
    memset(out, 0, sizeof *out);
    *vkey = sqlite3_column_int64(st, 0);
    out->name = tally__col_dup_null(a, st, 1);
    out->version = sqlite3_column_int64(st, 2);
    out->creation_time_ms = sqlite3_column_int64(st, 3);
    out->last_updated_time_ms = sqlite3_column_int64(st, 4);
    out->description = tally__col_dup_null(a, st, 5);
    out->stage = stage_of((const char *)sqlite3_column_text(st, 6));
    out->source = tally__col_dup_null(a, st, 7);
    out->run_id = tally__col_dup_null(a, st, 8);
    out->run_link = tally__col_dup_null(a, st, 9);
    out->model_id = tally__col_dup_null(a, st, 10);
    out->storage_location = tally__col_dup_null(a, st, 11);
    out->status = tally__col_dup_null(a, st, 12);
    if (!out->name || !out->description || !out->source || !out->run_id || !out->run_link ||
        !out->status)
        return -1;
    return 0;
}

/* Tags and aliases of a version. */
static int version_extras(tally__conn *c, int64_t vkey, tally_arena *a, tally_model_version *v,
                          char *err, size_t cap)
{
    int rc = load_kvs(c, SQL_VTAGS, vkey, a, &v->tags, &v->n_tags, err, cap);
    if (rc != 0)
        return rc;
    PREP(st, c, SQL_VALIASES);
    sqlite3_bind_int64(st, 1, vkey);
    size_t n = 0, vcap = 0;
    const char **al = NULL;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (tally__arena_reserve(a, &al, sizeof *al, n, &vcap, 4) != 0 ||
            !(al[n] = tally__col_dup_null(a, st, 0))) {
            tally__stmt_done(st);
            return fail(err, cap, TALLY_STORE_ENOMEM, "Out of memory.");
        }
        n++;
    }
    tally__stmt_done(st);
    if (rc != SQLITE_DONE)
        return tally__conn_error(c, err, cap);
    v->aliases = al;
    v->n_aliases = n;
    return 0;
}

/* A visible version by number: found 1 (out filled when out != NULL, *vkey
 * set) or 0, or a negative error. */
static int find_version(tally__conn *c, int64_t mkey, int64_t version, tally_arena *a,
                        tally_model_version *out, int64_t *vkey, char *err, size_t cap)
{
    PREP(st, c, SQL_VERSION_BY_NUMBER);
    sqlite3_bind_int64(st, 1, mkey);
    sqlite3_bind_int64(st, 2, version);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        tally__stmt_done(st);
        return rc == SQLITE_DONE ? 0 : tally__conn_error(c, err, cap);
    }
    int bad = out ? version_row(st, a, out, vkey) : (*vkey = sqlite3_column_int64(st, 0), 0);
    tally__stmt_done(st);
    if (bad)
        return fail(err, cap, TALLY_STORE_ENOMEM, "Out of memory.");
    if (out && (rc = version_extras(c, *vkey, a, out, err, cap)) != 0)
        return rc;
    return 1;
}

/* Model key and visible version key, or ENOTFOUND with MLflow's messages. */
static int resolve_version(tally__conn *c, const char *name, int64_t version, int64_t *mkey,
                           int64_t *vkey, tally_arena *a, tally_model_version *out, char *err,
                           size_t cap)
{
    int rc = model_key(c, name, mkey, err, cap);
    if (rc != 0)
        return rc == TALLY_STORE_ENOTFOUND ? version_not_found(name, version, err, cap) : rc;
    rc = find_version(c, *mkey, version, a, out, vkey, err, cap);
    if (rc < 0)
        return rc;
    return rc == 1 ? 0 : version_not_found(name, version, err, cap);
}

/* The full model: row, tags, aliases, latest versions. st is positioned on
 * a MODEL_COLS row. */
static int model_from_row(sqlite3_stmt *st, tally_arena *a, tally_registered_model *out,
                          int64_t *mkey_out, char *err, size_t cap)
{
    memset(out, 0, sizeof *out);
    int64_t mkey = sqlite3_column_int64(st, 0);
    out->name = tally__col_dup_null(a, st, 1);
    out->creation_time_ms = sqlite3_column_int64(st, 2);
    out->last_updated_time_ms = sqlite3_column_int64(st, 3);
    out->description = tally__col_dup_null(a, st, 4);
    out->deployment_job_id = tally__col_dup_null(a, st, 5);
    if (mkey_out)
        *mkey_out = mkey;
    if (!out->name || !out->description)
        return fail(err, cap, TALLY_STORE_ENOMEM, "Out of memory.");
    return 0;
}

static int latest_versions(tally__conn *c, int64_t mkey, unsigned mask, tally_arena *a,
                           tally_model_version **out, size_t *n_out, char *err, size_t cap);

static int model_extras(tally__conn *c, int64_t mkey, tally_arena *a, tally_registered_model *m,
                        char *err, size_t cap)
{
    int rc = load_kvs(c, SQL_MODEL_TAGS, mkey, a, &m->tags, &m->n_tags, err, cap);
    if (rc != 0)
        return rc;
    PREP(st, c, SQL_MODEL_ALIASES);
    sqlite3_bind_int64(st, 1, mkey);
    size_t n = 0, vcap = 0;
    tally_model_alias *al = NULL;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (tally__arena_reserve(a, &al, sizeof *al, n, &vcap, 4) != 0 ||
            !(al[n].alias = tally__col_dup_null(a, st, 0))) {
            tally__stmt_done(st);
            return fail(err, cap, TALLY_STORE_ENOMEM, "Out of memory.");
        }
        al[n].version = sqlite3_column_int64(st, 1);
        n++;
    }
    tally__stmt_done(st);
    if (rc != SQLITE_DONE)
        return tally__conn_error(c, err, cap);
    m->aliases = al;
    m->n_aliases = n;
    return latest_versions(c, mkey, 0, a, &m->latest, &m->n_latest, err, cap);
}

static int read_model(tally__conn *c, const char *name, tally_arena *a,
                      tally_registered_model *out, char *err, size_t cap)
{
    PREP(st, c, SQL_MODEL_BY_NAME);
    bind_str(st, 1, name);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        tally__stmt_done(st);
        return rc == SQLITE_DONE ? model_not_found(name, err, cap) : tally__conn_error(c, err, cap);
    }
    int64_t mkey;
    rc = model_from_row(st, a, out, &mkey, err, cap);
    tally__stmt_done(st);
    if (rc != 0)
        return rc;
    return model_extras(c, mkey, a, out, err, cap);
}

/* The highest version number in each visible stage (0: none), one indexed
 * max() per stage (model_versions_by_model_stage), so the cost does not
 * grow with the number of versions. */
static int stage_maxima(tally__conn *c, int64_t mkey, int64_t best[TALLY_STAGE_N_VISIBLE],
                        char *err, size_t cap)
{
    PREP(st, c, SQL_VERSION_BY_STAGE);
    for (int s = 0; s < TALLY_STAGE_N_VISIBLE; s++) {
        sqlite3_bind_int64(st, 1, mkey);
        sqlite3_bind_text(st, 2, stage_names[s], -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        best[s] = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
        tally__stmt_done(st);
        if (rc != SQLITE_ROW)
            return tally__conn_error(c, err, cap);
    }
    return 0;
}

static int latest_versions(tally__conn *c, int64_t mkey, unsigned mask, tally_arena *a,
                           tally_model_version **out, size_t *n_out, char *err, size_t cap)
{
    int64_t best[TALLY_STAGE_N_VISIBLE];
    int rc = stage_maxima(c, mkey, best, err, cap);
    if (rc != 0)
        return rc;
    tally_model_version *v = tally_arena_alloc(a, TALLY_STAGE_N_VISIBLE * sizeof *v);
    if (!v)
        return fail(err, cap, TALLY_STORE_ENOMEM, "Out of memory.");
    size_t n = 0;
    for (int s = 0; s < TALLY_STAGE_N_VISIBLE; s++) {
        if (!best[s] || (mask && !(mask & (1u << s))))
            continue;
        int64_t vkey;
        rc = find_version(c, mkey, best[s], a, &v[n], &vkey, err, cap);
        if (rc < 0)
            return rc;
        n += rc == 1;
    }
    *out = v;
    *n_out = n;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Registered models                                                         */
/* ------------------------------------------------------------------------ */

typedef struct model_op {
    const char *name;
    const char *new_name;         /* rename */
    const char *description;
    const char *deployment_job_id;
    const tally_kv *tags;
    size_t n_tags;
    const char *key, *value;      /* tag ops */
    const char *alias;
    int64_t version;
    tally_arena *a;
    tally_registered_model *model; /* result, when wanted */
    tally_model_version *mv;
    tally_model_version **mvs;
    size_t *n_mvs;
    unsigned mask;
    int *is_prompt;
} model_op;

static int do_create_model(tally__conn *c, void *arg, char *err, size_t cap)
{
    model_op *op = arg;
    int64_t mkey;
    int rc = model_key(c, op->name, &mkey, err, cap);
    if (rc == 0)
        return fail(err, cap, TALLY_STORE_EEXISTS, "Registered Model (name=%.300s) already exists.",
                    op->name);
    if (rc != TALLY_STORE_ENOTFOUND)
        return rc;
    PREP(st, c, SQL_MODEL_INSERT);
    bind_str(st, 1, op->name);
    sqlite3_bind_int64(st, 2, tally__store_now_ms());
    bind_str(st, 3, op->description ? op->description : "");
    bind_str(st, 4, op->deployment_job_id && *op->deployment_job_id ? op->deployment_job_id : NULL);
    if ((rc = run(c, st, err, cap)) != 0)
        return rc;
    mkey = sqlite3_last_insert_rowid(tally__conn_db(c));
    for (size_t i = 0; i < op->n_tags; i++) {
        PREP(t, c, SQL_MODEL_TAG_UPSERT);
        sqlite3_bind_int64(t, 1, mkey);
        bind_str(t, 2, op->tags[i].key);
        bind_str(t, 3, op->tags[i].value ? op->tags[i].value : "");
        if ((rc = run(c, t, err, cap)) != 0)
            return rc;
    }
    return op->model ? read_model(c, op->name, op->a, op->model, err, cap) : 0;
}

int tally_registry_create_model(tally_store *s, const char *name, const tally_kv *tags,
                                size_t n_tags, const char *description,
                                const char *deployment_job_id, tally_arena *a,
                                tally_registered_model *out, char *err, size_t cap)
{
    int rc = tally_registry_check_name(name, err, cap);
    for (size_t i = 0; rc == 0 && i < n_tags; i++)
        rc = tally_registry_check_tag(tags[i].key, tags[i].value, err, cap);
    if (rc != 0)
        return rc;
    model_op op = {.name = name, .description = description, .deployment_job_id = deployment_job_id,
                   .tags = tags, .n_tags = n_tags, .a = a, .model = out};
    return tally__store_write(s, do_create_model, &op, err, cap);
}

static int do_get_model(tally__conn *c, void *arg, char *err, size_t cap)
{
    model_op *op = arg;
    return read_model(c, op->name, op->a, op->model, err, cap);
}

int tally_registry_get_model(tally_store *s, const char *name, tally_arena *a,
                             tally_registered_model *out, char *err, size_t cap)
{
    model_op op = {.name = name, .a = a, .model = out};
    return tally__store_read(s, do_get_model, &op, err, cap);
}

static int do_rename_model(tally__conn *c, void *arg, char *err, size_t cap)
{
    model_op *op = arg;
    int64_t mkey, other;
    int rc = model_key(c, op->name, &mkey, err, cap);
    if (rc != 0)
        return rc;
    if (strcmp(op->name, op->new_name) != 0) {
        rc = model_key(c, op->new_name, &other, err, cap);
        if (rc == 0)
            return fail(err, cap, TALLY_STORE_EEXISTS,
                        "Registered Model (name=%.300s) already exists.", op->new_name);
        if (rc != TALLY_STORE_ENOTFOUND)
            return rc;
    }
    long long now = tally__store_now_ms();
    PREP(st, c, SQL_MODEL_RENAME);
    sqlite3_bind_int64(st, 1, mkey);
    bind_str(st, 2, op->new_name);
    sqlite3_bind_int64(st, 3, now);
    if ((rc = run(c, st, err, cap)) != 0)
        return rc;
    PREP(tv, c, SQL_MODEL_TOUCH_VERSIONS);
    sqlite3_bind_int64(tv, 1, mkey);
    sqlite3_bind_int64(tv, 2, now);
    if ((rc = run(c, tv, err, cap)) != 0)
        return rc;
    return read_model(c, op->new_name, op->a, op->model, err, cap);
}

int tally_registry_rename_model(tally_store *s, const char *name, const char *new_name,
                                tally_arena *a, tally_registered_model *out, char *err,
                                size_t cap)
{
    int rc = tally_registry_check_name(new_name, err, cap);
    if (rc != 0)
        return rc;
    model_op op = {.name = name, .new_name = new_name, .a = a, .model = out};
    return tally__store_write(s, do_rename_model, &op, err, cap);
}

static int do_update_model(tally__conn *c, void *arg, char *err, size_t cap)
{
    model_op *op = arg;
    int64_t mkey;
    int rc = model_key(c, op->name, &mkey, err, cap);
    if (rc != 0)
        return rc;
    PREP(st, c, SQL_MODEL_UPDATE);
    sqlite3_bind_int64(st, 1, mkey);
    bind_str(st, 2, op->description ? op->description : "");
    sqlite3_bind_int64(st, 3, tally__store_now_ms());
    if ((rc = run(c, st, err, cap)) != 0)
        return rc;
    return read_model(c, op->name, op->a, op->model, err, cap);
}

int tally_registry_update_model(tally_store *s, const char *name, const char *description,
                                tally_arena *a, tally_registered_model *out, char *err,
                                size_t cap)
{
    model_op op = {.name = name, .description = description, .a = a, .model = out};
    return tally__store_write(s, do_update_model, &op, err, cap);
}

static int do_delete_model(tally__conn *c, void *arg, char *err, size_t cap)
{
    model_op *op = arg;
    int64_t mkey;
    int rc = model_key(c, op->name, &mkey, err, cap);
    if (rc != 0)
        return rc;
    static const char *const steps[] = {SQL_MODEL_DEL_ALIASES, SQL_MODEL_DEL_VTAGS,
                                        SQL_MODEL_DEL_VERSIONS, SQL_MODEL_DEL_TAGS, SQL_MODEL_DEL};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        PREP(st, c, steps[i]);
        sqlite3_bind_int64(st, 1, mkey);
        if ((rc = run(c, st, err, cap)) != 0)
            return rc;
    }
    return 0;
}

int tally_registry_delete_model(tally_store *s, const char *name, char *err, size_t cap)
{
    model_op op = {.name = name};
    return tally__store_write(s, do_delete_model, &op, err, cap);
}

static int do_model_tag(tally__conn *c, void *arg, char *err, size_t cap)
{
    model_op *op = arg;
    int64_t mkey;
    int rc = model_key(c, op->name, &mkey, err, cap);
    if (rc != 0)
        return rc;
    PREP(st, c, op->value ? SQL_MODEL_TAG_UPSERT : SQL_MODEL_TAG_DELETE);
    sqlite3_bind_int64(st, 1, mkey);
    bind_str(st, 2, op->key);
    if (op->value)
        bind_str(st, 3, op->value);
    if ((rc = run(c, st, err, cap)) != 0)
        return rc;
    return model_is_prompt(c, mkey, op->is_prompt, err, cap);
}

int tally_registry_set_model_tag(tally_store *s, const char *name, const char *key,
                                 const char *value, int *is_prompt, char *err, size_t cap)
{
    int rc = tally_registry_check_tag(key, value, err, cap);
    if (rc != 0)
        return rc;
    model_op op = {.name = name, .key = key, .value = value ? value : "", .is_prompt = is_prompt};
    return tally__store_write(s, do_model_tag, &op, err, cap);
}

int tally_registry_delete_model_tag(tally_store *s, const char *name, const char *key,
                                    int *is_prompt, char *err, size_t cap)
{
    int rc = tally_store_check_key("tag", key, err, cap);
    if (rc != 0)
        return rc;
    model_op op = {.name = name, .key = key, .value = NULL, .is_prompt = is_prompt};
    return tally__store_write(s, do_model_tag, &op, err, cap);
}

/* ---- aliases ------------------------------------------------------------- */

static int do_set_alias(tally__conn *c, void *arg, char *err, size_t cap)
{
    model_op *op = arg;
    int64_t mkey, vkey;
    int rc = resolve_version(c, op->name, op->version, &mkey, &vkey, NULL, NULL, err, cap);
    if (rc != 0)
        return rc;
    PREP(st, c, SQL_ALIAS_UPSERT);
    sqlite3_bind_int64(st, 1, mkey);
    bind_str(st, 2, op->alias);
    sqlite3_bind_int64(st, 3, vkey);
    if ((rc = run(c, st, err, cap)) != 0)
        return rc;
    return model_is_prompt(c, mkey, op->is_prompt, err, cap);
}

int tally_registry_set_alias(tally_store *s, const char *name, const char *alias,
                             int64_t version, int *is_prompt, char *err, size_t cap)
{
    int rc = tally_registry_check_alias(alias, 1, err, cap);
    if (rc != 0)
        return rc;
    model_op op = {.name = name, .alias = alias, .version = version, .is_prompt = is_prompt};
    return tally__store_write(s, do_set_alias, &op, err, cap);
}

static int do_delete_alias(tally__conn *c, void *arg, char *err, size_t cap)
{
    model_op *op = arg;
    int64_t mkey;
    int rc = model_key(c, op->name, &mkey, err, cap);
    if (rc != 0)
        return rc;
    PREP(st, c, SQL_ALIAS_DELETE);
    sqlite3_bind_int64(st, 1, mkey);
    bind_str(st, 2, op->alias);
    if ((rc = run(c, st, err, cap)) != 0)
        return rc;
    return model_is_prompt(c, mkey, op->is_prompt, err, cap);
}

int tally_registry_delete_alias(tally_store *s, const char *name, const char *alias,
                                int *is_prompt, char *err, size_t cap)
{
    int rc = tally_registry_check_alias(alias, 0, err, cap);
    if (rc != 0)
        return rc;
    model_op op = {.name = name, .alias = alias, .is_prompt = is_prompt};
    return tally__store_write(s, do_delete_alias, &op, err, cap);
}

/* The highest visible version number, 0 if none. */
static int max_visible(tally__conn *c, int64_t mkey, int64_t *out, char *err, size_t cap)
{
    int64_t best[TALLY_STAGE_N_VISIBLE];
    int rc = stage_maxima(c, mkey, best, err, cap);
    *out = 0;
    for (int s = 0; rc == 0 && s < TALLY_STAGE_N_VISIBLE; s++)
        if (best[s] > *out)
            *out = best[s];
    return rc;
}

static int do_get_alias(tally__conn *c, void *arg, char *err, size_t cap)
{
    model_op *op = arg;
    int64_t mkey, vkey, version = 0;
    int rc = model_key(c, op->name, &mkey, err, cap);
    if (rc != 0)
        return rc;
    if (strcasecmp(op->alias, "latest") == 0) {
        if ((rc = max_visible(c, mkey, &version, err, cap)) != 0)
            return rc;
        if (!version)
            return fail(err, cap, TALLY_STORE_ENOTFOUND,
                        "Registered Model (name=%.300s) has no versions", op->name);
    } else {
        PREP(st, c, SQL_ALIAS_GET);
        sqlite3_bind_int64(st, 1, mkey);
        bind_str(st, 2, op->alias);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
            version = sqlite3_column_int64(st, 0);
        tally__stmt_done(st);
        if (rc == SQLITE_DONE)
            return fail(err, cap, TALLY_STORE_EINVAL,
                        "Registered model alias %.300s not found.", op->alias);
        if (rc != SQLITE_ROW)
            return tally__conn_error(c, err, cap);
    }
    rc = find_version(c, mkey, version, op->a, op->mv, &vkey, err, cap);
    if (rc < 0)
        return rc;
    return rc == 1 ? 0 : version_not_found(op->name, version, err, cap);
}

int tally_registry_get_alias(tally_store *s, const char *name, const char *alias, tally_arena *a,
                             tally_model_version *out, char *err, size_t cap)
{
    int rc = tally_registry_check_alias(alias, 0, err, cap);
    if (rc != 0)
        return rc;
    model_op op = {.name = name, .alias = alias, .a = a, .mv = out};
    return tally__store_read(s, do_get_alias, &op, err, cap);
}

static int do_latest(tally__conn *c, void *arg, char *err, size_t cap)
{
    model_op *op = arg;
    int64_t mkey;
    int rc = model_key(c, op->name, &mkey, err, cap);
    if (rc != 0)
        return rc;
    return latest_versions(c, mkey, op->mask, op->a, op->mvs, op->n_mvs, err, cap);
}

int tally_registry_latest_versions(tally_store *s, const char *name, unsigned stage_mask,
                                   tally_arena *a, tally_model_version **out, size_t *n,
                                   char *err, size_t cap)
{
    model_op op = {.name = name, .mask = stage_mask, .a = a, .mvs = out, .n_mvs = n};
    return tally__store_read(s, do_latest, &op, err, cap);
}

/* ------------------------------------------------------------------------ */
/* Model versions                                                            */
/* ------------------------------------------------------------------------ */

typedef struct version_op {
    const tally_version_create *create;
    const char *name;
    int64_t version;
    const char *description;
    tally_stage stage;
    int archive;
    const char *key, *value;
    int *is_prompt;
    tally_arena *a;
    tally_model_version *out;
} version_op;

/* models:/<name>/<version|stage|latest> or models:/<name>@<alias>: the
 * download URI of that version into *loc (arena), or NULL for other sources. */
static int resolve_models_uri(tally__conn *c, const char *source, tally_arena *a,
                              const char **loc, char *err, size_t cap)
{
    *loc = NULL;
    if (strncmp(source, "models:/", 8) != 0)
        return 0;
    const char *p = source + 8;
    while (*p == '/')
        p++;
    const char *at = strchr(p, '@'), *slash = strchr(p, '/');
    const char *sep = at && (!slash || at < slash) ? at : slash;
    if (!sep || sep == p || !sep[1])
        return 0; /* models:/m-<id> (logged models) and the like stay as given */
    char *name = tally_arena_strndup(a, p, (size_t)(sep - p));
    const char *rest = sep + 1;
    if (!name)
        return fail(err, cap, TALLY_STORE_ENOMEM, "Out of memory.");
    int64_t mkey, version = 0, vkey;
    int rc = model_key(c, name, &mkey, err, cap);
    if (rc != 0)
        return rc;
    tally_stage stage;
    if (*sep == '@' || strcasecmp(rest, "latest") == 0) {
        if (strcasecmp(rest, "latest") == 0) {
            rc = max_visible(c, mkey, &version, err, cap);
        } else {
            PREP(st, c, SQL_ALIAS_GET);
            sqlite3_bind_int64(st, 1, mkey);
            bind_str(st, 2, rest);
            rc = sqlite3_step(st);
            version = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
            tally__stmt_done(st);
            rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : tally__conn_error(c, err, cap);
        }
    } else if (tally_registry_parse_version(rest, &version, NULL, 0) == 0) {
        rc = 0;
    } else if (tally_stage_parse(rest, &stage) == 0) {
        PREP(st, c, SQL_VERSION_BY_STAGE);
        sqlite3_bind_int64(st, 1, mkey);
        bind_str(st, 2, tally_stage_name(stage));
        rc = sqlite3_step(st);
        version = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
        tally__stmt_done(st);
        rc = rc == SQLITE_ROW ? 0 : tally__conn_error(c, err, cap);
    } else {
        return 0;
    }
    if (rc != 0)
        return rc;
    tally_model_version mv;
    rc = find_version(c, mkey, version, a, &mv, &vkey, err, cap);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return fail(err, cap, TALLY_STORE_ENOTFOUND, "Model version source '%.300s' not found",
                    source);
    *loc = mv.storage_location ? mv.storage_location : mv.source;
    return 0;
}

static int do_create_version(tally__conn *c, void *arg, char *err, size_t cap)
{
    version_op *op = arg;
    const tally_version_create *r = op->create;
    int64_t mkey;
    int rc = model_key(c, r->name, &mkey, err, cap);
    if (rc != 0)
        return rc;
    const char *loc;
    if ((rc = resolve_models_uri(c, r->source, op->a, &loc, err, cap)) != 0)
        return rc;
    long long now = tally__store_now_ms();
    PREP(nx, c, SQL_VERSION_NEXT);
    sqlite3_bind_int64(nx, 1, mkey);
    sqlite3_bind_int64(nx, 2, now);
    rc = sqlite3_step(nx);
    int64_t version = rc == SQLITE_ROW ? sqlite3_column_int64(nx, 0) : 0;
    tally__stmt_done(nx);
    if (rc != SQLITE_ROW)
        return tally__conn_error(c, err, cap);
    PREP(st, c, SQL_VERSION_INSERT);
    sqlite3_bind_int64(st, 1, mkey);
    sqlite3_bind_int64(st, 2, version);
    sqlite3_bind_int64(st, 3, now);
    bind_str(st, 4, r->description ? r->description : "");
    bind_str(st, 5, r->source);
    bind_str(st, 6, r->run_id ? r->run_id : "");
    bind_str(st, 7, r->run_link ? r->run_link : "");
    bind_str(st, 8, r->model_id && *r->model_id ? r->model_id : NULL);
    bind_str(st, 9, loc);
    if ((rc = run(c, st, err, cap)) != 0)
        return rc;
    int64_t vkey = sqlite3_last_insert_rowid(tally__conn_db(c));
    for (size_t i = 0; i < r->n_tags; i++) {
        PREP(t, c, SQL_VTAG_UPSERT);
        sqlite3_bind_int64(t, 1, vkey);
        bind_str(t, 2, r->tags[i].key);
        bind_str(t, 3, r->tags[i].value ? r->tags[i].value : "");
        if ((rc = run(c, t, err, cap)) != 0)
            return rc;
    }
    rc = find_version(c, mkey, version, op->a, op->out, &vkey, err, cap);
    return rc < 0 ? rc : 0;
}

int tally_registry_create_version(tally_store *s, const tally_version_create *req,
                                  tally_arena *a, tally_model_version *out, char *err,
                                  size_t cap)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < req->n_tags; i++)
        rc = tally_registry_check_tag(req->tags[i].key, req->tags[i].value, err, cap);
    if (rc != 0)
        return rc;
    version_op op = {.create = req, .a = a, .out = out};
    return tally__store_write(s, do_create_version, &op, err, cap);
}

static int do_get_version(tally__conn *c, void *arg, char *err, size_t cap)
{
    version_op *op = arg;
    int64_t mkey, vkey;
    return resolve_version(c, op->name, op->version, &mkey, &vkey, op->a, op->out, err, cap);
}

int tally_registry_get_version(tally_store *s, const char *name, int64_t version,
                               tally_arena *a, tally_model_version *out, char *err, size_t cap)
{
    version_op op = {.name = name, .version = version, .a = a, .out = out};
    return tally__store_read(s, do_get_version, &op, err, cap);
}

static int do_update_version(tally__conn *c, void *arg, char *err, size_t cap)
{
    version_op *op = arg;
    int64_t mkey, vkey;
    int rc = resolve_version(c, op->name, op->version, &mkey, &vkey, NULL, NULL, err, cap);
    if (rc != 0)
        return rc;
    PREP(st, c, SQL_VERSION_UPDATE);
    sqlite3_bind_int64(st, 1, vkey);
    bind_str(st, 2, op->description ? op->description : "");
    sqlite3_bind_int64(st, 3, tally__store_now_ms());
    if ((rc = run(c, st, err, cap)) != 0)
        return rc;
    return resolve_version(c, op->name, op->version, &mkey, &vkey, op->a, op->out, err, cap);
}

int tally_registry_update_version(tally_store *s, const char *name, int64_t version,
                                  const char *description, tally_arena *a,
                                  tally_model_version *out, char *err, size_t cap)
{
    version_op op = {.name = name, .version = version, .description = description, .a = a,
                     .out = out};
    return tally__store_write(s, do_update_version, &op, err, cap);
}

static int do_delete_version(tally__conn *c, void *arg, char *err, size_t cap)
{
    version_op *op = arg;
    int64_t mkey, vkey;
    int rc = resolve_version(c, op->name, op->version, &mkey, &vkey, NULL, NULL, err, cap);
    if (rc != 0)
        return rc;
    long long now = tally__store_now_ms();
    static const char *const by_vkey[] = {SQL_VALIAS_DELETE_ALL, SQL_VTAG_DELETE_ALL};
    for (size_t i = 0; i < 2; i++) {
        PREP(st, c, by_vkey[i]);
        sqlite3_bind_int64(st, 1, vkey);
        if ((rc = run(c, st, err, cap)) != 0)
            return rc;
    }
    PREP(st, c, SQL_VERSION_DELETE);
    sqlite3_bind_int64(st, 1, vkey);
    sqlite3_bind_int64(st, 2, now);
    if ((rc = run(c, st, err, cap)) != 0)
        return rc;
    PREP(t, c, SQL_MODEL_TOUCH);
    sqlite3_bind_int64(t, 1, mkey);
    sqlite3_bind_int64(t, 2, now);
    return run(c, t, err, cap);
}

int tally_registry_delete_version(tally_store *s, const char *name, int64_t version, char *err,
                                  size_t cap)
{
    version_op op = {.name = name, .version = version};
    return tally__store_write(s, do_delete_version, &op, err, cap);
}

static int do_transition(tally__conn *c, void *arg, char *err, size_t cap)
{
    version_op *op = arg;
    int64_t mkey, vkey;
    int rc = resolve_version(c, op->name, op->version, &mkey, &vkey, NULL, NULL, err, cap);
    if (rc != 0)
        return rc;
    long long now = tally__store_now_ms();
    if (op->archive) {
        PREP(ar, c, SQL_VERSION_ARCHIVE_OTHERS);
        sqlite3_bind_int64(ar, 1, mkey);
        bind_str(ar, 2, tally_stage_name(op->stage));
        sqlite3_bind_int64(ar, 3, now);
        sqlite3_bind_int64(ar, 4, vkey);
        if ((rc = run(c, ar, err, cap)) != 0)
            return rc;
    }
    PREP(st, c, SQL_VERSION_STAGE);
    sqlite3_bind_int64(st, 1, vkey);
    bind_str(st, 2, tally_stage_name(op->stage));
    sqlite3_bind_int64(st, 3, now);
    if ((rc = run(c, st, err, cap)) != 0)
        return rc;
    PREP(t, c, SQL_MODEL_TOUCH);
    sqlite3_bind_int64(t, 1, mkey);
    sqlite3_bind_int64(t, 2, now);
    if ((rc = run(c, t, err, cap)) != 0)
        return rc;
    return resolve_version(c, op->name, op->version, &mkey, &vkey, op->a, op->out, err, cap);
}

int tally_registry_transition_stage(tally_store *s, const char *name, int64_t version,
                                    tally_stage stage, int archive_existing, tally_arena *a,
                                    tally_model_version *out, char *err, size_t cap)
{
    if ((unsigned)stage >= TALLY_STAGE_N_VISIBLE)
        return fail(err, cap, TALLY_STORE_EINVAL, "Invalid Model Version stage");
    if (archive_existing && stage != TALLY_STAGE_STAGING && stage != TALLY_STAGE_PRODUCTION)
        return fail(err, cap, TALLY_STORE_EINVAL,
                    "Model version transition cannot archive existing model versions because "
                    "'%s' is not an Active stage. Valid stages are Staging, Production",
                    tally_stage_name(stage));
    version_op op = {.name = name, .version = version, .stage = stage,
                     .archive = archive_existing, .a = a, .out = out};
    return tally__store_write(s, do_transition, &op, err, cap);
}

static int do_version_tag(tally__conn *c, void *arg, char *err, size_t cap)
{
    version_op *op = arg;
    int64_t mkey, vkey;
    int rc = resolve_version(c, op->name, op->version, &mkey, &vkey, NULL, NULL, err, cap);
    if (rc != 0)
        return rc;
    PREP(st, c, op->value ? SQL_VTAG_UPSERT : SQL_VTAG_DELETE);
    sqlite3_bind_int64(st, 1, vkey);
    bind_str(st, 2, op->key);
    if (op->value)
        bind_str(st, 3, op->value);
    if ((rc = run(c, st, err, cap)) != 0)
        return rc;
    return model_is_prompt(c, mkey, op->is_prompt, err, cap);
}

int tally_registry_set_version_tag(tally_store *s, const char *name, int64_t version,
                                   const char *key, const char *value, int *is_prompt,
                                   char *err, size_t cap)
{
    int rc = tally_registry_check_tag(key, value, err, cap);
    if (rc != 0)
        return rc;
    version_op op = {.name = name, .version = version, .key = key, .value = value ? value : "",
                     .is_prompt = is_prompt};
    return tally__store_write(s, do_version_tag, &op, err, cap);
}

int tally_registry_delete_version_tag(tally_store *s, const char *name, int64_t version,
                                      const char *key, int *is_prompt, char *err, size_t cap)
{
    int rc = tally_store_check_key("tag", key, err, cap);
    if (rc != 0)
        return rc;
    version_op op = {.name = name, .version = version, .key = key, .is_prompt = is_prompt};
    return tally__store_write(s, do_version_tag, &op, err, cap);
}

/* ------------------------------------------------------------------------ */
/* Search                                                                    */
/* ------------------------------------------------------------------------ */

/* Where each searchable value lives (search.h's push-down). */
static const tally_search_sql_schema models_schema = {
    .attr = {[TALLY_SEARCH_A_NAME] = "m.name",
             [TALLY_SEARCH_A_LAST_UPDATED_TIMESTAMP] = "m.last_updated_time"},
    .tag = "(SELECT value FROM registered_model_tags t WHERE t.model_key = m.model_key AND "
           "t.key = ?)",
};
static const tally_search_sql_schema versions_schema = {
    .attr = {[TALLY_SEARCH_A_NAME] = "m.name",
             [TALLY_SEARCH_A_RUN_ID] = "v.run_id",
             [TALLY_SEARCH_A_SOURCE_PATH] = "v.source",
             [TALLY_SEARCH_A_VERSION_NUMBER] = "v.version",
             [TALLY_SEARCH_A_CREATION_TIMESTAMP] = "v.creation_time",
             [TALLY_SEARCH_A_LAST_UPDATED_TIMESTAMP] = "v.last_updated_time"},
    .tag = "(SELECT value FROM model_version_tags t WHERE t.version_key = v.version_key AND "
           "t.key = ?)",
};

typedef struct search_op {
    int versions;                 /* model-versions (else registered models) */
    const tally_search_filter *f;
    const tally_search_order *o;
    const tally_model_names *only; /* NULL: every model */
    uint64_t offset;
    size_t limit;
    tally_arena *a;
    void *out;                    /* tally_registered_model ** or tally_model_version ** */
    size_t *n;
    int *more;
} search_op;

/* 1 if f holds `attr = value` for an attribute: every matching row then
 * has the same value and ordering by it is a no-op. Leaving such keys out
 * of ORDER BY lets `name = 'm' ORDER BY creation_timestamp DESC` walk
 * model_versions_by_model_created in order instead of sorting (the
 * tie-breaker `name ASC` would otherwise defeat the index). */
static int pinned(const tally_search_filter *f, tally_search_attr attr)
{
    for (size_t i = 0; f && i < f->n_clauses; i++) {
        const tally_search_clause *c = &f->clauses[i];
        if (c->entity == TALLY_SEARCH_ATTR && c->attr == attr && c->op == TALLY_SEARCH_EQ)
            return 1;
    }
    return 0;
}

/* Builds "SELECT ... WHERE ... ORDER BY ... LIMIT ? OFFSET ?" into b. */
static int build_search_sql(const search_op *op, const tally_search_sql *w, tally_buf *b)
{
    const tally_search_sql_schema *sc = op->versions ? &versions_schema : &models_schema;
    if (op->versions)
        tally_buf_printf(b, "SELECT " VERSION_COLS " FROM model_versions v JOIN "
                            "registered_models m ON m.model_key = v.model_key WHERE " VISIBLE
                            " AND (%s)",
                         w->where);
    else
        tally_buf_printf(b, "SELECT " MODEL_COLS " FROM registered_models m WHERE (%s)", w->where);
    if (!tally_search_filter_mentions_tag(op->f, TALLY_REGISTRY_PROMPT_TAG))
        tally_buf_printf(b, " AND NOT " IS_PROMPT_OF("m.model_key"));
    if (op->only && !op->only->exclude && op->only->n == 0) {
        tally_buf_printf(b, " AND 0"); /* nothing readable */
    } else if (op->only && op->only->n) {
        /* The names are bound after the filter's values (do_search). */
        tally_buf_printf(b, " AND m.name %sIN (?", op->only->exclude ? "NOT " : "");
        for (size_t i = 1; i < op->only->n; i++)
            tally_buf_printf(b, ", ?");
        tally_buf_printf(b, ")");
    }
    tally_buf_printf(b, " ORDER BY ");
    int first = 1;
    for (size_t i = 0; i < op->o->n_keys; i++) {
        const tally_search_order_key *k = &op->o->keys[i];
        const char *col = k->entity == TALLY_SEARCH_ATTR ? sc->attr[k->attr] : NULL;
        if (!col)
            return -1;
        if (pinned(op->f, k->attr))
            continue;
        tally_buf_printf(b, "%s%s %s", first ? "" : ", ", col, k->desc ? "DESC" : "ASC");
        first = 0;
    }
    if (first) /* every key pinned: any order is the order; keep SQL valid */
        tally_buf_printf(b, "%s", op->versions ? "v.version DESC" : "m.name");
    tally_buf_printf(b, " LIMIT ? OFFSET ?");
    return tally_buf_failed(b) ? -2 : 0;
}

static int do_search(tally__conn *c, void *arg, char *err, size_t cap)
{
    search_op *op = arg;
    const tally_search_sql_schema *sc = op->versions ? &versions_schema : &models_schema;
    tally_search_sql w;
    tally_buf b = {0};
    sqlite3_stmt *st = NULL;
    int rc = tally_search_sql_where(op->f, sc, &w);
    if (rc != 0) {
        rc = fail(err, cap, TALLY_STORE_ENOMEM, "Out of memory.");
        goto out;
    }
    if (!w.complete) {
        /* Every registry filter field has an expression above. */
        rc = fail(err, cap, TALLY_STORE_EINVAL, "Unsupported filter for this search");
        goto out;
    }
    rc = build_search_sql(op, &w, &b);
    if (rc != 0) {
        rc = rc == -2 ? fail(err, cap, TALLY_STORE_ENOMEM, "Out of memory.")
                      : fail(err, cap, TALLY_STORE_EINVAL, "Unsupported order_by key");
        goto out;
    }
    if (sqlite3_prepare_v2(tally__conn_db(c), b.data, (int)b.len, &st, NULL) != SQLITE_OK) {
        rc = tally__conn_error(c, err, cap);
        goto out;
    }
    int i = 1;
    for (size_t k = 0; k < w.n_binds; k++, i++) {
        const tally_search_sql_bind *bd = &w.binds[k];
        if (bd->is_text)
            sqlite3_bind_text(st, i, bd->text, -1, SQLITE_STATIC);
        else if (bd->is_int)
            sqlite3_bind_int64(st, i, bd->inum);
        else
            sqlite3_bind_double(st, i, bd->num);
    }
    if (op->only)
        for (size_t k = 0; k < op->only->n; k++, i++)
            sqlite3_bind_text(st, i, op->only->names[k], -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, i++, (sqlite3_int64)op->limit + 1);
    sqlite3_bind_int64(st, i, op->offset > INT64_MAX ? INT64_MAX : (sqlite3_int64)op->offset);
    size_t esize = op->versions ? sizeof(tally_model_version) : sizeof(tally_registered_model);
    void *rows = NULL;
    int64_t *keys = NULL;
    size_t n = 0, rcap = 0, kcap = 0;
    *op->more = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == op->limit) {
            *op->more = 1;
            break;
        }
        if (tally__arena_reserve(op->a, &rows, esize, n, &rcap, 16) != 0 ||
            tally__arena_reserve(op->a, &keys, sizeof *keys, n, &kcap, 16) != 0) {
            rc = fail(err, cap, TALLY_STORE_ENOMEM, "Out of memory.");
            goto out;
        }
        if (op->versions) {
            if (version_row(st, op->a, (tally_model_version *)rows + n, &keys[n]) != 0) {
                rc = fail(err, cap, TALLY_STORE_ENOMEM, "Out of memory.");
                goto out;
            }
        } else if ((rc = model_from_row(st, op->a, (tally_registered_model *)rows + n, &keys[n],
                                        err, cap)) != 0) {
            goto out;
        }
        n++;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        rc = tally__conn_error(c, err, cap);
        goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    for (size_t k = 0; k < n; k++) {
        rc = op->versions
                 ? version_extras(c, keys[k], op->a, (tally_model_version *)rows + k, err, cap)
                 : model_extras(c, keys[k], op->a, (tally_registered_model *)rows + k, err, cap);
        if (rc != 0)
            goto out;
    }
    *(void **)op->out = rows;
    *op->n = n;
    rc = 0;
out:
    sqlite3_finalize(st);
    tally_search_sql_free(&w);
    tally_buf_free(&b);
    return rc;
}

static int search(tally_store *s, search_op *op, char *err, size_t cap)
{
    if (!op->o || op->o->mode != (op->versions ? TALLY_SEARCH_VERSIONS : TALLY_SEARCH_MODELS) ||
        (op->f && op->f->mode != op->o->mode))
        return fail(err, cap, TALLY_STORE_EINVAL, "search filter or order of the wrong kind");
    if (op->only && op->only->n > 30000) /* SQLite's host-parameter limit is 32766 */
        return fail(err, cap, TALLY_STORE_EINVAL,
                    "too many per-model permission rows to filter a search with");
    *op->n = 0;
    *op->more = 0;
    return tally__store_read(s, do_search, op, err, cap);
}

int tally_registry_search_models(tally_store *s, const tally_search_filter *f,
                                 const tally_search_order *o, const tally_model_names *only,
                                 uint64_t offset, size_t limit, tally_arena *a,
                                 tally_registered_model **out, size_t *n, int *more, char *err,
                                 size_t cap)
{
    *out = NULL;
    search_op op = {0, f, o, only, offset, limit, a, out, n, more};
    return search(s, &op, err, cap);
}

int tally_registry_search_versions(tally_store *s, const tally_search_filter *f,
                                   const tally_search_order *o, const tally_model_names *only,
                                   uint64_t offset, size_t limit, tally_arena *a,
                                   tally_model_version **out, size_t *n, int *more, char *err,
                                   size_t cap)
{
    *out = NULL;
    search_op op = {1, f, o, only, offset, limit, a, out, n, more};
    return search(s, &op, err, cap);
}
