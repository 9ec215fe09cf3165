/*
 * store_cli_sqlite.c — the SQLite implementation of store_cli.h: imported
 * experiments and runs written with their source's ids, times and
 * lifecycle, and the import ledger (tables import_experiments and
 * import_runs, migration 7 in store_schema.c). The invariants are
 * store_cli.h's; each function is one tally__store_write transaction.
 */
#include "store_cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "store_internal.h"

#define DEFAULT_ROOT "mlflow-artifacts:/"

static const char SQL_LEDGER_EXP[] =
    "SELECT l.experiment_id FROM import_experiments l JOIN experiments e "
    "ON e.experiment_id = l.experiment_id WHERE l.source = ?1 AND l.source_experiment_id = ?2";
static const char SQL_EXP_BY_NAME[] = "SELECT experiment_id FROM experiments WHERE name = ?1";
static const char SQL_EXP_ID_TAKEN[] = "SELECT 1 FROM experiments WHERE experiment_id = ?1";
static const char SQL_EXP_INSERT_ID[] =
    "INSERT INTO experiments(experiment_id, name, artifact_location, lifecycle_stage, "
    "creation_time, last_update_time) VALUES (?1, ?2, '', ?3, ?4, ?5)";
static const char SQL_EXP_INSERT_AUTO[] =
    "INSERT INTO experiments(name, artifact_location, lifecycle_stage, creation_time, "
    "last_update_time) VALUES (?1, '', ?2, ?3, ?4)";
static const char SQL_EXP_SET_LOCATION[] =
    "UPDATE experiments SET artifact_location = ?2 WHERE experiment_id = ?1";
static const char SQL_EXP_TAG_UPSERT[] =
    "INSERT OR REPLACE INTO experiment_tags(experiment_id, key, value) VALUES (?1, ?2, ?3)";
static const char SQL_LEDGER_EXP_PUT[] =
    "INSERT OR REPLACE INTO import_experiments(source, source_experiment_id, experiment_id) "
    "VALUES (?1, ?2, ?3)";
static const char SQL_EXP_LOCATION[] =
    "SELECT artifact_location FROM experiments WHERE experiment_id = ?1";
static const char SQL_LEDGER_RUN[] =
    "SELECT l.run_uuid, l.state, r.artifact_uri FROM import_runs l JOIN runs r "
    "ON r.run_uuid = l.run_uuid WHERE l.source_run_id = ?1";
static const char SQL_RUN_TAKEN[] = "SELECT 1 FROM runs WHERE run_uuid = ?1";
static const char SQL_RUN_INSERT[] =
    "INSERT INTO runs(run_uuid, name, experiment_id, user_id, status, start_time, end_time, "
    "lifecycle_stage, deleted_time, artifact_uri) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
static const char SQL_PARAM_PUT[] =
    "INSERT OR REPLACE INTO params(run_key, key, value) "
    "VALUES ((SELECT run_key FROM runs WHERE run_uuid = ?1), ?2, ?3)";
static const char SQL_TAG_PUT[] =
    "INSERT OR REPLACE INTO tags(run_key, key, value) "
    "VALUES ((SELECT run_key FROM runs WHERE run_uuid = ?1), ?2, ?3)";
static const char SQL_LEDGER_RUN_PUT[] =
    "INSERT OR REPLACE INTO import_runs(source_run_id, run_uuid, state, imported_time) "
    "VALUES (?1, ?2, 'metadata', ?3)";
static const char SQL_LEDGER_RUN_DONE[] =
    "UPDATE import_runs SET state = 'done', imported_time = ?2 WHERE source_run_id = ?1";
static const char SQL_LEDGER_COUNTS[] =
    "SELECT coalesce(sum(state = 'done'), 0), coalesce(sum(state = 'metadata'), 0) "
    "FROM import_runs";

static sqlite3_stmt *stmt(tally__conn *c, const char *sql, int *rc, char *err, size_t cap)
{
    sqlite3_stmt *st = tally__conn_stmt(c, sql);
    if (!st)
        *rc = tally__conn_error(c, err, cap);
    return st;
}

/* Steps a statement that returns no row; 0 or the mapped error. */
static int run_done(tally__conn *c, sqlite3_stmt *st, char *err, size_t cap)
{
    int r = sqlite3_step(st);
    int rc = r == SQLITE_DONE ? 0 : tally__conn_error(c, err, cap);
    tally__stmt_done(st);
    return rc;
}

/* First column of the first row as int64: 1 found, 0 none, <0 error. */
static int one_int(tally__conn *c, sqlite3_stmt *st, int64_t *out, char *err, size_t cap)
{
    int r = sqlite3_step(st);
    int rc = 0;
    if (r == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        rc = 1;
    } else if (r != SQLITE_DONE) {
        rc = tally__conn_error(c, err, cap);
    }
    tally__stmt_done(st);
    return rc;
}

static const char *lifecycle_name(tally_lifecycle l)
{
    return l == TALLY_LIFECYCLE_DELETED ? "deleted" : "active";
}

/* A non-negative decimal int64 in s (no sign, no spaces), or -1. */
static int64_t parse_id(const char *s)
{
    if (!s || !*s || strlen(s) > 18)
        return -1;
    int64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (*p - '0');
    }
    return v;
}

typedef struct exp_job {
    const tally_import_experiment *in;
    int64_t id;
    int created;
} exp_job;

static int import_experiment_tx(tally__conn *c, void *arg, char *err, size_t cap)
{
    exp_job *j = arg;
    const tally_import_experiment *in = j->in;
    int rc = 0, found;
    sqlite3_stmt *st;

    if (!in->name || !*in->name) {
        snprintf(err, cap, "experiment %s has no name", in->source_id);
        return TALLY_STORE_EINVAL;
    }
    if (!(st = stmt(c, SQL_LEDGER_EXP, &rc, err, cap)))
        return rc;
    sqlite3_bind_text(st, 1, in->source, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, in->source_id, -1, SQLITE_STATIC);
    if ((found = one_int(c, st, &j->id, err, cap)) < 0)
        return found;
    if (!found) {
        if (!(st = stmt(c, SQL_EXP_BY_NAME, &rc, err, cap)))
            return rc;
        sqlite3_bind_text(st, 1, in->name, -1, SQLITE_STATIC);
        if ((found = one_int(c, st, &j->id, err, cap)) < 0)
            return found;
    }
    if (!found) {
        int64_t want = parse_id(in->source_id), dummy;
        int taken = 1;
        if (want >= 0) {
            if (!(st = stmt(c, SQL_EXP_ID_TAKEN, &rc, err, cap)))
                return rc;
            sqlite3_bind_int64(st, 1, want);
            if ((taken = one_int(c, st, &dummy, err, cap)) < 0)
                return taken;
        }
        long long now = tally__store_now_ms();
        int64_t created = in->creation_time_ms ? in->creation_time_ms : now;
        int64_t updated = in->last_update_time_ms ? in->last_update_time_ms : created;
        if (!taken) {
            if (!(st = stmt(c, SQL_EXP_INSERT_ID, &rc, err, cap)))
                return rc;
            sqlite3_bind_int64(st, 1, want);
            sqlite3_bind_text(st, 2, in->name, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 3, lifecycle_name(in->lifecycle), -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 4, created);
            sqlite3_bind_int64(st, 5, updated);
            if ((rc = run_done(c, st, err, cap)) != 0)
                return rc;
            j->id = want;
        } else {
            if (!(st = stmt(c, SQL_EXP_INSERT_AUTO, &rc, err, cap)))
                return rc;
            sqlite3_bind_text(st, 1, in->name, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 2, lifecycle_name(in->lifecycle), -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 3, created);
            sqlite3_bind_int64(st, 4, updated);
            if ((rc = run_done(c, st, err, cap)) != 0)
                return rc;
            j->id = sqlite3_last_insert_rowid(tally__conn_db(c));
        }
        char loc[TALLY_MAX_ARTIFACT_LOCATION + 64];
        if (in->artifact_location && *in->artifact_location)
            snprintf(loc, sizeof loc, "%s", in->artifact_location);
        else
            tally__store_join_location(DEFAULT_ROOT, (long long)j->id, loc, sizeof loc);
        if (!(st = stmt(c, SQL_EXP_SET_LOCATION, &rc, err, cap)))
            return rc;
        sqlite3_bind_int64(st, 1, j->id);
        sqlite3_bind_text(st, 2, loc, -1, SQLITE_TRANSIENT);
        if ((rc = run_done(c, st, err, cap)) != 0)
            return rc;
        j->created = 1;
    }
    for (size_t i = 0; i < in->n_tags; i++) {
        if (!in->tags[i].key || !*in->tags[i].key) {
            snprintf(err, cap, "experiment %s: a tag with an empty key", in->source_id);
            return TALLY_STORE_EINVAL;
        }
        if (!(st = stmt(c, SQL_EXP_TAG_UPSERT, &rc, err, cap)))
            return rc;
        sqlite3_bind_int64(st, 1, j->id);
        sqlite3_bind_text(st, 2, in->tags[i].key, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, in->tags[i].value ? in->tags[i].value : "", -1, SQLITE_STATIC);
        if ((rc = run_done(c, st, err, cap)) != 0)
            return rc;
    }
    if (!(st = stmt(c, SQL_LEDGER_EXP_PUT, &rc, err, cap)))
        return rc;
    sqlite3_bind_text(st, 1, in->source, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, in->source_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, j->id);
    return run_done(c, st, err, cap);
}

int tally_store_import_experiment(tally_store *s, const tally_import_experiment *in,
                                  int64_t *id_out, int *created, char *err, size_t cap)
{
    exp_job j = {in, 0, 0};
    int rc = tally__store_write(s, import_experiment_tx, &j, err, cap);
    if (rc == 0) {
        *id_out = j.id;
        if (created)
            *created = j.created;
    }
    return rc;
}

static int is_run_id(const char *s)
{
    if (!s || strlen(s) != TALLY_RUN_ID_LEN)
        return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return 0;
    return 1;
}

static int random_run_id(char out[TALLY_RUN_ID_LEN + 1])
{
    unsigned char b[16];
    size_t got = 0;
    while (got < sizeof b) {
        ssize_t r = getrandom(b + got, sizeof b - got, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        got += (size_t)r;
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* uuid4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
    return 0;
}

typedef struct run_job {
    const tally_import_run *in;
    tally_import_state state;
    char run_id[TALLY_RUN_ID_LEN + 1];
    char *uri;
    size_t uri_cap;
} run_job;

static int put_kv(tally__conn *c, const char *sql, const char *run_id, const tally_kv *kv,
                  const char *what, char *err, size_t cap)
{
    int rc = 0;
    if (!kv->key || !*kv->key) {
        snprintf(err, cap, "run %s: a %s with an empty key", run_id, what);
        return TALLY_STORE_EINVAL;
    }
    sqlite3_stmt *st = stmt(c, sql, &rc, err, cap);
    if (!st)
        return rc;
    sqlite3_bind_text(st, 1, run_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, kv->key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, kv->value ? kv->value : "", -1, SQLITE_STATIC);
    return run_done(c, st, err, cap);
}

static int import_run_tx(tally__conn *c, void *arg, char *err, size_t cap)
{
    run_job *j = arg;
    const tally_import_run *in = j->in;
    int rc = 0, r;
    int64_t dummy;
    sqlite3_stmt *st;

    if (!(st = stmt(c, SQL_LEDGER_RUN, &rc, err, cap)))
        return rc;
    sqlite3_bind_text(st, 1, in->source_run_id, -1, SQLITE_STATIC);
    r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        snprintf(j->run_id, sizeof j->run_id, "%s", (const char *)sqlite3_column_text(st, 0));
        j->state = strcmp((const char *)sqlite3_column_text(st, 1), "done") == 0
                       ? TALLY_IMPORT_DONE
                       : TALLY_IMPORT_RESUME;
        snprintf(j->uri, j->uri_cap, "%s", (const char *)sqlite3_column_text(st, 2));
        tally__stmt_done(st);
        return 0;
    }
    tally__stmt_done(st);
    if (r != SQLITE_DONE)
        return tally__conn_error(c, err, cap);
    if (!tally_run_status_name(in->status)) {
        snprintf(err, cap, "run %s: invalid status %d", in->source_run_id, in->status);
        return TALLY_STORE_EINVAL;
    }

    /* invariant (3): keep the source id when we can */
    int taken = 1;
    if (is_run_id(in->source_run_id)) {
        if (!(st = stmt(c, SQL_RUN_TAKEN, &rc, err, cap)))
            return rc;
        sqlite3_bind_text(st, 1, in->source_run_id, -1, SQLITE_STATIC);
        if ((taken = one_int(c, st, &dummy, err, cap)) < 0)
            return taken;
    }
    if (!taken)
        snprintf(j->run_id, sizeof j->run_id, "%s", in->source_run_id);
    else if (random_run_id(j->run_id) != 0) {
        snprintf(err, cap, "no random bytes for a run id");
        return TALLY_STORE_EIO;
    }

    if (!(st = stmt(c, SQL_EXP_LOCATION, &rc, err, cap)))
        return rc;
    sqlite3_bind_int64(st, 1, in->experiment_id);
    r = sqlite3_step(st);
    if (r != SQLITE_ROW) {
        tally__stmt_done(st);
        if (r != SQLITE_DONE)
            return tally__conn_error(c, err, cap);
        snprintf(err, cap, "No Experiment with id=%lld exists", (long long)in->experiment_id);
        return TALLY_STORE_ENOTFOUND;
    }
    const char *loc = (const char *)sqlite3_column_text(st, 0);
    size_t n = strlen(loc);
    if (in->artifact_uri && *in->artifact_uri)
        snprintf(j->uri, j->uri_cap, "%s", in->artifact_uri);
    else
        snprintf(j->uri, j->uri_cap, "%s%s%s/artifacts", loc,
                 n && loc[n - 1] == '/' ? "" : "/", j->run_id);
    tally__stmt_done(st);

    /* the name: run_name, else tag mlflow.runName; the tag is kept equal */
    const char *name = in->run_name && *in->run_name ? in->run_name : NULL;
    int has_name_tag = 0;
    for (size_t i = 0; i < in->n_tags; i++)
        if (strcmp(in->tags[i].key, "mlflow.runName") == 0) {
            has_name_tag = 1;
            if (!name)
                name = in->tags[i].value ? in->tags[i].value : "";
        }
    if (!name)
        name = "";

    if (!(st = stmt(c, SQL_RUN_INSERT, &rc, err, cap)))
        return rc;
    sqlite3_bind_text(st, 1, j->run_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, in->experiment_id);
    sqlite3_bind_text(st, 4, in->user_id ? in->user_id : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, tally_run_status_name(in->status), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, in->start_time_ms);
    if (in->has_end_time)
        sqlite3_bind_int64(st, 7, in->end_time_ms);
    else
        sqlite3_bind_null(st, 7);
    sqlite3_bind_text(st, 8, lifecycle_name(in->lifecycle), -1, SQLITE_STATIC);
    if (in->lifecycle == TALLY_LIFECYCLE_DELETED)
        sqlite3_bind_int64(st, 9, in->has_deleted_time ? in->deleted_time_ms
                                                       : (int64_t)tally__store_now_ms());
    else
        sqlite3_bind_null(st, 9);
    sqlite3_bind_text(st, 10, j->uri, -1, SQLITE_STATIC);
    if ((rc = run_done(c, st, err, cap)) != 0)
        return rc;

    for (size_t i = 0; i < in->n_params; i++)
        if ((rc = put_kv(c, SQL_PARAM_PUT, j->run_id, &in->params[i], "param", err, cap)) != 0)
            return rc;
    for (size_t i = 0; i < in->n_tags; i++) {
        tally_kv kv = in->tags[i];
        if (kv.key && strcmp(kv.key, "mlflow.runName") == 0)
            kv.value = name; /* runs.name and the tag agree */
        if ((rc = put_kv(c, SQL_TAG_PUT, j->run_id, &kv, "tag", err, cap)) != 0)
            return rc;
    }
    if (!has_name_tag && *name) {
        tally_kv kv = {"mlflow.runName", name};
        if ((rc = put_kv(c, SQL_TAG_PUT, j->run_id, &kv, "tag", err, cap)) != 0)
            return rc;
    }

    if (!(st = stmt(c, SQL_LEDGER_RUN_PUT, &rc, err, cap)))
        return rc;
    sqlite3_bind_text(st, 1, in->source_run_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, j->run_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, tally__store_now_ms());
    if ((rc = run_done(c, st, err, cap)) != 0)
        return rc;
    j->state = TALLY_IMPORT_NEW;
    return 0;
}

int tally_store_import_run(tally_store *s, const tally_import_run *in, tally_import_state *state,
                           char run_id_out[TALLY_RUN_ID_LEN + 1], char *artifact_uri_out,
                           size_t uri_cap, char *err, size_t cap)
{
    if (!in->source_run_id || !*in->source_run_id) {
        snprintf(err, cap, "a run without an id");
        return TALLY_STORE_EINVAL;
    }
    run_job j;
    memset(&j, 0, sizeof j);
    j.in = in;
    j.uri = artifact_uri_out;
    j.uri_cap = uri_cap;
    int rc = tally__store_write(s, import_run_tx, &j, err, cap);
    if (rc == 0) {
        *state = j.state;
        memcpy(run_id_out, j.run_id, sizeof j.run_id);
    }
    return rc;
}

typedef struct done_job {
    const char *const *ids;
    size_t n;
} done_job;

static int runs_done_tx(tally__conn *c, void *arg, char *err, size_t cap)
{
    done_job *j = arg;
    long long now = tally__store_now_ms();
    for (size_t i = 0; i < j->n; i++) {
        int rc = 0;
        sqlite3_stmt *st = stmt(c, SQL_LEDGER_RUN_DONE, &rc, err, cap);
        if (!st)
            return rc;
        sqlite3_bind_text(st, 1, j->ids[i], -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, now);
        if ((rc = run_done(c, st, err, cap)) != 0)
            return rc;
    }
    return 0;
}

int tally_store_import_runs_done(tally_store *s, const char *const *source_run_ids, size_t n,
                                 char *err, size_t cap)
{
    if (n == 0)
        return 0;
    done_job j = {source_run_ids, n};
    return tally__store_write(s, runs_done_tx, &j, err, cap);
}

typedef struct counts_job {
    int64_t done, pending;
} counts_job;

static int counts_tx(tally__conn *c, void *arg, char *err, size_t cap)
{
    counts_job *j = arg;
    int rc = 0;
    sqlite3_stmt *st = stmt(c, SQL_LEDGER_COUNTS, &rc, err, cap);
    if (!st)
        return rc;
    if (sqlite3_step(st) == SQLITE_ROW) {
        j->done = sqlite3_column_int64(st, 0);
        j->pending = sqlite3_column_int64(st, 1);
    } else {
        rc = tally__conn_error(c, err, cap);
    }
    tally__stmt_done(st);
    return rc;
}

int tally_store_import_ledger_counts(tally_store *s, int64_t *n_done, int64_t *n_pending,
                                     char *err, size_t cap)
{
    counts_job j = {0, 0};
    int rc = tally__store_read(s, counts_tx, &j, err, cap);
    if (rc == 0) {
        *n_done = j.done;
        *n_pending = j.pending;
    }
    return rc;
}

/* ---- gc ------------------------------------------------------------------ */

static const char SQL_GC_RUN_ONE[] =
    "SELECT run_uuid, experiment_id, artifact_uri, lifecycle_stage, coalesce(deleted_time, 0) "
    "FROM runs WHERE run_uuid = ?1";
static const char SQL_GC_RUNS_DELETED[] =
    "SELECT run_uuid, experiment_id, artifact_uri FROM runs "
    "WHERE lifecycle_stage = 'deleted' AND coalesce(deleted_time, 0) <= ?1";
static const char SQL_GC_EXP_ONE[] =
    "SELECT lifecycle_stage, last_update_time FROM experiments WHERE experiment_id = ?1";
static const char SQL_GC_EXPS_DELETED[] =
    "SELECT experiment_id FROM experiments WHERE lifecycle_stage = 'deleted' "
    "AND last_update_time <= ?1";
static const char SQL_GC_RUNS_OF_EXP[] =
    "SELECT run_uuid, experiment_id, artifact_uri FROM runs WHERE experiment_id = ?1";

typedef struct gc_sel {
    int64_t cutoff;
    const char *const *run_ids;
    size_t n_run_ids;
    const int64_t *exp_ids;
    size_t n_exp_ids;
    tally_arena *a;
    tally_gc_run *runs;
    size_t n_runs, cap_runs;
    int64_t *exps;
    size_t n_exps, cap_exps;
} gc_sel;

static int gc_add_run(gc_sel *g, sqlite3_stmt *st)
{
    const char *id = (const char *)sqlite3_column_text(st, 0);
    for (size_t i = 0; i < g->n_runs; i++)
        if (strcmp(g->runs[i].run_id, id) == 0)
            return 0;
    if (tally__arena_reserve(g->a, &g->runs, sizeof *g->runs, g->n_runs, &g->cap_runs, 64) != 0)
        return TALLY_STORE_ENOMEM;
    tally_gc_run *r = &g->runs[g->n_runs];
    snprintf(r->run_id, sizeof r->run_id, "%s", id);
    r->experiment_id = sqlite3_column_int64(st, 1);
    r->artifact_uri = tally_arena_strdup(g->a, (const char *)sqlite3_column_text(st, 2));
    if (!r->artifact_uri)
        return TALLY_STORE_ENOMEM;
    g->n_runs++;
    return 0;
}

static int gc_select_tx(tally__conn *c, void *arg, char *err, size_t cap)
{
    gc_sel *g = arg;
    int rc = 0, r;
    sqlite3_stmt *st;
    /* experiments first: their runs go whatever their own state */
    if (g->n_exp_ids) {
        for (size_t i = 0; i < g->n_exp_ids && rc == 0; i++) {
            if (!(st = stmt(c, SQL_GC_EXP_ONE, &rc, err, cap)))
                return rc;
            sqlite3_bind_int64(st, 1, g->exp_ids[i]);
            r = sqlite3_step(st);
            if (r != SQLITE_ROW) {
                tally__stmt_done(st);
                if (r != SQLITE_DONE)
                    return tally__conn_error(c, err, cap);
                snprintf(err, cap, "Experiment with id=%lld not found", (long long)g->exp_ids[i]);
                return TALLY_STORE_EINVAL;
            }
            int deleted = strcmp((const char *)sqlite3_column_text(st, 0), "deleted") == 0;
            int64_t updated = sqlite3_column_int64(st, 1);
            tally__stmt_done(st);
            if (!deleted) {
                snprintf(err, cap, "Experiments %lld is not in the deleted lifecycle stage. "
                                   "Only experiments in the deleted lifecycle stage can be "
                                   "deleted.",
                         (long long)g->exp_ids[i]);
                return TALLY_STORE_EINVAL;
            }
            if (updated > g->cutoff)
                continue; /* deleted too recently */
            if (tally__arena_reserve(g->a, &g->exps, sizeof *g->exps, g->n_exps, &g->cap_exps,
                                     16) != 0)
                return TALLY_STORE_ENOMEM;
            g->exps[g->n_exps++] = g->exp_ids[i];
        }
    } else if (g->n_run_ids == 0) {
        if (!(st = stmt(c, SQL_GC_EXPS_DELETED, &rc, err, cap)))
            return rc;
        sqlite3_bind_int64(st, 1, g->cutoff);
        while ((r = sqlite3_step(st)) == SQLITE_ROW) {
            if (tally__arena_reserve(g->a, &g->exps, sizeof *g->exps, g->n_exps, &g->cap_exps,
                                     16) != 0) {
                tally__stmt_done(st);
                return TALLY_STORE_ENOMEM;
            }
            g->exps[g->n_exps++] = sqlite3_column_int64(st, 0);
        }
        tally__stmt_done(st);
        if (r != SQLITE_DONE)
            return tally__conn_error(c, err, cap);
    }
    for (size_t i = 0; i < g->n_exps; i++) {
        if (!(st = stmt(c, SQL_GC_RUNS_OF_EXP, &rc, err, cap)))
            return rc;
        sqlite3_bind_int64(st, 1, g->exps[i]);
        while (rc == 0 && (r = sqlite3_step(st)) == SQLITE_ROW)
            rc = gc_add_run(g, st);
        tally__stmt_done(st);
        if (rc)
            return rc;
        if (r != SQLITE_DONE)
            return tally__conn_error(c, err, cap);
    }
    /* runs */
    if (g->n_run_ids) {
        for (size_t i = 0; i < g->n_run_ids; i++) {
            if (!(st = stmt(c, SQL_GC_RUN_ONE, &rc, err, cap)))
                return rc;
            sqlite3_bind_text(st, 1, g->run_ids[i], -1, SQLITE_STATIC);
            r = sqlite3_step(st);
            if (r != SQLITE_ROW) {
                tally__stmt_done(st);
                if (r != SQLITE_DONE)
                    return tally__conn_error(c, err, cap);
                snprintf(err, cap, "Run '%s' not found", g->run_ids[i]);
                return TALLY_STORE_EINVAL;
            }
            int deleted = strcmp((const char *)sqlite3_column_text(st, 3), "deleted") == 0;
            int64_t when = sqlite3_column_int64(st, 4);
            if (!deleted) {
                tally__stmt_done(st);
                snprintf(err, cap, "Run %s is not in `deleted` lifecycle stage. Only runs in "
                                   "`deleted` lifecycle stage can be deleted.",
                         g->run_ids[i]);
                return TALLY_STORE_EINVAL;
            }
            if (when <= g->cutoff)
                rc = gc_add_run(g, st);
            tally__stmt_done(st);
            if (rc)
                return rc;
        }
    } else if (g->n_exp_ids == 0) {
        if (!(st = stmt(c, SQL_GC_RUNS_DELETED, &rc, err, cap)))
            return rc;
        sqlite3_bind_int64(st, 1, g->cutoff);
        while (rc == 0 && (r = sqlite3_step(st)) == SQLITE_ROW)
            rc = gc_add_run(g, st);
        tally__stmt_done(st);
        if (rc)
            return rc;
        if (r != SQLITE_DONE)
            return tally__conn_error(c, err, cap);
    }
    return 0;
}

int tally_store_gc_select(tally_store *s, int64_t cutoff_ms, const char *const *run_ids,
                          size_t n_run_ids, const int64_t *exp_ids, size_t n_exp_ids,
                          tally_arena *a, tally_gc_run **runs, size_t *n_runs, int64_t **exps,
                          size_t *n_exps, char *err, size_t cap)
{
    gc_sel g = {.cutoff = cutoff_ms, .run_ids = run_ids, .n_run_ids = n_run_ids,
                .exp_ids = exp_ids, .n_exp_ids = n_exp_ids, .a = a};
    int rc = tally__store_read(s, gc_select_tx, &g, err, cap);
    if (rc == 0) {
        *runs = g.runs;
        *n_runs = g.n_runs;
        *exps = g.exps;
        *n_exps = g.n_exps;
    }
    return rc;
}

/* Deleting a run: children first (foreign keys), only while it is deleted
 * or its experiment is being purged (?2 = 1). */
static const char SQL_GC_RUN_KEY[] =
    "SELECT run_key FROM runs WHERE run_uuid = ?1 AND (lifecycle_stage = 'deleted' OR ?2)";
static const char SQL_GC_DEL_INPUT_TAGS[] = "DELETE FROM input_tags WHERE run_key = ?1";
static const char SQL_GC_DEL_INPUTS[] = "DELETE FROM run_inputs WHERE run_key = ?1";
static const char SQL_GC_DEL_PARAMS[] = "DELETE FROM params WHERE run_key = ?1";
static const char SQL_GC_DEL_TAGS[] = "DELETE FROM tags WHERE run_key = ?1";
/* Logged-model outputs of a run (migration 5), and an experiment's logged
 * models with their params, tags and the outputs that name them. */
static const char SQL_GC_DEL_RUN_OUTPUTS[] = "DELETE FROM run_outputs WHERE run_key = ?1";
static const char SQL_GC_DEL_LM_OUTPUTS[] =
    "DELETE FROM run_outputs WHERE model_id IN "
    "(SELECT model_id FROM logged_models WHERE experiment_id = ?1)";
static const char SQL_GC_DEL_LM_PARAMS[] =
    "DELETE FROM logged_model_params WHERE model_id IN "
    "(SELECT model_id FROM logged_models WHERE experiment_id = ?1)";
static const char SQL_GC_DEL_LM_TAGS[] =
    "DELETE FROM logged_model_tags WHERE model_id IN "
    "(SELECT model_id FROM logged_models WHERE experiment_id = ?1)";
static const char SQL_GC_DEL_LMS[] = "DELETE FROM logged_models WHERE experiment_id = ?1";
static const char SQL_GC_DEL_LEDGER_RUN[] = "DELETE FROM import_runs WHERE run_uuid = ?1";
static const char SQL_GC_DEL_RUN[] = "DELETE FROM runs WHERE run_key = ?1";
static const char SQL_GC_EXP_DELETED[] =
    "SELECT 1 FROM experiments WHERE experiment_id = ?1 AND lifecycle_stage = 'deleted'";
static const char SQL_GC_EXP_HAS_RUNS[] = "SELECT 1 FROM runs WHERE experiment_id = ?1";
static const char SQL_GC_DEL_EXP_TAGS[] = "DELETE FROM experiment_tags WHERE experiment_id = ?1";
static const char SQL_GC_DEL_DATASETS[] = "DELETE FROM datasets WHERE experiment_id = ?1";
static const char SQL_GC_DEL_LEDGER_EXP[] =
    "DELETE FROM import_experiments WHERE experiment_id = ?1";
static const char SQL_GC_DEL_EXP[] = "DELETE FROM experiments WHERE experiment_id = ?1";

typedef struct gc_purge {
    const char *const *run_ids;
    size_t n_runs;
    const int64_t *exp_ids;
    size_t n_exps;
    size_t purged_runs, purged_exps;
} gc_purge;

static int exec_key(tally__conn *c, const char *sql, int64_t key, char *err, size_t cap)
{
    int rc = 0;
    sqlite3_stmt *st = stmt(c, sql, &rc, err, cap);
    if (!st)
        return rc;
    sqlite3_bind_int64(st, 1, key);
    return run_done(c, st, err, cap);
}

static int gc_purge_tx(tally__conn *c, void *arg, char *err, size_t cap)
{
    gc_purge *g = arg;
    int rc = 0;
    int64_t key = 0;
    sqlite3_stmt *st;
    g->purged_runs = g->purged_exps = 0;
    for (size_t i = 0; i < g->n_runs; i++) {
        /* runs of a purged experiment go whatever their own state */
        int64_t exp = -1;
        int of_purged_exp = 0;
        if (!(st = stmt(c, "SELECT experiment_id FROM runs WHERE run_uuid = ?1", &rc, err, cap)))
            return rc;
        sqlite3_bind_text(st, 1, g->run_ids[i], -1, SQLITE_STATIC);
        int found = one_int(c, st, &exp, err, cap);
        if (found < 0)
            return found;
        if (!found)
            continue;
        for (size_t k = 0; k < g->n_exps; k++)
            of_purged_exp |= g->exp_ids[k] == exp;
        if (of_purged_exp) {
            if (!(st = stmt(c, SQL_GC_EXP_DELETED, &rc, err, cap)))
                return rc;
            sqlite3_bind_int64(st, 1, exp);
            if ((of_purged_exp = one_int(c, st, &key, err, cap)) < 0)
                return of_purged_exp;
        }
        if (!(st = stmt(c, SQL_GC_RUN_KEY, &rc, err, cap)))
            return rc;
        sqlite3_bind_text(st, 1, g->run_ids[i], -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 2, of_purged_exp);
        if ((found = one_int(c, st, &key, err, cap)) < 0)
            return found;
        if (!found)
            continue; /* restored meanwhile */
        const char *child[] = {SQL_GC_DEL_INPUT_TAGS, SQL_GC_DEL_INPUTS, SQL_GC_DEL_PARAMS,
                               SQL_GC_DEL_TAGS, SQL_GC_DEL_RUN_OUTPUTS};
        for (size_t k = 0; k < sizeof child / sizeof *child; k++)
            if ((rc = exec_key(c, child[k], key, err, cap)) != 0)
                return rc;
        if (!(st = stmt(c, SQL_GC_DEL_LEDGER_RUN, &rc, err, cap)))
            return rc;
        sqlite3_bind_text(st, 1, g->run_ids[i], -1, SQLITE_STATIC);
        if ((rc = run_done(c, st, err, cap)) != 0)
            return rc;
        if ((rc = exec_key(c, SQL_GC_DEL_RUN, key, err, cap)) != 0)
            return rc;
        g->purged_runs++;
    }
    for (size_t i = 0; i < g->n_exps; i++) {
        if (!(st = stmt(c, SQL_GC_EXP_DELETED, &rc, err, cap)))
            return rc;
        sqlite3_bind_int64(st, 1, g->exp_ids[i]);
        int found = one_int(c, st, &key, err, cap);
        if (found < 0)
            return found;
        if (!found || g->exp_ids[i] == 0)
            continue; /* restored meanwhile; Default is never removed */
        if (!(st = stmt(c, SQL_GC_EXP_HAS_RUNS, &rc, err, cap)))
            return rc;
        sqlite3_bind_int64(st, 1, g->exp_ids[i]);
        if ((found = one_int(c, st, &key, err, cap)) < 0)
            return found;
        if (found)
            continue; /* a run was added after the selection */
        const char *del[] = {SQL_GC_DEL_EXP_TAGS,  SQL_GC_DEL_DATASETS,  SQL_GC_DEL_LM_OUTPUTS,
                             SQL_GC_DEL_LM_PARAMS, SQL_GC_DEL_LM_TAGS,   SQL_GC_DEL_LMS,
                             SQL_GC_DEL_LEDGER_EXP, SQL_GC_DEL_EXP};
        for (size_t k = 0; k < sizeof del / sizeof *del; k++)
            if ((rc = exec_key(c, del[k], g->exp_ids[i], err, cap)) != 0)
                return rc;
        g->purged_exps++;
    }
    return 0;
}

int tally_store_gc_purge(tally_store *s, const char *const *run_ids, size_t n_runs,
                         const int64_t *exp_ids, size_t n_exps, size_t *n_purged_runs,
                         size_t *n_purged_exps, char *err, size_t cap)
{
    gc_purge g = {run_ids, n_runs, exp_ids, n_exps, 0, 0};
    int rc = tally__store_write(s, gc_purge_tx, &g, err, cap);
    if (rc == 0) {
        if (n_purged_runs)
            *n_purged_runs = g.purged_runs;
        if (n_purged_exps)
            *n_purged_exps = g.purged_exps;
    }
    return rc;
}
