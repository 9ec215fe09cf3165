/*
 * store_cli.h — what the `tally` tool's import needs from the metadata store
 * beyond the tracking interface (store.h): writing experiments and runs as
 * they were in another tracking store (their ids, times, status and
 * lifecycle kept), and the import ledger that makes imports idempotent and
 * resumable. A PostgreSQL backend implements the same set; the SQLite one is
 * store_cli_sqlite.c (tables of migration 7).
 *
 * The ledger, per imported source run:
 *
 *   (absent) --tally_store_import_run--> metadata --metric points synced,
 *            artifacts copied, tally_store_import_runs_done--> done
 *
 * Invariants:
 *  (1) A run's metadata (row, params, tags) and its ledger entry "metadata"
 *      are written in one transaction: after a crash either both exist or
 *      neither does.
 *  (2) A run is marked "done" only after its metric points are durable in
 *      the engine and its artifacts are in place (the caller's duty), so a
 *      "done" run is never imported again, and a "metadata" run is resumed:
 *      its points are appended again (the engine collapses exact duplicate
 *      points on read) and its artifacts are copied again (files already
 *      there with the same size are skipped).
 *  (3) Source run ids are kept as Tally run ids when they are 32 lower-case
 *      hex digits and not taken; otherwise a fresh id is made and the ledger
 *      holds the mapping. Ledger entries are keyed by the source run id (a
 *      uuid, unique across sources); experiments by (source, source id), and
 *      an experiment whose name already exists is merged into, never
 *      duplicated (names are unique).
 *  (4) Imported values are stored as they were: no truncation of long param
 *      or tag values, no validation of keys beyond non-empty.
 */
#ifndef TALLY_SERVER_STORE_CLI_H
#define TALLY_SERVER_STORE_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

typedef struct tally_import_experiment {
    const char *source;            /* ledger key of the source (e.g. its canonical path) */
    const char *source_id;         /* the experiment's id there */
    const char *name;
    const char *artifact_location; /* NULL or "": mlflow-artifacts:/<id> (the server's default) */
    tally_lifecycle lifecycle;
    int64_t creation_time_ms;      /* ms since the epoch, 0 if unknown (then now) */
    int64_t last_update_time_ms;   /* 0 if unknown (then creation time) */
    const tally_kv *tags;          /* experiment tags, upserted */
    size_t n_tags;
} tally_import_experiment;

/* Maps the source experiment to a Tally experiment, creating it if needed:
 * the ledger's mapping if it has one, else an experiment of the same name,
 * else a new one with the source id as its id when that is a free
 * non-negative integer. Tags are upserted every time. *created = 1 when a
 * new experiment was made. 0 or TALLY_STORE_E* with a message. */
int tally_store_import_experiment(tally_store *s, const tally_import_experiment *in,
                                  int64_t *id_out, int *created, char *err, size_t cap);

typedef struct tally_import_run {
    const char *source_run_id;   /* the run's id in the source */
    int64_t experiment_id;       /* the Tally experiment (from tally_store_import_experiment) */
    const char *run_name;        /* NULL/"": tag mlflow.runName, else "" */
    const char *user_id;         /* NULL = "" */
    int status;                  /* tally_run_status 1..5 */
    int64_t start_time_ms;
    int has_end_time;
    int64_t end_time_ms;
    tally_lifecycle lifecycle;
    int has_deleted_time;
    int64_t deleted_time_ms;
    const char *artifact_uri;    /* NULL: <experiment location>/<run id>/artifacts (the
                                    artifacts are copied there); else kept as given
                                    (a remote store the source pointed at) */
    const tally_kv *params;      /* stored as given (invariant 4) */
    size_t n_params;
    const tally_kv *tags;
    size_t n_tags;
} tally_import_run;

typedef enum tally_import_state {
    TALLY_IMPORT_NEW = 0,     /* metadata written now: import points and artifacts */
    TALLY_IMPORT_RESUME = 1,  /* metadata was there, the run not done: redo points, artifacts */
    TALLY_IMPORT_DONE = 2     /* imported before: nothing to do */
} tally_import_state;

/* Writes the run (invariant 1) unless the ledger has it. run_id_out gets the
 * Tally run id (33 bytes), artifact_uri_out (uri_cap bytes) its artifact
 * URI (see tally_import_run.artifact_uri). */
int tally_store_import_run(tally_store *s, const tally_import_run *in, tally_import_state *state,
                           char run_id_out[TALLY_RUN_ID_LEN + 1], char *artifact_uri_out,
                           size_t uri_cap, char *err, size_t cap);

/* Marks n source runs done, in one transaction (invariant 2). */
int tally_store_import_runs_done(tally_store *s, const char *const *source_run_ids, size_t n,
                                 char *err, size_t cap);

/* Ledger totals: runs done and runs with metadata only (interrupted). */
int tally_store_import_ledger_counts(tally_store *s, int64_t *n_done, int64_t *n_pending,
                                     char *err, size_t cap);

/* ------------------------------------------------------------------------ */
/* gc: permanent removal of deleted runs and experiments                     */
/* ------------------------------------------------------------------------ */

typedef struct tally_gc_run {
    char run_id[TALLY_RUN_ID_LEN + 1];
    int64_t experiment_id;
    const char *artifact_uri;     /* in the caller's arena */
} tally_gc_run;

/* What `tally gc` would remove, as MLflow's gc chooses it: deleted runs
 * whose deleted_time is at or before cutoff_ms (a run deleted without a
 * deleted_time counts as deleted at 0), and deleted experiments whose
 * last_update_time is at or before cutoff_ms together with every run of
 * them. run_ids / exp_ids (n 0: all) restrict the choice; naming a run or
 * experiment that does not exist or is not deleted is EINVAL with MLflow's
 * message. Results in arena a. */
int tally_store_gc_select(tally_store *s, int64_t cutoff_ms, const char *const *run_ids,
                          size_t n_run_ids, const int64_t *exp_ids, size_t n_exp_ids,
                          tally_arena *a, tally_gc_run **runs, size_t *n_runs, int64_t **exps,
                          size_t *n_exps, char *err, size_t cap);

/* Hard-deletes the runs (params, tags, inputs, ledger entries) and then the
 * experiments (tags, datasets, ledger entries) in one transaction. Runs
 * and experiments that are no longer deleted (restored meanwhile) are left
 * alone and counted out of *n_purged_runs / *n_purged_exps. */
int tally_store_gc_purge(tally_store *s, const char *const *run_ids, size_t n_runs,
                         const int64_t *exp_ids, size_t n_exps, size_t *n_purged_runs,
                         size_t *n_purged_exps, char *err, size_t cap);

#endif /* TALLY_SERVER_STORE_CLI_H */
