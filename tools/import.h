/*
 * import.h — the destination side of `tally import`: a Tally data directory
 * (<data>/meta.db through the store and its import ledger, <data>/metrics
 * through the engine's batch append, <data>/artifacts by file copy). The
 * source readers (import_mlruns.c, import_mlflow_db.c) turn what they read
 * into these calls; several reader threads may call them at once.
 *
 * Per run, a reader calls:
 *
 *   import_run_begin ---> state DONE: skip the run
 *        |            \-> NEW / RESUME: import_run_series (each metric),
 *        |                              import_copy_tree (artifacts)
 *        \--> import_run_finish (queues the run; every IMPORT_DONE_BATCH runs,
 *             and at import_close, the engine is synced and then the queued
 *             runs are marked done in the ledger — store_cli.h invariant 2)
 *
 * Registered models come after the runs (their versions name runs), one
 * import_model call per model, on one thread.
 *
 * Invariants:
 *  (1) The engine runs in async durability during an import and is synced
 *      before any run is marked done, so "done" always means durable.
 *  (2) Artifact files are written under a ".tally-import-" temporary name
 *      (hidden from listings) and renamed into place, so an interrupted copy
 *      never leaves a truncated file under the real name; a file already in
 *      place with the source's size is not copied again.
 *  (3) Counters (runs, points, bytes) are atomics, read by the progress
 *      loop on the main thread.
 */
#ifndef TALLY_TOOLS_IMPORT_H
#define TALLY_TOOLS_IMPORT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"
#include "store_cli.h"
#include "store_registry_import.h"
#include "tally/engine.h"

#define IMPORT_DONE_BATCH 64 /* runs marked done per engine sync */

typedef struct import_ctx {
    char data_dir[1024];          /* the Tally data directory */
    char artifact_root[1100];     /* <data>/artifacts: where mlflow-artifacts:/ URIs live */
    char source[1100];            /* ledger key of the source (canonical path) */
    tally_store *store;
    tally_engine *engine;
    int threads;                  /* reader threads */
    atomic_uint_fast64_t n_runs_seen;     /* runs met in the source */
    atomic_uint_fast64_t n_runs_imported; /* runs written now (new or resumed) */
    atomic_uint_fast64_t n_runs_skipped;  /* runs the ledger had as done */
    atomic_uint_fast64_t n_points;        /* metric points appended */
    atomic_uint_fast64_t n_experiments;   /* experiments mapped */
    atomic_uint_fast64_t n_artifact_files;/* artifact files copied */
    atomic_uint_fast64_t n_artifact_bytes;
    atomic_uint_fast64_t n_models_imported; /* registered models written now */
    atomic_uint_fast64_t n_models_skipped;  /* registered models the ledger had */
    atomic_uint_fast64_t n_versions;        /* their versions written now */
    pthread_mutex_t done_mu;      /* guards done_ids */
    char *done_ids[IMPORT_DONE_BATCH]; /* source run ids waiting to be marked done */
    size_t n_done_ids;
    atomic_int failed;            /* a reader hit an error: others stop early */
} import_ctx;

/* Opens the data directory (creating it): the store, the engine (async
 * durability), the artifact root. source names the import source for the
 * ledger. 0, or 1 with a message on stderr. */
int import_open(import_ctx *c, const char *data_dir, const char *source, int threads);
/* Marks the remaining finished runs done (after a sync) and closes the
 * engine and the store. 0, or 1 with a message on stderr. */
int import_close(import_ctx *c);

/* Appends one series' points (any length; sent in batches the engine
 * accepts). 0, or 1 with a message on stderr. */
int import_run_series(import_ctx *c, const char *run_id, const char *key, size_t key_len,
                      const int64_t *steps, const int64_t *ts, const double *values, size_t n);

/* Appends n series (one engine batch, one WAL record) holding n_points
 * points in all; each series at most 4 G points. 0, or 1 with a message. */
int import_append(import_ctx *c, const tally_series_batch *b, size_t n, uint64_t n_points);

/* Writes one registered model whole (store_registry_import.h), with
 * m->source set to the import's source; counts it imported or skipped.
 * 0, or 1 with a message on stderr. */
int import_model(import_ctx *c, tally_import_model *m);

/* Queues a finished run to be marked done (invariant 1). 0 or 1. */
int import_run_finish(import_ctx *c, const char *source_run_id);

/* Copies the tree src (a directory) to the local directory of a Tally
 * artifact URI (mlflow-artifacts:/...); nothing if the URI is not served
 * from the artifact root or src does not exist. 0, or 1 with a message. */
int import_copy_artifacts(import_ctx *c, const char *src, const char *artifact_uri);

/* "file:///a%20b/c" or "/a b/c" -> "/a b/c" in out; 0 when uri is not a
 * local path (s3://, mlflow-artifacts:/, ...). */
int import_local_path(const char *uri, char *out, size_t cap);

#endif /* TALLY_TOOLS_IMPORT_H */
