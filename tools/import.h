/*
 * import.h — the destination side of `tally import`: a Tally data directory
 * (<data>/meta.db through the store and its import ledger, <data>/metrics
 * through the engine's batch append, <data>/artifacts by file copy; this
 * file's import.c), or a running server (import_remote.c, `--to URL`),
 * both behind import_dest_ops. The source readers (import_mlruns.c,
 * import_mlflow_db.c and their *_models.c) turn what they read into these
 * calls; several reader threads may call them at once.
 *
 * Per run, a reader calls:
 *
 *   import_run ---------> state DONE: skip the run
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

typedef struct import_ctx import_ctx;

/* A destination: the data directory (import.c) or a running server
 * (import_remote.c). The wrappers below check what is common and call
 * these; each returns 0, or 1 / a TALLY_STORE_* code as its wrapper says. */
typedef struct import_dest_ops {
    int (*experiment)(import_ctx *c, const tally_import_experiment *in, int64_t *id, char *err,
                      size_t cap);
    int (*run)(import_ctx *c, const tally_import_run *in, tally_import_state *state,
               char run_id[TALLY_RUN_ID_LEN + 1], char *uri, size_t uri_cap, char *err,
               size_t cap);
    int (*append)(import_ctx *c, const tally_series_batch *b, size_t n); /* one batch */
    int (*copy_tree)(import_ctx *c, const char *src, const char *rel); /* rel: under the root */
    int (*run_finish)(import_ctx *c, const char *source_run_id);
    int (*model)(import_ctx *c, tally_import_model *m, int *written, char *err, size_t cap);
    int (*close)(import_ctx *c);
} import_dest_ops;

struct import_remote;

struct import_ctx {
    const import_dest_ops *ops;   /* the destination */
    struct import_remote *remote; /* import_remote.c's state, when remote */
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
};

/* Opens the data directory (creating it): the store, the engine (async
 * durability), the artifact root. source names the import source for the
 * ledger. 0, or 1 with a message on stderr. */
int import_open(import_ctx *c, const char *data_dir, const char *source, int threads);
/* Opens a running Tally server at url as the destination
 * (import_remote.c); ledger: the client-side ledger file (created if
 * needed). 0, or 1 with a message on stderr. */
int import_open_remote(import_ctx *c, const char *url, const char *ledger, const char *source,
                       int threads);
/* Marks the remaining finished runs done (after a sync) and closes the
 * engine and the store. 0, or 1 with a message on stderr. */
int import_close(import_ctx *c);

/* Maps a source experiment (store_cli.h tally_import_experiment, the
 * source set by the caller) and writes a source run (tally_import_run:
 * state, run id, artifact URI out) at the destination. 0 or a
 * TALLY_STORE_* code with a message in err. */
int import_experiment(import_ctx *c, const tally_import_experiment *in, int64_t *id, char *err,
                      size_t cap);
int import_run(import_ctx *c, const tally_import_run *in, tally_import_state *state,
               char run_id[TALLY_RUN_ID_LEN + 1], char *uri, size_t uri_cap, char *err,
               size_t cap);

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
