/*
 * import_sources.h — the sources `tally import` reads: an MLflow file store
 * (import_mlruns.c) and an MLflow SQLite database (import_mlflow_db.c).
 * Each reads its source and writes through import.h; both return 0 on
 * success or 1 with messages on stderr.
 */
#ifndef TALLY_TOOLS_IMPORT_SOURCES_H
#define TALLY_TOOLS_IMPORT_SOURCES_H

#include "import.h"

/* root: the mlruns directory. quiet: no progress line. */
int import_mlruns(import_ctx *c, const char *root, int quiet);

/* db: the MLflow SQLite file; artifact_root: where its local artifacts
 * live when their URIs are not absolute file paths (NULL: use the URIs). */
int import_mlflow_db(import_ctx *c, const char *db, const char *artifact_root, int quiet);

/* Runs fn(c, i, arg) for i in [0, n) on c->threads threads, drawing a
 * progress line of label in runs (import_runner.c). Stops handing out
 * work once c->failed is set. 0, or 1 if any call failed. */
typedef int (*import_task_fn)(import_ctx *c, size_t i, void *arg);
int import_run_tasks(import_ctx *c, size_t n, import_task_fn fn, void *arg, const char *label,
                     int quiet);

#endif /* TALLY_TOOLS_IMPORT_SOURCES_H */
